// Shared by the tests: a tiny real Trainer, real headless Chromium to read the deck back, and
// real file-system failures (a read-only bind mount, a full tmpfs, or ENOTDIR without root).
import { execFile, execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import * as tf from "@tensorflow/tfjs";
import { Trainer, TrainingArguments, type TrainingArgumentsOptions } from "@trainkit/core";
import type { TrainkitPlugin } from "@trainkit/core/plugin";
import { listFiles } from "../src/file-storage.js";
import { PREFIX_MARKER } from "../src/guard.js";

export const packageDir = resolve(import.meta.dirname, "..");

export function captureLogger() {
  const warnings: string[] = [];
  const infos: string[] = [];
  return {
    warnings,
    infos,
    logger: { info: (m: string) => infos.push(m), warn: (m: string) => warnings.push(m) },
  };
}

export const rows = Array.from({ length: 32 }, (_, i) => ({
  x: [i / 32, 1 - i / 32],
  y: i / 16,
}));

/** A one-layer regression Trainer reporting to "flyte" through `plugin`. */
export function makeTrainer(
  plugin: TrainkitPlugin,
  args: TrainingArgumentsOptions,
  extra: Partial<ConstructorParameters<typeof Trainer>[0]> = {},
): Trainer {
  const model = tf.sequential({
    layers: [tf.layers.dense({ inputShape: [2], units: 1, kernelInitializer: "ones" })],
  });
  return new Trainer({
    model,
    loss: "meanSquaredError",
    trainDataset: rows,
    evalDataset: rows.slice(0, 8),
    plugins: [plugin],
    args: new TrainingArguments({
      perDeviceTrainBatchSize: 4,
      disableTqdm: true,
      reportTo: ["flyte"],
      backend: "cpu",
      ...args,
    }),
    ...extra,
  });
}

/** Every file under `dir` with its bytes, by relative path. */
export function readTree(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (current: string) => {
    if (!existsSync(current)) return;
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      if (entry.isDirectory()) walk(path);
      else out.set(relative(dir, path), readFileSync(path));
    }
  };
  walk(dir);
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : 1)));
}

/**
 * A checkpoint prefix's files without trainkit's marker (which every replacing copy writes);
 * throws when the marker is missing.
 */
export function readPrefix(dir: string): Map<string, Buffer> {
  const files = readTree(dir);
  if (!files.delete(PREFIX_MARKER)) throw new Error(`${dir} has no ${PREFIX_MARKER}`);
  return files;
}

export { listFiles, PREFIX_MARKER };

/** What Chromium saw in the deck: the table's cells, and what the page loaded and ran. */
export interface ChromiumTable {
  title: string;
  /** Each row's cells: th or td, and textContent. */
  rows: { tag: string; text: string }[][];
  scripts: number;
  /** Elements that would load something (link, img, iframe, object, embed, script[src]). */
  loaders: number;
  /** Resources the page fetched (Resource Timing). */
  resources: number;
  /** The header cells' computed background: the inline CSS applied. */
  headerBackground: string;
}

const CHROMIUM = "/usr/bin/chromium";

/**
 * Loads `htmlFile` in real headless Chromium and reads the table back from Chromium's DOM: a
 * wrapper page (allowed to read file:// frames) frames the deck and writes what it finds into
 * its own DOM, which `--dump-dom` prints once the page and the frame have loaded.
 */
export async function readTableWithChromium(htmlFile: string): Promise<ChromiumTable> {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium package.`);
  const work = mkdtempSync(join(tmpdir(), "trainkit-flyte-chromium-"));
  try {
    const wrapper = join(work, "wrapper.html");
    writeFileSync(
      wrapper,
      `<!DOCTYPE html><html><body><pre id="out">pending</pre>
<iframe id="deck" src="${pathToFileURL(htmlFile).href}"></iframe>
<script>
document.getElementById("deck").addEventListener("load", (event) => {
  const out = document.getElementById("out");
  try {
    const frame = event.target;
    const doc = frame.contentDocument;
    const rows = [...doc.querySelectorAll("table tr")].map((row) =>
      [...row.cells].map((cell) => ({ tag: cell.tagName.toLowerCase(), text: cell.textContent })));
    const th = doc.querySelector("th");
    const result = {
      title: doc.title,
      rows,
      scripts: doc.scripts.length,
      loaders: doc.querySelectorAll("link, img, iframe, object, embed, script[src]").length,
      resources: frame.contentWindow.performance.getEntriesByType("resource").length,
      headerBackground: th ? frame.contentWindow.getComputedStyle(th).backgroundColor : "",
    };
    out.textContent = encodeURIComponent(JSON.stringify(result));
  } catch (error) {
    out.textContent = "ERROR " + encodeURIComponent(String(error));
  }
});
</script></body></html>`,
    );
    const stdout = await new Promise<string>((resolveRun, reject) => {
      execFile(
        CHROMIUM,
        [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          "--allow-file-access-from-files",
          `--user-data-dir=${join(work, "profile")}`,
          "--dump-dom",
          pathToFileURL(wrapper).href,
        ],
        { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 },
        (error, out, err) =>
          error ? reject(new Error(`chromium failed: ${error.message}\n${err}`)) : resolveRun(out),
      );
    });
    const match = /<pre id="out">([^<]*)<\/pre>/.exec(stdout);
    if (!match) throw new Error(`Chromium's DOM has no result:\n${stdout.slice(0, 2000)}`);
    const text = match[1]!;
    if (!text.startsWith("%7B"))
      throw new Error(`Chromium could not read the deck: ${decodeURIComponent(text)}`);
    return JSON.parse(decodeURIComponent(text)) as ChromiumTable;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** A cell's text as the value it stands for: "" missing, nan/inf/-inf, else a number. */
export function cellValue(text: string): number | undefined {
  if (text === "") return undefined;
  if (text === "nan") return NaN;
  if (text === "inf") return Infinity;
  if (text === "-inf") return -Infinity;
  const value = Number(text);
  if (Number.isNaN(value)) throw new Error(`the cell "${text}" is not a number`);
  return value;
}

/** A folder that cannot be written to: how it was made, and how to undo it. */
export interface Unwritable {
  path: string;
  kind: "read-only bind mount" | "full tmpfs" | "ENOTDIR (a path under a regular file)";
  cleanup: () => void;
}

function mount(args: string[]): boolean {
  try {
    execFileSync("mount", args, { stdio: "pipe" });
    return true;
  } catch {
    return false;
  }
}

function unmount(path: string): void {
  try {
    execFileSync("umount", [path], { stdio: "pipe" });
  } catch {
    execFileSync("umount", ["-l", path], { stdio: "pipe" });
  }
}

/** A path under a regular file: every write below it fails with ENOTDIR (root or not). */
function underAFile(root: string): Unwritable {
  const file = join(root, "a-regular-file");
  writeFileSync(file, "not a folder");
  return {
    path: join(file, "dest"),
    kind: "ENOTDIR (a path under a regular file)",
    cleanup: () => {},
  };
}

/**
 * A read-only bind mount (as root), else (or with `forceFallback`) a path under a regular
 * file; a fallback forced by a failed mount is said so on stderr.
 */
export function readOnlyFolder(
  root: string,
  { forceFallback = false }: { forceFallback?: boolean } = {},
): Unwritable {
  const source = join(root, "ro-source");
  const path = join(root, "ro");
  mkdirSync(source, { recursive: true });
  mkdirSync(path, { recursive: true });
  if (forceFallback) return underAFile(root);
  if (mount(["--bind", "-o", "ro", source, path]))
    return { path, kind: "read-only bind mount", cleanup: () => unmount(path) };
  console.warn("mount --bind failed (not root?): using a path under a regular file instead.");
  return underAFile(root);
}

/** A tmpfs of `sizeKb`, else the ENOTDIR fallback (said so on stderr). */
export function tinyTmpfs(root: string, sizeKb: number): Unwritable {
  const path = join(root, "tmpfs");
  mkdirSync(path, { recursive: true });
  if (mount(["-t", "tmpfs", "-o", `size=${sizeKb}k`, "tmpfs", path]))
    return { path, kind: "full tmpfs", cleanup: () => unmount(path) };
  console.warn("mount -t tmpfs failed (not root?): using a path under a regular file instead.");
  return underAFile(root);
}

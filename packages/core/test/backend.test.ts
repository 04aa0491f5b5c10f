// Backend choice: tfjs-node when the application has it, else wasm, else cpu; TRAINKIT_BACKEND
// and args.backend force one. tfjs-node cannot be installed on this machine (its install
// script downloads a binary), so the test installs a stand-in package under its name that
// registers a "tensorflow" backend, as tfjs-node does, using the cpu kernels.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, test } from "vitest";

const core = resolve(import.meta.dirname, "..");
const coreEntry = pathToFileURL(join(core, "dist/index.js")).href;
const tfjsDir = dirname(
  realpathSync(createRequire(join(core, "package.json")).resolve("@tensorflow/tfjs/package.json")),
);
const work = mkdtempSync(join(tmpdir(), "trainkit-backend-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** An application folder; with `tfjsNode`, it has a package installed as @tensorflow/tfjs-node. */
function app(name: string, tfjsNode: boolean): string {
  const dir = join(work, name);
  mkdirSync(join(dir, "node_modules/@tensorflow"), { recursive: true });
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name, private: true, type: "module" }));
  symlinkSync(tfjsDir, join(dir, "node_modules/@tensorflow/tfjs"));
  if (tfjsNode) {
    const pkg = join(dir, "node_modules/@tensorflow/tfjs-node");
    mkdirSync(pkg);
    writeFileSync(
      join(pkg, "package.json"),
      JSON.stringify({ name: "@tensorflow/tfjs-node", version: "4.22.0", main: "index.js" }),
    );
    writeFileSync(
      join(pkg, "index.js"),
      [
        `const tf = require("@tensorflow/tfjs");`,
        `const cpu = tf.findBackendFactory("cpu");`,
        `for (const kernel of tf.getKernelsForBackend("cpu")) tf.registerKernel({ ...kernel, backendName: "tensorflow" });`,
        `tf.registerBackend("tensorflow", cpu, 3);`,
        `module.exports = tf;`,
      ].join("\n"),
    );
  }
  return dir;
}

function selectIn(
  dir: string,
  env: Record<string, string> = {},
  requested = "null",
): { out: string; err: string; code: number } {
  const script = `import { selectBackend, setLogger } from ${JSON.stringify(coreEntry)};
setLogger({ info: (m) => console.log("INFO " + m), warn: (m) => console.log("WARN " + m) });
try { console.log("BACKEND " + (await selectBackend(${requested}))); } catch (e) { console.log("ERROR " + e.message); process.exitCode = 3; }`;
  try {
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
      cwd: dir,
      encoding: "utf8",
      env: { ...process.env, TRAINKIT_BACKEND: "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    return { out, err: "", code: 0 };
  } catch (error) {
    const e = error as { stdout: string; stderr: string; status: number };
    return { out: e.stdout, err: e.stderr, code: e.status };
  }
}

describe("selectBackend", () => {
  test("picks tfjs-node's backend when the application has @tensorflow/tfjs-node", () => {
    const { out } = selectIn(app("with-node", true));
    expect(out).toContain("BACKEND tensorflow");
    expect(out).toMatch(/INFO TensorFlow.js backend: tensorflow \(the fastest installed\)/);
  });

  test("falls back to wasm without tfjs-node, and says what is missing", () => {
    const { out } = selectIn(core);
    expect(out).toContain("BACKEND wasm");
    expect(out).toContain("not installed: @tensorflow/tfjs-node");
  });

  test("TRAINKIT_BACKEND forces a backend, even when a faster one is installed", () => {
    expect(selectIn(app("forced", true), { TRAINKIT_BACKEND: "cpu" }).out).toContain("BACKEND cpu");
  });

  test("args.backend forces a backend", () => {
    expect(selectIn(app("forced-arg", true), {}, '"wasm"').out).toContain("BACKEND wasm");
  });

  test("a forced backend that is not installed fails with the install command", () => {
    const { out, code } = selectIn(core, { TRAINKIT_BACKEND: "tensorflow" });
    expect(code).toBe(3);
    expect(out).toContain(
      'ERROR The TensorFlow.js backend "tensorflow" is not available. Install it in your project: npm install @tensorflow/tfjs-node',
    );
  });

  test("an unknown TRAINKIT_BACKEND is refused with the valid names", () => {
    const { out } = selectIn(core, { TRAINKIT_BACKEND: "gpu" });
    expect(out).toContain(
      'ERROR TRAINKIT_BACKEND is "gpu"; use one of tensorflow, wasm, cpu, or unset it.',
    );
  });
});

// Crashes and exits: a process killed with SIGKILL leaves a file TensorBoard reads up to the
// last write; a process that exits without close() has everything written. The Trainer case
// runs in an application of its own that finds the plugin by discovery (its package.json).
import { spawn, type ChildProcess } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { packageDir, readWithTensorBoard, repoRoot, scalarPoints } from "./helpers.js";

const work = mkdtempSync(join(tmpdir(), "trainkit-tb-process-"));
const dist = join(packageDir, "dist", "index.js");
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  rmSync(work, { recursive: true, force: true });
});

beforeAll(() => {
  if (!existsSync(dist))
    throw new Error(
      `${dist} is missing: build the package first (pnpm -r --filter "./packages/**" run build).`,
    );
});

/** Runs `node script`, calling `onLine` for each stdout line; resolves once it has exited. */
function run(
  script: string,
  {
    cwd,
    env,
    onLine,
  }: {
    cwd: string;
    env?: Record<string, string>;
    onLine?: (line: string, child: ChildProcess) => void;
  },
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [script], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let stdout = "";
  let stderr = "";
  let partial = "";
  child.stdout!.on("data", (data: Buffer) => {
    stdout += data.toString();
    partial += data.toString();
    const lines = partial.split("\n");
    partial = lines.pop()!;
    for (const line of lines) onLine?.(line, child);
  });
  child.stderr!.on("data", (data: Buffer) => (stderr += data.toString()));
  return new Promise((resolve) =>
    // "close": after the exit and after every byte of its output has been read.
    child.once("close", (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
}

describe("EventFileWriter in a child process", () => {
  const writerScript = (dir: string, end: string) => `
import { EventFileWriter } from ${JSON.stringify(pathToFileURL(dist).href)};
const writer = new EventFileWriter(${JSON.stringify(dir)}, { flushIntervalMs: 0 });
for (let i = 0; i < 500; i++) writer.addScalar("train/loss", i / 1000, i);
writer.addText("note", "before the flush", 499);
writer.flush();
console.log("FLUSHED");
for (let i = 500; i < 1000; i++) writer.addScalar("train/loss", i / 1000, i);
${end}
`;

  test("SIGKILL after a flush: readable, every record up to the flush, nothing torn", async () => {
    const dir = join(work, "killed");
    const script = join(work, "killed.mjs");
    writeFileSync(script, writerScript(dir, "setInterval(() => {}, 1000); // wait to be killed"));
    const result = await run(script, {
      cwd: work,
      onLine: (line, child) => line === "FLUSHED" && child.kill("SIGKILL"),
    });
    expect(result.signal).toBe("SIGKILL");
    const { files, runs } = readWithTensorBoard(dir);
    expect(files).toHaveLength(1);
    expect(files[0]!.end).toBe("eof");
    expect(files[0]!.records).toBe(1 + 500 + 1);
    expect(scalarPoints(files, "train/loss")).toEqual(
      Array.from({ length: 500 }, (_, i) => [i, Math.fround(i / 1000)]),
    );
    expect(runs["."]!["note/text_summary"]!.points[0]![1]).toEqual(["before the flush"]);
  });

  test("process exit without close(): the buffered records are written synchronously", async () => {
    const dir = join(work, "exited");
    const script = join(work, "exited.mjs");
    writeFileSync(script, writerScript(dir, "process.exit(3);"));
    const result = await run(script, { cwd: work });
    expect(result.code).toBe(3);
    const { files } = readWithTensorBoard(dir);
    expect(files[0]!.end).toBe("eof");
    expect(scalarPoints(files, "train/loss")).toHaveLength(1000);
  });
});

describe("a Trainer run killed mid-training", () => {
  let app: string;

  beforeAll(() => {
    // An application of its own: package.json lists the plugin; node_modules links the
    // workspace's packages (as pnpm would install them).
    app = join(work, "app");
    mkdirSync(join(app, "node_modules", "@trainkit"), { recursive: true });
    mkdirSync(join(app, "node_modules", "@tensorflow"), { recursive: true });
    symlinkSync(join(repoRoot, "packages", "core"), join(app, "node_modules", "@trainkit", "core"));
    symlinkSync(packageDir, join(app, "node_modules", "@trainkit", "callback-tensorboard"));
    symlinkSync(
      realpathSync(join(packageDir, "node_modules", "@tensorflow", "tfjs")),
      join(app, "node_modules", "@tensorflow", "tfjs"),
    );
    writeFileSync(
      join(app, "package.json"),
      JSON.stringify({
        name: "tb-app",
        private: true,
        type: "module",
        dependencies: {
          "@tensorflow/tfjs": "4.22.0",
          "@trainkit/core": "*",
          "@trainkit/callback-tensorboard": "*",
        },
      }),
    );
    writeFileSync(
      join(app, "train.mjs"),
      `
import * as tf from "@tensorflow/tfjs";
import { Trainer, TrainerCallback, TrainingArguments, setLogger } from "@trainkit/core";
setLogger({ info: (m) => console.log("info: " + m), warn: (m) => console.log("warn: " + m) });
class Announce extends TrainerCallback {
  onLog(_args, state) { console.log("LOGGED " + state.globalStep); }
}
const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 1 })] });
const rows = Array.from({ length: 64 }, (_, i) => ({ x: [i / 64, 1 - i / 64], y: i / 32 }));
const trainer = new Trainer({
  model, loss: "meanSquaredError", trainDataset: rows, callbacks: [Announce],
  args: new TrainingArguments({
    outputDir: "out", maxSteps: 1000000, loggingSteps: 1, saveStrategy: "no",
    disableTqdm: true, reportTo: ["tensorboard"], backend: "cpu",
  }),
});
await trainer.train();
`,
    );
  });

  test("discovered by reportTo; after SIGKILL the file holds every step logged before the last background write", async () => {
    let seenAtWait = -1;
    let lastSeen = -1;
    let killTimer: NodeJS.Timeout | undefined;
    const lines: string[] = [];
    const result = await run(join(app, "train.mjs"), {
      cwd: app,
      env: { TRAINKIT_TENSORBOARD_FLUSH_SECS: "0.1", TENSORBOARD_LOGGING_DIR: "" },
      onLine: (line, child) => {
        lines.push(line);
        const m = /^LOGGED (\d+)$/.exec(line);
        if (!m) return;
        lastSeen = Number(m[1]);
        if (lastSeen >= 30 && killTimer === undefined) {
          seenAtWait = lastSeen;
          // Several background writes (every 100 ms) happen before the kill.
          killTimer = setTimeout(() => child.kill("SIGKILL"), 800);
        }
      },
    });
    expect(result.signal, result.stderr).toBe("SIGKILL");
    expect(lines.find((l) => l.includes("Integrations:"))).toContain(
      "tensorboard [@trainkit/callback-tensorboard@0.1.0]",
    );
    const runs = readdirSync(join(app, "out", "runs"));
    expect(runs).toHaveLength(1);
    const { files } = readWithTensorBoard(join(app, "out", "runs", runs[0]!));
    expect(files).toHaveLength(1);
    // Whole records only (a write cut by the kill could only shorten the tail).
    expect(files[0]!.end === "eof" || files[0]!.end.startsWith("truncated")).toBe(true);
    const steps = scalarPoints(files, "train/loss").map(([step]) => step);
    expect(steps.length).toBeGreaterThanOrEqual(seenAtWait);
    expect(steps).toEqual(Array.from({ length: steps.length }, (_, i) => i + 1));
    expect(steps.length).toBeLessThanOrEqual(lastSeen);
    const texts = files[0]!.events.flatMap((e) => e.values ?? []).map((v) => v.tag);
    expect(texts).toContain("args/text_summary");
    expect(texts).toContain("_hparams_/session_start_info");
  });
});

// Talking to the real TensorBoard: its Python reader (test/python/read_events.py) and its
// server, both from the repository's pinned .venv (tools/python/requirements.txt).
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";

export const packageDir = resolve(import.meta.dirname, "..");
export const repoRoot = resolve(packageDir, "..", "..");
const venvBin = join(repoRoot, ".venv", "bin");
export const python = join(venvBin, "python");

if (!existsSync(python))
  throw new Error(
    `${python} is missing: run \`node tools/python/ensure-venv.mjs\` (pnpm test does) to install the pinned TensorBoard.`,
  );

export interface ReadValue {
  tag: string;
  kind: "simple_value" | "tensor" | "histo" | null;
  plugin?: string;
  content?: string;
  hparams_data?: Record<string, unknown>;
  value?: number | "NaN" | "Infinity" | "-Infinity";
  dtype?: number;
  shape?: number[];
  strings?: string[];
  histo?: Record<string, number | number[]>;
}

export interface ReadEvent {
  wall_time: number;
  step: number;
  file_version?: string;
  values?: ReadValue[];
}

export interface ReadFile {
  path: string;
  records: number;
  end: string;
  events: ReadEvent[];
}

export interface RunTag {
  plugin: string;
  content: string;
  hparams_data: Record<string, unknown> | null;
  /** [step, value (number, or strings for text), wall_time] */
  points: [number, unknown, number][];
}

export interface ReadResult {
  files: ReadFile[];
  /** Run (directory relative to the logdir, "." for the logdir itself) → tag → data. */
  runs: Record<string, Record<string, RunTag>>;
}

/**
 * Every event file under `logdir`, read by TensorBoard's CRC-checking record reader and its
 * EventAccumulator. Throws if any record fails its CRC.
 */
export function readWithTensorBoard(logdir: string): ReadResult {
  const out = execFileSync(python, [join(packageDir, "test/python/read_events.py"), logdir], {
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
  });
  return JSON.parse(out) as ReadResult;
}

/** tensorboardX's histogram of `values` (torch's default buckets), as a plain object. */
export function tensorboardXHistogram(values: number[]): Record<string, number | number[]> {
  const out = execFileSync(python, [join(packageDir, "test/python/tbx_histogram.py")], {
    input: JSON.stringify(values),
    encoding: "utf8",
  });
  return JSON.parse(out) as Record<string, number | number[]>;
}

/** The scalars of one tag as [step, value] pairs, in file order, over the given files. */
export function scalarPoints(files: ReadFile[], tag: string): [number, number | string][] {
  const points: [number, number | string][] = [];
  for (const file of files)
    for (const event of file.events)
      for (const value of event.values ?? [])
        if (value.tag === tag && value.kind === "simple_value")
          points.push([event.step, value.value!]);
  return points;
}

/** The texts of one tag of a run (each point's single string), in order. */
export function textsOf(tag: RunTag): string[] {
  return tag.points.map(([, value]) => (value as string[])[0]!);
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

export interface TensorBoardServer {
  url: string;
  process: ChildProcess;
  output: () => string;
  stop: () => Promise<void>;
}

/** Starts `tensorboard --logdir <logdir>` on a free port of 127.0.0.1 and waits until it answers. */
export async function startTensorBoard(
  logdir: string,
  { timeoutMs = 60_000 }: { timeoutMs?: number } = {},
): Promise<TensorBoardServer> {
  const port = await freePort();
  let output = "";
  // Its own process group, so that stopping it also stops the data server it starts.
  const child = spawn(
    join(venvBin, "tensorboard"),
    [
      "--logdir",
      logdir,
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      // Keep every point (TensorBoard's default downsamples to 1000). Not "scalars=0": in
      // 2.21 the Rust data server reads 0 as "keep none", unlike the Python reader.
      "--samples_per_plugin",
      "scalars=100000",
    ],
    { detached: true, stdio: ["ignore", "pipe", "pipe"] },
  );
  child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolveExit) => child.once("exit", () => resolveExit()));
  const server: TensorBoardServer = {
    url: `http://127.0.0.1:${port}`,
    process: child,
    output: () => output,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-child.pid!, "SIGTERM");
      } catch {
        return;
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid!, "SIGKILL");
        } catch {
          // already gone
        }
      }, 5000);
      await exited;
      clearTimeout(timer);
    },
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`tensorboard exited with code ${child.exitCode}:\n${output}`);
    try {
      const response = await fetch(`${server.url}/data/runs`);
      if (response.ok) return server;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`tensorboard did not answer within ${timeoutMs} ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Polls `get` until `done(value)` (TensorBoard loads event files in the background). */
export async function waitFor<T>(
  get: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await get();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 250));
  }
}

export async function getJson<T = unknown>(url: string, body?: unknown): Promise<T> {
  const response = await fetch(
    url,
    body === undefined
      ? undefined
      : {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
        },
  );
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

/** Collects warnings and notices, as the plugin context's logger. */
export function captureLogger() {
  const warnings: string[] = [];
  const infos: string[] = [];
  return {
    warnings,
    infos,
    logger: { info: (m: string) => infos.push(m), warn: (m: string) => warnings.push(m) },
  };
}

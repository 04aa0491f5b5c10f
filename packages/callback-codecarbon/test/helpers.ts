// Shared test helpers: the real codecarbon (pinned in tools/python/requirements.txt, installed
// in the repository's .venv), a logger that records, and fakes of the machine.
import { execFileSync, spawn } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll } from "vitest";
import type { Clock, SystemProbes } from "../src/index.js";

export const packageDir = resolve(import.meta.dirname, "..");
export const repoRoot = resolve(packageDir, "..", "..");
export const python = join(repoRoot, ".venv", "bin", "python");
export const sitePackagesData = join(
  repoRoot,
  ".venv/lib/python3.11/site-packages/codecarbon/data",
);

if (!existsSync(python))
  throw new Error(
    `${python} is missing: run \`node tools/python/ensure-venv.mjs\` (pnpm test does) to install the pinned codecarbon.`,
  );

/** An environment for Python children: no CODECARBON_* settings, a home without config. */
export function pythonEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env))
    if (!key.toLowerCase().startsWith("codecarbon_")) env[key] = value;
  return { ...env, HOME: home, PYTHONDONTWRITEBYTECODE: "1" };
}

const scratchDirs: string[] = [];
// Each test file evaluates this module afresh: the hook cleans up after that file.
afterAll(() => {
  for (const dir of scratchDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A new temporary folder, removed after the test file. */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  scratchDirs.push(dir);
  return dir;
}

/** The Python children's home and working folder: no ~/.codecarbon.config can leak in. */
const scratchHome = scratchDir("trainkit-cc-home-");

/** codecarbon's own answer to a rules request (see test/python/codecarbon_rules.py). */
export function codecarbonRules<T>(request: Record<string, unknown>): T {
  const out = execFileSync(python, [join(packageDir, "test/python/codecarbon_rules.py")], {
    input: JSON.stringify(request),
    encoding: "utf8",
    cwd: scratchHome,
    env: pythonEnv(scratchHome),
    stdio: ["pipe", "pipe", "pipe"],
  });
  return JSON.parse(out) as T;
}

export interface PandasFrame {
  columns: string[];
  dtypes: Record<string, string>;
  rows: Array<Record<string, unknown>>;
}

/** The CSV files as pandas.read_csv reads them. */
export function readWithPandas(...paths: string[]): PandasFrame[] {
  const out = execFileSync(python, [join(packageDir, "test/python/read_csv.py"), ...paths], {
    encoding: "utf8",
    cwd: scratchHome,
    env: pythonEnv(scratchHome),
    stdio: ["pipe", "pipe", "pipe"],
  });
  return JSON.parse(out) as PandasFrame[];
}

/**
 * codecarbon's FileOutput writes `rows` (EmissionsData fields) into `dir/file`, one after the
 * other; with `oldFile`, that text replaces the file before each row.
 */
export function codecarbonWritesRows(
  dir: string,
  file: string,
  rows: Array<Record<string, unknown>>,
  { mode = "append", oldFile }: { mode?: "append" | "update"; oldFile?: string } = {},
): void {
  execFileSync(python, [join(packageDir, "test/python/file_output.py"), dir, file, mode], {
    input: JSON.stringify({ rows, old_file: oldFile ?? null }),
    encoding: "utf8",
    cwd: scratchHome,
    env: pythonEnv(scratchHome),
    stdio: ["pipe", "pipe", "pipe"],
  });
}

/** The real OfflineEmissionsTracker, running in a child until `stop()`. */
export async function startOfflineTracker(
  outputDir: string,
  country: string,
  measureSecs: number,
  mode: "machine" | "process" = "machine",
): Promise<{ stop: () => Promise<string> }> {
  const child = spawn(
    python,
    [
      join(packageDir, "test/python/offline_tracker.py"),
      outputDir,
      country,
      String(measureSecs),
      mode,
    ],
    { cwd: scratchHome, env: pythonEnv(scratchHome), stdio: ["pipe", "pipe", "pipe"] },
  );
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  await new Promise<void>((resolveStarted, reject) => {
    const timer = setInterval(() => {
      if (stdout.includes("started\n")) {
        clearInterval(timer);
        resolveStarted();
      }
    }, 10);
    void exited.then((code) => {
      clearInterval(timer);
      reject(new Error(`codecarbon exited early (${code}): ${stderr}`));
    });
  });
  return {
    stop: async () => {
      child.stdin.end("stop\n");
      const code = await exited;
      if (code !== 0) throw new Error(`codecarbon failed (${code}): ${stderr}`);
      return stdout.trim().split("\n").at(-1)!;
    },
  };
}

/** Records what the plugin says. */
export function captureLogger() {
  const warnings: string[] = [];
  const infos: string[] = [];
  return {
    warnings,
    infos,
    logger: { info: (m: string) => infos.push(m), warn: (m: string) => warnings.push(m) },
  };
}

/** A clock the test moves by hand. */
export function manualClock(start = new Date(2026, 0, 2, 3, 4, 5)): Clock & {
  advance(seconds: number): void;
} {
  let ms = 1000;
  let wall = start.getTime();
  return {
    now: () => ms,
    date: () => new Date(wall),
    advance(seconds: number) {
      ms += seconds * 1000;
      wall += seconds * 1000;
    },
  };
}

/** A machine with fixed answers; `load` sets the busy share the next CPU-time readings show. */
export function fakeSystem(overrides: Partial<SystemProbes> = {}) {
  let busy = 0;
  let total = 0;
  let loadPercent = 0;
  const system: SystemProbes & { setLoad(percent: number): void; tick(seconds: number): void } = {
    cpuModel: () => "Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz",
    cpuCount: () => 8,
    cpuSockets: async () => 1,
    cpuTimes: async () => ({ busy, total }),
    processCpuSeconds: () => 0,
    totalMemoryBytes: () => 16 * 1024 ** 3,
    availableMemoryBytes: () => 12 * 1024 ** 3,
    processRssBytes: () => 1024 ** 3,
    machine: () => "x86_64",
    osDescription: () => "Linux-test-x86_64",
    setLoad: (percent: number) => (loadPercent = percent),
    /** CPU time passes: `seconds` on each of the 8 CPUs at the current load. */
    tick: (seconds: number) => {
      total += seconds * 8;
      busy += (seconds * 8 * loadPercent) / 100;
    },
    ...overrides,
  };
  return system;
}

/**
 * A fake `nvidia-smi` in a new folder, answering trainkit's two queries (csv,noheader,nounits)
 * from the given lines; `"fail"` makes the sample query fail as a driver problem does. With
 * `-lms <ms>` after the sample query it keeps printing the sample lines every <ms> until killed
 * (its pid in `streamPid()`), or until `crash()` makes it fail as a driver problem does.
 * `set()` changes the answers of later calls (a running stream keeps its lines).
 */
export function fakeNvidiaSmi(devices: string[] | "fail", samples: string[] | "fail") {
  const dir = scratchDir("trainkit-fake-smi-");
  const path = join(dir, "nvidia-smi");
  const failure = `echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver." >&2; exit 9`;
  // `|| exit 141`: like nvidia-smi, the stream ends when its reader is gone (SIGPIPE)
  const answer = (lines: string[] | "fail", streaming = false) =>
    lines === "fail"
      ? failure
      : `cat <<'CSV'${streaming ? " || exit 141" : ""}\n${lines.join("\n")}\nCSV`;
  const set = (deviceLines: string[] | "fail", sampleLines: string[] | "fail") => {
    // written aside and renamed over, so a run in progress never reads half a script
    writeFileSync(
      `${path}.new`,
      `#!/bin/sh
echo "$@" >> "${dir}/calls.log"
case "$1" in
  --query-gpu=index,uuid,name)
${answer(deviceLines)}
  ;;
  --query-gpu=index,power.draw,utilization.gpu)
    if [ "$3" = "-lms" ]; then
      echo $$ >> "${dir}/streams.pid"
      seconds=$(awk "BEGIN { print $4 / 1000 }")
      while :; do
        if [ -e "${dir}/crash" ]; then
          echo "Unable to determine the device handle for GPU 0000:3B:00.0: Unknown Error" >&2
          exit 15
        fi
${answer(sampleLines, true)}
        sleep "$seconds"
      done
    fi
${answer(sampleLines)}
  ;;
  *) echo "unexpected query: $*" >&2; exit 2 ;;
esac
`,
    );
    chmodSync(`${path}.new`, 0o755);
    renameSync(`${path}.new`, path);
  };
  set(devices, samples);
  const readOr = (file: string, fallback: string) =>
    existsSync(join(dir, file)) ? readFileSync(join(dir, file), "utf8") : fallback;
  return {
    dir,
    path,
    set,
    calls: () => readOr("calls.log", ""),
    /** The pids of the -lms children started so far. */
    streamPids: () => readOr("streams.pid", "").split("\n").filter(Boolean).map(Number),
    /** Makes every running -lms child fail at its next line. */
    crash: () => writeFileSync(join(dir, "crash"), ""),
  };
}

/** Whether a process is still running (a zombie awaiting its reaping counts as gone). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** Waits until `condition()` holds, polling, for at most `ms`; returns whether it held. */
export async function waitFor(condition: () => boolean, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

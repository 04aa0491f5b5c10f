// Starts the real MLflow tracking server (from the repo's Python venv) on 127.0.0.1 with a sqlite
// backend and proxied artifacts, for integration tests and benchmarks. The server can be stopped,
// killed and started again on the same port and data, to play "the tracker went away mid-run".
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, isPortFree } from "./free-port.js";

export interface MlflowServerOptions {
  /** Port on 127.0.0.1; a free one by default. */
  port?: number;
  /** Holds mlflow.db and artifacts/; a fresh temp folder (removed at process exit) by default. */
  dir?: string;
  /** The `mlflow` executable; default $TRAINKIT_MLFLOW_BIN, else <repo root>/.venv/bin/mlflow. */
  mlflowBin?: string;
  /** Extra environment for the server (over process.env and this module's defaults). */
  env?: Record<string, string>;
  /** How long start() waits for the server to answer; default 90 s. */
  startTimeoutMs?: number;
  /** uvicorn worker processes; default 1 (nothing to chase when stopping). MLflow's own is 4. */
  workers?: number;
}

export interface MlflowServer {
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  dir: string;
  /** Start again after stop()/kill(), same port, same database and artifacts. No-op if running. */
  start(): Promise<void>;
  /** SIGTERM to the server's process group, SIGKILL after 5 s; resolves when the port is free. */
  stop(): Promise<void>;
  /** stop() then start(): a server restarted mid-run, keeping its data. */
  restart(): Promise<void>;
  /** SIGKILL the whole process group and leave it down (a crash, no graceful shutdown). */
  kill(): Promise<void>;
  /** The last lines the server printed (stdout and stderr), for diagnosing a failing test. */
  logs(): string;
}

const STOP_GRACE_MS = 5_000;
const LOG_TAIL_CHARS = 16_000;

// Server environment defaults, each overridable by process.env or options.env:
// - job execution (huey consumers for GenAI jobs) is useless to tracking tests, costs seven
//   extra Python processes and a /dev/shm folder that a SIGKILL leaves behind;
// - no telemetry calls home from a test machine.
const SERVER_ENV_DEFAULTS: Record<string, string> = {
  MLFLOW_SERVER_ENABLE_JOB_EXECUTION: "false",
  MLFLOW_DISABLE_TELEMETRY: "true",
  DO_NOT_TRACK: "true",
};

/** The folder holding pnpm-workspace.yaml, above this file or the working directory. */
export function findRepoRoot(): string | undefined {
  const starts = [dirname(fileURLToPath(import.meta.url)), process.cwd()];
  for (const start of starts) {
    for (let dir = resolve(start); ; dir = dirname(dir)) {
      if (existsSync(join(dir, "pnpm-workspace.yaml"))) return dir;
      if (dirname(dir) === dir) break;
    }
  }
  return undefined;
}

export function resolveMlflowBin(explicit?: string): string {
  const root = findRepoRoot();
  const bin =
    explicit ??
    process.env.TRAINKIT_MLFLOW_BIN ??
    (root ? join(root, ".venv/bin/mlflow") : undefined);
  if (!bin || !existsSync(bin)) {
    throw new Error(
      `MLflow not found${bin ? ` at ${bin}` : ""}. Install the pinned Python peers with ` +
        "`node tools/python/ensure-venv.mjs` (creates .venv), or point TRAINKIT_MLFLOW_BIN at an " +
        "`mlflow` executable.",
    );
  }
  return bin;
}

// ---- process-group bookkeeping: no server may outlive the test process ----

const liveGroups = new Set<number>();
const dirsToRemove = new Set<string>();
let cleanupInstalled = false;

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

function cleanUpNow(): void {
  for (const pgid of liveGroups) killGroup(pgid, "SIGKILL");
  liveGroups.clear();
  for (const dir of dirsToRemove) rmSync(dir, { recursive: true, force: true });
  dirsToRemove.clear();
}

function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on("exit", cleanUpNow);
  // A signal skips 'exit': clean up, then let the signal do what it would have done
  // (re-raise it if nobody else handles it).
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = () => {
      cleanUpNow();
      if (process.listenerCount(signal) === 1) {
        process.off(signal, onSignal);
        process.kill(process.pid, signal);
      }
    };
    process.on(signal, onSignal);
  }
}

// The server runs under `sh`, which starts a watchdog and then execs mlflow (so mlflow leads the
// process group). The watchdog SIGKILLs the group when the test process disappears without
// running its exit hooks (e.g. it was SIGKILLed), first removing the temporary folder the exit
// hook would have removed; it also sweeps the group when mlflow itself died and left workers.
const WATCHDOG_SCRIPT = [
  "parent=$1; own_dir=$2; shift 2; (",
  '  while kill -0 "$parent" 2>/dev/null && kill -0 $$ 2>/dev/null; do sleep 1; done',
  '  if [ -n "$own_dir" ] && ! kill -0 "$parent" 2>/dev/null; then rm -rf "$own_dir"; fi',
  "  kill -KILL 0",
  ') >/dev/null 2>&1 </dev/null & exec "$@"',
].join("\n");

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

async function waitForPortFree(port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await isPortFree(port)) return true;
    await sleep(50);
  }
  return false;
}

export async function startMlflowServer(options: MlflowServerOptions = {}): Promise<MlflowServer> {
  const bin = resolveMlflowBin(options.mlflowBin);
  const port = options.port ?? (await freePort());
  const dir = resolve(options.dir ?? mkdtempSync(join(tmpdir(), "trainkit-mlflow-")));
  if (options.dir) mkdirSync(dir, { recursive: true });
  else {
    installCleanup();
    dirsToRemove.add(dir);
  }
  const url = `http://127.0.0.1:${port}`;
  const startTimeoutMs = options.startTimeoutMs ?? 90_000;
  const args = [
    "server",
    "--backend-store-uri",
    `sqlite:///${join(dir, "mlflow.db")}`,
    "--serve-artifacts",
    "--artifacts-destination",
    join(dir, "artifacts"),
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "--workers",
    String(options.workers ?? 1),
  ];
  const env = { ...SERVER_ENV_DEFAULTS, ...process.env, ...options.env };

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let output = "";
  const record = (chunk: Buffer) => {
    output = (output + chunk.toString("utf8")).slice(-LOG_TAIL_CHARS);
  };
  const tail = () => output.trimEnd().split("\n").slice(-30).join("\n");

  async function waitUntilReady(proc: ChildProcess, procExited: Promise<void>): Promise<void> {
    const deadline = Date.now() + startTimeoutMs;
    let gone = false;
    void procExited.then(() => (gone = true));
    while (!gone) {
      if (Date.now() > deadline) {
        throw new Error(
          `MLflow server on ${url} did not answer /health within ${startTimeoutMs / 1000} s. ` +
            `Output:\n${tail()}`,
        );
      }
      try {
        const health = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) });
        if (health.ok) break;
      } catch {
        // Not listening yet.
      }
      await sleep(150);
    }
    if (gone) {
      throw new Error(
        `MLflow server exited during startup (code ${proc.exitCode}, signal ${proc.signalCode}). ` +
          `Output:\n${tail()}`,
      );
    }
    // /health skips the server's Host check; make sure the REST API accepts us too.
    const probe = await fetch(
      `${url}/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default`,
    );
    if (!probe.ok) {
      throw new Error(
        `MLflow server on ${url} is up but its REST API answered ${probe.status}: ` +
          `${await probe.text()}\nOutput:\n${tail()}`,
      );
    }
  }

  async function start(): Promise<void> {
    if (child) return;
    // uvicorn would only notice after ~8 s of Python imports, and then exit with status 0.
    if (!(await isPortFree(port))) {
      throw new Error(`cannot start MLflow server: port ${port} on 127.0.0.1 is already in use`);
    }
    installCleanup();
    const proc = spawn(
      "/bin/sh",
      [
        "-c",
        WATCHDOG_SCRIPT,
        "mlflow-server",
        String(process.pid),
        dirsToRemove.has(dir) ? dir : "",
        bin,
        ...args,
      ],
      {
        cwd: dir,
        env,
        detached: true, // its own process group, so signals reach uvicorn too
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const pgid = proc.pid;
    if (pgid === undefined) {
      const failure = await new Promise<Error>((done) => proc.once("error", done));
      throw new Error(`could not start ${bin}: ${failure.message}`);
    }
    child = proc;
    liveGroups.add(pgid);
    exited = new Promise<void>((done) => {
      const onGone = () => {
        // The leader is gone; sweep whatever it left in its group.
        killGroup(pgid, "SIGKILL");
        liveGroups.delete(pgid);
        if (child === proc) child = undefined;
        done();
      };
      proc.once("exit", onGone);
      proc.once("error", (error) => {
        record(Buffer.from(`spawn failed: ${error.message}\n`));
        onGone();
      });
    });
    proc.stdout?.on("data", record);
    proc.stderr?.on("data", record);
    // Do not keep the test process alive for the server: its exit hook ends the server.
    proc.unref();
    for (const stream of [proc.stdout, proc.stderr]) {
      (stream as unknown as { unref?: () => void } | null)?.unref?.();
    }
    try {
      await waitUntilReady(proc, exited);
    } catch (error) {
      killGroup(pgid, "SIGKILL");
      await exited;
      throw error;
    }
  }

  async function terminate(signal: "SIGTERM" | "SIGKILL"): Promise<void> {
    const proc = child;
    if (!proc?.pid) return;
    const pgid = proc.pid;
    const procExited = exited;
    killGroup(pgid, signal);
    // SIGKILL whatever still runs after the grace period.
    const escalation = setTimeout(() => killGroup(pgid, "SIGKILL"), STOP_GRACE_MS);
    await procExited;
    clearTimeout(escalation);
    if (!(await waitForPortFree(port, STOP_GRACE_MS))) {
      throw new Error(`MLflow server stopped but port ${port} is still taken. Output:\n${tail()}`);
    }
  }

  await start();
  return {
    url,
    port,
    dir,
    start,
    stop: () => terminate("SIGTERM"),
    kill: () => terminate("SIGKILL"),
    async restart() {
      await terminate("SIGTERM");
      await start();
    },
    logs: () => output,
  };
}

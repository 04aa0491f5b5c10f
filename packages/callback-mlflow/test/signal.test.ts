// SIGTERM during training: the run ends KILLED, what was queued is delivered, and the process
// still terminates by the signal.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { mlflowRest, startMlflowServer, type MlflowServer } from "@trainkit/testkit";
import { afterAll, beforeAll, expect, test } from "vitest";
import { readFileSync, readdirSync } from "node:fs";

const packageDir = resolve(import.meta.dirname, "..");
const work = mkdtempSync(join(tmpdir(), "trainkit-mlflow-signal-"));
let server: MlflowServer;

beforeAll(async () => {
  server = await startMlflowServer();
}, 120_000);
afterAll(async () => {
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});

test("SIGTERM: run KILLED, queued metrics delivered, the process dies by the signal", async () => {
  const experiment = `signal-${Date.now()}`;
  // tsx as a loader (not its CLI, which runs the script in a child and relays signals).
  const script = join(packageDir, "test/fixtures/killed-run.ts");
  const child = spawn(process.execPath, ["--import", "tsx", script, join(work, "out")], {
    cwd: packageDir,
    env: {
      ...process.env,
      MLFLOW_TRACKING_URI: server.url,
      MLFLOW_EXPERIMENT_NAME: experiment,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.on("exit", (code, signal) => done({ code, signal })),
  );
  expect(exit, output).toEqual({ code: null, signal: "SIGTERM" });
  const rest = mlflowRest(server.url);
  const found = await rest.getExperimentByName(experiment);
  expect(found, output).toBeDefined();
  const runs = await rest.searchRuns([found!.experiment_id]);
  expect(runs).toHaveLength(1);
  expect(runs[0]!.info.status).toBe("KILLED");
  const steps = (await rest.metricHistory(runs[0]!.info.run_id, "loss")).map((p) => p.step);
  // The signal came in step 3's onStepEnd, before its log: steps 1 and 2, nothing after.
  expect(steps).toEqual([1, 2]);
}, 120_000);

function runFixture(args: string[], env: Record<string, string>) {
  const script = join(packageDir, "test/fixtures/lifecycle.ts");
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], {
    cwd: packageDir,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
  }>((done) => child.on("exit", (code, signal) => done({ code, signal, stdout, stderr })));
}

test("SIGTERM with two open runs and an app listener: both KILLED and drained, the app's handler runs once and decides", async () => {
  const experiment = `signal-app-${Date.now()}`;
  const out = join(work, "app");
  const result = await runFixture(["app-signal", out], {
    MLFLOW_TRACKING_URI: server.url,
    MLFLOW_EXPERIMENT_NAME: experiment,
  });
  const output = result.stdout + result.stderr;
  expect({ code: result.code, signal: result.signal }, output).toEqual({ code: 3, signal: null });
  expect(result.stdout).toContain("app handler calls: 1");
  const rest = mlflowRest(server.url);
  const found = await rest.getExperimentByName(experiment);
  const runs = await rest.searchRuns([found!.experiment_id]);
  expect(runs.map((r) => r.info.status).sort(), output).toEqual(["KILLED", "KILLED"]);
  const histories = await Promise.all(
    runs.map(async (r) => ({
      loss: (await rest.metricHistory(r.info.run_id, "loss")).map((p) => p.step),
      eval: (await rest.metricHistory(r.info.run_id, "eval_loss")).length,
    })),
  );
  expect(histories).toContainEqual({ loss: [1, 2], eval: 0 });
  expect(histories).toContainEqual({ loss: [], eval: 1 });
}, 120_000);

test("process.exit() with records still pending: one line per spool with the count, the folder and `trainkit sync`", async () => {
  const out = join(work, "exit");
  const result = await runFixture(["exit", out], { MLFLOW_TRACKING_URI: "http://127.0.0.1:9" });
  expect(result.code, result.stderr).toBe(0);
  const [stream] = readdirSync(join(out, ".trainkit", "outbox", "mlflow"));
  const spool = join(out, ".trainkit", "outbox", "mlflow", stream!);
  const lines = result.stderr.split("\n").filter((l) => /before the process exited/.test(l));
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/mlflow: \d+ record\(s\) not delivered/);
  expect(lines[0]).toContain(spool);
  expect(lines[0]).toContain(`trainkit sync ${out}`);
  expect(readFileSync(join(spool, "meta.json"), "utf8")).toContain("127.0.0.1:9");
}, 120_000);

// SIGTERM during training: the run ends KILLED, what was queued is delivered, and the process
// still terminates by the signal.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { mlflowRest, startMlflowServer, type MlflowServer } from "@trainkit/testkit";
import { afterAll, beforeAll, expect, test } from "vitest";

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

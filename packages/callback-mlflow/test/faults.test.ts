// Fault injection between the callback and the real MLflow server (testkit's proxy): the server
// down at start, killed mid-run and restarted, 500 and 503 bursts, 429 with Retry-After, 2 s of
// latency, connections reset after the server applied a request (also on runs/create), and a
// tracker down for the whole run delivered later by the `trainkit sync` command. In every case
// training completes, and the server ends up with exactly the points the run logged: each
// (key, step, value) once, none missing, one run per training.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import * as tf from "@tensorflow/tfjs";
import { Trainer, TrainerCallback, TrainingArguments, setLogger } from "@trainkit/core";
import { listOutboxes } from "@trainkit/core/plugin";
import {
  mlflowRest,
  startFaultProxy,
  startMlflowServer,
  type FaultPlan,
  type FaultProxy,
  type MlflowServer,
} from "@trainkit/testkit";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "vitest";
import mlflow, { sanitizeMetricKey } from "../src/index.js";
import { captureLogger, type Captured } from "./helpers.js";

const work = mkdtempSync(join(tmpdir(), "trainkit-mlflow-faults-"));
const savedEnv = { ...process.env };
let server: MlflowServer;
let proxy: FaultProxy;
let rest: ReturnType<typeof mlflowRest>;
let log: Captured;
let n = 0;

beforeAll(async () => {
  await tf.setBackend("cpu");
  server = await startMlflowServer();
  proxy = await startFaultProxy({ target: server.url });
  rest = mlflowRest(server.url);
}, 120_000);
afterAll(async () => {
  await proxy?.stop();
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});
beforeEach(() => {
  for (const key of Object.keys(process.env))
    if (key.startsWith("MLFLOW_") || key.startsWith("HF_MLFLOW")) delete process.env[key];
  process.env.MLFLOW_TRACKING_URI = proxy.url;
  process.env.MLFLOW_EXPERIMENT_NAME = `faults-${++n}-${Date.now()}`;
  // Fast retries so a test takes seconds: 50 ms doubling, small jitter.
  process.env.MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR = "0.05";
  process.env.MLFLOW_HTTP_REQUEST_BACKOFF_JITTER = "0.01";
  process.env.TRAINKIT_OUTBOX_DEADLINE_MS = "60000";
  proxy.setFaults({});
  log = captureLogger();
  setLogger(log.logger);
});
afterEach(() => {
  setLogger();
  process.env = { ...savedEnv };
});

const rows = Array.from({ length: 64 }, (_, i) => ({ x: [i / 64, 1 - i / 64], y: i / 32 }));

/** Runs `atStep` actions as training passes those steps (never awaited: training goes on). */
class StepActions extends TrainerCallback {
  constructor(private readonly actions: Record<number, () => unknown>) {
    super();
  }
  override onStepEnd(_a: unknown, state: { globalStep: number }) {
    void this.actions[state.globalStep]?.();
  }
}

async function train(outputDir: string, actions: Record<number, () => unknown> = {}) {
  const trainer = new Trainer({
    model: tf.sequential({
      layers: [tf.layers.dense({ inputShape: [2], units: 1, kernelInitializer: "ones" })],
    }),
    loss: "meanSquaredError",
    trainDataset: rows,
    evalDataset: rows.slice(0, 16),
    plugins: [mlflow],
    callbacks: [new StepActions(actions)],
    args: new TrainingArguments({
      outputDir,
      perDeviceTrainBatchSize: 4,
      numTrainEpochs: 3, // 48 steps
      loggingSteps: 1,
      evalStrategy: "steps",
      evalSteps: 12,
      saveStrategy: "no",
      disableTqdm: true,
      reportTo: ["mlflow"],
      backend: "cpu",
    }),
  });
  await trainer.train(); // completes whatever the tracker does
  const points: string[] = [];
  for (const entry of trainer.state.logHistory)
    for (const [key, value] of Object.entries(entry))
      if (key !== "step" && typeof value === "number")
        points.push(`${sanitizeMetricKey(key)}@${entry.step as number}=${value}`);
  trainer.dispose();
  return points.sort();
}

/** Every point of the experiment's only run, as key@step=value, sorted. */
async function serverPoints(): Promise<{ points: string[]; status: string }> {
  const experiment = await rest.getExperimentByName(process.env.MLFLOW_EXPERIMENT_NAME!);
  const runs = await rest.searchRuns([experiment!.experiment_id]);
  expect(runs).toHaveLength(1); // runs/create was never repeated
  const all = await rest.allMetricPoints(runs[0]!.info.run_id);
  const points = Object.values(all).flatMap((list) =>
    list.map((p) => `${p.key}@${p.step}=${p.value}`),
  );
  return { points: points.sort(), status: runs[0]!.info.status };
}

/**
 * The server holds the points the run logged, none lost, none twice. MLflow stores identical
 * (key, step, value, timestamp) rows once, so a point the Trainer logged twice in the same
 * millisecond (epoch at a step that both logs and evaluates) may be stored once: each point
 * appears at least once and never more often than it was logged.
 */
async function expectExactlyDelivered(logged: string[]) {
  const { points, status } = await serverPoints();
  expect([...new Set(points)]).toEqual([...new Set(logged)]);
  const count = (list: string[]) =>
    list.reduce((m, p) => m.set(p, (m.get(p) ?? 0) + 1), new Map<string, number>());
  const loggedCount = count(logged);
  for (const [point, times] of count(points))
    expect(times, point).toBeLessThanOrEqual(loggedCount.get(point)!);
  expect(status).toBe("FINISHED");
  expect(log.warnings.filter((w) => /rejected/.test(w))).toEqual([]);
}

const onLogBatch = (method: string, path: string) =>
  method === "POST" && path.includes("/runs/log-batch");

describe("faults between the callback and a real MLflow server", () => {
  test("server unreachable at start, back 3 s later (after training ended)", async () => {
    process.env.MLFLOW_HTTP_REQUEST_MAX_RETRIES = "1"; // report the outage at the first failure
    await proxy.down();
    const back = new Promise((done) => setTimeout(done, 3000)).then(() => proxy.up());
    const logged = await train(join(work, "down-at-start"));
    await back;
    await expectExactlyDelivered(logged);
    expect(log.warnings.some((w) => w.includes("cannot reach the tracker"))).toBe(true);
  }, 120_000);

  test("server killed mid-run and restarted", async () => {
    let restarted: Promise<void> | undefined;
    let killed: Promise<void> | undefined;
    try {
      const logged = await train(join(work, "killed"), {
        8: () => (killed = server.kill()),
        20: () => (restarted = killed!.then(() => server.start())),
      });
      await restarted;
      await expectExactlyDelivered(logged);
    } finally {
      await restarted?.catch(() => {});
      await server.start().catch(() => {}); // whatever happened, the next test needs it
    }
  }, 120_000);

  test.each<[string, FaultPlan]>([
    ["500 burst", { statusBurst: { status: 500, count: 6 } }],
    ["503 burst", { statusBurst: { status: 503, count: 5 } }],
    ["429 with Retry-After", { tooManyRequests: { count: 3, retryAfterSeconds: 1 } }],
  ])(
    "%s",
    async (_name, plan) => {
      proxy.setFaults({ ...plan, match: onLogBatch });
      const before = { ...proxy.stats.injected };
      const logged = await train(join(work, `burst-${n}`));
      await expectExactlyDelivered(logged);
      const injected = Object.values(proxy.stats.injected).reduce((a, b) => a + b, 0);
      expect(injected).toBeGreaterThan(Object.values(before).reduce((a, b) => a + b, 0));
    },
    120_000,
  );

  test("429: the next attempt waits for Retry-After", async () => {
    const arrivals: number[] = [];
    proxy.setFaults({
      tooManyRequests: { count: 1, retryAfterSeconds: 2 },
      match: (method, path) => {
        if (!onLogBatch(method, path)) return false;
        arrivals.push(performance.now());
        return true;
      },
    });
    const logged = await train(join(work, "retry-after"));
    await expectExactlyDelivered(logged);
    expect(arrivals.length).toBeGreaterThanOrEqual(2);
    expect(arrivals[1]! - arrivals[0]!).toBeGreaterThanOrEqual(1950);
  }, 120_000);

  test("2 s latency on every request", async () => {
    proxy.setFaults({ latencyMs: 2000 });
    const started = performance.now();
    const logged = await train(join(work, "latency"));
    expect(performance.now() - started).toBeGreaterThan(2000);
    await expectExactlyDelivered(logged);
  }, 180_000);

  test("connections reset after the server applied the request (log-batch and runs/create)", async () => {
    proxy.setFaults({
      resetAfterForward: { count: 4 },
      match: (m, p) => onLogBatch(m, p) || p.includes("/runs/create"),
    });
    const logged = await train(join(work, "reset"));
    await expectExactlyDelivered(logged);
    expect(proxy.stats.injected.resetAfterForward ?? 0).toBeGreaterThanOrEqual(4);
  }, 120_000);

  test("tracker down for the whole run: `trainkit sync <outputDir>` delivers everything later", async () => {
    process.env.TRAINKIT_OUTBOX_DEADLINE_MS = "500";
    const outputDir = join(work, "sync");
    await proxy.down();
    let logged: string[];
    try {
      logged = await train(outputDir);
    } finally {
      await proxy.up();
    }
    expect(listOutboxes(outputDir)[0]!.pending).toBeGreaterThan(100);
    expect(log.warnings.some((w) => w.includes(`trainkit sync ${resolve(outputDir)}`))).toBe(true);
    const cli = resolve(import.meta.dirname, "../../core/dist/cli/trainkit.js");
    const { stdout } = await promisify(execFile)(process.execPath, [cli, "sync", outputDir], {
      env: {
        ...process.env,
        TRAINKIT_PLUGINS: resolve(import.meta.dirname, "../dist/index.js"),
      },
    });
    expect(stdout).toMatch(/mlflow \S+: delivered \d+, rejected 0, left 0/);
    expect(listOutboxes(outputDir)[0]!.pending).toBe(0);
    await expectExactlyDelivered(logged!);
  }, 120_000);
});

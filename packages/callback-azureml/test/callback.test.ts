// AzureMLCallback in real Trainer runs against the real MLflow server mounted under Azure ML's
// workspace route (testkit's startMountedMlflow), behind a gateway that requires
// `Authorization: Bearer <token>` (401 otherwise, and a one-shot 401 for the refresh path).
// Everything is read back through MLflow's REST API. The "all" rule and the conformance suite
// run here too.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import {
  Trainer,
  TrainerCallback,
  TrainingArguments,
  setLogger,
  type TrainerState,
  type TrainingArgumentsOptions,
} from "@trainkit/core";
import { Outbox, listOutboxes, selectPlugins } from "@trainkit/core/plugin";
import mlflow, { sanitizeMetricKey } from "@trainkit/callback-mlflow";
import {
  assertConformance,
  azureMlWorkspacePath,
  mlflowRest,
  startMlflowServer,
  startMountedMlflow,
  type MlflowServer,
  type MountedMlflow,
} from "@trainkit/testkit";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "vitest";
import azureml, { AzureMLCallback } from "../src/index.js";
import { captureLogger, filesUnder, type Captured } from "./helpers.js";

const TOKEN = "aad-token-6b1f0e";
const FRESH = "aad-fresh-9a4d27";
const PATH = azureMlWorkspacePath("s", "g", "w");
const work = mkdtempSync(join(tmpdir(), "trainkit-azureml-"));
const savedEnv = { ...process.env };
let server: MlflowServer;
let gateway: MountedMlflow;
let rest: ReturnType<typeof mlflowRest>;
let log: Captured;
let n = 0;

beforeAll(async () => {
  await tf.setBackend("cpu");
  server = await startMlflowServer();
  gateway = await startMountedMlflow({
    target: server.url,
    prefix: PATH,
    authorize: (header) => header === `Bearer ${TOKEN}` || header === `Bearer ${FRESH}`,
  });
  rest = mlflowRest(server.url);
}, 120_000);
afterAll(async () => {
  await gateway?.stop();
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});
beforeEach(() => {
  for (const key of Object.keys(process.env))
    if (/^(MLFLOW_|HF_|TRAINKIT_|AZURE)/.test(key) || key === "DISABLE_MLFLOW_INTEGRATION")
      delete process.env[key];
  // azureml://127.0.0.1:<port>/mlflow/v1.0/... → http:// (the test-only switch).
  process.env.MLFLOW_TRACKING_URI = `azureml://127.0.0.1:${gateway.port}${PATH}`;
  process.env.TRAINKIT_AZUREML_INSECURE_HTTP = "1";
  process.env.MLFLOW_TRACKING_TOKEN = TOKEN;
  process.env.MLFLOW_EXPERIMENT_NAME = `azureml-${++n}-${Date.now()}`;
  log = captureLogger();
  setLogger(log.logger);
});
afterEach(() => {
  setLogger();
  process.env = { ...savedEnv };
});

const rows = Array.from({ length: 16 }, (_, i) => ({ x: [i / 16, 1 - i / 16], y: i / 8 }));

function makeTrainer(
  args: TrainingArgumentsOptions,
  extra: Partial<ConstructorParameters<typeof Trainer>[0]> = {},
) {
  const model = tf.sequential({
    layers: [tf.layers.dense({ inputShape: [2], units: 1, kernelInitializer: "ones" })],
  });
  return new Trainer({
    model,
    loss: "meanSquaredError",
    trainDataset: rows,
    evalDataset: rows.slice(0, 4),
    plugins: [azureml],
    args: new TrainingArguments({
      perDeviceTrainBatchSize: 4,
      saveStrategy: "no",
      disableTqdm: true,
      reportTo: ["azure_ml"],
      backend: "cpu",
      ...args,
    }),
    ...extra,
  });
}

function azureCallbackOf(trainer: Trainer): AzureMLCallback {
  const callback = trainer.callbackHandler.callbacks.find((c) => c instanceof AzureMLCallback);
  if (!callback) throw new Error("no AzureMLCallback in the Trainer");
  return callback as AzureMLCallback;
}

async function runsOfExperiment(name = process.env.MLFLOW_EXPERIMENT_NAME!) {
  const experiment = await rest.getExperimentByName(name);
  return experiment ? rest.searchRuns([experiment.experiment_id]) : [];
}

/** Every number of the log history as [key, step, value]. */
function expectedPoints(state: TrainerState): [string, number, number][] {
  const out: [string, number, number][] = [];
  for (const entry of state.logHistory) {
    const step = entry.step as number;
    for (const [key, value] of Object.entries(entry))
      if (key !== "step" && typeof value === "number")
        out.push([sanitizeMetricKey(key), step, value]);
  }
  return out;
}

describe("a Trainer run on the workspace route", () => {
  test("azureml:// is converted; raw-key metrics at the global step; no params; the run ends FINISHED; Bearer on every request; the token is written nowhere", async () => {
    const outputDir = join(work, "run");
    const before = gateway.requests.length;
    const trainer = makeTrainer(
      {
        outputDir,
        numTrainEpochs: 2,
        loggingSteps: 1,
        evalStrategy: "steps",
        evalSteps: 4,
        saveStrategy: "steps",
        saveSteps: 4,
      },
      { computeMetrics: () => ({ "acc(%)": 0.5 }) },
    );
    await trainer.train();
    const callback = azureCallbackOf(trainer);
    const runId = callback.runId!;
    const run = await rest.getRun(runId);
    expect(run.info.status).toBe("FINISHED");
    // No params (HF's AzureMLCallback logs none).
    expect(run.data.params).toEqual({});
    const points = await rest.allMetricPoints(runId);
    const expected = expectedPoints(trainer.state);
    expect(expected.length).toBeGreaterThan(20);
    for (const [key, step, value] of expected)
      expect(
        points[key]?.some((p) => p.step === step && Math.abs(p.value - value) < 1e-6),
        `${key}@${step}`,
      ).toBe(true);
    // Raw keys (no train/ prefix), sanitised as MLflow requires.
    expect(Object.keys(points)).toEqual(
      expect.arrayContaining(["loss", "learning_rate", "epoch", "eval_loss", "train_runtime"]),
    );
    expect(Object.keys(points).some((k) => k.startsWith("train/"))).toBe(false);
    expect(points["eval_acc___"]?.map((p) => p.value)).toEqual([0.5, 0.5]);

    // Every request went to the workspace route with the bearer token.
    const seen = gateway.requests.slice(before);
    expect(seen.length).toBeGreaterThan(3);
    for (const request of seen) {
      expect(request.path.startsWith(`${PATH}/api/2.0/mlflow/`)).toBe(true);
      expect(request.authorization).toBe(`Bearer ${TOKEN}`);
    }
    // The spool is azure_ml's own; meta has the https-converted (here http) base, no token.
    const [found, ...others] = listOutboxes(outputDir);
    expect(others).toEqual([]);
    expect(found!.integration).toBe("azure_ml");
    expect(found!.meta.trackingUri).toBe(`http://127.0.0.1:${gateway.port}${PATH}`);
    const state = JSON.parse(
      readFileSync(join(outputDir, "checkpoint-8", "trainer_state.json"), "utf8"),
    ) as { stateful_callbacks: Record<string, { attributes: { stream?: string } }> };
    expect(state.stateful_callbacks.AzureMLCallback?.attributes.stream).toBe(callback.streamId);
    for (const file of filesUnder(outputDir))
      expect(readFileSync(file, "latin1").includes(TOKEN), file).toBe(false);
    for (const text of [...log.warnings, ...log.infos]) expect(text.includes(TOKEN)).toBe(false);
  });

  test("HF's filter: numbers and booleans (1/0) are logged, anything else is dropped without a warning", async () => {
    // A callback ahead of AzureMLCallback adds values of other types to the logs it shares.
    class Extras extends TrainerCallback {
      override onLog(
        _a: unknown,
        _s: unknown,
        _c: unknown,
        ctx: { logs?: Record<string, unknown> },
      ) {
        if (ctx.logs && "loss" in ctx.logs)
          Object.assign(ctx.logs, { flag: true, off: false, note: "text", none: null, list: [1] });
      }
    }
    const trainer = makeTrainer(
      { outputDir: join(work, "filter"), maxSteps: 2, loggingSteps: 1, reportTo: "none" },
      { callbacks: [new Extras(), new AzureMLCallback()] },
    );
    await trainer.train();
    const runId = azureCallbackOf(trainer).runId!;
    const points = await rest.allMetricPoints(runId);
    expect(points.flag?.map((p) => [p.step, p.value])).toEqual([
      [1, 1],
      [2, 1],
    ]);
    expect(points.off?.map((p) => p.value)).toEqual([0, 0]);
    expect(Object.keys(points)).toEqual(expect.arrayContaining(["loss", "grad_norm", "epoch"]));
    for (const dropped of ["note", "none", "list"]) expect(points[dropped]).toBeUndefined();
    expect(log.warnings.filter((w) => /note|none|list|log_metric/.test(w))).toEqual([]);
  });

  test("logParams: true sends MLflow-style params; HF_MLFLOW_LOG_ARTIFACTS is ignored with a warning", async () => {
    process.env.HF_MLFLOW_LOG_ARTIFACTS = "1";
    const outputDir = join(work, "params");
    const trainer = makeTrainer(
      {
        outputDir,
        maxSteps: 2,
        loggingSteps: 1,
        saveStrategy: "steps",
        saveSteps: 2,
        reportTo: "none",
      },
      { callbacks: [new AzureMLCallback({ logParams: true })] },
    );
    await trainer.train();
    const runId = azureCallbackOf(trainer).runId!;
    const run = await rest.getRun(runId);
    expect(run.data.params.learning_rate).toBe("5e-05");
    expect(await rest.listArtifacts(runId)).toEqual([]);
    expect(log.warnings.some((w) => /Azure ML: checkpoints are not uploaded/.test(w))).toBe(true);
  });

  test("MLFLOW_RUN_ID (inside a job): the job's run is logged into and never ended", async () => {
    const experiment = await fetch(`${server.url}/api/2.0/mlflow/experiments/create`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: process.env.MLFLOW_EXPERIMENT_NAME }),
    }).then((r) => r.json() as Promise<{ experiment_id: string }>);
    const created = await fetch(`${server.url}/api/2.0/mlflow/runs/create`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ experiment_id: experiment.experiment_id, start_time: Date.now() }),
    }).then((r) => r.json() as Promise<{ run: { info: { run_id: string } } }>);
    const jobRun = created.run.info.run_id;
    process.env.MLFLOW_RUN_ID = jobRun;
    const trainer = makeTrainer({ outputDir: join(work, "job"), maxSteps: 3, loggingSteps: 1 });
    await trainer.train();
    expect(azureCallbackOf(trainer).runId).toBe(jobRun);
    const run = await rest.getRun(jobRun);
    expect(run.info.status).toBe("RUNNING");
    expect((await rest.metricHistory(jobRun, "loss")).map((p) => p.step)).toEqual([1, 2, 3]);
    expect(await runsOfExperiment()).toHaveLength(1);
  });
});

describe("an expired token", () => {
  test("getToken: a 401 refreshes the token once and the request is repeated", async () => {
    delete process.env.MLFLOW_TRACKING_TOKEN;
    const tokens = [TOKEN, FRESH];
    let calls = 0;
    const getToken = async () => tokens[Math.min(calls++, tokens.length - 1)]!;
    const before = gateway.requests.length;
    gateway.rejectNext(1);
    const trainer = makeTrainer(
      { outputDir: join(work, "refresh"), maxSteps: 2, loggingSteps: 1, reportTo: "none" },
      { callbacks: [new AzureMLCallback({ getToken })] },
    );
    await trainer.train();
    const runId = azureCallbackOf(trainer).runId!;
    expect((await rest.getRun(runId)).info.status).toBe("FINISHED");
    expect((await rest.metricHistory(runId, "loss")).length).toBe(2);
    expect(calls).toBe(2);
    const seen = gateway.requests.slice(before);
    expect(seen[0]).toMatchObject({ status: 401, authorization: `Bearer ${TOKEN}` });
    expect(seen[1]).toMatchObject({ path: seen[0]!.path, authorization: `Bearer ${FRESH}` });
    expect(
      seen.slice(1).every((r) => r.authorization === `Bearer ${FRESH}` && r.status !== 401),
    ).toBe(true);
  });

  test("MLFLOW_TRACKING_TOKEN only: delivery stops at the 401 (training goes on); the plugin's transport hook (trainkit sync) delivers with a new token", async () => {
    process.env.TRAINKIT_OUTBOX_DEADLINE_MS = "2000";
    const outputDir = join(work, "expired");
    gateway.rejectNext(1);
    const trainer = makeTrainer({ outputDir, maxSteps: 3, loggingSteps: 1 });
    await trainer.train();
    expect(log.warnings.join("\n")).toMatch(/HTTP 401[\s\S]*trainkit sync/);
    const [found] = listOutboxes(outputDir);
    expect(found!.integration).toBe("azure_ml");
    expect(found!.pending).toBeGreaterThan(0);
    expect(JSON.stringify(found!.meta)).not.toContain(TOKEN);
    const transport = await azureml.transport!(found!.meta, {
      env: {
        MLFLOW_TRACKING_TOKEN: FRESH,
        MLFLOW_TRACKING_URI: process.env.MLFLOW_TRACKING_URI,
        TRAINKIT_AZUREML_INSECURE_HTTP: "1",
      },
      logger: log.logger,
    });
    const outbox = Outbox.open({
      dir: found!.dir,
      integration: found!.integration,
      transport,
      logger: log.logger,
      flushIntervalMs: 0,
    });
    const report = await outbox.drain({ deadlineMs: 30_000 });
    await outbox.close();
    expect(report).toMatchObject({ pending: 0, rejected: 0 });
    const [run, ...more] = await runsOfExperiment();
    expect(more).toEqual([]);
    expect(run!.info.status).toBe("FINISHED");
    expect((await rest.metricHistory(run!.info.run_id, "loss")).map((p) => p.step)).toEqual([
      1, 2, 3,
    ]);
  });
});

describe('reportTo "all" (HF: azure_ml only when mlflow is not used)', () => {
  const context = () => ({
    args: new TrainingArguments({ outputDir: join(work, "select") }),
    env: process.env,
    logger: captureLogger().logger,
  });
  const cwd = mkdtempSync(join(tmpdir(), "trainkit-azureml-app-"));

  test("mlflow and azure_ml both available: only mlflow is active, and the summary says why", async () => {
    process.env.MLFLOW_TRACKING_URI = `http://127.0.0.1:${gateway.port}${PATH}`;
    delete process.env.TRAINKIT_AZUREML_INSECURE_HTTP;
    expect(mlflow.isAvailable(context())).toEqual({ available: true });
    expect(azureml.isAvailable(context())).toEqual({ available: true });
    const all = await selectPlugins("all", context(), { cwd, plugins: [mlflow, azureml] });
    expect(all.plugins.map((p) => p.name)).toEqual(["mlflow"]);
    expect(all.summary).toMatch(/skipped: azure_ml \(mlflow is active/);
    // Listed by name, both are used.
    const both = await selectPlugins(["azure_ml", "mlflow"], context(), {
      cwd,
      plugins: [mlflow, azureml],
    });
    expect(both.plugins.map((p) => p.name)).toEqual(["azure_ml", "mlflow"]);

    // A real run: one MLflow run, logged by MlflowCallback only.
    const trainer = makeTrainer(
      { outputDir: join(work, "all"), maxSteps: 2, loggingSteps: 1, reportTo: "all" },
      { plugins: [mlflow, azureml] },
    );
    await trainer.train();
    const names = trainer.callbackHandler.callbacks.map((c) => c.constructor.name);
    expect(names).toContain("MlflowCallback");
    expect(names).not.toContain("AzureMLCallback");
    expect(await runsOfExperiment()).toHaveLength(1);
  });

  test("an azureml:// URI: mlflow is not available (not http), so azure_ml is the one", async () => {
    const all = await selectPlugins("all", context(), { cwd, plugins: [mlflow, azureml] });
    expect(all.plugins.map((p) => p.name)).toEqual(["azure_ml"]);
  });
});

test("the azure_ml plugin passes the conformance suite", async () => {
  const report = await assertConformance(azureml, {
    env: {
      MLFLOW_TRACKING_URI: `azureml://127.0.0.1:${gateway.port}${PATH}`,
      TRAINKIT_AZUREML_INSECURE_HTTP: "1",
      MLFLOW_TRACKING_TOKEN: TOKEN,
      MLFLOW_EXPERIMENT_NAME: "conformance",
    },
    secrets: [TOKEN],
  });
  expect(report.failed).toEqual([]);
  expect(report.ok).toBe(true);
}, 120_000);

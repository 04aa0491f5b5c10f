// MlflowCallback in real Trainer runs (reportTo ["mlflow"], the plugin through the Trainer's
// `plugins` option) against the real MLflow tracking server; everything is read back through
// MLflow's REST API.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
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
import { Outbox, listOutboxes } from "@trainkit/core/plugin";
import {
  mlflowRest,
  startMlflowServer,
  type MlflowServer,
  type MetricPoint,
} from "@trainkit/testkit";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "vitest";
import mlflow, { MlflowCallback, parsePythonNumbers, sanitizeMetricKey } from "../src/index.js";
import { captureLogger, filesUnder, type Captured } from "./helpers.js";

const MAX_DOUBLE = 1.7976931348623157e308;
const work = mkdtempSync(join(tmpdir(), "trainkit-mlflow-callback-"));
const savedEnv = { ...process.env };
let server: MlflowServer;
let rest: ReturnType<typeof mlflowRest>;
let log: Captured;
let n = 0;

beforeAll(async () => {
  await tf.setBackend("cpu");
  server = await startMlflowServer();
  rest = mlflowRest(server.url);
}, 120_000);
afterAll(async () => {
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});
beforeEach(() => {
  for (const key of Object.keys(process.env))
    if (key.startsWith("MLFLOW_") || key.startsWith("HF_MLFLOW") || key === "TRAINKIT_PLUGINS")
      delete process.env[key];
  process.env.MLFLOW_TRACKING_URI = server.url;
  process.env.MLFLOW_EXPERIMENT_NAME = `exp-${++n}-${Date.now()}`;
  log = captureLogger();
  setLogger(log.logger);
});
afterEach(() => {
  setLogger();
  process.env = { ...savedEnv };
});

const rows = Array.from({ length: 32 }, (_, i) => ({ x: [i / 32, 1 - i / 32], y: i / 16 }));

/** TrainingArguments with fields a subclass adds (HF: every field goes to params). */
class NotedArguments extends TrainingArguments {
  notes = "n".repeat(7000);
}

function makeTrainer(
  args: TrainingArgumentsOptions,
  extra: Partial<ConstructorParameters<typeof Trainer>[0]> & {
    argsClass?: typeof TrainingArguments;
  } = {},
) {
  const model = tf.sequential({
    layers: [tf.layers.dense({ inputShape: [2], units: 1, kernelInitializer: "ones" })],
  });
  const { argsClass = TrainingArguments, ...rest } = extra;
  return new Trainer({
    model,
    loss: "meanSquaredError",
    trainDataset: rows,
    evalDataset: rows.slice(0, 8),
    plugins: [mlflow],
    args: new argsClass({
      perDeviceTrainBatchSize: 4,
      saveStrategy: "no",
      disableTqdm: true,
      reportTo: ["mlflow"],
      backend: "cpu",
      ...args,
    }),
    ...rest,
  });
}

function mlflowCallbackOf(trainer: Trainer): MlflowCallback {
  const callback = trainer.callbackHandler.callbacks.find((c) => c instanceof MlflowCallback);
  if (!callback) throw new Error("no MlflowCallback in the Trainer");
  return callback as MlflowCallback;
}

async function runsOfExperiment(name = process.env.MLFLOW_EXPERIMENT_NAME!) {
  const experiment = await rest.getExperimentByName(name);
  if (!experiment) return [];
  return rest.searchRuns([experiment.experiment_id]);
}

/** Every numeric value of the log history as [key, step, value]. */
function expectedPoints(state: TrainerState): [string, number, number][] {
  const out: [string, number, number][] = [];
  for (const entry of state.logHistory) {
    const step = entry.step as number;
    for (const [key, value] of Object.entries(entry)) {
      if (key === "step" || typeof value !== "number") continue;
      out.push([sanitizeMetricKey(key), step, value]);
    }
  }
  return out;
}

function stored(value: number): number {
  if (value === Infinity) return MAX_DOUBLE;
  if (value === -Infinity) return -MAX_DOUBLE;
  return value;
}

function hasPoint(points: MetricPoint[] | undefined, step: number, value: number): boolean {
  return (points ?? []).some(
    (p) =>
      p.step === step &&
      (Number.isNaN(value)
        ? Number.isNaN(p.value)
        : p.value === stored(Math.fround(value)) || p.value === stored(value)),
  );
}

describe("a full Trainer run", () => {
  test("metrics (every point), params (a truncated one), tags, artifacts, FINISHED; post-train evaluate lands in the same run", async () => {
    process.env.HF_MLFLOW_LOG_ARTIFACTS = "1";
    process.env.MLFLOW_TAGS = JSON.stringify({ team: "nlp", n: 1 });
    const outputDir = join(work, "full");
    const trainer = makeTrainer(
      {
        outputDir,
        numTrainEpochs: 2,
        loggingSteps: 2,
        evalStrategy: "steps",
        evalSteps: 4,
        saveStrategy: "steps",
        saveSteps: 4,
        saveTotalLimit: 1,
        runName: "full-run",
      },
      {
        argsClass: NotedArguments,
        computeMetrics: () => ({
          "acc(%)": 0.5,
          nan_metric: NaN,
          big: Infinity,
          small: -Infinity,
        }),
      },
    );
    await trainer.train();
    const callback = mlflowCallbackOf(trainer);
    const runId = callback.runId!;
    expect(runId).toMatch(/^[0-9a-f]{32}$/);

    const runs = await runsOfExperiment();
    expect(runs).toHaveLength(1);
    const run = await rest.getRun(runId);
    expect(run.info.status).toBe("FINISHED");
    expect(run.info.run_name).toBe("full-run");

    // Every logged value, at its global step (NaN kept, ±Inf clamped by the SQL store).
    const points = await rest.allMetricPoints(runId);
    const expected = expectedPoints(trainer.state);
    expect(expected.length).toBeGreaterThan(40);
    for (const [key, step, value] of expected)
      expect(hasPoint(points[key], step, value), `${key}@${step}=${value}`).toBe(true);
    expect(Object.keys(points)).toContain("eval_acc___");
    expect(points.eval_nan_metric?.every((p) => Number.isNaN(p.value))).toBe(true);
    expect(points.eval_big?.[0]?.value).toBe(MAX_DOUBLE);
    expect(points.eval_small?.[0]?.value).toBe(-MAX_DOUBLE);
    expect(Object.keys(points).every((k) => !k.startsWith("train/"))).toBe(true);

    // Params: HF's rendering, the long one truncated and listed in a tag.
    expect(run.data.params.learning_rate).toBe("5e-05");
    expect(run.data.params.num_train_epochs).toBe("2.0");
    expect(run.data.params.logging_steps).toBe("2");
    expect(run.data.params.run_name).toBe("full-run");
    expect(run.data.params.output_dir).toBe(outputDir);
    expect(run.data.params.notes).toBe("n".repeat(6000));
    expect(run.data.tags["trainkit.truncated_params"]).toBe("notes");
    expect(run.data.tags.team).toBe("nlp");
    expect(run.data.tags.n).toBe("1");
    expect(run.data.tags["mlflow.runName"]).toBe("full-run");
    expect(run.data.tags["mlflow.source.type"]).toBe("LOCAL");
    expect(run.data.tags["trainkit.stream"]).toBe(callback.streamId);
    expect(log.warnings.some((w) => w.includes("notes") && w.includes("truncated"))).toBe(true);

    // Every checkpoint was uploaded, even those rotation deleted before delivery.
    const artifacts = await rest.listArtifacts(runId);
    for (const step of [4, 8, 12, 16])
      expect(artifacts.some((a) => a.path === `checkpoint-${step}/trainer_state.json`)).toBe(true);
    expect(existsSync(join(outputDir, "checkpoint-4"))).toBe(false);
    const local = join(outputDir, "checkpoint-16");
    for (const file of filesUnder(local)) {
      const rel = file
        .slice(local.length + 1)
        .split("\\")
        .join("/");
      const remote = artifacts.find((a) => a.path === `checkpoint-16/${rel}`);
      expect(remote?.size, rel).toBe(statSync(file).size);
    }
    const state = await rest.downloadArtifact(runId, "checkpoint-16/trainer_state.json");
    expect(state.equals(readFileSync(join(local, "trainer_state.json")))).toBe(true);
    // The checkpoint holds the stream and the run id.
    const saved = parsePythonNumbers(readFileSync(join(local, "trainer_state.json"), "utf8")) as {
      stateful_callbacks: Record<string, { attributes: Record<string, unknown> }>;
    };
    expect(saved.stateful_callbacks.MlflowCallback?.attributes.stream).toBe(callback.streamId);

    // Nothing is left in the spool: delivered records and spool copies are gone.
    const spool = join(outputDir, ".trainkit", "outbox", "mlflow", callback.streamId!);
    expect(filesUnder(join(spool, "artifacts"))).toEqual([]);
    expect(existsSync(join(spool, "rejects.jsonl"))).toBe(false);

    // A post-train evaluate() logs into the same run, which stays FINISHED.
    const before = (await rest.metricHistory(runId, "eval_loss")).length;
    await trainer.evaluate();
    await callback.close();
    expect((await rest.metricHistory(runId, "eval_loss")).length).toBe(before + 1);
    expect((await rest.getRun(runId)).info.status).toBe("FINISHED");
    expect(await runsOfExperiment()).toHaveLength(1);
  });

  test("evaluate() without train() sets up lazily (HF); close() ends the run", async () => {
    const listeners = () =>
      ["SIGINT", "SIGTERM", "beforeExit"].map((event) => process.listenerCount(event));
    const trainer = makeTrainer({ outputDir: join(work, "eval-only") });
    const metrics = await trainer.evaluate();
    const afterFirst = listeners();
    // Many evaluate-only Trainers add no listener each: one per process while runs are open.
    const others = Array.from({ length: 12 }, (_, i) =>
      makeTrainer({ outputDir: join(work, `eval-only-${i}`) }),
    );
    for (const other of others) await other.evaluate();
    expect(listeners()).toEqual(afterFirst);
    for (const other of others) await other.close();
    const callback = mlflowCallbackOf(trainer);
    await callback.close();
    await callback.close(); // idempotent
    await trainer.close();
    expect(listeners()[0]).toBeLessThan(afterFirst[0]!);
    const run = await rest.getRun(callback.runId!);
    expect(run.info.status).toBe("FINISHED");
    expect((await rest.metricHistory(callback.runId!, "eval_loss"))[0]?.value).toBeCloseTo(
      metrics.eval_loss!,
      6,
    );
    expect(run.data.params.learning_rate).toBe("5e-05");
  });

  test("a run given by MLFLOW_RUN_ID is logged into and never ended", async () => {
    const created = (await (
      await fetch(`${server.url}/api/2.0/mlflow/runs/create`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ experiment_id: "0", start_time: Date.now(), run_name: "users" }),
      })
    ).json()) as { run: { info: { run_id: string } } };
    const runId = created.run.info.run_id;
    process.env.MLFLOW_RUN_ID = runId;
    // An experiment chosen explicitly that is not the run's: said, and logged to the run anyway.
    await fetch(`${server.url}/api/2.0/mlflow/experiments/create`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: process.env.MLFLOW_EXPERIMENT_NAME }),
    });
    const trainer = makeTrainer({
      outputDir: join(work, "user-run"),
      maxSteps: 4,
      loggingSteps: 2,
    });
    await trainer.train();
    const run = await rest.getRun(runId);
    expect(run.info.status).toBe("RUNNING");
    expect((await rest.metricHistory(runId, "loss")).map((p) => p.step)).toEqual([2, 4]);
    expect(
      log.warnings.filter((w) => /belongs to experiment 0, not to the chosen/.test(w)),
    ).toHaveLength(1);
    expect(run.data.params.max_steps).toBe("4");
  });

  test("train() → evaluate() → train(): the first run's eval metrics are delivered before the new run opens", async () => {
    const outputDir = join(work, "train-eval-train");
    const trainer = makeTrainer({ outputDir, maxSteps: 2, loggingSteps: 1 });
    await trainer.train();
    const callback = mlflowCallbackOf(trainer);
    const firstRun = callback.runId!;
    const firstStream = callback.streamId!;
    const metrics = await trainer.evaluate();
    await trainer.train();
    expect(callback.streamId).not.toBe(firstStream);
    expect((await rest.metricHistory(firstRun, "eval_loss"))[0]?.value).toBeCloseTo(
      metrics.eval_loss!,
      6,
    );
    expect((await rest.getRun(firstRun)).info.status).toBe("FINISHED");
    // Nothing left behind in the first stream's spool.
    const first = listOutboxes(outputDir).find((o) => o.dir.endsWith(firstStream));
    expect(first?.pending ?? 0).toBe(0);
    expect(log.warnings.filter((w) => /not delivered/.test(w))).toEqual([]);
    await trainer.close();
  });

  test("bad MLFLOW_TAGS fails before training; an unconfigured explicit mlflow says what to set", async () => {
    process.env.MLFLOW_TAGS = "{team: nlp}";
    const bad = makeTrainer({ outputDir: join(work, "bad-tags"), maxSteps: 2 });
    await expect(bad.train()).rejects.toThrow(/MLFLOW_TAGS/);
    expect(existsSync(join(work, "bad-tags", ".trainkit"))).toBe(false);

    delete process.env.MLFLOW_TAGS;
    delete process.env.MLFLOW_TRACKING_URI;
    const unset = makeTrainer({ outputDir: join(work, "no-uri"), maxSteps: 2 });
    await expect(unset.train()).rejects.toThrow(/MLFLOW_TRACKING_URI/);
    expect(
      mlflow.isAvailable({
        args: new TrainingArguments({ outputDir: "x" }),
        env: {},
        logger: log.logger,
      }).available,
    ).toBe(false);
  });
});

describe("resume and failure", () => {
  class CrashAt extends TrainerCallback {
    constructor(private readonly step: number) {
      super();
    }
    override onStepEnd(_a: TrainingArguments, state: TrainerState) {
      if (state.globalStep === this.step) throw new Error(`crash at step ${this.step}`);
    }
  }

  test.each([true, false])(
    "a crash ends the run FAILED; resuming from the checkpoint continues the same run (restoreCallbackStatesFromCheckpoint %s)",
    async (restore) => {
      const outputDir = join(work, `resume-${restore}`);
      const args = {
        outputDir,
        maxSteps: 8,
        loggingSteps: 1,
        saveStrategy: "steps" as const,
        saveSteps: 3,
        restoreCallbackStatesFromCheckpoint: restore,
      };
      const first = makeTrainer(args, { callbacks: [new CrashAt(5)] });
      await expect(first.train()).rejects.toThrow(/crash at step 5/);
      const firstCallback = mlflowCallbackOf(first);
      const runId = firstCallback.runId!;
      expect((await rest.getRun(runId)).info.status).toBe("FAILED");

      const second = makeTrainer(args);
      await second.train({ resumeFromCheckpoint: join(outputDir, "checkpoint-3") });
      const secondCallback = mlflowCallbackOf(second);
      expect(secondCallback.runId).toBe(runId);
      expect(secondCallback.streamId).toBe(firstCallback.streamId);
      const runs = await runsOfExperiment();
      expect(runs).toHaveLength(1);
      const run = await rest.getRun(runId);
      expect(run.info.status).toBe("FINISHED");
      const steps = new Set((await rest.metricHistory(runId, "loss")).map((p) => p.step));
      expect([...steps].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      // Params were not re-sent as changes: nothing rejected.
      expect(log.warnings.filter((w) => /rejected/.test(w))).toEqual([]);
    },
  );
});

describe("tracker down", () => {
  test("training is not failed; the spool keeps everything; the plugin's transport hook (trainkit sync) delivers it later", async () => {
    process.env.HF_MLFLOW_LOG_ARTIFACTS = "1";
    process.env.TRAINKIT_OUTBOX_DEADLINE_MS = "300";
    process.env.MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR = "0.05";
    const outputDir = join(work, "down");
    await server.stop();
    let trainer: Trainer;
    try {
      trainer = makeTrainer({
        outputDir,
        maxSteps: 6,
        loggingSteps: 1,
        saveStrategy: "steps",
        saveSteps: 2,
        saveTotalLimit: 1,
      });
      await trainer.train();
    } finally {
      await server.start();
    }
    expect(log.warnings.some((w) => w.includes("trainkit sync"))).toBe(true);
    const [found, ...others] = listOutboxes(outputDir);
    expect(others).toEqual([]);
    expect(found!.pending).toBeGreaterThan(10);
    expect(found!.meta.runId).toBeUndefined();
    expect(JSON.stringify(found!.meta)).not.toMatch(/password|token/i);

    // What `trainkit sync <outputDir>` does with the plugin's transport hook.
    const transport = await mlflow.transport!(found!.meta, { env: {}, logger: log.logger });
    const outbox = Outbox.open({
      dir: found!.dir,
      integration: found!.integration,
      transport,
      logger: log.logger,
      flushIntervalMs: 0,
    });
    const report = await outbox.drain({ deadlineMs: 60_000 });
    await outbox.close();
    expect(report.pending).toBe(0);
    expect(report.rejected).toBe(0);

    const runs = await runsOfExperiment();
    expect(runs).toHaveLength(1);
    const run = runs[0]!;
    expect(run.info.status).toBe("FINISHED");
    const points = await rest.allMetricPoints(run.info.run_id);
    for (const [key, step, value] of expectedPoints(trainer!.state))
      expect(hasPoint(points[key], step, value), `${key}@${step}`).toBe(true);
    const artifacts = await rest.listArtifacts(run.info.run_id);
    for (const step of [2, 4, 6])
      expect(artifacts.some((a) => a.path === `checkpoint-${step}/trainer_state.json`)).toBe(true);
    expect(filesUnder(join(found!.dir, "artifacts"))).toEqual([]);
  }, 180_000);
});

describe("secrets", () => {
  test("a token, a password and a credential URL never reach output, files, params or tags", async () => {
    const canaries = {
      token: "canary-token-7f3a9c",
      password: "canary-pass-91be2d",
      urlPassword: "canary-urlpw-5d1e77",
      apiToken: "canary-apitok-c0ffee",
      dbPassword: "canary-dbpw-baddad",
    };
    process.env.MLFLOW_TRACKING_TOKEN = canaries.token;
    process.env.MLFLOW_TRACKING_USERNAME = "someone";
    process.env.MLFLOW_TRACKING_PASSWORD = canaries.password;
    process.env.MLFLOW_TRACKING_URI = server.url.replace(
      "http://",
      `http://urluser:${canaries.urlPassword}@`,
    );
    process.env.HF_MLFLOW_LOG_ARTIFACTS = "true";
    process.env.MLFLOW_TAGS = JSON.stringify({
      note: `see ${server.url.replace("http://", `http://x:${canaries.urlPassword}@`)}`,
    });
    class SecretArguments extends TrainingArguments {
      apiToken = canaries.apiToken;
      dbPassword = canaries.dbPassword;
      endpoint = `https://u:${canaries.urlPassword}@example.com/`;
    }
    const written: string[] = [];
    const stdoutWrite = process.stdout.write.bind(process.stdout);
    const stderrWrite = process.stderr.write.bind(process.stderr);
    const capture = (chunk: unknown) => {
      written.push(typeof chunk === "string" ? chunk : Buffer.from(chunk as Uint8Array).toString());
      return true;
    };
    process.stdout.write = capture as typeof process.stdout.write;
    process.stderr.write = capture as typeof process.stderr.write;
    const consoleMethods = ["log", "info", "warn", "error", "debug"] as const;
    const savedConsole = consoleMethods.map((m) => console[m]);
    for (const m of consoleMethods)
      console[m] = (...a: unknown[]) => void written.push(a.map(String).join(" "));
    setLogger({ info: (m) => void written.push(m), warn: (m) => void written.push(m) });
    const outputDir = join(work, "secrets");
    let runId: string;
    try {
      const trainer = makeTrainer(
        { outputDir, maxSteps: 4, loggingSteps: 1, saveStrategy: "steps", saveSteps: 2 },
        { argsClass: SecretArguments },
      );
      await trainer.train();
      runId = mlflowCallbackOf(trainer).runId!;
      // A failing delivery's messages too: a server that is gone.
      const gone = makeTrainer(
        { outputDir, maxSteps: 1, loggingSteps: 1 },
        { argsClass: SecretArguments },
      );
      process.env.MLFLOW_TRACKING_URI = `http://urluser:${canaries.urlPassword}@127.0.0.1:9/`;
      process.env.TRAINKIT_OUTBOX_DEADLINE_MS = "300";
      await gone.train();
    } finally {
      process.stdout.write = stdoutWrite;
      process.stderr.write = stderrWrite;
      consoleMethods.forEach((m, i) => (console[m] = savedConsole[i]!));
    }
    const run = await rest.getRun(runId);
    const haystacks = [
      written.join("\n"),
      JSON.stringify(run.data.params),
      JSON.stringify(run.data.tags),
      ...filesUnder(outputDir).map((file) => readFileSync(file).toString("latin1")),
    ];
    for (const secret of Object.values(canaries))
      for (const text of haystacks) expect(text.includes(secret), secret).toBe(false);
    expect(run.data.params.api_token).toBe("<API_TOKEN>");
    expect(run.data.params.db_password).toBe("<REDACTED>");
    // What was left undelivered is in the spool, secret-free, with the sync hint.
    expect(written.join("\n")).toMatch(/trainkit sync/);
  });
});

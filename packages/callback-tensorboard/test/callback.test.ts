// TensorBoardCallback in real Trainer runs (reportTo ["tensorboard"], the plugin passed through
// the Trainer's `plugins` option), every file read back by TensorBoard's own reader.
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { homedir, hostname, tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import {
  Trainer,
  TrainerControl,
  TrainerState,
  TrainingArguments,
  setLogger,
  type TrainingArgumentsOptions,
} from "@trainkit/core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "vitest";
import tensorboard, { TensorBoardCallback } from "../src/index.js";
import { defaultLogDir, expandUser, runTimestamp } from "../src/log-dir.js";
import {
  captureLogger,
  readWithTensorBoard,
  scalarPoints,
  textsOf,
  type ReadResult,
} from "./helpers.js";

const work = mkdtempSync(join(tmpdir(), "trainkit-tb-callback-"));
const savedEnv = { ...process.env };
let log: ReturnType<typeof captureLogger>;

beforeAll(async () => {
  await tf.setBackend("cpu");
});
beforeEach(() => {
  delete process.env.TENSORBOARD_LOGGING_DIR;
  delete process.env.TRAINKIT_PLUGINS;
  log = captureLogger();
  setLogger(log.logger);
});
afterEach(() => {
  setLogger();
  process.env = { ...savedEnv };
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const rows = Array.from({ length: 32 }, (_, i) => ({ x: [i / 32, 1 - i / 32], y: i / 16 }));

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
    evalDataset: rows.slice(0, 8),
    plugins: [tensorboard],
    args: new TrainingArguments({
      perDeviceTrainBatchSize: 4,
      saveStrategy: "no",
      disableTqdm: true,
      reportTo: ["tensorboard"],
      backend: "cpu",
      ...args,
    }),
    ...extra,
  });
}

/** HF's rewrite: eval_x → eval/x, test_x → test/x, else train/x. */
const tagOf = (key: string) =>
  key.startsWith("eval_")
    ? `eval/${key.slice(5)}`
    : key.startsWith("test_")
      ? `test/${key.slice(5)}`
      : `train/${key}`;

/** What the run logged (state.logHistory), as tag → [step, float32 value] in order. */
function expectedScalars(logHistory: Record<string, number>[]): Map<string, [number, number][]> {
  const out = new Map<string, [number, number][]>();
  for (const entry of logHistory)
    for (const [key, value] of Object.entries(entry)) {
      if (key === "step") continue;
      const tag = tagOf(key);
      if (!out.has(tag)) out.set(tag, []);
      out.get(tag)!.push([entry.step!, Math.fround(value)]);
    }
  return out;
}

/** Steps per tag never go down inside any run (a directory), across its files. */
function expectIncreasingSteps(result: ReadResult): void {
  const byRun = new Map<string, Map<string, number>>();
  for (const file of result.files) {
    const run = file.path.slice(0, file.path.lastIndexOf("/"));
    const last = byRun.get(run) ?? new Map<string, number>();
    byRun.set(run, last);
    for (const event of file.events)
      for (const value of event.values ?? []) {
        expect(event.step, `${value.tag} in ${run}`).toBeGreaterThanOrEqual(
          last.get(value.tag) ?? -Infinity,
        );
        last.set(value.tag, event.step);
      }
  }
}

describe("a Trainer run", () => {
  const outputDir = join(work, "run");
  let trainer: Trainer;
  let result: ReadResult;
  let runDir: string;

  test("writes HF's tags and values under <outputDir>/runs/<MonDD_HH-MM-SS>_<host>", async () => {
    trainer = makeTrainer({
      outputDir,
      maxSteps: 8,
      loggingSteps: 2,
      evalStrategy: "steps",
      evalSteps: 4,
      learningRate: 0.05,
    });
    await trainer.train();
    expect(log.infos.find((m) => m.includes("Integrations:"))).toContain(
      "tensorboard [the plugins option]",
    );
    const runs = readdirSync(join(outputDir, "runs"));
    expect(runs).toHaveLength(1);
    const host = hostname().replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    expect(runs[0]).toMatch(
      new RegExp(
        `^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\\d{2}_\\d{2}-\\d{2}-\\d{2}_${host}$`,
      ),
    );
    runDir = join(outputDir, "runs", runs[0]!);
    result = readWithTensorBoard(runDir);
    expect(result.files).toHaveLength(1);
    expect(result.files[0]!.end).toBe("eof");

    const expected = expectedScalars(trainer.state.logHistory as Record<string, number>[]);
    for (const tag of [
      "train/loss",
      "train/grad_norm",
      "train/learning_rate",
      "train/epoch",
      "eval/loss",
      "eval/runtime",
      "eval/samples_per_second",
      "eval/steps_per_second",
      "train/train_runtime",
      "train/train_samples_per_second",
      "train/train_steps_per_second",
      "train/total_flos",
      "train/train_loss",
    ])
      expect(expected.has(tag), tag).toBe(true);
    for (const [tag, points] of expected)
      expect(scalarPoints(result.files, tag), tag).toEqual(points);
    // Nothing else was written as a scalar.
    const scalarTags = new Set(
      result.files[0]!.events.flatMap((e) =>
        (e.values ?? []).filter((v) => v.kind === "simple_value").map((v) => v.tag),
      ),
    );
    expect([...scalarTags].sort()).toEqual([...expected.keys()].sort());
    expect(result.runs["."]!["train/loss"]!.points.map(([s]) => s)).toEqual([2, 4, 6, 8]);
    expect(log.warnings).toEqual([]);
  });

  test("the arguments and the model's config as text, at step 0", () => {
    const run = result.runs["."]!;
    expect(run["args/text_summary"]!.plugin).toBe("text");
    expect(run["args/text_summary"]!.points).toEqual([
      [0, [trainer.args.toJsonString()], expect.any(Number)],
    ]);
    const [config] = textsOf(run["model_config/text_summary"]!);
    expect(JSON.parse(config!)).toMatchObject({ class_name: "Sequential" });
  });

  test("an HParams session: the arguments at train begin, success at train end", () => {
    const run = result.runs["."]!;
    const start = run["_hparams_/session_start_info"]!.hparams_data as {
      session_start_info: { hparams: Record<string, unknown> };
    };
    const hparams = start.session_start_info.hparams;
    const args = trainer.args.toJSON();
    expect(hparams.learning_rate).toBe(0.05);
    expect(hparams.max_steps).toBe(8);
    expect(hparams.output_dir).toBe(outputDir);
    expect(hparams.optim).toBe(args.optim);
    expect(hparams.report_to).toBe(JSON.stringify(args.report_to));
    expect("eval_delay" in hparams).toBe(args.eval_delay !== null);
    expect(run["_hparams_/session_end_info"]!.hparams_data).toMatchObject({
      session_end_info: { status: "STATUS_SUCCESS" },
    });
  });

  test("evaluate() after training: a new file in the same run, at the final step", async () => {
    await trainer.evaluate();
    // Buffered: on disk at the next background write (every 2 s), flush(), close() or exit.
    const callback = trainer.callbackHandler.callbacks.find(
      (cb): cb is TensorBoardCallback => cb instanceof TensorBoardCallback,
    )!;
    expect(scalarPoints(readWithTensorBoard(runDir).files, "eval/loss").map(([s]) => s)).toEqual([
      4, 8,
    ]);
    callback.tbWriter!.flush();
    const again = readWithTensorBoard(runDir);
    expect(again.files).toHaveLength(2);
    expect(again.files.every((f) => f.end === "eof")).toBe(true);
    expect(scalarPoints(again.files, "eval/loss").map(([s]) => s)).toEqual([4, 8, 8]);
    expectIncreasingSteps(again);
  });
});

describe("log directory and restarts", () => {
  test("TENSORBOARD_LOGGING_DIR; train() again from step 0 goes to <dir>/from-step-0, -2, ...", async () => {
    const dir = join(work, "pinned");
    process.env.TENSORBOARD_LOGGING_DIR = dir;
    const trainer = makeTrainer({
      outputDir: join(work, "pinned-out"),
      maxSteps: 4,
      loggingSteps: 2,
    });
    await trainer.train();
    await trainer.train(); // HF resets the state: steps start again at 0
    await trainer.train();
    expect(existsSync(join(work, "pinned-out", "runs"))).toBe(false);
    expect(log.infos.some((m) => m.includes(`writing to ${join(dir, "from-step-0")}`))).toBe(true);
    const result = readWithTensorBoard(dir);
    expect(Object.keys(result.runs).sort()).toEqual([".", "from-step-0", "from-step-0-2"]);
    for (const run of [".", "from-step-0", "from-step-0-2"])
      expect(result.runs[run]!["train/loss"]!.points.map(([s]) => s)).toEqual([2, 4]);
    expectIncreasingSteps(result);
    expect(log.warnings).toEqual([]);
  });

  test("resume from an earlier checkpoint: the resumed steps go to <dir>/from-step-<step>", async () => {
    const dir = join(work, "resume-tb");
    const outputDir = join(work, "resume-out");
    process.env.TENSORBOARD_LOGGING_DIR = dir;
    const options = {
      outputDir,
      maxSteps: 6,
      loggingSteps: 1,
      saveStrategy: "steps" as const,
      saveSteps: 2,
    };
    await makeTrainer(options).train();
    const resumed = makeTrainer(options);
    await resumed.train({ resumeFromCheckpoint: join(outputDir, "checkpoint-4") });
    const result = readWithTensorBoard(dir);
    expect(Object.keys(result.runs).sort()).toEqual([".", "from-step-4"]);
    expect(result.runs["."]!["train/loss"]!.points.map(([s]) => s)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(result.runs["from-step-4"]!["train/loss"]!.points.map(([s]) => s)).toEqual([5, 6]);
    // Core's resume is exact: the resumed run logs the same losses.
    const loss = (run: string) =>
      new Map(result.runs[run]!["train/loss"]!.points.map(([s, v]) => [s, v]));
    expect(loss("from-step-4").get(6)).toBeCloseTo(loss(".").get(6) as number, 5);
    expectIncreasingSteps(result);
  });

  test("HF's default: a resume without a pinned directory is a new timestamped run", async () => {
    const outputDir = join(work, "resume-default");
    const options = {
      outputDir,
      maxSteps: 4,
      loggingSteps: 2,
      saveStrategy: "steps" as const,
      saveSteps: 2,
    };
    await makeTrainer(options).train();
    await new Promise((r) => setTimeout(r, 1100)); // a different second in the name
    await makeTrainer(options).train({ resumeFromCheckpoint: join(outputDir, "checkpoint-2") });
    const runs = readdirSync(join(outputDir, "runs"));
    expect(runs).toHaveLength(2);
    expectIncreasingSteps(readWithTensorBoard(join(outputDir, "runs")));
  });

  test("defaults and helpers: HF's timestamp format, ~ expansion, HPO trial directories", () => {
    expect(runTimestamp(new Date(2024, 10, 28, 17, 42, 5))).toBe("Nov28_17-42-05");
    expect(runTimestamp(new Date(2024, 0, 2, 3, 4, 5))).toBe("Jan02_03-04-05");
    expect(defaultLogDir("out", new Date(2024, 10, 28, 17, 42, 5))).toBe(
      join("out", "runs", `Nov28_17-42-05_${hostname()}`),
    );
    expect(expandUser("~")).toBe(homedir());
    expect(expandUser("~/tb")).toBe(join(homedir(), "tb"));
    expect(expandUser("/abs/~x")).toBe("/abs/~x");

    const outputDir = join(work, "hpo");
    const callback = new TensorBoardCallback({
      env: { TENSORBOARD_LOGGING_DIR: join(work, "ignored-for-trials") },
      logger: log.logger,
    });
    const args = new TrainingArguments({ outputDir, reportTo: "none" });
    const state = new TrainerState();
    state.isHyperParamSearch = true;
    state.trialName = "trial-3";
    callback.onTrainBegin(args, state, new TrainerControl(), {});
    const writerDir = callback.tbWriter!.logDir;
    callback.onTrainEnd();
    expect(writerDir).toMatch(
      new RegExp(`^${outputDir}/runs/[A-Z][a-z]{2}\\d{2}_[\\d-]+_.+/trial-3$`),
    );
    expect(existsSync(join(work, "ignored-for-trials"))).toBe(false);
  });

  test("a model's own config is written as model_config, secrets redacted", () => {
    const dir = join(work, "config");
    const callback = new TensorBoardCallback({ logDir: dir, logger: log.logger, hparams: false });
    const args = new TrainingArguments({ outputDir: join(work, "config-out"), reportTo: "none" });
    const plain = { config: { vocab_size: 10, hidden_size: 8, hub_token: "abc123" } };
    callback.onTrainBegin(args, new TrainerState(), new TrainerControl(), { model: plain });
    callback.onTrainEnd();
    const withMethod = {
      config: { toJsonString: () => '{\n  "hidden_size": 16,\n  "max_tokens": 512\n}' },
    };
    callback.onTrainBegin(args, new TrainerState(), new TrainerControl(), { model: withMethod });
    callback.onTrainEnd();
    const texts = textsOf(readWithTensorBoard(dir).runs["."]!["model_config/text_summary"]!);
    expect(texts.map((text) => JSON.parse(text))).toEqual([
      { hidden_size: 8, hub_token: "<REDACTED>", vocab_size: 10 },
      { hidden_size: 16, max_tokens: 512 },
    ]);
    expect(texts[1]).toBe('{\n  "hidden_size": 16,\n  "max_tokens": 512\n}');
    expect(readWithTensorBoard(dir).runs["."]!["_hparams_/session_start_info"]).toBeUndefined();
  });

  test("only the world-zero process writes", () => {
    const dir = join(work, "rank1");
    const callback = new TensorBoardCallback({ logDir: dir, logger: log.logger });
    const args = new TrainingArguments({ outputDir: join(work, "rank1-out"), reportTo: "none" });
    const state = new TrainerState();
    state.isWorldProcessZero = false;
    callback.onTrainBegin(args, state, new TrainerControl(), {});
    callback.onLog(args, state, new TrainerControl(), { logs: { loss: 1 } });
    callback.onTrainEnd();
    expect(existsSync(dir)).toBe(false);
  });
});

describe("values that are not finite numbers", () => {
  test("NaN and Infinity metrics are skipped with one warning per key", async () => {
    const outputDir = join(work, "nan");
    let calls = 0;
    const trainer = makeTrainer(
      { outputDir, maxSteps: 6, loggingSteps: 2, evalStrategy: "steps", evalSteps: 2 },
      {
        computeMetrics: () => {
          calls++;
          return { nan_metric: NaN, inf_metric: calls === 2 ? 1 : -Infinity, acc: calls / 10 };
        },
      },
    );
    await trainer.train();
    expect(calls).toBe(3);
    const warnings = log.warnings.filter((m) => m.includes("non-finite"));
    expect(warnings).toHaveLength(2);
    expect(warnings.filter((m) => m.includes('"eval/nan_metric" is NaN at step 2'))).toHaveLength(
      1,
    );
    expect(
      warnings.filter((m) => m.includes('"eval/inf_metric" is -Infinity at step 2')),
    ).toHaveLength(1);
    const runs = readdirSync(join(outputDir, "runs"));
    const result = readWithTensorBoard(join(outputDir, "runs", runs[0]!));
    expect(scalarPoints(result.files, "eval/nan_metric")).toEqual([]);
    expect(scalarPoints(result.files, "eval/inf_metric")).toEqual([[4, 1]]);
    expect(scalarPoints(result.files, "eval/acc")).toEqual([
      [2, Math.fround(0.1)],
      [4, Math.fround(0.2)],
      [6, Math.fround(0.3)],
    ]);
  });

  test("booleans as 1/0, strings as text (as HF), anything else dropped with HF's warning once", () => {
    const dir = join(work, "kinds");
    const callback = new TensorBoardCallback({ logDir: dir, logger: log.logger });
    const args = new TrainingArguments({ outputDir: join(work, "kinds-out"), reportTo: "none" });
    const state = new TrainerState();
    const logs = {
      loss: 0.25,
      flag: true,
      off: false,
      note: "hello",
      eval_obj: { a: 1 },
      nothing: null,
      list: [1, 2],
    } as unknown as Record<string, number>;
    for (const step of [1, 2]) {
      state.globalStep = step;
      callback.onLog(args, state, new TrainerControl(), { logs });
    }
    callback.onTrainEnd();
    expect(log.warnings).toHaveLength(3);
    expect(log.warnings[0]).toBe(
      `Trainer is attempting to log a value of "{"a":1}" of type <class 'object'> for key "eval/obj" as a scalar. This invocation of Tensorboard's writer.add_scalar() is incorrect so we dropped this attribute. Further values of "eval/obj" are dropped without a warning.`,
    );
    expect(log.warnings[1]).toContain(`"null" of type <class 'NoneType'> for key "train/nothing"`);
    expect(log.warnings[2]).toContain(`of type <class 'list'> for key "train/list"`);
    const result = readWithTensorBoard(dir);
    expect(scalarPoints(result.files, "train/flag")).toEqual([
      [1, 1],
      [2, 1],
    ]);
    expect(scalarPoints(result.files, "train/off")).toEqual([
      [1, 0],
      [2, 0],
    ]);
    expect(result.runs["."]!["train/note/text_summary"]!.points.map(([s, v]) => [s, v])).toEqual([
      [1, ["hello"]],
      [2, ["hello"]],
    ]);
    expect(Object.keys(result.runs["."]!).sort()).toEqual(
      ["train/flag", "train/loss", "train/note/text_summary", "train/off"].sort(),
    );
  });

  test('nonFinite: "write" writes NaN and infinities as HF does', () => {
    const dir = join(work, "nan-write");
    const callback = new TensorBoardCallback({
      logDir: dir,
      logger: log.logger,
      env: { TRAINKIT_TENSORBOARD_NON_FINITE: "write" },
    });
    const args = new TrainingArguments({
      outputDir: join(work, "nan-write-out"),
      reportTo: "none",
    });
    const state = new TrainerState();
    state.globalStep = 3;
    callback.onLog(args, state, new TrainerControl(), { logs: { loss: NaN, grad_norm: Infinity } });
    callback.onTrainEnd();
    const result = readWithTensorBoard(dir);
    expect(scalarPoints(result.files, "train/loss")).toEqual([[3, "NaN"]]);
    expect(scalarPoints(result.files, "train/grad_norm")).toEqual([[3, "Infinity"]]);
    expect(log.warnings).toEqual([]);
  });
});

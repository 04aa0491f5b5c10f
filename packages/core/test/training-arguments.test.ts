import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import {
  OPTIMIZER_NAMES,
  REDACTED,
  SCHEDULER_TYPES,
  TrainingArguments,
  TrainingArgumentsError,
  parsePythonJson,
  type TrainingArgumentsOptions,
} from "../src/index.js";

const TRACES = resolve(import.meta.dirname, "fixtures/hf-traces");
const HF_DEFAULTS_PATH = join(TRACES, "training_args_defaults.json");
const HF_DEFAULTS_TEXT = readFileSync(HF_DEFAULTS_PATH, "utf8");
const HF_DEFAULTS = JSON.parse(HF_DEFAULTS_TEXT) as Record<string, unknown>;

/** Our options that transformers' TrainingArguments does not have. */
const OURS_ONLY = new Set(["backend", "warmup_ratio"]);
/** Shared options whose default differs from HF's on purpose. */
const DELIBERATE_DIFFERENCES: Record<string, [ours: unknown, hf: unknown]> = {
  output_dir: ["trainer_output", "out/args_defaults"], // HF's trace ran with an explicit output_dir
  report_to: ["all", []], // trainkit reports to every installed integration by default
  optim: ["adamw", "adamw_torch_fused"], // TensorFlow.js has one AdamW
  // A resumed run continues with the callback states stored in the checkpoint (exact resume)
  restore_callback_states_from_checkpoint: [true, false],
};

/** The error `new TrainingArguments(options)` throws; fails the test if it does not throw. */
function errorFor(options: unknown): TrainingArgumentsError {
  try {
    new TrainingArguments(options as TrainingArgumentsOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(TrainingArgumentsError);
    expect(error).toBeInstanceOf(Error);
    return error as TrainingArgumentsError;
  }
  throw new Error(`expected new TrainingArguments(${JSON.stringify(options)}) to throw`);
}

const temporaryDirs: string[] = [];
function temporaryDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "trainkit-args-"));
  temporaryDirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of temporaryDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

interface InvalidCase {
  /** What is wrong, for the test name. */
  what: string;
  options: unknown;
  /** The option the error must name. */
  option: string;
  /** How the bad value must appear in the message. */
  value: string;
  /** A piece of the message that says how to fix it. */
  fix: string;
}

const steps = (option: string, value: number): InvalidCase => ({
  what: `${option} ${value}`,
  options: { [option]: value, ...(option === "evalSteps" ? { evalStrategy: "steps" } : {}) },
  option,
  value: `(got ${value})`,
  fix: "at least 1, or a fraction in (0, 1)",
});
const batch = (option: string, value: number): InvalidCase => ({
  what: `${option} ${value}`,
  options: { [option]: value },
  option,
  value: `(got ${value})`,
  fix: "must be a whole number of at least 1",
});

const INVALID: InvalidCase[] = [
  // maxSteps: -1 means "use numTrainEpochs"; anything else must be a positive whole number.
  ...[0, -2, -100, 2.5].map((value) => ({
    what: `maxSteps ${value}`,
    options: { maxSteps: value },
    option: "maxSteps",
    value: `(got ${value})`,
    fix: "or -1 to train for numTrainEpochs",
  })),
  // Step counts: whole numbers >= 1, or a ratio in (0, 1).
  ...[0, -10, 2.5, Number.NaN].map((value) => steps("loggingSteps", value)),
  ...[0, -1, 12.5].map((value) => steps("evalSteps", value)),
  ...[0, -100, 2.5, Infinity].map((value) => steps("saveSteps", value)),
  // Batch sizes and accumulation.
  ...[0, -8, 2.5].map((value) => batch("perDeviceTrainBatchSize", value)),
  ...[0, -1].map((value) => batch("perDeviceEvalBatchSize", value)),
  ...[0, -2, 1.5].map((value) => batch("gradientAccumulationSteps", value)),
  {
    what: "numTrainEpochs negative",
    options: { numTrainEpochs: -1 },
    option: "numTrainEpochs",
    value: "(got -1)",
    fix: "must be a number of 0 or more",
  },
  {
    what: "numTrainEpochs 0 with maxSteps -1",
    options: { numTrainEpochs: 0, maxSteps: -1 },
    option: "numTrainEpochs",
    value: "is 0 and maxSteps is -1",
    fix: "Set numTrainEpochs above 0 or maxSteps to a number of steps",
  },
  {
    what: "warmupSteps negative",
    options: { warmupSteps: -5 },
    option: "warmupSteps",
    value: "(got -5)",
    fix: "must be 0 (no warmup), a whole number of steps, or a fraction in (0, 1)",
  },
  {
    what: "warmupSteps 2.5",
    options: { warmupSteps: 2.5 },
    option: "warmupSteps",
    value: "(got 2.5)",
    fix: "a whole number of steps",
  },
  // Strategy and scheduler names.
  {
    what: "unknown loggingStrategy",
    options: { loggingStrategy: "sometimes" },
    option: "loggingStrategy",
    value: '(got "sometimes")',
    fix: 'must be one of "no", "steps", "epoch"',
  },
  {
    what: "unknown evalStrategy",
    options: { evalStrategy: "step" },
    option: "evalStrategy",
    value: '(got "step")',
    fix: 'must be one of "no", "steps", "epoch"',
  },
  {
    what: "IntervalStrategy in capitals",
    options: { evalStrategy: "STEPS" },
    option: "evalStrategy",
    value: '(got "STEPS")',
    fix: '"steps"',
  },
  {
    what: "unknown saveStrategy",
    options: { saveStrategy: "always" },
    option: "saveStrategy",
    value: '(got "always")',
    fix: 'must be one of "no", "steps", "epoch", "best"',
  },
  {
    what: "unknown lrSchedulerType",
    options: { lrSchedulerType: "cosine_annealing" },
    option: "lrSchedulerType",
    value: '(got "cosine_annealing")',
    fix: `must be one of ${SCHEDULER_TYPES.map((name) => `"${name}"`).join(", ")}`,
  },
  {
    what: "unknown optim",
    options: { optim: "adafactor" },
    option: "optim",
    value: '(got "adafactor")',
    fix: `must be one of ${OPTIMIZER_NAMES.map((name) => `"${name}"`).join(", ")}`,
  },
  {
    what: "unknown backend",
    options: { backend: "webgl" },
    option: "backend",
    value: '(got "webgl")',
    fix: 'must be one of "tensorflow", "wasm", "cpu"',
  },
  // Best model.
  {
    what: "loadBestModelAtEnd with eval and save strategies that differ",
    options: { loadBestModelAtEnd: true, evalStrategy: "epoch", saveStrategy: "steps" },
    option: "loadBestModelAtEnd",
    value: 'evalStrategy is "epoch" and saveStrategy is "steps"',
    fix: "Set both to the same value",
  },
  {
    what: "loadBestModelAtEnd with saveSteps not a multiple of evalSteps",
    options: { loadBestModelAtEnd: true, evalStrategy: "steps", evalSteps: 500, saveSteps: 700 },
    option: "loadBestModelAtEnd",
    value: "saveSteps is 700 and evalSteps is 500",
    fix: "Use saveSteps 500 (a multiple of 500)",
  },
  {
    what: "loadBestModelAtEnd with saveSteps not a multiple of the default evalSteps",
    options: { loadBestModelAtEnd: true, evalStrategy: "steps", loggingSteps: 40, saveSteps: 100 },
    option: "loadBestModelAtEnd",
    value: "saveSteps is 100 and evalSteps is 40",
    fix: "Use saveSteps 120 (a multiple of 40)",
  },
  {
    what: "loadBestModelAtEnd with a ratio saveSteps and whole evalSteps",
    options: { loadBestModelAtEnd: true, evalStrategy: "steps", evalSteps: 10, saveSteps: 0.5 },
    option: "loadBestModelAtEnd",
    value: "saveSteps is 0.5 and evalSteps is 10",
    fix: "both as whole numbers or both as ratios",
  },
  {
    what: "loadBestModelAtEnd with ratios that are not multiples",
    options: { loadBestModelAtEnd: true, evalStrategy: "steps", evalSteps: 0.2, saveSteps: 0.3 },
    option: "loadBestModelAtEnd",
    value: "saveSteps is 0.3 and evalSteps is 0.2",
    fix: "Use saveSteps",
  },
  {
    what: 'loadBestModelAtEnd with evalStrategy "no"',
    options: { loadBestModelAtEnd: true },
    option: "loadBestModelAtEnd",
    value: 'evalStrategy is "no"',
    fix: 'Set evalStrategy to "steps" or "epoch"',
  },
  {
    what: 'metricForBestModel with evalStrategy "no"',
    options: { metricForBestModel: "accuracy" },
    option: "metricForBestModel",
    value: 'is "accuracy" but evalStrategy is "no"',
    fix: "or remove metricForBestModel",
  },
  {
    what: "empty metricForBestModel",
    options: { metricForBestModel: "", evalStrategy: "epoch" },
    option: "metricForBestModel",
    value: '(got "")',
    fix: "must be a non-empty string",
  },
  {
    what: 'saveStrategy "best" without metricForBestModel',
    options: { saveStrategy: "best", evalStrategy: "steps" },
    option: "saveStrategy",
    value: 'is "best"',
    fix: 'Set metricForBestModel, e.g. "loss"',
  },
  {
    what: 'saveStrategy "best" with evalStrategy "no"',
    options: { saveStrategy: "best", metricForBestModel: "loss" },
    option: "saveStrategy",
    value: 'evalStrategy is "no"',
    fix: 'Set evalStrategy to "steps" or "epoch"',
  },
  {
    what: "greaterIsBetter not a boolean",
    options: { greaterIsBetter: "yes", evalStrategy: "epoch", metricForBestModel: "f1" },
    option: "greaterIsBetter",
    value: '(got "yes")',
    fix: "must be true or false",
  },
  // Warmup.
  ...[-0.1, 1.5].map((value) => ({
    what: `warmupRatio ${value}`,
    options: { warmupRatio: value },
    option: "warmupRatio",
    value: `(got ${value})`,
    fix: "must be a number between 0 and 1",
  })),
  // reportTo.
  {
    what: "reportTo a number",
    options: { reportTo: 3 },
    option: "reportTo",
    value: "(got 3)",
    fix: 'must be "all" (every installed integration), "none", or a list of integration names',
  },
  {
    what: "reportTo an object",
    options: { reportTo: { mlflow: true } },
    option: "reportTo",
    value: '(got {"mlflow":true})',
    fix: 'such as ["mlflow", "tensorboard"]',
  },
  {
    what: "reportTo a list with a non-string",
    options: { reportTo: ["mlflow", 3] },
    option: "reportTo",
    value: '(got ["mlflow",3])',
    fix: "a list of integration names",
  },
  {
    what: "reportTo an empty string",
    options: { reportTo: "" },
    option: "reportTo",
    value: '(got "")',
    fix: 'must be "all"',
  },
  {
    what: "reportTo a list with a blank name",
    options: { reportTo: ["mlflow", "  "] },
    option: "reportTo",
    value: '(got ["mlflow","  "])',
    fix: "a list of integration names",
  },
  {
    what: 'reportTo mixing "all" with names',
    options: { reportTo: ["all", "mlflow"] },
    option: "reportTo",
    value: '(got ["all","mlflow"])',
    fix: 'Use "all", "none", or a list of integration names only',
  },
  {
    what: 'reportTo mixing "none" with names',
    options: { reportTo: ["wandb", "none"] },
    option: "reportTo",
    value: '(got ["wandb","none"])',
    fix: "cannot mix",
  },
  {
    what: "reportTo null",
    options: { reportTo: null },
    option: "reportTo",
    value: "(got null)",
    fix: '"none"',
  },
  // Optimizer numbers.
  {
    what: "adamBeta1 = 1",
    options: { adamBeta1: 1 },
    option: "adamBeta1",
    value: "(got 1)",
    fix: "must be at least 0 and less than 1, e.g. 0.9",
  },
  {
    what: "adamBeta2 negative",
    options: { adamBeta2: -0.5 },
    option: "adamBeta2",
    value: "(got -0.5)",
    fix: "less than 1",
  },
  {
    what: "adamEpsilon 0",
    options: { adamEpsilon: 0 },
    option: "adamEpsilon",
    value: "(got 0)",
    fix: "must be a number greater than 0",
  },
  {
    what: "negative learningRate",
    options: { learningRate: -0.001 },
    option: "learningRate",
    value: "(got -0.001)",
    fix: "must be a number of 0 or more",
  },
  {
    what: "infinite learningRate",
    options: { learningRate: Infinity },
    option: "learningRate",
    value: "(got Infinity)",
    fix: "must be a number of 0 or more",
  },
  {
    what: "NaN weightDecay",
    options: { weightDecay: Number.NaN },
    option: "weightDecay",
    value: "(got NaN)",
    fix: "must be a number of 0 or more",
  },
  {
    what: "negative maxGradNorm",
    options: { maxGradNorm: -1 },
    option: "maxGradNorm",
    value: "(got -1)",
    fix: "0 or more",
  },
  {
    what: "optimArgs with momentum and optim adamw",
    options: { optimArgs: "momentum=0.9", optim: "adamw" },
    option: "optimArgs",
    value: 'optim is "adamw"',
    fix: 'Set optim to "sgd"',
  },
  {
    what: "optimArgs with nesterov and the default optim",
    options: { optimArgs: "momentum=0.9,nesterov=True" },
    option: "optimArgs",
    value: 'optim is "adamw"',
    fix: 'Set optim to "sgd"',
  },
  {
    what: "optimArgs not key=value",
    options: { optim: "sgd", optimArgs: "momentum 0.9" },
    option: "optimArgs",
    value: '(got "momentum 0.9")',
    fix: 'e.g. "momentum=0.9"',
  },
  {
    what: "lrSchedulerKwargs not an object",
    options: { lrSchedulerKwargs: "num_cycles=2" },
    option: "lrSchedulerKwargs",
    value: '(got "num_cycles=2")',
    fix: "must be an object of keyword arguments",
  },
  {
    what: "lrSchedulerKwargs a list",
    options: { lrSchedulerKwargs: [1, 2] },
    option: "lrSchedulerKwargs",
    value: "(got [1,2])",
    fix: "must be an object of keyword arguments",
  },
  // optimArgs and lrSchedulerKwargs keys and values: a typo is an error, not silently ignored.
  {
    what: "optimArgs with a typo for sgd",
    options: { optim: "sgd", optimArgs: "momentun=0.9" },
    option: "optimArgs",
    value: '"momentun"',
    fix: "Did you mean momentum?",
  },
  {
    what: "optimArgs sgd key that does not exist",
    options: { optim: "sgd", optimArgs: "foo=1" },
    option: "optimArgs",
    value: '"foo"',
    fix: "it takes momentum, dampening, nesterov",
  },
  {
    what: "optimArgs with torch's eps for adamw",
    options: { optimArgs: "eps=1e-6" },
    option: "optimArgs",
    value: '"eps"',
    fix: "Use the adamEpsilon option instead",
  },
  {
    what: "optimArgs with any key for adam",
    options: { optim: "adam", optimArgs: "amsgrad=True" },
    option: "optimArgs",
    value: '"amsgrad"',
    fix: 'optim "adam" takes no optimArgs',
  },
  {
    what: "optimArgs momentum not a number",
    options: { optim: "sgd", optimArgs: "momentum=fast" },
    option: "optimArgs",
    value: '(got "momentum=fast")',
    fix: "not a number",
  },
  {
    what: "optimArgs nesterov not a boolean",
    options: { optim: "sgd", optimArgs: "momentum=0.9,nesterov=1" },
    option: "optimArgs",
    value: '(got "momentum=0.9,nesterov=1")',
    fix: "not true or false",
  },
  {
    what: "lrSchedulerKwargs with a typo for cosine",
    options: { lrSchedulerType: "cosine", lrSchedulerKwargs: { num_cycle: 2 } },
    option: "lrSchedulerKwargs",
    value: '"num_cycle"',
    fix: "Did you mean num_cycles?",
  },
  {
    what: "lrSchedulerKwargs polynomial's power for linear",
    options: { lrSchedulerKwargs: { power: 2 } },
    option: "lrSchedulerKwargs",
    value: 'lrSchedulerType "linear" takes none',
    fix: 'power is an argument of "polynomial"',
  },
  {
    what: "lrSchedulerKwargs cosine's num_cycles for polynomial",
    options: { lrSchedulerType: "polynomial", lrSchedulerKwargs: { num_cycles: 2 } },
    option: "lrSchedulerKwargs",
    value: '"num_cycles"',
    fix: 'argument of "cosine" and "cosine_with_restarts"',
  },
  {
    what: "lrSchedulerKwargs value not a number",
    options: { lrSchedulerType: "polynomial", lrSchedulerKwargs: { lr_end: "1e-7" } },
    option: "lrSchedulerKwargs",
    value: '(got "1e-7")',
    fix: ".lr_end must be a number",
  },
  // Seeds and limits.
  ...[-1, 1.5, 2 ** 32].map((value) => ({
    what: `seed ${value}`,
    options: { seed: value },
    option: "seed",
    value: `(got ${value})`,
    fix: "must be a whole number from 0 to 4294967295",
  })),
  {
    what: "dataSeed negative",
    options: { dataSeed: -3 },
    option: "dataSeed",
    value: "(got -3)",
    fix: "from 0 to 4294967295",
  },
  {
    what: "saveTotalLimit 0",
    options: { saveTotalLimit: 0 },
    option: "saveTotalLimit",
    value: "(got 0)",
    fix: "must be a whole number of at least 1",
  },
  {
    what: "evalDelay negative",
    options: { evalDelay: -1, evalStrategy: "steps" },
    option: "evalDelay",
    value: "(got -1)",
    fix: "0 or more",
  },
  // Wrong types.
  {
    what: "a string for learningRate",
    options: { learningRate: "5e-5" },
    option: "learningRate",
    value: '(got "5e-5")',
    fix: "must be a number of 0 or more",
  },
  {
    what: "a string for numTrainEpochs",
    options: { numTrainEpochs: "3" },
    option: "numTrainEpochs",
    value: '(got "3")',
    fix: "must be a number",
  },
  {
    what: "a list for learningRate",
    options: { learningRate: [1e-3] },
    option: "learningRate",
    value: "(got [0.001])",
    fix: "must be a number",
  },
  {
    what: "a string for a boolean",
    options: { loadBestModelAtEnd: "true" },
    option: "loadBestModelAtEnd",
    value: '(got "true")',
    fix: "must be true or false",
  },
  {
    what: "a number for a boolean",
    options: { loggingFirstStep: 1 },
    option: "loggingFirstStep",
    value: "(got 1)",
    fix: "must be true or false",
  },
  {
    what: "null for a non-nullable option",
    options: { perDeviceTrainBatchSize: null },
    option: "perDeviceTrainBatchSize",
    value: "(got null)",
    fix: "at least 1",
  },
  {
    what: "a BigInt for maxSteps",
    options: { maxSteps: 10n },
    option: "maxSteps",
    value: "(got 10n)",
    fix: "whole number of update steps",
  },
  {
    what: "a Date for runName",
    options: { runName: new Date(0) },
    option: "runName",
    value: "(got a Date)",
    fix: "must be a non-empty string",
  },
  {
    what: "empty outputDir",
    options: { outputDir: "" },
    option: "outputDir",
    value: '(got "")',
    fix: "must be a non-empty string",
  },
  {
    what: "empty resumeFromCheckpoint",
    options: { resumeFromCheckpoint: "" },
    option: "resumeFromCheckpoint",
    value: '(got "")',
    fix: "must be a non-empty string",
  },
  // Unknown options.
  {
    what: "snake_case option",
    options: { learning_rate: 1e-4 },
    option: "learning_rate",
    value: "learning_rate is not a TrainingArguments option",
    fix: "Options are camelCase here: use learningRate.",
  },
  {
    what: "snake_case option with digits",
    options: { adam_beta1: 0.8 },
    option: "adam_beta1",
    value: "adam_beta1 is not",
    fix: "use adamBeta1",
  },
  {
    what: "typo in an option",
    options: { learningRat: 1e-4 },
    option: "learningRat",
    value: "learningRat is not a TrainingArguments option",
    fix: "Did you mean learningRate?",
  },
  {
    what: "typo in a snake_case option",
    options: { per_device_train_batch_sise: 4 },
    option: "per_device_train_batch_sise",
    value: "per_device_train_batch_sise is not",
    fix: "Did you mean perDeviceTrainBatchSize?",
  },
  {
    what: "the old HF name evaluationStrategy",
    options: { evaluation_strategy: "steps" },
    option: "evaluation_strategy",
    value: "evaluation_strategy is not",
    fix: "transformers renamed it: use evalStrategy.",
  },
  {
    what: "the old HF name in camelCase",
    options: { evaluationStrategy: "steps" },
    option: "evaluationStrategy",
    value: "evaluationStrategy is not",
    fix: "transformers renamed it: use evalStrategy.",
  },
  {
    what: "an option that does not exist at all",
    options: { fp16: true },
    option: "fp16",
    value: "fp16 is not a TrainingArguments option",
    fix: "Remove it",
  },
  // evalOnStart.
  {
    what: 'evalOnStart with evalStrategy "no"',
    options: { evalOnStart: true },
    option: "evalOnStart",
    value: 'evalStrategy is "no"',
    fix: "or evalOnStart to false",
  },
  // Not an options object.
  {
    what: "null options",
    options: null,
    option: "options",
    value: "(got null)",
    fix: "must be an object of options",
  },
  {
    what: "a string as options",
    options: "out",
    option: "options",
    value: '(got "out")',
    fix: 'such as { outputDir: "out" }',
  },
  {
    what: "a list as options",
    options: [{ outputDir: "out" }],
    option: "options",
    value: '(got [{"outputDir":"out"}])',
    fix: "must be an object of options",
  },
];

describe("TrainingArguments rejects invalid options", () => {
  test("the table has at least 30 distinct invalid inputs", () => {
    expect(INVALID.length).toBeGreaterThanOrEqual(30);
    expect(new Set(INVALID.map((c) => c.what)).size).toBe(INVALID.length);
  });

  test.each(INVALID)("$what", ({ options, option, value, fix }) => {
    const error = errorFor(options);
    expect(error.name).toBe("TrainingArgumentsError");
    expect(error.problems.map((p) => p.option)).toContain(option);
    const problem = error.problems.find((p) => p.option === option)!;
    // The message names the option, the bad value and the fix, in one line per problem.
    expect(error.message).toContain(`  - ${option} `);
    expect(error.message).toContain(value);
    expect(error.message).toContain(fix);
    expect(`${problem.option} ${problem.message}`).toContain(value);
    expect(problem.message).toContain(fix);
    expect(error.message).toMatch(/^Invalid TrainingArguments \(\d+ problems?\):\n/);
  });

  test("every problem is reported together in one error", () => {
    const error = errorFor({
      maxSteps: 0,
      learningRate: -1,
      evalStrategy: "sometimes",
      learning_rate: 1e-4,
      reportTo: 7,
    });
    expect(error.problems.map((p) => p.option).sort()).toEqual([
      "evalStrategy",
      "learningRate",
      "learning_rate",
      "maxSteps",
      "reportTo",
    ]);
    expect(error.message).toMatch(/^Invalid TrainingArguments \(5 problems\):\n/);
    expect(error.message.split("\n")).toHaveLength(6);
    for (const { option, message } of error.problems)
      expect(error.message).toContain(`  - ${option} ${message}`);
  });

  test("rules between options are reported together too", () => {
    const error = errorFor({ loadBestModelAtEnd: true, evalOnStart: true, saveStrategy: "best" });
    expect(error.problems.map((p) => p.option)).toEqual([
      "loadBestModelAtEnd",
      "saveStrategy",
      "evalOnStart",
    ]);
    expect(error.message).toContain("(3 problems)");
  });

  test("one problem reads as singular", () => {
    expect(errorFor({ maxSteps: 0 }).message).toMatch(/^Invalid TrainingArguments \(1 problem\):/);
  });

  test("secrets in a bad value never reach the error message", () => {
    const error = errorFor({
      reportTo: ["https://user:hunter2@tracker.example/x", 3],
      runName: "",
      outputDir: 5,
    });
    expect(error.message).not.toContain("hunter2");
    expect(error.message).toContain(REDACTED);
    expect(errorFor({ optimArgs: "https://u:hunter2@h" }).message).not.toContain("hunter2");
  });

  test("a very long bad value is shortened in the message", () => {
    const error = errorFor({ reportTo: { names: "x".repeat(500) } });
    expect(error.message.length).toBeLessThan(400);
    expect(error.message).toContain("...");
  });

  test("a circular bad value does not break the message", () => {
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    expect(errorFor({ reportTo: loop }).message).toContain("(got an object)");
  });
});

describe("TrainingArguments defaults and valid options", () => {
  test("new TrainingArguments() has HF's defaults for every shared option", () => {
    const ours = new TrainingArguments().toJSON();
    const shared = Object.keys(ours).filter((key) => !OURS_ONLY.has(key));
    // Every option we have, except our own additions, is one of HF's.
    expect(shared.filter((key) => !(key in HF_DEFAULTS))).toEqual([]);
    expect(shared.length).toBeGreaterThanOrEqual(40);
    for (const key of shared) {
      const expected =
        key in DELIBERATE_DIFFERENCES ? DELIBERATE_DIFFERENCES[key]![0] : HF_DEFAULTS[key];
      expect({ key, value: ours[key] }).toEqual({ key, value: expected });
    }
    for (const [key, [, hf]] of Object.entries(DELIBERATE_DIFFERENCES))
      expect(HF_DEFAULTS[key]).toEqual(hf);
  });

  test("defaults as camelCase fields", () => {
    const args = new TrainingArguments();
    expect(args).toMatchObject({
      outputDir: "trainer_output",
      numTrainEpochs: 3,
      maxSteps: -1,
      perDeviceTrainBatchSize: 8,
      perDeviceEvalBatchSize: 8,
      gradientAccumulationSteps: 1,
      learningRate: 5e-5,
      weightDecay: 0,
      adamBeta1: 0.9,
      adamBeta2: 0.999,
      adamEpsilon: 1e-8,
      maxGradNorm: 1,
      optim: "adamw",
      optimArgs: null,
      lrSchedulerType: "linear",
      lrSchedulerKwargs: null,
      warmupSteps: 0,
      warmupRatio: 0,
      loggingStrategy: "steps",
      loggingSteps: 500,
      loggingFirstStep: false,
      loggingNanInfFilter: true,
      evalStrategy: "no",
      evalSteps: null,
      evalDelay: 0,
      evalOnStart: false,
      saveStrategy: "steps",
      saveSteps: 500,
      saveTotalLimit: null,
      saveOnlyModel: false,
      loadBestModelAtEnd: false,
      metricForBestModel: null,
      greaterIsBetter: null,
      seed: 42,
      dataSeed: null,
      dataloaderDropLast: false,
      ignoreDataSkip: false,
      predictionLossOnly: false,
      restoreCallbackStatesFromCheckpoint: true,
      resumeFromCheckpoint: null,
      reportTo: "all",
      runName: null,
      disableTqdm: false,
      backend: null,
    });
    expect(new TrainingArguments({})).toEqual(args);
  });

  test("undefined means the default", () => {
    expect(new TrainingArguments({ learningRate: undefined, reportTo: undefined })).toEqual(
      new TrainingArguments(),
    );
  });

  test("given values are kept", () => {
    const args = new TrainingArguments({
      outputDir: "runs/a",
      learningRate: 1e-3,
      numTrainEpochs: 2.5,
      perDeviceTrainBatchSize: 32,
      lrSchedulerType: "cosine",
      lrSchedulerKwargs: { num_cycles: 0.5 },
      optim: "sgd",
      optimArgs: "momentum=0.9,nesterov=True",
      seed: 0,
      dataSeed: 4294967295,
      backend: "cpu",
      saveTotalLimit: 2,
    });
    expect(args).toMatchObject({
      outputDir: "runs/a",
      learningRate: 1e-3,
      numTrainEpochs: 2.5,
      perDeviceTrainBatchSize: 32,
      lrSchedulerType: "cosine",
      lrSchedulerKwargs: { num_cycles: 0.5 },
      optim: "sgd",
      optimArgs: "momentum=0.9,nesterov=True",
      seed: 0,
      dataSeed: 4294967295,
      backend: "cpu",
      saveTotalLimit: 2,
    });
  });

  test.each([
    { maxSteps: -1 },
    { maxSteps: 1 },
    { maxSteps: 100, numTrainEpochs: 0 },
    { learningRate: 0, weightDecay: 0.01, maxGradNorm: 0 },
    { adamBeta1: 0, adamBeta2: 0.99999 },
    { warmupRatio: 0 },
    { warmupRatio: 1 },
    { warmupSteps: 100 },
    { seed: 4294967295 },
    { loggingStrategy: "no", evalStrategy: "epoch", saveStrategy: "no" },
    { saveStrategy: "best", evalStrategy: "steps", metricForBestModel: "accuracy" },
    { metricForBestModel: "f1", evalStrategy: "epoch" },
    { evalOnStart: true, evalStrategy: "epoch" },
    { optim: "sgd", optimArgs: "momentum=0.9" },
    { optim: "sgd", optimArgs: "momentum=0.9,dampening=0.1,nesterov=False" },
    { lrSchedulerType: "cosine", lrSchedulerKwargs: { num_cycles: 2 } },
    { lrSchedulerType: "polynomial", lrSchedulerKwargs: { lr_end: 1e-9, power: 2 } },
    { lrSchedulerKwargs: {} },
    { reportTo: ["mlflow", "tensorboard"] },
  ] satisfies TrainingArgumentsOptions[])("valid: %o", (options) => {
    expect(() => new TrainingArguments(options)).not.toThrow();
  });

  test("fractional steps in (0, 1) are ratios and accepted", () => {
    const args = new TrainingArguments({
      maxSteps: 100,
      loggingSteps: 0.1,
      evalStrategy: "steps",
      evalSteps: 0.05,
      saveSteps: 0.2,
      warmupSteps: 0.1,
    });
    expect(args).toMatchObject({
      loggingSteps: 0.1,
      evalSteps: 0.05,
      saveSteps: 0.2,
      warmupSteps: 0.1,
    });
    expect(new TrainingArguments({ loggingSteps: 1, saveSteps: 1 }).loggingSteps).toBe(1);
  });

  test('evalSteps defaults to loggingSteps when evalStrategy is "steps"', () => {
    expect(new TrainingArguments({ evalStrategy: "steps" }).evalSteps).toBe(500);
    expect(new TrainingArguments({ evalStrategy: "steps", loggingSteps: 25 }).evalSteps).toBe(25);
    expect(new TrainingArguments({ evalStrategy: "steps", loggingSteps: 0.25 }).evalSteps).toBe(
      0.25,
    );
    expect(new TrainingArguments({ evalStrategy: "steps", evalSteps: 7 }).evalSteps).toBe(7);
    expect(new TrainingArguments({ evalStrategy: "epoch", loggingSteps: 25 }).evalSteps).toBeNull();
    expect(new TrainingArguments({ loggingSteps: 25 }).evalSteps).toBeNull();
  });

  test('loadBestModelAtEnd sets metricForBestModel "loss" and greaterIsBetter false', () => {
    const args = new TrainingArguments({ loadBestModelAtEnd: true, evalStrategy: "steps" });
    expect(args.metricForBestModel).toBe("loss");
    expect(args.greaterIsBetter).toBe(false);
    expect(args.evalSteps).toBe(500);
    const epochs = new TrainingArguments({
      loadBestModelAtEnd: true,
      evalStrategy: "epoch",
      saveStrategy: "epoch",
    });
    expect(epochs).toMatchObject({ metricForBestModel: "loss", greaterIsBetter: false });
  });

  test("greaterIsBetter follows the metric name unless given", () => {
    const best = (metricForBestModel: string, greaterIsBetter?: boolean) =>
      new TrainingArguments({
        loadBestModelAtEnd: true,
        evalStrategy: "steps",
        metricForBestModel,
        ...(greaterIsBetter === undefined ? {} : { greaterIsBetter }),
      }).greaterIsBetter;
    expect(best("accuracy")).toBe(true);
    expect(best("eval_accuracy")).toBe(true);
    expect(best("eval_loss")).toBe(false);
    expect(best("loss")).toBe(false);
    expect(best("accuracy", false)).toBe(false);
    expect(best("loss", true)).toBe(true);
    // Without loadBestModelAtEnd too, as HF does.
    expect(
      new TrainingArguments({ evalStrategy: "epoch", metricForBestModel: "accuracy" })
        .greaterIsBetter,
    ).toBe(true);
  });

  test("loadBestModelAtEnd accepts matching strategies and multiples", () => {
    const base = { loadBestModelAtEnd: true, evalStrategy: "steps" } as const;
    expect(() => new TrainingArguments({ ...base, evalSteps: 250, saveSteps: 1000 })).not.toThrow();
    expect(() => new TrainingArguments({ ...base, evalSteps: 0.1, saveSteps: 0.2 })).not.toThrow();
    expect(() => new TrainingArguments({ ...base, evalSteps: 0.1, saveSteps: 0.3 })).not.toThrow();
    expect(() => new TrainingArguments({ ...base, saveStrategy: "best" })).not.toThrow();
    expect(new TrainingArguments({ ...base, saveStrategy: "best" }).metricForBestModel).toBe(
      "loss",
    );
  });

  test.each([
    ["all", "all"],
    ["none", "none"],
    [["all"], "all"],
    [["none"], "none"],
    [["all", "all"], "all"],
    [[" none "], "none"],
    ["mlflow", ["mlflow"]],
    [["mlflow"], ["mlflow"]],
    [[], []],
    [
      ["mlflow", "tensorboard", "mlflow"],
      ["mlflow", "tensorboard"],
    ],
    [[" wandb", "wandb "], ["wandb"]],
  ] as [string | string[], unknown][])("reportTo %j becomes %j", (given, expected) => {
    expect(new TrainingArguments({ reportTo: given }).reportTo).toEqual(expected);
  });

  test("the instance does not share the caller's reportTo list", () => {
    const names = ["mlflow"];
    const args = new TrainingArguments({ reportTo: names });
    names.push("wandb");
    expect(args.reportTo).toEqual(["mlflow"]);
  });

  test("the options object is not changed", () => {
    const options: TrainingArgumentsOptions = {
      reportTo: ["all"],
      loadBestModelAtEnd: true,
      evalStrategy: "steps",
    };
    const copy = structuredClone(options);
    new TrainingArguments(options);
    expect(options).toEqual(copy);
  });

  test("an instance can be copied by passing it as options", () => {
    const args = new TrainingArguments({
      loadBestModelAtEnd: true,
      evalStrategy: "steps",
      reportTo: ["mlflow"],
    });
    expect(new TrainingArguments(args)).toEqual(args);
  });
});

describe("toJSON, toJsonString, saveToJson", () => {
  test("toJSON has HF's snake_case keys and no camelCase ones", () => {
    const json = new TrainingArguments().toJSON();
    for (const key of Object.keys(json)) expect(key).toMatch(/^[a-z][a-z0-9_]*$/);
    expect(json).toMatchObject({
      learning_rate: 5e-5,
      per_device_train_batch_size: 8,
      adam_beta1: 0.9,
      lr_scheduler_type: "linear",
      restore_callback_states_from_checkpoint: true,
      metric_for_best_model: null,
    });
    expect(json).not.toHaveProperty("learningRate");
    expect(Object.keys(json)).toHaveLength(Object.keys(new TrainingArguments()).length);
  });

  test("toJsonString is sorted, indented by 2 and ends with a newline", () => {
    const text = new TrainingArguments().toJsonString();
    expect(text.startsWith('{\n  "adam_beta1": 0.9,\n')).toBe(true);
    expect(text.endsWith("\n}\n")).toBe(true);
    const keys = [...text.matchAll(/^ {2}"([^"]+)":/gm)].map((m) => m[1]!);
    expect(keys).toEqual([...keys].sort());
    expect(keys).toEqual(Object.keys(new TrainingArguments().toJSON()).sort());
    expect(JSON.parse(text)).toEqual(new TrainingArguments().toJSON());
  });

  test("numbers are written as Python writes them", () => {
    const lines = new TrainingArguments().toJsonString().split("\n");
    for (const line of [
      '  "learning_rate": 5e-05',
      '  "num_train_epochs": 3.0',
      '  "max_grad_norm": 1.0',
      '  "adam_epsilon": 1e-08',
      '  "weight_decay": 0.0',
      '  "warmup_ratio": 0.0',
      '  "adam_beta2": 0.999',
      '  "max_steps": -1',
      '  "logging_steps": 500',
      '  "per_device_train_batch_size": 8',
      '  "seed": 42',
      '  "warmup_steps": 0',
      '  "eval_steps": null',
      '  "report_to": "all"',
    ])
      expect(lines.map((text) => text.replace(/,$/, ""))).toContain(line);
    const custom = new TrainingArguments({
      learningRate: 3e-4,
      numTrainEpochs: 10,
      weightDecay: 0.01,
      maxSteps: 100,
      loggingSteps: 0.1,
    }).toJsonString();
    expect(custom).toContain('  "learning_rate": 0.0003,');
    expect(custom).toContain('  "num_train_epochs": 10.0,');
    expect(custom).toContain('  "weight_decay": 0.01\n');
    expect(custom).toContain('  "logging_steps": 0.1,');
  });

  test("every shared scalar is written exactly as transformers wrote it", () => {
    // The trace was written by Python's json module, so its value texts are Python's.
    const hfLines = new Map(
      [...HF_DEFAULTS_TEXT.matchAll(/^ "([^"]+)": (.*?),?$/gm)].map((m) => [m[1]!, m[2]!]),
    );
    const ours = TrainingArguments.fromJSON(HF_DEFAULTS).toJsonString();
    const ourLines = new Map(
      [...ours.matchAll(/^ {2}"([^"]+)": (.*?),?$/gm)].map((m) => [m[1]!, m[2]!]),
    );
    let compared = 0;
    for (const [key, text] of ourLines) {
      if (OURS_ONLY.has(key) || key === "optim") continue;
      expect({ key, text }).toEqual({ key, text: hfLines.get(key) });
      compared += 1;
    }
    expect(compared).toBeGreaterThanOrEqual(40);
  });

  test('reportTo "none" is written as [] and a list as a list', () => {
    expect(new TrainingArguments({ reportTo: "none" }).toJSON().report_to).toEqual([]);
    expect(new TrainingArguments({ reportTo: "none" }).toJsonString()).toContain(
      '  "report_to": [],\n',
    );
    expect(new TrainingArguments({ reportTo: "all" }).toJSON().report_to).toBe("all");
    expect(new TrainingArguments({ reportTo: ["mlflow", "wandb"] }).toJsonString()).toContain(
      '  "report_to": [\n    "mlflow",\n    "wandb"\n  ],\n',
    );
  });

  test("toJSON gives a copy: changing it leaves the arguments alone", () => {
    const args = new TrainingArguments({
      reportTo: ["mlflow"],
      lrSchedulerType: "polynomial",
      lrSchedulerKwargs: { power: 2 },
    });
    const json = args.toJSON();
    (json.report_to as string[]).push("wandb");
    (json.lr_scheduler_kwargs as Record<string, unknown>).power = 3;
    expect(args.reportTo).toEqual(["mlflow"]);
    expect(args.lrSchedulerKwargs).toEqual({ power: 2 });
  });

  test("JSON.stringify uses toJSON", () => {
    const args = new TrainingArguments({ reportTo: "none" });
    expect(JSON.parse(JSON.stringify(args))).toEqual(args.toJSON());
  });

  test("saveToJson writes training_args.json atomically", () => {
    const dir = temporaryDir();
    const path = join(dir, "training_args.json");
    const args = new TrainingArguments({ outputDir: dir, reportTo: ["mlflow"] });
    args.saveToJson(path);
    expect(readFileSync(path, "utf8")).toBe(args.toJsonString());
    expect(readdirSync(dir)).toEqual(["training_args.json"]);
    // Saving again replaces the file, still with nothing left over.
    const other = new TrainingArguments({ outputDir: dir, learningRate: 0.1 });
    other.saveToJson(path);
    expect(readFileSync(path, "utf8")).toBe(other.toJsonString());
    expect(readdirSync(dir)).toEqual(["training_args.json"]);
  });

  test("a failed saveToJson leaves no temporary file", () => {
    const dir = temporaryDir();
    const path = join(dir, "training_args.json");
    mkdirSync(path);
    writeFileSync(join(path, "keep"), "x");
    expect(() => new TrainingArguments().saveToJson(path)).toThrow();
    expect(readdirSync(dir)).toEqual(["training_args.json"]);
    expect(() => new TrainingArguments().saveToJson(join(dir, "missing", "a.json"))).toThrow();
    expect(readdirSync(dir)).toEqual(["training_args.json"]);
  });
});

describe("secrets stay out of training_args.json", () => {
  class TrackerArguments extends TrainingArguments {
    mlflowTrackingToken = "tok-SECRET-1";
    apiKey = "key-SECRET-2";
    hfAPIKey = "key-SECRET-3";
    dbPassword = "SECRET-4";
    headers = { "X-Api-Key": "SECRET-5", Authorization: "Bearer SECRET-6", accept: "json" };
    trackingUri = "https://alice:SECRET-7@mlflow.example:5000/";
    tokenizerName = "bert-base-uncased";
    maxTokens = 128;
    author = "alice";
    optionalToken: string | null = null;
    describe = (): string => "a method-like field";
  }

  test("a subclass's secret fields are written as <REDACTED>", () => {
    const args = new TrackerArguments({ outputDir: "out" });
    const json = args.toJSON();
    expect(json).toMatchObject({
      mlflow_tracking_token: REDACTED,
      api_key: REDACTED,
      hf_api_key: REDACTED,
      db_password: REDACTED,
      headers: { "X-Api-Key": REDACTED, Authorization: REDACTED, accept: "json" },
      tracking_uri: `https://alice:${REDACTED}@mlflow.example:5000/`,
      // Not secrets:
      tokenizer_name: "bert-base-uncased",
      max_tokens: 128,
      author: "alice",
      optional_token: null,
      output_dir: "out",
    });
    expect(json).not.toHaveProperty("describe");
    const text = args.toJsonString();
    expect(text).not.toMatch(/SECRET/);
    expect(text).toContain('  "mlflow_tracking_token": "<REDACTED>",');
    // The instance itself keeps the real values for the integration to use.
    expect(args.mlflowTrackingToken).toBe("tok-SECRET-1");
    expect(args.headers["X-Api-Key"]).toBe("SECRET-5");
  });

  test("saveToJson never writes a subclass's secrets", () => {
    const dir = temporaryDir();
    const path = join(dir, "training_args.json");
    new TrackerArguments().saveToJson(path);
    expect(readFileSync(path, "utf8")).not.toMatch(/SECRET/);
  });

  test.each(["runName", "outputDir", "resumeFromCheckpoint"] as const)(
    "credentials in a URL in %s are masked",
    (option) => {
      const args = new TrainingArguments({ [option]: "https://user:hunter2@host/x" });
      const key = option.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
      expect(args.toJSON()[key]).toBe(`https://user:${REDACTED}@host/x`);
      expect(args.toJsonString()).not.toContain("hunter2");
      expect(JSON.stringify(args)).not.toContain("hunter2");
      expect(args[option]).toBe("https://user:hunter2@host/x");
    },
  );

  test.each([
    [
      "a password with @ in it",
      "s3://user:p@ss-hunter2@bucket/run",
      "s3://user:<REDACTED>@bucket/run",
    ],
    [
      "a token as the user",
      "https://ghp_hunter2@github.com/o/r",
      "https://<REDACTED>@github.com/o/r",
    ],
    ["an empty user", "https://:hunter2@host", "https://:<REDACTED>@host"],
    [
      "a secret query parameter",
      "https://host/x?access_token=hunter2&page=2",
      "https://host/x?access_token=<REDACTED>&page=2",
    ],
    [
      "two URLs in one string",
      "from https://a:hunter2@h1/ to http://b:hunter2@h2/",
      "from https://a:<REDACTED>@h1/ to http://b:<REDACTED>@h2/",
    ],
    [
      "a port and no credentials",
      "http://localhost:5000/x?page=2",
      "http://localhost:5000/x?page=2",
    ],
  ])("masks %s", (_what, runName, written) => {
    const args = new TrainingArguments({ runName });
    expect(args.toJSON().run_name).toBe(written);
    expect(args.toJsonString()).not.toContain("hunter2");
  });

  test("options that are not secrets are written as they are", () => {
    const args = new TrainingArguments({
      runName: "lr=1e-4;bs=8",
      optim: "sgd",
      optimArgs: "momentum=0.9",
      outputDir: "runs/token-budget",
    });
    expect(args.toJSON()).toMatchObject({
      run_name: "lr=1e-4;bs=8",
      optim_args: "momentum=0.9",
      output_dir: "runs/token-budget",
    });
  });
});

describe("TrainingArguments.fromJSON", () => {
  test("loads transformers' training_args defaults", () => {
    const args = TrainingArguments.fromJSON(HF_DEFAULTS);
    expect(args).toBeInstanceOf(TrainingArguments);
    expect(args).toMatchObject({
      outputDir: "out/args_defaults",
      reportTo: "none",
      optim: "adamw",
      learningRate: 5e-5,
      numTrainEpochs: 3,
      maxSteps: -1,
      evalStrategy: "no",
      evalSteps: null,
      saveStrategy: "steps",
      seed: 42,
      greaterIsBetter: null,
    });
    // HF-only options are ignored, not copied over.
    const json = args.toJSON();
    for (const key of ["fp16", "deepspeed", "hub_token", "accelerator_config", "push_to_hub"])
      expect(json).not.toHaveProperty(key);
    expect(args).not.toHaveProperty("hubToken");
    expect(JSON.stringify(json)).not.toContain("HUB_TOKEN");
    // Everything else equals the defaults, apart from what HF's file sets.
    expect(args).toEqual(
      new TrainingArguments({
        outputDir: "out/args_defaults",
        reportTo: "none",
        // HF's file says false, and a file's value wins over trainkit's default (true).
        restoreCallbackStatesFromCheckpoint: false,
      }),
    );
  });

  test("every shared option comes back with HF's value", () => {
    const json = TrainingArguments.fromJSON(HF_DEFAULTS).toJSON();
    for (const [key, value] of Object.entries(json)) {
      if (OURS_ONLY.has(key) || key === "optim") continue;
      expect({ key, value }).toEqual({ key, value: HF_DEFAULTS[key] });
    }
  });

  test.each(["adamw_torch", "adamw_torch_fused", "adamw_hf"])("optim %s becomes adamw", (optim) => {
    expect(TrainingArguments.fromJSON({ optim }).optim).toBe("adamw");
  });

  test.each([
    [{ report_to: [] }, "none"],
    [{ report_to: "none" }, "none"],
    [{ report_to: ["all"] }, "all"],
    [{ report_to: ["tensorboard", "mlflow"] }, ["tensorboard", "mlflow"]],
  ])("%j gives reportTo %j", (data, reportTo) => {
    expect(TrainingArguments.fromJSON(data).reportTo).toEqual(reportTo);
  });

  test("options HF writes after __post_init__ load", () => {
    const args = TrainingArguments.fromJSON({
      eval_strategy: "steps",
      eval_steps: 500,
      save_strategy: "steps",
      load_best_model_at_end: true,
      metric_for_best_model: "loss",
      greater_is_better: false,
      lr_scheduler_kwargs: {},
      warmup_ratio: 0.0,
      save_total_limit: 2,
      logging_steps: 10.0,
    });
    expect(args).toMatchObject({
      evalStrategy: "steps",
      evalSteps: 500,
      loadBestModelAtEnd: true,
      metricForBestModel: "loss",
      greaterIsBetter: false,
      lrSchedulerKwargs: {},
      saveTotalLimit: 2,
      loggingSteps: 10,
    });
  });

  test("reads evaluation_strategy from transformers before 4.41", () => {
    expect(TrainingArguments.fromJSON({ evaluation_strategy: "epoch" }).evalStrategy).toBe("epoch");
    expect(
      TrainingArguments.fromJSON({ evaluation_strategy: "epoch", eval_strategy: "steps" })
        .evalStrategy,
    ).toBe("steps");
    expect(
      TrainingArguments.fromJSON({ evaluation_strategy: null, eval_strategy: "steps" })
        .evalStrategy,
    ).toBe("steps");
  });

  test("keys that name Object.prototype members are ignored like other unknown keys", () => {
    expect(() =>
      TrainingArguments.fromJSON({ constructor: 1, to_string: "x", has_own_property: 2 }),
    ).not.toThrow();
  });

  test("bad values are reported as in the constructor", () => {
    let error: unknown;
    try {
      TrainingArguments.fromJSON({ learning_rate: -1, optim: "adafactor", fp16: true });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(TrainingArgumentsError);
    const problems = (error as TrainingArgumentsError).problems;
    expect(problems.map((p) => p.option)).toEqual(["learningRate", "optim"]);
    expect((error as Error).message).toContain('(got "adafactor")');
  });

  test("a non-object is a TrainingArgumentsError", () => {
    for (const data of [null, "{}", [1]])
      expect(() => TrainingArguments.fromJSON(data as never)).toThrow(TrainingArgumentsError);
  });

  test.each<[string, TrainingArgumentsOptions]>([
    ["defaults", {}],
    ["reportTo none", { reportTo: "none" }],
    ["reportTo names", { reportTo: ["mlflow", "tensorboard"] }],
    [
      "a full configuration",
      {
        outputDir: "runs/x",
        numTrainEpochs: 1.5,
        maxSteps: 200,
        perDeviceTrainBatchSize: 16,
        perDeviceEvalBatchSize: 64,
        gradientAccumulationSteps: 4,
        learningRate: 3e-4,
        weightDecay: 0.01,
        adamBeta1: 0.85,
        adamBeta2: 0.98,
        adamEpsilon: 1e-6,
        maxGradNorm: 0.5,
        optim: "sgd",
        optimArgs: "momentum=0.9,nesterov=True",
        lrSchedulerType: "cosine_with_restarts",
        lrSchedulerKwargs: { num_cycles: 2 },
        warmupSteps: 0.1,
        warmupRatio: 0.05,
        loggingStrategy: "steps",
        loggingSteps: 0.05,
        loggingFirstStep: true,
        loggingNanInfFilter: false,
        evalStrategy: "steps",
        evalSteps: 0.1,
        evalDelay: 10,
        evalOnStart: true,
        saveStrategy: "steps",
        saveSteps: 0.2,
        saveTotalLimit: 3,
        saveOnlyModel: true,
        loadBestModelAtEnd: true,
        metricForBestModel: "accuracy",
        seed: 7,
        dataSeed: 8,
        dataloaderDropLast: true,
        ignoreDataSkip: true,
        predictionLossOnly: true,
        restoreCallbackStatesFromCheckpoint: true,
        resumeFromCheckpoint: "runs/x/checkpoint-100",
        reportTo: ["dvclive"],
        runName: "trial 1",
        disableTqdm: true,
        backend: "wasm",
      },
    ],
    ["save best", { saveStrategy: "best", evalStrategy: "epoch", metricForBestModel: "f1" }],
  ])("toJSON → fromJSON round trip: %s", (_name, options) => {
    const args = new TrainingArguments(options);
    expect(TrainingArguments.fromJSON(args.toJSON())).toEqual(args);
    expect(
      TrainingArguments.fromJSON(parsePythonJson(args.toJsonString()) as Record<string, unknown>),
    ).toEqual(args);
  });

  test("round trip through a saved file", () => {
    const dir = temporaryDir();
    const path = join(dir, "training_args.json");
    const args = new TrainingArguments({ outputDir: dir, reportTo: "none", learningRate: 2e-5 });
    args.saveToJson(path);
    const loaded = TrainingArguments.fromJSON(
      parsePythonJson(readFileSync(path, "utf8")) as Record<string, unknown>,
    );
    expect(loaded).toEqual(args);
    expect(loaded.toJsonString()).toBe(readFileSync(path, "utf8"));
  });
});

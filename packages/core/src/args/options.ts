/**
 * The table of TrainingArguments options: HF's name in camelCase, HF's default, and the check
 * each value must pass. A check returns undefined when the value is fine, or a sentence that
 * says what is wrong and how to fix it.
 */

import { redactSecrets } from "../util/redact.js";

export const INTERVAL_STRATEGIES = ["no", "steps", "epoch"] as const;
export const SAVE_STRATEGIES = ["no", "steps", "epoch", "best"] as const;
export const SCHEDULER_TYPES = [
  "linear",
  "cosine",
  "cosine_with_restarts",
  "polynomial",
  "constant",
  "constant_with_warmup",
] as const;
export const OPTIMIZER_NAMES = ["adamw", "adam", "sgd"] as const;
/** HF's optimizer names that mean one of ours, so HF argument files load. */
export const OPTIMIZER_ALIASES: Record<string, (typeof OPTIMIZER_NAMES)[number]> = {
  adamw_torch: "adamw",
  adamw_torch_fused: "adamw",
  adamw_hf: "adamw",
  sgd: "sgd",
};
export const BACKEND_NAMES = ["tensorflow", "wasm", "cpu"] as const;

export type IntervalStrategy = (typeof INTERVAL_STRATEGIES)[number];
export type SaveStrategy = (typeof SAVE_STRATEGIES)[number];
export type SchedulerType = (typeof SCHEDULER_TYPES)[number];
export type OptimizerName = (typeof OPTIMIZER_NAMES)[number];
export type BackendName = (typeof BACKEND_NAMES)[number];
/** "all" (every installed, configured integration), "none", or integration names. */
export type ReportTo = "all" | "none" | string[];

export type Check = (value: unknown) => string | undefined;

/** A bad value as the user wrote it, for error messages (secrets in URLs masked, long values cut). */
export function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(redactSecrets(value));
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "function") return "a function";
  if (typeof value === "symbol" || value === undefined) return String(value);
  if (typeof value === "object" && value !== null) {
    const kind = Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null;
    const name = kind?.constructor?.name;
    if (!Array.isArray(value) && kind !== null && name && name !== "Object") return `a ${name}`;
    try {
      const text = JSON.stringify(redactSecrets(value));
      return text.length > 80 ? `${text.slice(0, 77)}...` : text;
    } catch {
      return Array.isArray(value) ? "a list" : "an object";
    }
  }
  return String(value);
}

export const isBoolean: Check = (v) =>
  typeof v === "boolean" ? undefined : `must be true or false (got ${show(v)}).`;

export const isPositiveInteger: Check = (v) =>
  typeof v === "number" && Number.isInteger(v) && v > 0
    ? undefined
    : `must be a whole number of at least 1 (got ${show(v)}).`;

export const isNonNegative: Check = (v) =>
  typeof v === "number" && Number.isFinite(v) && v >= 0
    ? undefined
    : `must be a number of 0 or more (got ${show(v)}).`;

export const isPositive: Check = (v) =>
  typeof v === "number" && Number.isFinite(v) && v > 0
    ? undefined
    : `must be a number greater than 0 (got ${show(v)}).`;

/** A step count: a whole number ≥ 1, or a fraction in (0, 1) meaning a ratio of maxSteps. */
export const isSteps: Check = (v) =>
  typeof v === "number" && Number.isFinite(v) && v > 0 && (v < 1 || Number.isInteger(v))
    ? undefined
    : `must be a whole number of steps of at least 1, or a fraction in (0, 1) meaning that ` +
      `share of maxSteps (got ${show(v)}).`;

/** Warmup: 0 (none), a whole number of steps, or a fraction in (0, 1) of maxSteps. */
export const isWarmupSteps: Check = (v) =>
  v === 0 || isSteps(v) === undefined
    ? undefined
    : `must be 0 (no warmup), a whole number of steps, or a fraction in (0, 1) meaning that ` +
      `share of maxSteps (got ${show(v)}).`;

export const isUnitInterval: Check = (v) =>
  typeof v === "number" && v >= 0 && v <= 1
    ? undefined
    : `must be a number between 0 and 1 (got ${show(v)}).`;

export const isBeta: Check = (v) =>
  typeof v === "number" && v >= 0 && v < 1
    ? undefined
    : `must be at least 0 and less than 1, e.g. 0.9 (got ${show(v)}).`;

export const isString: Check = (v) =>
  typeof v === "string" && v.length > 0
    ? undefined
    : `must be a non-empty string (got ${show(v)}).`;

export const isObject: Check = (v) =>
  typeof v === "object" && v !== null && !Array.isArray(v)
    ? undefined
    : `must be an object of keyword arguments (got ${show(v)}).`;

export const oneOf =
  (choices: readonly string[]): Check =>
  (v) =>
    typeof v === "string" && choices.includes(v)
      ? undefined
      : `must be one of ${choices.map((c) => `"${c}"`).join(", ")} (got ${show(v)}).`;

export const nullable =
  (check: Check): Check =>
  (v) =>
    v === null ? undefined : check(v);

export const isMaxSteps: Check = (v) =>
  typeof v === "number" && Number.isInteger(v) && (v === -1 || v > 0)
    ? undefined
    : `must be a whole number of update steps of at least 1, or -1 to train for numTrainEpochs ` +
      `(got ${show(v)}).`;

export const isSeed: Check = (v) =>
  typeof v === "number" && Number.isInteger(v) && v >= 0 && v < 2 ** 32
    ? undefined
    : `must be a whole number from 0 to 4294967295 (got ${show(v)}).`;

/** HF's optim_args format: "key=value,key=value". */
export const isOptimArgs: Check = (v) =>
  typeof v === "string" && v.split(",").every((pair) => /^\s*\w+\s*=\s*[^=,\s]+\s*$/.test(pair))
    ? undefined
    : `must be a string of key=value pairs separated by commas, e.g. "momentum=0.9" (got ${show(v)}).`;

export const isReportTo: Check = (v) => {
  if (typeof v === "string" && v.trim().length > 0) return undefined;
  if (Array.isArray(v) && v.every((name) => typeof name === "string" && name.trim().length > 0)) {
    const names = new Set(v.map((name: string) => name.trim()));
    if (names.size > 1 && (names.has("all") || names.has("none")))
      return (
        `cannot mix "all" or "none" with other names (got ${show(v)}). Use "all", "none", ` +
        `or a list of integration names only.`
      );
    return undefined;
  }
  return (
    `must be "all" (every installed integration), "none", or a list of integration names ` +
    `such as ["mlflow", "tensorboard"] (got ${show(v)}).`
  );
};

export interface OptionSpec {
  defaultValue: unknown;
  check: Check;
  /** Python writes this option as a float in training_args.json. */
  float?: boolean;
}

/** Every option, with HF's default. Order is the order of the documentation table. */
export const OPTION_SPECS = {
  outputDir: { defaultValue: "trainer_output", check: isString },
  numTrainEpochs: { defaultValue: 3, check: isNonNegative, float: true },
  maxSteps: { defaultValue: -1, check: isMaxSteps },
  perDeviceTrainBatchSize: { defaultValue: 8, check: isPositiveInteger },
  perDeviceEvalBatchSize: { defaultValue: 8, check: isPositiveInteger },
  gradientAccumulationSteps: { defaultValue: 1, check: isPositiveInteger },
  learningRate: { defaultValue: 5e-5, check: isNonNegative, float: true },
  weightDecay: { defaultValue: 0, check: isNonNegative, float: true },
  adamBeta1: { defaultValue: 0.9, check: isBeta, float: true },
  adamBeta2: { defaultValue: 0.999, check: isBeta, float: true },
  adamEpsilon: { defaultValue: 1e-8, check: isPositive, float: true },
  maxGradNorm: { defaultValue: 1, check: isNonNegative, float: true },
  optim: { defaultValue: "adamw", check: oneOf(OPTIMIZER_NAMES) },
  optimArgs: { defaultValue: null, check: nullable(isOptimArgs) },
  lrSchedulerType: { defaultValue: "linear", check: oneOf(SCHEDULER_TYPES) },
  lrSchedulerKwargs: { defaultValue: null, check: nullable(isObject) },
  warmupSteps: { defaultValue: 0, check: isWarmupSteps },
  warmupRatio: { defaultValue: 0, check: isUnitInterval, float: true },
  loggingStrategy: { defaultValue: "steps", check: oneOf(INTERVAL_STRATEGIES) },
  loggingSteps: { defaultValue: 500, check: isSteps },
  loggingFirstStep: { defaultValue: false, check: isBoolean },
  loggingNanInfFilter: { defaultValue: true, check: isBoolean },
  evalStrategy: { defaultValue: "no", check: oneOf(INTERVAL_STRATEGIES) },
  evalSteps: { defaultValue: null, check: nullable(isSteps) },
  evalDelay: { defaultValue: 0, check: isNonNegative },
  evalOnStart: { defaultValue: false, check: isBoolean },
  saveStrategy: { defaultValue: "steps", check: oneOf(SAVE_STRATEGIES) },
  saveSteps: { defaultValue: 500, check: isSteps },
  saveTotalLimit: { defaultValue: null, check: nullable(isPositiveInteger) },
  saveOnlyModel: { defaultValue: false, check: isBoolean },
  loadBestModelAtEnd: { defaultValue: false, check: isBoolean },
  metricForBestModel: { defaultValue: null, check: nullable(isString) },
  greaterIsBetter: { defaultValue: null, check: nullable(isBoolean) },
  seed: { defaultValue: 42, check: isSeed },
  dataSeed: { defaultValue: null, check: nullable(isSeed) },
  dataloaderDropLast: { defaultValue: false, check: isBoolean },
  ignoreDataSkip: { defaultValue: false, check: isBoolean },
  predictionLossOnly: { defaultValue: false, check: isBoolean },
  // HF: false. trainkit resumes with the callback states of the checkpoint (DESIGN: exact resume).
  restoreCallbackStatesFromCheckpoint: { defaultValue: true, check: isBoolean },
  resumeFromCheckpoint: { defaultValue: null, check: nullable(isString) },
  reportTo: { defaultValue: "all", check: isReportTo },
  runName: { defaultValue: null, check: nullable(isString) },
  disableTqdm: { defaultValue: false, check: isBoolean },
  backend: { defaultValue: null, check: nullable(oneOf(BACKEND_NAMES)) },
} as const satisfies Record<string, OptionSpec>;

import { closestName, toCamelCase, toSnakeCase } from "../util/case.js";
import { writeFileAtomic } from "../util/json-file.js";
import { dumpPythonJson } from "../util/python-json.js";
import { redactSecrets } from "../util/redact.js";
import {
  OPTIMIZER_ALIASES,
  OPTION_SPECS,
  type BackendName,
  type IntervalStrategy,
  type OptimizerName,
  type OptionSpec,
  type ReportTo,
  type SaveStrategy,
  type SchedulerType,
  show,
} from "./options.js";
import { crossFieldProblems, type Problem } from "./rules.js";

export type TrainingArgumentsOptions = Partial<{
  [
    K in keyof TrainingArguments as TrainingArguments[K] extends (...a: never[]) => unknown
      ? never
      : K
  ]: K extends "reportTo" ? ReportTo | string : TrainingArguments[K];
}>;

/** Bad TrainingArguments: every problem found, each naming the option, the value and the fix. */
export class TrainingArgumentsError extends Error {
  constructor(readonly problems: Problem[]) {
    super(
      `Invalid TrainingArguments (${problems.length} problem${problems.length > 1 ? "s" : ""}):\n` +
        problems.map((p) => `  - ${p.option} ${p.message}`).join("\n"),
    );
    this.name = "TrainingArgumentsError";
  }
}

const OPTION_NAMES = Object.keys(OPTION_SPECS) as (keyof typeof OPTION_SPECS)[];

/**
 * The options of a training run (HF's TrainingArguments), with HF's defaults and checks.
 * Every value is checked in the constructor, before any work; `toJSON()` gives HF's
 * `training_args.json` with snake_case keys and secrets redacted.
 */
export class TrainingArguments {
  /** Where checkpoints and outputs go. */
  outputDir!: string;
  /** Epochs to train when maxSteps is -1 (may be fractional). */
  numTrainEpochs!: number;
  /** Update steps to train; overrides numTrainEpochs when positive. */
  maxSteps!: number;
  perDeviceTrainBatchSize!: number;
  perDeviceEvalBatchSize!: number;
  gradientAccumulationSteps!: number;
  learningRate!: number;
  weightDecay!: number;
  adamBeta1!: number;
  adamBeta2!: number;
  adamEpsilon!: number;
  /** Clip gradients to this global norm; 0 turns clipping off. */
  maxGradNorm!: number;
  optim!: OptimizerName;
  /** Extra optimizer arguments, HF's "key=value,key=value" (e.g. "momentum=0.9" for sgd). */
  optimArgs!: string | null;
  lrSchedulerType!: SchedulerType;
  lrSchedulerKwargs!: Record<string, unknown> | null;
  /** Warmup steps; a fraction in (0, 1) is a ratio of maxSteps (HF 5). */
  warmupSteps!: number;
  /** Share of maxSteps used for warmup when warmupSteps is 0 (HF 4). */
  warmupRatio!: number;
  loggingStrategy!: IntervalStrategy;
  loggingSteps!: number;
  loggingFirstStep!: boolean;
  /** Leave NaN and infinite step losses out of the logged loss. */
  loggingNanInfFilter!: boolean;
  evalStrategy!: IntervalStrategy;
  /** Defaults to loggingSteps when evalStrategy is "steps". */
  evalSteps!: number | null;
  /** Steps (or epochs, with the epoch strategy) to wait before the first evaluation. */
  evalDelay!: number;
  evalOnStart!: boolean;
  saveStrategy!: SaveStrategy;
  saveSteps!: number;
  saveTotalLimit!: number | null;
  saveOnlyModel!: boolean;
  loadBestModelAtEnd!: boolean;
  /** Defaults to "loss" when loadBestModelAtEnd is set. */
  metricForBestModel!: string | null;
  /** Defaults to false for metrics ending in "loss", true otherwise. */
  greaterIsBetter!: boolean | null;
  seed!: number;
  dataSeed!: number | null;
  dataloaderDropLast!: boolean;
  ignoreDataSkip!: boolean;
  predictionLossOnly!: boolean;
  restoreCallbackStatesFromCheckpoint!: boolean;
  resumeFromCheckpoint!: string | null;
  /** Integrations to report to: "all" (default), "none", or names. */
  reportTo!: ReportTo;
  runName!: string | null;
  disableTqdm!: boolean;
  /** Force a TensorFlow.js backend instead of the fastest one installed. */
  backend!: BackendName | null;

  constructor(options: TrainingArgumentsOptions = {}) {
    const problems = unknownOptionProblems(options);
    const given = (isNonListObject(options) ? options : {}) as Record<string, unknown>;
    const values: Record<string, unknown> = {};
    for (const name of OPTION_NAMES) {
      const spec: OptionSpec = OPTION_SPECS[name];
      const value = given[name] === undefined ? spec.defaultValue : given[name];
      const problem = spec.check(value);
      if (problem) problems.push({ option: name, message: problem });
      values[name] = value;
    }
    if (problems.length === 0) problems.push(...crossFieldProblems(values));
    if (problems.length > 0) throw new TrainingArgumentsError(problems);
    Object.assign(this, values, resolveDerived(values));
  }

  /**
   * HF's `to_dict()`: snake_case keys, every option (and every field a subclass adds),
   * secrets redacted.
   */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(this)) {
      if (typeof value === "function") continue;
      const onDisk = name === "reportTo" ? reportToOnDisk(value as ReportTo) : value;
      // The camelCase name is checked as well as the snake_case key below.
      out[toSnakeCase(name)] = redactSecrets(onDisk, name);
    }
    return redactSecrets(out);
  }

  /** `training_args.json` as HF formats JSON (sorted keys, indent 2). */
  toJsonString(): string {
    return dumpPythonJson(this.toJSON(), { isFloat: ([key = ""]) => FLOAT_KEYS.has(key) });
  }

  /** Writes `training_args.json` through a temporary file. */
  saveToJson(path: string): void {
    writeFileAtomic(path, this.toJsonString());
  }

  /**
   * Reads HF's argument dict (`training_args.json`, or `TrainingArguments.to_dict()`).
   * Options that do not apply to a TensorFlow.js Trainer (fp16, deepspeed, hub, ...) are
   * ignored; those that do are checked as in the constructor.
   */
  static fromJSON(data: Record<string, unknown>): TrainingArguments {
    if (!isNonListObject(data))
      throw new TrainingArgumentsError([
        {
          option: "fromJSON",
          message: `needs HF's argument dict, an object of snake_case options (got ${show(data)}).`,
        },
      ]);
    const options: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(data)) {
      const name = toCamelCase(key);
      if (!Object.hasOwn(OPTION_SPECS, name)) continue;
      options[name] = value;
    }
    // Files from older transformers use old names (evaluation_strategy before 4.41).
    for (const [oldName, name] of Object.entries(RENAMED_OPTIONS)) {
      const value = data[toSnakeCase(oldName) as keyof typeof data];
      if (options[name] === undefined && value !== null && value !== undefined)
        options[name] = value;
    }
    if (Array.isArray(options.reportTo) && options.reportTo.length === 0) options.reportTo = "none";
    if (typeof options.optim === "string" && options.optim in OPTIMIZER_ALIASES)
      options.optim = OPTIMIZER_ALIASES[options.optim];
    return new TrainingArguments(options as TrainingArgumentsOptions);
  }
}

const FLOAT_KEYS = new Set(
  Object.entries(OPTION_SPECS)
    .filter(([, spec]) => (spec as OptionSpec).float)
    .map(([name]) => toSnakeCase(name)),
);

/** HF writes "none" as an empty list. */
function reportToOnDisk(reportTo: ReportTo): unknown {
  return reportTo === "none" ? [] : reportTo;
}

/** Values HF fills in after checking (its `__post_init__`). */
function resolveDerived(values: Record<string, unknown>): Record<string, unknown> {
  const derived: Record<string, unknown> = { reportTo: normalizeReportTo(values.reportTo) };
  if (values.evalStrategy === "steps" && values.evalSteps === null)
    derived.evalSteps = values.loggingSteps;
  let metric = values.metricForBestModel as string | null;
  if (values.loadBestModelAtEnd && metric === null) metric = derived.metricForBestModel = "loss";
  if (metric !== null && values.greaterIsBetter === null)
    derived.greaterIsBetter = !metric.endsWith("loss");
  return derived;
}

/** "all", "none", a single name, or a list (["all"] and ["none"] mean the same as the words). */
function normalizeReportTo(value: unknown): ReportTo {
  const list = typeof value === "string" ? [value] : (value as string[]);
  const names = [...new Set(list.map((n) => n.trim()))];
  if (names.length === 1 && (names[0] === "all" || names[0] === "none"))
    return names[0] as ReportTo;
  return names;
}

function isNonListObject(value: unknown): value is object {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** HF's old option names (camelCase) and the names they have now. */
const RENAMED_OPTIONS: Record<string, string> = { evaluationStrategy: "evalStrategy" };

function unknownOptionProblems(options: object): Problem[] {
  if (!isNonListObject(options)) {
    return [
      {
        option: "options",
        message: `must be an object of options such as { outputDir: "out" } (got ${show(options)}).`,
      },
    ];
  }
  const known: string[] = OPTION_NAMES;
  const problems: Problem[] = [];
  for (const name of Object.keys(options)) {
    if (known.includes(name)) continue;
    const camel = toCamelCase(name);
    const renamed = RENAMED_OPTIONS[camel];
    const hint = known.includes(camel)
      ? ` Options are camelCase here: use ${camel}.`
      : renamed
        ? ` transformers renamed it: use ${renamed}.`
        : closestName(name, known)
          ? ` Did you mean ${closestName(name, known)}?`
          : " Remove it, or check its name against the options in the @trainkit/core README.";
    problems.push({ option: name, message: `is not a TrainingArguments option.${hint}` });
  }
  return problems;
}

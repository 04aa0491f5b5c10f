import { isDeepStrictEqual } from "node:util";
import { FLOAT_LOG_KEY } from "../util/format-logs.js";
import { readJsonFile, writeFileAtomic } from "../util/json-file.js";
import { dumpPythonJson, loadedNumberKind } from "../util/python-json.js";
import { redactSecrets } from "../util/redact.js";
import { collectStatefulCallbacks, type StatefulCallbacks } from "./exportable-state.js";

/** One `log_history` entry: the logged values plus `step`, under HF's keys. */
export type LogEntry = Record<string, number>;

/** The fields of TrainerState, in camelCase, as HF names them in snake_case on disk. */
const FIELDS = {
  epoch: "epoch",
  globalStep: "global_step",
  maxSteps: "max_steps",
  loggingSteps: "logging_steps",
  evalSteps: "eval_steps",
  saveSteps: "save_steps",
  trainBatchSize: "train_batch_size",
  numTrainEpochs: "num_train_epochs",
  numInputTokensSeen: "num_input_tokens_seen",
  totalFlos: "total_flos",
  logHistory: "log_history",
  bestMetric: "best_metric",
  bestGlobalStep: "best_global_step",
  bestModelCheckpoint: "best_model_checkpoint",
  isLocalProcessZero: "is_local_process_zero",
  isWorldProcessZero: "is_world_process_zero",
  isHyperParamSearch: "is_hyper_param_search",
  trialName: "trial_name",
  trialParams: "trial_params",
  statefulCallbacks: "stateful_callbacks",
} as const;

type FieldName = keyof typeof FIELDS;

/** What each field must hold when read from a file: the check and what it expects, for errors. */
const FIELD_TYPES: Record<FieldName, [(value: unknown) => boolean, string]> = {
  epoch: [isNumber, "a number"],
  globalStep: [isNumber, "a number"],
  maxSteps: [isNumber, "a number"],
  loggingSteps: [isNumber, "a number"],
  evalSteps: [isNumber, "a number"],
  saveSteps: [isNumber, "a number"],
  trainBatchSize: [orNull(isNumber), "a number or null"],
  numTrainEpochs: [isNumber, "a number"],
  numInputTokensSeen: [isNumber, "a number"],
  totalFlos: [isNumber, "a number"],
  logHistory: [(v) => Array.isArray(v) && v.every(isPlainObject), "a list of objects"],
  bestMetric: [orNull(isNumber), "a number or null"],
  bestGlobalStep: [orNull(isNumber), "a number or null"],
  bestModelCheckpoint: [orNull(isString), "a string or null"],
  isLocalProcessZero: [isBoolean, "true or false"],
  isWorldProcessZero: [isBoolean, "true or false"],
  isHyperParamSearch: [isBoolean, "true or false"],
  trialName: [orNull(isString), "a string or null"],
  trialParams: [orNull(isPlainObject), "an object or null"],
  statefulCallbacks: [isPlainObject, "an object"],
};

export type TrainerStateInit = Partial<Omit<TrainerState, "statefulCallbacks">> & {
  /** Either the stored records, or callbacks whose `state()` to store (HF accepts both). */
  statefulCallbacks?: StatefulCallbacks | Iterable<unknown>;
};

/**
 * The Trainer's progress, saved in every checkpoint as HF's `trainer_state.json`
 * (HF's TrainerState, camelCase in code, snake_case on disk).
 */
export class TrainerState {
  /** Epochs done, as a float: batches count individually (e.g. 1.25). */
  epoch = 0;
  /** Optimizer (update) steps done. */
  globalStep = 0;
  /** Update steps the current training will run. */
  maxSteps = 0;
  loggingSteps = 500;
  evalSteps = 500;
  saveSteps = 500;
  trainBatchSize: number | null = null;
  numTrainEpochs = 0;
  numInputTokensSeen = 0;
  totalFlos = 0;
  /** Every log since training started, each with `step` last. */
  logHistory: LogEntry[] = [];
  bestMetric: number | null = null;
  bestGlobalStep: number | null = null;
  bestModelCheckpoint: string | null = null;
  isLocalProcessZero = true;
  isWorldProcessZero = true;
  isHyperParamSearch = false;
  trialName: string | null = null;
  trialParams: Record<string, unknown> | null = null;
  /** State of the stateful callbacks, by class name (HF's `stateful_callbacks`). */
  statefulCallbacks: StatefulCallbacks = {};
  /** Keys read from a file that this version does not know, written back unchanged. */
  readonly unknownFields: Record<string, unknown> = {};
  /** Top-level integral numbers read from a file, with the form (int or float) they had. */
  #loadedKinds = new Map<string, { value: unknown; kind: "int" | "float" }>();

  constructor(init: TrainerStateInit = {}) {
    const { statefulCallbacks, ...fields } = init;
    Object.assign(this, fields);
    if (statefulCallbacks !== undefined) this.setStatefulCallbacks(statefulCallbacks);
  }

  /**
   * Stores the state of every callback that exports one (ExportableState), or takes stored
   * records as they are.
   */
  setStatefulCallbacks(source: StatefulCallbacks | Iterable<unknown>): void {
    this.statefulCallbacks =
      Symbol.iterator in Object(source)
        ? collectStatefulCallbacks(source as Iterable<unknown>)
        : (source as StatefulCallbacks);
  }

  /**
   * Resolves logging/eval/save steps as HF's `compute_steps`: a value below 1 is a ratio of
   * maxSteps, rounded up; a null value (evalSteps without the steps strategy) keeps the
   * current one (500 by default), as the trace of case c shows.
   */
  computeSteps(
    args: { loggingSteps: number | null; evalSteps: number | null; saveSteps: number | null },
    maxSteps: number,
  ): void {
    const resolve = (value: number | null, current: number) =>
      value === null || value === undefined
        ? current
        : value < 1
          ? Math.ceil(maxSteps * value)
          : value;
    this.loggingSteps = resolve(args.loggingSteps, this.loggingSteps);
    this.evalSteps = resolve(args.evalSteps, this.evalSteps);
    this.saveSteps = resolve(args.saveSteps, this.saveSteps);
  }

  /**
   * HF's dict of the state: snake_case keys. Secrets in the callbacks' states (an API key a
   * tracker kept, a URL with a password) are redacted: they never reach trainer_state.json.
   */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = { ...this.unknownFields };
    for (const [field, key] of Object.entries(FIELDS)) out[key] = this[field as FieldName];
    out.stateful_callbacks = withoutSecrets(this.statefulCallbacks);
    return out;
  }

  /**
   * Exactly what HF writes: `json.dumps(asdict(state), indent=2, sort_keys=True) + "\n"`.
   * HF's `epoch` and `total_flos` are ints until training writes floats, so an untouched
   * state keeps them ints; `best_metric` and the logged values HF holds as floats are
   * floats. Numbers read from a file keep the form they had there (`2.0` or `2`) while
   * their value is unchanged.
   */
  toJsonString(): string {
    const data = this.toJSON();
    const untouched = this.globalStep === 0 && this.logHistory.length === 0;
    return dumpPythonJson(data, {
      isFloat: (path) => {
        const [top = "", , key = ""] = path;
        if (path.length === 1) {
          const loaded = this.#loadedKinds.get(top);
          if (loaded && Object.is(loaded.value, data[top])) return loaded.kind === "float";
          if (top === "best_metric") return true;
          return !untouched && (top === "epoch" || top === "total_flos");
        }
        if (top === "log_history") return FLOAT_LOG_KEY.test(key);
        return top === "stateful_callbacks" && path.at(-1) === "early_stopping_threshold";
      },
    });
  }

  /** Writes `trainer_state.json` (to a temporary file first, so a crash never half-writes it). */
  saveToJson(path: string): void {
    writeFileAtomic(path, this.toJsonString());
  }

  /** Builds a state from HF's dict (snake_case keys), checking each known field's type. */
  static fromJSON(data: unknown, source = "trainer state"): TrainerState {
    if (!isPlainObject(data)) {
      throw new Error(`${source}: expected a JSON object, found ${describe(data)}.`);
    }
    const state = new TrainerState();
    const known = new Map<string, FieldName>(
      Object.entries(FIELDS).map(([field, key]) => [key, field as FieldName]),
    );
    for (const [key, value] of Object.entries(data)) {
      const kind = loadedNumberKind(data, key);
      if (kind !== undefined) state.#loadedKinds.set(key, { value, kind });
      const field = known.get(key);
      if (field === undefined) {
        state.unknownFields[key] = value;
        continue;
      }
      const [check, expected] = FIELD_TYPES[field];
      if (!check(value)) {
        throw new Error(
          `${source}: "${key}" must be ${expected}, found ${describe(value)}. ` +
            `The file is damaged or was not written by HF transformers or trainkit.`,
        );
      }
      (state as unknown as Record<string, unknown>)[field] = value;
    }
    return state;
  }

  /** Reads a `trainer_state.json` written by HF transformers or by trainkit. */
  static loadFromJson(path: string): TrainerState {
    return TrainerState.fromJSON(readJsonFile(path), path);
  }
}

/**
 * The callbacks' states with secrets redacted; the records themselves when they hold none, so
 * that numbers read from a file keep the form they had there (`2.0` or `2`).
 */
function withoutSecrets(records: StatefulCallbacks): StatefulCallbacks {
  // The keys are class names (a TokenCounter is no secret): only the records are redacted.
  const redacted = Object.fromEntries(
    Object.entries(records).map(([name, record]) => [name, redactSecrets(record)]),
  );
  return isDeepStrictEqual(redacted, records) ? records : redacted;
}

function isNumber(value: unknown): value is number {
  return typeof value === "number";
}
function isString(value: unknown): value is string {
  return typeof value === "string";
}
function isBoolean(value: unknown): value is boolean {
  return typeof value === "boolean";
}
function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
function orNull(check: (value: unknown) => boolean) {
  return (value: unknown) => value === null || check(value);
}
function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "string") return `the string ${JSON.stringify(value.slice(0, 40))}`;
  if (typeof value === "object") return "an object";
  return `${typeof value} ${String(value)}`;
}

import { join } from "node:path";
import {
  TrainerCallback,
  keySanitizers,
  redactSecrets,
  rewriteLogs,
  type CallbackContext,
  type PluginContext,
  type TrainerControl,
  type TrainerState,
  type TrainingArguments,
} from "@trainkit/core/plugin";
import { lastStepsInDir } from "./event-file-reader.js";
import { EventFileWriter } from "./event-file-writer.js";
import { defaultLogDir, expandUser, restartRunDir } from "./log-dir.js";
import type { HParamValue } from "./summaries.js";

type Logger = PluginContext["logger"];

export interface TensorBoardCallbackOptions {
  /** The log directory; overrides TENSORBOARD_LOGGING_DIR and the default `<outputDir>/runs/<MonDD_HH-MM-SS>_<host>`. */
  logDir?: string;
  /** A writer to use as-is until training ends (HF's `tb_writer`). */
  writer?: EventFileWriter;
  /** Where configuration is read from (default: process.env). */
  env?: Record<string, string | undefined>;
  /** Where warnings go (default: the console). */
  logger?: Logger;
  /** Background write interval in ms (default: TRAINKIT_TENSORBOARD_FLUSH_SECS, else 2000). */
  flushIntervalMs?: number;
  /** Start an HParams session with the TrainingArguments (default: true; env TRAINKIT_TENSORBOARD_HPARAMS). */
  hparams?: boolean;
  /** NaN and ±Infinity: "skip" with one warning per key (default), or "write" them as HF does (env TRAINKIT_TENSORBOARD_NON_FINITE). */
  nonFinite?: "skip" | "write";
}

const consoleLogger: Logger = {
  info: (message) => console.log(`[trainkit] ${message}`),
  warn: (message) => console.warn(`[trainkit] ${message}`),
};

/** HF's truthy env test: upper-cased value in {1, ON, YES, TRUE}. */
function envFlag(value: string | undefined): boolean | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  return ["1", "ON", "YES", "TRUE"].includes(value.trim().toUpperCase());
}

function pythonType(value: unknown): string {
  if (value === null) return "<class 'NoneType'>";
  if (Array.isArray(value)) return "<class 'list'>";
  return `<class '${typeof value}'>`;
}

/** JSON with object keys sorted and indent 2 (HF's config.to_json_string()). */
function sortedJson(value: unknown): string {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (v && typeof v === "object" && (v as object).constructor === Object) {
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(v).sort()) out[key] = sort((v as Record<string, unknown>)[key]);
      return out;
    }
    return v;
  };
  return JSON.stringify(sort(value), null, 2);
}

/**
 * HF's TensorBoardCallback: scalars of every log under HF's tag names (`train/loss`,
 * `eval/loss`, ...) at the global step, the TrainingArguments (and the model's config) as text,
 * and the arguments as an HParams session. Records are buffered and written in the
 * background (see EventFileWriter); the file is closed at the end of training.
 */
export class TensorBoardCallback extends TrainerCallback {
  /** The writer of the current file, if one is open (HF's `tb_writer`). */
  tbWriter: EventFileWriter | undefined;
  /** The run directory in use: chosen once, then reused by later train()/evaluate() calls. */
  logDir: string | undefined;
  /** The directory chosen first; restarts become its sub-runs `from-step-<step>`. */
  private baseDir: string | undefined;

  private readonly env: Record<string, string | undefined>;
  private readonly logger: Logger;
  private readonly configuredDir: string | undefined;
  private readonly flushIntervalMs: number;
  private readonly hparams: boolean;
  private readonly nonFinite: "skip" | "write";
  private readonly warnedKeys = new Set<string>();
  /**
   * The last step per tag of each folder this callback has written and closed: reopening one
   * (an evaluate() after training) continues from it without re-reading the files in onLog.
   */
  private readonly closedSteps = new Map<string, Map<string, number>>();
  /** Whether the open writer has an HParams session to end. */
  private sessionOpen = false;

  constructor(options: TensorBoardCallbackOptions = {}) {
    super();
    this.env = options.env ?? process.env;
    this.logger = options.logger ?? consoleLogger;
    this.configuredDir = options.logDir;
    this.tbWriter = options.writer;
    if (options.writer) this.logDir = this.baseDir = options.writer.logDir;
    const secs = Number(this.env.TRAINKIT_TENSORBOARD_FLUSH_SECS);
    this.flushIntervalMs =
      options.flushIntervalMs ??
      (this.env.TRAINKIT_TENSORBOARD_FLUSH_SECS && Number.isFinite(secs) && secs >= 0
        ? secs * 1000
        : 2000);
    this.hparams = options.hparams ?? envFlag(this.env.TRAINKIT_TENSORBOARD_HPARAMS) ?? true;
    const nonFinite = options.nonFinite ?? this.env.TRAINKIT_TENSORBOARD_NON_FINITE?.trim();
    this.nonFinite = nonFinite === "write" ? "write" : "skip";
  }

  override onTrainBegin(
    args: TrainingArguments,
    state: TrainerState,
    _control: TrainerControl,
    ctx: CallbackContext,
  ): void {
    if (!state.isWorldProcessZero) return;
    let trialDir: string | undefined;
    // HF: a hyper-parameter search trial gets its own directory (the env var is ignored).
    if (state.isHyperParamSearch && state.trialName)
      trialDir = join(defaultLogDir(args.outputDir), state.trialName);
    if (!this.tbWriter || this.tbWriter.isClosed) this.open(args, state, trialDir);
    const writer = this.tbWriter!;
    writer.addText("args", args.toJsonString(), 0);
    const config = modelConfig(ctx.model);
    if (config !== undefined) writer.addText("model_config", config, 0);
    if (this.hparams) {
      writer.addHparams(hparamsOf(args));
      this.sessionOpen = true;
    }
  }

  override onLog(
    args: TrainingArguments,
    state: TrainerState,
    _control: TrainerControl,
    ctx: CallbackContext,
  ): void {
    if (!state.isWorldProcessZero) return;
    if (!this.tbWriter || this.tbWriter.isClosed) this.open(args, state);
    const writer = this.tbWriter!;
    const step = state.globalStep;
    const logs = rewriteLogs((ctx.logs ?? {}) as Record<string, unknown>);
    for (const key in logs) {
      const value = logs[key];
      const tag = keySanitizers.tensorboard(key);
      if (typeof value === "number") {
        if (Number.isFinite(value) || this.nonFinite === "write")
          writer.addScalar(tag, value, step);
        else
          this.warnOnce(
            key,
            `TensorBoard: "${key}" is ${value} at step ${step}; non-finite values are not written (set TRAINKIT_TENSORBOARD_NON_FINITE=write to write them as HF does). Further skips of "${key}" are not reported.`,
          );
      } else if (typeof value === "boolean") writer.addScalar(tag, value ? 1 : 0, step);
      else if (typeof value === "string") writer.addText(tag, value, step);
      else
        this.warnOnce(
          key,
          `Trainer is attempting to log a value of "${describeValue(value)}" of type ${pythonType(value)} for key "${key}" as a scalar. This invocation of Tensorboard's writer.add_scalar() is incorrect so we dropped this attribute. Further values of "${key}" are dropped without a warning.`,
        );
    }
  }

  override onTrainEnd(): void {
    const writer = this.tbWriter;
    if (!writer) return;
    this.tbWriter = undefined;
    try {
      if (this.sessionOpen && !writer.isClosed) writer.endHparams("success");
    } finally {
      this.sessionOpen = false;
      writer.close();
      this.closedSteps.set(writer.logDir, writer.lastSteps());
    }
  }

  /**
   * Opens a writer in the run directory. If that directory already holds a step higher than
   * the one training starts at (a resume from an earlier checkpoint, or a second train() from
   * step 0), the new records go to the sub-run `<dir>/from-step-<step>` instead: steps per tag
   * only ever increase within a run, so TensorBoard neither drops nor misorders points.
   */
  private open(args: TrainingArguments, state: TrainerState, trialDir?: string): void {
    const base = trialDir ?? (this.baseDir ??= this.resolveLogDir(args));
    let dir = trialDir ?? this.logDir ?? base;
    let lastSteps = this.closedSteps.get(dir) ?? lastStepsInDir(dir);
    const start = state.globalStep;
    const ahead = [...lastSteps].filter(([, step]) => step > start);
    if (ahead.length > 0) {
      const [tag, step] = ahead[0]!;
      const next = restartRunDir(base, start);
      this.logger.info(
        `TensorBoard: ${dir} already has "${tag}" up to step ${step} and this run starts at step ${start}; writing to ${next} so that steps keep increasing.`,
      );
      dir = next;
      lastSteps = new Map();
    }
    if (!trialDir) this.logDir = dir;
    this.tbWriter = new EventFileWriter(dir, {
      flushIntervalMs: this.flushIntervalMs,
      lastSteps,
      onWarning: (message) => this.logger.warn(message),
    });
  }

  private resolveLogDir(args: TrainingArguments): string {
    if (this.configuredDir) return this.configuredDir;
    const fromEnv = this.env.TENSORBOARD_LOGGING_DIR?.trim();
    if (fromEnv) return expandUser(fromEnv);
    return defaultLogDir(args.outputDir);
  }

  private warnOnce(key: string, message: string): void {
    if (this.warnedKeys.has(key)) return;
    this.warnedKeys.add(key);
    this.logger.warn(message);
  }
}

/** The TrainingArguments as hparams: numbers, strings, booleans; lists and objects as JSON; nulls left out. */
function hparamsOf(args: TrainingArguments): Record<string, HParamValue> {
  const out: Record<string, HParamValue> = {};
  for (const [key, value] of Object.entries(args.toJSON())) {
    if (value === null || value === undefined) continue;
    if (typeof value === "number") {
      if (Number.isFinite(value)) out[key] = value;
    } else if (typeof value === "string" || typeof value === "boolean") out[key] = value;
    else out[key] = JSON.stringify(value);
  }
  return out;
}

/**
 * The model's configuration as JSON text: `model.config` (its toJsonString() if it has one, as
 * HF's PretrainedConfig), else the tf.LayersModel topology the Trainer's adapter exposes.
 * Values under secret-named keys are redacted.
 */
function modelConfig(model: unknown): string | undefined {
  if (!model || typeof model !== "object") return undefined;
  const m = model as { config?: unknown; topology?: () => object };
  try {
    if (m.config !== undefined && m.config !== null) {
      const toJsonString = (m.config as { toJsonString?: () => string }).toJsonString;
      if (typeof toJsonString !== "function") return sortedJson(redactSecrets(m.config));
      const text = toJsonString.call(m.config);
      const parsed: unknown = JSON.parse(text);
      const redacted = redactSecrets(parsed);
      return JSON.stringify(redacted) === JSON.stringify(parsed) ? text : sortedJson(redacted);
    }
    if (typeof m.topology === "function") return sortedJson(redactSecrets(m.topology()));
  } catch {
    return undefined;
  }
  return undefined;
}

/** A value as a warning shows it; never throws (BigInt, circular objects). */
function describeValue(value: unknown): string {
  try {
    return String(JSON.stringify(value) ?? value);
  } catch {
    return String(value);
  }
}

import { resolve } from "node:path";
import {
  TrainerCallback,
  isTruthyEnv,
  logger as coreLogger,
  type CallbackContext,
  type TrainerControl,
  type TrainerState,
  type TrainingArguments,
} from "@trainkit/core/plugin";
import type { Env } from "./dvc-cli.js";
import { Live, MetricWriteError, checkLiveOptions, type LiveOptions, type Logger } from "./live.js";
import { standardizeMetricName } from "./metric-names.js";
import { isSavableModel, saveModel } from "./model-files.js";
import {
  logNumber,
  parsePythonJson,
  withPythonTypes,
  type PyDict,
  type PyScalar,
} from "./python-values.js";

export type LogModel = boolean | "all";

export interface DVCLiveCallbackOptions extends Omit<LiveOptions, "startStep" | "outputDir"> {
  /** A Live to log to (HF's `live`); by default one is created at the start of training. */
  live?: Live;
  /**
   * HF's `log_model`: true tracks the final model (`<outputDir>/best` or `/last`) with DVC at
   * the end of training; "all" tracks the whole outputDir at every checkpoint. Default:
   * HF_DVCLIVE_LOG_MODEL.
   */
  logModel?: LogModel;
}

/** The shape of core's StateRecord (ExportableState), what state()/fromState() exchange. */
export interface StateRecord {
  args: Record<string, unknown>;
  attributes: Record<string, unknown>;
}

/** The logger of callbacks built without one (fromState): the last plugin context's, else core's. */
let fallbackLogger: Logger = coreLogger;

/** Makes `logger` the default of callbacks created without one (the plugin passes the Trainer's). */
export function setDefaultDvcliveLogger(logger: Logger): void {
  fallbackLogger = logger;
}

/** HF_DVCLIVE_LOG_MODEL: truthy → true, "all" (any case) → "all", else off. */
export function logModelFromEnv(value: string | undefined): LogModel {
  if (isTruthyEnv(value)) return true;
  return (value ?? "").toLowerCase() === "all" ? "all" : false;
}

/** TRAINKIT_DVCLIVE_DVCYAML: a path, or false/none/0/off for no dvc.yaml. */
function dvcyamlFromEnv(value: string | undefined): string | false | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  return ["false", "none", "0", "off", "no"].includes(text.toLowerCase()) ? false : text;
}

function pythonType(value: unknown): string {
  if (value === null || value === undefined) return "<class 'NoneType'>";
  if (Array.isArray(value)) return "<class 'list'>";
  if (typeof value === "object") return "<class 'dict'>";
  return `<class '${typeof value}'>`;
}

function describe(value: unknown): string {
  try {
    return String(JSON.stringify(value) ?? value);
  } catch {
    return String(value);
  }
}

/** dvclive's Metric.could_log: numbers (booleans too, as Python's bool is an int) and strings. */
function metricValue(key: string, value: unknown): Exclude<PyScalar, null> | undefined {
  if (typeof value === "number") return logNumber(key, value);
  if (typeof value === "boolean" || typeof value === "string") return value;
  return undefined;
}

/** The TrainingArguments as HF's `args.to_dict()`: field order, Python's ints and floats. */
export function argsDict(args: TrainingArguments): PyDict {
  const typed = parsePythonJson(args.toJsonString());
  return withPythonTypes(args.toJSON(), typed) as PyDict;
}

/**
 * HF's DVCLiveCallback (`report_to="dvclive"`): the TrainingArguments to params.yaml at the
 * start, every `onLog` to one DVCLive step (every value at the same step, then `next_step`), the
 * model tracked with DVC if asked (HF_DVCLIVE_LOG_MODEL), and the experiment saved at the end.
 * Files are written in the working directory, as dvclive does: `dvclive/` and `dvc.yaml`.
 *
 * The DVCLive step is saved in checkpoints: a training resumed from one continues the step
 * count in the same folder, appending to the plots.
 */
export class DVCLiveCallback extends TrainerCallback {
  /** The Live being logged to (HF's `live`), once set up. */
  live: Live | undefined;
  /** HF's `_log_model`. */
  readonly logModel: LogModel;
  private readonly options: DVCLiveCallbackOptions;
  private readonly env: Env;
  private readonly logger: Logger;
  /** HF's `_initialized`: setup ran (it runs once, however many train() calls follow). */
  private initialized = false;
  /** The step a checkpoint stored, for the next setup (fromState). */
  private restoredStep: number | undefined;
  /** A write failed: reported once, nothing more is logged. */
  private failed = false;
  private readonly warnedKeys = new Set<string>();
  /** Metrics whose file could not be written: reported once, not logged again. */
  private readonly skippedMetrics = new Set<string>();

  constructor(options: DVCLiveCallbackOptions = {}) {
    super();
    if (typeof options !== "object" || options === null)
      throw new TypeError("DVCLiveCallback: options must be an object, e.g. { logModel: true }.");
    if (options.live !== undefined && !(options.live instanceof Live))
      throw new TypeError(
        `DVCLiveCallback: live must be a Live from @trainkit/callback-dvclive (found ${describe(options.live)}).`,
      );
    const { logModel } = options;
    if (logModel !== undefined && typeof logModel !== "boolean" && logModel !== "all")
      throw new TypeError(
        `DVCLiveCallback: logModel must be true, false or "all" (got ${describe(logModel)}).`,
      );
    this.options = options;
    this.env = options.env ?? process.env;
    this.logger = options.logger ?? fallbackLogger;
    this.live = options.live;
    this.logModel = logModel ?? logModelFromEnv(this.env.HF_DVCLIVE_LOG_MODEL);
    if (!this.live)
      checkLiveOptions(this.liveOptions().dir!, this.liveOptions().dvcyaml!, this.cwd());
  }

  /** HF's setup: creates the Live (world process zero) and logs the arguments as params. */
  setup(args: TrainingArguments, state: TrainerState): void {
    this.initialized = true;
    if (!state.isWorldProcessZero) return;
    this.guard("starting the run", () => {
      this.live ??= new Live({
        ...this.liveOptions(),
        startStep: this.restoredStep,
        // The Trainer's outputDir is relative to the process's working directory.
        outputDir: resolve(args.outputDir),
      });
      this.live.logParams(argsDict(args));
    });
  }

  override onTrainBegin(args: TrainingArguments, state: TrainerState): void {
    if (!this.initialized) this.setup(args, state);
  }

  override onLog(
    args: TrainingArguments,
    state: TrainerState,
    _control: TrainerControl,
    ctx: CallbackContext,
  ): void {
    if (!this.initialized) this.setup(args, state);
    const live = this.live;
    if (!state.isWorldProcessZero || !live) return;
    this.guard("logging", () => {
      for (const [key, value] of Object.entries((ctx.logs ?? {}) as Record<string, unknown>)) {
        const logged = metricValue(key, value);
        if (logged !== undefined) this.logMetric(live, key, logged);
        else
          this.warnOnce(
            key,
            `Trainer is attempting to log a value of "${describe(value)}" of type ${pythonType(value)} for key "${key}" as a scalar. This invocation of DVCLive's Live.log_metric() is incorrect so we dropped this attribute. Further values of "${key}" are dropped without a warning.`,
          );
      }
      live.nextStep();
    });
  }

  override async onSave(args: TrainingArguments, state: TrainerState): Promise<void> {
    const live = this.live;
    if (this.logModel !== "all" || !this.initialized || !state.isWorldProcessZero || !live) return;
    await this.guardAsync("tracking the checkpoint", () =>
      live.logArtifact(resolve(args.outputDir)),
    );
  }

  override async onTrainEnd(
    args: TrainingArguments,
    state: TrainerState,
    _control: TrainerControl,
    ctx: CallbackContext,
  ): Promise<void> {
    const live = this.live;
    if (!this.initialized || !state.isWorldProcessZero || !live) return;
    await this.guardAsync("ending the run", async () => {
      if (this.logModel === true) {
        const name = args.loadBestModelAtEnd ? "best" : "last";
        // The Trainer's outputDir is relative to the process's working directory.
        const outputDir = resolve(args.outputDir, name);
        if (isSavableModel(ctx.model)) {
          await saveModel(outputDir, ctx.model, args);
          await live.logArtifact(outputDir, { name, type: "model", copy: true });
        } else
          this.logger.warn(
            "DVCLive: logModel is on but the Trainer passed no model to save; no model is logged.",
          );
      }
      await live.end();
    });
  }

  /**
   * The checkpointed state (core's ExportableState): the options given, and the DVCLive step
   * the next log takes, so that a resumed training continues the run's steps.
   */
  state(): StateRecord {
    const o = this.options;
    const args = Object.fromEntries(
      Object.entries({
        dir: o.dir,
        dvcyaml: o.dvcyaml,
        log_model: o.logModel,
        resume: o.resume,
        save_dvc_exp: o.saveDvcExp,
        exp_name: o.expName,
        exp_message: o.expMessage,
        cwd: o.cwd,
        dvc_command: o.dvcCommand,
      }).filter(([, v]) => v !== undefined),
    );
    const step = this.live ? this.live.step : this.restoredStep;
    return { args, attributes: step === undefined ? {} : { step } };
  }

  /** Rebuilds a callback from a checkpoint's record; its setup continues at the stored step. */
  static fromState(record: StateRecord): DVCLiveCallback {
    const a = record.args ?? {};
    const str = (v: unknown) => (typeof v === "string" ? v : undefined);
    const bool = (v: unknown) => (typeof v === "boolean" ? v : undefined);
    const logModel = a.log_model === "all" ? "all" : bool(a.log_model);
    const dvcyaml = a.dvcyaml === false ? false : str(a.dvcyaml);
    const callback = new DVCLiveCallback({
      ...(str(a.dir) !== undefined && { dir: str(a.dir) }),
      ...(dvcyaml !== undefined && { dvcyaml }),
      ...(logModel !== undefined && { logModel }),
      ...(bool(a.resume) !== undefined && { resume: bool(a.resume) }),
      ...(bool(a.save_dvc_exp) !== undefined && { saveDvcExp: bool(a.save_dvc_exp) }),
      ...(str(a.exp_name) !== undefined && { expName: str(a.exp_name) }),
      ...(str(a.exp_message) !== undefined && { expMessage: str(a.exp_message) }),
      ...(str(a.cwd) !== undefined && { cwd: str(a.cwd) }),
      ...(str(a.dvc_command) !== undefined && { dvcCommand: str(a.dvc_command) }),
    });
    const step = record.attributes?.step;
    if (typeof step === "number" && Number.isInteger(step) && step >= 0)
      callback.restoredStep = step;
    return callback;
  }

  private cwd(): string {
    return this.options.cwd ?? process.cwd();
  }

  /** Live's options: the callback's, then TRAINKIT_DVCLIVE_DIR / _DVCYAML, then dvclive's defaults. */
  private liveOptions(): LiveOptions {
    const o = this.options;
    return {
      ...o,
      dir: o.dir ?? (this.env.TRAINKIT_DVCLIVE_DIR?.trim() || "dvclive"),
      dvcyaml: o.dvcyaml ?? dvcyamlFromEnv(this.env.TRAINKIT_DVCLIVE_DVCYAML) ?? "dvc.yaml",
      env: this.env,
      logger: this.logger,
    };
  }

  /**
   * One metric to the Live. A metric whose own file cannot be written (a key too long for a
   * file name, say) is reported once and skipped from then on; the other metrics are logged.
   * Any other failure (the run folder's) switches DVCLive off, through the guard.
   */
  private logMetric(live: Live, key: string, value: Exclude<PyScalar, null>): void {
    if (this.skippedMetrics.has(key)) return;
    try {
      live.logMetric(standardizeMetricName(key), value);
    } catch (error) {
      if (!(error instanceof MetricWriteError)) throw error;
      this.skippedMetrics.add(key);
      const code = (error.cause as NodeJS.ErrnoException).code;
      this.logger.warn(
        `DVCLive: cannot write the plot file of metric "${key}" (${code}); this metric is skipped for the rest of the run, the other metrics are logged.`,
      );
    }
  }

  /** Runs `work` unless a failure switched DVCLive off; the first failure is reported once. */
  private guard(what: string, work: () => void): void {
    if (this.failed) return;
    try {
      work();
    } catch (error) {
      this.fail(what, error);
    }
  }

  private async guardAsync(what: string, work: () => Promise<void>): Promise<void> {
    if (this.failed) return;
    try {
      await work();
    } catch (error) {
      this.fail(what, error);
    }
  }

  private fail(what: string, error: unknown): void {
    this.failed = true;
    const message = error instanceof Error ? error.message : String(error);
    this.logger.warn(
      `DVCLive failed while ${what}: ${message.replace(/\.+$/, "")}. Nothing more is logged to DVCLive in this run; training goes on.`,
    );
  }

  private warnOnce(key: string, message: string): void {
    if (this.warnedKeys.has(key)) return;
    this.warnedKeys.add(key);
    this.logger.warn(message);
  }
}

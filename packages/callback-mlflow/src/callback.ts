import { copyFileSync, existsSync, linkSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { userInfo } from "node:os";
import { dirname, join, relative, sep } from "node:path";
import {
  Outbox,
  TrainerCallback,
  newStreamId,
  outboxDir,
  redactText,
  type CallbackContext,
  type OutboxOptions,
  type OutboxRecord,
  type PluginContext,
  type RetryOptions,
  type TrainerControl,
  type TrainerState,
  type TrainingArguments,
} from "@trainkit/core/plugin";
import { createMlflowClient, type MlflowClient, type MlflowKeyValue } from "./client.js";
import {
  DEFAULT_DRAIN_DEADLINE_MS,
  MlflowConfigError,
  mlflowDisabled,
  parseTrackingUri,
  readTlsFiles,
  resolveMlflowConfig,
  retryFromKnobs,
  type Env,
  type MlflowConfigOptions,
  type ResolvedMlflowConfig,
} from "./config.js";
import { invalidKeyReason, sanitizeMetricKey } from "./keys.js";
import {
  MAX_TAG_VALUE_LENGTH,
  TRUNCATED_PARAMS_TAG,
  argsDict,
  buildParams,
  keyListValue,
  maskSecrets,
  modelConfigDict,
  truncateChars,
} from "./params.js";
import { pythonStr } from "./python-repr.js";
import {
  endRecord,
  metricRecord,
  paramRecord,
  tagRecord,
  type ArtifactRecord,
  type EndStatus,
  type MetricRecord,
  type MlflowRecord,
} from "./records.js";
import {
  STREAM_TAG,
  createMlflowTransport,
  type MlflowStreamMeta,
  type MlflowTransport,
  type RunCreateSpec,
} from "./transport.js";
import {
  registerExitFinisher,
  registerSignalFinisher,
  unregisterExitFinisher,
  unregisterSignalFinisher,
} from "./signals.js";

type Logger = PluginContext["logger"];

/** The shape of `StateRecord` (core's ExportableState protocol): what state()/fromState() exchange. */
export interface StateRecord {
  args: Record<string, unknown>;
  attributes: Record<string, unknown>;
}

export interface MlflowCallbackOptions extends MlflowConfigOptions {
  /** Where configuration is read from (default: process.env). */
  env?: Env;
  /** Where warnings go (default: the console, `[trainkit]`-prefixed). */
  logger?: Logger;
  /** Outbox: records held in memory before reading back from the spool (default 10 000). */
  maxMemoryRecords?: number;
  /** Outbox: how long records wait to be batched (default 1000 ms). */
  flushIntervalMs?: number;
  /** Outbox retry knobs; default from MLFLOW_HTTP_REQUEST_MAX_RETRIES / _BACKOFF_FACTOR / _BACKOFF_JITTER. */
  retry?: RetryOptions;
  /** How long a SIGINT/SIGTERM waits for delivery before the process goes on terminating (default 2000 ms). */
  signalDrainMs?: number;
}

const consoleLogger: Logger = {
  info: (message) => console.log(`[trainkit] ${message}`),
  warn: (message) => console.warn(`[trainkit] ${message}`),
};

/** The logger of callbacks built without one (fromState): the last plugin context's. */
let fallbackLogger: Logger = consoleLogger;

/** Makes `logger` the default of callbacks created without one (the plugin passes the Trainer's). */
export function setDefaultMlflowLogger(logger: Logger): void {
  fallbackLogger = logger;
}

/** What a checkpoint keeps of the callback: the stream and the run it delivers to. */
export interface MlflowRunState {
  stream: string;
  runId?: string;
  experimentId?: string;
  /** Whether trainkit created the run (and so ends it). */
  owned?: boolean;
}

function defined<T extends Record<string, unknown>>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function pythonType(value: unknown): string {
  if (value === null || value === undefined) return "<class 'NoneType'>";
  if (Array.isArray(value)) return "<class 'list'>";
  if (typeof value === "string") return "<class 'str'>";
  if (typeof value === "object") return "<class 'dict'>";
  return `<class '${typeof value}'>`;
}

/** A one-element tensor's value (HF converts those), else undefined. */
function scalarOf(value: unknown): number | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const t = value as { size?: unknown; dataSync?: () => ArrayLike<number> };
  if (t.size === 1 && typeof t.dataSync === "function") {
    const data = t.dataSync();
    const first = data[0];
    return typeof first === "number" ? first : undefined;
  }
  return undefined;
}

/**
 * HF's MLflowCallback (`report_to="mlflow"`): creates (or reattaches to) an MLflow run, logs
 * the TrainingArguments and model config as params, numeric logs as metrics at the global
 * step, optionally each checkpoint as artifacts, and ends the run at train end (FINISHED;
 * FAILED when train() throws; KILLED on SIGINT/SIGTERM).
 *
 * Nothing is sent from an event handler: events enqueue records in an outbox
 * (`<outputDir>/.trainkit/outbox/mlflow/<stream>`) that a background loop delivers through
 * {@link MlflowTransport}; onTrainEnd drains it with a deadline. The stream id and run id are
 * part of the checkpoint's callback state, so a resumed training continues the same run.
 *
 * Subclasses (DagsHub, Azure ML) override the protected hooks: `integrationName`,
 * `resolveConfig`, `createClient`, `createTransport`, `runCreateSpec`, `systemTags`,
 * `paramRecords`, `tagRecords`, `metricRecords`, `artifactRecords`, `shouldEndRun`,
 * `afterEndRecords`, and the static `disabledReason` and `optionsFromState`.
 *
 * `R` is the outbox's record type: MLflow's records, plus those of a subclass (its transport
 * delivers both).
 */
export class MlflowCallback<R extends OutboxRecord = MlflowRecord> extends TrainerCallback {
  protected readonly options: MlflowCallbackOptions;
  protected readonly env: Env;
  protected readonly logger: Logger;
  /** The configuration, resolved at setup (env is read then, not at construction). */
  protected config: ResolvedMlflowConfig | undefined;
  protected outbox: Outbox<MlflowRecord | R> | undefined;
  /** The stream of the current run (its spool folder and `trainkit.stream` tag). */
  protected stream: string | undefined;
  /** Whether trainkit created the run of the stream (and so ends it). */
  protected owned = false;
  /** The run of the stream was ended by this callback (train end, failure, signal). */
  protected ended = false;
  /** HF's `_initialized`: setup ran. */
  protected initialized = false;
  /** State given by fromState(), used by the next setup. */
  protected restored: MlflowRunState | undefined;
  /** The run id and experiment id last seen (meta of the outbox). */
  private known: { runId?: string; experimentId?: string } = {};
  private readonly warned = new Set<string>();
  private readonly metricKeys = new Map<string, { name: string; reason: string | undefined }>();
  /** A SIGINT/SIGTERM was received: the run is ended KILLED and nothing more is logged. */
  private terminating = false;
  /** This callback's entry in the process-wide signal coordinator (one per callback). */
  private readonly signalFinisher = (signal: NodeJS.Signals): Promise<void> =>
    this.onSignal(signal);
  /** This callback's entry in the process-wide beforeExit coordinator. */
  private readonly exitFinisher = (): Promise<void> => this.finish("FINISHED");

  constructor(options: MlflowCallbackOptions = {}) {
    super();
    this.options = options;
    this.env = options.env ?? process.env;
    this.logger = options.logger ?? fallbackLogger;
    // The class being built decides (new.target), so a subclass's own switch applies.
    const disabled = new.target.disabledReason(this.env);
    if (disabled !== undefined) throw new MlflowConfigError(disabled);
  }

  /**
   * Why the integration is switched off in `env` (the constructor throws it), else undefined.
   * Static: it is asked before the instance exists.
   */
  protected static disabledReason(env: Env): string | undefined {
    return mlflowDisabled(env)
      ? "MLflowCallback: DISABLE_MLFLOW_INTEGRATION is TRUE, so the MLflow integration is disabled; unset it to use MLflow."
      : undefined;
  }

  /** The report_to name and the spool folder's integration name. */
  protected get integrationName(): string {
    return "mlflow";
  }

  /** The MLflow run id, once known (a run trainkit creates: after its first delivery). */
  get runId(): string | undefined {
    this.remember();
    return this.known.runId;
  }

  /** The MLflow experiment id, once known. */
  get experimentId(): string | undefined {
    this.remember();
    return this.known.experimentId;
  }

  /** Copies the ids the transport saved in the outbox's meta. */
  private remember(): void {
    const meta = this.outbox?.meta;
    if (!meta) return;
    if (typeof meta.runId === "string") this.known.runId = meta.runId;
    if (typeof meta.experimentId === "string") this.known.experimentId = meta.experimentId;
  }

  /** The stream id of the current run. */
  get streamId(): string | undefined {
    return this.stream;
  }

  /** The outbox's spool folder, while open. */
  get spoolDir(): string | undefined {
    return this.outbox?.dir;
  }

  /**
   * Resolves and checks the configuration (env, then options over it). Throws an
   * MlflowConfigError naming the variable at fault; the plugin calls it in create(), before
   * any training.
   */
  checkConfig(): ResolvedMlflowConfig {
    const config = this.resolveConfig();
    readTlsFiles(config.tls);
    return config;
  }

  protected resolveConfig(): ResolvedMlflowConfig {
    return resolveMlflowConfig(this.env, this.options);
  }

  protected createClient(config: ResolvedMlflowConfig): MlflowClient {
    const options: Parameters<typeof createMlflowClient>[0] = {
      baseUrl: config.trackingUri,
      timeoutMs: config.http.timeoutMs,
      tls: config.tls,
    };
    if (config.auth) options.auth = config.auth;
    return createMlflowClient(options);
  }

  protected createTransport(config: ResolvedMlflowConfig, client: MlflowClient): MlflowTransport {
    return createMlflowTransport({
      client,
      artifacts: config.logArtifacts,
      params: config.logParams,
      logger: this.logger,
    });
  }

  /** The tags MLflow's client sets when it creates a run (and the stream tag). */
  protected systemTags(
    config: ResolvedMlflowConfig,
    runName: string | undefined,
    stream: string,
  ): MlflowKeyValue[] {
    const tags: MlflowKeyValue[] = [];
    let user: string | undefined;
    try {
      user = userInfo().username;
    } catch {
      user = this.env.USER ?? this.env.USERNAME;
    }
    if (user) tags.push({ key: "mlflow.user", value: user });
    tags.push({ key: "mlflow.source.name", value: redactText(process.argv[1] ?? "<console>") });
    tags.push({ key: "mlflow.source.type", value: "LOCAL" });
    if (runName !== undefined) tags.push({ key: "mlflow.runName", value: runName });
    if (config.nested && config.parentRunId)
      tags.push({ key: "mlflow.parentRunId", value: config.parentRunId });
    tags.push({ key: STREAM_TAG, value: stream });
    return tags;
  }

  /** How the run is created if the stream has none yet (kept in the spool's meta.json). */
  protected runCreateSpec(
    config: ResolvedMlflowConfig,
    args: TrainingArguments,
    stream: string,
  ): RunCreateSpec {
    const runName = config.runName ?? args.runName ?? undefined;
    const spec: RunCreateSpec = {
      startTime: Date.now(),
      tags: this.systemTags(config, runName ?? undefined, stream),
    };
    if (config.experimentName !== undefined) spec.experimentName = config.experimentName;
    if (config.experimentId !== undefined) spec.experimentId = config.experimentId;
    if (runName) spec.runName = runName;
    const user = spec.tags.find((tag) => tag.key === "mlflow.user")?.value;
    if (user) spec.userId = user;
    if (config.nested && !config.parentRunId)
      this.warnOnce(
        "nested",
        "MLflow: MLFLOW_NESTED_RUN is set but no parentRunId option was given; the run is a top-level run.",
      );
    return spec;
  }

  /** The stored run state in a checkpoint's trainer state (`stateful_callbacks`), if any. */
  protected storedState(state: TrainerState): MlflowRunState | undefined {
    const stored = state.statefulCallbacks?.[this.constructor.name];
    const record = (Array.isArray(stored) ? stored[0] : stored) as StateRecord | undefined;
    return runStateOf(record?.attributes);
  }

  /**
   * HF's setup: resolve the configuration, choose the stream (a resumed checkpoint's, the one
   * given by fromState, or a new one), open its outbox, and enqueue the params and tags.
   */
  protected async setup(
    args: TrainingArguments,
    model: unknown,
    resumed: MlflowRunState | undefined,
  ): Promise<void> {
    const config = this.resolveConfig();
    this.config = config;
    this.initialized = true;
    let stream: string;
    let runId: string | undefined;
    let owned: boolean;
    let continuing = false;
    if (config.runId !== undefined) {
      // A run the user chose: never ended by trainkit.
      continuing = resumed?.runId === config.runId;
      stream = continuing && resumed ? resumed.stream : newStreamId();
      runId = config.runId;
      owned = continuing ? (resumed?.owned ?? false) : false;
    } else if (resumed) {
      continuing = true;
      stream = resumed.stream;
      runId = resumed.runId;
      owned = resumed.owned ?? true;
    } else {
      stream = newStreamId();
      owned = true;
    }
    await this.openStream(args, config, stream, { runId, owned });
    this.ended = false;
    const records: MlflowRecord[] = [];
    // MLflow's resume: the run is RUNNING again (a run of ours; the user's are left as they are).
    if (continuing && owned) records.push({ t: "s", status: "RUNNING" });
    if (config.logParams) records.push(...this.paramRecords(args, model, config));
    records.push(...this.tagRecords(config));
    if (records.length > 0) this.outbox!.enqueue(records);
    this.installSignalHandlers();
  }

  /** Opens the outbox of `stream` (closing one this process still holds on the same folder). */
  protected async openStream(
    args: TrainingArguments,
    config: ResolvedMlflowConfig,
    stream: string,
    { runId, owned }: { runId?: string | undefined; owned: boolean },
  ): Promise<void> {
    // Another stream replaces this one: end it (if ours) and deliver what it holds first.
    if (this.outbox) await this.finish("FINISHED");
    const dir = outboxDir(args.outputDir, this.integrationName, stream);
    await Outbox.held(dir)?.close();
    const client = this.createClient(config);
    const transport = this.createTransport(config, client);
    const meta: MlflowStreamMeta = defined({
      trackingUri: config.trackingUri,
      stream,
      owned,
      runId,
      create: runId === undefined ? this.runCreateSpec(config, args, stream) : undefined,
      chosenExperiment:
        runId !== undefined &&
        (config.experimentName !== undefined || config.experimentId !== undefined)
          ? defined({ name: config.experimentName, id: config.experimentId })
          : undefined,
    });
    const retry: RetryOptions = { ...retryFromKnobs(config.http), ...this.options.retry };
    const outboxOptions: OutboxOptions<MlflowRecord | R> = {
      dir,
      integration: this.integrationName,
      transport,
      meta: meta as Record<string, unknown>,
      logger: this.logger,
      retry,
    };
    if (this.options.maxMemoryRecords !== undefined)
      outboxOptions.maxMemoryRecords = this.options.maxMemoryRecords;
    if (this.options.flushIntervalMs !== undefined)
      outboxOptions.flushIntervalMs = this.options.flushIntervalMs;
    const outbox = Outbox.open<MlflowRecord | R>(outboxOptions);
    this.outbox = outbox;
    this.stream = stream;
    this.owned = owned;
    this.known = defined({
      runId: typeof outbox.meta.runId === "string" ? outbox.meta.runId : runId,
      experimentId:
        typeof outbox.meta.experimentId === "string" ? outbox.meta.experimentId : undefined,
    });
  }

  /** The params records: model config then args, rendered, checked, truncated, capped. */
  protected paramRecords(
    args: TrainingArguments,
    model: unknown,
    config: ResolvedMlflowConfig,
  ): MlflowRecord[] {
    const built = buildParams(argsDict(args), modelConfigDict(model), {
      flatten: config.flattenParams,
      ...(config.maxLogParams === undefined ? {} : { maxLogParams: config.maxLogParams }),
    });
    if (built.invalid.length > 0)
      this.warnOnce(
        "invalid-params",
        `MLflow: not logging the params ${built.invalid.map(({ key, reason }) => `${JSON.stringify(key)} (${reason})`).join(", ")}: MLflow would reject their names.`,
      );
    const records: MlflowRecord[] = built.params.map(([key, value]) => paramRecord(key, value));
    if (built.truncated.length > 0) {
      this.warnOnce(
        "truncated-params",
        `MLflow: the values of the params ${built.truncated.join(", ")} are longer than MLflow's 6000 characters and were truncated to 6000 (HF drops them); the tag ${TRUNCATED_PARAMS_TAG} lists them.`,
      );
      records.push(tagRecord(TRUNCATED_PARAMS_TAG, keyListValue(built.truncated)));
    }
    return records;
  }

  /** MLFLOW_TAGS / the tags option, as tag records (invalid keys dropped, values ≤ 5000). */
  protected tagRecords(config: ResolvedMlflowConfig): MlflowRecord[] {
    const records: MlflowRecord[] = [];
    const masked = maskSecrets(config.tags) as Record<string, unknown>;
    for (const [key, raw] of Object.entries(masked)) {
      const reason = invalidKeyReason(key);
      if (reason) {
        this.warnOnce(
          `tag:${key}`,
          `MLflow: not setting the tag ${JSON.stringify(key)} from MLFLOW_TAGS: ${reason}.`,
        );
        continue;
      }
      const cut = truncateChars(pythonStr(raw), MAX_TAG_VALUE_LENGTH);
      if (cut.truncated)
        this.warnOnce(
          `tag-long:${key}`,
          `MLflow: the tag ${JSON.stringify(key)} is longer than ${MAX_TAG_VALUE_LENGTH} characters and was truncated.`,
        );
      records.push(tagRecord(key, cut.text));
    }
    return records;
  }

  /**
   * HF's on_log: numbers (NaN and ±Infinity included), booleans as 1/0 and one-element tensors
   * become metrics at the global step, with one timestamp; other values are dropped with HF's
   * warning. Keys are sanitised as HF does; keys MLflow would still reject are dropped with a
   * warning (once per key).
   */
  protected metricRecords(logs: Record<string, unknown>, state: TrainerState): MetricRecord[] {
    const records: MetricRecord[] = [];
    const ts = Date.now();
    for (const [key, value] of Object.entries(logs)) {
      let number: number | undefined;
      if (typeof value === "number") number = value;
      else if (typeof value === "boolean") number = value ? 1 : 0;
      else if (typeof value === "bigint") number = Number(value);
      else number = scalarOf(value);
      if (number === undefined) {
        this.warnOnce(
          `value:${key}`,
          `Trainer is attempting to log a value of "${describe(value)}" of type ${pythonType(value)} for key "${key}" as a metric. MLflow's log_metric() only accepts float and int types so we dropped this attribute.`,
        );
        continue;
      }
      const { name, reason } = this.metricKey(key);
      if (reason) {
        this.warnOnce(
          `key:${key}`,
          `MLflow: not logging the metric ${JSON.stringify(key)}${name === key ? "" : ` (sanitised to ${JSON.stringify(name)})`}: ${reason}. Further values are dropped without a warning.`,
        );
        continue;
      }
      records.push(metricRecord(name, number, state.globalStep, ts));
    }
    return records;
  }

  /**
   * The files of `<outputDir>/checkpoint-<step>`, hard-linked (else copied) into the spool
   * folder now — checkpoint rotation may delete the folder before delivery — one artifact
   * record per file, to run artifact path `checkpoint-<step>/<relpath>`.
   */
  protected artifactRecords(args: TrainingArguments, state: TrainerState): ArtifactRecord[] {
    const name = `checkpoint-${state.globalStep}`;
    const source = join(args.outputDir, name);
    if (!existsSync(source)) {
      this.warnOnce(
        `missing:${name}`,
        `MLflow: ${source} does not exist; nothing to upload for this checkpoint.`,
      );
      return [];
    }
    const root = join(this.outbox!.dir, "artifacts", `${name}-${Date.now().toString(36)}`);
    const records: ArtifactRecord[] = [];
    for (const file of listFiles(source)) {
      const rel = relative(source, file);
      const target = join(root, rel);
      mkdirSync(dirname(target), { recursive: true });
      try {
        linkSync(file, target);
      } catch {
        copyFileSync(file, target);
      }
      const posix = rel.split(sep).join("/");
      records.push({ t: "a", dir: root, src: posix, path: `${name}/${posix}` });
    }
    return records;
  }

  /** Whether this callback ends the run (it created it, and endRunAtTrainEnd is on). */
  protected shouldEndRun(): boolean {
    return this.owned && !this.ended && (this.config?.endRunAtTrainEnd ?? true);
  }

  /**
   * Records to deliver after the run's end record, before the final drain (none here).
   * `trainEndArgs` is set only when training ended normally (onTrainEnd), not on a failure,
   * a signal, close() or the exit of a post-train evaluate.
   */
  protected afterEndRecords(_status: EndStatus, _trainEndArgs: TrainingArguments | undefined): R[] {
    return [];
  }

  override async onTrainBegin(
    args: TrainingArguments,
    state: TrainerState,
    _control: TrainerControl,
    ctx: CallbackContext,
  ): Promise<void> {
    if (!state.isWorldProcessZero || this.terminating) return;
    // A resumed training (global step > 0 from a checkpoint) continues the checkpoint's run.
    const fromCheckpoint = state.globalStep > 0 ? this.storedState(state) : undefined;
    const resumed = this.restored ?? fromCheckpoint;
    this.restored = undefined;
    const open = this.outbox !== undefined && !this.ended;
    if (open && (!resumed || resumed.stream === this.stream)) return; // set up already (HF)
    await this.setup(args, ctx.model, resumed);
  }

  override async onLog(
    args: TrainingArguments,
    state: TrainerState,
    _control: TrainerControl,
    ctx: CallbackContext,
  ): Promise<void> {
    if (!state.isWorldProcessZero || this.terminating) return;
    if (!this.outbox) {
      if (this.stream && this.ended && this.config) {
        // After train end (a post-train evaluate()): log into the same run, and deliver at exit.
        await this.openStream(args, this.config, this.stream, {
          runId: this.known.runId,
          owned: this.owned,
        });
        this.installExitHandler();
      } else {
        // evaluate() without train(): HF's lazy setup.
        await this.setup(args, ctx.model, this.restored);
        this.restored = undefined;
        this.installExitHandler();
      }
    }
    const records = this.metricRecords((ctx.logs ?? {}) as Record<string, unknown>, state);
    if (records.length > 0) this.outbox!.enqueue(records);
  }

  override onSave(
    args: TrainingArguments,
    state: TrainerState,
    _control: TrainerControl,
    _ctx: CallbackContext,
  ): void {
    if (!state.isWorldProcessZero || !this.outbox || !this.config?.logArtifacts) return;
    const records = this.artifactRecords(args, state);
    if (records.length > 0) this.outbox.enqueue(records);
  }

  override async onTrainEnd(
    args: TrainingArguments,
    state: TrainerState,
    _control: TrainerControl,
    _ctx: CallbackContext,
  ): Promise<void> {
    if (!state.isWorldProcessZero) return;
    await this.finish("FINISHED", { trainEndArgs: args });
  }

  /** train() threw: the run ends FAILED (if trainkit created it), and what is queued is sent. */
  override async onException(
    _args: TrainingArguments,
    state: TrainerState,
    _control: TrainerControl,
    _ctx: CallbackContext,
  ): Promise<void> {
    if (!state.isWorldProcessZero) return;
    await this.finish("FAILED");
  }

  /**
   * Ends the run if it is ours (FINISHED), delivers what is queued within the drain deadline
   * and closes the outbox. What is not delivered stays in the spool for `trainkit sync`.
   */
  async close(): Promise<void> {
    await this.finish("FINISHED");
  }

  /**
   * Ends an owned run with `status`, queues afterEndRecords, drains with the deadline (default:
   * the configured one), closes the outbox. `trainEndArgs`: given by onTrainEnd only.
   */
  protected async finish(
    status: EndStatus,
    { deadlineMs, trainEndArgs }: { deadlineMs?: number; trainEndArgs?: TrainingArguments } = {},
  ): Promise<void> {
    this.removeSignalHandlers();
    this.removeExitHandler();
    const outbox = this.outbox;
    if (!outbox) return;
    if (this.shouldEndRun()) outbox.enqueue(endRecord(status));
    this.ended = true;
    try {
      const after = this.afterEndRecords(status, trainEndArgs);
      if (after.length > 0) outbox.enqueue(after);
      await outbox.drain({
        deadlineMs: deadlineMs ?? this.config?.drainDeadlineMs ?? DEFAULT_DRAIN_DEADLINE_MS,
      });
    } finally {
      await this.closeOutbox();
    }
  }

  protected async closeOutbox(): Promise<void> {
    const outbox = this.outbox;
    if (!outbox) return;
    this.remember();
    this.outbox = undefined;
    await outbox.close();
  }

  /** SIGINT/SIGTERM while a run is open: end it KILLED and drain briefly (see signals.ts). */
  private installSignalHandlers(): void {
    registerSignalFinisher(this.signalFinisher);
  }

  private removeSignalHandlers(): void {
    unregisterSignalFinisher(this.signalFinisher);
  }

  private async onSignal(_signal: NodeJS.Signals): Promise<void> {
    // The process is going away: events that still come while delivery drains enqueue nothing.
    this.terminating = true;
    try {
      await this.finish("KILLED", { deadlineMs: this.options.signalDrainMs ?? 2000 });
    } catch {
      // terminating anyway; the coordinator decides what happens next
    }
  }

  /** Delivers records logged after train end before the process exits (one beforeExit listener per process). */
  private installExitHandler(): void {
    registerExitFinisher(this.exitFinisher);
  }

  private removeExitHandler(): void {
    unregisterExitFinisher(this.exitFinisher);
  }

  /**
   * A log key's MLflow name and why MLflow would refuse it, computed once per key: the same keys
   * come back at every log, and recomputing them was most of what a log allocated.
   */
  private metricKey(key: string): { name: string; reason: string | undefined } {
    let known = this.metricKeys.get(key);
    if (known === undefined) {
      const name = sanitizeMetricKey(key);
      known = { name, reason: invalidKeyReason(name) };
      if (this.metricKeys.size < 10_000) this.metricKeys.set(key, known);
    }
    return known;
  }

  protected warnOnce(key: string, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.logger.warn(message);
  }

  /**
   * The checkpointed state (HF's ExportableState): the stream and the run it delivers to, so a
   * resumed training continues them. Secret-free: no credentials, the URI without them.
   */
  state(): StateRecord {
    const trackingUri = this.options.trackingUri
      ? parseTrackingUri(this.options.trackingUri)
      : undefined;
    return {
      args: defined({
        tracking_uri: trackingUri?.ok ? trackingUri.baseUrl : undefined,
        experiment_name: this.options.experimentName,
        experiment_id: this.options.experimentId,
        run_name: this.options.runName,
        nested: this.options.nested,
        parent_run_id: this.options.parentRunId,
        log_artifacts: this.options.logArtifacts,
        log_params: this.options.logParams,
        end_run_at_train_end: this.options.endRunAtTrainEnd,
        flatten_params: this.options.flattenParams,
        max_log_params: this.options.maxLogParams,
        drain_deadline_ms: this.options.drainDeadlineMs,
      }),
      // Not set up yet (rebuilt by fromState): the state it was given, unchanged.
      attributes:
        this.stream === undefined && this.restored
          ? defined({
              stream: this.restored.stream,
              run_id: this.restored.runId,
              experiment_id: this.restored.experimentId,
              owned: this.restored.owned,
            })
          : defined({
              stream: this.stream,
              run_id: this.runId,
              experiment_id: this.experimentId,
              owned: this.stream === undefined ? undefined : this.owned,
            }),
    };
  }

  /**
   * Rebuilds a callback from a checkpoint's state record (options from `args` by the class's
   * optionsFromState, env from process.env); its next setup continues the stored stream and run.
   * The first overload is for MlflowCallback itself, whose generic constructor would otherwise
   * type the result `MlflowCallback<OutboxRecord>`; the second builds the subclass it is called on.
   */
  static fromState(this: typeof MlflowCallback, record: StateRecord): MlflowCallback;
  static fromState<T extends MlflowCallback<OutboxRecord>>(
    this: new (options?: MlflowCallbackOptions) => T,
    record: StateRecord,
  ): T;
  static fromState(this: typeof MlflowCallback, record: StateRecord): MlflowCallback<OutboxRecord> {
    const callback = new this(this.optionsFromState(record));
    callback.restored = runStateOf(record.attributes);
    return callback;
  }

  /** The constructor options in a state record's `args` (subclasses add theirs to these). */
  protected static optionsFromState(record: StateRecord): MlflowCallbackOptions {
    const a = record.args ?? {};
    const str = (v: unknown) => (typeof v === "string" ? v : undefined);
    const bool = (v: unknown) => (typeof v === "boolean" ? v : undefined);
    const num = (v: unknown) => (typeof v === "number" ? v : undefined);
    return defined({
      trackingUri: str(a.tracking_uri),
      experimentName: str(a.experiment_name),
      experimentId: str(a.experiment_id),
      runName: str(a.run_name),
      nested: bool(a.nested),
      parentRunId: str(a.parent_run_id),
      logArtifacts: bool(a.log_artifacts),
      logParams: bool(a.log_params),
      endRunAtTrainEnd: bool(a.end_run_at_train_end),
      flattenParams: bool(a.flatten_params),
      maxLogParams: num(a.max_log_params),
      drainDeadlineMs: num(a.drain_deadline_ms),
    }) as MlflowCallbackOptions;
  }
}

/** The run state in a state record's attributes, if it names a stream. */
function runStateOf(attributes: Record<string, unknown> | undefined): MlflowRunState | undefined {
  if (!attributes || typeof attributes.stream !== "string") return undefined;
  if (!/^[A-Za-z0-9][\w.-]*$/.test(attributes.stream)) return undefined;
  const state: MlflowRunState = { stream: attributes.stream };
  if (typeof attributes.run_id === "string") state.runId = attributes.run_id;
  if (typeof attributes.experiment_id === "string") state.experimentId = attributes.experiment_id;
  if (typeof attributes.owned === "boolean") state.owned = attributes.owned;
  return state;
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  )) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(path));
    else if (entry.isFile() || (entry.isSymbolicLink() && statSync(path).isFile())) out.push(path);
  }
  return out;
}

function describe(value: unknown): string {
  try {
    return String(JSON.stringify(value) ?? value);
  } catch {
    return String(value);
  }
}

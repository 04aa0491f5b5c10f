/**
 * The delivery side of the MLflow outbox: groups records into MLflow requests within the API's
 * limits, opens (creates or reattaches to) the run on first delivery, and maps every failure to
 * the outbox's retry / reject / halt. It runs in the training process and in `trainkit sync`,
 * so everything it needs is in the records and the spool's secret-free meta.
 */
import { existsSync, readdirSync, rmdirSync, unlinkSync } from "node:fs";
import { basename, dirname, relative, resolve, sep } from "node:path";
import {
  DeliveryError,
  type DeliveryContext,
  type OutboxTransport,
  type PluginContext,
  type RetryOptions,
} from "@trainkit/core/plugin";
import {
  MlflowRequestError,
  toDeliveryError,
  type CreateRunBody,
  type LogBatchBody,
  type MlflowClient,
  type MlflowKeyValue,
  type MlflowRun,
} from "./client.js";
import type {
  ArtifactRecord,
  EndRecord,
  MetricRecord,
  MlflowRecord,
  ParamRecord,
  StatusRecord,
  TagRecord,
} from "./records.js";

type Logger = PluginContext["logger"];

/** MLflow's log-batch limits (`mlflow/utils/validation.py`, spec §1.4). */
export const BATCH_LIMITS = {
  metrics: 1000,
  params: 100,
  tags: 100,
  entities: 1000,
  /** Request body, bytes (MAX_BATCH_LOG_REQUEST_SIZE = 1e6). */
  bytes: 1_000_000,
} as const;

export type BatchLimits = { -readonly [K in keyof typeof BATCH_LIMITS]: number };

/** Room kept in a log-batch body for `{"run_id":"...","metrics":[],"params":[],"tags":[]}`. */
const BODY_OVERHEAD_BYTES = 400;

/** The JSON size of one log-batch item as it is sent. */
export function itemBytes(record: MetricRecord | ParamRecord | TagRecord): number {
  const item =
    record.t === "m"
      ? { key: record.k, value: record.v, timestamp: record.ts, step: record.s }
      : { key: record.k, value: record.v };
  return Buffer.byteLength(JSON.stringify(item), "utf8") + 1;
}

function isLoggable(record: MlflowRecord): record is MetricRecord | ParamRecord | TagRecord {
  return record.t === "m" || record.t === "p" || record.t === "g";
}

/**
 * How many records from the front go in one request: consecutive metrics, params and tags in
 * one log-batch within every limit (≤ 1000 metrics, ≤ 100 params, ≤ 100 tags, ≤ 1000 in all,
 * ≤ 1 MB of body, no param or tag key twice); an artifact, status or end record alone.
 */
export function mlflowBatchSize(
  records: readonly MlflowRecord[],
  limits: BatchLimits = BATCH_LIMITS,
): number {
  const first = records[0];
  if (!first || !isLoggable(first)) return 1;
  let metrics = 0;
  let params = 0;
  let tags = 0;
  let bytes = BODY_OVERHEAD_BYTES;
  const paramKeys = new Set<string>();
  const tagKeys = new Set<string>();
  let n = 0;
  for (const record of records) {
    if (!isLoggable(record)) break;
    if (metrics + params + tags + 1 > limits.entities) break;
    if (record.t === "m" && metrics + 1 > limits.metrics) break;
    if (record.t === "p" && (params + 1 > limits.params || paramKeys.has(record.k))) break;
    if (record.t === "g" && (tags + 1 > limits.tags || tagKeys.has(record.k))) break;
    const size = itemBytes(record);
    if (n > 0 && bytes + size > limits.bytes) break;
    bytes += size;
    if (record.t === "m") metrics++;
    else if (record.t === "p") {
      params++;
      paramKeys.add(record.k);
    } else {
      tags++;
      tagKeys.add(record.k);
    }
    n++;
  }
  return Math.max(n, 1);
}

/** How a stream's run is made when it does not exist yet (in meta.json, secret-free). */
export interface RunCreateSpec {
  experimentName?: string;
  experimentId?: string;
  runName?: string;
  startTime: number;
  userId?: string;
  /** mlflow.* tags and `trainkit.stream`. */
  tags: MlflowKeyValue[];
}

/** What the MLflow outbox keeps in meta.json: secret-free. */
export interface MlflowStreamMeta {
  integration?: string;
  /** The REST base, credential-free. */
  trackingUri?: string;
  /** The stream id, also the run's `trainkit.stream` tag. */
  stream?: string;
  runId?: string;
  experimentId?: string;
  artifactUri?: string;
  /** Whether trainkit created (and so ends) the run. */
  owned?: boolean;
  create?: RunCreateSpec;
  /** A runs/create was sent and its outcome is unknown: look the run up before creating. */
  createAttempted?: boolean;
  /**
   * The experiment chosen explicitly (MLFLOW_EXPERIMENT_NAME / _ID) for a run given by id
   * (MLFLOW_RUN_ID): the run's experiment is compared with it, and a difference reported.
   */
  chosenExperiment?: { name?: string; id?: string };
}

/** The run records are delivered to. */
export interface OpenRun {
  runId: string;
  experimentId: string;
  artifactUri: string | undefined;
}

export interface MlflowTransportOptions {
  client: MlflowClient;
  /** Upload artifact records (default true). Off: they are dropped (their spool copies deleted). */
  artifacts?: boolean;
  /** Send param records (default true). Off: they are dropped. */
  params?: boolean;
  /** Where warnings go (default: the delivery context's logger). */
  logger?: Logger;
  /** The tag a created run carries with the stream id (default `trainkit.stream`). */
  streamTag?: string;
  /** The outbox's retry defaults (MLFLOW_HTTP_REQUEST_*), used when Outbox.open is given none. */
  retry?: RetryOptions;
}

export const STREAM_TAG = "trainkit.stream";

/**
 * The OutboxTransport of the MLflow integration. Subclasses (DagsHub, Azure ML) override the
 * protected steps: how the run is opened, how each kind of record is sent.
 */
export class MlflowTransport implements OutboxTransport<MlflowRecord> {
  readonly client: MlflowClient;
  protected artifactsEnabled: boolean;
  protected readonly paramsEnabled: boolean;
  protected readonly logger: Logger | undefined;
  protected readonly streamTag: string;
  /** The run, once opened in this process. */
  protected run: OpenRun | undefined;
  /** Params the run already has (from runs/get on reattach, and those sent since). */
  protected readonly knownParams = new Map<string, string>();
  private readonly warned = new Set<string>();
  /** The backend's retry knobs (OutboxTransport.retry): Outbox.open's `retry` wins over them. */
  retry: RetryOptions | undefined;

  constructor(options: MlflowTransportOptions) {
    this.client = options.client;
    this.retry = options.retry;
    this.artifactsEnabled = options.artifacts ?? true;
    this.paramsEnabled = options.params ?? true;
    this.logger = options.logger;
    this.streamTag = options.streamTag ?? STREAM_TAG;
  }

  batchSize(records: readonly MlflowRecord[]): number {
    return mlflowBatchSize(records);
  }

  async deliver(batch: readonly MlflowRecord[], context: DeliveryContext): Promise<void> {
    const run = await this.openRun(context);
    const first = batch[0];
    if (!first) return;
    if (isLoggable(first) && batch.every(isLoggable)) {
      await this.deliverLogBatch(run, batch as (MetricRecord | ParamRecord | TagRecord)[], context);
      return;
    }
    for (const record of batch) {
      if (isLoggable(record)) await this.deliverLogBatch(run, [record], context);
      else if (record.t === "a") await this.deliverArtifact(run, record, context);
      else if (record.t === "end") await this.deliverEnd(run, record, context);
      else if (record.t === "s") await this.deliverStatus(run, record, context);
      else
        throw new DeliveryError(
          `MLflow: unknown record type ${JSON.stringify((record as { t?: unknown }).t)} in the spool.`,
          { kind: "reject" },
        );
    }
  }

  protected warnOnce(key: string, message: string, context: DeliveryContext): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    (this.logger ?? context.logger).warn(message);
  }

  protected meta(context: DeliveryContext): MlflowStreamMeta {
    return context.meta as MlflowStreamMeta;
  }

  /**
   * The run to deliver to, opened once per process: reattached when meta has a run id
   * (runs/get: refused if deleted; its params are remembered), else created (experiment
   * get-or-create, runs/create with the stream tag; after an ambiguous create, looked up by
   * that tag first). The ids are saved to meta.json.
   */
  protected async openRun(context: DeliveryContext): Promise<OpenRun> {
    if (this.run) return this.run;
    const meta = this.meta(context);
    let run: OpenRun;
    try {
      run = meta.runId
        ? await this.reattachRun(meta.runId, context)
        : await this.createRun(context);
    } catch (error) {
      // Nothing the records hold is at fault while the run is opened: never reject them.
      throw openRunError("opening the MLflow run", error);
    }
    this.run = run;
    const patch: Record<string, unknown> = {};
    if (meta.runId !== run.runId) patch.runId = run.runId;
    if (meta.experimentId !== run.experimentId) patch.experimentId = run.experimentId;
    if (run.artifactUri !== undefined && meta.artifactUri !== run.artifactUri)
      patch.artifactUri = run.artifactUri;
    // Created (or found) now: a later create attempt has nothing to look up.
    if (!meta.runId) patch.createAttempted = false;
    if (Object.keys(patch).length > 0) context.saveMeta(patch);
    return run;
  }

  protected async reattachRun(runId: string, context: DeliveryContext): Promise<OpenRun> {
    let run: MlflowRun;
    try {
      ({ run } = await this.client.getRun(runId, context.signal));
    } catch (error) {
      if (error instanceof MlflowRequestError && error.status === 404)
        throw new DeliveryError(
          `MLflow run ${runId} does not exist on ${this.client.baseUrl} (deleted for good, or another server?): ${error.message} Nothing more can be logged to it.`,
          { kind: "halt", status: 404 },
        );
      throw openRunError("runs/get", error);
    }
    if (run.info.lifecycle_stage === "deleted")
      throw new DeliveryError(
        `MLflow run ${runId} is deleted. Restore it (MLflow UI or \`mlflow runs restore --run-id ${runId}\`), then run \`trainkit sync\` to deliver what is left.`,
        { kind: "halt" },
      );
    await this.checkExperiment(runId, run.info.experiment_id, context);
    for (const param of run.data?.params ?? []) this.knownParams.set(param.key, param.value);
    return {
      runId: run.info.run_id ?? runId,
      experimentId: run.info.experiment_id,
      artifactUri: run.info.artifact_uri,
    };
  }

  /**
   * A run given by id that is not in the experiment chosen explicitly (by name or id): said
   * once, and logged to the run anyway. A lookup that fails says nothing.
   */
  protected async checkExperiment(
    runId: string,
    experimentId: string,
    context: DeliveryContext,
  ): Promise<void> {
    const meta = this.meta(context);
    const chosen = meta.chosenExperiment ?? {
      ...(meta.create?.experimentName === undefined ? {} : { name: meta.create.experimentName }),
      ...(meta.create?.experimentId === undefined ? {} : { id: meta.create.experimentId }),
    };
    let chosenId = chosen.name === undefined ? chosen.id : undefined;
    if (chosen.name !== undefined) {
      try {
        chosenId = (await this.client.getExperimentByName(chosen.name, context.signal)).experiment
          .experiment_id;
      } catch {
        chosenId = undefined; // missing, or unreachable: nothing to compare with
      }
    }
    if (chosenId === undefined || chosenId === experimentId) return;
    const what =
      chosen.name === undefined
        ? `experiment ${chosenId}`
        : `experiment ${JSON.stringify(chosen.name)} (id ${chosenId})`;
    this.warnOnce(
      "experiment-mismatch",
      `MLflow run ${runId} belongs to experiment ${experimentId}, not to the chosen ${what}; logging to the run.`,
      context,
    );
  }

  /**
   * The experiment id: the named one (created if missing) — the name wins, as HF's
   * MLFLOW_EXPERIMENT_NAME does —, else the id given, else "0" (Default).
   */
  protected async resolveExperiment(
    spec: RunCreateSpec,
    context: DeliveryContext,
  ): Promise<string> {
    const name = spec.experimentName;
    if (!name) return spec.experimentId || "0";
    const get = async (): Promise<string | undefined> => {
      try {
        const { experiment } = await this.client.getExperimentByName(name, context.signal);
        if (experiment.lifecycle_stage === "deleted")
          throw new DeliveryError(
            `MLflow experiment ${JSON.stringify(name)} (id ${experiment.experiment_id}) is deleted. Restore it (\`mlflow experiments restore --experiment-id ${experiment.experiment_id}\`) or choose another name (MLFLOW_EXPERIMENT_NAME), then run \`trainkit sync\`.`,
            { kind: "halt" },
          );
        return experiment.experiment_id;
      } catch (error) {
        if (error instanceof MlflowRequestError && error.errorCode === "RESOURCE_DOES_NOT_EXIST")
          return undefined;
        throw openRunError("experiments/get-by-name", error);
      }
    };
    const existing = await get();
    if (existing !== undefined) return existing;
    try {
      const { experiment_id } = await this.client.createExperiment(name, context.signal);
      return experiment_id;
    } catch (error) {
      // Created meanwhile (another process, or our own earlier attempt): look it up again.
      if (error instanceof MlflowRequestError && error.errorCode === "RESOURCE_ALREADY_EXISTS") {
        const again = await get();
        if (again !== undefined) return again;
      }
      throw openRunError("experiments/create", error);
    }
  }

  /** A run of this stream created earlier (found by its stream tag), if any. */
  protected async findStreamRun(
    experimentId: string,
    stream: string,
    context: DeliveryContext,
  ): Promise<MlflowRun | undefined> {
    const quoted = stream.replace(/\\/g, "\\\\").replace(/'/g, "\\'");
    try {
      const { runs } = await this.client.searchRuns(
        {
          experiment_ids: [experimentId],
          filter: `tags.\`${this.streamTag}\` = '${quoted}'`,
          max_results: 10,
          run_view_type: "ALL",
        },
        context.signal,
      );
      return runs?.[0];
    } catch (error) {
      throw openRunError("runs/search", error);
    }
  }

  protected async createRun(context: DeliveryContext): Promise<OpenRun> {
    const meta = this.meta(context);
    const spec = meta.create;
    if (!spec)
      throw new DeliveryError(
        "MLflow: the spool's meta.json has neither a run id nor what is needed to create the run.",
        { kind: "halt" },
      );
    const experimentId = meta.experimentId ?? (await this.resolveExperiment(spec, context));
    if (meta.experimentId !== experimentId) context.saveMeta({ experimentId });
    const stream = meta.stream;
    if (meta.createAttempted && stream) {
      const found = await this.findStreamRun(experimentId, stream, context);
      if (found) {
        if (found.info.lifecycle_stage === "deleted")
          throw new DeliveryError(
            `MLflow run ${found.info.run_id} (stream ${stream}) is deleted. Restore it, then run \`trainkit sync\`.`,
            { kind: "halt" },
          );
        return {
          runId: found.info.run_id,
          experimentId: found.info.experiment_id ?? experimentId,
          artifactUri: found.info.artifact_uri,
        };
      }
    }
    const body: CreateRunBody = {
      experiment_id: experimentId,
      start_time: spec.startTime,
      tags: spec.tags,
    };
    if (spec.runName !== undefined) body.run_name = spec.runName;
    if (spec.userId !== undefined) body.user_id = spec.userId;
    // runs/create is not idempotent: from here on, a retry first looks the run up.
    context.saveMeta({ createAttempted: true });
    try {
      const { run } = await this.client.createRun(body, context.signal);
      return {
        runId: run.info.run_id ?? run.info.run_uuid,
        experimentId: run.info.experiment_id ?? experimentId,
        artifactUri: run.info.artifact_uri,
      };
    } catch (error) {
      if (error instanceof MlflowRequestError && error.errorCode === "RESOURCE_DOES_NOT_EXIST")
        throw new DeliveryError(
          `MLflow experiment ${experimentId} does not exist on ${this.client.baseUrl}: ${error.message}`,
          { kind: "halt", status: 404 },
        );
      throw openRunError("runs/create", error);
    }
  }

  /** Metrics, params and tags in one log-batch (params the run already has are left out). */
  protected async deliverLogBatch(
    run: OpenRun,
    batch: readonly (MetricRecord | ParamRecord | TagRecord)[],
    context: DeliveryContext,
  ): Promise<void> {
    const body: Required<LogBatchBody> = { run_id: run.runId, metrics: [], params: [], tags: [] };
    const differing: string[] = [];
    for (const record of batch) {
      if (record.t === "m")
        body.metrics.push({ key: record.k, value: record.v, timestamp: record.ts, step: record.s });
      else if (record.t === "g") body.tags.push({ key: record.k, value: record.v });
      else if (this.paramsEnabled) {
        const known = this.knownParams.get(record.k);
        if (known === record.v) continue;
        if (known !== undefined) {
          differing.push(record.k);
          continue;
        }
        body.params.push({ key: record.k, value: record.v });
      }
    }
    if (differing.length > 0)
      this.warnOnce(
        "differing-params",
        `MLflow run ${run.runId} already has different values for the params ${differing.join(", ")}; MLflow does not allow changing a param, so the run keeps its values (later differences are not reported).`,
        context,
      );
    if (body.metrics.length + body.params.length + body.tags.length === 0) return;
    const sent: LogBatchBody = { run_id: body.run_id };
    if (body.metrics.length > 0) sent.metrics = body.metrics;
    if (body.params.length > 0) sent.params = body.params;
    if (body.tags.length > 0) sent.tags = body.tags;
    try {
      await this.client.logBatch(sent, context.signal);
    } catch (error) {
      throw this.logBatchError(run, error);
    }
    for (const param of body.params) this.knownParams.set(param.key, param.value);
  }

  protected logBatchError(run: OpenRun, error: unknown): DeliveryError {
    if (error instanceof MlflowRequestError) {
      if (/must be in the 'active' state|is deleted/i.test(error.serverMessage ?? ""))
        return new DeliveryError(
          `MLflow run ${run.runId} is not active (deleted?): ${error.message} Restore it, then run \`trainkit sync\`.`,
          { kind: "halt", ...(error.status === undefined ? {} : { status: error.status }) },
        );
      if (error.status === 404)
        return new DeliveryError(`MLflow run ${run.runId} no longer exists: ${error.message}`, {
          kind: "halt",
          status: 404,
        });
    }
    return toDeliveryError(error);
  }

  /** Ends the run: runs/update with the status and the end time fixed at enqueue. */
  protected async deliverEnd(
    run: OpenRun,
    record: EndRecord,
    context: DeliveryContext,
  ): Promise<void> {
    try {
      await this.client.updateRun(
        { run_id: run.runId, status: record.status, end_time: record.ts },
        context.signal,
      );
    } catch (error) {
      throw this.logBatchError(run, error);
    }
  }

  /** RUNNING again (a resumed run), keeping the end time, as MLflow's own resume does. */
  protected async deliverStatus(
    run: OpenRun,
    record: StatusRecord,
    context: DeliveryContext,
  ): Promise<void> {
    try {
      await this.client.updateRun({ run_id: run.runId, status: record.status }, context.signal);
    } catch (error) {
      throw this.logBatchError(run, error);
    }
  }

  /**
   * Uploads one file with a streamed PUT to the run's artifact store through the tracking
   * server (idempotent: retried freely), then deletes the spool copy. Artifact URIs the server
   * does not serve (`s3:`, `file:`, ...) and servers started with `--no-serve-artifacts` are
   * reported once and their files skipped.
   */
  protected async deliverArtifact(
    run: OpenRun,
    record: ArtifactRecord,
    context: DeliveryContext,
  ): Promise<void> {
    const file = resolve(record.dir, record.src);
    const inside = relative(resolve(record.dir), file);
    if (inside.startsWith("..") || inside === "" || inside.split(sep).includes(".."))
      throw new DeliveryError(`MLflow: artifact record points outside its folder.`, {
        kind: "reject",
      });
    if (!this.artifactsEnabled) {
      removeSpoolCopy(record);
      return;
    }
    const url = run.artifactUri
      ? this.client.artifactUploadUrl(run.artifactUri, record.path)
      : undefined;
    if (!url) {
      this.warnOnce(
        "artifact-uri",
        `MLflow run ${run.runId} stores artifacts at ${JSON.stringify(run.artifactUri ?? "(none)")}, which trainkit cannot upload to (it uploads through the tracking server, mlflow-artifacts: URIs only); checkpoints are not uploaded.`,
        context,
      );
      removeSpoolCopy(record);
      return;
    }
    if (!existsSync(file))
      throw new DeliveryError(
        `MLflow: the spool copy of artifact ${record.path} is missing (${file}); it cannot be uploaded.`,
        { kind: "reject" },
      );
    try {
      await this.client.uploadArtifact(url, file, context.signal);
    } catch (error) {
      if (
        error instanceof MlflowRequestError &&
        error.status === 503 &&
        /no-serve-artifacts/.test(error.serverMessage ?? "")
      ) {
        this.artifactsEnabled = false;
        this.warnOnce(
          "no-serve-artifacts",
          `MLflow server ${this.client.baseUrl} does not serve artifacts (started with --no-serve-artifacts); checkpoints are not uploaded.`,
          context,
        );
        removeSpoolCopy(record);
        return;
      }
      throw toDeliveryError(error);
    }
    removeSpoolCopy(record);
  }
}

/**
 * A failure while the run is opened (runs/get, experiments/*, runs/search, runs/create) as the
 * outbox's DeliveryError: retryable failures stay retryable; anything else halts (the records
 * are not at fault, so they are never set aside), with a message naming the call.
 */
export function openRunError(call: string, error: unknown): DeliveryError {
  const delivery = toDeliveryError(error);
  if (delivery.kind !== "reject") return delivery;
  const options: { kind: "halt"; status?: number } = { kind: "halt" };
  if (delivery.status !== undefined) options.status = delivery.status;
  return new DeliveryError(
    `MLflow ${call} failed while opening the run: ${delivery.message} Nothing is set aside: fix the cause, then run \`trainkit sync\`.`,
    options,
  );
}

/** Spool folders that hold artifact copies; removed when uploads leave them empty. */
const SPOOL_COPY_FOLDERS = new Set(["artifacts", "repo-upload"]);

/**
 * Deletes an artifact's spool copy and the folders it leaves empty, up to its root folder (and
 * the spool's `artifacts/` or `repo-upload/` folder above it, once empty).
 */
export function removeSpoolCopy(record: ArtifactRecord): void {
  const root = resolve(record.dir);
  const file = resolve(root, record.src);
  try {
    unlinkSync(file);
  } catch {
    // already gone
  }
  let dir = dirname(file);
  for (;;) {
    if (!(dir === root || dir.startsWith(root + sep))) break;
    try {
      if (readdirSync(dir).length > 0) break;
      rmdirSync(dir);
    } catch {
      break;
    }
    if (dir === root) {
      const parent = dirname(root);
      if (SPOOL_COPY_FOLDERS.has(basename(parent)) && !existsSync(root)) {
        try {
          if (readdirSync(parent).length === 0) rmdirSync(parent);
        } catch {
          // in use, or gone
        }
      }
      break;
    }
    dir = dirname(dir);
  }
}

export function createMlflowTransport(options: MlflowTransportOptions): MlflowTransport {
  return new MlflowTransport(options);
}

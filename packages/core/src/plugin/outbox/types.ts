import type { Logger } from "../../util/logger.js";

/**
 * One unit of delivery: a JSON object. It is written to the spool with JSON.stringify and read
 * back with JSON.parse, so it must survive that: encode NaN/±Infinity yourself (JSON turns them
 * into null), no undefined fields, bigints or cycles. Never put a secret in a record or in the
 * meta.
 */
export type OutboxRecord = Record<string, unknown>;

/** What a transport may do while it delivers. */
export interface DeliveryContext {
  /**
   * Secret-free facts about the destination, persisted in the spool's meta.json (e.g. the
   * tracker's run id once it exists), so a later process (`trainkit sync`, a resumed run)
   * delivers to the same place.
   */
  readonly meta: Readonly<Record<string, unknown>>;
  /** Merges into meta and writes meta.json atomically. */
  saveMeta(patch: Record<string, unknown>): void;
  /** Aborted when the outbox is closed or a drain deadline passes. */
  readonly signal: AbortSignal;
  readonly logger: Logger;
}

/**
 * The backend side of an outbox: how records are grouped into requests and sent. One batch is
 * in flight at a time, so records reach the server in the order they were enqueued.
 */
export interface OutboxTransport<R extends OutboxRecord = OutboxRecord> {
  /** How many records from the front of `records` fit in one request (at least 1). */
  batchSize(records: readonly R[]): number;
  /**
   * Sends one batch. Resolving means delivered. Throw a DeliveryError to say what to do next;
   * any other error is treated as retryable.
   */
  deliver(batch: readonly R[], context: DeliveryContext): Promise<void>;
  /** The backend's own retry knobs; Outbox.open's `retry` option overrides them field by field. */
  readonly retry?: RetryOptions;
}

/**
 * retry: a transient failure (connection refused/reset, timeout, 408, 429, 5xx); sent again
 *   after backoff, or after retryAfterMs when the server said so.
 * reject: the server refused these records as invalid; never retried. A batch of several is split
 *   to find the bad ones; a single rejected record is reported once and set aside in rejects.jsonl.
 * halt: nothing can be delivered now (bad credentials, run deleted); delivery stops, records stay
 *   in the spool for `trainkit sync` once the cause is fixed.
 */
export type DeliveryErrorKind = "retry" | "reject" | "halt";

export class DeliveryError extends Error {
  readonly kind: DeliveryErrorKind;
  readonly retryAfterMs: number | undefined;
  readonly status: number | undefined;
  constructor(
    message: string,
    options: { kind: DeliveryErrorKind; retryAfterMs?: number; status?: number; cause?: unknown },
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "DeliveryError";
    this.kind = options.kind;
    this.retryAfterMs = options.retryAfterMs;
    this.status = options.status;
  }
}

export interface RetryOptions {
  /** First backoff delay; doubles each attempt. Default 1000 ms. */
  baseMs?: number;
  /**
   * Cap on the exponential part of a backoff delay (jitter comes on top). Default 60 000 ms.
   * A server's Retry-After is honoured up to 10 min, never sooner than the backoff.
   */
  maxMs?: number;
  /** Random extra delay, up to this fraction of the delay. Default 1 (0..100 %). */
  jitter?: number;
  /** After this many failed attempts of one batch, say so once (delivery keeps trying). Default 5. */
  reportAfter?: number;
}

export interface OutboxOptions<R extends OutboxRecord = OutboxRecord> {
  /** The spool folder, e.g. `<outputDir>/.trainkit/outbox/mlflow/<stream>`; created if missing. */
  dir: string;
  /** The report_to name, used in messages and written to meta.json. */
  integration: string;
  transport: OutboxTransport<R>;
  /** Secret-free meta to merge into meta.json when the outbox is opened. */
  meta?: Record<string, unknown>;
  logger?: Logger;
  /** Records kept in memory; past this they are read back from the spool. Default 10 000. */
  maxMemoryRecords?: number;
  /** How long enqueued records wait to be batched together. Default 1000 ms. */
  flushIntervalMs?: number;
  retry?: RetryOptions;
}

/** What a drain achieved. */
export interface DrainReport {
  delivered: number;
  /** Records still waiting in the spool. */
  pending: number;
  /** Records the server rejected (in rejects.jsonl). */
  rejected: number;
  /**
   * Records lost because the disk refused them and memory was full too (never otherwise);
   * absent when none.
   */
  dropped?: number;
  /** Why records are left, redacted, when some are. */
  reason?: string;
}

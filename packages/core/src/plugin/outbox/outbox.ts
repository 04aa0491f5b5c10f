import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../../util/json-file.js";
import { logger as defaultLogger, type Logger } from "../../util/logger.js";
import { redactText } from "../../util/redact.js";
import { RETRY_DEFAULTS, backoffDelay } from "./backoff.js";
import { outputDirOf } from "./paths.js";
import { Spool, compare, type SpoolPosition, type SpooledRecord } from "./spool.js";
import {
  DeliveryError,
  type DeliveryContext,
  type DrainReport,
  type OutboxOptions,
  type OutboxRecord,
  type OutboxTransport,
  type RetryOptions,
} from "./types.js";

/** How many records a transport is shown when it picks a batch. */
const BATCH_VIEW = 10_000;
/** Enough waiting records to send at once instead of waiting for the flush interval. */
const SEND_NOW = 1000;
/** Rejected records reported one by one; past this only a count. */
const REPORTED_REJECTS = 5;
/** A server's Retry-After is honoured up to this (a drain deadline still applies). */
const RETRY_AFTER_CAP_MS = 10 * 60_000;
/** After a drain deadline aborts a request, how long to wait for the transport to give up. */
const ABORT_GRACE_MS = 2000;

const openDirs = new Set<string>();

/**
 * The outbox: integrations enqueue records and return at once; a background loop delivers them
 * through the integration's transport, in order, one batch in flight, with retries. Every
 * record is appended to an on-disk spool first, so memory stays bounded (only the head of the
 * queue is held) and nothing is lost if the tracker is down or the process dies; a later
 * process (`trainkit sync`, a resumed run) delivers what is left.
 */
export class Outbox<R extends OutboxRecord = OutboxRecord> {
  readonly dir: string;
  readonly integration: string;
  private readonly transport: OutboxTransport<R>;
  private readonly logger: Logger;
  private readonly spool: Spool<R>;
  private readonly maxMemory: number;
  private readonly flushIntervalMs: number;
  private readonly retry: Required<RetryOptions>;
  private metaValue: Record<string, unknown>;

  /** The head of the queue, in order; records past it are only on disk. */
  private memory: SpooledRecord<R>[] = [];
  /** Next spool position not held in memory. */
  private readFrom: SpoolPosition;

  private timer: NodeJS.Timeout | undefined;
  private timerIsBackoff = false;
  private running: Promise<void> | undefined;
  private controller = new AbortController();
  private closed = false;
  private draining = false;
  private attempt = 0;
  private outageReported = false;
  /**
   * Set while looking for a rejected record: a rejected batch halves it, each batch that gets
   * through doubles it back, so one bad record costs a few requests, not one per record.
   */
  private splitMax = Infinity;
  private rejectedCount = 0;
  private deliveredCount = 0;
  private lastError: string | undefined;
  private haltReason: string | undefined;
  private waiters = new Set<() => void>();

  private constructor(options: OutboxOptions<R>) {
    this.dir = options.dir;
    this.integration = options.integration;
    this.transport = options.transport;
    this.logger = options.logger ?? defaultLogger;
    this.maxMemory = Math.max(1, options.maxMemoryRecords ?? 10_000);
    this.flushIntervalMs = Math.max(0, options.flushIntervalMs ?? 1000);
    this.retry = { ...RETRY_DEFAULTS, ...definedOnly(options.retry ?? {}) };
    this.spool = new Spool<R>(options.dir);
    this.readFrom = this.spool.start;
    this.metaValue = {
      ...readMeta(options.dir),
      integration: options.integration,
      ...options.meta,
    };
    writeFileAtomic(join(this.dir, "meta.json"), JSON.stringify(this.metaValue, null, 2) + "\n");
  }

  /**
   * Opens (or creates) the spool folder and starts delivering what it already holds. Only one
   * outbox per folder may be open, across processes.
   */
  static open<R extends OutboxRecord = OutboxRecord>(options: OutboxOptions<R>): Outbox<R> {
    acquireLock(options.dir);
    try {
      const outbox = new Outbox<R>(options);
      if (outbox.pending > 0) outbox.schedule(0);
      return outbox;
    } catch (error) {
      releaseLock(options.dir);
      throw error;
    }
  }

  /** Records enqueued and not yet delivered or set aside. */
  get pending(): number {
    return this.spool.pending;
  }

  /** Records held in memory (the rest of `pending` is only on disk). */
  get inMemory(): number {
    return this.memory.length;
  }

  get meta(): Readonly<Record<string, unknown>> {
    return this.metaValue;
  }

  saveMeta(patch: Record<string, unknown>): void {
    this.metaValue = { ...this.metaValue, ...patch };
    writeFileAtomic(join(this.dir, "meta.json"), JSON.stringify(this.metaValue, null, 2) + "\n");
  }

  /** Appends records to the spool and returns; delivery happens in the background. */
  enqueue(records: R | readonly R[]): void {
    if (this.closed) throw new Error(`The ${this.integration} outbox is closed.`);
    const list = Array.isArray(records) ? (records as readonly R[]) : [records as R];
    if (list.length === 0) return;
    // Written to the spool only: the delivery loop reads records back from it in batches.
    // Holding the caller's objects instead would keep them alive past the event, which makes
    // V8 allocate every later record of that call site in the old generation (pretenuring):
    // a million logged points then cost ~100 MB of garbage before the next full collection.
    this.spool.append(list);
    if (this.haltReason === undefined && this.timer === undefined && this.running === undefined)
      this.schedule(this.draining || this.pending >= SEND_NOW ? 0 : this.flushIntervalMs);
  }

  /**
   * Delivers until nothing is pending, delivery is halted, or the deadline passes; then says
   * what is left and where. Undelivered records stay in the spool and delivery goes on in the
   * background while the process lives.
   */
  async drain(options: { deadlineMs?: number } = {}): Promise<DrainReport> {
    const deadlineMs = options.deadlineMs ?? 30_000;
    const deliveredBefore = this.deliveredCount;
    const rejectedBefore = this.rejectedCount;
    if (this.pending > 0 && this.haltReason === undefined && !this.closed) {
      this.draining = true;
      if (this.timer !== undefined && !this.timerIsBackoff) this.cancelTimer();
      if (this.timer === undefined && this.running === undefined) this.schedule(0);
      const settled = await this.waitFor(
        () => this.pending === 0 || this.haltReason !== undefined,
        deadlineMs,
      );
      this.draining = false;
      if (!settled) await this.interrupt();
    }
    const report: DrainReport = {
      delivered: this.deliveredCount - deliveredBefore,
      pending: this.pending,
      rejected: this.rejectedCount - rejectedBefore,
    };
    if (report.pending > 0) {
      report.reason = this.haltReason ?? this.lastError ?? `the ${deadlineMs} ms deadline passed`;
      this.logger.warn(
        `${this.integration}: ${report.pending} record(s) not delivered (${report.reason}). They are kept in ${this.dir}; ${this.syncHint()}`,
      );
      if (!this.closed && this.haltReason === undefined && this.timer === undefined)
        this.schedule(this.backoff());
    }
    return report;
  }

  /** Stops delivering (aborting a request in flight) and releases the spool; records stay. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.interrupt();
    this.spool.close();
    releaseLock(this.dir);
    this.notify();
  }

  private syncHint(): string {
    const outputDir = outputDirOf(this.dir);
    return outputDir === undefined
      ? "a later run on this folder delivers them."
      : `run \`trainkit sync ${outputDir}\` to deliver them (a run resumed from a checkpoint delivers them first).`;
  }

  private schedule(delayMs: number, backoff = false): void {
    if (this.closed || this.haltReason !== undefined) return;
    this.cancelTimer();
    this.timerIsBackoff = backoff;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running ??= this.pump().finally(() => {
        this.running = undefined;
        this.notify();
      });
    }, delayMs);
    // Never keeps the process alive: what is not sent by exit stays in the spool.
    this.timer.unref();
  }

  private cancelTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Aborts a request in flight and waits (briefly) for the delivery loop to stop. */
  private async interrupt(): Promise<void> {
    this.cancelTimer();
    this.controller.abort();
    this.controller = new AbortController();
    const running = this.running;
    if (running !== undefined)
      await Promise.race([running, new Promise((resolve) => setTimeout(resolve, ABORT_GRACE_MS))]);
  }

  private async pump(): Promise<void> {
    while (!this.closed && this.haltReason === undefined) {
      this.refill();
      if (this.memory.length === 0) return;
      const view = this.memory.slice(0, BATCH_VIEW).map((entry) => entry.record);
      const wanted = Math.floor(this.transport.batchSize(view));
      const size = Math.max(1, Math.min(view.length, this.splitMax, wanted > 0 ? wanted : 1));
      const batch = view.slice(0, size);
      const signal = this.controller.signal;
      try {
        await this.transport.deliver(batch, this.context(signal));
      } catch (error) {
        if (signal.aborted || this.closed) return;
        if (!this.failed(error, size)) return;
        continue;
      }
      this.acknowledge(size);
      this.deliveredCount += size;
      if (this.attempt > 0 && this.outageReported)
        this.logger.info(`${this.integration}: delivering again; nothing was lost.`);
      this.attempt = 0;
      this.outageReported = false;
      this.lastError = undefined;
      this.notify();
    }
  }

  /** Handles a failed batch; true to go on at once, false when the loop should stop for now. */
  private failed(error: unknown, size: number): boolean {
    const kind = error instanceof DeliveryError ? error.kind : "retry";
    const message = redactText(error instanceof Error ? error.message : String(error));
    if (kind === "reject") {
      if (size > 1) {
        this.splitMax = Math.max(1, Math.floor(size / 2));
      } else {
        this.setAside(message);
      }
      return true;
    }
    if (kind === "halt") {
      this.haltReason = message;
      this.logger.warn(
        `${this.integration}: delivery stopped: ${message}. ${this.pending} record(s) are kept in ${this.dir}; fix the cause, then ${this.syncHint()}`,
      );
      return false;
    }
    this.attempt += 1;
    this.lastError = message;
    if (this.attempt >= this.retry.reportAfter && !this.outageReported) {
      this.outageReported = true;
      this.logger.warn(
        `${this.integration}: cannot reach the tracker (${message}) after ${this.attempt} attempts; still retrying in the background. Nothing is lost: ${this.pending} record(s) are kept in ${this.dir}.`,
      );
    }
    const retryAfter = error instanceof DeliveryError ? error.retryAfterMs : undefined;
    this.schedule(
      retryAfter === undefined ? this.backoff() : Math.min(RETRY_AFTER_CAP_MS, retryAfter),
      true,
    );
    return false;
  }

  private backoff(): number {
    return backoffDelay(Math.max(1, this.attempt), this.retry);
  }

  private setAside(message: string): void {
    const entry = this.memory[0]!;
    appendFileSync(
      join(this.dir, "rejects.jsonl"),
      JSON.stringify({ at: new Date().toISOString(), reason: message, record: entry.record }) +
        "\n",
    );
    this.rejectedCount += 1;
    if (this.rejectedCount <= REPORTED_REJECTS)
      this.logger.warn(
        `${this.integration}: the tracker rejected a record (${message}); it is set aside in ${join(this.dir, "rejects.jsonl")} and not retried.${this.rejectedCount === REPORTED_REJECTS ? " Further rejections are only counted." : ""}`,
      );
    this.acknowledge(1);
  }

  /** The first `count` records are done: move the spool cursor past them. */
  private acknowledge(count: number): void {
    const last = this.memory[count - 1]!;
    this.spool.advance(last.end, count);
    this.memory.splice(0, count);
    if (this.splitMax !== Infinity)
      this.splitMax = this.splitMax >= BATCH_VIEW ? Infinity : this.splitMax * 2;
  }

  /** Reads the next records back from the spool when memory runs low. */
  private refill(): void {
    if (this.memory.length >= this.maxMemory / 2) return;
    if (compare(this.readFrom, this.spool.end) >= 0) return;
    const more = this.spool.read(this.readFrom, this.maxMemory - this.memory.length);
    if (more.length === 0) return;
    this.memory.push(...more);
    this.readFrom = more.at(-1)!.end;
  }

  private context(signal: AbortSignal): DeliveryContext {
    return {
      meta: this.metaValue,
      saveMeta: (patch) => this.saveMeta(patch),
      signal,
      logger: this.logger,
    };
  }

  private waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
    if (condition()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = (): void => {
        if (!condition() && !this.closed) return;
        this.waiters.delete(check);
        clearTimeout(timeout);
        resolve(condition());
      };
      const timeout = setTimeout(() => {
        this.waiters.delete(check);
        resolve(condition());
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function readMeta(dir: string): Record<string, unknown> {
  const path = join(dir, "meta.json");
  if (!existsSync(path)) return {};
  try {
    const value: unknown = JSON.parse(readFileSync(path, "utf8"));
    return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** One open outbox per spool folder: in this process (a set) and across processes (a pid file). */
function acquireLock(dir: string): void {
  if (openDirs.has(dir))
    throw new Error(`The outbox ${dir} is already open in this process; close it first.`);
  const path = join(dir, "lock");
  if (existsSync(path)) {
    const pid = Number(readFileSync(path, "utf8").trim());
    if (Number.isInteger(pid) && pid !== process.pid && isAlive(pid))
      throw new Error(
        `The outbox ${dir} is in use by process ${pid} (a training run or \`trainkit sync\`). Wait for it to finish, or stop it, then try again.`,
      );
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(path, String(process.pid));
  openDirs.add(dir);
}

function releaseLock(dir: string): void {
  openDirs.delete(dir);
  const path = join(dir, "lock");
  try {
    if (readFileSync(path, "utf8").trim() === String(process.pid)) rmSync(path, { force: true });
  } catch {
    // already gone
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { writeFileAtomic } from "../../util/json-file.js";
import { logger as defaultLogger, type Logger } from "../../util/logger.js";
import { redactSecrets, redactText } from "../../util/redact.js";
import { RETRY_DEFAULTS, backoffDelay } from "./backoff.js";
import { acquireLock, releaseLock } from "./lock.js";
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
/** This many single records rejected in a row with one message is the server refusing all. */
const REJECTS_MEANING_HALT = 20;
/** A server's Retry-After is honoured up to this (a drain deadline still applies). */
const RETRY_AFTER_CAP_MS = 10 * 60_000;
/** After a drain deadline aborts a request, how long to wait for the transport to give up. */
const ABORT_GRACE_MS = 1000;

/** Outboxes open in this process, by folder: for `Outbox.held` and the report at exit. */
const openOutboxes = new Map<string, Outbox<OutboxRecord>>();
let exitReportInstalled = false;

/** At exit (process.exit() included): one line per open outbox that still holds records. */
function reportAtExit(): void {
  for (const outbox of openOutboxes.values()) outbox.reportUndeliveredAtExit();
}

/**
 * The outbox: integrations enqueue records and return at once; a background loop delivers them
 * through the integration's transport, in order, one batch in flight, with retries. Every
 * record is appended to an on-disk spool first and read back from it for delivery, so memory
 * stays bounded and nothing is lost if the tracker is down or the process dies; a later process
 * (`trainkit sync`, a resumed run) delivers what is left.
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

  /** The head of the queue, read back from the spool, in order. */
  private memory: SpooledRecord<R>[] = [];
  /** Next spool position not held in memory. */
  private readFrom: SpoolPosition;
  /** Records the spool could not take (disk full, folder gone), waiting to be written, in order. */
  private unwritten: R[] = [];
  private droppedCount = 0;

  private timer: NodeJS.Timeout | undefined;
  /** The timer waits for a server's Retry-After: a drain keeps it; other waits it cuts short. */
  private timerHonoursServer = false;
  private running: Promise<void> | undefined;
  private controller = new AbortController();
  private closed = false;
  private draining = false;
  private attempt = 0;
  private outageReported = false;
  private localErrorReported = false;
  /**
   * Set while looking for a rejected record: a rejected batch halves it, each batch that gets
   * through doubles it back, so one bad record costs a few requests, not one per record.
   */
  private splitMax = Infinity;
  private rejectStreak = { message: "", count: 0 };
  private rejectedCount = 0;
  private corruptCount = 0;
  private deliveredCount = 0;
  private lastError: string | undefined;
  private haltReason: string | undefined;
  private waiters = new Set<() => void>();

  private constructor(options: OutboxOptions<R>) {
    this.dir = resolve(options.dir);
    this.integration = options.integration;
    this.transport = options.transport;
    this.logger = options.logger ?? defaultLogger;
    this.maxMemory = options.maxMemoryRecords ?? 10_000;
    this.flushIntervalMs = options.flushIntervalMs ?? 1000;
    this.retry = {
      ...RETRY_DEFAULTS,
      ...definedOnly(options.transport.retry ?? {}),
      ...definedOnly(options.retry ?? {}),
    };
    this.spool = new Spool<R>(this.dir);
    this.readFrom = this.spool.start;
    this.metaValue = { ...readMeta(this.dir), integration: options.integration, ...options.meta };
    this.writeMeta();
  }

  /**
   * Opens (or creates) the spool folder and starts delivering what it already holds. Only one
   * outbox per folder may be open, across processes.
   */
  static open<R extends OutboxRecord = OutboxRecord>(options: OutboxOptions<R>): Outbox<R> {
    checkOptions(options);
    const dir = resolve(options.dir);
    acquireLock(dir);
    try {
      const outbox = new Outbox<R>(options);
      openOutboxes.set(dir, outbox as unknown as Outbox<OutboxRecord>);
      if (!exitReportInstalled) {
        exitReportInstalled = true;
        process.on("exit", reportAtExit);
      }
      if (outbox.pending > 0) outbox.schedule(0);
      return outbox;
    } catch (error) {
      releaseLock(dir);
      throw error;
    }
  }

  /** The outbox this process has open on `dir`, if any (to take a spool over from it). */
  static held(dir: string): Outbox<OutboxRecord> | undefined {
    return openOutboxes.get(resolve(dir));
  }

  /** Records enqueued and not yet delivered or set aside. */
  get pending(): number {
    return this.spool.pending + this.unwritten.length;
  }

  /** Records held in memory (the rest of `pending` is only on disk). */
  get inMemory(): number {
    return this.memory.length + this.unwritten.length;
  }

  get meta(): Readonly<Record<string, unknown>> {
    return this.metaValue;
  }

  saveMeta(patch: Record<string, unknown>): void {
    this.metaValue = { ...this.metaValue, ...patch };
    this.writeMeta();
  }

  /**
   * Appends records to the spool and returns; delivery happens in the background. Never throws
   * for the spool's sake: records the disk cannot take wait in memory (up to maxMemoryRecords,
   * then they are counted as dropped), and the problem is reported once.
   */
  enqueue(records: R | readonly R[]): void {
    if (this.closed) throw new Error(`The ${this.integration} outbox is closed.`);
    const list = Array.isArray(records) ? (records as readonly R[]) : [records as R];
    if (list.length === 0) return;
    // Records are written to the spool only and read back for delivery. Holding the caller's
    // objects instead would keep them alive past the event, which makes V8 allocate every
    // later record of that call site in the old generation (pretenuring): a million logged
    // points then cost ~100 MB of garbage before the next full collection.
    this.unwritten.push(...list);
    this.writeUnwritten();
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
      // Try now rather than sit out a backoff (the tracker may be back); a server's own
      // Retry-After is respected.
      if (this.timer !== undefined && !this.timerHonoursServer) this.cancelTimer();
      if (this.timer === undefined && this.running === undefined) this.schedule(0);
      const settled = await this.waitFor(
        () => this.pending === 0 || this.haltReason !== undefined,
        Math.max(0, deadlineMs - ABORT_GRACE_MS),
      );
      this.draining = false;
      if (!settled) await this.interrupt();
    }
    const report: DrainReport = {
      delivered: this.deliveredCount - deliveredBefore,
      pending: this.pending,
      rejected: this.rejectedCount - rejectedBefore,
    };
    if (this.droppedCount > 0) report.dropped = this.droppedCount;
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
    if (openOutboxes.get(this.dir) === (this as unknown as Outbox<OutboxRecord>))
      openOutboxes.delete(this.dir);
    if (this.unwritten.length > 0)
      this.logger.warn(
        `${this.integration}: ${this.unwritten.length} record(s) could not be written to ${this.dir} and are lost.`,
      );
    this.notify();
  }

  /** Says, synchronously (the process is exiting), what this outbox could not deliver. */
  reportUndeliveredAtExit(): void {
    if (this.closed || this.pending === 0) return;
    this.logger.warn(
      `${this.integration}: ${this.pending} record(s) not delivered before the process exited; they are kept in ${this.dir}. ${capitalize(this.syncHint())} To deliver before exiting, call \`await trainer.close()\` after evaluate() or predict().`,
    );
  }

  private writeMeta(): void {
    // Transports keep secrets out of meta; masking secret-named fields is the second line.
    const text = JSON.stringify(redactSecrets(this.metaValue), null, 2) + "\n";
    try {
      writeFileAtomic(join(this.dir, "meta.json"), text);
    } catch (error) {
      this.reportLocalError("cannot write meta.json", error);
    }
  }

  /** Moves records waiting in memory to the spool, in order; keeps them when the disk refuses. */
  private writeUnwritten(): void {
    if (this.unwritten.length === 0) return;
    try {
      this.spool.append(this.unwritten);
      this.unwritten = [];
      this.localErrorReported = false;
    } catch (error) {
      this.reportLocalError(`cannot write to the spool in ${this.dir}`, error);
      const excess = this.unwritten.length - this.maxMemory;
      if (excess > 0) {
        this.unwritten.splice(0, excess);
        this.droppedCount += excess;
      }
    }
  }

  private reportLocalError(what: string, error: unknown): void {
    if (this.localErrorReported) return;
    this.localErrorReported = true;
    this.logger.warn(
      `${this.integration}: ${what} (${redactText(error instanceof Error ? error.message : String(error))}). Up to ${this.maxMemory} records wait in memory and are written once the disk takes them again; training goes on.`,
    );
  }

  private syncHint(): string {
    const outputDir = outputDirOf(this.dir);
    return outputDir === undefined
      ? "a later run on this folder delivers them."
      : `run \`trainkit sync ${outputDir}\` to deliver them (a run resumed from a checkpoint delivers them first).`;
  }

  private schedule(delayMs: number, honoursServer = false): void {
    if (this.closed || this.haltReason !== undefined) return;
    this.cancelTimer();
    this.timerHonoursServer = honoursServer;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running ??= this.pump()
        .catch((error: unknown) => this.loopFailed(error))
        .finally(() => {
          this.running = undefined;
          // Records enqueued while the loop was finishing would otherwise wait for nothing.
          if (this.pending > 0 && this.timer === undefined && !this.closed)
            this.schedule(this.draining ? 0 : this.flushIntervalMs);
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
      this.writeUnwritten();
      this.refill();
      this.setAsideCorruptHead();
      const firstCorrupt = this.memory.findIndex((entry) => entry.corrupt !== undefined);
      const usable = firstCorrupt === -1 ? this.memory.length : firstCorrupt;
      if (usable === 0) return;
      const view = this.memory.slice(0, Math.min(usable, BATCH_VIEW)).map((e) => e.record!);
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
      // Closed while the request was out: the spool belongs to whoever opens it next.
      if (this.closed) return;
      this.acknowledge(size);
      this.deliveredCount += size;
      this.rejectStreak.count = 0;
      if (this.attempt > 0 && this.outageReported)
        this.logger.info(`${this.integration}: delivering again; nothing was lost.`);
      this.attempt = 0;
      this.outageReported = false;
      this.lastError = undefined;
      this.notify();
    }
  }

  /** An error outside deliver (the disk, a transport's batchSize): retried later, never thrown. */
  private loopFailed(error: unknown): void {
    this.attempt += 1;
    this.lastError = redactText(error instanceof Error ? error.message : String(error));
    this.reportLocalError("the delivery loop failed", error);
    this.schedule(this.backoff());
  }

  /** Handles a failed batch; true to go on at once, false when the loop should stop for now. */
  private failed(error: unknown, size: number): boolean {
    const kind = error instanceof DeliveryError ? error.kind : "retry";
    const message = redactText(error instanceof Error ? error.message : String(error));
    if (kind === "reject") {
      if (size > 1) {
        this.splitMax = Math.max(1, Math.floor(size / 2));
        return true;
      }
      const streak = this.rejectStreak;
      streak.count = streak.message === message ? streak.count + 1 : 1;
      streak.message = message;
      if (streak.count < REJECTS_MEANING_HALT) {
        this.setAside(message);
        return true;
      }
      // The same refusal for record after record: the server refuses everything, not a record.
      return this.halt(`the tracker rejected ${streak.count} records in a row: ${message}`);
    }
    if (kind === "halt") return this.halt(message);
    this.attempt += 1;
    this.lastError = message;
    if (this.attempt >= this.retry.reportAfter && !this.outageReported) {
      this.outageReported = true;
      this.logger.warn(
        `${this.integration}: cannot reach the tracker (${message}) after ${this.attempt} attempts; still retrying in the background. Nothing is lost: ${this.pending} record(s) are kept in ${this.dir}.`,
      );
    }
    const retryAfter = error instanceof DeliveryError ? error.retryAfterMs : undefined;
    if (retryAfter === undefined) this.schedule(this.backoff());
    // Never sooner than our own backoff: a Retry-After of 0 must not become a busy loop.
    else this.schedule(Math.min(RETRY_AFTER_CAP_MS, Math.max(retryAfter, this.backoff())), true);
    return false;
  }

  private halt(message: string): false {
    this.haltReason = message;
    this.logger.warn(
      `${this.integration}: delivery stopped: ${message}. ${this.pending} record(s) are kept in ${this.dir}; fix the cause, then ${this.syncHint()}`,
    );
    return false;
  }

  private backoff(): number {
    return backoffDelay(Math.max(1, this.attempt), this.retry);
  }

  private setAside(message: string): void {
    const entry = this.memory[0]!;
    this.appendAside("rejects.jsonl", { reason: message, record: entry.record });
    this.rejectedCount += 1;
    if (this.rejectedCount <= REPORTED_REJECTS)
      this.logger.warn(
        `${this.integration}: the tracker rejected a record (${message}); it is set aside in ${join(this.dir, "rejects.jsonl")} and not retried.${this.rejectedCount === REPORTED_REJECTS ? " Further rejections are only counted." : ""}`,
      );
    this.acknowledge(1);
  }

  /** Lines of the spool that are not JSON go to corrupt.jsonl, so they block nothing. */
  private setAsideCorruptHead(): void {
    while (this.memory[0]?.corrupt !== undefined) {
      this.appendAside("corrupt.jsonl", { line: this.memory[0].corrupt });
      this.corruptCount += 1;
      if (this.corruptCount === 1)
        this.logger.warn(
          `${this.integration}: a damaged line in the spool ${this.dir} was set aside in corrupt.jsonl.`,
        );
      this.acknowledge(1);
    }
  }

  private appendAside(file: string, entry: Record<string, unknown>): void {
    const line = JSON.stringify({ at: new Date().toISOString(), ...entry }) + "\n";
    try {
      appendFileSync(join(this.dir, file), line);
    } catch (error) {
      this.reportLocalError(`cannot write ${file}`, error);
    }
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
    if (compare(this.readFrom, this.spool.start) < 0) this.readFrom = this.spool.start;
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

function checkOptions(options: OutboxOptions<OutboxRecord>): void {
  const problems: string[] = [];
  const check = (
    name: string,
    value: number | undefined,
    ok: (v: number) => boolean,
    rule: string,
  ) => {
    if (value !== undefined && !(typeof value === "number" && ok(value)))
      problems.push(`${name} must be ${rule} (got ${String(value)})`);
  };
  check(
    "maxMemoryRecords",
    options.maxMemoryRecords,
    (v) => Number.isInteger(v) && v >= 1,
    "an integer ≥ 1",
  );
  check(
    "flushIntervalMs",
    options.flushIntervalMs,
    (v) => Number.isFinite(v) && v >= 0,
    "a number ≥ 0",
  );
  const retry = { ...options.transport?.retry, ...options.retry };
  check("retry.baseMs", retry.baseMs, (v) => Number.isFinite(v) && v > 0, "a number > 0");
  check("retry.maxMs", retry.maxMs, (v) => Number.isFinite(v) && v > 0, "a number > 0");
  check("retry.jitter", retry.jitter, (v) => Number.isFinite(v) && v >= 0, "a number ≥ 0");
  check(
    "retry.reportAfter",
    retry.reportAfter,
    (v) => Number.isInteger(v) && v >= 1,
    "an integer ≥ 1",
  );
  if (typeof options.integration !== "string" || options.integration === "")
    problems.push("integration must be the plugin's name");
  if (problems.length > 0) throw new TypeError(`Outbox.open: ${problems.join("; ")}.`);
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
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

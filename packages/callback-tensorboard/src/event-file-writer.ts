/**
 * TensorBoard event files in pure TypeScript: TFRecord framing around serialized
 * `tensorboard.Event` protobufs, encoded by hand into preallocated buffers.
 *
 * Every add*() encodes one record into memory and returns; nothing touches the disk on that
 * path. Buffered records reach the file on an unref'd timer (every `flushIntervalMs`, as one
 * asynchronous positional writev), on `flush()` / `close()` (synchronous), and synchronously on
 * process "exit". Records are only ever written whole and in order, at fixed file offsets, so a
 * process killed at any moment leaves a file that is readable up to the last completed write.
 */
import { closeSync, mkdirSync, openSync, readdirSync, writev, writevSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { crc32c, maskCrc, maskedCrc32c } from "./crc32c.js";
import { encode, utf8Bytes, varintSize, writeVarint } from "./protobuf.js";
import {
  experimentValue,
  histogramValue,
  makeHistogram,
  sessionEndValue,
  sessionStartValue,
  textValue,
  type HParamValue,
  type SessionStatus,
} from "./summaries.js";

export interface EventFileWriterOptions {
  /** Appended to the file name (torch's `filename_suffix`). */
  filenameSuffix?: string;
  /** How often buffered records are written in the background, in ms (0: only on flush/close/exit). Default 2000. */
  flushIntervalMs?: number;
  /** Buffered bytes that start a background write before the timer does. Default 1 MiB. */
  flushThresholdBytes?: number;
  /** Buffered bytes at which an add*() writes synchronously, so memory stays bounded. Default 32 MiB. */
  maxBufferedBytes?: number;
  /** Where warnings go (a record dropped for a lower step, a failed background write). */
  onWarning?: (message: string) => void;
  /**
   * The last step already written per tag (e.g. by earlier files in the same directory):
   * records with a lower step for these tags are dropped, as for this writer's own.
   */
  lastSteps?: ReadonlyMap<string, number>;
}

export interface HParamsOptions {
  /** SessionStartInfo.group_name: sessions of one group are one row in the HParams table. */
  groupName?: string;
  /** Unix seconds the session started (default: now). */
  startTime?: number;
  /**
   * Also write an Experiment summary that declares the hparams' types and these metric tags.
   * TensorBoard uses the first Experiment it finds for the whole logdir, so write it from one
   * run only; without it the dashboard infers the columns from every run's session (default).
   */
  experimentMetrics?: readonly string[];
}

/** Seconds since the epoch, as TensorBoard's wall_time. */
const now = (): number => Date.now() / 1000;

const FILE_VERSION = "brain.Event:2";
const DEFAULT_FLUSH_MS = 2000;
const FIRST_CHUNK = 64 * 1024;
const MAX_CHUNK = 4 * 1024 * 1024;

/** Masked CRCs of the 8-byte length header, for payload lengths below 4096 (most records). */
const HEADER_CRC_CACHE = new Float64Array(4096).fill(-1);
const headerScratch = new Uint8Array(8);

function headerCrc(length: number): number {
  if (length < 4096) {
    const cached = HEADER_CRC_CACHE[length]!;
    if (cached >= 0) return cached;
  }
  new DataView(headerScratch.buffer).setUint32(0, length >>> 0, true);
  new DataView(headerScratch.buffer).setUint32(4, Math.floor(length / 2 ** 32), true);
  const crc = maskedCrc32c(headerScratch);
  if (length < 4096) HEADER_CRC_CACHE[length] = crc;
  return crc;
}

interface TagState {
  /** The highest step written for this tag. */
  lastStep: number;
  /** Whether a lower step was already reported. */
  warned: boolean;
  /**
   * The scalar Event's bytes from `summary` up to the float:
   * 2a len 0a len 0a len <tag> 15 (Event.summary, Summary.value, Value.tag, Value.simple_value).
   */
  scalarTemplate?: Uint8Array;
}

function scalarTemplate(tag: string): Uint8Array {
  const tagBytes = utf8Bytes(tag);
  const valueLen = 1 + varintSize(tagBytes.length) + tagBytes.length + 5;
  const summaryLen = 1 + varintSize(valueLen) + valueLen;
  const out = new Uint8Array(1 + varintSize(summaryLen) + summaryLen - 4);
  let p = 0;
  out[p++] = 0x2a; // Event.summary (5, LEN)
  p = writeVarint(out, p, summaryLen);
  out[p++] = 0x0a; // Summary.value (1, LEN)
  p = writeVarint(out, p, valueLen);
  out[p++] = 0x0a; // Value.tag (1, LEN)
  p = writeVarint(out, p, tagBytes.length);
  out.set(tagBytes, p);
  p += tagBytes.length;
  out[p] = 0x15; // Value.simple_value (2, I32)
  return out;
}

/** Writers not yet closed: flushed synchronously when the process exits. */
const live = new Set<EventFileWriter>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const writer of live) {
      try {
        writer.flush();
      } catch {
        // Nothing left to report to at exit; the file stays readable up to the last write.
      }
    }
  });
}

/**
 * The `<secs>` of a new file's name: now, or one more than the newest file already in `dir`
 * if that one is not older. TensorBoard reads a run's files in name order; a second file
 * opened within the same second (its counter "10" sorting before "9") would otherwise be read
 * first, and its steps would come out of order.
 */
function fileSeconds(dir: string): number {
  let seconds = Math.floor(Date.now() / 1000);
  for (const name of readdirSync(dir)) {
    const match = /tfevents\.(\d+)\./.exec(name);
    if (match && Number(match[1]) >= seconds) seconds = Number(match[1]) + 1;
  }
  return seconds;
}

/** Per-process file counter (torch's `<n>` in the file name). */
let fileCounter = 0;

/** Writes one TensorBoard event file in `logDir` (created if missing). */
export class EventFileWriter {
  readonly logDir: string;
  /** The event file's path. */
  readonly path: string;

  private fd: number;
  private closed = false;
  private readonly tags = new Map<string, TagState>();
  private readonly onWarning: (message: string) => void;
  private readonly flushThreshold: number;
  private readonly maxBuffered: number;
  private timer: NodeJS.Timeout | undefined;

  // The record buffer: the current chunk, of which [chunkStart, pos) is not yet queued.
  private chunk: Uint8Array;
  private view: DataView;
  private pos = 0;
  private chunkStart = 0;
  private nextChunkSize = FIRST_CHUNK;
  /** Byte runs not yet known to be on disk, contiguous from file offset `written`. */
  private queue: Uint8Array[] = [];
  private queuedBytes = 0;
  private written = 0;
  /** The background write in progress, if any; a synchronous flush makes it stale. */
  private inflight: { generation: number } | undefined;
  private generation = 0;
  private outstanding = 0;
  private backgroundError: Error | undefined;

  constructor(logDir: string, options: EventFileWriterOptions = {}) {
    const {
      filenameSuffix = "",
      flushIntervalMs = DEFAULT_FLUSH_MS,
      flushThresholdBytes = 1024 * 1024,
      maxBufferedBytes = 32 * 1024 * 1024,
      onWarning = (message: string) => console.warn(`[trainkit] ${message}`),
      lastSteps,
    } = options;
    this.logDir = logDir;
    this.onWarning = onWarning;
    this.flushThreshold = flushThresholdBytes;
    this.maxBuffered = Math.max(maxBufferedBytes, flushThresholdBytes);
    if (lastSteps)
      for (const [tag, step] of lastSteps) this.tags.set(tag, { lastStep: step, warned: false });
    mkdirSync(logDir, { recursive: true });
    const seconds = String(fileSeconds(logDir)).padStart(10, "0");
    const host = hostname();
    let fd: number | undefined;
    let path = "";
    while (fd === undefined) {
      path = join(
        logDir,
        `events.out.tfevents.${seconds}.${host}.${process.pid}.${fileCounter++}${filenameSuffix}`,
      );
      try {
        fd = openSync(path, "wx");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
    }
    this.fd = fd;
    this.path = path;
    this.chunk = new Uint8Array(FIRST_CHUNK);
    this.view = new DataView(this.chunk.buffer);
    // The first record, on disk at once: Event{ wall_time, file_version }.
    this.appendEvent(encode((w) => w.double(1, now()).string(3, FILE_VERSION)));
    this.flush();
    live.add(this);
    installExitHook();
    if (flushIntervalMs > 0) {
      this.timer = setInterval(() => this.flushInBackground(), flushIntervalMs);
      this.timer.unref();
    }
  }

  /** Whether close() was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** The highest step written for every tag: what a later writer in the same folder continues from. */
  lastSteps(): Map<string, number> {
    return new Map([...this.tags].map(([tag, { lastStep }]) => [tag, lastStep]));
  }

  /** The highest step written for `tag` (as stored: text tags end in "/text_summary"). */
  lastStep(tag: string): number | undefined {
    return this.tags.get(tag)?.lastStep;
  }

  /**
   * A scalar as torch's SummaryWriter.add_scalar writes it (Value.simple_value, a float32).
   * Returns false if the record was dropped because `step` is lower than the tag's last step.
   */
  addScalar(tag: string, value: number | boolean, step: number, wallTime?: number): boolean {
    if (this.closed) throw this.closedError();
    let state = this.tags.get(tag);
    if (state === undefined) {
      state = { lastStep: -Infinity, warned: false };
      this.tags.set(tag, state);
    }
    if (step < state.lastStep) return this.outOfOrder(tag, state, step);
    if (
      typeof step !== "number" ||
      !(step >= 0 && step <= Number.MAX_SAFE_INTEGER && step % 1 === 0)
    )
      return this.writeValue(tag, scalarValueBytes(tag, value), step, wallTime, state);
    if (typeof value !== "number" && typeof value !== "boolean")
      throw new TypeError(`addScalar "${tag}": the value must be a number or a boolean.`);
    const number = value === true ? 1 : value === false ? 0 : value;
    state.lastStep = step;
    const template = (state.scalarTemplate ??= scalarTemplate(tag));
    // Event{ wall_time = 1 (double), step = 2 (varint, left out when 0), summary = 5 }.
    const stepSize = step === 0 ? 0 : 1 + varintSize(step);
    const length = 9 + stepSize + template.length + 4;
    this.reserve(length + 16);
    const buf = this.chunk;
    const view = this.view;
    let p = this.pos;
    view.setUint32(p, length, true);
    view.setUint32(p + 4, 0, true);
    view.setUint32(p + 8, headerCrc(length), true);
    p += 12;
    const start = p;
    buf[p] = 0x09;
    view.setFloat64(p + 1, wallTime ?? Date.now() / 1000, true);
    p += 9;
    if (step !== 0) {
      buf[p++] = 0x10;
      let s = step;
      while (s >= 0x80000000) {
        buf[p++] = (s % 128) | 0x80;
        s = Math.floor(s / 128);
      }
      while (s >= 128) {
        buf[p++] = (s & 0x7f) | 0x80;
        s >>>= 7;
      }
      buf[p++] = s;
    }
    buf.set(template, p);
    p += template.length;
    view.setFloat32(p, number, true);
    p += 4;
    view.setUint32(p, maskCrc(crc32c(buf, start, p)), true);
    this.pos = p + 4;
    this.afterAppend();
    return true;
  }

  /**
   * Text as torch's add_text writes it: tag `<tag>/text_summary`, the "text" plugin. Returns
   * false if dropped for a lower step.
   */
  addText(tag: string, text: string, step: number, wallTime?: number): boolean {
    if (this.closed) throw this.closedError();
    const stored = `${tag}/text_summary`;
    return this.writeValue(stored, textValue(tag, String(text)), step, wallTime);
  }

  /**
   * A histogram of `values` with torch's default ("tensorflow") buckets, as HistogramProto.
   * Non-finite values are left out. Returns false if dropped for a lower step.
   */
  addHistogram(tag: string, values: ArrayLike<number>, step: number, wallTime?: number): boolean {
    if (this.closed) throw this.closedError();
    return this.writeValue(tag, histogramValue(tag, makeHistogram(values)), step, wallTime);
  }

  /**
   * Starts an HParams session for this run (the hparams plugin's session_start_info), so the
   * run is a row of the HParams dashboard with these values; the run's scalars are its metrics.
   */
  addHparams(hparams: Record<string, HParamValue>, options: HParamsOptions = {}): void {
    if (this.closed) throw this.closedError();
    const clean: Record<string, HParamValue> = {};
    for (const [key, value] of Object.entries(hparams)) {
      if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean")
        throw new TypeError(`addHparams: "${key}" must be a string, number or boolean.`);
      clean[key] = value;
    }
    const startTime = options.startTime ?? now();
    if (options.experimentMetrics)
      this.appendSummary(experimentValue(clean, options.experimentMetrics, startTime), 0);
    this.appendSummary(
      sessionStartValue({ hparams: clean, groupName: options.groupName, startTime }),
      0,
    );
  }

  /** Ends the HParams session (session_end_info) with a status. */
  endHparams(status: SessionStatus = "success", endTime: number = now()): void {
    if (this.closed) throw this.closedError();
    this.appendSummary(sessionEndValue(status, endTime), 0);
  }

  /** Writes every buffered record now (synchronously). */
  flush(): void {
    if (this.fd < 0) return;
    this.handOff();
    if (this.queuedBytes === 0) return;
    // Positional writes of immutable bytes: a background write still running writes the same
    // bytes at the same offsets, so it can finish in any order.
    let buffers = this.queue;
    let position = this.written;
    let left = this.queuedBytes;
    while (left > 0) {
      const n = writevSync(this.fd, buffers, position);
      position += n;
      left -= n;
      if (left > 0) buffers = dropBytes(buffers, n);
    }
    this.written = position;
    this.queue = [];
    this.queuedBytes = 0;
    if (this.inflight) {
      this.inflight = undefined;
      this.generation++;
    }
    this.backgroundError = undefined;
  }

  /** Writes what is buffered and closes the file. Adding afterwards is an error. */
  close(): void {
    if (this.closed) return;
    try {
      this.flush();
    } finally {
      this.closed = true;
      live.delete(this);
      if (this.timer) clearInterval(this.timer);
      this.timer = undefined;
      // A background write may still use the descriptor: it is closed when that one ends.
      if (this.outstanding === 0) this.closeFd();
    }
  }

  // ---------------------------------------------------------------------------------------

  private closedError(): Error {
    return new Error(`EventFileWriter for ${this.path} is closed.`);
  }

  private closeFd(): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    closeSync(fd);
  }

  private outOfOrder(tag: string, state: TagState, step: number): false {
    if (!state.warned) {
      state.warned = true;
      this.onWarning(
        `TensorBoard: dropped "${tag}" at step ${step}, lower than its last step ${state.lastStep} (TensorBoard would discard or misorder it). Further drops for this tag are not reported.`,
      );
    }
    return false;
  }

  /** A Summary.Value at `step` for `tag`, if the step is not lower than the tag's last one. */
  private writeValue(
    tag: string,
    value: Uint8Array,
    step: number,
    wallTime: number | undefined,
    state = this.tags.get(tag),
  ): boolean {
    if (!Number.isSafeInteger(step))
      throw new TypeError(`The step of "${tag}" must be an integer (got ${step}).`);
    if (state === undefined) {
      state = { lastStep: -Infinity, warned: false };
      this.tags.set(tag, state);
    }
    if (step < state.lastStep) return this.outOfOrder(tag, state, step);
    state.lastStep = step;
    this.appendSummary(value, step, wallTime);
    return true;
  }

  /** Event{ wall_time, step, summary{ value } }. */
  private appendSummary(value: Uint8Array, step: number, wallTime: number = now()): void {
    const summary = encode((w) => w.message(1, value));
    this.appendEvent(
      encode((w) => {
        w.double(1, wallTime);
        if (step !== 0) w.int64(2, step);
        w.message(5, summary);
      }),
    );
  }

  /** One TFRecord: length, masked CRC of the length, payload, masked CRC of the payload. */
  private appendEvent(payload: Uint8Array): void {
    const length = payload.length;
    this.reserve(length + 16);
    const p = this.pos;
    this.view.setUint32(p, length, true);
    this.view.setUint32(p + 4, 0, true);
    this.view.setUint32(p + 8, headerCrc(length), true);
    this.chunk.set(payload, p + 12);
    this.view.setUint32(p + 12 + length, maskedCrc32c(payload), true);
    this.pos = p + 16 + length;
    this.afterAppend();
  }

  /** Room for `n` contiguous bytes in the current chunk (a new chunk if needed). */
  private reserve(n: number): void {
    if (this.pos + n <= this.chunk.length) return;
    this.handOff();
    const size = Math.max(this.nextChunkSize, n);
    this.nextChunkSize = Math.min(this.nextChunkSize * 2, MAX_CHUNK);
    this.chunk = new Uint8Array(size);
    this.view = new DataView(this.chunk.buffer);
    this.pos = 0;
    this.chunkStart = 0;
  }

  private afterAppend(): void {
    const buffered = this.queuedBytes + this.pos - this.chunkStart;
    if (buffered < this.flushThreshold) return;
    if (buffered >= this.maxBuffered) this.flush();
    else this.flushInBackground();
  }

  /** Queues the current chunk's unqueued bytes (they are never written to again). */
  private handOff(): void {
    if (this.pos === this.chunkStart) return;
    this.queue.push(this.chunk.subarray(this.chunkStart, this.pos));
    this.queuedBytes += this.pos - this.chunkStart;
    this.chunkStart = this.pos;
  }

  /** One asynchronous positional writev of everything buffered, unless one is running. */
  private flushInBackground(): void {
    if (this.closed || this.inflight || this.fd < 0) return;
    this.handOff();
    if (this.queuedBytes === 0) return;
    const generation = this.generation;
    const inflight = { generation };
    this.inflight = inflight;
    this.outstanding++;
    const buffers = this.queue.slice();
    writev(this.fd, buffers, this.written, (error, bytesWritten) => {
      this.outstanding--;
      if (this.inflight === inflight && this.generation === generation) {
        this.inflight = undefined;
        if (error) this.reportBackgroundError(error);
        else this.confirm(bytesWritten);
      }
      if (this.closed && this.outstanding === 0) this.closeFd();
    });
  }

  /** The first `n` queued bytes are on disk. */
  private confirm(n: number): void {
    this.written += n;
    this.queuedBytes -= n;
    this.queue = n === 0 ? this.queue : dropBytes(this.queue, n);
  }

  private reportBackgroundError(error: Error): void {
    if (this.backgroundError) return;
    this.backgroundError = error;
    this.onWarning(
      `TensorBoard: writing ${this.path} failed (${error.message}); the records stay buffered and are retried.`,
    );
  }
}

/** `buffers` without their first `n` bytes. */
function dropBytes(buffers: Uint8Array[], n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const buffer of buffers) {
    if (n >= buffer.length) {
      n -= buffer.length;
      continue;
    }
    out.push(n > 0 ? buffer.subarray(n) : buffer);
    n = 0;
  }
  return out;
}

/** A scalar Value for the slow path (negative steps). */
function scalarValueBytes(tag: string, value: number | boolean): Uint8Array {
  if (typeof value !== "number" && typeof value !== "boolean")
    throw new TypeError(`addScalar "${tag}": the value must be a number or a boolean.`);
  return encode((w) => w.string(1, tag).float(2, Number(value)));
}

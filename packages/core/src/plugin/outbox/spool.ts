import {
  closeSync,
  existsSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../../util/json-file.js";
import type { OutboxRecord } from "./types.js";

/** A place in the spool: segment number and byte offset inside it. */
export interface SpoolPosition {
  segment: number;
  offset: number;
}

/**
 * A record read back from the spool, with the position just after it. A line that is not JSON
 * (damage from outside: a disk error, a hand edit) comes back as `corrupt` with its text, so it
 * can be set aside instead of blocking everything behind it.
 */
export type SpooledRecord<R> =
  | { record: R; corrupt?: undefined; end: SpoolPosition }
  | { record?: undefined; corrupt: string; end: SpoolPosition };

const SEGMENT_BYTES = 16 * 1024 * 1024;
const READ_CHUNK = 1024 * 1024;
const SEGMENT = /^segment-(\d{6})\.jsonl$/;

export const segmentName = (segment: number): string =>
  `segment-${String(segment).padStart(6, "0")}.jsonl`;

/**
 * An append-only log of records on disk: JSON lines in numbered segment files, and a cursor
 * (`cursor.json`) at the first record not yet delivered. Appends are written synchronously, so
 * a record enqueued before a crash of the process is still there after it; segments wholly
 * behind the cursor are deleted.
 */
export class Spool<R extends OutboxRecord = OutboxRecord> {
  readonly dir: string;
  /** First record not yet delivered or set aside. */
  private cursor: SpoolPosition;
  /** Where the next append goes. */
  private tail: SpoolPosition;
  private fd: number | undefined;
  /** Records between cursor and tail. */
  private count = 0;

  /** readOnly: only look (another process may be appending): no repair, no folder creation. */
  private readonly segmentBytes: number;

  constructor(dir: string, options: { readOnly?: boolean; segmentBytes?: number } = {}) {
    this.dir = dir;
    this.segmentBytes = options.segmentBytes ?? SEGMENT_BYTES;
    if (!options.readOnly) mkdirSync(dir, { recursive: true });
    const segments = listSegments(dir);
    this.cursor = readCursor(dir) ?? { segment: segments[0] ?? 1, offset: 0 };
    const last = segments.at(-1) ?? this.cursor.segment;
    this.tail = {
      segment: last,
      offset: completeLinesEnd(join(dir, segmentName(last)), !options.readOnly),
    };
    if (compare(this.cursor, this.tail) > 0) this.cursor = { ...this.tail };
    this.count = countLines(dir, this.cursor, this.tail);
  }

  get pending(): number {
    return this.count;
  }

  get start(): SpoolPosition {
    return { ...this.cursor };
  }

  get end(): SpoolPosition {
    return { ...this.tail };
  }

  /**
   * Appends records. The bytes are written whole or not at all: a short write (a full disk)
   * is cut back off, so the segment never holds half a line followed by the next append.
   */
  append(records: readonly R[]): void {
    if (records.length === 0) return;
    if (this.tail.offset >= this.segmentBytes) this.rotate();
    let text = "";
    for (const record of records) text += JSON.stringify(record) + "\n";
    const data = Buffer.from(text);
    const fd = this.openTail();
    let written = 0;
    try {
      while (written < data.length)
        written += writeSync(fd, data, written, data.length - written, this.tail.offset + written);
    } catch (error) {
      ftruncateSync(fd, this.tail.offset);
      throw error;
    }
    this.tail = { segment: this.tail.segment, offset: this.tail.offset + data.length };
    this.count += records.length;
  }

  /**
   * Reads up to `limit` records from `from` (a position at or after the cursor); stops at the
   * tail. Returns the records and the position to read from next.
   */
  read(from: SpoolPosition, limit: number): SpooledRecord<R>[] {
    const out: SpooledRecord<R>[] = [];
    let position = { ...from };
    while (out.length < limit && compare(position, this.tail) < 0) {
      const path = join(this.dir, segmentName(position.segment));
      const segmentEnd = position.segment === this.tail.segment ? this.tail.offset : fileSize(path);
      if (position.offset >= segmentEnd) {
        position = { segment: position.segment + 1, offset: 0 };
        continue;
      }
      const length = Math.min(READ_CHUNK, segmentEnd - position.offset);
      const buffer = readAt(path, position.offset, length);
      let lineStart = 0;
      for (let i = 0; i < buffer.length && out.length < limit; i++) {
        if (buffer[i] !== 0x0a) continue;
        const line = buffer.subarray(lineStart, i).toString("utf8");
        lineStart = i + 1;
        out.push(
          parseLine<R>(line, { segment: position.segment, offset: position.offset + lineStart }),
        );
      }
      if (lineStart === 0) {
        // One line longer than the chunk: read it whole.
        const whole = readAt(path, position.offset, segmentEnd - position.offset);
        const newline = whole.indexOf(0x0a);
        const end = newline < 0 ? whole.length : newline + 1;
        const line = whole.subarray(0, newline < 0 ? whole.length : newline).toString("utf8");
        out.push(parseLine<R>(line, { segment: position.segment, offset: position.offset + end }));
        position = { segment: position.segment, offset: position.offset + end };
        continue;
      }
      position = { segment: position.segment, offset: position.offset + lineStart };
    }
    return out;
  }

  /**
   * Marks everything before `position` as done (delivered or set aside): `count` records. The
   * cursor never moves back. Delivered segments are deleted, the current one too once
   * everything in it is done (appends then start a new one).
   */
  advance(position: SpoolPosition, count: number): void {
    if (compare(position, this.cursor) <= 0) return;
    this.cursor = { ...position };
    this.count = Math.max(0, this.count - count);
    if (compare(this.cursor, this.tail) >= 0 && this.tail.offset > 0) {
      this.rotate();
      this.cursor = { ...this.tail };
    }
    writeFileAtomic(join(this.dir, "cursor.json"), JSON.stringify(this.cursor));
    for (const segment of listSegments(this.dir)) {
      if (segment >= this.cursor.segment) break;
      rmSync(join(this.dir, segmentName(segment)), { force: true });
    }
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private openTail(): number {
    this.fd ??= openSync(join(this.dir, segmentName(this.tail.segment)), "a");
    return this.fd;
  }

  private rotate(): void {
    this.close();
    this.tail = { segment: this.tail.segment + 1, offset: 0 };
  }
}

function parseLine<R>(line: string, end: SpoolPosition): SpooledRecord<R> {
  try {
    return { record: JSON.parse(line) as R, end };
  } catch {
    return { corrupt: line, end };
  }
}

export function compare(a: SpoolPosition, b: SpoolPosition): number {
  return a.segment === b.segment ? a.offset - b.offset : a.segment - b.segment;
}

function listSegments(dir: string): number[] {
  return readdirSync(dir)
    .map((name) => SEGMENT.exec(name)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

function readCursor(dir: string): SpoolPosition | undefined {
  const path = join(dir, "cursor.json");
  if (!existsSync(path)) return undefined;
  try {
    const value = JSON.parse(readFileSync(path, "utf8")) as Partial<SpoolPosition>;
    if (Number.isInteger(value.segment) && Number.isInteger(value.offset))
      return { segment: value.segment!, offset: value.offset! };
  } catch {
    // A cursor is replaced atomically, so this is someone else's damage: start from the top;
    // the transports tolerate a resend (fixed timestamps, idempotent writes).
  }
  return undefined;
}

/**
 * The end of the last complete line. A crash mid-append can leave a partial last line; with
 * `repair` it is cut so the next append starts clean.
 */
function completeLinesEnd(path: string, repair: boolean): number {
  if (!existsSync(path)) return 0;
  const fd = openSync(path, repair ? "r+" : "r");
  try {
    const size = fstatSync(fd).size;
    // Look backwards, chunk by chunk, for the last newline (a torn line can be long).
    let keep = 0;
    for (let end = size; end > 0; end -= READ_CHUNK) {
      const start = Math.max(0, end - READ_CHUNK);
      const buffer = Buffer.alloc(end - start);
      readSync(fd, buffer, 0, buffer.length, start);
      const lastNewline = buffer.lastIndexOf(0x0a);
      if (lastNewline >= 0) {
        keep = start + lastNewline + 1;
        break;
      }
    }
    if (repair && keep < size) ftruncateSync(fd, keep);
    return keep;
  } finally {
    closeSync(fd);
  }
}

function countLines(dir: string, from: SpoolPosition, to: SpoolPosition): number {
  let count = 0;
  for (let segment = from.segment; segment <= to.segment; segment++) {
    const path = join(dir, segmentName(segment));
    if (!existsSync(path)) continue;
    const start = segment === from.segment ? from.offset : 0;
    const end = segment === to.segment ? to.offset : fileSize(path);
    for (let offset = start; offset < end; offset += READ_CHUNK) {
      const buffer = readAt(path, offset, Math.min(READ_CHUNK, end - offset));
      for (const byte of buffer) if (byte === 0x0a) count++;
    }
  }
  return count;
}

function fileSize(path: string): number {
  return existsSync(path) ? statSync(path).size : 0;
}

function readAt(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, "r");
  try {
    const buffer = Buffer.alloc(length);
    const read = readSync(fd, buffer, 0, length, offset);
    return buffer.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}

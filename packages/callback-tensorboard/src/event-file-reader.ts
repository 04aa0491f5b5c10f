/**
 * Reads the steps back out of existing event files (any writer's), so a run that resumes in a
 * directory with data knows each tag's last step. Records are CRC-checked; a truncated or
 * corrupt tail ends the file, as TensorBoard's own reader does.
 */
import { closeSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import { join } from "node:path";
import { maskedCrc32c } from "./crc32c.js";

export interface EventSummary {
  step: number;
  tags: string[];
}

const utf8 = new TextDecoder();

/** Every Event with a summary in `path`: its step and its values' tags. */
export function readEventSteps(path: string): EventSummary[] {
  const out: EventSummary[] = [];
  const fd = openSync(path, "r");
  try {
    const size = statSync(path).size;
    // A window of the file, refilled as the records are walked (files may be large).
    let buf = new Uint8Array(Math.min(size, 1 << 20));
    let bufStart = 0;
    let bufLen = 0;
    /** The window holding file bytes [offset, offset + n), or undefined past the end. */
    const window = (offset: number, n: number): number | undefined => {
      if (offset + n > size) return undefined;
      if (offset >= bufStart && offset + n <= bufStart + bufLen) return offset - bufStart;
      if (n > buf.length) buf = new Uint8Array(Math.max(n, buf.length * 2));
      bufStart = offset;
      bufLen = 0;
      while (bufLen < Math.min(buf.length, size - offset)) {
        const got = readSync(
          fd,
          buf,
          bufLen,
          Math.min(buf.length, size - offset) - bufLen,
          offset + bufLen,
        );
        if (got === 0) break;
        bufLen += got;
      }
      return bufLen >= n ? 0 : undefined;
    };
    let offset = 0;
    for (;;) {
      let at = window(offset, 12);
      if (at === undefined) break;
      let view = new DataView(buf.buffer, buf.byteOffset);
      const length = view.getUint32(at, true) + view.getUint32(at + 4, true) * 2 ** 32;
      if (view.getUint32(at + 8, true) !== maskedCrc32c(buf, at, at + 8)) break;
      at = window(offset, 16 + length);
      if (at === undefined) break;
      view = new DataView(buf.buffer, buf.byteOffset);
      const start = at + 12;
      const end = start + length;
      if (view.getUint32(end, true) !== maskedCrc32c(buf, start, end)) break;
      const event = decodeEvent(buf, start, end);
      if (event) out.push(event);
      offset += 16 + length;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

/** The highest step per tag over the event files directly inside `dir` (not its sub-runs). */
export function lastStepsInDir(dir: string): Map<string, number> {
  const steps = new Map<string, number>();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return steps;
  }
  for (const name of names.sort()) {
    if (!name.includes("tfevents")) continue;
    const path = join(dir, name);
    try {
      if (!statSync(path).isFile()) continue;
      for (const { step, tags } of readEventSteps(path))
        for (const tag of tags) if (!(step <= (steps.get(tag) ?? -Infinity))) steps.set(tag, step);
    } catch {
      // An unreadable file holds no steps we could conflict with.
    }
  }
  return steps;
}

interface Cursor {
  p: number;
}

function varint(data: Uint8Array, c: Cursor): number {
  let result = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    const byte = data[c.p++]!;
    result += (byte & 0x7f) * scale;
    if (byte < 0x80) return result;
    scale *= 128;
  }
  return result;
}

/** Skips a field of `wire` type; false if the wire type is unknown. */
function skip(data: Uint8Array, c: Cursor, wire: number): boolean {
  if (wire === 0) varint(data, c);
  else if (wire === 1) c.p += 8;
  else if (wire === 2) c.p += varint(data, c);
  else if (wire === 5) c.p += 4;
  else return false;
  return true;
}

/** Event{ step = 2, summary = 5 { value = 1 { tag = 1 } } }; undefined without a summary. */
function decodeEvent(data: Uint8Array, start: number, end: number): EventSummary | undefined {
  const c = { p: start };
  let step = 0;
  let tags: string[] | undefined;
  while (c.p < end) {
    const key = varint(data, c);
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field === 2 && wire === 0) {
      const raw = varint(data, c);
      step = raw >= 2 ** 63 ? raw - 2 ** 64 : raw; // int64 two's complement
    } else if (field === 5 && wire === 2) {
      const length = varint(data, c);
      tags = decodeSummaryTags(data, c.p, c.p + length);
      c.p += length;
    } else if (!skip(data, c, wire)) return undefined;
  }
  return tags ? { step, tags } : undefined;
}

function decodeSummaryTags(data: Uint8Array, start: number, end: number): string[] {
  const tags: string[] = [];
  const c = { p: start };
  while (c.p < end) {
    const key = varint(data, c);
    if (key === 0x0a) {
      const length = varint(data, c);
      const valueEnd = c.p + length;
      const v = { p: c.p };
      while (v.p < valueEnd) {
        const k = varint(data, v);
        if (k === 0x0a) {
          const n = varint(data, v);
          tags.push(utf8.decode(data.subarray(v.p, v.p + n)));
          v.p += n;
        } else if (!skip(data, v, k & 7)) break;
      }
      c.p = valueEnd;
    } else if (!skip(data, c, key & 7)) break;
  }
  return tags;
}

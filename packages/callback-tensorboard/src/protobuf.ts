/**
 * A minimal protobuf (proto3) encoder for the few messages TensorBoard reads: varints, 64-bit
 * doubles, 32-bit floats, length-delimited bytes, strings and nested messages. Fields are
 * written in the order they are called; nested messages are encoded first, then wrapped.
 */

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

const utf8 = new TextEncoder();

/** Bytes a non-negative integer (below 2^53) takes as a varint. */
export function varintSize(value: number): number {
  let size = 1;
  while (value >= 128) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

/**
 * Writes a non-negative integer (below 2^53) as a varint at `pos`; returns the position after
 * it. Negative int64 values take the slow path in ProtoWriter.int64.
 */
export function writeVarint(buf: Uint8Array, pos: number, value: number): number {
  while (value >= 0x80000000) {
    buf[pos++] = (value % 128) | 0x80;
    value = Math.floor(value / 128);
  }
  while (value >= 128) {
    buf[pos++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  buf[pos++] = value;
  return pos;
}

export class ProtoWriter {
  private buf = new Uint8Array(64);
  private view = new DataView(this.buf.buffer);
  private pos = 0;

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  private key(field: number, wire: number): void {
    this.rawVarint(field * 8 + wire);
  }

  private rawVarint(value: number): void {
    this.ensure(10);
    this.pos = writeVarint(this.buf, this.pos, value);
  }

  /** An unsigned varint field (enum, bool, uint, non-negative int): always written. */
  uint(field: number, value: number): this {
    this.key(field, WIRE_VARINT);
    this.rawVarint(value);
    return this;
  }

  /** An int64 field; negative values take ten bytes (two's complement), as protobuf does. */
  int64(field: number, value: number): this {
    if (!Number.isSafeInteger(value))
      throw new RangeError(`An int64 field needs a safe integer (got ${value}).`);
    if (value >= 0) return this.uint(field, value);
    this.key(field, WIRE_VARINT);
    this.ensure(10);
    let v = BigInt.asUintN(64, BigInt(value));
    for (let i = 0; i < 9; i++) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
    return this;
  }

  double(field: number, value: number): this {
    this.key(field, WIRE_I64);
    this.ensure(8);
    this.view.setFloat64(this.pos, value, true);
    this.pos += 8;
    return this;
  }

  float(field: number, value: number): this {
    this.key(field, WIRE_I32);
    this.ensure(4);
    this.view.setFloat32(this.pos, value, true);
    this.pos += 4;
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.key(field, WIRE_LEN);
    this.rawVarint(value.length);
    this.ensure(value.length);
    this.buf.set(value, this.pos);
    this.pos += value.length;
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, utf8.encode(value));
  }

  /** A nested message (already encoded). */
  message(field: number, value: Uint8Array): this {
    return this.bytes(field, value);
  }

  /** A packed repeated double field. */
  packedDoubles(field: number, values: ArrayLike<number>): this {
    this.key(field, WIRE_LEN);
    this.rawVarint(values.length * 8);
    this.ensure(values.length * 8);
    for (let i = 0; i < values.length; i++) {
      this.view.setFloat64(this.pos, values[i]!, true);
      this.pos += 8;
    }
    return this;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

/** Encodes one message with a callback: `encode((w) => w.string(1, "x"))`. */
export function encode(build: (writer: ProtoWriter) => unknown): Uint8Array {
  const writer = new ProtoWriter();
  build(writer);
  return writer.finish();
}

export function utf8Bytes(value: string): Uint8Array {
  return utf8.encode(value);
}

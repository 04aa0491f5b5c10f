import * as tf from "@tensorflow/tfjs";

/** One example: named fields, each a number, a (nested) array or typed array, or a tensor. */
export type Example = Record<string, unknown>;

/** What the Trainer accepts as a dataset. */
export type DatasetInput =
  Record<string, tf.Tensor> | readonly Example[] | Iterable<Example> | AsyncIterable<Example>;

/** A field stored as one flat typed array, row after row. */
export interface Column {
  readonly data: Float32Array | Int32Array;
  readonly rowShape: readonly number[];
  readonly rowSize: number;
  readonly dtype: "float32" | "int32";
}

/**
 * A dataset held in memory as columns, so a batch is a copy of rows into a typed array:
 * no per-step slicing of large tensors (which copies the whole source on wasm).
 */
export class InMemoryDataset {
  constructor(
    readonly columns: Record<string, Column>,
    readonly length: number,
  ) {}

  /** The batch of these rows: one tensor per field. Call inside tf.tidy or dispose it. */
  batch(rows: ArrayLike<number>, start = 0, end = rows.length): Record<string, tf.Tensor> {
    const out: Record<string, tf.Tensor> = {};
    const size = end - start;
    for (const [name, column] of Object.entries(this.columns)) {
      const { data, rowSize } = column;
      const values =
        column.dtype === "int32"
          ? new Int32Array(size * rowSize)
          : new Float32Array(size * rowSize);
      for (let i = 0; i < size; i++) {
        const row = rows[start + i]!;
        values.set(data.subarray(row * rowSize, (row + 1) * rowSize), i * rowSize);
      }
      out[name] = tf.tensor(values, [size, ...column.rowShape], column.dtype);
    }
    return out;
  }

  /** One example as plain values (for a custom collator). */
  example(row: number): Example {
    const out: Example = {};
    for (const [name, { data, rowSize }] of Object.entries(this.columns))
      out[name] = rowSize === 1 ? data[row] : data.slice(row * rowSize, (row + 1) * rowSize);
    return out;
  }
}

/** A dataset read as it streams: no length, no shuffling (HF's IterableDataset). */
export class StreamDataset {
  constructor(readonly source: Iterable<Example> | AsyncIterable<Example>) {}
}

export type Dataset = InMemoryDataset | StreamDataset;

/**
 * Turns what the user passed into a Dataset, checking it before any work: a name for the
 * dataset goes into every error ("trainDataset", "evalDataset", ...).
 */
export function toDataset(input: DatasetInput, name: string): Dataset {
  if (input instanceof InMemoryDataset || input instanceof StreamDataset) return input;
  if (Array.isArray(input)) return fromExamples(input, name);
  if (isTensorRecord(input)) return fromTensors(input, name);
  if (input && (Symbol.asyncIterator in input || Symbol.iterator in input))
    return new StreamDataset(input as Iterable<Example>);
  throw new Error(
    `${name} must be { x: Tensor, y: Tensor }, an array of examples, or an (async) iterable of examples; got ${describe(input)}.`,
  );
}

function isTensorRecord(value: unknown): value is Record<string, tf.Tensor> {
  if (typeof value !== "object" || value === null) return false;
  const values = Object.values(value);
  return values.length > 0 && values.every((v) => v instanceof tf.Tensor);
}

function fromTensors(tensors: Record<string, tf.Tensor>, name: string): InMemoryDataset {
  const entries = Object.entries(tensors);
  const lengths = entries.map(([field, t]) => {
    if (t.rank === 0)
      throw new Error(`${name}.${field} is a scalar; its first dimension must index examples.`);
    return t.shape[0]!;
  });
  const length = lengths[0]!;
  entries.forEach(([field, t]) => {
    if (t.shape[0] !== length) {
      throw new Error(
        `${name}: ${entries[0]![0]} has ${length} examples but ${field} has ${t.shape[0]}; every field needs one row per example.`,
      );
    }
  });
  if (length === 0) throw new Error(`${name} is empty: it has no examples.`);
  const columns: Record<string, Column> = {};
  for (const [field, t] of entries) {
    const dtype = t.dtype === "float32" ? "float32" : "int32";
    const raw = t.dataSync();
    const data =
      dtype === "float32"
        ? Float32Array.from(raw as Float32Array)
        : Int32Array.from(raw as Int32Array);
    const rowShape = t.shape.slice(1);
    columns[field] = { data, rowShape, rowSize: size(rowShape), dtype };
  }
  return new InMemoryDataset(columns, length);
}

function fromExamples(examples: readonly Example[], name: string): InMemoryDataset {
  if (examples.length === 0) throw new Error(`${name} is empty: it has no examples.`);
  const first = examples[0]!;
  if (typeof first !== "object" || first === null)
    throw new Error(
      `${name}[0] must be an object of fields such as { x: [...], y: ... }; got ${describe(first)}.`,
    );
  const fields = Object.keys(first);
  const columns: Record<string, Column> = {};
  for (const field of fields) {
    const { shape, dtype } = describeValue(first[field], `${name}[0].${field}`);
    const rowSize = size(shape);
    const data =
      dtype === "int32"
        ? new Int32Array(examples.length * rowSize)
        : new Float32Array(examples.length * rowSize);
    examples.forEach((example, i) => {
      const where = `${name}[${i}].${field}`;
      if (!(field in example))
        throw new Error(
          `${where} is missing; every example needs the fields of the first (${fields.join(", ")}).`,
        );
      const flat = flatten(example[field], where);
      if (flat.length !== rowSize) {
        throw new Error(
          `${where} has ${flat.length} values but ${name}[0].${field} has ${rowSize} (shape [${shape}]); every example's field must have the same shape.`,
        );
      }
      data.set(flat, i * rowSize);
    });
    columns[field] = { data, rowShape: shape, rowSize, dtype };
  }
  return new InMemoryDataset(columns, examples.length);
}

/** Stacks examples (from a stream, or for a custom collator) into a batch. */
export function stackExamples(
  examples: readonly Example[],
  name: string,
): Record<string, tf.Tensor> {
  const dataset = fromExamples(examples, name);
  return dataset.batch(Array.from({ length: examples.length }, (_, i) => i));
}

function describeValue(
  value: unknown,
  where: string,
): { shape: number[]; dtype: "float32" | "int32" } {
  if (value instanceof tf.Tensor)
    return { shape: value.shape, dtype: value.dtype === "float32" ? "float32" : "int32" };
  if (value instanceof Int32Array) return { shape: [value.length], dtype: "int32" };
  if (typeof value === "number" || typeof value === "boolean")
    return { shape: [], dtype: "float32" };
  if (ArrayBuffer.isView(value))
    return { shape: [(value as Float32Array).length], dtype: "float32" };
  if (Array.isArray(value)) {
    if (value.length === 0) throw new Error(`${where} is an empty array.`);
    const inner = describeValue(value[0], `${where}[0]`);
    return { shape: [value.length, ...inner.shape], dtype: inner.dtype };
  }
  throw new Error(
    `${where} must be a number, an array of numbers, a typed array or a tensor; got ${describe(value)}.`,
  );
}

function flatten(value: unknown, where: string): ArrayLike<number> {
  if (value instanceof tf.Tensor) return value.dataSync() as Float32Array;
  if (typeof value === "number") return [value];
  if (typeof value === "boolean") return [value ? 1 : 0];
  if (ArrayBuffer.isView(value)) return value as unknown as ArrayLike<number>;
  if (Array.isArray(value)) {
    const flat = (value as unknown[]).flat(Infinity) as unknown[];
    for (let i = 0; i < flat.length; i++) {
      if (typeof flat[i] !== "number")
        throw new Error(`${where} holds ${describe(flat[i])}; every value must be a number.`);
    }
    return flat as number[];
  }
  throw new Error(
    `${where} must be a number, an array of numbers, a typed array or a tensor; got ${describe(value)}.`,
  );
}

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return `an object (${value.constructor?.name ?? "Object"})`;
  return `${typeof value} ${String(value).slice(0, 40)}`;
}

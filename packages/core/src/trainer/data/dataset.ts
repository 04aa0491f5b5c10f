import * as tf from "@tensorflow/tfjs";
import { sameShape } from "../../util/shapes.js";

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

  /**
   * One example as plain values, for a custom collator: a number, a typed array for a row of
   * rank 1, nested arrays for higher ranks. (An array of examples meant for a collator is kept
   * as it is instead: toDataset's `collator` option.)
   */
  example(row: number): Example {
    const out: Example = {};
    for (const [name, { data, rowSize, rowShape }] of Object.entries(this.columns)) {
      const values = data.slice(row * rowSize, (row + 1) * rowSize);
      out[name] =
        rowShape.length === 0 ? values[0] : rowShape.length === 1 ? values : nest(values, rowShape);
    }
    return out;
  }
}

/**
 * Examples kept as the user gave them, for a custom collator: any fields (text, ragged token
 * lists, ...), since the collator, not the Trainer, turns them into tensors.
 */
export class ExampleListDataset {
  constructor(readonly examples: readonly Example[]) {}

  get length(): number {
    return this.examples.length;
  }
}

/**
 * The shape of one example's fields (without the batch dimension) of an in-memory dataset, for
 * TrainableModel.checkExampleShapes; undefined when only the batches will tell (a stream, raw
 * examples for a collator).
 */
export function exampleShapes(dataset: Dataset): Record<string, readonly number[]> | undefined {
  if (!(dataset instanceof InMemoryDataset)) return undefined;
  return Object.fromEntries(
    Object.entries(dataset.columns).map(([name, column]) => [name, column.rowShape]),
  );
}

/** A dataset read as it streams: no length, no shuffling (HF's IterableDataset). */
export class StreamDataset {
  constructor(readonly source: Iterable<Example> | AsyncIterable<Example>) {}
}

export type Dataset = InMemoryDataset | ExampleListDataset | StreamDataset;

export interface ToDatasetOptions {
  /**
   * A custom dataCollator will batch the examples: an array of examples is then kept as it is
   * (any fields, any shapes) and handed to it, as HF's Trainer does.
   */
  collator?: boolean;
}

/**
 * Turns what the user passed into a Dataset, checking it before any work: a name for the
 * dataset goes into every error ("trainDataset", "evalDataset", ...).
 */
export function toDataset(
  input: DatasetInput,
  name: string,
  { collator = false }: ToDatasetOptions = {},
): Dataset {
  if (
    input instanceof InMemoryDataset ||
    input instanceof ExampleListDataset ||
    input instanceof StreamDataset
  )
    return input;
  if (Array.isArray(input)) {
    if (!collator) return fromExamples(input, name);
    checkExampleObjects(input, name);
    return new ExampleListDataset(input);
  }
  if (typeof input === "object" && input !== null) {
    if (isTensorRecord(input)) return fromTensors(input, name);
    if (Symbol.asyncIterator in input || Symbol.iterator in input)
      return new StreamDataset(input as Iterable<Example>);
    const values = Object.entries(input);
    const tensors = values.filter(([, v]) => v instanceof tf.Tensor);
    if (tensors.length > 0) {
      const [field, value] = values.find(([, v]) => !(v instanceof tf.Tensor))!;
      throw new Error(
        `${name}.${field} is ${describe(value)}, not a tf.Tensor: in the { x: Tensor, y: Tensor } form every field must be a tensor with one row per example. Make it a tensor (tf.tensor(...)), or pass an array of examples instead.`,
      );
    }
  }
  throw new Error(
    `${name} must be { x: Tensor, y: Tensor }, an array of examples such as [{ x: [...], y: 0 }], or an (async) iterable of examples; got ${describe(input)}.`,
  );
}

function isTensorRecord(value: object): value is Record<string, tf.Tensor> {
  const values = Object.values(value);
  return values.length > 0 && values.every((v) => v instanceof tf.Tensor);
}

function fromTensors(tensors: Record<string, tf.Tensor>, name: string): InMemoryDataset {
  const entries = Object.entries(tensors);
  for (const [field, t] of entries) {
    if (t.isDisposed)
      throw new Error(`${name}.${field} is a disposed tensor: keep it alive until training ends.`);
    if (t.rank === 0)
      throw new Error(
        `${name}.${field} is a scalar; its first dimension must index examples (shape [numExamples, ...]).`,
      );
    if (t.dtype === "string" || t.dtype === "complex64")
      throw new Error(
        `${name}.${field} has dtype ${t.dtype}; only numeric tensors (float32, int32, bool) can be trained on. Encode it as numbers first.`,
      );
  }
  const [firstField, firstTensor] = entries[0]!;
  const length = firstTensor.shape[0]!;
  for (const [field, t] of entries) {
    if (t.shape[0] !== length) {
      throw new Error(
        `${name}: ${firstField} has ${length} examples (shape [${firstTensor.shape}]) but ${field} has ${t.shape[0]} (shape [${t.shape}]); every field needs one row per example.`,
      );
    }
  }
  if (length === 0)
    throw new Error(
      `${name} is empty: its tensors have 0 rows (${firstField} has shape [${firstTensor.shape}]). Pass at least one example.`,
    );
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

/**
 * Reads examples into columns, checking each one against the first: the same fields, each a
 * rectangular array of numbers of the same shape. `offset` is the index of examples[0] in the
 * whole dataset (a stream's batches), so that errors name the example the user knows.
 */
function checkExampleObjects(examples: readonly Example[], name: string, offset = 0): void {
  if (examples.length === 0)
    throw new Error(`${name} is empty: it has no examples. Pass at least one example.`);
  examples.forEach((example, i) => {
    if (typeof example !== "object" || example === null || Array.isArray(example))
      throw new Error(
        `${name}[${offset + i}] must be an object of fields such as { x: [...], y: 0 }; got ${describe(example)}.`,
      );
  });
}

function fromExamples(examples: readonly Example[], name: string, offset = 0): InMemoryDataset {
  checkExampleObjects(examples, name, offset);
  const first = examples[0]!;
  const fields = Object.keys(first);
  if (fields.length === 0)
    throw new Error(
      `${name}[${offset}] has no fields; an example is an object such as { x: [...], y: 0 }.`,
    );
  const columns: Record<string, Column> = {};
  for (const field of fields) {
    const firstWhere = `${name}[${offset}].${field}`;
    const { shape, dtype } = describeValue(first[field], firstWhere);
    const rowSize = size(shape);
    const data =
      dtype === "int32"
        ? new Int32Array(examples.length * rowSize)
        : new Float32Array(examples.length * rowSize);
    examples.forEach((example, i) => {
      const where = `${name}[${offset + i}].${field}`;
      if (!(field in example) || example[field] === undefined)
        throw new Error(
          `${where} is missing; every example needs the fields of the first (${fields.join(", ")}).`,
        );
      const problem = write(example[field], shape, 0, data, i * rowSize, where);
      if (problem === undefined) return;
      if (problem.kind === "value") throw new Error(problem.message);
      const { path, got } = problem;
      const expected = shape[path.length]!;
      if (i === 0) {
        throw new Error(
          `${where} is ragged: ${where}${indexPath(path)} has ${got} values where ${expected} were expected (shape [${shape}] from the first element at each level); nested arrays must be rectangular.`,
        );
      }
      throw new Error(
        `${where}${indexPath(path)} has ${got} values but ${firstWhere}${indexPath(path)} has ${expected}; every example's ${field} must have the shape of the first ([${shape}]). Pad or trim the examples to one shape, or pass a dataCollator that batches them.`,
      );
    });
    columns[field] = { data, rowShape: shape, rowSize, dtype };
  }
  return new InMemoryDataset(columns, examples.length);
}

/** Stacks examples (from a stream, or for a custom collator) into a batch. */
export function stackExamples(
  examples: readonly Example[],
  name: string,
  offset = 0,
): Record<string, tf.Tensor> {
  const dataset = fromExamples(examples, name, offset);
  return dataset.batch(Array.from({ length: examples.length }, (_, i) => i));
}

/** The shape and dtype of a field, from its value in the first example. */
function describeValue(
  value: unknown,
  where: string,
): { shape: number[]; dtype: "float32" | "int32" } {
  if (value instanceof tf.Tensor) {
    if (value.dtype === "string" || value.dtype === "complex64")
      throw new Error(`${where} is a ${value.dtype} tensor; every value must be a number.`);
    return { shape: value.shape, dtype: value.dtype === "float32" ? "float32" : "int32" };
  }
  if (value instanceof Int32Array) return { shape: [value.length], dtype: "int32" };
  if (typeof value === "number" || typeof value === "boolean")
    return { shape: [], dtype: "float32" };
  if (isNumericTypedArray(value)) return { shape: [value.length], dtype: "float32" };
  if (Array.isArray(value)) {
    if (value.length === 0)
      throw new Error(`${where} is an empty array; every field needs at least one value.`);
    const inner = describeValue(value[0], `${where}[0]`);
    return { shape: [value.length, ...inner.shape], dtype: inner.dtype };
  }
  throw new Error(
    `${where} must be a number, an array of numbers, a typed array or a tensor; got ${describe(value)}.${hint(value)}`,
  );
}

type WriteProblem =
  { kind: "shape"; path: number[]; got: number } | { kind: "value"; message: string };

/**
 * Writes `value` (expected to have `shape` from `depth` on) into `out` at `at`, checking it on
 * the way: returns where it does not fit, or undefined when it was written.
 */
function write(
  value: unknown,
  shape: readonly number[],
  depth: number,
  out: Float32Array | Int32Array,
  at: number,
  where: string,
  path: number[] = [],
): WriteProblem | undefined {
  const here = () => `${where}${indexPath(path)}`;
  if (depth === shape.length) {
    if (typeof value === "boolean") {
      out[at] = value ? 1 : 0;
      return undefined;
    }
    if (typeof value !== "number") {
      if (Array.isArray(value) || isNumericTypedArray(value) || value instanceof tf.Tensor)
        return {
          kind: "value",
          message: `${here()} is ${describe(value)} where a number was expected (the first example has a number there); every example's field must have the same shape.`,
        };
      return {
        kind: "value",
        message: `${here()} is ${describe(value)}; every value must be a number.${hint(value)}`,
      };
    }
    if (out instanceof Int32Array && !Number.isInteger(value))
      return { kind: "value", message: int32Message(here(), value) };
    out[at] = value;
    return undefined;
  }
  const expected = shape[depth]!;
  const inner = size(shape.slice(depth + 1));
  if (value instanceof tf.Tensor) {
    const rest = shape.slice(depth);
    const given: readonly number[] = value.shape;
    if (!sameShape(given, rest))
      return given[0] !== expected
        ? { kind: "shape", path, got: given[0] ?? 1 }
        : {
            kind: "value",
            message: `${here()} is a tensor of shape [${given}] where shape [${rest}] was expected; every example's field must have the same shape.`,
          };
    return writeFlat(value.dataSync() as ArrayLike<number>, out, at, here());
  }
  if (isNumericTypedArray(value)) {
    if (value.length !== expected) return { kind: "shape", path, got: value.length };
    if (depth !== shape.length - 1)
      return {
        kind: "value",
        message: `${here()} is a typed array of numbers where arrays of shape [${shape.slice(depth)}] were expected; every example's field must have the same shape.`,
      };
    return writeFlat(value, out, at, here());
  }
  if (!Array.isArray(value)) {
    if (typeof value === "number" || typeof value === "boolean")
      return {
        kind: "value",
        message: `${here()} is ${describe(value)} where an array of shape [${shape.slice(depth)}] was expected (as in the first example); every example's field must have the same shape.`,
      };
    return {
      kind: "value",
      message: `${here()} is ${describe(value)}; it must be an array of numbers of shape [${shape.slice(depth)}].${hint(value)}`,
    };
  }
  if (value.length !== expected) return { kind: "shape", path, got: value.length };
  for (let k = 0; k < expected; k++) {
    const problem = write(value[k], shape, depth + 1, out, at + k * inner, where, [...path, k]);
    if (problem) return problem;
  }
  return undefined;
}

function writeFlat(
  values: ArrayLike<number>,
  out: Float32Array | Int32Array,
  at: number,
  where: string,
): WriteProblem | undefined {
  if (out instanceof Int32Array && !(values instanceof Int32Array)) {
    for (let k = 0; k < values.length; k++) {
      if (!Number.isInteger(values[k]))
        return { kind: "value", message: int32Message(`${where}[${k}]`, values[k]!) };
    }
  }
  out.set(values, at);
  return undefined;
}

function int32Message(where: string, value: number): string {
  return `${where} is ${value}, but this field is int32 (the first example holds integers: an Int32Array or an int32 tensor). Make every example's field integers, or use numbers / a Float32Array in the first example for a float field.`;
}

type NumericTypedArray = Exclude<ArrayBufferView, DataView | BigInt64Array | BigUint64Array> & {
  readonly length: number;
  [index: number]: number;
};

function isNumericTypedArray(value: unknown): value is NumericTypedArray {
  return (
    ArrayBuffer.isView(value) &&
    !(value instanceof DataView) &&
    !(value instanceof BigInt64Array) &&
    !(value instanceof BigUint64Array)
  );
}

/** Rebuilds nested arrays of `shape` from a flat row. */
function nest(values: ArrayLike<number>, shape: readonly number[], at = 0): unknown[] {
  const [length, ...rest] = shape;
  const inner = size(rest);
  return Array.from({ length: length! }, (_, k) =>
    rest.length === 0 ? values[at + k] : nest(values, rest, at + k * inner),
  );
}

function indexPath(path: readonly number[]): string {
  return path.map((k) => `[${k}]`).join("");
}

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function hint(value: unknown): string {
  if (typeof value === "string")
    return " Encode text and categories as numbers first (e.g. class indices or token ids).";
  if (typeof value === "bigint") return " Convert bigints with Number(...).";
  return "";
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  if (Array.isArray(value)) return `an array (length ${value.length})`;
  if (value instanceof tf.Tensor) return `a tensor of shape [${value.shape}]`;
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name}`;
  if (typeof value === "string") return `the string ${JSON.stringify(value.slice(0, 40))}`;
  if (typeof value === "object") return `an object (${value.constructor?.name ?? "Object"})`;
  return `${typeof value} ${String(value).slice(0, 40)}`;
}

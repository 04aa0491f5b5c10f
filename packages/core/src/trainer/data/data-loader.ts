import * as tf from "@tensorflow/tfjs";
import type { Batch } from "../model/trainable-model.js";
import {
  ExampleListDataset,
  StreamDataset,
  type InMemoryDataset,
  stackExamples,
  type Dataset,
  type Example,
} from "./dataset.js";
import { epochPermutation } from "./rng.js";

/** Turns a list of examples into a batch (HF's data_collator). */
export type DataCollator = (examples: Example[]) => Record<string, tf.Tensor>;

export interface DataLoaderOptions {
  batchSize: number;
  shuffle: boolean;
  dropLast: boolean;
  seed: number;
  collator?: DataCollator;
  /** Used in errors: "trainDataset", "evalDataset", ... */
  name: string;
}

/** Yields the batches of one epoch: synchronously from memory, asynchronously from a stream. */
export interface EpochIterator {
  next(): Batch | null | Promise<Batch | null>;
}

/**
 * Batches of a dataset, in a seeded order that is a function of the epoch alone, so that a
 * resumed run sees exactly the batches the interrupted one would have.
 */
export class DataLoader {
  constructor(
    readonly dataset: Dataset,
    readonly options: DataLoaderOptions,
  ) {
    if (dataset instanceof ExampleListDataset && !options.collator) {
      throw new Error(
        `${options.name} was kept as raw examples for a dataCollator, but no dataCollator was given. Pass dataCollator to the Trainer.`,
      );
    }
    if (
      !(dataset instanceof StreamDataset) &&
      options.dropLast &&
      dataset.length < options.batchSize
    ) {
      const option =
        options.name === "trainDataset" ? "perDeviceTrainBatchSize" : "perDeviceEvalBatchSize";
      throw new Error(
        `${options.name} has ${dataset.length} examples, fewer than one batch of ${options.batchSize}, and dataloaderDropLast is set, so there would be no batch at all. Set ${option} to ${dataset.length} or less, or turn dataloaderDropLast off.`,
      );
    }
  }

  /** Batches per epoch; undefined for a stream. */
  get length(): number | undefined {
    const { dataset, options } = this;
    if (dataset instanceof StreamDataset) return undefined;
    const full = Math.floor(dataset.length / options.batchSize);
    return options.dropLast || dataset.length % options.batchSize === 0 ? full : full + 1;
  }

  /** Examples per epoch (after drop-last); undefined for a stream. */
  get numExamples(): number | undefined {
    const { dataset } = this;
    return dataset instanceof StreamDataset ? undefined : dataset.length;
  }

  /** The batches of `epoch`, starting after the first `skip` of them. */
  epoch(epoch: number, skip = 0): EpochIterator {
    const { dataset, options } = this;
    if (!(dataset instanceof StreamDataset)) return this.memoryEpoch(dataset, epoch, skip);
    const iterator =
      Symbol.asyncIterator in dataset.source
        ? (dataset.source as AsyncIterable<Example>)[Symbol.asyncIterator]()
        : (dataset.source as Iterable<Example>)[Symbol.iterator]();
    let skipped = 0;
    /** Index in the stream of the next example, so that errors name it. */
    let position = 0;
    const { collator, name } = options;
    return {
      next: async () => {
        for (;;) {
          const examples: Example[] = [];
          while (examples.length < options.batchSize) {
            const item = await iterator.next();
            if (item.done) break;
            examples.push(item.value);
          }
          const first = position;
          position += examples.length;
          const partial = examples.length < options.batchSize;
          if (examples.length === 0 || (partial && options.dropLast)) return null;
          if (skipped < skip) {
            skipped++;
            continue;
          }
          return collator
            ? checkCollated(collator(examples), name)
            : stackExamples(examples, name, first);
        }
      },
    };
  }

  private memoryEpoch(
    dataset: Exclude<Dataset, StreamDataset>,
    epoch: number,
    skip: number,
  ): EpochIterator {
    const { batchSize, shuffle, seed, collator } = this.options;
    const order = shuffle ? epochPermutation(dataset.length, seed, epoch) : undefined;
    const rows = order ?? identity(dataset.length);
    const batches = this.length!;
    let index = skip;
    return {
      next: () => {
        if (index >= batches) return null;
        const start = index * batchSize;
        const end = Math.min(start + batchSize, dataset.length);
        index++;
        if (!collator) return (dataset as InMemoryDataset).batch(rows, start, end);
        const examples: Example[] = [];
        for (let i = start; i < end; i++)
          examples.push(
            dataset instanceof ExampleListDataset
              ? dataset.examples[rows[i]!]!
              : dataset.example(rows[i]!),
          );
        return checkCollated(collator(examples), this.options.name);
      },
    };
  }
}

/** A collator's batch must be named tensors; anything else would fail later, far from the cause. */
function checkCollated(batch: unknown, name: string): Batch {
  const bad =
    typeof batch !== "object" || batch === null || Array.isArray(batch)
      ? describeBatch(batch)
      : Object.entries(batch).find(([, v]) => !(v instanceof tf.Tensor));
  if (bad === undefined && Object.keys(batch as object).length > 0) return batch as Batch;
  const got =
    bad === undefined
      ? "an empty object"
      : typeof bad === "string"
        ? bad
        : `${bad[0]}: ${describeBatch(bad[1])}`;
  throw new Error(
    `The dataCollator must return an object of tensors such as { x: tf.Tensor, y: tf.Tensor } for ${name}; it returned ${got}.`,
  );
}

function describeBatch(value: unknown): string {
  if (value instanceof Promise) return "a Promise (a collator must be synchronous)";
  if (Array.isArray(value)) return "an array";
  if (value === null || typeof value !== "object") return String(value);
  return `an object (${value.constructor?.name ?? "Object"})`;
}

function identity(n: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  return out;
}

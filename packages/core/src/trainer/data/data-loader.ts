import type * as tf from "@tensorflow/tfjs";
import type { Batch } from "../model/trainable-model.js";
import { InMemoryDataset, stackExamples, type Dataset, type Example } from "./dataset.js";
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
    if (
      dataset instanceof InMemoryDataset &&
      options.dropLast &&
      dataset.length < options.batchSize
    ) {
      throw new Error(
        `${options.name} has ${dataset.length} examples, fewer than one batch of ${options.batchSize}, and dataloaderDropLast is set, so there would be no batch at all. Lower the batch size or turn dataloaderDropLast off.`,
      );
    }
  }

  /** Batches per epoch; undefined for a stream. */
  get length(): number | undefined {
    const { dataset, options } = this;
    if (!(dataset instanceof InMemoryDataset)) return undefined;
    const full = Math.floor(dataset.length / options.batchSize);
    return options.dropLast || dataset.length % options.batchSize === 0 ? full : full + 1;
  }

  /** Examples per epoch (after drop-last); undefined for a stream. */
  get numExamples(): number | undefined {
    const { dataset } = this;
    return dataset instanceof InMemoryDataset ? dataset.length : undefined;
  }

  /** The batches of `epoch`, starting after the first `skip` of them. */
  epoch(epoch: number, skip = 0): EpochIterator {
    const { dataset, options } = this;
    if (dataset instanceof InMemoryDataset) return this.memoryEpoch(dataset, epoch, skip);
    const iterator =
      Symbol.asyncIterator in dataset.source
        ? (dataset.source as AsyncIterable<Example>)[Symbol.asyncIterator]()
        : (dataset.source as Iterable<Example>)[Symbol.iterator]();
    let skipped = 0;
    const collate =
      options.collator ?? ((examples: Example[]) => stackExamples(examples, options.name));
    return {
      next: async () => {
        for (;;) {
          const examples: Example[] = [];
          while (examples.length < options.batchSize) {
            const item = await iterator.next();
            if (item.done) break;
            examples.push(item.value);
          }
          const partial = examples.length < options.batchSize;
          if (examples.length === 0 || (partial && options.dropLast)) return null;
          if (skipped < skip) {
            skipped++;
            continue;
          }
          return collate(examples);
        }
      },
    };
  }

  private memoryEpoch(dataset: InMemoryDataset, epoch: number, skip: number): EpochIterator {
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
        if (!collator) return dataset.batch(rows, start, end);
        const examples: Example[] = [];
        for (let i = start; i < end; i++) examples.push(dataset.example(rows[i]!));
        return collator(examples);
      },
    };
  }
}

function identity(n: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  return out;
}

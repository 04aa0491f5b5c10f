// Data: the seeded shuffle, HF's batch counts, skipping batches on resume, every dataset form
// giving the same batches, custom collators, and the Trainer disposing every batch it makes.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  setLogger,
  Trainer,
  TrainerCallback,
  type Batch,
  type Example,
  type TrainableModel,
  type TrainerControl,
  type TrainerState,
  type TrainingArguments,
  type TrainingArgumentsOptions,
} from "../src/index.js";
import { DataLoader, type DataLoaderOptions } from "../src/trainer/data/data-loader.js";
import { InMemoryDataset, toDataset, type DatasetInput } from "../src/trainer/data/dataset.js";
import { epochPermutation } from "../src/trainer/data/rng.js";

const dirs: string[] = [];

beforeAll(async () => {
  await tf.setBackend("cpu");
  setLogger({ info() {}, warn() {} });
});

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** n examples: x = [i, i + 0.5, -i, i / 4], y = i % 3. */
function rows(n: number): { x: number[]; y: number }[] {
  return Array.from({ length: n }, (_, i) => ({ x: [i, i + 0.5, -i, i / 4], y: i % 3 }));
}

function loader(input: DatasetInput, options: Partial<DataLoaderOptions> = {}): DataLoader {
  return new DataLoader(toDataset(input, "trainDataset"), {
    batchSize: 3,
    shuffle: false,
    dropLast: false,
    seed: 42,
    name: "trainDataset",
    ...options,
  });
}

interface PlainBatch {
  [field: string]: { shape: number[]; dtype: string; values: number[] };
}

/** Every batch of an epoch as plain values (the tensors are disposed). */
async function collect(dataLoader: DataLoader, epoch = 0, skip = 0): Promise<PlainBatch[]> {
  const iterator = dataLoader.epoch(epoch, skip);
  const out: PlainBatch[] = [];
  for (;;) {
    const batch = await iterator.next();
    if (!batch) break;
    const plain: PlainBatch = {};
    for (const [name, t] of Object.entries(batch))
      plain[name] = { shape: t.shape, dtype: t.dtype, values: Array.from(t.dataSync()) };
    tf.dispose(batch);
    out.push(plain);
  }
  return out;
}

describe("shuffle: a seeded permutation per (seed, epoch)", () => {
  test("the same seed and epoch give the same order", () => {
    expect(Array.from(epochPermutation(100, 42, 3))).toEqual(
      Array.from(epochPermutation(100, 42, 3)),
    );
  });

  test("the order differs across epochs and across seeds", () => {
    const base = Array.from(epochPermutation(100, 42, 0));
    for (let epoch = 1; epoch < 5; epoch++)
      expect(Array.from(epochPermutation(100, 42, epoch))).not.toEqual(base);
    for (const seed of [0, 1, 43, 1234])
      expect(Array.from(epochPermutation(100, seed, 0))).not.toEqual(base);
  });

  test("it is a permutation of 0..n-1 (and not the identity)", () => {
    for (const n of [1, 2, 7, 100, 1000]) {
      const order = Array.from(epochPermutation(n, 7, 2));
      expect([...order].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
      if (n >= 7) expect(order).not.toEqual(Array.from({ length: n }, (_, i) => i));
    }
  });

  test("a shuffled epoch of the loader visits each example once, in the permutation's order", async () => {
    const data = rows(10);
    const batches = await collect(loader(data, { shuffle: true, batchSize: 4 }), 2);
    const seen = batches.flatMap((b) => b.x!.values.filter((_, k) => k % 4 === 0));
    expect(seen).toEqual(Array.from(epochPermutation(10, 42, 2)));
  });

  test("the loader's order is reproducible and changes with the epoch", async () => {
    const data = rows(20);
    const a = await collect(loader(data, { shuffle: true }), 1);
    const b = await collect(loader(data, { shuffle: true }), 1);
    const c = await collect(loader(data, { shuffle: true }), 2);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });
});

describe("batch counts: HF's dataloader_drop_last", () => {
  test.each([
    [10, 3, false, 4, 1],
    [10, 3, true, 3, 3],
    [9, 3, false, 3, 3],
    [9, 3, true, 3, 3],
    [1, 1, false, 1, 1],
    [5, 8, false, 1, 5],
  ])(
    "%s examples, batch %s, dropLast %s → %s batches (last of %s)",
    async (n, batchSize, dropLast, count, lastSize) => {
      const dataLoader = loader(rows(n), { batchSize, dropLast });
      expect(dataLoader.length).toBe(
        dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize),
      );
      expect(dataLoader.length).toBe(count);
      const batches = await collect(dataLoader);
      expect(batches).toHaveLength(count);
      expect(batches.at(-1)!.y!.shape).toEqual([lastSize]);
    },
  );

  test("a stream gives the same counts", async () => {
    for (const dropLast of [false, true]) {
      const stream = {
        *[Symbol.iterator]() {
          yield* rows(10);
        },
      };
      const batches = await collect(loader(stream, { dropLast }));
      expect(batches).toHaveLength(dropLast ? 3 : 4);
    }
  });
});

describe("skipping batches (resume)", () => {
  test.each([0, 1, 2, 3, 4])(
    "skip %s yields exactly batches k.. of the unskipped epoch",
    async (k) => {
      const data = rows(11);
      const full = await collect(loader(data, { shuffle: true }), 3);
      expect(await collect(loader(data, { shuffle: true }), 3, k)).toEqual(full.slice(k));
    },
  );

  test("the same for a stream", async () => {
    const stream = {
      *[Symbol.iterator]() {
        yield* rows(11);
      },
    };
    const full = await collect(loader(stream));
    for (const k of [0, 1, 3, 4])
      expect(await collect(loader(stream), 0, k)).toEqual(full.slice(k));
  });

  test("for a custom collator too", async () => {
    const collator = (examples: Example[]) => ({
      x: tf.tensor2d(examples.map((e) => e.x as number[])),
    });
    const data = rows(8);
    const full = await collect(loader(data, { shuffle: true, collator }), 1);
    expect(await collect(loader(data, { shuffle: true, collator }), 1, 2)).toEqual(full.slice(2));
  });
});

describe("every dataset form gives the same batches", () => {
  const n = 7;
  const data = rows(n);
  const x = data.map((r) => r.x);
  const y = data.map((r) => r.y);

  const forms: [string, () => DatasetInput][] = [
    ["{ x, y } tensors", () => ({ x: tf.tensor2d(x), y: tf.tensor1d(y) })],
    ["examples of number arrays", () => data],
    ["examples of Float32Arrays", () => data.map((r) => ({ x: Float32Array.from(r.x), y: r.y }))],
    ["examples of tensors", () => data.map((r) => ({ x: tf.tensor1d(r.x), y: r.y }))],
    [
      "a sync iterable",
      () => ({
        *[Symbol.iterator]() {
          yield* data;
        },
      }),
    ],
    [
      "a generator",
      () =>
        (function* () {
          yield* data;
        })(),
    ],
    [
      "an async iterable",
      () => ({
        async *[Symbol.asyncIterator]() {
          for (const r of data) {
            await Promise.resolve();
            yield r;
          }
        },
      }),
    ],
  ];

  test.each(forms)("%s", async (_, make) => {
    const expected = await collect(loader(data));
    expect(expected.map((b) => b.x!.shape)).toEqual([
      [3, 4],
      [3, 4],
      [1, 4],
    ]);
    expect(expected[0]!.y).toEqual({ shape: [3], dtype: "float32", values: [0, 1, 2] });
    expect(await collect(loader(make()))).toEqual(expected);
  });

  test("in-memory forms give the same shuffled batches", async () => {
    const expected = await collect(loader(data, { shuffle: true }), 1);
    for (const [name, make] of forms.slice(0, 4)) {
      const got = await collect(loader(make(), { shuffle: true }), 1);
      expect(got, name).toEqual(expected);
    }
  });

  test("nested arrays keep their shape, like a tensor of rank 3", async () => {
    const images = Array.from({ length: 5 }, (_, i) => [
      [i, i + 1, i + 2],
      [-i, 0.5, i * 2],
    ]);
    const fromArrays = await collect(loader(images.map((image, i) => ({ x: image, y: i }))));
    const fromTensor = await collect(
      loader({ x: tf.tensor3d(images), y: tf.tensor1d([0, 1, 2, 3, 4]) }),
    );
    expect(fromArrays[0]!.x!.shape).toEqual([3, 2, 3]);
    expect(fromArrays).toEqual(fromTensor);
  });

  test("Int32Array labels and int32 tensors stay int32", async () => {
    const fromTyped = await collect(loader(data.map((r) => ({ x: r.x, y: Int32Array.of(r.y) }))));
    expect(fromTyped[0]!.y).toEqual({ shape: [3, 1], dtype: "int32", values: [0, 1, 2] });
    const fromTensor = await collect(loader({ x: tf.tensor2d(x), y: tf.tensor1d(y, "int32") }));
    expect(fromTensor[0]!.y).toEqual({ shape: [3], dtype: "int32", values: [0, 1, 2] });
    expect(fromTensor[0]!.x!.dtype).toBe("float32");
  });

  test("typed arrays of other kinds are read as float32", async () => {
    const batches = await collect(
      loader(data.map((r) => ({ x: Uint8Array.from(r.x.map(Math.abs)), y: r.y }))),
    );
    expect(batches[0]!.x).toEqual({
      shape: [3, 4],
      dtype: "float32",
      values: [0, 0, 0, 0, 1, 1, 1, 0, 2, 2, 2, 0],
    });
  });

  test("a dataset's own tensors are copied: disposing them after toDataset is safe", async () => {
    const xs = tf.tensor2d(x);
    const ys = tf.tensor1d(y);
    const dataset = toDataset({ x: xs, y: ys }, "trainDataset");
    tf.dispose([xs, ys]);
    const batches = await collect(
      new DataLoader(dataset, {
        batchSize: 3,
        shuffle: false,
        dropLast: false,
        seed: 0,
        name: "trainDataset",
      }),
    );
    expect(batches).toEqual(await collect(loader(data)));
  });
});

describe("custom collator", () => {
  test("receives the user's own examples, batch by batch, and its batch is used", async () => {
    const data = rows(7);
    const received: Example[][] = [];
    const collator = (examples: Example[]) => {
      received.push(examples);
      return {
        x: tf.tensor2d(examples.map((e) => e.x as number[])),
        y: tf.tensor1d(examples.map((e) => (e.y as number) * 10)),
      };
    };
    const dataset = toDataset(data, "trainDataset", { collator: true });
    const options = {
      batchSize: 3,
      shuffle: false,
      dropLast: false,
      seed: 0,
      name: "trainDataset",
    };
    const batches = await collect(new DataLoader(dataset, { ...options, collator }));
    expect(received.map((b) => b.length)).toEqual([3, 3, 1]);
    expect(received[0]![0]).toBe(data[0]);
    expect(batches[0]!.y!.values).toEqual([0, 10, 20]);
  });

  test("from columns (no collator option), it gets plain values: numbers and typed array rows", async () => {
    const received: Example[] = [];
    const collator = (examples: Example[]) => {
      received.push(...examples);
      return { x: tf.zeros([examples.length, 1]) };
    };
    await collect(loader(rows(4), { collator }));
    expect(received[2]!.y).toBe(2);
    expect(received[2]!.x).toBeInstanceOf(Float32Array);
    expect(Array.from(received[2]!.x as Float32Array)).toEqual(rows(4)[2]!.x);
  });

  test("with a collator, examples may hold anything it can batch (text, ragged lists)", async () => {
    const data = [
      { text: "a b c", ids: [1, 2, 3], label: 0 },
      { text: "d", ids: [4], label: 1 },
      { text: "e f", ids: [5, 6], label: 1 },
    ];
    // Pads ids to the longest in the batch, as HF's DataCollatorWithPadding does.
    const collator = (examples: Example[]) => {
      const lists = examples.map((e) => e.ids as number[]);
      const width = Math.max(...lists.map((l) => l.length));
      return {
        x: tf.tensor2d(lists.map((l) => [...l, ...Array<number>(width - l.length).fill(0)])),
        y: tf.tensor1d(
          examples.map((e) => e.label as number),
          "int32",
        ),
      };
    };
    expect(() => toDataset(data, "trainDataset")).toThrow(
      /trainDataset\[0\]\.text must be a number/,
    );
    const dataset = toDataset(data, "trainDataset", { collator: true });
    const options = {
      batchSize: 2,
      shuffle: false,
      dropLast: false,
      seed: 0,
      name: "trainDataset",
    };
    const batches = await collect(new DataLoader(dataset, { ...options, collator }));
    expect(batches.map((b) => b.x!.shape)).toEqual([
      [2, 3],
      [1, 2],
    ]);
    expect(() => new DataLoader(dataset, options)).toThrow(/no dataCollator was given/);
    expect(() => toDataset([], "trainDataset", { collator: true })).toThrow(
      /trainDataset is empty/,
    );
    expect(() =>
      toDataset([5] as unknown as Example[], "trainDataset", { collator: true }),
    ).toThrow(/trainDataset\[0\] must be an object of fields/);
  });

  test("gets plain values from a { x, y } tensor dataset (typed array rows, nested for rank ≥ 2)", async () => {
    const received: Example[] = [];
    const collator = (examples: Example[]) => {
      received.push(...examples);
      return { x: tf.zeros([examples.length, 1]) };
    };
    await collect(
      loader(
        {
          x: tf.tensor2d([
            [1, 2],
            [3, 4],
          ]),
          y: tf.tensor1d([5, 6]),
          m: tf.tensor3d([[[1, 2]], [[3, 4]]]),
        },
        { collator },
      ),
    );
    expect(received[1]!.y).toBe(6);
    expect(Array.from(received[1]!.x as Float32Array)).toEqual([3, 4]);
    expect(received[1]!.m).toEqual([[3, 4]]);
  });

  test("receives a stream's examples as they came", async () => {
    const data = rows(5);
    const received: Example[] = [];
    const collator = (examples: Example[]) => {
      received.push(...examples);
      return { x: tf.tensor2d(examples.map((e) => e.x as number[])) };
    };
    await collect(
      loader(
        {
          *[Symbol.iterator]() {
            yield* data;
          },
        },
        { collator },
      ),
    );
    expect(received).toEqual(data);
    expect(received[0]).toBe(data[0]);
  });

  test("a collator that returns something else than tensors is a clear error", async () => {
    const bad = loader(rows(4), { collator: () => ({ x: [1, 2, 3] }) as unknown as Batch });
    await expect(collect(bad)).rejects.toThrow(
      /dataCollator must return an object of tensors .* for trainDataset; it returned x: an array/,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Through the Trainer
// ---------------------------------------------------------------------------------------------

function makeArgs(options: TrainingArgumentsOptions = {}): TrainingArgumentsOptions {
  const outputDir = mkdtempSync(join(tmpdir(), "trainkit-data-"));
  dirs.push(outputDir);
  return {
    outputDir,
    reportTo: "none",
    disableTqdm: true,
    backend: "cpu",
    saveStrategy: "no",
    perDeviceTrainBatchSize: 4,
    perDeviceEvalBatchSize: 4,
    ...options,
  };
}

let modelCount = 0;

/** A linear model that records the x of every batch it trains on. */
function recordingModel(): TrainableModel & { seen: number[][][]; w: tf.Variable } {
  const id = modelCount++;
  const w = tf.tidy(() =>
    tf.variable(tf.tensor2d([[0.1], [0.2], [-0.1], [0.05]]), true, `data_test_${id}/kernel`),
  );
  const seen: number[][][] = [];
  return {
    w,
    seen,
    trainableVariables: () => [w],
    computeLoss(batch, { training }) {
      if (training) seen.push(batch.x!.arraySync() as number[][]);
      const prediction = tf.matMul(batch.x!, w);
      return tf.mean(tf.square(tf.sub(tf.reshape(prediction, [-1]), batch.y!))) as tf.Scalar;
    },
    predict: (batch) => tf.matMul(batch.x!, w),
  };
}

describe("the Trainer with each dataset form", () => {
  test("{ x, y } tensors and an array of examples train identically (same seed, same shuffle)", async () => {
    const data = rows(10);
    const results: number[][] = [];
    for (const trainDataset of [
      { x: tf.tensor2d(data.map((r) => r.x)), y: tf.tensor1d(data.map((r) => r.y)) },
      data,
    ] as DatasetInput[]) {
      const model = recordingModel();
      const trainer = new Trainer({
        model,
        args: makeArgs({ numTrainEpochs: 2, learningRate: 0.01 }),
        trainDataset,
      });
      await trainer.train();
      results.push(Array.from(model.w.dataSync()));
      trainer.optimizer!.dispose();
      model.w.dispose();
    }
    expect(results[0]).toEqual(results[1]);
  });

  test("a stream is trained on in its own order (no shuffle)", async () => {
    const data = rows(10);
    const model = recordingModel();
    const trainer = new Trainer({
      model,
      args: makeArgs({ maxSteps: 3 }),
      trainDataset: {
        *[Symbol.iterator]() {
          yield* data;
        },
      },
    });
    await trainer.train();
    expect(model.seen.flat()).toEqual(data.slice(0, 10).map((r) => r.x));
    trainer.optimizer!.dispose();
    model.w.dispose();
  });

  test("an in-memory dataset is shuffled with the seed: epochs differ, runs repeat", async () => {
    const data = rows(8);
    const orders: number[][][] = [];
    for (let run = 0; run < 2; run++) {
      const model = recordingModel();
      const trainer = new Trainer({
        model,
        args: makeArgs({ numTrainEpochs: 2, seed: 7 }),
        trainDataset: data,
      });
      await trainer.train();
      orders.push(model.seen.map((batch) => batch.map((row) => row[0]!)));
      trainer.optimizer!.dispose();
      model.w.dispose();
    }
    expect(orders[0]).toEqual(orders[1]);
    const [epoch0, epoch1] = [orders[0]!.slice(0, 2).flat(), orders[0]!.slice(2).flat()];
    expect(epoch0).not.toEqual(epoch1);
    expect([...epoch0].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(epoch0).toEqual(Array.from(epochPermutation(8, 7, 0)));
  });
});

/** Counts live tensors at each epoch start. */
class TensorCounter extends TrainerCallback {
  counts: number[] = [];
  override onEpochBegin(_args: TrainingArguments, _state: TrainerState, control: TrainerControl) {
    this.counts.push(tf.memory().numTensors);
    return control;
  }
}

describe("the Trainer disposes every batch", () => {
  const cases: [string, Partial<ConstructorParameters<typeof Trainer>[0]>][] = [
    ["tensors", {}],
    [
      "a custom collator",
      {
        dataCollator: (examples: Example[]) => ({
          x: tf.tensor2d(examples.map((e) => Array.from(e.x as ArrayLike<number>))),
          y: tf.tensor1d(examples.map((e) => e.y as number)),
        }),
      },
    ],
  ];

  test.each(cases)(
    "no tensor growth across epochs, nothing left after training (%s)",
    async (_, extra) => {
      const data = rows(18);
      const model = recordingModel();
      const counter = new TensorCounter();
      const before = tf.memory().numTensors;
      const trainer = new Trainer({
        model,
        args: makeArgs({
          numTrainEpochs: 4,
          loggingStrategy: "epoch",
          evalStrategy: "epoch",
          maxGradNorm: 1,
        }),
        trainDataset: data,
        evalDataset: data.slice(0, 6),
        callbacks: [counter],
        ...extra,
      });
      await trainer.train();
      expect(counter.counts).toHaveLength(4);
      // From the second epoch on (the optimizer's slots and the last grad norm exist), flat.
      expect(new Set(counter.counts.slice(1)).size).toBe(1);
      trainer.optimizer!.dispose();
      expect(tf.memory().numTensors).toBe(before);
      model.w.dispose();
    },
  );

  test("the same for a stream", async () => {
    const data = rows(18);
    const model = recordingModel();
    const before = tf.memory().numTensors;
    const trainer = new Trainer({
      model,
      args: makeArgs({ maxSteps: 4, loggingSteps: 2 }),
      trainDataset: {
        *[Symbol.iterator]() {
          yield* data;
        },
      },
    });
    await trainer.train();
    trainer.optimizer!.dispose();
    expect(tf.memory().numTensors).toBe(before);
    model.w.dispose();
  });
});

describe("InMemoryDataset", () => {
  test("batch() copies the rows asked for", () => {
    const dataset = toDataset(rows(5), "trainDataset") as InMemoryDataset;
    const batch = dataset.batch(Int32Array.of(4, 0, 2), 1, 3);
    expect(batch.x!.arraySync()).toEqual([rows(5)[0]!.x, rows(5)[2]!.x]);
    tf.dispose(batch);
  });
});

// Bad input: every mistake is a clear error before any work is done (no step, no checkpoint,
// weights unchanged, no callback event beyond those that already ran), and each message names
// what is wrong and how to fix it.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import {
  CALLBACK_EVENTS,
  setLogger,
  Trainer,
  TrainerCallback,
  type CallbackEvent,
  type ComputeMetrics,
  type DatasetInput,
  type Example,
  type TrainableModel,
  type TrainerControl,
  type TrainerOptions,
  type TrainingArgumentsOptions,
} from "../src/index.js";

const dirs: string[] = [];

beforeAll(async () => {
  await tf.setBackend("cpu");
  setLogger({ info() {}, warn() {} });
});

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Records every event it receives. */
class Recorder extends TrainerCallback {
  events: CallbackEvent[] = [];
  constructor() {
    super();
    for (const event of CALLBACK_EVENTS) {
      Object.defineProperty(this, event, {
        value: (_args: unknown, _state: unknown, control: TrainerControl) => {
          this.events.push(event);
          return control;
        },
      });
    }
  }
}

function makeArgs(options: TrainingArgumentsOptions = {}): TrainingArgumentsOptions {
  const outputDir = join(mkdtempSync(join(tmpdir(), "trainkit-bad-input-")), "out");
  dirs.push(outputDir);
  return {
    outputDir,
    reportTo: "none",
    disableTqdm: true,
    backend: "cpu",
    saveSteps: 1,
    loggingSteps: 1,
    perDeviceTrainBatchSize: 4,
    perDeviceEvalBatchSize: 4,
    ...options,
  };
}

/** A Dense(1) on 4 inputs, with fixed weights. */
function denseModel(options: { trainable?: boolean } = {}): tf.LayersModel {
  return tf.sequential({
    layers: [
      tf.layers.dense({
        units: 1,
        inputShape: [4],
        kernelInitializer: "ones",
        trainable: options.trainable ?? true,
      }),
    ],
  });
}

/** n good examples: x has 4 values, y is a number. */
function examples(n: number): { x: number[]; y: number }[] {
  return Array.from({ length: n }, (_, i) => ({ x: [i, 1, -i, 0.5], y: i % 2 }));
}

const models: tf.LayersModel[] = [];
afterEach(() => {
  for (const model of models.splice(0)) model.dispose();
});

interface Attempt {
  model?: unknown;
  options?: Partial<TrainerOptions>;
  args?: TrainingArgumentsOptions;
  /** What to call once the Trainer is built: train() unless told. */
  run?: (trainer: Trainer) => Promise<unknown>;
}

/**
 * Builds a Trainer and runs it, expecting `pattern` to be thrown before any work, and returns
 * the events that ran (onInitEnd when the constructor succeeded).
 */
async function expectRejected(
  { model: given, options = {}, args = {}, run = (t) => t.train() }: Attempt,
  pattern: RegExp,
  allowedEvents: CallbackEvent[] = ["onInitEnd"],
): Promise<Error> {
  const model = given ?? denseModel();
  if (model instanceof tf.LayersModel) models.push(model);
  const weights =
    model instanceof tf.LayersModel ? model.getWeights().map((w) => Array.from(w.dataSync())) : [];
  const recorder = new Recorder();
  const fullArgs = makeArgs(args);
  let error: unknown;
  try {
    const trainer = new Trainer({
      model: model as TrainerOptions["model"],
      loss: "meanSquaredError",
      args: fullArgs,
      trainDataset: examples(8),
      callbacks: [recorder],
      ...options,
    });
    await run(trainer);
  } catch (caught) {
    error = caught;
  }
  expect(error, "an error was expected").toBeInstanceOf(Error);
  expect((error as Error).message).toMatch(pattern);
  // No work: no checkpoint, weights unchanged, no event beyond those allowed.
  const outputDir = fullArgs.outputDir!;
  const entries = existsSync(outputDir) ? readdirSync(outputDir) : [];
  expect(entries.filter((name) => /^checkpoint-\d+$/.test(name))).toEqual([]);
  if (model instanceof tf.LayersModel)
    expect(model.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(weights);
  const unexpected = recorder.events.filter((event) => !allowedEvents.includes(event));
  expect(unexpected, `events after the error: ${recorder.events.join(", ")}`).toEqual([]);
  return error as Error;
}

/** The error thrown at construction: no event at all. */
const AT_CONSTRUCTION: CallbackEvent[] = [];

describe("empty datasets", () => {
  test("an empty array", async () => {
    await expectRejected(
      { options: { trainDataset: [] } },
      /^trainDataset is empty: it has no examples\. Pass at least one example\.$/,
      AT_CONSTRUCTION,
    );
  });

  test("zero-row tensors", async () => {
    await expectRejected(
      { options: { trainDataset: { x: tf.zeros([0, 4]), y: tf.zeros([0]) } } },
      /trainDataset is empty: its tensors have 0 rows \(x has shape \[0,4\]\)\. Pass at least one example\./,
      AT_CONSTRUCTION,
    );
  });

  test("an empty evalDataset", async () => {
    await expectRejected(
      { options: { evalDataset: [] }, args: { evalStrategy: "steps", evalSteps: 1 } },
      /^evalDataset is empty/,
      AT_CONSTRUCTION,
    );
  });

  test("an empty dataset given to evaluate() or predict()", async () => {
    await expectRejected({ run: (t) => t.evaluate([]) }, /^evalDataset is empty/);
    await expectRejected({ run: (t) => t.predict([]) }, /^testDataset is empty/);
  });
});

describe("a batch larger than the dataset with dataloaderDropLast", () => {
  test("trainDataset: train() stops before onTrainBegin", async () => {
    await expectRejected(
      {
        options: { trainDataset: examples(5) },
        args: { dataloaderDropLast: true, perDeviceTrainBatchSize: 8 },
      },
      /trainDataset has 5 examples, fewer than one batch of 8, and dataloaderDropLast is set, so there would be no batch at all\. Set perDeviceTrainBatchSize to 5 or less, or turn dataloaderDropLast off\./,
    );
  });

  test("without dataloaderDropLast the short batch is used", async () => {
    const model = denseModel();
    models.push(model);
    const trainer = new Trainer({
      model,
      loss: "mse",
      args: makeArgs({ perDeviceTrainBatchSize: 8, saveStrategy: "no", numTrainEpochs: 1 }),
      trainDataset: examples(5),
    });
    expect((await trainer.train()).globalStep).toBe(1);
  });

  // The Trainer builds the eval DataLoader in its constructor, so this fails before training.
  test("evalDataset: an error before training starts, not at the first evaluation", async () => {
    await expectRejected(
      {
        options: { evalDataset: examples(3) },
        args: {
          dataloaderDropLast: true,
          perDeviceEvalBatchSize: 4,
          evalStrategy: "steps",
          evalSteps: 2,
        },
      },
      /evalDataset has 3 examples, fewer than one batch of 4, and dataloaderDropLast is set.*Set perDeviceEvalBatchSize to 3 or less/,
      AT_CONSTRUCTION,
    );
  });
});

describe("a model with no trainable variables", () => {
  test("a LayersModel whose layers are all trainable: false", async () => {
    await expectRejected(
      { model: denseModel({ trainable: false }) },
      /The model has no trainable variables: there is nothing to train\..*leave them trainable/,
      AT_CONSTRUCTION,
    );
  });

  test("a LayersModel set trainable = false", async () => {
    const model = denseModel();
    model.trainable = false;
    await expectRejected({ model }, /The model has no trainable variables/, AT_CONSTRUCTION);
  });

  test("a TrainableModel returning []", async () => {
    const model: TrainableModel = {
      trainableVariables: () => [],
      computeLoss: () => tf.scalar(0),
      predict: () => tf.zeros([1]),
    };
    await expectRejected({ model }, /The model has no trainable variables/, AT_CONSTRUCTION);
  });
});

describe("a trainable variable that computeLoss does not use", () => {
  test('an error naming the variable and the fix (tfjs would say "got null")', async () => {
    const used = tf.variable(tf.ones([4, 1]), true, "bad_input_used_kernel");
    const unused = tf.variable(tf.zeros([3]), true, "bad_input_unused_head");
    const model: TrainableModel = {
      trainableVariables: () => [used, unused],
      computeLoss: (batch) =>
        tf.losses.meanSquaredError(tf.reshape(batch.y!, [-1, 1]), tf.matMul(batch.x!, used)),
      predict: (batch) => tf.matMul(batch.x!, used),
    };
    const before = used.dataSync().slice();
    try {
      await expectRejected(
        { model },
        /The trainable variable "bad_input_unused_head" got no gradient: it is not used by computeLoss; make it non-trainable or leave it out of trainableVariables\(\)\./,
        ["onInitEnd", "onTrainBegin", "onEpochBegin", "onStepBegin"],
      );
      expect(used.dataSync()).toEqual(before);
    } finally {
      used.dispose();
      unused.dispose();
    }
  });
});

describe("inconsistent data", () => {
  test("x and y of different lengths", async () => {
    await expectRejected(
      { options: { trainDataset: { x: tf.zeros([10, 4]), y: tf.zeros([9]) } } },
      /trainDataset: x has 10 examples \(shape \[10,4\]\) but y has 9 \(shape \[9\]\); every field needs one row per example\./,
      AT_CONSTRUCTION,
    );
  });

  test("example 5 has 3 values where example 0 has 4", async () => {
    const data: Example[] = examples(8);
    data[5] = { x: [1, 2, 3], y: 0 };
    await expectRejected(
      { options: { trainDataset: data } },
      /^trainDataset\[5\]\.x has 3 values but trainDataset\[0\]\.x has 4; every example's x must have the shape of the first \(\[4\]\)\. Pad or trim/,
      AT_CONSTRUCTION,
    );
  });

  test("a number where the first example has an array", async () => {
    const data: Example[] = examples(8);
    data[2] = { x: 7, y: 0 };
    await expectRejected(
      { options: { trainDataset: data } },
      /^trainDataset\[2\]\.x is number 7 where an array of shape \[4\] was expected/,
      AT_CONSTRUCTION,
    );
  });

  test("nested arrays of a different inner length", async () => {
    const data = Array.from({ length: 4 }, () => ({
      x: [
        [1, 2],
        [3, 4],
      ],
      y: 0,
    })) as Example[];
    data[3] = { x: [[1, 2, 3], [4]], y: 0 };
    await expectRejected(
      { options: { trainDataset: data } },
      /^trainDataset\[3\]\.x\[0\] has 3 values but trainDataset\[0\]\.x\[0\] has 2/,
      AT_CONSTRUCTION,
    );
  });

  test("a ragged first example", async () => {
    const data: Example[] = [{ x: [[1, 2], [3]], y: 0 }];
    await expectRejected(
      { options: { trainDataset: data } },
      /^trainDataset\[0\]\.x is ragged: trainDataset\[0\]\.x\[1\] has 1 values where 2 were expected/,
      AT_CONSTRUCTION,
    );
  });

  test("a non-numeric value inside an array", async () => {
    const data: Example[] = examples(8);
    data[3] = { x: [1, "a", 3, 4], y: 0 };
    await expectRejected(
      { options: { trainDataset: data } },
      /^trainDataset\[3\]\.x\[1\] is the string "a"; every value must be a number\. Encode text and categories as numbers first/,
      AT_CONSTRUCTION,
    );
  });

  test("a string label in the first example", async () => {
    const data: Example[] = examples(8);
    data[0] = { x: [1, 2, 3, 4], y: "cat" };
    await expectRejected(
      { options: { trainDataset: data } },
      /^trainDataset\[0\]\.y must be a number, an array of numbers, a typed array or a tensor; got the string "cat"\. Encode/,
      AT_CONSTRUCTION,
    );
  });

  test("null and objects", async () => {
    const withNull: Example[] = examples(8);
    withNull[4] = { x: [1, null, 3, 4], y: 0 };
    await expectRejected(
      { options: { trainDataset: withNull } },
      /^trainDataset\[4\]\.x\[1\] is null; every value must be a number/,
      AT_CONSTRUCTION,
    );
    const withObject: Example[] = examples(8);
    withObject[6] = { x: [1, 2, 3, 4], y: { label: 1 } };
    await expectRejected(
      { options: { trainDataset: withObject } },
      /^trainDataset\[6\]\.y is an object \(Object\); every value must be a number/,
      AT_CONSTRUCTION,
    );
  });

  test("a fractional value in an int32 field", async () => {
    const data: Example[] = examples(4).map((e) => ({ ...e, y: Int32Array.of(1) }));
    data[2] = { x: [1, 2, 3, 4], y: [0.5] };
    await expectRejected(
      { options: { trainDataset: data } },
      /^trainDataset\[2\]\.y\[0\] is 0\.5, but this field is int32/,
      AT_CONSTRUCTION,
    );
  });

  test("an example that is not an object", async () => {
    const data: Example[] = examples(8);
    data[7] = 3 as unknown as Example;
    await expectRejected(
      { options: { trainDataset: data } },
      /^trainDataset\[7\] must be an object of fields such as \{ x: \[\.\.\.\], y: 0 \}; got number 3\./,
      AT_CONSTRUCTION,
    );
  });

  test("a field missing from an example", async () => {
    const data: Example[] = examples(8);
    data[2] = { x: [1, 2, 3, 4] };
    await expectRejected(
      { options: { trainDataset: data } },
      /^trainDataset\[2\]\.y is missing; every example needs the fields of the first \(x, y\)\./,
      AT_CONSTRUCTION,
    );
  });

  test("an example without fields", async () => {
    await expectRejected(
      { options: { trainDataset: [{}, {}] } },
      /^trainDataset\[0\] has no fields/,
      AT_CONSTRUCTION,
    );
  });

  test("a string tensor", async () => {
    await expectRejected(
      { options: { trainDataset: { x: tf.zeros([2, 4]), y: tf.tensor1d(["a", "b"], "string") } } },
      /trainDataset\.y has dtype string; only numeric tensors/,
      AT_CONSTRUCTION,
    );
  });

  test("a { x, y } record with a field that is not a tensor", async () => {
    await expectRejected(
      {
        options: {
          trainDataset: { x: tf.zeros([2, 4]), y: [0, 1] } as unknown as DatasetInput,
        },
      },
      /^trainDataset\.y is an array \(length 2\), not a tf\.Tensor: in the \{ x: Tensor, y: Tensor \} form every field must be a tensor/,
      AT_CONSTRUCTION,
    );
  });

  test.each([
    ["a string", "data.csv"],
    ["a number", 42],
    ["null", null],
  ])("a dataset that is %s", async (_, value) => {
    await expectRejected(
      { options: { trainDataset: value as unknown as DatasetInput } },
      /^trainDataset must be \{ x: Tensor, y: Tensor \}, an array of examples .*, or an \(async\) iterable of examples; got/,
      AT_CONSTRUCTION,
    );
  });

  test("a bad example in a stream names its index in the stream", async () => {
    // A stream is only read as it trains: the steps before the bad batch run, as in HF.
    const data: Example[] = examples(12);
    data[9] = { x: [1, 2, 3], y: 0 };
    const model = denseModel();
    models.push(model);
    const trainer = new Trainer({
      model,
      loss: "mse",
      args: makeArgs({ maxSteps: 5, saveStrategy: "no" }),
      trainDataset: {
        *[Symbol.iterator]() {
          yield* data;
        },
      },
    });
    await expect(trainer.train()).rejects.toThrow(
      /^trainDataset\[9\]\.x has 3 values but trainDataset\[8\]\.x has 4/,
    );
  });
});

describe("computeMetrics returning non-numbers", () => {
  async function evaluateWith(metrics: unknown) {
    return expectRejected(
      {
        options: {
          evalDataset: examples(6),
          computeMetrics: (() => metrics) as unknown as ComputeMetrics,
        },
        run: (t) => t.evaluate(),
      },
      /./,
      ["onInitEnd", "onPredictionStep"],
    );
  }

  test("a string", async () => {
    const error = await evaluateWith({ accuracy: "0.9" });
    expect(error.message).toMatch(
      /computeMetrics returned accuracy: "0\.9" \(string\); every metric must be a number\. Read tensors with \.dataSync\(\)\[0\]/,
    );
  });

  test("an object", async () => {
    const error = await evaluateWith({ f1: 0.5, detail: { a: 1 } });
    expect(error.message).toMatch(/computeMetrics returned detail: \{"a":1\} \(object\)/);
  });

  test("not an object", async () => {
    const error = await evaluateWith(0.9);
    expect(error.message).toMatch(
      /computeMetrics must return an object of numbers such as \{ accuracy: 0\.9 \}; it returned 0\.9/,
    );
  });

  test("NaN is a number and is allowed", async () => {
    const model = denseModel();
    models.push(model);
    const trainer = new Trainer({
      model,
      loss: "mse",
      args: makeArgs(),
      evalDataset: examples(6),
      computeMetrics: () => ({ score: Number.NaN, accuracy: 1 }),
    });
    const metrics = await trainer.evaluate();
    expect(metrics.eval_score).toBeNaN();
    expect(metrics.eval_accuracy).toBe(1);
  });
});

describe("configuration", () => {
  test("an evalStrategy without an evalDataset", async () => {
    await expectRejected(
      { args: { evalStrategy: "steps", evalSteps: 2 } },
      /^evalStrategy is "steps" but no evalDataset was given\. Pass evalDataset, or set evalStrategy to "no"\./,
      AT_CONSTRUCTION,
    );
  });

  test("a LayersModel without a loss", async () => {
    await expectRejected(
      { options: { loss: undefined } },
      /^A tf\.LayersModel needs a loss: pass loss: "meanSquaredError" \(or another Keras loss name, or a function\) to the Trainer\./,
      AT_CONSTRUCTION,
    );
  });

  test("a compiled LayersModel brings its own loss", async () => {
    const model = denseModel();
    models.push(model);
    model.compile({ loss: "meanSquaredError", optimizer: "sgd" });
    const trainer = new Trainer({
      model,
      args: makeArgs({ saveStrategy: "no", maxSteps: 1 }),
      trainDataset: examples(4),
    });
    expect((await trainer.train()).globalStep).toBe(1);
  });

  test("an unknown loss name lists the valid names", async () => {
    await expectRejected(
      { options: { loss: "meanSquareError" } },
      /^Unknown loss "meanSquareError"\. Use one of meanSquaredError, meanAbsoluteError, .*categoricalCrossentropy, sparseCategoricalCrossentropy, binaryCrossentropy.*, or pass a function/,
      AT_CONSTRUCTION,
    );
  });

  test("a stream trainDataset without maxSteps", async () => {
    await expectRejected(
      {
        options: {
          trainDataset: {
            *[Symbol.iterator]() {
              yield* examples(8);
            },
          },
        },
      },
      /^trainDataset is a stream with no length, so the number of steps is unknown: set maxSteps in TrainingArguments\./,
    );
  });

  test("an async stream without maxSteps", async () => {
    await expectRejected(
      {
        options: {
          trainDataset: {
            async *[Symbol.asyncIterator]() {
              yield* examples(8);
            },
          },
        },
      },
      /set maxSteps in TrainingArguments/,
    );
  });

  test("resumeFromCheckpoint: true with nothing to resume", async () => {
    const error = await expectRejected(
      { run: (t) => t.train({ resumeFromCheckpoint: true }) },
      /^resumeFromCheckpoint is true but .* holds no checkpoint-<step> folder to resume from\./,
    );
    expect(error.message).toContain("trainkit-bad-input-");
  });

  test("resumeFromCheckpoint: true with an output folder that has no checkpoint", async () => {
    const args = makeArgs();
    mkdirSync(join(args.outputDir!, "checkpoint-notanumber"), { recursive: true });
    await expectRejected(
      { args, run: (t) => t.train({ resumeFromCheckpoint: true }) },
      /holds no checkpoint-<step> folder to resume from/,
    );
  });

  test("resumeFromCheckpoint: a folder that does not exist", async () => {
    await expectRejected(
      { run: (t) => t.train({ resumeFromCheckpoint: "/nonexistent/checkpoint-5" }) },
      /^Cannot resume: checkpoint folder \/nonexistent\/checkpoint-5 does not exist\./,
    );
  });

  test.each([
    ["an empty object", {}],
    ["null", null],
    ["a tensor", tf.zeros([1])],
    ["a function", () => 1],
    [
      "an object missing predict",
      { trainableVariables: () => [], computeLoss: () => tf.scalar(0) },
    ],
  ])("a model that is %s", async (_, model) => {
    await expectRejected(
      { model: model ?? { notAModel: true }, options: { model: model as TrainerOptions["model"] } },
      /^model must be a tf\.LayersModel or implement TrainableModel \(trainableVariables, computeLoss, predict\)\./,
      AT_CONSTRUCTION,
    );
  });

  test("a LayersModel with two outputs", async () => {
    const input = tf.input({ shape: [4] });
    const model = tf.model({
      inputs: input,
      outputs: [
        tf.layers.dense({ units: 1 }).apply(input),
        tf.layers.dense({ units: 2 }).apply(input),
      ] as tf.SymbolicTensor[],
    });
    await expectRejected(
      { model },
      /^The model has 1 inputs and 2 outputs; the Trainer adapts a tf\.LayersModel with one input \("x"\) and one output \("y"\)\. For more, implement TrainableModel/,
      AT_CONSTRUCTION,
    );
  });
});

describe("shapes that do not fit the model", () => {
  // The Trainer checks example shapes against the model in its constructor, so these are
  // errors before any event.
  const x3: Example[] = Array.from({ length: 8 }, (_, i) => ({ x: [i, 1, 2], y: 0 }));
  const y2: Example[] = examples(8).map((e) => ({ ...e, y: [e.y, 1] }));
  const firstStep: CallbackEvent[] = ["onInitEnd", "onTrainBegin", "onEpochBegin", "onStepBegin"];

  test("x of the wrong width: an error naming both shapes, before any weight changes", async () => {
    await expectRejected(
      { options: { trainDataset: x3 } },
      /^(The batch's x|trainDataset: x) has shape \[3\] per example but the model's input takes \[4\] \(without the batch dimension\)\. Reshape the examples or change the model's inputShape\./,
      firstStep,
    );
  });

  test("y of a shape the loss cannot take: an error naming both shapes, before any weight changes", async () => {
    await expectRejected(
      { options: { trainDataset: y2 } },
      /^(The batch|trainDataset): y has shape \[2\] per example but the model's output is \[1\]; the loss needs labels of the output's shape/,
      firstStep,
    );
  });

  test("x of the wrong width: rejected at construction", async () => {
    await expectRejected(
      { options: { trainDataset: x3 } },
      /trainDataset: x has shape \[3\] per example but the model's input takes \[4\]/,
      AT_CONSTRUCTION,
    );
  });

  test("y of the wrong shape: rejected at construction", async () => {
    await expectRejected(
      { options: { trainDataset: y2 } },
      /trainDataset: y has shape \[2\] per example but the model's output is \[1\]/,
      AT_CONSTRUCTION,
    );
  });

  test("labels of shape [n] for an output [n, 1] train (as a column, like model.fit)", async () => {
    const model = denseModel();
    models.push(model);
    const trainer = new Trainer({
      model,
      loss: "mse",
      args: makeArgs({ saveStrategy: "no", maxSteps: 2 }),
      trainDataset: examples(8),
    });
    const output = await trainer.train();
    expect(Number.isFinite(output.trainingLoss)).toBe(true);
  });
});

describe("a dataCollator with examples the Trainer cannot stack", () => {
  // toDataset keeps raw examples for a collator only when told ({ collator: true }); trainer.ts
  // does not pass it yet (see the report). Flip to `test` then.
  test("text fields and ragged lists reach the collator", async () => {
    const model = denseModel();
    models.push(model);
    const data = [
      { text: "a b", ids: [1, 2], label: 0 },
      { text: "c", ids: [3], label: 1 },
    ];
    const trainer = new Trainer({
      model,
      loss: "mse",
      args: makeArgs({ saveStrategy: "no", maxSteps: 1, perDeviceTrainBatchSize: 2 }),
      trainDataset: data,
      dataCollator: (batch) => ({
        x: tf.zeros([batch.length, 4]),
        y: tf.tensor1d(batch.map((e) => e.label as number)),
      }),
    });
    expect((await trainer.train()).globalStep).toBe(1);
  });
});

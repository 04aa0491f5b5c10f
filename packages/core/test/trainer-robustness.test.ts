// Robustness: what happens around the happy path. A second train() on one Trainer, training or
// evaluation that fails halfway (no tensor may leak), callbacks that stop inside a gradient
// accumulation group, a stream that runs dry, a checkpoint that cannot be written or an old one
// that cannot be deleted, and freeing the Trainer's own tensors with dispose().
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import {
  LrScheduler,
  PrinterCallback,
  Trainer,
  TrainerCallback,
  createOptimizer,
  setLogger,
  type Example,
  type Logger,
  type TrainerControl,
  type TrainerOptions,
  type TrainerState,
  type TrainingArguments,
  type TrainingArgumentsOptions,
} from "../src/index.js";
import {
  deleteAllCheckpointsExcept,
  listCheckpoints,
  writeCheckpointDir,
} from "../src/trainer/checkpoint/checkpoint-dir.js";
import { fits, sameShape } from "../src/util/shapes.js";

// renameSync can be made to fail (a checkpoint that cannot be moved aside to be deleted, as a
// file held open on Windows does: EBUSY, EPERM); it is the real one otherwise.
const fsHooks = vi.hoisted(() => ({
  rename: undefined as ((from: string, to: string) => void) | undefined,
}));
vi.mock("node:fs", async (importOriginal) => {
  const actual = await importOriginal<typeof import("node:fs")>();
  const renameSync: typeof actual.renameSync = (from, to) => {
    fsHooks.rename?.(String(from), String(to));
    actual.renameSync(from, to);
  };
  return { ...actual, default: { ...actual, renameSync }, renameSync };
});

const warnings: string[] = [];
let previousLogger: Logger;
let root: string;

beforeAll(async () => {
  await tf.setBackend("cpu");
  previousLogger = setLogger({ info() {}, warn: (message: string) => warnings.push(message) });
  root = mkdtempSync(join(tmpdir(), "trainkit-robustness-"));
});

afterAll(() => {
  setLogger(previousLogger);
  rmSync(root, { recursive: true, force: true });
});

let dirCount = 0;
function freshDir(): string {
  return join(root, `run-${++dirCount}`);
}

function rows(n: number): Example[] {
  return Array.from({ length: n }, (_, i) => ({
    x: [i / n, 1 - i / n, (i % 3) / 3, 0.5],
    y: [(i % 5) / 5],
  }));
}

function makeModel(): tf.LayersModel {
  return tf.sequential({
    layers: [
      tf.layers.dense({
        units: 3,
        inputShape: [4],
        activation: "tanh",
        kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
      }),
      tf.layers.dense({ units: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
    ],
  });
}

function makeTrainer(
  model: tf.LayersModel,
  args: TrainingArgumentsOptions = {},
  options: Partial<TrainerOptions> = {},
): Trainer {
  const trainer = new Trainer({
    model,
    loss: "meanSquaredError",
    args: {
      outputDir: freshDir(),
      reportTo: "none",
      disableTqdm: true,
      backend: "cpu",
      perDeviceTrainBatchSize: 4,
      perDeviceEvalBatchSize: 4,
      learningRate: 0.1,
      saveStrategy: "no",
      ...args,
    },
    trainDataset: rows(16),
    evalDataset: rows(8),
    ...options,
  });
  trainer.removeCallback(PrinterCallback);
  return trainer;
}

/** A callback that throws in one event (optionally only from its nth call on). */
function throwingIn(event: string, nth = 1): TrainerCallback {
  const callback = new TrainerCallback();
  let calls = 0;
  Object.defineProperty(callback, event, {
    value: () => {
      if (++calls >= nth) throw new Error(`${event} failed`);
    },
  });
  return callback;
}

function learningRates(trainer: Trainer, from = 0): number[] {
  return trainer.state.logHistory
    .slice(from)
    .filter((entry) => entry.learning_rate !== undefined)
    .map((entry) => entry.learning_rate!);
}

describe("a second train() on the same Trainer", () => {
  test("runs its own learning-rate schedule (HF builds a new scheduler per training)", async () => {
    const model = makeModel();
    const trainer = makeTrainer(model, { maxSteps: 4, loggingSteps: 1 });
    await trainer.train();
    const first = learningRates(trainer);
    const firstScheduler = trainer.lrScheduler;
    await trainer.train();
    const second = learningRates(trainer);
    expect(first.map((lr) => Number(lr.toFixed(10)))).toEqual([0.1, 0.075, 0.05, 0.025]);
    // Before: the finished schedule was reused and the whole second run had learning rate 0.
    expect(second).toEqual(first);
    expect(trainer.lrScheduler).not.toBe(firstScheduler);
    trainer.dispose();
    model.dispose();
  });

  test("a scheduler passed in `optimizers` is kept and continues", async () => {
    const model = makeModel();
    const scheduler = new LrScheduler({
      type: "constant",
      baseLr: 0.05,
      warmupSteps: 0,
      totalSteps: 100,
    });
    const trainer = makeTrainer(model, { maxSteps: 3 }, { optimizers: [null, scheduler] });
    await trainer.train();
    await trainer.train();
    expect(trainer.lrScheduler).toBe(scheduler);
    expect(scheduler.stepCount).toBe(6);
    trainer.dispose();
    model.dispose();
  });
});

describe("training that fails halfway frees its tensors", () => {
  const cases: {
    what: string;
    args?: TrainingArgumentsOptions;
    setup: (trainer: Trainer) => void;
    message: RegExp;
  }[] = [
    {
      what: "a callback throwing in onPreOptimizerStep (clipped gradients in flight)",
      setup: (trainer) => trainer.addCallback(throwingIn("onPreOptimizerStep", 2)),
      message: /onPreOptimizerStep failed/,
    },
    {
      what: "a callback throwing in onPreOptimizerStep without clipping",
      args: { maxGradNorm: 0 },
      setup: (trainer) => trainer.addCallback(throwingIn("onPreOptimizerStep", 2)),
      message: /onPreOptimizerStep failed/,
    },
    {
      what: "a callback throwing in onSubstepEnd (accumulated gradients in flight)",
      args: { gradientAccumulationSteps: 2 },
      setup: (trainer) => trainer.addCallback(throwingIn("onSubstepEnd", 2)),
      message: /onSubstepEnd failed/,
    },
    {
      what: "computeLoss throwing in the middle of an accumulation group (a batch in flight)",
      args: { gradientAccumulationSteps: 2 },
      setup: (trainer) => {
        const model = trainer.model;
        const computeLoss = model.computeLoss.bind(model);
        let calls = 0;
        model.computeLoss = (batch, options) => {
          if (++calls === 4) throw new Error("computeLoss failed");
          return computeLoss(batch, options);
        };
      },
      message: /computeLoss failed/,
    },
    {
      what: "a callback throwing in onOptimizerStep",
      setup: (trainer) => trainer.addCallback(throwingIn("onOptimizerStep", 2)),
      message: /onOptimizerStep failed/,
    },
  ];

  test.each(cases)("$what", async ({ args, setup, message }) => {
    const model = makeModel();
    const baseline = tf.memory().numTensors;
    const trainer = makeTrainer(model, { maxSteps: 4, loggingSteps: 10, ...args });
    setup(trainer);
    await expect(trainer.train()).rejects.toThrow(message);
    trainer.optimizer?.dispose();
    expect(tf.memory().numTensors).toBe(baseline);
    model.dispose();
  });
});

describe("evaluate() and predict() that fail halfway free their tensors", () => {
  const cases: {
    what: string;
    run: (trainer: Trainer) => Promise<unknown>;
    options?: Partial<TrainerOptions>;
    setup?: (trainer: Trainer) => void;
    message: RegExp;
  }[] = [
    {
      what: "computeMetrics throws",
      options: {
        computeMetrics: () => {
          throw new Error("computeMetrics failed");
        },
      },
      run: (trainer) => trainer.evaluate(),
      message: /computeMetrics failed/,
    },
    {
      what: "onPredictionStep throws during evaluate()",
      setup: (trainer) => trainer.addCallback(throwingIn("onPredictionStep", 2)),
      options: { computeMetrics: () => ({ one: 1 }) },
      run: (trainer) => trainer.evaluate(),
      message: /onPredictionStep failed/,
    },
    {
      what: "onPredictionStep throws during predict()",
      setup: (trainer) => trainer.addCallback(throwingIn("onPredictionStep", 2)),
      run: (trainer) => trainer.predict(rows(8)),
      message: /onPredictionStep failed/,
    },
    {
      what: "model.predict throws on the second batch",
      setup: (trainer) => {
        const model = trainer.model;
        const predict = model.predict.bind(model);
        let calls = 0;
        model.predict = (batch) => {
          if (++calls === 2) throw new Error("predict failed");
          return predict(batch);
        };
      },
      run: (trainer) => trainer.predict(rows(8)),
      message: /predict failed/,
    },
    {
      what: "onPredict throws: predict()'s tensors never reach the caller",
      setup: (trainer) => trainer.addCallback(throwingIn("onPredict")),
      run: (trainer) => trainer.predict(rows(8)),
      message: /onPredict failed/,
    },
  ];

  test.each(cases)("$what", async ({ run, options, setup, message }) => {
    const model = makeModel();
    const trainer = makeTrainer(model, {}, options);
    setup?.(trainer);
    const baseline = tf.memory().numTensors;
    await expect(run(trainer)).rejects.toThrow(message);
    expect(tf.memory().numTensors).toBe(baseline);
    model.dispose();
  });
});

test("an async onInitEnd that rejects is not an unhandled rejection; train() reports it", async () => {
  const unhandled: unknown[] = [];
  const listener = (reason: unknown) => unhandled.push(reason);
  process.on("unhandledRejection", listener);
  const model = makeModel();
  try {
    class FailingInit extends TrainerCallback {
      override onInitEnd() {
        return Promise.reject(new Error("onInitEnd failed"));
      }
    }
    const trainer = makeTrainer(model, { maxSteps: 1 }, { callbacks: [FailingInit] });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(unhandled).toEqual([]);
    await expect(trainer.train()).rejects.toThrow("onInitEnd failed");
    await expect(trainer.evaluate()).rejects.toThrow("onInitEnd failed");
  } finally {
    process.off("unhandledRejection", listener);
    model.dispose();
  }
});

describe("predictionLossOnly", () => {
  test("evaluate() computes the loss only: computeMetrics is not called", async () => {
    const model = makeModel();
    const computeMetrics = vi.fn(() => ({ accuracy: 1 }));
    const trainer = makeTrainer(model, { predictionLossOnly: true }, { computeMetrics });
    const metrics = await trainer.evaluate();
    expect(computeMetrics).not.toHaveBeenCalled();
    expect(metrics.eval_loss).toBeGreaterThan(0);
    expect(metrics.eval_accuracy).toBeUndefined();
    model.dispose();
  });

  test("predict() returns no predictions or labels, and the loss", async () => {
    const model = makeModel();
    const trainer = makeTrainer(model, { predictionLossOnly: true });
    const before = tf.memory().numTensors;
    const output = await trainer.predict(rows(8));
    expect(output.predictions.size).toBe(0);
    expect(output.labelIds).toBeNull();
    expect(output.metrics.test_loss).toBeGreaterThan(0);
    output.predictions.dispose();
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});

describe("stop flags set in onSubstepEnd", () => {
  test.each(["shouldTrainingStop", "shouldEpochStop"] as const)(
    "%s ends the group at once, as HF checks after on_substep_end",
    async (flag) => {
      const model = makeModel();
      const events: string[] = [];
      class StopInSubstep extends TrainerCallback {
        override onSubstepEnd(_a: TrainingArguments, _s: TrainerState, control: TrainerControl) {
          events.push("onSubstepEnd");
          control[flag] = true;
        }
        override onOptimizerStep() {
          events.push("onOptimizerStep");
        }
        override onEpochEnd() {
          events.push("onEpochEnd");
        }
      }
      const trainer = makeTrainer(
        model,
        { numTrainEpochs: 1, gradientAccumulationSteps: 2, loggingSteps: 10 },
        { callbacks: [StopInSubstep] },
      );
      const baseline = tf.memory().numTensors;
      const output = await trainer.train();
      // One micro-batch, then the stop: no optimizer step in the epoch.
      expect(events).toEqual(["onSubstepEnd", "onEpochEnd"]);
      expect(output.globalStep).toBe(0);
      trainer.dispose();
      expect(tf.memory().numTensors).toBe(baseline);
      model.dispose();
    },
  );
});

test("a stream that runs dry ends the epoch at once (no spinning to maxSteps)", async () => {
  const model = makeModel();
  const examples = rows(3);
  let pulls = 0;
  let index = 0;
  // One pass only: iterating again gives the same, exhausted iterator.
  const iterator: Iterator<Example> & Iterable<Example> = {
    next: () => {
      pulls++;
      return index < examples.length
        ? { done: false, value: examples[index++]! }
        : { done: true, value: undefined };
    },
    [Symbol.iterator]: () => iterator,
  };
  const trainer = makeTrainer(
    model,
    { maxSteps: 20_000, perDeviceTrainBatchSize: 1, loggingSteps: 100 },
    { trainDataset: iterator },
  );
  const output = await trainer.train();
  expect(output.globalStep).toBe(3);
  // 3 examples, the pull that found the end, the next epoch's first pull.
  expect(pulls).toBeLessThanOrEqual(6);
  trainer.dispose();
  model.dispose();
});

describe("Trainer.dispose()", () => {
  test("frees the optimizer the Trainer created: nothing is left but the model", async () => {
    const model = makeModel();
    const baseline = tf.memory().numTensors;
    const trainer = makeTrainer(model, { maxSteps: 3 });
    await trainer.train();
    expect(tf.memory().numTensors).toBeGreaterThan(baseline);
    trainer.dispose();
    expect(trainer.optimizer).toBeUndefined();
    expect(tf.memory().numTensors).toBe(baseline);
    // A later train() builds a new optimizer.
    await trainer.train();
    trainer.dispose();
    expect(tf.memory().numTensors).toBe(baseline);
    model.dispose();
  });

  test("leaves an optimizer passed in `optimizers` to its owner", async () => {
    const model = makeModel();
    const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const optimizer = createOptimizer({
      name: "adam",
      variables,
      decay: variables.map(() => true),
      weightDecay: 0,
      beta1: 0.9,
      beta2: 0.999,
      epsilon: 1e-8,
    });
    const trainer = makeTrainer(
      model,
      { maxSteps: 2, optim: "adam" },
      {
        optimizers: [optimizer, null],
      },
    );
    await trainer.train();
    trainer.dispose();
    expect(trainer.optimizer).toBe(optimizer);
    const slots = optimizer.getState().slots.flatMap((slot) => Object.values(slot));
    expect(slots.every((tensor) => !tensor.isDisposed)).toBe(true);
    optimizer.dispose();
    model.dispose();
  });
});

test("a checkpoint that cannot be written leaves bestModelCheckpoint as it was", async () => {
  const model = makeModel();
  const trainer = makeTrainer(model, {
    maxSteps: 4,
    evalStrategy: "steps",
    evalSteps: 2,
    saveStrategy: "steps",
    saveSteps: 2,
    metricForBestModel: "loss",
  });
  trainer.model.topology = () => {
    throw new Error("disk full");
  };
  await expect(trainer.train()).rejects.toThrow("disk full");
  // The evaluation at step 2 was the best so far, but its checkpoint does not exist.
  expect(trainer.state.bestGlobalStep).toBe(2);
  expect(trainer.state.bestModelCheckpoint).toBeNull();
  expect(listCheckpoints(trainer.args.outputDir)).toEqual([]);
  trainer.dispose();
  model.dispose();
});

describe("deleting old checkpoints", () => {
  async function makeCheckpoints(outputDir: string, steps: number[]): Promise<void> {
    for (const step of steps) await writeCheckpointDir(outputDir, step, async () => {});
  }

  test("deleteAllCheckpointsExcept keeps one and leaves no temporary folder", async () => {
    const outputDir = freshDir();
    await makeCheckpoints(outputDir, [1, 2, 3]);
    const deleted = deleteAllCheckpointsExcept(outputDir, join(outputDir, "checkpoint-2"));
    expect(deleted).toEqual([join(outputDir, "checkpoint-1"), join(outputDir, "checkpoint-3")]);
    expect(readdirSync(outputDir)).toEqual(["checkpoint-2"]);
  });

  test("a checkpoint moved aside is never left half deleted under its name", async () => {
    const outputDir = freshDir();
    await makeCheckpoints(outputDir, [1, 2]);
    const moves: string[] = [];
    fsHooks.rename = (from, to) => void moves.push(`${from} -> ${to}`);
    try {
      deleteAllCheckpointsExcept(outputDir, join(outputDir, "checkpoint-2"));
    } finally {
      fsHooks.rename = undefined;
    }
    // Renamed aside first, then removed: the crash-safe delete that rotation uses.
    expect(moves).toEqual([
      expect.stringMatching(/checkpoint-1 -> .*\.tmp-checkpoint-deleting-1-/) as unknown as string,
    ]);
  });

  test("a checkpoint that cannot be deleted does not stop the training; one warning", async () => {
    const model = makeModel();
    const trainer = makeTrainer(model, {
      maxSteps: 4,
      saveStrategy: "steps",
      saveSteps: 1,
      saveTotalLimit: 1,
      evalStrategy: "steps",
      evalSteps: 1,
      metricForBestModel: "loss",
    });
    warnings.length = 0;
    fsHooks.rename = (_from, to) => {
      if (to.includes(".tmp-checkpoint-deleting-"))
        throw Object.assign(new Error("EBUSY: resource busy or locked"), { code: "EBUSY" });
    };
    try {
      const output = await trainer.train();
      expect(output.globalStep).toBe(4);
    } finally {
      fsHooks.rename = undefined;
    }
    const deleteWarnings = warnings.filter((w) => w.includes("Could not delete"));
    expect(deleteWarnings).toHaveLength(1);
    expect(deleteWarnings[0]).toMatch(/checkpoint-\d+ \(EBUSY\); training goes on/);
    // Nothing could be deleted: every checkpoint is still whole.
    expect(listCheckpoints(trainer.args.outputDir).map((c) => c.step)).toEqual([1, 2, 3, 4]);
    expect(existsSync(join(trainer.args.outputDir, "checkpoint-4", "trainer_state.json"))).toBe(
      true,
    );
    trainer.dispose();
    model.dispose();
  });
});

describe("util/shapes", () => {
  test("sameShape", () => {
    expect(sameShape([2, 3], [2, 3])).toBe(true);
    expect(sameShape([], [])).toBe(true);
    expect(sameShape([2, 3], [3, 2])).toBe(false);
    expect(sameShape([2, 3], [2, 3, 1])).toBe(false);
  });

  test("fits: null is any size; offset skips leading dimensions", () => {
    expect(fits([4, 3], [4, null])).toBe(true);
    expect(fits([4, 3], [5, null])).toBe(false);
    expect(fits([4, 3], [4])).toBe(false);
    expect(fits([8, 4, 3], [4, null], 1)).toBe(true);
    expect(fits([8, 4, 3], [4, 2], 1)).toBe(false);
    expect(fits([8, 4], [4, null], 1)).toBe(false);
    expect(fits([8], [], 1)).toBe(true);
  });
});

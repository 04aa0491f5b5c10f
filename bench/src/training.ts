/**
 * Training speed, in one process on one backend: (a) the Trainer against tf.LayersModel.fit on
 * Dense 784→128→10, batch 32; (b) the Trainer against a minimal hand-written tfjs loop
 * (optimizer.minimize, no per-step read-back) on Dense 4→1, batch 8, where loop overhead
 * dominates. Variants run interleaved; figures are medians of steps per second.
 */
import * as tf from "@tensorflow/tfjs";
import { PrinterCallback, Trainer, TrainingArguments, setLogger } from "@trainkit/core";
import { median } from "./measure.js";

type Variant = () => Promise<number>;

function denseModel(units: number[], inputs: number, seed: number): tf.LayersModel {
  const layers = units.map((n, i) =>
    tf.layers.dense({
      units: n,
      ...(i === 0 ? { inputShape: [inputs] } : {}),
      activation: i === units.length - 1 ? (n > 1 ? "softmax" : "linear") : "relu",
      kernelInitializer: tf.initializers.glorotUniform({ seed: seed + i }),
    }),
  );
  return tf.sequential({ layers });
}

function randomData(rows: number, inputs: number, classes: number) {
  const x = new Float32Array(rows * inputs);
  for (let i = 0; i < x.length; i++) x[i] = ((i * 2654435761) % 1000) / 1000;
  const y = new Float32Array(rows * classes);
  for (let r = 0; r < rows; r++)
    y[r * classes + (classes > 1 ? r % classes : 0)] = classes > 1 ? 1 : (r % 7) / 7;
  return { x: tf.tensor2d(x, [rows, inputs]), y: tf.tensor2d(y, [rows, classes]) };
}

async function trainerRun(
  model: tf.LayersModel,
  data: { x: tf.Tensor; y: tf.Tensor },
  loss: string,
  options: Record<string, unknown>,
  steps: number,
): Promise<number> {
  const args = new TrainingArguments({
    outputDir: "/tmp/trainkit-bench",
    maxSteps: steps,
    loggingSteps: 50,
    saveStrategy: "no",
    reportTo: "none",
    disableTqdm: true,
    ...options,
  });
  const trainer = new Trainer({ model, loss, args, trainDataset: data });
  // The printer's 40 lines per run would only add noise to the figures.
  trainer.popCallback(PrinterCallback);
  const start = performance.now();
  await trainer.train();
  trainer.optimizer?.dispose();
  return steps / ((performance.now() - start) / 1000);
}

async function fitRun(
  model: tf.LayersModel,
  data: { x: tf.Tensor; y: tf.Tensor },
  batch: number,
  steps: number,
): Promise<number> {
  const start = performance.now();
  await model.fit(data.x, data.y, { batchSize: batch, epochs: 1, verbose: 0, shuffle: true });
  return steps / ((performance.now() - start) / 1000);
}

function minimalLoop(
  model: tf.LayersModel,
  data: { x: Float32Array; y: Float32Array },
  inputs: number,
  batch: number,
  steps: number,
  optimizer: tf.Optimizer,
): number {
  const start = performance.now();
  const rows = data.x.length / inputs;
  const bx = new Float32Array(batch * inputs);
  const by = new Float32Array(batch);
  for (let s = 0; s < steps; s++) {
    const offset = (s * batch) % rows;
    bx.set(data.x.subarray(offset * inputs, (offset + batch) * inputs));
    by.set(data.y.subarray(offset, offset + batch));
    tf.tidy(() => {
      const x = tf.tensor2d(bx, [batch, inputs]);
      const y = tf.tensor2d(by, [batch, 1]);
      optimizer.minimize(
        () => tf.mean(tf.square(tf.sub(model.apply(x) as tf.Tensor, y))) as tf.Scalar,
      );
    });
  }
  return steps / ((performance.now() - start) / 1000);
}

async function interleave(variants: Record<string, Variant>, rounds: number) {
  const samples: Record<string, number[]> = Object.fromEntries(
    Object.keys(variants).map((k) => [k, []]),
  );
  for (let round = -1; round < rounds; round++)
    for (const [name, run] of Object.entries(variants)) {
      const value = await run();
      if (round >= 0) samples[name]!.push(value);
    }
  return samples;
}

export async function benchTraining(backend: string, rounds = 5) {
  const previous = setLogger({ info() {}, warn() {} });
  await tf.setBackend(backend);
  await tf.ready();
  // (a) Trainer vs fit: Dense 784→128→10, batch 32.
  const steps = backend === "cpu" ? 60 : 200;
  const big = randomData(32 * steps, 784, 10);
  const fitModel = denseModel([128, 10], 784, 1);
  fitModel.compile({ optimizer: tf.train.adam(1e-3), loss: "categoricalCrossentropy" });
  const trainerModel = denseModel([128, 10], 784, 1);
  const a = await interleave(
    {
      fit: () => fitRun(fitModel, big, 32, steps),
      trainerSameWork: () =>
        trainerRun(
          trainerModel,
          big,
          "categoricalCrossentropy",
          {
            perDeviceTrainBatchSize: 32,
            optim: "adam",
            maxGradNorm: 0,
            learningRate: 1e-3,
            lrSchedulerType: "constant",
          },
          steps,
        ),
      trainerDefaults: () =>
        trainerRun(
          trainerModel,
          big,
          "categoricalCrossentropy",
          { perDeviceTrainBatchSize: 32 },
          steps,
        ),
    },
    rounds,
  );
  // (b) loop overhead: Dense 4→1, batch 8, 2000 steps (HF's overhead setup).
  const tinySteps = backend === "cpu" ? 1000 : 2000;
  const tiny = randomData(8 * tinySteps, 4, 1);
  const tinyRaw = { x: tiny.x.dataSync() as Float32Array, y: tiny.y.dataSync() as Float32Array };
  const loopModel = denseModel([1], 4, 3);
  const loopOptimizer = tf.train.adam(5e-5);
  const tinyModel = denseModel([1], 4, 3);
  const b = await interleave(
    {
      minimalLoop: async () => minimalLoop(loopModel, tinyRaw, 4, 8, tinySteps, loopOptimizer),
      trainer: () => trainerRun(tinyModel, tiny, "meanSquaredError", {}, tinySteps),
    },
    rounds,
  );
  tf.dispose([big.x, big.y, tiny.x, tiny.y]);
  setLogger(previous);
  const med = (xs: number[]) => Math.round(median(xs) * 10) / 10;
  return {
    backend,
    a: {
      fit: med(a.fit!),
      trainer_same_work: med(a.trainerSameWork!),
      trainer_defaults: med(a.trainerDefaults!),
      ratio_same_work: Math.round((median(a.trainerSameWork!) / median(a.fit!)) * 100) / 100,
      ratio_defaults: Math.round((median(a.trainerDefaults!) / median(a.fit!)) * 100) / 100,
    },
    b: {
      minimal_loop: med(b.minimalLoop!),
      trainer: med(b.trainer!),
      slowdown: Math.round((median(b.minimalLoop!) / median(b.trainer!)) * 100) / 100,
    },
  };
}

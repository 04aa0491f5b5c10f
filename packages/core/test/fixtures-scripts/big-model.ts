// A model whose checkpoints take a while to write (about 2.7 MB of weights and 5.3 MB of Adam
// state), shared by checkpoint-writer.ts (the child process that gets killed) and the test
// that resumes after the kill.
import * as tf from "@tensorflow/tfjs";
import type { Example, TrainingArgumentsOptions } from "../../src/index.js";

export function buildBigModel(): tf.LayersModel {
  return tf.sequential({
    layers: [
      tf.layers.dense({
        units: 512,
        inputShape: [784],
        activation: "relu",
        kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
      }),
      tf.layers.dense({
        units: 512,
        activation: "relu",
        kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
      }),
      tf.layers.dense({
        units: 10,
        activation: "softmax",
        kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }),
      }),
    ],
  });
}

export const BIG_LOSS = "categoricalCrossentropy";

/** 32 rows: 4 batches of 8 per epoch. */
export function bigDataset(): Example[] {
  let state = 12345;
  const random = () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 4294967296;
  };
  return Array.from({ length: 32 }, (_, i) => {
    const y = new Array<number>(10).fill(0);
    y[i % 10] = 1;
    return { x: Array.from({ length: 784 }, () => random()), y };
  });
}

export function bigArgs(outputDir: string, maxSteps: number): TrainingArgumentsOptions {
  return {
    outputDir,
    maxSteps,
    perDeviceTrainBatchSize: 8,
    learningRate: 1e-3,
    loggingSteps: 2,
    saveSteps: 1,
    saveTotalLimit: 2,
    reportTo: "none",
    disableTqdm: true,
    backend: "cpu",
  };
}

/**
 * The main job: trains a small classifier on the 8x8 handwritten digits, evaluates every epoch,
 * keeps the best checkpoint, stops early when accuracy stops improving, and says where
 * everything went.
 */
import * as tf from "@tensorflow/tfjs";
import {
  EarlyStoppingCallback,
  Trainer,
  TrainerCallback,
  TrainingArguments,
  selectBackend,
  type EvalPrediction,
} from "@trainkit/core";
import { loadDigits, split } from "./digits.js";

class MyCallback extends TrainerCallback {
  override onTrainBegin() {
    console.log("Starting training");
  }
}

// Pick the backend before building the model, so its weights start there.
await selectBackend();

const { train, eval: evalSet } = split(loadDigits(), 0.2, 7);
console.log(`Digits: ${train.length} training and ${evalSet.length} evaluation images.`);

const model = tf.sequential({
  layers: [
    tf.layers.dense({
      inputShape: [64],
      units: 64,
      activation: "relu",
      kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
    }),
    tf.layers.dense({
      units: 10,
      activation: "softmax",
      kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
    }),
  ],
});

function accuracy({ predictions, labelIds }: EvalPrediction) {
  const correct = tf.tidy(() =>
    tf.mean(
      tf.cast(
        tf.equal(tf.argMax(predictions, -1), tf.cast(tf.reshape(labelIds!, [-1]), "int32")),
        "float32",
      ),
    ),
  );
  const value = correct.dataSync()[0]!;
  correct.dispose();
  return { accuracy: value };
}

const args = new TrainingArguments({
  outputDir: "out/digits",
  numTrainEpochs: 40,
  perDeviceTrainBatchSize: 32,
  perDeviceEvalBatchSize: 128,
  learningRate: 3e-3,
  weightDecay: 0.01,
  warmupRatio: 0.05,
  loggingStrategy: "epoch",
  evalStrategy: "epoch",
  saveStrategy: "epoch",
  saveTotalLimit: 2,
  loadBestModelAtEnd: true,
  metricForBestModel: "accuracy",
  // reportTo "all" (the default): @trainkit/callback-tensorboard is installed, so it writes
  // TensorBoard logs under outputDir/runs.
  disableTqdm: !process.stdout.isTTY,
});

const trainer = new Trainer({
  model,
  loss: "sparseCategoricalCrossentropy",
  args,
  trainDataset: train,
  evalDataset: evalSet,
  computeMetrics: accuracy,
  callbacks: [MyCallback],
});
trainer.addCallback(new EarlyStoppingCallback({ earlyStoppingPatience: 5 }));

const result = await trainer.train();
const metrics = await trainer.evaluate();
await trainer.saveModel(`${args.outputDir}/final`);

console.log("");
console.log(
  `Trained ${result.globalStep} steps in ${result.metrics.train_runtime} s (${result.metrics.train_steps_per_second} steps/s).`,
);
console.log(
  `Best checkpoint: ${trainer.state.bestModelCheckpoint} (eval accuracy ${trainer.state.bestMetric?.toFixed(4)}), loaded at the end.`,
);
console.log(
  `Evaluation accuracy of the final model: ${(metrics.eval_accuracy! * 100).toFixed(1)}% (eval_loss ${metrics.eval_loss!.toFixed(4)}).`,
);
console.log(
  `Checkpoints kept in ${args.outputDir}/ (each with trainer_state.json, model.json, weights.bin, optimizer and scheduler state).`,
);
console.log(
  `Final model written to ${args.outputDir}/final/model.json; load it with tf.loadLayersModel.`,
);
console.log(
  `TensorBoard logs are in ${args.outputDir}/runs/; open them with: tensorboard --logdir ${process.cwd()}/${args.outputDir}/runs`,
);
console.log(
  `(after \`pnpm test\`, the repo's .venv has TensorBoard: ../../.venv/bin/tensorboard --logdir ${args.outputDir}/runs)`,
);

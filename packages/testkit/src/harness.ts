import * as tf from "@tensorflow/tfjs";
import {
  Trainer,
  TrainingArguments,
  selectBackend,
  type BackendName,
  type ComputeMetrics,
  type TrainerCallback,
  type TrainkitPlugin,
} from "@trainkit/core";

/**
 * The conformance run: a Dense 2→1 regression on 24 rows, batches of 4 with gradient
 * accumulation 2 (so onSubstepEnd fires), 2 epochs = 6 optimizer steps, logging, evaluation
 * and a checkpoint every 2 steps; then trainer.evaluate() and trainer.predict().
 */
export const RUN = {
  trainRows: 24,
  evalRows: 8,
  steps: 6,
  /** The checkpoint a resumed run starts from: mid-run, so there is state to carry over. */
  resumeFrom: 4,
} as const;

function rows(count: number, offset: number): { x: number[]; y: number }[] {
  return Array.from({ length: count }, (_, i) => {
    const a = ((i * 7 + offset) % count) / count;
    const b = ((i * 3 + offset) % count) / count;
    return { x: [a, b], y: 2 * a - b + 0.5 };
  });
}

const meanAbsoluteError: ComputeMetrics = ({ predictions, labelIds }) => ({
  mae: tf.tidy(
    () => tf.mean(tf.abs(tf.sub(predictions.flatten(), labelIds!.flatten()))).dataSync()[0]!,
  ),
});

export function trainingArguments(
  outputDir: string,
  plugin: TrainkitPlugin,
  backend: BackendName,
): TrainingArguments {
  return new TrainingArguments({
    outputDir,
    runName: "trainkit-conformance",
    numTrainEpochs: 2,
    perDeviceTrainBatchSize: 4,
    perDeviceEvalBatchSize: 4,
    gradientAccumulationSteps: 2,
    learningRate: 0.01,
    loggingSteps: 2,
    evalStrategy: "steps",
    evalSteps: 2,
    saveStrategy: "steps",
    saveSteps: 2,
    disableTqdm: true,
    reportTo: [plugin.name],
    restoreCallbackStatesFromCheckpoint: true,
    backend,
    seed: 42,
  });
}

export interface RunOptions {
  outputDir: string;
  /** The instrumented plugin. */
  plugin: TrainkitPlugin;
  backend: BackendName;
  callbacks?: TrainerCallback[];
  /** A checkpoint to resume from (the resumed run trains only; no evaluate/predict after). */
  resumeFrom?: string;
  /** Called with the Trainer once it is built, before training. */
  onTrainer?: (trainer: Trainer) => void;
}

/** Builds the tiny model and a real Trainer with the plugin, and runs it. */
export async function runTrainer(options: RunOptions): Promise<void> {
  await selectBackend(options.backend);
  const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 1 })] });
  let trainer: Trainer | undefined;
  try {
    trainer = new Trainer({
      model,
      loss: "meanSquaredError",
      args: trainingArguments(options.outputDir, options.plugin, options.backend),
      trainDataset: rows(RUN.trainRows, 0),
      evalDataset: rows(RUN.evalRows, 1),
      computeMetrics: meanAbsoluteError,
      callbacks: options.callbacks ?? [],
      plugins: [options.plugin],
      failurePolicy: "warn",
    });
    options.onTrainer?.(trainer);
    if (options.resumeFrom !== undefined) {
      await trainer.train({ resumeFromCheckpoint: options.resumeFrom });
      return;
    }
    await trainer.train();
    await trainer.evaluate();
    const { predictions, labelIds } = await trainer.predict(rows(RUN.evalRows, 2));
    tf.dispose([predictions, labelIds ?? []]);
  } finally {
    trainer?.dispose();
    model.dispose();
  }
}

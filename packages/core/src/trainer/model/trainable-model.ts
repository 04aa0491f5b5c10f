import * as tf from "@tensorflow/tfjs";
import { resolveLoss, type LossFunction } from "./losses.js";

/** A batch: named tensors whose first dimension indexes examples (`x`, `y`, ...). */
export type Batch = Record<string, tf.Tensor>;

/**
 * What the Trainer needs of a model. A `tf.LayersModel` is adapted automatically; implement
 * this for a custom graph.
 */
export interface TrainableModel {
  /** The variables the optimizer updates. */
  trainableVariables(): tf.Variable[];
  /** Every variable that makes up the model (saved in checkpoints); trainable ones by default. */
  variables?(): tf.Variable[];
  /** The mean loss of a batch. Called inside the gradient tape. */
  computeLoss(batch: Batch, options: { training: boolean }): tf.Scalar;
  /** The model's predictions for a batch. */
  predict(batch: Batch): tf.Tensor;
  /** Topology written into model.json next to the weights (a tf.LayersModel's own JSON). */
  topology?(): object;
}

/** Adapts a tf.LayersModel: `x` is the input, `y` the labels. */
export class LayersModelAdapter implements TrainableModel {
  private readonly lossFn: LossFunction;

  constructor(
    readonly model: tf.LayersModel,
    loss: string | LossFunction,
  ) {
    this.lossFn = resolveLoss(loss);
  }

  trainableVariables(): tf.Variable[] {
    return this.model.trainableWeights.map((w) => w.read() as tf.Variable);
  }

  variables(): tf.Variable[] {
    return this.model.weights.map((w) => w.read() as tf.Variable);
  }

  computeLoss(batch: Batch, { training }: { training: boolean }): tf.Scalar {
    const output = this.model.apply(requireField(batch, "x"), { training }) as tf.Tensor;
    return this.lossFn(requireField(batch, "y"), output);
  }

  predict(batch: Batch): tf.Tensor {
    return this.model.apply(requireField(batch, "x"), { training: false }) as tf.Tensor;
  }

  topology(): object {
    return this.model.toJSON(null, false) as object;
  }
}

export function isLayersModel(value: unknown): value is tf.LayersModel {
  return value instanceof tf.LayersModel;
}

export function isTrainableModel(value: unknown): value is TrainableModel {
  const m = value as Partial<TrainableModel> | null;
  return (
    typeof m === "object" &&
    m !== null &&
    typeof m.trainableVariables === "function" &&
    typeof m.computeLoss === "function" &&
    typeof m.predict === "function"
  );
}

function requireField(batch: Batch, name: string): tf.Tensor {
  const tensor = batch[name];
  if (!tensor) {
    throw new Error(
      `The batch has no "${name}" field (it has ${Object.keys(batch).join(", ") || "none"}). A tf.LayersModel trains on examples with "x" (inputs) and "y" (labels).`,
    );
  }
  return tensor;
}

import * as tf from "@tensorflow/tfjs";
import { fits, sameShape } from "../../util/shapes.js";
import { isSparseLoss, resolveLoss, type LossFunction } from "./losses.js";

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
  /**
   * Checks the shape of one example's fields (without the batch dimension) before any work,
   * throwing an error that names `dataset` ("trainDataset", ...) and the field.
   */
  checkExampleShapes?(shapes: Record<string, readonly number[]>, dataset: string): void;
}

/**
 * Adapts a tf.LayersModel: `x` is the input, `y` the labels. As in model.fit, labels of rank 1
 * for an output of shape [batch, 1] are read as a column ([batch] → [batch, 1]), and, for a loss
 * given by name, labels whose shape does not match the output are an error rather than a silent
 * broadcast.
 */
export class LayersModelAdapter implements TrainableModel {
  private readonly lossFn: LossFunction;
  private readonly sparse: boolean;
  private readonly named: boolean;
  /** The model's input shape without the batch dimension (null: any size). */
  private readonly inputShape: readonly (number | null)[];

  constructor(
    readonly model: tf.LayersModel,
    loss: string | LossFunction,
  ) {
    this.lossFn = resolveLoss(loss);
    this.sparse = isSparseLoss(loss);
    this.named = typeof loss === "string";
    this.inputShape = model.inputs[0]?.shape.slice(1) ?? [];
    if (model.inputs.length !== 1 || model.outputs.length !== 1) {
      throw new Error(
        `The model has ${model.inputs.length} inputs and ${model.outputs.length} outputs; the Trainer adapts a tf.LayersModel with one input ("x") and one output ("y"). For more, implement TrainableModel (trainableVariables, computeLoss, predict).`,
      );
    }
  }

  trainableVariables(): tf.Variable[] {
    return this.model.trainableWeights.map((w) => w.read() as tf.Variable);
  }

  variables(): tf.Variable[] {
    return this.model.weights.map((w) => w.read() as tf.Variable);
  }

  computeLoss(batch: Batch, { training }: { training: boolean }): tf.Scalar {
    const output = this.model.apply(this.input(batch), { training }) as tf.Tensor;
    return this.lossFn(this.labelsFor(requireField(batch, "y"), output.shape), output);
  }

  predict(batch: Batch): tf.Tensor {
    return this.model.apply(this.input(batch), { training: false }) as tf.Tensor;
  }

  checkExampleShapes(shapes: Record<string, readonly number[]>, dataset: string): void {
    const x = shapes.x;
    if (x) this.checkInput(x, `${dataset}: x`);
    const y = shapes.y;
    const outputShape = this.model.outputs[0]!.shape;
    if (y && outputShape.every((d, i) => i === 0 || d !== null)) {
      const known = [1, ...outputShape.slice(1)] as number[];
      this.labelsShape([1, ...y], known, dataset);
    }
  }

  topology(): object {
    return this.model.toJSON(null, false) as object;
  }

  /** The batch's x, checked against the model's input shape (tf.layers' own error names neither). */
  private input(batch: Batch): tf.Tensor {
    const x = requireField(batch, "x");
    if (!fits(x.shape, this.inputShape, 1)) this.checkInput(x.shape.slice(1), "The batch's x");
    return x;
  }

  private checkInput(shape: readonly number[], what: string): void {
    const inputShape = this.inputShape;
    if (!fits(shape, inputShape)) {
      throw new Error(
        `${what} has shape [${shape}] per example but the model's input takes [${inputShape.map((d) => d ?? "any")}] (without the batch dimension). Reshape the examples or change the model's inputShape.`,
      );
    }
  }

  /** The labels as the loss takes them (see the class comment). */
  private labelsFor(y: tf.Tensor, outputShape: readonly number[]): tf.Tensor {
    if (!this.sparse && sameShape(y.shape, outputShape)) return y; // the common case, every step
    const shape = this.labelsShape(y.shape, outputShape, "The batch");
    return shape === y.shape ? y : tf.reshape(y, [...shape]);
  }

  private labelsShape(
    y: readonly number[],
    output: readonly number[],
    where: string,
  ): readonly number[] {
    const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
    if (this.sparse) {
      const classes = output[output.length - 1]!;
      if (size(y) * classes !== size(output)) {
        throw new Error(
          `${where}: y has shape [${y.slice(1)}] per example but sparseCategoricalCrossentropy takes one class index per output row (the model's output is [${output.slice(1)}]). For one-hot labels use categoricalCrossentropy.`,
        );
      }
      return y;
    }
    if (y.length === output.length - 1 && output[output.length - 1] === 1) {
      const column = [...y, 1];
      if (sameShape(column, output)) return column;
    }
    if (this.named && !sameShape(y, output)) {
      throw new Error(
        `${where}: y has shape [${y.slice(1)}] per example but the model's output is [${output.slice(1)}]; the loss needs labels of the output's shape. Reshape the labels, change the model's last layer, or use sparseCategoricalCrossentropy for class indices.`,
      );
    }
    return y;
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

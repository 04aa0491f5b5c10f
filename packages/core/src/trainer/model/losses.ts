import * as tf from "@tensorflow/tfjs";

/** A loss: the mean loss of a batch from labels and predictions. */
export type LossFunction = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Scalar;

const EPSILON = 1e-7;

/** Keras's losses by name, computed as tf.layers computes them (probabilities, not logits). */
const LOSSES: Record<string, LossFunction> = {
  meanSquaredError: (y, p) => tf.mean(tf.square(tf.sub(p, y))),
  meanAbsoluteError: (y, p) => tf.mean(tf.abs(tf.sub(p, y))),
  categoricalCrossentropy: (y, p) => {
    const probs = tf.div(p, tf.sum(p, -1, true));
    return tf.mean(
      tf.neg(tf.sum(tf.mul(y, tf.log(tf.clipByValue(probs, EPSILON, 1 - EPSILON))), -1)),
    );
  },
  sparseCategoricalCrossentropy: (y, p) => {
    const depth = p.shape[p.shape.length - 1]!;
    const labels = tf.oneHot(tf.cast(tf.reshape(y, [-1]), "int32"), depth);
    return LOSSES.categoricalCrossentropy!(labels, tf.reshape(p, [-1, depth]));
  },
  binaryCrossentropy: (y, p) => {
    const q = tf.clipByValue(p, EPSILON, 1 - EPSILON);
    const terms = tf.add(tf.mul(y, tf.log(q)), tf.mul(tf.sub(1, y), tf.log(tf.sub(1, q))));
    return tf.mean(tf.neg(tf.mean(terms, -1)));
  },
};

const ALIASES: Record<string, string> = {
  mse: "meanSquaredError",
  mae: "meanAbsoluteError",
  mean_squared_error: "meanSquaredError",
  mean_absolute_error: "meanAbsoluteError",
  categorical_crossentropy: "categoricalCrossentropy",
  sparse_categorical_crossentropy: "sparseCategoricalCrossentropy",
  binary_crossentropy: "binaryCrossentropy",
};

export const LOSS_NAMES = Object.keys(LOSSES);

export function resolveLoss(loss: string | LossFunction): LossFunction {
  if (typeof loss === "function") return loss;
  const fn = LOSSES[ALIASES[loss] ?? loss];
  if (!fn) {
    throw new Error(
      `Unknown loss "${loss}". Use one of ${LOSS_NAMES.join(", ")}, or pass a function (yTrue, yPred) => tf.Scalar.`,
    );
  }
  return fn;
}

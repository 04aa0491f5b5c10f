import * as tf from "@tensorflow/tfjs";

/** A loss: the mean loss of a batch from labels and predictions. */
export type LossFunction = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Scalar;

/** Keras's backend epsilon (tf.layers' `epsilon()`). */
const EPSILON = 1e-7;

/** A Keras loss per example: the loss of each row, reduced over the last axis. */
type PerExample = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor;

function l2Normalize(x: tf.Tensor): tf.Tensor {
  const squareSum = tf.sum(tf.square(x), -1, true);
  return tf.div(x, tf.sqrt(tf.maximum(squareSum, EPSILON)));
}

function categoricalCrossentropy(y: tf.Tensor, p: tf.Tensor): tf.Tensor {
  const probs = tf.clipByValue(tf.div(p, tf.sum(p, -1, true)), EPSILON, 1 - EPSILON);
  return tf.neg(tf.sum(tf.mul(y, tf.log(probs)), -1));
}

/**
 * Keras's losses by name, computed as tf.layers computes them (tfjs-layers losses.ts:
 * probabilities, not logits); model.fit then averages the per-example losses over the batch.
 */
const LOSSES: Record<string, PerExample> = {
  meanSquaredError: (y, p) => tf.mean(tf.square(tf.sub(p, y)), -1),
  meanAbsoluteError: (y, p) => tf.mean(tf.abs(tf.sub(p, y)), -1),
  meanAbsolutePercentageError: (y, p) => {
    const scale = tf.clipByValue(tf.abs(y), EPSILON, Number.MAX_VALUE);
    return tf.mul(100, tf.mean(tf.abs(tf.div(tf.sub(y, p), scale)), -1));
  },
  meanSquaredLogarithmicError: (y, p) => {
    const logPred = tf.log1p(tf.clipByValue(p, EPSILON, Number.MAX_VALUE));
    const logTrue = tf.log1p(tf.clipByValue(y, EPSILON, Number.MAX_VALUE));
    return tf.mean(tf.square(tf.sub(logPred, logTrue)), -1);
  },
  squaredHinge: (y, p) => tf.mean(tf.square(tf.maximum(0, tf.sub(1, tf.mul(y, p)))), -1),
  hinge: (y, p) => tf.mean(tf.maximum(0, tf.sub(1, tf.mul(y, p))), -1),
  categoricalHinge: (y, p) => {
    const positive = tf.sum(tf.mul(y, p), -1);
    const negative = tf.max(tf.mul(tf.sub(1, y), p), -1);
    return tf.maximum(0, tf.add(1, tf.sub(negative, positive)));
  },
  logcosh: (y, p) => {
    const d = tf.sub(p, y);
    return tf.mean(tf.sub(tf.add(d, tf.softplus(tf.mul(-2, d))), Math.log(2)), -1);
  },
  categoricalCrossentropy,
  sparseCategoricalCrossentropy: (y, p) => {
    const depth = p.shape[p.shape.length - 1]!;
    const labels = tf.oneHot(tf.cast(tf.floor(tf.reshape(y, [-1])), "int32"), depth);
    return categoricalCrossentropy(tf.reshape(labels, p.shape), p);
  },
  binaryCrossentropy: (y, p) => {
    const q = tf.clipByValue(p, EPSILON, 1 - EPSILON);
    const terms = tf.add(tf.mul(y, tf.log(q)), tf.mul(tf.sub(1, y), tf.log(tf.sub(1, q))));
    return tf.neg(tf.mean(terms, -1));
  },
  kullbackLeiblerDivergence: (y, p) => {
    const ratio = tf.div(tf.clipByValue(y, EPSILON, 1), tf.clipByValue(p, EPSILON, 1));
    return tf.sum(tf.mul(y, tf.log(ratio)), -1);
  },
  poisson: (y, p) => tf.mean(tf.sub(p, tf.mul(y, tf.log(tf.add(p, EPSILON)))), -1),
  cosineProximity: (y, p) => tf.neg(tf.sum(tf.mul(l2Normalize(y), l2Normalize(p)), -1)),
};

/** Other spellings: tf.layers' short names and Keras (Python)'s snake_case names. */
const ALIASES: Record<string, string> = {
  mse: "meanSquaredError",
  mae: "meanAbsoluteError",
  mape: "meanAbsolutePercentageError",
  msle: "meanSquaredLogarithmicError",
  kld: "kullbackLeiblerDivergence",
  klDivergence: "kullbackLeiblerDivergence",
  cosine: "cosineProximity",
  cosineSimilarity: "cosineProximity",
  logCosh: "logcosh",
};

/** The loss names a Trainer accepts (aliases and snake_case spellings also work). */
export const LOSS_NAMES = Object.keys(LOSSES);

/** Whether a loss takes integer class indices as labels (their shape differs from the output's). */
export function isSparseLoss(loss: string | LossFunction): boolean {
  return typeof loss === "string" && canonicalLossName(loss) === "sparseCategoricalCrossentropy";
}

/** The Keras name for a spelling of it ("mse", "mean_squared_error", "MSE"), or undefined. */
export function canonicalLossName(name: string): string | undefined {
  if (name in LOSSES) return name;
  const camel = name.replace(/_([a-z0-9])/gi, (_, c: string) => c.toUpperCase());
  for (const candidate of [name, name.toLowerCase(), camel]) {
    if (candidate in LOSSES) return candidate;
    if (candidate in ALIASES) return ALIASES[candidate];
  }
  return undefined;
}

/**
 * The loss function for a Keras name or a function. A function may return the batch's mean
 * loss (a scalar) or, as a tf.layers loss does, one loss per example: that is averaged.
 */
export function resolveLoss(loss: string | LossFunction): LossFunction {
  if (typeof loss === "function") {
    const fn = loss as (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor;
    return (yTrue, yPred) => {
      const value = fn(yTrue, yPred);
      return value.rank === 0 ? (value as tf.Scalar) : tf.mean(value);
    };
  }
  if (typeof loss !== "string") {
    throw new Error(
      `loss must be a Keras loss name such as "meanSquaredError" or a function (yTrue, yPred) => tf.Scalar; got ${typeof loss}.`,
    );
  }
  const name = canonicalLossName(loss);
  const perExample = name === undefined ? undefined : LOSSES[name];
  if (!perExample) {
    throw new Error(
      `Unknown loss "${loss}". Use one of ${LOSS_NAMES.join(", ")} (or mse, mae, mape, msle, kld, cosine, or a snake_case spelling such as mean_squared_error), or pass a function (yTrue, yPred) => tf.Scalar.`,
    );
  }
  const batchMean = BATCH_MEAN[name!];
  return (yTrue, yPred) => {
    const labels = yTrue.dtype === "float32" ? yTrue : tf.cast(yTrue, "float32");
    return batchMean ? batchMean(labels, yPred) : tf.mean(perExample(labels, yPred));
  };
}

/**
 * Losses whose batch mean of per-example means is the mean over every element (each example
 * has as many elements): one reduction instead of two, on every training step.
 */
const BATCH_MEAN: Record<string, LossFunction> = {
  meanSquaredError: (y, p) => tf.mean(tf.square(tf.sub(p, y))),
  meanAbsoluteError: (y, p) => tf.mean(tf.abs(tf.sub(p, y))),
};

import * as tf from "@tensorflow/tfjs";

/**
 * Scalars kept on the device for numbers used every step (betas, epsilons, divisors): a number
 * passed to a tf op is uploaded as a new tensor each time, which costs as much as a small op.
 */
export class ScalarCache {
  // No eviction: the values are a handful of fixed hyperparameters, and evicting could dispose a
  // scalar that an op of the current step still uses.
  private readonly scalars = new Map<number, tf.Scalar>();

  get(value: number): tf.Scalar {
    let scalar = this.scalars.get(value);
    if (!scalar) {
      scalar = tf.keep(tf.scalar(value));
      this.scalars.set(value, scalar);
    }
    return scalar;
  }

  clear(): void {
    for (const scalar of this.scalars.values()) scalar.dispose();
    this.scalars.clear();
  }
}

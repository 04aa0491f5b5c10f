import * as tf from "@tensorflow/tfjs";

/**
 * Scalars kept on the device for numbers used every step (betas, epsilons, divisors): a number
 * passed to a tf op is uploaded as a new tensor each time, which costs as much as a small op.
 */
export class ScalarCache {
  private readonly scalars = new Map<number, tf.Scalar>();

  constructor(private readonly limit = 4096) {}

  get(value: number): tf.Scalar {
    let scalar = this.scalars.get(value);
    if (!scalar) {
      if (this.scalars.size >= this.limit) this.clear();
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

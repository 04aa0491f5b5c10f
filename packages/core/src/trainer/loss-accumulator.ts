import * as tf from "@tensorflow/tfjs";

/**
 * The training loss summed since the last log (HF's `tr_loss`), kept on the device: each step's
 * loss tensor is held as it is, with no op at all, and read once when the Trainer logs. HF's
 * `logging_nan_inf_filter` rule (a non-finite step loss counts as the running average
 * tr_loss / (1 + step - last logged step)) is applied then, in order, in float32 as HF's
 * tensor does. Past `cap` unread steps they are folded on the device, so memory stays bounded
 * when logs are rare.
 */
export class LossAccumulator {
  /** What has been read or folded, before the pending losses. */
  private base: number | tf.Scalar;
  private pending: tf.Scalar[] = [];
  private pendingSteps: number[] = [];

  constructor(
    initial: number,
    private readonly nanInfFilter: boolean,
    private readonly cap = 512,
  ) {
    this.base = Math.fround(initial);
  }

  /** Holds a step's loss; `globalStep` is the step count when it was computed. */
  add(loss: tf.Scalar, globalStep: number, lastLogged: number): void {
    this.pending.push(loss);
    this.pendingSteps.push(globalStep);
    if (this.pending.length >= this.cap) this.fold(lastLogged);
  }

  /** The sum since the last log: one read from the device. */
  read(lastLogged: number): number {
    let sum = typeof this.base === "number" ? this.base : this.base.dataSync()[0]!;
    if (this.pending.length > 0) {
      const values = tf.tidy(() => tf.stack(this.pending).dataSync());
      for (let i = 0; i < values.length; i++) {
        const value = values[i]!;
        sum = Math.fround(
          this.nanInfFilter && !Number.isFinite(value)
            ? sum + Math.fround(sum / (1 + this.pendingSteps[i]! - lastLogged))
            : sum + value,
        );
      }
    }
    this.replaceBase(sum);
    return sum;
  }

  /** Starts a new window (after a log); frees the tensors it held (also at the end of training). */
  reset(): void {
    this.replaceBase(0);
  }

  private replaceBase(value: number | tf.Scalar): void {
    if (typeof this.base !== "number" && this.base !== value) this.base.dispose();
    tf.dispose(this.pending);
    this.pending = [];
    this.pendingSteps = [];
    this.base = value;
  }

  /**
   * Applies the pending losses on the device: s ← a·s + b per step, with a = 1, b = loss for a
   * finite loss and a = 1 + 1/d, b = 0 for a filtered one, computed as a scan.
   */
  private fold(lastLogged: number): void {
    const folded = tf.tidy(() => {
      const values = tf.stack(this.pending);
      const start = typeof this.base === "number" ? tf.scalar(this.base) : this.base;
      if (!this.nanInfFilter) return tf.add(start, tf.sum(values));
      const finite = tf.isFinite(values);
      const growth = tf.tensor1d(this.pendingSteps.map((step) => 1 + 1 / (1 + step - lastLogged)));
      const a = tf.where(finite, tf.onesLike(values), growth);
      const b = tf.where(finite, values, tf.zerosLike(values));
      const after = tf.cumprod(a, 0, true, true);
      return tf.add(tf.mul(start, tf.prod(a)), tf.sum(tf.mul(b, after)));
    }) as tf.Scalar;
    this.replaceBase(folded);
  }
}

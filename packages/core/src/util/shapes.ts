/** Shape comparisons shared by the model adapter, the optimizers, the datasets and checkpoints. */

/** Whether two shapes are equal, dimension for dimension. */
export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Whether `shape` fits `wanted` (null: any size) from dimension `offset` on, with nothing after:
 * `fits(batchShape, inputShape, 1)` checks a batch against a per-example shape.
 */
export function fits(
  shape: readonly number[],
  wanted: readonly (number | null)[],
  offset = 0,
): boolean {
  if (shape.length !== wanted.length + offset) return false;
  for (let i = 0; i < wanted.length; i++) {
    const d = wanted[i];
    if (d !== null && d !== shape[i + offset]) return false;
  }
  return true;
}

/**
 * Seeded randomness for data order. The order of an epoch is a pure function of
 * (seed, epoch), so a resumed run needs only those two numbers to replay it exactly.
 */

/** splitmix32: a small, fast generator with good statistical quality for shuffling. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  };
}

/** A Fisher-Yates permutation of 0..n-1 for this seed and epoch. */
export function epochPermutation(n: number, seed: number, epoch: number): Int32Array {
  const random = seededRandom(
    (Math.imul(seed >>> 0, 0x01000193) ^ ((epoch + 1) * 0x9e3779b1)) >>> 0,
  );
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}

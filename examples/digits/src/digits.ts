import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";

export interface DigitExample {
  /** 64 pixels scaled to [0, 1]. */
  x: Float32Array;
  /** The digit, 0–9. */
  y: number;
}

/** Reads the 8x8 digits shipped in data/ (see data/README.md for source and license). */
export function loadDigits(): DigitExample[] {
  const path = new URL("../data/digits.csv.gz", import.meta.url);
  const lines = gunzipSync(readFileSync(path)).toString("utf8").trim().split("\n");
  return lines.map((line) => {
    const values = line.split(",").map(Number);
    return { x: Float32Array.from(values.slice(0, 64), (v) => v / 16), y: values[64]! };
  });
}

/** A seeded split, so every run trains and evaluates on the same examples. */
export function split<T>(items: T[], evalShare: number, seed: number): { train: T[]; eval: T[] } {
  const order = items.map((_, i) => i);
  let state = seed;
  for (let i = order.length - 1; i > 0; i--) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const j = state % (i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const evalCount = Math.round(items.length * evalShare);
  return {
    eval: order.slice(0, evalCount).map((i) => items[i]!),
    train: order.slice(evalCount).map((i) => items[i]!),
  };
}

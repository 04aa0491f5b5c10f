// LossAccumulator: HF's tr_loss between logs, kept on the device. Reading it must give the
// sequential float32 sum with HF's logging_nan_inf_filter rule, whether the pending losses
// are read directly or were folded on the device first (past `cap` unread steps).
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, test } from "vitest";
import { LossAccumulator } from "../src/trainer/loss-accumulator.js";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

/** HF's loop in float32: a non-finite step loss adds tr_loss / (1 + gs - last_logged). */
function reference(
  initial: number,
  losses: number[],
  steps: number[],
  last: number,
  filter: boolean,
) {
  const f = Math.fround;
  let sum = f(initial);
  losses.forEach((loss, i) => {
    sum =
      filter && !Number.isFinite(loss) ? f(sum + f(sum / (1 + steps[i]! - last))) : f(sum + loss);
  });
  return sum;
}

function accumulate(
  cap: number,
  filter: boolean,
  losses: number[],
  steps: number[],
  last: number,
  initial = 0,
) {
  const acc = new LossAccumulator(initial, filter, cap);
  losses.forEach((loss, i) => acc.add(tf.scalar(loss), steps[i]!, last));
  const value = acc.read(last);
  return { acc, value };
}

const LOSSES = [3.5, 2.25, Number.NaN, 4.125, Number.POSITIVE_INFINITY, 1.75, 0.5];
const STEPS = [10, 11, 12, 13, 14, 15, 16];
const LAST = 10;

describe.each([
  ["read directly", 1000],
  ["folded on the device", 3],
])("%s", (_name, cap) => {
  test("with the filter: HF's replacement for NaN and Inf", () => {
    const before = tf.memory().numTensors;
    const { acc, value } = accumulate(cap, true, LOSSES, STEPS, LAST, 0.75);
    expect(value).toBeCloseTo(reference(0.75, LOSSES, STEPS, LAST, true), 4);
    acc.reset();
    expect(tf.memory().numTensors).toBe(before);
  });

  test("without the filter: a NaN makes the sum NaN", () => {
    const { acc, value } = accumulate(cap, false, LOSSES, STEPS, LAST);
    expect(value).toBeNaN();
    acc.reset();
  });

  test("finite losses: the plain sum; reading twice gives the same; reset starts over", () => {
    const losses = [1, 2, 3, 4, 5, 6, 7];
    const { acc, value } = accumulate(cap, true, losses, STEPS, LAST);
    expect(value).toBe(28);
    expect(acc.read(LAST)).toBe(28);
    acc.add(tf.scalar(2.5), 17, LAST);
    expect(acc.read(LAST)).toBe(30.5);
    acc.reset();
    expect(acc.read(LAST)).toBe(0);
    acc.reset();
  });
});

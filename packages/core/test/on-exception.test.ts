// trainkit's onException event: when train() throws, every callback (guarded integrations too,
// even switched off ones) hears about it before the original error is rethrown unchanged.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, expect, test } from "vitest";
import {
  PrinterCallback,
  Trainer,
  TrainerCallback,
  TrainingArguments,
  setLogger,
  type CallbackContext,
} from "../src/index.js";
import { definePlugin } from "../src/plugin/index.js";

const work = mkdtempSync(join(tmpdir(), "trainkit-on-exception-"));
const messages: string[] = [];
beforeAll(async () => {
  await tf.setBackend("cpu");
  setLogger({ info: () => {}, warn: (m) => messages.push(m) });
});
afterAll(() => {
  setLogger();
  rmSync(work, { recursive: true, force: true });
});

class Boom extends TrainerCallback {
  override onStepEnd(_a: unknown, state: { globalStep: number }) {
    if (state.globalStep === 3) throw new Error("boom at step 3");
  }
}

class Recorder extends TrainerCallback {
  seen: unknown[] = [];
  override onException(_a: unknown, _s: unknown, _c: unknown, ctx: CallbackContext) {
    this.seen.push(ctx.error);
  }
}

/** An integration that fails early (so it is switched off), then still hears of the failure. */
class FlakyTracker extends TrainerCallback {
  failures: unknown[] = [];
  override onTrainBegin(): void {
    throw new Error("tracker down");
  }
  override onException(_a: unknown, _s: unknown, _c: unknown, ctx: CallbackContext) {
    this.failures.push(ctx.error);
    throw new Error("and onException fails too");
  }
}

test("train() failing calls onException on every callback, then rethrows the original error", async () => {
  const tracker = new FlakyTracker();
  const recorder = new Recorder();
  const t = new Trainer({
    model: tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 1 })] }),
    loss: "meanSquaredError",
    trainDataset: Array.from({ length: 16 }, (_, i) => ({ x: [i / 16, 1], y: i / 16 })),
    callbacks: [Boom, recorder],
    plugins: [definePlugin({ name: "flaky", create: () => tracker })],
    args: new TrainingArguments({
      outputDir: work,
      maxSteps: 10,
      disableTqdm: true,
      reportTo: ["flaky"],
      backend: "cpu",
    }),
  });
  t.popCallback(PrinterCallback);
  await expect(t.train()).rejects.toThrow("boom at step 3");
  expect(recorder.seen).toHaveLength(1);
  expect((recorder.seen[0] as Error).message).toBe("boom at step 3");
  expect(tracker.failures).toHaveLength(1);
  expect(messages.some((m) => m.includes('"flaky" failed in onTrainBegin: tracker down'))).toBe(
    true,
  );
  t.dispose();
});

test("Trainer.close() awaits close() on every callback that has one; a failing one is reported", async () => {
  const closed: string[] = [];
  class Closing extends TrainerCallback {
    async close() {
      await new Promise((r) => setTimeout(r, 10));
      closed.push("closing");
    }
  }
  class Broken extends TrainerCallback {
    close() {
      throw new Error("cannot close");
    }
  }
  const t = new Trainer({
    model: tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 1 })] }),
    loss: "meanSquaredError",
    trainDataset: [{ x: [0, 1], y: 1 }],
    callbacks: [new Broken(), new Closing()],
    args: new TrainingArguments({ outputDir: work, reportTo: "none", backend: "cpu" }),
  });
  await t.close();
  expect(closed).toEqual(["closing"]);
  expect(messages.some((m) => m.includes("Broken.close failed: cannot close"))).toBe(true);
  t.dispose();
});

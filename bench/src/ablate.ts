import "@tensorflow/tfjs-backend-wasm";
import * as tf from "@tensorflow/tfjs";
import { Trainer, TrainingArguments, setLogger } from "@trainkit/core";
import { median } from "./measure.js";
setLogger({ info() {}, warn() {} });
await tf.setBackend(process.argv[2] ?? "wasm");
const mk = () => tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [4] })] });
const steps = 2000;
const x = tf.randomNormal([8 * steps, 4]);
const y = tf.randomNormal([8 * steps, 1]);
const xs = x.dataSync() as Float32Array,
  ys = y.dataSync() as Float32Array;
async function run(opts: Record<string, unknown>) {
  const t = new Trainer({
    model: mk(),
    loss: "meanSquaredError",
    args: new TrainingArguments({
      maxSteps: steps,
      loggingSteps: 50,
      saveStrategy: "no",
      reportTo: "none",
      disableTqdm: true,
      outputDir: "/tmp/x",
      ...opts,
    }),
    trainDataset: { x, y },
  });
  t.popCallback(t.callbackHandler.callbacks.at(-1)!);
  const s = performance.now();
  await t.train();
  return steps / ((performance.now() - s) / 1000);
}
function minimal() {
  const m = mk();
  const opt = tf.train.adam(5e-5);
  const bx = new Float32Array(32),
    by = new Float32Array(8);
  const s = performance.now();
  for (let i = 0; i < steps; i++) {
    bx.set(xs.subarray(i * 32, i * 32 + 32));
    by.set(ys.subarray(i * 8, i * 8 + 8));
    tf.tidy(() => {
      const a = tf.tensor2d(bx, [8, 4]),
        b = tf.tensor2d(by, [8, 1]);
      opt.minimize(() => tf.mean(tf.square(tf.sub(m.apply(a) as tf.Tensor, b))) as tf.Scalar);
    });
  }
  return steps / ((performance.now() - s) / 1000);
}
const variants: Record<string, () => Promise<number> | number> = {
  minimal,
  defaults: () => run({}),
  noNanFilter: () => run({ loggingNanInfFilter: false }),
  noClip: () => run({ maxGradNorm: 0 }),
  neither: () => run({ loggingNanInfFilter: false, maxGradNorm: 0 }),
  adamNeither: () => run({ loggingNanInfFilter: false, maxGradNorm: 0, optim: "adam" }),
};
const r: Record<string, number[]> = {};
for (let k = -1; k < 3; k++)
  for (const [n, f] of Object.entries(variants)) {
    const v = await f();
    if (k >= 0) (r[n] ??= []).push(v);
  }
for (const [n, v] of Object.entries(r))
  console.log(
    n.padEnd(14),
    median(v).toFixed(0),
    "steps/s",
    (median(r.minimal!) / median(v)).toFixed(2) + "x",
  );

// `pnpm bench`: every benchmark in turn; each prints its figures and writes bench/results/*.json.
import "@tensorflow/tfjs-backend-wasm";
import * as tf from "@tensorflow/tfjs";
import { benchDispatch } from "./dispatch.js";
import { benchMlflow } from "./mlflow.js";
import { benchTensorBoard } from "./tensorboard.js";
import { machineInfo, writeResult } from "./measure.js";
import { benchTraining } from "./training.js";

benchDispatch();

const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const results = [];
for (const backend of ["wasm", "cpu"]) {
  const r = await benchTraining(backend, rounds);
  results.push(r);
  console.log(
    `\nTraining speed on the ${backend} backend (steps/s, median of ${rounds} interleaved rounds)`,
  );
  console.log(
    `  (a) Dense 784→128→10, batch 32: fit ${r.a.fit} | Trainer, same work (Adam, no clipping) ${r.a.trainer_same_work} = ${r.a.ratio_same_work}x fit | Trainer, HF defaults (AdamW, clip 1.0, linear decay) ${r.a.trainer_defaults} = ${r.a.ratio_defaults}x fit`,
  );
  console.log(
    `  (b) Dense 4→1, batch 8, HF defaults: minimal loop ${r.b.minimal_loop} | Trainer ${r.b.trainer} -> Trainer takes ${r.b.slowdown}x the minimal loop's time (HF: 2.84x)`,
  );
}
const path = writeResult("training", {
  ...machineInfo(),
  rounds,
  targets: { a_wasm_min_ratio: 1.1, a_min_ratio: 1.0, b_max_slowdown: 1.15 },
  hf_slowdown_vs_minimal_loop: 2.84,
  results,
});
console.log(`  written to ${path}`);

benchTensorBoard();

await tf.setBackend("wasm");
await benchMlflow(rounds);

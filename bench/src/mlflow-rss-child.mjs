// Child process of the MLflow benchmark's (c): logs 1,000,000 points (100,000 logs x 10
// metrics) with or without MlflowCallback, then prints its peak RSS. Usage: node <this> none|mlflow <outputDir> <url>
import { TrainerControl, TrainerState, TrainingArguments } from "@trainkit/core";
import { MlflowCallback } from "@trainkit/callback-mlflow";
const [mode, outputDir, url] = process.argv.slice(2);
const args = new TrainingArguments({ outputDir, reportTo: "none", disableTqdm: true });
const state = new TrainerState();
const control = new TrainerControl();
const quiet = { info() {}, warn() {} };
const callback =
  mode === "mlflow"
    ? new MlflowCallback({ trackingUri: url, experimentName: "bench-rss", logger: quiet, env: {} })
    : undefined;
await callback?.onTrainBegin(args, state, control, {});
const names = Array.from({ length: 10 }, (_, k) => "metric_" + k);
let checksum = 0;
for (let step = 0; step < 100000; step++) {
  state.globalStep = step;
  const logs = {};
  for (let k = 0; k < 10; k++) logs[names[k]] = ((step * 7919 + k * 104729) % 100003) / 100003;
  checksum += logs.metric_3;
  if (callback) await callback.onLog(args, state, control, { logs });
  else await Promise.resolve(); // the same await the Trainer's dispatch costs
}
const pending = callback ? callback["outbox"]?.pending : 0;
const peakMb = process.resourceUsage().maxRSS / 1024;
console.log(JSON.stringify({ peakMb, pending, checksum }));
process.exit(0);

/**
 * MLflow against a real tracking server on loopback (testkit's startMlflowServer):
 * (a) training-step time with reportTo ["mlflow"] vs "none" (Dense 784→128→10, batch 32,
 *     a log every 10 steps; interleaved rounds, medians; the time from the first step to the
 *     last, so the final drain is not counted as step time);
 * (b) metric points delivered per second: MlflowCallback (onLog per log, then the train-end
 *     drain) vs the Python mlflow client doing what HF's MLflowCallback does (one
 *     mlflow.log_metrics(..., synchronous=False) per log, then flush), same logs;
 * (c) peak RSS of a process logging 1,000,000 points (100,000 logs × 10 metrics) through
 *     MlflowCallback with the server down, vs the same process with no integration.
 */
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs";
import {
  PrinterCallback,
  Trainer,
  TrainerCallback,
  TrainerControl,
  TrainerState,
  TrainingArguments,
  setLogger,
} from "@trainkit/core";
import mlflow, { MlflowCallback } from "@trainkit/callback-mlflow";
import { startMlflowServer, type MlflowServer } from "@trainkit/testkit";
import type { Outbox } from "@trainkit/core/plugin";
import { machineInfo, median, writeResult } from "./measure.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const python = join(root, ".venv", "bin", "python");
const quiet = { info: () => {}, warn: () => {} };

/** Times the steps only: first onStepBegin to last onStepEnd. */
class StepClock extends TrainerCallback {
  start = 0;
  end = 0;
  override onStepBegin() {
    if (this.start === 0) this.start = performance.now();
  }
  override onStepEnd() {
    this.end = performance.now();
  }
}

async function stepsPerSecond(reportTo: "none" | ["mlflow"], steps: number, outputDir: string) {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({
        units: 128,
        inputShape: [784],
        activation: "relu",
        kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
      }),
      tf.layers.dense({
        units: 10,
        activation: "softmax",
        kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
      }),
    ],
  });
  const rows = 2048;
  const x = tf.tensor2d(
    Float32Array.from({ length: rows * 784 }, (_, i) => ((i * 2654435761) % 1000) / 1000),
    [rows, 784],
  );
  const y = tf
    .oneHot(
      tf.tensor1d(
        Array.from({ length: rows }, (_, r) => r % 10),
        "int32",
      ),
      10,
    )
    .toFloat();
  const clock = new StepClock();
  const trainer = new Trainer({
    model,
    loss: "categoricalCrossentropy",
    trainDataset: { x, y },
    plugins: [mlflow],
    callbacks: [clock],
    args: new TrainingArguments({
      outputDir,
      maxSteps: steps,
      perDeviceTrainBatchSize: 32,
      loggingSteps: 10,
      saveStrategy: "no",
      disableTqdm: true,
      reportTo,
    }),
  });
  trainer.popCallback(PrinterCallback);
  await trainer.train();
  trainer.dispose();
  tf.dispose([x, y]);
  model.dispose();
  return steps / ((clock.end - clock.start) / 1000);
}

async function benchStepTime(server: MlflowServer, rounds: number, work: string) {
  process.env.MLFLOW_TRACKING_URI = server.url;
  process.env.MLFLOW_EXPERIMENT_NAME = "bench-step-time";
  const steps = 300;
  const none: number[] = [];
  const withMlflow: number[] = [];
  await stepsPerSecond("none", 50, join(work, "warmup")); // compile kernels once
  for (let round = 0; round < rounds; round++) {
    none.push(await stepsPerSecond("none", steps, join(work, `none-${round}`)));
    withMlflow.push(await stepsPerSecond(["mlflow"], steps, join(work, `mlflow-${round}`)));
  }
  const ratio = median(none) / median(withMlflow);
  return {
    steps,
    none_steps_per_s: Math.round(median(none)),
    mlflow_steps_per_s: Math.round(median(withMlflow)),
    step_time_ratio: Math.round(ratio * 1000) / 1000,
    rounds_none: none.map(Math.round),
    rounds_mlflow: withMlflow.map(Math.round),
  };
}

const PYTHON_HF = `
import json, sys, time, logging
logging.disable(logging.WARNING)
import mlflow
uri, experiment, logs, keys = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
mlflow.set_tracking_uri(uri)
mlflow.set_experiment(experiment)
names = ["metric_%02d" % k for k in range(keys)]
with mlflow.start_run():
    start = time.perf_counter()
    for step in range(logs):
        # HF's MLflowCallback.on_log: one call per log, asynchronous logging (MLflow >= 2.8).
        mlflow.log_metrics({n: ((step * 7919 + k * 104729) % 100003) / 100003 for k, n in enumerate(names)}, step=step, synchronous=False)
    mlflow.flush_async_logging()
    seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds}))
`;

const metricValue = (step: number, k: number) => ((step * 7919 + k * 104729) % 100_003) / 100_003;

function eventArgs(outputDir: string) {
  const args = new TrainingArguments({ outputDir, reportTo: "none", disableTqdm: true });
  const state = new TrainerState();
  return { args, state, control: new TrainerControl() };
}

async function oursPointsPerSecond(url: string, logs: number, keys: number, outputDir: string) {
  const callback = new MlflowCallback({
    trackingUri: url,
    experimentName: "bench-throughput-trainkit",
    logger: quiet,
    env: {},
  });
  const { args, state, control } = eventArgs(outputDir);
  await callback.onTrainBegin(args, state, control, {});
  // The run is created and its params and tags sent before the clock starts, as the Python
  // side starts its run (and logs no params) before its clock.
  await (callback as unknown as { outbox: Outbox }).outbox.drain({ deadlineMs: 30_000 });
  const names = Array.from({ length: keys }, (_, k) => `metric_${String(k).padStart(2, "0")}`);
  const start = performance.now();
  for (let step = 0; step < logs; step++) {
    state.globalStep = step;
    const entry: Record<string, number> = {};
    for (let k = 0; k < keys; k++) entry[names[k]!] = metricValue(step, k);
    await callback.onLog(args, state, control, { logs: entry });
  }
  await callback.onTrainEnd(args, state, control, {}); // drains: everything delivered
  return (logs * keys) / ((performance.now() - start) / 1000);
}

/**
 * Asynchronous on purpose: the MLflow server writes its access log into a pipe this process
 * reads; a blocking execFileSync would let that pipe fill and stall the server mid-benchmark.
 */
async function pythonPointsPerSecond(url: string, logs: number, keys: number) {
  const { stdout: out } = await promisify(execFile)(
    python,
    ["-c", PYTHON_HF, url, "bench-throughput-python", String(logs), String(keys)],
    { encoding: "utf8" },
  );
  const { seconds } = JSON.parse(out.trim().split("\n").pop()!) as { seconds: number };
  return (logs * keys) / seconds;
}

async function benchThroughput(server: MlflowServer, rounds: number, work: string) {
  const logs = 1000;
  const keys = 5;
  const ours: number[] = [];
  const python: number[] = [];
  for (let round = 0; round < rounds; round++) {
    ours.push(await oursPointsPerSecond(server.url, logs, keys, join(work, `throughput-${round}`)));
    python.push(await pythonPointsPerSecond(server.url, logs, keys));
  }
  return {
    points: logs * keys,
    trainkit_points_per_s: Math.round(median(ours)),
    python_hf_points_per_s: Math.round(median(python)),
    ratio: Math.round((median(ours) / median(python)) * 10) / 10,
    rounds_trainkit: ours.map(Math.round),
    rounds_python: python.map(Math.round),
  };
}

/** Runs mlflow-rss-child.mjs (a file: `node -e` would shift process.argv) and reads its figures. */
function peakRss(mode: "none" | "mlflow", outputDir: string, url: string) {
  const child = join(dirname(fileURLToPath(import.meta.url)), "mlflow-rss-child.mjs");
  const out = execFileSync(process.execPath, [child, mode, outputDir, url], {
    encoding: "utf8",
    cwd: join(root, "bench"),
    stdio: ["ignore", "pipe", "ignore"],
  });
  return JSON.parse(out.trim().split("\n").pop()!) as { peakMb: number; pending: number };
}

async function benchMemory(work: string, rounds: number) {
  // A port nothing listens on: the server is down for the whole run.
  const downUrl = "http://127.0.0.1:9";
  const none: number[] = [];
  const withMlflow: number[] = [];
  let pending = 0;
  for (let round = 0; round < rounds; round++) {
    none.push(peakRss("none", join(work, `rss-none-${round}`), downUrl).peakMb);
    const run = peakRss("mlflow", join(work, `rss-mlflow-${round}`), downUrl);
    withMlflow.push(run.peakMb);
    pending = run.pending;
  }
  return {
    points: 1_000_000,
    pending_in_spool: pending,
    none_peak_rss_mb: Math.round(median(none)),
    mlflow_peak_rss_mb: Math.round(median(withMlflow)),
    extra_mb: Math.round(median(withMlflow) - median(none)),
  };
}

export async function benchMlflow(rounds = 5) {
  const previous = setLogger(quiet);
  const work = mkdtempSync(join(tmpdir(), "trainkit-bench-mlflow-"));
  // MLflow's own default of 4 workers, as a user's server would run.
  const server = await startMlflowServer({ workers: 4 });
  try {
    const a = await benchStepTime(server, rounds, work);
    console.log(
      `\nMLflow against a real server on loopback\n  (a) step time, Dense 784→128→10 batch 32, log every 10 steps: none ${a.none_steps_per_s} steps/s | mlflow ${a.mlflow_steps_per_s} steps/s -> ${a.step_time_ratio}x the step time (target ≤ 1.05)`,
    );
    const b = await benchThroughput(server, 5, work);
    console.log(
      `  (b) delivery, ${b.points} points in logs of 5: trainkit ${b.trainkit_points_per_s} points/s | Python mlflow as HF uses it ${b.python_hf_points_per_s} points/s -> ${b.ratio}x (target ≥ 10)`,
    );
    const c = await benchMemory(work, 3);
    console.log(
      `  (c) peak RSS logging 1,000,000 points with the server down: none ${c.none_peak_rss_mb} MB | mlflow ${c.mlflow_peak_rss_mb} MB -> +${c.extra_mb} MB (target < 64 MB); ${c.pending_in_spool} points kept in the spool`,
    );
    const path = writeResult("mlflow", {
      ...machineInfo(),
      backend: tf.getBackend(),
      targets: { a_max_step_time_ratio: 1.05, b_min_ratio: 10, c_max_extra_mb: 64 },
      a,
      b,
      c,
    });
    console.log(`  written to ${path}`);
  } finally {
    await server.stop();
    setLogger(previous);
    rmSync(work, { recursive: true, force: true });
  }
}

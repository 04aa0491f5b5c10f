// Shared by the Trainer parity tests: the recording callback of HF's trace.py, the tiny model
// and data, the HF trace files, and helpers that turn both sides into comparable records.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import * as tf from "@tensorflow/tfjs";
import {
  CALLBACK_EVENTS,
  TrainerCallback,
  type CallbackContext,
  type CallbackEvent,
  type TrainerControl,
  type TrainerState,
  type TrainingArguments,
  type TrainingArgumentsOptions,
} from "../../src/index.js";
import { toCamelCase, toSnakeCase } from "../../src/util/case.js";

export const TRACES = resolve(import.meta.dirname, "../fixtures/hf-traces");

export const FLAG_NAMES = [
  "should_log",
  "should_evaluate",
  "should_save",
  "should_epoch_stop",
  "should_training_stop",
] as const;
export type Flags = Record<(typeof FLAG_NAMES)[number], boolean>;

/** One event as trace.py's Recorder stored it (the fields a case has are optional). */
export interface TraceEvent {
  event: string;
  global_step: number;
  epoch: number;
  control: Flags;
  control_in?: Flags;
  log_keys?: string[];
  metric_keys?: string[];
  best_metric_at_event?: number | null;
  checkpoints?: string[];
  best_model_checkpoint?: string | null;
  best_global_step?: number | null;
  state?: Record<string, unknown>;
}

export interface TraceSummary {
  case: string;
  args: Record<string, unknown>;
  resume_from_checkpoint: string | null;
  callback_order: string[];
  train_output: { global_step: number; training_loss: number; metric_keys: string[] };
  eval_metric_keys: string[];
  predict_metric_keys: string[];
  predictions_shape: number[];
  state: Record<string, unknown>;
  final_control: Flags;
  checkpoints_remaining: string[];
  last_checkpoint_state_file: string;
  event_counts: Record<string, number>;
}

export interface TraceCase {
  events: TraceEvent[];
  summary: TraceSummary;
  logHistory: Record<string, unknown>[];
  trainerStateText: string;
}

const readTrace = (name: string): unknown =>
  JSON.parse(readFileSync(resolve(TRACES, name), "utf8"));

export function loadTrace(name: string): TraceCase {
  return {
    events: readTrace(`${name}.events.json`) as TraceEvent[],
    summary: readTrace(`${name}.summary.json`) as TraceSummary,
    logHistory: readTrace(`${name}.log_history.json`) as Record<string, unknown>[],
    trainerStateText: readFileSync(resolve(TRACES, `${name}.trainer_state.json`), "utf8"),
  };
}

/** HF's argument names (snake_case) to TrainingArguments options (camelCase). */
export function argsFromHf(args: Record<string, unknown>): TrainingArgumentsOptions {
  return Object.fromEntries(
    Object.entries(args).map(([key, value]) => [toCamelCase(key), value]),
  ) as TrainingArgumentsOptions;
}

/** The setup every trace shares (trace.py), for a run in `outputDir`. */
export function sharedArgs(outputDir: string): TrainingArgumentsOptions {
  return {
    outputDir,
    reportTo: "none",
    disableTqdm: true,
    seed: 42,
    perDeviceTrainBatchSize: 8,
    perDeviceEvalBatchSize: 8,
    backend: "cpu",
  };
}

/** HF's TinyModel: one Linear(4, 1), deterministic weights. */
export function tinyModel(seed = 1): tf.LayersModel {
  return tf.sequential({
    layers: [
      tf.layers.dense({
        inputShape: [4],
        units: 1,
        kernelInitializer: tf.initializers.glorotUniform({ seed }),
      }),
    ],
  });
}

/**
 * `rows` examples with `x` ~ N(0, 1) and a noisy linear target of HF-like magnitude (MSE ~30).
 * `sign` -1 negates the target's weights: a model that learns the sign-1 data gets worse on it.
 * (tfjs treats a seed of 0 as no seed, so the seeds used are offset.)
 */
export function tinyData(rows: number, seed: number, sign = 1): { x: tf.Tensor2D; y: tf.Tensor2D } {
  return tf.tidy(() => {
    const x = tf.randomNormal([rows, 4], 0, 1, "float32", 1000 + seed) as tf.Tensor2D;
    const w = tf.mul(tf.tensor2d([[3], [-2], [4], [1.5]]), sign);
    const noise = tf.randomNormal([rows, 1], 0, 1, "float32", 2000 + seed);
    const y = tf.add(tf.matMul(x, w), tf.add(noise, 1)) as tf.Tensor2D;
    return { x, y };
  });
}

/** What the Recorder stores for one event: the trace's fields, in the trace's names. */
export interface RecordedEvent {
  event: string;
  global_step: number;
  epoch: number;
  control: Flags;
  control_in?: Flags;
  /** Keys of ctx.logs in insertion order (the trace stores them sorted). */
  log_keys?: string[];
  /** A copy of ctx.logs as the recorder saw it. */
  logs?: Record<string, number>;
  metric_keys?: string[];
  metrics?: Record<string, number>;
  best_metric_at_event?: number | null;
  checkpoints?: string[];
  best_model_checkpoint?: string | null;
  best_global_step?: number | null;
  state?: Record<string, unknown>;
}

export function flagsOf(control: TrainerControl): Flags {
  return {
    should_log: control.shouldLog,
    should_evaluate: control.shouldEvaluate,
    should_save: control.shouldSave,
    should_epoch_stop: control.shouldEpochStop,
    should_training_stop: control.shouldTrainingStop,
  };
}

/** onStepEnd → on_step_end. */
export const hfEventName = (event: CallbackEvent): string => toSnakeCase(event);

/** Checkpoint folder names in `dir`, by step (HF's sorted order). */
export function checkpointsIn(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => /^checkpoint-\d+$/.test(name))
    .sort((a, b) => Number(a.slice(11)) - Number(b.slice(11)));
}

/**
 * trace.py's Recorder: every event with global_step, epoch, the five flags and, per event,
 * the extras the trace has (log keys, metric keys, checkpoints, best fields, state snapshot).
 * Its class name is `Recorder`, as in the traces' callback_order.
 */
export class Recorder extends TrainerCallback {
  readonly events: RecordedEvent[] = [];
  /** The state object on_init_end saw, for `same_object_as_at_on_init_end`. */
  private initState: TrainerState | undefined;

  constructor(private readonly outputDir: string) {
    super();
    for (const event of CALLBACK_EVENTS) {
      (this as unknown as Record<string, unknown>)[event] = (
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        ctx: CallbackContext,
      ) => this.record(event, args, state, control, ctx);
    }
  }

  private record(
    event: CallbackEvent,
    _args: TrainingArguments,
    state: TrainerState,
    control: TrainerControl,
    ctx: CallbackContext,
  ): void {
    const entry: RecordedEvent = {
      event: hfEventName(event),
      global_step: state.globalStep,
      epoch: state.epoch,
      control: flagsOf(control),
    };
    if (event === "onInitEnd") this.initState = state;
    if (event === "onInitEnd" || event === "onTrainBegin" || event === "onTrainEnd") {
      entry.state = {
        max_steps: state.maxSteps,
        num_train_epochs: state.numTrainEpochs,
        logging_steps: state.loggingSteps,
        eval_steps: state.evalSteps,
        save_steps: state.saveSteps,
        train_batch_size: state.trainBatchSize,
        log_history_len: state.logHistory.length,
        same_object_as_at_on_init_end: state === this.initState,
      };
    }
    if (event === "onLog" && ctx.logs) {
      entry.log_keys = Object.keys(ctx.logs);
      entry.logs = { ...ctx.logs };
    }
    if ((event === "onEvaluate" || event === "onPredict") && ctx.metrics) {
      entry.metric_keys = Object.keys(ctx.metrics).sort();
      entry.metrics = { ...ctx.metrics };
    }
    if (event === "onEvaluate") entry.best_metric_at_event = state.bestMetric;
    if (event === "onSave" || event === "onTrainEnd") {
      entry.checkpoints = checkpointsIn(this.outputDir);
      entry.best_model_checkpoint = state.bestModelCheckpoint;
      entry.best_global_step = state.bestGlobalStep;
    }
    this.events.push(entry);
  }
}

/**
 * Placed first in the list (before DefaultFlowCallback), it sees the flags as they are when
 * the handler begins dispatching an event, after the handler's resets: the trace's `control_in`.
 */
export class ControlInRecorder extends TrainerCallback {
  readonly flags: Flags[] = [];
  constructor() {
    super();
    for (const event of CALLBACK_EVENTS) {
      (this as unknown as Record<string, unknown>)[event] = (
        _args: TrainingArguments,
        _state: TrainerState,
        control: TrainerControl,
      ) => {
        this.flags.push(flagsOf(control));
      };
    }
  }
}

/** Event counts in the summary's form: `on_x` → count, events that never fired left out. */
export function countEvents(events: { event: string }[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { event } of events) counts[event] = (counts[event] ?? 0) + 1;
  return counts;
}

/** The spec's count lines list events in this order. */
export const COUNT_ORDER = [
  "on_init_end",
  "on_train_begin",
  "on_epoch_begin",
  "on_step_begin",
  "on_substep_end",
  "on_pre_optimizer_step",
  "on_optimizer_step",
  "on_step_end",
  "on_log",
  "on_prediction_step",
  "on_evaluate",
  "on_save",
  "on_epoch_end",
  "on_train_end",
  "on_predict",
] as const;

/** A spec count line (`1,1,2,16,...`) as a summary-style record. */
export function countsFromLine(line: string): Record<string, number> {
  const values = line.split(",").map(Number);
  const counts: Record<string, number> = {};
  COUNT_ORDER.forEach((event, i) => {
    if (values[i]! > 0) counts[event] = values[i]!;
  });
  return counts;
}

/** Keys whose values depend on the numbers of a run (losses, timing), masked for structure. */
const VALUE_KEYS =
  /^(loss|grad_norm|learning_rate|eval_loss|train_loss|\w+_runtime|\w+_samples_per_second|\w+_steps_per_second|best_metric)$/;

/**
 * A trainer_state.json's text with the run-dependent values masked: what is left (every key,
 * its order, steps, epochs, flags, ints vs floats) must be HF's byte for byte.
 */
export function maskTrainerState(text: string): string {
  return text.replace(
    /"(\w+)": (-?[\d.eE+-]+|NaN|Infinity|-Infinity)(,?)$/gm,
    (whole, key: string, _value: string, comma: string) =>
      VALUE_KEYS.test(key) ? `"${key}": <value>${comma}` : whole,
  );
}

/** The events the spec's rules give for a scenario, as `event@global_step` strings. */
export class ExpectedEvents {
  readonly list: string[] = [];

  add(event: string, globalStep: number, times = 1): this {
    for (let i = 0; i < times; i++) this.list.push(`${event}@${globalStep}`);
    return this;
  }

  /** One update step without accumulation: global_step goes from `before` to `before + 1`. */
  step(before: number): this {
    return this.add("on_step_begin", before)
      .add("on_pre_optimizer_step", before)
      .add("on_optimizer_step", before)
      .add("on_step_end", before + 1);
  }

  /** evaluate(): a prediction step per batch, the eval log, on_evaluate. */
  evaluate(globalStep: number, batches = 2): this {
    return this.add("on_prediction_step", globalStep, batches)
      .add("on_log", globalStep)
      .add("on_evaluate", globalStep);
  }

  /** predict(): a prediction step per batch, on_predict. */
  predict(globalStep: number, batches = 2): this {
    return this.add("on_prediction_step", globalStep, batches).add("on_predict", globalStep);
  }
}

export const eventKeys = (events: { event: string; global_step: number }[]): string[] =>
  events.map((e) => `${e.event}@${e.global_step}`);

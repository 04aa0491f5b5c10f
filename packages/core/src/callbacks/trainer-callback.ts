import type { TrainingArguments } from "../args/training-arguments.js";
import type { TrainerControl } from "../state/trainer-control.js";
import type { TrainerState } from "../state/trainer-state.js";

/** Every event a callback can receive, in HF's order of declaration. */
export const CALLBACK_EVENTS = [
  "onInitEnd",
  "onTrainBegin",
  "onTrainEnd",
  "onEpochBegin",
  "onEpochEnd",
  "onStepBegin",
  "onPreOptimizerStep",
  "onOptimizerStep",
  "onSubstepEnd",
  "onStepEnd",
  "onEvaluate",
  "onPredict",
  "onSave",
  "onLog",
  "onPredictionStep",
] as const;

export type CallbackEvent = (typeof CALLBACK_EVENTS)[number];

/** Logged values and metrics: HF's keys (`loss`, `eval_loss`, ...) with their values. */
export type Logs = Record<string, number>;

/**
 * What the Trainer passes to every event besides args, state and control: HF's keyword
 * arguments. `logs` is set for onLog, `metrics` for onEvaluate and onPredict.
 */
export interface CallbackContext {
  readonly model?: unknown;
  readonly processingClass?: unknown;
  readonly optimizer?: unknown;
  readonly lrScheduler?: unknown;
  readonly trainDataloader?: unknown;
  readonly evalDataloader?: unknown;
  readonly logs?: Logs;
  readonly metrics?: Logs;
  readonly [extra: string]: unknown;
}

/**
 * What an event method may return: nothing, a TrainerControl that replaces the current one
 * for the callbacks that follow, or a Promise of either.
 */
export type CallbackResult = TrainerControl | void | Promise<TrainerControl | void>;

/**
 * Base class for callbacks: one no-op method per event. Subclass it and override the events
 * you need; each receives `(args, state, control, ctx)`.
 */
export class TrainerCallback {
  /** After the Trainer's constructor has finished. */
  onInitEnd(
    _args: TrainingArguments,
    _state: TrainerState,
    _control: TrainerControl,
    _ctx: CallbackContext,
  ): CallbackResult {}
  /** At the beginning of training. */
  onTrainBegin(
    _args: TrainingArguments,
    _state: TrainerState,
    _control: TrainerControl,
    _ctx: CallbackContext,
  ): CallbackResult {}
  /** At the end of training. */
  onTrainEnd(
    _args: TrainingArguments,
    _state: TrainerState,
    _control: TrainerControl,
    _ctx: CallbackContext,
  ): CallbackResult {}
  /** At the beginning of an epoch. */
  onEpochBegin(
    _args: TrainingArguments,
    _state: TrainerState,
    _control: TrainerControl,
    _ctx: CallbackContext,
  ): CallbackResult {}
  /** At the end of an epoch. */
  onEpochEnd(
    _args: TrainingArguments,
    _state: TrainerState,
    _control: TrainerControl,
    _ctx: CallbackContext,
  ): CallbackResult {}
  /** At the beginning of a training step (of the first micro-batch under gradient accumulation). */
  onStepBegin(
    _args: TrainingArguments,
    _state: TrainerState,
    _control: TrainerControl,
    _ctx: CallbackContext,
  ): CallbackResult {}
  /** After gradients are computed and clipped, before the optimizer step. */
  onPreOptimizerStep(
    _args: TrainingArguments,
    _state: TrainerState,
    _control: TrainerControl,
    _ctx: CallbackContext,
  ): CallbackResult {}
  /** After the optimizer step, before the gradients are zeroed. */
  onOptimizerStep(
    _args: TrainingArguments,
    _state: TrainerState,
    _control: TrainerControl,
    _ctx: CallbackContext,
  ): CallbackResult {}
  /** At the end of a gradient-accumulation substep (every micro-batch but the last of a group). */
  onSubstepEnd(
    _args: TrainingArguments,
    _state: TrainerState,
    _control: TrainerControl,
    _ctx: CallbackContext,
  ): CallbackResult {}
  /** At the end of a training step (after the global step was incremented). */
  onStepEnd(
    _args: TrainingArguments,
    _state: TrainerState,
    _control: TrainerControl,
    _ctx: CallbackContext,
  ): CallbackResult {}
  /** After an evaluation; `ctx.metrics` holds its metrics. */
  onEvaluate(
    _args: TrainingArguments,
    _state: TrainerState,
    _control: TrainerControl,
    _ctx: CallbackContext,
  ): CallbackResult {}
  /** After a successful prediction; `ctx.metrics` holds its metrics. */
  onPredict(
    _args: TrainingArguments,
    _state: TrainerState,
    _control: TrainerControl,
    _ctx: CallbackContext,
  ): CallbackResult {}
  /** After a checkpoint was saved. */
  onSave(
    _args: TrainingArguments,
    _state: TrainerState,
    _control: TrainerControl,
    _ctx: CallbackContext,
  ): CallbackResult {}
  /** After logging; `ctx.logs` holds what was logged. */
  onLog(
    _args: TrainingArguments,
    _state: TrainerState,
    _control: TrainerControl,
    _ctx: CallbackContext,
  ): CallbackResult {}
  /** After each prediction (evaluation or predict) batch. */
  onPredictionStep(
    _args: TrainingArguments,
    _state: TrainerState,
    _control: TrainerControl,
    _ctx: CallbackContext,
  ): CallbackResult {}
  /**
   * trainkit's addition (HF has no such event; Lightning's on_exception): train() threw
   * `ctx.error`. Trackers mark their run failed here. Errors thrown here are reported and
   * ignored; the original error is rethrown.
   */
  onException(
    _args: TrainingArguments,
    _state: TrainerState,
    _control: TrainerControl,
    _ctx: CallbackContext,
  ): void | Promise<void> {}
}

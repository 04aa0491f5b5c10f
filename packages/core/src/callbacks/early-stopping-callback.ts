import type { TrainingArguments } from "../args/training-arguments.js";
import type { ExportableState, StateRecord } from "../state/exportable-state.js";
import type { TrainerControl } from "../state/trainer-control.js";
import type { TrainerState } from "../state/trainer-state.js";
import { logger } from "../util/logger.js";
import { TrainerCallback, type CallbackContext } from "./trainer-callback.js";

export interface EarlyStoppingOptions {
  /** Evaluations without improvement to wait before stopping. */
  earlyStoppingPatience?: number;
  /** How much better than the best a metric must be to count as an improvement. */
  earlyStoppingThreshold?: number;
}

/**
 * Stops training when `metricForBestModel` has not improved for `earlyStoppingPatience`
 * evaluations (HF's EarlyStoppingCallback). Its counter is saved in checkpoints.
 */
export class EarlyStoppingCallback extends TrainerCallback implements ExportableState {
  readonly earlyStoppingPatience: number;
  readonly earlyStoppingThreshold: number;
  /** Evaluations in a row without improvement. */
  earlyStoppingPatienceCounter = 0;

  constructor({
    earlyStoppingPatience = 1,
    earlyStoppingThreshold = 0,
  }: EarlyStoppingOptions = {}) {
    super();
    if (!Number.isInteger(earlyStoppingPatience) || earlyStoppingPatience < 1) {
      throw new Error(
        `EarlyStoppingCallback: earlyStoppingPatience must be a whole number of at least 1 ` +
          `(got ${String(earlyStoppingPatience)}).`,
      );
    }
    if (!Number.isFinite(earlyStoppingThreshold) || earlyStoppingThreshold < 0) {
      throw new Error(
        `EarlyStoppingCallback: earlyStoppingThreshold must be a number of 0 or more ` +
          `(got ${String(earlyStoppingThreshold)}).`,
      );
    }
    this.earlyStoppingPatience = earlyStoppingPatience;
    this.earlyStoppingThreshold = earlyStoppingThreshold;
  }

  /** Counts an evaluation: reset on an improvement over the best metric, else one more. */
  checkMetricValue(args: TrainingArguments, state: TrainerState, metricValue: number): void {
    const best = state.bestMetric;
    const improved =
      best === null ||
      ((args.greaterIsBetter ? metricValue > best : metricValue < best) &&
        Math.abs(metricValue - best) > this.earlyStoppingThreshold);
    this.earlyStoppingPatienceCounter = improved ? 0 : this.earlyStoppingPatienceCounter + 1;
  }

  /** Fails before any work when the arguments cannot drive early stopping. */
  checkArgs(args: TrainingArguments): void {
    if (args.metricForBestModel === null) {
      throw new Error(
        "EarlyStoppingCallback requires metricForBestModel in TrainingArguments, e.g. " +
          '{ metricForBestModel: "loss" } (or loadBestModelAtEnd: true, which defaults it to "loss").',
      );
    }
    if (args.evalStrategy === "no") {
      throw new Error(
        'EarlyStoppingCallback requires evaluations, but evalStrategy is "no". ' +
          'Set evalStrategy to "steps" or "epoch" and pass an evalDataset.',
      );
    }
  }

  override onInitEnd(args: TrainingArguments) {
    this.checkArgs(args);
  }

  override onTrainBegin(args: TrainingArguments) {
    this.checkArgs(args);
    if (!args.loadBestModelAtEnd) {
      logger.warn(
        "Using EarlyStoppingCallback without loadBestModelAtEnd: true. Once training finishes, " +
          "the best model will not be loaded automatically.",
      );
    }
  }

  override onEvaluate(
    args: TrainingArguments,
    state: TrainerState,
    control: TrainerControl,
    ctx: CallbackContext,
  ) {
    const name = args.metricForBestModel ?? "loss";
    const key = name.startsWith("eval_") ? name : `eval_${name}`;
    const value = ctx.metrics?.[key];
    if (value === undefined) {
      logger.warn(
        `Early stopping requires metricForBestModel, but the evaluation metrics have no ` +
          `${key} (they have ${Object.keys(ctx.metrics ?? {}).join(", ") || "none"}), so early ` +
          `stopping is disabled for this evaluation.`,
      );
      return;
    }
    this.checkMetricValue(args, state, value);
    if (this.earlyStoppingPatienceCounter >= this.earlyStoppingPatience)
      control.shouldTrainingStop = true;
  }

  state(): StateRecord {
    return {
      args: {
        early_stopping_patience: this.earlyStoppingPatience,
        early_stopping_threshold: this.earlyStoppingThreshold,
      },
      attributes: { early_stopping_patience_counter: this.earlyStoppingPatienceCounter },
    };
  }

  static fromState(record: StateRecord): EarlyStoppingCallback {
    const callback = new EarlyStoppingCallback({
      earlyStoppingPatience: numberOr(record.args?.early_stopping_patience, 1),
      earlyStoppingThreshold: numberOr(record.args?.early_stopping_threshold, 0),
    });
    callback.earlyStoppingPatienceCounter = numberOr(
      record.attributes?.early_stopping_patience_counter,
      0,
    );
    return callback;
  }
}

function numberOr(value: unknown, fallback: number): number {
  return typeof value === "number" ? value : fallback;
}

import type { StateRecord } from "./exportable-state.js";

export interface TrainerControlFlags {
  shouldTrainingStop?: boolean;
  shouldEpochStop?: boolean;
  shouldSave?: boolean;
  shouldEvaluate?: boolean;
  shouldLog?: boolean;
}

/**
 * The flags through which callbacks steer the training loop (HF's TrainerControl).
 * The CallbackHandler resets them at the start of the events that handle them.
 */
export class TrainerControl {
  /** Stop training; the loop ends after this step's log, evaluation and save. */
  shouldTrainingStop: boolean;
  /** Stop the current epoch. */
  shouldEpochStop: boolean;
  /** Save a checkpoint at the end of this step. */
  shouldSave: boolean;
  /** Evaluate at the end of this step. */
  shouldEvaluate: boolean;
  /** Log at the end of this step. */
  shouldLog: boolean;

  constructor(flags: TrainerControlFlags = {}) {
    this.shouldTrainingStop = flags.shouldTrainingStop ?? false;
    this.shouldEpochStop = flags.shouldEpochStop ?? false;
    this.shouldSave = flags.shouldSave ?? false;
    this.shouldEvaluate = flags.shouldEvaluate ?? false;
    this.shouldLog = flags.shouldLog ?? false;
  }

  /** Reset at the start of training (HF `_new_training`). */
  newTraining(): void {
    this.shouldTrainingStop = false;
  }

  /** Reset at the start of an epoch (HF `_new_epoch`). */
  newEpoch(): void {
    this.shouldEpochStop = false;
  }

  /** Reset at the start of a step (HF `_new_step`). */
  newStep(): void {
    this.shouldSave = false;
    this.shouldEvaluate = false;
    this.shouldLog = false;
  }

  /** HF's ExportableState record, as stored in `stateful_callbacks.TrainerControl`. */
  state(): StateRecord {
    return {
      args: {
        should_training_stop: this.shouldTrainingStop,
        should_epoch_stop: this.shouldEpochStop,
        should_save: this.shouldSave,
        should_evaluate: this.shouldEvaluate,
        should_log: this.shouldLog,
      },
      attributes: {},
    };
  }

  static fromState(record: StateRecord): TrainerControl {
    const args = record.args ?? {};
    return new TrainerControl({
      shouldTrainingStop: args.should_training_stop === true,
      shouldEpochStop: args.should_epoch_stop === true,
      shouldSave: args.should_save === true,
      shouldEvaluate: args.should_evaluate === true,
      shouldLog: args.should_log === true,
    });
  }
}

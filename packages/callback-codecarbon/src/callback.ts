// HF's CodeCarbonCallback: one tracker per node (local process zero), started at the beginning
// of training and stopped at its end, which appends one row to `<outputDir>/emissions.csv`.
import {
  TrainerCallback,
  type CallbackContext,
  type TrainerControl,
  type TrainerState,
  type TrainingArguments,
} from "@trainkit/core/plugin";
import { resolveSettings } from "./config/config.js";
import { EmissionsTracker, type EmissionsTrackerOptions } from "./tracker.js";
import type { EmissionsData } from "./emissions-data.js";

export type CodeCarbonCallbackOptions = Omit<EmissionsTrackerOptions, "defaultOutputDir">;

export class CodeCarbonCallback extends TrainerCallback {
  /** The tracker (HF's `self.tracker`), made at onInitEnd or at the first train(). */
  tracker: EmissionsTracker | undefined;
  private readonly options: CodeCarbonCallbackOptions;

  /**
   * Checks the options and the CODECARBON_* configuration now, so a bad value fails at
   * Trainer construction (a TypeError naming it), before any work.
   */
  constructor(options: CodeCarbonCallbackOptions = {}) {
    super();
    this.options = options;
    const { env = process.env, cwd, homeDir } = options;
    resolveSettings(options, { env, cwd, homeDir }); // the tracker itself waits for args.outputDir
  }

  /** The totals of the last run written (trainkit's addition; HF keeps them in the tracker). */
  get lastEmissions(): EmissionsData | undefined {
    return this.tracker?.lastEmissions;
  }

  override onInitEnd(args: TrainingArguments, state: TrainerState): void {
    if (state.isLocalProcessZero) this.ensureTracker(args);
  }

  override async onTrainBegin(args: TrainingArguments, state: TrainerState): Promise<void> {
    if (!state.isLocalProcessZero) return;
    await this.ensureTracker(args).start();
  }

  override async onTrainEnd(): Promise<void> {
    await this.tracker?.stop();
  }

  /**
   * trainkit's event: training failed. The energy was spent all the same, so the run's row is
   * written (HF writes nothing for a crashed run).
   */
  override async onException(
    _args: TrainingArguments,
    _state: TrainerState,
    _control: TrainerControl,
    _ctx: CallbackContext,
  ): Promise<void> {
    await this.tracker?.stop();
  }

  private ensureTracker(args: TrainingArguments): EmissionsTracker {
    this.tracker ??= new EmissionsTracker({ ...this.options, defaultOutputDir: args.outputDir });
    return this.tracker;
  }
}

import type { TrainingArguments } from "../args/training-arguments.js";
import { BarScreen, type ProgressBar } from "../progress/progress-bar.js";
import type { TrainerControl } from "../state/trainer-control.js";
import type { TrainerState } from "../state/trainer-state.js";
import { formatLogs } from "../util/format-logs.js";
import type { LineStream } from "./printer-callback.js";
import { TrainerCallback, type CallbackContext } from "./trainer-callback.js";

export interface ProgressCallbackOptions {
  /** Where to draw; `process.stdout` by default. */
  stream?: LineStream;
  /** Longer string values in logs are replaced by a note (HF's max_str_len). */
  maxStrLen?: number;
}

/**
 * Progress bars for training and evaluation, with rate and ETA (HF's ProgressCallback). On a
 * terminal the bars redraw in place and logs print above them; when the stream is not a
 * terminal (CI, a file) no bars are drawn and each log prints as one line.
 */
export class ProgressCallback extends TrainerCallback {
  private readonly stream: LineStream;
  private readonly maxStrLen: number;
  private screen: BarScreen | undefined;
  private trainingBar: ProgressBar | undefined;
  private predictionBar: ProgressBar | undefined;
  private currentStep = 0;

  constructor({ stream = process.stdout, maxStrLen = 100 }: ProgressCallbackOptions = {}) {
    super();
    this.stream = stream;
    this.maxStrLen = maxStrLen;
  }

  private get interactive(): boolean {
    return this.stream.isTTY === true;
  }

  private bars(): BarScreen {
    this.screen ??= new BarScreen(this.stream);
    return this.screen;
  }

  override onTrainBegin(_args: TrainingArguments, state: TrainerState) {
    if (state.isWorldProcessZero && this.interactive)
      this.trainingBar = this.bars().open({ total: state.maxSteps });
    this.currentStep = state.globalStep;
    this.trainingBar?.update(state.globalStep);
  }

  override onStepEnd(_args: TrainingArguments, state: TrainerState) {
    if (!state.isWorldProcessZero) return;
    this.trainingBar?.update(state.globalStep - this.currentStep);
    this.currentStep = state.globalStep;
  }

  override onPredictionStep(
    _args: TrainingArguments,
    state: TrainerState,
    _control: TrainerControl,
    ctx: CallbackContext,
  ) {
    if (!state.isWorldProcessZero || !this.interactive) return;
    const total = lengthOf(ctx.evalDataloader);
    if (total === undefined) return;
    this.predictionBar ??= this.bars().open({
      total,
      desc: "eval",
      leave: this.trainingBar === undefined,
    });
    this.predictionBar.update(1);
  }

  override onEvaluate(_args: TrainingArguments, state: TrainerState) {
    if (state.isWorldProcessZero) this.closePredictionBar();
  }

  override onPredict(_args: TrainingArguments, state: TrainerState) {
    if (state.isWorldProcessZero) this.closePredictionBar();
  }

  override onLog(
    _args: TrainingArguments,
    state: TrainerState,
    _control: TrainerControl,
    ctx: CallbackContext,
  ) {
    if (!state.isWorldProcessZero || !ctx.logs) return;
    const shown: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(ctx.logs as Record<string, unknown>)) {
      if (key === "total_flos") continue;
      shown[key] =
        typeof value === "string" && value.length > this.maxStrLen
          ? `[String too long to display, length: ${value.length} > ${this.maxStrLen}. Consider increasing maxStrLen if needed.]`
          : value;
    }
    if (typeof shown.epoch === "number") shown.epoch = Math.round(shown.epoch * 100) / 100;
    const line = formatLogs(shown);
    if (this.screen) this.screen.write(line);
    else this.stream.write(`${line}\n`);
  }

  override onTrainEnd(_args: TrainingArguments, state: TrainerState) {
    if (!state.isWorldProcessZero) return;
    this.trainingBar?.close();
    this.trainingBar = undefined;
  }

  private closePredictionBar(): void {
    this.predictionBar?.close();
    this.predictionBar = undefined;
  }
}

/** The number of batches of a data loader, when it knows it. */
function lengthOf(loader: unknown): number | undefined {
  if (loader === null || loader === undefined) return undefined;
  const { length } = loader as { length?: unknown };
  if (typeof length === "number") return length;
  const { size } = loader as { size?: unknown };
  return typeof size === "number" ? size : undefined;
}

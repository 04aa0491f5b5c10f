import type { TrainingArguments } from "../args/training-arguments.js";
import { BarScreen, type ProgressBar } from "../progress/progress-bar.js";
import type { TrainerControl } from "../state/trainer-control.js";
import type { TrainerState } from "../state/trainer-state.js";
import { formatLogs, pythonRound } from "../util/format-logs.js";
import type { LineStream } from "./printer-callback.js";
import { TrainerCallback, type CallbackContext } from "./trainer-callback.js";

export interface ProgressCallbackOptions {
  /** Where to draw; `process.stdout` by default. */
  stream?: LineStream;
  /** Longer string values in logs are replaced by a note (HF's max_str_len). */
  maxStrLen?: number;
  /** The clock the bars read, in milliseconds (`performance.now` by default); for tests. */
  now?: () => number;
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
  private readonly now: (() => number) | undefined;

  constructor({ stream = process.stdout, maxStrLen = 100, now }: ProgressCallbackOptions = {}) {
    super();
    this.stream = stream;
    this.maxStrLen = maxStrLen;
    this.now = now;
  }

  private get interactive(): boolean {
    return this.stream.isTTY === true;
  }

  private bars(): BarScreen {
    this.screen ??= new BarScreen(this.stream, this.now);
    return this.screen;
  }

  override onTrainBegin(
    _args: TrainingArguments,
    state: TrainerState,
    _control: TrainerControl,
    _ctx: CallbackContext,
  ) {
    // A resumed run starts the bar at its step (HF's jumps there on the first step).
    if (state.isWorldProcessZero && this.interactive)
      this.trainingBar = this.bars().open({ total: state.maxSteps, initial: state.globalStep });
    this.currentStep = state.globalStep;
  }

  override onStepEnd(
    _args: TrainingArguments,
    state: TrainerState,
    _control: TrainerControl,
    _ctx: CallbackContext,
  ) {
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

  override onEvaluate(
    _args: TrainingArguments,
    state: TrainerState,
    _control: TrainerControl,
    _ctx: CallbackContext,
  ) {
    if (state.isWorldProcessZero) this.closePredictionBar();
  }

  override onPredict(
    _args: TrainingArguments,
    state: TrainerState,
    _control: TrainerControl,
    _ctx: CallbackContext,
  ) {
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
    // Python's round(epoch, 2): ties to even, so 0.625 shows as 0.62 as in HF.
    if (typeof shown.epoch === "number") shown.epoch = pythonRound(shown.epoch, 2);
    const line = formatLogs(shown);
    if (this.screen) this.screen.write(line);
    else this.stream.write(`${line}\n`);
  }

  override onTrainEnd(
    _args: TrainingArguments,
    state: TrainerState,
    _control: TrainerControl,
    _ctx: CallbackContext,
  ) {
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

import type { TrainingArguments } from "../args/training-arguments.js";
import type { TrainerControl } from "../state/trainer-control.js";
import type { TrainerState } from "../state/trainer-state.js";
import { formatLogs } from "../util/format-logs.js";
import { TrainerCallback, type CallbackContext } from "./trainer-callback.js";

/** Something to print lines to; `process.stdout` by default. */
export interface LineStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/**
 * Prints each log as a line (HF's PrinterCallback, used when `disableTqdm` is set).
 * Like HF's, it takes `total_flos` out of the logs it receives.
 */
export class PrinterCallback extends TrainerCallback {
  constructor(private readonly stream: LineStream = process.stdout) {
    super();
  }

  override onLog(
    _args: TrainingArguments,
    state: TrainerState,
    _control: TrainerControl,
    ctx: CallbackContext,
  ) {
    const logs = ctx.logs;
    if (!logs) return;
    delete logs.total_flos;
    if (state.isLocalProcessZero) this.stream.write(`${formatLogs(logs)}\n`);
  }
}

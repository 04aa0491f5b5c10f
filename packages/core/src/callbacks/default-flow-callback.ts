import type { TrainingArguments } from "../args/training-arguments.js";
import type { TrainerControl } from "../state/trainer-control.js";
import type { TrainerState } from "../state/trainer-state.js";
import { TrainerCallback } from "./trainer-callback.js";

/**
 * Decides when to log, evaluate, save and stop (HF's DefaultFlowCallback). It reads the
 * resolved `state.loggingSteps/evalSteps/saveSteps`, so ratio steps work.
 */
export class DefaultFlowCallback extends TrainerCallback {
  override onStepEnd(args: TrainingArguments, state: TrainerState, control: TrainerControl) {
    const step = state.globalStep;
    if (step === 1 && args.loggingFirstStep) control.shouldLog = true;
    if (args.loggingStrategy === "steps" && step % state.loggingSteps === 0)
      control.shouldLog = true;

    const evalBySteps = args.evalStrategy === "steps" && args.evalDelay <= step;
    if (evalBySteps && step % state.evalSteps === 0) control.shouldEvaluate = true;

    if (args.saveStrategy === "steps" && state.saveSteps > 0 && step % state.saveSteps === 0)
      control.shouldSave = true;

    if (step >= state.maxSteps) {
      control.shouldTrainingStop = true;
      // The last step always saves and evaluates under the steps strategies; it is not logged
      // (its loss goes into train_loss).
      if (args.saveStrategy === "steps") control.shouldSave = true;
      if (evalBySteps && step % state.evalSteps !== 0) control.shouldEvaluate = true;
    }
    return control;
  }

  override onEpochEnd(args: TrainingArguments, state: TrainerState, control: TrainerControl) {
    if (args.loggingStrategy === "epoch") control.shouldLog = true;
    if (args.evalStrategy === "epoch" && args.evalDelay <= state.epoch)
      control.shouldEvaluate = true;
    if (args.saveStrategy === "epoch") control.shouldSave = true;
    return control;
  }
}

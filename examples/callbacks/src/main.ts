/**
 * The callback machinery on its own: a CallbackHandler with DefaultFlowCallback,
 * EarlyStoppingCallback, a custom callback and PrinterCallback, driven through HF's event
 * order for two epochs of eight batches. DefaultFlowCallback decides when to log, evaluate and
 * save; EarlyStoppingCallback stops the run when eval_loss stops improving. No model is
 * trained: the "losses" are a fixed curve, so the output is the same on every run.
 */
import {
  CallbackHandler,
  DefaultFlowCallback,
  EarlyStoppingCallback,
  PrinterCallback,
  TrainerCallback,
  TrainerControl,
  TrainerState,
  TrainingArguments,
  type CallbackContext,
} from "@trainkit/core";

class MyCallback extends TrainerCallback {
  override onTrainBegin() {
    console.log("Starting training");
  }
  override onSave(_args: TrainingArguments, state: TrainerState) {
    console.log(`  saved checkpoint-${state.globalStep}`);
  }
  override onEvaluate(
    _args: TrainingArguments,
    state: TrainerState,
    control: TrainerControl,
    ctx: CallbackContext,
  ) {
    const stop = control.shouldTrainingStop ? " -> early stopping" : "";
    console.log(
      `  evaluated at step ${state.globalStep}: eval_loss ${ctx.metrics?.eval_loss}${stop}`,
    );
  }
}

const args = new TrainingArguments({
  outputDir: "out/callbacks",
  numTrainEpochs: 2,
  loggingSteps: 2,
  evalStrategy: "steps",
  evalSteps: 3,
  saveStrategy: "steps",
  saveSteps: 3,
  metricForBestModel: "loss",
  reportTo: "none",
});
const handler = new CallbackHandler([
  DefaultFlowCallback,
  new EarlyStoppingCallback({ earlyStoppingPatience: 2 }),
  MyCallback,
  new PrinterCallback(),
]);

const batchesPerEpoch = 8;
const evalLosses = [0.9, 0.7, 0.72, 0.71, 0.75, 0.6];
let control = new TrainerControl();
const state = new TrainerState({ maxSteps: batchesPerEpoch * args.numTrainEpochs });
state.computeSteps(args, state.maxSteps);
control = handler.onTrainBegin(args, state, control) as TrainerControl;

for (let epoch = 0; epoch < args.numTrainEpochs && !control.shouldTrainingStop; epoch++) {
  control = handler.onEpochBegin(args, state, control) as TrainerControl;
  for (let batch = 0; batch < batchesPerEpoch; batch++) {
    control = handler.onStepBegin(args, state, control) as TrainerControl;
    state.globalStep += 1;
    state.epoch = epoch + (batch + 1) / batchesPerEpoch;
    control = handler.onStepEnd(args, state, control) as TrainerControl;
    if (control.shouldLog) {
      const logs = { loss: 1 / state.globalStep, epoch: state.epoch };
      state.logHistory.push({ ...logs, step: state.globalStep });
      control = handler.onLog(args, state, control, { logs }) as TrainerControl;
    }
    if (control.shouldEvaluate) {
      const metrics = { eval_loss: evalLosses.shift() ?? 0.6, epoch: state.epoch };
      control = handler.onEvaluate(args, state, control, { metrics }) as TrainerControl;
      if (state.bestMetric === null || metrics.eval_loss < state.bestMetric) {
        state.bestMetric = metrics.eval_loss;
        state.bestGlobalStep = state.globalStep;
      }
    }
    if (control.shouldSave) control = handler.onSave(args, state, control) as TrainerControl;
    if (control.shouldTrainingStop || control.shouldEpochStop) break;
  }
  control = handler.onEpochEnd(args, state, control) as TrainerControl;
}
handler.onTrainEnd(args, state, control);
state.setStatefulCallbacks([...handler.callbacks, control]);
console.log(
  `Stopped at step ${state.globalStep} of ${state.maxSteps}; best eval_loss ${state.bestMetric} at step ${state.bestGlobalStep}.`,
);
console.log("trainer_state.json would hold:");
console.log(JSON.stringify(state.statefulCallbacks, null, 2));

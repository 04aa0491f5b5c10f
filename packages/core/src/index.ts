// @trainkit/core: the Hugging Face Trainer callback system for TypeScript.
export {
  TrainerCallback,
  CALLBACK_EVENTS,
  type CallbackContext,
  type CallbackEvent,
  type CallbackResult,
  type Logs,
} from "./callbacks/trainer-callback.js";
export {
  CallbackHandler,
  type CallbackLike,
  type EventExtras,
  type HandlerReferences,
} from "./callbacks/callback-handler.js";
export { DefaultFlowCallback } from "./callbacks/default-flow-callback.js";
export { PrinterCallback, type LineStream } from "./callbacks/printer-callback.js";
export { ProgressCallback, type ProgressCallbackOptions } from "./callbacks/progress-callback.js";
export {
  EarlyStoppingCallback,
  type EarlyStoppingOptions,
} from "./callbacks/early-stopping-callback.js";
export { restoreCallbackStates } from "./callbacks/restore-callback-states.js";
export { TrainerControl, type TrainerControlFlags } from "./state/trainer-control.js";
export { TrainerState, type LogEntry, type TrainerStateInit } from "./state/trainer-state.js";
export {
  collectStatefulCallbacks,
  isExportableState,
  type ExportableState,
  type ExportableStateClass,
  type StateRecord,
  type StatefulCallbacks,
} from "./state/exportable-state.js";
export {
  TrainingArguments,
  TrainingArgumentsError,
  type TrainingArgumentsOptions,
} from "./args/training-arguments.js";
export {
  BACKEND_NAMES,
  INTERVAL_STRATEGIES,
  OPTIMIZER_NAMES,
  SAVE_STRATEGIES,
  SCHEDULER_TYPES,
  type BackendName,
  type IntervalStrategy,
  type OptimizerName,
  type ReportTo,
  type SaveStrategy,
  type SchedulerType,
} from "./args/options.js";
export { setLogger, type Logger } from "./util/logger.js";
export { REDACTED, redactSecrets } from "./util/redact.js";
export { formatLogs } from "./util/format-logs.js";
export { dumpPythonJson, parsePythonJson } from "./util/python-json.js";
export {
  Trainer,
  type ComputeMetrics,
  type EvalPrediction,
  type PredictionOutput,
  type TrainOutput,
  type TrainerOptions,
} from "./trainer/trainer.js";
export { selectBackend } from "./trainer/backend.js";
export type { Batch, TrainableModel } from "./trainer/model/trainable-model.js";
export { LOSS_NAMES, type LossFunction } from "./trainer/model/losses.js";
export type { DatasetInput, Example } from "./trainer/data/dataset.js";
export type { DataCollator } from "./trainer/data/data-loader.js";
export {
  createOptimizer,
  type Optimizer,
  type OptimizerConfig,
  type OptimizerState,
} from "./trainer/optim/optimizers.js";
export { LrScheduler, type SchedulerConfig } from "./trainer/optim/schedulers.js";
export type { FailurePolicy } from "./plugin/guard.js";
export type { TrainkitPlugin } from "./plugin/define-plugin.js";

// @trainkit/core/plugin: what every integration needs.
export {
  definePlugin,
  isTrainkitPlugin,
  type Availability,
  type PluginContext,
  type PluginDefinition,
  type TransportContext,
  type TrainkitPlugin,
} from "./define-plugin.js";
export { flattenDict, keySanitizers, numericLogs, rewriteLogs } from "./logs.js";
export { REDACTED, isSecretKey, redactSecrets, redactText } from "../util/redact.js";
export { TrainerCallback, type CallbackContext, type Logs } from "../callbacks/trainer-callback.js";
export type { TrainingArguments } from "../args/training-arguments.js";
export type { TrainerState } from "../state/trainer-state.js";
export type { TrainerControl } from "../state/trainer-control.js";
export { discoverPlugins, findApplicationManifest, type DiscoveredPlugin } from "./discovery.js";
export { FIRST_PARTY, FIRST_PARTY_ORDER } from "./first-party.js";
export {
  checkReportTo,
  installedCandidates,
  selectPlugins,
  type PluginSources,
  type Selection,
} from "./select.js";
export { guardIntegration, type FailurePolicy } from "./guard.js";
export { Outbox } from "./outbox/outbox.js";
export { DeliveryError } from "./outbox/types.js";
export type {
  DeliveryContext,
  DeliveryErrorKind,
  DrainReport,
  OutboxOptions,
  OutboxRecord,
  OutboxTransport,
  RetryOptions,
} from "./outbox/types.js";
export { backoffDelay, parseRetryAfter } from "./outbox/backoff.js";
export { listOutboxes, newStreamId, outboxDir, type FoundOutbox } from "./outbox/paths.js";
/** Python's formatting, so files integrations write read like files Python writes. */
export {
  dumpPythonJson,
  formatPythonFloat,
  formatPythonString,
  parsePythonJson,
} from "../util/python-json.js";
export { FLOAT_LOG_KEY, pythonFloatRepr, pythonStrRepr } from "../util/format-logs.js";
export { writeFileAtomic } from "../util/json-file.js";
export { isTruthyEnv } from "../util/env.js";
/** For integrations that save the model as the Trainer does (HF's log_model). */
export { saveModelFiles } from "../trainer/checkpoint/checkpoint-files.js";
export type { TrainableModel } from "../trainer/model/trainable-model.js";
export { logger } from "../util/logger.js";

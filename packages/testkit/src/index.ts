// @trainkit/testkit: the conformance suite a plugin author runs to show a plugin keeps the contract.
export {
  CHECKS,
  assertConformance,
  formatFailures,
  runConformance,
  type CheckMessage,
  type CheckName,
  type ConformanceOptions,
  type ConformanceReport,
} from "./conformance.js";

// Test infrastructure for integrations that talk to a real tracking server.
export {
  findRepoRoot,
  resolveMlflowBin,
  startMlflowServer,
  type MlflowServer,
  type MlflowServerOptions,
} from "./mlflow-server.js";
export {
  mlflowRest,
  type ArtifactFile,
  type MetricPoint,
  type MlflowExperiment,
  type MlflowRest,
  type MlflowRunInfo,
  type MlflowRunView,
} from "./mlflow-rest.js";
export {
  startFaultProxy,
  type FaultKind,
  type FaultLogEntry,
  type FaultPlan,
  type FaultProxy,
  type FaultProxyOptions,
  type FaultProxyStats,
  type FaultStatus,
} from "./fault-proxy.js";
export { freePort } from "./free-port.js";
export * from "./hosted-mlflow.js";
export {
  captureLogger,
  deliveryContext,
  filesUnder,
  type CapturedLogger,
} from "./plugin-test-helpers.js";

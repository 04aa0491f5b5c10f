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

// @trainkit/callback-codecarbon: HF's CodeCarbonCallback (report_to "codecarbon"), estimating
// energy and emissions as codecarbon 3.3 does, offline, into codecarbon's emissions.csv.
import { definePlugin } from "@trainkit/core/plugin";
import { CodeCarbonCallback } from "./callback.js";

export { CodeCarbonCallback, type CodeCarbonCallbackOptions } from "./callback.js";
export {
  EmissionsTracker,
  CODECARBON_VERSION,
  localTimestamp,
  type EmissionsTrackerOptions,
} from "./tracker.js";
export type {
  CodeCarbonSettings,
  LogLevel,
  ResolvedSettings,
  TrackingMode,
} from "./config/config.js";
export { EMISSIONS_COLUMNS, type EmissionsColumn, type EmissionsData } from "./emissions-data.js";
export type { OnCsvWrite } from "./csv/emissions-csv.js";
export {
  NVIDIA_SMI_DEVICE_QUERY,
  NVIDIA_SMI_SAMPLE_QUERY,
  nvidiaSmiReader,
  type GpuDevice,
  type GpuReader,
  type GpuReading,
} from "./hardware/gpu.js";
export type { Clock, SystemProbes } from "./system.js";
export type { Logger } from "./reporter.js";

/** The plugin `reportTo: ["codecarbon"]` (and "all") selects: always available, it needs no service. */
export default definePlugin({
  name: "codecarbon",
  isAvailable: () => ({ available: true }),
  create: ({ env, logger }) => new CodeCarbonCallback({ env, logger }),
});

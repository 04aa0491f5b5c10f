// @trainkit/callback-dvclive: HF's DVCLiveCallback (report_to "dvclive"), writing DVCLive's
// files (params.yaml, metrics.json, plots/metrics/*.tsv, dvc.yaml) in pure TypeScript.
import { definePlugin } from "@trainkit/core/plugin";
import { DVCLiveCallback, setDefaultDvcliveLogger } from "./callback.js";

export {
  DVCLiveCallback,
  argsDict,
  logModelFromEnv,
  type DVCLiveCallbackOptions,
  type LogModel,
  type StateRecord,
} from "./callback.js";
export { Live, MetricWriteError, dvcliveEnvFlag, type LiveOptions } from "./live.js";
export { standardizeMetricName } from "./metric-names.js";
export { PyFloat, type PyDict, type PyValue } from "./python-values.js";
export { dumpYaml } from "./yaml/dump.js";

/** The plugin `reportTo: ["dvclive"]` (and "all") selects: always available, it writes plain files. */
export default definePlugin({
  name: "dvclive",
  isAvailable: () => ({ available: true }),
  create: ({ env, logger }) => {
    setDefaultDvcliveLogger(logger);
    return new DVCLiveCallback({ env, logger });
  },
});

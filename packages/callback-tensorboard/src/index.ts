// @trainkit/callback-tensorboard: HF's TensorBoardCallback (report_to "tensorboard"), writing
// TensorBoard event files in pure TypeScript.
import { definePlugin } from "@trainkit/core/plugin";
import { TensorBoardCallback } from "./callback.js";

export { TensorBoardCallback, type TensorBoardCallbackOptions } from "./callback.js";
export {
  EventFileWriter,
  type EventFileWriterOptions,
  type HParamsOptions,
} from "./event-file-writer.js";
export type { HParamValue, SessionStatus } from "./summaries.js";
export { crc32c, maskedCrc32c } from "./crc32c.js";
export { defaultLogDir } from "./log-dir.js";

/** The plugin `reportTo: ["tensorboard"]` (and "all") selects: always available, it needs no server. */
export default definePlugin({
  name: "tensorboard",
  isAvailable: () => ({ available: true }),
  create: ({ env, logger }) => new TensorBoardCallback({ env, logger }),
});

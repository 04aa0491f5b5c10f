// @trainkit/callback-flyte: HF's FlyteCallback (report_to "flyte") for trainkit running as a
// Flyte task: checkpoints copied to the task's checkpoint prefix, restored on a retry, and the
// log history as a self-contained HTML deck plus a JSON copy.
import {
  definePlugin,
  redactText,
  type Availability,
  type TrainkitPlugin,
} from "@trainkit/core/plugin";
import { FlyteCallback, type FlyteCallbackOptions } from "./callback.js";
import {
  FLYTE_ARGS,
  FLYTE_ENV,
  FLYTE_EXECUTION_ID,
  insideFlyteTask,
  resolveLocations,
} from "./locations.js";

export { FlyteCallback, DECK_FILES, type FlyteCallbackOptions } from "./callback.js";
export { restoreFlyteCheckpoint, type RestoreOptions } from "./restore.js";
export {
  FLYTE_ARGS,
  FLYTE_ENV,
  FLYTE_EXECUTION_ID,
  insideFlyteTask,
  locationOrNone,
  parseFlyteArgs,
  resolveLocations,
  type FlyteArgs,
  type FlyteLocations,
  type LocationOptions,
} from "./locations.js";
export {
  storageFor,
  type PutOptions,
  type StorageAdapter,
  type StorageAdapters,
} from "./storage.js";
export { fileStorage } from "./file-storage.js";
export { PREFIX_MARKER, RefusedDestinationError, refusalFor } from "./guard.js";
export {
  formatCell,
  logHistoryColumns,
  logHistoryJson,
  pythonFloatRepr,
  renderLogHistoryHtml,
  type DeckOptions,
} from "./deck.js";

const silent = { info: () => {}, warn: () => {} };

/**
 * Available inside a Flyte task (Flyte sets FLYTE_INTERNAL_EXECUTION_ID in every task pod) or
 * where a checkpoint path is given explicitly (the plugin's options or
 * TRAINKIT_FLYTE_CHECKPOINT_PATH), so `reportTo: "all"` leaves it out on a laptop. This
 * process's arguments are read only inside a Flyte task: a laptop's `--checkpoint-path` does
 * not turn it on. Every location it will use must have a storage adapter.
 */
function availability(options: FlyteCallbackOptions): Availability {
  const env = options.env ?? process.env;
  const locations = resolveLocations({ ...options, env });
  const checkpointPath = locations.checkpointPath.value;
  if (!insideFlyteTask(env) && checkpointPath === undefined)
    return {
      available: false,
      reason: `not a Flyte task (${FLYTE_EXECUTION_ID} is not set) and no checkpoint path is configured: set ${FLYTE_ENV.checkpointPath} or pass createFlytePlugin({ checkpointPath }) (${FLYTE_ARGS.checkpointPath} is read only inside a Flyte task)`,
    };
  try {
    // The callback checks every location it will use (and nothing else) when it is built.
    new FlyteCallback({ ...options, env, logger: silent });
  } catch (error) {
    return {
      available: false,
      reason: redactText((error as Error).message).replace(/\.+$/, ""),
    };
  }
  return { available: true };
}

/**
 * The plugin with options: e.g. `createFlytePlugin({ storage: { s3: adapter } })`, given to the
 * Trainer as `plugins: [...]`. Options win over the process arguments and the env.
 */
export function createFlytePlugin(options: FlyteCallbackOptions = {}): TrainkitPlugin {
  return definePlugin({
    name: "flyte",
    isAvailable: ({ env }) => availability({ ...options, env: options.env ?? env }),
    create: ({ env, logger }) =>
      new FlyteCallback({ ...options, env: options.env ?? env, logger: options.logger ?? logger }),
  });
}

/** The plugin `reportTo: ["flyte"]` selects (and "all", inside a Flyte task). */
const flyte: TrainkitPlugin = createFlytePlugin();
export default flyte;

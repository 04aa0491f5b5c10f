import {
  isExportableState,
  type ExportableStateClass,
  type StatefulCallbacks,
} from "../state/exportable-state.js";
import { TrainerControl } from "../state/trainer-control.js";
import { logger } from "../util/logger.js";
import type { CallbackHandler } from "./callback-handler.js";
import type { TrainerCallback } from "./trainer-callback.js";

/**
 * Rebuilds the stateful callbacks from a checkpoint's `stateful_callbacks` (HF's
 * `_load_callback_state`): each stored record replaces the handler's callback of that class
 * (the n-th record the n-th callback), and a stored TrainerControl becomes the control.
 * Unlike HF, a restored callback keeps its place in the list instead of moving to the end, and
 * the restored control has onSave's reset applied, as the unbroken run's control has.
 * Returns the control to use.
 */
export function restoreCallbackStates(
  handler: CallbackHandler,
  control: TrainerControl,
  stored: StatefulCallbacks,
  {
    onRestore = (restored) => restored,
  }: {
    /** Called with each rebuilt callback and the one it replaces; returns what goes in the list. */
    onRestore?: (restored: TrainerCallback, replaced: TrainerCallback) => TrainerCallback;
  } = {},
): TrainerControl {
  const notFound: string[] = [];
  for (const [name, data] of Object.entries(stored)) {
    const records = Array.isArray(data) ? data : [data];
    if (name === "TrainerControl") {
      if (records[0]) {
        control = TrainerControl.fromState(records[0]);
        // The snapshot is taken before onSave's reset; an unbroken run has applied it by now.
        control.shouldSave = false;
      }
      continue;
    }
    const matches = handler.callbacks
      .map((callback, index) => ({ callback, index }))
      .filter(({ callback }) => callback.constructor.name === name && isExportableState(callback));
    if (matches.length === 0) notFound.push(name);
    matches.forEach(({ callback, index }, n) => {
      const record = records[n];
      if (!record) return;
      const cls = callback.constructor as unknown as ExportableStateClass;
      const restored = cls.fromState(record) as unknown as TrainerCallback;
      handler.callbacks[index] = onRestore(restored, callback);
    });
  }
  if (notFound.length > 0) {
    logger.warn(
      `The checkpoint holds the state of callbacks this Trainer does not have, ignored: ` +
        `${notFound.join(", ")}.`,
    );
  }
  return control;
}

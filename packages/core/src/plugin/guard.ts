import { CALLBACK_EVENTS, type TrainerCallback } from "../callbacks/trainer-callback.js";
import { TrainerControl } from "../state/trainer-control.js";
import type { Logger } from "../util/logger.js";
import { redactText } from "../util/redact.js";

/** What happens when an integration throws: "warn" switches it off, "raise" stops training. */
export type FailurePolicy = "warn" | "raise";

/**
 * Makes an integration's callback unable to fail the run: under "warn", the first error in any
 * event (a throw, a rejected promise, or a return value that is not a TrainerControl) is
 * reported once (integration, event, message) and the integration is switched off; it still
 * gets onTrainEnd, best-effort, so it can close what it opened. The instance itself is guarded
 * (its own event methods shadow the class's), so it keeps its class and its state().
 */
export function guardIntegration(
  callback: TrainerCallback,
  name: string,
  policy: FailurePolicy,
  logger: Logger,
): TrainerCallback {
  if (policy === "raise") return callback;
  let off = false;
  const fail = (event: string, error: unknown): undefined => {
    if (off) return undefined;
    off = true;
    const text = redactText(error instanceof Error ? error.message : String(error)).replace(
      /\.+$/,
      "",
    );
    logger.warn(
      `Integration "${name}" failed in ${event}: ${text}. It is switched off for the rest of this Trainer; training goes on. Set failurePolicy: "raise" to stop training instead.`,
    );
    return undefined;
  };
  const checked = (event: string, value: unknown): unknown => {
    if (value === undefined || value === null || value instanceof TrainerControl) return value;
    return fail(
      event,
      `it returned ${typeof value} ${String(value).slice(0, 40)}, not a TrainerControl`,
    );
  };
  const target = callback as unknown as Record<string, unknown>;
  // onException (trainkit's event) is guarded too, and like onTrainEnd still delivered when off.
  for (const event of [...CALLBACK_EVENTS, "onException" as const]) {
    const original = callback[event] as (...args: unknown[]) => unknown;
    target[event] = (...args: unknown[]) => {
      if (off)
        return event === "onTrainEnd" || event === "onException"
          ? bestEffort(() => original.apply(callback, args))
          : undefined;
      try {
        const result = original.apply(callback, args);
        if (result && typeof (result as PromiseLike<unknown>).then === "function")
          return Promise.resolve(result).then(
            (value) => checked(event, value),
            (error: unknown) => fail(event, error),
          );
        return checked(event, result);
      } catch (error) {
        return fail(event, error);
      }
    };
  }
  return callback;
}

/** Calls a switched-off integration's onTrainEnd, ignoring whatever it does. */
function bestEffort(call: () => unknown): undefined {
  try {
    const result = call();
    if (result && typeof (result as PromiseLike<unknown>).then === "function")
      return Promise.resolve(result).then(
        () => undefined,
        () => undefined,
      ) as unknown as undefined;
  } catch {
    // switched off already: its errors were reported once
  }
  return undefined;
}

import { CALLBACK_EVENTS, type TrainerCallback } from "../callbacks/trainer-callback.js";
import type { Logger } from "../util/logger.js";
import { redactText } from "../util/redact.js";

/** What happens when an integration throws: "warn" switches it off, "raise" stops training. */
export type FailurePolicy = "warn" | "raise";

/**
 * Makes an integration's callback unable to fail the run: under "warn", the first error in any
 * event is reported once (integration, event, message) and the integration is switched off.
 * The instance itself is guarded (its own event methods shadow the class's), so it keeps its
 * class and its state() for checkpoints.
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
    const message = redactText(error instanceof Error ? error.message : String(error));
    logger.warn(
      `Integration "${name}" failed in ${event}: ${message}. It is switched off for the rest of this run; training goes on. Set failurePolicy: "raise" to stop training instead.`,
    );
    return undefined;
  };
  const target = callback as unknown as Record<string, unknown>;
  for (const event of CALLBACK_EVENTS) {
    const original = callback[event] as (...args: unknown[]) => unknown;
    target[event] = (...args: unknown[]) => {
      if (off) return undefined;
      try {
        const result = original.apply(callback, args);
        if (result && typeof (result as PromiseLike<unknown>).then === "function")
          return Promise.resolve(result).catch((error: unknown) => fail(event, error));
        return result;
      } catch (error) {
        return fail(event, error);
      }
    };
  }
  return callback;
}

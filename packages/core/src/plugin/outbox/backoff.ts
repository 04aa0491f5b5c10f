import type { RetryOptions } from "./types.js";

export const RETRY_DEFAULTS: Required<RetryOptions> = {
  baseMs: 1000,
  maxMs: 60_000,
  jitter: 1,
  reportAfter: 5,
};

/**
 * Exponential backoff with jitter: base·2^(attempt-1), capped at maxMs, plus up to jitter·delay
 * on top (after the cap, so clients that all reached the cap still spread out).
 */
export function backoffDelay(
  attempt: number,
  options: Required<RetryOptions>,
  random: () => number = Math.random,
): number {
  const exponential = Math.min(options.maxMs, options.baseMs * 2 ** Math.max(0, attempt - 1));
  return exponential * (1 + options.jitter * random());
}

/**
 * A Retry-After header as milliseconds: delta-seconds or an HTTP date; undefined when absent
 * or unreadable.
 */
export function parseRetryAfter(value: unknown, now: number = Date.now()): number | undefined {
  if (typeof value !== "string" && typeof value !== "number") return undefined;
  const text = String(value).trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

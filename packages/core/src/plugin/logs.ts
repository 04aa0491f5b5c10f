/**
 * HF's log rewriting for trackers: `eval_x` → `eval/x`, `test_x` → `test/x`, anything else →
 * `train/<key>` (so `train_loss` → `train/train_loss`, `epoch` → `train/epoch`).
 */
export function rewriteLogs<T>(logs: Record<string, T>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [key, value] of Object.entries(logs)) {
    if (key.startsWith("eval_")) out[`eval/${key.slice(5)}`] = value;
    else if (key.startsWith("test_")) out[`test/${key.slice(5)}`] = value;
    else out[`train/${key}`] = value;
  }
  return out;
}

/** Nested objects flattened into one level: `{ a: { b: 1 } }` → `{ "a/b": 1 }`. */
export function flattenDict(
  value: Record<string, unknown>,
  { separator = "/", prefix = "" }: { separator?: string; prefix?: string } = {},
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    const name = prefix ? `${prefix}${separator}${key}` : key;
    if (typeof item === "object" && item !== null && !Array.isArray(item))
      Object.assign(out, flattenDict(item as Record<string, unknown>, { separator, prefix: name }));
    else out[name] = item;
  }
  return out;
}

/** The numeric, finite values of a logs dict, and the keys left out (HF skips the others). */
export function numericLogs(logs: Record<string, unknown>): {
  values: Record<string, number>;
  skipped: string[];
} {
  const values: Record<string, number> = {};
  const skipped: string[] = [];
  for (const [key, value] of Object.entries(logs)) {
    if (typeof value === "number" && Number.isFinite(value)) values[key] = value;
    else skipped.push(key);
  }
  return { values, skipped };
}

/**
 * Key sanitizers per backend: each tracker accepts a different alphabet in metric and param
 * names. The result is stable, so the same key always maps to the same name.
 */
export const keySanitizers = {
  /**
   * MLflow, HF's rule: every character outside A-Z a-z 0-9 _ - . space : / becomes _. Keys
   * that are still invalid (empty, over 250 characters, `a//b`) are the caller's to drop.
   */
  mlflow: (key: string) => key.replace(/[^0-9A-Za-z_\-. :/]/gu, "_"), // per code point, as Python
  /** TensorBoard tags: any string; trailing/duplicate slashes collapse in the UI, so tidy them. */
  tensorboard: (key: string) => key.replace(/\/+/g, "/").replace(/^\/|\/$/g, ""),
  /** DVCLive metric names become file paths: no characters a filesystem rejects. */
  // eslint-disable-next-line no-control-regex -- control characters are what it removes
  dvclive: (key: string) => key.replace(/[<>:"\\|?*\u0000-\u001f]/g, "_"),
} as const;

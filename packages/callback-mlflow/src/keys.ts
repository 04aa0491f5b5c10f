/**
 * MLflow's rules for metric, param and tag keys (`mlflow/utils/validation.py`), checked before
 * sending so one bad key never fails a whole batch.
 */

import { keySanitizers } from "@trainkit/core/plugin";

/** Longest key MLflow accepts (MAX_ENTITY_KEY_LENGTH). */
export const MAX_KEY_LENGTH = 250;

/**
 * HF's metric-name sanitiser: every character outside `A-Z a-z 0-9 _ - . space : /` becomes
 * `_` (`eval_acc(%)` → `eval_acc___`, `f1@5` → `f1_5`; `a:b c/d` is unchanged).
 */
export const sanitizeMetricKey: (key: string) => string = keySanitizers.mlflow;

/** Python's `\w` (Unicode letters, digits, underscore), and `/ . - space :`. */
const KEY_CHARS = /^[\p{L}\p{N}_/.\- :]*$/u;

/** Python's `posixpath.normpath`. */
export function posixNormpath(path: string): string {
  if (path === "") return ".";
  let initialSlashes = path.startsWith("/") ? 1 : 0;
  if (path.startsWith("//") && !path.startsWith("///")) initialSlashes = 2;
  const out: string[] = [];
  for (const comp of path.split("/")) {
    if (comp === "" || comp === ".") continue;
    if (comp !== ".." || (!initialSlashes && out.length === 0) || out.at(-1) === "..")
      out.push(comp);
    else if (out.length > 0) out.pop();
  }
  const joined = "/".repeat(initialSlashes) + out.join("/");
  return joined || ".";
}

/**
 * Why MLflow would reject `key` as a metric, param or tag name, or undefined if it accepts it:
 * empty, longer than 250 characters, a character outside letters, digits, `_ - . space : /`, or
 * not "path-unique" (`a//b`, `a/`, `./a`, `/a`, `..`).
 */
export function invalidKeyReason(key: string): string | undefined {
  if (key.length === 0) return "it is empty";
  if (key.length > MAX_KEY_LENGTH)
    return `it is longer than ${MAX_KEY_LENGTH} characters (${key.length})`;
  if (!KEY_CHARS.test(key))
    return "it has characters other than letters, digits, _ - . space : and /";
  const norm = posixNormpath(key);
  if (norm !== key || norm === "." || norm.startsWith("..") || norm.startsWith("/"))
    return `it would resolve to the path ${JSON.stringify(norm)} (MLflow's path rule)`;
  return undefined;
}

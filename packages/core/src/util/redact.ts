/** The placeholder written wherever a secret would have been. */
export const REDACTED = "<REDACTED>";

/** Option and field names that carry secrets (API keys, tokens, passwords). */
const SECRET_KEY = /(token|secret|password|passwd|api_?key|access_?key|credential|authorization)/i;

/** `scheme://user:password@host` — credentials written into a URL. */
const URL_CREDENTIALS = /([a-z][a-z0-9+.-]*:\/\/)([^/\s:@]+):([^/\s@]+)@/gi;

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/**
 * A copy of `value` safe to write out: values under secret-bearing keys become "<REDACTED>"
 * and passwords inside URLs are masked. Nested objects and lists are walked.
 */
export function redactSecrets<T>(value: T, key = ""): T {
  if (key && isSecretKey(key) && value !== null && value !== undefined) return REDACTED as T;
  if (typeof value === "string") return value.replace(URL_CREDENTIALS, `$1$2:${REDACTED}@`) as T;
  if (Array.isArray(value)) return value.map((item) => redactSecrets(item)) as T;
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactSecrets(v, k);
    return out as T;
  }
  return value;
}

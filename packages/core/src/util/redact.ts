/** The placeholder written wherever a secret would have been. */
export const REDACTED = "<REDACTED>";

/**
 * Option, field and header names that carry secrets (API keys, tokens, passwords). `tokenizer`
 * and `author` are not secrets.
 */
const SECRET_KEY =
  /(token(?!iz)|secret|passw(or)?d|passphrase|api[_-]?key|access[_-]?key|private[_-]?key|credential|auth(?!or(?!iz))|cookie)/i;

/** `scheme://user:password@host` — credentials written into a URL (the password may hold "@"). */
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/)([^/?#\s:@]*):([^/?#\s]*)@/gi;

/** `scheme://token@host` — a user part alone is how tokens are often put into URLs. */
const URL_USER = /([a-z][a-z0-9+.-]*:\/\/)([^/?#\s:@]+)@/gi;

/** `?access_token=...` — a secret-named query parameter. */
const QUERY_PARAMETER = /([?&;])([^=&#;\s?]+)=([^&#;\s]*)/g;

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** `text` with credentials inside URLs masked. */
export function redactUrlCredentials(text: string): string {
  if (!text.includes("://") && !text.includes("=")) return text;
  return text
    .replace(URL_PASSWORD, `$1$2:${REDACTED}@`)
    .replace(URL_USER, `$1${REDACTED}@`)
    .replace(QUERY_PARAMETER, (match, separator: string, name: string) =>
      isSecretKey(name) ? `${separator}${name}=${REDACTED}` : match,
    );
}

/**
 * A copy of `value` safe to write out: values under secret-bearing keys become "<REDACTED>"
 * (numbers and booleans, such as `max_tokens` or `use_auth_token`, are kept) and credentials
 * inside URLs are masked. Nested objects and lists are walked.
 */
export function redactSecrets<T>(value: T, key = ""): T {
  if (
    key &&
    isSecretKey(key) &&
    value !== null &&
    value !== undefined &&
    typeof value !== "number" &&
    typeof value !== "boolean"
  )
    return REDACTED as T;
  if (typeof value === "string") return redactUrlCredentials(value) as T;
  if (Array.isArray(value)) return value.map((item) => redactSecrets(item)) as T;
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactSecrets(v, k);
    return out as T;
  }
  return value;
}

/** `Bearer abc…`, `Basic abc…`: credentials after an auth scheme. */
const AUTH_SCHEME = /\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]+/g;
/** `token=abc`, `api_key: abc`, `"password": "abc"`: a secret-named key and its value. */
const SECRET_ASSIGNMENT =
  /\b([\w.-]*(?:token|secret|password|passwd|api[_-]?key|access[_-]?key|credential|authorization)[\w.-]*)(["']?\s*[:=]\s*["']?)([^\s"',;)&]+)/gi;

/**
 * Free text (an error message, a server's reply) made safe to print: URL credentials, secret
 * query parameters, auth-scheme credentials and `secret-name=value` pairs are masked.
 */
export function redactText(text: string): string {
  return redactSecrets(text)
    .replace(AUTH_SCHEME, `$1 ${REDACTED}`)
    .replace(SECRET_ASSIGNMENT, (match, key: string, separator: string, value: string) =>
      value === REDACTED ? match : `${key}${separator}${REDACTED}`,
    );
}

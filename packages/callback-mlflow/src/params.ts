/**
 * The run's params as HF's MLflowCallback builds them: the model's config first, then the
 * TrainingArguments (which win on a clash), flattened with `.` if asked, each value rendered as
 * Python's `str()`. trainkit's differences, documented in the README: values longer than
 * MLflow's 6000 characters are truncated (and listed in a tag) instead of dropped, keys MLflow
 * would reject are dropped with a warning instead of failing their batch, and secret-named
 * fields are masked.
 */
import { REDACTED, isSecretKey, redactText } from "@trainkit/core/plugin";
import { invalidKeyReason } from "./keys.js";
import { PyFloat, isPlainObject, parsePythonNumbers, pythonStr } from "./python-repr.js";

/** MLflow's MAX_PARAM_VAL_LENGTH. */
export const MAX_PARAM_VALUE_LENGTH = 6000;
/** MLflow's limit on tag values (5000 in the releases trainkit supports; newer allow more). */
export const MAX_TAG_VALUE_LENGTH = 5000;
/** The tag that lists the params whose values were truncated. */
export const TRUNCATED_PARAMS_TAG = "trainkit.truncated_params";

/** Field names whose values are masked: trainkit's secret names and HF's `*_token`. */
const SECRET_SUFFIX = /_(password|key|secret|token)$/i;

/**
 * `value` with secrets masked: a value under a secret-named key (`*_password`, `*_key`,
 * `*_secret`, `*_token`, `api_key`, `authorization`, ...) becomes "<REDACTED>" unless it is a
 * number, boolean or null; credentials inside strings (URLs, `token=...`) are masked.
 */
export function maskSecrets(value: unknown, key = ""): unknown {
  const secretKey = key !== "" && (isSecretKey(key) || SECRET_SUFFIX.test(key));
  if (
    secretKey &&
    value !== null &&
    value !== undefined &&
    typeof value !== "number" &&
    typeof value !== "boolean" &&
    !(value instanceof PyFloat)
  )
    return REDACTED;
  if (typeof value === "string") return redactText(value);
  if (Array.isArray(value)) return value.map((item) => maskSecrets(item));
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = maskSecrets(v, k);
    return out;
  }
  return value;
}

/**
 * HF's `args.to_dict()` for params: the TrainingArguments' snake_case dict with floats kept as
 * floats (read from `toJsonString()`), every `*_token` field replaced by `<FIELD_UPPER>` as HF
 * does, and other secret fields masked.
 */
export function argsDict(args: unknown): Record<string, unknown> {
  let dict: unknown;
  const a = args as { toJsonString?: () => string; toJSON?: () => unknown } | null | undefined;
  if (a && typeof a.toJSON === "function") dict = a.toJSON();
  else dict = args;
  if (!isPlainObject(dict)) return {};
  if (a && typeof a.toJsonString === "function") {
    // toJSON() has HF's field order, toJsonString() (sorted) tells floats from ints.
    const typed = parsePythonNumbers(a.toJsonString());
    if (isPlainObject(typed)) {
      const merged: Record<string, unknown> = {};
      for (const key of Object.keys(dict)) merged[key] = key in typed ? typed[key] : dict[key];
      dict = merged;
    }
  }
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(dict as Record<string, unknown>)) {
    if (/_token$/i.test(key)) out[key] = `<${key.toUpperCase()}>`;
    else out[key] = maskSecrets(value, key);
  }
  return out;
}

/**
 * The model's config as HF reads it (`model.config.to_dict()`): `config.toJsonString()` (floats
 * kept), `config.toDict()` / `to_dict()` / `toJSON()`, or the config object itself. Undefined
 * when the model has no config (a plain tf.LayersModel).
 */
export function modelConfigDict(model: unknown): Record<string, unknown> | undefined {
  if (!model || typeof model !== "object") return undefined;
  const config = (model as { config?: unknown }).config;
  if (config === null || config === undefined || typeof config !== "object") return undefined;
  const c = config as Record<string, unknown>;
  let dict: unknown;
  try {
    if (typeof c.toJsonString === "function")
      dict = parsePythonNumbers((c.toJsonString as () => string)());
    else if (typeof c.toDict === "function") dict = (c.toDict as () => unknown)();
    else if (typeof c.to_dict === "function") dict = (c.to_dict as () => unknown)();
    else if (typeof c.toJSON === "function") dict = (c.toJSON as () => unknown)();
    else dict = config;
  } catch {
    return undefined;
  }
  return isPlainObject(dict) ? (maskSecrets(dict) as Record<string, unknown>) : undefined;
}

/** HF's `flatten_dict(d, delimiter=".")`: non-empty nested dicts become `a.b.c` keys. */
export function flattenParams(
  dict: Record<string, unknown>,
  prefix = "",
  out: Record<string, unknown> = {},
): Record<string, unknown> {
  for (const [key, value] of Object.entries(dict)) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (isPlainObject(value) && Object.keys(value).length > 0) flattenParams(value, name, out);
    else out[name] = value;
  }
  return out;
}

/** `text` cut to `max` characters (code points, as Python counts). */
export function truncateChars(text: string, max: number): { text: string; truncated: boolean } {
  if (text.length <= max) return { text, truncated: false };
  const chars = Array.from(text);
  if (chars.length <= max) return { text, truncated: false };
  return { text: chars.slice(0, max).join(""), truncated: true };
}

export interface BuiltParams {
  /** [key, value] in HF's order, values as Python's str(), at most 6000 characters. */
  params: [string, string][];
  /** Keys whose values were truncated to 6000 characters. */
  truncated: string[];
  /** Keys dropped because MLflow would reject them, with the reason. */
  invalid: { key: string; reason: string }[];
  /** How many params MLFLOW_MAX_LOG_PARAMS left out. */
  omitted: number;
}

export interface BuildParamsOptions {
  /** MLFLOW_FLATTEN_PARAMS. */
  flatten?: boolean;
  /** MLFLOW_MAX_LOG_PARAMS: keep the first N. */
  maxLogParams?: number;
  /** Longest value (default 6000). */
  maxValueLength?: number;
}

/** The params to log: model config, then args, rendered, checked, truncated and capped. */
export function buildParams(
  args: Record<string, unknown>,
  modelConfig: Record<string, unknown> | undefined,
  options: BuildParamsOptions = {},
): BuiltParams {
  let combined: Record<string, unknown> = { ...(modelConfig ?? {}), ...args };
  if (options.flatten) combined = flattenParams(combined);
  const max = options.maxValueLength ?? MAX_PARAM_VALUE_LENGTH;
  const params: [string, string][] = [];
  const truncated: string[] = [];
  const invalid: { key: string; reason: string }[] = [];
  for (const [key, value] of Object.entries(combined)) {
    const reason = invalidKeyReason(key);
    if (reason) {
      invalid.push({ key, reason });
      continue;
    }
    const cut = truncateChars(pythonStr(value), max);
    if (cut.truncated) truncated.push(key);
    params.push([key, cut.text]);
  }
  let omitted = 0;
  if (options.maxLogParams !== undefined && params.length > options.maxLogParams) {
    omitted = params.length - options.maxLogParams;
    const kept = new Set(params.slice(0, options.maxLogParams).map(([key]) => key));
    params.length = options.maxLogParams;
    for (let i = truncated.length - 1; i >= 0; i--)
      if (!kept.has(truncated[i]!)) truncated.splice(i, 1);
  }
  return { params, truncated, invalid, omitted };
}

/** A list of keys as one tag value within MLflow's tag limit: `a, b, c` (cut with `, ...`). */
export function keyListValue(keys: readonly string[], max = MAX_TAG_VALUE_LENGTH): string {
  const full = keys.join(", ");
  if (full.length <= max) return full;
  let out = "";
  for (const key of keys) {
    const next = out ? `${out}, ${key}` : key;
    if (next.length + 5 > max) break;
    out = next;
  }
  return `${out}, ...`;
}

/**
 * Python's `str()` of parameter values, as HF's MLflowCallback sends them (`mlflow.log_params`
 * stringifies every value): `None`, `True`, `5e-05`, `1.0`, `[1, 2]`, `{'a': 1}`.
 *
 * JavaScript has one number type, Python two. A number is written as an int when it is
 * integral, unless it is a {@link PyFloat} (what {@link parsePythonNumbers} makes of a JSON
 * number written with a `.` or an exponent, e.g. `1.0` in `training_args.json`).
 */
import { pythonFloatRepr, pythonStrRepr } from "@trainkit/core/plugin";

/** A number known to be a Python float (so `1` is written `1.0`). */
export class PyFloat {
  constructor(readonly value: number) {}
  toJSON(): number {
    return this.value;
  }
}

/** Python's `repr(float)` (and `str(float)`): shortest round trip, `.0` kept, `5e-05`, `inf`, `nan`. */
export const pythonFloat: (value: number) => string = pythonFloatRepr;

/** Python's `str(int)`: all digits, never an exponent. */
function pythonInt(value: number): string {
  return Number.isSafeInteger(value) ? String(value) : BigInt(value).toString();
}

function pythonNumber(value: number): string {
  return Number.isInteger(value) ? pythonInt(value) : pythonFloat(value);
}

/** Python's `repr(str)` (core's: single quotes unless the text has `'` and no `"`). */
export const pythonStringRepr: (text: string) => string = pythonStrRepr;

/** A `{}` or `Object.create(null)` object (a dict), not an instance of a class. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Python's `repr()` of a value inside a list or dict. */
export function pythonRepr(value: unknown, seen: Set<unknown> = new Set()): string {
  if (value === null || value === undefined) return "None";
  if (typeof value === "boolean") return value ? "True" : "False";
  if (typeof value === "number") return pythonNumber(value);
  if (typeof value === "bigint") return value.toString();
  if (value instanceof PyFloat) return pythonFloat(value.value);
  if (typeof value === "string") return pythonStringRepr(value);
  if (typeof value !== "object") return pythonStringRepr(String(value));
  if (seen.has(value)) return Array.isArray(value) ? "[...]" : "{...}";
  seen.add(value);
  try {
    if (Array.isArray(value)) return `[${value.map((item) => pythonRepr(item, seen)).join(", ")}]`;
    if (value instanceof Map)
      return `{${[...value].map(([k, v]) => `${pythonRepr(k, seen)}: ${pythonRepr(v, seen)}`).join(", ")}}`;
    if (value instanceof Set)
      return value.size === 0
        ? "set()"
        : `{${[...value].map((item) => pythonRepr(item, seen)).join(", ")}}`;
    if (value instanceof Date) return pythonStringRepr(value.toISOString());
    if (!isPlainObject(value)) {
      const toJSON = (value as { toJSON?: () => unknown }).toJSON;
      if (typeof toJSON === "function") return pythonRepr(toJSON.call(value), seen);
    }
    return `{${Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${pythonStringRepr(k)}: ${pythonRepr(v, seen)}`)
      .join(", ")}}`;
  } finally {
    seen.delete(value);
  }
}

/** Python's `str()`: strings as they are, everything else as its repr. */
export function pythonStr(value: unknown): string {
  if (typeof value === "string") return value;
  return pythonRepr(value);
}

/** A JSON string, or a bare number / NaN / ±Infinity token. */
const TOKEN = /"(?:[^"\\]|\\.)*"|-?Infinity|NaN|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;
const MARKER = "\u0000trainkit-float:";

/**
 * JSON.parse of Python-written JSON (`training_args.json`, `config.to_json_string()`) that keeps
 * floats as floats: a number written with `.` or an exponent (or NaN/Infinity) becomes a
 * {@link PyFloat}, so `pythonStr` writes `1.0` where Python would.
 */
export function parsePythonNumbers(text: string): unknown {
  let marked = false;
  const rewritten = text.replace(TOKEN, (token) => {
    if (token.startsWith('"')) return token;
    if (/[.eE]|Infinity|NaN/.test(token)) {
      marked = true;
      return JSON.stringify(MARKER + token);
    }
    return token;
  });
  const parsed = JSON.parse(rewritten) as unknown;
  if (!marked) return parsed;
  const restore = (value: unknown): unknown => {
    if (typeof value === "string" && value.startsWith(MARKER)) {
      const token = value.slice(MARKER.length);
      return new PyFloat(
        token === "NaN"
          ? NaN
          : token === "Infinity"
            ? Infinity
            : token === "-Infinity"
              ? -Infinity
              : Number(token),
      );
    }
    if (Array.isArray(value)) return value.map(restore);
    if (isPlainObject(value)) {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = restore(v);
      return out;
    }
    return value;
  };
  return restore(parsed);
}

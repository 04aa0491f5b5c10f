/**
 * Python's view of values. DVCLive's files are written by Python, which tells ints from floats
 * (`3` and `3.0`) and keeps a dict's keys in insertion order (JavaScript objects put
 * integer-like keys first). Values on their way to a file are `PyValue`s: a float is a
 * `PyFloat`, a plain `number` an int, a dict a `Map`.
 */
import { FLOAT_LOG_KEY, pythonFloatRepr } from "@trainkit/core/plugin";

/** A Python float (prints as `3.0`, `5e-05`, `nan`). */
export class PyFloat {
  constructor(readonly value: number) {}
}

export type PyScalar = null | boolean | number | string | PyFloat;
export type PyDict = Map<string, PyValue>;
export type PyValue = PyScalar | PyValue[] | PyDict;

/** Python's `str(int)`, exact for integers beyond 2^53 too. */
export function intRepr(value: number): string {
  return Number.isSafeInteger(value) ? String(value) : BigInt(value).toString();
}

/** Python's `str()` of a logged scalar: `0.5`, `3`, `True`, text as it is. */
export function pyStr(value: PyScalar): string {
  if (value === null) return "None";
  if (typeof value === "boolean") return value ? "True" : "False";
  if (typeof value === "number")
    return Number.isInteger(value) ? intRepr(value) : pythonFloatRepr(value);
  if (value instanceof PyFloat) return pythonFloatRepr(value.value);
  return value;
}

/**
 * A logged number as Python holds it: a float if non-integral or a float-valued key (core's
 * rule for `log_history` in trainer_state.json, so DVCLive's files agree with the checkpoint).
 */
export function logNumber(key: string, value: number): number | PyFloat {
  return Number.isInteger(value) && !FLOAT_LOG_KEY.test(key) ? value : new PyFloat(value);
}

/**
 * Plain JSON-like data (from `args.toJSON()`) as PyValues, taking from `typed` (the same data
 * as Python holds it, e.g. parsed from `args.toJsonString()`) which numbers are floats.
 * Key order is `data`'s.
 */
export function withPythonTypes(data: unknown, typed?: PyValue): PyValue {
  if (typeof data === "number") {
    if (typed instanceof PyFloat) return typed;
    return Number.isInteger(data) ? data : new PyFloat(data);
  }
  if (data === null || data === undefined) return null;
  if (typeof data === "boolean" || typeof data === "string") return data;
  if (Array.isArray(data))
    return data.map((item, i) =>
      withPythonTypes(item, Array.isArray(typed) ? typed[i] : undefined),
    );
  if (typeof data === "object") {
    const out: PyDict = new Map();
    for (const [key, item] of Object.entries(data)) {
      if (item === undefined) continue;
      out.set(key, withPythonTypes(item, typed instanceof Map ? typed.get(key) : undefined));
    }
    return out;
  }
  return String(data);
}

// A JSON string (control characters must be escaped in one) and a JSON number, matched at a position.
// eslint-disable-next-line no-control-regex -- the control characters are what it rejects
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;

/**
 * Reads JSON as Python's json module does: numbers with a fraction or an exponent (and NaN,
 * ±Infinity) become `PyFloat`s, the others ints; objects become Maps in file order.
 */
export function parsePythonJson(text: string): PyValue {
  let at = 0;
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at position ${at} of the JSON text`);
  };
  const skip = () => {
    while (at < text.length && " \t\n\r".includes(text[at]!)) at++;
  };
  const literal = (word: string, value: PyValue): PyValue => {
    if (!text.startsWith(word, at)) fail(`unexpected "${text[at]}"`);
    at += word.length;
    return value;
  };
  const string = (): string => {
    STRING.lastIndex = at;
    const match = STRING.exec(text);
    if (!match) return fail("bad string");
    at += match[0].length;
    return JSON.parse(match[0]) as string;
  };
  const value = (): PyValue => {
    skip();
    const ch = text[at];
    if (ch === "{") {
      at++;
      const out: PyDict = new Map();
      skip();
      if (text[at] === "}") {
        at++;
        return out;
      }
      for (;;) {
        skip();
        const key = string();
        skip();
        if (text[at++] !== ":") fail('expected ":"');
        out.set(key, value());
        skip();
        const next = text[at++];
        if (next === "}") return out;
        if (next !== ",") fail('expected "," or "}"');
      }
    }
    if (ch === "[") {
      at++;
      const out: PyValue[] = [];
      skip();
      if (text[at] === "]") {
        at++;
        return out;
      }
      for (;;) {
        out.push(value());
        skip();
        const next = text[at++];
        if (next === "]") return out;
        if (next !== ",") fail('expected "," or "]"');
      }
    }
    if (ch === '"') return string();
    if (ch === "t") return literal("true", true);
    if (ch === "f") return literal("false", false);
    if (ch === "n") return literal("null", null);
    if (ch === "N") return literal("NaN", new PyFloat(NaN));
    if (ch === "I") return literal("Infinity", new PyFloat(Infinity));
    if (text.startsWith("-Infinity", at)) return literal("-Infinity", new PyFloat(-Infinity));
    NUMBER.lastIndex = at;
    const match = NUMBER.exec(text);
    if (!match) return fail(ch === undefined ? "unexpected end" : `unexpected "${ch}"`);
    at += match[0].length;
    const number = Number(match[0]);
    return match[1] !== undefined || match[2] !== undefined ? new PyFloat(number) : number;
  };
  const result = value();
  skip();
  if (at < text.length) fail("unexpected text after the JSON value");
  return result;
}

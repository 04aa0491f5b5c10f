/**
 * JSON as Python's `json.dumps(obj, indent=2, sort_keys=True)` writes it, and a reader for
 * what Python writes, so files trainkit writes read like files transformers writes, and back.
 *
 * JavaScript has one number type; Python tells ints from floats. The writer prints a number
 * as a Python float when it is not integral or when `isFloat(key)` says the key holds floats.
 */

/** Python's `repr(float)`: shortest round-trip digits, exponent form below 1e-4 and from 1e16. */
export function formatPythonFloat(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "Infinity";
  if (value === -Infinity) return "-Infinity";
  if (value === 0) return Object.is(value, -0) ? "-0.0" : "0.0";
  const [mantissa, exponentText] = value.toExponential().split("e") as [string, string];
  const exponent = Number(exponentText);
  const negative = mantissa.startsWith("-");
  const digits = mantissa.replace("-", "").replace(".", "");
  const sign = negative ? "-" : "";
  if (exponent < -4 || exponent >= 16) {
    const fraction = digits.length > 1 ? `.${digits.slice(1)}` : "";
    const expSign = exponent < 0 ? "-" : "+";
    return `${sign}${digits[0]}${fraction}e${expSign}${String(Math.abs(exponent)).padStart(2, "0")}`;
  }
  if (exponent < 0) return `${sign}0.${"0".repeat(-exponent - 1)}${digits}`;
  const whole = digits.slice(0, exponent + 1).padEnd(exponent + 1, "0");
  const fraction = digits.slice(exponent + 1) || "0";
  return `${sign}${whole}.${fraction}`;
}

function formatNumber(value: number, asFloat: boolean): string {
  if (!Number.isFinite(value) || !Number.isInteger(value) || asFloat)
    return formatPythonFloat(value);
  return String(value);
}

/** Python's ensure_ascii string escaping: everything outside printable ASCII as \uXXXX. */
export function formatPythonString(text: string): string {
  return JSON.stringify(text).replace(
    /[\u007f-\uffff]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

export interface DumpOptions {
  /** Whether the number at this path of keys from the top (array items add "[]") is a float. */
  isFloat?: (path: readonly string[]) => boolean;
}

/**
 * Objects and arrays read by `parsePythonJson`, and in them the keys of the integral numbers
 * Python wrote as floats (`2.0`, `1e3`). `dumpPythonJson` writes an integral number it
 * read back in the form it had (`2.0` or `2`), so a file read and written again is unchanged
 * even where no rule knows the key (a custom metric that happened to be `1.0`, say).
 */
const parsedContainers = new WeakSet<object>();
const integralFloats = new WeakMap<object, Set<string>>();

/**
 * How `parsePythonJson` found the integral number at `holder[key]`: "float" (`2.0`), "int"
 * (`2`), or undefined when it did not read it (or the value is not an integral number).
 */
export function loadedNumberKind(
  holder: object,
  key: string,
  value: unknown = (holder as Record<string, unknown>)[key],
): "int" | "float" | undefined {
  if (typeof value !== "number" || !Number.isInteger(value) || !parsedContainers.has(holder))
    return undefined;
  return integralFloats.get(holder)?.has(key) ? "float" : "int";
}

/** `json.dumps(value, indent=2, sort_keys=True) + "\n"`. */
export function dumpPythonJson(value: unknown, options: DumpOptions = {}): string {
  const isFloat = options.isFloat ?? (() => false);
  const write = (item: unknown, indent: string, path: string[], holder?: object): string => {
    if (item === null || item === undefined) return "null";
    if (typeof item === "boolean") return item ? "true" : "false";
    if (typeof item === "number") {
      const kind = holder ? loadedNumberKind(holder, path.at(-1) ?? "", item) : undefined;
      return formatNumber(item, kind === undefined ? isFloat(path) : kind === "float");
    }
    if (typeof item === "string") return formatPythonString(item);
    const inner = `${indent}  `;
    if (Array.isArray(item)) {
      if (item.length === 0) return "[]";
      const parts = item.map((element, index) => {
        // Array items are "[]" in the path given to isFloat; the loaded kind is by index.
        const kind = loadedNumberKind(item, String(index), element);
        return (
          inner +
          (kind === undefined
            ? write(element, inner, [...path, "[]"])
            : formatNumber(element as number, kind === "float"))
        );
      });
      return `[\n${parts.join(",\n")}\n${indent}]`;
    }
    if (typeof item === "object") {
      const entries = Object.entries(item as Record<string, unknown>).filter(
        ([, v]) => v !== undefined,
      );
      if (entries.length === 0) return "{}";
      entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      const parts = entries.map(
        ([k, v]) => `${inner}${formatPythonString(k)}: ${write(v, inner, [...path, k], item)}`,
      );
      return `{\n${parts.join(",\n")}\n${indent}}`;
    }
    throw new TypeError(`cannot write a ${typeof item} as JSON`);
  };
  return `${write(value, "", [])}\n`;
}

const NON_FINITE: Record<string, number> = {
  NaN: NaN,
  Infinity: Infinity,
  "-Infinity": -Infinity,
};

/** A JSON string, or a bare token: NaN, ±Infinity, or a number. */
const TOKEN = /"[^"\\]*(?:\\.[^"\\]*)*"|-?Infinity|NaN|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;
const MARKER = "\u0000trainkit-number:";

/**
 * JSON.parse that also accepts the NaN, Infinity and -Infinity that Python's json module
 * writes (tokens inside strings are left alone), and remembers which integral numbers were
 * written as floats (`2.0`) and which as ints (`2`), for `dumpPythonJson`.
 */
export function parsePythonJson(text: string): unknown {
  let marked = false;
  const rewritten = text.replace(TOKEN, (token) => {
    if (token.startsWith('"')) return token;
    if (token in NON_FINITE || (/[.eE]/.test(token) && Number.isInteger(Number(token)))) {
      marked = true;
      return JSON.stringify(MARKER + token);
    }
    return token;
  });
  const root = { "": JSON.parse(rewritten) as unknown };
  // One walk over the result: remember the containers, and turn the markers into numbers.
  const visit = (container: Record<string, unknown>): void => {
    parsedContainers.add(container);
    for (const key in container) {
      const value = container[key];
      if (typeof value === "object" && value !== null) {
        visit(value as Record<string, unknown>);
      } else if (marked && typeof value === "string" && value.startsWith(MARKER)) {
        const token = value.slice(MARKER.length);
        if (token in NON_FINITE) {
          container[key] = NON_FINITE[token];
        } else {
          container[key] = Number(token);
          let floats = integralFloats.get(container);
          if (!floats) integralFloats.set(container, (floats = new Set()));
          floats.add(key);
        }
      }
    }
  };
  visit(root);
  return root[""];
}

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

/** `json.dumps(value, indent=2, sort_keys=True) + "\n"`. */
export function dumpPythonJson(value: unknown, options: DumpOptions = {}): string {
  const isFloat = options.isFloat ?? (() => false);
  const write = (item: unknown, indent: string, path: string[]): string => {
    if (item === null || item === undefined) return "null";
    if (typeof item === "boolean") return item ? "true" : "false";
    if (typeof item === "number") return formatNumber(item, isFloat(path));
    if (typeof item === "string") return formatPythonString(item);
    const inner = `${indent}  `;
    if (Array.isArray(item)) {
      if (item.length === 0) return "[]";
      const parts = item.map((element) => inner + write(element, inner, [...path, "[]"]));
      return `[\n${parts.join(",\n")}\n${indent}]`;
    }
    if (typeof item === "object") {
      const entries = Object.entries(item as Record<string, unknown>).filter(
        ([, v]) => v !== undefined,
      );
      if (entries.length === 0) return "{}";
      entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      const parts = entries.map(
        ([k, v]) => `${inner}${formatPythonString(k)}: ${write(v, inner, [...path, k])}`,
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

/**
 * JSON.parse that also accepts the NaN, Infinity and -Infinity that Python's json module
 * writes. Tokens inside strings are left alone.
 */
export function parsePythonJson(text: string): unknown {
  if (!text.includes("NaN") && !text.includes("Infinity")) return JSON.parse(text);
  const marker = "\u0000trainkit-nonfinite:";
  let out = "";
  let i = 0;
  let found = false;
  while (i < text.length) {
    const char = text[i]!;
    if (char === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    const token = ["-Infinity", "Infinity", "NaN"].find((t) => text.startsWith(t, i));
    if (token) {
      out += JSON.stringify(marker + token);
      i += token.length;
      found = true;
      continue;
    }
    out += char;
    i += 1;
  }
  if (!found) return JSON.parse(text);
  return JSON.parse(out, (_key, value: unknown) =>
    typeof value === "string" && value.startsWith(marker)
      ? NON_FINITE[value.slice(marker.length)]
      : value,
  );
}

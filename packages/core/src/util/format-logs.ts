import { formatPythonFloat } from "./python-json.js";

/** Log keys whose values HF holds as Python floats (loss, eval_loss, epoch, rates, ...). */
export const FLOAT_LOG_KEY = /(^|_)(loss|runtime|per_second|epoch|learning_rate|grad_norm|flos)$/;

/** Python's `repr(float)`, which spells the non-finite values `nan`, `inf` and `-inf`. */
export function pythonFloatRepr(value: number): string {
  if (Number.isNaN(value)) return "nan";
  if (value === Infinity) return "inf";
  if (value === -Infinity) return "-inf";
  return formatPythonFloat(value);
}

/** Python's `repr(str)`: single quotes unless the text holds ' and no ", escapes as Python's. */
export function pythonStrRepr(text: string): string {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = "";
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (char === quote || char === "\\") out += `\\${char}`;
    else if (char === "\n") out += "\\n";
    else if (char === "\r") out += "\\r";
    else if (char === "\t") out += "\\t";
    else if (char !== " " && /[\p{C}\p{Z}]/u.test(char)) {
      // Not printable for Python's str.isprintable.
      if (code <= 0xff) out += `\\x${code.toString(16).padStart(2, "0")}`;
      else if (code <= 0xffff) out += `\\u${code.toString(16).padStart(4, "0")}`;
      else out += `\\U${code.toString(16).padStart(8, "0")}`;
    } else out += char;
  }
  return `${quote}${out}${quote}`;
}

function formatValue(key: string, value: unknown): string {
  if (typeof value === "number") {
    if (Number.isInteger(value) && !FLOAT_LOG_KEY.test(key))
      return Number.isSafeInteger(value) ? String(value) : BigInt(value).toString();
    return pythonFloatRepr(value);
  }
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "string") return pythonStrRepr(value);
  if (typeof value === "boolean") return value ? "True" : "False";
  if (value === null || value === undefined) return "None";
  if (Array.isArray(value)) return `[${value.map((item) => formatValue(key, item)).join(", ")}]`;
  if (typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype)
    return formatLogs(value as Record<string, unknown>);
  return String(value);
}

/** A logs dict as Python prints it (`{'loss': 0.5, 'epoch': 1.0}`), as HF's console shows logs. */
export function formatLogs(logs: Record<string, unknown>): string {
  const items = Object.entries(logs).map(([k, v]) => `${pythonStrRepr(k)}: ${formatValue(k, v)}`);
  return `{${items.join(", ")}}`;
}

/**
 * Python's `round(value, digits)`: correctly rounded from the exact binary value, ties to
 * even (`round(0.125, 2)` is 0.12, `round(0.375, 2)` is 0.38), where `Math.round` would
 * round ties up.
 */
export function pythonRound(value: number, digits: number): number {
  if (!Number.isFinite(value) || Math.abs(value) >= 1e15) return value;
  const negative = value < 0 || Object.is(value, -0);
  // toFixed(100) gives the exact decimal expansion of the double (for any value that can
  // still be rounded at `digits`).
  const exact = Math.abs(value).toFixed(100);
  const [whole, fraction] = exact.split(".") as [string, string];
  const kept = BigInt(whole + fraction.slice(0, digits));
  const rest = fraction.slice(digits);
  const restHalf = `5${"0".repeat(rest.length - 1)}`;
  const up = rest > restHalf || (rest === restHalf && kept % 2n === 1n);
  const rounded = (up ? kept + 1n : kept).toString().padStart(digits + 1, "0");
  const text = `${rounded.slice(0, rounded.length - digits)}.${rounded.slice(rounded.length - digits)}`;
  const result = Number(text);
  return negative ? -result : result;
}

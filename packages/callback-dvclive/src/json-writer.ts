import { PyFloat, floatRepr, intRepr, type PyValue } from "./python-values.js";

/** Python's json string escaping with ensure_ascii: everything outside printable ASCII as \uXXXX. */
export function jsonString(text: string): string {
  return JSON.stringify(text).replace(
    /[\u007f-\uffff]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function jsonFloat(value: number): string {
  // Python's json writes the non-finite floats as JavaScript's names for them.
  if (Number.isNaN(value)) return "NaN";
  if (!Number.isFinite(value)) return value > 0 ? "Infinity" : "-Infinity";
  return floatRepr(value);
}

/** `json.dump(value, f, indent=4)` followed by a newline, as dvclive writes metrics.json. */
export function dumpJson(value: PyValue, indent = 4): string {
  const write = (item: PyValue, depth: number): string => {
    if (item === null) return "null";
    if (typeof item === "boolean") return item ? "true" : "false";
    if (typeof item === "number") return Number.isInteger(item) ? intRepr(item) : jsonFloat(item);
    if (item instanceof PyFloat) return jsonFloat(item.value);
    if (typeof item === "string") return jsonString(item);
    const inner = " ".repeat(indent * (depth + 1));
    const outer = " ".repeat(indent * depth);
    if (Array.isArray(item)) {
      if (item.length === 0) return "[]";
      return `[\n${item.map((v) => inner + write(v, depth + 1)).join(",\n")}\n${outer}]`;
    }
    const entries = [...item];
    if (entries.length === 0) return "{}";
    const lines = entries.map(([k, v]) => `${inner}${jsonString(k)}: ${write(v, depth + 1)}`);
    return `{\n${lines.join(",\n")}\n${outer}}`;
  };
  return `${write(value, 0)}\n`;
}

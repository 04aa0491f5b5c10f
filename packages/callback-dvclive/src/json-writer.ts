import { formatPythonFloat, formatPythonString } from "@trainkit/core/plugin";
import { PyFloat, intRepr, type PyValue } from "./python-values.js";

// Core's formatPythonFloat writes the non-finite floats as Python's json does (NaN, Infinity,
// -Infinity) and the others as repr(float); formatPythonString is json's ensure_ascii escaping.

/**
 * `json.dump(value, f, indent=4)` followed by a newline, as dvclive writes metrics.json. Not
 * core's dumpPythonJson: dvclive keeps insertion order (no sort_keys), indents by 4 and writes
 * PyValues (Maps, PyFloat).
 */
export function dumpJson(value: PyValue, indent = 4): string {
  const write = (item: PyValue, depth: number): string => {
    if (item === null) return "null";
    if (typeof item === "boolean") return item ? "true" : "false";
    if (typeof item === "number")
      return Number.isInteger(item) ? intRepr(item) : formatPythonFloat(item);
    if (item instanceof PyFloat) return formatPythonFloat(item.value);
    if (typeof item === "string") return formatPythonString(item);
    const inner = " ".repeat(indent * (depth + 1));
    const outer = " ".repeat(indent * depth);
    if (Array.isArray(item)) {
      if (item.length === 0) return "[]";
      return `[\n${item.map((v) => inner + write(v, depth + 1)).join(",\n")}\n${outer}]`;
    }
    const entries = [...item];
    if (entries.length === 0) return "{}";
    const lines = entries.map(
      ([k, v]) => `${inner}${formatPythonString(k)}: ${write(v, depth + 1)}`,
    );
    return `{\n${lines.join(",\n")}\n${outer}}`;
  };
  return `${write(value, 0)}\n`;
}

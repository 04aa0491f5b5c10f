import { formatPythonFloat } from "./python-json.js";

/** Log keys whose values HF holds as Python floats (loss, eval_loss, epoch, rates, ...). */
export const FLOAT_LOG_KEY = /(^|_)(loss|runtime|per_second|epoch|learning_rate|grad_norm|flos)$/;

function formatValue(key: string, value: unknown): string {
  if (typeof value === "number") {
    return Number.isInteger(value) && !FLOAT_LOG_KEY.test(key)
      ? String(value)
      : formatPythonFloat(value);
  }
  if (typeof value === "string") return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
  if (typeof value === "boolean") return value ? "True" : "False";
  if (value === null || value === undefined) return "None";
  return String(value);
}

/** A logs dict as Python prints it (`{'loss': 0.5, 'epoch': 1.0}`), as HF's console shows logs. */
export function formatLogs(logs: Record<string, unknown>): string {
  const items = Object.entries(logs).map(([k, v]) => `'${k}': ${formatValue(k, v)}`);
  return `{${items.join(", ")}}`;
}

/**
 * The "Log History" deck: `state.log_history` as one self-contained HTML table (inline CSS, no
 * scripts, no external resources; a Content-Security-Policy forbids loading any), laid out as
 * pandas lays out `DataFrame(log_history)`, which is what HF publishes: a column per key in
 * order of first appearance, a row per entry, an empty cell where an entry lacks a key.
 */
import { dumpPythonJson, parsePythonJson, pythonFloatRepr } from "@trainkit/core/plugin";

/** Python's repr of a float (`nan`, `inf`, `-inf` as Python prints them): core's, re-exported. */
export { pythonFloatRepr };

/**
 * A cell's text. Numbers read back equal with `Number(text)` (nan, inf and -inf as Python
 * spells them): integers as integers (JavaScript cannot tell Python's 1.0 from 1), other
 * numbers as Python's repr. Booleans and None as Python prints them; strings as they are;
 * anything else as JSON.
 */
export function formatCell(value: unknown): string {
  if (typeof value === "number") {
    if (Number.isInteger(value) && Math.abs(value) < 1e16 && !Object.is(value, -0))
      return String(value);
    return pythonFloatRepr(value);
  }
  if (typeof value === "boolean") return value ? "True" : "False";
  if (value === null) return "None";
  if (typeof value === "string") return value;
  if (typeof value === "bigint") return value.toString();
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Text made safe for HTML element content and double-quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (char) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[char]!,
  );
}

/** The union of the entries' keys, in order of first appearance (pandas' column order). */
export function logHistoryColumns(logHistory: readonly Record<string, unknown>[]): string[] {
  const columns = new Set<string>();
  for (const entry of logHistory) for (const key of Object.keys(entry)) columns.add(key);
  return [...columns];
}

const STYLE = `
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1.5em; color: #1f2328; }
h2 { font-size: 1.25em; margin: 0 0 .25em; }
p { margin: 0 0 1em; color: #59636e; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d1d9e0; padding: .3em .6em; white-space: nowrap; }
th { background: #f6f8fa; position: sticky; top: 0; text-align: left; }
td.num { text-align: right; }
tbody tr:nth-child(even) { background: #fafbfc; }
`.trim();

export interface DeckOptions {
  /** The heading and the page title (default "Log History", the name HF gives the deck). */
  title?: string;
}

/** The deck: a complete HTML document holding the log history table. */
export function renderLogHistoryHtml(
  logHistory: readonly Record<string, unknown>[],
  { title = "Log History" }: DeckOptions = {},
): string {
  const columns = logHistoryColumns(logHistory);
  const header = columns.map((key) => `<th scope="col">${escapeHtml(key)}</th>`).join("");
  const rows = logHistory.map((entry) => {
    const cells = columns.map((key) => {
      if (!Object.hasOwn(entry, key) || entry[key] === undefined) return "<td></td>";
      const value = entry[key];
      const numeric = typeof value === "number" ? ' class="num"' : "";
      return `<td${numeric}>${escapeHtml(formatCell(value))}</td>`;
    });
    return `<tr>${cells.join("")}</tr>`;
  });
  const count = logHistory.length;
  return [
    "<!DOCTYPE html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    // Nothing may be loaded or run: the deck is one file that reads the same anywhere.
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title>`,
    `<style>\n${STYLE}\n</style>`,
    "</head>",
    "<body>",
    `<h2>${escapeHtml(title)}</h2>`,
    `<p>${count} ${count === 1 ? "entry" : "entries"}, ${columns.length} ${columns.length === 1 ? "column" : "columns"}.</p>`,
    "<table>",
    `<thead><tr>${header}</tr></thead>`,
    "<tbody>",
    ...rows,
    "</tbody>",
    "</table>",
    "</body>",
    "</html>",
    "",
  ].join("\n");
}

/**
 * The JSON copy: the log history exactly as trainer_state.json holds it (Python's json: indent
 * 2, sorted keys, floats as Python writes them, NaN and ±Infinity as the bare tokens
 * `NaN`/`Infinity`/`-Infinity` that Python's json and pandas read, and that @trainkit/core's
 * parsePythonJson reads).
 */
export function logHistoryJson(state: {
  logHistory: readonly Record<string, unknown>[];
  toJsonString?: () => string;
}): string {
  if (typeof state.toJsonString !== "function") return dumpPythonJson(state.logHistory);
  // Through trainer_state.json's own writer, so the copy keeps its int/float spelling.
  const parsed = parsePythonJson(state.toJsonString()) as { log_history?: unknown };
  return dumpPythonJson(parsed.log_history ?? []);
}

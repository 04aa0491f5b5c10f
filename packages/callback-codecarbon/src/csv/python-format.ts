// How pandas' `DataFrame.to_csv` prints the cells of codecarbon's row: floats as Python's repr,
// ints as digits, None and NaN as empty cells, strings quoted only when they must be (csv
// QUOTE_MINIMAL). Matching it keeps trainkit's emissions.csv byte-compatible with codecarbon's.
import { pythonFloatRepr } from "@trainkit/core/plugin";

/** One cell with the Python type codecarbon gives it. */
export type CsvCell =
  | { kind: "float"; value: number }
  | { kind: "int"; value: number }
  | { kind: "str"; value: string }
  | { kind: "none" };

export const float = (value: number): CsvCell => ({ kind: "float", value });
export const int = (value: number): CsvCell => ({ kind: "int", value });
export const none: CsvCell = { kind: "none" };
/** A string, or None (an empty cell) for null/undefined. */
export const str = (value: string | null | undefined): CsvCell =>
  value === null || value === undefined ? none : { kind: "str", value };

/**
 * Python's `repr(float)` (core's): the shortest round-trip digits, `20.0`, `1e-05`, `1.5e+16`,
 * and the non-finite values spelled `nan`, `inf`, `-inf` as pandas writes them in a CSV.
 */
export { pythonFloatRepr };

/** A text field as Python's csv writer quotes it (QUOTE_MINIMAL, `"` doubled). */
export function quoteField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** A cell as pandas writes it (na_rep "": None and NaN are empty). */
export function formatCell(cell: CsvCell): string {
  switch (cell.kind) {
    case "none":
      return "";
    case "str":
      return quoteField(cell.value);
    case "int":
      return String(Math.trunc(cell.value));
    case "float":
      return Number.isNaN(cell.value) ? "" : pythonFloatRepr(cell.value);
  }
}

/** One CSV line (no line terminator). */
export function formatLine(fields: readonly string[]): string {
  return fields.join(",");
}

/**
 * Parses CSV text into records (RFC 4180 as Python's csv reader reads it: quoted fields may
 * hold commas, doubled quotes and line breaks). A leading UTF-8 BOM is dropped.
 */
export function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = "";
  let quoted = false;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const endField = () => {
    record.push(field);
    field = "";
  };
  const endRecord = () => {
    endField();
    records.push(record);
    record = [];
  };
  for (; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch !== '"') field += ch;
      else if (text[i + 1] === '"') {
        field += '"';
        i++;
      } else quoted = false;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") endField();
    else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && text[i + 1] === "\n") i++;
      endRecord();
    } else field += ch;
  }
  if (field !== "" || record.length > 0) endRecord();
  return records;
}

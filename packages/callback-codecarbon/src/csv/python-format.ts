// How pandas' `DataFrame.to_csv` prints the cells of codecarbon's row: floats as Python's repr,
// ints as digits, None and NaN as empty cells, strings quoted only when they must be (csv
// QUOTE_MINIMAL). Matching it keeps trainkit's emissions.csv byte-compatible with codecarbon's.

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
 * Python's `repr(float)`: the shortest digits that round-trip (as JavaScript's), written in
 * fixed notation for exponents -4..15 (always with a fractional part: `20.0`) and otherwise in
 * scientific notation with a signed exponent of at least two digits (`1e-05`, `1.5e+16`).
 */
export function pythonFloatRepr(value: number): string {
  if (Number.isNaN(value)) return "nan";
  if (value === Infinity) return "inf";
  if (value === -Infinity) return "-inf";
  if (value === 0) return Object.is(value, -0) ? "-0.0" : "0.0";
  const [mantissa, exponentText] = value.toExponential().split("e") as [string, string];
  const exponent = Number(exponentText);
  const negative = mantissa.startsWith("-");
  const digits = mantissa.replace("-", "").replace(".", "");
  const sign = negative ? "-" : "";
  if (exponent < -4 || exponent >= 16) {
    const fraction = digits.slice(1);
    const expSign = exponent < 0 ? "-" : "+";
    const expDigits = String(Math.abs(exponent)).padStart(2, "0");
    return `${sign}${digits[0]}${fraction ? `.${fraction}` : ""}e${expSign}${expDigits}`;
  }
  if (exponent < 0) return `${sign}0.${"0".repeat(-exponent - 1)}${digits}`;
  const whole = digits.slice(0, exponent + 1).padEnd(exponent + 1, "0");
  const fraction = digits.slice(exponent + 1);
  return `${sign}${whole}.${fraction || "0"}`;
}

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

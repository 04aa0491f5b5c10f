import { EOL } from "node:os";

/** One TSV field as Python's csv writer (tab, QUOTE_MINIMAL, line ending os.linesep) writes it. */
export function tsvField(text: string, eol: string = EOL): string {
  const needsQuotes =
    text.includes("\t") || text.includes('"') || [...eol].some((c) => text.includes(c));
  return needsQuotes ? `"${text.replaceAll('"', '""')}"` : text;
}

/** A TSV row: fields joined by tabs, ended by os.linesep (dvclive's `lineterminator`). */
export function tsvRow(fields: string[], eol: string = EOL): string {
  return fields.map((f) => tsvField(f, eol)).join("\t") + eol;
}

/** A TSV file's records: each one's raw text (line ending included) and its fields. */
export function tsvRecords(text: string): { raw: string; fields: string[] }[] {
  const records: { raw: string; fields: string[] }[] = [];
  let start = 0;
  let fields: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i <= text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else if (ch !== undefined) field += ch;
      continue;
    }
    if (ch === '"' && field === "") quoted = true;
    else if (ch === "\t") {
      fields.push(field);
      field = "";
    } else if (ch === "\n" || ch === undefined) {
      if (ch === undefined && start === text.length) break;
      fields.push(field.endsWith("\r") ? field.slice(0, -1) : field);
      records.push({ raw: text.slice(start, i + 1), fields });
      start = i + 1;
      fields = [];
      field = "";
    } else field += ch;
  }
  return records;
}

/**
 * A metric's TSV without the rows logged at `fromStep` or later (a run resumed from a
 * checkpoint logs them again). The header and earlier rows are kept byte for byte.
 */
export function truncateTsv(text: string, fromStep: number): { text: string; dropped: number } {
  const [header, ...rows] = tsvRecords(text);
  if (!header) return { text, dropped: 0 };
  const column = header.fields.indexOf("step");
  if (column < 0) return { text, dropped: 0 };
  const kept = rows.filter((row) => !(Number(row.fields[column]) >= fromStep));
  return {
    text: header.raw + kept.map((row) => row.raw).join(""),
    dropped: rows.length - kept.length,
  };
}

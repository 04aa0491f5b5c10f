// Writes emissions.csv by codecarbon 3.3's rules (output_methods/file.py):
// - a missing or empty file gets the header and the row;
// - a file whose header has a different set of columns (an older codecarbon's) is renamed to
//   `<name>.bak`, or `<name>_0.bak`, `<name>_1.bak`, ... when taken, and a new file is started;
// - "append" adds the row in the file's own column order;
// - "update" replaces the row of the same run_id (appending if the file already has several).
import { open, readFile, rename, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { formatCell, formatLine, parseCsv, quoteField, type CsvCell } from "./python-format.js";

export type OnCsvWrite = "append" | "update";

export interface WriteResult {
  /** Where an existing file with another header was moved, if it was. */
  backedUpTo?: string;
  /** "update" found several rows of this run and appended instead (codecarbon's rule). */
  appendedDuplicate?: boolean;
}

/**
 * Writes one row (`cells`, keyed by column, in column order) to `path`. Only the column set
 * has to match an existing header; the row follows the file's order.
 */
export async function writeEmissionsRow(
  path: string,
  cells: Readonly<Record<string, CsvCell>>,
  mode: OnCsvWrite,
): Promise<WriteResult> {
  const columns = Object.keys(cells);
  const result: WriteResult = {};
  // Nodes may share the file: a new file is created exclusively, and if another node created
  // it meanwhile, the row goes into that file instead (at most a few rounds).
  let existing: Existing | undefined;
  for (let round = 0; ; round++) {
    if (round === 5) throw new Error(`${path} keeps changing under this writer`);
    existing = await readExisting(path);
    if (existing && existing.text !== "" && !sameColumns(existing.header, columns)) {
      const backedUpTo = await backupUnlessMatching(path, columns);
      if (backedUpTo !== undefined) result.backedUpTo = backedUpTo;
      continue; // read again: the file is gone, or another node already started a new one
    }
    if (existing && existing.text !== "") break;
    if (await writeNew(path, columns, cells, existing === undefined)) return result;
  }

  const line = rowLine(existing.header, cells);
  if (mode === "append") {
    const separator = existing.text.endsWith("\n") ? "" : "\n";
    await appendText(path, `${separator}${line}\n`);
    return result;
  }
  const runIdAt = existing.header.indexOf("run_id");
  const runId = cells.run_id?.kind === "str" ? cells.run_id.value : "";
  const records = parseCsv(existing.text).slice(1);
  const mine = records.filter((r) => r[runIdAt] === runId).length;
  result.appendedDuplicate = mine > 1;
  const kept = mine > 1 ? records : records.filter((r) => r[runIdAt] !== runId);
  const lines = [existing.header, ...kept].map((r) => formatLine(r.map(quoteField)));
  await replaceFile(path, `${[...lines, line].join("\n")}\n`);
  return result;
}

interface Existing {
  header: string[];
  text: string;
}

/** The file's text and header (empty for an empty file), or undefined if it does not exist. */
async function readExisting(path: string): Promise<Existing | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  const header = parseCsv(text)[0] ?? [];
  return { header, text };
}

function sameColumns(a: readonly string[], b: readonly string[]): boolean {
  const x = [...a].sort();
  const y = [...b].sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

function rowLine(order: readonly string[], cells: Readonly<Record<string, CsvCell>>): string {
  return formatLine(order.map((column) => formatCell(cells[column] ?? { kind: "none" })));
}

/**
 * The header and the row as a new file. A missing file is created with O_EXCL ("wx"): false if
 * another process created it first (its row then goes into that file). An empty file is
 * overwritten, as codecarbon does.
 */
async function writeNew(
  path: string,
  columns: readonly string[],
  cells: Readonly<Record<string, CsvCell>>,
  missing: boolean,
): Promise<boolean> {
  const text = `${formatLine(columns.map(quoteField))}\n${rowLine(columns, cells)}\n`;
  try {
    await writeFile(path, text, { flag: missing ? "wx" : "w" });
    return true;
  } catch (error) {
    if (missing && (error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  }
}

/** One write with O_APPEND: rows from processes sharing the file do not interleave. */
async function appendText(path: string, text: string): Promise<void> {
  const handle = await open(path, "a");
  try {
    await handle.write(text);
  } finally {
    await handle.close();
  }
}

/** Written aside and renamed over: a crash never leaves half a file. */
async function replaceFile(path: string, text: string): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  await writeFile(temporary, text);
  await rename(temporary, path);
}

/** codecarbon's core.util.backup: `<name>.bak`, then `<name>_0.bak`, `<name>_1.bak`, ... */
export async function backup(path: string): Promise<string> {
  const target = await backupTarget(path);
  await rename(path, target);
  return target;
}

/**
 * Backs `path` up (codecarbon's rule) unless, read again just before the rename, it is gone or
 * has `columns` after all: another node sharing the file may have backed it up and started a
 * new one meanwhile, which must not be moved aside. Returns where the file went, if it moved.
 */
async function backupUnlessMatching(
  path: string,
  columns: readonly string[],
): Promise<string | undefined> {
  const target = await backupTarget(path);
  const now = await readExisting(path);
  if (!now || now.text === "" || sameColumns(now.header, columns)) return undefined;
  try {
    await rename(path, target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined; // moved by another
    throw error;
  }
  return target;
}

async function backupTarget(path: string): Promise<string> {
  const name = basename(path);
  let target = join(dirname(path), `${name}.bak`);
  for (let n = 0; await exists(target); n++) target = join(dirname(path), `${name}_${n}.bak`);
  return target;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

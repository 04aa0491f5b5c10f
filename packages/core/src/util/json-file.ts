import { randomBytes } from "node:crypto";
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { parsePythonJson } from "./python-json.js";

/**
 * Reads a JSON file as Python's json module writes it (NaN and ±Infinity included). Errors
 * name the file and say whether it could not be read or is not valid JSON.
 */
export function readJsonFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new Error(`Cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
  try {
    return parsePythonJson(text);
  } catch (error) {
    throw new Error(
      `${path} is not valid JSON (${(error as Error).message}): the file is damaged or truncated.`,
      { cause: error },
    );
  }
}

/**
 * Writes a file through a temporary file renamed into place, so a crash never leaves it half
 * written: readers see the old content or the new, never a mix.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const temporary = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    writeFileSync(temporary, data, { flag: "wx" });
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}

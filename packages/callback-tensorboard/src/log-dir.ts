import { existsSync } from "node:fs";
import { homedir, hostname } from "node:os";
import { join } from "node:path";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

const two = (n: number): string => String(n).padStart(2, "0");

/** HF's `datetime.now().strftime("%b%d_%H-%M-%S")`: local time, e.g. "Nov28_17-42-05". */
export function runTimestamp(date: Date = new Date()): string {
  return (
    `${MONTHS[date.getMonth()]}${two(date.getDate())}_` +
    `${two(date.getHours())}-${two(date.getMinutes())}-${two(date.getSeconds())}`
  );
}

/** HF's default_logdir under the output dir: `<outputDir>/runs/<MonDD_HH-MM-SS>_<hostname>`. */
export function defaultLogDir(outputDir: string, date: Date = new Date()): string {
  return join(outputDir, "runs", `${runTimestamp(date)}_${hostname()}`);
}

/** Python's os.path.expanduser for `~` and `~/...` (the forms HF users write). */
export function expandUser(path: string): string {
  if (path === "~") return homedir();
  if (path.startsWith("~/")) return join(homedir(), path.slice(2));
  return path;
}

/**
 * The run directory for a restart that would otherwise write lower steps into `dir`:
 * `<dir>/from-step-<step>`, or `-2`, `-3`, ... if that exists.
 */
export function restartRunDir(dir: string, step: number): string {
  const base = join(dir, `from-step-${step}`);
  if (!existsSync(base)) return base;
  for (let n = 2; ; n++) if (!existsSync(`${base}-${n}`)) return `${base}-${n}`;
}

/**
 * The run folder's file helpers: the check that it is a folder of its own (by real paths),
 * mkdir -p, atomic writes, Python's line endings, dvclive's copy into artifacts/.
 */
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  realpathSync,
  rmSync,
  statSync,
} from "node:fs";
import { EOL } from "node:os";
import {
  basename,
  dirname,
  extname,
  isAbsolute,
  join,
  normalize,
  relative,
  resolve,
  sep,
} from "node:path";
import { writeFileAtomic } from "@trainkit/core/plugin";

const OWN_FOLDER =
  'a new run deletes params.yaml, metrics.json, *dvc.yaml, report.* and plots/metrics in its folder, so give it a folder of its own, such as "dvclive"';

/**
 * The run folder `dir` (`dirOption` resolved) must be a folder of its own: not the working
 * directory or above it, not holding the Trainer's outputDir, not a project's root (`.dvc` or
 * `.git` in it). Compared by real paths, so a symbolic link cannot hide any of these. Returns
 * the folder's real path (that of its nearest existing ancestor, plus the rest, before it exists).
 */
export function checkRunFolder(
  dirOption: string,
  dir: string,
  cwd: string,
  outputDir?: string,
): string {
  const real = realPathOf(dir);
  const shown = real === dir ? `"${dirOption}"` : `"${dirOption}" (${real})`;
  if (contains(real, realPathOf(cwd)))
    throw new Error(
      `DVCLive: dir ${shown} is the working directory or a folder above it; ${OWN_FOLDER}.`,
    );
  if (outputDir !== undefined && contains(real, realPathOf(resolve(cwd, outputDir))))
    throw new Error(
      `DVCLive: dir ${shown} is or holds the Trainer's outputDir (${outputDir}); ${OWN_FOLDER}.`,
    );
  for (const marker of [".dvc", ".git"])
    if (existsSync(join(real, marker)))
      throw new Error(
        `DVCLive: dir ${shown} holds ${marker}, so it is a project's root; ${OWN_FOLDER}.`,
      );
  return real;
}

/** The real path of `path`: that of its nearest existing ancestor, with the rest appended. */
export function realPathOf(path: string): string {
  const rest: string[] = [];
  for (let at = path; ;) {
    try {
      return join(realpathSync.native(at), ...rest);
    } catch {
      const parent = dirname(at);
      if (parent === at) return path;
      rest.unshift(basename(at));
      at = parent;
    }
  }
}

/** Whether `path` is `folder` or inside it. */
export function contains(folder: string, path: string): boolean {
  const rel = relative(folder, path);
  return rel === "" || (rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/** Python's text mode writes os.linesep for each "\n" (dvclive opens its files in text mode). */
export function eol(text: string): string {
  return EOL === "\n" ? text : text.replace(/\n/g, EOL);
}

/**
 * mkdir -p that reports the real cause: Node's recursive mkdir says ENOENT where the folder
 * could not be made for another reason (EROFS, EACCES).
 */
export function ensureDir(dir: string): void {
  try {
    mkdirSync(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EEXIST" && statSync(dir).isDirectory()) return;
    if (code !== "ENOENT" || dirname(dir) === dir) throw error;
    ensureDir(dirname(dir));
    mkdirSync(dir);
  }
}

/** Written to a temporary file first, so a reader (dvc, an editor) never sees half a file. */
export function writeAtomic(file: string, text: string): void {
  ensureDir(dirname(file));
  writeFileAtomic(file, text);
}

/** dvclive's clean_and_copy_into: `src` copied into `dst`, replacing an earlier copy. */
export function cleanAndCopyInto(src: string, dst: string): string {
  ensureDir(dst);
  const target = join(dst, basename(normalize(src)));
  rmSync(target, { recursive: true, force: true });
  cpSync(src, target, { recursive: true, preserveTimestamps: true });
  return target;
}

/** Every .tsv file under `dir`. */
export function tsvFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && extname(entry.name) === ".tsv")
    .map((entry) => join(entry.parentPath, entry.name));
}

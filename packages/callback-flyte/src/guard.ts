/**
 * What a replacing copy may replace. Every checkpoint copy replaces the whole destination
 * folder (the old one is moved aside and deleted), so a destination that holds anything else
 * would be wiped. A destination is refused when it is, or contains, a folder the process
 * depends on (the working directory, outputDir, the home folder, the temporary folder, the
 * file-system root), or when it is a non-empty folder that trainkit did not create: trainkit
 * writes a marker file into every folder it fills, and replaces only folders with the marker.
 */
import { readdirSync, realpathSync, statSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { basename, dirname, join, parse, resolve, sep } from "node:path";

/** Written into every checkpoint prefix trainkit fills: only such a folder is ever replaced. */
export const PREFIX_MARKER = ".trainkit-flyte-prefix";

/** The marker's text: what the folder is, for whoever finds it. */
export const PREFIX_MARKER_TEXT =
  "This folder is a Flyte checkpoint prefix filled by @trainkit/callback-flyte.\n" +
  "Every checkpoint copy replaces its whole contents; keep nothing else here.\n";

/** A destination a replacing copy must not touch; the message says why and what to do. */
export class RefusedDestinationError extends Error {
  override readonly name = "RefusedDestinationError";
}

/**
 * `path` with symbolic links resolved: the real path of its nearest existing ancestor, plus
 * the levels that do not exist yet.
 */
export function realLocation(path: string): string {
  const missing: string[] = [];
  let current = resolve(path);
  for (;;) {
    try {
      return join(realpathSync(current), ...missing);
    } catch {
      const parent = dirname(current);
      if (parent === current) return resolve(path);
      missing.unshift(basename(current));
      current = parent;
    }
  }
}

/** Whether `outer` is `inner` or one of its ancestors. */
function containsOrEquals(outer: string, inner: string): boolean {
  if (outer === inner) return true;
  const prefix = outer.endsWith(sep) ? outer : outer + sep;
  return inner.startsWith(prefix);
}

/** Folders a destination must neither be nor contain, by what they are. */
function protectedFolders(outputDir: string | undefined): [string, string][] {
  const folders: [string, string | undefined][] = [
    ["the working directory", process.cwd()],
    ["outputDir", outputDir],
    ["the home folder", safely(homedir)],
    ["the temporary folder", tmpdir()],
  ];
  return folders
    .filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== "")
    .map(([what, path]) => [what, realLocation(path)]);
}

function safely(get: () => string): string | undefined {
  try {
    return get();
  } catch {
    return undefined;
  }
}

/**
 * Why a replacing copy must not go to the local folder `dest`, as a sentence starting "it ..."
 * that ends with what to do (undefined: it may). `outputDir` is protected too when given (the
 * callback knows it; the storage adapter does not).
 */
export function refusalFor(
  dest: string,
  { outputDir }: { outputDir?: string } = {},
): string | undefined {
  const real = realLocation(dest);
  const it = real === resolve(dest) ? "it" : `it (really ${real})`;
  const why = "and every checkpoint copy replaces the whole destination folder";
  const fix = "Point the checkpoint path at a folder of its own (new or empty), e.g. a subfolder.";
  if (real === parse(real).root) return `${it} is the file-system root, ${why}. ${fix}`;
  const folders = protectedFolders(outputDir);
  // Name the folder it is before one it merely contains (a checkout under /tmp: /tmp is the
  // temporary folder, and contains the working directory too).
  const same = folders.find(([, folder]) => real === folder);
  if (same) return `${it} is ${same[0]} (${same[1]}), ${why}. ${fix}`;
  const inside = folders.find(([, folder]) => containsOrEquals(real, folder));
  if (inside) return `${it} contains ${inside[0]} (${inside[1]}), ${why}. ${fix}`;
  let names: string[];
  try {
    if (!statSync(dest).isDirectory()) return `${it} is not a folder, ${why}. ${fix}`;
    names = readdirSync(dest);
  } catch {
    return undefined; // missing (or unreadable: the copy itself reports that)
  }
  if (names.length > 0 && !names.includes(PREFIX_MARKER))
    return `${it} is a non-empty folder that trainkit did not fill (it has no ${PREFIX_MARKER} file), ${why}. ${fix} If it only holds checkpoints an earlier trainkit copied, empty it or create an empty ${PREFIX_MARKER} file in it.`;
  return undefined;
}

/** Throws RefusedDestinationError when a replacing copy must not go to `dest` (`shown` in the message). */
export function assertReplaceable(
  dest: string,
  shown: string,
  options: { outputDir?: string } = {},
): void {
  const reason = refusalFor(dest, options);
  if (reason !== undefined)
    throw new RefusedDestinationError(`Refusing to copy a checkpoint to ${shown}: ${reason}`);
}

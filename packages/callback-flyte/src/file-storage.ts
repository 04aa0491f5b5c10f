/**
 * The `file://` backend (also used for plain local paths, e.g. a mounted volume). A replacing
 * put copies into a temporary sibling folder and renames it into place, so the destination is
 * at every moment either the previous checkpoint or the new one, never a mix or a partial copy
 * (for a killed process; no fsync, so not for a machine crash). An overlaying put writes each
 * file to a temporary name and renames it over the old one.
 */
import { copyFile, mkdir, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join, relative } from "node:path";
import { redactText } from "@trainkit/core/plugin";
import { PREFIX_MARKER, PREFIX_MARKER_TEXT, assertReplaceable } from "./guard.js";
import type { PutOptions, StorageAdapter } from "./storage.js";
import { localPathOf } from "./uri.js";

/** Temporary siblings: `.<name>.trainkit-tmp-*` (being written), `.<name>.trainkit-old-*` (moved aside). */
const TMP = "trainkit-tmp";
const OLD = "trainkit-old";

/** A name part no other process or call picks: pid, time and randomness. */
export function uniqueSuffix(): string {
  return `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
}

async function statOrUndefined(path: string) {
  try {
    return await stat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/**
 * `mkdir -p` whose error names the real cause: Node's recursive mkdir reports ENOENT where a
 * level cannot be created (a read-only file system, say), so the missing levels are then
 * created one by one and the failing one throws its own error (EROFS, EACCES, ...).
 */
async function makeDir(path: string): Promise<void> {
  try {
    await mkdir(path, { recursive: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    const missing: string[] = [];
    for (let level = path; !(await statOrUndefined(level)); level = dirname(level)) {
      missing.unshift(level);
      if (dirname(level) === level) break;
    }
    for (const level of missing) await mkdir(level);
  }
}

/** Every regular file under `dir`, as paths relative to it (symlinks are followed). */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (current: string): Promise<void> => {
    for (const entry of await readdir(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      const info = entry.isSymbolicLink() ? await stat(path) : entry;
      if (info.isDirectory()) await walk(path);
      else if (info.isFile()) out.push(relative(dir, path));
    }
  };
  await walk(dir);
  return out.sort();
}

/**
 * Copies the files under `from` into `to` (folders created as needed), except trainkit's
 * prefix marker at the top level when `withoutMarker`.
 */
export async function copyTree(
  from: string,
  to: string,
  { withoutMarker = false }: { withoutMarker?: boolean } = {},
): Promise<void> {
  await makeDir(to);
  for (const file of await listFiles(from)) {
    if (withoutMarker && file === PREFIX_MARKER) continue;
    await makeDir(dirname(join(to, file)));
    await copyFile(join(from, file), join(to, file));
  }
}

/**
 * The folder to read for `dest`: itself, or, if a crash struck between the two renames of a
 * replacing put, the previous copy it had moved aside.
 */
async function readableFolder(dest: string): Promise<string | undefined> {
  if (await statOrUndefined(dest)) return dest;
  const parent = dirname(dest);
  const prefix = `.${basename(dest)}.${OLD}-`;
  let names: string[];
  try {
    names = (await readdir(parent)).filter((name) => name.startsWith(prefix));
  } catch {
    return undefined;
  }
  let newest: { path: string; time: number } | undefined;
  for (const name of names) {
    const info = await statOrUndefined(join(parent, name));
    if (info && (!newest || info.mtimeMs > newest.time))
      newest = { path: join(parent, name), time: info.mtimeMs };
  }
  return newest?.path;
}

/**
 * Replaces `dest` with a copy of `localDir` plus the prefix marker. Refused (before anything
 * is copied or moved) for a destination that is or contains a folder the process depends on,
 * and for a non-empty folder without the marker: only a folder trainkit filled is replaced.
 */
async function replaceFolder(localDir: string, dest: string, uri: string): Promise<void> {
  assertReplaceable(dest, redactText(uri));
  const parent = dirname(dest);
  const name = basename(dest);
  await makeDir(parent);
  const temporary = join(parent, `.${name}.${TMP}-${uniqueSuffix()}`);
  try {
    await copyTree(localDir, temporary);
    await writeFile(join(temporary, PREFIX_MARKER), PREFIX_MARKER_TEXT);
  } catch (error) {
    await rm(temporary, { recursive: true, force: true }).catch(() => undefined);
    throw error;
  }
  if (!(await statOrUndefined(dest))) {
    await rename(temporary, dest);
    return;
  }
  const aside = join(parent, `.${name}.${OLD}-${uniqueSuffix()}`);
  await rename(dest, aside);
  try {
    await rename(temporary, dest);
  } catch (error) {
    await rename(aside, dest).catch(() => undefined);
    await rm(temporary, { recursive: true, force: true }).catch(() => undefined);
    throw error;
  }
  await rm(aside, { recursive: true, force: true });
}

async function overlayFolder(localDir: string, dest: string): Promise<void> {
  for (const file of await listFiles(localDir)) {
    const target = join(dest, file);
    await makeDir(dirname(target));
    const temporary = `${target}.${TMP}-${uniqueSuffix()}`;
    try {
      await copyFile(join(localDir, file), temporary);
      await rename(temporary, target);
    } catch (error) {
      await rm(temporary, { force: true }).catch(() => undefined);
      throw error;
    }
  }
}

/** The built-in adapter for `file://` URIs and local paths. */
export const fileStorage: StorageAdapter = {
  async put(localDir: string, uri: string, options: PutOptions): Promise<void> {
    const dest = localPathOf(uri);
    if (options.replace) await replaceFolder(localDir, dest, uri);
    else await overlayFolder(localDir, dest);
  },

  async get(uri: string, localDir: string): Promise<void> {
    const source = await readableFolder(localPathOf(uri));
    if (!source) throw new Error(`Nothing to restore: ${redactText(uri)} does not exist.`);
    await copyTree(source, localDir, { withoutMarker: true });
  },

  async exists(uri: string): Promise<boolean> {
    const source = await readableFolder(localPathOf(uri));
    if (!source) return false;
    const info = await stat(source);
    if (info.isFile()) return true;
    // A prefix that holds only the marker holds no checkpoint.
    return info.isDirectory() && (await readdir(source)).some((name) => name !== PREFIX_MARKER);
  },
};

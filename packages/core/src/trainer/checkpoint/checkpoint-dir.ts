import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
} from "node:fs";
import { join, resolve } from "node:path";

export const CHECKPOINT_PREFIX = "checkpoint-";
/** Every folder whose name starts with this is unfinished or being deleted: never a checkpoint. */
export const TEMPORARY_PREFIX = ".tmp-checkpoint-";
/** A complete checkpoint moved aside while a new save of the same step takes its name. */
const REPLACED_PREFIX = `${TEMPORARY_PREFIX}replaced-`;
/** A checkpoint moved aside by rotation, to be deleted. */
const DELETING_PREFIX = `${TEMPORARY_PREFIX}deleting-`;
const CHECKPOINT_NAME = /^checkpoint-(\d+)$/;
const REPLACED_NAME = /^\.tmp-checkpoint-replaced-(\d+)-/;

export interface CheckpointRef {
  step: number;
  path: string;
}

/** A name no other save in this or another process uses. */
function uniqueSuffix(step: number): string {
  return `${step}-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * Flushes a folder's files and the folder itself to the disk, so that after the rename the
 * checkpoint's contents survive a machine crash too, not only a killed process.
 */
function syncTree(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) syncTree(path);
    else if (entry.isFile()) syncPath(path, "r");
  }
  syncPath(dir, "r");
}

function syncPath(path: string, flags: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(path, flags);
    fsyncSync(fd);
  } catch (error) {
    // Some file systems (and Windows, for folders) cannot fsync: the rename still protects
    // against a killed process, which is what matters most.
    const code = (error as { code?: string }).code;
    if (code !== "EINVAL" && code !== "EPERM" && code !== "EISDIR" && code !== "ENOTSUP")
      throw error;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Writes a checkpoint into a temporary folder and renames it into place, so a crash at any
 * moment leaves either the previous state or a complete checkpoint, never a partial one
 * under a checkpoint's name.
 */
export async function writeCheckpointDir(
  outputDir: string,
  step: number,
  write: (dir: string) => Promise<void>,
): Promise<string> {
  mkdirSync(outputDir, { recursive: true });
  const final = join(outputDir, `${CHECKPOINT_PREFIX}${step}`);
  const temporary = join(outputDir, `${TEMPORARY_PREFIX}${uniqueSuffix(step)}`);
  mkdirSync(temporary);
  try {
    await write(temporary);
    syncTree(temporary);
  } catch (error) {
    rmSync(temporary, { recursive: true, force: true });
    throw error;
  }
  if (existsSync(final)) {
    // Same step saved again (e.g. after resuming): move the old one aside, put the new one in
    // place, then drop the old one. A crash between the two renames leaves the old one under
    // a name that `listCheckpoints` puts back.
    const old = join(outputDir, `${REPLACED_PREFIX}${uniqueSuffix(step)}`);
    renameSync(final, old);
    renameSync(temporary, final);
    rmSync(old, { recursive: true, force: true });
  } else {
    renameSync(temporary, final);
  }
  syncPath(outputDir, "r");
  return final;
}

/**
 * Puts back a complete checkpoint that a crash left moved aside while the same step was being
 * saved again (see writeCheckpointDir).
 */
function recoverReplaced(outputDir: string, names: string[]): boolean {
  let recovered = false;
  for (const name of names) {
    const match = REPLACED_NAME.exec(name);
    if (!match) continue;
    const final = join(outputDir, `${CHECKPOINT_PREFIX}${match[1]}`);
    if (existsSync(final)) continue;
    try {
      renameSync(join(outputDir, name), final);
      recovered = true;
    } catch {
      // Another process got there first, or the folder went away: nothing to recover.
    }
  }
  return recovered;
}

/** Complete checkpoints in `outputDir`, oldest step first. */
export function listCheckpoints(outputDir: string): CheckpointRef[] {
  if (!existsSync(outputDir)) return [];
  let names = readdirSync(outputDir);
  if (recoverReplaced(outputDir, names)) names = readdirSync(outputDir);
  return names
    .map((name) => ({ name, match: CHECKPOINT_NAME.exec(name) }))
    .filter(({ name, match }) => match && isDirectory(join(outputDir, name)))
    .map(({ name, match }) => ({ step: Number(match![1]), path: join(outputDir, name) }))
    .sort((a, b) => a.step - b.step);
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

export function latestCheckpoint(outputDir: string): CheckpointRef | undefined {
  return listCheckpoints(outputDir).at(-1);
}

/** Removes temporary folders left by a run that crashed while saving or rotating. */
export function removeTemporaryCheckpoints(outputDir: string): void {
  if (!existsSync(outputDir)) return;
  const names = readdirSync(outputDir);
  const recovered = recoverReplaced(outputDir, names);
  for (const name of recovered ? readdirSync(outputDir) : names)
    if (name.startsWith(TEMPORARY_PREFIX))
      rmSync(join(outputDir, name), { recursive: true, force: true });
}

/**
 * Deletes a checkpoint so that a crash midway cannot leave a partly deleted folder under a
 * checkpoint's name: it is renamed aside first.
 */
function deleteCheckpoint(outputDir: string, path: string, step: number): void {
  const aside = join(outputDir, `${DELETING_PREFIX}${uniqueSuffix(step)}`);
  renameSync(path, aside);
  rmSync(aside, { recursive: true, force: true });
}

/** Called when a checkpoint could not be deleted; without it, the error is thrown. */
export type DeleteErrorHandler = (path: string, error: unknown) => void;

/**
 * Deletes each of `checkpoints` (as deleteCheckpoint does). A checkpoint that cannot be
 * deleted (EBUSY, EPERM: a file held open, on Windows often) goes to `onError` and the others
 * are still deleted, as HF's rmtree(ignore_errors=True); it stays whole, or is left aside under
 * a temporary name that the next training removes.
 */
function deleteCheckpoints(
  outputDir: string,
  checkpoints: readonly CheckpointRef[],
  onError: DeleteErrorHandler | undefined,
): string[] {
  const deleted: string[] = [];
  for (const { path, step } of checkpoints) {
    try {
      deleteCheckpoint(outputDir, path, step);
      deleted.push(path);
    } catch (error) {
      if (!onError) throw error;
      onError(path, error);
    }
  }
  return deleted;
}

/**
 * HF's save_total_limit rotation: keeps the newest and the best checkpoint, and deletes the
 * oldest others until max(limit, protected) remain. Returns the deleted paths.
 */
export function rotateCheckpoints(
  outputDir: string,
  limit: number | null,
  best: string | null,
  onError?: DeleteErrorHandler,
): string[] {
  if (limit === null || limit <= 0) return [];
  const checkpoints = listCheckpoints(outputDir);
  if (checkpoints.length <= limit) return [];
  const newest = checkpoints.at(-1)!.path;
  const protectedPaths = new Set([
    newest,
    ...(best && checkpoints.some((c) => c.path === best) ? [best] : []),
  ]);
  const excess = Math.max(0, checkpoints.length - Math.max(limit, protectedPaths.size));
  const doomed = checkpoints.filter((c) => !protectedPaths.has(c.path)).slice(0, excess);
  return deleteCheckpoints(outputDir, doomed, onError);
}

/**
 * Deletes every checkpoint in `outputDir` but `keep` (HF's end of training with
 * save_total_limit 1: only the best remains), each crash-safely. Returns the deleted paths.
 */
export function deleteAllCheckpointsExcept(
  outputDir: string,
  keep: string,
  onError?: DeleteErrorHandler,
): string[] {
  const kept = resolve(keep);
  const doomed = listCheckpoints(outputDir).filter((c) => resolve(c.path) !== kept);
  return deleteCheckpoints(outputDir, doomed, onError);
}

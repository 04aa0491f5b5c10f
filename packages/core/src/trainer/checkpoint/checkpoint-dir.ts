import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";

export const CHECKPOINT_PREFIX = "checkpoint-";
const TEMPORARY_PREFIX = ".tmp-checkpoint-";
const CHECKPOINT_NAME = /^checkpoint-(\d+)$/;

export interface CheckpointRef {
  step: number;
  path: string;
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
  const temporary = join(outputDir, `${TEMPORARY_PREFIX}${step}-${process.pid}-${Date.now()}`);
  mkdirSync(temporary);
  try {
    await write(temporary);
  } catch (error) {
    rmSync(temporary, { recursive: true, force: true });
    throw error;
  }
  if (existsSync(final)) {
    // Same step saved again (e.g. after resuming): swap, then drop the old one.
    const old = `${temporary}-old`;
    renameSync(final, old);
    renameSync(temporary, final);
    rmSync(old, { recursive: true, force: true });
  } else {
    renameSync(temporary, final);
  }
  return final;
}

/** Complete checkpoints in `outputDir`, oldest step first. */
export function listCheckpoints(outputDir: string): CheckpointRef[] {
  if (!existsSync(outputDir)) return [];
  return readdirSync(outputDir)
    .map((name) => ({ name, match: CHECKPOINT_NAME.exec(name) }))
    .filter(({ name, match }) => match && statSync(join(outputDir, name)).isDirectory())
    .map(({ name, match }) => ({ step: Number(match![1]), path: join(outputDir, name) }))
    .sort((a, b) => a.step - b.step);
}

export function latestCheckpoint(outputDir: string): CheckpointRef | undefined {
  return listCheckpoints(outputDir).at(-1);
}

/** Removes temporary folders left by a run that crashed while saving. */
export function removeTemporaryCheckpoints(outputDir: string): void {
  if (!existsSync(outputDir)) return;
  for (const name of readdirSync(outputDir))
    if (name.startsWith(TEMPORARY_PREFIX))
      rmSync(join(outputDir, name), { recursive: true, force: true });
}

/**
 * HF's save_total_limit rotation: keeps the newest and the best checkpoint, and deletes the
 * oldest others until max(limit, protected) remain.
 */
export function rotateCheckpoints(
  outputDir: string,
  limit: number | null,
  best: string | null,
): string[] {
  if (limit === null || limit <= 0) return [];
  const checkpoints = listCheckpoints(outputDir);
  if (checkpoints.length <= limit) return [];
  const newest = checkpoints.at(-1)!.path;
  const protectedPaths = new Set([
    newest,
    ...(best && checkpoints.some((c) => c.path === best) ? [best] : []),
  ]);
  let excess = checkpoints.length - Math.max(limit, protectedPaths.size);
  const deleted: string[] = [];
  for (const { path } of checkpoints) {
    if (excess <= 0) break;
    if (protectedPaths.has(path)) continue;
    rmSync(path, { recursive: true, force: true });
    deleted.push(path);
    excess--;
  }
  return deleted;
}

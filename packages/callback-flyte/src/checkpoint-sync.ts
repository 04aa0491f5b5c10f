/**
 * Copies checkpoints to the task's checkpoint prefix in the background, one copy at a time.
 *
 * onSave takes a snapshot of `checkpoint-<step>` right away (hard links, so it costs no copy):
 * the Trainer may delete or replace that folder at the next save (saveTotalLimit rotation)
 * while the copy still runs, and its files are never changed in place, so the links keep the
 * saved bytes. Copies never overlap; when saves come faster than copies, only the newest
 * waiting snapshot is kept (each copy replaces the whole prefix, so an intermediate one would
 * be overwritten anyway). drain() waits until the newest snapshot is copied.
 *
 * Where hard links are not possible (the first failed link tells), onSave copies no bytes
 * either: the snapshot is then a plain copy, made in the background queue just before the
 * checkpoint is put.
 */
import { linkSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { copyTree, uniqueSuffix } from "./file-storage.js";
import type { StorageAdapter } from "./storage.js";

export interface Snapshot {
  step: number;
  dir: string;
  /** Set when `dir` is still to be filled, by a copy of this folder, in the background. */
  copyFrom?: string;
}

export interface SyncTotals {
  /** Checkpoints handed to the sync. */
  saved: number;
  /** Copied to the destination. */
  copied: number;
  /** Skipped because a newer one came while they waited. */
  superseded: number;
  failed: number;
  /** The step of the checkpoint the destination holds (from this sync), if any. */
  lastCopiedStep: number | undefined;
}

export interface CheckpointSyncOptions {
  storage: StorageAdapter;
  destination: string;
  /** Where snapshots are kept until copied (on the checkpoints' file system, for hard links). */
  stagingDir: string;
  /** A copy (or a snapshot) failed; training goes on. */
  onError: (error: unknown, step: number) => void;
}

/** A hard link could not be made: the snapshot must be a copy (made in the background). */
export class LinkFailedError extends Error {
  override readonly name = "LinkFailedError";
}

/** Hard-links every file of `from` into `to`; throws LinkFailedError where a link fails. */
export function linkTree(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    const info = entry.isSymbolicLink() ? statSync(source) : entry;
    if (info.isDirectory()) linkTree(source, target);
    else if (info.isFile()) {
      try {
        linkSync(source, target);
      } catch (error) {
        throw new LinkFailedError(`cannot hard-link ${source}: ${(error as Error).message}`, {
          cause: error,
        });
      }
    }
  }
}

export class CheckpointSync {
  readonly totals: SyncTotals = {
    saved: 0,
    copied: 0,
    superseded: 0,
    failed: 0,
    lastCopiedStep: undefined,
  };
  private pending: Snapshot | undefined;
  /** Whether the copy loop runs; set and cleared synchronously, so no snapshot is stranded. */
  private active = false;
  private running: Promise<void> = Promise.resolve();
  /** false after the first failed hard link: snapshots are then copied in the background. */
  private linksWork = true;

  constructor(private readonly options: CheckpointSyncOptions) {}

  get destination(): string {
    return this.options.destination;
  }

  /** Whether snapshots are hard links (false once a link has failed). */
  get linking(): boolean {
    return this.linksWork;
  }

  /**
   * Snapshots `checkpointDir` now (hard links) and queues its copy; returns at once. Once a
   * link has failed, the snapshot is a copy made in the background instead: no bytes are
   * copied here, inside the training step.
   */
  add(checkpointDir: string, step: number): void {
    this.totals.saved++;
    let snapshot: Snapshot;
    const dir = join(this.options.stagingDir, `snapshot-${step}-${uniqueSuffix()}`);
    try {
      if (!statSync(checkpointDir).isDirectory())
        throw new Error(`${checkpointDir} is not a folder`);
      if (this.linksWork) {
        try {
          linkTree(checkpointDir, dir);
          snapshot = { step, dir };
        } catch (error) {
          if (!(error instanceof LinkFailedError)) throw error;
          this.linksWork = false; // a file system without hard links: copy in the background
          rmSync(dir, { recursive: true, force: true });
          snapshot = { step, dir, copyFrom: checkpointDir };
        }
      } else snapshot = { step, dir, copyFrom: checkpointDir };
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      this.totals.failed++;
      this.report(error, step);
      return;
    }
    if (this.pending) {
      this.discard(this.pending);
      this.totals.superseded++;
    }
    this.pending = snapshot;
    if (!this.active) {
      this.active = true;
      this.running = this.copyPending();
    }
  }

  /** Resolves once every queued checkpoint has been copied (or has failed). Never rejects. */
  async drain(): Promise<void> {
    while (this.active) await this.running;
  }

  private async copyPending(): Promise<void> {
    await Promise.resolve(); // add() returns before the first copy starts
    try {
      for (let next = this.pending; next; next = this.pending) {
        this.pending = undefined;
        try {
          if (next.copyFrom !== undefined) await copyTree(next.copyFrom, next.dir);
          await this.options.storage.put(next.dir, this.options.destination, { replace: true });
          this.totals.copied++;
          this.totals.lastCopiedStep = next.step;
        } catch (error) {
          this.totals.failed++;
          this.report(error, next.step);
        } finally {
          this.discard(next);
        }
      }
    } finally {
      this.active = false;
    }
  }

  private report(error: unknown, step: number): void {
    try {
      this.options.onError(error, step);
    } catch {
      // the reporter must not stop the copies
    }
  }

  private discard(snapshot: Snapshot): void {
    try {
      rmSync(snapshot.dir, { recursive: true, force: true });
    } catch {
      // A leftover snapshot only costs links; the next training's cleanup removes it.
    }
  }
}

/** Removes snapshots a killed run left in `stagingDir`. */
export function removeStaleSnapshots(stagingDir: string): void {
  let names: string[];
  try {
    names = readdirSync(stagingDir);
  } catch {
    return;
  }
  for (const name of names)
    if (name.startsWith("snapshot-"))
      rmSync(join(stagingDir, name), { recursive: true, force: true });
}

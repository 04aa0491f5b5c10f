import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  TrainerCallback,
  redactText,
  type TrainerState,
  type TrainingArguments,
} from "@trainkit/core/plugin";
import { CheckpointSync, removeStaleSnapshots } from "./checkpoint-sync.js";
import { logHistoryJson, renderLogHistoryHtml } from "./deck.js";
import { fileStorage } from "./file-storage.js";
import { refusalFor } from "./guard.js";
import {
  FLYTE_ENV,
  envFlag,
  resolveLocations,
  type Located,
  type LocationOptions,
} from "./locations.js";
import { defaultLogger, type Logger } from "./logger.js";
import { storageFor, type StorageAdapter, type StorageAdapters } from "./storage.js";
import { localPathOf } from "./uri.js";

/** The deck's file names, in deckDir. */
export const DECK_FILES = { html: "log_history.html", json: "log_history.json" } as const;

export interface FlyteCallbackOptions extends LocationOptions {
  /** Write log_history.html and log_history.json at the end of training (default true; env TRAINKIT_FLYTE_SAVE_LOG_HISTORY). */
  saveLogHistory?: boolean;
  /** Copy each saved checkpoint to checkpointPath (default true; env TRAINKIT_FLYTE_SYNC_CHECKPOINTS). */
  syncCheckpoints?: boolean;
  /** Adapters for object stores, by scheme (`{ s3: adapter }`); file:// and local paths are built in. */
  storage?: StorageAdapters;
  /** Where notices and problems go (default: the console; the plugin passes the Trainer's). */
  logger?: Logger;
}

/** How long the end of training waits, at most, for the restore hint's check to finish. */
const HINT_WAIT_MS = 1000;

/** A location as messages show it: credentials in a URI masked. */
function shown(uri: string): string {
  return redactText(uri);
}

function messageOf(error: unknown): string {
  return redactText(error instanceof Error ? error.message : String(error)).replace(/\.+$/, "");
}

/** The previous prefix only feeds a hint here (restoreFlyteCheckpoint reads it): no adapter, no hint. */
function hintStorage(
  uri: string | undefined,
  adapters: StorageAdapters | undefined,
): StorageAdapter | undefined {
  if (uri === undefined) return undefined;
  try {
    return storageFor(uri, adapters);
  } catch {
    return undefined;
  }
}

/**
 * HF's FlyteCallback for a trainkit process running as a Flyte task: each saved checkpoint's
 * contents are copied to the task's checkpoint prefix (in the background, one copy at a time,
 * all finished by the end of training), and the log history is written as a self-contained
 * HTML deck plus a JSON copy. Problems with either are reported once; training goes on.
 */
export class FlyteCallback extends TrainerCallback {
  /** This attempt's checkpoint prefix, or undefined when checkpoints are not copied. */
  readonly checkpointPath: string | undefined;
  /** The previous attempt's prefix, if any (see restoreFlyteCheckpoint). */
  readonly prevCheckpoint: string | undefined;
  /** Where the deck goes; undefined: the Trainer's outputDir. */
  readonly deckDir: string | undefined;
  readonly saveLogHistory: boolean;
  readonly syncCheckpoints: boolean;

  private readonly logger: Logger;
  private readonly locations: { checkpointPath: Located; deckDir: Located };
  private readonly checkpointStorage: StorageAdapter | undefined;
  private readonly deckStorage: StorageAdapter;
  private readonly prevStorage: StorageAdapter | undefined;
  private sync: CheckpointSync | undefined;
  /** The checkpoint path was refused (see guard.ts): nothing is copied. */
  private refused = false;
  /** The restore hint's check, started at train begin and not awaited there. */
  private hint: Promise<void> | undefined;
  private readonly reported = new Set<string>();
  private announced = false;

  constructor(options: FlyteCallbackOptions = {}) {
    super();
    const env = options.env ?? process.env;
    this.logger = options.logger ?? defaultLogger;
    const locations = resolveLocations({ ...options, env });
    this.locations = locations;
    this.saveLogHistory = options.saveLogHistory ?? envFlag(env[FLYTE_ENV.saveLogHistory]) ?? true;
    this.syncCheckpoints =
      options.syncCheckpoints ?? envFlag(env[FLYTE_ENV.syncCheckpoints]) ?? true;
    this.prevCheckpoint = locations.prevCheckpoint.value;
    this.deckDir = locations.deckDir.value;
    // Every location is checked here, before any work: a scheme without an adapter throws.
    const checkpointPath = locations.checkpointPath.value;
    this.checkpointPath = this.syncCheckpoints ? checkpointPath : undefined;
    this.checkpointStorage =
      this.checkpointPath === undefined
        ? undefined
        : storageFor(this.checkpointPath, options.storage);
    this.deckStorage =
      this.deckDir === undefined ? fileStorage : storageFor(this.deckDir, options.storage);
    this.prevStorage = hintStorage(this.prevCheckpoint, options.storage);
  }

  override onTrainBegin(args: TrainingArguments, state: TrainerState): void {
    if (!state.isWorldProcessZero) return;
    this.ensureSync(args, true); // first: a refused checkpoint path is reported here
    if (!this.announced) {
      this.announced = true;
      this.logger.info(this.describe(args));
    }
    // A retried attempt that does not resume is almost always a forgotten restore. Only a
    // hint: training does not wait for the check (a slow object store must not delay it).
    if (this.prevStorage && this.prevCheckpoint !== undefined && state.globalStep === 0)
      this.hint = this.hintRestore(this.prevStorage, this.prevCheckpoint);
  }

  override onSave(args: TrainingArguments, state: TrainerState): void {
    if (!state.isWorldProcessZero || !this.checkpointStorage) return;
    const step = state.globalStep;
    this.ensureSync(args, false)?.add(join(args.outputDir, `checkpoint-${step}`), step);
  }

  override async onTrainEnd(args: TrainingArguments, state: TrainerState): Promise<void> {
    await this.settleHint();
    await this.finishCopies();
    if (this.saveLogHistory && state.isWorldProcessZero) await this.writeDeck(args, state);
  }

  /** A failed training still hands its last checkpoint to the next attempt. */
  override async onException(): Promise<void> {
    await this.finishCopies();
  }

  /** Waits for the checkpoint copies in flight (also called at the end of training). */
  async flush(): Promise<void> {
    await this.sync?.drain();
  }

  private ensureSync(args: TrainingArguments, cleanStale: boolean): CheckpointSync | undefined {
    if (!this.checkpointStorage || this.checkpointPath === undefined || this.refused)
      return undefined;
    // Snapshots live next to the checkpoints, so that they can be hard links.
    const stagingDir = join(args.outputDir, ".trainkit", "flyte");
    if (!this.sync) {
      // Every copy replaces the whole prefix: a local one that holds anything else is refused
      // before any copy (the built-in file:// storage checks again on each put).
      if (this.checkpointStorage === fileStorage) {
        const reason = refusalFor(localPathOf(this.checkpointPath), {
          outputDir: args.outputDir,
        });
        if (reason !== undefined) {
          this.refused = true;
          this.reportOnce(
            "checkpoint-refused",
            `Flyte: refusing to copy checkpoints to ${shown(this.checkpointPath)}: ${reason} No checkpoint is copied; training goes on.`,
          );
          return undefined;
        }
      }
      if (cleanStale) removeStaleSnapshots(stagingDir);
      this.sync = new CheckpointSync({
        storage: this.checkpointStorage,
        destination: this.checkpointPath,
        stagingDir,
        onError: (error, step) =>
          this.reportOnce(
            "checkpoint",
            `Flyte: could not copy checkpoint-${step} to ${shown(this.checkpointPath!)}: ${messageOf(error)}. Training goes on; later checkpoints are still copied, and further failures are not reported (a summary follows at the end of training).`,
          ),
      });
    }
    return this.sync;
  }

  /** Gives the restore hint's check (running since train begin) a last, short chance. */
  private async settleHint(): Promise<void> {
    const hint = this.hint;
    if (!hint) return;
    this.hint = undefined;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, HINT_WAIT_MS);
      timer.unref();
    });
    await Promise.race([hint, timeout]);
    clearTimeout(timer);
  }

  private async finishCopies(): Promise<void> {
    const sync = this.sync;
    if (!sync) return;
    await sync.drain();
    const { failed, lastCopiedStep } = sync.totals;
    if (failed > 0 && !this.reported.has("checkpoint-summary")) {
      this.reported.add("checkpoint-summary");
      const holds =
        lastCopiedStep === undefined
          ? "no checkpoint from this training"
          : `checkpoint-${lastCopiedStep}`;
      this.logger.info(
        `Flyte: ${failed} checkpoint ${failed === 1 ? "copy" : "copies"} to ${shown(sync.destination)} failed; it holds ${holds}.`,
      );
    }
  }

  private async writeDeck(args: TrainingArguments, state: TrainerState): Promise<void> {
    const destination = this.deckDir ?? args.outputDir;
    const stage = mkdtempSync(join(tmpdir(), "trainkit-flyte-deck-"));
    try {
      const logHistory = state.logHistory as Record<string, unknown>[];
      writeFileSync(join(stage, DECK_FILES.html), renderLogHistoryHtml(logHistory));
      writeFileSync(join(stage, DECK_FILES.json), logHistoryJson(state));
      await this.deckStorage.put(stage, destination, { replace: false });
      this.logger.info(
        `Flyte: log history (${logHistory.length} entries) written to ${shown(destination)}: ${DECK_FILES.html}, ${DECK_FILES.json}.`,
      );
    } catch (error) {
      this.reportOnce(
        "deck",
        `Flyte: could not write the log history deck to ${shown(destination)}: ${messageOf(error)}. Training is not affected.`,
      );
    } finally {
      rmSync(stage, { recursive: true, force: true });
    }
  }

  private async hintRestore(storage: StorageAdapter, previous: string): Promise<void> {
    // Only a hint, not awaited: a failing check (or logger) says nothing and rejects nothing
    // (restoreFlyteCheckpoint reports real problems).
    try {
      if (await storage.exists(previous))
        this.reportOnce(
          "restore",
          `Flyte: the previous attempt left a checkpoint at ${shown(previous)}, but training starts from step 0. To resume, pass it on: trainer.train({ resumeFromCheckpoint: await restoreFlyteCheckpoint() }).`,
        );
    } catch {
      // no hint
    }
  }

  private describe(args: TrainingArguments): string {
    const { checkpointPath, deckDir } = this.locations;
    const checkpoints =
      this.checkpointPath !== undefined
        ? this.refused
          ? `checkpoints are not copied (the checkpoint path ${shown(this.checkpointPath)} is refused: see the warning)`
          : `checkpoints are copied to ${shown(this.checkpointPath)} (from ${checkpointPath.from})`
        : !this.syncCheckpoints
          ? "checkpoints are not copied (syncCheckpoints is off)"
          : `checkpoints are not copied (no checkpoint path: pass --checkpoint-path {{.checkpointOutputPrefix}} or set ${FLYTE_ENV.checkpointPath})`;
    const deck = this.saveLogHistory
      ? `the log history goes to ${shown(this.deckDir ?? args.outputDir)} (${deckDir.source === "default" ? "outputDir" : `from ${deckDir.from}`})`
      : "no log history deck (saveLogHistory is off)";
    return `Flyte: ${checkpoints}; ${deck}.`;
  }

  private reportOnce(kind: string, message: string): void {
    if (this.reported.has(kind)) return;
    this.reported.add(kind);
    this.logger.warn(message);
  }
}

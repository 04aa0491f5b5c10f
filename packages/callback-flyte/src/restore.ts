/**
 * Restoring a retried task: the previous attempt's checkpoint downloaded into a local folder,
 * for `trainer.train({ resumeFromCheckpoint })` (HF's contract: the user passes the restored
 * folder, or nothing on the first attempt).
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parsePythonJson, redactText } from "@trainkit/core/plugin";
import { fileStorage } from "./file-storage.js";
import { refusalFor } from "./guard.js";
import { defaultLogger, type Logger } from "./logger.js";
import { resolveLocations, type LocationOptions } from "./locations.js";
import { storageFor, type StorageAdapters } from "./storage.js";
import { localPathOf } from "./uri.js";

export interface RestoreOptions extends LocationOptions {
  /** Adapters for object stores, by scheme (`{ s3: adapter }`); file:// is built in. */
  storage?: StorageAdapters;
  /**
   * The folder to download into (created if missing; must be empty). Default: a new folder
   * `<os tmpdir>/trainkit-flyte-restore-XXXXXX/checkpoint-<step>`, removed when the process exits.
   */
  localDir?: string;
  /**
   * Also copy the restored checkpoint to this attempt's checkpointPath at once (default true),
   * so that an attempt that fails again before its first save still hands the checkpoint on
   * to the next one (Flyte gives each attempt only the previous attempt's prefix).
   */
  carryForward?: boolean;
  /** Where progress and problems are reported (default: core's logger, the console). */
  logger?: Logger;
}

/** Removes a folder when the process exits (flytekit's restore folder is a TemporaryDirectory too). */
function removeAtExit(dir: string): void {
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
}

/** global_step of the checkpoint in `dir`, from its trainer_state.json. */
function globalStepOf(dir: string, source: string): number {
  const file = join(dir, "trainer_state.json");
  if (!existsSync(file))
    throw new Error(
      `The previous checkpoint ${redactText(source)} holds no trainer_state.json: it is not a trainkit checkpoint (expected the contents of a checkpoint-<step> folder at the prefix root).`,
    );
  const state = parsePythonJson(readFileSync(file, "utf8")) as { global_step?: unknown } | null;
  const step = state?.global_step;
  if (typeof step !== "number" || !Number.isInteger(step) || step < 0)
    throw new Error(
      `${redactText(source)}/trainer_state.json has no valid global_step: the file is damaged.`,
    );
  return step;
}

/**
 * Downloads the previous attempt's checkpoint (`--prev-checkpoint`, the option, or
 * TRAINKIT_FLYTE_PREV_CHECKPOINT) into a local folder and returns its path, or undefined when
 * there is none: the first attempt (`""`), or a previous attempt that saved nothing. Throws,
 * before downloading, for a location without a storage adapter, and after, for a download
 * that fails or is not a checkpoint.
 */
export async function restoreFlyteCheckpoint(
  options: RestoreOptions = {},
): Promise<string | undefined> {
  const logger = options.logger ?? defaultLogger;
  const locations = resolveLocations(options);
  const previous = locations.prevCheckpoint.value;
  if (previous === undefined) {
    logger.info("Flyte: no previous checkpoint (first attempt); training starts from scratch.");
    return undefined;
  }
  const storage = storageFor(previous, options.storage);
  const carryTo = options.carryForward === false ? undefined : locations.checkpointPath.value;
  const carryStorage =
    carryTo !== undefined && carryTo !== previous
      ? storageFor(carryTo, options.storage)
      : undefined;

  if (!(await storage.exists(previous))) {
    logger.info(
      `Flyte: the previous attempt left no checkpoint at ${redactText(previous)}; training starts from scratch.`,
    );
    return undefined;
  }

  let target: string;
  let downloadDir: string;
  let temporaryRoot: string | undefined;
  if (options.localDir !== undefined) {
    target = downloadDir = resolve(options.localDir);
    if (existsSync(target) && readdirSync(target).length > 0)
      throw new Error(`restoreFlyteCheckpoint: localDir ${target} is not empty.`);
  } else {
    temporaryRoot = mkdtempSync(join(tmpdir(), "trainkit-flyte-restore-"));
    removeAtExit(temporaryRoot);
    downloadDir = join(temporaryRoot, "download");
    target = downloadDir;
  }
  try {
    await storage.get(previous, downloadDir);
    const step = globalStepOf(downloadDir, previous);
    if (temporaryRoot !== undefined) {
      target = join(temporaryRoot, `checkpoint-${step}`);
      renameSync(downloadDir, target);
    }
    logger.info(
      `Flyte: restored the checkpoint of step ${step} from ${redactText(previous)} into ${target}.`,
    );
  } catch (error) {
    if (temporaryRoot !== undefined) rmSync(temporaryRoot, { recursive: true, force: true });
    throw error;
  }

  if (carryStorage && carryTo !== undefined) {
    // The carry-forward replaces the whole prefix, as a checkpoint copy does: the same rules.
    const refused = carryStorage === fileStorage ? refusalFor(localPathOf(carryTo)) : undefined;
    if (refused !== undefined)
      logger.warn(
        `Flyte: refusing to copy the restored checkpoint on to ${redactText(carryTo)}: ${refused} Nothing is copied there; training goes on.`,
      );
    else
      try {
        await carryStorage.put(target, carryTo, { replace: true });
      } catch (error) {
        logger.warn(
          `Flyte: could not copy the restored checkpoint on to ${redactText(carryTo)} (${redactText((error as Error).message)}); training goes on, but if this attempt fails before its first save the next one starts from scratch.`,
        );
      }
  }
  return target;
}

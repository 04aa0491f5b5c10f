// Every checkpoint copy replaces the whole destination folder, so a destination that holds
// anything else is refused before any copy: one that is (or contains) the working directory,
// outputDir, the home folder, the temporary folder or the root, and a non-empty folder that
// trainkit did not fill (no marker). Training goes on; the refusal is reported once.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import * as tf from "@tensorflow/tfjs";
import { setLogger } from "@trainkit/core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "vitest";
import {
  PREFIX_MARKER,
  RefusedDestinationError,
  createFlytePlugin,
  fileStorage,
  refusalFor,
  restoreFlyteCheckpoint,
} from "../src/index.js";
import { captureLogger, makeTrainer, readPrefix, readTree } from "./helpers.js";

const work = mkdtempSync(join(tmpdir(), "trainkit-flyte-guard-"));
let log: ReturnType<typeof captureLogger>;

beforeAll(async () => {
  await tf.setBackend("cpu");
});
beforeEach(() => {
  log = captureLogger();
  setLogger(log.logger);
});
afterEach(() => setLogger());
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Trains 4 steps saving every 2 with `checkpointPath`; returns the Trainer's outputDir. */
async function trainWith(checkpointPath: string, outputDir: string): Promise<void> {
  const trainer = makeTrainer(
    createFlytePlugin({ checkpointPath, saveLogHistory: false, argv: [], env: {} }),
    { outputDir, maxSteps: 4, saveStrategy: "steps", saveSteps: 2 },
  );
  await trainer.train();
  expect(trainer.state.globalStep).toBe(4);
}

const refusals = () => log.warnings.filter((m) => m.startsWith("Flyte: refusing to copy"));

describe("a Trainer run whose checkpoint path is refused", () => {
  test("outputDir itself: refused once, outputDir untouched, training completes", async () => {
    const outputDir = join(work, "same-as-output");
    mkdirSync(outputDir, { recursive: true });
    writeFileSync(join(outputDir, "notes.txt"), "mine");
    await trainWith(outputDir, outputDir);
    expect(refusals()).toHaveLength(1);
    expect(log.warnings).toHaveLength(1);
    expect(log.warnings[0]).toContain(
      `refusing to copy checkpoints to ${outputDir}: it is outputDir`,
    );
    expect(log.warnings[0]).toContain("No checkpoint is copied; training goes on.");
    expect(log.infos).toContainEqual(
      expect.stringContaining(
        `Flyte: checkpoints are not copied (the checkpoint path ${outputDir} is refused: see the warning)`,
      ),
    );
    expect(readFileSync(join(outputDir, "notes.txt"), "utf8")).toBe("mine");
    expect(existsSync(join(outputDir, "checkpoint-2"))).toBe(true);
    expect(existsSync(join(outputDir, "checkpoint-4"))).toBe(true);
    expect(existsSync(join(outputDir, PREFIX_MARKER))).toBe(false);
    // No failure summary: nothing was tried.
    expect(log.infos.filter((m) => m.includes("failed"))).toEqual([]);
  });

  test("a parent of outputDir (as a file:// URI): refused, it contains outputDir", async () => {
    const parent = join(work, "parent");
    const outputDir = join(parent, "out");
    await trainWith(pathToFileURL(parent).href, outputDir);
    expect(refusals()).toHaveLength(1);
    expect(refusals()[0]).toContain(`it contains outputDir (${outputDir})`);
    expect(existsSync(join(outputDir, "checkpoint-4"))).toBe(true);
  });

  test('"." (the working directory): refused once, nothing deleted', async () => {
    const sandbox = join(work, "cwd");
    mkdirSync(sandbox, { recursive: true });
    writeFileSync(join(sandbox, "train.js"), "// the user's script");
    const before = process.cwd();
    process.chdir(sandbox);
    try {
      await trainWith(".", join(work, "cwd-out"));
    } finally {
      process.chdir(before);
    }
    expect(refusals()).toHaveLength(1);
    expect(refusals()[0]).toContain("it is the working directory");
    expect(readFileSync(join(sandbox, "train.js"), "utf8")).toBe("// the user's script");
    expect(existsSync(join(sandbox, PREFIX_MARKER))).toBe(false);
  });

  test("a non-empty folder trainkit did not fill: refused once with what to do, kept", async () => {
    const foreign = join(work, "datasets");
    mkdirSync(join(foreign, "train"), { recursive: true });
    writeFileSync(join(foreign, "train", "part-0.csv"), "x,y\n1,2\n");
    await trainWith(foreign, join(work, "foreign-out"));
    expect(log.warnings).toHaveLength(1);
    expect(log.warnings[0]).toContain(
      `refusing to copy checkpoints to ${foreign}: it is a non-empty folder that trainkit did not fill (it has no ${PREFIX_MARKER} file)`,
    );
    expect(log.warnings[0]).toContain("Point the checkpoint path at a folder of its own");
    expect([...readTree(foreign).keys()]).toEqual(["train/part-0.csv"]);
    expect(existsSync(join(work, "foreign-out", "checkpoint-4"))).toBe(true);
  });

  test("a new folder, then a folder trainkit filled: copied, with the marker", async () => {
    const prefix = join(work, "fresh", "_flytecheckpoints");
    await trainWith(prefix, join(work, "fresh-out"));
    expect(log.warnings).toEqual([]);
    const copied = readPrefix(prefix); // throws without the marker
    expect([...copied.keys()]).toEqual([
      ...readTree(join(work, "fresh-out", "checkpoint-4")).keys(),
    ]);
    // The next training replaces it: it holds the marker.
    await trainWith(prefix, join(work, "fresh-out-2"));
    expect(log.warnings).toEqual([]);
    expect(readPrefix(prefix).size).toBe(copied.size);
  });

  test("an empty folder is taken (and marked)", async () => {
    const empty = join(work, "empty");
    mkdirSync(empty);
    await trainWith(empty, join(work, "empty-out"));
    expect(log.warnings).toEqual([]);
    expect(existsSync(join(empty, PREFIX_MARKER))).toBe(true);
    expect(existsSync(join(empty, "trainer_state.json"))).toBe(true);
  });
});

describe("refusalFor and the file:// backend", () => {
  test("the root, the home folder, the temporary folder and their parents are refused", () => {
    expect(refusalFor("/")).toMatch(/^it is the file-system root/);
    expect(refusalFor(homedir())).toMatch(/^it is the home folder/);
    expect(refusalFor(tmpdir())).toMatch(/^it is the temporary folder/);
    expect(refusalFor(process.cwd())).toMatch(/^it is the working directory/);
    expect(refusalFor(join(work, "not-yet", "deeper"))).toBeUndefined();
  });

  test("through a symbolic link, the real folder counts", async () => {
    const { symlinkSync } = await import("node:fs");
    const outputDir = join(work, "linked-out");
    mkdirSync(outputDir, { recursive: true });
    symlinkSync(outputDir, join(work, "alias"));
    expect(refusalFor(join(work, "alias"), { outputDir })).toContain(
      `it (really ${outputDir}) is outputDir`,
    );
  });

  test("a replacing put checks on its own: nothing is copied or moved", async () => {
    const stage = join(work, "stage");
    mkdirSync(stage);
    writeFileSync(join(stage, "trainer_state.json"), "{}");
    const foreign = join(work, "foreign-put");
    mkdirSync(foreign);
    writeFileSync(join(foreign, "keep.txt"), "keep");
    await expect(fileStorage.put(stage, foreign, { replace: true })).rejects.toThrow(
      RefusedDestinationError,
    );
    await expect(fileStorage.put(stage, tmpdir(), { replace: true })).rejects.toThrow(
      /Refusing to copy a checkpoint to .*: it is the temporary folder/,
    );
    expect([...readTree(foreign).keys()]).toEqual(["keep.txt"]);
    // A credential in a URI is not repeated in the message.
    for (const uri of [
      "file://user:hunter2@localhost/",
      `${pathToFileURL(foreign).href}?token=hunter2`,
    ]) {
      const error = await fileStorage.put(stage, uri, { replace: true }).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(error).toBeInstanceOf(Error);
      expect(error!.message).not.toContain("hunter2");
    }
  });

  test("a prefix holding only the marker holds no checkpoint", async () => {
    const onlyMarker = join(work, "only-marker");
    mkdirSync(onlyMarker);
    writeFileSync(join(onlyMarker, PREFIX_MARKER), "");
    expect(await fileStorage.exists(onlyMarker)).toBe(false);
  });
});

describe("restore's carry-forward follows the same rules", () => {
  let previous: string;
  beforeAll(async () => {
    previous = join(work, "restore-prev", "_flytecheckpoints");
    setLogger(captureLogger().logger);
    await trainWith(previous, join(work, "restore-prev-out"));
    setLogger();
  });

  test("a non-empty foreign folder: refused once, kept; the checkpoint is still restored", async () => {
    const foreign = join(work, "restore-foreign");
    mkdirSync(foreign);
    writeFileSync(join(foreign, "keep.txt"), "keep");
    const restored = await restoreFlyteCheckpoint({
      checkpointPath: foreign,
      prevCheckpoint: previous,
      argv: [],
      env: {},
      logger: log.logger,
    });
    expect(restored).toMatch(/checkpoint-4$/);
    expect(log.warnings).toHaveLength(1);
    expect(log.warnings[0]).toContain(
      `Flyte: refusing to copy the restored checkpoint on to ${foreign}: it is a non-empty folder that trainkit did not fill`,
    );
    expect([...readTree(foreign).keys()]).toEqual(["keep.txt"]);
    rmSync(dirname(restored!), { recursive: true, force: true });
  });

  test('"." (the working directory): refused, nothing deleted', async () => {
    const sandbox = join(work, "restore-cwd");
    mkdirSync(sandbox);
    writeFileSync(join(sandbox, "train.js"), "// script");
    const before = process.cwd();
    process.chdir(sandbox);
    let restored: string | undefined;
    try {
      restored = await restoreFlyteCheckpoint({
        checkpointPath: ".",
        prevCheckpoint: previous,
        argv: [],
        env: {},
        logger: log.logger,
      });
    } finally {
      process.chdir(before);
    }
    expect(restored).toMatch(/checkpoint-4$/);
    expect(log.warnings).toHaveLength(1);
    expect(log.warnings[0]).toContain("it is the working directory");
    expect([...readTree(sandbox).keys()]).toEqual(["train.js"]);
    rmSync(dirname(restored!), { recursive: true, force: true });
  });
});

// Destinations that fail for real: a read-only bind mount, a full tmpfs (or, without root, a
// path under a regular file). Training runs to the end and each problem is reported once.
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { setLogger } from "@trainkit/core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { DECK_FILES, createFlytePlugin } from "../src/index.js";
import {
  captureLogger,
  makeTrainer,
  readOnlyFolder,
  readPrefix,
  readTree,
  tinyTmpfs,
  type Unwritable,
} from "./helpers.js";

const work = mkdtempSync(join(tmpdir(), "trainkit-flyte-failures-"));
const mounts: Unwritable[] = [];
let log: ReturnType<typeof captureLogger>;

beforeAll(async () => {
  await tf.setBackend("cpu");
});
beforeEach(() => {
  log = captureLogger();
  setLogger(log.logger);
});
afterEach(() => setLogger());
afterAll(() => {
  for (const mount of mounts.reverse()) mount.cleanup();
  rmSync(work, { recursive: true, force: true });
});

const training = {
  maxSteps: 8,
  loggingSteps: 1,
  saveStrategy: "steps" as const,
  saveSteps: 2,
};

describe("an unwritable checkpoint destination", () => {
  test.each([
    ["read-only bind mount (or ENOTDIR without root)", () => readOnlyFolder(join(work, "ro-case"))],
    [
      "a path under a regular file (ENOTDIR)",
      () => readOnlyFolder(join(work, "enotdir-case"), { forceFallback: true }),
    ],
  ])("%s: training finishes, the problem is reported once", async (_name, make) => {
    const unwritable = make();
    mounts.push(unwritable);
    const outputDir = mkdtempSync(join(work, "out-"));
    const destination = join(unwritable.path, "_flytecheckpoints");
    const trainer = makeTrainer(
      createFlytePlugin({ checkpointPath: destination, argv: [], env: {} }),
      { outputDir, ...training },
    );
    const result = await trainer.train();
    expect(result.globalStep).toBe(8);
    expect(log.warnings).toHaveLength(1);
    const code = unwritable.kind === "read-only bind mount" ? "EROFS" : "ENOTDIR";
    expect(log.warnings[0]).toMatch(
      new RegExp(
        `^Flyte: could not copy checkpoint-2 to ${destination}: ${code}\\b.*Training goes on`,
      ),
    );
    // Saves that came while a copy ran were skipped for the newer one, so the count varies.
    expect(log.infos).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^Flyte: \\d checkpoint cop(y|ies) to ${destination} failed; it holds no checkpoint from this training\\.$`,
        ),
      ),
    );
    // Everything else worked: all checkpoints saved locally, the deck written.
    expect(
      readdirSync(outputDir)
        .filter((n) => n.startsWith("checkpoint-"))
        .sort(),
    ).toEqual(["checkpoint-2", "checkpoint-4", "checkpoint-6", "checkpoint-8"]);
    expect(existsSync(join(outputDir, DECK_FILES.html))).toBe(true);
  });
});

describe("a full disk", () => {
  test("a tiny tmpfs: the destination keeps a whole checkpoint, no partial copy is left", async () => {
    // 9 files of at least one 4 KiB page each: one checkpoint fits in 48 KiB, a second copy
    // next to it (the replace writes the new one before dropping the old) does not.
    const tmpfs = tinyTmpfs(join(work, "full"), 48);
    mounts.push(tmpfs);
    const outputDir = mkdtempSync(join(work, "out-"));
    const destination = join(tmpfs.path, "_flytecheckpoints");
    const trainer = makeTrainer(
      createFlytePlugin({ checkpointPath: destination, argv: [], env: {} }),
      { outputDir, ...training },
    );
    const result = await trainer.train();
    expect(result.globalStep).toBe(8);
    expect(log.warnings).toHaveLength(1);
    if (tmpfs.kind !== "full tmpfs") {
      expect(log.warnings[0]).toContain("ENOTDIR");
      return;
    }
    // The copy of checkpoint-2 starts at once and fits; any later one does not.
    expect(log.warnings[0]).toMatch(
      /^Flyte: could not copy checkpoint-[468] to \S+: ENOSPC: no space left on device.*Training goes on/,
    );
    expect(log.infos).toContainEqual(
      expect.stringMatching(
        /^Flyte: \d checkpoint cop(y|ies) to \S+ failed; it holds checkpoint-2\.$/,
      ),
    );
    // The destination is exactly checkpoint-2; the failed copies left nothing behind.
    const copied = readPrefix(destination);
    const saved = readTree(join(outputDir, "checkpoint-2"));
    expect([...copied.keys()]).toEqual([...saved.keys()]);
    for (const [file, bytes] of saved) expect(copied.get(file)!.equals(bytes), file).toBe(true);
    expect(readdirSync(tmpfs.path)).toEqual(["_flytecheckpoints"]);
  });
});

describe("an unwritable deck folder", () => {
  test("the checkpoints are still copied; the deck problem is reported once", async () => {
    const unwritable = readOnlyFolder(join(work, "deck-ro"));
    mounts.push(unwritable);
    const outputDir = mkdtempSync(join(work, "out-"));
    const destination = join(work, "deck-case-ckpt");
    const trainer = makeTrainer(
      createFlytePlugin({
        checkpointPath: destination,
        deckDir: join(unwritable.path, "raw"),
        argv: [],
        env: {},
      }),
      { outputDir, ...training },
    );
    await trainer.train();
    await trainer.train(); // a second training: the problem is not reported again
    expect(log.warnings).toHaveLength(1);
    expect(log.warnings[0]).toMatch(
      /^Flyte: could not write the log history deck to \S+\/raw: (EROFS|ENOTDIR)\b.*Training is not affected\.$/,
    );
    expect(existsSync(join(destination, "trainer_state.json"))).toBe(true);
  });
});

// restoreFlyteCheckpoint: what a retried attempt gets, and the file:// backend's contract.
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import * as tf from "@tensorflow/tfjs";
import { setLogger } from "@trainkit/core";
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import {
  createFlytePlugin,
  fileStorage,
  restoreFlyteCheckpoint,
  storageFor,
  type StorageAdapter,
} from "../src/index.js";
import { localPathOf } from "../src/uri.js";
import { PREFIX_MARKER, captureLogger, makeTrainer, readPrefix, readTree } from "./helpers.js";

const work = mkdtempSync(join(tmpdir(), "trainkit-flyte-restore-test-"));
let log: ReturnType<typeof captureLogger>;
/** A prefix holding a real checkpoint of step 4 (from a short training). */
let previous: string;

beforeAll(async () => {
  await tf.setBackend("cpu");
  setLogger({ info: () => {}, warn: () => {} });
  previous = pathToFileURL(join(work, "attempt-0", "_flytecheckpoints")).href;
  await makeTrainer(
    createFlytePlugin({ checkpointPath: previous, saveLogHistory: false, argv: [], env: {} }),
    {
      outputDir: join(work, "attempt-0-local"),
      maxSteps: 4,
      saveStrategy: "steps",
      saveSteps: 2,
    },
  ).train();
  setLogger();
});
beforeEach(() => {
  log = captureLogger();
});
/** The temporary folders restores made here (the process-exit cleanup may not run in a test worker). */
const restoredRoots: string[] = [];
afterAll(() => {
  for (const root of [work, ...restoredRoots]) rmSync(root, { recursive: true, force: true });
});

describe("restoreFlyteCheckpoint", () => {
  test.each([
    ['--prev-checkpoint ""', { argv: ["--prev-checkpoint", '""'], env: {} }],
    ["--prev-checkpoint with nothing after it", { argv: ["--prev-checkpoint"], env: {} }],
    ["an empty option", { prevCheckpoint: "", env: { TRAINKIT_FLYTE_PREV_CHECKPOINT: previous } }],
    [
      'TRAINKIT_FLYTE_PREV_CHECKPOINT=""',
      { argv: [], env: { TRAINKIT_FLYTE_PREV_CHECKPOINT: '""' } },
    ],
    ["nothing at all", { argv: [], env: {} }],
  ])("first attempt (%s): undefined, nothing downloaded", async (_name, options) => {
    expect(await restoreFlyteCheckpoint({ ...options, logger: log.logger })).toBeUndefined();
    expect(log.infos).toEqual([
      "Flyte: no previous checkpoint (first attempt); training starts from scratch.",
    ]);
  });

  test("a previous attempt that saved nothing: undefined", async () => {
    const empty = join(work, "empty-prefix");
    mkdirSync(empty);
    for (const prev of [empty, pathToFileURL(join(work, "missing")).href])
      expect(
        await restoreFlyteCheckpoint({
          prevCheckpoint: prev,
          argv: [],
          env: {},
          logger: log.logger,
        }),
      ).toBeUndefined();
    expect(log.infos[1]).toMatch(
      /^Flyte: the previous attempt left no checkpoint at file:\S+\/missing; training starts from scratch\.$/,
    );
  });

  test("downloads into <tmp>/checkpoint-<step> and carries it on to this attempt's prefix", async () => {
    const mine = join(work, "attempt-1", "_flytecheckpoints");
    const restored = await restoreFlyteCheckpoint({
      argv: ["--checkpoint-path", mine, "--prev-checkpoint", previous],
      env: {},
      logger: log.logger,
    });
    restoredRoots.push(dirname(restored!));
    expect(restored).toMatch(/trainkit-flyte-restore-\w+\/checkpoint-4$/);
    // The restored folder is the checkpoint alone (trainkit's prefix marker is not restored).
    const source = readPrefix(localPathOf(previous));
    expect([...readTree(restored!).keys()]).toEqual([...source.keys()]);
    expect(existsSync(join(restored!, PREFIX_MARKER))).toBe(false);
    expect([...readPrefix(mine)].map(([k, v]) => [k, v.toString("base64")])).toEqual(
      [...source].map(([k, v]) => [k, v.toString("base64")]),
    );
    expect(log.infos).toEqual([
      `Flyte: restored the checkpoint of step 4 from ${previous} into ${restored}.`,
    ]);
    expect(log.warnings).toEqual([]);
  });

  test("localDir: into that folder (must be empty); carryForward false copies nothing on", async () => {
    const localDir = join(work, "restore-here");
    const mine = join(work, "not-carried");
    expect(
      await restoreFlyteCheckpoint({
        prevCheckpoint: previous,
        checkpointPath: mine,
        carryForward: false,
        localDir,
        argv: [],
        env: {},
        logger: log.logger,
      }),
    ).toBe(localDir);
    expect(existsSync(join(localDir, "trainer_state.json"))).toBe(true);
    expect(existsSync(mine)).toBe(false);
    await expect(
      restoreFlyteCheckpoint({
        prevCheckpoint: previous,
        localDir,
        argv: [],
        env: {},
        logger: log.logger,
      }),
    ).rejects.toThrow(`restoreFlyteCheckpoint: localDir ${localDir} is not empty.`);
  });

  test("a prefix that is not a checkpoint is an error; nothing is left behind", async () => {
    const notACheckpoint = join(work, "not-a-checkpoint");
    mkdirSync(notACheckpoint);
    writeFileSync(join(notACheckpoint, "model.pt"), "x");
    const before = readdirSync(tmpdir()).filter((n) => n.startsWith("trainkit-flyte-restore-"));
    await expect(
      restoreFlyteCheckpoint({
        prevCheckpoint: notACheckpoint,
        argv: [],
        env: {},
        logger: log.logger,
      }),
    ).rejects.toThrow(`The previous checkpoint ${notACheckpoint} holds no trainer_state.json`);
    expect(readdirSync(tmpdir()).filter((n) => n.startsWith("trainkit-flyte-restore-"))).toEqual(
      before,
    );
  });

  test("object stores need an adapter: a clear error before any work", async () => {
    await expect(
      restoreFlyteCheckpoint({
        prevCheckpoint: "s3://bucket/metadata/_flytecheckpoints",
        argv: [],
        env: {},
      }),
    ).rejects.toThrow(
      'No storage adapter for "s3://" (s3://bucket/metadata/_flytecheckpoints). trainkit copies checkpoints itself only to file:// URIs and local paths; for an object store, pass an adapter built on your cloud SDK: createFlytePlugin({ storage: { "s3": adapter } })',
    );
    await expect(
      restoreFlyteCheckpoint({
        prevCheckpoint: previous,
        checkpointPath: "gs://b/x",
        argv: [],
        env: {},
      }),
    ).rejects.toThrow('No storage adapter for "gs://"');
    expect(() => storageFor("file://host/x")).toThrow(
      '"file://host/x" names the host "host"; a file:// URI must be absolute, e.g. file:///data/checkpoints (three slashes).',
    );
    expect(() =>
      storageFor("abfs://c@acct.dfs.core.windows.net/p", { abfs: {} as StorageAdapter }),
    ).toThrow(
      'The storage adapter for "abfs://" must have put(localDir, uri, options), get(uri, localDir) and exists(uri) methods.',
    );
  });

  test("an adapter for another scheme is used for it (here a 'bucket://' backed by a folder)", async () => {
    const root = join(work, "fake-bucket");
    const toPath = (uri: string) => join(root, uri.slice("bucket://".length));
    const calls: string[] = [];
    const bucket: StorageAdapter = {
      put: (dir, uri, options) => (
        calls.push(`put ${uri}`),
        fileStorage.put(dir, toPath(uri), options)
      ),
      get: (uri, dir) => (calls.push(`get ${uri}`), fileStorage.get(toPath(uri), dir)),
      exists: (uri) => (calls.push(`exists ${uri}`), fileStorage.exists(toPath(uri))),
    };
    await fileStorage.put(localPathOf(previous), toPath("bucket://run/0/ckpt"), { replace: true });
    const restored = await restoreFlyteCheckpoint({
      argv: [
        "--prev-checkpoint",
        "bucket://run/0/ckpt",
        "--checkpoint-path",
        "bucket://run/1/ckpt",
      ],
      env: {},
      storage: { bucket },
      logger: log.logger,
    });
    restoredRoots.push(dirname(restored!));
    expect(restored).toMatch(/checkpoint-4$/);
    expect(calls).toEqual([
      "exists bucket://run/0/ckpt",
      "get bucket://run/0/ckpt",
      "put bucket://run/1/ckpt",
    ]);
    expect(existsSync(join(root, "run/1/ckpt/trainer_state.json"))).toBe(true);
  });
});

describe("the file:// backend", () => {
  test("a crash between the two renames of a replace: get and exists use the copy moved aside", async () => {
    const dest = join(work, "crashed", "ckpt");
    await fileStorage.put(localPathOf(previous), dest, { replace: true });
    // What a process killed right after moving the old copy aside leaves behind.
    renameSync(dest, join(work, "crashed", ".ckpt.trainkit-old-1-2-abc"));
    expect(await fileStorage.exists(dest)).toBe(true);
    const into = join(work, "crashed-restore");
    await fileStorage.get(pathToFileURL(dest).href, into);
    expect([...readTree(into).keys()]).toEqual([...readPrefix(localPathOf(previous)).keys()]);
  });

  test("an overlaying put keeps the other files", async () => {
    const dest = join(work, "overlay");
    mkdirSync(dest);
    writeFileSync(join(dest, "outputs.pb"), "keep me");
    const stage = join(work, "overlay-stage");
    mkdirSync(join(stage, "sub"), { recursive: true });
    writeFileSync(join(stage, "a.html"), "a");
    writeFileSync(join(stage, "sub", "b.json"), "b");
    await fileStorage.put(stage, pathToFileURL(dest).href, { replace: false });
    expect([...readTree(dest)].map(([k, v]) => `${k}=${v}`)).toEqual([
      "a.html=a",
      "outputs.pb=keep me",
      "sub/b.json=b",
    ]);
  });

  test("file URIs: trailing slashes, localhost, percent-encoding", () => {
    expect(localPathOf("file:///data/ckpt/")).toBe("/data/ckpt");
    expect(localPathOf("file://localhost/data/ckpt")).toBe("/data/ckpt");
    expect(localPathOf("file:///data/my%20ckpt")).toBe("/data/my ckpt");
    expect(localPathOf("/data/x/")).toBe("/data/x");
    rmSync(join(work, "never"), { recursive: true, force: true });
  });
});

// Where things go: Flyte's `""`, flytekit's process arguments, the env fallbacks, and when the
// plugin is available (so reportTo "all" leaves it out on a laptop).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TrainingArguments } from "@trainkit/core";
import { selectPlugins } from "@trainkit/core/plugin";
import { afterAll, describe, expect, test } from "vitest";
import flyte, {
  createFlytePlugin,
  locationOrNone,
  parseFlyteArgs,
  resolveLocations,
  type StorageAdapter,
} from "../src/index.js";
import { argValue } from "../src/locations.js";
import { captureLogger } from "./helpers.js";

const work = mkdtempSync(join(tmpdir(), "trainkit-flyte-locations-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('"" means none', () => {
  test.each([[undefined], [null], [""], ["   "], ['""'], [' "" '], ["''"]])("%j", (value) => {
    expect(locationOrNone(value)).toBeUndefined();
  });
  test("anything else is kept (trimmed)", () => {
    expect(locationOrNone(" s3://b/p ")).toBe("s3://b/p");
    expect(locationOrNone('"s3://b/p"')).toBe('"s3://b/p"');
  });
});

describe("flytekit's process arguments", () => {
  test("as propeller renders them for a first attempt", () => {
    const argv = [
      "--inputs",
      "s3://b/in/inputs.pb",
      "--checkpoint-path",
      "s3://b/meta/0/_flytecheckpoints",
      "--prev-checkpoint",
      '""',
      "--raw-output-data-prefix",
      "s3://b/raw/ab/xyz-n0-0",
    ];
    expect(parseFlyteArgs(argv)).toEqual({
      checkpointPath: "s3://b/meta/0/_flytecheckpoints",
      rawOutputPrefix: "s3://b/raw/ab/xyz-n0-0",
    });
  });
  test("--name=value, the last one wins, a flag without a value is none", () => {
    expect(parseFlyteArgs(["--prev-checkpoint=file:///a", "--checkpoint-path=file:///b"])).toEqual({
      prevCheckpoint: "file:///a",
      checkpointPath: "file:///b",
    });
    expect(
      argValue(["--checkpoint-path", "a", "--checkpoint-path", "b"], "--checkpoint-path"),
    ).toBe("b");
    // A wrapper that dropped an empty argument: the next flag is not taken as the path.
    expect(parseFlyteArgs(["--prev-checkpoint", "--checkpoint-path", "/x"])).toEqual({
      checkpointPath: "/x",
    });
    expect(argValue(["--prev-checkpoint"], "--prev-checkpoint")).toBe("");
    expect(argValue([], "--prev-checkpoint")).toBeUndefined();
  });
});

describe("precedence: option, then argument, then env", () => {
  const env = {
    TRAINKIT_FLYTE_CHECKPOINT_PATH: "/env/ckpt",
    TRAINKIT_FLYTE_PREV_CHECKPOINT: "/env/prev",
    TRAINKIT_FLYTE_DECK_DIR: "/env/deck",
  };
  test("env alone", () => {
    const found = resolveLocations({ argv: [], env });
    expect(found.checkpointPath).toEqual({
      value: "/env/ckpt",
      from: "TRAINKIT_FLYTE_CHECKPOINT_PATH",
      source: "env",
    });
    expect(found.prevCheckpoint.value).toBe("/env/prev");
    expect(found.deckDir.value).toBe("/env/deck");
  });
  test("arguments win over env; an explicit deck dir wins over the raw output prefix", () => {
    const found = resolveLocations({
      argv: [
        "--checkpoint-path",
        "/arg/ckpt",
        "--prev-checkpoint",
        '""',
        "--raw-output-data-prefix",
        "/arg/raw",
      ],
      env,
    });
    expect(found.checkpointPath).toEqual({
      value: "/arg/ckpt",
      from: "--checkpoint-path",
      source: "argument",
    });
    // `""` from the arguments is "none", not "fall through to the env".
    expect(found.prevCheckpoint).toEqual({
      value: undefined,
      from: "--prev-checkpoint",
      source: "argument",
    });
    expect(found.deckDir.value).toBe("/env/deck");
    expect(
      resolveLocations({ argv: ["--raw-output-data-prefix", "/arg/raw"], env: {} }).deckDir,
    ).toEqual({
      value: "/arg/raw",
      from: "--raw-output-data-prefix",
      source: "argument",
    });
  });
  test('options win over both; an option "" turns a location off', () => {
    const found = resolveLocations({
      checkpointPath: "",
      prevCheckpoint: "/opt/prev",
      deckDir: "/opt/deck",
      argv: ["--checkpoint-path", "/arg/ckpt", "--prev-checkpoint", "/arg/prev"],
      env,
    });
    expect(found.checkpointPath.value).toBeUndefined();
    expect(found.prevCheckpoint).toEqual({
      value: "/opt/prev",
      from: "option prevCheckpoint",
      source: "option",
    });
    expect(found.deckDir.value).toBe("/opt/deck");
  });
});

describe("isAvailable", () => {
  const args = new TrainingArguments({ outputDir: join(work, "out"), reportTo: "none" });
  const context = (env: Record<string, string | undefined>) => ({
    args,
    env,
    logger: captureLogger().logger,
  });

  test("on a laptop: not available, and it says what to set", () => {
    expect(createFlytePlugin({ argv: [] }).isAvailable(context({}))).toEqual({
      available: false,
      reason:
        "not a Flyte task (FLYTE_INTERNAL_EXECUTION_ID is not set) and no checkpoint path is configured: set TRAINKIT_FLYTE_CHECKPOINT_PATH or pass createFlytePlugin({ checkpointPath }) (--checkpoint-path is read only inside a Flyte task)",
    });
    expect(
      createFlytePlugin({ argv: ["--checkpoint-path", '""'] }).isAvailable(context({})).available,
    ).toBe(false);
    // The default export reads this process's own arguments (vitest's: none of Flyte's).
    expect(flyte.isAvailable(context({})).available).toBe(false);
  });

  test("a laptop's own --checkpoint-path does not turn it on; inside a Flyte task it is read", () => {
    const saved = process.argv;
    process.argv = [saved[0]!, "train.js", "--checkpoint-path", "./checkpoints"];
    try {
      // `node train.js --checkpoint-path ./checkpoints` on a laptop: not Flyte's argument.
      expect(flyte.isAvailable(context({})).available).toBe(false);
      expect(createFlytePlugin().isAvailable(context({})).available).toBe(false);
      expect(resolveLocations({ env: {} }).checkpointPath).toEqual({
        value: undefined,
        from: "default",
        source: "default",
      });
      // Inside a Flyte task the same argument is flytekit's, and it is read.
      const task = { FLYTE_INTERNAL_EXECUTION_ID: "f3a8b" };
      expect(flyte.isAvailable(context(task))).toEqual({ available: true });
      expect(resolveLocations({ env: task }).checkpointPath).toEqual({
        value: "./checkpoints",
        from: "--checkpoint-path",
        source: "argument",
      });
      // Explicit configuration still turns it on outside a task.
      expect(flyte.isAvailable(context({ TRAINKIT_FLYTE_CHECKPOINT_PATH: "/mnt/ckpt" }))).toEqual({
        available: true,
      });
      expect(createFlytePlugin({ checkpointPath: "/mnt/ckpt" }).isAvailable(context({}))).toEqual({
        available: true,
      });
    } finally {
      process.argv = saved;
    }
  });

  test("inside a Flyte task, or with a checkpoint path configured: available", () => {
    expect(flyte.isAvailable(context({ FLYTE_INTERNAL_EXECUTION_ID: "f3a8b" }))).toEqual({
      available: true,
    });
    expect(flyte.isAvailable(context({ TRAINKIT_FLYTE_CHECKPOINT_PATH: "file:///ckpt" }))).toEqual({
      available: true,
    });
    expect(
      createFlytePlugin({ argv: ["--checkpoint-path", "/ckpt"] }).isAvailable(context({})),
    ).toEqual({
      available: true,
    });
  });

  test("a location without a storage adapter: not available, with the fix", () => {
    const plugin = createFlytePlugin({
      argv: ["--checkpoint-path", "s3://b/meta/_flytecheckpoints"],
    });
    const answer = plugin.isAvailable(context({ FLYTE_INTERNAL_EXECUTION_ID: "f3a8b" }));
    expect(answer.available).toBe(false);
    expect((answer as { reason: string }).reason).toContain(
      'No storage adapter for "s3://" (s3://b/meta/_flytecheckpoints). trainkit copies checkpoints itself only to file:// URIs and local paths',
    );
    const adapter = {
      put: async () => {},
      get: async () => {},
      exists: async () => false,
    } as StorageAdapter;
    const withAdapter = createFlytePlugin({
      argv: ["--checkpoint-path", "s3://b/meta/_flytecheckpoints"],
      storage: { s3: adapter },
    });
    expect(withAdapter.isAvailable(context({}))).toEqual({ available: true });
    // syncCheckpoints off: the path is not used, so it needs no adapter.
    expect(
      createFlytePlugin({ argv: ["--checkpoint-path", "s3://b/x"] }).isAvailable(
        context({ TRAINKIT_FLYTE_SYNC_CHECKPOINTS: "0" }),
      ),
    ).toEqual({ available: true });
  });

  test('reportTo "all" leaves it out on a laptop and takes it in a Flyte task; ["flyte"] explains', async () => {
    const plugin = createFlytePlugin({ argv: [] });
    const laptop = await selectPlugins("all", context({}), { cwd: work, plugins: [plugin] });
    expect(laptop.plugins).toEqual([]);
    expect(laptop.summary).toContain(
      "skipped: flyte (not a Flyte task (FLYTE_INTERNAL_EXECUTION_ID is not set)",
    );
    const task = await selectPlugins("all", context({ FLYTE_INTERNAL_EXECUTION_ID: "f3a8b" }), {
      cwd: work,
      plugins: [plugin],
    });
    expect(task.plugins.map((p) => p.name)).toEqual(["flyte"]);
    const s3 = createFlytePlugin({ argv: ["--checkpoint-path", "s3://b/x"] });
    await expect(
      selectPlugins(["flyte"], context({}), { cwd: work, plugins: [s3] }),
    ).rejects.toThrow(
      'reportTo lists "flyte", but it is not configured: No storage adapter for "s3://" (s3://b/x).',
    );
  });
});

// FlyteCallback in real Trainer runs: every save's contents land in the file:// checkpoint
// prefix (no checkpoint-<step> level, stale files gone), copies never overlap and survive the
// Trainer deleting the folder, and the deck is read back by real headless Chromium.
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import * as tf from "@tensorflow/tfjs";
import {
  TrainerCallback,
  TrainerState,
  parsePythonJson,
  setLogger,
  type Trainer,
  type TrainingArguments,
} from "@trainkit/core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "vitest";
import {
  DECK_FILES,
  FlyteCallback,
  createFlytePlugin,
  fileStorage,
  type StorageAdapter,
} from "../src/index.js";
import {
  PREFIX_MARKER,
  captureLogger,
  cellValue,
  makeTrainer,
  readPrefix,
  readTableWithChromium,
  readTree,
} from "./helpers.js";

const work = mkdtempSync(join(tmpdir(), "trainkit-flyte-callback-"));
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

const flyteOf = (trainer: Trainer) =>
  trainer.callbackHandler.callbacks.find((cb): cb is FlyteCallback => cb instanceof FlyteCallback)!;

/** After each save (it runs after the integrations): waits for the copy, then compares. */
class CompareEachSave extends TrainerCallback {
  readonly compared: number[] = [];
  trainer!: Trainer;
  constructor(private readonly destination: string) {
    super();
  }
  override async onSave(args: TrainingArguments, state: TrainerState): Promise<void> {
    await flyteOf(this.trainer).flush();
    const saved = readTree(join(args.outputDir, `checkpoint-${state.globalStep}`));
    const copied = readPrefix(this.destination);
    expect([...copied.keys()]).toEqual([...saved.keys()]);
    for (const [file, bytes] of saved) expect(copied.get(file)!.equals(bytes), file).toBe(true);
    const copiedState = parsePythonJson(
      readFileSync(join(this.destination, "trainer_state.json"), "utf8"),
    ) as {
      global_step: number;
    };
    expect(copiedState.global_step).toBe(state.globalStep);
    this.compared.push(state.globalStep);
  }
}

describe("a Trainer run with a file:// checkpoint prefix", () => {
  const outputDir = join(work, "run");
  const destination = join(work, "bucket", "attempt-0", "_flytecheckpoints");
  const deckDir = join(work, "bucket", "raw-output");
  let trainer: Trainer;
  let compare: CompareEachSave;

  test("each save's contents are at the prefix root after that save, stale files gone", async () => {
    // A file from "an earlier checkpoint" (trainkit's marker says trainkit filled the folder)
    // that the new ones do not have.
    mkdirSync(destination, { recursive: true });
    writeFileSync(join(destination, "stale-shard.bin"), "old");
    writeFileSync(join(destination, PREFIX_MARKER), "");
    compare = new CompareEachSave(destination);
    const plugin = createFlytePlugin({
      checkpointPath: pathToFileURL(destination).href,
      deckDir: pathToFileURL(deckDir).href,
      argv: [],
      env: {},
    });
    trainer = makeTrainer(
      plugin,
      {
        outputDir,
        maxSteps: 8,
        loggingSteps: 1,
        saveStrategy: "steps",
        saveSteps: 2,
        evalStrategy: "steps",
        evalSteps: 4,
        learningRate: 0.05,
      },
      { callbacks: [compare] },
    );
    compare.trainer = trainer;
    await trainer.train();
    expect(compare.compared).toEqual([2, 4, 6, 8]);
    expect(existsSync(join(destination, "stale-shard.bin"))).toBe(false);
    expect(existsSync(join(destination, "checkpoint-8"))).toBe(false);
    // The destination's parent holds nothing but the prefix: no temporary copies left.
    expect(readdirSync(join(work, "bucket", "attempt-0"))).toEqual(["_flytecheckpoints"]);
    // Snapshots are gone once copied.
    expect(readdirSync(join(outputDir, ".trainkit", "flyte"))).toEqual([]);
    expect(log.warnings).toEqual([]);
    expect(log.infos.find((m) => m.includes("Integrations:"))).toContain(
      "flyte [the plugins option]",
    );
    expect(log.infos).toContain(
      `Flyte: checkpoints are copied to ${pathToFileURL(destination).href} (from option checkpointPath); the log history goes to ${pathToFileURL(deckDir).href} (from option deckDir).`,
    );
  });

  test("the deck, loaded in headless Chromium, holds every row and column of log_history", async () => {
    const html = join(deckDir, DECK_FILES.html);
    const table = await readTableWithChromium(html);
    const logHistory = trainer.state.logHistory as Record<string, number>[];
    expect(logHistory.length).toBeGreaterThan(10);
    const columns: string[] = [];
    for (const entry of logHistory)
      for (const key of Object.keys(entry)) if (!columns.includes(key)) columns.push(key);
    for (const key of [
      "loss",
      "grad_norm",
      "learning_rate",
      "epoch",
      "step",
      "eval_loss",
      "train_runtime",
      "total_flos",
      "train_loss",
    ])
      expect(columns).toContain(key);

    expect(table.title).toBe("Log History");
    const [header, ...body] = table.rows;
    expect(header!.map((c) => c.tag)).toEqual(columns.map(() => "th"));
    expect(header!.map((c) => c.text)).toEqual(columns);
    expect(body).toHaveLength(logHistory.length);
    body.forEach((row, i) => {
      expect(row.map((c) => c.tag)).toEqual(columns.map(() => "td"));
      const read = Object.fromEntries(
        columns.flatMap((key, j) => {
          const value = cellValue(row[j]!.text);
          return value === undefined ? [] : [[key, value]];
        }),
      );
      expect(read, `row ${i}`).toEqual(logHistory[i]);
    });
    // Self-contained: no scripts, nothing loaded, and the inline CSS applies.
    expect(table.scripts).toBe(0);
    expect(table.loaders).toBe(0);
    expect(table.resources).toBe(0);
    expect(table.headerBackground).toBe("rgb(246, 248, 250)");
  });

  test("the JSON copy is trainer_state.json's log_history", () => {
    const json = readFileSync(join(deckDir, DECK_FILES.json), "utf8");
    expect(parsePythonJson(json)).toEqual(trainer.state.logHistory);
    const state = parsePythonJson(trainer.state.toJsonString()) as { log_history: unknown[] };
    expect(json).toContain('"epoch": 1.0');
    expect(parsePythonJson(json)).toEqual(state.log_history);
  });
});

describe("copies in the background", () => {
  test("one at a time, the newest waiting one wins, and rotation cannot pull a folder away", async () => {
    const outputDir = join(work, "slow-run");
    const destination = join(work, "slow-bucket", "ckpt");
    let active = 0;
    let maxActive = 0;
    let deletedBeforeCopy = false;
    const putSteps: number[] = [];
    const slow: StorageAdapter = {
      ...fileStorage,
      async put(localDir, uri, options) {
        active++;
        maxActive = Math.max(maxActive, active);
        const state = parsePythonJson(
          readFileSync(join(localDir, "trainer_state.json"), "utf8"),
        ) as {
          global_step: number;
        };
        putSteps.push(state.global_step);
        // The first copy waits until saveTotalLimit 1 has deleted its checkpoint folder.
        const original = join(outputDir, `checkpoint-${state.global_step}`);
        for (
          let waited = 0;
          state.global_step === 1 && existsSync(original) && waited < 10_000;
          waited += 10
        )
          await new Promise((r) => setTimeout(r, 10));
        if (state.global_step === 1) deletedBeforeCopy = !existsSync(original);
        await new Promise((r) => setTimeout(r, 50));
        try {
          await fileStorage.put(localDir, uri, options);
        } finally {
          active--;
        }
      },
    };
    const plugin = createFlytePlugin({
      checkpointPath: destination,
      saveLogHistory: false,
      storage: { file: slow },
      argv: [],
      env: {},
    });
    const trainer = makeTrainer(plugin, {
      outputDir,
      maxSteps: 6,
      loggingSteps: 1,
      saveStrategy: "steps",
      saveSteps: 1,
      saveTotalLimit: 1,
    });
    await trainer.train();
    // onTrainEnd waited for the last copy: the destination is complete when train() returns.
    expect(deletedBeforeCopy).toBe(true);
    expect(maxActive).toBe(1);
    expect(putSteps[0]).toBe(1);
    expect(putSteps.at(-1)).toBe(6);
    expect(putSteps).toEqual([...putSteps].sort((a, b) => a - b));
    expect(putSteps.length).toBeLessThan(6); // saves 2..5 waited behind 1 and were superseded
    expect(readdirSync(outputDir).filter((n) => n.startsWith("checkpoint-"))).toEqual([
      "checkpoint-6",
    ]);
    const copied = readPrefix(destination);
    const saved = readTree(join(outputDir, "checkpoint-6"));
    expect([...copied.keys()]).toEqual([...saved.keys()]);
    for (const [file, bytes] of saved) expect(copied.get(file)!.equals(bytes), file).toBe(true);
    expect(log.warnings).toEqual([]);
  });

  test("a failed training still finishes the copy in flight (onException)", async () => {
    const outputDir = join(work, "crash-run");
    const destination = join(work, "crash-bucket", "ckpt");
    const slow: StorageAdapter = {
      ...fileStorage,
      async put(localDir, uri, options) {
        await new Promise((r) => setTimeout(r, 200));
        await fileStorage.put(localDir, uri, options);
      },
    };
    class Crash extends TrainerCallback {
      override onStepEnd(_args: TrainingArguments, state: TrainerState): void {
        if (state.globalStep === 3) throw new Error("simulated node failure");
      }
    }
    const plugin = createFlytePlugin({
      checkpointPath: destination,
      storage: { file: slow },
      argv: [],
      env: {},
    });
    const trainer = makeTrainer(
      plugin,
      { outputDir, maxSteps: 6, saveStrategy: "steps", saveSteps: 2 },
      { callbacks: [new Crash()] },
    );
    await expect(trainer.train()).rejects.toThrow("simulated node failure");
    const state = parsePythonJson(
      readFileSync(join(destination, "trainer_state.json"), "utf8"),
    ) as {
      global_step: number;
    };
    expect(state.global_step).toBe(2);
  });
});

describe("options", () => {
  test("syncCheckpoints and saveLogHistory off (options or env): nothing is written", async () => {
    const outputDir = join(work, "off");
    const destination = join(work, "off-bucket");
    const viaEnv = createFlytePlugin({
      checkpointPath: destination,
      argv: [],
      env: { TRAINKIT_FLYTE_SYNC_CHECKPOINTS: "false", TRAINKIT_FLYTE_SAVE_LOG_HISTORY: "no" },
    });
    await makeTrainer(viaEnv, {
      outputDir,
      maxSteps: 2,
      saveStrategy: "steps",
      saveSteps: 1,
    }).train();
    expect(existsSync(destination)).toBe(false);
    expect(existsSync(join(outputDir, DECK_FILES.html))).toBe(false);
    expect(log.infos).toContain(
      "Flyte: checkpoints are not copied (syncCheckpoints is off); no log history deck (saveLogHistory is off).",
    );
  });

  test("a previous checkpoint that training does not resume from: one hint", async () => {
    const previous = join(work, "bucket", "attempt-0", "_flytecheckpoints"); // from the first run
    expect(existsSync(join(previous, "trainer_state.json"))).toBe(true);
    const trainer = makeTrainer(
      createFlytePlugin({
        prevCheckpoint: previous,
        saveLogHistory: false,
        argv: [],
        env: { FLYTE_INTERNAL_EXECUTION_ID: "ex-2" },
      }),
      { outputDir: join(work, "hint"), maxSteps: 2, saveStrategy: "no" },
    );
    await trainer.train();
    await trainer.train();
    expect(log.warnings).toEqual([
      `Flyte: the previous attempt left a checkpoint at ${previous}, but training starts from step 0. To resume, pass it on: trainer.train({ resumeFromCheckpoint: await restoreFlyteCheckpoint() }).`,
    ]);
  });

  test("the hint's check does not hold training up (an exists() that never answers)", async () => {
    const hanging: StorageAdapter = {
      put: async () => {},
      get: async () => {},
      exists: () => new Promise<boolean>(() => {}),
    };
    const trainer = makeTrainer(
      createFlytePlugin({
        prevCheckpoint: "bucket://b/attempt-0",
        storage: { bucket: hanging },
        saveLogHistory: false,
        argv: [],
        env: { FLYTE_INTERNAL_EXECUTION_ID: "ex-3" },
      }),
      { outputDir: join(work, "hint-hanging"), maxSteps: 2, saveStrategy: "no" },
    );
    const started = Date.now();
    await trainer.train(); // before: onTrainBegin awaited exists() and this never returned
    expect(trainer.state.globalStep).toBe(2);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(log.warnings).toEqual([]);
  });

  test("the deck defaults to outputDir; only world process zero writes", async () => {
    const outputDir = join(work, "deck-default");
    await makeTrainer(
      createFlytePlugin({ argv: [], env: { FLYTE_INTERNAL_EXECUTION_ID: "ex-1" } }),
      {
        outputDir,
        maxSteps: 2,
        saveStrategy: "no",
      },
    ).train();
    expect(existsSync(join(outputDir, DECK_FILES.html))).toBe(true);
    expect(existsSync(join(outputDir, DECK_FILES.json))).toBe(true);
    expect(
      log.infos.some((m) =>
        m.includes("checkpoints are not copied (no checkpoint path: pass --checkpoint-path"),
      ),
    ).toBe(true);

    const rankOne = new FlyteCallback({
      deckDir: join(work, "rank1"),
      checkpointPath: join(work, "rank1-ckpt"),
      argv: [],
      env: {},
      logger: log.logger,
    });
    const state = new TrainerState();
    state.isWorldProcessZero = false;
    const args = makeTrainer(createFlytePlugin({ argv: [], env: {} }), {
      outputDir: join(work, "rank1-out"),
      reportTo: "none",
    }).args;
    rankOne.onTrainBegin(args, state);
    rankOne.onSave(args, state);
    await rankOne.onTrainEnd(args, state);
    expect(existsSync(join(work, "rank1"))).toBe(false);
    expect(existsSync(join(work, "rank1-ckpt"))).toBe(false);
  });
});

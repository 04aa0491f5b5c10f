// Checkpoints and resume: a run stopped after a checkpoint and resumed from it ends exactly
// where the unbroken run ends (weights bit for bit, logs, callback states); a process killed
// while writing a checkpoint leaves only complete checkpoints; a damaged or foreign checkpoint
// is refused before any work with a message naming the file and the problem; the files hold
// what HF's hold, under HF's names; and training does not leak tensors.
import { spawn } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  truncateSync,
  watch,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  EarlyStoppingCallback,
  PrinterCallback,
  Trainer,
  TrainerCallback,
  TrainerControl,
  TrainerState,
  createOptimizer,
  setLogger,
  type DataCollator,
  type Example,
  type Logger,
  type LogEntry,
  type TrainingArguments,
  type TrainingArgumentsOptions,
} from "../src/index.js";
import { readCheckpoint, disposeCheckpoint } from "../src/trainer/checkpoint/checkpoint-files.js";
import {
  latestCheckpoint,
  listCheckpoints,
  removeTemporaryCheckpoints,
  rotateCheckpoints,
  writeCheckpointDir,
} from "../src/trainer/checkpoint/checkpoint-dir.js";
import { epochPermutation } from "../src/trainer/data/rng.js";
import { LayersModelAdapter } from "../src/trainer/model/trainable-model.js";
import { BIG_LOSS, bigArgs, bigDataset, buildBigModel } from "./fixtures-scripts/big-model.js";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, "..", "..", "..");
let root: string;
let previousLogger: Logger;

beforeAll(async () => {
  previousLogger = setLogger({ info() {}, warn() {} });
  await tf.setBackend("cpu");
  root = mkdtempSync(join(tmpdir(), "trainkit-ckpt-"));
});
afterAll(() => {
  setLogger(previousLogger);
  rmSync(root, { recursive: true, force: true });
});

let dirCount = 0;
function freshDir(name = "run"): string {
  return join(root, `${name}-${++dirCount}`);
}

// ---------------------------------------------------------------------------------------------
// Models, data and runs

/** A deterministic generator for the data (not the one the Trainer uses for data order). */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296 - 0.5;
  };
}

/** Rows of 4 features and a noisy target, each with its row id. */
function regressionRows(n: number, seed = 1): Example[] {
  const random = lcg(seed);
  return Array.from({ length: n }, (_, id) => {
    const x = [random(), random(), random(), random()];
    const y = 2 * x[0]! - x[1]! + 0.5 * x[2]! * x[3]! + 0.1 * random();
    return { x, y: [y], id };
  });
}

/** The same initial weights every time it is called. */
function makeModel({ hidden = 8, batchNorm = false } = {}): tf.LayersModel {
  const layers: tf.layers.Layer[] = [
    tf.layers.dense({
      units: hidden,
      inputShape: [4],
      activation: "tanh",
      kernelInitializer: tf.initializers.glorotUniform({ seed: 11 }),
      biasInitializer: tf.initializers.randomNormal({ seed: 12, stddev: 0.1 }),
    }),
  ];
  if (batchNorm) layers.push(tf.layers.batchNormalization({ momentum: 0.9 }));
  layers.push(
    tf.layers.dense({ units: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: 13 }) }),
  );
  return tf.sequential({ layers });
}

function baseArgs(options: TrainingArgumentsOptions): TrainingArgumentsOptions {
  return {
    reportTo: "none",
    disableTqdm: true,
    backend: "cpu",
    perDeviceTrainBatchSize: 8,
    perDeviceEvalBatchSize: 8,
    learningRate: 0.05,
    seed: 42,
    ...options,
  };
}

/** Sets shouldTrainingStop in onSave at `step`: the files left are what a crash would leave. */
class StopAfterSave extends TrainerCallback {
  constructor(private readonly step: number) {
    super();
  }
  override onSave(_args: TrainingArguments, state: TrainerState, control: TrainerControl) {
    if (state.globalStep === this.step) control.shouldTrainingStop = true;
  }
}

/** Records the global step each event saw. */
class EventRecorder extends TrainerCallback {
  events: string[] = [];
  trainBeginStep: number | undefined;
  override onTrainBegin(_args: TrainingArguments, state: TrainerState) {
    this.events.push("onTrainBegin");
    this.trainBeginStep = state.globalStep;
  }
  override onStepBegin() {
    this.events.push("onStepBegin");
  }
  override onSave() {
    this.events.push("onSave");
  }
}

/** A collator that records the row ids of every training batch, in order. */
function recordingCollator(seen: number[][]): DataCollator {
  return (examples) => {
    const ids = examples.map((e) => e.id as number);
    // The evaluation loader has batch size 8 too; only training batches are recorded, see
    // the scenarios that use it (no evaluation).
    seen.push(ids);
    const x = examples.flatMap((e) => Array.from(e.x as ArrayLike<number>));
    const y = examples.map((e) => (typeof e.y === "number" ? e.y : (e.y as number[])[0]!));
    return { x: tf.tensor2d(x, [examples.length, 4]), y: tf.tensor2d(y, [examples.length, 1]) };
  };
}

interface Scenario {
  name: string;
  args: TrainingArgumentsOptions;
  /** The checkpoint step the interrupted run stops after. */
  stopAt: number;
  resume: "path" | "latest";
  rows?: number;
  evalRows?: number;
  batchNorm?: boolean;
  earlyStopping?: boolean;
  recordOrder?: boolean;
}

interface RunResult {
  trainer: Trainer;
  model: tf.LayersModel;
  outputDir: string;
  seen: number[][];
  recorder: EventRecorder;
}

async function runTrainer(
  scenario: Scenario,
  outputDir: string,
  { stopAt, resume }: { stopAt?: number; resume?: string | boolean } = {},
): Promise<RunResult> {
  const model = makeModel({ batchNorm: scenario.batchNorm === true });
  const seen: number[][] = [];
  const recorder = new EventRecorder();
  const callbacks: TrainerCallback[] = [recorder];
  if (scenario.earlyStopping)
    callbacks.push(
      // A threshold no change can pass: the counter goes up at every evaluation after the first.
      new EarlyStoppingCallback({ earlyStoppingPatience: 100, earlyStoppingThreshold: 1e9 }),
    );
  if (stopAt !== undefined) callbacks.push(new StopAfterSave(stopAt));
  const trainer = new Trainer({
    model,
    loss: "meanSquaredError",
    args: baseArgs({ ...scenario.args, outputDir }),
    trainDataset: regressionRows(scenario.rows ?? 40),
    ...(scenario.evalRows ? { evalDataset: regressionRows(scenario.evalRows, 2) } : {}),
    ...(scenario.recordOrder ? { dataCollator: recordingCollator(seen) } : {}),
    callbacks,
  });
  trainer.removeCallback(PrinterCallback);
  await trainer.train(resume === undefined ? {} : { resumeFromCheckpoint: resume });
  return { trainer, model, outputDir, seen, recorder };
}

/** Each variable's bytes, in the model's order. */
function weightBytes(model: tf.LayersModel): Buffer[] {
  return model.weights.map((w) => Buffer.from(new Float32Array(w.read().dataSync()).buffer));
}

/** Names the variables whose bytes differ (with the largest difference), for a readable failure. */
function weightDifferences(actual: tf.LayersModel, expected: tf.LayersModel): string[] {
  const a = actual.weights.map((w) => w.read().dataSync() as Float32Array);
  const e = expected.weights.map((w) => w.read().dataSync() as Float32Array);
  if (a.length !== e.length) return [`${a.length} variables against ${e.length}`];
  const out: string[] = [];
  a.forEach((values, i) => {
    const want = e[i]!;
    if (Buffer.from(values.buffer).equals(Buffer.from(want.buffer))) return;
    let max = 0;
    values.forEach((v, j) => (max = Math.max(max, Math.abs(v - want[j]!))));
    out.push(`variable ${i} (${expected.weights[i]!.name}): max |diff| ${max}`);
  });
  return out;
}

const VOLATILE_KEY = /_runtime$|_per_second$/;

function stableLogs(history: readonly LogEntry[]): Record<string, number>[] {
  return history.map((entry) =>
    Object.fromEntries(
      Object.entries(entry)
        .filter(([key]) => !VOLATILE_KEY.test(key))
        .sort(([a], [b]) => a.localeCompare(b)),
    ),
  );
}

/** A trainer_state.json as data, without timings and with checkpoint paths reduced to names. */
function stableState(state: TrainerState): unknown {
  const data = JSON.parse(state.toJsonString()) as Record<string, unknown>;
  data.log_history = stableLogs(state.logHistory);
  if (typeof data.best_model_checkpoint === "string")
    data.best_model_checkpoint = basename(data.best_model_checkpoint);
  return data;
}

function stableStateFile(path: string): unknown {
  return stableState(TrainerState.loadFromJson(path));
}

function earlyStoppingCounter(trainer: Trainer): number | undefined {
  const callback = trainer.callbackHandler.callbacks.find(
    (c) => c instanceof EarlyStoppingCallback,
  ) as EarlyStoppingCallback | undefined;
  return callback?.earlyStoppingPatienceCounter;
}

/** Checkpoint files that must be byte-identical between two runs that took the same steps. */
const EXACT_FILES = [
  "weights.bin",
  "optimizer.bin",
  "optimizer.json",
  "scheduler.json",
  "rng_state.json",
  "loop_state.json",
];

function expectSameCheckpointFiles(actualDir: string, expectedDir: string): void {
  for (const file of EXACT_FILES) {
    const actual = readFileSync(join(actualDir, file));
    const expected = readFileSync(join(expectedDir, file));
    expect(actual.equals(expected), `${file} of ${actualDir} equals ${expectedDir}'s`).toBe(true);
  }
  expect(stableStateFile(join(actualDir, "trainer_state.json"))).toEqual(
    stableStateFile(join(expectedDir, "trainer_state.json")),
  );
}

function checkpointNames(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => /^checkpoint-\d+$/.test(name))
    .sort((a, b) => Number(a.slice(11)) - Number(b.slice(11)));
}

// ---------------------------------------------------------------------------------------------
// 1. Resume exactness

const SCENARIOS: Scenario[] = [
  {
    name: "plain steps (adamw, linear schedule), resumed from the path",
    args: { maxSteps: 10, loggingSteps: 2, saveSteps: 2 },
    stopAt: 4,
    resume: "path",
  },
  {
    name: "a checkpoint off the logging steps (logging 3, save 4), mid-epoch, resumed from latest",
    args: { maxSteps: 12, loggingSteps: 3, saveSteps: 4, dataSeed: 7 },
    stopAt: 4,
    resume: "latest",
  },
  {
    name: "gradient accumulation 3 with a short last group, stopped in the first epoch",
    // 56 rows = 7 batches an epoch = groups of 3, 3 and 1: 3 updates an epoch.
    args: { numTrainEpochs: 3, gradientAccumulationSteps: 3, loggingSteps: 1, saveSteps: 2 },
    rows: 56,
    stopAt: 2,
    resume: "path",
  },
  {
    name: "gradient accumulation 3 with a short last group, stopped in the second epoch",
    args: { numTrainEpochs: 3, gradientAccumulationSteps: 3, loggingSteps: 1, saveSteps: 4 },
    rows: 56,
    stopAt: 4,
    resume: "latest",
  },
  {
    name: "gradient accumulation 3, stopped at an epoch boundary",
    args: { numTrainEpochs: 2, gradientAccumulationSteps: 3, loggingSteps: 2, saveSteps: 3 },
    rows: 56,
    stopAt: 3,
    resume: "path",
  },
  {
    name: "a checkpoint mid-epoch with shuffling: the data order continues exactly",
    // 5 batches an epoch; step 7 is the 2nd batch of epoch 1.
    args: { numTrainEpochs: 3, loggingSteps: 4, saveSteps: 7 },
    stopAt: 7,
    resume: "latest",
    recordOrder: true,
  },
  {
    name: 'sgd with optimArgs "momentum=0.9", weight decay, cosine with warmup',
    args: {
      maxSteps: 12,
      optim: "sgd",
      optimArgs: "momentum=0.9",
      weightDecay: 0.01,
      lrSchedulerType: "cosine",
      warmupSteps: 3,
      loggingSteps: 2,
      saveSteps: 5,
    },
    stopAt: 5,
    resume: "path",
  },
  {
    name: "plain sgd (no optimizer slots), constant schedule",
    args: { maxSteps: 8, optim: "sgd", lrSchedulerType: "constant", loggingSteps: 2, saveSteps: 3 },
    stopAt: 3,
    resume: "latest",
  },
  {
    name: "adam with weight decay, constant_with_warmup (warmupRatio)",
    args: {
      maxSteps: 10,
      optim: "adam",
      weightDecay: 0.05,
      lrSchedulerType: "constant_with_warmup",
      warmupRatio: 0.3,
      loggingSteps: 2,
      saveSteps: 3,
    },
    stopAt: 6,
    resume: "latest",
  },
  {
    name: "adamw with weight decay, polynomial with warmup",
    args: {
      maxSteps: 10,
      optim: "adamw",
      weightDecay: 0.1,
      lrSchedulerType: "polynomial",
      lrSchedulerKwargs: { power: 2 },
      warmupSteps: 2,
      loggingSteps: 3,
      saveSteps: 4,
    },
    stopAt: 4,
    resume: "path",
  },
  {
    name: "evaluation, EarlyStoppingCallback state and loadBestModelAtEnd",
    args: {
      maxSteps: 10,
      loggingSteps: 2,
      evalStrategy: "steps",
      evalSteps: 2,
      saveSteps: 2,
      metricForBestModel: "loss",
      loadBestModelAtEnd: true,
      restoreCallbackStatesFromCheckpoint: true,
    },
    evalRows: 16,
    earlyStopping: true,
    stopAt: 6,
    resume: "latest",
  },
  {
    name: "a model with non-trainable variables (batch normalization)",
    args: { maxSteps: 8, loggingSteps: 2, saveSteps: 3 },
    batchNorm: true,
    stopAt: 3,
    resume: "path",
  },
];

describe("resume exactness", () => {
  test.each(SCENARIOS)("$name", async (scenario) => {
    const unbroken = await runTrainer(scenario, freshDir("unbroken"));
    const outputDir = freshDir("stopped");
    const stopped = await runTrainer(scenario, outputDir, { stopAt: scenario.stopAt });
    expect(stopped.trainer.state.globalStep).toBe(scenario.stopAt);
    expect(checkpointNames(outputDir).at(-1)).toBe(`checkpoint-${scenario.stopAt}`);
    const checkpoint = join(outputDir, `checkpoint-${scenario.stopAt}`);
    // The stopped run wrote the same checkpoint as the unbroken one.
    expectSameCheckpointFiles(
      checkpoint,
      join(unbroken.outputDir, `checkpoint-${scenario.stopAt}`),
    );

    const resumed = await runTrainer(scenario, outputDir, {
      resume: scenario.resume === "path" ? checkpoint : true,
    });
    expect(resumed.recorder.trainBeginStep).toBe(scenario.stopAt);
    expect(resumed.trainer.state.globalStep).toBe(unbroken.trainer.state.globalStep);
    expect(weightDifferences(resumed.model, unbroken.model)).toEqual([]);
    expect(weightBytes(resumed.model)).toEqual(weightBytes(unbroken.model));
    expect(stableLogs(resumed.trainer.state.logHistory)).toEqual(
      stableLogs(unbroken.trainer.state.logHistory),
    );
    expect(stableState(resumed.trainer.state)).toEqual(stableState(unbroken.trainer.state));
    // The last checkpoints match byte for byte too: optimizer and scheduler state included.
    const last = checkpointNames(unbroken.outputDir).at(-1)!;
    expect(checkpointNames(outputDir).at(-1)).toBe(last);
    expectSameCheckpointFiles(join(outputDir, last), join(unbroken.outputDir, last));

    if (scenario.earlyStopping) {
      const counter = earlyStoppingCounter(unbroken.trainer);
      expect(counter).toBeGreaterThan(0);
      expect(earlyStoppingCounter(resumed.trainer)).toBe(counter);
    }
    if (scenario.batchNorm) {
      // The moving statistics moved, so comparing them above meant something.
      const fresh = makeModel({ batchNorm: true });
      const frozen = (m: tf.LayersModel) =>
        m.nonTrainableWeights.map((w) => Array.from(w.read().dataSync()));
      expect(frozen(unbroken.model)).not.toEqual(frozen(fresh));
      fresh.dispose();
    }
    if (scenario.recordOrder) {
      expect(stopped.seen.length).toBeGreaterThan(0);
      expect([...stopped.seen, ...resumed.seen]).toEqual(unbroken.seen);
    }
  });

  test("without restoreCallbackStatesFromCheckpoint the callback starts afresh (HF)", async () => {
    const scenario: Scenario = {
      ...SCENARIOS.find((s) => s.earlyStopping)!,
      args: {
        ...SCENARIOS.find((s) => s.earlyStopping)!.args,
        restoreCallbackStatesFromCheckpoint: false,
      },
    };
    const unbroken = await runTrainer(scenario, freshDir("unbroken"));
    const outputDir = freshDir("stopped");
    await runTrainer(scenario, outputDir, { stopAt: scenario.stopAt });
    const resumed = await runTrainer(scenario, outputDir, { resume: true });
    // Evaluations at 2, 4, 6 | 8, 10: the unbroken counter is 4; afresh it counts 8 and 10 only.
    expect(earlyStoppingCounter(unbroken.trainer)).toBe(4);
    expect(earlyStoppingCounter(resumed.trainer)).toBe(2);
    // The weights do not depend on the callback's state.
    expect(weightDifferences(resumed.model, unbroken.model)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// 2. SIGKILL while a checkpoint is being written

const WRITE_TEMP = /^\.tmp-checkpoint-\d+-/;

/**
 * Starts the writer and, once it has written a checkpoint, SIGKILLs it the moment anything new
 * appears in outputDir: with writes into a temporary folder that is the next checkpoint's
 * temporary folder, i.e. the kill lands mid-write. (Rotation's "deleting" folders do not
 * count.) Returns whether the kill left a write's temporary folder behind.
 */
async function killMidWrite(outputDir: string, maxSteps: number): Promise<boolean> {
  mkdirSync(outputDir, { recursive: true });
  const script = join(here, "fixtures-scripts", "checkpoint-writer.ts");
  const child = spawn(process.execPath, ["--import", "tsx", script, outputDir, String(maxSteps)], {
    cwd: repoRoot,
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  let killed = false;
  let armedWith: Set<string> | undefined;
  const check = () => {
    if (killed) return;
    let names: string[];
    try {
      names = readdirSync(outputDir).filter((n) => !n.startsWith(".tmp-checkpoint-deleting-"));
    } catch {
      return;
    }
    if (!armedWith) {
      // Armed once a checkpoint exists, so that there is something to resume from.
      if (names.some((n) => /^checkpoint-\d+$/.test(n))) armedWith = new Set(names);
      return;
    }
    if (names.some((n) => !armedWith!.has(n))) killed = child.kill("SIGKILL");
  };
  const watcher = watch(outputDir, check);
  const poll = setInterval(check, 1);
  const timeout = setTimeout(() => child.kill("SIGKILL"), 15_000);
  const { code, signal } = await exited;
  watcher.close();
  clearInterval(poll);
  clearTimeout(timeout);
  if (!killed)
    throw new Error(`The writer exited (code ${code}, ${signal}) before the kill:\n${stderr}`);
  expect(signal).toBe("SIGKILL");
  return readdirSync(outputDir).some((n) => WRITE_TEMP.test(n));
}

/** Every folder named like a checkpoint is complete and passes every check of a resume. */
function expectCompleteCheckpoints(outputDir: string): string[] {
  const names = checkpointNames(outputDir);
  expect(names.length).toBeGreaterThan(0);
  const model = new LayersModelAdapter(buildBigModel(), BIG_LOSS);
  const optimizer = createOptimizer({
    name: "adamw",
    variables: model.trainableVariables(),
    decay: model.trainableVariables().map(() => true),
    weightDecay: 0,
    beta1: 0.9,
    beta2: 0.999,
    epsilon: 1e-8,
  });
  try {
    for (const name of names) {
      const loaded = readCheckpoint(join(outputDir, name), model, optimizer);
      expect(loaded.state.globalStep).toBe(Number(name.slice(11)));
      disposeCheckpoint(loaded);
    }
  } finally {
    optimizer.dispose();
    model.model.dispose();
  }
  return names;
}

describe("SIGKILL while writing a checkpoint", () => {
  test("leaves only complete checkpoints, and resume continues from the latest", async () => {
    const maxSteps = 5;
    let outputDir = "";
    let midWrite = false;
    for (let attempt = 0; attempt < 3 && !midWrite; attempt++) {
      outputDir = freshDir("killed");
      midWrite = await killMidWrite(outputDir, maxSteps);
      expectCompleteCheckpoints(outputDir);
    }
    expect(midWrite, "one of the kills landed while a checkpoint was being written").toBe(true);
    const names = checkpointNames(outputDir);

    // resumeFromCheckpoint: true picks the latest complete one, finishes, and clears the debris.
    const latest = Number(names.at(-1)!.slice(11));
    const recorder = new EventRecorder();
    const trainer = new Trainer({
      model: buildBigModel(),
      loss: BIG_LOSS,
      args: bigArgs(outputDir, maxSteps),
      trainDataset: bigDataset(),
      callbacks: [recorder],
    });
    trainer.removeCallback(PrinterCallback);
    const output = await trainer.train({ resumeFromCheckpoint: true });
    expect(recorder.trainBeginStep).toBe(latest);
    expect(output.globalStep).toBe(maxSteps);
    expect(readdirSync(outputDir).filter((n) => n.startsWith(".tmp-checkpoint-"))).toEqual([]);
    expect(checkpointNames(outputDir).at(-1)).toBe(`checkpoint-${maxSteps}`);
    trainer.optimizer?.dispose();
    (trainer.model as LayersModelAdapter).model.dispose();
  }, 60_000);
});

describe("checkpoint folders", () => {
  const write = (text: string) => async (dir: string) => writeFileSync(join(dir, "file"), text);

  test("a write that fails leaves nothing behind", async () => {
    const dir = freshDir("dirs");
    await expect(
      writeCheckpointDir(dir, 3, async (temporary) => {
        writeFileSync(join(temporary, "weights.bin"), "partial");
        throw new Error("disk full");
      }),
    ).rejects.toThrow("disk full");
    expect(readdirSync(dir)).toEqual([]);
  });

  test("saving a step again replaces its checkpoint", async () => {
    const dir = freshDir("dirs");
    await writeCheckpointDir(dir, 4, write("first"));
    const path = await writeCheckpointDir(dir, 4, write("second"));
    expect(path).toBe(join(dir, "checkpoint-4"));
    expect(readFileSync(join(path, "file"), "utf8")).toBe("second");
    expect(readdirSync(dir)).toEqual(["checkpoint-4"]);
  });

  test("a crash between the renames of a re-save: the old checkpoint is put back", () => {
    const dir = freshDir("dirs");
    const old = join(dir, ".tmp-checkpoint-replaced-4-100-1-abc");
    mkdirSync(old, { recursive: true });
    writeFileSync(join(old, "file"), "old");
    mkdirSync(join(dir, ".tmp-checkpoint-4-100-2-def"));
    mkdirSync(join(dir, "checkpoint-2"));
    expect(latestCheckpoint(dir)).toEqual({ step: 4, path: join(dir, "checkpoint-4") });
    expect(readFileSync(join(dir, "checkpoint-4", "file"), "utf8")).toBe("old");
    removeTemporaryCheckpoints(dir);
    expect(readdirSync(dir).sort()).toEqual(["checkpoint-2", "checkpoint-4"]);
  });

  test("listCheckpoints: folders named checkpoint-<step> only, in step order", () => {
    const dir = freshDir("dirs");
    for (const name of ["checkpoint-10", "checkpoint-9", "checkpoint-100", "checkpoint-x"])
      mkdirSync(join(dir, name), { recursive: true });
    mkdirSync(join(dir, ".tmp-checkpoint-11-1-1-a"));
    mkdirSync(join(dir, ".tmp-checkpoint-deleting-8-1-1-a"));
    writeFileSync(join(dir, "checkpoint-12"), "a file");
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([9, 10, 100]);
    expect(listCheckpoints(join(dir, "absent"))).toEqual([]);
    removeTemporaryCheckpoints(dir);
    expect(readdirSync(dir).filter((n) => n.startsWith("."))).toEqual([]);
  });

  test("rotation keeps the newest and the best, and leaves no partly deleted folder", async () => {
    const dir = freshDir("dirs");
    for (const step of [2, 4, 6, 8]) await writeCheckpointDir(dir, step, write(String(step)));
    const deleted = rotateCheckpoints(dir, 2, join(dir, "checkpoint-2"));
    expect(deleted).toEqual([join(dir, "checkpoint-4"), join(dir, "checkpoint-6")]);
    expect(readdirSync(dir).sort()).toEqual(["checkpoint-2", "checkpoint-8"]);
    // Limit 1 with a best that is not the newest: both are protected (HF).
    expect(rotateCheckpoints(dir, 1, join(dir, "checkpoint-2"))).toEqual([]);
    expect(rotateCheckpoints(dir, 1, null)).toEqual([join(dir, "checkpoint-2")]);
    expect(readdirSync(dir)).toEqual(["checkpoint-8"]);
  });
});

// ---------------------------------------------------------------------------------------------
// 3. Refusals before any work

describe("refusal before any work", () => {
  const scenario: Scenario = {
    name: "reference",
    args: { maxSteps: 4, loggingSteps: 2, saveSteps: 2 },
    stopAt: 4,
    resume: "path",
  };
  let reference: string;

  beforeAll(async () => {
    const run = await runTrainer(scenario, freshDir("reference"));
    reference = join(run.outputDir, "checkpoint-4");
  });

  /** A copy of the reference checkpoint, in its own output folder. */
  function copyCheckpoint(source = reference): { outputDir: string; checkpoint: string } {
    const outputDir = freshDir("refuse");
    const checkpoint = join(outputDir, basename(source));
    cpSync(source, checkpoint, { recursive: true });
    return { outputDir, checkpoint };
  }

  async function expectRefusal(
    outputDir: string,
    resume: string | boolean,
    message: RegExp,
    args: TrainingArgumentsOptions = {},
  ): Promise<void> {
    const model = makeModel();
    const before = weightBytes(model);
    const recorder = new EventRecorder();
    const trainer = new Trainer({
      model,
      loss: "meanSquaredError",
      args: baseArgs({ ...scenario.args, ...args, outputDir }),
      trainDataset: regressionRows(40),
      callbacks: [recorder],
    });
    trainer.removeCallback(PrinterCallback);
    const listing = existsSync(outputDir) ? readdirSync(outputDir).sort() : [];
    await expect(trainer.train({ resumeFromCheckpoint: resume })).rejects.toThrow(message);
    expect(recorder.events).toEqual([]);
    expect(weightBytes(model)).toEqual(before);
    expect(existsSync(outputDir) ? readdirSync(outputDir).sort() : []).toEqual(listing);
    trainer.optimizer?.dispose();
    model.dispose();
  }

  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const file = (checkpoint: string, name: string) => escape(join(checkpoint, name));

  test("a checkpoint folder that does not exist", async () => {
    const outputDir = freshDir("refuse");
    const missing = join(outputDir, "checkpoint-99");
    await expectRefusal(outputDir, missing, new RegExp(`${escape(missing)} does not exist`));
  });

  test("no trainer_state.json", async () => {
    const { outputDir, checkpoint } = copyCheckpoint();
    rmSync(join(checkpoint, "trainer_state.json"));
    await expectRefusal(
      outputDir,
      checkpoint,
      new RegExp(`${file(checkpoint, "trainer_state.json")}.*(ENOENT|no such file)`),
    );
  });

  test("a truncated trainer_state.json", async () => {
    const { outputDir, checkpoint } = copyCheckpoint();
    const path = join(checkpoint, "trainer_state.json");
    writeFileSync(path, readFileSync(path, "utf8").slice(0, 150));
    await expectRefusal(
      outputDir,
      checkpoint,
      new RegExp(`${escape(path)} is not valid JSON.*damaged or truncated`),
    );
  });

  test("garbage in trainer_state.json", async () => {
    const { outputDir, checkpoint } = copyCheckpoint();
    const path = join(checkpoint, "trainer_state.json");
    writeFileSync(path, "\u0000\u0001garbage{{{");
    await expectRefusal(outputDir, checkpoint, new RegExp(`${escape(path)} is not valid JSON`));
  });

  test("a trainer_state.json of the wrong shape", async () => {
    const { outputDir, checkpoint } = copyCheckpoint();
    const path = join(checkpoint, "trainer_state.json");
    writeFileSync(path, JSON.stringify({ global_step: "four" }));
    await expectRefusal(outputDir, checkpoint, new RegExp(`${escape(path)}.*global_step`));
  });

  test("a truncated weights.bin", async () => {
    const { outputDir, checkpoint } = copyCheckpoint();
    const path = join(checkpoint, "weights.bin");
    truncateSync(path, 37);
    await expectRefusal(
      outputDir,
      checkpoint,
      new RegExp(`${escape(path)} holds 37 bytes but .*model\\.json describes \\d+.*cut short`),
    );
  });

  test("a missing weights.bin", async () => {
    const { outputDir, checkpoint } = copyCheckpoint();
    rmSync(join(checkpoint, "weights.bin"));
    await expectRefusal(
      outputDir,
      checkpoint,
      new RegExp(`${file(checkpoint, "weights.bin")} is missing or unreadable`),
    );
  });

  test("a model.json that is not a weights manifest", async () => {
    const { outputDir, checkpoint } = copyCheckpoint();
    writeFileSync(join(checkpoint, "model.json"), JSON.stringify({ format: "layers-model" }));
    await expectRefusal(
      outputDir,
      checkpoint,
      new RegExp(`${file(checkpoint, "model.json")} has no weightsManifest`),
    );
  });

  test("a model.json whose dtypes do not match the model's", async () => {
    const { outputDir, checkpoint } = copyCheckpoint();
    const path = join(checkpoint, "model.json");
    const json = JSON.parse(readFileSync(path, "utf8")) as {
      weightsManifest: { weights: { dtype: string }[] }[];
    };
    // The third tensor: a partial apply would already have changed the first two.
    json.weightsManifest[0]!.weights[2]!.dtype = "int32";
    writeFileSync(path, JSON.stringify(json));
    await expectRefusal(
      outputDir,
      checkpoint,
      new RegExp(`${escape(path)}: tensor 2 .*dtype int32 but the model's is float32`),
    );
  });

  test("a checkpoint written by a different model (other layer sizes)", async () => {
    const outputDir = freshDir("other-model");
    const model = makeModel({ hidden: 16 });
    const trainer = new Trainer({
      model,
      loss: "meanSquaredError",
      args: baseArgs({ ...scenario.args, outputDir }),
      trainDataset: regressionRows(40),
    });
    trainer.removeCallback(PrinterCallback);
    await trainer.train();
    trainer.optimizer?.dispose();
    model.dispose();
    const checkpoint = join(outputDir, "checkpoint-4");
    await expectRefusal(
      outputDir,
      checkpoint,
      new RegExp(
        `${file(checkpoint, "model.json")}.*shape \\[4,16\\].*shape \\[4,8\\].*written by a different model`,
      ),
    );
  });

  test("a checkpoint written by a model with more layers", async () => {
    const outputDir = freshDir("other-model");
    const model = makeModel({ batchNorm: true });
    const trainer = new Trainer({
      model,
      loss: "meanSquaredError",
      args: baseArgs({ ...scenario.args, outputDir }),
      trainDataset: regressionRows(40),
    });
    trainer.removeCallback(PrinterCallback);
    await trainer.train();
    trainer.optimizer?.dispose();
    model.dispose();
    const checkpoint = join(outputDir, "checkpoint-4");
    await expectRefusal(
      outputDir,
      checkpoint,
      new RegExp(
        `${file(checkpoint, "model.json")} holds 8 tensors but the model has 4.*different model`,
      ),
    );
  });

  test("optimizer.json of another optimizer", async () => {
    const { outputDir, checkpoint } = copyCheckpoint();
    await expectRefusal(
      outputDir,
      checkpoint,
      new RegExp(
        `${file(checkpoint, "optimizer.json")} holds the state of optimizer "adamw" but this Trainer uses "sgd"`,
      ),
      { optim: "sgd", optimArgs: "momentum=0.9" },
    );
  });

  test("optimizer.json of the same optimizer with other settings (sgd momentum)", async () => {
    const outputDir = freshDir("sgd");
    const model = makeModel();
    const trainer = new Trainer({
      model,
      loss: "meanSquaredError",
      args: baseArgs({ ...scenario.args, outputDir, optim: "sgd", optimArgs: "momentum=0.9" }),
      trainDataset: regressionRows(40),
    });
    trainer.removeCallback(PrinterCallback);
    await trainer.train();
    trainer.optimizer?.dispose();
    model.dispose();
    const checkpoint = join(outputDir, "checkpoint-4");
    await expectRefusal(
      outputDir,
      checkpoint,
      new RegExp(
        `${file(checkpoint, "optimizer.json")} holds the slots \\[momentum_buffer\\].*optimArgs`,
      ),
      { optim: "sgd" },
    );
  });

  test("a truncated optimizer.bin", async () => {
    const { outputDir, checkpoint } = copyCheckpoint();
    const path = join(checkpoint, "optimizer.bin");
    truncateSync(path, 100);
    await expectRefusal(
      outputDir,
      checkpoint,
      new RegExp(
        `${escape(path)} holds 100 bytes but .*optimizer\\.json describes \\d+.*cut short`,
      ),
    );
  });

  test("a damaged scheduler.json, rng_state.json or loop_state.json", async () => {
    for (const [name, content, message] of [
      ["scheduler.json", "{}", "has no step_count"],
      ["scheduler.json", "", "is not valid JSON"],
      ["rng_state.json", "[1,2", "is not valid JSON"],
      ["rng_state.json", '{"data_seed":"x"}', "has no data_seed"],
      ["loop_state.json", '{"tr_loss":1}', "has no total_loss_scalar"],
    ] as const) {
      const { outputDir, checkpoint } = copyCheckpoint();
      writeFileSync(join(checkpoint, name), content);
      await expectRefusal(
        outputDir,
        checkpoint,
        new RegExp(`${file(checkpoint, name)}.*${escape(message)}`),
      );
    }
  });

  test("a checkpoint saved with saveOnlyModel", async () => {
    const outputDir = freshDir("only-model");
    const model = makeModel();
    const trainer = new Trainer({
      model,
      loss: "meanSquaredError",
      args: baseArgs({ ...scenario.args, outputDir, saveOnlyModel: true }),
      trainDataset: regressionRows(40),
    });
    trainer.removeCallback(PrinterCallback);
    await trainer.train();
    trainer.optimizer?.dispose();
    model.dispose();
    const checkpoint = join(outputDir, "checkpoint-4");
    await expectRefusal(
      outputDir,
      checkpoint,
      new RegExp(
        `${escape(checkpoint)}: it has no optimizer\\.json \\(it was saved with saveOnlyModel\\).*loadModel`,
      ),
    );
  });

  test("resumeFromCheckpoint true with no checkpoint in outputDir", async () => {
    const outputDir = freshDir("empty");
    mkdirSync(join(outputDir, ".tmp-checkpoint-3-1-2-x"), { recursive: true });
    mkdirSync(join(outputDir, "checkpoint-notanumber"));
    await expectRefusal(
      outputDir,
      true,
      new RegExp(`resumeFromCheckpoint is true but ${escape(outputDir)} holds no checkpoint`),
    );
  });

  test("resumeFromCheckpoint true with no outputDir at all", async () => {
    const outputDir = freshDir("absent");
    await expectRefusal(outputDir, true, /holds no checkpoint/);
    expect(existsSync(outputDir)).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
// 4. What a checkpoint holds

describe("checkpoint contents", () => {
  const ALL_FILES = [
    "loop_state.json",
    "model.json",
    "optimizer.bin",
    "optimizer.json",
    "rng_state.json",
    "scheduler.json",
    "trainer_state.json",
    "training_args.json",
    "weights.bin",
  ];
  const scenario: Scenario = {
    name: "contents",
    args: { maxSteps: 6, loggingSteps: 2, saveSteps: 3 },
    stopAt: 6,
    resume: "path",
    recordOrder: true,
  };
  let run: RunResult;

  beforeAll(async () => {
    run = await runTrainer(scenario, freshDir("contents"));
  });

  test("every file, under HF's names, and no temporary folder left", () => {
    expect(readdirSync(run.outputDir).sort()).toEqual(["checkpoint-3", "checkpoint-6"]);
    for (const name of ["checkpoint-3", "checkpoint-6"])
      expect(readdirSync(join(run.outputDir, name)).sort()).toEqual(ALL_FILES);
  });

  test("trainer_state.json: HF's layout, read back by TrainerState.loadFromJson", () => {
    const path = join(run.outputDir, "checkpoint-3", "trainer_state.json");
    const text = readFileSync(path, "utf8");
    const data = JSON.parse(text) as Record<string, unknown>;
    expect(Object.keys(data)).toEqual(Object.keys(data).sort());
    expect(text.endsWith("}\n")).toBe(true);
    expect(text.split("\n")[1]).toMatch(/^ {2}"/);
    const state = TrainerState.loadFromJson(path);
    expect(state.globalStep).toBe(3);
    expect(state.maxSteps).toBe(6);
    expect(state.logHistory.map((entry) => entry.step)).toEqual([2]);
    const control = state.statefulCallbacks.TrainerControl as { args: Record<string, boolean> };
    expect(control.args.should_save).toBe(true);
    expect(control.args.should_training_stop).toBe(false);
    const last = TrainerState.loadFromJson(
      join(run.outputDir, "checkpoint-6", "trainer_state.json"),
    );
    const lastControl = last.statefulCallbacks.TrainerControl as { args: Record<string, boolean> };
    expect(lastControl.args).toMatchObject({ should_save: true, should_training_stop: true });
  });

  test("training_args.json: snake_case keys", () => {
    const data = JSON.parse(
      readFileSync(join(run.outputDir, "checkpoint-3", "training_args.json"), "utf8"),
    ) as Record<string, unknown>;
    for (const key of Object.keys(data)) expect(key).toMatch(/^[a-z][a-z0-9_]*$/);
    expect(data).toMatchObject({
      output_dir: run.outputDir,
      max_steps: 6,
      per_device_train_batch_size: 8,
      save_steps: 3,
      logging_steps: 2,
      seed: 42,
    });
  });

  test("optimizer, scheduler, rng and loop state", () => {
    const dir = join(run.outputDir, "checkpoint-3");
    const read = (name: string) =>
      JSON.parse(readFileSync(join(dir, name), "utf8")) as Record<string, unknown>;
    expect(read("optimizer.json")).toMatchObject({
      optimizer: "adamw",
      step: 3,
      slot_names: ["exp_avg", "exp_avg_sq"],
      weightsManifest: [{ paths: ["optimizer.bin"] }],
    });
    expect(read("scheduler.json")).toMatchObject({ step_count: 3, type: "linear", total_steps: 6 });
    expect(read("rng_state.json")).toEqual({ data_seed: 42, generator: "splitmix32-fisher-yates" });
    const loop = read("loop_state.json");
    expect(loop.globalstep_last_logged).toBe(2);
    expect(typeof loop.tr_loss).toBe("number");
    expect(typeof loop.total_loss_scalar).toBe("number");
  });

  test("rng_state.json names the seed that ordered the data", () => {
    const rng = JSON.parse(
      readFileSync(join(run.outputDir, "checkpoint-3", "rng_state.json"), "utf8"),
    ) as { data_seed: number };
    const order = Array.from(epochPermutation(40, rng.data_seed, 0));
    expect(run.seen.slice(0, 5)).toEqual([0, 1, 2, 3, 4].map((i) => order.slice(i * 8, i * 8 + 8)));
  });

  test("model.json + weights.bin load as a tf.LayersModel that predicts like the trained one", async () => {
    const dir = join(run.outputDir, "checkpoint-6");
    const json = JSON.parse(readFileSync(join(dir, "model.json"), "utf8")) as {
      format: string;
      modelTopology: object;
      weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
    };
    expect(json.format).toBe("layers-model");
    expect(json.weightsManifest[0]!.paths).toEqual(["weights.bin"]);
    const bin = readFileSync(join(dir, "weights.bin"));
    const loaded = await tf.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: json.modelTopology,
        weightSpecs: json.weightsManifest[0]!.weights,
        weightData: new Uint8Array(bin).buffer,
      }),
    );
    const x = tf.tensor2d(
      regressionRows(12, 5).flatMap((r) => r.x as number[]),
      [12, 4],
    );
    const expected = run.model.predict(x) as tf.Tensor;
    const actual = loaded.predict(x) as tf.Tensor;
    expect(Array.from(actual.dataSync())).toEqual(Array.from(expected.dataSync()));
    tf.dispose([x, expected, actual]);
    loaded.dispose();
  });

  test("saveTotalLimit keeps the newest checkpoints", async () => {
    const outputDir = freshDir("limit");
    await runTrainer(
      { ...scenario, recordOrder: false, args: { maxSteps: 10, saveSteps: 2, saveTotalLimit: 2 } },
      outputDir,
    );
    expect(readdirSync(outputDir).sort()).toEqual(["checkpoint-10", "checkpoint-8"]);
  });

  test("saveTotalLimit keeps the newest and the best (f_best_first)", async () => {
    const outputDir = freshDir("limit-best");
    let calls = 0;
    const model = makeModel();
    const trainer = new Trainer({
      model,
      loss: "meanSquaredError",
      args: baseArgs({
        outputDir,
        maxSteps: 10,
        saveSteps: 2,
        evalStrategy: "steps",
        evalSteps: 2,
        saveTotalLimit: 2,
        metricForBestModel: "score",
        greaterIsBetter: true,
      }),
      trainDataset: regressionRows(40),
      evalDataset: regressionRows(8, 2),
      // The first evaluation is the best one.
      computeMetrics: () => ({ score: -calls++ }),
    });
    trainer.removeCallback(PrinterCallback);
    await trainer.train();
    expect(basename(trainer.state.bestModelCheckpoint ?? "")).toBe("checkpoint-2");
    expect(readdirSync(outputDir).sort()).toEqual(["checkpoint-10", "checkpoint-2"]);
    trainer.optimizer?.dispose();
    model.dispose();
  });

  test("saveOnlyModel writes the model, the state and the arguments only", async () => {
    const outputDir = freshDir("only-model");
    await runTrainer(
      { ...scenario, recordOrder: false, args: { maxSteps: 2, saveSteps: 2, saveOnlyModel: true } },
      outputDir,
    );
    expect(readdirSync(join(outputDir, "checkpoint-2")).sort()).toEqual([
      "model.json",
      "trainer_state.json",
      "training_args.json",
      "weights.bin",
    ]);
  });

  test("trainer.saveModel(dir) writes model.json, weights.bin and training_args.json", async () => {
    const dir = freshDir("saved-model");
    await run.trainer.saveModel(dir);
    expect(readdirSync(dir).sort()).toEqual(["model.json", "training_args.json", "weights.bin"]);
    const model = makeModel();
    const trainer = new Trainer({
      model,
      loss: "meanSquaredError",
      args: baseArgs({ outputDir: dir }),
    });
    trainer.loadModel(dir);
    expect(weightBytes(model)).toEqual(weightBytes(run.model));
    model.dispose();
  });

  test("loadModel refuses another model's weights and leaves the model unchanged", () => {
    const model = makeModel({ hidden: 16 });
    const before = weightBytes(model);
    const trainer = new Trainer({
      model,
      loss: "meanSquaredError",
      args: baseArgs({ outputDir: freshDir("x") }),
    });
    expect(() => trainer.loadModel(join(run.outputDir, "checkpoint-6"))).toThrow(
      /model\.json: tensor 0 .*shape \[4,8\].*shape \[4,16\].*different model/,
    );
    expect(weightBytes(model)).toEqual(before);
    model.dispose();
  });
});

describe("a diverged loss in a checkpoint", () => {
  test("a NaN loss not yet logged is saved as NaN in loop_state.json, and resume reads it", async () => {
    const outputDir = freshDir("nan");
    // Row 3 has a NaN label: the first epoch's loss (steps 1 and 2, before checkpoint-2) is NaN.
    const data = regressionRows(16).map((row, i) => (i === 3 ? { ...row, y: [Number.NaN] } : row));
    const run = async (resume?: string) => {
      const model = makeModel();
      const trainer = new Trainer({
        model,
        loss: "meanSquaredError",
        args: baseArgs({
          outputDir,
          maxSteps: 4,
          saveSteps: 2,
          loggingSteps: 100,
          loggingNanInfFilter: false,
        }),
        trainDataset: data,
      });
      trainer.removeCallback(PrinterCallback);
      const output = await trainer.train(resume ? { resumeFromCheckpoint: resume } : {});
      trainer.dispose();
      model.dispose();
      return output;
    };
    const full = await run();
    expect(full.trainingLoss).toBeNaN();
    const text = readFileSync(join(outputDir, "checkpoint-2", "loop_state.json"), "utf8");
    // Python's json writes NaN; JSON.stringify would write null, which reads as damaged.
    expect(text).toContain('"tr_loss": NaN');
    const resumed = await run(join(outputDir, "checkpoint-2"));
    expect(resumed.globalStep).toBe(4);
    expect(resumed.trainingLoss).toBeNaN();
  });
});

// ---------------------------------------------------------------------------------------------
// 5. Memory

describe("memory", () => {
  const args: TrainingArgumentsOptions = {
    maxSteps: 12,
    gradientAccumulationSteps: 2,
    loggingSteps: 3,
    evalStrategy: "steps",
    evalSteps: 4,
    saveSteps: 5,
    saveTotalLimit: 2,
    metricForBestModel: "loss",
  };

  function makeTrainer(
    model: tf.LayersModel,
    outputDir: string,
    extra: TrainingArgumentsOptions = {},
  ) {
    const trainer = new Trainer({
      model,
      loss: "meanSquaredError",
      args: baseArgs({ ...args, ...extra, outputDir }),
      trainDataset: regressionRows(40),
      evalDataset: regressionRows(16, 2),
      callbacks: [new EarlyStoppingCallback({ earlyStoppingPatience: 100 })],
    });
    trainer.removeCallback(PrinterCallback);
    return trainer;
  }

  test("training twice with one Trainer: no tensor more after the second run", async () => {
    const model = makeModel();
    const trainer = makeTrainer(model, freshDir("memory"));
    await trainer.train();
    const afterFirst = tf.memory().numTensors;
    await trainer.train();
    expect(tf.memory().numTensors).toBe(afterFirst);
    await trainer.evaluate();
    await trainer.evaluate();
    expect(tf.memory().numTensors).toBe(afterFirst);
    trainer.optimizer?.dispose();
    model.dispose();
  });

  test("resumed runs and refused resumes: no tensor more", async () => {
    const model = makeModel();
    const outputDir = freshDir("memory");
    const trainer = makeTrainer(model, outputDir);
    await trainer.train();
    const afterFirst = tf.memory().numTensors;
    // Resumed from a checkpoint before the end (checkpoint-12 is written again), then from the
    // latest (nothing left to train).
    await trainer.train({ resumeFromCheckpoint: join(outputDir, "checkpoint-10") });
    expect(tf.memory().numTensors).toBe(afterFirst);
    await trainer.train({ resumeFromCheckpoint: true });
    expect(tf.memory().numTensors).toBe(afterFirst);
    // Refused after the model's tensors were read: they are freed.
    const damaged = freshDir("memory");
    cpSync(join(outputDir, "checkpoint-12"), join(damaged, "checkpoint-12"), { recursive: true });
    truncateSync(join(damaged, "checkpoint-12", "optimizer.bin"), 8);
    await expect(
      trainer.train({ resumeFromCheckpoint: join(damaged, "checkpoint-12") }),
    ).rejects.toThrow(/cut short/);
    expect(tf.memory().numTensors).toBe(afterFirst);
    // Another optimizer's state: refused, freed.
    const sgd = makeTrainer(model, freshDir("memory"), { optim: "sgd", optimArgs: "momentum=0.9" });
    await sgd.train();
    const afterSgd = tf.memory().numTensors;
    await expect(
      sgd.train({ resumeFromCheckpoint: join(outputDir, "checkpoint-12") }),
    ).rejects.toThrow(/optimizer "adamw"/);
    expect(tf.memory().numTensors).toBe(afterSgd);
    sgd.optimizer?.dispose();
    trainer.optimizer?.dispose();
    model.dispose();
  });

  test("a new Trainer per run: everything is freed once its optimizer is disposed", async () => {
    const model = makeModel();
    const baseline = tf.memory().numTensors;
    for (const optim of ["adamw", "sgd"] as const) {
      const trainer = makeTrainer(model, freshDir("memory"), {
        optim,
        ...(optim === "sgd" ? { optimArgs: "momentum=0.9" } : {}),
      });
      await trainer.train();
      trainer.optimizer?.dispose();
      expect(tf.memory().numTensors, `after a run with ${optim}`).toBe(baseline);
    }
    model.dispose();
  });
});

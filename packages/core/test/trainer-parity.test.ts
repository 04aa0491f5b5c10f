// The Trainer against HF's recorded traces (hf-traces/, transformers 5.17): every event of
// cases a, b, c, d and g_first with its step, epoch, flags and log keys; event counts;
// checkpoints left; the last checkpoint's trainer_state.json; train/evaluate/predict outputs.
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  EarlyStoppingCallback,
  PrinterCallback,
  Trainer,
  TrainerCallback,
  setLogger,
  type CallbackContext,
  type Logger,
  type Logs,
  type LossFunction,
  type StateRecord,
  type TrainableModel,
  type TrainerControl,
  type TrainerState,
  type TrainingArguments,
  type TrainingArgumentsOptions,
  type TrainOutput,
} from "../src/index.js";
import {
  ControlInRecorder,
  ExpectedEvents,
  Recorder,
  argsFromHf,
  checkpointsIn,
  countEvents,
  countsFromLine,
  eventKeys,
  flagsOf,
  loadTrace,
  maskTrainerState,
  sharedArgs,
  tinyData,
  tinyModel,
  type RecordedEvent,
  type TraceCase,
  type TraceEvent,
} from "./helpers/trainer-parity.js";

const work = mkdtempSync(join(tmpdir(), "trainkit-parity-"));
let previousLogger: Logger;
beforeAll(async () => {
  await tf.setBackend("cpu");
  previousLogger = setLogger({ info() {}, warn() {} });
});
afterAll(() => {
  setLogger(previousLogger);
  rmSync(work, { recursive: true, force: true });
});

interface Run {
  trainer: Trainer;
  outputDir: string;
  events: RecordedEvent[];
  callbackOrder: string[];
  trainOutput: TrainOutput;
  evalMetrics: Logs;
  predictMetrics: Logs;
  predictionsShape: number[];
}

interface RunOptions {
  /** Folder under the test's temporary folder. */
  dir: string;
  args?: TrainingArgumentsOptions;
  /** Callbacks before the recorder (after DefaultFlowCallback). */
  before?: TrainerCallback[];
  /** Callbacks after the recorder. */
  after?: TrainerCallback[];
  loss?: string | LossFunction;
  evalSign?: number;
  resumeFromCheckpoint?: string;
  /** Skip the post-train evaluate() and predict(). */
  trainOnly?: boolean;
}

/** Trains as trace.py does: train(), evaluate(), predict(eval), recording every event. */
async function run(options: RunOptions): Promise<Run> {
  const outputDir = join(work, options.dir);
  const recorder = new Recorder(outputDir);
  const evalData = tinyData(16, 1, options.evalSign ?? 1);
  const trainData = tinyData(64, 0);
  const trainer = new Trainer({
    model: tinyModel(),
    loss: options.loss ?? "meanSquaredError",
    args: { ...sharedArgs(outputDir), ...options.args },
    trainDataset: trainData,
    evalDataset: evalData,
    callbacks: [...(options.before ?? []), recorder, ...(options.after ?? [])],
  });
  const callbackOrder = trainer.callbackHandler.callbacks.map((cb) => cb.constructor.name);
  // Quiet: PrinterCallback's only effect besides printing is popping total_flos, which the
  // recorder (before it) never sees; a silent one keeps that effect for train()'s metrics.
  expect(trainer.popCallback(PrinterCallback)).toBeInstanceOf(PrinterCallback);
  trainer.addCallback(new PrinterCallback({ write: () => true }));
  const controlIn = new ControlInRecorder();
  trainer.callbackHandler.callbacks.unshift(controlIn);

  const trainOutput = await trainer.train({ resumeFromCheckpoint: options.resumeFromCheckpoint });
  let evalMetrics: Logs = {};
  let predictMetrics: Logs = {};
  let predictionsShape: number[] = [];
  if (!options.trainOnly) {
    evalMetrics = await trainer.evaluate();
    const prediction = await trainer.predict(evalData);
    predictMetrics = prediction.metrics;
    predictionsShape = prediction.predictions.shape;
    tf.dispose([prediction.predictions, prediction.labelIds ?? []]);
  }
  tf.dispose([evalData.x, evalData.y, trainData.x, trainData.y]);
  // control_in: ControlInRecorder joined after on_init_end (whose flags are all false).
  const events = recorder.events;
  expect(controlIn.flags).toHaveLength(events.length - 1);
  events.slice(1).forEach((event, i) => (event.control_in = controlIn.flags[i]));
  return {
    trainer,
    outputDir,
    events,
    callbackOrder,
    trainOutput,
    evalMetrics,
    predictMetrics,
    predictionsShape,
  };
}

/**
 * Our events against a trace's, field for field: every field the trace has for an event
 * (log keys are stored sorted there), epochs to 1e-9.
 */
function expectTraceEvents(ours: RecordedEvent[], theirs: TraceEvent[]): void {
  expect(eventKeys(ours)).toEqual(eventKeys(theirs));
  ours.forEach((event, i) => {
    const { epoch, ...traced } = theirs[i]!;
    const where = `event ${i}: ${traced.event} at step ${traced.global_step}`;
    expect(event.epoch, where).toBeCloseTo(epoch, 9);
    const mine: Record<string, unknown> = {};
    for (const key of Object.keys(traced)) {
      mine[key] =
        key === "log_keys"
          ? [...(event.log_keys ?? [])].sort()
          : (event as unknown as Record<string, unknown>)[key];
    }
    // on_init_end happens before ControlInRecorder joins; its flags are all false on both sides.
    if (i === 0) mine.control_in = traced.control_in;
    expect(mine, where).toEqual(traced);
  });
}

const CASES = ["a", "b", "c", "d", "g_first"] as const;

describe.each(CASES)("case %s against the HF trace", (name) => {
  let trace: TraceCase;
  let result: Run;
  beforeAll(async () => {
    trace = loadTrace(name);
    result = await run({ dir: name, args: argsFromHf(trace.summary.args) });
  });

  test("callback order", () => {
    expect(result.callbackOrder).toEqual(trace.summary.callback_order);
  });

  test("every event: name, global_step, epoch, flags (in and out), log/metric keys, checkpoints, state", () => {
    expectTraceEvents(result.events, trace.events);
  });

  test("on_log keys in HF's insertion order, and log_history's (log_history.json)", () => {
    const logs = result.events.filter((e) => e.event === "on_log");
    expect(logs.map((e) => e.log_keys)).toEqual(
      trace.logHistory.map((entry) => Object.keys(entry).filter((k) => k !== "step")),
    );
    const history = result.trainer.state.logHistory;
    expect(history.map((entry) => Object.keys(entry))).toEqual(
      trace.logHistory.map((entry) => Object.keys(entry)),
    );
    // Steps, epochs and learning rates are HF's numbers (loss values depend on the model).
    history.forEach((entry, i) => {
      const theirs = trace.logHistory[i]!;
      expect(entry.step).toBe(theirs.step);
      expect(entry.epoch).toBeCloseTo(theirs.epoch as number, 9);
      if ("learning_rate" in theirs)
        expect(entry.learning_rate! / (theirs.learning_rate as number)).toBeCloseTo(1, 4);
    });
  });

  test("event counts", () => {
    expect(countEvents(result.events)).toEqual(trace.summary.event_counts);
  });

  test("checkpoints remaining", () => {
    expect(checkpointsIn(result.outputDir)).toEqual(trace.summary.checkpoints_remaining);
  });

  test("last checkpoint's trainer_state.json is HF's text with run-dependent values masked", () => {
    const file = join(result.outputDir, trace.summary.last_checkpoint_state_file);
    const ours = readFileSync(file, "utf8");
    expect(maskTrainerState(ours)).toBe(maskTrainerState(trace.trainerStateText));
    const state = JSON.parse(ours) as Record<string, unknown>;
    // Snapshot taken before on_save's reset: should_save true; the last one also stops.
    expect(state.stateful_callbacks).toEqual(trace.summary.state.stateful_callbacks);
    expect(state.stateful_callbacks).toMatchObject({
      TrainerControl: { args: { should_save: true, should_training_stop: true } },
    });
    // The learning rates stored are HF's, to the last bit (LambdaLR's arithmetic in doubles).
    const theirs = JSON.parse(trace.trainerStateText) as { log_history: Logs[] };
    expect((state.log_history as Logs[]).map((entry) => entry.learning_rate)).toEqual(
      theirs.log_history.map((entry) => entry.learning_rate),
    );
  });

  test("final state and control", () => {
    const state = result.trainer.state;
    const summary = trace.summary.state;
    expect(state.globalStep).toBe(summary.global_step);
    expect(state.epoch).toBeCloseTo(summary.epoch as number, 9);
    expect(state.maxSteps).toBe(summary.max_steps);
    expect(state.numTrainEpochs).toBe(summary.num_train_epochs);
    expect([state.loggingSteps, state.evalSteps, state.saveSteps]).toEqual([
      summary.logging_steps,
      summary.eval_steps,
      summary.save_steps,
    ]);
    expect(state.trainBatchSize).toBe(summary.train_batch_size);
    expect([state.bestMetric, state.bestGlobalStep, state.bestModelCheckpoint]).toEqual([
      null,
      null,
      null,
    ]);
    expect(flagsOf(result.trainer.control)).toEqual(trace.summary.final_control);
  });

  test("train / evaluate / predict outputs", () => {
    const summary = trace.summary;
    expect(result.trainOutput.globalStep).toBe(summary.train_output.global_step);
    // PrinterCallback popped total_flos from the summary log, which train() returns.
    expect(Object.keys(result.trainOutput.metrics).sort()).toEqual(
      summary.train_output.metric_keys,
    );
    expect(result.trainOutput.trainingLoss).toBe(result.trainOutput.metrics.train_loss);
    expect(Object.keys(result.evalMetrics).sort()).toEqual(summary.eval_metric_keys);
    expect(Object.keys(result.predictMetrics).sort()).toEqual(summary.predict_metric_keys);
    // HF's TinyModel squeezes its logits to [16]; a Dense(1) layer predicts [16, 1].
    expect(result.predictionsShape).toEqual([...summary.predictions_shape, 1]);
  });
});

// Scenarios the spec describes without shipping a trace: built from hf-semantics.md's rules.

/** A learning rate at which the tiny model's eval loss moves clearly between evaluations. */
const FAST = { learningRate: 0.01 } as const;

const evalLossAt = (events: RecordedEvent[], step: number): number =>
  events.find((e) => e.event === "on_evaluate" && e.global_step === step)!.metrics!.eval_loss!;

describe("case e: EarlyStoppingCallback (patience 2) stops at step 6", () => {
  let result: Run;
  let early: EarlyStoppingCallback;
  let counterAfterTrain: number;
  beforeAll(async () => {
    early = new EarlyStoppingCallback({ earlyStoppingPatience: 2 });
    const recordCounter = new (class extends TrainerCallback {
      override onTrainEnd() {
        counterAfterTrain = early.earlyStoppingPatienceCounter;
      }
    })();
    result = await run({
      dir: "e",
      // The eval targets are the negated train targets: every step makes eval worse, so the
      // best eval is the first (step 2) and the counter goes 0, 1, 2.
      evalSign: -1,
      args: {
        ...FAST,
        numTrainEpochs: 2,
        evalStrategy: "steps",
        evalSteps: 2,
        saveSteps: 2,
        loadBestModelAtEnd: true,
        metricForBestModel: "loss",
      },
      before: [early],
      after: [recordCounter],
    });
  });

  test("callback order: DefaultFlowCallback, EarlyStoppingCallback, Recorder, ...", () => {
    expect(result.callbackOrder.slice(0, 3)).toEqual([
      "DefaultFlowCallback",
      "EarlyStoppingCallback",
      "Recorder",
    ]);
  });

  test("events: evals at 2, 4, 6; stop at 6 after its save; epoch_end, summary, train_end", () => {
    const expected = new ExpectedEvents()
      .add("on_init_end", 0)
      .add("on_train_begin", 0)
      .add("on_epoch_begin", 0);
    for (let gs = 0; gs < 6; gs++) {
      expected.step(gs);
      if ((gs + 1) % 2 === 0) expected.evaluate(gs + 1).add("on_save", gs + 1);
    }
    expected.add("on_epoch_end", 6).add("on_log", 6).add("on_train_end", 6).evaluate(6).predict(6);
    expect(eventKeys(result.events)).toEqual(expected.list);
    expect(countEvents(result.events)).toEqual(countsFromLine("1,1,1,6,0,6,6,6,5,10,4,3,1,1,1"));
    expect(result.events).toHaveLength(52);
  });

  test("the stop flag is set by on_evaluate at 6 and seen by the recorder, the save and after", () => {
    const at6 = result.events.filter((e) => e.global_step === 6);
    const stopSeen = (event: string) =>
      at6.filter((e) => e.event === event).map((e) => e.control.should_training_stop);
    expect(stopSeen("on_step_end")).toEqual([false]);
    expect(stopSeen("on_evaluate")).toEqual([true, true]);
    expect(stopSeen("on_save")).toEqual([true]);
    expect(stopSeen("on_epoch_end")).toEqual([true]);
    expect(stopSeen("on_train_end")).toEqual([true]);
    const evaluations = result.events.filter((e) => e.event === "on_evaluate");
    expect(evaluations.slice(0, 2).map((e) => e.control.should_training_stop)).toEqual([
      false,
      false,
    ]);
  });

  test("eval loss rises, best stays at step 2; on_evaluate sees the best from before", () => {
    const [l2, l4, l6] = [2, 4, 6].map((step) => evalLossAt(result.events, step));
    expect(l4).toBeGreaterThan(l2!);
    expect(l6).toBeGreaterThan(l4!);
    const evaluations = result.events.filter((e) => e.event === "on_evaluate");
    expect(evaluations.map((e) => e.best_metric_at_event)).toEqual([null, l2, l2, l2]);
    const state = result.trainer.state;
    expect([state.bestMetric, state.bestGlobalStep]).toEqual([l2, 2]);
    expect(state.bestModelCheckpoint).toBe(join(result.outputDir, "checkpoint-2"));
    const saves = result.events.filter((e) => e.event === "on_save");
    expect(saves.map((e) => [e.best_global_step, e.best_model_checkpoint])).toEqual(
      [2, 4, 6].map(() => [2, join(result.outputDir, "checkpoint-2")]),
    );
  });

  test("checkpoint-6 stores counter 2; the post-train evaluate makes it 3", () => {
    const saved = JSON.parse(
      readFileSync(join(result.outputDir, "checkpoint-6", "trainer_state.json"), "utf8"),
    ) as { stateful_callbacks: Record<string, StateRecord> };
    expect(saved.stateful_callbacks.EarlyStoppingCallback).toEqual({
      args: { early_stopping_patience: 2, early_stopping_threshold: 0.0 },
      attributes: { early_stopping_patience_counter: 2 },
    });
    expect(saved.stateful_callbacks.TrainerControl!.args).toMatchObject({
      should_save: true,
      should_training_stop: true,
    });
    expect(counterAfterTrain).toBe(2);
    expect(early.earlyStoppingPatienceCounter).toBe(3);
    expect(checkpointsIn(result.outputDir)).toEqual([
      "checkpoint-2",
      "checkpoint-4",
      "checkpoint-6",
    ]);
  });

  test("loadBestModelAtEnd: the post-train eval loss is step 2's", () => {
    expect(result.evalMetrics.eval_loss).toBe(evalLossAt(result.events, 2));
  });
});

describe("case f: saveTotalLimit rotation and the best checkpoint", () => {
  const fArgs: TrainingArgumentsOptions = {
    ...FAST,
    numTrainEpochs: 2,
    evalStrategy: "steps",
    evalSteps: 2,
    saveSteps: 2,
    saveTotalLimit: 2,
    loadBestModelAtEnd: true,
  };

  test("f (eval improves): keeps [14, 16]; best becomes checkpoint-4 in the step-4 save", async () => {
    const result = await run({ dir: "f", args: fArgs });
    // on_epoch_end at 8 comes after step 8's evaluate and save.
    const expected = new ExpectedEvents()
      .add("on_init_end", 0)
      .add("on_train_begin", 0)
      .add("on_epoch_begin", 0);
    for (let gs = 0; gs < 16; gs++) {
      expected.step(gs);
      if ((gs + 1) % 2 === 0) expected.evaluate(gs + 1).add("on_save", gs + 1);
      if (gs + 1 === 8) expected.add("on_epoch_end", 8).add("on_epoch_begin", 8);
    }
    expected
      .add("on_epoch_end", 16)
      .add("on_log", 16)
      .add("on_train_end", 16)
      .evaluate(16)
      .predict(16);
    expect(eventKeys(result.events)).toEqual(expected.list);
    expect(countEvents(result.events)).toEqual(
      countsFromLine("1,1,2,16,0,16,16,16,10,20,9,8,2,1,1"),
    );
    expect(result.events).toHaveLength(119);

    const saves = result.events.filter((e) => e.event === "on_save");
    expect(saves.map((e) => e.best_global_step)).toEqual([2, 4, 6, 8, 10, 12, 14, 16]);
    expect(saves[1]!.best_model_checkpoint).toBe(join(result.outputDir, "checkpoint-4"));
    expect(saves.map((e) => e.checkpoints)).toEqual([
      ["checkpoint-2"],
      ["checkpoint-2", "checkpoint-4"],
      ["checkpoint-4", "checkpoint-6"],
      ["checkpoint-6", "checkpoint-8"],
      ["checkpoint-8", "checkpoint-10"],
      ["checkpoint-10", "checkpoint-12"],
      ["checkpoint-12", "checkpoint-14"],
      ["checkpoint-14", "checkpoint-16"],
    ]);
    expect(checkpointsIn(result.outputDir)).toEqual(["checkpoint-14", "checkpoint-16"]);
    expect(result.evalMetrics.eval_loss).toBe(evalLossAt(result.events, 16));
  });

  test("f_best_first (eval gets worse): keeps [2, 16]; best reloaded before on_train_end", async () => {
    let lossAtTrainEnd: number | undefined;
    const probe = new (class extends TrainerCallback {
      override onTrainEnd(
        _a: TrainingArguments,
        _s: TrainerState,
        _c: TrainerControl,
        ctx: CallbackContext,
      ) {
        const model = ctx.model as TrainableModel;
        const data = tinyData(16, 1, -1);
        lossAtTrainEnd = tf.tidy(() => model.computeLoss(data, { training: false }).dataSync()[0]);
        tf.dispose([data.x, data.y]);
      }
    })();
    const result = await run({ dir: "f_best_first", args: fArgs, evalSign: -1, after: [probe] });
    const best = evalLossAt(result.events, 2);
    expect(countEvents(result.events)).toEqual(
      countsFromLine("1,1,2,16,0,16,16,16,10,20,9,8,2,1,1"),
    );
    expect(checkpointsIn(result.outputDir)).toEqual(["checkpoint-2", "checkpoint-16"]);
    expect(result.trainer.state.bestModelCheckpoint).toBe(join(result.outputDir, "checkpoint-2"));
    expect(result.evalMetrics.eval_loss).toBe(best);
    // The model on_train_end sees is the best one already (the summary log came before).
    expect(lossAtTrainEnd).toBeCloseTo(best, 4);
    const summary = result.events.findIndex(
      (e) => e.event === "on_log" && e.log_keys!.includes("train_loss"),
    );
    expect(result.events[summary + 1]!.event).toBe("on_train_end");
  });

  test("saveTotalLimit 1 with a best that is not the last: only the best is left at the end", async () => {
    const result = await run({
      dir: "f_limit_1",
      args: { ...fArgs, saveTotalLimit: 1 },
      evalSign: -1,
      trainOnly: true,
    });
    const saves = result.events.filter((e) => e.event === "on_save");
    // During training the limit is 2 whenever the best is not the newest (HF's rule).
    expect(saves.map((e) => e.checkpoints)).toEqual([
      ["checkpoint-2"],
      ...[4, 6, 8, 10, 12, 14, 16].map((step) => ["checkpoint-2", `checkpoint-${step}`]),
    ]);
    // Deleted after the summary log, before on_train_end.
    expect(result.events.find((e) => e.event === "on_train_end")!.checkpoints).toEqual([
      "checkpoint-2",
    ]);
    expect(checkpointsIn(result.outputDir)).toEqual(["checkpoint-2"]);
  });
});

/** Stops training in on_save at `step`: a run "interrupted" right after that checkpoint. */
class StopAfterSave extends TrainerCallback {
  constructor(private readonly step: number) {
    super();
  }
  override onSave(_args: TrainingArguments, state: TrainerState, control: TrainerControl) {
    if (state.globalStep === this.step) control.shouldTrainingStop = true;
  }
}

describe("case g: resume from checkpoint-3 of g_first in a new Trainer", () => {
  let trace: TraceCase;
  let uninterrupted: Run;
  let resumed: Run;
  let resumedRestoring: Run;
  /** The events HF's g run gave: g_first's from step 4 on, after init_end, train/epoch begin. */
  let expected: TraceEvent[];
  beforeAll(async () => {
    trace = loadTrace("g_first");
    const args = argsFromHf(trace.summary.args);
    uninterrupted = await run({ dir: "g_uninterrupted", args });
    await run({ dir: "g", args, after: [new StopAfterSave(3)], trainOnly: true });
    const resume = { resumeFromCheckpoint: join(work, "g", "checkpoint-3") };
    // HF's trace ran with HF's default, restore_callback_states_from_checkpoint=False.
    resumed = await run({
      dir: "g",
      args: { ...args, restoreCallbackStatesFromCheckpoint: false },
      ...resume,
    });
    cpSync(join(work, "g", "checkpoint-3"), join(work, "g_restoring", "checkpoint-3"), {
      recursive: true,
    });
    resumedRestoring = await run({
      dir: "g_restoring",
      args,
      resumeFromCheckpoint: join(work, "g_restoring", "checkpoint-3"),
    });

    const [initEnd, trainBegin, epochBegin] = trace.events;
    const resumedAt = { global_step: 3, epoch: 0.375 };
    const firstStep4 = trace.events.findIndex(
      (e) => e.event === "on_step_begin" && e.global_step === 3,
    );
    expected = [
      initEnd!,
      {
        ...trainBegin!,
        ...resumedAt,
        state: { ...trainBegin!.state, log_history_len: 1 },
      },
      { ...epochBegin!, ...resumedAt },
      ...trace.events.slice(firstStep4),
    ];
  });

  test("events: g_first's from step 4 on, after init_end@0, train_begin@3, epoch_begin@3", () => {
    expectTraceEvents(resumed.events, expected);
    expect(countEvents(resumed.events)).toEqual(countsFromLine("1,1,1,3,0,3,3,3,5,8,3,1,1,1,1"));
    expect(resumed.events).toHaveLength(35);
  });

  test("trainkit's default restores the checkpoint's control with on_save's reset applied", () => {
    // DELIBERATE DIFFERENCE (args default): restoreCallbackStatesFromCheckpoint is true in
    // trainkit. The checkpoint's TrainerControl snapshot is taken before on_save's reset
    // (should_save true); trainkit applies that reset when restoring, so the resumed run sees
    // the flags an unbroken run has after on_save: here the same events as HF's trace.
    expectTraceEvents(resumedRestoring.events, expected);
  });

  test("the loaded log_history has 1 entry, its keys sorted (JSON round-trip)", () => {
    const history = resumed.trainer.state.logHistory;
    expect(Object.keys(history[0]!)).toEqual([
      "epoch",
      "grad_norm",
      "learning_rate",
      "loss",
      "step",
    ]);
    expect(history.map((e) => e.step)).toEqual([3, 5, 6, 6, 6, 6]);
  });

  test("steps 4..6 log the same loss, grad_norm, learning_rate and eval_loss as the uninterrupted run", () => {
    const after3 = (r: Run) =>
      r.events.filter((e) => e.event === "on_log" && e.global_step > 3).map((e) => e.logs!);
    const ours = after3(resumed);
    const theirs = after3(uninterrupted);
    expect(ours.map((l) => Object.keys(l))).toEqual(theirs.map((l) => Object.keys(l)));
    const keys = ["loss", "grad_norm", "learning_rate", "eval_loss", "epoch"];
    const values = (logs: Logs[]) =>
      logs.map((l) => Object.fromEntries(keys.filter((k) => k in l).map((k) => [k, l[k]])));
    expect(values(ours)).toEqual(values(theirs));
    expect(resumed.evalMetrics.eval_loss).toBe(uninterrupted.evalMetrics.eval_loss);
  });

  test("train_loss equals the uninterrupted run's (a deliberate difference from HF)", () => {
    // DELIBERATE DIFFERENCE: HF does not save the unlogged loss accumulators, so its resumed
    // run divides only its own losses by global_step (9.96665 against 27.0974). trainkit keeps
    // them in loop_state.json, and the resumed run reports the uninterrupted run's train_loss.
    expect(resumed.trainOutput.trainingLoss).toBe(uninterrupted.trainOutput.trainingLoss);
    expect(resumed.trainOutput.metrics.train_loss).toBe(
      uninterrupted.trainOutput.metrics.train_loss,
    );
  });

  test("the final checkpoint equals the uninterrupted run's, up to runtimes", () => {
    const read = (r: Run) =>
      readFileSync(join(r.outputDir, "checkpoint-6", "trainer_state.json"), "utf8").replace(
        /"(eval_runtime|eval_samples_per_second|eval_steps_per_second)": [\d.e+-]+/g,
        '"$1": <time>',
      );
    expect(read(resumed)).toBe(read(uninterrupted));
    expect(checkpointsIn(resumed.outputDir)).toEqual(["checkpoint-3", "checkpoint-6"]);
  });
});

describe("resume with gradient accumulation (case c's arguments, checkpoint at every step)", () => {
  test("resuming from checkpoint-1 and checkpoint-4 continues exactly", async () => {
    const args: TrainingArgumentsOptions = {
      ...argsFromHf(loadTrace("c").summary.args),
      saveSteps: 1,
    };
    const full = await run({ dir: "c_full", args, trainOnly: true });
    const logsAfter = (r: Run, step: number) =>
      r.events
        .filter((e) => e.event === "on_log" && e.global_step > step && "loss" in e.logs!)
        .map((e) => e.logs!);
    for (const step of [1, 4]) {
      const dir = `c_resume_${step}`;
      await run({ dir, args, after: [new StopAfterSave(step)], trainOnly: true });
      const resumed = await run({
        dir,
        args,
        resumeFromCheckpoint: join(work, dir, `checkpoint-${step}`),
        trainOnly: true,
      });
      const fromStep = full.events.findIndex(
        (e) => e.event === "on_step_begin" && e.global_step === step,
      );
      // After init_end, train_begin and epoch_begin: the unbroken run's events from `step` on.
      expect(eventKeys(resumed.events.slice(3))).toEqual(eventKeys(full.events.slice(fromStep)));
      resumed.events.slice(3).forEach((event, i) => {
        expect(event.epoch).toBe(full.events[fromStep + i]!.epoch);
      });
      expect(logsAfter(resumed, step)).toEqual(logsAfter(full, step));
      expect(resumed.trainOutput.trainingLoss).toBe(full.trainOutput.trainingLoss);
    }
  });
});

describe("logging_nan_inf_filter", () => {
  /** MSE, plus NaN (with no gradient) during the update step that starts at `nanAt`. */
  function poisoned(nanAt: number) {
    let poison = false;
    const toggle = new (class extends TrainerCallback {
      override onStepBegin(_a: TrainingArguments, state: TrainerState) {
        poison = state.globalStep === nanAt;
      }
      override onStepEnd() {
        poison = false;
      }
    })();
    const loss: LossFunction = (y, p) => {
      const mse = tf.mean(tf.square(tf.sub(p, y))) as tf.Scalar;
      return poison ? tf.add(mse, tf.scalar(Number.NaN)) : mse;
    };
    return { toggle, loss };
  }

  const args: TrainingArgumentsOptions = { maxSteps: 8, loggingSteps: 4 };

  test("a NaN step loss counts as tr_loss / (1 + gs - last_logged), HF's replacement", async () => {
    // The per-step losses, from a clean run that logs every step (same weights: the NaN has
    // no gradient).
    const clean = await run({
      dir: "nan_clean",
      args: { ...args, loggingSteps: 1 },
      trainOnly: true,
    });
    const steps = clean.events.filter((e) => e.event === "on_log" && "loss" in e.logs!);
    const l = steps.map((e) => e.logs!.loss!);
    expect(l).toHaveLength(8);
    // The third step (global_step 2 while it runs) is NaN.
    const { toggle, loss } = poisoned(2);
    const result = await run({
      dir: "nan_filter",
      args,
      before: [toggle],
      loss,
      trainOnly: true,
    });
    const logged = result.events.filter((e) => e.event === "on_log" && "loss" in e.logs!);
    expect(logged.map((e) => e.global_step)).toEqual([4, 8]);
    // HF's tr_loss is a float32 tensor: replay its sums in float32.
    const f = Math.fround;
    let tr = f(l[0]! + l[1]!);
    tr = f(tr + f(tr / (1 + 2 - 0))); // the NaN step: tr_loss / (1 + global_step - last logged)
    tr = f(tr + l[3]!);
    expect(logged[0]!.logs!.loss).toBe(tr / 4);
    expect(Number.isFinite(result.trainOutput.trainingLoss)).toBe(true);
    // The NaN never reached the weights: the second window is the clean run's.
    expect(logged[1]!.logs!.loss).toBe(f(f(f(l[4]! + l[5]!) + l[6]!) + l[7]!) / 4);
    expect(logged.map((e) => e.logs!.grad_norm)).toEqual([
      steps[3]!.logs!.grad_norm,
      steps[7]!.logs!.grad_norm,
    ]);
  });

  test("with the filter off, the logged loss and train_loss are NaN", async () => {
    const { toggle, loss } = poisoned(2);
    const result = await run({
      dir: "nan_no_filter",
      args: { ...args, loggingNanInfFilter: false },
      before: [toggle],
      loss,
      trainOnly: true,
    });
    const logged = result.events.filter((e) => e.event === "on_log" && "loss" in e.logs!);
    expect(logged[0]!.logs!.loss).toBeNaN();
    expect(logged[1]!.logs!.loss).not.toBeNaN();
    expect(result.trainOutput.trainingLoss).toBeNaN();
  });
});

describe("data order", () => {
  test("follows args.seed (or dataSeed) from the first train()", async () => {
    const firstLosses = async (dir: string, args: TrainingArgumentsOptions) => {
      const result = await run({
        dir,
        args: { maxSteps: 3, loggingSteps: 1, ...args },
        trainOnly: true,
      });
      return result.events
        .filter((e) => e.event === "on_log" && "loss" in e.logs!)
        .map((e) => e.logs!.loss);
    };
    const seed7 = await firstLosses("seed_7", { seed: 7 });
    expect(await firstLosses("seed_8", { seed: 8 })).not.toEqual(seed7);
    expect(await firstLosses("data_seed_7", { seed: 8, dataSeed: 7 })).toEqual(seed7);
  });
});

describe("evalOnStart", () => {
  test("evaluates after on_train_begin without touching the best metric (HF's _evaluate)", async () => {
    const result = await run({
      dir: "eval_on_start",
      args: {
        maxSteps: 2,
        evalStrategy: "steps",
        evalSteps: 2,
        evalOnStart: true,
        metricForBestModel: "loss",
      },
      trainOnly: true,
    });
    const expected = new ExpectedEvents()
      .add("on_init_end", 0)
      .add("on_train_begin", 0)
      .evaluate(0)
      .add("on_epoch_begin", 0)
      .step(0)
      .step(1)
      .evaluate(2)
      .add("on_save", 2)
      .add("on_epoch_end", 2)
      .add("on_log", 2)
      .add("on_train_end", 2);
    expect(eventKeys(result.events)).toEqual(expected.list);
    const evaluations = result.events.filter((e) => e.event === "on_evaluate");
    expect(evaluations.map((e) => e.best_metric_at_event)).toEqual([null, null]);
    const state = result.trainer.state;
    expect([state.bestMetric, state.bestGlobalStep]).toEqual([evalLossAt(result.events, 2), 2]);
  });
});

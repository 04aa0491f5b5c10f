// EarlyStoppingCallback: HF's counting rule, the stop flag, case e of hf-semantics.md,
// argument checks, and its state in checkpoints.
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import {
  CallbackHandler,
  DefaultFlowCallback,
  EarlyStoppingCallback,
  TrainerCallback,
  TrainerControl,
  TrainerState,
  TrainingArguments,
  parsePythonJson,
  setLogger,
  type Logger,
  type StateRecord,
  type TrainingArgumentsOptions,
} from "../src/index.js";

let warnings: string[] = [];
let previousLogger: Logger;
beforeEach(() => {
  warnings = [];
  previousLogger = setLogger({ info: () => {}, warn: (message) => warnings.push(message) });
});
afterEach(() => setLogger(previousLogger));

function makeArgs(options: TrainingArgumentsOptions = {}): TrainingArguments {
  return new TrainingArguments({
    reportTo: "none",
    disableTqdm: true,
    evalStrategy: "steps",
    evalSteps: 2,
    metricForBestModel: "loss",
    ...options,
  });
}

/** Runs the callback's onEvaluate with `metrics` and returns the control. */
function evaluate(
  callback: EarlyStoppingCallback,
  args: TrainingArguments,
  state: TrainerState,
  metrics: Record<string, number>,
  control = new TrainerControl(),
): TrainerControl {
  callback.onEvaluate(args, state, control, { metrics });
  return control;
}

describe("counting", () => {
  test("best metric null counts as an improvement (counter 0)", () => {
    const callback = new EarlyStoppingCallback();
    callback.earlyStoppingPatienceCounter = 5;
    const state = new TrainerState();
    expect(state.bestMetric).toBeNull();
    evaluate(callback, makeArgs(), state, { eval_loss: 100 });
    expect(callback.earlyStoppingPatienceCounter).toBe(0);
  });

  test("lower is better for a loss: an improvement resets, no improvement counts", () => {
    const args = makeArgs();
    expect(args.greaterIsBetter).toBe(false);
    const callback = new EarlyStoppingCallback({ earlyStoppingPatience: 10 });
    const state = new TrainerState({ bestMetric: 1 });
    evaluate(callback, args, state, { eval_loss: 1.5 });
    expect(callback.earlyStoppingPatienceCounter).toBe(1);
    evaluate(callback, args, state, { eval_loss: 1 }); // equal is not better
    expect(callback.earlyStoppingPatienceCounter).toBe(2);
    evaluate(callback, args, state, { eval_loss: 0.9 });
    expect(callback.earlyStoppingPatienceCounter).toBe(0);
  });

  test("greaterIsBetter true: higher values improve", () => {
    const args = makeArgs({ metricForBestModel: "accuracy" });
    expect(args.greaterIsBetter).toBe(true);
    const callback = new EarlyStoppingCallback({ earlyStoppingPatience: 10 });
    const state = new TrainerState({ bestMetric: 0.8 });
    evaluate(callback, args, state, { eval_accuracy: 0.7 });
    expect(callback.earlyStoppingPatienceCounter).toBe(1);
    evaluate(callback, args, state, { eval_accuracy: 0.8 });
    expect(callback.earlyStoppingPatienceCounter).toBe(2);
    evaluate(callback, args, state, { eval_accuracy: 0.9 });
    expect(callback.earlyStoppingPatienceCounter).toBe(0);
  });

  test("greaterIsBetter set explicitly wins over the metric name", () => {
    const args = makeArgs({ metricForBestModel: "loss", greaterIsBetter: true });
    const callback = new EarlyStoppingCallback({ earlyStoppingPatience: 10 });
    const state = new TrainerState({ bestMetric: 1 });
    evaluate(callback, args, state, { eval_loss: 0.5 });
    expect(callback.earlyStoppingPatienceCounter).toBe(1);
    evaluate(callback, args, state, { eval_loss: 2 });
    expect(callback.earlyStoppingPatienceCounter).toBe(0);
  });

  test("the threshold: an improvement must be strictly larger than it", () => {
    const args = makeArgs();
    const callback = new EarlyStoppingCallback({
      earlyStoppingPatience: 10,
      earlyStoppingThreshold: 0.25,
    });
    const state = new TrainerState({ bestMetric: 1 });
    evaluate(callback, args, state, { eval_loss: 0.9 }); // better by 0.1 only
    expect(callback.earlyStoppingPatienceCounter).toBe(1);
    evaluate(callback, args, state, { eval_loss: 0.75 }); // better by exactly 0.25
    expect(callback.earlyStoppingPatienceCounter).toBe(2);
    evaluate(callback, args, state, { eval_loss: 0.7 }); // better by 0.3
    expect(callback.earlyStoppingPatienceCounter).toBe(0);
    evaluate(callback, args, state, { eval_loss: 1.5 }); // worse by more than the threshold
    expect(callback.earlyStoppingPatienceCounter).toBe(1);
  });

  test("the threshold applies with greaterIsBetter too", () => {
    const args = makeArgs({ metricForBestModel: "accuracy" });
    const callback = new EarlyStoppingCallback({
      earlyStoppingPatience: 10,
      earlyStoppingThreshold: 0.05,
    });
    const state = new TrainerState({ bestMetric: 0.8 });
    evaluate(callback, args, state, { eval_accuracy: 0.84 });
    expect(callback.earlyStoppingPatienceCounter).toBe(1);
    evaluate(callback, args, state, { eval_accuracy: 0.86 });
    expect(callback.earlyStoppingPatienceCounter).toBe(0);
  });

  test("it compares with state.bestMetric from before the eval, and never updates it", () => {
    const args = makeArgs();
    const callback = new EarlyStoppingCallback({ earlyStoppingPatience: 10 });
    const state = new TrainerState({ bestMetric: 1 });
    evaluate(callback, args, state, { eval_loss: 0.5 });
    expect(state.bestMetric).toBe(1);
    // Still compared with 1, not with 0.5: 0.7 is an improvement.
    evaluate(callback, args, state, { eval_loss: 0.7 });
    expect(callback.earlyStoppingPatienceCounter).toBe(0);
  });

  test("metricForBestModel may carry the eval_ prefix", () => {
    const args = makeArgs({ metricForBestModel: "eval_loss" });
    const callback = new EarlyStoppingCallback({ earlyStoppingPatience: 10 });
    evaluate(callback, args, new TrainerState({ bestMetric: 1 }), { eval_loss: 2 });
    expect(callback.earlyStoppingPatienceCounter).toBe(1);
  });

  test("a missing metric warns and changes nothing", () => {
    const args = makeArgs({ metricForBestModel: "accuracy" });
    const callback = new EarlyStoppingCallback();
    callback.earlyStoppingPatienceCounter = 3;
    const control = evaluate(callback, args, new TrainerState({ bestMetric: 1 }), {
      eval_loss: 2,
    });
    expect(callback.earlyStoppingPatienceCounter).toBe(3);
    expect({ ...control }).toEqual({ ...new TrainerControl() });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("eval_accuracy");
    // Missing metrics altogether behave the same.
    callback.onEvaluate(args, new TrainerState(), control, {});
    expect(callback.earlyStoppingPatienceCounter).toBe(3);
    expect(warnings).toHaveLength(2);
  });
});

describe("stopping", () => {
  test("sets shouldTrainingStop when the counter reaches patience, not before", () => {
    const args = makeArgs();
    const callback = new EarlyStoppingCallback({ earlyStoppingPatience: 3 });
    const state = new TrainerState({ bestMetric: 1 });
    expect(evaluate(callback, args, state, { eval_loss: 2 }).shouldTrainingStop).toBe(false);
    expect(evaluate(callback, args, state, { eval_loss: 2 }).shouldTrainingStop).toBe(false);
    expect(evaluate(callback, args, state, { eval_loss: 2 }).shouldTrainingStop).toBe(true);
    expect(callback.earlyStoppingPatienceCounter).toBe(3);
    // counter >= patience: still stopping at 4.
    expect(evaluate(callback, args, state, { eval_loss: 2 }).shouldTrainingStop).toBe(true);
  });

  test("it never clears a stop flag set by someone else", () => {
    const callback = new EarlyStoppingCallback({ earlyStoppingPatience: 3 });
    const control = new TrainerControl({ shouldTrainingStop: true });
    evaluate(callback, makeArgs(), new TrainerState(), { eval_loss: 1 }, control);
    expect(control.shouldTrainingStop).toBe(true);
  });

  test("a later callback in the same onEvaluate already sees the stop", () => {
    const seen: boolean[] = [];
    class Later extends TrainerCallback {
      override onEvaluate(_a: TrainingArguments, _s: TrainerState, control: TrainerControl) {
        seen.push(control.shouldTrainingStop);
      }
    }
    const args = makeArgs();
    const handler = new CallbackHandler([
      DefaultFlowCallback,
      new EarlyStoppingCallback({ earlyStoppingPatience: 1 }),
      Later,
    ]);
    const state = new TrainerState({ bestMetric: 1, maxSteps: 100 });
    const control = new TrainerControl();
    handler.onEvaluate(args, state, control, { metrics: { eval_loss: 0.5 } });
    handler.onEvaluate(args, state, control, { metrics: { eval_loss: 1.5 } });
    expect(seen).toEqual([false, true]);
    expect(control.shouldTrainingStop).toBe(true);
  });
});

describe("case e (hf-semantics.md, Early stopping)", () => {
  test("evals at 2, 4, 6 count 0, 1, 2 and stop; the post-train evaluate makes it 3", () => {
    const args = makeArgs({
      maxSteps: 16,
      loggingSteps: 500,
      evalSteps: 2,
      saveSteps: 2,
      loadBestModelAtEnd: true,
    });
    expect(args.metricForBestModel).toBe("loss");
    const early = new EarlyStoppingCallback({ earlyStoppingPatience: 2 });
    const counters: { gs: number; counter: number; best: number | null }[] = [];
    const saved: Record<number, string> = {};
    class Recorder extends TrainerCallback {
      override onEvaluate(_a: TrainingArguments, state: TrainerState) {
        counters.push({
          gs: state.globalStep,
          counter: early.earlyStoppingPatienceCounter,
          best: state.bestMetric,
        });
      }
    }
    const handler = new CallbackHandler([DefaultFlowCallback, early, Recorder]);
    const evalLosses: Record<number, number> = { 2: 42.497, 4: 42.51, 6: 42.52, 8: 42.4 };
    let state = new TrainerState();
    let control = new TrainerControl();
    control = handler.onInitEnd(args, state, control) as TrainerControl;
    state = new TrainerState({ maxSteps: 16, trainBatchSize: 8, numTrainEpochs: 2 });
    state.computeSteps(args, 16);
    control = handler.onTrainBegin(args, state, control) as TrainerControl;
    expect(warnings).toEqual([]); // loadBestModelAtEnd is set: no warning

    const runEvaluate = () => {
      const metrics = { eval_loss: evalLosses[state.globalStep] ?? 42.497, epoch: state.epoch };
      control = handler.onEvaluate(args, state, control, { metrics }) as TrainerControl;
      // The Trainer updates the best metric after evaluate() returned (after onEvaluate).
      if (state.bestMetric === null || metrics.eval_loss < state.bestMetric) {
        state.bestMetric = metrics.eval_loss;
        state.bestGlobalStep = state.globalStep;
      }
    };

    control = handler.onEpochBegin(args, state, control) as TrainerControl;
    for (let step = 0; step < 16 && !control.shouldTrainingStop; step++) {
      control = handler.onStepBegin(args, state, control) as TrainerControl;
      state.globalStep += 1;
      state.epoch = (step + 1) / 8;
      control = handler.onStepEnd(args, state, control) as TrainerControl;
      if (control.shouldEvaluate) runEvaluate();
      if (control.shouldSave) {
        state.setStatefulCallbacks([...handler.callbacks, control]);
        saved[state.globalStep] = state.toJsonString();
        control = handler.onSave(args, state, control) as TrainerControl;
      }
    }
    control = handler.onEpochEnd(args, state, control) as TrainerControl;
    control = handler.onTrainEnd(args, state, control) as TrainerControl;

    expect(state.globalStep).toBe(6);
    expect(counters).toEqual([
      { gs: 2, counter: 0, best: null },
      { gs: 4, counter: 1, best: 42.497 },
      { gs: 6, counter: 2, best: 42.497 },
    ]);
    expect(control.shouldTrainingStop).toBe(true);
    expect(Object.keys(saved)).toEqual(["2", "4", "6"]);

    // checkpoint-6 stores counter 2, under HF's keys.
    const stored = parsePythonJson(saved[6]!) as {
      stateful_callbacks: Record<string, StateRecord>;
    };
    expect(stored.stateful_callbacks.EarlyStoppingCallback).toEqual({
      args: { early_stopping_patience: 2, early_stopping_threshold: 0 },
      attributes: { early_stopping_patience_counter: 2 },
    });
    expect(saved[6]).toContain('"early_stopping_threshold": 0.0');
    expect(stored.stateful_callbacks.TrainerControl!.args).toMatchObject({
      should_save: true,
      should_training_stop: true,
    });

    // Post-train evaluate (best model reloaded: 42.497 again, not strictly better): 3.
    runEvaluate();
    expect(counters.at(-1)).toEqual({ gs: 6, counter: 3, best: 42.497 });
    expect(early.earlyStoppingPatienceCounter).toBe(3);
    expect(control.shouldTrainingStop).toBe(true);
  });
});

describe("argument checks", () => {
  test("metricForBestModel null: a clear error", () => {
    const args = new TrainingArguments({
      reportTo: "none",
      evalStrategy: "steps",
      loadBestModelAtEnd: false,
      metricForBestModel: null,
    });
    const callback = new EarlyStoppingCallback();
    expect(() => callback.checkArgs(args)).toThrow(/metricForBestModel/);
    expect(() => callback.onTrainBegin(args)).toThrow(/EarlyStoppingCallback requires/);
    expect(() => callback.onInitEnd(args)).toThrow(/metricForBestModel/);
  });

  test('evalStrategy "no": a clear error', () => {
    const args = Object.assign(new TrainingArguments({ reportTo: "none" }), {
      evalStrategy: "no",
      metricForBestModel: "loss",
    });
    const callback = new EarlyStoppingCallback();
    expect(() => callback.checkArgs(args)).toThrow(/evalStrategy/);
    expect(() => callback.checkArgs(args)).toThrow(/"no"/);
    expect(() => callback.onTrainBegin(args)).toThrow(/evalStrategy/);
  });

  test("valid args pass; without loadBestModelAtEnd onTrainBegin warns", () => {
    const callback = new EarlyStoppingCallback();
    const args = makeArgs();
    expect(() => callback.checkArgs(args)).not.toThrow();
    callback.onTrainBegin(args);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("loadBestModelAtEnd");
    callback.onTrainBegin(makeArgs({ loadBestModelAtEnd: true, saveSteps: 2 }));
    expect(warnings).toHaveLength(1);
  });

  test("the constructor rejects invalid patience and threshold", () => {
    for (const earlyStoppingPatience of [0, -1, 1.5, NaN, Infinity]) {
      expect(() => new EarlyStoppingCallback({ earlyStoppingPatience })).toThrow(
        /earlyStoppingPatience/,
      );
    }
    for (const earlyStoppingThreshold of [-0.1, NaN, Infinity]) {
      expect(() => new EarlyStoppingCallback({ earlyStoppingThreshold })).toThrow(
        /earlyStoppingThreshold/,
      );
    }
  });

  test("defaults: patience 1, threshold 0, counter 0", () => {
    const callback = new EarlyStoppingCallback();
    expect(callback.earlyStoppingPatience).toBe(1);
    expect(callback.earlyStoppingThreshold).toBe(0);
    expect(callback.earlyStoppingPatienceCounter).toBe(0);
  });
});

describe("state", () => {
  test("state() uses HF's snake_case keys", () => {
    const callback = new EarlyStoppingCallback({
      earlyStoppingPatience: 3,
      earlyStoppingThreshold: 0.01,
    });
    callback.earlyStoppingPatienceCounter = 2;
    expect(callback.state()).toEqual({
      args: { early_stopping_patience: 3, early_stopping_threshold: 0.01 },
      attributes: { early_stopping_patience_counter: 2 },
    });
  });

  test("fromState(state()) round-trips", () => {
    const callback = new EarlyStoppingCallback({
      earlyStoppingPatience: 4,
      earlyStoppingThreshold: 0.5,
    });
    callback.earlyStoppingPatienceCounter = 3;
    const restored = EarlyStoppingCallback.fromState(callback.state());
    expect(restored).toBeInstanceOf(EarlyStoppingCallback);
    expect(restored).not.toBe(callback);
    expect(restored.earlyStoppingPatience).toBe(4);
    expect(restored.earlyStoppingThreshold).toBe(0.5);
    expect(restored.earlyStoppingPatienceCounter).toBe(3);
    expect(restored.state()).toEqual(callback.state());
  });

  test("fromState reads a record as HF writes it (through JSON)", () => {
    const record = parsePythonJson(
      '{"args": {"early_stopping_patience": 2, "early_stopping_threshold": 0.0}, ' +
        '"attributes": {"early_stopping_patience_counter": 1}}',
    ) as StateRecord;
    const restored = EarlyStoppingCallback.fromState(record);
    expect(restored.state()).toEqual(record);
  });

  test("TrainerState.statefulCallbacks stores it by class name, a list for two instances", () => {
    const one = new EarlyStoppingCallback({ earlyStoppingPatience: 2 });
    one.earlyStoppingPatienceCounter = 1;
    const two = new EarlyStoppingCallback({ earlyStoppingPatience: 5 });
    const control = new TrainerControl({ shouldSave: true });

    const single = new TrainerState({
      statefulCallbacks: [new DefaultFlowCallback(), one, control],
    });
    expect(single.statefulCallbacks).toEqual({
      EarlyStoppingCallback: one.state(),
      TrainerControl: control.state(),
    });

    const state = new TrainerState();
    state.setStatefulCallbacks([new DefaultFlowCallback(), one, two, control]);
    expect(state.statefulCallbacks).toEqual({
      EarlyStoppingCallback: [one.state(), two.state()],
      TrainerControl: control.state(),
    });
    const json = parsePythonJson(state.toJsonString()) as Record<string, unknown>;
    expect(json.stateful_callbacks).toEqual(state.statefulCallbacks);
  });
});

// DefaultFlowCallback: every rule of hf-semantics.md "Control flags", then a replay of the
// recorded HF traces through CallbackHandler [DefaultFlowCallback, Recorder], event for event.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, test } from "vitest";
import {
  CallbackHandler,
  DefaultFlowCallback,
  TrainerCallback,
  TrainerControl,
  TrainerState,
  TrainingArguments,
  type CallbackEvent,
  type TrainerControlFlags,
  type TrainingArgumentsOptions,
} from "../src/index.js";

const TRACES = resolve(import.meta.dirname, "fixtures/hf-traces");

function makeArgs(options: TrainingArgumentsOptions = {}): TrainingArguments {
  return new TrainingArguments({ reportTo: "none", disableTqdm: true, ...options });
}

/** A state as train() builds it: maxSteps and the resolved *_steps. */
function makeState(args: TrainingArguments, maxSteps: number): TrainerState {
  const state = new TrainerState({ maxSteps });
  state.computeSteps(args, maxSteps);
  return state;
}

/** Runs onStepEnd at `globalStep` on a fresh control and returns the flags it set. */
function stepEnd(args: TrainingArguments, state: TrainerState, globalStep: number) {
  state.globalStep = globalStep;
  const control = new TrainerControl();
  const result = new DefaultFlowCallback().onStepEnd(args, state, control);
  expect(result).toBe(control);
  return { ...control };
}

function epochEnd(args: TrainingArguments, state: TrainerState, epoch: number) {
  state.epoch = epoch;
  const control = new TrainerControl();
  const result = new DefaultFlowCallback().onEpochEnd(args, state, control);
  expect(result).toBe(control);
  return { ...control };
}

/** The global steps in 1..maxSteps at which onStepEnd sets `flag`. */
function stepsWith(
  args: TrainingArguments,
  state: TrainerState,
  flag: keyof TrainerControlFlags,
): number[] {
  const steps: number[] = [];
  for (let gs = 1; gs <= state.maxSteps; gs++) if (stepEnd(args, state, gs)[flag]) steps.push(gs);
  return steps;
}

const NONE = {
  shouldTrainingStop: false,
  shouldEpochStop: false,
  shouldSave: false,
  shouldEvaluate: false,
  shouldLog: false,
};

describe("DefaultFlowCallback.onStepEnd: logging", () => {
  test("steps strategy logs when gs % loggingSteps == 0", () => {
    const args = makeArgs({ loggingSteps: 3 });
    expect(stepsWith(args, makeState(args, 16), "shouldLog")).toEqual([3, 6, 9, 12, 15]);
  });

  test("loggingFirstStep logs step 1 as well (case d: 1, 4, 8)", () => {
    const args = makeArgs({ loggingFirstStep: true, loggingSteps: 4 });
    expect(stepsWith(args, makeState(args, 10), "shouldLog")).toEqual([1, 4, 8]);
  });

  test("loggingFirstStep works with the epoch and no strategies too", () => {
    for (const loggingStrategy of ["epoch", "no"] as const) {
      const args = makeArgs({ loggingFirstStep: true, loggingStrategy, loggingSteps: 1 });
      expect(stepsWith(args, makeState(args, 10), "shouldLog")).toEqual([1]);
    }
  });

  test("without loggingFirstStep, step 1 is not logged", () => {
    const args = makeArgs({ loggingSteps: 4 });
    expect(stepEnd(args, makeState(args, 10), 1).shouldLog).toBe(false);
  });

  test("epoch and no strategies never log on a step, even when gs % loggingSteps == 0", () => {
    for (const loggingStrategy of ["epoch", "no"] as const) {
      const args = makeArgs({ loggingStrategy, loggingSteps: 1 });
      expect(stepsWith(args, makeState(args, 10), "shouldLog")).toEqual([]);
    }
  });

  test("the last step is not forced to log (a: no log at 16; d: none at 10)", () => {
    const a = makeArgs({ loggingSteps: 3 });
    expect(stepEnd(a, makeState(a, 16), 16)).toMatchObject({ shouldLog: false });
    const d = makeArgs({ maxSteps: 10, loggingFirstStep: true, loggingSteps: 4 });
    expect(stepEnd(d, makeState(d, 10), 10)).toMatchObject({ shouldLog: false });
  });

  test("the last step logs when it is itself a multiple of loggingSteps", () => {
    const args = makeArgs({ loggingSteps: 4 });
    expect(stepEnd(args, makeState(args, 8), 8)).toMatchObject({
      shouldLog: true,
      shouldTrainingStop: true,
    });
  });
});

describe("DefaultFlowCallback.onStepEnd: evaluation", () => {
  test("steps strategy evaluates when gs % evalSteps == 0, plus the last step (a: 5, 10, 15, 16)", () => {
    const args = makeArgs({ loggingSteps: 3, evalStrategy: "steps", evalSteps: 5 });
    expect(stepsWith(args, makeState(args, 16), "shouldEvaluate")).toEqual([5, 10, 15, 16]);
  });

  test("evalSteps defaults to loggingSteps under the steps strategy", () => {
    const args = makeArgs({ loggingSteps: 4, evalStrategy: "steps" });
    expect(args.evalSteps).toBe(4);
    expect(stepsWith(args, makeState(args, 12), "shouldEvaluate")).toEqual([4, 8, 12]);
  });

  test("evalDelay blocks evaluations before it, the last step included (d: 8 and 10, not 4)", () => {
    const args = makeArgs({
      maxSteps: 10,
      evalStrategy: "steps",
      evalSteps: 4,
      evalDelay: 5,
      loggingSteps: 4,
    });
    expect(stepsWith(args, makeState(args, 10), "shouldEvaluate")).toEqual([8, 10]);
    // A delay past the last step: not even the last step evaluates.
    const late = makeArgs({ evalStrategy: "steps", evalSteps: 4, evalDelay: 11 });
    expect(stepsWith(late, makeState(late, 10), "shouldEvaluate")).toEqual([]);
  });

  test("evalDelay equal to the step allows it (eval_delay <= gs)", () => {
    const args = makeArgs({ evalStrategy: "steps", evalSteps: 4, evalDelay: 4 });
    expect(stepsWith(args, makeState(args, 10), "shouldEvaluate")).toEqual([4, 8, 10]);
  });

  test("the last step is not evaluated twice when it is a multiple of evalSteps", () => {
    const args = makeArgs({ evalStrategy: "steps", evalSteps: 5 });
    const state = makeState(args, 15);
    expect(stepsWith(args, state, "shouldEvaluate")).toEqual([5, 10, 15]);
    expect(stepEnd(args, state, 15)).toMatchObject({
      shouldEvaluate: true,
      shouldTrainingStop: true,
    });
  });

  test("epoch and no strategies never evaluate on a step, the last one included", () => {
    for (const evalStrategy of ["epoch", "no"] as const) {
      const args = makeArgs({ evalStrategy, evalSteps: 1, saveStrategy: "no" });
      expect(stepsWith(args, makeState(args, 10), "shouldEvaluate")).toEqual([]);
    }
  });
});

describe("DefaultFlowCallback.onStepEnd: saving", () => {
  test("steps strategy saves when gs % saveSteps == 0, plus the last step (a: 7, 14, 16)", () => {
    const args = makeArgs({ saveSteps: 7 });
    expect(stepsWith(args, makeState(args, 16), "shouldSave")).toEqual([7, 14, 16]);
  });

  test("with the default saveSteps 500 only the last step saves (c: checkpoint-6, d: checkpoint-10)", () => {
    const c = makeArgs({ gradientAccumulationSteps: 3, loggingSteps: 1 });
    expect(c.saveSteps).toBe(500);
    expect(stepsWith(c, makeState(c, 6), "shouldSave")).toEqual([6]);
    const d = makeArgs({ maxSteps: 10 });
    expect(stepsWith(d, makeState(d, 10), "shouldSave")).toEqual([10]);
  });

  test("g_first: saves at 3 and 6", () => {
    const args = makeArgs({ maxSteps: 6, saveSteps: 3 });
    expect(stepsWith(args, makeState(args, 6), "shouldSave")).toEqual([3, 6]);
  });

  test("saveSteps 0 in the state never saves on a step (save_steps > 0), but the last step still saves", () => {
    const args = makeArgs({ saveSteps: 5 });
    const state = makeState(args, 10);
    state.saveSteps = 0;
    expect(stepsWith(args, state, "shouldSave")).toEqual([10]);
  });

  test("epoch, no and best strategies never save on a step, the last one included", () => {
    const epoch = makeArgs({ saveStrategy: "epoch", saveSteps: 1 });
    expect(stepsWith(epoch, makeState(epoch, 10), "shouldSave")).toEqual([]);
    const no = makeArgs({ saveStrategy: "no", saveSteps: 1 });
    expect(stepsWith(no, makeState(no, 10), "shouldSave")).toEqual([]);
    const best = makeArgs({
      saveStrategy: "best",
      saveSteps: 1,
      evalStrategy: "steps",
      evalSteps: 2,
      metricForBestModel: "loss",
    });
    expect(stepsWith(best, makeState(best, 10), "shouldSave")).toEqual([]);
  });
});

describe("DefaultFlowCallback.onStepEnd: the last step", () => {
  test("gs >= maxSteps stops training; earlier steps do not", () => {
    const args = makeArgs();
    const state = makeState(args, 10);
    expect(stepsWith(args, state, "shouldTrainingStop")).toEqual([10]);
    expect(stepEnd(args, state, 11).shouldTrainingStop).toBe(true);
  });

  test("under epoch strategies nothing but the stop is set at the last step (b)", () => {
    const args = makeArgs({
      numTrainEpochs: 3,
      loggingStrategy: "epoch",
      evalStrategy: "epoch",
      saveStrategy: "epoch",
    });
    expect(stepEnd(args, makeState(args, 24), 24)).toEqual({ ...NONE, shouldTrainingStop: true });
  });

  test("case a at step 16: stop, save and evaluate, no log", () => {
    const args = makeArgs({ loggingSteps: 3, evalStrategy: "steps", evalSteps: 5, saveSteps: 7 });
    expect(stepEnd(args, makeState(args, 16), 16)).toEqual({
      ...NONE,
      shouldTrainingStop: true,
      shouldSave: true,
      shouldEvaluate: true,
    });
  });

  test("onStepEnd only sets flags, it never clears one", () => {
    const args = makeArgs({ loggingStrategy: "no", saveStrategy: "no" });
    const state = makeState(args, 10);
    state.globalStep = 3;
    const control = new TrainerControl({
      shouldLog: true,
      shouldEvaluate: true,
      shouldSave: true,
      shouldEpochStop: true,
      shouldTrainingStop: true,
    });
    new DefaultFlowCallback().onStepEnd(args, state, control);
    expect(Object.values({ ...control })).toEqual([true, true, true, true, true]);
  });
});

describe("DefaultFlowCallback.onEpochEnd", () => {
  test("epoch strategies log, evaluate and save at each epoch end (b)", () => {
    const args = makeArgs({
      numTrainEpochs: 3,
      loggingStrategy: "epoch",
      evalStrategy: "epoch",
      saveStrategy: "epoch",
    });
    for (const epoch of [1, 2, 3]) {
      expect(epochEnd(args, makeState(args, 24), epoch)).toEqual({
        ...NONE,
        shouldLog: true,
        shouldEvaluate: true,
        shouldSave: true,
      });
    }
  });

  test("each flag follows its own strategy", () => {
    const logOnly = makeArgs({ loggingStrategy: "epoch", saveStrategy: "no" });
    expect(epochEnd(logOnly, makeState(logOnly, 8), 1)).toEqual({ ...NONE, shouldLog: true });
    const evalOnly = makeArgs({ loggingStrategy: "no", evalStrategy: "epoch", saveStrategy: "no" });
    expect(epochEnd(evalOnly, makeState(evalOnly, 8), 1)).toEqual({
      ...NONE,
      shouldEvaluate: true,
    });
    const saveOnly = makeArgs({ loggingStrategy: "no", saveStrategy: "epoch" });
    expect(epochEnd(saveOnly, makeState(saveOnly, 8), 1)).toEqual({ ...NONE, shouldSave: true });
  });

  test("steps strategies set nothing at an epoch end", () => {
    const args = makeArgs({ loggingSteps: 3, evalStrategy: "steps", evalSteps: 5, saveSteps: 7 });
    expect(epochEnd(args, makeState(args, 16), 1)).toEqual(NONE);
    expect(epochEnd(args, makeState(args, 16), 2)).toEqual(NONE);
  });

  test("evalDelay is compared with the (float) epoch: eval_delay <= epoch", () => {
    const args = makeArgs({ evalStrategy: "epoch", evalDelay: 2, saveStrategy: "no" });
    const state = makeState(args, 24);
    expect(epochEnd(args, state, 1).shouldEvaluate).toBe(false);
    expect(epochEnd(args, state, 1.75).shouldEvaluate).toBe(false);
    expect(epochEnd(args, state, 2).shouldEvaluate).toBe(true);
    expect(epochEnd(args, state, 3).shouldEvaluate).toBe(true);
    // The delay counts epochs, not steps: a step-like delay of 5 blocks epochs 1..4.
    const steps = makeArgs({ evalStrategy: "epoch", evalDelay: 5, saveStrategy: "no" });
    expect(epochEnd(steps, makeState(steps, 24), 3).shouldEvaluate).toBe(false);
  });
});

describe("DefaultFlowCallback with ratio steps (state.computeSteps)", () => {
  test("ratios resolve to ceil(maxSteps * ratio) and drive the decisions", () => {
    const args = makeArgs({
      loggingSteps: 0.1,
      evalStrategy: "steps",
      evalSteps: 0.25,
      saveSteps: 0.5,
    });
    const state = makeState(args, 30);
    expect([state.loggingSteps, state.evalSteps, state.saveSteps]).toEqual([3, 8, 15]);
    expect(stepsWith(args, state, "shouldLog")).toEqual([3, 6, 9, 12, 15, 18, 21, 24, 27, 30]);
    expect(stepsWith(args, state, "shouldEvaluate")).toEqual([8, 16, 24, 30]);
    expect(stepsWith(args, state, "shouldSave")).toEqual([15, 30]);
  });

  test("the args keep the ratio; only the state holds steps", () => {
    const args = makeArgs({ loggingSteps: 0.2 });
    const state = makeState(args, 7);
    expect(args.loggingSteps).toBe(0.2);
    expect(state.loggingSteps).toBe(2);
    expect(stepsWith(args, state, "shouldLog")).toEqual([2, 4, 6]);
  });
});

// --- Trace replay -----------------------------------------------------------------------------

type Flags = Record<
  "should_log" | "should_evaluate" | "should_save" | "should_epoch_stop" | "should_training_stop",
  boolean
>;

interface TraceEvent {
  event: string;
  global_step: number;
  epoch: number;
  control: Flags;
  control_in: Flags;
  log_keys?: string[];
  metric_keys?: string[];
  state?: Record<string, number | null | boolean>;
}

interface Summary {
  args: Record<string, unknown>;
  callback_order: string[];
  event_counts: Record<string, number>;
  state: Record<string, unknown>;
}

function readTrace<T>(name: string): T {
  return JSON.parse(readFileSync(resolve(TRACES, name), "utf8")) as T;
}

function camel(snake: string): string {
  return snake.replace(/_([a-z0-9])/g, (_m, letter: string) => letter.toUpperCase());
}

function toFlags(control: TrainerControl): Flags {
  return {
    should_log: control.shouldLog,
    should_evaluate: control.shouldEvaluate,
    should_save: control.shouldSave,
    should_epoch_stop: control.shouldEpochStop,
    should_training_stop: control.shouldTrainingStop,
  };
}

function setFlags(control: TrainerControl, flags: Flags): void {
  control.shouldLog = flags.should_log;
  control.shouldEvaluate = flags.should_evaluate;
  control.shouldSave = flags.should_save;
  control.shouldEpochStop = flags.should_epoch_stop;
  control.shouldTrainingStop = flags.should_training_stop;
}

/** Records the flags it sees, as the Recorder of trace.py (placed after DefaultFlowCallback). */
class Recorder extends TrainerCallback {
  seen: { event: string; flags: Flags }[] = [];
  constructor() {
    super();
    for (const event of [
      "onInitEnd",
      "onTrainBegin",
      "onTrainEnd",
      "onEpochBegin",
      "onEpochEnd",
      "onStepBegin",
      "onPreOptimizerStep",
      "onOptimizerStep",
      "onSubstepEnd",
      "onStepEnd",
      "onEvaluate",
      "onPredict",
      "onSave",
      "onLog",
      "onPredictionStep",
    ] as const satisfies readonly CallbackEvent[]) {
      this[event] = (_args, _state, control) => {
        this.seen.push({ event, flags: toFlags(control) });
      };
    }
  }
}

const STATE_FIELDS = ["max_steps", "logging_steps", "eval_steps", "save_steps"] as const;

describe.each(["a", "b", "c", "d", "g_first"])("trace replay, case %s", (name) => {
  const summary = readTrace<Summary>(`${name}.summary.json`);
  const events = readTrace<TraceEvent[]>(`${name}.events.json`);

  test("the args and the resolved state match the trace", () => {
    const options: Record<string, unknown> = { reportTo: "none", disableTqdm: true, seed: 42 };
    for (const [key, value] of Object.entries(summary.args)) options[camel(key)] = value;
    const args = new TrainingArguments(options as TrainingArgumentsOptions);
    const maxSteps = summary.state.max_steps as number;
    const state = makeState(args, maxSteps);
    for (const field of STATE_FIELDS)
      expect(state[camel(field) as "maxSteps"]).toBe(summary.state[field]);
  });

  /**
   * Replays every event. With `carry`, one TrainerControl goes through the whole trace as in
   * the Trainer (nothing sets the flags between events), so the handler's resets must produce
   * `control_in`; without it, the flags are set to `control_in` before each event, as the
   * brief's emulation of the Trainer.
   */
  function replay(carry: boolean) {
    const options: Record<string, unknown> = { reportTo: "none", disableTqdm: true, seed: 42 };
    for (const [key, value] of Object.entries(summary.args)) options[camel(key)] = value;
    const args = new TrainingArguments(options as TrainingArgumentsOptions);
    const recorder = new Recorder();
    const handler = new CallbackHandler([DefaultFlowCallback, recorder]);
    // The flags when the handler begins dispatching (after its resets): what control_in records.
    const atDispatch: Flags[] = [];
    const callEvent = handler.callEvent.bind(handler);
    handler.callEvent = (event, a, s, c, extras) => {
      atDispatch.push(toFlags(c));
      return callEvent(event, a, s, c, extras);
    };
    let control = new TrainerControl();

    // on_init_end sees a default TrainerState; train() replaces it before on_train_begin.
    let state = new TrainerState();
    const counts: Record<string, number> = {};
    expect(events.length).toBeGreaterThan(0);
    for (const [index, entry] of events.entries()) {
      const where = `${name}: ${entry.event} #${index} at gs ${entry.global_step}`;
      if (entry.event === "on_train_begin") {
        state = makeState(args, summary.state.max_steps as number);
      }
      if (entry.state) {
        for (const field of STATE_FIELDS) {
          expect(state[camel(field) as "maxSteps"], `${where} ${field}`).toBe(entry.state[field]);
        }
      }
      state.globalStep = entry.global_step;
      state.epoch = entry.epoch;
      if (!carry) setFlags(control, entry.control_in);
      const method = camel(entry.event) as CallbackEvent;
      expect(typeof handler[method], entry.event).toBe("function");
      const values = (keys: string[] = []) => Object.fromEntries(keys.map((k) => [k, 0]));
      const extras =
        entry.event === "on_log"
          ? { logs: values(entry.log_keys) }
          : entry.event === "on_evaluate" || entry.event === "on_predict"
            ? { metrics: values(entry.metric_keys) }
            : undefined;
      const result = (
        handler[method] as (
          a: TrainingArguments,
          s: TrainerState,
          c: TrainerControl,
          e?: Record<string, unknown>,
        ) => unknown
      ).call(handler, args, state, control, extras);
      expect(result instanceof Promise).toBe(false);
      expect(result).toBe(control);
      control = result as TrainerControl;
      expect(atDispatch.at(-1), `${where} (control_in)`).toEqual(entry.control_in);
      const seen = recorder.seen.at(-1)!;
      expect(seen.event).toBe(method);
      expect(seen.flags, where).toEqual(entry.control);
      // The flags after the dispatch are what the recorder saw (nothing follows it).
      expect(toFlags(control)).toEqual(entry.control);
      counts[entry.event] = (counts[entry.event] ?? 0) + 1;
    }
    expect(recorder.seen).toHaveLength(events.length);
    expect(atDispatch).toHaveLength(events.length);
    expect(counts).toEqual(summary.event_counts);
  }

  test("DefaultFlowCallback decisions equal HF's, event for event (flags set to control_in)", () => {
    replay(false);
  });

  test("resets and decisions equal HF's with one control carried through the whole run", () => {
    replay(true);
  });
});

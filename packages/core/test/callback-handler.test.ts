// CallbackHandler: ordered dispatch, add/pop/remove, HF's flag resets, ctx, sync and async
// dispatch, and bad return values.
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import {
  CALLBACK_EVENTS,
  CallbackHandler,
  DefaultFlowCallback,
  EarlyStoppingCallback,
  PrinterCallback,
  TrainerCallback,
  TrainerControl,
  TrainerState,
  TrainingArguments,
  setLogger,
  type CallbackContext,
  type CallbackEvent,
  type Logger,
  type TrainerControlFlags,
} from "../src/index.js";

let warnings: string[] = [];
let previousLogger: Logger;
beforeEach(() => {
  warnings = [];
  previousLogger = setLogger({ info: () => {}, warn: (message) => warnings.push(message) });
});
afterEach(() => {
  setLogger(previousLogger);
  vi.restoreAllMocks();
});

const args = new TrainingArguments({ reportTo: "none", disableTqdm: true });

/** Appends `name:event` to a shared log for every event it receives. */
class Tracer extends TrainerCallback {
  constructor(
    readonly name: string,
    readonly log: string[],
  ) {
    super();
    for (const event of CALLBACK_EVENTS) {
      this[event] = () => {
        log.push(`${name}:${event}`);
      };
    }
  }
}

class First extends TrainerCallback {}
class Second extends TrainerCallback {}

/** Records the five flags it sees for each event. */
class FlagProbe extends TrainerCallback {
  seen: Partial<Record<CallbackEvent, TrainerControl>> = {};
  contexts: Partial<Record<CallbackEvent, CallbackContext>> = {};
  constructor() {
    super();
    for (const event of CALLBACK_EVENTS) {
      this[event] = (_a, _s, control, ctx) => {
        this.seen[event] = new TrainerControl({ ...control });
        this.contexts[event] = ctx;
      };
    }
  }
}

/** Calls a handler event method (with extras for the events that take them). */
function dispatch(
  handler: CallbackHandler,
  event: CallbackEvent,
  state: TrainerState,
  control: TrainerControl,
  extras?: Record<string, unknown>,
) {
  return (
    handler[event] as (
      a: TrainingArguments,
      s: TrainerState,
      c: TrainerControl,
      e?: Record<string, unknown>,
    ) => TrainerControl | Promise<TrainerControl>
  ).call(handler, args, state, control, extras);
}

const allTrue = () =>
  new TrainerControl({
    shouldTrainingStop: true,
    shouldEpochStop: true,
    shouldSave: true,
    shouldEvaluate: true,
    shouldLog: true,
  });

describe("callback list", () => {
  test("callbacks are called in the order given, for every event", () => {
    const log: string[] = [];
    const handler = new CallbackHandler([
      DefaultFlowCallback,
      new Tracer("a", log),
      new Tracer("b", log),
      new Tracer("c", log),
    ]);
    for (const event of CALLBACK_EVENTS) {
      log.length = 0;
      dispatch(handler, event, new TrainerState(), new TrainerControl());
      expect(log).toEqual([`a:${event}`, `b:${event}`, `c:${event}`]);
    }
  });

  test("adds by class (instantiated with no arguments) and by instance", () => {
    const printer = new PrinterCallback();
    const handler = new CallbackHandler([DefaultFlowCallback, printer]);
    handler.addCallback(First);
    handler.addCallback(new Second());
    expect(handler.callbacks).toHaveLength(4);
    expect(handler.callbacks[0]).toBeInstanceOf(DefaultFlowCallback);
    expect(handler.callbacks[1]).toBe(printer);
    expect(handler.callbacks[2]).toBeInstanceOf(First);
    expect(handler.callbacks[3]).toBeInstanceOf(Second);
    expect(warnings).toEqual([]);
  });

  test("callbackList is the class names, one a line", () => {
    const handler = new CallbackHandler([DefaultFlowCallback, First, new Second()]);
    expect(handler.callbackList).toBe("DefaultFlowCallback\nFirst\nSecond");
    expect(new CallbackHandler([DefaultFlowCallback]).callbackList).toBe("DefaultFlowCallback");
  });

  test("a second callback of the same class warns, lists the current callbacks, and is added", () => {
    const handler = new CallbackHandler([DefaultFlowCallback, First]);
    expect(warnings).toEqual([]);
    handler.addCallback(new First());
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("First");
    expect(warnings[0]).toContain("already");
    expect(warnings[0]).toContain("DefaultFlowCallback\nFirst");
    expect(handler.callbacks).toHaveLength(3);
    // By class as well, and in the constructor.
    handler.addCallback(First);
    expect(warnings).toHaveLength(2);
    new CallbackHandler([DefaultFlowCallback, Second, Second]);
    expect(warnings).toHaveLength(3);
    expect(warnings[2]).toContain("Second");
  });

  test("a subclass is not the same class: no duplicate warning", () => {
    class Special extends First {}
    const handler = new CallbackHandler([DefaultFlowCallback, First]);
    handler.addCallback(Special);
    expect(warnings).toEqual([]);
  });

  test("warns when there is no DefaultFlowCallback, listing the callbacks", () => {
    new CallbackHandler([First, Second]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("DefaultFlowCallback");
    expect(warnings[0]).toContain("First\nSecond");
    warnings.length = 0;
    new CallbackHandler();
    expect(warnings).toHaveLength(1);
  });

  test("a subclass of DefaultFlowCallback counts as one (HF's isinstance)", () => {
    class MyFlow extends DefaultFlowCallback {}
    new CallbackHandler([MyFlow, First]);
    expect(warnings).toEqual([]);
  });

  test("popCallback by class removes and returns the first one of that class", () => {
    const a = new First();
    const b = new First();
    const handler = new CallbackHandler([DefaultFlowCallback, a, new Second(), b]);
    expect(handler.popCallback(First)).toBe(a);
    expect(handler.callbackList).toBe("DefaultFlowCallback\nSecond\nFirst");
    expect(handler.popCallback(First)).toBe(b);
    expect(handler.popCallback(First)).toBeUndefined();
    expect(handler.callbackList).toBe("DefaultFlowCallback\nSecond");
  });

  test("popCallback by instance removes exactly that one", () => {
    const a = new First();
    const b = new First();
    const handler = new CallbackHandler([DefaultFlowCallback, a, b]);
    expect(handler.popCallback(b)).toBe(b);
    expect(handler.callbacks).toEqual([handler.callbacks[0], a]);
    expect(handler.popCallback(b)).toBeUndefined();
    expect(handler.popCallback(new First())).toBeUndefined();
    expect(handler.callbacks).toHaveLength(2);
  });

  test("popCallback by class matches subclasses (HF's isinstance)", () => {
    class Special extends First {}
    const special = new Special();
    const handler = new CallbackHandler([DefaultFlowCallback, special]);
    expect(handler.popCallback(First)).toBe(special);
  });

  test("removeCallback by class and by instance; absent ones are ignored", () => {
    const second = new Second();
    const handler = new CallbackHandler([DefaultFlowCallback, First, second, PrinterCallback]);
    expect(handler.removeCallback(First)).toBeUndefined();
    expect(handler.callbackList).toBe("DefaultFlowCallback\nSecond\nPrinterCallback");
    handler.removeCallback(second);
    expect(handler.callbackList).toBe("DefaultFlowCallback\nPrinterCallback");
    handler.removeCallback(second);
    handler.removeCallback(First);
    expect(handler.callbackList).toBe("DefaultFlowCallback\nPrinterCallback");
  });

  test("removed callbacks receive no more events", () => {
    const log: string[] = [];
    const tracer = new Tracer("t", log);
    const handler = new CallbackHandler([DefaultFlowCallback, tracer]);
    handler.onStepEnd(args, new TrainerState(), new TrainerControl());
    handler.removeCallback(tracer);
    handler.onStepEnd(args, new TrainerState(), new TrainerControl());
    expect(log).toEqual(["t:onStepEnd"]);
  });

  test("adding something that is not a callback is a TypeError", () => {
    const handler = new CallbackHandler([DefaultFlowCallback]);
    expect(() => handler.addCallback(42 as never)).toThrow(TypeError);
    expect(() => handler.addCallback({} as never)).toThrow(/TrainerCallback/);
  });

  test("an object with only some event methods is refused, naming the missing ones", () => {
    const handler = new CallbackHandler([DefaultFlowCallback]);
    const partial = { onStepEnd() {}, onLog() {} };
    const missing = CALLBACK_EVENTS.filter((event) => event !== "onStepEnd" && event !== "onLog");
    expect(() => handler.addCallback(partial as never)).toThrow(TypeError);
    expect(() => handler.addCallback(partial as never)).toThrow(
      `which has no ${missing.join(", ")} methods. Extend TrainerCallback`,
    );
    class AlmostCallback {
      constructor() {
        for (const event of CALLBACK_EVENTS)
          if (event !== "onPredictionStep") Object.assign(this, { [event]: () => {} });
      }
    }
    expect(() => handler.addCallback(AlmostCallback as never)).toThrow(
      /the function AlmostCallback, which has no onPredictionStep method\. Extend TrainerCallback/,
    );
    expect(handler.callbacks).toHaveLength(1);
  });

  test("an object with every event method (from another copy of @trainkit/core) is accepted", () => {
    const handler = new CallbackHandler([DefaultFlowCallback]);
    const foreign = Object.fromEntries(CALLBACK_EVENTS.map((event) => [event, () => {}]));
    handler.addCallback(foreign as never);
    expect(handler.callbacks).toHaveLength(2);
  });
});

describe("flag resets", () => {
  const RESETS: Partial<Record<CallbackEvent, (keyof TrainerControlFlags)[]>> = {
    onTrainBegin: ["shouldTrainingStop"],
    onEpochBegin: ["shouldEpochStop"],
    onStepBegin: ["shouldLog", "shouldEvaluate", "shouldSave"],
    onLog: ["shouldLog"],
    onEvaluate: ["shouldEvaluate"],
    onSave: ["shouldSave"],
  };

  test.each(CALLBACK_EVENTS)("%s resets HF's flags before the callbacks see them", (event) => {
    const probe = new FlagProbe();
    const handler = new CallbackHandler([DefaultFlowCallback, probe]);
    const state = new TrainerState({ maxSteps: 1000, globalStep: 3 });
    // DefaultFlowCallback sets flags in onStepEnd/onEpochEnd; it never clears one, so every
    // false flag the probe sees comes from the handler's reset.
    const result = dispatch(handler, event, state, allTrue(), {});
    const expected = allTrue();
    for (const flag of RESETS[event] ?? []) expected[flag] = false;
    expect({ ...probe.seen[event] }).toEqual({ ...expected });
    expect({ ...(result as TrainerControl) }).toEqual({ ...expected });
  });

  test("the first callback already sees the reset flags", () => {
    const probe = new FlagProbe();
    const handler = new CallbackHandler([probe, DefaultFlowCallback]);
    const control = allTrue();
    handler.onLog(args, new TrainerState(), control, { logs: {} });
    expect(probe.seen.onLog!.shouldLog).toBe(false);
    expect(probe.seen.onLog!.shouldEvaluate).toBe(true);
  });

  test("flags not yet handled stay visible: should_evaluate inside onLog (case a, step 15)", () => {
    const probe = new FlagProbe();
    const handler = new CallbackHandler([DefaultFlowCallback, probe]);
    const control = new TrainerControl({ shouldLog: true, shouldEvaluate: true });
    handler.onLog(args, new TrainerState({ globalStep: 15 }), control, { logs: { loss: 1 } });
    expect({ ...probe.seen.onLog }).toMatchObject({ shouldLog: false, shouldEvaluate: true });
  });

  test("the resets are TrainerControl's newTraining, newEpoch and newStep (as in HF)", () => {
    const calls: string[] = [];
    class TracedControl extends TrainerControl {
      override newTraining() {
        calls.push("newTraining");
        super.newTraining();
      }
      override newEpoch() {
        calls.push("newEpoch");
        super.newEpoch();
      }
      override newStep() {
        calls.push("newStep");
        super.newStep();
      }
    }
    const handler = new CallbackHandler([DefaultFlowCallback]);
    const state = new TrainerState({ maxSteps: 1000 });
    handler.onTrainBegin(args, state, new TracedControl());
    handler.onEpochBegin(args, state, new TracedControl());
    handler.onStepBegin(args, state, new TracedControl());
    for (const event of CALLBACK_EVENTS)
      if (!["onTrainBegin", "onEpochBegin", "onStepBegin"].includes(event))
        dispatch(handler, event, state, new TracedControl(), {});
    expect(calls).toEqual(["newTraining", "newEpoch", "newStep"]);
  });

  test("callEvent dispatches without any reset", () => {
    const probe = new FlagProbe();
    const handler = new CallbackHandler([DefaultFlowCallback, probe]);
    for (const event of ["onStepBegin", "onLog", "onEvaluate", "onSave", "onTrainBegin"] as const) {
      handler.callEvent(event, args, new TrainerState(), allTrue());
      expect({ ...probe.seen[event] }).toEqual({ ...allTrue() });
    }
  });
});

describe("returned controls", () => {
  test("a returned TrainerControl replaces control for the callbacks that follow, and is returned", () => {
    const original = new TrainerControl();
    const replacement = new TrainerControl({ shouldSave: true });
    const seen: TrainerControl[] = [];
    class Before extends TrainerCallback {
      override onStepEnd(_a: TrainingArguments, _s: TrainerState, control: TrainerControl) {
        seen.push(control);
      }
    }
    class Replacer extends TrainerCallback {
      override onStepEnd() {
        return replacement;
      }
    }
    class After extends TrainerCallback {
      override onStepEnd(_a: TrainingArguments, _s: TrainerState, control: TrainerControl) {
        seen.push(control);
        control.shouldLog = true;
      }
    }
    const handler = new CallbackHandler([DefaultFlowCallback, Before, Replacer, After]);
    const result = handler.onStepEnd(
      args,
      new TrainerState({ maxSteps: 100, globalStep: 1 }),
      original,
    );
    expect(seen[0]).toBe(original);
    expect(seen[1]).toBe(replacement);
    expect(result).toBe(replacement);
    expect(replacement).toMatchObject({ shouldSave: true, shouldLog: true });
    expect(original.shouldLog).toBe(false);
  });

  test("returning nothing (or null) keeps the control; mutations are seen by later callbacks", () => {
    const control = new TrainerControl();
    class Setter extends TrainerCallback {
      override onSubstepEnd(_a: TrainingArguments, _s: TrainerState, c: TrainerControl) {
        c.shouldEpochStop = true;
      }
    }
    class ReturnsNull extends TrainerCallback {
      override onSubstepEnd() {
        return null as unknown as void;
      }
    }
    const probe = new FlagProbe();
    const handler = new CallbackHandler([DefaultFlowCallback, Setter, ReturnsNull, probe]);
    expect(handler.onSubstepEnd(args, new TrainerState(), control)).toBe(control);
    expect(probe.seen.onSubstepEnd!.shouldEpochStop).toBe(true);
  });

  test("a bad return value is a TypeError naming the class and the event", () => {
    class Bad extends TrainerCallback {
      override onStepEnd() {
        return 42 as unknown as TrainerControl;
      }
    }
    const handler = new CallbackHandler([DefaultFlowCallback, Bad]);
    const state = new TrainerState({ maxSteps: 100 });
    expect(() => handler.onStepEnd(args, state, new TrainerControl())).toThrow(TypeError);
    expect(() => handler.onStepEnd(args, state, new TrainerControl())).toThrow(/Bad\.onStepEnd/);
    expect(() => handler.onStepEnd(args, state, new TrainerControl())).toThrow(/42/);
  });

  test("other bad values (an object, a boolean, a string) are TypeErrors too", () => {
    for (const value of [{ shouldLog: true }, true, "stop"]) {
      class Odd extends TrainerCallback {
        override onLog() {
          return value as unknown as TrainerControl;
        }
      }
      const handler = new CallbackHandler([DefaultFlowCallback, Odd]);
      expect(() => handler.onLog(args, new TrainerState(), new TrainerControl(), {})).toThrow(
        /Odd\.onLog/,
      );
    }
  });
});

describe("ctx", () => {
  test("carries model, optimizer, lrScheduler and the data loaders to every event", () => {
    const refs = {
      model: { name: "model" },
      processingClass: { name: "tokenizer" },
      optimizer: { name: "adamw" },
      lrScheduler: { name: "linear" },
      trainDataloader: { name: "train" },
      evalDataloader: { name: "eval" },
    };
    const probe = new FlagProbe();
    const handler = new CallbackHandler([DefaultFlowCallback, probe], refs);
    for (const event of CALLBACK_EVENTS) {
      dispatch(handler, event, new TrainerState(), new TrainerControl());
      const ctx = probe.contexts[event]!;
      expect(ctx.model).toBe(refs.model);
      expect(ctx.processingClass).toBe(refs.processingClass);
      expect(ctx.optimizer).toBe(refs.optimizer);
      expect(ctx.lrScheduler).toBe(refs.lrScheduler);
      expect(ctx.trainDataloader).toBe(refs.trainDataloader);
      expect(ctx.evalDataloader).toBe(refs.evalDataloader);
    }
    expect(handler.model).toBe(refs.model);
  });

  test("references set on the handler later reach the next events", () => {
    const probe = new FlagProbe();
    const handler = new CallbackHandler([DefaultFlowCallback, probe]);
    handler.onInitEnd(args, new TrainerState(), new TrainerControl());
    expect(probe.contexts.onInitEnd!.model).toBeUndefined();
    const model = { layers: 1 };
    const optimizer = { lr: 1 };
    const scheduler = { step: 0 };
    const train = [1, 2];
    const evalLoader = [3];
    handler.model = model;
    handler.optimizer = optimizer;
    handler.lrScheduler = scheduler;
    handler.trainDataloader = train;
    handler.evalDataloader = evalLoader;
    handler.onTrainBegin(args, new TrainerState(), new TrainerControl());
    handler.onLog(args, new TrainerState(), new TrainerControl(), { logs: { loss: 1 } });
    for (const ctx of [probe.contexts.onTrainBegin!, probe.contexts.onLog!]) {
      expect(ctx.model).toBe(model);
      expect(ctx.optimizer).toBe(optimizer);
      expect(ctx.lrScheduler).toBe(scheduler);
      expect(ctx.trainDataloader).toBe(train);
      expect(ctx.evalDataloader).toBe(evalLoader);
    }
    expect(handler.model).toBe(model);
    const replaced = { layers: 2 };
    handler.model = replaced;
    handler.onStepEnd(args, new TrainerState({ maxSteps: 10 }), new TrainerControl());
    expect(probe.contexts.onStepEnd!.model).toBe(replaced);
  });

  test("logs (onLog) and metrics (onEvaluate, onPredict) arrive in ctx, next to the references", () => {
    const probe = new FlagProbe();
    const model = {};
    const handler = new CallbackHandler([DefaultFlowCallback, probe], { model });
    const logs = { loss: 0.5, learning_rate: 5e-5, epoch: 1 };
    const metrics = { eval_loss: 0.25, epoch: 1 };
    const test_metrics = { test_loss: 0.25 };
    handler.onLog(args, new TrainerState(), new TrainerControl(), { logs });
    handler.onEvaluate(args, new TrainerState(), new TrainerControl(), { metrics });
    handler.onPredict(args, new TrainerState(), new TrainerControl(), { metrics: test_metrics });
    handler.onPredictionStep(args, new TrainerState(), new TrainerControl(), { inputs: [1] });
    expect(probe.contexts.onLog!.logs).toBe(logs);
    expect(probe.contexts.onLog!.model).toBe(model);
    expect(probe.contexts.onEvaluate!.metrics).toBe(metrics);
    expect(probe.contexts.onEvaluate!.model).toBe(model);
    expect(probe.contexts.onPredict!.metrics).toBe(test_metrics);
    expect(probe.contexts.onPredictionStep!.inputs).toEqual([1]);
    // Extras do not leak into the next events.
    handler.onStepEnd(args, new TrainerState({ maxSteps: 10 }), new TrainerControl());
    expect(probe.contexts.onStepEnd!.logs).toBeUndefined();
    expect(probe.contexts.onStepEnd!.metrics).toBeUndefined();
  });

  test("a callback may change the logs dict in place (PrinterCallback pops total_flos)", () => {
    const handler = new CallbackHandler([
      DefaultFlowCallback,
      new PrinterCallback({ write: () => {} }),
    ]);
    const logs: Record<string, number> = { train_loss: 1, total_flos: 0 };
    handler.onLog(args, new TrainerState(), new TrainerControl(), { logs });
    expect(logs).toEqual({ train_loss: 1 });
  });
});

describe("sync and async dispatch", () => {
  test("a synchronous dispatch returns a TrainerControl, not a Promise", () => {
    const handler = new CallbackHandler([
      DefaultFlowCallback,
      First,
      new PrinterCallback({ write: () => {} }),
    ]);
    const control = new TrainerControl();
    for (const event of CALLBACK_EVENTS) {
      const result = dispatch(handler, event, new TrainerState({ maxSteps: 10 }), control, {
        logs: {},
        metrics: {},
      });
      expect(result instanceof Promise).toBe(false);
      expect(result).toBe(control);
    }
  });

  test("a dispatch where a callback returns a Promise returns a Promise of the control", async () => {
    class Slow extends TrainerCallback {
      override async onEvaluate() {}
    }
    const handler = new CallbackHandler([DefaultFlowCallback, Slow]);
    const control = new TrainerControl();
    const result = handler.onEvaluate(args, new TrainerState(), control, { metrics: {} });
    expect(result).toBeInstanceOf(Promise);
    await expect(result).resolves.toBe(control);
  });

  test("callbacks are awaited in order: a later one starts only after the earlier promise resolved", async () => {
    const log: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    class Waits extends TrainerCallback {
      override async onSave() {
        log.push("waits:start");
        await gate;
        log.push("waits:end");
      }
    }
    class AlsoAsync extends TrainerCallback {
      override async onSave() {
        log.push("also:start");
        await new Promise((resolve) => setTimeout(resolve, 1));
        log.push("also:end");
      }
    }
    class Sync extends TrainerCallback {
      override onSave() {
        log.push("sync");
      }
    }
    const handler = new CallbackHandler([DefaultFlowCallback, Sync, Waits, Sync, AlsoAsync, Sync]);
    const pending = handler.onSave(args, new TrainerState(), new TrainerControl());
    expect(pending).toBeInstanceOf(Promise);
    // The callbacks before the first promise ran synchronously; nothing after it started.
    expect(log).toEqual(["sync", "waits:start"]);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(log).toEqual(["sync", "waits:start"]);
    release();
    await pending;
    expect(log).toEqual([
      "sync",
      "waits:start",
      "waits:end",
      "sync",
      "also:start",
      "also:end",
      "sync",
    ]);
  });

  test("a control resolved from a promise replaces control for the callbacks that follow", async () => {
    const replacement = new TrainerControl({ shouldTrainingStop: true });
    const seen: TrainerControl[] = [];
    class AsyncReplacer extends TrainerCallback {
      override async onEvaluate() {
        return replacement;
      }
    }
    class Watcher extends TrainerCallback {
      override onEvaluate(_a: TrainingArguments, _s: TrainerState, control: TrainerControl) {
        seen.push(control);
      }
    }
    const handler = new CallbackHandler([DefaultFlowCallback, Watcher, AsyncReplacer, Watcher]);
    const original = new TrainerControl({ shouldEvaluate: true });
    const result = await handler.onEvaluate(args, new TrainerState(), original, { metrics: {} });
    expect(result).toBe(replacement);
    expect(seen).toEqual([original, replacement]);
    expect(seen[0]).toBe(original);
    expect(seen[1]).toBe(replacement);
    // The reset happened before the first callback, on the original control.
    expect(original.shouldEvaluate).toBe(false);
  });

  test("a sync TrainerControl returned after an async callback is applied too", async () => {
    const replacement = new TrainerControl({ shouldLog: true });
    class AsyncNoop extends TrainerCallback {
      override async onStepBegin() {}
    }
    class SyncReplacer extends TrainerCallback {
      override onStepBegin() {
        return replacement;
      }
    }
    const handler = new CallbackHandler([DefaultFlowCallback, AsyncNoop, SyncReplacer]);
    await expect(handler.onStepBegin(args, new TrainerState(), new TrainerControl())).resolves.toBe(
      replacement,
    );
  });

  test("a promise resolving to a bad value, or a bad value after one, rejects with a TypeError", async () => {
    class AsyncBad extends TrainerCallback {
      override async onLog() {
        return 7 as unknown as TrainerControl;
      }
    }
    class AsyncNoop extends TrainerCallback {
      override async onLog() {}
    }
    class SyncBad extends TrainerCallback {
      override onLog() {
        return "x" as unknown as TrainerControl;
      }
    }
    const first = new CallbackHandler([DefaultFlowCallback, AsyncBad]);
    await expect(first.onLog(args, new TrainerState(), new TrainerControl(), {})).rejects.toThrow(
      /AsyncBad\.onLog/,
    );
    const second = new CallbackHandler([DefaultFlowCallback, AsyncNoop, SyncBad]);
    await expect(second.onLog(args, new TrainerState(), new TrainerControl(), {})).rejects.toThrow(
      TypeError,
    );
  });

  test("a rejected callback promise rejects the dispatch; later callbacks do not run", async () => {
    const log: string[] = [];
    class Fails extends TrainerCallback {
      override async onTrainEnd() {
        throw new Error("tracker down");
      }
    }
    const handler = new CallbackHandler([DefaultFlowCallback, Fails, new Tracer("t", log)]);
    await expect(
      handler.onTrainEnd(args, new TrainerState(), new TrainerControl()),
    ).rejects.toThrow("tracker down");
    expect(log).toEqual([]);
  });
});

describe("user callbacks as in the README", () => {
  class MyCallback extends TrainerCallback {
    override onTrainBegin() {
      console.log("Starting training");
    }
  }

  test.each([
    ["class", MyCallback],
    ["instance", new MyCallback()],
  ] as const)("passed as %s", (_kind, callback) => {
    const spy = vi.spyOn(console, "log").mockImplementation(() => {});
    const handler = new CallbackHandler([DefaultFlowCallback, callback]);
    const control = new TrainerControl();
    const result = handler.onTrainBegin(args, new TrainerState(), control);
    expect(result).toBe(control);
    expect(spy).toHaveBeenCalledWith("Starting training");
    expect(spy).toHaveBeenCalledTimes(1);
    // Events it does not override are no-ops.
    handler.onStepEnd(args, new TrainerState({ maxSteps: 10 }), control);
    expect(spy).toHaveBeenCalledTimes(1);
    expect(handler.callbacks[1]).toBeInstanceOf(MyCallback);
  });

  test("a callback using every argument: state, control and ctx.logs", () => {
    const seen: unknown[] = [];
    class LogWatcher extends TrainerCallback {
      override onLog(
        _args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        { logs }: CallbackContext,
      ) {
        seen.push(state.globalStep, logs);
        control.shouldTrainingStop = true;
      }
    }
    const handler = new CallbackHandler([DefaultFlowCallback, LogWatcher]);
    const control = new TrainerControl();
    handler.onLog(args, new TrainerState({ globalStep: 3 }), control, { logs: { loss: 2 } });
    expect(seen).toEqual([3, { loss: 2 }]);
    expect(control.shouldTrainingStop).toBe(true);
  });

  test("the base class methods are no-ops returning nothing", () => {
    const callback = new TrainerCallback();
    for (const event of CALLBACK_EVENTS) {
      expect(callback[event](args, new TrainerState(), new TrainerControl(), {})).toBeUndefined();
    }
  });

  test("built-in callbacks can be mixed with user ones", () => {
    const early = new EarlyStoppingCallback();
    const handler = new CallbackHandler([DefaultFlowCallback, early, MyCallback]);
    expect(handler.callbackList).toBe("DefaultFlowCallback\nEarlyStoppingCallback\nMyCallback");
    expect(handler.popCallback(EarlyStoppingCallback)).toBe(early);
  });
});

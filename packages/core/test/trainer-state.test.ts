// TrainerState and TrainerControl: HF's defaults, resets, trainer_state.json byte for byte,
// loading errors, computeSteps, stateful callbacks and restoring them.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, afterEach, beforeEach, describe, expect, test } from "vitest";
import {
  CallbackHandler,
  DefaultFlowCallback,
  EarlyStoppingCallback,
  PrinterCallback,
  TrainerCallback,
  TrainerControl,
  TrainerState,
  TrainingArguments,
  parsePythonJson,
  restoreCallbackStates,
  setLogger,
  type Logger,
  type StateRecord,
} from "../src/index.js";

const TRACES = resolve(import.meta.dirname, "fixtures/hf-traces");
const CASES = ["a", "b", "c", "d", "g_first"];
const work = mkdtempSync(join(tmpdir(), "trainkit-state-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let warnings: string[] = [];
let previousLogger: Logger;
beforeEach(() => {
  warnings = [];
  previousLogger = setLogger({ info: () => {}, warn: (message) => warnings.push(message) });
});
afterEach(() => setLogger(previousLogger));

const tracePath = (name: string) => resolve(TRACES, name);
const readText = (name: string) => readFileSync(tracePath(name), "utf8");

/** TrainerState's fields, camelCase, for the snake_case keys of a trainer_state.json. */
const CAMEL: Record<string, keyof TrainerState> = {
  best_global_step: "bestGlobalStep",
  best_metric: "bestMetric",
  best_model_checkpoint: "bestModelCheckpoint",
  epoch: "epoch",
  eval_steps: "evalSteps",
  global_step: "globalStep",
  is_hyper_param_search: "isHyperParamSearch",
  is_local_process_zero: "isLocalProcessZero",
  is_world_process_zero: "isWorldProcessZero",
  log_history: "logHistory",
  logging_steps: "loggingSteps",
  max_steps: "maxSteps",
  num_input_tokens_seen: "numInputTokensSeen",
  num_train_epochs: "numTrainEpochs",
  save_steps: "saveSteps",
  stateful_callbacks: "statefulCallbacks",
  total_flos: "totalFlos",
  train_batch_size: "trainBatchSize",
  trial_name: "trialName",
  trial_params: "trialParams",
};

/** A user callback with exportable state. */
class Stateful extends TrainerCallback {
  constructor(public value = 0) {
    super();
  }
  state(): StateRecord {
    return { args: { value: this.value }, attributes: {} };
  }
  static fromState(record: StateRecord) {
    return new Stateful(record.args.value as number);
  }
}

describe("TrainerState defaults", () => {
  test("equal trainer_state_defaults.json, field for field", () => {
    const defaults = JSON.parse(readText("trainer_state_defaults.json")) as Record<string, unknown>;
    const state = new TrainerState();
    expect(Object.keys(defaults).sort()).toEqual(Object.keys(CAMEL).sort());
    for (const [key, value] of Object.entries(defaults))
      expect(state[CAMEL[key]!], key).toEqual(value);
    expect(state.toJSON()).toEqual(defaults);
  });

  test("a new state writes trainer_state_defaults.json byte for byte (epoch and total_flos as ints)", () => {
    expect(new TrainerState().toJsonString()).toBe(readText("trainer_state_defaults.json"));
  });

  test("the constructor takes camelCase fields", () => {
    const state = new TrainerState({ maxSteps: 16, globalStep: 3, trainBatchSize: 8 });
    expect(state).toMatchObject({ maxSteps: 16, globalStep: 3, trainBatchSize: 8, evalSteps: 500 });
  });
});

describe("TrainerControl", () => {
  const defaults = JSON.parse(readText("trainer_control_defaults.json")) as {
    fields: Record<string, boolean>;
    "state()": StateRecord;
  };

  test("defaults equal trainer_control_defaults.json", () => {
    const control = new TrainerControl();
    expect(control.state().args).toEqual(defaults.fields);
    expect({ ...control }).toEqual({
      shouldTrainingStop: false,
      shouldEpochStop: false,
      shouldSave: false,
      shouldEvaluate: false,
      shouldLog: false,
    });
  });

  test("state() equals HF's, key order included", () => {
    const state = new TrainerControl().state();
    expect(state).toEqual(defaults["state()"]);
    expect(Object.keys(state.args)).toEqual(Object.keys(defaults["state()"].args));
  });

  test("state() and fromState round-trip every flag", () => {
    const control = new TrainerControl({ shouldSave: true, shouldTrainingStop: true });
    expect(control.state()).toEqual({
      args: {
        should_training_stop: true,
        should_epoch_stop: false,
        should_save: true,
        should_evaluate: false,
        should_log: false,
      },
      attributes: {},
    });
    const restored = TrainerControl.fromState(control.state());
    expect(restored).toBeInstanceOf(TrainerControl);
    expect({ ...restored }).toEqual({ ...control });
  });

  test("newTraining, newEpoch and newStep reset HF's flags and only those", () => {
    const all = () =>
      new TrainerControl({
        shouldTrainingStop: true,
        shouldEpochStop: true,
        shouldSave: true,
        shouldEvaluate: true,
        shouldLog: true,
      });
    const training = all();
    training.newTraining();
    expect({ ...training }).toEqual({ ...all(), shouldTrainingStop: false });
    const epoch = all();
    epoch.newEpoch();
    expect({ ...epoch }).toEqual({ ...all(), shouldEpochStop: false });
    const step = all();
    step.newStep();
    expect({ ...step }).toEqual({
      ...all(),
      shouldSave: false,
      shouldEvaluate: false,
      shouldLog: false,
    });
  });
});

describe("trainer_state.json", () => {
  test.each(CASES)("case %s: loadFromJson then toJsonString is byte-identical", (name) => {
    const path = tracePath(`${name}.trainer_state.json`);
    const state = TrainerState.loadFromJson(path);
    expect(state.toJsonString()).toBe(readFileSync(path, "utf8"));
  });

  test("trainer_state_defaults.json: loadFromJson then toJsonString is byte-identical", () => {
    const path = tracePath("trainer_state_defaults.json");
    expect(TrainerState.loadFromJson(path).toJsonString()).toBe(readFileSync(path, "utf8"));
  });

  test.each(CASES)("case %s: the loaded fields are camelCase and match the summary", (name) => {
    const state = TrainerState.loadFromJson(tracePath(`${name}.trainer_state.json`));
    const summary = JSON.parse(readText(`${name}.summary.json`)) as {
      state: Record<string, unknown>;
    };
    for (const [key, value] of Object.entries(summary.state)) {
      expect(state[CAMEL[key]!], key).toEqual(value);
    }
    // log_history.json is train().state.log_history, rounded, times masked, train summary
    // included; the checkpoint's log_history is the same without the summary.
    const history = JSON.parse(readText(`${name}.log_history.json`)) as Record<string, unknown>[];
    expect(history.length).toBeGreaterThan(state.logHistory.length);
    state.logHistory.forEach((entry, i) => {
      const recorded = history[i]!;
      expect(Object.keys(entry).sort()).toEqual(Object.keys(recorded).sort());
      for (const [key, value] of Object.entries(recorded)) {
        if (typeof value === "number") expect(entry[key], key).toBeCloseTo(value, 3);
      }
    });
  });

  test("saveToJson writes the same bytes, and loadFromJson reads them back", () => {
    const source = tracePath("a.trainer_state.json");
    const path = join(work, "a.json");
    TrainerState.loadFromJson(source).saveToJson(path);
    expect(readFileSync(path, "utf8")).toBe(readFileSync(source, "utf8"));
  });

  test("a saved state keeps every key and value: unknown keys, NaN/Infinity, non-ASCII", () => {
    const state = new TrainerState({
      epoch: 1.5,
      globalStep: 12,
      maxSteps: 16,
      bestMetric: 0.25,
      bestGlobalStep: 8,
      bestModelCheckpoint: "out/checkpoint-8",
      trialName: "essai-été-🚀",
      trialParams: { lr: 0.001, layers: 2, note: "naïve" },
      logHistory: [
        { loss: NaN, grad_norm: Infinity, learning_rate: 5e-5, epoch: 0.5, step: 4 },
        { eval_loss: -Infinity, eval_accuracy: 1, epoch: 1, step: 8 },
      ],
      statefulCallbacks: { Custom: { args: { name: "ünï" }, attributes: { seen: [1, 2] } } },
    });
    Object.assign(state.unknownFields, {
      future_field: { nested: [1, "two", null, true], ratio: 0.5 },
      future_flag: false,
      clé_ü: "valeur",
    });
    const path = join(work, "roundtrip.json");
    state.saveToJson(path);
    const text = readFileSync(path, "utf8");
    // Python's json module: NaN/Infinity tokens, non-ASCII as \uXXXX (surrogate pairs).
    expect(text).toContain('"loss": NaN');
    expect(text).toContain('"grad_norm": Infinity');
    expect(text).toContain('"eval_loss": -Infinity');
    expect(text).toContain('"trial_name": "essai-\\u00e9t\\u00e9-\\ud83d\\ude80"');
    expect(text).toContain('"cl\\u00e9_\\u00fc": "valeur"');
    expect(text).toMatch(/^[\x20-\x7e\n]*$/);
    expect(text.endsWith("}\n")).toBe(true);

    const loaded = TrainerState.loadFromJson(path);
    expect(loaded.toJSON()).toEqual(state.toJSON());
    expect(loaded.trialName).toBe("essai-été-🚀");
    expect(Number.isNaN(loaded.logHistory[0]!.loss)).toBe(true);
    expect(loaded.logHistory[0]!.grad_norm).toBe(Infinity);
    expect(loaded.logHistory[1]!.eval_loss).toBe(-Infinity);
    expect(loaded.unknownFields).toEqual(state.unknownFields);
    // And it writes the same bytes again.
    expect(loaded.toJsonString()).toBe(text);
  });

  test("a file Python wrote with unknown keys and integral floats comes back byte for byte", () => {
    const text =
      "{\n" +
      '  "best_global_step": 2,\n' +
      '  "best_metric": 1.0,\n' +
      '  "best_model_checkpoint": "out/checkpoint-2",\n' +
      '  "epoch": 1.0,\n' +
      '  "eval_steps": 2,\n' +
      '  "future_key": {\n' +
      '    "nan": NaN,\n' +
      '    "text": "\\u00fcber \\"quoted\\" NaN Infinity",\n' +
      '    "values": [\n' +
      "      1,\n" +
      "      2.0,\n" +
      "      -Infinity\n" +
      "    ]\n" +
      "  },\n" +
      '  "global_step": 2,\n' +
      '  "is_hyper_param_search": false,\n' +
      '  "is_local_process_zero": true,\n' +
      '  "is_world_process_zero": true,\n' +
      '  "log_history": [\n' +
      "    {\n" +
      '      "epoch": 1.0,\n' +
      '      "eval_accuracy": 1.0,\n' +
      '      "eval_count": 16,\n' +
      '      "eval_loss": 1e-05,\n' +
      '      "step": 2\n' +
      "    }\n" +
      "  ],\n" +
      '  "logging_steps": 500,\n' +
      '  "max_steps": 2,\n' +
      '  "num_input_tokens_seen": 0,\n' +
      '  "num_train_epochs": 1,\n' +
      '  "save_steps": 500,\n' +
      '  "stateful_callbacks": {\n' +
      '    "TrainerControl": {\n' +
      '      "args": {\n' +
      '        "should_epoch_stop": false,\n' +
      '        "should_evaluate": false,\n' +
      '        "should_log": false,\n' +
      '        "should_save": true,\n' +
      '        "should_training_stop": true\n' +
      "      },\n" +
      '      "attributes": {}\n' +
      "    }\n" +
      "  },\n" +
      '  "total_flos": 0.0,\n' +
      '  "train_batch_size": 8,\n' +
      '  "trial_name": null,\n' +
      '  "trial_params": null\n' +
      "}\n";
    const path = join(work, "python.json");
    writeFileSync(path, text);
    const state = TrainerState.loadFromJson(path);
    expect(state.unknownFields.future_key).toMatchObject({
      text: 'über "quoted" NaN Infinity',
      values: [1, 2, -Infinity],
    });
    expect(state.toJsonString()).toBe(text);
  });

  test("a state written after training has float epoch, total_flos and best_metric", () => {
    const state = new TrainerState({ epoch: 2, globalStep: 16, totalFlos: 0, bestMetric: 3 });
    const text = state.toJsonString();
    expect(text).toContain('"epoch": 2.0,');
    expect(text).toContain('"total_flos": 0.0,');
    expect(text).toContain('"best_metric": 3.0,');
    expect(text).toContain('"global_step": 16,');
  });
});

describe("loadFromJson errors name the file and the problem", () => {
  test("a missing file", () => {
    const path = join(work, "missing", "trainer_state.json");
    expect(() => TrainerState.loadFromJson(path)).toThrow(path);
    expect(() => TrainerState.loadFromJson(path)).toThrow(/ENOENT|no such file/);
  });

  test("truncated JSON", () => {
    const path = join(work, "truncated.json");
    writeFileSync(path, readText("a.trainer_state.json").slice(0, 300));
    expect(() => TrainerState.loadFromJson(path)).toThrow(path);
    expect(() => TrainerState.loadFromJson(path)).toThrow(/not valid JSON|truncated/);
  });

  test("an empty file", () => {
    const path = join(work, "empty.json");
    writeFileSync(path, "");
    expect(() => TrainerState.loadFromJson(path)).toThrow(path);
  });

  test('a field of the wrong type ("global_step": "3")', () => {
    const path = join(work, "wrong-type.json");
    writeFileSync(
      path,
      readText("a.trainer_state.json").replace('"global_step": 16', '"global_step": "3"'),
    );
    expect(() => TrainerState.loadFromJson(path)).toThrow(path);
    expect(() => TrainerState.loadFromJson(path)).toThrow(/"global_step" must be a number/);
    expect(() => TrainerState.loadFromJson(path)).toThrow(/"3"/);
  });

  test("other wrong types: log_history, is_world_process_zero, best_metric", () => {
    const base = readText("trainer_state_defaults.json");
    for (const [from, to, message] of [
      ['"log_history": []', '"log_history": {}', /"log_history" must be a list of objects/],
      ['"log_history": []', '"log_history": [1]', /"log_history"/],
      ['"is_world_process_zero": true', '"is_world_process_zero": 1', /is_world_process_zero/],
      ['"best_metric": null', '"best_metric": "0.5"', /"best_metric" must be a number or null/],
    ] as const) {
      const path = join(work, "bad-field.json");
      writeFileSync(path, base.replace(from, to));
      expect(() => TrainerState.loadFromJson(path)).toThrow(message);
    }
  });

  test("not an object", () => {
    const path = join(work, "list.json");
    writeFileSync(path, "[]\n");
    expect(() => TrainerState.loadFromJson(path)).toThrow(path);
  });
});

describe("computeSteps", () => {
  test("whole numbers are kept", () => {
    const state = new TrainerState();
    state.computeSteps({ loggingSteps: 3, evalSteps: 5, saveSteps: 7 }, 16);
    expect([state.loggingSteps, state.evalSteps, state.saveSteps]).toEqual([3, 5, 7]);
  });

  test("ratios below 1 are ceil(maxSteps * ratio)", () => {
    const state = new TrainerState();
    state.computeSteps({ loggingSteps: 0.1, evalSteps: 0.25, saveSteps: 0.3 }, 16);
    expect([state.loggingSteps, state.evalSteps, state.saveSteps]).toEqual([2, 4, 5]);
    state.computeSteps({ loggingSteps: 0.5, evalSteps: 0.01, saveSteps: 0.999 }, 10);
    expect([state.loggingSteps, state.evalSteps, state.saveSteps]).toEqual([5, 1, 10]);
  });

  test("a null evalSteps keeps the state's value (HF: eval_steps 500 in case c)", () => {
    const args = new TrainingArguments({ reportTo: "none", loggingSteps: 1 });
    expect(args.evalSteps).toBeNull();
    const state = new TrainerState({ maxSteps: 6 });
    state.computeSteps(args, 6);
    expect([state.loggingSteps, state.evalSteps, state.saveSteps]).toEqual([1, 500, 500]);
  });

  test("takes TrainingArguments directly", () => {
    const args = new TrainingArguments({
      reportTo: "none",
      loggingSteps: 0.2,
      evalStrategy: "steps",
      saveSteps: 0.5,
    });
    const state = new TrainerState();
    state.computeSteps(args, 9);
    // evalSteps defaults to loggingSteps (0.2) under the steps strategy.
    expect([state.loggingSteps, state.evalSteps, state.saveSteps]).toEqual([2, 2, 5]);
  });
});

describe("stateful callbacks", () => {
  test("setStatefulCallbacks from callbacks: class name keys, only exportable ones", () => {
    const early = new EarlyStoppingCallback({ earlyStoppingPatience: 3 });
    const control = new TrainerControl({ shouldSave: true });
    const state = new TrainerState();
    state.setStatefulCallbacks([new DefaultFlowCallback(), early, new PrinterCallback(), control]);
    expect(state.statefulCallbacks).toEqual({
      EarlyStoppingCallback: early.state(),
      TrainerControl: control.state(),
    });
  });

  test("setStatefulCallbacks: a list for two of a class, in order", () => {
    const state = new TrainerState();
    state.setStatefulCallbacks([new Stateful(1), new Stateful(2), new Stateful(3)]);
    expect(state.statefulCallbacks).toEqual({
      Stateful: [
        { args: { value: 1 }, attributes: {} },
        { args: { value: 2 }, attributes: {} },
        { args: { value: 3 }, attributes: {} },
      ],
    });
  });

  test("setStatefulCallbacks from records takes them as they are", () => {
    const records = {
      EarlyStoppingCallback: new EarlyStoppingCallback().state(),
      TrainerControl: new TrainerControl().state(),
    };
    const state = new TrainerState();
    state.setStatefulCallbacks(records);
    expect(state.statefulCallbacks).toEqual(records);
    expect(new TrainerState({ statefulCallbacks: records }).statefulCallbacks).toEqual(records);
  });

  test("stateful_callbacks is written under HF's key and read back", () => {
    const early = new EarlyStoppingCallback({ earlyStoppingPatience: 2 });
    early.earlyStoppingPatienceCounter = 1;
    const state = new TrainerState({
      globalStep: 4,
      statefulCallbacks: [early, new TrainerControl({ shouldSave: true })],
    });
    const text = state.toJsonString();
    const data = parsePythonJson(text) as Record<string, unknown>;
    expect(data.stateful_callbacks).toEqual(state.statefulCallbacks);
    expect(TrainerState.fromJSON(data).statefulCallbacks).toEqual(state.statefulCallbacks);
  });

  test("secrets in a callback's state never reach trainer_state.json (DESIGN)", () => {
    class Tracker extends TrainerCallback {
      state(): StateRecord {
        return {
          args: {
            api_key: "sk-live-123456",
            tracking_uri: "https://alice:hunter2@tracker.example.com/api",
            project: "digits",
          },
          attributes: { run_id: "run-7", auth_token: "tok-abcdef", max_tokens: 5 },
        };
      }
      static fromState(): Tracker {
        return new Tracker();
      }
    }
    const state = new TrainerState({ globalStep: 2, statefulCallbacks: [new Tracker()] });
    const path = join(work, "secrets.trainer_state.json");
    state.saveToJson(path);
    const text = readFileSync(path, "utf8");
    for (const secret of ["sk-live-123456", "hunter2", "tok-abcdef"])
      expect(text).not.toContain(secret);
    const written = TrainerState.loadFromJson(path).statefulCallbacks.Tracker as StateRecord;
    expect(written.args).toEqual({
      api_key: "<REDACTED>",
      tracking_uri: "https://alice:<REDACTED>@tracker.example.com/api",
      project: "digits",
    });
    // What is not a secret is kept: the run id a tracker resumes with, a number under a
    // secret-like name.
    expect(written.attributes).toEqual({
      run_id: "run-7",
      auth_token: "<REDACTED>",
      max_tokens: 5,
    });
    // The state in memory is unchanged.
    expect((state.statefulCallbacks.Tracker as StateRecord).args.api_key).toBe("sk-live-123456");
  });
});

describe("restoreCallbackStates", () => {
  test("rebuilds EarlyStoppingCallback with the stored counter, in the same list position", () => {
    const original = new EarlyStoppingCallback({ earlyStoppingPatience: 5 });
    const printer = new PrinterCallback();
    const handler = new CallbackHandler([DefaultFlowCallback, original, printer]);
    const stored = {
      EarlyStoppingCallback: {
        args: { early_stopping_patience: 2, early_stopping_threshold: 0.5 },
        attributes: { early_stopping_patience_counter: 1 },
      },
      TrainerControl: new TrainerControl({ shouldSave: true, shouldTrainingStop: true }).state(),
    };
    const before = new TrainerControl();
    const control = restoreCallbackStates(handler, before, stored);

    expect(handler.callbackList).toBe(
      "DefaultFlowCallback\nEarlyStoppingCallback\nPrinterCallback",
    );
    const restored = handler.callbacks[1] as EarlyStoppingCallback;
    expect(restored).toBeInstanceOf(EarlyStoppingCallback);
    expect(restored).not.toBe(original);
    expect(restored.earlyStoppingPatienceCounter).toBe(1);
    expect(restored.earlyStoppingPatience).toBe(2);
    expect(restored.earlyStoppingThreshold).toBe(0.5);
    expect(handler.callbacks[2]).toBe(printer);

    expect(control).toBeInstanceOf(TrainerControl);
    expect(control).not.toBe(before);
    // The stored snapshot predates onSave's reset; restoring applies it (trainkit, not HF).
    expect({ ...control }).toEqual({
      shouldTrainingStop: true,
      shouldEpochStop: false,
      shouldSave: false,
      shouldEvaluate: false,
      shouldLog: false,
    });
    expect(warnings).toEqual([]);
  });

  test("from a checkpoint file: stored counter 2 comes back", () => {
    const early = new EarlyStoppingCallback({ earlyStoppingPatience: 2 });
    early.earlyStoppingPatienceCounter = 2;
    const saved = new TrainerState({
      globalStep: 6,
      statefulCallbacks: [early, new TrainerControl({ shouldSave: true })],
    });
    const path = join(work, "checkpoint-state.json");
    saved.saveToJson(path);
    const handler = new CallbackHandler([DefaultFlowCallback, EarlyStoppingCallback]);
    const loaded = TrainerState.loadFromJson(path);
    const control = restoreCallbackStates(handler, new TrainerControl(), loaded.statefulCallbacks);
    expect((handler.callbacks[1] as EarlyStoppingCallback).earlyStoppingPatienceCounter).toBe(2);
    expect(control.shouldSave).toBe(false);
  });

  test("the n-th stored record goes to the n-th callback of the class", () => {
    const a = new Stateful(0);
    const b = new Stateful(0);
    const handler = new CallbackHandler([DefaultFlowCallback, a, PrinterCallback, b]);
    const control = new TrainerControl();
    const result = restoreCallbackStates(handler, control, {
      Stateful: [
        { args: { value: 10 }, attributes: {} },
        { args: { value: 20 }, attributes: {} },
      ],
    });
    expect(result).toBe(control); // no stored TrainerControl: the control is kept
    expect((handler.callbacks[1] as Stateful).value).toBe(10);
    expect((handler.callbacks[3] as Stateful).value).toBe(20);
    expect(handler.callbacks[2]).toBeInstanceOf(PrinterCallback);
  });

  test("fewer records than callbacks: the extra callbacks are kept as they are", () => {
    const a = new Stateful(1);
    const b = new Stateful(2);
    const handler = new CallbackHandler([DefaultFlowCallback, a, b]);
    restoreCallbackStates(handler, new TrainerControl(), {
      Stateful: { args: { value: 7 }, attributes: {} },
    });
    expect((handler.callbacks[1] as Stateful).value).toBe(7);
    expect(handler.callbacks[2]).toBe(b);
  });

  test("warns for stored classes that are absent, and ignores them", () => {
    const handler = new CallbackHandler([DefaultFlowCallback, PrinterCallback]);
    const before = handler.callbacks.slice();
    const control = new TrainerControl();
    const result = restoreCallbackStates(handler, control, {
      EarlyStoppingCallback: new EarlyStoppingCallback().state(),
      MissingCallback: { args: {}, attributes: {} },
    });
    expect(result).toBe(control);
    expect(handler.callbacks).toEqual(before);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("EarlyStoppingCallback");
    expect(warnings[0]).toContain("MissingCallback");
  });
});

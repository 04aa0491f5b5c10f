import { join } from "node:path";
import {
  CALLBACK_EVENTS,
  TrainerCallback,
  TrainerState,
  isExportableState,
  type CallbackEvent,
  type StateRecord,
  type TrainkitPlugin,
} from "@trainkit/core";
import { REDACTED, definePlugin } from "@trainkit/core/plugin";
import { jsonDifference } from "./json-difference.js";

/** What one callback instance of the plugin went through in one run. */
export interface CallbackRecord {
  /** How many times each event reached the plugin's own method. */
  calls: Map<CallbackEvent, number>;
  /** Errors that escaped the plugin's event methods (thrown, or a rejected promise). */
  errors: { event: CallbackEvent; error: unknown }[];
  /** Events whose arguments were not what the Trainer should pass (a trainkit bug if any). */
  badArguments: string[];
  /** Each onTrainEnd: how long it took (ms, its promise included) and whether it settled in time. */
  trainEnds: { ms: number; settled: boolean }[];
  /** For a stateful callback, what each onSave found: its live state() against the file's record. */
  saves: { step: number; difference: string | undefined }[];
}

export function newRecord(): CallbackRecord {
  return { calls: new Map(), errors: [], badArguments: [], trainEnds: [], saves: [] };
}

export interface InstrumentOptions {
  /** onTrainEnd's promise is waited for this long at most; the run then goes on without it. */
  trainEndDeadlineMs: number;
}

/** One instantiation of the plugin's callback. */
export interface Created {
  callback: TrainerCallback;
  record: CallbackRecord;
}

/**
 * The plugin, with the same name and availability, whose create() returns the plugin's own
 * callback with every event method instrumented (the instance keeps its class, so its state()
 * is still checkpointed). The Trainer then guards it as it guards any integration.
 */
export function instrumentPlugin(
  plugin: TrainkitPlugin,
  created: Created[],
  options: InstrumentOptions,
): TrainkitPlugin {
  return definePlugin({
    name: plugin.name,
    isAvailable: (context) => plugin.isAvailable(context),
    create: async (context) => {
      const callback = await plugin.create(context);
      const record = newRecord();
      instrumentCallback(callback, record, options);
      created.push({ callback, record });
      return callback;
    },
  });
}

/** Wraps the instance's event methods (own properties shadowing the class's) to record them. */
export function instrumentCallback(
  callback: TrainerCallback,
  record: CallbackRecord,
  options: InstrumentOptions,
): void {
  if (typeof callback !== "object" || callback === null)
    throw new TypeError(
      `create() returned ${callback === null ? "null" : typeof callback}; it must return a TrainerCallback (class MyCallback extends TrainerCallback { ... }).`,
    );
  const target = callback as unknown as Record<string, unknown>;
  const stateful = isExportableState(callback);
  for (const event of CALLBACK_EVENTS) {
    const original = target[event];
    target[event] = (...args: unknown[]) => {
      record.calls.set(event, (record.calls.get(event) ?? 0) + 1);
      checkArguments(event, args, record);
      if (typeof original !== "function") {
        const error = new TypeError(
          `the plugin's callback has no ${event} method; extend TrainerCallback, which has a no-op method for every event`,
        );
        record.errors.push({ event, error });
        throw error;
      }
      if (event === "onSave" && stateful) record.saves.push(compareSavedState(callback, args));
      const start = performance.now();
      let result: unknown;
      try {
        result = (original as (...a: unknown[]) => unknown).apply(callback, args);
      } catch (error) {
        record.errors.push({ event, error });
        throw error;
      }
      const thenable =
        typeof result === "object" &&
        result !== null &&
        typeof (result as PromiseLike<unknown>).then === "function";
      if (!thenable) {
        if (event === "onTrainEnd")
          record.trainEnds.push({ ms: performance.now() - start, settled: true });
        return result;
      }
      const settled = Promise.resolve(result as PromiseLike<unknown>).then(
        (value) => {
          if (event === "onTrainEnd")
            record.trainEnds.push({ ms: performance.now() - start, settled: true });
          return value;
        },
        (error: unknown) => {
          record.errors.push({ event, error });
          if (event === "onTrainEnd")
            record.trainEnds.push({ ms: performance.now() - start, settled: true });
          throw error;
        },
      );
      return event === "onTrainEnd"
        ? withDeadline(settled, options.trainEndDeadlineMs, () =>
            record.trainEnds.push({ ms: performance.now() - start, settled: false }),
          )
        : settled;
    };
  }
}

/**
 * `promise`, or undefined once `ms` have passed without it settling (`onLate` is then called):
 * a plugin that never settles does not hold the conformance run up.
 */
function withDeadline<T>(promise: Promise<T>, ms: number, onLate: () => void): Promise<T | void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      onLate();
      resolve();
    }, ms);
  });
  return Promise.race([promise.finally(() => clearTimeout(timer)), late]);
}

/**
 * At onSave the checkpoint is already on disk: the callback's state() now must be what the
 * checkpoint's trainer_state.json holds for its class.
 */
function compareSavedState(
  callback: TrainerCallback,
  args: unknown[],
): { step: number; difference: string | undefined } {
  const outputDir = (args[0] as { outputDir: string }).outputDir;
  const step = (args[1] as { globalStep: number }).globalStep;
  const file = join(outputDir, `checkpoint-${step}`, "trainer_state.json");
  let live: StateRecord;
  try {
    live = (callback as unknown as { state(): StateRecord }).state();
  } catch (error) {
    return { step, difference: `state() threw: ${messageOf(error)}` };
  }
  let stored: unknown;
  try {
    stored = storedRecord(file, callback.constructor.name);
  } catch (error) {
    return { step, difference: `cannot read ${file}: ${messageOf(error)}` };
  }
  const problem = recordProblem(stored, callback.constructor.name, file);
  if (problem) return { step, difference: problem };
  const difference = jsonDifference(live, stored, "state()", "trainer_state.json");
  return { step, difference: difference && `at step ${step}, ${difference}` };
}

/** What a checkpoint's trainer_state.json holds for a class (the first record if several). */
export function storedRecord(file: string, className: string): unknown {
  const stored: unknown = TrainerState.loadFromJson(file).statefulCallbacks[className];
  return Array.isArray(stored) ? stored[0] : stored;
}

/** Why a stored value is not a state record that fromState() can use, if it is not. */
export function recordProblem(
  stored: unknown,
  className: string,
  file: string,
): string | undefined {
  if (stored === undefined) return `${file} has no stateful_callbacks["${className}"]`;
  if (stored === REDACTED)
    return `${file} holds "${REDACTED}" instead of the state of ${className}: trainkit's redaction took the class name for the name of a secret (a trainkit issue; a class name without Token, Secret, Password, ApiKey, Auth, Credential or Cookie in it avoids it)`;
  if (typeof stored !== "object" || stored === null || Array.isArray(stored))
    return `${file} holds ${JSON.stringify(stored)} for ${className}, not a { args, attributes } record`;
  return undefined;
}

function checkArguments(event: CallbackEvent, args: unknown[], record: CallbackRecord): void {
  const [trainingArgs, state, control, ctx] = args as Record<string, unknown>[];
  const problems: string[] = [];
  if (typeof trainingArgs?.outputDir !== "string") problems.push("args is not TrainingArguments");
  if (typeof state?.globalStep !== "number") problems.push("state is not a TrainerState");
  if (typeof control?.shouldTrainingStop !== "boolean")
    problems.push("control is not a TrainerControl");
  if (typeof ctx !== "object" || ctx === null) problems.push("ctx is missing");
  else {
    if (event === "onLog" && typeof ctx.logs !== "object") problems.push("ctx.logs is missing");
    if ((event === "onEvaluate" || event === "onPredict") && typeof ctx.metrics !== "object")
      problems.push("ctx.metrics is missing");
    if (ctx.model === undefined) problems.push("ctx.model is missing");
  }
  if (problems.length > 0) record.badArguments.push(`${event}: ${problems.join(", ")}`);
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A TrainerCallback that only counts the events the Trainer fires: the reference. */
export class EventCounter extends TrainerCallback {
  readonly calls = new Map<CallbackEvent, number>();

  constructor() {
    super();
    const target = this as unknown as Record<CallbackEvent, () => void>;
    for (const event of CALLBACK_EVENTS)
      target[event] = () => void this.calls.set(event, (this.calls.get(event) ?? 0) + 1);
  }
}

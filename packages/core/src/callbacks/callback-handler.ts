import type { TrainingArguments } from "../args/training-arguments.js";
import { TrainerControl } from "../state/trainer-control.js";
import type { TrainerState } from "../state/trainer-state.js";
import { logger } from "../util/logger.js";
import { redactText } from "../util/redact.js";
import { DefaultFlowCallback } from "./default-flow-callback.js";
import {
  CALLBACK_EVENTS,
  TrainerCallback,
  type CallbackContext,
  type CallbackEvent,
  type CallbackResult,
} from "./trainer-callback.js";

/** A callback given as an instance, or as a class the handler instantiates with no arguments. */
export type CallbackLike = TrainerCallback | (new () => TrainerCallback);

/** The objects every event passes to callbacks in `ctx`. */
export interface HandlerReferences {
  model?: unknown;
  processingClass?: unknown;
  optimizer?: unknown;
  lrScheduler?: unknown;
  trainDataloader?: unknown;
  evalDataloader?: unknown;
}

/** Event-specific values: `logs` for onLog, `metrics` for onEvaluate and onPredict, ... */
export type EventExtras = Record<string, unknown>;

type Dispatch = TrainerControl | Promise<TrainerControl>;

/**
 * Calls the callbacks in order for each event (HF's CallbackHandler). It is a TrainerCallback
 * itself: `handler.onStepEnd(args, state, control, extras?)` resets the flags HF resets for that
 * event, dispatches, and returns the resulting control. The result is a Promise only when a
 * callback returned one, so a synchronous dispatch stays synchronous.
 */
export class CallbackHandler extends TrainerCallback {
  readonly callbacks: TrainerCallback[] = [];
  #references: HandlerReferences;
  /** The ctx of events without extras: built once, shared, frozen so no callback can alter it. */
  #baseContext: CallbackContext;

  constructor(callbacks: Iterable<CallbackLike> = [], references: HandlerReferences = {}) {
    super();
    this.#references = { ...references };
    this.#baseContext = Object.freeze({ ...this.#references });
    for (const callback of callbacks) this.addCallback(callback);
    // HF checks isinstance: a subclass of DefaultFlowCallback counts (as does one from another
    // copy of @trainkit/core, recognised by its class name).
    if (
      !this.callbacks.some(
        (cb) => cb instanceof DefaultFlowCallback || cb.constructor.name === "DefaultFlowCallback",
      )
    ) {
      logger.warn(
        "The Trainer will not work properly without a DefaultFlowCallback in its callbacks. " +
          "Add one before training with trainer.addCallback(DefaultFlowCallback). " +
          `The current list of callbacks is:\n${this.callbackList}`,
      );
    }
  }

  get model(): unknown {
    return this.#references.model;
  }
  set model(value: unknown) {
    this.setReference("model", value);
  }
  get processingClass(): unknown {
    return this.#references.processingClass;
  }
  set processingClass(value: unknown) {
    this.setReference("processingClass", value);
  }
  get optimizer(): unknown {
    return this.#references.optimizer;
  }
  set optimizer(value: unknown) {
    this.setReference("optimizer", value);
  }
  get lrScheduler(): unknown {
    return this.#references.lrScheduler;
  }
  set lrScheduler(value: unknown) {
    this.setReference("lrScheduler", value);
  }
  get trainDataloader(): unknown {
    return this.#references.trainDataloader;
  }
  set trainDataloader(value: unknown) {
    this.setReference("trainDataloader", value);
  }
  get evalDataloader(): unknown {
    return this.#references.evalDataloader;
  }
  set evalDataloader(value: unknown) {
    this.setReference("evalDataloader", value);
  }

  private setReference(name: keyof HandlerReferences, value: unknown): void {
    this.#references[name] = value;
    this.#baseContext = Object.freeze({ ...this.#references });
  }

  /** Adds a callback (an instance, or a class to instantiate); a second of a class warns. */
  addCallback(callback: CallbackLike): void {
    const instance = typeof callback === "function" ? new callback() : callback;
    if (!(instance instanceof TrainerCallback)) checkLooksLikeCallback(instance, callback);
    const cls = instance.constructor;
    if (this.callbacks.some((cb) => cb.constructor === cls)) {
      logger.warn(
        `You are adding a ${cls.name} to the callbacks of this Trainer, but there is already one. ` +
          `The current list of callbacks is:\n${this.callbackList}`,
      );
    }
    this.callbacks.push(instance);
  }

  /** Removes and returns the first callback of a class, or that instance; undefined if absent. */
  popCallback(callback: CallbackLike): TrainerCallback | undefined {
    const index = this.callbacks.findIndex((cb) =>
      typeof callback === "function" ? cb instanceof callback : cb === callback,
    );
    if (index === -1) return undefined;
    return this.callbacks.splice(index, 1)[0];
  }

  /** Removes the first callback of a class, or that instance. */
  removeCallback(callback: CallbackLike): void {
    this.popCallback(callback);
  }

  /** The class names of the callbacks, one a line. */
  get callbackList(): string {
    return this.callbacks.map((cb) => cb.constructor.name).join("\n");
  }

  override onInitEnd(args: TrainingArguments, state: TrainerState, control: TrainerControl) {
    return this.callEvent("onInitEnd", args, state, control);
  }
  override onTrainBegin(args: TrainingArguments, state: TrainerState, control: TrainerControl) {
    control.newTraining();
    return this.callEvent("onTrainBegin", args, state, control);
  }
  override onTrainEnd(args: TrainingArguments, state: TrainerState, control: TrainerControl) {
    return this.callEvent("onTrainEnd", args, state, control);
  }
  /**
   * Tells every callback that has onException (callbacks from another copy of core may not)
   * that training failed; their own errors are reported, never thrown over the original.
   */
  override async onException(
    args: TrainingArguments,
    state: TrainerState,
    control: TrainerControl,
    extras: EventExtras,
  ): Promise<void> {
    const ctx = Object.freeze({ ...this.#baseContext, ...extras });
    for (const callback of this.callbacks) {
      if (typeof callback.onException !== "function") continue;
      try {
        await callback.onException(args, state, control, ctx);
      } catch (error) {
        logger.warn(
          `${callback.constructor.name}.onException failed: ${redactText(error instanceof Error ? error.message : String(error))}`,
        );
      }
    }
  }
  override onEpochBegin(args: TrainingArguments, state: TrainerState, control: TrainerControl) {
    control.newEpoch();
    return this.callEvent("onEpochBegin", args, state, control);
  }
  override onEpochEnd(args: TrainingArguments, state: TrainerState, control: TrainerControl) {
    return this.callEvent("onEpochEnd", args, state, control);
  }
  override onStepBegin(args: TrainingArguments, state: TrainerState, control: TrainerControl) {
    control.newStep();
    return this.callEvent("onStepBegin", args, state, control);
  }
  override onPreOptimizerStep(
    args: TrainingArguments,
    state: TrainerState,
    control: TrainerControl,
  ) {
    return this.callEvent("onPreOptimizerStep", args, state, control);
  }
  override onOptimizerStep(args: TrainingArguments, state: TrainerState, control: TrainerControl) {
    return this.callEvent("onOptimizerStep", args, state, control);
  }
  override onSubstepEnd(args: TrainingArguments, state: TrainerState, control: TrainerControl) {
    return this.callEvent("onSubstepEnd", args, state, control);
  }
  override onStepEnd(args: TrainingArguments, state: TrainerState, control: TrainerControl) {
    return this.callEvent("onStepEnd", args, state, control);
  }
  override onEvaluate(
    args: TrainingArguments,
    state: TrainerState,
    control: TrainerControl,
    extras?: EventExtras,
  ) {
    control.shouldEvaluate = false;
    return this.callEvent("onEvaluate", args, state, control, extras);
  }
  override onPredict(
    args: TrainingArguments,
    state: TrainerState,
    control: TrainerControl,
    extras?: EventExtras,
  ) {
    return this.callEvent("onPredict", args, state, control, extras);
  }
  override onSave(args: TrainingArguments, state: TrainerState, control: TrainerControl) {
    control.shouldSave = false;
    return this.callEvent("onSave", args, state, control);
  }
  override onLog(
    args: TrainingArguments,
    state: TrainerState,
    control: TrainerControl,
    extras?: EventExtras,
  ) {
    control.shouldLog = false;
    return this.callEvent("onLog", args, state, control, extras);
  }
  override onPredictionStep(
    args: TrainingArguments,
    state: TrainerState,
    control: TrainerControl,
    extras?: EventExtras,
  ) {
    return this.callEvent("onPredictionStep", args, state, control, extras);
  }

  /**
   * Calls `event` on every callback in order, without HF's flag resets (the event methods
   * above apply those). A TrainerControl returned by a callback replaces `control` for the
   * callbacks after it.
   */
  callEvent(
    event: CallbackEvent,
    args: TrainingArguments,
    state: TrainerState,
    control: TrainerControl,
    extras?: EventExtras,
  ): Dispatch {
    const ctx = extras ? Object.freeze({ ...this.#baseContext, ...extras }) : this.#baseContext;
    const callbacks = this.callbacks;
    for (let i = 0; i < callbacks.length; i++) {
      const callback = callbacks[i]!;
      const result: CallbackResult = callback[event](args, state, control, ctx);
      if (result === undefined || result === null) continue;
      if (result instanceof TrainerControl) control = result;
      else if (isThenable(result))
        return this.finishAsync(event, i, result, args, state, control, ctx);
      else throw badReturn(callback, event, result);
    }
    return control;
  }

  /** The rest of a dispatch once a callback has returned a promise: awaited in order. */
  private async finishAsync(
    event: CallbackEvent,
    index: number,
    pending: PromiseLike<unknown>,
    args: TrainingArguments,
    state: TrainerState,
    control: TrainerControl,
    ctx: CallbackContext,
  ): Promise<TrainerControl> {
    const callbacks = this.callbacks;
    for (let i = index; i < callbacks.length; i++) {
      const callback = callbacks[i]!;
      let result: unknown = i === index ? pending : callback[event](args, state, control, ctx);
      // Only real promises are awaited: a synchronous callback costs no microtask here either.
      if (isThenable(result)) result = await result;
      if (result === undefined || result === null) continue;
      if (result instanceof TrainerControl) control = result;
      else throw badReturn(callback, event, result);
    }
    return control;
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { then?: unknown }).then === "function"
  );
}

function badReturn(callback: TrainerCallback, event: string, result: unknown): TypeError {
  return new TypeError(
    `${callback.constructor.name}.${event} returned ${describe(result)}. An event method may ` +
      `return nothing, a TrainerControl, or a Promise of one; change the method so it does not ` +
      `return this value.`,
  );
}

/**
 * A callback that is not a TrainerCallback of this copy of @trainkit/core (one from another
 * copy, or a hand-written object) must have every event method: the handler calls them all.
 */
function checkLooksLikeCallback(value: unknown, given: unknown): asserts value is TrainerCallback {
  if (typeof value !== "object" || value === null) {
    throw new TypeError(
      `addCallback expects a TrainerCallback subclass or instance, got ${describe(given)}.`,
    );
  }
  const missing = CALLBACK_EVENTS.filter(
    (event) => typeof (value as Record<string, unknown>)[event] !== "function",
  );
  if (missing.length > 0) {
    throw new TypeError(
      `addCallback expects a TrainerCallback subclass or instance, got ${describe(given)}, which has no ${missing.join(", ")} method${missing.length > 1 ? "s" : ""}. Extend TrainerCallback (class MyCallback extends TrainerCallback { ... }): it has a no-op method for every event.`,
    );
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "function") return `the function ${value.name || "(anonymous)"}`;
  if (typeof value === "object") return `an object of class ${value.constructor?.name ?? "Object"}`;
  return `${typeof value} ${JSON.stringify(value)}`;
}

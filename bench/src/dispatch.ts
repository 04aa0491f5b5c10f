/**
 * Callback dispatch cost: nanoseconds per event for 10 no-op synchronous callbacks, against
 * HF's CallbackHandler on the same work (recorded in shared/spec/hf-semantics.md) and a bare
 * loop making the same 10 calls, measured in this run.
 */
import {
  CallbackHandler,
  DefaultFlowCallback,
  TrainerCallback,
  TrainerControl,
  TrainerState,
  TrainingArguments,
  setLogger,
} from "@trainkit/core";
import { machineInfo, median, timeRounds, writeResult } from "./measure.js";

/** HF transformers 5.17 on this kind of machine: call_event("on_step_end"), 10 no-op callbacks. */
const HF_NS_PER_EVENT = 7108;
/** HF's handler.on_step_begin (which also resets 3 flags). */
const HF_NS_STEP_BEGIN = 7254;
const TARGET_NS = 350;

/** Ten distinct no-op subclasses, so the call sites see ten receiver classes as in HF's setup. */
function noOpCallbacks(): TrainerCallback[] {
  return Array.from({ length: 10 }, (_, i) => {
    const cls = { [`NoOp${i}`]: class extends TrainerCallback {} }[`NoOp${i}`]!;
    return new cls();
  });
}

export function benchDispatch() {
  const previous = setLogger({ info() {}, warn() {} });
  const callbacks = noOpCallbacks();
  const handler = new CallbackHandler([DefaultFlowCallback, ...callbacks], {
    model: {},
    optimizer: {},
  });
  handler.removeCallback(DefaultFlowCallback);
  setLogger(previous);
  const args = new TrainingArguments({ reportTo: "none" });
  const state = new TrainerState();
  let control = new TrainerControl();
  const ctx = { model: {}, optimizer: {} };

  const results = timeRounds(
    {
      callEvent: (n) => {
        for (let i = 0; i < n; i++)
          control = handler.callEvent("onStepEnd", args, state, control) as TrainerControl;
      },
      onStepBegin: (n) => {
        for (let i = 0; i < n; i++)
          control = handler.onStepBegin(args, state, control) as TrainerControl;
      },
      bareLoop: (n) => {
        for (let i = 0; i < n; i++)
          for (let j = 0; j < callbacks.length; j++)
            callbacks[j]!.onStepEnd(args, state, control, ctx);
      },
    },
    { iterations: 200_000, rounds: 9 },
  );

  const perEvent = median(results.callEvent!);
  const stepBegin = median(results.onStepBegin!);
  const bare = median(results.bareLoop!);
  const summary = {
    benchmark: "callback dispatch, 10 no-op synchronous callbacks",
    ...machineInfo(),
    rounds: results.callEvent!.length,
    ns_per_event: round(perEvent),
    ns_per_callback: round(perEvent / 10),
    ns_per_event_on_step_begin: round(stepBegin),
    ns_per_event_bare_loop: round(bare),
    overhead_vs_bare_loop: round(perEvent / bare),
    hf_ns_per_event: HF_NS_PER_EVENT,
    hf_ns_per_event_on_step_begin: HF_NS_STEP_BEGIN,
    speedup_vs_hf: round(HF_NS_PER_EVENT / perEvent),
    speedup_vs_hf_on_step_begin: round(HF_NS_STEP_BEGIN / stepBegin),
    target_ns_per_event: TARGET_NS,
    meets_target: perEvent <= TARGET_NS,
    samples_ns: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.map(round)])),
  };
  const path = writeResult("dispatch", summary);
  console.log(
    "Callback dispatch (10 no-op synchronous callbacks), median of",
    summary.rounds,
    "rounds",
  );
  console.log(
    `  trainkit handler.callEvent("onStepEnd"): ${summary.ns_per_event} ns/event (${summary.ns_per_callback} ns/callback)`,
  );
  console.log(
    `  trainkit handler.onStepBegin (3 resets): ${summary.ns_per_event_on_step_begin} ns/event`,
  );
  console.log(
    `  bare loop, same 10 calls (this run):     ${summary.ns_per_event_bare_loop} ns/event -> handler is ${summary.overhead_vs_bare_loop}x the bare loop`,
  );
  console.log(
    `  HF transformers call_event (recorded):   ${HF_NS_PER_EVENT} ns/event -> trainkit is ${summary.speedup_vs_hf}x faster (target: <= ${TARGET_NS} ns, ${summary.meets_target ? "met" : "NOT met"})`,
  );
  console.log(`  written to ${path}`);
  return summary;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

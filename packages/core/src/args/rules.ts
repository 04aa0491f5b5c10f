/**
 * The rules between options (HF's `TrainingArguments.__post_init__`, plus the mistakes HF
 * lets through that would only show up hours into a run).
 */

import { closestName } from "../util/case.js";
import { show } from "./options.js";

export interface Problem {
  option: string;
  message: string;
}

export function crossFieldProblems(v: Record<string, unknown>): Problem[] {
  const problems: Problem[] = [];
  const add = (option: string, message: string) => problems.push({ option, message });

  const maxSteps = v.maxSteps as number;
  const epochs = v.numTrainEpochs as number;
  if (maxSteps === -1 && epochs === 0)
    add(
      "numTrainEpochs",
      `is 0 and maxSteps is -1, so there is nothing to train. Set numTrainEpochs above 0 or maxSteps to a number of steps.`,
    );

  const evalStrategy = v.evalStrategy as string;
  const saveStrategy = v.saveStrategy as string;
  const evalSteps = (v.evalSteps ?? v.loggingSteps) as number;
  const saveSteps = v.saveSteps as number;
  const metric = v.metricForBestModel as string | null;

  if (v.loadBestModelAtEnd) {
    if (evalStrategy === "no")
      add(
        "loadBestModelAtEnd",
        `needs evaluations to pick the best model, but evalStrategy is "no". Set evalStrategy to "steps" or "epoch".`,
      );
    else if (saveStrategy !== "best" && evalStrategy !== saveStrategy)
      add(
        "loadBestModelAtEnd",
        `requires the save and eval strategies to match, but evalStrategy is "${evalStrategy}" and saveStrategy is "${saveStrategy}". Set both to the same value.`,
      );
    else if (saveStrategy === "steps" && !isMultiple(saveSteps, evalSteps))
      add(
        "loadBestModelAtEnd",
        `requires saveSteps to be a round multiple of evalSteps, but saveSteps is ${saveSteps} and evalSteps is ${evalSteps}. Use saveSteps ${multipleHint(saveSteps, evalSteps)}.`,
      );
  }

  if (metric !== null && evalStrategy === "no" && !v.loadBestModelAtEnd)
    add(
      "metricForBestModel",
      `is "${metric}" but evalStrategy is "no", so the metric is never computed. Set evalStrategy to "steps" or "epoch", or remove metricForBestModel.`,
    );

  if (saveStrategy === "best") {
    if (metric === null && !v.loadBestModelAtEnd)
      add(
        "saveStrategy",
        `is "best", which needs metricForBestModel to know what best means. Set metricForBestModel, e.g. "loss".`,
      );
    if (evalStrategy === "no")
      add(
        "saveStrategy",
        `is "best", which saves after evaluations, but evalStrategy is "no". Set evalStrategy to "steps" or "epoch".`,
      );
  }

  if (v.evalOnStart && evalStrategy === "no")
    add(
      "evalOnStart",
      `is true but evalStrategy is "no". Set evalStrategy to "steps" or "epoch", or evalOnStart to false.`,
    );

  problems.push(...optimArgsProblems(v.optim as string, v.optimArgs as string | null));
  problems.push(
    ...schedulerKwargsProblems(
      v.lrSchedulerType as string,
      v.lrSchedulerKwargs as Record<string, unknown> | null,
    ),
  );

  return problems;
}

type ValueType = "number" | "boolean";

/** The optimArgs each optimizer takes (torch.optim's keyword arguments), with their types. */
const OPTIM_ARGS: Record<string, Record<string, ValueType>> = {
  sgd: { momentum: "number", dampening: "number", nesterov: "boolean" },
  adam: {},
  adamw: {},
};

/** The lrSchedulerKwargs each schedule takes (transformers' get_scheduler), with their types. */
const SCHEDULER_KWARGS: Record<string, Record<string, ValueType>> = {
  linear: {},
  constant: {},
  constant_with_warmup: {},
  cosine: { num_cycles: "number" },
  cosine_with_restarts: { num_cycles: "number" },
  polynomial: { lr_end: "number", power: "number" },
};

/** What Adam's options are called here, for someone who writes torch's names in optimArgs. */
const ADAM_OPTIONS: Record<string, string> = {
  eps: "adamEpsilon",
  betas: "adamBeta1 and adamBeta2",
  weight_decay: "weightDecay",
  lr: "learningRate",
};

/** HF's optim_args: "momentum=0.9,nesterov=True" → { momentum: 0.9, nesterov: true }. */
export function parseOptimArgs(text: string | null): Record<string, number | boolean> {
  const out: Record<string, number | boolean> = {};
  if (!text) return out;
  for (const pair of text.split(",")) {
    const [key = "", raw = ""] = pair.split("=").map((s) => s.trim());
    out[key] = /^true$/i.test(raw) ? true : /^false$/i.test(raw) ? false : Number(raw);
  }
  return out;
}

function describeType(type: ValueType): string {
  return type === "number" ? "a number" : "true or false";
}

function hasType(value: unknown, type: ValueType): boolean {
  return type === "number"
    ? typeof value === "number" && Number.isFinite(value)
    : typeof value === "boolean";
}

/** Names in `table` (other than `current`) whose entries take `key`. */
function ownersOf(table: Record<string, Record<string, ValueType>>, key: string, current: string) {
  return Object.keys(table).filter((name) => name !== current && Object.hasOwn(table[name]!, key));
}

/** The type `table` gives `key` (own keys only: "constructor" is not an argument). */
function typeOf(table: Record<string, ValueType>, key: string): ValueType | undefined {
  return Object.hasOwn(table, key) ? table[key] : undefined;
}

function optimArgsProblems(optim: string, text: string | null): Problem[] {
  const problems: Problem[] = [];
  const add = (message: string) => problems.push({ option: "optimArgs", message });
  const accepted = OPTIM_ARGS[optim] ?? {};
  const names = Object.keys(accepted);
  const sgdOnly: string[] = [];
  for (const [key, value] of Object.entries(parseOptimArgs(text))) {
    const type = typeOf(accepted, key);
    if (type !== undefined) {
      if (!hasType(value, type))
        add(
          `sets ${key} to a value that is not ${describeType(type)} (got ${show(text)}), e.g. "${key}=${type === "number" ? "0.9" : "True"}".`,
        );
    } else if (ownersOf(OPTIM_ARGS, key, optim).includes("sgd")) {
      sgdOnly.push(key);
    } else if (names.length === 0) {
      const alias = Object.hasOwn(ADAM_OPTIONS, key) ? ADAM_OPTIONS[key] : undefined;
      add(
        `sets "${key}", but optim "${optim}" takes no optimArgs here.` +
          (alias ? ` Use the ${alias} option instead.` : ` Remove "${key}".`),
      );
    } else {
      const closest = closestName(key, names);
      add(
        `sets "${key}", which optim "${optim}" does not take; it takes ${names.join(", ")}.` +
          (closest ? ` Did you mean ${closest}?` : ` Remove "${key}".`),
      );
    }
  }
  if (sgdOnly.length > 0)
    add(
      `sets SGD momentum options (${sgdOnly.join(", ")}), but optim is "${optim}". Set optim to "sgd".`,
    );
  return problems;
}

function schedulerKwargsProblems(type: string, kwargs: Record<string, unknown> | null): Problem[] {
  const problems: Problem[] = [];
  if (!kwargs) return problems;
  const accepted = SCHEDULER_KWARGS[type] ?? {};
  const names = Object.keys(accepted);
  for (const [key, value] of Object.entries(kwargs)) {
    const expected = typeOf(accepted, key);
    if (expected === undefined) {
      const elsewhere = ownersOf(SCHEDULER_KWARGS, key, type);
      const takes =
        names.length === 0
          ? `lrSchedulerType "${type}" takes none`
          : `lrSchedulerType "${type}" takes ${names.join(", ")}`;
      const closest = closestName(key, names);
      const hint =
        elsewhere.length > 0
          ? ` ${key} is an argument of ${elsewhere.map((n) => `"${n}"`).join(" and ")}: set lrSchedulerType, or remove ${key}.`
          : closest
            ? ` Did you mean ${closest}?`
            : ` Remove ${key}.`;
      problems.push({
        option: "lrSchedulerKwargs",
        message: `has "${key}", which ${takes}.${hint}`,
      });
    } else if (!hasType(value, expected)) {
      problems.push({
        option: "lrSchedulerKwargs",
        message: `.${key} must be ${describeType(expected)} (got ${show(value)}).`,
      });
    }
  }
  return problems;
}

/** HF's multiple test, which also accepts two ratios (e.g. save 0.2, eval 0.1). */
function isMultiple(save: number, evalEvery: number): boolean {
  const scale = save < 1 && evalEvery < 1 ? 1_000_000 : 1;
  if (save < 1 !== evalEvery < 1) return false;
  return Math.round(save * scale) % Math.round(evalEvery * scale) === 0;
}

function multipleHint(save: number, evalEvery: number): string {
  if (save < 1 || evalEvery < 1) return "and evalSteps both as whole numbers or both as ratios";
  return `${Math.max(evalEvery, Math.round(save / evalEvery) * evalEvery)} (a multiple of ${evalEvery})`;
}

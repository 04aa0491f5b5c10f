/**
 * The rules between options (HF's `TrainingArguments.__post_init__`, plus the mistakes HF
 * lets through that would only show up hours into a run).
 */

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

  const optim = v.optim as string;
  const optimArgs = v.optimArgs as string | null;
  if (optimArgs && optim !== "sgd" && /momentum|nesterov|dampening/.test(optimArgs))
    add("optimArgs", `sets SGD momentum options, but optim is "${optim}". Set optim to "sgd".`);

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

/**
 * The final model as `Trainer.saveModel` writes it (model.json + weights.bin in tfjs-node's
 * layout, and training_args.json), for HF's `log_model=True`: HF builds a Trainer to call
 * `save_model`; a callback only has the model, so it calls the same writer core uses.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { saveModelFiles, type TrainableModel, type TrainingArguments } from "@trainkit/core/plugin";

export function isSavableModel(model: unknown): model is TrainableModel {
  return typeof (model as TrainableModel | null)?.trainableVariables === "function";
}

/** Writes `model` and `args` into `dir` (created if needed). */
export async function saveModel(
  dir: string,
  model: TrainableModel,
  args: TrainingArguments,
): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await saveModelFiles(dir, model);
  args.saveToJson(join(dir, "training_args.json"));
}

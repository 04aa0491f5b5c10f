import { existsSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { TrainerState } from "../../state/trainer-state.js";
import { readJsonFile, writeFileAtomic } from "../../util/json-file.js";
import { dumpPythonJson } from "../../util/python-json.js";
import { loadTensors, saveTensors } from "../model/model-io.js";
import type { TrainableModel } from "../model/trainable-model.js";
import type { Optimizer, OptimizerState } from "../optim/optimizers.js";

/** HF's file names, plus trainkit's loop state (what makes a resumed run log the same). */
export const FILES = {
  trainerState: "trainer_state.json",
  trainingArgs: "training_args.json",
  optimizerJson: "optimizer.json",
  optimizerBin: "optimizer.bin",
  scheduler: "scheduler.json",
  rngState: "rng_state.json",
  loopState: "loop_state.json",
} as const;

/** The loss accumulators between logs, so a resumed run logs exactly what an unbroken one would. */
export interface LoopState {
  tr_loss: number;
  total_loss_scalar: number;
  globalstep_last_logged: number;
}

export interface RngState {
  data_seed: number;
  generator: "splitmix32-fisher-yates";
}

export function modelVariables(model: TrainableModel): tf.Variable[] {
  return model.variables?.() ?? model.trainableVariables();
}

export async function saveModelFiles(dir: string, model: TrainableModel): Promise<void> {
  const variables = modelVariables(model);
  await saveTensors(
    dir,
    variables,
    variables.map((v) => v.name),
    model.topology?.(),
  );
}

/** Assigns checked tensors (from loadTensors or readCheckpoint) to the model's variables. */
export function assignModelTensors(model: TrainableModel, tensors: readonly tf.Tensor[]): void {
  modelVariables(model).forEach((v, i) => v.assign(tensors[i]!));
}

/** Reads and checks a checkpoint's model weights, then assigns them; nothing changes on error. */
export function loadModelFiles(dir: string, model: TrainableModel): void {
  const tensors = loadTensors(dir, modelVariables(model));
  assignModelTensors(model, tensors);
  tf.dispose(tensors);
}

export async function saveOptimizerFiles(dir: string, optimizer: Optimizer): Promise<void> {
  const { step, slots } = optimizer.getState();
  const slotNames = Object.keys(slots[0] ?? {});
  const tensors = slots.flatMap((slot) => slotNames.map((name) => slot[name]!));
  const names = slots.flatMap((_, i) => slotNames.map((name) => `${i}/${name}`));
  await saveTensors(
    dir,
    tensors,
    names,
    undefined,
    { json: FILES.optimizerJson, bin: FILES.optimizerBin },
    { optimizer: optimizer.name, step, slot_names: slotNames },
  );
}

/** Everything needed to resume, read and checked before any of it is applied. */
export interface LoadedCheckpoint {
  dir: string;
  state: TrainerState;
  modelTensors: tf.Tensor[];
  optimizer?: OptimizerState;
  schedulerState?: { step_count?: unknown };
  rng?: RngState;
  loop?: LoopState;
}

/**
 * Reads a checkpoint for resuming and checks it against the model and optimizer, naming the
 * file and the problem for anything missing, damaged or written by a different model.
 */
export function readCheckpoint(
  dir: string,
  model: TrainableModel,
  optimizer: Optimizer,
): LoadedCheckpoint {
  if (!existsSync(dir)) throw new Error(`Cannot resume: checkpoint folder ${dir} does not exist.`);
  const state = TrainerState.loadFromJson(join(dir, FILES.trainerState));
  const variables = modelVariables(model);
  const modelTensors = loadTensors(dir, variables);
  const loaded: LoadedCheckpoint = { dir, state, modelTensors };
  try {
    if (!existsSync(join(dir, FILES.optimizerJson))) {
      throw new Error(
        `Cannot resume from ${dir}: it has no ${FILES.optimizerJson} (it was saved with saveOnlyModel), so the optimizer state is lost. Load its weights with trainer.loadModel() and start a new training instead.`,
      );
    }
    const optimizerJson = join(dir, FILES.optimizerJson);
    const manifest = readJsonFile(optimizerJson) as {
      optimizer?: unknown;
      step?: unknown;
      slot_names?: unknown;
    } | null;
    if (manifest?.optimizer !== optimizer.name) {
      throw new Error(
        `${optimizerJson} holds the state of optimizer "${String(manifest?.optimizer)}" but this Trainer uses "${optimizer.name}": set optim to "${String(manifest?.optimizer)}" to resume.`,
      );
    }
    if (typeof manifest.step !== "number" || !Number.isInteger(manifest.step) || manifest.step < 0)
      throw new Error(`${optimizerJson} has no valid step count: the file is damaged.`);
    const slotNames = manifest.slot_names;
    if (!Array.isArray(slotNames) || !slotNames.every((name) => typeof name === "string"))
      throw new Error(`${optimizerJson} has no slot_names list: the file is damaged.`);
    const current = optimizer.getState().slots;
    const currentNames = Object.keys(current[0] ?? {});
    if (slotNames.join() !== currentNames.join()) {
      throw new Error(
        `${optimizerJson} holds the slots [${slotNames.join(", ")}] but this Trainer's ${optimizer.name} has [${currentNames.join(", ")}]: it was saved with other optimizer settings (optimArgs, e.g. momentum). Use the same optimArgs to resume.`,
      );
    }
    const expected = current.flatMap((slot) => slotNames.map((name) => slot[name]!));
    const tensors = loadTensors(
      dir,
      expected,
      { json: FILES.optimizerJson, bin: FILES.optimizerBin },
      `this Trainer's ${optimizer.name} optimizer`,
    );
    loaded.optimizer = {
      step: manifest.step,
      slots: current.map((_, i) =>
        Object.fromEntries(slotNames.map((name, j) => [name, tensors[i * slotNames.length + j]!])),
      ),
    };
    const schedulerJson = join(dir, FILES.scheduler);
    const schedulerState = readJsonFile(schedulerJson) as { step_count?: unknown } | null;
    if (typeof schedulerState?.step_count !== "number")
      throw new Error(`${schedulerJson} has no step_count: the file is damaged.`);
    loaded.schedulerState = schedulerState;
    const rngJson = join(dir, FILES.rngState);
    const rng = readJsonFile(rngJson) as RngState | null;
    if (typeof rng?.data_seed !== "number")
      throw new Error(`${rngJson} has no data_seed: the file is damaged.`);
    loaded.rng = rng;
    const loopJson = join(dir, FILES.loopState);
    if (existsSync(loopJson)) {
      const loop = readJsonFile(loopJson) as Partial<LoopState> | null;
      for (const key of ["tr_loss", "total_loss_scalar", "globalstep_last_logged"] as const)
        if (typeof loop?.[key] !== "number")
          throw new Error(`${loopJson} has no ${key}: the file is damaged.`);
      loaded.loop = loop as LoopState;
    }
  } catch (error) {
    disposeCheckpoint(loaded);
    throw error;
  }
  return loaded;
}

export function disposeCheckpoint(loaded: LoadedCheckpoint): void {
  tf.dispose(loaded.modelTensors);
  if (loaded.optimizer) tf.dispose(loaded.optimizer.slots.flatMap((slot) => Object.values(slot)));
}

/** Keys of the checkpoint's JSON files that hold floats, written as Python writes floats. */
const FLOAT_KEYS = new Set(["tr_loss", "total_loss_scalar", "base_lr"]);

/**
 * Writes one of the checkpoint's JSON files as Python's json module would: NaN and ±Infinity
 * (a diverged loss) stay numbers instead of becoming null, and `readCheckpoint` reads them back.
 */
export function writeJson(dir: string, file: string, value: unknown): void {
  writeFileAtomic(
    join(dir, file),
    dumpPythonJson(value, { isFloat: (path) => FLOAT_KEYS.has(path.at(-1) ?? "") }),
  );
}

import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { readJsonFile, writeFileAtomic } from "../../util/json-file.js";
import { sameShape } from "../../util/shapes.js";

export const MODEL_FILE = "model.json";
export const WEIGHTS_FILE = "weights.bin";

interface ModelJson {
  format?: string;
  generatedBy?: string;
  modelTopology?: object | null;
  weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
}

/**
 * Writes variables as model.json + weights.bin in tfjs-node's layout, so that
 * `tf.loadLayersModel("file://…/model.json")` reads a LayersModel's checkpoint. `extra` fields
 * are written into the JSON file next to the manifest (the optimizer's name and step, ...).
 */
export async function saveTensors(
  dir: string,
  tensors: readonly tf.Tensor[],
  names: readonly string[],
  topology?: object,
  files = { json: MODEL_FILE, bin: WEIGHTS_FILE },
  extra: Record<string, unknown> = {},
): Promise<void> {
  const named = tensors.map((tensor, i) => ({ name: names[i]!, tensor }));
  const { data, specs } = await tf.io.encodeWeights(named);
  const json: ModelJson = {
    format: topology ? "layers-model" : "trainkit-tensors",
    generatedBy: `TensorFlow.js tfjs v${tf.version.tfjs}`,
    modelTopology: topology ?? null,
    weightsManifest: [{ paths: [files.bin], weights: specs }],
    ...extra,
  };
  writeFileAtomic(join(dir, files.bin), new Uint8Array(data as ArrayBuffer));
  writeFileAtomic(join(dir, files.json), `${JSON.stringify(json)}\n`);
}

/** Bytes a weight spec takes in the .bin file (quantized weights take their stored size). */
function specBytes(spec: tf.io.WeightsManifestEntry): number {
  const size = spec.shape.reduce((a, b) => a * b, 1);
  const stored = spec.quantization?.dtype ?? spec.dtype;
  const width =
    stored === "bool" || stored === "uint8"
      ? 1
      : stored === "uint16" || stored === "float16"
        ? 2
        : 4;
  return size * width;
}

function isWeightSpec(value: unknown): value is tf.io.WeightsManifestEntry {
  const spec = value as Partial<tf.io.WeightsManifestEntry> | null;
  return (
    typeof spec === "object" &&
    spec !== null &&
    typeof spec.name === "string" &&
    typeof spec.dtype === "string" &&
    Array.isArray(spec.shape) &&
    spec.shape.every((d) => Number.isInteger(d) && d >= 0)
  );
}

/**
 * Reads tensors written by `saveTensors` and checks them against what they will be loaded
 * into (count, shapes and dtypes, in order) and the .bin file against its manifest, naming the
 * file and the mismatch when they differ. `owner` names what the tensors belong to in errors.
 */
export function loadTensors(
  dir: string,
  expected: readonly { shape: number[]; dtype: string }[],
  files = { json: MODEL_FILE, bin: WEIGHTS_FILE },
  owner = "the model",
): tf.Tensor[] {
  const jsonPath = join(dir, files.json);
  const binPath = join(dir, files.bin);
  const manifest = readJsonFile(jsonPath) as ModelJson | null;
  const groups = manifest?.weightsManifest;
  if (!Array.isArray(groups) || groups.length === 0 || !Array.isArray(groups[0]?.weights))
    throw new Error(
      `${jsonPath} has no weightsManifest: it is not a trainkit or tfjs weights file.`,
    );
  if (groups.length > 1)
    throw new Error(
      `${jsonPath} splits its weights over ${groups.length} groups of files; trainkit reads one ${files.bin}. Load it with tf.loadLayersModel and copy the weights instead.`,
    );
  const specs: unknown[] = groups[0]!.weights;
  specs.forEach((spec, i) => {
    if (!isWeightSpec(spec))
      throw new Error(
        `${jsonPath}: weightsManifest entry ${i} is not a weight spec ({ name, shape, dtype }): the file is damaged.`,
      );
  });
  const checked = specs as tf.io.WeightsManifestEntry[];
  // What the file describes must be what it will be loaded into...
  if (checked.length !== expected.length) {
    throw new Error(
      `${jsonPath} holds ${checked.length} tensors but ${owner} has ${expected.length}: the checkpoint was written by a different model or with different settings.`,
    );
  }
  checked.forEach((spec, i) => {
    const want = expected[i]!;
    if (!sameShape(spec.shape, want.shape)) {
      throw new Error(
        `${jsonPath}: tensor ${i} ("${spec.name}") has shape [${spec.shape}] but ${owner}'s has shape [${want.shape}]: the checkpoint was written by a different model.`,
      );
    }
    if (spec.dtype !== want.dtype) {
      throw new Error(
        `${jsonPath}: tensor ${i} ("${spec.name}") has dtype ${spec.dtype} but ${owner}'s is ${want.dtype}: the checkpoint was written by a different model.`,
      );
    }
  });
  if (new Set(checked.map((spec) => spec.name)).size !== checked.length)
    throw new Error(`${jsonPath}: two tensors have the same name: the file is damaged.`);
  // ...and the .bin file must hold exactly what the manifest describes.
  let data: Buffer;
  try {
    data = readFileSync(binPath);
  } catch (error) {
    throw new Error(
      `Checkpoint file ${binPath} is missing or unreadable: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const expectedBytes = checked.reduce((sum, spec) => sum + specBytes(spec), 0);
  if (data.byteLength !== expectedBytes) {
    throw new Error(
      `${binPath} holds ${data.byteLength} bytes but ${jsonPath} describes ${expectedBytes}: the checkpoint is damaged or was cut short.`,
    );
  }
  // A copy: a small file's Buffer may share a pooled ArrayBuffer with other data.
  const buffer = new Uint8Array(data).buffer;
  const decoded = tf.io.decodeWeights(buffer, checked);
  return checked.map((spec) => decoded[spec.name]!);
}

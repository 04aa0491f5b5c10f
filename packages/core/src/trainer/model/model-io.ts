import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";

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
 * `tf.loadLayersModel("file://…/model.json")` reads a LayersModel's checkpoint.
 */
export async function saveTensors(
  dir: string,
  tensors: readonly tf.Tensor[],
  names: readonly string[],
  topology?: object,
  files = { json: MODEL_FILE, bin: WEIGHTS_FILE },
): Promise<void> {
  const named = tensors.map((tensor, i) => ({ name: names[i]!, tensor }));
  const { data, specs } = await tf.io.encodeWeights(named);
  const json: ModelJson = {
    format: topology ? "layers-model" : "trainkit-tensors",
    generatedBy: `TensorFlow.js tfjs v${tf.version.tfjs}`,
    modelTopology: topology ?? null,
    weightsManifest: [{ paths: [files.bin], weights: specs }],
  };
  writeFileSync(join(dir, files.bin), Buffer.from(data as ArrayBuffer));
  writeFileSync(join(dir, files.json), `${JSON.stringify(json)}\n`);
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
  const manifest = readJson(jsonPath) as ModelJson | null;
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
    if (spec.shape.join("x") !== want.shape.join("x")) {
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

export function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new Error(
      `Checkpoint file ${path} is missing or unreadable: ${(error as Error).message}`,
      { cause: error },
    );
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(
      `Checkpoint file ${path} is not valid JSON (${(error as Error).message}): it is damaged or cut short.`,
      {
        cause: error,
      },
    );
  }
}

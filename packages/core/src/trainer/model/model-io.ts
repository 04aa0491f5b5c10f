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

/**
 * Reads tensors written by `saveTensors` and checks them against what they will be loaded
 * into (count and shapes, in order), naming the file and the mismatch when they differ.
 */
export function loadTensors(
  dir: string,
  expected: readonly { shape: number[]; dtype: string }[],
  files = { json: MODEL_FILE, bin: WEIGHTS_FILE },
): tf.Tensor[] {
  const jsonPath = join(dir, files.json);
  const binPath = join(dir, files.bin);
  const manifest = readJson(jsonPath) as ModelJson;
  const specs = manifest.weightsManifest?.[0]?.weights;
  if (!Array.isArray(specs))
    throw new Error(
      `${jsonPath} has no weightsManifest: it is not a trainkit or tfjs weights file.`,
    );
  let data: Buffer;
  try {
    data = readFileSync(binPath);
  } catch (error) {
    throw new Error(
      `Checkpoint file ${binPath} is missing or unreadable: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const expectedBytes = specs.reduce(
    (sum, s) => sum + s.shape.reduce((a, b) => a * b, 1) * (s.dtype === "bool" ? 1 : 4),
    0,
  );
  if (data.byteLength !== expectedBytes) {
    throw new Error(
      `${binPath} holds ${data.byteLength} bytes but ${jsonPath} describes ${expectedBytes}: the checkpoint is damaged or was cut short.`,
    );
  }
  if (specs.length !== expected.length) {
    throw new Error(
      `${jsonPath} holds ${specs.length} tensors but the model has ${expected.length}: the checkpoint was written by a different model.`,
    );
  }
  specs.forEach((spec, i) => {
    const want = expected[i]!;
    if (spec.shape.join("x") !== want.shape.join("x")) {
      throw new Error(
        `${jsonPath}: tensor ${i} ("${spec.name}") has shape [${spec.shape}] but the model's has shape [${want.shape}]: the checkpoint was written by a different model.`,
      );
    }
  });
  const buffer = new Uint8Array(data).buffer;
  const decoded = tf.io.decodeWeights(buffer, specs);
  return specs.map((spec) => decoded[spec.name]!);
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

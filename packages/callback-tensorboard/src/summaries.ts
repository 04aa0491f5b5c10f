/**
 * Summary.Value messages other than scalars (those are encoded inline by EventFileWriter):
 * text, histograms and the hparams plugin's session and experiment records. Field numbers are
 * TensorBoard's protos (tensorboard/compat/proto/{summary,tensor,tensor_shape,histogram}.proto,
 * tensorboard/plugins/hparams/{api,plugin_data}.proto).
 */
import { encode, utf8Bytes } from "./protobuf.js";

/** TensorProto dtypes. */
const DT_FLOAT = 1;
const DT_STRING = 7;

/** SummaryMetadata{ plugin_data{ plugin_name, content } }. */
export function pluginMetadata(pluginName: string, content?: Uint8Array): Uint8Array {
  const pluginData = encode((w) => {
    w.string(1, pluginName);
    if (content && content.length > 0) w.bytes(2, content);
  });
  return encode((w) => w.message(1, pluginData));
}

/** TensorShapeProto{ dim[{ size }] } (a size of 0 is proto3's default and is left out). */
function shape(dims: number[]): Uint8Array {
  return encode((w) => {
    for (const size of dims)
      w.message(
        2,
        encode((d) => (size > 0 ? d.int64(1, size) : d)),
      );
  });
}

const TEXT_METADATA = pluginMetadata("text"); // TextPluginData{version: 0} serializes to nothing

/**
 * Text as torch's SummaryWriter.add_text writes it: tag `<tag>/text_summary`, the "text"
 * plugin, a DT_STRING tensor of shape [1].
 */
export function textValue(tag: string, text: string): Uint8Array {
  const tensor = encode((w) =>
    w
      .uint(1, DT_STRING)
      .message(2, shape([1]))
      .bytes(8, utf8Bytes(text)),
  );
  return encode((w) =>
    w.string(1, `${tag}/text_summary`).message(8, tensor).message(9, TEXT_METADATA),
  );
}

/** The bucket edges of torch/tensorboardX's default histogram ("tensorflow" bins). */
export const DEFAULT_HISTOGRAM_EDGES: Float64Array = (() => {
  const positive: number[] = [];
  for (let v = 1e-12; v < 1e20; v *= 1.1) positive.push(v);
  const edges = [...positive.map((v) => -v).reverse(), 0, ...positive];
  return Float64Array.from(edges);
})();

export interface Histogram {
  min: number;
  max: number;
  num: number;
  sum: number;
  sumSquares: number;
  bucketLimit: number[];
  bucket: number[];
}

/**
 * torch.utils.tensorboard's make_histogram with the default bins: numpy's histogram over the
 * fixed edges (values outside them are not counted in a bucket), trimmed to the buckets with
 * data plus one empty bucket on the left, each bucket named by its right edge. Non-finite
 * values are left out.
 */
export function makeHistogram(
  values: ArrayLike<number>,
  edges: Float64Array = DEFAULT_HISTOGRAM_EDGES,
): Histogram {
  const last = edges.length - 1;
  const counts = new Float64Array(last);
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let sumSquares = 0;
  let num = 0;
  for (let i = 0; i < values.length; i++) {
    const v = +values[i]!;
    if (!Number.isFinite(v)) continue;
    num++;
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
    sumSquares += v * v;
    if (v < edges[0]! || v > edges[last]!) continue;
    // The last edge <= v (numpy: bins are [e_i, e_i+1), the last one closed).
    let lo = 0;
    let hi = last;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (edges[mid]! <= v) lo = mid;
      else hi = mid - 1;
    }
    counts[Math.min(lo, last - 1)]!++;
  }
  if (num === 0) throw new RangeError("addHistogram needs at least one finite value.");
  let start = -1;
  let end = -1;
  for (let i = 0; i < counts.length; i++) {
    if (counts[i]! > 0) {
      if (start < 0) start = i;
      end = i;
    }
  }
  if (start < 0)
    throw new RangeError(
      `addHistogram: every value is outside the bucket range [${edges[0]}, ${edges[last]}].`,
    );
  end += 1;
  // torch: counts[start-1:end] (or a 0 then counts[:end]) and limits[start:end+1].
  const bucket =
    start > 0 ? Array.from(counts.subarray(start - 1, end)) : [0, ...counts.subarray(0, end)];
  const bucketLimit = Array.from(edges.subarray(start, end + 1));
  return { min, max, num, sum, sumSquares, bucketLimit, bucket };
}

/** Summary.Value{ tag, histo: HistogramProto } (the legacy form torch writes). */
export function histogramValue(tag: string, h: Histogram): Uint8Array {
  const histo = encode((w) => {
    if (h.min !== 0) w.double(1, h.min);
    if (h.max !== 0) w.double(2, h.max);
    if (h.num !== 0) w.double(3, h.num);
    if (h.sum !== 0) w.double(4, h.sum);
    if (h.sumSquares !== 0) w.double(5, h.sumSquares);
    w.packedDoubles(6, h.bucketLimit).packedDoubles(7, h.bucket);
  });
  return encode((w) => w.string(1, tag).message(5, histo));
}

/** A hyperparameter value: what google.protobuf.Value can hold for the HParams dashboard. */
export type HParamValue = string | number | boolean;

/** google.protobuf.Value: number_value = 2, string_value = 3, bool_value = 4. */
function protobufValue(value: HParamValue): Uint8Array {
  return encode((w) => {
    if (typeof value === "number") w.double(2, value);
    else if (typeof value === "boolean") w.uint(4, value ? 1 : 0);
    else w.string(3, value);
  });
}

export const HPARAMS_TAGS = {
  experiment: "_hparams_/experiment",
  sessionStart: "_hparams_/session_start_info",
  sessionEnd: "_hparams_/session_end_info",
} as const;

/** The hparams plugin's placeholder tensor: a DT_FLOAT vector of length 0. */
const NULL_TENSOR = encode((w) => w.uint(1, DT_FLOAT).message(2, shape([0])));

/** Summary.Value{ tag, tensor: NULL_TENSOR, metadata: hparams plugin, content = HParamsPluginData }. */
function hparamsValue(tag: string, field: number, data: Uint8Array): Uint8Array {
  // HParamsPluginData{ version = 1 (0: left out), oneof data { experiment = 2, session_start_info = 3, session_end_info = 4 } }
  const content = encode((w) => w.message(field, data));
  return encode((w) =>
    w.string(1, tag).message(8, NULL_TENSOR).message(9, pluginMetadata("hparams", content)),
  );
}

export interface SessionStart {
  hparams: Record<string, HParamValue>;
  groupName?: string;
  /** Unix seconds. */
  startTime: number;
}

/** SessionStartInfo{ hparams (map) = 1, group_name = 4, start_time_secs = 5 }. */
export function sessionStartValue({ hparams, groupName, startTime }: SessionStart): Uint8Array {
  const info = encode((w) => {
    for (const [key, value] of Object.entries(hparams))
      w.message(
        1,
        encode((e) => e.string(1, key).message(2, protobufValue(value))),
      );
    if (groupName) w.string(4, groupName);
    w.double(5, startTime);
  });
  return hparamsValue(HPARAMS_TAGS.sessionStart, 3, info);
}

export const SESSION_STATUS = { unknown: 0, success: 1, failure: 2, running: 3 } as const;
export type SessionStatus = keyof typeof SESSION_STATUS;

/** SessionEndInfo{ status = 1, end_time_secs = 2 }. */
export function sessionEndValue(status: SessionStatus, endTime: number): Uint8Array {
  const code = SESSION_STATUS[status];
  const info = encode((w) => (code !== 0 ? w.uint(1, code) : w).double(2, endTime));
  return hparamsValue(HPARAMS_TAGS.sessionEnd, 4, info);
}

/** DataType: DATA_TYPE_STRING = 1, DATA_TYPE_BOOL = 2, DATA_TYPE_FLOAT64 = 3. */
function dataType(value: HParamValue): number {
  return typeof value === "string" ? 1 : typeof value === "boolean" ? 2 : 3;
}

/**
 * Experiment{ hparam_infos = 4 { name = 1, type = 4 }, metric_infos = 5 { name = 1 { group = 1,
 * tag = 2 } }, time_created_secs = 3 }.
 */
export function experimentValue(
  hparams: Record<string, HParamValue>,
  metricTags: readonly string[],
  timeCreated: number,
): Uint8Array {
  const experiment = encode((w) => {
    w.double(3, timeCreated);
    for (const [name, value] of Object.entries(hparams))
      w.message(
        4,
        encode((h) => h.string(1, name).uint(4, dataType(value))),
      );
    for (const tag of metricTags)
      w.message(
        5,
        encode((m) =>
          m.message(
            1,
            encode((n) => n.string(2, tag)),
          ),
        ),
      );
  });
  return hparamsValue(HPARAMS_TAGS.experiment, 2, experiment);
}

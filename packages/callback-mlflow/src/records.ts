/**
 * What the MLflow callback puts in its outbox: one compact, secret-free JSON object per line of
 * the spool. Everything a retry or a later `trainkit sync` needs is in the record itself (the
 * metric timestamp is fixed when the record is made, so a resend is de-duplicated by MLflow).
 */

/** A metric value as MLflow's protobuf JSON takes it: non-finite values as strings. */
export type MetricValue = number | "NaN" | "Infinity" | "-Infinity";

/** A metric point: key, value, timestamp (ms), step. */
export type MetricRecord = {
  t: "m";
  k: string;
  v: MetricValue;
  ts: number;
  s: number;
};

/** A run parameter (value already rendered as Python's str()). */
export type ParamRecord = {
  t: "p";
  k: string;
  v: string;
};

/** A run tag. */
export type TagRecord = {
  t: "g";
  k: string;
  v: string;
};

/** A status change that is not an end: RUNNING again when a run is resumed. */
export type StatusRecord = {
  t: "s";
  status: "RUNNING";
};

export type EndStatus = "FINISHED" | "FAILED" | "KILLED";

/** The end of the run: status and end time (ms). */
export type EndRecord = {
  t: "end";
  status: EndStatus;
  ts: number;
};

/**
 * One file to upload as a run artifact: `dir` is the spool copy's root folder (absolute),
 * `src` the file's path under it, `path` the artifact path in the run
 * (`checkpoint-<step>/<relpath>`, `/`-separated).
 */
export type ArtifactRecord = {
  t: "a";
  dir: string;
  src: string;
  path: string;
};

export type MlflowRecord =
  MetricRecord | ParamRecord | TagRecord | StatusRecord | EndRecord | ArtifactRecord;

/** A number as MLflow's JSON takes it: NaN and ±Infinity as the strings protobuf JSON uses. */
export function encodeMetricValue(value: number): MetricValue {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "Infinity";
  if (value === -Infinity) return "-Infinity";
  return value;
}

export function metricRecord(
  key: string,
  value: number,
  step: number,
  ts = Date.now(),
): MetricRecord {
  return { t: "m", k: key, v: encodeMetricValue(value), ts, s: step };
}

export function paramRecord(key: string, value: string): ParamRecord {
  return { t: "p", k: key, v: value };
}

export function tagRecord(key: string, value: string): TagRecord {
  return { t: "g", k: key, v: value };
}

export function endRecord(status: EndStatus, ts = Date.now()): EndRecord {
  return { t: "end", status, ts };
}

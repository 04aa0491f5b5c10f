import { keySanitizers } from "@trainkit/core/plugin";

/**
 * dvclive's `standardize_metric_name(key, "dvclive.huggingface")`: every `train_` becomes
 * `train/` and then every `eval_` becomes `eval/`, anywhere in the key. So `eval_loss` is
 * `eval/loss`, `train_runtime` is `train/runtime`, and `loss`, `epoch`, `total_flos` and
 * `test_loss` stay as they are.
 */
export function standardizeMetricName(key: string): string {
  return key.replaceAll("train_", "train/").replaceAll("eval_", "eval/");
}

/**
 * The path segments of a metric name: its TSV file is `plots/metrics/<segments>.tsv` and its
 * place in metrics.json is `summary[s1][s2]...`. Like pathlib (which dvclive uses), empty and
 * `.` segments are dropped; unlike it, a name can never point outside the folder: a `..`
 * segment becomes `__`, and a leading `/` is dropped. NUL (and, on Windows, the characters
 * Windows forbids in file names) become `_`.
 */
export function metricSegments(
  name: string,
  platform: NodeJS.Platform = process.platform,
): string[] {
  const safe =
    platform === "win32"
      ? keySanitizers.dvclive(name).replace(/\\/g, "_")
      : name.replace(/\0/g, "_");
  const segments = safe
    .split("/")
    .filter((s) => s !== "" && s !== ".")
    .map((s) => (s === ".." ? "__" : s));
  return segments.length > 0 ? segments : ["_"];
}

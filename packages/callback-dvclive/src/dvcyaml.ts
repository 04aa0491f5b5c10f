import { dirname, relative, sep } from "node:path";
import { YAMLMap, isMap, isScalar, isSeq, parseDocument, type Document } from "yaml";
import type { PyDict, PyValue } from "./python-values.js";
import { dumpYaml } from "./yaml/dump.js";

/** An artifact entry of dvc.yaml (what HF's log_model records). */
export interface Artifact {
  path: string;
  type?: string;
}

/** What dvclive's make_dvcyaml puts in dvc.yaml, paths absolute (made relative here). */
export interface DvcYamlEntries {
  params?: string;
  metrics?: string;
  /** The plots/metrics folder, when it exists. */
  plots?: string;
  artifacts: Map<string, Artifact>;
}

/** dvclive's rel_path: relative to the dvc.yaml folder, POSIX separators. */
function relPath(path: string, base: string): string {
  return relative(base, path).split(sep).join("/");
}

/** The section values dvclive writes, paths relative to the dvc.yaml folder. */
function sections(dvcyamlPath: string, entries: DvcYamlEntries): PyDict {
  const base = dirname(dvcyamlPath);
  const out: PyDict = new Map();
  if (entries.params) out.set("params", [relPath(entries.params, base)]);
  if (entries.metrics) out.set("metrics", [relPath(entries.metrics, base)]);
  if (entries.plots)
    out.set("plots", [new Map([[relPath(entries.plots, base), new Map([["x", "step"]])]])]);
  if (entries.artifacts.size > 0) {
    const artifacts: PyDict = new Map();
    for (const [name, artifact] of entries.artifacts) {
      const item: PyDict = new Map([["path", relPath(artifact.path, base)]]);
      if (artifact.type !== undefined) item.set("type", artifact.type);
      artifacts.set(name, item);
    }
    out.set("artifacts", artifacts);
  }
  return out;
}

/** A new dvc.yaml, as dvclive dumps it (ruamel, block style). */
export function newDvcYaml(dvcyamlPath: string, entries: DvcYamlEntries): string {
  return dumpYaml(sections(dvcyamlPath, entries));
}

/** Thrown when an existing dvc.yaml cannot be read as YAML (dvclive warns and leaves it). */
export class DvcYamlError extends Error {}

/**
 * dvclive's update_dvcyaml: an existing dvc.yaml with this run's entries merged in. In
 * `params`, `metrics` and `plots`, entries that mention the dvclive folder (`dvclive/`,
 * anywhere in the path, as dvclive tests) are replaced by this run's, the others kept;
 * `artifacts` are merged by name, dropping those whose path is in the dvclive folder. Everything
 * else (stages, comments, other keys) is left as it was.
 */
export function mergeDvcYaml(
  text: string,
  dvcyamlPath: string,
  liveDir: string,
  entries: DvcYamlEntries,
): string {
  // Typed as a plain Document: this one is edited, not just read.
  const doc: Document = parseDocument(text);
  if (doc.errors.length > 0) throw new DvcYamlError(doc.errors[0]!.message);
  if (doc.contents === null) doc.contents = new YAMLMap();
  const root = doc.contents;
  if (!isMap(root))
    throw new DvcYamlError("its top level is not a mapping (of stages, metrics, plots, ...)");
  const dvcliveDir = `${relPath(liveDir, dirname(dvcyamlPath))}/`;
  const updates = sections(dvcyamlPath, entries);
  for (const key of ["params", "metrics", "plots"]) {
    const old = root.get(key, true);
    const keepers = isSeq(old) ? old.items.filter((item) => !mentions(item, dvcliveDir)) : [];
    const added = (updates.get(key) as PyValue[] | undefined) ?? [];
    const items = [...keepers, ...added.map((value) => doc.createNode(plain(value)))];
    if (items.length === 0) root.delete(key);
    else if (isSeq(old))
      old.items = items; // keeps the comments around the list
    else root.set(key, doc.createNode(items));
  }
  const merged = new YAMLMap();
  const oldArtifacts = root.get("artifacts", true);
  if (isMap(oldArtifacts))
    for (const pair of oldArtifacts.items) {
      const path = isMap(pair.value) ? pair.value.get("path") : undefined;
      // dvclive: an artifact without a path counts as one in the dvclive folder.
      if (typeof path === "string" && !path.includes(dvcliveDir)) merged.items.push(pair);
    }
  const newArtifacts = updates.get("artifacts");
  if (newArtifacts instanceof Map)
    for (const [name, value] of newArtifacts) merged.set(name, doc.createNode(plain(value)));
  if (merged.items.length === 0) root.delete("artifacts");
  else root.set("artifacts", merged);
  return doc.toString({ indentSeq: false, lineWidth: 0 });
}

/** Whether a params/metrics/plots entry points into the dvclive folder (dvclive's substring test). */
function mentions(item: unknown, dvcliveDir: string): boolean {
  if (isScalar(item)) return typeof item.value === "string" && item.value.includes(dvcliveDir);
  if (isMap(item) && item.items.length === 1) {
    const key = item.items[0]!.key;
    return isScalar(key) && String(key.value).includes(dvcliveDir);
  }
  return false;
}

/** A PyValue as plain data for the yaml library (Maps as objects). */
function plain(value: PyValue): unknown {
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [k, plain(v)]));
  if (Array.isArray(value)) return value.map(plain);
  return value;
}

import { isMap, isScalar, parseDocument } from "yaml";
import type { PyDict } from "./python-values.js";
import { dumpYaml } from "./yaml/dump.js";

/**
 * params.yaml after dvclive's `log_params(params)`: on a fresh run just `params`; when resuming,
 * the file's entries updated with `params` as Python's dict.update does (the file's order, new
 * keys at the end). Entries not in `params` are kept as they were written. Throws a
 * SyntaxError when `previous` is not a YAML mapping.
 */
export function paramsYaml(params: PyDict, previous?: string): string {
  if (previous === undefined || previous.trim() === "") return dumpYaml(params);
  const doc = parseDocument(previous);
  if (doc.errors.length > 0) throw new SyntaxError(doc.errors[0]!.message);
  const root = doc.contents;
  if (!isMap(root)) throw new SyntaxError("its top level is not a mapping of parameters");
  // Each entry's text runs from the start of its key's line to the start of the next entry.
  const starts = root.items.map((pair) =>
    lineStart(previous, (pair.key as { range?: number[] })?.range?.[0] ?? 0),
  );
  const parts: string[] = [];
  const seen = new Set<string>();
  root.items.forEach((pair, i) => {
    const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
    seen.add(key);
    if (params.has(key)) parts.push(dumpYaml(new Map([[key, params.get(key)!]])));
    else {
      const raw = previous.slice(starts[i], starts[i + 1] ?? previous.length);
      parts.push(raw.endsWith("\n") ? raw : `${raw}\n`);
    }
  });
  for (const [key, value] of params)
    if (!seen.has(key)) parts.push(dumpYaml(new Map([[key, value]])));
  return parts.join("");
}

function lineStart(text: string, offset: number): number {
  return offset === 0 ? 0 : text.lastIndexOf("\n", offset - 1) + 1;
}

/** The top-level keys of a params.yaml; a SyntaxError when it is not a YAML mapping. */
export function paramKeys(text: string): string[] {
  if (text.trim() === "") return [];
  const doc = parseDocument(text);
  if (doc.errors.length > 0) throw new SyntaxError(doc.errors[0]!.message);
  if (!isMap(doc.contents)) throw new SyntaxError("its top level is not a mapping of parameters");
  return doc.contents.items.map((pair) =>
    isScalar(pair.key) ? String(pair.key.value) : String(pair.key),
  );
}

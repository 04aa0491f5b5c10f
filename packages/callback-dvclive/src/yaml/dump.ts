import { pythonFloatRepr } from "@trainkit/core/plugin";
import { PyFloat, intRepr, type PyValue } from "../python-values.js";
import { emitYaml, type YamlNode } from "./emitter.js";

/** ruamel's round-trip representer: Python values as YAML nodes. */
function represent(value: PyValue, root: boolean): YamlNode {
  if (value === null) return { kind: "scalar", tag: "null", value: root ? "null" : "" };
  if (typeof value === "boolean") return { kind: "scalar", tag: "bool", value: String(value) };
  if (typeof value === "number") {
    if (Number.isInteger(value)) return { kind: "scalar", tag: "int", value: intRepr(value) };
    return represent(new PyFloat(value), root);
  }
  if (value instanceof PyFloat) {
    const v = value.value;
    const text = Number.isNaN(v)
      ? ".nan"
      : v === Infinity
        ? ".inf"
        : v === -Infinity
          ? "-.inf"
          : pythonFloatRepr(v);
    return { kind: "scalar", tag: "float", value: text };
  }
  if (typeof value === "string") return { kind: "scalar", tag: "str", value };
  if (Array.isArray(value))
    return { kind: "seq", items: value.map((item) => represent(item, false)) };
  return {
    kind: "map",
    entries: [...value].map(([key, item]) => [
      { kind: "scalar", tag: "str", value: key },
      represent(item, false),
    ]),
  };
}

/**
 * `ruamel.yaml.YAML().dump(value)` with `default_flow_style = False`, as dvclive writes
 * params.yaml and a new dvc.yaml: block style, keys in order, null as an empty value, floats in
 * Python's repr, strings quoted only where YAML 1.2 would read them as something else.
 */
export function dumpYaml(value: PyValue): string {
  return emitYaml(represent(value, true));
}

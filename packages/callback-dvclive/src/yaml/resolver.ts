/**
 * ruamel.yaml's implicit resolvers for YAML 1.2 (its default version): what a plain scalar
 * reads back as. A string that would read back as something else (`'true'`, `'1.0'`, `''`)
 * must be quoted; `yes`, `on` and `12:30` are strings in YAML 1.2 and stay plain.
 */
export type ScalarTag = "str" | "null" | "bool" | "int" | "float";

type Resolved = ScalarTag | "merge" | "timestamp" | "value" | "yaml";

/** [tag, pattern, first characters], in ruamel's registration order. */
const RESOLVERS: [Resolved, RegExp, string][] = [
  ["bool", /^(?:true|True|TRUE|false|False|FALSE)$/, "tTfF"],
  [
    "float",
    /^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)|[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/,
    "-+0123456789.",
  ],
  ["int", /^(?:[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?[0-9_]+|[-+]?0x[0-9a-fA-F_]+)$/, "-+0123456789"],
  ["merge", /^(?:<<)$/, "<"],
  ["null", /^(?:~|null|Null|NULL|)$/, "~nN"],
  [
    "timestamp",
    /^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$/,
    "0123456789",
  ],
  ["value", /^(?:=)$/, "="],
  ["yaml", /^(?:!|&|\*)$/, "!&*"],
];

/** The tag a plain scalar `value` reads back as. */
export function resolvesTo(value: string): Resolved {
  if (value === "") return "null";
  const first = String.fromCodePoint(value.codePointAt(0)!);
  for (const [tag, pattern, firsts] of RESOLVERS)
    if (firsts.includes(first) && pattern.test(value)) return tag;
  return "str";
}

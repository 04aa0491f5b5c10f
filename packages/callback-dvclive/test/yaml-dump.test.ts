// The YAML writer against ruamel.yaml itself (dvclive's dumper, from the pinned .venv): edge
// cases and a few hundred random documents must come out byte for byte the same.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { dumpJson } from "../src/json-writer.js";
import { paramsYaml } from "../src/params-file.js";
import { PyFloat, type PyDict, type PyValue } from "../src/python-values.js";
import { dumpYaml } from "../src/yaml/dump.js";
import { packageDir, python, toolEnv } from "./helpers.js";

/** ruamel's dumps of `documents` (sent as Python JSON: `1.0` is a float, `1` an int). */
function ruamel(documents: PyValue[]): string[] {
  const input = `[${documents.map((d) => dumpJson(d).trim()).join(",")}]`;
  const out = execFileSync(python, [join(packageDir, "test/python/ruamel_dump.py")], {
    input,
    encoding: "utf8",
    env: toolEnv,
    maxBuffer: 64 << 20,
  });
  return JSON.parse(out) as string[];
}

const dict = (entries: Record<string, PyValue>): PyDict => new Map(Object.entries(entries));

const EDGE_STRINGS = [
  "",
  "yes",
  "no",
  "on",
  "Off",
  "y",
  "true",
  "True",
  "null",
  "Null",
  "~",
  "1.0",
  "1e5",
  "1e-05",
  ".5",
  "+1",
  "010",
  "0x1F",
  "0o17",
  "1_000",
  ".inf",
  ".nan",
  "=",
  "<<",
  "- x",
  "-",
  "-1",
  "12:30",
  "2024-01-01",
  "2024-1-1 10:00:00",
  " lead",
  "trail ",
  "a\nb",
  "'",
  '"dq"',
  "it's",
  "a: b",
  "x: ",
  "x #y",
  "x#y",
  "?x",
  "? x",
  ":x",
  "@x",
  "%x",
  "!x",
  "*x",
  "&x",
  "[x]",
  "{x}",
  "x,y",
  "|x",
  ">x",
  "`x",
  "---",
  "...",
  "a\tb",
  "\x07bell",
  "é",
  "\u2028",
  "a\u2028b",
  "\uFEFF",
  "\xA0",
  "😀",
  "x".repeat(100),
  "é".repeat(90),
  "word ".repeat(30),
  "a b ".repeat(25) + "end",
  "x\ty ".repeat(30),
  "it's ".repeat(25),
  "line one\nline two that is long ".repeat(4),
  "  two  spaces  ".repeat(8),
  "😀".repeat(50),
  "a".repeat(122),
  "a".repeat(123),
];

const ALPHABET = [
  "a",
  "b",
  " ",
  " ",
  "-",
  ":",
  "#",
  "'",
  '"',
  "\n",
  "\t",
  "x",
  "1",
  "0",
  ".",
  "é",
  "😀",
  "\\",
  "?",
  ",",
  "[",
  "{",
  "*",
  "&",
  "!",
  "%",
  "@",
  "`",
  "|",
  ">",
  "~",
  "\u2028",
  "\x85",
  "\uFEFF",
  "\x07",
  "\xA0",
  "e",
  "_",
  "+",
];

/** A small deterministic generator (the same documents on every run). */
function random(seed: number): () => number {
  let state = seed;
  return () => (state = (state * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
}

describe("dumpYaml writes what ruamel.yaml writes", () => {
  test("numbers, nulls, booleans, lists and nested mappings", () => {
    const documents: PyValue[] = [
      dict({
        a: [null, 1, "x", [1, [2]], dict({ k: null, j: [] }), [], new Map()],
        b: dict({ c: dict({ d: [dict({ e: 1, f: 2 })] }) }),
        floats: [5e-5, 3, NaN, Infinity, -Infinity, -0, 1e16, 1e-4, 0.1, 1.5e300, 2 ** -1074].map(
          (v) => new PyFloat(v),
        ),
        ints: [0, -1, 2 ** 60, 2 ** 70],
        bools: [true, false],
        none: null,
        empty: [],
      }),
      new Map(),
      dict({ a: new Map() }),
      dict({ a: [[]] }),
      dict({ a: [[[1]]] }),
      dict({ a: [new Map()] }),
    ];
    const expected = ruamel(documents);
    documents.forEach((d, i) => expect(dumpYaml(d)).toBe(expected[i]));
  });

  test("strings: quoting, escapes, YAML 1.2 resolution and line folding", () => {
    const documents: PyValue[] = EDGE_STRINGS.map((s) =>
      dict({ k: s, [s || "e"]: [s, null, 1], n: dict({ m: s }) }),
    );
    const expected = ruamel(documents);
    documents.forEach((d, i) =>
      expect([EDGE_STRINGS[i], dumpYaml(d)]).toEqual([EDGE_STRINGS[i], expected[i]]),
    );
  });

  test("400 random documents", () => {
    const rand = random(12345);
    const word = (n: number) =>
      Array.from({ length: n }, () => ALPHABET[Math.floor(rand() * ALPHABET.length)]).join("");
    const documents: PyValue[] = [];
    for (let i = 0; i < 400; i++) {
      const text = word(Math.floor(rand() * (rand() < 0.2 ? 200 : 20)));
      documents.push(
        dict({
          [word(Math.floor(rand() * 10))]: text,
          l: [text, [text], dict({ [text.slice(0, 5)]: text })],
          f: new PyFloat(rand() * 10 ** Math.floor(rand() * 40 - 20)),
        }),
      );
    }
    const expected = ruamel(documents);
    const mismatches = documents.filter((d, i) => dumpYaml(d) !== expected[i]);
    expect(mismatches.map((d) => dumpJson(d))).toEqual([]);
  });

  test("a mapping written entry by entry is the mapping written whole (params.yaml on resume)", () => {
    const params = dict({ a: 1, b: [1, 2], c: new Map(), d: "x".repeat(100), e: null, f: [] });
    const previous = dumpYaml(dict({ z: "kept", b: "old", a: 0 }));
    const merged = paramsYaml(params, previous);
    // Python: old = load(previous); old.update(params); dump(old)
    const expected = ruamel([
      dict({ z: "kept", b: [1, 2], a: 1, c: new Map(), d: "x".repeat(100), e: null, f: [] }),
    ]);
    expect(merged).toBe(expected[0]);
  });
});

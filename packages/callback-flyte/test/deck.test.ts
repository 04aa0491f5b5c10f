// The deck on its own: numbers spelled as Python's repr (checked against real Python), and
// awkward keys and values (HTML, quotes, non-finite numbers, unicode) read back by Chromium.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import {
  formatCell,
  logHistoryColumns,
  pythonFloatRepr,
  renderLogHistoryHtml,
} from "../src/index.js";
import { cellValue, packageDir, readTableWithChromium } from "./helpers.js";

const work = mkdtempSync(join(tmpdir(), "trainkit-flyte-deck-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const venvPython = join(packageDir, "..", "..", ".venv", "bin", "python");
const python = existsSync(venvPython) ? venvPython : "python3";

/** A fixed pseudo-random sequence (mulberry32). */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("numbers", () => {
  test("pythonFloatRepr is Python's repr(float) (3,000 values checked by Python)", () => {
    const next = random(42);
    const bits = new DataView(new ArrayBuffer(8));
    const values: number[] = [
      0.1,
      0.5,
      1,
      2,
      100,
      1e15,
      1e16,
      1.5e16,
      2 ** 53 + 2,
      1e-4,
      1e-5,
      0.0001234,
      5e-5,
      4.999999873689376e-5,
      123456789.125,
      1e21,
      1e22,
      1.7976931348623157e308,
      5e-324,
      -2.5,
      -1e-7,
      0.30000000000000004,
      2 / 3,
    ];
    while (values.length < 2000) {
      const value = (next() - 0.5) * 10 ** Math.floor(next() * 60 - 30);
      values.push(next() < 0.3 ? Math.fround(value) : value);
    }
    while (values.length < 3000) {
      for (let i = 0; i < 8; i++) bits.setUint8(i, Math.floor(next() * 256));
      const value = bits.getFloat64(0);
      if (Number.isFinite(value)) values.push(value);
    }
    const out = execFileSync(
      python,
      ["-c", "import json,sys; print(json.dumps([repr(float(x)) for x in json.load(sys.stdin)]))"],
      { input: JSON.stringify(values), encoding: "utf8" },
    );
    const expected = JSON.parse(out) as string[];
    const mismatches = values
      .map((value, i) => [value, pythonFloatRepr(value), expected[i]] as const)
      .filter(([, ours, theirs]) => ours !== theirs);
    expect(mismatches).toEqual([]);
    expect([NaN, Infinity, -Infinity, -0].map(pythonFloatRepr)).toEqual([
      "nan",
      "inf",
      "-inf",
      "-0.0",
    ]);
  });

  test("cells read back equal; integers stay integers", () => {
    for (const value of [
      0,
      7,
      -3,
      0.1,
      5e-5,
      1e16,
      2 ** 60,
      -0,
      NaN,
      Infinity,
      -Infinity,
      0.30000000000000004,
    ])
      expect(cellValue(formatCell(value))).toBe(value);
    expect(formatCell(8)).toBe("8");
    expect(formatCell(5e-5)).toBe("5e-05");
    expect(formatCell(1e16)).toBe("1e+16");
    expect(formatCell(true)).toBe("True");
    expect(formatCell(null)).toBe("None");
    expect(formatCell([1, "a"])).toBe('[1,"a"]');
  });
});

describe("the table", () => {
  test("columns: the union of keys in order of first appearance (pandas' order)", () => {
    expect(
      logHistoryColumns([
        { loss: 1, step: 1 },
        { eval_loss: 2, step: 2 },
        { loss: 3, x: 1 },
      ]),
    ).toEqual(["loss", "step", "eval_loss", "x"]);
  });

  test("awkward keys and values come back exactly from Chromium's DOM", async () => {
    const entries: Record<string, unknown>[] = [
      { loss: 0.5, learning_rate: 5e-5, epoch: 0.25, step: 1 },
      {
        "a<b&c>": "<script>alert(1)</script>",
        "quote\"'": "x & y &amp; z",
        flag: true,
        none: null,
        nan: NaN,
        inf: -Infinity,
        tiny: 1e-7,
        big: 1.5e17,
        neg0: -0,
        text: "héllo ✓ 😀  two spaces",
        list: [1, 2],
        step: 2,
      },
      {},
      { loss: 0.25, step: 3 },
    ];
    const file = join(work, "awkward.html");
    const html = renderLogHistoryHtml(entries);
    writeFileSync(file, html);
    expect(html).not.toMatch(/<script|src=|href=|@import|url\(/i);
    const table = await readTableWithChromium(file);
    const columns = logHistoryColumns(entries);
    expect(table.rows[0]!.map((c) => c.text)).toEqual(columns);
    expect(table.rows.slice(1).map((row) => row.map((c) => c.text))).toEqual(
      entries.map((entry) => columns.map((key) => (key in entry ? formatCell(entry[key]) : ""))),
    );
    expect(table.rows[2]![columns.indexOf("a<b&c>")]!.text).toBe("<script>alert(1)</script>");
    expect(table.scripts).toBe(0);
    expect(table.resources).toBe(0);
  });

  test("an empty log history is a valid page with an empty table", async () => {
    const file = join(work, "empty.html");
    writeFileSync(file, renderLogHistoryHtml([]));
    const table = await readTableWithChromium(file);
    expect(table.title).toBe("Log History");
    expect(table.rows).toEqual([[]]);
  });
});

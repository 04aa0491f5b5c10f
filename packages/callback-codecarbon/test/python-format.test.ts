// Cells are printed as pandas prints codecarbon's row: checked against Python's repr and
// pandas' to_csv themselves.
import { describe, expect, test } from "vitest";
import {
  float,
  formatCell,
  int,
  none,
  parseCsv,
  pythonFloatRepr,
  quoteField,
  str,
} from "../src/csv/python-format.js";
import { codecarbonRules } from "./helpers.js";

describe("pythonFloatRepr", () => {
  test("matches Python's repr() for typical and edge values", () => {
    const values = [
      1,
      20,
      0.1,
      1e-5,
      1.2899704019877186e-6,
      6.562895780652096e-6,
      0.0001,
      0.00012345,
      1e-4,
      9.999e-5,
      123456789012345.6,
      1e15,
      9999999999999998,
      1e16,
      1.5e16,
      1.2345678901234568e17,
      1e21,
      1e22,
      5e-324,
      1.7976931348623157e308,
      3.0110503639989474,
      23.540584564208984,
      56.039,
      -2.5,
      -1e-7,
      475,
      100,
      2 ** 53,
      0.5,
      1 / 3,
    ];
    for (let i = 0; i < 200; i++)
      values.push(Math.random() * 10 ** Math.floor(Math.random() * 40 - 20));
    const { repr } = codecarbonRules<{ repr: string[] }>({ repr: values });
    expect(values.map(pythonFloatRepr)).toEqual(repr);
  });

  test("special values", () => {
    expect(pythonFloatRepr(0)).toBe("0.0");
    expect(pythonFloatRepr(-0)).toBe("-0.0");
    expect(pythonFloatRepr(Infinity)).toBe("inf");
    expect(pythonFloatRepr(-Infinity)).toBe("-inf");
  });
});

describe("cells and quoting", () => {
  test("a row prints as pandas' to_csv prints it", () => {
    const row = {
      a: { float: 1 },
      b: null,
      c: "x,y",
      d: "",
      e: 'say "hi"',
      f: { float: 1e16 },
      g: { float: 1e-5 },
      h: "two\nlines",
      i: { float: 0.0001 },
      j: { int: 7 },
    };
    const { csv } = codecarbonRules<{ csv: string }>({ csv: [row] });
    const cells = [
      float(1),
      none,
      str("x,y"),
      str(""),
      str('say "hi"'),
      float(1e16),
      float(1e-5),
      str("two\nlines"),
      float(0.0001),
      int(7),
    ];
    const header = Object.keys(row).join(",");
    expect(`${header}\n${cells.map(formatCell).join(",")}\n`).toBe(csv);
  });

  test("NaN is an empty cell, as pandas' na_rep", () => {
    expect(formatCell(float(NaN))).toBe("");
    expect(formatCell(str(null))).toBe("");
  });

  test("parseCsv reads back what quoteField writes, and drops a BOM", () => {
    const fields = ["plain", "a,b", 'q"uote', "multi\nline", ""];
    const text = `\uFEFF${fields.map(quoteField).join(",")}\r\nx,y\n`;
    expect(parseCsv(text)).toEqual([fields, ["x", "y"]]);
  });
});

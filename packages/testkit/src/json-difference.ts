import { REDACTED } from "@trainkit/core/plugin";

/**
 * The first difference between `actual` (a value a plugin produced) and `expected` (JSON read
 * back), as a sentence, or undefined when they are the same JSON. A value JSON cannot hold
 * faithfully in `actual` (undefined, a function, a Map, a Date, a class instance, a bigint) is a
 * difference even where JSON.stringify would quietly drop or flatten it.
 */
export function jsonDifference(
  actual: unknown,
  expected: unknown,
  actualName: string,
  expectedName: string,
  path = "",
): string | undefined {
  const where = path === "" ? "the record" : path;
  const show = (value: unknown) => describe(value);
  const differ = () =>
    `${where} is ${show(actual)} in ${actualName} but ${show(expected)} in ${expectedName}`;

  if (expected === REDACTED && actual !== REDACTED)
    return `${where} is redacted in ${expectedName} (trainkit never writes secrets to files): keep secrets out of state(), and have fromState() read them again from the environment or options`;
  if (actual === null || typeof actual === "string" || typeof actual === "boolean")
    return actual === expected ? undefined : differ();
  if (typeof actual === "number") {
    if (typeof expected !== "number") return differ();
    return Object.is(actual, expected) || (actual === 0 && expected === 0) ? undefined : differ();
  }
  if (Array.isArray(actual)) {
    if (!Array.isArray(expected) || actual.length !== expected.length) return differ();
    for (let i = 0; i < actual.length; i++) {
      const inner = jsonDifference(
        actual[i],
        expected[i],
        actualName,
        expectedName,
        `${path}[${i}]`,
      );
      if (inner) return inner;
    }
    return undefined;
  }
  if (typeof actual === "object" && isPlain(actual)) {
    if (typeof expected !== "object" || expected === null || Array.isArray(expected))
      return differ();
    const a = actual as Record<string, unknown>;
    const e = expected as Record<string, unknown>;
    for (const key of Object.keys(a)) {
      const inner = `${path === "" ? "" : `${path}.`}${key}`;
      if (a[key] === undefined)
        return `${inner} is undefined in ${actualName}, which JSON does not keep (use null)`;
      if (!(key in e)) return `${inner} is in ${actualName} but not in ${expectedName}`;
      const difference = jsonDifference(a[key], e[key], actualName, expectedName, inner);
      if (difference) return difference;
    }
    for (const key of Object.keys(e))
      if (!(key in a))
        return `${path === "" ? "" : `${path}.`}${key} is in ${expectedName} but not in ${actualName}`;
    return undefined;
  }
  return `${where} is ${show(actual)} in ${actualName}, which JSON does not keep (use plain objects, arrays, strings, numbers, booleans and null)`;
}

function isPlain(value: object): boolean {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function describe(value: unknown): string {
  if (value === undefined) return "undefined";
  if (typeof value === "function") return "a function";
  if (typeof value === "bigint") return `the bigint ${value}n`;
  if (typeof value === "object" && value !== null && !Array.isArray(value) && !isPlain(value))
    return `a ${value.constructor?.name ?? "object"}`;
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

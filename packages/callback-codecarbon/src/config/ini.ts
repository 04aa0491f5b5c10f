// The `[codecarbon]` section of a `.codecarbon.config` file, read as Python's configparser reads
// it: `key = value` or `key: value`, keys lower-cased, `#`/`;` comment lines, indented
// continuation lines, [DEFAULT] keys inherited, and BasicInterpolation (`%(key)s`, `%%`).

type Section = Map<string, string>;

/** Every section of an INI text, keys lower-cased, values raw (not yet interpolated). */
function parseIni(text: string): Map<string, Section> {
  const sections = new Map<string, Section>();
  let current: Section | undefined;
  let lastKey: string | undefined;
  for (const raw of text.replace(/^\uFEFF/, "").split(/\r?\n/)) {
    const line = raw.trimEnd();
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#") || trimmed.startsWith(";")) {
      lastKey = undefined;
      continue;
    }
    if (/^\s/.test(line) && current && lastKey !== undefined) {
      current.set(lastKey, `${current.get(lastKey) ?? ""}\n${trimmed}`);
      continue;
    }
    const header = /^\[(.+)\]$/.exec(trimmed);
    if (header) {
      const name = header[1]!;
      current = sections.get(name) ?? new Map();
      sections.set(name, current);
      lastKey = undefined;
      continue;
    }
    const at = trimmed.search(/[=:]/);
    if (!current || at <= 0) continue; // configparser would refuse the file; skip the line
    lastKey = trimmed.slice(0, at).trim().toLowerCase();
    current.set(lastKey, trimmed.slice(at + 1).trim());
  }
  return sections;
}

/** `%(name)s` from the same section (or [DEFAULT]) and `%%`, as BasicInterpolation does. */
function interpolate(
  value: string,
  lookup: (key: string) => string | undefined,
  depth = 0,
): string {
  return value.replace(/%%|%\(([^)]+)\)s/g, (match, key: string | undefined) => {
    if (match === "%%") return "%";
    const found = lookup(key!.toLowerCase());
    if (found === undefined || depth > 10) return match;
    return interpolate(found, lookup, depth + 1);
  });
}

/** The `[codecarbon]` keys of an INI text (with [DEFAULT]'s), interpolated. Empty if absent. */
export function codecarbonSection(text: string): Record<string, string> {
  const sections = parseIni(text);
  const section = sections.get("codecarbon");
  if (!section) return {};
  const merged = new Map([...(sections.get("DEFAULT") ?? new Map<string, string>()), ...section]);
  const out: Record<string, string> = {};
  for (const [key, value] of merged) out[key] = interpolate(value, (k) => merged.get(k));
  return out;
}

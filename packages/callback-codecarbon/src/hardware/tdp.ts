// The CPU's TDP, looked up as codecarbon 3.3 does (core/cpu.py, class TDP) in its
// hardware/cpu_power.csv:
// 1. the model name, case-insensitively equal to a row's name;
// 2. the same after removing "(R)", anything from " CPU @ ", " CPU" and " @ <n.n>GHz";
// 3. rapidfuzz's token_set_ratio = 100 (after its default processing), if exactly one row
//    scores so: every word of one name is a word of the other.
// A known model gives its TDP; a detected but unknown one 4 W per logical CPU; no model at all
// codecarbon's 85 W constant. The socket count multiplies the TDP.

/** W per logical CPU for a detected model that is not in the table. */
export const DEFAULT_POWER_PER_CORE = 4;
/** W when the CPU model cannot be read at all. */
export const POWER_CONSTANT = 85;

export interface CpuTdp {
  /** The model as written in the CSV: the detected name, or "Unknown". */
  model: string;
  /** W for the whole machine (per-socket TDP × sockets), before any forced value. */
  watts: number;
  /** How the value was found, for the notice at start. */
  how: string;
}

/** The table row matching `model`, by codecarbon's three steps, or undefined. */
export function matchCpu(
  model: string,
  table: ReadonlyArray<{ name: string; tdp: number }>,
): { name: string; tdp: number } | undefined {
  const direct = (name: string) => {
    const lower = name.toLowerCase();
    return table.find((row) => row.name.toLowerCase() === lower);
  };
  const exact = direct(model);
  if (exact) return exact;
  let cleaned = model.replace(/\(R\)/g, "");
  const cpuAt = cleaned.indexOf(" CPU @ ");
  if (cpuAt > 0) cleaned = cleaned.slice(0, cpuAt);
  cleaned = cleaned.replace(/ CPU/g, "").replace(/ @\s*\d+\.\d+GHz/g, "");
  const cleanedMatch = direct(cleaned);
  if (cleanedMatch) return cleanedMatch;
  const wanted = tokens(cleaned);
  const matches = table.filter((row) => tokenSetIsComplete(wanted, tokens(row.name)));
  return matches.length === 1 ? matches[0] : undefined;
}

/**
 * The machine's CPU power budget: `model` (as read from the system, may be empty) looked up
 * in `table`, times `sockets`.
 */
export function cpuTdp(
  model: string | undefined,
  logicalCpus: number,
  sockets: number,
  table: ReadonlyArray<{ name: string; tdp: number }>,
): CpuTdp {
  if (!model)
    return {
      model: "Unknown",
      watts: POWER_CONSTANT,
      how: `CPU model unreadable: codecarbon's constant ${POWER_CONSTANT} W`,
    };
  const row = matchCpu(model, table);
  if (row && Number.isFinite(row.tdp) && row.tdp > 0)
    return {
      model,
      watts: row.tdp * sockets,
      how: `TDP ${row.tdp} W ("${row.name}" in codecarbon's cpu_power.csv)${sockets > 1 ? ` × ${sockets} sockets` : ""}`,
    };
  const perThread = logicalCpus * DEFAULT_POWER_PER_CORE;
  return {
    model,
    watts: perThread * sockets,
    how: `"${model}" is not in codecarbon's cpu_power.csv: ${DEFAULT_POWER_PER_CORE} W × ${logicalCpus} threads${sockets > 1 ? ` × ${sockets} sockets` : ""}`,
  };
}

/** rapidfuzz's default_process: lower case, every non-alphanumeric character a space. */
function tokens(text: string): Set<string> {
  return new Set(
    text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}]/gu, " ")
      .split(/\s+/)
      .filter(Boolean),
  );
}

/**
 * token_set_ratio = 100: the two word sets share a word and one contains the other (any other
 * case compares differing word lists, which cannot score 100).
 */
function tokenSetIsComplete(a: Set<string>, b: Set<string>): boolean {
  if (a.size === 0 || b.size === 0) return false;
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  for (const word of small) if (!large.has(word)) return false;
  return true;
}

// CPU energy from Linux's Intel RAPL counters (powercap sysfs), as codecarbon 3.3 reads them
// (core/cpu.py IntelRAPL, core/rapl.py RAPLFile): domains are found under `intel-rapl*`
// folders, the package domains are measured (psys only if preferred or if there is no
// package; DRAM only if asked), duplicates of the same name are read once (MMIO preferred),
// and each interval's energy is the sum of the `energy_uj` deltas, a counter that went
// backwards having wrapped at `max_energy_range_uj`.
import { readdir, readFile, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { kWhOverSecondsToWatts, microjoulesToKWh } from "../units.js";
import type { Measured } from "./cpu-load.js";

export const DEFAULT_RAPL_ROOT = "/sys/class/powercap";

export interface RaplDomain {
  /** The domain's `name` file (e.g. "package-0"), or its folder name. */
  name: string;
  kind: "package" | "psys" | "dram" | "other";
  dir: string;
  /** µJ at which `energy_uj` wraps to 0 (0 if unreadable: wraps cannot be corrected). */
  maxRangeUj: number;
  mmio: boolean;
}

export interface RaplDiscovery {
  /** The domains to measure; empty when RAPL cannot be used. */
  domains: RaplDomain[];
  /** Why RAPL is not used (no tree, nothing readable), when `domains` is empty. */
  reason?: string;
  /** Counters exist but cannot be read: a permission or driver problem worth reporting. */
  unreadable?: boolean;
}

/**
 * Finds the readable RAPL domains under `root` and picks the ones to measure. The default root
 * also searches /sys/devices/virtual/powercap, as codecarbon does.
 */
export async function discoverRapl(
  root: string,
  { includeDram = false, preferPsys = false } = {},
): Promise<RaplDiscovery> {
  const bases = root === DEFAULT_RAPL_ROOT ? [root, "/sys/devices/virtual/powercap"] : [root];
  const dirs: string[] = [];
  for (const base of bases) dirs.push(...(await domainDirs(base)));
  if (dirs.length === 0) return { domains: [], reason: `no RAPL domains under ${root}` };
  const readable: RaplDomain[] = [];
  const unreadable: string[] = [];
  for (const dir of dirs) {
    const energy = await readMicrojoules(join(dir, "energy_uj"));
    if (typeof energy !== "number") {
      unreadable.push(`${join(dir, "energy_uj")} (${energy.error})`);
      continue;
    }
    readable.push(await describeDomain(dir));
  }
  const domains = pickDomains(readable, includeDram, preferPsys);
  if (domains.length > 0) return { domains };
  if (unreadable.length > 0)
    return {
      domains: [],
      unreadable: true,
      reason: `RAPL not readable: ${unreadable.slice(0, 2).join(", ")}${unreadable.length > 2 ? ", ..." : ""}`,
    };
  return { domains: [], reason: `no RAPL package or psys domain under ${root}` };
}

/** Measures energy over intervals from the chosen domains' counters. */
export class RaplMeter {
  private last: Array<number | undefined> = [];
  private warned = new Set<string>();

  constructor(
    readonly domains: readonly RaplDomain[],
    private readonly onProblem: (message: string) => void,
  ) {}

  async start(): Promise<void> {
    this.last = await Promise.all(this.domains.map((d) => this.read(d)));
  }

  /** Energy since the previous call (or start), and its average power over `seconds`. */
  async measure(seconds: number): Promise<Measured> {
    const now = await Promise.all(this.domains.map((d) => this.read(d)));
    let deltaUj = 0;
    now.forEach((value, i) => {
      const domain = this.domains[i]!;
      const previous = this.last[i];
      this.last[i] = value;
      // No baseline (an unreadable read): re-baseline, this interval is lost for the domain.
      if (value === undefined || previous === undefined) return;
      let current = value;
      if (current < previous) current += domain.maxRangeUj; // the counter wrapped
      if (current < previous) {
        this.problemOnce(
          `wrap:${domain.dir}`,
          `RAPL counter ${join(domain.dir, "energy_uj")} went backwards and cannot be corrected (max_energy_range_uj unreadable); that sample is skipped.`,
        );
        return;
      }
      deltaUj += current - previous;
    });
    const kWh = microjoulesToKWh(deltaUj);
    return { kWh, watts: kWhOverSecondsToWatts(kWh, seconds) };
  }

  private async read(domain: RaplDomain): Promise<number | undefined> {
    const path = join(domain.dir, "energy_uj");
    const value = await readMicrojoules(path);
    if (typeof value === "number") return value;
    this.problemOnce(
      `read:${domain.dir}`,
      `cannot read RAPL counter ${path} (${value.error}); its energy is missing until it reads again.`,
    );
    return undefined;
  }

  private problemOnce(key: string, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.onProblem(message);
  }
}

/** Domain folders: the `x:y` sub-folders of every `intel-rapl*` entry of `base` (or, if none,
 * the `x:y` entries of `base` itself), keeping those with an `energy_uj` file. */
async function domainDirs(base: string): Promise<string[]> {
  const found: string[] = [];
  const entries = await list(base);
  for (const entry of entries.filter((e) => e.startsWith("intel-rapl"))) {
    const path = join(base, entry);
    for (const sub of await list(path))
      if (sub.includes(":") && (await isDomain(join(path, sub)))) found.push(join(path, sub));
  }
  if (found.length > 0) return found;
  for (const entry of entries)
    if (entry.includes(":") && (await isDomain(join(base, entry)))) found.push(join(base, entry));
  return found;
}

async function list(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch {
    return [];
  }
}

async function isDomain(dir: string): Promise<boolean> {
  try {
    return (await stat(dir)).isDirectory() && (await stat(join(dir, "energy_uj"))).isFile();
  } catch {
    return false;
  }
}

async function readMicrojoules(path: string): Promise<number | { error: string }> {
  try {
    const text = (await readFile(path, "utf8")).trim();
    const value = Number(text);
    return text !== "" && Number.isFinite(value)
      ? value
      : { error: `not a number: "${text.slice(0, 20)}"` };
  } catch (error) {
    return { error: (error as NodeJS.ErrnoException).code ?? String(error) };
  }
}

async function describeDomain(dir: string): Promise<RaplDomain> {
  let name = basename(dir);
  try {
    name = (await readFile(join(dir, "name"), "utf8")).trim() || name;
  } catch {
    // no name file: the folder name stands in, as in codecarbon
  }
  const max = await readMicrojoules(join(dir, "max_energy_range_uj"));
  const lower = name.toLowerCase();
  const parent = dirname(dir);
  const topLevel =
    parent.endsWith("intel-rapl") ||
    parent.endsWith("intel-rapl-mmio") ||
    basename(dir).split(":").length === 2;
  const kind: RaplDomain["kind"] = lower.includes("package")
    ? "package"
    : lower === "psys"
      ? "psys"
      : lower.includes("dram") && topLevel
        ? "dram"
        : "other";
  return {
    name,
    kind,
    dir,
    maxRangeUj: typeof max === "number" ? max : 0,
    mmio: dir.includes("intel-rapl-mmio"),
  };
}

/** codecarbon's choice of domains, then one per name (MMIO preferred over MSR). */
function pickDomains(
  readable: readonly RaplDomain[],
  includeDram: boolean,
  preferPsys: boolean,
): RaplDomain[] {
  const of = (kind: RaplDomain["kind"]) => readable.filter((d) => d.kind === kind);
  let chosen: RaplDomain[];
  if (preferPsys && of("psys").length > 0) chosen = of("psys");
  else if (of("package").length > 0)
    chosen = [...of("package"), ...(includeDram ? of("dram") : [])];
  else chosen = of("psys");
  const byName = new Map<string, RaplDomain>();
  for (const domain of chosen) {
    const seen = byName.get(domain.name);
    if (!seen || (domain.mmio && !seen.mmio)) byName.set(domain.name, domain);
  }
  return [...byName.values()];
}

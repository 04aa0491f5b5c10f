import type { ReportTo } from "../args/options.js";
import { closestName } from "../util/case.js";
import { redactText } from "../util/redact.js";
import type { Availability, PluginContext, TrainkitPlugin } from "./define-plugin.js";
import {
  discoverPlugins,
  loadDiscovered,
  loadFromEnv,
  type DiscoveredPlugin,
} from "./discovery.js";
import { FIRST_PARTY, FIRST_PARTY_ORDER } from "./first-party.js";

/** Where plugins come from, besides the application's dependencies. */
const PLUGINS_OPTION = "the plugins option";

export interface PluginSources {
  /** The application's folder (process.cwd() by default). */
  cwd?: string;
  /** Plugins given to the Trainer directly (`plugins: [...]`). */
  plugins?: readonly TrainkitPlugin[];
  /** What installedCandidates already found, so the manifests are not read again. */
  installed?: readonly Candidate[];
}

export interface Selection {
  plugins: TrainkitPlugin[];
  /** One line: what is active, and why; what was skipped, and what to set. */
  summary: string;
}

/** A plugin known by name, loaded only if it is selected. */
export interface Candidate {
  name: string;
  origin: string;
  load(): Promise<TrainkitPlugin>;
}

/**
 * The names reportTo can use right now, without importing anything: discovered packages and
 * plugins given directly. Plugins from TRAINKIT_PLUGINS are only known once imported.
 */
export function installedCandidates(
  sources: PluginSources = {},
  warn: (message: string) => void = () => {},
): Candidate[] {
  const cwd = sources.cwd ?? process.cwd();
  const candidates = new Map<string, Candidate>();
  const add = (candidate: Candidate) => {
    const existing = candidates.get(candidate.name);
    if (!existing) candidates.set(candidate.name, candidate);
    // A plugin given in the plugins option (e.g. one built with options) is meant to replace
    // the installed package of the same name.
    else if (existing.origin !== PLUGINS_OPTION || candidate.origin === PLUGINS_OPTION)
      warn(
        `Two plugins are named "${candidate.name}": ${existing.origin} is used, ${candidate.origin} is not.`,
      );
  };
  for (const plugin of sources.plugins ?? [])
    add({ name: plugin.name, origin: PLUGINS_OPTION, load: async () => plugin });
  for (const found of discoverPlugins(cwd, warn)) add(fromPackage(found));
  return [...candidates.values()];
}

function fromPackage(found: DiscoveredPlugin): Candidate {
  let loaded: Promise<TrainkitPlugin> | undefined;
  return {
    name: found.name,
    origin: `${found.packageName}@${found.version}`,
    load: () => (loaded ??= loadDiscovered(found)),
  };
}

/**
 * Checks reportTo's names against what is installed, before any work: an unknown name lists
 * the known and installed ones; a first-party name that is not installed gives the command
 * that installs it.
 */
export function checkReportTo(
  reportTo: ReportTo,
  installed: readonly string[],
  deferred = false,
): void {
  if (reportTo === "all" || reportTo === "none") return;
  for (const name of reportTo) {
    if (installed.includes(name)) continue;
    if (deferred) continue; // TRAINKIT_PLUGINS may still provide it; selectPlugins decides
    throw notInstalled(name, installed);
  }
}

function notInstalled(name: string, installed: readonly string[]): Error {
  const pkg = FIRST_PARTY[name];
  if (pkg) {
    return new Error(
      `reportTo lists "${name}", but ${pkg} is not installed in this application. Install it: npm install ${pkg} (or pnpm add ${pkg}), or remove "${name}" from reportTo.`,
    );
  }
  const known = [...new Set([...FIRST_PARTY_ORDER, ...installed])];
  const hint = closestName(name, known);
  return new Error(
    `reportTo lists "${name}", which is not a known integration.${hint ? ` Did you mean "${hint}"?` : ""} Known: ${FIRST_PARTY_ORDER.join(", ")}. Installed here: ${installed.length > 0 ? installed.join(", ") : "none"}.`,
  );
}

/** Orders names as reportTo "all" uses them: first-party in their fixed order, then the rest by name. */
function byFixedOrder(a: string, b: string): number {
  const rank = (n: string) =>
    FIRST_PARTY_ORDER.includes(n) ? FIRST_PARTY_ORDER.indexOf(n) : Infinity;
  return rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0);
}

/**
 * The plugins reportTo selects: "none" none; "all" every installed plugin that is available
 * (the others are skipped with what to set); a list exactly those, each of which must be
 * installed and available.
 */
export async function selectPlugins(
  reportTo: ReportTo,
  context: PluginContext,
  sources: PluginSources = {},
): Promise<Selection> {
  if (reportTo === "none")
    return { plugins: [], summary: 'Integrations: none (reportTo is "none").' };
  const cwd = sources.cwd ?? process.cwd();
  const warn = (message: string) => context.logger.warn(message);
  const candidates = [...(sources.installed ?? installedCandidates(sources, warn))];
  for (const plugin of await loadFromEnv(context.env.TRAINKIT_PLUGINS, cwd)) {
    // Named explicitly, so it wins over an installed plugin of the same name.
    const index = candidates.findIndex((c) => c.name === plugin.name);
    if (index !== -1)
      warn(
        `TRAINKIT_PLUGINS provides "${plugin.name}", used instead of ${candidates[index]!.origin}.`,
      );
    const candidate = { name: plugin.name, origin: "TRAINKIT_PLUGINS", load: async () => plugin };
    if (index === -1) candidates.push(candidate);
    else candidates[index] = candidate;
  }
  const byName = new Map(candidates.map((c) => [c.name, c]));
  const installed = candidates.map((c) => c.name);

  const wanted = reportTo === "all" ? [...installed].sort(byFixedOrder) : reportTo;
  const plugins: TrainkitPlugin[] = [];
  const active: string[] = [];
  const skipped: string[] = [];
  for (const name of wanted) {
    const candidate = byName.get(name);
    if (!candidate) throw notInstalled(name, installed);
    let plugin: TrainkitPlugin;
    let availability: Availability;
    try {
      plugin = await candidate.load();
      availability = plugin.isAvailable(context);
    } catch (error) {
      // A broken package the user did not name must not stop the run; a named one does.
      if (reportTo !== "all") throw error;
      skipped.push(`${name} (failed to load: ${redactText((error as Error).message)})`);
      continue;
    }
    if (reportTo === "all" && plugin.autoSelect === false) {
      skipped.push(`${name} (used only when listed in reportTo)`);
      continue;
    }
    if (!availability.available) {
      const reason = redactText(availability.reason);
      if (reportTo !== "all")
        throw new Error(`reportTo lists "${name}", but it is not configured: ${reason}.`);
      skipped.push(`${name} (${reason})`);
      continue;
    }
    plugins.push(plugin);
    active.push(`${name} [${candidate.origin}]`);
  }
  // HF: under "all", azure_ml only when mlflow is not used (inside an Azure ML job MLflow already
  // points at the workspace, so both would log every metric twice).
  const azure = plugins.findIndex((p) => p.name === "azure_ml");
  if (reportTo === "all" && azure !== -1 && plugins.some((p) => p.name === "mlflow")) {
    plugins.splice(azure, 1);
    active.splice(
      active.findIndex((a) => a.startsWith("azure_ml ")),
      1,
    );
    skipped.push(
      'azure_ml (mlflow is active and would log the same run twice; list "azure_ml" in reportTo to use it)',
    );
  }
  const why =
    reportTo === "all"
      ? 'reportTo "all": every installed, configured integration'
      : "reportTo lists them";
  const summary =
    `Integrations: ${active.length > 0 ? active.join(", ") : "none"} (${why})` +
    (skipped.length > 0 ? `; skipped: ${skipped.join("; ")}` : "") +
    ".";
  return { plugins, summary };
}

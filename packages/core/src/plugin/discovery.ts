import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { readJsonFile } from "../util/json-file.js";
import { isTrainkitPlugin, type TrainkitPlugin } from "./define-plugin.js";

/** A plugin package found among the application's dependencies; nothing imported yet. */
export interface DiscoveredPlugin {
  /** The report_to name from its package.json (`"trainkit": { "integration": name }`). */
  name: string;
  packageName: string;
  version: string;
  /** The folder its package.json is in. */
  dir: string;
}

/** The application's package.json: the nearest one to `cwd`. */
export function findApplicationManifest(cwd: string): string | undefined {
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    const candidate = join(dir, "package.json");
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * The plugin packages among the application's dependencies, devDependencies and
 * optionalDependencies, found as Node would resolve them from the application's folder (pnpm's
 * strict node_modules, npm's flat one, a workspace). Reads package.json files only.
 */
export function discoverPlugins(
  cwd: string = process.cwd(),
  warn: (message: string) => void = () => {},
): DiscoveredPlugin[] {
  const manifestPath = findApplicationManifest(cwd);
  if (!manifestPath) return [];
  const manifest = readJsonFile(manifestPath) as Record<string, unknown>;
  const names = new Set<string>();
  for (const field of ["dependencies", "devDependencies", "optionalDependencies"]) {
    const deps = manifest[field];
    if (deps && typeof deps === "object") for (const name of Object.keys(deps)) names.add(name);
  }
  const found: DiscoveredPlugin[] = [];
  for (const packageName of names) {
    const dir = packageDir(packageName, dirname(manifestPath));
    if (!dir) continue;
    let pkg: Record<string, unknown>;
    try {
      pkg = readJsonFile(join(dir, "package.json")) as Record<string, unknown>;
    } catch (error) {
      warn(
        `Skipped ${packageName} while looking for trainkit plugins: ${(error as Error).message}`,
      );
      continue;
    }
    const integration = (pkg.trainkit as { integration?: unknown } | undefined)?.integration;
    if (typeof integration !== "string") continue;
    found.push({ name: integration, packageName, version: String(pkg.version ?? "?"), dir });
  }
  return found;
}

/** Where Node finds a package from `from`: the first node_modules/<name> walking up. */
function packageDir(name: string, from: string): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    if (existsSync(join(candidate, "package.json"))) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

/** Imports a discovered plugin package (from the application's resolution). */
export async function loadDiscovered(plugin: DiscoveredPlugin): Promise<TrainkitPlugin> {
  const entry = createRequire(join(plugin.dir, "package.json")).resolve(plugin.packageName);
  return checkPluginModule(
    await import(pathToFileURL(entry).href),
    plugin.packageName,
    plugin.name,
  );
}

/**
 * Imports plugins named in TRAINKIT_PLUGINS (a comma list of module specifiers or paths),
 * resolved from `cwd`: for bundled or unusual layouts where package.json cannot be read.
 */
export async function loadFromEnv(
  value: string | undefined,
  cwd: string,
): Promise<TrainkitPlugin[]> {
  if (!value?.trim()) return [];
  const require = createRequire(join(resolve(cwd), "noop.js"));
  const plugins: TrainkitPlugin[] = [];
  for (const specifier of value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    let entry: string;
    try {
      entry =
        specifier.startsWith(".") || isAbsolute(specifier)
          ? resolve(cwd, specifier)
          : require.resolve(specifier);
    } catch {
      throw new Error(
        `TRAINKIT_PLUGINS names "${specifier}", which cannot be found from ${cwd}. Install it, or fix the name.`,
      );
    }
    plugins.push(checkPluginModule(await import(pathToFileURL(entry).href), specifier));
  }
  return plugins;
}

function checkPluginModule(
  module: { default?: unknown },
  from: string,
  expectedName?: string,
): TrainkitPlugin {
  const plugin = module.default;
  if (!isTrainkitPlugin(plugin)) {
    throw new Error(
      `${from} is not a trainkit plugin: its default export must be definePlugin({ name, create }) from "@trainkit/core/plugin".`,
    );
  }
  if (expectedName !== undefined && plugin.name !== expectedName) {
    throw new Error(
      `${from} declares integration "${expectedName}" in package.json but its plugin is named "${plugin.name}"; make them the same.`,
    );
  }
  return plugin;
}

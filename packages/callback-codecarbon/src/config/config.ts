// CodeCarbon's configuration, resolved with codecarbon's precedence: an explicit option, then
// `CODECARBON_<KEY>` in the environment (any case), then `./.codecarbon.config`, then
// `~/.codecarbon.config` (section [codecarbon]). Text values are parsed as codecarbon parses
// them: booleans are true only for "true" (any case), numbers that do not parse are reported
// and ignored. Explicit options are checked strictly: a bad one throws before any work.
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { OnCsvWrite } from "../csv/emissions-csv.js";
import { codecarbonSection } from "./ini.js";

export type TrackingMode = "machine" | "process";
export type LogLevel = "debug" | "info" | "warning" | "error" | "critical";

/** CodeCarbon settings: codecarbon's keys in camelCase (env `CODECARBON_<SNAKE_KEY>`). */
export interface CodeCarbonSettings {
  /** Folder of the CSV (created if missing). Default: the Trainer's `outputDir`. */
  outputDir?: string;
  /** CSV file name. Default `emissions.csv`. */
  outputFile?: string;
  /** Write the CSV at all. Default true. */
  saveToFile?: boolean;
  /** `append` a row per run (default), or `update` the row of the same run_id. */
  onCsvWrite?: OnCsvWrite;
  /** Seconds between energy measurements. Default 15. */
  measurePowerSecs?: number;
  /** `machine` (whole box, default) or `process` (this Node process). */
  trackingMode?: TrackingMode;
  projectName?: string;
  experimentId?: string;
  experimentName?: string;
  /** Power Usage Effectiveness: multiplies power and energy. Default 1. */
  pue?: number;
  /** Water Usage Effectiveness, litres per kWh. Default 0. */
  wue?: number;
  /** The CPU's TDP in W, replacing the detected one (the load model still applies). */
  forceCpuPower?: number;
  /** RAM power in W, replacing the DIMM model. */
  forceRamPower?: number;
  /** Grid carbon intensity in g CO2-eq/kWh (env `CODECARBON_FORCE_CARBON_INTENSITY_G_CO2E_KWH`). */
  forceCarbonIntensity?: number;
  /** Estimate the CPU from its load even when RAPL is readable. */
  forceModeCpuLoad?: boolean;
  /** Count RAPL DRAM domains with the CPU packages. */
  raplIncludeDram?: boolean;
  /** Use the RAPL psys (platform) domain instead of the packages. */
  raplPreferPsys?: boolean;
  /** GPUs to track: indexes or UUID prefixes (default: CUDA_VISIBLE_DEVICES, else all). */
  gpuIds?: string | ReadonlyArray<number | string>;
  /** ISO 3166-1 alpha-3 code of the country whose grid powers the machine, e.g. "FRA". */
  countryIsoCode?: string;
  /** Region: US state, Canadian province, Chinese province, or a Nordic bidding zone (SE1..FI). */
  region?: string;
  /** Cloud provider and region, looked up in codecarbon's `cloud/impact.csv` (e.g. "gcp"). */
  cloudProvider?: string;
  cloudRegion?: string;
  /** What is said: `info` (default) tells which estimates are used, `warning` only problems. */
  logLevel?: LogLevel;
}

/** The settings in force, with where the country came from. */
export interface ResolvedSettings {
  outputDir: string | undefined;
  outputFile: string;
  saveToFile: boolean;
  onCsvWrite: OnCsvWrite;
  measurePowerSecs: number;
  trackingMode: TrackingMode;
  projectName: string;
  experimentId: string;
  experimentName: string;
  pue: number;
  wue: number;
  forceCpuPower: number | undefined;
  forceRamPower: number | undefined;
  forceCarbonIntensity: number | undefined;
  forceModeCpuLoad: boolean;
  raplIncludeDram: boolean;
  raplPreferPsys: boolean;
  gpuIds: string[] | undefined;
  countryIsoCode: string | undefined;
  region: string | undefined;
  cloudProvider: string | undefined;
  cloudRegion: string | undefined;
  logLevel: LogLevel;
  /** Where each value set by the user came from: "option", "CODECARBON_X" or a file path. */
  sources: Record<string, string>;
  /** Things configured that this offline port does not do (said once at start). */
  unsupported: string[];
  /** Values from env/config files that were ignored, and why (said once at start). */
  problems: string[];
}

export const DEFAULT_EXPERIMENT_ID = "5b0fa12a-3dd7-45bb-9766-cc326314d9f1";
/** measure_power_secs' bounds: below 0.1 s the readings are noise, above a day a run never measures. */
export const MEASURE_POWER_SECS_MIN = 0.1;
export const MEASURE_POWER_SECS_MAX = 86_400;
const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warning", "error", "critical"];

export interface ResolveContext {
  env: Record<string, string | undefined>;
  /** Folder whose `.codecarbon.config` is read (default: process.cwd()). */
  cwd?: string;
  /** Home folder whose `.codecarbon.config` is read (default: os.homedir()). */
  homeDir?: string;
}

type Layer = { values: Record<string, string>; source: (key: string) => string };

/** Resolves settings; throws a TypeError for a bad explicit option or enum value. */
export function resolveSettings(
  options: CodeCarbonSettings,
  context: ResolveContext,
): ResolvedSettings {
  checkOptions(options);
  const layers = externalLayers(context);
  const sources: Record<string, string> = {};
  const problems: string[] = [];
  const unsupported: string[] = [];

  /** The external text value of `key` (env, then ./, then ~/), noting its source. */
  const text = (key: string): string | undefined => {
    for (const layer of layers)
      if (layer.values[key] !== undefined) {
        sources[key] = layer.source(key);
        return layer.values[key];
      }
    return undefined;
  };
  const pick = <T>(option: T | undefined, key: string, parse: (s: string) => T | undefined) => {
    if (option !== undefined) {
      sources[key] = "option";
      return option;
    }
    const raw = text(key);
    return raw === undefined ? undefined : parse(raw);
  };
  const number =
    (key: string, check: (n: number) => boolean = Number.isFinite) =>
    (raw: string): number | undefined => {
      const value = pythonFloat(raw);
      if (value !== undefined && check(value)) return value;
      problems.push(
        `${sources[key]}: ${key} must be a number${check === Number.isFinite ? "" : " in range"}, got ${JSON.stringify(raw)}; ignored.`,
      );
      return undefined;
    };
  const bool = (raw: string) => raw.trim().toLowerCase() === "true";
  const string = (raw: string) => raw;
  const oneOf =
    <T extends string>(key: string, allowed: readonly T[]) =>
    (raw: string): T => {
      // codecarbon strips and lower-cases these ("Machine " is machine)
      const value = raw.trim().toLowerCase();
      if ((allowed as readonly string[]).includes(value)) return value as T;
      throw new TypeError(
        `CodeCarbon: ${key} from ${sources[key]} must be one of ${allowed.map((a) => `"${a}"`).join(", ")} (got ${JSON.stringify(raw)}).`,
      );
    };

  const outputMethods = text("output_methods");
  let saveToFile = pick(options.saveToFile, "save_to_file", bool) ?? true;
  if (options.saveToFile === undefined && outputMethods !== undefined) {
    const methods = outputMethods
      .split(",")
      .map((m) => m.trim().toLowerCase())
      .filter(Boolean);
    saveToFile = methods.includes("csv");
    const others = methods.filter((m) => m !== "csv");
    if (others.length > 0) unsupported.push(`output_methods ${others.join(", ")}`);
  }
  for (const key of ["save_to_api", "save_to_logger", "save_to_prometheus", "save_to_logfire"])
    if (bool(text(key) ?? "")) unsupported.push(key);
  if (text("electricitymaps_api_token") !== undefined || text("co2_signal_api_token") !== undefined)
    unsupported.push("electricitymaps_api_token (live carbon intensity needs the network)");

  const inMeasureRange = (n: number) =>
    Number.isFinite(n) && n >= MEASURE_POWER_SECS_MIN && n <= MEASURE_POWER_SECS_MAX;
  const nonNegative = (n: number) => Number.isFinite(n) && n >= 0;
  const logLevel = pick(options.logLevel, "log_level", (raw) => {
    const level = raw.trim().toLowerCase() as LogLevel;
    if (LOG_LEVELS.includes(level)) return level;
    problems.push(`${sources.log_level}: log_level ${JSON.stringify(raw)} is unknown; ignored.`);
    return undefined;
  });
  const country = pick(options.countryIsoCode, "country_iso_code", string);
  const region = pick(options.region, "region", string);
  return {
    outputDir: pick(options.outputDir, "output_dir", string),
    outputFile: pick(options.outputFile, "output_file", string) ?? "emissions.csv",
    saveToFile,
    onCsvWrite:
      pick(
        options.onCsvWrite,
        "on_csv_write",
        oneOf<OnCsvWrite>("on_csv_write", ["append", "update"]),
      ) ?? "append",
    measurePowerSecs:
      pick(options.measurePowerSecs, "measure_power_secs", (raw) => {
        const seconds = number("measure_power_secs")(raw);
        if (seconds === undefined || inMeasureRange(seconds)) return seconds;
        throw new TypeError(
          `CodeCarbon: measure_power_secs from ${sources.measure_power_secs} must be from ${MEASURE_POWER_SECS_MIN} to ${MEASURE_POWER_SECS_MAX} seconds (got ${JSON.stringify(raw)}).`,
        );
      }) ?? 15,
    trackingMode:
      pick(
        options.trackingMode,
        "tracking_mode",
        oneOf<TrackingMode>("tracking_mode", ["machine", "process"]),
      ) ?? "machine",
    projectName: pick(options.projectName, "project_name", string) ?? "codecarbon",
    experimentId: pick(options.experimentId, "experiment_id", string) ?? DEFAULT_EXPERIMENT_ID,
    experimentName: pick(options.experimentName, "experiment_name", string) ?? "base",
    pue: pick(options.pue, "pue", number("pue", nonNegative)) ?? 1,
    wue: pick(options.wue, "wue", number("wue", nonNegative)) ?? 0,
    forceCpuPower: pick(
      options.forceCpuPower,
      "force_cpu_power",
      number("force_cpu_power", nonNegative),
    ),
    forceRamPower: pick(
      options.forceRamPower,
      "force_ram_power",
      number("force_ram_power", nonNegative),
    ),
    forceCarbonIntensity: pick(
      options.forceCarbonIntensity,
      "force_carbon_intensity_g_co2e_kwh",
      number("force_carbon_intensity_g_co2e_kwh", nonNegative),
    ),
    forceModeCpuLoad: pick(options.forceModeCpuLoad, "force_mode_cpu_load", bool) ?? false,
    raplIncludeDram: pick(options.raplIncludeDram, "rapl_include_dram", bool) ?? false,
    raplPreferPsys: pick(options.raplPreferPsys, "rapl_prefer_psys", bool) ?? false,
    gpuIds: resolveGpuIds(pick(options.gpuIds, "gpu_ids", string), context.env),
    countryIsoCode: country?.trim().toUpperCase() || undefined,
    region: region?.trim().toLowerCase() || undefined,
    cloudProvider: pick(options.cloudProvider, "cloud_provider", string) || undefined,
    cloudRegion: pick(options.cloudRegion, "cloud_region", string) || undefined,
    logLevel: logLevel ?? "info",
    sources,
    unsupported,
    problems,
  };
}

/** env (CODECARBON_*, any case), then ./.codecarbon.config, then ~/.codecarbon.config. */
function externalLayers(context: ResolveContext): Layer[] {
  const envValues: Record<string, string> = {};
  const envNames: Record<string, string> = {};
  for (const [name, value] of Object.entries(context.env)) {
    if (value === undefined || !name.toLowerCase().startsWith("codecarbon_")) continue;
    const key = name.toLowerCase().slice("codecarbon_".length);
    envValues[key] = value;
    envNames[key] = name;
  }
  const file = (folder: string): Layer => {
    const path = join(folder, ".codecarbon.config");
    let values: Record<string, string> = {};
    try {
      values = codecarbonSection(readFileSync(path, "utf8"));
    } catch {
      // configparser ignores a file it cannot read, and so does codecarbon
    }
    return { values, source: () => path };
  };
  return [
    { values: envValues, source: (key) => envNames[key] ?? `CODECARBON_${key.toUpperCase()}` },
    file(context.cwd ?? process.cwd()),
    file(context.homeDir ?? homedir()),
  ];
}

/**
 * codecarbon's gpu_ids: the setting, else CUDA_VISIBLE_DEVICES, else ROCR_VISIBLE_DEVICES; a
 * text keeps only letters, digits, "-" and "," and is split on commas.
 */
function resolveGpuIds(
  setting: string | ReadonlyArray<number | string> | undefined,
  env: Record<string, string | undefined>,
): string[] | undefined {
  const value = setting ?? (env.CUDA_VISIBLE_DEVICES || env.ROCR_VISIBLE_DEVICES || undefined);
  if (value === undefined) return undefined;
  const parse = (text: string) =>
    text
      .replace(/[^\p{L}\p{N},-]/gu, "")
      .split(",")
      .filter(Boolean);
  if (typeof value === "string") return parse(value);
  return value.flatMap((id) => (typeof id === "number" ? [String(id)] : parse(id)));
}

/** Python's float() on a config text: surrounding spaces allowed, "1_000" too. */
function pythonFloat(raw: string): number | undefined {
  const text = raw.trim().replace(/(\d)_(?=\d)/g, "$1");
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text)) return undefined;
  return Number(text);
}

/** Strict checks of explicit options: a wrong type or range throws before any work. */
function checkOptions(options: CodeCarbonSettings): void {
  if (typeof options !== "object" || options === null)
    throw new TypeError("CodeCarbon: options must be an object.");
  const fail = (name: string, expected: string, got: unknown) => {
    throw new TypeError(`CodeCarbon: ${name} must be ${expected} (got ${describe(got)}).`);
  };
  const strings = [
    "outputDir",
    "outputFile",
    "projectName",
    "experimentId",
    "experimentName",
    "region",
    "cloudProvider",
    "cloudRegion",
  ] as const;
  for (const name of strings) {
    const value = options[name];
    if (value !== undefined && (typeof value !== "string" || value.trim() === ""))
      fail(name, "a non-empty string", value);
  }
  if (options.outputFile !== undefined && /[/\\]/.test(options.outputFile))
    fail("outputFile", "a file name (set outputDir for the folder)", options.outputFile);
  for (const name of [
    "saveToFile",
    "forceModeCpuLoad",
    "raplIncludeDram",
    "raplPreferPsys",
  ] as const)
    if (options[name] !== undefined && typeof options[name] !== "boolean")
      fail(name, "true or false", options[name]);
  const m = options.measurePowerSecs;
  if (
    m !== undefined &&
    !(
      typeof m === "number" &&
      Number.isFinite(m) &&
      m >= MEASURE_POWER_SECS_MIN &&
      m <= MEASURE_POWER_SECS_MAX
    )
  )
    fail(
      "measurePowerSecs",
      `a number of seconds from ${MEASURE_POWER_SECS_MIN} to ${MEASURE_POWER_SECS_MAX} (one day)`,
      m,
    );
  for (const name of [
    "pue",
    "wue",
    "forceCpuPower",
    "forceRamPower",
    "forceCarbonIntensity",
  ] as const) {
    const value = options[name];
    if (value !== undefined && !(typeof value === "number" && Number.isFinite(value) && value >= 0))
      fail(name, "a finite number ≥ 0", value);
  }
  if (options.trackingMode !== undefined && !["machine", "process"].includes(options.trackingMode))
    fail("trackingMode", '"machine" or "process"', options.trackingMode);
  if (options.onCsvWrite !== undefined && !["append", "update"].includes(options.onCsvWrite))
    fail("onCsvWrite", '"append" or "update"', options.onCsvWrite);
  if (options.logLevel !== undefined && !LOG_LEVELS.includes(options.logLevel))
    fail("logLevel", LOG_LEVELS.map((l) => `"${l}"`).join(", "), options.logLevel);
  const c = options.countryIsoCode;
  if (c !== undefined && !(typeof c === "string" && /^[A-Za-z]{3}$/.test(c.trim())))
    fail("countryIsoCode", 'a 3-letter ISO 3166-1 alpha-3 code such as "FRA" or "USA"', c);
  const g = options.gpuIds;
  if (
    g !== undefined &&
    typeof g !== "string" &&
    !(Array.isArray(g) && g.every((id) => typeof id === "string" || Number.isInteger(id)))
  )
    fail("gpuIds", 'a comma-separated string or a list of indexes/UUIDs, e.g. "0,1" or [0, 1]', g);
  if ((options.cloudProvider === undefined) !== (options.cloudRegion === undefined))
    fail(
      "cloudProvider and cloudRegion",
      "given together",
      options.cloudProvider ?? options.cloudRegion,
    );
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean" || value == null)
    return String(value);
  try {
    return JSON.stringify(value);
  } catch {
    return typeof value;
  }
}

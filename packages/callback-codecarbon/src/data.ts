// codecarbon's reference data, shipped as-is in this package's `data/` folder (codecarbon
// 3.3.2, MIT; see data/NOTICE.md for the sources behind each file). Read once, on first use.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseCsv } from "./csv/python-format.js";

/** The package's data folder (one level above src/ and dist/). */
export const DATA_DIR = fileURLToPath(new URL("../data/", import.meta.url));

export interface CountryEnergyMix {
  country_name: string;
  carbon_intensity?: number | null;
  total_TWh: number;
  [sourceTWh: string]: string | number | null | undefined;
}

export interface CloudImpactRow {
  provider: string;
  region: string;
  country_name: string;
  countryIsoCode: string;
  state: string;
  city: string;
  /** g CO2-eq/kWh. */
  impact: number;
}

export interface CodeCarbonData {
  /** ISO-3 → country mix and intensity (g/kWh). */
  globalEnergyMix: Record<string, CountryEnergyMix>;
  /** Source name → g/kWh, plus `world_average`. */
  carbonIntensityPerSource: Record<string, number | string>;
  /** US state (lower case) → { emissions: lbs/MWh }. */
  usaEmissions: Record<string, { emissions: number }>;
  /** Canadian province (lower case) → % of production per source, with `total`. */
  canadaEnergyMix: Record<string, Record<string, number>>;
  nordicEmissions: { data: Record<string, { emission_factor: number }> };
  chinaProvincialEmissions: {
    data: Record<string, { emission_factor: number; names: string[] }>;
  };
  /** CPU model → TDP in W (NaN where the table's cell is not a number), in file order. */
  cpuPower: Array<{ name: string; tdp: number }>;
  cloudImpact: CloudImpactRow[];
}

let loading: Promise<CodeCarbonData> | undefined;

/** The data files, parsed (cached: later calls share the first read). */
export function loadData(): Promise<CodeCarbonData> {
  loading ??= readAll().catch((error: unknown) => {
    loading = undefined;
    throw error;
  });
  return loading;
}

async function readAll(): Promise<CodeCarbonData> {
  const text = (path: string) => readFile(join(DATA_DIR, path), "utf8");
  const json = async <T>(path: string) => JSON.parse(await text(path)) as T;
  const [globalEnergyMix, perSource, usa, canada, nordic, china, cpuCsv, cloudCsv] =
    await Promise.all([
      json<CodeCarbonData["globalEnergyMix"]>("private_infra/global_energy_mix.json"),
      json<CodeCarbonData["carbonIntensityPerSource"]>(
        "private_infra/carbon_intensity_per_source.json",
      ),
      json<CodeCarbonData["usaEmissions"]>("private_infra/2023/usa_emissions.json"),
      json<CodeCarbonData["canadaEnergyMix"]>("private_infra/2023/canada_energy_mix.json"),
      json<CodeCarbonData["nordicEmissions"]>("private_infra/nordic_emissions.json"),
      json<CodeCarbonData["chinaProvincialEmissions"]>(
        "private_infra/2023/china_provincial_emissions.json",
      ),
      text("hardware/cpu_power.csv"),
      text("cloud/impact.csv"),
    ]);
  return {
    globalEnergyMix,
    carbonIntensityPerSource: perSource,
    usaEmissions: usa,
    canadaEnergyMix: canada,
    nordicEmissions: nordic,
    chinaProvincialEmissions: china,
    cpuPower: tableRows(cpuCsv).map((row) => ({ name: row.Name ?? "", tdp: Number(row.TDP) })),
    cloudImpact: tableRows(cloudCsv).map((row) => ({
      provider: row.provider ?? "",
      region: row.region ?? "",
      country_name: row.country_name ?? "",
      countryIsoCode: row.countryIsoCode ?? "",
      state: row.state ?? "",
      city: row.city ?? "",
      impact: Number(row.impact),
    })),
  };
}

/** A CSV with a header row, as objects keyed by column. */
function tableRows(text: string): Array<Record<string, string>> {
  const [header = [], ...records] = parseCsv(text);
  return records
    .filter((r) => r.length > 1 || (r[0] ?? "") !== "")
    .map((r) => Object.fromEntries(header.map((column, i) => [column, r[i] ?? ""])));
}

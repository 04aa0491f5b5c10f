// Where the machine is and how carbon-intensive its grid is, by codecarbon 3.3's offline rules
// (core/emissions.py), with no network: a forced value; else a cloud region from
// cloud/impact.csv; else regional data (US state, Canadian province, Chinese province, Nordic
// bidding zone); else the country's intensity from global_energy_mix.json; else the world
// average. With no country configured, trainkit uses the world average and says so: it never
// geolocates, and it never falls back to codecarbon's silent "Canada/Quebec" guess (~4 g/kWh).
import type { ResolvedSettings } from "./config/config.js";
import type { CodeCarbonData, CountryEnergyMix } from "./data.js";
import { LBS_MWH_TO_KG_KWH } from "./units.js";

export interface Location {
  countryName: string | null;
  countryIsoCode: string | null;
  region: string | null;
  cloudProvider: string;
  cloudRegion: string;
  onCloud: "Y" | "N";
  /** Grid carbon intensity, g CO2-eq per kWh. */
  intensity: number;
  /** What the intensity is and where it comes from, for the one notice at start. */
  explanation: string;
  /** Configured values that could not be used. */
  warnings: string[];
}

const NORDIC_ZONES: Record<string, readonly string[]> = {
  SWE: ["SE1", "SE2", "SE3", "SE4"],
  NOR: ["NO1", "NO2", "NO3", "NO4", "NO5"],
  FIN: ["FI"],
};
/** Canada's per-source factors, kg/kWh (codecarbon's, from the energy-usage project). */
const CANADA_FACTORS = { coal: 0.995725971, petroleum: 0.8166885263, naturalGas: 0.7438415916 };
const CHINA_SUFFIX = /\s+(autonomous region|municipality|province|sheng|shi|zizhiqu)$/;

type Settings = Pick<
  ResolvedSettings,
  "countryIsoCode" | "region" | "cloudProvider" | "cloudRegion" | "forceCarbonIntensity" | "sources"
>;

export function resolveLocation(settings: Settings, data: CodeCarbonData): Location {
  const warnings: string[] = [];
  const worldAverage = Number(data.carbonIntensityPerSource.world_average);
  let iso = settings.countryIsoCode ?? null;
  let region = settings.region ?? null;
  let countryName = iso ? (data.globalEnergyMix[iso]?.country_name ?? null) : null;
  let cloud: { provider: string; region: string; impact?: number } | undefined;

  if (settings.cloudProvider && settings.cloudRegion) {
    const row = data.cloudImpact.find(
      (r) => r.provider === settings.cloudProvider && r.region === settings.cloudRegion,
    );
    cloud = { provider: settings.cloudProvider, region: settings.cloudRegion };
    if (row) {
      cloud.impact = row.impact;
      countryName = row.country_name;
      iso = row.countryIsoCode;
      // codecarbon reads `state` (pandas NaN when empty, never the city) as the region
      region = row.state === "" ? null : row.state;
    } else
      warnings.push(
        `cloud provider "${settings.cloudProvider}" region "${settings.cloudRegion}" is not in codecarbon's cloud/impact.csv; the country's value is used instead.`,
      );
  }

  const where = (key: string) => settings.sources[key] ?? "option";
  let intensity: number;
  let explanation: string;
  if (settings.forceCarbonIntensity !== undefined) {
    intensity = settings.forceCarbonIntensity;
    explanation = `forced carbon intensity ${intensity} g CO2eq/kWh (from ${where("force_carbon_intensity_g_co2e_kwh")})`;
  } else if (cloud?.impact !== undefined) {
    intensity = cloud.impact;
    explanation = `cloud region ${cloud.provider}/${cloud.region}: ${intensity} g CO2eq/kWh (codecarbon's cloud/impact.csv)`;
  } else if (!iso) {
    intensity = worldAverage;
    explanation = `no country configured and no network lookup is made, so the world average ${worldAverage} g CO2eq/kWh is used; set countryIsoCode (env CODECARBON_COUNTRY_ISO_CODE), e.g. "FRA", for your grid's value`;
  } else {
    const grid = gridIntensity(iso, region, data, warnings);
    intensity = grid.intensity;
    explanation = `${grid.what} (country from ${where("country_iso_code")})`;
  }
  return {
    countryName,
    countryIsoCode: iso,
    region,
    cloudProvider: cloud?.provider ?? "",
    cloudRegion: cloud?.region ?? "",
    onCloud: cloud ? "Y" : "N",
    intensity,
    explanation,
    warnings,
  };
}

/** A configured country (and region) on private infrastructure: g/kWh and a description. */
function gridIntensity(
  iso: string,
  region: string | null,
  data: CodeCarbonData,
  warnings: string[],
): { intensity: number; what: string } {
  const regional =
    region !== null &&
    (["USA", "CAN", "CHN"].includes(iso) || NORDIC_ZONES[iso]?.includes(region.toUpperCase()));
  if (regional) {
    const found = regionIntensity(iso, region, data);
    if (found !== undefined)
      return {
        intensity: found,
        what: `${iso}/${region}: ${found} g CO2eq/kWh (codecarbon's regional data)`,
      };
    if (iso !== "CHN")
      warnings.push(
        `region "${region}" is not in codecarbon's data for ${iso}; the country's value is used.`,
      );
  }
  const mix = data.globalEnergyMix[iso];
  if (!mix) {
    const average = Number(data.carbonIntensityPerSource.world_average);
    warnings.push(
      `codecarbon has no data for country ${iso}; the world average ${average} g CO2eq/kWh is used.`,
    );
    return {
      intensity: average,
      what: `unknown country ${iso}: world average ${average} g CO2eq/kWh`,
    };
  }
  const intensity = countryIntensity(mix, data, warnings);
  return {
    intensity,
    what: `${mix.country_name} (${iso}): ${intensity} g CO2eq/kWh (codecarbon's global_energy_mix.json)`,
  };
}

/** g/kWh of a region, or undefined when codecarbon has no entry for it. */
export function regionIntensity(
  iso: string,
  region: string,
  data: CodeCarbonData,
): number | undefined {
  if (NORDIC_ZONES[iso]) return data.nordicEmissions.data[region.toUpperCase()]?.emission_factor;
  if (iso === "CHN") {
    const name = region
      .toLowerCase()
      .split(/\s+/)
      .filter(Boolean)
      .join(" ")
      .replace(CHINA_SUFFIX, "");
    for (const province of Object.values(data.chinaProvincialEmissions.data))
      if (province.names.includes(name)) return province.emission_factor;
    return undefined;
  }
  if (iso === "USA") {
    const state = Object.hasOwn(data.usaEmissions, region) ? data.usaEmissions[region] : undefined;
    return state === undefined ? undefined : state.emissions * LBS_MWH_TO_KG_KWH * 1000;
  }
  if (iso === "CAN") {
    const mix = Object.hasOwn(data.canadaEnergyMix, region)
      ? data.canadaEnergyMix[region]
      : undefined;
    if (!mix) return undefined;
    const total = mix.total ?? NaN;
    let kgPerKWh = 0;
    for (const [source, factor] of Object.entries(CANADA_FACTORS))
      kgPerKWh += ((mix[source] ?? 0) / total) * factor;
    return kgPerKWh * 1000;
  }
  return undefined;
}

/**
 * A country's g/kWh: its `carbon_intensity`, else computed from its mix with the per-source
 * factors, else (when the sources do not add up to the total) the world average.
 */
export function countryIntensity(
  mix: CountryEnergyMix,
  data: CodeCarbonData,
  warnings: string[] = [],
): number {
  if (typeof mix.carbon_intensity === "number") return mix.carbon_intensity;
  const perSource = data.carbonIntensityPerSource;
  let intensity = 0;
  let counted = 0;
  for (const [key, value] of Object.entries(mix)) {
    if (!key.includes("_TWh") || typeof value !== "number") continue;
    const factor = perSource[key.slice(0, -"_TWh".length)];
    if (typeof factor !== "number") continue;
    intensity += (value / mix.total_TWh) * factor;
    counted += value;
  }
  if (counted !== mix.total_TWh) {
    warnings.push(
      `the energy sources of ${mix.country_name} add up to ${counted} TWh instead of ${mix.total_TWh} TWh; the world average is used.`,
    );
    return Number(perSource.world_average);
  }
  return intensity;
}

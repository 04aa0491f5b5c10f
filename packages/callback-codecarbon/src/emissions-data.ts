// One run's totals, and the row codecarbon 3.3 writes for it (output_methods/emissions_data.py:
// the dataclass field order is the CSV's column order).
import { float, int, none, str, type CsvCell } from "./csv/python-format.js";

/** A run's totals so far, as codecarbon's EmissionsData (camelCase here, snake_case on disk). */
export interface EmissionsData {
  /** Local time of the reading, `YYYY-MM-DDTHH:MM:SS`. */
  timestamp: string;
  projectName: string;
  runId: string;
  experimentId: string;
  /** Seconds since the run started (monotonic clock). */
  duration: number;
  /** kg CO2-eq since the run started. */
  emissions: number;
  /** kg CO2-eq per second (emissions / duration). */
  emissionsRate: number;
  /** W, mean of the per-measurement powers (PUE applied). */
  cpuPower: number;
  gpuPower: number;
  ramPower: number;
  /** kWh since the run started (PUE applied). */
  cpuEnergy: number;
  gpuEnergy: number;
  ramEnergy: number;
  energyConsumed: number;
  /** Litres (WUE × kWh). */
  waterConsumed: number;
  countryName: string | null;
  countryIsoCode: string | null;
  region: string | null;
  cloudProvider: string;
  cloudRegion: string;
  os: string;
  /** Always null: no Python runs here (an empty cell). */
  pythonVersion: string | null;
  /** The codecarbon release whose method and data this follows, tagged: `3.3.2+trainkit.0.1.0`. */
  codecarbonVersion: string;
  cpuCount: number;
  cpuModel: string;
  gpuCount: number;
  gpuModel: string;
  longitude: number | null;
  latitude: number | null;
  /** GiB of RAM of the machine. */
  ramTotalSize: number;
  trackingMode: "machine" | "process";
  /** Means of the 1 s samples; 0 when there was no sample. */
  cpuUtilizationPercent: number;
  gpuUtilizationPercent: number;
  ramUtilizationPercent: number;
  ramUsedGb: number;
  onCloud: "Y" | "N";
  pue: number;
  wue: number;
}

/** How many 1 s samples each utilisation mean is made of (codecarbon writes int 0 for none). */
export interface UtilizationSampleCounts {
  cpu: number;
  gpu: number;
  ram: number;
}

/** codecarbon 3.3's columns, in its order. */
export const EMISSIONS_COLUMNS = [
  "timestamp",
  "project_name",
  "run_id",
  "experiment_id",
  "duration",
  "emissions",
  "emissions_rate",
  "cpu_power",
  "gpu_power",
  "ram_power",
  "cpu_energy",
  "gpu_energy",
  "ram_energy",
  "energy_consumed",
  "water_consumed",
  "country_name",
  "country_iso_code",
  "region",
  "cloud_provider",
  "cloud_region",
  "os",
  "python_version",
  "codecarbon_version",
  "cpu_count",
  "cpu_model",
  "gpu_count",
  "gpu_model",
  "longitude",
  "latitude",
  "ram_total_size",
  "tracking_mode",
  "cpu_utilization_percent",
  "gpu_utilization_percent",
  "ram_utilization_percent",
  "ram_used_gb",
  "on_cloud",
  "pue",
  "wue",
] as const;

export type EmissionsColumn = (typeof EMISSIONS_COLUMNS)[number];

const optionalFloat = (value: number | null): CsvCell => (value === null ? none : float(value));
/** A mean of samples: a Python float, or the int 0 codecarbon returns for an empty history. */
const mean = (value: number, samples: number): CsvCell => (samples > 0 ? float(value) : int(0));

/** The row's cells, keyed by column, with the Python types codecarbon's values have. */
export function emissionsCells(
  data: EmissionsData,
  samples: UtilizationSampleCounts,
): Record<EmissionsColumn, CsvCell> {
  return {
    timestamp: str(data.timestamp),
    project_name: str(data.projectName),
    run_id: str(data.runId),
    experiment_id: str(data.experimentId),
    duration: float(data.duration),
    emissions: float(data.emissions),
    emissions_rate: float(data.emissionsRate),
    cpu_power: float(data.cpuPower),
    gpu_power: float(data.gpuPower),
    ram_power: float(data.ramPower),
    cpu_energy: float(data.cpuEnergy),
    gpu_energy: float(data.gpuEnergy),
    ram_energy: float(data.ramEnergy),
    energy_consumed: float(data.energyConsumed),
    water_consumed: float(data.waterConsumed),
    country_name: str(data.countryName),
    country_iso_code: str(data.countryIsoCode),
    region: str(data.region),
    cloud_provider: str(data.cloudProvider),
    cloud_region: str(data.cloudRegion),
    os: str(data.os),
    python_version: str(data.pythonVersion),
    codecarbon_version: str(data.codecarbonVersion),
    cpu_count: int(data.cpuCount),
    cpu_model: str(data.cpuModel),
    gpu_count: int(data.gpuCount),
    gpu_model: str(data.gpuModel),
    longitude: optionalFloat(data.longitude),
    latitude: optionalFloat(data.latitude),
    ram_total_size: float(data.ramTotalSize),
    tracking_mode: str(data.trackingMode),
    cpu_utilization_percent: mean(data.cpuUtilizationPercent, samples.cpu),
    gpu_utilization_percent: mean(data.gpuUtilizationPercent, samples.gpu),
    ram_utilization_percent: mean(data.ramUtilizationPercent, samples.ram),
    ram_used_gb: mean(data.ramUsedGb, samples.ram),
    on_cloud: str(data.onCloud),
    pue: float(data.pue),
    wue: float(data.wue),
  };
}

// Which method measures each component, decided once as codecarbon's ResourceTracker does:
// CPU by RAPL when readable (unless a CPU power is forced or load mode is asked for), else by
// TDP × load; RAM by the DIMM model (or a forced value); NVIDIA GPUs when nvidia-smi finds any.
import type { ResolvedSettings } from "../config/config.js";
import type { CodeCarbonData } from "../data.js";
import type { SystemProbes } from "../system.js";
import { BYTES_PER_GB } from "../units.js";
import { discoverRapl, type RaplDomain } from "./rapl.js";
import { gpuModel, NoNvidiaSmi, selectGpus, type GpuDevice, type GpuReader } from "./gpu.js";
import { isArmMachine, ramPowerWatts } from "./ram.js";
import { cpuTdp } from "./tdp.js";

export type CpuMethod =
  { mode: "rapl"; domains: RaplDomain[] } | { mode: "cpu_load"; tdpWatts: number };

export interface Hardware {
  cpu: CpuMethod;
  cpuModel: string;
  cpuCount: number;
  /** GiB of RAM in the machine. */
  ramTotalGb: number;
  arm: boolean;
  gpus: GpuDevice[];
  /** Indexes of the GPUs measured. */
  trackedGpus: number[];
  gpuModel: string;
  /** One phrase per component, for the notice at start. */
  described: { cpu: string; ram: string; gpu: string };
}

export interface SetupInputs {
  settings: ResolvedSettings;
  data: CodeCarbonData;
  system: SystemProbes;
  raplRoot: string;
  gpuReader: GpuReader;
  /** A problem worth one warning (the estimate still goes on). */
  onProblem: (key: string, message: string) => void;
}

export async function detectHardware(inputs: SetupInputs): Promise<Hardware> {
  const { settings, system } = inputs;
  const cpuCount = system.cpuCount();
  const detectedModel = system.cpuModel();
  const arm = isArmMachine(system.machine());
  const ramTotalGb = system.totalMemoryBytes() / BYTES_PER_GB;
  const [cpu, gpu] = await Promise.all([
    detectCpu(inputs, detectedModel, cpuCount),
    detectGpus(inputs),
  ]);
  const ram =
    settings.forceRamPower !== undefined
      ? `forced ${settings.forceRamPower} W`
      : settings.trackingMode === "machine"
        ? `${ramPowerWatts(ramTotalGb, arm)} W for ${ramTotalGb.toFixed(1)} GiB (codecarbon's DIMM model)`
        : "codecarbon's DIMM model over this process' RSS";
  return {
    cpu: cpu.method,
    cpuModel: cpu.model,
    cpuCount,
    ramTotalGb,
    arm,
    gpus: gpu.devices,
    trackedGpus: gpu.tracked,
    gpuModel: gpuModel(gpu.devices),
    described: { cpu: cpu.described, ram, gpu: gpu.described },
  };
}

async function detectCpu(
  { settings, data, system, raplRoot, onProblem }: SetupInputs,
  detectedModel: string | undefined,
  cpuCount: number,
): Promise<{ method: CpuMethod; model: string; described: string }> {
  const useRapl = settings.forceCpuPower === undefined && !settings.forceModeCpuLoad;
  let whyNotRapl =
    settings.forceCpuPower !== undefined ? "a CPU power is forced" : "load mode is forced";
  if (useRapl) {
    const rapl = await discoverRapl(raplRoot, {
      includeDram: settings.raplIncludeDram,
      preferPsys: settings.raplPreferPsys,
    });
    if (rapl.domains.length > 0)
      return {
        method: { mode: "rapl", domains: rapl.domains },
        model: detectedModel ?? "",
        described: `RAPL energy counters (${rapl.domains.map((d) => d.name).join(", ")})`,
      };
    whyNotRapl = rapl.reason ?? "no RAPL";
    // Counters that exist but cannot be read are a problem to fix; no RAPL at all is normal.
    if (rapl.unreadable)
      onProblem("rapl", `${rapl.reason}; the CPU is estimated from its TDP and load instead.`);
  }
  const tdp = cpuTdp(detectedModel, cpuCount, await system.cpuSockets(), data.cpuPower);
  const watts = settings.forceCpuPower ?? tdp.watts;
  const curve =
    settings.trackingMode === "machine"
      ? "× (0.1 + 0.9 × load³)"
      : "× this process' share of the CPUs";
  const source = settings.forceCpuPower !== undefined ? `forced ${watts} W` : tdp.how;
  return {
    method: { mode: "cpu_load", tdpWatts: watts },
    model: tdp.model,
    described: `${watts} W ${curve}, ${source} (${whyNotRapl})`,
  };
}

async function detectGpus({
  settings,
  gpuReader,
  onProblem,
}: SetupInputs): Promise<{ devices: GpuDevice[]; tracked: number[]; described: string }> {
  let devices: GpuDevice[];
  try {
    devices = await gpuReader.devices();
  } catch (error) {
    if (error instanceof NoNvidiaSmi)
      return { devices: [], tracked: [], described: `none (${error.message})` };
    onProblem(
      "gpu-detect",
      `GPU detection failed (${(error as Error).message}); GPU energy is counted as 0.`,
    );
    return { devices: [], tracked: [], described: "none (detection failed)" };
  }
  if (devices.length === 0) return { devices, tracked: [], described: "none found" };
  const { tracked, unknown } = selectGpus(devices, settings.gpuIds);
  if (unknown.length > 0)
    onProblem(
      "gpu-ids",
      `GPU ids ${unknown.join(", ")} match no GPU (${devices.map((d) => `${d.index}: ${d.uuid}`).join(", ")}); they are ignored.`,
    );
  return {
    devices,
    tracked,
    described: `${gpuModel(devices)}, tracking ${tracked.length === devices.length ? "all" : `indexes ${tracked.join(", ")}`} from 1 s power samples`,
  };
}

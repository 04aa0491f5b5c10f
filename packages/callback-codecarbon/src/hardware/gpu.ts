// NVIDIA GPUs. codecarbon reads NVML through pynvml; Node has no NVML binding, so the default
// reader runs `nvidia-smi` (which is NVML's own command-line front end), asynchronously:
//   detection: nvidia-smi --query-gpu=index,uuid,name --format=csv,noheader,nounits
//   samples:   nvidia-smi --query-gpu=index,power.draw,utilization.gpu --format=csv,noheader,nounits
// nvidia-smi's documented query fields give power, not NVML's total-energy counter, so energy is
// the mean of the 1 s power samples over each interval: codecarbon's own method for a GPU
// without a usable energy counter (core/gpu_device.py, `_delta_from_power`). A reader that can
// give the counter (`energyMj`, e.g. an NVML binding) gets codecarbon's counter deltas instead.
import { execFile } from "node:child_process";
import { kWhOverSecondsToWatts, millijoulesToKWh, wattsForSecondsToKWh } from "../units.js";
import type { Measured } from "./cpu-load.js";

export interface GpuDevice {
  index: number;
  uuid: string;
  name: string;
}

export interface GpuReading {
  index: number;
  /** Board power, W. */
  powerW?: number;
  /** Kernel utilisation, %. */
  utilizationPercent?: number;
  /** NVML's total energy since the driver loaded, mJ (if the reader has it). */
  energyMj?: number;
}

/** Where GPU figures come from: nvidia-smi by default, anything NVML-like in tests or apps. */
export interface GpuReader {
  /** The GPUs present; [] when there are none. Rejects when the tool exists but fails. */
  devices(): Promise<GpuDevice[]>;
  /** A reading of every GPU. */
  read(): Promise<GpuReading[]>;
}

/** The query the sampler runs (documented in the README). */
export const NVIDIA_SMI_SAMPLE_QUERY = "index,power.draw,utilization.gpu";
export const NVIDIA_SMI_DEVICE_QUERY = "index,uuid,name";

/** Thrown when the nvidia-smi command does not exist: the machine has no NVIDIA driver. */
export class NoNvidiaSmi extends Error {}

/** Reads GPUs with `nvidia-smi` (the command, or a path to it). */
export function nvidiaSmiReader(
  command = "nvidia-smi",
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = 5000,
): GpuReader {
  const query = (fields: string) =>
    new Promise<string[][]>((resolve, reject) => {
      execFile(
        command,
        [`--query-gpu=${fields}`, "--format=csv,noheader,nounits"],
        { env, timeout: timeoutMs, encoding: "utf8", windowsHide: true },
        (error, stdout, stderr) => {
          if (error) {
            const code = (error as NodeJS.ErrnoException).code;
            if (code === "ENOENT") reject(new NoNvidiaSmi(`${command} not found`));
            else
              reject(
                new Error(
                  `${command} failed: ${(stderr || stdout || error.message).trim().split("\n")[0]}`,
                ),
              );
            return;
          }
          resolve(
            stdout
              .split("\n")
              .map((line) => line.trim())
              .filter(Boolean)
              .map((line) => line.split(",").map((f) => f.trim())),
          );
        },
      );
    });
  return {
    async devices() {
      return (await query(NVIDIA_SMI_DEVICE_QUERY)).map(([index = "", uuid = "", ...name]) => ({
        index: Number(index),
        uuid,
        name: name.join(","),
      }));
    },
    async read() {
      return (await query(NVIDIA_SMI_SAMPLE_QUERY)).map(([index = "", power = "", util = ""]) => ({
        index: Number(index),
        powerW: smiNumber(power),
        utilizationPercent: smiNumber(util),
      }));
    },
  };
}

/** A number of nvidia-smi's CSV, or undefined for "[N/A]", "[Not Supported]" and the like. */
function smiNumber(text: string): number | undefined {
  const value = Number(text);
  return text !== "" && Number.isFinite(value) ? value : undefined;
}

/**
 * codecarbon's selection of GPUs from gpu_ids: an index in range, or a UUID prefix (a leading
 * "MIG-" ignored). Unknown ids are returned apart to be reported.
 */
export function selectGpus(
  devices: readonly GpuDevice[],
  ids: readonly string[] | undefined,
): { tracked: number[]; unknown: string[] } {
  if (ids === undefined) return { tracked: devices.map((d) => d.index), unknown: [] };
  const tracked = new Set<number>();
  const unknown: string[] = [];
  for (const id of ids) {
    const byIndex = /^\d+$/.test(id) ? devices.find((d) => d.index === Number(id)) : undefined;
    const prefix = id.replace(/^MIG-/, "");
    const byUuid = byIndex
      ? undefined
      : devices.find(
          (d) => d.uuid.startsWith(prefix) || d.uuid.replace(/^GPU-/, "").startsWith(prefix),
        );
    const device = byIndex ?? byUuid;
    if (device) tracked.add(device.index);
    else unknown.push(id);
  }
  return { tracked: [...tracked].sort((a, b) => a - b), unknown };
}

/** codecarbon's gpu_model: "<count> x <name>" per distinct name, concatenated. */
export function gpuModel(devices: readonly GpuDevice[]): string {
  const counts = new Map<string, number>();
  for (const d of devices) counts.set(d.name, (counts.get(d.name) ?? 0) + 1);
  return [...counts].map(([name, count]) => `${count} x ${name}`).join("");
}

/** Energy and utilisation of the tracked GPUs, from 1 s samples and each measurement's read. */
export class GpuMeter {
  private powerSamples = new Map<number, number[]>();
  private lastEnergyMj = new Map<number, number>();
  /** Utilisation samples of the tracked GPUs since the run started. */
  readonly utilization: number[] = [];

  private reported = false;

  /** `onProblem` hears of a failing reader once (the meter keeps going). */
  constructor(
    private readonly reader: GpuReader,
    private readonly tracked: readonly number[],
    private readonly onProblem: (message: string) => void,
  ) {}

  async start(): Promise<void> {
    this.powerSamples.clear();
    this.lastEnergyMj.clear();
    this.utilization.length = 0;
    for (const reading of await this.trackedReadings())
      if (reading.energyMj !== undefined) this.lastEnergyMj.set(reading.index, reading.energyMj);
  }

  /** The 1 s sample: power (for the interval's mean) and utilisation. */
  async sample(): Promise<void> {
    for (const reading of await this.trackedReadings()) {
      this.addPower(reading);
      if (reading.utilizationPercent !== undefined)
        this.utilization.push(reading.utilizationPercent);
    }
  }

  /** The interval's energy (counter delta, else mean power × seconds) and power, summed. */
  async measure(seconds: number): Promise<Measured> {
    const readings = await this.trackedReadings();
    let kWh = 0;
    let watts = 0;
    for (const index of this.tracked) {
      const reading = readings.find((r) => r.index === index);
      const previous = this.lastEnergyMj.get(index);
      const counter = reading?.energyMj;
      if (counter !== undefined) this.lastEnergyMj.set(index, counter);
      if (counter !== undefined && previous !== undefined && counter >= previous) {
        const delta = millijoulesToKWh(counter - previous);
        kWh += delta;
        watts += kWhOverSecondsToWatts(delta, seconds);
        this.powerSamples.delete(index);
        continue;
      }
      if (reading) this.addPower(reading);
      const samples = this.powerSamples.get(index) ?? [];
      this.powerSamples.delete(index);
      const mean = samples.length > 0 ? samples.reduce((a, b) => a + b, 0) / samples.length : 0;
      watts += mean;
      kWh += wattsForSecondsToKWh(mean, seconds);
    }
    return { kWh, watts };
  }

  private addPower(reading: GpuReading): void {
    if (reading.powerW === undefined) return;
    const list = this.powerSamples.get(reading.index) ?? [];
    list.push(reading.powerW);
    this.powerSamples.set(reading.index, list);
  }

  /** The tracked GPUs' readings; [] while the reader fails (said the first time). */
  private async trackedReadings(): Promise<GpuReading[]> {
    try {
      return (await this.reader.read()).filter((r) => this.tracked.includes(r.index));
    } catch (error) {
      if (!this.reported)
        this.onProblem(
          `reading the GPUs failed (${(error as Error).message}); while it fails, their energy comes from the power samples already taken (0 W without any). Not reported again.`,
        );
      this.reported = true;
      return [];
    }
  }
}

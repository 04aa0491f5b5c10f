// CPU power from load, codecarbon 3.3's "cpu_load" mode (external/hardware.py, class CPU):
// machine: TDP × (0.1 + 0.9 × load³), load = busy/total CPU time since the previous sample;
// process: TDP × (this process' CPU seconds / wall seconds) / logical CPUs.
// Samples are taken every second and at each measurement; a measurement's power is their
// average weighted by the time each covers, and its energy that power over the interval.
import type { Clock, SystemProbes } from "../system.js";
import { wattsForSecondsToKWh } from "../units.js";

/** Machine-wide CPU time counters (any unit; only ratios are used). */
export interface CpuTimes {
  busy: number;
  total: number;
}

/** Percent of CPU time busy between two readings, clamped to 0..100 (psutil's cpu_percent). */
export function busyPercent(previous: CpuTimes, current: CpuTimes): number {
  const total = current.total - previous.total;
  if (total <= 0) return 0;
  return Math.min(Math.max(((current.busy - previous.busy) / total) * 100, 0), 100);
}

/** codecarbon's machine curve: 10 % of TDP at idle, rising with the cube of the load. */
export function machinePowerFromLoad(tdpWatts: number, loadPercent: number): number {
  return tdpWatts * (0.1 + 0.9 * (loadPercent / 100) ** 3);
}

/** codecarbon's process share: the process' CPU seconds per wall second, over all CPUs. */
export function processPowerFromLoad(
  tdpWatts: number,
  cpuSeconds: number,
  wallSeconds: number,
  logicalCpus: number,
): number {
  if (wallSeconds <= 0) return 0;
  return (tdpWatts * ((cpuSeconds / wallSeconds) * 100)) / logicalCpus / 100;
}

/** A measurement's result for one component. */
export interface Measured {
  watts: number;
  kWh: number;
}

/** Power samples of the CPU from its load, between measurements. */
export class CpuLoadSampler {
  private history: Array<{ watts: number; seconds: number }> = [];
  private lastSampleAt = 0;
  private lastTimes: CpuTimes | undefined;
  private lastProcessCpu = 0;

  constructor(
    private readonly tdpWatts: number,
    private readonly mode: "machine" | "process",
    private readonly system: SystemProbes,
    private readonly clock: Clock,
  ) {}

  /** Starts a fresh window: the first sample covers the time from now. */
  async start(): Promise<void> {
    this.history = [];
    this.lastSampleAt = this.clock.now();
    if (this.mode === "machine") this.lastTimes = await this.system.cpuTimes();
    else this.lastProcessCpu = this.system.processCpuSeconds();
  }

  /** One sample: the power since the previous one (the 1 s monitor calls this). */
  async sample(): Promise<void> {
    this.history.push(await this.takeSample());
  }

  /** The interval's average power and its energy over `seconds` (codecarbon: power × time). */
  async measure(seconds: number): Promise<Measured> {
    const samples = [...this.history, await this.takeSample()];
    this.history = [];
    const covered = samples.reduce((sum, s) => sum + s.seconds, 0);
    const watts =
      covered > 0
        ? samples.reduce((sum, s) => sum + s.watts * s.seconds, 0) / covered
        : samples.reduce((sum, s) => sum + s.watts, 0) / samples.length;
    return { watts, kWh: wattsForSecondsToKWh(watts, seconds) };
  }

  private async takeSample(): Promise<{ watts: number; seconds: number }> {
    let watts: number;
    const times = this.mode === "machine" ? await this.system.cpuTimes() : undefined;
    const now = this.clock.now();
    const seconds = (now - this.lastSampleAt) / 1000;
    if (this.mode === "machine") {
      const load = this.lastTimes && times ? busyPercent(this.lastTimes, times) : 0;
      this.lastTimes = times ?? this.lastTimes;
      watts = machinePowerFromLoad(this.tdpWatts, load);
    } else {
      const cpu = this.system.processCpuSeconds();
      watts = processPowerFromLoad(
        this.tdpWatts,
        cpu - this.lastProcessCpu,
        seconds,
        this.system.cpuCount(),
      );
      this.lastProcessCpu = cpu;
    }
    this.lastSampleAt = now;
    return { watts, seconds };
  }
}

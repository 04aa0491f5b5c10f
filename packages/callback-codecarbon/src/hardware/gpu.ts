// NVIDIA GPUs. codecarbon reads NVML through pynvml; Node has no NVML binding, so the default
// reader runs `nvidia-smi` (which is NVML's own command-line front end), asynchronously:
//   detection, once: nvidia-smi --query-gpu=index,uuid,name --format=csv,noheader,nounits
//   samples, one long-running child whose stdout is read line by line:
//     nvidia-smi --query-gpu=index,power.draw,utilization.gpu --format=csv,noheader,nounits -lms 1000
// (spawning a process every second from one holding gigabytes blocks the event loop, and a
// cold nvidia-smi can take longer than the second). The child is unref'd, so it never keeps
// the process alive, and killed when the run stops.
// nvidia-smi's documented query fields give power, not NVML's total-energy counter, so energy is
// the mean of the 1 s power samples over each interval: codecarbon's own method for a GPU
// without a usable energy counter (core/gpu_device.py, `_delta_from_power`). A reader that can
// give the counter (`energyMj`, e.g. an NVML binding) gets codecarbon's counter deltas instead.
import { execFile, spawn, type ChildProcess } from "node:child_process";
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

/** Where a stream of readings (`GpuReader.watch`) sends them. */
export interface GpuWatchListener {
  /** One GPU's reading, as it arrives. */
  reading(reading: GpuReading): void;
  /** The stream ended on its own or could not start; called at most once, never after stop(). */
  failed(error: Error): void;
}

/** A running stream of readings. */
export interface GpuWatch {
  /** Ends the stream (kills the nvidia-smi child). */
  stop(): void;
}

/** Where GPU figures come from: nvidia-smi by default, anything NVML-like in tests or apps. */
export interface GpuReader {
  /** The GPUs present; [] when there are none. Rejects when the tool exists but fails. */
  devices(): Promise<GpuDevice[]>;
  /** A reading of every GPU. */
  read(): Promise<GpuReading[]>;
  /**
   * Optional: readings of every GPU pushed every `intervalMs` by one long-running source. When
   * a reader has it, the meter listens instead of calling read() every second.
   */
  watch?(intervalMs: number, listener: GpuWatchListener): GpuWatch;
}

/** The query the sampler runs (documented in the README). */
export const NVIDIA_SMI_SAMPLE_QUERY = "index,power.draw,utilization.gpu";
export const NVIDIA_SMI_DEVICE_QUERY = "index,uuid,name";

/** Thrown when the nvidia-smi command does not exist: the machine has no NVIDIA driver. */
export class NoNvidiaSmi extends Error {}

/** The arguments of the long-running sampler: one CSV line per GPU every `intervalMs`. */
export function nvidiaSmiStreamArgs(intervalMs: number): string[] {
  return [
    `--query-gpu=${NVIDIA_SMI_SAMPLE_QUERY}`,
    "--format=csv,noheader,nounits",
    "-lms",
    String(Math.max(1, Math.round(intervalMs))),
  ];
}

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
    watch(intervalMs, listener) {
      return watchNvidiaSmi(command, env, intervalMs, listener);
    },
  };
}

/** One `nvidia-smi ... -lms <ms>` child, its stdout parsed line by line as it comes. */
function watchNvidiaSmi(
  command: string,
  env: NodeJS.ProcessEnv,
  intervalMs: number,
  listener: GpuWatchListener,
): GpuWatch {
  let stopped = false;
  let ended = false;
  const fail = (error: Error) => {
    if (stopped || ended) return;
    ended = true;
    listener.failed(error);
  };
  let child: ChildProcess;
  try {
    child = spawn(command, nvidiaSmiStreamArgs(intervalMs), {
      env,
      stdio: ["ignore", "pipe", "pipe"],
      windowsHide: true,
    });
  } catch (error) {
    queueMicrotask(() => fail(error as Error));
    return { stop: () => void (stopped = true) };
  }
  // Never keep the process alive for the sampler: neither the child nor its pipes.
  child.unref();
  for (const stream of [child.stdout, child.stderr])
    (stream as unknown as { unref?: () => void } | null)?.unref?.();
  let pending = "";
  let stderr = "";
  let other = ""; // a stdout line that is not a reading (nvidia-smi prints some errors there)
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => {
    pending += chunk;
    for (let end = pending.indexOf("\n"); end >= 0; end = pending.indexOf("\n")) {
      const line = pending.slice(0, end).trim();
      pending = pending.slice(end + 1);
      if (line === "" || stopped) continue;
      const [index = "", power = "", util = ""] = line.split(",").map((f) => f.trim());
      if (!/^\d+$/.test(index)) {
        other = line;
        continue;
      }
      listener.reading({
        index: Number(index),
        powerW: smiNumber(power),
        utilizationPercent: smiNumber(util),
      });
    }
  });
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
  child.on("error", (error: NodeJS.ErrnoException) =>
    fail(error.code === "ENOENT" ? new NoNvidiaSmi(`${command} not found`) : error),
  );
  child.on("close", (code, signal) => {
    const why = code !== null ? `exit code ${code}` : `signal ${signal}`;
    const said = (stderr.trim() || other).split("\n")[0];
    fail(new Error(`${command} -lms stopped (${why})${said ? `: ${said}` : ""}`));
  });
  return {
    stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) child.kill();
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

/** How often the nvidia-smi child prints a reading (the monitor's 1 s). */
export const GPU_SAMPLE_MS = 1000;
/** How long start() waits for the stream's first readings. */
const FIRST_READING_TIMEOUT_MS = 5000;

/**
 * Energy and utilisation of the tracked GPUs: from a reader's stream of readings (nvidia-smi
 * -lms) when it has one, else from a read() every second and at each measurement.
 */
export class GpuMeter {
  private powerSamples = new Map<number, number[]>();
  private lastEnergyMj = new Map<number, number>();
  /** The stream's latest power per GPU: an interval without a new line keeps that power. */
  private lastPower = new Map<number, number>();
  /** Utilisation samples of the tracked GPUs since the run started. */
  readonly utilization: number[] = [];

  private reported = false;
  private stream: GpuWatch | undefined;
  private streamFailed = false;
  private closed = false;
  private seen = new Set<number>();
  private firstReadings: (() => void) | undefined;

  /** `onProblem` hears of a failing reader once (the meter keeps going). */
  constructor(
    private readonly reader: GpuReader,
    private readonly tracked: readonly number[],
    private readonly onProblem: (message: string) => void,
    private readonly sampleMs = GPU_SAMPLE_MS,
  ) {}

  /** Starts the stream (waiting for its first readings), or takes the counters' baseline. */
  async start(): Promise<void> {
    this.powerSamples.clear();
    this.lastEnergyMj.clear();
    this.lastPower.clear();
    this.utilization.length = 0;
    if (this.reader.watch) return this.startStream(this.reader.watch.bind(this.reader));
    for (const reading of await this.trackedReadings())
      if (reading.energyMj !== undefined) this.lastEnergyMj.set(reading.index, reading.energyMj);
  }

  /** Stops the stream (the nvidia-smi child is killed). Samples taken still count. */
  close(): void {
    this.closed = true;
    this.firstReadings?.();
    this.stream?.stop();
    this.stream = undefined;
  }

  /** The 1 s sample: power (for the interval's mean) and utilisation. A stream needs none. */
  async sample(): Promise<void> {
    if (this.reader.watch) return;
    for (const reading of await this.trackedReadings()) this.take(reading);
  }

  /** The interval's energy (counter delta, else mean power × seconds) and power, summed. */
  async measure(seconds: number): Promise<Measured> {
    const streaming = this.reader.watch !== undefined;
    const readings = streaming ? [] : await this.trackedReadings();
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
      let samples = this.powerSamples.get(index) ?? [];
      this.powerSamples.delete(index);
      const last = this.lastPower.get(index);
      // No new line this interval (a measurement just after another): the power holds, as
      // long as the stream is alive. A dead stream's GPUs count 0 W from here on.
      if (samples.length === 0 && streaming && !this.streamFailed && last !== undefined)
        samples = [last];
      const mean = samples.length > 0 ? samples.reduce((a, b) => a + b, 0) / samples.length : 0;
      watts += mean;
      kWh += wattsForSecondsToKWh(mean, seconds);
    }
    return { kWh, watts };
  }

  private async startStream(watch: NonNullable<GpuReader["watch"]>): Promise<void> {
    this.closed = false;
    this.streamFailed = false;
    this.seen.clear();
    const first = new Promise<void>((resolve) => {
      // ref'd on purpose: start() is awaited, and the child and its pipes are unref'd
      const timer = setTimeout(() => this.firstReadings?.(), FIRST_READING_TIMEOUT_MS);
      this.firstReadings = () => {
        clearTimeout(timer);
        this.firstReadings = undefined;
        resolve();
      };
    });
    this.stream = watch(this.sampleMs, {
      reading: (reading) => {
        if (this.closed || !this.tracked.includes(reading.index)) return;
        this.take(reading);
        if (reading.powerW !== undefined) this.lastPower.set(reading.index, reading.powerW);
        this.seen.add(reading.index);
        if (this.tracked.every((index) => this.seen.has(index))) this.firstReadings?.();
      },
      failed: (error) => {
        if (this.closed) return;
        this.streamFailed = true;
        this.stream = undefined;
        this.firstReadings?.();
        this.problem(error);
      },
    });
    await first;
  }

  private take(reading: GpuReading): void {
    this.addPower(reading);
    if (reading.utilizationPercent !== undefined) this.utilization.push(reading.utilizationPercent);
  }

  private addPower(reading: GpuReading): void {
    if (reading.powerW === undefined) return;
    const list = this.powerSamples.get(reading.index) ?? [];
    list.push(reading.powerW);
    this.powerSamples.set(reading.index, list);
  }

  private problem(error: unknown): void {
    if (!this.reported)
      this.onProblem(
        `reading the GPUs failed (${(error as Error).message}); from then on their energy comes from the power samples already taken (0 W without any). Not reported again.`,
      );
    this.reported = true;
  }

  /** The tracked GPUs' readings; [] while the reader fails (said the first time). */
  private async trackedReadings(): Promise<GpuReading[]> {
    try {
      return (await this.reader.read()).filter((r) => this.tracked.includes(r.index));
    } catch (error) {
      this.problem(error);
      return [];
    }
  }
}

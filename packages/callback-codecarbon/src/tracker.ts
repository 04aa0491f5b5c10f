// The emissions tracker: codecarbon 3.3's OfflineEmissionsTracker in TypeScript. start()
// detects the hardware and begins a run; then, on unref'd timers, a 1 s monitor samples CPU
// load and utilisation (GPU power and utilisation stream in from one nvidia-smi child), and every `measurePowerSecs` a measurement turns the
// interval into energy per component (PUE applied). flush() writes the run's totals so far and
// stop() writes them one last time. All work is asynchronous and serialised; nothing ever runs
// inside a training step, and nothing here throws into the Trainer: problems are said once.
import { randomUUID } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import {
  resolveSettings,
  type CodeCarbonSettings,
  type ResolvedSettings,
} from "./config/config.js";
import { writeEmissionsRow } from "./csv/emissions-csv.js";
import { loadData } from "./data.js";
import { emissionsCells, type EmissionsData } from "./emissions-data.js";
import { busyPercent, CpuLoadSampler, type CpuTimes, type Measured } from "./hardware/cpu-load.js";
import { GpuMeter, nvidiaSmiReader, type GpuReader } from "./hardware/gpu.js";
import { ramPowerWatts } from "./hardware/ram.js";
import { DEFAULT_RAPL_ROOT, RaplMeter } from "./hardware/rapl.js";
import { detectHardware, type Hardware } from "./hardware/setup.js";
import { resolveLocation, type Location } from "./intensity.js";
import { defaultLogger, Reporter, type Logger } from "./reporter.js";
import { nodeSystem, systemClock, type Clock, type SystemProbes } from "./system.js";
import { BYTES_PER_GB, wattsForSecondsToKWh } from "./units.js";

/** The codecarbon release whose method and data files this package follows. */
export const CODECARBON_VERSION = "3.3.2";
export const PACKAGE_VERSION = "0.1.0";

export interface EmissionsTrackerOptions extends CodeCarbonSettings {
  /** Where `CODECARBON_*` variables are read from (default process.env). */
  env?: Record<string, string | undefined>;
  /** Where notices and problems go (default: trainkit's logger, the console unless `setLogger` replaced it). */
  logger?: Logger;
  /** Folder whose `.codecarbon.config` is read (default process.cwd()). */
  cwd?: string;
  /** Home folder whose `.codecarbon.config` is read (default os.homedir()). */
  homeDir?: string;
  /** The CSV folder when neither the option nor env/config sets one (the callback: args.outputDir). */
  defaultOutputDir?: string;
  /** Monotonic and wall clocks (tests). */
  clock?: Clock;
  /** Machine readings to replace (tests, unusual platforms). */
  system?: Partial<SystemProbes>;
  /** The powercap folder holding the RAPL domains (default /sys/class/powercap). */
  raplRoot?: string;
  /** The nvidia-smi command or path (default "nvidia-smi" on PATH). */
  nvidiaSmi?: string;
  /** A GPU reader to use instead of nvidia-smi (e.g. an NVML binding). */
  gpuReader?: GpuReader;
}

interface Component {
  kWh: number;
  powerSum: number;
  lastWatts: number;
}

interface Run {
  id: string;
  startedAt: number;
  lastMeasuredAt: number;
  measurements: number;
  cpu: Component;
  gpu: Component;
  ram: Component;
  energyKWh: number;
  waterLitres: number;
  cpuLoad?: CpuLoadSampler;
  rapl?: RaplMeter;
  gpuMeter?: GpuMeter;
  utilizationTimes?: CpuTimes;
  cpuUtilization: number[];
  ramUtilization: number[];
  ramUsedGb: number[];
  timers: NodeJS.Timeout[];
}

export class EmissionsTracker {
  readonly settings: ResolvedSettings;
  /** The totals written last (by flush() or stop()). */
  lastEmissions: EmissionsData | undefined;
  private readonly reporter: Reporter;
  private readonly clock: Clock;
  private readonly system: SystemProbes;
  private readonly raplRoot: string;
  private readonly gpuReader: GpuReader;
  private readonly defaultOutputDir: string | undefined;
  private setup: Promise<{ hardware: Hardware; location: Location }> | undefined;
  private run: Run | undefined;
  private starting: Promise<void> | undefined;
  private queue: Promise<void> = Promise.resolve();
  private readonly queued = new Set<string>();

  /** Reads and checks the configuration; throws a TypeError for a bad option. */
  constructor(options: EmissionsTrackerOptions = {}) {
    const env = options.env ?? process.env;
    this.settings = resolveSettings(options, { env, cwd: options.cwd, homeDir: options.homeDir });
    this.reporter = new Reporter(options.logger ?? defaultLogger, this.settings.logLevel);
    this.clock = options.clock ?? systemClock;
    this.system = { ...nodeSystem, ...options.system };
    this.raplRoot = options.raplRoot ?? DEFAULT_RAPL_ROOT;
    this.gpuReader = options.gpuReader ?? nvidiaSmiReader(options.nvidiaSmi, env);
    this.defaultOutputDir = options.defaultOutputDir;
  }

  /** Whether a run is being measured. */
  get running(): boolean {
    return this.run !== undefined;
  }

  /** The CSV this tracker writes to. */
  get csvPath(): string {
    const dir = this.settings.outputDir ?? this.defaultOutputDir ?? ".";
    return resolve(dir, this.settings.outputFile);
  }

  /**
   * Begins a run: detects the hardware (first time only), takes the baselines and starts the
   * background timers. A second start() while running does nothing (codecarbon: "Already
   * started tracking"). Never rejects: a failed setup is reported and nothing is measured.
   */
  async start(): Promise<void> {
    if (this.run || this.starting) {
      this.reporter.info("already started tracking.");
      return;
    }
    this.starting = this.begin().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async begin(): Promise<void> {
    try {
      const { hardware } = await this.ensureSetup();
      const run = await this.beginRun(hardware);
      this.run = run;
      const every = (seconds: number, kind: string, task: () => Promise<void>) => {
        const timer = setInterval(() => void this.schedule(kind, task), seconds * 1000);
        timer.unref(); // a tracker never keeps the process alive
        run.timers.push(timer);
      };
      every(1, "monitor", () => this.monitor(run));
      every(this.settings.measurePowerSecs, "measure", () => this.measure(run, hardware));
    } catch (error) {
      this.reporter.errorOnce("start", `could not start measuring: ${(error as Error).message}`);
    }
  }

  /** Writes the run's totals so far (codecarbon's flush) and keeps measuring. */
  async flush(): Promise<EmissionsData | undefined> {
    await this.starting;
    const run = this.run;
    if (!run) return undefined;
    return this.finishInterval(run, false);
  }

  /** Ends the run: a last measurement, then the row is written. Returns the totals. */
  async stop(): Promise<EmissionsData | undefined> {
    await this.starting;
    const run = this.run;
    if (!run) return undefined;
    this.run = undefined;
    for (const timer of run.timers) clearInterval(timer);
    run.gpuMeter?.close(); // the nvidia-smi child is killed; its samples still count
    return this.finishInterval(run, true);
  }

  private ensureSetup(): Promise<{ hardware: Hardware; location: Location }> {
    this.setup ??= this.detect().catch((error: unknown) => {
      this.setup = undefined;
      throw error;
    });
    return this.setup;
  }

  private async detect(): Promise<{ hardware: Hardware; location: Location }> {
    const data = await loadData();
    const hardware = await detectHardware({
      settings: this.settings,
      data,
      system: this.system,
      raplRoot: this.raplRoot,
      gpuReader: this.gpuReader,
      onProblem: (key, message) => this.reporter.warnOnce(key, message),
    });
    const location = resolveLocation(this.settings, data);
    for (const problem of [...this.settings.problems, ...location.warnings])
      this.reporter.warnOnce(problem, problem);
    if (this.settings.unsupported.length > 0)
      this.reporter.warnOnce(
        "unsupported",
        `not supported offline, ignored: ${this.settings.unsupported.join("; ")}.`,
      );
    const { cpu, ram, gpu } = hardware.described;
    const unlocated = !location.countryIsoCode && this.settings.forceCarbonIntensity === undefined;
    const intensity = unlocated
      ? `the world average, ${location.intensity} g CO2eq/kWh (no country configured)`
      : location.explanation;
    this.reporter.info(
      `estimating as codecarbon ${CODECARBON_VERSION} does, offline, ${this.settings.trackingMode} mode, every ${this.settings.measurePowerSecs} s. CPU: ${cpu}. RAM: ${ram}. GPU: ${gpu}. Carbon intensity: ${intensity}.`,
    );
    // Where the machine is matters most (grids differ 10-fold): a missing country is a warning.
    if (unlocated) this.reporter.warnOnce("country", `${location.explanation}.`);
    return { hardware, location };
  }

  private async beginRun(hardware: Hardware): Promise<Run> {
    const empty = (): Component => ({ kWh: 0, powerSum: 0, lastWatts: 0 });
    const problem = (key: string) => (message: string) => this.reporter.warnOnce(key, message);
    const run: Run = {
      id: randomUUID(),
      startedAt: 0,
      lastMeasuredAt: 0,
      measurements: 0,
      cpu: empty(),
      gpu: empty(),
      ram: empty(),
      energyKWh: 0,
      waterLitres: 0,
      cpuUtilization: [],
      ramUtilization: [],
      ramUsedGb: [],
      timers: [],
    };
    if (hardware.cpu.mode === "rapl") {
      run.rapl = new RaplMeter(hardware.cpu.domains, problem("rapl-read"));
      await run.rapl.start();
    } else {
      run.cpuLoad = new CpuLoadSampler(
        hardware.cpu.tdpWatts,
        this.settings.trackingMode,
        this.system,
        this.clock,
      );
      await run.cpuLoad.start();
    }
    if (hardware.trackedGpus.length > 0) {
      run.gpuMeter = new GpuMeter(this.gpuReader, hardware.trackedGpus, problem("gpu-read"));
      await run.gpuMeter.start();
    }
    try {
      run.utilizationTimes = await this.system.cpuTimes();
    } catch (error) {
      run.gpuMeter?.close(); // no run: no sampler left behind
      throw error;
    }
    run.startedAt = run.lastMeasuredAt = this.clock.now();
    return run;
  }

  /**
   * Runs background work one task at a time, at most one waiting task of each kind (a slow
   * tick is skipped, not stacked). Failures are reported once and swallowed.
   */
  private schedule(kind: string, task: () => Promise<void>): Promise<void> {
    if (this.queued.has(kind)) return this.queue;
    this.queued.add(kind);
    this.queue = this.queue
      .then(() => {
        this.queued.delete(kind);
        return task();
      })
      .catch((error: unknown) =>
        this.reporter.warnOnce(
          `task:${kind}`,
          `a ${kind} failed (${(error as Error).message}); measuring goes on. Not reported again.`,
        ),
      );
    return this.queue;
  }

  /** The 1 s sample: CPU power from load, GPU power, and utilisation of CPU, RAM and GPUs. */
  private async monitor(run: Run): Promise<void> {
    await run.cpuLoad?.sample();
    await run.gpuMeter?.sample();
    const times = await this.system.cpuTimes();
    if (times && run.utilizationTimes)
      run.cpuUtilization.push(busyPercent(run.utilizationTimes, times));
    run.utilizationTimes = times ?? run.utilizationTimes;
    const total = this.system.totalMemoryBytes();
    const used = total - this.system.availableMemoryBytes();
    if (total > 0) run.ramUtilization.push(Math.round((used / total) * 1000) / 10);
    run.ramUsedGb.push(used / BYTES_PER_GB);
  }

  /** One measurement: the energy of each component since the previous one. */
  private async measure(run: Run, hardware: Hardware): Promise<void> {
    const now = this.clock.now();
    const seconds = (now - run.lastMeasuredAt) / 1000;
    run.lastMeasuredAt = now;
    const ram = this.ramPower(hardware);
    const parts: Array<[Component, Measured]> = [
      [run.ram, { watts: ram, kWh: wattsForSecondsToKWh(ram, seconds) }],
      [run.cpu, run.rapl ? await run.rapl.measure(seconds) : await run.cpuLoad!.measure(seconds)],
      [run.gpu, run.gpuMeter ? await run.gpuMeter.measure(seconds) : { watts: 0, kWh: 0 }],
    ];
    const { pue, wue } = this.settings;
    for (const [component, measured] of parts) {
      const kWh = measured.kWh * pue;
      component.kWh += kWh;
      component.lastWatts = measured.watts * pue;
      component.powerSum += component.lastWatts;
      run.energyKWh += kWh;
      run.waterLitres += wue * kWh;
    }
    run.measurements += 1;
  }

  private ramPower(hardware: Hardware): number {
    if (this.settings.forceRamPower !== undefined) return this.settings.forceRamPower;
    const gib =
      this.settings.trackingMode === "machine"
        ? hardware.ramTotalGb
        : this.system.processRssBytes() / BYTES_PER_GB;
    return ramPowerWatts(gib, hardware.arm);
  }

  /** A last measurement if the previous one is over 50 ms old, then the totals, written. */
  private finishInterval(run: Run, final: boolean): Promise<EmissionsData | undefined> {
    let result: EmissionsData | undefined;
    return this.schedule(final ? "stop" : "flush", async () => {
      const { hardware, location } = await this.ensureSetup();
      if (this.clock.now() - run.lastMeasuredAt >= 50) await this.measure(run, hardware);
      const data = this.totals(run, hardware, location);
      result = this.lastEmissions = data;
      await this.write(run, data);
    }).then(() => result ?? this.lastEmissions); // a call merged into a queued one shares its result
  }

  private totals(run: Run, hardware: Hardware, location: Location): EmissionsData {
    const duration = (this.clock.now() - run.startedAt) / 1000;
    const emissions = (run.energyKWh * location.intensity) / 1000;
    const average = (c: Component) =>
      run.measurements > 0 ? c.powerSum / run.measurements : c.lastWatts;
    const mean = (values: number[]) =>
      values.length > 0 ? values.reduce((a, b) => a + b, 0) / values.length : 0;
    return {
      timestamp: localTimestamp(this.clock.date()),
      projectName: this.settings.projectName,
      runId: run.id,
      experimentId: this.settings.experimentId,
      duration,
      emissions,
      emissionsRate: duration > 0 ? emissions / duration : 0,
      cpuPower: average(run.cpu),
      gpuPower: average(run.gpu),
      ramPower: average(run.ram),
      cpuEnergy: run.cpu.kWh,
      gpuEnergy: run.gpu.kWh,
      ramEnergy: run.ram.kWh,
      energyConsumed: run.energyKWh,
      waterConsumed: run.waterLitres,
      countryName: location.countryName,
      countryIsoCode: location.countryIsoCode,
      region: location.region,
      cloudProvider: location.cloudProvider,
      cloudRegion: location.cloudRegion,
      os: this.system.osDescription(),
      pythonVersion: null,
      codecarbonVersion: `${CODECARBON_VERSION}+trainkit.${PACKAGE_VERSION}`,
      cpuCount: hardware.cpuCount,
      cpuModel: hardware.cpuModel,
      gpuCount: hardware.gpus.length,
      gpuModel: hardware.gpuModel,
      longitude: null,
      latitude: null,
      ramTotalSize: hardware.ramTotalGb,
      trackingMode: this.settings.trackingMode,
      cpuUtilizationPercent: mean(run.cpuUtilization),
      gpuUtilizationPercent: mean(run.gpuMeter?.utilization ?? []),
      ramUtilizationPercent: mean(run.ramUtilization),
      ramUsedGb: mean(run.ramUsedGb),
      onCloud: location.onCloud,
      pue: this.settings.pue,
      wue: this.settings.wue,
    };
  }

  /** Appends (or updates) the row; an I/O failure is said once, with the figures it lost. */
  private async write(run: Run, data: EmissionsData): Promise<void> {
    if (!this.settings.saveToFile) return;
    const path = this.csvPath;
    const cells = emissionsCells(data, {
      cpu: run.cpuUtilization.length,
      gpu: run.gpuMeter?.utilization.length ?? 0,
      ram: run.ramUtilization.length,
    });
    try {
      await mkdir(dirname(path), { recursive: true });
      const result = await writeEmissionsRow(path, cells, this.settings.onCsvWrite);
      if (result.backedUpTo)
        this.reporter.warnOnce(
          `backup:${result.backedUpTo}`,
          `${path} had another CSV format (an older codecarbon's); it was renamed to ${result.backedUpTo} and a new file started.`,
        );
    } catch (error) {
      this.reporter.errorOnce(
        `write:${path}`,
        `could not write ${path} (${(error as Error).message}); training goes on. This run so far: ${data.energyConsumed.toPrecision(4)} kWh, ${data.emissions.toPrecision(4)} kg CO2eq in ${data.duration.toFixed(1)} s. Further write failures to this file are not reported.`,
      );
    }
  }
}

/** Local time as `YYYY-MM-DDTHH:MM:SS` (Python's datetime.now().strftime(...)). */
export function localTimestamp(date: Date): string {
  const two = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())}T${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
}

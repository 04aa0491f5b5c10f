// The tracker's arithmetic on a fake machine and a hand-moved clock: CPU from TDP × load,
// process mode, RAM, PUE/WUE, forced values, flush() and on_csv_write, and its lifecycle.
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { EmissionsTracker, localTimestamp, type EmissionsTrackerOptions } from "../src/index.js";
import { PACKAGE_VERSION } from "../src/tracker.js";
import { packageDir } from "./helpers.js";
import { captureLogger, fakeSystem, manualClock, readWithPandas, scratchDir } from "./helpers.js";

const noGpu = { devices: async () => [], read: async () => [] };

function setup(options: EmissionsTrackerOptions = {}) {
  const clock = manualClock();
  const system = fakeSystem();
  const log = captureLogger();
  const outputDir = scratchDir("trainkit-cc-tracker-");
  const tracker = new EmissionsTracker({
    env: {},
    clock,
    system,
    gpuReader: noGpu,
    raplRoot: join(outputDir, "no-rapl"),
    countryIsoCode: "FRA",
    measurePowerSecs: 3600, // measurements only at flush()/stop(): the test drives the clock
    outputDir,
    logger: log.logger,
    ...options,
  });
  /** `seconds` pass at `load` % on every CPU. */
  const pass = (seconds: number, load: number) => {
    system.setLoad(load);
    system.tick(seconds);
    clock.advance(seconds);
  };
  return { tracker, clock, system, log, outputDir, pass };
}

const kWh = (watts: number, seconds: number) => (watts / 1000) * (seconds / 3600);

describe("CPU from TDP × load (machine)", () => {
  test("each measurement's power from its load; cpu_power their mean, energy their sum", async () => {
    const { tracker, pass } = setup();
    await tracker.start();
    pass(10, 50);
    const half = 150 * (0.1 + 0.9 * 0.5 ** 3); // Xeon Gold 6148: 150 W in cpu_power.csv
    expect((await tracker.flush())!.cpuEnergy).toBeCloseTo(kWh(half, 10), 15);
    pass(20, 100);
    const data = (await tracker.stop())!;
    expect(data.cpuPower).toBeCloseTo((half + 150) / 2, 9);
    expect(data.cpuEnergy).toBeCloseTo(kWh(half, 10) + kWh(150, 20), 15);
    expect(data.ramPower).toBe(10); // 16 GiB: 2 DIMMs × 5 W
    expect(data.ramEnergy).toBeCloseTo(kWh(10, 30), 15);
    expect(data.energyConsumed).toBeCloseTo(data.cpuEnergy + data.ramEnergy, 15);
    expect(data.duration).toBeCloseTo(30, 9);
    expect(data.emissions).toBeCloseTo((data.energyConsumed * 56.039) / 1000, 15);
    expect(data.emissionsRate).toBeCloseTo(data.emissions / 30, 15);
    expect(data).toMatchObject({
      cpuModel: "Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz",
      cpuCount: 8,
      ramTotalSize: 16,
      countryName: "France",
      trackingMode: "machine",
      codecarbonVersion: `3.3.2+trainkit.${PACKAGE_VERSION}`,
      pythonVersion: null,
      timestamp: localTimestamp(new Date(2026, 0, 2, 3, 4, 35)),
    });
  });

  test("forceCpuPower replaces the TDP (the load curve stays), forceRamPower the RAM model", async () => {
    const { tracker, pass } = setup({ forceCpuPower: 40, forceRamPower: 3 });
    await tracker.start();
    pass(10, 0);
    const data = (await tracker.stop())!;
    expect(data.cpuPower).toBeCloseTo(4, 12);
    expect(data.ramPower).toBe(3);
  });

  test("PUE multiplies power and energy; WUE gives litres per kWh", async () => {
    const { tracker, pass } = setup({ pue: 1.5, wue: 2 });
    await tracker.start();
    pass(60, 100);
    const data = (await tracker.stop())!;
    expect(data.cpuPower).toBeCloseTo(225, 9);
    expect(data.ramPower).toBeCloseTo(15, 12);
    expect(data.energyConsumed).toBeCloseTo(kWh(160, 60) * 1.5, 15);
    expect(data.waterConsumed).toBeCloseTo(data.energyConsumed * 2, 15);
  });
});

test("process mode: this process' CPU seconds over all CPUs, RAM from its RSS", async () => {
  let cpuSeconds = 0;
  const clock = manualClock();
  const outputDir = scratchDir("trainkit-cc-process-");
  const tracker = new EmissionsTracker({
    env: {},
    clock,
    system: fakeSystem({
      processCpuSeconds: () => cpuSeconds,
      processRssBytes: () => 40 * 1024 ** 3,
    }),
    gpuReader: noGpu,
    raplRoot: join(outputDir, "none"),
    trackingMode: "process",
    countryIsoCode: "FRA",
    measurePowerSecs: 3600,
    outputDir,
    logger: captureLogger().logger,
  });
  await tracker.start();
  cpuSeconds += 20; // 2 of the 8 CPUs busy for 10 s
  clock.advance(10);
  const data = (await tracker.stop())!;
  expect(data.cpuPower).toBeCloseTo(150 * (2 / 8), 9);
  expect(data.ramPower).toBe(20); // 40 GiB of RSS: 4 DIMMs
  expect(data.ramTotalSize).toBe(16); // the machine's, as codecarbon writes it
  expect(data.trackingMode).toBe("process");
});

describe("writing", () => {
  test("flush() writes the totals so far; append gives a row per call, cumulative", async () => {
    const { tracker, pass, outputDir } = setup();
    await tracker.start();
    pass(5, 10);
    await tracker.flush();
    pass(5, 10);
    await tracker.stop();
    const rows = readWithPandas(join(outputDir, "emissions.csv"))[0]!.rows;
    expect(rows).toHaveLength(2);
    expect(rows[0]!.run_id).toBe(rows[1]!.run_id);
    expect(rows[1]!.energy_consumed as number).toBeGreaterThan(rows[0]!.energy_consumed as number);
    expect(rows[1]!.duration).toBeCloseTo(10, 9);
  });

  test("on_csv_write update: one row per run, the last totals", async () => {
    const { tracker, pass, outputDir } = setup({ onCsvWrite: "update" });
    for (let run = 0; run < 2; run++) {
      await tracker.start();
      pass(5, 10);
      await tracker.flush();
      pass(5, 10);
      await tracker.stop();
    }
    const rows = readWithPandas(join(outputDir, "emissions.csv"))[0]!.rows;
    expect(rows).toHaveLength(2);
    expect(new Set(rows.map((r) => r.run_id)).size).toBe(2);
    expect(rows.map((r) => r.duration)).toEqual([10, 10]);
  });

  test("saveToFile false writes nothing but still returns the totals", async () => {
    const { tracker, pass, outputDir } = setup({ saveToFile: false });
    await tracker.start();
    pass(5, 10);
    expect((await tracker.stop())!.duration).toBeCloseTo(5, 9);
    expect(() => readFileSync(join(outputDir, "emissions.csv"))).toThrow(/ENOENT/);
  });
});

describe("lifecycle", () => {
  test("start twice does nothing more; stop without a run returns undefined", async () => {
    const { tracker, pass, log, outputDir } = setup();
    expect(await tracker.stop()).toBeUndefined();
    await tracker.start();
    await tracker.start();
    expect(log.infos.filter((m) => m.includes("already started"))).toHaveLength(1);
    pass(1, 0);
    const data = (await tracker.stop())!;
    expect(data.duration).toBeCloseTo(1, 9); // one run, from the first start()
    expect(data.cpuPower).toBeCloseTo(150 * 0.1, 9); // idle: 10 % of the Xeon 6148's TDP
    expect(tracker.running).toBe(false);
    expect(await tracker.stop()).toBeUndefined();
    const rows = readWithPandas(join(outputDir, "emissions.csv"))[0]!.rows;
    expect(rows.map((r) => r.run_id)).toEqual([data.runId]);
  });

  test("the 1 s monitor samples CPU and RAM utilisation in the background", async () => {
    const { tracker, pass } = setup();
    await tracker.start();
    await new Promise((r) => setTimeout(r, 2300));
    pass(1, 0);
    const data = (await tracker.stop())!;
    expect(data.ramUtilizationPercent).toBe(25); // (16 − 12) / 16 GiB
    expect(data.ramUsedGb).toBe(4);
  });

  test("the package version in the CSV is the package's", () => {
    const manifest = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8"));
    expect(PACKAGE_VERSION).toBe(manifest.version);
  });
});

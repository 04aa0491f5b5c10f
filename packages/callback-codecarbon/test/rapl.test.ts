// RAPL on a fake powercap tree in a temporary folder (this machine has none): domain choice,
// counter deltas with a wrap-around, and what happens when the counters cannot be read.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { EmissionsTracker } from "../src/index.js";
import { discoverRapl, RaplMeter } from "../src/hardware/rapl.js";
import { JOULES_TO_KWH } from "../src/units.js";
import { captureLogger, fakeSystem, manualClock, readWithPandas } from "./helpers.js";

const work = mkdtempSync(join(tmpdir(), "trainkit-cc-rapl-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const MAX = 262143328850;

/** A powercap tree shaped like /sys/devices/virtual/powercap on a 2-socket Intel server. */
function fakePowercap(name: string) {
  const root = join(work, name);
  const domain = (path: string, domainName: string, energy: number, max: number | null = MAX) => {
    const dir = join(root, path);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "name"), `${domainName}\n`);
    writeFileSync(join(dir, "energy_uj"), `${energy}\n`);
    if (max !== null) writeFileSync(join(dir, "max_energy_range_uj"), `${max}\n`);
    return dir;
  };
  const dirs = {
    package0: domain("intel-rapl/intel-rapl:0", "package-0", 1_000_000),
    core0: domain("intel-rapl/intel-rapl:0/intel-rapl:0:0", "core", 5),
    dramSub: domain("intel-rapl/intel-rapl:0/intel-rapl:0:2", "dram", 7),
    package1: domain("intel-rapl/intel-rapl:1", "package-1", MAX - 1_000_000),
    psys: domain("intel-rapl/intel-rapl:2", "psys", 50),
    dram: domain("intel-rapl/intel-rapl:3", "dram", 9),
    mmio0: domain("intel-rapl-mmio/intel-rapl-mmio:0", "package-0", 2_000_000),
  };
  const set = (dir: string, energy: number) => writeFileSync(join(dir, "energy_uj"), `${energy}\n`);
  return { root, dirs, set };
}

describe("domain discovery", () => {
  test("package domains by default, one per name with MMIO preferred; core, uncore, sub-DRAM and psys left out", async () => {
    const { root, dirs } = fakePowercap("discovery");
    const { domains } = await discoverRapl(root);
    expect(domains.map((d) => [d.name, d.dir])).toEqual([
      ["package-0", dirs.mmio0],
      ["package-1", dirs.package1],
    ]);
    expect(domains.every((d) => d.maxRangeUj === MAX)).toBe(true);
  });

  test("raplIncludeDram adds the top-level DRAM domain; raplPreferPsys uses psys alone", async () => {
    const { root, dirs } = fakePowercap("options");
    const withDram = await discoverRapl(root, { includeDram: true });
    expect(withDram.domains.map((d) => d.dir)).toEqual([dirs.mmio0, dirs.package1, dirs.dram]);
    const psys = await discoverRapl(root, { preferPsys: true });
    expect(psys.domains.map((d) => d.dir)).toEqual([dirs.psys]);
  });

  test("no tree, or counters that cannot be read, give the reason", async () => {
    expect((await discoverRapl(join(work, "missing"))).reason).toMatch(/no RAPL domains/);
    const root = join(work, "unreadable");
    mkdirSync(join(root, "intel-rapl/intel-rapl:0/energy_uj"), { recursive: true }); // a folder, not a file
    writeFileSync(join(root, "intel-rapl/intel-rapl:0/name"), "package-0\n");
    mkdirSync(join(root, "intel-rapl/intel-rapl:1"), { recursive: true });
    writeFileSync(join(root, "intel-rapl/intel-rapl:1/name"), "package-1\n");
    writeFileSync(join(root, "intel-rapl/intel-rapl:1/energy_uj"), "garbage\n");
    const found = await discoverRapl(root);
    expect(found.domains).toEqual([]);
    // energy_uj as a folder is not a domain at all; the unparsable one is "not readable"
    expect(found.reason).toMatch(/RAPL not readable: .*intel-rapl:1\/energy_uj \(not a number/);
  });
});

describe("RaplMeter", () => {
  test("sums the packages' deltas and corrects a counter that wrapped at max_energy_range_uj", async () => {
    const { root, dirs, set } = fakePowercap("wrap");
    const problems: string[] = [];
    const meter = new RaplMeter((await discoverRapl(root)).domains, (m) => problems.push(m));
    await meter.start();
    set(dirs.mmio0, 2_000_000 + 30_000_000); // +30 J
    set(dirs.package1, 500_000); // wrapped: +1 J before the wrap, +0.5 J after
    const first = await meter.measure(2);
    const joules = 30 + 1.5;
    expect(first.kWh).toBeCloseTo(joules * JOULES_TO_KWH, 15);
    expect(first.watts).toBeCloseTo((joules * JOULES_TO_KWH * 1000) / (2 / 3600), 9);
    set(dirs.mmio0, 2_000_000 + 30_000_000 + 10_000_000);
    const second = await meter.measure(1);
    expect(second.kWh).toBeCloseTo(10 * JOULES_TO_KWH, 15);
    expect(problems).toEqual([]);
  });

  test("a counter that goes backwards with no max range is skipped, said once", async () => {
    const root = join(work, "nomax");
    const dir = join(root, "intel-rapl/intel-rapl:0");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "name"), "package-0");
    writeFileSync(join(dir, "energy_uj"), "5000000");
    const problems: string[] = [];
    const meter = new RaplMeter((await discoverRapl(root)).domains, (m) => problems.push(m));
    await meter.start();
    writeFileSync(join(dir, "energy_uj"), "1000");
    expect((await meter.measure(1)).kWh).toBe(0);
    writeFileSync(join(dir, "energy_uj"), "500");
    expect((await meter.measure(1)).kWh).toBe(0);
    writeFileSync(join(dir, "energy_uj"), "1000500");
    expect((await meter.measure(1)).kWh).toBeCloseTo(1 * JOULES_TO_KWH, 15);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/went backwards and cannot be corrected/);
  });
});

describe("the tracker on RAPL", () => {
  test("writes the RAPL energy (PUE applied) and the detected model", async () => {
    const { root, dirs, set } = fakePowercap("tracker");
    const clock = manualClock();
    const log = captureLogger();
    const outputDir = join(work, "tracker-out");
    const tracker = new EmissionsTracker({
      raplRoot: root,
      clock,
      system: fakeSystem(),
      gpuReader: { devices: async () => [], read: async () => [] },
      countryIsoCode: "FRA",
      pue: 1.5,
      measurePowerSecs: 3600,
      outputDir,
      env: {},
      logger: log.logger,
    });
    await tracker.start();
    clock.advance(10);
    set(dirs.mmio0, 2_000_000 + 360_000_000); // 360 J on package-0 over 10 s: 36 W
    set(dirs.package1, MAX - 1_000_000 + 360_000_000 - MAX); // 360 J across the wrap
    const data = (await tracker.stop())!;
    const cpuKWh = 720 * JOULES_TO_KWH * 1.5;
    expect(data.cpuEnergy).toBeCloseTo(cpuKWh, 15);
    // 72 W × 1.5, through codecarbon's rounded joule-to-kWh factor
    expect(data.cpuPower).toBeCloseTo(((cpuKWh * 1000) / 10) * 3600, 9);
    expect(data.cpuPower).toBeCloseTo(108, 3);
    expect(data.ramPower).toBeCloseTo(10 * 1.5, 9); // 16 GiB: 2 DIMMs
    expect(data.energyConsumed).toBeCloseTo(cpuKWh + (15 / 1000) * (10 / 3600), 15);
    expect(data.emissions).toBeCloseTo((data.energyConsumed * 56.039) / 1000, 15);
    expect(data.cpuModel).toBe("Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz");
    expect(log.infos.join()).toMatch(/CPU: RAPL energy counters \(package-0, package-1\)/);
    const [frame] = readWithPandas(join(outputDir, "emissions.csv"));
    expect(frame!.rows[0]!.cpu_energy).toBeCloseTo(cpuKWh, 15);
  });

  test("unreadable counters: one warning, TDP × load instead, the row still written", async () => {
    const root = join(work, "tracker-unreadable");
    mkdirSync(join(root, "intel-rapl/intel-rapl:0"), { recursive: true });
    writeFileSync(join(root, "intel-rapl/intel-rapl:0/name"), "package-0");
    writeFileSync(join(root, "intel-rapl/intel-rapl:0/energy_uj"), "not readable");
    const log = captureLogger();
    const outputDir = join(work, "unreadable-out");
    const clock = manualClock();
    const tracker = new EmissionsTracker({
      raplRoot: root,
      clock,
      system: fakeSystem(),
      gpuReader: { devices: async () => [], read: async () => [] },
      countryIsoCode: "FRA",
      measurePowerSecs: 3600,
      outputDir,
      env: {},
      logger: log.logger,
    });
    for (let run = 0; run < 2; run++) {
      await tracker.start();
      clock.advance(5);
      expect((await tracker.stop())!.cpuPower).toBeCloseTo(150 * 0.1, 9); // idle: 10 % of TDP
    }
    const rapl = log.warnings.filter((w) => w.includes("RAPL"));
    expect(rapl).toHaveLength(1);
    expect(rapl[0]).toMatch(/RAPL not readable: .*energy_uj \(not a number.*TDP and load instead/);
    expect(readWithPandas(join(outputDir, "emissions.csv"))[0]!.rows).toHaveLength(2);
  });

  test("a counter that vanishes mid-run: said once, the other domain's energy keeps counting", async () => {
    const { root, dirs, set } = fakePowercap("vanish");
    const log = captureLogger();
    const clock = manualClock();
    const outputDir = join(work, "vanish-out");
    const tracker = new EmissionsTracker({
      raplRoot: root,
      clock,
      system: fakeSystem(),
      gpuReader: { devices: async () => [], read: async () => [] },
      countryIsoCode: "FRA",
      measurePowerSecs: 3600,
      outputDir,
      env: {},
      logger: log.logger,
    });
    await tracker.start();
    rmSync(join(dirs.package1, "energy_uj"));
    // package-0 (read through MMIO) goes on: 2 J, then 3 J, 4 J, 5 J more
    let uj = 2_000_000;
    const energies: number[] = [];
    for (let i = 0; i < 3; i++) {
      uj += (2 + i) * 1_000_000;
      set(dirs.mmio0, uj);
      clock.advance(1);
      energies.push((await tracker.flush())!.cpuEnergy);
    }
    uj += 5_000_000;
    set(dirs.mmio0, uj);
    clock.advance(1);
    const last = (await tracker.stop())!;
    energies.push(last.cpuEnergy);
    const joules = [2, 5, 9, 14];
    for (const [i, energy] of energies.entries())
      expect(energy).toBeCloseTo(joules[i]! * JOULES_TO_KWH, 15);
    expect(last.cpuPower).toBeCloseTo((2 + 3 + 4 + 5) / 4, 4); // mean W (codecarbon's rounded J→kWh)
    const rows = readWithPandas(join(outputDir, "emissions.csv"))[0]!.rows;
    expect(rows.map((r) => r.cpu_energy)).toEqual(energies);
    const vanished = log.warnings.filter((w) => w.includes("intel-rapl:1"));
    expect(vanished).toHaveLength(1);
    expect(vanished[0]).toMatch(/cannot read RAPL counter .*ENOENT/);
  });
});

// The estimation rules, each checked against codecarbon 3.3.2's own code run on the same inputs
// (test/python/codecarbon_rules.py), plus the spec's worked examples.
import { beforeAll, describe, expect, test } from "vitest";
import { loadData, type CodeCarbonData } from "../src/data.js";
import {
  busyPercent,
  machinePowerFromLoad,
  processPowerFromLoad,
} from "../src/hardware/cpu-load.js";
import { estimateDimmCount, ramPowerWatts } from "../src/hardware/ram.js";
import { cpuTdp, matchCpu } from "../src/hardware/tdp.js";
import { resolveLocation } from "../src/intensity.js";
import { codecarbonRules } from "./helpers.js";

let data: CodeCarbonData;
beforeAll(async () => {
  data = await loadData();
});

describe("RAM: codecarbon 3's DIMM model", () => {
  test("the spec's examples (x86)", () => {
    expect(ramPowerWatts(16, false)).toBe(10);
    expect(ramPowerWatts(64, false)).toBe(20);
    expect(ramPowerWatts(128, false)).toBe(38);
    expect(estimateDimmCount(256)).toBe(8);
    expect(ramPowerWatts(256, false)).toBe(38);
    expect(ramPowerWatts(1, false)).toBe(10); // the x86 minimum
    expect(ramPowerWatts(1, true)).toBe(3); // the ARM minimum
  });

  test("equals codecarbon's RAM._calculate_ram_power from 0.5 GiB to 4 TiB", () => {
    const sizes = [0.5, 1, 2, 2.01, 3, 4, 6, 8, 12, 16, 16.5, 23.54, 32, 33, 48, 64, 65, 100];
    sizes.push(128, 129, 160, 192, 256, 300, 384, 512, 768, 1024, 1500, 2048, 3072, 4096);
    const { ram } = codecarbonRules<{ ram: Array<{ x86: number; arm: number }> }>({ ram: sizes });
    sizes.forEach((gb, i) => {
      expect(ramPowerWatts(gb, false), `${gb} GiB x86`).toBeCloseTo(ram[i]!.x86, 12);
      expect(ramPowerWatts(gb, true), `${gb} GiB ARM`).toBeCloseTo(ram[i]!.arm, 12);
    });
  });
});

describe("CPU: TDP lookup in cpu_power.csv", () => {
  test("matches the same row as codecarbon's TDP._get_matching_cpu", () => {
    const models = [
      "Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz",
      "Intel(R) Core(TM) i7-8700K CPU @ 3.70GHz",
      "Intel(R) Core(TM) i9-9900K CPU @ 3.60GHz",
      "AMD EPYC 7742 64-Core Processor",
      "AMD Ryzen 9 5950X 16-Core Processor",
      "AMD Ryzen Threadripper 3970X 32-Core Processor",
      "AMD EPYC",
      "Apple M1",
      "Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz",
      "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",
      "12th Gen Intel(R) Core(TM) i7-1260P",
      "Intel(R) Core(TM) i5-10210U CPU @ 1.60GHz",
      "1075T",
      "intel ep80579 integrated, 600 mhz",
      "Neoverse-N1",
      "",
    ];
    const { tdp } = codecarbonRules<{ tdp: Array<string | null> }>({ tdp: models });
    models.forEach((model, i) => {
      expect(matchCpu(model, data.cpuPower)?.name ?? null, model).toBe(tdp[i]);
    });
  });

  test("known model: the table's TDP × sockets; unknown: 4 W × threads; unreadable: 85 W", () => {
    const xeon = cpuTdp("Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz", 40, 2, data.cpuPower);
    expect(xeon.watts).toBe(150 * 2);
    expect(xeon.model).toBe("Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz");
    expect(cpuTdp("AMD EPYC", 2, 1, data.cpuPower)).toMatchObject({ model: "AMD EPYC", watts: 8 });
    expect(cpuTdp(undefined, 16, 1, data.cpuPower)).toMatchObject({ model: "Unknown", watts: 85 });
  });

  test("load curves: machine TDP × (0.1 + 0.9 load³), process share of all CPUs", () => {
    expect(machinePowerFromLoad(85, 0)).toBeCloseTo(8.5, 12);
    expect(machinePowerFromLoad(85, 50)).toBeCloseTo(85 * (0.1 + 0.9 * 0.125), 12);
    expect(machinePowerFromLoad(85, 100)).toBeCloseTo(85, 12);
    // 2 CPU-seconds over 1 s on 8 CPUs: a quarter of the TDP
    expect(processPowerFromLoad(100, 2, 1, 8)).toBeCloseTo(25, 12);
    expect(busyPercent({ busy: 10, total: 100 }, { busy: 60, total: 200 })).toBe(50);
    expect(busyPercent({ busy: 10, total: 100 }, { busy: 10, total: 100 })).toBe(0);
  });
});

interface Place {
  country: string | undefined;
  region?: string;
  cloud_provider?: string;
  cloud_region?: string;
}

describe("carbon intensity, offline", () => {
  const places: Place[] = [
    { country: "FRA" },
    { country: "USA" },
    { country: "USA", region: "california" },
    { country: "USA", region: "texas" },
    { country: "USA", region: "atlantis" },
    { country: "CAN" },
    { country: "CAN", region: "quebec" },
    { country: "CAN", region: "ontario" },
    { country: "CHN", region: "Beijing" },
    { country: "CHN", region: "Inner Mongolia Autonomous Region" },
    { country: "CHN", region: "tibet" },
    { country: "SWE", region: "SE3" },
    { country: "NOR", region: "no4" },
    { country: "FIN", region: "FI" },
    { country: "NOR" },
    { country: "DEU" },
    { country: "IND" },
    { country: "XYZ" },
    { country: undefined },
    { country: "FRA", cloud_provider: "gcp", cloud_region: "europe-west1" },
    { country: "FRA", cloud_provider: "gcp", cloud_region: "nowhere-1" },
  ];
  const settings = (p: Place) => ({
    countryIsoCode: p.country,
    region: p.region?.toLowerCase(),
    cloudProvider: p.cloud_provider,
    cloudRegion: p.cloud_region,
    forceCarbonIntensity: undefined,
    sources: {},
  });

  test("equals codecarbon's Emissions for each place (g CO2eq/kWh)", () => {
    const { intensity } = codecarbonRules<{ intensity: number[] }>({
      intensity: places.map((p) => ({ ...p, region: p.region?.toLowerCase() })),
    });
    places.forEach((place, i) => {
      expect(resolveLocation(settings(place), data).intensity, JSON.stringify(place)).toBeCloseTo(
        intensity[i]!,
        9,
      );
    });
  });

  test("the spec's values: France 56.039, Quebec ≈ 3.937, unknown country and no country 475", () => {
    const at = (p: Place) => resolveLocation(settings(p), data);
    expect(at({ country: "FRA" })).toMatchObject({
      intensity: 56.039,
      countryName: "France",
      countryIsoCode: "FRA",
      region: null,
      onCloud: "N",
    });
    expect(at({ country: "CAN", region: "quebec" }).intensity).toBeCloseTo(3.937, 3);
    const unknown = at({ country: "XYZ" });
    expect(unknown.intensity).toBe(475);
    expect(unknown.warnings.join()).toContain("no data for country XYZ");
    const nowhere = at({ country: undefined });
    expect(nowhere.intensity).toBe(475);
    expect(nowhere.explanation).toContain("no country configured");
    expect(nowhere.countryIsoCode).toBeNull();
  });

  test("a cloud region takes its country and state from cloud/impact.csv", () => {
    const gcp = resolveLocation(
      settings({ country: undefined, cloud_provider: "gcp", cloud_region: "us-east1" }),
      data,
    );
    expect(gcp).toMatchObject({
      onCloud: "Y",
      cloudProvider: "gcp",
      cloudRegion: "us-east1",
      countryIsoCode: "USA",
    });
    expect(gcp.intensity).toBe(data.cloudImpact.find((r) => r.region === "us-east1")!.impact);
  });

  test("a forced intensity wins, the location columns stay", () => {
    const forced = resolveLocation(
      { ...settings({ country: "FRA" }), forceCarbonIntensity: 100 },
      data,
    );
    expect(forced).toMatchObject({ intensity: 100, countryIsoCode: "FRA", countryName: "France" });
  });
});

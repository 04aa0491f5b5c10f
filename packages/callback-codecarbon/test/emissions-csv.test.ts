// emissions.csv by codecarbon's rules, checked with codecarbon's own FileOutput and pandas:
// the header, appending across runs, backing up a file of another format, updating a run's row.
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { writeEmissionsRow } from "../src/csv/emissions-csv.js";
import { EMISSIONS_COLUMNS, emissionsCells, type EmissionsData } from "../src/emissions-data.js";
import { codecarbonWritesRows, readWithPandas } from "./helpers.js";

const work = mkdtempSync(join(tmpdir(), "trainkit-cc-csv-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let n = 0;
const folder = () => {
  const dir = join(work, `case-${++n}`);
  mkdirSync(dir);
  return dir;
};

const sample = (runId: string, emissions = 1.2899704019877186e-6): EmissionsData => ({
  timestamp: "2026-11-28T21:22:35",
  projectName: "codecarbon",
  runId,
  experimentId: "5b0fa12a-3dd7-45bb-9766-cc326314d9f1",
  duration: 3.0110503639989474,
  emissions,
  emissionsRate: emissions / 3.0110503639989474,
  cpuPower: 6.148983086428042,
  gpuPower: 0,
  ramPower: 20,
  cpuEnergy: 6.562895780652096e-6,
  gpuEnergy: 0,
  ramEnergy: 1.645625877220785e-5,
  energyConsumed: 2.3019154552859945e-5,
  waterConsumed: 0,
  countryName: "France",
  countryIsoCode: "FRA",
  region: null,
  cloudProvider: "",
  cloudRegion: "",
  os: "Linux-6.18.44-fc-v657-x86_64-with-glibc2.36",
  pythonVersion: null,
  codecarbonVersion: "3.3.2+trainkit.0.1.0",
  cpuCount: 2,
  cpuModel: 'AMD EPYC, rev. "B"',
  gpuCount: 0,
  gpuModel: "",
  longitude: null,
  latitude: null,
  ramTotalSize: 23.540584564208984,
  trackingMode: "machine",
  cpuUtilizationPercent: 50,
  gpuUtilizationPercent: 0,
  ramUtilizationPercent: 5.949999999999999,
  ramUsedGb: 1.410104751586914,
  onCloud: "N",
  pue: 1,
  wue: 0,
});
const cellsOf = (data: EmissionsData) => emissionsCells(data, { cpu: 3, gpu: 0, ram: 3 });

/** The same values as codecarbon's EmissionsData keyword arguments (Python types). */
const asCodecarbonRow = (data: EmissionsData): Record<string, unknown> => ({
  timestamp: data.timestamp,
  project_name: data.projectName,
  run_id: data.runId,
  experiment_id: data.experimentId,
  duration: data.duration,
  emissions: data.emissions,
  emissions_rate: data.emissionsRate,
  cpu_power: data.cpuPower,
  gpu_power: data.gpuPower,
  ram_power: data.ramPower,
  cpu_energy: data.cpuEnergy,
  gpu_energy: data.gpuEnergy,
  ram_energy: data.ramEnergy,
  energy_consumed: data.energyConsumed,
  water_consumed: data.waterConsumed,
  country_name: data.countryName,
  country_iso_code: data.countryIsoCode,
  region: data.region,
  cloud_provider: data.cloudProvider,
  cloud_region: data.cloudRegion,
  os: data.os,
  python_version: "3.11.7",
  codecarbon_version: "3.3.2",
  cpu_count: data.cpuCount,
  cpu_model: data.cpuModel,
  gpu_count: data.gpuCount,
  gpu_model: data.gpuModel,
  longitude: data.longitude,
  latitude: data.latitude,
  ram_total_size: data.ramTotalSize,
  tracking_mode: data.trackingMode,
});

describe("the file", () => {
  test("the header is codecarbon's own, column for column", () => {
    const dir = folder();
    codecarbonWritesRows(dir, "theirs.csv", [asCodecarbonRow(sample("a"))]);
    const theirs = readFileSync(join(dir, "theirs.csv"), "utf8").split("\n")[0];
    expect(EMISSIONS_COLUMNS.join(",")).toBe(theirs);
  });

  test("a new file: header and row; later runs append; pandas reads every value back", async () => {
    const dir = folder();
    const path = join(dir, "emissions.csv");
    await writeEmissionsRow(path, cellsOf(sample("run-1")), "append");
    await writeEmissionsRow(path, cellsOf(sample("run-2", 2e-6)), "append");
    const text = readFileSync(path, "utf8");
    expect(text.split("\n")).toHaveLength(4); // header, 2 rows, final newline
    const [frame] = readWithPandas(path);
    expect(frame!.columns).toEqual([...EMISSIONS_COLUMNS]);
    expect(frame!.rows.map((r) => r.run_id)).toEqual(["run-1", "run-2"]);
    expect(frame!.rows[0]).toMatchObject({
      emissions: 1.2899704019877186e-6,
      cpu_model: 'AMD EPYC, rev. "B"',
      cpu_count: 2,
      region: null,
      python_version: null,
      ram_power: 20,
      pue: 1,
    });
    expect(frame!.rows[1]!.emissions).toBe(2e-6);
  });

  test("codecarbon appends to trainkit's file, and trainkit to codecarbon's: same format, no backup", async () => {
    const dir = folder();
    const path = join(dir, "emissions.csv");
    await writeEmissionsRow(path, cellsOf(sample("trainkit-1")), "append");
    codecarbonWritesRows(dir, "emissions.csv", [asCodecarbonRow(sample("codecarbon-1"))]);
    await writeEmissionsRow(path, cellsOf(sample("trainkit-2")), "append");
    expect(readdirSync(dir)).toEqual(["emissions.csv"]);
    const rows = readWithPandas(path)[0]!.rows;
    expect(rows.map((r) => r.run_id)).toEqual(["trainkit-1", "codecarbon-1", "trainkit-2"]);
    expect(rows[1]).toMatchObject({ python_version: "3.11.7", cpu_utilization_percent: 0 });
  });

  test("a file with the same columns in another order gets the row in its order", async () => {
    const dir = folder();
    const path = join(dir, "emissions.csv");
    const reordered = [...EMISSIONS_COLUMNS].reverse();
    writeFileSync(path, `${reordered.join(",")}\n`);
    await writeEmissionsRow(path, cellsOf(sample("x")), "append");
    const [frame] = readWithPandas(path);
    expect(frame!.columns).toEqual(reordered);
    expect(frame!.rows[0]).toMatchObject({ run_id: "x", country_iso_code: "FRA", ram_power: 20 });
  });

  test("a file without a final newline still gets its row on a line of its own", async () => {
    const dir = folder();
    const path = join(dir, "emissions.csv");
    await writeEmissionsRow(path, cellsOf(sample("one")), "append");
    writeFileSync(path, readFileSync(path, "utf8").trimEnd());
    await writeEmissionsRow(path, cellsOf(sample("two")), "append");
    expect(readWithPandas(path)[0]!.rows.map((r) => r.run_id)).toEqual(["one", "two"]);
  });
});

describe("a file of another format is backed up, as codecarbon names backups", () => {
  // codecarbon 2.x's header: no experiment_id, water_consumed, utilisation columns or wue
  const OLD_HEADER =
    "timestamp,project_name,run_id,duration,emissions,emissions_rate,cpu_power,gpu_power,ram_power,cpu_energy,gpu_energy,ram_energy,energy_consumed,country_name,country_iso_code,region,cloud_provider,cloud_region,os,python_version,codecarbon_version,cpu_count,cpu_model,gpu_count,gpu_model,longitude,latitude,ram_total_size,tracking_mode,on_cloud,pue";
  const OLD_FILE = `${OLD_HEADER}\n2023-01-01T00:00:00,old,...\n`;

  test("emissions.csv.bak, then emissions.csv_0.bak, emissions.csv_1.bak — like codecarbon", async () => {
    const ours = folder();
    const theirs = folder();
    for (let i = 0; i < 3; i++) {
      writeFileSync(join(ours, "emissions.csv"), OLD_FILE);
      const result = await writeEmissionsRow(
        join(ours, "emissions.csv"),
        cellsOf(sample(`r${i}`)),
        "append",
      );
      expect(result.backedUpTo).toBe(
        join(ours, ["emissions.csv.bak", "emissions.csv_0.bak", "emissions.csv_1.bak"][i]!),
      );
    }
    const rows = [0, 1, 2].map((i) => asCodecarbonRow(sample(`r${i}`)));
    codecarbonWritesRows(theirs, "emissions.csv", rows, { oldFile: OLD_FILE });
    expect(readdirSync(ours).sort()).toEqual(readdirSync(theirs).sort());
    expect(readFileSync(join(ours, "emissions.csv_0.bak"), "utf8")).toContain(OLD_HEADER);
    expect(readWithPandas(join(ours, "emissions.csv"))[0]!.rows.map((r) => r.run_id)).toEqual([
      "r2",
    ]);
  });

  test("an empty file counts as new (no backup)", async () => {
    const dir = folder();
    writeFileSync(join(dir, "emissions.csv"), "");
    const result = await writeEmissionsRow(
      join(dir, "emissions.csv"),
      cellsOf(sample("e")),
      "append",
    );
    expect(result.backedUpTo).toBeUndefined();
    expect(existsSync(join(dir, "emissions.csv.bak"))).toBe(false);
  });
});

describe("nodes sharing one CSV", () => {
  test("writers that all find no file: one creates it (O_EXCL), the others append, no row lost", async () => {
    const dir = folder();
    const path = join(dir, "emissions.csv");
    const ids = Array.from({ length: 8 }, (_, i) => `node-${i}`);
    await Promise.all(ids.map((id) => writeEmissionsRow(path, cellsOf(sample(id)), "append")));
    const text = readFileSync(path, "utf8");
    expect(text.split("\n").filter((l) => l.startsWith("timestamp,"))).toHaveLength(1);
    const [frame] = readWithPandas(path);
    expect(frame!.columns).toEqual([...EMISSIONS_COLUMNS]);
    expect(frame!.rows.map((r) => r.run_id).sort()).toEqual(ids);
  });

  test("writers that all find an old format: backed up once, the new file keeps every row", async () => {
    const dir = folder();
    const path = join(dir, "emissions.csv");
    const old = "timestamp,project_name,run_id\n2023-01-01T00:00:00,old,x\n";
    writeFileSync(path, old);
    const ids = Array.from({ length: 6 }, (_, i) => `node-${i}`);
    const results = await Promise.all(
      ids.map((id) => writeEmissionsRow(path, cellsOf(sample(id)), "append")),
    );
    expect(readdirSync(dir).sort()).toEqual(["emissions.csv", "emissions.csv.bak"]);
    expect(readFileSync(join(dir, "emissions.csv.bak"), "utf8")).toBe(old);
    expect(results.filter((r) => r.backedUpTo !== undefined)).toHaveLength(1);
    expect(
      readWithPandas(path)[0]!
        .rows.map((r) => r.run_id)
        .sort(),
    ).toEqual(ids);
  });
});

describe("on_csv_write = update", () => {
  test("replaces the row of the same run_id, keeps the others, as codecarbon's update", async () => {
    const ours = folder();
    const theirs = folder();
    const steps: Array<[string, number]> = [
      ["other", 1e-6],
      ["mine", 2e-6],
      ["mine", 3e-6],
      ["mine", 4e-6],
    ];
    for (const [runId, emissions] of steps)
      await writeEmissionsRow(
        join(ours, "emissions.csv"),
        cellsOf(sample(runId, emissions)),
        "update",
      );
    const rows = steps.map(([runId, emissions]) => asCodecarbonRow(sample(runId, emissions)));
    codecarbonWritesRows(theirs, "emissions.csv", rows, { mode: "update" });
    const [a, b] = readWithPandas(join(ours, "emissions.csv"), join(theirs, "emissions.csv"));
    const summary = (rows: Array<Record<string, unknown>>) =>
      rows.map((r) => [r.run_id, r.emissions]);
    expect(summary(a!.rows)).toEqual([
      ["other", 1e-6],
      ["mine", 4e-6],
    ]);
    expect(summary(a!.rows)).toEqual(summary(b!.rows));
  });
});

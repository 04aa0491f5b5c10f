// CodeCarbonCallback in real Trainer runs: the plugin through `plugins` and CODECARBON_* env,
// one row per train(), a crashed run's row, and failures (unwritable folder, full disk,
// nvidia-smi missing or failing, RAPL unreadable) that leave training running and are said once.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import {
  Trainer,
  TrainerCallback,
  TrainingArguments,
  setLogger,
  type TrainingArgumentsOptions,
} from "@trainkit/core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "vitest";
import codecarbon, { CodeCarbonCallback, EMISSIONS_COLUMNS } from "../src/index.js";
import { captureLogger, fakeNvidiaSmi, packageDir, readWithPandas } from "./helpers.js";

const work = mkdtempSync(join(tmpdir(), "trainkit-cc-callback-"));
const savedEnv = { ...process.env };
const mounts: string[] = [];
let log: ReturnType<typeof captureLogger>;

beforeAll(async () => {
  await tf.setBackend("cpu");
});
beforeEach(() => {
  for (const key of Object.keys(process.env))
    if (key.toLowerCase().startsWith("codecarbon_")) delete process.env[key];
  log = captureLogger();
  setLogger(log.logger);
});
afterEach(() => {
  setLogger();
  process.env = { ...savedEnv };
});
afterAll(() => {
  for (const dir of mounts.reverse()) spawnSync("umount", [dir]);
  rmSync(work, { recursive: true, force: true });
});

const rows = Array.from({ length: 32 }, (_, i) => ({ x: [i / 32, 1 - i / 32], y: i / 16 }));

/** Spends `ms` of CPU in every step, like a model bigger than this one would. */
class BusyStep extends TrainerCallback {
  constructor(private readonly ms: number) {
    super();
  }
  override onStepEnd(): void {
    const end = performance.now() + this.ms;
    while (performance.now() < end);
  }
}

function makeTrainer(
  args: TrainingArgumentsOptions,
  extra: Partial<ConstructorParameters<typeof Trainer>[0]> = {},
) {
  const model = tf.sequential({
    layers: [tf.layers.dense({ inputShape: [2], units: 1, kernelInitializer: "ones" })],
  });
  return new Trainer({
    model,
    loss: "meanSquaredError",
    trainDataset: rows,
    plugins: [codecarbon],
    args: new TrainingArguments({
      perDeviceTrainBatchSize: 4,
      saveStrategy: "no",
      disableTqdm: true,
      reportTo: ["codecarbon"],
      backend: "cpu",
      maxSteps: 10,
      loggingSteps: 5,
      ...args,
    }),
    ...extra,
  });
}

const codecarbonWarnings = () => log.warnings.filter((w) => w.startsWith("CodeCarbon:"));

describe("the plugin in a Trainer", () => {
  test("one row per train() in <outputDir>/emissions.csv, configured by CODECARBON_* env", async () => {
    process.env.CODECARBON_COUNTRY_ISO_CODE = "FRA";
    process.env.CODECARBON_MEASURE_POWER_SECS = "1";
    process.env.CODECARBON_PROJECT_NAME = "digits";
    const outputDir = join(work, "plugin");
    const trainer = makeTrainer({ outputDir }, { callbacks: [new BusyStep(150)] });
    const started = performance.now();
    await trainer.train();
    const firstSeconds = (performance.now() - started) / 1000;
    await trainer.train();
    const path = join(outputDir, "emissions.csv");
    const [frame] = readWithPandas(path);
    expect(frame!.columns).toEqual([...EMISSIONS_COLUMNS]);
    expect(frame!.rows).toHaveLength(2);
    const [first, second] = frame!.rows as Array<Record<string, number | string | null>>;
    expect(first!.run_id).not.toBe(second!.run_id);
    expect(first).toMatchObject({
      project_name: "digits",
      country_name: "France",
      country_iso_code: "FRA",
      tracking_mode: "machine",
      on_cloud: "N",
      ram_power: 20, // this machine: 23.5 GiB, 4 DIMMs
      gpu_count: 0,
      pue: 1,
    });
    expect(first!.duration as number).toBeGreaterThan(1.2);
    expect(first!.duration as number).toBeLessThan(firstSeconds + 0.2);
    expect(first!.emissions as number).toBeCloseTo(
      ((first!.energy_consumed as number) * 56.039) / 1000,
      15,
    );
    // The 1 s monitor ran during training (utilisation means are floats, not codecarbon's int 0)
    const line = readFileSync(path, "utf8").split("\n")[1]!.split(",");
    expect(line[EMISSIONS_COLUMNS.indexOf("cpu_utilization_percent")]).toMatch(/\./);
    expect(codecarbonWarnings()).toEqual([]);
    expect(log.infos.filter((m) => m.startsWith("CodeCarbon: estimating"))).toHaveLength(1);
  });

  test("no country: the world average, said once, never a silent guess", async () => {
    const outputDir = join(work, "no-country");
    const trainer = makeTrainer({ outputDir });
    await trainer.train();
    await trainer.train();
    const rowsRead = readWithPandas(join(outputDir, "emissions.csv"))[0]!.rows;
    expect(rowsRead).toHaveLength(2);
    for (const row of rowsRead) {
      expect(row.country_iso_code).toBeNull();
      expect(row.emissions as number).toBeCloseTo(
        ((row.energy_consumed as number) * 475) / 1000,
        15,
      );
    }
    expect(codecarbonWarnings()).toHaveLength(1);
    expect(codecarbonWarnings()[0]).toMatch(
      /no country configured.*world average 475 g CO2eq\/kWh.*CODECARBON_COUNTRY_ISO_CODE/,
    );
  });

  test("the callback hooks no step event: training steps never wait on it", () => {
    const callback = new CodeCarbonCallback({ env: {} });
    for (const event of [
      "onStepBegin",
      "onStepEnd",
      "onSubstepEnd",
      "onLog",
      "onOptimizerStep",
    ] as const)
      expect(callback[event], event).toBe(TrainerCallback.prototype[event]);
  });

  test("a bad CODECARBON_* value stops train() before any work, with a clear error", async () => {
    process.env.CODECARBON_TRACKING_MODE = "gpu";
    const trainer = makeTrainer({ outputDir: join(work, "bad-env") });
    await expect(trainer.train()).rejects.toThrow(
      /tracking_mode from CODECARBON_TRACKING_MODE must be one of "machine", "process"/,
    );
    expect(trainer.state.globalStep).toBe(0);
  });

  test("a crashed run still gets its row (trainkit's onException)", async () => {
    class Crash extends TrainerCallback {
      override onStepEnd(_a: unknown, state: { globalStep: number }): void {
        if (state.globalStep === 3) throw new Error("boom");
      }
    }
    const outputDir = join(work, "crash");
    const trainer = makeTrainer(
      { outputDir, reportTo: "none" },
      {
        plugins: [],
        callbacks: [
          new CodeCarbonCallback({ countryIsoCode: "FRA", env: {}, logger: log.logger }),
          new Crash(),
        ],
      },
    );
    await expect(trainer.train()).rejects.toThrow("boom");
    expect(readWithPandas(join(outputDir, "emissions.csv"))[0]!.rows).toHaveLength(1);
  });

  test("the tracker never keeps the process alive", () => {
    const script = join(work, "alive.mts");
    writeFileSync(
      script,
      `import { EmissionsTracker } from ${JSON.stringify(join(packageDir, "src/index.ts"))};
const tracker = new EmissionsTracker({ env: {}, countryIsoCode: "FRA", measurePowerSecs: 1, logger: { info() {}, warn() {} } });
await tracker.start();
console.log(tracker.running ? "running" : "not running");
`,
    );
    const started = performance.now();
    const out = execFileSync(process.execPath, ["--import", "tsx", script], {
      cwd: packageDir,
      encoding: "utf8",
      timeout: 20_000,
    });
    expect(out.trim()).toBe("running");
    expect(performance.now() - started).toBeLessThan(10_000);
  });
});

/**
 * The read-only and full-disk cases need mount rights: as root (CI) a failed mount fails the
 * test with the reason; without root they are skipped, by name, never replaced by another case.
 */
const canMount = process.getuid?.() === 0;

function mount(args: string[], target: string, what: string): void {
  const result = spawnSync("mount", args, { encoding: "utf8" });
  if (result.status !== 0)
    throw new Error(
      `cannot set up ${what}: \`mount ${args.join(" ")}\` failed (${result.error?.message ?? (result.stderr || `exit ${result.status}`).trim()}). This case needs mount rights.`,
    );
  mounts.push(target);
}

/** A read-only bind mount. */
function readOnlyFolder(name: string): string {
  const source = join(work, `${name}-src`);
  const target = join(work, name);
  mkdirSync(source);
  mkdirSync(target);
  mount(["--bind", "-o", "ro", source, target], target, "a read-only folder");
  return target;
}

/** A 64 KiB tmpfs, filled up. */
function fullDisk(name: string): string {
  const target = join(work, name);
  mkdirSync(target);
  mount(["-t", "tmpfs", "-o", "size=64k", "tmpfs", target], target, "a full disk");
  spawnSync("dd", ["if=/dev/zero", `of=${join(target, "fill")}`, "bs=1k", "count=128"]);
  return target;
}

/** A path under a regular file: every write fails with ENOTDIR (works without root). */
function underAFile(name: string): string {
  const file = join(work, `${name}-file`);
  writeFileSync(file, "not a folder");
  return join(file, "out");
}

describe("failures leave training running and are reported once", () => {
  async function trainTwice(outputDir: string, options = {}) {
    const trainer = makeTrainer(
      { outputDir: join(work, "trainer-out", String(Math.random())), reportTo: "none" },
      {
        plugins: [],
        callbacks: [
          new CodeCarbonCallback({
            countryIsoCode: "FRA",
            env: process.env,
            logger: log.logger,
            outputDir,
            ...options,
          }),
        ],
      },
    );
    const first = await trainer.train();
    const second = await trainer.train();
    expect(first.globalStep).toBe(10);
    expect(second.globalStep).toBe(10);
  }

  test.skipIf(!canMount)(
    "a read-only folder (a read-only bind mount: EROFS; needs mount rights)",
    async () => {
      const outputDir = readOnlyFolder("read-only");
      await trainTwice(outputDir);
      const warnings = codecarbonWarnings();
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(
        new RegExp(
          `could not write ${outputDir}/emissions.csv \\(.*EROFS.*\\); training goes on\\. This run so far: .* kWh, .* kg CO2eq`,
        ),
      );
    },
  );

  test("a path whose parent is a regular file (ENOTDIR)", async () => {
    const outputDir = underAFile("enotdir");
    await trainTwice(outputDir);
    const warnings = codecarbonWarnings();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      new RegExp(
        `could not write ${outputDir}/emissions.csv \\(.*ENOTDIR.*\\); training goes on\\. This run so far: .* kWh, .* kg CO2eq`,
      ),
    );
  });

  test.skipIf(!canMount)(
    "a full disk (a 64 KiB tmpfs, filled: ENOSPC; needs mount rights)",
    async () => {
      const outputDir = fullDisk("full");
      await trainTwice(outputDir);
      expect(codecarbonWarnings()).toHaveLength(1);
      expect(codecarbonWarnings()[0]).toMatch(/ENOSPC/);
    },
  );

  test("nvidia-smi missing: training runs, said once as a notice (no GPU is not a problem)", async () => {
    const outputDir = join(work, "no-smi");
    await trainTwice(outputDir, { nvidiaSmi: join(work, "nowhere", "nvidia-smi") });
    expect(codecarbonWarnings()).toEqual([]);
    expect(
      log.infos.filter((m) => m.includes("GPU: none (") && m.includes("not found")),
    ).toHaveLength(1);
    expect(readWithPandas(join(outputDir, "emissions.csv"))[0]!.rows).toHaveLength(2);
  });

  test("nvidia-smi failing: training runs, one warning", async () => {
    const smi = fakeNvidiaSmi("fail", "fail");
    const outputDir = join(work, "failing-smi");
    await trainTwice(outputDir, { nvidiaSmi: smi.path });
    expect(codecarbonWarnings()).toHaveLength(1);
    expect(codecarbonWarnings()[0]).toMatch(/GPU detection failed/);
    expect(readWithPandas(join(outputDir, "emissions.csv"))[0]!.rows).toHaveLength(2);
  });

  test("RAPL not readable: training runs, one warning, TDP × load instead", async () => {
    const root = join(work, "rapl-unreadable");
    mkdirSync(join(root, "intel-rapl/intel-rapl:0"), { recursive: true });
    writeFileSync(join(root, "intel-rapl/intel-rapl:0/name"), "package-0");
    writeFileSync(join(root, "intel-rapl/intel-rapl:0/energy_uj"), "");
    const outputDir = join(work, "rapl-out");
    await trainTwice(outputDir, { raplRoot: root });
    expect(codecarbonWarnings()).toHaveLength(1);
    expect(codecarbonWarnings()[0]).toMatch(/RAPL not readable.*TDP and load instead/);
    expect(readWithPandas(join(outputDir, "emissions.csv"))[0]!.rows).toHaveLength(2);
  });
});

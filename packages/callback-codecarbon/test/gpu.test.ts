// NVIDIA GPUs through a fake `nvidia-smi` script on PATH (this machine has no GPU): detection,
// selection by gpu_ids, energy from power samples streamed by one `-lms` child, and a tool that
// is missing, failing, or crashing mid-run.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { EmissionsTracker, nvidiaSmiReader } from "../src/index.js";
import { gpuModel, selectGpus, type GpuReading } from "../src/hardware/gpu.js";
import {
  captureLogger,
  fakeNvidiaSmi,
  fakeSystem,
  manualClock,
  packageDir,
  processAlive,
  readWithPandas,
  waitFor,
} from "./helpers.js";

const work = mkdtempSync(join(tmpdir(), "trainkit-cc-gpu-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const DEVICES = [
  "0, GPU-aaaa1111-0000-0000-0000-000000000000, NVIDIA A100-SXM4-40GB",
  "1, GPU-bbbb2222-0000-0000-0000-000000000000, NVIDIA A100-SXM4-40GB",
  "2, GPU-cccc3333-0000-0000-0000-000000000000, Tesla V100-SXM2-16GB",
];
const SAMPLES = ["0, 250.50, 90", "1, 60.00, 0", "2, [N/A], 40"];
const pathWith = (dir: string) => ({ PATH: `${dir}:${process.env.PATH ?? ""}` });

function tracker(env: Record<string, string | undefined>, outputDir: string, extra = {}) {
  const log = captureLogger();
  const clock = manualClock();
  const t = new EmissionsTracker({
    env,
    clock,
    system: fakeSystem(),
    raplRoot: join(work, "no-rapl"),
    countryIsoCode: "FRA",
    measurePowerSecs: 3600,
    outputDir,
    logger: log.logger,
    ...extra,
  });
  return { tracker: t, log, clock };
}

test("the reader parses nvidia-smi's CSV, [N/A] as missing", async () => {
  const smi = fakeNvidiaSmi(DEVICES, SAMPLES);
  const reader = nvidiaSmiReader(smi.path);
  expect(await reader.devices()).toEqual([
    { index: 0, uuid: "GPU-aaaa1111-0000-0000-0000-000000000000", name: "NVIDIA A100-SXM4-40GB" },
    { index: 1, uuid: "GPU-bbbb2222-0000-0000-0000-000000000000", name: "NVIDIA A100-SXM4-40GB" },
    { index: 2, uuid: "GPU-cccc3333-0000-0000-0000-000000000000", name: "Tesla V100-SXM2-16GB" },
  ]);
  expect(await reader.read()).toEqual([
    { index: 0, powerW: 250.5, utilizationPercent: 90 },
    { index: 1, powerW: 60, utilizationPercent: 0 },
    { index: 2, powerW: undefined, utilizationPercent: 40 },
  ]);
  expect(smi.calls()).toBe(
    "--query-gpu=index,uuid,name --format=csv,noheader,nounits\n" +
      "--query-gpu=index,power.draw,utilization.gpu --format=csv,noheader,nounits\n",
  );
});

test("watch: one `-lms` child whose lines arrive as readings; stop() kills it", async () => {
  const smi = fakeNvidiaSmi(DEVICES, SAMPLES);
  const readings: GpuReading[] = [];
  const failures: Error[] = [];
  const watch = nvidiaSmiReader(smi.path).watch!(200, {
    reading: (r) => readings.push(r),
    failed: (e) => failures.push(e),
  });
  expect(await waitFor(() => readings.length >= 9)).toBe(true); // three rounds of three GPUs
  expect(readings.slice(0, 3)).toEqual([
    { index: 0, powerW: 250.5, utilizationPercent: 90 },
    { index: 1, powerW: 60, utilizationPercent: 0 },
    { index: 2, powerW: undefined, utilizationPercent: 40 },
  ]);
  expect(smi.calls()).toBe(
    "--query-gpu=index,power.draw,utilization.gpu --format=csv,noheader,nounits -lms 200\n",
  );
  const [pid] = smi.streamPids();
  expect(processAlive(pid!)).toBe(true);
  watch.stop();
  expect(await waitFor(() => !processAlive(pid!))).toBe(true);
  await new Promise((r) => setTimeout(r, 400));
  expect(failures).toEqual([]); // a stop is not a failure
  expect(smi.streamPids()).toHaveLength(1);
});

test("watch: a child that dies is reported once, with what it said", async () => {
  const smi = fakeNvidiaSmi(DEVICES, SAMPLES);
  const failures: Error[] = [];
  let count = 0;
  nvidiaSmiReader(smi.path).watch!(100, {
    reading: () => count++,
    failed: (e) => failures.push(e),
  });
  expect(await waitFor(() => count >= 3)).toBe(true);
  smi.crash();
  expect(await waitFor(() => failures.length > 0)).toBe(true);
  await new Promise((r) => setTimeout(r, 300));
  expect(failures).toHaveLength(1);
  expect(failures[0]!.message).toMatch(
    /nvidia-smi -lms stopped \(exit code 15\): Unable to determine the device handle/,
  );
});

test("gpu_ids select by index or UUID prefix; gpu_model is codecarbon's concatenation", async () => {
  const devices = await nvidiaSmiReader(fakeNvidiaSmi(DEVICES, SAMPLES).path).devices();
  expect(selectGpus(devices, undefined)).toEqual({ tracked: [0, 1, 2], unknown: [] });
  expect(selectGpus(devices, ["2", "GPU-aaaa", "MIG-GPU-bbbb2222", "7"])).toEqual({
    tracked: [0, 1, 2],
    unknown: ["7"],
  });
  expect(selectGpus(devices, ["cccc3333"])).toEqual({ tracked: [2], unknown: [] });
  expect(gpuModel(devices)).toBe("2 x NVIDIA A100-SXM4-40GB1 x Tesla V100-SXM2-16GB");
});

describe("the tracker with GPUs", () => {
  test("found on PATH: energy is the mean power of the tracked GPUs over the interval", async () => {
    const smi = fakeNvidiaSmi(DEVICES, SAMPLES);
    const outputDir = join(work, "on-path");
    const {
      tracker: t,
      clock,
      log,
    } = tracker({ ...pathWith(smi.dir), CUDA_VISIBLE_DEVICES: "0,1" }, outputDir);
    await t.start();
    clock.advance(60);
    const data = (await t.stop())!;
    const watts = 250.5 + 60; // GPUs 0 and 1 (CUDA_VISIBLE_DEVICES)
    expect(data.gpuPower).toBeCloseTo(watts, 9);
    expect(data.gpuEnergy).toBeCloseTo((watts / 1000) * (60 / 3600), 15);
    expect(data.gpuCount).toBe(3);
    expect(data.gpuModel).toBe("2 x NVIDIA A100-SXM4-40GB1 x Tesla V100-SXM2-16GB");
    expect(log.infos.join()).toMatch(
      /GPU: 2 x NVIDIA A100-SXM4-40GB1 x Tesla V100-SXM2-16GB, tracking indexes 0, 1/,
    );
    const [frame] = readWithPandas(join(outputDir, "emissions.csv"));
    expect(frame!.rows[0]).toMatchObject({ gpu_count: 3, gpu_power: watts });
  });

  test("utilisation is the mean of the 1 s samples of the tracked GPUs", async () => {
    const smi = fakeNvidiaSmi(DEVICES, SAMPLES);
    const { tracker: t, clock } = tracker({ ...pathWith(smi.dir) }, join(work, "util"), {
      gpuIds: [0, 2],
    });
    await t.start();
    await new Promise((r) => setTimeout(r, 2300)); // two monitor ticks
    clock.advance(2.3);
    const data = (await t.stop())!;
    expect(data.gpuUtilizationPercent).toBeCloseTo((90 + 40) / 2, 9);
    expect(data.gpuPower).toBeCloseTo(250.5, 9); // GPU 2 has no power reading
  });

  test("no nvidia-smi: no GPU, nothing to warn about, said once in the notice", async () => {
    const outputDir = join(work, "missing");
    const { tracker: t, log } = tracker({ PATH: join(work, "empty-bin") }, outputDir);
    await t.start();
    const data = (await t.stop())!;
    expect(data).toMatchObject({ gpuCount: 0, gpuModel: "", gpuEnergy: 0, gpuPower: 0 });
    expect(log.warnings).toEqual([]);
    expect(log.infos.filter((m) => m.includes("nvidia-smi not found"))).toHaveLength(1);
    const [frame] = readWithPandas(join(outputDir, "emissions.csv"));
    expect(frame!.rows[0]).toMatchObject({
      gpu_count: 0,
      gpu_model: null,
      gpu_utilization_percent: 0,
    });
  });

  test("nvidia-smi failing at detection: one warning, GPU counted as 0", async () => {
    const smi = fakeNvidiaSmi("fail", "fail");
    const { tracker: t, log, clock } = tracker(pathWith(smi.dir), join(work, "failing"));
    for (let run = 0; run < 2; run++) {
      await t.start();
      clock.advance(3);
      expect((await t.stop())!.gpuCount).toBe(0);
    }
    expect(log.warnings).toHaveLength(1);
    expect(log.warnings[0]).toMatch(
      /GPU detection failed \(nvidia-smi failed: .*couldn't communicate with the NVIDIA driver/,
    );
  });

  test("samples stream from one nvidia-smi child, not a spawn per second; stop() kills it", async () => {
    const smi = fakeNvidiaSmi(DEVICES, SAMPLES);
    const {
      tracker: t,
      clock,
      log,
    } = tracker(pathWith(smi.dir), join(work, "stream"), {
      gpuIds: "0",
    });
    await t.start();
    await new Promise((r) => setTimeout(r, 3300)); // four lines of GPU 0: at 0, 1, 2, 3 s
    clock.advance(3.3);
    const [pid] = smi.streamPids();
    expect(processAlive(pid!)).toBe(true);
    const data = (await t.stop())!;
    expect(await waitFor(() => !processAlive(pid!))).toBe(true);
    expect(data.gpuUtilizationPercent).toBe(90);
    expect(data.gpuPower).toBeCloseTo(250.5, 9);
    const calls = smi.calls().trim().split("\n");
    expect(calls).toEqual([
      "--query-gpu=index,uuid,name --format=csv,noheader,nounits",
      "--query-gpu=index,power.draw,utilization.gpu --format=csv,noheader,nounits -lms 1000",
    ]);
    expect(smi.streamPids()).toHaveLength(1);
    expect(log.warnings).toEqual([]);
    // a second run starts a new child, and stops it too
    await t.start();
    const second = smi.streamPids()[1]!;
    expect(processAlive(second)).toBe(true);
    await t.stop();
    expect(await waitFor(() => !processAlive(second))).toBe(true);
    expect(log.warnings).toEqual([]);
  });

  test("the nvidia-smi child never keeps the process alive, and dies with it", async () => {
    const smi = fakeNvidiaSmi(DEVICES, SAMPLES);
    const script = join(work, "alive-gpu.mts");
    writeFileSync(
      script,
      `import { EmissionsTracker } from ${JSON.stringify(join(packageDir, "src/index.ts"))};
const tracker = new EmissionsTracker({ env: {}, nvidiaSmi: ${JSON.stringify(smi.path)}, countryIsoCode: "FRA", measurePowerSecs: 1, logger: { info() {}, warn() {} } });
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
    const [pid] = smi.streamPids();
    // its stdout is closed with the process: the next line ends it (SIGPIPE)
    expect(await waitFor(() => !processAlive(pid!), 4000)).toBe(true);
  });

  test("nvidia-smi crashing mid-run: one warning, the samples taken still count, then no GPU", async () => {
    const smi = fakeNvidiaSmi(DEVICES, SAMPLES);
    const outputDir = join(work, "mid-run");
    const { tracker: t, log, clock } = tracker(pathWith(smi.dir), outputDir, { gpuIds: "0" });
    await t.start();
    await new Promise((r) => setTimeout(r, 1200)); // two lines at 250.5 W (0 s and 1 s)
    smi.crash();
    await new Promise((r) => setTimeout(r, 1300)); // the child dies at its next line
    const [pid] = smi.streamPids();
    expect(processAlive(pid!)).toBe(false);
    clock.advance(10);
    const flushed = (await t.flush())!;
    expect(flushed.gpuPower).toBeCloseTo(250.5, 9);
    expect(flushed.gpuEnergy).toBeCloseTo((250.5 / 1000) * (10 / 3600), 15);
    clock.advance(10); // the GPU goes on without readings: 0 W, nothing more said
    const data = (await t.stop())!;
    expect(data.gpuEnergy).toBeCloseTo(flushed.gpuEnergy, 15);
    const gpuWarnings = log.warnings.filter((w) => w.includes("GPU"));
    expect(gpuWarnings).toHaveLength(1);
    expect(gpuWarnings[0]).toMatch(
      /reading the GPUs failed \(.*nvidia-smi -lms stopped \(exit code 15\): Unable to determine the device handle/,
    );
    expect(smi.streamPids()).toHaveLength(1); // not restarted
    expect(readWithPandas(join(outputDir, "emissions.csv"))[0]!.rows).toHaveLength(2);
  });
});

// A folder DVCLive cannot write (a read-only mount, a path under a file, a full disk): training
// completes and the problem is reported once. The read-only and full-disk cases mount file
// systems, which needs root: they are skipped (the skip names the case) when not run as root,
// and fail with a clear message when root cannot mount (CI runs as root: no case goes missing
// silently). The path under a regular file (ENOTDIR) needs no rights.
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { Trainer, TrainingArguments, setLogger } from "@trainkit/core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { DVCLiveCallback } from "../src/index.js";
import { captureLogger, tempDir, toolEnv } from "./helpers.js";

const work = tempDir("faults");
const mounts: string[] = [];

beforeAll(async () => {
  await tf.setBackend("cpu");
});
afterAll(() => {
  for (const dir of mounts.reverse()) spawnSync("umount", [dir]);
  rmSync(work, { recursive: true, force: true });
});

/** Mounting needs root; the mount cases are skipped otherwise, with the case named. */
const isRoot = process.getuid?.() === 0;
const NOT_ROOT = "not root, so no mount rights: the case is not tested here (CI runs as root)";

/** `mount <args>` onto `target`, or an error saying which case cannot be tested and why. */
function mount(what: string, args: string[], target: string): void {
  const result = spawnSync("mount", [...args, target], { encoding: "utf8" });
  if (result.status !== 0)
    throw new Error(
      `Cannot test ${what}: \`mount ${args.join(" ")} ${target}\` failed as root (${(result.stderr || result.error?.message || `exit ${result.status}`).trim()}). Run the tests with mount rights (e.g. a privileged container) instead of skipping this case.`,
    );
  mounts.push(target);
}

/** An empty read-only bind mount. */
function readOnlyFolder(name: string): string {
  const source = join(work, `${name}-src`);
  const target = join(work, name);
  mkdirSync(source);
  mkdirSync(target);
  mount("a read-only folder (EROFS)", ["--bind", "-o", "ro", source], target);
  return target;
}

/** A 64 KiB tmpfs, nearly filled. */
function fullDisk(name: string): string {
  const target = join(work, name);
  mkdirSync(target);
  mount("a full disk (ENOSPC)", ["-t", "tmpfs", "-o", "size=64k", "tmpfs"], target);
  // 56 KiB used: the first files fit, the run's later writes do not.
  spawnSync("dd", ["if=/dev/zero", `of=${join(target, "fill")}`, "bs=1k", "count=56"]);
  return target;
}

/** A path under a regular file: every write fails with ENOTDIR (no root needed). */
function underAFile(name: string): string {
  const file = join(work, `${name}-file`);
  writeFileSync(file, "not a folder");
  return join(file, "project");
}

const rows = Array.from({ length: 32 }, (_, i) => ({ x: [i / 32, 1 - i / 32], y: i / 16 }));

/** Trains twice (two train() calls) with DVCLive working in `cwd`; returns DVCLive's warnings. */
async function trainIn(cwd: string): Promise<string[]> {
  const log = captureLogger();
  setLogger(log.logger);
  try {
    const trainer = new Trainer({
      model: tf.sequential({
        layers: [tf.layers.dense({ inputShape: [2], units: 1, kernelInitializer: "ones" })],
      }),
      loss: "meanSquaredError",
      trainDataset: rows,
      evalDataset: rows.slice(0, 8),
      callbacks: [
        new DVCLiveCallback({
          cwd,
          env: toolEnv,
          logger: log.logger,
          saveDvcExp: false,
          logModel: true,
        }),
      ],
      args: new TrainingArguments({
        outputDir: join(work, "out", String(mounts.length), String(Math.random())),
        perDeviceTrainBatchSize: 4,
        numTrainEpochs: 2,
        loggingSteps: 2,
        evalStrategy: "steps",
        evalSteps: 4,
        saveStrategy: "no",
        disableTqdm: true,
        reportTo: "none",
        backend: "cpu",
      }),
    });
    for (let i = 0; i < 2; i++) expect((await trainer.train()).globalStep).toBe(16);
    // The Trainer's guard did not have to step in: the callback handled it.
    expect(log.warnings.filter((w) => w.includes('Integration "'))).toEqual([]);
    return log.warnings.filter((w) => w.includes("DVCLive"));
  } finally {
    setLogger();
  }
}

describe("failures leave training running and are reported once", () => {
  test.skipIf(!isRoot)(
    `a read-only folder (a read-only bind mount; skipped if ${NOT_ROOT})`,
    async () => {
      const warnings = await trainIn(readOnlyFolder("read-only"));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(
        /^DVCLive failed while starting the run: EROFS.*dvclive.*Nothing more is logged to DVCLive in this run; training goes on\.$/,
      );
    },
  );

  test("a path whose parent is a regular file (ENOTDIR)", async () => {
    const warnings = await trainIn(underAFile("enotdir"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /^DVCLive failed while starting the run: ENOTDIR.*dvclive.*Nothing more is logged to DVCLive in this run; training goes on\.$/,
    );
  });

  test.skipIf(!isRoot)(`a full disk (a 64 KiB tmpfs; skipped if ${NOT_ROOT})`, async () => {
    const warnings = await trainIn(fullDisk("full"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^DVCLive failed while logging: ENOSPC/);
  });
});

// The run folder is cleaned only where it is safe (symbolic links resolved), one bad metric does
// not switch DVCLive off, dvc's error output is redacted, and the shared formatting is core's.
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join, relative } from "node:path";
import { TrainerControl, TrainerState, TrainingArguments } from "@trainkit/core";
import { pythonFloatRepr } from "@trainkit/core/plugin";
import { afterAll, describe, expect, test } from "vitest";
import { DVCLiveCallback, Live, logModelFromEnv } from "../src/index.js";
import { dumpJson } from "../src/json-writer.js";
import { PyFloat, pyStr } from "../src/python-values.js";
import { captureLogger, tempDir, toolEnv } from "./helpers.js";

/** Every file under `dir` with its text, symbolic links as "-> target" (not followed). */
function readTree(dir: string, skip = [".git", ".dvc"]): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (folder: string) => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      if (skip.includes(entry.name)) continue;
      const path = join(folder, entry.name);
      if (entry.isSymbolicLink()) out[relative(dir, path)] = `-> ${readlinkSync(path)}`;
      else if (entry.isDirectory()) walk(path);
      else out[relative(dir, path)] = readFileSync(path, "utf8");
    }
  };
  walk(dir);
  return out;
}

const work = tempDir("safety");
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The files dvclive's cleanup would delete, at the top of `dir`, plus a plots folder. */
const PROJECT_FILES: Record<string, string> = {
  "params.yaml": "project: 1\n",
  "dvc.yaml": "stages: {}\n",
  "metrics.json": '{"project": 1}\n',
  "report.html": "<html/>",
  "plots/metrics/keep.tsv": "step\tkeep\n0\t1\n",
};

function populate(dir: string, files: Record<string, string> = PROJECT_FILES): void {
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(join(dir, file, ".."), { recursive: true });
    writeFileSync(join(dir, file), text);
  }
}

function trainingArgs(outputDir: string) {
  return new TrainingArguments({ outputDir, runName: "safety", reportTo: "none" });
}

/** train begin, one onLog per entry, train end, as the Trainer calls them. */
async function train(
  callback: DVCLiveCallback,
  logs: Record<string, unknown>[],
  outputDir = join(work, "out"),
): Promise<void> {
  const args = trainingArgs(outputDir);
  const state = new TrainerState();
  const control = new TrainerControl();
  callback.onTrainBegin(args, state);
  for (const entry of logs) callback.onLog(args, state, control, { logs: entry as never });
  await callback.onTrainEnd(args, state, control, {});
}

const liveOptions = { dvcyaml: false as const, saveDvcExp: false, env: toolEnv };

describe("a fresh run never deletes through a symbolic link", () => {
  test("dir a link to the working directory (dvclive -> .): refused, nothing deleted", () => {
    const cwd = tempDir("self-link", work);
    populate(cwd);
    symlinkSync(".", join(cwd, "dvclive"));
    const before = readTree(cwd);
    expect(() => new Live({ ...liveOptions, cwd })).toThrow(
      /dir "dvclive" \(.*\) is the working directory or a folder above it.*folder of its own/,
    );
    expect(() => new DVCLiveCallback({ cwd, env: toolEnv })).toThrow(/folder of its own/);
    expect(readTree(cwd)).toEqual(before);
    expect(Object.keys(before)).toEqual(expect.arrayContaining(Object.keys(PROJECT_FILES)));
  });

  test("dir a link to a folder above the working directory: refused", () => {
    const top = tempDir("up-link", work);
    const cwd = join(top, "project");
    mkdirSync(cwd);
    populate(top);
    symlinkSync("..", join(cwd, "dvclive"));
    const before = readTree(top);
    expect(() => new Live({ ...liveOptions, cwd })).toThrow(/folder above it/);
    expect(readTree(top)).toEqual(before);
  });

  test.each([".git", ".dvc"])(
    "dir a link to another project's root (holding %s): refused, nothing deleted",
    (marker) => {
      const cwd = tempDir("mine", work);
      const other = tempDir("other-project", work);
      populate(other);
      mkdirSync(join(other, marker));
      symlinkSync(other, join(cwd, "dvclive"));
      const before = readTree(other, []);
      expect(() => new Live({ ...liveOptions, cwd })).toThrow(
        new RegExp(`holds \\${marker}, so it is a project's root.*folder of its own`),
      );
      expect(() => new DVCLiveCallback({ cwd, env: toolEnv })).toThrow(/project's root/);
      expect(readTree(other, [])).toEqual(before);
    },
  );

  test("a link made after the callback was created: reported once at setup, nothing deleted, training goes on", async () => {
    const cwd = tempDir("late-link", work);
    populate(cwd);
    const log = captureLogger();
    const callback = new DVCLiveCallback({ cwd, env: toolEnv, logger: log.logger });
    symlinkSync(".", join(cwd, "dvclive"));
    const before = readTree(cwd);
    await train(callback, [{ loss: 0.5 }, { loss: 0.25 }]);
    expect(readTree(cwd)).toEqual(before);
    expect(log.warnings).toHaveLength(1);
    expect(log.warnings[0]).toMatch(
      /^DVCLive failed while starting the run: DVCLive: dir "dvclive" .* is the working directory.*Nothing more is logged/,
    );
  });

  test("dir the Trainer's outputDir (by a link): refused at setup, the checkpoints' folder untouched", async () => {
    const cwd = tempDir("output-dir", work);
    const outputDir = join(cwd, "out");
    populate(outputDir);
    symlinkSync("out", join(cwd, "dvclive"));
    const before = readTree(cwd);
    const log = captureLogger();
    const callback = new DVCLiveCallback({
      cwd,
      env: toolEnv,
      logger: log.logger,
      saveDvcExp: false,
    });
    await train(callback, [{ loss: 1 }], outputDir);
    expect(readTree(cwd)).toEqual(before);
    expect(log.warnings).toEqual([
      expect.stringMatching(
        /^DVCLive failed while starting the run: .*is or holds the Trainer's outputDir/,
      ),
    ]);
  });

  test("a plots link leading out of the run folder is not cleaned through", () => {
    const cwd = tempDir("plots-link", work);
    const elsewhere = tempDir("elsewhere", work);
    populate(elsewhere, { "metrics/keep.tsv": "kept", "custom/keep.json": "[]" });
    populate(cwd, { "dvclive/params.yaml": "old: 1\n" });
    symlinkSync(elsewhere, join(cwd, "dvclive", "plots"));
    const log = captureLogger();
    new Live({ ...liveOptions, cwd, logger: log.logger });
    expect(readTree(elsewhere)).toEqual({ "metrics/keep.tsv": "kept", "custom/keep.json": "[]" });
    expect(existsSync(join(cwd, "dvclive", "params.yaml"))).toBe(false);
    expect(log.warnings).toEqual([expect.stringMatching(/plots leads out of the run folder/)]);
  });

  test("a plain run folder is still cleaned as dvclive cleans it", () => {
    const cwd = tempDir("plain", work);
    populate(join(cwd, "dvclive"));
    new Live({ ...liveOptions, cwd });
    expect(readTree(join(cwd, "dvclive"))).toEqual({});
  });
});

describe("one bad metric", () => {
  test("a key too long for a file name is skipped and reported once; the others are logged", async () => {
    const cwd = tempDir("long-key", work);
    const long = `custom_${"x".repeat(300)}`;
    const log = captureLogger();
    const callback = new DVCLiveCallback({
      cwd,
      env: toolEnv,
      logger: log.logger,
      saveDvcExp: false,
    });
    await train(callback, [{ loss: 0.5, [long]: 1 }, { loss: 0.25, [long]: 2 }, { loss: 0.125 }]);
    expect(log.warnings).toEqual([
      expect.stringMatching(
        /^DVCLive: cannot write the plot file of metric "custom_x+" \(ENAMETOOLONG\); this metric is skipped/,
      ),
    ]);
    const tree = readTree(join(cwd, "dvclive"));
    expect(tree["plots/metrics/loss.tsv"]).toBe("step\tloss\n0\t0.5\n1\t0.25\n2\t0.125\n");
    expect(JSON.parse(tree["metrics.json"]!)).toEqual({ loss: 0.125, step: 2 });
  });
});

describe("dvc's error output", () => {
  test("is redacted in warnings", async () => {
    const cwd = tempDir("redact", work);
    mkdirSync(join(cwd, ".dvc"));
    writeFileSync(join(cwd, "model.bin"), "model");
    const fake = join(cwd, "fake-dvc");
    writeFileSync(
      fake,
      '#!/bin/sh\necho "ERROR: failed: https://alice:hunter2@dvc.example/r token=s3cr3tvalue" >&2\nexit 1\n',
    );
    chmodSync(fake, 0o755);
    const log = captureLogger();
    const live = new Live({ ...liveOptions, cwd, dvcCommand: fake, logger: log.logger });
    await live.logArtifact("model.bin");
    expect(log.warnings).toHaveLength(1);
    expect(log.warnings[0]).toMatch(/^DVCLive: `dvc add model.bin` failed: ERROR: failed:/);
    expect(log.warnings[0]).not.toMatch(/hunter2|s3cr3tvalue/);
  });
});

describe("the formatting shared with core", () => {
  test("floats and strings as dvclive writes them", () => {
    expect([NaN, Infinity, -Infinity, 5e-5, 3, 1e16, -0, 0.1].map(pythonFloatRepr)).toEqual([
      "nan",
      "inf",
      "-inf",
      "5e-05",
      "3.0",
      "1e+16",
      "-0.0",
      "0.1",
    ]);
    expect(pyStr(new PyFloat(NaN))).toBe("nan");
    expect(
      dumpJson(
        new Map<string, PyFloat | number | string>([
          ["n", new PyFloat(NaN)],
          ["i", new PyFloat(-Infinity)],
          ["f", new PyFloat(2)],
          ["é\u007f", 'a\t"b"\u2028😀'],
          ["big", 1152921504606846976],
        ]),
      ),
    ).toBe(
      '{\n    "n": NaN,\n    "i": -Infinity,\n    "f": 2.0,\n    "\\u00e9\\u007f": "a\\t\\"b\\"\\u2028\\ud83d\\ude00",\n    "big": 1152921504606846976\n}\n',
    );
  });

  test("HF_DVCLIVE_LOG_MODEL is read as HF reads it (no trimming)", () => {
    expect([" 1", "on ", "yes", "All", " all"].map(logModelFromEnv)).toEqual([
      false,
      false,
      true,
      "all",
      false,
    ]);
  });
});

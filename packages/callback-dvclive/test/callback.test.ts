// DVCLiveCallback's HF semantics, event by event, against HF's calls replayed over dvclive's own
// Live (test/python/hf_dvclive.py): the same logs into two folders must give the same files.
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TrainerControl, TrainerState, TrainingArguments } from "@trainkit/core";
import { afterAll, describe, expect, test } from "vitest";
import { parse as parseYaml } from "yaml";
import dvclive, {
  DVCLiveCallback,
  Live,
  logModelFromEnv,
  standardizeMetricName,
} from "../src/index.js";
import { argsDict } from "../src/callback.js";
import { dumpJson } from "../src/json-writer.js";
import { PyFloat, parsePythonJson, type PyValue } from "../src/python-values.js";
import {
  captureLogger,
  dvcRepo,
  experimentRevs,
  readTree,
  runDvclive,
  tempDir,
  toolEnv,
  type Operation,
} from "./helpers.js";

const work = tempDir("callback");
afterAll(() => rmSync(work, { recursive: true, force: true }));

const args = new TrainingArguments({
  outputDir: join(work, "out"),
  runName: "on",
  reportTo: "none",
});

/** The logs as HF passes them, written as Python's json would (1.0 a float, NaN a token). */
const LOGS = [
  '{"loss": 0.5, "grad_norm": 1.25, "learning_rate": 5e-05, "epoch": 0.5}',
  '{"eval_loss": 0.25, "eval_accuracy": 1, "eval_train_x": 3, "eval_runtime": 0.1, "epoch": 1.0}',
  '{"test_loss": 0.1, "flag": true, "note": "a\\tb \\"q\\"", "nan_value": NaN, "inf": Infinity, "ninf": -Infinity, "big": 1152921504606846976, "epoch": 1.0}',
  '{"list": [1, 2], "obj": {"a": 1}, "none": null, "loss": 0.25}',
  '{"train_runtime": 1.5, "train_samples_per_second": 21.3, "train_loss": 0.3, "total_flos": 0.0, "epoch": 2.0}',
];

/** A Python JSON text as the plain JS values the Trainer would pass. */
function jsLogs(json: string): Record<string, unknown> {
  const toJs = (v: PyValue): unknown =>
    v instanceof PyFloat
      ? v.value
      : v instanceof Map
        ? Object.fromEntries([...v].map(([k, x]) => [k, toJs(x)]))
        : Array.isArray(v)
          ? v.map(toJs)
          : v;
  return toJs(parsePythonJson(json)) as Record<string, unknown>;
}

const paramsOperation = (): Operation => ({ op: "params", json: dumpJson(argsDict(args)) });

/** HF's event sequence on our callback: train begin, one onLog per entry, train end. */
async function train(
  callback: DVCLiveCallback,
  logs: string[],
  { end = true } = {},
): Promise<void> {
  const state = new TrainerState();
  const control = new TrainerControl();
  callback.onTrainBegin(args, state);
  for (const json of logs) callback.onLog(args, state, control, { logs: jsLogs(json) as never });
  if (end) await callback.onTrainEnd(args, state, control, {});
}

function newCallback(cwd: string, env: Record<string, string> = {}) {
  const log = captureLogger();
  const callback = new DVCLiveCallback({ cwd, env: { ...toolEnv, ...env }, logger: log.logger });
  return { callback, log };
}

describe("HF's on_log semantics", () => {
  test("every log is one step; names, values and files are dvclive's", async () => {
    const ours = tempDir("ours", work);
    const theirs = tempDir("theirs", work);
    const { callback, log } = newCallback(ours);
    await train(callback, LOGS);
    runDvclive(theirs, [
      { op: "live" },
      paramsOperation(),
      ...LOGS.map((json): Operation => ({ op: "log", json })),
      { op: "end" },
    ]);
    expect(readTree(ours)).toEqual(readTree(theirs));

    const metrics = JSON.parse(
      readFileSync(join(ours, "dvclive/metrics.json"), "utf8").replace(/NaN/g, "null"),
    );
    expect(metrics.step).toBe(4); // five on_log calls
    expect(metrics.eval.train.x).toBe(3); // eval_train_x → eval/train/x
    expect(metrics.test_loss).toBe(0.1); // test_ is not renamed
    expect(metrics.train).toEqual({ runtime: 1.5, samples_per_second: 21.3, loss: 0.3 });
    expect(metrics.nan_value).toBe("nan");
    const tsv = readFileSync(join(ours, "dvclive/plots/metrics/loss.tsv"), "utf8");
    expect(tsv).toBe("step\tloss\n0\t0.5\n3\t0.25\n");
    // Values that are not numbers or strings are dropped with HF's warning, once per key.
    expect(log.warnings.filter((w) => w.startsWith("Trainer is attempting to log"))).toHaveLength(
      3,
    );
    expect(log.warnings.some((w) => w.includes("Can't save experiment without a Git Repo"))).toBe(
      true,
    );
  });

  test("standardizeMetricName is dvclive.huggingface's", () => {
    expect(
      [
        "loss",
        "eval_loss",
        "train_loss",
        "train_runtime",
        "eval_train_x",
        "test_loss",
        "my_train_acc",
      ].map(standardizeMetricName),
    ).toEqual([
      "loss",
      "eval/loss",
      "train/loss",
      "train/runtime",
      "eval/train/x",
      "test_loss",
      "my_train/acc",
    ]);
  });

  test("a second train() neither sets up again nor re-logs params, and continues after end()", async () => {
    const ours = tempDir("ours", work);
    const theirs = tempDir("theirs", work);
    const { callback } = newCallback(ours);
    await train(callback, LOGS.slice(0, 2));
    await train(callback, LOGS.slice(2, 4));
    const logs = (from: number, to: number) =>
      LOGS.slice(from, to).map((json): Operation => ({ op: "log", json }));
    runDvclive(theirs, [
      { op: "live" },
      paramsOperation(),
      ...logs(0, 2),
      { op: "end" },
      ...logs(2, 4),
      { op: "end" },
    ]);
    expect(readTree(ours)).toEqual(readTree(theirs));
    // After end() the step goes back to the last one written: the next log reuses it.
    expect(readFileSync(join(ours, "dvclive/plots/metrics/epoch.tsv"), "utf8")).toBe(
      "step\tepoch\n0\t0.5\n1\t1.0\n1\t1.0\n",
    );
  });
});

describe("the run folder", () => {
  /** A folder with the leftovers of an earlier run, and things that are not dvclive's. */
  function populate(dir: string): void {
    const files: Record<string, string> = {
      "dvclive/metrics.json": "{}\n",
      "dvclive/params.yaml": "old: 1\n",
      "dvclive/report.html": "<html/>",
      "dvclive/report.md": "# old",
      "dvclive/plots/metrics/old.tsv": "step\told\n0\t1\n",
      "dvclive/plots/custom/c.json": "[]",
      "dvclive/plots/images/i.png": "png",
      "dvclive/plots/sklearn/s.json": "{}",
      "dvclive/plots/other/keep.txt": "kept",
      "dvclive/artifacts/last/x.bin": "model",
      "dvclive/notes.txt": "kept",
      "dvclive/xdvc.yaml": "gone: 1\n",
      "dvclive/sub/dvc.yaml": "kept: 1\n",
      "params.yaml": "project: 1\n",
      "metrics.json": "{}\n",
      "dvc.yaml":
        "# the project's pipeline\nstages:\n  train:\n    cmd: node train.js  # runs it\n    deps:\n    - train.js\nmetrics:\n- other/metrics.json\n- dvclive/old.json\nplots:\n- other/plot.tsv\n- dvclive/plots/metrics:\n    x: step\nartifacts:\n  keep:\n    path: models/keep\n  stale:\n    path: dvclive/artifacts/stale\n",
    };
    for (const [file, text] of Object.entries(files)) {
      mkdirSync(join(dir, file, ".."), { recursive: true });
      writeFileSync(join(dir, file), text);
    }
  }

  test("a fresh run clears dvclive's files in its folder and only there; dvc.yaml is merged", async () => {
    const ours = tempDir("ours", work);
    const theirs = tempDir("theirs", work);
    populate(ours);
    populate(theirs);
    const { callback } = newCallback(ours);
    await train(callback, LOGS.slice(0, 1));
    runDvclive(theirs, [
      { op: "live" },
      paramsOperation(),
      { op: "log", json: LOGS[0]! },
      { op: "end" },
    ]);
    const mine = readTree(ours);
    const reference = readTree(theirs);
    const { "dvc.yaml": myDvcYaml, ...myFiles } = mine;
    const { "dvc.yaml": theirDvcYaml, ...theirFiles } = reference;
    expect(myFiles).toEqual(theirFiles);
    expect(Object.keys(myFiles)).toEqual(
      expect.arrayContaining([
        "dvclive/notes.txt",
        "dvclive/plots/other/keep.txt",
        "dvclive/artifacts/last/x.bin",
        "dvclive/sub/dvc.yaml",
        "params.yaml",
      ]),
    );
    expect(Object.keys(myFiles)).not.toContain("dvclive/report.html");
    // dvc.yaml: the same content as dvclive's merge (DVC's ruamel round trip), comments kept.
    expect(parseYaml(myDvcYaml!)).toEqual(parseYaml(theirDvcYaml!));
    expect(myDvcYaml).toContain("# the project's pipeline");
    expect(myDvcYaml).toContain("# runs it");
    expect(parseYaml(myDvcYaml!).metrics).toEqual(["other/metrics.json", "dvclive/metrics.json"]);
  });

  test("DVCLIVE_RESUME continues after metrics.json's step and appends (and the step-0 quirk)", async () => {
    const logs = (list: string[]) => list.map((json): Operation => ({ op: "log", json }));
    const folders: [string, string][] = [];
    const reference: Operation[] = [];
    for (const first of [LOGS.slice(0, 2), LOGS.slice(0, 1)]) {
      const ours = tempDir("ours", work);
      const theirs = tempDir("theirs", work);
      folders.push([ours, theirs]);
      await train(newCallback(ours).callback, first);
      await train(newCallback(ours, { DVCLIVE_RESUME: "yes" }).callback, LOGS.slice(2, 5));
      reference.push(
        { op: "chdir", path: theirs },
        { op: "env", set: { DVCLIVE_RESUME: "" } },
        { op: "live" },
        paramsOperation(),
        ...logs(first),
        { op: "end" },
        { op: "env", set: { DVCLIVE_RESUME: "yes" } },
        { op: "live" },
        paramsOperation(),
        ...logs(LOGS.slice(2, 5)),
        { op: "end" },
      );
    }
    runDvclive(work, reference);
    for (const [ours, theirs] of folders) expect(readTree(ours)).toEqual(readTree(theirs));
  });

  test("a resumed run keeps params it did not log (dict.update)", async () => {
    const ours = tempDir("ours", work);
    mkdirSync(join(ours, "dvclive"));
    const theirs = tempDir("theirs", work);
    writeFileSync(
      join(ours, "dvclive/params.yaml"),
      "extra: [1, 2]  # user's\nlearning_rate: 1.0\n",
    );
    cpSync(join(ours, "dvclive"), join(theirs, "dvclive"), { recursive: true });
    await train(newCallback(ours, { DVCLIVE_RESUME: "1" }).callback, LOGS.slice(0, 1));
    runDvclive(
      theirs,
      [{ op: "live" }, paramsOperation(), { op: "log", json: LOGS[0]! }, { op: "end" }],
      { DVCLIVE_RESUME: "1" },
    );
    const mine = parseYaml(readFileSync(join(ours, "dvclive/params.yaml"), "utf8"));
    expect(mine).toEqual(parseYaml(readFileSync(join(theirs, "dvclive/params.yaml"), "utf8")));
    expect(Object.keys(mine).slice(0, 2)).toEqual(["extra", "learning_rate"]);
  });
});

describe("experiments", () => {
  test("DVC_EXP_NAME names the experiment; a name already taken is left to DVC, with a warning", async () => {
    const repo = dvcRepo(tempDir("exp-name", work));
    const first = newCallback(repo, { DVC_EXP_NAME: "first-run" });
    await train(first.callback, LOGS.slice(0, 1));
    const second = newCallback(repo, { DVC_EXP_NAME: "first-run" });
    await train(second.callback, LOGS.slice(0, 2));
    const names = experimentRevs(repo).map((rev) => rev.name);
    expect(names).toHaveLength(2);
    expect(names).toContain("first-run");
    expect(first.log.warnings).toEqual([]);
    expect(second.log.warnings).toEqual([
      "DVCLive: experiment conflicts with existing experiment 'first-run'; DVC names this one.",
    ]);
  });
});

describe("options and configuration", () => {
  test("bad options are errors before anything is written", () => {
    const cwd = tempDir("options", work);
    expect(() => new DVCLiveCallback({ cwd, dir: "." })).toThrow(/folder of its own/);
    expect(() => new DVCLiveCallback({ cwd, dir: ".." })).toThrow(/folder of its own/);
    expect(() => new DVCLiveCallback({ cwd, dir: "" })).toThrow(/dir must be a folder path/);
    expect(() => new DVCLiveCallback({ cwd, dvcyaml: "pipeline.yaml" })).toThrow(/named dvc.yaml/);
    expect(() => new DVCLiveCallback({ cwd, logModel: "yes" as never })).toThrow(
      /true, false or "all"/,
    );
    expect(() => new DVCLiveCallback({ cwd, live: {} as never })).toThrow(/must be a Live/);
    expect(() => new DVCLiveCallback({ cwd, env: { TRAINKIT_DVCLIVE_DIR: "/" } })).toThrow(
      /folder of its own/,
    );
    expect(readTree(cwd)).toEqual({});
  });

  test("HF_DVCLIVE_LOG_MODEL: HF's truthy values, 'all', anything else off", () => {
    expect(
      ["1", "TRUE", "yes", "on", "all", "ALL", "false", "0", "", undefined, "model"].map(
        logModelFromEnv,
      ),
    ).toEqual([true, true, true, true, "all", "all", false, false, false, false, false]);
    expect(new DVCLiveCallback({ cwd: work, env: { HF_DVCLIVE_LOG_MODEL: "all" } }).logModel).toBe(
      "all",
    );
    expect(
      new DVCLiveCallback({ cwd: work, env: { HF_DVCLIVE_LOG_MODEL: "all" }, logModel: false })
        .logModel,
    ).toBe(false);
  });

  test("TRAINKIT_DVCLIVE_DIR and TRAINKIT_DVCLIVE_DVCYAML place the files; dvcyaml false writes none", async () => {
    const cwd = tempDir("env", work);
    await train(
      newCallback(cwd, {
        TRAINKIT_DVCLIVE_DIR: "runs/a",
        TRAINKIT_DVCLIVE_DVCYAML: "runs/dvc.yaml",
      }).callback,
      LOGS.slice(0, 1),
    );
    expect(parseYaml(readFileSync(join(cwd, "runs/dvc.yaml"), "utf8")).metrics).toEqual([
      "a/metrics.json",
    ]);
    const none = tempDir("none", work);
    await train(
      newCallback(none, { TRAINKIT_DVCLIVE_DVCYAML: "false" }).callback,
      LOGS.slice(0, 1),
    );
    expect(Object.keys(readTree(none))).not.toContain("dvc.yaml");
  });

  test("a given Live is used as is (HF's live=)", async () => {
    const cwd = tempDir("live", work);
    const live = new Live({ cwd, dir: "mine", dvcyaml: false, saveDvcExp: false });
    const callback = new DVCLiveCallback({ live });
    await train(callback, LOGS.slice(0, 1));
    expect(callback.live).toBe(live);
    expect(Object.keys(readTree(cwd))).toContain("mine/metrics.json");
  });

  test("DVCLIVE_TEST writes to a temporary folder and leaves the working directory alone", async () => {
    const cwd = tempDir("test-mode", work);
    const { callback, log } = newCallback(cwd, { DVCLIVE_TEST: "true" });
    await train(callback, LOGS.slice(0, 1));
    expect(readTree(cwd)).toEqual({});
    expect(callback.live!.dir.startsWith(cwd)).toBe(false);
    expect(log.warnings.some((w) => w.startsWith("DVCLive testing mode enabled."))).toBe(true);
    rmSync(join(callback.live!.dir, ".."), { recursive: true, force: true });
  });

  test("the plugin: always available, writes dvclive/ and dvc.yaml in the working directory", async () => {
    const cwd = tempDir("plugin", work);
    const log = captureLogger();
    expect(dvclive.name).toBe("dvclive");
    expect(dvclive.isAvailable({ args, env: {}, logger: log.logger })).toEqual({ available: true });
    const previous = process.cwd();
    process.chdir(cwd);
    try {
      const callback = (await dvclive.create({
        args,
        env: toolEnv,
        logger: log.logger,
      })) as DVCLiveCallback;
      await train(callback, LOGS.slice(0, 1));
    } finally {
      process.chdir(previous);
    }
    expect(Object.keys(readTree(cwd))).toEqual([
      "dvc.yaml",
      "dvclive/metrics.json",
      "dvclive/params.yaml",
      "dvclive/plots/metrics/epoch.tsv",
      "dvclive/plots/metrics/grad_norm.tsv",
      "dvclive/plots/metrics/learning_rate.tsv",
      "dvclive/plots/metrics/loss.tsv",
    ]);
  });
});

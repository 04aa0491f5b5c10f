// DVCLiveCallback in real Trainer runs: resuming from a checkpoint, HF's log_model (the final
// model and every checkpoint tracked by the real `dvc add`), and DVC or Git missing.
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import {
  Trainer,
  TrainingArguments,
  setLogger,
  type TrainingArgumentsOptions,
} from "@trainkit/core";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { parse as parseYaml } from "yaml";
import { DVCLiveCallback, type DVCLiveCallbackOptions } from "../src/index.js";
import { setDefaultDvcliveLogger } from "../src/callback.js";
import { tsvRecords } from "../src/tsv.js";
import {
  captureLogger,
  dvcJson,
  dvcRepo,
  envWithoutDvc,
  readTree,
  run,
  runDvclive,
  tempDir,
  toolEnv,
} from "./helpers.js";

const work = tempDir("trainer");
let log: ReturnType<typeof captureLogger>;

beforeAll(async () => {
  await tf.setBackend("cpu");
});
afterEach(() => setLogger());
afterAll(() => rmSync(work, { recursive: true, force: true }));

const rows = Array.from({ length: 32 }, (_, i) => ({ x: [i / 32, 1 - i / 32], y: i / 16 }));

function makeTrainer(
  cwd: string,
  args: TrainingArgumentsOptions,
  options: DVCLiveCallbackOptions = {},
) {
  log = captureLogger();
  setLogger(log.logger);
  setDefaultDvcliveLogger(log.logger); // what the plugin does, for callbacks rebuilt from a checkpoint
  const model = tf.sequential({
    layers: [tf.layers.dense({ inputShape: [2], units: 1, kernelInitializer: "ones" })],
  });
  return new Trainer({
    model,
    loss: "meanSquaredError",
    trainDataset: rows,
    evalDataset: rows.slice(0, 8),
    callbacks: [new DVCLiveCallback({ cwd, env: toolEnv, logger: log.logger, ...options })],
    args: new TrainingArguments({
      outputDir: join(cwd, "out"),
      perDeviceTrainBatchSize: 4,
      numTrainEpochs: 2,
      loggingSteps: 4,
      evalStrategy: "steps",
      evalSteps: 8,
      saveStrategy: "no",
      disableTqdm: true,
      reportTo: "none",
      backend: "cpu",
      ...args,
    }),
  });
}

const dvcliveWarnings = () => log.warnings.filter((w) => /DVC|dvc/.test(w));

/** Each TSV's rows as [step, value], timing values (runtime, per second) as "t". */
function plotRows(dir: string): Record<string, string[][]> {
  const out: Record<string, string[][]> = {};
  for (const [file, text] of Object.entries(readTree(join(dir, "dvclive/plots/metrics")))) {
    const timing = /runtime|per_second/.test(file);
    out[file] = tsvRecords(text).map((r) => (timing ? [r.fields[0]!, "t"] : r.fields));
  }
  return out;
}

describe("resuming from a checkpoint", () => {
  test("continues the DVCLive step and the plots as if training had not stopped", async () => {
    const unbroken = tempDir("unbroken", work);
    await makeTrainer(unbroken, {}).train();

    const resumed = tempDir("resumed", work);
    await makeTrainer(resumed, { saveStrategy: "steps", saveSteps: 8 }).train();
    const state = JSON.parse(
      readFileSync(join(resumed, "out/checkpoint-8/trainer_state.json"), "utf8"),
    );
    // Logged before the save at step 8: train logs at 4 and 8, the evaluation at 8.
    expect(state.stateful_callbacks.DVCLiveCallback.attributes).toEqual({ step: 3 });
    // The run goes on past the checkpoint; a new Trainer resumes from it.
    await makeTrainer(resumed, { saveStrategy: "steps", saveSteps: 8 }).train({
      resumeFromCheckpoint: join(resumed, "out/checkpoint-8"),
    });
    expect(
      log.infos.some((m) =>
        /continuing .* at step 3; \d+ values logged after the checkpoint were removed/.test(m),
      ),
    ).toBe(true);
    expect(plotRows(resumed)).toEqual(plotRows(unbroken));
    const metrics = (dir: string) =>
      JSON.parse(readFileSync(join(dir, "dvclive/metrics.json"), "utf8"));
    expect(Object.keys(metrics(resumed))).toEqual(Object.keys(metrics(unbroken)));
    expect(metrics(resumed).step).toBe(6);
    expect(metrics(resumed).loss).toBe(metrics(unbroken).loss);
    expect(dvcliveWarnings().filter((w) => !w.includes("without a Git Repo"))).toEqual([]);
  });
});

describe("HF's log_model with a DVC repository", () => {
  test("logModel true: the final model saved to out/last, copied to dvclive/artifacts and tracked by dvc add", async () => {
    const repo = dvcRepo(tempDir("model", work));
    const trainer = makeTrainer(repo, { numTrainEpochs: 1 }, { logModel: true });
    await trainer.train();
    expect(dvcliveWarnings()).toEqual([]);
    for (const file of ["model.json", "weights.bin", "training_args.json"]) {
      expect(existsSync(join(repo, "out/last", file))).toBe(true);
      expect(existsSync(join(repo, "dvclive/artifacts/last", file))).toBe(true);
    }
    // Trainer.loadModel (core's reader) takes the files back.
    trainer.loadModel(join(repo, "dvclive/artifacts/last"));
    const dvcFile = parseYaml(readFileSync(join(repo, "dvclive/artifacts/last.dvc"), "utf8"));
    expect(dvcFile.outs[0].path).toBe("last");
    expect(readFileSync(join(repo, "dvclive/artifacts/.gitignore"), "utf8")).toContain("/last");
    expect(dvcJson(repo, ["status"])).toEqual({});

    // dvclive, given the same model folder, writes the same artifacts entry.
    const theirs = dvcRepo(tempDir("model-dvclive", work));
    run("cp", ["-r", join(repo, "out"), join(theirs, "out")], theirs);
    runDvclive(theirs, [
      { op: "live" },
      { op: "artifact", path: "out/last", kwargs: { name: "last", type: "model", copy: true } },
      { op: "end" },
    ]);
    const artifacts = (dir: string) =>
      parseYaml(readFileSync(join(dir, "dvc.yaml"), "utf8")).artifacts;
    expect(artifacts(repo)).toEqual({ last: { path: "dvclive/artifacts/last", type: "model" } });
    expect(artifacts(repo)).toEqual(artifacts(theirs));
    // The experiment holds the .dvc file (the model itself is in DVC's cache).
    const refs = run("git", ["for-each-ref", "--format=%(refname)", "refs/exps"], repo)
      .split("\n")
      .filter((r) => /exps\/[0-9a-f]{2}\//.test(r));
    expect(refs).toHaveLength(1);
    expect(run("git", ["ls-tree", "-r", "--name-only", refs[0]!], repo)).toContain(
      "dvclive/artifacts/last.dvc",
    );
  });

  test('logModel "all": the output folder tracked at every checkpoint', async () => {
    const repo = dvcRepo(tempDir("model-all", work));
    await makeTrainer(
      repo,
      { numTrainEpochs: 1, saveStrategy: "steps", saveSteps: 4 },
      { logModel: "all" },
    ).train();
    expect(dvcliveWarnings()).toEqual([]);
    const dvcFile = parseYaml(readFileSync(join(repo, "out.dvc"), "utf8"));
    expect(dvcFile.outs[0].path).toBe("out");
    expect(dvcFile.outs[0].nfiles).toBeGreaterThan(0);
    expect(readFileSync(join(repo, ".gitignore"), "utf8")).toContain("/out");
    expect(parseYaml(readFileSync(join(repo, "dvc.yaml"), "utf8")).artifacts).toBeUndefined();
  });
});

describe("without DVC", () => {
  test("logModel true outside a DVC repository: the model is saved, tracking skipped with one warning", async () => {
    const cwd = tempDir("no-repo", work);
    await makeTrainer(
      cwd,
      { numTrainEpochs: 1, saveStrategy: "steps", saveSteps: 4 },
      { logModel: true },
    ).train();
    expect(existsSync(join(cwd, "out/last/weights.bin"))).toBe(true);
    expect(existsSync(join(cwd, "dvclive/artifacts"))).toBe(false);
    expect(
      dvcliveWarnings().filter((w) => w.startsWith("A DVC repo is required to log artifacts")),
    ).toHaveLength(1);
  });

  test("the dvc command missing: every file written, one warning, no experiment", async () => {
    const repo = dvcRepo(tempDir("no-dvc", work));
    const trainer = makeTrainer(
      repo,
      { numTrainEpochs: 1 },
      { env: envWithoutDvc, logModel: true },
    );
    await trainer.train();
    expect(dvcliveWarnings()).toHaveLength(1);
    expect(dvcliveWarnings()[0]).toMatch(/the `dvc` command is not on PATH/);
    expect(existsSync(join(repo, "dvclive/metrics.json"))).toBe(true);
    // The artifact entry is recorded (a DVC repository exists); only `dvc add` is skipped.
    expect(parseYaml(readFileSync(join(repo, "dvc.yaml"), "utf8")).artifacts.last.type).toBe(
      "model",
    );
    expect(existsSync(join(repo, "dvclive/artifacts/last.dvc"))).toBe(false);
    expect(run("git", ["for-each-ref", "refs/exps"], repo)).toBe("");
  });

  test("a DVC repository without Git (dvc init --no-scm): files and dvc.yaml, no experiment, one warning", async () => {
    const repo = dvcRepo(tempDir("no-scm", work), { git: false });
    await makeTrainer(repo, { numTrainEpochs: 1 }).train();
    expect(dvcliveWarnings()).toEqual([
      expect.stringContaining("Can't save experiment without a Git Repo."),
    ]);
    expect(dvcJson(repo, ["metrics", "show"])).toMatchObject({
      "": { data: { "dvclive/metrics.json": { data: { step: 3 } } } },
    });
  });

  test("a Git repository without a commit: one warning, as dvclive", async () => {
    const repo = dvcRepo(tempDir("no-commit", work), { commit: false });
    await makeTrainer(repo, { numTrainEpochs: 1 }).train();
    expect(dvcliveWarnings()).toEqual([
      expect.stringContaining("Can't save experiment to an empty Git Repo."),
    ]);
  });
});

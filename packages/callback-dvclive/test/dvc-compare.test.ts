// The primary check (spec §6.6): a real Trainer run logs through DVCLiveCallback in one Git+DVC
// repository; HF's DVCLiveCallback is replayed over dvclive's own Live with the same logged
// values in another. The real `dvc metrics show`, `dvc params diff` and `dvc plots show` must
// read both the same, and the files must be byte for byte dvclive's.
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import {
  Trainer,
  TrainerCallback,
  TrainingArguments,
  setLogger,
  type CallbackContext,
} from "@trainkit/core";
import { definePlugin } from "@trainkit/core/plugin";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { DVCLiveCallback } from "../src/index.js";
import {
  captureLogger,
  dvcJson,
  dvcRepo,
  experimentRevs,
  readTree,
  run,
  runDvclive,
  tempDir,
  toolEnv,
  type Operation,
} from "./helpers.js";

const work = tempDir("compare");
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Records what onLog receives, in order (HF's on_log dicts: log_history without "step"). */
class LogSpy extends TrainerCallback {
  readonly logs: Record<string, unknown>[] = [];
  override onLog(_a: unknown, _s: unknown, _c: unknown, ctx: CallbackContext): void {
    this.logs.push({ ...ctx.logs });
  }
}

const rows = Array.from({ length: 32 }, (_, i) => ({ x: [i / 32, 1 - i / 32], y: i / 16 }));

describe("a real training run, read by dvc as dvclive's own output", () => {
  const ours = dvcRepo(tempDir("ours", work));
  const theirs = dvcRepo(tempDir("dvclive", work));
  const log = captureLogger();
  let trainer: Trainer;
  let spy: LogSpy;

  beforeAll(async () => {
    await tf.setBackend("cpu");
    setLogger(log.logger);
    // The plugin as the Trainer selects it (reportTo ["dvclive"]), pointed at the repository.
    const plugin = definePlugin({
      name: "dvclive",
      create: ({ logger }) => new DVCLiveCallback({ cwd: ours, env: toolEnv, logger }),
    });
    spy = new LogSpy();
    const model = tf.sequential({
      layers: [tf.layers.dense({ inputShape: [2], units: 1, kernelInitializer: "ones" })],
    });
    trainer = new Trainer({
      model,
      loss: "meanSquaredError",
      trainDataset: rows,
      evalDataset: rows.slice(0, 8),
      plugins: [plugin],
      callbacks: [spy],
      args: new TrainingArguments({
        outputDir: join(work, "out"),
        perDeviceTrainBatchSize: 4,
        numTrainEpochs: 2,
        loggingSteps: 4,
        evalStrategy: "steps",
        evalSteps: 8,
        saveStrategy: "no",
        learningRate: 0.05,
        runName: "yes", // a YAML 1.1 boolean, a YAML 1.2 string
        disableTqdm: true,
        reportTo: ["dvclive"],
        backend: "cpu",
      }),
    });
    await trainer.train();
    setLogger();

    // HF's calls over dvclive: log_params(args.to_dict()), then per on_log each value and
    // next_step(), then end(). The values as HF holds them: trainkit's training_args.json and
    // trainer_state.json (Python's json tells 1.0 from 1), in the order the callback got them.
    const argsJson = JSON.parse(trainer.args.toJsonString()) as Record<string, unknown>;
    const argsInOrder = Object.keys(trainer.args.toJSON());
    expect(Object.keys(argsJson).sort()).toEqual([...argsInOrder].sort());
    const stateText = trainer.state.toJsonString();
    const operations: Operation[] = [
      { op: "live" },
      { op: "params", json: reorderedJson(trainer.args.toJsonString(), argsInOrder) },
      ...spy.logs.map((logs, i): Operation => ({
        op: "log",
        json: logEntryJson(stateText, i, Object.keys(logs)),
      })),
      { op: "end" },
    ];
    runDvclive(theirs, operations);
  });

  test("the run logged training, evaluation and the final summary", () => {
    expect(spy.logs).toHaveLength(7); // 4 training logs, 2 evaluations, the train summary
    expect(log.warnings.filter((w) => w.includes("DVCLive"))).toEqual([]);
  });

  test("dvc metrics show reads the same metrics", () => {
    const metrics = dvcJson(ours, ["metrics", "show"]);
    expect(metrics).toEqual(dvcJson(theirs, ["metrics", "show"]));
    const data = (
      metrics as Record<string, { data: Record<string, { data: Record<string, unknown> }> }>
    )[""]!.data["dvclive/metrics.json"]!.data;
    expect(data.step).toBe(6); // seven on_log calls: steps 0..6, not the global step
    expect(Object.keys(data)).toEqual(
      expect.arrayContaining(["loss", "epoch", "eval", "train", "total_flos"]),
    );
  });

  test("dvc params diff reads the same params", () => {
    const params = dvcJson(ours, ["params", "diff"]);
    expect(params).toEqual(dvcJson(theirs, ["params", "diff"]));
    const diff = (params as Record<string, Record<string, { new: unknown }>>)[
      "dvclive/params.yaml"
    ]!;
    expect(diff.learning_rate!.new).toBe(0.05);
    expect(diff.run_name!.new).toBe("yes");
  });

  test("dvc plots show reads the same plots", () => {
    const plots = dvcJson(ours, ["plots", "show"]) as { data: Record<string, unknown> };
    expect(plots).toEqual(dvcJson(theirs, ["plots", "show"]));
    expect(Object.keys(plots.data).sort()).toEqual(
      [
        "epoch",
        "eval/loss",
        "eval/runtime",
        "eval/samples_per_second",
        "eval/steps_per_second",
        "grad_norm",
        "learning_rate",
        "loss",
        "total_flos",
        "train/loss",
        "train/runtime",
        "train/samples_per_second",
        "train/steps_per_second",
      ].map((name) => `dvclive/plots/metrics/${name}.tsv`),
    );
  });

  test("every file is byte for byte what dvclive writes", () => {
    const mine = readTree(ours);
    const reference = readTree(theirs);
    expect(Object.keys(mine)).toEqual(Object.keys(reference));
    for (const file of Object.keys(reference))
      expect([file, mine[file]]).toEqual([file, reference[file]]);
    // null as an empty value, "yes" plain (a string in YAML 1.2), floats in Python's repr.
    expect(mine["dvclive/params.yaml"]).toContain("\nmetric_for_best_model:\n");
    expect(mine["dvclive/params.yaml"]).toContain("\nrun_name: yes\n");
    expect(mine["dvclive/params.yaml"]).toContain("\nnum_train_epochs: 2.0\n");
  });

  test("dvc exp save saved the run as an experiment, as dvclive does", () => {
    for (const repo of [ours, theirs]) {
      const refs = run("git", ["for-each-ref", "--format=%(refname)", "refs/exps"], repo)
        .trim()
        .split("\n");
      // refs/exps/<baseline sha[:2]>/<sha[2:]>/<name> (refs/exps/exec/* are DVC's own).
      const experiments = refs.filter((r) => /^refs\/exps\/[0-9a-f]{2}\/[0-9a-f]+\/.+/.test(r));
      expect(experiments).toHaveLength(1);
      const files = run("git", ["ls-tree", "-r", "--name-only", experiments[0]!], repo);
      expect(files).toContain("dvclive/metrics.json");
      expect(files).toContain("dvc.yaml");
    }
    // The experiment's metrics and params, as `dvc exp show` reads them.
    const experiments = (repo: string) =>
      experimentRevs(repo).map((rev) => ({ metrics: rev.data.metrics, params: rev.data.params }));
    expect(experiments(ours)).toEqual(experiments(theirs));
    expect(experiments(ours)[0]!.metrics).toHaveProperty(
      ["dvclive/metrics.json", "data", "step"],
      6,
    );
    expect(experiments(ours)).toHaveLength(1);
  });
});

/** `json` (a Python JSON object) with its keys in `order`, numbers written as they were. */
function reorderedJson(json: string, order: string[]): string {
  // Each entry of json.dumps(indent=2) is a line at the first key's indent, and what follows it.
  const entries = new Map<string, string>();
  const lines = json.trim().slice(1, -1).split("\n");
  const indent = /^( *)"/.exec(lines.find((l) => l.trim().startsWith('"')) ?? "")?.[1] ?? "";
  const entryStart = new RegExp(`^${indent}"`);
  let current: string[] = [];
  const flush = () => {
    if (current.length === 0) return;
    const text = current.join("\n").replace(/,$/, "");
    entries.set(JSON.parse(text.slice(0, text.indexOf('":') + 1).trim()) as string, text);
    current = [];
  };
  for (const line of lines) {
    if (entryStart.test(line)) flush();
    if (line.trim() !== "") current.push(line);
  }
  flush();
  return `{${order.map((key) => entries.get(key)!).join(",\n")}}`;
}

/** log_history[index] of trainer_state.json without "step", keys in `order`. */
function logEntryJson(stateJson: string, index: number, order: string[]): string {
  const start = stateJson.indexOf('"log_history": [');
  let depth = 0;
  let count = -1;
  let entryStart = 0;
  for (let i = stateJson.indexOf("[", start); i < stateJson.length; i++) {
    const ch = stateJson[i];
    if (ch === "{") {
      if (depth === 1) entryStart = i;
      depth++;
    } else if (ch === "}") {
      depth--;
      if (depth === 1 && ++count === index)
        return reorderedJson(stateJson.slice(entryStart, i + 1), order);
    } else if (ch === "[") depth++;
    else if (ch === "]") depth--;
  }
  throw new Error(`log_history has no entry ${index}`);
}

// Read at import so a missing file fails loudly rather than as a skipped comparison.
readFileSync(join(import.meta.dirname, "python", "hf_dvclive.py"));

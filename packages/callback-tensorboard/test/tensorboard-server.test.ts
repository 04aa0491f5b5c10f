// The real TensorBoard server (pinned 2.21.0, its Rust data server included) shows what we
// write: runs, scalar tags and values, text, histograms and the HParams table, over its HTTP API.
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { Trainer, TrainingArguments, setLogger } from "@trainkit/core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import tensorboard, { EventFileWriter } from "../src/index.js";
import { getJson, startTensorBoard, waitFor, type TensorBoardServer } from "./helpers.js";

const logdir = mkdtempSync(join(tmpdir(), "trainkit-tb-server-"));
let server: TensorBoardServer | undefined;
let trainerRun = "";
let trainer: Trainer;

const value = (tag: number, step: number) => Math.cos(step / 7 + tag) * 10 ** (tag - 2);

beforeAll(async () => {
  // Run "writer": the standalone writer.
  const writer = new EventFileWriter(join(logdir, "writer"), { onWarning: () => {} });
  for (let step = 0; step < 50; step++)
    for (let t = 0; t < 3; t++) writer.addScalar(`metric/${t}`, value(t, step), step * 10);
  writer.addText("notes", "**hello** from trainkit", 0);
  writer.addHistogram("weights", [0.5, -0.25, 1.5, 3, 3, 3], 10);
  writer.addHparams({ learning_rate: 0.001, optim: "sgd", use_bias: true });
  writer.endHparams("success");
  writer.close();

  // Run "trainer/runs/<MonDD_HH-MM-SS>_<host>": a real Trainer run.
  await tf.setBackend("cpu");
  setLogger({ info() {}, warn() {} });
  const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 1 })] });
  const rows = Array.from({ length: 32 }, (_, i) => ({ x: [i / 32, 1 - i / 32], y: i / 16 }));
  trainer = new Trainer({
    model,
    loss: "meanSquaredError",
    trainDataset: rows,
    evalDataset: rows.slice(0, 8),
    plugins: [tensorboard],
    args: new TrainingArguments({
      outputDir: join(logdir, "trainer"),
      maxSteps: 6,
      loggingSteps: 2,
      evalStrategy: "steps",
      evalSteps: 3,
      saveStrategy: "no",
      disableTqdm: true,
      reportTo: ["tensorboard"],
      backend: "cpu",
    }),
  });
  await trainer.train();
  setLogger();
  trainerRun = `trainer/runs/${readdirSync(join(logdir, "trainer", "runs"))[0]}`;

  server = await startTensorBoard(logdir, { timeoutMs: 60_000 });
}, 90_000);

afterAll(async () => {
  await server?.stop();
  rmSync(logdir, { recursive: true, force: true });
});

const api = (path: string, body?: unknown) => getJson(`${server!.url}${path}`, body);

/** A tag's scalars as [step, value], once TensorBoard has loaded `count` of them. */
async function scalars(run: string, tag: string, count: number): Promise<[number, number][]> {
  const url = `/data/plugin/scalars/scalars?run=${encodeURIComponent(run)}&tag=${encodeURIComponent(tag)}`;
  const points = await waitFor(
    () => api(url) as Promise<[number, number, number][]>,
    (p) => p.length >= count,
  );
  return points.map(([, step, v]) => [step, v]);
}

describe("tensorboard --logdir", () => {
  test("lists both runs", async () => {
    const runs = await waitFor(
      () => api("/data/runs") as Promise<string[]>,
      (r) => r.includes("writer") && r.includes(trainerRun),
    );
    expect(runs.sort()).toEqual(["writer", trainerRun].sort());
  });

  test("scalar tags and values of the writer's run", async () => {
    type Tags = Record<string, Record<string, unknown>>;
    const tags = await waitFor(
      () => api("/data/plugin/scalars/tags") as Promise<Tags>,
      (t) => Object.keys(t.writer ?? {}).length === 3,
    );
    expect(Object.keys(tags.writer!).sort()).toEqual(["metric/0", "metric/1", "metric/2"]);
    for (let t = 0; t < 3; t++) {
      expect(await scalars("writer", `metric/${t}`, 50)).toEqual(
        Array.from({ length: 50 }, (_, step) => [step * 10, Math.fround(value(t, step))]),
      );
    }
  });

  test("the Trainer run's HF tags, at the logged steps", async () => {
    type Tags = Record<string, Record<string, unknown>>;
    const tags = await waitFor(
      () => api("/data/plugin/scalars/tags") as Promise<Tags>,
      (t) => "train/train_loss" in (t[trainerRun] ?? {}),
    );
    expect(Object.keys(tags[trainerRun]!)).toEqual(
      expect.arrayContaining([
        "train/loss",
        "train/grad_norm",
        "train/learning_rate",
        "train/epoch",
        "eval/loss",
        "eval/runtime",
        "train/train_loss",
        "train/train_runtime",
        "train/total_flos",
      ]),
    );
    const logged = trainer.state.logHistory.filter((e) => "loss" in e);
    expect(await scalars(trainerRun, "train/loss", logged.length)).toEqual(
      logged.map((e) => [e.step, Math.fround(e.loss as number)]),
    );
    expect((await scalars(trainerRun, "eval/loss", 2)).map(([step]) => step)).toEqual([3, 6]);
  });

  test("text and histograms", async () => {
    const text = (await waitFor(
      () => api("/data/plugin/text/tags") as Promise<Record<string, string[]>>,
      (t) => Boolean(t.writer && t[trainerRun]),
    )) as Record<string, string[]>;
    expect(text.writer).toEqual(["notes/text_summary"]);
    expect(text[trainerRun]).toEqual(
      expect.arrayContaining(["args/text_summary", "model_config/text_summary"]),
    );
    const note = (await api("/data/plugin/text/text?run=writer&tag=notes%2Ftext_summary")) as {
      step: number;
      text: string;
    }[];
    expect(note[0]!.text).toContain("<strong>hello</strong> from trainkit");
    const histograms = (await api("/data/plugin/histograms/tags")) as Record<string, object>;
    expect(Object.keys(histograms.writer!)).toEqual(["weights"]);
  });

  test("the HParams dashboard lists both runs as sessions with their hyperparameters", async () => {
    type Groups = {
      sessionGroups: {
        name: string;
        hparams: Record<string, unknown>;
        sessions: { status: string }[];
      }[];
    };
    const body = {
      experimentName: "",
      allowedStatuses: ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
      colParams: [],
      startIndex: 0,
      sliceSize: 100,
    };
    const groups = await waitFor(
      () => api("/data/plugin/hparams/session_groups", body) as Promise<Groups>,
      (g) => g.sessionGroups.length === 2,
    );
    const byName = new Map(groups.sessionGroups.map((g) => [g.name, g]));
    expect(byName.get("writer")!.hparams).toEqual({
      learning_rate: 0.001,
      optim: "sgd",
      use_bias: true,
    });
    expect(byName.get(trainerRun)!.hparams).toMatchObject({
      learning_rate: trainer.args.learningRate,
      max_steps: 6,
      optim: trainer.args.optim,
    });
    for (const group of groups.sessionGroups)
      expect(group.sessions[0]!.status).toBe("STATUS_SUCCESS");
  });
});

// EventFileWriter against TensorBoard's own reader: every file CRC-checked, every value read back.
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { EventFileWriter, crc32c, maskedCrc32c } from "../src/index.js";
import {
  readWithTensorBoard,
  scalarPoints,
  tensorboardXHistogram,
  type ReadValue,
} from "./helpers.js";

const work = mkdtempSync(join(tmpdir(), "trainkit-tb-writer-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const quiet = { onWarning: () => {} };

describe("format", () => {
  test("CRC-32C and TFRecord's mask: the spec's vectors", () => {
    const data = new TextEncoder().encode("123456789");
    expect(crc32c(data)).toBe(0xe3069283);
    expect(maskedCrc32c(data)).toBe(0xc78ab0e5);
    // Slice-by-8 agrees with byte-at-a-time over every alignment and length.
    const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * 131 + 7) & 255);
    for (let start = 0; start < 9; start++)
      for (const end of [start, start + 1, start + 7, start + 8, start + 9, 300]) {
        let byByte = 0;
        for (let i = start; i < end; i++) byByte = crc32c(bytes, i, i + 1, byByte);
        expect(crc32c(bytes, start, end)).toBe(byByte);
      }
  });

  test("a scalar record is byte for byte the spec's (and torch's) encoding", () => {
    const writer = new EventFileWriter(join(work, "vector"), quiet);
    writer.addScalar("train/loss", 0.5, 10, 1.5);
    writer.close();
    const file = readFileSync(writer.path);
    const first = file.readUInt32LE(0);
    const record = file.subarray(16 + first);
    const length = record.readUInt32LE(0);
    expect(record.readUInt32LE(4)).toBe(0);
    expect(record.subarray(12, 12 + length).toString("hex")).toBe(
      "09000000000000f83f100a2a130a110a0a747261696e2f6c6f7373150000003f",
    );
    expect(record.readUInt32LE(8)).toBe(maskedCrc32c(record.subarray(0, 8)));
    expect(record.readUInt32LE(12 + length)).toBe(maskedCrc32c(record.subarray(12, 12 + length)));
    expect(record.length).toBe(16 + length);
  });

  test("file name: events.out.tfevents.<10-digit secs>.<host>.<pid>.<n><suffix>", () => {
    const before = Math.floor(Date.now() / 1000);
    const a = new EventFileWriter(join(work, "names"), { ...quiet, filenameSuffix: ".v2" });
    const b = new EventFileWriter(join(work, "names"), quiet);
    a.close();
    b.close();
    const pattern = /^events\.out\.tfevents\.(\d{10})\.(.+)\.(\d+)\.(\d+)(\.v2)?$/;
    const [, secs, host, pid, n, suffix] = basename(a.path).match(pattern)!;
    expect(Number(secs)).toBeGreaterThanOrEqual(before);
    expect(host).toBe(hostname());
    expect(Number(pid)).toBe(process.pid);
    expect(suffix).toBe(".v2");
    expect(Number(basename(b.path).match(pattern)![4])).toBe(Number(n) + 1);
  });

  test("files of one directory sort in creation order (TensorBoard reads them by name)", () => {
    const dir = join(work, "order");
    const paths = Array.from({ length: 12 }, () => {
      const writer = new EventFileWriter(dir, quiet);
      writer.close();
      return basename(writer.path);
    });
    expect(readdirSync(dir).sort()).toEqual(paths);
  });
});

describe("read back by TensorBoard", () => {
  const dir = join(work, "all-kinds");
  const scalars: { tag: string; step: number; value: number | boolean }[] = [];
  const histogramValues = [
    0.1, -0.2, 0.3, 0, 5, -7.5, 1e-13, 123456.789, -0.0001, 2.5e-9, 42, 42, 42, -3.25,
  ];
  const texts = [
    { tag: "notes", text: "plain", step: 0 },
    { tag: "notes", text: "ünïcödé ✓ — 日本語", step: 4 },
    {
      tag: "args",
      text: JSON.stringify({ learning_rate: 5e-5, output_dir: "out" }, null, 2),
      step: 0,
    },
  ];
  let result: ReturnType<typeof readWithTensorBoard>;

  test("scalars, text, a histogram and an hparams session", () => {
    const writer = new EventFileWriter(dir, quiet);
    const tags = ["train/loss", "train/learning_rate", "eval/accuracy", "odd tag/with spaces"];
    const special = [5e-5, -1, 0, 1e30, 16777217, 3.141592653589793, -2.5e-38, true, false];
    let k = 0;
    for (let step = 0; step < 300; step++)
      for (const tag of tags) {
        const value = k < special.length ? special[k]! : Math.sin(k) * 10 ** ((k % 13) - 6);
        k++;
        expect(writer.addScalar(tag, value, step * 5)).toBe(true);
        scalars.push({ tag, step: step * 5, value });
      }
    // A big step (more than 32 bits) and the same step twice (HF writes train/epoch twice).
    writer.addScalar("train/epoch", 1, 2 ** 40);
    writer.addScalar("train/epoch", 1.5, 2 ** 40);
    scalars.push({ tag: "train/epoch", step: 2 ** 40, value: 1 });
    scalars.push({ tag: "train/epoch", step: 2 ** 40, value: 1.5 });
    for (const { tag, text, step } of texts) writer.addText(tag, text, step);
    writer.addHistogram("weights", histogramValues, 7);
    writer.addHparams(
      { learning_rate: 5e-5, optim: "adamw", fp16: false, seed: 42 },
      { groupName: "g1", startTime: 1700000000.5 },
    );
    writer.endHparams("success", 1700000100.25);
    writer.close();

    result = readWithTensorBoard(dir);
    expect(result.files).toHaveLength(1);
    const [file] = result.files;
    expect(file!.end).toBe("eof"); // every record read, every CRC verified
    expect(file!.events[0]).toMatchObject({ step: 0, file_version: "brain.Event:2" });
    expect(file!.records).toBe(1 + scalars.length + texts.length + 1 + 2);

    // Every scalar, in order, at its step, as float32.
    for (const tag of new Set(scalars.map((s) => s.tag))) {
      const expected = scalars
        .filter((s) => s.tag === tag)
        .map((s) => [s.step, Math.fround(Number(s.value))]);
      expect(scalarPoints(result.files, tag)).toEqual(expected);
    }
    // The EventAccumulator (TensorBoard's ingestion, with data_compat) sees them as scalars.
    const run = result.runs["."]!;
    expect(run["train/loss"]!.plugin).toBe("scalars");
    expect(run["train/loss"]!.points.map(([step, value]) => [step, value])).toEqual(
      scalars
        .filter((s) => s.tag === "train/loss")
        .map((s) => [s.step, Math.fround(Number(s.value))]),
    );
    expect(run["odd tag/with spaces"]!.points).toHaveLength(300);
  });

  test("text: the text plugin, tag <tag>/text_summary, a DT_STRING tensor of shape [1]", () => {
    const values = result.files[0]!.events.flatMap((e) =>
      (e.values ?? []).map((v) => ({ ...v, step: e.step })),
    );
    const textValues = values.filter((v) => v.plugin === "text");
    expect(textValues.map((v) => [v.tag, v.step, v.strings])).toEqual(
      texts.map((t) => [`${t.tag}/text_summary`, t.step, [t.text]]),
    );
    for (const v of textValues) expect(v).toMatchObject({ kind: "tensor", dtype: 7, shape: [1] });
    const run = result.runs["."]!;
    expect(run["notes/text_summary"]!.points.map(([step, value]) => [step, value])).toEqual([
      [0, ["plain"]],
      [4, ["ünïcödé ✓ — 日本語"]],
    ]);
  });

  test("histogram: the same buckets as tensorboardX (torch's layout)", () => {
    const histo = result.files[0]!.events.flatMap((e) => e.values ?? []).find(
      (v) => v.tag === "weights",
    )!;
    expect(histo.kind).toBe("histo");
    const expected = tensorboardXHistogram(histogramValues);
    const ours = histo.histo!;
    expect(ours.bucket_limit).toEqual(expected.bucket_limit);
    expect(ours.bucket).toEqual(expected.bucket);
    for (const key of ["min", "max", "num"]) expect(ours[key]).toBe(expected[key]);
    // numpy sums pairwise: the last bits may differ.
    for (const key of ["sum", "sum_squares"]) {
      const [a, b] = [ours[key] as number, expected[key] as number];
      expect(Math.abs(a - b)).toBeLessThanOrEqual(1e-12 * Math.abs(b));
    }
    expect(result.runs["."]!.weights!.plugin).toBe("histograms");
  });

  test("hparams: session_start_info and session_end_info of the hparams plugin", () => {
    const values = result.files[0]!.events.flatMap((e) => e.values ?? []);
    const byTag = (tag: string) => values.find((v) => v.tag === tag) as ReadValue;
    expect(byTag("_hparams_/session_start_info")).toMatchObject({
      plugin: "hparams",
      kind: "tensor",
      dtype: 1,
      shape: [0],
      hparams_data: {
        session_start_info: {
          hparams: { learning_rate: 5e-5, optim: "adamw", fp16: false, seed: 42 },
          group_name: "g1",
          start_time_secs: 1700000000.5,
        },
      },
    });
    expect(byTag("_hparams_/session_end_info").hparams_data).toEqual({
      session_end_info: { status: "STATUS_SUCCESS", end_time_secs: 1700000100.25 },
    });
  });
});

test("hparams with an Experiment record declaring the columns and metrics", () => {
  const dir = join(work, "experiment");
  const writer = new EventFileWriter(dir, quiet);
  writer.addHparams(
    { lr: 0.1, optim: "sgd", nesterov: true },
    { experimentMetrics: ["eval/loss"], startTime: 1700000000 },
  );
  writer.close();
  const values = readWithTensorBoard(dir).files[0]!.events.flatMap((e) => e.values ?? []);
  expect(values.map((v) => v.tag)).toEqual([
    "_hparams_/experiment",
    "_hparams_/session_start_info",
  ]);
  expect(values[0]!.hparams_data).toEqual({
    experiment: {
      time_created_secs: 1700000000,
      hparam_infos: [
        { name: "lr", type: "DATA_TYPE_FLOAT64" },
        { name: "optim", type: "DATA_TYPE_STRING" },
        { name: "nesterov", type: "DATA_TYPE_BOOL" },
      ],
      metric_infos: [{ name: { tag: "eval/loss" } }],
    },
  });
});

describe("steps", () => {
  test("a step lower than the tag's last one is dropped, with one warning per tag", () => {
    const warnings: string[] = [];
    const dir = join(work, "steps");
    const writer = new EventFileWriter(dir, { onWarning: (m) => warnings.push(m) });
    expect(writer.addScalar("a", 1, 10)).toBe(true);
    expect(writer.addScalar("a", 2, 10)).toBe(true); // equal: kept
    expect(writer.addScalar("a", 3, 9)).toBe(false);
    expect(writer.addScalar("a", 4, 2)).toBe(false);
    expect(writer.addScalar("b", 5, 3)).toBe(true); // per tag
    expect(writer.addText("t", "x", 5)).toBe(true);
    expect(writer.addText("t", "y", 4)).toBe(false);
    expect(writer.addScalar("a", 6, 11)).toBe(true);
    writer.close();
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain('"a" at step 9, lower than its last step 10');
    expect(warnings[1]).toContain('"t/text_summary" at step 4');
    const { files } = readWithTensorBoard(dir);
    expect(scalarPoints(files, "a")).toEqual([
      [10, 1],
      [10, 2],
      [11, 6],
    ]);
    expect(scalarPoints(files, "b")).toEqual([[3, 5]]);
  });

  test("bad input is an error, not a corrupt file", () => {
    const writer = new EventFileWriter(join(work, "bad"), quiet);
    expect(() => writer.addScalar("x", 1, 1.5)).toThrow(/integer/);
    expect(() => writer.addScalar("x", 1, "3" as unknown as number)).toThrow(/integer/);
    expect(() => writer.addScalar("x", "1" as unknown as number, 1)).toThrow(/number or a boolean/);
    expect(() => writer.addHistogram("h", [], 1)).toThrow(/finite value/);
    writer.close();
    expect(() => writer.addScalar("x", 1, 2)).toThrow(/closed/);
    expect(readWithTensorBoard(join(work, "bad")).files[0]!.records).toBe(1);
  });
});

describe("buffering", () => {
  test("nothing is written on the add path; the unref'd timer writes in the background", async () => {
    const dir = join(work, "timer");
    const writer = new EventFileWriter(dir, { ...quiet, flushIntervalMs: 50 });
    const headerSize = statSync(writer.path).size;
    for (let i = 0; i < 100; i++) writer.addScalar("train/loss", i / 100, i);
    expect(statSync(writer.path).size).toBe(headerSize); // buffered in memory
    const deadline = Date.now() + 5000;
    while (statSync(writer.path).size === headerSize && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    // Readable while the writer is still open: every record whole.
    const { files } = readWithTensorBoard(dir);
    expect(files[0]!.end).toBe("eof");
    expect(scalarPoints(files, "train/loss")).toHaveLength(100);
    writer.close();
  });

  test("large volumes cross chunks, background writes and the memory bound intact", () => {
    const dir = join(work, "volume");
    const writer = new EventFileWriter(dir, {
      ...quiet,
      flushThresholdBytes: 16 * 1024,
      maxBufferedBytes: 64 * 1024,
    });
    writer.addText("long", "x".repeat(150_000), 0); // one record larger than the first chunk
    const tags = Array.from({ length: 20 }, (_, t) => `metric/${t}`);
    for (let step = 0; step < 600; step++)
      for (let t = 0; t < tags.length; t++) writer.addScalar(tags[t]!, step + t / 100, step);
    writer.close();
    // (TensorBoard's reader checks CRCs in pure Python, about 3 s per MB: volumes stay small.)
    const { files } = readWithTensorBoard(dir);
    expect(files[0]!.end).toBe("eof");
    expect(files[0]!.records).toBe(1 + 1 + 12_000);
    const points = scalarPoints(files, "metric/7");
    expect(points).toHaveLength(600);
    expect(points[432]).toEqual([432, Math.fround(432.07)]);
    expect(readdirSync(dir)).toHaveLength(1);
  });
});

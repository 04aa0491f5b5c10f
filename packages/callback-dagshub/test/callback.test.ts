// DagsHubCallback in real Trainer runs against the real MLflow server mounted under
// /<owner>/<repo>.mlflow on a local DagsHub host (testkit's startDagsHubFake: Basic auth required,
// the content API's branch head and multipart upload). Metrics are read back through MLflow's
// REST API; uploads through the fake's commits. The testkit's conformance suite runs here too.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, sep } from "node:path";
import * as tf from "@tensorflow/tfjs";
import {
  Trainer,
  TrainingArguments,
  setLogger,
  type TrainerState,
  type TrainingArgumentsOptions,
} from "@trainkit/core";
import { DeliveryError, Outbox, listOutboxes } from "@trainkit/core/plugin";
import { basicAuth, createMlflowClient, sanitizeMetricKey } from "@trainkit/callback-mlflow";
import {
  assertConformance,
  mlflowRest,
  startDagsHubFake,
  startMlflowServer,
  type DagsHubFake,
  type MlflowServer,
} from "@trainkit/testkit";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "vitest";
import dagshub, {
  DagsHubCallback,
  DagsHubTransport,
  dagshubTransportFromMeta,
  type RepoUploadRecord,
} from "../src/index.js";
import { captureLogger, deliveryContext, filesUnder, type Captured } from "./helpers.js";

const OWNER = "alice";
const REPO = "demo";
const TOKEN = "dh-token-3c9e71";
const work = mkdtempSync(join(tmpdir(), "trainkit-dagshub-"));
const savedEnv = { ...process.env };
let server: MlflowServer;
let fake: DagsHubFake;
let rest: ReturnType<typeof mlflowRest>;
let log: Captured;
let n = 0;

beforeAll(async () => {
  await tf.setBackend("cpu");
  server = await startMlflowServer();
  fake = await startDagsHubFake({
    mlflow: server.url,
    owner: OWNER,
    repo: REPO,
    username: OWNER,
    token: TOKEN,
    branches: ["main", "exp"],
  });
  rest = mlflowRest(server.url);
}, 120_000);
afterAll(async () => {
  await fake?.stop();
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});
beforeEach(() => {
  for (const key of Object.keys(process.env))
    if (/^(MLFLOW_|HF_|DAGSHUB_|TRAINKIT_)/.test(key) || key === "BRANCH") delete process.env[key];
  process.env.MLFLOW_TRACKING_URI = fake.mlflowUrl;
  process.env.MLFLOW_TRACKING_USERNAME = OWNER;
  process.env.MLFLOW_TRACKING_PASSWORD = TOKEN;
  process.env.DAGSHUB_CLIENT_HOST = fake.url;
  process.env.MLFLOW_EXPERIMENT_NAME = `dagshub-${++n}-${Date.now()}`;
  log = captureLogger();
  setLogger(log.logger);
});
afterEach(() => {
  setLogger();
  process.env = { ...savedEnv };
});

const rows = Array.from({ length: 16 }, (_, i) => ({ x: [i / 16, 1 - i / 16], y: i / 8 }));

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
    evalDataset: rows.slice(0, 4),
    plugins: [dagshub],
    args: new TrainingArguments({
      perDeviceTrainBatchSize: 4,
      saveStrategy: "no",
      disableTqdm: true,
      reportTo: ["dagshub"],
      backend: "cpu",
      ...args,
    }),
    ...extra,
  });
}

function callbackOf(trainer: Trainer): DagsHubCallback {
  const callback = trainer.callbackHandler.callbacks.find((c) => c instanceof DagsHubCallback);
  if (!callback) throw new Error("no DagsHubCallback in the Trainer");
  return callback as DagsHubCallback;
}

/** Every numeric value of the log history as [key, step, value]. */
function expectedPoints(state: TrainerState): [string, number, number][] {
  const out: [string, number, number][] = [];
  for (const entry of state.logHistory) {
    const step = entry.step as number;
    for (const [key, value] of Object.entries(entry))
      if (key !== "step" && typeof value === "number")
        out.push([sanitizeMetricKey(key), step, value]);
  }
  return out;
}

/** The output folder's files as the repo should hold them: `artifacts/<rel>` → bytes. */
function expectedTree(outputDir: string): Map<string, Buffer> {
  const tree = new Map<string, Buffer>();
  for (const file of filesUnder(outputDir)) {
    const rel = relative(outputDir, file).split(sep).join("/");
    if (rel.startsWith(".trainkit/")) continue;
    tree.set(`artifacts/${rel}`, readFileSync(file));
  }
  return tree;
}

const basic = `Basic ${Buffer.from(`${OWNER}:${TOKEN}`).toString("base64")}`;

describe("tracking", () => {
  test("metrics, params, checkpoints (HF_MLFLOW_LOG_ARTIFACTS) and the run's end go to /<owner>/<repo>.mlflow with Basic auth; nothing is committed to the repo with HF_DAGSHUB_LOG_ARTIFACTS off", async () => {
    process.env.HF_MLFLOW_LOG_ARTIFACTS = "1";
    const outputDir = join(work, "tracking");
    const before = fake.mlflowRequests.length;
    const commits = fake.commits.length;
    const apiCalls = fake.apiRequests.length;
    const trainer = makeTrainer({
      outputDir,
      numTrainEpochs: 2,
      loggingSteps: 1,
      evalStrategy: "steps",
      evalSteps: 4,
      saveStrategy: "steps",
      saveSteps: 4,
      runName: "dagshub-run",
    });
    await trainer.train();
    const callback = callbackOf(trainer);
    expect(callback.repository).toBe(`${OWNER}/${REPO}`);
    const runId = callback.runId!;
    expect(runId).toMatch(/^[0-9a-f]{32}$/);

    const run = await rest.getRun(runId);
    // trainkit ends the run at train end (HF's DagsHubCallback leaves it RUNNING).
    expect(run.info.status).toBe("FINISHED");
    expect(run.info.run_name).toBe("dagshub-run");
    expect(run.data.params.learning_rate).toBe("5e-05");
    const points = await rest.allMetricPoints(runId);
    const expected = expectedPoints(trainer.state);
    expect(expected.length).toBeGreaterThan(20);
    for (const [key, step, value] of expected)
      expect(
        points[key]?.some((p) => p.step === step && Math.abs(p.value - value) < 1e-6),
        `${key}@${step}`,
      ).toBe(true);

    // Everything went through the mount, with the user name and token as Basic auth.
    const seen = fake.mlflowRequests.slice(before);
    expect(seen.length).toBeGreaterThan(3);
    for (const request of seen) {
      expect(request.path.startsWith(`/${OWNER}/${REPO}.mlflow/api/2.0/mlflow`)).toBe(true);
      expect(request.authorization).toBe(basic);
      // 404: experiments/get-by-name of the new experiment (RESOURCE_DOES_NOT_EXIST), then created.
      if (request.path.includes("/experiments/get-by-name"))
        expect([200, 404]).toContain(request.status);
      else expect(request.status, request.path).toBe(200);
    }
    // HF_MLFLOW_LOG_ARTIFACTS (as MLflow): checkpoints through the repo's MLflow artifact proxy.
    expect(
      seen.some(
        (r) => r.method === "PUT" && r.path.includes(".mlflow/api/2.0/mlflow-artifacts/artifacts/"),
      ),
    ).toBe(true);
    const artifacts = await rest.listArtifacts(runId);
    for (const step of [4, 8])
      expect(artifacts.some((a) => a.path === `checkpoint-${step}/trainer_state.json`)).toBe(true);
    // HF_DAGSHUB_LOG_ARTIFACTS off: no content API call, no commit.
    expect(fake.apiRequests.length).toBe(apiCalls);
    expect(fake.commits.length).toBe(commits);

    // The spool folder is the plugin's own (trainkit sync finds the dagshub plugin for it);
    // the checkpoint keeps the run under HF's class name.
    const [found, ...others] = listOutboxes(outputDir);
    expect(others).toEqual([]);
    expect(found!.integration).toBe("dagshub");
    expect(found!.pending).toBe(0);
    expect(found!.meta.trackingUri).toBe(fake.mlflowUrl);
    const saved = JSON.parse(
      readFileSync(join(outputDir, "checkpoint-8", "trainer_state.json"), "utf8"),
    ) as { stateful_callbacks: Record<string, { attributes: { stream?: string } }> };
    expect(saved.stateful_callbacks.DagsHubCallback?.attributes.stream).toBe(callback.streamId);
    expect(found!.stream).toBe(callback.streamId);
  });

  test("wrong credentials: training goes on, the records stay in the spool with a clear message", async () => {
    process.env.MLFLOW_TRACKING_PASSWORD = "wrong-password-8d7f";
    process.env.TRAINKIT_OUTBOX_DEADLINE_MS = "2000";
    const outputDir = join(work, "unauthorized");
    const trainer = makeTrainer({ outputDir, maxSteps: 2, loggingSteps: 1 });
    await trainer.train();
    const [found] = listOutboxes(outputDir);
    expect(found!.pending).toBeGreaterThan(0);
    const text = log.warnings.join("\n");
    expect(text).toMatch(/HTTP 401/);
    expect(text).toMatch(/trainkit sync/);
    expect(text).not.toContain("wrong-password-8d7f");
  });
});

describe("HF_DAGSHUB_LOG_ARTIFACTS", () => {
  test("at train end the output folder (not .trainkit) is committed into artifacts/ on BRANCH, in commits of maxFilesPerCommit; DAGSHUB_USER_TOKEN is sent as Bearer; the run is FINISHED", async () => {
    process.env.HF_DAGSHUB_LOG_ARTIFACTS = "1";
    process.env.BRANCH = "exp";
    process.env.DAGSHUB_USER_TOKEN = TOKEN;
    const outputDir = join(work, "upload");
    mkdirSync(join(outputDir, "notes"), { recursive: true });
    writeFileSync(join(outputDir, "notes", 'readme "quoted" ü.txt'), "hello");
    const mainHead = fake.head("main")!.id;
    const firstCommit = fake.commits.length;
    const firstApi = fake.apiRequests.length;
    const trainer = makeTrainer(
      {
        outputDir,
        maxSteps: 4,
        loggingSteps: 2,
        saveStrategy: "steps",
        saveSteps: 2,
        reportTo: "none",
      },
      { callbacks: [new DagsHubCallback({ maxFilesPerCommit: 4 })] },
    );
    await trainer.train();
    const callback = callbackOf(trainer);
    expect((await rest.getRun(callback.runId!)).info.status).toBe("FINISHED");

    const made = fake.commits.slice(firstCommit);
    const expected = expectedTree(outputDir);
    expect(expected.size).toBeGreaterThan(8);
    expect(made.length).toBe(Math.ceil(expected.size / 4));
    // Each commit: direct, the DagsHub client's fields, on the head it was based on.
    let parent = made[0]!.fields.last_commit;
    for (const [i, commit] of made.entries()) {
      expect(commit.branch).toBe("exp");
      expect(commit.dir).toBe("artifacts");
      expect(commit.files.length).toBeLessThanOrEqual(4);
      expect(commit.fields).toMatchObject({
        commit_choice: "direct",
        versioning: "dvc",
        is_dvc_dir: "True",
        last_commit: parent,
      });
      expect(commit.message).toContain(`${i + 1}/${made.length}]`);
      parent = commit.id;
    }
    // The repo holds exactly the output folder's files, byte for byte.
    const tree = fake.tree("exp");
    expect([...tree.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [path, data] of expected) expect(tree.get(path)?.equals(data), path).toBe(true);
    expect([...tree.keys()].some((p) => p.includes(".trainkit"))).toBe(false);
    expect(tree.has('artifacts/notes/readme "quoted" ü.txt')).toBe(true);
    // Bearer with DAGSHUB_USER_TOKEN; main untouched; the spool copies are gone.
    const calls = fake.apiRequests.slice(firstApi);
    expect(calls.every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);
    expect(calls.filter((r) => r.method === "PUT").every((r) => r.status === 200)).toBe(true);
    expect(fake.head("main")!.id).toBe(mainHead);
    const [found] = listOutboxes(outputDir);
    expect(found!.pending).toBe(0);
    expect(filesUnder(join(found!.dir, "repo-upload"))).toEqual([]);
  });

  test("an upload refused (bad DagsHub token) stays in the spool; the plugin's transport hook (trainkit sync) commits it later", async () => {
    process.env.HF_DAGSHUB_LOG_ARTIFACTS = "true";
    process.env.DAGSHUB_USER_TOKEN = "bad-token-5e0a2b";
    process.env.TRAINKIT_OUTBOX_DEADLINE_MS = "3000";
    const outputDir = join(work, "upload-later");
    const firstCommit = fake.commits.length;
    const trainer = makeTrainer({
      outputDir,
      maxSteps: 2,
      loggingSteps: 1,
      saveStrategy: "steps",
      saveSteps: 2,
    });
    await trainer.train();
    const runId = callbackOf(trainer).runId!;
    expect((await rest.getRun(runId)).info.status).toBe("FINISHED");
    expect(fake.commits.length).toBe(firstCommit);
    expect(log.warnings.join("\n")).toMatch(/HTTP 401[\s\S]*DAGSHUB_USER_TOKEN/);
    const [found] = listOutboxes(outputDir);
    expect(found!.pending).toBeGreaterThan(0);
    expect(JSON.stringify(found!.meta)).not.toMatch(/token|password/i);

    // What `trainkit sync <outputDir>` does, with the right token in env this time.
    const transport = await dagshub.transport!(found!.meta, {
      // The same servers as the training (credentials go only to those).
      env: {
        DAGSHUB_USER_TOKEN: TOKEN,
        DAGSHUB_CLIENT_HOST: fake.url,
        MLFLOW_TRACKING_URI: process.env.MLFLOW_TRACKING_URI,
        MLFLOW_TRACKING_USERNAME: OWNER,
        MLFLOW_TRACKING_PASSWORD: TOKEN,
      },
      logger: log.logger,
    });
    const outbox = Outbox.open({
      dir: found!.dir,
      integration: found!.integration,
      transport,
      logger: log.logger,
      flushIntervalMs: 0,
    });
    const report = await outbox.drain({ deadlineMs: 30_000 });
    await outbox.close();
    expect(report).toMatchObject({ pending: 0, rejected: 0 });
    expect(fake.commits.length).toBeGreaterThan(firstCommit);
    const tree = fake.tree("main");
    for (const [path, data] of expectedTree(outputDir))
      expect(tree.get(path)?.equals(data), path).toBe(true);
    const written = [
      log.warnings.join("\n"),
      log.infos.join("\n"),
      ...filesUnder(outputDir).map((f) => readFileSync(f, "latin1")),
    ];
    for (const text of written) {
      expect(text.includes(TOKEN)).toBe(false);
      expect(text.includes("bad-token-5e0a2b")).toBe(false);
    }
  });
});

describe("upload retries (not idempotent across commits)", () => {
  let n = 0;
  function setup(): { transport: DagsHubTransport; record: RepoUploadRecord } {
    const dir = join(work, `files-${++n}`);
    mkdirSync(join(dir, "sub"), { recursive: true });
    writeFileSync(join(dir, "a.txt"), `a${n}`);
    writeFileSync(join(dir, "sub", "b.bin"), Buffer.from([n, 0, 255]));
    const transport = new DagsHubTransport({
      client: createMlflowClient({ baseUrl: fake.mlflowUrl }),
      repoAuth: basicAuth(OWNER, TOKEN),
    });
    const marker = `[trainkit test/${n} 1/1]`;
    return {
      transport,
      record: {
        t: "dh",
        host: fake.url,
        owner: OWNER,
        repo: REPO,
        branch: "main",
        dest: "artifacts",
        dir,
        files: ["a.txt", "sub/b.bin"],
        message: `Upload ${marker}`,
        marker,
      },
    };
  }
  const puts = () => fake.apiRequests.filter((r) => r.method === "PUT").length;

  test("a commit whose response was lost is recognised at the branch head: no second commit", async () => {
    const { transport, record } = setup();
    const context = deliveryContext();
    const commits = fake.commits.length;
    const putsBefore = puts();
    fake.failUploads({ resetAfterCommit: { count: 1 } });
    const error = await transport.deliver([record], context).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeliveryError);
    expect((error as DeliveryError).kind).toBe("retry");
    expect(fake.commits.length).toBe(commits + 1);
    expect(context.current().dagshubUpload).toMatchObject({ marker: record.marker, sent: true });
    await transport.deliver([record], context);
    expect(fake.commits.length).toBe(commits + 1);
    expect(puts()).toBe(putsBefore + 1);
    expect(context.current().dagshubUpload).toBeUndefined();
    expect(existsSync(join(record.dir, "a.txt"))).toBe(false);
  });

  test("a 5xx is retried with the same last_commit", async () => {
    const { transport, record } = setup();
    const context = deliveryContext();
    const head = fake.head("main")!.id;
    const commits = fake.commits.length;
    fake.failUploads({ status: { status: 503, count: 1 } });
    const error = (await transport
      .deliver([record], context)
      .catch((e: unknown) => e)) as DeliveryError;
    expect(error.kind).toBe("retry");
    expect(error.status).toBe(503);
    expect(context.current().dagshubUpload).toMatchObject({ lastCommit: head, sent: true });
    await transport.deliver([record], context);
    expect(fake.commits.length).toBe(commits + 1);
    expect(fake.commits.at(-1)!.fields.last_commit).toBe(head);
    expect([...fake.tree("main").keys()]).toEqual(
      expect.arrayContaining(["artifacts/a.txt", "artifacts/sub/b.bin"]),
    );
  });

  test("a stale last_commit (someone else committed first) is refused by the server and sent again on the new head", async () => {
    const { transport, record } = setup();
    const old = fake.head("main")!.id;
    const context = deliveryContext({
      dagshubUpload: { marker: record.marker, lastCommit: old, sent: false },
    });
    const theirs = fake.pushExternal("main");
    const error = (await transport
      .deliver([record], context)
      .catch((e: unknown) => e)) as DeliveryError;
    expect(error.kind).toBe("retry");
    expect(error.message).toMatch(/moved/);
    expect(fake.commits.at(-1)!.id).toBe(theirs);
    await transport.deliver([record], context);
    expect(fake.commits.at(-1)!.fields.last_commit).toBe(theirs);
  });

  test("an unanswered upload after which the branch moved is set aside, not committed twice", async () => {
    const { transport, record } = setup();
    const old = fake.head("main")!.id;
    const context = deliveryContext({
      dagshubUpload: { marker: record.marker, lastCommit: old, sent: true },
    });
    fake.pushExternal("main");
    const commits = fake.commits.length;
    const error = (await transport
      .deliver([record], context)
      .catch((e: unknown) => e)) as DeliveryError;
    expect(error.kind).toBe("reject");
    expect(error.message).toMatch(/no duplicate commit/);
    expect(fake.commits.length).toBe(commits);
    expect(existsSync(join(record.dir, "a.txt"))).toBe(true);
  });

  test("without DagsHub credentials the MLflow ones are used, for the tracking server's origin only", async () => {
    const { record } = setup();
    const transport = new DagsHubTransport({
      client: createMlflowClient({ baseUrl: fake.mlflowUrl }),
      trackingAuth: basicAuth(OWNER, TOKEN),
    });
    const before = fake.apiRequests.length;
    // Another origin (same server, other name): no credentials go there.
    const elsewhere = (await transport
      .deliver([{ ...record, host: `http://localhost:${fake.port}` }], deliveryContext())
      .catch((e: unknown) => e)) as DeliveryError;
    expect(elsewhere.kind).toBe("halt");
    expect(fake.apiRequests.slice(before).every((r) => r.authorization === undefined)).toBe(true);
    await transport.deliver([record], deliveryContext());
    expect(fake.apiRequests.at(-1)).toMatchObject({
      method: "PUT",
      authorization: basic,
      status: 200,
    });
  });

  test("bad credentials and a missing branch halt delivery with what to check", async () => {
    const { record } = setup();
    const wrong = new DagsHubTransport({
      client: createMlflowClient({ baseUrl: fake.mlflowUrl }),
      repoAuth: basicAuth(OWNER, "not-the-token-77aa"),
    });
    const unauthorized = (await wrong
      .deliver([record], deliveryContext())
      .catch((e: unknown) => e)) as DeliveryError;
    expect(unauthorized.kind).toBe("halt");
    expect(unauthorized.message).toMatch(/HTTP 401.*DAGSHUB_USER_TOKEN/);
    expect(unauthorized.message).not.toContain("not-the-token-77aa");
    // A refused upload (no such branch, 404; no access, 403) is set aside with the server's
    // message: the MLflow records behind it go on (spec 2.5).
    const { transport } = setup();
    const missing = (await transport
      .deliver([{ ...record, branch: "nope" }], deliveryContext())
      .catch((e: unknown) => e)) as DeliveryError;
    expect(missing.kind).toBe("reject");
    expect(missing.message).toMatch(/HTTP 404.*branch "nope"/);
    fake.failUploads({ status: { status: 403, count: 1 } });
    const forbidden = (await transport
      .deliver([record], deliveryContext())
      .catch((e: unknown) => e)) as DeliveryError;
    expect(forbidden.kind).toBe("reject");
    expect(forbidden.message).toMatch(/refused the upload.*HTTP 403/);
  });

  test("trainkit sync: DagsHub credentials go only to DAGSHUB_CLIENT_HOST", async () => {
    const { record } = setup();
    const transport = dagshubTransportFromMeta(
      { trackingUri: fake.mlflowUrl, runId: "r" },
      { DAGSHUB_USER_TOKEN: "dh-tok-5", DAGSHUB_CLIENT_HOST: "https://dagshub.example" },
    );
    const before = fake.apiRequests.length;
    const refused = (await transport
      .deliver([record], deliveryContext())
      .catch((e: unknown) => e)) as DeliveryError;
    expect(refused.kind).toBe("halt");
    expect(refused.message).toContain(
      `the spool's upload is for ${new URL(fake.url).origin}, DAGSHUB_CLIENT_HOST is https://dagshub.example`,
    );
    expect(fake.apiRequests.length).toBe(before);
  });
});

test("the dagshub plugin passes the conformance suite (uploads on)", async () => {
  const commits = fake.commits.length;
  const report = await assertConformance(dagshub, {
    env: {
      MLFLOW_TRACKING_URI: fake.mlflowUrl,
      MLFLOW_TRACKING_USERNAME: OWNER,
      MLFLOW_TRACKING_PASSWORD: TOKEN,
      MLFLOW_EXPERIMENT_NAME: "conformance",
      DAGSHUB_CLIENT_HOST: fake.url,
      HF_DAGSHUB_LOG_ARTIFACTS: "1",
      HF_MLFLOW_LOG_ARTIFACTS: "1",
    },
    secrets: [TOKEN],
  });
  expect(report.failed).toEqual([]);
  expect(report.notes.map((note) => note.message).join("\n")).toMatch(/dagshub\.init\(\)/);
  expect(report.ok).toBe(true);
  expect(fake.commits.length).toBeGreaterThan(commits);
}, 120_000);

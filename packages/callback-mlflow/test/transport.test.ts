// The transport driven by hand (batchSize/deliver as the outbox calls them): against a
// recording HTTP server for headers and error mapping, and against the real MLflow server for
// what is stored.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DeliveryError } from "@trainkit/core/plugin";
import { mlflowRest, startMlflowServer, type MlflowServer } from "@trainkit/testkit";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  MlflowClient,
  authFromEnv,
  basicAuth,
  bearerAuth,
  createMlflowTransport,
  endRecord,
  metricRecord,
  paramRecord,
  tagRecord,
  transportFromMeta,
  type MlflowRecord,
} from "../src/index.js";
import { captureLogger, deliveryContext, recordingServer } from "./helpers.js";

const work = mkdtempSync(join(tmpdir(), "trainkit-mlflow-transport-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function deliveryFailure(promise: Promise<unknown>): Promise<DeliveryError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(DeliveryError);
    return error as DeliveryError;
  }
  throw new Error("expected a DeliveryError");
}

describe("HTTP behaviour (recording server)", () => {
  test("Basic beats Bearer on the wire; credentials never in messages", async () => {
    const server = await recordingServer(() => ({
      status: 403,
      body: JSON.stringify({ error_code: "PERMISSION_DENIED", message: "no" }),
    }));
    try {
      const auth = authFromEnv({
        MLFLOW_TRACKING_USERNAME: "alice",
        MLFLOW_TRACKING_PASSWORD: "pw-secret-123",
        MLFLOW_TRACKING_TOKEN: "tok-secret-456",
      });
      const client = new MlflowClient({ baseUrl: server.url, auth: auth! });
      const error = await deliveryFailure(
        createMlflowTransport({ client }).deliver(
          [metricRecord("loss", 1, 1)],
          deliveryContext({ runId: "abc" }),
        ),
      );
      expect(server.requests[0]?.headers.authorization).toBe(
        `Basic ${Buffer.from("alice:pw-secret-123").toString("base64")}`,
      );
      expect(error.kind).toBe("halt");
      expect(error.message).toMatch(/403/);
      const text = JSON.stringify({
        message: error.message,
        stack: error.stack,
        cause: error.cause,
      });
      expect(text).not.toContain("pw-secret-123");
      expect(text).not.toContain(Buffer.from("alice:pw-secret-123").toString("base64"));
    } finally {
      await server.close();
    }
  });

  test("Bearer when only a token is set; no Authorization to another host", async () => {
    const server = await recordingServer(() => ({ status: 200, body: "{}" }));
    try {
      const client = new MlflowClient({ baseUrl: server.url, auth: bearerAuth("tok-1") });
      await client.logBatch({ run_id: "r" });
      expect(server.requests[0]?.headers.authorization).toBe("Bearer tok-1");
      expect(server.requests[0]?.headers["content-type"]).toBe("application/json");
      // The artifact store on another origin does not get the tracking server's credentials.
      const other = new MlflowClient({ baseUrl: "http://127.0.0.2:9", auth: basicAuth("u", "p") });
      const file = join(work, "a.txt");
      writeFileSync(file, "x");
      await other.uploadArtifact(
        `${server.url}/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/a.txt`,
        file,
      );
      expect(server.requests[1]?.method).toBe("PUT");
      expect(server.requests[1]?.headers.authorization).toBeUndefined();
      expect(server.requests[1]?.body).toBe("x");
    } finally {
      await server.close();
    }
  });

  test("a 401 asks the auth provider to refresh once and repeats the request (Azure ML tokens)", async () => {
    const server = await recordingServer((request) =>
      request.headers.authorization === "Bearer fresh"
        ? { status: 200, body: "{}" }
        : { status: 401, body: '{"error_code":"UNAUTHENTICATED","message":"expired"}' },
    );
    try {
      let token = "stale";
      let refreshes = 0;
      const client = new MlflowClient({
        baseUrl: server.url,
        auth: {
          kind: "bearer",
          header: () => `Bearer ${token}`,
          refresh: () => {
            refreshes++;
            token = "fresh";
            return true;
          },
        },
      });
      await client.logBatch({ run_id: "r" });
      expect(refreshes).toBe(1);
      expect(server.requests.map((r) => r.headers.authorization)).toEqual([
        "Bearer stale",
        "Bearer fresh",
      ]);
      token = "revoked";
      const never = new MlflowClient({
        baseUrl: server.url,
        auth: { kind: "bearer", header: () => "Bearer nope", refresh: () => true },
      });
      await expect(never.logBatch({ run_id: "r" })).rejects.toMatchObject({
        status: 401,
        kind: "halt",
      });
    } finally {
      await server.close();
    }
  });

  test("429 with Retry-After -> retry after that; 503 -> retry; 400 -> reject with the server's message", async () => {
    const answers = [
      {
        status: 429,
        headers: { "retry-after": "7" },
        body: '{"error_code":"REQUEST_LIMIT_EXCEEDED","message":"slow down"}',
      },
      { status: 503, body: "<html>down</html>" },
      {
        status: 400,
        body: JSON.stringify({
          error_code: "INVALID_PARAMETER_VALUE",
          message: "Invalid value for metrics[0]",
        }),
      },
      { status: 401, body: '{"error_code":"UNAUTHENTICATED","message":"who?"}' },
      { status: 404, body: '{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"Run not found"}' },
      {
        status: 400,
        body: JSON.stringify({
          error_code: "INVALID_PARAMETER_VALUE",
          message: "The run r must be in the 'active' state. Current state is deleted.",
        }),
      },
    ];
    let i = 0;
    const server = await recordingServer(() => answers[i++] ?? { status: 200 });
    try {
      const transport = createMlflowTransport({
        client: new MlflowClient({ baseUrl: server.url }),
      });
      const context = deliveryContext({ runId: "r" });
      // runs/get first (reattach): answer it.
      answers.unshift({
        status: 200,
        body: JSON.stringify({
          run: { info: { run_id: "r", experiment_id: "1", lifecycle_stage: "active" }, data: {} },
        }),
      });
      const batch: MlflowRecord[] = [metricRecord("loss", 1, 1)];
      const e429 = await deliveryFailure(transport.deliver(batch, context));
      expect([e429.kind, e429.retryAfterMs, e429.status]).toEqual(["retry", 7000, 429]);
      const e503 = await deliveryFailure(transport.deliver(batch, context));
      expect(e503.kind).toBe("retry");
      const e400 = await deliveryFailure(transport.deliver(batch, context));
      expect(e400.kind).toBe("reject");
      expect(e400.message).toContain("Invalid value for metrics[0]");
      const e401 = await deliveryFailure(transport.deliver(batch, context));
      expect(e401.kind).toBe("halt");
      expect(e401.message).toMatch(/MLFLOW_TRACKING_TOKEN/);
      const e404 = await deliveryFailure(transport.deliver(batch, context));
      expect(e404.kind).toBe("halt");
      const deleted = await deliveryFailure(transport.deliver(batch, context));
      expect(deleted.kind).toBe("halt");
    } finally {
      await server.close();
    }
  });

  test("a refusal while opening the run halts, naming the call; it never rejects the data records", async () => {
    const refused = (path: string) =>
      recordingServer((request) =>
        request.url.includes(path)
          ? {
              status: 400,
              body: '{"error_code":"INVALID_PARAMETER_VALUE","message":"bad request"}',
            }
          : request.url.includes("get-by-name")
            ? { status: 200, body: '{"experiment":{"experiment_id":"1","name":"e"}}' }
            : { status: 200, body: '{"runs":[]}' },
      );
    const meta = (server: string) => ({
      trackingUri: server,
      stream: "s",
      createAttempted: true,
      create: { experimentName: "e", startTime: 1, tags: [] },
    });
    for (const path of ["/runs/create", "/experiments/get-by-name", "/runs/search"]) {
      const server = await refused(path);
      try {
        const transport = createMlflowTransport({
          client: new MlflowClient({ baseUrl: server.url }),
        });
        const error = await deliveryFailure(
          transport.deliver([metricRecord("loss", 1, 1)], deliveryContext(meta(server.url))),
        );
        expect([error.kind, error.status], path).toEqual(["halt", 400]);
        expect(error.message).toContain(path.slice(1));
        expect(error.message).toContain("opening the run");
      } finally {
        await server.close();
      }
    }
    const server = await refused("/runs/get");
    try {
      const error = await deliveryFailure(
        createMlflowTransport({ client: new MlflowClient({ baseUrl: server.url }) }).deliver(
          [paramRecord("p", "1")],
          deliveryContext({ trackingUri: server.url, runId: "r" }),
        ),
      );
      expect(error.kind).toBe("halt");
      expect(error.message).toContain("runs/get");
    } finally {
      await server.close();
    }
  });

  test("a 200 that is not MLflow's JSON halts: not an MLflow tracking server", async () => {
    const server = await recordingServer(() => ({
      status: 200,
      body: "<html>sign in</html>",
      headers: { "content-type": "text/html; charset=utf-8" },
    }));
    try {
      const client = new MlflowClient({
        baseUrl: server.url.replace("http://", "http://u:pw-77@"),
      });
      const error = await deliveryFailure(
        createMlflowTransport({ client }).deliver(
          [metricRecord("loss", 1, 1)],
          deliveryContext({ runId: "r" }),
        ),
      );
      expect(error.kind).toBe("halt");
      expect(error.message).toContain(
        `not an MLflow tracking server (${server.url} answered text/html`,
      );
      expect(error.message).not.toContain("pw-77");
    } finally {
      await server.close();
    }
  });

  test("trainkit sync: env credentials go only to the spool's server; MLFLOW_HTTP_REQUEST_* set the retry", async () => {
    const server = await recordingServer((request) =>
      request.url.includes("/runs/get")
        ? {
            status: 200,
            body: JSON.stringify({ run: { info: { run_id: "r", experiment_id: "1" }, data: {} } }),
          }
        : { status: 200, body: "{}" },
    );
    try {
      const meta = { trackingUri: server.url, runId: "r" };
      const send = async (env: Record<string, string>) => {
        const transport = transportFromMeta(meta, env);
        await transport.deliver([tagRecord("t", "v")], deliveryContext(meta));
        return server.requests.at(-1)!.headers.authorization;
      };
      // MLFLOW_TRACKING_URI unset: no credentials at all.
      expect(await send({ MLFLOW_TRACKING_TOKEN: "tok-1" })).toBeUndefined();
      // The spool's server: its credentials.
      expect(
        await send({ MLFLOW_TRACKING_TOKEN: "tok-1", MLFLOW_TRACKING_URI: `${server.url}/` }),
      ).toBe("Bearer tok-1");
      // Another server: refused, with both origins (no credentials) in the message.
      const before = server.requests.length;
      expect(() =>
        transportFromMeta(meta, {
          MLFLOW_TRACKING_TOKEN: "tok-1",
          MLFLOW_TRACKING_URI: "https://user:pw-99@other.example:8443/",
        }),
      ).toThrow(
        `The spool was written for ${server.url}, MLFLOW_TRACKING_URI points at https://other.example:8443: set it to the spool's server to deliver`,
      );
      expect(server.requests.length).toBe(before);
      expect(
        transportFromMeta(meta, {
          MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR: "0",
          MLFLOW_HTTP_REQUEST_MAX_RETRIES: "3",
        }).retry,
      ).toEqual({ baseMs: 100, reportAfter: 3 });
    } finally {
      await server.close();
    }
  });

  test("connection refused and timeouts are retried; the URL's credentials never appear", async () => {
    const refused = createMlflowTransport({
      client: new MlflowClient({ baseUrl: "http://127.0.0.1:9" }),
    });
    const error = await deliveryFailure(
      refused.deliver([metricRecord("a", 1, 1)], deliveryContext({ runId: "r" })),
    );
    expect(error.kind).toBe("retry");
    expect(error.message).toMatch(/connection refused|could not connect/);

    const server = await recordingServer(() => ({ status: 200 }));
    server.server.removeAllListeners("request");
    server.server.on("request", () => {
      /* never answers */
    });
    try {
      const slow = transportFromMeta(
        { trackingUri: server.url, runId: "r" },
        {
          MLFLOW_TRACKING_URI: server.url.replace("http://", "http://bob:urlpass-999@"),
          MLFLOW_HTTP_REQUEST_TIMEOUT: "0.3",
        },
      );
      const timedOut = await deliveryFailure(
        slow.deliver([metricRecord("a", 1, 1)], deliveryContext({ runId: "r" })),
      );
      expect(timedOut.kind).toBe("retry");
      expect(timedOut.message).toMatch(/timed out/);
      expect(timedOut.message).not.toContain("urlpass-999");
    } finally {
      await server.close();
    }
  });
});

describe("against the real MLflow server", () => {
  let server: MlflowServer;
  let rest: ReturnType<typeof mlflowRest>;
  beforeAll(async () => {
    server = await startMlflowServer();
    rest = mlflowRest(server.url);
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });

  const client = () => new MlflowClient({ baseUrl: server.url });
  const createMeta = (stream: string, experimentName?: string) => ({
    trackingUri: server.url,
    stream,
    owned: true,
    create: {
      ...(experimentName ? { experimentName } : {}),
      runName: `run-${stream}`,
      startTime: Date.now(),
      tags: [
        { key: "mlflow.runName", value: `run-${stream}` },
        { key: "mlflow.source.type", value: "LOCAL" },
        { key: "trainkit.stream", value: stream },
      ],
    },
  });

  async function deliverAll(
    transport: ReturnType<typeof createMlflowTransport>,
    records: MlflowRecord[],
    context: ReturnType<typeof deliveryContext>,
  ) {
    let rest = records;
    while (rest.length > 0) {
      const n = transport.batchSize(rest);
      await transport.deliver(rest.slice(0, n), context);
      rest = rest.slice(n);
    }
  }

  test("creates experiment and run, logs params/metrics/tags in batches, NaN/±Inf round trip, ends", async () => {
    const transport = createMlflowTransport({ client: client() });
    const context = deliveryContext(createMeta("s-basic", "trainkit-transport"));
    const records: MlflowRecord[] = [
      ...Array.from({ length: 150 }, (_, i) => paramRecord(`p${i}`, String(i))),
      tagRecord("team", "nlp"),
      ...Array.from({ length: 2500 }, (_, i) => metricRecord("loss", i / 10, i, 1_000_000 + i)),
      metricRecord("nan", NaN, 1, 5),
      metricRecord("inf", Infinity, 1, 5),
      metricRecord("ninf", -Infinity, 2, 5),
      endRecord("FINISHED", 123_456),
    ];
    await deliverAll(transport, records, context);
    const meta = context.current();
    expect(meta.runId).toMatch(/^[0-9a-f]{32}$/);
    expect(meta.createAttempted).toBe(false);
    const run = await rest.getRun(meta.runId as string);
    expect(run.info.status).toBe("FINISHED");
    expect(run.info.end_time).toBe(123_456);
    expect(run.info.run_name).toBe("run-s-basic");
    expect(Object.keys(run.data.params)).toHaveLength(150);
    expect(run.data.tags.team).toBe("nlp");
    expect(run.data.tags["trainkit.stream"]).toBe("s-basic");
    const loss = await rest.metricHistory(meta.runId as string, "loss");
    expect(loss).toHaveLength(2500);
    expect(loss.map((p) => p.step).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 2500 }, (_, i) => i),
    );
    expect(Number.isNaN((await rest.metricHistory(meta.runId as string, "nan"))[0]?.value)).toBe(
      true,
    );
    // The SQL store clamps ±Infinity to ±max double.
    expect((await rest.metricHistory(meta.runId as string, "inf"))[0]?.value).toBe(
      1.7976931348623157e308,
    );
    expect((await rest.metricHistory(meta.runId as string, "ninf"))[0]?.value).toBe(
      -1.7976931348623157e308,
    );
    const experiment = await rest.getExperimentByName("trainkit-transport");
    expect(experiment?.experiment_id).toBe(meta.experimentId);

    // Resending a delivered batch (an ambiguous failure) duplicates nothing.
    await deliverAll(transport, records.slice(150, 1151), context);
    expect(await rest.metricHistory(meta.runId as string, "loss")).toHaveLength(2500);
  });

  test("MLFLOW_EXPERIMENT_NAME wins over MLFLOW_EXPERIMENT_ID (spec 1.2)", async () => {
    const base = createMeta("s-name-wins", `trainkit-name-wins-${Date.now()}`);
    const context = deliveryContext({ ...base, create: { ...base.create, experimentId: "0" } });
    await createMlflowTransport({ client: client() }).deliver([metricRecord("m", 1, 1)], context);
    const named = await rest.getExperimentByName(base.create.experimentName!);
    expect(named).toBeDefined();
    expect(context.current().experimentId).toBe(named!.experiment_id);
    expect(named!.experiment_id).not.toBe("0");
  });

  test("after an ambiguous runs/create, the run is found by its stream tag, not created twice", async () => {
    const first = createMlflowTransport({ client: client() });
    const context = deliveryContext(createMeta("s-ambiguous", "trainkit-ambiguous"));
    await first.deliver([metricRecord("a", 1, 1, 10)], context);
    const runId = context.current().runId;
    // A later process whose create's outcome was unknown: no runId saved, createAttempted set.
    const again = deliveryContext({
      ...createMeta("s-ambiguous", "trainkit-ambiguous"),
      createAttempted: true,
    });
    await createMlflowTransport({ client: client() }).deliver([metricRecord("a", 2, 2, 20)], again);
    expect(again.current().runId).toBe(runId);
    const experiment = await rest.getExperimentByName("trainkit-ambiguous");
    const runs = await rest.searchRuns([experiment!.experiment_id]);
    expect(runs).toHaveLength(1);
    expect(await rest.metricHistory(runId as string, "a")).toHaveLength(2);
  });

  test("reattaching: equal params skipped, differing ones warned about once, not failed", async () => {
    const setup = deliveryContext(createMeta("s-resume"));
    await createMlflowTransport({ client: client() }).deliver(
      [paramRecord("lr", "0.1"), paramRecord("output_dir", "/a")],
      setup,
    );
    const runId = setup.current().runId as string;
    const log = captureLogger();
    const context = deliveryContext({ trackingUri: server.url, runId }, log.logger);
    const transport = createMlflowTransport({ client: client() });
    await transport.deliver(
      [paramRecord("lr", "0.1"), paramRecord("output_dir", "/b"), paramRecord("new", "1")],
      context,
    );
    await transport.deliver([paramRecord("output_dir", "/c")], context);
    const run = await rest.getRun(runId);
    expect(run.data.params).toEqual({ lr: "0.1", output_dir: "/a", new: "1" });
    expect(log.warnings.filter((w) => w.includes("output_dir"))).toHaveLength(1);
  });

  test("data the server refuses is rejected; an unknown run halts; a deleted experiment halts", async () => {
    const setup = deliveryContext(createMeta("s-errors"));
    const transport = createMlflowTransport({ client: client() });
    await transport.deliver([paramRecord("x", "1")], setup);
    // A key the callback would never let through: the server's 400 becomes a reject.
    const reject = await deliveryFailure(transport.deliver([metricRecord("eval/", 1, 1)], setup));
    expect(reject.kind).toBe("reject");
    expect(reject.message).toMatch(/INVALID_PARAMETER_VALUE/);

    const unknown = await deliveryFailure(
      createMlflowTransport({ client: client() }).deliver(
        [metricRecord("m", 1, 1)],
        deliveryContext({ trackingUri: server.url, runId: "0123456789abcdef0123456789abcdef" }),
      ),
    );
    expect(unknown.kind).toBe("halt");

    // A deleted experiment is not recreated.
    const created = deliveryContext(createMeta("s-deleted", "trainkit-deleted"));
    await createMlflowTransport({ client: client() }).deliver([metricRecord("m", 1, 1)], created);
    const response = await fetch(`${server.url}/api/2.0/mlflow/experiments/delete`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ experiment_id: created.current().experimentId }),
    });
    expect(response.ok).toBe(true);
    const halted = await deliveryFailure(
      createMlflowTransport({ client: client() }).deliver(
        [metricRecord("m", 1, 1)],
        deliveryContext(createMeta("s-deleted-2", "trainkit-deleted")),
      ),
    );
    expect(halted.kind).toBe("halt");
    expect(halted.message).toMatch(/deleted/);
  });

  test("artifacts: streamed PUT to the run's artifact store, spool copy removed", async () => {
    const root = join(work, "spool", "artifacts", "checkpoint-3-x");
    mkdirSync(join(root, "sub dir"), { recursive: true });
    const big = Buffer.alloc(3 * 1024 * 1024, 7);
    writeFileSync(join(root, "model.bin"), big);
    writeFileSync(join(root, "sub dir", "trainer_state.json"), '{"a": 1}');
    const transport = createMlflowTransport({ client: client() });
    const context = deliveryContext(createMeta("s-artifacts"));
    const records: MlflowRecord[] = [
      { t: "a", dir: root, src: "model.bin", path: "checkpoint-3/model.bin" },
      {
        t: "a",
        dir: root,
        src: "sub dir/trainer_state.json",
        path: "checkpoint-3/sub dir/trainer_state.json",
      },
    ];
    await deliverAll(transport, records, context);
    const runId = context.current().runId as string;
    const files = await rest.listArtifacts(runId);
    expect(files).toEqual([
      { path: "checkpoint-3/model.bin", size: big.length },
      { path: "checkpoint-3/sub dir/trainer_state.json", size: 8 },
    ]);
    expect((await rest.downloadArtifact(runId, "checkpoint-3/model.bin")).equals(big)).toBe(true);
    expect(existsSync(root)).toBe(false);
    // The spool's artifacts/ folder goes too once empty.
    expect(existsSync(join(work, "spool", "artifacts"))).toBe(false);
    expect(existsSync(join(work, "spool"))).toBe(true);
  });
});

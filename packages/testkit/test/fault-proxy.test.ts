// The fault proxy between a fetch client and the real MLflow server: each fault kind is seen by
// the client as intended, and the server's own records show what really reached it.
import { randomBytes } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { Readable } from "node:stream";
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import {
  freePort,
  mlflowRest,
  startFaultProxy,
  startMlflowServer,
  type FaultProxy,
  type MlflowRest,
  type MlflowServer,
} from "../src/index.js";

const API = "/api/2.0/mlflow";

/** What a failed fetch reports: the status, or the socket error code the client saw. */
async function outcome(
  request: Promise<Response>,
): Promise<{ status?: number; body?: string; error?: string }> {
  try {
    const response = await request;
    try {
      return { status: response.status, body: await response.text() };
    } catch (error) {
      return { status: response.status, error: errorCode(error) };
    }
  } catch (error) {
    return { error: errorCode(error) };
  }
}

function errorCode(error: unknown): string {
  let current: unknown = error;
  while (current instanceof Error) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string") return code;
    if (current.name === "TimeoutError" || current.name === "AbortError") return current.name;
    current = current.cause;
  }
  return String(error);
}

const postJson = (base: string, path: string, body: unknown) =>
  fetch(base + path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });

describe("in front of the real MLflow server", () => {
  let server: MlflowServer;
  let proxy: FaultProxy;
  let rest: MlflowRest;
  let runId: string;
  let experimentId: string;
  let timestamp = 1_000;

  /** One metric row through the proxy; distinct values tell which attempts reached the server. */
  const logMetric = (key: string, value: number) =>
    postJson(proxy.url, `${API}/runs/log-batch`, {
      run_id: runId,
      metrics: [{ key, value, timestamp: ++timestamp, step: value }],
    });
  const storedValues = async (key: string) =>
    (await rest.metricHistory(runId, key)).map((point) => point.value);

  beforeAll(async () => {
    server = await startMlflowServer();
    proxy = await startFaultProxy({ target: server.url });
    rest = mlflowRest(server.url);
    const created = await postJson(proxy.url, `${API}/experiments/create`, { name: "proxy" });
    experimentId = ((await created.json()) as { experiment_id: string }).experiment_id;
    const run = await postJson(proxy.url, `${API}/runs/create`, {
      experiment_id: experimentId,
      start_time: Date.now(),
      run_name: "through-the-proxy",
    });
    runId = ((await run.json()) as { run: { info: { run_id: string } } }).run.info.run_id;
  }, 120_000);

  afterAll(async () => {
    await proxy?.stop();
    await server?.stop();
  }, 30_000);

  beforeEach(() => proxy.setFaults({}));

  test("passes requests through faithfully and logs them", async () => {
    const before = { ...proxy.stats };
    const response = await logMetric("clean", 1);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({});
    expect(await storedValues("clean")).toEqual([1]);
    expect(proxy.stats.requests).toBe(before.requests + 1);
    expect(proxy.stats.forwarded).toBe(before.forwarded + 1);
    expect(proxy.log.at(-1)).toEqual({
      method: "POST",
      path: `${API}/runs/log-batch`,
      status: 200,
    });
    // The server's own error bodies come back unchanged.
    const missing = await outcome(fetch(`${proxy.url}${API}/runs/get?run_id=nope`));
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body!)).toMatchObject({ error_code: "RESOURCE_DOES_NOT_EXIST" });
  });

  test("503 burst: the client sees MLflow-style errors, the server never sees the requests", async () => {
    proxy.setFaults({ statusBurst: { status: 503, count: 2 } });
    const first = await outcome(logMetric("burst", 1));
    const second = await outcome(logMetric("burst", 2));
    const third = await outcome(logMetric("burst", 3));
    expect([first.status, second.status, third.status]).toEqual([503, 503, 200]);
    expect(JSON.parse(first.body!)).toEqual({
      error_code: "TEMPORARILY_UNAVAILABLE",
      message: expect.any(String),
    });
    expect(await storedValues("burst")).toEqual([3]);
    expect(proxy.stats.injected.statusBurst).toBe(2);
    expect(proxy.log.slice(-3).map((e) => [e.status, e.fault])).toEqual([
      [503, "statusBurst"],
      [503, "statusBurst"],
      [200, undefined],
    ]);
  });

  test("500 burst with INTERNAL_ERROR, or a custom body", async () => {
    proxy.setFaults({ statusBurst: { status: 500, count: 1 } });
    expect(JSON.parse((await outcome(logMetric("e500", 1))).body!)).toMatchObject({
      error_code: "INTERNAL_ERROR",
    });
    proxy.setFaults({ statusBurst: { status: 502, count: 1, body: "<html>bad gateway</html>" } });
    expect(await outcome(logMetric("e500", 2))).toEqual({
      status: 502,
      body: "<html>bad gateway</html>",
    });
  });

  test("429 carries Retry-After and is not forwarded", async () => {
    proxy.setFaults({ tooManyRequests: { count: 1, retryAfterSeconds: 7 } });
    const throttled = await logMetric("throttle", 1);
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get("retry-after")).toBe("7");
    expect(await throttled.json()).toMatchObject({ error_code: "REQUEST_LIMIT_EXCEEDED" });
    expect((await logMetric("throttle", 2)).status).toBe(200);
    expect(await storedValues("throttle")).toEqual([2]);
  });

  test("latency delays every matching request; a client timeout fires", async () => {
    proxy.setFaults({ latencyMs: 400 });
    const started = Date.now();
    expect((await logMetric("slow", 1)).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(390);
    const timedOut = await outcome(
      fetch(`${proxy.url}${API}/runs/get?run_id=${runId}`, { signal: AbortSignal.timeout(100) }),
    );
    expect(timedOut).toEqual({ error: "TimeoutError" });
    await new Promise((resolve) => setTimeout(resolve, 400)); // let the delayed request play out
    expect(proxy.log.at(-1)).toMatchObject({ status: "reset", fault: "latency" });
    expect(proxy.stats.injected.latency).toBeGreaterThanOrEqual(2);
  });

  test("reset after forward: the client sees a broken response, the server has the metric", async () => {
    proxy.setFaults({ resetAfterForward: { count: 1 } });
    const broken = await outcome(logMetric("ambiguous", 1));
    // Head received (200), body cut short by a reset.
    expect(broken.status).toBe(200);
    expect(broken.error).toBeDefined();
    expect(broken.body).toBeUndefined();
    expect(await storedValues("ambiguous")).toEqual([1]);
    expect(proxy.log.at(-1)).toMatchObject({ status: "reset", fault: "resetAfterForward" });

    // Without even the head: fetch itself rejects.
    proxy.setFaults({ resetAfterForward: { count: 1, sendHead: false } });
    const silent = await outcome(logMetric("ambiguous", 2));
    expect(silent).toEqual({ error: "ECONNRESET" });
    expect(await storedValues("ambiguous")).toEqual([1, 2]);
    expect(proxy.stats.injected.resetAfterForward).toBe(2);
  });

  test("reset before forward: fetch fails with ECONNRESET, the server saw nothing", async () => {
    proxy.setFaults({ resetBeforeForward: { count: 1 } });
    const forwarded = proxy.stats.forwarded;
    expect(await outcome(logMetric("lost", 1))).toEqual({ error: "ECONNRESET" });
    expect(proxy.stats.forwarded).toBe(forwarded);
    expect((await logMetric("lost", 2)).status).toBe(200);
    expect(await storedValues("lost")).toEqual([2]);
    expect(proxy.log.at(-2)).toMatchObject({ status: "reset", fault: "resetBeforeForward" });
  });

  test("match limits faults to some requests; combined faults are consumed in order", async () => {
    proxy.setFaults({
      resetBeforeForward: { count: 1 },
      statusBurst: { status: 503, count: 1 },
      tooManyRequests: { count: 1, retryAfterSeconds: 1 },
      match: (method, path) => method === "POST" && path.endsWith("/runs/log-batch"),
    });
    // Reads pass untouched while the faults wait for log-batch calls.
    expect((await fetch(`${proxy.url}${API}/runs/get?run_id=${runId}`)).status).toBe(200);
    const seen = [];
    for (let value = 1; value <= 4; value++) {
      const result = await outcome(logMetric("sequence", value));
      seen.push(result.status ?? result.error);
    }
    expect(seen).toEqual(["ECONNRESET", 503, 429, 200]);
    expect(await storedValues("sequence")).toEqual([4]);
  });

  test("down() refuses connections, up() serves again on the same port", async () => {
    await proxy.down();
    expect(await outcome(logMetric("outage", 1))).toEqual({ error: "ECONNREFUSED" });
    await proxy.up();
    expect((await logMetric("outage", 2)).status).toBe(200);
    expect(await storedValues("outage")).toEqual([2]);
  });

  test("streams a large artifact PUT through to the server unchanged", async () => {
    const bytes = randomBytes(12 * 1024 * 1024);
    const put = await fetch(
      `${proxy.url}/api/2.0/mlflow-artifacts/artifacts/${experimentId}/${runId}/artifacts/big/blob.bin`,
      { method: "PUT", body: bytes },
    );
    expect(put.status).toBe(200);
    expect(await rest.listArtifacts(runId)).toContainEqual({
      path: "big/blob.bin",
      size: bytes.length,
    });
    expect((await rest.downloadArtifact(runId, "big/blob.bin")).equals(bytes)).toBe(true);
  });
});

describe("against a local upstream", () => {
  let upstream: Server;
  let upstreamUrl: string;
  const received: { headers: IncomingHttpHeaders; url?: string; firstChunkAt?: number }[] = [];

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      const entry: (typeof received)[number] = { headers: req.headers, url: req.url };
      received.push(entry);
      let size = 0;
      req.on("data", (chunk: Buffer) => {
        entry.firstChunkAt ??= Date.now();
        size += chunk.length;
      });
      req.on("end", () => res.end(JSON.stringify({ size })));
    });
    const port = await freePort();
    await new Promise<void>((resolve) => upstream.listen(port, "127.0.0.1", resolve));
    upstreamUrl = `http://127.0.0.1:${port}`;
  });
  afterAll(() => new Promise<void>((resolve) => upstream.close(() => resolve())));

  test("keeps method, path prefix, query and Authorization; streams the body", async () => {
    const proxy = await startFaultProxy({ target: `${upstreamUrl}/prefix` });
    try {
      expect(proxy.url).toBe(`http://127.0.0.1:${proxy.port}/prefix`);
      // A body that trickles in: the upstream must see its start before the client finishes.
      let finishedSendingAt = 0;
      async function* trickle() {
        for (let i = 0; i < 5; i++) {
          yield Buffer.alloc(64 * 1024, i);
          await new Promise((resolve) => setTimeout(resolve, 60));
        }
        finishedSendingAt = Date.now();
      }
      const response = await fetch(`${proxy.url}/upload?x=1&y=%2F`, {
        method: "PUT",
        headers: { authorization: "Bearer secret-token" },
        body: Readable.toWeb(Readable.from(trickle())) as ReadableStream,
        duplex: "half",
      } as RequestInit);
      expect(await response.json()).toEqual({ size: 5 * 64 * 1024 });
      const seen = received.at(-1)!;
      expect(seen.url).toBe("/prefix/upload?x=1&y=%2F");
      expect(seen.headers.authorization).toBe("Bearer secret-token");
      expect(seen.headers.host).toBe(new URL(upstreamUrl).host);
      expect(seen.firstChunkAt).toBeLessThan(finishedSendingAt);
    } finally {
      await proxy.stop();
    }
  });

  test("an unreachable server: the client's connection is reset, or it gets 502", async () => {
    const nowhere = `http://127.0.0.1:${await freePort()}`;
    const resetting = await startFaultProxy({ target: nowhere });
    const gateway = await startFaultProxy({ target: nowhere, upstreamDown: "bad-gateway" });
    try {
      expect(await outcome(fetch(`${resetting.url}/x`))).toEqual({ error: "ECONNRESET" });
      expect(resetting.log).toEqual([{ method: "GET", path: "/x", status: "refused" }]);
      expect((await outcome(fetch(`${gateway.url}/x`))).status).toBe(502);
    } finally {
      await resetting.stop();
      await gateway.stop();
    }
  });
});

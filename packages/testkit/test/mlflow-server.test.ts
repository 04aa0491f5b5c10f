// The real MLflow server as the testkit runs it: the read-back helpers see what was written,
// restart() and kill()/start() keep port and data, and a failed start explains itself.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { connect, createServer } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  freePort,
  mlflowRest,
  resolveMlflowBin,
  startMlflowServer,
  type MlflowRest,
  type MlflowServer,
} from "../src/index.js";

const API = "/api/2.0/mlflow";

async function post<T>(base: string, path: string, body: unknown): Promise<T> {
  const response = await fetch(base + path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${path} -> ${response.status}: ${text}`);
  return JSON.parse(text) as T;
}

/** What a fresh TCP connection to the port meets ("connected", or the error code). */
function connectOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve("connected");
    });
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

describe("startMlflowServer + mlflowRest", () => {
  let server: MlflowServer;
  let rest: MlflowRest;
  let experimentId: string;
  let runId: string;

  beforeAll(async () => {
    server = await startMlflowServer();
    rest = mlflowRest(server.url);
    ({ experiment_id: experimentId } = await post<{ experiment_id: string }>(
      server.url,
      `${API}/experiments/create`,
      { name: "readback" },
    ));
    const created = await post<{ run: { info: { run_id: string } } }>(
      server.url,
      `${API}/runs/create`,
      { experiment_id: experimentId, start_time: 1_000, run_name: "r1" },
    );
    runId = created.run.info.run_id;
    await post(server.url, `${API}/runs/log-batch`, {
      run_id: runId,
      metrics: [
        ...[1, 2, 3, 4, 5].map((step) => ({ key: "loss", value: 1 / step, timestamp: step, step })),
        { key: "eval/acc", value: "NaN", timestamp: 9, step: 5 },
      ],
      params: [{ key: "learning_rate", value: "5e-05" }],
      tags: [{ key: "team", value: "ml" }],
    });
    const artifacts = `${server.url}/api/2.0/mlflow-artifacts/artifacts/${experimentId}/${runId}/artifacts`;
    for (const [path, content] of [
      ["checkpoint-2/model.json", '{"w":[1,2]}'],
      ["checkpoint-2/weights/part-1.bin", "0123456789"],
      ["notes.txt", "hi"],
    ] as const) {
      const put = await fetch(`${artifacts}/${path}`, { method: "PUT", body: content });
      expect(put.status).toBe(200);
    }
  }, 120_000);

  afterAll(() => server?.stop(), 30_000);

  test("runs on 127.0.0.1 with its sqlite database and artifacts in dir", async () => {
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
    expect(existsSync(join(server.dir, "mlflow.db"))).toBe(true);
    expect(existsSync(join(server.dir, "artifacts"))).toBe(true);
    expect(server.logs()).toContain("Uvicorn running");
  });

  test("experiments and runs read back", async () => {
    expect(await rest.getExperimentByName("readback")).toMatchObject({
      experiment_id: experimentId,
      name: "readback",
      lifecycle_stage: "active",
    });
    expect(await rest.getExperimentByName("no such experiment")).toBeUndefined();
    const run = await rest.getRun(runId);
    expect(run.info).toMatchObject({ run_id: runId, run_name: "r1", status: "RUNNING" });
    expect(run.data.params).toEqual({ learning_rate: "5e-05" });
    expect(run.data.tags).toMatchObject({ team: "ml", "mlflow.runName": "r1" });
    expect(run.data.metrics).toEqual({ loss: 0.2, "eval/acc": NaN });
    const found = await rest.searchRuns([experimentId], "tags.team = 'ml'");
    expect(found.map((r) => r.info.run_id)).toEqual([runId]);
    expect(await rest.searchRuns([experimentId], "tags.team = 'nobody'")).toEqual([]);
  });

  test("metric histories follow pagination", async () => {
    const history = await rest.metricHistory(runId, "loss", 2); // three pages
    expect(history.map((p) => [p.step, p.value, p.timestamp])).toEqual(
      [1, 2, 3, 4, 5].map((step) => [step, 1 / step, step]),
    );
    const all = await rest.allMetricPoints(runId);
    expect(Object.keys(all).sort()).toEqual(["eval/acc", "loss"]);
    expect(all["eval/acc"]).toEqual([{ key: "eval/acc", value: NaN, timestamp: 9, step: 5 }]);
  });

  test("artifacts list recursively and download through the artifact proxy", async () => {
    expect(await rest.listArtifacts(runId)).toEqual([
      { path: "checkpoint-2/model.json", size: 11 },
      { path: "checkpoint-2/weights/part-1.bin", size: 10 },
      { path: "notes.txt", size: 2 },
    ]);
    expect(await rest.listArtifacts(runId, "checkpoint-2/weights")).toEqual([
      { path: "checkpoint-2/weights/part-1.bin", size: 10 },
    ]);
    expect((await rest.downloadArtifact(runId, "checkpoint-2/model.json")).toString()).toBe(
      '{"w":[1,2]}',
    );
  });

  test("restart() keeps the port and the data", async () => {
    const { url, port } = server;
    await server.restart();
    expect([server.url, server.port]).toEqual([url, port]);
    expect((await rest.metricHistory(runId, "loss")).length).toBe(5);
    await post(server.url, `${API}/runs/log-batch`, {
      run_id: runId,
      metrics: [{ key: "loss", value: 0.1, timestamp: 10, step: 10 }],
    });
    expect((await rest.metricHistory(runId, "loss")).length).toBe(6);
  }, 60_000);

  test("kill() leaves it down until start(); committed data survives the crash", async () => {
    await server.kill();
    expect(await connectOutcome(server.port)).toBe("ECONNREFUSED");
    await server.start();
    expect((await rest.metricHistory(runId, "loss")).length).toBe(6);
    expect((await rest.getRun(runId)).data.params).toEqual({ learning_rate: "5e-05" });
  }, 60_000);
});

describe("when the server cannot start", () => {
  test("a missing executable is named, with the way to install it", () => {
    expect(() => resolveMlflowBin("/nonexistent/mlflow")).toThrow(
      /MLflow not found at \/nonexistent\/mlflow.*ensure-venv/,
    );
  });

  test("a port already taken is refused before spawning", async () => {
    const port = await freePort();
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(port, "127.0.0.1", resolve));
    try {
      await expect(startMlflowServer({ port })).rejects.toThrow(
        `port ${port} on 127.0.0.1 is already in use`,
      );
    } finally {
      await new Promise<void>((resolve) => squatter.close(() => resolve()));
    }
  });

  test("a server that exits during startup is reported with its output", async () => {
    const dir = mkdtempSync(join(tmpdir(), "trainkit-fake-mlflow-"));
    try {
      const fakeBin = join(dir, "mlflow");
      writeFileSync(fakeBin, '#!/bin/sh\necho "no such option: $2" >&2\nexit 3\n', {
        mode: 0o755,
      });
      await expect(startMlflowServer({ mlflowBin: fakeBin, dir })).rejects.toThrow(
        /exited during startup \(code 3[\s\S]*no such option: --backend-store-uri/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

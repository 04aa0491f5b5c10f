// The MLflow plugin keeps the plugin contract, checked by the testkit's conformance suite against
// the real MLflow server (every event, onTrainEnd deadline, no secrets written, checkpointed
// state, isAvailable reasons).
import { assertConformance, startMlflowServer, type MlflowServer } from "@trainkit/testkit";
import { afterAll, beforeAll, expect, test } from "vitest";
import mlflow from "../src/index.js";

let server: MlflowServer;
beforeAll(async () => {
  server = await startMlflowServer();
}, 120_000);
afterAll(async () => {
  await server?.stop();
});

test("the mlflow plugin passes the conformance suite", async () => {
  const report = await assertConformance(mlflow, {
    env: {
      MLFLOW_TRACKING_URI: server.url,
      MLFLOW_EXPERIMENT_NAME: "conformance",
      MLFLOW_TRACKING_TOKEN: "conformance-token-4d2f",
      HF_MLFLOW_LOG_ARTIFACTS: "1",
    },
    secrets: ["conformance-token-4d2f"],
  });
  expect(report.failed).toEqual([]);
  expect(report.ok).toBe(true);
}, 120_000);

// The TensorBoard plugin keeps the plugin contract, checked by the testkit's conformance suite
// as every first-party plugin is.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertConformance } from "@trainkit/testkit";
import { afterAll, expect, test } from "vitest";
import tensorboard from "../src/index.js";

const logs = mkdtempSync(join(tmpdir(), "trainkit-tb-conformance-"));
afterAll(() => rmSync(logs, { recursive: true, force: true }));

test("the tensorboard plugin passes the conformance suite", async () => {
  const report = await assertConformance(tensorboard, {
    env: { TENSORBOARD_LOGGING_DIR: logs },
    watchDirs: [logs],
    secrets: ["hunter2-secret-value"],
  });
  expect(report.ok).toBe(true);
  expect(report.failed).toEqual([]);
});

// The Flyte plugin keeps the plugin contract, checked by the testkit's conformance suite as
// every first-party plugin is: configured through its env fallbacks, as in a container.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { assertConformance } from "@trainkit/testkit";
import { afterAll, expect, test } from "vitest";
import flyte from "../src/index.js";

const work = mkdtempSync(join(tmpdir(), "trainkit-flyte-conformance-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

test("the flyte plugin passes the conformance suite", async () => {
  const checkpoints = join(work, "bucket", "_flytecheckpoints");
  const deck = join(work, "raw-output");
  const report = await assertConformance(flyte, {
    env: {
      FLYTE_INTERNAL_EXECUTION_ID: "conformance",
      TRAINKIT_FLYTE_CHECKPOINT_PATH: pathToFileURL(checkpoints).href,
      TRAINKIT_FLYTE_DECK_DIR: deck,
    },
    watchDirs: [join(work, "bucket"), deck],
    secrets: ["hunter2-secret-value"],
  });
  expect(report.ok).toBe(true);
  expect(report.failed).toEqual([]);
});

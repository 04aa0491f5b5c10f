// The DVCLive plugin keeps the plugin contract, checked by the testkit's conformance suite as
// every first-party plugin is (its state, the DVCLive step, round-trips through a checkpoint).
import { rmSync } from "node:fs";
import { join } from "node:path";
import { assertConformance } from "@trainkit/testkit";
import { afterAll, expect, test } from "vitest";
import dvclive from "../src/index.js";
import { tempDir } from "./helpers.js";

const folder = tempDir("conformance");
afterAll(() => rmSync(folder, { recursive: true, force: true }));

test("the dvclive plugin passes the conformance suite", async () => {
  const report = await assertConformance(dvclive, {
    // Outside any repository: the files only, in a folder of the test's.
    env: {
      TRAINKIT_DVCLIVE_DIR: join(folder, "dvclive"),
      TRAINKIT_DVCLIVE_DVCYAML: join(folder, "dvc.yaml"),
    },
    watchDirs: [folder],
    secrets: ["hunter2-secret-value"],
  });
  expect(report.ok).toBe(true);
  expect(report.failed).toEqual([]);
  expect(report.notes.map((n) => n.message).join("\n")).not.toMatch(/not stateful/);
});

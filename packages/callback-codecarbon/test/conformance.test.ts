// The CodeCarbon plugin keeps the plugin contract, checked by the testkit's conformance suite
// as every first-party plugin is.
import { assertConformance } from "@trainkit/testkit";
import { expect, test } from "vitest";
import codecarbon from "../src/index.js";

test("the codecarbon plugin passes the conformance suite", async () => {
  const report = await assertConformance(codecarbon, {
    env: {
      CODECARBON_COUNTRY_ISO_CODE: "FRA",
      CODECARBON_MEASURE_POWER_SECS: "1",
      // a token must never be written anywhere (it is not used: no network)
      CODECARBON_ELECTRICITYMAPS_API_TOKEN: "hunter2-secret-token",
    },
    secrets: ["hunter2-secret-token"],
  });
  expect(report.ok).toBe(true);
  expect(report.failed).toEqual([]);
});

// The data files are codecarbon 3.3.2's, unchanged, shipped with their licence and notice.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { expect, test } from "vitest";
import { DATA_DIR } from "../src/data.js";
import { packageDir, sitePackagesData } from "./helpers.js";

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [relative(DATA_DIR, path)];
  });
}

test("every shipped data file is byte-identical to the installed codecarbon 3.3.2's", () => {
  const shipped = files(DATA_DIR).filter((f) => f !== "LICENSE" && f !== "NOTICE.md");
  expect(shipped.sort()).toEqual([
    "cloud/impact.csv",
    "hardware/cpu_power.csv",
    "private_infra/2023/canada_energy_mix.json",
    "private_infra/2023/china_provincial_emissions.json",
    "private_infra/2023/usa_emissions.json",
    "private_infra/carbon_intensity_per_source.json",
    "private_infra/global_energy_mix.json",
    "private_infra/nordic_emissions.json",
  ]);
  for (const file of shipped)
    expect(
      readFileSync(join(DATA_DIR, file)).equals(readFileSync(join(sitePackagesData, file))),
      file,
    ).toBe(true);
});

test("the licence and the notice go with the data, and the package publishes them", () => {
  const licence = readFileSync(join(DATA_DIR, "LICENSE"), "utf8");
  expect(licence).toMatch(/^MIT License/);
  expect(licence).toContain("Copyright (c) 2019 Mila, BCG Gamma, CometML, Haverford College");
  expect(licence).toContain("Copyright (c) 2023 Code Carbon NGO");
  const notice = readFileSync(join(DATA_DIR, "NOTICE.md"), "utf8");
  for (const file of files(DATA_DIR).filter((f) => f.includes("/")))
    expect(notice).toContain(`\`${file}\``);
  expect(notice).toContain("CC BY 4.0");
  const manifest = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8"));
  expect(manifest.files).toContain("data");
  expect(manifest.trainkit).toEqual({ integration: "codecarbon" });
});

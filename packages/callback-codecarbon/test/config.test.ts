// Configuration with codecarbon's precedence: option > CODECARBON_* env > ./.codecarbon.config
// > ~/.codecarbon.config, codecarbon's parsing of text values, and strict explicit options.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { CodeCarbonCallback } from "../src/index.js";
import { resolveSettings } from "../src/config/config.js";
import { codecarbonSection } from "../src/config/ini.js";
import { codecarbonRules } from "./helpers.js";

const work = mkdtempSync(join(tmpdir(), "trainkit-cc-config-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function folders(name: string, local?: string, home?: string) {
  const cwd = join(work, name, "project");
  const homeDir = join(work, name, "home");
  mkdirSync(cwd, { recursive: true });
  mkdirSync(homeDir, { recursive: true });
  if (local !== undefined) writeFileSync(join(cwd, ".codecarbon.config"), local);
  if (home !== undefined) writeFileSync(join(homeDir, ".codecarbon.config"), home);
  return { cwd, homeDir };
}

describe("precedence", () => {
  const home =
    "[codecarbon]\nproject_name = from-home\nexperiment_id = home-id\npue = 1.1\nwue = 2\n";
  const local = "[codecarbon]\nproject_name = from-local\nexperiment_id = local-id\npue = 1.2\n";

  test("option > env > ./.codecarbon.config > ~/.codecarbon.config > default", () => {
    const where = folders("precedence", local, home);
    const env = { CODECARBON_PROJECT_NAME: "from-env", codecarbon_pue: "1.3" };
    const s = resolveSettings({ projectName: "from-option" }, { env, ...where });
    expect(s.projectName).toBe("from-option");
    expect(s.pue).toBe(1.3); // env, any case
    expect(s.experimentId).toBe("local-id");
    expect(s.wue).toBe(2); // only in the home file
    expect(s.measurePowerSecs).toBe(15); // codecarbon's default
    expect(s.sources).toMatchObject({
      project_name: "option",
      pue: "codecarbon_pue",
      experiment_id: join(where.cwd, ".codecarbon.config"),
      wue: join(where.homeDir, ".codecarbon.config"),
    });
  });

  test("codecarbon's defaults with nothing set", () => {
    const s = resolveSettings({}, { env: {}, ...folders("defaults") });
    expect(s).toMatchObject({
      outputDir: undefined,
      outputFile: "emissions.csv",
      saveToFile: true,
      onCsvWrite: "append",
      measurePowerSecs: 15,
      trackingMode: "machine",
      projectName: "codecarbon",
      experimentId: "5b0fa12a-3dd7-45bb-9766-cc326314d9f1",
      experimentName: "base",
      pue: 1,
      wue: 0,
      forceCpuPower: undefined,
      forceRamPower: undefined,
      forceCarbonIntensity: undefined,
      forceModeCpuLoad: false,
      gpuIds: undefined,
      countryIsoCode: undefined,
      logLevel: "info",
    });
  });
});

describe("text values, as codecarbon parses them", () => {
  test("booleans are true only for 'true' (any case); 1 and yes are false", () => {
    const at = (value: string) =>
      resolveSettings({}, { env: { CODECARBON_SAVE_TO_FILE: value }, ...folders("bool") })
        .saveToFile;
    expect(at("TRUE")).toBe(true);
    expect(at("True")).toBe(true);
    expect(at("1")).toBe(false);
    expect(at("yes")).toBe(false);
  });

  test("a number that does not parse is reported and ignored", () => {
    const s = resolveSettings(
      {},
      {
        env: { CODECARBON_MEASURE_POWER_SECS: "often", CODECARBON_PUE: " 1.5 " },
        ...folders("numbers"),
      },
    );
    expect(s.measurePowerSecs).toBe(15);
    expect(s.pue).toBe(1.5);
    expect(s.problems).toEqual([
      'CODECARBON_MEASURE_POWER_SECS: measure_power_secs must be a number, got "often"; ignored.',
    ]);
  });

  test("country, region and the forced intensity's long name", () => {
    const s = resolveSettings(
      {},
      {
        env: {
          CODECARBON_COUNTRY_ISO_CODE: "usa",
          CODECARBON_REGION: "California",
          CODECARBON_FORCE_CARBON_INTENSITY_G_CO2E_KWH: "120",
        },
        ...folders("country"),
      },
    );
    expect(s).toMatchObject({
      countryIsoCode: "USA",
      region: "california",
      forceCarbonIntensity: 120,
    });
  });

  test("gpu_ids: the setting, else CUDA_VISIBLE_DEVICES, else ROCR_VISIBLE_DEVICES", () => {
    const where = folders("gpus");
    const ids = (env: Record<string, string>, gpuIds?: string | number[]) =>
      resolveSettings({ gpuIds }, { env, ...where }).gpuIds;
    expect(ids({ CODECARBON_GPU_IDS: " 0, 2 ", CUDA_VISIBLE_DEVICES: "1" })).toEqual(["0", "2"]);
    expect(ids({ CUDA_VISIBLE_DEVICES: "1,GPU-abc", ROCR_VISIBLE_DEVICES: "3" })).toEqual([
      "1",
      "GPU-abc",
    ]);
    expect(ids({ ROCR_VISIBLE_DEVICES: "3" })).toEqual(["3"]);
    expect(ids({}, [0, 1])).toEqual(["0", "1"]);
  });

  test("output_methods without csv turns the file off; other outputs are named as unsupported", () => {
    const s = resolveSettings(
      {},
      {
        env: {
          CODECARBON_OUTPUT_METHODS: "api,prometheus",
          CODECARBON_ELECTRICITYMAPS_API_TOKEN: "tok-123456",
        },
        ...folders("methods"),
      },
    );
    expect(s.saveToFile).toBe(false);
    expect(s.unsupported.join("; ")).toMatch(
      /output_methods api, prometheus; electricitymaps_api_token/,
    );
    expect(JSON.stringify(s)).not.toContain("tok-123456");
  });

  test("an invalid tracking_mode or on_csv_write from env is an error, as in codecarbon", () => {
    const where = folders("enums");
    expect(() =>
      resolveSettings({}, { env: { CODECARBON_TRACKING_MODE: "gpu" }, ...where }),
    ).toThrow(
      /tracking_mode from CODECARBON_TRACKING_MODE must be one of "machine", "process" \(got "gpu"\)/,
    );
    expect(() =>
      resolveSettings({}, { env: { CODECARBON_ON_CSV_WRITE: "overwrite" }, ...where }),
    ).toThrow(/on_csv_write .* must be one of "append", "update"/);
  });

  test("tracking_mode and on_csv_write are trimmed and lower-cased, as codecarbon does", () => {
    const s = resolveSettings(
      {},
      {
        env: { CODECARBON_TRACKING_MODE: "machine ", CODECARBON_ON_CSV_WRITE: " Update\t" },
        ...folders("enum-spaces"),
      },
    );
    expect(s.trackingMode).toBe("machine");
    expect(s.onCsvWrite).toBe("update");
    const config = folders("enum-config", "[codecarbon]\ntracking_mode = PROCESS\n");
    expect(resolveSettings({}, { env: {}, ...config }).trackingMode).toBe("process");
  });

  test("measure_power_secs from env/config outside 0.1 s .. 1 day is an error before any work", () => {
    const where = folders("measure-range");
    for (const raw of ["0", "0.05", "-1", "86401", "1e9"])
      expect(() =>
        resolveSettings({}, { env: { CODECARBON_MEASURE_POWER_SECS: raw }, ...where }),
      ).toThrow(
        new RegExp(
          `measure_power_secs from CODECARBON_MEASURE_POWER_SECS must be from 0.1 to 86400 seconds \\(got "${raw.replace(".", "\\.")}"\\)`,
        ),
      );
    for (const [raw, value] of [
      ["0.1", 0.1],
      [" 86400 ", 86_400],
    ] as const)
      expect(
        resolveSettings({}, { env: { CODECARBON_MEASURE_POWER_SECS: raw }, ...where })
          .measurePowerSecs,
      ).toBe(value);
  });
});

describe("the INI reader", () => {
  test("reads like Python's configparser: ':' or '=', comments, [DEFAULT], continuation, interpolation", () => {
    const text = [
      "# comment",
      "[DEFAULT]",
      "base = demo",
      "[other]",
      "project_name = not-this",
      "[codecarbon]",
      "Project_Name: %(base)s-run",
      "; another comment",
      "experiment_name = multi",
      "  line",
      "rate = 100%%",
    ].join("\n");
    const expected = {
      base: "demo",
      project_name: "demo-run",
      experiment_name: "multi\nline",
      rate: "100%",
    };
    expect(codecarbonSection(text)).toEqual(expected);
    expect(codecarbonRules<{ ini: Record<string, string> }>({ ini: text }).ini).toEqual(expected);
    expect(codecarbonSection("[other]\nx = 1\n")).toEqual({});
  });
});

describe("explicit options are checked before any work", () => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [
      { measurePowerSecs: 0 },
      /measurePowerSecs must be a number of seconds from 0.1 to 86400 \(one day\) \(got 0\)/,
    ],
    [{ measurePowerSecs: 0.05 }, /measurePowerSecs must be .* from 0.1 to 86400 .*\(got 0.05\)/],
    [{ measurePowerSecs: 86_401 }, /measurePowerSecs must be .* from 0.1 to 86400 .*\(got 86401\)/],
    [{ measurePowerSecs: Infinity }, /measurePowerSecs must be .*\(got Infinity\)/],
    [{ measurePowerSecs: NaN }, /measurePowerSecs must be .*\(got NaN\)/],
    [{ measurePowerSecs: "15" }, /measurePowerSecs must be .*\(got "15"\)/],
    [{ trackingMode: "gpu" }, /trackingMode must be "machine" or "process"/],
    [{ onCsvWrite: "replace" }, /onCsvWrite must be "append" or "update"/],
    [{ pue: -1 }, /pue must be a finite number ≥ 0 \(got -1\)/],
    [
      { countryIsoCode: "FR" },
      /countryIsoCode must be a 3-letter ISO 3166-1 alpha-3 code .* \(got "FR"\)/,
    ],
    [{ outputFile: "a/b.csv" }, /outputFile must be a file name/],
    [{ gpuIds: [0.5] }, /gpuIds must be/],
    [{ cloudProvider: "gcp" }, /cloudProvider and cloudRegion must be given together/],
    [{ saveToFile: "yes" }, /saveToFile must be true or false/],
  ];
  test.each(cases)("%o", (options, message) => {
    expect(() => new CodeCarbonCallback({ env: {}, ...(options as object) })).toThrow(TypeError);
    expect(() => new CodeCarbonCallback({ env: {}, ...(options as object) })).toThrow(message);
  });
});

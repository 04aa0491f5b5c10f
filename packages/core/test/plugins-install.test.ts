// Real installs: temporary applications outside the workspace install packed tarballs of
// @trainkit/core and two third-party plugins from another scope (packages/testkit/test/fixtures/plugins), with
// npm and with pnpm, and train there. What reportTo "all", "none" and lists select, and every
// error, is checked in each.
import { execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";

const core = resolve(import.meta.dirname, "..");
// The third-party fixture plugins live with the testkit, which runs its conformance suite on them.
const fixtures = join(core, "../testkit/test/fixtures/plugins");
const work = mkdtempSync(join(tmpdir(), "trainkit-install-"));
const tarballs: Record<string, string> = {};
afterAll(() => rmSync(work, { recursive: true, force: true }));

beforeAll(() => {
  const packs = join(work, "tarballs");
  mkdirSync(packs);
  const packed = (cwd: string, tool: string) =>
    execFileSync(tool, ["pack", "--pack-destination", packs], { cwd, encoding: "utf8" })
      .trim()
      .split("\n")
      .pop()!
      .trim();
  tarballs.core = packed(core, "pnpm");
  tarballs.tensorboard = packed(join(core, "../callback-tensorboard"), "pnpm");
  tarballs.jsonl = join(packs, packed(join(fixtures, "acme-jsonl"), "npm"));
  tarballs.flaky = join(packs, packed(join(fixtures, "acme-flaky"), "npm"));
}, 120_000);

/** The script each test runs inside an application: trains 4 steps and reports what happened. */
const PROBE = `
import * as tf from "@tensorflow/tfjs";
import { Trainer, TrainingArguments, setLogger } from "@trainkit/core";
const options = JSON.parse(process.argv[2]);
const messages = [];
setLogger({ info: (m) => messages.push("info: " + m), warn: (m) => messages.push("warn: " + m) });
await tf.setBackend("cpu");
const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 1 })] });
const rows = Array.from({ length: 16 }, (_, i) => ({ x: [i / 16, 1 - i / 16], y: i / 8 }));
const result = { messages };
try {
  const trainer = new Trainer({
    model, loss: "meanSquaredError", trainDataset: rows, failurePolicy: options.failurePolicy,
    args: new TrainingArguments({ outputDir: "out", maxSteps: 4, loggingSteps: 2, saveStrategy: "no", disableTqdm: true, reportTo: options.reportTo }),
  });
  result.globalStep = (await trainer.train()).globalStep;
} catch (error) {
  result.error = error.message;
}
console.log("RESULT " + JSON.stringify(result));
`;

function makeApp(manager: "npm" | "pnpm"): string {
  const dir = join(work, `app-${manager}`);
  mkdirSync(dir);
  const dependencies = {
    "@trainkit/core": `file:${tarballs.core}`,
    "@trainkit/callback-tensorboard": `file:${tarballs.tensorboard}`,
    "@acme/trainkit-jsonl": `file:${tarballs.jsonl}`,
    "@acme/trainkit-flaky": `file:${tarballs.flaky}`,
    "@tensorflow/tfjs": "4.22.0",
  };
  writeFileSync(
    join(dir, "package.json"),
    JSON.stringify(
      { name: `app-${manager}`, private: true, type: "module", dependencies },
      null,
      2,
    ),
  );
  writeFileSync(join(dir, "probe.mjs"), PROBE);
  if (manager === "npm") {
    execFileSync("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], {
      cwd: dir,
      stdio: "pipe",
    });
  } else {
    // An application of its own (not our workspace): tfjs's core-js postinstall is declined.
    writeFileSync(
      join(dir, "pnpm-workspace.yaml"),
      "autoInstallPeers: false\nallowBuilds:\n  core-js: false\n",
    );
    execFileSync("pnpm", ["install", "--reporter=silent"], { cwd: dir, stdio: "pipe" });
  }
  return dir;
}

interface ProbeResult {
  messages: string[];
  globalStep?: number;
  error?: string;
}

function probe(dir: string, options: object, env: Record<string, string> = {}): ProbeResult {
  const out = execFileSync(process.execPath, ["probe.mjs", JSON.stringify(options)], {
    cwd: dir,
    encoding: "utf8",
    env: { ...process.env, ACME_JSONL_DIR: "", TRAINKIT_PLUGINS: "", ...env },
  });
  return JSON.parse(
    out
      .split("\n")
      .find((line) => line.startsWith("RESULT "))!
      .slice(7),
  ) as ProbeResult;
}

describe.each(["npm", "pnpm"] as const)("installed with %s", (manager) => {
  let app: string;
  beforeAll(() => {
    app = makeApp(manager);
  }, 240_000);

  test('reportTo "all": configured plugins run, others are skipped with what to set', () => {
    const result = probe(app, { reportTo: "all" });
    expect(result.error).toBeUndefined();
    expect(result.globalStep).toBe(4);
    const summary = result.messages.find((m) => m.includes("Integrations:"))!;
    // First-party integrations come first, in their fixed order, then third-party ones.
    expect(summary).toContain(
      "Integrations: tensorboard [@trainkit/callback-tensorboard@0.1.0], acme_flaky [@acme/trainkit-flaky@1.0.0]",
    );
    const runs = join(app, "out/runs");
    const events = readdirSync(runs, { recursive: true })
      .map(String)
      .filter((f) => f.includes("events.out.tfevents."));
    expect(events.length).toBeGreaterThan(0);
    expect(summary).toContain("skipped: acme_jsonl (set ACME_JSONL_DIR)");
    // The flaky plugin threw in onLog: reported once, secret masked, training went on.
    const failures = result.messages.filter((m) => m.includes('Integration "acme_flaky" failed'));
    expect(failures).toHaveLength(1);
    expect(failures[0]).toContain("in onLog");
    expect(failures[0]).not.toContain("abc123");
  });

  test("a configured plugin writes what the run logged", () => {
    const logs = join(app, "jsonl");
    const result = probe(app, { reportTo: ["acme_jsonl"] }, { ACME_JSONL_DIR: logs });
    expect(result.error).toBeUndefined();
    const lines = readFileSync(join(logs, "logs.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.step)).toEqual([2, 4, 4]);
    expect(Object.keys(lines[0])).toEqual(["step", "loss", "grad_norm", "learning_rate", "epoch"]);
    expect(lines[2]).toHaveProperty("train_loss");
  });

  test('reportTo "none" selects nothing', () => {
    const result = probe(app, { reportTo: "none" }, { ACME_JSONL_DIR: join(app, "none") });
    expect(result.globalStep).toBe(4);
    expect(result.messages.find((m) => m.includes("Integrations:"))).toContain(
      "Integrations: none",
    );
    expect(existsSync(join(app, "none"))).toBe(false);
  });

  test("a listed plugin that is not configured fails before training", () => {
    const result = probe(app, { reportTo: ["acme_jsonl"] });
    expect(result.globalStep).toBeUndefined();
    expect(result.error).toBe(
      'reportTo lists "acme_jsonl", but it is not configured: set ACME_JSONL_DIR.',
    );
  });

  test("a first-party integration that is not installed fails with the install command", () => {
    const result = probe(app, { reportTo: ["mlflow"] });
    expect(result.error).toContain(
      "@trainkit/callback-mlflow is not installed in this application. Install it: npm install @trainkit/callback-mlflow",
    );
  });

  test("an unknown name fails listing the known and installed names", () => {
    const result = probe(app, { reportTo: ["acme_jsnol"] });
    expect(result.error).toContain(
      'reportTo lists "acme_jsnol", which is not a known integration. Did you mean "acme_jsonl"?',
    );
    expect(result.error).toContain("Known: azure_ml, clearml");
    expect(result.error).toContain("Installed here: ");
    expect(result.error).toMatch(/acme_flaky/);
  });

  test('failurePolicy "raise" lets an integration\'s error stop training', () => {
    const result = probe(app, { reportTo: ["acme_flaky"], failurePolicy: "raise" });
    expect(result.error).toContain("the acme server said no");
  });

  test("TRAINKIT_PLUGINS adds a plugin that is not a dependency", () => {
    const file = join(app, "local-plugin.mjs");
    writeFileSync(
      file,
      `import { TrainerCallback, definePlugin } from "@trainkit/core/plugin";
import { writeFileSync } from "node:fs";
class Local extends TrainerCallback { onTrainEnd() { writeFileSync("local-ran", "yes"); } }
export default definePlugin({ name: "local_thing", create: () => new Local() });`,
    );
    const result = probe(
      app,
      { reportTo: ["local_thing"] },
      { TRAINKIT_PLUGINS: "./local-plugin.mjs" },
    );
    expect(result.error).toBeUndefined();
    expect(readFileSync(join(app, "local-ran"), "utf8")).toBe("yes");
  });

  test("trainkit env lists the plugins, their availability and what all selects", () => {
    const out = execFileSync(join(app, "node_modules/.bin/trainkit"), ["env"], {
      cwd: app,
      encoding: "utf8",
      env: { ...process.env, ACME_JSONL_DIR: "", TRAINKIT_PLUGINS: "" },
    });
    expect(out).toMatch(
      /acme_jsonl\s+@acme\/trainkit-jsonl@1\.0\.0 — not available: set ACME_JSONL_DIR/,
    );
    expect(out).toMatch(/acme_flaky\s+@acme\/trainkit-flaky@1\.0\.0 — available/);
    expect(out).toMatch(/tensorboard\s+@trainkit\/callback-tensorboard@0\.1\.0 — available/);
    expect(out).toContain('reportTo "all"   Integrations: tensorboard');
  });
});

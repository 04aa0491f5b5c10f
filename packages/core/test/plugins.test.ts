// The plugin layer in one process: the SDK's helpers, definePlugin's checks, reportTo selection
// with plugins given directly, the failure guard, and integrations across a resume.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  PrinterCallback,
  Trainer,
  TrainerCallback,
  TrainerState,
  TrainingArguments,
  setLogger,
  type StateRecord,
} from "../src/index.js";
import {
  definePlugin,
  flattenDict,
  guardIntegration,
  keySanitizers,
  numericLogs,
  rewriteLogs,
  selectPlugins,
} from "../src/plugin/index.js";

const work = mkdtempSync(join(tmpdir(), "trainkit-plugins-"));
const messages: string[] = [];
beforeAll(async () => {
  await tf.setBackend("cpu");
  setLogger({ info: (m) => messages.push(`info: ${m}`), warn: (m) => messages.push(`warn: ${m}`) });
});
afterAll(() => {
  setLogger();
  rmSync(work, { recursive: true, force: true });
});

const context = () => ({
  args: new TrainingArguments({ reportTo: "all" }),
  env: {},
  logger: { info() {}, warn() {} },
});

describe("SDK helpers", () => {
  test("rewriteLogs follows HF: eval_/test_ prefixes become folders, the rest goes under train/", () => {
    expect(
      rewriteLogs({ loss: 1, eval_loss: 2, test_acc: 3, train_loss: 4, epoch: 1, predict_loss: 5 }),
    ).toEqual({
      "train/loss": 1,
      "eval/loss": 2,
      "test/acc": 3,
      "train/train_loss": 4,
      "train/epoch": 1,
      "train/predict_loss": 5,
    });
  });

  test("flattenDict and numericLogs", () => {
    expect(flattenDict({ a: { b: 1, c: { d: "x" } }, e: [1] })).toEqual({
      "a/b": 1,
      "a/c/d": "x",
      e: [1],
    });
    expect(numericLogs({ loss: 1, bad: NaN, inf: Infinity, text: "x" })).toEqual({
      values: { loss: 1 },
      skipped: ["bad", "inf", "text"],
    });
  });

  test("definePlugin refuses a bad name or a missing create", () => {
    expect(() => definePlugin({ name: "Bad Name", create: () => new TrainerCallback() })).toThrow(
      /lowercase letters/,
    );
    expect(() => definePlugin({ name: "ok" } as never)).toThrow(/create must be a function/);
    expect(
      definePlugin({
        name: "ok",
        isAvailable: () => false,
        create: () => new TrainerCallback(),
      }).isAvailable(context()),
    ).toEqual({
      available: false,
      reason: "not configured",
    });
  });
});

describe("the failure guard", () => {
  class Throws extends TrainerCallback {
    calls = 0;
    override onLog() {
      this.calls++;
      throw new Error("server said no: Bearer abc.def.ghi");
    }
    override async onSave() {
      throw new Error("async failure");
    }
  }
  const args = new TrainingArguments({ reportTo: "none" });

  test('"warn": the first error is reported once, masked, and the integration is switched off', () => {
    const warnings: string[] = [];
    const callback = new Throws();
    const guarded = guardIntegration(callback, "demo", "warn", {
      info() {},
      warn: (m) => warnings.push(m),
    });
    expect(guarded).toBe(callback); // same instance, same class: stateful protocol intact
    guarded.onLog(args, new TrainerState(), undefined as never, {});
    guarded.onLog(args, new TrainerState(), undefined as never, {});
    expect(callback.calls).toBe(1);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('Integration "demo" failed in onLog');
    expect(warnings[0]).not.toContain("abc.def.ghi");
  });

  test('"warn": a rejected promise is caught too', async () => {
    const warnings: string[] = [];
    const guarded = guardIntegration(new Throws(), "demo", "warn", {
      info() {},
      warn: (m) => warnings.push(m),
    });
    await expect(
      guarded.onSave(args, new TrainerState(), undefined as never, {}),
    ).resolves.toBeUndefined();
    expect(warnings[0]).toContain("failed in onSave: async failure");
  });

  test('"raise": errors pass through', () => {
    const guarded = guardIntegration(new Throws(), "demo", "raise", { info() {}, warn() {} });
    expect(() => guarded.onLog(args, new TrainerState(), undefined as never, {})).toThrow(
      "server said no",
    );
  });
});

describe("selection with plugins given directly", () => {
  const plugin = (name: string, available = true) =>
    definePlugin({
      name,
      isAvailable: () =>
        available
          ? { available: true }
          : { available: false, reason: `set ${name.toUpperCase()}_URL` },
      create: () => new TrainerCallback(),
    });

  test('"all": first-party names in their fixed order, then the rest by name; unavailable ones skipped', async () => {
    const plugins = [
      plugin("zeta"),
      plugin("tensorboard"),
      plugin("alpha"),
      plugin("mlflow", false),
      plugin("azure_ml"),
    ];
    const { plugins: chosen, summary } = await selectPlugins("all", context(), {
      plugins,
      cwd: work,
    });
    expect(chosen.map((p) => p.name)).toEqual(["azure_ml", "tensorboard", "alpha", "zeta"]);
    expect(summary).toContain("skipped: mlflow (set MLFLOW_URL)");
  });

  test("keySanitizers.mlflow is HF's rule (spec 1.6 table)", () => {
    expect(keySanitizers.mlflow("eval_acc(%)")).toBe("eval_acc___");
    expect(keySanitizers.mlflow("f1@5")).toBe("f1_5");
    expect(keySanitizers.mlflow("a:b c/d")).toBe("a:b c/d");
    expect(keySanitizers.mlflow("é-ß")).toBe("_-_");
    expect(keySanitizers.mlflow("k".repeat(300))).toHaveLength(300); // the caller drops it
  });

  test('"all" leaves out plugins with autoSelect: false (HF: flyte acts only when named)', async () => {
    const flyte = definePlugin({
      name: "flyte",
      autoSelect: false,
      create: () => new TrainerCallback(),
    });
    const plugins = [flyte, plugin("tensorboard")];
    const all = await selectPlugins("all", context(), { plugins, cwd: work });
    expect(all.plugins.map((p) => p.name)).toEqual(["tensorboard"]);
    expect(all.summary).toContain("flyte (used only when listed in reportTo)");
    const named = await selectPlugins(["flyte"], context(), { plugins, cwd: work });
    expect(named.plugins).toEqual([flyte]);
  });

  test('"all" leaves azure_ml out when mlflow is active (HF), but a list can name both', async () => {
    const plugins = [plugin("mlflow"), plugin("azure_ml"), plugin("tensorboard")];
    const all = await selectPlugins("all", context(), { plugins, cwd: work });
    expect(all.plugins.map((p) => p.name)).toEqual(["mlflow", "tensorboard"]);
    expect(all.summary).toContain("skipped: azure_ml (mlflow is active");
    expect(all.summary).not.toContain("azure_ml [");
    const both = await selectPlugins(["azure_ml", "mlflow"], context(), { plugins, cwd: work });
    expect(both.plugins.map((p) => p.name)).toEqual(["azure_ml", "mlflow"]);
  });

  test("a list selects exactly those, and an unavailable one is an error", async () => {
    const plugins = [plugin("alpha"), plugin("beta", false)];
    expect(
      (await selectPlugins(["alpha"], context(), { plugins, cwd: work })).plugins.map(
        (p) => p.name,
      ),
    ).toEqual(["alpha"]);
    await expect(selectPlugins(["beta"], context(), { plugins, cwd: work })).rejects.toThrow(
      'reportTo lists "beta", but it is not configured: set BETA_URL.',
    );
  });
});

describe("integrations in a Trainer", () => {
  /** A stateful integration, as a tracker keeping its run id would be, that fails after a resume. */
  class RunTracker extends TrainerCallback {
    constructor(
      readonly runId: string,
      readonly failOnLog = false,
    ) {
      super();
    }
    override onLog() {
      if (this.failOnLog) throw new Error("tracker is down");
    }
    state(): StateRecord {
      return { args: { run_id: this.runId, fail_on_log: true }, attributes: {} };
    }
    static fromState(record: StateRecord) {
      return new RunTracker(String(record.args.run_id), Boolean(record.args.fail_on_log));
    }
  }
  const tracker = definePlugin({ name: "run_tracker", create: () => new RunTracker("run-1") });

  function trainer(outputDir: string, reportTo: string[] | "none") {
    const model = tf.sequential({
      layers: [
        tf.layers.dense({ inputShape: [2], units: 1, kernelInitializer: tf.initializers.zeros() }),
      ],
    });
    const rows = Array.from({ length: 16 }, (_, i) => ({ x: [i / 16, 1], y: i / 16 }));
    const t = new Trainer({
      model,
      loss: "meanSquaredError",
      trainDataset: rows,
      plugins: [tracker],
      args: new TrainingArguments({
        outputDir,
        maxSteps: 4,
        loggingSteps: 2,
        saveSteps: 2,
        disableTqdm: true,
        reportTo,
      }),
    });
    t.popCallback(PrinterCallback);
    return t;
  }

  test("integration callbacks run after DefaultFlowCallback and before the user's", async () => {
    const t = trainer(join(work, "order"), ["run_tracker"]);
    await t.train();
    expect(t.callbackHandler.callbackList.split("\n")).toEqual([
      "DefaultFlowCallback",
      "RunTracker",
    ]);
    expect(messages.some((m) => m.includes("Integrations: run_tracker [the plugins option]"))).toBe(
      true,
    );
  });

  test("an integration restored from a checkpoint keeps its failure guard", async () => {
    const dir = join(work, "resume");
    await trainer(dir, ["run_tracker"]).train();
    messages.length = 0;
    // The restored tracker throws in onLog; under "warn" training still finishes.
    const resumed = trainer(dir, ["run_tracker"]);
    const output = await resumed.train({ resumeFromCheckpoint: join(dir, "checkpoint-2") });
    expect(output.globalStep).toBe(4);
    const restored = resumed.callbackHandler.callbacks.find(
      (cb) => cb instanceof RunTracker,
    ) as RunTracker;
    expect(restored.runId).toBe("run-1");
    expect(
      messages.filter((m) =>
        m.includes('Integration "run_tracker" failed in onLog: tracker is down'),
      ),
    ).toHaveLength(1);
  });

  test("a stateful callback whose class name looks like a secret is stored, not redacted", () => {
    class TokenCounter extends TrainerCallback {
      state(): StateRecord {
        return { args: { count: 3, api_key: "sk-live-123" }, attributes: {} };
      }
      static fromState() {
        return new TokenCounter();
      }
    }
    const text = new TrainerState({ statefulCallbacks: [new TokenCounter()] }).toJsonString();
    expect(text).toContain('"TokenCounter": {');
    expect(text).toContain('"count": 3');
    expect(text).not.toContain("sk-live-123");
    expect(text).toContain('"api_key": "<REDACTED>"');
  });
});

describe("review fixes: the guard, selection and setup", () => {
  const args = new TrainingArguments({ reportTo: "none" });
  const quiet = () => {
    const warnings: string[] = [];
    return { warnings, logger: { info() {}, warn: (m: string) => warnings.push(m) } };
  };

  test("a return value that is not a TrainerControl is a failure, sync or async", async () => {
    class BadReturns extends TrainerCallback {
      override onLog() {
        return 5 as never;
      }
    }
    class BadAsync extends TrainerCallback {
      override async onSave() {
        return "x" as never;
      }
    }
    const a = quiet();
    const sync = guardIntegration(new BadReturns(), "bad", "warn", a.logger);
    expect(sync.onLog(args, new TrainerState(), undefined as never, {})).toBeUndefined();
    expect(a.warnings[0]).toContain("failed in onLog: it returned number 5, not a TrainerControl");
    const b = quiet();
    const asyncGuarded = guardIntegration(new BadAsync(), "bad", "warn", b.logger);
    await expect(
      asyncGuarded.onSave(args, new TrainerState(), undefined as never, {}),
    ).resolves.toBeUndefined();
    expect(b.warnings[0]).toContain("failed in onSave");
  });

  test("a switched-off integration still gets onTrainEnd, so it can close what it opened", () => {
    let closed = 0;
    class Closes extends TrainerCallback {
      override onLog() {
        throw new Error("down.");
      }
      override onTrainEnd() {
        closed++;
        throw new Error("also down");
      }
    }
    const q = quiet();
    const guarded = guardIntegration(new Closes(), "closes", "warn", q.logger);
    guarded.onLog(args, new TrainerState(), undefined as never, {});
    guarded.onTrainEnd(args, new TrainerState(), undefined as never, {});
    expect(closed).toBe(1);
    expect(q.warnings).toHaveLength(1);
    expect(q.warnings[0]).toContain("failed in onLog: down. It is switched off"); // one period
  });

  const broken = definePlugin({
    name: "broken",
    isAvailable: () => {
      throw new Error("cannot read config: password=hunter2");
    },
    create: () => new TrainerCallback(),
  });

  test('"all" skips a plugin that fails to load, saying why (masked); a list raises', async () => {
    const q = quiet();
    const ctx = { args: new TrainingArguments({ reportTo: "all" }), env: {}, logger: q.logger };
    const { plugins, summary } = await selectPlugins("all", ctx, { plugins: [broken], cwd: work });
    expect(plugins).toEqual([]);
    expect(summary).toContain(
      "skipped: broken (failed to load: cannot read config: password=<REDACTED>)",
    );
    await expect(selectPlugins(["broken"], ctx, { plugins: [broken], cwd: work })).rejects.toThrow(
      "cannot read config",
    );
  });

  test("two plugins with the same name: the first is used, with a warning", async () => {
    const q = quiet();
    const one = definePlugin({ name: "twin", create: () => new TrainerCallback() });
    const two = definePlugin({ name: "twin", create: () => new TrainerCallback() });
    const ctx = { args: new TrainingArguments({ reportTo: "all" }), env: {}, logger: q.logger };
    const { plugins } = await selectPlugins("all", ctx, { plugins: [one, two], cwd: work });
    expect(plugins).toEqual([one]);
    expect(q.warnings[0]).toContain('Two plugins are named "twin"');
  });

  class Probe extends TrainerCallback {}
  let createCalls = 0;
  const sometimes = definePlugin({
    name: "sometimes",
    create: () => {
      createCalls++;
      if (createCalls === 1) throw new Error("first try fails");
      return new Probe();
    },
  });
  function small(outputDir: string, plugin = sometimes) {
    const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 1 })] });
    const rows = Array.from({ length: 8 }, (_, i) => ({ x: [i / 8, 1], y: i / 8 }));
    const t = new Trainer({
      model,
      loss: "meanSquaredError",
      trainDataset: rows,
      plugins: [plugin],
      args: new TrainingArguments({
        outputDir,
        maxSteps: 2,
        saveStrategy: "no",
        disableTqdm: true,
        reportTo: [plugin.name],
      }),
    });
    t.popCallback(PrinterCallback);
    return t;
  }

  test("a failed integration setup is not kept: the next train() tries again", async () => {
    const t = small(join(work, "retry"));
    await expect(t.train()).rejects.toThrow("first try fails");
    expect(t.callbackHandler.callbacks.some((cb) => cb instanceof Probe)).toBe(false);
    await expect(t.train()).resolves.toMatchObject({ globalStep: 2 });
    expect(t.callbackHandler.callbacks.filter((cb) => cb instanceof Probe)).toHaveLength(1);
  });

  test("removeCallback(IntegrationClass) before train() keeps that integration out", async () => {
    const t = small(join(work, "removed"));
    t.removeCallback(Probe);
    await t.train();
    expect(t.callbackHandler.callbacks.some((cb) => cb instanceof Probe)).toBe(false);
  });
});

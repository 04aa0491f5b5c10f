// The conformance suite against real plugins: the two third-party fixtures
// (test/fixtures/plugins, also installed by core's real-install tests) and small plugins
// written here that each break one rule.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, test } from "vitest";
import {
  TrainerCallback,
  definePlugin,
  type PluginContext,
  type PluginDefinition,
  type TrainkitPlugin,
} from "@trainkit/core/plugin";
import type { StateRecord, TrainingArguments } from "@trainkit/core";
import { CHECKS, assertConformance, runConformance, type ConformanceReport } from "../src/index.js";

const work = mkdtempSync(join(tmpdir(), "trainkit-testkit-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let folders = 0;
const freshDir = (name: string) => join(work, `${name}-${++folders}`);

async function fixture(name: string): Promise<TrainkitPlugin> {
  const file = resolve(import.meta.dirname, "fixtures/plugins", name, "index.js");
  return ((await import(pathToFileURL(file).href)) as { default: TrainkitPlugin }).default;
}

const failure = (report: ConformanceReport, check: string) =>
  report.failed.find((f) => f.check === check)?.message;
const ALL = Object.values(CHECKS);

describe("the third-party fixtures", () => {
  test("acme-jsonl keeps the contract: every check passes", async () => {
    const dir = freshDir("jsonl");
    const stdoutWrite = process.stdout.write;
    const report = await runConformance(await fixture("acme-jsonl"), {
      env: { ACME_JSONL_DIR: dir },
      watchDirs: [dir],
      secrets: ["acme-secret-value-1"],
    });
    expect(report.failed).toEqual([]);
    expect(report.passed).toEqual(ALL);
    expect(report.ok).toBe(true);
    expect(report.plugin).toBe("acme_jsonl");
    // It really ran: every log of the run (6 steps, logging and evaluating every 2, the final
    // train log, then evaluate()) is in its file.
    const lines = readFileSync(join(dir, "logs.jsonl"), "utf8").trim().split("\n");
    expect(lines).toHaveLength(8);
    expect(JSON.parse(lines[0]!)).toMatchObject({ step: 2, loss: expect.any(Number) });
    expect(report.notes).toContainEqual({
      check: CHECKS.stateRoundTrip,
      message: expect.stringContaining("not stateful"),
    });
    expect(report.notes).toContainEqual({
      check: CHECKS.isAvailable,
      message: 'with an empty env: not available, "set ACME_JSONL_DIR"',
    });
    // Everything process-wide is put back.
    expect(process.env.ACME_JSONL_DIR).toBeUndefined();
    expect(process.stdout.write).toBe(stdoutWrite);
    // What the Trainer printed was captured, not shown.
    expect(report.log.some((line) => line.startsWith("stdout: {'loss'"))).toBe(true);
    await expect(
      assertConformance(await fixture("acme-jsonl"), { env: { ACME_JSONL_DIR: dir } }),
    ).resolves.toMatchObject({ ok: true });
  });

  test('acme-flaky fails "every event" with its own (redacted) message', async () => {
    const report = await runConformance(await fixture("acme-flaky"));
    expect(report.ok).toBe(false);
    const message = failure(report, CHECKS.everyEvent)!;
    expect(message).toContain(
      'the plugin threw in onLog: "the acme server said no (token=<REDACTED> was rejected)"',
    );
    expect(message).toContain("onLog (1 of 8)");
    // Switched off after its failure, it still gets onTrainEnd (best-effort) to close up.
    expect(message).not.toContain("onTrainEnd");
    expect(JSON.stringify(report)).not.toContain("abc123");
    expect(report.passed).toEqual([
      CHECKS.trainEndDeadline,
      CHECKS.noSecrets,
      CHECKS.stateRoundTrip,
      CHECKS.isAvailable,
    ]);

    const error = await assertConformance(await fixture("acme-flaky")).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(
      /^Plugin "acme_flaky" fails 1 of 5 conformance checks:\n {2}✗ every event: the plugin threw in onLog/,
    );
    expect((error as Error).message).not.toContain("onTrainEnd settles");
    expect((error as Error).message).not.toContain("abc123");
  });
});

describe("no secrets written", () => {
  const SECRET = "sk-live-0123456789abcdef";

  test("a plugin that writes the token into a file fails, naming the file", async () => {
    const dir = freshDir("leaky");
    class LeakyCallback extends TrainerCallback {
      constructor(private readonly context: PluginContext) {
        super();
      }
      override onTrainBegin() {
        mkdirSync(dir, { recursive: true });
        writeFileSync(
          join(dir, "session.json"),
          JSON.stringify({ token: this.context.env.LEAKY_TOKEN }),
        );
      }
    }
    const plugin = definePlugin({
      name: "leaky",
      isAvailable: ({ env }) =>
        env.LEAKY_TOKEN ? { available: true } : { available: false, reason: "set LEAKY_TOKEN" },
      create: (context) => new LeakyCallback(context),
    });
    const report = await runConformance(plugin, {
      env: { LEAKY_TOKEN: SECRET },
      secrets: [SECRET],
      watchDirs: [dir],
    });
    expect(report.failed).toEqual([
      { check: CHECKS.noSecrets, message: `${join(dir, "session.json")} contains secret #1` },
    ]);
    expect(JSON.stringify(report)).not.toContain(SECRET);
  });

  test("a secret-named env variable is a secret without listing it; printing it fails", async () => {
    class ChattyCallback extends TrainerCallback {
      constructor(private readonly context: PluginContext) {
        super();
      }
      override onTrainBegin() {
        console.log(`connecting with key ${this.context.env.CHATTY_API_KEY}`);
        this.context.logger.warn(`retrying, key=${this.context.env.CHATTY_API_KEY}`);
      }
    }
    const plugin = definePlugin({ name: "chatty", create: (c) => new ChattyCallback(c) });
    const report = await runConformance(plugin, { env: { CHATTY_API_KEY: SECRET } });
    const message = failure(report, CHECKS.noSecrets)!;
    expect(message).toContain(
      'what was printed with console.log() contains secret #1: "connecting with key <REDACTED>"',
    );
    expect(message).toContain("a trainkit log message (warn) contains secret #1");
    expect(JSON.stringify(report)).not.toContain(SECRET);
    expect(report.failed.map((f) => f.check)).toEqual([CHECKS.noSecrets]);
  });

  test("the Trainer's own files are scanned too, binary ones included", async () => {
    // Keeps the token in its state under a name trainkit does not recognise as secret, and
    // writes it, in UTF-16, into a binary file of its own in the output folder.
    class Holder extends TrainerCallback {
      constructor(readonly session: string) {
        super();
      }
      override onTrainEnd(args: TrainingArguments) {
        writeFileSync(join(args.outputDir, "holder.bin"), Buffer.from(this.session, "utf16le"));
      }
      state(): StateRecord {
        return { args: { session: this.session }, attributes: {} };
      }
      static fromState(record: StateRecord) {
        return new Holder(record.args.session as string);
      }
    }
    const plugin = definePlugin({ name: "holder", create: ({ env }) => new Holder(env.HOLDER!) });
    const outputDir = freshDir("holder");
    const report = await runConformance(plugin, {
      env: { HOLDER: SECRET },
      secrets: [SECRET],
      outputDir,
    });
    expect(report.failed.map((f) => f.check)).toEqual([CHECKS.noSecrets]);
    const message = failure(report, CHECKS.noSecrets)!;
    for (const file of [
      "run/checkpoint-2/trainer_state.json",
      "run/holder.bin",
      "resumed/holder.bin",
    ])
      expect(message).toContain(`${join(outputDir, file)} contains secret #1`);
    expect(JSON.stringify(report)).not.toContain(SECRET);
  });

  test("a secret kept in state() under a secret name is redacted on disk: the round trip says so", async () => {
    // (Not "TokenHolder": trainkit would redact the whole record for its class name.)
    class KeyKeeper extends TrainerCallback {
      constructor(readonly apiToken: string) {
        super();
      }
      state(): StateRecord {
        return { args: { api_token: this.apiToken }, attributes: {} };
      }
      static fromState(record: StateRecord) {
        return new KeyKeeper(record.args.api_token as string);
      }
    }
    const plugin = definePlugin({
      name: "token_holder",
      create: ({ env }) => new KeyKeeper(env.HOLDER_TOKEN!),
    });
    const report = await runConformance(plugin, { env: { HOLDER_TOKEN: SECRET } });
    expect(report.passed).toContain(CHECKS.noSecrets);
    expect(failure(report, CHECKS.stateRoundTrip)).toContain(
      "at step 2, args.api_token is redacted in trainer_state.json (trainkit never writes secrets to files)",
    );
    expect(JSON.stringify(report)).not.toContain(SECRET);
  });
});

describe("onTrainEnd settles within its deadline", () => {
  const slowPlugin = (ms: number) =>
    definePlugin({
      name: "slow",
      create: () =>
        new (class SlowCallback extends TrainerCallback {
          override onTrainEnd() {
            return new Promise<void>((done) => setTimeout(done, ms).unref());
          }
        })(),
    });

  test("a plugin whose onTrainEnd waits past the deadline fails, without holding the run up", async () => {
    const start = performance.now();
    const report = await runConformance(slowPlugin(5_000), { trainEndDeadlineMs: 200 });
    expect(performance.now() - start).toBeLessThan(4_000);
    expect(report.failed).toEqual([
      {
        check: CHECKS.trainEndDeadline,
        message: expect.stringContaining("onTrainEnd had not settled after 200 ms"),
      },
    ]);
  });

  test("one that settles in time passes", async () => {
    const report = await runConformance(slowPlugin(50), { trainEndDeadlineMs: 2_000 });
    expect(report.ok).toBe(true);
    expect(report.notes).toContainEqual({
      check: CHECKS.trainEndDeadline,
      message: expect.stringMatching(/^onTrainEnd settled in \d+ ms at most \(deadline 2000 ms\)$/),
    });
  });

  test("a synchronous onTrainEnd that blocks too long fails", async () => {
    const plugin = definePlugin({
      name: "busy",
      create: () =>
        new (class BusyCallback extends TrainerCallback {
          override onTrainEnd() {
            const until = performance.now() + 150;
            while (performance.now() < until);
          }
        })(),
    });
    const report = await runConformance(plugin, { trainEndDeadlineMs: 50 });
    expect(failure(report, CHECKS.trainEndDeadline)).toMatch(
      /^onTrainEnd took \d+ ms; the deadline is 50 ms$/,
    );
  });
});

describe("state round-trips through a checkpoint", () => {
  /**
   * A plugin whose callback counts the logs it has seen: `seen` is its state, recorded as HF's
   * ExportableState does. `restore` says how its fromState rebuilds it.
   */
  function countingPlugin(
    restore: "faithfully" | "forgetting the attributes" | "throwing",
    extraState: () => Record<string, unknown> = () => ({}),
  ): TrainkitPlugin {
    class CountingCallback extends TrainerCallback {
      seen = 0;
      constructor(readonly label: string) {
        super();
      }
      override onLog() {
        this.seen += 1;
      }
      state(): StateRecord {
        return { args: { label: this.label }, attributes: { seen: this.seen, ...extraState() } };
      }
      static fromState(record: StateRecord) {
        if (restore === "throwing") throw new Error("cannot rebuild");
        const callback = new CountingCallback(record.args.label as string);
        if (restore === "faithfully") callback.seen = record.attributes.seen as number;
        return callback;
      }
    }
    return definePlugin({ name: "counting", create: () => new CountingCallback("runs") });
  }

  test("a stateful plugin whose state survives the checkpoint passes", async () => {
    const report = await runConformance(countingPlugin("faithfully"));
    expect(report.failed).toEqual([]);
    expect(report.notes.filter((n) => n.check === CHECKS.stateRoundTrip)).toEqual([]);
  });

  test("a broken fromState fails the round trip", async () => {
    // It forgets the attributes: a restored callback starts counting from 0 again.
    const report = await runConformance(countingPlugin("forgetting the attributes"));
    expect(report.failed.map((f) => f.check)).toEqual([CHECKS.stateRoundTrip]);
    const message = failure(report, CHECKS.stateRoundTrip)!;
    expect(message).toContain(
      "attributes.seen is 0 in CountingCallback.fromState(record).state() but 4 in the checkpoint's record",
    );
    expect(message).toContain(
      "after resuming, attributes.seen is 0 in the restored callback's state() but 4 in the checkpoint",
    );
  });

  test("a fromState that throws fails the round trip", async () => {
    const report = await runConformance(countingPlugin("throwing"));
    const message = failure(report, CHECKS.stateRoundTrip)!;
    expect(message).toContain("CountingCallback.fromState(record).state() threw: cannot rebuild");
    expect(message).toContain("the run resumed from checkpoint-4 failed: cannot rebuild");
  });

  test("a state() that JSON cannot keep fails", async () => {
    const report = await runConformance(
      countingPlugin("faithfully", () => ({ startedAt: new Date(0) })),
    );
    expect(failure(report, CHECKS.stateRoundTrip)).toContain(
      "at step 2, attributes.startedAt is a Date in state(), which JSON does not keep",
    );
  });
});

describe("isAvailable explains itself", () => {
  const plugin = (isAvailable: PluginDefinition["isAvailable"]) =>
    definePlugin({ name: "config", isAvailable, create: () => new TrainerCallback() });
  const env = { CONFIG_URL: "http://127.0.0.1:1" };

  test("a bare false does not say what to set", async () => {
    const report = await runConformance(
      plugin(({ env }) => Boolean(env.CONFIG_URL)),
      { env },
    );
    expect(report.failed).toEqual([
      {
        check: CHECKS.isAvailable,
        message: expect.stringContaining(
          'with an empty env isAvailable returns false, which users see as "not configured"',
        ),
      },
    ]);
  });

  test("an isAvailable that throws on a missing variable fails", async () => {
    const report = await runConformance(
      plugin(({ env }) => {
        if (!env.CONFIG_URL) throw new Error("CONFIG_URL is undefined");
        return true;
      }),
      { env },
    );
    expect(failure(report, CHECKS.isAvailable)).toBe(
      'isAvailable threw with an empty env: CONFIG_URL is undefined; return { available: false, reason: "set <VARIABLE>" } instead',
    );
  });
});

describe("arguments", () => {
  test("a value that is not a plugin, and bad options, are refused at once", () => {
    expect(() => runConformance({} as TrainkitPlugin)).toThrow(/expects a plugin/);
    const ok = definePlugin({ name: "ok", create: () => new TrainerCallback() });
    expect(() => runConformance(ok, { secrets: [""] })).toThrow(/non-empty strings/);
    expect(() => runConformance(ok, { trainEndDeadlineMs: 0 })).toThrow(/above 0/);
    expect(() => runConformance(ok, { backend: "gpu" as "cpu" })).toThrow(/backend/);
  });

  test("an outputDir given is kept, with both runs in it", async () => {
    const outputDir = freshDir("kept");
    const plugin = definePlugin({ name: "quiet", create: () => new TrainerCallback() });
    const report = await runConformance(plugin, { outputDir });
    expect(report.ok).toBe(true);
    expect(existsSync(join(outputDir, "run", "checkpoint-6", "trainer_state.json"))).toBe(true);
    expect(existsSync(join(outputDir, "resumed"))).toBe(false); // not stateful: no resumed run
  });
});

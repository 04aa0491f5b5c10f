// The outbox against a scripted backend (a stand-in for a tracker's server, not for our code):
// order, batching, retries with backoff and Retry-After, rejects set aside, halts, bounded
// memory with the spool, drains with a deadline, crashes of the writing process, and
// `trainkit sync`.
import { execFile, execFileSync, spawn } from "node:child_process";
import { promisify } from "node:util";
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { syncOutputDir } from "../src/cli/sync.js";
import {
  DeliveryError,
  Outbox,
  backoffDelay,
  definePlugin,
  listOutboxes,
  newStreamId,
  outboxDir,
  parseRetryAfter,
  type DeliveryContext,
  type OutboxTransport,
} from "../src/plugin/index.js";
import { Spool } from "../src/plugin/outbox/spool.js";
import { TrainerCallback } from "../src/index.js";

const work = mkdtempSync(join(tmpdir(), "trainkit-outbox-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let folders = 0;
const freshDir = () => outboxDir(join(work, `run-${++folders}`), "fake", newStreamId());

type Point = { k: string; s: number; v: number } & Record<string, unknown>;
const points = (n: number, from = 0): Point[] =>
  Array.from({ length: n }, (_, i) => ({ k: i % 2 ? "loss" : "acc", s: from + i, v: i / 10 }));

/** A backend that records what arrived; `script` decides each request's fate. */
class ScriptedBackend implements OutboxTransport<Point> {
  received: Point[] = [];
  requests: { size: number; at: number }[] = [];
  constructor(
    readonly maxBatch = 100,
    readonly script: (
      batch: readonly Point[],
      call: number,
    ) => "ok" | Error | Promise<never> = () => "ok",
  ) {}
  batchSize(records: readonly Point[]): number {
    return Math.min(this.maxBatch, records.length);
  }
  async deliver(batch: readonly Point[], _context: DeliveryContext): Promise<void> {
    this.requests.push({ size: batch.length, at: performance.now() });
    const fate = this.script(batch, this.requests.length);
    if (fate instanceof Promise) return fate;
    if (fate instanceof Error) throw fate;
    this.received.push(...batch);
  }
}

const quiet = () => {
  const messages: string[] = [];
  return {
    messages,
    logger: {
      info: (m: string) => messages.push(`info: ${m}`),
      warn: (m: string) => messages.push(`warn: ${m}`),
    },
  };
};

const fastRetry = { baseMs: 5, maxMs: 50, jitter: 0.5, reportAfter: 3 };

describe("delivery", () => {
  test("enqueue returns at once; records arrive in order, in batches within the backend's limit", async () => {
    const backend = new ScriptedBackend(64);
    const { logger } = quiet();
    const outbox = Outbox.open({
      dir: freshDir(),
      integration: "fake",
      transport: backend,
      logger,
      flushIntervalMs: 20,
    });
    const sent = points(1000);
    for (const p of sent) outbox.enqueue(p);
    expect(backend.requests).toHaveLength(0); // nothing is sent from inside enqueue
    const report = await outbox.drain({ deadlineMs: 10_000 });
    expect(report).toEqual({ delivered: 1000, pending: 0, rejected: 0 });
    expect(backend.received).toEqual(sent);
    expect(Math.max(...backend.requests.map((r) => r.size))).toBe(64);
    await outbox.close();
  });

  test("transient failures are retried with backoff until delivered: nothing lost, nothing twice", async () => {
    const backend = new ScriptedBackend(10, (_batch, call) =>
      call <= 6 ? new DeliveryError("HTTP 503", { kind: "retry", status: 503 }) : "ok",
    );
    const { logger, messages } = quiet();
    const outbox = Outbox.open({
      dir: freshDir(),
      integration: "fake",
      transport: backend,
      logger,
      flushIntervalMs: 0,
      retry: fastRetry,
    });
    outbox.enqueue(points(35));
    const report = await outbox.drain({ deadlineMs: 10_000 });
    expect(report.pending).toBe(0);
    expect(backend.received).toEqual(points(35));
    // Backoff grows: the gaps between the failed attempts are not all equal to the first.
    const gaps = backend.requests.slice(1, 7).map((r, i) => r.at - backend.requests[i]!.at);
    expect(gaps.at(-1)!).toBeGreaterThan(gaps[0]!);
    expect(messages.filter((m) => m.includes("cannot reach the tracker"))).toHaveLength(1);
    expect(messages.some((m) => m.includes("delivering again"))).toBe(true);
    await outbox.close();
  });

  test("Retry-After is honoured", async () => {
    const backend = new ScriptedBackend(10, (_b, call) =>
      call === 1 ? new DeliveryError("HTTP 429", { kind: "retry", retryAfterMs: 400 }) : "ok",
    );
    const outbox = Outbox.open({
      dir: freshDir(),
      integration: "fake",
      transport: backend,
      logger: quiet().logger,
      flushIntervalMs: 0,
      retry: fastRetry,
    });
    outbox.enqueue(points(3));
    await outbox.drain({ deadlineMs: 5000 });
    expect(backend.requests[1]!.at - backend.requests[0]!.at).toBeGreaterThanOrEqual(390);
    await outbox.close();
  });

  test("a rejected record is found by splitting its batch, set aside once, and the rest delivered in order", async () => {
    const bad = (p: Point) => p.s === 37 || p.s === 38;
    const backend = new ScriptedBackend(100, (batch) =>
      batch.some(bad)
        ? new DeliveryError("INVALID_PARAMETER_VALUE: bad key", { kind: "reject", status: 400 })
        : "ok",
    );
    const { logger, messages } = quiet();
    const dir = freshDir();
    const outbox = Outbox.open({
      dir,
      integration: "fake",
      transport: backend,
      logger,
      flushIntervalMs: 0,
    });
    outbox.enqueue(points(100));
    const report = await outbox.drain({ deadlineMs: 5000 });
    expect(report).toEqual({ delivered: 98, pending: 0, rejected: 2 });
    expect(backend.received).toEqual(points(100).filter((p) => !bad(p)));
    const rejects = readFileSync(join(dir, "rejects.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(rejects.map((r) => r.record.s)).toEqual([37, 38]);
    expect(rejects[0].reason).toContain("bad key");
    expect(messages.filter((m) => m.includes("rejected a record"))).toHaveLength(2);
    // Bisection, not one request per record.
    expect(backend.requests.length).toBeLessThan(30);
    await outbox.close();
  });

  test("halt stops delivery and keeps every record for a later sync", async () => {
    const dir = freshDir();
    const backend = new ScriptedBackend(
      10,
      () => new DeliveryError("HTTP 401: token expired", { kind: "halt", status: 401 }),
    );
    const { logger, messages } = quiet();
    const outbox = Outbox.open({
      dir,
      integration: "fake",
      transport: backend,
      logger,
      flushIntervalMs: 0,
    });
    outbox.enqueue(points(25));
    const report = await outbox.drain({ deadlineMs: 5000 });
    expect(report.pending).toBe(25);
    expect(report.reason).toContain("token expired");
    expect(backend.requests).toHaveLength(1);
    expect(messages.join("\n")).toContain("delivery stopped");
    expect(messages.join("\n")).toContain(`trainkit sync ${resolve(dir, "../../../..")}`);
    await outbox.close();
    const later = new ScriptedBackend(10);
    const again = Outbox.open({
      dir,
      integration: "fake",
      transport: later,
      logger,
      flushIntervalMs: 0,
    });
    expect(again.pending).toBe(25);
    await again.drain({ deadlineMs: 5000 });
    expect(later.received).toEqual(points(25));
    await again.close();
  });

  test("a drain stops at its deadline, aborting the request in flight, and says what is left", async () => {
    const backend = new ScriptedBackend(10, () => new Promise<never>(() => {}));
    let aborted = 0;
    const hanging: OutboxTransport<Point> = {
      batchSize: (r) => backend.batchSize(r),
      deliver: (batch, context) =>
        new Promise((_, reject) => {
          context.signal.addEventListener("abort", () => {
            aborted++;
            reject(new Error("aborted"));
          });
          void backend.deliver(batch, context);
        }),
    };
    const { logger, messages } = quiet();
    const outbox = Outbox.open({
      dir: freshDir(),
      integration: "fake",
      transport: hanging,
      logger,
      flushIntervalMs: 0,
    });
    outbox.enqueue(points(30));
    const started = performance.now();
    const report = await outbox.drain({ deadlineMs: 300 });
    expect(performance.now() - started).toBeLessThan(2500);
    expect(report.pending).toBe(30);
    expect(aborted).toBe(1);
    expect(messages.join("\n")).toMatch(/30 record\(s\) not delivered/);
    await outbox.close();
  });
});

describe("the spool", () => {
  test("memory stays bounded while the backend is down; everything arrives, in order, once it is back", async () => {
    let down = true;
    const backend = new ScriptedBackend(500, () =>
      down ? new DeliveryError("ECONNREFUSED", { kind: "retry" }) : "ok",
    );
    const outbox = Outbox.open({
      dir: freshDir(),
      integration: "fake",
      transport: backend,
      logger: quiet().logger,
      flushIntervalMs: 0,
      maxMemoryRecords: 200,
      retry: fastRetry,
    });
    let peak = 0;
    const sent: Point[] = [];
    for (let i = 0; i < 100; i++) {
      sent.push(...points(100, i * 100));
      outbox.enqueue(points(100, i * 100));
      peak = Math.max(peak, outbox.inMemory);
    }
    expect(outbox.pending).toBe(10_000);
    expect(peak).toBeLessThanOrEqual(200);
    down = false;
    const report = await outbox.drain({ deadlineMs: 20_000 });
    expect(report.pending).toBe(0);
    expect(backend.received).toEqual(sent);
    await outbox.close();
  });

  test("segments rotate and delivered ones are deleted; long lines read back whole", () => {
    const dir = join(work, "segments");
    const spool = new Spool<Point>(dir, { segmentBytes: 1000 });
    const big = { k: "text", s: 0, v: 0, blob: "x".repeat(1_500_000) };
    spool.append([...points(100), big, ...points(100, 100)]);
    expect(readdirSync(dir).filter((f) => f.startsWith("segment-")).length).toBe(1); // rotation happens between appends
    spool.append(points(50, 200));
    spool.append(points(50, 250));
    expect(readdirSync(dir).filter((f) => f.startsWith("segment-")).length).toBe(3);
    const all = spool.read(spool.start, 10_000).map((r) => r.record);
    expect(all).toHaveLength(301);
    expect(all[100]).toEqual(big);
    spool.advance(spool.read(spool.start, 201).at(-1)!.end, 201);
    const left = new Spool<Point>(dir, { segmentBytes: 1000 });
    expect(left.pending).toBe(100);
    expect(left.read(left.start, 1000).map((r) => r.record)).toEqual([
      ...points(50, 200),
      ...points(50, 250),
    ]);
    spool.close();
    left.close();
  });

  test("a torn last line (a crash mid-write) is cut, and appends go on cleanly", () => {
    const dir = join(work, "torn");
    const spool = new Spool<Point>(dir);
    spool.append(points(3));
    spool.close();
    appendFileSync(join(dir, "segment-000001.jsonl"), '{"k":"acc","s":9');
    const reopened = new Spool<Point>(dir);
    expect(reopened.pending).toBe(3);
    reopened.append(points(1, 3));
    expect(reopened.read(reopened.start, 10).map((r) => r.record)).toEqual([
      ...points(3),
      ...points(1, 3),
    ]);
    reopened.close();
  });

  test("records enqueued by a process that is then SIGKILLed are delivered by the next one", async () => {
    const outputDir = join(work, "killed");
    const dir = outboxDir(outputDir, "fake", "stream-1");
    const script = `
      import { Outbox } from ${JSON.stringify(resolve(import.meta.dirname, "../dist/plugin/index.js"))};
      const outbox = Outbox.open({ dir: ${JSON.stringify(dir)}, integration: "fake", flushIntervalMs: 0,
        transport: { batchSize: (r) => r.length, deliver: () => new Promise(() => {}) } });
      for (let i = 0; i < 5000; i++) outbox.enqueue({ k: i % 2 ? "loss" : "acc", s: i, v: i / 10 });
      console.log("enqueued");
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise<void>((done) =>
      child.stdout.on("data", (d: Buffer) => d.toString().includes("enqueued") && done()),
    );
    child.kill("SIGKILL");
    await new Promise((done) => child.on("exit", done));
    expect(JSON.parse(readFileSync(join(dir, "lock"), "utf8")).pid).toBe(child.pid); // left behind, stale
    expect(listOutboxes(outputDir).map((o) => o.pending)).toEqual([5000]);

    const backend = new ScriptedBackend(1000);
    const outbox = Outbox.open({
      dir,
      integration: "fake",
      transport: backend,
      logger: quiet().logger,
      flushIntervalMs: 0,
    });
    await outbox.drain({ deadlineMs: 10_000 });
    expect(backend.received).toEqual(points(5000));
    await outbox.close();
    expect(existsSync(join(dir, "lock"))).toBe(false);
  });

  test("one outbox per folder: a second open is refused with what to do", async () => {
    const dir = freshDir();
    const outbox = Outbox.open({
      dir,
      integration: "fake",
      transport: new ScriptedBackend(),
      logger: quiet().logger,
    });
    expect(() =>
      Outbox.open({ dir, integration: "fake", transport: new ScriptedBackend() }),
    ).toThrow(/already open in this process/);
    await outbox.close();
    const lock = join(dir, "lock");
    const open = () => Outbox.open({ dir, integration: "fake", transport: new ScriptedBackend() });
    writeFileSync(lock, JSON.stringify({ pid: process.ppid, host: hostname() })); // a live process
    expect(open).toThrow(new RegExp(`in use by process ${process.ppid}.*delete ${lock}`));
    writeFileSync(lock, JSON.stringify({ pid: 1, host: "build-node-7" })); // another host: no guessing
    expect(open).toThrow(/in use by process 1 on host build-node-7/);
    writeFileSync(lock, ""); // being written by another process right now
    expect(open).toThrow(/being opened by another process/);
    const old = new Date(Date.now() - 60_000);
    utimesSync(lock, old, old); // an empty lock left by a crash long ago is taken over
    await open().close();
    expect(existsSync(lock)).toBe(false);
    // The same folder spelled differently is still the same outbox.
    const first = open();
    expect(() =>
      Outbox.open({ dir: dir + "/", integration: "fake", transport: new ScriptedBackend() }),
    ).toThrow(/already open in this process/);
    await first.close();
  });

  test("meta.json keeps what transports save, and never loses it across reopenings", async () => {
    const dir = freshDir();
    const backend: OutboxTransport<Point> = {
      batchSize: (r) => r.length,
      deliver: async (_batch, context) => {
        if (context.meta.runId === undefined) context.saveMeta({ runId: "abc123" });
      },
    };
    const outbox = Outbox.open({
      dir,
      integration: "fake",
      transport: backend,
      meta: { experiment: "e" },
      logger: quiet().logger,
      flushIntervalMs: 0,
    });
    outbox.enqueue(points(2));
    await outbox.drain();
    await outbox.close();
    const meta = JSON.parse(readFileSync(join(dir, "meta.json"), "utf8"));
    expect(meta).toMatchObject({ integration: "fake", experiment: "e", runId: "abc123" });
  });
});

describe("backoff", () => {
  test("doubles per attempt with jitter and a cap; Retry-After in seconds or as a date", () => {
    const options = { baseMs: 100, maxMs: 1000, jitter: 1, reportAfter: 5 };
    expect([1, 2, 3, 4, 5].map((a) => backoffDelay(a, options, () => 0))).toEqual([
      100, 200, 400, 800, 1000,
    ]);
    expect(backoffDelay(2, options, () => 0.5)).toBe(300);
    expect(backoffDelay(9, options, () => 1)).toBe(2000); // jitter on top of the cap spreads clients
    expect(parseRetryAfter("3")).toBe(3000);
    expect(parseRetryAfter("0.5")).toBe(500);
    const now = Date.parse("2026-11-28T10:00:00Z");
    expect(parseRetryAfter("Sat, 28 Nov 2026 10:00:07 GMT", now)).toBe(7000);
    expect(parseRetryAfter("soon")).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});

describe("trainkit sync", () => {
  test("delivers each spool through its plugin's transport, rebuilt from meta.json", async () => {
    const outputDir = join(work, "sync");
    const dir = outboxDir(outputDir, "fake", "s1");
    const down = Outbox.open({
      dir,
      integration: "fake",
      meta: { target: "run-7" },
      logger: quiet().logger,
      flushIntervalMs: 0,
      retry: fastRetry,
      transport: new ScriptedBackend(
        10,
        () => new DeliveryError("ECONNREFUSED", { kind: "retry" }),
      ),
    });
    down.enqueue(points(42));
    const left = await down.drain({ deadlineMs: 100 });
    expect(left.pending).toBe(42);
    await down.close();

    const backend = new ScriptedBackend(10);
    let metaSeen: unknown;
    const plugin = definePlugin({
      name: "fake",
      create: () => new TrainerCallback(),
      transport: (meta) => {
        metaSeen = meta;
        return backend;
      },
    });
    const { logger } = quiet();
    const results = await syncOutputDir({ outputDir, logger, plugins: [plugin], cwd: work });
    expect(results.map((r) => [r.delivered, r.pending, r.error])).toEqual([[42, 0, undefined]]);
    expect(metaSeen).toMatchObject({ target: "run-7" });
    expect(backend.received).toEqual(points(42));
    expect(await syncOutputDir({ outputDir, logger, plugins: [plugin], cwd: work })).toEqual([]);
  });

  test("a spool whose plugin is not installed is reported with the install command", async () => {
    const outputDir = join(work, "sync-missing");
    const outbox = Outbox.open({
      dir: outboxDir(outputDir, "mlflow", "s1"),
      integration: "mlflow",
      logger: quiet().logger,
      transport: new ScriptedBackend(10, () => new DeliveryError("down", { kind: "halt" })),
    });
    outbox.enqueue(points(3));
    await outbox.close();
    const results = await syncOutputDir({ outputDir, logger: quiet().logger, cwd: work });
    expect(results[0]!.pending).toBe(3);
    expect(results[0]!.error).toContain("npm install @trainkit/callback-mlflow");
  });
});

describe("robustness", () => {
  test("a full disk never throws into training: records wait in memory and are written once space is back", async () => {
    const mount = join(work, "tiny");
    mkdirSync(mount, { recursive: true });
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=512k", "tmpfs", mount]);
    } catch {
      // The full-disk case needs a tiny filesystem; say so rather than pass silently.
      throw new Error("this test mounts a tmpfs: run it as root, as CI does");
    }
    try {
      let down = true;
      const backend = new ScriptedBackend(1000, () =>
        down ? new DeliveryError("down", { kind: "retry" }) : "ok",
      );
      const { logger, messages } = quiet();
      const outbox = Outbox.open({
        dir: join(mount, "spool"),
        integration: "fake",
        transport: backend,
        logger,
        flushIntervalMs: 0,
        retry: fastRetry,
      });
      writeFileSync(join(mount, "filler"), Buffer.alloc(480 * 1024)); // most of the disk
      const sent: Point[] = [];
      for (let i = 0; i < 600; i++) {
        const batch = points(10, i * 10);
        sent.push(...batch);
        expect(() => outbox.enqueue(batch)).not.toThrow();
      }
      expect(messages.filter((m) => m.includes("cannot write to the spool"))).toHaveLength(1);
      rmSync(join(mount, "filler")); // space is back
      down = false;
      outbox.enqueue(points(1, 6000));
      sent.push(...points(1, 6000));
      const report = await outbox.drain({ deadlineMs: 10_000 });
      expect(report.pending).toBe(0);
      expect(report.dropped).toBeUndefined();
      expect(backend.received).toEqual(sent); // in order, none lost, none twice
      await outbox.close();
    } finally {
      execFileSync("umount", ["-l", mount]); // lazy: vitest may still hold the folder open
    }
  });

  test("an error outside deliver (a transport's batchSize throws) is reported and retried, never an unhandled rejection", async () => {
    let broken = true;
    const received: Point[] = [];
    const transport: OutboxTransport<Point> = {
      batchSize: (r) => {
        if (broken) throw new Error("batchSize bug");
        return r.length;
      },
      deliver: async (batch) => void received.push(...batch),
    };
    const { logger, messages } = quiet();
    const outbox = Outbox.open({
      dir: freshDir(),
      integration: "fake",
      transport,
      logger,
      flushIntervalMs: 0,
      retry: fastRetry,
    });
    outbox.enqueue(points(5));
    await new Promise((r) => setTimeout(r, 100));
    expect(messages.filter((m) => m.includes("batchSize bug"))).toHaveLength(1);
    broken = false;
    await outbox.drain({ deadlineMs: 5000 });
    expect(received).toEqual(points(5));
    await outbox.close();
  });

  test("a damaged line in the middle of a segment is set aside; the records around it are delivered", async () => {
    const dir = freshDir();
    const spool = new Spool<Point>(dir);
    spool.append(points(3));
    spool.close();
    appendFileSync(join(dir, "segment-000001.jsonl"), "{not json\n");
    const again = new Spool<Point>(dir);
    again.append(points(2, 3));
    again.close();
    const backend = new ScriptedBackend(100);
    const { logger, messages } = quiet();
    const outbox = Outbox.open({
      dir,
      integration: "fake",
      transport: backend,
      logger,
      flushIntervalMs: 0,
    });
    await outbox.drain({ deadlineMs: 5000 });
    expect(backend.received).toEqual([...points(3), ...points(2, 3)]);
    expect(readFileSync(join(dir, "corrupt.jsonl"), "utf8")).toContain("{not json");
    expect(messages.filter((m) => m.includes("damaged line"))).toHaveLength(1);
    await outbox.close();
  });

  test("a torn last line longer than a read chunk is cut whole", () => {
    const dir = join(work, "torn-long");
    const spool = new Spool<Point>(dir);
    spool.append(points(2));
    spool.close();
    appendFileSync(join(dir, "segment-000001.jsonl"), '{"k":"' + "x".repeat(3 * 1024 * 1024));
    const reopened = new Spool<Point>(dir);
    expect(reopened.pending).toBe(2);
    reopened.append(points(1, 2));
    expect(reopened.read(reopened.start, 10).map((r) => r.record)).toEqual([
      ...points(2),
      ...points(1, 2),
    ]);
    reopened.close();
  });

  test("a transport's own retry knobs are used unless the caller overrides them", async () => {
    const backend = new ScriptedBackend(10, (_b, call) =>
      call <= 2 ? new DeliveryError("503", { kind: "retry" }) : "ok",
    );
    const transport = Object.assign(backend, { retry: { baseMs: 400, jitter: 0 } });
    const outbox = Outbox.open({
      dir: freshDir(),
      integration: "fake",
      transport,
      logger: quiet().logger,
      flushIntervalMs: 0,
    });
    outbox.enqueue(points(2));
    await outbox.drain({ deadlineMs: 10_000 });
    expect(backend.requests[1]!.at - backend.requests[0]!.at).toBeGreaterThanOrEqual(390);
    await outbox.close();
  });

  test("Retry-After: 0 does not become a busy loop", async () => {
    const backend = new ScriptedBackend(
      10,
      () => new DeliveryError("429", { kind: "retry", retryAfterMs: 0 }),
    );
    const outbox = Outbox.open({
      dir: freshDir(),
      integration: "fake",
      transport: backend,
      logger: quiet().logger,
      flushIntervalMs: 0,
      retry: { baseMs: 50, maxMs: 1000, jitter: 0 },
    });
    outbox.enqueue(points(3));
    await new Promise((r) => setTimeout(r, 400));
    expect(backend.requests.length).toBeLessThan(8); // backoff 50, 100, 200 ms: a handful
    await outbox.close();
  });

  test("a drain tries at once when a backoff wait is pending (the tracker may be back)", async () => {
    let down = true;
    const backend = new ScriptedBackend(10, () =>
      down ? new DeliveryError("ECONNREFUSED", { kind: "retry" }) : "ok",
    );
    const outbox = Outbox.open({
      dir: freshDir(),
      integration: "fake",
      transport: backend,
      logger: quiet().logger,
      flushIntervalMs: 0,
      retry: { baseMs: 60_000, maxMs: 60_000, jitter: 0 },
    });
    outbox.enqueue(points(4));
    await new Promise((r) => setTimeout(r, 50)); // the first attempt failed; the next in 60 s
    down = false;
    const started = performance.now();
    const report = await outbox.drain({ deadlineMs: 20_000 });
    expect(report.pending).toBe(0);
    expect(performance.now() - started).toBeLessThan(2000);
    await outbox.close();
  });

  test("a request still out when the outbox closes never moves the next owner's cursor back", async () => {
    const dir = freshDir();
    let release: () => void = () => {};
    const slow: OutboxTransport<Point> = {
      batchSize: (r) => r.length,
      deliver: () => new Promise<void>((done) => (release = done)), // ignores abort
    };
    const outbox = Outbox.open({
      dir,
      integration: "fake",
      transport: slow,
      logger: quiet().logger,
      flushIntervalMs: 0,
    });
    outbox.enqueue(points(10));
    await new Promise((r) => setTimeout(r, 50));
    await outbox.close();
    const next = new ScriptedBackend(100);
    const second = Outbox.open({
      dir,
      integration: "fake",
      transport: next,
      logger: quiet().logger,
      flushIntervalMs: 0,
    });
    await second.drain({ deadlineMs: 5000 });
    expect(next.received).toEqual(points(10));
    release(); // the first owner's request finally returns
    await new Promise((r) => setTimeout(r, 50));
    second.enqueue(points(1, 10));
    await second.drain({ deadlineMs: 5000 });
    expect(next.received).toEqual([...points(10), ...points(1, 10)]); // nothing twice
    await second.close();
  });

  test("delivered data is deleted: only meta and cursor are left once everything is delivered", async () => {
    const dir = freshDir();
    const outbox = Outbox.open({
      dir,
      integration: "fake",
      transport: new ScriptedBackend(500),
      logger: quiet().logger,
      flushIntervalMs: 0,
    });
    outbox.enqueue(points(2000));
    await outbox.drain({ deadlineMs: 5000 });
    await outbox.close();
    expect(readdirSync(dir).sort()).toEqual(["cursor.json", "meta.json"]);
  });

  test("bad options are refused before anything is opened", () => {
    const dir = join(work, "bad-options");
    expect(() =>
      Outbox.open({
        dir,
        integration: "fake",
        transport: new ScriptedBackend(),
        maxMemoryRecords: Number.NaN,
        retry: { baseMs: -1 },
      }),
    ).toThrow(
      /maxMemoryRecords must be an integer ≥ 1 \(got NaN\); retry.baseMs must be a number > 0 \(got -1\)/,
    );
    expect(existsSync(dir)).toBe(false);
  });

  test("secret-named fields of meta are masked in meta.json", async () => {
    const dir = freshDir();
    const outbox = Outbox.open({
      dir,
      integration: "fake",
      transport: new ScriptedBackend(),
      meta: { runId: "r1", api_token: "tok-123" },
      logger: quiet().logger,
    });
    await outbox.close();
    const text = readFileSync(join(dir, "meta.json"), "utf8");
    expect(text).toContain('"runId": "r1"');
    expect(text).not.toContain("tok-123");
  });
});

test("at process exit, an open outbox that still holds records says so once, with the sync command", async () => {
  const outputDir = join(work, "exit-report");
  const dir = outboxDir(outputDir, "fake", "stream-1");
  const script = `
    import { Outbox } from ${JSON.stringify(resolve(import.meta.dirname, "../dist/plugin/index.js"))};
    const outbox = Outbox.open({ dir: ${JSON.stringify(dir)}, integration: "fake", flushIntervalMs: 0,
      logger: { info() {}, warn: (m) => console.error(m) },
      transport: { batchSize: (r) => r.length, deliver: () => new Promise(() => {}) } });
    outbox.enqueue([{ s: 1 }, { s: 2 }]);
    if (Outbox.held(${JSON.stringify(dir + "/")}) !== outbox) throw new Error("held() does not find it");
    process.exit(0);`;
  const result = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script]);
  const lines = result.stderr.split("\n").filter((l) => l.includes("before the process exited"));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toContain(
    `fake: 2 record(s) not delivered before the process exited; they are kept in ${dir}`,
  );
  expect(lines[0]).toContain(`trainkit sync ${resolve(outputDir)}`);
});

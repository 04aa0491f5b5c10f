import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import {
  BACKEND_NAMES,
  CALLBACK_EVENTS,
  isExportableState,
  type BackendName,
  type ExportableStateClass,
  type StateRecord,
  type TrainerCallback,
  type TrainkitPlugin,
} from "@trainkit/core";
import { isTrainkitPlugin, redactText } from "@trainkit/core/plugin";
import { withCapture, type Written } from "./capture.js";
import { RUN, runTrainer, trainingArguments } from "./harness.js";
import {
  EventCounter,
  instrumentCallback,
  instrumentPlugin,
  messageOf,
  newRecord,
  recordProblem,
  storedRecord,
  type CallbackRecord,
  type Created,
} from "./instrument.js";
import { jsonDifference } from "./json-difference.js";
import { SecretMatcher, collectSecrets, scanDirs, secretLabel } from "./secrets.js";

/** The checks, by name, in the order they are reported. */
export const CHECKS = {
  everyEvent: "every event",
  trainEndDeadline: "onTrainEnd settles within its deadline",
  noSecrets: "no secrets written",
  stateRoundTrip: "state round-trips through a checkpoint",
  isAvailable: "isAvailable explains itself",
} as const;

export type CheckName = (typeof CHECKS)[keyof typeof CHECKS];

const CHECK_ORDER: readonly CheckName[] = Object.values(CHECKS);

export interface ConformanceOptions {
  /**
   * The environment the plugin reads its configuration from, e.g. `{ ACME_JSONL_DIR: tmp }`:
   * set in process.env for the duration of the run (and given to the plugin as `context.env`),
   * then put back. An undefined value unsets a variable.
   */
  env?: Record<string, string | undefined>;
  /**
   * Strings that must never appear in anything written: files under the output folder and
   * `watchDirs`, trainkit's log messages, stdout, stderr, the console, error messages. Values
   * of secret-named `env` variables (`*_TOKEN`, `*_API_KEY`, `*PASSWORD*`, ...) of 6 characters
   * or more are added.
   */
  secrets?: readonly string[];
  /** Folders the plugin writes to besides the Trainer's outputDir, scanned for secrets too. */
  watchDirs?: readonly string[];
  /** How long onTrainEnd (its returned promise included) may take. Default 10 000 ms. */
  trainEndDeadlineMs?: number;
  /** The TensorFlow.js backend of the conformance run. Default "cpu". */
  backend?: BackendName;
  /**
   * The folder the Trainer writes to (`<outputDir>/run`, `<outputDir>/resumed`). Default: a new
   * temporary folder, removed afterwards; give one to keep the files for inspection.
   */
  outputDir?: string;
}

export interface CheckMessage {
  check: CheckName;
  message: string;
}

export interface ConformanceReport {
  /** The plugin's name (its report_to name). */
  plugin: string;
  /** The checks that passed, in order. */
  passed: CheckName[];
  /** The checks that failed, each with what went wrong and what to do. */
  failed: CheckMessage[];
  /** Remarks on passed checks (e.g. a plugin that is not stateful has nothing to round-trip). */
  notes: CheckMessage[];
  /** True when no check failed. */
  ok: boolean;
  /** What was logged and printed during the runs, secrets masked: for when a check fails. */
  log: string[];
}

const DEFAULT_DEADLINE_MS = 10_000;

/** Conformance runs change process-wide things (env, logger, stdout): one at a time. */
let queue: Promise<unknown> = Promise.resolve();

/**
 * Runs `plugin` in real (tiny) Trainers and checks that it keeps the plugin contract. Never
 * throws for a failing plugin: the report lists what failed. Throws a TypeError for bad
 * arguments. Runs one at a time when called concurrently.
 */
export function runConformance(
  plugin: TrainkitPlugin,
  options: ConformanceOptions = {},
): Promise<ConformanceReport> {
  if (!isTrainkitPlugin(plugin))
    throw new TypeError(
      'runConformance expects a plugin: the value definePlugin({ name, create }) from "@trainkit/core/plugin" returns (a plugin package\'s default export).',
    );
  const resolved = resolveOptions(options);
  const run = queue.then(() => conformance(plugin, resolved));
  queue = run.catch(() => undefined);
  return run;
}

/**
 * runConformance, then throws one Error listing every failed check (for test frameworks).
 * Returns the report when every check passed.
 */
export async function assertConformance(
  plugin: TrainkitPlugin,
  options: ConformanceOptions = {},
): Promise<ConformanceReport> {
  const report = await runConformance(plugin, options);
  if (!report.ok) throw new Error(formatFailures(report));
  return report;
}

/** The failed checks of a report as a message: one line each. */
export function formatFailures(report: ConformanceReport): string {
  const count = report.failed.length;
  return [
    `Plugin "${report.plugin}" fails ${count} of ${count + report.passed.length} conformance checks:`,
    ...report.failed.map((f) => `  ✗ ${f.check}: ${f.message}`),
  ].join("\n");
}

interface Resolved {
  env: Record<string, string | undefined>;
  secrets: string[];
  watchDirs: string[];
  trainEndDeadlineMs: number;
  backend: BackendName;
  outputDir: string | undefined;
}

function resolveOptions(options: ConformanceOptions): Resolved {
  if (typeof options !== "object" || options === null)
    throw new TypeError("runConformance: options must be an object.");
  const env = options.env ?? {};
  if (typeof env !== "object" || env === null)
    throw new TypeError("runConformance: env must be an object of variable names to strings.");
  for (const [key, value] of Object.entries(env))
    if (value !== undefined && typeof value !== "string")
      throw new TypeError(`runConformance: env.${key} must be a string (or undefined to unset).`);
  const secrets = options.secrets ?? [];
  if (!Array.isArray(secrets) || secrets.some((s) => typeof s !== "string" || s.length === 0))
    throw new TypeError("runConformance: secrets must be a list of non-empty strings.");
  const watchDirs = options.watchDirs ?? [];
  if (!Array.isArray(watchDirs) || watchDirs.some((d) => typeof d !== "string" || d === ""))
    throw new TypeError("runConformance: watchDirs must be a list of folder paths.");
  const deadline = options.trainEndDeadlineMs ?? DEFAULT_DEADLINE_MS;
  if (typeof deadline !== "number" || !Number.isFinite(deadline) || deadline <= 0)
    throw new TypeError(
      `runConformance: trainEndDeadlineMs must be a number of milliseconds above 0 (got ${String(deadline)}).`,
    );
  const backend = options.backend ?? "cpu";
  if (!(BACKEND_NAMES as readonly string[]).includes(backend))
    throw new TypeError(
      `runConformance: backend must be one of ${BACKEND_NAMES.join(", ")} (got ${String(backend)}).`,
    );
  if (options.outputDir !== undefined && typeof options.outputDir !== "string")
    throw new TypeError("runConformance: outputDir must be a folder path.");
  return {
    env,
    secrets: collectSecrets(secrets, env),
    watchDirs: watchDirs.map((d) => resolve(d)),
    trainEndDeadlineMs: deadline,
    backend,
    outputDir: options.outputDir === undefined ? undefined : resolve(options.outputDir),
  };
}

/** Collects each check's outcome; every message is masked before it is kept. */
class Outcomes {
  readonly failures = new Map<CheckName, string[]>();
  readonly notes: CheckMessage[] = [];
  constructor(private readonly matcher: SecretMatcher) {}
  fail(check: CheckName, message: string): void {
    const list = this.failures.get(check) ?? [];
    list.push(this.matcher.mask(message));
    this.failures.set(check, list);
  }
  note(check: CheckName, message: string): void {
    this.notes.push({ check, message: this.matcher.mask(message) });
  }
}

interface ResumeOutcome {
  /** What the handler held at onTrainBegin of the resumed run, compared with the checkpoint. */
  problem?: string;
  error?: unknown;
  /** The callback create() made for the resumed run (replaced by the restored one). */
  fresh?: CallbackRecord;
  restored?: CallbackRecord;
}

async function conformance(plugin: TrainkitPlugin, options: Resolved): Promise<ConformanceReport> {
  const matcher = new SecretMatcher(options.secrets);
  const outcomes = new Outcomes(matcher);
  const written: Written[] = [];
  const root = options.outputDir ?? mkdtempSync(join(tmpdir(), "trainkit-conformance-"));
  const firstDir = join(root, "run");
  const instrumentOptions = { trainEndDeadlineMs: options.trainEndDeadlineMs };
  const created: Created[] = [];
  const counter = new EventCounter();
  let runError: unknown;
  let resume: ResumeOutcome | undefined;
  /** The plugin's record in the checkpoint the resumed run starts from, or why there is none. */
  let stored: { record: StateRecord } | { problem: string } | undefined;

  try {
    await withCapture({}, written, async () =>
      checkIsAvailable(plugin, root, options.backend, written, outcomes),
    );

    await withCapture(options.env, written, async () => {
      try {
        await runTrainer({
          outputDir: firstDir,
          plugin: instrumentPlugin(plugin, created, instrumentOptions),
          backend: options.backend,
          callbacks: [counter],
        });
      } catch (error) {
        runError = error;
      }
      const first = created[0]?.callback;
      if (runError === undefined && first && isExportableState(first)) {
        const checkpoint = join(firstDir, `checkpoint-${RUN.resumeFrom}`);
        const file = join(checkpoint, "trainer_state.json");
        try {
          const value = storedRecord(file, className(first));
          const problem = recordProblem(value, className(first), file);
          stored = problem ? { problem } : { record: value as StateRecord };
        } catch (error) {
          stored = { problem: `cannot read ${file}: ${messageOf(error)}` };
        }
        if ("record" in stored)
          resume = await resumeRun(
            plugin,
            checkpoint,
            join(root, "resumed"),
            stored.record,
            options,
          );
      }
    });

    const first = created[0];
    checkEveryEvent(plugin, first?.record, counter, runError, written, outcomes);
    checkTrainEnd(first?.record, resume?.restored, runError, options, outcomes);
    checkStateRoundTrip(first, stored, resume, runError, outcomes);
    checkNoSecrets(root, options, matcher, written, created, resume, runError, outcomes);
  } finally {
    if (options.outputDir === undefined) rmSync(root, { recursive: true, force: true });
  }

  const failed: CheckMessage[] = [];
  const passed: CheckName[] = [];
  for (const check of CHECK_ORDER) {
    const messages = outcomes.failures.get(check);
    if (messages) failed.push({ check, message: messages.join("; ") });
    else passed.push(check);
  }
  return {
    plugin: plugin.name,
    passed,
    failed,
    notes: CHECK_ORDER.flatMap((check) => outcomes.notes.filter((n) => n.check === check)),
    ok: failed.length === 0,
    log: written.map((w) => `${w.channel}: ${matcher.mask(w.text).replace(/\n$/, "")}`),
  };
}

/** A run resumed from a checkpoint of the first one, with callback states restored. */
async function resumeRun(
  plugin: TrainkitPlugin,
  checkpoint: string,
  outputDir: string,
  stored: StateRecord,
  options: Resolved,
): Promise<ResumeOutcome> {
  const outcome: ResumeOutcome = {};
  const created: Created[] = [];
  const instrumentOptions = { trainEndDeadlineMs: options.trainEndDeadlineMs };
  try {
    await runTrainer({
      outputDir,
      plugin: instrumentPlugin(plugin, created, instrumentOptions),
      backend: options.backend,
      resumeFrom: checkpoint,
      onTrainer: (trainer) => {
        // restoreCallbackStates runs just before onTrainBegin: look at what it left.
        const handler = trainer.callbackHandler;
        const onTrainBegin = handler.onTrainBegin;
        handler.onTrainBegin = (args, state, control) => {
          inspectRestored(handler.callbacks, created[0]?.callback, stored, outcome, options);
          return onTrainBegin.call(handler, args, state, control);
        };
      },
    });
  } catch (error) {
    outcome.error = error;
  }
  outcome.fresh = created[0]?.record;
  return outcome;
}

function inspectRestored(
  callbacks: TrainerCallback[],
  fresh: TrainerCallback | undefined,
  stored: StateRecord,
  outcome: ResumeOutcome,
  options: Resolved,
): void {
  if (!fresh) {
    outcome.problem = "the resumed run did not create the plugin's callback";
    return;
  }
  const name = className(fresh);
  const restored = callbacks.find((cb) => cb !== fresh && className(cb) === name);
  if (!restored) {
    outcome.problem = `the resumed run kept the callback create() made instead of the one fromState() rebuilt from the checkpoint's stateful_callbacks["${name}"]`;
    return;
  }
  outcome.restored = newRecord();
  instrumentCallback(restored, outcome.restored, {
    trainEndDeadlineMs: options.trainEndDeadlineMs,
  });
  let state: unknown;
  try {
    state = (restored as unknown as { state(): unknown }).state();
  } catch (error) {
    outcome.problem = `the restored callback's state() threw: ${messageOf(error)}`;
    return;
  }
  const difference = jsonDifference(
    state,
    stored,
    "the restored callback's state()",
    "the checkpoint",
  );
  if (difference) outcome.problem = `after resuming, ${difference}`;
}

function checkIsAvailable(
  plugin: TrainkitPlugin,
  root: string,
  backend: BackendName,
  written: Written[],
  outcomes: Outcomes,
): void {
  const check = CHECKS.isAvailable;
  const context = {
    args: trainingArguments(join(root, "availability"), plugin, backend),
    env: {},
    logger: {
      info: (text: string) => void written.push({ channel: "plugin context info", text }),
      warn: (text: string) => void written.push({ channel: "plugin context warn", text }),
    },
  };
  let result: unknown;
  try {
    result = plugin.isAvailable(context);
  } catch (error) {
    outcomes.fail(
      check,
      `isAvailable threw with an empty env: ${redactText(messageOf(error))}; return { available: false, reason: "set <VARIABLE>" } instead`,
    );
    return;
  }
  const answer = result as { available?: unknown; reason?: unknown; then?: unknown } | null;
  if (typeof answer?.then === "function") {
    outcomes.fail(check, "isAvailable returned a promise; it must answer synchronously");
    return;
  }
  if (answer?.available === true) {
    outcomes.note(check, "available with an empty env: it needs no configuration");
    return;
  }
  if (answer?.available !== false) {
    outcomes.fail(
      check,
      `isAvailable returned ${JSON.stringify(result)}; return { available: true }, or { available: false, reason }`,
    );
    return;
  }
  const reason = answer.reason;
  if (typeof reason !== "string" || reason.trim() === "") {
    outcomes.fail(
      check,
      'with an empty env isAvailable says "not available" but gives no reason; return { available: false, reason: "set <VARIABLE>" } naming what the user must set',
    );
  } else if (reason === "not configured") {
    // What definePlugin makes of a bare `false`: it does not say what to set.
    outcomes.fail(
      check,
      'with an empty env isAvailable returns false, which users see as "not configured"; return { available: false, reason: "set <VARIABLE>" } naming what they must set',
    );
  } else outcomes.note(check, `with an empty env: not available, "${reason}"`);
}

function checkEveryEvent(
  plugin: TrainkitPlugin,
  record: CallbackRecord | undefined,
  counter: EventCounter,
  runError: unknown,
  written: Written[],
  outcomes: Outcomes,
): void {
  const check = CHECKS.everyEvent;
  if (runError !== undefined)
    outcomes.fail(check, `the conformance run failed: ${redactText(messageOf(runError))}`);
  if (!record) {
    if (runError === undefined) outcomes.fail(check, "the plugin's callback was never created");
    return;
  }
  const [firstError, ...moreErrors] = record.errors;
  if (firstError) {
    outcomes.fail(
      check,
      `the plugin threw in ${firstError.event}: "${redactText(messageOf(firstError.error))}"` +
        (moreErrors.length > 0 ? ` (and ${moreErrors.length} more errors)` : "") +
        '; under failurePolicy "warn" the Trainer switched it off for the rest of the run. A plugin must handle its own errors: report them once and keep going',
    );
  } else {
    // An integration failure the instrumented methods did not see (should not happen).
    const warning = written.find(
      (w) =>
        w.channel === "trainkit warn" && w.text.includes(`Integration "${plugin.name}" failed`),
    );
    if (warning) outcomes.fail(check, warning.text);
  }
  for (const problem of record.badArguments)
    outcomes.fail(check, `the Trainer passed unexpected arguments (a trainkit bug): ${problem}`);
  if (runError !== undefined) return;
  const neverFired = CALLBACK_EVENTS.filter((e) => !counter.calls.get(e));
  if (neverFired.length > 0)
    outcomes.fail(
      check,
      `the conformance run never fired ${neverFired.join(", ")} (did the plugin stop training through control?)`,
    );
  const missed = CALLBACK_EVENTS.filter(
    (e) => (record.calls.get(e) ?? 0) < (counter.calls.get(e) ?? 0),
  ).map((e) => `${e} (${record.calls.get(e) ?? 0} of ${counter.calls.get(e)})`);
  if (missed.length > 0)
    outcomes.fail(
      check,
      `${firstError ? "after that, " : ""}these events did not reach the plugin's callback: ${missed.join(", ")}`,
    );
}

function checkTrainEnd(
  record: CallbackRecord | undefined,
  restored: CallbackRecord | undefined,
  runError: unknown,
  options: Resolved,
  outcomes: Outcomes,
): void {
  const check = CHECKS.trainEndDeadline;
  const deadline = options.trainEndDeadlineMs;
  const trainEnds = [...(record?.trainEnds ?? []), ...(restored?.trainEnds ?? [])];
  if (trainEnds.length === 0) {
    const why =
      runError !== undefined
        ? "the conformance run failed"
        : record?.errors[0]
          ? `it had been switched off after failing in ${record.errors[0].event}`
          : "it was not called";
    outcomes.fail(check, `not measured: onTrainEnd never reached the plugin (${why})`);
    return;
  }
  const late = trainEnds.find((t) => !t.settled);
  const slow = trainEnds.find((t) => t.ms > deadline);
  if (late) {
    outcomes.fail(
      check,
      `onTrainEnd had not settled after ${deadline} ms (the check stopped waiting). Drain with a deadline and leave what is not delivered for later (the outbox's spool)`,
    );
  } else if (slow) {
    outcomes.fail(
      check,
      `onTrainEnd took ${Math.round(slow.ms)} ms; the deadline is ${deadline} ms`,
    );
  } else {
    const longest = Math.max(...trainEnds.map((t) => t.ms));
    outcomes.note(
      check,
      `onTrainEnd settled in ${Math.round(longest)} ms at most (deadline ${deadline} ms)`,
    );
  }
}

function checkStateRoundTrip(
  first: Created | undefined,
  stored: { record: StateRecord } | { problem: string } | undefined,
  resume: ResumeOutcome | undefined,
  runError: unknown,
  outcomes: Outcomes,
): void {
  const check = CHECKS.stateRoundTrip;
  if (!first || runError !== undefined) {
    outcomes.fail(check, "not checked: the conformance run failed");
    return;
  }
  const callback = first.callback;
  const name = className(callback);
  if (!isExportableState(callback)) {
    const hasState = typeof (callback as { state?: unknown }).state === "function";
    outcomes.note(
      check,
      hasState
        ? `${name} has state() but no static fromState(), so it is not saved in checkpoints; add static fromState(record) to make it stateful`
        : `${name} is not stateful (no state() and static fromState()): nothing to round-trip`,
    );
    return;
  }
  const { saves } = first.record;
  if (saves.length === 0)
    outcomes.fail(check, "not checked: onSave never reached the plugin, so no checkpoint was seen");
  const saved = saves.find((s) => s.difference !== undefined);
  if (saved) outcomes.fail(check, saved.difference!);
  if (!stored || "problem" in stored) {
    // The same problem at an earlier save is enough.
    if (!saved) outcomes.fail(check, stored?.problem ?? "no checkpoint was read");
    return;
  }
  const cls = callback.constructor as unknown as ExportableStateClass;
  try {
    const rebuilt = cls.fromState(stored.record);
    const state = (rebuilt as unknown as { state(): unknown }).state();
    const difference = jsonDifference(
      state,
      stored.record,
      `${name}.fromState(record).state()`,
      "the checkpoint's record",
    );
    if (difference) outcomes.fail(check, difference);
  } catch (error) {
    outcomes.fail(
      check,
      `${name}.fromState(record).state() threw: ${redactText(messageOf(error))} (record from checkpoint-${RUN.resumeFrom}/trainer_state.json)`,
    );
  }
  if (!resume) return;
  if (resume.problem) outcomes.fail(check, resume.problem);
  const restoredError = resume.restored?.errors[0];
  if (restoredError)
    outcomes.fail(
      check,
      `after resuming from checkpoint-${RUN.resumeFrom}, the restored callback threw in ${restoredError.event}: "${redactText(messageOf(restoredError.error))}"`,
    );
  else if (resume.error !== undefined)
    outcomes.fail(
      check,
      `the run resumed from checkpoint-${RUN.resumeFrom} failed: ${redactText(messageOf(resume.error))}`,
    );
}

function checkNoSecrets(
  root: string,
  options: Resolved,
  matcher: SecretMatcher,
  written: Written[],
  created: Created[],
  resume: ResumeOutcome | undefined,
  runError: unknown,
  outcomes: Outcomes,
): void {
  const check = CHECKS.noSecrets;
  for (const dir of options.watchDirs)
    if (!existsSync(dir))
      outcomes.note(check, `the watched folder ${dir} does not exist after the run`);
  if (matcher.size === 0) {
    outcomes.note(
      check,
      "no secrets to look for: pass options.secrets (or secret-named variables in options.env)",
    );
    return;
  }
  const labels = (found: number[]) => found.map(secretLabel).join(", ");
  for (const { file, secrets } of scanDirs([root, ...options.watchDirs], matcher))
    outcomes.fail(check, `${file} contains ${labels(secrets)}`);
  const reported = new Set<string>();
  for (const { channel, text } of written) {
    const found = matcher.find(text);
    if (found.length === 0 || reported.has(channel)) continue;
    reported.add(channel);
    outcomes.fail(
      check,
      `${describeChannel(channel)} contains ${labels(found)}: "${matcher.excerpt(text, found[0]!)}"`,
    );
  }
  const errors = [
    ...created.flatMap((c) => c.record.errors),
    ...(resume?.fresh?.errors ?? []),
    ...(resume?.restored?.errors ?? []),
  ].map((e) => ({ what: `the error the plugin threw in ${e.event}`, message: messageOf(e.error) }));
  if (runError !== undefined)
    errors.push({ what: "the error the run failed with", message: messageOf(runError) });
  if (resume?.error !== undefined)
    errors.push({
      what: "the error the resumed run failed with",
      message: messageOf(resume.error),
    });
  for (const { what, message } of errors) {
    const found = matcher.find(message);
    if (found.length > 0) outcomes.fail(check, `${what} contains ${labels(found)}`);
  }
}

function describeChannel(channel: string): string {
  if (channel === "stdout" || channel === "stderr") return `what was written to ${channel}`;
  if (channel.startsWith("console.")) return `what was printed with ${channel}()`;
  if (channel.startsWith("trainkit ")) return `a trainkit log message (${channel.slice(9)})`;
  return `a message logged through the plugin context's logger (${channel.split(" ").pop()})`;
}

function className(value: object): string {
  return (value.constructor as { name?: string } | undefined)?.name ?? "";
}

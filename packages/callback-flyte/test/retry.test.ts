// Retries as Flyte runs them: each attempt is a new process (a new pod: fresh local disk) that
// gets its own checkpoint prefix and the previous attempt's one as process arguments. A run
// that fails twice and is retried ends in the same state as a run that never failed.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parsePythonJson } from "@trainkit/core";
import { afterAll, beforeAll, expect, test } from "vitest";
import { DECK_FILES } from "../src/index.js";
import { packageDir } from "./helpers.js";

const work = mkdtempSync(join(tmpdir(), "trainkit-flyte-retry-"));
const task = join(packageDir, "test", "fixtures", "flyte-task.mjs");
const dist = join(packageDir, "dist", "index.js");
afterAll(() => rmSync(work, { recursive: true, force: true }));

beforeAll(() => {
  if (!existsSync(dist))
    throw new Error(
      `${dist} is missing: build the package first (pnpm --filter @trainkit/callback-flyte run build).`,
    );
});

interface Attempt {
  code: number | null;
  stdout: string;
  stderr: string;
  prefix: string;
  raw: string;
}

/** Runs one attempt of the task the way Flyte's propeller renders its arguments. */
function attempt(
  execution: string,
  number: number,
  previous: Attempt | undefined,
  crashAt = 0,
): Promise<Attempt> {
  const prefix = pathToFileURL(
    join(work, "metadata", execution, String(number), "_flytecheckpoints"),
  ).href;
  const raw = pathToFileURL(join(work, "raw", execution, String(number))).href;
  const args = [
    task,
    "--checkpoint-path",
    prefix,
    "--prev-checkpoint",
    previous ? previous.prefix : '""', // what {{.prevCheckpointPrefix}} renders on attempt 0
    "--raw-output-data-prefix",
    raw,
  ];
  const child = spawn(process.execPath, args, {
    cwd: mkdtempSync(join(work, "pod-")),
    env: {
      ...process.env,
      FLYTE_INTERNAL_EXECUTION_ID: execution,
      FLYTE_ATTEMPT_NUMBER: String(number),
      TASK_OUTPUT_DIR: mkdtempSync(join(work, "local-disk-")),
      TASK_CRASH_AT_STEP: String(crashAt),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (data: Buffer) => (stdout += data.toString()));
  child.stderr.on("data", (data: Buffer) => (stderr += data.toString()));
  return new Promise((resolve) =>
    child.once("close", (code) => resolve({ code, stdout, stderr, prefix, raw })),
  );
}

const localPath = (uri: string) => new URL(uri).pathname;

function trainerStateAt(prefix: string) {
  return parsePythonJson(readFileSync(join(localPath(prefix), "trainer_state.json"), "utf8")) as {
    global_step: number;
    log_history: Record<string, number>[];
  };
}

/** Log entries without the timing values, which differ from run to run. */
const withoutTimings = (history: Record<string, number>[]) =>
  history.map((entry) =>
    Object.fromEntries(Object.entries(entry).filter(([key]) => !/runtime|per_second/.test(key))),
  );

test("attempt 0 fails, attempt 1 fails before its first save, attempt 2 finishes like an unbroken run", async () => {
  const [unbroken, first] = await Promise.all([
    attempt("unbroken", 0, undefined),
    attempt("retried", 0, undefined, 11),
  ]);
  expect(unbroken.code, unbroken.stderr).toBe(0);
  expect(unbroken.stdout).toContain("Flyte: no previous checkpoint (first attempt)");
  expect(unbroken.stdout).toContain(
    `Flyte: checkpoints are copied to ${unbroken.prefix} (from --checkpoint-path); the log history goes to ${unbroken.raw} (from --raw-output-data-prefix).`,
  );
  expect(unbroken.stdout).toContain('RESULT {"globalStep":16,"resumed":null}');

  // Attempt 0 died at step 11; the checkpoint of step 9 was saved and copied before.
  expect(first.code).not.toBe(0);
  expect(first.stderr).toContain("simulated node failure at step 11");
  expect(trainerStateAt(first.prefix).global_step).toBe(9);

  // Attempt 1 resumes from step 9 and dies at step 10, before its first save (step 12): the
  // restored checkpoint was carried on to its own prefix already.
  const second = await attempt("retried", 1, first, 10);
  expect(second.code).not.toBe(0);
  expect(second.stdout).toMatch(
    /Flyte: restored the checkpoint of step 9 from file:\S+\/0\/_flytecheckpoints into \S+\/checkpoint-9\./,
  );
  expect(second.stderr).toContain("simulated node failure at step 10");
  expect(trainerStateAt(second.prefix).global_step).toBe(9);

  const third = await attempt("retried", 2, second);
  expect(third.code, third.stderr).toBe(0);
  expect(third.stdout).toMatch(/Resuming from \S+\/checkpoint-9 at step 9/);
  expect(third.stdout).toMatch(/RESULT \{"globalStep":16,"resumed":"\S+\/checkpoint-9"\}/);

  // The last checkpoint (step 16: HF also saves when training ends) of both runs.
  const expected = trainerStateAt(unbroken.prefix);
  const actual = trainerStateAt(third.prefix);
  expect(actual.global_step).toBe(16);
  expect(expected.global_step).toBe(16);
  expect(withoutTimings(actual.log_history)).toEqual(withoutTimings(expected.log_history));
  expect(actual.log_history.map((e) => e.step)).toEqual(expected.log_history.map((e) => e.step));

  // And the decks' JSON copies, which hold the end-of-training entries too.
  const deck = (raw: string) =>
    parsePythonJson(readFileSync(join(localPath(raw), DECK_FILES.json), "utf8")) as Record<
      string,
      number
    >[];
  expect(withoutTimings(deck(third.raw))).toEqual(withoutTimings(deck(unbroken.raw)));
  expect(deck(third.raw).at(-1)).toMatchObject({ step: 16, epoch: 2 });
  expect(existsSync(join(localPath(third.raw), DECK_FILES.html))).toBe(true);
});

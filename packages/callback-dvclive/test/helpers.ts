// The real dvc and dvclive (the repository's pinned .venv, tools/python/requirements.txt), run
// in temporary Git repositories with DVC, offline (no analytics, no remote).
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";

export const packageDir = resolve(import.meta.dirname, "..");
export const repoRoot = resolve(packageDir, "..", "..");
export const venvBin = join(repoRoot, ".venv", "bin");
export const python = join(venvBin, "python");

if (!existsSync(join(venvBin, "dvc")))
  throw new Error(
    `${venvBin}/dvc is missing: run \`node tools/python/ensure-venv.mjs\` (pnpm test does) to install the pinned dvc and dvclive.`,
  );

/** The environment of every git/dvc/python child: the venv first on PATH, git identity, no analytics. */
export const toolEnv: Record<string, string> = {
  ...(process.env as Record<string, string>),
  PATH: `${venvBin}:${process.env.PATH ?? "/usr/bin:/bin"}`,
  DVC_NO_ANALYTICS: "1",
  GIT_AUTHOR_NAME: "trainkit test",
  GIT_AUTHOR_EMAIL: "test@trainkit.invalid",
  GIT_COMMITTER_NAME: "trainkit test",
  GIT_COMMITTER_EMAIL: "test@trainkit.invalid",
  GIT_CONFIG_NOSYSTEM: "1",
};
for (const name of [
  "DVCLIVE_RESUME",
  "DVCLIVE_TEST",
  "DVC_ROOT",
  "DVC_EXP_BASELINE_REV",
  "DVC_EXP_NAME",
  "HF_DVCLIVE_LOG_MODEL",
])
  delete toolEnv[name];

/** An environment like toolEnv without the dvc command on PATH. */
export const envWithoutDvc: Record<string, string> = { ...toolEnv, PATH: "/usr/bin:/bin" };

export function run(command: string, args: string[], cwd: string, input?: string): string {
  return execFileSync(command, args, {
    cwd,
    env: toolEnv,
    encoding: "utf8",
    input,
    maxBuffer: 64 << 20,
  });
}

/** A new folder under `parent` (or the system's temporary folder). */
export function tempDir(prefix: string, parent = tmpdir()): string {
  return mkdtempSync(join(parent, `trainkit-dvclive-${prefix}-`));
}

/** A Git repository with DVC initialised and one commit (what `dvc exp save` needs). */
export function dvcRepo(dir: string, { git = true, commit = true } = {}): string {
  if (git) run("git", ["init", "-q", "-b", "main"], dir);
  run(join(venvBin, "dvc"), git ? ["init", "-q"] : ["init", "-q", "--no-scm"], dir);
  run(join(venvBin, "dvc"), ["config", "core.analytics", "false"], dir);
  if (git && commit) {
    run("git", ["add", "-A"], dir);
    run("git", ["commit", "-q", "-m", "init"], dir);
  }
  return dir;
}

/** `dvc <args> --json` in `repo`, parsed. */
export function dvcJson(repo: string, args: string[]): unknown {
  return JSON.parse(run(join(venvBin, "dvc"), [...args, "--json"], repo));
}

export type Operation =
  | { op: "live"; kwargs?: Record<string, unknown> }
  | { op: "params"; json: string }
  | { op: "log"; json: string }
  | { op: "artifact"; path: string; kwargs?: Record<string, unknown> }
  | { op: "end" }
  | { op: "env"; set: Record<string, string> }
  | { op: "chdir"; path: string };

/** HF's DVCLiveCallback over dvclive's own Live (test/python/hf_dvclive.py), in `cwd`. */
export function runDvclive(
  cwd: string,
  operations: Operation[],
  env: Record<string, string> = {},
): string {
  return execFileSync(python, [join(packageDir, "test/python/hf_dvclive.py")], {
    cwd,
    env: { ...toolEnv, DVCLIVE_LOGLEVEL: "ERROR", ...env },
    encoding: "utf8",
    input: JSON.stringify(operations),
  });
}

/** Every file under `dir` (relative paths, sorted), `.git` and `.dvc` left out. */
export function listFiles(dir: string, skip = [".git", ".dvc"]): string[] {
  const out: string[] = [];
  const walk = (folder: string) => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      if (skip.includes(entry.name)) continue;
      const path = join(folder, entry.name);
      if (entry.isDirectory()) walk(path);
      else out.push(relative(dir, path));
    }
  };
  walk(dir);
  return out.sort();
}

/** The files of `dir` (as listFiles) with their text. */
export function readTree(dir: string, skip?: string[]): Record<string, string> {
  return Object.fromEntries(
    listFiles(dir, skip).map((f) => [f, readFileSync(join(dir, f), "utf8")]),
  );
}

/** Collects warnings and notices, as the plugin context's logger. */
export function captureLogger() {
  const warnings: string[] = [];
  const infos: string[] = [];
  return {
    warnings,
    infos,
    logger: { info: (m: string) => infos.push(m), warn: (m: string) => warnings.push(m) },
  };
}

export interface ExperimentRev {
  rev: string;
  name: string | null;
  data: { metrics: Record<string, unknown>; params: Record<string, unknown> };
}

/** The experiments of `repo` (`dvc exp show --json`), each with its metrics and params. */
export function experimentRevs(repo: string): ExperimentRev[] {
  const rows = dvcJson(repo, ["exp", "show", "--no-fetch"]) as {
    experiments?: { revs: ExperimentRev[] }[] | null;
  }[];
  return rows.flatMap((row) => row.experiments ?? []).flatMap((e) => e.revs);
}

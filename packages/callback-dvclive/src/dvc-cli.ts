/**
 * What dvclive does through DVC's Python API (`dvc add`, `dvc exp save`), done here through the
 * `dvc` and `git` commands: run only when a DVC repository exists and the command is on PATH.
 */
import { execFile, spawnSync } from "node:child_process";
import { accessSync, constants, existsSync, statSync } from "node:fs";
import { delimiter, dirname, isAbsolute, join, relative, sep } from "node:path";
import { redactText } from "@trainkit/core/plugin";

export type Env = Record<string, string | undefined>;

/**
 * The nearest folder from `start` upwards that holds `marker` (`.dvc`, `.git`), not crossing a
 * file system boundary (as DVC's and Git's own searches do not).
 */
export function findUp(start: string, marker: string): string | undefined {
  let dir = start;
  for (;;) {
    if (existsSync(join(dir, marker))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    try {
      if (statSync(parent).dev !== statSync(dir).dev) return undefined; // a mount point
    } catch {
      return undefined;
    }
    dir = parent;
  }
}

/** The first executable `name` on the PATH of `env` (or `name` itself when it is a path). */
export function findExecutable(name: string, env: Env): string | undefined {
  const candidates =
    name.includes("/") || isAbsolute(name)
      ? [name]
      : (env.PATH ?? "")
          .split(delimiter)
          .filter(Boolean)
          .map((dir) => join(dir, name));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not there
    }
  }
  return undefined;
}

export interface CommandResult {
  ok: boolean;
  stdout: string;
  stderr: string;
  /** Why it failed: the command's own last error line, or the spawn error, secrets masked. */
  message: string;
}

/**
 * Runs a command without a shell. The child's environment turns DVC's usage analytics off:
 * dvclive calls DVC in-process, which sends none, and a training run should not either.
 */
export function runCommand(
  command: string,
  args: string[],
  { cwd, env, timeoutMs }: { cwd: string; env: Env; timeoutMs: number },
): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      {
        cwd,
        env: { ...env, DVC_NO_ANALYTICS: "1" },
        timeout: timeoutMs,
        maxBuffer: 16 * 1024 * 1024,
        windowsHide: true,
      },
      (error, stdout, stderr) => {
        const lines = `${stderr}`.trim().split("\n").filter(Boolean);
        // Printed in warnings: credentials in a remote's URL or a token in the output are masked.
        const message = error
          ? redactText(
              (
                lines.filter((l) => /error/i.test(l)).at(-1) ??
                lines.at(-1) ??
                error.message
              ).trim(),
            )
          : "";
        resolve({ ok: !error, stdout: `${stdout}`, stderr: `${stderr}`, message });
      },
    );
  });
}

/** A git query answered synchronously (fast: used while setting up). */
export function gitSync(args: string[], cwd: string, env: Env): { ok: boolean; stdout: string } {
  const git = findExecutable("git", env);
  if (!git) return { ok: false, stdout: "" };
  const result = spawnSync(git, args, { cwd, env, encoding: "utf8", timeout: 10_000 });
  return { ok: result.status === 0, stdout: result.stdout ?? "" };
}

/** `path` relative to `root`, POSIX separators (what DVC and Git take as arguments). */
export function repoPath(path: string, root: string): string {
  return relative(root, path).split(sep).join("/") || ".";
}

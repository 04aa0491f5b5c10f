/**
 * The DVC and Git steps of dvclive's `Live`, run through the `dvc` and `git` commands
 * (dvc-cli.ts): `dvc add` for artifacts, `dvc exp save` at the end, `git add` inside
 * `dvc exp run`, and the repository checks at start. Failures are warnings, never errors.
 */
import { existsSync } from "node:fs";
import { findExecutable, findUp, gitSync, repoPath, runCommand, type Env } from "./dvc-cli.js";

export interface DvcCommandsOptions {
  env: Env;
  /** The DVC command (default "dvc" from PATH). */
  dvcCommand: string;
  /** How long one command may run, in ms. */
  timeoutMs: number;
  warn: (message: string) => void;
  warnOnce: (key: string, message: string) => void;
}

export class DvcCommands {
  constructor(private readonly options: DvcCommandsOptions) {}

  /**
   * dvclive's checks at start: why `dvc exp save` cannot work from `cwd` (no Git repository,
   * no DVC in it, no commit), or undefined when it can.
   */
  experimentRepoProblem(cwd: string, dvcRoot: string | undefined): string | undefined {
    const gitRoot = findUp(cwd, ".git");
    if (!gitRoot)
      return "Can't save experiment without a Git Repo.\nCreate a Git repo (`git init`) and commit (`git commit`).";
    if (!dvcRoot)
      return `Can't save experiment: ${gitRoot} is a Git repository without DVC. Run \`dvc init\` there (dvclive would run it for you; trainkit does not).`;
    if (!gitSync(["rev-parse", "--verify", "--quiet", "HEAD"], gitRoot, this.options.env).ok)
      return "Can't save experiment to an empty Git Repo.\nAdd a commit (`git commit`) to save experiments.";
    return undefined;
  }

  /** `dvc add <path>` in `root`; whether it succeeded (a failure is reported). */
  async add(path: string, root: string): Promise<boolean> {
    const dvc = this.dvc();
    if (!dvc) return false;
    const result = await runCommand(dvc, ["add", repoPath(path, root)], this.commandOptions(root));
    if (!result.ok)
      this.options.warn(`DVCLive: \`dvc add ${repoPath(path, root)}\` failed: ${result.message}`);
    return result.ok;
  }

  /** `dvc exp save --force`, with the existing `untracked` paths as `--include-untracked`. */
  async expSave(
    root: string,
    { untracked, name, message }: { untracked: Iterable<string>; name?: string; message?: string },
  ): Promise<void> {
    const dvc = this.dvc();
    if (!dvc) return;
    const args = ["exp", "save", "--force"];
    const free = name && this.freeExperimentName(name, root);
    if (free) args.push("--name", free);
    if (message !== undefined) args.push("--message", message);
    for (const path of new Set(untracked))
      if (existsSync(path)) args.push("--include-untracked", repoPath(path, root));
    const result = await runCommand(dvc, args, this.commandOptions(root));
    if (!result.ok) this.options.warn(`DVCLive: \`dvc exp save\` failed: ${result.message}`);
  }

  /** Inside `dvc exp run`: `git add` what is untracked in `dir`, and `dvcFile`. */
  async stageForDvcExp(root: string, dir: string, dvcFile: string | undefined): Promise<void> {
    const { env } = this.options;
    const git = findExecutable("git", env);
    if (!git) return;
    const listed = gitSync(
      ["ls-files", "--others", "--exclude-standard", "-z", "--", repoPath(dir, root)],
      root,
      env,
    );
    const paths = listed.stdout.split("\0").filter(Boolean);
    if (dvcFile && existsSync(dvcFile)) paths.push(repoPath(dvcFile, root));
    if (paths.length === 0) return;
    const result = await runCommand(git, ["add", "--", ...paths], this.commandOptions(root));
    if (!result.ok)
      this.options.warn(`DVCLive: \`git add\` of the run's files failed: ${result.message}`);
  }

  /** dvclive keeps a given experiment name unless an experiment of that name exists. */
  private freeExperimentName(name: string, root: string): string | undefined {
    const { env } = this.options;
    const head = gitSync(["rev-parse", "HEAD"], root, env).stdout.trim();
    if (!head) return name;
    const ref = `refs/exps/${head.slice(0, 2)}/${head.slice(2)}/${name}`;
    if (gitSync(["show-ref", "--verify", "--quiet", ref], root, env).ok) {
      this.options.warn(
        `DVCLive: experiment conflicts with existing experiment '${name}'; DVC names this one.`,
      );
      return undefined;
    }
    return name;
  }

  /** The dvc command, or undefined with one warning when it is not installed. */
  private dvc(): string | undefined {
    const { dvcCommand, env } = this.options;
    const found = findExecutable(dvcCommand, env);
    if (!found)
      this.options.warnOnce(
        "no-dvc",
        `DVCLive: the \`${dvcCommand}\` command is not on PATH, so nothing is tracked with DVC (dvc add, dvc exp save); the metrics, params and plots files are written all the same. Install DVC (\`pip install dvc\`) to track them.`,
      );
    return found;
  }

  private commandOptions(cwd: string) {
    return { cwd, env: this.options.env, timeoutMs: this.options.timeoutMs };
  }
}

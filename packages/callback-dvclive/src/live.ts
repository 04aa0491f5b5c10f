/**
 * dvclive's `Live` (3.49), the parts HF's DVCLiveCallback uses: a run folder with params.yaml,
 * metrics.json and one TSV per metric under plots/metrics, the dvc.yaml that points DVC at them,
 * model artifacts tracked with `dvc add`, and `dvc exp save` at the end.
 */
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
  statSync,
  unlinkSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, parse, resolve } from "node:path";
import { logger as coreLogger, type PluginContext } from "@trainkit/core/plugin";
import { findUp, type Env } from "./dvc-cli.js";
import { DvcCommands } from "./dvc-commands.js";
import {
  DvcYamlError,
  mergeDvcYaml,
  newDvcYaml,
  type Artifact,
  type DvcYamlEntries,
} from "./dvcyaml.js";
import { dumpJson } from "./json-writer.js";
import { metricSegments } from "./metric-names.js";
import { paramKeys, paramsYaml } from "./params-file.js";
import {
  PyFloat,
  parsePythonJson,
  pyStr,
  type PyDict,
  type PyScalar,
  type PyValue,
} from "./python-values.js";
import {
  checkRunFolder,
  cleanAndCopyInto,
  contains,
  ensureDir,
  eol,
  tsvFiles,
  writeAtomic,
} from "./run-folder.js";
import { truncateTsv, tsvRow } from "./tsv.js";

export type Logger = PluginContext["logger"];

export interface LiveOptions {
  /** The run folder (dvclive's `dir`), relative to `cwd`. Default "dvclive". */
  dir?: string;
  /** Where to write dvc.yaml (its name must be dvc.yaml), relative to `cwd`; false: none. Default "dvc.yaml". */
  dvcyaml?: string | false;
  /** Continue the run in `dir`: the step after metrics.json's, appending to the TSVs. Default: DVCLIVE_RESUME. */
  resume?: boolean;
  /** Save a DVC experiment (`dvc exp save`) at end(). Default true (ignored inside `dvc repro` / `dvc exp run`). */
  saveDvcExp?: boolean;
  /** The experiment's name (`dvc exp save --name`). Default: DVC_EXP_NAME, else DVC picks one. */
  expName?: string;
  /** The experiment's commit message (`dvc exp save --message`). */
  expMessage?: string;
  /** The working directory `dir` and `dvcyaml` are relative to, where the DVC repository is looked for. Default process.cwd(). */
  cwd?: string;
  /** The DVC command. Default "dvc" (from PATH). */
  dvcCommand?: string;
  /** How long one `dvc`/`git` command may run, in ms. Default 600 000. */
  commandTimeoutMs?: number;
  /**
   * trainkit's resume from a checkpoint: the step to continue at. The folder is kept, and rows
   * of this step and later (logged after the checkpoint) are removed from the TSVs.
   */
  startStep?: number;
  /**
   * The Trainer's outputDir (absolute, or relative to `cwd`): the run folder must not be it or
   * hold it, as a new run deletes files in the run folder.
   */
  outputDir?: string;
  env?: Env;
  logger?: Logger;
}

/** dvclive's boolean env test: true if the value contains 1, y, yes or true (any case). */
export function dvcliveEnvFlag(value: string | undefined): boolean {
  return value !== undefined && /1|y|yes|true/i.test(value);
}

/** The subfolders of plots/ a fresh run clears (dvclive's PLOT_TYPES). */
const PLOT_FOLDERS = ["metrics", "images", "custom", "sklearn"];

/**
 * Errors of one metric's file (a name too long for the file system, a folder or file in the
 * way): the metric cannot be logged, the others can.
 */
const METRIC_PATH_ERRORS = new Set(["ENAMETOOLONG", "EISDIR", "ENOTDIR", "EEXIST", "EINVAL"]);

/** `logMetric` could not write this metric's file; the run folder itself is fine. */
export class MetricWriteError extends Error {
  constructor(
    readonly metric: string,
    options: { cause: unknown },
  ) {
    const code = (options.cause as NodeJS.ErrnoException).code;
    super(`cannot write the plot of metric "${metric}" (${code})`, options);
    this.name = "MetricWriteError";
  }
}

/** gto's artifact name rule (`assert_name_is_valid`). */
const ARTIFACT_NAME = /^[a-z0-9]([a-z0-9-/]*[a-z0-9])?$/;

/**
 * dvclive's `Live`. Writing is synchronous, as dvclive's is (a log call returns when the files
 * are written); only the DVC commands (`logArtifact`, `end`) are asynchronous. File system
 * errors are thrown to the caller (the callback reports them once).
 */
export class Live {
  /** The run folder (absolute). */
  readonly dir: string;
  /** The run folder's real path (symbolic links resolved): what a new run cleans. */
  private readonly realDir: string;
  /** The dvc.yaml file (absolute), or undefined when none is written. */
  readonly dvcFile: string | undefined;
  /** The latest value of each metric, nested by `/` (metrics.json), plus `step`. */
  summary: PyDict = new Map();
  private stepValue: number | null = null;
  private readonly metricNames = new Set<string>();
  private readonly params: PyDict = new Map();
  private readonly artifacts = new Map<string, Artifact>();
  private readonly includeUntracked: string[] = [];
  private readonly env: Env;
  private readonly logger: Logger;
  private readonly warned = new Set<string>();
  private readonly commands: DvcCommands;
  private readonly expName: string | undefined;
  private readonly expMessage: string | undefined;
  private readonly dvcRoot: string | undefined;
  /** The working directory relative paths are resolved against. */
  private readonly cwd: string;
  private readonly insideDvcExp: boolean;
  private saveDvcExp: boolean;
  /** params.yaml as a resumed run found it (its entries are kept, updated by logParams). */
  private previousParams: { text: string; keys: number } | undefined;
  /** The dvc.yaml text this Live wrote last, and the entries it wrote then. */
  private written: { text: string; key: string } | undefined;

  constructor(options: LiveOptions = {}) {
    this.env = options.env ?? process.env;
    this.logger = options.logger ?? coreLogger;
    const cwd = (this.cwd = resolve(options.cwd ?? process.cwd()));
    const dirOption = options.dir ?? "dvclive";
    const dvcyaml = options.dvcyaml ?? "dvc.yaml";
    checkLiveOptions(dirOption, dvcyaml, cwd);
    this.commands = new DvcCommands({
      env: this.env,
      dvcCommand: options.dvcCommand ?? "dvc",
      timeoutMs: options.commandTimeoutMs ?? 600_000,
      warn: (message) => this.logger.warn(message),
      warnOnce: (key, message) => this.warnOnce(key, message),
    });
    this.expMessage = options.expMessage;
    this.saveDvcExp = options.saveDvcExp ?? true;
    const resume = options.resume ?? dvcliveEnvFlag(this.env.DVCLIVE_RESUME);

    if (dvcliveEnvFlag(this.env.DVCLIVE_TEST)) {
      // dvclive's test mode: a temporary folder, the repository ignored.
      const tmp = mkdtempSync(join(tmpdir(), "dvclive-"));
      this.dir = join(tmp, dirOption);
      this.dvcFile = dvcyaml === false ? undefined : join(tmp, dvcyaml);
      this.saveDvcExp = false;
      this.insideDvcExp = false;
      this.expName = undefined;
      this.logger.warn(
        `DVCLive testing mode enabled.Repo will be ignored and output will be written to ${tmp}.`,
      );
    } else {
      this.dir = resolve(cwd, dirOption);
      this.dvcFile = dvcyaml === false ? undefined : resolve(cwd, dvcyaml);
      const inPipeline = Boolean(this.env.DVC_ROOT);
      this.insideDvcExp = inPipeline && Boolean(this.env.DVC_EXP_BASELINE_REV);
      if (inPipeline) {
        if (!this.insideDvcExp && this.saveDvcExp)
          this.logger.warn(
            "DVCLive: ignoring saveDvcExp because `dvc repro` is running. Use `dvc exp run` to save an experiment.",
          );
        this.saveDvcExp = false;
      }
      this.dvcRoot = findUp(cwd, ".dvc");
      this.expName = options.expName ?? (this.env.DVC_EXP_NAME || undefined);
      this.checkExperimentRepo(cwd);
    }

    ensureDir(this.dir);
    // Checked again now that the folder exists: a symbolic link may lead anywhere.
    this.realDir = checkRunFolder(dirOption, this.dir, cwd, options.outputDir);
    if (options.startStep !== undefined) this.continueAt(options.startStep);
    else if (resume) this.resume();
    else this.cleanup();
    if (this.saveDvcExp) this.includeUntracked.push(this.dir);
  }

  /** The current step (dvclive's `Live.step`: 0 before the first next_step). */
  get step(): number {
    return this.stepValue ?? 0;
  }

  set step(value: number) {
    this.stepValue = value;
  }

  get paramsFile(): string {
    return join(this.dir, "params.yaml");
  }

  get metricsFile(): string {
    return join(this.dir, "metrics.json");
  }

  get plotsDir(): string {
    return join(this.dir, "plots");
  }

  get artifactsDir(): string {
    return join(this.dir, "artifacts");
  }

  /** Adds `params` to params.yaml (dvclive's log_params). */
  logParams(params: PyDict): void {
    for (const [key, value] of params) this.params.set(key, value);
    writeAtomic(this.paramsFile, eol(paramsYaml(this.params, this.previousParams?.text)));
  }

  /**
   * Appends `value` at the current step to `plots/metrics/<name>.tsv` (a header first when
   * the file is new) and makes it the metric's latest value in the summary. NaN and ±Infinity
   * are logged as the strings `nan`, `inf` and `-inf`, as dvclive does.
   */
  logMetric(name: string, value: Exclude<PyScalar, null>): void {
    if (value instanceof PyFloat && !Number.isFinite(value.value)) value = pyStr(value);
    else if (typeof value === "number" && !Number.isFinite(value))
      value = pyStr(new PyFloat(value));
    const segments = metricSegments(name);
    const file = `${join(this.plotsDir, "metrics", ...segments)}.tsv`;
    try {
      ensureDir(dirname(file));
      const row = tsvRow([String(this.step), pyStr(value)]);
      const header = existsSync(file) ? "" : tsvRow(["step", segments.at(-1)!]);
      appendFileSync(file, header + row);
    } catch (error) {
      if (METRIC_PATH_ERRORS.has((error as NodeJS.ErrnoException).code ?? ""))
        throw new MetricWriteError(name, { cause: error });
      throw error;
    }
    this.metricNames.add(name);
    this.setSummary(segments, value);
  }

  /** Writes metrics.json and dvc.yaml, then moves to the next step (dvclive's next_step). */
  nextStep(): void {
    if (this.stepValue === null) this.stepValue = 0;
    this.sync();
    this.stepValue += 1;
  }

  /** Writes metrics.json and dvc.yaml (dvclive's sync; no report, no Studio). */
  sync(): void {
    this.makeSummary();
    if (this.dvcFile) this.makeDvcyaml();
  }

  /** metrics.json: the summary, with `step` once a step has been taken. */
  makeSummary(): void {
    if (this.stepValue !== null) this.summary.set("step", this.stepValue);
    writeAtomic(this.metricsFile, eol(dumpJson(this.summary)));
  }

  /**
   * dvc.yaml: written new, or merged into the existing file (this run's entries replace those
   * pointing into the run folder; the rest of the file is kept). A dvc.yaml that cannot be read
   * is left alone, with one warning.
   */
  makeDvcyaml(): void {
    const file = this.dvcFile;
    if (!file) return;
    const plots = join(this.plotsDir, "metrics");
    const entries: DvcYamlEntries = {
      params: this.params.size > 0 || this.previousParams?.keys ? this.paramsFile : undefined,
      metrics: this.metricNames.size > 0 || this.summary.size > 0 ? this.metricsFile : undefined,
      plots: existsSync(plots) ? plots : undefined,
      artifacts: this.artifacts,
    };
    let current: string | undefined;
    try {
      current = readFileSync(file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    // The usual case, every step: the file is as this Live left it and the entries are the same.
    const key = JSON.stringify({ ...entries, artifacts: [...entries.artifacts] });
    if (current !== undefined && this.written?.text === current && this.written.key === key) return;
    let text: string;
    try {
      text = eol(
        current === undefined
          ? newDvcYaml(file, entries)
          : mergeDvcYaml(current.replace(/\r\n/g, "\n"), file, this.dir, entries),
      );
    } catch (error) {
      if (!(error instanceof DvcYamlError)) throw error;
      this.warnOnce(
        "dvcyaml-unreadable",
        `DVCLive: ${file} is not valid YAML (${error.message}); it is left as it is and not updated.`,
      );
      return;
    }
    if (text !== current) writeAtomic(file, text);
    this.written = { text, key };
  }

  /**
   * dvclive's log_artifact: tracks `path` with DVC (`dvc add`); with `copy`, a copy of it in
   * `<dir>/artifacts/` instead; with a `name` or `type`, an `artifacts` entry in dvc.yaml.
   * Needs a DVC repository (else one warning, as dvclive) and the dvc command.
   */
  async logArtifact(
    path: string,
    {
      type,
      name,
      copy = false,
      cache = true,
    }: { type?: string; name?: string; copy?: boolean; cache?: boolean } = {},
  ): Promise<void> {
    if (this.dvcRoot === undefined) {
      this.warnOnce(
        `artifact:${path}`,
        `A DVC repo is required to log artifacts. Skipping \`log_artifact(${path})\`. Run \`dvc init\` in the project (dvclive would run it for you in a Git repository; trainkit does not).`,
      );
      return;
    }
    let target = resolve(this.cwd, path);
    if (copy) target = cleanAndCopyInto(target, this.artifactsDir);
    if (cache) await this.cache(target);
    if (type !== undefined || name !== undefined) {
      const artifactName = name ?? parse(target).name;
      if (ARTIFACT_NAME.test(artifactName)) {
        this.artifacts.set(
          artifactName,
          type === undefined ? { path: target } : { path: target, type },
        );
      } else
        this.logger.warn(
          `DVCLive: can't use '${artifactName}' as artifact name (ID). It will not be included in the \`artifacts\` section.`,
        );
    }
  }

  /**
   * dvclive's end(): back to the last step written, a final sync, and the experiment saved
   * (`dvc exp save`) when in a Git repository with commits and not inside a DVC pipeline.
   * Inside `dvc exp run`, the run folder and dvc.yaml are `git add`ed for DVC to pick up.
   */
  async end(): Promise<void> {
    const step = this.summary.get("step");
    if (typeof step === "number") this.step = step;
    this.sync();
    if (this.insideDvcExp && this.dvcRoot)
      await this.commands.stageForDvcExp(this.dvcRoot, this.dir, this.dvcFile);
    if (this.saveDvcExp && this.dvcRoot) await this.saveExperiment(this.dvcRoot);
  }

  /** dvclive's `cache`: `dvc add <path>`, its .dvc file and .gitignore kept for `dvc exp save`. */
  private async cache(path: string): Promise<void> {
    if (!(await this.commands.add(path, this.dvcRoot!))) return;
    if (this.saveDvcExp)
      this.includeUntracked.push(`${path}.dvc`, join(dirname(path), ".gitignore"));
  }

  private async saveExperiment(root: string): Promise<void> {
    await this.commands.expSave(root, {
      untracked: [...this.includeUntracked, ...(this.dvcFile ? [this.dvcFile] : [])],
      name: this.expName,
      message: this.expMessage,
    });
  }

  /** dvclive's checks at start: `dvc exp save` needs a DVC repository in Git with a commit. */
  private checkExperimentRepo(cwd: string): void {
    if (!this.saveDvcExp) return;
    const problem = this.commands.experimentRepoProblem(cwd, this.dvcRoot);
    if (problem) {
      this.logger.warn(`DVCLive: ${problem}`);
      this.saveDvcExp = false;
    }
  }

  /** funcy's set_in on the summary; a name that collides with a nested one replaces it. */
  private setSummary(segments: string[], value: PyValue): void {
    let node = this.summary;
    segments.slice(0, -1).forEach((segment, i) => {
      let child = node.get(segment);
      if (!(child instanceof Map)) {
        if (child !== undefined)
          this.warnOnce(
            `collision:${segment}`,
            `DVCLive: metric "${segments.join("/")}" nests under "${segments.slice(0, i + 1).join("/")}", which holds a value in metrics.json; the value is replaced by the nested metrics (dvclive itself would fail here).`,
          );
        child = new Map();
        node.set(segment, child);
      }
      node = child;
    });
    node.set(segments.at(-1)!, value);
  }

  /**
   * dvclive's _init_cleanup: a fresh run removes the previous run's files from the folder. Only
   * inside the folder's real path: a `plots` link leading out of it is left alone.
   */
  private cleanup(): void {
    const dir = this.realDir;
    const plots = join(dir, "plots");
    let realPlots: string | undefined;
    try {
      realPlots = realpathSync.native(plots);
    } catch {
      // no plots folder: nothing to clear there
    }
    if (realPlots !== undefined && !contains(dir, realPlots))
      this.logger.warn(
        `DVCLive: ${plots} leads out of the run folder (to ${realPlots}); the previous run's plots there are not deleted.`,
      );
    else if (realPlots !== undefined)
      for (const folder of PLOT_FOLDERS)
        rmSync(join(realPlots, folder), { recursive: true, force: true });
    for (const name of ["metrics.json", "params.yaml", "report.html", "report.md"])
      rmSync(join(dir, name), { force: true });
    for (const entry of readdirSync(dir))
      // glob("<dir>/**dvc.yaml"): not recursive, and not hidden files.
      if (
        !entry.startsWith(".") &&
        entry.endsWith("dvc.yaml") &&
        statSync(join(dir, entry)).isFile()
      )
        unlinkSync(join(dir, entry));
  }

  /** dvclive's _init_resume: params and summary read back, the step after metrics.json's. */
  private resume(): void {
    this.readPrevious();
    const step = this.summary.get("step");
    this.stepValue = typeof step === "number" ? step : 0;
    // dvclive's quirk: a stored step of 0 is continued at 0, not 1.
    if (this.stepValue !== 0) {
      this.logger.info(`DVCLive: resuming from step ${this.stepValue}.`);
      this.stepValue += 1;
    }
  }

  /** trainkit's resume from a checkpoint: continue at `step`, dropping rows logged after it. */
  private continueAt(step: number): void {
    this.readPrevious();
    this.stepValue = step;
    let dropped = 0;
    for (const file of tsvFiles(join(this.plotsDir, "metrics"))) {
      const result = truncateTsv(readFileSync(file, "utf8"), step);
      if (result.dropped > 0) {
        writeAtomic(file, result.text);
        dropped += result.dropped;
      }
    }
    this.logger.info(
      `DVCLive: continuing ${this.dir} at step ${step}` +
        (dropped > 0
          ? `; ${dropped} values logged after the checkpoint were removed from the plots (this run logs them again).`
          : "."),
    );
  }

  private readPrevious(): void {
    if (existsSync(this.paramsFile)) {
      const text = readFileSync(this.paramsFile, "utf8").replace(/\r\n/g, "\n");
      try {
        this.previousParams = { text, keys: paramKeys(text).length };
      } catch (error) {
        this.logger.warn(
          `DVCLive: ${this.paramsFile} cannot be read (${(error as Error).message}); it is written anew.`,
        );
      }
    }
    if (existsSync(this.metricsFile)) {
      try {
        const summary = parsePythonJson(readFileSync(this.metricsFile, "utf8"));
        if (summary instanceof Map) this.summary = summary;
      } catch (error) {
        this.logger.warn(
          `DVCLive: ${this.metricsFile} cannot be read (${(error as Error).message}); the summary starts empty.`,
        );
      }
    }
  }

  private warnOnce(key: string, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.logger.warn(message);
  }
}

/** Bad options are errors before anything is written. */
export function checkLiveOptions(
  dir: unknown,
  dvcyaml: unknown,
  cwd: string,
): asserts dir is string {
  if (typeof dir !== "string" || dir.trim() === "")
    throw new TypeError(
      `DVCLive: dir must be a folder path such as "dvclive" (got ${JSON.stringify(dir)}).`,
    );
  checkRunFolder(dir, resolve(cwd, dir), cwd);
  if (dvcyaml !== false && (typeof dvcyaml !== "string" || basename(dvcyaml) !== "dvc.yaml"))
    throw new TypeError(
      `DVCLive: dvcyaml must be a path to a file named dvc.yaml, or false for none (got ${JSON.stringify(dvcyaml)}).`,
    );
}

import { copyFileSync, linkSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import {
  MlflowCallback,
  MlflowConfigError,
  mlflowDisabled,
  resolveMlflowConfig,
  type EndStatus,
  type Env,
  type MlflowClient,
  type MlflowCallbackOptions,
  type MlflowTransport,
  type ResolvedMlflowConfig,
  type StateRecord,
} from "@trainkit/callback-mlflow";
import type { TrainingArguments } from "@trainkit/core/plugin";
import {
  REPO_ARTIFACTS_DIR,
  parseDagsHubTrackingUri,
  resolveDagsHubConfig,
  type DagsHubConfigOptions,
  type ResolvedDagsHubConfig,
} from "./config.js";
import { createDagsHubTransport, type DagsHubRecord, type RepoUploadRecord } from "./transport.js";

export interface DagsHubCallbackOptions extends MlflowCallbackOptions, DagsHubConfigOptions {}

/** The output folder's files to upload: everything but trainkit's own `.trainkit` folder. */
function outputFiles(root: string, dir = root): string[] {
  const out: string[] = [];
  const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  );
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (dir === root && entry.name === ".trainkit") continue;
    if (entry.isDirectory()) out.push(...outputFiles(root, path));
    else if (entry.isFile() || (entry.isSymbolicLink() && statSync(path).isFile())) out.push(path);
  }
  return out;
}

/**
 * Groups files into commits of at most `maxFiles` files and `maxBytes` bytes (a file larger than
 * `maxBytes` goes alone), in order.
 */
export function planCommits<T extends { size: number }>(
  files: readonly T[],
  maxFiles: number,
  maxBytes: number,
): T[][] {
  const commits: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const file of files) {
    if (current.length > 0 && (current.length >= maxFiles || bytes + file.size > maxBytes)) {
      commits.push(current);
      current = [];
      bytes = 0;
    }
    current.push(file);
    bytes += file.size;
  }
  if (current.length > 0) commits.push(current);
  return commits;
}

/**
 * HF's DagsHubCallback (`report_to="dagshub"`): the MLflow callback against a DagsHub
 * repository's tracking server (`https://dagshub.com/<owner>/<repo>.mlflow`, Basic auth with the
 * user name and an access token), plus, with HF_DAGSHUB_LOG_ARTIFACTS, the upload of the output
 * folder into the repository folder `artifacts/` on BRANCH at train end.
 *
 * Unlike HF, the MLflow run is ended at train end (HF's DagsHubCallback overrides on_train_end
 * without calling MLflow's, so its run stays RUNNING until the process exits).
 */
export class DagsHubCallback extends MlflowCallback<DagsHubRecord> {
  /** The DagsHub side of the configuration, resolved with the rest at setup. */
  protected dagshub: ResolvedDagsHubConfig | undefined;

  // Declared for its parameter type: the DagsHub options.
  constructor(options: DagsHubCallbackOptions = {}) {
    super(options);
  }

  protected static override disabledReason(env: Env): string | undefined {
    return mlflowDisabled(env)
      ? "DagsHubCallback: DISABLE_MLFLOW_INTEGRATION is TRUE, which disables DagsHub too (it is built on MLflow, as in HF); unset it to use DagsHub."
      : undefined;
  }

  protected get dagshubOptions(): DagsHubCallbackOptions {
    return this.options as DagsHubCallbackOptions;
  }

  protected override get integrationName(): string {
    return "dagshub";
  }

  /** The repository the run logs to (`<owner>/<repo>`), once set up. */
  get repository(): string | undefined {
    return this.dagshub ? `${this.dagshub.owner}/${this.dagshub.repo}` : undefined;
  }

  /** The DagsHub URI is checked first (HF splits it before checking it is set). */
  protected override resolveConfig(): ResolvedMlflowConfig {
    const source = this.options.trackingUri !== undefined ? "trackingUri" : "MLFLOW_TRACKING_URI";
    const parsed = parseDagsHubTrackingUri(
      this.options.trackingUri ?? this.env.MLFLOW_TRACKING_URI,
    );
    if (!parsed.ok) throw new MlflowConfigError(`DagsHub: ${parsed.reason} (from ${source}).`);
    const config = resolveMlflowConfig(this.env, this.options);
    this.dagshub = resolveDagsHubConfig(this.env, this.dagshubOptions, parsed);
    return config;
  }

  protected override createTransport(
    config: ResolvedMlflowConfig,
    client: MlflowClient,
  ): MlflowTransport {
    const options: Parameters<typeof createDagsHubTransport>[0] = {
      client,
      artifacts: config.logArtifacts,
      params: config.logParams,
      logger: this.logger,
      timeoutMs: config.http.timeoutMs,
    };
    if (this.dagshub?.repoAuth) options.repoAuth = this.dagshub.repoAuth;
    if (this.dagshub) options.repoHost = this.dagshub.host;
    if (config.auth) options.trackingAuth = config.auth;
    return createDagsHubTransport(options);
  }

  /**
   * At train end, with HF_DAGSHUB_LOG_ARTIFACTS, the upload of the output folder, queued after
   * the run's end record (trainkit ends the run; HF leaves it open) so a long upload does not
   * keep it RUNNING. World process zero only, as onTrainEnd (HF uploads from every rank).
   */
  protected override afterEndRecords(
    _status: EndStatus,
    trainEndArgs: TrainingArguments | undefined,
  ): DagsHubRecord[] {
    if (!trainEndArgs || !this.dagshub?.logRepoArtifacts) return [];
    try {
      return this.repoUploadRecords(trainEndArgs, this.dagshub);
    } catch (error) {
      this.warnOnce(
        "repo-upload",
        `DagsHub: could not prepare the upload of ${trainEndArgs.outputDir} to the repository: ${(error as Error).message}`,
      );
      return [];
    }
  }

  /**
   * Every file under the output folder (but `.trainkit/`), hard-linked (else copied) into the
   * spool now, in commits of at most maxFilesPerCommit files / maxBytesPerCommit bytes.
   */
  protected repoUploadRecords(
    args: TrainingArguments,
    config: ResolvedDagsHubConfig,
  ): RepoUploadRecord[] {
    const source = args.outputDir;
    const files = outputFiles(source).map((path) => ({
      path,
      rel: relative(source, path).split(sep).join("/"),
      size: statSync(path).size,
    }));
    if (files.length === 0) return [];
    const id = Date.now().toString(36);
    const root = join(this.outbox!.dir, "repo-upload", id);
    for (const file of files) {
      const target = join(root, file.rel);
      mkdirSync(dirname(target), { recursive: true });
      try {
        linkSync(file.path, target);
      } catch {
        copyFileSync(file.path, target);
      }
    }
    const commits = planCommits(files, config.maxFilesPerCommit, config.maxBytesPerCommit);
    return commits.map((batch, i) => {
      const marker = `[trainkit ${this.streamId ?? "run"}/${id} ${i + 1}/${commits.length}]`;
      return {
        t: "dh",
        host: config.host,
        owner: config.owner,
        repo: config.repo,
        branch: config.branch,
        dest: REPO_ARTIFACTS_DIR,
        dir: root,
        files: batch.map((f) => f.rel),
        message: `Upload training output (${batch.length} files) ${marker}`,
        marker,
      };
    });
  }

  /** MLflow's state plus the DagsHub options given in code (secret-free). */
  override state(): StateRecord {
    const base = super.state();
    const o = this.dagshubOptions;
    const extra = Object.fromEntries(
      Object.entries({
        log_repo_artifacts: o.logRepoArtifacts,
        branch: o.branch,
        host: o.host,
        max_files_per_commit: o.maxFilesPerCommit,
        max_bytes_per_commit: o.maxBytesPerCommit,
      }).filter(([, v]) => v !== undefined),
    );
    return { args: { ...base.args, ...extra }, attributes: base.attributes };
  }

  protected static override optionsFromState(record: StateRecord): DagsHubCallbackOptions {
    const options: DagsHubCallbackOptions = super.optionsFromState(record);
    const a = record.args ?? {};
    if (typeof a.log_repo_artifacts === "boolean") options.logRepoArtifacts = a.log_repo_artifacts;
    if (typeof a.branch === "string") options.branch = a.branch;
    if (typeof a.host === "string") options.host = a.host;
    if (typeof a.max_files_per_commit === "number")
      options.maxFilesPerCommit = a.max_files_per_commit;
    if (typeof a.max_bytes_per_commit === "number")
      options.maxBytesPerCommit = a.max_bytes_per_commit;
    return options;
  }
}

/**
 * The DagsHub outbox transport: MLflow's for the tracking records, plus the repo upload records
 * (HF_DAGSHUB_LOG_ARTIFACTS): one record = one commit of up to 50 files / 100 MiB into the
 * repository folder `artifacts/` through DagsHub's content API.
 *
 * A commit is not idempotent. Before a PUT is sent, the spool's meta notes the record and the
 * `last_commit` (branch head) it is sent with. A retry after an outcome that is unknown
 * (connection error, timeout, 5xx) reads the branch head first: our commit there (its summary
 * carries the record's marker) means it landed; the head unchanged means it did not, and the same
 * request is sent again with the same last_commit; the head moved by someone else means it
 * cannot be known without risking a duplicate commit, and the record is set aside with a message.
 * A refused last_commit (the branch moved between reading the head and the PUT, no unknown
 * outcome before) is retried with the new head.
 */
import { existsSync, statSync } from "node:fs";
import { relative, resolve, sep } from "node:path";
import {
  MlflowTransport,
  RETRYABLE_STATUSES,
  removeSpoolCopy,
  type AuthProvider,
  type MlflowRecord,
  type MlflowTransportOptions,
} from "@trainkit/callback-mlflow";
import { DeliveryError, type DeliveryContext } from "@trainkit/core/plugin";
import { DagsHubRepoClient, RepoRequestError, type UploadFile } from "./repo-client.js";

/**
 * One commit of the repo upload: the files `dir/<src>` (the spool copies) go to
 * `<dest>/<src>` on `branch` of `owner/repo` at `host`. `marker` is in the commit summary, so a
 * commit whose response was lost can be recognised.
 */
export type RepoUploadRecord = {
  t: "dh";
  host: string;
  owner: string;
  repo: string;
  branch: string;
  /** The repository folder (`artifacts`). */
  dest: string;
  /** The spool copy's root folder (absolute). */
  dir: string;
  /** Paths under `dir` and under `dest` (`/`-separated). */
  files: string[];
  /** The commit summary; contains `marker`. */
  message: string;
  marker: string;
};

export type DagsHubRecord = MlflowRecord | RepoUploadRecord;

/** What meta.json keeps about the upload in progress (secret-free). */
interface PendingUpload {
  marker: string;
  lastCommit: string;
  /** A PUT was sent whose outcome is unknown. */
  sent: boolean;
}

const META_KEY = "dagshubUpload";

export interface DagsHubTransportOptions extends MlflowTransportOptions {
  /** DagsHub's credentials for the content API (DAGSHUB_USERNAME/PASSWORD, DAGSHUB_USER_TOKEN). */
  repoAuth?: AuthProvider;
  /**
   * The MLflow credentials: used for the content API when there is no `repoAuth` and the upload's
   * host is the tracking server's origin (credentials never go to another host).
   */
  trackingAuth?: AuthProvider;
  /** Idle timeout of an upload request, ms (default 120 000). */
  timeoutMs?: number;
  /**
   * The DagsHub host `repoAuth` belongs to (DAGSHUB_CLIENT_HOST): an upload record for another
   * host is refused rather than sent those credentials. Unset: not checked.
   */
  repoHost?: string;
}

export class DagsHubTransport extends MlflowTransport {
  protected readonly repoAuth: AuthProvider | undefined;
  protected readonly trackingAuth: AuthProvider | undefined;
  protected readonly timeoutMs: number | undefined;
  protected readonly repoHost: string | undefined;
  private readonly repoClients = new Map<string, DagsHubRepoClient>();

  constructor(options: DagsHubTransportOptions) {
    super(options);
    this.repoAuth = options.repoAuth;
    this.trackingAuth = options.trackingAuth;
    this.timeoutMs = options.timeoutMs;
    this.repoHost = options.repoHost;
  }

  override batchSize(records: readonly DagsHubRecord[]): number {
    // A repo upload goes alone (MLflow's rule stops a log-batch at any other record).
    if (records[0]?.t === "dh") return 1;
    return super.batchSize(records as readonly MlflowRecord[]);
  }

  override async deliver(batch: readonly DagsHubRecord[], context: DeliveryContext): Promise<void> {
    const first = batch[0];
    if (first?.t === "dh") {
      // Independent of the MLflow run: no run is opened for it.
      for (const record of batch) await this.deliverRepoUpload(record as RepoUploadRecord, context);
      return;
    }
    await super.deliver(batch as readonly MlflowRecord[], context);
  }

  protected repoClient(host: string): DagsHubRepoClient {
    let client = this.repoClients.get(host);
    if (!client) {
      if (this.repoAuth && this.repoHost !== undefined && !sameOrigin(host, this.repoHost))
        throw new DeliveryError(
          `DagsHub: the spool's upload is for ${originOf(host)}, DAGSHUB_CLIENT_HOST is ${originOf(this.repoHost)}: set it to the spool's host to deliver (DagsHub credentials are not sent to another host).`,
          { kind: "halt" },
        );
      const options: ConstructorParameters<typeof DagsHubRepoClient>[0] = { host };
      const auth =
        this.repoAuth ?? (sameOrigin(host, this.client.baseUrl) ? this.trackingAuth : undefined);
      if (auth) options.auth = auth;
      if (this.timeoutMs !== undefined) options.timeoutMs = this.timeoutMs;
      client = new DagsHubRepoClient(options);
      this.repoClients.set(host, client);
    }
    return client;
  }

  /** One commit of the repo upload; see the module comment for the retry rule. */
  protected async deliverRepoUpload(
    record: RepoUploadRecord,
    context: DeliveryContext,
  ): Promise<void> {
    const client = this.repoClient(record.host);
    const where = `${record.owner}/${record.repo}@${record.branch}`;
    const stored = context.meta[META_KEY] as PendingUpload | undefined;
    let pending = stored?.marker === record.marker ? stored : undefined;
    const head = () =>
      client
        .branchHead(record.owner, record.repo, record.branch, context.signal)
        .catch((error: unknown) => {
          throw this.repoError(error, record);
        });

    if (!pending) {
      pending = { marker: record.marker, lastCommit: (await head()).id, sent: false };
    } else if (pending.sent) {
      // The last PUT's outcome is unknown: find out before sending it again.
      const now = await head();
      if (now.message.includes(record.marker)) return this.uploaded(record, context);
      if (now.id !== pending.lastCommit)
        throw new DeliveryError(
          `DagsHub: an upload to ${where} (${record.message}) got no answer, and the branch has moved since (head ${now.id.slice(0, 12)} is not ours); it may or may not have been committed, so it is not sent again (no duplicate commit). Its files are kept in ${record.dir}; check the repository's history.`,
          { kind: "reject" },
        );
    }
    const files = this.uploadFiles(record);
    context.saveMeta({ [META_KEY]: { ...pending, sent: true } });
    try {
      await client.upload({
        owner: record.owner,
        repo: record.repo,
        branch: record.branch,
        dir: record.dest,
        files,
        // The DagsHub client's fields (DataSet.add_dir → upload_files with versioning "dvc").
        fields: [
          ["commit_choice", "direct"],
          ["commit_summary", record.message],
          ["versioning", "dvc"],
          ["last_commit", pending.lastCommit],
          ["is_dvc_dir", "True"],
        ],
        signal: context.signal,
      });
    } catch (error) {
      if (!(error instanceof RepoRequestError)) throw this.repoError(error, record);
      const status = error.status;
      const unknownOutcome = status === undefined || status >= 500;
      if (unknownOutcome) throw this.repoError(error, record); // retried, same last_commit
      // A definite answer: nothing was committed.
      context.saveMeta({ [META_KEY]: { ...pending, sent: false } });
      if (status === 401 || status === 403 || status === 404 || RETRYABLE_STATUSES.has(status))
        throw this.repoError(error, record); // 403/404: this upload is set aside (reject)
      // Another 4xx: a stale last_commit (the branch moved), or the data is refused.
      const now = await head();
      if (now.id !== pending.lastCommit) {
        context.saveMeta({ [META_KEY]: undefined });
        throw new DeliveryError(
          `DagsHub: ${where} moved while uploading (${error.message}); sending again on the new head.`,
          { kind: "retry", retryAfterMs: 0, status },
        );
      }
      throw new DeliveryError(
        `DagsHub refused an upload to ${where}: ${error.message} Its files are kept in ${record.dir}.`,
        { kind: "reject", status },
      );
    }
    this.uploaded(record, context);
  }

  /** The record's files as they are now (sizes taken now); missing ones are an error. */
  protected uploadFiles(record: RepoUploadRecord): UploadFile[] {
    const root = resolve(record.dir);
    return record.files.map((name) => {
      const path = resolve(root, name);
      const inside = relative(root, path);
      if (inside === "" || inside.startsWith("..") || inside.split(sep).includes(".."))
        throw new DeliveryError("DagsHub: an upload record points outside its folder.", {
          kind: "reject",
        });
      if (!existsSync(path))
        throw new DeliveryError(
          `DagsHub: the spool copy of ${name} is missing (${path}); the upload ${record.message} cannot be made.`,
          { kind: "reject" },
        );
      return { path, name, size: statSync(path).size };
    });
  }

  /** Committed: forget the pending note and delete the spool copies. */
  protected uploaded(record: RepoUploadRecord, context: DeliveryContext): void {
    for (const src of record.files) removeSpoolCopy({ t: "a", dir: record.dir, src, path: src });
    context.saveMeta({ [META_KEY]: undefined });
  }

  /**
   * A failure as the outbox's DeliveryError: retry; halt for credentials (401) and other
   * refusals; reject (this upload set aside) for 403/404.
   */
  protected repoError(error: unknown, record: RepoUploadRecord): DeliveryError {
    if (error instanceof DeliveryError) return error;
    if (error instanceof RepoRequestError) {
      const status = error.status;
      const options: { kind: "retry" | "halt"; status?: number; retryAfterMs?: number } = {
        kind: "retry",
      };
      if (status !== undefined) options.status = status;
      if (error.retryAfterMs !== undefined) options.retryAfterMs = error.retryAfterMs;
      if (status === 401) options.kind = "halt";
      else if (status === 403 || status === 404) {
        // This upload is refused (no access to the repository, or no such repository or
        // branch): set aside with the server's message; the MLflow records go on (spec §2.5).
        return new DeliveryError(
          `DagsHub refused the upload ${record.message}: ${error.message} (repository ${record.owner}/${record.repo}, branch ${JSON.stringify(record.branch)}). Its files are kept in ${record.dir}.`,
          { ...options, kind: "reject" },
        );
      } else if (status !== undefined && status < 500 && !RETRYABLE_STATUSES.has(status))
        options.kind = "halt";
      return new DeliveryError(error.message, options);
    }
    const message = error instanceof Error ? error.message : String(error);
    return new DeliveryError(`DagsHub upload: ${message}`, { kind: "retry" });
  }
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return JSON.stringify(url);
  }
}

function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}

export function createDagsHubTransport(options: DagsHubTransportOptions): DagsHubTransport {
  return new DagsHubTransport(options);
}

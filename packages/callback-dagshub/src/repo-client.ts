/**
 * A small client for the two DagsHub content-API calls the repo upload needs (spec §2.4), on
 * Node's http/https: the branch head (GET `/api/v1/repos/<o>/<r>/branches/<b>`) and a streamed
 * multipart upload that makes one commit (PUT `/api/v1/repos/<o>/<r>/content/<b>/<dir>`).
 * Failures are {@link RepoRequestError}s built here, from the status and the server's (redacted)
 * message only: never a header, never a credential.
 */
import { createReadStream } from "node:fs";
import http from "node:http";
import https from "node:https";
import { Readable } from "node:stream";
import { parseRetryAfter, type AuthProvider } from "@trainkit/callback-mlflow";
import { redactText } from "@trainkit/core/plugin";

export class RepoRequestError extends Error {
  /** HTTP status; undefined when no response came. */
  readonly status: number | undefined;
  /** No response (connection error, timeout, abort): the request may have taken effect. */
  readonly ambiguous: boolean;
  readonly aborted: boolean;
  readonly retryAfterMs: number | undefined;
  readonly serverMessage: string | undefined;

  constructor(
    message: string,
    fields: {
      status?: number;
      ambiguous?: boolean;
      aborted?: boolean;
      retryAfterMs?: number;
      serverMessage?: string;
    },
  ) {
    super(message);
    this.name = "RepoRequestError";
    this.status = fields.status;
    this.ambiguous = fields.ambiguous ?? false;
    this.aborted = fields.aborted ?? false;
    this.retryAfterMs = fields.retryAfterMs;
    this.serverMessage = fields.serverMessage;
  }
}

export interface BranchHead {
  id: string;
  message: string;
}

/** One file of an upload: where it is, its name under the target folder, its size now. */
export interface UploadFile {
  path: string;
  name: string;
  size: number;
}

export interface UploadRequest {
  owner: string;
  repo: string;
  branch: string;
  /** The repository folder the files go into (`artifacts`). */
  dir: string;
  files: readonly UploadFile[];
  /** Text fields in the order the DagsHub client sends them. */
  fields: readonly (readonly [string, string])[];
  signal?: AbortSignal;
}

export interface DagsHubRepoClientOptions {
  /** The DagsHub host, e.g. https://dagshub.com (no trailing `/`). */
  host: string;
  auth?: AuthProvider;
  /** Idle timeout of a request, ms (default 120 000). */
  timeoutMs?: number;
}

const MAX_ERROR_BODY = 64 * 1024;

/** A path segment list, each segment URL-encoded (branch names may hold `/`). */
function encodeSegments(path: string): string {
  return path
    .split("/")
    .filter((s) => s !== "")
    .map(encodeURIComponent)
    .join("/");
}

/** A Content-Disposition parameter value as HTML's form encoding writes it. */
function quoteParam(value: string): string {
  return value.replace(/"/g, "%22").replace(/\r/g, "%0D").replace(/\n/g, "%0A");
}

export class DagsHubRepoClient {
  readonly host: string;
  protected readonly auth: AuthProvider | undefined;
  protected readonly timeoutMs: number;
  private readonly agents = {
    http: new http.Agent({ keepAlive: true }),
    https: new https.Agent({ keepAlive: true }),
  };

  constructor(options: DagsHubRepoClientOptions) {
    this.host = options.host.replace(/\/+$/, "");
    this.auth = options.auth;
    this.timeoutMs = options.timeoutMs ?? 120_000;
  }

  repoUrl(owner: string, repo: string, rest: string): string {
    return `${this.host}/api/v1/repos/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}${rest}`;
  }

  /** The head commit of `branch`: `commit.id` and `commit.message` of the branches endpoint. */
  async branchHead(
    owner: string,
    repo: string,
    branch: string,
    signal?: AbortSignal,
  ): Promise<BranchHead> {
    const url = this.repoUrl(owner, repo, `/branches/${encodeSegments(branch)}`);
    const text = await this.request("GET", url, undefined, signal);
    let body: { commit?: { id?: unknown; message?: unknown } };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new RepoRequestError(`DagsHub GET ${url} answered with something that is not JSON.`, {
        status: 200,
      });
    }
    const id = body.commit?.id;
    if (typeof id !== "string" || id === "")
      throw new RepoRequestError(`DagsHub GET ${url} answered without commit.id.`, {
        status: 200,
      });
    return { id, message: typeof body.commit?.message === "string" ? body.commit.message : "" };
  }

  /** One commit with `files`, streamed as multipart/form-data (never buffered whole). */
  async upload(request: UploadRequest): Promise<void> {
    const url = this.repoUrl(
      request.owner,
      request.repo,
      `/content/${encodeSegments(request.branch)}/${encodeURIComponent(request.dir)}`,
    );
    const boundary = `----trainkit${Date.now().toString(16)}${Math.random().toString(16).slice(2)}`;
    const head = (disposition: string, type?: string) =>
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; ${disposition}\r\n` +
          (type ? `Content-Type: ${type}\r\n` : "") +
          "\r\n",
        "utf8",
      );
    const pieces: (Buffer | UploadFile)[] = [];
    for (const [name, value] of request.fields) {
      pieces.push(head(`name="${quoteParam(name)}"`));
      pieces.push(Buffer.from(`${value}\r\n`, "utf8"));
    }
    for (const file of request.files) {
      pieces.push(
        head(`name="files"; filename="${quoteParam(file.name)}"`, "application/octet-stream"),
      );
      pieces.push(file);
      pieces.push(Buffer.from("\r\n"));
    }
    pieces.push(Buffer.from(`--${boundary}--\r\n`));
    const length = pieces.reduce((n, p) => n + (Buffer.isBuffer(p) ? p.length : p.size), 0);
    async function* body(): AsyncGenerator<Buffer> {
      for (const piece of pieces) {
        if (Buffer.isBuffer(piece)) yield piece;
        else {
          // The size was taken when the request was built; a file that changed since fails it.
          let sent = 0;
          for await (const chunk of createReadStream(piece.path, {
            start: 0,
            end: Math.max(0, piece.size - 1),
          })) {
            sent += (chunk as Buffer).length;
            yield chunk as Buffer;
          }
          if (sent !== piece.size)
            throw new Error(`${piece.name} changed size while it was being uploaded`);
        }
      }
    }
    await this.request(
      "PUT",
      url,
      {
        stream: () => Readable.from(body()),
        length,
        type: `multipart/form-data; boundary=${boundary}`,
      },
      request.signal,
    );
  }

  /** Sends one request; 401 with a refreshable AuthProvider: refreshed once and repeated. */
  protected async request(
    method: string,
    url: string,
    body: { stream: () => Readable; length: number; type: string } | undefined,
    signal: AbortSignal | undefined,
  ): Promise<string> {
    let refreshed = false;
    for (;;) {
      const response = await this.send(method, url, body, signal);
      if (response.status >= 200 && response.status < 300) return response.text;
      if (response.status === 401 && !refreshed && this.auth?.refresh) {
        refreshed = true;
        const renewed = await Promise.resolve()
          .then(() => this.auth!.refresh!())
          .catch(() => false);
        if (renewed) continue;
      }
      throw this.responseError(method, url, response);
    }
  }

  private async send(
    method: string,
    url: string,
    body: { stream: () => Readable; length: number; type: string } | undefined,
    signal: AbortSignal | undefined,
  ): Promise<{ status: number; text: string; headers: http.IncomingHttpHeaders }> {
    const target = new URL(url);
    const headers: Record<string, string> = { Accept: "application/json" };
    const authorization = this.auth ? await this.auth.header() : undefined;
    if (authorization) headers.Authorization = authorization;
    if (body) {
      headers["Content-Type"] = body.type;
      headers["Content-Length"] = String(body.length);
    }
    const where = `DagsHub ${method} ${redactText(`${target.origin}${target.pathname}`)}`;
    const secure = target.protocol === "https:";
    return await new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(new RepoRequestError(`${where} was aborted.`, { ambiguous: true, aborted: true }));
        return;
      }
      const req = (secure ? https : http).request(target, {
        method,
        headers,
        agent: secure ? this.agents.https : this.agents.http,
        signal,
      });
      let settled = false;
      const fail = (error: unknown) => {
        if (settled) return;
        settled = true;
        req.destroy();
        reject(this.transportError(where, error, signal));
      };
      req.setTimeout(this.timeoutMs, () =>
        fail(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" })),
      );
      req.on("error", fail);
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size <= MAX_ERROR_BODY) chunks.push(chunk);
        });
        res.on("error", fail);
        res.on("end", () => {
          if (settled) return;
          settled = true;
          resolve({
            status: res.statusCode ?? 0,
            text: Buffer.concat(chunks).toString("utf8"),
            headers: res.headers,
          });
        });
      });
      if (body) {
        const stream = body.stream();
        stream.on("error", fail);
        stream.pipe(req);
      } else req.end();
    });
  }

  private responseError(
    method: string,
    url: string,
    response: { status: number; text: string; headers: http.IncomingHttpHeaders },
  ): RepoRequestError {
    const target = new URL(url);
    let serverMessage: string | undefined;
    try {
      const parsed = JSON.parse(response.text) as { message?: unknown; error?: unknown };
      const text = parsed.message ?? parsed.error;
      if (typeof text === "string") serverMessage = text;
    } catch {
      if (response.text.trim()) serverMessage = response.text.trim().replace(/\s+/g, " ");
    }
    if (serverMessage !== undefined) serverMessage = redactText(serverMessage).slice(0, 500);
    const hint =
      response.status === 401 || response.status === 403
        ? " Check DAGSHUB_USER_TOKEN (or DAGSHUB_USERNAME/DAGSHUB_PASSWORD, else MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD): the token needs write access to the repository."
        : response.status === 404
          ? " Does the repository exist on this host (DAGSHUB_CLIENT_HOST), and the branch (BRANCH)?"
          : "";
    const fields: ConstructorParameters<typeof RepoRequestError>[1] = { status: response.status };
    if (serverMessage !== undefined) fields.serverMessage = serverMessage;
    const retryAfterMs = parseRetryAfter(response.headers["retry-after"]);
    if (retryAfterMs !== undefined) fields.retryAfterMs = retryAfterMs;
    return new RepoRequestError(
      `DagsHub ${method} ${redactText(`${target.origin}${target.pathname}`)} failed with HTTP ${response.status}${serverMessage ? ` (${serverMessage})` : ""}.${hint}`,
      fields,
    );
  }

  private transportError(
    where: string,
    error: unknown,
    signal: AbortSignal | undefined,
  ): RepoRequestError {
    if (error instanceof RepoRequestError) return error;
    const code =
      typeof (error as { code?: unknown })?.code === "string"
        ? (error as { code: string }).code
        : undefined;
    if (signal?.aborted || code === "ABORT_ERR")
      return new RepoRequestError(`${where} was aborted.`, { ambiguous: true, aborted: true });
    const what =
      code === "ETIMEDOUT"
        ? "timed out"
        : code === "ECONNREFUSED"
          ? "could not connect (connection refused)"
          : code === "ECONNRESET"
            ? "lost the connection (reset)"
            : code === "ENOTFOUND" || code === "EAI_AGAIN"
              ? "could not resolve the host"
              : code?.startsWith("ERR_TLS") || code?.includes("CERT")
                ? `failed TLS verification (${code})`
                : code === undefined && error instanceof Error && /changed size/.test(error.message)
                  ? `failed: ${redactText(error.message)}`
                  : `failed without a response${code ? ` (${code})` : ""}`;
    return new RepoRequestError(`${where} ${what}.`, { ambiguous: true });
  }

  /** Closes pooled connections. */
  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }
}

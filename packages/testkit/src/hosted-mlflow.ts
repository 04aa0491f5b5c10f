// MLflow as hosted services expose it, for the integrations built on callback-mlflow:
// - startMountedMlflow: the real MLflow server "mounted" under a path prefix behind an
//   authenticating gateway (Azure ML's `/mlflow/v1.0/subscriptions/.../workspaces/<ws>`, DagsHub's
//   `/<owner>/<repo>.mlflow`). Requests under the prefix are checked, recorded, stripped of the
//   prefix and forwarded (streamed) to the real server; anything else is 404.
// - startDagsHubFake: one origin serving what dagshub.com serves to trainkit: the mounted MLflow
//   at `/<owner>/<repo>.mlflow` and DagsHub's content API (branch head + multipart upload), with
//   the checks the real API makes (auth, branch, commit_choice, a stale last_commit refused).
// Both bind 127.0.0.1 on a free port.
import { createHash } from "node:crypto";
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { freePort } from "./free-port.js";
import { endToEndHeaders } from "./http-headers.js";

/** One request the gateway saw. */
export interface MountedRequest {
  method: string;
  /** Path with query, as the client sent it (prefix included). */
  path: string;
  /** The Authorization header as sent (for asserting what went on the wire; never print it). */
  authorization: string | undefined;
  /** The status the client got; "reset" when the exchange failed; "pending" while in flight. */
  status: number | "pending" | "reset";
}

export interface MountOptions {
  /** The real MLflow server, e.g. "http://127.0.0.1:5000". */
  target: string;
  /** Where it is mounted, e.g. "/owner/repo.mlflow" (leading `/`, no trailing `/`). */
  prefix: string;
  /**
   * Accepts a request's Authorization header; refused requests get 401 with an MLflow-style
   * `UNAUTHENTICATED` body and are not forwarded. Default: every request is accepted.
   */
  authorize?: (authorization: string | undefined) => boolean;
}

export interface MountedMlflowOptions extends MountOptions {
  /** Port on 127.0.0.1; a free one by default. */
  port?: number;
}

export interface MountedMlflow {
  /** `http://127.0.0.1:<port><prefix>`: the tracking URI a client uses. */
  url: string;
  /** `http://127.0.0.1:<port>`. */
  origin: string;
  port: number;
  /** Every request under the prefix, in order of arrival. */
  requests: MountedRequest[];
  /** The next `count` requests are refused with 401 even with valid credentials (an expired token). */
  rejectNext(count?: number): void;
  stop(): Promise<void>;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

const LOG_CAP = 10_000;

interface Mount {
  /** Handles the request if it is under the prefix; false otherwise. */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  requests: MountedRequest[];
  rejectNext(count: number): void;
  close(): void;
}

function createMount(options: MountOptions): Mount {
  const target = new URL(options.target);
  if (target.protocol !== "http:") throw new Error(`mounted MLflow: only http targets (${target})`);
  const prefix = options.prefix.replace(/\/+$/, "");
  if (!prefix.startsWith("/")) throw new Error(`mounted MLflow: the prefix must start with "/"`);
  const targetPrefix = target.pathname.replace(/\/+$/, "");
  const agent = new Agent({ keepAlive: false });
  const requests: MountedRequest[] = [];
  let expired = 0;

  function handle(req: IncomingMessage, res: ServerResponse): boolean {
    const raw = req.url ?? "/";
    const pathname = raw.split("?")[0] ?? raw;
    if (pathname !== prefix && !pathname.startsWith(`${prefix}/`)) return false;
    const authorization = req.headers.authorization;
    const entry: MountedRequest = {
      method: req.method ?? "GET",
      path: raw,
      authorization,
      status: "pending",
    };
    requests.push(entry);
    if (requests.length > LOG_CAP) requests.splice(0, requests.length - LOG_CAP);
    const allowed = options.authorize ? options.authorize(authorization) : true;
    if (!allowed || expired > 0) {
      if (allowed) expired--;
      req.resume();
      entry.status = 401;
      sendJson(res, 401, {
        error_code: "UNAUTHENTICATED",
        message: "The request is not authenticated (missing, invalid or expired credentials).",
      });
      return true;
    }
    const headers = endToEndHeaders(req.headers);
    headers.host = target.host;
    // The gateway has checked the credentials; the server behind it never sees them.
    delete headers.authorization;
    const upstream = httpRequest({
      agent,
      hostname: target.hostname,
      port: target.port,
      method: req.method,
      path: targetPrefix + (raw.slice(prefix.length) || "/"),
      headers,
    });
    upstream.on("error", () => {
      entry.status = "reset";
      if (!res.headersSent) sendJson(res, 502, { message: "bad gateway" });
      else req.socket.destroy();
    });
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
    upstream.on("response", (upstreamRes) => {
      entry.status = upstreamRes.statusCode ?? 502;
      res.writeHead(entry.status, upstreamRes.statusMessage, endToEndHeaders(upstreamRes.headers));
      upstreamRes.pipe(res);
    });
    req.pipe(upstream);
    return true;
  }

  return {
    handle,
    requests,
    rejectNext(count) {
      expired = count;
    },
    close: () => agent.destroy(),
  };
}

async function listen(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  port?: number,
): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const chosen = port ?? (await freePort());
  const server = createServer(handler);
  server.on("clientError", (_error, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(chosen, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    server,
    port: chosen,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * The real MLflow server mounted under `prefix` behind a gateway that checks the Authorization
 * header (Azure ML's workspace route, DagsHub's `<owner>/<repo>.mlflow`).
 */
export async function startMountedMlflow(options: MountedMlflowOptions): Promise<MountedMlflow> {
  const mount = createMount(options);
  const http = await listen((req, res) => {
    if (mount.handle(req, res)) return;
    req.resume();
    sendJson(res, 404, { error_code: "ENDPOINT_NOT_FOUND", message: `No route for ${req.url}` });
  }, options.port);
  const origin = `http://127.0.0.1:${http.port}`;
  return {
    url: origin + options.prefix.replace(/\/+$/, ""),
    origin,
    port: http.port,
    requests: mount.requests,
    rejectNext: (count = 1) => mount.rejectNext(count),
    async stop() {
      await http.close();
      mount.close();
    },
  };
}

/** The Azure ML workspace route MLflow is served under (`azureml://<host>` + this). */
export function azureMlWorkspacePath(
  subscription = "s",
  resourceGroup = "g",
  workspace = "w",
): string {
  return `/mlflow/v1.0/subscriptions/${subscription}/resourceGroups/${resourceGroup}/providers/Microsoft.MachineLearningServices/workspaces/${workspace}`;
}

// ---------------------------------------------------------------------------------------------
// DagsHub

/** One part of a multipart/form-data body. */
export interface MultipartPart {
  name: string;
  filename?: string;
  contentType?: string;
  data: Buffer;
}

/**
 * Parses a multipart/form-data body (RFC 7578). Throws on a malformed body: what a server
 * answers with 400.
 */
export function parseMultipart(body: Buffer, contentType: string | undefined): MultipartPart[] {
  const match = /^multipart\/form-data\s*;(?:.*;)?\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(
    contentType ?? "",
  );
  const boundary = match?.[1] ?? match?.[2];
  if (!boundary) throw new Error("Content-Type is not multipart/form-data with a boundary");
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: MultipartPart[] = [];
  let at = body.indexOf(delimiter);
  if (at !== 0 && at !== -1 && body.subarray(0, at).toString("latin1").trim() !== "")
    throw new Error("text before the first boundary");
  if (at === -1) throw new Error("no boundary in the body");
  for (;;) {
    at += delimiter.length;
    const after = body.subarray(at, at + 2).toString("latin1");
    if (after === "--") return parts; // the close delimiter
    if (after !== "\r\n") throw new Error("a boundary is not followed by CRLF");
    at += 2;
    const headerEnd = body.indexOf("\r\n\r\n", at);
    if (headerEnd === -1) throw new Error("a part has no end of headers");
    const headers = new Map<string, string>();
    for (const line of body.subarray(at, headerEnd).toString("utf8").split("\r\n")) {
      const colon = line.indexOf(":");
      if (colon <= 0) throw new Error(`bad part header ${JSON.stringify(line)}`);
      headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const next = body.indexOf(Buffer.concat([Buffer.from("\r\n"), delimiter]), headerEnd + 4);
    if (next === -1) throw new Error("a part is not terminated by a boundary");
    const disposition = headers.get("content-disposition") ?? "";
    if (!/^form-data\b/i.test(disposition)) throw new Error("a part is not form-data");
    const param = (key: string) => {
      const found = new RegExp(`;\\s*${key}="((?:[^"\\\\]|\\\\.)*)"`, "i").exec(disposition);
      if (!found) return undefined;
      return found[1]!
        .replace(/\\(.)/g, "$1")
        .replace(/%22/g, '"')
        .replace(/%0D/gi, "\r")
        .replace(/%0A/gi, "\n");
    };
    const name = param("name");
    if (name === undefined) throw new Error("a part has no name");
    const part: MultipartPart = { name, data: body.subarray(headerEnd + 4, next) };
    const filename = param("filename");
    if (filename !== undefined) part.filename = filename;
    const type = headers.get("content-type");
    if (type !== undefined) part.contentType = type;
    parts.push(part);
    at = next + 2;
  }
}

export interface DagsHubFakeOptions {
  /** The real MLflow server, mounted at `/<owner>/<repo>.mlflow`. */
  mlflow: string;
  owner: string;
  repo: string;
  /** The account: Basic `username:token` (what MLFLOW_TRACKING_USERNAME/PASSWORD carry) or Bearer `token`. */
  username: string;
  token: string;
  /** Branches that exist (default ["main"]). */
  branches?: string[];
  /** Status of an upload whose last_commit is not the branch head (default 400; unconfirmed for the real API). */
  staleStatus?: number;
  port?: number;
}

export interface DagsHubFile {
  /** Repository path (`artifacts/checkpoint-2/model.json`). */
  path: string;
  size: number;
  sha256: string;
  data: Buffer;
}

export interface DagsHubCommit {
  id: string;
  branch: string;
  /** `commit_summary`. */
  message: string;
  /** The target directory of the upload (decoded). */
  dir: string;
  /** The text fields as sent. */
  fields: Record<string, string>;
  files: DagsHubFile[];
  /** Whether the commit was made by this fake's pushExternal() (someone else). */
  external?: boolean;
}

export interface DagsHubRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  status: number | "pending" | "reset";
}

/** Faults for content uploads, consumed in order by the next matching PUTs. */
export interface UploadFaultPlan {
  /** The next `count` uploads get this status (a refusal or a 5xx), the commit not made. */
  status?: { status: 403 | 404 | 500 | 502 | 503 | 504; count: number };
  /** The next `count` uploads are committed, then the connection is reset before any response. */
  resetAfterCommit?: { count: number };
}

export interface DagsHubFake {
  /** `http://127.0.0.1:<port>`: DAGSHUB_CLIENT_HOST. */
  url: string;
  /** `<url>/<owner>/<repo>.mlflow`: MLFLOW_TRACKING_URI. */
  mlflowUrl: string;
  port: number;
  /** Requests to the MLflow mount. */
  mlflowRequests: MountedRequest[];
  /** Requests to the content API (and anything else not under the MLflow mount). */
  apiRequests: DagsHubRequest[];
  /** Commits, oldest first (uploads and pushExternal). */
  commits: DagsHubCommit[];
  /** The head of a branch, or undefined if it does not exist. */
  head(branch: string): { id: string; message: string } | undefined;
  /** The files of a branch: repository path → content (latest commit wins). */
  tree(branch: string): Map<string, Buffer>;
  /** Someone else commits to `branch` (its head moves). Returns the new head. */
  pushExternal(branch: string, message?: string): string;
  failUploads(plan: UploadFaultPlan): void;
  /** The next `count` MLflow requests get 401 (an expired token). */
  rejectNextMlflow(count?: number): void;
  stop(): Promise<void>;
}

const MAX_UPLOAD_BYTES = 512 * 1024 * 1024;

/**
 * A DagsHub host on 127.0.0.1: the MLflow tracking server of `<owner>/<repo>` (the real MLflow
 * server behind a prefix, Basic `username:token` or Bearer `token` required) and the content API
 * of the DagsHub client (`dagshub.upload`): GET `/api/v1/repos/<o>/<r>/branches/<b>` →
 * `{name, commit:{id, message}}`; PUT `/api/v1/repos/<o>/<r>/content/<b>/<url-encoded dir>`,
 * multipart/form-data with `commit_choice=direct`, `commit_summary`, `versioning`,
 * `last_commit`, `is_dvc_dir` and one `files` part per file (filename = path under the dir) →
 * 200 and one commit. Refused: no or wrong credentials (401), an unknown repo or branch (404), a
 * body that is not multipart, no files, a file name escaping the dir, a commit_choice other than
 * direct (400), a last_commit that is not the branch head (`staleStatus`, default 400).
 */
export async function startDagsHubFake(options: DagsHubFakeOptions): Promise<DagsHubFake> {
  const basic = `Basic ${Buffer.from(`${options.username}:${options.token}`).toString("base64")}`;
  const bearer = `Bearer ${options.token}`;
  const authorized = (header: string | undefined) => header === basic || header === bearer;
  const mount = createMount({
    target: options.mlflow,
    prefix: `/${options.owner}/${options.repo}.mlflow`,
    authorize: authorized,
  });
  const staleStatus = options.staleStatus ?? 400;
  const heads = new Map<string, { id: string; message: string }>();
  for (const branch of options.branches ?? ["main"])
    heads.set(branch, { id: sha1(`initial ${branch}`), message: "Initial commit" });
  const commits: DagsHubCommit[] = [];
  const apiRequests: DagsHubRequest[] = [];
  let faults = { status: 0, statusCode: 503, resetAfterCommit: 0 };
  let counter = 0;

  function commit(
    branch: string,
    message: string,
    entry: Omit<DagsHubCommit, "id" | "branch" | "message">,
  ) {
    const parent = heads.get(branch)!;
    const id = sha1(`${parent.id} ${message} ${++counter}`);
    heads.set(branch, { id, message });
    const made: DagsHubCommit = { id, branch, message, ...entry };
    commits.push(made);
    return made;
  }

  const repoBase = `/api/v1/repos/${options.owner}/${options.repo}`;

  function api(req: IncomingMessage, res: ServerResponse, entry: DagsHubRequest): void {
    const raw = req.url ?? "/";
    const pathname = raw.split("?")[0] ?? raw;
    const reply = (status: number, body: unknown) => {
      entry.status = status;
      sendJson(res, status, body);
    };
    if (!pathname.startsWith("/api/v1/repos/")) {
      req.resume();
      return reply(404, { message: "Not Found" });
    }
    if (!authorized(req.headers.authorization)) {
      req.resume();
      return reply(401, { message: "Unauthorized: a valid token is required" });
    }
    if (!pathname.startsWith(`${repoBase}/`)) {
      req.resume();
      return reply(404, { message: "repository does not exist" });
    }
    const rest = pathname.slice(repoBase.length);
    if (req.method === "GET" && rest.startsWith("/branches/")) {
      req.resume();
      const branch = decodeURIComponent(rest.slice("/branches/".length));
      const head = heads.get(branch);
      if (!head) return reply(404, { message: `branch ${branch} does not exist` });
      return reply(200, {
        name: branch,
        commit: { id: head.id, message: head.message, url: `${repoBase}/commits/${head.id}` },
      });
    }
    if (req.method === "PUT" && rest.startsWith("/content/")) {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MAX_UPLOAD_BYTES) chunks.push(chunk);
      });
      req.on("error", () => (entry.status = "reset"));
      req.on("end", () => {
        if (size > MAX_UPLOAD_BYTES) return reply(413, { message: "request entity too large" });
        upload(req, entry, rest.slice("/content/".length), Buffer.concat(chunks), reply);
      });
      return;
    }
    req.resume();
    reply(404, { message: "Not Found" });
  }

  function upload(
    req: IncomingMessage,
    entry: DagsHubRequest,
    target: string,
    body: Buffer,
    reply: (status: number, body: unknown) => void,
  ): void {
    // `<branch>/<dir>`: the branch is the longest existing prefix (branch names may hold `/`).
    const segments = target.split("/").map((s) => decodeURIComponent(s));
    let branch: string | undefined;
    let dirSegments: string[] = [];
    for (let i = segments.length; i >= 1; i--) {
      const candidate = segments.slice(0, i).join("/");
      if (heads.has(candidate)) {
        branch = candidate;
        dirSegments = segments.slice(i);
        break;
      }
    }
    if (!branch) return reply(404, { message: `branch ${segments[0]} does not exist` });
    const dir = dirSegments.join("/").replace(/^\/+|\/+$/g, "");
    if (dir.split("/").includes("..")) return reply(400, { message: "invalid directory" });
    let parts: MultipartPart[];
    try {
      parts = parseMultipart(body, req.headers["content-type"]);
    } catch (error) {
      return reply(400, { message: `malformed multipart body: ${(error as Error).message}` });
    }
    const fields: Record<string, string> = {};
    const files: DagsHubFile[] = [];
    for (const part of parts) {
      if (part.filename !== undefined) {
        if (part.name !== "files")
          return reply(400, { message: `unexpected file field ${part.name}` });
        const rel = part.filename.replace(/\\/g, "/").replace(/^\/+/, "");
        if (rel === "" || rel.split("/").some((s) => s === ".." || s === "."))
          return reply(400, { message: `invalid file name ${JSON.stringify(part.filename)}` });
        files.push({
          path: dir ? `${dir}/${rel}` : rel,
          size: part.data.length,
          sha256: createHash("sha256").update(part.data).digest("hex"),
          data: Buffer.from(part.data),
        });
      } else fields[part.name] = part.data.toString("utf8");
    }
    if (fields.commit_choice !== "direct")
      return reply(400, {
        message: `commit_choice must be "direct" (got ${fields.commit_choice})`,
      });
    if (files.length === 0) return reply(400, { message: "no files to upload" });
    const head = heads.get(branch)!;
    if (
      fields.last_commit !== undefined &&
      fields.last_commit !== "" &&
      fields.last_commit !== head.id
    )
      return reply(staleStatus, {
        message: `last_commit ${fields.last_commit} is not the head of ${branch} (${head.id}): the branch has changed`,
      });
    if (faults.status > 0) {
      faults.status--;
      return reply(faults.statusCode, { message: "injected server error" });
    }
    const made = commit(branch, fields.commit_summary ?? "Upload files using DagsHub client", {
      dir,
      fields,
      files,
    });
    if (faults.resetAfterCommit > 0) {
      faults.resetAfterCommit--;
      entry.status = "reset";
      req.socket.resetAndDestroy();
      return;
    }
    reply(200, { message: "ok", commit: made.id });
  }

  const http = await listen((req, res) => {
    if (mount.handle(req, res)) return;
    const entry: DagsHubRequest = {
      method: req.method ?? "GET",
      path: req.url ?? "/",
      authorization: req.headers.authorization,
      status: "pending",
    };
    apiRequests.push(entry);
    if (apiRequests.length > LOG_CAP) apiRequests.splice(0, apiRequests.length - LOG_CAP);
    api(req, res, entry);
  }, options.port);
  const url = `http://127.0.0.1:${http.port}`;
  return {
    url,
    mlflowUrl: `${url}/${options.owner}/${options.repo}.mlflow`,
    port: http.port,
    mlflowRequests: mount.requests,
    apiRequests,
    commits,
    head: (branch) => {
      const head = heads.get(branch);
      return head ? { ...head } : undefined;
    },
    tree(branch) {
      const files = new Map<string, Buffer>();
      for (const c of commits)
        if (c.branch === branch) for (const f of c.files) files.set(f.path, f.data);
      return files;
    },
    pushExternal(branch, message = "A commit from someone else") {
      if (!heads.has(branch))
        heads.set(branch, { id: sha1(`initial ${branch}`), message: "Initial commit" });
      return commit(branch, message, { dir: "", fields: {}, files: [], external: true }).id;
    },
    failUploads(plan) {
      faults = {
        status: plan.status?.count ?? 0,
        statusCode: plan.status?.status ?? 503,
        resetAfterCommit: plan.resetAfterCommit?.count ?? 0,
      };
    },
    rejectNextMlflow: (count = 1) => mount.rejectNext(count),
    async stop() {
      await http.close();
      mount.close();
    },
  };
}

function sha1(text: string): string {
  return createHash("sha1").update(text).digest("hex");
}

/**
 * A small MLflow REST client on axios (spec §1.4). Every failure becomes an
 * {@link MlflowRequestError} built here — never an axios error, which carries the request's
 * headers (the Authorization header) — with a message that has no credentials in it, and a
 * `kind` that says whether to retry, reject the data, or stop.
 */
import { createReadStream, statSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import axios, { type AxiosInstance, type AxiosResponse } from "axios";
import { DeliveryError, parseRetryAfter, redactText } from "@trainkit/core/plugin";
import { readTlsFiles, type AuthProvider, type TlsSettings } from "./config.js";

export type FailureKind = "retry" | "reject" | "halt";

/** Statuses MLflow's own client retries (with connection errors). */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504]);

/** A request to MLflow that failed: what failed, how, and what to do about it. */
export class MlflowRequestError extends Error {
  /** HTTP status, undefined when no response came (connection error, timeout, abort). */
  readonly status: number | undefined;
  /** MLflow's `error_code` (`RESOURCE_DOES_NOT_EXIST`, `INVALID_PARAMETER_VALUE`, ...). */
  readonly errorCode: string | undefined;
  /** The server's message (redacted), if it sent one. */
  readonly serverMessage: string | undefined;
  /** Retry-After, in ms. */
  readonly retryAfterMs: number | undefined;
  /** No response: the request may or may not have taken effect. */
  readonly ambiguous: boolean;
  /** The request was aborted by the caller's signal. */
  readonly aborted: boolean;
  readonly kind: FailureKind;

  constructor(
    message: string,
    fields: {
      status?: number;
      errorCode?: string;
      serverMessage?: string;
      retryAfterMs?: number;
      ambiguous?: boolean;
      aborted?: boolean;
      kind: FailureKind;
    },
  ) {
    super(message);
    this.name = "MlflowRequestError";
    this.status = fields.status;
    this.errorCode = fields.errorCode;
    this.serverMessage = fields.serverMessage;
    this.retryAfterMs = fields.retryAfterMs;
    this.ambiguous = fields.ambiguous ?? false;
    this.aborted = fields.aborted ?? false;
    this.kind = fields.kind;
  }
}

/**
 * What to do after a response with this status: retry (408, 429, 500, 502, 503, 504), halt
 * (401, 403, 404 — credentials, or the run/experiment/endpoint is gone —, redirects, other
 * 5xx), reject (any other 4xx: the data is invalid).
 */
export function classifyStatus(status: number): FailureKind {
  if (RETRYABLE_STATUSES.has(status)) return "retry";
  if (status === 401 || status === 403 || status === 404) return "halt";
  if (status >= 400 && status < 500) return "reject";
  return "halt";
}

/** Retry-After as ms (core's): delay-seconds or an HTTP date; undefined if absent or unreadable. */
export { parseRetryAfter };

/** Any error as the outbox's DeliveryError (an MlflowRequestError keeps its kind). */
export function toDeliveryError(error: unknown, prefix?: string): DeliveryError {
  if (error instanceof DeliveryError) return error;
  const at = prefix ? `${prefix}: ` : "";
  if (error instanceof MlflowRequestError) {
    const options: { kind: FailureKind; retryAfterMs?: number; status?: number } = {
      kind: error.kind,
    };
    if (error.retryAfterMs !== undefined) options.retryAfterMs = error.retryAfterMs;
    if (error.status !== undefined) options.status = error.status;
    return new DeliveryError(`${at}${error.message}`, options);
  }
  const message = error instanceof Error ? error.message : String(error);
  return new DeliveryError(`${at}${redactText(message)}`, { kind: "retry" });
}

export interface MlflowExperiment {
  experiment_id: string;
  name: string;
  artifact_location?: string;
  lifecycle_stage?: string;
}

export interface MlflowRunInfo {
  run_id: string;
  run_uuid?: string;
  run_name?: string;
  experiment_id: string;
  status?: string;
  start_time?: number;
  end_time?: number;
  artifact_uri?: string;
  lifecycle_stage?: string;
}

export interface MlflowKeyValue {
  key: string;
  value: string;
}

export interface MlflowRun {
  info: MlflowRunInfo;
  data?: {
    metrics?: { key: string; value: number | string; timestamp: number; step: number }[];
    params?: MlflowKeyValue[];
    tags?: MlflowKeyValue[];
  };
}

export interface LogBatchBody {
  run_id: string;
  metrics?: { key: string; value: number | string; timestamp: number; step: number }[];
  params?: MlflowKeyValue[];
  tags?: MlflowKeyValue[];
}

export interface CreateRunBody {
  experiment_id: string;
  run_name?: string;
  start_time: number;
  user_id?: string;
  tags: MlflowKeyValue[];
}

export interface UpdateRunBody {
  run_id: string;
  status?: "RUNNING" | "SCHEDULED" | "FINISHED" | "FAILED" | "KILLED";
  end_time?: number;
  run_name?: string;
}

export interface SearchRunsBody {
  experiment_ids: string[];
  filter?: string;
  max_results?: number;
  run_view_type?: "ACTIVE_ONLY" | "DELETED_ONLY" | "ALL";
  order_by?: string[];
  page_token?: string;
}

export interface MlflowClientOptions {
  /** The REST base: the tracking URI without credentials or trailing `/` (a path prefix is kept). */
  baseUrl: string;
  /** Where the Authorization header comes from (none: no header). */
  auth?: AuthProvider;
  /** Per-request timeout in ms (default 120 000, MLflow's). */
  timeoutMs?: number;
  /** TLS: skip verification, CA bundle, client certificate (read from the files named). */
  tls?: TlsSettings;
  /** Agents to use instead of the client's own keep-alive agents. */
  httpAgent?: http.Agent;
  httpsAgent?: https.Agent;
  /** Extra request headers (not secrets: use `auth` for credentials). */
  headers?: Record<string, string>;
  /** The tracking API's path under the base (default `/api/2.0/mlflow`). */
  apiPrefix?: string;
  /** The artifact proxy's path under the base (default `/api/2.0/mlflow-artifacts/artifacts`). */
  artifactsPrefix?: string;
}

interface RequestOptions {
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  signal?: AbortSignal;
  /** Send the Authorization header (default: when the URL is on the tracking host). */
  sendAuth?: boolean;
  headers?: Record<string, string>;
  /** A streamed body (artifact upload) and its length. */
  stream?: { path: string; size: number };
}

/**
 * The MLflow REST calls trainkit needs. Subclass to change how a call is made (DagsHub, Azure
 * ML); `request()` is the one place requests go out.
 */
export class MlflowClient {
  readonly baseUrl: string;
  readonly apiPrefix: string;
  readonly artifactsPrefix: string;
  protected readonly auth: AuthProvider | undefined;
  protected readonly http: AxiosInstance;
  protected readonly extraHeaders: Record<string, string>;

  constructor(options: MlflowClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.apiPrefix = options.apiPrefix ?? "/api/2.0/mlflow";
    this.artifactsPrefix = options.artifactsPrefix ?? "/api/2.0/mlflow-artifacts/artifacts";
    this.auth = options.auth;
    this.extraHeaders = { ...options.headers };
    const files = options.tls ? readTlsFiles(options.tls) : {};
    this.http = axios.create({
      timeout: options.timeoutMs ?? 120_000,
      maxRedirects: 0,
      maxBodyLength: Infinity,
      maxContentLength: Infinity,
      validateStatus: () => true,
      httpAgent: options.httpAgent ?? new http.Agent({ keepAlive: true }),
      httpsAgent:
        options.httpsAgent ??
        new https.Agent({
          keepAlive: true,
          rejectUnauthorized: !(options.tls?.insecure ?? false),
          ...files,
        }),
    });
  }

  /** `<base><apiPrefix><path>`. */
  apiUrl(path: string): string {
    return `${this.baseUrl}${this.apiPrefix}${path}`;
  }

  /** The URL as it may appear in a message: no credentials, no secret query values. */
  protected display(url: string): string {
    return redactText(url.split("?")[0] ?? url);
  }

  protected isTrackingHost(url: string): boolean {
    try {
      return new URL(url).origin === new URL(this.baseUrl).origin;
    } catch {
      return false;
    }
  }

  /** Sends one request; resolves with the parsed body of a 2xx, else throws MlflowRequestError. */
  async request<T>(method: string, url: string, options: RequestOptions = {}): Promise<T> {
    const sendAuth = options.sendAuth ?? this.isTrackingHost(url);
    let refreshed = false;
    for (;;) {
      const response = await this.send(method, url, options, sendAuth);
      if (response.status >= 200 && response.status < 300)
        return this.successBody(method, url, response) as T;
      if (response.status === 401 && sendAuth && !refreshed && this.auth?.refresh) {
        refreshed = true;
        const renewed = await Promise.resolve()
          .then(() => this.auth!.refresh!())
          .catch(() => false);
        if (renewed) continue;
      }
      throw this.responseError(method, url, response);
    }
  }

  protected async send(
    method: string,
    url: string,
    options: RequestOptions,
    sendAuth: boolean,
  ): Promise<AxiosResponse> {
    const headers: Record<string, string> = { ...this.extraHeaders, ...options.headers };
    if (sendAuth && this.auth) {
      const value = await this.auth.header();
      if (value) headers.Authorization = value;
    }
    let data: unknown;
    if (options.stream) {
      data = createReadStream(options.stream.path);
      headers["Content-Type"] ??= "application/octet-stream";
      headers["Content-Length"] = String(options.stream.size);
    } else if (options.body !== undefined) {
      data = JSON.stringify(options.body);
      headers["Content-Type"] = "application/json";
    }
    try {
      return await this.http.request({
        method,
        url,
        params: options.query,
        data,
        headers,
        signal: options.signal,
        // Bodies are parsed below, so a non-JSON error page never throws here.
        transformResponse: [(body: unknown) => body],
        responseType: "text",
      });
    } catch (error) {
      (data as { destroy?: () => void } | undefined)?.destroy?.();
      throw this.transportError(method, url, error, options.signal);
    }
  }

  /**
   * A 2xx body: JSON, `{}` when empty. Anything else (an HTML login page, a proxy's answer) is
   * not MLflow's: that halts (retrying would not change it), saying who answered what.
   */
  protected successBody(method: string, url: string, response: AxiosResponse): unknown {
    const body = parseBody(response.data);
    if (typeof body === "object" && body !== null) return body;
    const type = response.headers?.["content-type"];
    const what =
      typeof type === "string" && type.trim() !== ""
        ? type.split(";")[0]!.trim()
        : "no content type";
    throw new MlflowRequestError(
      `MLflow ${method} ${this.display(url)}: not an MLflow tracking server (${withoutCredentials(this.baseUrl)} answered ${what} with HTTP ${response.status}, not MLflow's JSON). Check MLFLOW_TRACKING_URI.`,
      { status: response.status, kind: "halt" },
    );
  }

  /** The error for a response that is not a 2xx. Never includes headers or credentials. */
  protected responseError(
    method: string,
    url: string,
    response: AxiosResponse,
  ): MlflowRequestError {
    const status = response.status;
    let errorCode: string | undefined;
    let serverMessage: string | undefined;
    const text = typeof response.data === "string" ? response.data : "";
    try {
      const body = JSON.parse(text) as { error_code?: unknown; message?: unknown };
      if (typeof body.error_code === "string") errorCode = body.error_code;
      if (typeof body.message === "string") serverMessage = body.message;
    } catch {
      if (text.trim()) serverMessage = text.trim().replace(/\s+/g, " ");
    }
    if (serverMessage !== undefined) serverMessage = redactText(serverMessage).slice(0, 1000);
    const retryAfterMs = parseRetryAfter(response.headers?.["retry-after"]);
    let kind = classifyStatus(status);
    let hint = "";
    if (status === 401 || status === 403)
      hint = " Check MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN.";
    if (status >= 300 && status < 400) {
      const location = response.headers?.location;
      hint = ` The server redirects${typeof location === "string" ? ` to ${redactText(location)}` : ""}: set MLFLOW_TRACKING_URI to the final URL.`;
      kind = "halt";
    }
    if (status === 404 && errorCode === undefined)
      hint = " Is MLFLOW_TRACKING_URI the URL of an MLflow tracking server?";
    const detail = [errorCode, serverMessage].filter(Boolean).join(": ");
    const message = `MLflow ${method} ${this.display(url)} failed with HTTP ${status}${detail ? ` (${detail})` : ""}.${hint}`;
    const fields: ConstructorParameters<typeof MlflowRequestError>[1] = { status, kind };
    if (errorCode !== undefined) fields.errorCode = errorCode;
    if (serverMessage !== undefined) fields.serverMessage = serverMessage;
    if (retryAfterMs !== undefined) fields.retryAfterMs = retryAfterMs;
    return new MlflowRequestError(message, fields);
  }

  /** The error for a request that got no response. Built from the error code only. */
  protected transportError(
    method: string,
    url: string,
    error: unknown,
    signal: AbortSignal | undefined,
  ): MlflowRequestError {
    const code =
      typeof (error as { code?: unknown })?.code === "string"
        ? (error as { code: string }).code
        : undefined;
    const where = `MLflow ${method} ${this.display(url)}`;
    if (signal?.aborted || code === "ERR_CANCELED")
      return new MlflowRequestError(`${where} was aborted.`, {
        kind: "retry",
        ambiguous: true,
        aborted: true,
      });
    const what =
      code === "ECONNABORTED" || code === "ETIMEDOUT"
        ? "timed out"
        : code === "ECONNREFUSED"
          ? "could not connect (connection refused)"
          : code === "ECONNRESET"
            ? "lost the connection (reset)"
            : code === "ENOTFOUND" || code === "EAI_AGAIN"
              ? "could not resolve the host"
              : code?.startsWith("ERR_TLS") ||
                  code?.includes("CERT") ||
                  code === "DEPTH_ZERO_SELF_SIGNED_CERT"
                ? `failed TLS verification (${code}; see MLFLOW_TRACKING_SERVER_CERT_PATH / MLFLOW_TRACKING_INSECURE_TLS)`
                : `failed without a response${code ? ` (${code})` : ""}`;
    return new MlflowRequestError(`${where} ${what}.`, { kind: "retry", ambiguous: true });
  }

  getExperimentByName(
    name: string,
    signal?: AbortSignal,
  ): Promise<{ experiment: MlflowExperiment }> {
    return this.request("GET", this.apiUrl("/experiments/get-by-name"), {
      query: { experiment_name: name },
      signal,
    });
  }

  createExperiment(name: string, signal?: AbortSignal): Promise<{ experiment_id: string }> {
    return this.request("POST", this.apiUrl("/experiments/create"), { body: { name }, signal });
  }

  createRun(body: CreateRunBody, signal?: AbortSignal): Promise<{ run: MlflowRun }> {
    return this.request("POST", this.apiUrl("/runs/create"), { body, signal });
  }

  getRun(runId: string, signal?: AbortSignal): Promise<{ run: MlflowRun }> {
    return this.request("GET", this.apiUrl("/runs/get"), { query: { run_id: runId }, signal });
  }

  updateRun(body: UpdateRunBody, signal?: AbortSignal): Promise<{ run_info?: MlflowRunInfo }> {
    return this.request("POST", this.apiUrl("/runs/update"), { body, signal });
  }

  logBatch(body: LogBatchBody, signal?: AbortSignal): Promise<unknown> {
    return this.request("POST", this.apiUrl("/runs/log-batch"), { body, signal });
  }

  searchRuns(
    body: SearchRunsBody,
    signal?: AbortSignal,
  ): Promise<{ runs?: MlflowRun[]; next_page_token?: string }> {
    return this.request("POST", this.apiUrl("/runs/search"), { body, signal });
  }

  /**
   * The URL that takes a PUT of the artifact `relPath` of a run whose artifact_uri is
   * `artifactUri`, or undefined when that URI is not served by the tracking server
   * (`file:`, `s3:`, `gs:`, `wasbs:`, `azureml:`, ...). `mlflow-artifacts:/<p>` is under this
   * base; `mlflow-artifacts://host:port/<p>` is on that host with the tracking scheme.
   */
  artifactUploadUrl(artifactUri: string, relPath: string): string | undefined {
    const match = /^mlflow-artifacts:(\/\/([^/]+))?(\/.*)?$/.exec(artifactUri);
    if (!match) return undefined;
    const host = match[2];
    const root = (match[3] ?? "/").replace(/^\/+|\/+$/g, "");
    const encode = (path: string) =>
      path
        .split("/")
        .filter((part) => part !== "")
        .map(encodeURIComponent)
        .join("/");
    const path = [encode(root), encode(relPath)].filter(Boolean).join("/");
    if (host) {
      const scheme = new URL(this.baseUrl).protocol;
      return `${scheme}//${host}${this.artifactsPrefix}/${path}`;
    }
    return `${this.baseUrl}${this.artifactsPrefix}/${path}`;
  }

  /**
   * Uploads a file with a streamed PUT (idempotent: an upload overwrites). Credentials go only
   * to the tracking host.
   */
  async uploadArtifact(url: string, filePath: string, signal?: AbortSignal): Promise<void> {
    const size = statSync(filePath).size;
    await this.request("PUT", url, { stream: { path: filePath, size }, signal });
  }
}

/** A URL without user and password (and without a query), for messages. */
function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = "";
    parsed.password = "";
    parsed.search = "";
    return parsed.toString().replace(/\/+$/, "");
  } catch {
    return redactText(url);
  }
}

/** A 2xx body: JSON, `{}` when empty, undefined when it is not JSON. */
function parseBody(data: unknown): unknown {
  if (typeof data !== "string") return data ?? {};
  if (data.trim() === "") return {};
  try {
    return JSON.parse(data) as unknown;
  } catch {
    return undefined;
  }
}

export function createMlflowClient(options: MlflowClientOptions): MlflowClient {
  return new MlflowClient(options);
}

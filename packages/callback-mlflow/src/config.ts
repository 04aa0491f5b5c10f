/**
 * Configuration of the MLflow integration: HF's env vars (spec §1.2), options in code (which win
 * over env), and the checks MLflow's own client makes, each failing with a message that names
 * the variable. Nothing here talks to the network.
 */
import { readFileSync } from "node:fs";
import { redactText } from "@trainkit/core/plugin";
import { pythonStr } from "./python-repr.js";

export type Env = Record<string, string | undefined>;

/** A configuration error: bad input, reported before training starts. */
export class MlflowConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MlflowConfigError";
  }
}

/** HF's truthy env test: upper-cased value in {1, ON, YES, TRUE}; undefined when unset/empty. */
export function envFlag(value: string | undefined): boolean | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  return ["1", "ON", "YES", "TRUE"].includes(value.trim().toUpperCase());
}

/** `DISABLE_MLFLOW_INTEGRATION`: true only for "TRUE" (any case), as HF. */
export function mlflowDisabled(env: Env): boolean {
  return (env.DISABLE_MLFLOW_INTEGRATION ?? "").trim().toUpperCase() === "TRUE";
}

/** Credentials written into a tracking URI (`https://user:password@host`). */
export interface UrlCredentials {
  username: string;
  password: string;
}

export type ParsedTrackingUri =
  { ok: true; baseUrl: string; credentials?: UrlCredentials } | { ok: false; reason: string };

const WHAT_TO_SET =
  "set MLFLOW_TRACKING_URI (or the trackingUri option) to the http(s):// URL of an MLflow tracking server, e.g. http://127.0.0.1:5000";

/**
 * A tracking URI as the REST base: http(s) only, credentials taken out of it, the trailing `/`
 * stripped, a path prefix kept (`https://dagshub.com/u/r.mlflow`). Unset, `file:`, `sqlite:` and
 * other stores are not supported (no local fallback): the reason says what to set.
 */
export function parseTrackingUri(uri: string | undefined): ParsedTrackingUri {
  const text = uri?.trim();
  if (!text) return { ok: false, reason: `no MLflow tracking URI is set: ${WHAT_TO_SET}` };
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(text)?.[1];
    return {
      ok: false,
      reason: scheme
        ? `the MLflow tracking URI has the scheme "${scheme}:", which trainkit does not support: ${WHAT_TO_SET}`
        : `the MLflow tracking URI ${JSON.stringify(redactText(text))} is a local path; trainkit has no local store: ${WHAT_TO_SET}`,
    };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return {
      ok: false,
      reason: `the MLflow tracking URI has the scheme "${url.protocol}", which trainkit does not support (no local file or database store): ${WHAT_TO_SET}`,
    };
  }
  if (url.search !== "" || url.hash !== "" || /[?#]/.test(url.href.slice(url.origin.length)))
    return {
      ok: false,
      reason: `the MLflow tracking URI must not have a query string or a fragment (${JSON.stringify(redactText(`${url.origin}${url.pathname}`))} followed by "?..." or "#..."): ${WHAT_TO_SET}`,
    };
  let credentials: UrlCredentials | undefined;
  if (url.username || url.password) {
    credentials = {
      username: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
    };
    url.username = "";
    url.password = "";
  }
  const baseUrl = url.toString().replace(/\/+$/, "");
  return credentials ? { ok: true, baseUrl, credentials } : { ok: true, baseUrl };
}

/**
 * Where the Authorization header comes from. `header()` is asked before every request;
 * `refresh()`, if present, is called once after a 401 and the request is repeated when it
 * returns true (e.g. a fresh Entra ID token for Azure ML).
 */
export interface AuthProvider {
  /** What kind of credentials these are, for messages (never the credentials). */
  readonly kind: string;
  header(): string | undefined | Promise<string | undefined>;
  refresh?(): boolean | Promise<boolean>;
}

export function basicAuth(username: string, password: string): AuthProvider {
  const value = `Basic ${Buffer.from(`${username}:${password}`, "utf8").toString("base64")}`;
  return { kind: "basic", header: () => value };
}

export function bearerAuth(token: string): AuthProvider {
  const value = `Bearer ${token}`;
  return { kind: "bearer", header: () => value };
}

/**
 * MLflow's choice of credentials: MLFLOW_TRACKING_USERNAME + MLFLOW_TRACKING_PASSWORD (Basic)
 * win; else credentials written into the tracking URI (Basic, as `requests` does); else
 * MLFLOW_TRACKING_TOKEN (Bearer); else none.
 */
export function authFromEnv(env: Env, urlCredentials?: UrlCredentials): AuthProvider | undefined {
  const username = env.MLFLOW_TRACKING_USERNAME;
  const password = env.MLFLOW_TRACKING_PASSWORD;
  if (username && password) return basicAuth(username, password);
  if (urlCredentials) return basicAuth(urlCredentials.username, urlCredentials.password);
  const token = env.MLFLOW_TRACKING_TOKEN;
  if (token) return bearerAuth(token);
  return undefined;
}

/** MLflow's HTTP knobs: MLFLOW_HTTP_REQUEST_MAX_RETRIES, _BACKOFF_FACTOR, _BACKOFF_JITTER, _TIMEOUT. */
export interface HttpKnobs {
  maxRetries?: number;
  /** Seconds. */
  backoffFactor?: number;
  /** Seconds. */
  backoffJitter?: number;
  /** Request timeout in ms (MLFLOW_HTTP_REQUEST_TIMEOUT seconds, default 120 s). */
  timeoutMs: number;
}

function numberEnv(
  env: Env,
  name: string,
  { integer, min, max }: { integer: boolean; min: number; max?: number },
): number | undefined {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === "") return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || (integer && !Number.isInteger(value)))
    throw new MlflowConfigError(
      `${name} must be ${integer ? "a whole number" : "a number"} (got ${JSON.stringify(raw)}).`,
    );
  if (value < min) throw new MlflowConfigError(`${name} must be at least ${min} (got ${raw}).`);
  if (max !== undefined && value > max)
    throw new MlflowConfigError(
      `${name} must be at most ${max}, as MLflow's client requires (got ${raw}).`,
    );
  return value;
}

export function httpKnobsFromEnv(env: Env): HttpKnobs {
  const maxRetries = numberEnv(env, "MLFLOW_HTTP_REQUEST_MAX_RETRIES", {
    integer: true,
    min: 0,
    max: 10,
  });
  const backoffFactor = numberEnv(env, "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", {
    integer: false,
    min: 0,
    max: 120,
  });
  const backoffJitter = numberEnv(env, "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", {
    integer: false,
    min: 0,
  });
  const timeout = numberEnv(env, "MLFLOW_HTTP_REQUEST_TIMEOUT", { integer: false, min: 0 });
  const knobs: HttpKnobs = { timeoutMs: (timeout ?? 120) * 1000 };
  if (maxRetries !== undefined) knobs.maxRetries = maxRetries;
  if (backoffFactor !== undefined) knobs.backoffFactor = backoffFactor;
  if (backoffJitter !== undefined) knobs.backoffJitter = backoffJitter;
  return knobs;
}

/**
 * The first backoff delay used for MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR=0 (MLflow: retry at once),
 * since the outbox needs a delay above 0.
 */
export const MIN_BACKOFF_MS = 100;

/** The outbox's retry options from MLflow's knobs (only those set). */
export function retryFromKnobs(knobs: HttpKnobs): {
  baseMs?: number;
  jitter?: number;
  reportAfter?: number;
} {
  const retry: { baseMs?: number; jitter?: number; reportAfter?: number } = {};
  if (knobs.maxRetries !== undefined) retry.reportAfter = Math.max(1, knobs.maxRetries);
  if (knobs.backoffFactor !== undefined)
    retry.baseMs = Math.max(MIN_BACKOFF_MS, knobs.backoffFactor * 1000);
  if (knobs.backoffJitter !== undefined) {
    // MLflow's jitter is absolute seconds; the outbox's is a fraction of the delay.
    const factor = knobs.backoffFactor ?? 2;
    retry.jitter = factor > 0 ? knobs.backoffJitter / factor : knobs.backoffJitter > 0 ? 1 : 0;
  }
  return retry;
}

/** TLS settings: MLFLOW_TRACKING_INSECURE_TLS, _SERVER_CERT_PATH, _CLIENT_CERT_PATH. */
export interface TlsSettings {
  insecure: boolean;
  caPath?: string;
  clientCertPath?: string;
}

export function tlsFromEnv(env: Env): TlsSettings {
  const raw = env.MLFLOW_TRACKING_INSECURE_TLS?.trim();
  let insecure = false;
  if (raw !== undefined && raw !== "") {
    const lower = raw.toLowerCase();
    if (lower === "true" || lower === "1") insecure = true;
    else if (lower === "false" || lower === "0") insecure = false;
    else
      throw new MlflowConfigError(
        `MLFLOW_TRACKING_INSECURE_TLS must be one of true, false, 1, 0 (got ${JSON.stringify(raw)}).`,
      );
  }
  const caPath = env.MLFLOW_TRACKING_SERVER_CERT_PATH?.trim() || undefined;
  const clientCertPath = env.MLFLOW_TRACKING_CLIENT_CERT_PATH?.trim() || undefined;
  if (insecure && caPath)
    throw new MlflowConfigError(
      "MLFLOW_TRACKING_INSECURE_TLS and MLFLOW_TRACKING_SERVER_CERT_PATH cannot both be set: skip verification or verify with the certificate, not both.",
    );
  const tls: TlsSettings = { insecure };
  if (caPath) tls.caPath = caPath;
  if (clientCertPath) tls.clientCertPath = clientCertPath;
  return tls;
}

/** Reads the PEM files of the TLS settings (errors name the variable). */
export function readTlsFiles(tls: TlsSettings): { ca?: Buffer; cert?: Buffer; key?: Buffer } {
  const out: { ca?: Buffer; cert?: Buffer; key?: Buffer } = {};
  const read = (path: string, name: string) => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new MlflowConfigError(
        `${name} is ${JSON.stringify(path)}, which cannot be read: ${(error as Error).message}`,
      );
    }
  };
  if (tls.caPath) out.ca = read(tls.caPath, "MLFLOW_TRACKING_SERVER_CERT_PATH");
  if (tls.clientCertPath) {
    // As `requests` takes it: one PEM file with the certificate and its key.
    const pem = read(tls.clientCertPath, "MLFLOW_TRACKING_CLIENT_CERT_PATH");
    out.cert = pem;
    out.key = pem;
  }
  return out;
}

/**
 * Where JSON.parse failed, from its message or (Node's "Unexpected token" messages have none) by
 * parsing growing prefixes: the first one that fails before its end.
 */
function jsonErrorPosition(text: string, message: string): number | undefined {
  const stated = /position (\d+)/.exec(message)?.[1];
  if (stated !== undefined) return Number(stated);
  if (text.length > 10_000) return undefined;
  for (let end = 1; end <= text.length; end++) {
    try {
      JSON.parse(text.slice(0, end));
    } catch (error) {
      const msg = (error as Error).message;
      const at = /position (\d+)/.exec(msg)?.[1];
      if (at !== undefined && Number(at) < end - 1) return Number(at);
      if (at === undefined && !/end of JSON input/i.test(msg)) return end - 1;
    }
  }
  return undefined;
}

/** MLFLOW_TAGS: a JSON object; each value as Python's str(). */
export function parseTagsJson(text: string, name = "MLFLOW_TAGS"): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    // Never the parser's message: it quotes the value, which may hold a secret.
    const position = jsonErrorPosition(text, (error as Error).message);
    throw new MlflowConfigError(
      `${name} must be a JSON object such as {"team": "nlp"}, but it is not valid JSON${position === undefined ? "" : ` (at position ${position})`}.`,
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw new MlflowConfigError(
      `${name} must be a JSON object such as {"team": "nlp"} (got ${Array.isArray(parsed) ? "an array" : typeof parsed}).`,
    );
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(parsed as Record<string, unknown>))
    out[key] = pythonStr(value);
  return out;
}

const RUN_ID = /^[a-zA-Z0-9][\w-]{0,255}$/;

export function checkRunId(runId: string, name: string): string {
  if (!RUN_ID.test(runId))
    throw new MlflowConfigError(
      `${name} is not a valid MLflow run id (letters, digits, _ and -, starting with a letter or digit; got ${JSON.stringify(redactText(runId))}).`,
    );
  return runId;
}

/** Options of the MLflow callback that are configuration (the env var each one beats). */
export interface MlflowConfigOptions {
  /** MLFLOW_TRACKING_URI. http(s) only. */
  trackingUri?: string;
  /** MLFLOW_EXPERIMENT_NAME: get-or-create by name. */
  experimentName?: string;
  /** MLFLOW_EXPERIMENT_ID: use this experiment (when no name is given). */
  experimentId?: string;
  /** MLFLOW_RUN_NAME, else args.runName. */
  runName?: string;
  /** MLFLOW_RUN_ID: log into this existing run (never ended by trainkit). */
  runId?: string;
  /** MLFLOW_TAGS: set as run tags after the params. */
  tags?: Record<string, unknown>;
  /** MLFLOW_NESTED_RUN: make the run a child of `parentRunId`. */
  nested?: boolean;
  /** The parent of a nested run (tag mlflow.parentRunId); implies nested. */
  parentRunId?: string;
  /** HF_MLFLOW_LOG_ARTIFACTS: upload each checkpoint on save. */
  logArtifacts?: boolean;
  /** Log the TrainingArguments and model config as params (default true). */
  logParams?: boolean;
  /** End a run trainkit created at the end of training (default true). */
  endRunAtTrainEnd?: boolean;
  /** MLFLOW_FLATTEN_PARAMS. */
  flattenParams?: boolean;
  /** MLFLOW_MAX_LOG_PARAMS. */
  maxLogParams?: number;
  /** TRAINKIT_OUTBOX_DEADLINE_MS: how long onTrainEnd waits for delivery (default 30 000). */
  drainDeadlineMs?: number;
  /** The Authorization header source; default from MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN. */
  auth?: AuthProvider;
  /** Request timeout, ms (MLFLOW_HTTP_REQUEST_TIMEOUT). */
  timeoutMs?: number;
}

/** Everything the callback needs, resolved from options then env. */
export interface ResolvedMlflowConfig {
  /** The REST base, credential-free. */
  trackingUri: string;
  auth: AuthProvider | undefined;
  experimentName: string | undefined;
  experimentId: string | undefined;
  runName: string | undefined;
  runId: string | undefined;
  tags: Record<string, string>;
  nested: boolean;
  parentRunId: string | undefined;
  logArtifacts: boolean;
  logParams: boolean;
  endRunAtTrainEnd: boolean;
  flattenParams: boolean;
  maxLogParams: number | undefined;
  drainDeadlineMs: number;
  http: HttpKnobs;
  tls: TlsSettings;
}

export const DEFAULT_DRAIN_DEADLINE_MS = 30_000;

/**
 * Resolves and checks the configuration; throws an MlflowConfigError naming the variable or
 * option at fault. `unavailable` errors (no/unsupported URI) throw too: call
 * {@link mlflowAvailability} first where that is not an error.
 */
export function resolveMlflowConfig(
  env: Env,
  options: MlflowConfigOptions = {},
): ResolvedMlflowConfig {
  const uriSource = options.trackingUri !== undefined ? "trackingUri" : "MLFLOW_TRACKING_URI";
  const parsed = parseTrackingUri(options.trackingUri ?? env.MLFLOW_TRACKING_URI);
  if (!parsed.ok) throw new MlflowConfigError(`MLflow: ${parsed.reason} (from ${uriSource}).`);

  const experimentName = (options.experimentName ?? env.MLFLOW_EXPERIMENT_NAME) || undefined;
  if (experimentName !== undefined && experimentName.length > 500)
    throw new MlflowConfigError(
      `The MLflow experiment name is longer than MLflow's 500 characters (${experimentName.length}).`,
    );
  const experimentId = (options.experimentId ?? env.MLFLOW_EXPERIMENT_ID?.trim()) || undefined;
  if (experimentId !== undefined && !/^[a-zA-Z0-9][\w-]{0,63}$/.test(experimentId))
    throw new MlflowConfigError(
      `MLFLOW_EXPERIMENT_ID is not a valid MLflow experiment id (got ${JSON.stringify(experimentId)}).`,
    );

  const runIdRaw = options.runId ?? (env.MLFLOW_RUN_ID?.trim() || undefined);
  const runId =
    runIdRaw === undefined
      ? undefined
      : checkRunId(runIdRaw, options.runId !== undefined ? "The runId option" : "MLFLOW_RUN_ID");

  let tags: Record<string, string> = {};
  if (options.tags !== undefined) {
    for (const [key, value] of Object.entries(options.tags)) tags[key] = pythonStr(value);
  } else if (env.MLFLOW_TAGS?.trim()) tags = parseTagsJson(env.MLFLOW_TAGS);

  const parentRunId =
    options.parentRunId === undefined
      ? undefined
      : checkRunId(options.parentRunId, "The parentRunId option");
  const nested = options.nested ?? (envFlag(env.MLFLOW_NESTED_RUN) || parentRunId !== undefined);

  let maxLogParams = options.maxLogParams;
  if (maxLogParams !== undefined && (!Number.isInteger(maxLogParams) || maxLogParams < 0))
    throw new MlflowConfigError(
      `maxLogParams must be a whole number of 0 or more (got ${String(maxLogParams)}).`,
    );
  const maxEnv = env.MLFLOW_MAX_LOG_PARAMS?.trim();
  // HF: used only if the string is all digits.
  if (maxLogParams === undefined && maxEnv && /^\d+$/.test(maxEnv)) maxLogParams = Number(maxEnv);

  let drainDeadlineMs = options.drainDeadlineMs;
  if (drainDeadlineMs === undefined) {
    const fromEnv = numberEnv(env, "TRAINKIT_OUTBOX_DEADLINE_MS", { integer: false, min: 0 });
    drainDeadlineMs = fromEnv ?? DEFAULT_DRAIN_DEADLINE_MS;
  } else if (!Number.isFinite(drainDeadlineMs) || drainDeadlineMs < 0)
    throw new MlflowConfigError(
      `drainDeadlineMs must be a number of 0 or more (got ${String(drainDeadlineMs)}).`,
    );

  const http = httpKnobsFromEnv(env);
  if (options.timeoutMs !== undefined) http.timeoutMs = options.timeoutMs;

  return {
    trackingUri: parsed.baseUrl,
    auth: options.auth ?? authFromEnv(env, parsed.credentials),
    experimentName,
    experimentId,
    runName: (options.runName ?? env.MLFLOW_RUN_NAME) || undefined,
    runId,
    tags,
    nested,
    parentRunId,
    logArtifacts: options.logArtifacts ?? envFlag(env.HF_MLFLOW_LOG_ARTIFACTS) ?? false,
    logParams: options.logParams ?? true,
    endRunAtTrainEnd: options.endRunAtTrainEnd ?? true,
    flattenParams: options.flattenParams ?? envFlag(env.MLFLOW_FLATTEN_PARAMS) ?? false,
    maxLogParams,
    drainDeadlineMs,
    http,
    tls: tlsFromEnv(env),
  };
}

/**
 * Whether the integration can run: not disabled, and an http(s) tracking URI is set (no
 * silent local fallback). The reason says what to set.
 */
export function mlflowAvailability(
  env: Env,
  trackingUri?: string,
): { available: true } | { available: false; reason: string } {
  if (mlflowDisabled(env))
    return {
      available: false,
      reason: "DISABLE_MLFLOW_INTEGRATION is TRUE; unset it to use MLflow",
    };
  const parsed = parseTrackingUri(trackingUri ?? env.MLFLOW_TRACKING_URI);
  return parsed.ok ? { available: true } : { available: false, reason: parsed.reason };
}

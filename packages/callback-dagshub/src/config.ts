/**
 * DagsHub configuration (spec §2.2): the repository's MLflow tracking URI, checked first and
 * parsed with URL rules; the repo upload's branch, host and credentials. Nothing here talks to
 * the network.
 */
import {
  MlflowConfigError,
  authFromEnv,
  basicAuth,
  bearerAuth,
  envFlag,
  mlflowDisabled,
  parseTrackingUri,
  type AuthProvider,
  type Env,
  type UrlCredentials,
} from "@trainkit/callback-mlflow";
import { redactText } from "@trainkit/core/plugin";

export const DEFAULT_DAGSHUB_HOST = "https://dagshub.com";
export const DEFAULT_BRANCH = "main";
/** The repository folder HF's DagsHubCallback uploads the output folder into. */
export const REPO_ARTIFACTS_DIR = "artifacts";
/** Files per commit of the repo upload (the DagsHub client's `add_dir` commits every 50 files). */
export const DEFAULT_MAX_FILES_PER_COMMIT = 50;
/** Bytes per commit of the repo upload (a single larger file goes alone). */
export const DEFAULT_MAX_BYTES_PER_COMMIT = 100 * 1024 * 1024;

/** What `dagshub.init()` sets in Python, for messages. */
export const DAGSHUB_INIT_HINT =
  "dagshub.init() sets these in Python; in trainkit set MLFLOW_TRACKING_URI=https://dagshub.com/<owner>/<repo>.mlflow, " +
  "MLFLOW_TRACKING_USERNAME=<your DagsHub user name> and MLFLOW_TRACKING_PASSWORD=<a DagsHub access token>";

export type ParsedDagsHubUri =
  | {
      ok: true;
      /** The MLflow REST base (`https://dagshub.com/<owner>/<repo>.mlflow`), credential-free. */
      baseUrl: string;
      owner: string;
      repo: string;
      credentials?: UrlCredentials;
    }
  | { ok: false; reason: string };

/**
 * A DagsHub repository's MLflow tracking URI, `https://<host>/<owner>/<repo>.mlflow`: checked
 * before anything is taken from it (HF splits it first), parsed with URL rules (HF splits on the
 * OS path separator), a trailing `/` ignored (HF then gets an empty repo name). owner = the
 * second-to-last path segment, repo = the last one without `.mlflow` (HF cuts at the first `.`,
 * so `my.repo.mlflow` would be `my`).
 */
export function parseDagsHubTrackingUri(uri: string | undefined): ParsedDagsHubUri {
  const text = uri?.trim();
  if (!text) return { ok: false, reason: `MLFLOW_TRACKING_URI is not set: ${DAGSHUB_INIT_HINT}` };
  const parsed = parseTrackingUri(text);
  if (!parsed.ok)
    return {
      ok: false,
      reason: `MLFLOW_TRACKING_URI is not a DagsHub repository's MLflow URI (${parsed.reason}): ${DAGSHUB_INIT_HINT}`,
    };
  const url = new URL(parsed.baseUrl);
  const segments = url.pathname.split("/").filter((s) => s !== "");
  const last = segments.at(-1);
  const owner = segments.at(-2);
  if (segments.length < 2 || !last?.endsWith(".mlflow") || last.length === ".mlflow".length)
    return {
      ok: false,
      reason: `MLFLOW_TRACKING_URI ${JSON.stringify(redactText(parsed.baseUrl))} does not look like a DagsHub repository's MLflow URI, https://<host>/<owner>/<repo>.mlflow: ${DAGSHUB_INIT_HINT}`,
    };
  if (url.search)
    return {
      ok: false,
      reason: `MLFLOW_TRACKING_URI must not have a query string (https://<host>/<owner>/<repo>.mlflow)`,
    };
  const decode = (segment: string) => {
    try {
      return decodeURIComponent(segment);
    } catch {
      return segment;
    }
  };
  const result: ParsedDagsHubUri = {
    ok: true,
    baseUrl: parsed.baseUrl,
    owner: decode(owner!),
    repo: decode(last.slice(0, -".mlflow".length)),
  };
  if (parsed.credentials) result.credentials = parsed.credentials;
  return result;
}

/** MLflow credentials as MLflow chooses them (MLFLOW_TRACKING_USERNAME/PASSWORD, URI, TOKEN). */
export function trackingAuth(env: Env, credentials?: UrlCredentials): AuthProvider | undefined {
  return authFromEnv(env, credentials);
}

/**
 * The repo upload's credentials, as the DagsHub client chooses them: DAGSHUB_USERNAME +
 * DAGSHUB_PASSWORD (Basic), else DAGSHUB_USER_TOKEN (Bearer); else `fallback`.
 */
export function repoAuthFromEnv(env: Env, fallback?: AuthProvider): AuthProvider | undefined {
  const username = env.DAGSHUB_USERNAME;
  const password = env.DAGSHUB_PASSWORD;
  if (username && password) return basicAuth(username, password);
  const token = env.DAGSHUB_USER_TOKEN;
  if (token) return bearerAuth(token);
  return fallback;
}

/** DAGSHUB_CLIENT_HOST as an API base: http(s), no credentials, no trailing `/`. */
export function parseDagsHubHost(host: string | undefined, name = "DAGSHUB_CLIENT_HOST"): string {
  const text = host?.trim() || DEFAULT_DAGSHUB_HOST;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new MlflowConfigError(
      `${name} must be the URL of the DagsHub host, e.g. ${DEFAULT_DAGSHUB_HOST} (got ${JSON.stringify(redactText(text))}).`,
    );
  }
  if (url.protocol !== "https:" && url.protocol !== "http:")
    throw new MlflowConfigError(
      `${name} must be an http(s):// URL, e.g. ${DEFAULT_DAGSHUB_HOST} (got the scheme "${url.protocol}").`,
    );
  if (url.username || url.password)
    throw new MlflowConfigError(
      `${name} must not hold credentials; set DAGSHUB_USER_TOKEN (or DAGSHUB_USERNAME and DAGSHUB_PASSWORD) instead.`,
    );
  url.hash = "";
  url.search = "";
  return url.toString().replace(/\/+$/, "");
}

/** A branch name git would take (and that fits in a URL path). */
export function checkBranch(branch: string, name = "BRANCH"): string {
  const bad =
    branch === "" ||
    /[\s~^:?*[\\]/.test(branch) ||
    [...branch].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f) ||
    branch.startsWith("/") ||
    branch.endsWith("/") ||
    branch.endsWith(".") ||
    branch.endsWith(".lock") ||
    branch.includes("..") ||
    branch.includes("//") ||
    branch.includes("@{") ||
    branch === "@";
  if (bad)
    throw new MlflowConfigError(
      `${name} is not a valid git branch name (got ${JSON.stringify(branch)}).`,
    );
  return branch;
}

/** Options of the DagsHub callback beyond MLflow's (the env var each one beats). */
export interface DagsHubConfigOptions {
  /** HF_DAGSHUB_LOG_ARTIFACTS: at train end, upload the output folder to the repo. */
  logRepoArtifacts?: boolean;
  /** BRANCH: the branch of that upload (default "main"). */
  branch?: string;
  /** DAGSHUB_CLIENT_HOST: the DagsHub host of the upload API (default https://dagshub.com). */
  host?: string;
  /**
   * The upload's Authorization; default from DAGSHUB_USERNAME/PASSWORD or DAGSHUB_USER_TOKEN, else
   * the MLflow credentials when the host is the tracking URI's.
   */
  repoAuth?: AuthProvider;
  /** Files per commit (default 50). */
  maxFilesPerCommit?: number;
  /** Bytes per commit (default 100 MiB; a single larger file goes alone). */
  maxBytesPerCommit?: number;
}

export interface ResolvedDagsHubConfig {
  owner: string;
  repo: string;
  host: string;
  branch: string;
  logRepoArtifacts: boolean;
  /** DagsHub's own credentials (options or DAGSHUB_* env); the MLflow ones are the fallback. */
  repoAuth: AuthProvider | undefined;
  maxFilesPerCommit: number;
  maxBytesPerCommit: number;
}

function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1)
    throw new MlflowConfigError(
      `${name} must be a whole number of 1 or more (got ${String(value)}).`,
    );
  return value;
}

/**
 * The DagsHub side of the configuration, from the parsed tracking URI, options and env. Throws an
 * MlflowConfigError naming the variable at fault.
 */
export function resolveDagsHubConfig(
  env: Env,
  options: DagsHubConfigOptions,
  uri: Extract<ParsedDagsHubUri, { ok: true }>,
): ResolvedDagsHubConfig {
  const branch = checkBranch(
    (options.branch ?? env.BRANCH?.trim()) || DEFAULT_BRANCH,
    options.branch !== undefined ? "The branch option" : "BRANCH",
  );
  return {
    owner: uri.owner,
    repo: uri.repo,
    host: parseDagsHubHost(
      options.host ?? env.DAGSHUB_CLIENT_HOST,
      options.host !== undefined ? "The host option" : "DAGSHUB_CLIENT_HOST",
    ),
    branch,
    logRepoArtifacts: options.logRepoArtifacts ?? envFlag(env.HF_DAGSHUB_LOG_ARTIFACTS) ?? false,
    repoAuth: options.repoAuth ?? repoAuthFromEnv(env),
    maxFilesPerCommit: positiveInteger(
      options.maxFilesPerCommit,
      DEFAULT_MAX_FILES_PER_COMMIT,
      "maxFilesPerCommit",
    ),
    maxBytesPerCommit: positiveInteger(
      options.maxBytesPerCommit,
      DEFAULT_MAX_BYTES_PER_COMMIT,
      "maxBytesPerCommit",
    ),
  };
}

/**
 * Whether the DagsHub integration can run: not disabled (DISABLE_MLFLOW_INTEGRATION=TRUE
 * disables it, as in HF), a DagsHub repository's MLflow URI, and credentials for it. The reason
 * says what to set.
 */
export function dagshubAvailability(
  env: Env,
  options: { trackingUri?: string; auth?: AuthProvider } = {},
): { available: true } | { available: false; reason: string } {
  if (mlflowDisabled(env))
    return {
      available: false,
      reason:
        "DISABLE_MLFLOW_INTEGRATION is TRUE, which disables DagsHub too (it is built on MLflow); unset it to use DagsHub",
    };
  const parsed = parseDagsHubTrackingUri(options.trackingUri ?? env.MLFLOW_TRACKING_URI);
  if (!parsed.ok) return { available: false, reason: parsed.reason };
  if (!options.auth && !trackingAuth(env, parsed.credentials))
    return {
      available: false,
      reason: `no DagsHub credentials: set MLFLOW_TRACKING_USERNAME=<your DagsHub user name> and MLFLOW_TRACKING_PASSWORD=<a DagsHub access token> (what dagshub.init() sets in Python)`,
    };
  return { available: true };
}

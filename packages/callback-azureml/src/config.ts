/**
 * Azure ML configuration (spec §3.3, §3.5): the workspace's MLflow tracking URI
 * (`azureml://<region>.api.azureml.ms/mlflow/v1.0/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.MachineLearningServices/workspaces/<ws>`)
 * turned into its https:// REST base, and the bearer token. Nothing here talks to the network.
 */
import { type AuthProvider, type Env } from "@trainkit/callback-mlflow";
import { redactText } from "@trainkit/core/plugin";

const WORKSPACE_PATH =
  /^(.*)\/mlflow\/v1\.0\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.MachineLearningServices\/workspaces\/([^/]+)$/i;

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

export const URI_HINT =
  "set MLFLOW_TRACKING_URI to the workspace's MLflow tracking URI (`az ml workspace show --query mlflow_tracking_uri`), " +
  "azureml://<region>.api.azureml.ms/mlflow/v1.0/subscriptions/<subscription>/resourceGroups/<resource group>/providers/Microsoft.MachineLearningServices/workspaces/<workspace>";

export const TOKEN_HINT =
  "set MLFLOW_TRACKING_TOKEN to a Microsoft Entra ID access token (Azure ML jobs set it; outside Azure e.g. " +
  "`az account get-access-token --resource https://management.azure.com --query accessToken -o tsv`), " +
  "or give the callback a `token` or `getToken` option";

export type ParsedAzureMlUri =
  | {
      ok: true;
      /** The MLflow REST base: https://<host>/mlflow/v1.0/.../workspaces/<ws> (no trailing `/`). */
      baseUrl: string;
      subscription: string;
      resourceGroup: string;
      workspace: string;
      /** Whether the URI was an azureml:// one (converted). */
      converted: boolean;
    }
  | { ok: false; reason: string };

export interface ParseAzureMlOptions {
  /**
   * Test only: `azureml://` becomes `http://` instead of `https://`, for a local server. Allowed
   * for loopback hosts only (TRAINKIT_AZUREML_INSECURE_HTTP=1).
   */
  insecureHttp?: boolean;
}

/**
 * The workspace tracking URI as a REST base: `azureml://` → `https://` with host and path kept
 * (what azureml-mlflow does); an `https://` URI with the workspace route is taken as it is
 * (private link workspaces have another host); `http://` only for a loopback host (tests,
 * local gateways).
 */
export function parseAzureMlTrackingUri(
  uri: string | undefined,
  options: ParseAzureMlOptions = {},
): ParsedAzureMlUri {
  const text = uri?.trim();
  if (!text) return { ok: false, reason: `MLFLOW_TRACKING_URI is not set: ${URI_HINT}` };
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return {
      ok: false,
      reason: `MLFLOW_TRACKING_URI ${JSON.stringify(redactText(text))} is not a URL: ${URI_HINT}`,
    };
  }
  const scheme = url.protocol.toLowerCase();
  const loopback = LOOPBACK.has(url.hostname.toLowerCase());
  let converted = false;
  if (scheme === "azureml:") {
    if (options.insecureHttp && !loopback)
      return {
        ok: false,
        reason: `TRAINKIT_AZUREML_INSECURE_HTTP is for tests against a local server (127.0.0.1/localhost), not for ${url.hostname}`,
      };
    converted = true;
    // Special schemes' rules do not apply to azureml:, so host and path are taken from the text.
    const rest = text.slice(text.indexOf(":") + 1).replace(/^\/\//, "");
    try {
      url = new URL(`${options.insecureHttp ? "http" : "https"}://${rest}`);
    } catch {
      return {
        ok: false,
        reason: `MLFLOW_TRACKING_URI is not a valid azureml:// URI: ${URI_HINT}`,
      };
    }
  } else if (scheme === "http:" && !loopback) {
    return {
      ok: false,
      reason: `MLFLOW_TRACKING_URI is an http:// URI for ${url.hostname}: the workspace is reached over https:// only (the bearer token must not travel in clear); ${URI_HINT}`,
    };
  } else if (scheme !== "https:" && scheme !== "http:") {
    return {
      ok: false,
      reason: `MLFLOW_TRACKING_URI has the scheme "${url.protocol}", not azureml:// or https://: ${URI_HINT}`,
    };
  }
  if (url.username || url.password)
    return { ok: false, reason: "MLFLOW_TRACKING_URI must not hold credentials; use a token" };
  if (url.search || url.hash)
    return {
      ok: false,
      reason: `MLFLOW_TRACKING_URI must not have a query string or fragment: ${URI_HINT}`,
    };
  const path = url.pathname.replace(/\/+$/, "");
  const match = WORKSPACE_PATH.exec(path);
  if (!match)
    return {
      ok: false,
      reason: `MLFLOW_TRACKING_URI ${JSON.stringify(redactText(`${url.origin}${path}`))} is not an Azure ML workspace's MLflow URI (no /mlflow/v1.0/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.MachineLearningServices/workspaces/<ws> path): ${URI_HINT}`,
    };
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  return {
    ok: true,
    baseUrl: `${url.origin}${path}`,
    subscription: decode(match[2]!),
    resourceGroup: decode(match[3]!),
    workspace: decode(match[4]!),
    converted,
  };
}

/** HF's truthy env values, for the test-only switch. */
export function insecureHttpFromEnv(env: Env): boolean {
  const value = env.TRAINKIT_AZUREML_INSECURE_HTTP?.trim().toUpperCase();
  return value !== undefined && ["1", "ON", "YES", "TRUE"].includes(value);
}

/** Where the bearer token comes from. */
export interface TokenOptions {
  /** A token (instead of MLFLOW_TRACKING_TOKEN). */
  token?: string;
  /**
   * Returns a (fresh) access token: called for the first request when no token is given, and
   * once after a 401 (an expired token), before the request is repeated. E.g. with
   * `@azure/identity`: `() => credential.getToken("https://management.azure.com/.default").then((t) => t.token)`.
   */
  getToken?: () => string | Promise<string>;
  /** An AuthProvider of your own (wins over the two above). */
  auth?: AuthProvider;
}

/**
 * The Authorization of the workspace: `auth`; else `Bearer <token>` from `token`, MLFLOW_TRACKING_TOKEN
 * or `getToken()`, refreshed with `getToken()` after a 401. Undefined when there is no source.
 */
export function azureMlAuth(env: Env, options: TokenOptions = {}): AuthProvider | undefined {
  if (options.auth) return options.auth;
  let current = options.token || env.MLFLOW_TRACKING_TOKEN?.trim() || undefined;
  const getToken = options.getToken;
  if (current === undefined && !getToken) return undefined;
  const fetchToken = async (): Promise<string> => {
    const token = await getToken!();
    if (typeof token !== "string" || token.trim() === "")
      throw new Error("Azure ML: getToken() returned no token.");
    return token.trim();
  };
  const provider: AuthProvider = {
    kind: "bearer",
    async header() {
      if (current === undefined) current = await fetchToken();
      return `Bearer ${current}`;
    },
  };
  if (getToken)
    (provider as { refresh?: () => Promise<boolean> }).refresh = async () => {
      current = await fetchToken();
      return true;
    };
  return provider;
}

/**
 * Whether the Azure ML integration can run: a workspace tracking URI (azureml://, or https:// with
 * the workspace route) and a token source. DISABLE_MLFLOW_INTEGRATION does not apply (it is
 * MLflow's switch). The reason says what to set.
 */
export function azureMlAvailability(
  env: Env,
  options: TokenOptions & { trackingUri?: string; insecureHttp?: boolean } = {},
): { available: true } | { available: false; reason: string } {
  const parsed = parseAzureMlTrackingUri(options.trackingUri ?? env.MLFLOW_TRACKING_URI, {
    insecureHttp: options.insecureHttp ?? insecureHttpFromEnv(env),
  });
  if (!parsed.ok) return { available: false, reason: parsed.reason };
  if (!azureMlAuth(env, options))
    return { available: false, reason: `no Azure ML token: ${TOKEN_HINT}` };
  return { available: true };
}

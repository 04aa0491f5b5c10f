// @trainkit/callback-mlflow: HF's MLflowCallback (report_to "mlflow") over MLflow's REST API,
// delivered through the trainkit outbox.
import { definePlugin, redactText, type OutboxTransport } from "@trainkit/core/plugin";
import { MlflowCallback, setDefaultMlflowLogger, type MlflowCallbackOptions } from "./callback.js";
import { createMlflowClient, type MlflowClient, type MlflowClientOptions } from "./client.js";
import {
  MlflowConfigError,
  authFromEnv,
  httpKnobsFromEnv,
  mlflowAvailability,
  parseTrackingUri,
  retryFromKnobs,
  tlsFromEnv,
  type Env,
  type ParsedTrackingUri,
} from "./config.js";
import { MlflowTransport, createMlflowTransport, type MlflowStreamMeta } from "./transport.js";

export {
  MlflowCallback,
  setDefaultMlflowLogger,
  type MlflowCallbackOptions,
  type MlflowRunState,
  type StateRecord,
} from "./callback.js";
export {
  MlflowClient,
  MlflowRequestError,
  RETRYABLE_STATUSES,
  classifyStatus,
  createMlflowClient,
  parseRetryAfter,
  toDeliveryError,
  type CreateRunBody,
  type FailureKind,
  type LogBatchBody,
  type MlflowClientOptions,
  type MlflowExperiment,
  type MlflowKeyValue,
  type MlflowRun,
  type MlflowRunInfo,
  type SearchRunsBody,
  type UpdateRunBody,
} from "./client.js";
export {
  DEFAULT_DRAIN_DEADLINE_MS,
  MlflowConfigError,
  authFromEnv,
  basicAuth,
  bearerAuth,
  checkRunId,
  envFlag,
  httpKnobsFromEnv,
  mlflowAvailability,
  mlflowDisabled,
  parseTagsJson,
  parseTrackingUri,
  resolveMlflowConfig,
  retryFromKnobs,
  MIN_BACKOFF_MS,
  tlsFromEnv,
  type AuthProvider,
  type Env,
  type HttpKnobs,
  type MlflowConfigOptions,
  type ParsedTrackingUri,
  type ResolvedMlflowConfig,
  type TlsSettings,
  type UrlCredentials,
} from "./config.js";
export { MAX_KEY_LENGTH, invalidKeyReason, posixNormpath, sanitizeMetricKey } from "./keys.js";
export {
  MAX_PARAM_VALUE_LENGTH,
  MAX_TAG_VALUE_LENGTH,
  TRUNCATED_PARAMS_TAG,
  argsDict,
  buildParams,
  flattenParams,
  keyListValue,
  maskSecrets,
  modelConfigDict,
  type BuiltParams,
  type BuildParamsOptions,
} from "./params.js";
export { PyFloat, parsePythonNumbers, pythonFloat, pythonRepr, pythonStr } from "./python-repr.js";
export {
  encodeMetricValue,
  endRecord,
  metricRecord,
  paramRecord,
  tagRecord,
  type ArtifactRecord,
  type EndRecord,
  type EndStatus,
  type MetricRecord,
  type MetricValue,
  type MlflowRecord,
  type ParamRecord,
  type StatusRecord,
  type TagRecord,
} from "./records.js";
export {
  BATCH_LIMITS,
  MlflowTransport,
  STREAM_TAG,
  createMlflowTransport,
  itemBytes,
  mlflowBatchSize,
  openRunError,
  removeSpoolCopy,
  type BatchLimits,
  type MlflowStreamMeta,
  type MlflowTransportOptions,
  type OpenRun,
  type RunCreateSpec,
} from "./transport.js";

/** `new MlflowCallback(options)`. */
export function createMlflowCallback(options: MlflowCallbackOptions = {}): MlflowCallback {
  return new MlflowCallback(options);
}

/** How an integration built on MLflow (DagsHub, Azure ML) adapts {@link transportFromMeta}. */
export interface TransportFromMetaOptions {
  /** Reads MLFLOW_TRACKING_URI, for its base URL and credentials (default: parseTrackingUri). */
  parseTrackingUri?: (uri: string | undefined) => ParsedTrackingUri;
  /** What MLFLOW_TRACKING_URI should be, in the error when there is no URI (default "the server"). */
  trackingUriName?: string;
  /** Builds the transport on the client and the options it was made with (default: MLflow's). */
  createTransport?: (client: MlflowClient, clientOptions: MlflowClientOptions) => OutboxTransport;
}

/** The scheme, host and port of a URL (no credentials), or undefined when it is not one. */
function originOf(url: string): string | undefined {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

/**
 * The transport `trainkit sync` uses for a spool: the tracking URI from meta.json (secret-free),
 * else from MLFLOW_TRACKING_URI; TLS/timeout/retry settings from `env` (MLFLOW_HTTP_REQUEST_*);
 * `extra` over those. Credentials from `env` (MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN, or those
 * in MLFLOW_TRACKING_URI) are sent only when MLFLOW_TRACKING_URI names the spool's server (same
 * origin): unset, none are sent; another server, it throws (a spool never sends the credentials
 * of one server to another). `extra.auth`, given in code, is the caller's choice.
 */
export function transportFromMeta(
  meta: Record<string, unknown>,
  env: Env,
  extra: Partial<MlflowClientOptions> = {},
  {
    parseTrackingUri: parseUri = parseTrackingUri,
    trackingUriName = "the server",
    createTransport = (client) => createMlflowTransport({ client }),
  }: TransportFromMetaOptions = {},
): OutboxTransport {
  const stored = (meta as MlflowStreamMeta).trackingUri;
  const envUri = env.MLFLOW_TRACKING_URI?.trim() || undefined;
  const fromEnv = parseUri(envUri);
  const baseUrl = stored ?? (fromEnv.ok ? fromEnv.baseUrl : undefined);
  if (!baseUrl)
    throw new MlflowConfigError(
      `The spool's meta.json has no tracking URI: set MLFLOW_TRACKING_URI to ${trackingUriName} the run logged to.`,
    );
  let useEnvCredentials = false;
  if (envUri !== undefined) {
    const envOrigin = fromEnv.ok ? originOf(fromEnv.baseUrl) : undefined;
    const spoolOrigin = originOf(baseUrl) ?? redactText(baseUrl);
    if (envOrigin !== spoolOrigin)
      throw new MlflowConfigError(
        `The spool was written for ${spoolOrigin}, MLFLOW_TRACKING_URI points at ${envOrigin ?? "another server"}${fromEnv.ok ? "" : ` (${fromEnv.reason})`}: set it to the spool's server to deliver (its credentials are not sent to another server).`,
      );
    useEnvCredentials = true;
  }
  const knobs = httpKnobsFromEnv(env);
  const options: MlflowClientOptions = {
    baseUrl,
    timeoutMs: knobs.timeoutMs,
    tls: tlsFromEnv(env),
    ...extra,
  };
  if (!options.auth && useEnvCredentials) {
    const auth = authFromEnv(env, fromEnv.ok ? fromEnv.credentials : undefined);
    if (auth) options.auth = auth;
  }
  const transport = createTransport(createMlflowClient(options), options);
  // `trainkit sync` honours MLFLOW_HTTP_REQUEST_* (the outbox's defaults when it is given none).
  if (transport instanceof MlflowTransport && transport.retry === undefined)
    transport.retry = retryFromKnobs(knobs);
  return transport;
}

/** The plugin `reportTo: ["mlflow"]` (and "all", when a tracking URI is set) selects. */
export default definePlugin({
  name: "mlflow",
  // Available when an http(s) tracking URI is set and DISABLE_MLFLOW_INTEGRATION is not TRUE.
  isAvailable: ({ env }) => mlflowAvailability(env),
  // The configuration is checked here, before training (bad MLFLOW_TAGS, TLS or retry settings).
  create: ({ env, logger }) => {
    setDefaultMlflowLogger(logger);
    const callback = new MlflowCallback({ env, logger });
    callback.checkConfig();
    return callback;
  },
  // `trainkit sync`: the delivery side rebuilt from a spool's meta.json and the secrets in env.
  transport: (meta, { env }) => transportFromMeta(meta, env),
});

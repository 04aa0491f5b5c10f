// @trainkit/callback-azureml: HF's AzureMLCallback (report_to "azure_ml") over the workspace's
// MLflow tracking route (azureml:// → https://, bearer token), built on @trainkit/callback-mlflow
// and delivered through the trainkit outbox.
import {
  MlflowConfigError,
  createMlflowTransport,
  setDefaultMlflowLogger,
  transportFromMeta,
  type Env,
  type MlflowClientOptions,
} from "@trainkit/callback-mlflow";
import { definePlugin, type OutboxTransport, type TrainkitPlugin } from "@trainkit/core/plugin";
import { AzureMLCallback, type AzureMLCallbackOptions } from "./callback.js";
import {
  TOKEN_HINT,
  azureMlAuth,
  azureMlAvailability,
  insecureHttpFromEnv,
  parseAzureMlTrackingUri,
  type TokenOptions,
} from "./config.js";

export { AzureMLCallback, type AzureMLCallbackOptions } from "./callback.js";
export {
  TOKEN_HINT,
  URI_HINT,
  azureMlAuth,
  azureMlAvailability,
  insecureHttpFromEnv,
  parseAzureMlTrackingUri,
  type ParseAzureMlOptions,
  type ParsedAzureMlUri,
  type TokenOptions,
} from "./config.js";

/** `new AzureMLCallback(options)`. */
export function createAzureMLCallback(options: AzureMLCallbackOptions = {}): AzureMLCallback {
  return new AzureMLCallback(options);
}

/**
 * The transport `trainkit sync` uses for an Azure ML spool: the workspace's REST base from
 * meta.json (secret-free), the token from `options` (token/getToken/auth) or MLFLOW_TRACKING_TOKEN.
 */
export function azureMlTransportFromMeta(
  meta: Record<string, unknown>,
  env: Env,
  options: TokenOptions & { insecureHttp?: boolean } = {},
  extra: Partial<MlflowClientOptions> = {},
): OutboxTransport {
  // A token from env goes only to the server MLFLOW_TRACKING_URI names (checked to be the
  // spool's by transportFromMeta); one given in code is the caller's choice.
  const fromCode = extra.auth ?? options.auth ?? options.token ?? options.getToken;
  if (fromCode === undefined && !env.MLFLOW_TRACKING_URI?.trim())
    throw new MlflowConfigError(
      `Azure ML: MLFLOW_TRACKING_TOKEN is sent only to the workspace MLFLOW_TRACKING_URI names: set it to the workspace's MLflow tracking URI (the spool's server) to deliver.`,
    );
  const auth = extra.auth ?? azureMlAuth(env, options);
  if (!auth) throw new MlflowConfigError(`Azure ML: no token to deliver with: ${TOKEN_HINT}.`);
  const insecureHttp = options.insecureHttp ?? insecureHttpFromEnv(env);
  return transportFromMeta(
    meta,
    env,
    { ...extra, auth },
    {
      // azureml:// URIs; MLFLOW_TRACKING_USERNAME/PASSWORD are not used (the token is given).
      parseTrackingUri: (uri) => parseAzureMlTrackingUri(uri, { insecureHttp }),
      trackingUriName: "the workspace's MLflow tracking URI",
      // Params are in a spool only when logParams was on; artifacts never are.
      createTransport: (client) => createMlflowTransport({ client, artifacts: false }),
    },
  );
}

/** Options of the plugin: where the token comes from, and the callback's options. */
export type AzureMlPluginOptions = Omit<AzureMLCallbackOptions, "env" | "logger">;

/**
 * The azure_ml plugin with options, e.g. a token source:
 * `plugins: [azureMlPlugin({ getToken })]` (the default export is `azureMlPlugin()`).
 */
export function azureMlPlugin(options: AzureMlPluginOptions = {}): TrainkitPlugin {
  return definePlugin({
    name: "azure_ml",
    // Available when MLFLOW_TRACKING_URI is a workspace URI and a token source exists. Under
    // reportTo "all" it is skipped when mlflow is active too (HF's rule, applied by core).
    isAvailable: ({ env }) => azureMlAvailability(env, options),
    // The configuration is checked here (HF's on_init_end), before training.
    create: ({ env, logger }) => {
      setDefaultMlflowLogger(logger);
      const callback = new AzureMLCallback({ ...options, env, logger });
      callback.checkConfig();
      return callback;
    },
    // `trainkit sync`: the delivery side rebuilt from a spool's meta.json and the token.
    transport: (meta, { env }) => azureMlTransportFromMeta(meta, env, options),
  });
}

/** The plugin `reportTo: ["azure_ml"]` (and "all", when no mlflow plugin is active) selects. */
export default azureMlPlugin();

// @trainkit/callback-dagshub: HF's DagsHubCallback (report_to "dagshub") — MLflow tracking on a
// DagsHub repository, and the optional upload of the output folder to it — built on
// @trainkit/callback-mlflow and delivered through the trainkit outbox.
import {
  httpKnobsFromEnv,
  setDefaultMlflowLogger,
  transportFromMeta,
  type Env,
  type MlflowClientOptions,
} from "@trainkit/callback-mlflow";
import { definePlugin, type OutboxTransport } from "@trainkit/core/plugin";
import { DagsHubCallback, type DagsHubCallbackOptions } from "./callback.js";
import {
  dagshubAvailability,
  parseDagsHubHost,
  parseDagsHubTrackingUri,
  repoAuthFromEnv,
} from "./config.js";
import { createDagsHubTransport, type DagsHubTransportOptions } from "./transport.js";

export { DagsHubCallback, planCommits, type DagsHubCallbackOptions } from "./callback.js";
export {
  DAGSHUB_INIT_HINT,
  DEFAULT_BRANCH,
  DEFAULT_DAGSHUB_HOST,
  DEFAULT_MAX_BYTES_PER_COMMIT,
  DEFAULT_MAX_FILES_PER_COMMIT,
  REPO_ARTIFACTS_DIR,
  checkBranch,
  dagshubAvailability,
  parseDagsHubHost,
  parseDagsHubTrackingUri,
  repoAuthFromEnv,
  resolveDagsHubConfig,
  trackingAuth,
  type DagsHubConfigOptions,
  type ParsedDagsHubUri,
  type ResolvedDagsHubConfig,
} from "./config.js";
export {
  DagsHubRepoClient,
  RepoRequestError,
  type BranchHead,
  type DagsHubRepoClientOptions,
  type UploadFile,
  type UploadRequest,
} from "./repo-client.js";
export {
  DagsHubTransport,
  createDagsHubTransport,
  type DagsHubRecord,
  type DagsHubTransportOptions,
  type RepoUploadRecord,
} from "./transport.js";

/** `new DagsHubCallback(options)`. */
export function createDagsHubCallback(options: DagsHubCallbackOptions = {}): DagsHubCallback {
  return new DagsHubCallback(options);
}

/**
 * The transport `trainkit sync` uses for a DagsHub spool: the tracking URI from meta.json
 * (secret-free); the MLflow credentials from env (MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN, or
 * credentials in MLFLOW_TRACKING_URI when it names the same repository); the upload's from
 * DAGSHUB_USERNAME/DAGSHUB_PASSWORD, DAGSHUB_USER_TOKEN (only to DAGSHUB_CLIENT_HOST, default
 * https://dagshub.com: an upload for another host is refused), else the MLflow ones when the
 * upload's host is the tracking server's origin. The upload records carry their host, repository and
 * branch.
 */
export function dagshubTransportFromMeta(
  meta: Record<string, unknown>,
  env: Env,
  extra: Partial<MlflowClientOptions> = {},
): OutboxTransport {
  return transportFromMeta(meta, env, extra, {
    parseTrackingUri: parseDagsHubTrackingUri,
    trackingUriName: "the DagsHub repository's MLflow URI",
    createTransport: (client, { auth }) => {
      const options: DagsHubTransportOptions = {
        client,
        timeoutMs: httpKnobsFromEnv(env).timeoutMs,
        // The DagsHub credentials go only to this host (an upload record names its own).
        repoHost: parseDagsHubHost(env.DAGSHUB_CLIENT_HOST),
      };
      const repoAuth = repoAuthFromEnv(env);
      if (repoAuth) options.repoAuth = repoAuth;
      if (auth) options.trackingAuth = auth;
      return createDagsHubTransport(options);
    },
  });
}

/** The plugin `reportTo: ["dagshub"]` (and "all", when a DagsHub tracking URI is set) selects. */
export default definePlugin({
  name: "dagshub",
  // Available when MLFLOW_TRACKING_URI is a DagsHub repository's MLflow URI with credentials,
  // and DISABLE_MLFLOW_INTEGRATION is not TRUE.
  isAvailable: ({ env }) => dagshubAvailability(env),
  // The configuration is checked here, before training.
  create: ({ env, logger }) => {
    setDefaultMlflowLogger(logger);
    const callback = new DagsHubCallback({ env, logger });
    callback.checkConfig();
    return callback;
  },
  // `trainkit sync`: the delivery side rebuilt from a spool's meta.json and the secrets in env.
  transport: (meta, { env }) => dagshubTransportFromMeta(meta, env),
});

import {
  MlflowCallback,
  MlflowConfigError,
  envFlag,
  resolveMlflowConfig,
  type AuthProvider,
  type MetricRecord,
  type MlflowCallbackOptions,
  type ResolvedMlflowConfig,
  type StateRecord,
} from "@trainkit/callback-mlflow";
import type { TrainerState } from "@trainkit/core/plugin";
import {
  TOKEN_HINT,
  azureMlAuth,
  insecureHttpFromEnv,
  parseAzureMlTrackingUri,
  type TokenOptions,
} from "./config.js";

export interface AzureMLCallbackOptions extends MlflowCallbackOptions, TokenOptions {
  /**
   * Test only (TRAINKIT_AZUREML_INSECURE_HTTP): an azureml:// URI on a loopback host becomes
   * http:// instead of https://.
   */
  insecureHttp?: boolean;
}

/**
 * HF's AzureMLCallback (`report_to="azure_ml"`) on Microsoft's current route: MLflow against the
 * workspace (`azureml://...` → `https://...`, `Authorization: Bearer <token>`), built on the
 * MLflow callback. HF's behaviour where it matters: numeric logs only (booleans as 1/0), raw keys
 * (sanitised as MLflow requires), no params (option `logParams`), no artifacts. Deviations: each
 * metric has `step = global_step` (SDK v1 had none), and a run trainkit created is ended at train
 * end; a run given by MLFLOW_RUN_ID (inside an Azure ML job) is attached to and never ended.
 */
export class AzureMLCallback extends MlflowCallback {
  /** One provider for the callback's life, so a refreshed token is kept. */
  private auth: AuthProvider | undefined;

  // Declared for its parameter type: the Azure ML options.
  constructor(options: AzureMLCallbackOptions = {}) {
    super(options);
  }

  /**
   * Never: DISABLE_MLFLOW_INTEGRATION is MLflow's switch. HF's AzureMLCallback does not read it,
   * and inside Azure ML jobs it is a way to keep HF's MLflow callback from logging twice.
   */
  protected static override disabledReason(): string | undefined {
    return undefined;
  }

  protected get azureOptions(): AzureMLCallbackOptions {
    return this.options as AzureMLCallbackOptions;
  }

  protected override get integrationName(): string {
    return "azure_ml";
  }

  protected override resolveConfig(): ResolvedMlflowConfig {
    const options = this.azureOptions;
    const source = options.trackingUri !== undefined ? "trackingUri" : "MLFLOW_TRACKING_URI";
    const parsed = parseAzureMlTrackingUri(options.trackingUri ?? this.env.MLFLOW_TRACKING_URI, {
      insecureHttp: options.insecureHttp ?? insecureHttpFromEnv(this.env),
    });
    if (!parsed.ok) throw new MlflowConfigError(`Azure ML: ${parsed.reason} (from ${source}).`);
    this.auth ??= azureMlAuth(this.env, options);
    if (!this.auth) throw new MlflowConfigError(`Azure ML: no token: ${TOKEN_HINT}.`);
    if (options.logArtifacts || envFlag(this.env.HF_MLFLOW_LOG_ARTIFACTS))
      this.warnOnce(
        "artifacts",
        "Azure ML: checkpoints are not uploaded (HF_MLFLOW_LOG_ARTIFACTS / logArtifacts is ignored): Azure ML stores artifacts in datastores, not through the MLflow tracking route.",
      );
    return resolveMlflowConfig(this.env, {
      ...options,
      trackingUri: parsed.baseUrl,
      auth: this.auth,
      // HF's AzureMLCallback logs no params and no artifacts.
      logParams: options.logParams ?? false,
      logArtifacts: false,
    });
  }

  /** HF's filter: Python int/float values only (booleans included, as 1/0); others dropped silently. */
  protected override metricRecords(
    logs: Record<string, unknown>,
    state: TrainerState,
  ): MetricRecord[] {
    const numeric = Object.fromEntries(
      Object.entries(logs).filter(([, v]) => typeof v === "number" || typeof v === "boolean"),
    );
    return super.metricRecords(numeric, state);
  }

  /** MLflow's state, with the workspace URI as its https base (no token, ever). */
  override state(): StateRecord {
    const base = super.state();
    const uri = this.azureOptions.trackingUri;
    if (uri === undefined) return base;
    const parsed = parseAzureMlTrackingUri(uri, { insecureHttp: this.azureOptions.insecureHttp });
    const args = { ...base.args };
    if (parsed.ok) args.tracking_uri = parsed.baseUrl;
    if (this.azureOptions.insecureHttp !== undefined)
      args.insecure_http = this.azureOptions.insecureHttp;
    return { args, attributes: base.attributes };
  }

  protected static override optionsFromState(record: StateRecord): AzureMLCallbackOptions {
    const options: AzureMLCallbackOptions = super.optionsFromState(record);
    const insecure = record.args?.insecure_http;
    if (typeof insecure === "boolean") options.insecureHttp = insecure;
    return options;
  }
}

/**
 * trainkit's own integrations: report_to name → package. Their order is the fixed order in
 * which `reportTo: "all"` uses them (HF's INTEGRATION_TO_CALLBACK order); third-party plugins
 * follow, by name.
 */
export const FIRST_PARTY: Readonly<Record<string, string>> = {
  azure_ml: "@trainkit/callback-azureml",
  clearml: "@trainkit/callback-clearml",
  codecarbon: "@trainkit/callback-codecarbon",
  comet_ml: "@trainkit/callback-comet",
  dagshub: "@trainkit/callback-dagshub",
  dvclive: "@trainkit/callback-dvclive",
  flyte: "@trainkit/callback-flyte",
  mlflow: "@trainkit/callback-mlflow",
  neptune: "@trainkit/callback-neptune",
  tensorboard: "@trainkit/callback-tensorboard",
  wandb: "@trainkit/callback-wandb",
};

export const FIRST_PARTY_ORDER = Object.keys(FIRST_PARTY);

/**
 * trainkit's own integrations: report_to name → package. `reportTo: "all"` uses them in this
 * fixed order (alphabetical by report_to name); third-party plugins follow, by name.
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

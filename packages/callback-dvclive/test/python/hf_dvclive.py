"""HF's DVCLiveCallback, emulated over dvclive's own Live (transformers is not installed):
reads a list of operations (JSON, stdin) and runs them in the working directory.

  {"op": "live", "kwargs": {...}}   Live(**kwargs) (HF creates Live() with no arguments)
  {"op": "params", "json": "..."}   live.log_params(dict)  (HF: args.to_dict(), at setup)
  {"op": "log", "json": "..."}      HF's on_log: each loggable value under its standardized
                                    name, then live.next_step()
  {"op": "artifact", "path": ..., "kwargs": {...}}   live.log_artifact(path, **kwargs)
  {"op": "end"}                     live.end()
  {"op": "env", "set": {...}}       os.environ updated (dvclive reads DVCLIVE_RESUME in Live())
  {"op": "chdir", "path": ...}      a new working directory (several runs in one process)

The JSON texts are parsed with Python's json, so `1.0` is a float and `1` an int, as in HF.
"""
import json
import os
import sys

from dvclive import Live
from dvclive.plots import Metric
from dvclive.utils import standardize_metric_name

live = None
for operation in json.load(sys.stdin):
    op = operation["op"]
    if op == "live":
        live = Live(**operation.get("kwargs", {}))
    elif op == "params":
        live.log_params(json.loads(operation["json"]))
    elif op == "log":
        for key, value in json.loads(operation["json"]).items():
            if Metric.could_log(value):
                live.log_metric(standardize_metric_name(key, "dvclive.huggingface"), value)
        live.next_step()
    elif op == "artifact":
        live.log_artifact(operation["path"], **operation.get("kwargs", {}))
    elif op == "end":
        live.end()
    elif op == "env":
        os.environ.update(operation["set"])
    elif op == "chdir":
        os.chdir(operation["path"])
    else:
        raise ValueError(f"unknown operation {op}")

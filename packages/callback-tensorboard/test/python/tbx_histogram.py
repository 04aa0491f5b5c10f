"""Prints tensorboardX's histogram (SummaryWriter.add_histogram's default "tensorflow" bins) of
the JSON list of numbers on stdin, as JSON: what torch/tensorboardX would write."""

import json
import sys

import numpy as np
from google.protobuf import json_format
from tensorboardX.summary import histogram

values = np.array(json.load(sys.stdin), dtype=float)
# SummaryWriter.__init__'s default_bins (tensorboardX/writer.py), without creating a writer.
v = 1e-12
buckets = []
while v < 1e20:
    buckets.append(v)
    v *= 1.1
default_bins = [-b for b in buckets[::-1]] + [0] + buckets
summary = histogram("h", values, default_bins)
print(json.dumps(json_format.MessageToDict(summary.value[0].histo, preserving_proto_field_name=True)))

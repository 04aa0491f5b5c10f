"""Reads TensorBoard event files with TensorBoard's own code and prints what it sees as JSON.

Usage: read_events.py <logdir> [--allow-truncated]

For every file whose name contains "tfevents" under <logdir> (recursively):
  * the record reader TensorBoard uses without TensorFlow (the stub PyRecordReader behind
    event_file_loader.RawEventFileLoader), which verifies the masked CRC-32C of every length
    header and payload. RawEventFileLoader itself swallows DataLossError (CRC failures
    included), so the records are read here directly and a CRC failure is reported loudly;
  * each record parsed as tensorboard.Event (event_pb2).
For every run (each directory holding event files):
  * plugin_event_accumulator.EventAccumulator (TensorBoard's Python ingestion, with
    data_compat: simple_value scalars become tensors of the scalars plugin), every tensor of
    every tag, with the plugin name and content of its metadata.
"""

import base64
import json
import math
import os
import sys

from google.protobuf import json_format
from tensorboard.backend.event_processing import plugin_event_accumulator as pea
from tensorboard.compat import tf
from tensorboard.compat.proto import event_pb2
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.util import tensor_util


def read_records(path):
    """(records, end) where end is "eof", "truncated: ..." or raises on a CRC failure."""
    reader = tf.pywrap_tensorflow.PyRecordReader_New(
        tf.compat.as_bytes(path), 0, tf.compat.as_bytes(""), None
    )
    records = []
    while True:
        try:
            reader.GetNext()
        except tf.errors.OutOfRangeError:
            return records, "eof"
        except tf.errors.DataLossError as e:
            message = str(e)
            if "crc32" in message:
                raise RuntimeError("CRC failure: " + message)
            return records, "truncated: " + message
        records.append(reader.record())


def hparams_json(content):
    data = plugin_data_pb2.HParamsPluginData.FromString(content)
    return json_format.MessageToDict(data, preserving_proto_field_name=True)


def value_json(value):
    kind = value.WhichOneof("value")
    out = {"tag": value.tag, "kind": kind}
    if value.HasField("metadata"):
        out["plugin"] = value.metadata.plugin_data.plugin_name
        out["content"] = base64.b64encode(value.metadata.plugin_data.content).decode()
        if out["plugin"] == "hparams":
            out["hparams_data"] = hparams_json(value.metadata.plugin_data.content)
    if kind == "simple_value":
        out["value"] = value.simple_value
    elif kind == "tensor":
        t = value.tensor
        out["dtype"] = t.dtype
        out["shape"] = [d.size for d in t.tensor_shape.dim]
        out["strings"] = [s.decode("utf-8") for s in t.string_val]
    elif kind == "histo":
        h = value.histo
        out["histo"] = {
            "min": h.min,
            "max": h.max,
            "num": h.num,
            "sum": h.sum,
            "sum_squares": h.sum_squares,
            "bucket_limit": list(h.bucket_limit),
            "bucket": list(h.bucket),
        }
    return out


def read_file(path):
    records, end = read_records(path)
    events = []
    for raw in records:
        event = event_pb2.Event.FromString(raw)
        item = {"wall_time": event.wall_time, "step": event.step}
        if event.HasField("file_version"):
            item["file_version"] = event.file_version
        if event.HasField("summary"):
            item["values"] = [value_json(v) for v in event.summary.value]
        events.append(item)
    return {"path": path, "records": len(records), "end": end, "events": events}


def tensor_json(tensor_proto):
    array = tensor_util.make_ndarray(tensor_proto)
    if array.dtype.kind in ("S", "O"):
        return [x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in array.flatten()]
    return array.tolist()


def read_run(directory):
    acc = pea.EventAccumulator(directory, size_guidance={pea.TENSORS: 0})
    acc.Reload()
    tags = {}
    for tag in acc.Tags()[pea.TENSORS]:
        meta = acc.SummaryMetadata(tag)
        tags[tag] = {
            "plugin": meta.plugin_data.plugin_name,
            "content": base64.b64encode(meta.plugin_data.content).decode(),
            "hparams_data": hparams_json(meta.plugin_data.content)
            if meta.plugin_data.plugin_name == "hparams"
            else None,
            "points": [
                [e.step, tensor_json(e.tensor_proto), e.wall_time] for e in acc.Tensors(tag)
            ],
        }
    return tags


def finite_json(value):
    """NaN and infinities as the strings "NaN", "Infinity", "-Infinity" (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite_json(v) for v in value]
    return value


def main():
    logdir = sys.argv[1]
    files = []
    runs = {}
    for root, _dirs, names in sorted(os.walk(logdir)):
        event_files = sorted(n for n in names if "tfevents" in n)
        for name in event_files:
            files.append(read_file(os.path.join(root, name)))
        if event_files:
            runs[os.path.relpath(root, logdir)] = read_run(root)
    json.dump(finite_json({"files": files, "runs": runs}), sys.stdout, allow_nan=False)


if __name__ == "__main__":
    main()

"""Dumps each document of a JSON list (stdin) as dvclive does (dvclive.serialize.get_yaml):
prints the list of YAML texts as JSON. Python's json reads `1.0` as a float and `1` as an int."""
import io
import json
import sys

from dvclive.serialize import get_yaml

documents = json.load(sys.stdin)
out = []
for document in documents:
    stream = io.StringIO()
    get_yaml().dump(document, stream)
    out.append(stream.getvalue())
json.dump(out, sys.stdout)

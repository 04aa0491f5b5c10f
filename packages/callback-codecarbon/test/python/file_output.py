"""codecarbon's own FileOutput writes rows (EmissionsData fields) into output_dir/file_name.

argv: output_dir file_name on_csv_write. stdin: {"rows": [...], "old_file": text or null}; when
"old_file" is given, that text is written to the file before each row (to see backups made).
"""
import json
import os
import sys

from codecarbon.output_methods.emissions_data import EmissionsData
from codecarbon.output_methods.file import FileOutput

output_dir, file_name, mode = sys.argv[1:4]
request = json.load(sys.stdin)
output = FileOutput(file_name, output_dir, mode)
for row in request["rows"]:
    if request.get("old_file") is not None:
        with open(os.path.join(output_dir, file_name), "w") as f:
            f.write(request["old_file"])
    output.out(EmissionsData(**row), None)

"""Reads emissions CSVs with pandas: prints each file's columns, dtypes and rows as JSON."""
import json
import sys

import pandas as pd

out = []
for path in sys.argv[1:]:
    frame = pd.read_csv(path)
    out.append(
        {
            "columns": list(frame.columns),
            "dtypes": {c: str(t) for c, t in frame.dtypes.items()},
            "rows": [
                {k: None if pd.isna(v) else getattr(v, "item", lambda v=v: v)() for k, v in row.items()}
                for row in frame.to_dict("records")
            ],
        }
    )
json.dump(out, sys.stdout)

#!/usr/bin/env python3
"""Times Evidently 0.7 (legacy DataDriftPreset) on two CSV files, reading included, the
same work `driftd analyze --compat evidently` does. Prints the dataset verdict and the
per-column scores so the numbers can be compared.

usage: evidently_bench.py REFERENCE CURRENT
"""
import json
import sys
import time
import warnings

warnings.filterwarnings("ignore")
start = time.perf_counter()
import pandas as pd  # noqa: E402
from evidently.legacy.metric_preset import DataDriftPreset  # noqa: E402
from evidently.legacy.pipeline.column_mapping import ColumnMapping  # noqa: E402
from evidently.legacy.report import Report  # noqa: E402

imported = time.perf_counter()
ref, cur = pd.read_csv(sys.argv[1]), pd.read_csv(sys.argv[2])
read = time.perf_counter()
report = Report(metrics=[DataDriftPreset()])
report.run(reference_data=ref, current_data=cur,
           column_mapping=ColumnMapping(target=None, prediction=None, datetime=None, id=None))
d = report.as_dict()
done = time.perf_counter()
table = d["metrics"][1]["result"]["drift_by_columns"]
print(json.dumps({
    "dataset_drift": d["metrics"][0]["result"]["dataset_drift"],
    "scores": {k: v["drift_score"] for k, v in table.items()},
    "seconds": {"import": imported - start, "read": read - imported, "drift": done - read, "total_after_import": done - imported},
}))

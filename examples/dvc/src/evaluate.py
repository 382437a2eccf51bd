"""Scores the model on the prepared data and writes metrics.json (the validate step's gate)."""

import json
import pickle
import sys

import pandas as pd
import yaml
from sklearn.metrics import accuracy_score, roc_auc_score

params = yaml.safe_load(open("params.yaml"))
src, model_path, out = sys.argv[1], sys.argv[2], sys.argv[3]
df = pd.read_csv(src)
target = params["prepare"]["target"]
model = pickle.loads(open(model_path, "rb").read())
x, y = df.drop(columns=[target]), df[target]
metrics = {
    "accuracy": accuracy_score(y, model.predict(x)),
    "roc_auc": roc_auc_score(y, model.predict_proba(x)[:, 1]),
    "rows": len(df),
}
json.dump(metrics, open(out, "w"), indent=2)

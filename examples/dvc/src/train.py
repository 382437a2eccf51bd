"""Fits a logistic regression on the prepared data."""

import pickle
import sys
from pathlib import Path

import pandas as pd
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

params = yaml.safe_load(open("params.yaml"))
src, out = sys.argv[1], Path(sys.argv[2])
df = pd.read_csv(src)
target = params["prepare"]["target"]
model = make_pipeline(StandardScaler(), LogisticRegression(C=params["train"]["C"], max_iter=1000))
model.fit(df.drop(columns=[target]), df[target])
out.parent.mkdir(parents=True, exist_ok=True)
out.write_bytes(pickle.dumps(model))

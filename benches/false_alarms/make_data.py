#!/usr/bin/env python3
"""Writes the false-alarm benchmark's populations to benches/data/false_alarms/: three public
tabular datasets, each with the columns the benchmark monitors and a manifest naming the
categorical ones and the features it shifts for the power runs. Nothing is downloaded: the
data ships inside the packages pinned in requirements.txt (or in this repository).

Provenance:
- california: datasets/california_housing_reference.csv, the reference period of the
  California housing data (Pace and Barry 1997, the 1990 US census; as in scikit-learn's
  fetch_california_housing), 5,832 rows, 8 numerical features.
- breast_cancer: scikit-learn's load_breast_cancer (the Wisconsin Diagnostic Breast Cancer
  data, Street, Wolberg and Mangasarian 1993; UCI), 569 rows, 30 numerical features.
- anes96: statsmodels' datasets.anes96 (the American National Election Studies 1996 pilot
  survey), 944 rows; 8 categorical features stored as integer codes (income has 24
  categories) and 2 numerical ones.

Usage: python make_data.py  (from any directory)
"""
import json
import os

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer
from statsmodels.datasets import anes96

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "benches", "data", "false_alarms")


def california():
    df = pd.read_csv(os.path.join(ROOT, "datasets", "california_housing_reference.csv"))
    cols = ["MedInc", "HouseAge", "AveRooms", "AveBedrms", "Population", "AveOccup", "Latitude", "Longitude"]
    return df[cols], {"categorical": [], "shift_numerical": "MedInc", "shift_categorical": None}


def breast_cancer():
    df = load_breast_cancer(as_frame=True).frame.drop(columns=["target"])
    df.columns = [c.replace(" ", "_") for c in df.columns]
    return df, {"categorical": [], "shift_numerical": "mean_radius", "shift_categorical": None}


def anes():
    df = anes96.load_pandas().data
    categorical = ["TVnews", "selfLR", "ClinLR", "DoleLR", "PID", "educ", "income", "vote"]
    out = df[["age", "popul"] + categorical].copy()
    for c in categorical:
        out[c] = out[c].astype(np.int64)  # category codes as integers, as a CSV holds them
    return out, {"categorical": categorical, "shift_numerical": "age", "shift_categorical": "income"}


def main():
    os.makedirs(OUT, exist_ok=True)
    manifest = {}
    for name, build in [("california", california), ("breast_cancer", breast_cancer), ("anes96", anes)]:
        df, meta = build()
        df = df.dropna()
        path = os.path.join(OUT, f"{name}.csv")
        df.to_csv(path, index=False)
        manifest[name] = {"file": f"{name}.csv", "rows": len(df), **meta}
        print(f"{path}: {len(df)} rows x {df.shape[1]} columns")
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)


if __name__ == "__main__":
    main()

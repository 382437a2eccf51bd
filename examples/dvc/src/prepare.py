"""Keeps the configured features and target, drops incomplete rows."""

import sys

import pandas as pd
import yaml

params = yaml.safe_load(open("params.yaml"))["prepare"]
src, dst = sys.argv[1], sys.argv[2]
df = pd.read_csv(src)
df = df[params["features"] + [params["target"]]].dropna()
df.to_csv(dst, index=False)
print(f"{len(df)} rows prepared")

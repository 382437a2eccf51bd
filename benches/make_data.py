#!/usr/bin/env python3
"""Writes benches/data/{ref,cur}_1m.csv: 1,000,000 rows x 10 columns (8 floats, an integer,
a category), the current one drifted in a few columns. numpy and pandas only."""
import os
import sys

import numpy as np
import pandas as pd

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def frame(rng, shift):
    cols = {}
    for i in range(8):
        cols[f"f{i}"] = np.round(rng.normal(shift if i < 3 else 0.0, 1.0 + i / 4, ROWS), 6)
    cols["count"] = rng.integers(0, 100, ROWS)
    cols["segment"] = rng.choice(["a", "b", "c", "d", "e"], ROWS,
                                 p=[0.3, 0.25, 0.2, 0.15, 0.1] if shift == 0 else [0.2] * 5)
    return pd.DataFrame(cols)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(7)
    for name, shift in [("ref_1m.csv", 0.0), ("cur_1m.csv", 0.2)]:
        path = os.path.join(OUT, name)
        if not os.path.exists(path):
            frame(rng, shift).to_csv(path, index=False)
            print(f"wrote {path} ({os.path.getsize(path) / 1e6:.0f} MB)")


if __name__ == "__main__":
    main()

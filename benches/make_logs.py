#!/usr/bin/env python3
"""Writes benches/data/logs_1m.jsonl: 1,000,000 inference logs of one model with ten
features (8 numbers, 2 categories), one event every 10 ms, the second half drifted;
and benches/data/logs_ref.csv, the model's reference (100,000 rows)."""
import json
import os
import random

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
N = 1_000_000
CATS = ["a", "b", "c", "d"]


def row(rng, shift):
    r = {f"f{i}": round(rng.gauss(shift if i < 3 else 0.0, 1.0), 6) for i in range(8)}
    r["region"] = rng.choice(CATS if shift == 0 else CATS + ["e"])
    r["plan"] = rng.choice(["free", "pro"])
    return r


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = random.Random(11)
    ref = os.path.join(OUT, "logs_ref.csv")
    with open(ref, "w") as f:
        f.write(",".join([f"f{i}" for i in range(8)] + ["region", "plan"]) + "\n")
        for _ in range(100_000):
            r = row(rng, 0.0)
            f.write(",".join(str(r[k]) for k in r) + "\n")
    start = 1_795_910_400_000
    with open(os.path.join(OUT, "logs_1m.jsonl"), "w") as f:
        for i in range(N):
            ts = start + i * 10
            f.write(json.dumps({"model": "m1", "model_version": "3", "timestamp": ts, "request_id": f"r-{i}",
                                "features": row(rng, 0.0 if i < N // 2 else 0.3), "prediction": round(rng.random(), 4)}) + "\n")
    print("wrote", ref, "and logs_1m.jsonl")


if __name__ == "__main__":
    main()

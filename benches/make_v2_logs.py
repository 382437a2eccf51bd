#!/usr/bin/env python3
"""Writes the same 1,000,000 inferences twice, for benches/open_inference_bench.sh:
benches/data/v2_1m.jsonl as Open Inference Protocol (V2) JSON, 50,000 requests of 20 rows
(one tensor per column as MLServer's pandas codec writes them: FP64 numbers, BYTES text)
each followed by its response (one FP64 output); and benches/data/v2_flat_1m.jsonl, the
same rows in driftd's own layout, one line per inference. The rows come from
make_logs.py's generator (8 numbers, 2 categories, the second half drifted) and its
reference serves both; the 20 rows of a request share its timestamp in both files."""
import json
import os
import random

from make_logs import OUT, row

N = 1_000_000
BATCH = 20


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = random.Random(12)
    start = 1_795_910_400_000
    with open(os.path.join(OUT, "v2_1m.jsonl"), "w") as v2, open(os.path.join(OUT, "v2_flat_1m.jsonl"), "w") as flat:
        for b in range(N // BATCH):
            ts = start + b * BATCH * 10
            rows = [row(rng, 0.0 if b < N // BATCH // 2 else 0.3) for _ in range(BATCH)]
            preds = [round(rng.random(), 4) for _ in range(BATCH)]
            rid = f"r-{b}"
            inputs = []
            for name in rows[0]:
                text = isinstance(rows[0][name], str)
                inputs.append({"name": name, "shape": [BATCH, 1], "datatype": "BYTES" if text else "FP64",
                               "data": [r[name] for r in rows]})
            v2.write(json.dumps({"id": rid, "model_name": "m1", "model_version": "3",
                                 "parameters": {"timestamp": ts}, "inputs": inputs}) + "\n")
            v2.write(json.dumps({"id": rid, "model_name": "m1", "model_version": "3",
                                 "outputs": [{"name": "predict", "shape": [BATCH, 1], "datatype": "FP64",
                                              "data": preds}]}) + "\n")
            for i, (r, p) in enumerate(zip(rows, preds)):
                flat.write(json.dumps({"model": "m1", "model_version": "3", "timestamp": ts,
                                       "request_id": f"{rid}-{i}", "features": r, "prediction": p}) + "\n")
    print("wrote v2_1m.jsonl and v2_flat_1m.jsonl")


if __name__ == "__main__":
    main()

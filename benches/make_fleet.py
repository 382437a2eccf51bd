"""Synthetic fleet for benches/fleet_bench.sh (standard library only, seeded).

benches/data/fleet/ref.csv: 5,000 rows x 20 features (16 numerical: normal with per-feature
mean and scale; 4 categorical: 6 categories with skewed shares), one reference every model
shares. benches/data/fleet/logs.jsonl: EVENTS events spread round-robin over MODELS models,
one every 7200 s / EVENTS (two hourly windows per model), drawn like the reference.
benches/data/fleet/fleet.toml: the MODELS models with hourly tumbling windows.
Usage: python3 benches/make_fleet.py [MODELS] [EVENTS]
"""
import json
import os
import random
import sys

MODELS = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
EVENTS = int(sys.argv[2]) if len(sys.argv) > 2 else 600_000
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "fleet")
NUM = [f"x{i}" for i in range(16)]
CAT = [f"c{i}" for i in range(4)]
CATS = ["a", "b", "c", "d", "e", "f"]
WEIGHTS = [30, 25, 20, 12, 8, 5]
rng = random.Random(7)
MEANS = [rng.uniform(-50, 50) for _ in NUM]
SCALES = [rng.uniform(0.5, 20) for _ in NUM]


def row():
    nums = [round(rng.gauss(m, s), 4) for m, s in zip(MEANS, SCALES)]
    cats = rng.choices(CATS, WEIGHTS, k=len(CAT))
    return nums, cats


os.makedirs(OUT, exist_ok=True)
with open(os.path.join(OUT, "ref.csv"), "w") as f:
    f.write(",".join(NUM + CAT) + "\n")
    for _ in range(5000):
        nums, cats = row()
        f.write(",".join(map(str, nums)) + "," + ",".join(cats) + "\n")

start_ms = 1_795_910_400_000  # an hour boundary
step_ms = 7_200_000 / EVENTS
with open(os.path.join(OUT, "logs.jsonl"), "w") as f:
    for k in range(EVENTS):
        nums, cats = row()
        features = dict(zip(NUM, nums))
        features.update(zip(CAT, cats))
        msg = {"model": f"m{k % MODELS:04d}", "timestamp": start_ms + int(k * step_ms), "features": features}
        f.write(json.dumps(msg) + "\n")

with open(os.path.join(OUT, "fleet.toml"), "w") as f:
    f.write("# written by benches/make_fleet.py: every model shares one reference, hourly windows\n")
    for m in range(MODELS):
        f.write(f'[[models]]\nname = "m{m:04d}"\nreference = "{OUT}/ref.csv"\nwindow = {{ size = "1h" }}\n')
print(f"fleet: {MODELS} models, {EVENTS} events in {OUT}")

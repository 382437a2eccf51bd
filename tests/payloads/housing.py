"""What the payload makers of tests/payloads/ share: the California housing analysis
period's features, the start of its replayed time, and its rows in batches. Imported by
scripts run in different virtualenvs (the CloudEvents SDK's, MLServer's): pandas only."""
import sys

import pandas as pd

FEATURES = ["MedInc", "HouseAge", "AveRooms", "AveBedrms", "Population", "AveOccup", "Latitude", "Longitude"]
START_S = 1_622_505_600  # 2021-06-01T00:00:00Z


def iso(seconds):
    return pd.Timestamp(seconds, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def batches():
    """The command line's ANALYSIS N ROWS OUT: N batches of ROWS rows, each with its index
    and time (one every 2 s from START_S), and the file to write."""
    analysis, n, rows, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    df = pd.read_csv(analysis)
    return [(b, iso(START_S + 2 * b), df.iloc[b * rows:(b + 1) * rows]) for b in range(n)], out

"""KServe payload-logger events made by the CloudEvents SDK's Kafka binding (cloudevents
1.12.0, as scripts/test pins it), for tests/it/open_inference.rs: N requests of ROWS rows
of the California housing analysis period and their responses, the odd ones in binary mode
(`ce_*` headers, the body bare) and the even ones in structured mode (the event as JSON),
with V2 bodies for every other inference and V1 bodies (`instances` lists, `predictions`)
for the rest. The predictions are the dataset's `y_pred`. Writes OUT, one message per line:
{"headers": {...}, "value": "..."} in the order to produce them."""
import json
import sys

import pandas as pd
from cloudevents.http import CloudEvent
from cloudevents.kafka import to_binary, to_structured

FEATURES = ["MedInc", "HouseAge", "AveRooms", "AveBedrms", "Population", "AveOccup", "Latitude", "Longitude"]
START_S = 1_622_505_600  # 2021-06-01T00:00:00Z


def iso(seconds):
    return pd.Timestamp(seconds, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def main():
    analysis, n, rows, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    df = pd.read_csv(analysis)
    with open(out, "w") as f:
        for b in range(n):
            batch = df.iloc[b * rows:(b + 1) * rows]
            rid = f"kserve-{b}"
            if b % 2 == 0:
                request = {"inputs": [{"name": c, "shape": [len(batch)], "datatype": "FP64",
                                       "data": batch[c].tolist()} for c in FEATURES]}
                response = {"model_name": "housing", "outputs": [{"name": "output-0", "shape": [len(batch)],
                                                                  "datatype": "INT64", "data": batch["y_pred"].tolist()}]}
            else:
                request = {"instances": batch[FEATURES].values.tolist()}
                response = {"predictions": batch["y_pred"].tolist()}
            for kind, body in (("request", request), ("response", response)):
                event = CloudEvent({"type": f"org.kubeflow.serving.inference.{kind}", "source": "http://localhost:9081/",
                                    "id": rid, "time": iso(START_S + 2 * b), "inferenceservicename": "housing",
                                    "component": "predictor", "endpoint": "", "datacontenttype": "application/json"},
                                   body)
                m = to_binary(event) if b % 2 else to_structured(event)
                value = m.value.decode() if isinstance(m.value, bytes) else m.value
                f.write(json.dumps({"headers": {k: v.decode() for k, v in m.headers.items()}, "value": value}) + "\n")


if __name__ == "__main__":
    main()

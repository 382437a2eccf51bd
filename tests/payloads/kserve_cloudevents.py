"""KServe payload-logger events made by the CloudEvents SDK's Kafka binding (cloudevents
1.12.0, as scripts/test pins it), for tests/it/open_inference.rs: N requests of ROWS rows
of the California housing analysis period and their responses, the odd ones in binary mode
(`ce_*` headers, the body bare) and the even ones in structured mode (the event as JSON),
with V2 bodies for every other inference and V1 bodies (`instances` lists, `predictions`)
for the rest. The predictions are the dataset's `y_pred`. Writes OUT, one message per line:
{"headers": {...}, "value": "..."} in the order to produce them."""
import json

from cloudevents.http import CloudEvent
from cloudevents.kafka import to_binary, to_structured
from housing import FEATURES, batches


def main():
    all_batches, out = batches()
    with open(out, "w") as f:
        for b, ts, batch in all_batches:
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
                                    "id": rid, "time": ts, "inferenceservicename": "housing",
                                    "component": "predictor", "endpoint": "", "datacontenttype": "application/json"},
                                   body)
                m = to_binary(event) if b % 2 else to_structured(event)
                value = m.value.decode() if isinstance(m.value, bytes) else m.value
                f.write(json.dumps({"headers": {k: v.decode() for k, v in m.headers.items()}, "value": value}) + "\n")


if __name__ == "__main__":
    main()

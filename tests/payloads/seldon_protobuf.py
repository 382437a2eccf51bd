"""Seldon Core 2's Kafka messages made by MLServer's own converters (mlserver 1.7.1, as
scripts/test pins it), for tests/it/open_inference.rs: N requests of ROWS rows of the
California housing analysis period as `inference.ModelInferRequest` protobufs on
`seldon.default.model.housing.inputs`, and their `ModelInferResponse`s on `...outputs`,
keyed by the request id as Seldon keys them. The inputs are encoded by MLServer's pandas
codec (a tensor per column, and a `region` text column no model monitors) for two batches
in three and by its numpy codec (one 2-D `[n, 8]` tensor) for the third; every other
message carries its values as `raw_input_contents` / `raw_output_contents`, the rest as
`contents`. The response's output is the dataset's `y_pred` (INT64). Both carry the
batch's time as `parameters["timestamp"]`. Writes OUT, one message per line:
{"topic": ..., "key": ..., "value": base64}."""
import base64
import json

import numpy as np
from housing import FEATURES, batches
from mlserver.codecs import NumpyCodec, NumpyRequestCodec, PandasCodec
from mlserver.grpc.converters import ModelInferRequestConverter, ModelInferResponseConverter
from mlserver.types import InferenceResponse

PREFIX = "seldon.default.model.housing"


def main():
    all_batches, out = batches()
    with open(out, "w") as f:
        for b, ts, batch in all_batches:
            rid, raw = f"seldon-{b}", b % 2 == 1
            if b % 3 == 2:
                request = NumpyRequestCodec.encode_request(batch[FEATURES].to_numpy(dtype=np.float64))
            else:
                frame = batch[FEATURES].copy()
                frame["region"] = np.where(batch["Latitude"] > 36, "north", "south")
                request = PandasCodec.encode_request(frame)
            request.id = rid
            request.parameters.timestamp = ts
            response = InferenceResponse(
                model_name="housing", id=rid, parameters={"timestamp": ts},
                outputs=[NumpyCodec.encode_output("predict", batch["y_pred"].to_numpy(dtype=np.int64))])
            messages = [
                (f"{PREFIX}.inputs", ModelInferRequestConverter.from_types(request, model_name="housing", use_raw=raw)),
                (f"{PREFIX}.outputs", ModelInferResponseConverter.from_types(response, use_raw=raw)),
            ]
            for topic, message in messages:
                value = base64.b64encode(message.SerializeToString()).decode()
                f.write(json.dumps({"topic": topic, "key": rid, "value": value}) + "\n")


if __name__ == "__main__":
    main()

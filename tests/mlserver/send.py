"""A client of MLServer's Kafka server, as a team's would be: N requests of ROWS rows of the
California housing analysis period, each a pandas DataFrame encoded by MLServer's own
PandasCodec (one tensor per column), produced to `mlserver-input` with the model in the
`mlserver-model` header and the request id as the key; then MLServer's responses read back
from `mlserver-output`. Writes OUT, one JSON line per request: its id, the Kafka timestamp
of the request, its rows, and the predictions MLServer answered (what the test replays in
driftd's own layout)."""
import asyncio
import json
import sys

import pandas as pd
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from mlserver.codecs import PandasCodec

FEATURES = ["MedInc", "HouseAge", "AveRooms", "AveBedrms", "Population", "AveOccup", "Latitude", "Longitude"]


async def main():
    bootstrap, analysis, n, rows, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    df = pd.read_csv(analysis)[FEATURES]
    consumer = AIOKafkaConsumer("mlserver-output", bootstrap_servers=bootstrap, group_id="send-py",
                                auto_offset_reset="earliest")
    await consumer.start()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    sent = {}
    for i in range(n):
        batch = df.iloc[i * rows:(i + 1) * rows].reset_index(drop=True)
        request = PandasCodec.encode_request(batch)
        rid = f"mlserver-req-{i}"
        meta = await producer.send_and_wait("mlserver-input", request.model_dump_json().encode(), key=rid.encode(),
                                            headers=[("mlserver-model", b"housing")])
        sent[rid] = {"id": rid, "ts_ms": meta.timestamp, "rows": batch.values.tolist()}
    await producer.stop()
    answered = 0
    try:
        while answered < n:
            batches = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 60)
            for messages in batches.values():
                for m in messages:
                    body = json.loads(m.value)
                    rid = (m.key or b"").decode() or body.get("id")
                    if rid in sent and "predictions" not in sent[rid]:
                        sent[rid]["predictions"] = body["outputs"][0]["data"]
                        sent[rid]["response_headers"] = {k: v.decode() for k, v in (m.headers or [])}
                        answered += 1
    finally:
        await consumer.stop()
    with open(out, "w") as f:
        for r in sent.values():
            f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    asyncio.run(main())

#!/usr/bin/env bash
# Through a real broker (Tansu): events/s that `driftd run` consumes with drift on, against
# a bare rdkafka consumer reading the same topic. N logs from benches/data/logs_1m.jsonl.
#   DRIFTD_TANSU=/path/to/tansu benches/broker_bench.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200000}
TANSU=${DRIFTD_TANSU:-tansu}
[ -f benches/data/logs_1m.jsonl ] || python3 benches/make_logs.py
cargo build --release --quiet --bin driftd --example bare_consumer --example produce_file
BIN=${CARGO_TARGET_DIR:-target}/release
PORT=29092
"$TANSU" broker --listener-url tcp://127.0.0.1:$PORT --advertised-listener-url tcp://127.0.0.1:$PORT --storage-engine memory://tansu/ >/dev/null 2>&1 &
BROKER=$!
trap 'kill $BROKER 2>/dev/null || true' EXIT
sleep 1
"$TANSU" topic create bench-logs --broker tcp://127.0.0.1:$PORT --partitions 1 >/dev/null
"$BIN/examples/produce_file" 127.0.0.1:$PORT bench-logs benches/data/logs_1m.jsonl "$N"
"$BIN/examples/bare_consumer" 127.0.0.1:$PORT bench-logs "$N"
STATE=$(mktemp -d)
cat > "$STATE/bench.toml" <<TOML
[kafka]
brokers = "127.0.0.1:$PORT"
topics = ["bench-logs"]
group_id = "driftd-bench"
[server]
listen = "127.0.0.1:0"
[state]
dir = "$STATE"
[reports]
file = "$STATE/reports.jsonl"
[[models]]
name = "m1"
reference = "benches/data/logs_ref.csv"
window = { size = "1m" }
idle_timeout = "1s"
TOML
start=$(date +%s.%N)
/usr/bin/time -f "driftd run: %M KB peak" "$BIN/driftd" run --config "$STATE/bench.toml" &
DAEMON=$!
while true; do
  n=$(python3 -c "import json,sys; print(sum(json.loads(l)['events'] for l in open('$STATE/reports.jsonl')))" 2>/dev/null || echo 0)
  [ "$n" -ge "$N" ] && break
  sleep 0.2
done
end=$(date +%s.%N)
kill -TERM $DAEMON; wait $DAEMON || true
python3 -c "s=$end-$start; print(f'driftd run: $N events reported in {s:.2f} s (incl. ~6 s group join and 1 s idle close): {$N/s:.0f} events/s')"

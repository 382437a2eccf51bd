#!/usr/bin/env bash
# Through a real broker (Tansu): events/s that `driftd run` consumes with drift on, against
# a bare rdkafka consumer reading the same topic. N logs from benches/data/logs_1m.jsonl.
#   DRIFTD_TANSU=/path/to/tansu benches/broker_bench.sh [N]
#   (DECODE_THREADS=2: the daemon's `[kafka] decode_threads`, 1 by default;
#    KAFKA_OPTIONS='"key" = "value"' lines: its `[kafka.options]`, librdkafka's settings)
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
# CPU seconds a process has used (user + system), from /proc: where the cores go
cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
b0=$(cpu $BROKER)
/usr/bin/time -f "bare consumer: %U s user + %S s system CPU in all (group join included)" \
  "$BIN/examples/bare_consumer" 127.0.0.1:$PORT bench-logs "$N"
echo "broker: $(awk "BEGIN{print $(cpu $BROKER) - $b0}") s of CPU serving the bare consumer"
STATE=$(mktemp -d)
# the reference profiled and its thresholds calibrated beforehand, as in production
"$BIN/driftd" baseline --data benches/data/logs_ref.csv --out "$STATE/ref.profile.json" >/dev/null
cat > "$STATE/bench.toml" <<TOML
[kafka]
brokers = "127.0.0.1:$PORT"
topics = ["bench-logs"]
group_id = "driftd-bench"
decode_threads = ${DECODE_THREADS:-1}
[server]
listen = "127.0.0.1:29464"
[state]
dir = "$STATE"
[reports]
file = "$STATE/reports.jsonl"
[[models]]
name = "m1"
reference = "$STATE/ref.profile.json"
window = { size = "1m" }
idle_timeout = "1s"
TOML
[ -z "${KAFKA_OPTIONS:-}" ] || printf '[kafka.options]\n%s\n' "$KAFKA_OPTIONS" >> "$STATE/bench.toml"
b0=$(cpu $BROKER)
${DRIFTD_WRAP:-} "$BIN/driftd" run --config "$STATE/bench.toml" &
DAEMON=$!
# Time from the first event counted to the last (the group join is not the pipeline's).
# Each scrape of /metrics costs CPU on the cores the daemon and the broker share (the
# bare consumer pays none): once the pace is known, the poller sleeps until shortly
# before the predicted end, then polls every 10 ms again.
python3 - "$N" "$DAEMON" <<'PY'
import os, re, sys, time, urllib.request
n, daemon = int(sys.argv[1]), int(sys.argv[2]); first = None
while True:
    if not os.path.exists(f"/proc/{daemon}") or open(f"/proc/{daemon}/stat").read().split()[2] == "Z":
        sys.exit("driftd run stopped before consuming every event")
    try:
        body = urllib.request.urlopen("http://127.0.0.1:29464/metrics", timeout=2).read().decode()
        m = re.search(r'driftd_events_total\{model="m1"\} (\d+)', body)
        seen = int(m.group(1)) if m else 0
    except OSError:
        seen = 0
    now = time.perf_counter()
    if seen > 0 and first is None:
        first = (now, seen)
    if seen >= n:
        secs = now - first[0]
        print(f"driftd run: {n - first[1]} events consumed, decoded and windowed in {secs:.3f} s: {(n - first[1]) / secs:.0f} events/s")
        break
    pause = 0.01
    if first is not None and seen > first[1] and now - first[0] > 0.05:
        rate = (seen - first[1]) / (now - first[0])
        pause = max(0.01, min(0.5, 0.7 * (n - seen) / rate))
    time.sleep(pause)
PY
echo "driftd run: $(grep VmHWM /proc/$DAEMON/status | tr -s ' ') peak, $(cpu $DAEMON) s of CPU in all (group join included)"
echo "broker: $(awk "BEGIN{print $(cpu $BROKER) - $b0}") s of CPU serving driftd"
kill -TERM $DAEMON; wait $DAEMON || true

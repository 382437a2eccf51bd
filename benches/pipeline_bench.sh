#!/usr/bin/env bash
# The streaming pipeline without a broker: `driftd replay` of 1,000,000 ten-feature logs
# pinned to one core, against the ceiling of serde_json just parsing the same lines.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f benches/data/logs_1m.jsonl ] || python3 benches/make_logs.py
cargo build --release --quiet --bin driftd --example parse_ceiling
BIN=${CARGO_TARGET_DIR:-target}/release
echo "== serde_json parse only (one core)"
/usr/bin/time -f "%e s wall, %M KB peak" taskset -c 0 "$BIN/examples/parse_ceiling" benches/data/logs_1m.jsonl
# the reference profiled and its thresholds calibrated beforehand, as in production
[ benches/data/logs_ref.profile.json -nt benches/data/logs_ref.csv ] ||
  "$BIN/driftd" baseline --data benches/data/logs_ref.csv --out benches/data/logs_ref.profile.json
echo "== driftd replay: decode, route, window, accumulate, window close (one core)"
# the summary's timing: load_s (the profile), stream_s and events_per_s (decode to report)
/usr/bin/time -f "%e s wall, %M KB peak" taskset -c 0 "$BIN/driftd" replay --config benches/pipeline.toml \
  --input benches/data/logs_1m.jsonl --output /tmp/driftd-pipeline-reports.jsonl
echo "windows: $(wc -l < /tmp/driftd-pipeline-reports.jsonl)"

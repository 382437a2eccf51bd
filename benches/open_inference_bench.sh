#!/usr/bin/env bash
# Open Inference Protocol against driftd's own layout: `driftd replay` of the same
# 1,000,000 inferences as V2 JSON (50,000 requests of 20 rows and their responses, joined
# by request id) and as one line per inference (benches/make_v2_logs.py), one core, the
# two alternated RUNS times (default 3); events/s of each (replay's own `stream_s`: decode
# to window close, the reference loaded before) and their ratio per round.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
[ -f benches/data/logs_ref.csv ] || python3 benches/make_logs.py
[ -f benches/data/v2_1m.jsonl ] || (cd benches && python3 make_v2_logs.py)
cargo build --release --quiet --bin driftd
BIN=${CARGO_TARGET_DIR:-target}/release
[ benches/data/logs_ref.profile.json -nt benches/data/logs_ref.csv ] ||
  "$BIN/driftd" baseline --data benches/data/logs_ref.csv --out benches/data/logs_ref.profile.json
rate() {
  taskset -c 0 "$BIN/driftd" replay --config benches/pipeline.toml --output /tmp/driftd-v2-bench-$1.jsonl "${@:2}" 2>&1 >/dev/null |
    sed -n 's/.*"events":\([0-9]*\).*"events_per_s":\([0-9.]*\).*/\1 \2/p'
}
for i in $(seq "$RUNS"); do
  read -r ev_v2 v2 < <(rate v2 --format open-inference --input benches/data/v2_1m.jsonl)
  read -r ev_flat flat < <(rate flat --input benches/data/v2_flat_1m.jsonl)
  python3 - "$ev_v2" "$v2" "$ev_flat" "$flat" <<'PY'
import sys
ev_v2, v2, ev_flat, flat = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
print(f"open-inference {ev_v2} events, {v2 / 1e3:,.0f}k events/s; driftd layout {ev_flat} events, "
      f"{flat / 1e3:,.0f}k events/s; ratio {v2 / flat:.2f}x")
PY
done
# the two files' windows: the same events, the same scores (replay is deterministic)
if cmp -s /tmp/driftd-v2-bench-v2.jsonl /tmp/driftd-v2-bench-flat.jsonl; then
  echo "reports: identical ($(wc -l < /tmp/driftd-v2-bench-v2.jsonl) windows)"
else
  echo "reports: DIFFER"; exit 1
fi

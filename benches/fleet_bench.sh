#!/usr/bin/env bash
# A fleet in one process: MODELS models x 20 features sharing one 5,000-row reference,
# hourly windows, EVENTS synthetic events over two hours (benches/make_fleet.py), through
# `driftd replay` on one core. Prints start-up (references resolved, profiled once and
# calibrated), events/s, the window closes at the hour boundary and peak RSS; then the
# same models at rest (no events) to give the memory per model.
#   benches/fleet_bench.sh [MODELS] [EVENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=${1:-1000}
EVENTS=${2:-600000}
python3 benches/make_fleet.py "$MODELS" "$EVENTS"
cargo build --release --quiet --bin driftd
BIN=${CARGO_TARGET_DIR:-target}/release
D=benches/data/fleet
echo "== $MODELS models x 20 features, $EVENTS events, hourly windows (one core)"
/usr/bin/time -f "%e s wall, %M KB peak" taskset -c 0 "$BIN/driftd" replay --config $D/fleet.toml \
  --input $D/logs.jsonl --output /tmp/driftd-fleet-reports.jsonl
echo "windows reported: $(wc -l < /tmp/driftd-fleet-reports.jsonl) (two per model: the closes at the hour boundary and at the end)"
: > /tmp/driftd-fleet-empty.jsonl
for n in 1 "$MODELS"; do
  awk -v n="$n" '/^\[\[models\]\]/{k++} k<=n' $D/fleet.toml > /tmp/driftd-fleet-$n.toml
  printf "at rest, %5s model(s): " "$n"
  /usr/bin/time -f "%M KB peak" "$BIN/driftd" replay --config /tmp/driftd-fleet-$n.toml \
    --input /tmp/driftd-fleet-empty.jsonl --output /dev/null 2>&1 | tail -1
done

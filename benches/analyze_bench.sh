#!/usr/bin/env bash
# analyze on two 1,000,000 x 10 CSV files, against the floor (polars alone reading both
# files, default options) and Evidently where it is installed; beside them, polars given
# pandas' missing-value words for every column (the floor of stops before this one) and
# driftd's own read (examples/read_floor.rs). Wall time and peak memory of each, best of 3.
#
#   benches/analyze_bench.sh [PYTHON]     (PYTHON: an interpreter with numpy, pandas and,
#                                          optionally, evidently==0.7.23)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-python3}"
"$PY" benches/make_data.py
REF=benches/data/ref_1m.csv
CUR=benches/data/cur_1m.csv
cargo build --release --quiet --bin driftd --example read_floor
BIN=${CARGO_TARGET_DIR:-target}/release

best() { # best-of-3 wall seconds and the peak RSS of that run, via GNU time
  local best_t="" best_m=""
  for _ in 1 2 3; do
    local out
    out=$( { /usr/bin/time -f "%e %M" "$@" >/dev/null; } 2>&1 | tail -1 )
    local t=${out% *} m=${out#* }
    if [[ -z "$best_t" ]] || awk "BEGIN{exit !($t < $best_t)}"; then best_t=$t; best_m=$m; fi
  done
  echo "$best_t $best_m"
}

read -r floor_t floor_m < <(best "$BIN/examples/read_floor" "$REF" "$CUR")
read -r words_t words_m < <(best "$BIN/examples/read_floor" --pandas-nulls "$REF" "$CUR")
read -r ours_read_t ours_read_m < <(best "$BIN/examples/read_floor" --driftd "$REF" "$CUR")
read -r evid_t evid_m < <(best "$BIN/driftd" analyze --compat evidently --reference "$REF" --current "$CUR")
read -r native_t native_m < <(best "$BIN/driftd" analyze --reference "$REF" --current "$CUR")
printf "%-32s %8s s  %8s MB\n" "polars read floor" "$floor_t" "$((floor_m / 1024))"
printf "%-32s %8s s  %8s MB   %.2fx floor\n" "polars, pandas' missing words" "$words_t" "$((words_m / 1024))" "$(awk "BEGIN{print $words_t/$floor_t}")"
printf "%-32s %8s s  %8s MB   %.2fx floor\n" "driftd's read alone" "$ours_read_t" "$((ours_read_m / 1024))" "$(awk "BEGIN{print $ours_read_t/$floor_t}")"
printf "%-32s %8s s  %8s MB   %.2fx floor\n" "driftd analyze --compat evidently" "$evid_t" "$((evid_m / 1024))" "$(awk "BEGIN{print $evid_t/$floor_t}")"
printf "%-32s %8s s  %8s MB   %.2fx floor\n" "driftd analyze (native)" "$native_t" "$((native_m / 1024))" "$(awk "BEGIN{print $native_t/$floor_t}")"
printf "%-32s %.2fx (evidently), %.2fx (native)\n" "against pandas' words floor" "$(awk "BEGIN{print $evid_t/$words_t}")" "$(awk "BEGIN{print $native_t/$words_t}")"
if "$PY" -c "import evidently" 2>/dev/null; then
  out=$( { /usr/bin/time -f "%e %M" "$PY" benches/evidently_bench.py "$REF" "$CUR" >/tmp/evidently_bench.json; } 2>&1 | tail -1 )
  ev_t=${out% *}; ev_m=${out#* }
  printf "%-32s %8s s  %8s MB   %.1fx driftd --compat evidently\n" "Evidently 0.7 (incl. import)" "$ev_t" "$((ev_m / 1024))" "$(awk "BEGIN{print $ev_t/$evid_t}")"
  echo "Evidently verdict and scores: /tmp/evidently_bench.json"
else
  echo "Evidently not installed for $PY: skipped"
fi

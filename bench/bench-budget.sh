#!/usr/bin/env bash
# Time `minerva-setup bench` against its budget: a first run into an empty cache (writes the
# benchmark models) and a second run with the models cached, which must finish within 10 s.
# Prints each run's wall time, the benchmark's own measured wall time and peak RSS (VmHWM).
#
# Usage (after `cargo build --release`): bench/bench-budget.sh
# Without a working probe, point MINERVA_HARDWARE at a profile, e.g.
#   MINERVA_HARDWARE=tests/fixtures/bench-2core-avx512.json bench/bench-budget.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${CARGO_TARGET_DIR:-target}/release/minerva-setup
[ -x "$bin" ] || { echo "error: $bin not found; run \`cargo build --release\` first" >&2; exit 2; }
command -v jq >/dev/null || { echo "error: jq is needed to read the JSON document" >&2; exit 2; }

data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
limit_s=10
status=0
for run in first cached; do
    start=$(date +%s.%N)
    "$bin" --data-dir "$data" --no-progress bench --json --no-save >"$data/$run.json"
    end=$(date +%s.%N)
    wall=$(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.1f", b-a}')
    jq -r --arg run "$run" --arg wall "$wall" '
      "\($run) run: \($wall) s wall for the process, \(.wall_s * 10 | round / 10) s measuring, peak RSS \(.peak_rss_bytes / 1048576 | round) MiB, \(.quants | length) measurements, threads \(.threads)"' \
      "$data/$run.json"
    if [ "$run" = cached ] && ! awk -v w="$wall" -v l="$limit_s" 'BEGIN{exit !(w <= l)}'; then
        echo "  over the ${limit_s} s budget (load average $(cut -d' ' -f1 /proc/loadavg); see the warnings:)"
        jq -r '.warnings[] | "  warning: \(.)"' "$data/$run.json"
        status=1
    fi
done
echo "cache: $(du -sh "$data/cache/bench" | cut -f1) of generated models"
exit $status

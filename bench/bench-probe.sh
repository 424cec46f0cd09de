#!/usr/bin/env bash
# Time five runs of `minerva-setup probe --json` (bandwidth measurement included) on this
# machine. The probe is meant to finish in well under 1.5 s; this prints the figures rather
# than asserting them, since a loaded CI machine would make a timing assertion flaky.
#
# Usage: bench/bench-probe.sh [path/to/minerva-setup]   (default: target/release/minerva-setup)
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/release/minerva-setup}"
if [ ! -x "$bin" ]; then
    cargo build --release
fi
for i in 1 2 3 4 5; do
    start=$(date +%s.%N)
    out=$("$bin" probe --json)
    end=$(date +%s.%N)
    bw=$(printf '%s' "$out" | sed -n 's/.*"bytes_per_s": \([0-9.e+]*\).*/\1/p' | head -n1)
    awk -v s="$start" -v e="$end" -v i="$i" -v bw="$bw" \
        'BEGIN { printf "run %d: %.3f s wall, bandwidth %.1f GB/s\n", i, e - s, bw / 1e9 }'
done

#!/usr/bin/env bash
# Prediction accuracy, measured: does `minerva-setup predict` foresee what llama.cpp does on this
# machine for models in the shapes and quantisation mixes of real ones?
#
# 1. Runs the benchmark (`bench --json`) into a scratch data dir; `predict` then uses it.
# 2. examples/accuracy.rs writes nine models with real models' widths (640-4096), vocabularies
#    (32k-262k), tied and untied embeddings and GQA ratios (1-8), quantised by llama.cpp's own
#    quantiser to Q8_0, Q4_K_M, Q5_K_M, Q6_K, Q3_K_M, IQ4_XS and Q4_0 (cached across runs), with
#    fewer layers than the originals so the bench runs in about 35 minutes on 2 cores.
# 3. For each model and workload (550+150, 128+32, 2048+256 prompt+answer tokens): `predict --json`,
#    then the same turn measured with llama.cpp (cold load, then median of REPS turns), and prints
#    predicted vs measured load, prefill, decode, time to first token and turn.
#    The benchmark runs again before each model (this machine's speed drifts by tens of percent
#    over half an hour), and every model's predicted turn is compared across those benchmarks:
#    the repeatability of the prediction (limit 5 % between two benchmarks run one after the
#    other, minutes apart; the spread over the whole run is printed next to it).
# 4. Exits 1 when the worst turn or decode error exceeds 15 % or their median exceeds 7 %, or the
#    worst prefill or time to first token exceeds 15 %.
#
# Usage (from anywhere; builds the release binary and the example first):
#   bench/bench-accuracy.sh [DATA_DIR]
# DATA_DIR keeps the benchmark and the models between runs (default: target/bench-accuracy).
# REUSE_BENCH=1 skips the first benchmark (it only sets the thread count; a benchmark still runs
# before each model unless REUSE_MEASURED=1).
# REUSE_MEASURED=1 predicts again against the last run's measurements (DATA_DIR/accuracy.json)
# instead of measuring, each from the benchmark taken before it: a changed predictor checked in
# seconds (with REUSE_BENCH=1).
# REPS (default 3), WORKLOADS (comma-separated P+R), MODELS (comma-separated names) narrow it.
# FULL_DEPTH=1 writes the models with their real layer counts (the big variant: 0.3-7 B weights,
# about 25 GB of F16 sources written one at a time, and well over an hour here).
set -euo pipefail
cd "$(dirname "$0")/.."

target=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet --bin minerva-setup --example accuracy
bin=$target/release/minerva-setup
accuracy=$target/release/examples/accuracy

data=${1:-$target/bench-accuracy}
mkdir -p "$data"
loadavg() { cut -d' ' -f1 /proc/loadavg; }
echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs, load average $(loadavg)"

if [ "${REUSE_BENCH:-0}" = 1 ] && [ -s "$data/state/bench.json" ]; then
    echo "== benchmark: reusing $data/state/bench.json"
else
    echo "== benchmark (bench --json)"
    start=$(date +%s.%N)
    "$bin" --data-dir "$data" --no-progress bench --json >"$data/bench-output.json"
    echo "   wall $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"
fi

args=(--data "$data" --bin "$bin" --reps "${REPS:-3}")
[ -n "${WORKLOADS:-}" ] && args+=(--workloads "$WORKLOADS")
[ -n "${MODELS:-}" ] && args+=(--models "$MODELS")
[ "${FULL_DEPTH:-0}" = 1 ] && args+=(--full-depth)
[ "${REUSE_MEASURED:-0}" = 1 ] && args+=(--reuse-measured)
[ "${REUSE_MEASURED:-0}" = 1 ] || args+=(--bench-each)
echo "== predicted vs measured"
"$accuracy" "${args[@]}"

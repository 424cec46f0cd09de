#!/usr/bin/env bash
# Compare `minerva-setup bench` with an independent llama.cpp measurement on the same GGUF files.
#
# 1. Runs the full benchmark once (`bench --json`), which writes the benchmark models into the
#    cache on a first run, and prints its wall time and peak memory.
# 2. For each generated model, runs `bench --json --bench-model FILE` and `examples/llama_perf`
#    (llama.cpp's own perf counters, none of our timing code) back to back with the same thread
#    count, prompt and generation lengths, and prints both with their ratio. They should agree
#    within 15 %.
#
# Usage (from anywhere; builds what it runs, CARGO_TARGET_DIR is honoured):
#   bench/bench-vs-llama.sh [DATA_DIR]
# DATA_DIR keeps the generated models between runs (default: target/bench-vs-llama).
# Without a working probe, point MINERVA_HARDWARE at a profile, e.g.
#   MINERVA_HARDWARE=tests/fixtures/bench-2core-avx512.json bench/bench-vs-llama.sh
# THREADS overrides the thread count (default: the one the full benchmark chose); ROUNDS the
# number of alternating rounds per model whose medians are compared (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_build llama_perf
perf=$example_dir/llama_perf

data=${1:-target/bench-vs-llama}
mkdir -p "$data"
prompt=128
gen=32

echo "== full benchmark (bench --json)"
start=$(date +%s.%N)
"$bin" --data-dir "$data" --no-progress bench --json --no-save >"$data/full.json"
end=$(date +%s.%N)
jq -r --arg ext "$(awk -v a="$start" -v b="$end" 'BEGIN{print b-a}')" '
  "wall \(.wall_s * 100 | round / 100) s measured (\($ext | tonumber * 10 | round / 10) s for the process), peak RSS \(.peak_rss_bytes / 1048576 | round) MiB, threads \(.threads)",
  (.thread_trials[] | "  tried \(.threads) threads: \(.decode_tokens_per_s * 10 | round / 10) tok/s"),
  "  per-token overhead \(.per_token_overhead_s * 1e6 | round) us, converged \(.converged)",
  (.warnings[] | "  warning: \(.)")' "$data/full.json"
threads=${THREADS:-$(jq .threads "$data/full.json")}

rounds=${ROUNDS:-3}
echo
echo "== same GGUF, minerva-setup bench --bench-model vs llama.cpp perf counters"
echo "   ($threads threads, $prompt prompt, $gen generated; median of $rounds alternating rounds per side)"
printf '%-5s %10s %10s %6s   %10s %10s %6s   %s\n' type "pp ours" "pp llama" ratio "tg ours" "tg llama" ratio \
    "(best round: pp ratio, tg ratio)"
best() { sort -g | tail -n 1; }
median() { sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
worst=0
for model in "$data"/cache/bench/*-l12-*.gguf; do
    : >"$data/pp_o"; : >"$data/pp_t"; : >"$data/tg_o"; : >"$data/tg_t"
    for _ in $(seq "$rounds"); do
        "$bin" --data-dir "$data" --no-progress bench --json --no-save --bench-model "$model" \
            --threads "$threads" --prompt-tokens "$prompt" --gen-tokens "$gen" --budget 3 >"$data/ours.json"
        "$perf" "$model" --threads "$threads" --prompt-tokens "$prompt" --gen-tokens "$gen" --reps 5 >"$data/theirs.json"
        jq '.quants[0].prefill_tokens_per_s.median' "$data/ours.json" >>"$data/pp_o"
        jq '.quants[0].decode_tokens_per_s.median' "$data/ours.json" >>"$data/tg_o"
        jq '.prefill_tokens_per_s' "$data/theirs.json" >>"$data/pp_t"
        jq '.decode_tokens_per_s' "$data/theirs.json" >>"$data/tg_t"
    done
    ty=$(jq -r '.quants[0].ggml_type' "$data/ours.json")
    pp_o=$(median <"$data/pp_o"); pp_t=$(median <"$data/pp_t")
    tg_o=$(median <"$data/tg_o"); tg_t=$(median <"$data/tg_t")
    pp_r=$(awk -v a="$pp_o" -v b="$pp_t" 'BEGIN{print a/b}')
    tg_r=$(awk -v a="$tg_o" -v b="$tg_t" 'BEGIN{print a/b}')
    # The fastest round of each side: other work on the machine only ever slows a round down.
    pp_b=$(awk -v a="$(best <"$data/pp_o")" -v b="$(best <"$data/pp_t")" 'BEGIN{printf "%.3f", a/b}')
    tg_b=$(awk -v a="$(best <"$data/tg_o")" -v b="$(best <"$data/tg_t")" 'BEGIN{printf "%.3f", a/b}')
    printf '%-5s %10.1f %10.1f %6.3f   %10.1f %10.1f %6.3f   (%s, %s)\n' "$ty" "$pp_o" "$pp_t" "$pp_r" "$tg_o" "$tg_t" "$tg_r" "$pp_b" "$tg_b"
    worst=$(echo "$worst $pp_r $tg_r" | awk '{w=$1; for(i=2;i<=3;i++){d=($i>1)?$i-1:1-$i; if(d>w)w=d}; print w}')
done
echo
echo "(agreement is judged on the medians; the best rounds are shown for a busy machine)"
if awk -v w="$worst" 'BEGIN{exit !(w <= 0.15)}'; then
    echo "agreement: all within 15% (largest deviation $(awk -v w="$worst" 'BEGIN{printf "%.1f", w*100}')%)"
else
    echo "agreement: NOT within 15% (largest deviation $(awk -v w="$worst" 'BEGIN{printf "%.1f", w*100}')%)"
    echo "  (on a machine shared with other work, rerun when it is idle: load average $(cut -d' ' -f1 /proc/loadavg))"
    exit 1
fi

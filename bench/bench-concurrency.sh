#!/usr/bin/env bash
# Several users at once, predicted and measured: does `predict --concurrency N` foresee what
# `verify --concurrency N` measures when N conversations share one llama.cpp context?
#
# 1. Runs the benchmark once with batched decode (`bench --json --concurrency 4`: decode steps
#    with 1, 2, 4 and 8 sequences in one batch on each generated model) into a scratch data dir.
# 2. Writes GGUFs with random weights in the shapes of two real models of different types
#    (examples/write_gguf.rs; cached across runs):
#      Qwen2.5-0.5B  Q4_K_M  (llama.cpp's mix, tied embedding)
#      SmolLM2-1.7B  Q8_0    (llama.cpp's Q8_0 file)
# 3. For N in CONCURRENCY (default "1 2 4"): `predict FILE --concurrency N --json` (the simulated
#    continuous-batching loop) and `verify --model-file FILE --concurrency N --json` (N
#    conversations at once in one context, the same loop on the wall clock). Both use the same
#    closed loop: each user sends its next turn when its answer is complete, first prompts 1 s
#    apart, 2 turns per user.
# 4. Prints predicted vs measured per-user turn (p50 and p95) and aggregate tokens/s, and exits 1
#    when a p50 error at the largest N exceeds 20 %.
#
# Usage (from anywhere; builds what it runs, CARGO_TARGET_DIR is honoured):
#   bench/bench-concurrency.sh [DATA_DIR]
# DATA_DIR keeps the benchmark and the generated models between runs (default:
# target/bench-concurrency). REUSE_BENCH=1 keeps the benchmark of an earlier run. PROMPT (128),
# RESPONSE (32), CTX (512), CONCURRENCY ("1 2 4"), MODELS (a space-separated subset of the names
# below) change the workload; THREADS fixes llama.cpp's thread count (default: the benchmark's).
# Without a working probe, point MINERVA_HARDWARE at a profile.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_build write_gguf
write=$example_dir/write_gguf

data=${1:-target/bench-concurrency}
mkdir -p "$data/models"
prompt=${PROMPT:-128}
response=${RESPONSE:-32}
ctx=${CTX:-512}
levels=${CONCURRENCY:-1 2 4}
limit_pct=20

# name  registry-id-of-the-shape  layout
all_models=(
    "qwen2.5-0.5b-Q4_K_M qwen2.5-0.5b-instruct-q4_k_m Q4_K_M"
    "smollm2-1.7b-Q8_0 smollm2-1.7b-instruct-q4_k_m Q8_0"
)
selected=${MODELS:-}
largest=$(tr ' ' '\n' <<<"$levels" | sort -n | tail -1)

loadavg() { cut -d' ' -f1 /proc/loadavg; }

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
bench_json="$data/bench.json"
if [ "${REUSE_BENCH:-0}" = 1 ] && [ -s "$bench_json" ]; then
    echo "== benchmark: reusing $bench_json"
else
    echo "== benchmark with batched decode (bench --json --concurrency $largest), load average $(loadavg)"
    bench_threads=()
    if [ -n "${THREADS:-}" ]; then
        bench_threads=(--threads "$THREADS")
    fi
    "$bin" --data-dir "$data" --no-progress bench --json --concurrency "$largest" "${bench_threads[@]}" >"$bench_json.tmp"
    mv "$bench_json.tmp" "$bench_json"
fi
jq -r '
  "threads \(.threads), wall \(.wall_s * 10 | round / 10) s",
  (.batch_decode[] | "  \(.ggml_type) \(.params / 1e6 | round) M weights: decode step " +
     ([.steps[] | "\(.sequences) seq \(.step_s.median * 1e4 | round / 10) ms"] | join(", "))),
  (.warnings[] | "  warning: \(.)")' "$bench_json"
threads=${THREADS:-$(jq .threads "$bench_json")}

echo
echo "== predicted vs measured per user: $prompt prompt + $response response tokens, context $ctx per conversation, $threads threads"
printf '%-20s %3s | %8s %8s %6s | %8s %8s %6s | %8s %8s | %s\n' \
    model N "p50 pred" "p50 meas" "err%" "p95 pred" "p95 meas" "err%" "all pred" "all meas" "load avg"
worst=0
for entry in "${all_models[@]}"; do
    read -r name shape layout <<<"$entry"
    if [ -n "$selected" ] && [[ " $selected " != *" $name "* ]]; then
        continue
    fi
    file="$data/models/$name.gguf"
    "$write" --shape "$shape" --layout "$layout" --out "$file" >/dev/null 2>&1
    for n in $levels; do
        pred=$("$bin" --data-dir "$data" --no-progress predict "$file" --json --cpu-only \
            --prompt-tokens "$prompt" --response-tokens "$response" --ctx "$ctx" --concurrency "$n")
        load_before=$(loadavg)
        # A model with random weights answers with a loop, which fails the verification's
        # answer check (exit 5, after the report): the timings are what this script compares.
        rc=0
        meas=$("$bin" --data-dir "$data" --no-progress --json verify --model-file "$file" \
            --threads "$threads" --prompt-tokens "$prompt" --response-tokens "$response" \
            --ctx "$ctx" --concurrency "$n") || rc=$?
        if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then
            echo "error: verify --model-file $file --concurrency $n failed (exit $rc)" >&2
            exit 1
        fi
        meas=$(jq -s '.[0]' <<<"$meas")
        if ! jq -e '.report.turn_s' <<<"$meas" >/dev/null; then
            echo "error: verify --model-file $file --concurrency $n gave no report" >&2
            exit 1
        fi
        load_after=$(loadavg)
        printf '%s\n' "$meas" >"$data/measured-$name-$n.json"
        row=$(jq -n -r --argjson p "$pred" --argjson m "$meas" '
          def err(a; b): (a - b) / b * 100;
          ($p.concurrency // {turn_p50_s: $p.turn_s, turn_p95_s: $p.turn_s, aggregate_tokens_per_s: $p.decode_tokens_per_s}) as $pc
          | ($m.report.concurrency // {turn_p50_s: $m.report.turn_s, turn_p95_s: $m.report.turn_s,
               aggregate_tokens_per_s: ($m.report.generated_tokens / $m.report.turn_s)}) as $mc
          | [$pc.turn_p50_s, $mc.turn_p50_s, err($pc.turn_p50_s; $mc.turn_p50_s),
             $pc.turn_p95_s, $mc.turn_p95_s, err($pc.turn_p95_s; $mc.turn_p95_s),
             $pc.aggregate_tokens_per_s, $mc.aggregate_tokens_per_s] | @tsv')
        IFS=$'\t' read -r p50p p50m e50 p95p p95m e95 allp allm <<<"$row"
        printf '%-20s %3s | %8.2f %8.2f %+6.1f | %8.2f %8.2f %+6.1f | %8.1f %8.1f | %s\n' \
            "$name" "$n" "$p50p" "$p50m" "$e50" "$p95p" "$p95m" "$e95" "$allp" "$allm" "$load_before/$load_after"
        if [ "$n" = "$largest" ]; then
            worst=$(awk -v w="$worst" -v a="$e50" 'BEGIN{ a = a < 0 ? -a : a; if (a > w) w = a; print w }')
        fi
    done
done
echo "(p50/p95: per-user seconds from a prompt's arrival to its last answer token, over every turn;"
echo " all: answer tokens of all users per second of the run; err: (predicted - measured) / measured;"
echo " load avg: 1-minute load before/after the measurement)"

echo
if awk -v w="$worst" -v l="$limit_pct" 'BEGIN{exit !(w <= l)}'; then
    echo "accuracy: every p50 per-user turn at $largest users within ${limit_pct}% (largest $(printf '%.1f' "$worst")%)"
else
    echo "accuracy: NOT within ${limit_pct}% at $largest users (largest p50 error $(printf '%.1f' "$worst")%)"
    echo "  (on a machine shared with other work, rerun when it is idle: load average $(loadavg))"
    exit 1
fi

#!/usr/bin/env bash
# Prediction accuracy, measured: does `minerva-setup predict` foresee what llama.cpp does on this
# machine for models much larger than the benchmark's?
#
# 1. Runs the benchmark once (`bench --json`) into a scratch data dir; `predict` then uses it.
# 2. Writes GGUFs with random weights in the shapes of real models, 4-20x the benchmark model's
#    143 M weights read per token (examples/write_gguf.rs; cached across runs):
#      TinyLlama-1.1B   Q8_0    (untied, 1.0 B weights per token)
#      Qwen2.5-1.5B     Q4_0    (tied embedding in Q6_K, 1.5 B)
#      Llama-3.2-1B     Q4_K_M  (llama.cpp's mix, tied, 1.2 B)
#      Qwen2.5-3B       Q4_0    (tied, 3.1 B)
# 3. For each: `predict FILE.gguf --json` for one turn of PROMPT prompt tokens and RESPONSE
#    generated tokens in a CTX-token context, then measures the same turn with llama.cpp
#    (examples/measure_turn.rs: load, warm-up, then median of REPS "prefill + generate").
# 4. Prints predicted vs measured decode tokens/s and turn seconds with the error, and exits 1 when
#    any error exceeds 20 %.
#
# Usage (after `cargo build --release`, from anywhere):
#   bench/bench-accuracy.sh [DATA_DIR]
# DATA_DIR keeps benchmark and generated models between runs (default: target/bench-accuracy).
# REUSE_BENCH=1 keeps the benchmark of an earlier run (to re-check the predictor alone).
# REPS (default 3), PROMPT (256), RESPONSE (64), CTX (1024), MODELS (a space-separated subset of
# the names below) change the workload. THREADS fixes the thread count of the benchmark and of the
# measurements (default: the benchmark's choice). On a machine shared with other work, THREADS=1
# keeps llama.cpp's threads from waiting on each other at every barrier when one is descheduled.
# Without a working probe, point MINERVA_HARDWARE at a profile.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=target/release/minerva-setup
if [ ! -x "$bin" ]; then
    echo "error: $bin not found; run \`cargo build --release\` first" >&2
    exit 2
fi
command -v jq >/dev/null || { echo "error: jq is needed to read the JSON documents" >&2; exit 2; }
# The helper programs; building them reuses the release build of llama.cpp (seconds).
cargo build --release --quiet --example write_gguf --example measure_turn
write=target/release/examples/write_gguf
measure=target/release/examples/measure_turn

data=${1:-target/bench-accuracy}
mkdir -p "$data/models"
prompt=${PROMPT:-256}
response=${RESPONSE:-64}
ctx=${CTX:-1024}
reps=${REPS:-3}
limit_pct=20

# name  registry-id-of-the-shape  layout
all_models=(
    "tinyllama-1.1b-Q8_0 tinyllama-1.1b-chat-q4_k_m Q8_0"
    "qwen2.5-1.5b-Q4_0 qwen2.5-1.5b-instruct-q4_k_m Q4_0"
    "llama-3.2-1b-Q4_K_M llama-3.2-1b-instruct-q4_k_m Q4_K_M"
    "qwen2.5-3b-Q4_0 qwen2.5-3b-instruct-q5_k_m Q4_0"
)
selected=${MODELS:-}

loadavg() { cut -d' ' -f1 /proc/loadavg; }

bench_json="$data/bench.json"
if [ "${REUSE_BENCH:-0}" = 1 ] && [ -s "$bench_json" ]; then
    echo "== benchmark: reusing $bench_json"
else
    echo "== benchmark (bench --json), load average $(loadavg)"
    bench_threads=()
    if [ -n "${THREADS:-}" ]; then
        bench_threads=(--threads "$THREADS")
    fi
    "$bin" --data-dir "$data" --no-progress bench --json "${bench_threads[@]}" >"$bench_json.tmp"
    mv "$bench_json.tmp" "$bench_json"
fi
jq -r '
  "threads \(.threads), per-token overhead \(.per_token_overhead_s * 1e6 | round) us, converged \(.converged), wall \(.wall_s * 10 | round / 10) s",
  (.quants[] | "  \(.ggml_type) \(.params / 1e6 | round) M weights: decode \(.decode_tokens_per_s.median * 10 | round / 10) tok/s (\(.decode_bandwidth_bytes_per_s / 1e9 * 100 | round / 100) GB/s), prefill \(.prefill_tokens_per_s.median * 10 | round / 10) tok/s"),
  (.warnings[] | "  warning: \(.)")' "$bench_json"
threads=${THREADS:-$(jq .threads "$bench_json")}
bench_params=$(jq '[.quants[].params] | max' "$bench_json")

echo
echo "== predicted vs measured: $prompt prompt + $response response tokens, context $ctx, $threads threads, median of $reps"
rows=()
names=()
worst=0
for entry in "${all_models[@]}"; do
    read -r name shape layout <<<"$entry"
    if [ -n "$selected" ] && [[ " $selected " != *" $name "* ]]; then
        continue
    fi
    file="$data/models/$name.gguf"
    "$write" --shape "$shape" --layout "$layout" --out "$file" >/dev/null
    pred=$("$bin" --data-dir "$data" --no-progress predict "$file" --json --cpu-only \
        --prompt-tokens "$prompt" --response-tokens "$response" --ctx "$ctx")
    load_before=$(loadavg)
    meas=$("$measure" "$file" --threads "$threads" --prompt-tokens "$prompt" \
        --response-tokens "$response" --ctx "$ctx" --reps "$reps")
    load_after=$(loadavg)
    printf '%s\n' "$meas" >"$data/measured-$name.json"
    names+=("$name")
    row=$(jq -n -r --argjson p "$pred" --argjson m "$meas" --arg name "$name" --arg bp "$bench_params" \
        --arg la "$load_before/$load_after" '
      def err(a; b): (a - b) / b * 100;
      [$name, ($p.parameters / 1e6 | round), ($p.parameters / ($bp | tonumber)),
       $p.decode_tokens_per_s, $m.decode_tokens_per_s, err($p.decode_tokens_per_s; $m.decode_tokens_per_s),
       $p.prefill_tokens_per_s, $m.prefill_tokens_per_s, err($p.prefill_tokens_per_s; $m.prefill_tokens_per_s),
       $p.turn_s, $m.turn_s, err($p.turn_s; $m.turn_s), $m.decode_spread * 100,
       $m.on_cpu_decode_tokens_per_s, $p.limited_by, $la]
      | @tsv')
    rows+=("$row")
    IFS=$'\t' read -r _ _ _ _ _ e_dec _ _ _ _ _ e_turn _ _ _ _ <<<"$row"
    worst=$(awk -v w="$worst" -v a="$e_dec" -v b="$e_turn" 'BEGIN{
        a = a < 0 ? -a : a; b = b < 0 ? -b : b; if (a > w) w = a; if (b > w) w = b; print w }')
done

printf '%-20s %6s %5s | %8s %8s %6s | %8s %8s %6s | %7s %7s %6s | %6s %6s %-22s %s\n' \
    model "Mw" "xB" "tg pred" "tg meas" "err%" "pp pred" "pp meas" "err%" "turn p" "turn m" "err%" "tg spr" "tg cpu" "limited by" "load avg"
for row in "${rows[@]}"; do
    IFS=$'\t' read -r name mw xb dp dm de pp pm pe tp tm te spr cpu lim la <<<"$row"
    printf '%-20s %6s %5.1f | %8.2f %8.2f %+6.1f | %8.1f %8.1f %+6.1f | %7.2f %7.2f %+6.1f | %5.1f%% %6.2f %-22s %s\n' \
        "$name" "$mw" "$xb" "$dp" "$dm" "$de" "$pp" "$pm" "$pe" "$tp" "$tm" "$te" "$spr" "$cpu" "$lim" "$la"
done
echo "(Mw: million weights in the model's matrices; xB: times the benchmark model's; tg: decode tokens/s;"
echo " pp: prefill tokens/s; turn: seconds for prefill + decode; err: (predicted - measured) / measured;"
echo " tg spr: spread of the measured decode rate; tg cpu: decode tokens per second of on-CPU time,"
echo " what the wall clock would show without other processes; load avg: 1-minute load before/after)"

# The same comparison by on-CPU time. On a machine shared with other work, the wall clock of
# both the benchmark and the measurements includes time llama.cpp's threads waited for a CPU, and
# the two waited differently. Timing the benchmark's own models with the threads' on-CPU time and
# predicting from those figures checks the predictor's physics without that noise (meaningful
# with THREADS=1, where no thread waits for another at a barrier).
if [ "${THREADS:-}" = "1" ]; then
    echo
    echo "== the same by on-CPU time: the benchmark's models re-timed by measure_turn, load average $(loadavg)"
    cpu_state="$data/on-cpu-state"
    mkdir -p "$cpu_state"
    bench_prompt=$(jq '[.quants[].prompt_tokens] | max' "$bench_json")
    bench_gen=$(jq '[.quants[].generated_tokens] | max' "$bench_json")
    : >"$data/on-cpu-bench.jsonl"
    for f in "$data"/cache/bench/*-l12-*.gguf; do
        type=$(basename "$f" | sed 's/.*-uniform-\([A-Z0-9_]*\)-.*/\1/')
        m=$("$measure" "$f" --threads "$threads" --prompt-tokens "$bench_prompt" \
            --response-tokens "$bench_gen" --ctx $((bench_prompt + bench_gen + 64)) --reps 5)
        jq -c --arg t "$type" '{type: $t, m: .}' <<<"$m" >>"$data/on-cpu-bench.jsonl"
    done
    jq --slurpfile r <(jq -s -c 'map({key: .type, value: .m}) | from_entries' "$data/on-cpu-bench.jsonl") '
      ($r[0]) as $r | ([.quants[].params] | max) as $largest
      | .per_token_overhead_s = 0 | .converged = null | .source = "on-CPU time of the benchmark models"
      | .quants |= map(select($r[.ggml_type] != null and .params == $largest)
          | . as $q | $r[$q.ggml_type] as $x
          | .decode_tokens_per_s = {median: $x.on_cpu_decode_tokens_per_s, min: $x.on_cpu_decode_tokens_per_s, max: $x.on_cpu_decode_tokens_per_s, samples: $x.reps}
          | .prefill_tokens_per_s = {median: $x.on_cpu_prefill_tokens_per_s, min: $x.on_cpu_prefill_tokens_per_s, max: $x.on_cpu_prefill_tokens_per_s, samples: $x.reps}
          | .decode_weights_per_s = (.params * $x.on_cpu_decode_tokens_per_s)
          | .decode_bandwidth_bytes_per_s = (.weight_bytes_per_token * $x.on_cpu_decode_tokens_per_s)
          | .prefill_flops_per_s = (2 * .params * $x.on_cpu_prefill_tokens_per_s))' \
        "$bench_json" >"$cpu_state/bench.json"
    printf '%-20s | %8s %8s %6s | %8s %8s %6s | %7s %7s %6s\n' \
        model "tg pred" "tg meas" "err%" "pp pred" "pp meas" "err%" "turn p" "turn m" "err%"
    cpu_worst=0
    for name in "${names[@]}"; do
        file="$data/models/$name.gguf"
        pred=$("$bin" --data-dir "$data" --state-dir "$cpu_state" --no-progress predict "$file" --json \
            --cpu-only --prompt-tokens "$prompt" --response-tokens "$response" --ctx "$ctx")
        row=$(jq -n -r --argjson p "$pred" --slurpfile m "$data/measured-$name.json" --arg name "$name" '
          def err(a; b): (a - b) / b * 100;
          ($m[0]) as $m
          | ($m.prompt_tokens / $m.on_cpu_prefill_tokens_per_s + $m.response_tokens / $m.on_cpu_decode_tokens_per_s) as $turn
          | [$name, $p.decode_tokens_per_s, $m.on_cpu_decode_tokens_per_s, err($p.decode_tokens_per_s; $m.on_cpu_decode_tokens_per_s),
             $p.prefill_tokens_per_s, $m.on_cpu_prefill_tokens_per_s, err($p.prefill_tokens_per_s; $m.on_cpu_prefill_tokens_per_s),
             $p.turn_s, $turn, err($p.turn_s; $turn)] | @tsv')
        IFS=$'\t' read -r n dp dm de pp pm pe tp tm te <<<"$row"
        printf '%-20s | %8.2f %8.2f %+6.1f | %8.1f %8.1f %+6.1f | %7.2f %7.2f %+6.1f\n' \
            "$n" "$dp" "$dm" "$de" "$pp" "$pm" "$pe" "$tp" "$tm" "$te"
        cpu_worst=$(awk -v w="$cpu_worst" -v a="$de" -v b="$te" 'BEGIN{
            a = a < 0 ? -a : a; b = b < 0 ? -b : b; if (a > w) w = a; if (b > w) w = b; print w }')
    done
    echo "on-CPU: largest decode or turn error $(printf '%.1f' "$cpu_worst")%"
else
    echo
    echo "(on-CPU comparison skipped: it is meaningful only with THREADS=1, where no thread waits for"
    echo " another at a barrier; with more threads on-CPU time counts every thread's spinning)"
fi

echo
if awk -v w="$worst" -v l="$limit_pct" 'BEGIN{exit !(w <= l)}'; then
    echo "accuracy: every decode and turn error within ${limit_pct}% (largest $(printf '%.1f' "$worst")%)"
else
    echo "accuracy: NOT within ${limit_pct}% (largest error $(printf '%.1f' "$worst")%)"
    echo "  (on a machine shared with other work, rerun when it is idle: load average $(loadavg);"
    echo "   the on-CPU table above shows the predictor's error without the waiting for a CPU)"
    exit 1
fi

#!/usr/bin/env bash
# The CPU kernels chosen at run time against the fixed AVX2 build they replaced, side by side.
#
# 1. Writes a GGUF with random weights in the shape of Qwen2.5-1.5B as a Q5_K_M file
#    (examples/write_gguf.rs, llama.cpp's Q5_K_M mix; cached across runs).
# 2. In ROUNDS (default 3) alternating rounds, runs `bench --json --bench-model FILE` once with
#    the variant this machine chooses (no --cpu-variant) and once per variant of BASELINES
#    (default "haswell", the AVX2 kernels of the earlier fixed build) forced with --cpu-variant,
#    at a PROMPT-token prompt (default 512) and GEN generated tokens (default 16).
# 3. Prints each variant's prefill and decode tokens/s (median and range over the rounds), the
#    chosen variant's name, whether its check passed and the variants passed over, and the ratio
#    of the chosen variant's median prefill to each baseline's. Exits 1 when the chosen variant is
#    not an AVX-512 one while the CPU has AVX-512, or when its prefill is under MIN_RATIO
#    (default 1.6) times the first baseline's.
#
# Usage (from anywhere; builds what it runs, CARGO_TARGET_DIR is honoured):
#   bench/bench-cpu-variants.sh [DATA_DIR]        (default DATA_DIR: target/bench-cpu-variants)
# THREADS fixes llama.cpp's thread count (default: all cores).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_build write_gguf
write=$example_dir/write_gguf

data=${1:-target/bench-cpu-variants}
mkdir -p "$data"
rounds=${ROUNDS:-3}
prompt=${PROMPT:-512}
gen=${GEN:-16}
threads=${THREADS:-$(nproc)}
min_ratio=${MIN_RATIO:-1.6}
read -r -a baselines <<<"${BASELINES:-haswell}"

model="$data/qwen2.5-1.5b-Q5_K_M.gguf"
"$write" --shape qwen2.5-1.5b-instruct-q4_k_m --layout Q5_K_M --out "$model" >/dev/null

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "model: $(basename "$model") ($(du -m "$model" | cut -f1) MiB), $prompt-token prompt, $gen generated, $threads threads, $rounds alternating rounds"

run() { # run NAME [--cpu-variant V]
    local name=$1
    shift
    "$bin" --data-dir "$data" --no-progress "$@" bench --json --no-save --bench-model "$model" \
        --threads "$threads" --prompt-tokens "$prompt" --gen-tokens "$gen" --budget 3 >"$data/$name.json"
    jq '.quants[0].prefill_tokens_per_s.median' "$data/$name.json" >>"$data/$name.pp"
    jq '.quants[0].decode_tokens_per_s.median' "$data/$name.json" >>"$data/$name.tg"
}
names=(chosen "${baselines[@]}")
for n in "${names[@]}"; do : >"$data/$n.pp"; : >"$data/$n.tg"; done
for r in $(seq "$rounds"); do
    run chosen
    cp "$data/chosen.json" "$data/chosen-$r.json"
    for b in "${baselines[@]}"; do
        run "$b" --cpu-variant "$b"
    done
    echo "  round $r done, load average $(cut -d' ' -f1 /proc/loadavg)"
done

median() { sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
range() { sort -g | awk 'NR==1{lo=$1} {hi=$1} END {printf "%.0f-%.0f", lo, hi}'; }
chosen_name=$(jq -r '.cpu_variant.name' "$data/chosen.json")
echo
jq -r '"chosen: \(.cpu_variant.name) (\(.cpu_variant.simd_level); check passed: \(.cpu_variant.checked))" +
  (if (.cpu_variant.rejected | length) > 0
   then "; passed over: " + ([.cpu_variant.rejected[] | "\(.name): \(.reason)"] | join("; "))
   else "" end)' "$data/chosen.json"
printf '%-16s %16s %16s\n' variant "prefill tok/s" "decode tok/s"
for n in "${names[@]}"; do
    label=$n
    [ "$n" = chosen ] && label="$chosen_name (chosen)"
    printf '%-16s %8.1f (%s) %8.1f (%s)\n' "$label" \
        "$(median <"$data/$n.pp")" "$(range <"$data/$n.pp")" \
        "$(median <"$data/$n.tg")" "$(range <"$data/$n.tg")"
done
pp_chosen=$(median <"$data/chosen.pp")
status=0
for b in "${baselines[@]}"; do
    ratio=$(awk -v a="$pp_chosen" -v b="$(median <"$data/$b.pp")" 'BEGIN{printf "%.2f", a/b}')
    echo "prefill $chosen_name / $b: ${ratio}x"
done
first=${baselines[0]}
ratio=$(awk -v a="$pp_chosen" -v b="$(median <"$data/$first.pp")" 'BEGIN{printf "%.2f", a/b}')
if grep -q -w avx512bw /proc/cpuinfo && ! jq -e '.cpu_variant.simd_level | startswith("avx512") or . == "amx"' "$data/chosen.json" >/dev/null; then
    echo "FAIL: the CPU has AVX-512 but the chosen variant is $chosen_name"
    status=1
fi
if ! awk -v r="$ratio" -v m="$min_ratio" 'BEGIN{exit !(r >= m)}'; then
    echo "FAIL: prefill of $chosen_name is ${ratio}x $first's, under ${min_ratio}x (load average $(cut -d' ' -f1 /proc/loadavg))"
    status=1
fi
exit $status

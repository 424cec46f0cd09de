#!/usr/bin/env bash
# Download throughput of `minerva-setup download` on loopback: several connections against
# one where the server caps each connection, and against `curl -o` where it does not.
#
# Serves files of random bytes from 127.0.0.1 with the repository's loopback server
# (examples/loopback_server.rs: Range support, optionally a rate cap per connection), then:
#
# (a) capped: every connection limited to CAP_MIB_S MiB/s (default 16, as CDNs cap each
#     connection), a CAPPED_MIB MiB file (default 256), RUNS alternating rounds of
#       minerva-setup download --connections 1
#       minerva-setup download --connections 4
#     target: 4 connections at least 3.5 times as fast as one.
# (b) uncapped: a SIZE_MIB MiB file (default 512), RUNS alternating rounds (after one discarded
#     warm-up each) of
#       curl -s -o FILE URL                                  (nothing else: no hash, no fsync)
#       curl -s -o FILE URL && sync FILE                     (durable on disk, no hash)
#       curl -s -o FILE URL && sha256sum FILE && sync FILE   (what the download also does)
#       minerva-setup download --connections 1               (sha256 while streaming, fsync, rename)
#       minerva-setup download                               (4 connections, the default)
#     target: minerva-setup at least 0.9 times the throughput of `curl -o`.
#
# Every download ends with a byte comparison against the served file. `sync` runs before every
# download so that none pays for another's dirty pages. Prints medians and the spread (min-max)
# of each, the ratios, the peak RSS, the machine (lscpu model name, CPUs) and the load average
# before and after.
#
# Usage: bench/bench-download.sh            (builds the release binary and the server)
#        RUNS=5 SIZE_MIB=1024 CAPPED_MIB=128 bench/bench-download.sh
set -euo pipefail

size_mib=${SIZE_MIB:-512}
capped_mib=${CAPPED_MIB:-256}
cap_mib_s=${CAP_MIB_S:-16}
runs=${RUNS:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

command -v curl >/dev/null || { echo "bench-download: curl is needed" >&2; exit 2; }
cargo build --release --quiet --bin minerva-setup --example loopback_server
target_dir=${CARGO_TARGET_DIR:-$root/target}
bin=$target_dir/release/minerva-setup
server_bin=$target_dir/release/examples/loopback_server

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-download.XXXXXX")
server_pids=()
cleanup() {
    for p in "${server_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

machine="$(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}'), $(nproc) CPUs"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# Write NAME of MIB MiB of random bytes and its sha256; serve it (capped at BYTES_PER_S when
# given) and set `served_url`.
serve() {
    local name=$1 mib=$2 rate=${3:-}
    head -c $((mib * 1024 * 1024)) /dev/urandom >"$work/$name"
    sha256sum "$work/$name" | cut -d' ' -f1 >"$work/$name.sha"
    # shellcheck disable=SC2086 # no rate: no third argument
    "$server_bin" "$work/$name" 0 $rate >"$work/$name.url" 2>/dev/null &
    server_pids+=("$!")
    for _ in $(seq 200); do [ -s "$work/$name.url" ] && break; sleep 0.05; done
    served_url=$(cat "$work/$name.url")
}

# Run a command, print "wall_seconds peak_rss_kib".
measure() {
    python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t0 = time.monotonic()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
t1 = time.monotonic()
print(f"{t1 - t0:.3f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
PY
}

# minerva-setup download of FILE (served at URL) with extra flags; checks the result.
run_minerva() {
    local file=$1 url=$2
    shift 2
    rm -rf "$work/models"
    sync
    measure "$bin" download --url "$url" --sha256 "$(cat "$work/$file.sha")" \
        --size "$(stat -c %s "$work/$file")" --models-dir "$work/models" \
        --no-hf-cache --no-progress --quiet "$@"
    cmp -s "$work/models/$file" "$work/$file" || { echo "bench-download: downloaded file differs" >&2; exit 1; }
}

run_curl() {
    rm -f "$work/curl.out"
    sync
    measure curl -s -f -o "$work/curl.out" "$1"
}

run_curl_sync() {
    rm -f "$work/curl.out"
    sync
    # shellcheck disable=SC2016 # $1 and $2 are the inner shell's arguments
    measure sh -c 'curl -s -f -o "$1" "$2" && sync "$1"' sh "$work/curl.out" "$1"
}

run_curl_full() {
    rm -f "$work/curl.out"
    sync
    # shellcheck disable=SC2016 # $1 and $2 are the inner shell's arguments
    measure sh -c 'curl -s -f -o "$1" "$2" && sha256sum "$1" >/dev/null && sync "$1"' sh "$work/curl.out" "$1"
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
spread() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%.2f-%.2f", lo, hi}'; }
# "label median spread MiB/s" for a list of times and a size in bytes.
row() {
    local label=$1 size=$2
    shift 2
    local m
    m=$(median "$@")
    awk -v l="$label" -v m="$m" -v sp="$(spread "$@")" -v size="$size" \
        'BEGIN {printf "  %-34s %7.2f s (%s)  %8.1f MiB/s\n", l, m, sp, size / m / 1048576}'
}

echo "(a) capped: ${capped_mib} MiB, every connection at ${cap_mib_s} MiB/s..." >&2
serve capped.gguf "$capped_mib" $((cap_mib_s * 1024 * 1024))
capped_url=$served_url
capped_size=$(stat -c %s "$work/capped.gguf")
one=() four=() rss4=0
for i in $(seq "$runs"); do
    read -r t _ <<<"$(run_minerva capped.gguf "$capped_url" --connections 1)"
    one+=("$t")
    read -r t r <<<"$(run_minerva capped.gguf "$capped_url" --connections 4)"
    four+=("$t"); [ "$r" -gt "$rss4" ] && rss4=$r
    echo "  round $i: 1 connection ${one[-1]} s, 4 connections ${four[-1]} s" >&2
done

echo "(b) uncapped: ${size_mib} MiB..." >&2
serve model.gguf "$size_mib"
url=$served_url
size=$(stat -c %s "$work/model.gguf")
echo "  warm-up..." >&2
_=$(run_curl "$url")
_=$(run_minerva model.gguf "$url")
curl_t=() sync_t=() full_t=() m1_t=() m4_t=() curl_rss=0 m1_rss=0 m4_rss=0
for i in $(seq "$runs"); do
    read -r t r <<<"$(run_curl "$url")"
    curl_t+=("$t"); [ "$r" -gt "$curl_rss" ] && curl_rss=$r
    read -r t _ <<<"$(run_curl_sync "$url")"
    sync_t+=("$t")
    read -r t _ <<<"$(run_curl_full "$url")"
    full_t+=("$t")
    read -r t r <<<"$(run_minerva model.gguf "$url" --connections 1)"
    m1_t+=("$t"); [ "$r" -gt "$m1_rss" ] && m1_rss=$r
    read -r t r <<<"$(run_minerva model.gguf "$url")"
    m4_t+=("$t"); [ "$r" -gt "$m4_rss" ] && m4_rss=$r
    echo "  round $i: curl ${curl_t[-1]} s, curl+sync ${sync_t[-1]} s, curl+sha256sum+sync ${full_t[-1]} s, minerva-setup 1 connection ${m1_t[-1]} s, 4 connections ${m4_t[-1]} s" >&2
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo "machine: $machine"
echo "load average: $load_before before, $(cut -d' ' -f1-3 /proc/loadavg) after"
echo "(a) ${capped_mib} MiB, each connection capped at ${cap_mib_s} MiB/s, median (min-max) of $runs rounds"
row "minerva-setup --connections 1" "$capped_size" "${one[@]}"
row "minerva-setup --connections 4" "$capped_size" "${four[@]}"
echo "  speed-up, 4 connections / 1: $(ratio "$(median "${one[@]}")" "$(median "${four[@]}")")x (target 3.5x); peak RSS $((rss4 / 1024)) MiB"
echo "(b) ${size_mib} MiB uncapped, median (min-max) of $runs rounds"
row "curl -o" "$size" "${curl_t[@]}"
row "curl -o + sync" "$size" "${sync_t[@]}"
row "curl -o + sha256sum + sync" "$size" "${full_t[@]}"
row "minerva-setup --connections 1" "$size" "${m1_t[@]}"
row "minerva-setup (4 connections)" "$size" "${m4_t[@]}"
c=$(median "${curl_t[@]}") y=$(median "${sync_t[@]}") f=$(median "${full_t[@]}")
for m in 1 4; do
    if [ "$m" = 1 ]; then t=$(median "${m1_t[@]}"); else t=$(median "${m4_t[@]}"); fi
    echo "  minerva-setup $m connection(s), throughput relative to curl -o: $(ratio "$c" "$t")x (target 0.9x), to curl -o + sync: $(ratio "$y" "$t")x, to curl -o + sha256sum + sync: $(ratio "$f" "$t")x"
done
echo "  peak RSS: curl $((curl_rss / 1024)) MiB, minerva-setup 1 connection $((m1_rss / 1024)) MiB, 4 connections $((m4_rss / 1024)) MiB (sha256, fsync and rename included)"

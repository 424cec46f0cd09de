#!/usr/bin/env bash
# Download throughput and memory of `minerva-setup download` against `curl -o` on loopback.
#
# Serves one file of SIZE_MIB MiB (default 1024) of random bytes from 127.0.0.1 with the
# repository's loopback server (examples/loopback_server.rs: sendfile, Range support), then
# downloads it RUNS times (default 3, after one discarded warm-up each) alternately with
#   curl -s -o FILE URL                                   (nothing else: no hash, no fsync)
#   curl -s -o FILE URL && sync FILE                      (the same, but durable on disk)
#   minerva-setup download --url URL --sha256 ... --size  (hash while streaming, fsync, rename)
# and prints the median wall time and throughput of each, the ratios, and the peak RSS
# (from /usr/bin/time -v, else getrusage via python3). `sync` runs before every download so
# that neither pays for the other's dirty pages.
#
# Usage: bench/bench-download.sh            (after `cargo build --release`)
#        SIZE_MIB=4096 RUNS=5 bench/bench-download.sh
set -euo pipefail

size_mib=${SIZE_MIB:-1024}
runs=${RUNS:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

command -v curl >/dev/null || { echo "bench-download: curl is needed" >&2; exit 2; }
cargo build --release --quiet --bin minerva-setup --example loopback_server
bin=$root/target/release/minerva-setup
server_bin=$root/target/release/examples/loopback_server

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-download.XXXXXX")
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

echo "writing a ${size_mib} MiB test file..." >&2
head -c $((size_mib * 1024 * 1024)) /dev/urandom >"$work/model.gguf"
size=$(stat -c %s "$work/model.gguf")
sha=$(sha256sum "$work/model.gguf" | cut -d' ' -f1)

"$server_bin" "$work/model.gguf" >"$work/url" &
server_pid=$!
for _ in $(seq 100); do [ -s "$work/url" ] && break; sleep 0.05; done
url=$(cat "$work/url")

# Run a command, print "wall_seconds peak_rss_kib".
measure() {
    if [ -x /usr/bin/time ]; then
        local t0 t1
        t0=$(date +%s.%N)
        /usr/bin/time -v -o "$work/time.txt" "$@" >/dev/null
        t1=$(date +%s.%N)
        local rss
        rss=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$work/time.txt")
        echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}') $rss"
    else
        python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t0 = time.monotonic()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
t1 = time.monotonic()
print(f"{t1 - t0} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
PY
    fi
}

run_curl() {
    rm -f "$work/curl.out"
    sync
    measure curl -s -f -o "$work/curl.out" "$url"
}

run_curl_sync() {
    rm -f "$work/curl.out"
    sync
    # shellcheck disable=SC2016 # $1 and $2 are the inner shell's arguments
    measure sh -c 'curl -s -f -o "$1" "$2" && sync "$1"' sh "$work/curl.out" "$url"
}

run_minerva() {
    rm -rf "$work/models"
    sync
    measure "$bin" download --url "$url" --sha256 "$sha" --size "$size" \
        --models-dir "$work/models" --no-hf-cache --no-progress --quiet
    cmp -s "$work/models/model.gguf" "$work/model.gguf" || { echo "bench-download: downloaded file differs" >&2; exit 1; }
}

echo "warm-up..." >&2
run_curl >/dev/null
run_minerva >/dev/null
curl_times=() sync_times=() minerva_times=() curl_rss=0 minerva_rss=0
for i in $(seq "$runs"); do
    read -r t r < <(run_curl)
    curl_times+=("$t"); [ "$r" -gt "$curl_rss" ] && curl_rss=$r
    read -r t r < <(run_curl_sync)
    sync_times+=("$t")
    read -r t r < <(run_minerva)
    minerva_times+=("$t"); [ "$r" -gt "$minerva_rss" ] && minerva_rss=$r
    echo "run $i: curl ${curl_times[-1]} s, curl+sync ${sync_times[-1]} s, minerva-setup ${minerva_times[-1]} s" >&2
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
curl_t=$(median "${curl_times[@]}")
sync_t=$(median "${sync_times[@]}")
minerva_t=$(median "${minerva_times[@]}")
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
awk -v size="$size" -v ct="$curl_t" -v st="$sync_t" -v mt="$minerva_t" -v cr="$curl_rss" -v mr="$minerva_rss" -v runs="$runs" 'BEGIN {
    mib = 1024 * 1024
    printf "file            %d MiB on 127.0.0.1, median of %d runs\n", size / mib, runs
    printf "curl -o         %6.2f s  %7.1f MiB/s  peak RSS %5.1f MiB\n", ct, size / ct / mib, cr / 1024
    printf "curl -o + sync  %6.2f s  %7.1f MiB/s\n", st, size / st / mib
    printf "minerva-setup   %6.2f s  %7.1f MiB/s  peak RSS %5.1f MiB  (sha256 + fsync + rename included)\n", mt, size / mt / mib, mr / 1024
    printf "throughput ratio minerva-setup / curl -o:        %.0f%%\n", 100 * ct / mt
    printf "throughput ratio minerva-setup / curl -o + sync: %.0f%%\n", 100 * st / mt
}'

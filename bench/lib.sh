# shellcheck shell=bash
# Shared set-up of the bench scripts; source it from the repository root.
#   bench_build EXAMPLE...   builds the release binary and the named examples (seconds once
#                            llama.cpp is built), checks that jq is there, and sets
#                            target_dir, bin (minerva-setup) and example_dir.
# CARGO_TARGET_DIR is honoured.
bench_build() {
    command -v jq >/dev/null || { echo "error: jq is needed to read the JSON documents" >&2; exit 2; }
    local args=(--bin minerva-setup)
    local e
    for e in "$@"; do args+=(--example "$e"); done
    cargo build --release --quiet --locked "${args[@]}"
    target_dir=${CARGO_TARGET_DIR:-target}
    # shellcheck disable=SC2034 # read by the scripts that source this file
    bin=$target_dir/release/minerva-setup
    # shellcheck disable=SC2034
    example_dir=$target_dir/release/examples
}

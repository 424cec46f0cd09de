#!/usr/bin/env bash
# Set up minerva-setup on a Debian/Ubuntu server: system packages, build, install the binary
# with llama.cpp's libraries (<prefix>/lib/minerva-setup: libllama, libggml and one CPU backend
# per x86-64 level, chosen at run time), shell completions and man page, and optionally a
# systemd unit that re-tiers at boot.
# Idempotent: running it again changes nothing that is already in place.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: installers/install.sh [OPTIONS]

Options:
  --prefix DIR      install below DIR (default: /usr/local as root, ~/.local otherwise)
  --binary FILE     install this prebuilt binary instead of building from source, with the
                    llama.cpp libraries it runs with (next to it, in ../lib/minerva-setup, or
                    in MINERVA_LIB_DIR)
  --no-apt          do not install system packages (cmake, clang, libclang-dev, ...)
  --systemd         install and enable minerva-retier.service (root only)
  --run ARGS        after installing, run `minerva-setup ARGS` (e.g. --run plan)
  -h, --help        show this help

Without cargo on PATH (or in ~/.cargo/bin), Rust is installed with rustup first.
Environment: CARGO (cargo binary to use), SUDO (command used for root steps when not root).
USAGE
}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix=""
binary=""
apt=1
systemd=0
run_args=""

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
        --binary) binary=${2:?--binary needs a file}; shift 2 ;;
        --no-apt) apt=0; shift ;;
        --systemd) systemd=1; shift ;;
        --run) run_args=${2:?--run needs arguments, e.g. --run plan}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done

is_root=0
[ "$(id -u)" -eq 0 ] && is_root=1
sudo_cmd=()
if [ "$is_root" -eq 0 ]; then sudo_cmd=("${SUDO:-sudo}"); fi
if [ -z "$prefix" ]; then
    if [ "$is_root" -eq 1 ]; then prefix=/usr/local; else prefix="$HOME/.local"; fi
fi

log() { printf 'install.sh: %s\n' "$*" >&2; }

# 1. System packages the build needs (llama.cpp is built from source with cmake and bindgen).
if [ "$apt" -eq 1 ] && [ -z "$binary" ]; then
    packages=(build-essential cmake clang libclang-dev pkg-config curl)
    missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing system packages: ${missing[*]}"
        "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    else
        log "system packages already installed"
    fi
fi

# 2. Build (unless a binary was given).
if [ -z "$binary" ]; then
    cargo_bin=${CARGO:-cargo}
    if ! command -v "$cargo_bin" >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
        cargo_bin="$HOME/.cargo/bin/cargo"
    fi
    if ! command -v "$cargo_bin" >/dev/null 2>&1; then
        log "Rust not found: installing it with rustup (https://rustup.rs) for $(id -un)"
        if ! curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal; then
            log "error: could not install Rust; install it yourself (https://rustup.rs) and run this script again"
            exit 1
        fi
        cargo_bin="$HOME/.cargo/bin/cargo"
    fi
    log "building minerva-setup (release; the first build compiles llama.cpp and takes minutes)"
    (cd "$repo" && "$cargo_bin" build --release --locked)
    binary="${CARGO_TARGET_DIR:-$repo/target}/release/minerva-setup"
fi
if [ ! -x "$binary" ]; then
    log "error: '$binary' is not an executable file"
    exit 1
fi

# The libraries the binary runs with, as it finds them itself (its run path and library search).
if ! libs=$("$binary" __libs); then
    log "error: '$binary' cannot find llama.cpp's libraries; put them in its ../lib/minerva-setup or point MINERVA_LIB_DIR at them"
    exit 1
fi

# 3. Install binary, libraries, completions and man page (install(1) replaces files atomically
#    enough and leaves identical ones as they are).
as_needed=()
if [ ! -w "$(dirname "$prefix")" ] && [ ! -w "$prefix" ] && [ "$is_root" -eq 0 ]; then as_needed=("${sudo_cmd[@]}"); fi
libdir="$prefix/lib/minerva-setup"
"${as_needed[@]}" install -d "$prefix/bin" "$libdir" "$prefix/share/man/man1" \
    "$prefix/share/bash-completion/completions" "$prefix/share/zsh/site-functions" \
    "$prefix/share/fish/vendor_completions.d"
keep=()
while IFS= read -r lib; do
    [ -n "$lib" ] || continue
    name=$(basename "$lib")
    keep+=("$name")
    if ! cmp -s "$lib" "$libdir/$name" 2>/dev/null; then
        "${as_needed[@]}" install -m 0644 "$lib" "$libdir/$name"
    fi
done <<<"$libs"
# Libraries of an earlier version that this binary no longer uses.
for old in "$libdir"/*; do
    [ -f "$old" ] || continue
    case " ${keep[*]} " in *" $(basename "$old") "*) ;; *) "${as_needed[@]}" rm -f "$old" ;; esac
done
if ! [ "$binary" -ef "$prefix/bin/minerva-setup" ]; then
    "${as_needed[@]}" install -m 0755 "$binary" "$prefix/bin/minerva-setup"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$prefix/bin/minerva-setup" completions bash >"$tmp/minerva-setup.bash"
"$prefix/bin/minerva-setup" completions zsh >"$tmp/_minerva-setup"
"$prefix/bin/minerva-setup" completions fish >"$tmp/minerva-setup.fish"
"$prefix/bin/minerva-setup" man >"$tmp/minerva-setup.1"
"${as_needed[@]}" install -m 0644 "$tmp/minerva-setup.bash" "$prefix/share/bash-completion/completions/minerva-setup"
"${as_needed[@]}" install -m 0644 "$tmp/_minerva-setup" "$prefix/share/zsh/site-functions/_minerva-setup"
"${as_needed[@]}" install -m 0644 "$tmp/minerva-setup.fish" "$prefix/share/fish/vendor_completions.d/minerva-setup.fish"
"${as_needed[@]}" install -m 0644 "$tmp/minerva-setup.1" "$prefix/share/man/man1/minerva-setup.1"
log "installed $prefix/bin/minerva-setup ($("$prefix/bin/minerva-setup" --version)) and ${#keep[@]} libraries in $libdir"

# 4. Optional systemd unit: re-tier at boot when the hardware changed.
if [ "$systemd" -eq 1 ]; then
    if [ "$is_root" -ne 1 ]; then
        log "error: --systemd needs root"
        exit 1
    fi
    unit=/etc/systemd/system/minerva-retier.service
    sed "s|@BINDIR@|$prefix/bin|g" "$repo/installers/systemd/minerva-retier.service" >"$tmp/unit"
    if ! cmp -s "$tmp/unit" "$unit" 2>/dev/null; then
        install -m 0644 "$tmp/unit" "$unit"
        systemctl daemon-reload
        log "installed $unit"
    fi
    systemctl enable minerva-retier.service >/dev/null
fi

# 5. Optionally run the main job.
if [ -n "$run_args" ]; then
    # Word splitting of the argument string is intended here.
    # shellcheck disable=SC2086
    "$prefix/bin/minerva-setup" $run_args
fi

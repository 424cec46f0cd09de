//! Every `MINERVA_*` environment variable in one place.
//!
//! Flags read their environment variable through clap's `env = ...` using these constants, so
//! `--help` shows them and a flag given on the command line always wins.

pub const MINERVA_JSON: &str = "MINERVA_JSON";
pub const MINERVA_HARDWARE: &str = "MINERVA_HARDWARE";
pub const MINERVA_REGISTRY: &str = "MINERVA_REGISTRY";
pub const MINERVA_TIERS: &str = "MINERVA_TIERS";
pub const MINERVA_MODELS_DIR: &str = "MINERVA_MODELS_DIR";
pub const MINERVA_CONFIG_DIR: &str = "MINERVA_CONFIG_DIR";
pub const MINERVA_STATE_DIR: &str = "MINERVA_STATE_DIR";
pub const MINERVA_DATA_DIR: &str = "MINERVA_DATA_DIR";
pub const MINERVA_PROBE_ROOT: &str = "MINERVA_PROBE_ROOT";
pub const MINERVA_NO_PROGRESS: &str = "MINERVA_NO_PROGRESS";
pub const MINERVA_DOWNLOAD_RETRIES: &str = "MINERVA_DOWNLOAD_RETRIES";
pub const MINERVA_STALL_TIMEOUT_S: &str = "MINERVA_STALL_TIMEOUT_S";
pub const MINERVA_RETRY_BASE_MS: &str = "MINERVA_RETRY_BASE_MS";
pub const MINERVA_NO_HF_CACHE: &str = "MINERVA_NO_HF_CACHE";
pub const MINERVA_CONNECTIONS: &str = "MINERVA_CONNECTIONS";
pub const MINERVA_MIN_RANGE_BYTES: &str = "MINERVA_MIN_RANGE_BYTES";
pub const MINERVA_YES: &str = "MINERVA_YES";
pub const MINERVA_TIER: &str = "MINERVA_TIER";
pub const MINERVA_MODEL: &str = "MINERVA_MODEL";
pub const MINERVA_MAX_LATENCY: &str = "MINERVA_MAX_LATENCY";
pub const MINERVA_MIRROR: &str = "MINERVA_MIRROR";
pub const MINERVA_THREADS: &str = "MINERVA_THREADS";
pub const MINERVA_NO_GPU: &str = "MINERVA_NO_GPU";
pub const MINERVA_ON_MISS: &str = "MINERVA_ON_MISS";
pub const MINERVA_REQUIRE: &str = "MINERVA_REQUIRE";
pub const MINERVA_BENCH_MODEL: &str = "MINERVA_BENCH_MODEL";
pub const MINERVA_CONCURRENCY: &str = "MINERVA_CONCURRENCY";
pub const MINERVA_CPU_VARIANT: &str = "MINERVA_CPU_VARIANT";
pub const MINERVA_LIB_DIR: &str = "MINERVA_LIB_DIR";

/// Shown at the end of `--help`.
pub const ENV_HELP: &str = "\
Environment:
  MINERVA_JSON=1           same as --json
  MINERVA_HARDWARE=FILE    same as --hardware: plan for the machine a profile describes
  MINERVA_REGISTRY=DIR     same as --registry
  MINERVA_TIERS=FILE       same as --tiers
  MINERVA_MODELS_DIR=DIR   where GGUF files are stored
  MINERVA_CONFIG_DIR=DIR   where the runtime config is written
  MINERVA_STATE_DIR=DIR    where state (fingerprint, bench, plan, verification) is kept
  MINERVA_DATA_DIR=DIR     where benchmark models are cached
  MINERVA_PROBE_ROOT=DIR   read /proc and /sys below DIR instead of / (fixtures)
  MINERVA_NO_PROGRESS=1    no progress bars
  MINERVA_DOWNLOAD_RETRIES=N   same as download --retries
  MINERVA_STALL_TIMEOUT_S=S    same as download --stall-timeout
  MINERVA_RETRY_BASE_MS=MS     first retry delay of a download (default 1000)
  MINERVA_NO_HF_CACHE=1        same as download --no-hf-cache
  MINERVA_CONNECTIONS=N        same as download --connections (1 to 64, default 4)
  MINERVA_MIN_RANGE_BYTES=N    shortest range of a download on several connections (default 8 MiB)
  MINERVA_YES=1                same as install/retier --yes: never ask
  MINERVA_TIER=TIER            same as install --tier
  MINERVA_MODEL=ID             same as install --model
  MINERVA_MAX_LATENCY=S        same as install --max-latency
  MINERVA_MIRROR=URL           same as install --mirror (else HF_ENDPOINT)
  MINERVA_THREADS=N            same as install --threads
  MINERVA_NO_GPU=1             same as install --no-gpu
  MINERVA_ON_MISS=POLICY       same as install --on-miss (downgrade, warn, fail)
  MINERVA_REQUIRE=CAP,...      same as install --require (tool-call, chat-template)
  MINERVA_BENCH_MODEL=FILE     same as install --bench-model
  MINERVA_CONCURRENCY=N        same as --concurrency (plan, predict, install, verify): users at once
  MINERVA_CPU_VARIANT=NAME     same as --cpu-variant: run llama.cpp's CPU kernels built for NAME
  MINERVA_LIB_DIR=DIR          where llama.cpp's backend libraries are (default: <exe>/../lib/minerva-setup)
  HF_HUB_CACHE, HF_HOME    Hugging Face cache to reuse verified files from
  HF_TOKEN_PATH            token file (default $HF_HOME/token)
  HF_ENDPOINT, HF_TOKEN    Hugging Face mirror and access token (the token is never printed)
  NO_COLOR                 no colours";

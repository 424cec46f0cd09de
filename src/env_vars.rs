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
  HF_HUB_CACHE, HF_HOME    Hugging Face cache to reuse verified files from
  HF_TOKEN_PATH            token file (default $HF_HOME/token)
  HF_ENDPOINT, HF_TOKEN    Hugging Face mirror and access token (the token is never printed)
  NO_COLOR                 no colours";

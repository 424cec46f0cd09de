//! The runtime config: what the application (or an operator) needs to start the model exactly as
//! it was verified.
//!
//! Written atomically to `<config_dir>/config.json` only after verification passes, so a failed
//! install or re-tier never leaves a config pointing at an unverified model. Format (JSON,
//! `schema_version` 1):
//!
//! ```json
//! { "schema_version": 1, "tier": "cpu-light",
//!   "model": { "id": "...", "path": "/var/lib/minerva/models/x.gguf", "sha256": "...", "size_bytes": 1 },
//!   "threads": 2, "gpu_layers": 0, "context_tokens": 4096, "concurrency": 2,
//!   "promise": { "turn_s": 15.0, "cold_load_s": 30.0, "prompt_tokens": 500, "response_tokens": 150 },
//!   "verified": { "at": "2026-11-22T23:54:15Z", "load_s": 1.2, "ttft_s": 3.4, ... },
//!   "capabilities": { "stopping": { ... }, "answer": { "kind": "normal", ... },
//!                     "chat_template": { "source": "gguf", ... }, "tool_call": { ... }, ... },
//!   "llama_server": { "argv": ["llama-server", "-m", "..."], "command": "llama-server -m ..." } }
//! ```
//!
//! A model split in parts (llama.cpp's gguf-split) has `model.path` and `model.sha256` of its
//! first part, the file llama.cpp and llama-server are given, `model.size_bytes` of all parts
//! together, and `model.parts`: `[{"path": ..., "sha256": ..., "size_bytes": ...}, ...]`, every
//! part in order. A model in one file has no `parts`.
//!
//! Fields added after the first release (`capabilities`, `promise.requires`, `concurrency`,
//! `model.parts`) default when absent, so configs written before them keep loading.
//!
//! Several users: `context_tokens` is the context of *one* conversation and `concurrency` the
//! conversations in flight. llama-server's `--parallel N` divides `--ctx-size` among its N slots,
//! so the command line carries the total, `--ctx-size context_tokens × concurrency --parallel
//! concurrency`, and each slot gets the verified `context_tokens`. A file without `concurrency`
//! (written before it existed) is one user.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::types::capabilities::{Capabilities, Capability};
use crate::types::cpu_variant::CpuVariant;
use crate::types::time::Timestamp;

pub const CONFIG_SCHEMA_VERSION: u32 = 1;
pub const CONFIG_FILE: &str = "config.json";

/// The installed model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRef {
    pub id: String,
    /// The file llama.cpp is given: for a split model, its first part.
    pub path: PathBuf,
    /// The sha256 of the file at `path`.
    pub sha256: String,
    /// The model's size: for a split model, all parts together.
    pub size_bytes: u64,
    /// A split model's parts, the first (`path`) first; empty for a model in one file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PartRef>,
}

/// One installed part of a split model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRef {
    pub path: PathBuf,
    pub sha256: String,
    pub size_bytes: u64,
}

impl ModelRef {
    /// Every file of the model with its size: the parts of a split model, else the one file.
    pub fn files(&self) -> Vec<(&Path, u64)> {
        if self.parts.is_empty() {
            vec![(self.path.as_path(), self.size_bytes)]
        } else {
            self.parts
                .iter()
                .map(|p| (p.path.as_path(), p.size_bytes))
                .collect()
        }
    }
}

/// What the installed model is promised to deliver for one turn (the tier's promise, tightened
/// by `--max-latency`, or the measured figures after `--on-miss warn`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstalledPromise {
    pub turn_s: f64,
    pub cold_load_s: f64,
    pub prompt_tokens: u32,
    pub response_tokens: u32,
    /// Capabilities every later verification must find too (the tier's `requires` and the
    /// `--require` flags of the install).
    #[serde(default)]
    pub requires: Vec<Capability>,
}

/// What the verification run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verified {
    pub at: Timestamp,
    pub load_s: f64,
    pub ttft_s: f64,
    pub prefill_tokens_per_s: f64,
    pub decode_tokens_per_s: f64,
    pub turn_s: f64,
}

/// A ready command line for llama.cpp's server with the verified settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerCommand {
    pub argv: Vec<String>,
    /// The same, shell-quoted, for copying into a unit file or a terminal.
    pub command: String,
}

/// `<config_dir>/config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeConfig {
    pub schema_version: u32,
    pub tier: String,
    pub model: ModelRef,
    pub threads: u32,
    pub gpu_layers: u32,
    /// Context the model runs with (tokens of KV cache), not the trained context.
    #[serde(alias = "context_length")]
    pub context_tokens: u32,
    /// Conversations in flight at once, each with `context_tokens` of KV cache (llama-server's
    /// `--parallel`).
    #[serde(default = "one")]
    pub concurrency: u32,
    pub promise: InstalledPromise,
    pub verified: Verified,
    /// What the verification's capability checks found; absent in configs written before them.
    #[serde(default)]
    pub capabilities: Option<Capabilities>,
    /// Which of llama.cpp's CPU kernel variants the verification ran: the figures above hold for
    /// a server that runs the same kernels. Absent in configs written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_variant: Option<CpuVariant>,
    pub llama_server: ServerCommand,
}

fn one() -> u32 {
    1
}

impl RuntimeConfig {
    pub fn path(config_dir: &Path) -> PathBuf {
        config_dir.join(CONFIG_FILE)
    }
}

/// The `llama-server` invocation that reproduces the verified settings: `ctx` tokens of context
/// for each of `parallel` conversations, so `--ctx-size` is their total (llama-server divides it
/// among its `--parallel` slots).
pub fn llama_server_command(
    model: &Path,
    threads: u32,
    gpu_layers: u32,
    ctx: u32,
    parallel: u32,
) -> ServerCommand {
    let parallel = parallel.max(1);
    let argv: Vec<String> = vec![
        "llama-server".into(),
        "--model".into(),
        model.display().to_string(),
        "--threads".into(),
        threads.to_string(),
        "--n-gpu-layers".into(),
        gpu_layers.to_string(),
        "--ctx-size".into(),
        ctx.saturating_mul(parallel).to_string(),
        "--parallel".into(),
        parallel.to_string(),
        "--host".into(),
        "127.0.0.1".into(),
        "--port".into(),
        "8080".into(),
    ];
    let command = argv
        .iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    ServerCommand { argv, command }
}

/// Quote for POSIX shells only when needed.
fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@+,".contains(&b));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_written_before_the_capability_checks_still_loads() {
        let old = r#"{ "schema_version": 1, "tier": "cpu-light",
          "model": { "id": "m", "path": "/m.gguf", "sha256": "00", "size_bytes": 1 },
          "threads": 2, "gpu_layers": 0, "context_tokens": 4096,
          "promise": { "turn_s": 15.0, "cold_load_s": 30.0, "prompt_tokens": 500, "response_tokens": 150 },
          "verified": { "at": "2026-11-22T23:54:15Z", "load_s": 1.2, "ttft_s": 3.4,
                        "prefill_tokens_per_s": 100.0, "decode_tokens_per_s": 10.0, "turn_s": 12.0 },
          "llama_server": { "argv": ["llama-server"], "command": "llama-server" } }"#;
        let c: RuntimeConfig = serde_json::from_str(old).unwrap();
        assert_eq!(c.capabilities, None);
        assert!(c.promise.requires.is_empty());
    }

    #[test]
    fn server_command_carries_the_verified_settings_and_quotes_odd_paths() {
        let c = llama_server_command(Path::new("/srv/my models/it's.gguf"), 6, 33, 4096, 1);
        assert_eq!(c.argv[2], "/srv/my models/it's.gguf");
        assert!(
            c.command.contains(r"'/srv/my models/it'\''s.gguf'"),
            "{}",
            c.command
        );
        assert!(
            c.command
                .contains("--threads 6 --n-gpu-layers 33 --ctx-size 4096 --parallel 1"),
            "{}",
            c.command
        );
    }

    #[test]
    fn several_users_get_their_slots_and_the_total_context() {
        let c = llama_server_command(Path::new("/m.gguf"), 4, 0, 4096, 3);
        assert!(
            c.command.contains("--ctx-size 12288 --parallel 3"),
            "{}",
            c.command
        );
    }

    #[test]
    fn a_config_written_before_concurrency_is_one_user() {
        let json = r#"{"schema_version": 1, "tier": "cpu-light",
          "model": {"id": "m", "path": "/m.gguf", "sha256": "00", "size_bytes": 1},
          "threads": 2, "gpu_layers": 0, "context_length": 4096,
          "promise": {"turn_s": 15.0, "cold_load_s": 30.0, "prompt_tokens": 500, "response_tokens": 150},
          "verified": {"at": "2026-11-22T23:54:15Z", "load_s": 1.0, "ttft_s": 2.0,
                       "prefill_tokens_per_s": 100.0, "decode_tokens_per_s": 10.0, "turn_s": 9.0},
          "llama_server": {"argv": ["llama-server"], "command": "llama-server"}}"#;
        let c: RuntimeConfig = serde_json::from_str(json).unwrap();
        assert_eq!((c.concurrency, c.context_tokens), (1, 4096));
    }
}

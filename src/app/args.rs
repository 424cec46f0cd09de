//! The argument groups that several subcommands share, and the value parsers that validate
//! numeric flags once, at parse time. Each group is flattened into the subcommands that take it;
//! a subcommand's own flags live in its `cmd/*` file.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::env_vars::*;
use crate::fetch::{DEFAULT_CONNECTIONS, DEFAULT_MIN_RANGE_BYTES, MAX_CONNECTIONS};
use crate::pipeline::OnMiss;
use crate::select::WorkloadOverride;
use crate::types::capabilities::Capability;
use crate::types::workload::MAX_CONCURRENCY;

/// Flags every subcommand accepts.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print one JSON document on stdout and nothing else.
    #[arg(long, global = true, env = MINERVA_JSON, value_parser = clap::builder::FalseyValueParser::new())]
    pub json: bool,
    /// Print nothing but errors (and the JSON document with --json).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// No progress bars or progress lines.
    #[arg(long, global = true, env = MINERVA_NO_PROGRESS, value_parser = clap::builder::FalseyValueParser::new())]
    pub no_progress: bool,
    /// Use the hardware described by a profile file (from `probe --json`) instead of probing.
    #[arg(long, global = true, value_name = "FILE", env = MINERVA_HARDWARE)]
    pub hardware: Option<PathBuf>,
    /// Use the model registry in DIR (one JSON file per family) instead of the built-in one.
    #[arg(long, global = true, value_name = "DIR", env = MINERVA_REGISTRY)]
    pub registry: Option<PathBuf>,
    /// Use this tier table instead of the built-in tiers.json.
    #[arg(long, global = true, value_name = "FILE", env = MINERVA_TIERS)]
    pub tiers: Option<PathBuf>,
    /// Read /proc and /sys below DIR instead of / (for fixtures and chroots).
    #[arg(long, global = true, value_name = "DIR", env = MINERVA_PROBE_ROOT)]
    pub probe_root: Option<PathBuf>,
    /// Directory for downloaded models.
    #[arg(long, global = true, value_name = "DIR", env = MINERVA_MODELS_DIR)]
    pub models_dir: Option<PathBuf>,
    /// Directory for the runtime config.
    #[arg(long, global = true, value_name = "DIR", env = MINERVA_CONFIG_DIR)]
    pub config_dir: Option<PathBuf>,
    /// Directory for state (fingerprint, benchmark, plan, verification).
    #[arg(long, global = true, value_name = "DIR", env = MINERVA_STATE_DIR)]
    pub state_dir: Option<PathBuf>,
    /// Base directory for models, state and cached benchmark models (each overridable above).
    #[arg(long, global = true, value_name = "DIR", env = MINERVA_DATA_DIR)]
    pub data_dir: Option<PathBuf>,
    /// Run llama.cpp's CPU kernels built for NAME (`haswell`, `icelake`, `sandybridge`, `sse42`,
    /// ...) instead of the best this CPU runs: for the promise of a server that runs a fixed
    /// build. `probe` lists the variants present.
    #[arg(long, global = true, value_name = "NAME", env = MINERVA_CPU_VARIANT)]
    pub cpu_variant: Option<String>,
}

/// Flags that change the turn workload; shared with `plan`.
#[derive(Debug, Args, Clone, Copy)]
pub struct WorkloadArgs {
    /// Prompt tokens per turn (system prompt + history + question).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub prompt_tokens: Option<u32>,
    /// Tokens generated per answer.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub response_tokens: Option<u32>,
    /// Context length the model is loaded with.
    #[arg(long = "ctx", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub context_tokens: Option<u32>,
    /// Conversations in flight at once: each user sends the next turn as soon as its answer is
    /// complete, first prompts 1 s apart; the promise holds for the p95 per-user turn.
    #[arg(long, value_name = "N", env = MINERVA_CONCURRENCY, value_parser = clap::value_parser!(u32).range(1..=MAX_CONCURRENCY as i64))]
    pub concurrency: Option<u32>,
    /// Measured/predicted turn-time ratio to scale predictions by (default: the one the last
    /// verification on this hardware stored, else 1).
    #[arg(long = "correction", value_name = "RATIO", value_parser = positive_f64)]
    pub correction_ratio: Option<f64>,
}

impl WorkloadArgs {
    pub fn overrides(&self) -> WorkloadOverride {
        WorkloadOverride {
            prompt_tokens: self.prompt_tokens,
            response_tokens: self.response_tokens,
            context_tokens: self.context_tokens,
            concurrency: self.concurrency,
        }
    }
}

/// How a transfer behaves; shared by `download`, `install`, `retier` and the wizard.
#[derive(Debug, Clone, Args)]
pub struct TransferArgs {
    /// Do not reuse a copy from the local Hugging Face cache.
    #[arg(long, env = MINERVA_NO_HF_CACHE, value_parser = clap::builder::FalseyValueParser::new())]
    pub no_hf_cache: bool,
    /// Retries after consecutive transient failures (reset whenever bytes arrive).
    #[arg(long, value_name = "N", default_value_t = 5, env = MINERVA_DOWNLOAD_RETRIES)]
    pub retries: u32,
    /// Seconds without any data before a transfer is abandoned and retried.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0, env = MINERVA_STALL_TIMEOUT_S, value_parser = positive_f64)]
    pub stall_timeout: f64,
    /// First retry delay in milliseconds (doubles per retry).
    #[arg(long, value_name = "MS", default_value_t = 1000, env = MINERVA_RETRY_BASE_MS, hide = true)]
    pub retry_base_ms: u64,
    /// Connections to download on at once, each fetching one range of the file (1: one
    /// stream). Files under 16 MiB, and servers that ignore Range, use one.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CONNECTIONS, env = MINERVA_CONNECTIONS, value_parser = connections)]
    pub connections: u32,
    /// Shortest range one connection fetches, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MIN_RANGE_BYTES, env = MINERVA_MIN_RANGE_BYTES, hide = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub min_range_bytes: u64,
}

/// Everything the wizard would ask, as flags (each with a `MINERVA_*` variable; flags win).
#[derive(Debug, Args, Clone)]
pub struct InstallArgs {
    /// Answer every question with the recommendation; required without a terminal.
    #[arg(long, short = 'y', env = MINERVA_YES, value_parser = clap::builder::FalseyValueParser::new())]
    pub yes: bool,
    /// Install from this tier only.
    #[arg(long, value_name = "TIER", env = MINERVA_TIER)]
    pub tier: Option<String>,
    /// Install this model, whatever the tiers prefer: a registry id, or a file on Hugging Face
    /// (`hf:ORG/REPO/PATH.gguf`, `hf:ORG/REPO:QUANT`), planned in --tier's workload and promise
    /// or under --max-latency.
    #[arg(long, value_name = "MODEL", env = MINERVA_MODEL)]
    pub model: Option<String>,
    /// Branch, tag or commit of an `hf:` --model's repository [default: main].
    #[arg(long, value_name = "REV")]
    pub revision: Option<String>,
    /// Install a --model even if it does not fit in memory.
    #[arg(long)]
    pub force: bool,
    /// Seconds per turn you can accept; tightens every tier's promise.
    #[arg(long, value_name = "SECONDS", env = MINERVA_MAX_LATENCY, value_parser = positive_f64)]
    pub max_latency: Option<f64>,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// Hugging Face endpoint or mirror to download from (default: HF_ENDPOINT, else huggingface.co).
    #[arg(long, value_name = "URL", env = MINERVA_MIRROR)]
    pub mirror: Option<String>,
    /// llama.cpp threads (default: the benchmark's best, else the physical cores).
    #[arg(long, value_name = "N", env = MINERVA_THREADS, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// Run on the CPU only, even when a GPU could hold layers.
    #[arg(long, env = MINERVA_NO_GPU, value_parser = clap::builder::FalseyValueParser::new())]
    pub no_gpu: bool,
    /// When the installed model misses its promise: plan again and install the next tier down,
    /// keep it and record the real figures, or fail.
    #[arg(long, value_enum, value_name = "POLICY", default_value = "downgrade", env = MINERVA_ON_MISS)]
    pub on_miss: OnMissArg,
    /// A capability the verification must find, else it is a miss (repeatable): the model's own
    /// tool call matches the schema (`tool-call`), or it has a usable chat template
    /// (`chat-template`). Without it both are checked and shown but fail nothing, unless the
    /// tier requires them. A degenerate answer is always a miss.
    #[arg(long, value_enum, value_name = "CAPABILITY", env = MINERVA_REQUIRE, value_delimiter = ',')]
    pub require: Vec<RequireArg>,
    /// Benchmark this GGUF instead of the generated models.
    #[arg(long, value_name = "FILE", env = MINERVA_BENCH_MODEL)]
    pub bench_model: Option<PathBuf>,
    /// Do not benchmark: use the stored benchmark of this machine (unmeasured without one).
    #[arg(long)]
    pub skip_bench: bool,
    /// Remove other models from the models directory once the new one is verified.
    #[arg(long)]
    pub prune: bool,
    #[command(flatten)]
    pub transfer: TransferArgs,
}

impl InstallArgs {
    /// The flags' defaults with their `MINERVA_*` variables applied (for the bare `minerva-setup`).
    pub fn from_env() -> InstallArgs {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            args: InstallArgs,
        }
        <Defaults as clap::Parser>::parse_from(["minerva-setup"]).args
    }
}

/// `--on-miss`: the pipeline's [`OnMiss`] as a flag value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnMissArg {
    /// Plan again with the measured figures and install the next tier down.
    Downgrade,
    /// Keep the model and record the measured figures as the promise.
    Warn,
    /// Leave the previous config in place and fail.
    Fail,
}

impl From<OnMissArg> for OnMiss {
    fn from(a: OnMissArg) -> OnMiss {
        match a {
            OnMissArg::Downgrade => OnMiss::Downgrade,
            OnMissArg::Warn => OnMiss::Warn,
            OnMissArg::Fail => OnMiss::Fail,
        }
    }
}

/// `--require`: a [`Capability`] as a flag value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RequireArg {
    /// The model's own answer to a tool-call request is JSON matching the schema.
    ToolCall,
    /// The model has a chat template llama.cpp can apply.
    ChatTemplate,
}

impl From<RequireArg> for Capability {
    fn from(a: RequireArg) -> Capability {
        match a {
            RequireArg::ToolCall => Capability::ToolCall,
            RequireArg::ChatTemplate => Capability::ChatTemplate,
        }
    }
}

impl InstallArgs {
    /// `--require` as the pipeline's capabilities.
    pub fn required(&self) -> Vec<Capability> {
        self.require.iter().map(|r| Capability::from(*r)).collect()
    }
}

/// A finite number above zero: seconds (`--max-latency`, `--stall-timeout`) and ratios
/// (`--correction`). Checked once, at parse time, for every subcommand that takes the flag.
pub fn positive_f64(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(v) => Err(format!("must be a positive number, got {v}")),
        Err(_) => Err(format!("`{s}` is not a number")),
    }
}

/// `--connections` / `MINERVA_CONNECTIONS`: 1 to [`MAX_CONNECTIONS`].
pub fn connections(s: &str) -> Result<u32, String> {
    let range = format!(
        "give 1 to {MAX_CONNECTIONS} (--connections or {MINERVA_CONNECTIONS}; 1 is one stream)"
    );
    match s.trim().parse::<u32>() {
        Ok(n) if (1..=MAX_CONNECTIONS).contains(&n) => Ok(n),
        Ok(n) => Err(format!("{n} connections is out of range: {range}")),
        Err(_) => Err(format!("`{s}` is not a number of connections: {range}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_between_one_and_the_maximum() {
        assert_eq!(connections("1"), Ok(1));
        assert_eq!(connections(" 64 "), Ok(64));
        for bad in ["0", "65", "-1", "four", ""] {
            let e = connections(bad).unwrap_err();
            assert!(e.contains("MINERVA_CONNECTIONS"), "{bad}: {e}");
        }
    }

    #[test]
    fn positive_numbers_only() {
        assert_eq!(positive_f64("2.5"), Ok(2.5));
        assert_eq!(positive_f64(" 30 "), Ok(30.0));
        for bad in ["0", "-1", "nan", "inf", "", "ten"] {
            assert!(positive_f64(bad).is_err(), "{bad} was accepted");
        }
    }
}

//! `minerva-setup install`: probe, benchmark, plan, download, verify and write the runtime config,
//! unattended with `--yes`. The flags here are shared by `retier` and the wizard.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;

use crate::bench::runner::BenchOptions;
use crate::cli::{Ctx, Human};
use crate::cmd::download::{self, TransferArgs};
use crate::cmd::predict::WorkloadArgs;
use crate::env_vars::*;
use crate::exit::{Exit, Failure};
use crate::install::{
    self, BenchSource, InstallError, InstallReport, InstallSettings, OnMiss, Run,
};
use crate::profile::HardwareProfile;
use crate::select::SelectOptions;

/// Everything the wizard would ask, as flags (each with a `MINERVA_*` variable; flags win).
#[derive(Debug, Args, Clone)]
pub struct InstallArgs {
    /// Answer every question with the recommendation; required without a terminal.
    #[arg(long, short = 'y', env = MINERVA_YES, value_parser = clap::builder::FalseyValueParser::new())]
    pub yes: bool,
    /// Install from this tier only.
    #[arg(long, value_name = "TIER", env = MINERVA_TIER)]
    pub tier: Option<String>,
    /// Install this registry model, whatever the tiers prefer.
    #[arg(long, value_name = "MODEL_ID", env = MINERVA_MODEL)]
    pub model: Option<String>,
    /// Install a --model even if it does not fit in memory.
    #[arg(long)]
    pub force: bool,
    /// Seconds per turn you can accept; tightens every tier's promise.
    #[arg(long, value_name = "SECONDS", env = MINERVA_MAX_LATENCY)]
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
    pub on_miss: OnMiss,
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

pub fn run(ctx: &Ctx, args: &InstallArgs) -> Result<(), Failure> {
    require_yes_or_terminal(args.yes, "install")?;
    let hw = ctx.hardware(true)?;
    let settings = settings(ctx, &hw, args, "install")?;
    let progress = ctx.progress();
    let mut run = Run::start(&hw, &settings, progress.as_ref()).map_err(|e| failure(ctx, e))?;
    if !args.yes {
        crate::cmd::wizard::confirm_plan(&mut run)?;
    }
    let report = run.finish(progress.as_ref()).map_err(|e| failure(ctx, e))?;
    ctx.emit(&report)
}

/// Without `--yes`, a question needs a person at a terminal: never wait on a closed stdin.
pub fn require_yes_or_terminal(yes: bool, what: &str) -> Result<(), Failure> {
    if yes || (std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Ok(());
    }
    Err(Failure::new(Exit::Usage, anyhow::anyhow!("`{what}` needs answers but no terminal is attached"))
        .hint(format!("add --yes (or MINERVA_YES=1) to run `minerva-setup {what}` unattended with the recommendation")))
}

/// Resolve flags, environment and stored state into pipeline settings.
pub fn settings(
    ctx: &Ctx,
    hw: &HardwareProfile,
    a: &InstallArgs,
    action: &str,
) -> Result<InstallSettings, Failure> {
    if let Some(m) = a.max_latency {
        if !(m.is_finite() && m > 0.0) {
            return Err(Failure::new(
                Exit::Usage,
                anyhow::anyhow!("--max-latency must be a positive number of seconds"),
            ));
        }
    }
    let (registry, tiers) = crate::cmd::registry::load(ctx)?;
    let bench = if let Some(b) = &hw.bench {
        BenchSource::Given(b.clone(), "hardware profile".into())
    } else if a.skip_bench || ctx.hardware_file.is_some() {
        // A --hardware profile describes another machine: this machine's benchmark would lie.
        match crate::cmd::plan::load_bench(ctx, hw)? {
            (Some(b), src) => BenchSource::Given(b, src),
            (None, _) => BenchSource::None,
        }
    } else {
        let mut o = BenchOptions::new(ctx.paths.cache_dir.clone());
        o.threads = a.threads;
        o.bench_model = a.bench_model.clone();
        o.gpu = !a.no_gpu;
        BenchSource::Run(o)
    };
    Ok(InstallSettings {
        paths: ctx.paths.clone(),
        registry,
        tiers,
        select: SelectOptions {
            max_latency_s: a.max_latency,
            tier: a.tier.clone(),
            model: a.model.clone(),
            force: a.force,
            workload: a.workload.overrides(),
            correction: a.workload.correction,
            below_tier: None,
        },
        bench,
        endpoint: download::endpoint(a.mirror.as_deref())?,
        // The token goes with every request the fetch stage marks gated, to that host only.
        fetch: a.transfer.options(ctx.paths.models_dir.clone(), true)?,
        threads: a.threads,
        gpu: !a.no_gpu,
        on_miss: a.on_miss,
        prune: a.prune,
        action: action.to_string(),
    })
}

/// Map a pipeline error to its exit code and a hint that says what to do.
pub fn failure(ctx: &Ctx, e: InstallError) -> Failure {
    let config = crate::config::RuntimeConfig::path(&ctx.paths.config_dir);
    match e {
        InstallError::Locked(_) => Failure::new(Exit::Locked, e)
            .hint("wait for the other minerva-setup run to finish; nothing was changed"),
        InstallError::Bench(b) => crate::cmd::bench::failure(ctx, *b),
        InstallError::Select(_) => {
            Failure::new(Exit::Usage, e).hint("see `minerva-setup registry list` and tiers.json for the ids")
        }
        InstallError::NoTierFits { .. } => Failure::new(Exit::NoTierFits, e)
            .hint("run `minerva-setup plan` for every tier's reason; add memory or a GPU, or accept a longer turn"),
        InstallError::NotInstallable { .. } => Failure::new(Exit::Usage, e)
            .hint("pick a model with a known sha256 (`minerva-setup registry list`)"),
        InstallError::Download { model, source, .. } => {
            // The fetch error keeps its own exit code and hint; say what it meant for the install.
            let f = crate::cmd::download::failure(*source);
            Failure {
                error: f.error.context(format!("downloading `{model}` failed; the previous config and model are unchanged")),
                ..f
            }
        }
        InstallError::Verify { .. } | InstallError::Missed { .. } => Failure::new(Exit::Verify, e).hint(format!(
            "`{}` still describes the previously verified model; see `minerva-setup status`",
            config.display()
        )),
        InstallError::State(_) => Failure::new(Exit::Failure, e),
    }
}

impl Human for InstallReport {
    fn human(&self) -> String {
        let mut s = String::new();
        for a in &self.attempts {
            let tier = a.tier.as_deref().unwrap_or("custom");
            let _ = writeln!(s, "Tried     {} ({tier}): {}", a.model, a.outcome);
        }
        let c = &self.config;
        let _ = writeln!(s, "Installed {} in tier {}", c.model.id, c.tier);
        let _ = writeln!(
            s,
            "Model     {} ({} bytes, sha256 {})",
            c.model.path.display(),
            c.model.size_bytes,
            c.model.sha256
        );
        let v = &c.verified;
        let _ = writeln!(
            s,
            "Verified  {:.1} s per turn (promise {:.1} s): load {:.1} s, first token {:.2} s, decode {:.1} tok/s, prefill {:.0} tok/s",
            v.turn_s, c.promise.turn_s, v.load_s, v.ttft_s, v.decode_tokens_per_s, v.prefill_tokens_per_s
        );
        let _ = writeln!(
            s,
            "Settings  {} threads, {} GPU layers, context {}",
            c.threads, c.gpu_layers, c.context_length
        );
        let _ = writeln!(s, "Config    {}", self.config_path.display());
        let _ = writeln!(s, "Serve     {}", c.llama_server.command);
        for p in &self.pruned {
            let _ = writeln!(s, "Pruned    {}", p.display());
        }
        for w in &self.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
        s
    }
}

/// Whether an on-miss policy keeps going without a person.
pub fn describe_on_miss(p: OnMiss) -> &'static str {
    match p {
        OnMiss::Downgrade => "install the next tier down",
        OnMiss::Warn => "keep the model and record the real figures",
        OnMiss::Fail => "fail and keep the previous config",
    }
}

/// Run `install::install` without questions (for `retier --yes`).
pub fn run_unattended(
    ctx: &Ctx,
    hw: &HardwareProfile,
    settings: &InstallSettings,
) -> Result<InstallReport, Failure> {
    let progress = ctx.progress();
    install::install(hw, settings, progress.as_ref()).map_err(|e| failure(ctx, e))
}

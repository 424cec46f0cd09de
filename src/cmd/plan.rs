//! `minerva-setup plan`: choose the tier and model this machine can really serve, and show every
//! tier with its prediction and the reason it was chosen or rejected.

use std::fmt::Write as _;

use clap::Args;

use crate::bench::BenchResult;
use crate::cli::{Ctx, Human};
use crate::cmd::predict::WorkloadArgs;
use crate::exit::{Exit, Failure, ResultExt};
use crate::predict::PlacementKind;
use crate::profile::HardwareProfile;
use crate::select::{self, Plan, SelectOptions, Verdict};

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Seconds per turn you can accept; tightens every tier's promise.
    #[arg(long, value_name = "SECONDS")]
    pub max_latency: Option<f64>,
    /// Plan within this tier only (its first candidate that fits, even if it misses the promise).
    #[arg(long, value_name = "TIER")]
    pub tier: Option<String>,
    /// Plan this registry model, whatever the tiers prefer.
    #[arg(long, value_name = "MODEL_ID")]
    pub model: Option<String>,
    /// Accept a --model that does not fit in memory.
    #[arg(long)]
    pub force: bool,
    /// Do not benchmark when no stored benchmark exists: plan from the probe alone (unmeasured).
    #[arg(long)]
    pub no_bench: bool,
    #[command(flatten)]
    pub workload: WorkloadArgs,
}

pub use crate::state::BENCH_FILE;

/// The benchmark to predict from: the profile's own (a simulated server), else the stored one of
/// this machine, else none. A stored benchmark is used only when planning for this machine: with
/// `--hardware FILE` it would describe a different one.
pub fn load_bench(
    ctx: &Ctx,
    hw: &HardwareProfile,
) -> Result<(Option<BenchResult>, String), Failure> {
    if let Some(b) = &hw.bench {
        return Ok((Some(b.clone()), "hardware profile".into()));
    }
    if ctx.hardware_file.is_some() {
        return Ok((
            None,
            "none (the --hardware profile carries no bench section): unmeasured".into(),
        ));
    }
    let path = ctx.paths.state_dir.join(BENCH_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let b: BenchResult = serde_json::from_str(&text).map_err(|e| {
                Failure::new(
                    Exit::BadInput,
                    anyhow::anyhow!("stored benchmark `{}` is not valid: {e}", path.display()),
                )
                .hint("run `minerva-setup bench` again to replace it")
            })?;
            Ok((Some(b), path.display().to_string()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((
            None,
            "none (run `minerva-setup bench` to measure): unmeasured".into(),
        )),
        Err(e) => Err(Failure::new(
            Exit::Failure,
            anyhow::anyhow!(e).context(format!("cannot read `{}`", path.display())),
        )),
    }
}

/// The measured/predicted ratio of the last verification on this hardware, if any: later
/// predictions on the same machine are scaled by it. An unreadable state file is ignored here
/// (`status` reports it).
pub fn stored_correction(ctx: &Ctx, hw: &HardwareProfile) -> Option<f64> {
    crate::state::State::load(&ctx.paths.state_dir)
        .ok()
        .flatten()
        .and_then(|s| s.correction_for(&hw.fingerprint))
}

pub fn run(ctx: &Ctx, args: &PlanArgs) -> Result<(), Failure> {
    if let Some(m) = args.max_latency {
        if !(m.is_finite() && m > 0.0) {
            return Err(Failure::new(
                Exit::Usage,
                anyhow::anyhow!("--max-latency must be a positive number of seconds"),
            ));
        }
    }
    let hw = ctx.hardware(true)?;
    let (mut bench, mut bench_source) = load_bench(ctx, &hw)?;
    if bench.is_none() && ctx.hardware_file.is_none() && !args.no_bench {
        // Planning this machine without a measurement would be a guess: benchmark it now (a few
        // seconds, once; the result is stored for later plans).
        let progress = ctx.progress();
        let opts = crate::bench::runner::BenchOptions::new(ctx.paths.cache_dir.clone());
        let b = crate::bench::runner::run_bench(&hw, &opts, progress.as_ref())
            .map_err(|e| crate::cmd::bench::failure(ctx, e))?;
        let path = ctx.paths.state_dir.join(BENCH_FILE);
        crate::state::save_json(&path, &b)
            .exit(Exit::Failure)
            .map_err(|f| f.hint("the state directory must be writable (or pass --no-bench)"))?;
        bench_source = path.display().to_string();
        bench = Some(b);
    }
    let (reg, tiers) = crate::cmd::registry::load(ctx)?;
    let opts = SelectOptions {
        max_latency_s: args.max_latency,
        tier: args.tier.clone(),
        model: args.model.clone(),
        force: args.force,
        workload: args.workload.overrides(),
        correction: args
            .workload
            .correction
            .or_else(|| stored_correction(ctx, &hw)),
        below_tier: None,
    };
    let plan =
        select::plan(&hw, bench.as_ref(), &bench_source, &reg, &tiers, &opts).map_err(|e| {
            Failure::new(Exit::Usage, e)
                .hint("see `minerva-setup registry list` and tiers.json for the ids")
        })?;
    let failure = match &plan.chosen {
        None => Err(Failure::new(
            Exit::NoTierFits,
            anyhow::anyhow!("no tier fits: {}", plan.no_fit.as_deref().unwrap_or("no tier was considered")),
        )
        .hint("add memory or a GPU, accept a longer turn with a custom --tiers file, or pick a model with --model")),
        Some(c) if c.overridden && !c.fits && !args.force => Err(Failure::new(
            Exit::NoTierFits,
            anyhow::anyhow!("`{}` does not fit on this machine: {}", c.model, c.warnings.join("; ")),
        )
        .hint("pass --force to plan it anyway")),
        Some(_) => Ok(()),
    };
    // With --json a failure prints its own JSON document (see `Ctx::report_failure`); the plan is
    // printed only when it succeeded, so that stdout always holds exactly one document.
    if failure.is_ok() || !ctx.json {
        ctx.emit(&plan)?;
    }
    failure
}

fn gib(b: u64) -> f64 {
    b as f64 / (1u64 << 30) as f64
}

impl Human for Plan {
    fn human(&self) -> String {
        let mut s = String::new();
        let h = &self.headroom;
        let _ = writeln!(s, "Hardware  {}", self.hardware_source);
        let _ = writeln!(s, "Bench     {}", self.bench_source);
        let _ = writeln!(
            s,
            "Headroom  {:.1} GiB of {:.1} GiB usable RAM kept back ({}); {:.1} GiB for the model",
            gib(h.reserved_bytes),
            gib(h.usable_ram_bytes),
            h.rule,
            gib(h.available_bytes)
        );
        if let Some(m) = self.max_latency_s {
            let _ = writeln!(s, "Budget    --max-latency {m} s per turn");
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{:<12} {:<10} {:<33} {:<13} {:>9} {:>8} {:>8}",
            "TIER", "VERDICT", "MODEL", "WHERE", "DECODE", "TURN", "PROMISE"
        );
        for t in &self.tiers {
            let verdict = match t.verdict {
                Verdict::Chosen => "CHOSEN",
                Verdict::Rejected => "rejected",
                Verdict::NotNeeded => "-",
                Verdict::Skipped => "skipped",
            };
            let _ = writeln!(s, "{:<12} {:<10} {}", t.id, verdict, t.reason);
            if !t.unmet.is_empty() {
                continue;
            }
            for c in &t.candidates {
                let p = &c.prediction;
                let place = match p.placement.kind {
                    PlacementKind::Cpu => "CPU".to_string(),
                    PlacementKind::Gpu => format!("{} GPU", p.placement.gpus.len()),
                    PlacementKind::Split => {
                        format!("split {}/{}", p.placement.gpu_layers, p.placement.n_layers)
                    }
                };
                let mark = if c.accepted { "ok" } else { "no" };
                let _ = writeln!(
                    s,
                    "{:<12} {:<10} {:<33} {:<13} {:>5.1} t/s {:>6.1} s {:>6.0} s",
                    "",
                    mark,
                    c.model,
                    format!("{place} {:.1}G", gib(p.memory.total_bytes)),
                    p.decode_tokens_per_s,
                    p.turn_s,
                    t.budget_turn_s
                );
                for r in &c.reasons {
                    let _ = writeln!(s, "{:<23} - {r}", "");
                }
            }
        }
        let _ = writeln!(s);
        match &self.chosen {
            Some(c) => {
                let p = &c.prediction;
                let _ = writeln!(
                    s,
                    "Chosen    {} in tier {}{}",
                    c.model,
                    c.tier.as_deref().unwrap_or("(none)"),
                    if c.overridden { " (override)" } else { "" }
                );
                let _ = writeln!(s, "          {}/{}", c.repo, c.filename);
                let _ = writeln!(
                    s,
                    "          {:.1} s per turn ({} prompt + {} response tokens): prefill {:.1} s, decode {:.1} tok/s limited by {}",
                    p.turn_s,
                    p.workload.prompt_tokens,
                    p.workload.response_tokens,
                    p.prefill_s,
                    p.decode_tokens_per_s,
                    p.limited_by.describe()
                );
                let _ = writeln!(
                    s,
                    "          first token {:.1} s, cold load {:.1} s, {:.2} GiB ({})",
                    p.time_to_first_token_s,
                    p.cold_load_s,
                    gib(p.memory.total_bytes),
                    if p.measured {
                        "measured"
                    } else {
                        "unmeasured: estimates without a benchmark"
                    }
                );
                for w in &c.warnings {
                    let _ = writeln!(s, "  warning: {w}");
                }
                for n in &p.notes {
                    let _ = writeln!(s, "  - {n}");
                }
            }
            None => {
                let _ = writeln!(s, "No tier fits: {}", self.no_fit.as_deref().unwrap_or(""));
            }
        }
        s
    }
}

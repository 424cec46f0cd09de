//! `minerva-setup plan`: choose the tier and model this machine can really serve, and show every
//! tier with its prediction and the reason it was chosen or rejected.

use std::fmt::Write as _;

use clap::Args;

use indicatif::HumanBytes;

use crate::app::args::{positive_f64, WorkloadArgs};
use crate::app::failure::stored_bench_failure;
use crate::app::settings::{
    component_ratios, correction_ratio, load_registry, model_for_plan, planned_concurrency,
};
use crate::app::{Ctx, Human};
use crate::bench::runner::BenchOptions;
use crate::env_vars::MINERVA_MIRROR;
use crate::exit::{Exit, Failure};
use crate::pipeline::stored;
use crate::predict::PlacementKind;
use crate::select::{self, Plan, SelectOptions, TierOutcome};

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Seconds per turn you can accept; tightens every tier's promise.
    #[arg(long, value_name = "SECONDS", value_parser = positive_f64)]
    pub max_latency: Option<f64>,
    /// Plan within this tier only (its first candidate that fits, even if it misses the promise).
    #[arg(long, value_name = "TIER")]
    pub tier: Option<String>,
    /// Plan this model, whatever the tiers prefer: a registry id, or a file on Hugging Face
    /// (`hf:ORG/REPO/PATH.gguf`, `hf:ORG/REPO:QUANT`; only its header is read), planned in
    /// --tier's workload and promise or under --max-latency.
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Branch, tag or commit of an `hf:` --model's repository [default: main].
    #[arg(long, value_name = "REV")]
    pub revision: Option<String>,
    /// Hugging Face endpoint or mirror for an `hf:` --model (default: HF_ENDPOINT, else
    /// huggingface.co).
    #[arg(long, value_name = "URL", env = MINERVA_MIRROR)]
    pub mirror: Option<String>,
    /// Accept a --model that does not fit in memory.
    #[arg(long)]
    pub force: bool,
    /// Do not benchmark when no stored benchmark exists: plan from the probe alone (unmeasured).
    #[arg(long)]
    pub no_bench: bool,
    #[command(flatten)]
    pub workload: WorkloadArgs,
}

pub fn run(ctx: &Ctx, args: &PlanArgs) -> Result<(), Failure> {
    let hw = ctx.hardware(true)?;
    let (mut reg, tiers) = load_registry(ctx)?;
    let model = model_for_plan(
        ctx,
        &mut reg,
        args.model.as_deref(),
        args.mirror.as_deref(),
        args.revision.as_deref(),
    )?;
    // Planning this machine without a measurement would be a guess: benchmark it now (a few
    // seconds, once; the result is stored for later plans), with batched decode when several
    // users are planned.
    let mut measure = BenchOptions::new(ctx.paths.cache_dir.clone())
        .with_batches_for(planned_concurrency(&tiers, &args.workload));
    measure.cpu_variant = ctx.cpu_variant.clone();
    let progress = ctx.progress();
    let (bench, bench_source) = stored::bench_for_plan(
        &hw,
        &ctx.paths.state_dir,
        ctx.machine(),
        ctx.cpu_variant.as_deref(),
        (!args.no_bench).then_some(&measure),
        progress.as_ref(),
    )
    .map_err(|e| stored_bench_failure(ctx, e))?;
    let opts = SelectOptions {
        max_latency_s: args.max_latency,
        tier: args.tier.clone(),
        model,
        force: args.force,
        workload: args.workload.overrides(),
        correction_ratio: correction_ratio(ctx, &hw, &args.workload),
        components: component_ratios(ctx, &hw, &args.workload),
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

impl Human for Plan {
    fn human(&self) -> String {
        let mut s = String::new();
        let h = &self.headroom;
        let _ = writeln!(s, "Hardware  {}", self.hardware_source);
        let _ = writeln!(s, "Bench     {}", self.bench_source);
        let _ = writeln!(
            s,
            "Headroom  {} of {} usable RAM kept back ({}); {} for the model",
            HumanBytes(h.reserved_bytes),
            HumanBytes(h.usable_ram_bytes),
            h.rule,
            HumanBytes(h.available_bytes)
        );
        if let Some(m) = self.max_latency_s {
            let _ = writeln!(s, "Budget    --max-latency {m} s per turn");
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{:<12} {:<10} {:<33} {:<13} {:>9} {:>3} {:>8} {:>8} {:>9} {:>8}",
            "TIER",
            "VERDICT",
            "MODEL",
            "WHERE",
            "DECODE",
            "N",
            "TURN p50",
            "TURN p95",
            "ALL",
            "PROMISE"
        );
        for t in &self.tiers {
            let verdict = match t.verdict {
                TierOutcome::Chosen => "CHOSEN",
                TierOutcome::Rejected => "rejected",
                TierOutcome::NotNeeded => "-",
                TierOutcome::Skipped => "skipped",
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
                let (p50, p95, all) = match &p.concurrency {
                    Some(u) => (u.turn_p50_s, u.turn_p95_s, u.aggregate_tokens_per_s),
                    None => (p.turn_s, p.turn_s, p.decode_tokens_per_s),
                };
                let _ = writeln!(
                    s,
                    "{:<12} {:<10} {:<33} {:<13} {:>5.1} t/s {:>3} {:>6.1} s {:>6.1} s {:>5.1} t/s {:>6.0} s",
                    "",
                    mark,
                    c.model,
                    format!(
                        "{place} {:.1}G",
                        p.memory.total_bytes as f64 / (1u64 << 30) as f64
                    ),
                    p.decode_tokens_per_s,
                    p.users(),
                    p50,
                    p95,
                    all,
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
                    "          {} per turn ({} prompt + {} response tokens): prefill {:.1} s, decode {:.1} tok/s limited by {}",
                    p.turn_with_band(),
                    p.workload.prompt_tokens,
                    p.workload.response_tokens,
                    p.prefill_s,
                    p.decode_tokens_per_s,
                    p.limited_by.describe()
                );
                if let Some(u) = p.concurrency.as_ref().filter(|u| u.users > 1) {
                    let _ = writeln!(
                        s,
                        "          {} users at once: turn p50 {:.1} s, p95 {:.1} s; first token p50 {:.1} s, p95 {:.1} s; {:.1} tok/s in all",
                        u.users, u.turn_p50_s, u.turn_p95_s, u.ttft_p50_s, u.ttft_p95_s, u.aggregate_tokens_per_s
                    );
                    let _ = writeln!(
                        s,
                        "          (closed loop: each user sends its next turn when its answer is complete, first prompts {:.1} s apart; memory holds {} KV caches)",
                        u.stagger_s, u.users
                    );
                }
                let _ = writeln!(
                    s,
                    "          first token {:.1} s, cold load {:.1} s, {} ({})",
                    p.time_to_first_token_s,
                    p.cold_load_s,
                    HumanBytes(p.memory.total_bytes),
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

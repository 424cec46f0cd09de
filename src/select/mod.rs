//! Tier selection: walk the tiers best first, check each tier's hard requirements, predict every
//! candidate model, and choose the first that fits in memory with headroom, keeps the tier's
//! latency promise (or the user's budget) and can be installed. Every rejected tier and candidate
//! gets a reason with numbers.
//!
//! A pure function of its inputs ([`plan`]): hardware, benchmark, registry, tiers, options.
//! Knows nothing about files, the terminal or the network.

use indicatif::HumanBytes;
use serde::{Deserialize, Serialize};

use crate::gguf::tensors_for;
use crate::predict::{
    self, ComponentRatios, ModelInput, PlacementKind, PredictOptions, Prediction, Workload,
};
use crate::profile::HardwareProfile;
use crate::registry::{ModelFile, Registry, Requirements, Tier, TierPromise, Tiers};
use crate::types::bench::BenchResult;

/// Version of the `Plan` JSON form.
pub const PLAN_SCHEMA_VERSION: u32 = 1;

/// RAM kept back for the OS and the application that uses the model: the larger of 1.5 GiB and
/// 10 % of usable RAM (`memory.usable_bytes`, which already is the cgroup-limited figure). 1.5 GiB
/// covers a minimal server OS, the speech/web process beside the model and page cache for it.
pub const HEADROOM_MIN_BYTES: u64 = 3 << 29; // 1.5 GiB
pub const HEADROOM_SHARE: f64 = 0.10;

/// The workload used for a `--model` outside every tier.
pub const DEFAULT_WORKLOAD: Workload = Workload {
    prompt_tokens: 550,
    response_tokens: 150,
    context_tokens: 4096,
    concurrency: 1,
};

const GIB: f64 = (1u64 << 30) as f64;

/// Bytes as GiB, for comparing with the tier table's `min_*_gib` figures.
fn as_gib(b: u64) -> f64 {
    b as f64 / GIB
}

/// RAM reserved for everything but the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Headroom {
    pub usable_ram_bytes: u64,
    pub reserved_bytes: u64,
    /// What is left for the model (weights, KV cache, buffers).
    pub available_bytes: u64,
    pub rule: String,
}

/// Compute the headroom for `usable_ram_bytes`.
pub fn headroom(usable_ram_bytes: u64) -> Headroom {
    let reserved = HEADROOM_MIN_BYTES.max((usable_ram_bytes as f64 * HEADROOM_SHARE) as u64);
    Headroom {
        usable_ram_bytes,
        reserved_bytes: reserved,
        available_bytes: usable_ram_bytes.saturating_sub(reserved),
        rule: "max(1.5 GiB, 10 % of usable RAM) kept for the OS and the application".into(),
    }
}

/// Per-run overrides of the workload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkloadOverride {
    pub prompt_tokens: Option<u32>,
    pub response_tokens: Option<u32>,
    pub context_tokens: Option<u32>,
    /// Conversations in flight at once (`--concurrency`).
    pub concurrency: Option<u32>,
}

impl WorkloadOverride {
    pub fn apply(&self, w: Workload) -> Workload {
        let mut out = Workload {
            prompt_tokens: self.prompt_tokens.unwrap_or(w.prompt_tokens),
            response_tokens: self.response_tokens.unwrap_or(w.response_tokens),
            context_tokens: self.context_tokens.unwrap_or(w.context_tokens),
            concurrency: self.concurrency.unwrap_or(w.concurrency).max(1),
        };
        // The context must hold the turn; grow it rather than predict an impossible run.
        out.context_tokens = out
            .context_tokens
            .max(out.prompt_tokens + out.response_tokens);
        out
    }
}

/// What the user asked for beyond the defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SelectOptions {
    /// Latency budget per turn that tightens every tier's promise.
    pub max_latency_s: Option<f64>,
    /// Consider only this tier.
    pub tier: Option<String>,
    /// Plan this model (registry id) regardless of tiers' preferences.
    pub model: Option<String>,
    /// Accept a `--model` that does not fit in memory.
    pub force: bool,
    pub workload: WorkloadOverride,
    /// Measured/predicted ratio from an earlier verification (1.0 = none).
    pub correction_ratio: Option<f64>,
    /// Prefill and decode ratios from that verification; used instead of `correction_ratio`
    /// when present.
    pub components: Option<ComponentRatios>,
    /// Consider only tiers after this one in preference order: a verification of this tier
    /// missed its promise and the next tier down is wanted.
    pub below_tier: Option<String>,
}

/// How a tier came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TierOutcome {
    Chosen,
    Rejected,
    /// A better tier was chosen; predictions are shown for comparison.
    NotNeeded,
    /// Left out by `--tier`.
    Skipped,
}

/// One candidate model of a tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateReport {
    pub model: String,
    pub installable: bool,
    pub fits: bool,
    pub meets_promise: bool,
    pub accepted: bool,
    /// Why it was not accepted (empty when accepted).
    pub reasons: Vec<String>,
    pub prediction: Prediction,
}

/// One tier: its requirements, what was missing, and its candidates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierReport {
    pub id: String,
    pub description: String,
    pub requirements: Requirements,
    pub workload: Workload,
    pub promise: TierPromise,
    /// The turn budget applied: the promise, or `--max-latency` when smaller.
    pub budget_turn_s: f64,
    /// Requirements the machine misses, with numbers.
    pub unmet: Vec<String>,
    pub candidates: Vec<CandidateReport>,
    pub verdict: TierOutcome,
    pub reason: String,
}

/// The selected tier and model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// `None` for a `--model` that no tier lists.
    pub tier: Option<String>,
    pub model: String,
    pub repo: String,
    pub filename: String,
    pub sha256: Option<String>,
    pub installable: bool,
    /// Fits in memory and disk with headroom.
    pub fits: bool,
    /// Keeps the tier's promise (or the `--max-latency` budget).
    pub meets_promise: bool,
    /// Chosen by `--model` / `--tier` rather than by the selector.
    pub overridden: bool,
    pub prediction: Prediction,
    /// What the user should know about an overridden choice (misses the promise, forced, ...).
    pub warnings: Vec<String>,
}

/// The result of planning: every tier with its verdict, and the choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub schema_version: u32,
    pub hardware_source: String,
    pub hardware_fingerprint: String,
    /// Where the benchmark figures came from: `profile`, a state file path, or `none`.
    pub bench_source: String,
    /// False when no benchmark was available (predictions are "unmeasured").
    pub measured: bool,
    pub headroom: Headroom,
    pub max_latency_s: Option<f64>,
    pub registry_origin: String,
    pub tiers_origin: String,
    pub tiers: Vec<TierReport>,
    pub chosen: Option<Choice>,
    /// When nothing was chosen: the smallest requirement missed, in words.
    pub no_fit: Option<String>,
}

/// Why planning could not start.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error("unknown tier `{0}`")]
    UnknownTier(String),
    #[error("unknown model `{0}`: not in the registry")]
    UnknownModel(String),
}

/// The predictor's view of a registry file: its shape, the tensor table llama.cpp's quantiser
/// would give it, and its size (published, or the table's sum when unpublished).
pub fn model_input(f: &ModelFile) -> ModelInput {
    let tensors = match &f.tensors {
        Some(real) => real.clone(),
        None => tensors_for(&f.shape, f.quantisation),
    };
    let estimated: u64 = tensors.iter().map(|t| t.n_bytes).sum();
    ModelInput {
        label: f.id.clone(),
        shape: f.shape.clone(),
        tensors,
        file_bytes: f.size_bytes.unwrap_or(estimated),
        file_bytes_estimated: f.size_bytes.is_none(),
    }
}

/// The tier a model belongs to on `hw`: the first tier that lists it and whose requirements the
/// machine meets, else the first that lists it; `None` when no tier lists it. The one rule for
/// `plan --model`, `install --model` and `predict MODEL_ID`: its workload and promise apply.
pub fn tier_for_model<'t>(hw: &HardwareProfile, tiers: &'t Tiers, model: &str) -> Option<&'t Tier> {
    let listing = || {
        tiers
            .tiers
            .iter()
            .filter(move |t| t.candidates.iter().any(|c| c == model))
    };
    listing()
        .find(|t| unmet_requirements(hw, &t.requirements).is_empty())
        .or_else(|| listing().next())
}

/// Hard requirements the machine misses, as sentences with numbers.
pub fn unmet_requirements(hw: &HardwareProfile, r: &Requirements) -> Vec<String> {
    let mut out = Vec::new();
    let ram = hw.usable_ram_bytes();
    if as_gib(ram) < r.min_ram_gib {
        out.push(format!(
            "needs {:.1} GiB RAM, has {:.1} GiB usable",
            r.min_ram_gib,
            as_gib(ram)
        ));
    }
    let gpus = predict::rates::usable_gpus(hw);
    if (gpus.len() as u32) < r.min_gpus {
        out.push(format!("needs {} GPU(s), has {}", r.min_gpus, gpus.len()));
    }
    let vram: u64 = gpus.iter().map(|g| g.vram_total_bytes).sum();
    if r.min_vram_gib > 0.0 && as_gib(vram) < r.min_vram_gib {
        out.push(format!(
            "needs {:.0} GiB VRAM, has {}",
            r.min_vram_gib,
            if vram == 0 {
                "0".to_string()
            } else {
                HumanBytes(vram).to_string()
            }
        ));
    }
    if hw.compute_cores() < r.min_cores {
        out.push(format!(
            "needs {} cores, has {}",
            r.min_cores,
            hw.compute_cores()
        ));
    }
    if let Some(d) = &hw.disk {
        if as_gib(d.free_bytes) < r.min_disk_gib {
            out.push(format!(
                "needs {:.0} GiB free disk, has {:.1} GiB at {}",
                r.min_disk_gib,
                as_gib(d.free_bytes),
                d.path
            ));
        }
    }
    if !r.min_simd.is_empty() && !r.min_simd.iter().any(|l| hw.cpu.simd_level.satisfies(*l)) {
        let want: Vec<&str> = r.min_simd.iter().map(|l| l.as_str()).collect();
        out.push(format!(
            "needs SIMD {}, has {}",
            want.join(" or "),
            hw.cpu.simd_level.as_str()
        ));
    }
    out
}

/// Seconds for a message: whole seconds from 10 up, one decimal below.
fn secs(s: f64) -> String {
    if s >= 10.0 {
        format!("{s:.0}")
    } else {
        format!("{s:.1}")
    }
}

/// Judge one predicted candidate against the machine and a tier's budget.
fn assess_candidate(
    hw: &HardwareProfile,
    head: &Headroom,
    f: &ModelFile,
    p: Prediction,
    budget_turn_s: f64,
    promise: &TierPromise,
) -> CandidateReport {
    let mut reasons = Vec::new();
    let mut fits = true;
    if p.placement.ram_bytes > head.available_bytes {
        fits = false;
        reasons.push(format!(
            "needs {} RAM (weights {} + KV cache {}{} + buffers {}{}), has {} after {} headroom",
            HumanBytes(p.placement.ram_bytes),
            HumanBytes(p.memory.weights_bytes),
            HumanBytes(p.memory.kv_cache_bytes),
            if p.users() > 1 {
                format!(" for {} conversations", p.users())
            } else {
                String::new()
            },
            HumanBytes(p.memory.compute_buffer_bytes),
            if p.placement.kind == PlacementKind::Split {
                ", less the GPU layers"
            } else {
                ""
            },
            HumanBytes(head.available_bytes),
            HumanBytes(head.reserved_bytes)
        ));
    }
    if let Some(d) = &hw.disk {
        if p.file_bytes > d.free_bytes {
            fits = false;
            reasons.push(format!(
                "needs {} disk, has {} free",
                HumanBytes(p.file_bytes),
                HumanBytes(d.free_bytes)
            ));
        }
    }
    let mut meets = true;
    // With several users in flight the promise holds for (nearly) every user's turn: the p95;
    // and it must hold at the slow end of the band, not only at the median.
    let turn_s = p.upper_turn_s();
    let band_only = p.per_user_turn_p95_s() <= budget_turn_s;
    if turn_s > budget_turn_s {
        meets = false;
        let label = if budget_turn_s < promise.turn_s {
            "budget"
        } else {
            "promised"
        };
        match p.concurrency.as_ref().filter(|c| c.users > 1) {
            Some(c) => reasons.push(format!(
                "predicted p95 {:.1} s per turn for each of {} users{} > {} {} s (one user alone: {:.1} s; p50 {:.1} s, first token p95 {:.1} s, {:.1} tok/s in all, decode {:.1} tok/s for one, limited by {})",
                c.turn_p95_s,
                c.users,
                if band_only {
                    format!(", up to {turn_s:.1} s at the band's upper end,")
                } else {
                    String::new()
                },
                label,
                secs(budget_turn_s),
                p.turn_s,
                c.turn_p50_s,
                c.ttft_p95_s,
                c.aggregate_tokens_per_s,
                p.decode_tokens_per_s,
                p.limited_by.describe()
            )),
            None => reasons.push(format!(
                "predicted {} per turn{} > {} {} s (prefill {:.1} s at {:.0} tok/s, decode {:.1} tok/s, limited by {})",
                p.turn_with_band(),
                if band_only {
                    ": the median keeps the promise, the band's upper end does not"
                } else {
                    ""
                },
                label,
                secs(budget_turn_s),
                p.prefill_s,
                p.prefill_tokens_per_s,
                p.decode_tokens_per_s,
                p.limited_by.describe()
            )),
        }
    }
    if p.cold_load_s > promise.cold_load_s {
        meets = false;
        reasons.push(format!(
            "predicted cold load {:.0} s > promised {:.0} s",
            p.cold_load_s, promise.cold_load_s
        ));
    }
    let ctx = p.workload.context_tokens;
    if ctx > f.shape.context_length {
        // Beyond the trained context llama.cpp needs RoPE scaling and answers degrade.
        meets = false;
        reasons.push(format!(
            "context {ctx} exceeds the model's trained {}",
            f.shape.context_length
        ));
    }
    let installable = f.installable();
    if let Some(r) = f.not_installable_reason() {
        reasons.push(r);
    }
    CandidateReport {
        model: f.id.clone(),
        installable,
        fits,
        meets_promise: meets,
        accepted: fits && meets && installable,
        reasons,
        prediction: p,
    }
}

/// Plan: evaluate every tier and choose. Nothing chosen is not an error: `Plan::chosen` is `None`
/// and `Plan::no_fit` says what was missed.
pub fn plan(
    hw: &HardwareProfile,
    bench: Option<&BenchResult>,
    bench_source: &str,
    registry: &Registry,
    tiers: &Tiers,
    opts: &SelectOptions,
) -> Result<Plan, SelectError> {
    if let Some(t) = &opts.tier {
        if tiers.get(t).is_none() {
            return Err(SelectError::UnknownTier(t.clone()));
        }
    }
    if let Some(m) = &opts.model {
        if registry.get(m).is_none() {
            return Err(SelectError::UnknownModel(m.clone()));
        }
    }
    let head = headroom(hw.usable_ram_bytes());
    let popts = PredictOptions {
        correction_ratio: opts.correction_ratio.unwrap_or(1.0),
        components: opts.components,
        cpu_only: false,
    };
    let budget = |t: &Tier| {
        opts.max_latency_s
            .map_or(t.promise.turn_s, |m| m.min(t.promise.turn_s))
    };

    let mut reports = Vec::new();
    let mut chosen: Option<Choice> = None;
    let below_index = match &opts.below_tier {
        Some(b) => Some(
            tiers
                .tiers
                .iter()
                .position(|t| t.id == *b)
                .ok_or_else(|| SelectError::UnknownTier(b.clone()))?,
        ),
        None => None,
    };
    for (i, t) in tiers.tiers.iter().enumerate() {
        let workload = opts.workload.apply(t.workload);
        let budget_turn_s = budget(t);
        let unmet = unmet_requirements(hw, &t.requirements);
        let above_floor = below_index.is_some_and(|b| i <= b);
        let skipped = above_floor || opts.tier.as_ref().is_some_and(|x| *x != t.id);
        let mut candidates = Vec::new();
        for id in &t.candidates {
            // Invariant: tiers were validated against the registry when loaded.
            let Some(f) = registry.get(id) else { continue };
            let p = predict::predict(hw, bench, &model_input(f), &workload, &popts);
            candidates.push(assess_candidate(hw, &head, f, p, budget_turn_s, &t.promise));
        }
        let (verdict, reason) = if skipped {
            (
                TierOutcome::Skipped,
                if above_floor {
                    format!(
                        "not considered: verification of `{}` missed its promise, planning below it",
                        opts.below_tier.as_deref().unwrap_or("")
                    )
                } else {
                    format!(
                        "not considered: --tier {}",
                        opts.tier.as_deref().unwrap_or("")
                    )
                },
            )
        } else if !unmet.is_empty() {
            (TierOutcome::Rejected, unmet.join("; "))
        } else if chosen.is_some() || opts.model.is_some() {
            let why = if opts.model.is_some() {
                "not considered: --model given"
            } else {
                "a better tier was chosen"
            };
            (TierOutcome::NotNeeded, why.to_string())
        } else if let Some(c) = candidates.iter().find(|c| c.accepted) {
            chosen = Some(choice(registry, Some(t.id.clone()), c, false, Vec::new()));
            (
                TierOutcome::Chosen,
                format!(
                    "{}: predicted {} ≤ {:.0} s, fits in {}",
                    c.model,
                    turn_text(&c.prediction),
                    budget_turn_s,
                    where_text(&c.prediction)
                ),
            )
        } else {
            let first = candidates
                .first()
                .map(|c| format!("{}: {}", c.model, c.reasons.join("; ")))
                .unwrap_or_default();
            (
                TierOutcome::Rejected,
                format!("no candidate fits and keeps the promise (first candidate: {first})"),
            )
        };
        reports.push(TierReport {
            id: t.id.clone(),
            description: t.description.clone(),
            requirements: t.requirements.clone(),
            workload,
            promise: t.promise,
            budget_turn_s,
            unmet,
            candidates,
            verdict,
            reason,
        });
    }

    // Overrides: --model (in --tier's context, or the first tier listing it) or --tier alone.
    if let Some(m) = &opts.model {
        chosen = Some(override_model(
            hw,
            bench,
            registry,
            tiers,
            opts,
            &head,
            &popts,
            m,
            &mut reports,
        ));
    } else if let Some(tid) = &opts.tier {
        if chosen.is_none() {
            if let Some(r) = reports.iter_mut().find(|r| r.id == *tid) {
                // The tier's own requirements are unmet or no candidate keeps the promise: take
                // its first candidate that fits in memory, and say what it misses.
                if let Some(c) = r.candidates.iter().find(|c| c.fits && c.installable) {
                    let mut warnings = r.unmet.clone();
                    warnings.extend(c.reasons.iter().cloned());
                    chosen = Some(choice(registry, Some(r.id.clone()), c, true, warnings));
                    r.verdict = TierOutcome::Chosen;
                    r.reason = format!("{}: chosen by --tier despite: {}", c.model, r.reason);
                }
            }
        }
    }

    let no_fit = if chosen.is_none() {
        Some(no_fit_reason(&reports))
    } else {
        None
    };
    Ok(Plan {
        schema_version: PLAN_SCHEMA_VERSION,
        hardware_source: hw.source.clone(),
        hardware_fingerprint: hw.fingerprint.clone(),
        bench_source: bench_source.to_string(),
        measured: bench.is_some(),
        headroom: head,
        max_latency_s: opts.max_latency_s,
        registry_origin: registry.origin.clone(),
        tiers_origin: tiers.origin.clone(),
        tiers: reports,
        chosen,
        no_fit,
    })
}

/// The turn a promise is held to, in words: one user's, or the p95 of several users'.
fn turn_text(p: &Prediction) -> String {
    match p.concurrency.as_ref().filter(|c| c.users > 1) {
        Some(c) => format!(
            "p95 {:.1} s per turn for each of {} users (p50 {:.1} s, {:.1} tok/s in all)",
            c.turn_p95_s, c.users, c.turn_p50_s, c.aggregate_tokens_per_s
        ),
        None => format!("{:.1} s per turn", p.turn_s),
    }
}

fn where_text(p: &Prediction) -> String {
    match p.placement.kind {
        PlacementKind::Cpu => format!("RAM ({})", HumanBytes(p.placement.ram_bytes)),
        PlacementKind::Gpu => format!(
            "VRAM of {} GPU(s) ({}, all {} layers)",
            p.placement.gpus.len(),
            HumanBytes(p.placement.vram_bytes),
            p.placement.n_layers
        ),
        PlacementKind::Split => format!(
            "{} of {} layers on {} GPU(s), the rest in RAM",
            p.placement.gpu_layers,
            p.placement.n_layers,
            p.placement.gpus.len()
        ),
    }
}

fn choice(
    registry: &Registry,
    tier: Option<String>,
    c: &CandidateReport,
    overridden: bool,
    warnings: Vec<String>,
) -> Choice {
    // Invariant: candidate ids come from the registry.
    let f = registry.get(&c.model).expect("candidate is a registry id");
    Choice {
        tier,
        model: f.id.clone(),
        repo: f.repo.clone(),
        filename: f.filename.clone(),
        sha256: f.sha256.clone(),
        installable: f.installable(),
        fits: c.fits,
        meets_promise: c.meets_promise,
        overridden,
        prediction: c.prediction.clone(),
        warnings,
    }
}

#[allow(clippy::too_many_arguments)]
fn override_model(
    hw: &HardwareProfile,
    bench: Option<&BenchResult>,
    registry: &Registry,
    tiers: &Tiers,
    opts: &SelectOptions,
    head: &Headroom,
    popts: &PredictOptions,
    model: &str,
    reports: &mut [TierReport],
) -> Choice {
    // Invariant: checked at the top of `plan`.
    let f = registry.get(model).expect("model was checked");
    let tier = match &opts.tier {
        Some(t) => tiers.get(t),
        None => tier_for_model(hw, tiers, model),
    };
    let (workload, promise, budget) = match tier {
        Some(t) => {
            let b = opts
                .max_latency_s
                .map_or(t.promise.turn_s, |m| m.min(t.promise.turn_s));
            (opts.workload.apply(t.workload), t.promise, b)
        }
        None => {
            let b = opts.max_latency_s.unwrap_or(f64::INFINITY);
            (
                opts.workload.apply(DEFAULT_WORKLOAD),
                TierPromise {
                    turn_s: b,
                    cold_load_s: f64::INFINITY,
                },
                b,
            )
        }
    };
    let p = predict::predict(hw, bench, &model_input(f), &workload, popts);
    let c = assess_candidate(hw, head, f, p, budget, &promise);
    let mut warnings = c.reasons.clone();
    if let Some(t) = tier {
        if let Some(r) = reports.iter_mut().find(|r| r.id == t.id) {
            warnings.extend(r.unmet.iter().map(|u| format!("tier {}: {u}", t.id)));
            r.verdict = TierOutcome::Chosen;
            r.reason = format!("{}: chosen by --model", model);
        }
    }
    if !c.fits && opts.force {
        warnings.push("--force: planned although it does not fit".into());
    }
    choice(registry, tier.map(|t| t.id.clone()), &c, true, warnings)
}

/// The smallest requirement missed: the last (smallest) tier's first unmet requirement, or why
/// its best candidate failed.
fn no_fit_reason(reports: &[TierReport]) -> String {
    let considered: Vec<&TierReport> = reports
        .iter()
        .filter(|r| r.verdict != TierOutcome::Skipped)
        .collect();
    match considered.last() {
        None => "no tier was considered".into(),
        Some(r) if !r.unmet.is_empty() => {
            format!("the smallest tier, `{}`, {}", r.id, r.unmet.join("; "))
        }
        Some(r) => match r
            .candidates
            .iter()
            .find(|c| c.fits)
            .or(r.candidates.first())
        {
            Some(c) => format!(
                "the smallest tier, `{}`: {}: {}",
                r.id,
                c.model,
                c.reasons.join("; ")
            ),
            None => format!("the smallest tier, `{}`, lists no candidate", r.id),
        },
    }
}

#[cfg(test)]
mod tests;

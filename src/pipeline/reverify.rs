//! `verify`'s policy: run the installed model (or any file) one turn, judge it against the
//! promise, record the result, and act on a miss as `--on-miss` says: `downgrade` installs the
//! next tier down, `warn` records the measured figures as the promise, `fail` keeps the previous
//! config. A degenerate answer, or a capability that `--require` or the installed tier demands
//! and that is missing, is a miss like a broken promise. The config changes only after a run that
//! is accepted; a file given with `--model-file` is measured and judged but nothing is recorded.

use std::path::PathBuf;

use serde::Serialize;

use crate::config::RuntimeConfig;
use crate::paths::Paths;
use crate::profile::HardwareProfile;
use crate::progress::Progress;
use crate::select::{WorkloadOverride, DEFAULT_WORKLOAD};
use crate::state::{self, Action, HistoryEntry, Outcome, RunLock, State, StateError};
use crate::types::capabilities::Capability;
use crate::verify::{self, Verdict, VerifyError, VerifyReport, VerifySettings};

use super::install::{self, verified, InstallError, InstallReport, InstallSettings};
use super::{calibration, OnMiss};

/// What to verify.
#[derive(Debug, Clone, PartialEq)]
pub enum VerifyTarget {
    /// The model the runtime config names; the result is recorded.
    Installed,
    /// Any GGUF file; measured and judged, nothing recorded.
    File(PathBuf),
}

/// `verify`'s settings, resolved from flags, variables and the installed config.
#[derive(Debug, Clone)]
pub struct ReverifySettings {
    pub paths: Paths,
    pub target: VerifyTarget,
    /// llama.cpp threads (default: as installed, else the compute cores).
    pub threads: Option<u32>,
    /// GPU layers (default: as installed, else 0).
    pub gpu_layers: Option<u32>,
    pub workload: WorkloadOverride,
    /// Tightens the promise (or, for a file, is the promise).
    pub max_latency_s: Option<f64>,
    pub on_miss: OnMiss,
    /// Capabilities the verification must find (`--require`), on top of those the installed
    /// model's config records.
    pub require: Vec<Capability>,
    /// `--cpu-variant` (default: the variant the installed config was forced to, else the best
    /// this CPU runs).
    pub cpu_variant: Option<String>,
}

/// What was done with a verification's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Recorded {
    /// It kept the promise and was recorded.
    Recorded,
    /// It missed and was kept with the measured figures as the promise (`--on-miss warn`).
    KeptWithMeasuredFigures,
    /// It missed; the miss was recorded and the config left as it was.
    MissRecorded,
    /// A file given with `--model-file`: nothing recorded.
    NotRecorded,
    /// It missed and the next tier down was installed (`--on-miss downgrade`).
    Downgraded,
}

impl Recorded {
    pub fn describe(self) -> &'static str {
        match self {
            Recorded::Recorded => "recorded",
            Recorded::KeptWithMeasuredFigures => "kept with measured figures as the promise",
            Recorded::MissRecorded => "the miss was recorded; the config is unchanged",
            Recorded::NotRecorded => "not recorded",
            Recorded::Downgraded => "missed; the next tier down was installed",
        }
    }
}

/// What `verify` measured and decided.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyOutcome {
    pub report: VerifyReport,
    pub verdict: Option<Verdict>,
    pub promised_turn_s: Option<f64>,
    /// Whether the run kept its promise and produced usable output.
    pub passed: bool,
    /// Why the answer or a required capability failed, for a run judged without a promise
    /// (with one, these are among the verdict's reasons).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capability_reasons: Vec<String>,
    pub action: Recorded,
    /// The measured/uncorrected-predicted ratio stored for later predictions, when one was.
    pub correction_ratio: Option<f64>,
    /// The install of the next tier down, after a miss with `--on-miss downgrade`.
    pub downgrade: Option<InstallReport>,
}

/// Why `verify` ended without an accepted result.
#[derive(Debug, thiserror::Error)]
pub enum ReverifyError {
    #[error("nothing is installed: `{}` does not exist", config_path.display())]
    NothingInstalled { config_path: PathBuf },
    #[error("another minerva-setup run holds the lock `{}`", path.display())]
    Locked { path: PathBuf },
    #[error(transparent)]
    State(#[from] StateError),
    #[error("the verification could not run; the previous config and model were left in place")]
    Verify(#[source] VerifyError),
    #[error("verification missed: {}", reasons(.outcome))]
    Missed { outcome: Box<VerifyOutcome> },
    #[error(transparent)]
    Downgrade(#[from] Box<InstallError>),
}

fn reasons(o: &VerifyOutcome) -> String {
    let r = match &o.verdict {
        Some(v) => v.reasons.join("; "),
        None => o.capability_reasons.join("; "),
    };
    if r.is_empty() {
        "the output failed its sanity checks".to_string()
    } else {
        r
    }
}

/// Run the verification `s` asks for on `hw`. `downgrade` is how to install the next tier down
/// after a miss with `OnMiss::Downgrade` (without it such a miss ends as with `OnMiss::Fail`).
pub fn reverify(
    hw: &HardwareProfile,
    s: &ReverifySettings,
    downgrade: Option<&InstallSettings>,
    progress: &dyn Progress,
) -> Result<VerifyOutcome, ReverifyError> {
    let config_path = RuntimeConfig::path(&s.paths.config_dir);
    let installed: Option<RuntimeConfig> = match &s.target {
        VerifyTarget::File(_) => None,
        VerifyTarget::Installed => Some(state::load_json(&config_path)?.ok_or_else(|| {
            ReverifyError::NothingInstalled {
                config_path: config_path.clone(),
            }
        })?),
    };
    let (path, settings, promise) = run_settings(hw, s, installed.as_ref());
    let report = verify::run(&path, &settings, progress).map_err(ReverifyError::Verify)?;

    let Some(mut cfg) = installed else {
        let verdict =
            promise.map(|(turn, load)| verify::judge(&report, turn, load, None, &s.require));
        let passed = passed(&report, verdict.as_ref(), &s.require);
        let capability_reasons = if verdict.is_none() {
            verify::capability_reasons(&report, &s.require)
        } else {
            Vec::new()
        };
        let outcome = VerifyOutcome {
            report,
            verdict,
            promised_turn_s: promise.map(|p| p.0),
            passed,
            capability_reasons,
            action: Recorded::NotRecorded,
            correction_ratio: None,
            downgrade: None,
        };
        return finish(outcome);
    };

    let lock = RunLock::acquire(&s.paths.state_dir).map_err(|e| match e {
        StateError::Locked { path } => ReverifyError::Locked { path },
        other => ReverifyError::State(other),
    })?;
    let mut st = State::load(&s.paths.state_dir)?;
    // The prediction this run is compared with: the plan's, when it was made for this model and
    // this workload (a verification with other token counts predicts nothing about it).
    let predicted = st
        .as_ref()
        .and_then(|s| s.plan.as_ref())
        .and_then(|p| p.chosen.as_ref())
        .filter(|c| c.model == cfg.model.id)
        .map(|c| c.prediction.clone())
        .filter(|p| {
            p.workload.prompt_tokens == settings.prompt_tokens
                && p.workload.response_tokens == settings.response_tokens
                && p.users() == settings.concurrency.max(1)
        });
    let (turn, load) = promise.expect("an installed model has a promise");
    let required = install::required(&s.require, &cfg.promise.requires);
    let verdict = verify::judge(
        &report,
        turn,
        load,
        predicted.as_ref().map(|p| p.per_user_turn_p95_s()),
        &required,
    );
    let passed = passed(&report, Some(&verdict), &required);
    // The correction describes one user's turn; a run of several users measures batching too.
    let correction = predicted
        .as_ref()
        .filter(|p| p.users() == 1)
        .and_then(|p| calibration::ratio_after(report.turn_s, p));
    let components = predicted.as_ref().filter(|p| p.users() == 1).and_then(|p| {
        calibration::components_after(
            report.prefill_tokens_per_s,
            report.decode_tokens_per_s,
            report.turn_s,
            p,
        )
    });
    let mut outcome = VerifyOutcome {
        report: report.clone(),
        verdict: Some(verdict.clone()),
        promised_turn_s: Some(turn),
        passed,
        capability_reasons: Vec::new(),
        action: Recorded::MissRecorded,
        correction_ratio: correction,
        downgrade: None,
    };
    let record = |st: &mut Option<State>, outcome: Outcome| {
        if let Some(s) = st.as_mut() {
            s.verify = Some(report.clone());
            s.verdict = Some(verdict.clone());
            if let Some(r) = correction {
                if s.fingerprint == hw.fingerprint {
                    s.correction_ratio = Some(r);
                    s.component_ratios = components.or(s.component_ratios);
                }
            }
            s.push_history(HistoryEntry {
                at: report.at,
                action: Action::Verify,
                tier: Some(cfg.tier.clone()),
                model_id: Some(cfg.model.id.clone()),
                outcome,
                turn_s: Some(report.turn_s),
            });
        }
    };
    let state_dir = &s.paths.state_dir;
    if passed || s.on_miss == OnMiss::Warn {
        cfg.verified = verified(&report);
        cfg.capabilities = report.capabilities.clone();
        cfg.cpu_variant = report.cpu_variant.clone();
        if !passed {
            cfg.promise.turn_s = report.turn_s;
            cfg.promise.cold_load_s = cfg.promise.cold_load_s.max(report.load_s);
        }
        state::save_json(&config_path, &cfg)?;
        record(
            &mut st,
            if passed {
                Outcome::Passed
            } else {
                Outcome::KeptDespiteMiss
            },
        );
        if let Some(st) = st.as_mut() {
            st.save(state_dir)?;
        }
        outcome.action = if passed {
            Recorded::Recorded
        } else {
            Recorded::KeptWithMeasuredFigures
        };
        return Ok(outcome);
    }
    record(&mut st, Outcome::Missed);
    if let Some(st) = st.as_mut() {
        st.save(state_dir)?;
    }
    let Some(downgrade) = downgrade.filter(|_| s.on_miss == OnMiss::Downgrade) else {
        return finish(outcome);
    };
    // Downgrade: plan below the installed tier with the measured correction, then install.
    drop(lock);
    let mut settings = downgrade.clone();
    settings.select.below_tier = Some(cfg.tier.clone());
    // The next tier down is held to the same number of users as the one that missed.
    settings.select.workload.concurrency = Some(report.settings.concurrency.max(1));
    settings.on_miss = OnMiss::Downgrade;
    settings.action = Action::Verify;
    let done = install::install(hw, &settings, progress).map_err(Box::new)?;
    outcome.action = Recorded::Downgraded;
    outcome.downgrade = Some(done);
    Ok(outcome)
}

/// A run that passed is returned; one that missed is the error that carries it.
fn finish(outcome: VerifyOutcome) -> Result<VerifyOutcome, ReverifyError> {
    if outcome.passed {
        Ok(outcome)
    } else {
        Err(ReverifyError::Missed {
            outcome: Box::new(outcome),
        })
    }
}

/// Passed: kept the promise (when there is one), produced finite logits and tokens, a usable
/// answer and the `required` capabilities.
fn passed(report: &VerifyReport, verdict: Option<&Verdict>, required: &[Capability]) -> bool {
    let usable = match verdict {
        Some(v) => v.passed,
        None => verify::capability_reasons(report, required).is_empty(),
    };
    usable && report.logits_finite && report.generated_tokens > 0
}

/// The file, the llama.cpp settings and the promise (turn, cold load) of this verification:
/// the flags win, then the installed config, then the defaults.
fn run_settings(
    hw: &HardwareProfile,
    s: &ReverifySettings,
    installed: Option<&RuntimeConfig>,
) -> (PathBuf, VerifySettings, Option<(f64, f64)>) {
    let w = &s.workload;
    match (installed, &s.target) {
        (Some(c), _) => {
            let settings = VerifySettings {
                threads: s.threads.unwrap_or(c.threads),
                gpu_layers: s.gpu_layers.unwrap_or(c.gpu_layers),
                context_tokens: w.context_tokens.unwrap_or(c.context_tokens),
                prompt_tokens: w.prompt_tokens.unwrap_or(c.promise.prompt_tokens),
                response_tokens: w.response_tokens.unwrap_or(c.promise.response_tokens),
                concurrency: w.concurrency.unwrap_or(c.concurrency).max(1),
                // A variant forced at install stays forced: the promise was made for it.
                cpu_variant: s.cpu_variant.clone().or_else(|| {
                    c.cpu_variant
                        .as_ref()
                        .filter(|v| v.forced)
                        .map(|v| v.name.clone())
                }),
            };
            let turn = s
                .max_latency_s
                .map_or(c.promise.turn_s, |m| m.min(c.promise.turn_s));
            (
                c.model.path.clone(),
                settings,
                Some((turn, c.promise.cold_load_s)),
            )
        }
        (None, VerifyTarget::File(f)) => {
            let wl = w.apply(DEFAULT_WORKLOAD);
            let settings = VerifySettings {
                threads: s.threads.unwrap_or_else(|| hw.compute_cores()),
                gpu_layers: s.gpu_layers.unwrap_or(0),
                context_tokens: wl.context_tokens,
                prompt_tokens: wl.prompt_tokens,
                response_tokens: wl.response_tokens,
                concurrency: wl.users(),
                cpu_variant: s.cpu_variant.clone(),
            };
            (
                f.clone(),
                settings,
                s.max_latency_s.map(|t| (t, f64::INFINITY)),
            )
        }
        (None, VerifyTarget::Installed) => unreachable!("an installed target has a config"),
    }
}

//! Installing: bench → plan → fetch → verify → commit, with the policy for a verification that
//! misses its promise. `install`, `retier`, the wizard and a `verify --on-miss downgrade` all run
//! through [`install`] (or [`Run`], which lets a person look at the plan first).
//!
//! The hardware profile comes in from the caller (a live probe or a `--hardware` file). Nothing is
//! printed here; progress goes through [`Progress`]. The runtime config is written only after a
//! verification passed (or was accepted with `OnMiss::Warn`), so a failed download or
//! verification leaves the previous config and model active.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::bench::runner::{BenchError, BenchOptions};
use crate::config::{
    self, InstalledPromise, ModelRef, PartRef, RuntimeConfig, Verified, CONFIG_SCHEMA_VERSION,
};
use crate::fetch::{self, FetchError, FetchOptions, FetchReport, FetchRequest, HfFile};
use crate::paths::Paths;
use crate::profile::HardwareProfile;
use crate::progress::Progress;
use crate::registry::{ModelFile, Registry, Tiers};
use crate::select::{self, Choice, Plan, SelectError, SelectOptions};
use crate::state::{self, Action, HistoryEntry, Installed, Outcome, RunLock, State, StateError};
use crate::types::bench::BenchResult;
use crate::types::capabilities::Capability;
use crate::types::time;
use crate::verify::{self, Verdict, VerifyError, VerifyReport, VerifySettings};

use super::stored::{self, StoredBenchError};
use super::{calibration, OnMiss};

pub const INSTALL_SCHEMA_VERSION: u32 = 1;

/// Where the benchmark comes from.
#[derive(Debug, Clone)]
pub enum BenchSource {
    /// Figures already known (a simulated profile's, or a stored benchmark of this machine).
    Given(Box<BenchResult>, String),
    /// Run the benchmark on this machine.
    Run(BenchOptions),
    /// Plan without one (predictions are marked unmeasured).
    None,
}

/// Everything the pipeline needs, resolved by the CLI.
#[derive(Clone)]
pub struct InstallSettings {
    pub paths: Paths,
    pub registry: Registry,
    pub tiers: Tiers,
    pub select: SelectOptions,
    pub bench: BenchSource,
    /// Hugging Face endpoint or mirror.
    pub endpoint: String,
    /// Options for the download (token, retries, stall timeout...); `dest_dir` is replaced by the
    /// models directory.
    pub fetch: FetchOptions,
    /// llama.cpp threads; `None`: the benchmark's winner, else the physical cores.
    pub threads: Option<u32>,
    /// Offload to a GPU when the plan places layers there.
    pub gpu: bool,
    /// `--cpu-variant`: llama.cpp's CPU kernels to verify with (else the best this CPU runs).
    pub cpu_variant: Option<String>,
    pub on_miss: OnMiss,
    /// Capabilities the verification must find (`--require`), on top of the tier's `requires`.
    pub require: Vec<Capability>,
    /// Remove models in the models directory that the new config no longer references.
    pub prune: bool,
    /// `install`, `retier` or `verify` (a downgrade), for the history.
    pub action: Action,
}

/// One tier tried: download, verification and what came of it.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub tier: Option<String>,
    pub model: String,
    pub predicted_turn_s: f64,
    /// The download of the model's file (a split model's first part).
    pub download: Option<FetchReport>,
    /// A split model's parts, each downloaded and verified (the first is `download`); empty for
    /// a model in one file.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<FetchReport>,
    pub verify: Option<VerifyReport>,
    pub verdict: Option<Verdict>,
    pub outcome: AttemptOutcome,
    /// What went wrong, in words (the error, or the promise's missed figures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// How one tier's attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttemptOutcome {
    /// Not finished (the run stopped before this attempt ended).
    Pending,
    Installed,
    /// Missed its promise and kept with the measured figures (`--on-miss warn`).
    KeptDespiteMiss,
    Missed,
    DownloadFailed,
    VerificationFailed,
}

impl AttemptOutcome {
    pub fn describe(self) -> &'static str {
        match self {
            AttemptOutcome::Pending => "not finished",
            AttemptOutcome::Installed => "installed",
            AttemptOutcome::KeptDespiteMiss => "kept despite a miss (--on-miss warn)",
            AttemptOutcome::Missed => "missed",
            AttemptOutcome::DownloadFailed => "download failed",
            AttemptOutcome::VerificationFailed => "verification failed",
        }
    }
}

/// The result of a run that installed (or kept) a model.
#[derive(Debug, Clone, Serialize)]
pub struct InstallReport {
    pub schema_version: u32,
    pub action: Action,
    pub fingerprint: String,
    pub bench_source: String,
    pub plan: Plan,
    pub attempts: Vec<Attempt>,
    pub config_path: PathBuf,
    pub state_path: PathBuf,
    pub config: RuntimeConfig,
    /// Models removed by `prune`.
    pub pruned: Vec<PathBuf>,
    pub warnings: Vec<String>,
}

/// Why a run ended without a new config. Every variant says what happened to the files.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Locked(StateError),
    #[error("the benchmark could not run")]
    Bench(#[source] Box<BenchError>),
    #[error(transparent)]
    Select(#[from] SelectError),
    #[error("no tier fits: {reason}")]
    NoTierFits {
        reason: String,
        plan: Box<Plan>,
        attempts: Vec<Attempt>,
    },
    #[error("`{model}` is not installable: {reason}")]
    NotInstallable { model: String, reason: String },
    #[error("downloading `{model}` failed{}; the previous config and model are unchanged",
        part.as_ref().map(|p| format!(" ({p})")).unwrap_or_default())]
    Download {
        model: String,
        /// Which part of a split model failed (`part 2 of 3, `NAME``).
        part: Option<String>,
        #[source]
        source: Box<FetchError>,
        attempts: Vec<Attempt>,
    },
    #[error("verifying `{model}` failed; the previous config and model are unchanged{}",
        unrecorded.as_ref().map(|e| format!(" (and the failure could not be recorded: {e})")).unwrap_or_default())]
    Verify {
        model: String,
        #[source]
        source: Box<VerifyError>,
        attempts: Vec<Attempt>,
        /// Why the failed verification is missing from the state file, when it could not be
        /// written.
        unrecorded: Option<Box<StateError>>,
    },
    #[error("`{model}` missed its promise: {}; the previous config is unchanged", reasons.join("; "))]
    Missed {
        model: String,
        reasons: Vec<String>,
        attempts: Vec<Attempt>,
    },
    #[error(transparent)]
    State(StateError),
}

/// Run the whole pipeline for `hw`: [`Run::start`] then [`Run::finish`].
pub fn install(
    hw: &HardwareProfile,
    settings: &InstallSettings,
    progress: &dyn Progress,
) -> Result<InstallReport, InstallError> {
    Run::start(hw, settings, progress)?.finish(progress)
}

/// A run in progress: the lock is held, the benchmark is done and a plan exists. A person (the
/// wizard, `install` without `--yes`) may look at the plan and re-plan with other choices before
/// [`Run::finish`] downloads and verifies.
pub struct Run<'a> {
    hw: &'a HardwareProfile,
    settings: &'a InstallSettings,
    _lock: RunLock,
    previous: Option<State>,
    bench: Option<BenchResult>,
    pub bench_source: String,
    select: SelectOptions,
    pub plan: Plan,
}

impl<'a> Run<'a> {
    /// Take the lock, benchmark (or take the given figures) and plan.
    pub fn start(
        hw: &'a HardwareProfile,
        settings: &'a InstallSettings,
        progress: &dyn Progress,
    ) -> Result<Run<'a>, InstallError> {
        let paths = &settings.paths;
        let lock = RunLock::acquire(&paths.state_dir).map_err(|e| match e {
            StateError::Locked { .. } => InstallError::Locked(e),
            other => InstallError::State(other),
        })?;
        let previous = State::load(&paths.state_dir).map_err(InstallError::State)?;
        let (bench, bench_source) = match &settings.bench {
            BenchSource::Given(b, src) => (Some((**b).clone()), src.clone()),
            BenchSource::None => (None, "none: unmeasured".to_string()),
            BenchSource::Run(opts) => {
                let (b, src) = stored::measure_and_store(hw, opts, &paths.state_dir, progress)
                    .map_err(|e| match e {
                        StoredBenchError::Bench(b) => InstallError::Bench(Box::new(b)),
                        StoredBenchError::State(s) => InstallError::State(s),
                    })?;
                (Some(b), src)
            }
        };
        let mut select = settings.select.clone();
        if select.correction_ratio.is_none() {
            select.correction_ratio = previous
                .as_ref()
                .and_then(|s| s.correction_for(&hw.fingerprint));
            select.components = previous
                .as_ref()
                .and_then(|s| s.components_for(&hw.fingerprint));
        }
        let plan = plan_for(hw, bench.as_ref(), &bench_source, settings, &select)?;
        Ok(Run {
            hw,
            settings,
            _lock: lock,
            previous,
            bench,
            bench_source,
            select,
            plan,
        })
    }

    /// Plan again with another tier, model or budget (the measured correction is kept).
    pub fn replan(
        &mut self,
        tier: Option<String>,
        model: Option<String>,
        force: bool,
    ) -> Result<(), InstallError> {
        self.select.tier = tier;
        self.select.model = model;
        self.select.force = force;
        self.plan = plan_for(
            self.hw,
            self.bench.as_ref(),
            &self.bench_source,
            self.settings,
            &self.select,
        )?;
        Ok(())
    }

    /// Installable registry models with their sizes (published, else estimated), for a picker.
    pub fn installable_models(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self
            .settings
            .registry
            .files
            .iter()
            .filter(|f| f.installable())
            .map(|f| (f.id.clone(), select::model_input(f).file_bytes))
            .collect();
        v.sort_by_key(|(_, b)| *b);
        v
    }

    /// Where the model will be stored.
    pub fn models_dir(&self) -> &Path {
        &self.settings.paths.models_dir
    }

    /// The registry file of the chosen model, if any.
    pub fn chosen_file(&self) -> Option<&ModelFile> {
        self.plan
            .chosen
            .as_ref()
            .and_then(|c| self.settings.registry.get(&c.model))
    }

    /// Download, verify and commit the plan's choice, stepping down on a miss as the policy says.
    pub fn finish(self, progress: &dyn Progress) -> Result<InstallReport, InstallError> {
        let Run {
            hw,
            settings,
            _lock,
            previous,
            bench,
            bench_source,
            mut select,
            mut plan,
        } = self;
        let paths = &settings.paths;
        let mut attempts: Vec<Attempt> = Vec::new();
        let mut warnings = Vec::new();
        let mut state = previous.unwrap_or_else(|| State::new(hw));
        loop {
            let Some(choice) = plan.chosen.clone() else {
                let reason = plan
                    .no_fit
                    .clone()
                    .unwrap_or_else(|| "no tier was considered".into());
                return Err(InstallError::NoTierFits {
                    reason,
                    plan: Box::new(plan),
                    attempts,
                });
            };
            let file = settings
                .registry
                .get(&choice.model)
                .ok_or_else(|| SelectError::UnknownModel(choice.model.clone()))?;
            if let Some(reason) = file.not_installable_reason() {
                return Err(InstallError::NotInstallable {
                    model: file.id.clone(),
                    reason,
                });
            }
            let mut attempt = Attempt {
                tier: choice.tier.clone(),
                model: choice.model.clone(),
                predicted_turn_s: choice.prediction.per_user_turn_p95_s(),
                download: None,
                parts: Vec::new(),
                verify: None,
                verdict: None,
                outcome: AttemptOutcome::Pending,
                detail: None,
            };

            let (fetched, parts) = match download(file, settings, progress) {
                Ok(r) => r,
                Err((part, source)) => {
                    attempt.outcome = AttemptOutcome::DownloadFailed;
                    attempt.detail = Some(match &part {
                        Some(p) => format!("{p}: {source}"),
                        None => source.to_string(),
                    });
                    attempts.push(attempt);
                    return Err(InstallError::Download {
                        model: file.id.clone(),
                        part,
                        source: Box::new(source),
                        attempts,
                    });
                }
            };
            attempt.download = Some(fetched.clone());
            attempt.parts = parts.clone();

            let vs = verify_settings(hw, bench.as_ref(), &choice, settings);
            let report = match verify::run(&fetched.path, &vs, progress) {
                Ok(r) => r,
                Err(source) => {
                    attempt.outcome = AttemptOutcome::VerificationFailed;
                    attempt.detail = Some(source.to_string());
                    attempts.push(attempt);
                    record(
                        &mut state,
                        settings,
                        &choice,
                        Outcome::VerificationFailed,
                        None,
                    );
                    let unrecorded = state.save(&paths.state_dir).err().map(Box::new);
                    return Err(InstallError::Verify {
                        model: file.id.clone(),
                        source: Box::new(source),
                        attempts,
                        unrecorded,
                    });
                }
            };
            let tier = choice.tier.as_ref().and_then(|t| settings.tiers.get(t));
            let promised_turn = plan_budget(&plan, &choice);
            let promised_load = tier.map_or(choice.prediction.cold_load_s.max(1.0) * 2.0, |t| {
                t.promise.cold_load_s
            });
            let required = required(&settings.require, tier.map_or(&[], |t| &t.requires));
            let verdict = verify::judge(
                &report,
                promised_turn,
                promised_load,
                Some(choice.prediction.per_user_turn_p95_s()),
                &required,
            );
            attempt.verify = Some(report.clone());
            attempt.verdict = Some(verdict.clone());

            // The measured/predicted ratio corrects later predictions on this machine, whatever the
            // outcome (see `calibration`). It describes one user's turn: a run of several users
            // measures the batching as well, and stores none.
            let correction = Some(&choice.prediction)
                .filter(|p| p.users() == 1)
                .and_then(|p| calibration::ratio_after(report.turn_s, p));
            let components = Some(&choice.prediction)
                .filter(|p| p.users() == 1)
                .and_then(|p| {
                    calibration::components_after(
                        report.prefill_tokens_per_s,
                        report.decode_tokens_per_s,
                        report.turn_s,
                        p,
                    )
                });
            state.fingerprint = hw.fingerprint.clone();
            state.profile = hw.clone();
            state.bench = bench.clone();
            state.correction_ratio = correction.or(state.correction_ratio);
            state.component_ratios = components.or(state.component_ratios);

            let accept_with_warning =
                !verdict.passed && settings.on_miss == OnMiss::Warn && report.logits_finite;
            if verdict.passed || accept_with_warning {
                attempt.outcome = if verdict.passed {
                    AttemptOutcome::Installed
                } else {
                    attempt.detail = Some(verdict.reasons.join("; "));
                    AttemptOutcome::KeptDespiteMiss
                };
                if accept_with_warning {
                    warnings.push(format!(
                        "`{}` missed its promise ({}); kept with the measured figures as its promise",
                        choice.model,
                        verdict.reasons.join("; ")
                    ));
                }
                attempts.push(attempt);
                let cfg = runtime_config(
                    &choice,
                    file,
                    (&fetched, parts.as_slice()),
                    &report,
                    (promised_turn, promised_load),
                    required,
                    accept_with_warning,
                );
                let config_path = RuntimeConfig::path(&paths.config_dir);
                state::save_json(&config_path, &cfg).map_err(InstallError::State)?;
                state.plan = Some(plan.clone());
                state.installed = Some(Installed {
                    tier: choice.tier.clone(),
                    model_id: choice.model.clone(),
                    path: fetched.path.clone(),
                    sha256: fetched.sha256.clone(),
                    size_bytes: cfg.model.size_bytes,
                    installed_at: time::now(),
                    parts: cfg.model.parts.clone(),
                });
                state.verify = Some(report.clone());
                state.verdict = Some(verdict.clone());
                let outcome = if verdict.passed {
                    Outcome::Installed
                } else {
                    Outcome::KeptDespiteMiss
                };
                record(&mut state, settings, &choice, outcome, Some(report.turn_s));
                state.save(&paths.state_dir).map_err(InstallError::State)?;
                let pruned = if settings.prune {
                    let keep: Vec<PathBuf> = cfg
                        .model
                        .files()
                        .into_iter()
                        .map(|(p, _)| p.to_path_buf())
                        .collect();
                    prune(&paths.models_dir, &keep)
                } else {
                    Vec::new()
                };
                return Ok(InstallReport {
                    schema_version: INSTALL_SCHEMA_VERSION,
                    action: settings.action,
                    fingerprint: hw.fingerprint.clone(),
                    bench_source,
                    plan,
                    attempts,
                    config_path,
                    state_path: State::path(&paths.state_dir),
                    config: cfg,
                    pruned,
                    warnings,
                });
            }

            attempt.outcome = AttemptOutcome::Missed;
            attempt.detail = Some(verdict.reasons.join("; "));
            attempts.push(attempt);
            state.verify = Some(report.clone());
            state.verdict = Some(verdict.clone());
            record(
                &mut state,
                settings,
                &choice,
                Outcome::Missed,
                Some(report.turn_s),
            );
            state.save(&paths.state_dir).map_err(InstallError::State)?;
            match (settings.on_miss, &choice.tier) {
                (OnMiss::Downgrade, Some(tier)) if report.logits_finite => {
                    progress.note(&format!(
                        "`{}` missed its promise ({}); planning the next tier down with the measured figures",
                        choice.model,
                        verdict.reasons.join("; ")
                    ));
                    select.below_tier = Some(tier.clone());
                    select.tier = None;
                    select.model = None;
                    select.correction_ratio = correction.or(select.correction_ratio);
                    select.components = components.or(select.components);
                    plan = plan_for(hw, bench.as_ref(), &bench_source, settings, &select)?;
                }
                _ => {
                    return Err(InstallError::Missed {
                        model: choice.model.clone(),
                        reasons: verdict.reasons,
                        attempts,
                    });
                }
            }
        }
    }
}

/// Plan with the settings' registry and tiers.
fn plan_for(
    hw: &HardwareProfile,
    bench: Option<&BenchResult>,
    bench_source: &str,
    settings: &InstallSettings,
    select: &SelectOptions,
) -> Result<Plan, SelectError> {
    select::plan(
        hw,
        bench,
        bench_source,
        &settings.registry,
        &settings.tiers,
        select,
    )
}

/// The turn budget the chosen model was planned against: the tier's (possibly tightened) budget.
fn plan_budget(plan: &Plan, choice: &Choice) -> f64 {
    choice
        .tier
        .as_ref()
        .and_then(|t| plan.tiers.iter().find(|r| r.id == *t))
        .map(|r| r.budget_turn_s)
        .or(plan.max_latency_s)
        .unwrap_or(choice.prediction.turn_s.max(1.0) * 2.0)
}

/// The requests for every file of `file` (one, or a split model's parts in order) from
/// `endpoint`. `None` when a file has no sha256 (the model is not installable).
pub fn fetch_requests(
    file: &ModelFile,
    endpoint: &str,
    revision: &str,
) -> Option<Vec<FetchRequest>> {
    file.files()
        .into_iter()
        .map(|f| {
            let hf = HfFile {
                endpoint: endpoint.to_string(),
                repo: file.repo.clone(),
                revision: revision.to_string(),
                path: f.filename.clone(),
            };
            Some(FetchRequest::hugging_face(
                hf,
                f.sha256.as_deref()?,
                f.size_bytes,
                file.gated,
            ))
        })
        .collect()
}

/// A failed download: which part of a split model (in words) and the fetch stage's error.
type DownloadFailure = (Option<String>, FetchError);

/// Download `file` into the models directory: the report of the file llama.cpp is given, and for
/// a split model every part's (all in place and verified, or none; see [`fetch::fetch_set`]).
// The fetch stage's error is large by design (it carries the URL, paths and what happened to the
// partial file); it is boxed as soon as it joins an `InstallError`.
#[allow(clippy::result_large_err)]
fn download(
    file: &ModelFile,
    settings: &InstallSettings,
    progress: &dyn Progress,
) -> Result<(FetchReport, Vec<FetchReport>), DownloadFailure> {
    let reqs = fetch_requests(file, &settings.endpoint, &file.revision).ok_or_else(|| {
        let reason = file
            .not_installable_reason()
            .unwrap_or_else(|| "no sha256".into());
        (None, FetchError::BadRequest { reason })
    })?;
    let mut opts = settings.fetch.clone();
    opts.dest_dir = settings.paths.models_dir.clone();
    if !file.is_split() {
        return fetch::fetch(&reqs[0], &opts, progress)
            .map(|r| (r, Vec::new()))
            .map_err(|e| (None, e));
    }
    match fetch::fetch_set(&reqs, &opts, progress) {
        Ok(set) => Ok((set.parts[0].clone(), set.parts)),
        Err(e) => Err((Some(e.to_string()), e.source)),
    }
}

/// Threads, GPU layers, context and workload for the verification, as planned.
fn verify_settings(
    hw: &HardwareProfile,
    bench: Option<&BenchResult>,
    choice: &Choice,
    s: &InstallSettings,
) -> VerifySettings {
    let threads = s
        .threads
        .or(bench.map(|b| b.threads).filter(|t| *t > 0))
        .unwrap_or_else(|| hw.compute_cores());
    let w = &choice.prediction.workload;
    VerifySettings {
        threads,
        gpu_layers: if s.gpu {
            choice.prediction.placement.gpu_layers
        } else {
            0
        },
        context_tokens: w.context_tokens.max(w.prompt_tokens + w.response_tokens),
        prompt_tokens: w.prompt_tokens,
        response_tokens: w.response_tokens,
        concurrency: w.users(),
        cpu_variant: s.cpu_variant.clone(),
    }
}

fn runtime_config(
    choice: &Choice,
    file: &ModelFile,
    (fetched, parts): (&FetchReport, &[FetchReport]),
    report: &VerifyReport,
    (promised_turn, promised_load): (f64, f64),
    requires: Vec<Capability>,
    measured_as_promise: bool,
) -> RuntimeConfig {
    let st = &report.settings;
    let (turn_s, cold_load_s) = if measured_as_promise {
        (report.turn_s, report.load_s.max(promised_load))
    } else {
        (promised_turn, promised_load)
    };
    RuntimeConfig {
        schema_version: CONFIG_SCHEMA_VERSION,
        tier: choice.tier.clone().unwrap_or_else(|| "custom".into()),
        model: ModelRef {
            id: file.id.clone(),
            path: fetched.path.clone(),
            sha256: fetched.sha256.clone(),
            size_bytes: if parts.is_empty() {
                fetched.bytes
            } else {
                parts.iter().map(|p| p.bytes).sum()
            },
            parts: parts
                .iter()
                .map(|p| PartRef {
                    path: p.path.clone(),
                    sha256: p.sha256.clone(),
                    size_bytes: p.bytes,
                })
                .collect(),
        },
        threads: st.threads,
        gpu_layers: st.gpu_layers,
        context_tokens: st.context_tokens,
        concurrency: st.concurrency.max(1),
        promise: InstalledPromise {
            turn_s,
            cold_load_s,
            prompt_tokens: st.prompt_tokens,
            response_tokens: st.response_tokens,
            requires,
        },
        verified: verified(report),
        capabilities: report.capabilities.clone(),
        cpu_variant: report.cpu_variant.clone(),
        llama_server: config::llama_server_command(
            &fetched.path,
            st.threads,
            st.gpu_layers,
            st.context_tokens,
            st.concurrency,
        ),
    }
}

fn record(
    state: &mut State,
    settings: &InstallSettings,
    choice: &Choice,
    outcome: Outcome,
    turn_s: Option<f64>,
) {
    state.push_history(HistoryEntry {
        at: time::now(),
        action: settings.action,
        tier: choice.tier.clone(),
        model_id: Some(choice.model.clone()),
        outcome,
        turn_s,
    });
}

/// The capabilities a verification must find: the flags' and the tier's, each once, in order.
pub fn required(flags: &[Capability], tier: &[Capability]) -> Vec<Capability> {
    let mut all: Vec<Capability> = flags.iter().chain(tier).copied().collect();
    all.sort();
    all.dedup();
    all
}

/// The runtime config's record of a verification run.
pub fn verified(r: &VerifyReport) -> Verified {
    Verified {
        at: r.at,
        load_s: r.load_s,
        ttft_s: r.ttft_s,
        prefill_tokens_per_s: r.prefill_tokens_per_s,
        decode_tokens_per_s: r.decode_tokens_per_s,
        turn_s: r.turn_s,
    }
}

/// Remove `*.gguf` files (and stale `.part` files) in `models_dir` other than those in `keep`
/// (every part of a split model), and what other split models left in the staging directory.
pub fn prune(models_dir: &Path, keep: &[PathBuf]) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(models_dir) else {
        return removed;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let is_model = name.ends_with(".gguf") || name.ends_with(".gguf.part");
        if is_model && !keep.contains(&p) && p.is_file() && std::fs::remove_file(&p).is_ok() {
            removed.push(p);
        }
    }
    let staging = models_dir.join(fetch::STAGING_DIR);
    for e in std::fs::read_dir(&staging).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() && std::fs::remove_dir_all(&p).is_ok() {
            removed.push(p);
        }
    }
    let _ = std::fs::remove_dir(&staging);
    removed
}

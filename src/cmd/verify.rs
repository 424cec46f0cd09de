//! `minerva-setup verify`: run the installed model (or any `--model-file`) the way the application
//! will, measure one turn, and compare it with the promise. On a miss, `--on-miss` decides:
//! `downgrade` installs the next tier down, `warn` records the measured figures as the promise,
//! `fail` exits 5. The config changes only after a run that is accepted.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use crate::cli::{Ctx, Human};
use crate::cmd::install::{self, InstallArgs};
use crate::config::{self, RuntimeConfig};
use crate::exit::{Exit, Failure, ResultExt};
use crate::install::OnMiss;
use crate::state::{self, HistoryEntry, State};
use crate::verify::{self, Verdict, VerifyReport, VerifySettings};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Verify this GGUF instead of the installed model (nothing is recorded).
    #[arg(long, value_name = "FILE")]
    pub model_file: Option<PathBuf>,
    /// GPU layers to offload (default: as installed, else 0).
    #[arg(long, value_name = "N")]
    pub gpu_layers: Option<u32>,
    #[command(flatten)]
    pub install: InstallArgs,
}

/// What `verify` measured and decided.
#[derive(Debug, Serialize)]
pub struct VerifyOutcome {
    pub report: VerifyReport,
    pub verdict: Option<Verdict>,
    pub promised_turn_s: Option<f64>,
    /// What was done with the result: `recorded`, `kept with measured figures`, `not recorded`.
    pub action: String,
}

pub fn run(ctx: &Ctx, args: &VerifyArgs) -> Result<(), Failure> {
    let a = &args.install;
    let hw = ctx.hardware(false)?;
    let config_path = RuntimeConfig::path(&ctx.paths.config_dir);
    let installed: Option<RuntimeConfig> = if args.model_file.is_some() {
        None
    } else {
        let c = state::load_json(&config_path).exit(Exit::BadInput)?;
        if c.is_none() {
            return Err(Failure::new(
                Exit::Usage,
                anyhow::anyhow!(
                    "nothing is installed: `{}` does not exist",
                    config_path.display()
                ),
            )
            .hint("run `minerva-setup install`, or verify a file with --model-file FILE.gguf"));
        }
        c
    };
    let (path, settings, promise) = match (&args.model_file, &installed) {
        (Some(f), _) => {
            let w = a
                .workload
                .overrides()
                .apply(crate::select::DEFAULT_WORKLOAD);
            let s = VerifySettings {
                threads: a.threads.unwrap_or_else(|| hw.compute_cores()),
                gpu_layers: args.gpu_layers.unwrap_or(0),
                context_length: w.context_tokens,
                prompt_tokens: w.prompt_tokens,
                response_tokens: w.response_tokens,
            };
            (f.clone(), s, a.max_latency.map(|t| (t, f64::INFINITY)))
        }
        (None, Some(c)) => {
            let s = VerifySettings {
                threads: a.threads.unwrap_or(c.threads),
                gpu_layers: args.gpu_layers.unwrap_or(c.gpu_layers),
                context_length: a.workload.context_tokens.unwrap_or(c.context_length),
                prompt_tokens: a.workload.prompt_tokens.unwrap_or(c.promise.prompt_tokens),
                response_tokens: a
                    .workload
                    .response_tokens
                    .unwrap_or(c.promise.response_tokens),
            };
            let turn = a
                .max_latency
                .map_or(c.promise.turn_s, |m| m.min(c.promise.turn_s));
            (c.model.path.clone(), s, Some((turn, c.promise.cold_load_s)))
        }
        (None, None) => unreachable!("checked above"),
    };
    let progress = ctx.progress();
    let report = verify::run(&path, &settings, progress.as_ref())
        .exit(Exit::Verify)
        .map_err(|f| f.hint("the previous config and model were left in place"))?;
    let verdict = promise.map(|(turn, load)| {
        let state = State::load(&ctx.paths.state_dir).ok().flatten();
        let predicted = state
            .as_ref()
            .and_then(|s| s.plan.as_ref())
            .and_then(|p| p.chosen.as_ref())
            .map(|c| c.prediction.turn_s);
        verify::judge(
            &report,
            turn,
            load,
            if installed.is_some() { predicted } else { None },
        )
    });
    let mut outcome = VerifyOutcome {
        report: report.clone(),
        verdict: verdict.clone(),
        promised_turn_s: promise.map(|p| p.0),
        action: "not recorded".into(),
    };
    let passed = verdict.as_ref().is_none_or(|v| v.passed)
        && report.logits_finite
        && report.generated_tokens > 0;
    let Some(mut cfg) = installed else {
        ctx.emit(&outcome)?;
        return if passed {
            Ok(())
        } else {
            Err(missed(&outcome))
        };
    };
    let _lock = state::RunLock::acquire(&ctx.paths.state_dir).map_err(|e| match e {
        state::StateError::Locked { .. } => Failure::new(Exit::Locked, e),
        other => Failure::new(Exit::Failure, other),
    })?;
    let mut st = State::load(&ctx.paths.state_dir).exit(Exit::BadInput)?;
    let record = |st: &mut Option<State>, outcome: &str| {
        if let Some(s) = st.as_mut() {
            s.verify = Some(report.clone());
            s.verdict = verdict.clone();
            if let Some(r) = verdict.as_ref().and_then(|v| v.measured_over_predicted) {
                s.correction = Some(r);
            }
            s.history.push(HistoryEntry {
                at: report.at.clone(),
                action: "verify".into(),
                tier: Some(cfg.tier.clone()),
                model_id: Some(cfg.model.id.clone()),
                outcome: outcome.into(),
                turn_s: Some(report.turn_s),
            });
        }
    };
    if passed || a.on_miss == OnMiss::Warn {
        cfg.verified = config::Verified::from_report(&report);
        if !passed {
            cfg.promise.turn_s = report.turn_s;
            cfg.promise.cold_load_s = cfg.promise.cold_load_s.max(report.load_s);
        }
        state::save_json(&config_path, &cfg).exit(Exit::Failure)?;
        record(
            &mut st,
            if passed {
                "passed"
            } else {
                "missed, kept (warn)"
            },
        );
        if let Some(s) = st.as_mut() {
            s.save(&ctx.paths.state_dir).exit(Exit::Failure)?;
        }
        outcome.action = if passed {
            "recorded".into()
        } else {
            "kept with measured figures as the promise".into()
        };
        return ctx.emit(&outcome);
    }
    record(&mut st, "missed");
    if let Some(s) = st.as_mut() {
        s.save(&ctx.paths.state_dir).exit(Exit::Failure)?;
    }
    if a.on_miss == OnMiss::Fail {
        ctx.emit(&outcome)?;
        return Err(missed(&outcome));
    }
    // Downgrade: plan below the installed tier with the measured correction, then install.
    drop(_lock);
    let hw = if ctx.hardware_file.is_some() {
        hw
    } else {
        ctx.hardware(true)?
    };
    let mut settings = install::settings(ctx, &hw, a, "verify")?;
    settings.select.below_tier = Some(cfg.tier.clone());
    settings.on_miss = OnMiss::Downgrade;
    let done = install::run_unattended(ctx, &hw, &settings)?;
    ctx.emit(&done)
}

fn missed(o: &VerifyOutcome) -> Failure {
    let reasons = o
        .verdict
        .as_ref()
        .map(|v| v.reasons.join("; "))
        .unwrap_or_default();
    let reasons = if reasons.is_empty() {
        "the output failed its sanity checks".to_string()
    } else {
        reasons
    };
    Failure::new(Exit::Verify, anyhow::anyhow!("verification missed: {reasons}"))
        .hint("the config was left unchanged; --on-miss warn records the real figures, --on-miss downgrade installs the next tier down")
}

impl Human for VerifyOutcome {
    fn human(&self) -> String {
        let r = &self.report;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Model     {} ({})",
            r.model_path.display(),
            r.architecture
        );
        let _ = writeln!(
            s,
            "Settings  {} threads, {} GPU layers, context {}; prompt {} tokens, answer {} tokens",
            r.settings.threads,
            r.settings.gpu_layers,
            r.settings.context_length,
            r.prompt_tokens,
            r.generated_tokens
        );
        let _ = writeln!(
            s,
            "Measured  load {:.2} s, first token {:.2} s, prefill {:.0} tok/s, decode {:.1} tok/s",
            r.load_s, r.ttft_s, r.prefill_tokens_per_s, r.decode_tokens_per_s
        );
        let _ = writeln!(
            s,
            "Turn      {:.2} s warm, {:.2} s cold",
            r.turn_s, r.cold_turn_s
        );
        let _ = writeln!(
            s,
            "Output    {} tokens, logits {}, text {}{}",
            r.generated_tokens,
            if r.logits_finite {
                "finite"
            } else {
                "NOT finite"
            },
            if r.utf8_valid {
                "valid UTF-8"
            } else {
                "NOT valid UTF-8"
            },
            if r.chat_template_used {
                ", model's chat template"
            } else {
                ", plain transcript"
            }
        );
        if let Some(v) = &self.verdict {
            let _ = writeln!(
                s,
                "Verdict   {} (turn {:.0}% of the promised {:.1} s)",
                if v.passed { "PASS" } else { "MISS" },
                v.turn_ratio * 100.0,
                self.promised_turn_s.unwrap_or(0.0)
            );
            for reason in &v.reasons {
                let _ = writeln!(s, "          - {reason}");
            }
        }
        let _ = writeln!(s, "Recorded  {}", self.action);
        s
    }
}

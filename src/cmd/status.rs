//! `minerva-setup status`: what is installed, what it promised, what it really did, when it was
//! verified, and whether the hardware still matches (a re-tier is due when it does not).
//! what its verification found it capable of (stopping, a usable answer, chat template, tool
//! call). `--ansible-facts` also writes the summary as Ansible local facts, `--nfd-features` as a
//! Node Feature Discovery feature file (node labels on Kubernetes).

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;

use crate::app::render::capability_lines;
use crate::app::{Ctx, Human};
use crate::config::RuntimeConfig;
use crate::exit::{Exit, Failure, ResultExt};
use crate::pipeline::retier;
use crate::profile::HardwareProfile;
use crate::state::{self, HistoryEntry, State};
use crate::types::capabilities::{AnswerKind, Capabilities, Capability, TemplateSource};
use crate::types::time::Timestamp;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Also write the summary as Ansible local facts (`minerva.fact`, JSON).
    #[arg(long)]
    pub ansible_facts: bool,
    /// Directory for the facts file.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/etc/ansible/facts.d",
        requires = "ansible_facts"
    )]
    pub facts_dir: PathBuf,
    /// Also write a Node Feature Discovery local feature file (`key=value` lines that
    /// nfd-worker turns into `feature.node.kubernetes.io/minerva-*` node labels): tier, model,
    /// verified turn, re-tier due, CPU variant, GPUs. Without a value: NFD's default path.
    #[arg(
        long,
        value_name = "FILE",
        num_args = 0..=1,
        default_missing_value = NFD_FEATURES_FILE
    )]
    pub nfd_features: Option<PathBuf>,
}

/// Where nfd-worker reads local feature files.
pub const NFD_FEATURES_FILE: &str = "/etc/kubernetes/node-feature-discovery/features.d/minerva";

/// The `status` document.
#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub installed: bool,
    pub tier: Option<String>,
    pub model: Option<String>,
    pub model_path: Option<PathBuf>,
    pub model_sha256: Option<String>,
    pub promised_turn_s: Option<f64>,
    pub promised_cold_load_s: Option<f64>,
    /// Conversations the promise and the verification are for (the server's `--parallel`).
    pub concurrency: Option<u32>,
    /// llama.cpp's CPU kernel variant: the one the installed model was verified with, else the
    /// one this CPU's features select (before any check).
    pub cpu_variant: Option<String>,
    pub predicted_turn_s: Option<f64>,
    pub verified_turn_s: Option<f64>,
    pub verified_load_s: Option<f64>,
    pub verified_decode_tokens_per_s: Option<f64>,
    pub verified_at: Option<Timestamp>,
    pub llama_server_command: Option<String>,
    /// What the last accepted verification's capability checks found (absent before they existed).
    pub capabilities: Option<Capabilities>,
    /// Capabilities every verification of the installed model must find.
    pub requires: Vec<Capability>,
    /// The model file is still there with its size (its sha256 is checked by `verify`).
    pub model_file_present: Option<bool>,
    pub fingerprint_stored: Option<String>,
    pub fingerprint_now: String,
    pub hardware_changed: bool,
    pub retier_due: bool,
    /// Why a re-tier is or is not due.
    pub retier_reason: String,
    pub correction_ratio: Option<f64>,
    pub hardware: HardwareSummary,
    pub config_path: PathBuf,
    pub state_path: PathBuf,
    pub recent: Vec<HistoryEntry>,
    /// Where the facts file was written, with `--ansible-facts`.
    pub facts_path: Option<PathBuf>,
    /// Where the NFD feature file was written, with `--nfd-features`.
    pub nfd_features_path: Option<PathBuf>,
}

/// The hardware in a few fields, for fleets.
#[derive(Debug, Serialize)]
pub struct HardwareSummary {
    pub cpu: String,
    pub microarchitecture: String,
    pub simd_level: String,
    pub physical_cores: u32,
    pub usable_ram_gib: f64,
    pub gpus: Vec<String>,
}

impl HardwareSummary {
    pub fn of(hw: &HardwareProfile) -> HardwareSummary {
        HardwareSummary {
            cpu: hw.cpu.brand.trim().to_string(),
            microarchitecture: hw.cpu.microarchitecture.clone(),
            simd_level: hw.cpu.simd_level.as_str().to_string(),
            physical_cores: hw.cpu.physical_cores,
            usable_ram_gib: (hw.memory.usable_bytes as f64 / (1u64 << 30) as f64 * 10.0).round()
                / 10.0,
            gpus: hw
                .gpus
                .iter()
                .map(|g| {
                    format!(
                        "{} ({:.0} GiB)",
                        g.name,
                        g.vram_total_bytes as f64 / (1u64 << 30) as f64
                    )
                })
                .collect(),
        }
    }
}

pub fn run(ctx: &Ctx, args: &StatusArgs) -> Result<(), Failure> {
    // The fingerprint needs no bandwidth figure: skip the measurement to answer fast.
    let hw = ctx.hardware(false)?;
    let report = build(ctx, &hw)?;
    let mut report = report;
    if args.ansible_facts {
        let path = args.facts_dir.join("minerva.fact");
        let facts = facts(&report);
        state::save_json(&path, &facts)
            .exit(Exit::Failure)
            .map_err(|f| f.hint("run as root for /etc/ansible/facts.d, or pass --facts-dir"))?;
        report.facts_path = Some(path);
    }
    if let Some(path) = &args.nfd_features {
        let text = nfd_features(&report);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create `{}`", dir.display()))
                .exit(Exit::Failure)?;
        }
        crate::fsutil::write_atomic(path, text.as_bytes())
            .with_context(|| format!("cannot write `{}`", path.display()))
            .exit(Exit::Failure)
            .map_err(|f| {
                f.hint("run as root for NFD's features.d, or give --nfd-features another FILE")
            })?;
        report.nfd_features_path = Some(path.clone());
    }
    ctx.emit(&report)
}

/// The Node Feature Discovery local feature file: one `minerva-NAME=VALUE` line per fact,
/// values in Kubernetes label syntax (at most 63 characters of letters, digits, `-`, `_` and
/// `.`, starting and ending with a letter or digit). nfd-worker labels the node with
/// `feature.node.kubernetes.io/minerva-NAME=VALUE`.
pub fn nfd_features(r: &StatusReport) -> String {
    let mut lines: Vec<(&str, String)> = vec![("installed", r.installed.to_string())];
    if let Some(t) = &r.tier {
        lines.push(("tier", t.clone()));
    }
    if let Some(m) = &r.model {
        // A label holds no `/` or `:`: an `hf:` id keeps its file name.
        let name = m.rsplit('/').next().unwrap_or(m);
        lines.push(("model", name.trim_end_matches(".gguf").to_string()));
    }
    if let Some(t) = r.verified_turn_s {
        lines.push(("verified-turn-s", format!("{t:.1}")));
    }
    if let Some(t) = r.promised_turn_s {
        lines.push(("promised-turn-s", format!("{t:.1}")));
    }
    if let Some(n) = r.concurrency {
        lines.push(("concurrency", n.to_string()));
    }
    lines.push(("retier-due", r.retier_due.to_string()));
    if let Some(v) = &r.cpu_variant {
        lines.push(("cpu-variant", v.clone()));
    }
    lines.push(("simd", r.hardware.simd_level.clone()));
    lines.push(("gpus", r.hardware.gpus.len().to_string()));
    let mut out = String::from(
        "# minerva-setup status: node facts for Node Feature Discovery (rewritten by every\n\
         # `minerva-setup status --nfd-features`).\n",
    );
    for (k, v) in lines {
        if let Some(v) = label_value(&v) {
            out.push_str(&format!("minerva-{k}={v}\n"));
        }
    }
    out
}

/// `value` in Kubernetes label-value syntax, or `None` when nothing of it is left.
fn label_value(value: &str) -> Option<String> {
    let mapped: String = value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    let trimmed = mapped.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// Read config and state and compare the stored fingerprint with `hw`'s.
pub fn build(ctx: &Ctx, hw: &HardwareProfile) -> Result<StatusReport, Failure> {
    let config_path = RuntimeConfig::path(&ctx.paths.config_dir);
    let state_path = State::path(&ctx.paths.state_dir);
    let hint = "it was left as it is; fix or remove it, then run `minerva-setup install`";
    let config: Option<RuntimeConfig> = state::load_json(&config_path)
        .exit(Exit::BadInput)
        .map_err(|f| f.hint(hint))?;
    let state = State::load(&ctx.paths.state_dir)
        .exit(Exit::BadInput)
        .map_err(|f| f.hint(hint))?;
    let decision = retier::decide(state.as_ref(), config.is_some(), hw);
    let predicted = state
        .as_ref()
        .and_then(|s| s.plan.as_ref())
        .and_then(|p| p.chosen.as_ref())
        .map(|c| c.prediction.turn_s);
    let recent = state
        .as_ref()
        .map(|s| s.history.iter().rev().take(5).cloned().collect())
        .unwrap_or_default();
    Ok(StatusReport {
        installed: config.is_some(),
        tier: config.as_ref().map(|c| c.tier.clone()),
        model: config.as_ref().map(|c| c.model.id.clone()),
        model_path: config.as_ref().map(|c| c.model.path.clone()),
        model_sha256: config.as_ref().map(|c| c.model.sha256.clone()),
        promised_turn_s: config.as_ref().map(|c| c.promise.turn_s),
        promised_cold_load_s: config.as_ref().map(|c| c.promise.cold_load_s),
        concurrency: config.as_ref().map(|c| c.concurrency.max(1)),
        cpu_variant: config
            .as_ref()
            .and_then(|c| c.cpu_variant.as_ref().map(|v| v.name.clone()))
            .or_else(|| {
                crate::llama::cpu::expected_variant(&hw.cpu.simd).map(|v| v.name.to_string())
            }),
        predicted_turn_s: predicted,
        verified_turn_s: config.as_ref().map(|c| c.verified.turn_s),
        verified_load_s: config.as_ref().map(|c| c.verified.load_s),
        verified_decode_tokens_per_s: config.as_ref().map(|c| c.verified.decode_tokens_per_s),
        verified_at: config.as_ref().map(|c| c.verified.at),
        llama_server_command: config.as_ref().map(|c| c.llama_server.command.clone()),
        capabilities: config.as_ref().and_then(|c| c.capabilities.clone()),
        requires: config
            .as_ref()
            .map(|c| c.promise.requires.clone())
            .unwrap_or_default(),
        // Every file of the model, all parts of a split one, with its size.
        model_file_present: config.as_ref().map(|c| {
            c.model.files().iter().all(|(path, bytes)| {
                std::fs::metadata(path)
                    .map(|m| m.len() == *bytes)
                    .unwrap_or(false)
            })
        }),
        fingerprint_stored: decision.fingerprint_stored,
        fingerprint_now: decision.fingerprint_now,
        hardware_changed: decision.hardware_changed,
        retier_due: decision.due,
        retier_reason: decision.reason,
        correction_ratio: state.as_ref().and_then(|s| s.correction_ratio),
        hardware: HardwareSummary::of(hw),
        config_path,
        state_path,
        recent,
        facts_path: None,
        nfd_features_path: None,
    })
}

/// The Ansible local facts document (`ansible_local.minerva.*`).
#[derive(Debug, Serialize)]
pub struct AnsibleFacts<'a> {
    pub installed: bool,
    pub tier: Option<&'a str>,
    pub model: Option<&'a str>,
    pub model_path: Option<&'a PathBuf>,
    pub planned_turn_s: Option<f64>,
    pub promised_turn_s: Option<f64>,
    pub verified_turn_s: Option<f64>,
    pub verified_decode_tokens_per_s: Option<f64>,
    pub verified_at: Option<Timestamp>,
    /// Conversations at once the promise holds for.
    pub concurrency: Option<u32>,
    pub retier_due: bool,
    pub fingerprint: &'a str,
    pub hardware: &'a HardwareSummary,
    /// Absent until a verification with capability checks is recorded.
    pub capabilities: Option<CapabilityFacts>,
}

/// The capability checks in flat fields a playbook can test
/// (`ansible_local.minerva.capabilities.tool_call_matches`).
#[derive(Debug, Serialize)]
pub struct CapabilityFacts {
    pub stopped_at_end_token: bool,
    pub answer_tokens: u32,
    /// `normal`, `empty`, `blank` or `loop`.
    pub answer: &'static str,
    pub degenerate: bool,
    pub repeated_ratio: f64,
    /// `gguf`, `built-in` or `none`.
    pub chat_template: &'static str,
    /// The model's own tool call matched the schema; `None` when it was not checked.
    pub tool_call_matches: Option<bool>,
    /// A grammar-constrained tool call matched the schema; `None` when it was not checked.
    pub constrained_tool_call_matches: Option<bool>,
    pub requires: Vec<&'static str>,
    pub warnings: Vec<String>,
}

impl CapabilityFacts {
    fn of(c: &Capabilities, requires: &[Capability]) -> CapabilityFacts {
        CapabilityFacts {
            stopped_at_end_token: c.stopping.stopped_at_end_token,
            answer_tokens: c.stopping.answer_tokens,
            answer: c.answer.kind.as_str(),
            degenerate: c.answer.kind != AnswerKind::Normal,
            repeated_ratio: c.answer.repeated_ratio,
            chat_template: match c.chat_template.source {
                TemplateSource::Gguf => "gguf",
                TemplateSource::BuiltIn => "built-in",
                TemplateSource::None => "none",
            },
            tool_call_matches: c.tool_call.as_ref().map(|t| t.unconstrained.matches_schema),
            constrained_tool_call_matches: c
                .tool_call
                .as_ref()
                .map(|t| t.constrained.matches_schema),
            requires: requires.iter().map(|r| r.as_str()).collect(),
            warnings: c.warnings.clone(),
        }
    }
}

fn facts(r: &StatusReport) -> AnsibleFacts<'_> {
    AnsibleFacts {
        installed: r.installed,
        tier: r.tier.as_deref(),
        model: r.model.as_deref(),
        model_path: r.model_path.as_ref(),
        planned_turn_s: r.predicted_turn_s,
        promised_turn_s: r.promised_turn_s,
        verified_turn_s: r.verified_turn_s,
        verified_decode_tokens_per_s: r.verified_decode_tokens_per_s,
        verified_at: r.verified_at,
        concurrency: r.concurrency,
        retier_due: r.retier_due,
        fingerprint: &r.fingerprint_now,
        hardware: &r.hardware,
        capabilities: r
            .capabilities
            .as_ref()
            .map(|c| CapabilityFacts::of(c, &r.requires)),
    }
}

impl Human for StatusReport {
    fn human(&self) -> String {
        let mut s = String::new();
        let num = |v: Option<f64>, unit: &str| {
            v.map(|x| format!("{x:.1} {unit}"))
                .unwrap_or_else(|| "-".into())
        };
        if self.installed {
            let _ = writeln!(
                s,
                "Installed {} (tier {})",
                self.model.as_deref().unwrap_or("?"),
                self.tier.as_deref().unwrap_or("?")
            );
            if let Some(p) = &self.model_path {
                let present = if self.model_file_present == Some(true) {
                    ""
                } else {
                    " (MISSING or wrong size)"
                };
                let _ = writeln!(s, "Model     {}{present}", p.display());
            }
            let _ = writeln!(
                s,
                "Promise   {} per turn{}, {} cold load",
                num(self.promised_turn_s, "s"),
                match self.concurrency {
                    Some(n) if n > 1 => format!(" for each of {n} users at once (p95)"),
                    _ => String::new(),
                },
                num(self.promised_cold_load_s, "s")
            );
            let _ = writeln!(
                s,
                "Verified  {} per turn, {} load, {} at {}",
                num(self.verified_turn_s, "s"),
                num(self.verified_load_s, "s"),
                num(self.verified_decode_tokens_per_s, "tok/s"),
                self.verified_at
                    .map_or_else(|| "-".to_string(), |t| t.to_string())
            );
            if let Some(p) = self.predicted_turn_s {
                let _ = writeln!(s, "Predicted {p:.1} s per turn");
            }
            match &self.capabilities {
                Some(c) => s.push_str(&capability_lines(c)),
                None => {
                    let _ = writeln!(
                        s,
                        "Checks    none recorded (verified before capability checks; run `minerva-setup verify`)"
                    );
                }
            }
            if !self.requires.is_empty() {
                let r: Vec<&str> = self.requires.iter().map(|r| r.as_str()).collect();
                let _ = writeln!(s, "Requires  {}", r.join(", "));
            }
            if let Some(c) = &self.llama_server_command {
                let _ = writeln!(s, "Serve     {c}");
            }
        } else {
            let _ = writeln!(s, "Installed nothing yet (run `minerva-setup install`)");
        }
        let hw = if self.hardware_changed {
            "CHANGED since the tier was chosen: a re-tier is due (`minerva-setup retier`)"
        } else if self.fingerprint_stored.is_some() {
            "unchanged"
        } else {
            "no stored fingerprint"
        };
        let _ = writeln!(s, "Hardware  {hw} [{}]", self.fingerprint_now);
        let _ = writeln!(
            s,
            "Re-tier   {}: {}",
            if self.retier_due { "due" } else { "not needed" },
            self.retier_reason
        );
        if let Some(c) = self.correction_ratio {
            let _ = writeln!(s, "Correction measured/predicted = {c:.2}");
        }
        for h in &self.recent {
            let _ = writeln!(
                s,
                "History   {} {} {} {}: {}",
                h.at,
                h.action.as_str(),
                h.tier.as_deref().unwrap_or("-"),
                h.model_id.as_deref().unwrap_or("-"),
                h.outcome.as_str()
            );
        }
        let _ = writeln!(s, "Config    {}", self.config_path.display());
        if let Some(f) = &self.facts_path {
            let _ = writeln!(s, "Facts     {}", f.display());
        }
        if let Some(f) = &self.nfd_features_path {
            let _ = writeln!(s, "Features  {} (Node Feature Discovery)", f.display());
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::label_value;

    #[test]
    fn label_values_follow_kubernetes_syntax() {
        assert_eq!(label_value("cpu-light").as_deref(), Some("cpu-light"));
        assert_eq!(label_value("12.5").as_deref(), Some("12.5"));
        assert_eq!(
            label_value("hf:org/m_Q4.gguf").as_deref(),
            Some("hf-org-m_Q4.gguf")
        );
        assert_eq!(label_value("-x-").as_deref(), Some("x"));
        assert_eq!(label_value("::"), None);
        let long = "a".repeat(62) + "-b";
        assert_eq!(label_value(&long).unwrap(), "a".repeat(62));
    }
}

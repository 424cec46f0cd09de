//! Human reports that several subcommands print.

use std::fmt::Write as _;

use crate::pipeline::reverify::VerifyOutcome;
use crate::pipeline::InstallReport;
use crate::types::capabilities::{AnswerKind, Capabilities, JsonAttempt, TemplateSource};
use crate::types::workload::UserLatencies;

use super::Human;

impl Human for InstallReport {
    fn human(&self) -> String {
        let mut s = String::new();
        for a in &self.attempts {
            let tier = a.tier.as_deref().unwrap_or("custom");
            let detail = a
                .detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "Tried     {} ({tier}): {}{detail}",
                a.model,
                a.outcome.describe()
            );
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
            "Settings  {} threads, {} GPU layers, context {}{}",
            c.threads,
            c.gpu_layers,
            c.context_tokens,
            if c.concurrency > 1 {
                format!(
                    " per conversation, {} conversations at once (llama-server --parallel {}, --ctx-size {})",
                    c.concurrency,
                    c.concurrency,
                    c.context_tokens.saturating_mul(c.concurrency)
                )
            } else {
                String::new()
            }
        );
        if let Some(caps) = &c.capabilities {
            s.push_str(&capability_lines(caps));
        }
        if let Some(u) = self
            .attempts
            .last()
            .and_then(|a| a.verify.as_ref())
            .and_then(|r| r.concurrency.as_ref())
        {
            s.push_str(&users_line(u));
        }
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

/// What each of several users waited for, measured.
fn users_line(u: &UserLatencies) -> String {
    format!(
        "Users     {} at once, {} turns: turn p50 {:.2} s, p95 {:.2} s; first token p50 {:.2} s, p95 {:.2} s; {:.1} tok/s in all\n",
        u.users, u.turns, u.turn_p50_s, u.turn_p95_s, u.ttft_p50_s, u.ttft_p95_s, u.aggregate_tokens_per_s
    )
}

/// `icelake (avx512-vnni), checked in a child process; passed over: sapphirerapids (...)`.
pub fn variant_line(v: &crate::types::cpu_variant::CpuVariant) -> String {
    let how = match (v.forced, v.checked) {
        (true, true) => "forced with --cpu-variant, checked in a child process",
        (true, false) => {
            "forced with --cpu-variant, not checked (no minerva-setup binary to run the check)"
        }
        (false, true) => "the best this CPU runs, checked in a child process",
        (false, false) => {
            "the best this CPU runs, not checked (no minerva-setup binary to run the check)"
        }
    };
    let mut s = format!("llama.cpp CPU variant {} ({}), {how}", v.name, v.simd_level);
    if !v.rejected.is_empty() {
        let r: Vec<String> = v
            .rejected
            .iter()
            .map(|r| format!("{}: {}", r.name, r.reason))
            .collect();
        s.push_str(&format!("; passed over: {}", r.join("; ")));
    }
    s
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
            r.settings.context_tokens,
            r.prompt_tokens,
            r.generated_tokens
        );
        if let Some(v) = &r.cpu_variant {
            let _ = writeln!(s, "Kernels   {}", variant_line(v));
        }
        let _ = writeln!(
            s,
            "Measured  load {:.2} s, first token {:.2} s, prefill {:.0} tok/s, decode {:.1} tok/s",
            r.load_s, r.ttft_s, r.prefill_tokens_per_s, r.decode_tokens_per_s
        );
        let _ = writeln!(
            s,
            "Turn      {:.2} s warm, {:.2} s cold{}",
            r.turn_s,
            r.cold_turn_s,
            if r.concurrency.is_some() {
                " (p95 per user)"
            } else {
                ""
            }
        );
        if let Some(u) = &r.concurrency {
            s.push_str(&users_line(u));
        }
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
        if let Some(c) = &r.capabilities {
            s.push_str(&capability_lines(c));
        }
        for reason in &self.capability_reasons {
            let _ = writeln!(s, "Miss      {reason}");
        }
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
        if let Some(c) = self.correction_ratio {
            let _ = writeln!(s, "Calibrated later predictions on this machine × {c:.2}");
        }
        let _ = writeln!(s, "Recorded  {}", self.action.describe());
        if let Some(d) = &self.downgrade {
            s.push_str(&d.human());
        }
        s
    }
}

/// The capability checks' lines, shared by `verify`, `install` (and the wizard) and `status`.
pub fn capability_lines(c: &Capabilities) -> String {
    let mut s = String::new();
    let st = &c.stopping;
    let _ = if st.stopped_at_end_token {
        writeln!(
            s,
            "Stopping  ended at an end-of-generation token after {} of {} tokens",
            st.answer_tokens, st.budget_tokens
        )
    } else {
        writeln!(
            s,
            "Stopping  did not stop within the {}-token budget",
            st.budget_tokens
        )
    };
    let a = &c.answer;
    let _ = match a.kind {
        AnswerKind::Normal => writeln!(
            s,
            "Answer    normal ({:.0}% repeats)",
            a.repeated_ratio * 100.0
        ),
        AnswerKind::Loop => writeln!(
            s,
            "Answer    DEGENERATE: loops, {:.0}% repeats {:?}",
            a.repeated_ratio * 100.0,
            a.repeated_unit.as_deref().unwrap_or("")
        ),
        AnswerKind::Empty => writeln!(s, "Answer    DEGENERATE: empty (no visible text)"),
        AnswerKind::Blank => writeln!(s, "Answer    DEGENERATE: only whitespace"),
    };
    let t = &c.chat_template;
    let _ =
        match (t.source, t.builtin_name.as_deref()) {
            (TemplateSource::Gguf, _) => {
                writeln!(s, "Template  the model's own (GGUF metadata), applied")
            }
            (TemplateSource::BuiltIn, name) => {
                writeln!(
            s,
            "Template  llama.cpp's built-in `{}` for its family (none in the file{}), applied",
            name.unwrap_or("?"),
            if t.found_in_file { " that llama.cpp understands" } else { "" }
        )
            }
            (TemplateSource::None, _) => {
                writeln!(s, "Template  NONE usable: a plain transcript was sent")
            }
        };
    match &c.tool_call {
        Some(tc) => {
            let _ = writeln!(
                s,
                "Tool call {}: own answer {}; grammar-constrained {}",
                tc.schema,
                attempt(&tc.unconstrained),
                attempt(&tc.constrained)
            );
        }
        None => {
            let _ = writeln!(s, "Tool call not checked");
        }
    }
    let _ = writeln!(
        s,
        "Checks    {:.2} s after the timed turn (not part of its timing)",
        c.checks_s
    );
    for w in &c.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    s
}

fn attempt(a: &JsonAttempt) -> String {
    let verdict = if a.matches_schema {
        "matches".to_string()
    } else {
        format!("does not match ({})", a.detail)
    };
    format!("{verdict} [{} tokens, {:.2} s]", a.tokens, a.seconds)
}

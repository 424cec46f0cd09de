//! The verification run: load the installed GGUF the way the application will, run one turn of the
//! tier's workload through the model's own chat template, and measure what really happened.
//!
//! `run` produces a [`VerifyReport`]; `judge` compares it with the tier's promise. The decision of
//! what to do on a miss (downgrade, warn, fail) belongs to the caller. Knows nothing about the
//! network, the registry or the terminal.

use std::path::{Path, PathBuf};
use std::time::Instant;

use llama_cpp_2::model::LlamaChatMessage;
use llama_cpp_2::token::LlamaToken;
use serde::{Deserialize, Serialize};

use crate::gguf::reader::{self, GgufError};
use crate::llama::{self, LlamaError};
use crate::progress::{Progress, Unit};
use crate::types::time::{self, Timestamp};
use crate::types::workload::UserLatencies;

mod concurrent;
pub use concurrent::run_concurrent;

pub const VERIFY_SCHEMA_VERSION: u32 = 1;

/// How to run the model, as planned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifySettings {
    pub threads: u32,
    pub gpu_layers: u32,
    /// Context the model runs with (tokens of KV cache), not the trained context.
    #[serde(alias = "context_length")]
    pub context_tokens: u32,
    /// Target prompt size (system prompt plus question, template included).
    pub prompt_tokens: u32,
    /// Tokens to generate (end-of-sequence is ignored: the workload defines the answer length).
    pub response_tokens: u32,
    /// Conversations run at once, each with `context_tokens` of KV cache (see `concurrent`).
    #[serde(default = "one")]
    pub concurrency: u32,
}

fn one() -> u32 {
    1
}

/// What one verification run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyReport {
    pub schema_version: u32,
    pub model_path: PathBuf,
    pub architecture: String,
    pub settings: VerifySettings,
    /// Whether the model's own chat template was used (else a plain fallback, see `notes`).
    pub chat_template_used: bool,
    pub prompt_tokens: u32,
    pub generated_tokens: u32,
    /// Model load plus context creation.
    pub load_s: f64,
    /// From submitting the prompt to the first generated token.
    pub ttft_s: f64,
    pub prefill_tokens_per_s: f64,
    pub decode_tokens_per_s: f64,
    /// A warm turn: time to first token plus the rest of the answer.
    pub turn_s: f64,
    /// A cold turn: load plus a warm turn.
    pub cold_turn_s: f64,
    pub logits_finite: bool,
    pub utf8_valid: bool,
    /// The beginning of the generated text (lossy), for a person to glance at.
    pub output_sample: String,
    pub at: Timestamp,
    #[serde(default)]
    pub notes: Vec<String>,
    /// With several conversations at once: each user's p50/p95 and the aggregate rate; the
    /// report's `ttft_s` and `turn_s` are then the p95 per-user figures.
    #[serde(default)]
    pub concurrency: Option<UserLatencies>,
}

/// Why a verification could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("`{path}` is not a usable GGUF model")]
    Header {
        path: PathBuf,
        #[source]
        source: GgufError,
    },
    #[error(transparent)]
    Llama(#[from] LlamaError),
    #[error("the context length {ctx} is too small for a {prompt}-token prompt and a {response}-token answer")]
    ContextTooSmall {
        ctx: u32,
        prompt: u32,
        response: u32,
    },
    #[error("`{path}` produced no tokens")]
    NoTokens { path: PathBuf },
}

/// The system prompt is built from this paragraph, repeated to reach the tier's prompt size: an
/// operator's instructions of the kind an assistant application really sends.
const SYSTEM_PARAGRAPH: &str = "You are the on-premises assistant of an operations team. Answer \
questions about servers, deployments and incidents clearly and briefly. When you are unsure, say \
so and suggest how to check. Prefer concrete commands and numbers over general advice, and never \
invent hostnames, versions or figures. ";
const QUESTION: &str =
    "Our nightly backup job on the database server took twice as long as usual. \
What are the first three things I should check, and how?";

/// Load `path` with `settings`, run one turn, and measure it.
pub fn run(
    path: &Path,
    settings: &VerifySettings,
    progress: &dyn Progress,
) -> Result<VerifyReport, VerifyError> {
    if settings.concurrency > 1 {
        return run_concurrent(path, settings, progress);
    }
    // Our own header check first: a truncated file or a wrong magic gets a precise error here
    // instead of an opaque load failure inside llama.cpp.
    let header = reader::read_model(path).map_err(|source| VerifyError::Header {
        path: path.to_path_buf(),
        source,
    })?;
    let architecture = header.shape.architecture.clone();
    let need = settings
        .prompt_tokens
        .saturating_add(settings.response_tokens);
    if settings.context_tokens < need {
        return Err(VerifyError::ContextTooSmall {
            ctx: settings.context_tokens,
            prompt: settings.prompt_tokens,
            response: settings.response_tokens,
        });
    }
    let mut notes = Vec::new();
    let backend = llama::backend(false)?;

    progress.phase("loading model", None);
    let start = Instant::now();
    let loaded = llama::load(backend, path, settings.gpu_layers)?;
    let model_load_s = start.elapsed().as_secs_f64();

    // Tokenising is not part of loading: it is timed neither as load nor as the turn.
    let (tokens, chat_template_used) =
        build_prompt(&loaded.model, settings.prompt_tokens, &mut notes);
    let room = settings
        .context_tokens
        .saturating_sub(settings.response_tokens) as usize;
    let tokens: Vec<LlamaToken> = tokens.into_iter().take(room).collect();

    // The whole prompt is evaluated as one batch, as a server does for a prompt of this size.
    let n_batch = (tokens.len() as u32).max(32);
    let start = Instant::now();
    let mut session =
        loaded.session(backend, settings.threads, settings.context_tokens, n_batch)?;
    let load_s = model_load_s + start.elapsed().as_secs_f64();
    progress.finish();

    progress.phase_counting(
        "running one turn",
        Some(settings.response_tokens as u64),
        Unit::Tokens,
    );
    let mut out_bytes = Vec::new();
    let mut logits_finite = true;
    let turn_start = Instant::now();
    let prefill = session.prefill(&tokens);
    let ttft_s;
    let mut generated = 0u32;
    match prefill {
        Ok(_) => {
            ttft_s = turn_start.elapsed().as_secs_f64();
            generated = 1;
            push_piece(&loaded.model, session.last_token(), &mut out_bytes);
            while generated < settings.response_tokens {
                match session.generate(1) {
                    Ok(_) => {
                        generated += 1;
                        push_piece(&loaded.model, session.last_token(), &mut out_bytes);
                        progress.position(generated as u64);
                    }
                    Err(LlamaError::NonFiniteLogits { .. }) => {
                        logits_finite = false;
                        break;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Err(LlamaError::NonFiniteLogits { .. }) => {
            ttft_s = turn_start.elapsed().as_secs_f64();
            logits_finite = false;
        }
        Err(e) => return Err(e.into()),
    }
    let turn_s = turn_start.elapsed().as_secs_f64();
    progress.finish();
    if generated == 0 && logits_finite {
        return Err(VerifyError::NoTokens {
            path: path.to_path_buf(),
        });
    }
    let decode_s = (turn_s - ttft_s).max(1e-9);
    let utf8_valid = std::str::from_utf8(&out_bytes).is_ok();
    let text = String::from_utf8_lossy(&out_bytes);
    Ok(VerifyReport {
        schema_version: VERIFY_SCHEMA_VERSION,
        model_path: path.to_path_buf(),
        architecture,
        settings: settings.clone(),
        chat_template_used,
        prompt_tokens: tokens.len() as u32,
        generated_tokens: generated,
        load_s,
        ttft_s,
        prefill_tokens_per_s: tokens.len() as f64 / ttft_s.max(1e-9),
        decode_tokens_per_s: if generated > 1 {
            (generated - 1) as f64 / decode_s
        } else {
            0.0
        },
        turn_s,
        cold_turn_s: load_s + turn_s,
        logits_finite,
        utf8_valid,
        output_sample: text.chars().take(200).collect(),
        at: time::now(),
        notes,
        concurrency: None,
    })
}

fn push_piece(model: &llama_cpp_2::model::LlamaModel, t: LlamaToken, out: &mut Vec<u8>) {
    out.extend_from_slice(&model.vocab().token_to_piece(t, false, None));
}

/// Tokens of a chat prompt of about `target` tokens: the model's chat template applied to a system
/// prompt (the paragraph repeated, cut to size) and a question. Falls back to a plain transcript
/// when the model has no template llama.cpp understands, and says so in `notes`.
fn build_prompt(
    model: &llama_cpp_2::model::LlamaModel,
    target: u32,
    notes: &mut Vec<String>,
) -> (Vec<LlamaToken>, bool) {
    let template = model.chat_template(None).ok();
    let render = |system: &str| -> Option<String> {
        let tmpl = template.as_ref()?;
        let msgs = [
            LlamaChatMessage::new("system".into(), system.to_string()).ok()?,
            LlamaChatMessage::new("user".into(), QUESTION.into()).ok()?,
        ];
        model.apply_chat_template(tmpl, &msgs, true).ok()
    };
    let used = render("x").is_some();
    if !used {
        notes.push(
            "the model has no chat template llama.cpp understands: a plain transcript was used"
                .into(),
        );
    }
    // The template already contains the special tokens as text: parse them; add BOS as the model says.
    let tokens_for = |words: usize| {
        let system: Vec<&str> = SYSTEM_PARAGRAPH
            .split_whitespace()
            .cycle()
            .take(words)
            .collect();
        let system = system.join(" ");
        let text = render(&system)
            .unwrap_or_else(|| format!("System: {system}\nUser: {QUESTION}\nAssistant:"));
        model.vocab().tokenize(text.as_bytes(), true, true)
    };
    // Token count grows with the number of system-prompt words: find the largest count that fits
    // the target (bisection; each step is one tokenisation, microseconds to a millisecond).
    let (mut lo, mut hi) = (0usize, (target as usize).max(1));
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if tokens_for(mid).len() <= target as usize {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    (tokens_for(lo), used)
}

/// How a verification compares with the promise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub passed: bool,
    /// Measured warm turn divided by the promised seconds per turn.
    pub turn_ratio: f64,
    /// Measured load divided by the promised cold-load seconds.
    pub load_ratio: f64,
    /// Measured turn divided by the predicted turn, when a prediction is known: the correction
    /// later predictions on this machine are scaled by.
    pub measured_over_predicted: Option<f64>,
    pub reasons: Vec<String>,
}

/// Compare `report` with a promise of `turn_s` per warm turn and `cold_load_s` to load.
pub fn judge(
    report: &VerifyReport,
    promised_turn_s: f64,
    promised_cold_load_s: f64,
    predicted_turn_s: Option<f64>,
) -> Verdict {
    let mut reasons = Vec::new();
    if !report.logits_finite {
        reasons.push("the model produced non-finite logits".to_string());
    }
    if report.generated_tokens == 0 {
        reasons.push("the model produced no tokens".to_string());
    }
    if !report.utf8_valid {
        reasons.push("the generated text is not valid UTF-8".to_string());
    }
    let turn_ratio = report.turn_s / promised_turn_s.max(1e-9);
    if turn_ratio > 1.0 {
        let what = match &report.concurrency {
            Some(u) => format!("with {} users at once, the p95 per-user turn", u.users),
            None => "a turn".to_string(),
        };
        reasons.push(format!(
            "{what} took {:.2} s, {:.0}% over the promised {:.2} s",
            report.turn_s,
            (turn_ratio - 1.0) * 100.0,
            promised_turn_s
        ));
    }
    let load_ratio = report.load_s / promised_cold_load_s.max(1e-9);
    if load_ratio > 1.0 {
        reasons.push(format!(
            "loading took {:.2} s, over the promised {:.2} s",
            report.load_s, promised_cold_load_s
        ));
    }
    Verdict {
        passed: reasons.is_empty(),
        turn_ratio,
        load_ratio,
        measured_over_predicted: predicted_turn_s
            .filter(|p| *p > 0.0)
            .map(|p| report.turn_s / p),
        reasons,
    }
}

#[cfg(test)]
mod judge_tests;

//! The verification run: load the installed GGUF the way the application will, run one turn of the
//! tier's workload through the model's own chat template, and measure what really happened. After
//! the timed turn, untimed checks look at what the model can do: where it stopped, whether the
//! answer is degenerate (`repetition`), and whether it emits a tool call as JSON matching a small
//! schema, on its own and under a grammar (`tool_call`).
//!
//! `run` produces a [`VerifyReport`]; `judge` compares it with the tier's promise and the
//! capabilities it requires. The decision of what to do on a miss (downgrade, warn, fail) belongs
//! to the caller. Knows nothing about the network, the registry or the terminal.

pub mod repetition;
pub mod tool_call;

use std::path::{Path, PathBuf};
use std::time::Instant;

use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate};
use llama_cpp_2::token::LlamaToken;
use serde::{Deserialize, Serialize};

use crate::gguf::reader::GgufError;
use crate::gguf::split;
use crate::llama::{self, LlamaError, LoadedModel};
use crate::progress::{Progress, Unit};
use crate::types::capabilities::{
    AnswerKind, Capabilities, Capability, ChatTemplateCheck, JsonAttempt, Stopping, TemplateSource,
    ToolCallCheck,
};
use crate::types::cpu_variant::CpuVariant;
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
    /// Tokens to generate (end-of-generation is recorded but does not stop the timed turn: the
    /// workload defines the answer length).
    pub response_tokens: u32,
    /// Conversations run at once, each with `context_tokens` of KV cache (see `concurrent`).
    #[serde(default = "one")]
    pub concurrency: u32,
    /// `--cpu-variant`: run llama.cpp's CPU kernels built for this variant (else the best this
    /// CPU runs). Only the first llama.cpp initialisation of a process decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_variant: Option<String>,
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
    /// What the untimed checks after the turn found; absent in reports written before they
    /// existed.
    #[serde(default)]
    pub capabilities: Option<Capabilities>,
    /// With several conversations at once: each user's p50/p95 and the aggregate rate; the
    /// report's `ttft_s` and `turn_s` are then the p95 per-user figures.
    #[serde(default)]
    pub concurrency: Option<UserLatencies>,
    /// Which of llama.cpp's CPU kernel variants ran; absent in older reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_variant: Option<CpuVariant>,
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

/// Tokens the model's own tool call may take before it is cut off: a call of the schema is about
/// 30 tokens with a real tokenizer, so this leaves room for a sentence around it.
const TOOL_CALL_MAX_TOKENS: u32 = 96;

/// Load `path` with `settings`, run one timed turn and measure it, then run the untimed
/// capability checks.
pub fn run(
    path: &Path,
    settings: &VerifySettings,
    progress: &dyn Progress,
) -> Result<VerifyReport, VerifyError> {
    if settings.concurrency > 1 {
        return run_concurrent(path, settings, progress);
    }
    let Prepared {
        architecture,
        backend,
        cpu_variant,
        loaded,
        model_load_s,
        chat,
        prompt: tokens,
        notes,
    } = prepare(path, settings, progress)?;

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
    // The answer is the text before the first end-of-generation token; generation goes on past
    // it only so that the turn is timed for the workload's full answer length.
    let mut answer_bytes = Vec::new();
    let mut answer_tokens: Option<u32> = None;
    let mut take = |t: LlamaToken, generated: u32, out: &mut Vec<u8>| {
        let piece = loaded.piece(t);
        if answer_tokens.is_none() {
            if loaded.is_end_of_generation(t) {
                answer_tokens = Some(generated - 1);
            } else {
                answer_bytes.extend_from_slice(&piece);
            }
        }
        out.extend_from_slice(&piece);
    };
    let mut logits_finite = true;
    let turn_start = Instant::now();
    let prefill = session.prefill(&tokens);
    let ttft_s;
    let mut generated = 0u32;
    match prefill {
        Ok(_) => {
            ttft_s = turn_start.elapsed().as_secs_f64();
            generated = 1;
            take(session.last_token(), generated, &mut out_bytes);
            while generated < settings.response_tokens {
                match session.generate(1) {
                    Ok(_) => {
                        generated += 1;
                        take(session.last_token(), generated, &mut out_bytes);
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
    drop(session);

    let capabilities = after_turn_checks(
        backend,
        &loaded,
        &chat,
        settings,
        Answer {
            bytes: &answer_bytes,
            tokens: answer_tokens,
            generated,
        },
        logits_finite,
        progress,
    );

    Ok(VerifyReport {
        schema_version: VERIFY_SCHEMA_VERSION,
        model_path: path.to_path_buf(),
        architecture,
        settings: settings.clone(),
        chat_template_used: chat.check.applied,
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
        capabilities: Some(capabilities),
        concurrency: None,
        cpu_variant: Some(cpu_variant),
    })
}

/// The answer of a timed turn, as the capability checks see it.
struct Answer<'a> {
    /// The text before the first end-of-generation token.
    bytes: &'a [u8],
    /// Tokens before that end-of-generation token; `None` when none came.
    tokens: Option<u32>,
    /// Tokens generated in the turn.
    generated: u32,
}

/// The untimed checks after a timed turn, timed on their own: where the answer stopped, whether
/// it is degenerate, the chat template, and (with finite logits) a tool call on a fresh
/// context. Shared by the one-user run and the run of several users (on its first user's first
/// answer).
#[allow(clippy::too_many_arguments)]
fn after_turn_checks(
    backend: &llama_cpp_2::llama_backend::LlamaBackend,
    loaded: &LoadedModel,
    chat: &ChatFormat,
    settings: &VerifySettings,
    answer: Answer<'_>,
    logits_finite: bool,
    progress: &dyn Progress,
) -> Capabilities {
    let checks_start = Instant::now();
    let stopping = Stopping {
        stopped_at_end_token: answer.tokens.is_some(),
        answer_tokens: answer.tokens.unwrap_or(answer.generated),
        budget_tokens: settings.response_tokens,
    };
    let assessed = repetition::assess(&String::from_utf8_lossy(answer.bytes));
    let mut warnings = Vec::new();
    if chat.check.source == TemplateSource::None {
        warnings.push(
            "no usable chat template (none in the GGUF file, no built-in one for its family): \
             an instruct model answers badly without its chat format"
                .to_string(),
        );
    }
    let tool_call = if logits_finite {
        progress.phase("checking a tool call", None);
        let r = tool_call_check(backend, loaded, chat, settings.threads);
        progress.finish();
        match r {
            Ok(t) => {
                if !t.constrained.matches_schema {
                    warnings.push(format!(
                        "a grammar-constrained tool call did not match its schema ({}): the \
                         application cannot rely on this runtime to enforce JSON output",
                        t.constrained.detail
                    ));
                }
                Some(t)
            }
            Err(e) => {
                warnings.push(format!("the tool-call check could not run: {e}"));
                None
            }
        }
    } else {
        None
    };
    Capabilities {
        stopping,
        answer: assessed,
        chat_template: chat.check.clone(),
        tool_call,
        checks_s: checks_start.elapsed().as_secs_f64(),
        warnings,
    }
}

/// Ask for one tool call twice on a fresh context: once as the model likes, once under the
/// schema's grammar.
fn tool_call_check(
    backend: &llama_cpp_2::llama_backend::LlamaBackend,
    loaded: &LoadedModel,
    chat: &ChatFormat,
    threads: u32,
) -> Result<ToolCallCheck, LlamaError> {
    let system = tool_call::system_prompt();
    let text = chat
        .render(&loaded.model, &system, tool_call::REQUEST)
        .unwrap_or_else(|| plain_transcript(&system, tool_call::REQUEST));
    let prompt = loaded.model.vocab().tokenize(text.as_bytes(), true, true);
    let constrained_max = tool_call::CONSTRAINED_MAX_CHARS as u32;
    let n_ctx = prompt.len() as u32 + TOOL_CALL_MAX_TOKENS.max(constrained_max) + 8;
    let mut session = loaded.session(backend, threads, n_ctx, (prompt.len() as u32).max(32))?;

    let attempt = |c: llama::Completion, loaded: &LoadedModel| {
        let bytes: Vec<u8> = c.tokens.iter().flat_map(|t| loaded.piece(*t)).collect();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let (matches_schema, detail) = match tool_call::check(&text) {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        JsonAttempt {
            matches_schema,
            detail,
            tokens: c.tokens.len() as u32,
            seconds: c.seconds,
            sample: text.chars().take(160).collect(),
        }
    };
    session.prefill(&prompt)?;
    let own = session.complete(TOOL_CALL_MAX_TOKENS, None)?;
    let unconstrained = attempt(own, loaded);

    let mut grammar = loaded.grammar(&tool_call::grammar())?;
    session.prefill(&prompt)?;
    let forced = session.complete(constrained_max, Some(&mut grammar))?;
    let mut constrained = attempt(forced, loaded);
    if constrained.matches_schema && constrained.tokens >= constrained_max {
        // Cannot happen with a bounded grammar; said rather than hidden if it ever does.
        constrained.detail.push_str(" (the token budget ran out)");
    }
    Ok(ToolCallCheck {
        schema: tool_call::signature(),
        unconstrained,
        constrained,
    })
}

/// The chat format a model's prompts are rendered with: its own template, llama.cpp's built-in
/// one for its family, or none (a plain transcript).
struct ChatFormat {
    template: Option<LlamaChatTemplate>,
    check: ChatTemplateCheck,
}

impl ChatFormat {
    fn of(model: &llama_cpp_2::model::LlamaModel, architecture: &str) -> ChatFormat {
        let from_file = model.chat_template(None).ok();
        let found_in_file = from_file.is_some();
        let mut f = ChatFormat {
            template: from_file,
            check: ChatTemplateCheck {
                found_in_file,
                applied: false,
                source: TemplateSource::Gguf,
                builtin_name: None,
            },
        };
        if f.render(model, "x", "y").is_some() {
            f.check.applied = true;
            return f;
        }
        let name = ["general.name", "general.basename"]
            .iter()
            .filter_map(|k| model.meta_val_str(k).ok())
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(builtin) = builtin_template(architecture, &name) {
            f.template = LlamaChatTemplate::new(builtin).ok();
            if f.render(model, "x", "y").is_some() {
                f.check.applied = true;
                f.check.source = TemplateSource::BuiltIn;
                f.check.builtin_name = Some(builtin.to_string());
                return f;
            }
        }
        f.template = None;
        f.check.source = TemplateSource::None;
        f
    }

    /// `system` and `user` rendered with the template, ending where the assistant's answer
    /// starts; `None` without a usable template.
    fn render(
        &self,
        model: &llama_cpp_2::model::LlamaModel,
        system: &str,
        user: &str,
    ) -> Option<String> {
        let tmpl = self.template.as_ref()?;
        let msgs = [
            LlamaChatMessage::new("system".into(), system.to_string()).ok()?,
            LlamaChatMessage::new("user".into(), user.to_string()).ok()?,
        ];
        model.apply_chat_template(tmpl, &msgs, true).ok()
    }
}

/// llama.cpp's built-in template (by its llama.cpp name) for a model family the registry lists,
/// recognised from the GGUF architecture and `general.name`; used only when the file has none.
pub fn builtin_template(architecture: &str, name: &str) -> Option<&'static str> {
    let n = name.to_ascii_lowercase().replace([' ', '_'], "-");
    let a = architecture.to_ascii_lowercase();
    let has = |s: &str| n.contains(s);
    Some(if has("tinyllama") {
        "zephyr"
    } else if has("llama-3") || has("llama3") {
        "llama3"
    } else if has("llama-2") || has("llama2") {
        "llama2-sys"
    } else if has("mistral") {
        "mistral-v3"
    } else if has("qwen") || a.starts_with("qwen2") || has("smollm") {
        "chatml"
    } else if has("gemma") || a.starts_with("gemma") {
        "gemma"
    } else if has("phi-3") || has("phi3") || a == "phi3" {
        "phi3"
    } else {
        return None;
    })
}

fn plain_transcript(system: &str, user: &str) -> String {
    format!("System: {system}\nUser: {user}\nAssistant:")
}

/// What every verification starts from: the checked header's architecture, the loaded model
/// (with how long loading took), its chat format and the prompt's tokens, cut to leave room for
/// the answer. Shared by the one-user run and [`concurrent::run_concurrent`].
struct Prepared {
    architecture: String,
    backend: &'static llama_cpp_2::llama_backend::LlamaBackend,
    cpu_variant: CpuVariant,
    loaded: llama::LoadedModel,
    model_load_s: f64,
    chat: ChatFormat,
    prompt: Vec<LlamaToken>,
    notes: Vec<String>,
}

fn prepare(
    path: &Path,
    settings: &VerifySettings,
    progress: &dyn Progress,
) -> Result<Prepared, VerifyError> {
    // Our own header check first: a truncated file or a wrong magic gets a precise error here
    // instead of an opaque load failure inside llama.cpp. A split model's parts are all checked.
    let header = split::read_model(path).map_err(|source| VerifyError::Header {
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
    let b = llama::init(&llama::BackendConfig {
        simd: crate::probe::cpu::live_simd(),
        cpu_variant: settings.cpu_variant.clone(),
        threads: settings.threads,
        show_logs: false,
        unchecked: false,
    })?;
    let backend = &b.llama;
    if let Some(want) = settings.cpu_variant.as_deref() {
        if want != b.cpu_variant.name {
            notes.push(format!(
                "--cpu-variant {want} was asked for, but this process already runs llama.cpp's {} kernels",
                b.cpu_variant.name
            ));
        }
    }

    progress.phase("loading model", None);
    let start = Instant::now();
    let loaded = llama::load(backend, path, settings.gpu_layers)?;
    let model_load_s = start.elapsed().as_secs_f64();

    // Tokenising is not part of loading: it is timed neither as load nor as the turn.
    let chat = ChatFormat::of(&loaded.model, &architecture);
    if chat.check.source == TemplateSource::None {
        notes.push(
            "the model has no chat template llama.cpp understands: a plain transcript was used"
                .into(),
        );
    }
    let tokens = build_prompt(&loaded.model, &chat, settings.prompt_tokens);
    let room = settings
        .context_tokens
        .saturating_sub(settings.response_tokens) as usize;
    let prompt: Vec<LlamaToken> = tokens.into_iter().take(room).collect();
    Ok(Prepared {
        architecture,
        backend,
        cpu_variant: b.cpu_variant.clone(),
        loaded,
        model_load_s,
        chat,
        prompt,
        notes,
    })
}

/// Tokens of a chat prompt of about `target` tokens: the chat format applied to a system prompt
/// (the paragraph repeated, cut to size) and a question; a plain transcript without a template.
fn build_prompt(
    model: &llama_cpp_2::model::LlamaModel,
    chat: &ChatFormat,
    target: u32,
) -> Vec<LlamaToken> {
    // The template already contains the special tokens as text: parse them; add BOS as the model says.
    let tokens_for = |words: usize| {
        let system: Vec<&str> = SYSTEM_PARAGRAPH
            .split_whitespace()
            .cycle()
            .take(words)
            .collect();
        let system = system.join(" ");
        let text = chat
            .render(model, &system, QUESTION)
            .unwrap_or_else(|| plain_transcript(&system, QUESTION));
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
    tokens_for(lo)
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

/// Compare `report` with a promise of `turn_s` per warm turn and `cold_load_s` to load, and with
/// the capabilities in `required` (a degenerate answer always misses).
pub fn judge(
    report: &VerifyReport,
    promised_turn_s: f64,
    promised_cold_load_s: f64,
    predicted_turn_s: Option<f64>,
    required: &[Capability],
) -> Verdict {
    let mut reasons = capability_reasons(report, required);
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

/// Why the answer or a required capability fails, in words; empty when all is well. A degenerate
/// answer (empty, blank, a loop) always fails; a missing chat template or a tool call that does
/// not match its schema fails only when `required` names it. Reports from before the checks
/// existed carry no capabilities and fail nothing here.
pub fn capability_reasons(report: &VerifyReport, required: &[Capability]) -> Vec<String> {
    let mut reasons = Vec::new();
    let Some(c) = &report.capabilities else {
        return reasons;
    };
    // Non-finite logits are their own reason; the text they left says nothing more.
    if report.logits_finite && c.answer.kind.is_degenerate() {
        reasons.push(match c.answer.kind {
            AnswerKind::Loop => format!(
                "the answer loops: {:.0}% of it repeats {:?}",
                c.answer.repeated_ratio * 100.0,
                c.answer.repeated_unit.as_deref().unwrap_or("")
            ),
            AnswerKind::Empty => format!(
                "the answer is empty ({} tokens, none of them visible text)",
                c.stopping.answer_tokens
            ),
            _ => "the answer is only whitespace".to_string(),
        });
    }
    for r in required {
        match r {
            Capability::ChatTemplate if !c.chat_template.applied => reasons.push(
                "`chat-template` is required but the model has no usable chat template".into(),
            ),
            Capability::ToolCall => match &c.tool_call {
                None => reasons
                    .push("`tool-call` is required but the tool-call check could not run".into()),
                Some(t) if !t.unconstrained.matches_schema => reasons.push(format!(
                    "`tool-call` is required but the model's own tool call does not match {}: {}",
                    t.schema, t.unconstrained.detail
                )),
                Some(t) if !t.constrained.matches_schema => reasons.push(format!(
                    "`tool-call` is required but a grammar-constrained call does not match {}: {}",
                    t.schema, t.constrained.detail
                )),
                Some(_) => {}
            },
            Capability::ChatTemplate => {}
        }
    }
    reasons
}

#[cfg(test)]
mod judge_tests;

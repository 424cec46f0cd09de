//! What a verification found the model can do besides answering fast: stop on its own, give a
//! non-degenerate answer, follow its chat format, and emit a tool call as JSON that matches a
//! schema. The verification stage fills these in; the runtime config, `status` and the Ansible
//! facts carry them; tiers and flags name the [`Capability`]s that must hold.

use serde::{Deserialize, Serialize};

/// A capability a tier (`"requires"` in `tiers.json`) or a flag (`--require`) can insist on.
/// Without one, its result is recorded and shown but does not fail a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// The model's own (unconstrained) answer to a tool-call request is JSON matching the schema.
    ToolCall,
    /// The model ships a chat template llama.cpp can apply (GGUF metadata or a built-in one for
    /// its family).
    ChatTemplate,
}

impl Capability {
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::ToolCall => "tool-call",
            Capability::ChatTemplate => "chat-template",
        }
    }
}

/// Everything the capability checks found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capabilities {
    pub stopping: Stopping,
    pub answer: AnswerCheck,
    pub chat_template: ChatTemplateCheck,
    /// Absent when the run ended before it could be tried (non-finite logits).
    pub tool_call: Option<ToolCallCheck>,
    /// Wall time of the checks run after the timed turn (the tool-call generations); not part of
    /// any timing of the turn.
    pub checks_s: f64,
    /// What an operator should look at (a missing template, a model that never stops, ...).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// Where the model stopped in the timed turn. The turn itself always runs for the full budget
/// (the workload defines the answer length); this says where the model would have stopped.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stopping {
    /// An end-of-generation token came before the budget ran out.
    pub stopped_at_end_token: bool,
    /// Tokens of the answer: up to (not including) the end-of-generation token, else the budget.
    pub answer_tokens: u32,
    pub budget_tokens: u32,
}

/// What the answer (the text before the end-of-generation token) looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnswerKind {
    /// Readable text that does not loop.
    Normal,
    /// No visible text at all (nothing, or only control tokens).
    Empty,
    /// Only whitespace.
    Blank,
    /// A short unit (a word, a phrase, a sentence) repeated over most of the answer.
    Loop,
}

impl AnswerKind {
    /// Whether the answer is unusable: a miss for `--on-miss` like a broken promise.
    pub fn is_degenerate(self) -> bool {
        self != AnswerKind::Normal
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AnswerKind::Normal => "normal",
            AnswerKind::Empty => "empty",
            AnswerKind::Blank => "blank",
            AnswerKind::Loop => "loop",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnswerCheck {
    pub kind: AnswerKind,
    /// Fraction of the answer's characters inside a repeated run (three or more copies of a
    /// unit in a row), 0 to 1.
    pub repeated_ratio: f64,
    /// The unit that repeats the most, when one does.
    pub repeated_unit: Option<String>,
    /// The beginning of the answer, for a person to glance at.
    pub sample: String,
}

/// Where the chat template used for the turn came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TemplateSource {
    /// `tokenizer.chat_template` in the GGUF file.
    Gguf,
    /// llama.cpp's built-in template for the model's family (the file has none).
    BuiltIn,
    /// No usable template: a plain transcript was sent.
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatTemplateCheck {
    /// The GGUF file carries a template.
    pub found_in_file: bool,
    /// A template (the file's or the built-in one) rendered the turn's messages.
    pub applied: bool,
    pub source: TemplateSource,
    /// The built-in template's llama.cpp name (`chatml`, `llama3`, ...), when one was used.
    pub builtin_name: Option<String>,
}

/// The tool-call check: the model asked for one call of a small function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallCheck {
    /// The function asked for (`name(arg: type, ...)`).
    pub schema: String,
    /// The model's own answer.
    pub unconstrained: JsonAttempt,
    /// The same request under a grammar that only admits the schema (llama.cpp's grammar
    /// sampler): whether this runtime can enforce the format for the application.
    pub constrained: JsonAttempt,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonAttempt {
    /// The text holds a JSON object that parses and matches the schema.
    pub matches_schema: bool,
    /// Why it does not, or which object matched.
    pub detail: String,
    pub tokens: u32,
    pub seconds: f64,
    /// The beginning of the generated text.
    pub sample: String,
}

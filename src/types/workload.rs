//! The workload a promise is made for: one conversational turn.

use serde::{Deserialize, Serialize};

/// What one conversational turn is: tokens in, tokens out, and the context the model runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Tokens processed before the answer starts (system prompt + history + question).
    pub prompt_tokens: u32,
    /// Tokens generated in the answer.
    pub response_tokens: u32,
    /// Context length the model is loaded with (sizes the KV cache).
    pub context_tokens: u32,
}

//! How stages report progress without printing: a small trait the CLI implements.
//!
//! Stage modules never write to the terminal. They call a [`Progress`] they were handed; the CLI
//! decides whether that becomes an indicatif bar, plain periodic lines on stderr, or nothing.

/// Progress sink for long-running stages. All methods have no-op defaults.
pub trait Progress: Send + Sync {
    /// A new phase begins (`"writing benchmark model Q4_K"`, `"downloading qwen2.5-3b"`).
    fn phase(&self, _label: &str, _total: Option<u64>) {}
    /// Absolute position within the current phase, in the phase's unit (usually bytes).
    fn position(&self, _pos: u64) {}
    /// The current phase ended.
    fn finish(&self) {}
    /// A one-line remark worth showing a person (a retry, a fallback).
    fn note(&self, _msg: &str) {}
}

/// Discards everything: for tests, `--json` and `--quiet`.
pub struct NoProgress;

impl Progress for NoProgress {}

//! How stages report progress without printing: a small trait the CLI implements.
//!
//! Stage modules never write to the terminal. They call a [`Progress`] they were handed; the CLI
//! decides whether that becomes an indicatif bar, plain periodic lines on stderr, or nothing.

/// Progress sink for long-running stages. All methods have no-op defaults.
pub trait Progress: Send + Sync {
    /// A new phase begins (`"writing benchmark model Q4_K"`, `"downloading qwen2.5-3b"`).
    fn phase(&self, _label: &str, _total: Option<u64>) {}
    /// A new phase that counts something other than bytes (tokens of a verification turn).
    /// Sinks that do not show units can leave the default, which is [`Progress::phase`].
    fn phase_counting(&self, label: &str, total: Option<u64>, _unit: Unit) {
        self.phase(label, total)
    }
    /// Absolute position within the current phase, in the phase's unit (usually bytes).
    fn position(&self, _pos: u64) {}
    /// The current phase ended.
    fn finish(&self) {}
    /// A one-line remark worth showing a person (a retry, a fallback).
    fn note(&self, _msg: &str) {}
}

/// What the positions of a phase count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Tokens,
}

/// Discards everything: for tests, `--json` and `--quiet`.
pub struct NoProgress;

impl Progress for NoProgress {}

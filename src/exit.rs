//! Exit codes and the top-level failure type the binary renders.
//!
//! Every failure class has its own code so that provisioning scripts can react without parsing
//! text. The table is printed by `--help` and documented in the README; keep the three in step.

use std::fmt;

/// Documented process exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    /// Anything not covered below (an I/O error, a bug).
    Failure = 1,
    /// Bad command line: unknown flag, missing value, no terminal for a prompt without `--yes`.
    Usage = 2,
    /// No tier's requirements and promise can be met on this machine.
    NoTierFits = 3,
    /// The model could not be downloaded or did not match its checksum.
    Download = 4,
    /// The installed model missed its promise (with `--on-miss fail`) or would not load.
    Verify = 5,
    /// Another minerva-setup run holds the lock.
    Locked = 6,
    /// An input file (hardware profile, registry, tiers, GGUF) is malformed.
    BadInput = 7,
    /// No llama.cpp CPU kernel variant runs on this CPU (every one failed its check or needs
    /// features the CPU lacks), or the backend libraries are missing.
    Unsupported = 8,
    /// `retier --check`: the hardware changed and a re-tier is due.
    RetierDue = 10,
}

impl Exit {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// The table shown in `--help`.
pub const EXIT_CODE_HELP: &str = "\
Exit codes:
  0   success
  1   unexpected failure (I/O error, bug)
  2   usage error (bad flag; no terminal and no --yes)
  3   no tier fits this machine
  4   download failed or checksum mismatch
  5   verification failed or missed its promise (--on-miss fail)
  6   another minerva-setup run holds the lock
  7   malformed input file (hardware profile, registry, tiers, GGUF)
  8   no llama.cpp CPU kernel variant runs on this CPU, or its libraries are missing
  10  retier --check: the hardware changed, a re-tier is due";

/// A failure on its way to the terminal: the error chain, what to do about it, and the exit code.
pub struct Failure {
    pub exit: Exit,
    pub error: anyhow::Error,
    pub hint: Option<String>,
    /// The command's report already says what failed (and was printed, as JSON with
    /// `--json`): the error goes to stderr only, so that stdout stays one JSON document.
    pub reported: bool,
}

impl Failure {
    pub fn new(exit: Exit, error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            exit,
            error: error.into(),
            hint: None,
            reported: false,
        }
    }

    /// Mark the failure as described by a report already printed (see [`Failure::reported`]).
    pub fn after_report(mut self) -> Failure {
        self.reported = true;
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure::new(Exit::Failure, e)
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} (exit {})", self.error, self.exit.code())
    }
}

/// Render as `error:` / `caused by:` / `hint:` lines.
impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.error)?;
        for cause in self.error.chain().skip(1) {
            write!(f, "\n  caused by: {cause}")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

/// Extension to attach an exit code to any `Result`.
pub trait ResultExt<T> {
    fn exit(self, exit: Exit) -> Result<T, Failure>;
}

impl<T, E: Into<anyhow::Error>> ResultExt<T> for Result<T, E> {
    fn exit(self, exit: Exit) -> Result<T, Failure> {
        self.map_err(|e| Failure::new(exit, e))
    }
}

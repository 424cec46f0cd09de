//! The pipeline: bench → plan → fetch → verify → commit, and the policies that bind the stages
//! together. Every subcommand that changes or judges the installation runs through here:
//!
//! - [`install`]: `install`, `retier` and the wizard ([`install::Run`] lets a person look at the
//!   plan before anything is downloaded);
//! - [`reverify`]: `verify` of the installed model, with the `--on-miss` policy;
//! - [`calibration`]: the measured/predicted ratio stored after a verification and applied to
//!   later predictions on the same hardware;
//! - [`retier`]: whether a re-tier is due (used by `status`, `retier` and the Ansible facts);
//! - [`stored`]: which benchmark a plan uses, and where it is kept.
//!
//! Nothing here prints (progress goes through [`crate::progress::Progress`]) or knows the
//! command line: the CLI resolves flags into the settings types below.

use serde::{Deserialize, Serialize};

pub mod calibration;
pub mod install;
pub mod remote;
pub mod retier;
pub mod reverify;
pub mod stored;

pub use install::{
    install, Attempt, AttemptOutcome, BenchSource, InstallError, InstallReport, InstallSettings,
    Run, INSTALL_SCHEMA_VERSION,
};

/// What to do when the installed model misses its promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnMiss {
    /// Plan again with the measured figures and install the next tier down.
    Downgrade,
    /// Keep the model and record the measured figures as the promise.
    Warn,
    /// Leave the previous config in place and fail.
    Fail,
}

impl OnMiss {
    /// What the policy does, in words.
    pub fn describe(self) -> &'static str {
        match self {
            OnMiss::Downgrade => "install the next tier down",
            OnMiss::Warn => "keep the model and record the real figures",
            OnMiss::Fail => "fail and keep the previous config",
        }
    }
}

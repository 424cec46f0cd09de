//! `minerva-setup retier`: after a hardware change, choose and install the tier the machine can
//! serve now. An unchanged machine is a no-op that answers in well under a second (no benchmark);
//! a changed one is re-benchmarked, re-planned, and the new model downloaded and verified before
//! the config switches. The previous model stays until then; `--prune` removes unreferenced ones.

use std::fmt::Write as _;

use clap::Args;
use serde::Serialize;

use crate::app::args::InstallArgs;
use crate::app::failure::{install_failure, state_failure};
use crate::app::interactive;
use crate::app::settings::{install_settings, require_yes_or_terminal};
use crate::app::{Ctx, Human};
use crate::exit::{Exit, Failure};
use crate::pipeline::retier;
use crate::pipeline::{InstallReport, Run};
use crate::state::Action;

#[derive(Debug, Args)]
pub struct RetierArgs {
    /// Only report whether a re-tier is due: exit 0 when not, 10 when it is.
    #[arg(long)]
    pub check: bool,
    #[command(flatten)]
    pub install: InstallArgs,
}

/// What `retier` found and did.
#[derive(Debug, Serialize)]
pub struct RetierReport {
    pub due: bool,
    pub reason: String,
    pub fingerprint_stored: Option<String>,
    pub fingerprint_now: String,
    /// Present when a new tier was installed.
    pub install: Option<InstallReport>,
}

pub fn run(ctx: &Ctx, args: &RetierArgs) -> Result<(), Failure> {
    // Fingerprint first, without the bandwidth measurement: the common case is "unchanged".
    let quick = ctx.hardware(false)?;
    let d = retier::check(&ctx.paths, &quick).map_err(state_failure)?;
    let due = d.due;
    let mut report = RetierReport {
        due,
        reason: d.reason,
        fingerprint_stored: d.fingerprint_stored,
        fingerprint_now: d.fingerprint_now,
        install: None,
    };
    if args.check || !due {
        ctx.emit(&report)?;
        return if args.check && due {
            Err(Failure::new(
                Exit::RetierDue,
                anyhow::anyhow!("a re-tier is due: {}", report.reason),
            )
            .hint("run `minerva-setup retier --yes`")
            .after_report())
        } else {
            Ok(())
        };
    }
    require_yes_or_terminal(args.install.yes, "retier")?;
    let hw = if ctx.hardware_file.is_some() {
        quick
    } else {
        ctx.hardware(true)?
    };
    let settings = install_settings(ctx, &hw, &args.install, Action::Retier)?;
    let progress = ctx.progress();
    let mut run =
        Run::start(&hw, &settings, progress.as_ref()).map_err(|e| install_failure(ctx, e))?;
    if !args.install.yes {
        interactive::confirm_plan(&mut run)?;
    }
    let done = run
        .finish(progress.as_ref())
        .map_err(|e| install_failure(ctx, e))?;
    report.install = Some(done);
    ctx.emit(&report)
}

impl Human for RetierReport {
    fn human(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Re-tier   {}: {}",
            if self.due { "due" } else { "not needed" },
            self.reason
        );
        if let Some(i) = &self.install {
            s.push_str(&i.human());
        }
        s
    }
}

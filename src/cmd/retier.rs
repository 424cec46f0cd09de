//! `minerva-setup retier`: after a hardware change, choose and install the tier the machine can
//! serve now. An unchanged machine is a no-op that answers in well under a second (no benchmark);
//! a changed one is re-benchmarked, re-planned, and the new model downloaded and verified before
//! the config switches. The previous model stays until then; `--prune` removes unreferenced ones.

use std::fmt::Write as _;

use clap::Args;
use serde::Serialize;

use crate::cli::{Ctx, Human};
use crate::cmd::install::{self, InstallArgs};
use crate::exit::{Exit, Failure, ResultExt};
use crate::install::{InstallReport, Run};
use crate::state::State;

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
    let state = State::load(&ctx.paths.state_dir)
        .exit(Exit::BadInput)
        .map_err(|f| f.hint("the state file was left as it is; fix or remove it, then run `minerva-setup install`"))?;
    let stored = state.as_ref().map(|s| s.fingerprint.clone());
    let installed = state.as_ref().is_some_and(|s| s.installed.is_some());
    let (due, reason) = match &stored {
        None => (
            true,
            "nothing was installed on this machine yet".to_string(),
        ),
        Some(f) if *f != quick.fingerprint => (true, describe_change(state.as_ref(), &quick)),
        Some(_) if !installed => (true, "no verified model is installed".to_string()),
        Some(_) => (
            false,
            "the hardware is unchanged since the tier was chosen".to_string(),
        ),
    };
    let mut report = RetierReport {
        due,
        reason,
        fingerprint_stored: stored,
        fingerprint_now: quick.fingerprint.clone(),
        install: None,
    };
    if args.check || !due {
        ctx.emit(&report)?;
        return if args.check && due {
            Err(Failure::new(
                Exit::RetierDue,
                anyhow::anyhow!("a re-tier is due: {}", report.reason),
            )
            .hint("run `minerva-setup retier --yes`"))
        } else {
            Ok(())
        };
    }
    install::require_yes_or_terminal(args.install.yes, "retier")?;
    let hw = if ctx.hardware_file.is_some() {
        quick
    } else {
        ctx.hardware(true)?
    };
    let settings = install::settings(ctx, &hw, &args.install, "retier")?;
    let progress = ctx.progress();
    let mut run =
        Run::start(&hw, &settings, progress.as_ref()).map_err(|e| install::failure(ctx, e))?;
    if !args.install.yes {
        crate::cmd::wizard::confirm_plan(&mut run)?;
    }
    let done = run
        .finish(progress.as_ref())
        .map_err(|e| install::failure(ctx, e))?;
    report.install = Some(done);
    ctx.emit(&report)
}

/// Say what changed, from the stored profile and the new one.
fn describe_change(state: Option<&State>, now: &crate::profile::HardwareProfile) -> String {
    let Some(old) = state.map(|s| &s.profile) else {
        return "the hardware changed".into();
    };
    let mut what = Vec::new();
    if old.cpu.brand.trim() != now.cpu.brand.trim()
        || old.cpu.physical_cores != now.cpu.physical_cores
    {
        what.push(format!(
            "CPU {} ({} cores) → {} ({} cores)",
            old.cpu.brand.trim(),
            old.cpu.physical_cores,
            now.cpu.brand.trim(),
            now.cpu.physical_cores
        ));
    }
    let gib = |b: u64| (b as f64 / (1u64 << 30) as f64).round();
    if gib(old.memory.total_bytes) != gib(now.memory.total_bytes)
        || gib(old.memory.usable_bytes) != gib(now.memory.usable_bytes)
    {
        what.push(format!(
            "RAM {:.0} GiB → {:.0} GiB usable",
            gib(old.memory.usable_bytes),
            gib(now.memory.usable_bytes)
        ));
    }
    let names = |p: &crate::profile::HardwareProfile| {
        p.gpus.iter().map(|g| g.name.clone()).collect::<Vec<_>>()
    };
    if names(old) != names(now) {
        let show = |v: Vec<String>| {
            if v.is_empty() {
                "no GPU".to_string()
            } else {
                v.join(", ")
            }
        };
        what.push(format!("GPUs {} → {}", show(names(old)), show(names(now))));
    }
    if what.is_empty() {
        "the hardware fingerprint changed".into()
    } else {
        format!("the hardware changed: {}", what.join("; "))
    }
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

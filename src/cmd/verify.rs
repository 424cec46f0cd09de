//! `minerva-setup verify`: run the installed model (or any `--model-file`) the way the application
//! will, measure one turn, and compare it with the promise; the policy for a miss (`--on-miss`)
//! is the pipeline's (`pipeline::reverify`).

use std::path::PathBuf;

use clap::Args;

use crate::app::args::InstallArgs;
use crate::app::failure::{install_failure, reverify_failure};
use crate::app::settings::{install_settings, reverify_settings};
use crate::app::Ctx;
use crate::exit::Failure;
use crate::pipeline::reverify::{self, ReverifyError};
use crate::pipeline::OnMiss;
use crate::state::Action;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Verify this GGUF instead of the installed model (nothing is recorded).
    #[arg(long, value_name = "FILE")]
    pub model_file: Option<PathBuf>,
    /// GPU layers to offload (default: as installed, else 0).
    #[arg(long, value_name = "N")]
    pub gpu_layers: Option<u32>,
    #[command(flatten)]
    pub install: InstallArgs,
}

pub fn run(ctx: &Ctx, args: &VerifyArgs) -> Result<(), Failure> {
    let a = &args.install;
    let settings = reverify_settings(ctx, args.model_file.clone(), args.gpu_layers, a);
    // A downgrade plans with the measured bandwidth; a plain verification does not need it.
    let downgrades = settings.on_miss == OnMiss::Downgrade && args.model_file.is_none();
    let hw = ctx.hardware(downgrades)?;
    let downgrade = if downgrades {
        Some(install_settings(ctx, &hw, a, Action::Verify)?)
    } else {
        None
    };
    let progress = ctx.progress();
    match reverify::reverify(&hw, &settings, downgrade.as_ref(), progress.as_ref()) {
        // After a downgrade the new install is the result, as `install` would print it.
        Ok(o) => match &o.downgrade {
            Some(done) => ctx.emit(done),
            None => ctx.emit(&o),
        },
        Err(ReverifyError::Missed { outcome }) => {
            ctx.emit(outcome.as_ref())?;
            Err(reverify_failure(ctx, ReverifyError::Missed { outcome }))
        }
        Err(ReverifyError::Downgrade(e)) => Err(install_failure(ctx, *e)),
        Err(e) => Err(reverify_failure(ctx, e)),
    }
}

//! `minerva-setup install`: probe, benchmark, plan, download, verify and write the runtime config,
//! unattended with `--yes`. Its flags (`app::args::InstallArgs`) are shared by `retier`, `verify`
//! and the wizard.

use crate::app::args::InstallArgs;
use crate::app::failure::install_failure;
use crate::app::interactive;
use crate::app::settings::{install_settings, require_yes_or_terminal};
use crate::app::Ctx;
use crate::exit::Failure;
use crate::pipeline::Run;
use crate::state::Action;

pub fn run(ctx: &Ctx, args: &InstallArgs) -> Result<(), Failure> {
    require_yes_or_terminal(args.yes, "install")?;
    let hw = ctx.hardware(true)?;
    let settings = install_settings(ctx, &hw, args, Action::Install)?;
    let progress = ctx.progress();
    let mut run =
        Run::start(&hw, &settings, progress.as_ref()).map_err(|e| install_failure(ctx, e))?;
    if !args.yes {
        interactive::confirm_plan(&mut run)?;
    }
    let report = run
        .finish(progress.as_ref())
        .map_err(|e| install_failure(ctx, e))?;
    ctx.emit(&report)
}

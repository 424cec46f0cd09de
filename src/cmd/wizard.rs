//! The one-shot wizard: `minerva-setup` with no subcommand on a terminal. It shows the probe and
//! the benchmark, the plan table, lets the person accept the recommendation or pick another tier
//! or model, confirms the download, then downloads and verifies with progress bars and ends with
//! a summary. Questions and reports go to stderr; the final summary is the only thing on stdout.

use crate::app::args::InstallArgs;
use crate::app::failure::install_failure;
use crate::app::interactive;
use crate::app::settings::{install_settings, require_yes_or_terminal};
use crate::app::{Ctx, Human};
use crate::exit::Failure;
use crate::pipeline::Run;
use crate::state::Action;

pub fn run(ctx: &Ctx, args: &InstallArgs) -> Result<(), Failure> {
    require_yes_or_terminal(args.yes, "minerva-setup")
        .map_err(|f| f.hint("run `minerva-setup install --yes` for an unattended install"))?;
    let hw = ctx.hardware(true)?;
    eprintln!("This server:\n{}", interactive::indent(&hw.human()));
    let settings = install_settings(ctx, &hw, args, Action::Install)?;
    let progress = ctx.progress();
    let mut run =
        Run::start(&hw, &settings, progress.as_ref()).map_err(|e| install_failure(ctx, e))?;
    if !args.yes {
        let asking = interactive::interrupt::Asking::start();
        let accepted = interactive::choose(&mut run)?;
        drop(asking);
        if !accepted {
            eprintln!("Nothing was downloaded or changed.");
            return Ok(());
        }
    }
    let report = run
        .finish(progress.as_ref())
        .map_err(|e| install_failure(ctx, e))?;
    ctx.emit(&report)
}

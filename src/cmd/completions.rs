//! `minerva-setup completions SHELL` and `minerva-setup man`: generated from the clap definitions,
//! so they never drift from the real flags.

use clap::Args;

use crate::app::Ctx;
use crate::exit::Failure;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// Shell to generate completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Completions for `cmd`, the whole command tree (`Cli::command()`).
pub fn completions(
    _ctx: &Ctx,
    args: &CompletionsArgs,
    mut cmd: clap::Command,
) -> Result<(), Failure> {
    clap_complete::generate(
        args.shell,
        &mut cmd,
        "minerva-setup",
        &mut std::io::stdout(),
    );
    Ok(())
}

/// Write the roff man page to stdout.
pub fn man(_ctx: &Ctx, cmd: clap::Command) -> Result<(), Failure> {
    clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?;
    Ok(())
}

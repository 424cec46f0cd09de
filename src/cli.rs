//! Command-line definitions and the shared context every subcommand runs with.
//!
//! Clap structs hold raw values; [`Ctx::resolve`] turns them into settings (paths, output mode)
//! before any work starts. Subcommands live in `cmd/`, one file each; they call the stage
//! functions and hand a serialisable value to [`Ctx::emit`], which prints either the human report
//! or one JSON document on stdout. Progress and logs go to stderr.

use std::io::Write;

use clap::{CommandFactory, Parser, Subcommand};

use crate::app::args::{GlobalArgs, InstallArgs};
use crate::app::Ctx;
use crate::cmd;
use crate::env_vars::ENV_HELP;
use crate::exit::{Exit, EXIT_CODE_HELP};

const AFTER_HELP: &str = concat!(
    "Exit codes:\n",
    "  0 success, 1 unexpected failure, 2 usage, 3 no tier fits, 4 download failed,\n",
    "  5 verification failed/missed, 6 lock held, 7 malformed input file,\n",
    "  8 no llama.cpp CPU kernels run here, 10 re-tier due (retier --check)\n",
    "\nRun `minerva-setup help-env` for environment variables and details."
);

/// Measure this server, pick the local LLM tier that will really keep its latency promise,
/// download only that GGUF file and prove the promise with a verification run.
#[derive(Debug, Parser)]
#[command(name = "minerva-setup", version, about, long_about = None, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read CPU, memory, GPUs, disk and memory bandwidth; print the hardware profile.
    Probe(cmd::probe::ProbeArgs),
    /// Measure llama.cpp on this machine: load time, prefill and decode speed per quantisation type.
    Bench(cmd::bench::BenchArgs),
    /// Choose the tier and model this machine can really serve, with a reason for every tier.
    Plan(cmd::plan::PlanArgs),
    /// Predict memory, load time and latency of one model on this machine.
    Predict(cmd::predict::PredictArgs),
    /// Inspect the model registry.
    Registry(cmd::registry::RegistryArgs),
    /// Probe, benchmark, plan, download and verify; write the runtime config (`--yes`: unattended).
    Install(InstallArgs),
    /// Run the installed model (or --model-file) one turn and compare it with its promise.
    Verify(cmd::verify::VerifyArgs),
    /// Show the installed tier, its promise and verified figures, and whether a re-tier is due.
    Status(cmd::status::StatusArgs),
    /// After a hardware change, re-benchmark, re-plan, install and verify the new tier.
    Retier(cmd::retier::RetierArgs),
    /// The interactive setup (what `minerva-setup` with no subcommand runs on a terminal).
    Wizard(InstallArgs),
    /// Download one GGUF file by URL or Hugging Face repo and file; resume, verify its sha256.
    Download(cmd::download::DownloadArgs),
    /// List the MINERVA_* environment variables and exit codes.
    HelpEnv,
    /// Print shell completions (bash, zsh, fish, elvish, powershell) to stdout.
    Completions(cmd::completions::CompletionsArgs),
    /// Print the man page (roff) to stdout.
    Man,
    #[command(name = "__check-cpu-variant", hide = true)]
    CheckCpuVariant(cmd::internal::CheckCpuVariantArgs),
    #[command(name = "__libs", hide = true)]
    Libs,
}

/// Parse the command line, run, and return the exit code. `main` only calls this.
pub fn main_exit_code() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                Exit::Usage.code()
            } else {
                0
            };
            let _ = e.print();
            return code;
        }
    };
    // This binary runs the check of llama.cpp's CPU kernels itself, whatever its file name.
    crate::llama::cpu::this_exe_runs_checks();
    let ctx = Ctx::resolve(&cli.global);
    let result = match &cli.command {
        Some(Command::Probe(a)) => cmd::probe::run(&ctx, a),
        Some(Command::Bench(a)) => cmd::bench::run(&ctx, a),
        Some(Command::Plan(a)) => cmd::plan::run(&ctx, a),
        Some(Command::Predict(a)) => cmd::predict::run(&ctx, a),
        Some(Command::Registry(a)) => cmd::registry::run(&ctx, a),
        Some(Command::Install(a)) => cmd::install::run(&ctx, a),
        Some(Command::Verify(a)) => cmd::verify::run(&ctx, a),
        Some(Command::Status(a)) => cmd::status::run(&ctx, a),
        Some(Command::Retier(a)) => cmd::retier::run(&ctx, a),
        Some(Command::Wizard(a)) => cmd::wizard::run(&ctx, a),
        Some(Command::Completions(a)) => cmd::completions::completions(&ctx, a, Cli::command()),
        Some(Command::Man) => cmd::completions::man(&ctx, Cli::command()),
        Some(Command::Download(a)) => cmd::download::run(&ctx, a),
        Some(Command::CheckCpuVariant(a)) => cmd::internal::check_cpu_variant(&ctx, a),
        Some(Command::Libs) => cmd::internal::libs(&ctx),
        Some(Command::HelpEnv) => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{ENV_HELP}\n\n{EXIT_CODE_HELP}").map_err(Into::into)
        }
        None => cmd::wizard::run(&ctx, &InstallArgs::from_env()),
    };
    match result {
        Ok(()) => 0,
        // A closed stdout (`minerva-setup man | head`) is the reader's choice, not a failure.
        Err(f) if is_broken_pipe(&f.error) => 0,
        Err(f) => {
            ctx.report_failure(&f);
            f.exit.code()
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

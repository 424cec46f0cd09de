//! Command-line definitions and the shared context every subcommand runs with.
//!
//! Clap structs hold raw values; [`Ctx::resolve`] turns them into settings (paths, output mode)
//! before any work starts. Subcommands live in `cmd/`, one file each; they call the stage
//! functions and hand a serialisable value to [`Ctx::emit`], which prints either the human report
//! or one JSON document on stdout. Progress and logs go to stderr.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::cmd;
use crate::env_vars::*;
use crate::exit::{Exit, Failure, ResultExt, EXIT_CODE_HELP};
use crate::paths::{PathOverrides, Paths};
use crate::profile::HardwareProfile;
use crate::progress::{NoProgress, Progress};

const AFTER_HELP: &str = concat!(
    "Exit codes:\n",
    "  0 success, 1 unexpected failure, 2 usage, 3 no tier fits, 4 download failed,\n",
    "  5 verification failed/missed, 6 lock held, 7 malformed input file,\n",
    "  8 CPU/build cannot run llama.cpp, 10 re-tier due (retier --check)\n",
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

/// Flags every subcommand accepts.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print one JSON document on stdout and nothing else.
    #[arg(long, global = true, env = MINERVA_JSON, value_parser = clap::builder::FalseyValueParser::new())]
    pub json: bool,
    /// Print nothing but errors (and the JSON document with --json).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// No progress bars or progress lines.
    #[arg(long, global = true, env = MINERVA_NO_PROGRESS, value_parser = clap::builder::FalseyValueParser::new())]
    pub no_progress: bool,
    /// Use the hardware described by a profile file (from `probe --json`) instead of probing.
    #[arg(long, global = true, value_name = "FILE", env = MINERVA_HARDWARE)]
    pub hardware: Option<PathBuf>,
    /// Use the model registry in DIR (one JSON file per family) instead of the built-in one.
    #[arg(long, global = true, value_name = "DIR", env = MINERVA_REGISTRY)]
    pub registry: Option<PathBuf>,
    /// Use this tier table instead of the built-in tiers.json.
    #[arg(long, global = true, value_name = "FILE", env = MINERVA_TIERS)]
    pub tiers: Option<PathBuf>,
    /// Read /proc and /sys below DIR instead of / (for fixtures and chroots).
    #[arg(long, global = true, value_name = "DIR", env = MINERVA_PROBE_ROOT)]
    pub probe_root: Option<PathBuf>,
    /// Directory for downloaded models.
    #[arg(long, global = true, value_name = "DIR", env = MINERVA_MODELS_DIR)]
    pub models_dir: Option<PathBuf>,
    /// Directory for the runtime config.
    #[arg(long, global = true, value_name = "DIR", env = MINERVA_CONFIG_DIR)]
    pub config_dir: Option<PathBuf>,
    /// Directory for state (fingerprint, benchmark, plan, verification).
    #[arg(long, global = true, value_name = "DIR", env = MINERVA_STATE_DIR)]
    pub state_dir: Option<PathBuf>,
    /// Base directory for models, state and cached benchmark models (each overridable above).
    #[arg(long, global = true, value_name = "DIR", env = MINERVA_DATA_DIR)]
    pub data_dir: Option<PathBuf>,
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
    Install(cmd::install::InstallArgs),
    /// Run the installed model (or --model-file) one turn and compare it with its promise.
    Verify(cmd::verify::VerifyArgs),
    /// Show the installed tier, its promise and verified figures, and whether a re-tier is due.
    Status(cmd::status::StatusArgs),
    /// After a hardware change, re-benchmark, re-plan, install and verify the new tier.
    Retier(cmd::retier::RetierArgs),
    /// The interactive setup (what `minerva-setup` with no subcommand runs on a terminal).
    Wizard(cmd::install::InstallArgs),
    /// Download one GGUF file by URL or Hugging Face repo and file; resume, verify its sha256.
    Download(cmd::download::DownloadArgs),
    /// List the MINERVA_* environment variables and exit codes.
    HelpEnv,
    /// Print shell completions (bash, zsh, fish, elvish, powershell) to stdout.
    Completions(cmd::completions::CompletionsArgs),
    /// Print the man page (roff) to stdout.
    Man,
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
        Some(Command::Completions(a)) => cmd::completions::completions(&ctx, a),
        Some(Command::Man) => cmd::completions::man(&ctx),
        Some(Command::Download(a)) => cmd::download::run(&ctx, a),
        Some(Command::HelpEnv) => {
            writeln!(std::io::stdout().lock(), "{ENV_HELP}\n\n{EXIT_CODE_HELP}")
                .map_err(Failure::from)
        }
        None => cmd::wizard::run(&ctx, &cmd::install::InstallArgs::from_env()),
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

/// Resolved settings shared by all subcommands.
pub struct Ctx {
    pub json: bool,
    pub quiet: bool,
    /// Whether progress is shown as bars (stderr is a terminal and not disabled).
    pub progress_bars: bool,
    /// Whether plain progress lines are shown (not a terminal, but not quiet or JSON either).
    pub progress_lines: bool,
    pub paths: Paths,
    pub hardware_file: Option<PathBuf>,
    pub probe_root: PathBuf,
    /// `--registry DIR`: replaces the embedded registry.
    pub registry_dir: Option<PathBuf>,
    /// `--tiers FILE`: replaces the embedded tier table.
    pub tiers_file: Option<PathBuf>,
}

impl Ctx {
    pub fn resolve(g: &GlobalArgs) -> Ctx {
        let paths = Paths::resolve(&PathOverrides {
            config_dir: g.config_dir.clone(),
            state_dir: g.state_dir.clone(),
            models_dir: g.models_dir.clone(),
            data_dir: g.data_dir.clone(),
        });
        let stderr_tty = std::io::stderr().is_terminal();
        let silent = g.quiet || g.no_progress;
        Ctx {
            json: g.json,
            quiet: g.quiet,
            progress_bars: stderr_tty && !silent && !g.json,
            progress_lines: !stderr_tty && !silent && !g.json,
            paths,
            hardware_file: g.hardware.clone(),
            probe_root: g.probe_root.clone().unwrap_or_else(|| PathBuf::from("/")),
            registry_dir: g.registry.clone(),
            tiers_file: g.tiers.clone(),
        }
    }

    /// The hardware to plan for: the `--hardware` profile, or a live probe of this machine.
    pub fn hardware(&self, measure_bandwidth: bool) -> Result<HardwareProfile, Failure> {
        match &self.hardware_file {
            Some(path) => HardwareProfile::from_file(path)
                .exit(Exit::BadInput)
                .map_err(|f| {
                    f.hint("write a profile with `minerva-setup probe --json > FILE` and edit it")
                }),
            None => {
                let opts = crate::probe::ProbeOptions {
                    root: self.probe_root.clone(),
                    disk_path: self.paths.models_dir.clone(),
                    measure_bandwidth,
                };
                // A fixture root without proc/ would describe an empty machine: refuse it.
                if let Some(problem) = opts.root_problem() {
                    return Err(Failure::new(Exit::Usage, anyhow::anyhow!(problem)).hint(
                        "point --probe-root (MINERVA_PROBE_ROOT) at a tree with proc/ and sys/ as on a real machine, e.g. tests/fixtures/roots/docker-v1",
                    ));
                }
                Ok(crate::probe::probe(&opts))
            }
        }
    }

    /// A progress sink matching the output mode.
    pub fn progress(&self) -> Box<dyn Progress> {
        if self.progress_bars || self.progress_lines {
            Box::new(crate::term::TermProgress::new(self.progress_bars))
        } else {
            Box::new(NoProgress)
        }
    }

    /// Print a stage's value: JSON with `--json`, otherwise its human report (unless `--quiet`).
    pub fn emit<T: Serialize + Human>(&self, value: &T) -> Result<(), Failure> {
        let mut out = std::io::stdout().lock();
        if self.json {
            serde_json::to_writer_pretty(&mut out, value)?;
            writeln!(out)?;
        } else if !self.quiet {
            out.write_all(value.human().as_bytes())?;
        }
        out.flush()?;
        Ok(())
    }

    /// Render a failure on stderr; with `--json`, also print a JSON error document on stdout so
    /// that a provisioning script always gets one document.
    ///
    /// A closed stdout or stderr (`... | head -1`) is ignored rather than a panic as with
    /// `println!`: the exit code still tells the failure, and there is nowhere left to report a
    /// failed write.
    pub fn report_failure(&self, f: &Failure) {
        let _ = writeln!(std::io::stderr().lock(), "{f}");
        if self.json {
            let doc = serde_json::json!({
                "error": f.error.to_string(),
                "causes": f.error.chain().skip(1).map(|c| c.to_string()).collect::<Vec<_>>(),
                "hint": f.hint,
                "exit_code": f.exit.code(),
            });
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            )
            .and_then(|()| out.flush());
        }
    }
}

/// A value that has a human-readable report.
pub trait Human {
    fn human(&self) -> String;
}

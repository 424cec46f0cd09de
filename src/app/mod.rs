//! What every subcommand shares: the resolved context ([`Ctx`]: paths, output mode, where the
//! hardware comes from), the argument groups several subcommands take ([`args`]), the one settings
//! step that turns flags, `MINERVA_*` variables and stored state into the pipeline's typed
//! settings ([`settings`]), the mapping of pipeline errors to exit codes ([`failure`]), the human
//! reports several subcommands print ([`render`]) and the questions of the wizard
//! ([`interactive`]).
//!
//! Sits above the pipeline and below `cmd`: a `cmd/*` file parses, calls [`settings`], runs one
//! pipeline function and renders its result. Nothing here knows a particular subcommand's flags.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use serde::Serialize;

use crate::exit::{Exit, Failure, ResultExt};
use crate::paths::{PathOverrides, Paths};
use crate::profile::HardwareProfile;
use crate::progress::{NoProgress, Progress};

pub mod args;
pub mod failure;
pub mod interactive;
pub mod render;
pub mod settings;

use args::GlobalArgs;

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
    /// `--cpu-variant NAME`: llama.cpp's CPU kernels to run instead of the best this CPU runs.
    pub cpu_variant: Option<String>,
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
            cpu_variant: g.cpu_variant.clone().filter(|v| !v.is_empty()),
        }
    }

    /// Whether the hardware is this machine or a profile file's (which may describe another).
    pub fn machine(&self) -> crate::pipeline::stored::Machine {
        if self.hardware_file.is_some() {
            crate::pipeline::stored::Machine::Other
        } else {
            crate::pipeline::stored::Machine::This
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
    pub fn report_failure(&self, f: &Failure) {
        // Nowhere is left to report a failed write of the report itself: a closed stdout or
        // stderr is the reader's choice, never a panic.
        let _ = writeln!(std::io::stderr().lock(), "{f}");
        if self.json && !f.reported {
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

//! Hidden subcommands the program runs on itself; not for people, not in `--help`, the
//! completions or the man page.
//!
//! - `__check-cpu-variant`: the child process that tries one of llama.cpp's CPU kernel variants
//!   before the parent trusts it (see `llama::cpu`). It dies by a signal when the CPU cannot run
//!   the variant; the parent reads that and falls back.
//! - `__libs`: the shared libraries this binary runs with (llama.cpp's, and the backend variants
//!   it chooses from), one path per line, for `installers/install.sh` to install next to it.

use clap::Args;

use crate::app::Ctx;
use crate::exit::{Exit, Failure, ResultExt};

#[derive(Debug, Args)]
pub struct CheckCpuVariantArgs {
    /// The variant to run (`icelake`).
    #[arg(long, value_name = "NAME")]
    pub variant: String,
    /// Threads to run it with.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub threads: u32,
}

/// Exit 0 when the variant ran, 8 (`llama::cpu::CHECK_KERNELS_FAILED`) when llama.cpp failed
/// with it, 1 when the check could not be set up; a signal when the CPU refused the kernels.
pub fn check_cpu_variant(_ctx: &Ctx, a: &CheckCpuVariantArgs) -> Result<(), Failure> {
    use crate::llama::CheckFailure;
    match crate::llama::run_variant_check(&crate::probe::cpu::live_simd(), &a.variant, a.threads) {
        Ok(()) => Ok(()),
        Err(e @ CheckFailure::Setup(_)) => Err(Failure::new(Exit::Failure, e)),
        Err(e @ CheckFailure::Kernels(_)) => Err(Failure::new(Exit::Unsupported, e)),
    }
}

pub fn libs(_ctx: &Ctx) -> Result<(), Failure> {
    use std::io::Write;
    let paths = crate::llama::runtime_libraries()
        .exit(Exit::Unsupported)
        .map_err(|f| f.hint("set MINERVA_LIB_DIR to the directory with libggml-cpu-*.so"))?;
    let mut out = std::io::stdout().lock();
    for p in paths {
        writeln!(out, "{}", p.display())?;
    }
    Ok(())
}

//! Pipeline errors to exit codes and hints: what happened, and what to do about it.

use crate::bench::runner::BenchError;
use crate::exit::{Exit, Failure};
use crate::fetch::remote::RemoteError;
use crate::fetch::{FetchError, FetchErrorKind};
use crate::pipeline::remote::ResolveError;
use crate::pipeline::reverify::ReverifyError;
use crate::pipeline::stored::StoredBenchError;
use crate::pipeline::InstallError;
use crate::state::StateError;

use super::Ctx;

/// Map a pipeline error to its exit code and a hint that says what to do.
pub fn install_failure(ctx: &Ctx, e: InstallError) -> Failure {
    if let InstallError::Verify { source, .. } = &e {
        if let Some(v) = variant_error(source) {
            return variant_failure(&v, e);
        }
    }
    let config = crate::config::RuntimeConfig::path(&ctx.paths.config_dir);
    match e {
        InstallError::Locked(_) => Failure::new(Exit::Locked, e)
            .hint("wait for the other minerva-setup run to finish; nothing was changed"),
        InstallError::Bench(b) => bench_failure(ctx, *b),
        InstallError::Select(_) => {
            Failure::new(Exit::Usage, e).hint("see `minerva-setup registry list` and tiers.json for the ids")
        }
        InstallError::NoTierFits { .. } => Failure::new(Exit::NoTierFits, e)
            .hint("run `minerva-setup plan` for every tier's reason; add memory or a GPU, or accept a longer turn"),
        InstallError::NotInstallable { .. } => Failure::new(Exit::Usage, e)
            .hint("pick a model with a known sha256 (`minerva-setup registry list`)"),
        InstallError::Download {
            model,
            part,
            source,
            ..
        } => {
            // The fetch error keeps its own exit code and hint; say what it meant for the install.
            let f = fetch_failure(*source);
            let part = part.map(|p| format!(" ({p})")).unwrap_or_default();
            Failure {
                error: f.error.context(format!("downloading `{model}` failed{part}; the previous config and model are unchanged")),
                ..f
            }
        }
        InstallError::Verify { .. } | InstallError::Missed { .. } => Failure::new(Exit::Verify, e).hint(format!(
            "`{}` still describes the previously verified model; see `minerva-setup status`",
            config.display()
        )),
        InstallError::State(_) => Failure::new(Exit::Failure, e),
    }
}

/// Map a fetch error to its exit code and hint.
pub fn fetch_failure(e: FetchError) -> Failure {
    let exit = match e.kind() {
        FetchErrorKind::Locked => Exit::Locked,
        FetchErrorKind::BadFilename | FetchErrorKind::BadRequest => Exit::BadInput,
        _ => Exit::Download,
    };
    let hint = e.hint();
    let f = Failure::new(exit, e);
    match hint {
        Some(h) => f.hint(h),
        None => f,
    }
}

/// Map a failure to resolve or inspect an `hf:` model to its exit code and a hint.
pub fn resolve_failure(e: ResolveError) -> Failure {
    match e {
        ResolveError::Remote(RemoteError::Unauthorized { ref model_page, token_sent, .. }) => {
            let hint = if token_sent {
                format!("accept the licence on {model_page} with the account the token belongs to")
            } else {
                format!("accept the licence on {model_page} and set HF_TOKEN (or log in with `hf auth login`)")
            };
            Failure::new(Exit::Download, e).hint(hint)
        }
        ResolveError::Remote(RemoteError::NotFound { .. }) => Failure::new(Exit::Usage, e)
            .hint("check the repository and the path on the model page, and --revision"),
        ResolveError::Remote(RemoteError::Header(_)) | ResolveError::Header(_) => {
            Failure::new(Exit::BadInput, e)
                .hint("the file is not a GGUF model llama.cpp can load; pick another file of the repository")
        }
        ResolveError::Remote(_) => Failure::new(Exit::Download, e)
            .hint("check the network and the endpoint (--mirror, HF_ENDPOINT); the request is retried with --retries"),
        ResolveError::NoMatch { .. } | ResolveError::Ambiguous { .. } | ResolveError::NotFirstPart { .. } => {
            Failure::new(Exit::Usage, e)
        }
    }
}

/// Whether a verification stopped because no CPU kernel variant could run (or the forced one
/// cannot): exit 8, as in the benchmark.
fn variant_error(e: &crate::verify::VerifyError) -> Option<crate::llama::cpu::VariantError> {
    match e {
        crate::verify::VerifyError::Llama(crate::llama::LlamaError::CpuVariant(v)) => {
            Some(v.clone())
        }
        _ => None,
    }
}

/// The exit code and hint of a CPU-variant error, the same for `bench`, `verify` and `install`.
fn variant_failure(v: &crate::llama::cpu::VariantError, e: impl Into<anyhow::Error>) -> Failure {
    use crate::llama::cpu::VariantError as V;
    match v {
        V::NoLibraries { .. } => Failure::new(Exit::Unsupported, e).hint(
            "llama.cpp's backend libraries are installed next to the binary, in <prefix>/lib/minerva-setup: reinstall with installers/install.sh or set MINERVA_LIB_DIR",
        ),
        V::UnknownVariant { .. } | V::ForcedNotSupported { .. } => Failure::new(Exit::Usage, e)
            .hint("drop --cpu-variant (MINERVA_CPU_VARIANT) to run the best variant this CPU can, or name one `probe` lists"),
        V::CheckBroken { .. } => Failure::new(Exit::Failure, e)
            .hint("the child process that tries llama.cpp's CPU kernels could not run; check the temporary directory (TMPDIR) and that the binary is complete"),
        V::NoneRuns { .. } | V::Load { .. } => Failure::new(Exit::Unsupported, e)
            .hint("no build of llama.cpp's CPU kernels ran here; the reason for each is listed above"),
    }
}

/// Map a benchmark error to its exit code and a hint.
pub fn bench_failure(ctx: &Ctx, e: BenchError) -> Failure {
    match e {
        BenchError::Unsupported(ref v) => variant_failure(&v.clone(), e),
        BenchError::Model(crate::bench::models::ModelError::Read(_)) => {
            Failure::new(Exit::BadInput, e)
                .hint("check that --bench-model names a complete GGUF file")
        }
        BenchError::Model(_) => Failure::new(Exit::Failure, e).hint(format!(
            "benchmark models are written under `{}`; check free space and permissions there",
            ctx.paths.cache_dir.join("bench").display()
        )),
        BenchError::Llama(_) => Failure::new(Exit::Failure, e),
    }
}

/// A state file that could not be read or written.
pub fn state_failure(e: StateError) -> Failure {
    match e {
        StateError::Parse { .. } => Failure::new(Exit::BadInput, e)
            .hint("the file was left as it is; fix or remove it, then run the command again"),
        StateError::Locked { .. } => Failure::new(Exit::Locked, e)
            .hint("wait for the other minerva-setup run to finish; nothing was changed"),
        _ => Failure::new(Exit::Failure, e),
    }
}

/// A benchmark that could not be run or stored.
pub fn stored_bench_failure(ctx: &Ctx, e: StoredBenchError) -> Failure {
    match e {
        StoredBenchError::Bench(b) => bench_failure(ctx, b),
        StoredBenchError::State(s) => {
            state_failure(s).hint("the state directory must be writable (or pass --no-bench)")
        }
    }
}

/// `verify`'s errors.
pub fn reverify_failure(ctx: &Ctx, e: ReverifyError) -> Failure {
    if let ReverifyError::Verify(v) = &e {
        if let Some(v) = variant_error(v) {
            return variant_failure(&v, e);
        }
    }
    match e {
        ReverifyError::NothingInstalled { .. } => Failure::new(Exit::Usage, e)
            .hint("run `minerva-setup install`, or verify a file with --model-file FILE.gguf"),
        ReverifyError::Locked { .. } => Failure::new(Exit::Locked, e)
            .hint("wait for the other minerva-setup run to finish; nothing was changed"),
        ReverifyError::State(s) => state_failure(s),
        ReverifyError::Verify(_) => Failure::new(Exit::Verify, e),
        ReverifyError::Missed { .. } => Failure::new(Exit::Verify, e).hint(
            "the config was left unchanged; --on-miss warn records the real figures, --on-miss downgrade installs the next tier down",
        ),
        ReverifyError::Downgrade(i) => install_failure(ctx, *i),
    }
}

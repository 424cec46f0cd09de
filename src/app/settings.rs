//! The one settings step: flags (with their `MINERVA_*` variables, which clap reads) and the
//! stored state merge here, once per command, into the pipeline's typed settings. Numeric flags
//! were validated by their value parsers (see [`super::args`]) before anything gets here.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use crate::bench::runner::BenchOptions;
use crate::exit::{Exit, Failure, ResultExt};
use crate::fetch::{self, FetchOptions};
use crate::pipeline::remote::{self, RemoteModel};
use crate::pipeline::reverify::{ReverifySettings, VerifyTarget};
use crate::pipeline::{calibration, stored, InstallSettings};
use crate::predict::ComponentRatios;
use crate::profile::HardwareProfile;
use crate::registry::{self, Registry, Tiers};
use crate::select::SelectOptions;
use crate::state::Action;

use super::args::{InstallArgs, TransferArgs, WorkloadArgs};
use super::failure::state_failure;
use super::Ctx;

/// Load the registry and the tier table the flags select, validated against each other.
pub fn load_registry(ctx: &Ctx) -> Result<(Registry, Tiers), Failure> {
    let hint = "fix the named field, or drop --registry/--tiers (MINERVA_REGISTRY/MINERVA_TIERS) to use the built-in files";
    let reg = match &ctx.registry_dir {
        Some(d) => registry::load_registry_dir(d),
        None => Registry::embedded(),
    }
    .exit(Exit::BadInput)
    .map_err(|f| f.hint(hint))?;
    let tiers = match &ctx.tiers_file {
        Some(f) => registry::load_tiers_file(f),
        None => registry::parse_tiers(registry::EMBEDDED_TIERS, "tiers.json (embedded)"),
    }
    .and_then(|t| registry::validate_tiers(&t, &reg).map(|()| t))
    .exit(Exit::BadInput)
    .map_err(|f| f.hint(hint))?;
    Ok((reg, tiers))
}

/// Without `--yes`, a question needs a person at a terminal: never wait on a closed stdin.
pub fn require_yes_or_terminal(yes: bool, what: &str) -> Result<(), Failure> {
    if yes || (std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Ok(());
    }
    Err(Failure::new(Exit::Usage, anyhow::anyhow!("`{what}` needs answers but no terminal is attached"))
        .hint(format!("add --yes (or MINERVA_YES=1) to run `minerva-setup {what}` unattended with the recommendation")))
}

/// Resolve flags, environment and stored state into pipeline settings.
pub fn install_settings(
    ctx: &Ctx,
    hw: &HardwareProfile,
    a: &InstallArgs,
    action: Action,
) -> Result<InstallSettings, Failure> {
    let (mut registry, tiers) = load_registry(ctx)?;
    let model = model_for_plan(
        ctx,
        &mut registry,
        a.model.as_deref(),
        a.mirror.as_deref(),
        a.revision.as_deref(),
    )?;
    let mut run = BenchOptions::new(ctx.paths.cache_dir.clone())
        .with_batches_for(planned_concurrency(&tiers, &a.workload));
    run.threads = a.threads;
    run.bench_model = a.bench_model.clone();
    run.gpu = !a.no_gpu;
    // A re-tier keeps the kernels a forced install was promised for, unless told otherwise.
    let cpu_variant = match action {
        Action::Retier => ctx
            .cpu_variant
            .clone()
            .or_else(|| installed_forced_variant(ctx)),
        _ => ctx.cpu_variant.clone(),
    };
    run.cpu_variant = cpu_variant.clone();
    let bench = stored::bench_source(hw, &ctx.paths.state_dir, ctx.machine(), a.skip_bench, run)
        .map_err(state_failure)?;
    Ok(InstallSettings {
        paths: ctx.paths.clone(),
        registry,
        tiers,
        select: SelectOptions {
            max_latency_s: a.max_latency,
            tier: a.tier.clone(),
            model,
            force: a.force,
            workload: a.workload.overrides(),
            correction_ratio: a.workload.correction_ratio,
            components: None,
            below_tier: None,
        },
        bench,
        endpoint: endpoint(a.mirror.as_deref())?,
        // The token goes with every request the fetch stage marks gated, to that host only.
        fetch: fetch_options(&a.transfer, ctx.paths.models_dir.clone(), true)?,
        threads: a.threads,
        gpu: !a.no_gpu,
        cpu_variant,
        on_miss: a.on_miss.into(),
        require: a.required(),
        prune: a.prune,
        action,
    })
}

/// The CPU variant the installed config was verified with, when it was forced.
fn installed_forced_variant(ctx: &Ctx) -> Option<String> {
    let path = crate::config::RuntimeConfig::path(&ctx.paths.config_dir);
    crate::state::load_json::<crate::config::RuntimeConfig>(&path)
        .ok()
        .flatten()
        .and_then(|c| c.cpu_variant)
        .filter(|v| v.forced)
        .map(|v| v.name)
}

/// The most conversations in flight a plan can ask for: `--concurrency`, else the largest of
/// the tiers' (the benchmark measures batched decode only when this is above one).
pub fn planned_concurrency(tiers: &Tiers, w: &WorkloadArgs) -> u32 {
    w.concurrency.unwrap_or_else(|| {
        tiers
            .tiers
            .iter()
            .map(|t| t.workload.users())
            .max()
            .unwrap_or(1)
    })
}

/// The correction ratio for predictions: `--correction`, else the one the last verification on
/// this hardware stored.
pub fn correction_ratio(ctx: &Ctx, hw: &HardwareProfile, w: &WorkloadArgs) -> Option<f64> {
    w.correction_ratio
        .or_else(|| calibration::stored_ratio(&ctx.paths.state_dir, hw))
}

/// The prefill and decode ratios the last verification on this hardware stored; none when
/// `--correction` gives one ratio for the whole turn.
pub fn component_ratios(
    ctx: &Ctx,
    hw: &HardwareProfile,
    w: &WorkloadArgs,
) -> Option<ComponentRatios> {
    if w.correction_ratio.is_some() {
        return None;
    }
    calibration::stored_components(&ctx.paths.state_dir, hw)
}

/// `verify`'s settings: what to verify, with which overrides and which policy.
pub fn reverify_settings(
    ctx: &Ctx,
    model_file: Option<PathBuf>,
    gpu_layers: Option<u32>,
    a: &InstallArgs,
) -> ReverifySettings {
    ReverifySettings {
        paths: ctx.paths.clone(),
        target: model_file.map_or(VerifyTarget::Installed, VerifyTarget::File),
        threads: a.threads,
        gpu_layers,
        workload: a.workload.overrides(),
        max_latency_s: a.max_latency,
        on_miss: a.on_miss.into(),
        require: a.required(),
        cpu_variant: ctx.cpu_variant.clone(),
    }
}

/// Fetch options into `dest_dir`, with the token when `gated`.
pub fn fetch_options(
    t: &TransferArgs,
    dest_dir: PathBuf,
    gated: bool,
) -> Result<FetchOptions, Failure> {
    let stall_timeout = Duration::try_from_secs_f64(t.stall_timeout)
        .ok()
        .filter(|d| !d.is_zero());
    let Some(stall_timeout) = stall_timeout else {
        return Err(Failure::new(
            Exit::Usage,
            anyhow::anyhow!(
                "--stall-timeout {} is not a usable number of seconds",
                t.stall_timeout
            ),
        )
        .hint("e.g. --stall-timeout 30"));
    };
    Ok(FetchOptions {
        dest_dir,
        token: if gated {
            fetch::hf_token_from_env()
        } else {
            None
        },
        retries: t.retries,
        retry_base: Duration::from_millis(t.retry_base_ms),
        connections: t.connections,
        min_range_bytes: t.min_range_bytes,
        stall_timeout,
        hf_cache_dir: if t.no_hf_cache {
            None
        } else {
            fetch::hf_hub_cache_from_env()
        },
        ..FetchOptions::default()
    })
}

/// The Hugging Face endpoint from `--mirror` or `HF_ENDPOINT`, refused (exit 2) when it is not a
/// usable base URL. Shared by `download`, `install`, `retier` and the wizard.
pub fn endpoint(mirror: Option<&str>) -> Result<String, Failure> {
    fetch::hf_endpoint_from_env(mirror).map_err(|e| {
        Failure::new(Exit::Usage, e).hint(format!(
            "give the mirror's base URL, e.g. --mirror https://hf-mirror.example, or leave --mirror, MINERVA_MIRROR and HF_ENDPOINT unset to use {}",
            fetch::DEFAULT_ENDPOINT
        ))
    })
}

/// Where headers read from Hugging Face are cached.
pub fn header_cache_dir(ctx: &Ctx) -> PathBuf {
    ctx.paths.cache_dir.join("gguf-headers")
}

/// A model given as `hf:ORG/REPO/PATH.gguf` or `hf:ORG/REPO:QUANT`: resolved on the endpoint
/// (`--mirror`, else `HF_ENDPOINT`) at `revision` (default `main`), its header read remotely.
/// `None` when `value` is not an `hf:` name; exit 2 when it is a malformed one.
pub fn remote_model(
    ctx: &Ctx,
    value: &str,
    mirror: Option<&str>,
    revision: Option<&str>,
) -> Result<Option<RemoteModel>, Failure> {
    let Some(spec) = fetch::parse_hf_spec(value) else {
        return Ok(None);
    };
    let spec = spec.map_err(|e| {
        Failure::new(Exit::Usage, anyhow::anyhow!(e))
            .hint("e.g. hf:Qwen/Qwen2.5-1.5B-Instruct-GGUF/qwen2.5-1.5b-instruct-q4_k_m.gguf or hf:Qwen/Qwen2.5-1.5B-Instruct-GGUF:Q4_K_M")
    })?;
    let endpoint = endpoint(mirror)?;
    let opts = FetchOptions {
        token: fetch::hf_token_from_env(),
        ..FetchOptions::default()
    };
    let cache = header_cache_dir(ctx);
    let revision = revision.unwrap_or("main");
    ctx.progress().note(&format!(
        "reading the header of {value} (at {revision}) from {endpoint}"
    ));
    let r = remote::resolve(&spec, &endpoint, revision, &opts, Some(&cache))
        .map_err(super::failure::resolve_failure)?;
    let how = if r.from_cache {
        "header from the cache".to_string()
    } else {
        format!(
            "read {} of {} for the header",
            indicatif::HumanBytes(r.bytes_fetched),
            indicatif::HumanBytes(r.info.size_bytes)
        )
    };
    ctx.progress().note(&format!("{}: {how}", r.file.id));
    Ok(Some(r))
}

/// `--model hf:…` for `plan` and `install`: resolve it, add its entry to `registry` and return
/// the id to plan with; any other `--model` is returned as it is.
pub fn model_for_plan(
    ctx: &Ctx,
    registry: &mut Registry,
    model: Option<&str>,
    mirror: Option<&str>,
    revision: Option<&str>,
) -> Result<Option<String>, Failure> {
    let Some(m) = model else {
        if revision.is_some() {
            return Err(Failure::new(
                Exit::Usage,
                anyhow::anyhow!("--revision applies to an `hf:` --model"),
            )
            .hint("drop --revision, or add --model hf:ORG/REPO/PATH.gguf"));
        }
        return Ok(None);
    };
    match remote_model(ctx, m, mirror, revision)? {
        Some(r) => {
            let id = r.file.id.clone();
            registry.files.retain(|f| f.id != id);
            registry.files.push(r.file);
            Ok(Some(id))
        }
        None if revision.is_some() => Err(Failure::new(
            Exit::Usage,
            anyhow::anyhow!("--revision applies to an `hf:` --model, not to `{m}`"),
        )
        .hint("drop --revision, or name the model as hf:ORG/REPO/PATH.gguf")),
        None => Ok(Some(m.to_string())),
    }
}

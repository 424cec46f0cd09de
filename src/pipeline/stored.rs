//! Which benchmark a plan is made from, and where it is kept.
//!
//! A simulated profile (a fixture of another server) carries its own figures. Planning this
//! machine uses its stored benchmark (`<state_dir>/bench.json`, read and written only through
//! [`crate::state::load_bench`] / [`crate::state::save_bench`]), and measures one when there is
//! none. With `--hardware FILE` the profile describes another machine, so this machine's stored
//! benchmark would lie: it is not used.

use std::path::Path;

use crate::bench::runner::{self, BenchError, BenchOptions};
use crate::profile::HardwareProfile;
use crate::progress::Progress;
use crate::state::{self, StateError};
use crate::types::bench::BenchResult;
use crate::types::cpu_variant::CpuVariant;

use super::BenchSource;

/// Where a plan's figures come from, for `hw`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machine {
    /// `hw` is this machine (a live probe).
    This,
    /// `hw` was read from a profile file and may describe another machine.
    Other,
}

/// The benchmark to predict from without measuring: the profile's own, else the stored one of
/// this machine, else none. The string says where it came from.
pub fn known_bench(
    hw: &HardwareProfile,
    state_dir: &Path,
    machine: Machine,
    forced: Option<&str>,
) -> Result<(Option<BenchResult>, String), StateError> {
    if let Some(b) = &hw.bench {
        return Ok((Some(b.clone()), "hardware profile".into()));
    }
    if machine == Machine::Other {
        return Ok((
            None,
            "none (the --hardware profile carries no bench section): unmeasured".into(),
        ));
    }
    match state::load_bench(state_dir)? {
        Some(b) if b.schema_version < crate::types::bench::BENCH_SCHEMA_VERSION => Ok((
            None,
            format!(
                "none: the stored benchmark is of an older kind (schema {}), measured differently from this version's (run `minerva-setup bench` to measure again)",
                b.schema_version
            ),
        )),
        Some(b) if !same_kernels(&b, forced, expected_here().as_deref()) => Ok((
            None,
            format!(
                "none: the stored benchmark ran llama.cpp's {} kernels, not the ones this run uses",
                b.cpu_variant
                    .as_ref()
                    .map_or("AVX2 (haswell)", |v| v.name.as_str())
            ),
        )),
        Some(b) => Ok((Some(b), state::bench_path(state_dir).display().to_string())),
        None => Ok((
            None,
            "none (run `minerva-setup bench` to measure): unmeasured".into(),
        )),
    }
}

/// Why a benchmark could not be had.
#[derive(Debug, thiserror::Error)]
pub enum StoredBenchError {
    #[error(transparent)]
    Bench(#[from] BenchError),
    #[error(transparent)]
    State(#[from] StateError),
}

/// Run the benchmark on this machine and store it; returns it with the path it was stored at.
pub fn measure_and_store(
    hw: &HardwareProfile,
    opts: &BenchOptions,
    state_dir: &Path,
    progress: &dyn Progress,
) -> Result<(BenchResult, String), StoredBenchError> {
    let b = runner::run_bench(hw, opts, progress)?;
    let path = state::save_bench(state_dir, &b)?;
    Ok((b, path.display().to_string()))
}

/// The benchmark for `plan`: the known one, else (on this machine, unless `measure` is `None`)
/// a fresh measurement, stored for later plans. A stored benchmark of this machine without the
/// batched-decode curve is measured again when `measure` asks for the curve (a plan for several
/// users); a profile's figures are used as they are.
pub fn bench_for_plan(
    hw: &HardwareProfile,
    state_dir: &Path,
    machine: Machine,
    forced: Option<&str>,
    measure: Option<&BenchOptions>,
    progress: &dyn Progress,
) -> Result<(Option<BenchResult>, String), StoredBenchError> {
    let (bench, source) = known_bench(hw, state_dir, machine, forced)?;
    let from_profile = hw.bench.is_some();
    let wants_batches = measure.is_some_and(|m| !m.batch_sizes.is_empty());
    let bench = bench.filter(|b| from_profile || !wants_batches || !b.batch_decode.is_empty());
    match (bench, measure) {
        (Some(b), _) => Ok((Some(b), source)),
        (None, Some(opts)) if machine == Machine::This => {
            let (b, src) = measure_and_store(hw, opts, state_dir, progress)?;
            Ok((Some(b), src))
        }
        (None, _) => Ok((None, source)),
    }
}

/// Whether a stored benchmark ran the kernels a run would: the forced variant, or (none forced)
/// the variant this CPU's features select (`expected`) or the one that ran because that one's
/// check failed, never a forced one. A benchmark from before variants were recorded ran the
/// fixed AVX2 build, llama.cpp's `haswell` kernels: it stands only where `expected` is that one.
pub fn same_kernels(b: &BenchResult, forced: Option<&str>, expected: Option<&str>) -> bool {
    kernels_match(b.cpu_variant.as_deref(), forced, expected)
}

fn kernels_match(ran: Option<&CpuVariant>, forced: Option<&str>, expected: Option<&str>) -> bool {
    const FIXED_BUILD: &str = "haswell";
    match (ran, forced) {
        (Some(v), Some(f)) => v.name == f,
        (None, Some(f)) => f == FIXED_BUILD,
        // A benchmark of kernels this build no longer selects (another build's variant list,
        // or a CPU whose features changed) is measured again.
        (Some(v), None) => {
            !v.forced
                && expected.is_none_or(|e| v.name == e || v.rejected.iter().any(|r| r.name == e))
        }
        (None, None) => expected == Some(FIXED_BUILD),
    }
}

/// The variant this machine's features select (before the check in a child process).
fn expected_here() -> Option<String> {
    use crate::llama::cpu;
    let simd = crate::probe::cpu::live_simd();
    // Among the libraries this binary loads: a build with all of llama.cpp's variants (one not
    // made through this repository's cmake/cpu-variants.cmake) runs, say, cascadelake where
    // this build's list would name skylakex.
    let chosen = match cpu::find_library_dir() {
        Ok(dir) => {
            let names: Vec<&str> = dir.variants.iter().map(String::as_str).collect();
            cpu::expected_among(&simd, &names)
        }
        Err(_) => cpu::expected_variant(&simd),
    };
    chosen.map(|v| v.name.to_string())
}

/// The benchmark source for `install`, `retier`, the wizard and a downgrade: the profile's own
/// figures, the stored ones when told not to measure (or planning another machine), else a run
/// on this machine (done when the run starts, and stored).
pub fn bench_source(
    hw: &HardwareProfile,
    state_dir: &Path,
    machine: Machine,
    skip_bench: bool,
    run: BenchOptions,
) -> Result<BenchSource, StateError> {
    if hw.bench.is_some() || skip_bench || machine == Machine::Other {
        return Ok(
            match known_bench(hw, state_dir, machine, run.cpu_variant.as_deref())? {
                (Some(b), src) => BenchSource::Given(Box::new(b), src),
                (None, _) => BenchSource::None,
            },
        );
    }
    Ok(BenchSource::Run(run))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::cpu_variant::RejectedVariant;

    fn ran(name: &str, forced: bool, rejected: &[&str]) -> CpuVariant {
        CpuVariant {
            name: name.into(),
            simd_level: "avx512-vnni".into(),
            forced,
            checked: true,
            rejected: rejected
                .iter()
                .map(|r| RejectedVariant {
                    name: (*r).into(),
                    reason: "its check process was killed by SIGILL".into(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_stored_benchmark_of_an_older_kind_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/bench-2core-avx512.json"),
        )
        .unwrap();
        let mut hw = HardwareProfile::from_json(&text, "fixture").unwrap();
        hw.bench = None;
        let mut old: BenchResult =
            serde_json::from_str(r#"{"schema_version": 1, "threads": 2, "quants": []}"#).unwrap();
        state::save_bench(dir.path(), &old).unwrap();
        let (b, source) = known_bench(&hw, dir.path(), Machine::This, None).unwrap();
        assert!(b.is_none(), "{source}");
        assert!(source.contains("older kind (schema 1)"), "{source}");
        // The current kind is judged by its kernels instead (what this CPU selects decides).
        old.schema_version = crate::types::bench::BENCH_SCHEMA_VERSION;
        state::save_bench(dir.path(), &old).unwrap();
        let (_, source) = known_bench(&hw, dir.path(), Machine::This, None).unwrap();
        assert!(!source.contains("older kind"), "{source}");
    }

    #[test]
    fn a_stored_benchmark_stands_only_for_the_kernels_a_run_would_use() {
        let zen4 = ran("zen4", false, &[]);
        assert!(kernels_match(Some(&zen4), None, Some("zen4")));
        // Measured with another build's AMX variant: this build selects zen4, so measure again.
        let amx = ran("sapphirerapids", false, &[]);
        assert!(!kernels_match(Some(&amx), None, Some("zen4")));
        // zen4 ran because the expected AMX variant failed its check: still what a run uses.
        let fell_back = ran("zen4", false, &["sapphirerapids"]);
        assert!(kernels_match(
            Some(&fell_back),
            None,
            Some("sapphirerapids")
        ));
        // A forced benchmark never stands for an unforced run, and vice versa.
        let forced = ran("sse42", true, &[]);
        assert!(!kernels_match(Some(&forced), None, Some("sse42")));
        assert!(kernels_match(Some(&forced), Some("sse42"), Some("zen4")));
        assert!(!kernels_match(Some(&zen4), Some("sse42"), Some("zen4")));
        // Before variants were recorded: the fixed AVX2 build.
        assert!(kernels_match(None, None, Some("haswell")));
        assert!(!kernels_match(None, None, Some("zen4")));
        assert!(kernels_match(None, Some("haswell"), Some("zen4")));
    }
}

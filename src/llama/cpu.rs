//! Can this build of llama.cpp run on this CPU? Checked before llama.cpp is touched, because
//! code compiled for a SIMD level the CPU lacks dies with SIGILL instead of failing.
//!
//! `llama-cpp-sys-2` builds ggml with `GGML_NATIVE=OFF`, which leaves ggml's own x86 defaults on:
//! SSE4.2, AVX, AVX2, BMI2, FMA and F16C (`INS_ENB` in llama.cpp's `ggml/CMakeLists.txt`; the
//! build of this crate was checked: `-msse4.2 -mf16c -mfma -mbmi2 -mavx -mavx2` in
//! `ggml-cpu`'s flags). Rust target features given at build time (`-C target-feature=+avx512f`,
//! `-C target-cpu=...`) are passed on to ggml too and raise the baseline further. An Ivy Bridge
//! Xeon (AVX and F16C, no AVX2/FMA) therefore cannot run this build; it is refused with
//! `Exit::Unsupported` rather than crashed. aarch64 builds target armv8-a, which every aarch64
//! CPU meets.
//!
//! The alternative, choosing kernels at run time (`llama-cpp-2/dynamic-backends`:
//! `GGML_BACKEND_DL` with `GGML_CPU_ALL_VARIANTS`), builds ggml-cpu once per x86 variant as shared
//! libraries that must be installed next to the binary and found there at run time. That is a
//! packaging change for the whole project, not a benchmark detail, so this build refuses instead.
//! Never build with `-C target-cpu=native`: besides pinning the baseline to the build machine, it
//! turns on ggml's AMX path, which crashes in multi-threaded decode of quantised models.

use crate::profile::{HardwareProfile, SimdLevel};

/// A CPU feature the build needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feature {
    /// The name `is_x86_feature_detected!` and `/proc/cpuinfo` know it by.
    pub name: &'static str,
    /// Whether this process's CPU has it.
    pub present: bool,
}

/// Why llama.cpp must not be started here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpuUnsupported {
    #[error("this CPU lacks {missing} that this build of llama.cpp was compiled for (baseline: {baseline})")]
    MissingFeatures { missing: String, baseline: String },
    #[error(
        "the hardware profile describes a CPU of SIMD level `{level}`, below this build's baseline `{baseline}`"
    )]
    ProfileBelowBaseline { level: String, baseline: String },
}

/// The SIMD level this build's ggml kernels require, as the probe names levels.
pub fn build_baseline_level() -> SimdLevel {
    if cfg!(target_arch = "x86_64") {
        if cfg!(all(
            target_feature = "avx512f",
            target_feature = "avx512vnni"
        )) {
            SimdLevel::Avx512Vnni
        } else if cfg!(target_feature = "avx512f") {
            SimdLevel::Avx512
        } else {
            SimdLevel::Avx2
        }
    } else if cfg!(target_arch = "aarch64") {
        SimdLevel::Neon
    } else {
        SimdLevel::None
    }
}

/// The features the build needs, each with whether the running CPU has it.
pub fn build_features() -> Vec<Feature> {
    #[cfg(target_arch = "x86_64")]
    {
        let mut v = vec![
            Feature {
                name: "sse4.2",
                present: std::arch::is_x86_feature_detected!("sse4.2"),
            },
            Feature {
                name: "avx",
                present: std::arch::is_x86_feature_detected!("avx"),
            },
            Feature {
                name: "avx2",
                present: std::arch::is_x86_feature_detected!("avx2"),
            },
            Feature {
                name: "bmi2",
                present: std::arch::is_x86_feature_detected!("bmi2"),
            },
            Feature {
                name: "fma",
                present: std::arch::is_x86_feature_detected!("fma"),
            },
            Feature {
                name: "f16c",
                present: std::arch::is_x86_feature_detected!("f16c"),
            },
        ];
        if cfg!(target_feature = "avx512f") {
            v.push(Feature {
                name: "avx512f",
                present: std::arch::is_x86_feature_detected!("avx512f"),
            });
        }
        if cfg!(target_feature = "avx512vnni") {
            v.push(Feature {
                name: "avx512vnni",
                present: std::arch::is_x86_feature_detected!("avx512vnni"),
            });
        }
        if cfg!(target_feature = "avx512bf16") {
            v.push(Feature {
                name: "avx512bf16",
                present: std::arch::is_x86_feature_detected!("avx512bf16"),
            });
        }
        if cfg!(target_feature = "avxvnni") {
            v.push(Feature {
                name: "avxvnni",
                present: std::arch::is_x86_feature_detected!("avxvnni"),
            });
        }
        v
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Vec::new()
    }
}

/// Refuse when the running CPU lacks a baseline feature, or when `profile` (possibly a file
/// describing another machine) is below the baseline. Call before any llama.cpp function.
pub fn check_build_runs_here(profile: &HardwareProfile) -> Result<(), CpuUnsupported> {
    check(
        &build_features(),
        profile.cpu.simd_level,
        build_baseline_level(),
    )
}

fn check(
    features: &[Feature],
    profile_level: SimdLevel,
    baseline: SimdLevel,
) -> Result<(), CpuUnsupported> {
    let names = |f: &[Feature]| {
        f.iter()
            .map(|f| f.name.to_uppercase())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let missing: Vec<Feature> = features.iter().filter(|f| !f.present).copied().collect();
    if !missing.is_empty() {
        return Err(CpuUnsupported::MissingFeatures {
            missing: names(&missing),
            baseline: names(features),
        });
    }
    // `None` means the profile could not tell; the live check above is what guards the process.
    if profile_level != SimdLevel::None && !profile_level.satisfies(baseline) {
        return Err(CpuUnsupported::ProfileBelowBaseline {
            level: profile_level.as_str().to_string(),
            baseline: baseline.as_str().to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &'static str, present: bool) -> Feature {
        Feature { name, present }
    }

    #[test]
    fn an_ivy_bridge_without_avx2_and_fma_is_refused_with_the_missing_features_named() {
        let feats = [
            f("sse4.2", true),
            f("avx", true),
            f("avx2", false),
            f("fma", false),
            f("f16c", true),
        ];
        let err = check(&feats, SimdLevel::Avx, SimdLevel::Avx2).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("AVX2 FMA") && !msg.contains("lacks SSE4.2"),
            "{msg}"
        );
    }

    #[test]
    fn a_profile_below_the_baseline_is_refused_even_when_this_cpu_could_run_it() {
        let feats = [f("avx2", true)];
        assert!(matches!(
            check(&feats, SimdLevel::Avx, SimdLevel::Avx2),
            Err(CpuUnsupported::ProfileBelowBaseline { .. })
        ));
        assert!(check(&feats, SimdLevel::Avx512, SimdLevel::Avx2).is_ok());
        assert!(
            check(&feats, SimdLevel::None, SimdLevel::Avx2).is_ok(),
            "unknown level defers to the live check"
        );
    }

    #[test]
    fn this_test_machine_runs_the_build() {
        // The tests themselves load llama.cpp; if they run at all, the baseline is met.
        assert!(
            build_features().iter().all(|f| f.present),
            "{:?}",
            build_features()
        );
    }
}

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
    use crate::profile::SimdFeatures;

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

    /// What ggml-cpu itself was compiled for, named as `build_features` names them. The
    /// `ggml_cpu_has_*` functions return the compiler's target macros (`__AVX2__`, ...) as seen
    /// by ggml-cpu.c, so they describe the build, whatever CPU runs it.
    #[cfg(target_arch = "x86_64")]
    fn ggml_compiled_features() -> Vec<&'static str> {
        use std::ffi::c_int;
        // ggml-cpu is linked statically through llama-cpp-sys-2 (ggml/include/ggml-cpu.h).
        extern "C" {
            fn ggml_cpu_has_avx() -> c_int;
            fn ggml_cpu_has_avx2() -> c_int;
            fn ggml_cpu_has_bmi2() -> c_int;
            fn ggml_cpu_has_fma() -> c_int;
            fn ggml_cpu_has_f16c() -> c_int;
            fn ggml_cpu_has_avx_vnni() -> c_int;
            fn ggml_cpu_has_avx512() -> c_int;
            fn ggml_cpu_has_avx512_vbmi() -> c_int;
            fn ggml_cpu_has_avx512_vnni() -> c_int;
            fn ggml_cpu_has_avx512_bf16() -> c_int;
            fn ggml_cpu_has_amx_int8() -> c_int;
        }
        let has: [(&'static str, unsafe extern "C" fn() -> c_int); 11] = [
            ("avx", ggml_cpu_has_avx),
            ("avx2", ggml_cpu_has_avx2),
            ("bmi2", ggml_cpu_has_bmi2),
            ("fma", ggml_cpu_has_fma),
            ("f16c", ggml_cpu_has_f16c),
            ("avxvnni", ggml_cpu_has_avx_vnni),
            ("avx512f", ggml_cpu_has_avx512),
            ("avx512vbmi", ggml_cpu_has_avx512_vbmi),
            ("avx512vnni", ggml_cpu_has_avx512_vnni),
            ("avx512bf16", ggml_cpu_has_avx512_bf16),
            ("amx-int8", ggml_cpu_has_amx_int8),
        ];
        has.iter()
            // SAFETY: argument-less functions that return a compile-time constant.
            .filter(|(_, f)| unsafe { f() } != 0)
            .map(|(name, _)| *name)
            .collect()
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_checked_features_cover_everything_ggml_was_compiled_for() {
        let compiled = ggml_compiled_features();
        let checked: Vec<&str> = build_features().iter().map(|f| f.name).collect();
        // A kernel compiled for a feature the check does not ask for passes the check on a CPU
        // without it, and then dies there with SIGILL.
        for f in &compiled {
            assert!(
                checked.contains(f),
                "ggml-cpu was compiled for {f}, which check_build_runs_here does not check \
                 (ggml: {compiled:?}, checked: {checked:?})"
            );
        }
        // ggml's own x86 defaults with GGML_NATIVE=OFF, which make AVX2 the baseline.
        for f in ["avx", "avx2", "bmi2", "fma", "f16c"] {
            assert!(compiled.contains(&f), "ggml-cpu lacks {f}: {compiled:?}");
        }
        assert!(
            !compiled.contains(&"amx-int8"),
            "ggml-cpu was built with AMX (target-cpu=native?): {compiled:?}"
        );
    }

    #[test]
    fn the_reported_baseline_is_the_level_of_exactly_the_checked_features() {
        let mut simd = SimdFeatures::default();
        for f in build_features() {
            match f.name {
                "sse4.2" => simd.sse4_2 = true,
                "avx" => simd.avx = true,
                "avx2" => simd.avx2 = true,
                "fma" => simd.fma = true,
                "f16c" => simd.f16c = true,
                "avxvnni" => simd.avx_vnni = true,
                "avx512f" => simd.avx512f = true,
                "avx512vnni" => simd.avx512_vnni = true,
                "avx512bf16" => simd.avx512_bf16 = true,
                // Part of no level; the live check alone asks for it.
                "bmi2" => {}
                other => panic!("{other} is a build feature no SIMD level knows"),
            }
        }
        // aarch64 builds need no feature beyond armv8-a, which includes NEON.
        simd.neon = cfg!(target_arch = "aarch64");
        assert_eq!(
            simd.level(),
            build_baseline_level(),
            "{:?}",
            build_features()
        );
        if cfg!(target_arch = "x86_64") {
            assert!(
                build_baseline_level().satisfies(SimdLevel::Avx2),
                "{:?}",
                build_baseline_level()
            );
        }
    }
}

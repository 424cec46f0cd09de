//! The build's CPU baseline against this machine: the probe finds what the build needs here,
//! and the same machine described below the baseline is refused instead of crashing.

use minerva_setup::llama::cpu::{
    build_baseline_level, build_features, check_build_runs_here, CpuUnsupported,
};
use minerva_setup::probe;
use minerva_setup::profile::SimdLevel;

/// Every level a profile can report, in order.
const LEVELS: [SimdLevel; 10] = [
    SimdLevel::None,
    SimdLevel::Sse42,
    SimdLevel::Avx,
    SimdLevel::Avx2,
    SimdLevel::Avx512,
    SimdLevel::Avx512Vnni,
    SimdLevel::Amx,
    SimdLevel::Neon,
    SimdLevel::NeonDotprod,
    SimdLevel::Sve,
];

#[test]
fn this_machine_passes_the_check_and_a_profile_below_the_baseline_is_refused() {
    let mut p = probe::probe(&probe::ProbeOptions {
        root: "/".into(),
        disk_path: ".".into(),
        measure_bandwidth: false,
    });
    let baseline = build_baseline_level();
    // The test machines have what the build needs (AVX2 on x86): llama.cpp runs in the tests.
    assert!(
        build_features().iter().all(|f| f.present),
        "{:?}",
        build_features()
    );
    assert!(
        p.cpu.simd_level.satisfies(baseline),
        "probed {:?}, baseline {baseline:?}",
        p.cpu.simd_level
    );
    assert_eq!(check_build_runs_here(&p), Ok(()));

    // The same machine described at every other level: refused exactly below the baseline.
    for level in LEVELS {
        p.cpu.simd_level = level;
        let got = check_build_runs_here(&p);
        if level == SimdLevel::None || level.satisfies(baseline) {
            assert_eq!(got, Ok(()), "{level:?}");
        } else {
            assert_eq!(
                got,
                Err(CpuUnsupported::ProfileBelowBaseline {
                    level: level.as_str().to_string(),
                    baseline: baseline.as_str().to_string(),
                }),
                "{level:?}"
            );
        }
    }
    if cfg!(target_arch = "x86_64") {
        // An Ivy Bridge Xeon: AVX and F16C, no AVX2.
        p.cpu.simd_level = SimdLevel::Avx;
        assert!(matches!(
            check_build_runs_here(&p),
            Err(CpuUnsupported::ProfileBelowBaseline { .. })
        ));
    }
}

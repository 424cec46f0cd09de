//! `minerva-setup probe` end to end through the built binary: `--probe-root` on every fixture
//! root, the human report, `--save` and reloading the saved profile with `--hardware`.

mod support;

use std::path::{Path, PathBuf};

use minerva_setup::profile::{HardwareProfile, SimdLevel, PROFILE_SCHEMA_VERSION};
use support::{ok, profile, TestCtx};

fn roots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/roots")
}

#[test]
fn every_fixture_root_probes_end_to_end() {
    let expect: &[(&str, &str, SimdLevel, u32, u64)] = &[
        ("haswell-ep-2s", "Haswell-EP", SimdLevel::Avx2, 20, 32 << 30),
        (
            "neoverse-n1",
            "Neoverse-N1",
            SimdLevel::NeonDotprod,
            4,
            16_127_432 * 1024,
        ),
        ("docker-v1", "Skylake-SP", SimdLevel::Avx512, 2, 2 << 30),
        ("epyc-mi300x", "Zen 4", SimdLevel::Avx512Vnni, 4, 256 << 30),
    ];
    let ctx = TestCtx::new();
    for &(name, micro, level, physical, usable) in expect {
        let root = roots().join(name);
        let p = profile(&ctx.run(&["--probe-root", root.to_str().unwrap(), "probe", "--json"]));
        assert_eq!(p.schema_version, PROFILE_SCHEMA_VERSION);
        assert_eq!(p.source, format!("probe root {}", root.display()), "{name}");
        assert_eq!(p.cpu.microarchitecture, micro, "{name}");
        assert_eq!(p.cpu.simd_level, level, "{name}");
        assert_eq!(p.cpu.physical_cores, physical, "{name}");
        assert_eq!(p.memory.usable_bytes, usable, "{name}");
        assert!(
            p.memory_bandwidth.is_none(),
            "{name}: bandwidth measured below a probe root"
        );
        assert!(!p.fingerprint.is_empty());
    }
}

#[test]
fn probe_root_from_the_environment() {
    let root = roots().join("docker-v1");
    let out = TestCtx::new()
        .command()
        .env("MINERVA_PROBE_ROOT", &root)
        .env("MINERVA_JSON", "1")
        .arg("probe")
        .output()
        .unwrap();
    let p = profile(&out);
    assert_eq!(p.memory.usable_bytes, 2 << 30);
}

#[test]
fn human_report_of_a_container_shows_both_memory_figures() {
    let root = roots().join("epyc-mi300x");
    let text = ok(&TestCtx::new().run(&["--probe-root", root.to_str().unwrap(), "probe"]));
    for want in [
        "CPU        AMD EPYC 9654 96-Core Processor (AuthenticAMD, x86_64)",
        "           Zen 4, 2022 [family 0x19 model 0x11 stepping 1]",
        "Cores      4 physical, 8 logical, 1 socket; this process may use 4.0 CPUs",
        "cgroup     v2 /: memory 256.0 GiB (2.0 GiB in use), cpu 4.00 CPUs",
        "Usable     256.0 GiB for models: the cgroup limit, not the 755.9 GiB the host reports",
        "GPU 0      AMD Instinct MI300X: 192.0 GiB VRAM (191.7 GiB free, 5300 GB/s)",
        "Bandwidth  not measured (a probe root describes another machine)",
    ] {
        assert!(
            text.lines().any(|l| l == want),
            "missing line {want:?} in:\n{text}"
        );
    }
    assert!(!text.contains('{'), "human report looks like JSON:\n{text}");
}

#[test]
fn saved_profile_reloads_with_the_same_fingerprint() {
    let ctx = TestCtx::new();
    let file = ctx.path("profile.json");
    let root = roots().join("haswell-ep-2s");
    let p = profile(&ctx.run(&[
        "--probe-root",
        root.to_str().unwrap(),
        "probe",
        "--json",
        "--save",
        file.to_str().unwrap(),
    ]));
    let saved = HardwareProfile::from_file(&file).unwrap();
    assert_eq!(saved, p);
    let again = profile(&ctx.run(&["--hardware", file.to_str().unwrap(), "probe", "--json"]));
    assert_eq!(again.fingerprint, p.fingerprint);
}

#[test]
fn a_probe_root_without_proc_is_a_usage_error() {
    let ctx = TestCtx::new();
    let empty = ctx.path("empty-root");
    std::fs::create_dir_all(&empty).unwrap();
    for root in [ctx.path("missing"), empty] {
        let out = ctx
            .command()
            .arg("--probe-root")
            .arg(&root)
            .arg("probe")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("error: probe root") && err.contains("hint:"),
            "{err}"
        );
        assert!(out.stdout.is_empty());
    }
}

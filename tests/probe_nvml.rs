//! The NVIDIA path of the probe against a stand-in NVML library (tests/fixtures/fake-nvml),
//! built with the system C compiler and found through `LD_LIBRARY_PATH`, as the driver's
//! `libnvidia-ml.so.1` would be. Checks names, memory, compute capability, the bandwidth derived
//! from bus width and memory clock, driver/CUDA versions, PCI ids, and that a lost device is a
//! note, not a failure.
//!
//! Without a working C compiler the test is skipped with a note, except under CI (`CI=true`),
//! where CI provides one and not building the stand-in is a failure.
#![cfg(target_os = "linux")]

mod support;

use std::path::Path;
use std::process::Command;

use minerva_setup::profile::GpuVendor;
use support::TestCtx;

/// Build the stand-in `libnvidia-ml.so.1` in `dir`; why not, when it cannot be built.
fn build_fake_nvml(dir: &Path) -> Result<(), String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake-nvml/fake_nvml.c");
    let lib = dir.join("libnvidia-ml.so.1");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let out = Command::new(&cc)
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&lib)
        .arg(&src)
        .output()
        .map_err(|e| format!("cannot run the C compiler `{cc}`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`{cc}` failed on {} ({}):\n{}",
            src.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

#[test]
fn nvidia_gpus_through_nvml() {
    let ctx = TestCtx::new();
    let lib_dir = ctx.path("nvml");
    std::fs::create_dir_all(&lib_dir).unwrap();
    if let Err(why) = build_fake_nvml(&lib_dir) {
        if support::in_ci() {
            panic!("the NVML stand-in must build under CI: {why}");
        }
        eprintln!("note: NVML stand-in not built, NVIDIA path not tested here: {why}");
        return;
    }
    let out = ctx
        .command()
        .env("LD_LIBRARY_PATH", &lib_dir)
        .args(["probe", "--json", "--no-bandwidth"])
        .output()
        .unwrap();
    let p = support::profile(&out);

    let nvidia: Vec<_> = p
        .gpus
        .iter()
        .filter(|g| g.vendor == GpuVendor::Nvidia)
        .collect();
    assert_eq!(nvidia.len(), 2, "{:?}\n{:?}", p.gpus, p.gpu_notes);
    let rtx = nvidia[0];
    assert_eq!(rtx.index, 0);
    assert_eq!(rtx.name, "NVIDIA GeForce RTX 4090");
    assert_eq!(rtx.vram_total_bytes, 25_757_220_864);
    assert_eq!(rtx.vram_free_bytes, Some(25_200_000_000));
    assert_eq!(rtx.compute_capability.as_deref(), Some("8.9"));
    assert_eq!(
        (rtx.memory_bus_width_bits, rtx.max_memory_clock_mhz),
        (Some(384), Some(10501))
    );
    let bw = rtx.memory_bandwidth_bytes_per_s.unwrap();
    assert!((bw - 1008.096e9).abs() < 1e6, "{bw}");
    assert_eq!(rtx.driver_version.as_deref(), Some("550.90.07"));
    assert_eq!(rtx.cuda_version.as_deref(), Some("12.4"));
    assert_eq!(rtx.pci_id.as_deref(), Some("0x10de:0x2684"));
    assert!(!rtx.unified_memory);

    let h100 = nvidia[1];
    assert_eq!(
        (h100.index, h100.name.as_str()),
        (1, "NVIDIA H100 80GB HBM3")
    );
    assert_eq!(h100.compute_capability.as_deref(), Some("9.0"));
    let bw = h100.memory_bandwidth_bytes_per_s.unwrap();
    assert!((bw / 1e12 - 3.352).abs() < 0.001, "{bw}");

    assert!(
        p.gpu_notes
            .iter()
            .any(|n| n.starts_with("NVIDIA device 2 not usable")),
        "{:?}",
        p.gpu_notes
    );
    assert!(
        !p.gpu_notes.iter().any(|n| n.starts_with("no NVIDIA GPU")),
        "{:?}",
        p.gpu_notes
    );
}

//! The hardware probe: builds a `HardwareProfile` from CPUID, /proc, /sys, cgroups, NVML and a
//! short memory-bandwidth measurement.
//!
//! Every file it reads is read below `ProbeOptions::root`, so tests point it at fixture trees.
//! A GPU family that cannot be probed is recorded in `gpu_notes`, never an error.
//! Knows nothing about the registry, the network or the terminal.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::profile::HardwareProfile;

/// What and where to probe.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Stands in for `/`: `/proc` and `/sys` are read below it.
    pub root: PathBuf,
    /// Directory whose filesystem's free space is reported (the models directory).
    pub disk_path: PathBuf,
    /// Run the ~0.5 s streaming bandwidth measurement.
    pub measure_bandwidth: bool,
}

/// Probe this machine. Never fails: what cannot be read is left empty and explained.
pub fn probe(_opts: &ProbeOptions) -> HardwareProfile {
    unimplemented!("probe")
}

/// A stable hash of what identifies the hardware: CPU model and core counts, RAM rounded to
/// GiB (and the cgroup limit, likewise), GPU models and VRAM rounded to GiB. Free memory, load and
/// measured speeds are left out, so it changes only when the hardware does.
pub fn fingerprint(p: &HardwareProfile) -> String {
    const GIB: u64 = 1 << 30;
    let round = |b: u64| (b + GIB / 2) / GIB;
    let mut h = Sha256::new();
    let mut put = |s: &str| {
        h.update(s.as_bytes());
        h.update([0u8]);
    };
    put("minerva-fingerprint-v1");
    put(&p.cpu.arch);
    put(&p.cpu.vendor);
    put(p.cpu.brand.trim());
    put(&format!("{:?}/{:?}/{:?}", p.cpu.family, p.cpu.model, p.cpu.stepping));
    put(&format!("{}c{}t{}s", p.cpu.physical_cores, p.cpu.logical_cores, p.cpu.sockets));
    put(&format!("ram{}", round(p.memory.total_bytes)));
    let limit = p.memory.cgroup.as_ref().and_then(|c| c.memory_max_bytes);
    put(&format!("limit{:?}", limit.map(round)));
    put(&format!("quota{:?}", p.cpu.quota_cores.map(|q| (q * 10.0).round() as i64)));
    let mut gpus: Vec<String> =
        p.gpus.iter().map(|g| format!("{:?}:{}:{}", g.vendor, g.name.trim(), round(g.vram_total_bytes))).collect();
    gpus.sort();
    for g in &gpus {
        put(g);
    }
    let digest = h.finalize();
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

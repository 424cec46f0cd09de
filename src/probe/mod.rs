//! The hardware probe: builds a `HardwareProfile` from CPUID, /proc, /sys, cgroups, NVML and a
//! short memory-bandwidth measurement.
//!
//! Every /proc and /sys file it reads is read below `ProbeOptions::root`, so tests point it at
//! fixture trees; only the models directory's disk is always the real one. A GPU family that
//! cannot be probed is recorded in `gpu_notes`, never an error. Submodules: `cpu` (with the
//! microarchitecture tables), `memory` (with cgroups), `gpu`, `disk`, `bandwidth`.
//! Knows nothing about the registry, the network or the terminal.

pub mod bandwidth;
pub mod cpu;
pub mod disk;
pub mod gpu;
pub mod memory;

use std::path::{Path, PathBuf};

use crate::profile::{HardwareProfile, MemoryInfo, PROFILE_SCHEMA_VERSION};

/// What and where to probe.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Stands in for `/`: `/proc` and `/sys` are read below it.
    pub root: PathBuf,
    /// Directory whose filesystem's free space is reported (the models directory).
    pub disk_path: PathBuf,
    /// Run the streaming bandwidth measurement (about 0.3 s) and the disk read measurement
    /// (64 MiB written, synced and read back uncached in the models directory's filesystem);
    /// only on the live root.
    pub measure_bandwidth: bool,
}

impl ProbeOptions {
    /// Whether `root` is this machine's `/`. Only then are CPUID, NVML, sysctl and the
    /// bandwidth measurement used: they see the live machine, whatever the root says.
    pub fn is_live(&self) -> bool {
        is_live_root(&self.root)
    }
}

impl ProbeOptions {
    /// Why `root` cannot stand in for `/`, if it cannot: it does not exist, or has neither
    /// `proc/cpuinfo` nor `proc/meminfo` (a typo would otherwise probe an empty machine).
    pub fn root_problem(&self) -> Option<String> {
        if self.is_live() {
            return None;
        }
        let root = &self.root;
        if !root.is_dir() {
            return Some(format!(
                "probe root `{}` is not a directory",
                root.display()
            ));
        }
        let has = |f: &str| root.join(f).is_file();
        if !has("proc/cpuinfo") && !has("proc/meminfo") {
            return Some(format!(
                "probe root `{}` has neither proc/cpuinfo nor proc/meminfo",
                root.display()
            ));
        }
        None
    }
}

fn is_live_root(root: &Path) -> bool {
    root == Path::new("/") || root.canonicalize().is_ok_and(|c| c == Path::new("/"))
}

/// Probe this machine. Never fails: what cannot be read is left empty and explained.
///
/// On the live root, CPU identity comes from CPUID and the rest from `/proc`, `/sys`, NVML and
/// sysinfo. Below any other root (a fixture tree, a chroot's view) everything comes from the
/// files there: NVIDIA is not queried and the bandwidth is not measured, since both would
/// describe this machine instead of the one the root describes. The disk is always the real
/// filesystem of `disk_path`.
pub fn probe(opts: &ProbeOptions) -> HardwareProfile {
    let live = opts.is_live();
    let source = if live {
        cpu::CpuSource::Live {
            root: opts.root.clone(),
        }
    } else {
        cpu::CpuSource::Root {
            root: opts.root.clone(),
        }
    };
    let mut cpu = cpu::probe_cpu(&source);
    let memory = memory::probe_memory(&opts.root).unwrap_or_else(|| fallback_memory(live));

    // CPUs this process may use: the cgroup quota, and on the live machine the affinity mask
    // (and quota, again) as `available_parallelism` sees them; kept only when below the count.
    let mut quota = memory.cgroup.as_ref().and_then(|c| c.cpu_quota_cores);
    if live {
        if let Ok(n) = std::thread::available_parallelism() {
            let n = n.get() as f64;
            quota = Some(quota.map_or(n, |q| q.min(n)));
        }
    }
    cpu.quota_cores = quota.filter(|&q| q < cpu.logical_cores as f64);

    let gpus = gpu::probe_gpus(&opts.root, live);
    let mut disk = disk::probe_disk(&opts.disk_path);
    if opts.measure_bandwidth && live {
        if let Some(d) = disk.as_mut() {
            // A quarter of the free space at most: never fill a nearly full disk.
            let bytes = disk::DISK_READ_BYTES.min(d.free_bytes / 4);
            if bytes >= 4 << 20 {
                d.read = disk::measure_read(&opts.disk_path, bytes);
            }
        }
    }

    let memory_bandwidth = if opts.measure_bandwidth && live {
        // One thread per physical core (decode runs best there), as many as a quota allows.
        let mut threads = cpu.physical_cores;
        if let Some(q) = cpu.quota_cores {
            threads = threads.min(q.ceil().max(1.0) as u32);
        }
        let current = memory
            .cgroup
            .as_ref()
            .and_then(|c| c.memory_current_bytes)
            .unwrap_or(0);
        let free = memory
            .available_bytes
            .min(memory.usable_bytes.saturating_sub(current));
        bandwidth::measure(threads, bandwidth::buffer_bytes(cpu.l3_cache_bytes, free))
    } else {
        None
    };

    let mut profile = HardwareProfile {
        schema_version: PROFILE_SCHEMA_VERSION,
        source: if live {
            "probe".to_string()
        } else {
            format!("probe root {}", opts.root.display())
        },
        cpu,
        memory,
        gpus: gpus.gpus,
        gpu_notes: gpus.notes,
        disk,
        memory_bandwidth,
        bench: None,
        fingerprint: String::new(),
    };
    profile.fingerprint = fingerprint(&profile);
    profile
}

/// Without `/proc/meminfo` (macOS, or a root that lacks it): sysinfo on the live machine,
/// zeros under a fixture root.
fn fallback_memory(live: bool) -> MemoryInfo {
    let m = if live {
        match sysinfo::System::new() {
            Ok(mut sys) => {
                sys.refresh_memory();
                memory::Meminfo {
                    total_bytes: sys.total_memory(),
                    available_bytes: sys.available_memory(),
                    swap_total_bytes: sys.total_swap(),
                    swap_free_bytes: sys.free_swap(),
                }
            }
            Err(_) => memory::Meminfo::default(),
        }
    } else {
        memory::Meminfo::default()
    };
    memory::memory_info(m, None)
}

pub use crate::profile::fingerprint;

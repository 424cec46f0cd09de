//! CPU identity, SIMD features, topology and caches.
//!
//! Two sources, chosen by [`CpuSource`]: on the live machine the identity (vendor, brand,
//! family/model/stepping, SIMD) comes from CPUID, and the topology and caches from sysfs; for a
//! probe root (a fixture tree or a chroot) everything comes from the files below the root,
//! `/proc/cpuinfo` first. The parsing is pure and tested against fixture files; the
//! microarchitecture table lives here too (in `uarch`).
//!
//! On ARM, `/proc/cpuinfo` gives an implementer and a part number instead of family and model;
//! they are stored in `family` (implementer) and `model` (part), with `stepping` holding the
//! revision, so that the raw ids survive even when the table does not know them.
//!
//! Submodules: `cpuinfo` parses `/proc/cpuinfo`, `sysfs` reads topology and caches below the
//! root, `live` asks the running CPU (CPUID, sysctl), `uarch` holds the microarchitecture and
//! launch-year tables. Their public items are re-exported here.

mod cpuinfo;
mod live;
mod sysfs;
mod uarch;

use std::path::{Path, PathBuf};

use crate::profile::{CpuInfo, SimdFeatures};

pub use cpuinfo::{parse_cpuinfo, parse_size, simd_from_flags, Cpuinfo};
pub use live::display_ids;
#[cfg(target_os = "macos")]
pub use live::{macos_topology, sysctl};
pub use sysfs::{caches_from_sysfs, topology_from_sysfs};
pub use uarch::{arm_core, arm_vendor, microarchitecture, ArmCore};

use live::{live_caches, live_identity, live_logical_cpus};

/// Where the CPU identity is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuSource {
    /// This machine: CPUID on x86 (or the kernel's feature detection on ARM), with topology and
    /// caches from sysfs/procfs below `root`.
    Live { root: PathBuf },
    /// A probe root: everything from its `/proc/cpuinfo` and `/sys/devices/system/cpu`.
    Root { root: PathBuf },
}

impl CpuSource {
    fn root(&self) -> &Path {
        match self {
            CpuSource::Live { root } | CpuSource::Root { root } => root,
        }
    }
}

/// The SIMD features of the CPU this process runs on, with the OS's register state applied
/// (XCR0): what decides which of llama.cpp's CPU kernels may run here, whatever machine a
/// `--hardware` profile or a probe root describes. Empty where the live source knows none.
pub fn live_simd() -> SimdFeatures {
    live_identity().map(|i| i.simd).unwrap_or_default()
}

/// Read the CPU. Never fails: unknown parts are "unknown", missing counts fall back to what the
/// standard library can tell (at least one core).
pub fn probe_cpu(source: &CpuSource) -> CpuInfo {
    let root = source.root();
    let cpuinfo_text = std::fs::read_to_string(root.join("proc/cpuinfo")).unwrap_or_default();
    let parsed = parse_cpuinfo(&cpuinfo_text);

    let mut identity = match source {
        CpuSource::Live { .. } => live_identity().unwrap_or_else(|| parsed.identity()),
        CpuSource::Root { .. } => parsed.identity(),
    };
    if identity.arch.is_empty() {
        identity.arch = match source {
            CpuSource::Live { .. } => std::env::consts::ARCH.to_string(),
            CpuSource::Root { .. } => parsed.guess_arch().to_string(),
        };
    }

    let topology = topology_from_sysfs(root)
        .or_else(|| parsed.topology())
        .unwrap_or_else(|| fallback_topology(source));

    let (mut l2, mut l3) = caches_from_sysfs(root);
    if let CpuSource::Live { .. } = source {
        if l2.is_none() || l3.is_none() {
            let (cl2, cl3) = live_caches();
            l2 = l2.or(cl2);
            l3 = l3.or(cl3);
        }
    }
    // A cpuinfo "cache size" line is the last-level cache on x86 (per package on Intel, per
    // L3 slice on AMD); only used when nothing better is known.
    if l3.is_none() && l2.is_none() {
        l3 = parsed.cache_size_bytes;
    }

    let micro = match identity.arch.as_str() {
        "aarch64" | "arm" => arm_core(
            identity.family.unwrap_or(u32::MAX),
            identity.model.unwrap_or(u32::MAX),
        )
        .map(|c| (c.name, c.year)),
        _ => match (identity.family, identity.model) {
            (Some(f), Some(m)) => {
                microarchitecture(&identity.vendor, f, m, identity.stepping.unwrap_or(0))
            }
            _ => None,
        },
    };

    let simd_level = identity.simd.level();
    CpuInfo {
        arch: identity.arch,
        vendor: identity.vendor,
        brand: identity.brand,
        family: identity.family,
        model: identity.model,
        stepping: identity.stepping,
        microarchitecture: micro.map_or_else(|| "unknown".to_string(), |(n, _)| n.to_string()),
        launch_year: micro.map(|(_, y)| y),
        simd: identity.simd,
        simd_level,
        physical_cores: topology.physical.max(1),
        logical_cores: topology.logical.max(topology.physical).max(1),
        sockets: topology.sockets.max(1),
        l2_cache_bytes: l2,
        l3_cache_bytes: l3,
        quota_cores: None,
    }
}

/// Vendor, brand, ids and SIMD: what identifies the CPU model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    pub arch: String,
    pub vendor: String,
    pub brand: String,
    pub family: Option<u32>,
    pub model: Option<u32>,
    pub stepping: Option<u32>,
    pub simd: SimdFeatures,
}

/// Core counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Topology {
    pub logical: u32,
    pub physical: u32,
    pub sockets: u32,
}

fn fallback_topology(source: &CpuSource) -> Topology {
    #[cfg(target_os = "macos")]
    if let (CpuSource::Live { .. }, Some(t)) = (source, macos_topology()) {
        return t;
    }
    let n = match source {
        CpuSource::Live { .. } => live_logical_cpus(),
        CpuSource::Root { .. } => 1,
    };
    Topology {
        logical: n,
        physical: n,
        sockets: 1,
    }
}

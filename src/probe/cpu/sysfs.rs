//! Topology and cache sizes from `sys/devices/system/cpu` below the probe root.

use std::collections::BTreeSet;
use std::path::Path;

use super::{parse_size, Topology};

/// Counts from `sys/devices/system/cpu/cpu*/topology`: a physical core is a distinct
/// `core_cpus_list` (the CPUs sharing one core; `thread_siblings_list` on older kernels), or a
/// distinct (`physical_package_id`, `core_id`) pair when neither list exists. Offline CPUs have
/// no topology directory and are not counted, as `lscpu -p` does not count them.
pub fn topology_from_sysfs(root: &Path) -> Option<Topology> {
    let dir = root.join("sys/devices/system/cpu");
    let entries = std::fs::read_dir(&dir).ok()?;
    let mut logical = 0u32;
    let mut cores = BTreeSet::new();
    let mut sockets = BTreeSet::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(num) = name.strip_prefix("cpu") else {
            continue;
        };
        if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let topo = e.path().join("topology");
        let read = |f: &str| {
            std::fs::read_to_string(topo.join(f))
                .ok()
                .map(|s| s.trim().to_string())
        };
        let Some(package) = read("physical_package_id") else {
            continue;
        };
        logical += 1;
        let core = read("core_cpus_list")
            .or_else(|| read("thread_siblings_list"))
            .unwrap_or_else(|| {
                format!(
                    "{package}/{}",
                    read("core_id").unwrap_or_else(|| num.to_string())
                )
            });
        cores.insert(core);
        sockets.insert(package);
    }
    if logical == 0 {
        return None;
    }
    Some(Topology {
        logical,
        physical: cores.len() as u32,
        sockets: sockets.len() as u32,
    })
}

/// L2 and L3 sizes of the first CPU from `sys/devices/system/cpu/cpu0/cache/index*`
/// (per instance: one core's L2, one L3 slice or package's L3).
pub fn caches_from_sysfs(root: &Path) -> (Option<u64>, Option<u64>) {
    let dir = root.join("sys/devices/system/cpu/cpu0/cache");
    let (mut l2, mut l3) = (None, None);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return (None, None);
    };
    for e in entries.flatten() {
        if !e.file_name().to_string_lossy().starts_with("index") {
            continue;
        }
        let read = |f: &str| {
            std::fs::read_to_string(e.path().join(f))
                .ok()
                .map(|s| s.trim().to_string())
        };
        let (Some(level), Some(size)) =
            (read("level"), read("size").as_deref().and_then(parse_size))
        else {
            continue;
        };
        if read("type").as_deref() == Some("Instruction") {
            continue;
        }
        match level.as_str() {
            "2" => l2 = Some(size),
            "3" => l3 = Some(size),
            _ => {}
        }
    }
    (l2, l3)
}

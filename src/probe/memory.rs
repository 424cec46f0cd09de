//! RAM and swap from `/proc/meminfo`, and the limits of the cgroup this process runs in.
//!
//! Inside a container the kernel (and sysinfo) report the host's RAM. A planner that trusted
//! that figure would pick a model the container's memory limit then OOM-kills, so the cgroup
//! limit is read too and `usable_bytes` is the smaller of the two.
//!
//! Both cgroup layouts are understood, below the probe root:
//! - v2 (unified): `/proc/self/cgroup` has `0::/path`; limits are `memory.max` and `cpu.max` in
//!   `/sys/fs/cgroup/path` and every parent up to the mount root; the tightest one wins. Inside
//!   a container with a cgroup namespace the path reads `/` and the limit sits on the mount
//!   root, which the walk includes.
//! - v1: the `memory` and `cpu,cpuacct` lines give per-controller paths under
//!   `/sys/fs/cgroup/<controller>/`; `memory.limit_in_bytes` (a page-rounded `i64::MAX` means no
//!   limit) and `cpu.cfs_quota_us` / `cpu.cfs_period_us` (-1 means no limit).
//!
//! Knows nothing about the rest of the probe.

use std::path::{Path, PathBuf};

use crate::profile::{CgroupLimits, MemoryInfo};

/// RAM figures from `/proc/meminfo`, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Meminfo {
    pub total_bytes: u64,
    pub available_bytes: u64,
    pub swap_total_bytes: u64,
    pub swap_free_bytes: u64,
}

/// Read memory and cgroup limits below `root`. `None` when `/proc/meminfo` cannot be read or
/// has no `MemTotal` (the caller then falls back to another source).
pub fn probe_memory(root: &Path) -> Option<MemoryInfo> {
    let text = std::fs::read_to_string(root.join("proc/meminfo")).ok()?;
    let m = parse_meminfo(&text)?;
    let cgroup = read_cgroup(root);
    Some(memory_info(m, cgroup))
}

/// Combine RAM and cgroup limits; `usable_bytes` is the smaller of RAM and the memory limit.
pub fn memory_info(m: Meminfo, cgroup: Option<CgroupLimits>) -> MemoryInfo {
    let limit = cgroup.as_ref().and_then(|c| c.memory_max_bytes);
    let usable_bytes = limit.map_or(m.total_bytes, |l| l.min(m.total_bytes));
    MemoryInfo {
        total_bytes: m.total_bytes,
        available_bytes: m.available_bytes,
        swap_total_bytes: m.swap_total_bytes,
        swap_free_bytes: m.swap_free_bytes,
        cgroup,
        usable_bytes,
    }
}

/// Parse `/proc/meminfo`. Kernels before 3.14 have no `MemAvailable`; then it is estimated as
/// `MemFree + Buffers + Cached`, as `free` does.
pub fn parse_meminfo(text: &str) -> Option<Meminfo> {
    let mut total = None;
    let (mut available, mut free, mut buffers, mut cached) = (None, 0, 0, 0);
    let (mut swap_total, mut swap_free) = (0, 0);
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let Some(n) = parts.next().and_then(|n| n.parse::<u64>().ok()) else {
            continue;
        };
        // Every size field in meminfo is in KiB and labelled "kB".
        let bytes = if parts.next() == Some("kB") {
            n * 1024
        } else {
            n
        };
        match key.trim() {
            "MemTotal" => total = Some(bytes),
            "MemAvailable" => available = Some(bytes),
            "MemFree" => free = bytes,
            "Buffers" => buffers = bytes,
            "Cached" => cached = bytes,
            "SwapTotal" => swap_total = bytes,
            "SwapFree" => swap_free = bytes,
            _ => {}
        }
    }
    let total_bytes = total?;
    Some(Meminfo {
        total_bytes,
        available_bytes: available
            .unwrap_or(free + buffers + cached)
            .min(total_bytes),
        swap_total_bytes: swap_total,
        swap_free_bytes: swap_free,
    })
}

/// One line of `/proc/self/cgroup`: `hierarchy-id:controllers:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupEntry {
    pub hierarchy: u32,
    pub controllers: Vec<String>,
    pub path: String,
}

pub fn parse_proc_cgroup(text: &str) -> Vec<CgroupEntry> {
    text.lines()
        .filter_map(|line| {
            let mut it = line.splitn(3, ':');
            let hierarchy = it.next()?.trim().parse().ok()?;
            let controllers = it.next()?;
            let path = it.next()?.trim().to_string();
            let controllers = controllers
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            Some(CgroupEntry {
                hierarchy,
                controllers,
                path,
            })
        })
        .collect()
}

/// The limits of this process's cgroup below `root`, or `None` when there is no readable
/// cgroup at all. A cgroup without limits is `Some` with `None` limits.
pub fn read_cgroup(root: &Path) -> Option<CgroupLimits> {
    let text = std::fs::read_to_string(root.join("proc/self/cgroup")).ok()?;
    let entries = parse_proc_cgroup(&text);
    let base = root.join("sys/fs/cgroup");
    let v1_memory = entries
        .iter()
        .find(|e| e.controllers.iter().any(|c| c == "memory"));
    let v1_cpu = entries
        .iter()
        .find(|e| e.controllers.iter().any(|c| c == "cpu"));
    let v2 = entries
        .iter()
        .find(|e| e.hierarchy == 0 && e.controllers.is_empty());

    // A pure v2 host mounts the unified hierarchy on /sys/fs/cgroup itself. On a hybrid host
    // (v1 controllers plus an empty v2 tree on /sys/fs/cgroup/unified) the limits live in v1.
    if let Some(v2) = v2 {
        if base.join("cgroup.controllers").is_file() && v1_memory.is_none() {
            return Some(read_v2(&base, &v2.path));
        }
    }
    if v1_memory.is_some() || v1_cpu.is_some() {
        return Some(read_v1(&base, v1_memory, v1_cpu));
    }
    None
}

/// Directories from the cgroup itself up to the hierarchy's mount root, leaf first. Paths that
/// do not exist below the mount (a v1 container without a cgroup namespace sees the host's path
/// but has its own cgroup mounted as root) are skipped; the mount root is always included.
fn walk_up(mount: &Path, path: &str) -> Vec<PathBuf> {
    let mut parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") {
        // A path outside our namespace: only the mount root is ours to read.
        parts.clear();
    }
    let mut dirs = Vec::new();
    while !parts.is_empty() {
        let dir = parts.iter().fold(mount.to_path_buf(), |d, p| d.join(p));
        if dir.is_dir() {
            dirs.push(dir);
        }
        parts.pop();
    }
    dirs.push(mount.to_path_buf());
    dirs
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

fn min_opt<T: PartialOrd>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b < a { b } else { a }),
        (a, b) => a.or(b),
    }
}

fn read_v2(base: &Path, path: &str) -> CgroupLimits {
    let dirs = walk_up(base, path);
    let mut memory_max = None;
    let mut cpu = None;
    for d in &dirs {
        memory_max = min_opt(
            memory_max,
            read_trimmed(&d.join("memory.max")).and_then(|s| parse_v2_memory_max(&s)),
        );
        cpu = min_opt(
            cpu,
            read_trimmed(&d.join("cpu.max")).and_then(|s| parse_v2_cpu_max(&s)),
        );
    }
    let current = dirs
        .iter()
        .find_map(|d| read_trimmed(&d.join("memory.current")).and_then(|s| s.parse().ok()));
    CgroupLimits {
        version: 2,
        path: path.to_string(),
        memory_max_bytes: memory_max,
        memory_current_bytes: current,
        cpu_quota_cores: cpu,
    }
}

/// `memory.max`: a byte count, or `max` for no limit.
pub fn parse_v2_memory_max(s: &str) -> Option<u64> {
    match s.trim() {
        "max" => None,
        n => n.parse().ok(),
    }
}

/// `cpu.max`: `"$QUOTA $PERIOD"` in microseconds, `max` for no quota → cores.
pub fn parse_v2_cpu_max(s: &str) -> Option<f64> {
    let mut it = s.split_whitespace();
    let quota = it.next()?;
    let period: f64 = it.next().and_then(|p| p.parse().ok()).unwrap_or(100_000.0);
    if quota == "max" || period <= 0.0 {
        return None;
    }
    let quota: f64 = quota.parse().ok()?;
    (quota > 0.0).then_some(quota / period)
}

/// v1 `memory.limit_in_bytes`: the kernel writes "no limit" as `PAGE_COUNTER_MAX` pages, which
/// is `i64::MAX` rounded down to the page size (9223372036854771712 with 4 KiB pages). Anything
/// at or above 2^62 bytes is taken as no limit; no machine has that much memory.
pub fn parse_v1_memory_limit(s: &str) -> Option<u64> {
    let n: u64 = s.trim().parse().ok()?;
    (n < 1 << 62).then_some(n)
}

fn read_v1(base: &Path, memory: Option<&CgroupEntry>, cpu: Option<&CgroupEntry>) -> CgroupLimits {
    let mut memory_max = None;
    let mut current = None;
    let mut path = String::new();
    if let Some(m) = memory {
        path = m.path.clone();
        let dirs = walk_up(&base.join("memory"), &m.path);
        for d in &dirs {
            let limit = read_trimmed(&d.join("memory.limit_in_bytes"))
                .and_then(|s| parse_v1_memory_limit(&s));
            memory_max = min_opt(memory_max, limit);
        }
        current = dirs.iter().find_map(|d| {
            read_trimmed(&d.join("memory.usage_in_bytes")).and_then(|s| s.parse().ok())
        });
    }
    let mut cpu_quota = None;
    if let Some(c) = cpu {
        if path.is_empty() {
            path = c.path.clone();
        }
        // The controller is mounted under its joined name ("cpu,cpuacct"), usually with a
        // "cpu" symlink; try both.
        let joined = c.controllers.join(",");
        let mount = [base.join(&joined), base.join("cpu")]
            .into_iter()
            .find(|m| m.is_dir());
        if let Some(mount) = mount {
            for d in walk_up(&mount, &c.path) {
                let quota =
                    read_trimmed(&d.join("cpu.cfs_quota_us")).and_then(|s| s.parse::<i64>().ok());
                let period =
                    read_trimmed(&d.join("cpu.cfs_period_us")).and_then(|s| s.parse::<i64>().ok());
                let cores = match (quota, period) {
                    (Some(q), Some(p)) if q > 0 && p > 0 => Some(q as f64 / p as f64),
                    _ => None,
                };
                cpu_quota = min_opt(cpu_quota, cores);
            }
        }
    }
    CgroupLimits {
        version: 1,
        path,
        memory_max_bytes: memory_max,
        memory_current_bytes: current,
        cpu_quota_cores: cpu_quota,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_parses_kib_and_estimates_available_on_old_kernels() {
        let m = parse_meminfo("MemTotal:       24684100 kB\nMemFree:        12753588 kB\nMemAvailable:   24163944 kB\nSwapTotal: 2097148 kB\nSwapFree: 1048576 kB\n").unwrap();
        assert_eq!(m.total_bytes, 24_684_100 * 1024);
        assert_eq!(m.available_bytes, 24_163_944 * 1024);
        assert_eq!(m.swap_total_bytes, 2_097_148 * 1024);
        assert_eq!(m.swap_free_bytes, 1_048_576 * 1024);
        let old =
            parse_meminfo("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 20 kB\nCached: 300 kB\n")
                .unwrap();
        assert_eq!(old.available_bytes, 420 * 1024);
        assert_eq!(parse_meminfo("nothing here"), None);
    }

    #[test]
    fn cgroup_value_parsers() {
        assert_eq!(parse_v2_memory_max("max\n"), None);
        assert_eq!(parse_v2_memory_max("4294967296"), Some(4 << 30));
        assert_eq!(parse_v2_cpu_max("max 100000"), None);
        assert_eq!(parse_v2_cpu_max("150000 100000"), Some(1.5));
        assert_eq!(parse_v2_cpu_max("50000 50000"), Some(1.0));
        assert_eq!(parse_v1_memory_limit("9223372036854771712"), None);
        assert_eq!(parse_v1_memory_limit("9223372036854775807"), None);
        assert_eq!(parse_v1_memory_limit("2147483648"), Some(2 << 30));
    }

    #[test]
    fn proc_self_cgroup_lines() {
        let e =
            parse_proc_cgroup("12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/user.slice\n");
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(e[1].path, "/docker/abc");
        assert_eq!(e[2].hierarchy, 0);
        assert!(e[2].controllers.is_empty());
    }
}

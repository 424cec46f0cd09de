//! CPU identity, SIMD features, topology and caches.
//!
//! Two sources, chosen by [`CpuSource`]: on the live machine the identity (vendor, brand,
//! family/model/stepping, SIMD) comes from CPUID, and the topology and caches from sysfs; for a
//! probe root (a fixture tree or a chroot) everything comes from the files below the root,
//! `/proc/cpuinfo` first. The parsing is pure and tested against fixture files; the
//! microarchitecture table lives here too.
//!
//! On ARM, `/proc/cpuinfo` gives an implementer and a part number instead of family and model;
//! they are stored in `family` (implementer) and `model` (part), with `stepping` holding the
//! revision, so that the raw ids survive even when the table does not know them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::profile::{CpuInfo, SimdFeatures};

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

// ---------------------------------------------------------------------------------------------
// /proc/cpuinfo

/// What `/proc/cpuinfo` says, x86 or ARM.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cpuinfo {
    pub vendor: Option<String>,
    pub brand: Option<String>,
    pub family: Option<u32>,
    pub model: Option<u32>,
    pub stepping: Option<u32>,
    /// x86 `flags` or ARM `Features`, as written.
    pub flags: BTreeSet<String>,
    /// ARM `CPU implementer`, `CPU part`, `CPU variant`, `CPU revision`.
    pub arm_implementer: Option<u32>,
    pub arm_part: Option<u32>,
    pub arm_revision: Option<u32>,
    /// One entry per `processor` block: (`physical id`, `core id`) where given.
    pub processors: Vec<(Option<u32>, Option<u32>)>,
    /// `cache size : 25600 KB`, in bytes.
    pub cache_size_bytes: Option<u64>,
}

/// Parse `/proc/cpuinfo` text. Unknown lines are ignored; the first block gives the identity.
pub fn parse_cpuinfo(text: &str) -> Cpuinfo {
    let mut c = Cpuinfo::default();
    let mut current: Option<(Option<u32>, Option<u32>)> = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim();
        let value = value.trim();
        match key {
            "processor" => {
                // ARM kernels before 3.8 also wrote "Processor : AArch64 ..." (capitalised);
                // only the numbered lowercase form starts a block.
                if let Some(p) = current.take() {
                    c.processors.push(p);
                }
                current = Some((None, None));
            }
            "physical id" => {
                if let Some(p) = current.as_mut() {
                    p.0 = value.parse().ok();
                }
            }
            "core id" => {
                if let Some(p) = current.as_mut() {
                    p.1 = value.parse().ok();
                }
            }
            "vendor_id" if c.vendor.is_none() => c.vendor = Some(value.to_string()),
            "model name" if c.brand.is_none() => c.brand = Some(value.to_string()),
            "cpu family" if c.family.is_none() => c.family = value.parse().ok(),
            "model" if c.model.is_none() => c.model = value.parse().ok(),
            "stepping" if c.stepping.is_none() => c.stepping = value.parse().ok(),
            "flags" | "Features" if c.flags.is_empty() => {
                c.flags = value.split_whitespace().map(str::to_string).collect();
            }
            "CPU implementer" if c.arm_implementer.is_none() => {
                c.arm_implementer = parse_int(value)
            }
            "CPU part" if c.arm_part.is_none() => c.arm_part = parse_int(value),
            "CPU revision" if c.arm_revision.is_none() => c.arm_revision = parse_int(value),
            "cache size" if c.cache_size_bytes.is_none() => c.cache_size_bytes = parse_size(value),
            _ => {}
        }
    }
    if let Some(p) = current.take() {
        c.processors.push(p);
    }
    c
}

impl Cpuinfo {
    fn is_arm(&self) -> bool {
        self.arm_implementer.is_some() || self.flags.contains("asimd")
    }

    fn guess_arch(&self) -> &'static str {
        if self.is_arm() {
            "aarch64"
        } else if self.vendor.is_some() {
            "x86_64"
        } else {
            std::env::consts::ARCH
        }
    }

    /// The identity as `/proc/cpuinfo` gives it.
    pub fn identity(&self) -> Identity {
        if self.is_arm() {
            let implementer = self.arm_implementer.unwrap_or(u32::MAX);
            let part = self.arm_part.unwrap_or(u32::MAX);
            let core = arm_core(implementer, part);
            let vendor = arm_vendor(implementer)
                .map(str::to_string)
                .unwrap_or_else(|| match self.arm_implementer {
                    Some(i) => format!("ARM implementer {i:#x}"),
                    None => "unknown".to_string(),
                });
            let brand = self
                .brand
                .clone()
                .unwrap_or_else(|| match (core, self.arm_part) {
                    (Some(c), _) => format!("{vendor} {}", c.name),
                    (None, Some(p)) => format!("{vendor} part {p:#x}"),
                    (None, None) => vendor.clone(),
                });
            return Identity {
                arch: "aarch64".to_string(),
                vendor,
                brand,
                family: self.arm_implementer,
                model: self.arm_part,
                stepping: self.arm_revision,
                simd: simd_from_flags(&self.flags),
            };
        }
        Identity {
            arch: if self.vendor.is_some() {
                "x86_64".to_string()
            } else {
                String::new()
            },
            vendor: self.vendor.clone().unwrap_or_else(|| "unknown".to_string()),
            brand: self.brand.clone().unwrap_or_else(|| "unknown".to_string()),
            family: self.family,
            model: self.model,
            stepping: self.stepping,
            simd: simd_from_flags(&self.flags),
        }
    }

    /// Counts from the `physical id` / `core id` lines; without them (ARM, some VMs) every
    /// processor counts as a core of one socket.
    pub fn topology(&self) -> Option<Topology> {
        if self.processors.is_empty() {
            return None;
        }
        let logical = self.processors.len() as u32;
        let with_ids: Vec<(u32, u32)> = self
            .processors
            .iter()
            .filter_map(|&(p, c)| Some((p?, c?)))
            .collect();
        if with_ids.len() != self.processors.len() {
            return Some(Topology {
                logical,
                physical: logical,
                sockets: 1,
            });
        }
        let cores: BTreeSet<(u32, u32)> = with_ids.iter().copied().collect();
        let sockets: BTreeSet<u32> = with_ids.iter().map(|&(p, _)| p).collect();
        Some(Topology {
            logical,
            physical: cores.len() as u32,
            sockets: sockets.len() as u32,
        })
    }
}

/// SIMD features from x86 `flags` or ARM `Features` names (the kernel's spelling).
pub fn simd_from_flags(flags: &BTreeSet<String>) -> SimdFeatures {
    let has = |f: &str| flags.contains(f);
    SimdFeatures {
        sse4_2: has("sse4_2"),
        avx: has("avx"),
        avx2: has("avx2"),
        fma: has("fma"),
        f16c: has("f16c"),
        avx_vnni: has("avx_vnni"),
        avx512f: has("avx512f"),
        avx512bw: has("avx512bw"),
        avx512_vnni: has("avx512_vnni"),
        avx512_bf16: has("avx512_bf16"),
        amx: has("amx_tile"),
        // AArch64 always has Advanced SIMD; the kernel calls it `asimd`.
        neon: has("asimd") || has("neon"),
        dotprod: has("asimddp"),
        sve: has("sve"),
    }
}

fn parse_int(s: &str) -> Option<u32> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// `"25600 KB"`, `"32768K"`, `"2M"`, `"1024"` (bytes) → bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..digits_end].parse().ok()?;
    let unit = s[digits_end..].trim().to_ascii_uppercase();
    let mult = match unit.as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => return None,
    };
    Some(n * mult)
}

// ---------------------------------------------------------------------------------------------
// sysfs topology and caches

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

fn live_logical_cpus() -> u32 {
    // `available_parallelism` honours affinity and quotas; for the machine's own count sysinfo
    // is not needed here, this is only the last resort when sysfs and cpuinfo are both missing.
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

// ---------------------------------------------------------------------------------------------
// Live identity

/// The identity of the CPU this runs on, or `None` where the live source has nothing better
/// than `/proc/cpuinfo` (ARM Linux, where cpuinfo *is* the kernel's answer).
fn live_identity() -> Option<Identity> {
    #[cfg(target_arch = "x86_64")]
    {
        Some(x86::identity())
    }
    #[cfg(all(target_arch = "aarch64", target_os = "macos"))]
    {
        Some(macos::identity())
    }
    #[cfg(all(target_arch = "aarch64", not(target_os = "macos")))]
    {
        let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
        let mut id = parse_cpuinfo(&text).identity();
        id.simd = aarch64_simd();
        Some(id)
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        None
    }
}

#[cfg(all(target_arch = "aarch64", not(target_os = "macos")))]
fn aarch64_simd() -> SimdFeatures {
    SimdFeatures {
        neon: std::arch::is_aarch64_feature_detected!("neon"),
        dotprod: std::arch::is_aarch64_feature_detected!("dotprod"),
        sve: std::arch::is_aarch64_feature_detected!("sve"),
        ..SimdFeatures::default()
    }
}

fn live_caches() -> (Option<u64>, Option<u64>) {
    #[cfg(target_arch = "x86_64")]
    {
        x86::caches()
    }
    #[cfg(all(target_os = "macos", not(target_arch = "x86_64")))]
    {
        macos::caches()
    }
    #[cfg(not(any(target_arch = "x86_64", target_os = "macos")))]
    {
        (None, None)
    }
}

/// Family, model and stepping as CPUID leaf 1 EAX encodes them, with the extended bits applied
/// as Intel SDM vol. 2A "CPUID—Display Family/Model" and AMD APM vol. 3 specify: the extended
/// family is added only when the base family is 0xF; the extended model is prepended when the
/// base family is 0xF, or 6 on Intel.
pub fn display_ids(eax: u32, intel: bool) -> (u32, u32, u32) {
    let stepping = eax & 0xF;
    let base_model = (eax >> 4) & 0xF;
    let base_family = (eax >> 8) & 0xF;
    let ext_model = (eax >> 16) & 0xF;
    let ext_family = (eax >> 20) & 0xFF;
    let family = if base_family == 0xF {
        base_family + ext_family
    } else {
        base_family
    };
    let model = if base_family == 0xF || (intel && base_family == 6) {
        (ext_model << 4) | base_model
    } else {
        base_model
    };
    (family, model, stepping)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use raw_cpuid::{CacheType, CpuId};

    use super::{display_ids, Identity};
    use crate::profile::SimdFeatures;

    /// XCR0 bits the OS must enable (via XSETBV) before the registers may be used; CPUID alone
    /// says only that the silicon has them. Intel SDM vol. 1, 13.3 and 15.2.
    const XCR0_SSE_AVX: u64 = 0b110; // XMM and YMM state
    const XCR0_AVX512: u64 = 0b1110_0000; // opmask, ZMM_Hi256, Hi16_ZMM
    const XCR0_AMX: u64 = 0b11 << 17; // XTILECFG, XTILEDATA

    pub fn identity() -> Identity {
        let cpuid = CpuId::new();
        let vendor = cpuid
            .get_vendor_info()
            .map(|v| v.as_str().to_string())
            .unwrap_or_else(|| "unknown".into());
        let brand = cpuid
            .get_processor_brand_string()
            .map(|b| b.as_str().trim().to_string())
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| "unknown".into());
        // CPUID leaf 1 exists on every x86-64 CPU.
        let eax = core::arch::x86_64::__cpuid(1).eax;
        let (family, model, stepping) = display_ids(eax, vendor == "GenuineIntel");

        let fi = cpuid.get_feature_info();
        let ef = cpuid.get_extended_feature_info();
        let osxsave = fi.as_ref().is_some_and(|f| f.has_oxsave());
        let xcr0 = if osxsave { read_xcr0() } else { 0 };
        let os_avx = xcr0 & XCR0_SSE_AVX == XCR0_SSE_AVX;
        let os_avx512 = os_avx && xcr0 & XCR0_AVX512 == XCR0_AVX512;
        let os_amx = xcr0 & XCR0_AMX == XCR0_AMX;
        let f = |p: fn(&raw_cpuid::FeatureInfo) -> bool| fi.as_ref().is_some_and(p);
        let e = |p: fn(&raw_cpuid::ExtendedFeatures) -> bool| ef.as_ref().is_some_and(p);
        let simd = SimdFeatures {
            sse4_2: f(|x| x.has_sse42()),
            avx: os_avx && f(|x| x.has_avx()),
            avx2: os_avx && e(|x| x.has_avx2()),
            fma: os_avx && f(|x| x.has_fma()),
            f16c: os_avx && f(|x| x.has_f16c()),
            avx_vnni: os_avx && e(|x| x.has_avx_vnni()),
            avx512f: os_avx512 && e(|x| x.has_avx512f()),
            avx512bw: os_avx512 && e(|x| x.has_avx512bw()),
            avx512_vnni: os_avx512 && e(|x| x.has_avx512vnni()),
            avx512_bf16: os_avx512 && e(|x| x.has_avx512_bf16()),
            amx: os_amx && e(|x| x.has_amx_tile()),
            ..SimdFeatures::default()
        };
        Identity {
            arch: std::env::consts::ARCH.to_string(),
            vendor,
            brand,
            family: Some(family),
            model: Some(model),
            stepping: Some(stepping),
            simd,
        }
    }

    fn read_xcr0() -> u64 {
        #[target_feature(enable = "xsave")]
        unsafe fn xgetbv0() -> u64 {
            // SAFETY (caller): XGETBV with ECX=0 is valid once CPUID reports OSXSAVE.
            unsafe { core::arch::x86_64::_xgetbv(0) }
        }
        // SAFETY: only called after CPUID.1:ECX.OSXSAVE[bit 27] = 1, which means the CPU has
        // XSAVE and the OS has set CR4.OSXSAVE, so XGETBV will not fault.
        unsafe { xgetbv0() }
    }

    /// L2 and L3 per instance from CPUID leaf 4 (Intel) or 0x8000_001D (AMD).
    pub fn caches() -> (Option<u64>, Option<u64>) {
        let (mut l2, mut l3) = (None, None);
        if let Some(iter) = CpuId::new().get_cache_parameters() {
            for c in iter {
                if c.cache_type() == CacheType::Instruction {
                    continue;
                }
                let bytes = (c.associativity()
                    * c.physical_line_partitions()
                    * c.coherency_line_size()
                    * c.sets()) as u64;
                match c.level() {
                    2 => l2 = Some(bytes),
                    3 => l3 = Some(bytes),
                    _ => {}
                }
            }
        }
        (l2, l3)
    }
}

#[cfg(target_os = "macos")]
mod macos {
    use super::Identity;
    use crate::profile::SimdFeatures;

    /// `sysctl -n NAME`, trimmed; `None` when the key does not exist.
    pub fn sysctl(name: &str) -> Option<String> {
        let out = std::process::Command::new("sysctl")
            .arg("-n")
            .arg(name)
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (!s.is_empty()).then_some(s)
    }

    // On an Intel Mac CPUID gives the identity and caches; these serve Apple Silicon.
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    pub fn identity() -> Identity {
        let brand = sysctl("machdep.cpu.brand_string").unwrap_or_else(|| "unknown".into());
        let vendor = if brand.starts_with("Apple") {
            "Apple".to_string()
        } else {
            "unknown".to_string()
        };
        let flag = |k: &str| sysctl(k).is_some_and(|v| v == "1");
        Identity {
            arch: std::env::consts::ARCH.to_string(),
            vendor,
            brand,
            family: None,
            model: None,
            stepping: None,
            simd: SimdFeatures {
                neon: true,
                dotprod: flag("hw.optional.arm.FEAT_DotProd"),
                sve: false,
                ..SimdFeatures::default()
            },
        }
    }

    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    pub fn caches() -> (Option<u64>, Option<u64>) {
        let get = |k: &str| {
            sysctl(k)
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|&v| v > 0)
        };
        (
            get("hw.perflevel0.l2cachesize").or_else(|| get("hw.l2cachesize")),
            get("hw.l3cachesize"),
        )
    }

    /// Physical and logical cores (`hw.physicalcpu`, `hw.logicalcpu`).
    pub fn cores() -> Option<(u32, u32)> {
        let p = sysctl("hw.physicalcpu")?.parse().ok()?;
        let l = sysctl("hw.logicalcpu")?.parse().ok()?;
        Some((p, l))
    }
}

/// macOS has neither /proc nor /sys: cores come from sysctl.
#[cfg(target_os = "macos")]
pub fn macos_topology() -> Option<Topology> {
    macos::cores().map(|(physical, logical)| Topology {
        logical,
        physical,
        sockets: 1,
    })
}

#[cfg(target_os = "macos")]
pub use macos::sysctl;

// ---------------------------------------------------------------------------------------------
// Microarchitecture tables

/// Name and launch year of an x86 microarchitecture from the display family/model (and, where
/// Intel reused a model number, the stepping). `None` for ids not in the table.
///
/// Sources: Linux `arch/x86/include/asm/intel-family.h` for Intel model numbers, AMD's
/// "Processor Programming Reference" documents and Linux `arch/x86/kernel/cpu/amd.c` for the
/// AMD family 17h/19h/1Ah model ranges. Years are the first product launch.
pub fn microarchitecture(
    vendor: &str,
    family: u32,
    model: u32,
    stepping: u32,
) -> Option<(&'static str, u16)> {
    match vendor {
        "GenuineIntel" => intel(family, model, stepping),
        "AuthenticAMD" => amd(family, model),
        // Hygon Dhyana is a licensed Zen 1 core under family 0x18.
        "HygonGenuine" if family == 0x18 => Some(("Zen (Hygon Dhyana)", 2018)),
        _ => None,
    }
}

fn intel(family: u32, model: u32, stepping: u32) -> Option<(&'static str, u16)> {
    if family != 6 {
        return None;
    }
    Some(match model {
        0x1A | 0x1E | 0x1F | 0x2E => ("Nehalem", 2008),
        0x25 | 0x2C | 0x2F => ("Westmere", 2010),
        0x2A => ("Sandy Bridge", 2011),
        0x2D => ("Sandy Bridge-EP", 2012),
        0x3A => ("Ivy Bridge", 2012),
        0x3E => ("Ivy Bridge-EP", 2013),
        0x3C | 0x45 | 0x46 => ("Haswell", 2013),
        0x3F => ("Haswell-EP", 2014),
        0x3D | 0x47 => ("Broadwell", 2014),
        0x56 => ("Broadwell-DE", 2015),
        0x4F => ("Broadwell-EP", 2016),
        0x4E | 0x5E => ("Skylake", 2015),
        // Skylake-SP, Cascade Lake and Cooper Lake share model 0x55; the stepping tells them
        // apart (intel-family.h: "SKYLAKE_X: stepping 0-4, CASCADELAKE_X 5-7, COOPERLAKE_X 10-11").
        0x55 => match stepping {
            0..=4 => ("Skylake-SP", 2017),
            5..=7 => ("Cascade Lake", 2019),
            _ => ("Cooper Lake", 2020),
        },
        0x57 => ("Knights Landing", 2016),
        0x85 => ("Knights Mill", 2017),
        // 0x8E and 0x9E span four "generations" of the Skylake core, again told by stepping.
        0x8E => match stepping {
            0..=9 => ("Kaby Lake", 2016),
            10 => ("Kaby Lake R", 2017),
            11 => ("Whiskey Lake", 2018),
            _ => ("Comet Lake", 2019),
        },
        0x9E => match stepping {
            0..=9 => ("Kaby Lake", 2017),
            _ => ("Coffee Lake", 2017),
        },
        0xA5 | 0xA6 => ("Comet Lake", 2020),
        0x66 => ("Cannon Lake", 2018),
        0x7D | 0x7E => ("Ice Lake", 2019),
        0x6A => ("Ice Lake-SP", 2021),
        0x6C => ("Ice Lake-D", 2021),
        0x8C | 0x8D => ("Tiger Lake", 2020),
        0xA7 => ("Rocket Lake", 2021),
        0x8A => ("Lakefield", 2020),
        0x97 | 0x9A => ("Alder Lake", 2021),
        0xBE => ("Alder Lake-N", 2023),
        0xB7 | 0xBA | 0xBF => ("Raptor Lake", 2022),
        0x8F => ("Sapphire Rapids", 2023),
        0xCF => ("Emerald Rapids", 2023),
        0xAA | 0xAC => ("Meteor Lake", 2023),
        0xB5 | 0xC5 | 0xC6 => ("Arrow Lake", 2024),
        0xBD => ("Lunar Lake", 2024),
        0xCC => ("Panther Lake", 2025),
        0xAD | 0xAE => ("Granite Rapids", 2024),
        0xAF => ("Sierra Forest", 2024),
        0xB6 => ("Grand Ridge", 2024),
        0xDD => ("Clearwater Forest", 2025),
        0x5C => ("Goldmont", 2016),
        0x7A => ("Goldmont Plus", 2017),
        0x86 | 0x96 | 0x9C => ("Tremont", 2020),
        _ => return None,
    })
}

fn amd(family: u32, model: u32) -> Option<(&'static str, u16)> {
    Some(match (family, model) {
        (0x15, 0x00..=0x01) => ("Bulldozer", 2011),
        (0x15, 0x02..=0x1F) => ("Piledriver", 2012),
        (0x15, 0x30..=0x3F) => ("Steamroller", 2014),
        (0x15, 0x60..=0x7F) => ("Excavator", 2015),
        (0x16, _) => ("Jaguar", 2013),
        // Family 17h: Zen (Naples, Summit Ridge, Raven Ridge), Zen+ (Pinnacle Ridge 0x08,
        // Picasso 0x18), Zen 2 from 0x30 (Rome 0x31, Renoir 0x60, Matisse 0x71, Van Gogh 0x90,
        // Mendocino 0xA0).
        (0x17, 0x08) => ("Zen+", 2018),
        (0x17, 0x00..=0x0F) => ("Zen", 2017),
        (0x17, 0x10..=0x17) => ("Zen", 2018),
        (0x17, 0x18..=0x1F) => ("Zen+", 2019),
        (0x17, 0x20..=0x2F) => ("Zen", 2019),
        (0x17, 0x30..=0x3F) => ("Zen 2", 2019),
        (0x17, 0x60..=0x6F) => ("Zen 2", 2020),
        (0x17, 0x70..=0x7F) => ("Zen 2", 2019),
        (0x17, 0x80..=0xAF) => ("Zen 2", 2022),
        // Family 19h: Zen 3 (Milan 0x01, Vermeer 0x21, Cezanne 0x50), Zen 3+ (Rembrandt 0x44),
        // Zen 4 (Genoa 0x11, Storm Peak 0x18, Raphael 0x61, Phoenix 0x74/0x78, Bergamo and
        // Siena 0xA0..).
        (0x19, 0x00..=0x0F) => ("Zen 3", 2021),
        (0x19, 0x20..=0x2F) => ("Zen 3", 2020),
        (0x19, 0x40..=0x4F) => ("Zen 3+", 2022),
        (0x19, 0x50..=0x5F) => ("Zen 3", 2021),
        (0x19, 0x10..=0x1F) => ("Zen 4", 2022),
        (0x19, 0x60..=0x6F) => ("Zen 4", 2022),
        (0x19, 0x70..=0x7F) => ("Zen 4", 2023),
        (0x19, 0xA0..=0xAF) => ("Zen 4c", 2023),
        // Family 1Ah: Zen 5 (Turin 0x02, Turin Dense 0x11, Strix Point 0x24, Granite Ridge 0x44,
        // Krackan 0x60, Strix Halo 0x70).
        (0x1A, 0x00..=0x0F) => ("Zen 5", 2024),
        (0x1A, 0x10..=0x1F) => ("Zen 5c", 2024),
        (0x1A, 0x20..=0x2F) => ("Zen 5", 2024),
        (0x1A, 0x40..=0x4F) => ("Zen 5", 2024),
        (0x1A, 0x60..=0x7F) => ("Zen 5", 2025),
        _ => return None,
    })
}

/// An ARM core design known by (implementer, part).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArmCore {
    pub name: &'static str,
    pub year: u16,
}

/// Vendor name of an ARM implementer code (MIDR_EL1.Implementer).
pub fn arm_vendor(implementer: u32) -> Option<&'static str> {
    Some(match implementer {
        0x41 => "ARM",
        0x42 => "Broadcom",
        0x43 => "Cavium",
        0x46 => "Fujitsu",
        0x48 => "HiSilicon",
        0x4E => "NVIDIA",
        0x51 => "Qualcomm",
        0x61 => "Apple",
        0xC0 => "Ampere",
        _ => return None,
    })
}

/// Core name and launch year from MIDR implementer and part numbers (as Linux's
/// `arch/arm64/include/asm/cputype.h` and util-linux `lscpu-arm.c` list them).
pub fn arm_core(implementer: u32, part: u32) -> Option<ArmCore> {
    let (name, year) = match (implementer, part) {
        (0x41, 0xD03) => ("Cortex-A53", 2012),
        (0x41, 0xD07) => ("Cortex-A57", 2012),
        (0x41, 0xD08) => ("Cortex-A72", 2015),
        (0x41, 0xD0B) => ("Cortex-A76", 2018),
        (0x41, 0xD0C) => ("Neoverse-N1", 2019),
        (0x41, 0xD40) => ("Neoverse-V1", 2020),
        (0x41, 0xD49) => ("Neoverse-N2", 2021),
        (0x41, 0xD4F) => ("Neoverse-V2", 2022),
        (0x41, 0xD84) => ("Neoverse-V3", 2024),
        (0x41, 0xD8E) => ("Neoverse-N3", 2024),
        (0x43, 0x0AF) => ("ThunderX2", 2018),
        (0x46, 0x001) => ("A64FX", 2019),
        (0x48, 0xD01) => ("TaiShan v110", 2019),
        (0xC0, 0xAC3) => ("AmpereOne", 2023),
        _ => return None,
    };
    Some(ArmCore { name, year })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_ids_apply_extended_bits() {
        // Haswell-EP E5-2660 v3: 0x306F2 → family 6, model 0x3F, stepping 2.
        assert_eq!(display_ids(0x0003_06F2, true), (6, 0x3F, 2));
        // Zen 3 Milan: 0xA00F11 → family 0x19, model 0x01.
        assert_eq!(display_ids(0x00A0_0F11, false), (0x19, 0x01, 1));
        // Zen 5 Turin: 0xB00F21 → family 0x1A, model 0x02.
        assert_eq!(display_ids(0x00B0_0F21, false), (0x1A, 0x02, 1));
        // AMD family 0x10 (K10, base family 0xF, ext 1): model uses the extended bits too.
        assert_eq!(display_ids(0x0010_0F42, false), (0x10, 0x04, 2));
        // On AMD a base family of 6 does not take the extended model.
        assert_eq!(display_ids(0x0001_0661, false), (6, 6, 1));
    }

    #[test]
    fn parse_size_units() {
        assert_eq!(parse_size("25600 KB"), Some(25600 * 1024));
        assert_eq!(parse_size("32768K"), Some(32 << 20));
        assert_eq!(parse_size("2M"), Some(2 << 20));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("lots"), None);
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod live_tests {
    #[test]
    fn cpuid_caches_agree_with_sysfs() {
        let (l2, _) = super::x86::caches();
        assert!(l2.is_some_and(|b| b >= 64 << 10), "{l2:?}");
        // The kernel fills sysfs from the same CPUID leaves.
        let (sys_l2, _) = super::caches_from_sysfs(std::path::Path::new("/"));
        if sys_l2.is_some() {
            assert_eq!(l2, sys_l2);
        }
    }
}

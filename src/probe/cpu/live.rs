//! The CPU this runs on: CPUID on x86, the kernel's feature detection on ARM Linux, sysctl on
//! macOS. Only used for the live source; nothing here reads below a probe root.

use super::Identity;
#[cfg(target_os = "macos")]
use super::Topology;
#[cfg(all(target_arch = "aarch64", not(target_os = "macos")))]
use crate::profile::SimdFeatures;

pub(super) fn live_logical_cpus() -> u32 {
    // `available_parallelism` honours affinity and quotas; for the machine's own count sysinfo
    // is not needed here, this is only the last resort when sysfs and cpuinfo are both missing.
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

/// The identity of the CPU this runs on, or `None` where the live source has nothing better
/// than `/proc/cpuinfo` (ARM Linux, where cpuinfo *is* the kernel's answer).
pub(super) fn live_identity() -> Option<Identity> {
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
        let mut id = super::parse_cpuinfo(&text).identity();
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

pub(super) fn live_caches() -> (Option<u64>, Option<u64>) {
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
            bmi2: e(|x| x.has_bmi2()),
            avx_vnni: os_avx && e(|x| x.has_avx_vnni()),
            avx512f: os_avx512 && e(|x| x.has_avx512f()),
            avx512bw: os_avx512 && e(|x| x.has_avx512bw()),
            avx512_vbmi: os_avx512 && e(|x| x.has_avx512vbmi()),
            avx512_vnni: os_avx512 && e(|x| x.has_avx512vnni()),
            avx512_bf16: os_avx512 && e(|x| x.has_avx512_bf16()),
            amx: os_amx && e(|x| x.has_amx_tile()),
            amx_int8: os_amx && e(|x| x.has_amx_int8()),
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
}

#[cfg(all(test, target_arch = "x86_64"))]
mod live_tests {
    #[test]
    fn cpuid_caches_agree_with_sysfs() {
        let (l2, _) = super::x86::caches();
        assert!(l2.is_some_and(|b| b >= 64 << 10), "{l2:?}");
        // The kernel fills sysfs from the same CPUID leaves.
        let (sys_l2, _) = crate::probe::cpu::caches_from_sysfs(std::path::Path::new("/"));
        if sys_l2.is_some() {
            assert_eq!(l2, sys_l2);
        }
    }
}

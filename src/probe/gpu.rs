//! GPUs: NVIDIA through NVML, AMD (and Intel discrete) through sysfs, Apple's unified-memory GPU
//! on macOS.
//!
//! A family that cannot be probed is not an error: the reason goes into the notes that become
//! `HardwareProfile::gpu_notes`. NVML is a library of the live machine, so it is queried only
//! when the probe reads the real root; a fixture root gets a note instead.

use std::path::Path;

use crate::profile::{GpuInfo, GpuVendor};

/// GPUs found and notes on the families that were not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuReading {
    pub gpus: Vec<GpuInfo>,
    pub notes: Vec<String>,
}

/// Probe every GPU family. `live` says whether `root` is this machine's `/`.
pub fn probe_gpus(root: &Path, live: bool) -> GpuReading {
    let mut r = GpuReading::default();
    let sysfs = read_drm(root);

    if live {
        match nvidia::probe() {
            Ok((gpus, unusable)) => {
                if gpus.is_empty() && unusable.is_empty() {
                    r.notes
                        .push("no NVIDIA GPU: NVML reports 0 devices".to_string());
                }
                r.gpus.extend(gpus);
                r.notes.extend(unusable);
            }
            Err(reason) => r.notes.push(format!("no NVIDIA GPU: {reason}")),
        }
    } else {
        r.notes.push(format!(
            "NVIDIA not probed: NVML reads the live machine, not the probe root `{}`",
            root.display()
        ));
    }
    // An NVIDIA card visible in sysfs but not through NVML is worth saying: it is usually a
    // missing or mismatched driver, and llama.cpp's CUDA backend would not see it either.
    if !r.gpus.iter().any(|g| g.vendor == GpuVendor::Nvidia) {
        for d in sysfs.iter().filter(|d| d.vendor == 0x10DE) {
            r.notes.push(format!(
                "NVIDIA device {:#06x} at {} is present in sysfs but not usable without NVML/driver",
                d.device, d.card
            ));
        }
    }

    let amd: Vec<GpuInfo> = sysfs
        .iter()
        .filter(|d| d.vendor == 0x1002)
        .map(amd_gpu)
        .collect();
    if amd.is_empty() {
        r.notes
            .push("no AMD GPU: no /sys/class/drm/card*/device with vendor 0x1002".to_string());
    }
    let intel: Vec<GpuInfo> = sysfs
        .iter()
        .filter(|d| d.vendor == 0x8086)
        .filter_map(intel_gpu)
        .collect();
    for (i, mut g) in amd.into_iter().chain(intel).enumerate() {
        g.index = i as u32;
        r.gpus.push(g);
    }

    #[cfg(target_os = "macos")]
    if live {
        match apple::probe() {
            Some(g) => r.gpus.push(g),
            None => r
                .notes
                .push("no Apple GPU: sysctl hw.memsize unreadable".to_string()),
        }
    }
    r
}

/// One `/sys/class/drm/cardN/device` as read from sysfs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrmDevice {
    /// `card0`, ...
    pub card: String,
    pub vendor: u32,
    pub device: u32,
    pub vram_total_bytes: Option<u64>,
    pub vram_used_bytes: Option<u64>,
    pub product_name: Option<String>,
}

/// Every `cardN` (not connectors like `card0-DP-1`, nor `renderD128`) with a PCI vendor id,
/// sorted by card number.
pub fn read_drm(root: &Path) -> Vec<DrmDevice> {
    let dir = root.join("sys/class/drm");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut cards: Vec<(u32, DrmDevice)> = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(n) = name
            .strip_prefix("card")
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let dev = e.path().join("device");
        let read = |f: &str| {
            std::fs::read_to_string(dev.join(f))
                .ok()
                .map(|s| s.trim().to_string())
        };
        let hex = |f: &str| {
            read(f).and_then(|s| u32::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        };
        let Some(vendor) = hex("vendor") else {
            continue;
        };
        // Intel's i915 reports local (device) memory on the card, not the PCI device.
        let lmem = std::fs::read_to_string(e.path().join("lmem_total_bytes"))
            .ok()
            .and_then(|s| s.trim().parse().ok());
        cards.push((
            n,
            DrmDevice {
                card: name,
                vendor,
                device: hex("device").unwrap_or(0),
                vram_total_bytes: read("mem_info_vram_total")
                    .and_then(|s| s.parse().ok())
                    .or(lmem),
                vram_used_bytes: read("mem_info_vram_used").and_then(|s| s.parse().ok()),
                product_name: read("product_name").filter(|s| !s.is_empty()),
            },
        ));
    }
    cards.sort_by_key(|(n, _)| *n);
    cards.into_iter().map(|(_, d)| d).collect()
}

/// Known AMD device ids: marketing name and datasheet memory bandwidth (bytes/s). Ids from the
/// PCI ID repository (pci-ids.ucw.cz); bandwidths from AMD's product pages.
pub fn amd_device(device: u32) -> Option<(&'static str, f64)> {
    Some(match device {
        0x74A1 => ("AMD Instinct MI300X", 5.3e12),
        0x74A0 => ("AMD Instinct MI300A", 5.3e12),
        0x74A5 => ("AMD Instinct MI325X", 6.0e12),
        0x7408 => ("AMD Instinct MI250X", 3.2768e12),
        0x740C => ("AMD Instinct MI250X/MI250", 3.2768e12),
        0x740F => ("AMD Instinct MI210", 1.6384e12),
        0x738C => ("AMD Instinct MI100", 1.2288e12),
        0x744C => ("AMD Radeon RX 7900 XTX/XT", 960e9),
        0x7448 => ("AMD Radeon PRO W7900", 864e9),
        0x73BF => ("AMD Radeon RX 6900 XT/6800 XT", 512e9),
        _ => return None,
    })
}

fn amd_gpu(d: &DrmDevice) -> GpuInfo {
    let known = amd_device(d.device);
    let name = d
        .product_name
        .clone()
        .or_else(|| known.map(|(n, _)| n.to_string()))
        .unwrap_or_else(|| format!("AMD GPU {:#06x}", d.device));
    let total = d.vram_total_bytes.unwrap_or(0);
    GpuInfo {
        vendor: GpuVendor::Amd,
        index: 0,
        name,
        vram_total_bytes: total,
        vram_free_bytes: d.vram_used_bytes.map(|u| total.saturating_sub(u)),
        compute_capability: None,
        memory_bus_width_bits: None,
        max_memory_clock_mhz: None,
        memory_bandwidth_bytes_per_s: known.map(|(_, bw)| bw),
        driver_version: None,
        cuda_version: None,
        pci_id: Some(format!("{:#06x}:{:#06x}", d.vendor, d.device)),
        unified_memory: false,
    }
}

/// Intel GPUs are listed only when they have their own memory (Arc, Data Center GPU); an
/// integrated GPU shares RAM and adds nothing a model could use beyond the CPU's.
fn intel_gpu(d: &DrmDevice) -> Option<GpuInfo> {
    let total = d.vram_total_bytes.filter(|&t| t > 0)?;
    Some(GpuInfo {
        vendor: GpuVendor::Intel,
        index: 0,
        name: d
            .product_name
            .clone()
            .unwrap_or_else(|| format!("Intel GPU {:#06x}", d.device)),
        vram_total_bytes: total,
        vram_free_bytes: d.vram_used_bytes.map(|u| total.saturating_sub(u)),
        compute_capability: None,
        memory_bus_width_bits: None,
        max_memory_clock_mhz: None,
        memory_bandwidth_bytes_per_s: None,
        driver_version: None,
        cuda_version: None,
        pci_id: Some(format!("{:#06x}:{:#06x}", d.vendor, d.device)),
        unified_memory: false,
    })
}

/// Theoretical memory bandwidth from NVML's bus width and maximum memory clock:
/// `bus_bits / 8 × clock_MHz × 1e6 × 2`.
///
/// The factor 2 is the double data rate as NVML reports it (NVML's
/// `nvmlDeviceGetMaxClockInfo(NVML_CLOCK_MEM)` gives half the effective transfer rate for
/// GDDR6X and HBM alike). Checked against NVIDIA's datasheets: RTX 4090, 384-bit at
/// 10501 MHz → 1008 GB/s (datasheet 1008 GB/s); H100 SXM5, 5120-bit at 2619 MHz → 3.35 TB/s
/// (datasheet 3.35 TB/s).
pub fn nvidia_bandwidth_bytes_per_s(bus_width_bits: u32, max_memory_clock_mhz: u32) -> f64 {
    bus_width_bits as f64 / 8.0 * max_memory_clock_mhz as f64 * 1e6 * 2.0
}

/// CUDA driver version as NVML encodes it (`1000 × major + 10 × minor`) → `"12.4"`.
pub fn cuda_version_string(v: i32) -> String {
    format!("{}.{}", v / 1000, (v % 1000) / 10)
}

mod nvidia {
    use nvml_wrapper::enum_wrappers::device::Clock;
    use nvml_wrapper::error::NvmlError;
    use nvml_wrapper::Nvml;

    use super::{cuda_version_string, nvidia_bandwidth_bytes_per_s};
    use crate::profile::{GpuInfo, GpuVendor};

    /// Every NVIDIA device NVML sees, and a note for each it sees but cannot query. `Err`
    /// carries a reason a person can act on.
    ///
    /// nvml-wrapper opens `libnvidia-ml.so.1` (the driver's soname, present without any
    /// development package) with dlopen at `Nvml::init`, so on a machine without
    /// the driver this is an `Err(LibloadingError)`, not a link failure.
    pub fn probe() -> Result<(Vec<GpuInfo>, Vec<String>), String> {
        let nvml = Nvml::init().map_err(|e| match e {
            NvmlError::LibloadingError(_) => {
                "NVML library libnvidia-ml.so.1 not found (no NVIDIA driver installed)".to_string()
            }
            NvmlError::DriverNotLoaded => "NVIDIA driver not loaded".to_string(),
            NvmlError::NoPermission => "no permission to talk to the NVIDIA driver".to_string(),
            other => format!("NVML init failed: {other}"),
        })?;
        let count = nvml
            .device_count()
            .map_err(|e| format!("NVML device count failed: {e}"))?;
        let driver = nvml.sys_driver_version().ok();
        let cuda = nvml.sys_cuda_driver_version().ok().map(cuda_version_string);
        let mut gpus = Vec::new();
        let mut unusable = Vec::new();
        for i in 0..count {
            let d = match nvml.device_by_index(i) {
                Ok(d) => d,
                Err(e) => {
                    // A device that fell off the bus or is in a bad state: say so, go on.
                    unusable.push(format!("NVIDIA device {i} not usable: {e}"));
                    continue;
                }
            };
            let mem = d.memory_info().ok();
            let bus = d.memory_bus_width().ok();
            let clock = d.max_clock_info(Clock::Memory).ok();
            gpus.push(GpuInfo {
                vendor: GpuVendor::Nvidia,
                index: i,
                name: d.name().unwrap_or_else(|_| "NVIDIA GPU".to_string()),
                vram_total_bytes: mem.as_ref().map_or(0, |m| m.total),
                vram_free_bytes: mem.as_ref().map(|m| m.free),
                compute_capability: d
                    .cuda_compute_capability()
                    .ok()
                    .map(|c| format!("{}.{}", c.major, c.minor)),
                memory_bus_width_bits: bus,
                max_memory_clock_mhz: clock,
                memory_bandwidth_bytes_per_s: match (bus, clock) {
                    (Some(b), Some(c)) if b > 0 && c > 0 => {
                        Some(nvidia_bandwidth_bytes_per_s(b, c))
                    }
                    _ => None,
                },
                driver_version: driver.clone(),
                cuda_version: cuda.clone(),
                pci_id: d.pci_info().ok().map(|p| {
                    // NVML packs the ids as (device << 16) | vendor.
                    format!(
                        "{:#06x}:{:#06x}",
                        p.pci_device_id & 0xFFFF,
                        p.pci_device_id >> 16
                    )
                }),
                unified_memory: false,
            });
        }
        Ok((gpus, unusable))
    }
}

#[cfg(target_os = "macos")]
mod apple {
    use crate::probe::cpu::sysctl;
    use crate::profile::{GpuInfo, GpuVendor};

    /// Apple Silicon's GPU shares RAM with the CPU. Metal lets it wire about two thirds of RAM on
    /// machines up to 36 GiB and three quarters above (`recommendedMaxWorkingSetSize`); that is
    /// what is reported as its VRAM.
    pub fn probe() -> Option<GpuInfo> {
        let brand = sysctl("machdep.cpu.brand_string").unwrap_or_default();
        if !brand.starts_with("Apple") {
            return None;
        }
        let mem: u64 = sysctl("hw.memsize")?.parse().ok()?;
        Some(GpuInfo {
            vendor: GpuVendor::Apple,
            index: 0,
            name: format!("{brand} GPU"),
            vram_total_bytes: if mem <= 36 << 30 {
                mem / 3 * 2
            } else {
                mem / 4 * 3
            },
            vram_free_bytes: None,
            compute_capability: None,
            memory_bus_width_bits: None,
            max_memory_clock_mhz: None,
            memory_bandwidth_bytes_per_s: None,
            driver_version: None,
            cuda_version: None,
            pci_id: None,
            unified_memory: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvidia_bandwidth_matches_datasheets() {
        // RTX 4090: 1008 GB/s.
        let rtx4090 = nvidia_bandwidth_bytes_per_s(384, 10501);
        assert!((rtx4090 / 1e9 - 1008.0).abs() < 1.0, "{rtx4090}");
        // H100 SXM5: 3.35 TB/s.
        let h100 = nvidia_bandwidth_bytes_per_s(5120, 2619);
        assert!((h100 / 1e12 - 3.35).abs() < 0.01, "{h100}");
    }

    #[test]
    fn cuda_version_decoding() {
        assert_eq!(cuda_version_string(12040), "12.4");
        assert_eq!(cuda_version_string(11080), "11.8");
    }
}

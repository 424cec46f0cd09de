//! `/proc/cpuinfo` parsing, x86 and ARM: pure functions of the text.

use std::collections::BTreeSet;

use super::{arm_core, arm_vendor, Identity, Topology};
use crate::profile::SimdFeatures;

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

    pub(super) fn guess_arch(&self) -> &'static str {
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
        bmi2: has("bmi2"),
        avx_vnni: has("avx_vnni"),
        avx512f: has("avx512f"),
        avx512bw: has("avx512bw"),
        avx512_vbmi: has("avx512vbmi"),
        avx512_vnni: has("avx512_vnni"),
        avx512_bf16: has("avx512_bf16"),
        amx: has("amx_tile"),
        amx_int8: has("amx_int8"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_size_units() {
        assert_eq!(parse_size("25600 KB"), Some(25600 * 1024));
        assert_eq!(parse_size("32768K"), Some(32 << 20));
        assert_eq!(parse_size("2M"), Some(2 << 20));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("lots"), None);
    }
}

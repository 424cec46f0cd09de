//! The typed description of a machine, `HardwareProfile`, and its parts.
//!
//! This is the value the probe produces and every later stage consumes. It is also the format of
//! `--hardware FILE`: a profile saved from one server (or written by hand) lets `plan` run for a
//! machine that is not this one. It knows nothing about how it was measured.
//!
//! The JSON form is versioned by [`PROFILE_SCHEMA_VERSION`]; fields added later are optional so
//! that older files keep loading.

use serde::{Deserialize, Serialize};

use sha2::{Digest, Sha256};

use crate::types::bench::BenchResult;

/// Version of the `HardwareProfile` JSON schema. Bump when a field changes meaning.
pub const PROFILE_SCHEMA_VERSION: u32 = 1;

/// Everything minerva-setup knows about one machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HardwareProfile {
    pub schema_version: u32,
    /// Where the figures came from: `"probe"` for a live reading, or a description of a fixture.
    #[serde(default = "default_source")]
    pub source: String,
    pub cpu: CpuInfo,
    pub memory: MemoryInfo,
    #[serde(default)]
    pub gpus: Vec<GpuInfo>,
    /// Why a GPU family was not found (no driver, no NVML, no sysfs entries, ...). Never an error.
    #[serde(default)]
    pub gpu_notes: Vec<String>,
    #[serde(default)]
    pub disk: Option<DiskInfo>,
    /// Streaming memory bandwidth measured by the probe; bounds CPU decode speed.
    #[serde(default)]
    pub memory_bandwidth: Option<BandwidthMeasurement>,
    /// Benchmark figures carried by a simulated profile (a fixture of a server that is not this
    /// one). A live probe leaves this empty; `bench` produces its own `BenchResult`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bench: Option<BenchResult>,
    /// Stable hash of what identifies the hardware; see [`fingerprint`].
    #[serde(default)]
    pub fingerprint: String,
}

fn default_source() -> String {
    "file".to_string()
}

/// CPU identity, SIMD capability and topology.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuInfo {
    /// `"x86_64"` or `"aarch64"` (or whatever `std::env::consts::ARCH` says).
    pub arch: String,
    /// `GenuineIntel`, `AuthenticAMD`, `Apple`, ...
    pub vendor: String,
    pub brand: String,
    #[serde(default)]
    pub family: Option<u32>,
    #[serde(default)]
    pub model: Option<u32>,
    #[serde(default)]
    pub stepping: Option<u32>,
    /// Microarchitecture name, `"unknown"` when the ids are not in the table.
    pub microarchitecture: String,
    #[serde(default)]
    pub launch_year: Option<u16>,
    pub simd: SimdFeatures,
    pub simd_level: SimdLevel,
    pub physical_cores: u32,
    pub logical_cores: u32,
    #[serde(default = "one")]
    pub sockets: u32,
    #[serde(default)]
    pub l2_cache_bytes: Option<u64>,
    #[serde(default)]
    pub l3_cache_bytes: Option<u64>,
    /// CPUs this process may use: the cgroup `cpu.max` quota or affinity mask, when below
    /// `logical_cores`. `None` means no limit.
    #[serde(default)]
    pub quota_cores: Option<f64>,
}

fn one() -> u32 {
    1
}

/// Individual SIMD features. Missing fields in a profile file read as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimdFeatures {
    pub sse4_2: bool,
    pub avx: bool,
    pub avx2: bool,
    pub fma: bool,
    pub f16c: bool,
    /// BMI2, which llama.cpp's Haswell and later x86 kernels are compiled with.
    pub bmi2: bool,
    pub avx_vnni: bool,
    pub avx512f: bool,
    pub avx512bw: bool,
    pub avx512_vbmi: bool,
    pub avx512_vnni: bool,
    pub avx512_bf16: bool,
    /// AMX tiles (CPUID and the OS's XCR0 tile state together).
    pub amx: bool,
    /// AMX int8 tile instructions (what llama.cpp's AMX kernels use).
    pub amx_int8: bool,
    pub neon: bool,
    pub dotprod: bool,
    pub sve: bool,
}

/// The coarse SIMD level that decides which llama.cpp kernels can run, ordered from least to most.
///
/// ARM levels sort after `Sse42` only for convenience of a total order; tiers that demand an x86
/// level are compared with [`SimdLevel::satisfies`], which knows the two families apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SimdLevel {
    /// Nothing beyond baseline x86-64 / unknown.
    None,
    Sse42,
    Avx,
    /// AVX2 together with FMA and F16C (llama.cpp's `haswell` kernels and up).
    Avx2,
    Avx512,
    /// AVX-512 with VNNI (int8 dot products).
    Avx512Vnni,
    Amx,
    Neon,
    /// NEON with the dot-product extension.
    NeonDotprod,
    Sve,
}

impl SimdLevel {
    /// Whether a CPU at `self` meets a requirement of `required`.
    pub fn satisfies(self, required: SimdLevel) -> bool {
        let arm =
            |l: SimdLevel| matches!(l, SimdLevel::Neon | SimdLevel::NeonDotprod | SimdLevel::Sve);
        if required == SimdLevel::None {
            return true;
        }
        if arm(self) != arm(required) {
            return false;
        }
        self >= required
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SimdLevel::None => "none",
            SimdLevel::Sse42 => "sse4.2",
            SimdLevel::Avx => "avx",
            SimdLevel::Avx2 => "avx2",
            SimdLevel::Avx512 => "avx512",
            SimdLevel::Avx512Vnni => "avx512-vnni",
            SimdLevel::Amx => "amx",
            SimdLevel::Neon => "neon",
            SimdLevel::NeonDotprod => "neon-dotprod",
            SimdLevel::Sve => "sve",
        }
    }
}

impl SimdFeatures {
    /// The coarse level these features add up to.
    pub fn level(&self) -> SimdLevel {
        if self.neon || self.dotprod || self.sve {
            return if self.sve {
                SimdLevel::Sve
            } else if self.dotprod {
                SimdLevel::NeonDotprod
            } else {
                SimdLevel::Neon
            };
        }
        let avx2_baseline = self.avx2 && self.fma && self.f16c;
        if self.amx && self.avx512f && avx2_baseline {
            SimdLevel::Amx
        } else if self.avx512f && self.avx512_vnni && avx2_baseline {
            SimdLevel::Avx512Vnni
        } else if self.avx512f && avx2_baseline {
            SimdLevel::Avx512
        } else if avx2_baseline {
            SimdLevel::Avx2
        } else if self.avx {
            SimdLevel::Avx
        } else if self.sse4_2 {
            SimdLevel::Sse42
        } else {
            SimdLevel::None
        }
    }
}

/// RAM, swap and container limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryInfo {
    /// RAM the kernel reports for the host (`MemTotal`).
    pub total_bytes: u64,
    /// RAM available now (`MemAvailable`); changes with load, never part of the fingerprint.
    pub available_bytes: u64,
    #[serde(default)]
    pub swap_total_bytes: u64,
    #[serde(default)]
    pub swap_free_bytes: u64,
    /// Limits of the cgroup this process runs in, if any is set.
    #[serde(default)]
    pub cgroup: Option<CgroupLimits>,
    /// What a model may really use: the smaller of `total_bytes` and the cgroup memory limit.
    pub usable_bytes: u64,
}

/// Limits read from the process's cgroup (v1 or v2). `None` fields mean "max" (no limit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CgroupLimits {
    /// 1 or 2.
    pub version: u8,
    /// Path of the cgroup inside the hierarchy, e.g. `/system.slice/foo.service`.
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub memory_max_bytes: Option<u64>,
    #[serde(default)]
    pub memory_current_bytes: Option<u64>,
    /// CPU quota in cores (`quota / period`), `None` when unlimited.
    #[serde(default)]
    pub cpu_quota_cores: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuVendor {
    Nvidia,
    Amd,
    Apple,
    Intel,
    Other,
}

/// One GPU (or Apple's unified-memory GPU).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuInfo {
    pub vendor: GpuVendor,
    pub index: u32,
    pub name: String,
    pub vram_total_bytes: u64,
    #[serde(default)]
    pub vram_free_bytes: Option<u64>,
    /// CUDA compute capability such as `"9.0"`.
    #[serde(default)]
    pub compute_capability: Option<String>,
    #[serde(default)]
    pub memory_bus_width_bits: Option<u32>,
    #[serde(default)]
    pub max_memory_clock_mhz: Option<u32>,
    /// Theoretical memory bandwidth (from bus width and clock, or a known datasheet figure).
    #[serde(default)]
    pub memory_bandwidth_bytes_per_s: Option<f64>,
    #[serde(default)]
    pub driver_version: Option<String>,
    #[serde(default)]
    pub cuda_version: Option<String>,
    /// PCI vendor:device ids as read from sysfs, e.g. `"0x1002:0x744c"`.
    #[serde(default)]
    pub pci_id: Option<String>,
    /// True when the GPU shares system RAM (Apple Silicon, integrated GPUs).
    #[serde(default)]
    pub unified_memory: bool,
}

/// Free space where models will be stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskInfo {
    pub path: String,
    pub free_bytes: u64,
    #[serde(default)]
    pub total_bytes: u64,
    #[serde(default)]
    pub filesystem: String,
    #[serde(default)]
    pub mount_point: String,
    /// How fast the filesystem reads a file that is not in the page cache (measured with the
    /// bandwidth, on the live machine); absent when not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<DiskRead>,
}
/// A read of the models directory's disk that bypasses the page cache: what loading a model
/// that is not cached costs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DiskRead {
    pub bytes_per_s: f64,
    pub bytes: u64,
    /// Read with `O_DIRECT`; `false` when the filesystem refused it and the file's cached pages
    /// were dropped instead (`posix_fadvise(DONTNEED)`; tmpfs, for one, keeps them: there the
    /// figure is a memory read, as a model load from it would be).
    pub direct: bool,
}

/// A streaming memory-bandwidth reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BandwidthMeasurement {
    pub bytes_per_s: f64,
    pub threads: u32,
    pub buffer_bytes: u64,
    pub duration_s: f64,
}

impl HardwareProfile {
    /// Memory the planner may give to a model on the CPU side.
    pub fn usable_ram_bytes(&self) -> u64 {
        self.memory.usable_bytes
    }

    /// Cores llama.cpp should use for decode: physical cores, capped by a CPU quota.
    pub fn compute_cores(&self) -> u32 {
        let mut cores = self.cpu.physical_cores.max(1);
        if let Some(q) = self.cpu.quota_cores {
            cores = cores.min(q.floor().max(1.0) as u32);
        }
        cores
    }
}

/// Why a hardware profile file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read hardware profile `{path}`")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("hardware profile `{path}` is not valid: {detail}")]
    Parse { path: String, detail: String },
    #[error("hardware profile `{path}` has schema_version {found}; this minerva-setup reads up to {PROFILE_SCHEMA_VERSION}")]
    Version { path: String, found: u32 },
}

impl HardwareProfile {
    /// Load a profile written by `probe --json` (or by hand). The error names the file and, for
    /// bad JSON, the line, column and field serde complained about.
    pub fn from_file(path: &std::path::Path) -> Result<HardwareProfile, ProfileError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: shown.clone(),
            source,
        })?;
        HardwareProfile::from_json(&text, &shown)
    }

    /// Parse a profile from JSON text; `origin` names it in errors.
    pub fn from_json(text: &str, origin: &str) -> Result<HardwareProfile, ProfileError> {
        let mut p: HardwareProfile =
            serde_json::from_str(text).map_err(|e| ProfileError::Parse {
                path: origin.to_string(),
                detail: e.to_string(),
            })?;
        if p.schema_version > PROFILE_SCHEMA_VERSION {
            return Err(ProfileError::Version {
                path: origin.to_string(),
                found: p.schema_version,
            });
        }
        if p.memory.usable_bytes == 0 || p.memory.usable_bytes > p.memory.total_bytes {
            let limit = p.memory.cgroup.as_ref().and_then(|c| c.memory_max_bytes);
            p.memory.usable_bytes =
                limit.map_or(p.memory.total_bytes, |l| l.min(p.memory.total_bytes));
        }
        if p.cpu.physical_cores == 0 || p.cpu.logical_cores < p.cpu.physical_cores {
            return Err(ProfileError::Parse {
                path: origin.to_string(),
                detail: format!(
                    "field `cpu.physical_cores` ({}) must be at least 1 and at most `cpu.logical_cores` ({})",
                    p.cpu.physical_cores, p.cpu.logical_cores
                ),
            });
        }
        if p.fingerprint.is_empty() {
            p.fingerprint = fingerprint(&p);
        }
        Ok(p)
    }
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
    put(&format!(
        "{:?}/{:?}/{:?}",
        p.cpu.family, p.cpu.model, p.cpu.stepping
    ));
    put(&format!(
        "{}c{}t{}s",
        p.cpu.physical_cores, p.cpu.logical_cores, p.cpu.sockets
    ));
    put(&format!("ram{}", round(p.memory.total_bytes)));
    let limit = p.memory.cgroup.as_ref().and_then(|c| c.memory_max_bytes);
    put(&format!("limit{:?}", limit.map(round)));
    put(&format!(
        "quota{:?}",
        p.cpu.quota_cores.map(|q| (q * 10.0).round() as i64)
    ));
    let mut gpus: Vec<String> = p
        .gpus
        .iter()
        .map(|g| {
            format!(
                "{:?}:{}:{}",
                g.vendor,
                g.name.trim(),
                round(g.vram_total_bytes)
            )
        })
        .collect();
    gpus.sort();
    for g in &gpus {
        put(g);
    }
    let digest = h.finalize();
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// A fixture profile from `tests/fixtures/profiles/NAME.json`, for unit tests.
#[cfg(test)]
pub(crate) fn fixture(name: &str) -> HardwareProfile {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/profiles")
        .join(format!("{name}.json"));
    HardwareProfile::from_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

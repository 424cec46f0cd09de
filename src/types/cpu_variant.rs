//! Which build of llama.cpp's CPU kernels ran: the record that travels with every figure
//! measured on this machine (benchmark, verification, state, runtime config).

use serde::{Deserialize, Serialize};

/// The CPU backend variant llama.cpp ran with (`libggml-cpu-<name>`), and the better ones that
/// were passed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuVariant {
    /// llama.cpp's name for the variant: `icelake`, `haswell`, `sandybridge`, `sse42`, ...
    pub name: String,
    /// The SIMD level its kernels are compiled for, as the probe names levels (`avx512-vnni`).
    pub simd_level: String,
    /// Chosen with `--cpu-variant` / `MINERVA_CPU_VARIANT` rather than by this machine's
    /// features.
    #[serde(default)]
    pub forced: bool,
    /// Whether a child process ran it (a model load, a prompt batch and decode steps with the
    /// planned threads) before this process trusted it.
    #[serde(default)]
    pub checked: bool,
    /// Better variants this machine's CPUID allows but that were not used, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<RejectedVariant>,
}

/// A variant that was passed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedVariant {
    pub name: String,
    pub reason: String,
}

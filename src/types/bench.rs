//! The benchmark's result types, `BenchResult` and its per-quantisation measurements.
//!
//! These are the figures the predictor scales from. They are plain data: a simulated
//! `HardwareProfile` may carry a `BenchResult` written by hand for a server that is not this one.

use serde::{Deserialize, Serialize};

/// Version of the `BenchResult` JSON schema.
pub const BENCH_SCHEMA_VERSION: u32 = 1;

/// Median and spread of repeated measurements of one quantity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Number of measured repetitions (warm-ups excluded).
    pub samples: u32,
}

impl Stat {
    /// A single value, e.g. from a hand-written fixture.
    pub fn single(v: f64) -> Stat {
        Stat {
            median: v,
            min: v,
            max: v,
            samples: 1,
        }
    }

    /// Relative spread `(max - min) / median`.
    pub fn spread(&self) -> f64 {
        if self.median > 0.0 {
            (self.max - self.min) / self.median
        } else {
            0.0
        }
    }
}

/// Where llama.cpp ran: all on the CPU, or every layer offloaded to a GPU backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchBackend {
    Cpu,
    Gpu,
}

/// Measurements of one benchmark model (one quantisation type, one size).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantBench {
    /// ggml tensor type name of the bulk of the weights: `F16`, `Q8_0`, `Q4_0`, `Q4_K`, `Q5_K`, `Q6_K`.
    pub ggml_type: String,
    pub backend: BenchBackend,
    /// Parameters in the weight matrices read per token (embedding table excluded).
    pub params: u64,
    /// Bytes of weight data read per decoded token.
    pub weight_bytes_per_token: u64,
    /// Model file size in bytes.
    pub file_bytes: u64,
    pub load_s: f64,
    pub prompt_tokens: u32,
    pub prefill_tokens_per_s: Stat,
    pub generated_tokens: u32,
    pub decode_tokens_per_s: Stat,
    /// `params × decode tokens/s`.
    pub decode_weights_per_s: f64,
    /// `weight_bytes_per_token × decode tokens/s`.
    pub decode_bandwidth_bytes_per_s: f64,
    /// `decode_bandwidth_bytes_per_s / probe bandwidth`, when the probe measured one.
    #[serde(default)]
    pub bandwidth_ratio: Option<f64>,
    /// `2 × params × prefill tokens/s`.
    pub prefill_flops_per_s: f64,
}

/// The whole benchmark: one `QuantBench` per quantisation type (and backend), plus what they share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchResult {
    pub schema_version: u32,
    /// Threads llama.cpp used for the measurements.
    pub threads: u32,
    /// Thread counts tried and the decode tokens/s each gave, winner included.
    #[serde(default)]
    pub thread_trials: Vec<ThreadTrial>,
    /// Fixed cost per decoded token that does not scale with weights (graph, sync, sampling),
    /// estimated from two model sizes of one type. Zero when not measured.
    #[serde(default)]
    pub per_token_overhead_s: f64,
    /// Fixed cost of loading a model (context creation, buffers), beyond reading its bytes.
    #[serde(default)]
    pub load_overhead_s: f64,
    pub quants: Vec<QuantBench>,
    /// Probe bandwidth the ratios refer to.
    #[serde(default)]
    pub probe_bandwidth_bytes_per_s: Option<f64>,
    /// True when `size convergence` held: two sizes of one type gave weights/s within 15 %.
    #[serde(default)]
    pub converged: Option<bool>,
    /// Wall time of the whole benchmark, model writing excluded.
    #[serde(default)]
    pub wall_s: f64,
    /// Peak resident memory during the benchmark, when known.
    #[serde(default)]
    pub peak_rss_bytes: Option<u64>,
    /// Free-text provenance: "measured", or where a fixture's figures come from.
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// One thread count tried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadTrial {
    pub threads: u32,
    pub decode_tokens_per_s: f64,
}

impl BenchResult {
    /// The measurement for a ggml type on a backend, if the benchmark covered it.
    pub fn quant(&self, ggml_type: &str, backend: BenchBackend) -> Option<&QuantBench> {
        self.quants
            .iter()
            .filter(|q| q.backend == backend && q.ggml_type.eq_ignore_ascii_case(ggml_type))
            .max_by_key(|q| q.params)
    }
}

//! The benchmark's result types, `BenchResult` and its per-quantisation measurements.
//!
//! These are the figures the predictor scales from. They are plain data: a simulated
//! `HardwareProfile` may carry a `BenchResult` written by hand for a server that is not this one.

use serde::{Deserialize, Serialize};

/// Version of the `BenchResult` JSON schema.
/// 2: prefill and decode measured on separate 2048-wide models (decode beyond the cache), the
/// width curve of prefill and the fixed cost per prompt. A stored result of an older version
/// is measured again.
/// 3: decode's attention over the context measured on two decode models at a deep context (one
/// grouping four query heads per KV head, one not): a cost per query head and one per KV head
/// ([`DecodeAttention`]), where 2 had one cost per KV row from a small model.
pub const BENCH_SCHEMA_VERSION: u32 = 4;

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
    /// FLOP/s of prefill's weight matrices: `2 × params × prefill tokens/s`, or, where the
    /// benchmark measured [`ContextGrowth`], with the prompt's attention (at its measured rate)
    /// and the output matrix (evaluated for the last token only) taken out of the time and the
    /// FLOP.
    pub prefill_flops_per_s: f64,
    /// Layers, query heads, KV heads and head size of the measured model: with
    /// [`BenchResult::decode_attention`], the attention its decode paid. 0 in older results (no
    /// attention taken out).
    #[serde(default)]
    pub n_layers: u32,
    #[serde(default)]
    pub n_heads: u32,
    #[serde(default)]
    pub n_kv_heads: u32,
    #[serde(default)]
    pub head_dim: u32,
    /// Tokens in the KV cache when decode was timed, where it differs from `prompt_tokens`
    /// (decode measured on its own model after a short prompt); `None`: `prompt_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decode_context_tokens: Option<u32>,
    /// Width of the model prefill was measured on, where known (the width curve's reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill_n_embd: Option<u32>,
}

impl QuantBench {
    /// Average position in the KV cache of the tokens a decode repetition generated.
    pub fn decode_position(&self) -> f64 {
        self.decode_context_tokens.unwrap_or(self.prompt_tokens) as f64
            + self.generated_tokens as f64 / 2.0
    }

    /// Seconds of attention a decoded token of a repetition paid on average, at `a`'s costs; 0
    /// when the shape is unknown (older results).
    pub fn decode_attention_s(&self, a: &DecodeAttention) -> f64 {
        a.token_s(
            self.n_layers as f64,
            Heads {
                n_heads: self.n_heads,
                n_kv_heads: self.n_kv_heads,
                head_dim: self.head_dim,
            },
            self.decode_position(),
        )
    }
}

/// What a decoded token's attention over the KV cache costs, per layer and earlier position:
/// a part per query head (its dot products with the cache's keys, the softmax and the weighted
/// sum of the values, computed per head), a part per KV head (the per-row work of reading its K
/// and V rows, shared by the query heads of a group) and a part per element of the KV heads
/// (the bytes of those rows). On a 2-core Xeon VM, llama.cpp's own counters on 1024-wide 8-layer
/// Q8_0 models from 64 to 1536 tokens in the cache: 16 query heads of 64 with 16 KV heads cost
/// 5.5 × 10⁻⁷ s per layer and position, 8 of 128 with 8 KV heads 5.1; 16 of 64 with 4 KV heads
/// 2.9, 4 of 256 with 1 KV head 1.9 (a cost per head alone would have made that one a quarter, a
/// cost per element alone the same). Fitted on the benchmark's three decode models, a cost per
/// query element in place of the one per KV head came out at 0-2.5 % of the slope and charged
/// heads of 256 and of 128 too much: decode at 2048 + 256 tokens predicted 11 % slow for
/// gemma3-270m's shape, against 1 % with this one (`bench/README.md`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DecodeAttention {
    pub s_per_query_head: f64,
    #[serde(default)]
    pub s_per_kv_head: f64,
    #[serde(default)]
    pub s_per_kv_element: f64,
}

/// The attention heads of a model: what [`DecodeAttention`] charges per layer and position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Heads {
    pub n_heads: u32,
    pub n_kv_heads: u32,
    pub head_dim: u32,
}

impl Heads {
    /// What each cost of [`DecodeAttention`] is paid per layer and position: query heads, KV
    /// heads, KV elements (KV heads × head size).
    pub fn features(&self) -> [f64; 3] {
        let (h, kv, d) = (
            f64::from(self.n_heads),
            f64::from(self.n_kv_heads),
            f64::from(self.head_dim),
        );
        [h, kv, kv * d]
    }
}

impl DecodeAttention {
    /// The three costs in the order of [`Heads::features`].
    pub fn costs(&self) -> [f64; 3] {
        [
            self.s_per_query_head,
            self.s_per_kv_head,
            self.s_per_kv_element,
        ]
    }

    /// Seconds per layer and earlier position of a model with `heads`.
    pub fn slope(&self, heads: Heads) -> f64 {
        let f = heads.features();
        self.costs().iter().zip(f).map(|(c, x)| c * x).sum()
    }

    /// Attention seconds of one decoded token of a model of `n_layers` layers (its share on this
    /// device, possibly fractional) at `position` tokens in the cache.
    pub fn token_s(&self, n_layers: f64, heads: Heads, position: f64) -> f64 {
        n_layers * position * self.slope(heads)
    }
}

/// Decode of one benchmark model at two positions in the KV cache: the decode model's own
/// repetitions (after a short prompt), and repetitions with a deep context restored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeepDecodePoint {
    pub ggml_type: String,
    pub n_layers: u32,
    pub n_heads: u32,
    pub n_kv_heads: u32,
    #[serde(default)]
    pub head_dim: u32,
    /// Average position of the tokens decoded at each depth.
    pub short_position: f64,
    pub deep_position: f64,
    pub short_tokens_per_s: f64,
    pub deep_tokens_per_s: Stat,
}

impl DeepDecodePoint {
    /// The measured model's heads.
    pub fn heads(&self) -> Heads {
        Heads {
            n_heads: self.n_heads,
            n_kv_heads: self.n_kv_heads,
            head_dim: self.head_dim,
        }
    }

    /// Extra seconds per token per layer and earlier position at the deep context:
    /// [`DecodeAttention::slope`] of the model's heads; `None` when the deep context was not
    /// slower.
    pub fn slope(&self) -> Option<f64> {
        let d_pos = self.deep_position - self.short_position;
        let (deep, short) = (self.deep_tokens_per_s.median, self.short_tokens_per_s);
        if d_pos <= 0.0 || deep <= 0.0 || short <= 0.0 || self.n_layers == 0 {
            return None;
        }
        let d_s = 1.0 / deep - 1.0 / short;
        (d_s > 0.0).then(|| d_s / (f64::from(self.n_layers) * d_pos))
    }
}

/// How a prompt token's cost grows with its position in the prompt, from one benchmark model
/// measured at two prompt lengths: attention over the earlier tokens of the prompt. (Decode's
/// growth is [`BenchResult::decode_attention`].)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextGrowth {
    pub ggml_type: String,
    pub n_layers: u32,
    pub n_kv_heads: u32,
    /// Size of the model's attention heads (0 in results that did not record it).
    #[serde(default)]
    pub head_dim: u32,
    /// Heads × head size of the queries.
    pub q_dim: u32,
    pub short_prompt_tokens: u32,
    pub long_prompt_tokens: u32,
    pub generated_tokens: u32,
    pub short_prefill_tokens_per_s: f64,
    pub long_prefill_tokens_per_s: f64,
    /// FLOP/s of prefill's attention (QKᵀ and AV, `4 × layers × q_dim` FLOP per earlier token):
    /// the extra attention FLOP per token of the longer prompt over the extra seconds per token
    /// it took. `None` when the longer prompt was not slower per token, or the rate came out
    /// above the same model's matrices' rate (noise).
    pub prefill_attention_flops_per_s: Option<f64>,
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
    /// Decode steps with several sequences in one batch (continuous batching), per benchmark
    /// model; empty when not measured (only a plan for several users asks for it).
    #[serde(default)]
    pub batch_decode: Vec<BatchDecode>,
    /// What else the machine was doing while the benchmark ran; absent in older results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<BenchConditions>,
    /// How a token's cost grows with the context; absent in older results and when the benchmark
    /// ran a user's model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_growth: Option<ContextGrowth>,
    /// The same prompts on a model of the same width with larger heads
    /// (`bench::models::WIDE_HEAD_DIM`): prefill's attention rate at a second head size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_growth_wide_heads: Option<ContextGrowth>,
    /// Decode at a deep context on the decode models that measured it, and the attention costs
    /// fitted from them (`None` when not measured or when the deep context was not slower).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deep_decode: Vec<DeepDecodePoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decode_attention: Option<DecodeAttention>,
    /// Which of llama.cpp's CPU kernel variants ran (`icelake`, `haswell`, ...); absent in older
    /// results (which ran the AVX2 build) and for fakes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_variant: Option<Box<crate::types::cpu_variant::CpuVariant>>,
    /// Prefill (and decode) of one type's weights at several widths, narrowest first: how the
    /// matrices' FLOP rate in prefill changes with the width. Empty in older results and for a
    /// user's model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub width_curve: Vec<WidthPoint>,
    /// Prefill seconds per prompt beyond its matrices, attention and once-per-prompt work (graph,
    /// threads, buffers), from one type's prefill at two depths; `None` when not measured or
    /// implausible (the per-type rates then hold it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill_s_per_prompt: Option<f64>,
    /// llama.cpp's load of one benchmark model whose pages were dropped from the page cache
    /// first: what reading a model that is not cached costs on the benchmark cache's disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold_load: Option<ColdLoad>,
}

/// A cold load of a benchmark model, next to its load from the page cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColdLoad {
    pub ggml_type: String,
    pub file_bytes: u64,
    pub cold_load_s: f64,
    pub warm_load_s: f64,
}

impl ColdLoad {
    /// Bytes per second the cold load read beyond the cached one's time; `None` when it was not
    /// slower (the pages stayed cached: tmpfs, for one, keeps them).
    pub fn read_bytes_per_s(&self) -> Option<f64> {
        let extra = self.cold_load_s - self.warm_load_s;
        (extra > 0.0 && self.file_bytes > 0).then(|| self.file_bytes as f64 / extra)
    }
}

/// One model of the width curve: [`crate::bench::models::width_shapes`] of the prefill model of
/// one type, or that model itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WidthPoint {
    pub ggml_type: String,
    pub n_embd: u32,
    pub n_layers: u32,
    /// Weights a prompt token is multiplied by (not the output matrix and the last layer's
    /// feed-forward, which run for the last prompt token only).
    pub matmul_params: u64,
    pub prompt_tokens: u32,
    pub prefill_tokens_per_s: f64,
    /// FLOP/s of `matmul_params`: the once-per-prompt matrices (at `decode_tokens_per_s`), the
    /// fixed cost per prompt and the attention (where measured) taken out of the prompt's time.
    pub prefill_flops_per_s: f64,
    /// The model's decode rate after the prompt, which prices its once-per-prompt matrices.
    pub decode_tokens_per_s: f64,
}

/// The machine's load around a benchmark run: the figures are only as good as the CPUs the run
/// really had.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BenchConditions {
    /// 1-minute load average when the benchmark started, before its own threads ran.
    pub load_average_1m: f64,
    pub logical_cores: u32,
    /// Share of all CPU time during the run that the hypervisor gave to other guests
    /// (`steal` in /proc/stat).
    pub steal_ratio: f64,
    /// Share of the timed repetitions' wall time that the benchmark's threads spent on a CPU
    /// (their `schedstat` run time over threads × wall seconds), kept and discarded repetitions
    /// together; `None` where it cannot be read (not Linux, or an engine that is not llama.cpp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_cpu_share: Option<f64>,
    /// Timed repetitions discarded (and repeated where the budget allowed) because the threads
    /// were off the CPU for more than a tenth of their wall time.
    #[serde(default)]
    pub descheduled_repetitions: u32,
}

impl BenchConditions {
    /// Other runnable work per CPU when the run started (the load average, per core).
    pub fn load_per_core(&self) -> f64 {
        self.load_average_1m / f64::from(self.logical_cores.max(1))
    }

    /// Whether the run shared the machine enough to say so: a load of half a runnable task per
    /// core before it started, 2 % of the CPU time stolen by the hypervisor, or the benchmark's
    /// threads off the CPU for 5 % of their timed wall time.
    pub fn busy(&self) -> bool {
        self.load_per_core() >= 0.5 || self.steal_ratio >= 0.02 || self.off_cpu_share() >= 0.05
    }

    /// Share of the timed wall time the benchmark's threads were not on a CPU (0 where unknown).
    pub fn off_cpu_share(&self) -> f64 {
        self.on_cpu_share.map_or(0.0, |s| (1.0 - s).clamp(0.0, 1.0))
    }

    /// How much further a prediction can be off because of that sharing, as a fraction: the
    /// time lost to others (the stolen share, or, from 5 % off the CPU, the extra wall time
    /// `off / (1 - off)` that being off the CPU costs, whichever is larger), and the share of a
    /// core the other work could take from each of the benchmark's threads (load per core beyond
    /// the first half task, at most one core), at most 50 %. Zero on an idle machine.
    pub fn busy_margin(&self) -> f64 {
        let others = (self.load_per_core() - 0.5).clamp(0.0, 1.0) * 0.5;
        // Time off the CPU includes stolen time when the steal was during a repetition: the
        // larger of the two counts, not their sum. A turn served under the same conditions is
        // off the CPU as often, however clean the kept repetitions were.
        let off = self.off_cpu_share();
        let lost = if off >= 0.05 {
            self.steal_ratio.max(off / (1.0 - off).max(0.5))
        } else {
            self.steal_ratio
        };
        (lost + others).clamp(0.0, 0.5)
    }
}

/// Decode steps with 1, 2, 4, 8 … sequences in one llama.cpp batch on one benchmark model: what
/// a step of a continuous-batching server costs with B conversations decoding at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchDecode {
    /// ggml type name of the bulk of the model's weights.
    pub ggml_type: String,
    pub backend: BenchBackend,
    /// Parameters in the weight matrices read per step.
    pub params: u64,
    /// Tokens already in each sequence's KV cache when the steps were timed.
    pub context_tokens: u32,
    /// One entry per batch size, smallest first.
    pub steps: Vec<BatchStep>,
}

/// The time of one decode step with `sequences` sequences (one token each) in the batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchStep {
    pub sequences: u32,
    pub step_s: Stat,
}

impl BatchDecode {
    /// Seconds that `b` sequences add to a one-sequence step: the measured points made
    /// non-decreasing (a point below a smaller batch's, noise or another kernel, counts as that
    /// one), interpolated as in [`BatchDecode::step_ratio`], less the one-sequence point. So it
    /// never falls as `b` grows. `None` without a one-sequence measurement.
    pub fn extra_step_s(&self, b: u32) -> Option<f64> {
        let base = self.base_step_s()?;
        let mut highest = 0.0f64;
        let pts: Vec<(f64, f64)> = self
            .points()
            .map(|(x, y)| {
                highest = highest.max(y);
                (x, highest)
            })
            .collect();
        Some((interpolate(&pts, b) - base).max(0.0))
    }

    /// Step time with `b` sequences over the step time with one: the measured points, linear
    /// between them and, beyond the largest, along the last segment's slope (never below the
    /// last point). `None` without a one-sequence measurement.
    pub fn step_ratio(&self, b: u32) -> Option<f64> {
        let base = self.base_step_s()?;
        let pts: Vec<(f64, f64)> = self.points().map(|(x, y)| (x, y / base)).collect();
        Some(interpolate(&pts, b))
    }

    /// The one-sequence step's seconds, when measured and positive.
    fn base_step_s(&self) -> Option<f64> {
        let base = self.steps.iter().find(|s| s.sequences == 1)?.step_s.median;
        (base > 0.0).then_some(base)
    }

    /// (sequences, step seconds) of the positive measurements, smallest batch first.
    fn points(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.steps
            .iter()
            .filter(|s| s.step_s.median > 0.0)
            .map(|s| (s.sequences as f64, s.step_s.median))
    }
}

/// `pts` (x ascending) at `b`: linear between points, beyond the last along the last segment's
/// slope (never below the last point); the only point's value when there is one.
fn interpolate(pts: &[(f64, f64)], b: u32) -> f64 {
    let x = b.max(1) as f64;
    for w in pts.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if x <= x1 {
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0).max(1e-9);
        }
    }
    match pts {
        [.., (x0, y0), (x1, y1)] => {
            let slope = ((y1 - y0) / (x1 - x0).max(1e-9)).max(0.0);
            y1 + slope * (x - x1)
        }
        [(_, y)] => *y,
        [] => 0.0,
    }
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

    /// The batched-decode curve measured for a ggml type on a backend (the largest model), else
    /// the one of the type with the most weights per step, else `None`.
    pub fn batch_curve(&self, ggml_type: &str, backend: BenchBackend) -> Option<&BatchDecode> {
        let on = || self.batch_decode.iter().filter(|c| c.backend == backend);
        on().filter(|c| c.ggml_type.eq_ignore_ascii_case(ggml_type))
            .max_by_key(|c| c.params)
            .or_else(|| on().max_by_key(|c| c.params))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(points: &[(u32, f64)]) -> BatchDecode {
        BatchDecode {
            ggml_type: "Q4_K".into(),
            backend: BenchBackend::Cpu,
            params: 1,
            context_tokens: 128,
            steps: points
                .iter()
                .map(|&(b, s)| BatchStep {
                    sequences: b,
                    step_s: Stat::single(s),
                })
                .collect(),
        }
    }

    #[test]
    fn step_ratio_interpolates_the_measured_points_and_extends_the_last_slope() {
        // The 0.5B Q4_K_M shape on the 2-core VM (DESIGN.md): 46, 48, 71, 117 ms.
        let c = curve(&[(1, 0.046), (2, 0.048), (4, 0.071), (8, 0.117)]);
        let r = |b| c.step_ratio(b).unwrap();
        assert!((r(1) - 1.0).abs() < 1e-12);
        assert!((r(2) - 0.048 / 0.046).abs() < 1e-12);
        // Halfway between 2 and 4.
        assert!((r(3) - (0.048 + 0.071) / 2.0 / 0.046).abs() < 1e-12);
        assert!((r(8) - 0.117 / 0.046).abs() < 1e-12);
        // Beyond 8: the 4→8 slope, 11.5 ms per sequence.
        assert!((r(12) - (0.117 + 4.0 * 0.0115) / 0.046).abs() < 1e-9);
        assert_eq!(curve(&[(2, 0.05)]).step_ratio(2), None);
    }
}

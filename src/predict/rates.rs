//! What the hardware can do, per device: effective bandwidth, weights per second per ggml type,
//! prefill FLOPS. Taken from a `BenchResult` where one was measured, otherwise from the probe's
//! figures with the stated efficiencies and per-core ceilings below.

use serde::{Deserialize, Serialize};

use crate::gguf::GgmlType;
use crate::profile::{GpuInfo, GpuVendor, HardwareProfile, SimdLevel};
use crate::types::bench::{BenchBackend, BenchResult, DecodeAttention};

/// Share of a streaming-bandwidth figure that llama.cpp's CPU decode reaches when nothing was
/// measured. On the seed server llama.cpp read 11.5 GB/s of weights against a 28 GB/s probe
/// (0.41); a 2-core cloud VM (Xeon, AVX-512) reached 22 GB/s in F16. 0.5 is the middle of the 0.4–0.7
/// seen.
pub const CPU_BANDWIDTH_EFFICIENCY: f64 = 0.5;

/// Share of VRAM bandwidth llama.cpp's GPU decode reaches. llama.cpp's published CUDA results
/// (`tg128` of a 7B Q4_0, 3.56 GiB of weights) give about 150–190 tokens/s on an RTX 4090
/// (1008 GB/s), i.e. 55–65 %; 0.6 is used when the benchmark had no GPU backend.
pub const GPU_BANDWIDTH_EFFICIENCY: f64 = 0.6;

/// Effective prefill FLOP per byte/s of VRAM bandwidth on a discrete GPU when unmeasured.
/// llama.cpp's CUDA `pp512` of a 7B Q4_0 on an RTX 4090 is about 13,000 tokens/s, 180 TFLOPS
/// effective, 180 FLOP per byte/s; half of that is used so that an unmeasured card is not flattered.
pub const GPU_PREFILL_FLOP_PER_BYTE: f64 = 100.0;

/// The same for unified-memory GPUs (Apple Silicon): llama.cpp's Metal `pp512` of a 7B Q4_0 on
/// an M2 (10-core GPU, 100 GB/s) is about 180 tokens/s, 2.5 TFLOPS, 25 FLOP per byte/s.
pub const UNIFIED_PREFILL_FLOP_PER_BYTE: f64 = 25.0;

/// VRAM bandwidth assumed for a GPU whose probe gave none (a mid-range card; conservative).
pub const DEFAULT_GPU_BANDWIDTH_BYTES_PER_S: f64 = 200e9;

/// Per-token cost that does not scale with weights when the benchmark did not measure it:
/// graph build, thread wake-ups, sampling. llama.cpp spends roughly 1–3 ms per token on this on
/// CPU; GPU kernel launches cost about as much.
pub const DEFAULT_PER_TOKEN_OVERHEAD_S: f64 = 0.002;

/// Load time beyond reading the file (context, buffers, warm-up) when unmeasured.
pub const DEFAULT_LOAD_OVERHEAD_S: f64 = 1.0;

/// A bench figure within this share of the effective bandwidth was limited by memory, not by
/// the type's dequantisation: it is then reported as memory-bound ("limited by memory
/// bandwidth"). Its weights/s is still the measured time per weight of that type on a model
/// larger than the cache, and is kept as the type's rate (see [`cpu_rates`]).
const BANDWIDTH_BOUND_SHARE: f64 = 0.9;

/// Rates of one ggml type on one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypeRate {
    pub ggml_type: GgmlType,
    /// Weights per second this type decodes at on a model larger than the cache (the measured
    /// time per weight, per-token overhead taken out); `None` when not measured.
    pub decode_weights_per_s: Option<f64>,
    /// True when that rate was limited by memory (within [`BANDWIDTH_BOUND_SHARE`] of the best
    /// bandwidth of any type), false when by the type's dequantisation compute.
    #[serde(default)]
    pub bandwidth_bound: bool,
    /// Prefill FLOP/s of the weight matrices (2 per weight per token; net of the benchmark
    /// model's attention and output matrix where the benchmark measured the context growth).
    pub prefill_flops_per_s: f64,
}

/// What the CPU side can do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuRates {
    /// True when the figures come from a benchmark of this machine.
    pub measured: bool,
    pub effective_bandwidth_bytes_per_s: f64,
    /// Where the effective bandwidth comes from, in words.
    pub bandwidth_source: String,
    pub per_token_overhead_s: f64,
    pub load_overhead_s: f64,
    pub threads: u32,
    pub types: Vec<TypeRate>,
    /// Decode's attention over the KV cache per query head, KV head and KV element, when the
    /// benchmark measured it; without it the KV cache is counted as bytes read.
    #[serde(default)]
    pub decode_attention: Option<DecodeAttention>,
    /// `(head size, FLOP/s)` of prefill's attention, smallest heads first, where measured
    /// ([`CpuRates::prefill_attention_rate`]); empty: the F16 matrices' rate is used.
    #[serde(default)]
    pub prefill_attention: Vec<(u32, f64)>,
    /// `(width, factor)`: the matrices' prefill FLOP rate at that model width over the rate at
    /// the width the per-type rates were measured at, narrowest first; empty: 1 at every width.
    #[serde(default)]
    pub prefill_width: Vec<(u32, f64)>,
    /// Prefill seconds per prompt beyond the weights and the attention, when measured.
    #[serde(default)]
    pub prefill_s_per_prompt: Option<f64>,
    /// Bytes per second llama.cpp read loading a benchmark model that was not in the page cache,
    /// when the benchmark measured it ([`crate::types::bench::ColdLoad`]).
    #[serde(default)]
    pub cold_read_bytes_per_s: Option<f64>,
}

impl CpuRates {
    /// Prefill's attention FLOP/s for heads of `head_dim`: interpolated in log head size between
    /// the measured sizes, the nearest one's beyond them; `None` when none was measured.
    pub fn prefill_attention_rate(&self, head_dim: u32) -> Option<f64> {
        (!self.prefill_attention.is_empty())
            .then(|| log_interpolate(&self.prefill_attention, head_dim))
    }

    /// The factor for a model `n_embd` wide: interpolated in log width between the measured
    /// widths, the nearest one's beyond them (a rate is not extrapolated).
    pub fn prefill_width_factor(&self, n_embd: u32) -> f64 {
        log_interpolate(&self.prefill_width, n_embd)
    }
}

/// The value at `x` of the `(x, value)` points (ascending `x`): interpolated in log `x` between
/// them, the nearest one's beyond them (a measured rate is not extrapolated); 1 without points.
/// The width curve and the attention rate by head size both use it.
pub fn log_interpolate(points: &[(u32, f64)], at: u32) -> f64 {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return 1.0;
    };
    if at <= first.0 {
        return first.1;
    }
    if at >= last.0 {
        return last.1;
    }
    let x = f64::from(at).ln();
    for w in points.windows(2) {
        let ((w0, f0), (w1, f1)) = (w[0], w[1]);
        if at <= w1 {
            let (x0, x1) = (f64::from(w0).ln(), f64::from(w1).ln());
            let t = if x1 > x0 { (x - x0) / (x1 - x0) } else { 1.0 };
            return f0 + t * (f1 - f0);
        }
    }
    last.1
}

/// What one GPU can do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuRates {
    pub index: u32,
    pub name: String,
    pub measured: bool,
    pub effective_bandwidth_bytes_per_s: f64,
    pub prefill_flops_per_s: f64,
    pub vram_total_bytes: u64,
    pub unified_memory: bool,
    pub bandwidth_source: String,
}

impl CpuRates {
    /// Rates for a ggml type: its own measurement, or the measured type nearest in bits per
    /// weight (the returned flag says a stand-in was used).
    pub fn for_type(&self, t: GgmlType) -> (&TypeRate, bool) {
        if let Some(r) = self.types.iter().find(|r| r.ggml_type == t) {
            return (r, false);
        }
        let bpw = t.bits_per_weight();
        // Invariant: `types` is never empty (both constructors fill it).
        let nearest = self
            .types
            .iter()
            .min_by(|a, b| {
                let da = (a.ggml_type.bits_per_weight() - bpw).abs();
                let db = (b.ggml_type.bits_per_weight() - bpw).abs();
                da.total_cmp(&db)
            })
            .expect("CpuRates::types is never empty");
        (nearest, true)
    }
}

/// `(head size, attention FLOP/s)` of the benchmark's context growths that fitted a rate, by head
/// size (a result without head sizes counts as 64, the benchmark models' own before they were
/// recorded).
fn prefill_attention_points(b: &BenchResult) -> Vec<(u32, f64)> {
    let mut points: Vec<(u32, f64)> = [&b.context_growth, &b.context_growth_wide_heads]
        .into_iter()
        .flatten()
        .filter_map(|g| {
            let hd = if g.head_dim > 0 { g.head_dim } else { 64 };
            g.prefill_attention_flops_per_s.map(|r| (hd, r))
        })
        .collect();
    points.sort_by_key(|p| p.0);
    points.dedup_by_key(|p| p.0);
    points
}

/// A type whose prefill rate the benchmark lacks (no repetition of its prompt was kept, or an
/// older result) takes the rate of the measured type nearest in bits per weight: a rate of 0
/// would make every prompt of it take forever.
fn borrow_missing_prefill(types: &mut [TypeRate]) {
    let measured: Vec<(f64, f64)> = types
        .iter()
        .filter(|r| r.prefill_flops_per_s > 0.0)
        .map(|r| (r.ggml_type.bits_per_weight(), r.prefill_flops_per_s))
        .collect();
    for r in types.iter_mut().filter(|r| r.prefill_flops_per_s <= 0.0) {
        let bpw = r.ggml_type.bits_per_weight();
        if let Some((_, f)) = measured
            .iter()
            .min_by(|a, b| (a.0 - bpw).abs().total_cmp(&(b.0 - bpw).abs()))
        {
            r.prefill_flops_per_s = *f;
        }
    }
}

/// CPU rates from a benchmark when it measured the CPU backend, else from the probe.
pub fn cpu_rates(hw: &HardwareProfile, bench: Option<&BenchResult>) -> CpuRates {
    if let Some(b) = bench {
        let cpu: Vec<_> = b
            .quants
            .iter()
            .filter(|q| q.backend == BenchBackend::Cpu)
            .collect();
        if !cpu.is_empty() {
            // The recorded figures include the fixed per-token overhead; take it out so that the
            // predictor, which adds it back once per token, does not count it twice.
            let overhead_s = trusted_overhead_s(b);
            let attention = b.decode_attention;
            let net = |q: &crate::types::bench::QuantBench| -> Option<f64> {
                let tps = q.decode_tokens_per_s.median;
                // The attention the benchmark model's decode paid at its position, when measured:
                // the predictor adds the candidate's own at the turn's position.
                let attention_s = attention.map_or(0.0, |a| q.decode_attention_s(&a));
                let s = if tps > 0.0 {
                    1.0 / tps - overhead_s - attention_s
                } else {
                    0.0
                };
                (s > 0.0).then_some(s)
            };
            let bw_of = |q: &crate::types::bench::QuantBench| match net(q) {
                Some(s) => q.weight_bytes_per_token as f64 / s,
                None => q.decode_bandwidth_bytes_per_s,
            };
            let wps_of = |q: &crate::types::bench::QuantBench| match net(q) {
                Some(s) => q.params as f64 / s,
                None => q.decode_weights_per_s,
            };
            let bw = cpu.iter().map(|q| bw_of(q)).fold(0.0, f64::max);
            let mut types: Vec<TypeRate> = Vec::new();
            for q in &cpu {
                let Some(t) = GgmlType::from_name(&q.ggml_type) else {
                    continue;
                };
                if let Some(bq) = b.quant(&q.ggml_type, BenchBackend::Cpu) {
                    if bq != *q {
                        continue; // keep the largest measured model of each type
                    }
                }
                // The type's own time per weight is kept even when memory bound: on this machine
                // a larger model of the type cannot read its weights faster than this one did.
                // Dropping it would leave only the best bandwidth of *any* type, so one type's
                // lucky repetition (or a type that reads fewer bytes per unit of work) would speed
                // up every other. Measured on a 2-core EPYC VM by on-CPU time, the types' own
                // rates on the 143 M-weight benchmark models predicted 1-3 B models of Q8_0, Q4_0
                // and Q4_K_M 3 % fast to 16 % slow: the larger models run a little faster per
                // weight, since the per-layer work is a larger share of the benchmark's 1024-wide
                // layers than of theirs. The attention over the KV cache is measured and taken
                // out (`attention`).
                let bandwidth_bound = bw_of(q) >= BANDWIDTH_BOUND_SHARE * bw;
                let wps = wps_of(q);
                types.push(TypeRate {
                    ggml_type: t,
                    decode_weights_per_s: (wps > 0.0).then_some(wps),
                    bandwidth_bound,
                    prefill_flops_per_s: q.prefill_flops_per_s,
                });
            }
            borrow_missing_prefill(&mut types);
            if !types.is_empty() && bw > 0.0 {
                return CpuRates {
                    measured: true,
                    effective_bandwidth_bytes_per_s: bw,
                    bandwidth_source: "benchmark: highest weight bandwidth llama.cpp reached in decode, per-token overhead and, where measured, the attention over the KV cache taken out".into(),
                    per_token_overhead_s: overhead_s,
                    load_overhead_s: if b.load_overhead_s > 0.0 { b.load_overhead_s } else { DEFAULT_LOAD_OVERHEAD_S },
                    threads: b.threads,
                    types,
                    decode_attention: attention,
                    prefill_attention: prefill_attention_points(b),
                    prefill_width: prefill_width_points(b),
                    prefill_s_per_prompt: b.prefill_s_per_prompt,
                    cold_read_bytes_per_s: b.cold_load.as_ref().and_then(|c| c.read_bytes_per_s()),
                };
            }
        }
    }
    unmeasured_cpu_rates(hw)
}

/// The benchmark's width curve as factors over the rate at the width its per-type rates were
/// measured at (the widest point of that width when there are several; none without it).
fn prefill_width_points(b: &BenchResult) -> Vec<(u32, f64)> {
    let Some(main_width) = b
        .quants
        .iter()
        .find(|q| q.backend == BenchBackend::Cpu && q.prefill_n_embd.is_some())
        .and_then(|q| q.prefill_n_embd)
    else {
        return Vec::new();
    };
    let Some(base) = b
        .width_curve
        .iter()
        .find(|p| p.n_embd == main_width && p.prefill_flops_per_s > 0.0)
        .map(|p| p.prefill_flops_per_s)
    else {
        return Vec::new();
    };
    let mut points: Vec<(u32, f64)> = b
        .width_curve
        .iter()
        .filter(|p| p.prefill_flops_per_s > 0.0)
        .map(|p| (p.n_embd, p.prefill_flops_per_s / base))
        .collect();
    points.sort_by_key(|p| p.0);
    points.dedup_by_key(|p| p.0);
    points
}

/// The benchmark's per-token overhead when its two-size fit can be believed, else zero.
///
/// The overhead is the intercept of `time per token = overhead + weights / rate` through a small
/// and a large model of one type. The benchmark also checks that the two ran at weights per
/// second within 15 % of each other (`converged`). When they did not, the straight line through
/// the two points does not describe the machine: other load slowed one of them, or the cache sped
/// up the small one, and the intercept is noise. On a 2-core EPYC VM shared with other work the
/// fit gave 1.1 ms and 7.5 ms by wall clock, and none (a negative intercept) by the threads'
/// on-CPU time. Subtracting a spurious intercept from every type's time inflates every rate, and
/// for a model many times the benchmark's size adding the overhead back once per token does not
/// repay it. The recorded rates are then used as measured, overhead included: this errs on the
/// slow side by at most the true overhead per token.
pub fn trusted_overhead_s(b: &BenchResult) -> f64 {
    if b.converged == Some(false) {
        0.0
    } else {
        b.per_token_overhead_s.max(0.0)
    }
}

/// Per-core decode ceiling in weights/s for Q4_0/Q8_0-class kernels, by SIMD level, used only
/// without a benchmark. A 2-core Xeon cloud VM reached ~20e9 Q4_0 weights/s (11.5 GB/s of
/// 0.5625-byte weights) with AVX-512; these are about half that per core so that an unmeasured
/// machine is not promised more than it gives. Without AVX2 llama.cpp has no fast int8 dot
/// product: a 2013 Xeon without AVX2 ran a 7B at ~5 % of its bandwidth. llama.cpp's own AVX
/// (`sandybridge`) and SSE4.2 kernels, forced on one 2-core AVX-512 Xeon VM (2026-12-02, two
/// alternating rounds, load average 1.7–2.0 from the benchmark itself), decoded Q4_K/Q6_K/Q8_0 at
/// 0.27–0.55× and 0.06–0.46× the rate of its AVX2 (`haswell`) kernels; an older core of the same
/// level gets less, so the figures below are the low end of that.
fn weights_per_s_per_core(level: SimdLevel) -> f64 {
    match level {
        SimdLevel::Amx | SimdLevel::Avx512Vnni | SimdLevel::Avx512 => 6e9,
        SimdLevel::Avx2 => 4e9,
        SimdLevel::Avx => 1.0e9,
        SimdLevel::Sse42 => 0.25e9,
        SimdLevel::None => 0.2e9,
        SimdLevel::Sve => 5e9,
        SimdLevel::NeonDotprod => 4e9,
        SimdLevel::Neon => 1.5e9,
    }
}

/// Effective prefill FLOP/s per core by SIMD level, used only without a benchmark: roughly a
/// quarter to a third of the fp32 FMA peak (AVX2: 32 FLOP/cycle at ~2.5 GHz = 80 GFLOPS). The
/// forced-variant runs above processed prompts at 0.30–0.50× (AVX) and 0.03–0.21× (SSE4.2, the
/// low end for K-quants) of the AVX2 kernels' rate.
fn prefill_flops_per_core(level: SimdLevel) -> f64 {
    match level {
        SimdLevel::Amx => 60e9,
        SimdLevel::Avx512Vnni => 50e9,
        SimdLevel::Avx512 => 40e9,
        SimdLevel::Avx2 => 25e9,
        SimdLevel::Avx => 7e9,
        SimdLevel::Sse42 => 1e9,
        SimdLevel::None => 1e9,
        SimdLevel::Sve => 30e9,
        SimdLevel::NeonDotprod => 20e9,
        SimdLevel::Neon => 8e9,
    }
}

/// Streaming bandwidth assumed when the probe has no figure: a single-channel-ish budget server.
fn default_bandwidth(level: SimdLevel) -> f64 {
    match level {
        SimdLevel::None | SimdLevel::Sse42 => 8e9,
        SimdLevel::Avx | SimdLevel::Neon => 12e9,
        SimdLevel::Avx2 | SimdLevel::NeonDotprod => 20e9,
        SimdLevel::Avx512 | SimdLevel::Avx512Vnni | SimdLevel::Amx | SimdLevel::Sve => 30e9,
    }
}

/// Relative dequantisation cost of a type against Q4_0/Q8_0 kernels (K-quants unpack scales per
/// 32-weight sub-block; Q6_K and the i-quants more).
fn type_speed_factor(t: GgmlType) -> f64 {
    use GgmlType::*;
    match t {
        F32 | F16 | BF16 | Q4_0 | Q8_0 => 1.0,
        Q4_1 | Q5_0 | Q5_1 | IQ4_NL => 0.85,
        Q2_K | Q3_K | Q4_K | Q5_K | Q8_K => 0.8,
        Q6_K => 0.7,
        _ => 0.6,
    }
}

fn unmeasured_cpu_rates(hw: &HardwareProfile) -> CpuRates {
    let level = hw.cpu.simd_level;
    let cores = hw.compute_cores() as f64;
    let (bw, source) = match &hw.memory_bandwidth {
        Some(m) if m.bytes_per_s > 0.0 => (
            m.bytes_per_s * CPU_BANDWIDTH_EFFICIENCY,
            format!(
                "unmeasured: probe bandwidth {:.1} GB/s × {CPU_BANDWIDTH_EFFICIENCY} (llama.cpp's usual share)",
                m.bytes_per_s / 1e9
            ),
        ),
        _ => (
            default_bandwidth(level) * CPU_BANDWIDTH_EFFICIENCY,
            format!(
                "unmeasured: no probe bandwidth; assumed {:.0} GB/s for a {} CPU × {CPU_BANDWIDTH_EFFICIENCY}",
                default_bandwidth(level) / 1e9,
                level.as_str()
            ),
        ),
    };
    use GgmlType::*;
    let types = [
        F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS,
    ]
    .into_iter()
    .map(|t| TypeRate {
        ggml_type: t,
        decode_weights_per_s: Some(cores * weights_per_s_per_core(level) * type_speed_factor(t)),
        bandwidth_bound: false,
        prefill_flops_per_s: cores * prefill_flops_per_core(level),
    })
    .collect();
    CpuRates {
        measured: false,
        effective_bandwidth_bytes_per_s: bw,
        bandwidth_source: source,
        per_token_overhead_s: DEFAULT_PER_TOKEN_OVERHEAD_S,
        load_overhead_s: DEFAULT_LOAD_OVERHEAD_S,
        threads: hw.compute_cores(),
        types,
        decode_attention: None,
        prefill_attention: Vec::new(),
        prefill_width: Vec::new(),
        prefill_s_per_prompt: None,
        cold_read_bytes_per_s: None,
    }
}

/// GPUs llama.cpp can offload to: NVIDIA, AMD and Apple with known memory. An Intel or other GPU
/// is left out (no backend this tool builds for).
pub fn usable_gpus(hw: &HardwareProfile) -> Vec<&GpuInfo> {
    hw.gpus
        .iter()
        .filter(|g| {
            matches!(
                g.vendor,
                GpuVendor::Nvidia | GpuVendor::Amd | GpuVendor::Apple
            ) && g.vram_total_bytes > 0
        })
        .collect()
}

/// Rates of every usable GPU: from a GPU-backend benchmark when there is one (it measured the
/// first GPU; the others are scaled by their bandwidth), else bandwidth × efficiency.
pub fn gpu_rates(hw: &HardwareProfile, bench: Option<&BenchResult>) -> Vec<GpuRates> {
    let gpus = usable_gpus(hw);
    let bench_gpu = bench.and_then(|b| {
        let g: Vec<_> = b
            .quants
            .iter()
            .filter(|q| q.backend == BenchBackend::Gpu)
            .collect();
        let bw = g
            .iter()
            .map(|q| q.decode_bandwidth_bytes_per_s)
            .fold(0.0, f64::max);
        let flops = g.iter().map(|q| q.prefill_flops_per_s).fold(0.0, f64::max);
        (bw > 0.0 && flops > 0.0).then_some((bw, flops))
    });
    let first_bw = gpus
        .first()
        .and_then(|g| g.memory_bandwidth_bytes_per_s)
        .unwrap_or(DEFAULT_GPU_BANDWIDTH_BYTES_PER_S);
    gpus.iter()
        .map(|g| {
            let raw = g.memory_bandwidth_bytes_per_s.unwrap_or(DEFAULT_GPU_BANDWIDTH_BYTES_PER_S);
            match bench_gpu {
                Some((bw, flops)) => {
                    let scale = raw / first_bw;
                    GpuRates {
                        index: g.index,
                        name: g.name.clone(),
                        measured: true,
                        effective_bandwidth_bytes_per_s: bw * scale,
                        prefill_flops_per_s: flops * scale,
                        vram_total_bytes: g.vram_total_bytes,
                        unified_memory: g.unified_memory,
                        bandwidth_source: "benchmark on the GPU backend".into(),
                    }
                }
                None => {
                    let per_byte =
                        if g.unified_memory { UNIFIED_PREFILL_FLOP_PER_BYTE } else { GPU_PREFILL_FLOP_PER_BYTE };
                    let known = if g.memory_bandwidth_bytes_per_s.is_some() { "" } else { " (assumed; probe gave none)" };
                    GpuRates {
                        index: g.index,
                        name: g.name.clone(),
                        measured: false,
                        effective_bandwidth_bytes_per_s: raw * GPU_BANDWIDTH_EFFICIENCY,
                        prefill_flops_per_s: raw * per_byte,
                        vram_total_bytes: g.vram_total_bytes,
                        unified_memory: g.unified_memory,
                        bandwidth_source: format!(
                            "unmeasured: VRAM bandwidth {:.0} GB/s{known} × {GPU_BANDWIDTH_EFFICIENCY}",
                            raw / 1e9
                        ),
                    }
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{borrow_missing_prefill, log_interpolate, TypeRate};
    use crate::gguf::GgmlType;

    /// IQ4_XS (4.25 bits) without a prefill figure takes Q4_K's (4.5 bits), not Q8_0's.
    #[test]
    fn a_type_without_a_prefill_rate_borrows_the_nearest_measured_one() {
        let rate = |t, f| TypeRate {
            ggml_type: t,
            decode_weights_per_s: Some(1e10),
            bandwidth_bound: true,
            prefill_flops_per_s: f,
        };
        let mut types = [
            rate(GgmlType::Q8_0, 500e9),
            rate(GgmlType::Q4_K, 400e9),
            rate(GgmlType::IQ4_XS, 0.0),
        ];
        borrow_missing_prefill(&mut types);
        assert_eq!(types[2].prefill_flops_per_s, 400e9);
        assert_eq!(types[0].prefill_flops_per_s, 500e9);
    }

    #[test]
    fn log_interpolation_follows_log_width_and_holds_the_ends() {
        let points = [(1024, 0.8), (2048, 1.0), (4096, 1.3)];
        assert_eq!(log_interpolate(&[], 1536), 1.0);
        assert_eq!(log_interpolate(&points, 2048), 1.0);
        // 1448 is about the geometric middle of 1024 and 2048.
        assert!((log_interpolate(&points, 1448) - 0.9).abs() < 1e-3);
        assert!((log_interpolate(&points, 2896) - 1.15).abs() < 1e-3);
        assert_eq!(log_interpolate(&points, 640), 0.8);
        assert_eq!(log_interpolate(&points, 8192), 1.3);
    }
}

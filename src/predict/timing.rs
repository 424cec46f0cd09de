//! Time per token: decode from the bytes each device reads and the weights per second of each
//! type, prefill from FLOPS, and the factor that limits decode.

use serde::{Deserialize, Serialize};

use super::{rates, CpuRates, Inputs, Placement, PlacementKind, TensorSplit};
use crate::gguf::{GgmlType, PrefillUse, TensorSummary};
use crate::types::bench::Heads;

/// The factor that bounds decode speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Limit {
    /// Reading the weights from RAM takes longer than computing with them.
    MemoryBandwidth,
    /// The cores cannot dequantise and multiply as fast as memory delivers.
    DequantisationCompute,
    /// Reading the weights from VRAM.
    GpuVramBandwidth,
    /// The layers left on the CPU take longer than those on the GPU.
    CpuShareOfSplitLayers,
    /// The fixed per-token cost (graph, threads, sampling) outweighs the weights (tiny models).
    PerTokenOverhead,
}

impl Limit {
    pub fn describe(self) -> &'static str {
        match self {
            Limit::MemoryBandwidth => "memory bandwidth",
            Limit::DequantisationCompute => "dequantisation compute",
            Limit::GpuVramBandwidth => "GPU VRAM bandwidth",
            Limit::CpuShareOfSplitLayers => "PCIe/CPU share of split layers",
            Limit::PerTokenOverhead => "per-token overhead",
        }
    }
}

/// Seconds per decoded token before the correction, and how they divide.
pub(super) struct DecodeTime {
    /// Per-token overhead plus the CPU's and the GPUs' time.
    pub(super) token_s: f64,
    pub(super) cpu_s: f64,
    pub(super) gpu_s: f64,
    pub(super) limited_by: Limit,
}

/// Decode time per token at the turn's average position: the CPU's tensors at the larger of
/// their bandwidth and compute terms, each GPU's at its bandwidth, plus the per-token overhead.
/// The CPU term notes the stand-in types it used.
pub(super) fn decode_time(
    inputs: &Inputs,
    placement: &Placement,
    split: &TensorSplit,
    notes: &mut Vec<String>,
) -> DecodeTime {
    let shape = &inputs.model.shape;
    let workload = inputs.workload;
    let tied = shape.tied_embeddings;
    let cpu = &inputs.cpu;
    let gpus = &inputs.gpus;
    let cpu_tensors = &split.cpu;
    let gpu_tensors = &split.gpu;
    let cpu_layer_share =
        1.0 - placement.gpu_layers.min(shape.n_layers) as f64 / shape.n_layers.max(1) as f64;

    // KV cache read per decoded token at the turn's average position.
    let avg_pos = workload.prompt_tokens as f64 + workload.response_tokens as f64 / 2.0;
    let kv_read =
        2.0 * shape.n_layers as f64 * avg_pos * (shape.n_kv_heads * shape.head_dim) as f64 * 2.0;

    // The CPU's attention over the KV cache: at its measured costs per query head, KV head and
    // KV element where the benchmark measured them, else as bytes read.
    let cpu_attention_s = cpu.decode_attention.map(|a| {
        a.token_s(
            shape.n_layers as f64 * cpu_layer_share,
            Heads {
                n_heads: shape.n_heads,
                n_kv_heads: shape.n_kv_heads,
                head_dim: shape.head_dim,
            },
            avg_pos,
        )
    });
    let cpu_kv_bytes = match cpu_attention_s {
        Some(_) => 0.0,
        None => kv_read * cpu_layer_share,
    };
    let cpu_terms = cpu_decode_terms(cpu, cpu_tensors, cpu_kv_bytes, tied, notes);
    let cpu_s = if cpu_tensors
        .iter()
        .any(|t| t.dims.len() >= 2 && (!t.is_token_embedding() || tied))
    {
        cpu_terms.bandwidth_s.max(cpu_terms.compute_s) + cpu_attention_s.unwrap_or(0.0)
    } else {
        0.0
    };
    let mut gpu_s = 0.0;
    for g in gpus {
        let bytes: f64 = gpu_tensors
            .iter()
            .filter(|(i, _)| *i == g.index)
            .map(|(_, t)| t.n_bytes as f64)
            .sum();
        if bytes > 0.0 {
            let share = placement
                .gpus
                .iter()
                .find(|s| s.index == g.index)
                .map_or(0, |s| s.layers) as f64
                / shape.n_layers.max(1) as f64;
            gpu_s += (bytes + kv_read * share) / g.effective_bandwidth_bytes_per_s;
        }
    }
    let overhead_s = cpu
        .per_token_overhead_s
        .max(if placement.kind == PlacementKind::Cpu {
            0.0
        } else {
            rates::DEFAULT_PER_TOKEN_OVERHEAD_S
        });
    let token_s = overhead_s + cpu_s + gpu_s;
    DecodeTime {
        token_s,
        cpu_s,
        gpu_s,
        limited_by: decode_limit(placement.kind, overhead_s, cpu_s, gpu_s, &cpu_terms),
    }
}

/// The factor that bounds decode speed, from the parts of a token's time.
fn decode_limit(
    kind: PlacementKind,
    overhead_s: f64,
    cpu_s: f64,
    gpu_s: f64,
    cpu_terms: &CpuTerms,
) -> Limit {
    match kind {
        PlacementKind::Cpu => {
            if overhead_s > cpu_s {
                Limit::PerTokenOverhead
            } else if cpu_terms.compute_s > cpu_terms.bandwidth_s
                && 2.0 * cpu_terms.compute_bound_s > cpu_terms.compute_s
            {
                // Most of the time goes to types whose rate is their dequantisation's; when it
                // goes to memory-bound types, their measured rate *is* memory's.
                Limit::DequantisationCompute
            } else {
                Limit::MemoryBandwidth
            }
        }
        PlacementKind::Gpu => Limit::GpuVramBandwidth,
        PlacementKind::Split => {
            if cpu_s > gpu_s {
                Limit::CpuShareOfSplitLayers
            } else {
                Limit::GpuVramBandwidth
            }
        }
    }
}

/// Seconds of prefill before the correction.
pub(super) struct PrefillTime {
    /// Per prompt token: the weights and the attention.
    pub(super) token_s: f64,
    /// Once per prompt: the output matrix (see [`prefill_s`]).
    pub(super) once_s: f64,
}

/// Prefill time of the CPU's and the GPUs' tensors, and of the attention.
pub(super) fn prefill_time(
    inputs: &Inputs,
    placement: &Placement,
    split: &TensorSplit,
) -> PrefillTime {
    let shape = &inputs.model.shape;
    let workload = inputs.workload;
    let tied = shape.tied_embeddings;
    let cpu = &inputs.cpu;
    let gpus = &inputs.gpus;
    let cpu_tensors = &split.cpu;
    let gpu_tensors = &split.gpu;

    // Prefill: weights × 2 FLOP per token, plus attention (QKᵀ and AV: 4 × q_dim FLOP per
    // earlier token per layer), at the average position of the prompt.
    let attn_flop_per_token = 4.0
        * shape.n_layers as f64
        * (shape.n_heads * shape.head_dim) as f64
        * (workload.prompt_tokens as f64 / 2.0);
    let width = cpu.prefill_width_factor(shape.n_embd);
    let (cpu_prefill, cpu_prefill_once) = prefill_s(
        cpu_tensors,
        shape.n_layers,
        tied,
        |t| cpu.for_type(t).0.prefill_flops_per_s * width,
        |t: &TensorSummary| {
            let r = cpu.for_type(t.ggml_type).0;
            match r.decode_weights_per_s {
                Some(wps) => t.n_elements as f64 / wps,
                None => 2.0 * t.n_elements as f64 / (r.prefill_flops_per_s * width),
            }
        },
    );
    let mut gpu_prefill = 0.0;
    let mut gpu_prefill_once = 0.0;
    for g in gpus {
        let ts: Vec<&TensorSummary> = gpu_tensors
            .iter()
            .filter(|(i, _)| *i == g.index)
            .map(|(_, t)| *t)
            .collect();
        let (per_token, once) = prefill_s(
            &ts,
            shape.n_layers,
            tied,
            |_| g.prefill_flops_per_s,
            |t: &TensorSummary| t.n_bytes as f64 / g.effective_bandwidth_bytes_per_s,
        );
        gpu_prefill += per_token;
        gpu_prefill_once += once;
    }
    let attn_flops_rate = match placement.kind {
        PlacementKind::Cpu => cpu
            .prefill_attention_rate(shape.head_dim)
            .unwrap_or_else(|| cpu.for_type(GgmlType::F16).0.prefill_flops_per_s),
        _ => gpus
            .iter()
            .map(|g| g.prefill_flops_per_s)
            .fold(0.0, f64::max),
    };
    // The fixed cost of a prompt the benchmark measured on the CPU (graph, threads, buffers).
    let per_prompt_s = match placement.kind {
        PlacementKind::Cpu => cpu.prefill_s_per_prompt.unwrap_or(0.0),
        _ => 0.0,
    };
    PrefillTime {
        token_s: cpu_prefill + gpu_prefill + attn_flop_per_token / attn_flops_rate,
        once_s: cpu_prefill_once + gpu_prefill_once + per_prompt_s,
    }
}

/// Time per decoded token of a set of tensors on the CPU: the bandwidth term and the compute term.
struct CpuTerms {
    bandwidth_s: f64,
    /// Σ weights / measured weights per second of their type.
    compute_s: f64,
    /// The part of `compute_s` spent in types whose benchmark was limited by their
    /// dequantisation, not by memory (decides which of the two is named as the limit).
    compute_bound_s: f64,
}

fn cpu_decode_terms(
    rates: &CpuRates,
    tensors: &[&TensorSummary],
    kv_read_bytes: f64,
    tied: bool,
    notes: &mut Vec<String>,
) -> CpuTerms {
    let mut bytes = kv_read_bytes;
    let mut compute_s = 0.0;
    let mut compute_bound_s = 0.0;
    let mut stand_ins: Vec<String> = Vec::new();
    for t in tensors {
        if t.is_token_embedding() && !tied {
            continue; // one row per token: a lookup, not a read of the table
        }
        bytes += t.n_bytes as f64;
        if t.dims.len() < 2 || t.ggml_type == GgmlType::F32 {
            continue; // norms and biases: bandwidth only
        }
        let (r, stand_in) = rates.for_type(t.ggml_type);
        if stand_in {
            let s = format!("{} measured as {}", t.ggml_type, r.ggml_type);
            if !stand_ins.contains(&s) {
                stand_ins.push(s);
            }
        }
        if let Some(wps) = r.decode_weights_per_s {
            compute_s += t.n_elements as f64 / wps;
            if !r.bandwidth_bound {
                compute_bound_s += t.n_elements as f64 / wps;
            }
        }
    }
    if !stand_ins.is_empty() && rates.measured {
        notes.push(format!(
            "the benchmark did not measure every type; nearest measured type used: {}",
            stand_ins.join(", ")
        ));
    }
    CpuTerms {
        bandwidth_s: bytes / rates.effective_bandwidth_bytes_per_s,
        compute_s,
        compute_bound_s,
    }
}

/// Seconds of prefill for a set of tensors: `(per prompt token, once per prompt)`, the first at
/// `flops(type)`, the second at `once(tensor)` seconds each.
///
/// A prompt needs logits for its last token only: llama.cpp multiplies the hidden states by the
/// output projection, and by the last layer's feed-forward, for the tokens whose logits are
/// requested ([`TensorSummary::prefill_use`]): a matrix-vector product, which costs what a decoded
/// token's read of those weights costs, not their FLOP at prefill's rate. In a model with a large
/// vocabulary the output matrix is 6-21 % of the weights (Llama-3.2-1B ties a 128 k × 2048
/// embedding: 262 M of 1.24 B); counting it per token predicted prefill that much too slow
/// (measured with bench/bench-accuracy.sh). The benchmark's FLOP rates leave the same matrices
/// out of their models' per-token work (`bench::runner`).
fn prefill_s(
    tensors: &[&TensorSummary],
    n_layers: u32,
    tied: bool,
    flops: impl Fn(GgmlType) -> f64,
    once: impl Fn(&TensorSummary) -> f64,
) -> (f64, f64) {
    let mut per_token = 0.0;
    let mut once_s = 0.0;
    for t in tensors {
        match t.prefill_use(n_layers, tied) {
            PrefillUse::PerToken => per_token += 2.0 * t.n_elements as f64 / flops(t.ggml_type),
            PrefillUse::OncePerPrompt => once_s += once(t),
            PrefillUse::Never => {}
        }
    }
    (per_token, once_s)
}

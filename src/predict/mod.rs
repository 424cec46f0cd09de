//! The speed and memory model: from a machine (`HardwareProfile` + `BenchResult`) and a model
//! (shape, tensor table, file size) to memory need, placement, load time, time to first token,
//! decode speed and seconds per turn, with the factor that limits it.
//!
//! The physics: decode time per token is
//! `overhead + max(bytes read / effective bandwidth, Σ_type weights of type / weights_per_s[type])`,
//! summed per tensor by its own type; prefill is compute, `2 × weights` FLOP per token plus
//! attention over the context; a turn is `prompt / prefill + response / decode`. Everything here
//! is a pure function of its inputs. Knows nothing about files, the registry or the network.

pub mod rates;

use serde::{Deserialize, Serialize};

use crate::gguf::{GgmlType, ModelShape, TensorSummary};
use crate::profile::HardwareProfile;
use crate::types::bench::BenchResult;
pub use rates::{CpuRates, GpuRates, TypeRate};

/// Version of the `Prediction` JSON form.
pub const PREDICTION_SCHEMA_VERSION: u32 = 1;

/// VRAM each GPU keeps for itself and the CUDA/ROCm context, cuBLAS workspace and driver
/// (nvidia-smi shows 300–600 MiB used by an idle llama.cpp context).
pub const GPU_RESERVED_BYTES: u64 = 600 << 20;

/// Micro-batch llama.cpp evaluates at once (`n_ubatch`, default 512); sizes the compute buffers.
pub const UBATCH_TOKENS: u64 = 512;

/// Disk read rate assumed for a cold load: a SATA SSD or a cloud block volume. An NVMe drive is
/// faster, a spinning disk 2–4× slower (the seed server needed 135 s to warm up a 7.3 GiB file).
pub const ASSUMED_DISK_READ_BYTES_PER_S: f64 = 250e6;

pub use crate::types::workload::Workload;

/// A model as the predictor sees it. A registry entry gives it through `tensors_for`; a local
/// GGUF file through its header.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInput {
    /// Registry id or file path, for messages.
    pub label: String,
    pub shape: ModelShape,
    pub tensors: Vec<TensorSummary>,
    pub file_bytes: u64,
    /// True when `file_bytes` is the tensor-table estimate, not the real size.
    pub file_bytes_estimated: bool,
}

impl ModelInput {
    /// From what a GGUF header gives: shape, tensor table and the file's size.
    pub fn from_gguf(
        label: impl Into<String>,
        shape: ModelShape,
        tensors: Vec<TensorSummary>,
        file_bytes: u64,
    ) -> Self {
        ModelInput {
            label: label.into(),
            shape,
            tensors,
            file_bytes,
            file_bytes_estimated: false,
        }
    }

    /// Parameters in the weight matrices (everything but 1-D norms and biases).
    pub fn parameters(&self) -> u64 {
        self.tensors
            .iter()
            .filter(|t| t.dims.len() >= 2)
            .map(|t| t.n_elements)
            .sum()
    }
}

/// Options that are not part of the machine or the model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PredictOptions {
    /// Measured/predicted ratio of turn time from an earlier verification run on this machine;
    /// multiplies the predicted prefill and decode times (1.0 = no correction); load time, which
    /// depends on the disk, is not scaled.
    pub correction: f64,
    /// Keep everything on the CPU even when a GPU could take layers.
    pub cpu_only: bool,
}

impl Default for PredictOptions {
    fn default() -> Self {
        PredictOptions {
            correction: 1.0,
            cpu_only: false,
        }
    }
}

/// Memory a model needs at a given context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryNeed {
    /// All tensor data (the file, less header and tokenizer).
    pub weights_bytes: u64,
    /// K and V for every layer at the workload's context, F16 cache.
    pub kv_cache_bytes: u64,
    /// llama.cpp's compute buffer for one micro-batch (see [`compute_buffer_bytes`]).
    pub compute_buffer_bytes: u64,
    pub total_bytes: u64,
}

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlacementKind {
    /// Every layer on the CPU, weights in RAM.
    Cpu,
    /// Every layer in GPU memory (one or several GPUs).
    Gpu,
    /// Some layers on GPUs, the rest on the CPU.
    Split,
}

/// Layers one GPU holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuShare {
    pub index: u32,
    pub name: String,
    pub layers: u32,
    /// Weights, KV cache and compute buffer placed on this GPU.
    pub bytes: u64,
    /// What this GPU can give a model (VRAM less the reserve).
    pub capacity_bytes: u64,
}

/// Where the model's layers go and what that costs in RAM and VRAM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub kind: PlacementKind,
    pub n_layers: u32,
    /// Layers offloaded (llama.cpp `n_gpu_layers`; the output layer counts when all are).
    pub gpu_layers: u32,
    pub gpus: Vec<GpuShare>,
    /// RAM the model needs on the host side (all of it on unified memory).
    pub ram_bytes: u64,
    /// VRAM used over all GPUs.
    pub vram_bytes: u64,
    /// The GPUs could not hold one layer more: with this many layers offloaded the rest stays on
    /// the CPU. `None` when everything is on one kind of device.
    #[serde(default)]
    pub split_reason: Option<String>,
}

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

/// Everything predicted for one model on one machine for one workload. Times include the
/// correction factor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub schema_version: u32,
    pub model: String,
    /// False when no benchmark covered the device doing the work ("unmeasured").
    pub measured: bool,
    pub workload: Workload,
    pub parameters: u64,
    pub file_bytes: u64,
    pub file_bytes_estimated: bool,
    pub memory: MemoryNeed,
    pub placement: Placement,
    /// Weight bytes read per decoded token (token embedding is a lookup and not counted).
    pub weight_bytes_per_token: u64,
    /// Effective bandwidth of the device that holds most layers.
    pub effective_bandwidth_bytes_per_s: f64,
    pub decode_tokens_per_s: f64,
    pub prefill_tokens_per_s: f64,
    pub prefill_s: f64,
    pub decode_s: f64,
    pub time_to_first_token_s: f64,
    /// Seconds per turn with the model loaded.
    pub turn_s: f64,
    pub cold_load_s: f64,
    /// First turn after a restart: load plus one turn.
    pub cold_turn_s: f64,
    pub limited_by: Limit,
    pub correction: f64,
    /// How each figure was obtained, stand-ins and assumptions.
    pub notes: Vec<String>,
}

/// Memory a model needs with `ctx` tokens of context.
pub fn memory_need(shape: &ModelShape, tensors: &[TensorSummary], ctx: u32) -> MemoryNeed {
    let weights_bytes: u64 = tensors.iter().map(|t| t.n_bytes).sum();
    let kv_cache_bytes = shape.kv_cache_bytes(ctx as u64, 2);
    let compute_buffer_bytes = compute_buffer_bytes(shape, ctx);
    MemoryNeed {
        weights_bytes,
        kv_cache_bytes,
        compute_buffer_bytes,
        total_bytes: weights_bytes + kv_cache_bytes + compute_buffer_bytes,
    }
}

/// llama.cpp's compute buffer for one 512-token micro-batch: half of the f32 logits row
/// (`vocab`), the two feed-forward activations (`2 × n_ff`) and the attention scores of every
/// head (`n_heads × ctx`, ctx capped at 4,096) per token. The halving is an empirical fit, since
/// llama.cpp reuses buffers between operations: it gives 117 MiB for Llama-2-7B at 2,048 context
/// (llama.cpp logs ~164 MiB) and 281 MiB for Llama-3-8B at 4,096 (~260 MiB), within ±30 %.
pub fn compute_buffer_bytes(shape: &ModelShape, ctx: u32) -> u64 {
    let per_token = shape.vocab_size as u64
        + 2 * shape.n_ff as u64
        + shape.n_heads as u64 * ctx.min(4096) as u64;
    4 * UBATCH_TOKENS * per_token / 2
}

/// Bytes of the tensors of layer `i` (`blk.{i}.`).
fn layer_bytes(tensors: &[TensorSummary], n_layers: u32) -> Vec<u64> {
    let mut v = vec![0u64; n_layers as usize];
    for t in tensors {
        if let Some(rest) = t.name.strip_prefix("blk.") {
            if let Some(i) = rest.split('.').next().and_then(|s| s.parse::<usize>().ok()) {
                if i < v.len() {
                    v[i] += t.n_bytes;
                }
            }
        }
    }
    v
}

/// Decide where the layers go: all on GPUs when they fit (filling the largest GPU first and
/// using as few as hold it), else as many layers on GPUs as fit and the rest on the CPU, else all
/// on the CPU. The token embedding stays on the CPU in llama.cpp either way.
pub fn place(
    gpus: &[GpuRates],
    shape: &ModelShape,
    tensors: &[TensorSummary],
    need: &MemoryNeed,
    cpu_only: bool,
) -> Placement {
    let n_layers = shape.n_layers;
    let layers = layer_bytes(tensors, n_layers);
    let kv_per_layer = need.kv_cache_bytes / n_layers.max(1) as u64;
    let embd: u64 = tensors
        .iter()
        .filter(|t| t.is_token_embedding())
        .map(|t| t.n_bytes)
        .sum();
    let layered: u64 = layers.iter().sum();
    // Output layer (output + output_norm). A tied model multiplies by the embedding table for the
    // logits, so llama.cpp puts a second copy of it with the output layer.
    let tied_copy = if shape.tied_embeddings { embd } else { 0 };
    let head = need.weights_bytes.saturating_sub(layered + embd) + tied_copy;
    let cpu_all = Placement {
        kind: PlacementKind::Cpu,
        n_layers,
        gpu_layers: 0,
        gpus: Vec::new(),
        ram_bytes: need.total_bytes,
        vram_bytes: 0,
        split_reason: None,
    };
    if cpu_only || gpus.is_empty() {
        return cpu_all;
    }
    let mut order: Vec<&GpuRates> = gpus.iter().collect();
    order.sort_by(|a, b| {
        b.vram_total_bytes
            .cmp(&a.vram_total_bytes)
            .then(a.index.cmp(&b.index))
    });
    let capacity = |g: &GpuRates| g.vram_total_bytes.saturating_sub(GPU_RESERVED_BYTES);
    let unified = order.iter().all(|g| g.unified_memory);

    // Fill GPUs in order: each used GPU carries its own compute buffer; the last carries the head.
    let mut shares: Vec<GpuShare> = Vec::new();
    let mut next_layer = 0usize;
    for g in &order {
        let cap = capacity(g);
        let mut used = need.compute_buffer_bytes;
        if used >= cap {
            continue;
        }
        let mut count = 0u32;
        while next_layer < layers.len() && used + layers[next_layer] + kv_per_layer <= cap {
            used += layers[next_layer] + kv_per_layer;
            next_layer += 1;
            count += 1;
        }
        if count > 0 {
            shares.push(GpuShare {
                index: g.index,
                name: g.name.clone(),
                layers: count,
                bytes: used,
                capacity_bytes: cap,
            });
        }
        if next_layer == layers.len() {
            break;
        }
    }
    let offloaded = next_layer as u32;
    if offloaded == 0 {
        return cpu_all;
    }
    // The output layer goes to the GPU that took the last layer, if it has room.
    let mut all = false;
    if offloaded == n_layers {
        if let Some(last) = shares.last_mut() {
            if last.bytes + head <= last.capacity_bytes {
                last.bytes += head;
                all = true;
            }
        }
    }
    let vram_bytes: u64 = shares.iter().map(|s| s.bytes).sum();
    let host_small = embd + need.compute_buffer_bytes / 4;
    if all {
        return Placement {
            kind: PlacementKind::Gpu,
            n_layers,
            gpu_layers: n_layers + 1,
            gpus: shares,
            ram_bytes: if unified {
                need.total_bytes
            } else {
                host_small
            },
            vram_bytes,
            split_reason: None,
        };
    }
    let cpu_layers_bytes: u64 =
        layers[next_layer..].iter().sum::<u64>() + kv_per_layer * (n_layers - offloaded) as u64;
    let total_cap: u64 = order.iter().map(|g| capacity(g)).sum();
    Placement {
        kind: PlacementKind::Split,
        n_layers,
        gpu_layers: offloaded,
        ram_bytes: if unified { need.total_bytes } else { embd + head + cpu_layers_bytes + need.compute_buffer_bytes },
        vram_bytes,
        split_reason: Some(format!(
            "{:.1} GiB needed in GPU memory, {:.1} GiB usable over {} GPU(s) after {} MiB reserved each",
            gib(need.total_bytes - embd),
            gib(total_cap),
            order.len(),
            GPU_RESERVED_BYTES >> 20
        )),
        gpus: shares,
    }
}

fn gib(b: u64) -> f64 {
    b as f64 / (1u64 << 30) as f64
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

/// The output projection: `output.weight`, or the token embedding when the model ties them.
fn is_output_matrix(t: &TensorSummary, tied: bool) -> bool {
    t.name == "output.weight" || (tied && t.is_token_embedding())
}

/// Seconds of prefill compute for a set of tensors at `flops(type)`: `(per prompt token, once per
/// prompt)`.
///
/// A prompt needs logits for its last token only: llama.cpp multiplies the hidden states by the
/// output projection for the tokens whose logits are requested, so the output matrix costs one
/// token's worth per prompt, not one per prompt token. In a model with a large vocabulary that
/// matrix is 6-21 % of the weights (Llama-3.2-1B ties a 128 k × 2048 embedding: 262 M of
/// 1.24 B); counting it per token predicted prefill that much too slow (measured with
/// bench/bench-accuracy.sh). llama.cpp also skips the last layer's feed-forward for those tokens
/// (2-6 % of the weights); that is not taken out here because the benchmark's FLOPS figure still
/// counts its own model's last feed-forward and output matrix per token, and the two must change
/// together.
fn prefill_s(
    tensors: &[&TensorSummary],
    tied: bool,
    flops: impl Fn(GgmlType) -> f64,
) -> (f64, f64) {
    let mut per_token = 0.0;
    let mut once = 0.0;
    for t in tensors {
        if t.dims.len() < 2 || (t.is_token_embedding() && !tied) {
            continue;
        }
        let s = 2.0 * t.n_elements as f64 / flops(t.ggml_type);
        if is_output_matrix(t, tied) {
            once += s;
        } else {
            per_token += s;
        }
    }
    (per_token, once)
}

/// Predict a model's memory, placement and speed on a machine for a workload.
pub fn predict(
    hw: &HardwareProfile,
    bench: Option<&BenchResult>,
    model: &ModelInput,
    workload: &Workload,
    opts: &PredictOptions,
) -> Prediction {
    let shape = &model.shape;
    let tied = shape.tied_embeddings;
    let mut notes = Vec::new();
    let cpu = rates::cpu_rates(hw, bench);
    let gpus = rates::gpu_rates(hw, bench);
    let need = memory_need(shape, &model.tensors, workload.context_tokens);
    let placement = place(&gpus, shape, &model.tensors, &need, opts.cpu_only);

    // Which tensors sit where: layer i is on a GPU when i < gpu_layers (filled in order).
    let on_gpu = |t: &TensorSummary| -> Option<u32> {
        if placement.kind == PlacementKind::Cpu {
            return None;
        }
        if t.is_token_embedding() {
            // The lookup copy stays on the CPU; a tied model's output copy sits with the output.
            return if tied && placement.kind == PlacementKind::Gpu {
                placement.gpus.last().map(|s| s.index)
            } else {
                None
            };
        }
        let layer = t
            .name
            .strip_prefix("blk.")
            .and_then(|r| r.split('.').next())
            .and_then(|s| s.parse::<u32>().ok());
        let mut first = 0u32;
        match layer {
            Some(i) => {
                for s in &placement.gpus {
                    if i < first + s.layers {
                        return Some(s.index);
                    }
                    first += s.layers;
                }
                None
            }
            // Output layer: on the last GPU when everything is offloaded.
            None if placement.kind == PlacementKind::Gpu => placement.gpus.last().map(|s| s.index),
            None => None,
        }
    };
    let mut cpu_tensors: Vec<&TensorSummary> = Vec::new();
    let mut gpu_tensors: Vec<(u32, &TensorSummary)> = Vec::new();
    for t in &model.tensors {
        match on_gpu(t) {
            Some(g) => gpu_tensors.push((g, t)),
            None => cpu_tensors.push(t),
        }
    }
    let cpu_layer_share =
        1.0 - placement.gpu_layers.min(shape.n_layers) as f64 / shape.n_layers.max(1) as f64;

    // KV cache read per decoded token at the turn's average position.
    let avg_pos = workload.prompt_tokens as f64 + workload.response_tokens as f64 / 2.0;
    let kv_read =
        2.0 * shape.n_layers as f64 * avg_pos * (shape.n_kv_heads * shape.head_dim) as f64 * 2.0;

    // Decode.
    let cpu_terms = cpu_decode_terms(
        &cpu,
        &cpu_tensors,
        kv_read * cpu_layer_share,
        tied,
        &mut notes,
    );
    let cpu_s = if cpu_tensors
        .iter()
        .any(|t| t.dims.len() >= 2 && (!t.is_token_embedding() || tied))
    {
        cpu_terms.bandwidth_s.max(cpu_terms.compute_s)
    } else {
        0.0
    };
    let mut gpu_s = 0.0;
    for g in &gpus {
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
    let limited_by = match placement.kind {
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
    };

    // Prefill: weights × 2 FLOP per token, plus attention (QKᵀ and AV: 4 × q_dim FLOP per
    // earlier token per layer), at the average position of the prompt.
    let attn_flop_per_token = 4.0
        * shape.n_layers as f64
        * (shape.n_heads * shape.head_dim) as f64
        * (workload.prompt_tokens as f64 / 2.0);
    let (cpu_prefill, cpu_prefill_once) = prefill_s(&cpu_tensors, tied, |t| {
        cpu.for_type(t).0.prefill_flops_per_s
    });
    let mut gpu_prefill = 0.0;
    let mut gpu_prefill_once = 0.0;
    for g in &gpus {
        let ts: Vec<&TensorSummary> = gpu_tensors
            .iter()
            .filter(|(i, _)| *i == g.index)
            .map(|(_, t)| *t)
            .collect();
        let (per_token, once) = prefill_s(&ts, tied, |_| g.prefill_flops_per_s);
        gpu_prefill += per_token;
        gpu_prefill_once += once;
    }
    let attn_flops_rate = match placement.kind {
        PlacementKind::Cpu => cpu.for_type(GgmlType::F16).0.prefill_flops_per_s,
        _ => gpus
            .iter()
            .map(|g| g.prefill_flops_per_s)
            .fold(0.0, f64::max),
    };
    let prefill_token_s = cpu_prefill + gpu_prefill + attn_flop_per_token / attn_flops_rate;

    let c = if opts.correction.is_finite() && opts.correction > 0.0 {
        opts.correction
    } else {
        1.0
    };
    let decode_tokens_per_s = 1.0 / (token_s * c);
    let prefill_once_s = cpu_prefill_once + gpu_prefill_once;
    let prompt = workload.prompt_tokens as f64;
    let prefill_s = (prompt * prefill_token_s + prefill_once_s) * c;
    let prefill_tokens_per_s = if prompt > 0.0 {
        prompt / prefill_s
    } else {
        1.0 / ((prefill_token_s + prefill_once_s) * c)
    };
    let decode_s = workload.response_tokens as f64 / decode_tokens_per_s;
    let time_to_first_token_s = prefill_s + 1.0 / decode_tokens_per_s;
    let turn_s = prefill_s + decode_s;
    // The correction comes from a measured turn (prefill and decode): loading depends on the
    // disk, not on the compute the ratio describes, so it is not scaled.
    let cold_load_s = model.file_bytes as f64 / ASSUMED_DISK_READ_BYTES_PER_S + cpu.load_overhead_s;

    let weight_bytes_per_token: u64 = model
        .tensors
        .iter()
        .filter(|t| !t.is_token_embedding() || tied)
        .map(|t| t.n_bytes)
        .sum();
    let effective_bandwidth_bytes_per_s = match placement.kind {
        PlacementKind::Cpu => cpu.effective_bandwidth_bytes_per_s,
        _ if cpu_s > gpu_s => cpu.effective_bandwidth_bytes_per_s,
        _ => placement
            .gpus
            .first()
            .and_then(|s| gpus.iter().find(|g| g.index == s.index))
            .map_or(cpu.effective_bandwidth_bytes_per_s, |g| {
                g.effective_bandwidth_bytes_per_s
            }),
    };
    let gpu_measured = gpus.iter().all(|g| g.measured);
    let measured = match placement.kind {
        PlacementKind::Cpu => cpu.measured,
        PlacementKind::Gpu => gpu_measured,
        PlacementKind::Split => cpu.measured && gpu_measured,
    };

    // Notes: how each figure was obtained.
    if placement.kind != PlacementKind::Gpu {
        notes.push(format!(
            "CPU: {:.1} GB/s effective ({})",
            cpu.effective_bandwidth_bytes_per_s / 1e9,
            cpu.bandwidth_source
        ));
        if !cpu.measured {
            notes.push(format!(
                "CPU compute ceiling unmeasured: per-core figures for {} × {} cores",
                hw.cpu.simd_level.as_str(),
                hw.compute_cores()
            ));
        }
    }
    for s in &placement.gpus {
        if let Some(g) = gpus.iter().find(|g| g.index == s.index) {
            notes.push(format!(
                "GPU {} {}: {} layers, {:.0} GB/s effective ({}), assumes a llama.cpp build with its backend",
                g.index,
                g.name,
                s.layers,
                g.effective_bandwidth_bytes_per_s / 1e9,
                g.bandwidth_source
            ));
        }
    }
    if let Some(r) = &placement.split_reason {
        notes.push(format!("split: {r}"));
    }
    if workload.context_tokens > shape.context_length {
        notes.push(format!(
            "context {} exceeds the model's trained context {}: llama.cpp needs RoPE scaling and answers degrade",
            workload.context_tokens, shape.context_length
        ));
    }
    if model.file_bytes_estimated {
        notes.push("file size estimated from the tensor table (no published size)".into());
    }
    notes.push(format!(
        "cold load: {:.1} GB at an assumed {:.0} MB/s disk read + {:.1} s setup",
        model.file_bytes as f64 / 1e9,
        ASSUMED_DISK_READ_BYTES_PER_S / 1e6,
        cpu.load_overhead_s
    ));
    if c != 1.0 {
        notes.push(format!(
            "times scaled by the correction factor {c:.2} from an earlier verification"
        ));
    }
    if prefill_s > decode_s {
        notes.push(format!(
            "prompt processing takes {prefill_s:.1} s of the turn, more than generation"
        ));
    }

    Prediction {
        schema_version: PREDICTION_SCHEMA_VERSION,
        model: model.label.clone(),
        measured,
        workload: *workload,
        parameters: model.parameters(),
        file_bytes: model.file_bytes,
        file_bytes_estimated: model.file_bytes_estimated,
        memory: need,
        placement,
        weight_bytes_per_token,
        effective_bandwidth_bytes_per_s,
        decode_tokens_per_s,
        prefill_tokens_per_s,
        prefill_s,
        decode_s,
        time_to_first_token_s,
        turn_s,
        cold_load_s,
        cold_turn_s: cold_load_s + turn_s,
        limited_by,
        correction: c,
        notes,
    }
}

#[cfg(test)]
mod tests;

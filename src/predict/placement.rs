//! Where the layers go: on GPUs as far as they fit, the rest on the CPU, and which tensors that
//! puts on which device.

use indicatif::HumanBytes;
use serde::{Deserialize, Serialize};

use super::{GpuRates, MemoryNeed};
use crate::gguf::{ModelShape, TensorSummary};

/// VRAM each GPU keeps for itself and the CUDA/ROCm context, cuBLAS workspace and driver
/// (nvidia-smi shows 300–600 MiB used by an idle llama.cpp context).
pub const GPU_RESERVED_BYTES: u64 = 600 << 20;

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
        ram_bytes: if unified {
            need.total_bytes
        } else {
            embd + head + cpu_layers_bytes + need.compute_buffer_bytes
        },
        vram_bytes,
        split_reason: Some(format!(
            "{} needed in GPU memory, {} usable over {} GPU(s) after {} reserved each",
            HumanBytes(need.total_bytes - embd),
            HumanBytes(total_cap),
            order.len(),
            HumanBytes(GPU_RESERVED_BYTES)
        )),
        gpus: shares,
    }
}

/// The model's tensors by the device that reads them while decoding.
pub(super) struct TensorSplit<'a> {
    pub(super) cpu: Vec<&'a TensorSummary>,
    /// `(GPU index, tensor)`.
    pub(super) gpu: Vec<(u32, &'a TensorSummary)>,
}

/// Which tensors sit where: layer i is on a GPU when i < gpu_layers (filled in order).
pub(super) fn split_tensors<'a>(
    placement: &Placement,
    tensors: &'a [TensorSummary],
    tied: bool,
) -> TensorSplit<'a> {
    let mut cpu_tensors: Vec<&TensorSummary> = Vec::new();
    let mut gpu_tensors: Vec<(u32, &TensorSummary)> = Vec::new();
    for t in tensors {
        match tensor_gpu(placement, t, tied) {
            Some(g) => gpu_tensors.push((g, t)),
            None => cpu_tensors.push(t),
        }
    }
    TensorSplit {
        cpu: cpu_tensors,
        gpu: gpu_tensors,
    }
}

/// The GPU that holds `t` under `placement`, or `None` for the CPU.
fn tensor_gpu(placement: &Placement, t: &TensorSummary, tied: bool) -> Option<u32> {
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
}

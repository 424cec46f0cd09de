//! Memory a model needs: weights, KV cache and llama.cpp's compute buffer.

use serde::{Deserialize, Serialize};

use crate::gguf::{ModelShape, TensorSummary};

/// Micro-batch llama.cpp evaluates at once (`n_ubatch`, default 512); sizes the compute buffers.
pub const UBATCH_TOKENS: u64 = 512;

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

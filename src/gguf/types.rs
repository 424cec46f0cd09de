//! ggml tensor types and the model shape facts shared by the GGUF writer, the reader and the
//! predictor.
//!
//! Block sizes and bytes per block follow ggml's `ggml.c` type traits table; the numeric ids are
//! the `ggml_type` enum values stored in GGUF tensor infos.

use serde::{Deserialize, Serialize};

/// A ggml tensor data type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[allow(non_camel_case_types)]
pub enum GgmlType {
    F32,
    F16,
    BF16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    Q8_K,
    IQ2_XXS,
    IQ2_XS,
    IQ3_XXS,
    IQ1_S,
    IQ4_NL,
    IQ3_S,
    IQ2_S,
    IQ4_XS,
    IQ1_M,
    I8,
    I16,
    I32,
    I64,
    F64,
    TQ1_0,
    TQ2_0,
    MXFP4,
}

use GgmlType::*;

const TABLE: &[(GgmlType, u32, &str, u64, u64)] = &[
    // (type, ggml id, name, elements per block, bytes per block)
    (F32, 0, "F32", 1, 4),
    (F16, 1, "F16", 1, 2),
    (Q4_0, 2, "Q4_0", 32, 18),
    (Q4_1, 3, "Q4_1", 32, 20),
    (Q5_0, 6, "Q5_0", 32, 22),
    (Q5_1, 7, "Q5_1", 32, 24),
    (Q8_0, 8, "Q8_0", 32, 34),
    (Q2_K, 10, "Q2_K", 256, 84),
    (Q3_K, 11, "Q3_K", 256, 110),
    (Q4_K, 12, "Q4_K", 256, 144),
    (Q5_K, 13, "Q5_K", 256, 176),
    (Q6_K, 14, "Q6_K", 256, 210),
    (Q8_K, 15, "Q8_K", 256, 292),
    (IQ2_XXS, 16, "IQ2_XXS", 256, 66),
    (IQ2_XS, 17, "IQ2_XS", 256, 74),
    (IQ3_XXS, 18, "IQ3_XXS", 256, 98),
    (IQ1_S, 19, "IQ1_S", 256, 50),
    (IQ4_NL, 20, "IQ4_NL", 32, 18),
    (IQ3_S, 21, "IQ3_S", 256, 110),
    (IQ2_S, 22, "IQ2_S", 256, 82),
    (IQ4_XS, 23, "IQ4_XS", 256, 136),
    (I8, 24, "I8", 1, 1),
    (I16, 25, "I16", 1, 2),
    (I32, 26, "I32", 1, 4),
    (I64, 27, "I64", 1, 8),
    (F64, 28, "F64", 1, 8),
    (IQ1_M, 29, "IQ1_M", 256, 56),
    (BF16, 30, "BF16", 1, 2),
    (TQ1_0, 34, "TQ1_0", 256, 54),
    (TQ2_0, 35, "TQ2_0", 256, 66),
    (MXFP4, 39, "MXFP4", 32, 17),
];

impl GgmlType {
    fn row(self) -> &'static (GgmlType, u32, &'static str, u64, u64) {
        // Invariant: every variant has exactly one row in TABLE (checked by a test).
        TABLE
            .iter()
            .find(|r| r.0 == self)
            .expect("every GgmlType is in TABLE")
    }

    /// The `ggml_type` id stored in GGUF.
    pub fn id(self) -> u32 {
        self.row().1
    }

    pub fn name(self) -> &'static str {
        self.row().2
    }

    /// Elements per quantisation block.
    pub fn block_elements(self) -> u64 {
        self.row().3
    }

    /// Bytes per quantisation block.
    pub fn block_bytes(self) -> u64 {
        self.row().4
    }

    pub fn from_id(id: u32) -> Option<GgmlType> {
        TABLE.iter().find(|r| r.1 == id).map(|r| r.0)
    }

    /// Parse a name such as `q4_k` or `Q4_K` (case-insensitive).
    pub fn from_name(name: &str) -> Option<GgmlType> {
        TABLE
            .iter()
            .find(|r| r.2.eq_ignore_ascii_case(name))
            .map(|r| r.0)
    }

    /// Bytes of a tensor of `n_elements` elements (a multiple of the block size).
    pub fn bytes_for(self, n_elements: u64) -> u64 {
        n_elements.div_ceil(self.block_elements()) * self.block_bytes()
    }

    /// Bits per weight.
    pub fn bits_per_weight(self) -> f64 {
        self.block_bytes() as f64 * 8.0 / self.block_elements() as f64
    }

    /// Whether llama.cpp can quantise a row of `ne0` elements to this type.
    pub fn fits_row(self, ne0: u64) -> bool {
        ne0.is_multiple_of(self.block_elements())
    }

    pub fn all() -> impl Iterator<Item = GgmlType> {
        TABLE.iter().map(|r| r.0)
    }
}

impl std::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One tensor of a model: name, type, dimensions (ggml order: `dims[0]` is the row width) and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorSummary {
    pub name: String,
    pub ggml_type: GgmlType,
    pub dims: Vec<u64>,
    pub n_elements: u64,
    pub n_bytes: u64,
}

impl TensorSummary {
    pub fn new(name: impl Into<String>, ggml_type: GgmlType, dims: Vec<u64>) -> TensorSummary {
        let n_elements = dims.iter().product();
        TensorSummary {
            name: name.into(),
            ggml_type,
            n_bytes: ggml_type.bytes_for(n_elements),
            dims,
            n_elements,
        }
    }

    /// True for the token embedding table, which decode reads one row of per token (a lookup),
    /// not in full.
    pub fn is_token_embedding(&self) -> bool {
        self.name == "token_embd.weight"
    }

    /// How often prefill multiplies this matrix: per prompt token, once per prompt (for the
    /// tokens whose logits are asked for), or never (the embedding lookup, norms and biases).
    ///
    /// llama.cpp evaluates the output projection for the tokens that need logits only, and in the
    /// last layer it keeps only those rows after the attention (`inp_out_ids`), so the last
    /// layer's feed-forward runs once per prompt too. In a model cut to a few layers that is a
    /// large share of the weights: 1 of 2 layers' feed-forward, 80 % of its weights, in a
    /// 4096-wide, 2-layer model.
    pub fn prefill_use(&self, n_layers: u32, tied: bool) -> PrefillUse {
        if self.dims.len() < 2 || (self.is_token_embedding() && !tied) {
            return PrefillUse::Never;
        }
        if self.name == "output.weight" || (tied && self.is_token_embedding()) {
            return PrefillUse::OncePerPrompt;
        }
        let last_ffn = n_layers
            .checked_sub(1)
            .map(|l| format!("blk.{l}.ffn_"))
            .is_some_and(|prefix| self.name.starts_with(&prefix));
        if last_ffn {
            PrefillUse::OncePerPrompt
        } else {
            PrefillUse::PerToken
        }
    }
}

/// See [`TensorSummary::prefill_use`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefillUse {
    PerToken,
    OncePerPrompt,
    Never,
}

/// Weights a prompt token is multiplied by, and those multiplied once per prompt (see
/// [`TensorSummary::prefill_use`]).
pub fn prefill_weights(tensors: &[TensorSummary], n_layers: u32, tied: bool) -> (u64, u64) {
    tensors.iter().fold((0, 0), |(per_token, once), t| {
        match t.prefill_use(n_layers, tied) {
            PrefillUse::PerToken => (per_token + t.n_elements, once),
            PrefillUse::OncePerPrompt => (per_token, once + t.n_elements),
            PrefillUse::Never => (per_token, once),
        }
    })
}

/// The transformer shape facts the predictor and the writer need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelShape {
    /// GGUF `general.architecture`: `llama`, `qwen2`, `gemma2`, `phi3`, ...
    pub architecture: String,
    pub n_layers: u32,
    /// Embedding (hidden) size.
    pub n_embd: u32,
    /// Feed-forward inner size.
    pub n_ff: u32,
    pub n_heads: u32,
    pub n_kv_heads: u32,
    pub head_dim: u32,
    pub vocab_size: u32,
    /// Trained context length.
    pub context_length: u32,
    /// Whether the output projection shares the token embedding (no `output.weight`).
    #[serde(default)]
    pub tied_embeddings: bool,
}

impl ModelShape {
    /// KV cache bytes at `ctx` tokens with `bytes_per_element` (2 for the default F16 cache).
    pub fn kv_cache_bytes(&self, ctx: u64, bytes_per_element: u64) -> u64 {
        2 * self.n_layers as u64
            * ctx
            * self.n_kv_heads as u64
            * self.head_dim as u64
            * bytes_per_element
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, dims: Vec<u64>) -> TensorSummary {
        TensorSummary::new(name, GgmlType::Q4_K, dims)
    }

    #[test]
    fn prefill_multiplies_the_last_layers_feed_forward_and_the_output_once() {
        let tensors = [
            t("token_embd.weight", vec![256, 1000]),
            t("blk.0.attn_q.weight", vec![256, 256]),
            t("blk.0.ffn_up.weight", vec![256, 512]),
            t("blk.1.attn_q.weight", vec![256, 256]),
            t("blk.1.ffn_up.weight", vec![256, 512]),
            t("blk.1.ffn_down.weight", vec![512, 256]),
            TensorSummary::new("blk.1.attn_norm.weight", GgmlType::F32, vec![256]),
            t("output.weight", vec![256, 1000]),
        ];
        let uses: Vec<PrefillUse> = tensors.iter().map(|x| x.prefill_use(2, false)).collect();
        use PrefillUse::*;
        assert_eq!(
            uses,
            [
                Never,
                PerToken,
                PerToken,
                PerToken,
                OncePerPrompt,
                OncePerPrompt,
                Never,
                OncePerPrompt
            ]
        );
        let (per_token, once) = prefill_weights(&tensors, 2, false);
        assert_eq!(per_token, 3 * 65_536 + 65_536);
        assert_eq!(once, 2 * 131_072 + 256_000);
        // Tied: the embedding is the output matrix; `blk.1` is no longer the last of 3 layers.
        let tied = &tensors[..7];
        assert_eq!(tied[0].prefill_use(3, true), OncePerPrompt);
        assert_eq!(tied[4].prefill_use(3, true), PerToken);
        // `blk.1` must not match `blk.10`.
        assert_eq!(
            t("blk.10.ffn_up.weight", vec![256, 512]).prefill_use(2, false),
            PerToken
        );
    }
}

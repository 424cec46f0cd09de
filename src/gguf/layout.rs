//! Which ggml type each tensor of a llama-style model gets under a file-type label such as
//! `Q4_K_M`, following the rules of llama.cpp's quantiser (`src/llama-quant.cpp`).
//!
//! A "Q4_K_M" file is a mix: the output projection is Q6_K, some `attn_v` and `ffn_down` layers
//! get Q6_K, and a row whose width is not a multiple of a K-quant's 256-element block falls back
//! to a legacy type (Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0). The GGUF writer uses this to build
//! benchmark models with realistic layouts, and the predictor uses it to estimate the tensor table
//! of a registry model whose header it has not read.

use super::types::{GgmlType, ModelShape, TensorSummary};

/// A llama.cpp file type (`LLAMA_FTYPE_MOSTLY_*`), the label in a GGUF file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[allow(non_camel_case_types)]
pub enum FileType {
    F16,
    BF16,
    Q8_0,
    Q6_K,
    Q5_K_M,
    Q5_K_S,
    Q5_0,
    Q4_K_M,
    Q4_K_S,
    Q4_0,
    Q3_K_M,
    Q3_K_L,
    Q2_K,
    IQ4_XS,
}

/// Every file type, in the order of the enum.
pub const ALL: [FileType; 14] = {
    use FileType::*;
    [
        F16, BF16, Q8_0, Q6_K, Q5_K_M, Q5_K_S, Q5_0, Q4_K_M, Q4_K_S, Q4_0, Q3_K_M, Q3_K_L, Q2_K,
        IQ4_XS,
    ]
};

impl FileType {
    /// Parse a label as found in file names (`Q4_K_M`, `q4_k_m`, `f16`).
    pub fn parse(label: &str) -> Option<FileType> {
        use FileType::*;
        Some(match label.to_ascii_uppercase().as_str() {
            "F16" | "FP16" => F16,
            "BF16" => BF16,
            "Q8_0" => Q8_0,
            "Q6_K" => Q6_K,
            "Q5_K_M" => Q5_K_M,
            "Q5_K_S" => Q5_K_S,
            "Q5_0" => Q5_0,
            "Q4_K_M" => Q4_K_M,
            "Q4_K_S" => Q4_K_S,
            "Q4_0" => Q4_0,
            "Q3_K_M" => Q3_K_M,
            "Q3_K_L" => Q3_K_L,
            "Q2_K" => Q2_K,
            "IQ4_XS" => IQ4_XS,
            _ => return None,
        })
    }

    pub fn label(self) -> &'static str {
        use FileType::*;
        match self {
            F16 => "F16",
            BF16 => "BF16",
            Q8_0 => "Q8_0",
            Q6_K => "Q6_K",
            Q5_K_M => "Q5_K_M",
            Q5_K_S => "Q5_K_S",
            Q5_0 => "Q5_0",
            Q4_K_M => "Q4_K_M",
            Q4_K_S => "Q4_K_S",
            Q4_0 => "Q4_0",
            Q3_K_M => "Q3_K_M",
            Q3_K_L => "Q3_K_L",
            Q2_K => "Q2_K",
            IQ4_XS => "IQ4_XS",
        }
    }

    /// llama.cpp's `LLAMA_FTYPE_MOSTLY_*` number, as stored in `general.file_type`.
    pub fn llama_ftype(self) -> u32 {
        use FileType::*;
        match self {
            F16 => 1,
            BF16 => 32,
            Q8_0 => 7,
            Q6_K => 18,
            Q5_K_M => 17,
            Q5_K_S => 16,
            Q5_0 => 8,
            Q4_K_M => 15,
            Q4_K_S => 14,
            Q4_0 => 2,
            Q3_K_M => 12,
            Q3_K_L => 13,
            Q2_K => 10,
            IQ4_XS => 30,
        }
    }

    /// The file type of a `general.file_type` number, when it is one of these.
    pub fn from_llama_ftype(id: u32) -> Option<FileType> {
        ALL.into_iter().find(|ft| ft.llama_ftype() == id)
    }

    /// The file type whose main matrices have type `t`, when there is one (the `_M` variant
    /// of a K-quant).
    pub fn for_base_type(t: GgmlType) -> Option<FileType> {
        use FileType::*;
        [
            F16, BF16, Q8_0, Q6_K, Q5_K_M, Q5_0, Q4_K_M, Q4_0, Q3_K_M, Q2_K, IQ4_XS,
        ]
        .into_iter()
        .find(|ft| ft.base_type() == t)
    }

    /// The type most weight matrices get.
    pub fn base_type(self) -> GgmlType {
        use FileType::*;
        match self {
            F16 => GgmlType::F16,
            BF16 => GgmlType::BF16,
            Q8_0 => GgmlType::Q8_0,
            Q6_K => GgmlType::Q6_K,
            Q5_K_M | Q5_K_S => GgmlType::Q5_K,
            Q5_0 => GgmlType::Q5_0,
            Q4_K_M | Q4_K_S => GgmlType::Q4_K,
            Q4_0 => GgmlType::Q4_0,
            Q3_K_M | Q3_K_L => GgmlType::Q3_K,
            Q2_K => GgmlType::Q2_K,
            IQ4_XS => GgmlType::IQ4_XS,
        }
    }
}

/// llama.cpp's `use_more_bits`: the first and last eighth of the layers, and every third between.
fn use_more_bits(i_layer: u32, n_layers: u32) -> bool {
    let eighth = n_layers / 8;
    // Past the first branch `i_layer >= eighth` holds, so the subtraction cannot underflow.
    i_layer < eighth || i_layer >= 7 * n_layers / 8 || (i_layer - eighth) % 3 == 2
}

/// The legacy type llama.cpp falls back to when a row does not divide into the type's blocks.
fn fallback(t: GgmlType) -> GgmlType {
    match t {
        GgmlType::Q2_K | GgmlType::Q3_K | GgmlType::IQ4_XS => GgmlType::IQ4_NL,
        GgmlType::Q4_K => GgmlType::Q5_0,
        GgmlType::Q5_K => GgmlType::Q5_1,
        GgmlType::Q6_K => GgmlType::Q8_0,
        other => other,
    }
}

/// Role of a weight matrix within a layer, for the mixing rules.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    TokenEmbd,
    Output,
    AttnQ,
    AttnK,
    AttnV,
    AttnOut,
    FfnGate,
    FfnUp,
    FfnDown,
}

fn type_for(ft: FileType, role: Role, i_layer: u32, n_layers: u32, ne0: u64) -> GgmlType {
    use FileType as F;
    let base = ft.base_type();
    let t = match role {
        Role::Output => {
            if matches!(ft, F::F16 | F::BF16 | F::Q8_0) {
                base
            } else {
                GgmlType::Q6_K
            }
        }
        Role::TokenEmbd => match ft {
            F::Q3_K_M | F::Q3_K_L | F::Q2_K => GgmlType::Q3_K.max(base),
            _ => base,
        },
        Role::AttnV => match ft {
            F::Q4_K_M | F::Q5_K_M if use_more_bits(i_layer, n_layers) => GgmlType::Q6_K,
            F::Q4_K_S if i_layer < 4 => GgmlType::Q5_K,
            F::Q3_K_M => {
                if i_layer < 2 {
                    GgmlType::Q5_K
                } else {
                    GgmlType::Q4_K
                }
            }
            F::Q3_K_L => GgmlType::Q5_K,
            F::Q2_K => GgmlType::Q3_K,
            _ => base,
        },
        Role::FfnDown => match ft {
            F::Q4_K_M | F::Q5_K_M if use_more_bits(i_layer, n_layers) => GgmlType::Q6_K,
            F::Q4_K_S if i_layer < n_layers / 8 => GgmlType::Q5_K,
            F::Q3_K_M => {
                if i_layer < n_layers / 16 {
                    GgmlType::Q5_K
                } else {
                    GgmlType::Q4_K
                }
            }
            F::Q3_K_L => GgmlType::Q5_K,
            F::Q2_K => GgmlType::Q3_K,
            _ => base,
        },
        Role::AttnOut => match ft {
            F::Q3_K_M => GgmlType::Q4_K,
            F::Q3_K_L => GgmlType::Q5_K,
            _ => base,
        },
        Role::AttnQ | Role::AttnK | Role::FfnGate | Role::FfnUp => base,
    };
    if t.fits_row(ne0) {
        t
    } else {
        let fb = fallback(t);
        if fb.fits_row(ne0) {
            fb
        } else {
            GgmlType::F16
        }
    }
}

/// The tensor table of a llama-style model with `shape` quantised as `ft`.
///
/// Norms and biases are F32. Architectures differ in small tensors (biases, extra norms); those
/// change bytes by far less than a percent and are modelled for `qwen2` (q/k/v biases) only.
pub fn tensors_for(shape: &ModelShape, ft: FileType) -> Vec<TensorSummary> {
    let e = shape.n_embd as u64;
    let ff = shape.n_ff as u64;
    let q_dim = shape.n_heads as u64 * shape.head_dim as u64;
    let kv_dim = shape.n_kv_heads as u64 * shape.head_dim as u64;
    let vocab = shape.vocab_size as u64;
    let nl = shape.n_layers;
    let mut out = Vec::with_capacity(nl as usize * 11 + 3);
    let tied_role = if shape.tied_embeddings {
        Role::Output
    } else {
        Role::TokenEmbd
    };
    out.push(TensorSummary::new(
        "token_embd.weight",
        type_for(ft, tied_role, 0, nl, e),
        vec![e, vocab],
    ));
    for i in 0..nl {
        let p = |n: &str| format!("blk.{i}.{n}");
        out.push(TensorSummary::new(
            p("attn_norm.weight"),
            GgmlType::F32,
            vec![e],
        ));
        out.push(TensorSummary::new(
            p("attn_q.weight"),
            type_for(ft, Role::AttnQ, i, nl, e),
            vec![e, q_dim],
        ));
        out.push(TensorSummary::new(
            p("attn_k.weight"),
            type_for(ft, Role::AttnK, i, nl, e),
            vec![e, kv_dim],
        ));
        out.push(TensorSummary::new(
            p("attn_v.weight"),
            type_for(ft, Role::AttnV, i, nl, e),
            vec![e, kv_dim],
        ));
        if shape.architecture == "qwen2" {
            out.push(TensorSummary::new(
                p("attn_q.bias"),
                GgmlType::F32,
                vec![q_dim],
            ));
            out.push(TensorSummary::new(
                p("attn_k.bias"),
                GgmlType::F32,
                vec![kv_dim],
            ));
            out.push(TensorSummary::new(
                p("attn_v.bias"),
                GgmlType::F32,
                vec![kv_dim],
            ));
        }
        out.push(TensorSummary::new(
            p("attn_output.weight"),
            type_for(ft, Role::AttnOut, i, nl, q_dim),
            vec![q_dim, e],
        ));
        out.push(TensorSummary::new(
            p("ffn_norm.weight"),
            GgmlType::F32,
            vec![e],
        ));
        out.push(TensorSummary::new(
            p("ffn_gate.weight"),
            type_for(ft, Role::FfnGate, i, nl, e),
            vec![e, ff],
        ));
        out.push(TensorSummary::new(
            p("ffn_up.weight"),
            type_for(ft, Role::FfnUp, i, nl, e),
            vec![e, ff],
        ));
        out.push(TensorSummary::new(
            p("ffn_down.weight"),
            type_for(ft, Role::FfnDown, i, nl, ff),
            vec![ff, e],
        ));
    }
    out.push(TensorSummary::new(
        "output_norm.weight",
        GgmlType::F32,
        vec![e],
    ));
    if !shape.tied_embeddings {
        out.push(TensorSummary::new(
            "output.weight",
            type_for(ft, Role::Output, 0, nl, e),
            vec![e, vocab],
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tinyllama() -> ModelShape {
        ModelShape {
            architecture: "llama".into(),
            n_layers: 22,
            n_embd: 2048,
            n_ff: 5632,
            n_heads: 32,
            n_kv_heads: 4,
            head_dim: 64,
            vocab_size: 32000,
            context_length: 2048,
            tied_embeddings: false,
        }
    }

    #[test]
    fn q4_k_m_mixes_q6_k_into_v_down_and_output() {
        let t = tensors_for(&tinyllama(), FileType::Q4_K_M);
        let ty = |n: &str| t.iter().find(|x| x.name == n).unwrap().ggml_type;
        assert_eq!(ty("output.weight"), GgmlType::Q6_K);
        assert_eq!(ty("token_embd.weight"), GgmlType::Q4_K);
        // 22 layers: eighth = 2; layers 0,1 and >= 19 get more bits, plus (i-2)%3==2.
        assert_eq!(ty("blk.0.attn_v.weight"), GgmlType::Q6_K);
        assert_eq!(ty("blk.2.attn_v.weight"), GgmlType::Q4_K);
        assert_eq!(ty("blk.4.ffn_down.weight"), GgmlType::Q6_K);
        assert_eq!(ty("blk.21.ffn_down.weight"), GgmlType::Q6_K);
        assert_eq!(ty("blk.5.attn_q.weight"), GgmlType::Q4_K);
        // ffn_down rows are 5632 = 22 × 256 wide: no fallback.
        assert_eq!(ty("blk.3.ffn_down.weight"), GgmlType::Q4_K);
    }

    #[test]
    fn rows_not_divisible_by_256_fall_back_to_legacy_types() {
        let mut s = tinyllama();
        s.architecture = "qwen2".into();
        s.n_embd = 896; // Qwen2.5-0.5B: 896 = 3.5 × 256
        s.n_ff = 4864;
        s.n_heads = 14;
        s.n_kv_heads = 2;
        s.tied_embeddings = true;
        let t = tensors_for(&s, FileType::Q4_K_M);
        let ty = |n: &str| t.iter().find(|x| x.name == n).unwrap().ggml_type;
        assert_eq!(ty("blk.2.attn_q.weight"), GgmlType::Q5_0);
        assert_eq!(ty("blk.0.attn_v.weight"), GgmlType::Q8_0);
        // ffn_down rows are 4864 = 19 × 256 wide: Q4_K holds.
        assert_eq!(ty("blk.2.ffn_down.weight"), GgmlType::Q4_K);
        assert!(t.iter().all(|x| x.name != "output.weight"));
        assert_eq!(
            ty("token_embd.weight"),
            GgmlType::Q8_0,
            "tied embedding takes output's Q6_K, falling back to Q8_0"
        );
    }

    #[test]
    fn tinyllama_q4_k_m_size_matches_the_published_file_within_one_percent() {
        // TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf is 668,788,096
        // bytes (../shared/data/gguf-catalog.json); header and tokenizer add well under 1 %.
        let bytes: u64 = tensors_for(&tinyllama(), FileType::Q4_K_M)
            .iter()
            .map(|t| t.n_bytes)
            .sum();
        let published = 668_788_096f64;
        assert!(
            (bytes as f64 - published).abs() / published < 0.01,
            "{bytes}"
        );
    }
}

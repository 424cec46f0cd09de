//! Writing llama-architecture GGUF models with random weights: the benchmark's models, and a
//! loadable model for the tests of every stage (registry, download, verification).
//!
//! Decode speed does not depend on weight values, so random weights exercise llama.cpp's real
//! kernels and memory traffic with nothing to download. Quantised payloads are random bytes; the
//! f16 block scales are then overwritten with small finite values so that activations and logits
//! stay finite. The file carries a small SentencePiece-style tokenizer (special tokens, the 256
//! byte tokens, some words, filler pieces up to the vocabulary size) and a ChatML chat template.
//!
//! Files are written to a temporary name in the target directory and renamed into place, so a
//! killed run never leaves a half-written model under the final name.
//!
//! Knows nothing about llama.cpp, hardware or the network.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::layout::{tensors_for, FileType};
use super::reader::{MetaValue, DEFAULT_ALIGNMENT, GGUF_MAGIC};
use super::types::{GgmlType, ModelShape, TensorSummary};
use crate::progress::Progress;

/// Bumped whenever the bytes written for a given spec change (cache keys include it).
pub const WRITER_VERSION: u32 = 2;

/// The ChatML template written into every generated model.
pub const CHAT_TEMPLATE: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// Token ids of the generated tokenizer's special tokens.
pub const TOKEN_UNK: u32 = 0;
pub const TOKEN_BOS: u32 = 1;
pub const TOKEN_EOS: u32 = 2;
pub const TOKEN_IM_START: u32 = 3;
pub const TOKEN_IM_END: u32 = 4;
/// First of the 256 `<0xNN>` byte tokens.
pub const FIRST_BYTE_TOKEN: u32 = 5;
/// Smallest vocabulary the generated tokenizer fits in (special, byte and text tokens).
pub fn min_vocab() -> u32 {
    FIRST_BYTE_TOKEN + 256 + text_pieces().len() as u32
}

/// Which ggml type each weight matrix gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum WeightLayout {
    /// llama.cpp's mix for a file type (`Q4_K_M` puts Q6_K in `output`, some `attn_v`, `ffn_down`).
    FileType(FileType),
    /// Every weight matrix (embedding and output included) in one type; norms stay F32. This is
    /// what the benchmark measures per type.
    Uniform(GgmlType),
}

impl WeightLayout {
    /// Short label for file names and reports: `Q4_K_M`, `uniform-Q6_K`.
    pub fn label(self) -> String {
        match self {
            WeightLayout::FileType(ft) => ft.label().to_string(),
            WeightLayout::Uniform(t) => format!("uniform-{}", t.name()),
        }
    }

    /// The tensor table for `shape` under this layout.
    pub fn tensors(self, shape: &ModelShape) -> Vec<TensorSummary> {
        match self {
            WeightLayout::FileType(ft) => tensors_for(shape, ft),
            WeightLayout::Uniform(t) => tensors_for(shape, FileType::F16)
                .into_iter()
                .map(|x| {
                    if x.ggml_type == GgmlType::F16 {
                        TensorSummary::new(x.name, t, x.dims)
                    } else {
                        x
                    }
                })
                .collect(),
        }
    }

    /// `general.file_type` (llama.cpp's `LLAMA_FTYPE_MOSTLY_*`), informational only.
    fn llama_ftype(self) -> u32 {
        use GgmlType as G;
        let t = match self {
            WeightLayout::FileType(ft) => {
                return match ft {
                    FileType::F16 => 1,
                    FileType::BF16 => 32,
                    FileType::Q8_0 => 7,
                    FileType::Q6_K => 18,
                    FileType::Q5_K_M => 17,
                    FileType::Q5_K_S => 16,
                    FileType::Q5_0 => 8,
                    FileType::Q4_K_M => 15,
                    FileType::Q4_K_S => 14,
                    FileType::Q4_0 => 2,
                    FileType::Q3_K_M => 12,
                    FileType::Q3_K_L => 13,
                    FileType::Q2_K => 10,
                    FileType::IQ4_XS => 30,
                }
            }
            WeightLayout::Uniform(t) => t,
        };
        match t {
            G::F32 => 0,
            G::F16 => 1,
            G::Q4_0 => 2,
            G::Q4_1 => 3,
            G::Q8_0 => 7,
            G::Q5_0 => 8,
            G::Q5_1 => 9,
            G::Q2_K => 10,
            G::Q3_K => 12,
            G::Q4_K => 14,
            G::Q5_K => 16,
            G::Q6_K => 18,
            G::IQ4_NL => 25,
            G::IQ4_XS => 30,
            G::BF16 => 32,
            _ => 0,
        }
    }
}

/// What to write.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// Architecture must be `llama` (the only one whose tensor names the writer emits).
    pub shape: ModelShape,
    pub layout: WeightLayout,
    /// Seed of the random weights; the same spec and seed give the same bytes.
    pub seed: u64,
    /// `general.name`.
    pub name: String,
    /// Extra metadata written after the standard keys (tests use it to round-trip values).
    pub extra_metadata: Vec<(String, MetaValue)>,
}

impl ModelSpec {
    pub fn new(shape: ModelShape, layout: WeightLayout) -> ModelSpec {
        ModelSpec {
            shape,
            layout,
            seed: 0x006d_696e_6572_7661,
            name: "minerva-synthetic".into(),
            extra_metadata: Vec::new(),
        }
    }

    /// A model of a few hundred kilobytes that loads in milliseconds: for tests of every stage.
    pub fn tiny(layout: WeightLayout) -> ModelSpec {
        let mut s = ModelSpec::new(tiny_shape(), layout);
        s.name = "minerva-tiny".into();
        s
    }
}

/// The tiny preset's shape: 2 layers, 256 wide (one K-quant block per row), 1024-token vocabulary.
pub fn tiny_shape() -> ModelShape {
    ModelShape {
        architecture: "llama".into(),
        n_layers: 2,
        n_embd: 256,
        n_ff: 512,
        n_heads: 4,
        n_kv_heads: 2,
        head_dim: 64,
        vocab_size: 1024,
        context_length: 1024,
        tied_embeddings: false,
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenModel {
    pub path: PathBuf,
    pub tensors: Vec<TensorSummary>,
    pub file_bytes: u64,
    /// Absolute offset of the data section.
    pub data_offset: u64,
}

/// Why a model could not be written.
#[derive(Debug, thiserror::Error)]
pub enum GgufWriteError {
    #[error("cannot write model `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot write tensor `{tensor}`: ggml type {ggml_type} is not supported by the GGUF writer"
    )]
    UnsupportedType { tensor: String, ggml_type: GgmlType },
    #[error("invalid model spec: {0}")]
    InvalidSpec(String),
}

/// Write the model `spec` describes to `path` (atomically) and return its tensor table.
pub fn write_model(path: &Path, spec: &ModelSpec) -> Result<WrittenModel, GgufWriteError> {
    write_model_with_progress(path, spec, &crate::progress::NoProgress)
}

/// [`write_model`], reporting bytes written through `progress` (one phase per call).
pub fn write_model_with_progress(
    path: &Path,
    spec: &ModelSpec,
    progress: &dyn Progress,
) -> Result<WrittenModel, GgufWriteError> {
    validate(spec)?;
    let tensors = spec.layout.tensors(&spec.shape);
    for t in &tensors {
        if block_kind(t.ggml_type).is_none() {
            return Err(GgufWriteError::UnsupportedType {
                tensor: t.name.clone(),
                ggml_type: t.ggml_type,
            });
        }
    }
    let io = |source| GgufWriteError::Io {
        path: path.to_path_buf(),
        source,
    };

    let header = encode_header(spec, &tensors);
    let align = DEFAULT_ALIGNMENT;
    let data_offset = (header.bytes.len() as u64).div_ceil(align) * align;
    let file_bytes = data_offset + header.data_bytes;

    progress.phase(&format!("writing {}", path.display()), Some(file_bytes));
    let result = crate::fsutil::write_atomic_with(path, |file| {
        let mut w = BufWriter::with_capacity(1 << 20, file);
        w.write_all(&header.bytes)?;
        pad(&mut w, data_offset - header.bytes.len() as u64)?;
        let mut written = data_offset;
        let mut buf = Vec::new();
        for (i, t) in tensors.iter().enumerate() {
            let mut rng = Rng::new(spec.seed ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut left = t.n_bytes;
            // Chunks of whole blocks keep memory flat for large tensors.
            let chunk = (1u64 << 20) / t.ggml_type.block_bytes() * t.ggml_type.block_bytes();
            while left > 0 {
                let n = left.min(chunk.max(t.ggml_type.block_bytes()));
                buf.resize(n as usize, 0);
                fill_tensor_chunk(&mut buf, t, &mut rng);
                w.write_all(&buf)?;
                left -= n;
                written += n;
                progress.position(written);
            }
            let padded = t.n_bytes.div_ceil(align) * align;
            pad(&mut w, padded - t.n_bytes)?;
            written += padded - t.n_bytes;
        }
        w.flush()
    });
    progress.finish();
    result.map_err(io)?;
    Ok(WrittenModel {
        path: path.to_path_buf(),
        tensors,
        file_bytes,
        data_offset,
    })
}

/// The bytes before the tensor data that [`write_model`] writes for `spec` (header, metadata,
/// tensor table, alignment padding). With a file extended to [`expected_file_bytes`] this gives a
/// model of any size whose data is a hole: for tests of code that must not read the data.
pub fn header_bytes(spec: &ModelSpec) -> Vec<u8> {
    let tensors = spec.layout.tensors(&spec.shape);
    let mut b = encode_header(spec, &tensors).bytes;
    b.resize(
        (b.len() as u64).div_ceil(DEFAULT_ALIGNMENT) as usize * DEFAULT_ALIGNMENT as usize,
        0,
    );
    b
}

/// The size in bytes [`write_model`] will produce for `spec`, without writing (cache checks).
pub fn expected_file_bytes(spec: &ModelSpec) -> u64 {
    let tensors = spec.layout.tensors(&spec.shape);
    let header = encode_header(spec, &tensors);
    (header.bytes.len() as u64).div_ceil(DEFAULT_ALIGNMENT) * DEFAULT_ALIGNMENT + header.data_bytes
}

fn validate(spec: &ModelSpec) -> Result<(), GgufWriteError> {
    let s = &spec.shape;
    let bad = |m: String| Err(GgufWriteError::InvalidSpec(m));
    if s.architecture != "llama" {
        return bad(format!(
            "architecture `{}`: only `llama` is written",
            s.architecture
        ));
    }
    if s.n_layers == 0
        || s.n_embd == 0
        || s.n_ff == 0
        || s.n_heads == 0
        || s.n_kv_heads == 0
        || s.head_dim == 0
    {
        return bad("every dimension must be at least 1".into());
    }
    if !s.n_heads.is_multiple_of(s.n_kv_heads) {
        return bad(format!(
            "{} heads do not divide into {} KV heads",
            s.n_heads, s.n_kv_heads
        ));
    }
    if !s.head_dim.is_multiple_of(2) {
        return bad(format!("head_dim {} must be even for RoPE", s.head_dim));
    }
    if s.vocab_size < min_vocab() {
        return bad(format!(
            "vocab_size {} is below the tokenizer's minimum {}",
            s.vocab_size,
            min_vocab()
        ));
    }
    Ok(())
}

struct EncodedHeader {
    bytes: Vec<u8>,
    /// Bytes of the data section, each tensor padded to the alignment.
    data_bytes: u64,
}

fn encode_header(spec: &ModelSpec, tensors: &[TensorSummary]) -> EncodedHeader {
    let meta = metadata(spec);
    let mut b = Vec::with_capacity(64 << 10);
    b.extend_from_slice(&GGUF_MAGIC);
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    b.extend_from_slice(&(meta.len() as u64).to_le_bytes());
    for (k, v) in &meta {
        put_str(&mut b, k);
        b.extend_from_slice(&v.type_id().to_le_bytes());
        put_value(&mut b, v);
    }
    let mut offset = 0u64;
    for t in tensors {
        put_str(&mut b, &t.name);
        b.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
        for d in &t.dims {
            b.extend_from_slice(&d.to_le_bytes());
        }
        b.extend_from_slice(&t.ggml_type.id().to_le_bytes());
        b.extend_from_slice(&offset.to_le_bytes());
        offset += t.n_bytes.div_ceil(DEFAULT_ALIGNMENT) * DEFAULT_ALIGNMENT;
    }
    EncodedHeader {
        bytes: b,
        data_bytes: offset,
    }
}

/// Every metadata key and value [`write_model`] writes for `spec`, in file order.
pub fn metadata(spec: &ModelSpec) -> Vec<(String, MetaValue)> {
    use MetaValue as V;
    let s = &spec.shape;
    let a = |k: &str| format!("llama.{k}");
    let mut m: Vec<(String, MetaValue)> = vec![
        ("general.architecture".into(), V::String("llama".into())),
        ("general.name".into(), V::String(spec.name.clone())),
        (
            "general.file_type".into(),
            V::U32(spec.layout.llama_ftype()),
        ),
        ("general.quantization_version".into(), V::U32(2)),
        ("general.alignment".into(), V::U32(DEFAULT_ALIGNMENT as u32)),
        (a("vocab_size"), V::U32(s.vocab_size)),
        (a("context_length"), V::U32(s.context_length)),
        (a("embedding_length"), V::U32(s.n_embd)),
        (a("block_count"), V::U32(s.n_layers)),
        (a("feed_forward_length"), V::U32(s.n_ff)),
        (a("attention.head_count"), V::U32(s.n_heads)),
        (a("attention.head_count_kv"), V::U32(s.n_kv_heads)),
        (a("attention.key_length"), V::U32(s.head_dim)),
        (a("attention.value_length"), V::U32(s.head_dim)),
        (a("rope.dimension_count"), V::U32(s.head_dim)),
        (a("rope.freq_base"), V::F32(10000.0)),
        (a("attention.layer_norm_rms_epsilon"), V::F32(1e-5)),
    ];
    let (tokens, scores, types) = vocabulary(s.vocab_size);
    m.extend([
        ("tokenizer.ggml.model".into(), V::String("llama".into())),
        (
            "tokenizer.ggml.tokens".into(),
            V::Array(8, tokens.into_iter().map(V::String).collect()),
        ),
        (
            "tokenizer.ggml.scores".into(),
            V::Array(6, scores.into_iter().map(V::F32).collect()),
        ),
        (
            "tokenizer.ggml.token_type".into(),
            V::Array(5, types.into_iter().map(V::I32).collect()),
        ),
        ("tokenizer.ggml.bos_token_id".into(), V::U32(TOKEN_BOS)),
        ("tokenizer.ggml.eos_token_id".into(), V::U32(TOKEN_EOS)),
        ("tokenizer.ggml.eot_token_id".into(), V::U32(TOKEN_IM_END)),
        ("tokenizer.ggml.unknown_token_id".into(), V::U32(TOKEN_UNK)),
        ("tokenizer.ggml.add_bos_token".into(), V::Bool(true)),
        ("tokenizer.ggml.add_eos_token".into(), V::Bool(false)),
        (
            "tokenizer.chat_template".into(),
            V::String(CHAT_TEMPLATE.into()),
        ),
    ]);
    m.extend(spec.extra_metadata.iter().cloned());
    m
}

/// Common English words, so that ordinary text tokenises into words rather than bytes.
const WORDS: &[&str] = &[
    "the", "of", "and", "to", "a", "in", "is", "it", "you", "that", "he", "was", "for", "on",
    "are", "with", "as", "I", "his", "they", "be", "at", "one", "have", "this", "from", "or",
    "had", "by", "word", "but", "what", "some", "we", "can", "out", "other", "were", "all",
    "there", "when", "up", "use", "your", "how", "said", "an", "each", "she", "which", "do",
    "their", "time", "if", "will", "way", "about", "many", "then", "them", "write", "would",
    "like", "so", "these", "her", "long", "make", "thing", "see", "him", "two", "has", "look",
    "more", "day", "could", "go", "come", "did", "number", "sound", "no", "most", "people", "my",
    "over", "know", "water", "than", "call", "first", "who", "may", "down", "side", "been", "now",
    "find", "hello", "server", "model", "answer",
];

/// SentencePiece token types as llama.cpp numbers them.
const TT_NORMAL: i32 = 1;
const TT_UNKNOWN: i32 = 2;
const TT_CONTROL: i32 = 3;
const TT_BYTE: i32 = 6;
const TT_UNUSED: i32 = 5;

/// The text pieces of the vocabulary: `▁`, single characters, and every prefix of each word
/// behind `▁`. SentencePiece merges two adjacent pieces only when the result is a token, so a word
/// is reachable only through all its prefixes.
fn text_pieces() -> Vec<String> {
    let mut out: Vec<String> = vec!["\u{2581}".to_string()];
    let chars = ('a'..='z')
        .chain('A'..='Z')
        .chain('0'..='9')
        .chain(".,;:!?'\"-()".chars());
    out.extend(chars.map(|c| c.to_string()));
    for w in WORDS {
        for (i, _) in w.char_indices().skip(1).chain([(w.len(), ' ')]) {
            out.push(format!("\u{2581}{}", &w[..i]));
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.clone()));
    out
}

/// Tokens, scores and token types of the generated vocabulary of `n` entries (`n >= min_vocab()`).
fn vocabulary(n: u32) -> (Vec<String>, Vec<f32>, Vec<i32>) {
    let mut tokens = Vec::with_capacity(n as usize);
    let mut types = Vec::with_capacity(n as usize);
    for (t, ty) in [
        ("<unk>", TT_UNKNOWN),
        ("<s>", TT_CONTROL),
        ("</s>", TT_CONTROL),
        ("<|im_start|>", TT_CONTROL),
        ("<|im_end|>", TT_CONTROL),
    ] {
        tokens.push(t.to_string());
        types.push(ty);
    }
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        // Random weights pick tokens at random. A lone byte >= 0x80 is not UTF-8 on its own, so
        // those byte tokens are marked unused (llama.cpp renders them as nothing): the text of a
        // generated model stays valid UTF-8 and a verification's UTF-8 check stays meaningful.
        // Prompts are ASCII, so tokenising never needs them.
        types.push(if b < 0x80 { TT_BYTE } else { TT_UNUSED });
    }
    for p in text_pieces() {
        tokens.push(p);
        types.push(TT_NORMAL);
    }
    let mut i = 0u32;
    while tokens.len() < n as usize {
        tokens.push(format!("\u{2581}x{i}"));
        types.push(TT_NORMAL);
        i += 1;
    }
    // SentencePiece merges the highest-scoring pair first: longer pieces score higher, so a word
    // ends as one token; filler scores lowest. Special and byte tokens score 0 (not merged).
    let first_filler = min_vocab();
    let scores = (0..n)
        .map(|id| {
            if id < FIRST_BYTE_TOKEN + 256 {
                0.0
            } else {
                let piece = &tokens[id as usize];
                let filler = id >= first_filler;
                piece.chars().count() as f32 - if filler { 1000.0 } else { 0.0 }
            }
        })
        .collect();
    (tokens, scores, types)
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(&(s.len() as u64).to_le_bytes());
    b.extend_from_slice(s.as_bytes());
}

fn put_value(b: &mut Vec<u8>, v: &MetaValue) {
    match v {
        MetaValue::U8(x) => b.push(*x),
        MetaValue::I8(x) => b.extend_from_slice(&x.to_le_bytes()),
        MetaValue::U16(x) => b.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I16(x) => b.extend_from_slice(&x.to_le_bytes()),
        MetaValue::U32(x) => b.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I32(x) => b.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F32(x) => b.extend_from_slice(&x.to_le_bytes()),
        MetaValue::Bool(x) => b.push(u8::from(*x)),
        MetaValue::String(s) => put_str(b, s),
        MetaValue::Array(elem, items) => {
            b.extend_from_slice(&elem.to_le_bytes());
            b.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for it in items {
                put_value(b, it);
            }
        }
        MetaValue::U64(x) => b.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I64(x) => b.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F64(x) => b.extend_from_slice(&x.to_le_bytes()),
    }
}

fn pad(w: &mut impl Write, n: u64) -> std::io::Result<()> {
    const ZEROS: [u8; 64] = [0; 64];
    let mut left = n;
    while left > 0 {
        let k = left.min(64);
        w.write_all(&ZEROS[..k as usize])?;
        left -= k;
    }
    Ok(())
}

/// Whether the writer can generate tensors of `t`.
pub fn supports(t: GgmlType) -> bool {
    block_kind(t).is_some()
}

/// How a type's bytes are generated: element-wise floats, or random blocks with f16 scale fields
/// at known offsets overwritten.
enum BlockKind {
    F32,
    F16,
    BF16,
    /// `(offset of an f16 scale within the block, its magnitude)` pairs.
    Quant(&'static [(usize, f32)]),
}

/// Target standard deviation of the weights: with RMS-normed inputs of width `n` the outputs of a
/// matrix-vector product have a deviation near `0.02 × sqrt(n)`, which keeps activations and logits
/// in a comfortable range.
const WEIGHT_STD: f32 = 0.02;

/// Block layouts from ggml-common.h. The scale magnitudes make `d × (typical quant value)` about
/// [`WEIGHT_STD`]: Q8_0 quants span ±127, Q4_0 ±8, K-quant sub-block scales up to 63 times quants
/// up to 15 (Q4_K) or 31 (Q5_K), Q6_K's i8 scales up to 127 times quants ±32.
fn block_kind(t: GgmlType) -> Option<BlockKind> {
    use GgmlType as G;
    Some(match t {
        G::F32 => BlockKind::F32,
        G::F16 => BlockKind::F16,
        G::BF16 => BlockKind::BF16,
        // d, then 32 i8.
        G::Q8_0 => BlockKind::Quant(&[(0, 2.7e-4)]),
        // d, 16 bytes of nibbles.
        G::Q4_0 => BlockKind::Quant(&[(0, 4.3e-3)]),
        // d, m, 16 bytes of nibbles.
        G::Q4_1 => BlockKind::Quant(&[(0, 4.3e-3), (2, 1e-3)]),
        // d, qh[4], qs[16].
        G::Q5_0 => BlockKind::Quant(&[(0, 2.2e-3)]),
        // d, m, qh[4], qs[16].
        G::Q5_1 => BlockKind::Quant(&[(0, 2.2e-3), (2, 1e-3)]),
        // d, dmin, scales[12], qs[128].
        G::Q4_K => BlockKind::Quant(&[(0, 1.3e-4), (2, 1e-4)]),
        // d, dmin, scales[12], qh[32], qs[128].
        G::Q5_K => BlockKind::Quant(&[(0, 7e-5), (2, 5e-5)]),
        // ql[128], qh[64], scales[16] (i8), d.
        G::Q6_K => BlockKind::Quant(&[(208, 1.5e-5)]),
        // scales[16], qs[64], d, dmin.
        G::Q2_K => BlockKind::Quant(&[(80, 2e-3), (82, 1e-3)]),
        // hmask[32], qs[64], scales[12], d.
        G::Q3_K => BlockKind::Quant(&[(108, 5e-4)]),
        // d, qs[16] (indices into a 16-entry table of magnitude up to 127).
        G::IQ4_NL => BlockKind::Quant(&[(0, 3e-4)]),
        // d, scales_h, scales_l[4], qs[128].
        G::IQ4_XS => BlockKind::Quant(&[(0, 1e-5)]),
        _ => return None,
    })
}

/// Fill `buf` (a whole number of blocks of `t`) with random weights.
fn fill_tensor_chunk(buf: &mut [u8], t: &TensorSummary, rng: &mut Rng) {
    let is_norm = t.dims.len() == 1 && t.name.ends_with("norm.weight");
    match block_kind(t.ggml_type) {
        Some(BlockKind::F32) => {
            for c in buf.chunks_exact_mut(4) {
                // Norm weights near 1 keep RMS-normed activations at unit scale; biases small.
                let v = if is_norm {
                    1.0
                } else {
                    rng.symmetric() * WEIGHT_STD * 1.7
                };
                c.copy_from_slice(&v.to_le_bytes());
            }
        }
        Some(BlockKind::F16) => {
            rng.fill(buf);
            for c in buf.chunks_exact_mut(2) {
                let v = if is_norm {
                    F16_ONE
                } else {
                    small_f16(u16::from_le_bytes([c[0], c[1]]))
                };
                c.copy_from_slice(&v.to_le_bytes());
            }
        }
        Some(BlockKind::BF16) => {
            rng.fill(buf);
            for c in buf.chunks_exact_mut(2) {
                let r = u16::from_le_bytes([c[0], c[1]]);
                // Sign, exponent 2^-7 or 2^-6 (f32 bias 127), 7 random mantissa bits: |v| in [0.008, 0.03).
                let v = (r & 0x807f) | ((120 + ((r >> 7) & 1)) << 7);
                c.copy_from_slice(&v.to_le_bytes());
            }
        }
        Some(BlockKind::Quant(scales)) => {
            rng.fill(buf);
            let bb = t.ggml_type.block_bytes() as usize;
            for block in buf.chunks_exact_mut(bb) {
                for &(off, mag) in scales {
                    // A positive scale between 0.5 and 1.5 times the magnitude.
                    let v = f32_to_f16(mag * (1.0 + rng.symmetric() * 0.5));
                    block[off..off + 2].copy_from_slice(&v.to_le_bytes());
                }
            }
        }
        // Unsupported types are rejected before writing starts.
        None => buf.fill(0),
    }
}

const F16_ONE: u16 = 0x3c00;

/// A small finite f16 from 16 random bits: random sign and mantissa, exponent 2^-7 or 2^-6, so
/// |v| lies in [0.0078, 0.031).
fn small_f16(r: u16) -> u16 {
    (r & 0x83ff) | ((8 + ((r >> 10) & 1)) << 10)
}

/// Round-to-nearest f32 → IEEE half, for the small positive scales written above (normal and
/// subnormal halves; values beyond the half range saturate to the largest finite half).
pub(crate) fn f32_to_f16(v: f32) -> u16 {
    let bits = v.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let a = v.abs();
    if a.is_nan() {
        return sign | 0x7e00;
    }
    if a >= 65504.0 {
        return sign | 0x7bff;
    }
    if a < 6.103_515_6e-5 {
        // Subnormal half: units of 2^-24.
        return sign | (a * 16_777_216.0).round() as u16;
    }
    let exp = ((a.to_bits() >> 23) & 0xff) as i32 - 127 + 15;
    let mant = a.to_bits() & 0x7f_ffff;
    let mut h = ((exp as u32) << 10) | (mant >> 13);
    if mant & 0x1fff > 0x1000 || (mant & 0x1fff == 0x1000 && h & 1 == 1) {
        h += 1;
    }
    sign | h as u16
}

/// splitmix64: fast, seedable, good enough for weights whose values do not matter.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next().to_le_bytes();
        let n = rest.len();
        rest.copy_from_slice(&last[..n]);
    }

    /// Uniform in [-1, 1).
    fn symmetric(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f16_to_f32(h: u16) -> f32 {
        let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
        let exp = ((h >> 10) & 0x1f) as i32;
        let mant = (h & 0x3ff) as f32;
        sign * if exp == 0 {
            mant * 2f32.powi(-24)
        } else {
            (1.0 + mant / 1024.0) * 2f32.powi(exp - 15)
        }
    }

    #[test]
    fn f16_conversion_round_trips_representable_values() {
        for v in [
            1.0f32,
            0.5,
            2.7e-4,
            1.3e-4,
            65504.0,
            6.103_515_6e-5,
            1.5e-5,
            3.0e-7,
        ] {
            let back = f16_to_f32(f32_to_f16(v));
            assert!(
                (back - v).abs() / v < 1e-3 || (back - v).abs() < 6e-8,
                "{v} -> {back}"
            );
        }
        assert_eq!(f32_to_f16(1.0), F16_ONE);
    }

    #[test]
    fn small_f16_is_always_finite_and_small() {
        for r in 0..=u16::MAX {
            let v = f16_to_f32(small_f16(r));
            assert!(
                v.is_finite() && v.abs() < 0.032 && v.abs() >= 0.0078,
                "{r:#x} -> {v}"
            );
        }
    }

    #[test]
    fn every_scale_field_lies_inside_its_block_and_is_written_small() {
        for t in GgmlType::all() {
            let Some(BlockKind::Quant(scales)) = block_kind(t) else {
                continue;
            };
            let summary = TensorSummary::new("blk.0.attn_q.weight", t, vec![256, 2]);
            let mut buf = vec![0u8; summary.n_bytes as usize];
            fill_tensor_chunk(&mut buf, &summary, &mut Rng::new(7));
            for block in buf.chunks_exact(t.block_bytes() as usize) {
                for &(off, mag) in scales {
                    assert!(off + 2 <= t.block_bytes() as usize, "{t}");
                    let d = f16_to_f32(u16::from_le_bytes([block[off], block[off + 1]]));
                    assert!(d > 0.0 && d.is_finite() && d <= mag * 1.51, "{t}: {d}");
                }
            }
        }
    }

    #[test]
    fn vocabulary_has_the_requested_size_and_unique_pieces() {
        let (tokens, scores, types) = vocabulary(min_vocab() + 10);
        assert_eq!(tokens.len(), (min_vocab() + 10) as usize);
        assert_eq!(scores.len(), tokens.len());
        assert_eq!(types.len(), tokens.len());
        let unique: std::collections::HashSet<_> = tokens.iter().collect();
        assert_eq!(unique.len(), tokens.len());
        assert_eq!(tokens[(FIRST_BYTE_TOKEN + 10) as usize], "<0x0A>");
        assert_eq!(tokens[TOKEN_IM_END as usize], "<|im_end|>");
    }
}

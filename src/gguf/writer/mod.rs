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
//! killed run never leaves a half-written model under the final name. [`write_split_model`]
//! writes the same model split in parts, as llama.cpp's gguf-split lays it out.
//!
//! Submodules: `tokenizer` builds the vocabulary and holds the special token ids, `weights`
//! generates the random tensor bytes. Their public items are re-exported here.
//!
//! Knows nothing about llama.cpp, hardware or the network.

mod tokenizer;
mod weights;

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::layout::{tensors_for, FileType};
use super::reader::{MetaValue, DEFAULT_ALIGNMENT, GGUF_MAGIC};
use super::split::{
    split_file_name, KEY_SPLIT_COUNT as SPLIT_COUNT, KEY_SPLIT_NO as SPLIT_NO,
    KEY_SPLIT_TENSORS_COUNT as SPLIT_TENSORS_COUNT,
};
use super::types::{GgmlType, ModelShape, TensorSummary};
use crate::progress::Progress;

pub use tokenizer::{
    min_vocab, CHAT_TEMPLATE, FIRST_BYTE_TOKEN, TOKEN_BOS, TOKEN_EOS, TOKEN_IM_END, TOKEN_IM_START,
    TOKEN_UNK,
};
pub use weights::supports;

use tokenizer::vocabulary;
use weights::{block_kind, fill_tensor_chunk, Rng};

/// Bumped whenever the bytes written for a given spec change (cache keys include it).
pub const WRITER_VERSION: u32 = 2;

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
            WeightLayout::FileType(ft) => return ft.llama_ftype(),
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
    /// `tokenizer.chat_template`: ChatML by default; `None` writes a model without one.
    pub chat_template: Option<String>,
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
            chat_template: Some(CHAT_TEMPLATE.into()),
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
    let tensors = writable_tensors(spec)?;
    let indexed: Vec<(usize, &TensorSummary)> = tensors.iter().enumerate().collect();
    let (file_bytes, data_offset) =
        write_file(path, &metadata(spec), &indexed, spec.seed, progress)?;
    Ok(WrittenModel {
        path: path.to_path_buf(),
        tensors,
        file_bytes,
        data_offset,
    })
}

/// The tensor table of a valid `spec`, every tensor of a type the writer can encode.
fn writable_tensors(spec: &ModelSpec) -> Result<Vec<TensorSummary>, GgufWriteError> {
    validate(spec)?;
    let tensors = spec.layout.tensors(&spec.shape);
    if let Some(t) = tensors.iter().find(|t| block_kind(t.ggml_type).is_none()) {
        return Err(GgufWriteError::UnsupportedType {
            tensor: t.name.clone(),
            ggml_type: t.ggml_type,
        });
    }
    Ok(tensors)
}

/// Write `spec` as a model split in `parts` files, as llama.cpp's gguf-split does: in `dir`,
/// `PREFIX-00001-of-0000N.gguf` and on, each a GGUF with `split.no` (0-based), `split.count` and
/// `split.tensors.count`; the first part carries the model's metadata. The tensors go to the
/// parts by layer (the tensors before the first layer, each layer, the tensors after the last,
/// in order, as evenly as they divide), and their bytes are those [`write_model`] writes for the
/// same spec, so the parts hold exactly the unsplit model's tensors. Each part is written
/// atomically; the first is written last.
pub fn write_split_model(
    dir: &Path,
    prefix: &str,
    spec: &ModelSpec,
    parts: u16,
) -> Result<Vec<WrittenModel>, GgufWriteError> {
    let tensors = writable_tensors(spec)?;
    let groups = layer_groups(&tensors);
    if parts < 2 || usize::from(parts) > groups.len() {
        return Err(GgufWriteError::InvalidSpec(format!(
            "{parts} parts: a split model of {} layers has 2 to {} parts",
            spec.shape.n_layers,
            groups.len()
        )));
    }
    let n = usize::from(parts);
    let split_keys = |no: u16| {
        vec![
            (SPLIT_NO.to_string(), MetaValue::U16(no)),
            (SPLIT_COUNT.to_string(), MetaValue::U16(parts)),
            (
                SPLIT_TENSORS_COUNT.to_string(),
                MetaValue::I32(tensors.len() as i32),
            ),
        ]
    };
    let mut written = Vec::with_capacity(n);
    // Write the later parts first: the first part, which names the others, appears last.
    for p in (0..n).rev() {
        let (from, to) = (p * groups.len() / n, (p + 1) * groups.len() / n);
        let indexed: Vec<(usize, &TensorSummary)> = groups[from..to]
            .iter()
            .flat_map(|g| g.clone())
            .map(|i| (i, &tensors[i]))
            .collect();
        let mut meta = if p == 0 { metadata(spec) } else { Vec::new() };
        meta.extend(split_keys(p as u16));
        let path = dir.join(split_file_name(prefix, p as u16 + 1, parts));
        let (file_bytes, data_offset) = write_file(
            &path,
            &meta,
            &indexed,
            spec.seed,
            &crate::progress::NoProgress,
        )?;
        written.push(WrittenModel {
            path,
            tensors: indexed.iter().map(|(_, t)| (*t).clone()).collect(),
            file_bytes,
            data_offset,
        });
    }
    written.reverse();
    Ok(written)
}

/// Tensor indices grouped for splitting: the tensors before the first layer, then one group per
/// layer (`blk.N.`), then the tensors after the last.
fn layer_groups(tensors: &[TensorSummary]) -> Vec<std::ops::Range<usize>> {
    let layer = |t: &TensorSummary| {
        t.name
            .strip_prefix("blk.")
            .and_then(|r| r.split('.').next())
            .map(str::to_string)
    };
    let mut groups: Vec<std::ops::Range<usize>> = Vec::new();
    let mut current: Option<Option<String>> = None;
    for (i, t) in tensors.iter().enumerate() {
        let key = layer(t);
        match (&current, groups.last_mut()) {
            (Some(k), Some(g)) if *k == key => g.end = i + 1,
            _ => {
                groups.push(i..i + 1);
                current = Some(key);
            }
        }
    }
    groups
}

/// Write one GGUF file: `meta`, then the tensor infos and data of `tensors` (each with its
/// index in the model's tensor table, which seeds its random bytes). Returns the file's size and
/// the offset of its data section.
fn write_file(
    path: &Path,
    meta: &[(String, MetaValue)],
    tensors: &[(usize, &TensorSummary)],
    seed: u64,
    progress: &dyn Progress,
) -> Result<(u64, u64), GgufWriteError> {
    let io = |source| GgufWriteError::Io {
        path: path.to_path_buf(),
        source,
    };
    let header = encode_header_with(meta, tensors.iter().map(|(_, t)| *t));
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
        for &(i, t) in tensors {
            let mut rng = Rng::new(seed ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
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
    Ok((file_bytes, data_offset))
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
    encode_header_with(&metadata(spec), tensors.iter())
}

fn encode_header_with<'t>(
    meta: &[(String, MetaValue)],
    tensors: impl ExactSizeIterator<Item = &'t TensorSummary>,
) -> EncodedHeader {
    let mut b = Vec::with_capacity(64 << 10);
    b.extend_from_slice(&GGUF_MAGIC);
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    b.extend_from_slice(&(meta.len() as u64).to_le_bytes());
    for (k, v) in meta {
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
    ]);
    if let Some(t) = &spec.chat_template {
        m.push(("tokenizer.chat_template".into(), V::String(t.clone())));
    }
    m.extend(spec.extra_metadata.iter().cloned());
    m
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

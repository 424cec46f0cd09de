//! Reading the header of any GGUF file: metadata, tensor table and the model shape facts the
//! predictor needs, without touching the tensor data.
//!
//! The format (GGUF v2/v3, little-endian): magic `GGUF`, version `u32`, tensor count `u64`,
//! metadata count `u64`, the metadata key/value pairs, the tensor infos (name, dims, ggml type,
//! offset into the data section), then padding to `general.alignment` and the data. See
//! ggml's `docs/gguf.md`. Only the header is read; that the data is all there is checked from
//! the file length, so a truncated download is rejected without reading gigabytes.
//!
//! Knows nothing about llama.cpp, hardware or the network.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::types::{GgmlType, ModelShape, TensorSummary};

/// The four bytes every GGUF file starts with.
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";
/// Data alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// A metadata value. Arrays hold values of one type (nested arrays are allowed by the format).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    /// Element type id (as stored) and the elements.
    Array(u32, Vec<MetaValue>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl MetaValue {
    /// The GGUF value type id.
    pub fn type_id(&self) -> u32 {
        match self {
            MetaValue::U8(_) => 0,
            MetaValue::I8(_) => 1,
            MetaValue::U16(_) => 2,
            MetaValue::I16(_) => 3,
            MetaValue::U32(_) => 4,
            MetaValue::I32(_) => 5,
            MetaValue::F32(_) => 6,
            MetaValue::Bool(_) => 7,
            MetaValue::String(_) => 8,
            MetaValue::Array(..) => 9,
            MetaValue::U64(_) => 10,
            MetaValue::I64(_) => 11,
            MetaValue::F64(_) => 12,
        }
    }

    /// An integer value of any width and sign, if it is one and is non-negative.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetaValue::U8(v) => Some(v as u64),
            MetaValue::U16(v) => Some(v as u64),
            MetaValue::U32(v) => Some(v as u64),
            MetaValue::U64(v) => Some(v),
            MetaValue::I8(v) => u64::try_from(v).ok(),
            MetaValue::I16(v) => u64::try_from(v).ok(),
            MetaValue::I32(v) => u64::try_from(v).ok(),
            MetaValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetaValue::F32(v) => Some(v as f64),
            MetaValue::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[MetaValue]> {
        match self {
            MetaValue::Array(_, v) => Some(v),
            _ => None,
        }
    }
}

/// One entry of the tensor table, with its place in the data section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorInfo {
    pub summary: TensorSummary,
    /// Offset of the tensor's data from the start of the data section.
    pub offset: u64,
}

/// Everything in a GGUF header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GgufHeader {
    pub path: PathBuf,
    pub version: u32,
    /// Metadata in file order.
    pub metadata: Vec<(String, MetaValue)>,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    /// Absolute file offset where tensor data begins.
    pub data_offset: u64,
    pub file_bytes: u64,
}

/// What the predictor needs from a model file: shape, tensor table, and the metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GgufModel {
    pub shape: ModelShape,
    pub tensors: Vec<TensorSummary>,
    /// Sum of the elements of all tensors.
    pub total_params: u64,
    /// Sum of the bytes of all tensors.
    pub tensor_bytes: u64,
    pub file_bytes: u64,
    /// `tokenizer.chat_template`, when present.
    pub chat_template: Option<String>,
    /// Every metadata key and value (large arrays included).
    pub metadata: BTreeMap<String, MetaValue>,
}

/// Why a GGUF header could not be read. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("cannot read GGUF file `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is not a GGUF file: it starts with {found:02x?}, not the magic `GGUF`")]
    BadMagic { path: PathBuf, found: Vec<u8> },
    #[error("`{path}` is a GGUF file of version {version}; only versions 2 and 3 are supported")]
    UnsupportedVersion { path: PathBuf, version: u32 },
    #[error("`{path}` is truncated: the file ends at byte {file_bytes} while reading {what}")]
    TruncatedHeader {
        path: PathBuf,
        file_bytes: u64,
        what: String,
    },
    #[error(
        "`{path}` is truncated: its tensors need {needed} bytes but the file has {file_bytes}"
    )]
    TruncatedData {
        path: PathBuf,
        needed: u64,
        file_bytes: u64,
    },
    #[error("`{path}` is malformed: {detail}")]
    Malformed { path: PathBuf, detail: String },
    #[error("`{path}` lacks metadata key `{key}` needed for the model shape")]
    MissingKey { path: PathBuf, key: String },
}

/// Read the header of the GGUF at `path`: metadata and tensor table, not the data.
pub fn read_header(path: &Path) -> Result<GgufHeader, GgufError> {
    let file = File::open(path).map_err(|source| GgufError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let file_bytes = file
        .metadata()
        .map_err(|source| GgufError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    let (header, _) = read_header_from(BufReader::with_capacity(1 << 16, file), file_bytes, path)?;
    Ok(header)
}

/// Read a GGUF header from `src`, the start of a file of `file_bytes` bytes named `name` (a
/// path, or the address of a remote file), reading no further than the end of the tensor
/// table. Returns the header and how many bytes of `src` it used.
///
/// `src` may be untrusted: counts, lengths, dimensions and offsets are checked against the file
/// size and the limits below before anything is allocated for them, so a hostile header is
/// refused with an error, never with a panic or an allocation of what it claims.
pub fn read_header_from<R: Read>(
    src: R,
    file_bytes: u64,
    name: &Path,
) -> Result<(GgufHeader, u64), GgufError> {
    let path = name;
    let mut r = Reader {
        inner: src,
        pos: 0,
        file_bytes,
        path,
    };

    let mut magic = [0u8; 4];
    let got = r.read_some(&mut magic)?;
    if got < 4 || magic != GGUF_MAGIC {
        return Err(GgufError::BadMagic {
            path: path.to_path_buf(),
            found: magic[..got].to_vec(),
        });
    }
    let version = r.u32("the version")?;
    if !(2..=3).contains(&version) {
        return Err(GgufError::UnsupportedVersion {
            path: path.to_path_buf(),
            version,
        });
    }
    let n_tensors = r.u64("the tensor count")?;
    let n_kv = r.u64("the metadata count")?;
    // Each metadata pair and tensor info takes at least 12 bytes: counts beyond what the file can
    // hold mean it was cut short (or is corrupt), caught before allocating for them.
    if n_kv.saturating_add(n_tensors).saturating_mul(12) > file_bytes {
        return Err(r.truncated(&format!(
            "{n_kv} metadata keys and {n_tensors} tensor infos"
        )));
    }
    if n_kv > MAX_METADATA_KEYS || n_tensors > MAX_TENSORS {
        return Err(r.malformed(format!(
            "it claims {n_kv} metadata keys and {n_tensors} tensors (at most \
             {MAX_METADATA_KEYS} and {MAX_TENSORS} are accepted)"
        )));
    }

    let mut metadata = Vec::with_capacity(n_kv.min(PREALLOCATE) as usize);
    for i in 0..n_kv {
        let key = r.string(&format!("metadata key #{i}"))?;
        let ty = r.u32(&format!("the type of metadata `{key}`"))?;
        let value = r.value(ty, &key, 0)?;
        metadata.push((key, value));
    }

    let mut tensors = Vec::with_capacity(n_tensors.min(PREALLOCATE) as usize);
    for i in 0..n_tensors {
        let name = r.string(&format!("the name of tensor #{i}"))?;
        let n_dims = r.u32(&format!("the dimension count of tensor `{name}`"))?;
        if n_dims == 0 || n_dims > 8 {
            return Err(r.malformed(format!("tensor `{name}` has {n_dims} dimensions")));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(r.u64(&format!("the dimensions of tensor `{name}`"))?);
        }
        let type_id = r.u32(&format!("the type of tensor `{name}`"))?;
        let offset = r.u64(&format!("the offset of tensor `{name}`"))?;
        let ggml_type = GgmlType::from_id(type_id).ok_or_else(|| {
            r.malformed(format!(
                "tensor `{name}` has unknown ggml type id {type_id}"
            ))
        })?;
        let n_elements = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
        let n_bytes = n_elements
            .filter(|n| n % ggml_type.block_elements() == 0)
            .and_then(|n| (n / ggml_type.block_elements()).checked_mul(ggml_type.block_bytes()));
        match n_bytes {
            Some(b) if b <= file_bytes => {}
            Some(b) => {
                return Err(r.malformed(format!(
                    "tensor `{name}` of type {ggml_type} with dimensions {dims:?} needs {b} bytes, more than the whole file"
                )))
            }
            None => {
                return Err(r.malformed(format!(
                    "tensor `{name}` of type {ggml_type} has dimensions {dims:?}, not a whole number of blocks"
                )))
            }
        }
        tensors.push(TensorInfo {
            summary: TensorSummary::new(name, ggml_type, dims),
            offset,
        });
    }

    let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
        Some((_, v)) => match v.as_u64() {
            Some(a) if a > 0 && a.is_power_of_two() => a,
            _ => {
                return Err(r.malformed(format!("`general.alignment` is {v:?}, not a power of two")))
            }
        },
        None => DEFAULT_ALIGNMENT,
    };
    let data_offset = r.pos.div_ceil(alignment) * alignment;
    // A file without tensors (a vocabulary-only GGUF) may end right after its header, unpadded.
    let mut needed = r.pos;
    for t in &tensors {
        if t.offset % alignment != 0 {
            return Err(r.malformed(format!(
                "tensor `{}` starts at data offset {}, not a multiple of the alignment {alignment}",
                t.summary.name, t.offset
            )));
        }
        let end = data_offset
            .checked_add(t.offset)
            .and_then(|o| o.checked_add(t.summary.n_bytes));
        needed =
            needed.max(end.ok_or_else(|| {
                r.malformed(format!("tensor `{}` offset overflows", t.summary.name))
            })?);
    }
    if needed > file_bytes {
        return Err(GgufError::TruncatedData {
            path: path.to_path_buf(),
            needed,
            file_bytes,
        });
    }

    let used = r.pos;
    Ok((
        GgufHeader {
            path: path.to_path_buf(),
            version,
            metadata,
            tensors,
            alignment,
            data_offset,
            file_bytes,
        },
        used,
    ))
}

/// Read the header of `path` and derive the model shape: what the predictor needs.
pub fn read_model(path: &Path) -> Result<GgufModel, GgufError> {
    read_header(path)?.into_model()
}

impl GgufHeader {
    /// The value of a metadata key.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// `general.architecture`.
    pub fn architecture(&self) -> Option<&str> {
        self.get("general.architecture").and_then(MetaValue::as_str)
    }

    pub fn tensor_summaries(&self) -> Vec<TensorSummary> {
        self.tensors.iter().map(|t| t.summary.clone()).collect()
    }

    /// The transformer shape from `{arch}.*` keys, with the tensor table filling gaps (vocab size
    /// from the embedding, tied embeddings from a missing `output.weight`).
    pub fn shape(&self) -> Result<ModelShape, GgufError> {
        let missing = |key: &str| GgufError::MissingKey {
            path: self.path.clone(),
            key: key.to_string(),
        };
        let arch = self
            .architecture()
            .ok_or_else(|| missing("general.architecture"))?
            .to_string();
        let key = |k: &str| format!("{arch}.{k}");
        // Some architectures store per-layer values as arrays (e.g. OpenELM's head counts); the
        // largest layer is what memory and speed are sized by.
        let num = |k: &str| -> Option<u64> {
            self.get(&key(k)).and_then(|v| match v {
                MetaValue::Array(_, items) => items.iter().filter_map(MetaValue::as_u64).max(),
                other => other.as_u64(),
            })
        };
        let need = |k: &str| num(k).ok_or_else(|| missing(&key(k)));
        let to_u32 = |v: u64, k: &str| {
            u32::try_from(v).map_err(|_| GgufError::Malformed {
                path: self.path.clone(),
                detail: format!("`{}` is {v}, too large", key(k)),
            })
        };
        let n_layers = to_u32(need("block_count")?, "block_count")?;
        let n_embd = to_u32(need("embedding_length")?, "embedding_length")?;
        let n_heads = to_u32(need("attention.head_count")?, "attention.head_count")?;
        let n_kv_heads = to_u32(
            num("attention.head_count_kv").unwrap_or(n_heads as u64),
            "attention.head_count_kv",
        )?;
        let head_dim = match num("attention.key_length") {
            Some(v) => to_u32(v, "attention.key_length")?,
            None if n_heads > 0 => n_embd / n_heads,
            None => 0,
        };
        let n_ff = to_u32(
            num("feed_forward_length").unwrap_or(0),
            "feed_forward_length",
        )?;
        let context_length = to_u32(num("context_length").unwrap_or(0), "context_length")?;
        let embd = self.tensors.iter().find(|t| t.summary.is_token_embedding());
        let vocab = num("vocab_size")
            .or_else(|| {
                self.get("tokenizer.ggml.tokens")
                    .and_then(MetaValue::as_array)
                    .map(|a| a.len() as u64)
            })
            .or_else(|| embd.and_then(|t| t.summary.dims.get(1).copied()))
            .ok_or_else(|| missing(&key("vocab_size")))?;
        let tied_embeddings = !self
            .tensors
            .iter()
            .any(|t| t.summary.name == "output.weight");
        let vocab_size = to_u32(vocab, "vocab_size")?;
        Ok(ModelShape {
            architecture: arch.clone(),
            n_layers,
            n_embd,
            n_ff,
            n_heads,
            n_kv_heads,
            head_dim,
            vocab_size,
            context_length,
            tied_embeddings,
        })
    }

    /// Shape, tensor table and metadata in one value.
    pub fn into_model(self) -> Result<GgufModel, GgufError> {
        let shape = self.shape()?;
        let tensors = self.tensor_summaries();
        let chat_template = self
            .get("tokenizer.chat_template")
            .and_then(MetaValue::as_str)
            .map(str::to_string);
        Ok(GgufModel {
            total_params: tensors
                .iter()
                .fold(0u64, |a, t| a.saturating_add(t.n_elements)),
            tensor_bytes: tensors
                .iter()
                .fold(0u64, |a, t| a.saturating_add(t.n_bytes)),
            file_bytes: self.file_bytes,
            shape,
            tensors,
            chat_template,
            metadata: self.metadata.into_iter().collect(),
        })
    }
}

impl GgufModel {
    /// Weight parameters and bytes read per decoded token: every tensor except the token embedding
    /// (one row of it is looked up per token). With tied embeddings the table doubles as the output
    /// projection and is read in full.
    pub fn per_token_weights(&self) -> (u64, u64) {
        per_token_weights(&self.tensors, self.shape.tied_embeddings)
    }

    /// The ggml type holding most of the per-token weight bytes.
    pub fn dominant_type(&self) -> Option<GgmlType> {
        dominant_type(&self.tensors)
    }
}

/// `(params, bytes)` read per decoded token from a tensor table; see [`GgufModel::per_token_weights`].
pub fn per_token_weights(tensors: &[TensorSummary], tied_embeddings: bool) -> (u64, u64) {
    tensors
        .iter()
        .filter(|t| tied_embeddings || !t.is_token_embedding())
        .fold((0, 0), |(p, b), t| (p + t.n_elements, b + t.n_bytes))
}

/// The type with the most bytes among 2-D tensors, embedding excluded.
pub fn dominant_type(tensors: &[TensorSummary]) -> Option<GgmlType> {
    let mut by_type: BTreeMap<GgmlType, u64> = BTreeMap::new();
    for t in tensors
        .iter()
        .filter(|t| t.dims.len() >= 2 && !t.is_token_embedding())
    {
        *by_type.entry(t.ggml_type).or_default() += t.n_bytes;
    }
    by_type.into_iter().max_by_key(|&(_, b)| b).map(|(t, _)| t)
}

/// Sequential little-endian reads that know the file length, so a short read is reported as
/// truncation of a named field and absurd lengths are refused before allocating.
struct Reader<'p, R> {
    inner: R,
    pos: u64,
    file_bytes: u64,
    path: &'p Path,
}

/// Nested arrays deeper than this are treated as corruption.
const MAX_ARRAY_DEPTH: u32 = 4;
/// Limits far above any real model (the largest vocabularies have about 260k tokens and 500k
/// merges, the largest tensor tables a few tens of thousands of entries), low enough that
/// what a header claims can be held in memory.
pub const MAX_METADATA_KEYS: u64 = 1 << 16;
pub const MAX_TENSORS: u64 = 1 << 20;
pub const MAX_ARRAY_LEN: u64 = 1 << 24;
pub const MAX_STRING_BYTES: u64 = 1 << 26;
/// Elements reserved up front for a claimed count; more are added as they are read.
const PREALLOCATE: u64 = 1 << 12;

/// The fewest bytes a value of GGUF type `ty` takes in a file (an unknown type is refused when
/// it is read).
fn min_encoded_bytes(ty: u32) -> u64 {
    match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        // A string is at least its 8-byte length; an array its type and count.
        8 | 10..=12 => 8,
        9 => 12,
        _ => 1,
    }
}

impl<R: Read> Reader<'_, R> {
    fn malformed(&self, detail: String) -> GgufError {
        GgufError::Malformed {
            path: self.path.to_path_buf(),
            detail,
        }
    }

    fn truncated(&self, what: &str) -> GgufError {
        GgufError::TruncatedHeader {
            path: self.path.to_path_buf(),
            file_bytes: self.file_bytes,
            what: what.to_string(),
        }
    }

    /// Read up to `buf.len()` bytes; returns how many were available.
    fn read_some(&mut self, buf: &mut [u8]) -> Result<usize, GgufError> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(GgufError::Io {
                        path: self.path.to_path_buf(),
                        source,
                    })
                }
            }
        }
        self.pos += got as u64;
        Ok(got)
    }

    fn exact(&mut self, buf: &mut [u8], what: &str) -> Result<(), GgufError> {
        if self.read_some(buf)? < buf.len() {
            return Err(self.truncated(what));
        }
        Ok(())
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], GgufError> {
        let mut b = [0u8; N];
        self.exact(&mut b, what)?;
        Ok(b)
    }

    fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn string(&mut self, what: &str) -> Result<String, GgufError> {
        let len = self.u64(what)?;
        if len > self.file_bytes.saturating_sub(self.pos) {
            return Err(self.truncated(what));
        }
        if len > MAX_STRING_BYTES {
            return Err(self.malformed(format!(
                "{what} claims {len} bytes (at most {MAX_STRING_BYTES} are accepted)"
            )));
        }
        // Grown as bytes arrive, so a claimed length costs nothing until it is really there.
        let mut buf = Vec::with_capacity(len.min(PREALLOCATE) as usize);
        let got = (&mut self.inner)
            .take(len)
            .read_to_end(&mut buf)
            .map_err(|source| GgufError::Io {
                path: self.path.to_path_buf(),
                source,
            })?;
        self.pos += got as u64;
        if (got as u64) < len {
            return Err(self.truncated(what));
        }
        String::from_utf8(buf).map_err(|_| self.malformed(format!("{what} is not valid UTF-8")))
    }

    fn value(&mut self, ty: u32, key: &str, depth: u32) -> Result<MetaValue, GgufError> {
        let what = format!("the value of metadata `{key}`");
        Ok(match ty {
            0 => MetaValue::U8(u8::from_le_bytes(self.array(&what)?)),
            1 => MetaValue::I8(i8::from_le_bytes(self.array(&what)?)),
            2 => MetaValue::U16(u16::from_le_bytes(self.array(&what)?)),
            3 => MetaValue::I16(i16::from_le_bytes(self.array(&what)?)),
            4 => MetaValue::U32(u32::from_le_bytes(self.array(&what)?)),
            5 => MetaValue::I32(i32::from_le_bytes(self.array(&what)?)),
            6 => MetaValue::F32(f32::from_le_bytes(self.array(&what)?)),
            7 => {
                let [b] = self.array::<1>(&what)?;
                match b {
                    0 => MetaValue::Bool(false),
                    1 => MetaValue::Bool(true),
                    _ => {
                        return Err(
                            self.malformed(format!("metadata `{key}` is a bool of value {b}"))
                        )
                    }
                }
            }
            8 => MetaValue::String(self.string(&what)?),
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(self.malformed(format!("metadata `{key}` nests arrays too deeply")));
                }
                let elem = self.u32(&what)?;
                let n = self.u64(&what)?;
                // Every element takes at least one byte: a longer array cannot be in this file.
                if n.saturating_mul(min_encoded_bytes(elem))
                    > self.file_bytes.saturating_sub(self.pos)
                {
                    return Err(self.truncated(&what));
                }
                if n > MAX_ARRAY_LEN {
                    return Err(self.malformed(format!(
                        "metadata `{key}` claims {n} array elements (at most {MAX_ARRAY_LEN} are accepted)"
                    )));
                }
                let mut items = Vec::with_capacity(n.min(PREALLOCATE) as usize);
                for _ in 0..n {
                    items.push(self.value(elem, key, depth + 1)?);
                }
                MetaValue::Array(elem, items)
            }
            10 => MetaValue::U64(u64::from_le_bytes(self.array(&what)?)),
            11 => MetaValue::I64(i64::from_le_bytes(self.array(&what)?)),
            12 => MetaValue::F64(f64::from_le_bytes(self.array(&what)?)),
            other => {
                return Err(
                    self.malformed(format!("metadata `{key}` has unknown value type {other}"))
                )
            }
        })
    }
}

//! The benchmark's generated models: their shapes, and the cache that writes each once.
//!
//! Two models per type. Prefill is measured on a 2048-wide model of [`PREFILL_LAYERS`] layers:
//! prompt processing is compute-bound, the cache hardly changes it (a 1024-wide Q8_0 model
//! processed 547 and 519 GFLOP/s at 12 and 48 layers, 162 and 593 MB), but the matrices' width
//! does (the same 180 M weights of Q4_K at widths 1024, 2048 and 4096: 1052, 1491 and 4127 prompt
//! tokens/s on a 2-core Xeon VM with AMX). Decode is measured on a model of the same width with
//! enough layers to read [`DECODE_MODEL_BYTES`] per token: a smaller one decodes from the cache,
//! not from RAM. On that VM, whose `lscpu` reports a host-wide 480 MiB L3, 1024-wide Q8_0 models
//! read 26.8, 22.5 and 21.6 GB/s at 162, 306 and 593 MB, and 80 MB models of Q4_0 and Q4_K
//! decoded 1.5-1.8x faster per weight than 160-300 MB ones; the real files (290-620 MB) ran at
//! the large models' rates. (A probe's L3 size is no guide on a VM: it is the host's, shared
//! with its other guests.) The width curve of prefill and prefill's context growth come from the
//! half-width model of [`width_shapes`] (the growth also from its twin with larger heads,
//! [`wide_head_shape`]), the fixed cost per prompt from its twice-as-deep one. Decode's attention
//! comes from the Q4_K, the ungrouped ([`UNGROUPED_TYPE`]) and the wide-head
//! ([`WIDE_HEAD_DECODE_TYPE`]) decode models at a deep context.

use std::path::{Path, PathBuf};

use crate::gguf::reader::{self, GgufError};
use crate::gguf::writer::{self, GgufWriteError, ModelSpec, WeightLayout, WRITER_VERSION};
use crate::gguf::{GgmlType, ModelShape, TensorSummary};
use crate::progress::Progress;

/// The quantisation types measured by default: those the registry's models are made of, and
/// those llama.cpp's quantiser puts into real files besides their main type (Q5_0 where a
/// K-quant file's row length is not a multiple of 256, as in 640- and 896-wide models; Q3_K in
/// Q3_K_M files; IQ4_XS files). Predicting one type by another of similar bits per weight missed
/// by up to 45 % (a 0.5B-shape Q4_K_M file, mostly Q5_0 rows, measured with
/// bench/bench-accuracy.sh).
pub const DEFAULT_TYPES: &[GgmlType] = &[
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::F16,
    GgmlType::Q5_0,
    GgmlType::Q3_K,
    GgmlType::IQ4_XS,
];

/// The type measured at half the width (the width curve of prefill; there, at a second prompt
/// length, the context growth) and at twice the depth (the fixed cost per prompt).
pub const CONVERGENCE_TYPE: GgmlType = GgmlType::Q4_K;

/// The type whose decode model has a KV head per query head (no grouped-query attention; the
/// others group four query heads per KV head, as most models of the tiers do). Decode at a deep
/// context on it and on [`CONVERGENCE_TYPE`]'s decode model tells what attention costs per query
/// head and per KV head apart (its 6 layers read 310 MB).
pub const UNGROUPED_TYPE: GgmlType = GgmlType::Q8_0;

/// The type whose decode model has heads of [`WIDE_HEAD_DIM`] (as many query heads per KV head as
/// the others): with the other two, the third model that tells decode's attention per head from
/// its cost per head element (its 8 layers read 340 MB).
pub const WIDE_HEAD_DECODE_TYPE: GgmlType = GgmlType::Q6_K;

/// The type whose prefill model's load is also timed from the disk (its pages dropped from the
/// page cache): on x86 llama.cpp maps Q8_0 weights as they are (Q4_0 and Q4_K it repacks at
/// load), so that load is the file's read.
pub const COLD_LOAD_TYPE: GgmlType = GgmlType::Q8_0;

/// Layers of the prefill models (2048 wide: 90 M weights, 50 MB in Q4_K; the last layer's
/// feed-forward runs for the last prompt token only).
pub const PREFILL_LAYERS: u32 = 2;

/// Weight bytes a decode model reads per token, at least: beyond what the cache holds of it.
pub const DECODE_MODEL_BYTES: u64 = 300_000_000;

/// A llama-shaped model of `n_layers` layers, 2048 wide like the 1-3 B models the tiers hold
/// (GQA 4, 64-dimension heads), every dimension a multiple of 256 so that each type (K-quants
/// included) applies to every weight matrix without fallback.
pub fn bench_shape(n_layers: u32) -> ModelShape {
    ModelShape {
        architecture: "llama".into(),
        n_layers,
        n_embd: 2048,
        n_ff: 5632,
        n_heads: 32,
        n_kv_heads: 8,
        head_dim: 64,
        vocab_size: 8192,
        context_length: 2048,
        tied_embeddings: false,
    }
}

/// Layers of the decode model of `ggml_type` in `shape`: the fewest, and at least the shape's
/// own, that read `min_bytes` of weights per token.
pub fn decode_layers(shape: &ModelShape, ggml_type: GgmlType, min_bytes: u64) -> u32 {
    let bytes_at = |layers: u32| {
        let mut s = shape.clone();
        s.n_layers = layers;
        let tensors = WeightLayout::Uniform(ggml_type).tensors(&s);
        reader::per_token_weights(&tensors, s.tied_embeddings).1
    };
    let fixed = bytes_at(0);
    let per_layer = bytes_at(1).saturating_sub(fixed).max(1);
    let needed = min_bytes.saturating_sub(fixed).div_ceil(per_layer);
    u32::try_from(needed)
        .unwrap_or(u32::MAX)
        .max(shape.n_layers)
        .max(1)
}

/// The decode model's shape of `ggml_type` for the prefill models' `shape`: ungrouped KV heads
/// for [`UNGROUPED_TYPE`], heads of [`WIDE_HEAD_DIM`] for [`WIDE_HEAD_DECODE_TYPE`] (where the
/// width holds two of them and the shape's own are smaller), and [`decode_layers`] layers.
pub fn decode_shape(shape: &ModelShape, ggml_type: GgmlType, min_bytes: u64) -> ModelShape {
    let mut s = shape.clone();
    if ggml_type == UNGROUPED_TYPE {
        s.n_kv_heads = s.n_heads;
    }
    if ggml_type == WIDE_HEAD_DECODE_TYPE && s.head_dim < WIDE_HEAD_DIM {
        if let Some(wide) = with_wide_heads(&s) {
            s = wide;
        }
    }
    s.n_layers = decode_layers(&s, ggml_type, min_bytes);
    s
}

/// Head size of the second growth model: most models of 1.5 B weights and more use heads of 128
/// (the benchmark's own are 64). On a 2-core Xeon VM, a 1024-wide Q4_K model of 128-dimension
/// heads grew its prompt token's time from 128 to 512 prompt tokens by 0.097 ms, one of 64 by
/// 0.155 ms, for the same attention FLOP.
pub const WIDE_HEAD_DIM: u32 = 128;

/// The half-width growth model of `shape` with heads of [`WIDE_HEAD_DIM`] (as many query heads
/// per KV head as `shape`); `None` when the half width does not hold two such heads or the shape's
/// own heads are that size already.
pub fn wide_head_shape(shape: &ModelShape) -> Option<ModelShape> {
    let half = width_shapes(shape)
        .into_iter()
        .find(|s| s.n_embd < shape.n_embd)?;
    if half.head_dim == WIDE_HEAD_DIM {
        return None;
    }
    with_wide_heads(&half)
}

/// `shape` with heads of [`WIDE_HEAD_DIM`] over its width, as many query heads per KV head as
/// before; `None` when the width does not hold two such heads exactly.
fn with_wide_heads(shape: &ModelShape) -> Option<ModelShape> {
    let heads = shape.n_embd / WIDE_HEAD_DIM;
    if heads < 2 || !shape.n_embd.is_multiple_of(WIDE_HEAD_DIM) {
        return None;
    }
    let group = (shape.n_heads / shape.n_kv_heads.max(1)).max(1);
    let mut s = shape.clone();
    s.head_dim = WIDE_HEAD_DIM;
    s.n_heads = heads;
    s.n_kv_heads = (heads / group).max(1);
    Some(s)
}

/// The prefill model's shape at half its width with four times its layers (about the same
/// weights; heads and the feed-forward scale with the width, the head size stays), and at its
/// own width with twice its layers (the depth model: the fixed cost of a prompt is the
/// difference the extra layers do not explain).
pub fn width_shapes(shape: &ModelShape) -> Vec<ModelShape> {
    let scaled = |num: u32, den: u32, layers: u32| {
        let mut s = shape.clone();
        s.n_embd = shape.n_embd * num / den;
        s.n_ff = shape.n_ff * num / den;
        s.n_heads = (shape.n_heads * num / den).max(1);
        s.n_kv_heads = (shape.n_kv_heads * num / den).max(1);
        s.n_layers = layers.max(1);
        s
    };
    let mut out = Vec::new();
    if shape.n_embd >= 512 && shape.n_ff.is_multiple_of(2) {
        out.push(scaled(1, 2, shape.n_layers * 4));
    }
    out.push(scaled(1, 1, shape.n_layers * 2));
    out
}

/// The spec of the benchmark model for `ggml_type` at `n_layers`.
pub fn bench_spec(ggml_type: GgmlType, n_layers: u32) -> ModelSpec {
    spec_for(&bench_shape(n_layers), ggml_type)
}

/// A benchmark model of `shape` with every weight matrix in `ggml_type`.
pub fn spec_for(shape: &ModelShape, ggml_type: GgmlType) -> ModelSpec {
    let n_layers = shape.n_layers;
    let mut spec = ModelSpec::new(shape.clone(), WeightLayout::Uniform(ggml_type));
    spec.name = format!("minerva-bench-{}-{}l", ggml_type.name(), n_layers);
    spec
}

/// File name in the cache: writer version, shape, layout and seed, so a change to any of them
/// writes a new file instead of trusting an old one.
pub fn cache_key(spec: &ModelSpec) -> String {
    let s = &spec.shape;
    format!(
        "w{WRITER_VERSION}-{}-l{}-e{}-f{}-h{}-kv{}-d{}-v{}-{}-s{:x}.gguf",
        s.architecture,
        s.n_layers,
        s.n_embd,
        s.n_ff,
        s.n_heads,
        s.n_kv_heads,
        s.head_dim,
        s.vocab_size,
        spec.layout.label(),
        spec.seed
    )
}

/// A benchmark model on disk.
#[derive(Debug, Clone)]
pub struct BenchModel {
    pub path: PathBuf,
    /// The model's shape (layers, heads: the attention it computes per token).
    pub shape: ModelShape,
    pub tensors: Vec<TensorSummary>,
    pub tied_embeddings: bool,
    pub file_bytes: u64,
    /// Whether this run wrote it (false: found in the cache, or a user's file).
    pub written: bool,
}

/// Why a benchmark model is not available.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Write(#[from] GgufWriteError),
    #[error(transparent)]
    Read(#[from] GgufError),
}

/// The model for `spec` under `cache_dir/bench/`: reused when a file of the exact expected size
/// whose header matches is there, written (atomically) otherwise.
pub fn ensure_cached(
    cache_dir: &Path,
    spec: &ModelSpec,
    progress: &dyn Progress,
) -> Result<BenchModel, ModelError> {
    let path = cache_dir.join("bench").join(cache_key(spec));
    let expected_tensors = spec.layout.tensors(&spec.shape);
    let expected_bytes = writer::expected_file_bytes(spec);
    if std::fs::metadata(&path)
        .map(|m| m.len() == expected_bytes)
        .unwrap_or(false)
    {
        if let Ok(h) = reader::read_header(&path) {
            if h.tensor_summaries() == expected_tensors {
                return Ok(BenchModel {
                    path,
                    shape: spec.shape.clone(),
                    tensors: expected_tensors,
                    tied_embeddings: spec.shape.tied_embeddings,
                    file_bytes: expected_bytes,
                    written: false,
                });
            }
        }
    }
    remove_stale_temporaries(&path);
    let w = writer::write_model_with_progress(&path, spec, progress)?;
    Ok(BenchModel {
        path,
        shape: spec.shape.clone(),
        tensors: w.tensors,
        tied_embeddings: spec.shape.tied_embeddings,
        file_bytes: w.file_bytes,
        written: true,
    })
}

/// A temporary file older than this is left over from a killed run, not one being written.
const STALE_TEMPORARY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Delete `.<name>.tmp-*` files a killed run left next to `path` (they are never trusted,
/// but each is as large as a model).
fn remove_stale_temporaries(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let stale = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_TEMPORARY);
        if stale && e.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// A user-supplied GGUF (`--bench-model`), described from its header.
pub fn from_file(path: &Path) -> Result<BenchModel, ModelError> {
    let m = reader::read_model(path)?;
    Ok(BenchModel {
        path: path.to_path_buf(),
        shape: m.shape.clone(),
        tied_embeddings: m.shape.tied_embeddings,
        tensors: m.tensors,
        file_bytes: m.file_bytes,
        written: false,
    })
}

impl BenchModel {
    /// `(params, bytes)` read per decoded token.
    pub fn per_token(&self) -> (u64, u64) {
        reader::per_token_weights(&self.tensors, self.tied_embeddings)
    }

    /// The type of most of the weight bytes.
    pub fn dominant_type(&self) -> GgmlType {
        reader::dominant_type(&self.tensors).unwrap_or(GgmlType::F32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_type_fits_every_row_of_every_bench_shape() {
        let main = bench_shape(PREFILL_LAYERS);
        let mut shapes = width_shapes(&main);
        shapes.push(main);
        for shape in &shapes {
            for &t in DEFAULT_TYPES {
                for x in spec_for(shape, t)
                    .layout
                    .tensors(shape)
                    .iter()
                    .filter(|x| x.dims.len() == 2)
                {
                    assert_eq!(
                        x.ggml_type, t,
                        "{} of {} wide fell back",
                        x.name, shape.n_embd
                    );
                }
            }
        }
    }

    #[test]
    fn width_models_scale_heads_and_weights_with_the_width() {
        let main = bench_shape(PREFILL_LAYERS);
        let matmul = |s: &ModelShape| {
            let t = WeightLayout::Uniform(GgmlType::Q4_K).tensors(s);
            let output = s.vocab_size as u64 * s.n_embd as u64;
            reader::per_token_weights(&t, false).0 - output
        };
        let widths: Vec<(u32, u32)> = width_shapes(&main)
            .iter()
            .map(|s| (s.n_embd, s.n_layers))
            .collect();
        assert_eq!(widths, [(1024, 8), (2048, 4)]);
        for (s, want) in width_shapes(&main).iter().zip([1.0, 2.0]) {
            let ratio = matmul(s) as f64 / matmul(&main) as f64;
            assert!(
                (ratio / want - 1.0).abs() < 0.02,
                "{} wide: {ratio}",
                s.n_embd
            );
            assert_eq!(s.n_heads * s.head_dim, s.n_embd);
            assert_eq!(s.n_heads / s.n_kv_heads, main.n_heads / main.n_kv_heads);
        }
    }

    #[test]
    fn decode_models_read_at_least_the_decode_bytes_and_no_layer_more() {
        let main = bench_shape(PREFILL_LAYERS);
        let bytes = |t: GgmlType, layers: u32| {
            let mut s = main.clone();
            s.n_layers = layers;
            reader::per_token_weights(&WeightLayout::Uniform(t).tensors(&s), false).1
        };
        for &t in DEFAULT_TYPES {
            let l = decode_layers(&main, t, DECODE_MODEL_BYTES);
            assert!(bytes(t, l) >= DECODE_MODEL_BYTES, "{t}: {l} layers");
            assert!(
                l == PREFILL_LAYERS || bytes(t, l - 1) < DECODE_MODEL_BYTES,
                "{t}: {l} layers is one too many"
            );
        }
        assert_eq!(decode_layers(&main, GgmlType::Q4_K, DECODE_MODEL_BYTES), 12);
        assert_eq!(decode_layers(&main, GgmlType::F16, DECODE_MODEL_BYTES), 3);
        assert_eq!(decode_layers(&main, GgmlType::Q4_K, 0), PREFILL_LAYERS);
    }

    #[test]
    fn cache_keys_differ_by_type_size_and_seed() {
        let a = cache_key(&bench_spec(GgmlType::Q4_K, 12));
        assert_ne!(a, cache_key(&bench_spec(GgmlType::Q6_K, 12)));
        assert_ne!(a, cache_key(&bench_spec(GgmlType::Q4_K, 6)));
        let mut s = bench_spec(GgmlType::Q4_K, 12);
        s.seed += 1;
        assert_ne!(a, cache_key(&s));
        assert!(a.starts_with(&format!("w{WRITER_VERSION}-")), "{a}");
    }
}

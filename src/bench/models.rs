//! The benchmark's generated models: their shapes, and the cache that writes each once.
//!
//! Sizing: every model must be well beyond the last-level cache, or the cache flatters decode
//! speed (a VM may report a host-wide L3, so the size is not taken from the probe; the benchmark
//! checks instead that two sizes of one type give the same weights per second). It must also be
//! small enough that writing all of them and running all of them fits the time budget. 12 layers
//! of width 1024 with an 8192-token vocabulary read 143 M weights per token: 77 MiB in Q4_K,
//! 274 MiB in F16, 2.4–8.6× this machine's 32 MiB L3; the 24-layer Q4_K model for the
//! convergence check and the per-token overhead reads 279 M (150 MiB). (A 6-layer, 41 MiB model
//! measured up to 20 % more weights per second than the 12-layer one here: too close to the L3.)

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

/// The type measured at a second size for the convergence check and the per-token overhead.
pub const CONVERGENCE_TYPE: GgmlType = GgmlType::Q4_K;

/// Layers of the main benchmark models, and of the second, larger model of
/// [`CONVERGENCE_TYPE`]: both beyond the cache, so that their weights per second agree unless
/// the cache still flatters the first.
pub const LARGE_LAYERS: u32 = 12;
pub const SECOND_LAYERS: u32 = 24;

/// A llama-shaped model of `n_layers` layers, every dimension a multiple of 256 so that each type
/// (K-quants included) applies to every weight matrix without fallback.
pub fn bench_shape(n_layers: u32) -> ModelShape {
    ModelShape {
        architecture: "llama".into(),
        n_layers,
        n_embd: 1024,
        n_ff: 2816,
        n_heads: 16,
        n_kv_heads: 4,
        head_dim: 64,
        vocab_size: 8192,
        context_length: 2048,
        tied_embeddings: false,
    }
}

/// Layers of the benchmark model of `ggml_type` when the main models have `n_layers`: a third more
/// for types under 4 bits per weight, so that Q3_K's model (59 MiB of weights at 12 layers) is
/// also beyond twice a 32 MiB cache (79 MiB at 16); half for 16-bit types, whose model is then
/// still 137 MiB and takes half the time of the budget (F16 decodes and prefills at a third of
/// Q4_K's speed).
pub fn layers_for(ggml_type: GgmlType, n_layers: u32) -> u32 {
    let bits = ggml_type.bits_per_weight();
    if bits < 4.0 {
        n_layers + n_layers.div_ceil(3)
    } else if bits >= 16.0 {
        n_layers.div_ceil(2)
    } else {
        n_layers
    }
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
    fn every_default_type_fits_every_row_of_the_bench_shape() {
        for &t in DEFAULT_TYPES {
            let tensors = bench_spec(t, LARGE_LAYERS)
                .layout
                .tensors(&bench_shape(LARGE_LAYERS));
            for x in tensors.iter().filter(|x| x.dims.len() == 2) {
                assert_eq!(x.ggml_type, t, "{} fell back", x.name);
            }
        }
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

    #[test]
    fn large_models_are_well_beyond_a_32_mib_cache() {
        for &t in DEFAULT_TYPES {
            let layers = layers_for(t, LARGE_LAYERS);
            let m = BenchModel {
                path: PathBuf::new(),
                shape: bench_shape(layers),
                tensors: bench_spec(t, layers).layout.tensors(&bench_shape(layers)),
                tied_embeddings: false,
                file_bytes: 0,
                written: false,
            };
            assert!(m.per_token().1 > 2 * (32 << 20), "{t}: {}", m.per_token().1);
        }
    }
}

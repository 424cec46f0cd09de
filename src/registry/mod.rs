//! The model registry (`registry/*.json`, one file per model family) and the tier table
//! (`tiers.json`), loaded into typed values and validated.
//!
//! Both ship inside the binary ([`Registry::embedded`], [`Tiers::embedded`]) and can be replaced
//! by a directory or file given with `--registry` / `--tiers`. Every check names the file, the
//! entry and the field it failed on, so a hand-edited registry is fixed in one go.
//!
//! A family file is `{"schema_version": 1, "family": ..., "files": [ENTRY, ...]}`; an entry names
//! its repository, revision, quantisation, parameters, shape and licence, and either one file
//! (`filename`, `sha256`, `size_bytes`) or, for a model split by llama.cpp's gguf-split, its
//! `parts`: `[{"filename": "NAME-00001-of-00003.gguf", "sha256": ..., "size_bytes": ...}, ...]`,
//! every part of `NAME-0000k-of-0000N.gguf` in order (k = 1..N, one N, one NAME, at least two
//! parts). A split model is installable when every part has its sha256; its size is the sum of
//! the parts'.
//! Knows nothing about hardware, predictions or the network.

mod load;
mod pin;

pub use load::{RegistryError, EMBEDDED_REGISTRY_FILES, EMBEDDED_TIERS};
pub use pin::{pin_family_text, Pin};

use serde::{Deserialize, Serialize};

use crate::gguf::{FileType, ModelShape, TensorSummary};
use crate::profile::SimdLevel;
use crate::types::capabilities::Capability;
use crate::types::workload::Workload;

/// Version of the registry and tier file schemas.
pub const REGISTRY_SCHEMA_VERSION: u32 = 1;

/// One GGUF file of a model, as listed in a family file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// Stable id used by tiers and on the command line, e.g. `qwen2.5-1.5b-instruct-q4_k_m`.
    pub id: String,
    /// Hugging Face repository, `owner/name`.
    pub repo: String,
    /// Git revision to download: `main` unless a commit is pinned.
    #[serde(default = "main_revision")]
    pub revision: String,
    /// File name inside the repository (no directories). For a model in `parts`, the first
    /// part's name (filled in by the loader; the entry itself does not give it).
    #[serde(default)]
    pub filename: String,
    /// SHA-256 of the file: 64 lowercase hex characters, or null when no source gave one. Null
    /// for a model in `parts`: each part has its own.
    pub sha256: Option<String>,
    /// Exact size in bytes, or null when unknown (the predictor then estimates it). For a model
    /// in `parts`, the sum of the parts' sizes (filled in by the loader when all are known).
    pub size_bytes: Option<u64>,
    /// A model published split by llama.cpp's gguf-split: every part, first part first, instead
    /// of `filename`, `sha256` and `size_bytes`. Empty for a model in one file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<ModelPart>,
    /// llama.cpp file type label (`Q4_K_M`, `Q8_0`, ...).
    pub quantisation: FileType,
    /// Parameters of the base model (config.json / model card).
    pub parameters: u64,
    /// Upstream model id the file was converted from.
    #[serde(default)]
    pub base_model: Option<String>,
    pub shape: ModelShape,
    pub licence: String,
    /// Whether downloading needs an accepted licence and an `HF_TOKEN`.
    #[serde(default)]
    pub gated: bool,
    /// Where the checksum (and size) came from.
    #[serde(default)]
    pub checksum_source: Option<String>,
    #[serde(default)]
    pub notes: Vec<String>,
    /// The family file this entry was loaded from (filled in by the loader).
    #[serde(skip_deserializing, default)]
    pub family: String,
    /// The file's real tensor table, when its header was read (a model named on the command
    /// line rather than listed): the predictor then uses it instead of the table estimated
    /// from shape and file type.
    #[serde(skip)]
    pub tensors: Option<Vec<TensorSummary>>,
    /// The family file of a registry directory this entry was read from (filled in by
    /// [`load_registry_dir`]; `None` for the embedded registry and for models named on the
    /// command line).
    #[serde(skip)]
    pub source_file: Option<std::path::PathBuf>,
}

/// One part of a split model (`NAME-0000k-of-0000N.gguf`), as listed in `parts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPart {
    /// File name inside the repository (no directories), of llama.cpp's split pattern.
    pub filename: String,
    /// SHA-256 of the part, or null when no source gave one (the model is then not installable).
    pub sha256: Option<String>,
    /// Exact size in bytes, or null when unknown.
    pub size_bytes: Option<u64>,
}

fn main_revision() -> String {
    "main".to_string()
}

impl ModelFile {
    /// A file can be installed only when its checksum is known: without one, a download cannot
    /// be told apart from a corrupted or replaced file.
    /// A split model needs the checksum of every part.
    pub fn installable(&self) -> bool {
        self.not_installable_reason().is_none()
    }

    /// Why the file cannot be installed, if it cannot.
    pub fn not_installable_reason(&self) -> Option<String> {
        if let Some(p) = self.parts.iter().find(|p| p.sha256.is_none()) {
            Some(format!(
                "part `{}` has no known sha256: listed for reference, not installable",
                p.filename
            ))
        } else if self.parts.is_empty() && self.sha256.is_none() {
            Some("no known sha256: listed for reference, not installable".to_string())
        } else {
            None
        }
    }

    /// Whether the model is published in several parts.
    pub fn is_split(&self) -> bool {
        !self.parts.is_empty()
    }

    /// The files to download, the one llama.cpp is given first: the parts of a split model, else
    /// the one file.
    pub fn files(&self) -> Vec<ModelPart> {
        if self.is_split() {
            self.parts.clone()
        } else {
            vec![ModelPart {
                filename: self.filename.clone(),
                sha256: self.sha256.clone(),
                size_bytes: self.size_bytes,
            }]
        }
    }

    /// `https://huggingface.co/<repo>/resolve/<revision>/<filename>` on the given endpoint (the
    /// first part of a split model).
    pub fn url(&self, endpoint: &str) -> String {
        format!(
            "{}/{}/resolve/{}/{}",
            endpoint.trim_end_matches('/'),
            self.repo,
            self.revision,
            self.filename
        )
    }
}

/// All model files, from every family file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Registry {
    /// Where it was loaded from: `embedded` or a directory.
    pub origin: String,
    pub files: Vec<ModelFile>,
}

impl Registry {
    pub fn get(&self, id: &str) -> Option<&ModelFile> {
        self.files.iter().find(|f| f.id == id)
    }
}

/// Hard requirements of a tier. Absent fields impose nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirements {
    /// Usable RAM (cgroup limit included), GiB.
    #[serde(default)]
    pub min_ram_gib: f64,
    /// Total VRAM over all usable GPUs, GiB.
    #[serde(default)]
    pub min_vram_gib: f64,
    #[serde(default)]
    pub min_gpus: u32,
    /// Cores for compute (physical, capped by a CPU quota).
    #[serde(default)]
    pub min_cores: u32,
    /// Free disk where models are stored, GiB.
    #[serde(default)]
    pub min_disk_gib: f64,
    /// The CPU must reach at least one of these SIMD levels (any of; empty = no requirement).
    /// Several are given so that an x86 level and an ARM level can both qualify.
    #[serde(default)]
    pub min_simd: Vec<SimdLevel>,
}

/// What a tier promises.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierPromise {
    /// Seconds per turn with the model loaded.
    pub turn_s: f64,
    /// Seconds to load the model from disk after a restart.
    pub cold_load_s: f64,
}

/// One tier of `tiers.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub id: String,
    #[serde(default)]
    pub description: String,
    pub requirements: Requirements,
    pub workload: Workload,
    pub promise: TierPromise,
    /// Registry ids, most preferred first.
    pub candidates: Vec<String>,
    /// Capabilities a verification must find besides the promise (`tool-call`,
    /// `chat-template`); without them their results are recorded but fail nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<Capability>,
}

/// The ordered tier table, best first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tiers {
    /// Where it was loaded from: `embedded` or a file.
    pub origin: String,
    pub source: String,
    pub tiers: Vec<Tier>,
}

impl Tiers {
    pub fn get(&self, id: &str) -> Option<&Tier> {
        self.tiers.iter().find(|t| t.id == id)
    }
}

pub use load::{load_registry_dir, load_tiers_file, parse_family, parse_tiers, validate_tiers};

impl Registry {
    /// The registry compiled into the binary.
    pub fn embedded() -> Result<Registry, RegistryError> {
        load::embedded_registry()
    }
}

impl Tiers {
    /// The tier table compiled into the binary, checked against `registry`.
    pub fn embedded(registry: &Registry) -> Result<Tiers, RegistryError> {
        let tiers = parse_tiers(EMBEDDED_TIERS, "tiers.json (embedded)")?;
        validate_tiers(&tiers, registry)?;
        Ok(tiers)
    }
}

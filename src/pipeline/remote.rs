//! A model named `hf:ORG/REPO/PATH.gguf` or `hf:ORG/REPO:QUANT` rather than listed in the
//! registry: resolved to one file of the repository, its header read remotely (range requests,
//! see [`crate::fetch::remote`]) and turned into a registry entry with the file's real tensor
//! table, size and sha256, so that `predict`, `plan --model`, `install --model` and `download`
//! treat it like a listed model. Nothing is downloaded but the header.

use std::path::{Path, PathBuf};

use crate::fetch::remote::{
    display_name, list_repo_files, read_remote_header, RemoteError, RemoteFileInfo, RemoteHeader,
};
use crate::fetch::{files_for_quant, split_part, FetchOptions, HfFile, HfSpec};
use crate::gguf::reader::{GgufError, GgufModel};
use crate::gguf::{split, FileType};
use crate::registry::{ModelFile, ModelPart};

/// The registry family of models named on the command line.
pub const REMOTE_FAMILY: &str = "hf";

/// A remote model, resolved and inspected.
#[derive(Debug, Clone)]
pub struct RemoteModel {
    /// A registry entry for it: id `hf:ORG/REPO/PATH`, the revision pinned to the commit
    /// inspected when the server names it, sha256 and size from Hugging Face's metadata.
    pub file: ModelFile,
    pub model: GgufModel,
    pub hf: HfFile,
    pub info: RemoteFileInfo,
    /// Bytes of the file read for the header (0 when it came from the cache).
    pub bytes_fetched: u64,
    pub from_cache: bool,
}

/// Why a remote model could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error("{repo} has no GGUF file for `{quant}`{}", list_hint(available))]
    NoMatch {
        repo: String,
        quant: String,
        available: Vec<String>,
    },
    #[error("{repo} has {} GGUF files for `{quant}`: {}; name one as hf:{repo}/PATH", candidates.len(), candidates.join(", "))]
    Ambiguous {
        repo: String,
        quant: String,
        candidates: Vec<String>,
    },
    #[error("hf:{repo}/{path} is part {k} of a model split in {n} files; name its first part (…-00001-of-{n:05}.gguf)")]
    NotFirstPart {
        repo: String,
        path: String,
        k: u32,
        n: u32,
    },
    #[error(transparent)]
    Header(#[from] GgufError),
}

fn list_hint(available: &[String]) -> String {
    if available.is_empty() {
        " (it has no GGUF files at all)".to_string()
    } else {
        format!("; its GGUF files: {}", available.join(", "))
    }
}

/// Resolve `spec` at `revision` on `endpoint` and read its header (the token is sent when
/// `opts` has one, to Hugging Face's own host only). Headers are cached in `header_cache`.
pub fn resolve(
    spec: &HfSpec,
    endpoint: &str,
    revision: &str,
    opts: &FetchOptions,
    header_cache: Option<&Path>,
) -> Result<RemoteModel, ResolveError> {
    let send_token = opts.token.is_some();
    let (repo, path, listed) = match spec {
        HfSpec::File { repo, path } => (repo.clone(), path.clone(), None),
        HfSpec::Quant { repo, quant } => {
            let files = list_repo_files(endpoint, repo, revision, opts, send_token)?;
            let matches = files_for_quant(files.iter().map(|f| f.path.as_str()), quant);
            match matches.as_slice() {
                [one] => {
                    let entry = files.iter().find(|f| &f.path == one).cloned();
                    (repo.clone(), one.clone(), entry)
                }
                [] => {
                    return Err(ResolveError::NoMatch {
                        repo: repo.clone(),
                        quant: quant.clone(),
                        available: files
                            .iter()
                            .filter(|f| f.path.ends_with(".gguf"))
                            .map(|f| f.path.clone())
                            .collect(),
                    })
                }
                many => {
                    return Err(ResolveError::Ambiguous {
                        repo: repo.clone(),
                        quant: quant.clone(),
                        candidates: many.to_vec(),
                    })
                }
            }
        }
    };
    match split_part(&path) {
        Some((k, n)) if k != 1 => return Err(ResolveError::NotFirstPart { repo, path, k, n }),
        _ => {}
    }
    let hf = HfFile {
        endpoint: endpoint.to_string(),
        repo: repo.clone(),
        revision: revision.to_string(),
        path: path.clone(),
    };
    let RemoteHeader {
        header,
        mut info,
        mut bytes_fetched,
        mut from_cache,
        ..
    } = read_remote_header(&hf, opts, send_token, header_cache)?;
    // A split model: every part's header (and identity), read the same way, checked to belong
    // together as llama.cpp would check them.
    let mut others: Vec<(String, RemoteFileInfo)> = Vec::new();
    let first_name = PathBuf::from(display_name(&hf));
    let mut failure: Option<RemoteError> = None;
    let headers = split::read_parts_with(&first_name, header, &mut |p: &Path| {
        let Some(name) = p.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            return Ok(None);
        };
        let part_path = match path.rsplit_once('/') {
            Some((dir, _)) => format!("{dir}/{name}"),
            None => name,
        };
        let part = HfFile {
            path: part_path.clone(),
            ..hf.clone()
        };
        match read_remote_header(&part, opts, send_token, header_cache) {
            Ok(r) => {
                bytes_fetched += r.bytes_fetched;
                from_cache &= r.from_cache;
                others.push((part_path, r.info));
                Ok(Some(r.header))
            }
            Err(RemoteError::NotFound { .. }) => Ok(None),
            Err(RemoteError::Header(e)) => Err(e),
            Err(e) => {
                let shown = e.to_string();
                failure = Some(e);
                Err(GgufError::Malformed {
                    path: p.to_path_buf(),
                    detail: shown,
                })
            }
        }
    });
    let headers = match (headers, failure) {
        (Ok(h), _) => h,
        (Err(_), Some(network)) => return Err(network.into()),
        (Err(e), None) => return Err(e.into()),
    };
    if info.sha256.is_none() {
        // The listing has the LFS object id too; a failure to list costs only the pin.
        let listed = match listed {
            Some(e) => Some(e),
            None => list_repo_files(endpoint, &repo, revision, opts, send_token)
                .ok()
                .and_then(|files| files.into_iter().find(|f| f.path == path)),
        };
        info.sha256 = listed.and_then(|e| e.sha256);
    }
    let split_parts = !others.is_empty();
    let model = split::merge_parts(headers)?;
    let mut file = model_file(&hf, &info, &model, send_token);
    if split_parts {
        let mut parts = vec![ModelPart {
            filename: hf.path.clone(),
            sha256: info.sha256.clone(),
            size_bytes: Some(info.size_bytes),
        }];
        parts.extend(others.into_iter().map(|(p, i)| ModelPart {
            filename: p,
            sha256: i.sha256,
            size_bytes: Some(i.size_bytes),
        }));
        file.size_bytes = Some(parts.iter().filter_map(|p| p.size_bytes).sum());
        file.notes.push(format!(
            "split in {} parts; each part's sha256 and size from its own metadata",
            parts.len()
        ));
        file.parts = parts;
    }
    Ok(RemoteModel {
        file,
        model,
        hf,
        info,
        bytes_fetched,
        from_cache,
    })
}

/// The registry entry of a remote model.
fn model_file(hf: &HfFile, info: &RemoteFileInfo, model: &GgufModel, gated: bool) -> ModelFile {
    let meta_str = |k: &str| {
        model
            .metadata
            .get(k)
            .and_then(|v| v.as_str().map(str::to_string))
    };
    let ftype = model
        .metadata
        .get("general.file_type")
        .and_then(|v| v.as_u64())
        .and_then(|id| u32::try_from(id).ok())
        .and_then(FileType::from_llama_ftype);
    let quantisation = ftype
        .or_else(|| model.dominant_type().and_then(FileType::for_base_type))
        .unwrap_or(FileType::F16);
    let mut notes = vec![format!(
        "not in the registry: shape and tensor table read from the file's header on {}",
        hf.endpoint
    )];
    if ftype.is_none() {
        notes.push(format!(
            "general.file_type is missing or unknown; listed as {} after its main tensors",
            quantisation.label()
        ));
    }
    ModelFile {
        id: display_name(hf),
        repo: hf.repo.clone(),
        // Download exactly the commit whose header was read, when the server named it.
        revision: info.commit.clone().unwrap_or_else(|| hf.revision.clone()),
        filename: hf.path.clone(),
        sha256: info.sha256.clone(),
        size_bytes: Some(info.size_bytes),
        parts: Vec::new(),
        quantisation,
        parameters: model.total_params,
        base_model: meta_str("general.basename"),
        shape: model.shape.clone(),
        licence: meta_str("general.license").unwrap_or_else(|| "unknown".to_string()),
        gated,
        checksum_source: info
            .sha256
            .as_ref()
            .map(|_| "Hugging Face file metadata".to_string()),
        notes,
        family: REMOTE_FAMILY.to_string(),
        tensors: Some(model.tensors.clone()),
        source_file: None,
    }
}

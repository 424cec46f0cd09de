//! Hugging Face conventions: the download URL scheme, the endpoint and token the official tools
//! read from the environment, and the local hub cache they fill.
//!
//! Only conventions live here; nothing is downloaded. The environment is read by the `*_from_env`
//! functions, which the CLI calls while resolving its settings, so the fetch stage itself takes
//! plain values.

use std::path::{Path, PathBuf};

use super::Secret;
use crate::validate::{self, ValidationError};

/// Where files are fetched from unless `HF_ENDPOINT` or `--mirror` says otherwise.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// `{endpoint}/{repo}/resolve/{revision}/{path}`, the scheme of huggingface.co and its mirrors.
/// The revision is percent-encoded whole (`refs/pr/1` becomes `refs%2Fpr%2F1`, as the official
/// client does); the path keeps its `/` between folders.
pub fn hf_url(endpoint: &str, repo: &str, revision: &str, path: &str) -> String {
    format!(
        "{}/{}/resolve/{}/{}",
        endpoint.trim_end_matches('/'),
        repo.trim_matches('/'),
        percent_encode(revision, false),
        percent_encode(path, true)
    )
}

/// The model page, where a gated model's licence is accepted.
pub fn hf_model_page(endpoint: &str, repo: &str) -> String {
    format!(
        "{}/{}",
        endpoint.trim_end_matches('/'),
        repo.trim_matches('/')
    )
}

/// The endpoint: `mirror` (from `--mirror`) if given, else `HF_ENDPOINT`, else huggingface.co;
/// checked by [`validate::hf_endpoint`] and without trailing `/`. An empty setting counts as
/// unset.
pub fn hf_endpoint_from_env(mirror: Option<&str>) -> Result<String, BadEndpoint> {
    let from_env = std::env::var("HF_ENDPOINT").ok();
    let (value, setting) = match mirror {
        Some(m) => (m, "--mirror (MINERVA_MIRROR)"),
        None => (from_env.as_deref().unwrap_or(""), "HF_ENDPOINT"),
    };
    match value.trim() {
        "" => Ok(DEFAULT_ENDPOINT.to_string()),
        v => validate::hf_endpoint(v).map_err(|reason| BadEndpoint { setting, reason }),
    }
}

/// The endpoint setting is not a usable URL. `setting` names where it came from.
#[derive(Debug, thiserror::Error)]
#[error("refusing the Hugging Face endpoint from {setting}: {reason}")]
pub struct BadEndpoint {
    pub setting: &'static str,
    pub reason: ValidationError,
}

/// The access token, looked up as Hugging Face's own tools do: `HF_TOKEN` (or its older name
/// `HUGGING_FACE_HUB_TOKEN`), else the token file at `HF_TOKEN_PATH`, else `$HF_HOME/token`
/// (`~/.cache/huggingface/token` by default).
pub fn hf_token_from_env() -> Option<Secret> {
    for var in ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"] {
        if let Some(t) = std::env::var(var).ok().and_then(Secret::new) {
            return Some(t);
        }
    }
    let file = match std::env::var_os("HF_TOKEN_PATH").filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => hf_home_from_env()?.join("token"),
    };
    std::fs::read_to_string(file).ok().and_then(Secret::new)
}

/// `HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`.
pub fn hf_home_from_env() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(h) = var("HF_HOME") {
        return Some(h);
    }
    if let Some(x) = var("XDG_CACHE_HOME") {
        return Some(x.join("huggingface"));
    }
    directories::BaseDirs::new().map(|b| b.home_dir().join(".cache").join("huggingface"))
}

/// The hub cache: `HF_HUB_CACHE`, else `$HF_HOME/hub`.
pub fn hf_hub_cache_from_env() -> Option<PathBuf> {
    match std::env::var_os("HF_HUB_CACHE").filter(|v| !v.is_empty()) {
        Some(p) => Some(PathBuf::from(p)),
        None => hf_home_from_env().map(|h| h.join("hub")),
    }
}

/// Copies of `path` from `repo` in a hub cache, best first: the snapshot the revision's ref
/// points at, the snapshot named by the revision (a commit hash), then any other snapshot.
/// The caller must still check the sha256: a snapshot of another revision may differ.
pub fn hf_cache_candidates(hub: &Path, repo: &str, revision: &str, path: &str) -> Vec<PathBuf> {
    let repo_dir = hub.join(format!("models--{}", repo.replace('/', "--")));
    let snapshots = repo_dir.join("snapshots");
    let mut names: Vec<String> = Vec::new();
    // A branch or tag name maps to a commit through refs/; a revision with a `/` cannot be a
    // file name there.
    if !revision.contains(['/', '\\']) && !revision.contains("..") {
        if let Ok(commit) = std::fs::read_to_string(repo_dir.join("refs").join(revision)) {
            names.push(commit.trim().to_string());
        }
        names.push(revision.to_string());
    }
    if let Ok(entries) = std::fs::read_dir(&snapshots) {
        let mut others: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        others.sort();
        names.extend(others);
    }
    let mut out: Vec<PathBuf> = Vec::new();
    for n in names {
        if n.is_empty() || n.contains(['/', '\\']) || n == ".." {
            continue;
        }
        let p = snapshots.join(&n).join(path);
        if p.is_file() && !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// Percent-encode everything but RFC 3986 unreserved characters (and `/` when `keep_slash`).
fn percent_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_scheme() {
        assert_eq!(
            hf_url("https://huggingface.co/", "Qwen/Qwen2.5-3B-Instruct-GGUF", "main", "qwen2.5-3b-instruct-q4_k_m.gguf"),
            "https://huggingface.co/Qwen/Qwen2.5-3B-Instruct-GGUF/resolve/main/qwen2.5-3b-instruct-q4_k_m.gguf"
        );
        assert_eq!(
            hf_url("http://m", "o/r", "refs/pr/1", "Q4/a b.gguf"),
            "http://m/o/r/resolve/refs%2Fpr%2F1/Q4/a%20b.gguf"
        );
    }

    #[test]
    fn cache_candidates_follow_refs_first() {
        let hub = tempfile::tempdir().unwrap();
        let repo = hub.path().join("models--org--name");
        for c in ["aaaa", "bbbb"] {
            std::fs::create_dir_all(repo.join("snapshots").join(c)).unwrap();
            std::fs::write(repo.join("snapshots").join(c).join("m.gguf"), c).unwrap();
        }
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), "bbbb\n").unwrap();
        let found = hf_cache_candidates(hub.path(), "org/name", "main", "m.gguf");
        let names: Vec<_> = found
            .iter()
            .map(|p| p.parent().unwrap().file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["bbbb", "aaaa"]);
        assert!(hf_cache_candidates(hub.path(), "org/other", "main", "m.gguf").is_empty());
    }
}

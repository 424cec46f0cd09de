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

/// A model on Hugging Face named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HfSpec {
    /// `hf:ORG/REPO/PATH.gguf`: one file.
    File { repo: String, path: String },
    /// `hf:ORG/REPO:QUANT`: the repository's file for a quantisation label, as llama.cpp's
    /// `-hf repo:quant` picks it.
    Quant { repo: String, quant: String },
}

/// The prefix that marks a Hugging Face model on the command line.
pub const HF_SPEC_PREFIX: &str = "hf:";

/// Parse `hf:ORG/REPO/PATH.gguf` or `hf:ORG/REPO:QUANT`; `None` when `value` does not start
/// with `hf:` (it is then a registry id or a file), an error naming what is wrong otherwise.
pub fn parse_hf_spec(value: &str) -> Option<Result<HfSpec, String>> {
    let rest = value.strip_prefix(HF_SPEC_PREFIX)?;
    const SHAPES: &str = "`hf:ORG/REPO/PATH.gguf` or `hf:ORG/REPO:QUANT`";
    let parsed = (|| {
        if let Some((repo, quant)) = rest.split_once(':') {
            validate::hf_repo_id(repo).map_err(|e| format!("{e}"))?;
            if quant.is_empty()
                || !quant
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                return Err(format!(
                    "`{quant}` is not a quantisation label (e.g. Q4_K_M, Q8_0, IQ4_XS)"
                ));
            }
            return Ok(HfSpec::Quant {
                repo: repo.to_string(),
                quant: quant.to_string(),
            });
        }
        let mut parts = rest.splitn(3, '/');
        let (Some(org), Some(name), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("`{rest}` names no file; write {SHAPES}"));
        };
        let repo = format!("{org}/{name}");
        validate::hf_repo_id(&repo).map_err(|e| format!("{e}"))?;
        validate::model_file_path(path).map_err(|e| format!("{e}"))?;
        Ok(HfSpec::File {
            repo,
            path: path.to_string(),
        })
    })();
    Some(parsed.map_err(|e| format!("refusing `{value}`: {e}; write {SHAPES}")))
}

/// The files of a repository listing that carry the quantisation label `quant` in their name
/// (case-insensitive, as a whole word: `Q4_K` does not match `q4_k_m`), multimodal projectors
/// left out. Of a split model only the first part is listed: it stands for the model.
pub fn files_for_quant<'a>(paths: impl IntoIterator<Item = &'a str>, quant: &str) -> Vec<String> {
    let q = quant.to_ascii_lowercase();
    let word = |c: Option<char>| c.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
    let mut out: Vec<String> = paths
        .into_iter()
        .filter(|p| p.to_ascii_lowercase().ends_with(".gguf"))
        .filter(|p| !p.to_ascii_lowercase().contains("mmproj"))
        .filter(|p| {
            let lower = p.to_ascii_lowercase();
            lower.match_indices(&q).any(|(i, m)| {
                word(lower[..i].chars().next_back()) && word(lower[i + m.len()..].chars().next())
            })
        })
        .filter(|p| match split_part(p) {
            Some((k, _)) => k == 1,
            None => true,
        })
        .map(str::to_string)
        .collect();
    out.sort();
    out
}

/// `(k, n)` of a gguf-split part name `NAME-0000k-of-0000n.gguf`.
pub fn split_part(path: &str) -> Option<(u32, u32)> {
    let stem = path.strip_suffix(".gguf")?;
    let (head, n) = stem.rsplit_once("-of-")?;
    let (_, k) = head.rsplit_once('-')?;
    let digits = |s: &str| s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(k) || !digits(n) {
        return None;
    }
    Some((k.parse().ok()?, n.parse().ok()?))
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
    fn hf_specs() {
        assert_eq!(parse_hf_spec("qwen2.5-1.5b"), None);
        assert_eq!(parse_hf_spec("./m.gguf"), None);
        assert_eq!(
            parse_hf_spec("hf:Org/Repo-GGUF/sub/m-Q4_K_M.gguf"),
            Some(Ok(HfSpec::File {
                repo: "Org/Repo-GGUF".into(),
                path: "sub/m-Q4_K_M.gguf".into()
            }))
        );
        assert_eq!(
            parse_hf_spec("hf:Org/Repo-GGUF:q4_k_m"),
            Some(Ok(HfSpec::Quant {
                repo: "Org/Repo-GGUF".into(),
                quant: "q4_k_m".into()
            }))
        );
        for (bad, needle) in [
            ("hf:Org/Repo", "names no file"),
            ("hf:Org/Repo/m.bin", ".gguf"),
            ("hf:Org/Repo/../m.gguf", "`..`"),
            ("hf:Org--x/Repo/m.gguf", "--"),
            ("hf:Org/Repo:", "quantisation label"),
            ("hf:Org/Repo:Q4 K", "quantisation label"),
            ("hf:Repo:Q4_K_M", "Repo"),
        ] {
            let e = parse_hf_spec(bad).unwrap().unwrap_err();
            assert!(e.contains(needle) && e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn quant_labels_match_whole_words() {
        let files = [
            "m-Q4_K_M.gguf",
            "m-Q4_K_S.gguf",
            "m.q8_0.gguf",
            "mmproj-m-Q4_K_M.gguf",
            "Q6_K/m-Q6_K-00001-of-00002.gguf",
            "Q6_K/m-Q6_K-00002-of-00002.gguf",
            "m-IQ4_XS.gguf",
            "README.md",
        ];
        assert_eq!(files_for_quant(files, "Q4_K_M"), ["m-Q4_K_M.gguf"]);
        assert_eq!(files_for_quant(files, "q4_k"), Vec::<String>::new());
        assert_eq!(files_for_quant(files, "Q8_0"), ["m.q8_0.gguf"]);
        assert_eq!(
            files_for_quant(files, "Q6_K"),
            ["Q6_K/m-Q6_K-00001-of-00002.gguf"]
        );
        assert_eq!(files_for_quant(files, "XS"), Vec::<String>::new());
        assert_eq!(split_part("a/m-00002-of-00003.gguf"), Some((2, 3)));
        assert_eq!(split_part("m-2-of-3.gguf"), None);
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

//! What can go wrong while fetching a file, and what happened to the partial file when it did.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::validate::ValidationError;

/// The failure classes a caller branches on (exit codes, retry decisions, JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FetchErrorKind {
    /// The file name or request is malformed; nothing was requested.
    BadFilename,
    BadRequest,
    /// Another process is downloading the same file.
    Locked,
    /// Not enough free disk for the missing bytes plus a margin.
    DiskFull,
    /// HTTP 404.
    NotFound,
    /// HTTP 401/403: a gated repository without (or with a refused) token.
    Unauthorized,
    /// Another HTTP status that retrying will not fix.
    HttpStatus,
    /// The complete file's sha256 is not the expected one.
    ChecksumMismatch,
    /// The server's size is not the expected one.
    SizeMismatch,
    /// Transient failures went on past the retry limit.
    Network,
    /// No bytes arrived for the stall timeout, past the retry limit.
    Stalled,
    /// Reading or writing a local file failed.
    Io,
}

/// What became of `<file>.part` when the fetch failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Partial {
    /// Nothing had been written.
    None,
    /// Kept for the next run to resume from.
    Kept { path: PathBuf, bytes: u64 },
    /// Deleted because its content cannot be trusted.
    Deleted { path: PathBuf },
}

impl fmt::Display for Partial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Partial::None => f.write_str("no partial file was written"),
            Partial::Kept { path, bytes } => {
                write!(
                    f,
                    "partial file {} ({bytes} bytes) kept for resumption",
                    path.display()
                )
            }
            Partial::Deleted { path } => write!(f, "partial file {} was deleted", path.display()),
        }
    }
}

/// A failed fetch. Messages name the URL as given (never a token, never a redirect target,
/// which may carry signed query parameters), the file, and the fate of the partial file.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The local file name breaks [`crate::validate::model_file_name`].
    #[error("refusing file name: {reason}")]
    BadFilename {
        name: String,
        reason: ValidationError,
    },

    #[error("invalid download request: {reason}")]
    BadRequest { reason: String },

    /// A value of the request (`what`: "sha256", "Hugging Face repository", ...) breaks its rule
    /// in [`crate::validate`].
    #[error("invalid download request: {what}: {reason}")]
    BadValue {
        what: &'static str,
        reason: ValidationError,
    },

    #[error("{} is already being downloaded by another process (lock {} is held)", path.display(), lock.display())]
    Locked { path: PathBuf, lock: PathBuf },

    #[error(
        "not enough free disk in {} for {url}: {} needed ({} still to download plus a {} margin), {} available, {} short; {partial}",
        dir.display(), size(*needed_bytes), size(*missing_bytes), size(*margin_bytes), size(*available_bytes), size(needed_bytes.saturating_sub(*available_bytes))
    )]
    DiskFull {
        url: String,
        dir: PathBuf,
        missing_bytes: u64,
        margin_bytes: u64,
        needed_bytes: u64,
        available_bytes: u64,
        partial: Partial,
    },

    #[error("{url} was not found (HTTP 404); {partial}")]
    NotFound { url: String, partial: Partial },

    #[error("{url} refused access (HTTP {status}{}); {partial}", if *token_sent { ", token sent" } else { ", no token sent" })]
    Unauthorized {
        url: String,
        status: u16,
        token_sent: bool,
        model_page: Option<String>,
        partial: Partial,
    },

    #[error("{url} answered HTTP {status}; {partial}")]
    HttpStatus {
        url: String,
        status: u16,
        partial: Partial,
    },

    #[error("checksum mismatch for {} from {url}: expected sha256 {expected}, got {actual}; {partial}", path.display())]
    ChecksumMismatch {
        url: String,
        path: PathBuf,
        expected: String,
        actual: String,
        partial: Partial,
    },

    #[error("size mismatch for {} from {url}: expected {expected_bytes} bytes, the server has {actual_bytes}; {partial}", path.display())]
    SizeMismatch {
        url: String,
        path: PathBuf,
        expected_bytes: u64,
        actual_bytes: u64,
        partial: Partial,
    },

    #[error("download of {url} failed after {attempts} attempt(s); {partial}")]
    Network {
        url: String,
        attempts: u32,
        partial: Partial,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error(
        "download of {url} stalled: no data for {stall_s} s, {attempts} attempt(s); {partial}"
    )]
    Stalled {
        url: String,
        stall_s: f64,
        attempts: u32,
        partial: Partial,
    },

    #[error("could not {op} {}; {partial}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        partial: Partial,
        #[source]
        source: std::io::Error,
    },
}

/// `1.5 GiB`; the exact byte counts stay in the error's fields.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

impl FetchError {
    pub fn kind(&self) -> FetchErrorKind {
        match self {
            FetchError::BadFilename { .. } => FetchErrorKind::BadFilename,
            FetchError::BadRequest { .. } | FetchError::BadValue { .. } => {
                FetchErrorKind::BadRequest
            }
            FetchError::Locked { .. } => FetchErrorKind::Locked,
            FetchError::DiskFull { .. } => FetchErrorKind::DiskFull,
            FetchError::NotFound { .. } => FetchErrorKind::NotFound,
            FetchError::Unauthorized { .. } => FetchErrorKind::Unauthorized,
            FetchError::HttpStatus { .. } => FetchErrorKind::HttpStatus,
            FetchError::ChecksumMismatch { .. } => FetchErrorKind::ChecksumMismatch,
            FetchError::SizeMismatch { .. } => FetchErrorKind::SizeMismatch,
            FetchError::Network { .. } => FetchErrorKind::Network,
            FetchError::Stalled { .. } => FetchErrorKind::Stalled,
            FetchError::Io { .. } => FetchErrorKind::Io,
        }
    }

    /// What became of the partial file.
    pub fn partial(&self) -> &Partial {
        match self {
            FetchError::NotFound { partial, .. }
            | FetchError::DiskFull { partial, .. }
            | FetchError::Unauthorized { partial, .. }
            | FetchError::HttpStatus { partial, .. }
            | FetchError::ChecksumMismatch { partial, .. }
            | FetchError::SizeMismatch { partial, .. }
            | FetchError::Network { partial, .. }
            | FetchError::Stalled { partial, .. }
            | FetchError::Io { partial, .. } => partial,
            _ => &Partial::None,
        }
    }

    /// Whether running again later may succeed without changing anything.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind(),
            FetchErrorKind::Network | FetchErrorKind::Stalled | FetchErrorKind::Locked
        )
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            FetchError::BadFilename { .. } => "a file name must be one plain name ending in `.gguf`: no `/`, `\\`, `..` or leading `.`".into(),
            FetchError::Locked { lock, .. } => format!(
                "wait for the other run to finish; if none is running, the lock is released already and {} can be removed",
                lock.display()
            ),
            FetchError::DiskFull { dir, .. } => {
                format!("free space in {} or choose another directory with --models-dir", dir.display())
            }
            FetchError::Unauthorized { model_page, token_sent, .. } => {
                let page = model_page.as_deref().unwrap_or("the model page");
                let token = if *token_sent {
                    "and check that the token (HF_TOKEN or the Hugging Face token file) has read access"
                } else {
                    "then set HF_TOKEN (or log in with `huggingface-cli login`) and pass --gated"
                };
                format!(
                    "if the model is gated, accept its licence on {page} with your account, {token}; \
                     Hugging Face also answers 401 for a repository that does not exist, so check the repository name"
                )
            }
            FetchError::NotFound { .. } => "check the repository, revision and file name (or the --mirror / HF_ENDPOINT)".into(),
            FetchError::ChecksumMismatch { .. } | FetchError::SizeMismatch { .. } => {
                "the server does not have the expected file: check the mirror, or report the registry entry".into()
            }
            FetchError::Network { partial, .. } | FetchError::Stalled { partial, .. } => {
                let again = match partial {
                    Partial::Kept { .. } => "run the same command again to resume",
                    _ => "run the same command again later",
                };
                format!("{again}; check the network, or try another endpoint with --mirror")
            }
            _ => return None,
        })
    }
}

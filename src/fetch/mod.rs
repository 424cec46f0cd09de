//! The fetch stage: download one file, exactly. Resumable (`<file>.part` and HTTP Range),
//! verified (sha256 computed while the bytes arrive), atomic (renamed into place only when size
//! and checksum match), and careful with disk space, concurrent runs and tokens. A file of
//! known size is fetched as ranges on several connections ([`FetchOptions::connections`],
//! `ranges`), whose progress `<file>.part.ranges` records for a resume.
//!
//! It takes a plain [`FetchRequest`] (URL, file name, size, checksum) and knows nothing about
//! tiers or the registry. It never prints: it reports through [`Progress`] and returns a
//! [`FetchReport`] or a [`FetchError`] whose kind and message say what happened to the partial
//! file.
//!
//! [`fetch_set`] (`set.rs`) fetches files that are only of use together, a split model's parts,
//! with [`fetch`] one by one into a staging directory and puts them in place all or none.

// A FetchError carries the URL, paths and both hashes its message needs; it is returned once
// per fetch, so its size does not matter.
#![allow(clippy::result_large_err)]

mod disk;
mod error;
mod hf;
mod ranges;
pub mod remote;
mod secret;
mod set;
mod sink;
mod transfer;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

pub use error::{FetchError, FetchErrorKind, Partial};
pub use hf::{
    files_for_quant, hf_cache_candidates, hf_endpoint_from_env, hf_hub_cache_from_env,
    hf_model_page, hf_token_from_env, hf_url, parse_hf_spec, split_part, BadEndpoint, HfSpec,
    DEFAULT_ENDPOINT, HF_SPEC_PREFIX,
};
pub use secret::Secret;
pub use set::{fetch_set, staging_dir, SetError, SetReport, STAGING_DIR};

use crate::fsutil::{FileLock, LockError};
use crate::progress::Progress;
use crate::validate;
use ranges::Span;
use sink::{hash_file, PartFile};
use transfer::{Fatal, Transfer};

/// Connections per download by default: enough to get past a CDN's per-connection cap (each
/// connection of 16 MiB/s, four make 64 MiB/s) without hammering the server.
pub const DEFAULT_CONNECTIONS: u32 = 4;
/// The most connections one download may open.
pub const MAX_CONNECTIONS: u32 = 64;
/// Ranges are not made shorter than this: a small file gains nothing from more connections.
pub const DEFAULT_MIN_RANGE_BYTES: u64 = 8 << 20;

/// One file to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// Where the bytes come from (build it with [`hf_url`] for Hugging Face).
    pub url: String,
    /// Local file name inside `FetchOptions::dest_dir`: one plain name ending in `.gguf`
    /// ([`validate::model_file_name`]).
    pub filename: String,
    /// Exact size in bytes, when known: checked against the server before downloading.
    pub expected_size: Option<u64>,
    /// Expected sha256, 64 lowercase hex digits ([`validate::sha256`]).
    pub sha256: String,
    /// Send the access token (to the URL's own host only).
    pub gated: bool,
    /// The file's place on Hugging Face, to look for it in the local hub cache and to point at
    /// the model page when access is refused.
    pub hf: Option<HfFile>,
}

/// A file in a Hugging Face repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HfFile {
    pub endpoint: String,
    pub repo: String,
    pub revision: String,
    /// Path inside the repository (may contain `/`).
    pub path: String,
}

impl FetchRequest {
    /// A request for `path` in `repo` at `revision`, stored under the path's last component.
    pub fn hugging_face(
        file: HfFile,
        sha256: &str,
        expected_size: Option<u64>,
        gated: bool,
    ) -> FetchRequest {
        FetchRequest {
            url: hf_url(&file.endpoint, &file.repo, &file.revision, &file.path),
            filename: file
                .path
                .rsplit('/')
                .next()
                .unwrap_or(&file.path)
                .to_string(),
            expected_size,
            sha256: sha256.to_string(),
            gated,
            hf: Some(file),
        }
    }
}

/// How to fetch.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Directory the file is stored in (created if missing).
    pub dest_dir: PathBuf,
    /// Bearer token for gated files; never printed (see [`Secret`]).
    pub token: Option<Secret>,
    /// Retries after consecutive transient failures (a failure after fresh bytes starts a new
    /// count).
    pub retries: u32,
    /// First backoff delay; it doubles per retry, with jitter.
    pub retry_base: Duration,
    /// Longest pause between attempts, also for a server's Retry-After.
    pub retry_max: Duration,
    /// A transfer that receives nothing for this long is abandoned and retried.
    pub stall_timeout: Duration,
    pub connect_timeout: Duration,
    /// Hugging Face hub cache to take a verified copy from, if any.
    pub hf_cache_dir: Option<PathBuf>,
    /// Free space required beyond the missing bytes.
    pub disk_margin_bytes: u64,
    /// Connections to fetch ranges of the file on at once, 1 to [`MAX_CONNECTIONS`]; 1 is one
    /// stream. More than one needs the size (expected, or learnt from the server) and a server
    /// that honours Range; otherwise the file comes on one stream.
    pub connections: u32,
    /// No range is shorter than this, so a file under twice this size is one stream.
    pub min_range_bytes: u64,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            dest_dir: PathBuf::from("."),
            token: None,
            retries: 5,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            stall_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(30),
            hf_cache_dir: None,
            disk_margin_bytes: 64 << 20,
            connections: DEFAULT_CONNECTIONS,
            min_range_bytes: DEFAULT_MIN_RANGE_BYTES,
        }
    }
}

/// How the file came to be in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Obtained {
    Downloaded,
    AlreadyPresent,
    HfCache,
}

/// A file in place with the expected checksum.
#[derive(Debug, Clone, Serialize)]
pub struct FetchReport {
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
    pub obtained: Obtained,
    /// Bytes received over the network in this run.
    pub bytes_downloaded: u64,
    /// Bytes of an earlier run's partial file that the result kept (0: downloaded from zero,
    /// also when a partial file had to be discarded).
    pub resumed_from: u64,
    /// HTTP requests made (0 when nothing had to be downloaded).
    pub attempts: u32,
    /// Connections the bytes came on: 1 for one stream, 0 when nothing had to be downloaded.
    pub connections: u32,
    /// The URL as requested, before redirects (it never contains the token).
    pub source_url: String,
    pub elapsed_s: f64,
}

/// Fetch `req` into `opts.dest_dir`: reuse a verified file already there or in the Hugging Face
/// cache, else download it (resuming a `.part` left by an earlier run) and rename it into place
/// once its size and sha256 match.
pub fn fetch(
    req: &FetchRequest,
    opts: &FetchOptions,
    progress: &dyn Progress,
) -> Result<FetchReport, FetchError> {
    let started = Instant::now();
    check_request(req)?;
    let expected_sha = req.sha256.clone();
    let url = reqwest::Url::parse(&req.url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| FetchError::BadRequest {
            reason: format!("{:?} is not an http(s) URL", req.url),
        })?;
    let dir = &opts.dest_dir;
    std::fs::create_dir_all(dir).map_err(|source| FetchError::Io {
        op: "create the directory",
        path: dir.clone(),
        partial: Partial::None,
        source,
    })?;
    let final_path = dir.join(&req.filename);
    let part_path = dir.join(format!("{}.part", req.filename));
    let lock_path = dir.join(format!("{}.lock", req.filename));
    let _lock = match FileLock::try_acquire(&lock_path) {
        Ok(l) => l,
        Err(LockError::Held { .. }) => {
            return Err(FetchError::Locked {
                path: final_path,
                lock: lock_path,
            })
        }
        Err(e) => {
            let source = match e {
                LockError::Io { source, .. } => source,
                symlink => std::io::Error::other(symlink),
            };
            return Err(FetchError::Io {
                op: "create the lock file",
                path: lock_path,
                partial: Partial::None,
                source,
            });
        }
    };
    let report = |path: PathBuf, bytes: u64, obtained: Obtained| FetchReport {
        path,
        bytes,
        sha256: expected_sha.clone(),
        obtained,
        bytes_downloaded: 0,
        resumed_from: 0,
        attempts: 0,
        connections: 0,
        source_url: req.url.clone(),
        elapsed_s: started.elapsed().as_secs_f64(),
    };

    if let Some(bytes) = verified_copy(
        &final_path,
        req.expected_size,
        &expected_sha,
        progress,
        "existing file",
    )? {
        remove_stale_part(&part_path);
        return Ok(report(final_path, bytes, Obtained::AlreadyPresent));
    }
    if let (Some(hf), Some(hub)) = (&req.hf, &opts.hf_cache_dir) {
        for candidate in hf_cache_candidates(hub, &hf.repo, &hf.revision, &hf.path) {
            if let Some(bytes) = verified_copy(
                &candidate,
                req.expected_size,
                &expected_sha,
                progress,
                "cached copy",
            )? {
                place_from_cache(&candidate, &final_path)?;
                remove_stale_part(&part_path);
                return Ok(report(final_path, bytes, Obtained::HfCache));
            }
        }
    }

    let mut r = download(
        req,
        opts,
        &url,
        &expected_sha,
        &part_path,
        &final_path,
        progress,
    )?;
    r.elapsed_s = started.elapsed().as_secs_f64();
    Ok(r)
}

/// The network path: resume or start `part_path` (on ranges or one stream), transfer, verify,
/// rename.
fn download(
    req: &FetchRequest,
    opts: &FetchOptions,
    url: &reqwest::Url,
    expected_sha: &str,
    part_path: &Path,
    final_path: &Path,
    progress: &dyn Progress,
) -> Result<FetchReport, FetchError> {
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(opts.stall_timeout)
        .connect_timeout(opts.connect_timeout)
        .user_agent(concat!("minerva-setup/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| FetchError::BadRequest {
            reason: format!("cannot build the HTTP client: {e}"),
        })?;
    let transfer = Transfer {
        client: &client,
        url,
        token: opts.token.as_ref().filter(|_| req.gated),
        expected_size: req.expected_size,
        opts,
        progress,
        label: &req.filename,
    };
    let job = Job {
        req,
        transfer: &transfer,
        expected_sha,
        part_path,
        final_path,
    };
    let first = job.once()?;
    let done = if first.sha256 != expected_sha && first.resumed_from > 0 {
        // The bytes kept from an earlier run may be what is wrong: one fresh try from zero.
        progress.note(&format!(
            "sha256 of the resumed file is {}, not {expected_sha}; downloading {} again from zero",
            first.sha256, req.filename
        ));
        let _ = std::fs::remove_file(ranges::sidecar_path(part_path));
        let _ = std::fs::remove_file(part_path);
        let again = job.once()?;
        Transferred {
            attempts: first.attempts + again.attempts,
            received: first.received + again.received,
            ..again
        }
    } else {
        first
    };
    let Transferred {
        bytes,
        sha256: sha,
        attempts,
        received,
        resumed_from,
        connections,
    } = done;
    if sha != expected_sha || req.expected_size.is_some_and(|s| s != bytes) {
        let partial = delete_part(part_path);
        return Err(match req.expected_size {
            Some(expected) if expected != bytes => FetchError::SizeMismatch {
                url: req.url.clone(),
                path: final_path.to_path_buf(),
                expected_bytes: expected,
                actual_bytes: bytes,
                partial,
            },
            _ => FetchError::ChecksumMismatch {
                url: req.url.clone(),
                path: final_path.to_path_buf(),
                expected: expected_sha.to_string(),
                actual: sha,
                partial,
            },
        });
    }
    std::fs::rename(part_path, final_path).map_err(|e| FetchError::Io {
        op: "rename the verified file into place",
        path: final_path.to_path_buf(),
        partial: Partial::Kept {
            path: part_path.into(),
            bytes,
        },
        source: e,
    })?;
    // The record describes a part file that no longer exists.
    let _ = std::fs::remove_file(ranges::sidecar_path(part_path));
    sync_dir(final_path);
    Ok(FetchReport {
        path: final_path.to_path_buf(),
        bytes,
        sha256: sha,
        obtained: Obtained::Downloaded,
        bytes_downloaded: received,
        resumed_from,
        attempts,
        connections,
        source_url: req.url.clone(),
        elapsed_s: 0.0,
    })
}

/// The connections to use: `opts.connections` within 1 to [`MAX_CONNECTIONS`] (the CLI refuses
/// other values; a library caller gets the nearest).
fn connections(opts: &FetchOptions) -> u32 {
    opts.connections.clamp(1, MAX_CONNECTIONS)
}

/// A finished transfer into the partial file.
struct Transferred {
    bytes: u64,
    sha256: String,
    /// HTTP requests made.
    attempts: u32,
    /// Bytes received over the network.
    received: u64,
    /// Bytes from before this run that the file still starts with (0 if it was restarted).
    resumed_from: u64,
    /// Connections used at most at once.
    connections: u32,
}

/// One download into the part file, what stays the same between the first pass and the retry
/// from zero.
struct Job<'a> {
    req: &'a FetchRequest,
    transfer: &'a Transfer<'a>,
    expected_sha: &'a str,
    part_path: &'a Path,
    final_path: &'a Path,
}

/// How to fetch the file this time.
enum Layout {
    /// Ranges on several connections (or resumed from a record), tiling `0..size`.
    Ranges { size: u64, spans: Vec<Span> },
    /// One stream, appended to the part file; the size when the server told it.
    Stream { size: Option<u64> },
}

impl Job<'_> {
    /// Fetch into the part file as ranges or as one stream, sync it and hash it.
    fn once(&self) -> Result<Transferred, FetchError> {
        let (layout, probes) = self.layout();
        let (size, spans) = match layout {
            Layout::Ranges { size, spans } => (size, spans),
            Layout::Stream { size } => {
                let mut t = self.stream(size)?;
                t.attempts += probes;
                return Ok(t);
            }
        };
        let opts = self.transfer.opts;
        let progress = self.transfer.progress;
        let missing = size - ranges::kept_bytes(&spans);
        if let Err(f) = self.transfer.check_space(missing) {
            return Err(self.ranges_error(f, ranges::kept_bytes(&spans)));
        }
        let transfer = Transfer {
            expected_size: Some(size),
            ..*self.transfer
        };
        match ranges::fetch(
            &transfer,
            self.part_path,
            spans,
            size,
            self.expected_sha,
            connections(opts),
        ) {
            Ok(o) => Ok(Transferred {
                bytes: o.bytes,
                sha256: o.sha256,
                attempts: probes + o.attempts,
                received: o.received,
                resumed_from: o.resumed_from,
                connections: o.connections,
            }),
            Err(ranges::Failed::Fallback { why, attempts }) => {
                progress.note(&format!(
                    "{why}; downloading {} on one connection from zero",
                    self.req.filename
                ));
                let _ = std::fs::remove_file(ranges::sidecar_path(self.part_path));
                let _ = std::fs::remove_file(self.part_path);
                let mut t = self.stream(Some(size))?;
                // The range requests that found out count too.
                t.attempts += probes + attempts;
                Ok(t)
            }
            Err(ranges::Failed::Fatal { fatal, kept_bytes }) => {
                Err(self.ranges_error(fatal, kept_bytes))
            }
        }
    }

    /// Decide between ranges and one stream: a record of ranges is resumed whatever the number
    /// of connections; a record that cannot be trusted is removed with the part file; a known
    /// size (expected or learnt from the server) is split when it is long enough, keeping the
    /// prefix a one-stream run left.
    /// Also returns the requests made to learn the size.
    fn layout(&self) -> (Layout, u32) {
        let progress = self.transfer.progress;
        let opts = self.transfer.opts;
        let name = &self.req.filename;
        let sidecar = ranges::sidecar_path(self.part_path);
        let recorded = std::fs::symlink_metadata(&sidecar).is_ok();
        let part_len = || {
            std::fs::symlink_metadata(self.part_path)
                .ok()
                .filter(|m| m.is_file())
                .map_or(0, |m| m.len())
        };
        if opts.connections <= 1 && !recorded {
            return (
                Layout::Stream {
                    size: self.req.expected_size,
                },
                0,
            );
        }
        let mut probes = 0;
        let size = self.req.expected_size.or_else(|| {
            probes += 1;
            self.transfer.probe_size()
        });
        let Some(size) = size else {
            if recorded {
                progress.note(&format!(
                    "the server did not confirm the size of {name}; the recorded ranges of {} are not used, starting from zero",
                    self.part_path.display()
                ));
                let _ = std::fs::remove_file(&sidecar);
                let _ = std::fs::remove_file(self.part_path);
            }
            return (Layout::Stream { size: None }, probes);
        };
        if recorded {
            match ranges::load(&sidecar, size, self.expected_sha, part_len()) {
                Ok(spans) => {
                    let kept = ranges::kept_bytes(&spans);
                    progress.note(&format!(
                        "resuming {name}: {kept} of {size} bytes are on disk in {} ranges",
                        spans.len()
                    ));
                    return (Layout::Ranges { size, spans }, probes);
                }
                Err(why) => {
                    progress.note(&format!(
                        "{} {why}; downloading {name} from zero",
                        sidecar.display()
                    ));
                    let _ = std::fs::remove_file(&sidecar);
                    let _ = std::fs::remove_file(self.part_path);
                }
            }
        }
        let from = part_len();
        if opts.connections <= 1 || from > size {
            return (Layout::Stream { size: Some(size) }, probes);
        }
        let rest = ranges::split(from, size, connections(opts), opts.min_range_bytes);
        if rest.len() < 2 {
            return (Layout::Stream { size: Some(size) }, probes);
        }
        let mut spans = Vec::with_capacity(rest.len() + 1);
        if from > 0 {
            // What a one-stream run left is the file's first `from` bytes.
            progress.note(&format!("resuming {name} from byte {from}"));
            spans.push(Span {
                start: 0,
                end: from,
                done: from,
            });
        }
        spans.extend(rest);
        (Layout::Ranges { size, spans }, probes)
    }

    /// One stream, as without ranges: resume the part file from its end, transfer, sync, hash.
    /// `size` is the expected size or the server's.
    fn stream(&self, size: Option<u64>) -> Result<Transferred, FetchError> {
        let req = self.req;
        let part_path = self.part_path;
        let progress = self.transfer.progress;
        let io_err = |op: &'static str, source| FetchError::Io {
            op,
            path: part_path.to_path_buf(),
            partial: Partial::None,
            source,
        };
        let existing = std::fs::metadata(part_path).map(|m| m.len()).unwrap_or(0);
        if existing > 0 {
            progress.phase(
                &format!("checking the partial download of {}", req.filename),
                Some(existing),
            );
        }
        let mut part = PartFile::open(part_path, &mut |n| progress.position(n))
            .map_err(|e| io_err("read the partial file", e))?;
        if existing > 0 {
            progress.finish();
        }
        if size.is_some_and(|s| part.len() > s) {
            progress.note(&format!(
                "{} is longer than the expected file; starting from zero",
                part_path.display()
            ));
            part.truncate()
                .map_err(|e| io_err("truncate the partial file", e))?;
        }
        if part.len() > 0 {
            progress.note(&format!(
                "resuming {} from byte {}",
                req.filename,
                part.len()
            ));
        }
        let transfer = Transfer {
            expected_size: size,
            ..*self.transfer
        };
        if let Some(size) = size {
            if let Err(f) = transfer.check_space(size - part.len()) {
                return Err(self.stream_error(f, part));
            }
        }
        let attempts = match transfer.run(&mut part) {
            Ok(attempts) => attempts,
            Err((f, _)) => return Err(self.stream_error(f, part)),
        };
        let received = part.received();
        let resumed_from = part.kept_from_before();
        let (bytes, sha256) = part.finish().map_err(|source| FetchError::Io {
            op: "write the partial file",
            path: part_path.to_path_buf(),
            partial: kept_or_none(part_path),
            source,
        })?;
        Ok(Transferred {
            bytes,
            sha256,
            attempts,
            received,
            resumed_from,
            connections: u32::from(attempts > 0),
        })
    }

    fn stream_error(&self, f: Fatal, part: PartFile) -> FetchError {
        drop(part);
        let path = self.part_path;
        to_fetch_error(
            f,
            self.req,
            self.transfer.opts,
            self.final_path,
            path,
            &|| kept_or_none(path),
        )
    }

    /// A failed parallel transfer: the part file and its record are kept when they hold bytes.
    fn ranges_error(&self, f: Fatal, kept_bytes: u64) -> FetchError {
        let path = self.part_path;
        to_fetch_error(
            f,
            self.req,
            self.transfer.opts,
            self.final_path,
            path,
            &|| {
                if kept_bytes == 0 {
                    let _ = std::fs::remove_file(ranges::sidecar_path(path));
                    let _ = std::fs::remove_file(path);
                    Partial::None
                } else {
                    Partial::Kept {
                        path: path.to_path_buf(),
                        bytes: kept_bytes,
                    }
                }
            },
        )
    }
}

/// Turn a transfer failure into the user-facing error, deciding the partial file's fate: kept
/// after network trouble, deleted when the server's file is not the expected one.
/// `kept` says what is left when the partial file is kept.
fn to_fetch_error(
    f: Fatal,
    req: &FetchRequest,
    opts: &FetchOptions,
    final_path: &Path,
    path: &Path,
    kept: &dyn Fn() -> Partial,
) -> FetchError {
    let path = path.to_path_buf();
    let url = req.url.clone();
    match f {
        Fatal::SizeMismatch { actual_bytes } => FetchError::SizeMismatch {
            url,
            path: final_path.to_path_buf(),
            expected_bytes: req.expected_size.unwrap_or(0),
            actual_bytes,
            partial: delete_part(&path),
        },
        Fatal::NotFound => FetchError::NotFound {
            url,
            partial: kept(),
        },
        Fatal::Unauthorized { status } => FetchError::Unauthorized {
            url,
            status,
            token_sent: req.gated && opts.token.is_some(),
            model_page: req.hf.as_ref().map(|h| hf_model_page(&h.endpoint, &h.repo)),
            partial: kept(),
        },
        Fatal::Status { status } => FetchError::HttpStatus {
            url,
            status,
            partial: kept(),
        },
        Fatal::DiskFull {
            dir,
            missing_bytes,
            margin_bytes,
            available_bytes,
        } => FetchError::DiskFull {
            url,
            dir,
            missing_bytes,
            margin_bytes,
            needed_bytes: missing_bytes.saturating_add(margin_bytes),
            available_bytes,
            partial: kept(),
        },
        Fatal::Io { op, source } => FetchError::Io {
            op,
            path: path.clone(),
            partial: kept(),
            source,
        },
        Fatal::BadRequest(reason) => {
            let _ = kept();
            FetchError::BadRequest { reason }
        }
        Fatal::RangeUnsupported { what } => FetchError::BadRequest {
            reason: format!("{what}, although a range was asked for"),
        },
        // Only ever the consequence of another range's failure, which is reported instead.
        Fatal::Cancelled => FetchError::BadRequest {
            reason: "the download was stopped".into(),
        },
        Fatal::Exhausted {
            attempts,
            stalled: true,
            ..
        } => FetchError::Stalled {
            url,
            stall_s: opts.stall_timeout.as_secs_f64(),
            attempts,
            partial: kept(),
        },
        Fatal::Exhausted {
            attempts,
            stalled: false,
            last,
        } => FetchError::Network {
            url,
            attempts,
            partial: kept(),
            source: last.into(),
        },
    }
}

/// Keep a partial file that holds bytes; remove an empty one.
fn kept_or_none(path: &Path) -> Partial {
    match std::fs::metadata(path).map(|m| m.len()) {
        Ok(0) => {
            let _ = std::fs::remove_file(path);
            Partial::None
        }
        Ok(bytes) => Partial::Kept {
            path: path.to_path_buf(),
            bytes,
        },
        Err(_) => Partial::None,
    }
}

/// Delete a partial file that cannot be trusted, and its record of ranges.
fn delete_part(path: &Path) -> Partial {
    let _ = std::fs::remove_file(ranges::sidecar_path(path));
    match std::fs::remove_file(path) {
        Ok(()) => Partial::Deleted {
            path: path.to_path_buf(),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Partial::None,
        // Could not delete it: say where it is rather than claim it is gone.
        Err(_) => kept_or_none(path),
    }
}

/// A leftover `.part` (and its record of ranges) is useless once the complete file is in place.
fn remove_stale_part(path: &Path) {
    let _ = std::fs::remove_file(ranges::sidecar_path(path));
    let _ = std::fs::remove_file(path);
}

/// `Some(size)` when `path` is a file of the expected size whose sha256 matches.
fn verified_copy(
    path: &Path,
    expected_size: Option<u64>,
    expected_sha: &str,
    progress: &dyn Progress,
    what: &str,
) -> Result<Option<u64>, FetchError> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(None);
    };
    if !meta.is_file() {
        return Ok(None);
    }
    if expected_size.is_some_and(|s| s != meta.len()) {
        progress.note(&format!(
            "{} has {} bytes, not the expected {}; not using it",
            path.display(),
            meta.len(),
            expected_size.unwrap_or(0)
        ));
        return Ok(None);
    }
    progress.phase(
        &format!("checking {what} {}", path.display()),
        Some(meta.len()),
    );
    let hashed = hash_file(path, &mut |n| progress.position(n));
    progress.finish();
    match hashed {
        Ok((bytes, sha)) if sha == expected_sha => Ok(Some(bytes)),
        Ok((_, sha)) => {
            progress.note(&format!(
                "{} has sha256 {sha}, not {expected_sha}; not using it",
                path.display()
            ));
            Ok(None)
        }
        Err(e) => {
            progress.note(&format!(
                "cannot read {}: {e}; not using it",
                path.display()
            ));
            Ok(None)
        }
    }
}

/// Put a verified file from the hub cache in place: a hard link to its blob when the
/// filesystem allows, else a copy; either way through a temporary name and a rename.
fn place_from_cache(cached: &Path, final_path: &Path) -> Result<(), FetchError> {
    let blob = std::fs::canonicalize(cached).unwrap_or_else(|_| cached.to_path_buf());
    crate::fsutil::link_or_copy_atomic(&blob, final_path).map_err(|source| FetchError::Io {
        op: "copy from the Hugging Face cache to",
        path: final_path.to_path_buf(),
        partial: Partial::None,
        source,
    })
}

/// Make a rename durable: fsync the directory holding `path`.
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// Refuse a request whose file name, checksum or Hugging Face location breaks the rules in
/// [`validate`], before anything is created or requested. The registry and the CLI check the
/// same rules earlier, with their own context; this guards every other caller, and the hub
/// cache lookup that joins the repository path onto a directory.
fn check_request(req: &FetchRequest) -> Result<(), FetchError> {
    validate::model_file_name(&req.filename).map_err(|reason| FetchError::BadFilename {
        name: req.filename.clone(),
        reason,
    })?;
    let bad = |what| move |reason| FetchError::BadValue { what, reason };
    validate::sha256(&req.sha256).map_err(bad("sha256"))?;
    if let Some(hf) = &req.hf {
        validate::hf_endpoint(&hf.endpoint).map_err(bad("Hugging Face endpoint"))?;
        validate::hf_repo_id(&hf.repo).map_err(bad("Hugging Face repository"))?;
        validate::model_file_path(&hf.path).map_err(bad("path in the repository"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    const SHA: &str = "9fecc3b3cd76bba89d504f29b616eedf7da85b96540e490ca5824d3f7d2776a0";

    fn hf_request() -> FetchRequest {
        let file = HfFile {
            endpoint: "http://127.0.0.1:9".into(),
            repo: "org/model".into(),
            revision: "main".into(),
            path: "sub/m.gguf".into(),
        };
        FetchRequest::hugging_face(file, SHA, None, false)
    }

    /// Each bad value is refused with its kind, before the directory is created or anything is
    /// requested (port 9 would refuse the connection anyway).
    #[test]
    fn bad_requests_are_refused_before_anything_happens() {
        let dir = tempfile::tempdir().unwrap();
        let opts = FetchOptions {
            dest_dir: dir.path().join("models"),
            ..FetchOptions::default()
        };
        type Patch = fn(&mut FetchRequest);
        let cases: [(&str, Patch, FetchErrorKind, &str); 9] = [
            (
                "dotdot name",
                |r| r.filename = "x..gguf".into(),
                FetchErrorKind::BadFilename,
                "`..`",
            ),
            (
                "directory",
                |r| r.filename = "a/m.gguf".into(),
                FetchErrorKind::BadFilename,
                "`/`",
            ),
            (
                "not gguf",
                |r| r.filename = "m.bin".into(),
                FetchErrorKind::BadFilename,
                ".gguf",
            ),
            (
                "hidden",
                |r| r.filename = ".m.gguf".into(),
                FetchErrorKind::BadFilename,
                "`.`",
            ),
            (
                "upper-case sha",
                |r| r.sha256 = SHA.to_ascii_uppercase(),
                FetchErrorKind::BadRequest,
                "sha256",
            ),
            (
                "short sha",
                |r| r.sha256 = "abc".into(),
                FetchErrorKind::BadRequest,
                "sha256",
            ),
            (
                "repo",
                |r| r.hf.as_mut().unwrap().repo = "./model".into(),
                FetchErrorKind::BadRequest,
                "repository",
            ),
            (
                "repo path",
                |r| r.hf.as_mut().unwrap().path = "a/../m.gguf".into(),
                FetchErrorKind::BadRequest,
                "path in the repository",
            ),
            (
                "endpoint",
                |r| r.hf.as_mut().unwrap().endpoint = "http://m/?x".into(),
                FetchErrorKind::BadRequest,
                "endpoint",
            ),
        ];
        for (what, patch, kind, needle) in cases {
            let mut req = hf_request();
            patch(&mut req);
            let e = fetch(&req, &opts, &NoProgress).unwrap_err();
            assert_eq!(e.kind(), kind, "{what}: {e}");
            assert!(e.to_string().contains(needle), "{what}: {e}");
            assert!(!opts.dest_dir.exists(), "{what}: nothing was created");
        }
    }
}

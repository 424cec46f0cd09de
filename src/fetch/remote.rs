//! A GGUF file on Hugging Face (or a mirror), inspected without downloading it: its identity
//! (size, sha256, ETag, commit) from the metadata Hugging Face sends with a file, its header
//! (metadata and tensor table) from HTTP Range requests that grow only as far as the header
//! needs, and a repository's file list for `ORG/REPO:QUANT` names.
//!
//! The same endpoint, token, redirect and retry rules as a download apply: the token goes only
//! to the origin of the resolve URL, never to the CDN it redirects to; transient failures
//! (connection errors, timeouts, 408/429/5xx) are retried with backoff; 401/403/404 are not.
//! Headers are cached under a directory keyed by repository, revision, path and ETag, so a
//! second look at an unchanged file costs one metadata request.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use reqwest::blocking::{Client, Response};
use reqwest::header::{HeaderMap, CONTENT_LENGTH, CONTENT_RANGE, ETAG, LINK, LOCATION, RANGE};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::hf::{hf_model_page, hf_url};
use super::transfer::{backoff, chain};
use super::{FetchOptions, HfFile, Secret};
use crate::gguf::reader::{read_header_from, GgufError, GgufHeader};
use crate::validate;

/// The first range asked for; each further request doubles, up to [`MAX_CHUNK`].
const FIRST_CHUNK: u64 = 256 << 10;
const MAX_CHUNK: u64 = 32 << 20;
/// No real header is this large (the largest vocabularies take a few tens of MB): a file that
/// needs more is refused rather than downloaded piecemeal.
pub const MAX_HEADER_BYTES: u64 = 512 << 20;
/// Redirects followed per request.
const MAX_REDIRECTS: usize = 10;
/// Pages of a repository listing followed.
const MAX_LIST_PAGES: usize = 100;

/// What Hugging Face says about a file before any of its bytes are read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteFileInfo {
    /// The resolve URL (without token).
    pub url: String,
    pub size_bytes: u64,
    /// The LFS object id, which is the file's sha256 (`X-Linked-Etag`, or a 64-digit ETag).
    pub sha256: Option<String>,
    /// The ETag the file was served with, for the header cache.
    pub etag: Option<String>,
    /// The commit the revision resolved to (`X-Repo-Commit`).
    pub commit: Option<String>,
}

/// A header read from a remote file.
#[derive(Debug, Clone)]
pub struct RemoteHeader {
    pub header: GgufHeader,
    pub info: RemoteFileInfo,
    /// Bytes of the file fetched for the header in this run (0 when it came from the cache).
    pub bytes_fetched: u64,
    /// HTTP requests made, the metadata request included.
    pub requests: u32,
    pub from_cache: bool,
}

/// One file of a repository listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepoEntry {
    pub path: String,
    pub size_bytes: u64,
    /// The LFS object id (sha256) when the file is stored in LFS, as GGUF files are.
    pub sha256: Option<String>,
}

/// Why a remote file could not be inspected. Every variant names the URL.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("{url} does not exist (HTTP 404): check the repository, the path and --revision")]
    NotFound { url: String },
    #[error("{url} refused access (HTTP {status}){}", if *token_sent { ": the token was sent and refused" } else { ": no token was sent" })]
    Unauthorized {
        url: String,
        status: u16,
        token_sent: bool,
        model_page: String,
    },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} could not be reached after {attempts} attempt(s): {cause}")]
    Network {
        url: String,
        attempts: u32,
        cause: String,
    },
    #[error("{url}: {detail}")]
    BadResponse { url: String, detail: String },
    #[error(transparent)]
    Header(#[from] GgufError),
}

/// Size, sha256, ETag and commit of `file`, from one HEAD request (and a one-byte range request
/// when the server's HEAD answer lacks the size).
pub fn file_info(
    file: &HfFile,
    opts: &FetchOptions,
    send_token: bool,
) -> Result<RemoteFileInfo, RemoteError> {
    let client = client(opts)?;
    let session = Session::new(&client, file, opts, send_token)?;
    let mut requests = 0;
    session.info(&mut requests)
}

/// Read the GGUF header of `file` with range requests, or from `cache_dir` when the same file
/// (repository, revision, path and ETag) was read before.
pub fn read_remote_header(
    file: &HfFile,
    opts: &FetchOptions,
    send_token: bool,
    cache_dir: Option<&Path>,
) -> Result<RemoteHeader, RemoteError> {
    let client = client(opts)?;
    let session = Session::new(&client, file, opts, send_token)?;
    let mut requests = 0;
    let info = session.info(&mut requests)?;
    let name = PathBuf::from(display_name(file));
    let cache = cache_dir.and_then(|d| info.etag.as_ref().map(|e| cache_path(d, file, e)));
    if let Some(path) = &cache {
        if let Ok(bytes) = std::fs::read(path) {
            if let Ok((header, _)) = read_header_from(&bytes[..], info.size_bytes, &name) {
                return Ok(RemoteHeader {
                    header,
                    info,
                    bytes_fetched: 0,
                    requests,
                    from_cache: true,
                });
            }
        }
    }
    let mut src = RangeSource {
        session: &session,
        size: info.size_bytes,
        data: Vec::new(),
        pos: 0,
        next_chunk: FIRST_CHUNK,
        stream: None,
        requests: 0,
        error: None,
    };
    let parsed = read_header_from(&mut src, info.size_bytes, &name);
    requests += src.requests;
    let (header, used) = match parsed {
        Ok(h) => h,
        // The network failure behind a read error, rather than the reader's wording of it.
        Err(_) if src.error.is_some() => return Err(src.error.take().expect("checked")),
        Err(e) => return Err(e.into()),
    };
    if let Some(path) = &cache {
        let used = (used as usize).min(src.data.len());
        // A cache that cannot be written costs a few requests next time, nothing more.
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = crate::fsutil::write_atomic(path, &src.data[..used]);
    }
    Ok(RemoteHeader {
        header,
        info,
        bytes_fetched: src.fetched(),
        requests,
        from_cache: false,
    })
}

/// Every file of `repo` at `revision` (the repository tree API, all pages).
pub fn list_repo_files(
    endpoint: &str,
    repo: &str,
    revision: &str,
    opts: &FetchOptions,
    send_token: bool,
) -> Result<Vec<RepoEntry>, RemoteError> {
    let client = client(opts)?;
    let probe = HfFile {
        endpoint: endpoint.to_string(),
        repo: repo.to_string(),
        revision: revision.to_string(),
        path: String::new(),
    };
    let session = Session::new_at(
        &client,
        &probe,
        tree_url(endpoint, repo, revision),
        opts,
        send_token,
    )?;
    let mut url = session.url.clone();
    let mut out = Vec::new();
    for _ in 0..MAX_LIST_PAGES {
        let resp = session.send_retrying(&url, None, false, &mut 0)?;
        let next = next_page(resp.headers());
        let body = resp.text().map_err(|e| RemoteError::Network {
            url: session.shown.clone(),
            attempts: 1,
            cause: chain(&e.without_url()),
        })?;
        let items: Vec<TreeItem> =
            serde_json::from_str(&body).map_err(|e| RemoteError::BadResponse {
                url: session.shown.clone(),
                detail: format!("the repository listing is not the expected JSON: {e}"),
            })?;
        out.extend(items.into_iter().filter(|i| i.kind == "file").map(|i| {
            let lfs = i.lfs.as_ref();
            RepoEntry {
                size_bytes: lfs.map_or(i.size, |l| l.size),
                sha256: lfs
                    .map(|l| l.oid.clone())
                    .filter(|o| validate::sha256(o).is_ok()),
                path: i.path,
            }
        }));
        match next {
            Some(n) => url = n,
            None => return Ok(out),
        }
    }
    Err(RemoteError::BadResponse {
        url: session.shown,
        detail: format!("the repository listing has more than {MAX_LIST_PAGES} pages"),
    })
}

/// `hf:ORG/REPO/PATH` as people write it.
pub fn display_name(file: &HfFile) -> String {
    format!("hf:{}/{}", file.repo, file.path)
}

/// The tree API: `{endpoint}/api/models/{repo}/tree/{revision}?recursive=true`.
fn tree_url(endpoint: &str, repo: &str, revision: &str) -> String {
    let resolve = hf_url(endpoint, repo, revision, "x");
    // hf_url's encoding of the revision, reused: `.../resolve/{rev}/x`.
    let rev = resolve
        .rsplit_once("/x")
        .and_then(|(head, _)| head.rsplit_once("/resolve/"))
        .map(|(_, r)| r.to_string())
        .unwrap_or_else(|| revision.to_string());
    format!(
        "{}/api/models/{}/tree/{rev}?recursive=true",
        endpoint.trim_end_matches('/'),
        repo.trim_matches('/')
    )
}

#[derive(Deserialize)]
struct TreeItem {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    lfs: Option<TreeLfs>,
}

#[derive(Deserialize)]
struct TreeLfs {
    oid: String,
    size: u64,
}

/// `Link: <URL>; rel="next"`.
fn next_page(headers: &HeaderMap) -> Option<Url> {
    let link = headers.get(LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .contains("rel=\"next\"")
            .then(|| Url::parse(url.trim().trim_start_matches('<').trim_end_matches('>')).ok())
            .flatten()
    })
}

/// `{cache_dir}/{sha256 of repo, revision, path and ETag}.gguf-header`.
fn cache_path(dir: &Path, file: &HfFile, etag: &str) -> PathBuf {
    let mut h = Sha256::new();
    for part in [&file.repo, &file.revision, &file.path, &etag.to_string()] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    dir.join(format!("{}.gguf-header", super::sink::hex(&h.finalize())))
}

fn client(opts: &FetchOptions) -> Result<Client, RemoteError> {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(opts.stall_timeout)
        .connect_timeout(opts.connect_timeout)
        .user_agent(concat!("minerva-setup/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| RemoteError::BadResponse {
            url: String::new(),
            detail: format!("cannot build the HTTP client: {e}"),
        })
}

/// The requests for one file: where, with which token, how often to retry.
struct Session<'a> {
    client: &'a Client,
    url: Url,
    /// The URL as shown in messages.
    shown: String,
    token: Option<&'a Secret>,
    opts: &'a FetchOptions,
    model_page: String,
}

impl<'a> Session<'a> {
    fn new(
        client: &'a Client,
        file: &HfFile,
        opts: &'a FetchOptions,
        send_token: bool,
    ) -> Result<Session<'a>, RemoteError> {
        let url = hf_url(&file.endpoint, &file.repo, &file.revision, &file.path);
        Session::new_at(client, file, url, opts, send_token)
    }

    fn new_at(
        client: &'a Client,
        file: &HfFile,
        url: String,
        opts: &'a FetchOptions,
        send_token: bool,
    ) -> Result<Session<'a>, RemoteError> {
        let parsed = Url::parse(&url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| RemoteError::BadResponse {
                url: url.clone(),
                detail: "not an http(s) URL".into(),
            })?;
        Ok(Session {
            client,
            url: parsed,
            shown: url,
            token: opts.token.as_ref().filter(|_| send_token),
            opts,
            model_page: hf_model_page(&file.endpoint, &file.repo),
        })
    }

    /// HEAD the resolve URL: the identity headers are on its first answer (Hugging Face sends
    /// them with the redirect to the CDN), the size also on the last.
    fn info(&self, requests: &mut u32) -> Result<RemoteFileInfo, RemoteError> {
        let (first, last) = self.head(requests)?;
        let header = |h: &HeaderMap, name: &str| {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| {
                    v.trim()
                        .trim_start_matches("W/")
                        .trim_matches('"')
                        .to_string()
                })
                .filter(|v| !v.is_empty())
        };
        let etag = header(&first, "x-linked-etag").or_else(|| header(&first, ETAG.as_str()));
        let sha256 = etag
            .clone()
            .map(|e| e.to_ascii_lowercase())
            .filter(|e| validate::sha256(e).is_ok());
        let size = header(&first, "x-linked-size")
            .or_else(|| header(&last, CONTENT_LENGTH.as_str()))
            .and_then(|s| s.parse::<u64>().ok());
        let size_bytes = match size {
            Some(s) => s,
            None => {
                // A HEAD answer without the size: ask for the first byte and read the total.
                let resp = self.send_retrying(&self.url, Some((0, 0)), false, requests)?;
                total_from_range(&resp).ok_or_else(|| RemoteError::BadResponse {
                    url: self.shown.clone(),
                    detail: "the server tells neither the size (Content-Length) nor a range total"
                        .into(),
                })?
            }
        };
        Ok(RemoteFileInfo {
            url: self.shown.clone(),
            size_bytes,
            sha256,
            etag,
            commit: header(&first, "x-repo-commit"),
        })
    }

    fn head(&self, requests: &mut u32) -> Result<(HeaderMap, HeaderMap), RemoteError> {
        let resp = self.send_retrying(&self.url, None, true, requests)?;
        Ok((resp.first_headers, resp.response.headers().clone()))
    }

    /// A request (GET, or HEAD when `head`) for `range`, following redirects and retrying
    /// transient failures; the final answer is a success.
    fn send_retrying(
        &self,
        url: &Url,
        range: Option<(u64, u64)>,
        head: bool,
        requests: &mut u32,
    ) -> Result<Answer, RemoteError> {
        let mut failures = 0u32;
        loop {
            *requests += 1;
            match self.send(url, range, head) {
                Ok(a) => return Ok(a),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Retry(cause)) => {
                    failures += 1;
                    if failures > self.opts.retries {
                        return Err(RemoteError::Network {
                            url: self.shown.clone(),
                            attempts: failures,
                            cause,
                        });
                    }
                    std::thread::sleep(backoff(
                        self.opts.retry_base,
                        self.opts.retry_max,
                        failures,
                    ));
                }
            }
        }
    }

    fn send(&self, start: &Url, range: Option<(u64, u64)>, head: bool) -> Result<Answer, Attempt> {
        let origin = start.origin();
        let mut url = start.clone();
        let mut first_headers: Option<HeaderMap> = None;
        for _ in 0..=MAX_REDIRECTS {
            let mut rb = if head {
                self.client.head(url.clone())
            } else {
                self.client.get(url.clone())
            };
            if let Some((a, b)) = range {
                rb = rb.header(RANGE, format!("bytes={a}-{b}"));
            }
            if let Some(t) = self.token.filter(|_| url.origin() == origin) {
                rb = rb.bearer_auth(t.expose());
            }
            let resp = rb.send().map_err(|e| {
                Attempt::Retry(format!("request failed: {}", chain(&e.without_url())))
            })?;
            first_headers.get_or_insert_with(|| resp.headers().clone());
            let status = resp.status();
            if status.is_redirection() {
                let next = resp
                    .headers()
                    .get(LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| url.join(l).ok())
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .ok_or_else(|| {
                        Attempt::Fatal(RemoteError::BadResponse {
                            url: self.shown.clone(),
                            detail: format!("HTTP {status} without a usable Location"),
                        })
                    })?;
                url = next;
                continue;
            }
            if status.is_success() {
                return Ok(Answer {
                    first_headers: first_headers.unwrap_or_default(),
                    response: resp,
                });
            }
            let shown = self.shown.clone();
            return Err(match status.as_u16() {
                404 | 410 => Attempt::Fatal(RemoteError::NotFound { url: shown }),
                401 | 403 => Attempt::Fatal(RemoteError::Unauthorized {
                    url: shown,
                    status: status.as_u16(),
                    token_sent: self.token.is_some(),
                    model_page: self.model_page.clone(),
                }),
                408 | 429 | 500..=599 => {
                    Attempt::Retry(format!("the server answered HTTP {status}"))
                }
                s => Attempt::Fatal(RemoteError::Status {
                    url: shown,
                    status: s,
                }),
            });
        }
        Err(Attempt::Fatal(RemoteError::BadResponse {
            url: self.shown.clone(),
            detail: format!("more than {MAX_REDIRECTS} redirects"),
        }))
    }
}

struct Answer {
    /// The headers of the first response (before any redirect).
    first_headers: HeaderMap,
    response: Response,
}

impl std::ops::Deref for Answer {
    type Target = Response;
    fn deref(&self) -> &Response {
        &self.response
    }
}

impl Answer {
    fn text(self) -> reqwest::Result<String> {
        self.response.text()
    }
}

enum Attempt {
    Fatal(RemoteError),
    Retry(String),
}

/// The total of `Content-Range: bytes A-B/TOTAL`.
fn total_from_range(resp: &Response) -> Option<u64> {
    let v = resp.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    v.rsplit_once('/')?.1.trim().parse().ok()
}

/// The start of a remote file as a `Read`: the bytes read so far are kept (for the cache), and
/// reading past them fetches the next range, each twice the size of the one before. A server
/// that ignores Range is read as one stream, as far as the reader goes.
struct RangeSource<'s, 'a> {
    session: &'s Session<'a>,
    size: u64,
    /// Bytes `0..data.len()` of the file.
    data: Vec<u8>,
    pos: usize,
    next_chunk: u64,
    /// The body of a 200 answer to a range request.
    stream: Option<Response>,
    requests: u32,
    /// The failure behind the last read error.
    error: Option<RemoteError>,
}

impl RangeSource<'_, '_> {
    fn fetched(&self) -> u64 {
        self.data.len() as u64
    }

    /// Append the next range (or the next piece of the stream) to `data`.
    fn fill(&mut self) -> Result<(), RemoteError> {
        let have = self.data.len() as u64;
        if have >= MAX_HEADER_BYTES {
            return Err(RemoteError::BadResponse {
                url: self.session.shown.clone(),
                detail: format!(
                    "its GGUF header goes on past {} MiB; refusing to read further",
                    MAX_HEADER_BYTES >> 20
                ),
            });
        }
        let want = self
            .next_chunk
            .min(MAX_HEADER_BYTES - have)
            .min(self.size - have);
        self.next_chunk = (self.next_chunk * 2).min(MAX_CHUNK);
        if let Some(stream) = self.stream.as_mut() {
            return read_into(stream, &mut self.data, want).map_err(|e| RemoteError::Network {
                url: self.session.shown.clone(),
                attempts: 1,
                cause: format!("the stream broke: {e}"),
            });
        }
        let end = have + want - 1;
        let mut attempts = 0;
        loop {
            let mut resp = self
                .session
                .send_retrying(
                    &self.session.url,
                    Some((have, end)),
                    false,
                    &mut self.requests,
                )?
                .response;
            match resp.status() {
                StatusCode::PARTIAL_CONTENT => {
                    let start = resp
                        .headers()
                        .get(CONTENT_RANGE)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().strip_prefix("bytes "))
                        .and_then(|v| v.split_once('-'))
                        .and_then(|(a, _)| a.trim().parse::<u64>().ok());
                    if start != Some(have) {
                        return Err(RemoteError::BadResponse {
                            url: self.session.shown.clone(),
                            detail: format!(
                                "asked for bytes {have}-{end}, the answer starts at {start:?}"
                            ),
                        });
                    }
                    let before = self.data.len();
                    match read_into(&mut resp, &mut self.data, want) {
                        Ok(()) if self.data.len() - before == want as usize => return Ok(()),
                        // Cut short: ask again for what is missing of this range.
                        Ok(()) | Err(_) => {
                            attempts += 1;
                            if self.data.len() > before {
                                return Ok(());
                            }
                            if attempts > self.session.opts.retries {
                                return Err(RemoteError::Network {
                                    url: self.session.shown.clone(),
                                    attempts,
                                    cause: format!("the range {have}-{end} came back empty"),
                                });
                            }
                        }
                    }
                }
                _ => {
                    // 200: the server ignored the range. Read the body as far as needed.
                    if have > 0 {
                        io::copy(&mut (&mut resp).take(have), &mut io::sink()).map_err(|e| {
                            RemoteError::Network {
                                url: self.session.shown.clone(),
                                attempts: 1,
                                cause: format!("the stream broke: {e}"),
                            }
                        })?;
                    }
                    let stream = self.stream.insert(resp);
                    return read_into(stream, &mut self.data, want).map_err(|e| {
                        RemoteError::Network {
                            url: self.session.shown.clone(),
                            attempts: 1,
                            cause: format!("the stream broke: {e}"),
                        }
                    });
                }
            }
        }
    }
}

/// Append up to `n` bytes of `r` to `buf` (fewer only at the end of `r`).
fn read_into(r: &mut dyn Read, buf: &mut Vec<u8>, n: u64) -> io::Result<()> {
    r.take(n).read_to_end(buf).map(|_| ())
}

impl Read for RangeSource<'_, '_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.data.len() {
            if self.data.len() as u64 >= self.size {
                return Ok(0);
            }
            let before = self.data.len();
            if let Err(e) = self.fill() {
                let msg = e.to_string();
                self.error = Some(e);
                return Err(io::Error::other(msg));
            }
            if self.data.len() == before {
                return Ok(0);
            }
        }
        let n = out.len().min(self.data.len() - self.pos);
        out[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_url_encodes_the_revision() {
        assert_eq!(
            tree_url("http://m/", "o/r", "refs/pr/1"),
            "http://m/api/models/o/r/tree/refs%2Fpr%2F1?recursive=true"
        );
    }

    #[test]
    fn next_page_from_link_header() {
        let mut h = HeaderMap::new();
        h.insert(
            LINK,
            "<http://m/api/models/o/r/tree/main?cursor=abc>; rel=\"next\""
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_page(&h).unwrap().as_str(),
            "http://m/api/models/o/r/tree/main?cursor=abc"
        );
        assert!(next_page(&HeaderMap::new()).is_none());
    }

    #[test]
    fn cache_key_changes_with_each_part() {
        let f = HfFile {
            endpoint: "http://m".into(),
            repo: "o/r".into(),
            revision: "main".into(),
            path: "m.gguf".into(),
        };
        let dir = Path::new("/c");
        let base = cache_path(dir, &f, "e1");
        assert_ne!(base, cache_path(dir, &f, "e2"));
        let other_rev = HfFile {
            revision: "v2".into(),
            ..f.clone()
        };
        assert_ne!(base, cache_path(dir, &other_rev, "e1"));
        let other_path = HfFile {
            path: "n.gguf".into(),
            ..f.clone()
        };
        assert_ne!(base, cache_path(dir, &other_path, "e1"));
        assert_eq!(base, cache_path(dir, &f, "e1"));
    }
}

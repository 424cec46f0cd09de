//! The HTTP side of a fetch: requests with Range, redirects that drop the token on a new host,
//! status handling, and the retry loop with backoff.
//!
//! One loop serves both modes: a [`Target`] is either the whole file, appended to the part file
//! from wherever it stops (`bytes=N-`), or one range of it, written at its own offset
//! (`bytes=N-M`, see `ranges`). Retries, backoff, stalls, Retry-After, tokens and redirects
//! behave the same for each.

use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read};
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, Response};
use reqwest::header::{CONTENT_RANGE, LOCATION, RANGE, RETRY_AFTER};
use reqwest::{StatusCode, Url};

use super::disk::available_bytes;
use super::sink::{CopyError, PartFile};
use super::{FetchOptions, Secret};
use crate::progress::Progress;

/// Redirects followed per request (Hugging Face uses one, to its CDN).
const MAX_REDIRECTS: usize = 10;

/// Everything a transfer needs that does not change between attempts.
pub(crate) struct Transfer<'a> {
    pub client: &'a Client,
    pub url: &'a Url,
    /// Sent only to the origin of `url`.
    pub token: Option<&'a Secret>,
    pub expected_size: Option<u64>,
    pub opts: &'a FetchOptions,
    pub progress: &'a dyn Progress,
    pub label: &'a str,
}

/// Where the bytes of a transfer go.
pub(crate) trait Target {
    /// Absolute offset of the next byte wanted.
    fn pos(&self) -> u64;
    /// Exclusive end of the bytes wanted, for one range of the file; `None` for the whole
    /// file, to wherever the server's file ends.
    fn end(&self) -> Option<u64>;
    /// Forget every byte and start again from zero (only the whole file can).
    fn restart(&mut self) -> io::Result<()>;
    /// Copy `src` in, up to the absolute offset `limit` (more is an error), calling
    /// `on_progress` with the new position after each write. Bytes read before an error are
    /// kept.
    fn copy_from(
        &mut self,
        src: &mut dyn Read,
        limit: Option<u64>,
        on_progress: &mut dyn FnMut(u64),
    ) -> Result<(), CopyError>;
    /// Another range failed for good: stop at the next chance.
    fn cancelled(&self) -> bool {
        false
    }
}

impl Target for PartFile {
    fn pos(&self) -> u64 {
        self.len()
    }
    fn end(&self) -> Option<u64> {
        None
    }
    fn restart(&mut self) -> io::Result<()> {
        self.truncate()
    }
    fn copy_from(
        &mut self,
        src: &mut dyn Read,
        limit: Option<u64>,
        on_progress: &mut dyn FnMut(u64),
    ) -> Result<(), CopyError> {
        PartFile::copy_from(self, src, limit, on_progress)
    }
}

/// A failure retrying will not fix. The caller turns it into a `FetchError`, deciding what
/// happens to the partial file.
#[derive(Debug)]
pub(crate) enum Fatal {
    NotFound,
    Unauthorized {
        status: u16,
    },
    Status {
        status: u16,
    },
    /// The server's size differs from the expected one.
    SizeMismatch {
        actual_bytes: u64,
    },
    DiskFull {
        dir: std::path::PathBuf,
        missing_bytes: u64,
        margin_bytes: u64,
        available_bytes: u64,
    },
    Io {
        op: &'static str,
        source: io::Error,
    },
    BadRequest(String),
    /// Retries ran out; `stalled` when the last failure was a stall.
    Exhausted {
        attempts: u32,
        stalled: bool,
        last: String,
    },
    /// A range request was answered with the whole file (200), another range, or more bytes
    /// than asked for: the server's Range support cannot be relied on, fetch on one stream.
    RangeUnsupported {
        what: String,
    },
    /// Stopped because another range failed.
    Cancelled,
}

/// How one attempt ended, short of success.
enum AttemptError {
    Fatal(Fatal),
    /// Transient: try again after a pause.
    Retry {
        cause: String,
        stalled: bool,
        retry_after: Option<Duration>,
        progressed: bool,
    },
    /// The server's answer did not fit the partial file, which was emptied: request again from
    /// zero at once.
    Restart,
}

impl Transfer<'_> {
    /// Fill `target` until the server has no more bytes (or its range is complete), retrying
    /// transient failures. Returns the number of requests made; on failure, the error and the
    /// number of requests, too.
    pub(crate) fn run(&self, target: &mut dyn Target) -> Result<u32, (Fatal, u32)> {
        let complete = match target.end() {
            Some(end) => target.pos() >= end,
            None => self.expected_size.is_some_and(|s| target.pos() == s),
        };
        if complete {
            return Ok(0);
        }
        let mut attempts = 0u32;
        let mut failures_in_row = 0u32;
        loop {
            if target.cancelled() {
                return Err((Fatal::Cancelled, attempts));
            }
            attempts += 1;
            let before = target.pos();
            match self.attempt(target) {
                Ok(()) => return Ok(attempts),
                Err(AttemptError::Fatal(f)) => return Err((f, attempts)),
                Err(AttemptError::Restart) => continue,
                Err(AttemptError::Retry { .. }) if target.cancelled() => {
                    return Err((Fatal::Cancelled, attempts))
                }
                Err(AttemptError::Retry {
                    cause,
                    stalled,
                    retry_after,
                    progressed,
                }) => {
                    // A failure after fresh bytes starts a new series: a long download over a
                    // flaky link keeps going as long as it keeps moving.
                    if progressed || target.pos() > before {
                        failures_in_row = 0;
                    }
                    failures_in_row += 1;
                    if failures_in_row > self.opts.retries {
                        return Err((
                            Fatal::Exhausted {
                                attempts,
                                stalled,
                                last: cause,
                            },
                            attempts,
                        ));
                    }
                    let delay = match retry_after {
                        Some(d) => d.min(self.opts.retry_max),
                        None => backoff(self.opts.retry_base, self.opts.retry_max, failures_in_row),
                    };
                    let whose = match target.end() {
                        Some(_) => format!("{}: ", self.label),
                        None => String::new(),
                    };
                    self.progress.note(&format!(
                        "{whose}{cause}; retrying in {:.1} s (retry {failures_in_row} of {})",
                        delay.as_secs_f64(),
                        self.opts.retries
                    ));
                    sleep_unless_cancelled(delay, target);
                }
            }
        }
    }

    /// Ask whether the server serves ranges and how large the file is, with one request for
    /// its first byte. `None` when it does not say (it ignored the range, failed, or gave no
    /// total): the caller then fetches on one stream, whose own retries and errors apply.
    pub(crate) fn probe_size(&self) -> Option<u64> {
        let resp = self.send(Some("bytes=0-0".into())).ok()?;
        match (resp.status(), content_range(&resp)) {
            (
                StatusCode::PARTIAL_CONTENT,
                Some(ContentRange::Bytes {
                    start: 0,
                    total: Some(t),
                }),
            ) => Some(t),
            _ => None,
        }
    }

    fn attempt(&self, target: &mut dyn Target) -> Result<(), AttemptError> {
        let from = target.pos();
        let range_end = target.end();
        let header = match range_end {
            Some(end) => Some(format!("bytes={from}-{}", end.saturating_sub(1))),
            None if from > 0 => Some(format!("bytes={from}-")),
            None => None,
        };
        let resp = self.send(header)?;
        let status = resp.status();
        let unsupported = |what: String| AttemptError::Fatal(Fatal::RangeUnsupported { what });
        let total = match status {
            StatusCode::OK if range_end.is_some() => {
                return Err(unsupported(format!(
                    "the server ignored the range request for {}",
                    self.label
                )))
            }
            StatusCode::OK => {
                if from > 0 {
                    self.progress.note(&format!(
                        "the server ignored the range request; restarting {} from zero",
                        self.label
                    ));
                    target
                        .restart()
                        .map_err(|e| io_fatal("truncate the partial file", e))?;
                }
                resp.content_length()
            }
            StatusCode::PARTIAL_CONTENT => match content_range(&resp) {
                Some(ContentRange::Bytes { start, total }) if start == from => total,
                _ if range_end.is_some() => {
                    return Err(unsupported(format!(
                        "the server answered with another range than bytes {from}- for {}",
                        self.label
                    )))
                }
                // A range answer to a request without one: nothing to restart from.
                _ if from == 0 => return Err(unusable(status)),
                _ => {
                    self.progress.note(&format!(
                        "the server answered with another range than bytes {from}-; restarting {} from zero",
                        self.label
                    ));
                    target
                        .restart()
                        .map_err(|e| io_fatal("truncate the partial file", e))?;
                    return Err(AttemptError::Restart);
                }
            },
            StatusCode::RANGE_NOT_SATISFIABLE if range_end.is_some() => {
                // A range inside the expected size that the server cannot serve: its file is
                // shorter than expected.
                return Err(match (content_range(&resp), self.expected_size) {
                    (Some(ContentRange::Unsatisfied { total }), Some(expected))
                        if total != expected =>
                    {
                        AttemptError::Fatal(Fatal::SizeMismatch {
                            actual_bytes: total,
                        })
                    }
                    _ => unsupported(format!(
                        "the server refused the range request for {}",
                        self.label
                    )),
                });
            }
            StatusCode::RANGE_NOT_SATISFIABLE if from == 0 => return Err(unusable(status)),
            StatusCode::RANGE_NOT_SATISFIABLE => {
                let range = content_range(&resp);
                if matches!(range, Some(ContentRange::Unsatisfied { total }) if total == from) {
                    // The partial file already holds every byte the server has.
                    return Ok(());
                }
                self.progress.note(&format!(
                    "the partial file is longer than the server's file; restarting {} from zero",
                    self.label
                ));
                target
                    .restart()
                    .map_err(|e| io_fatal("truncate the partial file", e))?;
                return Err(AttemptError::Restart);
            }
            s => return Err(status_error(s, &resp)),
        };
        if let (Some(expected), Some(actual)) = (self.expected_size, total) {
            if expected != actual {
                return Err(AttemptError::Fatal(Fatal::SizeMismatch {
                    actual_bytes: actual,
                }));
            }
        }
        let total = total.or(self.expected_size);
        // A range's progress and disk space are the caller's: it shows all ranges as one.
        let whole = range_end.is_none();
        if whole {
            if let Some(t) = total {
                self.check_space(t.saturating_sub(target.pos()))
                    .map_err(AttemptError::Fatal)?;
            }
            self.progress
                .phase(&format!("downloading {}", self.label), total);
            self.progress.position(target.pos());
        }
        let limit = range_end.or(total);
        let start_pos = target.pos();
        let mut body = Watched {
            inner: resp,
            last_data: Instant::now(),
        };
        let progress = self.progress;
        let copied = target.copy_from(&mut body, limit, &mut |n| {
            if whole {
                progress.position(n)
            }
        });
        let progressed = target.pos() > start_pos;
        match copied {
            Ok(()) => {}
            Err(CopyError::Write(e)) if e.kind() == io::ErrorKind::StorageFull => {
                // The check before the body passed, but the disk filled up meanwhile.
                let missing = limit.map_or(0, |t| t.saturating_sub(target.pos()));
                return Err(AttemptError::Fatal(self.disk_full(missing)));
            }
            Err(CopyError::Write(e)) => return Err(io_fatal("write the partial file", e)),
            Err(CopyError::TooLong) if !whole => {
                return Err(unsupported(format!(
                    "the server sent more than the range asked for {}",
                    self.label
                )))
            }
            Err(CopyError::TooLong) => {
                let actual = total.unwrap_or(0).max(target.pos());
                return Err(AttemptError::Fatal(Fatal::SizeMismatch {
                    actual_bytes: actual,
                }));
            }
            Err(CopyError::Read(e)) => {
                let stalled = is_timeout(&e) || body.last_data.elapsed() >= self.opts.stall_timeout;
                let cause = if stalled {
                    format!("no data for {:.1} s", self.opts.stall_timeout.as_secs_f64())
                } else {
                    format!(
                        "connection lost after {} bytes: {}",
                        target.pos(),
                        chain(&e)
                    )
                };
                return Err(AttemptError::Retry {
                    cause,
                    stalled,
                    retry_after: None,
                    progressed,
                });
            }
        }
        if let Some(t) = limit {
            if target.pos() < t {
                return Err(AttemptError::Retry {
                    cause: format!("the body ended at byte {} of {t}", target.pos()),
                    stalled: false,
                    retry_after: None,
                    progressed,
                });
            }
        }
        if whole {
            self.progress.finish();
        }
        Ok(())
    }

    /// Refuse when the destination's filesystem lacks `missing` bytes plus the margin.
    pub(crate) fn check_space(&self, missing: u64) -> Result<(), Fatal> {
        match available_bytes(&self.opts.dest_dir) {
            Some(a) if a < missing.saturating_add(self.opts.disk_margin_bytes) => {
                Err(self.disk_full(missing))
            }
            _ => Ok(()),
        }
    }

    fn disk_full(&self, missing: u64) -> Fatal {
        Fatal::DiskFull {
            dir: self.opts.dest_dir.clone(),
            missing_bytes: missing,
            margin_bytes: self.opts.disk_margin_bytes,
            available_bytes: available_bytes(&self.opts.dest_dir).unwrap_or(0),
        }
    }

    /// GET with the Range header `range`, following redirects by hand so that the token goes
    /// only to the origin it was meant for (Hugging Face redirects LFS files to a CDN on another
    /// host).
    fn send(&self, range: Option<String>) -> Result<Response, AttemptError> {
        let origin = self.url.origin();
        let mut url = self.url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let mut rb = self.client.get(url.clone());
            if let Some(r) = &range {
                rb = rb.header(RANGE, r.as_str());
            }
            if let Some(t) = self.token.filter(|_| url.origin() == origin) {
                rb = rb.bearer_auth(t.expose());
            }
            let resp = rb.send().map_err(|e| {
                // Without the URL: a redirect target may carry signed query parameters.
                let e = e.without_url();
                let stalled = e.is_timeout();
                let cause = if stalled {
                    format!(
                        "no response for {:.1} s",
                        self.opts.stall_timeout.as_secs_f64()
                    )
                } else {
                    format!("request failed: {}", chain(&e))
                };
                AttemptError::Retry {
                    cause,
                    stalled,
                    retry_after: None,
                    progressed: false,
                }
            })?;
            if !resp.status().is_redirection() {
                return Ok(resp);
            }
            let next = resp
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| url.join(l).ok())
                .ok_or_else(|| {
                    AttemptError::Fatal(Fatal::Status {
                        status: resp.status().as_u16(),
                    })
                })?;
            if !matches!(next.scheme(), "http" | "https") {
                return Err(AttemptError::Fatal(Fatal::BadRequest(format!(
                    "redirected to an unsupported scheme `{}`",
                    next.scheme()
                ))));
            }
            url = next;
        }
        Err(AttemptError::Fatal(Fatal::BadRequest(format!(
            "more than {MAX_REDIRECTS} redirects"
        ))))
    }
}

/// Sleep for `delay`, waking early when another range failed for good.
fn sleep_unless_cancelled(delay: Duration, target: &dyn Target) {
    let until = Instant::now() + delay;
    loop {
        let now = Instant::now();
        if now >= until || target.cancelled() {
            return;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(20)));
    }
}

/// Map a status that is neither success nor redirect to fatal or retryable.
fn status_error(s: StatusCode, resp: &Response) -> AttemptError {
    match s.as_u16() {
        404 | 410 => AttemptError::Fatal(Fatal::NotFound),
        401 | 403 => AttemptError::Fatal(Fatal::Unauthorized { status: s.as_u16() }),
        408 | 429 | 500..=599 => AttemptError::Retry {
            cause: format!("the server answered HTTP {s}"),
            stalled: false,
            retry_after: retry_after(resp),
            progressed: false,
        },
        _ => AttemptError::Fatal(Fatal::Status { status: s.as_u16() }),
    }
}

/// A status that makes no sense for the request sent.
fn unusable(s: StatusCode) -> AttemptError {
    AttemptError::Fatal(Fatal::Status { status: s.as_u16() })
}

fn io_fatal(op: &'static str, source: io::Error) -> AttemptError {
    AttemptError::Fatal(Fatal::Io { op, source })
}

/// Retry-After in seconds (the HTTP-date form is rare for downloads and falls back to backoff).
fn retry_after(resp: &Response) -> Option<Duration> {
    let v = resp.headers().get(RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

enum ContentRange {
    Bytes { start: u64, total: Option<u64> },
    Unsatisfied { total: u64 },
}

/// `bytes START-END/TOTAL` (TOTAL may be `*`) or `bytes */TOTAL`.
fn content_range(resp: &Response) -> Option<ContentRange> {
    let v = resp.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    parse_content_range(v)
}

fn parse_content_range(v: &str) -> Option<ContentRange> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    if range.trim() == "*" {
        return Some(ContentRange::Unsatisfied {
            total: total.trim().parse().ok()?,
        });
    }
    let (start, end) = range.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = end.trim().parse().ok()?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse::<u64>().ok()?),
    };
    if end < start || total.is_some_and(|t| end >= t) {
        return None;
    }
    Some(ContentRange::Bytes { start, total })
}

/// Exponential backoff with jitter: `base · 2^(n-1)`, capped, times a random factor in
/// [0.5, 1) so that many clients do not retry in step.
pub(super) fn backoff(base: Duration, max: Duration, n: u32) -> Duration {
    let exp = base
        .saturating_mul(1u32 << n.saturating_sub(1).min(20))
        .min(max);
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let factor = 0.5 + (random % 1000) as f64 / 2000.0;
    exp.mul_f64(factor)
}

/// The response body, remembering when it last produced bytes (to tell a stall from a reset).
struct Watched {
    inner: Response,
    last_data: Instant,
}

impl Read for Watched {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.last_data = Instant::now();
        }
        Ok(n)
    }
}

/// Whether an I/O error from a blocking reqwest body is its read timeout.
fn is_timeout(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::TimedOut
        || e.get_ref()
            .and_then(|i| i.downcast_ref::<reqwest::Error>())
            .is_some_and(|r| r.is_timeout())
}

/// An error and its causes on one line.
pub(super) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_forms() {
        assert!(matches!(
            parse_content_range("bytes 100-199/200"),
            Some(ContentRange::Bytes {
                start: 100,
                total: Some(200)
            })
        ));
        assert!(matches!(
            parse_content_range("bytes 5-9/*"),
            Some(ContentRange::Bytes {
                start: 5,
                total: None
            })
        ));
        assert!(matches!(
            parse_content_range("bytes */300"),
            Some(ContentRange::Unsatisfied { total: 300 })
        ));
        assert!(parse_content_range("bytes 10-5/20").is_none());
        assert!(parse_content_range("bytes 0-20/20").is_none());
        assert!(parse_content_range("items 0-1/2").is_none());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        let b1 = backoff(base, max, 1);
        assert!(b1 >= Duration::from_millis(50) && b1 < base);
        let b3 = backoff(base, max, 3);
        assert!(b3 >= Duration::from_millis(200) && b3 < Duration::from_millis(400));
        assert!(backoff(base, max, 30) < max);
    }
}

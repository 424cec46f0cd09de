//! Parallel ranged download: the file is split into ranges fetched on several connections at
//! once, each written into the part file at its own offset.
//!
//! CDNs cap each connection, so one stream is often slower than the line. Each range goes
//! through the same [`Transfer`] loop as the single stream (retries, backoff, stalls,
//! Retry-After, tokens, redirects); a server whose Range support cannot be relied on makes the
//! caller fall back to one stream from zero.
//!
//! Progress is durable: every [`RECORD_INTERVAL`] the part file is synced and then a sidecar,
//! `<file>.part.ranges`, is replaced (temporary file + rename) with how many bytes from each
//! range's start are on disk. The record never claims bytes that were not synced first, so a
//! resume after a crash or `SIGKILL` fetches only the missing bytes. A sidecar that does not
//! match the part file, the size or the checksum is not trusted (the caller starts over).
//!
//! sha256 runs on its own thread over the file in order: it follows the contiguous prefix of
//! finished bytes (the lowest unfinished range's progress) and reads what is already written,
//! so when the last range ends, little is left to hash.
//!
//! This module knows nothing about what the file is for; it never prints.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::sink::{hex, open_no_follow, CopyError, BUFFER_BYTES};
use super::transfer::{Fatal, Target, Transfer};

/// How often the progress of the ranges is made durable (sync, then record). A crash loses at
/// most about this much of each connection's transfer.
pub(crate) const RECORD_INTERVAL: Duration = Duration::from_secs(1);
/// A partly filled buffer is written out at least this often (as in the single stream).
const FLUSH_INTERVAL: Duration = Duration::from_millis(200);
/// The most ranges a record may hold (more is a corrupt record).
const MAX_SPANS: usize = 1024;
/// First line of a record, with its format version.
const HEADER: &str = "minerva-setup ranges 1";

/// `<part>.ranges`: where the progress of the ranges of `part` is recorded.
pub(crate) fn sidecar_path(part: &Path) -> PathBuf {
    let mut name = part.file_name().unwrap_or_default().to_os_string();
    name.push(".ranges");
    part.with_file_name(name)
}

/// One range of the file: bytes `start..end`, of which the first `done` are on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: u64,
    pub end: u64,
    pub done: u64,
}

impl Span {
    fn complete(&self) -> bool {
        self.start + self.done >= self.end
    }
}

/// Split `from..size` into at most `connections` ranges of about equal length, none shorter
/// than `min_bytes` (so a small file stays one range). Empty when there is nothing to fetch.
pub(crate) fn split(from: u64, size: u64, connections: u32, min_bytes: u64) -> Vec<Span> {
    let left = size.saturating_sub(from);
    if left == 0 {
        return Vec::new();
    }
    let n = (left / min_bytes.max(1)).clamp(1, u64::from(connections.max(1)));
    let step = left / n;
    (0..n)
        .map(|i| Span {
            start: from + i * step,
            end: if i + 1 == n {
                size
            } else {
                from + (i + 1) * step
            },
            done: 0,
        })
        .collect()
}

/// Bytes on disk in all ranges.
pub(crate) fn kept_bytes(spans: &[Span]) -> u64 {
    spans.iter().map(|s| s.done).sum()
}

/// Read the record at `path` for a part file of `part_len` bytes that must become `size` bytes
/// with sha256 `sha256`. `Err` says why the record cannot be trusted.
pub(crate) fn load(
    path: &Path,
    size: u64,
    sha256: &str,
    part_len: u64,
) -> Result<Vec<Span>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot be read ({e})"))?;
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err("is not a record of this version".into());
    }
    let field = |line: Option<&str>, key: &str| -> Result<String, String> {
        line.and_then(|l| l.strip_prefix(key))
            .and_then(|v| v.strip_prefix(' '))
            .map(str::to_string)
            .ok_or_else(|| format!("has no `{key}` line"))
    };
    let recorded_size: u64 = field(lines.next(), "size")?
        .parse()
        .map_err(|_| "has an unreadable size".to_string())?;
    if recorded_size != size {
        return Err(format!("is for {recorded_size} bytes, not {size}"));
    }
    if field(lines.next(), "sha256")? != sha256 {
        return Err("is for a file with another sha256".into());
    }
    if part_len != size {
        return Err(format!(
            "does not match the partial file ({part_len} bytes, not {size})"
        ));
    }
    let mut spans = Vec::new();
    for line in lines {
        let nums: Vec<u64> = line
            .strip_prefix("range ")
            .ok_or_else(|| format!("has an unreadable line `{line}`"))?
            .split(' ')
            .map(|n| n.parse::<u64>())
            .collect::<Result<_, _>>()
            .map_err(|_| format!("has an unreadable line `{line}`"))?;
        let [start, end, done] = nums[..] else {
            return Err(format!("has an unreadable line `{line}`"));
        };
        spans.push(Span { start, end, done });
        if spans.len() > MAX_SPANS {
            return Err("has too many ranges".into());
        }
    }
    let mut at = 0;
    for s in &spans {
        if s.start != at || s.end <= s.start || s.done > s.end - s.start {
            return Err("has ranges that do not tile the file".into());
        }
        at = s.end;
    }
    if at != size {
        return Err("has ranges that do not cover the file".into());
    }
    Ok(spans)
}

/// Replace the record at `path` atomically: write a temporary file, sync it, rename it.
pub(crate) fn store(path: &Path, size: u64, sha256: &str, spans: &[Span]) -> io::Result<()> {
    let mut text = format!("{HEADER}\nsize {size}\nsha256 {sha256}\n");
    for s in spans {
        text.push_str(&format!("range {} {} {}\n", s.start, s.end, s.done));
    }
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    let mut f = open_no_follow(&tmp)?;
    f.set_len(0)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// A finished parallel transfer, synced, with the sha256 of the whole file.
pub(crate) struct Outcome {
    pub bytes: u64,
    pub sha256: String,
    pub attempts: u32,
    pub received: u64,
    pub resumed_from: u64,
    pub connections: u32,
}

/// Why a parallel transfer stopped.
pub(crate) enum Failed {
    /// The server's Range support cannot be relied on (`why`): fetch on one stream.
    Fallback { why: String, attempts: u32 },
    /// A failure retrying did not fix; the record on disk holds `kept_bytes` for a resume.
    Fatal { fatal: Fatal, kept_bytes: u64 },
}

/// State the workers, the hasher and the recorder share.
struct Shared<'a> {
    file: File,
    spans: Vec<Span>,
    /// Bytes from each span's start written to the file (not necessarily synced).
    done: Vec<AtomicU64>,
    cancel: AtomicBool,
    received: AtomicU64,
    attempts: AtomicU32,
    transfer: &'a Transfer<'a>,
    size: u64,
    sha256: &'a str,
    sidecar: PathBuf,
}

impl Shared<'_> {
    fn snapshot(&self) -> Vec<Span> {
        self.spans
            .iter()
            .zip(&self.done)
            .map(|(s, d)| Span {
                done: d.load(Ordering::Acquire),
                ..*s
            })
            .collect()
    }

    fn total_done(&self) -> u64 {
        self.done.iter().map(|d| d.load(Ordering::Acquire)).sum()
    }

    /// End of the contiguous finished prefix of the file.
    fn contiguous(&self) -> u64 {
        for (s, d) in self.spans.iter().zip(&self.done) {
            let done = d.load(Ordering::Acquire);
            if s.start + done < s.end {
                return s.start + done;
            }
        }
        self.size
    }

    /// Make what the ranges hold durable, then say so in the record.
    fn record(&self) -> io::Result<()> {
        let spans = self.snapshot();
        self.file.sync_data()?;
        store(&self.sidecar, self.size, self.sha256, &spans)
    }
}

/// Fetch the unfinished parts of `spans` (which tile `0..size`) into `part_path` on up to
/// `connections` connections. `transfer.expected_size` must be `Some(size)`.
pub(crate) fn fetch(
    transfer: &Transfer<'_>,
    part_path: &Path,
    spans: Vec<Span>,
    size: u64,
    sha256: &str,
    connections: u32,
) -> Result<Outcome, Failed> {
    let io_failed = |op: &'static str, kept_bytes: u64| {
        move |source| Failed::Fatal {
            fatal: Fatal::Io { op, source },
            kept_bytes,
        }
    };
    let resumed_from = kept_bytes(&spans);
    let sidecar = sidecar_path(part_path);
    // The record comes first and the part file is sized after it: a part file without a
    // record that matches it is never taken for a parallel one.
    store(&sidecar, size, sha256, &spans).map_err(io_failed("write the range record", 0))?;
    let file = open_no_follow(part_path).map_err(io_failed("open the partial file", 0))?;
    let len = file
        .metadata()
        .map_err(io_failed("read the partial file", 0))?
        .len();
    if len != size {
        file.set_len(size)
            .map_err(io_failed("size the partial file", 0))?;
    }
    let todo: Vec<usize> = (0..spans.len()).filter(|&i| !spans[i].complete()).collect();
    let workers = (todo.len() as u32).min(connections.max(1)).max(1);
    let shared = Shared {
        done: spans.iter().map(|s| AtomicU64::new(s.done)).collect(),
        spans,
        file,
        cancel: AtomicBool::new(false),
        received: AtomicU64::new(0),
        attempts: AtomicU32::new(0),
        transfer,
        size,
        sha256,
        sidecar,
    };
    let progress = transfer.progress;
    progress.phase(
        &format!(
            "downloading {} on {workers} connection{}",
            transfer.label,
            if workers == 1 { "" } else { "s" }
        ),
        Some(size),
    );
    progress.position(resumed_from);
    let next = AtomicUsize::new(0);

    let (errors, digest) = std::thread::scope(|scope| {
        let hasher = scope.spawn(|| hash_in_order(&shared));
        let (tx, rx) = mpsc::channel::<Result<(), Fatal>>();
        for _ in 0..workers {
            let tx = tx.clone();
            let (shared, next, todo) = (&shared, &next, &todo);
            scope.spawn(move || {
                let result = loop {
                    let Some(&i) = todo.get(next.fetch_add(1, Ordering::SeqCst)) else {
                        break Ok(());
                    };
                    if let Err(f) = fetch_span(shared, i) {
                        shared.cancel.store(true, Ordering::SeqCst);
                        break Err(f);
                    }
                };
                let _ = tx.send(result);
            });
        }
        drop(tx);
        let mut errors = Vec::new();
        let mut last_record = Instant::now();
        let mut record_failed = false;
        loop {
            match rx.recv_timeout(RECORD_INTERVAL) {
                Ok(Ok(())) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Ok(Err(f)) => errors.push(f),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if last_record.elapsed() >= RECORD_INTERVAL && !shared.cancel.load(Ordering::SeqCst) {
                if let Err(e) = shared.record() {
                    if !record_failed {
                        progress.note(&format!(
                            "cannot record the progress of the ranges in {}: {e}; an interrupted download will start over",
                            shared.sidecar.display()
                        ));
                    }
                    record_failed = true;
                }
                last_record = Instant::now();
            }
        }
        if !errors.is_empty() || shared.contiguous() < shared.size {
            // Also when a worker ended without finishing its ranges: the hasher must not wait.
            shared.cancel.store(true, Ordering::SeqCst);
        }
        (errors, hasher.join().ok().flatten())
    });
    let attempts = shared.attempts.load(Ordering::SeqCst);
    if !errors.is_empty() {
        // Keep what arrived for the next run; an error here only costs a longer resume.
        let _ = shared.record();
        let kept = shared.total_done();
        let first = errors
            .into_iter()
            .find(|f| !matches!(f, Fatal::Cancelled))
            .unwrap_or(Fatal::Cancelled);
        progress.finish();
        return Err(match first {
            Fatal::RangeUnsupported { what } => Failed::Fallback {
                why: what,
                attempts,
            },
            fatal => Failed::Fatal {
                fatal,
                kept_bytes: kept,
            },
        });
    }
    progress.finish();
    let kept = shared.total_done();
    shared
        .file
        .sync_all()
        .map_err(io_failed("sync the partial file", kept))?;
    let sha = digest.ok_or_else(|| Failed::Fatal {
        fatal: Fatal::Io {
            op: "hash the partial file",
            source: io::Error::other("the sha256 thread stopped unexpectedly"),
        },
        kept_bytes: kept,
    })?;
    let sha = sha.map_err(io_failed("read the partial file", kept))?;
    Ok(Outcome {
        bytes: size,
        sha256: sha,
        attempts,
        received: shared.received.load(Ordering::SeqCst),
        resumed_from,
        connections: workers,
    })
}

/// Fetch what span `i` still lacks, through the shared retry loop.
fn fetch_span(shared: &Shared<'_>, i: usize) -> Result<(), Fatal> {
    let span = shared.spans[i];
    let label = format!(
        "{} bytes {}-{}",
        shared.transfer.label,
        span.start,
        span.end - 1
    );
    let transfer = Transfer {
        label: &label,
        expected_size: Some(shared.size),
        ..*shared.transfer
    };
    let mut writer = SpanWriter {
        shared,
        index: i,
        buf: vec![0u8; BUFFER_BYTES],
    };
    let r = transfer.run(&mut writer);
    let attempts = match &r {
        Ok(n) | Err((_, n)) => *n,
    };
    shared.attempts.fetch_add(attempts, Ordering::SeqCst);
    r.map(|_| ()).map_err(|(f, _)| f)
}

/// sha256 of `0..size`, read in order as the contiguous prefix grows. `None` when the transfer
/// was cancelled.
fn hash_in_order(shared: &Shared<'_>) -> Option<io::Result<String>> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; BUFFER_BYTES];
    let mut hashed = 0u64;
    while hashed < shared.size {
        let ready = shared.contiguous();
        if ready <= hashed {
            if shared.cancel.load(Ordering::SeqCst) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let n = (ready - hashed).min(buf.len() as u64) as usize;
        if let Err(e) = shared.file.read_exact_at(&mut buf[..n], hashed) {
            return Some(Err(e));
        }
        h.update(&buf[..n]);
        hashed += n as u64;
    }
    Some(Ok(hex(&h.finalize())))
}

/// One range as a transfer target: bytes go to the part file at the range's offset.
struct SpanWriter<'a> {
    shared: &'a Shared<'a>,
    index: usize,
    buf: Vec<u8>,
}

impl SpanWriter<'_> {
    fn write(&mut self, n: usize) -> io::Result<()> {
        let pos = self.pos();
        self.shared.file.write_all_at(&self.buf[..n], pos)?;
        self.shared.done[self.index].fetch_add(n as u64, Ordering::Release);
        self.shared.received.fetch_add(n as u64, Ordering::SeqCst);
        self.shared
            .transfer
            .progress
            .position(self.shared.total_done());
        Ok(())
    }
}

impl Target for SpanWriter<'_> {
    fn pos(&self) -> u64 {
        self.shared.spans[self.index].start + self.shared.done[self.index].load(Ordering::Acquire)
    }

    fn end(&self) -> Option<u64> {
        Some(self.shared.spans[self.index].end)
    }

    fn restart(&mut self) -> io::Result<()> {
        Err(io::Error::other("a range cannot restart the file"))
    }

    fn copy_from(
        &mut self,
        src: &mut dyn Read,
        limit: Option<u64>,
        _on_progress: &mut dyn FnMut(u64),
    ) -> Result<(), CopyError> {
        let limit = limit.unwrap_or(self.shared.spans[self.index].end);
        let mut filled = 0usize;
        let mut flushed_at = Instant::now();
        let result = loop {
            if self.cancelled() {
                break Err(CopyError::Read(io::Error::other(
                    "stopped: another range failed",
                )));
            }
            let n = match src.read(&mut self.buf[filled..]) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(CopyError::Read(e)),
            };
            filled += n;
            if self.pos() + filled as u64 > limit {
                return Err(CopyError::TooLong);
            }
            if filled == self.buf.len() || flushed_at.elapsed() >= FLUSH_INTERVAL {
                self.write(filled).map_err(CopyError::Write)?;
                filled = 0;
                flushed_at = Instant::now();
            }
        };
        if filled > 0 {
            self.write(filled).map_err(CopyError::Write)?;
        }
        result
    }

    fn cancelled(&self) -> bool {
        self.shared.cancel.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "9fecc3b3cd76bba89d504f29b616eedf7da85b96540e490ca5824d3f7d2776a0";

    #[test]
    fn splits_into_equal_ranges_but_not_below_the_minimum() {
        let s = split(0, 100, 4, 10);
        assert_eq!(s.len(), 4);
        assert_eq!(
            s.iter().map(|s| (s.start, s.end)).collect::<Vec<_>>(),
            [(0, 25), (25, 50), (50, 75), (75, 100)]
        );
        // 35 bytes with a 10-byte minimum: three ranges, the last takes the remainder.
        let s = split(65, 100, 8, 10);
        assert_eq!(
            s.iter().map(|s| (s.start, s.end)).collect::<Vec<_>>(),
            [(65, 76), (76, 87), (87, 100)]
        );
        assert_eq!(split(0, 15, 4, 10).len(), 1, "a small file stays one range");
        assert!(split(100, 100, 4, 10).is_empty());
        assert_eq!(split(0, 100, 1, 1).len(), 1);
    }

    #[test]
    fn a_record_round_trips_and_a_wrong_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.gguf.part.ranges");
        let mut spans = split(0, 1000, 4, 1);
        spans[0].done = 250;
        spans[2].done = 17;
        store(&p, 1000, SHA, &spans).unwrap();
        assert_eq!(load(&p, 1000, SHA, 1000).unwrap(), spans);
        assert!(!dir.path().join("m.gguf.part.ranges.tmp").exists());

        let refused = |why: &str| load(&p, 1000, SHA, 1000).expect_err(why);
        assert!(load(&p, 999, SHA, 999).unwrap_err().contains("not 999"));
        assert!(load(&p, 1000, &SHA.replace('9', "8"), 1000)
            .unwrap_err()
            .contains("sha256"));
        assert!(load(&p, 1000, SHA, 400)
            .unwrap_err()
            .contains("partial file"));
        let good = std::fs::read_to_string(&p).unwrap();
        for (what, text) in [
            (
                "claims more than its range",
                good.replace("range 0 250 250", "range 0 250 251"),
            ),
            ("gap", good.replace("range 250 500 0", "range 260 500 0")),
            ("short", good.replace("range 750 1000 0\n", "")),
            (
                "garbage",
                good.replace("range 500 750 17", "range 500 x 17"),
            ),
            ("version", good.replace("ranges 1", "ranges 9")),
            ("empty", String::new()),
        ] {
            std::fs::write(&p, text).unwrap();
            refused(what);
        }
        assert!(load(&dir.path().join("absent"), 1000, SHA, 1000).is_err());
    }

    #[test]
    fn the_sidecar_sits_next_to_the_part_file() {
        assert_eq!(
            sidecar_path(Path::new("/m/x.gguf.part")),
            Path::new("/m/x.gguf.part.ranges")
        );
    }
}

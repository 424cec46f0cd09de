//! The fetch stage against a loopback server with injected faults: for each fault the file
//! ends complete and correct, or absent with an error of the right kind, and a resumed transfer
//! fetches no more than the missing bytes.
//!
//! Each fault that a transfer can meet runs twice (`both_modes!`): on one stream, and on four
//! connections with ranges of at least 512 KiB, so that the 3 MiB file is four ranges and the
//! fault hits one of them.
#![allow(clippy::result_large_err)]

mod support;

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use minerva_setup::fetch::{
    fetch, FetchError, FetchErrorKind, FetchOptions, FetchReport, FetchRequest, HfFile, Obtained,
    Partial, Secret,
};
use minerva_setup::progress::Progress;
use support::http_server::{Fail, Faults, TestServer, Times};
use support::{content, sha256_hex};

const SIZE: usize = 3 * 1024 * 1024 + 12_345;
/// Ranges in the parallel mode: four of about 771 KiB.
const MIN_RANGE: u64 = 512 << 10;
/// Bytes a resumed transfer may fetch beyond the missing ones (none are expected; this only
/// keeps the assertion from depending on socket buffering).
const MARGIN: u64 = 0;

/// Collects progress notes, so tests can check what the user was told.
#[derive(Default)]
struct Notes(Mutex<Vec<String>>);

impl Progress for Notes {
    fn note(&self, msg: &str) {
        self.0.lock().unwrap().push(msg.to_string());
    }
}

impl Notes {
    fn contains(&self, s: &str) -> bool {
        self.0.lock().unwrap().iter().any(|n| n.contains(s))
    }
}

struct Case {
    server: TestServer,
    dir: tempfile::TempDir,
    data: Vec<u8>,
    req: FetchRequest,
    opts: FetchOptions,
    notes: Notes,
}

/// Define `mod NAME { one_stream, four_connections }` running `fn NAME(connections)` both ways.
macro_rules! both_modes {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn one_stream() {
                super::$name(1)
            }
            #[test]
            fn four_connections() {
                super::$name(4)
            }
        }
    )*};
}

impl Case {
    fn new() -> Case {
        Case::with_size(SIZE)
    }

    /// The default file fetched on `connections` (ranges of at least [`MIN_RANGE`]).
    fn on(connections: u32) -> Case {
        let mut c = Case::new();
        c.opts.connections = connections;
        c.opts.min_range_bytes = MIN_RANGE;
        c
    }

    fn parallel(&self) -> bool {
        self.opts.connections > 1
    }

    /// Where the four ranges of the parallel mode start.
    fn range_starts(&self) -> Vec<u64> {
        let step = self.data.len() as u64 / 4;
        (0..4).map(|i| i * step).collect()
    }

    /// The first byte each request asked for (0 without a Range header).
    fn requested_starts(&self) -> Vec<u64> {
        self.server
            .requests()
            .iter()
            .map(|r| range_start(r.range.as_deref()))
            .collect()
    }

    /// Requests that resumed a range `after` bytes past its start.
    fn resumed_requests(&self, after: u64) -> usize {
        let starts = self.range_starts();
        self.requested_starts()
            .iter()
            .filter(|a| starts.iter().any(|s| s + after == **a))
            .count()
    }

    fn sidecar_path(&self) -> PathBuf {
        self.opts.dest_dir.join("m.gguf.part.ranges")
    }

    fn with_size(size: usize) -> Case {
        let server = TestServer::start();
        let data = content(size, 7);
        server.add_file("/m.gguf", data.clone());
        let dir = tempfile::tempdir().unwrap();
        let req = FetchRequest {
            url: server.url("/m.gguf"),
            filename: "m.gguf".into(),
            expected_size: Some(size as u64),
            sha256: sha256_hex(&data),
            gated: false,
            hf: None,
        };
        let opts = FetchOptions {
            dest_dir: dir.path().join("models"),
            retries: 3,
            retry_base: Duration::from_millis(1),
            retry_max: Duration::from_millis(20),
            // Long enough that a busy machine is not taken for a stalled server.
            stall_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(2),
            connections: 1,
            ..FetchOptions::default()
        };
        Case {
            server,
            dir,
            data,
            req,
            opts,
            notes: Notes::default(),
        }
    }

    fn run(&self) -> Result<FetchReport, FetchError> {
        fetch(&self.req, &self.opts, &self.notes)
    }

    fn final_path(&self) -> PathBuf {
        self.opts.dest_dir.join("m.gguf")
    }

    fn part_path(&self) -> PathBuf {
        self.opts.dest_dir.join("m.gguf.part")
    }

    /// The first `n` bytes of the file as an earlier, interrupted run would have left them.
    fn leave_part(&self, bytes: &[u8]) {
        std::fs::create_dir_all(&self.opts.dest_dir).unwrap();
        std::fs::write(self.part_path(), bytes).unwrap();
    }

    fn assert_installed(&self, r: &FetchReport) {
        assert_eq!(
            std::fs::read(self.final_path()).unwrap(),
            self.data,
            "final file content"
        );
        assert!(
            !self.part_path().exists(),
            "the .part is gone after the rename"
        );
        assert!(
            !self.sidecar_path().exists(),
            "the record of ranges is gone after the rename"
        );
        assert!(
            !self.opts.dest_dir.join("m.gguf.lock").exists(),
            "the lock file is removed"
        );
        assert_eq!(r.bytes, self.data.len() as u64);
        assert_eq!(r.sha256, self.req.sha256);
        assert_eq!(r.path, self.final_path());
    }

    fn assert_absent(&self) {
        assert!(!self.final_path().exists(), "no final file after a failure");
    }
}

/// `bytes=A-...` → A; no header → 0.
fn range_start(range: Option<&str>) -> u64 {
    range
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split('-').next())
        .map_or(0, |a| a.parse().unwrap())
}

both_modes!(
    downloads_and_reports,
    body_shorter_than_content_length_is_resumed_in_the_same_run,
    dropped_connection_keeps_the_part_and_the_next_run_fetches_only_the_rest,
    server_ignoring_range_restarts_cleanly_from_zero,
    mismatched_content_range_restarts_from_zero,
    server_error_then_success,
    retries_are_bounded,
    not_found_is_not_retried,
    wrong_bytes_fail_the_checksum_and_delete_the_part,
    a_corrupt_part_from_an_earlier_run_is_replaced,
    size_mismatch_is_refused_before_the_body,
    a_stall_is_retried_and_resumed,
    a_slow_but_steady_download_is_not_a_stall,
    a_server_that_never_answers_is_retried,
    a_stall_past_the_retries_is_reported_as_stalled_and_keeps_the_part,
    token_reaches_the_first_host_but_not_the_redirect_target,
    token_is_not_sent_for_a_file_that_is_not_gated,
    gated_without_access_says_how_to_get_it,
    a_complete_part_is_verified_and_renamed_without_a_request,
    a_complete_part_of_unknown_size_is_finished_without_a_body,
);

fn downloads_and_reports(n: u32) {
    let c = Case::on(n);
    let r = c.run().unwrap();
    c.assert_installed(&r);
    assert_eq!(r.obtained, Obtained::Downloaded);
    assert_eq!((r.bytes_downloaded, r.resumed_from), (SIZE as u64, 0));
    assert_eq!((r.attempts, r.connections), (n, n));
    assert_eq!(r.source_url, c.req.url);
    assert_eq!(c.server.body_bytes_sent(), SIZE as u64);
    if c.parallel() {
        let mut asked: Vec<String> = c
            .server
            .requests()
            .iter()
            .map(|r| r.range.clone().unwrap())
            .collect();
        asked.sort_by_key(|r| range_start(Some(r)));
        let s = c.range_starts();
        assert_eq!(
            asked,
            [
                format!("bytes=0-{}", s[1] - 1),
                format!("bytes={}-{}", s[1], s[2] - 1),
                format!("bytes={}-{}", s[2], s[3] - 1),
                format!("bytes={}-{}", s[3], SIZE - 1),
            ]
        );
    } else {
        assert_eq!(c.server.requests()[0].range, None);
    }
}

fn body_shorter_than_content_length_is_resumed_in_the_same_run(n: u32) {
    let c = Case::on(n);
    // Inside the first range of either mode.
    let cut = 300_000;
    c.server.set_faults(Faults {
        cut: Some(Times {
            after_bytes: cut,
            times: 1,
        }),
        ..Faults::default()
    });
    let r = c.run().unwrap();
    c.assert_installed(&r);
    assert_eq!(r.attempts, n + 1);
    assert_eq!(c.server.request_count(), n as usize + 1);
    if c.parallel() {
        assert_eq!(c.resumed_requests(cut), 1, "{:?}", c.server.requests());
    } else {
        assert_eq!(
            c.server.requests()[1].range.as_deref(),
            Some(format!("bytes={cut}-").as_str())
        );
    }
    assert!(
        c.server.body_bytes_sent() <= SIZE as u64 + MARGIN,
        "sent {}",
        c.server.body_bytes_sent()
    );
}

fn dropped_connection_keeps_the_part_and_the_next_run_fetches_only_the_rest(n: u32) {
    let mut c = Case::on(n);
    c.opts.retries = 0;
    let cut = 300_000;
    c.server.set_faults(Faults {
        cut: Some(Times {
            after_bytes: cut,
            times: 1,
        }),
        ..Faults::default()
    });
    let e = c.run().unwrap_err();
    assert_eq!(e.kind(), FetchErrorKind::Network);
    let Partial::Kept { path, bytes: kept } = e.partial().clone() else {
        panic!("the part is kept: {e}");
    };
    assert_eq!(path, c.part_path());
    if c.parallel() {
        // The other ranges stopped wherever they were when the cut one gave up.
        assert!(kept >= cut && kept < SIZE as u64, "kept {kept}");
        assert!(c.sidecar_path().exists(), "the ranges are recorded");
    } else {
        assert_eq!(kept, cut);
    }
    let msg = e.to_string();
    assert!(
        msg.contains("kept for resumption") && msg.contains(&c.req.url),
        "{msg}"
    );
    c.assert_absent();

    c.server.reset_counters();
    let r = c.run().unwrap();
    c.assert_installed(&r);
    assert_eq!(r.resumed_from, kept);
    assert_eq!(r.bytes_downloaded, SIZE as u64 - kept);
    assert!(c.server.body_bytes_sent() <= SIZE as u64 - kept + MARGIN);
    if !c.parallel() {
        assert_eq!(
            c.server.requests()[0].range.as_deref(),
            Some(format!("bytes={cut}-").as_str())
        );
    }
}

fn server_ignoring_range_restarts_cleanly_from_zero(n: u32) {
    let c = Case::on(n);
    // Garbage in the part file: it must be truncated, not completed.
    c.leave_part(&vec![0xAA; 700_000]);
    c.server.set_faults(Faults {
        ignore_range: true,
        ..Faults::default()
    });
    let r = c.run().unwrap();
    c.assert_installed(&r);
    assert!(c.notes.contains("ignored the range request"));
    assert_eq!((r.resumed_from, r.bytes_downloaded), (0, SIZE as u64));
    let reqs = c.server.requests();
    if c.parallel() {
        // The range requests that found out, then the whole file on one stream.
        assert!(c.notes.contains("on one connection from zero"));
        assert!(reqs.len() >= 2 && reqs.len() <= 5, "{reqs:?}");
        assert!(reqs[..reqs.len() - 1].iter().all(|r| r.range.is_some()));
        assert_eq!(reqs.last().unwrap().range, None);
        assert_eq!(r.connections, 1);
    } else {
        assert_eq!(reqs.len(), 1);
        assert_eq!(c.server.body_bytes_sent(), SIZE as u64);
    }
}

fn mismatched_content_range_restarts_from_zero(n: u32) {
    let c = Case::on(n);
    c.leave_part(&c.data[..500_000]);
    c.server.set_faults(Faults {
        wrong_range_start: true,
        ..Faults::default()
    });
    let r = c.run().unwrap();
    c.assert_installed(&r);
    let reqs = c.server.requests();
    if c.parallel() {
        assert!(c.notes.contains("another range"));
        assert!(reqs.len() >= 2 && reqs.len() <= 5, "{reqs:?}");
        assert_eq!(reqs.last().unwrap().range, None);
        assert_eq!(r.resumed_from, 0);
    } else {
        assert_eq!(reqs.len(), 2);
        assert!(reqs[0].range.is_some() && reqs[1].range.is_none());
    }
}

fn server_error_then_success(n: u32) {
    let c = Case::on(n);
    c.server.set_faults(Faults {
        fail: Some(Fail {
            status: 500,
            times: 2,
            retry_after_s: None,
        }),
        ..Faults::default()
    });
    let r = c.run().unwrap();
    c.assert_installed(&r);
    assert_eq!(r.attempts, n + 2);
    assert_eq!(c.server.body_bytes_sent(), SIZE as u64);
    assert!(c.notes.contains("HTTP 500"));
}

#[test]
fn too_many_requests_waits_for_retry_after() {
    let c = Case::with_size(100_000);
    c.server.set_faults(Faults {
        fail: Some(Fail {
            status: 429,
            times: 1,
            retry_after_s: Some(1),
        }),
        ..Faults::default()
    });
    let mut opts = c.opts.clone();
    opts.retry_max = Duration::from_secs(5);
    let t = Instant::now();
    let r = fetch(&c.req, &opts, &c.notes).unwrap();
    c.assert_installed(&r);
    assert_eq!(r.attempts, 2);
    // The backoff base is 1 ms: only honouring Retry-After explains a wait of a second.
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "waited {:?}",
        t.elapsed()
    );
}

fn retries_are_bounded(n: u32) {
    let mut c = Case::on(n);
    c.opts.retries = 2;
    c.server.set_faults(Faults {
        fail: Some(Fail {
            status: 503,
            times: usize::MAX,
            retry_after_s: None,
        }),
        ..Faults::default()
    });
    let e = c.run().unwrap_err();
    assert_eq!(e.kind(), FetchErrorKind::Network);
    if c.parallel() {
        // The first range to run out stops the others, which may not have run out yet.
        let count = c.server.request_count();
        assert!((3..=12).contains(&count), "{count} requests");
    } else {
        assert_eq!(c.server.request_count(), 3);
    }
    assert_eq!(e.partial(), &Partial::None);
    assert!(!c.part_path().exists());
    assert!(!c.sidecar_path().exists());
    c.assert_absent();
}

fn not_found_is_not_retried(n: u32) {
    let mut c = Case::on(n);
    c.req.url = c.server.url("/missing.gguf");
    let e = c.run().unwrap_err();
    assert_eq!(e.kind(), FetchErrorKind::NotFound);
    assert!(e.to_string().contains("/missing.gguf"));
    // One request per connection at most: none of them is retried.
    assert!(c.server.request_count() >= 1 && c.server.request_count() <= n as usize);
    c.assert_absent();
    assert!(!c.part_path().exists());
    assert!(!c.sidecar_path().exists());
}

fn wrong_bytes_fail_the_checksum_and_delete_the_part(n: u32) {
    let c = Case::on(n);
    c.server.set_faults(Faults {
        corrupt: true,
        ..Faults::default()
    });
    let e = c.run().unwrap_err();
    assert_eq!(e.kind(), FetchErrorKind::ChecksumMismatch);
    let mut wrong = c.data.clone();
    wrong[SIZE / 2] ^= 0xff;
    let msg = e.to_string();
    assert!(
        msg.contains(&c.req.sha256) && msg.contains(&sha256_hex(&wrong)),
        "{msg}"
    );
    assert!(matches!(e.partial(), Partial::Deleted { .. }));
    assert!(!c.part_path().exists());
    assert!(!c.sidecar_path().exists());
    c.assert_absent();
}

fn a_corrupt_part_from_an_earlier_run_is_replaced(n: u32) {
    let c = Case::on(n);
    let mut bad = c.data[..900_000].to_vec();
    bad[10] ^= 1;
    c.leave_part(&bad);
    let r = c.run().unwrap();
    c.assert_installed(&r);
    assert!(c.notes.contains("again from zero"));
    assert_eq!(r.resumed_from, 0);
    // The resumed rest (on four ranges in the parallel mode), then the whole file once more.
    assert_eq!(r.attempts, 2 * n);
    assert_eq!(c.server.body_bytes_sent(), (SIZE - 900_000 + SIZE) as u64);
}

fn size_mismatch_is_refused_before_the_body(n: u32) {
    let mut c = Case::on(n);
    c.req.expected_size = Some(SIZE as u64 + 1);
    let e = c.run().unwrap_err();
    assert_eq!(e.kind(), FetchErrorKind::SizeMismatch);
    assert!(e.to_string().contains(&format!("{}", SIZE + 1)));
    assert!(!c.part_path().exists());
    assert!(!c.sidecar_path().exists());
    c.assert_absent();
}

fn a_stall_is_retried_and_resumed(n: u32) {
    let c = Case::on(n);
    c.server.set_faults(Faults {
        stall: Some(Times {
            after_bytes: 400_000,
            times: 1,
        }),
        ..Faults::default()
    });
    let r = c.run().unwrap();
    c.assert_installed(&r);
    assert_eq!(r.attempts, n + 1);
    assert!(c.notes.contains("no data for"));
    if c.parallel() {
        assert_eq!(c.resumed_requests(400_000), 1, "{:?}", c.server.requests());
    } else {
        assert_eq!(
            c.server.requests()[1].range.as_deref(),
            Some("bytes=400000-")
        );
    }
}

fn a_slow_but_steady_download_is_not_a_stall(n: u32) {
    let mut c = Case::with_size(2 << 20);
    c.opts.connections = n;
    c.opts.min_range_bytes = MIN_RANGE;
    c.opts.stall_timeout = Duration::from_millis(400);
    // 64 KiB every 20 ms on each connection: 0.16 s to 0.65 s in all, each range longer than
    // the stall timeout on one stream and close to it on four.
    c.server.set_faults(Faults {
        throttle: Some((64 << 10, Duration::from_millis(20))),
        ..Faults::default()
    });
    let r = c.run().unwrap();
    c.assert_installed(&r);
    assert_eq!((r.attempts, r.connections), (n, n));
}

fn a_server_that_never_answers_is_retried(n: u32) {
    let c = Case::on(n);
    c.server.set_faults(Faults {
        silent: 1,
        ..Faults::default()
    });
    let r = c.run().unwrap();
    c.assert_installed(&r);
    assert_eq!(r.attempts, n + 1);
    assert!(c.notes.contains("no response for"));
}

fn a_stall_past_the_retries_is_reported_as_stalled_and_keeps_the_part(n: u32) {
    let mut c = Case::on(n);
    c.opts.retries = 0;
    c.server.set_faults(Faults {
        stall: Some(Times {
            after_bytes: 200_000,
            times: 1,
        }),
        ..Faults::default()
    });
    let e = c.run().unwrap_err();
    assert_eq!(e.kind(), FetchErrorKind::Stalled);
    let Partial::Kept { path, bytes } = e.partial().clone() else {
        panic!("the part is kept: {e}");
    };
    assert_eq!(path, c.part_path());
    if c.parallel() {
        // The stalled range's 200000 bytes and what the other ranges got meanwhile.
        assert!(bytes >= 200_000 && bytes < SIZE as u64, "kept {bytes}");
        assert!(c.sidecar_path().exists());
    } else {
        assert_eq!(bytes, 200_000);
    }
    assert!(e.to_string().contains("kept for resumption"));
    c.assert_absent();
}

fn token_reaches_the_first_host_but_not_the_redirect_target(n: u32) {
    let c = Case::on(n);
    let origin = TestServer::start();
    origin.add_redirect(
        "/org/model/resolve/main/m.gguf",
        &c.server.localhost_url("/m.gguf?signature=s3cr3t"),
    );
    c.server
        .add_file("/m.gguf?signature=s3cr3t", c.data.clone());
    origin.require_bearer("hf_secret_value");
    // The CDN drops the first connection: the retry starts again at the origin.
    c.server.set_faults(Faults {
        cut: Some(Times {
            after_bytes: 100_000,
            times: 1,
        }),
        ..Faults::default()
    });
    let mut req = c.req.clone();
    req.url = origin.url("/org/model/resolve/main/m.gguf");
    req.gated = true;
    let mut opts = c.opts.clone();
    opts.token = Secret::new("hf_secret_value");
    let r = fetch(&req, &opts, &c.notes).unwrap();
    c.assert_installed(&r);
    let first = origin.requests();
    assert_eq!(first.len(), n as usize + 1);
    assert!(first
        .iter()
        .all(|r| r.authorization.as_deref() == Some("Bearer hf_secret_value")));
    let cdn = c.server.requests();
    assert_eq!(cdn.len(), n as usize + 1);
    assert!(cdn[0].host.as_deref().unwrap().starts_with("localhost:"));
    assert!(
        cdn.iter().all(|r| r.authorization.is_none()),
        "the token must not follow a redirect to another host"
    );
    if c.parallel() {
        assert_eq!(c.resumed_requests(100_000), 1, "{cdn:?}");
    } else {
        assert_eq!(cdn[1].range.as_deref(), Some("bytes=100000-"));
    }
    assert_eq!(
        r.source_url, req.url,
        "the report names the URL as requested"
    );
    let notes = c.notes.0.lock().unwrap().join("\n");
    assert!(notes.contains("connection lost"), "{notes}");
    assert!(
        !notes.contains("s3cr3t") && !notes.contains("hf_secret_value"),
        "{notes}"
    );
}

fn token_is_not_sent_for_a_file_that_is_not_gated(n: u32) {
    let c = Case::on(n);
    let mut opts = c.opts.clone();
    opts.token = Secret::new("hf_secret_value");
    let r = fetch(&c.req, &opts, &c.notes).unwrap();
    c.assert_installed(&r);
    let reqs = c.server.requests();
    assert_eq!(reqs.len(), n as usize);
    assert!(reqs.iter().all(|r| r.authorization.is_none()));
}

fn gated_without_access_says_how_to_get_it(n: u32) {
    let c = Case::on(n);
    c.server.require_bearer("right");
    let mut req = c.req.clone();
    req.gated = true;
    req.hf = Some(HfFile {
        endpoint: c.server.url(""),
        repo: "org/gated".into(),
        revision: "main".into(),
        path: "m.gguf".into(),
    });
    for token in [None, Secret::new("wrong_token_value")] {
        let mut opts = c.opts.clone();
        opts.token = token.clone();
        let e = fetch(&req, &opts, &c.notes).unwrap_err();
        assert_eq!(e.kind(), FetchErrorKind::Unauthorized);
        let text = format!("{e} {e:?} {}", e.hint().unwrap());
        assert!(
            text.contains("licence") && text.contains("/org/gated"),
            "{text}"
        );
        assert!(token.is_some() || text.contains("HF_TOKEN"), "{text}");
        assert!(
            !text.contains("wrong_token_value"),
            "the token is never shown: {text}"
        );
        c.assert_absent();
        assert!(!c.part_path().exists() && !c.sidecar_path().exists());
    }
    // 401 is not retried: at most one request per connection and token.
    let count = c.server.requests().len();
    assert!(count >= 2 && count <= 2 * n as usize, "{count} requests");
}

fn a_complete_part_is_verified_and_renamed_without_a_request(n: u32) {
    let c = Case::on(n);
    c.leave_part(&c.data);
    let r = c.run().unwrap();
    c.assert_installed(&r);
    assert_eq!(
        (r.attempts, r.bytes_downloaded, r.resumed_from),
        (0, 0, SIZE as u64)
    );
    assert_eq!(c.server.request_count(), 0);
}

fn a_complete_part_of_unknown_size_is_finished_without_a_body(n: u32) {
    let mut c = Case::on(n);
    c.req.expected_size = None;
    c.leave_part(&c.data);
    let r = c.run().unwrap();
    c.assert_installed(&r);
    let reqs = c.server.requests();
    assert_eq!(reqs.len(), 1);
    if c.parallel() {
        // Asking for the first byte tells the size, which the part already has.
        assert_eq!(reqs[0].range.as_deref(), Some("bytes=0-0"));
        assert_eq!(c.server.body_bytes_sent(), 1);
    } else {
        // The server's 416 says the part holds every byte.
        assert_eq!(
            reqs[0].range.as_deref(),
            Some(format!("bytes={SIZE}-").as_str())
        );
        assert_eq!(c.server.body_bytes_sent(), 0);
    }
}

#[test]
fn a_file_already_in_place_is_not_downloaded_again() {
    let c = Case::new();
    std::fs::create_dir_all(&c.opts.dest_dir).unwrap();
    std::fs::write(c.final_path(), &c.data).unwrap();
    let r = c.run().unwrap();
    assert_eq!(r.obtained, Obtained::AlreadyPresent);
    assert_eq!((r.bytes_downloaded, r.attempts), (0, 0));
    assert_eq!(c.server.request_count(), 0);
}

#[test]
fn a_wrong_file_in_place_is_replaced() {
    let c = Case::new();
    std::fs::create_dir_all(&c.opts.dest_dir).unwrap();
    std::fs::write(c.final_path(), content(SIZE, 99)).unwrap();
    let r = c.run().unwrap();
    c.assert_installed(&r);
    assert_eq!(r.obtained, Obtained::Downloaded);
}

/// Lay out a hub cache the way huggingface_hub does: the snapshot file is a symlink to a blob.
fn hub_with(dir: &std::path::Path, commit: &str, file: &str, bytes: &[u8]) -> PathBuf {
    let hub = dir.join("hub");
    let repo = hub.join("models--org--model");
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::create_dir_all(repo.join("snapshots").join(commit)).unwrap();
    let blob = repo.join("blobs").join(sha256_hex(bytes));
    std::fs::write(&blob, bytes).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    std::os::unix::fs::symlink(&blob, repo.join("snapshots").join(commit).join(file)).unwrap();
    hub
}

fn hf_case(c: &Case) -> FetchRequest {
    let file = HfFile {
        endpoint: c.server.url(""),
        repo: "org/model".into(),
        revision: "main".into(),
        path: "m.gguf".into(),
    };
    let req = FetchRequest::hugging_face(file, &c.req.sha256, Some(SIZE as u64), false);
    assert_eq!(req.url, c.server.url("/org/model/resolve/main/m.gguf"));
    req
}

#[test]
fn a_verified_copy_in_the_hf_cache_is_used_instead_of_downloading() {
    let c = Case::new();
    let hub = hub_with(c.dir.path(), "abc123", "m.gguf", &c.data);
    let mut opts = c.opts.clone();
    opts.hf_cache_dir = Some(hub);
    let r = fetch(&hf_case(&c), &opts, &c.notes).unwrap();
    c.assert_installed(&r);
    assert_eq!(r.obtained, Obtained::HfCache);
    assert_eq!(c.server.request_count(), 0);
}

#[test]
fn a_wrong_copy_in_the_hf_cache_is_ignored() {
    let c = Case::new();
    c.server
        .add_file("/org/model/resolve/main/m.gguf", c.data.clone());
    let hub = hub_with(c.dir.path(), "abc123", "m.gguf", &content(SIZE, 3));
    let mut opts = c.opts.clone();
    opts.hf_cache_dir = Some(hub.clone());
    let r = fetch(&hf_case(&c), &opts, &c.notes).unwrap();
    c.assert_installed(&r);
    assert_eq!(r.obtained, Obtained::Downloaded);
    assert!(c.notes.contains("not using it"));
    // The cache itself is left alone.
    let blob = hub
        .join("models--org--model/blobs")
        .join(sha256_hex(&content(SIZE, 3)));
    assert_eq!(std::fs::read(blob).unwrap(), content(SIZE, 3));
}

#[test]
fn not_enough_disk_is_refused_before_any_request() {
    let mut c = Case::new();
    c.req.expected_size = Some(1 << 60);
    let e = c.run().unwrap_err();
    assert_eq!(e.kind(), FetchErrorKind::DiskFull);
    let msg = e.to_string();
    assert!(
        msg.contains(&c.opts.dest_dir.display().to_string()) && msg.contains("short"),
        "{msg}"
    );
    assert_eq!(c.server.request_count(), 0);
}

#[test]
fn bad_file_names_are_refused_before_any_request() {
    let c = Case::new();
    for name in [
        "../m.gguf",
        "a/m.gguf",
        "a\\m.gguf",
        "..",
        "",
        "/tmp/m.gguf",
    ] {
        let mut req = c.req.clone();
        req.filename = name.into();
        let e = fetch(&req, &c.opts, &c.notes).unwrap_err();
        assert_eq!(e.kind(), FetchErrorKind::BadFilename, "{name:?}");
    }
    assert_eq!(c.server.request_count(), 0);
    assert!(!c.opts.dest_dir.exists(), "nothing was created");
}

#[test]
fn a_second_fetch_of_the_same_file_is_locked_out() {
    let c = Case::new();
    std::fs::create_dir_all(&c.opts.dest_dir).unwrap();
    let lock = std::fs::File::create(c.opts.dest_dir.join("m.gguf.lock")).unwrap();
    lock.try_lock().unwrap();
    let e = c.run().unwrap_err();
    assert_eq!(e.kind(), FetchErrorKind::Locked);
    assert!(e.to_string().contains("m.gguf.lock"));
    assert_eq!(c.server.request_count(), 0);
    drop(lock);
    let r = c.run().unwrap();
    c.assert_installed(&r);
}

/// The record of ranges the parallel mode keeps next to the part file: `done` bytes from the
/// start of each range of `Case::range_starts` are on disk.
fn write_record(c: &Case, sha256: &str, done: [u64; 4]) {
    let s = c.range_starts();
    let ends = [s[1], s[2], s[3], SIZE as u64];
    let mut text = format!("minerva-setup ranges 1\nsize {SIZE}\nsha256 {sha256}\n");
    for i in 0..4 {
        text.push_str(&format!("range {} {} {}\n", s[i], ends[i], done[i]));
    }
    std::fs::write(c.sidecar_path(), text).unwrap();
}

#[test]
fn a_small_file_is_one_stream_even_with_several_connections() {
    let mut c = Case::new();
    // The default shortest range (8 MiB) is longer than the file.
    c.opts.connections = 4;
    let r = c.run().unwrap();
    c.assert_installed(&r);
    assert_eq!((r.connections, r.attempts), (1, 1));
    assert_eq!(c.server.requests()[0].range, None);
}

#[test]
fn an_unknown_size_is_learnt_from_the_server_and_split() {
    let mut c = Case::on(4);
    c.req.expected_size = None;
    let r = c.run().unwrap();
    c.assert_installed(&r);
    assert_eq!((r.connections, r.attempts), (4, 5));
    assert_eq!(c.server.requests()[0].range.as_deref(), Some("bytes=0-0"));
    assert_eq!(c.server.body_bytes_sent(), SIZE as u64 + 1);
    assert_eq!(r.bytes_downloaded, SIZE as u64);
}

#[test]
fn a_one_stream_part_is_continued_on_ranges() {
    let c = Case::on(4);
    c.leave_part(&c.data[..1_000_000]);
    let r = c.run().unwrap();
    c.assert_installed(&r);
    assert_eq!(r.resumed_from, 1_000_000);
    assert_eq!(r.bytes_downloaded, (SIZE - 1_000_000) as u64);
    assert_eq!(c.server.body_bytes_sent(), (SIZE - 1_000_000) as u64);
    assert!(c.requested_starts().iter().all(|&a| a >= 1_000_000));
    assert_eq!(r.connections, 4);
}

#[test]
fn a_record_of_ranges_is_resumed_exactly() {
    let c = Case::on(4);
    let s = c.range_starts();
    // Bytes beyond what the record claims are garbage: they must be fetched again.
    let mut part = c.data.clone();
    for b in &mut part[s[1] as usize..] {
        *b = 0;
    }
    part[s[2] as usize..s[2] as usize + 100_000]
        .copy_from_slice(&c.data[s[2] as usize..][..100_000]);
    c.leave_part(&part);
    write_record(&c, &c.req.sha256, [s[1], 0, 100_000, 0]);
    let r = c.run().unwrap();
    c.assert_installed(&r);
    let kept = s[1] + 100_000;
    assert_eq!(r.resumed_from, kept);
    assert_eq!(r.bytes_downloaded, SIZE as u64 - kept);
    assert_eq!(c.server.body_bytes_sent(), SIZE as u64 - kept);
    let mut starts = c.requested_starts();
    starts.sort();
    assert_eq!(starts, [s[1], s[2] + 100_000, s[3]]);
    assert_eq!(r.connections, 3);
    assert!(c.notes.contains("in 4 ranges"));
}

#[test]
fn a_recorded_download_resumes_on_one_connection() {
    let mut c = Case::on(4);
    c.opts.retries = 0;
    c.server.set_faults(Faults {
        cut: Some(Times {
            after_bytes: 300_000,
            times: 1,
        }),
        ..Faults::default()
    });
    let e = c.run().unwrap_err();
    let Partial::Kept { bytes: kept, .. } = e.partial().clone() else {
        panic!("the part is kept: {e}");
    };
    c.server.reset_counters();
    c.opts.connections = 1;
    let r = c.run().unwrap();
    c.assert_installed(&r);
    assert_eq!(r.resumed_from, kept);
    assert_eq!(c.server.body_bytes_sent(), SIZE as u64 - kept);
    assert_eq!(r.connections, 1);
    assert!(c.server.requests().iter().all(|r| r.range.is_some()));
}

#[test]
fn a_record_that_does_not_match_is_discarded() {
    let c = Case::on(4);
    let other = sha256_hex(b"another file");
    for (record, why) in [
        (Some(other.as_str()), "another sha256"),
        (None, "not a record"),
    ] {
        // Even a part that holds the right bytes is not trusted under a record that is wrong.
        c.leave_part(&c.data);
        match record {
            Some(sha) => write_record(&c, sha, [1000, 1000, 1000, 1000]),
            None => std::fs::write(c.sidecar_path(), "garbage").unwrap(),
        }
        c.server.reset_counters();
        let r = c.run().unwrap();
        c.assert_installed(&r);
        assert!(c.notes.contains(why), "{why}");
        assert_eq!(r.resumed_from, 0);
        assert_eq!(c.server.body_bytes_sent(), SIZE as u64);
        std::fs::remove_file(c.final_path()).unwrap();
    }
}

#[test]
fn bytes_a_record_wrongly_claims_are_caught_by_the_checksum() {
    let c = Case::on(4);
    let s = c.range_starts();
    let mut part = c.data.clone();
    part[10] ^= 1;
    c.leave_part(&part);
    write_record(&c, &c.req.sha256, [s[1], 0, 0, 0]);
    let r = c.run().unwrap();
    c.assert_installed(&r);
    assert!(c.notes.contains("again from zero"));
    assert_eq!(r.resumed_from, 0);
    assert_eq!(c.server.body_bytes_sent(), SIZE as u64 - s[1] + SIZE as u64);
}

//! `minerva-setup download` as a user runs it: exit codes, output, the token kept secret, and a
//! download killed with SIGKILL that the next run resumes.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::http_server::{Faults, TestServer};
use support::{content, sha256_hex, stderr, stdout, TestCtx};

/// `download ARGS` in `ctx`: fast retries, a short stall timeout, no terminal.
fn download(ctx: &TestCtx, args: &[&str]) -> Command {
    let mut c = ctx.command();
    c.arg("download")
        .args(args)
        .env("MINERVA_RETRY_BASE_MS", "1")
        .env("MINERVA_STALL_TIMEOUT_S", "2");
    c
}

fn run(ctx: &TestCtx, args: &[&str]) -> Output {
    download(ctx, args).output().unwrap()
}

fn len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

#[test]
fn killed_download_resumes_from_the_part_file() {
    let size = 4 << 20;
    let data = content(size, 1);
    let server = TestServer::start();
    server.add_file("/m.gguf", data.clone());
    // Slow enough that the kill lands mid-body: 64 KiB every 20 ms, about 1.3 s for the file.
    server.set_faults(Faults {
        throttle: Some((64 << 10, Duration::from_millis(20))),
        ..Faults::default()
    });
    let ctx = TestCtx::new();
    let sha = sha256_hex(&data);
    let url = server.url("/m.gguf");
    let args = [
        "--url",
        url.as_str(),
        "--sha256",
        sha.as_str(),
        "--size",
        &size.to_string(),
    ];
    let part = ctx.models_dir().join("m.gguf.part");

    let mut child = download(&ctx, &args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while len(&part) < 256 << 10 {
        assert!(
            Instant::now() < deadline,
            "the first run never wrote to {}",
            part.display()
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the first run ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let kept = len(&part);
    assert!(kept > 0 && kept < size as u64, "kept {kept} bytes");
    assert!(!ctx.models_dir().join("m.gguf").exists());

    server.set_faults(Faults::default());
    server.reset_counters();
    let out = run(&ctx, &[&args[..], &["--json"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(ctx.models_dir().join("m.gguf")).unwrap(),
        data
    );
    assert!(!part.exists());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["resumed_from"], kept);
    assert_eq!(report["obtained"], "downloaded");
    assert_eq!(
        server.requests()[0].range.as_deref(),
        Some(format!("bytes={kept}-").as_str())
    );
    assert!(
        server.body_bytes_sent() <= size as u64 - kept,
        "sent {} for {} missing",
        server.body_bytes_sent(),
        size as u64 - kept
    );
}

/// The recorded bytes of a `.part.ranges` record (the last number of each `range` line).
fn recorded_bytes(record: &Path) -> u64 {
    std::fs::read_to_string(record)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("range "))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn killed_parallel_download_fetches_only_the_missing_ranges() {
    let size = 4 << 20;
    let data = content(size, 2);
    let server = TestServer::start();
    server.add_file("/m.gguf", data.clone());
    // 16 KiB every 40 ms per connection: each 1 MiB range takes about 2.6 s, longer than the
    // one second between records.
    server.set_faults(Faults {
        throttle: Some((16 << 10, Duration::from_millis(40))),
        ..Faults::default()
    });
    let ctx = TestCtx::new();
    let sha = sha256_hex(&data);
    let url = server.url("/m.gguf");
    let size_arg = size.to_string();
    let args = [
        "--url",
        url.as_str(),
        "--sha256",
        sha.as_str(),
        "--size",
        size_arg.as_str(),
        "--connections",
        "4",
    ];
    let record = ctx.models_dir().join("m.gguf.part.ranges");
    let part = ctx.models_dir().join("m.gguf.part");

    let mut child = download(&ctx, &args)
        .env("MINERVA_MIN_RANGE_BYTES", (1 << 20).to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while recorded_bytes(&record) == 0 {
        assert!(
            Instant::now() < deadline,
            "the first run never recorded progress in {}",
            record.display()
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the first run ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let kept = recorded_bytes(&record);
    assert!(kept > 0 && kept < size as u64, "recorded {kept} bytes");
    assert_eq!(len(&part), size as u64, "the part file has the file's size");
    assert!(!ctx.models_dir().join("m.gguf").exists());

    server.set_faults(Faults::default());
    server.reset_counters();
    let out = download(&ctx, &[&args[..], &["--json"]].concat())
        .env("MINERVA_MIN_RANGE_BYTES", (1 << 20).to_string())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(ctx.models_dir().join("m.gguf")).unwrap(),
        data
    );
    assert!(!part.exists() && !record.exists());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["resumed_from"], kept);
    assert_eq!(report["bytes_downloaded"], size as u64 - kept);
    assert_eq!(report["connections"], 4);
    assert_eq!(
        server.body_bytes_sent(),
        size as u64 - kept,
        "the second run fetched exactly the bytes the record did not claim"
    );
    assert!(server.requests().iter().all(|r| r.range.is_some()));
}

#[test]
fn connections_out_of_range_exit_2_naming_the_flag_and_the_variable() {
    let server = TestServer::start();
    server.add_file("/m.gguf", content(1000, 1));
    let ctx = TestCtx::new();
    let sha = sha256_hex(&content(1000, 1));
    let url = server.url("/m.gguf");
    for bad in ["0", "65", "many"] {
        let out = run(
            &ctx,
            &["--url", &url, "--sha256", &sha, "--connections", bad],
        );
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("--connections") && err.contains("MINERVA_CONNECTIONS"),
            "{err}"
        );
        let out = download(&ctx, &["--url", &url, "--sha256", &sha])
            .env("MINERVA_CONNECTIONS", bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("MINERVA_CONNECTIONS"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(server.request_count(), 0);
    assert!(!ctx.models_dir().join("m.gguf.part").exists());
    // One connection is today's single stream.
    let out = run(
        &ctx,
        &[
            "--url",
            &url,
            "--sha256",
            &sha,
            "--connections",
            "1",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["connections"], 1);
    assert_eq!(server.requests()[0].range, None);
}

#[test]
fn bad_file_names_exit_7_before_any_request() {
    let server = TestServer::start();
    server.add_file("/m.gguf", content(1000, 1));
    let ctx = TestCtx::new();
    let sha = sha256_hex(&content(1000, 1));
    let url = server.url("/m.gguf");
    for name in ["../evil.gguf", "sub/evil.gguf", "..", "/tmp/evil.gguf"] {
        let out = run(&ctx, &["--url", &url, "--sha256", &sha, "--filename", name]);
        assert_eq!(out.status.code(), Some(7), "{name}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("refusing file name"),
            "{}",
            stderr(&out)
        );
    }
    let out = run(
        &ctx,
        &[
            "--repo",
            "org/model",
            "--file",
            "../../etc/passwd",
            "--sha256",
            &sha,
            "--mirror",
            &server.url(""),
        ],
    );
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let out = run(&ctx, &["--url", &url, "--sha256", "not-a-hash"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(server.request_count(), 0);
}

#[test]
fn a_held_lock_exits_6() {
    let server = TestServer::start();
    server.add_file("/m.gguf", content(1000, 1));
    let ctx = TestCtx::new();
    std::fs::create_dir_all(ctx.models_dir()).unwrap();
    let lock = std::fs::File::create(ctx.models_dir().join("m.gguf.lock")).unwrap();
    lock.try_lock().unwrap();
    let out = run(
        &ctx,
        &[
            "--url",
            &server.url("/m.gguf"),
            "--sha256",
            &sha256_hex(&content(1000, 1)),
        ],
    );
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("another process"));
    assert_eq!(server.request_count(), 0);
}

#[test]
fn failures_exit_4_with_a_json_error_document() {
    let server = TestServer::start();
    let ctx = TestCtx::new();
    let out = run(
        &ctx,
        &[
            "--url",
            &server.url("/missing.gguf"),
            "--sha256",
            &"0".repeat(64),
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(4));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["exit_code"], 4);
    assert!(doc["error"].as_str().unwrap().contains("HTTP 404"));
}

#[test]
fn hugging_face_scheme_with_mirror_and_human_report() {
    let data = content(300_000, 1);
    let server = TestServer::start();
    server.add_file("/org/model/resolve/v1.0/sub/m.gguf", data.clone());
    let ctx = TestCtx::new();
    let sha = sha256_hex(&data);
    let out = download(
        &ctx,
        &[
            "--repo",
            "org/model",
            "--file",
            "sub/m.gguf",
            "--revision",
            "v1.0",
            "--sha256",
            &sha,
        ],
    )
    .env("HF_ENDPOINT", server.url(""))
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(ctx.models_dir().join("m.gguf")).unwrap(),
        data
    );
    let human = stdout(&out);
    assert!(
        human.contains(&sha) && human.contains("downloaded 300000 bytes"),
        "{human}"
    );
    // Not a terminal: plain progress lines on stderr, nothing else on stdout.
    assert!(
        stderr(&out).contains("downloading m.gguf"),
        "{}",
        stderr(&out)
    );

    // Again: already present, nothing requested.
    server.reset_counters();
    let out = run(
        &ctx,
        &[
            "--repo",
            "org/model",
            "--file",
            "sub/m.gguf",
            "--mirror",
            &server.url(""),
            "--sha256",
            &sha,
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["obtained"], "already-present");
    assert_eq!(server.request_count(), 0);
    assert!(
        stderr(&out).is_empty(),
        "--json prints nothing else: {}",
        stderr(&out)
    );
}

#[test]
fn the_token_is_sent_for_gated_files_and_never_printed() {
    let data = content(50_000, 1);
    let server = TestServer::start();
    server.add_file("/org/gated/resolve/main/m.gguf", data.clone());
    server.require_bearer("hf_right_token");
    let ctx = TestCtx::new();
    let sha = sha256_hex(&data);
    let args = [
        "--repo",
        "org/gated",
        "--file",
        "m.gguf",
        "--mirror",
        &server.url(""),
        "--sha256",
        &sha,
        "--gated",
    ];

    let out = download(&ctx, &args)
        .env("HF_TOKEN", "hf_wrong_token")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let all = stderr(&out) + &stdout(&out);
    assert!(
        all.contains("licence") && all.contains(&format!("{}/org/gated", server.url(""))),
        "{all}"
    );
    assert!(!all.contains("hf_wrong_token"), "{all}");

    // The token file Hugging Face's tools write is read too.
    let home = ctx.hf_home();
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("token"), "hf_right_token\n").unwrap();
    let out = download(&ctx, &args).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!(stderr(&out) + &stdout(&out)).contains("hf_right_token"));
    assert_eq!(
        server.requests().last().unwrap().authorization.as_deref(),
        Some("Bearer hf_right_token")
    );
}

/// A registry directory: the shipped files, plus `zz-custom.json` holding a copy of the TinyLlama
/// entry as `custom-tiny` with `field` set to `value`.
fn registry_with(field: &str, value: &str) -> tempfile::TempDir {
    use minerva_setup::registry::EMBEDDED_REGISTRY_FILES;
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in EMBEDDED_REGISTRY_FILES {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let tiny = EMBEDDED_REGISTRY_FILES
        .iter()
        .find(|(n, _)| *n == "tinyllama.json")
        .unwrap()
        .1;
    let mut family: serde_json::Value = serde_json::from_str(tiny).unwrap();
    family["files"][0]["id"] = "custom-tiny".into();
    family["files"][0][field] = value.into();
    std::fs::write(dir.path().join("zz-custom.json"), family.to_string()).unwrap();
    dir
}

/// Values that one of the old rules took and another refused: an upper-case sha256 (the registry
/// refused it, `download` lowered it), a file not ending in `.gguf` or hidden behind a leading `.`
/// and a `./` repository (the registry refused them, `download --file` / `--repo` took them). The
/// registry and `download` now refuse each alike, the registry naming file, entry and field and
/// `download` the flag, both saying what is wrong.
#[test]
fn the_registry_and_download_refuse_the_same_values() {
    let data = content(1000, 1);
    let sha = sha256_hex(&data);
    let upper = sha.to_ascii_uppercase();
    let server = TestServer::start();
    server.add_file("/org/model/resolve/main/m.gguf", data);
    let ctx = TestCtx::new();
    let mirror = server.url("");
    // (registry field, value, the download flag, its exit code, what both messages say)
    let cases = [
        (
            "sha256",
            upper.as_str(),
            "--sha256",
            7,
            "upper-case hex digits",
        ),
        (
            "filename",
            "model.bin",
            "--file",
            7,
            "does not end in `.gguf`",
        ),
        ("filename", ".m.gguf", "--file", 7, "starting with `.`"),
        (
            "repo",
            "./model",
            "--repo",
            2,
            "starts or ends with `-` or `.`",
        ),
    ];
    for (field, value, flag, code, says) in cases {
        let dir = registry_with(field, value);
        let out = download(&ctx, &["custom-tiny"])
            .env("MINERVA_REGISTRY", dir.path())
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(7),
            "registry {field} {value:?}: {err}"
        );
        for needle in [
            "zz-custom.json",
            "`custom-tiny`",
            &format!("field `{field}`"),
            says,
        ] {
            assert!(
                err.contains(needle),
                "registry {field} {value:?}: `{needle}` not in {err}"
            );
        }

        let mut args = [
            ("--repo", "org/model"),
            ("--file", "m.gguf"),
            ("--sha256", sha.as_str()),
            ("--mirror", mirror.as_str()),
        ];
        args.iter_mut().find(|(f, _)| *f == flag).unwrap().1 = value;
        let args: Vec<&str> = args.iter().flat_map(|(f, v)| [*f, *v]).collect();
        let out = run(&ctx, &args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{flag} {value:?}: {err}");
        for needle in [&format!("refusing {flag}"), says, "hint:"] {
            assert!(
                err.contains(needle),
                "{flag} {value:?}: `{needle}` not in {err}"
            );
        }
    }
    assert_eq!(server.request_count(), 0);
    assert!(!ctx.models_dir().join("m.gguf").exists());
}

/// A mirror that is not an http(s) base URL is refused before anything is requested, naming the
/// setting it came from; a trailing `/` is fine.
#[test]
fn a_bad_endpoint_is_refused_naming_its_setting() {
    let data = content(1000, 1);
    let sha = sha256_hex(&data);
    let server = TestServer::start();
    server.add_file("/org/model/resolve/main/m.gguf", data);
    let ctx = TestCtx::new();
    let args = |mirror: Option<&str>| {
        let mut a = vec!["--repo", "org/model", "--file", "m.gguf", "--sha256", &sha];
        if let Some(m) = mirror {
            a.extend(["--mirror", m]);
        }
        download(&ctx, &a)
    };
    let query = server.url("/?token=x");
    for (mut cmd, setting, says) in [
        (
            args(Some("ftp://mirror.example")),
            "--mirror",
            "not http or https",
        ),
        (args(Some(query.as_str())), "--mirror", "query"),
        (args(None), "HF_ENDPOINT", "not a URL"),
    ] {
        let out = cmd.env("HF_ENDPOINT", "mirror.example").output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(setting) && err.contains(says), "{err}");
    }
    assert_eq!(server.request_count(), 0);
    let with_slash = server.url("/");
    let out = args(Some(&with_slash)).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

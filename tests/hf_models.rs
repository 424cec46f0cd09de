//! Models named `hf:ORG/REPO/PATH.gguf` or `hf:ORG/REPO:QUANT`, served by a loopback server in
//! Hugging Face's URL scheme (resolve URL redirecting to a "CDN" path, `X-Linked-Etag` /
//! `X-Linked-Size` / `X-Repo-Commit` on the redirect, the tree API for listings): predicted from
//! a header read with range requests, planned, downloaded and installed.

mod support;

use std::path::{Path, PathBuf};

use minerva_setup::gguf::writer::{expected_file_bytes, header_bytes, ModelSpec, WeightLayout};
use minerva_setup::gguf::{FileType, ModelShape};
use serde_json::{json, Value};
use support::world::{llama_turn, Promises, World};
use support::{exits, json, ok, stderr};

const BIG_REPO: &str = "big-org/Big-GGUF";
const BIG_FILE: &str = "big-Q8_0.gguf";
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// A 1024-wide, 14-layer model with a 32k vocabulary in Q8_0: about 240 MB. Only the header is
/// written; the data is a hole (the file is sparse), which no header reader can tell.
fn big_spec() -> ModelSpec {
    let shape = ModelShape {
        architecture: "llama".into(),
        n_layers: 14,
        n_embd: 1024,
        n_ff: 2816,
        n_heads: 16,
        n_kv_heads: 4,
        head_dim: 64,
        vocab_size: 32000,
        context_length: 4096,
        tied_embeddings: false,
    };
    let mut s = ModelSpec::new(shape, WeightLayout::FileType(FileType::Q8_0));
    s.name = "big".into();
    s
}

fn write_sparse(path: &Path, spec: &ModelSpec) -> u64 {
    let size = expected_file_bytes(spec);
    std::fs::write(path, header_bytes(spec)).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(size)
        .unwrap();
    size
}

/// Publish `file` as `repo/path` the way Hugging Face does: the resolve URL (at `main` and at
/// `COMMIT`) redirects to a CDN path and carries the identity headers.
fn publish(w: &World, repo: &str, path: &str, file: &Path, sha256: &str, commit: bool) {
    let size = std::fs::metadata(file).unwrap().len().to_string();
    let cdn = format!("/cdn/{repo}/{path}");
    w.server.add_disk_file(&cdn, file.to_path_buf());
    let etag = format!("\"{sha256}\"");
    let mut headers = vec![
        ("X-Linked-Etag", etag.as_str()),
        ("X-Linked-Size", size.as_str()),
    ];
    if commit {
        headers.push(("X-Repo-Commit", COMMIT));
    }
    for rev in ["main", COMMIT] {
        let resolve = format!("/{repo}/resolve/{rev}/{path}");
        w.server.add_redirect(&resolve, &w.server.url(&cdn));
        w.server.add_headers(&resolve, &headers);
    }
}

fn big_world() -> (World, PathBuf, u64, PathBuf) {
    let w = World::new(Promises::relaxed(1000.0));
    let file = w.path("publish/big-Q8_0.gguf");
    let size = write_sparse(&file, &big_spec());
    publish(&w, BIG_REPO, BIG_FILE, &file, &"ab".repeat(32), true);
    let hw = w.profile_with_bench("hw", 20.0, 8);
    (w, file, size, hw)
}

fn without_model(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("model");
    v
}

#[test]
fn predict_from_the_remote_header_equals_predict_of_the_file_and_reads_under_5_percent() {
    let (w, file, size, hw) = big_world();
    assert!(size > 230_000_000, "the test file has {size} bytes");
    let hw = hw.to_str().unwrap();
    let local = json(&w.run(&[
        "--hardware",
        hw,
        "--json",
        "predict",
        file.to_str().unwrap(),
    ]));

    w.server.reset_counters();
    let spec = format!("hf:{BIG_REPO}/{BIG_FILE}");
    let out = w.run(&["--hardware", hw, "--json", "predict", &spec]);
    let remote = json(&out);
    let read = w.server.body_bytes_sent();
    eprintln!("header of a {size}-byte file: {read} bytes read");
    assert!(read > 0, "nothing was read");
    assert!(
        (read as f64) < 0.05 * size as f64,
        "read {read} of {size} bytes for the header"
    );
    assert!(
        w.server
            .requests()
            .iter()
            .filter(|r| r.method == "GET")
            .all(|r| r.range.is_some()),
        "every GET is a range request: {:?}",
        w.server.requests()
    );
    assert_eq!(remote["model"], json!(spec));
    assert_eq!(without_model(remote.clone()), without_model(local));

    // The same file again: the header comes from the cache, keyed by its ETag.
    w.server.reset_counters();
    let again = w.run(&["--hardware", hw, "--json", "predict", &spec]);
    assert_eq!(json(&again), remote);
    assert_eq!(w.server.body_bytes_sent(), 0);
}

#[test]
fn a_quantisation_label_picks_the_repositorys_file_or_lists_the_candidates() {
    let (w, _file, size, hw) = big_world();
    let hw = hw.to_str().unwrap();
    let entry = |path: &str| {
        json!({"type": "file", "path": path, "size": 134, "oid": "0".repeat(40),
               "lfs": {"oid": "ab".repeat(32), "size": size, "pointerSize": 134}})
    };
    let listing = json!([
        entry(BIG_FILE),
        entry("big-Q4_K_M.gguf"),
        entry("big-Q4_K_S.gguf"),
        entry("sub/big-Q4_K_S.gguf"),
        {"type": "file", "path": "README.md", "size": 10, "oid": "1".repeat(40)},
        {"type": "directory", "path": "sub", "size": 0, "oid": "2".repeat(40)}
    ]);
    w.server.add_file(
        &format!("/api/models/{BIG_REPO}/tree/main?recursive=true"),
        serde_json::to_vec(&listing).unwrap(),
    );

    let p = json(&w.run(&[
        "--hardware",
        hw,
        "--json",
        "predict",
        &format!("hf:{BIG_REPO}:q8_0"),
    ]));
    assert_eq!(p["model"], json!(format!("hf:{BIG_REPO}/{BIG_FILE}")));

    let none = w.run(&[
        "--hardware",
        hw,
        "predict",
        &format!("hf:{BIG_REPO}:Q5_K_M"),
    ]);
    exits(&none, 2);
    let e = stderr(&none);
    assert!(
        e.contains("no GGUF file for `Q5_K_M`") && e.contains("big-Q4_K_M.gguf"),
        "{e}"
    );

    let many = w.run(&[
        "--hardware",
        hw,
        "predict",
        &format!("hf:{BIG_REPO}:Q4_K_S"),
    ]);
    exits(&many, 2);
    let e = stderr(&many);
    assert!(
        e.contains("big-Q4_K_S.gguf, sub/big-Q4_K_S.gguf") && e.contains("name one"),
        "{e}"
    );
}

#[test]
fn bad_names_and_missing_files_are_refused_with_what_to_do() {
    let (w, _file, _size, hw) = big_world();
    let hw = hw.to_str().unwrap();
    for (spec, needle) in [
        ("hf:big-org/Big-GGUF", "names no file"),
        ("hf:big-org/Big-GGUF/m.bin", ".gguf"),
        ("hf:big-org/Big-GGUF/x/../m.gguf", ".."),
    ] {
        let out = w.run(&["--hardware", hw, "predict", spec]);
        exits(&out, 2);
        assert!(stderr(&out).contains(needle), "{spec}: {}", stderr(&out));
    }
    w.server.reset_counters();
    let missing = w.run(&["--hardware", hw, "predict", "hf:big-org/Big-GGUF/nope.gguf"]);
    exits(&missing, 2);
    assert!(
        stderr(&missing).contains("HTTP 404"),
        "{}",
        stderr(&missing)
    );
    assert_eq!(w.server.request_count(), 1, "a 404 is not retried");
    let rev = w.run(&["--hardware", hw, "predict", "--revision", "v1", &w.small.id]);
    exits(&rev, 2);
    assert!(stderr(&rev).contains("--revision applies to an `hf:` model"));
}

#[test]
fn a_hostile_header_is_refused_after_reading_its_first_range() {
    let w = World::new(Promises::relaxed(1000.0));
    // A valid start whose first metadata key claims to be 2^40 bytes long, in a file that
    // claims 2 TiB.
    let mut bytes = header_bytes(&big_spec());
    bytes[24..32].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let file = w.path("publish/hostile.gguf");
    std::fs::write(&file, &bytes).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(2 << 40)
        .unwrap();
    publish(&w, BIG_REPO, "hostile.gguf", &file, &"cd".repeat(32), false);
    w.server.reset_counters();
    let out = w.run(&["predict", &format!("hf:{BIG_REPO}/hostile.gguf")]);
    exits(&out, 7);
    assert!(stderr(&out).contains("metadata key #0"), "{}", stderr(&out));
    assert!(
        w.server.body_bytes_sent() <= 256 << 10,
        "read {}",
        w.server.body_bytes_sent()
    );
}

#[test]
fn download_checks_huggingfaces_sha256_and_sha256_flag_wins() {
    let w = World::new(Promises::relaxed(1000.0));
    let small = &w.small;
    // The tiny model published once more under a path whose metadata carries its sha256.
    publish(
        &w,
        "meta-org/Tiny-GGUF",
        "tiny-Q8_0.gguf",
        &small.path,
        &small.sha256,
        false,
    );
    let spec = "hf:meta-org/Tiny-GGUF/tiny-Q8_0.gguf";
    let r = json(&w.run(&["--json", "download", spec]));
    assert_eq!(r["sha256"], json!(small.sha256));
    assert_eq!(r["obtained"], json!("downloaded"));
    assert_eq!(
        std::fs::read(w.models_dir().join("tiny-Q8_0.gguf")).unwrap(),
        std::fs::read(&small.path).unwrap()
    );

    // Metadata that does not match the bytes: the download fails and nothing is installed.
    publish(
        &w,
        "meta-org/Tiny-GGUF",
        "wrong-Q8_0.gguf",
        &small.path,
        &"ef".repeat(32),
        false,
    );
    let bad = w.run(&["download", "hf:meta-org/Tiny-GGUF/wrong-Q8_0.gguf"]);
    exits(&bad, 4);
    assert!(stderr(&bad).contains("sha256"), "{}", stderr(&bad));
    assert!(!w.models_dir().join("wrong-Q8_0.gguf").exists());
    assert!(!w.models_dir().join("wrong-Q8_0.gguf.part").exists());

    // --sha256 wins over the metadata.
    let forced = w.run(&[
        "--json",
        "download",
        "hf:meta-org/Tiny-GGUF/wrong-Q8_0.gguf",
        "--sha256",
        &small.sha256,
    ]);
    assert_eq!(json(&forced)["sha256"], json!(small.sha256));
    // A registry model pins its own sha256.
    let pinned = w.run(&["download", &small.id, "--sha256", &small.sha256]);
    exits(&pinned, 2);
}

#[test]
fn plan_and_install_a_model_that_is_not_in_the_registry() {
    let w = World::new(Promises::relaxed(1000.0));
    let small = &w.small;
    publish(
        &w,
        "meta-org/Tiny-GGUF",
        "tiny-Q8_0.gguf",
        &small.path,
        &small.sha256,
        true,
    );
    let spec = "hf:meta-org/Tiny-GGUF/tiny-Q8_0.gguf";
    let hw = w.profile_with_bench("hw", 20.0, 0);
    let hw = hw.to_str().unwrap();

    // In the named tier's workload and promise.
    let plan = json(&w.run(&[
        "--hardware",
        hw,
        "--json",
        "plan",
        "--model",
        spec,
        "--tier",
        "test-small",
    ]));
    let c = &plan["chosen"];
    assert_eq!(c["model"], json!(spec));
    assert_eq!(c["tier"], json!("test-small"));
    assert_eq!(c["repo"], json!("meta-org/Tiny-GGUF"));
    assert_eq!(c["sha256"], json!(small.sha256));
    assert_eq!(c["prediction"]["workload"]["prompt_tokens"], json!(64));
    // Outside every tier: the default workload, judged against --max-latency.
    let free = json(&w.run(&[
        "--hardware",
        hw,
        "--json",
        "plan",
        "--model",
        spec,
        "--max-latency",
        "500",
        "--ctx",
        "1024",
    ]));
    assert_eq!(free["chosen"]["tier"], Value::Null);
    assert_eq!(
        free["chosen"]["meets_promise"],
        json!(true),
        "{:#}",
        free["chosen"]
    );

    // Installed end to end: downloaded at the commit whose header was read, verified by llama.cpp.
    let _turn = llama_turn();
    w.server.reset_counters();
    let out = w.run(&[
        "--hardware",
        hw,
        "--json",
        "install",
        "--yes",
        "--model",
        spec,
        "--tier",
        "test-small",
        "--threads",
        "2",
    ]);
    let r = json(&out);
    assert_eq!(r["action"], "install", "{}", stderr(&out));
    let cfg = w.config();
    assert_eq!(cfg["model"]["id"], json!(spec));
    assert_eq!(cfg["model"]["sha256"], json!(small.sha256));
    assert_eq!(cfg["tier"], "test-small");
    assert!(cfg["verified"]["turn_s"].as_f64().unwrap() > 0.0);
    assert!(w.models_dir().join("tiny-Q8_0.gguf").is_file());
    let downloads: Vec<_> = w
        .server
        .requests()
        .into_iter()
        .filter(|q| q.method == "GET" && q.path.contains("/resolve/") && q.range.is_none())
        .collect();
    assert!(!downloads.is_empty(), "{:?}", w.server.requests());
    assert!(
        downloads.iter().all(|q| q.path.contains(COMMIT)),
        "downloaded at the pinned commit: {downloads:?}"
    );
    let status = json(&w.run(&["--hardware", hw, "--json", "status"]));
    assert_eq!(status["installed"], true, "{status}");
    assert_eq!(status["model_file_present"], true, "{status}");
    assert!(ok(&w.run(&["--hardware", hw, "status"])).contains(spec));
}

#[test]
fn registry_pin_fills_missing_checksums_from_the_metadata_and_reports_mismatches() {
    let w = World::new(Promises::relaxed(1000.0));
    let dir = w.path("pin-registry");
    std::fs::create_dir_all(&dir).unwrap();
    let mut doc: Value =
        serde_json::from_slice(&std::fs::read(w.registry_dir().join("test.json")).unwrap())
            .unwrap();
    for f in doc["files"].as_array_mut().unwrap() {
        if f["id"] == json!(w.small.id) {
            f["sha256"] = Value::Null;
            f["size_bytes"] = Value::Null;
            f["checksum_source"] = Value::Null;
        } else {
            // Pinned, but not to what the server has.
            f["size_bytes"] = json!(w.large.size + 1);
        }
    }
    let family = dir.join("test.json");
    let original = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    std::fs::write(&family, &original).unwrap();
    let resolve = format!(
        "/{}/resolve/main/{}",
        support::world::REPO,
        w.small.filename
    );
    let size = w.small.size.to_string();
    let etag = format!("\"{}\"", w.small.sha256);
    w.server.add_headers(
        &resolve,
        &[("X-Linked-Etag", &etag), ("X-Linked-Size", &size)],
    );
    let d = dir.to_str().unwrap();

    let dry = w.run(&["--json", "registry", "pin", d, "--dry-run"]);
    exits(&dry, 4);
    assert_eq!(std::fs::read_to_string(&family).unwrap(), original);

    let out = w.run(&["--json", "registry", "pin", d]);
    exits(&out, 4);
    let report = json(&out);
    let outcome = |id: &str| {
        report["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == json!(id))
            .unwrap()
            .clone()
    };
    assert_eq!(outcome(&w.small.id)["outcome"], "pinned", "{report}");
    assert_eq!(outcome(&w.large.id)["outcome"], "mismatch", "{report}");
    assert!(outcome(&w.large.id)["detail"]
        .as_str()
        .unwrap()
        .contains("size"));

    // The small model is installable now, with the server's checksum; only its three lines changed.
    let tiers = w.tiers_file();
    let listed = json(&w.ctx.run(&[
        "--registry",
        d,
        "--tiers",
        tiers.to_str().unwrap(),
        "--json",
        "registry",
        "list",
    ]));
    let small = listed["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == json!(w.small.id))
        .unwrap()
        .clone();
    assert_eq!(small["installable"], true);
    assert_eq!(small["sha256"], json!(w.small.sha256));
    assert_eq!(small["size_bytes"], json!(w.small.size));
    let now = std::fs::read_to_string(&family).unwrap();
    let changed = original
        .lines()
        .zip(now.lines())
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(changed, 3, "{now}");
}

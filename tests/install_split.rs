//! A model published split in parts (llama.cpp's gguf-split layout), end to end through the
//! built binary: installed from the loopback registry part by part, each part verified, all put
//! in place together and loaded by real llama.cpp from the first part; a corrupt part installs
//! nothing, and the next run fetches only what is missing.

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::world::{llama_turn, Promises, World};
use support::{exits, json, ok};

fn gguf_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".gguf"))
        .collect();
    v.sort();
    v
}

fn staging(w: &World) -> PathBuf {
    w.models_dir()
        .join(".staging")
        .join(w.large_parts[0].filename.trim_end_matches(".gguf"))
}

/// The JSON error document's message with its causes.
fn error_text(doc: &Value) -> String {
    let mut s = doc["error"].as_str().unwrap().to_string();
    for c in doc["causes"].as_array().unwrap() {
        s.push_str(": ");
        s.push_str(c.as_str().unwrap());
    }
    s
}

fn requested(w: &World) -> Vec<String> {
    w.server
        .requests()
        .into_iter()
        .map(|r| r.path.rsplit('/').next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn a_model_split_in_three_parts_installs_verifies_and_is_loaded_from_its_first_part() {
    let _turn = llama_turn();
    let mut w = World::new(Promises::relaxed(60.0));
    w.split_large(3);
    let hw = w.profile_with_bench("fast", 1000.0, 0);
    let hw = hw.to_str().unwrap();
    // Something else in the models directory, for --prune to remove.
    ok(&w.run(&["download", &w.small.id]));

    let out = w.run(&["--hardware", hw, "--json", "install", "--yes", "--prune"]);
    ok(&out);
    let report = json(&out);
    let attempt = &report["attempts"][0];
    assert_eq!(attempt["model"], w.large.id);
    assert_eq!(attempt["outcome"], "installed", "{attempt:#}");
    let parts = attempt["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 3, "{attempt:#}");
    let first = w.models_dir().join(&w.large_parts[0].filename);
    for (p, published) in parts.iter().zip(&w.large_parts) {
        let installed = w.models_dir().join(&published.filename);
        assert_eq!(p["path"], installed.to_str().unwrap());
        assert_eq!(p["sha256"], published.sha256);
        assert_eq!(p["obtained"], "downloaded");
        assert_eq!(
            std::fs::read(&installed).unwrap(),
            std::fs::read(&published.path).unwrap()
        );
    }
    assert_eq!(attempt["download"]["path"], first.to_str().unwrap());
    // The verification ran on the split model: real llama.cpp loaded it and answered.
    let verify = &attempt["verify"];
    assert!(verify["turn_s"].as_f64().unwrap() > 0.0, "{verify:#}");
    assert!(verify["decode_tokens_per_s"].as_f64().unwrap() > 0.0);

    // The config points llama.cpp (and llama-server) at the first part and lists every part.
    let cfg = w.config();
    assert_eq!(cfg["tier"], "test-large");
    assert_eq!(cfg["model"]["path"], first.to_str().unwrap());
    assert_eq!(cfg["model"]["sha256"], w.large_parts[0].sha256);
    let total: u64 = w.large_parts.iter().map(|p| p.size).sum();
    assert_eq!(cfg["model"]["size_bytes"], total);
    assert_eq!(cfg["model"]["parts"].as_array().unwrap().len(), 3);
    assert_eq!(cfg["model"]["parts"][2]["sha256"], w.large_parts[2].sha256);
    assert!(cfg["llama_server"]["command"]
        .as_str()
        .unwrap()
        .contains(first.to_str().unwrap()));
    let state: Value =
        serde_json::from_slice(&std::fs::read(w.state_dir().join("state.json")).unwrap()).unwrap();
    assert_eq!(state["installed"]["size_bytes"], total);
    assert_eq!(state["installed"]["parts"].as_array().unwrap().len(), 3);

    // --prune removed the other model and kept every part; no staging is left behind.
    let names: Vec<String> = w.large_parts.iter().map(|p| p.filename.clone()).collect();
    assert_eq!(gguf_files(&w.models_dir()), names);
    assert!(!w.models_dir().join(".staging").exists());
    let pruned = report["pruned"].as_array().unwrap();
    assert_eq!(pruned.len(), 1, "{pruned:?}");
    assert!(pruned[0].as_str().unwrap().ends_with(&w.small.filename));

    // status sees every part; a part gone is a model file missing.
    let st = json(&w.run(&["--hardware", hw, "--json", "status"]));
    assert_eq!(st["installed"], true);
    assert_eq!(st["model_file_present"], true);
    // verify re-runs the installed split model.
    ok(&w.run(&["--hardware", hw, "verify", "--on-miss", "fail"]));

    // The header read across the parts predicts what the unsplit model predicts.
    let split_p = json(&w.run(&[
        "--hardware",
        hw,
        "--json",
        "predict",
        first.to_str().unwrap(),
    ]));
    let whole_p = json(&w.run(&[
        "--hardware",
        hw,
        "--json",
        "predict",
        w.large.path.to_str().unwrap(),
    ]));
    for k in [
        "parameters",
        "weight_bytes_per_token",
        "decode_tokens_per_s",
        "placement",
    ] {
        assert_eq!(split_p[k], whole_p[k], "{k}");
    }
    assert_eq!(split_p["file_bytes"], total);
    // One part given alone is not the model.
    let out = w.run(&[
        "--hardware",
        hw,
        "predict",
        w.models_dir()
            .join(&w.large_parts[1].filename)
            .to_str()
            .unwrap(),
    ]);
    exits(&out, 7);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("part 2 of 3"), "{err}");

    std::fs::remove_file(w.models_dir().join(&w.large_parts[2].filename)).unwrap();
    let st = json(&w.run(&["--hardware", hw, "--json", "status"]));
    assert_eq!(st["model_file_present"], false);
}

#[test]
fn a_corrupt_part_installs_nothing_and_the_next_run_fetches_only_what_is_missing() {
    let _turn = llama_turn();
    let mut w = World::new(Promises::relaxed(60.0));
    w.split_large(3);
    let hw = w.profile_with_bench("fast", 1000.0, 0);
    let hw = hw.to_str().unwrap();
    let second = (
        w.large_parts[1].filename.clone(),
        w.large_parts[1].path.clone(),
    );
    let good = std::fs::read(&second.1).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    w.serve(&second.0, bad);

    let out = w.run(&["--hardware", hw, "--json", "install", "--yes"]);
    exits(&out, 4);
    let err = error_text(&json(&out));
    assert!(
        err.contains("part 2 of 3") && err.contains(&second.0) && err.contains("checksum"),
        "{err}"
    );
    // Nothing installed: no part in the models directory, no config, no state claiming it.
    assert_eq!(gguf_files(&w.models_dir()), Vec::<String>::new());
    assert!(!w.config_file().exists());
    let st = json(&w.run(&["--hardware", hw, "--json", "status"]));
    assert_eq!(st["installed"], false);
    let state_file = w.state_dir().join("state.json");
    if state_file.exists() {
        let state: Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
        assert!(state["installed"].is_null(), "{state:#}");
    }
    // The verified first part waits in the staging directory; the bad part was not kept.
    let staged = gguf_files(&staging(&w));
    assert_eq!(staged, [w.large_parts[0].filename.clone()]);

    // Fixed upstream: the rerun fetches parts 2 and 3 only, and installs.
    w.serve(&second.0, good);
    w.server.reset_counters();
    let out = w.run(&["--hardware", hw, "--json", "install", "--yes"]);
    ok(&out);
    let got = requested(&w);
    assert_eq!(
        got,
        [
            w.large_parts[1].filename.clone(),
            w.large_parts[2].filename.clone()
        ],
        "only the missing parts are requested"
    );
    let parts = json(&out)["attempts"][0]["parts"].clone();
    assert_eq!(parts[0]["obtained"], "already-present", "{parts:#}");
    assert_eq!(parts[1]["obtained"], "downloaded");
    assert_eq!(parts[2]["obtained"], "downloaded");
    assert_eq!(w.config()["model"]["id"], w.large.id);
    let names: Vec<String> = w.large_parts.iter().map(|p| p.filename.clone()).collect();
    assert_eq!(gguf_files(&w.models_dir()), names);
    assert!(!w.models_dir().join(".staging").exists());
}

#[test]
fn download_of_a_split_model_lists_its_parts_and_places_none_when_one_is_bad() {
    let mut w = World::new(Promises::relaxed(60.0));
    w.split_large(3);
    let third = (
        w.large_parts[2].filename.clone(),
        w.large_parts[2].path.clone(),
    );
    let good = std::fs::read(&third.1).unwrap();
    w.serve(&third.0, good[..good.len() - 1].to_vec());

    let out = w.run(&["--json", "download", &w.large.id]);
    exits(&out, 4);
    let err = error_text(&json(&out));
    assert!(
        err.contains("part 3 of 3") && err.contains(&third.0),
        "{err}"
    );
    assert_eq!(gguf_files(&w.models_dir()), Vec::<String>::new());
    assert_eq!(gguf_files(&staging(&w)).len(), 2);

    w.serve(&third.0, good);
    let out = w.run(&["--json", "download", &w.large.id]);
    ok(&out);
    let r = json(&out);
    let first = w.models_dir().join(&w.large_parts[0].filename);
    assert_eq!(r["path"], first.to_str().unwrap());
    let total: u64 = w.large_parts.iter().map(|p| p.size).sum();
    assert_eq!(r["bytes"], total);
    let parts = r["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 3);
    for (p, published) in parts.iter().zip(&w.large_parts) {
        assert_eq!(p["sha256"], published.sha256);
    }
    assert_eq!(parts[2]["obtained"], "downloaded");
    assert_eq!(parts[0]["obtained"], "already-present");
    // Renaming a split model would hide its parts from llama.cpp.
    let out = w.run(&["download", &w.large.id, "--filename", "x.gguf"]);
    exits(&out, 2);
}

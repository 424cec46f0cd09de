//! `minerva-setup bench` end to end on tiny models: real llama.cpp, the JSON document, the state
//! file, and the refusal of a broken `--bench-model`.

mod support;

use std::path::Path;
use std::process::Output;

use minerva_setup::gguf::writer::{self, ModelSpec, WeightLayout};
use minerva_setup::gguf::GgmlType;
use support::TestCtx;

const FIXTURE: &str = "tests/fixtures/bench-2core-avx512.json";

/// `bench` in `ctx` for the machine `hardware` describes.
fn bench(ctx: &TestCtx, hardware: &Path, extra: &[&str]) -> Output {
    ctx.command()
        .arg("--hardware")
        .arg(hardware)
        .arg("bench")
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn bench_model_json_reports_the_measurement_and_saves_it_in_the_state() {
    let ctx = TestCtx::new();
    let model = ctx.path("tiny.gguf");
    writer::write_model(
        &model,
        &ModelSpec::tiny(WeightLayout::Uniform(GgmlType::Q6_K)),
    )
    .unwrap();
    let out = bench(
        &ctx,
        Path::new(FIXTURE),
        &[
            "--json",
            "--threads",
            "1",
            "--budget",
            "0.5",
            "--prompt-tokens",
            "32",
            "--gen-tokens",
            "8",
            "--bench-model",
        ]
        .iter()
        .copied()
        .chain([model.to_str().unwrap()])
        .collect::<Vec<_>>(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("llama_model_load") && !stderr.contains("load_tensors"),
        "llama.cpp logs leak: {stderr}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["threads"], 1);
    assert_eq!(v["thread_trials"].as_array().unwrap().len(), 0);
    let q = &v["quants"][0];
    assert_eq!(q["ggml_type"], "Q6_K");
    assert_eq!(q["backend"], "cpu");
    assert_eq!(q["prompt_tokens"], 32);
    assert!(
        q["decode_tokens_per_s"]["median"].as_f64().unwrap() > 10.0,
        "{q}"
    );
    assert!(
        q["prefill_tokens_per_s"]["median"].as_f64().unwrap() > 10.0,
        "{q}"
    );
    assert!(q["decode_tokens_per_s"]["samples"].as_u64().unwrap() >= 2);
    assert!(v["peak_rss_bytes"].as_u64().unwrap() > 1 << 20);
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ctx.state_dir().join("bench.json")).unwrap())
            .unwrap();
    assert_eq!(saved["quants"][0]["ggml_type"], "Q6_K");
}

#[test]
fn a_bench_model_that_is_not_gguf_is_bad_input_naming_the_file() {
    let ctx = TestCtx::new();
    let bad = ctx.path("not-a-model.gguf");
    std::fs::write(&bad, b"<html>404</html>").unwrap();
    let out = bench(
        &ctx,
        Path::new(FIXTURE),
        &["--bench-model", bad.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(7));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not-a-model.gguf") && stderr.contains("not a GGUF file"),
        "{stderr}"
    );
}

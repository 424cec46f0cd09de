//! `plan` and `predict` driven through the built binary on the reference hardware profiles.

mod support;

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use support::TestCtx;

/// The binary in a fresh context of its own: no state carries over from one run to the next.
fn run(args: &[&str]) -> Output {
    TestCtx::new()
        .command()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .unwrap()
}

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/profiles")
        .join(format!("{name}.json"));
    p.display().to_string()
}

/// `--hardware FIXTURE plan --json EXTRA...`: exit code and the parsed plan.
fn plan(name: &str, extra: &[&str]) -> (i32, Value) {
    let hw = fixture(name);
    let mut args = vec!["--hardware", hw.as_str(), "plan", "--json"];
    args.extend_from_slice(extra);
    let out = run(&args);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{name}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code().unwrap(), json)
}

fn chosen(p: &Value) -> &Value {
    &p["chosen"]
}

fn tier<'a>(p: &'a Value, id: &str) -> &'a Value {
    p["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap()
}

fn params_of(p: &Value) -> u64 {
    chosen(p)["prediction"]["parameters"].as_u64().unwrap()
}

#[test]
fn every_reference_profile_plans_with_a_reason_for_every_tier() {
    for name in [
        "apple-m2-16g",
        "cloud-2vcpu-16g",
        "container-4g",
        "h100-80g",
        "rtx4090x2",
        "xeon-e5-2660v3",
        "xeon-e5-2650v2",
    ] {
        let (code, p) = plan(name, &[]);
        assert_eq!(code, 0, "{name}: {p}");
        assert_eq!(p["schema_version"], 1);
        let tiers = p["tiers"].as_array().unwrap();
        assert!(tiers.len() >= 8);
        for t in tiers {
            assert!(
                !t["reason"].as_str().unwrap().is_empty(),
                "{name}: tier {} has no reason",
                t["id"]
            );
            if t["verdict"] == "rejected" {
                for c in t["candidates"].as_array().unwrap() {
                    if c["accepted"] == false && t["unmet"].as_array().unwrap().is_empty() {
                        assert!(
                            !c["reasons"].as_array().unwrap().is_empty(),
                            "{name}: {} has no reason",
                            c["model"]
                        );
                    }
                }
            }
        }
        let c = chosen(&p);
        assert!(c["installable"].as_bool().unwrap(), "{name}");
        let pr = &c["prediction"];
        assert!(
            pr["turn_s"].as_f64().unwrap()
                <= tier(&p, c["tier"].as_str().unwrap())["budget_turn_s"]
                    .as_f64()
                    .unwrap()
        );
    }
}

#[test]
fn seed_server_does_not_get_a_13b_for_a_15_s_promise() {
    let (code, p) = plan("xeon-e5-2660v3", &["--max-latency", "15"]);
    assert_eq!(code, 0, "{p}");
    assert!(params_of(&p) < 10_000_000_000, "{}", chosen(&p)["model"]);
    assert_ne!(chosen(&p)["model"], "llama-2-13b-chat-q4_k_m");
    assert!(chosen(&p)["prediction"]["turn_s"].as_f64().unwrap() <= 15.0);
    assert_eq!(p["measured"], true, "the fixture carries a bench section");
    // And without a budget the 13B is still never chosen: it is predicted far over the promise.
    let (_, p) = plan("xeon-e5-2660v3", &[]);
    assert_ne!(chosen(&p)["model"], "llama-2-13b-chat-q4_k_m");
    let heavy = tier(&p, "cpu-heavy");
    let c13 = heavy["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["model"] == "llama-2-13b-chat-q4_k_m")
        .unwrap();
    assert_eq!(c13["accepted"], false);
    let reasons = c13["reasons"].to_string();
    assert!(
        reasons.contains("predicted") && reasons.contains("memory bandwidth"),
        "{reasons}"
    );
}

#[test]
fn seed_model_override_predicts_at_least_20_s_for_30_tokens_limited_by_memory_bandwidth() {
    let (code, p) = plan(
        "xeon-e5-2660v3",
        &[
            "--model",
            "llama-2-13b-chat-q4_k_m",
            "--response-tokens",
            "30",
        ],
    );
    assert_eq!(code, 0, "it fits in 39 GiB: {p}");
    let c = chosen(&p);
    assert_eq!(c["model"], "llama-2-13b-chat-q4_k_m");
    assert_eq!(c["overridden"], true);
    assert_eq!(c["installable"], false, "no sha256 is known");
    let pr = &c["prediction"];
    assert_eq!(pr["workload"]["response_tokens"], 30);
    assert!(pr["turn_s"].as_f64().unwrap() >= 20.0, "{}", pr["turn_s"]);
    assert!(
        pr["decode_s"].as_f64().unwrap() >= 19.0,
        "30 tokens at ~1.5 tok/s: {}",
        pr["decode_s"]
    );
    assert_eq!(pr["limited_by"], "memory-bandwidth");
    assert_eq!(pr["placement"]["kind"], "cpu");

    // The human report says so too.
    let hw = fixture("xeon-e5-2660v3");
    let out = run(&[
        "--hardware",
        &hw,
        "plan",
        "--model",
        "llama-2-13b-chat-q4_k_m",
        "--response-tokens",
        "30",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("limited by memory bandwidth"), "{text}");
}

#[test]
fn small_cloud_vm_gets_at_most_1_5b_parameters() {
    let (code, p) = plan("cloud-2vcpu-16g", &[]);
    assert_eq!(code, 0, "{p}");
    assert!(
        params_of(&p) <= 1_600_000_000,
        "{}: {}",
        chosen(&p)["model"],
        params_of(&p)
    );
    assert_eq!(p["measured"], false);
    assert_eq!(chosen(&p)["prediction"]["measured"], false);
}

#[test]
fn four_gib_container_gets_a_model_whose_weights_and_kv_cache_fit() {
    let (code, p) = plan("container-4g", &[]);
    assert_eq!(code, 0, "{p}");
    let m = &chosen(&p)["prediction"]["memory"];
    let need = m["weights_bytes"].as_u64().unwrap() + m["kv_cache_bytes"].as_u64().unwrap();
    assert!(need < 4 << 30);
    // Within the headroom rule too: max(1.5 GiB, 10 %) kept back from the cgroup's 4 GiB.
    assert!(
        m["total_bytes"].as_u64().unwrap() <= p["headroom"]["available_bytes"].as_u64().unwrap()
    );
    assert_eq!(p["headroom"]["usable_ram_bytes"].as_u64().unwrap(), 4 << 30);
}

#[test]
fn h100_gets_a_gpu_tier_with_every_layer_offloaded() {
    let (code, p) = plan("h100-80g", &[]);
    assert_eq!(code, 0, "{p}");
    let c = chosen(&p);
    assert!(
        c["tier"].as_str().unwrap().starts_with("gpu-"),
        "{}",
        c["tier"]
    );
    let pl = &c["prediction"]["placement"];
    assert_eq!(pl["kind"], "gpu");
    assert_eq!(
        pl["gpu_layers"].as_u64().unwrap(),
        pl["n_layers"].as_u64().unwrap() + 1
    );
    assert_eq!(c["prediction"]["limited_by"], "gpu-vram-bandwidth");
}

#[test]
fn two_rtx_4090s_hold_a_70b_across_both_cards() {
    let (code, p) = plan("rtx4090x2", &["--model", "llama-3.1-70b-instruct-q4_k_m"]);
    assert_eq!(code, 0, "{p}");
    let pr = &chosen(&p)["prediction"];
    assert!(pr["file_bytes"].as_u64().unwrap() > 24 << 30);
    let pl = &pr["placement"];
    assert_eq!(pl["kind"], "gpu", "{pl}");
    let gpus = pl["gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), 2);
    for g in gpus {
        assert!(g["layers"].as_u64().unwrap() > 0);
        assert!(g["bytes"].as_u64().unwrap() <= g["capacity_bytes"].as_u64().unwrap());
    }
    assert!(pl["vram_bytes"].as_u64().unwrap() > 24 << 30);
}

#[test]
fn a_machine_too_small_for_any_tier_exits_3_with_the_smallest_requirement_missed() {
    // With --json a failure is one JSON error document.
    let (code, p) = plan("tiny-1g", &[]);
    assert_eq!(code, 3);
    assert_eq!(p["exit_code"], 3);
    let why = p["error"].as_str().unwrap();
    assert!(
        why.contains("no tier fits")
            && why.contains("cpu-minimal")
            && why.contains("needs 2.0 GiB RAM, has 1.0 GiB"),
        "{why}"
    );
    let hw = fixture("tiny-1g");
    let out = run(&["--hardware", &hw, "plan"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no tier fits") && err.contains("needs 2.0 GiB RAM"),
        "{err}"
    );
}

#[test]
fn a_model_that_cannot_fit_is_refused_unless_forced() {
    let (code, p) = plan("container-4g", &["--model", "llama-3.1-8b-instruct-q4_k_m"]);
    assert_eq!(code, 3, "{p}");
    let why = p["error"].as_str().unwrap();
    assert!(
        why.contains("does not fit") && why.contains("GiB RAM"),
        "{why}"
    );
    assert!(p["hint"].as_str().unwrap().contains("--force"));
    let (code, p) = plan(
        "container-4g",
        &["--model", "llama-3.1-8b-instruct-q4_k_m", "--force"],
    );
    assert_eq!(code, 0, "{p}");
    assert!(chosen(&p)["warnings"].to_string().contains("--force"));
}

#[test]
fn tier_override_and_max_latency_are_applied() {
    let (code, p) = plan("xeon-e5-2660v3", &["--tier", "cpu-minimal"]);
    assert_eq!(code, 0);
    assert_eq!(chosen(&p)["tier"], "cpu-minimal");
    assert_eq!(tier(&p, "cpu-light")["verdict"], "skipped");
    // An impossible budget: nothing keeps it.
    let (code, p) = plan("xeon-e5-2660v3", &["--max-latency", "0.5"]);
    assert_eq!(code, 3);
    assert!(
        p["error"].as_str().unwrap().contains("budget 0 s")
            || p["error"].as_str().unwrap().contains("> budget"),
        "{p}"
    );
    let hw = fixture("xeon-e5-2660v3");
    let out = run(&["--hardware", &hw, "plan", "--max-latency", "0.5"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Budget    --max-latency 0.5 s"));
    let (code, _) = plan("xeon-e5-2660v3", &["--tier", "no-such-tier"]);
    assert_eq!(code, 2);
}

#[test]
fn predict_reports_a_registry_model_and_a_local_gguf_file() {
    let hw = fixture("xeon-e5-2660v3");
    let out = run(&[
        "--hardware",
        &hw,
        "predict",
        "qwen2.5-1.5b-instruct-q4_k_m",
        "--json",
        "--ctx",
        "8192",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(p["model"], "qwen2.5-1.5b-instruct-q4_k_m");
    assert_eq!(p["workload"]["context_tokens"], 8192);
    assert_eq!(p["measured"], true);
    assert!(p["decode_tokens_per_s"].as_f64().unwrap() > 1.0);

    let inputs = TestCtx::new();
    let f = inputs.path("model.gguf");
    std::fs::write(&f, b"GGUF").unwrap();
    let out = run(&["--hardware", &hw, "predict", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(7));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("model.gguf"), "{err}");

    // A real GGUF's header gives the predictor the shape and the tensor table.
    use minerva_setup::gguf::writer::{write_model, ModelSpec, WeightLayout};
    use minerva_setup::gguf::FileType;
    let g = inputs.path("tiny-q4km.gguf");
    let written = write_model(
        &g,
        &ModelSpec::tiny(WeightLayout::FileType(FileType::Q4_K_M)),
    )
    .unwrap();
    let out = run(&["--hardware", &hw, "predict", g.to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(p["model"].as_str().unwrap().ends_with("tiny-q4km.gguf"));
    let weights: u64 = written.tensors.iter().map(|t| t.n_bytes).sum();
    let mem = p["memory"]["weights_bytes"].as_u64().unwrap();
    assert_eq!(mem, weights, "memory need counts the file's own tensors");

    let out = run(&["--hardware", &hw, "predict", "no-such-model"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn cli_definition_is_consistent() {
    use clap::CommandFactory;
    minerva_setup::cli::Cli::command().debug_assert();
}

#[test]
fn a_context_beyond_the_models_training_is_rejected_with_a_reason() {
    let (code, p) = plan("xeon-e5-2660v3", &["--ctx", "8192"]);
    assert_eq!(code, 0, "{p}");
    let minimal = tier(&p, "cpu-minimal");
    let tiny = minimal["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["model"] == "tinyllama-1.1b-chat-q4_k_m")
        .unwrap();
    assert_eq!(tiny["accepted"], false);
    assert!(
        tiny["reasons"]
            .to_string()
            .contains("exceeds the model's trained 2048"),
        "{}",
        tiny["reasons"]
    );
}

#[test]
fn seed_server_for_three_users_gets_no_larger_a_model_and_the_plan_says_why() {
    let (code, one) = plan("xeon-e5-2660v3", &[]);
    assert_eq!(code, 0, "{one}");
    let (code, three) = plan("xeon-e5-2660v3", &["--concurrency", "3"]);
    assert_eq!(code, 0, "{three}");
    assert!(
        params_of(&three) <= params_of(&one),
        "3 users: {} vs 1 user: {}",
        chosen(&three)["model"],
        chosen(&one)["model"]
    );
    let p = &chosen(&three)["prediction"];
    assert_eq!(p["workload"]["concurrency"], 3);
    let users = &p["concurrency"];
    assert_eq!(users["users"], 3);
    let p95 = users["turn_p95_s"].as_f64().unwrap();
    assert!(p95 >= users["turn_p50_s"].as_f64().unwrap());
    assert!(
        p95 > p["turn_s"].as_f64().unwrap(),
        "three users share the cores: {users}"
    );
    // The promise holds for the p95 of every user's turn.
    let budget = tier(&three, chosen(&three)["tier"].as_str().unwrap())["budget_turn_s"]
        .as_f64()
        .unwrap();
    assert!(p95 <= budget, "{p95} > {budget}");
    // Memory holds three KV caches.
    let kv3 = p["memory"]["kv_cache_bytes"].as_u64().unwrap();
    let same_model_one = one["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["candidates"].as_array().unwrap())
        .find(|c| c["model"] == chosen(&three)["model"])
        .unwrap();
    assert_eq!(
        kv3,
        3 * same_model_one["prediction"]["memory"]["kv_cache_bytes"]
            .as_u64()
            .unwrap()
    );
    // Every tier above the chosen one that one user would get says what three users cost.
    if chosen(&three)["model"] != chosen(&one)["model"] {
        let t1 = chosen(&one)["tier"].as_str().unwrap();
        let reasons = tier(&three, t1)["reason"].to_string();
        assert!(reasons.contains("for each of 3 users"), "{reasons}");
    }
    let hw = fixture("xeon-e5-2660v3");
    let out = run(&["--hardware", &hw, "plan", "--concurrency", "3"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("3 users at once: turn p50"), "{text}");
    assert!(text.contains("TURN p95"), "{text}");
}

#[test]
fn a_concurrency_of_zero_is_refused_at_parse_time() {
    let hw = fixture("xeon-e5-2660v3");
    let out = run(&["--hardware", &hw, "plan", "--concurrency", "0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--concurrency"), "{err}");
}

#[test]
fn an_ivy_bridge_xeon_without_avx2_plans_a_smaller_cpu_tier_and_says_which_kernels() {
    let (code, ivy) = plan("xeon-e5-2650v2", &[]);
    assert_eq!(code, 0, "{ivy}");
    let c = chosen(&ivy);
    assert!(c["tier"].as_str().unwrap().starts_with("cpu-"), "{c}");
    assert!(c["installable"].as_bool().unwrap());
    // The no-AVX2 rates, named in the prediction's notes.
    let notes = c["prediction"]["notes"].to_string();
    assert!(
        notes.contains("sandybridge kernels") && notes.contains("AVX without AVX2"),
        "{notes}"
    );
    // The bigger CPU tiers are judged by their predicted latency, not refused for the SIMD level.
    for id in ["cpu-heavy", "cpu-medium"] {
        let t = tier(&ivy, id);
        assert!(t["unmet"].as_array().unwrap().is_empty(), "{t}");
        assert_eq!(t["verdict"], "rejected", "{t}");
    }
    // The same kind of server one generation later (Haswell, AVX2) is served a larger model.
    let (_, haswell) = plan("xeon-e5-2660v3", &[]);
    assert!(
        params_of(&ivy) < params_of(&haswell),
        "Ivy Bridge {} vs Haswell {}",
        params_of(&ivy),
        params_of(&haswell)
    );
}

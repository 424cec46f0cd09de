//! The shipped registry and tier table: embedded completely, consistent with published sizes, and
//! validated with errors that name file, entry and field when overridden.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use minerva_setup::registry::{Registry, Tiers, EMBEDDED_REGISTRY_FILES};
use serde_json::Value;
use support::{stderr, TestCtx};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(ctx: &TestCtx, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = ctx.command();
    cmd.current_dir(root());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.args(args).output().unwrap()
}

#[test]
fn every_registry_file_is_embedded_verbatim() {
    let mut on_disk: Vec<String> = std::fs::read_dir(root().join("registry"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    on_disk.sort();
    let mut embedded: Vec<String> = EMBEDDED_REGISTRY_FILES
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    embedded.sort();
    assert_eq!(
        on_disk, embedded,
        "add new registry files to EMBEDDED_REGISTRY_FILES"
    );
    for (name, text) in EMBEDDED_REGISTRY_FILES {
        assert_eq!(
            std::fs::read_to_string(root().join("registry").join(name)).unwrap(),
            *text
        );
    }
    assert_eq!(
        std::fs::read_to_string(root().join("tiers.json")).unwrap(),
        minerva_setup::registry::EMBEDDED_TIERS
    );
}

#[test]
fn shipped_registry_covers_the_required_families_and_the_seed_file() {
    let r = Registry::embedded().unwrap();
    for id in [
        "tinyllama-1.1b-chat-q4_k_m",
        "qwen2.5-0.5b-instruct-q4_k_m",
        "qwen2.5-1.5b-instruct-q4_k_m",
        "qwen2.5-3b-instruct-q5_k_m",
        "qwen2.5-7b-instruct-q4_k_m",
        "qwen2.5-14b-instruct-q4_k_m",
        "qwen2.5-32b-instruct-q4_k_m",
        "qwen2.5-72b-instruct-q4_k_m",
        "llama-3.2-1b-instruct-q4_k_m",
        "llama-3.2-3b-instruct-q4_k_m",
        "llama-3.1-8b-instruct-q4_k_m",
        "llama-3.1-70b-instruct-q4_k_m",
        "phi-3.5-mini-instruct-q4_k_m",
        "mistral-7b-instruct-v0.3-q4_k_m",
        "llama-2-7b-chat-q4_k_m",
        "llama-2-13b-chat-q4_k_m",
        "gemma-2-2b-it-q6_k",
        "gemma-2-9b-it-q4_k_m",
        "smollm2-1.7b-instruct-q4_k_m",
    ] {
        assert!(r.get(id).is_some(), "{id} missing");
    }
    let seed = r.get("llama-2-13b-chat-q4_k_m").unwrap();
    assert_eq!(seed.repo, "TheBloke/Llama-2-13B-chat-GGUF");
    assert_eq!(seed.filename, "llama-2-13b-chat.Q4_K_M.gguf");
    assert!(!seed.installable());
    // Config facts the catalog got wrong or left out.
    let l8 = &r.get("llama-3.1-8b-instruct-q4_k_m").unwrap().shape;
    assert_eq!(
        (l8.n_layers, l8.n_embd, l8.n_ff, l8.n_heads, l8.n_kv_heads),
        (32, 4096, 14336, 32, 8)
    );
    assert_eq!(
        (l8.vocab_size, l8.context_length, l8.tied_embeddings),
        (128256, 131072, false)
    );
    let q05 = &r.get("qwen2.5-0.5b-instruct-q4_k_m").unwrap().shape;
    assert_eq!(
        (
            q05.n_layers,
            q05.n_embd,
            q05.n_ff,
            q05.n_heads,
            q05.n_kv_heads,
            q05.vocab_size
        ),
        (24, 896, 4864, 14, 2, 151936)
    );
    assert!(q05.tied_embeddings);
    let tiers = Tiers::embedded(&r).unwrap();
    let ids: Vec<&str> = tiers.tiers.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "gpu-xl",
            "gpu-heavy",
            "gpu-medium",
            "gpu-light",
            "cpu-heavy",
            "cpu-medium",
            "cpu-light",
            "cpu-minimal"
        ]
    );
}

#[test]
fn shapes_reproduce_every_published_file_size() {
    // The tensor table from the shape and quantisation must land near the real file size; a wrong
    // layer count or width would miss by far more. Phi-3 files fuse q/k/v into one `attn_qkv`,
    // which llama.cpp's Q4_K_M gives Q5_K where the unfused table has Q4_K: 3.1 % under.
    let r = Registry::embedded().unwrap();
    let mut checked = 0;
    let mut misses = Vec::new();
    for f in &r.files {
        let Some(size) = f.size_bytes else { continue };
        let est: u64 = minerva_setup::gguf::tensors_for(&f.shape, f.quantisation)
            .iter()
            .map(|t| t.n_bytes)
            .sum();
        let err = (est as f64 - size as f64).abs() / size as f64;
        let tolerance = if f.shape.architecture == "phi3" {
            0.04
        } else {
            0.03
        };
        if err >= tolerance {
            misses.push(format!(
                "{}: estimated {est}, published {size} ({:.1} %)",
                f.id,
                err * 100.0
            ));
        }
        checked += 1;
    }
    assert!(misses.is_empty(), "{misses:#?}");
    assert!(checked >= 15);
}

#[test]
fn registry_list_marks_files_without_checksum_as_not_installable() {
    let ctx = TestCtx::new();
    let out = run(&ctx, &["registry", "list", "--json"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let files = v["files"].as_array().unwrap();
    let seed = files
        .iter()
        .find(|f| f["id"] == "llama-2-13b-chat-q4_k_m")
        .unwrap();
    assert_eq!(seed["installable"], false);
    assert!(seed["not_installable_reason"]
        .as_str()
        .unwrap()
        .contains("sha256"));
    assert!(seed["size_bytes"].is_null());
    let est = seed["estimated_size_bytes"].as_u64().unwrap() as f64;
    assert!((est / 7.87e9 - 1.0).abs() < 0.01, "{est}");
    let human = run(&ctx, &["registry", "list"], &[]);
    let text = String::from_utf8_lossy(&human.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("llama-2-13b-chat-q4_k_m"))
        .unwrap();
    assert!(
        line.contains("no: no sha256") && line.contains("~7.87 GB"),
        "{line}"
    );
}

/// A registry directory in `ctx` holding the shipped files plus `extra` written as `name`.
fn registry_dir_with(ctx: &TestCtx, name: &str, extra: &str) -> PathBuf {
    let dir = ctx.path("registry");
    std::fs::create_dir_all(&dir).unwrap();
    for (n, text) in EMBEDDED_REGISTRY_FILES {
        std::fs::write(dir.join(n), text).unwrap();
    }
    std::fs::write(dir.join(name), extra).unwrap();
    dir
}

fn family(entry_patch: impl Fn(&mut Value)) -> String {
    let mut v: Value = serde_json::from_str(
        EMBEDDED_REGISTRY_FILES
            .iter()
            .find(|(n, _)| *n == "tinyllama.json")
            .unwrap()
            .1,
    )
    .unwrap();
    v["files"][0]["id"] = "custom-tiny".into();
    entry_patch(&mut v["files"][0]);
    v.to_string()
}

#[test]
fn overridden_registry_errors_name_file_entry_and_field_and_exit_7() {
    let cases: Vec<(&str, String, &[&str])> = vec![
        (
            "malformed JSON",
            "{ \"schema_version\": 1, ".to_string(),
            &["custom.json", "not valid JSON"],
        ),
        (
            "bad checksum",
            family(|e| e["sha256"] = "ABC123".into()),
            &[
                "custom.json",
                "`custom-tiny`",
                "field `sha256`",
                "64 lowercase hex",
            ],
        ),
        (
            "path separator",
            family(|e| e["filename"] = "../../etc/passwd.gguf".into()),
            &["custom.json", "`custom-tiny`", "field `filename`"],
        ),
        (
            "duplicate id across files",
            family(|e| e["id"] = "tinyllama-1.1b-chat-q4_k_m".into()),
            &["`tinyllama-1.1b-chat-q4_k_m`", "field `id`", "duplicate"],
        ),
        (
            "wrong type",
            family(|e| e["size_bytes"] = "big".into()),
            &["custom.json", "field `size_bytes`"],
        ),
    ];
    for (what, text, needles) in cases {
        // `zz-` sorts after the shipped files, so a duplicate is found in the custom one.
        let ctx = TestCtx::new();
        let dir = registry_dir_with(&ctx, "zz-custom.json", &text);
        let d = dir.to_str().unwrap();
        for out in [
            run(&ctx, &["--registry", d, "registry", "list"], &[]),
            run(&ctx, &["registry", "list"], &[("MINERVA_REGISTRY", d)]),
        ] {
            assert_eq!(out.status.code(), Some(7), "{what}: {}", stderr(&out));
            let err = stderr(&out);
            for n in needles {
                assert!(err.contains(n), "{what}: `{n}` not in: {err}");
            }
        }
    }
}

#[test]
fn a_good_override_registry_is_used() {
    let ctx = TestCtx::new();
    let dir = registry_dir_with(&ctx, "zz-custom.json", &family(|_| {}));
    let out = run(
        &ctx,
        &[
            "--registry",
            dir.to_str().unwrap(),
            "registry",
            "list",
            "--json",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["files"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["id"] == "custom-tiny"));
}

/// The shipped tier table changed by `patch`, written as `NAME.json` in `ctx`.
fn tiers_with(ctx: &TestCtx, name: &str, patch: impl Fn(&mut Value)) -> PathBuf {
    let mut v: Value = serde_json::from_str(minerva_setup::registry::EMBEDDED_TIERS).unwrap();
    patch(&mut v);
    let f = ctx.path(format!("{name}.json"));
    std::fs::write(&f, v.to_string()).unwrap();
    f
}

#[test]
fn overridden_tiers_are_checked_against_the_registry() {
    let ctx = TestCtx::new();
    let cases: Vec<(&str, PathBuf, &[&str])> = vec![
        (
            "unknown model id",
            tiers_with(&ctx, "unknown-model-id", |v| {
                v["tiers"][2]["candidates"][1] = "no-such-model-q4_k_m".into()
            }),
            &[
                "tier `gpu-medium`",
                "field `candidates[1]`",
                "unknown model id `no-such-model-q4_k_m`",
            ],
        ),
        (
            "duplicate tier",
            tiers_with(&ctx, "duplicate-tier", |v| {
                v["tiers"][1]["id"] = "gpu-xl".into()
            }),
            &["tier `gpu-xl`", "field `id`", "duplicate"],
        ),
        (
            "context too small",
            tiers_with(&ctx, "context-too-small", |v| {
                v["tiers"][0]["workload"]["context_tokens"] = 100.into()
            }),
            &["tier `gpu-xl`", "field `workload.context_tokens`"],
        ),
        (
            "no users",
            tiers_with(&ctx, "no-users", |v| {
                v["tiers"][0]["workload"]["concurrency"] = 0.into()
            }),
            &[
                "tier `gpu-xl`",
                "field `workload.concurrency`",
                "give 1 to 64",
            ],
        ),
        (
            "missing promise",
            tiers_with(&ctx, "missing-promise", |v| {
                v["tiers"][0].as_object_mut().unwrap().remove("promise");
            }),
            &["field `promise`"],
        ),
        (
            "bad SIMD level",
            tiers_with(&ctx, "bad-simd-level", |v| {
                v["tiers"][4]["requirements"]["min_simd"] = serde_json::json!(["avx3"])
            }),
            &["field `requirements`"],
        ),
    ];
    for (what, f, needles) in cases {
        let p = f.to_str().unwrap();
        let out = run(
            &ctx,
            &[
                "--tiers",
                p,
                "--hardware",
                "tests/fixtures/profiles/xeon-e5-2660v3.json",
                "plan",
            ],
            &[],
        );
        assert_eq!(out.status.code(), Some(7), "{what}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(Path::new(p).file_name().unwrap().to_str().unwrap()),
            "{what}: {err}"
        );
        for n in needles {
            assert!(err.contains(n), "{what}: `{n}` not in: {err}");
        }
    }
}

#[test]
fn a_custom_tier_table_changes_the_plan() {
    // A single lenient tier: the 4 GiB container now gets it.
    let ctx = TestCtx::new();
    let f = tiers_with(&ctx, "only-one-tier", |v| {
        let mut t = v["tiers"][7].clone();
        t["id"] = "only".into();
        t["promise"]["turn_s"] = 600.into();
        t["candidates"] = serde_json::json!(["tinyllama-1.1b-chat-q4_k_m"]);
        v["tiers"] = serde_json::json!([t]);
    });
    let out = run(
        &ctx,
        &[
            "--tiers",
            f.to_str().unwrap(),
            "--hardware",
            "tests/fixtures/profiles/container-4g.json",
            "plan",
            "--json",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["chosen"]["tier"], "only");
    assert_eq!(v["chosen"]["model"], "tinyllama-1.1b-chat-q4_k_m");
}

//! llama.cpp's CPU kernels chosen at run time, on this machine: the build has the x86-64
//! variants cmake/cpu-variants.cmake lists, its ranking is llama.cpp's own score, the variant it runs passed a
//! check in a child process, and a forced low variant (SSE4.2, Sandy Bridge AVX) benchmarks and
//! verifies with its numbers recorded as that variant's.

mod support;

use minerva_setup::gguf::writer::{self, ModelSpec, WeightLayout};
use minerva_setup::gguf::GgmlType;
use minerva_setup::llama::{self, cpu};
use minerva_setup::probe;
use support::TestCtx;

#[test]
fn the_build_has_exactly_the_x86_variants_the_cmake_list_and_the_table_name() {
    let dir = cpu::find_library_dir().expect("the build tree has backend libraries");
    if cfg!(target_arch = "x86_64") {
        let mut built: Vec<&str> = cpu::built_variants().to_vec();
        built.sort();
        assert_eq!(dir.variants, built, "in {}", dir.path.display());
        // The CMake filter's list is the same.
        let cmake = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cmake/cpu-variants.cmake"),
        )
        .unwrap();
        let list = cmake
            .split("PROPERTY MINERVA_CPU_VARIANTS_X86")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .expect("the list in cmake/cpu-variants.cmake");
        let mut listed: Vec<&str> = list.split_whitespace().collect();
        listed.sort();
        assert_eq!(listed, built);
    } else {
        assert!(!dir.variants.is_empty());
    }
}

#[cfg(all(unix, target_arch = "x86_64"))]
#[test]
fn the_ranking_is_llama_cpps_own_score_with_only_os_enabled_features_counted() {
    let dir = cpu::find_library_dir().unwrap();
    let simd = probe::cpu::live_simd();
    for name in &dir.variants {
        let spec = cpu::spec(name).unwrap();
        let ggml = cpu::ggml_score(&dir.path.join(cpu::variant_file_name(name))).unwrap();
        // What the OS enabled is a subset of what CPUID reports: every variant this program
        // would run, llama.cpp's loader would too; and where llama.cpp's loader accepts one, its
        // score is the table's.
        if spec.runs_on(&simd) {
            assert!(ggml > 0, "{name}: runnable here, but llama.cpp scores it 0");
        }
        if ggml > 0 {
            assert_eq!(ggml, spec.score(), "{name}");
        }
    }
}

#[test]
fn the_variant_that_runs_here_is_the_best_one_whose_check_passed() {
    let simd = probe::cpu::live_simd();
    let b = llama::init(&llama::BackendConfig {
        simd: simd.clone(),
        threads: 2,
        ..Default::default()
    })
    .unwrap();
    let v = &b.cpu_variant;
    assert!(v.checked, "{v:?}");
    assert!(!v.forced);
    let dir = cpu::find_library_dir().unwrap();
    let score = |n: &str| cpu::ggml_score(&dir.path.join(cpu::variant_file_name(n)));
    let ranked = cpu::ranked(&dir.variants, &simd, &score);
    // Everything ranked above the one that runs was rejected, each with a reason.
    let pos = ranked.iter().position(|n| *n == v.name).unwrap();
    for better in &ranked[..pos] {
        let r = v
            .rejected
            .iter()
            .find(|r| r.name == *better)
            .unwrap_or_else(|| {
                panic!("{better} is better than {} but not rejected: {v:?}", v.name)
            });
        assert!(!r.reason.is_empty());
    }
    if cfg!(target_arch = "x86_64") && simd.avx2 && simd.fma {
        // At least AVX2 kernels on any machine that has AVX2: no silent fall to a slow variant.
        let spec = cpu::spec(&v.name).unwrap();
        assert!(
            spec.level
                .satisfies(minerva_setup::profile::SimdLevel::Avx2),
            "{v:?}"
        );
    }
}

fn tiny_model(ctx: &TestCtx) -> std::path::PathBuf {
    let model = ctx.path("tiny.gguf");
    writer::write_model(
        &model,
        &ModelSpec::tiny(WeightLayout::Uniform(GgmlType::Q4_K)),
    )
    .unwrap();
    model
}

#[cfg(target_arch = "x86_64")]
#[test]
fn forced_sse42_and_sandybridge_variants_benchmark_and_verify_as_themselves() {
    let ctx = TestCtx::new();
    let model = tiny_model(&ctx);
    for (variant, level) in [("sse42", "sse4.2"), ("sandybridge", "avx")] {
        let out = ctx
            .command()
            .args([
                "--cpu-variant",
                variant,
                "bench",
                "--json",
                "--threads",
                "1",
            ])
            .args([
                "--budget",
                "0.5",
                "--prompt-tokens",
                "32",
                "--gen-tokens",
                "8",
            ])
            .arg("--bench-model")
            .arg(&model)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{variant}: {stderr}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let cv = &v["cpu_variant"];
        assert_eq!(cv["name"], variant, "{v}");
        assert_eq!(cv["simd_level"], level, "{v}");
        assert_eq!(cv["forced"], true, "{v}");
        assert_eq!(cv["checked"], true, "{v}");
        assert!(
            v["quants"][0]["decode_tokens_per_s"]["median"]
                .as_f64()
                .unwrap()
                > 0.0,
            "{v}"
        );
        let saved: serde_json::Value =
            serde_json::from_slice(&std::fs::read(ctx.state_dir().join("bench.json")).unwrap())
                .unwrap();
        assert_eq!(saved["cpu_variant"]["name"], variant);

        let out = ctx
            .command()
            .env("MINERVA_CPU_VARIANT", variant)
            .args(["verify", "--json", "--threads", "1", "--model-file"])
            .arg(&model)
            .args(["--prompt-tokens", "48", "--response-tokens", "8"])
            .output()
            .unwrap();
        // A generated model's answer is noise, which the verification calls a loop (exit 5): the
        // timed turn and its record come first all the same.
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            matches!(out.status.code(), Some(0 | 5)),
            "{variant}: {stderr}"
        );
        let v: serde_json::Value = serde_json::Deserializer::from_slice(&out.stdout)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("{variant}: no JSON: {stderr}"))
            .unwrap();
        assert_eq!(v["report"]["cpu_variant"]["name"], variant, "{v}");
        assert_eq!(v["report"]["cpu_variant"]["forced"], true, "{v}");
        assert!(v["report"]["generated_tokens"].as_u64().unwrap() > 0, "{v}");
    }
}

#[test]
fn a_forced_variant_that_does_not_exist_is_a_usage_error_naming_the_flag() {
    let ctx = TestCtx::new();
    let model = tiny_model(&ctx);
    let out = ctx
        .command()
        .args(["--cpu-variant", "pentium-mmx", "bench", "--threads", "1"])
        .arg("--bench-model")
        .arg(&model)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--cpu-variant pentium-mmx") && stderr.contains("available:"),
        "{stderr}"
    );
    assert!(!ctx.state_dir().join("bench.json").exists());
    // The same refusal, with the same exit code, from the verification.
    let out = ctx
        .command()
        .args([
            "--cpu-variant",
            "pentium-mmx",
            "verify",
            "--threads",
            "1",
            "--model-file",
        ])
        .arg(&model)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--cpu-variant pentium-mmx"));
}

#[test]
fn the_binary_lists_the_libraries_an_installation_needs() {
    let ctx = TestCtx::new();
    let out = ctx.command().arg("__libs").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let names: Vec<String> = text
        .lines()
        .map(|l| {
            let p = std::path::Path::new(l);
            assert!(p.is_file(), "{l} is not a file");
            p.file_name().unwrap().to_string_lossy().into_owned()
        })
        .collect();
    for lib in ["libllama", "libggml.", "libggml-base"] {
        assert!(
            names.iter().any(|n| n.starts_with(lib)),
            "{lib} missing: {names:?}"
        );
    }
    let dir = cpu::find_library_dir().unwrap();
    for v in &dir.variants {
        assert!(
            names.contains(&cpu::variant_file_name(v)),
            "{v} missing: {names:?}"
        );
    }
}

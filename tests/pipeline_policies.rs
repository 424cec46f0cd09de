//! The pipeline's policies, each with one rule: the correction after install → install →
//! verify → verify, the re-tier decision on a fresh machine, the tier a model belongs to, and a
//! failed verification whose record cannot be written.

mod support;

use minerva_setup::fetch::FetchOptions;
use minerva_setup::paths::{PathOverrides, Paths};
use minerva_setup::pipeline::{BenchSource, InstallError, InstallSettings, OnMiss, Run};
use minerva_setup::profile::HardwareProfile;
use minerva_setup::progress::NoProgress;
use minerva_setup::registry;
use minerva_setup::select::{SelectOptions, WorkloadOverride};
use minerva_setup::state::Action;
use serde_json::Value;
use support::world::{bench, llama_turn, Promises, World};
use support::{json, TestCtx};

/// Success, and stdout as its one JSON document.
fn ok(out: &std::process::Output) -> Value {
    support::ok(out);
    json(out)
}

fn relaxed() -> Promises {
    Promises::relaxed(600.0)
}

/// After any sequence of install and verify, `predict MODEL_ID` lands on the last verified turn:
/// every step stores the ratio to the *uncorrected* prediction, so none compounds another.
#[test]
fn predict_lands_on_the_last_verified_turn_after_install_install_verify_verify() {
    let _turn = llama_turn();
    let w = World::new(relaxed());
    // A profile whose figures are far from this machine's: the first ratio is large.
    let hw = w.profile_with_bench("optimistic", 2000.0, 0);
    let hw = hw.to_str().unwrap();
    let predict = |w: &World| -> f64 {
        let p = ok(&w.run(&["--hardware", hw, "--json", "predict", &w.large.id]));
        p["turn_s"].as_f64().unwrap()
    };
    let steps: [&[&str]; 4] = [
        &["install", "--yes"],
        &["install", "--yes"],
        &["verify"],
        &["verify"],
    ];
    for (i, step) in steps.iter().enumerate() {
        let mut args = vec!["--hardware", hw, "--json"];
        args.extend_from_slice(step);
        ok(&w.run(&args));
        let verified = w.config()["verified"]["turn_s"].as_f64().unwrap();
        let predicted = predict(&w);
        let off = (predicted - verified).abs() / verified;
        assert!(
            off < 0.03,
            "after step {} ({}): predict says {predicted:.4} s for a turn verified at {verified:.4} s ({:.1} % off)",
            i + 1,
            step.join(" "),
            off * 100.0
        );
    }
    let state: Value =
        serde_json::from_slice(&std::fs::read(w.state_dir().join("state.json")).unwrap()).unwrap();
    assert!(state["correction_ratio"].as_f64().unwrap() > 0.0);
}

/// `status`, `retier --check` and the Ansible facts give one answer on a fresh machine.
#[test]
fn a_fresh_machine_gets_one_answer_to_is_a_retier_due() {
    let w = World::new(relaxed());
    let hw = w.profile_with_bench("fresh", 1000.0, 0);
    let hw = hw.to_str().unwrap();
    let facts_dir = w.path("facts");
    let st = ok(&w.run(&[
        "--hardware",
        hw,
        "--json",
        "status",
        "--ansible-facts",
        "--facts-dir",
        facts_dir.to_str().unwrap(),
    ]));
    assert_eq!(st["retier_due"], true, "{st:#}");
    assert!(st["retier_reason"].as_str().unwrap().contains("nothing"));
    let facts: Value =
        serde_json::from_slice(&std::fs::read(facts_dir.join("minerva.fact")).unwrap()).unwrap();
    assert_eq!(facts["retier_due"], true);
    let out = w.run(&["--hardware", hw, "retier", "--check"]);
    assert_eq!(out.status.code(), Some(10), "{out:?}");
}

/// A model two tiers list: `predict MODEL_ID` and `plan --model MODEL_ID` take the same tier
/// (the first whose requirements hold), so they predict the same workload.
#[test]
fn predict_and_plan_take_the_same_tier_for_a_model() {
    let ctx = TestCtx::new();
    let mut tiers: Value =
        serde_json::from_str(&std::fs::read_to_string("tiers.json").unwrap()).unwrap();
    let model = "llama-3.1-8b-instruct-q4_k_m";
    // The GPU tier that lists the model first gets a workload of its own.
    for t in tiers["tiers"].as_array_mut().unwrap() {
        if t["id"] == "gpu-light" {
            t["workload"]["prompt_tokens"] = Value::from(1000);
        }
    }
    let tiers_file = ctx.path("tiers.json");
    std::fs::write(&tiers_file, serde_json::to_vec(&tiers).unwrap()).unwrap();
    // A server without a GPU: gpu-light's requirements do not hold, cpu-heavy's do.
    let run = |args: &[&str]| {
        ctx.command()
            .arg("--tiers")
            .arg(&tiers_file)
            .arg("--hardware")
            .arg("tests/fixtures/profiles/xeon-e5-2660v3.json")
            .arg("--json")
            .args(args)
            .output()
            .unwrap()
    };
    let plan = ok(&run(&["plan", "--model", model]));
    assert_eq!(plan["chosen"]["tier"], "cpu-heavy", "{:#}", plan["chosen"]);
    let planned = &plan["chosen"]["prediction"];
    let predicted = ok(&run(&["predict", model]));
    assert_eq!(predicted["workload"], planned["workload"]);
    assert_eq!(predicted["workload"]["prompt_tokens"], 550);
    assert_eq!(predicted["turn_s"], planned["turn_s"]);
}

/// A verification that fails during an install is recorded in the state; when that record
/// cannot be written, the error says so instead of dropping it.
#[test]
fn a_failed_verification_that_cannot_be_recorded_says_so() {
    let _turn = llama_turn();
    let mut w = World::new(relaxed());
    let good = std::fs::read(&w.large.path).unwrap();
    // Published truncated: the download matches its checksum, the verification fails.
    w.republish("large", &good[..good.len() / 2]);
    let hw = HardwareProfile::from_file(&w.profile_with_bench("fast", 1000.0, 0)).unwrap();
    let paths = Paths::resolve(&PathOverrides {
        config_dir: Some(w.ctx.config_dir()),
        state_dir: Some(w.state_dir()),
        models_dir: Some(w.models_dir()),
        data_dir: Some(w.ctx.data_dir()),
    });
    let reg = registry::load_registry_dir(&w.registry_dir()).unwrap();
    let tiers = registry::load_tiers_file(&w.tiers_file()).unwrap();
    let settings = InstallSettings {
        paths: paths.clone(),
        registry: reg,
        tiers,
        select: SelectOptions {
            max_latency_s: None,
            tier: None,
            model: None,
            force: false,
            workload: WorkloadOverride::default(),
            correction_ratio: None,
            components: None,
            below_tier: None,
        },
        bench: BenchSource::Given(Box::new(bench(1000.0)), "test".into()),
        endpoint: w.server.url(""),
        fetch: FetchOptions {
            dest_dir: paths.models_dir.clone(),
            retries: 0,
            ..FetchOptions::default()
        },
        threads: None,
        gpu: false,
        cpu_variant: None,
        on_miss: OnMiss::Fail,
        require: Vec::new(),
        prune: false,
        action: Action::Install,
    };
    let run = Run::start(&hw, &settings, &NoProgress).unwrap();
    // The state file's place is taken by a directory: its atomic rename must fail.
    std::fs::create_dir_all(paths.state_dir.join("state.json").join("in-the-way")).unwrap();
    match run.finish(&NoProgress) {
        Err(e @ InstallError::Verify { .. }) => {
            let InstallError::Verify { unrecorded, .. } = &e else {
                unreachable!()
            };
            assert!(unrecorded.is_some(), "{e}");
            assert!(e.to_string().contains("could not be recorded"), "{e}");
        }
        Err(other) => panic!("expected a verification error, got {other}"),
        Ok(_) => panic!("a truncated model was installed"),
    }
    assert!(!paths.config_dir.join("config.json").exists());
}

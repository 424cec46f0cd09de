//! End to end through the built binary: a generated model published in a test registry, served
//! from a loopback server, installed, verified, re-tiered and reported. Real llama.cpp, real HTTP,
//! real files.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::world::{llama_turn, Promises, World};
use support::{exits, json, ok};

/// Generous promises: whatever this machine is, the tiny models keep them.
fn relaxed() -> Promises {
    Promises::relaxed(60.0)
}

#[test]
fn unattended_install_probes_benchmarks_plans_downloads_verifies_and_writes_the_config() {
    let _turn = llama_turn();
    let w = World::new(relaxed());
    let bench_model = w.large.path.to_str().unwrap().to_string();
    let out = w.run(&["--json", "install", "--yes", "--bench-model", &bench_model]);
    ok(&out);
    let report = json(&out);
    assert_eq!(report["action"], "install");
    assert_eq!(report["attempts"].as_array().unwrap().len(), 1);

    let cfg = w.config();
    assert_eq!(cfg["tier"], "test-large");
    assert_eq!(cfg["model"]["id"], w.large.id);
    assert_eq!(cfg["model"]["sha256"], w.large.sha256);
    let installed = w.models_dir().join(&w.large.filename);
    assert_eq!(cfg["model"]["path"], installed.to_str().unwrap());
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(&w.large.path).unwrap()
    );
    // Measured figures, not the promise, are recorded as verified.
    let v = &cfg["verified"];
    assert!(v["turn_s"].as_f64().unwrap() > 0.0);
    assert!(v["decode_tokens_per_s"].as_f64().unwrap() > 0.0);
    assert!(v["load_s"].as_f64().unwrap() > 0.0);
    assert_eq!(cfg["promise"]["turn_s"], 60.0);
    assert!(cfg["llama_server"]["command"]
        .as_str()
        .unwrap()
        .contains(installed.to_str().unwrap()));
    // The benchmark really ran on this machine and was stored.
    let bench: Value =
        serde_json::from_slice(&std::fs::read(w.state_dir().join("bench.json")).unwrap()).unwrap();
    assert!(
        bench["quants"][0]["decode_tokens_per_s"]["median"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    // Only the chosen model was downloaded.
    let served: Vec<String> = w.server.requests().into_iter().map(|r| r.path).collect();
    assert!(
        served.iter().all(|p| p.ends_with(&w.large.filename)),
        "{served:?}"
    );

    // status agrees, and the hardware is unchanged.
    let st = json(&w.run(&["--json", "status"]));
    assert_eq!(st["installed"], true);
    assert_eq!(st["tier"], "test-large");
    assert_eq!(st["retier_due"], false);
    assert_eq!(st["model_file_present"], true);

    // Ansible facts carry the tier and the verified latency.
    let facts_dir = w.path("facts");
    let out = w.run(&[
        "status",
        "--ansible-facts",
        "--facts-dir",
        facts_dir.to_str().unwrap(),
    ]);
    ok(&out);
    let facts: Value =
        serde_json::from_slice(&std::fs::read(facts_dir.join("minerva.fact")).unwrap()).unwrap();
    assert_eq!(facts["tier"], "test-large");
    assert_eq!(facts["verified_turn_s"], cfg["verified"]["turn_s"]);
}

#[test]
fn without_a_terminal_and_without_yes_nothing_waits_on_a_prompt() {
    let w = World::new(relaxed());
    for args in [&["install"][..], &[][..], &["retier"][..]] {
        let start = Instant::now();
        let out = w.run(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{args:?} took {:?}",
            start.elapsed()
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--yes"),
            "{args:?}"
        );
    }
    assert!(!w.config_file().exists());
    assert_eq!(w.server.request_count(), 0);
}

#[test]
fn a_second_concurrent_run_gets_the_lock_exit_code() {
    let w = World::new(relaxed());
    std::fs::create_dir_all(w.state_dir()).unwrap();
    let _held = minerva_setup::state::RunLock::acquire(&w.state_dir()).unwrap();
    let hw = w.profile_with_bench("fast", 1000.0, 0);
    let out = w.run(&["--hardware", hw.to_str().unwrap(), "install", "--yes"]);
    exits(&out, 6);
    assert!(String::from_utf8_lossy(&out.stderr).contains("lock"));
    assert_eq!(w.server.request_count(), 0);
}

#[test]
fn on_miss_downgrade_moves_one_tier_down_and_fail_exits_5_leaving_the_config() {
    let _turn = llama_turn();
    // The profile claims an absurdly fast machine: the plan promises test-large a 1 ms turn that
    // no real run keeps.
    let w = World::new(Promises {
        large_turn_s: 0.001,
        small_turn_s: 60.0,
    });
    let liar = w.profile_with_bench("optimistic", 1.0e7, 0);
    let hw = liar.to_str().unwrap();

    let out = w.run(&[
        "--hardware",
        hw,
        "--json",
        "install",
        "--yes",
        "--on-miss",
        "fail",
    ]);
    exits(&out, 5);
    assert!(json(&out)["error"]
        .as_str()
        .unwrap()
        .contains("missed its promise"));
    assert!(
        !w.config_file().exists(),
        "a missed verification writes no config"
    );
    // The miss was recorded: its measured/predicted ratio corrects the next plan on this machine,
    // which would now skip test-large from the start. Forget it to see the downgrade itself.
    let state_file = w.state_dir().join("state.json");
    let state: Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    assert!(
        state["correction_ratio"].as_f64().unwrap() > 10.0,
        "{}",
        state["correction_ratio"]
    );
    let out = w.run(&["--hardware", hw, "--json", "plan"]);
    ok(&out);
    assert_eq!(
        json(&out)["chosen"]["tier"],
        "test-small",
        "the stored correction is applied"
    );
    std::fs::remove_file(&state_file).unwrap();

    let out = w.run(&[
        "--hardware",
        hw,
        "--json",
        "install",
        "--yes",
        "--on-miss",
        "downgrade",
    ]);
    ok(&out);
    let report = json(&out);
    let attempts = report["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    assert_eq!(attempts[0]["tier"], "test-large");
    assert!(attempts[0]["outcome"]
        .as_str()
        .unwrap()
        .starts_with("missed"));
    assert_eq!(attempts[1]["tier"], "test-small");
    assert_eq!(w.config()["tier"], "test-small");
    // The measured/predicted ratio is stored to correct later predictions on this machine.
    let state: Value =
        serde_json::from_slice(&std::fs::read(w.state_dir().join("state.json")).unwrap()).unwrap();
    assert!(
        state["correction_ratio"].as_f64().unwrap() > 10.0,
        "{}",
        state["correction_ratio"]
    );

    // verify with an impossible budget and --on-miss fail: exit 5, config byte-for-byte unchanged.
    let before = std::fs::read(w.config_file()).unwrap();
    let out = w.run(&[
        "--hardware",
        hw,
        "verify",
        "--max-latency",
        "0.000001",
        "--on-miss",
        "fail",
    ]);
    exits(&out, 5);
    assert_eq!(std::fs::read(w.config_file()).unwrap(), before);
}

#[test]
fn capabilities_are_recorded_everywhere_and_a_looping_answer_or_a_required_tool_call_misses() {
    let _turn = llama_turn();
    let w = World::new(relaxed());
    let profile = w.profile_with_bench("p", 1000.0, 0);
    let hw = profile.to_str().unwrap();
    ok(&w.run(&["--hardware", hw, "--json", "install", "--yes"]));

    // The config carries what the checks found: random weights do not write a tool call, the
    // grammar makes them.
    let cfg = w.config();
    let caps = &cfg["capabilities"];
    assert_eq!(caps["chat_template"]["source"], "gguf", "{caps:#}");
    assert_eq!(caps["stopping"]["budget_tokens"], 8);
    assert_eq!(caps["tool_call"]["constrained"]["matches_schema"], true);
    assert_eq!(caps["tool_call"]["unconstrained"]["matches_schema"], false);
    assert!(caps["checks_s"].as_f64().unwrap() > 0.0);
    // status (JSON and human) and the Ansible facts show it.
    let st = json(&w.run(&["--hardware", hw, "--json", "status"]));
    assert_eq!(st["capabilities"], *caps);
    let human = ok(&w.run(&["--hardware", hw, "status"]));
    assert!(human.contains("Tool call get_disk_usage("), "{human}");
    assert!(human.contains("grammar-constrained matches"), "{human}");
    let facts_dir = w.path("facts");
    let facts_arg = facts_dir.to_str().unwrap();
    ok(&w.run(&[
        "--hardware",
        hw,
        "status",
        "--ansible-facts",
        "--facts-dir",
        facts_arg,
    ]));
    let facts: Value =
        serde_json::from_slice(&std::fs::read(facts_dir.join("minerva.fact")).unwrap()).unwrap();
    assert_eq!(facts["capabilities"]["constrained_tool_call_matches"], true);
    assert_eq!(facts["capabilities"]["tool_call_matches"], false);
    assert_eq!(facts["capabilities"]["chat_template"], "gguf");

    // A long answer loops under greedy decoding: degenerate, and a miss that `--on-miss fail`
    // turns into the verification exit code, config untouched, however fast the turn was.
    let before = std::fs::read(w.config_file()).unwrap();
    let out = w.run(&[
        "--hardware",
        hw,
        "verify",
        "--response-tokens",
        "128",
        "--on-miss",
        "fail",
    ]);
    exits(&out, 5);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Answer    DEGENERATE: loops"), "{text}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the answer loops"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(w.config_file()).unwrap(), before);

    // The tool call fails nothing by default, but does with --require tool-call.
    ok(&w.run(&["--hardware", hw, "verify", "--on-miss", "fail"]));
    misses_a_required_tool_call(&w, &["--hardware", hw, "verify"]);

    // A tier that declares it in tiers.json is held to it by install too, and installs nothing.
    let mut tiers: Value = serde_json::from_slice(&std::fs::read(w.tiers_file()).unwrap()).unwrap();
    for t in tiers["tiers"].as_array_mut().unwrap() {
        t["requires"] = serde_json::json!(["tool-call"]);
    }
    std::fs::write(w.tiers_file(), serde_json::to_vec(&tiers).unwrap()).unwrap();
    std::fs::remove_file(w.config_file()).unwrap();
    let out = w.run(&[
        "--hardware",
        hw,
        "--json",
        "install",
        "--yes",
        "--on-miss",
        "fail",
    ]);
    exits(&out, 5);
    let err = json(&out)["error"].as_str().unwrap().to_string();
    assert!(err.contains("`tool-call` is required"), "{err}");
    assert!(!w.config_file().exists());
}

#[test]
fn broken_models_fail_verification_clearly_and_leave_the_config() {
    let _turn = llama_turn();
    let w = World::new(relaxed());
    let hw = w.profile_with_bench("fast", 1000.0, 0);
    let hw = hw.to_str().unwrap();
    ok(&w.run(&["--hardware", hw, "install", "--yes"]));
    let before = std::fs::read(w.config_file()).unwrap();
    let good = std::fs::read(&w.large.path).unwrap();

    let truncated = w.path("truncated.gguf");
    std::fs::write(&truncated, &good[..good.len() / 2]).unwrap();
    let wrong_magic = w.path("wrong-magic.gguf");
    let mut bytes = good.clone();
    bytes[..4].copy_from_slice(b"GGML");
    std::fs::write(&wrong_magic, &bytes).unwrap();
    for (f, expect) in [(&truncated, "truncated"), (&wrong_magic, "magic")] {
        let out = w.run(&[
            "--hardware",
            hw,
            "verify",
            "--model-file",
            f.to_str().unwrap(),
        ]);
        exits(&out, 5);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(f.file_name().unwrap().to_str().unwrap()),
            "{err}"
        );
        assert!(err.to_lowercase().contains(expect), "{err}");
    }
    // The installed model itself damaged on disk: verify fails and the config stays.
    let installed = w.models_dir().join(&w.large.filename);
    std::fs::write(&installed, &good[..good.len() / 3]).unwrap();
    let out = w.run(&["--hardware", hw, "verify"]);
    exits(&out, 5);
    assert_eq!(std::fs::read(w.config_file()).unwrap(), before);
}

#[test]
fn retier_is_a_no_op_when_unchanged_and_switches_tier_after_a_hardware_change() {
    let _turn = llama_turn();
    // test-large promises 30 s per turn: the fast profile predicts it keeps that, the slow one (a
    // machine that lost speed and gained RAM) predicts about 100 s. Both promises are loose enough
    // for the real verification of a tiny model on a busy machine.
    let mut w = World::new(Promises {
        large_turn_s: 30.0,
        small_turn_s: 600.0,
    });
    let fast = w.profile_with_bench("fast", 5000.0, 0);
    ok(&w.run(&["--hardware", fast.to_str().unwrap(), "install", "--yes"]));
    assert_eq!(w.config()["tier"], "test-large");
    let bench_before = std::fs::metadata(w.state_dir().join("state.json"))
        .unwrap()
        .modified()
        .unwrap();

    // Unchanged: a no-op, fast, and --check says so with exit 0.
    let start = Instant::now();
    let out = w.run(&[
        "--hardware",
        fast.to_str().unwrap(),
        "--json",
        "retier",
        "--yes",
    ]);
    ok(&out);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(json(&out)["due"], false);
    assert_eq!(
        std::fs::metadata(w.state_dir().join("state.json"))
            .unwrap()
            .modified()
            .unwrap(),
        bench_before
    );
    ok(&w.run(&["--hardware", fast.to_str().unwrap(), "retier", "--check"]));

    let slow = w.profile_with_bench("slow", 0.1, 64);
    let out = w.run(&["--hardware", slow.to_str().unwrap(), "retier", "--check"]);
    assert_eq!(out.status.code(), Some(10));
    let st = json(&w.run(&["--hardware", slow.to_str().unwrap(), "--json", "status"]));
    assert_eq!(st["retier_due"], true);

    // A failed verification during the re-tier leaves the previous config and model active: the
    // small model is published truncated (its checksum matches what is served, so the download
    // succeeds and the verification is what fails).
    let good_small = std::fs::read(&w.small.path).unwrap();
    w.republish("small", &good_small[..good_small.len() / 2]);
    let before = std::fs::read(w.config_file()).unwrap();
    let out = w.run(&["--hardware", slow.to_str().unwrap(), "retier", "--yes"]);
    exits(&out, 5);
    assert_eq!(std::fs::read(w.config_file()).unwrap(), before);
    assert!(w.models_dir().join(&w.large.filename).exists());

    // Fixed upstream: the re-tier switches to test-small, and the old model stays (no --prune).
    w.republish("small", &good_small);
    std::fs::remove_file(w.models_dir().join(&w.small.filename)).unwrap();
    let out = w.run(&[
        "--hardware",
        slow.to_str().unwrap(),
        "--json",
        "retier",
        "--yes",
    ]);
    ok(&out);
    let r = json(&out);
    assert_eq!(r["due"], true);
    assert!(
        r["reason"].as_str().unwrap().contains("RAM"),
        "{}",
        r["reason"]
    );
    assert_eq!(w.config()["tier"], "test-small");
    assert!(
        w.models_dir().join(&w.large.filename).exists(),
        "the old model stays without --prune"
    );

    // And with the hardware matching again, the re-tier is done.
    ok(&w.run(&["--hardware", slow.to_str().unwrap(), "retier", "--check"]));
}

#[test]
fn download_model_id_fetches_exactly_the_registry_file_and_refuses_unknown_ids() {
    let w = World::new(relaxed());
    let out = w.run(&["--json", "download", &w.small.id]);
    ok(&out);
    let r = json(&out);
    assert_eq!(r["sha256"], w.small.sha256);
    let got = std::fs::read(w.models_dir().join(&w.small.filename)).unwrap();
    assert_eq!(got, std::fs::read(&w.small.path).unwrap());
    assert_eq!(w.server.request_count(), 1);

    let out = w.run(&["download", "no-such-model"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-model"));
    // A model id and an explicit checksum are two different ways to ask: refused together.
    let out = w.run(&["download", &w.small.id, "--sha256", &w.small.sha256]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_install_for_two_users_verifies_both_at_once_and_gives_the_server_two_slots() {
    let _turn = llama_turn();
    let w = World::new(relaxed());
    let hw = w.profile_with_bench("fast", 1000.0, 0);
    let out = w.run(&[
        "--hardware",
        hw.to_str().unwrap(),
        "--json",
        "install",
        "--yes",
        "--concurrency",
        "2",
    ]);
    ok(&out);
    let report = json(&out);
    // Two conversations ran at once in one context, two turns each, and were measured.
    let verify = &report["attempts"][0]["verify"];
    assert_eq!(verify["settings"]["concurrency"], 2);
    let users = &verify["concurrency"];
    assert_eq!(users["users"], 2, "{verify}");
    assert_eq!(users["turns"], 4, "{verify}");
    let p95 = users["turn_p95_s"].as_f64().unwrap();
    assert!(p95 > 0.0 && p95 >= users["turn_p50_s"].as_f64().unwrap());
    assert_eq!(verify["turn_s"], users["turn_p95_s"], "held to the p95");
    assert!(users["aggregate_tokens_per_s"].as_f64().unwrap() > 0.0);
    // The plan predicted for two users too.
    let predicted = &report["plan"]["chosen"]["prediction"];
    assert_eq!(predicted["workload"]["concurrency"], 2);
    assert_eq!(predicted["concurrency"]["users"], 2);

    // The config: 256 tokens of context per conversation, 512 for llama-server's two slots.
    let cfg = w.config();
    assert_eq!(cfg["concurrency"], 2);
    assert_eq!(cfg["context_tokens"], 256);
    let argv: Vec<&str> = cfg["llama_server"]["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let after = |flag: &str| argv[argv.iter().position(|a| *a == flag).unwrap() + 1];
    assert_eq!(after("--parallel"), "2", "{argv:?}");
    assert_eq!(after("--ctx-size"), "512", "{argv:?}");
    let command = cfg["llama_server"]["command"].as_str().unwrap();
    assert!(command.contains("--ctx-size 512 --parallel 2"), "{command}");

    // The capability checks ran on the first user's answer, as for one user, and a required
    // capability is held to with several users too.
    let caps = &verify["capabilities"];
    assert!(
        caps["stopping"]["budget_tokens"].as_u64().unwrap() > 0,
        "{verify}"
    );
    assert!(caps["answer"]["kind"].is_string(), "{caps}");
    assert!(caps["chat_template"]["source"].is_string(), "{caps}");
    assert!(caps["tool_call"].is_object(), "{caps}");
    assert_eq!(cfg["capabilities"], *caps);
    misses_a_required_tool_call(
        &w,
        &[
            "--hardware",
            hw.to_str().unwrap(),
            "verify",
            "--concurrency",
            "2",
        ],
    );
}

/// `args` with `--require tool-call --on-miss fail` exits 5 and says the tool call was required
/// (the generated test models never produce a matching tool call on their own).
fn misses_a_required_tool_call(w: &World, args: &[&str]) {
    let mut all = args.to_vec();
    all.extend(["--require", "tool-call", "--on-miss", "fail"]);
    let out = w.run(&all);
    exits(&out, 5);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`tool-call` is required"), "{err}");
}

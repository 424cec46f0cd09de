//! The CLI's contract: clap definitions are consistent, errors carry the documented exit codes,
//! `--json` always yields one JSON document, and the installer works without root.

mod support;

use std::path::Path;
use std::process::Command;

use clap::CommandFactory;
use support::TestCtx;

#[test]
fn clap_definitions_are_consistent() {
    minerva_setup::cli::Cli::command().debug_assert();
}

#[test]
fn help_lists_exit_codes_and_version_matches_the_crate() {
    let ctx = TestCtx::new();
    let out = ctx.run(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("3 no tier fits"), "{help}");
    assert!(help.contains("6 lock held"), "{help}");
    let out = ctx.run(&["--version"]);
    let v = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        v.trim(),
        format!("minerva-setup {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let out = TestCtx::new().run(&["--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));
}

#[test]
fn a_bad_hardware_file_names_the_file_and_exits_7_with_one_json_document() {
    let ctx = TestCtx::new();
    let f = ctx.path("broken-profile.json");
    std::fs::write(&f, r#"{"schema_version": 1, "cpu": {"arch": "x86_64"}}"#).unwrap();
    let out = ctx
        .command()
        .args(["--json", "probe", "--hardware"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    let msg = doc["error"].as_str().unwrap();
    assert!(msg.contains("broken-profile.json"), "{msg}");
    assert!(msg.contains("missing field"), "{msg}");
    assert_eq!(doc["exit_code"], 7);
    assert!(String::from_utf8_lossy(&out.stderr).contains("hint:"));
}

#[test]
fn a_closed_stdout_in_the_error_path_is_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let tiers = dir.path().join("BAD.json");
    std::fs::write(&tiers, b"{ not a tier table").unwrap();
    let profile =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/profiles/tiny-1g.json");
    let args = |c: &mut Command| {
        c.arg("--json")
            .arg("--hardware")
            .arg(&profile)
            .arg("--tiers")
            .arg(&tiers)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .args(["plan", "--no-bench"]);
    };
    let ctx = TestCtx::new();
    let mut open = ctx.command();
    args(&mut open);
    let expected = open.output().unwrap();
    assert_eq!(expected.status.code(), Some(7), "{expected:?}");

    let mut closed = ctx.command();
    args(&mut closed);
    let mut child = closed
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The read end is gone before the child gets to write its JSON error document.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), expected.status.code(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("BAD.json"), "{stderr}");
}

#[test]
fn fixture_profiles_load_and_round_trip_through_probe_json() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/profiles");
    let ctx = TestCtx::new();
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let out = ctx
            .command()
            .args(["--json", "probe", "--hardware"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let p: minerva_setup::profile::HardwareProfile =
            serde_json::from_slice(&out.stdout).unwrap();
        let direct = minerva_setup::profile::HardwareProfile::from_file(&path).unwrap();
        assert_eq!(p, direct, "{}", path.display());
        assert_eq!(p.fingerprint.len(), 32);
        assert!(p.memory.usable_bytes <= p.memory.total_bytes);
        seen += 1;
    }
    assert!(
        seen >= 6,
        "expected the six reference profiles, found {seen}"
    );
    let c =
        minerva_setup::profile::HardwareProfile::from_file(&dir.join("container-4g.json")).unwrap();
    assert_eq!(
        c.memory.usable_bytes,
        4 << 30,
        "container usable memory is its cgroup limit"
    );
}

#[test]
fn install_sh_installs_into_a_temporary_prefix_without_root_and_is_idempotent() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("installers/install.sh");
    if Command::new("shellcheck").arg("--version").output().is_ok() {
        let sc = Command::new("shellcheck").arg(&script).output().unwrap();
        assert!(
            sc.status.success(),
            "shellcheck: {}",
            String::from_utf8_lossy(&sc.stdout)
        );
    } else {
        eprintln!("shellcheck not installed: lint step skipped (.ci/run installs it)");
    }
    let ctx = TestCtx::new();
    let prefix = ctx.path("prefix");
    std::fs::create_dir_all(&prefix).unwrap();
    for _ in 0..2 {
        let out = ctx
            .command_for("bash")
            .arg(&script)
            .args(["--no-apt", "--prefix"])
            .arg(&prefix)
            .arg("--binary")
            .arg(support::BIN)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "install.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let installed = prefix.join("bin/minerva-setup");
    let v = ctx
        .command_for(&installed)
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("minerva-setup "));
    // llama.cpp's libraries went next to the binary, and the installed binary uses those: its
    // own list names only files below the prefix, the CPU backend variants among them.
    let libdir = prefix.join("lib/minerva-setup");
    let libs = ctx
        .command_for(&installed)
        .env_remove("LD_LIBRARY_PATH")
        .arg("__libs")
        .output()
        .unwrap();
    assert!(
        libs.status.success(),
        "{}",
        String::from_utf8_lossy(&libs.stderr)
    );
    let libs = String::from_utf8(libs.stdout).unwrap();
    let listed: Vec<&Path> = libs.lines().map(Path::new).collect();
    assert!(listed.len() >= 4, "{libs}");
    for l in &listed {
        assert!(
            l.canonicalize()
                .unwrap()
                .starts_with(libdir.canonicalize().unwrap()),
            "{} is not below {}",
            l.display(),
            libdir.display()
        );
    }
    assert!(
        libs.contains("libggml-cpu-") && libs.contains("libllama"),
        "{libs}"
    );
    // The installed binary benchmarks from another working directory, with no loader path and
    // no library directory given: llama.cpp and its CPU kernels come from below the prefix.
    let elsewhere = ctx.path("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let bench = ctx
        .command_for(&installed)
        .current_dir(&elsewhere)
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("MINERVA_LIB_DIR")
        .args([
            "--no-progress",
            "bench",
            "--json",
            "--no-save",
            "--types",
            "Q4_K",
            "--threads",
            "1",
            "--budget",
            "1",
        ])
        .output()
        .unwrap();
    assert!(
        bench.status.success(),
        "installed bench: {}",
        String::from_utf8_lossy(&bench.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&bench.stdout).unwrap();
    let variant = doc["cpu_variant"]["name"].as_str().unwrap();
    assert!(
        libdir.join(format!("libggml-cpu-{variant}.so")).is_file(),
        "{variant} is not a library below the prefix"
    );
    assert!(
        doc["quants"][0]["decode_tokens_per_s"]["median"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    let bash =
        std::fs::read_to_string(prefix.join("share/bash-completion/completions/minerva-setup"))
            .unwrap();
    assert!(
        bash.contains("--hardware"),
        "bash completion covers the real flags"
    );
    let man = std::fs::read_to_string(prefix.join("share/man/man1/minerva-setup.1")).unwrap();
    assert!(man.contains(".TH minerva-setup 1"));
    assert!(prefix
        .join("share/zsh/site-functions/_minerva-setup")
        .is_file());
    assert!(prefix
        .join("share/fish/vendor_completions.d/minerva-setup.fish")
        .is_file());
    let help = ctx
        .command_for("bash")
        .arg(&script)
        .arg("--help")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("--prefix DIR"));
}

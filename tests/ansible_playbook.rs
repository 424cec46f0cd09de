//! The example playbook `installers/ansible/site.yml`: it passes `ansible-playbook --syntax-check`
//! and runs against localhost with the local connection, without root and without the network:
//! the binary is copied into a temporary prefix, installs (or only plans) from the test world's
//! registry and loopback mirror, writes local facts into a temporary facts directory, and the
//! plan is collected into a temporary plans directory.
//!
//! `ansible-playbook` comes from PATH (`.ci/run` installs ansible-core into a venv). Without it
//! the tests are skipped with a note, except under CI, where that is a failure.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use support::world::{llama_turn, Promises, World};
use support::{ok, TestCtx};

fn playbook() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("installers/ansible/site.yml")
}

/// `ansible-playbook` on PATH; `None` (after a note) when it is missing outside CI.
fn ansible_playbook() -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("ansible-playbook"))
        .find(|p| p.is_file());
    if found.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!("ansible-playbook is not on PATH; .ci/run installs ansible-core into .ci/venv and puts its bin on PATH");
        }
        eprintln!("note: ansible-playbook is not on PATH; skipping the playbook test (pip install ansible-core)");
    }
    found
}

/// `ansible-playbook` with the environment of `ctx`, and its home, temporary files and config
/// confined to `scratch`.
fn ansible(ctx: &TestCtx, bin: &Path, scratch: &Path) -> Command {
    let mut c = ctx.command_for(bin);
    for d in ["home", "local-tmp", "remote-tmp"] {
        std::fs::create_dir_all(scratch.join(d)).unwrap();
    }
    c.current_dir(scratch)
        .env("ANSIBLE_HOME", scratch.join("home"))
        .env("ANSIBLE_LOCAL_TEMP", scratch.join("local-tmp"))
        .env("ANSIBLE_REMOTE_TEMP", scratch.join("remote-tmp"))
        // No ansible.cfg from the machine or the developer.
        .env("ANSIBLE_CONFIG", scratch.join("none.cfg"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
        // Ansible refuses to run without a UTF-8 locale; C.UTF-8 is always there on glibc.
        .env("LC_ALL", "C.UTF-8");
    c
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON ({e}):\n{text}", path.display()))
}

#[test]
fn the_playbook_passes_syntax_check() {
    let Some(bin) = ansible_playbook() else {
        return;
    };
    let ctx = TestCtx::new();
    let out = ansible(&ctx, &bin, &ctx.path("ansible"))
        .args(["--syntax-check", "-i", "localhost,"])
        .arg(playbook())
        .output()
        .unwrap();
    ok(&out);
}

/// Run the playbook against localhost for `w` with the extra variables `vars` (plus the test
/// world's directories); returns the scratch paths and ansible's output.
struct Fleet {
    prefix: PathBuf,
    facts_dir: PathBuf,
    plans_dir: PathBuf,
    stdout: String,
}

fn run_playbook(bin: &Path, w: &World, install: bool) -> Fleet {
    let scratch = w.path("ansible");
    let prefix = w.path("prefix");
    let facts_dir = w.path("facts.d");
    let plans_dir = w.path("plans");
    let hw = w.profile_with_bench("fast", 1000.0, 0);
    let global = format!(
        "--hardware {} --data-dir {} --config-dir {} --registry {} --tiers {}",
        hw.display(),
        w.ctx.data_dir().display(),
        w.ctx.config_dir().display(),
        w.registry_dir().display(),
        w.tiers_file().display()
    );
    // The libraries the binary runs with, gathered as an installation lays them out.
    let libs = w.path("libs");
    std::fs::create_dir_all(&libs).unwrap();
    let list = std::process::Command::new(support::BIN)
        .arg("__libs")
        .output()
        .unwrap();
    assert!(list.status.success());
    for l in String::from_utf8(list.stdout).unwrap().lines() {
        let l = Path::new(l);
        std::fs::copy(l, libs.join(l.file_name().unwrap())).unwrap();
    }
    let vars = json!({
        "minerva_binary": support::BIN,
        "minerva_libs": libs,
        "minerva_prefix": prefix,
        "minerva_install": install,
        "minerva_global_args": global,
        "minerva_args": "--max-latency 30",
        "minerva_environment": {
            "MINERVA_MIRROR": w.server.url(""),
            "MINERVA_RETRY_BASE_MS": "10",
            "HF_HOME": w.ctx.hf_home(),
        },
        "minerva_facts_dir": facts_dir,
        "minerva_plans_dir": plans_dir,
    });
    std::fs::create_dir_all(&scratch).unwrap();
    let vars_file = scratch.join("vars.json");
    std::fs::write(&vars_file, serde_json::to_vec_pretty(&vars).unwrap()).unwrap();
    let out = ansible(&w.ctx, bin, &scratch)
        .args(["-i", "localhost,", "-c", "local"])
        // Modules run with ansible's own Python: no interpreter discovery, no warning.
        .args([
            "-e",
            "ansible_python_interpreter={{ ansible_playbook_python }}",
        ])
        .arg("-e")
        .arg(format!("@{}", vars_file.display()))
        .arg(playbook())
        .output()
        .unwrap();
    let stdout = ok(&out);
    Fleet {
        prefix,
        facts_dir,
        plans_dir,
        stdout,
    }
}

#[test]
fn the_playbook_installs_on_localhost_and_gathers_facts_and_the_plan() {
    let Some(bin) = ansible_playbook() else {
        return;
    };
    let _turn = llama_turn();
    let w = World::new(Promises {
        large_turn_s: 60.0,
        small_turn_s: 60.0,
    });
    let fleet = run_playbook(&bin, &w, true);

    let installed = fleet.prefix.join("bin/minerva-setup");
    assert!(installed.is_file(), "the binary was copied into the prefix");
    let copied: Vec<String> = std::fs::read_dir(fleet.prefix.join("lib/minerva-setup"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        copied.iter().any(|n| n.starts_with("libggml-cpu-"))
            && copied.iter().any(|n| n.starts_with("libllama")),
        "the libraries were copied next to it: {copied:?}"
    );
    let facts = read_json(&fleet.facts_dir.join("minerva.fact"));
    for key in [
        "installed",
        "tier",
        "model",
        "planned_turn_s",
        "verified_turn_s",
        "retier_due",
        "fingerprint",
        "hardware",
    ] {
        assert!(facts.get(key).is_some(), "facts lack {key:?}: {facts}");
    }
    assert_eq!(facts["installed"], true);
    assert_eq!(facts["tier"], "test-large");
    assert_eq!(facts["model"], w.large.id);
    assert!(facts["verified_turn_s"].as_f64().unwrap() > 0.0);

    let report = read_json(&fleet.plans_dir.join("localhost.json"));
    assert_eq!(report["plan"]["chosen"]["tier"], "test-large", "{report}");
    assert_eq!(report["config"]["tier"], "test-large");
    assert_eq!(w.config()["tier"], "test-large");

    assert!(
        fleet
            .stdout
            .contains("installed tier test-large, model tiny-large"),
        "the summary names the tier:\n{}",
        fleet.stdout
    );
}

#[test]
fn the_playbook_plans_only_when_asked_and_downloads_nothing() {
    let Some(bin) = ansible_playbook() else {
        return;
    };
    let w = World::new(Promises {
        large_turn_s: 60.0,
        small_turn_s: 60.0,
    });
    let fleet = run_playbook(&bin, &w, false);

    let facts = read_json(&fleet.facts_dir.join("minerva.fact"));
    assert_eq!(facts["installed"], false, "{facts}");
    assert!(
        facts["hardware"]["physical_cores"].as_u64().unwrap() > 0,
        "{facts}"
    );

    let plan = read_json(&fleet.plans_dir.join("localhost.json"));
    assert_eq!(plan["chosen"]["tier"], "test-large", "{plan}");
    assert!(!w.config_file().exists());
    assert_eq!(w.server.request_count(), 0);
    assert!(
        fleet.stdout.contains("localhost: planned tier test-large"),
        "{}",
        fleet.stdout
    );
}

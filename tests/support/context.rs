//! The one way the integration tests start minerva-setup (or a program that starts it, such as
//! `sh`, `bash installers/install.sh` or `ansible-playbook`).
//!
//! A [`TestCtx`] owns a fresh temporary directory laid out as the binary's own directories, and
//! hands out commands whose environment carries none of the caller's settings: a developer's
//! `MINERVA_REGISTRY`, a CI runner's `HF_TOKEN` or a forced colour must not change what a test
//! runs. The directories reach the binary through `MINERVA_DATA_DIR` and `MINERVA_CONFIG_DIR`, so
//! a test can still pass `--data-dir`, `--models-dir` or `--state-dir` itself and the flag wins.
//!
//! Layout below [`TestCtx::root`], which is also the data directory:
//!
//! ```text
//! config/   runtime config (config.json)
//! state/    fingerprint, bench, plan, verification, lock
//! models/   downloaded GGUF files
//! cache/    generated benchmark models
//! hf-home/  HF_HOME (not created: absent, as on a machine without Hugging Face's tools)
//! ```

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use minerva_setup::env_vars::{MINERVA_CONFIG_DIR, MINERVA_DATA_DIR};
use minerva_setup::profile::HardwareProfile;
use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_minerva-setup");

/// Whether an inherited variable is removed from every command: every `MINERVA_*` variable
/// (src/env_vars.rs), Hugging Face's endpoint, token, token file and caches (`HF_*`, and the old
/// `HUGGING_FACE_HUB_TOKEN`), `XDG_CACHE_HOME` (the fallback for `HF_HOME`), colour forcing read
/// by the terminal library (`CLICOLOR`, `CLICOLOR_FORCE`), and `CI`.
fn is_inherited_setting(name: &str) -> bool {
    name.starts_with("MINERVA_")
        || name.starts_with("HF_")
        || name.starts_with("HUGGING_FACE_")
        || matches!(
            name,
            "XDG_CACHE_HOME" | "CLICOLOR" | "CLICOLOR_FORCE" | "CI"
        )
}

/// One test's scratch world: a temporary directory (removed on drop) and commands that use it.
pub struct TestCtx {
    dir: tempfile::TempDir,
}

impl Default for TestCtx {
    fn default() -> Self {
        TestCtx::new()
    }
}

impl TestCtx {
    /// A fresh temporary directory with `config/`, `state/`, `models/` and `cache/` created.
    pub fn new() -> TestCtx {
        let dir = tempfile::Builder::new()
            .prefix("minerva-test-")
            .tempdir()
            .expect("create the test's temporary directory");
        let ctx = TestCtx { dir };
        for d in [
            ctx.config_dir(),
            ctx.state_dir(),
            ctx.models_dir(),
            ctx.cache_dir(),
        ] {
            std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        }
        ctx
    }

    /// The temporary directory; also the data directory (`MINERVA_DATA_DIR`).
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `rel` below the root: where a test puts its own inputs (profiles, registries, models).
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root().join(rel)
    }

    /// The data directory given to the binary: state, models and cache live below it.
    pub fn data_dir(&self) -> PathBuf {
        self.root().to_path_buf()
    }

    pub fn config_dir(&self) -> PathBuf {
        self.path("config")
    }

    /// `config.json` in the config directory (absent until an install writes it).
    pub fn config_file(&self) -> PathBuf {
        self.config_dir().join("config.json")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.path("state")
    }

    pub fn models_dir(&self) -> PathBuf {
        self.path("models")
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.path("cache")
    }

    /// `HF_HOME` of every command (not created).
    pub fn hf_home(&self) -> PathBuf {
        self.path("hf-home")
    }

    /// The binary, with this context's directories, `NO_COLOR=1`, stdin from `/dev/null` and
    /// none of the caller's settings. Add arguments and variables, then run it.
    pub fn command(&self) -> Command {
        self.command_for(BIN)
    }

    /// Another program with the same environment as [`TestCtx::command`], for wrappers that start
    /// the binary themselves (a shell, an installer script, ansible) or a copy of it.
    pub fn command_for(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new(program);
        for (k, _) in std::env::vars_os() {
            if is_inherited_setting(&k.to_string_lossy()) {
                c.env_remove(k);
            }
        }
        c.env(MINERVA_DATA_DIR, self.data_dir())
            .env(MINERVA_CONFIG_DIR, self.config_dir())
            .env("HF_HOME", self.hf_home())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        c
    }

    /// Run the binary with `args` to the end and return what it printed and its exit status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .output()
            .expect("start minerva-setup")
    }
}

/// Standard output as text; it must be UTF-8.
pub fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone())
        .unwrap_or_else(|e| panic!("stdout is not UTF-8 ({e}):\n{}", lossy(&out.stdout)))
}

/// Standard error as text (lossy: llama.cpp or a killed run may leave anything there).
pub fn stderr(out: &Output) -> String {
    lossy(&out.stderr)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Assert that the run succeeded (showing both streams if not); returns standard output.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        lossy(&out.stdout),
        stderr(out)
    );
    stdout(out)
}

/// Assert the exit code (showing both streams if it differs).
pub fn exits(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        lossy(&out.stdout),
        stderr(out)
    );
}

/// Standard output parsed as one JSON document (whatever the exit code).
pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
            lossy(&out.stdout),
            stderr(out)
        )
    })
}

/// Assert success and parse standard output as a hardware profile (`probe --json`).
pub fn profile(out: &Output) -> HardwareProfile {
    let text = ok(out);
    HardwareProfile::from_json(&text, "stdout").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Whether the tests run under CI (`CI` set, and not to `false`, `0` or nothing), where a tool
/// CI provides being missing is a failure rather than a reason to skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

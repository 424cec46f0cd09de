//! Persisted state and the run lock.
//!
//! State lives in `<state_dir>/state.json` (versioned, written atomically) and records what the
//! last run found and installed: the hardware fingerprint, the benchmark, the plan, the installed
//! model, the verification report and the measured/predicted correction. The lock
//! (`<state_dir>/minerva.lock`) keeps two runs from changing installed state at once.
//! Knows nothing about the terminal.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::fsutil::{write_atomic, FileLock, LockError};
use crate::predict::ComponentRatios;
use crate::profile::HardwareProfile;
use crate::select::Plan;
use crate::types::bench::BenchResult;
use crate::types::time::{self, Timestamp};
use crate::verify::{Verdict, VerifyReport};

/// Errors reading or writing state files.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is not valid: {detail}; it was left untouched")]
    Parse { path: PathBuf, detail: String },
    #[error("cannot write `{path}`; the previous file is unchanged")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("another minerva-setup run holds the lock `{path}`")]
    Locked { path: PathBuf },
    #[error("cannot create the lock `{path}`")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Read a JSON document; `Ok(None)` when the file does not exist.
pub fn load_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, StateError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StateError::Parse {
                path: path.to_path_buf(),
                detail: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Write a JSON document atomically (temp file, fsync, rename).
pub fn save_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StateError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| StateError::Write {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    bytes.push(b'\n');
    write_atomic(path, &bytes).map_err(|source| StateError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// An exclusive lock held for the life of the value.
#[derive(Debug)]
pub struct RunLock {
    _lock: FileLock,
    pub path: PathBuf,
}

impl RunLock {
    /// Take the lock in `dir` without waiting; `StateError::Locked` when another run holds it.
    /// A symbolic link at the lock path is refused (`StateError::Lock`), never followed.
    pub fn acquire(dir: &Path) -> Result<RunLock, StateError> {
        let path = dir.join("minerva.lock");
        std::fs::create_dir_all(dir).map_err(|source| StateError::Lock {
            path: path.clone(),
            source,
        })?;
        match FileLock::try_acquire(&path) {
            Ok(lock) => Ok(RunLock { _lock: lock, path }),
            Err(LockError::Held { .. }) => Err(StateError::Locked { path }),
            Err(LockError::Io { source, .. }) => Err(StateError::Lock { path, source }),
            Err(e @ LockError::Symlink { .. }) => Err(StateError::Lock {
                path,
                source: std::io::Error::other(e),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_in_the_same_dir_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).unwrap();
        assert!(matches!(
            RunLock::acquire(dir.path()),
            Err(StateError::Locked { .. })
        ));
        drop(first);
        RunLock::acquire(dir.path()).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_planted_at_the_lock_path_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        let link = dir.path().join("minerva.lock");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = RunLock::acquire(dir.path()).unwrap_err();
        assert!(matches!(err, StateError::Lock { .. }), "{err:?}");
        let chain = format!("{:#}", anyhow::Error::new(err));
        assert!(chain.contains("minerva.lock"), "{chain}");
        assert!(chain.contains("symbolic link"), "{chain}");
        assert!(!target.exists(), "the lock followed the link");
        assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
    }

    #[test]
    fn a_corrupt_file_is_reported_with_its_path_and_left_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        std::fs::write(&p, b"{ not json").unwrap();
        let err = load_json::<serde_json::Value>(&p).unwrap_err();
        assert!(err.to_string().contains("state.json"), "{err}");
        assert_eq!(std::fs::read(&p).unwrap(), b"{ not json");
        assert!(
            load_json::<serde_json::Value>(&dir.path().join("absent.json"))
                .unwrap()
                .is_none()
        );
    }
}

/// Version of the `state.json` schema.
pub const STATE_SCHEMA_VERSION: u32 = 1;
pub const STATE_FILE: &str = "state.json";
/// The stored benchmark of this machine, written by `bench`, `plan` and `install`.
pub const BENCH_FILE: &str = "bench.json";

/// The installed model as recorded in state.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Installed {
    pub tier: Option<String>,
    pub model_id: String,
    /// The file llama.cpp is given (a split model's first part) and its sha256.
    pub path: PathBuf,
    pub sha256: String,
    /// All files of the model together.
    pub size_bytes: u64,
    pub installed_at: Timestamp,
    /// A split model's parts, first first; empty for a model in one file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<crate::config::PartRef>,
}

/// What a run of the history was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Install,
    Retier,
    Verify,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Install => "install",
            Action::Retier => "retier",
            Action::Verify => "verify",
        }
    }
}

/// How a run of the history ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// A model was downloaded, verified and installed.
    Installed,
    /// A verification of the installed model kept its promise.
    Passed,
    /// The promise was missed and the model kept with the measured figures (`--on-miss warn`).
    #[serde(alias = "kept (warn)", alias = "missed, kept (warn)")]
    KeptDespiteMiss,
    /// The promise was missed; the previous config stays.
    Missed,
    /// The verification could not run to the end.
    #[serde(alias = "failed: verification error")]
    VerificationFailed,
    /// Written by another version of the tool.
    #[serde(other)]
    Other,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Installed => "installed",
            Outcome::Passed => "passed",
            Outcome::KeptDespiteMiss => "kept despite a miss",
            Outcome::Missed => "missed",
            Outcome::VerificationFailed => "verification failed",
            Outcome::Other => "other",
        }
    }
}

/// One line of the history: what a run did.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HistoryEntry {
    pub at: Timestamp,
    pub action: Action,
    pub tier: Option<String>,
    pub model_id: Option<String>,
    pub outcome: Outcome,
    #[serde(default)]
    pub turn_s: Option<f64>,
}

/// `<state_dir>/state.json`: what the last runs found and did on this machine.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct State {
    pub schema_version: u32,
    pub updated_at: Timestamp,
    /// Fingerprint of the hardware the installed tier was chosen for.
    pub fingerprint: String,
    pub profile: HardwareProfile,
    #[serde(default)]
    pub bench: Option<BenchResult>,
    #[serde(default)]
    pub plan: Option<Plan>,
    #[serde(default)]
    pub installed: Option<Installed>,
    #[serde(default)]
    pub verify: Option<VerifyReport>,
    #[serde(default)]
    pub verdict: Option<Verdict>,
    /// Measured turn over the *uncorrected* predicted turn of the last verification on this
    /// hardware; later predictions on the same fingerprint are scaled by it (see
    /// `pipeline::calibration`).
    #[serde(default, alias = "correction")]
    pub correction_ratio: Option<f64>,
    /// The same for prefill and decode separately, from the same verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_ratios: Option<ComponentRatios>,
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
}

/// Keep the history bounded: the last runs are what an operator reads.
pub const HISTORY_LIMIT: usize = 50;

impl State {
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(STATE_FILE)
    }

    pub fn load(state_dir: &Path) -> Result<Option<State>, StateError> {
        load_json(&State::path(state_dir))
    }

    /// A state with nothing recorded yet, for `hw`.
    pub fn new(hw: &HardwareProfile) -> State {
        State {
            schema_version: STATE_SCHEMA_VERSION,
            updated_at: time::now(),
            fingerprint: hw.fingerprint.clone(),
            profile: hw.clone(),
            bench: None,
            plan: None,
            installed: None,
            verify: None,
            verdict: None,
            correction_ratio: None,
            component_ratios: None,
            history: Vec::new(),
        }
    }

    pub fn save(&mut self, state_dir: &Path) -> Result<(), StateError> {
        self.updated_at = time::now();
        self.trim_history();
        save_json(&State::path(state_dir), self)
    }

    /// Add a line to the history, keeping it bounded.
    pub fn push_history(&mut self, entry: HistoryEntry) {
        self.history.push(entry);
        self.trim_history();
    }

    /// Keep the last [`HISTORY_LIMIT`] entries, oldest dropped first.
    fn trim_history(&mut self) {
        if self.history.len() > HISTORY_LIMIT {
            let drop = self.history.len() - HISTORY_LIMIT;
            self.history.drain(..drop);
        }
    }

    /// The prefill and decode corrections for hardware with `fingerprint`.
    pub fn components_for(&self, fingerprint: &str) -> Option<ComponentRatios> {
        if self.fingerprint == fingerprint {
            self.component_ratios.filter(|c| {
                [c.prefill_ratio, c.decode_ratio]
                    .iter()
                    .all(|r| r.is_finite() && *r > 0.0)
            })
        } else {
            None
        }
    }

    /// The correction to apply to predictions on hardware with `fingerprint`.
    pub fn correction_for(&self, fingerprint: &str) -> Option<f64> {
        if self.fingerprint == fingerprint {
            self.correction_ratio.filter(|c| c.is_finite() && *c > 0.0)
        } else {
            None
        }
    }
}

/// The stored benchmark of this machine (`<state_dir>/bench.json`); `Ok(None)` when there is none.
/// The one place that reads it.
pub fn load_bench(state_dir: &Path) -> Result<Option<BenchResult>, StateError> {
    load_json(&bench_path(state_dir))
}

/// Store the benchmark of this machine, atomically. The one place that writes it.
pub fn save_bench(state_dir: &Path, bench: &BenchResult) -> Result<PathBuf, StateError> {
    let path = bench_path(state_dir);
    save_json(&path, bench)?;
    Ok(path)
}

pub fn bench_path(state_dir: &Path) -> PathBuf {
    state_dir.join(BENCH_FILE)
}

#[cfg(test)]
mod history_tests {
    use super::*;

    fn entry(n: usize) -> HistoryEntry {
        HistoryEntry {
            at: Timestamp::from_second(1_795_391_655 + n as i64).unwrap(),
            action: Action::Verify,
            tier: Some("t".into()),
            model_id: Some(format!("m{n}")),
            outcome: Outcome::Passed,
            turn_s: Some(n as f64),
        }
    }

    #[test]
    fn history_keeps_the_newest_entries_in_order() {
        let hw = crate::profile::fixture("xeon-e5-2660v3");
        let mut st = State::new(&hw);
        for n in 0..HISTORY_LIMIT + 7 {
            st.push_history(entry(n));
        }
        assert_eq!(st.history.len(), HISTORY_LIMIT);
        assert_eq!(st.history[0].model_id.as_deref(), Some("m7"));
        assert_eq!(
            st.history.last().unwrap().model_id.as_deref(),
            Some(format!("m{}", HISTORY_LIMIT + 6).as_str())
        );
        // Entries pushed directly are trimmed on save.
        for n in 0..3 {
            st.history.push(entry(100 + n));
        }
        let dir = tempfile::tempdir().unwrap();
        st.save(dir.path()).unwrap();
        let back = State::load(dir.path()).unwrap().unwrap();
        assert_eq!(back.history.len(), HISTORY_LIMIT);
        assert_eq!(
            back.history.last().unwrap().model_id.as_deref(),
            Some("m102")
        );
        assert_eq!(back.history[0].model_id.as_deref(), Some("m10"));
    }

    #[test]
    fn old_history_strings_still_load() {
        let v = serde_json::json!({
            "at": "2026-11-22T23:54:15Z", "action": "verify", "tier": null, "model_id": null,
            "outcome": "missed, kept (warn)", "turn_s": 1.0
        });
        let e: HistoryEntry = serde_json::from_value(v).unwrap();
        assert_eq!(e.outcome, Outcome::KeptDespiteMiss);
        let v = serde_json::json!({
            "at": "2026-11-22T23:54:15Z", "action": "install", "tier": null, "model_id": null,
            "outcome": "something new"
        });
        let e: HistoryEntry = serde_json::from_value(v).unwrap();
        assert_eq!(e.outcome, Outcome::Other);
    }
}

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

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Format Unix seconds as an RFC 3339 UTC timestamp (`2026-11-22T23:54:15Z`).
pub fn rfc3339(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm), valid for the whole u64 range we meet.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_391_655), "2026-11-22T23:54:15Z");
    }

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
    pub path: PathBuf,
    pub sha256: String,
    pub size_bytes: u64,
    /// RFC 3339 UTC.
    pub installed_at: String,
}

/// One line of the history: what a run did.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HistoryEntry {
    pub at: String,
    /// `install`, `retier`, `verify`.
    pub action: String,
    pub tier: Option<String>,
    pub model_id: Option<String>,
    /// `installed`, `kept (warn)`, `missed`, `downgraded`, `failed: ...`.
    pub outcome: String,
    #[serde(default)]
    pub turn_s: Option<f64>,
}

/// `<state_dir>/state.json`: what the last runs found and did on this machine.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct State {
    pub schema_version: u32,
    pub updated_at: String,
    /// Fingerprint of the hardware the installed tier was chosen for.
    pub fingerprint: String,
    pub profile: crate::profile::HardwareProfile,
    #[serde(default)]
    pub bench: Option<crate::bench::BenchResult>,
    #[serde(default)]
    pub plan: Option<crate::select::Plan>,
    #[serde(default)]
    pub installed: Option<Installed>,
    #[serde(default)]
    pub verify: Option<crate::verify::VerifyReport>,
    #[serde(default)]
    pub verdict: Option<crate::verify::Verdict>,
    /// Measured over predicted turn time of the last verification on this hardware; later
    /// predictions on the same fingerprint are scaled by it.
    #[serde(default)]
    pub correction: Option<f64>,
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
}

/// Keep the history bounded: the last runs are what an operator reads.
const HISTORY_LIMIT: usize = 50;

impl State {
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(STATE_FILE)
    }

    pub fn load(state_dir: &Path) -> Result<Option<State>, StateError> {
        load_json(&State::path(state_dir))
    }

    pub fn save(&mut self, state_dir: &Path) -> Result<(), StateError> {
        self.updated_at = rfc3339(now_unix());
        if self.history.len() > HISTORY_LIMIT {
            let drop = self.history.len() - HISTORY_LIMIT;
            self.history.drain(..drop);
        }
        save_json(&State::path(state_dir), self)
    }

    /// The correction to apply to predictions on hardware with `fingerprint`.
    pub fn correction_for(&self, fingerprint: &str) -> Option<f64> {
        if self.fingerprint == fingerprint {
            self.correction.filter(|c| c.is_finite() && *c > 0.0)
        } else {
            None
        }
    }
}

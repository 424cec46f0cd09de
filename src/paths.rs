//! Where minerva-setup keeps its files.
//!
//! Run as root on a server it uses the system-wide layout (`/etc/minerva`, `/var/lib/minerva`,
//! `/var/cache/minerva`); run as a user, the per-user directories the `directories` crate gives
//! (XDG on Linux). Every directory can be overridden by a flag or a `MINERVA_*` variable.

use std::path::{Path, PathBuf};

/// The resolved directories. Nothing here is created until a stage writes to it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Paths {
    /// Runtime config (`config.json`) for the application that uses the model.
    pub config_dir: PathBuf,
    /// State: fingerprint, benchmark, plan, verification report, lock file.
    pub state_dir: PathBuf,
    /// Downloaded GGUF models.
    pub models_dir: PathBuf,
    /// Generated benchmark models and other re-creatable data.
    pub cache_dir: PathBuf,
}

/// Overrides from flags or environment.
#[derive(Debug, Clone, Default)]
pub struct PathOverrides {
    pub config_dir: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub models_dir: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
}

impl Paths {
    /// Resolve the layout: overrides first, then system-wide for root, then per-user.
    pub fn resolve(o: &PathOverrides) -> Paths {
        let base = if is_root() { Paths::system() } else { Paths::user() };
        let cache_dir = o.data_dir.as_ref().map(|d| d.join("cache")).unwrap_or(base.cache_dir);
        let models_dir = o
            .models_dir
            .clone()
            .or_else(|| o.data_dir.as_ref().map(|d| d.join("models")))
            .unwrap_or(base.models_dir);
        Paths {
            config_dir: o.config_dir.clone().unwrap_or(base.config_dir),
            state_dir: o
                .state_dir
                .clone()
                .or_else(|| o.data_dir.as_ref().map(|d| d.join("state")))
                .unwrap_or(base.state_dir),
            models_dir,
            cache_dir,
        }
    }

    /// The layout for a server, when run as root.
    pub fn system() -> Paths {
        Paths {
            config_dir: PathBuf::from("/etc/minerva"),
            state_dir: PathBuf::from("/var/lib/minerva"),
            models_dir: PathBuf::from("/var/lib/minerva/models"),
            cache_dir: PathBuf::from("/var/cache/minerva"),
        }
    }

    /// The per-user layout from `directories`, falling back to `./.minerva` without a home.
    pub fn user() -> Paths {
        match directories::ProjectDirs::from("", "", "minerva-setup") {
            Some(d) => Paths {
                config_dir: d.config_dir().to_path_buf(),
                state_dir: d.state_dir().unwrap_or_else(|| d.data_local_dir()).to_path_buf(),
                models_dir: d.data_dir().join("models"),
                cache_dir: d.cache_dir().to_path_buf(),
            },
            None => {
                let base = Path::new(".minerva");
                Paths {
                    config_dir: base.join("config"),
                    state_dir: base.join("state"),
                    models_dir: base.join("models"),
                    cache_dir: base.join("cache"),
                }
            }
        }
    }
}

/// True when running with effective uid 0 (reads `/proc/self/status`; false where unknown).
pub fn is_root() -> bool {
    #[cfg(unix)]
    {
        if let Ok(s) = std::fs::read_to_string("/proc/self/status") {
            for line in s.lines() {
                if let Some(rest) = line.strip_prefix("Uid:") {
                    // Real, effective, saved, filesystem uid.
                    return rest.split_whitespace().nth(1) == Some("0");
                }
            }
        }
        std::env::var("USER").map(|u| u == "root").unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        false
    }
}

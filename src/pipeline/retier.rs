//! Whether a re-tier is due: the one rule that `status`, `retier --check`, `retier` and the
//! Ansible facts all apply.
//!
//! A re-tier is due when nothing verified is installed on this machine (no state, no installed
//! model, or no runtime config), or when the hardware fingerprint differs from the one the
//! installed tier was chosen for.

use serde::Serialize;

use crate::config::RuntimeConfig;
use crate::paths::Paths;
use crate::profile::HardwareProfile;
use crate::state::{State, StateError};

/// Read the stored state and config under `paths` and [`decide`].
pub fn check(paths: &Paths, now: &HardwareProfile) -> Result<RetierDecision, StateError> {
    let state = State::load(&paths.state_dir)?;
    let config_present = RuntimeConfig::path(&paths.config_dir).is_file();
    Ok(decide(state.as_ref(), config_present, now))
}

/// The decision and its reason, in words.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetierDecision {
    pub due: bool,
    pub reason: String,
    /// The fingerprint the installed tier was chosen for, if any.
    pub fingerprint_stored: Option<String>,
    pub fingerprint_now: String,
    pub hardware_changed: bool,
}

/// Decide for the machine `now`, from the stored state and whether a runtime config exists.
pub fn decide(
    state: Option<&State>,
    config_present: bool,
    now: &HardwareProfile,
) -> RetierDecision {
    let stored = state.map(|s| s.fingerprint.clone());
    let changed = stored.as_ref().is_some_and(|f| *f != now.fingerprint);
    let installed = state.is_some_and(|s| s.installed.is_some()) && config_present;
    let (due, reason) = match state {
        None => (
            true,
            "nothing was installed on this machine yet".to_string(),
        ),
        Some(_) if changed => (true, describe_change(state, now)),
        Some(_) if !installed => (true, "no verified model is installed".to_string()),
        Some(_) => (
            false,
            "the hardware is unchanged since the tier was chosen".to_string(),
        ),
    };
    RetierDecision {
        due,
        reason,
        fingerprint_stored: stored,
        fingerprint_now: now.fingerprint.clone(),
        hardware_changed: changed,
    }
}

/// Say what changed, from the stored profile and the new one.
fn describe_change(state: Option<&State>, now: &HardwareProfile) -> String {
    let Some(old) = state.map(|s| &s.profile) else {
        return "the hardware changed".into();
    };
    let mut what = Vec::new();
    if old.cpu.brand.trim() != now.cpu.brand.trim()
        || old.cpu.physical_cores != now.cpu.physical_cores
    {
        what.push(format!(
            "CPU {} ({} cores) → {} ({} cores)",
            old.cpu.brand.trim(),
            old.cpu.physical_cores,
            now.cpu.brand.trim(),
            now.cpu.physical_cores
        ));
    }
    let gib = |b: u64| (b as f64 / (1u64 << 30) as f64).round();
    if gib(old.memory.total_bytes) != gib(now.memory.total_bytes)
        || gib(old.memory.usable_bytes) != gib(now.memory.usable_bytes)
    {
        what.push(format!(
            "RAM {:.0} GiB → {:.0} GiB usable",
            gib(old.memory.usable_bytes),
            gib(now.memory.usable_bytes)
        ));
    }
    let names = |p: &HardwareProfile| p.gpus.iter().map(|g| g.name.clone()).collect::<Vec<_>>();
    if names(old) != names(now) {
        let show = |v: Vec<String>| {
            if v.is_empty() {
                "no GPU".to_string()
            } else {
                v.join(", ")
            }
        };
        what.push(format!("GPUs {} → {}", show(names(old)), show(names(now))));
    }
    if what.is_empty() {
        "the hardware fingerprint changed".into()
    } else {
        format!("the hardware changed: {}", what.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Installed;
    use crate::types::time;

    fn hw() -> HardwareProfile {
        crate::profile::fixture("xeon-e5-2660v3")
    }

    fn installed_state(hw: &HardwareProfile) -> State {
        let mut s = State::new(hw);
        s.installed = Some(Installed {
            tier: Some("cpu-light".into()),
            model_id: "m".into(),
            path: "/m.gguf".into(),
            sha256: "0".repeat(64),
            size_bytes: 1,
            installed_at: time::now(),
            parts: Vec::new(),
        });
        s
    }

    #[test]
    fn a_fresh_machine_is_due() {
        let d = decide(None, false, &hw());
        assert!(d.due, "{d:?}");
        assert!(!d.hardware_changed);
        assert_eq!(d.fingerprint_stored, None);
    }

    #[test]
    fn installed_and_unchanged_is_not_due_but_a_missing_config_is() {
        let hw = hw();
        let s = installed_state(&hw);
        assert!(!decide(Some(&s), true, &hw).due);
        let d = decide(Some(&s), false, &hw);
        assert!(d.due && d.reason.contains("no verified model"), "{d:?}");
        let mut bare = s.clone();
        bare.installed = None;
        assert!(decide(Some(&bare), true, &hw).due);
    }

    #[test]
    fn a_hardware_change_is_due_and_says_what_changed() {
        let hw = hw();
        let s = installed_state(&hw);
        let mut now = hw.clone();
        now.memory.total_bytes *= 2;
        now.memory.usable_bytes *= 2;
        now.fingerprint = crate::profile::fingerprint(&now);
        let d = decide(Some(&s), true, &now);
        assert!(d.due && d.hardware_changed, "{d:?}");
        assert!(d.reason.contains("RAM"), "{}", d.reason);
    }
}

//! Whether a timed repetition had the CPUs it was timed on: this process's threads' time on a CPU
//! (`/proc/self/task/*/schedstat`, Linux) against their wall time.
//!
//! llama.cpp's worker threads spin while they wait for each other, so an undisturbed repetition
//! keeps every thread on a CPU for 95-100 % of its wall time (2-core Xeon VM, 2 threads). A
//! repetition during which another process or the hypervisor took a CPU shows less, and its
//! rate describes the neighbour, not the machine.

use std::path::Path;

/// Below this share of threads × wall seconds on a CPU, a repetition counts as descheduled.
pub const MIN_ON_CPU_SHARE: f64 = 0.9;

/// Seconds this process's threads have spent on a CPU, all threads together (`None` where
/// `/proc/self/task` cannot be read).
pub fn on_cpu_s() -> Option<f64> {
    on_cpu_s_in(Path::new("/proc/self/task"))
}

/// [`on_cpu_s`] over the task directories under `tasks`.
pub fn on_cpu_s_in(tasks: &Path) -> Option<f64> {
    let mut ns = 0u64;
    for task in std::fs::read_dir(tasks).ok()? {
        // A thread that ended between the listing and the read took its time with it.
        let Ok(stat) = std::fs::read_to_string(task.ok()?.path().join("schedstat")) else {
            continue;
        };
        ns += parse_schedstat(&stat)?;
    }
    Some(ns as f64 / 1e9)
}

/// The first field of a `schedstat` line: nanoseconds on a CPU (then waiting time and
/// timeslices).
pub fn parse_schedstat(line: &str) -> Option<u64> {
    line.split_whitespace().next()?.parse().ok()
}

/// The share of `threads × wall_s` that `on_cpu_s` seconds on a CPU are (capped at 1: the main
/// thread's own work between steps is on a CPU too).
pub fn on_cpu_share(on_cpu_s: f64, wall_s: f64, threads: u32) -> f64 {
    let capacity = wall_s * f64::from(threads.max(1));
    if capacity <= 0.0 {
        return 1.0;
    }
    (on_cpu_s / capacity).clamp(0.0, 1.0)
}

/// On-CPU and wall time of the timed repetitions of a run, and how many were descheduled.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OnCpu {
    /// Threads × wall seconds of the timed repetitions.
    pub capacity_s: f64,
    /// Seconds the threads were on a CPU during them.
    pub on_cpu_s: f64,
    pub timed: u32,
    pub descheduled: u32,
}

impl OnCpu {
    /// Count one timed repetition; returns whether it had its CPUs (at least
    /// [`MIN_ON_CPU_SHARE`]). Without a reading (`None`) it is kept and not counted.
    pub fn record(&mut self, on_cpu_s: Option<f64>, wall_s: f64, threads: u32) -> bool {
        let Some(on) = on_cpu_s else {
            return true;
        };
        self.capacity_s += wall_s * f64::from(threads.max(1));
        self.on_cpu_s += on;
        self.timed += 1;
        let kept = on_cpu_share(on, wall_s, threads) >= MIN_ON_CPU_SHARE;
        if !kept {
            self.descheduled += 1;
        }
        kept
    }

    /// Share of the timed wall time on a CPU, over every timed repetition (`None` without any).
    pub fn share(&self) -> Option<f64> {
        (self.timed > 0 && self.capacity_s > 0.0)
            .then(|| (self.on_cpu_s / self.capacity_s).clamp(0.0, 1.0))
    }
}

/// A repetition's figures: those that had their CPUs are kept; when none did, the fastest
/// discarded one stands in (a figure from a busy machine beats none, and the run's conditions say
/// it was busy).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Samples {
    kept: Vec<f64>,
    spare: f64,
}

impl Samples {
    /// Add `value` (ignored unless positive) of a repetition that `kept` its CPUs or not.
    pub fn add(&mut self, value: f64, kept: bool) {
        if value <= 0.0 {
            return;
        }
        if kept {
            self.kept.push(value);
        } else {
            self.spare = self.spare.max(value);
        }
    }

    /// The kept figures so far.
    pub fn kept(&self) -> &[f64] {
        &self.kept
    }

    /// The kept figures, or the fastest discarded one when none was kept.
    pub fn finish(self) -> Vec<f64> {
        if self.kept.is_empty() && self.spare > 0.0 {
            vec![self.spare]
        } else {
            self.kept
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedstat_is_read_per_thread_and_summed() {
        let dir = tempfile::tempdir().unwrap();
        for (tid, line) in [("1", "1500000000 20 3\n"), ("2", "500000000 7 1\n")] {
            std::fs::create_dir(dir.path().join(tid)).unwrap();
            std::fs::write(dir.path().join(tid).join("schedstat"), line).unwrap();
        }
        // A thread gone before its file was read is skipped.
        std::fs::create_dir(dir.path().join("3")).unwrap();
        assert_eq!(on_cpu_s_in(dir.path()), Some(2.0));
        assert_eq!(parse_schedstat("x 1 2"), None);
        assert!(on_cpu_s().is_some_and(|s| s > 0.0) || !Path::new("/proc/self/task").exists());
    }

    /// Two threads for 1 s: 1.9 s on a CPU is 95 % (kept), 1.6 s is 80 % (descheduled); the
    /// share over both counts both.
    #[test]
    fn a_repetition_off_the_cpu_is_counted_and_not_kept() {
        let mut o = OnCpu::default();
        assert!(o.record(Some(1.9), 1.0, 2));
        assert!(!o.record(Some(1.6), 1.0, 2));
        assert!(o.record(None, 1.0, 2));
        assert_eq!((o.timed, o.descheduled), (2, 1));
        assert!((o.share().unwrap() - 0.875).abs() < 1e-12);
        assert_eq!(OnCpu::default().share(), None);
        assert_eq!(on_cpu_share(5.0, 1.0, 2), 1.0);
    }

    #[test]
    fn discarded_figures_stand_in_only_when_none_was_kept() {
        let mut s = Samples::default();
        s.add(30.0, false);
        s.add(50.0, false);
        s.add(0.0, true);
        assert!(s.kept().is_empty());
        assert_eq!(s.clone().finish(), [50.0]);
        s.add(40.0, true);
        assert_eq!(s.kept(), [40.0]);
        assert_eq!(s.finish(), [40.0]);
        assert!(Samples::default().finish().is_empty());
    }
}

//! Self-calibration: after a verification, the ratio of the measured turn to the *uncorrected*
//! predicted turn is stored (`State::correction_ratio`) and later predictions on the same
//! hardware fingerprint are multiplied by it.
//!
//! The prediction a verification is compared with may already carry an earlier ratio (the plan
//! applied it). Dividing the measured turn by that corrected prediction and storing the result
//! would lose the earlier ratio; multiplying it in again at every step would compound it. The
//! one rule, used by `install`, `retier` and `verify`: divide the measured turn by the prediction
//! *without* its correction. A prediction made afterwards with the stored ratio then lands on
//! the last verified turn.

use std::path::Path;

use crate::predict::Prediction;
use crate::profile::HardwareProfile;
use crate::state::State;

/// The ratio the last verification on this hardware stored, if any. An unreadable state file is
/// ignored here (`status` reports it).
pub fn stored_ratio(state_dir: &Path, hw: &HardwareProfile) -> Option<f64> {
    State::load(state_dir)
        .ok()
        .flatten()
        .and_then(|s| s.correction_for(&hw.fingerprint))
}

/// The ratio to store after a turn of `measured_turn_s` that `predicted` had predicted.
/// `None` when either figure is unusable.
pub fn ratio_after(measured_turn_s: f64, predicted: &Prediction) -> Option<f64> {
    let applied = if predicted.correction_ratio.is_finite() && predicted.correction_ratio > 0.0 {
        predicted.correction_ratio
    } else {
        1.0
    };
    let uncorrected = predicted.turn_s / applied;
    let ratio = measured_turn_s / uncorrected;
    (uncorrected > 0.0 && ratio.is_finite() && ratio > 0.0).then_some(ratio)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predict::{predict, PredictOptions};
    use crate::profile::HardwareProfile;
    use crate::registry::Registry;
    use crate::select::model_input;
    use crate::types::workload::Workload;

    fn hw() -> HardwareProfile {
        crate::profile::fixture("xeon-e5-2660v3")
    }

    fn predicted(ratio: f64) -> Prediction {
        let reg = Registry::embedded().unwrap();
        let f = reg.files.iter().find(|f| f.installable()).unwrap();
        let hw = hw();
        let w = Workload {
            prompt_tokens: 550,
            response_tokens: 150,
            context_tokens: 4096,
            concurrency: 1,
        };
        let opts = PredictOptions {
            correction_ratio: ratio,
            ..PredictOptions::default()
        };
        predict(&hw, hw.bench.as_ref(), &model_input(f), &w, &opts)
    }

    /// install → verify → verify, as a new user would run them: every step stores the ratio
    /// of what it measured, and the next prediction equals the last measured turn.
    #[test]
    fn the_ratio_does_not_compound_across_install_and_verifications() {
        let raw = predicted(1.0).turn_s;
        let measured = [raw * 1.27, raw * 1.21, raw * 1.14, raw * 0.9];
        let mut stored = 1.0;
        for m in measured {
            let p = predicted(stored);
            stored = ratio_after(m, &p).unwrap();
            let next = predicted(stored).turn_s;
            assert!(
                (next - m).abs() / m < 1e-9,
                "after a turn of {m:.3} s the next prediction is {next:.3} s (ratio {stored:.3})"
            );
        }
        assert!((stored - 0.9).abs() < 1e-9, "{stored}");
    }

    #[test]
    fn unusable_figures_store_nothing() {
        let p = predicted(1.0);
        assert_eq!(ratio_after(0.0, &p), None);
        assert_eq!(ratio_after(f64::NAN, &p), None);
        let mut zero = p.clone();
        zero.turn_s = 0.0;
        assert_eq!(ratio_after(1.0, &zero), None);
    }
}

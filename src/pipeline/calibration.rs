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

use crate::predict::{ComponentRatios, Prediction};
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

/// The prefill and decode ratios the last verification on this hardware stored, if any.
pub fn stored_components(state_dir: &Path, hw: &HardwareProfile) -> Option<ComponentRatios> {
    State::load(state_dir)
        .ok()
        .flatten()
        .and_then(|s| s.components_for(&hw.fingerprint))
}

/// The prefill and decode ratios to store after a verification that measured prefill at
/// `prefill_tokens_per_s`, decode at `decode_tokens_per_s` and a whole turn of
/// `measured_turn_s`, where `predicted` had predicted them: each the *uncorrected* predicted
/// rate over the measured one (the time ratio, by the same rule as [`ratio_after`]), both then
/// scaled alike so that they add up to the measured turn (which also holds what neither rate
/// counts: sampling, the first decode step). A prediction made with them lands on the
/// measured turn at the verified workload and keeps the measured split between prefill and
/// decode at any other. `None` when a figure is unusable.
pub fn components_after(
    prefill_tokens_per_s: f64,
    decode_tokens_per_s: f64,
    measured_turn_s: f64,
    predicted: &Prediction,
) -> Option<ComponentRatios> {
    let usable = |r: f64| r.is_finite() && r > 0.0;
    let whole = if usable(predicted.correction_ratio) {
        predicted.correction_ratio
    } else {
        1.0
    };
    let (applied_p, applied_d) = match predicted.component_ratios {
        Some(c) if usable(c.prefill_ratio) && usable(c.decode_ratio) => {
            (c.prefill_ratio, c.decode_ratio)
        }
        _ => (whole, whole),
    };
    let prefill_ratio = predicted.prefill_tokens_per_s * applied_p / prefill_tokens_per_s;
    let decode_ratio = predicted.decode_tokens_per_s * applied_d / decode_tokens_per_s;
    let (raw_prefill_s, raw_decode_s) = (
        predicted.prefill_s / applied_p,
        predicted.decode_s / applied_d,
    );
    let from_rates = raw_prefill_s * prefill_ratio + raw_decode_s * decode_ratio;
    let k = measured_turn_s / from_rates;
    (usable(prefill_ratio) && usable(decode_ratio) && usable(k)).then_some(ComponentRatios {
        prefill_ratio: prefill_ratio * k,
        decode_ratio: decode_ratio * k,
    })
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

    fn tier_workload() -> Workload {
        Workload {
            prompt_tokens: 550,
            response_tokens: 150,
            context_tokens: 4096,
            concurrency: 1,
        }
    }

    fn predict_with(opts: PredictOptions, w: Workload) -> Prediction {
        let reg = Registry::embedded().unwrap();
        let f = reg.files.iter().find(|f| f.installable()).unwrap();
        let hw = hw();
        predict(&hw, hw.bench.as_ref(), &model_input(f), &w, &opts)
    }

    fn predicted(ratio: f64) -> Prediction {
        let opts = PredictOptions {
            correction_ratio: ratio,
            ..PredictOptions::default()
        };
        predict_with(opts, tier_workload())
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

    fn predicted_with(components: Option<ComponentRatios>, w: Workload) -> Prediction {
        let opts = PredictOptions {
            components,
            ..PredictOptions::default()
        };
        predict_with(opts, w)
    }

    /// Prefill measured 1.6× slower than predicted and decode 0.8× (faster): one turn ratio
    /// fits only the workload it was measured at; the two ratios fit every workload, and do not
    /// compound over verifications.
    #[test]
    fn prefill_and_decode_are_calibrated_separately_and_carry_to_other_workloads() {
        let tier = tier_workload();
        let long_prompt = Workload {
            prompt_tokens: 2048,
            response_tokens: 32,
            ..tier
        };
        let raw = predicted_with(None, tier);
        let measured_prefill = raw.prefill_tokens_per_s / 1.6;
        let measured_decode = raw.decode_tokens_per_s / 0.8;
        let measured_turn = raw.prefill_s * 1.6 + raw.decode_s * 0.8;
        let mut stored: Option<ComponentRatios> = None;
        for _ in 0..3 {
            let p = predicted_with(stored, tier);
            stored = components_after(measured_prefill, measured_decode, measured_turn, &p);
            let next = predicted_with(stored, tier);
            assert!((next.prefill_tokens_per_s / measured_prefill - 1.0).abs() < 1e-9);
            assert!((next.decode_tokens_per_s / measured_decode - 1.0).abs() < 1e-9);
            assert!((next.turn_s / measured_turn - 1.0).abs() < 1e-9);
        }
        let c = stored.unwrap();
        assert!((c.prefill_ratio - 1.6).abs() < 1e-9 && (c.decode_ratio - 0.8).abs() < 1e-9);

        // At another workload the components predict what those rates give there.
        let raw_long = predicted_with(None, long_prompt);
        let p = predicted_with(stored, long_prompt);
        let expected = raw_long.prefill_s * 1.6 + raw_long.decode_s * 0.8;
        assert!(
            (p.turn_s - expected).abs() < 1e-9 * expected,
            "{} vs {expected}",
            p.turn_s
        );
        // The turn's overall ratio is what they add up to, and the prediction says which applied.
        assert!((p.correction_ratio - expected / raw_long.turn_s).abs() < 1e-9);
        assert_eq!(p.component_ratios, stored);
        assert_eq!(
            components_after(0.0, measured_decode, measured_turn, &p),
            None
        );

        // A turn 10 % longer than its two rates account for (sampling, the first step): both
        // ratios grow alike, and the verified workload lands on the measured turn.
        let longer =
            components_after(measured_prefill, measured_decode, measured_turn * 1.1, &raw).unwrap();
        assert!((longer.prefill_ratio - 1.6 * 1.1).abs() < 1e-9);
        assert!((longer.decode_ratio - 0.8 * 1.1).abs() < 1e-9);
        let at_tier = predicted_with(Some(longer), tier);
        assert!((at_tier.turn_s / (measured_turn * 1.1) - 1.0).abs() < 1e-9);
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

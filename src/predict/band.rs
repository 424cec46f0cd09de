//! How sure a predicted turn is.
//!
//! The benchmark repeats every measurement and keeps the median, the fastest and the slowest
//! repetition. A turn predicted from the medians can be as fast as the fastest repetitions allow
//! and as slow as the slowest: prefill scales with the prefill rate's spread, decode with the
//! decode rate's, each of the type that holds most of the model's weights (the widest spread
//! when that type was measured at several sizes). When the machine was shared while the
//! benchmark ran ([`BenchConditions::busy_margin`]: load from other work, CPU time stolen by
//! the hypervisor), the band widens by that margin on both sides: the same sharing may be gone,
//! or worse, when the model serves.
//!
//! The band is the measurement's own uncertainty; a plan compares its upper end with the budget,
//! so that a promise holds on the slow side of what was measured, not on the median.

use serde::{Deserialize, Serialize};

use crate::types::bench::{BenchConditions, QuantBench, Stat};

/// Factors that turn the median-based prefill and decode times into the band's ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BandFactors {
    pub prefill_low: f64,
    pub prefill_high: f64,
    pub decode_low: f64,
    pub decode_high: f64,
    /// Widening on both sides for a shared machine (0 when idle or unknown).
    pub busy_margin: f64,
}

impl BandFactors {
    /// No spread: the band is the prediction itself.
    pub const NONE: BandFactors = BandFactors {
        prefill_low: 1.0,
        prefill_high: 1.0,
        decode_low: 1.0,
        decode_high: 1.0,
        busy_margin: 0.0,
    };
}

/// The band of a turn, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TurnBand {
    pub low_s: f64,
    pub high_s: f64,
}

/// `(low, high)` multipliers of a time measured as `1 / rate`: the median over the fastest and
/// over the slowest repetition.
fn time_factors(rate: &Stat) -> (f64, f64) {
    if rate.median <= 0.0 || rate.min <= 0.0 || rate.max <= 0.0 {
        return (1.0, 1.0);
    }
    (
        (rate.median / rate.max).min(1.0),
        (rate.median / rate.min).max(1.0),
    )
}

/// The band's factors from the benchmark entries of the model's main type (several when that
/// type was measured at more than one size: the widest spread counts) and the conditions the
/// benchmark ran in.
pub fn factors(entries: &[&QuantBench], conditions: Option<&BenchConditions>) -> BandFactors {
    let mut f = BandFactors::NONE;
    for q in entries {
        let (pl, ph) = time_factors(&q.prefill_tokens_per_s);
        let (dl, dh) = time_factors(&q.decode_tokens_per_s);
        f.prefill_low = f.prefill_low.min(pl);
        f.prefill_high = f.prefill_high.max(ph);
        f.decode_low = f.decode_low.min(dl);
        f.decode_high = f.decode_high.max(dh);
    }
    f.busy_margin = conditions.map_or(0.0, BenchConditions::busy_margin);
    f
}

/// The band around a turn of `prefill_s + decode_s` seconds.
pub fn turn_band(prefill_s: f64, decode_s: f64, f: &BandFactors) -> TurnBand {
    let low = prefill_s * f.prefill_low + decode_s * f.decode_low;
    let high = prefill_s * f.prefill_high + decode_s * f.decode_high;
    TurnBand {
        low_s: low * (1.0 - f.busy_margin),
        high_s: high * (1.0 + f.busy_margin),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::bench::BenchBackend;

    fn stat(median: f64, min: f64, max: f64) -> Stat {
        Stat {
            median,
            min,
            max,
            samples: 5,
        }
    }

    fn entry(prefill: Stat, decode: Stat) -> QuantBench {
        QuantBench {
            ggml_type: "Q4_K".into(),
            backend: BenchBackend::Cpu,
            params: 1,
            weight_bytes_per_token: 1,
            file_bytes: 1,
            load_s: 0.0,
            prompt_tokens: 64,
            prefill_tokens_per_s: prefill,
            generated_tokens: 16,
            decode_tokens_per_s: decode,
            decode_weights_per_s: 1.0,
            decode_bandwidth_bytes_per_s: 1.0,
            bandwidth_ratio: None,
            prefill_flops_per_s: 1.0,
            n_layers: 0,
            n_heads: 0,
            n_kv_heads: 0,
            head_dim: 0,
            decode_context_tokens: None,
            prefill_n_embd: None,
        }
    }

    /// Prefill 4 s at a median of 100 tok/s (80–125 measured), decode 10 s at 10 tok/s (8–12.5):
    /// the fastest repetitions give 4·0.8 + 10·0.8 = 11.2 s, the slowest 4·1.25 + 10·1.25 = 17.5 s.
    #[test]
    fn the_band_follows_the_repetitions_of_each_component() {
        let q = entry(stat(100.0, 80.0, 125.0), stat(10.0, 8.0, 12.5));
        let f = factors(&[&q], None);
        let b = turn_band(4.0, 10.0, &f);
        assert!((b.low_s - 11.2).abs() < 1e-9, "{b:?}");
        assert!((b.high_s - 17.5).abs() < 1e-9, "{b:?}");
        // Only decode scattered: only the decode part widens.
        let q = entry(stat(100.0, 100.0, 100.0), stat(10.0, 5.0, 10.0));
        let b = turn_band(4.0, 10.0, &factors(&[&q], None));
        assert!(
            (b.low_s - 14.0).abs() < 1e-9 && (b.high_s - 24.0).abs() < 1e-9,
            "{b:?}"
        );
    }

    #[test]
    fn the_widest_size_counts_and_a_single_value_gives_no_band() {
        let narrow = entry(stat(100.0, 95.0, 105.0), stat(10.0, 9.5, 10.5));
        let wide = entry(stat(100.0, 50.0, 100.0), stat(10.0, 10.0, 10.0));
        let f = factors(&[&narrow, &wide], None);
        assert!((f.prefill_high - 2.0).abs() < 1e-12);
        assert!((f.decode_high - 10.0 / 9.5).abs() < 1e-12);
        let single = entry(Stat::single(100.0), Stat::single(10.0));
        let b = turn_band(4.0, 10.0, &factors(&[&single], None));
        assert_eq!((b.low_s, b.high_s), (14.0, 14.0));
        assert_eq!(factors(&[], None), BandFactors::NONE);
    }

    /// A load average of 3 on 2 cores before the run (1.5 per core: one core's worth beyond the
    /// half task, counted half) and 4 % stolen: 0.5 + 0.04 capped at 0.5 → ±50 %; on an idle
    /// machine nothing is added.
    #[test]
    fn a_busy_benchmark_widens_the_band_on_both_sides() {
        let q = entry(Stat::single(100.0), Stat::single(10.0));
        let busy = BenchConditions {
            load_average_1m: 3.0,
            logical_cores: 2,
            steal_ratio: 0.04,
            on_cpu_share: None,
            descheduled_repetitions: 0,
        };
        assert!(busy.busy());
        assert!((busy.busy_margin() - 0.5).abs() < 1e-12);
        let b = turn_band(4.0, 10.0, &factors(&[&q], Some(&busy)));
        assert!(
            (b.low_s - 7.0).abs() < 1e-9 && (b.high_s - 21.0).abs() < 1e-9,
            "{b:?}"
        );
        let some = BenchConditions {
            load_average_1m: 1.5,
            logical_cores: 2,
            steal_ratio: 0.01,
            on_cpu_share: Some(0.97),
            descheduled_repetitions: 0,
        };
        // 0.75 per core: 0.25 beyond the half task, counted half, plus 1 % stolen.
        assert!((some.busy_margin() - 0.135).abs() < 1e-12);
        let idle = BenchConditions {
            load_average_1m: 0.2,
            logical_cores: 2,
            steal_ratio: 0.0,
            on_cpu_share: Some(0.99),
            descheduled_repetitions: 0,
        };
        assert!(!idle.busy());
        assert_eq!(idle.busy_margin(), 0.0);
    }

    /// Threads off the CPU for 20 % of the timed wall time on an otherwise idle machine: a turn
    /// takes 1 / 0.8 = 1.25 times its on-CPU time, so the band widens by 25 %; the larger of that
    /// and a 10 % steal counts, not their sum. Under 5 % off the CPU is noise and adds nothing.
    #[test]
    fn time_off_the_cpu_widens_the_band_by_what_it_costs() {
        let off = BenchConditions {
            load_average_1m: 0.2,
            logical_cores: 2,
            steal_ratio: 0.0,
            on_cpu_share: Some(0.8),
            descheduled_repetitions: 3,
        };
        assert!(off.busy());
        assert!(
            (off.busy_margin() - 0.25).abs() < 1e-12,
            "{}",
            off.busy_margin()
        );
        let stolen = BenchConditions {
            steal_ratio: 0.1,
            ..off
        };
        assert!((stolen.busy_margin() - 0.25).abs() < 1e-12);
        let slight = BenchConditions {
            on_cpu_share: Some(0.96),
            ..off
        };
        assert!(!slight.busy());
        assert_eq!(slight.busy_margin(), 0.0);
    }
}

//! Table tests of the selector's pure parts and of `plan` on the embedded registry.

use super::*;
use crate::profile::SimdLevel;

const GIB: u64 = 1 << 30;

fn profile(text: &str) -> HardwareProfile {
    HardwareProfile::from_json(text, "fixture").unwrap()
}

fn xeon() -> HardwareProfile {
    profile(include_str!(
        "../../tests/fixtures/profiles/xeon-e5-2660v3.json"
    ))
}

fn catalog() -> (Registry, Tiers) {
    let r = Registry::embedded().unwrap();
    let t = Tiers::embedded(&r).unwrap();
    (r, t)
}

#[test]
fn headroom_is_the_larger_of_1_5_gib_and_a_tenth() {
    // (usable RAM, reserved)
    let cases = [
        (GIB, 3 * GIB / 2),
        (4 * GIB, 3 * GIB / 2),
        (15 * GIB, 3 * GIB / 2),
        (16 * GIB, 16 * GIB / 10),
        (512 * GIB, 512 * GIB / 10),
    ];
    for (usable, reserved) in cases {
        let h = headroom(usable);
        assert!(
            (h.reserved_bytes as i64 - reserved as i64).abs() <= 1,
            "{usable}: {}",
            h.reserved_bytes
        );
        assert_eq!(h.available_bytes, usable.saturating_sub(h.reserved_bytes));
    }
    assert_eq!(headroom(GIB).available_bytes, 0);
}

#[test]
fn unmet_requirements_say_what_is_missing_with_numbers() {
    let hw = xeon();
    let req = |ram: f64, vram: f64, gpus: u32, cores: u32, simd: Vec<SimdLevel>| Requirements {
        min_ram_gib: ram,
        min_vram_gib: vram,
        min_gpus: gpus,
        min_cores: cores,
        min_disk_gib: 0.0,
        min_simd: simd,
    };
    let cases: Vec<(Requirements, Vec<&str>)> = vec![
        (req(16.0, 0.0, 0, 8, vec![SimdLevel::Avx2]), vec![]),
        (
            req(64.0, 0.0, 0, 0, vec![]),
            vec!["needs 64.0 GiB RAM, has 39.0 GiB usable"],
        ),
        (
            req(0.0, 24.0, 1, 0, vec![]),
            vec!["needs 1 GPU(s), has 0", "needs 24 GiB VRAM, has 0"],
        ),
        (req(0.0, 0.0, 0, 32, vec![]), vec!["needs 32 cores, has 16"]),
        (
            req(
                0.0,
                0.0,
                0,
                0,
                vec![SimdLevel::Avx512, SimdLevel::NeonDotprod],
            ),
            vec!["needs SIMD avx512 or neon-dotprod, has avx2"],
        ),
        (
            req(
                0.0,
                0.0,
                0,
                0,
                vec![SimdLevel::Avx2, SimdLevel::NeonDotprod],
            ),
            vec![],
        ),
    ];
    for (r, expect) in cases {
        assert_eq!(unmet_requirements(&hw, &r), expect);
    }
}

#[test]
fn workload_overrides_apply_and_the_context_grows_to_hold_the_turn() {
    let base = Workload {
        prompt_tokens: 550,
        response_tokens: 150,
        context_tokens: 4096,
        concurrency: 1,
    };
    let cases = [
        (WorkloadOverride::default(), base),
        (
            WorkloadOverride {
                response_tokens: Some(30),
                ..Default::default()
            },
            Workload {
                response_tokens: 30,
                ..base
            },
        ),
        (
            WorkloadOverride {
                prompt_tokens: Some(8000),
                ..Default::default()
            },
            Workload {
                prompt_tokens: 8000,
                response_tokens: 150,
                context_tokens: 8150,
                concurrency: 1,
            },
        ),
        (
            WorkloadOverride {
                context_tokens: Some(512),
                ..Default::default()
            },
            Workload {
                context_tokens: 700,
                ..base
            },
        ),
        (
            WorkloadOverride {
                concurrency: Some(3),
                ..Default::default()
            },
            Workload {
                concurrency: 3,
                ..base
            },
        ),
    ];
    for (o, expect) in cases {
        assert_eq!(o.apply(base), expect);
    }
}

#[test]
fn model_input_estimates_size_only_when_unpublished() {
    let (r, _) = catalog();
    let known = model_input(r.get("tinyllama-1.1b-chat-q4_k_m").unwrap());
    assert_eq!(known.file_bytes, 668_788_096);
    assert!(!known.file_bytes_estimated);
    let unknown = model_input(r.get("llama-2-13b-chat-q4_k_m").unwrap());
    assert!(unknown.file_bytes_estimated);
}

#[test]
fn the_chosen_tier_is_the_first_whose_candidate_is_accepted_and_the_rest_say_why() {
    let (r, t) = catalog();
    let hw = xeon();
    let p = plan(
        &hw,
        hw.bench.as_ref(),
        "profile",
        &r,
        &t,
        &SelectOptions::default(),
    )
    .unwrap();
    let c = p.chosen.as_ref().unwrap();
    let idx = p
        .tiers
        .iter()
        .position(|x| x.verdict == TierOutcome::Chosen)
        .unwrap();
    assert_eq!(Some(p.tiers[idx].id.clone()), c.tier);
    for before in &p.tiers[..idx] {
        assert_eq!(before.verdict, TierOutcome::Rejected);
        assert!(!before.reason.is_empty());
    }
    for after in &p.tiers[idx + 1..] {
        assert_eq!(after.verdict, TierOutcome::NotNeeded);
    }
    // A tighter budget moves the choice down (or nowhere), never up.
    let tight = SelectOptions {
        max_latency_s: Some(c.prediction.turn_s * 0.5),
        ..Default::default()
    };
    let p2 = plan(&hw, hw.bench.as_ref(), "profile", &r, &t, &tight).unwrap();
    match &p2.chosen {
        Some(c2) => {
            let idx2 = p2
                .tiers
                .iter()
                .position(|x| x.verdict == TierOutcome::Chosen)
                .unwrap();
            assert!(idx2 >= idx);
            assert!(c2.prediction.turn_s <= c.prediction.turn_s * 0.5);
        }
        None => assert!(p2.no_fit.is_some()),
    }
}

#[test]
fn unknown_tier_or_model_is_an_error() {
    let (r, t) = catalog();
    let hw = xeon();
    let o = SelectOptions {
        tier: Some("nope".into()),
        ..Default::default()
    };
    assert!(matches!(
        plan(&hw, None, "none", &r, &t, &o),
        Err(SelectError::UnknownTier(_))
    ));
    let o = SelectOptions {
        model: Some("nope".into()),
        ..Default::default()
    };
    assert!(matches!(
        plan(&hw, None, "none", &r, &t, &o),
        Err(SelectError::UnknownModel(_))
    ));
}

/// The xeon fixture's benchmark with every rate scattered by `spread` around its median (the
/// fastest repetition `1 + spread` times the median, the slowest `1 / (1 + spread)`).
fn scattered(hw: &HardwareProfile, spread: f64) -> crate::types::bench::BenchResult {
    let mut b = hw.bench.clone().unwrap();
    for q in &mut b.quants {
        for s in [&mut q.prefill_tokens_per_s, &mut q.decode_tokens_per_s] {
            s.min = s.median / (1.0 + spread);
            s.max = s.median * (1.0 + spread);
            s.samples = 5;
        }
    }
    b
}

#[test]
fn a_promise_is_judged_at_the_upper_end_of_the_band() {
    let (r, t) = catalog();
    let hw = xeon();
    let none = scattered(&hw, 0.0);
    let exact = plan(
        &hw,
        Some(&none),
        "profile",
        &r,
        &t,
        &SelectOptions::default(),
    )
    .unwrap();
    let c = exact.chosen.clone().unwrap();
    let p = &c.prediction;
    // Without scatter the band is the prediction itself.
    assert_eq!((p.turn_s_low, p.turn_s_high), (p.turn_s, p.turn_s));

    // 20 % scatter: the band spans median/1.2 to median·1.2 of the same prediction.
    let b = scattered(&hw, 0.2);
    let wide = plan(&hw, Some(&b), "profile", &r, &t, &SelectOptions::default()).unwrap();
    let model = |pl: &Plan, id: &str| {
        pl.tiers
            .iter()
            .flat_map(|t| &t.candidates)
            .find(|x| x.model == id)
            .unwrap()
            .prediction
            .clone()
    };
    let q = model(&wide, &c.model);
    assert!((q.turn_s - p.turn_s).abs() < 1e-9);
    assert!(
        (q.turn_s_low - p.turn_s / 1.2).abs() < 1e-6 * p.turn_s,
        "{q:?}"
    );
    assert!(
        (q.turn_s_high - p.turn_s * 1.2).abs() < 1e-6 * p.turn_s,
        "{q:?}"
    );
    assert!(q.turn_with_band().contains('–'));

    // A budget between the median and the upper end: the median would keep it, the band does
    // not, and the reason says so.
    let budget = p.turn_s * 1.1;
    let opts = SelectOptions {
        model: Some(c.model.clone()),
        max_latency_s: Some(budget),
        ..Default::default()
    };
    let at_median = plan(&hw, Some(&none), "profile", &r, &t, &opts).unwrap();
    assert!(at_median.chosen.unwrap().meets_promise);
    let banded = plan(&hw, Some(&b), "profile", &r, &t, &opts).unwrap();
    let chosen = banded.chosen.unwrap();
    assert!(!chosen.meets_promise);
    assert!(
        chosen
            .warnings
            .iter()
            .any(|w| w.contains("the band's upper end does not")),
        "{:?}",
        chosen.warnings
    );
}

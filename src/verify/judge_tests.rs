//! `judge`: every way a verification can miss its promise, and the ratio it reports.

use super::*;

fn report(turn_s: f64, load_s: f64) -> VerifyReport {
    VerifyReport {
        schema_version: VERIFY_SCHEMA_VERSION,
        model_path: PathBuf::from("/m.gguf"),
        architecture: "llama".into(),
        settings: VerifySettings {
            threads: 2,
            gpu_layers: 0,
            context_tokens: 1024,
            prompt_tokens: 500,
            response_tokens: 150,
            concurrency: 1,
            cpu_variant: None,
        },
        chat_template_used: true,
        prompt_tokens: 500,
        generated_tokens: 150,
        load_s,
        ttft_s: 1.0,
        prefill_tokens_per_s: 500.0,
        decode_tokens_per_s: 20.0,
        turn_s,
        cold_turn_s: turn_s + load_s,
        logits_finite: true,
        utf8_valid: true,
        output_sample: "ok".into(),
        at: crate::types::time::now(),
        notes: Vec::new(),
        capabilities: None,
        concurrency: None,
        cpu_variant: None,
    }
}

#[test]
fn within_the_promise_passes_with_its_ratios() {
    let v = judge(&report(8.0, 2.0), 10.0, 4.0, Some(16.0), &[]);
    assert!(v.passed, "{v:?}");
    assert!(v.reasons.is_empty());
    assert!((v.turn_ratio - 0.8).abs() < 1e-12);
    assert!((v.load_ratio - 0.5).abs() < 1e-12);
    assert_eq!(v.measured_over_predicted, Some(0.5));
}

#[test]
fn exactly_at_the_promise_still_passes() {
    let v = judge(&report(10.0, 4.0), 10.0, 4.0, None, &[]);
    assert!(v.passed, "{v:?}");
    assert_eq!(v.measured_over_predicted, None);
}

#[test]
fn a_slow_turn_misses_and_says_by_how_much() {
    let v = judge(&report(12.5, 1.0), 10.0, 4.0, None, &[]);
    assert!(!v.passed);
    assert_eq!(v.reasons.len(), 1, "{:?}", v.reasons);
    assert!(v.reasons[0].contains("12.50 s"), "{}", v.reasons[0]);
    assert!(v.reasons[0].contains("25% over"), "{}", v.reasons[0]);
}

#[test]
fn a_slow_load_misses_on_its_own() {
    let v = judge(&report(5.0, 9.0), 10.0, 4.0, None, &[]);
    assert!(!v.passed);
    assert!(v.reasons.iter().any(|r| r.contains("loading took 9.00 s")));
    assert!((v.load_ratio - 2.25).abs() < 1e-12);
}

#[test]
fn broken_output_misses_however_fast_it_was() {
    let mut r = report(1.0, 1.0);
    r.logits_finite = false;
    r.generated_tokens = 0;
    r.utf8_valid = false;
    let v = judge(&r, 10.0, 10.0, None, &[]);
    assert!(!v.passed);
    assert_eq!(v.reasons.len(), 3, "{:?}", v.reasons);
}

#[test]
fn an_unusable_prediction_gives_no_ratio() {
    let v = judge(&report(5.0, 1.0), 10.0, 4.0, Some(0.0), &[]);
    assert_eq!(v.measured_over_predicted, None);
}

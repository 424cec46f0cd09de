//! The llama.cpp session the benchmark measures with: rewinding to the end of the prompt (or to a
//! shorter context it was cut back to) gives the same greedy continuation, so repeated decode runs
//! measure the same work.

mod support;

use minerva_setup::llama;

/// The largest difference between two logit vectors.
fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}

#[test]
fn rewind_replays_the_same_computation_at_the_same_positions() {
    let dir = tempfile::tempdir().unwrap();
    let backend = &support::llama_backend().llama;
    let model = support::load_tiny_q8(dir.path());
    let mut s = model.session(backend, 1, 128, 64).unwrap();
    let prompt = llama::prompt_tokens(48, model.n_vocab(), 8);
    s.prefill(&prompt).unwrap();
    let mut first = Vec::new();
    for _ in 0..6 {
        s.generate(1).unwrap();
        first.push(s.last_logits().to_vec());
    }
    assert_eq!(s.position(), 54);
    // Going on without a rewind evaluates new positions: different logits.
    s.generate(1).unwrap();
    let moved = s.last_logits().to_vec();
    assert!(max_diff(&moved, &first[5]) > 1e-3, "positions matter");
    for _ in 0..2 {
        s.rewind().unwrap();
        assert_eq!(s.position(), 48);
        for expected in &first {
            s.generate(1).unwrap();
            assert!(
                max_diff(s.last_logits(), expected) < 1e-3,
                "same work after a rewind"
            );
        }
    }
}

#[test]
fn generate_until_stops_at_the_deadline_after_at_least_one_token() {
    let dir = tempfile::tempdir().unwrap();
    let backend = &support::llama_backend().llama;
    let model = support::load_tiny_q8(dir.path());
    let mut s = model.session(backend, 1, 256, 32).unwrap();
    s.prefill(&llama::prompt_tokens(32, model.n_vocab(), 8))
        .unwrap();
    let (n, secs) = s
        .generate_until(100, Some(std::time::Instant::now()))
        .unwrap();
    assert_eq!(n, 1);
    assert!(secs > 0.0);
    let (n, _) = s.generate_until(20, None).unwrap();
    assert_eq!(n, 20);
    assert_eq!(s.position(), 32 + 21);
}

#[test]
fn truncate_continues_at_the_shorter_context_and_rewinds_there() {
    let dir = tempfile::tempdir().unwrap();
    let backend = &support::llama_backend().llama;
    let model = support::load_tiny_q8(dir.path());
    let mut s = model.session(backend, 1, 128, 64).unwrap();
    s.prefill(&llama::prompt_tokens(48, model.n_vocab(), 8))
        .unwrap();
    s.generate(1).unwrap();
    let at_48 = s.last_logits().to_vec();
    s.truncate(16).unwrap();
    assert_eq!(s.position(), 16);
    s.generate(3).unwrap();
    assert_eq!(s.position(), 19);
    let after = s.last_logits().to_vec();
    assert!(max_diff(&after, &at_48) > 1e-3, "a different context");
    // Rewinds now return to 16 and replay the same work.
    s.rewind().unwrap();
    assert_eq!(s.position(), 16);
    s.generate(3).unwrap();
    assert!(max_diff(s.last_logits(), &after) < 1e-3);
    // Never beyond the prompt.
    s.truncate(100).unwrap();
    assert_eq!(s.position(), 16);
}

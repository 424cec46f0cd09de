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
fn a_saved_kv_cache_restores_what_the_prefill_computed_and_a_bad_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let backend = &support::llama_backend().llama;
    let model = support::load_tiny_q8(dir.path());
    let prompt = llama::prompt_tokens(48, model.n_vocab(), 8);
    let state = dir.path().join("tiny.kv48.state");
    let decode_after = |expect_restored: bool, tokens: &[llama_cpp_2::token::LlamaToken]| {
        let mut s = model.session(backend, 1, 128, 64).unwrap();
        let restored = s.restore_state(tokens, &state);
        assert_eq!(restored, expect_restored);
        if !restored {
            assert_eq!(s.position(), 0, "an empty cache after a failed restore");
            s.prefill(tokens).unwrap();
            assert!(s.save_state(tokens, &state));
        }
        assert_eq!(s.position(), tokens.len() as i32);
        s.generate(3).unwrap();
        s.last_logits().to_vec()
    };
    // First: evaluated, and saved.
    let prefilled = decode_after(false, &prompt);
    assert!(state.is_file());
    // Then restored: the same cache and the same token after the prompt, so the same logits.
    let restored = decode_after(true, &prompt);
    assert!(max_diff(&restored, &prefilled) < 1e-4);
    // Another prompt is not this state: evaluated, and the file now holds that one.
    let other = llama::prompt_tokens(40, model.n_vocab(), 9);
    decode_after(false, &other);
    decode_after(true, &other);
    // A damaged file is refused (then evaluated anew and replaced).
    std::fs::write(&state, b"not a llama.cpp state").unwrap();
    let again = decode_after(false, &prompt);
    assert!(max_diff(&again, &prefilled) < 1e-4);
    decode_after(true, &prompt);
    // Nothing half-written is left next to it.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

//! The verification run on generated models: real llama.cpp, real files.

use minerva_setup::gguf::writer::{write_model, ModelSpec, WeightLayout};
use minerva_setup::gguf::GgmlType;
use minerva_setup::progress::NoProgress;
use minerva_setup::verify::{self, VerifySettings};

fn settings() -> VerifySettings {
    VerifySettings {
        threads: 2,
        gpu_layers: 0,
        context_tokens: 512,
        prompt_tokens: 120,
        response_tokens: 16,
        concurrency: 1,
    }
}

#[test]
fn a_generated_model_verifies_with_measured_figures() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    write_model(
        &path,
        &ModelSpec::tiny(WeightLayout::Uniform(GgmlType::Q8_0)),
    )
    .unwrap();
    let r = verify::run(&path, &settings(), &NoProgress).unwrap();
    assert_eq!(r.generated_tokens, 16);
    assert!(r.logits_finite);
    assert!(r.utf8_valid, "{:?}", r.output_sample);
    assert!(
        r.chat_template_used,
        "the writer ships a ChatML template: {:?}",
        r.notes
    );
    // The prompt is sized to the workload: within a paragraph of the target.
    assert!(
        (90..=170).contains(&r.prompt_tokens),
        "prompt tokens {}",
        r.prompt_tokens
    );
    assert!(r.load_s > 0.0 && r.ttft_s > 0.0 && r.turn_s >= r.ttft_s);
    assert!(r.decode_tokens_per_s > 0.0 && r.prefill_tokens_per_s > 0.0);
    assert!((r.cold_turn_s - (r.load_s + r.turn_s)).abs() < 1e-9);
    eprintln!("{r:#?}");
}

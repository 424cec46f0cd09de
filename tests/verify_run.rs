//! The verification run on generated models: real llama.cpp, real files.

use std::path::Path;
use std::time::Instant;

use minerva_setup::gguf::writer::{write_model, ModelSpec, WeightLayout};
use minerva_setup::gguf::{FileType, GgmlType};
use minerva_setup::progress::NoProgress;
use minerva_setup::types::capabilities::{AnswerKind, Capability, TemplateSource};
use minerva_setup::verify::{self, VerifyReport, VerifySettings};

fn settings() -> VerifySettings {
    VerifySettings {
        threads: 2,
        gpu_layers: 0,
        context_tokens: 512,
        prompt_tokens: 120,
        response_tokens: 16,
        concurrency: 1,
        cpu_variant: None,
    }
}

fn write(dir: &Path, name: &str, spec: &ModelSpec) -> std::path::PathBuf {
    let path = dir.join(name);
    write_model(&path, spec).unwrap();
    path
}

fn tiny() -> ModelSpec {
    ModelSpec::tiny(WeightLayout::Uniform(GgmlType::Q8_0))
}

#[test]
fn a_generated_model_verifies_with_measured_figures() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "tiny.gguf", &tiny());
    let start = Instant::now();
    let r = verify::run(&path, &settings(), &NoProgress).unwrap();
    let wall_s = start.elapsed().as_secs_f64();
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

    let c = r.capabilities.as_ref().expect("capabilities are checked");
    assert_eq!(c.chat_template.source, TemplateSource::Gguf);
    assert!(c.chat_template.found_in_file && c.chat_template.applied);
    assert_eq!(c.stopping.budget_tokens, 16);
    assert!(c.stopping.answer_tokens <= 16);
    assert_eq!(
        c.stopping.stopped_at_end_token,
        c.stopping.answer_tokens < 16,
        "{:?}",
        c.stopping
    );
    // The checks run after the timed turn and are timed on their own: loading, the turn and the
    // checks are disjoint stretches of the run.
    assert!(c.checks_s > 0.0);
    assert!(
        r.load_s + r.turn_s + c.checks_s <= wall_s,
        "load {} + turn {} + checks {} > wall {wall_s}",
        r.load_s,
        r.turn_s,
        c.checks_s
    );
    let t = c.tool_call.as_ref().expect("the tool call was tried");
    assert!(t.constrained.matches_schema, "{t:?}");
    eprintln!("{r:#?}");
}

/// The grammar-constrained call parses against the schema whatever the weights; the model's own
/// answer is recorded as whatever it is (random weights do not write JSON).
#[test]
fn the_constrained_tool_call_always_matches_and_the_unconstrained_one_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let layouts = [
        WeightLayout::Uniform(GgmlType::Q8_0),
        WeightLayout::FileType(FileType::Q4_K_M),
        WeightLayout::Uniform(GgmlType::F16),
    ];
    for (i, layout) in layouts.into_iter().enumerate() {
        for seed in [1u64, 7, 42] {
            let mut spec = ModelSpec::tiny(layout);
            spec.seed = seed;
            let path = write(dir.path(), &format!("m{i}-{seed}.gguf"), &spec);
            let r = verify::run(&path, &settings(), &NoProgress).unwrap();
            let c = r.capabilities.unwrap();
            let t = c.tool_call.expect("the tool call was tried");
            let label = format!("{} seed {seed}", layout.label());
            assert!(t.constrained.matches_schema, "{label}: {:?}", t.constrained);
            let parsed: serde_json::Value = serde_json::from_str(t.constrained.sample.trim())
                .unwrap_or_else(|e| panic!("{label}: {e}: {:?}", t.constrained.sample));
            assert_eq!(parsed["name"], "get_disk_usage", "{label}");
            assert!(parsed["arguments"]["host"].is_string(), "{label}");
            assert!(parsed["arguments"]["warn_percent"].is_u64(), "{label}");
            assert!(t.constrained.tokens > 0 && t.constrained.seconds > 0.0);
            // Reported, pass or not: tokens generated, and a reason either way.
            assert!(t.unconstrained.tokens > 0, "{label}: {:?}", t.unconstrained);
            assert!(!t.unconstrained.detail.is_empty(), "{label}");
            eprintln!(
                "{label}: own call {} ({}), {} tokens in {:.3} s; constrained {} tokens in {:.3} s; checks {:.3} s",
                if t.unconstrained.matches_schema { "matches" } else { "does not match" },
                t.unconstrained.detail,
                t.unconstrained.tokens,
                t.unconstrained.seconds,
                t.constrained.tokens,
                t.constrained.seconds,
                c.checks_s
            );
        }
    }
}

#[test]
fn a_model_without_a_template_is_flagged_and_a_known_family_gets_its_built_in_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = tiny();
    spec.chat_template = None;
    let path = write(dir.path(), "bare.gguf", &spec);
    let r = verify::run(&path, &settings(), &NoProgress).unwrap();
    let c = r.capabilities.as_ref().unwrap();
    assert_eq!(c.chat_template.source, TemplateSource::None);
    assert!(!c.chat_template.found_in_file && !c.chat_template.applied);
    assert!(!r.chat_template_used);
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("no usable chat template")),
        "{:?}",
        c.warnings
    );
    // Recorded and shown, but a miss only when required.
    assert!(verify::capability_reasons(&r, &[Capability::ToolCall])
        .iter()
        .all(|x| !x.contains("chat template")));
    let reasons = verify::capability_reasons(&r, &[Capability::ChatTemplate]);
    assert!(
        reasons
            .iter()
            .any(|x| x.contains("`chat-template` is required")),
        "{reasons:?}"
    );

    spec.name = "Qwen2.5 0.5B Instruct".into();
    let path = write(dir.path(), "qwen-bare.gguf", &spec);
    let r = verify::run(&path, &settings(), &NoProgress).unwrap();
    let c = r.capabilities.as_ref().unwrap();
    assert_eq!(c.chat_template.source, TemplateSource::BuiltIn);
    assert_eq!(c.chat_template.builtin_name.as_deref(), Some("chatml"));
    assert!(c.chat_template.applied && !c.chat_template.found_in_file);
    assert!(verify::capability_reasons(&r, &[Capability::ChatTemplate]).is_empty());
}

/// A long answer from random weights falls into a loop under greedy decoding: the verification
/// says so and judges it a miss even when the promise is kept.
#[test]
fn a_looping_answer_is_reported_as_degenerate_and_misses() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "tiny.gguf", &tiny());
    let mut s = settings();
    s.response_tokens = LOOPING_RESPONSE_TOKENS;
    let r = verify::run(&path, &s, &NoProgress).unwrap();
    let c = r.capabilities.as_ref().unwrap();
    assert_eq!(c.answer.kind, AnswerKind::Loop, "{:?}", c.answer);
    assert!(c.answer.repeated_ratio >= 0.5, "{:?}", c.answer);
    let v = verify::judge(&r, 1e6, 1e6, None, &[]);
    assert!(!v.passed);
    assert!(
        v.reasons.iter().any(|x| x.starts_with("the answer loops")),
        "{:?}",
        v.reasons
    );
}

/// An answer length at which the tiny model's greedy answer has fallen into its loop for most
/// of its length (see the test above). Where the loop starts depends on the CPU kernels' rounding:
/// with Sapphire Rapids (AMX) kernels 128 tokens were only 46 % loop, so this leaves room.
const LOOPING_RESPONSE_TOKENS: u32 = 256;

#[test]
fn an_old_report_without_capabilities_judges_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "tiny.gguf", &tiny());
    let r = verify::run(&path, &settings(), &NoProgress).unwrap();
    let mut v = serde_json::to_value(&r).unwrap();
    v.as_object_mut().unwrap().remove("capabilities");
    let old: VerifyReport = serde_json::from_value(v).unwrap();
    assert_eq!(old.capabilities, None);
    assert!(verify::capability_reasons(&old, &[Capability::ToolCall]).is_empty());
}

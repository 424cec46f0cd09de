//! Generated models load in real llama.cpp and generate tokens with finite logits, in every
//! tensor type the writer supports and in the mixed Q4_K_M / Q5_K_M layouts.

mod support;

use minerva_setup::gguf::writer::{self, ModelSpec, WeightLayout};
use minerva_setup::gguf::{FileType, GgmlType};
use minerva_setup::llama;

fn generate(layout: WeightLayout) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    let spec = ModelSpec::tiny(layout);
    writer::write_model(&path, &spec).unwrap();
    let backend = &support::llama_backend().llama;
    let model = llama::load(backend, &path, 0).unwrap_or_else(|e| panic!("{layout:?}: {e}"));
    assert_eq!(model.n_vocab(), spec.shape.vocab_size as i32);
    let mut s = model.session(backend, 1, 64, 32).unwrap();
    let prompt = llama::prompt_tokens(24, model.n_vocab(), 8);
    // prefill and generate fail with NonFiniteLogits if any logit is NaN or infinite.
    s.prefill(&prompt)
        .unwrap_or_else(|e| panic!("{layout:?}: {e}"));
    s.generate(8).unwrap_or_else(|e| panic!("{layout:?}: {e}"));
    assert_eq!(s.position(), 32);
}

#[test]
fn every_uniform_type_loads_and_generates_with_finite_logits() {
    let types: Vec<GgmlType> = GgmlType::all().filter(|t| writer::supports(*t)).collect();
    // At least the types the registry's models are made of.
    for t in [
        GgmlType::F16,
        GgmlType::Q8_0,
        GgmlType::Q4_0,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
    ] {
        assert!(types.contains(&t), "{t}");
    }
    for t in types {
        generate(WeightLayout::Uniform(t));
    }
}

#[test]
fn mixed_k_quant_layouts_load_and_generate() {
    generate(WeightLayout::FileType(FileType::Q4_K_M));
    generate(WeightLayout::FileType(FileType::Q5_K_M));
}

#[test]
fn the_tokenizer_and_chat_template_work_in_llama_cpp() {
    let dir = tempfile::tempdir().unwrap();
    let m = support::load_tiny_q8(dir.path());
    let vocab = m.model.vocab();
    let tokens = vocab.tokenize(b"hello the server", true, false);
    let ids: Vec<i32> = tokens.iter().map(|t| t.0).collect();
    assert_eq!(ids[0], writer::TOKEN_BOS as i32, "BOS first: {ids:?}");
    let pieces: Vec<String> = tokens[1..]
        .iter()
        .map(|t| vocab.text(*t).unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        pieces,
        ["\u{2581}hello", "\u{2581}the", "\u{2581}server"],
        "each word one token: {ids:?}"
    );
    let nl = vocab.tokenize(b"\n", false, false);
    // SentencePiece prefixes a space (`▁`), then the newline falls back to its byte token.
    let nl_ids: Vec<i32> = nl.iter().map(|t| t.0).collect();
    assert_eq!(
        nl_ids.last(),
        Some(&((writer::FIRST_BYTE_TOKEN + 10) as i32)),
        "{nl_ids:?}"
    );
    let im_end = vocab.tokenize(b"<|im_end|>", false, true);
    assert_eq!(
        im_end.iter().map(|t| t.0).collect::<Vec<_>>(),
        vec![writer::TOKEN_IM_END as i32]
    );

    let tmpl = m.model.chat_template(None).unwrap();
    let chat = [llama_cpp_2::model::LlamaChatMessage::new("user".into(), "hello".into()).unwrap()];
    let text = m.model.apply_chat_template(&tmpl, &chat, true).unwrap();
    assert_eq!(
        text,
        "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn llama_cpp_quantises_a_generated_f16_model_into_its_own_type_mix() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f16.gguf");
    // 896 wide, as Qwen2.5-0.5B: rows of 896 are not a multiple of 256, so K-quants fall back.
    let mut spec = ModelSpec::tiny(WeightLayout::Uniform(GgmlType::F16));
    spec.shape.n_embd = 896;
    spec.shape.n_heads = 14;
    spec.shape.head_dim = 64;
    spec.shape.n_kv_heads = 2;
    writer::write_model(&src, &spec).unwrap();
    let backend = &support::llama_backend().llama;
    for (ft, main) in [
        (FileType::Q8_0, GgmlType::Q8_0),
        (FileType::Q4_K_M, GgmlType::Q5_0),
    ] {
        let dst = dir.path().join(format!("{}.gguf", ft.label()));
        llama::quantize(&src, &dst, ft, 2).unwrap();
        let h = minerva_setup::gguf::reader::read_header(&dst).unwrap();
        let t = h.tensor_summaries();
        let of = |name: &str| t.iter().find(|x| x.name == name).unwrap().ggml_type;
        // Norms stay F32; the feed-forward input rows of 896 are the fallback type under Q4_K_M.
        assert_eq!(of("blk.0.attn_norm.weight"), GgmlType::F32);
        assert_eq!(of("blk.0.ffn_gate.weight"), main, "{ft:?}");
        if ft == FileType::Q4_K_M {
            // ffn_down's rows are n_ff = 512 long: a K-quant applies (Q6_K or Q4_K by layer).
            let down = of("blk.0.ffn_down.weight");
            assert!(matches!(down, GgmlType::Q4_K | GgmlType::Q6_K), "{down}");
        }
        // The quantised file loads and generates with finite logits.
        let model = llama::load(backend, &dst, 0).unwrap();
        let mut s = model.session(backend, 1, 64, 32).unwrap();
        s.prefill(&llama::prompt_tokens(24, model.n_vocab(), 8))
            .unwrap();
        s.generate(4).unwrap();
    }
    let missing = dir.path().join("missing.gguf");
    let err = llama::quantize(&missing, &dir.path().join("x.gguf"), FileType::Q8_0, 1).unwrap_err();
    assert!(err.to_string().contains("missing.gguf"), "{err}");
}

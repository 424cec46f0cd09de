//! The GGUF writer and reader agree, and the reader refuses broken files with errors that name
//! the file and the problem.

use std::path::Path;

use minerva_setup::gguf::reader::{self, GgufError, MetaValue};
use minerva_setup::gguf::writer::{self, ModelSpec, WeightLayout};
use minerva_setup::gguf::{FileType, GgmlType};

fn spec_with_every_value_type() -> ModelSpec {
    let mut spec = ModelSpec::tiny(WeightLayout::FileType(FileType::Q4_K_M));
    spec.extra_metadata = vec![
        ("test.u8".into(), MetaValue::U8(200)),
        ("test.i8".into(), MetaValue::I8(-100)),
        ("test.u16".into(), MetaValue::U16(60000)),
        ("test.i16".into(), MetaValue::I16(-30000)),
        ("test.u32".into(), MetaValue::U32(4_000_000_000)),
        ("test.i32".into(), MetaValue::I32(-2_000_000_000)),
        ("test.f32".into(), MetaValue::F32(1.5e-3)),
        ("test.bool".into(), MetaValue::Bool(true)),
        (
            "test.string".into(),
            MetaValue::String("Grüße, \u{2581}world".into()),
        ),
        ("test.u64".into(), MetaValue::U64(u64::MAX - 1)),
        ("test.i64".into(), MetaValue::I64(i64::MIN + 1)),
        ("test.f64".into(), MetaValue::F64(-2.25e100)),
        (
            "test.nested".into(),
            MetaValue::Array(
                9,
                vec![MetaValue::Array(
                    4,
                    vec![MetaValue::U32(1), MetaValue::U32(2)],
                )],
            ),
        ),
    ];
    spec
}

#[test]
fn reader_reads_back_every_key_and_tensor_the_writer_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    let spec = spec_with_every_value_type();
    let written = writer::write_model(&path, &spec).unwrap();

    let header = reader::read_header(&path).unwrap();
    assert_eq!(
        header.metadata,
        writer::metadata(&spec),
        "metadata, in order"
    );
    assert_eq!(header.tensor_summaries(), written.tensors);
    assert_eq!(header.data_offset, written.data_offset);
    assert_eq!(header.file_bytes, written.file_bytes);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), written.file_bytes);
    assert_eq!(writer::expected_file_bytes(&spec), written.file_bytes);
    for t in &header.tensors {
        assert_eq!(
            t.offset % header.alignment,
            0,
            "{} is aligned",
            t.summary.name
        );
    }

    let model = header.into_model().unwrap();
    assert_eq!(model.shape, spec.shape);
    assert_eq!(model.chat_template.as_deref(), Some(writer::CHAT_TEMPLATE));
    assert_eq!(
        model.total_params,
        written.tensors.iter().map(|t| t.n_elements).sum::<u64>()
    );
    assert_eq!(
        model.metadata.get("test.f64"),
        Some(&MetaValue::F64(-2.25e100))
    );
    let tokens = model.metadata["tokenizer.ggml.tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), spec.shape.vocab_size as usize);
    // The Q4_K_M mix survives the round trip: Q6_K output, Q6_K in the last layer's attn_v.
    let ty = |n: &str| {
        model
            .tensors
            .iter()
            .find(|t| t.name == n)
            .unwrap()
            .ggml_type
    };
    assert_eq!(ty("output.weight"), GgmlType::Q6_K);
    assert_eq!(ty("blk.1.attn_v.weight"), GgmlType::Q6_K);
    assert_eq!(ty("blk.0.attn_q.weight"), GgmlType::Q4_K);
    assert_eq!(model.dominant_type(), Some(GgmlType::Q4_K));
}

#[test]
fn the_same_spec_writes_the_same_bytes_and_another_seed_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ModelSpec::tiny(WeightLayout::Uniform(GgmlType::Q8_0));
    writer::write_model(&dir.path().join("a.gguf"), &spec).unwrap();
    writer::write_model(&dir.path().join("b.gguf"), &spec).unwrap();
    let mut other = spec.clone();
    other.seed += 1;
    writer::write_model(&dir.path().join("c.gguf"), &other).unwrap();
    let read = |n: &str| std::fs::read(dir.path().join(n)).unwrap();
    assert_eq!(read("a.gguf"), read("b.gguf"));
    assert_ne!(read("a.gguf"), read("c.gguf"));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

fn tiny_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("model.gguf");
    writer::write_model(
        &path,
        &ModelSpec::tiny(WeightLayout::Uniform(GgmlType::Q4_0)),
    )
    .unwrap();
    path
}

#[test]
fn reader_rejects_a_file_truncated_in_the_data_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = tiny_file(dir.path());
    let full = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(full - 1).unwrap();
    drop(f);
    let err = reader::read_header(&path).unwrap_err();
    match &err {
        GgufError::TruncatedData {
            needed, file_bytes, ..
        } => {
            assert_eq!(*needed, full);
            assert_eq!(*file_bytes, full - 1);
        }
        other => panic!("expected TruncatedData, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()) && msg.contains("truncated"),
        "{msg}"
    );
}

#[test]
fn reader_rejects_a_file_truncated_in_the_header_and_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let path = tiny_file(dir.path());
    for len in [6u64, 30, 2000] {
        let bytes = std::fs::read(&path).unwrap();
        let cut = dir.path().join(format!("cut-{len}.gguf"));
        std::fs::write(&cut, &bytes[..len as usize]).unwrap();
        let err = reader::read_header(&cut).unwrap_err();
        assert!(
            matches!(err, GgufError::TruncatedHeader { file_bytes, .. } if file_bytes == len),
            "{len}: {err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&cut.display().to_string()) && msg.contains("while reading"),
            "{msg}"
        );
    }
}

#[test]
fn reader_rejects_a_wrong_magic_and_shows_what_it_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = tiny_file(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[..4].copy_from_slice(b"<htm");
    let bad = dir.path().join("error-page.gguf");
    std::fs::write(&bad, &bytes).unwrap();
    let err = reader::read_header(&bad).unwrap_err();
    assert!(
        matches!(err, GgufError::BadMagic { ref found, .. } if found == b"<htm"),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("error-page.gguf") && msg.contains("not a GGUF file"),
        "{msg}"
    );

    let empty = dir.path().join("empty.gguf");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(
        reader::read_header(&empty),
        Err(GgufError::BadMagic { .. })
    ));
}

#[test]
fn reader_refuses_an_absurd_string_length_without_allocating_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evil.gguf");
    let mut b = Vec::new();
    b.extend_from_slice(b"GGUF");
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes());
    b.extend_from_slice(&(u64::MAX / 2).to_le_bytes()); // key length
    std::fs::write(&path, &b).unwrap();
    assert!(matches!(
        reader::read_header(&path),
        Err(GgufError::TruncatedHeader { .. })
    ));
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let err = reader::read_header(Path::new("/nonexistent/minerva.gguf")).unwrap_err();
    assert!(matches!(err, GgufError::Io { .. }));
    assert!(err.to_string().contains("/nonexistent/minerva.gguf"));
}

/// A GGUF written by llama.cpp's own tooling, not by our writer: the vocabulary-only BERT file
/// that ships with llama.cpp (`models/ggml-vocab-bert-bge.gguf`, MIT, copied from the
/// `llama-cpp-2` crate). It has no tensors and ends right after its header, unpadded.
#[test]
fn reader_reads_a_gguf_written_by_llama_cpp_tooling() {
    let h = reader::read_header(Path::new("tests/fixtures/gguf-vocab-bert-bge.gguf")).unwrap();
    assert_eq!(h.version, 3);
    assert!(h.tensors.is_empty());
    assert_eq!(
        h.get("tokenizer.ggml.model").and_then(MetaValue::as_str),
        Some("bert")
    );
    let shape = h.shape().unwrap();
    assert_eq!(
        (
            shape.architecture.as_str(),
            shape.n_layers,
            shape.n_embd,
            shape.n_ff,
            shape.n_heads
        ),
        ("bert", 12, 384, 1536, 12)
    );
    assert_eq!(shape.n_kv_heads, 12, "defaults to the head count");
    assert_eq!(
        shape.head_dim, 32,
        "embedding / heads when key_length is absent"
    );
    assert_eq!(shape.vocab_size, 30522, "from the token list");
    assert_eq!(shape.context_length, 512);
}

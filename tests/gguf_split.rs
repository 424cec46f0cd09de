//! A model split in parts by llama.cpp's gguf-split layout, read across its parts
//! (`gguf::split`): generated split models read as the unsplit model, and a missing part or
//! parts that disagree are refused with the part named.

use minerva_setup::gguf::reader::{self, read_header, MetaValue};
use minerva_setup::gguf::split::{read_model, KEY_SPLIT_COUNT};
use minerva_setup::gguf::writer::{write_model, write_split_model, ModelSpec, WeightLayout};
use minerva_setup::gguf::GgmlType;

fn spec() -> ModelSpec {
    ModelSpec::tiny(WeightLayout::Uniform(GgmlType::Q8_0))
}

#[test]
fn a_split_model_reads_as_the_unsplit_one() {
    let dir = tempfile::tempdir().unwrap();
    let whole = write_model(&dir.path().join("m.gguf"), &spec()).unwrap();
    let parts = write_split_model(dir.path(), "m", &spec(), 3).unwrap();
    assert_eq!(parts.len(), 3);
    assert!(parts.iter().all(|p| !p.tensors.is_empty()), "by layer");
    let a = reader::read_model(&whole.path).unwrap();
    let b = read_model(&parts[0].path).unwrap();
    assert_eq!(b.shape, a.shape);
    assert_eq!(b.tensors, a.tensors);
    assert_eq!(b.total_params, a.total_params);
    assert_eq!(b.tensor_bytes, a.tensor_bytes);
    assert_eq!(b.chat_template, a.chat_template);
    assert_eq!(
        b.file_bytes,
        parts.iter().map(|p| p.file_bytes).sum::<u64>()
    );
    assert_eq!(b.metadata.get(KEY_SPLIT_COUNT), Some(&MetaValue::U16(3)));
    // Only the first part carries the model's metadata.
    let second = read_header(&parts[1].path).unwrap();
    assert!(second.architecture().is_none());
    // An unsplit file reads as itself.
    assert_eq!(read_model(&whole.path).unwrap(), a);
}

#[test]
fn a_missing_part_or_a_later_part_given_first_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let parts = write_split_model(dir.path(), "m", &spec(), 3).unwrap();
    let e = read_model(&parts[1].path).unwrap_err().to_string();
    assert!(
        e.contains("part 2 of 3") && e.contains("m-00001-of-00003.gguf"),
        "{e}"
    );
    std::fs::remove_file(&parts[2].path).unwrap();
    let e = read_model(&parts[0].path).unwrap_err().to_string();
    assert!(
        e.contains("m-00003-of-00003.gguf") && e.contains("part 3 of 3 is missing"),
        "{e}"
    );
}

#[test]
fn inconsistent_split_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let parts = write_split_model(dir.path(), "m", &spec(), 3).unwrap();
    // Part 3 claims another split.count: rewrite it from a spec with a different count
    // under the same name.
    let other = tempfile::tempdir().unwrap();
    let four = write_split_model(other.path(), "m", &spec(), 4).unwrap();
    std::fs::copy(&four[2].path, &parts[2].path).unwrap();
    let e = read_model(&parts[0].path).unwrap_err().to_string();
    assert!(
        e.contains("m-00003-of-00003.gguf") && e.contains("`split.count` 4, expected 3"),
        "{e}"
    );
    // The parts in the wrong places: part 2's bytes under part 3's name.
    std::fs::copy(&parts[1].path, &parts[2].path).unwrap();
    let e = read_model(&parts[0].path).unwrap_err().to_string();
    assert!(e.contains("`split.no` 1, expected 2"), "{e}");
    // A first part renamed out of the pattern: llama.cpp could not find its siblings.
    let renamed = dir.path().join("renamed.gguf");
    std::fs::copy(&parts[0].path, &renamed).unwrap();
    let e = read_model(&renamed).unwrap_err().to_string();
    assert!(e.contains("-00001-of-00003.gguf"), "{e}");
}

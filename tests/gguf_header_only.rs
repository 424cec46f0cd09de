//! The reader reads the header, not the tensor data: a GGUF announcing gigabytes of tensor data
//! (a sparse file) is described after reading a few megabytes at most. Alone in its test binary
//! so that the process's read counter (`rchar` in /proc/self/io) sees only this test.

use minerva_setup::gguf::reader;
use minerva_setup::gguf::writer::{self, ModelSpec, WeightLayout};
use minerva_setup::gguf::GgmlType;

fn bytes_read() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("rchar: "))?
        .trim()
        .parse()
        .ok()
}

#[test]
fn reading_a_multi_gigabyte_model_reads_only_its_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.gguf");
    let mut spec = ModelSpec::tiny(WeightLayout::Uniform(GgmlType::F16));
    spec.shape.n_ff = 1 << 20; // three 256 × 2^20 F16 matrices per layer: 1.5 GiB per layer
    let len = writer::expected_file_bytes(&spec);
    assert!(len > 3 << 30, "{len}");
    let header = writer::header_bytes(&spec);
    std::fs::write(&path, &header).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len)
        .unwrap();

    let before = bytes_read();
    let h = reader::read_header(&path).unwrap();
    let after = bytes_read();
    assert_eq!(h.file_bytes, len);
    assert_eq!(h.data_offset, header.len() as u64);
    assert_eq!(h.tensor_summaries(), spec.layout.tensors(&spec.shape));
    if let (Some(b), Some(a)) = (before, after) {
        let read = a - b;
        assert!(read < 1 << 20, "read {read} bytes of a {len}-byte file");
    }
}

//! Write a GGUF with random weights in the shape of a registry model, for
//! `bench/bench-concurrency.sh`: the predictor reads its header like any downloaded file, and
//! llama.cpp runs it at the real model's speed (decode speed does not depend on weight values).
//!
//! The writer emits the `llama` architecture only. A `qwen2` shape is written as `llama`: the
//! q/k/v biases it lacks are under 0.01 % of the bytes, and the matrices, tied embedding and
//! vocabulary that decide speed are the real model's.
//!
//! Usage: write_gguf --shape REGISTRY_ID --layout FILE_TYPE|uniform-TYPE --out FILE
//! (`--layout Q4_K_M` is llama.cpp's mix for that file type; `uniform-Q4_0` puts every matrix in
//! one type.) An existing file of the expected size with a matching tensor table is kept.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;

use minerva_setup::gguf::reader;
use minerva_setup::gguf::writer::{self, ModelSpec, WeightLayout};
use minerva_setup::gguf::{FileType, GgmlType};
use minerva_setup::registry::Registry;

const USAGE: &str =
    "usage: write_gguf --shape REGISTRY_ID --layout FILE_TYPE|uniform-TYPE --out FILE";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut shape_id, mut layout, mut out) = (None, None, None);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(USAGE);
        match a.as_str() {
            "--shape" => shape_id = Some(val()?),
            "--layout" => layout = Some(val()?),
            "--out" => out = Some(PathBuf::from(val()?)),
            _ => return Err(format!("unknown argument `{a}`\n{USAGE}").into()),
        }
    }
    let (shape_id, layout, out) = match (shape_id, layout, out) {
        (Some(s), Some(l), Some(o)) => (s, l, o),
        _ => return Err(USAGE.into()),
    };
    let registry = Registry::embedded()?;
    let file = registry
        .get(&shape_id)
        .ok_or_else(|| format!("`{shape_id}` is not a registry id"))?;
    let layout = parse_layout(&layout)?;
    let mut shape = file.shape.clone();
    shape.architecture = "llama".into();
    let mut spec = ModelSpec::new(shape, layout);
    spec.name = format!("minerva-shape-of-{shape_id}-{}", layout.label());

    let expected_bytes = writer::expected_file_bytes(&spec);
    let expected_tensors = layout.tensors(&spec.shape);
    let cached = std::fs::metadata(&out).is_ok_and(|m| m.len() == expected_bytes)
        && reader::read_header(&out).is_ok_and(|h| h.tensor_summaries() == expected_tensors);
    if cached {
        eprintln!("kept {} ({expected_bytes} bytes)", out.display());
    } else {
        let start = std::time::Instant::now();
        let w = writer::write_model(&out, &spec)?;
        eprintln!(
            "wrote {} ({} bytes) in {:.1} s",
            out.display(),
            w.file_bytes,
            start.elapsed().as_secs_f64()
        );
    }
    println!("{}", out.display());
    Ok(())
}

fn parse_layout(s: &str) -> Result<WeightLayout, String> {
    if let Some(t) = s.strip_prefix("uniform-") {
        return GgmlType::from_name(t)
            .map(WeightLayout::Uniform)
            .ok_or_else(|| format!("unknown ggml type `{t}`"));
    }
    FileType::parse(s)
        .map(WeightLayout::FileType)
        .ok_or_else(|| format!("unknown file type `{s}`"))
}

//! Helpers shared by the integration tests. Every test that starts the binary does so through
//! [`TestCtx`] (context.rs); [`world::World`] builds a registry, tiers and a mirror on one.
#![allow(dead_code)]

pub mod context;
pub mod http_server;
pub mod world;

pub use context::*;

use sha2::{Digest, Sha256};

/// `n` bytes of deterministic, incompressible-looking content; different seeds give different
/// files.
pub fn content(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Lowercase hex sha256.
pub fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// llama.cpp for tests that call the library directly: the CPU kernels chosen and checked as the
/// binary chooses them (`MINERVA_CPU_VARIANT` forces one).
pub fn llama_backend() -> &'static minerva_setup::llama::Backend {
    minerva_setup::llama::init(&minerva_setup::llama::BackendConfig {
        simd: minerva_setup::probe::cpu::live_simd(),
        threads: 1,
        ..Default::default()
    })
    .unwrap()
}

/// The tiny preset with every matrix in Q8_0, written under `dir` and loaded with
/// [`llama_backend`].
pub fn load_tiny_q8(dir: &std::path::Path) -> minerva_setup::llama::LoadedModel {
    use minerva_setup::gguf::writer::{self, ModelSpec, WeightLayout};
    let path = dir.join("m.gguf");
    writer::write_model(
        &path,
        &ModelSpec::tiny(WeightLayout::Uniform(minerva_setup::gguf::GgmlType::Q8_0)),
    )
    .unwrap();
    minerva_setup::llama::load(&llama_backend().llama, &path, 0).unwrap()
}

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

/// The built binary with none of the caller's `MINERVA_*` or Hugging Face variables: a developer's
/// or CI's own settings must not leak into what a test runs.
pub fn minerva() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_minerva-setup"));
    isolate(&mut c);
    c
}

/// Remove every `MINERVA_*`, `HF_*` and `HUGGING_FACE_*` variable from `c`'s environment.
pub fn isolate(c: &mut std::process::Command) -> &mut std::process::Command {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("MINERVA_") || k.starts_with("HF_") || k.starts_with("HUGGING_FACE_") {
            c.env_remove(k);
        }
    }
    c
}

/// Lowercase hex sha256.
pub fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

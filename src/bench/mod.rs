//! The micro-benchmark: real llama.cpp inference on generated models, producing `BenchResult`.
//!
//! Knows nothing about the registry or the network.

pub mod llama;
pub mod result;

pub use result::{BenchBackend, BenchResult, QuantBench, Stat, ThreadTrial, BENCH_SCHEMA_VERSION};

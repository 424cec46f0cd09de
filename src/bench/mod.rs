//! The micro-benchmark: real llama.cpp inference on generated models, producing `BenchResult`.
//!
//! Knows nothing about the registry or the network.

pub mod models;
pub mod runner;
pub mod sched;

pub use crate::types::bench::{
    BenchBackend, BenchResult, QuantBench, Stat, ThreadTrial, BENCH_SCHEMA_VERSION,
};

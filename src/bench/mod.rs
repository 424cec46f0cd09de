//! The micro-benchmark: real llama.cpp inference on generated models, producing `BenchResult`.
//!
//! Knows nothing about the registry or the network.

pub mod cpu;
pub mod llama;
pub mod models;
pub mod result;
pub mod runner;

pub use result::{BenchBackend, BenchResult, QuantBench, Stat, ThreadTrial, BENCH_SCHEMA_VERSION};

//! Plain value types that several stages share: the benchmark result, the workload, timestamps,
//! what a verification found the model capable of.
//!
//! The bottom of the house: nothing here imports another module of the crate, so every stage may
//! use these without a loop (see `docs/architecture.md`).

pub mod bench;
pub mod capabilities;
pub mod cpu_variant;
pub mod time;
pub mod workload;

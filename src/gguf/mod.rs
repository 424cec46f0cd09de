//! GGUF files: the ggml type table, llama.cpp's quantisation layouts, and (in `reader` and
//! `writer`) reading any GGUF header and writing benchmark models; `split`, a model published in
//! several parts (llama.cpp's gguf-split) read as one.
//!
//! Knows nothing about hardware, registries or the network.

pub mod layout;
pub mod reader;
pub mod split;
pub mod types;
pub mod writer;

pub use layout::{tensors_for, FileType};
pub use types::{prefill_weights, GgmlType, ModelShape, PrefillUse, TensorSummary};

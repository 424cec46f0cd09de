//! minerva-setup: measure a server, pick the local LLM tier that will really keep its latency
//! promise, download only that GGUF and prove the promise.
//!
//! The pipeline is probe → bench → plan → fetch → verify → commit. Each stage is a module with
//! plain functions from the previous stage's value to its own; none of them prints (see
//! [`progress::Progress`]); [`pipeline`] binds them and owns the policies. The CLI layer (`app`,
//! `cmd`, `cli`, `term`) decides what is shown. `docs/architecture.md` is the map: which layer
//! each module is in and what it may not know (`tests/architecture.rs` keeps it true).
#![warn(clippy::print_stdout, clippy::print_stderr)]

#[allow(clippy::print_stdout, clippy::print_stderr)]
pub mod app;
pub mod bench;
#[allow(clippy::print_stdout, clippy::print_stderr)]
pub mod cli;
#[allow(clippy::print_stdout, clippy::print_stderr)]
pub mod cmd;
pub mod config;
pub mod env_vars;
pub mod exit;
pub mod fetch;
pub mod fsutil;
pub mod gguf;
pub mod llama;
pub mod paths;
pub mod pipeline;
pub mod predict;
pub mod probe;
pub mod profile;
pub mod progress;
pub mod registry;
pub mod select;
pub mod state;
#[allow(clippy::print_stdout, clippy::print_stderr)]
pub mod term;
pub mod types;
pub mod validate;
pub mod verify;

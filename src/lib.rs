//! minerva-setup: measure a server, pick the local LLM tier that will really keep its latency
//! promise, download only that GGUF and prove the promise.
//!
//! The pipeline is probe → bench → plan → fetch → verify → commit. Each stage is a module with
//! plain functions from the previous stage's value to its own; none of them prints (see
//! [`progress::Progress`]). The CLI layer (`cli`, `cmd`, `term`) decides what is shown.
#![warn(clippy::print_stdout, clippy::print_stderr)]

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
pub mod install;
pub mod paths;
pub mod predict;
pub mod probe;
pub mod profile;
pub mod progress;
pub mod registry;
pub mod select;
pub mod state;
#[allow(clippy::print_stdout, clippy::print_stderr)]
pub mod term;
pub mod validate;
pub mod verify;

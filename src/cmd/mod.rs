//! One file per subcommand: flags, the stage calls, and the human report of the result.

pub mod bench;
pub mod completions;
pub mod download;
pub mod install;
pub mod internal;
pub mod plan;
pub mod predict;
pub mod probe;
pub mod registry;
pub mod retier;
pub mod status;
pub mod verify;
pub mod wizard;

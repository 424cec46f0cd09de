//! One file per subcommand: flags, the stage calls, and the human report of the result.

pub mod download;
pub mod probe;

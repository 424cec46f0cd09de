//! Free space on the filesystem that holds a directory.

use std::path::Path;

/// Bytes available to this user on the filesystem holding `dir` (which must exist), from the
/// mount whose mount point is the longest prefix of its canonical path. `None` when unknown.
pub(crate) fn available_bytes(dir: &Path) -> Option<u64> {
    let dir = std::fs::canonicalize(dir).ok()?;
    let disks = sysinfo::Disks::new_with_refreshed_list().ok()?;
    disks
        .iter()
        .filter(|d| dir.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())
        .map(|d| d.available_space())
}

//! Free space, filesystem and mount point of the models directory.
//!
//! The directory may not exist yet (first run): its nearest existing ancestor stands in for it.
//! The filesystem is the mounted disk whose mount point is the longest prefix of the canonical
//! path, from sysinfo's list of mounts.

use std::path::{Path, PathBuf};

use sysinfo::{DiskRefreshKind, Disks};

use crate::profile::DiskInfo;

/// One mounted filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub mount_point: PathBuf,
    pub filesystem: String,
    pub free_bytes: u64,
    pub total_bytes: u64,
}

/// The disk that holds `path`, or `None` when no mount contains it (sysinfo skips tmpfs and
/// network filesystems, so a models directory on one of those reads as unknown).
pub fn probe_disk(path: &Path) -> Option<DiskInfo> {
    let existing = nearest_existing_ancestor(path)?;
    let canonical = existing.canonicalize().unwrap_or(existing);
    let disks =
        Disks::new_with_refreshed_list_specifics(DiskRefreshKind::nothing().with_storage()).ok()?;
    let mounts: Vec<Mount> = disks
        .iter()
        .map(|d| Mount {
            mount_point: d.mount_point().to_path_buf(),
            filesystem: d.file_system().to_string_lossy().into_owned(),
            free_bytes: d.available_space(),
            total_bytes: d.total_space(),
        })
        .collect();
    let m = pick_mount(&canonical, &mounts)?;
    Some(DiskInfo {
        path: path.display().to_string(),
        free_bytes: m.free_bytes,
        total_bytes: m.total_bytes,
        filesystem: m.filesystem.clone(),
        mount_point: m.mount_point.display().to_string(),
    })
}

/// `path` itself if it exists, else the closest parent that does. A relative path is taken
/// from the current directory.
pub fn nearest_existing_ancestor(path: &Path) -> Option<PathBuf> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(path)
    };
    abs.ancestors().find(|p| p.exists()).map(Path::to_path_buf)
}

/// The mount whose mount point is the longest (component-wise) prefix of `path`. When the same
/// mount point is listed twice (a filesystem mounted over another) the later one wins, as it
/// is the one that is visible.
pub fn pick_mount<'a>(path: &Path, mounts: &'a [Mount]) -> Option<&'a Mount> {
    let mut best: Option<&Mount> = None;
    for m in mounts {
        if !path.starts_with(&m.mount_point) {
            continue;
        }
        let len = m.mount_point.components().count();
        if best.is_none_or(|b| len >= b.mount_point.components().count()) {
            best = Some(m);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(p: &str, fs: &str) -> Mount {
        Mount {
            mount_point: PathBuf::from(p),
            filesystem: fs.into(),
            free_bytes: 1,
            total_bytes: 2,
        }
    }

    #[test]
    fn longest_prefix_by_component() {
        let mounts = vec![
            mount("/", "ext4"),
            mount("/var", "xfs"),
            mount("/var/lib/minerva", "zfs"),
            mount("/va", "tmpfs"),
        ];
        assert_eq!(
            pick_mount(Path::new("/var/lib/minerva/models"), &mounts)
                .unwrap()
                .filesystem,
            "zfs"
        );
        assert_eq!(
            pick_mount(Path::new("/var/lib/other"), &mounts)
                .unwrap()
                .filesystem,
            "xfs"
        );
        // "/va" is a string prefix of "/var/x" but not a path prefix.
        assert_eq!(
            pick_mount(Path::new("/vax"), &mounts).unwrap().filesystem,
            "ext4"
        );
        assert!(pick_mount(Path::new("relative"), &mounts).is_none());
    }

    #[test]
    fn missing_directory_uses_existing_ancestor() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("a/b/c");
        assert_eq!(nearest_existing_ancestor(&missing).unwrap(), tmp.path());
    }
}

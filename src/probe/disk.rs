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

/// The disk that holds `path`, or `None` when it cannot be told. sysinfo skips tmpfs and
/// network filesystems (NFS, CIFS: `statvfs` on a hard mount can hang); a models directory on
/// one of those would otherwise be reported with the free space of the filesystem below it, so
/// the kernel's mount table is checked and such a directory reads as unknown instead.
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
    if let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") {
        let all: Vec<Mount> = parse_mountinfo(&text)
            .into_iter()
            .map(|(mount_point, filesystem)| Mount {
                mount_point,
                filesystem,
                free_bytes: 0,
                total_bytes: 0,
            })
            .collect();
        if let Some(real) = pick_mount(&canonical, &all) {
            if real.mount_point.components().count() > m.mount_point.components().count() {
                return None;
            }
        }
    }
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

/// (mount point, filesystem type) of each line of `/proc/self/mountinfo`:
/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw` (proc(5)); the mount point
/// is the fifth field, the type the first after the ` - ` separator. Spaces and other special
/// characters in paths are written as octal escapes (`\040`).
pub fn parse_mountinfo(text: &str) -> Vec<(PathBuf, String)> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mount_point = left.split_whitespace().nth(4)?;
            let fs = right.split_whitespace().next()?;
            Some((PathBuf::from(unescape_octal(mount_point)), fs.to_string()))
        })
        .collect()
}

fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
    fn mountinfo_fields_and_escapes() {
        let text = "22 27 0:21 / /proc rw,relatime - proc proc rw\n\
                    27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
                    90 27 0:50 / /srv/my\\040models rw shared:5 - nfs4 server:/export rw\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 3);
        assert_eq!(m[1], (PathBuf::from("/"), "ext4".to_string()));
        assert_eq!(m[2], (PathBuf::from("/srv/my models"), "nfs4".to_string()));
    }

    #[test]
    fn missing_directory_uses_existing_ancestor() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("a/b/c");
        assert_eq!(nearest_existing_ancestor(&missing).unwrap(), tmp.path());
    }
}

//! Free space, filesystem and mount point of the models directory.
//!
//! The directory may not exist yet (first run): its nearest existing ancestor stands in for it.
//! The filesystem is the mounted disk whose mount point is the longest prefix of the canonical
//! path, from sysinfo's list of mounts.

use std::path::{Path, PathBuf};

use sysinfo::{DiskRefreshKind, Disks};

use crate::profile::{DiskInfo, DiskRead};

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
        read: None,
    })
}
/// Ask the kernel to drop `file`'s clean pages from the page cache (`posix_fadvise(DONTNEED)`),
/// so that the next read of it comes from the disk; whether the call succeeded (a filesystem
/// such as tmpfs accepts it and keeps the pages).
pub fn drop_cached_pages(file: &std::fs::File) -> bool {
    use std::os::unix::io::AsRawFd;
    // SAFETY: a valid descriptor of an open file; the call only advises the kernel.
    unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) == 0 }
}

/// Bytes the disk read measurement writes and reads back.
pub const DISK_READ_BYTES: u64 = 64 << 20;

/// Measure how fast the filesystem holding `dir` (or its nearest existing ancestor) reads a
/// file whose pages are not cached: write `bytes` to a hidden temporary file there, sync it,
/// read it back with `O_DIRECT` (or after dropping its cached pages when the filesystem refuses
/// `O_DIRECT`), check that the bytes read are the bytes written, and remove the file. `None`
/// when the directory is not writable or the read fails; nothing is left behind either way.
pub fn measure_read(dir: &Path, bytes: u64) -> Option<DiskRead> {
    use std::io::{Read, Write};
    use std::os::unix::fs::OpenOptionsExt;

    const BLOCK: usize = 4 << 20;
    const ALIGN: usize = 4096;
    let bytes = bytes.div_ceil(BLOCK as u64).max(1) * BLOCK as u64;
    let dir = nearest_existing_ancestor(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".minerva-disk-read-")
        .tempfile_in(&dir)
        .ok()?;
    // A pattern that differs per block, so that reading the wrong block is noticed.
    let block_of = |i: u64| -> Vec<u8> {
        let mut b = vec![0u8; BLOCK];
        for (j, chunk) in b.chunks_mut(8).enumerate() {
            let v = (i << 32 | j as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            chunk.copy_from_slice(&v.to_le_bytes()[..chunk.len()]);
        }
        b
    };
    let blocks = bytes / BLOCK as u64;
    for i in 0..blocks {
        tmp.as_file_mut().write_all(&block_of(i)).ok()?;
    }
    tmp.as_file().sync_all().ok()?;

    let (mut file, direct) = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(tmp.path())
    {
        Ok(f) => (f, true),
        Err(_) => {
            let f = std::fs::File::open(tmp.path()).ok()?;
            drop_cached_pages(&f);
            (f, false)
        }
    };
    // One aligned buffer for the whole file: the timing covers the reads alone, the check of
    // the bytes comes after it.
    let len = usize::try_from(bytes).ok()?;
    let layout = std::alloc::Layout::from_size_align(len, ALIGN).ok()?;
    // SAFETY: the layout has a non-zero size; the memory is freed below on every path.
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
    if ptr.is_null() {
        return None;
    }
    // SAFETY: `ptr` points to `len` initialised (zeroed) bytes owned here until dealloc.
    let buf = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
    let start = std::time::Instant::now();
    let mut got = 0usize;
    let mut ok = true;
    while got < len {
        let end = (got + BLOCK).min(len);
        match file.read(&mut buf[got..end]) {
            Ok(0) => {
                ok = false;
                break;
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => {
                ok = false;
                break;
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    ok = ok
        && got == len
        && buf
            .chunks(BLOCK)
            .enumerate()
            .all(|(i, b)| b == &block_of(i as u64)[..]);
    // SAFETY: allocated above with this layout, not used after this point.
    unsafe { std::alloc::dealloc(ptr, layout) };
    (ok && elapsed > 0.0).then(|| DiskRead {
        bytes_per_s: bytes as f64 / elapsed,
        bytes,
        direct,
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

    #[test]
    fn the_disk_read_reads_back_what_it_wrote_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let r = measure_read(dir.path(), 8 << 20).expect("a temporary directory is readable");
        assert_eq!(r.bytes, 8 << 20);
        assert!(r.bytes_per_s > 0.0 && r.bytes_per_s.is_finite());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // Rounded up to whole 4 MiB blocks.
        assert_eq!(measure_read(dir.path(), 1).unwrap().bytes, 4 << 20);
        // A directory that cannot be written: no figure, no error.
        assert!(measure_read(Path::new("/proc/self"), 8 << 20).is_none());
    }

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

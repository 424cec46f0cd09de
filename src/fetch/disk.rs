//! Free space on the filesystem that holds a directory.

use std::path::Path;

/// Bytes available to an unprivileged writer on the filesystem holding `dir` (which must
/// exist). `None` when unknown.
///
/// On Unix this is `statvfs` on the directory itself, exact for every filesystem type; the
/// mount table that `sysinfo` reads leaves out tmpfs and others, which would silently check the
/// wrong filesystem.
#[cfg(unix)]
pub(crate) fn available_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `path` is a NUL-terminated string that outlives the call, and `st` points to
    // writable memory of the type statvfs fills in.
    let rc = unsafe { libc::statvfs(path.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it initialised the struct.
    let st = unsafe { st.assume_init() };
    // The field types differ between platforms (u32 or u64).
    #[allow(clippy::unnecessary_cast)]
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// Elsewhere, the mount whose mount point is the longest prefix of the canonical path.
#[cfg(not(unix))]
pub(crate) fn available_bytes(dir: &Path) -> Option<u64> {
    let dir = std::fs::canonicalize(dir).ok()?;
    let disks = sysinfo::Disks::new_with_refreshed_list().ok()?;
    disks
        .iter()
        .filter(|d| dir.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())
        .map(|d| d.available_space())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reports_some_space_for_an_existing_directory_only() {
        let dir = tempfile::tempdir().unwrap();
        assert!(super::available_bytes(dir.path()).is_some_and(|b| b > 0));
        assert!(super::available_bytes(&dir.path().join("missing")).is_none());
    }
}

//! `<file>.lock`: keeps two runs from writing the same `.part`.
//!
//! The lock is an advisory lock held on an open file (`File::try_lock`), so the kernel releases
//! it when the process dies, even by SIGKILL; a stale lock file on disk locks nothing. The file
//! is removed on release while still locked; a run that opened it just before then notices that
//! the path no longer names the file it locked and tries again.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// Held for the whole fetch; releases and removes the lock file on drop.
#[derive(Debug)]
pub(crate) struct LockGuard {
    path: PathBuf,
    _file: File,
}

pub(crate) enum LockFailure {
    Held,
    Io(std::io::Error),
}

impl LockGuard {
    pub(crate) fn acquire(path: &Path) -> Result<LockGuard, LockFailure> {
        for _ in 0..16 {
            let mut options = OpenOptions::new();
            options.read(true).write(true).create(true).truncate(false);
            // Never open a symlink planted in place of the lock file.
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.custom_flags(libc::O_NOFOLLOW);
            }
            let file = options.open(path).map_err(LockFailure::Io)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => return Err(LockFailure::Held),
                Err(TryLockError::Error(e)) => return Err(LockFailure::Io(e)),
            }
            if still_at(path, &file) {
                return Ok(LockGuard {
                    path: path.to_path_buf(),
                    _file: file,
                });
            }
            // The previous holder removed the file between our open and our lock: retry on
            // the path's current file.
        }
        Err(LockFailure::Held)
    }
}

#[cfg(unix)]
fn still_at(path: &Path, file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(path), file.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn still_at(path: &Path, _file: &File) -> bool {
    path.exists()
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // Remove while still holding the lock, then close (which unlocks).
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_and_release_removes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.gguf.lock");
        let first = LockGuard::acquire(&p).ok().unwrap();
        assert!(matches!(LockGuard::acquire(&p), Err(LockFailure::Held)));
        drop(first);
        assert!(!p.exists());
        let again = LockGuard::acquire(&p);
        assert!(again.is_ok());
    }
}

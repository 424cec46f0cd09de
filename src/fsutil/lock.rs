//! An advisory lock on a file, held for the life of a [`FileLock`]: keeps two runs from changing
//! installed state at once, or from writing the same `.part`.
//!
//! The lock is held on an open file (`File::try_lock`), so the kernel releases it when the
//! process dies, even by SIGKILL; a stale lock file on disk locks nothing. The file is removed
//! on release while still locked; a run that opened it just before then notices that the path
//! no longer names the file it locked and tries again.
//!
//! A symbolic link at the lock path is refused, never followed (`O_NOFOLLOW` on unix): a link
//! planted there would otherwise make the run create or truncate a file of the planter's choice.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

/// Why a lock was not taken. Callers map these onto their own errors.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process (or another lock in this one) holds it.
    #[error("`{}` is held by another run", path.display())]
    Held { path: PathBuf },
    /// The lock path is a symbolic link.
    #[error("`{}` is a symbolic link; a lock file is never opened through one", path.display())]
    Symlink { path: PathBuf },
    #[error("cannot open or lock `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// An exclusive advisory lock on `path`; released, and the file removed, on drop.
#[derive(Debug)]
pub struct FileLock {
    path: PathBuf,
    _file: File,
}

impl FileLock {
    /// Take the lock on `path` without waiting, creating the file (not its directory).
    pub fn try_acquire(path: &Path) -> Result<FileLock, LockError> {
        let io_error = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        for _ in 0..16 {
            let file = open_no_follow(path)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    return Err(LockError::Held {
                        path: path.to_path_buf(),
                    })
                }
                Err(TryLockError::Error(e)) => return Err(io_error(e)),
            }
            if still_at(path, &file) {
                return Ok(FileLock {
                    path: path.to_path_buf(),
                    _file: file,
                });
            }
            // The previous holder removed the file between our open and our lock: retry on
            // the path's current file.
        }
        Err(LockError::Held {
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Remove while still holding the lock, then close (which unlocks).
        let _ = std::fs::remove_file(&self.path);
    }
}

fn open_no_follow(path: &Path) -> Result<File, LockError> {
    let is_symlink = || std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    // Without O_NOFOLLOW (not unix) this check before the open is the best there is.
    #[cfg(not(unix))]
    if is_symlink() {
        return Err(LockError::Symlink {
            path: path.to_path_buf(),
        });
    }
    options.open(path).map_err(|source| {
        // O_NOFOLLOW fails with ELOOP on Linux and macOS, EMLINK on FreeBSD: ask the
        // filesystem rather than decode the errno.
        if is_symlink() {
            LockError::Symlink {
                path: path.to_path_buf(),
            }
        } else {
            LockError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

#[cfg(unix)]
fn still_at(path: &Path, file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::symlink_metadata(path), file.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn still_at(path: &Path, _file: &File) -> bool {
    path.exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_and_release_removes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.gguf.lock");
        let first = FileLock::try_acquire(&p).unwrap();
        assert!(matches!(
            FileLock::try_acquire(&p),
            Err(LockError::Held { .. })
        ));
        drop(first);
        assert!(!p.exists());
        FileLock::try_acquire(&p).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_at_the_lock_path_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"not a lock").unwrap();
        let p = dir.path().join("m.gguf.lock");
        std::os::unix::fs::symlink(&target, &p).unwrap();
        let err = FileLock::try_acquire(&p).unwrap_err();
        assert!(matches!(err, LockError::Symlink { .. }), "{err:?}");
        assert!(err.to_string().contains("m.gguf.lock"), "{err}");
        assert_eq!(std::fs::read(&target).unwrap(), b"not a lock");
        assert!(p.symlink_metadata().unwrap().file_type().is_symlink());
    }
}

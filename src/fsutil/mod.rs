//! Crash-safe file writes and the advisory file lock, shared by every stage that persists
//! something or must keep another run out.
//!
//! Knows nothing about what the files hold or which stage writes them.

mod lock;

pub use lock::{FileLock, LockError};

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// Write `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename,
/// then fsync of the directory. Readers see the old file or the new one, never a torn one, and
/// concurrent writers (threads or processes) each replace the whole file. Parent directories are
/// created. A new file gets the usual `0666` less the umask, whatever the file it replaces had.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |f| f.write_all(bytes))
}

/// [`write_atomic`] for content produced as it is written (a generated model of several GB):
/// `write` gets the temporary file and writes everything; the sync and rename follow. When
/// `write` fails the temporary file is removed and `path` is unchanged.
pub fn write_atomic_with<F>(path: &Path, write: F) -> io::Result<()>
where
    F: FnOnce(&mut File) -> io::Result<()>,
{
    let dir = parent_dir(path);
    std::fs::create_dir_all(dir)?;
    let prefix = temporary_prefix(path);
    let mut tmp = temporary_builder(&prefix).tempfile_in(dir)?;
    write(tmp.as_file_mut())?;
    tmp.as_file().sync_all()?;
    // On failure the returned temporary is dropped, which deletes it.
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir);
    Ok(())
}

/// Put the file `src` at `path` atomically: a hard link to it when the filesystem allows (no
/// second copy of a model on disk), else a copy made with [`write_atomic_with`].
pub fn link_or_copy_atomic(src: &Path, path: &Path) -> io::Result<()> {
    let dir = parent_dir(path);
    std::fs::create_dir_all(dir)?;
    let prefix = temporary_prefix(path);
    match temporary_builder(&prefix).make_in(dir, |tmp| std::fs::hard_link(src, tmp)) {
        Ok(linked) => {
            linked.persist(path).map_err(|e| e.error)?;
            sync_dir(dir);
            Ok(())
        }
        // Another filesystem, or one without hard links.
        Err(_) => write_atomic_with(path, |f| {
            io::copy(&mut File::open(src)?, f)?;
            Ok(())
        }),
    }
}

/// The directory `path` is in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Temporaries are `.<name>.tmp-<random>`: hidden, unique per writer (two threads of one
/// process never share one), and recognisable by the prefix when a killed run leaves one behind
/// (see `bench::models`).
fn temporary_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.tmp-")
}

fn temporary_builder(prefix: &str) -> tempfile::Builder<'_, 'static> {
    let mut b = tempfile::Builder::new();
    b.prefix(prefix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // tempfile's default is 0600; these files (config, state, models) are read by other
        // local users and services, as when they were created with `File::create`.
        b.permissions(std::fs::Permissions::from_mode(0o666));
    }
    b
}

/// Make a rename durable: fsync the directory that holds the new name. Best effort: not every
/// platform can open a directory.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_writes_to_one_path_all_succeed_and_leave_one_whole_file() {
        const THREADS: usize = 8;
        const ROUNDS: usize = 50;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        // Large enough that a torn file would show: each thread's content is its own byte.
        let content = |t: usize| vec![b'a' + t as u8; 256 * 1024];
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let path = &path;
                s.spawn(move || {
                    for round in 0..ROUNDS {
                        write_atomic(path, &content(t))
                            .unwrap_or_else(|e| panic!("thread {t}, round {round}: {e}"));
                    }
                });
            }
        });
        let last = std::fs::read(&path).unwrap();
        assert!(
            (0..THREADS).any(|t| last == content(t)),
            "the file is not one whole write ({} bytes)",
            last.len()
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["state.json"], "temporary files left behind");
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_removes_its_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        write_atomic(&path, b"old").unwrap();
        let err = write_atomic_with(&path, |f| {
            f.write_all(b"half")?;
            Err(io::Error::other("disk on fire"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk on fire");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn a_new_file_gets_the_same_mode_as_a_plainly_created_one() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        File::create(&plain).unwrap();
        let atomic = dir.path().join("nested/atomic");
        write_atomic(&atomic, b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&atomic), mode(&plain));
    }

    #[test]
    fn link_or_copy_puts_the_same_bytes_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let blob = dir.path().join("blob");
        std::fs::write(&blob, b"model bytes").unwrap();
        let placed = dir.path().join("models/m.gguf");
        write_atomic(&placed, b"older model").unwrap();
        link_or_copy_atomic(&blob, &placed).unwrap();
        assert_eq!(std::fs::read(&placed).unwrap(), b"model bytes");
        assert_eq!(
            std::fs::read_dir(placed.parent().unwrap()).unwrap().count(),
            1
        );
    }
}

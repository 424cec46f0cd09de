//! The partial file: bytes are written to `<file>.part` and hashed as they arrive.
//!
//! sha256 runs on its own thread, fed through a small pool of 1 MiB buffers: the reading thread
//! writes a buffer to the file and hands it to the hasher, which gives it back when done. The
//! pool bounds memory (`POOL_BUFFERS` MiB, whatever the file size) and lets receiving, writing
//! and hashing overlap instead of adding up. There is never a second pass over the file: the
//! hasher's state always covers exactly the bytes written so far, also across retries.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Size of one buffer: large reads and writes keep system-call overhead negligible.
pub(crate) const BUFFER_BYTES: usize = 1 << 20;
/// Buffers in flight between the writer and the hasher.
const POOL_BUFFERS: usize = 4;
/// A partly filled buffer is written out at least this often, so a slow download still
/// makes steady progress on disk (and in the progress bar).
const FLUSH_INTERVAL: Duration = Duration::from_millis(200);
/// The file is synced in the background every this many bytes, so that the final fsync before
/// the rename does not have to write out the whole file at once.
const SYNC_EVERY_BYTES: u64 = 256 << 20;

enum Msg {
    Data(Vec<u8>, usize),
    Reset,
}

/// Why copying into the part file stopped early.
pub(crate) enum CopyError {
    /// Reading the source failed (for a download: the network).
    Read(io::Error),
    /// Writing or syncing the part file failed.
    Write(io::Error),
    /// The source had more bytes than allowed.
    TooLong,
}

pub(crate) struct PartFile {
    file: File,
    written: u64,
    received: u64,
    kept: u64,
    to_hasher: Option<SyncSender<Msg>>,
    free: Receiver<Vec<u8>>,
    hasher: Option<JoinHandle<Sha256>>,
    synced_at: u64,
    syncer: Option<JoinHandle<()>>,
}

impl PartFile {
    /// Open (or create) the part file and hash the bytes it already holds, reporting them to
    /// `on_progress` as they are read.
    pub(crate) fn open(path: &Path, on_progress: &mut dyn FnMut(u64)) -> io::Result<PartFile> {
        let file = open_no_follow(path)?;
        let (to_hasher, from_writer) = mpsc::sync_channel::<Msg>(POOL_BUFFERS);
        let (give_back, free) = mpsc::sync_channel::<Vec<u8>>(POOL_BUFFERS);
        for _ in 0..POOL_BUFFERS {
            // Cannot fail: the channel has room for the whole pool and its receiver is alive.
            let _ = give_back.send(vec![0u8; BUFFER_BYTES]);
        }
        let hasher = std::thread::Builder::new()
            .name("sha256".into())
            .spawn(move || {
                let mut h = Sha256::new();
                for msg in from_writer {
                    match msg {
                        Msg::Data(buf, n) => {
                            h.update(&buf[..n]);
                            if give_back.send(buf).is_err() {
                                break;
                            }
                        }
                        Msg::Reset => h = Sha256::new(),
                    }
                }
                h
            })?;
        let mut part = PartFile {
            file,
            written: 0,
            received: 0,
            kept: 0,
            to_hasher: Some(to_hasher),
            free,
            hasher: Some(hasher),
            synced_at: 0,
            syncer: None,
        };
        part.hash_existing(on_progress)?;
        part.kept = part.written;
        Ok(part)
    }

    /// Bytes in the part file, all of them hashed.
    pub(crate) fn len(&self) -> u64 {
        self.written
    }

    /// Bytes appended by `copy_from` since opening (not those found in the file).
    pub(crate) fn received(&self) -> u64 {
        self.received
    }

    /// Bytes found in the file when it was opened and still in it (0 once truncated).
    pub(crate) fn kept_from_before(&self) -> u64 {
        self.kept
    }

    /// Empty the file and the hash: start again from byte zero.
    pub(crate) fn truncate(&mut self) -> io::Result<()> {
        self.join_syncer();
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.written = 0;
        self.kept = 0;
        self.synced_at = 0;
        self.send(Msg::Reset)
    }

    /// Append everything `src` yields, up to `limit` bytes in all in the file (more is an error),
    /// reporting the file length to `on_progress` after every write. Bytes read before an error
    /// are kept: they are written and hashed before the error is returned.
    pub(crate) fn copy_from(
        &mut self,
        src: &mut dyn Read,
        limit: Option<u64>,
        on_progress: &mut dyn FnMut(u64),
    ) -> Result<(), CopyError> {
        let mut buf = self.take_buffer().map_err(CopyError::Write)?;
        let mut filled = 0usize;
        let mut flushed_at = Instant::now();
        let result = loop {
            let n = match src.read(&mut buf[filled..]) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(CopyError::Read(e)),
            };
            filled += n;
            if limit.is_some_and(|l| self.written + filled as u64 > l) {
                break Err(CopyError::TooLong);
            }
            if filled == buf.len() || flushed_at.elapsed() >= FLUSH_INTERVAL {
                self.commit(buf, filled).map_err(CopyError::Write)?;
                on_progress(self.written);
                buf = self.take_buffer().map_err(CopyError::Write)?;
                filled = 0;
                flushed_at = Instant::now();
            }
        };
        if matches!(result, Err(CopyError::TooLong)) {
            self.return_buffer(buf);
            return result;
        }
        if filled > 0 {
            self.commit(buf, filled).map_err(CopyError::Write)?;
            on_progress(self.written);
        } else {
            self.return_buffer(buf);
        }
        result
    }

    /// Wait for the hasher, fsync the file and return its length and lowercase hex sha256.
    pub(crate) fn finish(mut self) -> io::Result<(u64, String)> {
        self.join_syncer();
        drop(self.to_hasher.take());
        let h = self
            .hasher
            .take()
            .and_then(|h| h.join().ok())
            .ok_or_else(hasher_gone)?;
        self.file.sync_all()?;
        Ok((self.written, hex(&h.finalize())))
    }

    fn hash_existing(&mut self, on_progress: &mut dyn FnMut(u64)) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(0))?;
        loop {
            let mut buf = self.take_buffer()?;
            let n = read_full(&mut self.file, &mut buf)?;
            if n == 0 {
                self.return_buffer(buf);
                break;
            }
            self.written += n as u64;
            self.send(Msg::Data(buf, n))?;
            on_progress(self.written);
        }
        // Whatever is on disk already is as durable as it will get; start syncing from here.
        self.synced_at = self.written;
        Ok(())
    }

    fn commit(&mut self, buf: Vec<u8>, n: usize) -> io::Result<()> {
        if let Err(e) = self.file.write_all(&buf[..n]) {
            self.return_buffer(buf);
            return Err(e);
        }
        self.written += n as u64;
        self.received += n as u64;
        self.send(Msg::Data(buf, n))?;
        if self.written - self.synced_at >= SYNC_EVERY_BYTES {
            self.start_background_sync()?;
        }
        Ok(())
    }

    /// Flush what is written so far on another thread, overlapping the disk write-back with
    /// the download; at most one sync runs at a time.
    fn start_background_sync(&mut self) -> io::Result<()> {
        if self.syncer.as_ref().is_some_and(|s| !s.is_finished()) {
            return Ok(());
        }
        self.join_syncer();
        let f = self.file.try_clone()?;
        self.synced_at = self.written;
        self.syncer = Some(std::thread::Builder::new().name("part-sync".into()).spawn(
            move || {
                // An error here shows up again at the final sync_all, which is checked.
                let _ = f.sync_data();
            },
        )?);
        Ok(())
    }

    fn join_syncer(&mut self) {
        if let Some(s) = self.syncer.take() {
            let _ = s.join();
        }
    }

    fn take_buffer(&mut self) -> io::Result<Vec<u8>> {
        self.free.recv().map_err(|_| hasher_gone())
    }

    fn return_buffer(&mut self, buf: Vec<u8>) {
        // The hasher hands buffers back through this channel; an unused one goes straight back
        // into the pool by sending it through the hasher as an empty chunk.
        let _ = self.send(Msg::Data(buf, 0));
    }

    fn send(&mut self, msg: Msg) -> io::Result<()> {
        match &self.to_hasher {
            Some(tx) => tx.send(msg).map_err(|_| hasher_gone()),
            None => Err(hasher_gone()),
        }
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        self.join_syncer();
        drop(self.to_hasher.take());
        if let Some(h) = self.hasher.take() {
            let _ = h.join();
        }
    }
}

/// Open (or create) `path` for reading and writing without following a symlink: the part file
/// is a name of ours in a directory others may write to, and whatever sits there that is not a
/// regular file is removed rather than written through.
pub(crate) fn open_no_follow(path: &Path) -> io::Result<File> {
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if !m.file_type().is_file() {
            std::fs::remove_file(path)?;
        }
    }
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path)
}

/// sha256 of a whole file, read in large blocks (for files already in place).
pub(crate) fn hash_file(
    path: &Path,
    on_progress: &mut dyn FnMut(u64),
) -> io::Result<(u64, String)> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; BUFFER_BYTES];
    let mut total = 0u64;
    loop {
        let n = read_full(&mut f, &mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        total += n as u64;
        on_progress(total);
    }
    Ok((total, hex(&h.finalize())))
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hasher_gone() -> io::Error {
    io::Error::other("the sha256 thread stopped unexpectedly")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(data: &[u8]) -> String {
        hex(&Sha256::digest(data))
    }

    #[test]
    fn resumes_hash_over_existing_bytes_and_survives_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.part");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &data[..1_234_567]).unwrap();
        let mut part = PartFile::open(&p, &mut |_| {}).unwrap();
        assert_eq!(part.len(), 1_234_567);
        part.copy_from(&mut &data[1_234_567..], None, &mut |_| {})
            .ok()
            .unwrap();
        let (n, digest) = part.finish().unwrap();
        assert_eq!((n, digest), (data.len() as u64, sha(&data)));
        assert_eq!(std::fs::read(&p).unwrap(), data);

        let mut part = PartFile::open(&p, &mut |_| {}).unwrap();
        part.truncate().unwrap();
        part.copy_from(&mut &b"abc"[..], None, &mut |_| {})
            .ok()
            .unwrap();
        assert_eq!(part.finish().unwrap(), (3, sha(b"abc")));
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_in_place_of_the_part_file_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("precious");
        std::fs::write(&target, b"keep me").unwrap();
        let p = dir.path().join("m.part");
        std::os::unix::fs::symlink(&target, &p).unwrap();
        let mut part = PartFile::open(&p, &mut |_| {}).unwrap();
        assert_eq!(part.len(), 0);
        part.copy_from(&mut &b"new"[..], None, &mut |_| {})
            .ok()
            .unwrap();
        part.finish().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
    }

    #[test]
    fn refuses_more_than_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut part = PartFile::open(&dir.path().join("y.part"), &mut |_| {}).unwrap();
        assert!(matches!(
            part.copy_from(&mut &[1u8; 10][..], Some(9), &mut |_| {}),
            Err(CopyError::TooLong)
        ));
    }
}

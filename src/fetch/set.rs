//! Fetching files that are only of use together (the parts of a split model): all of them are
//! put in place, or none.
//!
//! Each file is fetched with [`fetch`] (its own `.part`, resume, sha256, lock) into a staging
//! directory inside the destination, `<dest>/.staging/<first file's stem>/`. A file already in
//! place and still matching its checksum is hard-linked into the staging directory first, so it
//! is verified like the others and not downloaded again. Only when every file is verified are
//! they renamed into the destination, the first file last: the first file (the one llama.cpp is
//! given, which names the others) never appears without the rest. A failed file leaves nothing new
//! in the destination; the files verified before it stay in the staging directory, so a later
//! run resumes where this one stopped.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::{fetch, sync_dir, FetchError, FetchOptions, FetchReport, FetchRequest, Partial};
use crate::fsutil::{FileLock, LockError};
use crate::progress::Progress;

/// The staging directories' parent, inside the destination directory.
pub const STAGING_DIR: &str = ".staging";

/// All files of a set in place, each verified.
#[derive(Debug, Clone, Serialize)]
pub struct SetReport {
    /// The first file, which names the others.
    pub path: PathBuf,
    /// All files together.
    pub bytes: u64,
    /// Bytes received over the network in this run, all files together.
    pub bytes_downloaded: u64,
    pub elapsed_s: f64,
    /// One report per file, in order; each `path` is where the file now is.
    pub parts: Vec<FetchReport>,
}

/// A set that could not be put in place, and the file that failed.
#[derive(Debug, thiserror::Error)]
#[error("part {part} of {count}, `{filename}`")]
pub struct SetError {
    /// 1-based.
    pub part: usize,
    pub count: usize,
    pub filename: String,
    #[source]
    pub source: FetchError,
}

/// Where the files of the set whose first file is `first_filename` are staged in `dest_dir`.
pub fn staging_dir(dest_dir: &Path, first_filename: &str) -> PathBuf {
    dest_dir
        .join(STAGING_DIR)
        .join(staging_stem(first_filename))
}

fn staging_stem(first_filename: &str) -> &str {
    first_filename
        .strip_suffix(".gguf")
        .unwrap_or(first_filename)
}

/// Fetch every request of `reqs` (at least one; the first is the file the others belong to) into
/// `opts.dest_dir`, all or none; see the module documentation.
pub fn fetch_set(
    reqs: &[FetchRequest],
    opts: &FetchOptions,
    progress: &dyn Progress,
) -> Result<SetReport, SetError> {
    let started = Instant::now();
    let count = reqs.len();
    let Some(first) = reqs.first() else {
        return Err(SetError {
            part: 0,
            count,
            filename: String::new(),
            source: FetchError::BadRequest {
                reason: "a set of files to fetch holds none".into(),
            },
        });
    };
    let fail = |i: usize, source: FetchError| SetError {
        part: i + 1,
        count,
        filename: reqs[i].filename.clone(),
        source,
    };
    // Each name is checked by `fetch`; the staging directory is named after the first, so check
    // it here before anything is created.
    if let Err(reason) = crate::validate::model_file_name(&first.filename) {
        return Err(fail(
            0,
            FetchError::BadFilename {
                name: first.filename.clone(),
                reason,
            },
        ));
    }
    let dest = &opts.dest_dir;
    let staging = staging_dir(dest, &first.filename);
    std::fs::create_dir_all(&staging).map_err(|source| {
        fail(
            0,
            FetchError::Io {
                op: "create the staging directory",
                path: staging.clone(),
                partial: Partial::None,
                source,
            },
        )
    })?;
    // One run at a time stages and places this set.
    let lock_path = dest
        .join(STAGING_DIR)
        .join(format!("{}.lock", staging_stem(&first.filename)));
    let _lock = FileLock::try_acquire(&lock_path).map_err(|e| {
        fail(
            0,
            match e {
                LockError::Held { .. } => FetchError::Locked {
                    path: dest.join(&first.filename),
                    lock: lock_path.clone(),
                },
                other => FetchError::Io {
                    op: "create the lock file",
                    path: lock_path.clone(),
                    partial: Partial::None,
                    source: std::io::Error::other(other),
                },
            },
        )
    })?;

    let staged_opts = FetchOptions {
        dest_dir: staging.clone(),
        ..opts.clone()
    };
    let mut reports = Vec::with_capacity(count);
    for (i, req) in reqs.iter().enumerate() {
        let in_place = dest.join(&req.filename);
        let staged = staging.join(&req.filename);
        // A file already in place is offered to `fetch` as if it were staged: it is reused
        // when it still matches, replaced in the staging directory when it does not.
        if in_place.is_file() && !staged.exists() {
            let _ = crate::fsutil::link_or_copy_atomic(&in_place, &staged);
        }
        if count > 1 {
            progress.note(&format!("part {} of {count}: {}", i + 1, req.filename));
        }
        let r = fetch(req, &staged_opts, progress).map_err(|e| fail(i, e))?;
        reports.push(r);
    }

    // Everything verified: into place, the first file last.
    for i in (0..count).rev() {
        let from = staging.join(&reqs[i].filename);
        let to = dest.join(&reqs[i].filename);
        if i == 0 {
            // The others' renames are durable before the first file appears.
            sync_dir(&to);
        }
        std::fs::rename(&from, &to).map_err(|source| {
            fail(
                i,
                FetchError::Io {
                    op: "move the verified part into place",
                    path: to.clone(),
                    partial: Partial::Kept {
                        path: from.clone(),
                        bytes: reports[i].bytes,
                    },
                    source,
                },
            )
        })?;
        reports[i].path = to;
    }
    sync_dir(&dest.join(&first.filename));
    let _ = std::fs::remove_dir_all(&staging);
    drop(_lock);
    // Gone once no other set is staged.
    let _ = std::fs::remove_dir(dest.join(STAGING_DIR));
    Ok(SetReport {
        path: reports[0].path.clone(),
        bytes: reports.iter().map(|r| r.bytes).sum(),
        bytes_downloaded: reports.iter().map(|r| r.bytes_downloaded).sum(),
        elapsed_s: started.elapsed().as_secs_f64(),
        parts: reports,
    })
}

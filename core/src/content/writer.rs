//! One ingest in progress: the locked `ingest/<key>/` directory and the
//! hashing [`Writer`] over its `data` file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rustix::fs::{FlockOperation, flock};

use super::{ContentError, Result, hash_into, io_err};
use crate::digest::{Digest, Digester};

const DATA: &str = "data";
const REF: &str = "ref";
const LOCK: &str = "lock";

/// Writes one blob into the store. Implements [`std::io::Write`]; every byte
/// written is hashed on the way. Dropping it keeps the partial data for a
/// later resume; [`commit`](Self::commit) or [`abort`](Self::abort) end it.
#[derive(Debug)]
pub struct Writer {
    ref_name: String,
    dir: PathBuf,
    blobs: PathBuf,
    data: File,
    digester: Digester,
    offset: u64,
    expected: Option<(Digest, u64)>,
    /// Held (flocked) for the writer's lifetime; closing it unlocks.
    _lock: File,
}

impl Writer {
    pub(super) fn open(
        ref_name: &str,
        dir: PathBuf,
        blobs: PathBuf,
        expected: Option<(Digest, u64)>,
    ) -> Result<Self> {
        let lock = lock_dir(&dir, ref_name)?;
        let ref_path = dir.join(REF);
        if !ref_path.exists() {
            fs::write(&ref_path, ref_name).map_err(io_err("writing", &ref_path))?;
        }
        let data_path = dir.join(DATA);
        let mut data = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&data_path)
            .map_err(io_err("opening", &data_path))?;
        let mut digester = Digester::new();
        let len = data
            .metadata()
            .map_err(io_err("inspecting", &data_path))?
            .len();
        if matches!(expected, Some((_, size)) if len > size) {
            // Longer than it can ever be: the old data is not this blob.
            data.set_len(0).map_err(io_err("truncating", &data_path))?;
        } else if len > 0 {
            hash_into(&mut data, &mut digester).map_err(io_err("reading", &data_path))?;
        }
        let offset = digester.len();
        data.seek(SeekFrom::Start(offset))
            .map_err(io_err("seeking", &data_path))?;
        Ok(Self {
            ref_name: ref_name.to_owned(),
            dir,
            blobs,
            data,
            digester,
            offset,
            expected,
            _lock: lock,
        })
    }

    /// The ingest ref this writer holds.
    pub fn ref_name(&self) -> &str {
        &self.ref_name
    }

    /// Bytes written so far, including those of earlier writers of this ref:
    /// where a resumed download should continue.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// A reader of the bytes an earlier writer of this ref left (the first
    /// [`offset`](Self::offset) bytes), so a resumed download can replay
    /// them through a consumer (e.g. a layer unpacker) before continuing
    /// from the network.
    pub fn partial_reader(&self) -> Result<io::Take<File>> {
        let data_path = self.dir.join(DATA);
        let file = File::open(&data_path).map_err(io_err("opening", &data_path))?;
        Ok(io::Read::take(file, self.offset))
    }

    /// The digest and size given when the writer was opened.
    pub fn expected(&self) -> Option<(Digest, u64)> {
        self.expected
    }

    /// Makes the blob durable and visible: fsync, size check, digest check,
    /// atomic rename into `blobs/`, fsync of `blobs/`. On a mismatch the
    /// ingest is removed and nothing is stored. If the blob is already
    /// present the ingest is dropped and the existing blob kept.
    pub fn commit(mut self) -> Result<Digest> {
        let data_path = self.dir.join(DATA);
        self.data.flush().map_err(io_err("flushing", &data_path))?;
        self.data
            .sync_all()
            .map_err(io_err("syncing", &data_path))?;
        let actual = self.digester.clone().finish();
        if let Some((expected, size)) = self.expected {
            if size != self.offset {
                let err = ContentError::SizeMismatch {
                    ref_name: self.ref_name.clone(),
                    expected: size,
                    actual: self.offset,
                };
                self.remove_dir()?;
                return Err(err);
            }
            if expected != actual {
                let err = ContentError::DigestMismatch {
                    ref_name: self.ref_name.clone(),
                    expected,
                    actual,
                };
                self.remove_dir()?;
                return Err(err);
            }
        }
        let target = self.blobs.join(actual.hex());
        if !target.is_file() {
            self.data
                .set_permissions(fs::Permissions::from_mode(0o444))
                .map_err(io_err("setting permissions on", &data_path))?;
            fs::rename(&data_path, &target).map_err(io_err("renaming", &data_path))?;
            sync_dir(&self.blobs)?;
        }
        self.remove_dir()?;
        Ok(actual)
    }

    /// Discards the ingest and everything written to it.
    pub fn abort(self) -> Result<()> {
        self.remove_dir()
    }

    /// Removes the ingest directory while still holding its lock, so no other
    /// writer can be using it.
    fn remove_dir(&self) -> Result<()> {
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("removing", &self.dir)(e)),
        }
    }

    fn too_large(&self, attempted: u64, expected: u64) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            ContentError::TooLarge {
                ref_name: self.ref_name.clone(),
                expected,
                attempted,
            },
        )
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some((_, size)) = self.expected {
            let attempted = self.offset + buf.len() as u64;
            if attempted > size {
                return Err(self.too_large(attempted, size));
            }
        }
        let n = self.data.write(buf)?;
        self.digester.update(&buf[..n]);
        self.offset += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.data.flush()
    }
}

/// Creates `dir` if needed and takes the exclusive lock on `dir/lock`
/// without waiting. Retries when the lock file was replaced while we opened
/// it (a previous writer removed the directory after we opened its lock).
fn lock_dir(dir: &Path, ref_name: &str) -> Result<File> {
    let lock_path = dir.join(LOCK);
    for _ in 0..8 {
        fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
        let lock = match OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
        {
            Ok(f) => f,
            // The directory vanished between create and open: try again.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err("opening", &lock_path)(e)),
        };
        match flock(&lock, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(ContentError::Busy(ref_name.to_owned()));
            }
            Err(e) => return Err(io_err("locking", &lock_path)(e.into())),
        }
        let held = lock.metadata().map_err(io_err("inspecting", &lock_path))?;
        match fs::metadata(&lock_path) {
            Ok(m) if m.dev() == held.dev() && m.ino() == held.ino() => return Ok(lock),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("inspecting", &lock_path)(e)),
        }
    }
    Err(ContentError::Busy(ref_name.to_owned()))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("syncing", dir))
}

/// An ingest no writer holds, as fsck reports it.
#[derive(Debug)]
pub(super) struct IdleIngest {
    pub(super) ref_name: String,
    pub(super) size: u64,
    pub(super) modified: SystemTime,
}

/// `Some` when the ingest directory `dir` exists and no writer holds it.
pub(super) fn probe_idle(dir: &Path) -> Result<Option<IdleIngest>> {
    let lock_path = dir.join(LOCK);
    let lock = match File::open(&lock_path) {
        Ok(f) => Some(f),
        // Committed or aborted while we looked.
        Err(e) if e.kind() == io::ErrorKind::NotFound && !dir.exists() => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err("opening", &lock_path)(e)),
    };
    if let Some(lock) = &lock {
        match flock(lock, FlockOperation::NonBlockingLockShared) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
            Err(e) => return Err(io_err("locking", &lock_path)(e.into())),
        }
    }
    let ref_name = fs::read_to_string(dir.join(REF)).unwrap_or_else(|_| {
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let data_path = dir.join(DATA);
    let (size, modified) = match fs::metadata(&data_path) {
        Ok(m) => (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => (0, SystemTime::UNIX_EPOCH),
        Err(e) => return Err(io_err("inspecting", &data_path)(e)),
    };
    Ok(Some(IdleIngest {
        ref_name,
        size,
        modified,
    }))
}

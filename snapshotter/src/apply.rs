//! Applying one image layer (an uncompressed tar stream) into the layer's own
//! overlayfs diff directory, the way containerd's overlay snapshotter does.
//!
//! Every entry becomes the file, directory, symlink, hard link, device node
//! or fifo it describes, with its numeric owner, mode (setuid, setgid and
//! sticky included), mtime and `SCHILY.xattr.*` extended attributes. OCI
//! whiteouts are converted to what overlayfs reads: `.wh.<name>` becomes a
//! 0:0 character device `<name>`, and `.wh..wh..opq` sets
//! `trusted.overlay.opaque=y` on its directory. Other `.wh..wh.*` metadata
//! entries (AUFS hard-link directories) are skipped.
//!
//! # Safety against hostile layers
//!
//! Nothing an entry names may be created or written outside `dest`:
//!
//! - Entry names are cleaned lexically first. An absolute name (`/etc/x`) or
//!   one whose `..` climbs above the root (`../x`, `a/../../x`) is refused
//!   with [`ApplyError::PathEscape`], as moby does for `..`; `a/../b` is `b`.
//!   (moby maps `/x` to `x`; we refuse it, since no tool writes such layers.)
//! - The parent directory of every entry is opened with
//!   `openat2(dest, parent, O_PATH | O_DIRECTORY,
//!   RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`, so a symlink created earlier
//!   in the layer (`a -> /etc` then `a/passwd`, or `a -> ../..`) cannot lead
//!   out: the kernel answers `EXDEV`, reported as `PathEscape`. Symlinks that
//!   stay beneath `dest` (`lib -> usr/lib`) are followed. Missing parents are
//!   created one component at a time (mode 0755, root-owned) with the same
//!   resolution.
//! - The last component is always created relative to that descriptor with
//!   `*at()` calls that do not follow a symlink there (`O_CREAT | O_EXCL |
//!   O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`, `mkdirat`, `mknodat`, `symlinkat`).
//!   An existing non-directory in the way is unlinked, an existing directory
//!   is removed recursively without following symlinks (unless the entry is
//!   itself a directory, which then keeps its contents).
//! - Hard-link targets are cleaned and resolved the same way, and `linkat`
//!   does not follow a symlink target.
//! - Extended attributes named `trusted.overlay.*` in the tar are dropped:
//!   they are overlayfs' own metadata (redirects, metacopy) and a layer must
//!   not be able to forge them.
//!
//! The one descriptor kept between entries is the last parent directory
//! (entries of a directory are consecutive in real layers); it is dropped
//! whenever an entry removes something, so every lookup sees the current
//! tree. Directories' mtimes are set after the whole layer is applied, since
//! creating their contents changes them.
//!
//! This assumes nobody else modifies `dest` while the layer is applied (a
//! snapshot being prepared is private to the snapshotter). It needs Linux
//! 5.6 or later (`openat2`).
//!
//! # Limits
//!
//! Extended attributes are set on regular files and directories only (not
//! on symlinks, devices or fifos, which cannot be opened for `fsetxattr`);
//! hard links keep the metadata of their target; GNU sparse files are
//! written out in full; nothing is fsynced (the caller syncs the snapshot).
//!
//! # Errors and cleanup
//!
//! The first failure stops the apply and names the entry that failed, as it
//! is spelled in the tar. `dest` is then left partially written: cleaning it
//! up is the caller's job (the snapshot is discarded).

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags};
use rustix::io::Errno;
use tar::EntryType;

mod dirfd;
mod error;
mod names;

use dirfd::{create, is_dir_nofollow, openat2_beneath, remove};
pub use error::ApplyError;
use names::{clean_path, parse_pax_time, split_parent};

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const PAX_XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";
const OVERLAY_XATTR_PREFIX: &[u8] = b"trusted.overlay.";

/// How a layer is applied.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Set each entry's numeric uid/gid from the tar (needs CAP_CHOWN).
    /// When false, everything is owned by the caller.
    pub chown: bool,
    /// Set the `SCHILY.xattr.*` extended attributes found in the tar.
    pub xattrs: bool,
    /// Size of the read buffer and of the file copy buffer, in bytes.
    pub buffer_size: usize,
    /// Turn `.wh.` entries into overlayfs whiteouts (an image layer). When
    /// false they are ordinary names (`docker cp` into a mounted rootfs).
    pub whiteouts: bool,
    /// Owner of every entry instead of the tar's uid/gid (with `chown`).
    pub owner: Option<(u32, u32)>,
    /// Refuse to replace an existing directory with a non-directory or
    /// the reverse (`docker cp`'s `noOverwriteDirNonDir`).
    pub no_overwrite_dir_non_dir: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            chown: true,
            xattrs: true,
            buffer_size: 256 << 10,
            whiteouts: true,
            owner: None,
            no_overwrite_dir_non_dir: false,
        }
    }
}

/// What an apply created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Tar entries read (PAX and GNU long-name headers not counted).
    pub entries: u64,
    /// Regular files written.
    pub files: u64,
    /// Directories created or updated (the root included, implicit
    /// parents not).
    pub dirs: u64,
    /// Symbolic links created.
    pub symlinks: u64,
    /// Hard links created.
    pub hardlinks: u64,
    /// Character and block devices created.
    pub devices: u64,
    /// Fifos created.
    pub fifos: u64,
    /// `.wh.<name>` entries turned into overlayfs whiteouts.
    pub whiteouts: u64,
    /// `.wh..wh..opq` entries turned into opaque directories.
    pub opaque_dirs: u64,
    /// Entries skipped (PAX global headers, `.wh..wh.*` metadata).
    pub skipped: u64,
    /// Bytes of regular-file content written.
    pub bytes: u64,
}

/// Applies the layer `tar` (uncompressed) into the directory `dest`, which
/// must exist. See the module documentation for the semantics and the safety
/// rules; on error `dest` is left partially written for the caller to
/// discard.
pub fn apply_layer<R: Read>(
    tar: R,
    dest: &Path,
    opts: &ApplyOptions,
) -> Result<ApplyStats, ApplyError> {
    let root = rustix::fs::open(
        dest,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ApplyError::OpenDest {
        path: dest.to_owned(),
        source: e.into(),
    })?;
    let buffer_size = opts.buffer_size.max(4096);
    let mut applier = Applier {
        root,
        opts,
        parent: None,
        parent_stale: false,
        raw: Vec::new(),
        path: Vec::new(),
        link: Vec::new(),
        buf: vec![0; buffer_size],
        dir_times: Vec::new(),
        stats: ApplyStats::default(),
    };
    let mut archive = tar::Archive::new(BufReader::with_capacity(buffer_size, tar));
    let entries = archive.entries().map_err(|source| ApplyError::Read {
        entry: None,
        source,
    })?;
    for entry in entries {
        let mut entry = entry.map_err(|source| ApplyError::Read {
            entry: (!applier.raw.is_empty()).then(|| bytes_path(&applier.raw)),
            source,
        })?;
        applier.apply(&mut entry)?;
    }
    applier.finish()?;
    Ok(applier.stats)
}

/// Metadata every entry carries.
#[derive(Clone, Copy)]
struct Meta {
    mode: Mode,
    uid: u32,
    gid: u32,
    mtime: Timespec,
}

/// A directory whose mtime is set once the layer is applied.
struct DirTime {
    path: Vec<u8>,
    mtime: Timespec,
}

struct Applier<'o> {
    /// `dest`, opened `O_PATH`.
    root: OwnedFd,
    opts: &'o ApplyOptions,
    /// The last parent directory resolved, by cleaned path.
    parent: Option<(Vec<u8>, OwnedFd)>,
    /// Something was removed since `parent` was resolved.
    parent_stale: bool,
    /// The current entry's name as in the tar, for errors.
    raw: Vec<u8>,
    /// The current entry's cleaned path.
    path: Vec<u8>,
    /// The current hard link's cleaned target.
    link: Vec<u8>,
    buf: Vec<u8>,
    dir_times: Vec<DirTime>,
    stats: ApplyStats,
}

impl Applier<'_> {
    fn apply<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), ApplyError> {
        self.raw.clear();
        self.raw.extend_from_slice(&entry.path_bytes());
        self.stats.entries += 1;
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            self.stats.skipped += 1;
            return Ok(());
        }
        if !clean_path(&self.raw, &mut self.path) {
            return Err(self.escape());
        }
        let mut meta = self.meta(entry.header())?;
        if let Some((uid, gid)) = self.opts.owner {
            (meta.uid, meta.gid) = (uid, gid);
        }
        if let Some(nsec) = self.pax_mtime(entry)? {
            meta.mtime = nsec;
        }
        let path = std::mem::take(&mut self.path);
        let result = self.apply_at(entry, kind, &path, meta);
        self.path = path;
        result
    }

    fn apply_at<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        kind: EntryType,
        path: &[u8],
        meta: Meta,
    ) -> Result<(), ApplyError> {
        let (parent, name) = split_parent(path);
        if name.is_empty() {
            // The layer root itself (`./`): only its metadata applies.
            if !kind.is_dir() {
                return Err(self.invalid("a non-directory entry names the layer root"));
            }
            return self.dir(entry, None, b"", meta);
        }
        if self.opts.whiteouts && name.starts_with(WHITEOUT_PREFIX) {
            let dir = self.resolve_parent(parent, true)?;
            return self.whiteout(dir, name, meta);
        }
        if self.opts.no_overwrite_dir_non_dir {
            let dir = self.resolve_parent(parent, true)?;
            let dir = parent_of(&self.root, &self.parent, dir);
            let existing = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
                .ok()
                .map(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory);
            match (existing, kind.is_dir()) {
                (Some(true), false) => {
                    return Err(self.overwrite("cannot overwrite a directory with a non-directory"));
                }
                (Some(false), true) => {
                    return Err(self.overwrite("cannot overwrite a non-directory with a directory"));
                }
                _ => {}
            }
        }
        match kind {
            EntryType::Directory => {
                let dir = self.resolve_parent(parent, true)?;
                self.dir(entry, Some(dir), name, meta)?;
                self.dir_times.push(DirTime {
                    path: path.to_vec(),
                    mtime: meta.mtime,
                });
                Ok(())
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let dir = self.resolve_parent(parent, true)?;
                self.file(entry, dir, name, meta)
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.invalid("symlink without a target"))?;
                let dir = self.resolve_parent(parent, true)?;
                let dir = parent_of(&self.root, &self.parent, dir);
                create(dir, name, &mut self.parent_stale, |d| {
                    rustix::fs::symlinkat(&*target, d, name)
                })
                .map_err(|e| io_err(&self.raw, "symlinkat", e))?;
                self.stats.symlinks += 1;
                self.finish_node(dir, name, meta, false)
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.invalid("hard link without a target"))?;
                let mut link = std::mem::take(&mut self.link);
                let ok = clean_path(&target, &mut link);
                let result = if !ok || link.is_empty() {
                    Err(self.escape())
                } else {
                    self.hardlink(parent, name, &link)
                };
                self.link = link;
                result
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (file_type, dev) = if kind == EntryType::Fifo {
                    (FileType::Fifo, 0)
                } else {
                    let h = entry.header();
                    let major = h.device_major().ok().flatten();
                    let minor = h.device_minor().ok().flatten();
                    let (Some(major), Some(minor)) = (major, minor) else {
                        return Err(self.invalid("device without major/minor numbers"));
                    };
                    let t = if kind == EntryType::Char {
                        FileType::CharacterDevice
                    } else {
                        FileType::BlockDevice
                    };
                    (t, rustix::fs::makedev(major, minor))
                };
                let dir = self.resolve_parent(parent, true)?;
                let dir = parent_of(&self.root, &self.parent, dir);
                create(dir, name, &mut self.parent_stale, |d| {
                    rustix::fs::mknodat(d, name, file_type, meta.mode, dev)
                })
                .map_err(|e| io_err(&self.raw, "mknodat", e))?;
                if file_type == FileType::Fifo {
                    self.stats.fifos += 1;
                } else {
                    self.stats.devices += 1;
                }
                self.finish_node(dir, name, meta, true)
            }
            other => Err(ApplyError::UnsupportedEntryType {
                entry: bytes_path(&self.raw),
                kind: char::from(other.as_byte()),
            }),
        }
    }

    /// Creates or updates the directory `name` in `dir` (`None`: the root)
    /// and applies its owner, mode and xattrs; the mtime is set at the end.
    fn dir<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        at: Option<At>,
        name: &[u8],
        meta: Meta,
    ) -> Result<(), ApplyError> {
        let fd = match at.map(|at| parent_of(&self.root, &self.parent, at)) {
            None => rustix::fs::openat(
                &self.root,
                c".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            ),
            Some(dir) => {
                match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700)) {
                    Ok(()) => {}
                    Err(Errno::EXIST) => {
                        if !is_dir_nofollow(dir, name) {
                            remove(dir, name).map_err(|e| self.io("remove existing", e))?;
                            self.parent_stale = true;
                            rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700))
                                .map_err(|e| self.io("mkdirat", e))?;
                        }
                    }
                    Err(e) => return Err(self.io("mkdirat", e)),
                }
                rustix::fs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
            }
        }
        .map_err(|e| self.io("open directory", e))?;
        self.fd_meta(entry, &fd, meta, false)?;
        if at.is_none() {
            self.dir_times.push(DirTime {
                path: Vec::new(),
                mtime: meta.mtime,
            });
        }
        self.stats.dirs += 1;
        Ok(())
    }

    /// Streams a regular file's content into a new file `name` in `dir`.
    fn file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        dir: At,
        name: &[u8],
        meta: Meta,
    ) -> Result<(), ApplyError> {
        let dir = parent_of(&self.root, &self.parent, dir);
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
        let mut fd = None;
        create(dir, name, &mut self.parent_stale, |d| {
            let f = rustix::fs::openat(d, name, flags | OFlags::CLOEXEC, Mode::RUSR | Mode::WUSR)?;
            fd = Some(f);
            Ok(())
        })
        .map_err(|e| io_err(&self.raw, "create file", e))?;
        let Some(fd) = fd else {
            unreachable!("create succeeded without a file");
        };
        let mut file = File::from(fd);
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(ApplyError::Read {
                        entry: Some(bytes_path(&self.raw)),
                        source,
                    });
                }
            };
            file.write_all(&self.buf[..n])
                .map_err(|source| ApplyError::Io {
                    entry: bytes_path(&self.raw),
                    op: "write",
                    source,
                })?;
            self.stats.bytes += n as u64;
        }
        self.fd_meta(entry, &file, meta, true)?;
        self.stats.files += 1;
        Ok(())
    }

    /// Owner, mode, xattrs and (if `times`) mtime of an open file or dir.
    fn fd_meta<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        fd: impl AsFd,
        meta: Meta,
        times: bool,
    ) -> Result<(), ApplyError> {
        let fd = fd.as_fd();
        if self.opts.chown {
            rustix::fs::fchown(
                fd,
                Some(rustix::fs::Uid::from_raw(meta.uid)),
                Some(rustix::fs::Gid::from_raw(meta.gid)),
            )
            .map_err(|e| self.io("fchown", e))?;
        }
        // After fchown, which clears setuid/setgid.
        rustix::fs::fchmod(fd, meta.mode).map_err(|e| self.io("fchmod", e))?;
        if self.opts.xattrs {
            let pax = entry.pax_extensions().map_err(|source| ApplyError::Read {
                entry: Some(bytes_path(&self.raw)),
                source,
            })?;
            for ext in pax.into_iter().flatten() {
                let ext = ext.map_err(|source| ApplyError::Read {
                    entry: Some(bytes_path(&self.raw)),
                    source,
                })?;
                let Some(name) = ext.key_bytes().strip_prefix(PAX_XATTR_PREFIX) else {
                    continue;
                };
                // overlayfs' own metadata is not the layer's to set; an empty
                // PAX value deletes the keyword (POSIX), as Go's tar reads it.
                if name.starts_with(OVERLAY_XATTR_PREFIX) || ext.value_bytes().is_empty() {
                    continue;
                }
                rustix::fs::fsetxattr(fd, name, ext.value_bytes(), XattrFlags::empty())
                    .map_err(|e| self.io("fsetxattr", e))?;
            }
        }
        if times {
            let ts = Timestamps {
                last_access: meta.mtime,
                last_modification: meta.mtime,
            };
            rustix::fs::futimens(fd, &ts).map_err(|e| self.io("futimens", e))?;
        }
        Ok(())
    }

    /// Owner, mode (`chmod`: not for symlinks) and times of a node just
    /// created at `name` in `dir`, without following a symlink there.
    fn finish_node(
        &self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        meta: Meta,
        chmod: bool,
    ) -> Result<(), ApplyError> {
        if self.opts.chown {
            rustix::fs::chownat(
                dir,
                name,
                Some(rustix::fs::Uid::from_raw(meta.uid)),
                Some(rustix::fs::Gid::from_raw(meta.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| self.io("fchownat", e))?;
        }
        if chmod {
            // fchmodat cannot refuse to follow a symlink, but `name` is the
            // device or fifo this apply just created (mknodat's mode was
            // cut by the umask).
            rustix::fs::chmodat(dir, name, meta.mode, AtFlags::empty())
                .map_err(|e| self.io("fchmodat", e))?;
        }
        let ts = Timestamps {
            last_access: meta.mtime,
            last_modification: meta.mtime,
        };
        rustix::fs::utimensat(dir, name, &ts, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.io("utimensat", e))
    }

    fn hardlink(&mut self, parent: &[u8], name: &[u8], target: &[u8]) -> Result<(), ApplyError> {
        let (tparent, tname) = split_parent(target);
        let tdir = if tparent.is_empty() {
            None
        } else {
            Some(self.open_beneath(tparent)?)
        };
        let dir = self.resolve_parent(parent, true)?;
        let dir = parent_of(&self.root, &self.parent, dir);
        let tdir = tdir.as_ref().map_or(self.root.as_fd(), |d| d.as_fd());
        create(dir, name, &mut self.parent_stale, |d| {
            rustix::fs::linkat(tdir, tname, d, name, AtFlags::empty())
        })
        .map_err(|e| io_err(&self.raw, "linkat", e))?;
        self.stats.hardlinks += 1;
        Ok(())
    }

    /// `.wh.<name>` and `.wh..wh.*` entries.
    fn whiteout(&mut self, dir: At, name: &[u8], meta: Meta) -> Result<(), ApplyError> {
        let dir = parent_of(&self.root, &self.parent, dir);
        if name == OPAQUE_MARKER {
            let fd = rustix::fs::openat(
                dir,
                c".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| self.io("open directory", e))?;
            rustix::fs::fsetxattr(&fd, OPAQUE_XATTR, b"y", XattrFlags::empty())
                .map_err(|e| self.io("fsetxattr", e))?;
            self.stats.opaque_dirs += 1;
            return Ok(());
        }
        if name.starts_with(WHITEOUT_META_PREFIX) {
            self.stats.skipped += 1;
            return Ok(());
        }
        let target = &name[WHITEOUT_PREFIX.len()..];
        if target.is_empty() || target == b"." || target == b".." {
            return Err(self.invalid("whiteout without a name"));
        }
        create(dir, target, &mut self.parent_stale, |d| {
            rustix::fs::mknodat(
                d,
                target,
                FileType::CharacterDevice,
                Mode::empty(),
                rustix::fs::makedev(0, 0),
            )
        })
        .map_err(|e| io_err(&self.raw, "mknodat whiteout", e))?;
        self.stats.whiteouts += 1;
        let meta = Meta {
            mode: Mode::empty(),
            ..meta
        };
        self.finish_node(dir, target, meta, false)
    }

    /// Sets the directories' mtimes, now that their contents exist.
    fn finish(&mut self) -> Result<(), ApplyError> {
        let dirs = std::mem::take(&mut self.dir_times);
        for d in &dirs {
            self.raw.clear();
            self.raw.extend_from_slice(&d.path);
            let (parent, name) = split_parent(&d.path);
            let fd = if name.is_empty() {
                rustix::fs::openat(
                    &self.root,
                    c".",
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
            } else {
                let dir = match self.resolve_parent(parent, false) {
                    Ok(dir) => dir,
                    // A later entry replaced a parent by a file or a symlink
                    // (possibly leading out): nothing to set.
                    Err(ApplyError::PathEscape { .. }) => continue,
                    Err(ApplyError::Io { source, .. })
                        if matches!(
                            Errno::from_io_error(&source),
                            Some(Errno::NOENT | Errno::NOTDIR | Errno::LOOP)
                        ) =>
                    {
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let dir = parent_of(&self.root, &self.parent, dir);
                rustix::fs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
            };
            let fd = match fd {
                Ok(fd) => fd,
                // Replaced by a non-directory later in the layer.
                Err(Errno::NOTDIR | Errno::LOOP | Errno::NOENT) => continue,
                Err(e) => return Err(self.io("open directory", e)),
            };
            let ts = Timestamps {
                last_access: d.mtime,
                last_modification: d.mtime,
            };
            rustix::fs::futimens(&fd, &ts).map_err(|e| self.io("futimens", e))?;
        }
        Ok(())
    }

    /// Makes `self.parent` hold the directory `parent` (cleaned, relative
    /// to the root), creating missing components if `create`; pass the
    /// result to [`parent_of`].
    fn resolve_parent(&mut self, parent: &[u8], create: bool) -> Result<At, ApplyError> {
        if parent.is_empty() {
            return Ok(At::Root);
        }
        if self.parent_stale {
            self.parent = None;
            self.parent_stale = false;
        }
        if let Some((p, _)) = &self.parent
            && p == parent
        {
            return Ok(At::Parent);
        }
        let fd = match openat2_beneath(&self.root, parent) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if create => self.mkdir_parents(parent)?,
            Err(e) => return Err(self.resolve_err(e)),
        };
        match &mut self.parent {
            Some((p, f)) => {
                p.clear();
                p.extend_from_slice(parent);
                *f = fd;
            }
            None => self.parent = Some((parent.to_vec(), fd)),
        }
        Ok(At::Parent)
    }

    /// Opens `path` (a directory beneath the root) without creating it.
    fn open_beneath(&self, path: &[u8]) -> Result<OwnedFd, ApplyError> {
        openat2_beneath(&self.root, path).map_err(|e| self.resolve_err(e))
    }

    /// Creates the missing directories of `parent` one component at a time.
    fn mkdir_parents(&self, parent: &[u8]) -> Result<OwnedFd, ApplyError> {
        let mut end = 0;
        let mut cur: Option<OwnedFd> = None;
        while end < parent.len() {
            end = parent[end + 1..]
                .iter()
                .position(|&b| b == b'/')
                .map_or(parent.len(), |i| end + 1 + i);
            let prefix = &parent[..end];
            let fd = match openat2_beneath(&self.root, prefix) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => {
                    let (_, name) = split_parent(prefix);
                    let at = cur.as_ref().map_or(self.root.as_fd(), |f| f.as_fd());
                    match rustix::fs::mkdirat(at, name, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(self.io("mkdirat parent", e)),
                    }
                    openat2_beneath(&self.root, prefix).map_err(|e| self.resolve_err(e))?
                }
                Err(e) => return Err(self.resolve_err(e)),
            };
            cur = Some(fd);
        }
        cur.ok_or_else(|| self.invalid("empty parent"))
    }

    fn meta(&self, h: &tar::Header) -> Result<Meta, ApplyError> {
        let mode = h.mode().map_err(|_| self.invalid("bad mode"))? & 0o7777;
        let uid = h.uid().map_err(|_| self.invalid("bad uid"))?;
        let gid = h.gid().map_err(|_| self.invalid("bad gid"))?;
        let mtime = h.mtime().map_err(|_| self.invalid("bad mtime"))?;
        Ok(Meta {
            mode: Mode::from_raw_mode(mode),
            uid: u32::try_from(uid).map_err(|_| self.invalid("uid out of range"))?,
            gid: u32::try_from(gid).map_err(|_| self.invalid("gid out of range"))?,
            mtime: Timespec {
                tv_sec: i64::try_from(mtime).map_err(|_| self.invalid("mtime out of range"))?,
                tv_nsec: 0,
            },
        })
    }

    /// The PAX `mtime` record (`seconds[.fraction]`), which is more precise
    /// than the header's whole seconds.
    fn pax_mtime<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<Option<Timespec>, ApplyError> {
        let pax = entry.pax_extensions().map_err(|source| ApplyError::Read {
            entry: Some(bytes_path(&self.raw)),
            source,
        })?;
        for ext in pax.into_iter().flatten() {
            let Ok(ext) = ext else { continue };
            if ext.key_bytes() == b"mtime" {
                return parse_pax_time(ext.value_bytes())
                    .map(Some)
                    .ok_or_else(|| self.invalid("bad PAX mtime"));
            }
        }
        Ok(None)
    }

    fn resolve_err(&self, e: Errno) -> ApplyError {
        match e {
            // RESOLVE_BENEATH: the path would leave the root (`..`, an
            // absolute symlink); RESOLVE_NO_MAGICLINKS: a /proc magic link.
            Errno::XDEV => self.escape(),
            e => self.io("openat2 parent", e),
        }
    }

    fn escape(&self) -> ApplyError {
        ApplyError::PathEscape {
            entry: bytes_path(&self.raw),
        }
    }

    fn invalid(&self, reason: &'static str) -> ApplyError {
        ApplyError::InvalidEntry {
            entry: bytes_path(&self.raw),
            reason,
        }
    }

    fn io(&self, op: &'static str, e: Errno) -> ApplyError {
        io_err(&self.raw, op, e)
    }
}

/// Where an entry's parent directory is: the root, or the cached parent.
#[derive(Clone, Copy)]
enum At {
    Root,
    Parent,
}

impl Applier<'_> {
    fn overwrite(&self, reason: &'static str) -> ApplyError {
        ApplyError::WouldOverwrite {
            entry: bytes_path(&self.raw),
            reason,
        }
    }
}

/// The descriptor of the directory `at` names. A free function so that it
/// borrows only these two fields of the applier.
fn parent_of<'a>(
    root: &'a OwnedFd,
    parent: &'a Option<(Vec<u8>, OwnedFd)>,
    at: At,
) -> BorrowedFd<'a> {
    match (at, parent) {
        (At::Parent, Some((_, fd))) => fd.as_fd(),
        _ => root.as_fd(),
    }
}

fn io_err(raw: &[u8], op: &'static str, e: Errno) -> ApplyError {
    ApplyError::Io {
        entry: bytes_path(raw),
        op,
        source: e.into(),
    }
}

fn bytes_path(raw: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(raw))
}

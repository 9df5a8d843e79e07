//! A container's files: `docker cp` (stat, copy out, copy in), `export`,
//! `diff` and the layer of `docker commit`.
//!
//! Where the files are seen from:
//!
//! - a running (or paused) container through `/proc/<pid>/root`: the
//!   container's own mount namespace, so its volumes and bind mounts are
//!   there too, and read-only mounts refuse writes by themselves;
//! - a stopped one through its snapshot, mounted, opened, and detached at
//!   once (`MNT_DETACH`): the open descriptor keeps the mount alive for
//!   the operation and nothing stays mounted after it. Reads use a
//!   read-only overlay of the same directories on a private mount point,
//!   so they need no lock and never hold up a start; a copy in mounts the
//!   real overlay on the (unused) bundle rootfs under the container's
//!   `op` lock, so no start mounts the same upper directory meanwhile.
//!   The container's bind mounts and plain local volumes are bound into
//!   that tree first (read-only where the mount is, or for reads), and
//!   the tree is held through a detached clone (`open_tree`).
//! - `export` reads the rootfs alone (no volumes), as Docker does.
//!
//! Every path the client names is resolved with `openat2(RESOLVE_IN_ROOT)`
//! under that root, so `..` and absolute symlinks stay inside the
//! container, and the final component is never followed unless the path
//! ends in `/` or `/.` (Docker's rule). Copy-in extracts with the
//! snapshotter's applier (entries resolved beneath the destination,
//! nothing created through a symlink). `diff` and `commit` read the
//! overlay upper directory.

mod changes;

use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use berth_core::CommitConfig;
use berth_snapshotter::Snapshotter;
use berth_snapshotter::apply::{ApplyError, ApplyOptions, apply_layer};
use bytes::Bytes;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat, StatVfsMountFlags};
use rustix::io::Errno;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

pub(crate) use changes::Change;
use changes::{lower_dirs, overlay_changes};

use super::fstree::{TreeOptions, TreeWriter, open_dir};
use super::{Container, ContainerError, ContainerStore, Status, lock};
use crate::engine::images::pipe::{ChannelReader, ChannelWriter, PIPE_DEPTH};
use crate::engine::images::{CommitRequest, ImageError};
use crate::engine::{Engine, ErrorKind};
use crate::log;

/// Why a file operation on a container failed; texts are Docker's where
/// clients show them.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FsError {
    #[error("Could not find the file {path} in container {container}")]
    PathNotFound { path: String, container: String },
    #[error("{path}: not a directory")]
    NotADirectory { path: String },
    #[error("{path}: too many levels of symbolic links")]
    SymlinkLoop { path: String },
    #[error("extraction point is not a directory")]
    ExtractNotADirectory,
    #[error("container rootfs is marked read-only")]
    ReadOnlyRootfs,
    #[error("mounted volume is marked read-only")]
    ReadOnlyVolume,
    #[error("copying into {path}: {}", chain(source))]
    Extract { path: String, source: ApplyError },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: io::Error,
    },
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("internal error: container {0} task failed")]
    Task(&'static str),
}

impl FsError {
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            Self::PathNotFound { .. } => ErrorKind::NotFound,
            Self::NotADirectory { .. } | Self::SymlinkLoop { .. } | Self::ExtractNotADirectory => {
                ErrorKind::InvalidArgument
            }
            Self::ReadOnlyRootfs | Self::ReadOnlyVolume => ErrorKind::Forbidden,
            Self::Extract { source, .. } => match source {
                ApplyError::Io { source, .. } if source.raw_os_error() == Some(erofs()) => {
                    ErrorKind::Forbidden
                }
                // A body that is not a whole tar is the client's error (a
                // client gone mid-upload never sees the status).
                ApplyError::Read { .. } => ErrorKind::InvalidArgument,
                other => other.kind().into(),
            },
            Self::Io { .. } | Self::Task(_) => ErrorKind::Internal,
            Self::Container(e) => e.kind(),
            Self::Image(e) => e.kind(),
        }
    }
}

/// An error and its causes, `: `-joined.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

fn erofs() -> i32 {
    Errno::ROFS.raw_os_error()
}

/// Moby's `container.PathStat`, sent base64 JSON in
/// `X-Docker-Container-Path-Stat`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PathStat {
    pub(crate) name: String,
    pub(crate) size: i64,
    /// Go's `os.FileMode` bits.
    pub(crate) mode: u32,
    pub(crate) mtime: String,
    #[serde(rename = "linkTarget")]
    pub(crate) link_target: String,
}

/// Go's `os.FileMode` for a `st_mode`.
fn go_mode(st_mode: u32) -> u32 {
    const DIR: u32 = 1 << 31;
    const SYMLINK: u32 = 1 << 27;
    const DEVICE: u32 = 1 << 26;
    const NAMED_PIPE: u32 = 1 << 25;
    const SOCKET: u32 = 1 << 24;
    const SETUID: u32 = 1 << 23;
    const SETGID: u32 = 1 << 22;
    const CHAR_DEVICE: u32 = 1 << 21;
    const STICKY: u32 = 1 << 20;
    let mut mode = st_mode & 0o777;
    mode |= match FileType::from_raw_mode(st_mode) {
        FileType::Directory => DIR,
        FileType::Symlink => SYMLINK,
        FileType::BlockDevice => DEVICE,
        FileType::CharacterDevice => DEVICE | CHAR_DEVICE,
        FileType::Fifo => NAMED_PIPE,
        FileType::Socket => SOCKET,
        _ => 0,
    };
    if st_mode & 0o4000 != 0 {
        mode |= SETUID;
    }
    if st_mode & 0o2000 != 0 {
        mode |= SETGID;
    }
    if st_mode & 0o1000 != 0 {
        mode |= STICKY;
    }
    mode
}

/// `/a/./b/../c` -> `/a/c` (lexically, never above `/`), keeping a
/// trailing `/` or `/.` (they ask to follow the last symlink).
fn clean(path: &str) -> (String, bool) {
    let follow = path.ends_with('/') || path.ends_with("/.") || path == ".";
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    (format!("/{}", parts.join("/")), follow)
}

/// The last component of `path` as Docker names the copied entry.
fn base_name(path: &str) -> String {
    if path.ends_with("/.") || path == "." {
        return ".".to_owned();
    }
    let (clean, _) = clean(path);
    match clean.rsplit('/').next() {
        Some("") | None => ".".to_owned(),
        Some(name) => name.to_owned(),
    }
}

fn resolve_flags() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

fn openat2_in_root(root: &OwnedFd, path: &str, flags: OFlags) -> Result<OwnedFd, Errno> {
    let relative = path.trim_start_matches('/');
    let relative = if relative.is_empty() { "." } else { relative };
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(
            root,
            relative,
            flags | OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            resolve_flags(),
        ) {
            Err(Errno::AGAIN) if tries < 8 => tries += 1,
            other => return other,
        }
    }
}

/// What a path names inside the root.
enum Target {
    /// `name` in the directory `parent`, not followed if a symlink.
    Entry { parent: OwnedFd, name: Vec<u8> },
    /// The directory itself (the root, or a path ending in `/` or `/.`).
    Whole(OwnedFd),
}

impl Target {
    fn stat(&self) -> Result<Stat, Errno> {
        match self {
            Target::Entry { parent, name } => {
                rustix::fs::statat(parent, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW)
            }
            Target::Whole(fd) => rustix::fs::fstat(fd),
        }
    }
}

/// A container's root for one operation; see the module doc.
struct Root {
    fd: OwnedFd,
    /// The name the client used, for messages.
    reference: String,
}

impl Root {
    fn not_found(&self, path: &str) -> FsError {
        FsError::PathNotFound {
            path: path.to_owned(),
            container: self.reference.clone(),
        }
    }

    fn errno(&self, path: &str, e: Errno) -> FsError {
        match e {
            Errno::NOENT => self.not_found(path),
            Errno::NOTDIR => FsError::NotADirectory {
                path: path.to_owned(),
            },
            Errno::LOOP => FsError::SymlinkLoop {
                path: path.to_owned(),
            },
            other => FsError::Io {
                what: "resolving",
                path: path.to_owned(),
                source: other.into(),
            },
        }
    }

    fn resolve(&self, path: &str) -> Result<Target, FsError> {
        let (clean, follow) = clean(path);
        if follow || clean == "/" {
            let fd = openat2_in_root(&self.fd, &clean, OFlags::DIRECTORY)
                .map_err(|e| self.errno(path, e))?;
            return Ok(Target::Whole(fd));
        }
        let (parent, name) = clean.rsplit_once('/').unwrap_or(("", &clean));
        let parent = openat2_in_root(&self.fd, parent, OFlags::DIRECTORY)
            .map_err(|e| self.errno(path, e))?;
        let target = Target::Entry {
            parent,
            name: name.as_bytes().to_vec(),
        };
        target.stat().map_err(|e| self.errno(path, e))?;
        Ok(target)
    }

    fn stat(&self, path: &str) -> Result<(Target, PathStat), FsError> {
        let target = self.resolve(path)?;
        let st = target.stat().map_err(|e| self.errno(path, e))?;
        let link_target = match &target {
            Target::Entry { parent, name }
                if FileType::from_raw_mode(st.st_mode) == FileType::Symlink =>
            {
                let link = rustix::fs::readlinkat(parent, name.as_slice(), Vec::new())
                    .map_err(|e| self.errno(path, e))?;
                let link = link.to_string_lossy().into_owned();
                let (clean_path, _) = clean(path);
                let dir = clean_path.rsplit_once('/').map_or("", |(d, _)| d);
                if link.starts_with('/') {
                    clean(&link).0
                } else {
                    clean(&format!("{dir}/{link}")).0
                }
            }
            _ => String::new(),
        };
        let mtime = std::time::UNIX_EPOCH
            + std::time::Duration::new(st.st_mtime.max(0) as u64, st.st_mtime_nsec as u32);
        let stat = PathStat {
            name: base_name(path),
            size: st.st_size,
            mode: go_mode(st.st_mode),
            mtime: humantime::format_rfc3339_nanos(mtime).to_string(),
            link_target,
        };
        Ok((target, stat))
    }
}

fn open_path(path: &Path) -> Result<OwnedFd, FsError> {
    rustix::fs::open(
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| FsError::Io {
        what: "opening",
        path: path.display().to_string(),
        source: e.into(),
    })
}

/// How an operation uses a container's root.
#[derive(Debug, Clone, Copy)]
struct Access {
    /// A running container's own view, with its volumes and bind mounts.
    volumes: bool,
    write: bool,
}

/// Reads through the container's own view.
const READ: Access = Access {
    volumes: true,
    write: false,
};

/// Numbers the read-only views of stopped containers.
static VIEWS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// `mounts` as a read-only view: the overlay's upper directory becomes its
/// top lower one; a bind becomes read-only.
fn read_only(mounts: &[berth_core::Mount]) -> Vec<berth_core::Mount> {
    mounts
        .iter()
        .map(|m| {
            let upper = m.options.iter().find_map(|o| o.strip_prefix("upperdir="));
            let options = m
                .options
                .iter()
                .filter(|o| !o.starts_with("upperdir=") && !o.starts_with("workdir="))
                .map(|o| match (o.strip_prefix("lowerdir="), upper) {
                    (Some(lower), Some(upper)) => format!("lowerdir={upper}:{lower}"),
                    _ if o == "rw" => "ro".to_owned(),
                    _ => o.clone(),
                })
                .collect();
            berth_core::Mount {
                options,
                ..m.clone()
            }
        })
        .collect()
}

/// Mounts `mounts` on `dir`, lets `submount` add the container's volumes
/// beneath it, takes a detached clone of that tree (`open_tree`, which
/// keeps the submounts connected, unlike a lazy unmount) and unmounts the
/// original at once: the clone's descriptor keeps it alive until it
/// closes, and nothing stays mounted.
fn mount_and_detach(
    mounts: &[berth_core::Mount],
    dir: &Path,
    submount: impl FnOnce(&OwnedFd) -> Result<(), FsError>,
) -> Result<OwnedFd, FsError> {
    std::fs::create_dir_all(dir).map_err(|e| FsError::Io {
        what: "creating",
        path: dir.display().to_string(),
        source: e,
    })?;
    berth_core::mount_all(mounts, dir).map_err(ContainerError::from)?;
    let fd = open_path(dir).and_then(|fd| submount(&fd)).and_then(|()| {
        use rustix::mount::OpenTreeFlags;
        let flags = OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::AT_RECURSIVE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC;
        rustix::mount::open_tree(rustix::fs::CWD, dir, flags).map_err(|e| FsError::Io {
            what: "cloning the mount tree of",
            path: dir.display().to_string(),
            source: e.into(),
        })
    });
    // MNT_DETACH takes the volumes mounted beneath along.
    if let Err(e) = rustix::mount::unmount(dir, rustix::mount::UnmountFlags::DETACH) {
        log::warning!("detaching {}: {e}", dir.display());
    }
    fd
}

impl ContainerStore {
    /// Runs `f` on the container's root (see the module doc). `Access`
    /// says whether the running container's own view (with its mounts)
    /// or the rootfs alone is wanted, and whether `f` writes.
    fn with_root<T>(
        &self,
        container: &Container,
        reference: &str,
        access: Access,
        f: impl FnOnce(&Root) -> Result<T, FsError>,
    ) -> Result<T, FsError> {
        let root = |fd| Root {
            fd,
            reference: reference.to_owned(),
        };
        let record = container.record();
        if record.state.status.is_running() && record.state.pid > 0 {
            let path = if access.volumes {
                PathBuf::from(format!("/proc/{}/root", record.state.pid))
            } else {
                self.rootfs_path(&container.id)
            };
            let fd = open_path(&path);
            // Checked after the open: the pid still was the container's.
            // A container that exited meanwhile is read as a stopped one.
            if container.is_running() {
                return f(&root(fd?));
            }
        }
        let mounts = self
            .images
            .snapshots
            .mounts(&container.id)
            .map_err(ContainerError::from)?;
        if !access.write {
            // A read-only overlay of the same directories (no upper, no
            // work dir) can sit beside a start: no lock needed.
            let dir = self.run_dir(&container.id).join(format!(
                "view-{}",
                VIEWS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
            let fd = mount_and_detach(&read_only(&mounts), &dir, |root| {
                if access.volumes {
                    self.mount_volumes(&record, root, false)?;
                }
                Ok(())
            });
            let _ = std::fs::remove_dir(&dir);
            return f(&root(fd?));
        }
        let _op = lock(&container.op);
        if container.is_running() {
            return Err(ContainerError::InvalidConfig(format!(
                "container {reference} started during the operation; try again"
            ))
            .into());
        }
        // A write must land before the start's mounts are made.
        self.drop_prelaunch(container);
        let rootfs = self.rootfs_path(&container.id);
        let _ = berth_core::unmount(&rootfs);
        let record = container.record();
        let fd = mount_and_detach(&mounts, &rootfs, |root| {
            self.mount_volumes(&record, root, true)
        })?;
        f(&root(fd))
    }

    /// Binds a stopped container's bind mounts and plain local volumes
    /// onto their destinations in its mounted `root` (resolved inside it;
    /// a missing destination or source is skipped), read-only unless
    /// `write` and the mount is writable. Volumes with driver options
    /// (mounted only while in use) and tmpfs mounts are left out.
    fn mount_volumes(
        &self,
        record: &super::Record,
        root: &OwnedFd,
        write: bool,
    ) -> Result<(), FsError> {
        use crate::engine::volumes::MountKind;
        use rustix::mount::MountFlags;
        let failed = |what: &'static str, path: &str, e: Errno| FsError::Io {
            what,
            path: path.to_owned(),
            source: e.into(),
        };
        for point in &record.mount_points {
            let source = match point.kind {
                MountKind::Bind => PathBuf::from(&point.source),
                MountKind::Volume => match self.volumes.get(&point.source) {
                    Ok(v) if v.options.as_ref().is_none_or(|o| o.is_empty()) => {
                        self.volumes.data_path(&point.source)
                    }
                    _ => continue,
                },
                MountKind::Tmpfs => continue,
            };
            let Ok(dest) = openat2_in_root(root, &point.destination, OFlags::empty()) else {
                continue;
            };
            if !source.exists() {
                continue;
            }
            let target = PathBuf::from(format!("/proc/self/fd/{}", dest.as_raw_fd()));
            rustix::mount::mount_bind_recursive(&source, &target)
                .map_err(|e| failed("binding for the copy", &point.destination, e))?;
            if write && point.rw {
                continue;
            }
            // Reopened, the path is the new mount's root: remount that.
            let bound = openat2_in_root(root, &point.destination, OFlags::empty())
                .map_err(|e| failed("opening", &point.destination, e))?;
            let path = PathBuf::from(format!("/proc/self/fd/{}", bound.as_raw_fd()));
            rustix::mount::mount_remount(&path, MountFlags::BIND | MountFlags::RDONLY, "")
                .map_err(|e| failed("read-only remount for the copy", &point.destination, e))?;
        }
        Ok(())
    }

    /// `PUT /containers/{id}/archive`: extracts `tar` into the directory
    /// `path`.
    fn extract(
        &self,
        container: &Container,
        reference: &str,
        path: &str,
        options: ExtractOptions,
        tar: impl io::Read,
    ) -> Result<(), FsError> {
        let readonly_rootfs = container.record().host_config.readonly_rootfs;
        let access = Access {
            volumes: true,
            write: true,
        };
        self.with_root(container, reference, access, |root| {
            let (clean_path, _) = clean(path);
            let dir = openat2_in_root(&root.fd, &clean_path, OFlags::empty())
                .map_err(|e| root.errno(path, e))?;
            let st = rustix::fs::fstat(&dir).map_err(|e| root.errno(path, e))?;
            if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                return Err(FsError::ExtractNotADirectory);
            }
            let root_st = rustix::fs::fstat(&root.fd).map_err(|e| root.errno("/", e))?;
            let on_rootfs = st.st_dev == root_st.st_dev;
            let mount_readonly = rustix::fs::fstatvfs(&dir)
                .is_ok_and(|s| s.f_flag.contains(StatVfsMountFlags::RDONLY));
            if on_rootfs && (readonly_rootfs || mount_readonly) {
                return Err(FsError::ReadOnlyRootfs);
            }
            if mount_readonly {
                return Err(FsError::ReadOnlyVolume);
            }
            let opts = ApplyOptions {
                chown: true,
                xattrs: false,
                whiteouts: false,
                owner: (!options.copy_uid_gid).then_some((0, 0)),
                no_overwrite_dir_non_dir: options.no_overwrite_dir_non_dir,
                ..ApplyOptions::default()
            };
            let dest = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
            apply_layer(tar, &dest, &opts).map_err(|source| FsError::Extract {
                path: path.to_owned(),
                source,
            })?;
            Ok(())
        })
    }
}

/// The query flags of `PUT /containers/{id}/archive`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ExtractOptions {
    pub(crate) no_overwrite_dir_non_dir: bool,
    pub(crate) copy_uid_gid: bool,
}

/// Writes the tar of `target` named `rebase` (and what is beneath it).
fn write_target(target: &Target, rebase: &str, out: impl Write) -> io::Result<()> {
    let mut tree = TreeWriter::new(out, TreeOptions::default());
    match target {
        Target::Entry { parent, name } => {
            tree.append_node(parent.as_fd(), name, rebase.as_bytes())?
        }
        Target::Whole(fd) => tree.append_node(fd.as_fd(), b".", rebase.as_bytes())?,
    }
    tree.finish()?.flush()
}

/// A tar being produced on a blocking thread: what the first step found
/// (an error there becomes the response status) and the stream.
pub(crate) struct TarStream<T> {
    pub(crate) head: T,
    pub(crate) body: mpsc::Receiver<Bytes>,
}

impl Engine {
    /// Runs `produce` on a blocking thread: it reports `head` through the
    /// oneshot, then writes the tar into the channel.
    async fn tar_stream<T: Send + 'static>(
        &self,
        what: &'static str,
        produce: impl FnOnce(oneshot::Sender<Result<T, FsError>>, ChannelWriter) + Send + 'static,
    ) -> Result<TarStream<T>, FsError> {
        let (tx, rx) = mpsc::channel(PIPE_DEPTH);
        let (head_tx, head_rx) = oneshot::channel();
        tokio::task::spawn_blocking(move || produce(head_tx, ChannelWriter::new(tx)));
        let head = head_rx.await.map_err(|_| FsError::Task(what))??;
        Ok(TarStream { head, body: rx })
    }

    /// `HEAD /containers/{id}/archive`.
    pub(crate) async fn container_stat_path(
        &self,
        reference: &str,
        path: &str,
    ) -> Result<PathStat, FsError> {
        let container = self.containers.get(reference)?;
        let (reference, path) = (reference.to_owned(), path.to_owned());
        let store = self.containers.clone();
        tokio::task::spawn_blocking(move || {
            store.with_root(&container, &reference, READ, |root| Ok(root.stat(&path)?.1))
        })
        .await
        .map_err(|_| FsError::Task("stat"))?
    }

    /// `GET /containers/{id}/archive`: the stat of `path` and its tar.
    pub(crate) async fn container_archive(
        &self,
        reference: &str,
        path: &str,
    ) -> Result<TarStream<PathStat>, FsError> {
        let container = self.containers.get(reference)?;
        let (reference, path) = (reference.to_owned(), path.to_owned());
        let store = self.containers.clone();
        self.tar_stream("archive", move |head, out| {
            let mut head = Some(head);
            let done = store.with_root(&container, &reference, READ, |root| {
                let (target, stat) = root.stat(&path)?;
                let rebase = stat.name.clone();
                if let Some(head) = head.take() {
                    let _ = head.send(Ok(stat));
                }
                write_target(&target, &rebase, out).map_err(|source| FsError::Io {
                    what: "archiving",
                    path: path.clone(),
                    source,
                })
            });
            match (done, head) {
                (Err(e), Some(head)) => {
                    let _ = head.send(Err(e));
                }
                (Err(e), None) => log::warning!("copying from container (cut short): {e}"),
                _ => {}
            }
        })
        .await
    }

    /// `PUT /containers/{id}/archive`: reads a tar from `body`.
    pub(crate) async fn container_extract(
        &self,
        reference: &str,
        path: &str,
        options: ExtractOptions,
        body: mpsc::Receiver<io::Result<Bytes>>,
    ) -> Result<(), FsError> {
        let container = self.containers.get(reference)?;
        let (reference, path) = (reference.to_owned(), path.to_owned());
        let store = self.containers.clone();
        tokio::task::spawn_blocking(move || {
            store.extract(
                &container,
                &reference,
                &path,
                options,
                ChannelReader::new(body),
            )
        })
        .await
        .map_err(|_| FsError::Task("extract"))?
    }

    /// `GET /containers/{id}/export`: the rootfs (without volumes) as a tar.
    pub(crate) async fn container_export(&self, reference: &str) -> Result<TarStream<()>, FsError> {
        let container = self.containers.get(reference)?;
        let reference = reference.to_owned();
        let store = self.containers.clone();
        self.tar_stream("export", move |head, out| {
            let mut head = Some(head);
            let export = Access {
                volumes: false,
                write: false,
            };
            let done = store.with_root(&container, &reference, export, |root| {
                let dir = open_dir(root.fd.as_fd(), b".").map_err(|source| FsError::Io {
                    what: "opening",
                    path: "/".into(),
                    source,
                })?;
                if let Some(head) = head.take() {
                    let _ = head.send(Ok(()));
                }
                let mut tree = TreeWriter::new(out, TreeOptions::default());
                tree.append_children(&dir, b"")
                    .and_then(|()| tree.finish()?.flush())
                    .map_err(|source| FsError::Io {
                        what: "exporting",
                        path: "/".into(),
                        source,
                    })
            });
            match (done, head) {
                (Err(e), Some(head)) => {
                    let _ = head.send(Err(e));
                }
                (Err(e), None) => log::warning!("exporting container (cut short): {e}"),
                _ => {}
            }
        })
        .await
    }

    /// `GET /containers/{id}/changes`.
    pub(crate) async fn container_changes(&self, reference: &str) -> Result<Vec<Change>, FsError> {
        let container = self.containers.get(reference)?;
        let store = self.containers.clone();
        tokio::task::spawn_blocking(move || {
            let snapshots = &store.images.snapshots;
            let upper = snapshots
                .upper_dir(&container.id)
                .map_err(ContainerError::from)?;
            let mounts = snapshots
                .mounts(&container.id)
                .map_err(ContainerError::from)?;
            overlay_changes(&upper, &lower_dirs(&mounts)).map_err(|source| FsError::Io {
                what: "reading changes in",
                path: upper.display().to_string(),
                source,
            })
        })
        .await
        .map_err(|_| FsError::Task("changes"))?
    }

    /// `POST /commit`: the container's writable layer on top of its image
    /// becomes a new image; a running container is paused meanwhile if
    /// `pause`. Returns the image ID.
    pub(crate) async fn container_commit(
        &self,
        reference: &str,
        request: CommitRequest,
        pause: bool,
    ) -> Result<String, FsError> {
        let container = self.containers.get(reference)?;
        let record = container.record();
        let (tagged, runtime) = self.image_commit_plan(&request, &record.config)?;
        let parent = self.image_inspect(&record.image_id).await?;
        let upper = self
            .containers
            .images
            .snapshots
            .upper_dir(&container.id)
            .map_err(ContainerError::from)?;
        let paused_here = pause && record.state.status == Status::Running;
        if paused_here {
            self.container_pause(reference, true).await?;
        }
        let config = CommitConfig {
            config: runtime,
            author: request.author.clone(),
            comment: request.comment.clone(),
            created_by: std::iter::once(record.path.clone())
                .chain(record.args.iter().cloned())
                .collect::<Vec<_>>()
                .join(" "),
            container: container.id.clone(),
        };
        let committed = self
            .image_commit(parent, tagged, config, move |out| {
                let dir = rustix::fs::open(
                    &upper,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let mut tree = TreeWriter::new(out, TreeOptions { whiteouts: true });
                tree.append_children(&dir, b"")?;
                tree.finish()?.flush()
            })
            .await;
        if paused_here && let Err(e) = self.container_pause(reference, false).await {
            log::warning!("unpausing {reference} after commit: {e}");
        }
        let id = committed?;
        self.containers
            .publish("commit", &record, &[("comment", request.comment)]);
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_clean_inside_the_root_and_keep_the_follow_hint() {
        assert_eq!(clean("../../etc/x"), ("/etc/x".to_owned(), false));
        assert_eq!(clean("/a/./b/../c/"), ("/a/c".to_owned(), true));
        assert_eq!(clean("/a/."), ("/a".to_owned(), true));
        assert_eq!(clean("/"), ("/".to_owned(), true));
        assert_eq!(base_name("/in/tree/."), ".");
        assert_eq!(base_name("/in/tree/"), "tree");
        assert_eq!(base_name("/"), ".");
    }

    #[test]
    fn read_only_views_stack_the_upper_dir_as_a_lower_one() {
        let overlay = berth_core::Mount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options: vec![
                "index=off".into(),
                "workdir=/s/3/work".into(),
                "upperdir=/s/3/fs".into(),
                "lowerdir=/s/2/fs:/s/1/fs".into(),
            ],
        };
        assert_eq!(
            read_only(&[overlay])[0].options,
            ["index=off", "lowerdir=/s/3/fs:/s/2/fs:/s/1/fs"]
        );
        let bind = berth_core::Mount {
            kind: "bind".into(),
            source: "/s/1/fs".into(),
            options: vec!["rw".into(), "rbind".into()],
        };
        assert_eq!(read_only(&[bind])[0].options, ["ro", "rbind"]);
    }

    #[test]
    fn go_modes_match_os_filemode() {
        assert_eq!(go_mode(0o040755), (1 << 31) | 0o755);
        assert_eq!(go_mode(0o100644), 0o644);
        assert_eq!(go_mode(0o120777), (1 << 27) | 0o777);
        assert_eq!(go_mode(0o104755), (1 << 23) | 0o755);
    }
}

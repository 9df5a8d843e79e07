//! A build step's view of an image's files: a writable snapshot on the
//! image's top layer, mounted on a private directory and opened, then
//! unmounted; its upper directory becomes the step's layer (as `commit`
//! writes a container's).

use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_snapshotter::Snapshotter;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use super::BuildError;
use super::context::open_in_root;
use crate::engine::containers::fstree::{TreeOptions, TreeWriter};
use crate::engine::containers::{ContainerError, unpack_layers};
use crate::engine::images::Stores;
use crate::log;

/// A mounted writable snapshot; unmounted and removed when dropped.
pub(crate) struct Rootfs {
    stores: Arc<Stores>,
    key: String,
    dir: PathBuf,
    mounted: bool,
    pub(crate) fd: Option<OwnedFd>,
}

impl Rootfs {
    /// Prepares snapshot `key` on `image`'s layers and mounts it on `dir`.
    pub(crate) fn mount(
        stores: &Arc<Stores>,
        image: &berth_core::Image,
        key: String,
        dir: PathBuf,
    ) -> Result<Rootfs, BuildError> {
        let top = unpack_layers(stores, image)?;
        stores
            .snapshots
            .prepare(&key, top.as_deref())
            .map_err(ContainerError::from)?;
        let mut rootfs = Rootfs {
            stores: stores.clone(),
            key,
            dir,
            mounted: false,
            fd: None,
        };
        std::fs::create_dir_all(&rootfs.dir).map_err(|source| BuildError::Io {
            what: "creating",
            path: rootfs.dir.display().to_string(),
            source,
        })?;
        let mounts = stores
            .snapshots
            .mounts(&rootfs.key)
            .map_err(ContainerError::from)?;
        berth_core::mount_all(&mounts, &rootfs.dir).map_err(ContainerError::from)?;
        rootfs.mounted = true;
        let fd = rustix::fs::open(
            &rootfs.dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| BuildError::Io {
            what: "opening",
            path: rootfs.dir.display().to_string(),
            source: e.into(),
        })?;
        rootfs.fd = Some(fd);
        Ok(rootfs)
    }

    pub(crate) fn root(&self) -> &OwnedFd {
        self.fd.as_ref().expect("mounted rootfs has a descriptor")
    }

    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }

    /// Unmounts and writes the snapshot's changes as a layer diff.
    pub(crate) fn write_changes(&mut self, out: &mut dyn Write) -> io::Result<()> {
        self.fd = None;
        if self.mounted {
            berth_core::unmount(&self.dir).map_err(io::Error::other)?;
            self.mounted = false;
        }
        let upper = self
            .stores
            .snapshots
            .upper_dir(&self.key)
            .map_err(io::Error::other)?;
        write_diff(&upper, out)
    }
}

impl Drop for Rootfs {
    fn drop(&mut self) {
        self.fd = None;
        if self.mounted
            && let Err(e) = berth_core::unmount(&self.dir)
        {
            log::warning!("build: unmounting {}: {e}", self.dir.display());
        }
        let _ = std::fs::remove_dir(&self.dir);
        if let Err(e) = self.stores.snapshots.remove(&self.key) {
            log::warning!("build: removing snapshot {}: {e}", self.key);
        }
    }
}

/// An overlay upper directory as an OCI layer diff.
pub(crate) fn write_diff(upper: &Path, out: &mut dyn Write) -> io::Result<()> {
    let dir = rustix::fs::open(
        upper,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut tree = TreeWriter::new(out, TreeOptions { whiteouts: true });
    tree.append_children(&dir, b"")?;
    tree.finish()?.flush()
}

/// `mkdir -p` of `path` beneath `root`; new directories get mode 0755 and
/// `owner`. Returns the directory, opened, and whether anything was made.
pub(crate) fn make_dirs(
    root: &OwnedFd,
    path: &str,
    owner: (u32, u32),
) -> Result<(OwnedFd, bool), Errno> {
    let mut made = false;
    let mut current = String::new();
    for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        let parent = open_in_root(root, &current, OFlags::PATH | OFlags::DIRECTORY)?;
        current.push('/');
        current.push_str(part);
        match open_in_root(root, &current, OFlags::PATH | OFlags::DIRECTORY) {
            Ok(_) => continue,
            Err(Errno::NOENT) => {}
            Err(e) => return Err(e),
        }
        rustix::fs::mkdirat(parent.as_fd(), part, Mode::from_raw_mode(0o755))?;
        let dir = open_in_root(root, &current, OFlags::RDONLY | OFlags::DIRECTORY)?;
        rustix::fs::fchown(
            &dir,
            Some(rustix::fs::Uid::from_raw(owner.0)),
            Some(rustix::fs::Gid::from_raw(owner.1)),
        )?;
        rustix::fs::fchmod(&dir, Mode::from_raw_mode(0o755))?;
        made = true;
    }
    let dir = open_in_root(root, &current, OFlags::RDONLY | OFlags::DIRECTORY)?;
    Ok((dir, made))
}

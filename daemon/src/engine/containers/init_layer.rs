//! The init layer (dockerd's `-init` layer, made once per image here and
//! shared): a committed snapshot `init/<chain-id>` on the image's top
//! layer holding the mount points the runtime would otherwise create in
//! every container's writable layer (`/proc`, `/sys`, `/dev`, the network
//! files in `/etc`). Containers sit on it, so a start creates no files
//! and copies nothing up, and `docker diff` and `commit` (the upper
//! directory only) leave these files out, as dockerd's do.
//!
//! Made on first use, under a lock, through an active snapshot
//! `init/<chain-id>-new` mounted for the time of the writes; a crash leaves
//! only that active snapshot (and maybe its mount), removed at the next
//! start. The layer GC
//! ([`Stores::remove_unused_layers`](crate::engine::images::Stores))
//! removes an init layer with its image's top layer.

use std::os::fd::OwnedFd;

use berth_core::{mount_all, unmount};
use berth_snapshotter::{SnapshotError, Snapshotter};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::{ContainerError, ContainerStore, io_err, lock, random_id};
use crate::log;

/// Keys of init layers start with this.
pub(crate) const INIT_PREFIX: &str = "init/";
/// Where one is mounted while it is made: `<exec_root>/containers/.init-*`.
const MOUNT_DIR_PREFIX: &str = ".init-";

/// Directories the default spec mounts on, as dockerd's init layer has
/// them (`/dev/pts` and `/dev/shm` land in `/dev`'s tmpfs, but an image
/// run with its own `/dev` mount finds them too).
const DIRS: [&str; 3] = ["proc", "sys", "dev"];
const DEV_DIRS: [&str; 2] = ["pts", "shm"];
/// Files the network files are bound on.
const ETC_FILES: [&str; 3] = ["hosts", "hostname", "resolv.conf"];

/// The init layer's key for the image whose top layer is `chain_id`.
pub(crate) fn init_key(chain_id: &str) -> String {
    format!("{INIT_PREFIX}{chain_id}")
}

/// The key of the active snapshot an init layer is made in.
fn making_key(chain_id: &str) -> String {
    format!("{}-new", init_key(chain_id))
}

impl ContainerStore {
    /// The init layer on `top` (an image's top chain ID), made if missing.
    pub(super) fn init_layer(&self, top: &str) -> Result<String, ContainerError> {
        let key = init_key(top);
        let snapshots = &*self.images.snapshots;
        if snapshots.is_committed(&key) {
            return Ok(key);
        }
        let _making = lock(&self.init_layers);
        if snapshots.is_committed(&key) {
            return Ok(key);
        }
        let making = making_key(top);
        match snapshots.remove(&making) {
            Ok(()) | Err(SnapshotError::NotFound { .. }) => {}
            Err(err) => return Err(err.into()),
        }
        let mounts = snapshots.prepare(&making, Some(top))?;
        let made = self
            .fill_init_layer(&mounts)
            .and_then(|()| Ok(snapshots.commit(&key, &making)?));
        if let Err(err) = made {
            let _ = snapshots.remove(&making);
            return Err(err);
        }
        Ok(key)
    }

    /// Unmounts and removes the mount directories of init layers a crash
    /// cut short (at start, before their snapshots are removed).
    pub(super) fn remove_stray_init_mounts(&self) {
        let Ok(entries) = std::fs::read_dir(&self.run_root) else {
            return;
        };
        for entry in entries.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(MOUNT_DIR_PREFIX)
            {
                let dir = entry.path();
                let _ = unmount(&dir);
                if let Err(err) = std::fs::remove_dir(&dir) {
                    log::warning!("removing {}: {err}", dir.display());
                }
            }
        }
    }

    /// Mounts the new init layer on a private directory and makes the
    /// mount points the image lacks.
    fn fill_init_layer(&self, mounts: &[berth_core::Mount]) -> Result<(), ContainerError> {
        let dir = self
            .run_root
            .join(format!("{MOUNT_DIR_PREFIX}{}", &random_id()?[..16]));
        std::fs::create_dir(&dir).map_err(io_err("creating directory", &dir))?;
        let made = mount_all(mounts, &dir)
            .map_err(ContainerError::from)
            .and_then(|()| {
                let filled = rustix::fs::open(
                    &dir,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .and_then(|root| make_mount_points(&root))
                .map_err(|e| ContainerError::Io {
                    what: "making mount points in",
                    path: dir.clone(),
                    source: e.into(),
                });
                let unmounted = unmount(&dir);
                filled?;
                Ok(unmounted?)
            });
        let _ = std::fs::remove_dir(&dir);
        made
    }
}

/// Makes the init layer's directories and empty files under `root` where
/// the image has nothing; whatever the image has there (a symlink, a file
/// where a directory goes) is left to the runtime, as before.
fn make_mount_points(root: &OwnedFd) -> Result<(), Errno> {
    for name in DIRS {
        ensure_dir(root, name)?;
    }
    if let Some(dev) = open_dir(root, "dev")? {
        for name in DEV_DIRS {
            ensure_dir(&dev, name)?;
        }
    }
    ensure_dir(root, "etc")?;
    if let Some(etc) = open_dir(root, "etc")? {
        for name in ETC_FILES {
            if file_type(&etc, name)?.is_none() {
                let file = rustix::fs::openat(
                    &etc,
                    name,
                    OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::WRONLY
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o644),
                )?;
                // Whatever berthd's umask.
                rustix::fs::fchmod(&file, Mode::from_raw_mode(0o644))?;
            }
        }
    }
    Ok(())
}

/// The type of `name` in `dir` (not following a symlink), `None` if absent.
fn file_type(dir: &OwnedFd, name: &str) -> Result<Option<FileType>, Errno> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(Some(FileType::from_raw_mode(stat.st_mode))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

fn ensure_dir(dir: &OwnedFd, name: &str) -> Result<(), Errno> {
    if file_type(dir, name)?.is_none() {
        rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o755))?;
        // Whatever berthd's umask (`/etc` stays visible).
        rustix::fs::chmodat(dir, name, Mode::from_raw_mode(0o755), AtFlags::empty())?;
    }
    Ok(())
}

/// `name` in `dir` opened if it is a directory (not a symlink to one).
fn open_dir(dir: &OwnedFd, name: &str) -> Result<Option<OwnedFd>, Errno> {
    match rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::NOTDIR | Errno::LOOP | Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(path: &std::path::Path) -> OwnedFd {
        rustix::fs::open(path, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap()
    }

    #[test]
    fn makes_what_is_missing_and_leaves_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/hosts"), "mine").unwrap();
        std::os::unix::fs::symlink("/nowhere", root.join("etc/resolv.conf")).unwrap();
        std::fs::create_dir(root.join("elsewhere")).unwrap();
        std::os::unix::fs::symlink("elsewhere", root.join("dev")).unwrap();
        make_mount_points(&open(root)).unwrap();
        assert!(root.join("proc").is_dir() && root.join("sys").is_dir());
        assert_eq!(std::fs::read(root.join("etc/hosts")).unwrap(), b"mine");
        assert_eq!(std::fs::read(root.join("etc/hostname")).unwrap(), b"");
        assert!(
            root.join("etc/resolv.conf")
                .symlink_metadata()
                .unwrap()
                .is_symlink()
        );
        // Not through the image's symlink.
        assert!(root.join("dev").symlink_metadata().unwrap().is_symlink());
        assert!(!root.join("elsewhere/pts").exists());
    }

    #[test]
    fn an_image_without_etc_gets_one() {
        let dir = tempfile::tempdir().unwrap();
        make_mount_points(&open(dir.path())).unwrap();
        for name in ["proc", "sys", "dev", "dev/pts", "dev/shm", "etc"] {
            assert!(dir.path().join(name).is_dir(), "{name}");
        }
        for name in ETC_FILES {
            assert!(dir.path().join("etc").join(name).is_file(), "{name}");
        }
    }

    #[test]
    fn a_file_where_etc_goes_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("etc"), "").unwrap();
        make_mount_points(&open(dir.path())).unwrap();
        assert!(dir.path().join("etc").is_file());
    }
}

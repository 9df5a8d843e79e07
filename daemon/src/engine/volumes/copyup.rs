//! Copy-up: a volume that is empty when a container starts is filled with
//! what the image has at the mount path (moby's `copyExistingContents`):
//! files, directories, symlinks, hard links, device nodes and fifos, with
//! owners, modes, extended attributes and timestamps; then the volume's
//! root takes the owner and mode of the image's directory.
//!
//! The source is opened beneath the container's rootfs with
//! `openat2(RESOLVE_IN_ROOT)`, so a symlink in the image cannot point the
//! copy at the host's files; below it nothing is followed.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps};

/// Opens `path` (absolute inside the container) beneath `rootfs` as an
/// `O_PATH` directory; `None` if the image has nothing (or no directory) there.
pub(crate) fn open_in_root(rootfs: &Path, path: &str) -> io::Result<Option<OwnedFd>> {
    let root = rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let relative = path.trim_start_matches('/');
    let relative = if relative.is_empty() { "." } else { relative };
    match rustix::fs::openat2(
        root.as_fd(),
        relative,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => Ok(Some(fd)),
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Copies `source` into `volume` if `volume` is empty; gives `volume` the
/// owner and mode of `source`.
pub(crate) fn copy_if_empty(source: &Path, volume: &Path) -> io::Result<()> {
    if std::fs::read_dir(volume)?.next().is_some() {
        return Ok(());
    }
    let mut links = HashMap::new();
    copy_dir_contents(source, volume, &mut links)?;
    let meta = std::fs::metadata(source)?;
    std::os::unix::fs::chown(volume, Some(meta.uid()), Some(meta.gid()))?;
    std::fs::set_permissions(
        volume,
        std::fs::Permissions::from_mode(meta.mode() & 0o7777),
    )?;
    copy_xattrs(source, volume)?;
    Ok(())
}

fn copy_dir_contents(
    source: &Path,
    target: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> io::Result<()> {
    for entry in std::fs::read_dir(source)? {
        let entry = entry?;
        let from = entry.path();
        let to = target.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&from)?;
        let file_type = meta.file_type();
        if !file_type.is_dir() && meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = links.get(&key) {
                std::fs::hard_link(first, &to)?;
                continue;
            }
            links.insert(key, to.clone());
        }
        if file_type.is_dir() {
            std::fs::create_dir(&to)?;
            copy_dir_contents(&from, &to, links)?;
        } else if file_type.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
        } else if file_type.is_file() {
            std::fs::copy(&from, &to)?;
        } else {
            let kind = FileType::from_raw_mode(meta.mode());
            if kind == FileType::Socket {
                continue; // a socket has no meaning without its listener
            }
            rustix::fs::mknodat(
                CWD,
                &to,
                kind,
                Mode::from_raw_mode(meta.mode() & 0o7777),
                meta.rdev(),
            )?;
        }
        copy_metadata(&from, &to, &meta)?;
    }
    Ok(())
}

/// Owner, mode (after the owner: chown clears set-id bits), xattrs, times.
fn copy_metadata(from: &Path, to: &Path, meta: &std::fs::Metadata) -> io::Result<()> {
    std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid()))?;
    if !meta.file_type().is_symlink() {
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    copy_xattrs(from, to)?;
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: meta.atime(),
            tv_nsec: meta.atime_nsec() as _,
        },
        last_modification: Timespec {
            tv_sec: meta.mtime(),
            tv_nsec: meta.mtime_nsec() as _,
        },
    };
    rustix::fs::utimensat(CWD, to, &times, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// Copies every extended attribute the target filesystem takes; ones it
/// refuses (no support, or `user.*` on a symlink) are skipped.
fn copy_xattrs(from: &Path, to: &Path) -> io::Result<()> {
    let mut names = vec![0u8; 4096];
    let len = match rustix::fs::llistxattr(from, &mut names) {
        Ok(len) => len,
        Err(rustix::io::Errno::NOTSUP) => return Ok(()),
        Err(rustix::io::Errno::RANGE) => {
            names = vec![0u8; 65536];
            rustix::fs::llistxattr(from, &mut names)?
        }
        Err(e) => return Err(e.into()),
    };
    for name in names[..len].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = OsStr::from_bytes(name);
        let mut value = vec![0u8; 65536];
        let size = match rustix::fs::lgetxattr(from, name, &mut value) {
            Ok(size) => size,
            Err(rustix::io::Errno::NODATA) => continue,
            Err(e) => return Err(e.into()),
        };
        match rustix::fs::lsetxattr(to, name, &value[..size], rustix::fs::XattrFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOTSUP | rustix::io::Errno::PERM) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_tree_with_links_modes_and_owners_only_into_empty() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/file"), b"data").unwrap();
        std::fs::set_permissions(src.join("sub/file"), std::fs::Permissions::from_mode(0o640))
            .unwrap();
        std::fs::hard_link(src.join("sub/file"), src.join("hard")).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", src.join("link")).unwrap();
        std::os::unix::fs::chown(src.join("sub"), Some(1234), Some(5678)).unwrap();
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let dst = dir.path().join("dst");
        std::fs::create_dir(&dst).unwrap();

        copy_if_empty(&src, &dst).unwrap();
        assert_eq!(std::fs::read(dst.join("sub/file")).unwrap(), b"data");
        let file = std::fs::metadata(dst.join("sub/file")).unwrap();
        assert_eq!(file.mode() & 0o7777, 0o640);
        assert_eq!(
            file.ino(),
            std::fs::metadata(dst.join("hard")).unwrap().ino()
        );
        assert_eq!(
            std::fs::read_link(dst.join("link")).unwrap(),
            Path::new("/etc/shadow")
        );
        let sub = std::fs::metadata(dst.join("sub")).unwrap();
        assert_eq!((sub.uid(), sub.gid()), (1234, 5678));
        assert_eq!(std::fs::metadata(&dst).unwrap().mode() & 0o7777, 0o1777);

        // Not empty any more: a second copy leaves it alone.
        std::fs::remove_file(dst.join("hard")).unwrap();
        copy_if_empty(&src, &dst).unwrap();
        assert!(!dst.join("hard").exists());
    }

    #[test]
    fn the_source_resolves_inside_the_rootfs() {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("real")).unwrap();
        std::os::unix::fs::symlink("/real", rootfs.join("abs")).unwrap();
        std::os::unix::fs::symlink("/", rootfs.join("escape")).unwrap();
        assert!(open_in_root(&rootfs, "/abs").unwrap().is_some());
        assert!(open_in_root(&rootfs, "/missing").unwrap().is_none());
        // `/escape/real` is the rootfs's `/real`, not the host's.
        assert!(open_in_root(&rootfs, "/escape/real").unwrap().is_some());
        assert!(open_in_root(&rootfs, "/escape/tmp").unwrap().is_none());
    }
}

//! Operations relative to a directory descriptor that never follow a
//! symlink in the last component and never resolve outside the root.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Opens the directory `path` beneath `root`, never leaving it.
pub(super) fn openat2_beneath(root: &OwnedFd, path: &[u8]) -> Result<OwnedFd, Errno> {
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(
            root,
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        ) {
            // A concurrent rename anywhere on the system; try again.
            Err(Errno::AGAIN) if tries < 8 => tries += 1,
            r => return r,
        }
    }
}

/// Runs `make` (which creates `name` in `dir`); if something already exists
/// there, removes it (recursively for a directory, never following
/// symlinks), flags the parent cache stale and runs `make` again.
pub(super) fn create(
    dir: BorrowedFd<'_>,
    name: &[u8],
    stale: &mut bool,
    mut make: impl FnMut(BorrowedFd<'_>) -> Result<(), Errno>,
) -> Result<(), Errno> {
    match make(dir) {
        Err(Errno::EXIST) => {
            remove(dir, name)?;
            *stale = true;
            make(dir)
        }
        r => r,
    }
}

pub(super) fn is_dir_nofollow(dir: BorrowedFd<'_>, name: &[u8]) -> bool {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
}

/// Removes `name` in `dir`, recursively if it is a directory.
pub(super) fn remove(dir: BorrowedFd<'_>, name: &[u8]) -> Result<(), Errno> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Err(Errno::ISDIR | Errno::PERM) => remove_dir_all(dir, name),
        r => r,
    }
}

pub(super) fn remove_dir_all(dir: BorrowedFd<'_>, name: &[u8]) -> Result<(), Errno> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut entries = Dir::read_from(&fd)?;
    while let Some(entry) = entries.read() {
        let entry = entry?;
        let child = entry.file_name().to_bytes();
        if child == b"." || child == b".." {
            continue;
        }
        if entry.file_type() == FileType::Directory {
            remove_dir_all(fd.as_fd(), child)?;
        } else {
            remove(fd.as_fd(), child)?;
        }
    }
    rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)
}

//! A container's files as a tar stream, walked by descriptor.
//!
//! Every step opens the next name relative to an open directory with
//! `O_NOFOLLOW` (`statat(AT_SYMLINK_NOFOLLOW)`, `readlinkat`), so a running
//! container that swaps a directory for a symlink mid-walk cannot make the
//! daemon read a host file. Names are written byte for byte (GNU long-name
//! entries past 100 bytes), hard links within the stream become link
//! entries, and a file that changes size while it is read is cut or padded
//! to the size in its header so the stream stays a valid tar. With
//! `whiteouts`, overlayfs' own markers (0:0 character devices, the opaque
//! xattr) are written as OCI `.wh.` entries: that is a layer diff.
//!
//! Extended attributes of files and directories go into PAX
//! `SCHILY.xattr.*` records (overlayfs' own `trusted.overlay.*` never);
//! sockets are not written (as with tar and moby).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, Stat};
use tar::{EntryType, Header};

/// What to write besides the plain files.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TreeOptions {
    /// Translate overlayfs whiteouts into OCI whiteout entries.
    pub(crate) whiteouts: bool,
}

/// Writes entries into `tar`, remembering hard links across calls.
pub(crate) struct TreeWriter<W: Write> {
    tar: tar::Builder<W>,
    options: TreeOptions,
    links: HashMap<(u64, u64), Vec<u8>>,
}

fn errno(e: rustix::io::Errno) -> io::Error {
    e.into()
}

pub(crate) fn open_dir(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno)
}

fn join(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    if prefix.is_empty() {
        return name.to_vec();
    }
    let mut out = prefix.to_vec();
    if !out.ends_with(b"/") {
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

impl<W: Write> TreeWriter<W> {
    pub(crate) fn new(out: W, options: TreeOptions) -> Self {
        let mut tar = tar::Builder::new(out);
        tar.mode(tar::HeaderMode::Complete);
        TreeWriter {
            tar,
            options,
            links: HashMap::new(),
        }
    }

    /// Ends the archive and returns the writer.
    pub(crate) fn finish(self) -> io::Result<W> {
        self.tar.into_inner()
    }

    /// Writes the node `name` in `dir` as `tar_name` (and, for a
    /// directory, everything beneath it).
    pub(crate) fn append_node(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        tar_name: &[u8],
    ) -> io::Result<()> {
        let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).map_err(errno)?;
        let file_type = FileType::from_raw_mode(st.st_mode);
        let mut header = base_header(&st);
        match file_type {
            FileType::Directory => {
                let fd = open_dir(dir, name)?;
                self.dir(&fd, &st, tar_name)
            }
            FileType::RegularFile => {
                let key = (st.st_dev, st.st_ino);
                if st.st_nlink > 1 {
                    if let Some(first) = self.links.get(&key).cloned() {
                        header.set_entry_type(EntryType::Link);
                        header.set_size(0);
                        return self.write(header, tar_name, Some(&first), io::empty());
                    }
                    self.links.insert(key, tar_name.to_vec());
                }
                // NONBLOCK: a fifo swapped in since the stat must not
                // block the open; it is then skipped.
                let fd = rustix::fs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(errno)?;
                let now = rustix::fs::fstat(&fd).map_err(errno)?;
                if FileType::from_raw_mode(now.st_mode) != FileType::RegularFile {
                    return Ok(());
                }
                let xattrs = read_xattrs(fd.as_fd());
                self.pax(tar_name, &xattrs)?;
                let file = File::from(fd);
                let size = file.metadata()?.len();
                header.set_entry_type(EntryType::Regular);
                header.set_size(size);
                // Exactly `size` bytes, whatever the file does meanwhile.
                let data = file.take(size).chain(io::repeat(0)).take(size);
                self.write(header, tar_name, None, data)
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(dir, name, Vec::new()).map_err(errno)?;
                header.set_entry_type(EntryType::Symlink);
                header.set_size(0);
                self.write(header, tar_name, Some(target.as_bytes()), io::empty())
            }
            FileType::CharacterDevice | FileType::BlockDevice => {
                let (major, minor) = (rustix::fs::major(st.st_rdev), rustix::fs::minor(st.st_rdev));
                if self.options.whiteouts
                    && file_type == FileType::CharacterDevice
                    && st.st_rdev == 0
                {
                    return self.whiteout(tar_name, &st);
                }
                header.set_entry_type(if file_type == FileType::CharacterDevice {
                    EntryType::Char
                } else {
                    EntryType::Block
                });
                header.set_device_major(major)?;
                header.set_device_minor(minor)?;
                header.set_size(0);
                self.write(header, tar_name, None, io::empty())
            }
            FileType::Fifo => {
                header.set_entry_type(EntryType::Fifo);
                header.set_size(0);
                self.write(header, tar_name, None, io::empty())
            }
            // Sockets cannot be archived (as with tar and moby).
            _ => Ok(()),
        }
    }

    /// Everything beneath the open directory `dir`, named under `prefix`
    /// (empty: at the top of the archive).
    pub(crate) fn append_children(&mut self, dir: &OwnedFd, prefix: &[u8]) -> io::Result<()> {
        let mut names = Vec::new();
        let mut entries = Dir::read_from(dir).map_err(errno)?;
        while let Some(entry) = entries.read() {
            let entry = entry.map_err(errno)?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(name.to_vec());
            }
        }
        names.sort();
        for name in names {
            self.append_node(dir.as_fd(), &name, &join(prefix, &name))?;
        }
        Ok(())
    }

    fn dir(&mut self, fd: &OwnedFd, st: &Stat, tar_name: &[u8]) -> io::Result<()> {
        let mut header = base_header(st);
        header.set_entry_type(EntryType::Directory);
        header.set_size(0);
        let mut name = tar_name.to_vec();
        if !name.ends_with(b"/") {
            name.push(b'/');
        }
        self.pax(&name, &read_xattrs(fd.as_fd()))?;
        self.write(header, &name, None, io::empty())?;
        if self.options.whiteouts {
            let mut value = [0u8; 4];
            let opaque = rustix::fs::fgetxattr(fd, "trusted.overlay.opaque", &mut value)
                .is_ok_and(|n| &value[..n] == b"y");
            if opaque {
                self.marker(&join(tar_name, b".wh..wh..opq"), st)?;
            }
        }
        self.append_children(fd, tar_name)
    }

    /// `.wh.<name>` for the 0:0 device overlayfs leaves for a deletion.
    fn whiteout(&mut self, tar_name: &[u8], st: &Stat) -> io::Result<()> {
        let (parent, name) = match tar_name.iter().rposition(|b| *b == b'/') {
            Some(i) => (&tar_name[..=i], &tar_name[i + 1..]),
            None => (&b""[..], tar_name),
        };
        let mut marker = parent.to_vec();
        marker.extend_from_slice(b".wh.");
        marker.extend_from_slice(name);
        self.marker(&marker, st)
    }

    fn marker(&mut self, tar_name: &[u8], st: &Stat) -> io::Result<()> {
        let mut header = base_header(st);
        header.set_entry_type(EntryType::Regular);
        header.set_mode(0o600);
        header.set_size(0);
        self.write(header, tar_name, None, io::empty())
    }

    /// Writes `header` under `name` (and `link`), with GNU long-name
    /// entries for what does not fit the header's 100 bytes.
    fn write(
        &mut self,
        mut header: Header,
        name: &[u8],
        link: Option<&[u8]>,
        data: impl Read,
    ) -> io::Result<()> {
        if let Some(link) = link {
            if link.len() > 100 {
                self.long(EntryType::GNULongLink, link)?;
            }
            copy_truncated(&mut header.as_old_mut().linkname, link);
        }
        if name.len() > 100 {
            self.long(EntryType::GNULongName, name)?;
        }
        copy_truncated(&mut header.as_old_mut().name, name);
        header.set_cksum();
        self.tar.append(&header, data)
    }

    /// A PAX header carrying `xattrs` for the entry that follows.
    fn pax(&mut self, tar_name: &[u8], xattrs: &[(Vec<u8>, Vec<u8>)]) -> io::Result<()> {
        if xattrs.is_empty() {
            return Ok(());
        }
        let mut data = Vec::new();
        for (key, value) in xattrs {
            // "<len> SCHILY.xattr.<key>=<value>\n", where len counts itself.
            let body = 1 + "SCHILY.xattr.".len() + key.len() + 1 + value.len() + 1;
            let mut len = body + 1;
            while body + len.to_string().len() != len {
                len = body + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} SCHILY.xattr.").as_bytes());
            data.extend_from_slice(key);
            data.push(b'=');
            data.extend_from_slice(value);
            data.push(b'\n');
        }
        let mut header = Header::new_gnu();
        let base = tar_name
            .rsplit(|b| *b == b'/')
            .find(|p| !p.is_empty())
            .unwrap_or(b"x");
        copy_truncated(
            &mut header.as_old_mut().name,
            &[b"PaxHeaders/", base].concat(),
        );
        header.set_mode(0o644);
        header.set_entry_type(EntryType::XHeader);
        header.set_size(data.len() as u64);
        header.set_cksum();
        self.tar.append(&header, &data[..])
    }

    fn long(&mut self, kind: EntryType, value: &[u8]) -> io::Result<()> {
        let mut header = Header::new_gnu();
        copy_truncated(&mut header.as_old_mut().name, b"././@LongLink");
        header.set_mode(0o644);
        header.set_entry_type(kind);
        let mut data = value.to_vec();
        data.push(0);
        header.set_size(data.len() as u64);
        header.set_cksum();
        self.tar.append(&header, &data[..])
    }
}

/// The extended attributes of an open file, but overlayfs' own.
fn read_xattrs(fd: BorrowedFd<'_>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut list = vec![0u8; 64 << 10];
    let Ok(len) = rustix::fs::flistxattr(fd, &mut list[..]) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut value = vec![0u8; 64 << 10];
    for name in list[..len].split(|b| *b == 0) {
        if name.is_empty() || name.starts_with(b"trusted.overlay.") {
            continue;
        }
        if let Ok(n) = rustix::fs::fgetxattr(fd, name, &mut value[..]) {
            out.push((name.to_vec(), value[..n].to_vec()));
        }
    }
    out
}

fn copy_truncated(slot: &mut [u8], value: &[u8]) {
    slot.fill(0);
    let n = value.len().min(slot.len());
    slot[..n].copy_from_slice(&value[..n]);
}

fn base_header(st: &Stat) -> Header {
    let mut header = Header::new_gnu();
    header.set_mode(st.st_mode & 0o7777);
    header.set_uid(u64::from(st.st_uid));
    header.set_gid(u64::from(st.st_gid));
    header.set_mtime(st.st_mtime.max(0) as u64);
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trees_keep_names_links_xattrs_and_whiteouts() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let long = "d".repeat(120);
        std::fs::create_dir_all(root.join("a").join(&long)).unwrap();
        std::fs::write(root.join("a/file"), "data").unwrap();
        std::fs::hard_link(root.join("a/file"), root.join("a/link")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("a/sym")).unwrap();
        let xattr_set = rustix::fs::setxattr(
            root.join("a/file"),
            "user.berth",
            b"v1",
            rustix::fs::XattrFlags::empty(),
        )
        .is_ok();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join("gone"),
            FileType::CharacterDevice,
            Mode::empty(),
            0,
        )
        .unwrap();
        let fd = open_dir(rustix::fs::CWD, root.as_os_str().as_encoded_bytes()).unwrap();
        let mut tree = TreeWriter::new(Vec::new(), TreeOptions { whiteouts: true });
        tree.append_children(&fd, b"").unwrap();
        let bytes = tree.finish().unwrap();
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let kind = entry.header().entry_type();
            let link = entry
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned());
            let xattr = entry
                .pax_extensions()
                .unwrap()
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .find(|e| e.key() == Ok("SCHILY.xattr.user.berth"))
                .map(|e| e.value_bytes().to_vec());
            seen.push((name, kind, link, xattr));
        }
        let find = |n: &str| {
            seen.iter()
                .find(|s| s.0 == n)
                .unwrap_or_else(|| panic!("{n} in {seen:?}"))
        };
        assert_eq!(find("a/").1, EntryType::Directory);
        assert_eq!(find(&format!("a/{long}/")).1, EntryType::Directory);
        assert_eq!(find("a/file").1, EntryType::Regular);
        if xattr_set {
            assert_eq!(find("a/file").3.as_deref(), Some(&b"v1"[..]));
        }
        assert_eq!(find("a/link").1, EntryType::Link);
        assert_eq!(find("a/link").2.as_deref(), Some("a/file"));
        assert_eq!(find("a/sym").2.as_deref(), Some("/etc/passwd"));
        assert_eq!(find(".wh.gone").1, EntryType::Regular);
    }
}

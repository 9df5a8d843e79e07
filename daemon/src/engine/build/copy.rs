//! `COPY` and `ADD` inside a step's mounted snapshot: sources resolved
//! beneath the context (or another stage's files), written as a tar and
//! extracted with the snapshotter's applier beneath the destination.

use std::io::{Read, Seek};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use berth_core::{Digest, Digester};
use berth_snapshotter::apply::{ApplyOptions, apply_layer};
use berth_snapshotter::decompress::{Compression, decoder};
use rustix::fs::{FileType, OFlags};
use rustix::io::Errno;

use super::BuildError;
use super::context::{escapes, glob, has_wildcards, open_in_root};
use super::rootfs::{Rootfs, make_dirs};
use super::steps::{base_name, io_err, parent_of};

/// The sources of a `COPY`/`ADD` beneath `root`: refused when they climb
/// above it, wildcards in the last component expanded (sorted); also
/// whether a wildcard was used.
pub(crate) fn resolve_sources(
    root: &OwnedFd,
    keyword: &str,
    sources: &[String],
) -> Result<(Vec<String>, bool), BuildError> {
    let mut resolved = Vec::new();
    let mut wildcard = false;
    for source in sources {
        if escapes(source) {
            return Err(BuildError::OutsideContext(source.clone()));
        }
        let last = base_name(source);
        if has_wildcards(&last) {
            wildcard = true;
            let parent = parent_of(source);
            let dir = open_in_root(root, &parent, OFlags::RDONLY | OFlags::DIRECTORY)
                .map_err(|e| not_found(keyword, source, e))?;
            let mut names: Vec<String> = rustix::fs::Dir::read_from(&dir)
                .map_err(|e| not_found(keyword, source, e))?
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "." && n != ".." && glob(&last, n))
                .collect();
            names.sort();
            resolved.extend(names.into_iter().map(|n| format!("{parent}/{n}")));
        } else {
            resolved.push(source.clone());
        }
    }
    Ok((resolved, wildcard))
}

pub(crate) fn not_found(keyword: &str, source: &str, e: Errno) -> BuildError {
    BuildError::NotFound(format!(
        "{keyword} failed: file not found in build context or excluded by .dockerignore: stat {source}: {}",
        if e == Errno::NOENT {
            "file does not exist".to_owned()
        } else {
            e.to_string()
        }
    ))
}

/// The work of one `COPY`/`ADD` inside the mounted snapshot.
pub(crate) struct Copier<'a> {
    pub(crate) keyword: &'a str,
    pub(crate) source_root: &'a OwnedFd,
    pub(crate) rootfs: &'a Rootfs,
    pub(crate) owner: (u32, u32),
    pub(crate) is_add: bool,
    /// A temporary file for each source's tar.
    pub(crate) scratch: PathBuf,
}

impl Copier<'_> {
    /// Copies every source; returns the digest of what was copied and
    /// moby's kind word for the history (`file`, `dir`, `multi`).
    pub(crate) fn copy_all(
        &self,
        sources: &[String],
        dest: &str,
        dest_dir_form: bool,
    ) -> Result<(Digest, &'static str), BuildError> {
        let (resolved, wildcard) = resolve_sources(self.source_root, self.keyword, sources)?;
        if resolved.is_empty() {
            return Err(BuildError::NotFound(format!(
                "{} failed: no source files were specified",
                self.keyword
            )));
        }
        let multiple = resolved.len() > 1 || wildcard;
        if multiple && !dest_dir_form {
            return Err(BuildError::Invalid(format!(
                "When using {} with more than one source file, the destination must be a directory and end with a /",
                self.keyword
            )));
        }
        let mut digester = Digester::new();
        let mut kind = "multi";
        for source in &resolved {
            let fd = open_in_root(self.source_root, source, OFlags::RDONLY)
                .map_err(|e| self.not_found(source, e))?;
            let st = rustix::fs::fstat(&fd).map_err(|e| self.not_found(source, e))?;
            let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
            let mut tar = std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .read(true)
                .write(true)
                .open(&self.scratch)
                .map_err(io_err("creating", "a copy buffer"))?;
            let dest_dir;
            let mut extract = false;
            if is_dir {
                kind = if multiple { "multi" } else { "dir" };
                dest_dir = dest.to_owned();
                let mut tree = crate::engine::containers::fstree::TreeWriter::new(
                    &mut tar,
                    crate::engine::containers::fstree::TreeOptions::default(),
                );
                tree.append_children(&fd, b"")
                    .and_then(|()| tree.finish().map(drop))
                    .map_err(io_err("reading", source))?;
            } else if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile {
                kind = if multiple { "multi" } else { "file" };
                let mut file = std::fs::File::from(fd);
                if self.is_add && is_archive(&mut file) {
                    std::io::copy(&mut file, &mut tar).map_err(io_err("reading", source))?;
                    dest_dir = dest.to_owned();
                    extract = true;
                } else {
                    let into_dir = dest_dir_form || multiple || self.is_dir(dest);
                    let (dir, name) = if into_dir {
                        (dest.to_owned(), base_name(source))
                    } else {
                        (parent_of(dest), base_name(dest))
                    };
                    dest_dir = dir;
                    let mut header = tar::Header::new_gnu();
                    header.set_size(st.st_size as u64);
                    header.set_mode(st.st_mode & 0o7777);
                    header.set_mtime(st.st_mtime.max(0) as u64);
                    header.set_uid(0);
                    header.set_gid(0);
                    header.set_entry_type(tar::EntryType::Regular);
                    let mut builder = tar::Builder::new(&mut tar);
                    builder
                        .append_data(&mut header, &name, &mut file)
                        .and_then(|()| builder.finish())
                        .map_err(io_err("reading", source))?;
                }
            } else {
                return Err(BuildError::Invalid(format!(
                    "{} {source}: not a regular file or directory",
                    self.keyword
                )));
            }
            // Hashed in chunks, then applied from the file: a large
            // source is never held in memory.
            tar.rewind().map_err(io_err("reading", "a copy buffer"))?;
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let n = tar
                    .read(&mut buf)
                    .map_err(io_err("reading", "a copy buffer"))?;
                if n == 0 {
                    break;
                }
                digester.update(&buf[..n]);
            }
            tar.rewind().map_err(io_err("reading", "a copy buffer"))?;
            let (dir, _) = make_dirs(self.rootfs.root(), &dest_dir, self.owner)
                .map_err(|e| BuildError::Invalid(format!("{} to {dest_dir}: {e}", self.keyword)))?;
            let opts = ApplyOptions {
                chown: true,
                xattrs: false,
                whiteouts: false,
                owner: Some(self.owner),
                ..ApplyOptions::default()
            };
            let target = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
            let mut reader = std::io::BufReader::with_capacity(1 << 20, tar);
            let input: Box<dyn Read + Send> = if extract {
                let compression =
                    Compression::detect(&mut reader).map_err(io_err("reading", source))?;
                decoder(compression, reader).map_err(io_err("reading", source))?
            } else {
                Box::new(reader)
            };
            apply_layer(input, &target, &opts).map_err(|e| {
                BuildError::Invalid(format!("{} {source} to {dest_dir}: {e}", self.keyword))
            })?;
        }
        let _ = std::fs::remove_file(&self.scratch);
        Ok((digester.finish(), kind))
    }

    fn not_found(&self, source: &str, e: Errno) -> BuildError {
        not_found(self.keyword, source, e)
    }

    fn is_dir(&self, path: &str) -> bool {
        open_in_root(self.rootfs.root(), path, OFlags::PATH | OFlags::DIRECTORY).is_ok()
    }
}

/// Whether `file` starts like a tar (plain, gzip or zstd), as `ADD`
/// extracts those; leaves the position at the start.
fn is_archive(file: &mut std::fs::File) -> bool {
    let mut head = [0u8; 512];
    let n = file.read(&mut head).unwrap_or(0);
    let _ = file.rewind();
    let head = &head[..n];
    match Compression::from_magic(head) {
        Compression::None => n >= 262 && &head[257..262] == b"ustar",
        compression => {
            let Ok(mut reader) = decoder(compression, &mut *file) else {
                return false;
            };
            let mut block = [0u8; 512];
            let ok = reader.read_exact(&mut block).is_ok() && &block[257..262] == b"ustar";
            drop(reader);
            let _ = file.rewind();
            ok
        }
    }
}

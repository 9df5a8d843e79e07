//! The build context: the request body (a tar, maybe compressed) unpacked
//! into a private directory, `.dockerignore` applied, and source paths of
//! `COPY`/`ADD` resolved inside it.

use std::io::{self, BufReader};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use berth_core::dockerignore::DockerIgnore;
pub(crate) use berth_core::dockerignore::glob;
use berth_snapshotter::apply::{ApplyOptions, apply_layer};
use berth_snapshotter::decompress::{Compression, decoder};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::BuildError;

/// Unpacks the context tar into `dir` with the snapshotter's applier
/// (entries resolved beneath `dir`, nothing created through a symlink).
pub(crate) fn unpack(body: impl io::Read + Send, dir: &Path) -> Result<(), BuildError> {
    let mut reader = BufReader::with_capacity(1 << 20, body);
    let compression = Compression::detect(&mut reader).map_err(|source| BuildError::Io {
        what: "reading the build context",
        path: String::new(),
        source,
    })?;
    let input = decoder(compression, reader).map_err(|source| BuildError::Io {
        what: "reading the build context",
        path: String::new(),
        source,
    })?;
    let opts = ApplyOptions {
        chown: true,
        xattrs: false,
        whiteouts: false,
        ..ApplyOptions::default()
    };
    apply_layer(input, dir, &opts)
        .map(drop)
        .map_err(|e| BuildError::Invalid(format!("reading the build context: {e}")))
}

/// `..` components that would climb above the context, lexically, as
/// moby refuses them.
pub(crate) fn escapes(path: &str) -> bool {
    let mut depth = 0i32;
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

/// Opens `path` beneath `root` (`..` and symlinks stay inside it, as
/// moby's `FollowSymlinkInScope`), with `flags`.
pub(crate) fn open_in_root(root: &OwnedFd, path: &str, flags: OFlags) -> Result<OwnedFd, Errno> {
    let relative = path.trim_start_matches('/');
    let relative = if relative.is_empty() { "." } else { relative };
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(
            root,
            relative,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Err(Errno::AGAIN) if tries < 8 => tries += 1,
            other => return other,
        }
    }
}

/// A context's `.dockerignore` ([`DockerIgnore`]), applied to the
/// unpacked context.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ignore {
    rules: DockerIgnore,
}

impl Ignore {
    pub(crate) fn parse(text: &str) -> Ignore {
        Ignore {
            rules: DockerIgnore::parse(text),
        }
    }

    /// Whether `path` (relative, `/`-separated) is ignored.
    pub(crate) fn ignored(&self, path: &str) -> bool {
        self.rules.ignored(path)
    }

    /// Removes what is ignored from `dir`, never `keep` (the Dockerfile and
    /// `.dockerignore`, as moby keeps them). Symlinks are never followed.
    pub(crate) fn apply(&self, dir: &Path, keep: &[&str]) -> io::Result<()> {
        if self.rules.is_empty() {
            return Ok(());
        }
        self.walk(dir, "", keep)
    }

    fn walk(&self, dir: &Path, prefix: &str, keep: &[&str]) -> io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let relative = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let path: PathBuf = entry.path();
            let is_dir = entry.file_type()?.is_dir();
            if self.ignored(&relative) && !keep.contains(&relative.as_str()) {
                if is_dir {
                    // A re-included path beneath keeps the directory.
                    if self.rules.has_exceptions() {
                        self.walk(&path, &relative, keep)?;
                        let _ = std::fs::remove_dir(&path);
                    } else {
                        std::fs::remove_dir_all(&path)?;
                    }
                } else {
                    std::fs::remove_file(&path)?;
                }
            } else if is_dir {
                self.walk(&path, &relative, keep)?;
            }
        }
        Ok(())
    }
}

pub(crate) fn has_wildcards(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_above_the_context_are_caught() {
        assert!(escapes("../x"));
        assert!(escapes("a/../../x"));
        assert!(!escapes("a/../x"));
        assert!(!escapes("/abs/x"));
    }
}

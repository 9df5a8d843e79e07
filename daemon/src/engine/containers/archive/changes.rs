//! `docker diff`: moby's overlay2 `Changes` over a container's upper
//! directory and the image's layers beneath it.

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// One entry of `GET /containers/{id}/changes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Change {
    pub(crate) path: String,
    /// 0 modified, 1 added, 2 deleted.
    pub(crate) kind: u8,
}

const CHANGE_MODIFY: u8 = 0;
const CHANGE_ADD: u8 = 1;
const CHANGE_DELETE: u8 = 2;

/// Moby's overlay2 `Changes`: walks the upper directory; a 0:0 character
/// device is a deletion, an opaque directory that exists below is reported
/// deleted (then its new contents added), a path that exists below is
/// modified (directories only if their size, mode or mtime differ), else
/// added; the parent of an addition or deletion is reported modified once.
pub(super) fn overlay_changes(upper: &Path, lowers: &[PathBuf]) -> io::Result<Vec<Change>> {
    let mut walk = ChangeWalk {
        upper,
        lowers,
        out: Vec::new(),
        changed_dirs: std::collections::HashSet::new(),
    };
    walk.dir(Path::new("/"))?;
    Ok(walk.out)
}

struct ChangeWalk<'a> {
    upper: &'a Path,
    lowers: &'a [PathBuf],
    out: Vec<Change>,
    changed_dirs: std::collections::HashSet<PathBuf>,
}

impl ChangeWalk<'_> {
    /// Depth first, in name order (Go's `filepath.Walk`).
    fn dir(&mut self, rel: &Path) -> io::Result<()> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let dir = self.upper.join(rel.strip_prefix("/").unwrap_or(rel));
        let mut names: Vec<_> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        for name in names {
            let path = rel.join(&name);
            let meta = std::fs::symlink_metadata(dir.join(&name))?;
            let relative = path.strip_prefix("/").unwrap_or(&path);
            let lower = self
                .lowers
                .iter()
                .find_map(|l| std::fs::symlink_metadata(l.join(relative)).ok());
            let whiteout = meta.file_type().is_char_device() && meta.rdev() == 0;
            let replaced_dir = meta.is_dir() && lower.is_some() && opaque(&dir.join(&name));
            let kind = if whiteout || replaced_dir {
                Some(CHANGE_DELETE)
            } else {
                match &lower {
                    Some(l) if l.is_dir() && meta.is_dir() => {
                        let same = l.size() == meta.size()
                            && l.mode() == meta.mode()
                            && l.mtime() == meta.mtime()
                            && l.mtime_nsec() == meta.mtime_nsec();
                        (!same).then_some(CHANGE_MODIFY)
                    }
                    Some(_) => Some(CHANGE_MODIFY),
                    None => Some(CHANGE_ADD),
                }
            };
            if let Some(kind) = kind {
                if meta.is_dir() {
                    self.changed_dirs.insert(path.clone());
                }
                if kind != CHANGE_MODIFY
                    && rel != Path::new("/")
                    && self.changed_dirs.insert(rel.to_owned())
                {
                    self.out.push(Change {
                        path: rel.display().to_string(),
                        kind: CHANGE_MODIFY,
                    });
                }
                self.out.push(Change {
                    path: path.display().to_string(),
                    kind,
                });
            }
            if meta.is_dir() {
                self.dir(&path)?;
            }
        }
        Ok(())
    }
}

fn opaque(dir: &Path) -> bool {
    let mut value = [0u8; 4];
    rustix::fs::getxattr(dir, "trusted.overlay.opaque", &mut value)
        .is_ok_and(|n| &value[..n] == b"y")
}

/// The `lowerdir=` of the container's overlay mount, nearest first.
pub(super) fn lower_dirs(mounts: &[berth_core::Mount]) -> Vec<PathBuf> {
    mounts
        .iter()
        .flat_map(|m| m.options.iter())
        .filter_map(|o| o.strip_prefix("lowerdir="))
        .flat_map(|l| l.split(':'))
        .map(PathBuf::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use rustix::fs::{AtFlags, FileType, Mode};

    use super::*;

    #[test]
    fn overlay_changes_report_like_moby() {
        let dir = tempfile::tempdir().unwrap();
        let (lower, upper) = (dir.path().join("lower"), dir.path().join("upper"));
        for d in ["etc", "tmp", "gone"] {
            std::fs::create_dir_all(lower.join(d)).unwrap();
        }
        std::fs::write(lower.join("etc/passwd"), "root").unwrap();
        std::fs::write(lower.join("gone/f"), "x").unwrap();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("etc/passwd"), "root2").unwrap();
        std::fs::create_dir_all(upper.join("new/sub")).unwrap();
        std::fs::create_dir_all(upper.join("gone")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            upper.join("gone/f"),
            FileType::CharacterDevice,
            Mode::empty(),
            0,
        )
        .unwrap();
        // Copied-up directories keep the lower one's metadata.
        for d in ["etc", "gone"] {
            let st = rustix::fs::stat(lower.join(d)).unwrap();
            let time = rustix::fs::Timespec {
                tv_sec: st.st_mtime,
                tv_nsec: st.st_mtime_nsec as _,
            };
            let times = rustix::fs::Timestamps {
                last_access: time,
                last_modification: time,
            };
            rustix::fs::utimensat(rustix::fs::CWD, upper.join(d), &times, AtFlags::empty())
                .unwrap();
        }
        let changes = overlay_changes(&upper, &[lower]).unwrap();
        let got: Vec<(String, u8)> = changes.into_iter().map(|c| (c.path, c.kind)).collect();
        let want: Vec<(String, u8)> = [
            ("/etc/passwd", 0),
            ("/gone", 0),
            ("/gone/f", 2),
            ("/new", 1),
            ("/new/sub", 1),
        ]
        .iter()
        .map(|(p, k)| (p.to_string(), *k))
        .collect();
        assert_eq!(got, want);
    }
}

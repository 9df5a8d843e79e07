//! The description of a mount, as snapshotters hand it to whoever builds a
//! container's rootfs (containerd's `Mount` shape), and the code that
//! performs it.
//!
//! Overlays are mounted through the new mount API (`fsopen("overlay")`,
//! one `fsconfig` per option, `fsmount`, `move_mount`) and every lower
//! directory is passed with its own `lowerdir+` call. `mount(2)` takes all
//! options as one page of text, which caps an overlay at a few dozen
//! layers with long paths; `lowerdir+` has no such limit (Linux 6.8+).
//!
//! A `lowerdir=a:b:c` option is split on `:` into one `lowerdir+` per
//! directory, so mounts stay plain data that other tools can read; a path
//! holding `:` cannot be expressed there (containerd has the same rule).

use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rustix::fs::CWD;
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags, UnmountFlags,
};

use crate::ErrorKind;

/// One mount: what to mount (`kind`, `source`) and how (`options`).
/// Serialised as containerd does: `{"type", "source", "options"}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mount {
    /// The filesystem type: `"overlay"` or `"bind"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// What is mounted: a directory for binds, `"overlay"` for overlays.
    pub source: String,
    /// `mount(8)`-style options: flags (`ro`, `rbind`, `nosuid`...) and
    /// `key=value` filesystem options (`lowerdir=`, `upperdir=`...).
    #[serde(default)]
    pub options: Vec<String>,
}

/// Why a mount or unmount failed; the message names the target and the
/// step or option that failed.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The mount type is neither `overlay` nor `bind`.
    #[error("unsupported mount type {kind:?} for {}", target.display())]
    UnsupportedKind {
        /// The requested type.
        kind: String,
        /// Where it was to be mounted.
        target: PathBuf,
    },
    /// A system call failed.
    #[error("mounting {kind} on {}: {step}: {source}", target.display())]
    Mount {
        /// The mount type.
        kind: String,
        /// Where it was to be mounted.
        target: PathBuf,
        /// The failed step, with the option it was given (`fsconfig
        /// lowerdir+=/x`, `fsmount`, `bind`...).
        step: String,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// `umount2` failed.
    #[error("unmounting {}: {source}", target.display())]
    Unmount {
        /// The mount point.
        target: PathBuf,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
}

impl MountError {
    /// The kind of failure, for mapping to an API status.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::UnsupportedKind { .. } => ErrorKind::InvalidArgument,
            Self::Mount { source, .. } | Self::Unmount { source, .. } => match source.kind() {
                io::ErrorKind::NotFound => ErrorKind::NotFound,
                io::ErrorKind::InvalidInput => ErrorKind::InvalidArgument,
                _ => ErrorKind::Io,
            },
        }
    }
}

/// Mounts `mounts` one after the other on `target` (a later one stacks on
/// an earlier one, as containerd does). If one fails, those already
/// mounted are unmounted again.
pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<(), MountError> {
    for (done, m) in mounts.iter().enumerate() {
        if let Err(e) = mount_one(m, target) {
            for _ in 0..done {
                let _ = unmount(target);
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Unmounts the topmost mount on `target`.
pub fn unmount(target: &Path) -> Result<(), MountError> {
    rustix::mount::unmount(target, UnmountFlags::empty()).map_err(|e| MountError::Unmount {
        target: target.to_owned(),
        source: e.into(),
    })
}

fn mount_one(m: &Mount, target: &Path) -> Result<(), MountError> {
    match m.kind.as_str() {
        "overlay" => mount_overlay(m, target),
        "bind" | "rbind" => mount_bind(m, target),
        _ => Err(MountError::UnsupportedKind {
            kind: m.kind.clone(),
            target: target.to_owned(),
        }),
    }
}

/// Per-mount flags, applied to the mount rather than to the filesystem.
fn attr_flag(option: &str) -> Option<MountAttrFlags> {
    Some(match option {
        "ro" => MountAttrFlags::MOUNT_ATTR_RDONLY,
        "rw" => MountAttrFlags::empty(),
        "nosuid" => MountAttrFlags::MOUNT_ATTR_NOSUID,
        "nodev" => MountAttrFlags::MOUNT_ATTR_NODEV,
        "noexec" => MountAttrFlags::MOUNT_ATTR_NOEXEC,
        "relatime" => MountAttrFlags::MOUNT_ATTR_RELATIME,
        "noatime" => MountAttrFlags::MOUNT_ATTR_NOATIME,
        "strictatime" => MountAttrFlags::MOUNT_ATTR_STRICTATIME,
        "nodiratime" => MountAttrFlags::MOUNT_ATTR_NODIRATIME,
        _ => return None,
    })
}

fn mount_overlay(m: &Mount, target: &Path) -> Result<(), MountError> {
    let fail = |step: String, e: rustix::io::Errno| MountError::Mount {
        kind: m.kind.clone(),
        target: target.to_owned(),
        step,
        source: e.into(),
    };
    let fs = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)
        .map_err(|e| fail("fsopen".into(), e))?;
    let mut attrs = MountAttrFlags::empty();
    for option in &m.options {
        if let Some(flag) = attr_flag(option) {
            attrs |= flag;
            continue;
        }
        match option.split_once('=') {
            Some(("lowerdir", dirs)) => {
                for dir in dirs.split(':').filter(|d| !d.is_empty()) {
                    rustix::mount::fsconfig_set_string(fs.as_fd(), "lowerdir+", dir)
                        .map_err(|e| fail(format!("fsconfig lowerdir+={dir}"), e))?;
                }
            }
            Some((key, value)) => rustix::mount::fsconfig_set_string(fs.as_fd(), key, value)
                .map_err(|e| fail(format!("fsconfig {option}"), e))?,
            None => rustix::mount::fsconfig_set_flag(fs.as_fd(), option.as_str())
                .map_err(|e| fail(format!("fsconfig {option}"), e))?,
        }
    }
    rustix::mount::fsconfig_create(fs.as_fd()).map_err(|e| fail("fsconfig create".into(), e))?;
    let mnt = rustix::mount::fsmount(fs.as_fd(), FsMountFlags::FSMOUNT_CLOEXEC, attrs)
        .map_err(|e| fail("fsmount".into(), e))?;
    rustix::mount::move_mount(
        mnt.as_fd(),
        "",
        CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| fail("move_mount".into(), e))
}

fn mount_bind(m: &Mount, target: &Path) -> Result<(), MountError> {
    let fail = |step: &str, e: rustix::io::Errno| MountError::Mount {
        kind: m.kind.clone(),
        target: target.to_owned(),
        step: format!("{step} {}", m.source),
        source: e.into(),
    };
    let recursive = m.kind == "rbind" || m.options.iter().any(|o| o == "rbind");
    if recursive {
        rustix::mount::mount_bind_recursive(m.source.as_str(), target)
            .map_err(|e| fail("rbind", e))?;
    } else {
        rustix::mount::mount_bind(m.source.as_str(), target).map_err(|e| fail("bind", e))?;
    }
    // A bind mount ignores per-mount flags; they need a remount.
    let mut flags = MountFlags::empty();
    for option in &m.options {
        flags |= match option.as_str() {
            "ro" => MountFlags::RDONLY,
            "nosuid" => MountFlags::NOSUID,
            "nodev" => MountFlags::NODEV,
            "noexec" => MountFlags::NOEXEC,
            _ => MountFlags::empty(),
        };
    }
    if !flags.is_empty() {
        if let Err(e) = rustix::mount::mount_remount(target, MountFlags::BIND | flags, "") {
            let _ = unmount(target);
            return Err(fail("read-only remount of", e));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_as_containerd_does() {
        let m = Mount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options: vec!["lowerdir=/a:/b".into()],
        };
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(
            json,
            r#"{"type":"overlay","source":"overlay","options":["lowerdir=/a:/b"]}"#
        );
        let back: Mount = serde_json::from_str(r#"{"type":"bind","source":"/x"}"#).unwrap();
        assert_eq!((back.kind.as_str(), back.options.len()), ("bind", 0));
        assert_eq!(serde_json::from_str::<Mount>(&json).unwrap(), m);
    }

    #[test]
    fn unknown_types_are_refused() {
        let m = Mount {
            kind: "nfs".into(),
            source: "server:/x".into(),
            options: vec![],
        };
        let err = mount_all(&[m], Path::new("/nonexistent-berth-target")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.to_string().contains("\"nfs\""), "{err}");
    }
}

//! A busybox root file system on disk (busybox-static plus applet
//! symlinks), tarred with tar(1) for `docker import`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The applets the daemon's tests run in their busybox containers.
pub const APPLETS: &[&str] = &[
    "sh", "echo", "sleep", "cat", "true", "false", "ls", "env", "pwd", "id", "hostname", "wc",
];

/// Every applet `/bin/busybox --list` names.
pub fn all_applets() -> Vec<String> {
    let list = Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .expect("busybox-static must be installed (/bin/busybox)");
    String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter(|applet| *applet != "busybox")
        .map(str::to_owned)
        .collect()
}

/// Builds `scratch/rootfs` (`bin/busybox` and a link per applet; kept when
/// it is already there; other files the caller put in `scratch/rootfs`
/// first go along) and tars it to `scratch/rootfs.tar`, whose path it
/// returns. Both live under the caller's temp dir and go with it.
pub fn busybox_rootfs_tar(scratch: &Path, applets: &[&str]) -> PathBuf {
    let root = scratch.join("rootfs");
    if !root.join("bin/busybox").exists() {
        let bin = root.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy("/bin/busybox", bin.join("busybox"))
            .expect("busybox-static must be installed (/bin/busybox)");
        for applet in applets {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
    }
    let tar = scratch.join("rootfs.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success(), "tar of {} failed", root.display());
    tar
}

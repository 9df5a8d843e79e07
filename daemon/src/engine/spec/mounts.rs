//! The mounts of the spec: Docker's defaults, `--tmpfs`, the caller's
//! binds and the per-container network files.

use std::collections::HashSet;
use std::path::Path;

use oci_spec::runtime::{Mount, MountBuilder};

use super::{DEFAULT_SHM_SIZE, SpecError, SpecInput};

/// Every mount of the container, in dockerd's order.
pub(super) fn spec_mounts(
    input: &SpecInput<'_>,
    init_mount: Option<Mount>,
) -> Result<Vec<Mount>, SpecError> {
    let host = input.host;
    let sys_options: &[&str] = if host.privileged {
        &["nosuid", "noexec", "nodev"]
    } else {
        &["nosuid", "noexec", "nodev", "ro"]
    };
    let cgroup_options: &[&str] = if host.privileged {
        &["nosuid", "noexec", "nodev"]
    } else {
        &["ro", "nosuid", "noexec", "nodev"]
    };
    let mut defaults = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount("/sys", "sysfs", "sysfs", sys_options)?,
        mount("/sys/fs/cgroup", "cgroup", "cgroup", cgroup_options)?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
    ];
    // dockerd adds the host's /dev/shm after the network files.
    let mut host_shm = None;
    match host.ipc_mode.as_str() {
        "host" => {
            host_shm = Some(mount(
                "/dev/shm",
                "bind",
                "/dev/shm",
                &["rbind", "rprivate"],
            )?)
        }
        "none" => {}
        _ => {
            let size = if host.shm_size > 0 {
                host.shm_size
            } else {
                DEFAULT_SHM_SIZE
            };
            let size = format!("size={size}");
            defaults.push(mount(
                "/dev/shm",
                "tmpfs",
                "shm",
                &["nosuid", "noexec", "nodev", "mode=1777", &size],
            )?);
        }
    }

    let mut user_mounts = Vec::new();
    for (dest, data) in host.tmpfs.iter().flatten() {
        let mut options: Vec<String> = ["noexec", "nosuid", "nodev", "rprivate"]
            .iter()
            .map(|o| o.to_string())
            .collect();
        if !data.is_empty() {
            options.extend(data.split(',').map(str::to_owned));
        }
        user_mounts.push(
            MountBuilder::default()
                .destination(dest)
                .typ("tmpfs")
                .source("tmpfs")
                .options(merge_tmpfs_options(&options)?)
                .build()?,
        );
    }
    user_mounts.extend(input.extra_mounts.iter().cloned());
    // Parents before children (moby sorts by path depth).
    user_mounts.sort_by_key(|m| m.destination().components().count());
    let overridden = |m: &Mount| {
        user_mounts
            .iter()
            .any(|u| u.destination() == m.destination())
    };
    let mut all: Vec<Mount> = defaults.into_iter().filter(|m| !overridden(m)).collect();
    all.extend(init_mount);
    all.extend(user_mounts.iter().cloned());

    let files = &input.network_files;
    for (dest, source) in [
        ("/etc/resolv.conf", &files.resolv_conf),
        ("/etc/hostname", &files.hostname),
        ("/etc/hosts", &files.hosts),
    ] {
        let Some(source) = source else { continue };
        if user_mounts
            .iter()
            .any(|u| u.destination() == Path::new(dest))
        {
            continue;
        }
        let mut options = vec!["rbind".to_owned()];
        if host.readonly_rootfs {
            options.push("ro".to_owned());
        }
        options.push("rprivate".to_owned());
        all.push(
            MountBuilder::default()
                .destination(dest)
                .typ("bind")
                .source(source)
                .options(options)
                .build()?,
        );
    }
    all.extend(host_shm.filter(|m| !overridden(m)));
    Ok(all)
}

/// Flag options of a tmpfs mount, grouped by the mount flag they set: a
/// later option of a group replaces an earlier one (moby
/// `mount.MergeTmpfsOptions`).
const TMPFS_FLAG_GROUPS: &[&[&str]] = &[
    &["ro", "rw"],
    &["suid", "nosuid"],
    &["dev", "nodev"],
    &["exec", "noexec"],
    &["sync", "async"],
    &["dirsync"],
    &["remount"],
    &["mand", "nomand"],
    &["atime", "noatime"],
    &["diratime", "nodiratime"],
    &["bind", "rbind"],
    &["relatime", "norelatime"],
    &["strictatime", "nostrictatime"],
    &[
        "private",
        "rprivate",
        "shared",
        "rshared",
        "slave",
        "rslave",
        "unbindable",
        "runbindable",
    ],
];

const TMPFS_DATA_OPTIONS: &[&str] = &[
    "size",
    "mode",
    "uid",
    "gid",
    "nr_inodes",
    "nr_blocks",
    "mpol",
];

pub(crate) fn merge_tmpfs_options(options: &[String]) -> Result<Vec<String>, SpecError> {
    let mut seen_groups = HashSet::new();
    let mut seen_data = HashSet::new();
    let mut merged = Vec::new();
    for option in options.iter().rev() {
        if option == "defaults" {
            continue;
        }
        if let Some(group) = TMPFS_FLAG_GROUPS
            .iter()
            .position(|g| g.contains(&option.as_str()))
        {
            if seen_groups.insert(group) {
                merged.push(option.clone());
            }
            continue;
        }
        let key = option.split_once('=').map(|(k, _)| k);
        match key {
            Some(key) if TMPFS_DATA_OPTIONS.contains(&key) => {
                if seen_data.insert(key.to_owned()) {
                    merged.push(option.clone());
                }
            }
            _ => return Err(SpecError::TmpfsOption(key.unwrap_or(option).to_owned())),
        }
    }
    merged.reverse();
    Ok(merged)
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, SpecError> {
    Ok(MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()?)
}

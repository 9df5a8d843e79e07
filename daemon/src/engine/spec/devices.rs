//! Device nodes and the devices cgroup rules of the spec.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use oci_spec::runtime::{
    LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType,
};

use super::SpecError;
use crate::api::containers_types::HostConfig;

/// Docker's device cgroup defaults (deny all, then the basic char devices)
/// plus `--device` mappings; privileged gets every host device.
pub(super) fn spec_devices(
    host: &HostConfig,
) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>), SpecError> {
    let rule = |allow: bool, major: Option<i64>, minor: Option<i64>| {
        let mut builder = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .access("rwm");
        if let Some(major) = major {
            builder = builder.typ(LinuxDeviceType::C).major(major);
        }
        if let Some(minor) = minor {
            builder = builder.minor(minor);
        }
        builder.build()
    };
    if host.privileged {
        return Ok((
            host_devices(Path::new("/dev"))?,
            vec![rule(true, None, None)?],
        ));
    }
    let mut rules = vec![rule(false, None, None)?];
    for (major, minor) in [(1, 5), (1, 3), (1, 9), (1, 8), (5, 0), (5, 1)] {
        rules.push(rule(true, Some(major), Some(minor))?);
    }
    rules.push(rule(false, Some(10), Some(229))?);
    let mut devices = Vec::new();
    for mapping in host.devices.iter().flatten() {
        let source = Path::new(&mapping.path_on_host);
        let mut device = device_at(source)?.ok_or_else(|| SpecError::Device {
            path: source.to_path_buf(),
            source: std::io::Error::other("not a device node"),
        })?;
        let dest = if mapping.path_in_container.is_empty() {
            source
        } else {
            Path::new(&mapping.path_in_container)
        };
        device.set_path(dest.to_path_buf());
        let access = if mapping.cgroup_permissions.is_empty() {
            "rwm"
        } else {
            &mapping.cgroup_permissions
        };
        rules.push(
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(device.typ())
                .major(device.major())
                .minor(device.minor())
                .access(access)
                .build()?,
        );
        devices.push(device);
    }
    Ok((devices, rules))
}

/// The device node at `path`, `None` when it is not one.
fn device_at(path: &Path) -> Result<Option<LinuxDevice>, SpecError> {
    let meta = std::fs::metadata(path).map_err(|source| SpecError::Device {
        path: path.to_path_buf(),
        source,
    })?;
    let typ = if meta.file_type().is_char_device() {
        LinuxDeviceType::C
    } else if meta.file_type().is_block_device() {
        LinuxDeviceType::B
    } else {
        return Ok(None);
    };
    let rdev = meta.rdev();
    // glibc's gnu_dev_major/minor.
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    Ok(Some(
        LinuxDeviceBuilder::default()
            .path(path)
            .typ(typ)
            .major(major as i64)
            .minor(minor as i64)
            .file_mode(meta.mode() & 0o7777)
            .uid(meta.uid())
            .gid(meta.gid())
            .build()?,
    ))
}

/// Every device node under `/dev` as moby's `HostDevices` lists them
/// (skipping the directories a container gets its own of).
fn host_devices(dir: &Path) -> Result<Vec<LinuxDevice>, SpecError> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(found);
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        let name = entry.file_name();
        if file_type.is_dir() {
            if !matches!(
                name.to_str(),
                Some("pts" | "shm" | "fd" | "mqueue" | ".lxc" | ".lxd-mounts" | ".udev")
            ) {
                found.extend(host_devices(&path)?);
            }
            continue;
        }
        if name == "console" || !(file_type.is_char_device() || file_type.is_block_device()) {
            continue;
        }
        if let Ok(Some(device)) = device_at(&path) {
            found.push(device);
        }
    }
    found.sort_by(|a, b| a.path().cmp(b.path()));
    Ok(found)
}

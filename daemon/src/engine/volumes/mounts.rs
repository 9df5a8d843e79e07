//! A container's mount points, worked out at create time as moby's
//! `registerMountPoints` does: first `--volumes-from`, then `Binds`
//! (`-v src:dst[:mode]`) replacing those at the same destination, then
//! `HostConfig.Mounts` (`--mount`), then an anonymous volume for each
//! `Config.Volumes` entry (the image's `VOLUME`s, `-v /path`) that nothing
//! else covers. Binds and mounts at one destination are an error.
//!
//! Texts are moby's (`invalid mount config for type "bind": bind source
//! path does not exist: /x`, `Duplicate mount point: /x`, ...).

use std::collections::BTreeMap;
use std::path::{Component, Path};

use oci_spec::runtime::{Mount, MountBuilder};
use serde::{Deserialize, Serialize};

use crate::api::containers_types::{ContainerConfig, HostConfig};

/// What a mount point is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum MountKind {
    Bind,
    Volume,
    Tmpfs,
}

impl MountKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            MountKind::Bind => "bind",
            MountKind::Volume => "volume",
            MountKind::Tmpfs => "tmpfs",
        }
    }
}

/// One mount of a container, persisted in its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MountPoint {
    pub(crate) kind: MountKind,
    /// Host path (bind) or volume name (volume; empty until an anonymous
    /// volume is made); empty for tmpfs.
    pub(crate) source: String,
    pub(crate) destination: String,
    pub(crate) rw: bool,
    /// What inspect shows as `Mode` (`-v`'s mode text, `z` for a named volume).
    #[serde(default)]
    pub(crate) mode: String,
    #[serde(default)]
    pub(crate) propagation: String,
    #[serde(default)]
    pub(crate) driver: String,
    /// Named by the user (`-v name:`, `--mount source=`): `rm -v` keeps it.
    #[serde(default)]
    pub(crate) named: bool,
    /// Fill an empty volume from the image at start.
    #[serde(default)]
    pub(crate) copy_data: bool,
    /// `-v /missing:/x` makes the host directory at start.
    #[serde(default)]
    pub(crate) create_host_path: bool,
    #[serde(default)]
    pub(crate) non_recursive: bool,
    /// tmpfs `size=`, `mode=` (and `ro`) options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) tmpfs_options: Vec<String>,
    /// Labels and driver options for a volume this mount creates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) volume_labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) volume_options: Option<BTreeMap<String, String>>,
}

impl MountPoint {
    /// A read-write volume mount (`name` empty: anonymous).
    pub(crate) fn volume(name: &str, destination: &str) -> MountPoint {
        MountPoint {
            kind: MountKind::Volume,
            source: name.to_owned(),
            destination: destination.to_owned(),
            rw: true,
            mode: String::new(),
            propagation: String::new(),
            driver: super::LOCAL_DRIVER.to_owned(),
            named: !name.is_empty(),
            copy_data: true,
            create_host_path: false,
            non_recursive: false,
            tmpfs_options: Vec::new(),
            volume_labels: None,
            volume_options: None,
        }
    }

    fn bind(source: &str, destination: &str) -> MountPoint {
        MountPoint {
            kind: MountKind::Bind,
            driver: String::new(),
            named: true,
            copy_data: false,
            propagation: DEFAULT_PROPAGATION.to_owned(),
            ..MountPoint::volume(source, destination)
        }
    }

    /// The OCI mount with `source` (the host path, or the volume's
    /// `_data`). tmpfs mounts go through `HostConfig.Tmpfs` instead.
    pub(crate) fn oci_mount(&self, source: &Path) -> Result<Mount, String> {
        let mut options = vec![if self.non_recursive { "bind" } else { "rbind" }.to_owned()];
        options.push(if self.rw { "rw" } else { "ro" }.to_owned());
        options.push(if self.propagation.is_empty() {
            DEFAULT_PROPAGATION.to_owned()
        } else {
            self.propagation.clone()
        });
        MountBuilder::default()
            .destination(&self.destination)
            .typ("bind")
            .source(source)
            .options(options)
            .build()
            .map_err(|e| format!("mount on {}: {e}", self.destination))
    }
}

const DEFAULT_PROPAGATION: &str = "rprivate";
const PROPAGATIONS: &[&str] = &[
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// moby's `mount.Mount` (`HostConfig.Mounts`, `--mount`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MountSpec {
    #[serde(default)]
    r#type: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    read_only: Option<bool>,
    #[serde(default)]
    bind_options: Option<BindOptions>,
    #[serde(default)]
    volume_options: Option<VolumeOptions>,
    #[serde(default)]
    tmpfs_options: Option<TmpfsOptions>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BindOptions {
    #[serde(default)]
    propagation: Option<String>,
    #[serde(default)]
    non_recursive: Option<bool>,
    #[serde(default)]
    create_mountpoint: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct VolumeOptions {
    #[serde(default)]
    no_copy: Option<bool>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    driver_config: Option<DriverConfig>,
    #[serde(default)]
    subpath: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DriverConfig {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    options: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TmpfsOptions {
    #[serde(default)]
    size_bytes: Option<i64>,
    #[serde(default)]
    mode: Option<u32>,
}

/// `a//b/` -> `/a/b`; relative paths come back relative.
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(c) => parts.push(c.to_str().unwrap_or_default()),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    let joined = parts.join("/");
    if path.starts_with('/') {
        format!("/{joined}")
    } else {
        joined
    }
}

fn mount_config_error(kind: &str, what: impl std::fmt::Display) -> String {
    format!("invalid mount config for type \"{kind}\": {what}")
}

fn absolute_target(kind: &str, target: &str) -> Result<String, String> {
    if target.is_empty() {
        return Err(mount_config_error(kind, "field Target must not be empty"));
    }
    if clean(target) == "/" {
        return Err(mount_config_error(
            kind,
            "invalid specification: destination can't be '/'",
        ));
    }
    if !target.starts_with('/') {
        return Err(mount_config_error(
            kind,
            format!("invalid mount path: '{target}' mount path must be absolute"),
        ));
    }
    Ok(clean(target))
}

/// moby's mode rule for `-v`: comma-separated, at most one of each of
/// rw/ro, z/Z, a propagation, nocopy, a consistency (accepted, no effect).
fn parse_mode(mode: &str) -> Result<(bool, &str, bool), String> {
    let invalid = || format!("invalid mode: {mode}");
    let (mut rw, mut label, mut propagation, mut copy, mut consistency) =
        (None, None, None, None, None);
    for part in mode.split(',') {
        let slot = match part {
            "rw" | "ro" => &mut rw,
            "z" | "Z" => &mut label,
            "nocopy" => &mut copy,
            "consistent" | "cached" | "delegated" => &mut consistency,
            p if PROPAGATIONS.contains(&p) => &mut propagation,
            _ => return Err(invalid()),
        };
        if slot.replace(part).is_some() {
            return Err(invalid());
        }
    }
    Ok((rw != Some("ro"), propagation.unwrap_or(""), copy.is_none()))
}

/// One `-v` / `Binds` entry.
fn parse_bind(spec: &str) -> Result<MountPoint, String> {
    let invalid = || format!("invalid volume specification: '{spec}'");
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, destination, mode) = match parts.as_slice() {
        [d] => ("", *d, ""),
        // `/foo:rw` is a destination with a mode, which needs a source.
        [_, m] if parse_mode(m).is_ok() => return Err(invalid()),
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(invalid()),
    };
    if destination.is_empty() || (parts.len() > 1 && source.is_empty()) {
        return Err(invalid());
    }
    let is_bind = source.starts_with('/');
    let kind = if is_bind { "bind" } else { "volume" };
    let destination =
        absolute_target(kind, destination).map_err(|e| format!("{}: {e}", invalid()))?;
    let (rw, propagation, copy) = if mode.is_empty() {
        (true, "", true)
    } else {
        parse_mode(mode)?
    };
    let mut point = if is_bind {
        if !copy {
            return Err(format!("invalid mode: {mode}"));
        }
        let mut point = MountPoint::bind(&clean(source), &destination);
        point.create_host_path = true;
        point
    } else {
        let mut point = MountPoint::volume(source, &destination);
        point.copy_data = copy;
        point
    };
    point.rw = rw;
    point.mode = mode.to_owned();
    if !propagation.is_empty() {
        point.propagation = propagation.to_owned();
    }
    // moby shows an empty mode of a local volume from `Binds` or
    // `Mounts` as "z" (`setBindModeIfNull`).
    if point.kind == MountKind::Volume && mode.is_empty() {
        point.mode = "z".to_owned();
    }
    Ok(point)
}

/// One `HostConfig.Mounts` entry, checked as moby's `validateMountConfig`.
fn parse_mount(spec: &MountSpec) -> Result<MountPoint, String> {
    let kind = spec.r#type.clone().unwrap_or_default();
    let source = spec.source.clone().unwrap_or_default();
    let target = absolute_target(&kind, spec.target.as_deref().unwrap_or_default())?;
    let not_allowed =
        |field: &str| mount_config_error(&kind, format!("field {field} must not be specified"));
    let rw = !spec.read_only.unwrap_or(false);
    match kind.as_str() {
        "bind" => {
            if spec.volume_options.is_some() {
                return Err(not_allowed("VolumeOptions"));
            }
            if source.is_empty() {
                return Err(mount_config_error(&kind, "field Source must not be empty"));
            }
            if !source.starts_with('/') {
                return Err(mount_config_error(
                    &kind,
                    format!("invalid mount path: '{source}' mount path must be absolute"),
                ));
            }
            let options = spec.bind_options.clone().unwrap_or_default();
            let create = options.create_mountpoint.unwrap_or(false);
            if !create && !Path::new(&source).exists() {
                return Err(mount_config_error(
                    &kind,
                    format!("bind source path does not exist: {source}"),
                ));
            }
            let mut point = MountPoint::bind(&clean(&source), &target);
            point.rw = rw;
            point.create_host_path = create;
            point.non_recursive = options.non_recursive.unwrap_or(false);
            if let Some(propagation) = options.propagation.filter(|p| !p.is_empty()) {
                if !PROPAGATIONS.contains(&propagation.as_str()) {
                    return Err(mount_config_error(
                        &kind,
                        format!("invalid propagation mode: {propagation}"),
                    ));
                }
                point.propagation = propagation;
            }
            Ok(point)
        }
        "volume" => {
            if spec.bind_options.is_some() {
                return Err(not_allowed("BindOptions"));
            }
            if source.is_empty() && !rw {
                return Err(mount_config_error(
                    &kind,
                    "must not set ReadOnly mode when using anonymous volumes",
                ));
            }
            let options = spec.volume_options.clone().unwrap_or_default();
            if options.subpath.as_deref().is_some_and(|s| !s.is_empty()) {
                return Err(mount_config_error(
                    &kind,
                    "volume subpaths are not supported by berthd",
                ));
            }
            if !source.is_empty() {
                super::validate_name(&source).map_err(|e| e.to_string())?;
            }
            let mut point = MountPoint::volume(&source, &target);
            point.rw = rw;
            point.mode = "z".to_owned();
            point.copy_data = !options.no_copy.unwrap_or(false);
            point.volume_labels = options.labels;
            if let Some(driver) = options.driver_config {
                if let Some(name) = driver.name.filter(|n| !n.is_empty()) {
                    point.driver = name;
                }
                point.volume_options = driver.options;
            }
            Ok(point)
        }
        "tmpfs" => {
            if !source.is_empty() {
                return Err(not_allowed("Source"));
            }
            if spec.bind_options.is_some() {
                return Err(not_allowed("BindOptions"));
            }
            let options = spec.tmpfs_options.clone().unwrap_or_default();
            let mut point = MountPoint {
                kind: MountKind::Tmpfs,
                source: String::new(),
                driver: String::new(),
                named: true,
                copy_data: false,
                ..MountPoint::volume("", &target)
            };
            point.rw = rw;
            if !rw {
                point.tmpfs_options.push("ro".to_owned());
            }
            if let Some(mode) = options.mode.filter(|m| *m != 0) {
                point
                    .tmpfs_options
                    .push(format!("mode={:o}", mode & 0o7777));
            }
            match options.size_bytes.unwrap_or(0) {
                size if size < 0 => {
                    return Err(mount_config_error(&kind, "invalid tmpfs size"));
                }
                0 => {}
                size => point
                    .tmpfs_options
                    .push(format!("size={}", tmpfs_size(size))),
            }
            Ok(point)
        }
        _ => Err(mount_config_error(&kind, "mount type unknown")),
    }
}

/// moby's `ConvertTmpfsOptions`: the largest unit that divides the size.
fn tmpfs_size(size: i64) -> String {
    for (suffix, divisor) in [("g", 1i64 << 30), ("m", 1 << 20), ("k", 1 << 10)] {
        if size % divisor == 0 {
            return format!("{}{suffix}", size / divisor);
        }
    }
    size.to_string()
}

/// `--volumes-from c[:mode]`: the container reference and whether the
/// mounts are forced read-only.
pub(crate) fn parse_volumes_from(spec: &str) -> Result<(&str, bool), String> {
    if spec.is_empty() {
        return Err("volumes-from specification cannot be an empty string".to_owned());
    }
    match spec.split_once(':') {
        None => Ok((spec, false)),
        Some((id, "")) => Ok((id, false)),
        Some((id, mode)) => {
            let (rw, propagation, copy) = parse_mode(mode)?;
            // Propagation and copy modes come from the source container.
            if !propagation.is_empty() || !copy {
                return Err(format!("invalid mode: {mode}"));
            }
            Ok((id, !rw))
        }
    }
}

/// The mount points of a record written before berthd had volumes: only
/// its host-path `Binds` were mounted then.
pub(crate) fn legacy_binds(host: &HostConfig) -> Vec<MountPoint> {
    host.binds
        .iter()
        .flatten()
        .filter_map(|bind| parse_bind(bind).ok())
        .filter(|point| point.kind == MountKind::Bind)
        .collect()
}

/// The mount points of a new container. `from` holds the mount points of
/// each `--volumes-from` container with its read-only flag.
pub(crate) fn plan(
    config: &ContainerConfig,
    host: &HostConfig,
    from: Vec<(Vec<MountPoint>, bool)>,
) -> Result<Vec<MountPoint>, String> {
    let mut points: BTreeMap<String, MountPoint> = BTreeMap::new();
    for (mounts, read_only) in from {
        for mut point in mounts.into_iter().filter(|m| m.kind != MountKind::Tmpfs) {
            point.rw = point.rw && !read_only;
            // The source container filled it (or chose not to).
            point.copy_data = false;
            points.insert(point.destination.clone(), point);
        }
    }
    let mut explicit = std::collections::HashSet::new();
    // `--volume-driver` names the driver of `-v` and image volumes.
    let with_driver = |mut point: MountPoint| {
        if point.kind == MountKind::Volume && !host.volume_driver.is_empty() {
            point.driver = host.volume_driver.clone();
        }
        point
    };
    for bind in host.binds.iter().flatten() {
        let point = with_driver(parse_bind(bind)?);
        let tmpfs = host
            .tmpfs
            .as_ref()
            .is_some_and(|t| t.keys().any(|d| clean(d) == point.destination));
        if !explicit.insert(point.destination.clone()) || tmpfs {
            return Err(format!("Duplicate mount point: {}", point.destination));
        }
        points.insert(point.destination.clone(), point);
    }
    for value in host.mounts.iter().flatten() {
        let spec: MountSpec = serde_json::from_value(value.clone())
            .map_err(|e| format!("invalid mount config: {e}"))?;
        let point = parse_mount(&spec)?;
        if !explicit.insert(point.destination.clone()) {
            return Err(format!("Duplicate mount point: {}", point.destination));
        }
        points.insert(point.destination.clone(), point);
    }
    for destination in config.volumes.iter().flatten().map(|(d, _)| d) {
        let destination = absolute_target("volume", destination)?;
        points
            .entry(destination.clone())
            .or_insert_with(|| with_driver(MountPoint::volume("", &destination)));
    }
    Ok(points.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(binds: &[&str], mounts: serde_json::Value) -> HostConfig {
        HostConfig {
            binds: Some(binds.iter().map(|b| b.to_string()).collect()),
            mounts: mounts.as_array().cloned(),
            ..HostConfig::default()
        }
    }

    #[test]
    fn binds_parse_like_moby() {
        let p = parse_bind("/tmp:/data:ro").unwrap();
        assert_eq!(
            (p.kind, p.source.as_str(), p.destination.as_str(), p.rw),
            (MountKind::Bind, "/tmp", "/data", false)
        );
        assert_eq!(
            (p.mode.as_str(), p.propagation.as_str()),
            ("ro", "rprivate")
        );
        assert!(p.create_host_path);
        let v = parse_bind("cache:/var/cache/").unwrap();
        assert_eq!(
            (v.kind, v.source.as_str(), v.destination.as_str()),
            (MountKind::Volume, "cache", "/var/cache")
        );
        assert_eq!((v.mode.as_str(), v.named, v.copy_data), ("z", true, true));
        let v = parse_bind("cache:/c:ro,nocopy").unwrap();
        assert!(!v.rw && !v.copy_data);
        let s = parse_bind("/a:/b:rshared").unwrap();
        assert_eq!(s.propagation, "rshared");
        assert_eq!(
            parse_bind("a:b:c:d").unwrap_err(),
            "invalid volume specification: 'a:b:c:d'"
        );
        assert_eq!(parse_bind("/a:/b:rx").unwrap_err(), "invalid mode: rx");
        assert_eq!(
            parse_bind("/foo:rw").unwrap_err(),
            "invalid volume specification: '/foo:rw'"
        );
        assert!(parse_bind("/a:/b:ro,cached").is_ok());
        assert_eq!(
            parse_bind("/a:/b:ro,rw").unwrap_err(),
            "invalid mode: ro,rw"
        );
        assert_eq!(
            parse_bind("v:rel").unwrap_err(),
            "invalid volume specification: 'v:rel': invalid mount config for type \"volume\": invalid mount path: 'rel' mount path must be absolute"
        );
    }

    #[test]
    fn mounts_are_checked_like_moby() {
        let err = plan(
            &ContainerConfig::default(),
            &host(
                &[],
                serde_json::json!([{"Type": "bind", "Source": "/no/such/dir", "Target": "/x"}]),
            ),
            vec![],
        )
        .unwrap_err();
        assert_eq!(
            err,
            "invalid mount config for type \"bind\": bind source path does not exist: /no/such/dir"
        );
        let ok = plan(
            &ContainerConfig::default(),
            &host(
                &[],
                serde_json::json!([
                    {"Type": "bind", "Source": "/tmp", "Target": "/b", "ReadOnly": true,
                     "BindOptions": {"Propagation": "rslave"}},
                    {"Type": "volume", "Target": "/v", "VolumeOptions": {"NoCopy": true}},
                    {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 0o1770}}
                ]),
            ),
            vec![],
        )
        .unwrap();
        assert_eq!(ok.len(), 3);
        assert_eq!((ok[0].rw, ok[0].propagation.as_str()), (false, "rslave"));
        assert_eq!(ok[1].tmpfs_options, ["mode=1770", "size=1m"]);
        assert_eq!(
            (ok[2].named, ok[2].copy_data, ok[2].mode.as_str()),
            (false, false, "z")
        );
        for (spec, want) in [
            (
                serde_json::json!({"Type": "tmpfs", "Source": "x", "Target": "/t"}),
                "invalid mount config for type \"tmpfs\": field Source must not be specified",
            ),
            (
                serde_json::json!({"Type": "volume", "Target": ""}),
                "invalid mount config for type \"volume\": field Target must not be empty",
            ),
            (
                serde_json::json!({"Type": "bind", "Source": "/tmp", "Target": "/b", "BindOptions": {"Propagation": "up"}}),
                "invalid mount config for type \"bind\": invalid propagation mode: up",
            ),
            (
                serde_json::json!({"Type": "volume", "Target": "/v", "ReadOnly": true}),
                "invalid mount config for type \"volume\": must not set ReadOnly mode when using anonymous volumes",
            ),
            (
                serde_json::json!({"Type": "bind", "Source": "/tmp", "Target": "/"}),
                "invalid mount config for type \"bind\": invalid specification: destination can't be '/'",
            ),
            (
                serde_json::json!({"Type": "nfs", "Target": "/b"}),
                "invalid mount config for type \"nfs\": mount type unknown",
            ),
        ] {
            let err = plan(
                &ContainerConfig::default(),
                &host(&[], serde_json::json!([spec])),
                vec![],
            )
            .unwrap_err();
            assert_eq!(err, want);
        }
    }

    #[test]
    fn order_duplicates_and_image_volumes() {
        let config = ContainerConfig {
            volumes: Some(
                [
                    ("/data".to_owned(), Default::default()),
                    ("/logs/".to_owned(), Default::default()),
                ]
                .into(),
            ),
            ..ContainerConfig::default()
        };
        let from = vec![(
            vec![
                MountPoint::volume("shared", "/s"),
                MountPoint::volume("old", "/data"),
            ],
            true,
        )];
        let points = plan(
            &config,
            &host(&["named:/data"], serde_json::json!([])),
            from,
        )
        .unwrap();
        let by_dest: BTreeMap<&str, &MountPoint> =
            points.iter().map(|p| (p.destination.as_str(), p)).collect();
        assert_eq!(
            by_dest["/data"].source, "named",
            "binds replace volumes-from"
        );
        assert_eq!(by_dest["/logs"].source, "", "image volume is anonymous");
        assert!(!by_dest["/s"].rw, "volumes-from :ro");
        assert!(!by_dest["/s"].copy_data, "filled by its first container");
        let mut with_tmpfs = host(&["/tmp:/x"], serde_json::json!([]));
        with_tmpfs.tmpfs = Some([("/x/".to_owned(), String::new())].into());
        assert_eq!(
            plan(&config, &with_tmpfs, vec![]).unwrap_err(),
            "Duplicate mount point: /x"
        );
        let err = plan(
            &config,
            &host(
                &["/tmp:/x"],
                serde_json::json!([{"Type": "volume", "Target": "/x"}]),
            ),
            vec![],
        )
        .unwrap_err();
        assert_eq!(err, "Duplicate mount point: /x");
        let legacy = legacy_binds(&host(&["/tmp:/t:ro", "named:/n"], serde_json::json!([])));
        assert_eq!(legacy.len(), 1);
        assert_eq!((legacy[0].source.as_str(), legacy[0].rw), ("/tmp", false));
        let mut plugin = host(&["v:/v"], serde_json::json!([]));
        plugin.volume_driver = "convoy".to_owned();
        let points = plan(&config, &plugin, vec![]).unwrap();
        assert!(points.iter().all(|p| p.driver == "convoy"), "{points:?}");
        assert_eq!(parse_volumes_from("c1:ro").unwrap(), ("c1", true));
        assert_eq!(parse_volumes_from("c1").unwrap(), ("c1", false));
        assert!(parse_volumes_from("c1:bogus").is_err());
    }
}

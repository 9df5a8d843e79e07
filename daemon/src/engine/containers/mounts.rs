//! Getting a container's mount points ready at start: `-v` host
//! directories that are missing are made (Docker does; `--mount` refused
//! them at create), volumes with driver options are mounted, empty volumes
//! are filled from the image (copy-up), and `--mount type=tmpfs` joins the
//! `--tmpfs` mounts.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Mount;

use super::{ContainerError, ContainerStore, Record, io_err};
use crate::api::containers_types::HostConfig;
use crate::engine::volumes::MountKind;
use crate::engine::volumes::copyup::open_in_root;

impl ContainerStore {
    /// The OCI mounts of `record`'s mount points, and its `HostConfig`
    /// with `--mount` tmpfs entries folded into `Tmpfs`. `rootfs` is the
    /// container's mounted root (the copy-up source).
    pub(super) fn prepare_mounts(
        &self,
        record: &Record,
        rootfs: &Path,
    ) -> Result<(Vec<Mount>, HostConfig), ContainerError> {
        let mut host = record.host_config.clone();
        let mut mounts = Vec::new();
        for point in &record.mount_points {
            let source = match point.kind {
                MountKind::Tmpfs => {
                    host.tmpfs
                        .get_or_insert_with(Default::default)
                        .insert(point.destination.clone(), point.tmpfs_options.join(","));
                    continue;
                }
                MountKind::Bind => {
                    let source = PathBuf::from(&point.source);
                    if point.create_host_path && !source.exists() {
                        std::fs::create_dir_all(&source)
                            .map_err(io_err("creating bind source", &source))?;
                    }
                    source
                }
                MountKind::Volume => {
                    let data = self.volumes.activate(point, &record.id)?;
                    if point.copy_data {
                        let image_dir = open_in_root(rootfs, &point.destination).map_err(
                            io_err("opening in the rootfs", Path::new(&point.destination)),
                        )?;
                        if let Some(dir) = image_dir {
                            let path = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
                            self.volumes.copy_up(&point.source, &path)?;
                        }
                    }
                    data
                }
            };
            mounts.push(
                point
                    .oci_mount(&source)
                    .map_err(ContainerError::InvalidConfig)?,
            );
        }
        Ok((mounts, host))
    }
}

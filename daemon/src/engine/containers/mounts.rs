//! A container's volumes at create and start. At create, volumes that are
//! empty are filled from the image (copy-up; moby's `populateVolumes`),
//! with the new container's rootfs mounted for the copy. At start, `-v`
//! host directories that are missing are made (Docker does; `--mount`
//! refused them at create), volumes with driver options are mounted, and
//! `--mount type=tmpfs` joins the `--tmpfs` mounts.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use berth_core::{mount_all, unmount};
use berth_snapshotter::Snapshotter;

use oci_spec::runtime::Mount;

use super::{ContainerError, ContainerStore, Record, io_err};
use crate::api::containers_types::HostConfig;
use crate::engine::volumes::MountKind;
use crate::engine::volumes::copyup::open_in_root;

impl ContainerStore {
    /// Copies the image's content into the container's empty volumes
    /// (those not marked `nocopy`), from its writable snapshot mounted at
    /// the bundle's `rootfs` for the time of the copy.
    pub(super) fn populate_volumes(&self, record: &Record) -> Result<(), ContainerError> {
        let wanted: Vec<_> = record
            .mount_points
            .iter()
            .filter(|p| p.kind == MountKind::Volume && p.copy_data)
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let rootfs = self.rootfs_path(&record.id);
        std::fs::create_dir_all(&rootfs).map_err(io_err("creating directory", &rootfs))?;
        mount_all(&self.images.snapshots.mounts(&record.id)?, &rootfs)?;
        let copied = wanted.into_iter().try_for_each(|point| {
            let image_dir = open_in_root(&rootfs, &point.destination).map_err(io_err(
                "opening in the rootfs",
                Path::new(&point.destination),
            ))?;
            if let Some(dir) = image_dir {
                let path = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
                self.volumes.copy_up(&point.source, &path)?;
            }
            Ok::<(), ContainerError>(())
        });
        let unmounted = unmount(&rootfs);
        copied?;
        Ok(unmounted?)
    }

    /// The OCI mounts of `record`'s mount points, and its `HostConfig`
    /// with `--mount` tmpfs entries folded into `Tmpfs`.
    pub(super) fn prepare_mounts(
        &self,
        record: &Record,
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
                MountKind::Volume => self.volumes.activate(point, &record.id)?,
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

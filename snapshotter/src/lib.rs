//! `berth-snapshotter`: applies image layers (tar streams) into snapshot
//! directories and describes the overlay mounts of a container's rootfs.

#![forbid(unsafe_code)]

pub mod apply;

//! Test support shared by the integration tests of Berth's crates (a
//! dev-dependency only): a real `docker-registry` on loopback, fixture
//! images and layers, a busybox root file system for `docker import`, a
//! private `berthd`, the docker CLI and docker-py with private config, a
//! small DNS client (UDP and TCP), the fallback cleanup of processes and
//! mounts a test leaves under its temp dir, and polling for a condition.
//!
//! Everything here starts real programs; nothing is mocked.

#![forbid(unsafe_code)]

pub mod berthd;
pub mod cleanup;
pub mod dns;
pub mod docker;
pub mod image;
pub mod pytest;
pub mod registry;
pub mod rootfs;
pub mod wait;

//! Warming a process that is about to create a container (the standby
//! shim, idle until its container comes).
//!
//! In a fresh process the create's first parse of a spec, compile of a
//! seccomp filter and read of the cgroup layout pay for page faults and
//! cold caches (in a standby shim's create: the layout ~0.2 ms, Docker's
//! default profile ~0.25 ms, which a warm loop compiles in ~0.06 ms).
//! [`prewarm`] runs that code once, ahead, on Docker's default profile,
//! and keeps the cgroup layout for the create (measured in the create
//! after it: the layout ~0, the compile ~0.2 ms).

use oci_spec::runtime::LinuxSeccomp;

use crate::cgroups::prewarm_layout;

/// Docker's default seccomp profile in OCI form (what berthd and dockerd
/// send for the default capabilities), as representative input.
const DOCKER_DEFAULT_PROFILE: &str = include_str!("../tests/fixtures/docker-default-seccomp.json");

/// Runs the create's costly first-time paths once (see the module doc).
/// Best effort: failures only mean the create pays as before.
pub fn prewarm() {
    prewarm_layout();
    if let Ok(profile) = serde_json::from_str::<LinuxSeccomp>(DOCKER_DEFAULT_PROFILE) {
        let _ = crate::seccomp::compile(&profile);
    }
}

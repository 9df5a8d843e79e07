//! `update`: change the resource limits of a live container's cgroup.

use oci_spec::runtime::LinuxResources;

use super::load_for;
use crate::cgroups::ContainerCgroup;
use crate::error::Result;
use crate::state::{Root, Status};

/// Writes the limits `resources` sets (and only those) into the cgroup of
/// a created, running or paused container.
pub fn update(root: &Root, id: &str, resources: &LinuxResources) -> Result<()> {
    let (state, _) = load_for(
        root,
        id,
        "update",
        Status::can_update,
        "created, running or paused",
    )?;
    Ok(ContainerCgroup::open(&state.cgroup_path)?.update(resources)?)
}

//! `pause` and `resume`: freeze and thaw the container's cgroup.

use super::load_for;
use crate::cgroups::ContainerCgroup;
use crate::error::Result;
use crate::state::{Root, Status};

pub fn pause(root: &Root, id: &str) -> Result<()> {
    let (state, _) = load_for(root, id, "pause", Status::can_pause, "running")?;
    Ok(ContainerCgroup::open(&state.cgroup_path)?.freeze()?)
}

pub fn resume(root: &Root, id: &str) -> Result<()> {
    let (state, _) = load_for(root, id, "resume", Status::can_resume, "paused")?;
    Ok(ContainerCgroup::open(&state.cgroup_path)?.thaw()?)
}

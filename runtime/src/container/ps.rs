//! `ps`: the processes in the container's cgroup.

use crate::cgroups::ContainerCgroup;
use crate::error::Result;
use crate::state::Root;

/// Host pids of every process in the container, sorted.
pub fn pids(root: &Root, id: &str) -> Result<Vec<i32>> {
    let state = root.load(id)?;
    let mut pids = ContainerCgroup::open(&state.cgroup_path)?.pids()?;
    pids.sort_unstable();
    Ok(pids)
}

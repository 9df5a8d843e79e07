//! The container verbs, one file each, as the runc command line has them.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::error::{Result, RuntimeError};
use crate::state::{ContainerState, Root, Status};

mod create;
pub(crate) mod delete;
mod exec;
mod hooks;
mod kill;
mod pause;
mod ps;
mod run;
mod start;
mod update;

pub use create::{CreateOptions, Held, create, create_held};
pub use delete::delete;
pub use exec::{ExecOptions, exec};
pub use kill::{kill, parse_signal};
pub use pause::{pause, resume};
pub use ps::pids;
pub use run::run;
pub use start::{start, start_held};
pub use update::update;

/// Reads and parses `<bundle>/config.json`.
pub fn load_spec(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let data = std::fs::read(&path).map_err(|e| RuntimeError::ReadSpec {
        path: path.clone(),
        source: e,
    })?;
    serde_json::from_slice(&data).map_err(|e| RuntimeError::ParseSpec { path, source: e })
}

/// The spec saved in the container's state directory at create time.
pub(crate) fn saved_spec(root: &Root, id: &str) -> Result<Spec> {
    let path = root.container_dir(id).join("config.json");
    let data = std::fs::read(&path).map_err(|e| RuntimeError::io("reading", &path, e))?;
    serde_json::from_slice(&data).map_err(|e| RuntimeError::CorruptState {
        id: id.to_string(),
        reason: e.to_string(),
    })
}

/// Loads a container and checks its status allows `action`.
pub(crate) fn load_for(
    root: &Root,
    id: &str,
    action: &'static str,
    allowed: fn(Status) -> bool,
    expected: &'static str,
) -> Result<(ContainerState, Status)> {
    let state = root.load(id)?;
    let status = state.status(root);
    if !allowed(status) {
        return Err(RuntimeError::WrongStatus {
            id: id.to_string(),
            status: status.as_str(),
            action,
            expected,
        });
    }
    Ok((state, status))
}

/// The container's cgroup path: the spec's, or `/berth/<id>`.
pub(crate) fn cgroup_path(spec: &Spec, id: &str) -> PathBuf {
    spec.linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone())
        .unwrap_or_else(|| PathBuf::from(format!("/berth/{id}")))
}

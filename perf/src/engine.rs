//! The OCI runtimes compared by the runtime scenarios: Berth's
//! `berth-runtime` and its peers `crun` and `runc`, all driven through the
//! same runc-style command line.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process;

/// Name of Berth's engine in reports; the baseline of every ratio.
pub(crate) const BERTH: &str = "berth";

/// An engine that was found and can be tried.
#[derive(Debug, Clone)]
pub(crate) struct Engine {
    /// Short name in reports: `berth`, `crun`, `runc`.
    pub(crate) name: &'static str,
    pub(crate) bin: PathBuf,
    /// First line of `<bin> --version`.
    pub(crate) version: Option<String>,
}

/// An engine that was looked for and is not usable.
#[derive(Debug, Clone)]
pub(crate) struct Missing {
    pub(crate) name: &'static str,
    pub(crate) reason: String,
}

/// Finds Berth's runtime and the peers, Berth first. `runtime_bin` overrides
/// where `berth-runtime` is looked for; by default it is the binary next to
/// this one (same cargo target dir), then the PATH.
pub(crate) fn discover(runtime_bin: Option<&Path>) -> Vec<Result<Engine, Missing>> {
    let berth = match runtime_bin {
        Some(p) if p.is_file() => Ok(p.to_path_buf()),
        Some(p) => Err(format!("--runtime-bin {} does not exist", p.display())),
        None => sibling("berth-runtime")
            .or_else(|| which("berth-runtime"))
            .ok_or_else(|| "berth-runtime not found next to berth-perf nor on PATH".to_string()),
    };
    let found = |name: &'static str, bin: Result<PathBuf, String>| match bin {
        Ok(bin) => Ok(Engine {
            name,
            version: version(&bin),
            bin,
        }),
        Err(reason) => Err(Missing { name, reason }),
    };
    vec![
        found(BERTH, berth),
        found(
            "crun",
            which("crun").ok_or_else(|| "crun not installed".into()),
        ),
        found(
            "runc",
            which("runc").ok_or_else(|| "runc not installed".into()),
        ),
    ]
}

pub(crate) fn sibling(name: &str) -> Option<PathBuf> {
    let exe = env::current_exe().ok()?;
    let p = exe.parent()?.join(name);
    p.is_file().then_some(p)
}

/// Looks `name` up on PATH, then in the sbin directories root's PATH has
/// (runc lives in /usr/sbin).
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .chain(
            [
                "/usr/local/sbin",
                "/usr/local/bin",
                "/usr/sbin",
                "/usr/bin",
                "/sbin",
                "/bin",
            ]
            .map(PathBuf::from),
        )
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// First line of `<bin> --version`. A throwaway `--root` keeps crun from
/// creating /run/crun just to print its version.
pub(crate) fn version(bin: &Path) -> Option<String> {
    let root = tempfile::tempdir().ok()?;
    let mut cmd = Command::new(bin);
    cmd.arg("--root").arg(root.path()).arg("--version");
    let (_, text, _) = process::output(&mut cmd, Duration::from_secs(5)).ok()?;
    text.lines()
        .next()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
}

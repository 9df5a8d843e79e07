//! `berth-perf setup`: makes this host ready for the benchmarks, idempotently
//! and with a progress line per step. For now: the Debian packages of the
//! peers and fixtures (runc, crun, busybox-static) and the hybrid-cgroup fix
//! crun 1.8 needs (ENVIRONMENT.md).

use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

use crate::engine;
use crate::host;

/// Debian packages the runtime scenarios need.
const PACKAGES: &[&str] = &["runc", "crun", "busybox-static"];

pub(crate) fn setup() -> anyhow::Result<()> {
    let missing: Vec<&str> = PACKAGES.iter().copied().filter(|p| !installed(p)).collect();
    for p in PACKAGES.iter().filter(|p| !missing.contains(p)) {
        println!("setup: package {p}: installed");
    }
    if !missing.is_empty() {
        println!("setup: installing {} with apt-get", missing.join(" "));
        if !apt_install(&missing)? {
            println!("setup: apt-get install failed, running apt-get update and retrying");
            run("apt-get", &["update", "-q"])?;
            if !apt_install(&missing)? {
                bail!("apt-get install {} failed", missing.join(" "));
            }
        }
        println!("setup: installed {}", missing.join(" "));
    }
    for bin in ["crun", "runc"] {
        match engine::which(bin).and_then(|p| engine::version(&p)) {
            Some(v) => println!("setup: {bin}: {v}"),
            None => println!("setup: {bin}: not runnable"),
        }
    }
    println!("setup: cgroups: {}", host::cgroup_mode());
    if host::apply_hugetlb_fix()? {
        println!("setup: mounted hugetlb as a v1 hierarchy at /sys/fs/cgroup/hugetlb (for crun)");
    } else {
        println!("setup: hugetlb cgroup fix: in place or not needed");
    }
    println!("setup: done");
    Ok(())
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

fn apt_install(packages: &[&str]) -> anyhow::Result<bool> {
    let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
    args.extend_from_slice(packages);
    Ok(Command::new("apt-get")
        .args(&args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get")?
        .success())
}

fn run(cmd: &str, args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(cmd)
        .args(args)
        .status()
        .with_context(|| format!("running {cmd}"))?;
    if !status.success() {
        bail!("{cmd} {} failed: {status}", args.join(" "));
    }
    Ok(())
}

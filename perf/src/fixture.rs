//! Test fixtures shared by all engines: an OCI bundle whose rootfs is
//! Debian's static busybox plus its applet symlinks, and whose config is
//! `runc spec` patched to run `/bin/true` without a terminal.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail, ensure};

/// Where Debian's `busybox-static` installs its binary.
pub(crate) const HOST_BUSYBOX: &str = "/bin/busybox";

/// Empty directories every rootfs gets (mount points and scratch).
const ROOTFS_DIRS: &[&str] = &["bin", "proc", "sys", "dev", "tmp", "etc", "root", "run"];

/// Builds a busybox bundle in `dir` (created; must not exist or be empty)
/// running `args`, and returns `dir`. `spec_tool` is the runtime whose
/// `spec` verb writes the default config.json (runc, or crun without runc).
pub(crate) fn busybox_bundle(
    dir: &Path,
    spec_tool: &Path,
    args: &[&str],
) -> anyhow::Result<PathBuf> {
    let rootfs = dir.join("rootfs");
    for d in ROOTFS_DIRS {
        fs::create_dir_all(rootfs.join(d)).with_context(|| format!("creating rootfs/{d}"))?;
    }
    let busybox = Path::new(HOST_BUSYBOX);
    ensure!(
        busybox.is_file(),
        "{HOST_BUSYBOX} missing: install busybox-static (berth-perf setup)"
    );
    let elf = fs::read(busybox).with_context(|| format!("reading {HOST_BUSYBOX}"))?;
    ensure!(
        !has_interpreter(&elf),
        "{HOST_BUSYBOX} is dynamically linked: install busybox-static (berth-perf setup)"
    );
    fs::copy(busybox, rootfs.join("bin/busybox")).context("copying busybox into the rootfs")?;

    let list = Command::new(busybox)
        .arg("--list")
        .output()
        .context("running busybox --list")?;
    ensure!(
        list.status.success(),
        "busybox --list failed: {}",
        list.status
    );
    for applet in String::from_utf8_lossy(&list.stdout).lines().map(str::trim) {
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        symlink("busybox", rootfs.join("bin").join(applet))
            .with_context(|| format!("linking applet {applet}"))?;
    }

    let out = Command::new(spec_tool)
        .arg("spec")
        .current_dir(dir)
        .output()
        .with_context(|| format!("running {} spec", spec_tool.display()))?;
    if !out.status.success() {
        bail!(
            "{} spec failed: {}: {}",
            spec_tool.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let config_path = dir.join("config.json");
    let config = fs::read(&config_path).context("reading the generated config.json")?;
    let config = patch_config(serde_json::from_slice(&config)?, args)?;
    fs::write(&config_path, serde_json::to_vec_pretty(&config)?).context("writing config.json")?;
    Ok(dir.to_path_buf())
}

/// Sets `process.terminal = false` and `process.args = args`.
pub(crate) fn patch_config(
    mut config: serde_json::Value,
    args: &[&str],
) -> anyhow::Result<serde_json::Value> {
    let process = config
        .get_mut("process")
        .and_then(|p| p.as_object_mut())
        .context("config.json has no process object")?;
    process.insert("terminal".into(), false.into());
    process.insert(
        "args".into(),
        args.iter().map(|a| serde_json::Value::from(*a)).collect(),
    );
    Ok(config)
}

/// Whether an ELF64 file has a PT_INTERP program header (is dynamically
/// linked). Anything unparsable counts as static: the container run will
/// tell.
fn has_interpreter(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| {
        elf.get(o..o + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
    };
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
    };
    if elf.get(..5) != Some(b"\x7fELF\x02") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..usize::from(phnum)).any(|i| {
        let off = phoff as usize + i * usize::from(phentsize);
        u32_at(off) == Some(PT_INTERP)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_sets_args_and_terminal() {
        let spec = serde_json::json!({"process": {"terminal": true, "args": ["sh"], "cwd": "/"}});
        let patched = patch_config(spec, &["/bin/true"]).unwrap();
        assert_eq!(patched["process"]["terminal"], false);
        assert_eq!(patched["process"]["args"], serde_json::json!(["/bin/true"]));
        assert_eq!(patched["process"]["cwd"], "/");
        assert!(patch_config(serde_json::json!({}), &["x"]).is_err());
    }

    #[test]
    fn host_busybox_is_static_and_ls_is_not() {
        if let Ok(elf) = fs::read(HOST_BUSYBOX) {
            assert!(!has_interpreter(&elf));
        }
        if let Ok(elf) = fs::read("/bin/ls") {
            assert!(has_interpreter(&elf));
        }
    }
}

//! Users and groups by name, from the container's own `/etc/passwd` and
//! `/etc/group`, read without following symlinks out of the rootfs.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::SpecError;

/// A resolved process identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolvedUser {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) additional_gids: Vec<u32>,
}

/// One `name:x:id:...` line of `/etc/passwd` or `/etc/group`.
#[derive(Debug)]
struct Entry {
    name: String,
    id: u32,
    /// passwd: the primary gid; group: unused.
    gid: u32,
    /// group: its members.
    members: Vec<String>,
}

/// Reads `/etc/<file>` of the rootfs without following a symlink out of it.
fn read_entries(rootfs: &Path, file: &str, group_file: bool) -> Result<Vec<Entry>, SpecError> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let path = Path::new("etc").join(file);
    let io_err = |source: std::io::Error| SpecError::RootfsFile {
        path: rootfs.join(&path),
        source,
    };
    let root = match rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(root) => root,
        Err(err) => return Err(io_err(err.into())),
    };
    let fd = match rustix::fs::openat2(
        &root,
        &path,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        // No passwd or group file: only numeric ids resolve.
        Err(rustix::io::Errno::NOENT) => return Ok(Vec::new()),
        Err(err) => return Err(io_err(err.into())),
    };
    let mut entries = Vec::new();
    for line in BufReader::new(File::from(fd)).lines() {
        let line = line.map_err(io_err)?;
        let fields: Vec<&str> = line.split(':').collect();
        if line.starts_with('#') || fields.len() < 3 {
            continue;
        }
        let Ok(id) = fields[2].parse() else { continue };
        let (gid, members) = if group_file {
            let members = fields
                .get(3)
                .map(|m| {
                    m.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            (0, members)
        } else {
            (
                fields.get(3).and_then(|g| g.parse().ok()).unwrap_or(0),
                vec![],
            )
        };
        entries.push(Entry {
            name: fields[0].to_owned(),
            id,
            gid,
            members,
        });
    }
    Ok(entries)
}

/// Resolves `user[:group]` (names or numbers) against the rootfs's
/// `/etc/passwd` and `/etc/group` as runc's `GetExecUser` does for dockerd:
/// the primary gid comes first in the additional gids, then (without an
/// explicit group) the groups listing the user, then `--group-add`.
pub(crate) fn resolve_user(
    rootfs: &Path,
    spec: &str,
    group_add: &[String],
) -> Result<ResolvedUser, SpecError> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = read_entries(rootfs, "passwd", false)?;
    let groups = read_entries(rootfs, "group", true)?;

    let numeric_user = user_part.parse::<u32>().ok();
    let user_entry = if user_part.is_empty() {
        passwd.iter().find(|e| e.id == 0)
    } else {
        passwd
            .iter()
            .find(|e| e.name == user_part || Some(e.id) == numeric_user)
    };
    let (uid, mut gid, user_name) = match (user_entry, numeric_user) {
        (Some(entry), _) => (entry.id, entry.gid, Some(entry.name.as_str())),
        (None, Some(uid)) => (uid, 0, None),
        (None, None) if user_part.is_empty() => (0, 0, None),
        (None, None) => return Err(SpecError::UserNotFound(user_part.to_owned())),
    };
    let find_group = |group: &str| -> Result<u32, SpecError> {
        let numeric = group.parse::<u32>().ok();
        groups
            .iter()
            .find(|e| e.name == group || Some(e.id) == numeric)
            .map(|e| e.id)
            .or(numeric)
            .ok_or_else(|| SpecError::GroupNotFound(group.to_owned()))
    };
    let mut additional = Vec::new();
    match group_part {
        Some(group) if !group.is_empty() => {
            gid = find_group(group)?;
            additional.push(gid);
        }
        _ => {
            additional.push(gid);
            if let Some(name) = user_name {
                additional.extend(
                    groups
                        .iter()
                        .filter(|g| g.members.iter().any(|m| m == name))
                        .map(|g| g.id),
                );
            }
        }
    }
    for group in group_add {
        additional.push(find_group(group)?);
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids: additional,
    })
}

//! The build cache: a layer step (RUN, COPY, ADD, WORKDIR) whose stage
//! was made of the same base and steps, and whose own identity (the
//! command with its build args, the copied content, the directory) is the
//! same, reuses the layer, history entry and runtime config the step made
//! before, as moby's legacy builder does.
//!
//! Keys chain: a stage starts from its base (image ID, `scratch`, or the
//! earlier stage's key) and every step adds its identity, so a changed
//! step misses and so does everything after it. Config steps add what
//! they set (their history text and the runtime config), which carries
//! `ARG` values and `ENV` into the key. Entries live in the metadata
//! store's `build-cache` table; one whose layer blob was collected since
//! counts as a miss. Copied content is hashed by name, type, mode, owner,
//! link target and bytes (not times, as moby's cache ignores them).

use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};

use berth_core::archive::BuiltLayer;
use berth_core::{Digest, Digester};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::BuildError;

/// kv table: cache key -> [`Entry`].
const TABLE: &str = "build-cache";

/// What a layer step made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub(crate) layer: Option<BuiltLayer>,
    /// The step's history entry.
    pub(crate) history: Value,
    /// The runtime config after the step.
    pub(crate) config: Value,
}

/// The key after a step with `identity` on a stage keyed `previous`.
pub(crate) fn chain(previous: &Digest, identity: &str) -> Digest {
    let mut d = Digester::new();
    d.update(previous.to_string().as_bytes());
    d.update(b"\n");
    d.update(identity.as_bytes());
    d.finish()
}

pub(crate) fn lookup(
    metadata: &berth_core::MetadataStore,
    key: &Digest,
) -> Result<Option<Entry>, BuildError> {
    metadata
        .get::<Entry>(TABLE, &key.hex())
        .map_err(BuildError::Cache)
}

pub(crate) fn store(
    metadata: &berth_core::MetadataStore,
    key: &Digest,
    entry: &Entry,
) -> Result<(), BuildError> {
    metadata
        .put(TABLE, &key.hex(), entry)
        .map_err(BuildError::Cache)
}

/// Deletes every entry; returns their keys. The layers stay: they are
/// the images' (or garbage, collected with the images' blobs).
pub(crate) fn prune(metadata: &berth_core::MetadataStore) -> Result<Vec<String>, BuildError> {
    let entries = metadata
        .list_table::<Value>(TABLE)
        .map_err(BuildError::Cache)?;
    let mut removed = Vec::new();
    for (key, _) in entries {
        if metadata.delete(TABLE, &key).map_err(BuildError::Cache)? {
            removed.push(key);
        }
    }
    Ok(removed)
}

/// Hashes what `fd` (opened beneath the context) holds, named `name`.
pub(crate) fn hash_node(d: &mut Digester, fd: &OwnedFd, name: &str) -> io::Result<()> {
    let st = rustix::fs::fstat(fd)?;
    hash_stat(d, name, &st, "");
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => hash_dir(d, fd, name),
        FileType::RegularFile => hash_content(d, fd),
        _ => Ok(()),
    }
}

fn hash_stat(d: &mut Digester, name: &str, st: &rustix::fs::Stat, link: &str) {
    d.update(
        format!(
            "{name}\0{:o}\0{}:{}\0{}\0{link}\n",
            st.st_mode, st.st_uid, st.st_gid, st.st_size
        )
        .as_bytes(),
    );
}

fn hash_content(d: &mut Digester, fd: &OwnedFd) -> io::Result<()> {
    let mut file = std::fs::File::from(fd.try_clone()?);
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        d.update(&buf[..n]);
    }
}

/// Children in name order, never following symlinks.
fn hash_dir(d: &mut Digester, dir: &OwnedFd, prefix: &str) -> io::Result<()> {
    let reader = rustix::fs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut names: Vec<Vec<u8>> = rustix::fs::Dir::read_from(&reader)?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_bytes().to_vec())
        .filter(|n| n != b"." && n != b"..")
        .collect();
    names.sort();
    for name in names {
        let text = format!("{prefix}/{}", String::from_utf8_lossy(&name));
        let st = rustix::fs::statat(dir.as_fd(), name.as_slice(), AtFlags::SYMLINK_NOFOLLOW)?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Symlink => {
                let link = rustix::fs::readlinkat(dir.as_fd(), name.as_slice(), Vec::new())?;
                hash_stat(d, &text, &st, &link.to_string_lossy());
            }
            FileType::Directory => {
                hash_stat(d, &text, &st, "");
                let child = rustix::fs::openat(
                    dir.as_fd(),
                    name.as_slice(),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                hash_dir(d, &child, &text)?;
            }
            FileType::RegularFile => {
                hash_stat(d, &text, &st, "");
                let child = rustix::fs::openat(
                    dir.as_fd(),
                    name.as_slice(),
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                hash_content(d, &child)?;
            }
            _ => hash_stat(d, &text, &st, ""),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_chain_and_differ_by_step() {
        let base = Digest::of(b"base");
        let a = chain(&base, "RUN echo a");
        assert_eq!(a, chain(&base, "RUN echo a"));
        assert_ne!(a, chain(&base, "RUN echo b"));
        assert_ne!(chain(&a, "x"), chain(&base, "x"));
    }

    #[test]
    fn content_hash_ignores_times_but_not_bytes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/f"), "one").unwrap();
        let hash = || {
            let fd = rustix::fs::open(
                dir.path(),
                OFlags::RDONLY | OFlags::DIRECTORY,
                Mode::empty(),
            )
            .unwrap();
            let mut d = Digester::new();
            hash_node(&mut d, &fd, "ctx").unwrap();
            d.finish()
        };
        let first = hash();
        let file = std::fs::File::options()
            .write(true)
            .open(dir.path().join("d/f"))
            .unwrap();
        file.set_modified(std::time::SystemTime::UNIX_EPOCH)
            .unwrap();
        assert_eq!(hash(), first);
        std::fs::write(dir.path().join("d/f"), "two").unwrap();
        assert_ne!(hash(), first);
    }
}

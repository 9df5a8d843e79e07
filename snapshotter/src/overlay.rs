//! The overlay snapshotter: every snapshot is a directory, stacked with
//! overlayfs (containerd's `overlayfs` snapshotter).
//!
//! ```text
//! <root>/metadata.redb            key -> {id, kind, parent, created, usage}
//! <root>/snapshots/<id>/fs        the snapshot's own layer (upperdir)
//! <root>/snapshots/<id>/work      overlayfs workdir (active snapshots)
//! ```
//!
//! Directories are named by short numeric ids, not by keys, so keys can be
//! any string and overlay option strings stay short.
//!
//! Mounts: an active snapshot without parent is a read-write bind of its
//! `fs`; a view of one committed layer is a read-only bind of that layer;
//! everything else is an overlay with `lowerdir` listing the parents
//! nearest first (plus `upperdir`/`workdir` when writable).
//!
//! Crash safety: write transactions are short (a lookup, at most two
//! `mkdir`s, an insert). A snapshot's directory is created before its
//! record is committed, and a record is deleted before its directory, so
//! after a crash the only leftovers are directories without a record; they
//! are removed when the snapshotter is opened.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_core::Mount;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::snapshot::{Info, Kind, SnapshotError, Snapshotter, Usage};

const SNAPSHOTS: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshots");
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
const NEXT_ID: &str = "next_id";

/// A snapshot's stored record.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Record {
    id: u64,
    kind: Kind,
    parent: Option<String>,
    /// Nanoseconds since the Unix epoch.
    created: u64,
    /// Measured by the first `usage` call after the commit (not at commit:
    /// walking a fresh layer costs a stat per file on a pull's critical
    /// path); `None` until then and while the snapshot can change.
    usage: Option<(u64, u64)>,
}

/// Snapshots as overlayfs directories under one root.
#[derive(Debug)]
pub struct OverlaySnapshotter {
    root: PathBuf,
    db: Database,
}

fn meta_err(e: impl Into<redb::Error>) -> SnapshotError {
    SnapshotError::Metadata(Box::new(e.into()))
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

fn decode(key: &str, bytes: &[u8]) -> Result<Record, SnapshotError> {
    serde_json::from_slice(bytes).map_err(|e| {
        SnapshotError::Metadata(format!("record of snapshot {key:?} is corrupt: {e}").into())
    })
}

fn encode(record: &Record) -> Vec<u8> {
    serde_json::to_vec(record).expect("a record always serialises")
}

fn get(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<Record>, SnapshotError> {
    match table.get(key).map_err(meta_err)? {
        Some(v) => Ok(Some(decode(key, v.value())?)),
        None => Ok(None),
    }
}

fn get_existing(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Record, SnapshotError> {
    get(table, key)?.ok_or_else(|| SnapshotError::NotFound { key: key.into() })
}

/// The ids of `parent` and its ancestors, nearest first.
fn lower_ids(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    parent: Option<&str>,
) -> Result<Vec<u64>, SnapshotError> {
    let mut ids = Vec::new();
    let mut next = parent.map(str::to_owned);
    while let Some(key) = next {
        let record = get_existing(table, &key)?;
        ids.push(record.id);
        next = record.parent;
    }
    Ok(ids)
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl OverlaySnapshotter {
    /// Opens (creating if needed) the snapshotter at `root`, and removes
    /// snapshot directories that have no record (left by a crash).
    pub fn open(root: impl AsRef<Path>) -> Result<Self, SnapshotError> {
        let root = root.as_ref().to_owned();
        let snapshots = root.join("snapshots");
        fs::create_dir_all(&snapshots).map_err(io_err("creating", &snapshots))?;
        let db_path = root.join("metadata.redb");
        let db = Database::create(&db_path).map_err(meta_err)?;
        let this = Self { root, db };

        let txn = this.db.begin_write().map_err(meta_err)?;
        let mut known = HashSet::new();
        let mut max_id = 0;
        {
            let table = txn.open_table(SNAPSHOTS).map_err(meta_err)?;
            for entry in table.iter().map_err(meta_err)? {
                let (k, v) = entry.map_err(meta_err)?;
                let record = decode(k.value(), v.value())?;
                known.insert(record.id);
                max_id = max_id.max(record.id);
            }
            let mut counters = txn.open_table(COUNTERS).map_err(meta_err)?;
            let next = counters
                .get(NEXT_ID)
                .map_err(meta_err)?
                .map_or(1, |v| v.value());
            counters
                .insert(NEXT_ID, next.max(max_id + 1))
                .map_err(meta_err)?;
        }
        txn.commit().map_err(meta_err)?;

        for entry in fs::read_dir(&snapshots).map_err(io_err("reading", &snapshots))? {
            let entry = entry.map_err(io_err("reading", &snapshots))?;
            let recorded = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|id| known.contains(&id));
            if !recorded {
                let path = entry.path();
                fs::remove_dir_all(&path).map_err(io_err("removing orphaned", &path))?;
            }
        }
        Ok(this)
    }

    /// The directory the snapshotter keeps everything in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self, id: u64) -> PathBuf {
        self.root.join("snapshots").join(id.to_string())
    }

    fn fs_dir(&self, id: u64) -> PathBuf {
        self.dir(id).join("fs")
    }

    fn create(
        &self,
        key: &str,
        parent: Option<&str>,
        kind: Kind,
    ) -> Result<Vec<Mount>, SnapshotError> {
        let txn = self.db.begin_write().map_err(meta_err)?;
        let (record, lowers) = {
            let mut table = txn.open_table(SNAPSHOTS).map_err(meta_err)?;
            if get(&table, key)?.is_some() {
                return Err(SnapshotError::AlreadyExists { key: key.into() });
            }
            if let Some(parent) = parent {
                require_committed(&get_existing(&table, parent)?, parent)?;
            }
            let lowers = lower_ids(&table, parent)?;
            let mut counters = txn.open_table(COUNTERS).map_err(meta_err)?;
            let id = counters
                .get(NEXT_ID)
                .map_err(meta_err)?
                .map_or(1, |v| v.value());
            counters.insert(NEXT_ID, id + 1).map_err(meta_err)?;
            let record = Record {
                id,
                kind,
                parent: parent.map(str::to_owned),
                created: now_nanos(),
                usage: None,
            };
            self.make_dirs(&record)?;
            if let Err(e) = table.insert(key, encode(&record).as_slice()) {
                let _ = fs::remove_dir_all(self.dir(id));
                return Err(meta_err(e));
            }
            (record, lowers)
        };
        if let Err(e) = txn.commit() {
            let _ = fs::remove_dir_all(self.dir(record.id));
            return Err(meta_err(e));
        }
        Ok(self.mounts_of(&record, &lowers))
    }

    fn make_dirs(&self, record: &Record) -> Result<(), SnapshotError> {
        let dir = self.dir(record.id);
        let result = (|| {
            fs::create_dir(&dir).map_err(io_err("creating", &dir))?;
            let fs_dir = dir.join("fs");
            fs::create_dir(&fs_dir).map_err(io_err("creating", &fs_dir))?;
            if record.kind == Kind::Active {
                let work = dir.join("work");
                fs::create_dir(&work).map_err(io_err("creating", &work))?;
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_dir_all(&dir);
        }
        result
    }

    fn mounts_of(&self, record: &Record, lowers: &[u64]) -> Vec<Mount> {
        let path = |p: PathBuf| p.to_string_lossy().into_owned();
        let bind = |id: u64, mode: &str| Mount {
            kind: "bind".into(),
            source: path(self.fs_dir(id)),
            options: vec![mode.into(), "rbind".into()],
        };
        let lowerdir = || {
            let dirs: Vec<String> = lowers.iter().map(|&id| path(self.fs_dir(id))).collect();
            format!("lowerdir={}", dirs.join(":"))
        };
        let overlay = |options: Vec<String>| Mount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options,
        };
        match (record.kind, lowers) {
            (Kind::Active, []) => vec![bind(record.id, "rw")],
            (Kind::Active, _) => vec![overlay(vec![
                "index=off".into(),
                format!("workdir={}", path(self.dir(record.id).join("work"))),
                format!("upperdir={}", path(self.fs_dir(record.id))),
                lowerdir(),
            ])],
            (_, []) => vec![bind(record.id, "ro")],
            (_, [single]) => vec![bind(*single, "ro")],
            (_, _) => vec![overlay(vec!["ro".into(), "index=off".into(), lowerdir()])],
        }
    }

    fn info(key: &str, record: Record) -> Info {
        Info {
            name: key.to_owned(),
            parent: record.parent,
            kind: record.kind,
            created: UNIX_EPOCH + Duration::from_nanos(record.created),
        }
    }

    /// Stores the usage of a committed snapshot, unless the snapshot changed
    /// (was removed, or the key now names another) since it was measured.
    fn cache_usage(&self, key: &str, id: u64, usage: &Usage) -> Result<(), SnapshotError> {
        let txn = self.db.begin_write().map_err(meta_err)?;
        {
            let mut table = txn.open_table(SNAPSHOTS).map_err(meta_err)?;
            let Some(mut record) = get(&table, key)? else {
                return Ok(());
            };
            if record.id != id || record.usage.is_some() {
                return Ok(());
            }
            record.usage = Some((usage.size, usage.inodes));
            table
                .insert(key, encode(&record).as_slice())
                .map_err(meta_err)?;
        }
        txn.commit().map_err(meta_err)
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&redb::ReadOnlyTable<&'static str, &'static [u8]>) -> Result<T, SnapshotError>,
    ) -> Result<T, SnapshotError> {
        let txn = self.db.begin_read().map_err(meta_err)?;
        let table = txn.open_table(SNAPSHOTS).map_err(meta_err)?;
        f(&table)
    }
}

fn require_committed(record: &Record, key: &str) -> Result<(), SnapshotError> {
    require_kind(record, key, Kind::Committed)
}

fn require_kind(record: &Record, key: &str, expected: Kind) -> Result<(), SnapshotError> {
    if record.kind == expected {
        Ok(())
    } else {
        Err(SnapshotError::WrongKind {
            key: key.into(),
            actual: record.kind,
            expected,
        })
    }
}

/// Walks `dir` without following symlinks; hard links count once.
fn disk_usage(dir: &Path) -> Result<Usage, SnapshotError> {
    let mut usage = Usage::default();
    let mut seen = HashSet::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).map_err(io_err("reading", &d))? {
            let entry = entry.map_err(io_err("reading", &d))?;
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).map_err(io_err("stat of", &path))?;
            if meta.nlink() > 1 && !meta.is_dir() && !seen.insert(meta.ino()) {
                continue;
            }
            usage.inodes += 1;
            usage.size += meta.blocks() * 512;
            if meta.is_dir() {
                stack.push(path);
            }
        }
    }
    Ok(usage)
}

impl Snapshotter for OverlaySnapshotter {
    fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, SnapshotError> {
        self.create(key, parent, Kind::Active)
    }

    fn view(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, SnapshotError> {
        self.create(key, parent, Kind::View)
    }

    fn mounts(&self, key: &str) -> Result<Vec<Mount>, SnapshotError> {
        let (record, lowers) = self.read(|t| {
            let record = get_existing(t, key)?;
            if record.kind == Kind::Committed {
                return Err(SnapshotError::WrongKind {
                    key: key.into(),
                    actual: Kind::Committed,
                    expected: Kind::Active,
                });
            }
            let lowers = lower_ids(t, record.parent.as_deref())?;
            Ok((record, lowers))
        })?;
        Ok(self.mounts_of(&record, &lowers))
    }

    fn commit(&self, name: &str, key: &str) -> Result<(), SnapshotError> {
        let parent = self.read(|t| Ok(get_existing(t, key)?.parent))?;
        self.commit_with_parent(name, key, parent.as_deref())
    }

    fn commit_with_parent(
        &self,
        name: &str,
        key: &str,
        parent: Option<&str>,
    ) -> Result<(), SnapshotError> {
        let txn = self.db.begin_write().map_err(meta_err)?;
        {
            let mut table = txn.open_table(SNAPSHOTS).map_err(meta_err)?;
            let record = get_existing(&table, key)?;
            require_kind(&record, key, Kind::Active)?;
            if get(&table, name)?.is_some() {
                return Err(SnapshotError::AlreadyExists { key: name.into() });
            }
            if record.parent.is_some() && record.parent.as_deref() != parent {
                return Err(SnapshotError::ParentMismatch {
                    key: key.into(),
                    prepared: record.parent,
                    requested: parent.map(str::to_owned),
                });
            }
            if let Some(parent) = parent {
                require_committed(&get_existing(&table, parent)?, parent)?;
            }
            let committed = Record {
                id: record.id,
                kind: Kind::Committed,
                parent: parent.map(str::to_owned),
                created: now_nanos(),
                usage: None,
            };
            table.remove(key).map_err(meta_err)?;
            table
                .insert(name, encode(&committed).as_slice())
                .map_err(meta_err)?;
        }
        txn.commit().map_err(meta_err)
    }

    fn remove(&self, key: &str) -> Result<(), SnapshotError> {
        let txn = self.db.begin_write().map_err(meta_err)?;
        let id = {
            let mut table = txn.open_table(SNAPSHOTS).map_err(meta_err)?;
            let record = get_existing(&table, key)?;
            let mut children = 0;
            for entry in table.iter().map_err(meta_err)? {
                let (k, v) = entry.map_err(meta_err)?;
                if decode(k.value(), v.value())?.parent.as_deref() == Some(key) {
                    children += 1;
                }
            }
            if children > 0 {
                return Err(SnapshotError::HasChildren {
                    key: key.into(),
                    children,
                });
            }
            table.remove(key).map_err(meta_err)?;
            record.id
        };
        txn.commit().map_err(meta_err)?;
        // The record goes first: a directory left by a crash here has no
        // record and is removed at the next open.
        let dir = self.dir(id);
        fs::remove_dir_all(&dir).map_err(io_err("removing", &dir))
    }

    fn stat(&self, key: &str) -> Result<Info, SnapshotError> {
        self.read(|t| Ok(Self::info(key, get_existing(t, key)?)))
    }

    fn list(&self) -> Result<Vec<Info>, SnapshotError> {
        self.read(|t| {
            let mut out = Vec::new();
            for entry in t.iter().map_err(meta_err)? {
                let (k, v) = entry.map_err(meta_err)?;
                out.push(Self::info(k.value(), decode(k.value(), v.value())?));
            }
            Ok(out)
        })
    }

    fn usage(&self, key: &str) -> Result<Usage, SnapshotError> {
        let record = self.read(|t| get_existing(t, key))?;
        if let Some((size, inodes)) = record.usage {
            return Ok(Usage { size, inodes });
        }
        // Measured outside the write transaction, which must stay short.
        let usage = disk_usage(&self.fs_dir(record.id))?;
        if record.kind == Kind::Committed {
            self.cache_usage(key, record.id, &usage)?;
        }
        Ok(usage)
    }

    fn upper_dir(&self, key: &str) -> Result<PathBuf, SnapshotError> {
        let record = self.read(|t| get_existing(t, key))?;
        require_kind(&record, key, Kind::Active)?;
        Ok(self.fs_dir(record.id))
    }

    fn sync(&self) -> Result<(), SnapshotError> {
        let dir = fs::File::open(&self.root).map_err(io_err("opening", &self.root))?;
        rustix::fs::syncfs(&dir).map_err(|e| SnapshotError::Io {
            op: "syncfs of",
            path: self.root.clone(),
            source: e.into(),
        })
    }
}

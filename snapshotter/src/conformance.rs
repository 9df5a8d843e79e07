//! The conformance suite every [`Snapshotter`] implementation runs
//! (containerd's `snapshots/testsuite`), with real mounts: it needs root.
//!
//! ```no_run
//! # use berth_snapshotter::{conformance, OverlaySnapshotter};
//! conformance::run_all(|root| OverlaySnapshotter::open(root).unwrap());
//! ```
//!
//! Each check gets a fresh root from `make` in its own temporary
//! directory, and unmounts and deletes everything it made even when an
//! assertion fails. Failures panic, naming what was expected.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use berth_core::{ErrorKind, Mount};

use crate::apply::{ApplyOptions, apply_layer};
use crate::snapshot::{Kind, Snapshotter};

/// Runs every check of the suite.
pub fn run_all<S: Snapshotter>(make: impl Fn(&Path) -> S) {
    chain_of_layers(&make);
    whiteouts_across_layers(&make);
    commit_with_parent_chains_detached_layers(&make);
    remove_refuses_parents(&make);
    commit_errors(&make);
    key_reuse_conflicts(&make);
    stat_list_usage(&make);
}

/// A temporary directory removed (with whatever is in it) when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh directory under the system temp dir.
    pub fn new(prefix: &str) -> io::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!(
            "{prefix}-{}-{nanos}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&path)?;
        Ok(Self(path))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Mounts on creation, unmounts (lazily if busy) when dropped.
#[derive(Debug)]
pub struct Mounted {
    target: PathBuf,
    layers: usize,
}

impl Mounted {
    /// Mounts `mounts` on `target` (created if missing).
    pub fn new(mounts: &[Mount], target: &Path) -> Self {
        fs::create_dir_all(target).expect("creating the mount point");
        berth_core::mount_all(mounts, target)
            .unwrap_or_else(|e| panic!("mounting {mounts:?} on {}: {e}", target.display()));
        Self {
            target: target.to_owned(),
            layers: mounts.len(),
        }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.target
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        for _ in 0..self.layers {
            if berth_core::unmount(&self.target).is_err() {
                let _ = rustix::mount::unmount(&self.target, rustix::mount::UnmountFlags::DETACH);
            }
        }
    }
}

/// A fresh snapshotter in a temporary directory (dropped before it).
struct Fixture<S> {
    snapshotter: S,
    tmp: TempDir,
}

impl<S: Snapshotter> Fixture<S> {
    fn new(make: &impl Fn(&Path) -> S) -> Self {
        let tmp = TempDir::new("berth-conformance").expect("creating a temp dir");
        let root = tmp.path().join("root");
        fs::create_dir(&root).expect("creating the snapshotter root");
        Self {
            snapshotter: make(&root),
            tmp,
        }
    }

    fn mount_point(&self, name: &str) -> PathBuf {
        self.tmp.path().join("mnt").join(name)
    }

    fn mount(&self, mounts: &[Mount], name: &str) -> Mounted {
        Mounted::new(mounts, &self.mount_point(name))
    }

    /// Prepares `key` on `parent`, lets `fill` write into its mount, and
    /// commits it as `name`.
    fn layer(&self, name: &str, parent: Option<&str>, fill: impl FnOnce(&Path)) {
        let key = format!("{name}-active");
        let mounts = self.snapshotter.prepare(&key, parent).expect("prepare");
        {
            let m = self.mount(&mounts, &key);
            fill(m.path());
        }
        self.snapshotter.commit(name, &key).expect("commit");
    }
}

fn write(dir: &Path, name: &str, content: &str) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("creating a directory in the snapshot");
    }
    fs::write(&path, content).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

fn read(dir: &Path, name: &str) -> Option<String> {
    fs::read_to_string(dir.join(name)).ok()
}

fn assert_read_only(dir: &Path) {
    let err = fs::write(dir.join("new-file"), "x").expect_err("a view must be read-only");
    assert_eq!(
        err.raw_os_error(),
        Some(rustix::io::Errno::ROFS.raw_os_error()),
        "writing into a view: {err}"
    );
}

/// Files written in an active snapshot are seen by its children after
/// commit, through active snapshots and views of one or more layers.
pub fn chain_of_layers<S: Snapshotter>(make: &impl Fn(&Path) -> S) {
    let f = Fixture::new(make);
    f.layer("l1", None, |d| {
        write(d, "base.txt", "one");
        write(d, "dir/a.txt", "a");
    });
    f.layer("l2", Some("l1"), |d| {
        assert_eq!(read(d, "base.txt").as_deref(), Some("one"));
        write(d, "base.txt", "two");
        write(d, "dir/b.txt", "b");
    });

    let single = f
        .snapshotter
        .view("v1", Some("l1"))
        .expect("view of one layer");
    let m = f.mount(&single, "v1");
    assert_eq!(read(m.path(), "base.txt").as_deref(), Some("one"));
    assert_eq!(read(m.path(), "dir/b.txt"), None);
    assert_read_only(m.path());

    let both = f
        .snapshotter
        .view("v2", Some("l2"))
        .expect("view of two layers");
    let m2 = f.mount(&both, "v2");
    assert_eq!(read(m2.path(), "base.txt").as_deref(), Some("two"));
    assert_eq!(read(m2.path(), "dir/a.txt").as_deref(), Some("a"));
    assert_eq!(read(m2.path(), "dir/b.txt").as_deref(), Some("b"));
    assert_read_only(m2.path());

    // A container's rootfs: writable, changes stay in its own layer.
    let rw = f.snapshotter.prepare("c", Some("l2")).expect("prepare");
    assert_eq!(f.snapshotter.mounts("c").expect("mounts"), rw);
    {
        let m3 = f.mount(&rw, "c");
        write(m3.path(), "dir/c.txt", "c");
    }
    let upper = f.snapshotter.upper_dir("c").expect("upper_dir");
    assert_eq!(read(&upper, "dir/c.txt").as_deref(), Some("c"));
    assert_eq!(
        read(&upper, "base.txt"),
        None,
        "parents stay out of the upper dir"
    );
    assert_eq!(read(m2.path(), "dir/c.txt"), None);
}

/// Deletions in an upper layer hide lower files in views (overlayfs
/// whiteouts and opaque directories written through a mount).
pub fn whiteouts_across_layers<S: Snapshotter>(make: &impl Fn(&Path) -> S) {
    let f = Fixture::new(make);
    f.layer("l1", None, |d| {
        write(d, "keep.txt", "k");
        write(d, "gone.txt", "g");
        write(d, "olddir/x.txt", "x");
    });
    f.layer("l2", Some("l1"), |d| {
        fs::remove_file(d.join("gone.txt")).expect("deleting a lower file");
        fs::remove_dir_all(d.join("olddir")).expect("deleting a lower dir");
        write(d, "olddir/y.txt", "y");
    });
    f.layer("l3", Some("l2"), |d| write(d, "top.txt", "t"));
    let view = f.snapshotter.view("v", Some("l3")).expect("view");
    let m = f.mount(&view, "v");
    assert_eq!(read(m.path(), "keep.txt").as_deref(), Some("k"));
    assert!(!m.path().join("gone.txt").exists(), "deleted file visible");
    assert_eq!(read(m.path(), "olddir/x.txt"), None, "opaque dir leaks");
    assert_eq!(read(m.path(), "olddir/y.txt").as_deref(), Some("y"));
    assert_eq!(read(m.path(), "top.txt").as_deref(), Some("t"));
}

/// Layers applied (with `apply_layer`, as a puller does) into parentless
/// active snapshots, then chained by `commit_with_parent`, stack like
/// layers prepared on their parents, OCI whiteouts included.
pub fn commit_with_parent_chains_detached_layers<S: Snapshotter>(make: &impl Fn(&Path) -> S) {
    let f = Fixture::new(make);
    let s = &f.snapshotter;
    let tar = |files: &[(&str, &str)]| {
        let mut b = tar::Builder::new(Vec::new());
        for (name, content) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(content.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, content.as_bytes())
                .expect("building a tar");
        }
        b.into_inner().expect("building a tar")
    };
    // Applied top layer first: order of application must not matter.
    for (key, files) in [
        ("top", tar(&[(".wh.gone.txt", ""), ("top.txt", "t")])),
        ("base", tar(&[("gone.txt", "g"), ("keep.txt", "k")])),
    ] {
        s.prepare(key, None).expect("prepare");
        let dir = s.upper_dir(key).expect("upper_dir");
        apply_layer(files.as_slice(), &dir, &ApplyOptions::default()).expect("apply");
    }
    s.commit_with_parent("c-base", "base", None)
        .expect("commit base");
    let err = s
        .commit_with_parent("c-top", "top", Some("missing"))
        .expect_err("parent must exist");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    s.commit_with_parent("c-top", "top", Some("c-base"))
        .expect("commit top on base");
    assert_eq!(
        s.stat("c-top").expect("stat").parent.as_deref(),
        Some("c-base")
    );
    let view = s.view("v", Some("c-top")).expect("view");
    let m = f.mount(&view, "v");
    assert_eq!(read(m.path(), "keep.txt").as_deref(), Some("k"));
    assert_eq!(read(m.path(), "top.txt").as_deref(), Some("t"));
    assert!(!m.path().join("gone.txt").exists(), "whiteout ignored");
    assert!(
        m.path().join(".wh.gone.txt").symlink_metadata().is_err(),
        "OCI whiteout file leaked"
    );

    // A snapshot prepared on a parent cannot be re-parented.
    s.prepare("on-base", Some("c-base")).expect("prepare");
    let err = s
        .commit_with_parent("c-other", "on-base", Some("c-top"))
        .expect_err("re-parenting must fail");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
}

/// A snapshot with children cannot be removed; once they are gone it can.
pub fn remove_refuses_parents<S: Snapshotter>(make: &impl Fn(&Path) -> S) {
    let f = Fixture::new(make);
    let s = &f.snapshotter;
    f.layer("l1", None, |d| write(d, "a", "a"));
    f.layer("l2", Some("l1"), |d| write(d, "b", "b"));
    s.view("v", Some("l1")).expect("view");
    for key in ["l1", "l2"] {
        if key == "l2" {
            s.prepare("c", Some("l2")).expect("prepare");
        }
        let err = s.remove(key).expect_err("removing a parent");
        assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    }
    for key in ["c", "l2", "v", "l1"] {
        s.remove(key)
            .unwrap_or_else(|e| panic!("removing {key}: {e}"));
        let err = s.stat(key).expect_err("removed snapshot still there");
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    }
    let err = s.remove("l1").expect_err("removing twice");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(s.list().expect("list").is_empty());
}

/// Commit needs an existing active snapshot and a committed parent.
pub fn commit_errors<S: Snapshotter>(make: &impl Fn(&Path) -> S) {
    let f = Fixture::new(make);
    let s = &f.snapshotter;
    let err = s
        .commit("x", "missing")
        .expect_err("commit of a missing key");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    f.layer("l1", None, |d| write(d, "a", "a"));
    let err = s
        .commit("x", "l1")
        .expect_err("commit of a committed snapshot");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    s.view("v", Some("l1")).expect("view");
    let err = s.commit("x", "v").expect_err("commit of a view");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");

    s.prepare("a", None).expect("prepare");
    let err = s.prepare("b", Some("a")).expect_err("active parent");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    let err = s.view("b", Some("v")).expect_err("view parent");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    let err = s.prepare("b", Some("missing")).expect_err("missing parent");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(s.stat("b").is_err(), "a failed prepare left a snapshot");
    let err = s.upper_dir("l1").expect_err("upper_dir of committed");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    let err = s.mounts("l1").expect_err("mounts of committed");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    let err = s.mounts("missing").expect_err("mounts of missing");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

/// A key names one snapshot whatever its kind.
pub fn key_reuse_conflicts<S: Snapshotter>(make: &impl Fn(&Path) -> S) {
    let f = Fixture::new(make);
    let s = &f.snapshotter;
    f.layer("l1", None, |d| write(d, "a", "a"));
    s.prepare("a", Some("l1")).expect("prepare");
    s.view("v", Some("l1")).expect("view");
    for key in ["a", "v", "l1"] {
        let err = s.prepare(key, None).expect_err("prepare on a used key");
        assert_eq!(err.kind(), ErrorKind::Conflict, "{key}: {err}");
        let err = s.view(key, Some("l1")).expect_err("view on a used key");
        assert_eq!(err.kind(), ErrorKind::Conflict, "{key}: {err}");
    }
    let err = s.commit("l1", "a").expect_err("commit onto a used name");
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert_eq!(
        s.stat("a").expect("stat").kind,
        Kind::Active,
        "failed commit changed a"
    );
    // After commit, the active key is free again.
    s.commit("l2", "a").expect("commit");
    s.prepare("a", Some("l2"))
        .expect("reusing a committed-away key");
}

/// stat, list and usage report what was done.
pub fn stat_list_usage<S: Snapshotter>(make: &impl Fn(&Path) -> S) {
    let f = Fixture::new(make);
    let s = &f.snapshotter;
    let before = SystemTime::now();
    f.layer("l1", None, |d| {
        write(d, "big", &"x".repeat(1 << 20));
        write(d, "dir/small", "s");
    });
    s.prepare("a", Some("l1")).expect("prepare");
    s.view("v", Some("l1")).expect("view");

    let l1 = s.stat("l1").expect("stat");
    assert_eq!(
        (l1.name.as_str(), l1.kind, l1.parent),
        ("l1", Kind::Committed, None)
    );
    assert!(l1.created >= before - std::time::Duration::from_secs(1));
    let a = s.stat("a").expect("stat");
    assert_eq!((a.kind, a.parent.as_deref()), (Kind::Active, Some("l1")));
    assert_eq!(s.stat("v").expect("stat").kind, Kind::View);

    let mut names: Vec<String> = s
        .list()
        .expect("list")
        .into_iter()
        .map(|i| i.name)
        .collect();
    names.sort();
    assert_eq!(names, ["a", "l1", "v"]);

    let usage = s.usage("l1").expect("usage");
    assert!(
        usage.size >= 1 << 20,
        "usage {usage:?} below the 1 MiB written"
    );
    assert_eq!(usage.inodes, 3, "big, dir, dir/small: {usage:?}");
    let empty = s.usage("a").expect("usage");
    assert_eq!(empty.inodes, 0, "{empty:?}");
    let dir = s.upper_dir("a").expect("upper_dir");
    fs::write(dir.join("f"), "1234").expect("writing into the upper dir");
    assert_eq!(s.usage("a").expect("usage").inodes, 1);
    let err = s.usage("missing").expect_err("usage of missing");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

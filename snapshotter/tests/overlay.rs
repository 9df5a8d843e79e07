//! The overlay snapshotter: the conformance suite, a 150-layer overlay,
//! and recovery at open. Needs root (real mounts).

use std::fs;

use berth_snapshotter::conformance::{self, Mounted, TempDir};
use berth_snapshotter::{Kind, OverlaySnapshotter, Snapshotter};

#[test]
fn conformance_suite() {
    conformance::run_all(|root| OverlaySnapshotter::open(root).expect("opening the snapshotter"));
}

/// 150 layers are more than mount(2)'s one-page option string can list;
/// each lower directory goes in its own `lowerdir+` call.
#[test]
fn overlay_of_150_layers_mounts() {
    let tmp = TempDir::new("berth-overlay-150").unwrap();
    let s = OverlaySnapshotter::open(tmp.path().join("root")).unwrap();
    let mut parent: Option<String> = None;
    for i in 0..150 {
        let key = format!("active-{i}");
        s.prepare(&key, None).unwrap();
        let dir = s.upper_dir(&key).unwrap();
        fs::write(dir.join(format!("layer-{i}")), i.to_string()).unwrap();
        if i == 50 {
            fs::write(dir.join("hidden"), "from layer 50").unwrap();
        }
        if i == 100 {
            // An overlayfs whiteout, as apply_layer writes for `.wh.hidden`.
            rustix::fs::mknodat(
                rustix::fs::CWD,
                dir.join("hidden"),
                rustix::fs::FileType::CharacterDevice,
                rustix::fs::Mode::empty(),
                0,
            )
            .unwrap();
        }
        let name = format!("layer-{i}");
        s.commit_with_parent(&name, &key, parent.as_deref())
            .unwrap();
        parent = Some(name);
    }
    let mounts = s.prepare("rootfs", parent.as_deref()).unwrap();
    assert_eq!(mounts.len(), 1);
    let options_len: usize = mounts[0].options.iter().map(|o| o.len() + 1).sum();
    assert!(options_len > 4096, "only {options_len} bytes of options");

    let m = Mounted::new(&mounts, &tmp.path().join("mnt"));
    assert_eq!(fs::read_to_string(m.path().join("layer-0")).unwrap(), "0");
    assert_eq!(
        fs::read_to_string(m.path().join("layer-149")).unwrap(),
        "149"
    );
    assert!(
        m.path().join("hidden").symlink_metadata().is_err(),
        "the whiteout in layer 100 must hide layer 50's file"
    );
    fs::write(m.path().join("written"), "rw").unwrap();
    drop(m);
    assert!(s.upper_dir("rootfs").unwrap().join("written").exists());

    let view = s.view("view", parent.as_deref()).unwrap();
    let v = Mounted::new(&view, &tmp.path().join("view"));
    assert_eq!(fs::read_to_string(v.path().join("layer-75")).unwrap(), "75");
    assert!(v.path().join("written").symlink_metadata().is_err());
}

/// Records survive a reopen; directories without a record (a crash between
/// mkdir and the metadata commit) are removed at open.
#[test]
fn reopen_keeps_records_and_removes_orphans() {
    let tmp = TempDir::new("berth-overlay-reopen").unwrap();
    let root = tmp.path().join("root");
    let upper = {
        let s = OverlaySnapshotter::open(&root).unwrap();
        s.prepare("a", None).unwrap();
        let upper = s.upper_dir("a").unwrap();
        fs::write(upper.join("f"), "kept").unwrap();
        s.commit("l1", "a").unwrap();
        s.prepare("b", Some("l1")).unwrap();
        upper
    };
    let orphan = root.join("snapshots").join("999");
    fs::create_dir_all(orphan.join("fs")).unwrap();
    fs::write(orphan.join("fs").join("junk"), "junk").unwrap();

    let s = OverlaySnapshotter::open(&root).unwrap();
    assert!(!orphan.exists(), "orphaned snapshot directory kept");
    assert_eq!(fs::read_to_string(upper.join("f")).unwrap(), "kept");
    assert_eq!(s.stat("l1").unwrap().kind, Kind::Committed);
    assert_eq!(s.stat("b").unwrap().parent.as_deref(), Some("l1"));
    // Ids are not reused after a reopen.
    s.prepare("c", None).unwrap();
    let ids: std::collections::HashSet<_> = ["b", "c"]
        .iter()
        .map(|k| s.upper_dir(k).unwrap())
        .chain([upper])
        .collect();
    assert_eq!(ids.len(), 3);
    s.sync().unwrap();
}

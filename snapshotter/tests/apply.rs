//! `apply_layer` against tar streams built here with the `tar` crate, and
//! against a busybox rootfs archived by GNU tar. Needs root (devices,
//! ownership, `trusted.*` xattrs).

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use berth_snapshotter::apply::{ApplyError, ApplyOptions, ApplyStats, apply_layer};
use tar::{Builder, EntryType, Header};

const MTIME: u64 = 1_600_000_000;

fn header(kind: EntryType, mode: u32, uid: u64, gid: u64, mtime: u64) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(gid);
    h.set_mtime(mtime);
    h.set_size(0);
    h
}

fn file(b: &mut Builder<Vec<u8>>, path: &str, mode: u32, data: &[u8]) {
    let mut h = header(EntryType::Regular, mode, 0, 0, MTIME);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, path, data).unwrap();
}

fn dir(b: &mut Builder<Vec<u8>>, path: &str) {
    let mut h = header(EntryType::Directory, 0o755, 0, 0, MTIME);
    b.append_data(&mut h, path, &[][..]).unwrap();
}

fn symlink(b: &mut Builder<Vec<u8>>, path: &str, target: &str) {
    let mut h = header(EntryType::Symlink, 0o777, 0, 0, MTIME);
    b.append_link(&mut h, path, target).unwrap();
}

/// An entry whose name and link name are written verbatim, bypassing the
/// checks `Builder` makes (it refuses `..` and absolute names).
fn raw(b: &mut Builder<Vec<u8>>, name: &str, kind: EntryType, link: &str, data: &[u8]) {
    let mut h = header(kind, 0o644, 0, 0, MTIME);
    h.set_size(data.len() as u64);
    let old = h.as_old_mut();
    old.name.fill(0);
    old.name[..name.len()].copy_from_slice(name.as_bytes());
    old.linkname.fill(0);
    old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn apply(b: Builder<Vec<u8>>, dest: &Path) -> Result<ApplyStats, ApplyError> {
    let data = b.into_inner().unwrap();
    apply_layer(&data[..], dest, &ApplyOptions::default())
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0; 256];
    let n = rustix::fs::lgetxattr(path, name, &mut buf[..]).ok()?;
    buf.truncate(n);
    Some(buf)
}

#[test]
fn round_trip_of_every_entry_type() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path();
    let mut b = Builder::new(Vec::new());

    let mut h = header(EntryType::Directory, 0o755, 0, 0, MTIME - 10);
    b.append_data(&mut h, "./", &[][..]).unwrap();
    let mut h = header(EntryType::Directory, 0o1777, 1000, 1001, MTIME - 1);
    b.append_pax_extensions([("SCHILY.xattr.user.dir", &b"d"[..])])
        .unwrap();
    b.append_data(&mut h, "tmp", &[][..]).unwrap();
    b.append_pax_extensions([
        ("SCHILY.xattr.user.k", &b"v"[..]),
        // An empty PAX value deletes the keyword (POSIX pax; Go's archive/tar drops it).
        ("SCHILY.xattr.user.empty", &b""[..]),
        ("SCHILY.xattr.trusted.t", &b"t"[..]),
        ("SCHILY.xattr.trusted.overlay.redirect", &b"/etc"[..]),
    ])
    .unwrap();
    let mut h = header(EntryType::Regular, 0o4755, 1, 2, MTIME + 1);
    h.set_size(5);
    b.append_data(&mut h, "tmp/suid", &b"hello"[..]).unwrap();
    b.append_pax_extensions([("mtime", &b"1600000002.25"[..])])
        .unwrap();
    let mut h = header(EntryType::Regular, 0o2640, 3, 4, MTIME + 2);
    h.set_size(0);
    b.append_data(&mut h, "tmp/sgid", &[][..]).unwrap();
    let mut h = header(EntryType::Symlink, 0o777, 5, 6, MTIME + 3);
    b.append_link(&mut h, "tmp/link", "/no/where").unwrap();
    let mut h = header(EntryType::Link, 0, 0, 0, MTIME);
    b.append_link(&mut h, "tmp/hard", "tmp/suid").unwrap();
    for (name, kind, mode, (major, minor)) in [
        ("dev/null", EntryType::Char, 0o666, (1, 3)),
        ("dev/loop0", EntryType::Block, 0o660, (7, 0)),
        ("dev/fifo", EntryType::Fifo, 0o620, (0, 0)),
    ] {
        let mut h = header(kind, mode, 7, 8, MTIME + 4);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        b.append_data(&mut h, name, &[][..]).unwrap();
    }
    // A file whose parent has no entry of its own.
    file(&mut b, "implicit/parent/f", 0o600, b"x");
    // Long names: GNU `L` entries (what append_data writes) and PAX `path`.
    let long = format!("{}/{}", "d".repeat(120), "f".repeat(130));
    file(&mut b, &long, 0o644, b"gnu long");
    let pax_long = format!("pax/{}", "p".repeat(200));
    b.append_pax_extensions([
        ("path", pax_long.as_bytes()),
        ("linkpath", format!("../{}", "t".repeat(150)).as_bytes()),
    ])
    .unwrap();
    let mut h = header(EntryType::Symlink, 0o777, 0, 0, MTIME);
    h.set_path("pax/short").unwrap();
    h.set_link_name("short").unwrap();
    h.set_cksum();
    b.append(&h, &[][..]).unwrap();

    let stats = apply(b, dest).unwrap();
    assert_eq!(stats.files, 4);
    assert_eq!(stats.dirs, 2);
    assert_eq!((stats.symlinks, stats.hardlinks), (2, 1));
    assert_eq!((stats.devices, stats.fifos), (2, 1));

    let root = fs::symlink_metadata(dest).unwrap();
    assert_eq!(root.mode() & 0o7777, 0o755);
    assert_eq!(root.mtime(), MTIME as i64 - 10);

    let m = fs::symlink_metadata(dest.join("tmp")).unwrap();
    assert!(m.is_dir());
    assert_eq!(m.mode() & 0o7777, 0o1777);
    assert_eq!((m.uid(), m.gid()), (1000, 1001));
    assert_eq!(m.mtime(), MTIME as i64 - 1, "dir mtime set after contents");
    assert_eq!(
        xattr(&dest.join("tmp"), "user.dir").as_deref(),
        Some(&b"d"[..])
    );

    let suid = dest.join("tmp/suid");
    let m = fs::symlink_metadata(&suid).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o4755);
    assert_eq!((m.uid(), m.gid(), m.mtime()), (1, 2, MTIME as i64 + 1));
    assert_eq!(m.nlink(), 2);
    assert_eq!(fs::read(&suid).unwrap(), b"hello");
    assert_eq!(xattr(&suid, "user.k").as_deref(), Some(&b"v"[..]));
    assert_eq!(xattr(&suid, "trusted.t").as_deref(), Some(&b"t"[..]));
    assert_eq!(xattr(&suid, "trusted.overlay.redirect"), None);
    assert_eq!(xattr(&suid, "user.empty"), None);
    let hard = fs::symlink_metadata(dest.join("tmp/hard")).unwrap();
    assert_eq!(hard.ino(), m.ino());

    let m = fs::symlink_metadata(dest.join("tmp/sgid")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o2640);
    assert_eq!((m.uid(), m.gid()), (3, 4));
    assert_eq!((m.mtime(), m.mtime_nsec()), (MTIME as i64 + 2, 250_000_000));

    let link = dest.join("tmp/link");
    let m = fs::symlink_metadata(&link).unwrap();
    assert!(m.file_type().is_symlink());
    assert_eq!((m.uid(), m.gid(), m.mtime()), (5, 6, MTIME as i64 + 3));
    assert_eq!(fs::read_link(&link).unwrap(), Path::new("/no/where"));

    let m = fs::symlink_metadata(dest.join("dev/null")).unwrap();
    assert!(m.file_type().is_char_device());
    assert_eq!(m.rdev(), rustix::fs::makedev(1, 3));
    assert_eq!(m.mode() & 0o7777, 0o666);
    assert_eq!((m.uid(), m.gid(), m.mtime()), (7, 8, MTIME as i64 + 4));
    let m = fs::symlink_metadata(dest.join("dev/loop0")).unwrap();
    assert!(m.file_type().is_block_device());
    assert_eq!(m.rdev(), rustix::fs::makedev(7, 0));
    assert_eq!(m.mode() & 0o7777, 0o660);
    let m = fs::symlink_metadata(dest.join("dev/fifo")).unwrap();
    assert!(m.file_type().is_fifo());
    assert_eq!(m.mode() & 0o7777, 0o620);

    let m = fs::symlink_metadata(dest.join("implicit/parent")).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o755);
    assert_eq!(fs::read(dest.join("implicit/parent/f")).unwrap(), b"x");
    assert_eq!(fs::read(dest.join(&long)).unwrap(), b"gnu long");
    assert_eq!(
        fs::read_link(dest.join(&pax_long)).unwrap(),
        Path::new(&format!("../{}", "t".repeat(150)))
    );
    assert!(!dest.join("pax/short").exists());
}

#[test]
fn whiteouts_and_opaque_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path();
    let mut b = Builder::new(Vec::new());
    dir(&mut b, "etc");
    file(&mut b, "etc/.wh.passwd", 0o644, b"");
    dir(&mut b, "var/cache");
    file(&mut b, "var/cache/.wh..wh..opq", 0o644, b"");
    file(&mut b, "var/cache/kept", 0o644, b"k");
    file(&mut b, ".wh..wh.plnk", 0o644, b"");
    file(&mut b, ".wh.toplevel", 0o644, b"");
    // A whiteout replaces what an earlier entry of the same layer made.
    file(&mut b, "etc/shadow", 0o644, b"s");
    file(&mut b, "etc/.wh.shadow", 0o644, b"");
    let stats = apply(b, dest).unwrap();
    assert_eq!(
        (stats.whiteouts, stats.opaque_dirs, stats.skipped),
        (3, 1, 1)
    );

    for w in ["etc/passwd", "toplevel", "etc/shadow"] {
        let m = fs::symlink_metadata(dest.join(w)).unwrap();
        assert!(m.file_type().is_char_device(), "{w}");
        assert_eq!(m.rdev(), 0, "{w}");
    }
    assert!(!dest.join("etc/.wh.passwd").exists());
    assert!(!dest.join(".wh..wh.plnk").exists());
    assert_eq!(
        xattr(&dest.join("var/cache"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(!dest.join("var/cache/.wh..wh..opq").exists());
    assert_eq!(fs::read(dest.join("var/cache/kept")).unwrap(), b"k");
}

#[test]
fn replacing_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path();
    let mut b = Builder::new(Vec::new());
    file(&mut b, "a/x", 0o644, b"1");
    file(&mut b, "a/x", 0o644, b"2");
    file(&mut b, "d/sub/f", 0o644, b"");
    file(&mut b, "d", 0o644, b"now a file");
    symlink(&mut b, "s", "a");
    dir(&mut b, "s");
    dir(&mut b, "a");
    // Directories whose parent is later replaced: their mtimes are skipped.
    dir(&mut b, "e/sub");
    symlink(&mut b, "e", "/etc");
    dir(&mut b, "g/sub");
    file(&mut b, "g", 0o644, b"g");
    apply(b, dest).unwrap();
    assert!(fs::symlink_metadata(dest.join("e")).unwrap().is_symlink());
    assert_eq!(fs::read(dest.join("a/x")).unwrap(), b"2");
    assert_eq!(fs::read(dest.join("d")).unwrap(), b"now a file");
    assert!(fs::symlink_metadata(dest.join("s")).unwrap().is_dir());
    assert_eq!(
        fs::read(dest.join("a/x")).unwrap(),
        b"2",
        "existing dir keeps contents"
    );
}

/// A dest dir next to a sentinel dir holding one file; checks after each
/// escape attempt that the sentinel is untouched.
struct Sandbox {
    _tmp: tempfile::TempDir,
    dest: std::path::PathBuf,
    sentinel: std::path::PathBuf,
}

impl Sandbox {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("a/b/dest");
        let sentinel = tmp.path().join("sentinel");
        fs::create_dir_all(&dest).unwrap();
        fs::create_dir_all(sentinel.join("etc")).unwrap();
        fs::write(sentinel.join("etc/passwd"), b"root").unwrap();
        Self {
            _tmp: tmp,
            dest,
            sentinel,
        }
    }

    fn assert_untouched(&self) {
        let names: Vec<_> = fs::read_dir(self.sentinel.join("etc"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["passwd"]);
        assert_eq!(fs::read(self.sentinel.join("etc/passwd")).unwrap(), b"root");
        let base = self.sentinel.parent().unwrap();
        let mut top: Vec<_> = fs::read_dir(base)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        top.sort();
        assert_eq!(top, ["a", "sentinel"]);
    }
}

fn assert_escape(result: Result<ApplyStats, ApplyError>, entry: &str) {
    match result {
        Err(ApplyError::PathEscape { entry: e }) => assert_eq!(e, Path::new(entry)),
        other => panic!("expected PathEscape for {entry}, got {other:?}"),
    }
}

#[test]
fn escapes_are_refused() {
    type Build = fn(&mut Builder<Vec<u8>>, &Path);
    let cases: [(&str, Build, &str); 9] = [
        (
            "dotdot",
            |b, _| raw(b, "../../../sentinel/etc/x", EntryType::Regular, "", b"x"),
            "../../../sentinel/etc/x",
        ),
        (
            "dotdot-inner",
            |b, _| raw(b, "a/../../x", EntryType::Directory, "", b""),
            "a/../../x",
        ),
        (
            "absolute",
            |b, s| {
                let p = format!("{}/etc/x", s.display());
                raw(b, &p, EntryType::Regular, "", b"x")
            },
            "",
        ),
        (
            "symlink-abs-then-through",
            |b, s| {
                symlink(b, "etc", &format!("{}/etc", s.display()));
                file(b, "etc/passwd", 0o644, b"pwned");
            },
            "etc/passwd",
        ),
        (
            "symlink-rel-then-through",
            |b, _| {
                symlink(b, "up", "../../../sentinel");
                file(b, "up/etc/x", 0o644, b"pwned");
            },
            "up/etc/x",
        ),
        (
            "symlink-chain",
            |b, _| {
                symlink(b, "l1", "l2");
                dir(b, "l2");
                symlink(b, "l2/l3", "../..");
                file(b, "l1/l3/x", 0o644, b"pwned");
            },
            "l1/l3/x",
        ),
        (
            "hardlink-dotdot",
            |b, _| raw(b, "h", EntryType::Link, "../../etc/passwd", b""),
            "h",
        ),
        (
            "hardlink-through-symlink",
            |b, s| {
                symlink(b, "root", &s.display().to_string());
                raw(b, "h", EntryType::Link, "root/etc/passwd", b"");
            },
            "h",
        ),
        (
            "proc-magic-link",
            |b, _| {
                symlink(b, "self", "/proc/self/cwd");
                file(b, "self/x", 0o644, b"pwned");
            },
            "self/x",
        ),
    ];
    for (what, build, entry) in cases {
        let sb = Sandbox::new();
        let mut b = Builder::new(Vec::new());
        build(&mut b, &sb.sentinel);
        let result = apply(b, &sb.dest);
        let entry = if entry.is_empty() {
            format!("{}/etc/x", sb.sentinel.display())
        } else {
            entry.to_owned()
        };
        eprintln!("{what}: {result:?}");
        assert_escape(result, &entry);
        sb.assert_untouched();
    }
}

#[test]
fn final_symlink_is_replaced_not_followed() {
    let sb = Sandbox::new();
    let target = sb.sentinel.join("etc/passwd");
    let mut b = Builder::new(Vec::new());
    symlink(&mut b, "passwd", &target.display().to_string());
    file(&mut b, "passwd", 0o644, b"pwned");
    symlink(&mut b, "d", &sb.sentinel.join("etc").display().to_string());
    dir(&mut b, "d");
    symlink(&mut b, "dev", &target.display().to_string());
    let mut h = header(EntryType::Char, 0o666, 0, 0, MTIME);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    b.append_data(&mut h, "dev", &[][..]).unwrap();
    apply(b, &sb.dest).unwrap();
    sb.assert_untouched();
    assert_eq!(fs::read(sb.dest.join("passwd")).unwrap(), b"pwned");
    assert!(fs::symlink_metadata(sb.dest.join("d")).unwrap().is_dir());
    let m = fs::symlink_metadata(sb.dest.join("dev")).unwrap();
    assert!(m.file_type().is_char_device());
}

#[test]
fn errors_name_the_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let mut b = Builder::new(Vec::new());
    raw(&mut b, "x", EntryType::Link, "missing", b"");
    match apply(b, tmp.path()) {
        Err(ApplyError::Io { entry, op, .. }) => {
            assert_eq!(entry, Path::new("x"));
            assert_eq!(op, "linkat");
        }
        other => panic!("{other:?}"),
    }
    let mut b = Builder::new(Vec::new());
    raw(&mut b, "y", EntryType::new(b'V'), "", b"");
    match apply(b, tmp.path()) {
        Err(ApplyError::UnsupportedEntryType { entry, kind }) => {
            assert_eq!(entry, Path::new("y"));
            assert_eq!(kind, 'V');
        }
        other => panic!("{other:?}"),
    }
    let err = apply_layer(&[][..], &tmp.path().join("nope"), &ApplyOptions::default());
    assert!(matches!(err, Err(ApplyError::OpenDest { .. })));
    // A truncated stream: the header says 100 bytes, 10 follow.
    let mut b = Builder::new(Vec::new());
    file(&mut b, "ok", 0o644, b"");
    file(&mut b, "big", 0o644, &[7; 100]);
    let mut data = b.into_inner().unwrap();
    data.truncate(512 * 3 + 10);
    let dest = tempfile::tempdir().unwrap();
    match apply_layer(&data[..], dest.path(), &ApplyOptions::default()) {
        Err(ApplyError::Read { entry, .. }) => assert_eq!(entry.as_deref(), Some(Path::new("big"))),
        other => panic!("{other:?}"),
    }
}

/// Walks `dir` and describes every node (type, mode, owner, mtime, size,
/// link target or rdev, content hash, xattrs), sorted by path.
fn describe(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, rel: &Path, out: &mut Vec<String>) {
        let path = root.join(rel);
        let m = fs::symlink_metadata(&path).unwrap();
        let ft = m.file_type();
        let extra = if ft.is_symlink() {
            format!("-> {}", fs::read_link(&path).unwrap().display())
        } else if ft.is_file() {
            let data = fs::read(&path).unwrap();
            let sum = data.iter().fold(0u64, |h, &b| {
                h.wrapping_mul(1_000_003).wrapping_add(u64::from(b))
            });
            format!("size={} sum={sum:x} nlink={}", m.len(), m.nlink())
        } else if ft.is_char_device() || ft.is_block_device() {
            format!("rdev={:x}", m.rdev())
        } else {
            String::new()
        };
        let mut names = vec![0u8; 4096];
        let n = rustix::fs::llistxattr(&path, &mut names[..]).unwrap_or(0);
        let mut xattrs: Vec<String> = names[..n]
            .split(|&b| b == 0)
            .filter(|n| !n.is_empty())
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect();
        xattrs.sort();
        let mtime = m.mtime();
        out.push(format!(
            "{} {:o} {}:{} {mtime} {extra} {xattrs:?}",
            rel.display(),
            m.mode(),
            m.uid(),
            m.gid()
        ));
        if ft.is_dir() {
            let mut children: Vec<_> = fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            children.sort();
            for c in children {
                walk(root, &rel.join(c), out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, Path::new(""), &mut out);
    out
}

fn run(cmd: &mut Command) {
    let status = cmd.status().unwrap();
    assert!(status.success(), "{cmd:?}");
}

/// A busybox rootfs (static binary, one symlink per applet, a hard link,
/// devices, a setuid file, xattrs, long names) archived by GNU tar in gnu
/// and posix formats, applied by us and extracted by GNU tar: same trees.
#[test]
fn busybox_rootfs_matches_gnu_tar() {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox-static installed");
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = tmp.path().join("rootfs");
    for d in [
        "bin",
        "sbin",
        "etc",
        "dev",
        "tmp",
        "var/spool/cron",
        "usr/share",
    ] {
        fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
    let list = Command::new(busybox).arg("--list-full").output().unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    let mut applets = 0;
    for applet in list
        .lines()
        .filter(|l| !l.is_empty() && *l != "bin/busybox")
    {
        let p = rootfs.join(applet);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink("/bin/busybox", &p).unwrap();
        applets += 1;
    }
    assert!(applets > 100);
    fs::hard_link(rootfs.join("bin/busybox"), rootfs.join("bin/busybox.hard")).unwrap();
    fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::write(rootfs.join("bin/suid"), "#!/bin/sh\n").unwrap();
    std::os::unix::fs::chown(rootfs.join("bin/suid"), Some(12), Some(34)).unwrap();
    fs::set_permissions(rootfs.join("bin/suid"), fs::Permissions::from_mode(0o4711)).unwrap();
    rustix::fs::setxattr(
        rootfs.join("bin/suid"),
        "user.note",
        b"x",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    run(Command::new("mknod")
        .arg(rootfs.join("dev/null"))
        .args(["c", "1", "3"]));
    run(Command::new("mkfifo").arg(rootfs.join("dev/initctl")));
    let long = rootfs.join("usr/share").join("n".repeat(150));
    fs::write(&long, "long").unwrap();
    std::os::unix::fs::symlink("x".repeat(200), rootfs.join("usr/share/longlink")).unwrap();
    run(Command::new("touch")
        .args(["-h", "-d", "2020-01-02 03:04:05"])
        .arg(&rootfs)
        .arg(rootfs.join("bin"))
        .arg(rootfs.join("bin/sh")));

    for format in ["gnu", "posix"] {
        let layer = tmp.path().join(format!("layer-{format}.tar"));
        let mut tar = Command::new("tar");
        tar.args(["-c", "--numeric-owner", "--format", format, "-f"])
            .arg(&layer)
            .arg("-C")
            .arg(&rootfs);
        if format == "posix" {
            tar.args(["--xattrs", "--xattrs-include=*"]);
        }
        run(tar.arg("."));

        let ours = tmp.path().join(format!("ours-{format}"));
        let gnu = tmp.path().join(format!("gnu-{format}"));
        fs::create_dir(&ours).unwrap();
        fs::create_dir(&gnu).unwrap();
        let f = fs::File::open(&layer).unwrap();
        let stats = apply_layer(f, &ours, &ApplyOptions::default()).unwrap();
        assert_eq!(stats.symlinks, applets + 1);
        assert_eq!(stats.hardlinks, 1);
        run(Command::new("tar")
            .args([
                "-x",
                "-p",
                "--numeric-owner",
                "--xattrs",
                "--xattrs-include=*",
                "-f",
            ])
            .arg(&layer)
            .arg("-C")
            .arg(&gnu));
        let (a, b) = (describe(&ours), describe(&gnu));
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x, y, "format {format}");
        }
        assert_eq!(a.len(), b.len());
        if let Some(rootfs) = umoci_unpack(&layer, &tmp.path().join(format!("umoci-{format}"))) {
            let c = describe(&rootfs);
            for (x, y) in a.iter().zip(&c) {
                assert_eq!(x, y, "format {format}, umoci");
            }
            assert_eq!(a.len(), c.len());
        }
        let out = Command::new(ours.join("bin/busybox"))
            .args(["echo", "hi"])
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"hi\n");
    }
}

/// Unpacks `layer` as the only layer of an image with umoci, if installed;
/// returns the rootfs.
fn umoci_unpack(layer: &Path, work: &Path) -> Option<std::path::PathBuf> {
    if Command::new("umoci").arg("--version").output().is_err() {
        eprintln!("umoci not installed, skipping the umoci comparison");
        return None;
    }
    let img = work.join("img");
    let image = format!("{}:t", img.display());
    run(Command::new("umoci").args(["init", "--layout"]).arg(&img));
    run(Command::new("umoci").args(["new", "--image", &image]));
    run(Command::new("umoci")
        .args(["raw", "add-layer", "--image", &image])
        .arg(layer));
    let bundle = work.join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image", &image])
        .arg(&bundle));
    Some(bundle.join("rootfs"))
}

/// The options `docker cp` uses: `.wh.` names stay files, every entry is
/// owned by the given owner, and a directory never replaces a file (nor
/// the reverse).
#[test]
fn copy_options_keep_whiteout_names_override_owner_and_refuse_replacing() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path();
    let opts = ApplyOptions {
        whiteouts: false,
        owner: Some((7, 8)),
        no_overwrite_dir_non_dir: true,
        ..ApplyOptions::default()
    };
    let mut b = Builder::new(Vec::new());
    let mut h = header(EntryType::Regular, 0o644, 1000, 1000, MTIME);
    h.set_size(2);
    b.append_data(&mut h, "sub/.wh.kept", &b"hi"[..]).unwrap();
    let data = b.into_inner().unwrap();
    apply_layer(&data[..], dest, &opts).unwrap();
    let kept = fs::symlink_metadata(dest.join("sub/.wh.kept")).unwrap();
    assert!(kept.is_file());
    assert_eq!((kept.uid(), kept.gid()), (7, 8));

    fs::write(dest.join("plain"), "file").unwrap();
    let mut b = Builder::new(Vec::new());
    dir(&mut b, "plain");
    let data = b.into_inner().unwrap();
    let err = apply_layer(&data[..], dest, &opts).unwrap_err();
    assert!(matches!(err, ApplyError::WouldOverwrite { .. }), "{err}");
    assert_eq!(fs::read_to_string(dest.join("plain")).unwrap(), "file");

    let mut b = Builder::new(Vec::new());
    file(&mut b, "sub", 0o644, b"x");
    let data = b.into_inner().unwrap();
    let err = apply_layer(&data[..], dest, &opts).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot overwrite a directory with a non-directory"),
        "{err}"
    );
    assert!(dest.join("sub/.wh.kept").exists());
}

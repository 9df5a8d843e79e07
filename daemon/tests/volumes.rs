//! Volumes and mounts through the real docker CLI (28.x) and docker-py
//! against a real berthd: named and anonymous volumes, `-v` and `--mount`
//! binds, volumes and tmpfs, `--volumes-from`, read-only enforcement, the
//! copy-up from the image, `rm -v` and `--rm`, in-use removal, prune,
//! local driver options, persistence across a restart, and bad input.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use berth_testkit::pytest::run_pytest;
use berth_testkit::rootfs::all_applets;
use common::{Daemon, now};

impl Daemon {
    fn start() -> Daemon {
        Daemon::start_in("berthd-vol")
    }

    /// Stops berthd with SIGTERM (containers keep running); `spawn` starts
    /// it again on the same roots.
    fn stop(&mut self) {
        let status = self.terminate();
        assert!(status.success(), "berthd exited with {status}");
        let _ = std::fs::remove_file(&self.socket);
    }

    fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Imports an image `name`: static busybox with all its applets, plus
    /// what `extra` puts into the root (tarred with its xattrs), with
    /// `changes` applied.
    fn image(&self, name: &str, changes: &[&str], extra: impl FnOnce(&Path)) {
        let root = self.dir.path().join(format!("rootfs-{name}"));
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::copy("/bin/busybox", root.join("bin/busybox"))
            .expect("busybox-static must be installed (/bin/busybox)");
        for applet in all_applets() {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
        extra(&root);
        let tar = self.dir.path().join(format!("rootfs-{name}.tar"));
        let status = Command::new("tar")
            .args(["--xattrs", "--xattrs-include=*", "-C"])
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success());
        let mut args = vec!["import"];
        for change in changes {
            args.extend(["--change", change]);
        }
        args.extend([tar.to_str().unwrap(), name]);
        self.ok(&args);
    }

    fn busybox(&self) {
        self.image("busybox", &["CMD [\"sh\"]"], |_| {});
    }

    /// Removes every container, then insists no shim and no mount is left.
    fn assert_clean_after_rm_all(&self) {
        common::assert_clean_after_rm_all(self);
    }
}

fn mounts(d: &Daemon, container: &str) -> Vec<serde_json::Value> {
    d.inspect_as("container", container)["Mounts"]
        .as_array()
        .unwrap()
        .clone()
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[test]
fn named_volume_commands_and_errors() {
    let d = Daemon::start();
    d.busybox();
    assert_eq!(
        d.ok(&["volume", "create", "--label", "tier=db", "data"]),
        "data\n"
    );
    // Creating an existing name returns it.
    assert_eq!(d.ok(&["volume", "create", "data"]), "data\n");
    let v = d.inspect_as("volume", "data");
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Labels"]["tier"], "db");
    let mountpoint = d.data_root.join("volumes/data/_data");
    assert_eq!(v["Mountpoint"], mountpoint.to_str().unwrap());
    assert!(mountpoint.is_dir());
    let created = v["CreatedAt"].as_str().unwrap();
    assert!(humantime::parse_rfc3339(created).is_ok(), "{created}");

    d.ok(&["volume", "create", "other"]);
    assert_eq!(
        d.ok(&["volume", "ls", "--format", "{{.Driver}} {{.Name}}"]),
        "local data\nlocal other\n"
    );
    assert_eq!(
        d.ok(&["volume", "ls", "-q", "--filter", "label=tier=db"]),
        "data\n"
    );
    assert_eq!(
        d.ok(&["volume", "ls", "-q", "--filter", "name=oth"]),
        "other\n"
    );
    assert_eq!(
        d.ok(&["volume", "ls", "-q", "--filter", "dangling=true"]),
        "data\nother\n"
    );

    // Bad input, each a clear error.
    let err = d.fails(&["volume", "create", "a/b"]);
    assert!(
        err.contains("\"a/b\" includes invalid characters for a local volume name"),
        "{err}"
    );
    let err = d.fails(&["volume", "create", "-d", "nfs", "x1"]);
    assert!(err.contains("plugin \"nfs\" not found"), "{err}");
    let err = d.fails(&["volume", "create", "-o", "colour=red", "x2"]);
    assert!(err.contains("invalid option: \"colour\""), "{err}");
    let err = d.fails(&["volume", "inspect", "nope"]);
    assert!(err.contains("no such volume"), "{err}");
    let err = d.fails(&["volume", "rm", "nope"]);
    assert!(err.contains("get nope: no such volume"), "{err}");
    d.ok(&["volume", "rm", "-f", "nope"]);
    let err = d.fails(&["volume", "ls", "--filter", "dangling=maybe"]);
    assert!(err.contains("invalid filter 'dangling=maybe'"), "{err}");
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "data\nother\n");

    // Data written by one container is there for the next.
    d.ok(&[
        "run",
        "--name",
        "writer",
        "-v",
        "data:/data",
        "busybox",
        "sh",
        "-c",
        "echo hello > /data/f",
    ]);
    let writer = d.inspect_as("container", "writer")["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let m = &mounts(&d, "writer")[0];
    assert_eq!(m["Type"], "volume");
    assert_eq!(m["Name"], "data");
    assert_eq!(m["Source"], mountpoint.to_str().unwrap());
    assert_eq!(m["Destination"], "/data");
    assert_eq!(m["Driver"], "local");
    assert_eq!(m["Mode"], "z");
    assert_eq!(m["RW"], true);
    assert_eq!(m["Propagation"], "");
    let err = d.fails(&["volume", "rm", "data"]);
    assert!(
        err.contains(&format!("remove data: volume is in use - [{writer}]")),
        "{err}"
    );
    assert_eq!(
        d.ok(&[
            "ps",
            "-a",
            "--format",
            "{{.Names}} {{.Mounts}}",
            "--filter",
            "volume=data"
        ]),
        "writer data\n"
    );
    let err = d.fails(&["volume", "rm", "-f", "data"]);
    assert!(err.contains("volume is in use"), "{err}");
    assert_eq!(
        d.ok(&["volume", "ls", "-q", "--filter", "dangling=false"]),
        "data\n"
    );
    d.ok(&["rm", "writer"]);
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "-v",
            "data:/data:ro",
            "busybox",
            "cat",
            "/data/f"
        ]),
        "hello\n"
    );
    let err = d.fails(&[
        "run",
        "--rm",
        "-v",
        "data:/data:ro",
        "busybox",
        "touch",
        "/data/g",
    ]);
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(!mountpoint.join("g").exists());

    // Prune takes anonymous volumes by default, every unused one with -a.
    d.ok(&["run", "--name", "anon", "-v", "/scratch", "busybox", "true"]);
    let anon = mounts(&d, "anon")[0]["Name"].as_str().unwrap().to_owned();
    assert_eq!(anon.len(), 64);
    assert_eq!(
        d.inspect_as("volume", &anon)["Labels"]["com.docker.volume.anonymous"],
        ""
    );
    d.ok(&["rm", "anon"]);
    let pruned = d.ok(&["volume", "prune", "-f"]);
    assert!(pruned.contains(&anon), "{pruned}");
    assert!(!pruned.contains("other"), "{pruned}");
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "data\nother\n");

    // system df counts volumes and their size.
    let df = d.ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}}={{.TotalCount}}/{{.Active}}",
    ]);
    assert!(df.contains("Local Volumes=2/0"), "{df}");

    let pruned = d.ok(&["volume", "prune", "-a", "-f"]);
    let until = now() + 1;
    let events = d.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until.to_string(),
        "--filter",
        "type=volume",
        "--filter",
        "volume=data",
        "--format",
        "{{.Action}}",
    ]);
    assert_eq!(
        lines(&events),
        [
            "create", "mount", "unmount", "mount", "unmount", "mount", "unmount", "destroy"
        ]
    );
    assert!(
        pruned.contains("data") && pruned.contains("other"),
        "{pruned}"
    );
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "");
    assert!(!d.data_root.join("volumes/data").exists());
    d.assert_clean_after_rm_all();
}

#[test]
fn binds_mounts_tmpfs_and_volumes_from() {
    let d = Daemon::start();
    d.busybox();
    let host = d.dir.path().join("hostdir");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("in.txt"), "from host\n").unwrap();
    let h = host.to_str().unwrap();

    // -v binds: read-write, and read-only refusing writes.
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "-v",
            &format!("{h}:/h"),
            "busybox",
            "sh",
            "-c",
            "cat /h/in.txt; echo out > /h/out.txt",
        ]),
        "from host\n"
    );
    assert_eq!(
        std::fs::read_to_string(host.join("out.txt")).unwrap(),
        "out\n"
    );
    let err = d.fails(&[
        "run",
        "--rm",
        "-v",
        &format!("{h}:/h:ro"),
        "busybox",
        "touch",
        "/h/x",
    ]);
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(!host.join("x").exists());

    // A missing -v source is made; a missing --mount source is an error.
    let made = d.dir.path().join("made/sub");
    d.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/m", made.display()),
        "busybox",
        "true",
    ]);
    assert!(made.is_dir());
    let absent = d.dir.path().join("absent");
    let err = d.fails(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,src={},dst=/x", absent.display()),
        "busybox",
        "true",
    ]);
    assert!(
        err.contains(&format!(
            "invalid mount config for type \"bind\": bind source path does not exist: {}",
            absent.display()
        )),
        "{err}"
    );
    assert!(!absent.exists());

    // --mount bind: read-only with a propagation mode, as inspect shows it.
    d.ok(&[
        "create",
        "--name",
        "ro-bind",
        "--mount",
        &format!("type=bind,src={h},dst=/h,readonly,bind-propagation=rslave"),
        "busybox",
        "touch",
        "/h/y",
    ]);
    let m = &mounts(&d, "ro-bind")[0];
    assert_eq!(
        (
            &m["Type"],
            &m["Source"],
            &m["Destination"],
            &m["Mode"],
            &m["RW"],
            &m["Propagation"]
        ),
        (
            &"bind".into(),
            &h.into(),
            &"/h".into(),
            &"".into(),
            &false.into(),
            &"rslave".into()
        )
    );
    let (status, _, stderr) = d.docker(&["start", "-a", "ro-bind"]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Read-only file system"), "{stderr}");

    // --mount volume (named, created on use) and tmpfs with size and mode.
    d.ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=mvol,dst=/mv",
        "busybox",
        "sh",
        "-c",
        "echo x > /mv/f",
    ]);
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "mvol\n");
    let out = d.ok(&[
        "run",
        "--rm",
        "--mount",
        "type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770",
        "busybox",
        "sh",
        "-c",
        "stat -c %a /t; grep ' /t ' /proc/mounts",
    ]);
    let out = lines(&out);
    assert_eq!(out[0], "1770");
    assert!(
        out[1].starts_with("tmpfs /t tmpfs") && out[1].contains("size=1024k"),
        "{out:?}"
    );
    let out = d.ok(&[
        "run",
        "--rm",
        "--tmpfs",
        "/tt:size=2m",
        "busybox",
        "grep",
        " /tt ",
        "/proc/mounts",
    ]);
    assert!(out.contains("size=2048k"), "{out}");
    d.ok(&[
        "create",
        "--name",
        "ro-tmpfs",
        "--mount",
        "type=tmpfs,dst=/t,readonly",
        "busybox",
    ]);
    let m = &mounts(&d, "ro-tmpfs")[0];
    assert_eq!((&m["Type"], &m["RW"]), (&"tmpfs".into(), &false.into()));

    // --volumes-from, read-only with :ro.
    d.ok(&[
        "run",
        "--name",
        "src",
        "-v",
        "shared:/shared",
        "-v",
        &format!("{h}:/h"),
        "busybox",
        "sh",
        "-c",
        "echo s > /shared/s",
    ]);
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "--volumes-from",
            "src",
            "busybox",
            "cat",
            "/shared/s",
            "/h/in.txt"
        ]),
        "s\nfrom host\n"
    );
    let err = d.fails(&[
        "run",
        "--rm",
        "--volumes-from",
        "src:ro",
        "busybox",
        "touch",
        "/shared/t",
    ]);
    assert!(err.contains("Read-only file system"), "{err}");
    d.ok(&[
        "create",
        "--name",
        "vf",
        "--volumes-from",
        "src:ro",
        "busybox",
    ]);
    let vf = mounts(&d, "vf");
    assert_eq!(vf.len(), 2);
    assert!(vf.iter().all(|m| m["RW"] == false), "{vf:?}");
    // A 404, as from moby: `--pull never` keeps the CLI from taking it
    // for a missing image and pulling.
    let err = d.fails(&[
        "run",
        "--rm",
        "--pull",
        "never",
        "--volumes-from",
        "nosuch",
        "busybox",
        "true",
    ]);
    assert!(err.contains("No such container: nosuch"), "{err}");
    let err = d.fails(&["volume", "rm", "shared"]);
    assert!(err.contains("volume is in use"), "{err}");

    // Bad specifications.
    for (args, want) in [
        (
            vec!["-v", "a:b:c:d"],
            "invalid volume specification: 'a:b:c:d'",
        ),
        (vec!["-v", "/x:/y:bogus"], "invalid mode: bogus"),
        (
            vec!["-v", "vol:relative"],
            "invalid mount path: 'relative' mount path must be absolute",
        ),
        (
            vec!["-v", "/tmp:/d", "--mount", "type=volume,dst=/d"],
            "Duplicate mount point: /d",
        ),
        (
            vec!["--volume-driver", "convoy", "-v", "vol:/d"],
            "plugin \"convoy\" not found",
        ),
        (
            vec!["-v", "bad name:/d"],
            "includes invalid characters for a local volume name",
        ),
    ] {
        // `--pull never`: a 404 (unknown volume driver) is not taken for a
        // missing image.
        let mut full = vec!["run", "--rm", "--pull", "never"];
        full.extend(args.iter().copied());
        full.extend(["busybox", "true"]);
        let err = d.fails(&full);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "mvol\nshared\n");
    d.assert_clean_after_rm_all();
}

#[test]
fn copy_up_from_the_image_and_anonymous_volumes() {
    let d = Daemon::start();
    d.image("seeded", &["VOLUME /data", "CMD [\"sh\"]"], |root| {
        let data = root.join("data");
        std::fs::create_dir_all(data.join("sub")).unwrap();
        std::fs::write(data.join("seed.txt"), "seed\n").unwrap();
        std::os::unix::fs::chown(data.join("seed.txt"), Some(1234), Some(5678)).unwrap();
        std::fs::set_permissions(data.join("seed.txt"), PermissionsExt::from_mode(0o640)).unwrap();
        rustix::fs::setxattr(
            data.join("seed.txt"),
            "trusted.berth",
            b"kept",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        std::os::unix::fs::symlink("seed.txt", data.join("link")).unwrap();
        std::os::unix::fs::chown(data.join("sub"), Some(42), Some(42)).unwrap();
        std::fs::set_permissions(data.join("sub"), PermissionsExt::from_mode(0o750)).unwrap();
        std::os::unix::fs::chown(&data, Some(7), Some(7)).unwrap();
        std::fs::set_permissions(&data, PermissionsExt::from_mode(0o755)).unwrap();
        std::fs::create_dir_all(root.join("srv/app")).unwrap();
        std::fs::write(root.join("srv/app/config"), "cfg\n").unwrap();
    });

    // The image's VOLUME gets an anonymous volume filled from the image.
    let out = d.ok(&[
        "run",
        "--name",
        "a1",
        "seeded",
        "sh",
        "-c",
        "cat /data/seed.txt; stat -c '%u:%g %a' /data/seed.txt /data/sub /data; readlink /data/link",
    ]);
    assert_eq!(out, "seed\n1234:5678 640\n42:42 750\n7:7 755\nseed.txt\n");
    let m = &mounts(&d, "a1")[0];
    let anon = m["Name"].as_str().unwrap().to_owned();
    assert_eq!(anon.len(), 64);
    assert_eq!(
        (&m["Type"], &m["Destination"], &m["Mode"], &m["RW"]),
        (&"volume".into(), &"/data".into(), &"".into(), &true.into())
    );
    let seed = d.data_root.join(format!("volumes/{anon}/_data/seed.txt"));
    let mut value = [0u8; 16];
    let n = rustix::fs::getxattr(&seed, "trusted.berth", &mut value).unwrap();
    assert_eq!(&value[..n], b"kept");
    assert_eq!(std::fs::metadata(&seed).unwrap().uid(), 1234);

    // rm -v removes the anonymous volume; plain rm keeps it.
    d.ok(&["rm", "-v", "a1"]);
    let err = d.fails(&["volume", "inspect", &anon]);
    assert!(err.contains("no such volume"), "{err}");
    d.ok(&["run", "--name", "a2", "seeded", "true"]);
    d.ok(&["rm", "a2"]);
    assert_eq!(lines(&d.ok(&["volume", "ls", "-q"])).len(), 1);
    d.ok(&["volume", "prune", "-f"]);
    // --rm removes it too.
    d.ok(&["run", "--rm", "seeded", "true"]);
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "");

    // A new named volume is filled from the image when a container using
    // it is created (as moby does), while it is empty.
    d.ok(&["create", "--name", "c1", "-v", "early:/srv/app", "seeded"]);
    assert_eq!(
        std::fs::read_to_string(d.data_root.join("volumes/early/_data/config")).unwrap(),
        "cfg\n"
    );
    d.ok(&["rm", "-v", "c1"]);
    d.ok(&["volume", "rm", "early"]);

    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "-v",
            "cfg:/srv/app",
            "seeded",
            "cat",
            "/srv/app/config"
        ]),
        "cfg\n"
    );
    assert_eq!(
        std::fs::read_to_string(d.data_root.join("volumes/cfg/_data/config")).unwrap(),
        "cfg\n"
    );
    d.ok(&[
        "run",
        "--rm",
        "-v",
        "cfg:/srv/app",
        "seeded",
        "sh",
        "-c",
        "rm /srv/app/config; echo mine > /srv/app/own",
    ]);
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "-v",
            "cfg:/srv/app",
            "seeded",
            "ls",
            "/srv/app"
        ]),
        "own\n"
    );
    // nocopy leaves it empty.
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "--mount",
            "type=volume,src=empty,dst=/srv/app,volume-nocopy",
            "seeded",
            "ls",
            "-A",
            "/srv/app"
        ]),
        ""
    );
    // A bind over the image's VOLUME: no anonymous volume.
    let host = d.dir.path().join("over");
    std::fs::create_dir(&host).unwrap();
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "-v",
            &format!("{}:/data", host.display()),
            "seeded",
            "ls",
            "-A",
            "/data"
        ]),
        ""
    );
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "cfg\nempty\n");
    d.assert_clean_after_rm_all();
}

fn is_mounted(path: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == path.to_str())
}

#[test]
fn volumes_survive_a_restart_and_driver_options_mount_while_in_use() {
    let mut d = Daemon::start();
    d.busybox();
    d.ok(&["volume", "create", "--label", "keep=1", "persist"]);
    d.ok(&[
        "run",
        "--name",
        "user",
        "-v",
        "persist:/p",
        "busybox",
        "sh",
        "-c",
        "echo durable > /p/f",
    ]);
    // moby's local driver options: a tmpfs mounted while a container uses it.
    d.ok(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=1m,mode=0700",
        "ram",
    ]);
    let out = d.ok(&[
        "run",
        "--rm",
        "-v",
        "ram:/r",
        "busybox",
        "sh",
        "-c",
        "grep ' /r ' /proc/mounts; stat -c %a /r; echo x > /r/x",
    ]);
    assert!(
        out.starts_with("tmpfs /r tmpfs") && out.contains("size=1024k"),
        "{out}"
    );
    assert!(out.ends_with("\n700\n"), "{out}");
    let ram = d.data_root.join("volumes/ram/_data");
    assert!(!is_mounted(&ram), "unmounted after the last user");
    assert!(!ram.join("x").exists());
    assert_eq!(
        d.inspect_as("volume", "ram")["Options"],
        serde_json::json!({"type": "tmpfs", "device": "tmpfs", "o": "size=1m,mode=0700"})
    );

    // `type=none,o=bind,device=DIR`: a named volume backed by a host directory.
    let backing = d.dir.path().join("backing");
    std::fs::create_dir(&backing).unwrap();
    d.ok(&[
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        "o=bind",
        "-o",
        &format!("device={}", backing.display()),
        "hostbacked",
    ]);
    d.ok(&[
        "run",
        "--rm",
        "-v",
        "hostbacked:/b",
        "busybox",
        "sh",
        "-c",
        "echo via-volume > /b/f",
    ]);
    assert_eq!(
        std::fs::read_to_string(backing.join("f")).unwrap(),
        "via-volume\n"
    );
    assert!(!is_mounted(&d.data_root.join("volumes/hostbacked/_data")));
    d.ok(&["volume", "rm", "hostbacked"]);
    assert!(
        backing.join("f").exists(),
        "removing the volume keeps the host's files"
    );

    // A running container keeps its volumes across a berthd restart.
    d.ok(&[
        "run", "-d", "--name", "live", "-v", "ram:/r", "busybox", "sleep", "1000",
    ]);
    d.ok(&["exec", "live", "sh", "-c", "echo alive > /r/a"]);
    assert!(is_mounted(&ram));

    let before = d.inspect_as("volume", "persist");
    d.restart();
    assert_eq!(d.inspect_as("volume", "persist"), before);
    assert_eq!(d.ok(&["exec", "live", "cat", "/r/a"]), "alive\n");
    let err = d.fails(&["volume", "rm", "ram"]);
    assert!(err.contains("volume is in use"), "{err}");
    d.ok(&["stop", "-t", "1", "live"]);
    assert!(!is_mounted(&ram), "unmounted when its last user stopped");
    d.ok(&["rm", "live"]);
    // A mount left by a crashed daemon with no container using it goes at start.
    d.stop();
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "leftover"])
        .arg(&ram)
        .status()
        .unwrap();
    assert!(status.success());
    d.spawn();
    assert!(!is_mounted(&ram), "idle volume unmounted at start");
    // References come back from the container records.
    let err = d.fails(&["volume", "rm", "persist"]);
    assert!(err.contains("volume is in use"), "{err}");
    assert_eq!(
        d.ok(&["run", "--rm", "-v", "persist:/p", "busybox", "cat", "/p/f"]),
        "durable\n"
    );
    d.ok(&["rm", "user"]);
    assert_eq!(d.ok(&["volume", "rm", "persist"]), "persist\n");
    // Prune leaves volumes with driver options alone, as moby does.
    d.ok(&["volume", "prune", "-a", "-f"]);
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "ram\n");
    d.assert_clean_after_rm_all();
}

#[test]
fn docker_py_volumes_api() {
    let d = Daemon::start();
    d.busybox();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/test_volumes.py");
    run_pytest(
        script,
        &[
            ("BERTHD_HOST", d.host().as_ref()),
            ("BIND_DIR", d.dir.path().as_os_str()),
        ],
        5,
    );
    d.assert_clean_after_rm_all();
}

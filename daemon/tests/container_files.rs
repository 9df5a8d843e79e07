//! A container's files through the real docker CLI (28.x) against a real
//! berthd: `cp` both ways (running and stopped containers, symlinks,
//! escapes), `export` + `import`, `diff`, `commit` (then `run`), and the
//! errors of each.

mod common;

use std::path::Path;
use std::process::Command;

use berth_testkit::cleanup::mounts_under;
use common::{Daemon, docker, docker_config};

const APPLETS: &[&str] = &[
    "sh", "echo", "sleep", "cat", "true", "ls", "rm", "mkdir", "ln", "chmod", "stat", "test",
];

impl Daemon {
    fn start() -> Daemon {
        let d = Daemon::start_in("berthd-files");
        d.import_busybox(APPLETS);
        d
    }

    /// No rootfs is mounted but those of the `running` containers (the
    /// stopped-container paths mount and detach at once).
    fn assert_no_mounts_but_running(&self, running: usize) {
        let mounts = mounts_under(self.0.dir.path());
        let rootfs = mounts.iter().filter(|m| m.ends_with("rootfs")).count();
        assert_eq!(rootfs, running, "{mounts:?}");
        let views = mounts
            .iter()
            .filter(|m| m.to_string_lossy().contains("/view-"));
        assert_eq!(views.count(), 0, "{mounts:?}");
    }
}

/// One tar header block (no data) of `kind` naming `name`, written byte
/// for byte (tar writers refuse `..`).
fn raw_entry(name: &[u8], kind: u8, link: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 512];
    block[..name.len()].copy_from_slice(name);
    block[100..108].copy_from_slice(b"0000644\0");
    block[108..116].copy_from_slice(b"0000000\0");
    block[116..124].copy_from_slice(b"0000000\0");
    block[124..136].copy_from_slice(b"00000000000\0");
    block[136..148].copy_from_slice(b"00000000000\0");
    block[156] = kind;
    block[157..157 + link.len()].copy_from_slice(link);
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|b| u32::from(*b)).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    block.to_vec()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn cp_copies_files_and_directories_both_ways() {
    let d = Daemon::start();
    d.ok(&["run", "-d", "--name", "c1", "busybox", "sleep", "300"]);
    let work = tempfile::tempdir().unwrap();
    let local = |p: &str| work.path().join(p).to_str().unwrap().to_owned();
    std::fs::write(work.path().join("f.txt"), "hello\n").unwrap();
    std::fs::create_dir_all(work.path().join("tree/sub")).unwrap();
    std::fs::write(work.path().join("tree/sub/x"), "x\n").unwrap();

    d.ok(&["exec", "c1", "mkdir", "/in"]);
    d.ok(&["cp", &local("f.txt"), "c1:/in"]);
    d.ok(&["cp", &local("f.txt"), "c1:/in/renamed.txt"]);
    d.ok(&["cp", &local("tree"), "c1:/in/tree"]);
    assert_eq!(
        d.ok(&[
            "exec",
            "c1",
            "cat",
            "/in/f.txt",
            "/in/renamed.txt",
            "/in/tree/sub/x"
        ]),
        "hello\nhello\nx\n"
    );
    // Owned by the container's root, not by the local user (no -a).
    assert_eq!(
        d.ok(&["exec", "c1", "stat", "-c", "%u:%g", "/in/tree/sub/x"]),
        "0:0\n"
    );

    d.ok(&["cp", "c1:/in/renamed.txt", &local("back.txt")]);
    assert_eq!(read(&work.path().join("back.txt")), "hello\n");
    d.ok(&["cp", "c1:/in/tree", &local("copy")]);
    assert_eq!(read(&work.path().join("copy/sub/x")), "x\n");
    // Into an existing directory: the source's name is kept.
    d.ok(&["cp", "c1:/in/tree", &local("copy")]);
    assert_eq!(read(&work.path().join("copy/tree/sub/x")), "x\n");
    // The contents of a directory (`/.`).
    d.ok(&["cp", "c1:/in/tree/.", &local("contents")]);
    assert_eq!(read(&work.path().join("contents/sub/x")), "x\n");

    // A symlink inside the container is copied as a symlink; its target
    // resolves inside the container when followed (-L).
    d.ok(&["exec", "c1", "ln", "-s", "/in/f.txt", "/in/link"]);
    d.ok(&["cp", "c1:/in/link", &local("link")]);
    assert_eq!(
        std::fs::read_link(work.path().join("link")).unwrap(),
        Path::new("/in/f.txt")
    );
    d.ok(&["cp", "-L", "c1:/in/link", &local("followed")]);
    assert_eq!(read(&work.path().join("followed")), "hello\n");

    // Streams: a tar on stdout.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "docker --config {} -H {} cp c1:/in/f.txt - | tar -xO",
            docker_config().display(),
            d.host()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");

    // A paused container is copied from and committed as it is (and
    // stays paused).
    d.ok(&["pause", "c1"]);
    d.ok(&["cp", "c1:/in/f.txt", &local("from-paused")]);
    assert_eq!(read(&work.path().join("from-paused")), "hello\n");
    d.ok(&["commit", "c1", "paused:1"]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", "c1"]),
        "paused\n"
    );
    d.ok(&["unpause", "c1"]);
    assert_eq!(
        d.ok(&["run", "--rm", "paused:1", "cat", "/in/f.txt"]),
        "hello\n"
    );

    // A stopped container: its rootfs is mounted for the copy and nothing
    // stays mounted afterwards.
    d.ok(&["stop", "-t", "0", "c1"]);
    d.ok(&["cp", &local("f.txt"), "c1:/in/while-stopped"]);
    d.ok(&["cp", "c1:/in/while-stopped", &local("from-stopped")]);
    assert_eq!(read(&work.path().join("from-stopped")), "hello\n");
    d.assert_no_mounts_but_running(0);
    d.ok(&["start", "c1"]);
    assert_eq!(d.ok(&["exec", "c1", "cat", "/in/while-stopped"]), "hello\n");
}

#[test]
fn cp_paths_stay_inside_the_container() {
    let d = Daemon::start();
    d.ok(&["run", "-d", "--name", "c2", "busybox", "sleep", "300"]);
    let work = tempfile::tempdir().unwrap();
    let local = |p: &str| work.path().join(p).to_str().unwrap().to_owned();
    let marker = work.path().join("host-only");
    std::fs::write(&marker, "host\n").unwrap();
    std::fs::write(work.path().join("payload"), "payload\n").unwrap();

    // ../ above the root is the root.
    d.ok(&["exec", "c2", "sh", "-c", "echo inside > /etc/hostfile"]);
    d.ok(&["cp", "c2:/../../../etc/hostfile", &local("out1")]);
    assert_eq!(read(&work.path().join("out1")), "inside\n");

    // An absolute symlink pointing at a host path resolves in the container.
    let host_dir = work.path().to_str().unwrap().to_owned();
    d.ok(&["exec", "c2", "ln", "-s", &host_dir, "/escape"]);
    let err = d.fails(&["cp", "c2:/escape/host-only", &local("out2")]);
    assert!(err.contains("Could not find the file"), "{err}");
    assert!(!work.path().join("out2").exists());

    // Copying in through that symlink writes inside the container, never
    // into the host directory it names.
    d.ok(&["exec", "c2", "mkdir", "-p", &host_dir]);
    d.ok(&["cp", &local("payload"), "c2:/escape/"]);
    assert_eq!(
        d.ok(&["exec", "c2", "cat", &format!("{host_dir}/payload")]),
        "payload\n"
    );
    assert_eq!(read(&marker), "host\n");
    assert!(!work.path().join("payload2").exists());

    // A directory never replaces a file (noOverwriteDirNonDir).
    std::fs::create_dir_all(work.path().join("clash")).unwrap();
    d.ok(&["exec", "c2", "sh", "-c", "echo file > /clash"]);
    let err = d.fails(&["cp", &local("clash"), "c2:/"]);
    assert!(
        err.contains("cannot overwrite a non-directory with a directory"),
        "{err}"
    );
    assert_eq!(d.ok(&["exec", "c2", "cat", "/clash"]), "file\n");

    // A hostile tar: `..` entries and writes through a symlink to `/`
    // are refused, nothing lands on the host.
    for (entries, what) in [
        (vec![raw_entry(b"../../../../escaped", b'0', b"")], "../"),
        (
            vec![
                raw_entry(b"evil", b'2', b"/"),
                raw_entry(b"evil/escaped", b'0', b""),
            ],
            "symlink",
        ),
    ] {
        let mut tar: Vec<u8> = entries.concat();
        tar.extend_from_slice(&[0; 1024]);
        let resp = common::request(
            &d.0.socket,
            "PUT",
            "/containers/c2/archive?path=/",
            &[("Content-Type", "application/x-tar")],
            &tar,
        );
        assert_eq!(resp.status, 400, "{what}: {}", resp.text());
        assert!(resp.text().contains("escapes"), "{what}: {}", resp.text());
        assert!(!Path::new("/escaped").exists());
    }

    // A symlink loop is a clear 400.
    d.ok(&["exec", "c2", "ln", "-s", "/loop", "/loop"]);
    let resp = common::request(
        &d.0.socket,
        "HEAD",
        "/containers/c2/archive?path=/loop/x",
        &[],
        b"",
    );
    assert_eq!(resp.status, 400);

    // A relative symlink climbing out stays inside too.
    d.ok(&["exec", "c2", "ln", "-s", "../../../../../../etc", "/up"]);
    d.ok(&["cp", "c2:/up/hostfile", &local("out3")]);
    assert_eq!(read(&work.path().join("out3")), "inside\n");
}

#[test]
fn cp_errors_are_dockers() {
    let d = Daemon::start();
    d.ok(&["run", "-d", "--name", "c3", "busybox", "sleep", "300"]);
    d.ok(&[
        "run",
        "-d",
        "--read-only",
        "--name",
        "ro",
        "busybox",
        "sleep",
        "300",
    ]);
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("f");
    std::fs::write(&file, "f\n").unwrap();
    let file = file.to_str().unwrap();

    let err = d.fails(&["cp", "nope:/etc", work.path().to_str().unwrap()]);
    assert!(err.contains("No such container: nope"), "{err}");
    let err = d.fails(&["cp", "c3:/nothing/here", work.path().to_str().unwrap()]);
    assert!(
        err.contains("Could not find the file /nothing/here in container c3"),
        "{err}"
    );
    // The CLI's own check (HEAD, 404) for a directory destination.
    let err = d.fails(&["cp", file, "c3:/nothing/here/"]);
    assert!(err.contains("no such directory"), "{err}");
    let err = d.fails(&["cp", file, "ro:/etc/x"]);
    assert!(
        err.contains("container rootfs is marked read-only"),
        "{err}"
    );
    // Stopped, the read-only rootfs is still refused.
    d.ok(&["stop", "-t", "0", "ro"]);
    let err = d.fails(&["cp", file, "ro:/etc/x"]);
    assert!(
        err.contains("container rootfs is marked read-only"),
        "{err}"
    );
    d.assert_no_mounts_but_running(1);

    // Bind mounts of a running container are seen as the container sees
    // them: a writable one receives the copy, a read-only one refuses it.
    let rw = tempfile::tempdir().unwrap();
    let ro = tempfile::tempdir().unwrap();
    std::fs::write(ro.path().join("inside-ro"), "ro\n").unwrap();
    let rw_bind = format!("{}:/rw", rw.path().display());
    let ro_bind = format!("{}:/data:ro", ro.path().display());
    d.ok(&[
        "run", "-d", "--name", "binds", "-v", &rw_bind, "-v", &ro_bind, "busybox", "sleep", "300",
    ]);
    d.ok(&["cp", file, "binds:/rw/copied"]);
    assert_eq!(read(&rw.path().join("copied")), "f\n");
    let err = d.fails(&["cp", file, "binds:/data/x"]);
    assert!(err.contains("mounted volume is marked read-only"), "{err}");
    d.ok(&["cp", "binds:/data/inside-ro", work.path().to_str().unwrap()]);
    assert_eq!(read(&work.path().join("inside-ro")), "ro\n");
    d.ok(&["rm", "-f", "binds"]);

    // A named volume too: what is copied in is in the volume.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "vols",
        "-v",
        "filesvol:/vol",
        "busybox",
        "sleep",
        "300",
    ]);
    d.ok(&["cp", file, "vols:/vol/in-volume"]);
    d.ok(&["rm", "-f", "vols"]);
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "-v",
            "filesvol:/vol",
            "busybox",
            "cat",
            "/vol/in-volume"
        ]),
        "f\n"
    );

    // A stopped container's volumes and bind mounts are mounted for the
    // copy too (read-only ones refuse it), and unmounted after.
    let ro_bind = format!("{}:/data:ro", ro.path().display());
    d.ok(&[
        "run",
        "--name",
        "stopped-vols",
        "-v",
        "filesvol2:/vol",
        "-v",
        &ro_bind,
        "busybox",
        "true",
    ]);
    d.ok(&["cp", file, "stopped-vols:/vol/while-stopped"]);
    let err = d.fails(&["cp", file, "stopped-vols:/data/x"]);
    assert!(err.contains("mounted volume is marked read-only"), "{err}");
    assert!(!ro.path().join("x").exists());
    let out = work.path().join("from-stopped-volume");
    d.ok(&["cp", "stopped-vols:/data/inside-ro", out.to_str().unwrap()]);
    assert_eq!(read(&out), "ro\n");
    d.ok(&["rm", "stopped-vols"]);
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "-v",
            "filesvol2:/vol",
            "busybox",
            "cat",
            "/vol/while-stopped"
        ]),
        "f\n"
    );
    d.assert_no_mounts_but_running(1);
    let leftover = mounts_under(d.0.dir.path());
    assert!(
        !leftover
            .iter()
            .any(|m| m.starts_with(ro.path()) || m.ends_with("_data")),
        "{leftover:?}"
    );

    // The API's statuses.
    let resp = common::request(
        &d.0.socket,
        "HEAD",
        "/containers/nope/archive?path=/",
        &[],
        b"",
    );
    assert_eq!(resp.status, 404);
    let resp = common::request(
        &d.0.socket,
        "GET",
        "/containers/c3/archive?path=/missing",
        &[],
        b"",
    );
    assert_eq!(resp.status, 404);
    assert_eq!(
        resp.json()["message"],
        "Could not find the file /missing in container c3"
    );
    let resp = common::request(
        &d.0.socket,
        "PUT",
        "/containers/ro/archive?path=/etc",
        &[],
        b"x",
    );
    assert_eq!(resp.status, 403, "{}", resp.text());
    let resp = common::request(&d.0.socket, "GET", "/containers/c3/archive", &[], b"");
    assert_eq!(resp.status, 400);
    let resp = common::request(
        &d.0.socket,
        "PUT",
        "/containers/c3/archive?path=/etc",
        &[],
        b"not a tar at all",
    );
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(resp.text().contains("copying into /etc"), "{}", resp.text());
}

#[test]
fn export_diff_and_commit() {
    let d = Daemon::start();
    d.ok(&["run", "--name", "c4", "busybox", "sh", "-c",
        "mkdir /new && echo added > /new/file && echo changed > /etc/hostname0 && rm /bin/true && mkdir -p /tmp && echo t > /tmp/t"]);

    // diff: added, changed (parents), deleted (the whiteout).
    let diff = d.ok(&["diff", "c4"]);
    let lines: Vec<&str> = diff.lines().collect();
    for want in [
        "A /new",
        "A /new/file",
        "C /bin",
        "D /bin/true",
        "A /etc/hostname0",
    ] {
        assert!(lines.contains(&want), "missing {want:?} in:\n{diff}");
    }

    // export, then import: the same files.
    let work = tempfile::tempdir().unwrap();
    let tar = work.path().join("c4.tar");
    d.ok(&["export", "-o", tar.to_str().unwrap(), "c4"]);
    let listing = Command::new("tar").arg("-tf").arg(&tar).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    assert!(listing.lines().any(|l| l == "new/file"), "{listing}");
    assert!(listing.lines().any(|l| l == "bin/sh"), "{listing}");
    assert!(!listing.lines().any(|l| l == "bin/true"), "{listing}");
    d.ok(&["import", tar.to_str().unwrap(), "exported:1"]);
    assert_eq!(
        d.ok(&["run", "--rm", "exported:1", "/bin/cat", "/new/file"]),
        "added\n"
    );
    d.assert_no_mounts_but_running(0);

    // commit: the new image has the changes (and the deletion).
    let id = d.ok(&["commit", "-m", "my change", "-a", "me", "c4", "committed:1"]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(
        d.ok(&["run", "--rm", "committed:1", "cat", "/new/file", "/tmp/t"]),
        "added\nt\n"
    );
    let (status, _, _) = docker(
        &d.host(),
        &["run", "--rm", "committed:1", "test", "-e", "/bin/true"],
    );
    assert_eq!(status.code(), Some(1), "/bin/true should be deleted");
    let history = d.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.Comment}}|{{.CreatedBy}}",
        "committed:1",
    ]);
    assert!(
        history
            .lines()
            .next()
            .unwrap()
            .starts_with("my change|sh -c"),
        "{history}"
    );
    let author = d.ok(&[
        "image",
        "inspect",
        "-f",
        "{{.Author}} {{len .RootFS.Layers}}",
        "committed:1",
    ]);
    assert_eq!(author, "me 2\n");

    // commit --change, of a running container (paused meanwhile).
    d.ok(&["run", "-d", "--name", "c5", "busybox", "sleep", "300"]);
    d.ok(&["exec", "c5", "sh", "-c", "echo from-c5 > /greeting"]);
    d.ok(&[
        "commit",
        "--change",
        "CMD [\"cat\", \"/greeting\"]",
        "--change",
        "ENV WHO=berth",
        "--change",
        "EXPOSE 8080",
        "--change",
        "STOPSIGNAL SIGINT",
        "c5",
        "committed:2",
    ]);
    assert_eq!(
        d.ok(&[
            "image",
            "inspect",
            "-f",
            "{{json .Config.ExposedPorts}} {{.Config.StopSignal}}",
            "committed:2"
        ]),
        "{\"8080/tcp\":{}} SIGINT\n"
    );
    assert_eq!(d.ok(&["run", "--rm", "committed:2"]), "from-c5\n");
    assert_eq!(
        d.ok(&["run", "--rm", "committed:2", "sh", "-c", "echo $WHO"]),
        "berth\n"
    );
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", "c5"]),
        "running\n"
    );

    // Pushed, removed and pulled back from a registry like any other image.
    let registry = berth_testkit::registry::TestRegistry::start(None);
    let remote = format!("{}/committed:2", registry.host());
    d.ok(&["tag", "committed:2", &remote]);
    d.ok(&["push", &remote]);
    d.ok(&["rmi", &remote, "committed:2"]);
    d.ok(&["pull", &remote]);
    assert_eq!(d.ok(&["run", "--rm", &remote]), "from-c5\n");
    d.ok(&["tag", &remote, "committed:2"]);
    drop(registry);

    // Saved and loaded like any other image.
    let saved = work.path().join("committed.tar");
    d.ok(&["save", "-o", saved.to_str().unwrap(), "committed:2"]);
    d.ok(&["rmi", "committed:2"]);
    d.ok(&["load", "-i", saved.to_str().unwrap()]);
    assert_eq!(d.ok(&["run", "--rm", "committed:2"]), "from-c5\n");

    // Errors.
    let err = d.fails(&["commit", "nope"]);
    assert!(err.contains("No such container: nope"), "{err}");
    let err = d.fails(&["commit", "--change", "RUN echo", "c4"]);
    assert!(err.contains("RUN is not a valid change command"), "{err}");
    let err = d.fails(&["commit", "c4", "Bad:Name"]);
    assert!(err.contains("invalid reference format"), "{err}");
    let err = d.fails(&["diff", "nope"]);
    assert!(err.contains("No such container: nope"), "{err}");
    let err = d.fails(&["export", "-o", tar.to_str().unwrap(), "nope"]);
    assert!(err.contains("No such container: nope"), "{err}");
}

#[test]
fn docker_py_container_files() {
    let d = Daemon::start();
    berth_testkit::pytest::run_pytest(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/test_container_files.py"
        ),
        &[("BERTHD_HOST", std::ffi::OsStr::new(&d.host()))],
        2,
    );
}

//! Containers through the real docker CLI (28.x) and docker-py against a
//! real berthd: run, create/start/wait, ps, inspect, logs, stop, kill, rm,
//! exec, events, errors, and live restore across a `kill -9` of berthd.
//!
//! Each test has its own data root, exec root and socket in a temp dir.
//! The guard removes every container through the API (shims, mounts,
//! cgroups go with them), stops berthd, then kills any shim and unmounts
//! anything left under the temp dir, so a failing test leaves nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_testkit::berthd::Berthd;
use berth_testkit::cleanup::{container_pids_mentioning, mounts_under};
use berth_testkit::pytest::run_pytest;
use berth_testkit::rootfs::APPLETS;
use berth_testkit::wait;
use common::{Daemon, docker_config, now, request, spare_container_ids};

impl Daemon {
    fn start() -> Daemon {
        Daemon::start_in("berthd-ctr")
    }

    /// Imports a busybox image named `busybox`.
    fn busybox(&self) {
        self.import_busybox(APPLETS);
    }

    fn inspect_id(&self, name: &str) -> String {
        self.inspect(name)["Id"].as_str().unwrap().to_owned()
    }

    /// The sorted names in `<data-root>/<dir>` (none if it is missing).
    fn entries(&self, dir: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.data_root.join(dir))
            .map(|list| {
                list.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Unpacks busybox's layers (a first create does) and returns the
    /// snapshot directories they take.
    fn unpacked_layers(&self) -> Vec<String> {
        self.ok(&["create", "--name", "unpack", "busybox"]);
        self.ok(&["rm", "unpack"]);
        let layers = self.entries("overlay/snapshots");
        assert!(!layers.is_empty());
        layers
    }

    fn mounts_under_dir(&self) -> Vec<PathBuf> {
        mounts_under(self.dir.path())
    }

    /// Processes whose command line names our temp dir (shims), but the
    /// standby shim.
    fn our_processes(&self) -> Vec<i32> {
        container_pids_mentioning(self.dir.path().to_str().unwrap())
    }

    /// [`Daemon::our_processes`] but berthd itself.
    fn leftover_processes(&self) -> Vec<i32> {
        self.our_processes()
            .into_iter()
            .filter(|pid| Some(*pid as u32) != self.running_pid())
            .collect()
    }

    /// What a test must leave: no containers' shims, no mounts.
    fn assert_clean(&self) {
        wait::until(Duration::from_secs(10), || {
            let procs = self.leftover_processes();
            let mounts = self.mounts_under_dir();
            if procs.is_empty() && mounts.is_empty() {
                return Ok(());
            }
            Err(format!(
                "left behind: processes {procs:?}, mounts {mounts:?}"
            ))
        });
    }
}

#[test]
fn cgroup_parent_of_the_daemon_and_of_a_container() {
    /// Removes the parent cgroups (in every hierarchy) after the daemon,
    /// declared before it, has removed the containers.
    struct Parents(Vec<String>);
    impl Drop for Parents {
        fn drop(&mut self) {
            for dir in &self.0 {
                let root = Path::new("/sys/fs/cgroup");
                for hierarchy in std::fs::read_dir(root).into_iter().flatten().flatten() {
                    let _ = std::fs::remove_dir(hierarchy.path().join(dir));
                }
                let _ = std::fs::remove_dir(root.join(dir));
            }
        }
    }
    let parent = format!("berth-test-{}", std::process::id());
    let own = format!("{parent}-own");
    let _parents = Parents(vec![parent.clone(), own.clone()]);
    let d = Daemon(
        Berthd::builder(env!("CARGO_BIN_EXE_berthd"))
            .prefix("berthd-ctr")
            .with_shim()
            .arg("--cgroup-parent")
            .arg(&parent)
            .start(),
    );
    d.busybox();
    // The pids hierarchy is in every cgroup v1 host and is "" on v2.
    let cgroup_of = |name: &str| {
        let pid = d.inspect(name)["State"]["Pid"].as_i64().unwrap();
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let line = text
            .lines()
            .find(|l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|c| c == "pids" || c.is_empty())
            })
            .unwrap_or_else(|| panic!("no pids cgroup in {text}"))
            .to_owned();
        line.rsplit(':').next().unwrap().to_owned()
    };
    d.ok(&["run", "-d", "--name", "inherits", "busybox", "sleep", "60"]);
    let id = d.inspect_id("inherits");
    assert_eq!(cgroup_of("inherits"), format!("/{parent}/{id}"));
    d.ok(&[
        "run",
        "-d",
        "--name",
        "own",
        "--cgroup-parent",
        &own,
        "busybox",
        "sleep",
        "60",
    ]);
    let id = d.inspect_id("own");
    assert_eq!(cgroup_of("own"), format!("/{own}/{id}"));
    let (status, _, stderr) = d.docker(&["create", "--cgroup-parent", "../up", "busybox"]);
    assert!(!status.success());
    assert!(stderr.contains("invalid cgroup parent"), "{stderr}");
    d.ok(&["rm", "-f", "inherits", "own"]);
    d.assert_clean();
}

#[test]
fn run_rm_leaves_no_files_behind() {
    let d = Daemon::start();
    d.busybox();
    // The image's layers are unpacked at the first create.
    let layers = d.unpacked_layers();
    for _ in 0..3 {
        d.ok(&[
            "run",
            "--rm",
            "-v",
            "/data",
            "busybox",
            "sh",
            "-c",
            "echo > /data/x; echo > /y",
        ]);
    }
    // The writable layer and the record are deleted just after `run`
    // returns (AutoRemove answers the waiter first), so poll.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (containers, snapshots) = (d.entries("containers"), d.entries("overlay/snapshots"));
        if containers.is_empty() && snapshots == layers {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "left behind: containers {containers:?}, snapshots {snapshots:?} (layers {layers:?})"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // --rm removes anonymous volumes too.
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "");
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    d.assert_clean();
}

#[test]
fn a_removal_cut_short_by_a_crash_finishes_at_restart() {
    let mut d = Daemon::start();
    d.busybox();
    let layers = d.unpacked_layers();
    d.ok(&[
        "create", "--rm", "--name", "doomed", "-v", "/data", "busybox", "true",
    ]);
    let id = d.inspect_id("doomed");
    assert_eq!(d.entries("containers"), std::slice::from_ref(&id));
    // AutoRemove records `removing` and answers its waiters before the
    // writable layer and files go: a crash there leaves this on disk.
    d.kill9();
    let path = d.data_root.join("containers").join(&id).join("config.json");
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    record["state"]["status"] = "removing".into();
    std::fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
    d.spawn();
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    assert!(d.entries("containers").is_empty());
    assert_eq!(d.entries("overlay/snapshots"), layers);
    // Its anonymous volume went with it, as with `run --rm`.
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "");
}

/// What a machine crash can leave, made by hand after a `kill -9`: a
/// container directory without its record (an AutoRemove record is not
/// fsynced), an empty record, and a writable layer whose container
/// directory never reached the disk. A restart removes all of it, and an
/// AutoRemove container that is not running, as dockerd does.
#[test]
fn a_restart_removes_what_a_crash_left_of_containers() {
    let mut d = Daemon::start();
    d.busybox();
    let layers = d.unpacked_layers();
    d.ok(&[
        "create",
        "--rm",
        "--name",
        "never-started",
        "busybox",
        "true",
    ]);
    let mut ids = Vec::new();
    for name in ["lost", "torn", "vanished"] {
        d.ok(&["create", "--name", name, "busybox", "true"]);
        ids.push(d.inspect_id(name));
    }
    assert_eq!(d.entries("overlay/snapshots").len(), layers.len() + 4);
    d.kill9();
    let dir = |id: &str| d.data_root.join("containers").join(id);
    std::fs::remove_file(dir(&ids[0]).join("config.json")).unwrap();
    std::fs::write(dir(&ids[1]).join("config.json"), b"").unwrap();
    std::fs::remove_dir_all(dir(&ids[2])).unwrap();
    d.spawn();
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    assert!(d.entries("containers").is_empty());
    assert_eq!(d.entries("overlay/snapshots"), layers);
    // The names are free again.
    d.ok(&["create", "--name", "lost", "busybox", "true"]);
}

impl Daemon {
    /// Creates a `--rm --network none` container (prelaunched: its shim and
    /// runtime container are made right after the create) and waits until
    /// its shim's state and its rootfs mount are there.
    fn create_prelaunched(&self, args: &[&str]) -> String {
        let mut create = vec!["create", "--rm", "--network", "none"];
        create.extend_from_slice(args);
        let id = self.ok(&create).trim().to_owned();
        self.until_prelaunch(&id, true);
        id
    }

    /// Waits until the prelaunch of `id` is there (its shim's state
    /// directory and its mounts) or gone with everything it made.
    fn until_prelaunch(&self, id: &str, there: bool) {
        let state_dir = self.exec_root.join("shim").join(&id[..32]);
        wait::until(Duration::from_secs(15), || {
            let shim_state = state_dir.exists();
            let mounts = self.mounts_under_dir();
            let procs = self.leftover_processes();
            let done = if there {
                shim_state && !mounts.is_empty()
            } else {
                !shim_state && mounts.is_empty() && procs.is_empty()
            };
            if done {
                return Ok(());
            }
            Err(format!(
                "prelaunch there: {there}; shim state {shim_state}, processes {procs:?}, mounts {mounts:?}"
            ))
        });
    }
}

impl Daemon {
    /// Container directories without a record: spare containers (made
    /// ahead for a repeated `run --rm`, out of the API).
    fn spare_ids(&self) -> Vec<String> {
        spare_container_ids(&self.data_root)
    }

    /// Waits until exactly one spare is there, launched (its shim's state
    /// and its rootfs mount); returns its ID.
    fn until_one_spare(&self) -> String {
        wait::until(Duration::from_secs(15), || {
            let spares = self.spare_ids();
            let mounts = self.mounts_under_dir();
            match spares.as_slice() {
                [id] if self.exec_root.join("shim").join(&id[..32]).exists()
                    && mounts.iter().any(|m| m.ends_with(format!("{id}/rootfs"))) =>
                {
                    Ok(id.clone())
                }
                _ => Err(format!("spares {spares:?}, mounts {mounts:?}")),
            }
        })
    }

    /// Waits until no spare, shim, mount or cgroup of `id` is left.
    fn until_spare_gone(&self, id: &str) {
        wait::until(Duration::from_secs(15), || {
            let spares = self.spare_ids();
            let procs = self.leftover_processes();
            let mounts = self.mounts_under_dir();
            let cgroups = cgroups_named(id);
            if spares.is_empty() && procs.is_empty() && mounts.is_empty() && cgroups.is_empty() {
                return Ok(());
            }
            Err(format!(
                "left: spares {spares:?}, processes {procs:?}, mounts {mounts:?}, cgroups {cgroups:?}"
            ))
        });
    }

    /// The actions of the events of container `id` since `since`.
    fn actions_of(&self, id: &str, since: &str) -> Vec<String> {
        let until = (now() + 1).to_string();
        let filter = format!("container={id}");
        let events = self.ok(&[
            "events",
            "--since",
            since,
            "--until",
            &until,
            "--filter",
            &filter,
            "--format",
            "{{.Action}}",
        ]);
        events.lines().map(str::to_owned).collect()
    }
}

/// Cgroup directories named `name`, up to three levels down in every
/// hierarchy.
fn cgroups_named(name: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, name: &str, depth: u32, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            if entry.file_name() == name {
                found.push(path);
            } else if depth > 0 {
                walk(&path, name, depth - 1, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), name, 3, &mut found);
    found
}

/// A `run --rm` that repeats a recent one makes a spare container at its
/// exit, and the next such `run` takes it: it runs as that container, and
/// its events begin with `create` then. Until then nothing of it shows in
/// the API; a different `run` does not take it. A crash of berthd, its
/// stop and the removal of the image each leave nothing of a spare.
#[test]
fn a_repeated_run_rm_takes_a_spare_container_made_unseen_ahead() {
    let mut d = Daemon::start();
    d.busybox();
    let run = [
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "cat",
        "/etc/hostname",
    ];
    let since = now().to_string();
    d.ok(&run);
    d.ok(&run); // the repeat: its exit makes the spare
    let spare = d.until_one_spare();
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    assert_eq!(d.actions_of(&spare, &since), Vec::<String>::new());

    let other = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "echo",
        "other",
    ]);
    assert_eq!(other, "other\n");
    assert_eq!(
        d.spare_ids(),
        [spare.as_str()],
        "a different run took the spare"
    );

    let since = now().to_string();
    let hostname = d.ok(&run);
    assert_eq!(
        hostname.trim(),
        &spare[..12],
        "the run did not take the spare"
    );
    let actions = d.actions_of(&spare, &since);
    let lifecycle: Vec<&str> = actions
        .iter()
        .map(String::as_str)
        .filter(|a| ["create", "start", "die", "destroy"].contains(a))
        .collect();
    assert_eq!(
        lifecycle,
        ["create", "start", "die", "destroy"],
        "{actions:?}"
    );
    assert_eq!(actions[0], "create", "{actions:?}");

    // Its exit made the next one. A crash leaves it; the restart removes it.
    let spare = d.until_one_spare();
    assert_ne!(hostname.trim(), &spare[..12]);
    d.kill9();
    d.spawn();
    d.until_spare_gone(&spare);

    // A stop of berthd removes it.
    d.ok(&run);
    d.ok(&run);
    let spare = d.until_one_spare();
    d.terminate();
    d.until_spare_gone(&spare);
    d.spawn();

    // So does the removal of its image, which goes through.
    d.ok(&run);
    d.ok(&run);
    let spare = d.until_one_spare();
    d.ok(&["rmi", "busybox"]);
    d.until_spare_gone(&spare);
    assert!(d.entries("containers").is_empty());
}

/// A `--rm --network none` container's launch begins at its create; until
/// the start the API shows a created container, and `rm` takes the
/// shim, runtime container and mounts along.
#[test]
fn a_prelaunched_container_is_created_until_started_and_rm_takes_it_all() {
    let d = Daemon::start();
    d.busybox();
    let since = now().to_string();
    let id = d.create_prelaunched(&["--name", "early", "busybox", "true"]);
    let until = (now() + 1).to_string();
    let events = d.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "type=container",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    assert_eq!(events, "create early\n");
    let state = &d.inspect("early")["State"];
    assert_eq!(state["Status"], "created", "{state}");
    assert_eq!(state["Pid"], 0, "{state}");
    assert_eq!(d.ok(&["ps", "-q"]), "");
    assert_eq!(
        d.ok(&["ps", "-aq", "--filter", "status=created"]).trim(),
        &id[..12]
    );
    let top = d.fails(&["top", "early"]);
    assert!(top.contains("is not running"), "{top}");
    d.ok(&["rm", "early"]);
    d.until_prelaunch(&id, false);
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    assert!(d.entries("containers").is_empty());
    d.assert_clean();
}

/// What changes a prelaunched container before its start (a copy into
/// it, new limits) is what the start runs with; a start of one that ran
/// before (`start -a` again) and `run --rm` itself work as before.
#[test]
fn a_start_after_a_copy_or_an_update_sees_them() {
    let d = Daemon::start();
    d.busybox();
    d.create_prelaunched(&["--name", "copied", "busybox", "cat", "/hello"]);
    let file = d.dir.path().join("hello");
    std::fs::write(&file, "copied in\n").unwrap();
    d.ok(&["cp", file.to_str().unwrap(), "copied:/hello"]);
    assert_eq!(d.ok(&["start", "-a", "copied"]), "copied in\n");

    d.create_prelaunched(&[
        "--name",
        "limited",
        "busybox",
        "cat",
        "/sys/fs/cgroup/pids/pids.max",
    ]);
    d.ok(&["update", "--pids-limit", "77", "limited"]);
    assert_eq!(d.ok(&["start", "-a", "limited"]), "77\n");

    let out = d.ok(&["run", "--rm", "--network", "none", "busybox", "echo", "ran"]);
    assert_eq!(out, "ran\n");
    // A prelaunch that failed: the start fails as any start would.
    let (status, _, stderr) = d.docker(&["run", "--rm", "--network", "none", "busybox", "nope"]);
    assert_eq!(status.code(), Some(127), "{stderr}");
    assert!(stderr.contains("executable file not found"), "{stderr}");
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    d.assert_clean();
}

/// A prelaunch that no start takes is dropped after a while; the later
/// start launches as usual.
#[test]
fn an_unstarted_prelaunch_is_dropped_and_a_late_start_still_runs() {
    let d = Daemon::start();
    d.busybox();
    let id = d.create_prelaunched(&["--name", "late", "busybox", "echo", "late"]);
    // Dropped after 10 s.
    d.until_prelaunch(&id, false);
    assert_eq!(d.inspect("late")["State"]["Status"], "created");
    assert_eq!(d.ok(&["start", "-a", "late"]), "late\n");
    d.assert_clean();
}

/// A berthd killed after a prelaunch: the restart removes the container
/// (`AutoRemove`, not running) with its shim, runtime container and
/// mounts.
#[test]
fn a_crash_after_a_prelaunch_leaves_nothing_after_restart() {
    let mut d = Daemon::start();
    d.busybox();
    let layers = d.unpacked_layers();
    let id = d.create_prelaunched(&["--name", "orphan", "busybox", "true"]);
    d.kill9();
    d.spawn();
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    d.until_prelaunch(&id, false);
    assert!(d.entries("containers").is_empty());
    assert_eq!(d.entries("overlay/snapshots"), layers);
    d.assert_clean();
}

/// `--network none` starts join a spare namespace with `lo` up that berthd
/// made after an earlier exit (held by descriptor, never mounted), and
/// the pool is refilled after the exit.
#[test]
fn network_none_runs_in_a_spare_namespace() {
    let d = Daemon::start();
    d.busybox();
    let pid = d.running_pid().expect("berthd runs");
    let held = || -> Vec<String> {
        let mut list: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .map(|l| l.to_string_lossy().into_owned())
            .filter(|l| l.starts_with("net:"))
            .collect();
        list.sort();
        list
    };
    let until = |what: &str, ok: &dyn Fn(&[String]) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = held();
            if ok(&now) {
                return now;
            }
            assert!(Instant::now() < deadline, "{what}: {now:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // The first exit stocks the pool.
    d.ok(&["run", "--rm", "--network", "none", "busybox", "true"]);
    let spares = until("stocked", &|h| h.len() >= 2);
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "readlink /proc/self/ns/net; cat /sys/class/net/lo/operstate; ls /sys/class/net",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        spares.iter().any(|s| s == lines[0]),
        "{out} not in {spares:?}"
    );
    // lo is up (a loopback's operstate reads "unknown" when up) and alone.
    assert_eq!(&lines[1..], ["unknown", "lo"], "{out}");
    // Refilled, and no descriptor kept per start (namespace inode numbers
    // are reused, so the taken one's number may come back).
    for _ in 0..3 {
        d.ok(&["run", "--rm", "--network", "none", "busybox", "true"]);
    }
    until("refilled", &|h| h.len() == spares.len());
}

/// A missing working directory is created in the container, as dockerd
/// does; one under a file is refused with dockerd's text.
#[test]
fn a_missing_working_directory_is_created() {
    let d = Daemon::start();
    d.busybox();
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "-w",
            "/new/work/dir",
            "busybox",
            "sh",
            "-c",
            "pwd; ls -ld /new/work/dir | cut -c1-10"
        ]),
        "/new/work/dir\ndrwxr-xr-x\n"
    );
    let stderr = d.fails(&["run", "--rm", "-w", "/bin/busybox/x", "busybox", "pwd"]);
    assert!(
        stderr.contains("Cannot mkdir: /bin/busybox/x is not a directory"),
        "{stderr}"
    );
}

/// Concurrent creates without a name never get the same generated one
/// (the name is picked and reserved under one lock).
#[test]
fn concurrent_creates_get_distinct_generated_names() {
    let d = Daemon::start();
    d.busybox();
    let ids: Vec<String> = std::thread::scope(|scope| {
        let creates: Vec<_> = (0..32)
            .map(|_| scope.spawn(|| d.ok(&["create", "busybox", "true"]).trim().to_owned()))
            .collect();
        creates.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let mut names: Vec<String> = ids
        .iter()
        .map(|id| d.inspect(id)["Name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), ids.len(), "{names:?}");
}

#[test]
fn run_prints_output_and_returns_exit_codes() {
    let d = Daemon::start();
    d.busybox();
    let (status, stdout, stderr) = d.docker(&["run", "--rm", "busybox", "echo", "hi"]);
    assert!(status.success(), "{stderr}");
    assert_eq!(stdout, "hi\n");
    // --rm (AutoRemove) removed it.
    assert_eq!(d.ok(&["ps", "-aq"]), "");

    // Only a --rm container's writable layer skips syncing (`volatile`):
    // it is thrown away at exit; a kept container's must survive a crash.
    let root_options = |rm: bool| {
        let mut args = vec!["run"];
        if rm {
            args.push("--rm");
        }
        args.extend(["busybox", "cat", "/proc/self/mountinfo"]);
        let mountinfo = d.ok(&args);
        let root = mountinfo
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.get(4) == Some(&"/"))
            .unwrap_or_else(|| panic!("no root mount in {mountinfo}"));
        root.last().unwrap().to_string()
    };
    assert!(root_options(true).contains("volatile"));
    assert!(!root_options(false).contains("volatile"));

    let (status, stdout, stderr) = d.docker(&[
        "run",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert_eq!(stdout, "out\n");
    assert_eq!(stderr, "err\n");

    let (status, _, stderr) = d.docker(&["run", "--rm", "busybox", "/no/such/cmd"]);
    assert_eq!(status.code(), Some(127), "{stderr}");
    assert!(
        stderr.contains("executable file not found") || stderr.contains("no such file"),
        "{stderr}"
    );

    // The image's CMD is used when none is given; stdin reaches it with -i.
    let mut child = berth_testkit::docker::command(&d.host(), &docker_config())
        .args(["run", "-i", "--rm", "busybox", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"piped\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), "piped\n");

    let (status, stdout, _) = d.docker(&[
        "run",
        "--rm",
        "-e",
        "FOO=bar",
        "-w",
        "/bin",
        "busybox",
        "sh",
        "-c",
        "echo $FOO $(pwd) $(hostname | wc -c)",
    ]);
    assert!(status.success());
    assert_eq!(stdout, "bar /bin 13\n");

    // --init: docker-init (tini, from PATH as dockerd finds it) is pid 1 and
    // runs the command; the exit status still comes through.
    let (status, stdout, stderr) = d.docker(&[
        "run",
        "--rm",
        "--init",
        "busybox",
        "sh",
        "-c",
        "tr '\\0' ' ' </proc/1/cmdline; exit 4",
    ]);
    assert_eq!(status.code(), Some(4), "{stderr}");
    assert_eq!(
        stdout.trim_end(),
        "/sbin/docker-init -- sh -c tr '\\0' ' ' </proc/1/cmdline; exit 4"
    );
    d.assert_clean_after_rm_all();
}

#[test]
fn create_start_wait_inspect_and_logs() {
    let d = Daemon::start();
    d.busybox();
    let id = d
        .ok(&[
            "create",
            "--name",
            "c1",
            "--label",
            "team=a",
            "busybox",
            "sh",
            "-c",
            "echo x; echo y >&2; exit 5",
        ])
        .trim()
        .to_owned();
    assert_eq!(id.len(), 64);
    let created = d.inspect("c1");
    assert_eq!(created["Id"], id);
    assert_eq!(created["Name"], "/c1");
    assert_eq!(created["Path"], "sh");
    assert_eq!(
        created["Args"],
        serde_json::json!(["-c", "echo x; echo y >&2; exit 5"])
    );
    assert_eq!(created["State"]["Status"], "created");
    assert_eq!(created["State"]["Running"], false);
    assert_eq!(created["State"]["StartedAt"], "0001-01-01T00:00:00Z");
    assert_eq!(created["Config"]["Labels"]["team"], "a");
    assert_eq!(created["Config"]["Image"], "busybox");
    assert_eq!(created["HostConfig"]["LogConfig"]["Type"], "json-file");
    assert!(created["Image"].as_str().unwrap().starts_with("sha256:"));
    assert!(created["NetworkSettings"].is_object());
    assert_eq!(created["Mounts"], serde_json::json!([]));
    // The short ID and a unique prefix find it too.
    assert_eq!(d.inspect(&id[..12])["Id"], id);

    d.ok(&["start", "c1"]);
    assert_eq!(d.ok(&["wait", "c1"]).trim(), "5");
    let exited = d.inspect("c1");
    assert_eq!(exited["State"]["Status"], "exited");
    assert_eq!(exited["State"]["ExitCode"], 5);
    assert_eq!(exited["State"]["Pid"], 0);
    assert_ne!(exited["State"]["FinishedAt"], "0001-01-01T00:00:00Z");
    let (status, stdout, stderr) = d.docker(&["logs", "c1"]);
    assert!(status.success());
    assert_eq!((stdout.as_str(), stderr.as_str()), ("x\n", "y\n"));

    // Starting again (attached: the CLI exits with the container's code)
    // appends to the same log.
    let (status, stdout, _) = d.docker(&["start", "-a", "c1"]);
    assert_eq!((status.code(), stdout.as_str()), (Some(5), "x\n"));
    let (_, stdout, _) = d.docker(&["logs", "c1"]);
    assert_eq!(stdout, "x\nx\n");
    d.ok(&["rename", "c1", "c2"]);
    assert_eq!(d.inspect("c2")["Name"], "/c2");
    d.ok(&["rm", "c2"]);
    let (status, _, stderr) = d.docker(&["inspect", "--type", "container", "c2"]);
    assert!(!status.success());
    assert!(stderr.contains("No such container: c2"), "{stderr}");
    d.assert_clean();
}

#[test]
fn ps_lists_filters_and_formats() {
    let d = Daemon::start();
    d.busybox();
    let running = d
        .ok(&[
            "run", "-d", "--name", "up", "--label", "role=web", "busybox", "sleep", "1000",
        ])
        .trim()
        .to_owned();
    d.ok(&["run", "--name", "zero", "busybox", "true"]);
    let (status, _, _) = d.docker(&["run", "--name", "two", "busybox", "sh", "-c", "exit 2"]);
    assert_eq!(status.code(), Some(2));
    d.ok(&["create", "--name", "fresh", "busybox"]);

    let names = |args: &[&str]| -> Vec<String> {
        let mut cmd = vec!["ps", "--format", "{{.Names}}"];
        cmd.extend_from_slice(args);
        let mut out: Vec<String> = d.ok(&cmd).lines().map(str::to_owned).collect();
        out.sort();
        out
    };
    assert_eq!(names(&[]), ["up"]);
    assert_eq!(names(&["-a"]), ["fresh", "two", "up", "zero"]);
    assert_eq!(names(&["-a", "--filter", "status=exited"]), ["two", "zero"]);
    assert_eq!(names(&["-a", "--filter", "exited=2"]), ["two"]);
    assert_eq!(names(&["-a", "--filter", "status=created"]), ["fresh"]);
    assert_eq!(names(&["-a", "--filter", "label=role=web"]), ["up"]);
    assert_eq!(names(&["-a", "--filter", "name=zer"]), ["zero"]);
    assert_eq!(
        names(&["-a", "--filter", &format!("id={}", &running[..10])]),
        ["up"]
    );
    assert_eq!(names(&["-a", "--filter", "ancestor=busybox"]).len(), 4);
    assert_eq!(
        names(&["-a", "--filter", "ancestor=other"]),
        Vec::<String>::new()
    );
    // -n 1: the newest.
    assert_eq!(names(&["-n", "1"]), ["fresh"]);
    assert_eq!(d.ok(&["ps", "-q"]).trim(), &running[..12]);

    assert_eq!(
        d.ok(&[
            "info",
            "--format",
            "{{.Containers}} {{.ContainersRunning}} {{.ContainersPaused}} {{.ContainersStopped}}"
        ])
        .trim(),
        "4 1 0 3"
    );
    let table = d.ok(&["ps", "-a"]);
    let header = table.lines().next().unwrap();
    assert!(header.starts_with("CONTAINER ID   IMAGE"), "{table}");
    let line = |name: &str| {
        table
            .lines()
            .find(|l| l.ends_with(name))
            .unwrap()
            .to_owned()
    };
    assert!(line("up").contains("Up "), "{table}");
    assert!(line("two").contains("Exited (2)"), "{table}");
    assert!(line("fresh").contains("Created"), "{table}");
    assert!(line("up").contains("\"sleep 1000\""), "{table}");

    let status = d.ok(&[
        "ps",
        "-a",
        "--filter",
        "name=two",
        "--format",
        "{{.State}}|{{.Image}}|{{.Command}}",
    ]);
    // moby quotes an argument with a space in it (container/view.go)
    assert_eq!(status.trim(), "exited|busybox|\"sh -c 'exit 2'\"");
    d.assert_clean_after_rm_all();
}

impl Daemon {
    fn assert_clean_after_rm_all(&self) {
        let ids = self.ok(&["ps", "-aq"]);
        let mut args = vec!["rm", "-f"];
        args.extend(ids.split_whitespace());
        if args.len() > 2 {
            self.ok(&args);
        }
        assert_eq!(self.ok(&["ps", "-aq"]), "");
        self.assert_clean();
    }
}

#[test]
fn logs_tail_timestamps_and_follow() {
    let d = Daemon::start();
    d.busybox();
    d.ok(&[
        "run",
        "--name",
        "five",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo line$i; done",
    ]);
    assert_eq!(
        d.ok(&["logs", "five"]),
        "line1\nline2\nline3\nline4\nline5\n"
    );
    assert_eq!(d.ok(&["logs", "--tail", "2", "five"]), "line4\nline5\n");
    let stamped = d.ok(&["logs", "-t", "--tail", "1", "five"]);
    let (stamp, text) = stamped.trim_end().split_once(' ').unwrap();
    assert_eq!(text, "line5");
    assert!(stamp.ends_with('Z') && stamp.len() == 30, "{stamp}");
    assert_eq!(
        d.ok(&[
            "logs",
            "--since",
            "2000-01-01T00:00:00Z",
            "--tail",
            "1",
            "five"
        ]),
        "line5\n"
    );

    // -f on a container that prints, waits, prints and exits: the
    // follow ends by itself when the container does.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "slow",
        "busybox",
        "sh",
        "-c",
        "echo first; sleep 2; echo second",
    ]);
    let started = Instant::now();
    let followed = d.ok(&["logs", "-f", "slow"]);
    assert_eq!(followed, "first\nsecond\n");
    assert!(started.elapsed() < Duration::from_secs(30));
    d.assert_clean_after_rm_all();
}

#[test]
fn stop_kill_and_remove() {
    let d = Daemon::start();
    d.busybox();
    // SIGTERM reaches a process with a handler: exits 7, not 137.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "polite",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 7' TERM; while true; do sleep 0.1; done",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    d.ok(&["stop", "polite"]);
    let state = &d.inspect("polite")["State"];
    assert_eq!(state["ExitCode"], 7, "{state}");
    assert_eq!(state["Running"], false);
    // Stopping a stopped container is fine (304 to the CLI).
    d.ok(&["stop", "polite"]);

    // PID 1 without a handler ignores SIGTERM: stop -t 1 ends in SIGKILL.
    d.ok(&[
        "run", "-d", "--name", "stubborn", "busybox", "sleep", "1000",
    ]);
    d.ok(&["stop", "-t", "1", "stubborn"]);
    assert_eq!(d.inspect("stubborn")["State"]["ExitCode"], 137);

    d.ok(&["start", "stubborn"]);
    assert_eq!(d.inspect("stubborn")["State"]["Running"], true);
    d.ok(&["kill", "stubborn"]);
    assert_eq!(d.ok(&["wait", "stubborn"]).trim(), "137");
    let (status, _, stderr) = d.docker(&["kill", "stubborn"]);
    assert!(!status.success());
    assert!(stderr.contains("is not running"), "{stderr}");

    d.ok(&["restart", "-t", "1", "stubborn"]);
    assert_eq!(d.inspect("stubborn")["State"]["Running"], true);
    let (status, _, stderr) = d.docker(&["rm", "stubborn"]);
    assert!(!status.success());
    assert!(
        stderr.contains("cannot remove container \"/stubborn\": container is running"),
        "{stderr}"
    );
    d.ok(&["rm", "-f", "stubborn"]);
    d.ok(&["create", "--name", "keep", "--label", "keep=1", "busybox"]);
    let polite = d.inspect_id("polite");
    let pruned = d.ok(&["container", "prune", "-f", "--filter", "label!=keep"]);
    assert!(pruned.contains(&polite), "{pruned}");
    assert_eq!(d.ok(&["ps", "-a", "--format", "{{.Names}}"]), "keep\n");
    d.ok(&["rm", "keep"]);
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    d.assert_clean();
}

#[test]
fn docker_errors_have_dockers_texts() {
    let d = Daemon::start();
    d.busybox();
    d.ok(&["create", "--name", "taken", "busybox"]);
    let id = d.inspect("taken")["Id"].as_str().unwrap().to_owned();
    let (status, _, stderr) = d.docker(&["create", "--name", "taken", "busybox"]);
    assert!(!status.success());
    assert!(
        stderr.contains(&format!(
            "Conflict. The container name \"/taken\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
        )),
        "{stderr}"
    );
    // The image is in use by a container.
    let (status, _, stderr) = d.docker(&["rmi", "busybox"]);
    assert!(!status.success());
    assert!(
        stderr.contains(&format!(
            "container {} is using its referenced image",
            &id[..12]
        )),
        "{stderr}"
    );
    let response = request(&d.socket, "GET", "/v1.47/containers/nope/json", &[], b"");
    assert_eq!(response.status, 404);
    assert_eq!(response.json()["message"], "No such container: nope");
    for args in [
        &["start", "nope"][..],
        &["rm", "nope"],
        &["logs", "nope"],
        &["stop", "nope"],
    ] {
        let (status, _, stderr) = d.docker(args);
        assert!(!status.success());
        assert!(
            stderr.contains("No such container: nope"),
            "{args:?}: {stderr}"
        );
    }
    let (status, _, stderr) = d.docker(&["create", "--name", "bad name!", "busybox"]);
    assert!(!status.success());
    assert!(stderr.contains("Invalid container name"), "{stderr}");
    let response = request(
        &d.socket,
        "POST",
        "/v1.47/containers/taken/wait?condition=bogus",
        &[],
        b"",
    );
    assert_eq!(response.status, 400);
    assert_eq!(response.json()["message"], "invalid condition: \"bogus\"");
    let (status, _, stderr) = d.docker(&["run", "--rm", "missing-image:v9", "true"]);
    assert!(!status.success());
    assert!(
        stderr.contains("Unable to find image 'missing-image:v9' locally"),
        "{stderr}"
    );
    d.assert_clean_after_rm_all();
}

#[test]
fn exec_output_and_exit_status() {
    let d = Daemon::start();
    d.busybox();
    d.ok(&["run", "-d", "--name", "box", "busybox", "sleep", "1000"]);
    let (status, stdout, stderr) =
        d.docker(&["exec", "box", "sh", "-c", "echo out; echo err >&2; exit 4"]);
    assert_eq!(status.code(), Some(4));
    assert_eq!((stdout.as_str(), stderr.as_str()), ("out\n", "err\n"));
    let (status, stdout, _) = d.docker(&[
        "exec",
        "-e",
        "V=1",
        "-w",
        "/bin",
        "box",
        "sh",
        "-c",
        "echo $V $(pwd)",
    ]);
    assert!(status.success());
    assert_eq!(stdout, "1 /bin\n");
    let (status, _, _) = d.docker(&["exec", "box", "/no/such"]);
    assert_eq!(status.code(), Some(127));
    d.ok(&["exec", "-d", "box", "sh", "-c", "echo detached > /mark"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.docker(&["exec", "box", "cat", "/mark"]).1 != "detached\n" {
        assert!(Instant::now() < deadline, "detached exec did not run");
        std::thread::sleep(Duration::from_millis(50));
    }
    d.ok(&["stop", "-t", "0", "box"]);
    let (status, _, stderr) = d.docker(&["exec", "box", "true"]);
    assert!(!status.success());
    assert!(stderr.contains("is not running"), "{stderr}");
    d.assert_clean_after_rm_all();
}

#[test]
fn events_show_the_container_lifecycle() {
    let d = Daemon::start();
    d.busybox();
    let since = now().to_string();
    d.ok(&["run", "--rm", "--name", "ev", "busybox", "true"]);
    let until = (now() + 1).to_string();
    let out = d.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "type=container",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}",
    ]);
    let actions: Vec<&str> = out.lines().collect();
    assert_eq!(
        actions,
        [
            "create ev <no value>",
            "attach ev <no value>",
            "start ev <no value>",
            "die ev 0",
            "destroy ev <no value>"
        ],
        "{out}"
    );
    d.assert_clean();
}

#[test]
fn live_restore_keeps_containers_across_a_killed_berthd() {
    let mut d = Daemon::start();
    d.busybox();
    d.ok(&["run", "-d", "--name", "keeper", "busybox", "sleep", "1000"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "shortlived",
        "busybox",
        "sh",
        "-c",
        "sleep 1; exit 9",
    ]);
    // AutoRemove: one that outlives berthd's crash, one that exits
    // meanwhile (and goes at the restart), one never started (goes too).
    d.ok(&[
        "run",
        "-d",
        "--rm",
        "--name",
        "ephemeral",
        "busybox",
        "sleep",
        "1000",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--rm",
        "--name",
        "ephemeral-short",
        "busybox",
        "sleep",
        "1",
    ]);
    d.ok(&[
        "create",
        "--rm",
        "--name",
        "never-started",
        "busybox",
        "true",
    ]);
    let ephemeral_pid = d.inspect("ephemeral")["State"]["Pid"].as_i64().unwrap();
    let pid = d.inspect("keeper")["State"]["Pid"].as_i64().unwrap();
    assert!(pid > 0);
    d.kill9();
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "the container died with berthd"
    );
    std::thread::sleep(Duration::from_millis(1500)); // `shortlived` exits meanwhile
    d.spawn();
    let state = &d.inspect("keeper")["State"];
    assert_eq!(state["Running"], true, "{state}");
    assert_eq!(state["Pid"], pid);
    // The exit that happened while berthd was down is recorded.
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.inspect("shortlived")["State"]["Running"] == true {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(d.inspect("shortlived")["State"]["ExitCode"], 9);
    let state = &d.inspect("ephemeral")["State"];
    assert_eq!(
        (state["Running"].clone(), state["Pid"].clone()),
        (true.into(), ephemeral_pid.into())
    );
    while !d
        .ok(&["ps", "-aq", "--filter", "name=ephemeral-short"])
        .is_empty()
    {
        assert!(Instant::now() < deadline, "the exited --rm container stays");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        d.ok(&["ps", "-aq", "--filter", "name=never-started"])
            .is_empty()
    );
    // The restored --rm container still goes when it stops.
    assert!(
        !d.ok(&["ps", "-aq", "--filter", "name=^/ephemeral$"])
            .is_empty()
    );
    d.ok(&["stop", "-t", "1", "ephemeral"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !d
        .ok(&["ps", "-aq", "--filter", "name=^/ephemeral$"])
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the stopped --rm container stays"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        d.ok(&["exec", "keeper", "echo", "still here"]),
        "still here\n"
    );

    let waiter = berth_testkit::docker::command(&d.host(), &docker_config())
        .args(["wait", "keeper"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    d.ok(&["stop", "-t", "1", "keeper"]);
    let output = waiter.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "137");
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    d.assert_clean_after_rm_all();
}

#[test]
fn docker_py_containers_api() {
    let d = Daemon::start();
    d.busybox();
    run_pytest(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/test_containers.py"
        ),
        &[("BERTHD_HOST", std::ffi::OsStr::new(&d.host()))],
        7,
    );
    d.assert_clean_after_rm_all();
}

#[test]
fn pause_unpause_and_top() {
    let d = Daemon::start();
    d.busybox();
    d.ok(&["run", "-d", "--name", "frozen", "busybox", "sleep", "1000"]);
    // `start` returns once the init was told to exec: poll until it has.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut top = d.ok(&["top", "frozen"]);
    while !top.lines().any(|l| l.ends_with("sleep 1000")) {
        assert!(Instant::now() < deadline, "{top}");
        std::thread::sleep(Duration::from_millis(50));
        top = d.ok(&["top", "frozen"]);
    }
    let header = top.lines().next().unwrap();
    assert!(
        header.starts_with("UID") && header.ends_with("CMD"),
        "{top}"
    );
    assert!(top.lines().any(|l| l.ends_with("sleep 1000")), "{top}");

    d.ok(&["pause", "frozen"]);
    let state = &d.inspect("frozen")["State"];
    assert_eq!(
        (state["Status"].as_str(), state["Paused"].as_bool()),
        (Some("paused"), Some(true))
    );
    assert!(
        d.ok(&["ps", "--format", "{{.Status}}"])
            .contains("(Paused)")
    );
    let (status, _, stderr) = d.docker(&["pause", "frozen"]);
    assert!(!status.success());
    assert!(stderr.contains("is already paused"), "{stderr}");
    d.ok(&["unpause", "frozen"]);
    assert_eq!(d.inspect("frozen")["State"]["Status"], "running");
    let (status, _, stderr) = d.docker(&["unpause", "frozen"]);
    assert!(!status.success());
    assert!(stderr.contains("is not paused"), "{stderr}");

    // A paused container still stops: it is thawed after the signal.
    d.ok(&["pause", "frozen"]);
    d.ok(&["stop", "-t", "1", "frozen"]);
    assert_eq!(d.inspect("frozen")["State"]["ExitCode"], 137);
    let (status, _, stderr) = d.docker(&["top", "frozen"]);
    assert!(!status.success());
    assert!(stderr.contains("is not running"), "{stderr}");
    d.assert_clean_after_rm_all();
}

#[test]
fn restart_policies_restart_until_told_otherwise() {
    let d = Daemon::start();
    d.busybox();
    // on-failure:2 restarts twice, then stays exited.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo try; exit 1",
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let state = d.inspect("flaky");
        if state["RestartCount"] == 2 && state["State"]["Status"] == "exited" {
            assert_eq!(state["State"]["ExitCode"], 1);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not restarted twice: {}",
            state["State"]
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(d.ok(&["logs", "flaky"]), "try\ntry\ntry\n");

    // always: an exit restarts it; docker stop does not.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "forever",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "sleep 0.2; exit 3",
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while d.inspect("forever")["RestartCount"].as_i64().unwrap() < 1 {
        assert!(Instant::now() < deadline, "not restarted");
        std::thread::sleep(Duration::from_millis(50));
    }
    d.ok(&["stop", "-t", "1", "forever"]);
    let count = d.inspect("forever")["RestartCount"].clone();
    std::thread::sleep(Duration::from_millis(800));
    let state = d.inspect("forever");
    assert_eq!(state["State"]["Running"], false, "{}", state["State"]);
    assert_eq!(state["RestartCount"], count);
    d.assert_clean_after_rm_all();
}

#[test]
fn a_killed_shim_ends_its_container() {
    let d = Daemon::start();
    d.busybox();
    d.ok(&["run", "-d", "--name", "orphan", "busybox", "sleep", "1000"]);
    let pid = d.inspect("orphan")["State"]["Pid"].as_i64().unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let shim: i32 = stat[stat.rfind(')').unwrap() + 2..]
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let status = Command::new("kill")
        .arg("-9")
        .arg(shim.to_string())
        .status()
        .unwrap();
    assert!(status.success());
    // berthd notices, records the exit and deletes the container's
    // processes and cgroup through the runtime.
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.inspect("orphan")["State"]["Running"] == true {
        assert!(Instant::now() < deadline, "exit not noticed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(d.inspect("orphan")["State"]["ExitCode"], 255);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            Instant::now() < deadline,
            "the container's process outlived its shim"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    d.assert_clean_after_rm_all();
}

#[test]
fn stats_report_cpu_memory_and_pids() {
    let d = Daemon::start();
    d.busybox();
    d.ok(&["run", "-d", "--name", "busy", "busybox", "sleep", "1000"]);
    let out = d.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.PIDs}}|{{.MemUsage}}|{{.CPUPerc}}",
        "busy",
    ]);
    let fields: Vec<&str> = out.trim().split('|').collect();
    assert_eq!(fields.len(), 4, "{out}");
    assert_eq!(fields[0], "busy");
    assert_eq!(fields[1], "1", "{out}");
    assert!(fields[2].contains(" / "), "{out}");
    assert!(fields[3].ends_with('%'), "{out}");
    let response = request(
        &d.socket,
        "GET",
        "/v1.47/containers/busy/stats?stream=0&one-shot=1",
        &[],
        b"",
    );
    assert_eq!(response.status, 200);
    let sample = response.json();
    assert_eq!(sample["name"], "/busy");
    assert!(
        sample["memory_stats"]["usage"].as_u64().unwrap() > 0,
        "{sample}"
    );
    assert!(sample["cpu_stats"]["system_cpu_usage"].as_u64().unwrap() > 0);
    assert_eq!(sample["preread"], "0001-01-01T00:00:00Z");
    d.assert_clean_after_rm_all();
}

/// The mount points an image lacks (busybox here has only `bin/`) come
/// from the image's init layer: the container runs with its network files
/// and `/proc` as before, and its own layer (diff, commit) holds only what
/// it did.
#[test]
fn the_init_layer_stays_out_of_diff_and_commit() {
    let d = Daemon::start();
    d.busybox();
    d.ok(&[
        "run",
        "--name",
        "toucher",
        "busybox",
        "sh",
        "-c",
        "test -s /etc/hosts && test -s /etc/resolv.conf && test -s /etc/hostname \
         && test -e /proc/self/stat && test -d /sys/kernel && test -d /dev/pts && touch /x",
    ]);
    assert_eq!(d.ok(&["diff", "toucher"]), "A /x\n");
    let id = d.inspect_id("toucher");
    let upper = d.data_root.join("overlay/snapshots");
    let own_layer: Vec<String> = std::fs::read_dir(&upper)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|dir| {
            let names: Vec<String> = std::fs::read_dir(dir.join("fs"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            (names == ["x"]).then(|| dir.display().to_string())
        })
        .collect();
    assert_eq!(own_layer.len(), 1, "no writable layer holds only /x: {id}");

    // export shows the merged view, init files included (as Docker).
    let work = tempfile::tempdir().unwrap();
    let tar = work.path().join("toucher.tar");
    d.ok(&["export", "-o", tar.to_str().unwrap(), "toucher"]);
    let listing = tar_listing(&tar);
    assert!(listing.iter().any(|l| l == "etc/hosts"), "{listing:?}");

    // commit: one new layer with /x only.
    d.ok(&["commit", "toucher", "touched:1"]);
    let layers = |image: &str| {
        d.inspect_as("image", image)["RootFS"]["Layers"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(layers("touched:1"), layers("busybox") + 1);
    let saved = work.path().join("touched.tar");
    d.ok(&["save", "-o", saved.to_str().unwrap(), "touched:1"]);
    let out = work.path().join("saved");
    std::fs::create_dir(&out).unwrap();
    let status = Command::new("tar")
        .arg("-xf")
        .arg(&saved)
        .arg("-C")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let top = manifest[0]["Layers"].as_array().unwrap().last().unwrap();
    let listing = tar_listing(&out.join(top.as_str().unwrap()));
    assert_eq!(listing, ["x"]);
    // The committed image runs, and its own init layer serves it.
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "touched:1",
            "sh",
            "-c",
            "test -s /etc/hosts && ls /x"
        ]),
        "/x\n"
    );
    d.ok(&["rm", "toucher"]);
    d.assert_clean();
}

/// Containers of one image share its init layer, made once even by
/// concurrent creates; removing the image removes it with the layers.
#[test]
fn containers_share_the_init_layer_and_rmi_removes_it() {
    let d = Daemon::start();
    d.busybox();
    assert!(d.entries("overlay/snapshots").is_empty());
    let ids: Vec<String> = std::thread::scope(|scope| {
        let creates: Vec<_> = (0..10)
            .map(|_| scope.spawn(|| d.ok(&["create", "busybox", "true"]).trim().to_owned()))
            .collect();
        creates.into_iter().map(|c| c.join().unwrap()).collect()
    });
    // busybox's one layer, one init layer, ten writable layers.
    assert_eq!(d.entries("overlay/snapshots").len(), 1 + 1 + 10);
    d.ok(&["start", "-a", &ids[0]]);
    d.ok(&["start", "-a", &ids[9]]);
    let mut args = vec!["rm"];
    args.extend(ids.iter().map(String::as_str));
    d.ok(&args);
    // Kept for the next container of the image.
    assert_eq!(d.entries("overlay/snapshots").len(), 2);
    d.ok(&["rmi", "busybox"]);
    assert_eq!(d.entries("overlay/snapshots"), Vec::<String>::new());
    d.assert_clean();
}

fn tar_listing(tar: &Path) -> Vec<String> {
    let out = Command::new("tar").arg("-tf").arg(tar).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_end_matches('/').to_owned())
        .filter(|l| !l.is_empty() && l != ".")
        .collect()
}

/// What a crash leaves while an init layer is made (its active snapshot,
/// not yet committed, still mounted) is removed at the next start, never
/// used, and the init layer is made again.
#[test]
fn a_half_made_init_layer_is_removed_at_restart() {
    use berth_snapshotter::{Kind, OverlaySnapshotter, Snapshotter};
    let mut d = Daemon::start();
    d.busybox();
    let layers = d.unpacked_layers();
    d.kill9();
    let mount_dir = d.exec_root.join("containers/.init-crashed");
    {
        let snapshots = OverlaySnapshotter::open(d.data_root.join("overlay")).unwrap();
        let init = snapshots
            .list()
            .unwrap()
            .into_iter()
            .find(|s| s.name.starts_with("init/"))
            .expect("an init layer");
        assert_eq!(init.kind, Kind::Committed);
        let top = init.parent.unwrap();
        snapshots.remove(&init.name).unwrap();
        snapshots
            .prepare(&format!("{}-new", init.name), Some(&top))
            .unwrap();
        let upper = snapshots.upper_dir(&format!("{}-new", init.name)).unwrap();
        std::fs::write(upper.join("half-made"), "").unwrap();
        let mounts = snapshots.mounts(&format!("{}-new", init.name)).unwrap();
        std::fs::create_dir(&mount_dir).unwrap();
        berth_core::mount_all(&mounts, &mount_dir).unwrap();
    }
    d.spawn();
    // Gone at the start: only busybox's layer is left, nothing mounted.
    assert_eq!(d.entries("overlay/snapshots").len(), layers.len() - 1);
    assert!(!mount_dir.exists());
    assert!(
        d.mounts_under_dir().is_empty(),
        "{:?}",
        d.mounts_under_dir()
    );
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "ls / && test -s /etc/hosts"
        ]),
        "bin\ndev\netc\nproc\nsys\n"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.entries("overlay/snapshots").len() != layers.len() {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            d.entries("overlay/snapshots")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    d.assert_clean();
}

/// A container made before init layers sits on the image's top layer: it
/// still runs, and removing it and the image leaves nothing.
#[test]
fn a_container_from_before_init_layers_still_runs() {
    use berth_snapshotter::{OverlaySnapshotter, Snapshotter};
    let mut d = Daemon::start();
    d.busybox();
    d.ok(&["create", "--name", "old", "busybox", "cat", "/etc/hosts"]);
    let id = d.inspect_id("old");
    d.kill9();
    {
        // Its writable layer as the earlier berthd prepared it.
        let snapshots = OverlaySnapshotter::open(d.data_root.join("overlay")).unwrap();
        let init = snapshots.stat(&id).unwrap().parent.unwrap();
        let top = snapshots.stat(&init).unwrap().parent.unwrap();
        snapshots.remove(&id).unwrap();
        snapshots.remove(&init).unwrap();
        snapshots.prepare(&id, Some(&top)).unwrap();
    }
    d.spawn();
    let hosts = d.ok(&["start", "-a", "old"]);
    assert!(hosts.contains("localhost"), "{hosts}");
    // The runtime made the mount points in its own layer, as before.
    let diff = d.ok(&["diff", "old"]);
    assert!(diff.lines().any(|l| l == "A /etc/hosts"), "{diff}");
    // A new container of the image gets the init layer beside it.
    let hostname = d.ok(&["run", "--name", "new", "busybox", "cat", "/etc/hostname"]);
    assert_eq!(hostname.trim(), &d.inspect_id("new")[..12]);
    assert_eq!(d.ok(&["diff", "new"]), "");
    d.ok(&["rm", "old", "new"]);
    d.ok(&["rmi", "busybox"]);
    assert_eq!(d.entries("overlay/snapshots"), Vec::<String>::new());
    d.assert_clean();
}

/// A hijacked attach or exec start on a raw connection: the test types
/// into it and reads what the tty shows.
struct RawSession {
    stream: std::os::unix::net::UnixStream,
    seen: Vec<u8>,
}

impl RawSession {
    fn open(d: &Daemon, path: &str, body: &str) -> RawSession {
        use std::io::Write;
        let mut stream = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: docker\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut session = RawSession {
            stream,
            seen: Vec::new(),
        };
        session.read_until("\r\n\r\n");
        let head = String::from_utf8_lossy(&session.seen).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "{path}: {head}");
        session.seen.clear();
        session
    }

    fn read_until(&mut self, text: &str) {
        use std::io::Read;
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&self.seen).contains(text) {
            let n = self.stream.read(&mut buf).unwrap();
            assert!(
                n > 0,
                "closed before {text:?}: {:?}",
                String::from_utf8_lossy(&self.seen)
            );
            self.seen.extend_from_slice(&buf[..n]);
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads to the end: berthd must close the connection.
    fn expect_closed(mut self) {
        use std::io::Read;
        let mut rest = Vec::new();
        self.stream
            .read_to_end(&mut rest)
            .expect("berthd closes the session");
    }
}

#[test]
fn detach_keys_end_an_attach_or_exec_and_leave_the_process_running() {
    let d = Daemon::start();
    d.busybox();
    let since = now().to_string();
    d.ok(&["run", "-dit", "--name", "shell", "busybox", "sh"]);
    let attach = "/v1.47/containers/shell/attach?stream=1&stdin=1&stdout=1&stderr=1";

    // The default keys, sent on by a client that does not watch for them
    // itself (the docker CLI and berth do): berthd ends the session.
    let mut s = RawSession::open(&d, attach, "");
    s.send(b"echo one-$((1+1))\r");
    s.read_until("one-2");
    s.send(b"\x10\x11");
    s.expect_closed();
    assert_eq!(d.inspect("shell")["State"]["Running"], true);

    // The shell kept its stdin (a tty's is never closed at a detach):
    // a second attach types into it. Its own keys replace the default,
    // which then reaches the shell like any other input.
    let mut s = RawSession::open(&d, &format!("{attach}&detachKeys=ctrl-x,x"), "");
    s.send(b"echo two-$((1+1))\r");
    s.read_until("two-2");
    s.send(b"\x10\x11echo three-$((1+2))\r");
    s.read_until("three-3");
    s.send(b"\x18x");
    s.expect_closed();
    assert_eq!(d.inspect("shell")["State"]["Running"], true);

    let bad = request(
        &d.socket,
        "POST",
        &format!("{attach}&detachKeys=ctrl-p,ctrl-qq"),
        &[],
        b"",
    );
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(bad.text().contains("ctrl-qq"), "{}", bad.text());

    // An exec with its own keys: detached, it runs on.
    let created = request(
        &d.socket,
        "POST",
        "/v1.47/containers/shell/exec",
        &[("Content-Type", "application/json")],
        br#"{"AttachStdin": true, "AttachStdout": true, "Tty": true, "DetachKeys": "ctrl-a", "Cmd": ["sh"]}"#,
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let exec_id = created.json()["Id"].as_str().unwrap().to_owned();
    let mut s = RawSession::open(
        &d,
        &format!("/v1.47/exec/{exec_id}/start"),
        r#"{"Detach": false, "Tty": true}"#,
    );
    s.send(b"echo in-exec-$((2+2))\r");
    s.read_until("in-exec-4");
    s.send(b"\x01");
    s.expect_closed();
    let inspect = request(
        &d.socket,
        "GET",
        &format!("/v1.47/exec/{exec_id}/json"),
        &[],
        b"",
    );
    assert_eq!(inspect.json()["Running"], true, "{}", inspect.text());

    let bad = request(
        &d.socket,
        "POST",
        "/v1.47/containers/shell/exec",
        &[("Content-Type", "application/json")],
        br#"{"AttachStdout": true, "DetachKeys": "nope-x", "Cmd": ["true"]}"#,
    );
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(bad.text().contains("nope-x"), "{}", bad.text());

    let events = d.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &(now() + 1).to_string(),
        "--format",
        "{{.Action}}",
    ]);
    let actions: Vec<&str> = events.lines().collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "detach").count(),
        2,
        "{events}"
    );
    assert!(actions.contains(&"exec_detach"), "{events}");
    d.assert_clean_after_rm_all();
}

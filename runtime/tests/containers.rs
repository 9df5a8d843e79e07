//! Real containers from a busybox rootfs, as root: isolation, mounts,
//! capabilities, rlimits, users, the lifecycle verbs, exec and hooks.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::{Bundle, Runtime, leftover_cgroups, require_root, text, unique_id};
use serde_json::json;

fn sh(script: &str) -> Bundle {
    Bundle::new(&["sh", "-c", script])
}

#[test]
fn run_prints_output_and_returns_exit_status() {
    require_root();
    let rt = Runtime::new();
    let (code, out, err) = rt.run(&sh("echo hello; exit 7"), &unique_id("exit"));
    assert_eq!(code, 7, "stderr: {err}");
    assert_eq!(out, "hello\n");
}

#[test]
fn container_gets_default_signal_dispositions() {
    require_root();
    let rt = Runtime::new();
    // SIGPIPE is bit 13 of the ignored-signals mask: the runtime itself
    // ignores it (Rust's default) but the container must not inherit that.
    let (code, out, err) = rt.run(&sh("grep SigIgn /proc/self/status"), &unique_id("sigign"));
    assert_eq!(code, 0, "stderr: {err}");
    let mask = u64::from_str_radix(out.trim().trim_start_matches("SigIgn:").trim(), 16).unwrap();
    assert_eq!(
        mask & (1 << (13 - 1)),
        0,
        "SIGPIPE ignored in the container: {out}"
    );
}

#[test]
fn killed_container_reports_128_plus_signal() {
    require_root();
    let rt = Runtime::new();
    let b = sh("sleep 30");
    let id = unique_id("sig");
    let mut run = rt
        .cmd()
        .args(["run", "--bundle", b.path.to_str().unwrap(), &id])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_status(&rt, &id, "running");
    // An init ignores signals from inside its namespace, not SIGKILL from outside.
    rt.ok(&["kill", &id, "KILL"]);
    assert_eq!(run.wait().unwrap().code(), Some(128 + 9));
    assert!(
        !rt.root.path().join(&id).exists(),
        "run deletes the container"
    );
}

#[test]
fn namespaces_isolate_pid_uts_net_ipc_and_mounts() {
    require_root();
    let rt = Runtime::new();
    let mut b = sh(
        "echo pid=$$; hostname; ls /sys/class/net; cat /proc/self/mountinfo | wc -l; ipcs -q | wc -l; \
         cat /sys/class/net/lo/flags",
    );
    b.config["hostname"] = json!("boxy");
    b.save();
    let (code, out, err) = rt.run(&b, &unique_id("ns"));
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "pid=1", "new pid namespace: init is pid 1");
    assert_eq!(lines[1], "boxy");
    assert_eq!(lines[2], "lo", "new network namespace has only lo: {out}");
    // IFF_UP | IFF_LOOPBACK: up, as runc leaves it (a new namespace has it down).
    assert_eq!(lines[5], "0x9", "lo is up: {out}");
    // Namespace identities differ from the host's.
    let mut b = sh(
        "readlink /proc/self/ns/pid /proc/self/ns/uts /proc/self/ns/net /proc/self/ns/ipc /proc/self/ns/mnt",
    );
    b.save();
    let (_, out, _) = rt.run(&b, &unique_id("ns"));
    for (line, ns) in out.lines().zip(["pid", "uts", "net", "ipc", "mnt"]) {
        let host = fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        assert_ne!(line, host.to_str().unwrap(), "{ns} namespace is the host's");
    }
}

#[test]
fn masked_and_readonly_paths() {
    require_root();
    let rt = Runtime::new();
    // Masked paths that exist on this host must read as empty inside.
    let files: Vec<&str> = [
        "/proc/keys",
        "/proc/timer_list",
        "/proc/sched_debug",
        "/proc/kcore",
    ]
    .into_iter()
    .filter(|p| std::path::Path::new(p).exists())
    .collect();
    let dirs: Vec<&str> = ["/sys/firmware", "/proc/scsi", "/proc/acpi"]
        .into_iter()
        .filter(|p| std::path::Path::new(p).exists())
        .collect();
    assert!(
        !files.is_empty() && !dirs.is_empty(),
        "no masked path exists on this host"
    );
    let script = format!(
        "for f in {}; do wc -c < $f; done; for d in {}; do ls $d | wc -l; done; \
         echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo writable || echo readonly",
        files.join(" "),
        dirs.join(" ")
    );
    let (code, out, err) = rt.run(&sh(&script), &unique_id("mask"));
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    let mut want = vec!["0"; files.len() + dirs.len()];
    want.push("readonly");
    assert_eq!(lines, want, "{out}");
}

#[test]
fn readonly_rootfs_refuses_writes() {
    require_root();
    let rt = Runtime::new();
    let mut b =
        sh("touch /etc/x 2>/dev/null && echo wrote || echo refused; touch /tmp/y && echo tmp-ok");
    b.config["root"]["readonly"] = json!(true);
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]
    }));
    b.save();
    let (code, out, err) = rt.run(&b, &unique_id("ro"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "refused\ntmp-ok\n");
    assert!(!b.rootfs().join("etc/x").exists());
}

#[test]
fn dropped_capability_denies_the_call() {
    require_root();
    let rt = Runtime::new();
    // The default set has no CAP_CHOWN.
    let b = sh("chown 1:1 /tmp && echo allowed || echo denied");
    let (_, out, _) = rt.run(&b, &unique_id("cap"));
    assert_eq!(out.trim(), "denied");
    let mut b = sh("chown 1:1 /tmp && echo allowed || echo denied");
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_CHOWN"));
    }
    b.save();
    let (_, out, _) = rt.run(&b, &unique_id("cap"));
    assert_eq!(out.trim(), "allowed");
    let status = fs::read_to_string("/proc/self/status").unwrap();
    assert!(status.contains("CapEff"));
}

#[test]
fn capability_sets_match_the_spec() {
    require_root();
    let rt = Runtime::new();
    let b = sh("grep -E '^Cap(Prm|Eff|Bnd)' /proc/self/status");
    let (_, out, _) = rt.run(&b, &unique_id("caps"));
    // AUDIT_WRITE (29), KILL (5), NET_BIND_SERVICE (10).
    let want = format!("{:016x}", (1u64 << 29) | (1 << 5) | (1 << 10));
    for line in out.lines() {
        assert!(line.ends_with(&want), "{line} != {want}");
    }
}

#[test]
fn rlimits_user_cwd_env_and_no_new_privs() {
    require_root();
    let rt = Runtime::new();
    let mut b = sh(
        "ulimit -n; id -u; id -g; id -G; pwd; echo $GREETING; grep NoNewPrivs /proc/self/status; umask",
    );
    b.config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 300}]);
    b.config["process"]["user"] =
        json!({"uid": 1000, "gid": 1001, "additionalGids": [1002, 1003], "umask": 23});
    b.config["process"]["cwd"] = json!("/tmp");
    b.config["process"]["env"] = json!(["PATH=/bin", "GREETING=hi there"]);
    b.save();
    let (code, out, err) = rt.run(&b, &unique_id("user"));
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..6],
        ["300", "1000", "1001", "1001 1002 1003", "/tmp", "hi there"],
        "{out}"
    );
    assert!(lines[6].ends_with('1'), "{}", lines[6]);
    assert_eq!(lines[7], "0027");
}

#[test]
fn sysctl_and_oom_score_adj() {
    require_root();
    let rt = Runtime::new();
    let mut b = sh("cat /proc/sys/net/ipv4/ip_forward /proc/self/oom_score_adj");
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    b.config["process"]["oomScoreAdj"] = json!(123);
    b.save();
    let (code, out, err) = rt.run(&b, &unique_id("sysctl"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "1\n123\n");
}

#[test]
fn bind_mounts_respect_ro_and_file_targets() {
    require_root();
    let rt = Runtime::new();
    let host = tempfile::tempdir().unwrap();
    fs::write(host.path().join("data"), "from host").unwrap();
    let mut b =
        sh("cat /mnt/data; cat /etc/hostfile; echo x > /mnt/new 2>/dev/null && echo rw || echo ro");
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.push(json!({"destination": "/mnt", "type": "bind", "source": host.path(), "options": ["rbind", "ro"]}));
    mounts.push(json!({"destination": "/etc/hostfile", "type": "bind", "source": host.path().join("data"), "options": ["bind"]}));
    b.save();
    let (code, out, err) = rt.run(&b, &unique_id("bind"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "from hostfrom hostro\n");
    assert!(!host.path().join("new").exists());
}

#[test]
fn mount_destination_symlink_cannot_escape_rootfs() {
    require_root();
    let rt = Runtime::new();
    let host = tempfile::tempdir().unwrap();
    let mut b = sh("echo x > /evil/file && echo wrote");
    // /evil -> the host's temp dir, absolute: it must resolve inside the
    // rootfs, where the same path exists, and the mount land there.
    let inside = b.rootfs().join(host.path().strip_prefix("/").unwrap());
    fs::create_dir_all(&inside).unwrap();
    std::os::unix::fs::symlink(host.path(), b.rootfs().join("evil")).unwrap();
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/evil", "type": "bind", "source": "/bin", "options": ["rbind", "ro"]
    }));
    b.save();
    let (code, out, err) = rt.run(&b, &unique_id("escape"));
    assert_eq!(
        (code, out.as_str()),
        (1, ""),
        "the read-only bind landed somewhere else: {err}"
    );
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(
        !host.path().join("file").exists(),
        "wrote through to the host"
    );
    // And the write to the host's directory side did not happen either way.
    assert!(fs::read_dir(host.path()).unwrap().next().is_none());
}

#[test]
fn lifecycle_create_start_kill_delete() {
    require_root();
    let rt = Runtime::new();
    let b = sh("echo started > /tmp/marker; sleep 30");
    let id = unique_id("life");
    let pid_file = rt.root.path().join("pid");
    rt.ok(&[
        "create",
        "--bundle",
        b.path.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ]);
    assert_eq!(rt.status(&id), "created");
    let pid: i32 = fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert!(fs::metadata(format!("/proc/{pid}")).is_ok());
    let list = rt.ok(&["list", "--format", "json"]);
    assert!(list.contains(&id), "{list}");

    rt.ok(&["start", &id]);
    assert_eq!(rt.status(&id), "running");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !b.rootfs().join("tmp/marker").exists() {
        assert!(Instant::now() < deadline, "container never ran");
        std::thread::sleep(Duration::from_millis(10));
    }
    // start on a running container is refused.
    let out = rt.exec(&["start", &id]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("is running"),
        "{}",
        text(&out.stderr)
    );
    // delete without --force on a running container is refused.
    assert!(!rt.exec(&["delete", &id]).status.success());

    rt.ok(&["kill", &id, "KILL"]);
    wait_status(&rt, &id, "stopped");
    let out = rt.exec(&["kill", &id, "TERM"]);
    assert!(
        !out.status.success(),
        "kill on a stopped container must fail"
    );
    assert!(
        text(&out.stderr).contains("stopped"),
        "{}",
        text(&out.stderr)
    );
    rt.ok(&["delete", &id]);
    let out = rt.exec(&["state", &id]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("does not exist"));
    assert!(
        leftover_cgroups(&id).is_empty(),
        "{:?}",
        leftover_cgroups(&id)
    );
    assert!(!rt.root.path().join(&id).exists());
}

fn wait_status(rt: &Runtime, id: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = rt.exec(&["state", id]);
        let s = if out.status.success() {
            let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            state["status"].as_str().unwrap().to_string()
        } else {
            text(&out.stderr)
        };
        if s == want {
            return;
        }
        assert!(Instant::now() < deadline, "status {s}, want {want}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn delete_force_removes_a_running_container() {
    require_root();
    let rt = Runtime::new();
    let b = sh("sleep 30");
    let id = unique_id("force");
    rt.ok(&["run", "--detach", "--bundle", b.path.to_str().unwrap(), &id]);
    assert_eq!(rt.status(&id), "running");
    let state: serde_json::Value = serde_json::from_str(&rt.ok(&["state", &id])).unwrap();
    let pid = state["pid"].as_i64().unwrap();
    rt.ok(&["delete", "--force", &id]);
    assert!(!rt.root.path().join(&id).exists());
    assert!(leftover_cgroups(&id).is_empty());
    // The init is gone (or a zombie awaiting its parent, our test process).
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(stat.is_empty() || stat.contains(") Z"), "{stat}");
}

#[test]
fn exec_runs_in_the_container() {
    require_root();
    let rt = Runtime::new();
    let mut b = sh("sleep 30");
    b.config["hostname"] = json!("execbox");
    b.save();
    let id = unique_id("exec");
    rt.ok(&["run", "--detach", "--bundle", b.path.to_str().unwrap(), &id]);
    let out = rt.exec(&[
        "exec",
        &id,
        "sh",
        "-c",
        "hostname; cat /proc/1/cmdline | tr '\\0' ' '; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    // busybox sh execs its last command: the init is now `sleep 30`.
    assert_eq!(text(&out.stdout), "execbox\nsleep 30 ");
    // With a process.json, as containerd and conmon pass it.
    let process = json!({"args": ["sh", "-c", "echo $FOO; id -u"], "env": ["PATH=/bin", "FOO=bar"], "cwd": "/", "user": {"uid": 7, "gid": 7}});
    let pfile = rt.root.path().join("process.json");
    fs::write(&pfile, process.to_string()).unwrap();
    let out = rt.exec(&["exec", "--process", pfile.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "bar\n7\n");
    // A missing executable is named, in the wording docker maps to 127.
    let out = rt.exec(&["exec", &id, "nope"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("executable file not found"),
        "{}",
        text(&out.stderr)
    );
    rt.ok(&["delete", "--force", &id]);
}

#[test]
fn hooks_run_in_order_with_state_on_stdin() {
    require_root();
    let rt = Runtime::new();
    let mut b = sh("echo container >> /hooklog");
    // The log lives in the rootfs: hooks in the runtime's mount namespace
    // (and createContainer, before pivot_root) reach it by its host path,
    // startContainer (after pivot_root) as /hooklog.
    let host_log = b.rootfs().join("hooklog");
    let hook = |name: &str, log: &str| {
        json!({"path": "/bin/sh", "args": ["sh", "-c",
            format!("read -r s; case \"$s\" in *'\"id\"'*) echo {name} >> {log};; *) echo {name}-no-state >> {log};; esac")]})
    };
    let host = host_log.to_str().unwrap();
    b.config["hooks"] = json!({
        "prestart": [hook("prestart", host)],
        "createRuntime": [hook("createRuntime", host)],
        "createContainer": [hook("createContainer", host)],
        "startContainer": [hook("startContainer", "/hooklog")],
        "poststart": [hook("poststart", host)],
        "poststop": [hook("poststop", host)],
    });
    b.save();
    let (code, _, err) = rt.run(&b, &unique_id("hooks"));
    assert_eq!(code, 0, "{err}");
    let log = fs::read_to_string(&host_log).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    // The container and poststart race; everything else is ordered.
    assert_eq!(
        lines[..4],
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer"
        ],
        "{log}"
    );
    assert_eq!(lines.last(), Some(&"poststop"), "{log}");
    let mut middle = lines[4..lines.len() - 1].to_vec();
    middle.sort_unstable();
    assert_eq!(middle, ["container", "poststart"], "{log}");
}

#[test]
fn failing_hook_fails_create_and_leaves_nothing() {
    require_root();
    let rt = Runtime::new();
    let mut b = sh("true");
    b.config["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]});
    b.save();
    let id = unique_id("badhook");
    let out = rt.exec(&["create", "--bundle", b.path.to_str().unwrap(), &id]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("createRuntime hook /bin/false failed"),
        "{err}"
    );
    assert!(!rt.root.path().join(&id).exists());
    assert!(leftover_cgroups(&id).is_empty());
}

#[test]
fn bad_input_gives_clear_errors_and_no_leftovers() {
    require_root();
    let rt = Runtime::new();
    let check = |b: &Bundle, want: &str| {
        let id = unique_id("bad");
        let out = rt.exec(&["create", "--bundle", b.path.to_str().unwrap(), &id]);
        assert!(
            !out.status.success(),
            "create succeeded, wanted error {want:?}"
        );
        let err = text(&out.stderr);
        assert!(
            err.contains(want),
            "stderr {err:?} does not mention {want:?}"
        );
        assert!(!rt.root.path().join(&id).exists(), "state dir left behind");
        assert!(leftover_cgroups(&id).is_empty(), "cgroup left behind");
    };
    let mut b = sh("true");
    b.config["process"]["args"] = json!("not a list");
    b.save();
    check(&b, "config.json");
    let mut b = sh("true");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "bogus"}));
    b.save();
    check(&b, "bogus");
    let mut b = sh("true");
    b.config["root"]["path"] = json!("no-such-rootfs");
    b.save();
    check(&b, "no-such-rootfs");
    let b = Bundle::new(&["/no/such/binary"]);
    check(&b, "executable file not found");
    let mut b = sh("true");
    b.config["mounts"].as_array_mut().unwrap().push(json!({"destination": "/x", "type": "bind", "source": "/no/such/source", "options": ["bind"]}));
    b.save();
    check(&b, "/no/such/source");

    // A duplicate id is refused and the first container is untouched.
    let b = sh("sleep 30");
    let id = unique_id("dup");
    rt.ok(&["create", "--bundle", b.path.to_str().unwrap(), &id]);
    let out = rt.exec(&["create", "--bundle", b.path.to_str().unwrap(), &id]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(rt.status(&id), "created");
    rt.ok(&["delete", &id]);
    assert!(leftover_cgroups(&id).is_empty());

    let out = rt.exec(&["state", "no-such-container"]);
    assert!(text(&out.stderr).contains("does not exist"));
    let out = rt.exec(&["create", "--bundle", b.path.to_str().unwrap(), "../escape"]);
    assert!(
        text(&out.stderr).contains("invalid container id"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn no_pivot_and_spec_and_features() {
    require_root();
    let rt = Runtime::new();
    let b = sh("echo ok");
    let id = unique_id("nopivot");
    let out = rt.exec(&[
        "run",
        "--no-pivot",
        "--bundle",
        b.path.to_str().unwrap(),
        &id,
    ]);
    assert_eq!(text(&out.stdout), "ok\n", "{}", text(&out.stderr));
    let features: serde_json::Value = serde_json::from_str(&rt.ok(&["features"])).unwrap();
    assert_eq!(features["linux"]["seccomp"]["enabled"], json!(true));
    // spec refuses to overwrite an existing config.json.
    let out = rt.exec(&["spec", "--bundle", b.path.to_str().unwrap()]);
    assert!(text(&out.stderr).contains("exists"));
}

#[test]
fn preserve_fds_passes_descriptors_three_and_up() {
    use std::os::unix::process::CommandExt;
    require_root();
    let rt = Runtime::new();
    let b = sh("echo through-fd-3 >&3; ls /proc/self/fd | wc -l");
    let out_file = tempfile::NamedTempFile::new().unwrap();
    let fd3 = fs::OpenOptions::new()
        .write(true)
        .open(out_file.path())
        .unwrap();
    let mut cmd = rt.cmd();
    cmd.args([
        "run",
        "--preserve-fds",
        "1",
        "--bundle",
        b.path.to_str().unwrap(),
        &unique_id("fds"),
    ]);
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd3);
    // SAFETY: dup2 is async-signal-safe; fd3 outlives the spawn.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = common::output(&mut cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        fs::read_to_string(out_file.path()).unwrap(),
        "through-fd-3\n"
    );
    // 0, 1, 2, 3 and the one ls opens for /proc/self/fd: nothing leaked.
    assert_eq!(text(&out.stdout).trim(), "5");
}

#[test]
fn spec_devices_are_created() {
    require_root();
    let rt = Runtime::new();
    let mut b = sh("ls -l /dev/fuse /dev/null | cut -c1,34-45");
    b.config["linux"]["devices"] =
        json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438}]);
    b.save();
    let (code, out, err) = rt.run(&b, &unique_id("dev"));
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with('c') && lines[0].contains("10,") && lines[0].contains("229"),
        "{out}"
    );
    assert!(
        lines[1].starts_with('c') && lines[1].contains("1,") && lines[1].contains('3'),
        "{out}"
    );
}

#[test]
fn namespaces_joined_by_path() {
    require_root();
    let rt = Runtime::new();
    let mut first = sh("sleep 30");
    first.config["hostname"] = json!("first");
    first.save();
    let id = unique_id("joinee");
    rt.ok(&[
        "run",
        "--detach",
        "--bundle",
        first.path.to_str().unwrap(),
        &id,
    ]);
    let state: serde_json::Value = serde_json::from_str(&rt.ok(&["state", &id])).unwrap();
    let pid = state["pid"].as_i64().unwrap();
    let mut second = sh("hostname; readlink /proc/self/ns/net");
    second.config["hostname"] = serde_json::Value::Null;
    for ns in second.config["linux"]["namespaces"].as_array_mut().unwrap() {
        let kind = ns["type"].as_str().unwrap().to_string();
        if kind == "uts" || kind == "network" {
            let name = if kind == "network" { "net" } else { "uts" };
            ns["path"] = json!(format!("/proc/{pid}/ns/{name}"));
        }
    }
    second.save();
    let (code, out, err) = rt.run(&second, &unique_id("joiner"));
    assert_eq!(code, 0, "{err}");
    let want_net = fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert_eq!(out, format!("first\n{}\n", want_net.display()));
    rt.ok(&["delete", "--force", &id]);
}

#[test]
fn kill_all_signals_every_process() {
    require_root();
    let rt = Runtime::new();
    let b = sh("sleep 30 & sleep 31 & wait");
    let id = unique_id("killall");
    rt.ok(&["run", "--detach", "--bundle", b.path.to_str().unwrap(), &id]);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut pids: Vec<i32> = Vec::new();
    while pids.len() < 3 {
        assert!(
            Instant::now() < deadline,
            "children never started: {pids:?}"
        );
        pids = serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id])).unwrap();
    }
    rt.ok(&["kill", "--all", &id, "KILL"]);
    wait_status(&rt, &id, "stopped");
    for pid in pids {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            stat.is_empty() || stat.contains(") Z"),
            "{pid} still alive: {stat}"
        );
    }
    rt.ok(&["delete", &id]);
}

#[test]
fn default_devices_are_usable_under_a_deny_all_device_cgroup() {
    require_root();
    let rt = Runtime::new();
    let b = sh(
        "echo x > /dev/null && head -c 4 /dev/zero | wc -c && head -c 4 /dev/urandom | wc -c; \
                mknod /tmp/sda b 8 0 2>/dev/null; cat /tmp/sda 2>/dev/null && echo read-disk || echo disk-denied",
    );
    let mut b = b;
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_MKNOD"));
    }
    // Just "deny all", as podman sends it.
    b.config["linux"]["resources"]["devices"] = json!([{"allow": false, "access": "rwm"}]);
    b.save();
    let (code, out, err) = rt.run(&b, &unique_id("devcg"));
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines, ["4", "4", "disk-denied"], "{out} {err}");
}

#[test]
fn hook_timeout_fails_create_and_leaves_nothing() {
    require_root();
    let rt = Runtime::new();
    let mut b = sh("true");
    b.config["hooks"] =
        json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "10"], "timeout": 1}]});
    b.save();
    let id = unique_id("slowhook");
    let started = Instant::now();
    let out = rt.exec(&["create", "--bundle", b.path.to_str().unwrap(), &id]);
    assert!(!out.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the timeout did not stop the hook"
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("prestart hook /bin/sleep failed: timed out after 1s"),
        "{err}"
    );
    assert!(!rt.root.path().join(&id).exists());
    assert!(leftover_cgroups(&id).is_empty());
}

#[test]
fn tmpcopyup_fills_a_tmpfs_with_the_images_files() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    require_root();
    let rt = Runtime::new();
    let mut b = sh(
        "cat /data/a /data/sub/b; readlink /data/link; stat -c '%a %u' /data/sub/b /data/sub; \
         echo new > /data/c && echo writable; grep ' /data ' /proc/self/mounts | cut -d' ' -f3",
    );
    let data = b.rootfs().join("data");
    fs::create_dir_all(data.join("sub")).unwrap();
    fs::write(data.join("a"), "A\n").unwrap();
    fs::write(data.join("sub/b"), "B\n").unwrap();
    // chown first: it clears setuid.
    std::os::unix::fs::chown(data.join("sub/b"), Some(7), Some(7)).unwrap();
    fs::set_permissions(data.join("sub/b"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::set_permissions(data.join("sub"), fs::Permissions::from_mode(0o710)).unwrap();
    symlink("sub/b", data.join("link")).unwrap();
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "tmpcopyup"]
    }));
    b.save();
    let (code, out, err) = rt.run(&b, &unique_id("copyup"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "A\nB\nsub/b\n4755 7\n710 0\nwritable\ntmpfs\n");
    assert!(
        !data.join("c").exists(),
        "the write went to the image, not the tmpfs"
    );
}

/// runc's check for GHSA-m8cg-xc2p-r3fc: with a read-only "cgroup" mount
/// every mount under `/sys/fs/cgroup` is read-only inside, the v1 tmpfs
/// too, and the container's own cgroup is what it sees there.
#[test]
fn the_cgroup_tree_is_read_only_inside() {
    require_root();
    let rt = Runtime::new();
    let (code, out, err) = rt.run(
        &sh("grep ' /sys/fs/cgroup' /proc/mounts; \
             mkdir /sys/fs/cgroup/x 2>/dev/null && echo WRITABLE; \
             cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max"),
        &unique_id("cgro"),
    );
    assert_eq!(code, 0, "{err}");
    let mounts: Vec<&str> = out
        .lines()
        .filter(|l| l.contains(" /sys/fs/cgroup"))
        .collect();
    let v1 = !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    // v1: the tmpfs and one bind per hierarchy; v2: cgroup2.
    assert!(mounts.len() > if v1 { 2 } else { 0 }, "{out}");
    for m in &mounts {
        let options = m.split_whitespace().nth(3).unwrap_or_default();
        assert!(options.split(',').any(|o| o == "ro"), "not read-only: {m}");
        assert!(options.split(',').any(|o| o == "nosuid"), "{m}");
    }
    assert!(!out.contains("WRITABLE"), "{out}");
    // The container's own pids cgroup (no limit set) is the one mounted.
    assert!(out.lines().any(|l| l == "max"), "{out}");
}

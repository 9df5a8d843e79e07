//! Whole containers under seccomp, cgroup limits, a terminal, and user and
//! time namespaces.

mod common;

use std::fs;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use common::{Bundle, Runtime, leftover_cgroups, require_root, text, unique_id};
use serde_json::{Value, json};

fn sh(script: &str) -> Bundle {
    Bundle::new(&["sh", "-c", script])
}

fn docker_seccomp() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/docker-default-seccomp.json"
    );
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn docker_seccomp_profile_blocks_syscalls_in_the_container() {
    require_root();
    let rt = Runtime::new();
    // unshare(2) is refused by Docker's profile without CAP_SYS_ADMIN;
    // plain work still runs.
    let script = "unshare -U true 2>/dev/null && echo unshare-allowed || echo unshare-blocked; \
                  grep -E '^Seccomp:' /proc/self/status; echo ok > /tmp/f; cat /tmp/f";
    let mut b = sh(script);
    b.config["linux"]["seccomp"] = docker_seccomp();
    b.save();
    let (code, out, err) = rt.run(&b, &unique_id("seccomp"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "unshare-blocked\nSeccomp:\t2\nok\n");
    // Without the profile the same call is only stopped by capabilities,
    // so grant CAP_SYS_ADMIN and see the filter make the difference.
    let mut b = sh("unshare -U true && echo unshare-allowed || echo unshare-blocked");
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_SYS_ADMIN"));
    }
    b.save();
    let (_, out, _) = rt.run(&b, &unique_id("seccomp"));
    assert_eq!(out, "unshare-allowed\n");
    b.config["linux"]["seccomp"] = docker_seccomp();
    b.config["linux"]["seccomp"]["syscalls"]
        .as_array_mut()
        .unwrap()
        .push(json!({"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}));
    b.save();
    let (_, out, _) = rt.run(&b, &unique_id("seccomp"));
    assert_eq!(out, "unshare-blocked\n");
}

#[test]
fn seccomp_without_no_new_privs_is_loaded_before_dropping_caps() {
    require_root();
    let rt = Runtime::new();
    let mut b = sh("grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status");
    b.config["process"]["noNewPrivileges"] = json!(false);
    b.config["linux"]["seccomp"] = docker_seccomp();
    b.save();
    let (code, out, err) = rt.run(&b, &unique_id("nnp"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "NoNewPrivs:\t0\nSeccomp:\t2\n");
}

#[test]
fn pids_limit_stops_fork() {
    require_root();
    let rt = Runtime::new();
    let mut b = sh(
        "cat /sys/fs/cgroup/pids/pids.max; for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; echo all-forked",
    );
    b.config["linux"]["resources"]["pids"] = json!({"limit": 4});
    b.save();
    let (_, out, err) = rt.run(&b, &unique_id("pids"));
    assert_eq!(out, "4\n", "the fifth fork must fail: {out:?} {err:?}");
    assert!(err.contains("can't fork"), "{err}");
}

#[test]
fn memory_limit_oom_kills() {
    require_root();
    let rt = Runtime::new();
    let mut b = sh("echo start; x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived");
    let limit = 16 * 1024 * 1024;
    b.config["linux"]["resources"]["memory"] = json!({"limit": limit, "swap": limit});
    b.save();
    let (code, out, _) = rt.run(&b, &unique_id("oom"));
    assert_eq!(out, "start\n", "the allocation must not survive");
    assert_ne!(code, 0);
}

#[test]
fn pause_resume_and_ps() {
    require_root();
    let rt = Runtime::new();
    let b = sh("sleep 30");
    let id = unique_id("pause");
    rt.ok(&["run", "--detach", "--bundle", b.path.to_str().unwrap(), &id]);
    let pids: Vec<i32> = serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id])).unwrap();
    let state: Value = serde_json::from_str(&rt.ok(&["state", &id])).unwrap();
    assert_eq!(pids, vec![state["pid"].as_i64().unwrap() as i32]);
    rt.ok(&["pause", &id]);
    assert_eq!(rt.status(&id), "paused");
    let stat = fs::read_to_string(format!("/proc/{}/stat", pids[0])).unwrap();
    assert!(stat.contains(") S ") || stat.contains(") D "), "{stat}");
    assert!(
        !rt.exec(&["pause", &id]).status.success(),
        "pausing twice is refused"
    );
    rt.ok(&["resume", &id]);
    assert_eq!(rt.status(&id), "running");
    rt.ok(&["delete", "--force", &id]);
    assert!(leftover_cgroups(&id).is_empty());
}

#[test]
fn update_writes_new_limits_into_a_running_container() {
    require_root();
    let rt = Runtime::new();
    let b = sh("sleep 30");
    let id = unique_id("update");
    rt.ok(&["run", "--detach", "--bundle", b.path.to_str().unwrap(), &id]);
    let resources = b.path.join("resources.json");
    fs::write(&resources, r#"{"pids": {"limit": 7}}"#).unwrap();
    rt.ok(&["update", "--resources", resources.to_str().unwrap(), &id]);
    let pids_max = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        format!("/sys/fs/cgroup/berth/{id}/pids.max")
    } else {
        format!("/sys/fs/cgroup/pids/berth/{id}/pids.max")
    };
    assert_eq!(fs::read_to_string(&pids_max).unwrap().trim(), "7");
    // Not JSON resources: refused, naming the file.
    fs::write(&resources, "{").unwrap();
    let out = rt.exec(&["update", "-r", resources.to_str().unwrap(), &id]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("parsing") && stderr.contains("resources.json"),
        "{stderr}"
    );
    rt.ok(&["delete", "--force", &id]);
    // A deleted container cannot be updated.
    fs::write(&resources, r#"{"pids": {"limit": 8}}"#).unwrap();
    let out = rt.exec(&["update", "-r", resources.to_str().unwrap(), &id]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(leftover_cgroups(&id).is_empty());
}

/// Receives one descriptor sent with SCM_RIGHTS.
fn recv_fd(sock: &std::os::unix::net::UnixStream) -> OwnedFd {
    use std::os::fd::AsRawFd;
    let mut data = [0u8; 256];
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: a zeroed msghdr is valid; every pointer set below is live.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        assert!(libc::recvmsg(sock.as_raw_fd(), &mut msg, 0) > 0);
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        assert!(!cmsg.is_null());
        assert_eq!((*cmsg).cmsg_type, libc::SCM_RIGHTS);
        OwnedFd::from_raw_fd(std::ptr::read_unaligned(
            libc::CMSG_DATA(cmsg).cast::<i32>(),
        ))
    }
}

#[test]
fn terminal_over_console_socket() {
    require_root();
    let rt = Runtime::new();
    let mut b = sh("tty; stty size; echo hi from tty");
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["consoleSize"] = json!({"height": 33, "width": 99});
    b.save();
    let sock_path = rt.root.path().join("console.sock");
    let listener = UnixListener::bind(&sock_path).unwrap();
    let id = unique_id("tty");
    let args = [
        "create",
        "--bundle",
        b.path.to_str().unwrap(),
        "--console-socket",
        sock_path.to_str().unwrap(),
        &id,
    ];
    let create = std::thread::spawn({
        let mut cmd = rt.cmd();
        cmd.args(args);
        move || common::output(&mut cmd)
    });
    let (conn, _) = listener.accept().unwrap();
    let master = recv_fd(&conn);
    let out = create.join().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    rt.ok(&["start", &id]);
    let mut pty = fs::File::from(master);
    let mut got = String::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 1024];
    while !got.contains("hi from tty") && Instant::now() < deadline {
        match pty.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    assert!(got.contains("/dev/pts/0"), "{got:?}");
    assert!(got.contains("33 99"), "{got:?}");
    assert!(got.contains("hi from tty"), "{got:?}");
}

#[test]
fn user_namespace_maps_root_to_an_unprivileged_uid() {
    require_root();
    let rt = Runtime::new();
    let mut b =
        sh("id -u; cat /proc/self/uid_map; touch /proc/sys/kernel/x 2>/dev/null || echo denied");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.save();
    let (code, out, err) = rt.run(&b, &unique_id("userns"));
    assert_eq!(code, 0, "{err}");
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(lines, ["0", "0 100000 65536", "denied"], "{out}");
}

#[test]
fn time_namespace_offsets_shift_boottime() {
    require_root();
    let rt = Runtime::new();
    let mut b = sh("cut -d. -f1 /proc/uptime");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    b.config["linux"]["timeOffsets"] = json!({"boottime": {"secs": 864000, "nanosecs": 0}});
    b.save();
    let (code, out, err) = rt.run(&b, &unique_id("timens"));
    assert_eq!(code, 0, "{err}");
    let host: f64 = fs::read_to_string("/proc/uptime")
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let inside: f64 = out.trim().parse().unwrap();
    assert!(
        inside - host > 863_000.0,
        "uptime inside {inside}, host {host}"
    );
}

#[test]
fn apparmor_and_selinux_are_ignored_with_a_warning_where_the_host_lacks_them() {
    require_root();
    if std::path::Path::new("/sys/module/apparmor/parameters/enabled").exists()
        || std::path::Path::new("/sys/fs/selinux/enforce").exists()
    {
        panic!("this host has apparmor or selinux: extend this test to apply them");
    }
    let rt = Runtime::new();
    let mut b = sh("echo ran");
    b.config["process"]["apparmorProfile"] = json!("docker-default");
    b.config["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0");
    b.save();
    let (code, out, err) = rt.run(&b, &unique_id("lsm"));
    assert_eq!((code, out.as_str()), (0, "ran\n"), "{err}");
    assert!(
        err.contains("apparmor is not enabled on this host, ignoring profile \"docker-default\""),
        "{err}"
    );
    assert!(err.contains("selinux is not enabled"), "{err}");
    // With --log (as containerd's shim passes it) warnings go to the log,
    // since the runtime's stderr may be the container's own.
    let log = rt.root.path().join("log.json");
    let out = rt.exec(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "run",
        "--bundle",
        b.path.to_str().unwrap(),
        &unique_id("lsm"),
    ]);
    assert_eq!(text(&out.stdout), "ran\n");
    assert!(
        !text(&out.stderr).contains("apparmor"),
        "{}",
        text(&out.stderr)
    );
    let logged = fs::read_to_string(&log).unwrap();
    let first: Value = serde_json::from_str(logged.lines().next().unwrap()).unwrap();
    assert_eq!(first["level"], "warning");
    assert!(
        first["msg"]
            .as_str()
            .unwrap()
            .contains("apparmor is not enabled"),
        "{logged}"
    );
}

#[test]
fn exec_with_a_terminal() {
    require_root();
    let rt = Runtime::new();
    let b = sh("sleep 30");
    let id = unique_id("exectty");
    rt.ok(&["run", "--detach", "--bundle", b.path.to_str().unwrap(), &id]);
    let sock_path = rt.root.path().join("exec-console.sock");
    let listener = UnixListener::bind(&sock_path).unwrap();
    let exec = std::thread::spawn({
        let mut cmd = rt.cmd();
        cmd.args([
            "exec",
            "-t",
            "--console-socket",
            sock_path.to_str().unwrap(),
            &id,
            "sh",
            "-c",
            "tty; exit 6",
        ]);
        move || common::output(&mut cmd)
    });
    let (conn, _) = listener.accept().unwrap();
    let mut pty = fs::File::from(recv_fd(&conn));
    let mut got = String::new();
    let mut buf = [0u8; 256];
    while !got.contains("/dev/pts/") {
        match pty.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    let out = exec.join().unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    assert!(got.contains("/dev/pts/0"), "{got:?}");
    rt.ok(&["delete", "--force", &id]);
}

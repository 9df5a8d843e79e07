//! Real containers under berth-shim (root, busybox bundles).

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use berth_shim::client::{self, ClientError};
use berth_shim::protocol::{Status, frame};
use common::*;

fn run_to_exit(args: &[&str]) -> (Fixture, i32) {
    let f = Fixture::spawn(args);
    f.client().start().unwrap();
    let exit = f.client().wait().unwrap();
    (f, exit.exit_code)
}

#[test]
fn echo_goes_to_json_file_log() {
    let (f, code) = run_to_exit(&["sh", "-c", "echo hi; echo oops >&2; printf partial"]);
    assert_eq!(code, 0);
    let entries = f.log_entries();
    assert!(
        entries.contains(&("stdout".into(), "hi\n".into())),
        "{entries:?}"
    );
    assert!(
        entries.contains(&("stderr".into(), "oops\n".into())),
        "{entries:?}"
    );
    assert!(
        entries.contains(&("stdout".into(), "partial".into())),
        "{entries:?}"
    );
    let raw = std::fs::read_to_string(f.dirs.log_path()).unwrap();
    let first: serde_json::Value = serde_json::from_str(raw.lines().next().unwrap()).unwrap();
    let time = first["time"].as_str().unwrap();
    assert!(time.ends_with('Z') && time.len() == 30, "{time}");
}

#[test]
fn container_gets_the_spec_environment_not_the_shims() {
    // The shim runs with a malloc tunable of its own (see client::spawn).
    let (f, code) = run_to_exit(&["env"]);
    assert_eq!(code, 0);
    let mut env: Vec<String> = f
        .log_entries()
        .into_iter()
        .filter(|(stream, _)| stream == "stdout")
        .map(|(_, line)| line.trim_end().to_owned())
        .collect();
    env.sort();
    let spec_env = f.bundle.config["process"]["env"].as_array().unwrap();
    let mut want: Vec<String> = spec_env
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    want.sort();
    assert_eq!(env, want);
}

#[test]
fn exit_codes_follow_docker() {
    assert_eq!(run_to_exit(&["true"]).1, 0);
    assert_eq!(run_to_exit(&["sh", "-c", "exit 3"]).1, 3);

    let f = Fixture::spawn(&["sleep", "100"]);
    f.client().start().unwrap();
    f.client().kill(libc::SIGKILL, false).unwrap();
    let exit = f.client().wait().unwrap();
    assert_eq!((exit.exit_code, exit.signal), (137, Some(libc::SIGKILL)));
    // Persisted before it was announced.
    let on_disk = client::read_exit(&f.dirs.state_dir()).unwrap().unwrap();
    assert_eq!(on_disk, exit);
    assert!(on_disk.started_at.is_some());
}

#[test]
fn missing_binary_is_127_and_not_executable_is_126() {
    require_root();
    let bundle = Bundle::new(&["/no/such/binary"]);
    let dirs = Dirs::new("missing");
    let err = client::spawn(&dirs.options(&bundle)).unwrap_err();
    assert_eq!(err.exit_code(), Some(127), "{err}");
    assert!(err.to_string().contains("/no/such/binary"), "{err}");
    // The shim exited and left nothing behind.
    assert!(client::connect(&dirs.state_dir()).is_err());
    assert!(leftover_cgroups(&dirs.id).is_empty());
    assert!(!dirs.runtime_root().join(&dirs.id).exists());

    let bundle = Bundle::new(&["/etc/passwd"]);
    let dirs = Dirs::new("noexec");
    let err = client::spawn(&dirs.options(&bundle)).unwrap_err();
    assert_eq!(err.exit_code(), Some(126), "{err}");
    cleanup(&dirs, None);
}

#[test]
fn several_waiters_get_the_exit() {
    let f = Fixture::spawn(&["sh", "-c", "sleep 0.3; exit 5"]);
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let c = f.client().clone();
            std::thread::spawn(move || c.wait().unwrap().exit_code)
        })
        .collect();
    f.client().start().unwrap();
    for w in waiters {
        assert_eq!(w.join().unwrap(), 5);
    }
    // A waiter arriving after the exit is answered at once.
    assert_eq!(f.client().wait().unwrap().exit_code, 5);
    let state = f.client().state().unwrap();
    assert_eq!(state.status, Status::Stopped);
    assert_eq!(state.exit.unwrap().exit_code, 5);
}

#[test]
fn state_and_kill() {
    // The init is pid 1 of its namespace: signals it has no handler for
    // are ignored, so the shell traps TERM to show it arrived.
    let f = Fixture::spawn(&[
        "sh",
        "-c",
        "trap 'exit 42' TERM; echo trapped; while true; do sleep 0.05; done",
    ]);
    let mut attach = f.client().attach(false, false).unwrap();
    let s = f.client().state().unwrap();
    assert_eq!(s.status, Status::Created);
    assert!(s.started_at.is_none() && s.pid > 0);
    f.client().start().unwrap();
    let s = f.client().state().unwrap();
    assert_eq!(s.status, Status::Running);
    assert!(process_alive(s.pid));
    assert!(f.client().start().is_err(), "second start");
    // Signal only once the trap is set.
    let (_, first) = attach.read_frame().unwrap().unwrap();
    assert_eq!(first, b"trapped\n");
    f.client().kill(libc::SIGTERM, false).unwrap();
    let exit = f.client().wait().unwrap();
    assert_eq!((exit.exit_code, exit.signal), (42, None));
    let err = f.client().kill(libc::SIGTERM, false).unwrap_err();
    assert!(matches!(err, ClientError::Shim { .. }), "{err}");
}

#[test]
fn logs_rotate_by_size() {
    let f = Fixture::spawn_with(
        Bundle::new(&[
            "sh",
            "-c",
            "i=0; while [ $i -lt 200 ]; do echo line $i; i=$((i+1)); done",
        ]),
        |o| {
            let log = o.log.as_mut().unwrap();
            log.max_size = 1000;
            log.max_files = 3;
        },
    );
    f.client().start().unwrap();
    assert_eq!(f.client().wait().unwrap().exit_code, 0);
    let p = f.dirs.log_path();
    let numbered = |n: u32| format!("{}.{n}", p.display());
    for file in [p.display().to_string(), numbered(1), numbered(2)] {
        let len = std::fs::metadata(&file).unwrap().len();
        assert!(len > 0 && len <= 1000, "{file}: {len}");
    }
    assert!(!std::path::Path::new(&numbered(3)).exists());
    let last = f.log_entries();
    assert_eq!(last.last().unwrap().1, "line 199\n");
}

#[test]
fn attach_streams_live_output() {
    let f = Fixture::spawn(&["sh", "-c", "echo one; echo two >&2; sleep 0.2; echo three"]);
    let mut attach = f.client().attach(false, false).unwrap();
    f.client().start().unwrap();
    let (out, err) = attach.read_to_end().unwrap();
    assert_eq!(String::from_utf8_lossy(&out), "one\nthree\n");
    assert_eq!(String::from_utf8_lossy(&err), "two\n");
    assert_eq!(f.client().wait().unwrap().exit_code, 0);
}

/// The start carried by an attach: all the output from the first byte,
/// and the start's own checks (a second start is refused on it too).
#[test]
fn attach_and_start_streams_everything_in_one_request() {
    let f = Fixture::spawn(&["sh", "-c", "echo one; echo two >&2; echo three"]);
    let mut other = f.client().attach(false, false).unwrap();
    let mut attach = f.client().attach_and_start(false, false).unwrap();
    // Started when answered (it may have exited already).
    let state = f.client().state().unwrap();
    assert_ne!(state.status, Status::Created);
    assert!(state.started_at.is_some());
    let (out, err) = attach.read_to_end().unwrap();
    assert_eq!(String::from_utf8_lossy(&out), "one\nthree\n");
    assert_eq!(String::from_utf8_lossy(&err), "two\n");
    // An attach made before it got the output too.
    let (out, _) = other.read_to_end().unwrap();
    assert_eq!(String::from_utf8_lossy(&out), "one\nthree\n");
    assert_eq!(f.client().wait().unwrap().exit_code, 0);
    let again = f.client().attach_and_start(false, false).unwrap_err();
    assert!(again.to_string().contains("already started"), "{again}");
}

#[test]
fn attach_to_running_container() {
    let f = Fixture::spawn(&["sh", "-c", "while true; do echo tick; sleep 0.05; done"]);
    f.client().start().unwrap();
    let mut attach = f.client().attach(false, false).unwrap();
    let (stream, data) = attach.read_frame().unwrap().unwrap();
    assert_eq!(stream, frame::STDOUT);
    assert!(String::from_utf8_lossy(&data).starts_with("tick"));
    f.client().kill(libc::SIGKILL, false).unwrap();
    // The stream ends with the container.
    while attach.read_frame().unwrap().is_some() {}
    assert_eq!(f.client().wait().unwrap().exit_code, 137);
}

#[test]
fn stdin_reaches_the_container() {
    let f = Fixture::spawn_with(
        Bundle::new(&["sh", "-c", "read a; echo got $a; cat"]),
        |o| o.stdin = true,
    );
    let mut attach = f.client().attach(true, true).unwrap();
    f.client().start().unwrap();
    let mut stdin = attach.stdin.take().expect("stdin passed");
    stdin.write_all(b"hello\nrest\n").unwrap();
    drop(stdin);
    // Closing the handed-over stdin is EOF for `cat`: the container ends.
    let (out, _) = attach.read_to_end().unwrap();
    assert_eq!(String::from_utf8_lossy(&out), "got hello\nrest\n");
    assert_eq!(f.client().wait().unwrap().exit_code, 0);
    assert_eq!(f.log_text("stdout"), "got hello\nrest\n");
}

#[test]
fn exec_runs_in_the_container() {
    let f = Fixture::spawn(&["sleep", "100"]);
    f.client().start().unwrap();
    let mut process = oci_spec::runtime::Process::default();
    process.set_args(Some(vec![
        "sh".into(),
        "-c".into(),
        "read x; echo $x $(hostname); exit 7".into(),
    ]));
    process.set_terminal(Some(false));
    let mut exec = f.client().exec(&process, true).unwrap();
    assert!(exec.pid > 0);
    exec.stdin
        .take()
        .unwrap()
        .write_all(b"from-exec\n")
        .unwrap();
    let mut out = String::new();
    exec.stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(exec.wait().unwrap(), 7);
    let hostname = f.bundle.config["hostname"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert_eq!(out.trim(), format!("from-exec {hostname}").trim());

    process.set_args(Some(vec!["/no/such".into()]));
    let err = f.client().exec(&process, false).unwrap_err();
    assert_eq!(err.exit_code(), Some(127), "{err}");
    // The container was not disturbed.
    assert_eq!(f.client().state().unwrap().status, Status::Running);
}

#[test]
fn tty_container_writes_through_the_pty() {
    let f = Fixture::spawn_with(
        Bundle::new(&[
            "sh",
            "-c",
            "sleep 0.3; stty size; [ -t 1 ] && echo is-a-tty",
        ])
        .tty(),
        |o| o.tty = true,
    );
    let mut attach = f.client().attach(false, false).unwrap();
    assert!(attach.tty);
    f.client().resize(33, 99).unwrap();
    f.client().start().unwrap();
    let (out, err) = attach.read_to_end().unwrap();
    let out = String::from_utf8_lossy(&out);
    assert!(out.contains("33 99"), "{out:?}");
    assert!(out.contains("is-a-tty\r\n"), "{out:?}");
    assert!(err.is_empty());
    assert_eq!(f.client().wait().unwrap().exit_code, 0);
    assert!(f.log_text("stdout").contains("is-a-tty"));
}

#[test]
fn live_restore_after_client_is_dropped() {
    let f = Fixture::spawn(&["sleep", "100"]);
    let dir = f.dirs.state_dir();
    let mut fixture = f;
    let first = fixture.client.take().unwrap();
    first.start().unwrap();
    drop(first);
    let again = client::connect(&dir).unwrap();
    assert_eq!(again.state().unwrap().status, Status::Running);
    again.kill(libc::SIGKILL, false).unwrap();
    assert_eq!(again.wait().unwrap().exit_code, 137);
    fixture.client = Some(again);
}

/// The "daemon" is a child process (this test binary re-run as
/// [`helper_daemon`]) that spawns and starts the shim and is then
/// SIGKILLed; the container keeps running and a new client takes over.
#[test]
fn live_restore_after_daemon_is_killed() {
    require_root();
    let bundle = Bundle::new(&["sh", "-c", "while true; do echo alive; sleep 0.05; done"]);
    let dirs = Dirs::new("restore");
    let _guard = CleanupGuard(&dirs);
    let mut daemon = ChildGuard(
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "helper_daemon", "--ignored", "--nocapture"])
            .env(HELPER_ENV, bundle.path.as_os_str())
            .env("BERTH_SHIM_HELPER_ID", &dirs.id)
            .env("BERTH_SHIM_HELPER_DIR", dirs.tmp.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut out = std::io::BufReader::new(daemon.0.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0,
            "helper daemon ended before the container started"
        );
        if line.starts_with("started") {
            break;
        }
    }
    daemon.0.kill().unwrap();
    daemon.0.wait().unwrap();

    let client = client::connect(&dirs.state_dir()).unwrap();
    let state = client.state().unwrap();
    assert_eq!(state.status, Status::Running);
    assert!(process_alive(state.pid) && process_alive(state.shim_pid));
    let before = read_log(&dirs.log_path()).len();
    std::thread::sleep(Duration::from_millis(300));
    assert!(read_log(&dirs.log_path()).len() > before, "logging went on");
    let mut attach = client.attach(false, false).unwrap();
    assert!(attach.read_frame().unwrap().is_some());
    client.kill(libc::SIGKILL, false).unwrap();
    assert_eq!(client.wait().unwrap().exit_code, 137);
}

const HELPER_ENV: &str = "BERTH_SHIM_HELPER_BUNDLE";

/// Not a test: the "daemon" of `live_restore_after_daemon_is_killed`.
#[test]
#[ignore = "helper process, does nothing unless run by another test"]
fn helper_daemon() {
    let Some(bundle) = std::env::var_os(HELPER_ENV) else {
        return;
    };
    let base = std::path::PathBuf::from(std::env::var_os("BERTH_SHIM_HELPER_DIR").unwrap());
    let id = std::env::var("BERTH_SHIM_HELPER_ID").unwrap();
    let opts = spawn_options(&base, &id, std::path::Path::new(&bundle));
    let c = client::spawn(&opts).unwrap();
    c.start().unwrap();
    println!("started");
    std::thread::sleep(Duration::from_secs(60));
}

/// Kills and reaps the child if the test ends early.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct CleanupGuard<'a>(&'a Dirs);

impl Drop for CleanupGuard<'_> {
    fn drop(&mut self) {
        cleanup(self.0, None);
    }
}

#[test]
fn shutdown_removes_container_and_exits() {
    let f = Fixture::spawn(&["sleep", "100"]);
    f.client().start().unwrap();
    let shim_pid = f.client().shim_pid();
    let init = f.client().state().unwrap().pid;
    assert!(
        !leftover_cgroups(&f.dirs.id).is_empty(),
        "cgroup exists while running"
    );
    f.client().shutdown().unwrap();
    // The shim closed its socket as it exited; it is our grandchild's
    // child, reaped by init, so poll briefly for the pid to vanish.
    for _ in 0..100 {
        if !process_alive(shim_pid) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!process_alive(shim_pid), "shim still running");
    assert!(!process_alive(init), "init still running");
    assert!(leftover_cgroups(&f.dirs.id).is_empty());
    assert!(!f.dirs.runtime_root().join(&f.dirs.id).exists());
    assert!(!f.dirs.state_dir().join("shim.sock").exists());
    assert_eq!(
        client::read_exit(&f.dirs.state_dir())
            .unwrap()
            .unwrap()
            .exit_code,
        137
    );
    assert!(client::connect(&f.dirs.state_dir()).is_err());
}

/// A started `sleep 100` container with a `sleep 100` exec in it.
fn running_with_a_sleeping_exec() -> (Fixture, client::Exec) {
    let f = Fixture::spawn(&["sleep", "100"]);
    f.client().start().unwrap();
    let mut process = oci_spec::runtime::Process::default();
    process.set_args(Some(vec!["sleep".into(), "100".into()]));
    process.set_terminal(Some(false));
    let exec = f.client().exec(&process, false).unwrap();
    (f, exec)
}

#[test]
fn kill_all_reaches_exec_processes() {
    let (f, mut exec) = running_with_a_sleeping_exec();
    f.client().kill(libc::SIGKILL, true).unwrap();
    assert_eq!(exec.wait().unwrap(), 137);
    assert_eq!(f.client().wait().unwrap().exit_code, 137);
}

#[test]
fn an_abandoned_exec_is_killed_and_still_reported() {
    let (f, mut exec) = running_with_a_sleeping_exec();
    exec.canceller().unwrap().cancel();
    assert_eq!(exec.wait().unwrap(), 137);
    // The container itself is untouched.
    assert_eq!(f.client().state().unwrap().status, Status::Running);
    f.client().kill(libc::SIGKILL, false).unwrap();
    assert_eq!(f.client().wait().unwrap().exit_code, 137);
}

#[test]
fn tty_stdin_goes_through_the_pty_master() {
    let f = Fixture::spawn_with(
        Bundle::new(&["sh", "-c", "read line; echo got:$line"]).tty(),
        |o| {
            o.tty = true;
            o.stdin = true;
        },
    );
    let mut attach = f.client().attach(true, false).unwrap();
    f.client().start().unwrap();
    let mut pty = attach.stdin.take().expect("pty master passed");
    pty.write_all(b"abc\n").unwrap();
    let (out, _) = attach.read_to_end().unwrap();
    let out = String::from_utf8_lossy(&out);
    assert!(out.contains("got:abc\r\n"), "{out:?}");
    assert_eq!(f.client().wait().unwrap().exit_code, 0);
}

#[test]
fn second_shim_for_a_live_state_dir_is_refused() {
    let f = Fixture::spawn(&["sleep", "100"]);
    let mut opts = f.dirs.options(&f.bundle);
    opts.id = unique_id("second");
    let err = client::spawn(&opts).unwrap_err();
    assert!(err.to_string().contains("already serves"), "{err}");
    // The first shim still answers.
    assert_eq!(f.client().state().unwrap().status, Status::Created);
}

/// Rust ignores SIGPIPE in its own processes, and ignored signals stay
/// ignored across execve: the shim must not pass that on.
#[test]
fn container_gets_default_sigpipe() {
    let (f, code) = run_to_exit(&["grep", "SigIgn", "/proc/self/status"]);
    assert_eq!(code, 0);
    let line = f.log_text("stdout");
    let mask = u64::from_str_radix(line.trim().trim_start_matches("SigIgn:").trim(), 16).unwrap();
    assert_eq!(mask & (1 << (libc::SIGPIPE - 1)), 0, "{line}");
}

#[test]
fn a_standby_shim_runs_the_container_it_is_given_and_leaves_when_unused() {
    require_root();
    let standby_pids = |tag: &std::path::Path| -> Vec<i32> {
        let needle = tag.to_string_lossy().into_owned();
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let text = String::from_utf8_lossy(&cmdline);
                text.contains("--standby") && text.contains(&needle)
            })
            .collect()
    };
    let dirs = Dirs::new("standby");
    let tag = dirs.tmp.path().join("tag");
    let mut bundle = Bundle::new(&["sh", "-c", "echo from-standby"]);
    bundle.save();

    let standby = client::Standby::start(std::path::Path::new(SHIM), &tag).unwrap();
    assert_eq!(standby_pids(&tag).len(), 1, "one standby shim waits");
    let c = standby
        .spawn(&dirs.options(&bundle))
        .expect("the standby is alive")
        .unwrap();
    c.start().unwrap();
    assert_eq!(c.wait().unwrap().exit_code, 0);
    assert!(
        read_log(&dirs.log_path()).contains(&("stdout".into(), "from-standby\n".into())),
        "{:?}",
        read_log(&dirs.log_path())
    );
    // Its diagnostics went to the shim log in the state dir, as a shim
    // started directly has them.
    assert!(dirs.state_dir().join("shim.log").exists());
    cleanup(&dirs, Some(c));
    // The shim answers the shutdown, then exits.
    let gone = || {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !standby_pids(&tag).is_empty() {
            assert!(std::time::Instant::now() < deadline, "standby shim stayed");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    gone();

    // A standby whose daemon goes away (the socket closes) exits.
    let unused = client::Standby::start(std::path::Path::new(SHIM), &tag).unwrap();
    assert_eq!(standby_pids(&tag).len(), 1);
    drop(unused);
    gone();
}

/// The shim starts the container it created without reading its state
/// again: the spec's start hooks still run, in order, with the state.
#[test]
fn start_hooks_run_under_the_shim() {
    let mut bundle = Bundle::new(&["sh", "-c", "echo container >> /hooklog"]);
    let host_log = bundle.path.join("rootfs/hooklog");
    let hook = |name: &str, log: &str| {
        serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c",
            format!("read -r s; case \"$s\" in *'\"id\"'*) echo {name} >> {log};; *) echo {name}-no-state >> {log};; esac")]})
    };
    bundle.config["hooks"] = serde_json::json!({
        "startContainer": [hook("startContainer", "/hooklog")],
        "poststart": [hook("poststart", host_log.to_str().unwrap())],
    });
    bundle.save();
    let f = Fixture::spawn_with(bundle, |_| {});
    f.client().start().unwrap();
    assert_eq!(f.client().wait().unwrap().exit_code, 0);
    let log = std::fs::read_to_string(&host_log).unwrap();
    let mut lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.first(), Some(&"startContainer"), "{log}");
    // The container and poststart race.
    lines[1..].sort_unstable();
    assert_eq!(lines[1..], ["container", "poststart"], "{log}");
}

/// A created container whose init was killed before the start: the start
/// is refused as for a stopped container.
#[test]
fn start_after_the_init_died_is_refused() {
    let f = Fixture::spawn(&["true"]);
    let pid = f.client().state().unwrap().pid;
    // SAFETY: kill has no memory effects.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let exit = f.client().wait().unwrap();
    assert_eq!(exit.exit_code, 137);
    let err = f.client().start().unwrap_err().to_string();
    assert!(err.contains("exited before the start"), "{err}");
}

//! `berth` in a terminal: each command runs on a pty the test drives (the
//! `expectrl` crate), against a real berthd. Raw mode and the container's
//! own tty, the size at start and on SIGWINCH, ctrl-c reaching the
//! container, the detach keys (ctrl-p ctrl-q or `--detach-keys`), attach
//! after a detach, exec -it, signals forwarded without a tty, and the exit
//! statuses of each.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{ok, start_berthd};
use expectrl::process::unix::WaitStatus;
use expectrl::session::OsSession as Session;
use expectrl::{Eof, Expect};

/// `berth -H host args...` on a fresh pty of `rows` x `cols` (set with
/// `stty` before berth starts, so its first look at the terminal sees it).
fn spawn(host: &str, rows: u16, cols: u16, args: &[&str]) -> Session {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("stty rows {rows} cols {cols} && exec \"$@\""))
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_berth"))
        .arg("-H")
        .arg(host)
        .args(args)
        .env_remove("DOCKER_HOST")
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_API_VERSION");
    let mut session = Session::spawn(cmd).expect("spawning berth on a pty");
    session.set_expect_timeout(Some(Duration::from_secs(30)));
    session
}

/// Waits for `text` on the terminal, returning what came before it.
fn expect(session: &mut Session, text: &str) -> String {
    match session.expect(text) {
        Ok(found) => String::from_utf8_lossy(found.before()).into_owned(),
        Err(e) => panic!("waiting for {text:?} on the terminal: {e}"),
    }
}

/// Reads to the end of the output and returns berth's exit status.
fn exit_status(mut session: Session) -> i32 {
    session
        .expect(Eof)
        .expect("berth closes the terminal when it exits");
    match session.get_process().wait().expect("waiting for berth") {
        WaitStatus::Exited(_, code) => code,
        other => panic!("berth ended with {other:?}"),
    }
}

fn running(host: &str, name: &str) -> String {
    ok(host, &["inspect", "--format", "{{.State.Running}}", name])
        .trim()
        .to_string()
}

#[test]
fn run_it_gives_the_container_a_terminal_and_detaches_on_ctrl_p_ctrl_q() {
    let d = start_berthd();
    let h = d.host();
    let mut t = spawn(
        &h,
        33,
        101,
        &["run", "-it", "--name", "shell", "busybox", "sh"],
    );
    expect(&mut t, "/ # ");

    // The container has a tty of the terminal's size, and the local
    // terminal is raw: the shell, not the pty, echoes what is typed.
    t.send("tty; stty size; echo sum-$((20+22))\r").unwrap();
    let before = expect(&mut t, "sum-42");
    assert!(before.contains("/dev/pts/0"), "{before:?}");
    assert!(before.contains("33 101"), "{before:?}");
    expect(&mut t, "/ # ");

    // A resize of the terminal reaches the container (SIGWINCH → resize),
    // and ctrl-c goes through its tty to the foreground process. (A
    // script's traps, as ash at its prompt redraws rather than trap.)
    t.send(concat!(
        r#"sh -c 'trap "echo winched-\$(stty size | tr \" \" x)" WINCH; "#,
        r#"trap "echo caught-INT; exit 3" INT; echo armed-$((1+1)); "#,
        r#"while :; do sleep 0.1; done'; echo inner-exit-$?"#,
        "\r"
    ))
    .unwrap();
    expect(&mut t, "armed-2");
    t.get_process_mut().set_window_size(120, 40).unwrap();
    expect(&mut t, "winched-40x120");
    t.send([0x03]).unwrap();
    expect(&mut t, "caught-INT");
    expect(&mut t, "inner-exit-3");
    expect(&mut t, "/ # ");

    // ctrl-p ctrl-q: berth exits 0 and says nothing, the shell runs on.
    t.send([0x10, 0x11]).unwrap();
    assert_eq!(exit_status(t), 0);
    assert_eq!(running(&h, "shell"), "true");

    // attach gets the same shell back, stdin included; its exit status is
    // the container's.
    let mut t = spawn(&h, 24, 80, &["attach", "shell"]);
    t.send("echo back-$((1+1))\r").unwrap();
    expect(&mut t, "back-2");
    t.send("exit 7\r").unwrap();
    assert_eq!(exit_status(t), 7);
    assert_eq!(running(&h, "shell"), "false");

    // start -ai brings the stopped shell back on this terminal; a detach
    // is silent and status 0 there too, as with docker.
    let mut t = spawn(&h, 24, 80, &["start", "-ai", "shell"]);
    t.send("echo again-$((1+1))\r").unwrap();
    expect(&mut t, "again-2");
    t.send([0x10, 0x11]).unwrap();
    assert_eq!(exit_status(t), 0);
    assert_eq!(running(&h, "shell"), "true");
    ok(&h, &["rm", "-f", "shell"]);
}

#[test]
fn attach_and_exec_detach_with_read_escape_sequence_and_their_own_keys() {
    let d = start_berthd();
    let h = d.host();
    ok(&h, &["run", "-dit", "--name", "box", "busybox", "sh"]);

    // attach: docker's "read escape sequence" and status 1 at the keys.
    let mut t = spawn(&h, 24, 80, &["attach", "box"]);
    t.send("echo attached-$((3+4))\r").unwrap();
    expect(&mut t, "attached-7");
    t.send([0x10, 0x11]).unwrap();
    expect(&mut t, "read escape sequence");
    assert_eq!(exit_status(t), 1);
    assert_eq!(running(&h, "box"), "true");

    // exec -it: a tty of its own; detached, the process runs on, printing
    // to no one.
    let mut t = spawn(&h, 24, 80, &["exec", "-it", "box", "sh"]);
    t.send("echo $$ > /exec-pid; tty; while :; do echo tick-$((2+2)); sleep 0.1; done\r")
        .unwrap();
    let before = expect(&mut t, "tick-4");
    assert!(before.contains("/dev/pts/"), "{before:?}");
    t.send([0x10, 0x11]).unwrap();
    expect(&mut t, "read escape sequence");
    assert_eq!(exit_status(t), 1);
    std::thread::sleep(Duration::from_secs(1));
    let pid = ok(&h, &["exec", "box", "cat", "/exec-pid"]);
    let pid = pid.trim();
    assert!(
        ok(&h, &["exec", "box", "kill", "-0", pid]).is_empty(),
        "the detached exec's shell {pid} runs on"
    );

    // --detach-keys replaces ctrl-p ctrl-q, which then reach the process;
    // an exec's exit status is berth's.
    let mut t = spawn(
        &h,
        24,
        80,
        &["exec", "-it", "--detach-keys", "ctrl-x,x", "box", "sh"],
    );
    t.send("echo custom-$((5+5))\r").unwrap();
    expect(&mut t, "custom-10");
    t.send([0x10, 0x11]).unwrap();
    t.send("echo still-$((6+6))\r").unwrap();
    expect(&mut t, "still-12");
    t.send("exit 5\r").unwrap();
    assert_eq!(exit_status(t), 5);

    // config.json's detachKeys, as docker reads it.
    let config = tempfile::tempdir().unwrap();
    std::fs::write(
        config.path().join("config.json"),
        r#"{"detachKeys": "ctrl-a"}"#,
    )
    .unwrap();
    let mut t = spawn(
        &h,
        24,
        80,
        &[
            "--config",
            config.path().to_str().unwrap(),
            "exec",
            "-it",
            "box",
            "sh",
        ],
    );
    t.send("echo configured-$((1+2))\r").unwrap();
    expect(&mut t, "configured-3");
    t.send([0x01]).unwrap();
    expect(&mut t, "read escape sequence");
    assert_eq!(exit_status(t), 1);

    // Keys berth cannot read: a clear error, status 125, nothing created.
    let before = ok(&h, &["ps", "-aq"]);
    let mut t = spawn(
        &h,
        24,
        80,
        &[
            "run",
            "-it",
            "--detach-keys",
            "ctrl-p,ctrl-qq",
            "busybox",
            "sh",
        ],
    );
    expect(
        &mut t,
        "Invalid detach keys (ctrl-p,ctrl-qq) provided: unknown key 'ctrl-qq'",
    );
    assert_eq!(exit_status(t), 125);
    assert_eq!(ok(&h, &["ps", "-aq"]), before);
    ok(&h, &["rm", "-f", "box"]);
}

#[test]
fn without_a_tty_ctrl_c_is_forwarded_as_a_signal() {
    let d = start_berthd();
    let h = d.host();
    // No -t: the local terminal stays cooked, ctrl-c makes SIGINT for
    // berth, which forwards it to the container (--sig-proxy).
    let mut t = spawn(
        &h,
        24,
        80,
        &[
            "run",
            "--rm",
            "-i",
            "busybox",
            "sh",
            "-c",
            "trap 'echo caught-INT; exit 9' INT; echo ready-$((4+4)); while :; do sleep 1; done",
        ],
    );
    expect(&mut t, "ready-8");
    t.send([0x03]).unwrap();
    expect(&mut t, "caught-INT");
    assert_eq!(exit_status(t), 9);
}

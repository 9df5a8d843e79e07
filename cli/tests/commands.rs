//! End-to-end: the container and system commands that cli/tests/berthd.rs does not drive
//! (`start`, `restart`, `top`, `stats`, `rename`, `pause`/`unpause`, `wait`, `kill -s`,
//! `events`, `history`, `system df`, `system info`, `system prune`), through `berth` against
//! the workspace's berthd. Where `alias docker=berth` must hold, the real docker CLI runs the
//! same command against the same berthd and the output is compared.
//!
//! Exit statuses are docker's: 1 for what the daemon refuses (one line per container for
//! commands over several), 125 only for `run` and command-line mistakes.
//!
//! Two tests, one daemon each: the container commands, and the image and system commands
//! (whose counts and prune results must not see the other test's containers).

mod common;

use std::collections::BTreeSet;
use std::process::Output;
use std::time::{Duration, Instant};

use common::{CaptureProxy, berth, docker_cli, ok, start_berthd, stderr, stdout};
use regex::Regex;

/// Runs `args` through berth and through the docker CLI; both must print the same stdout and
/// stderr and exit with the same status. Returns berth's output.
fn same_as_docker(h: &str, args: &[&str]) -> Output {
    let ours = berth(h, args);
    let theirs = docker_cli(h, args);
    assert_eq!(
        (stdout(&ours), stderr(&ours), ours.status.code()),
        (stdout(&theirs), stderr(&theirs), theirs.status.code()),
        "berth {args:?} (left) differs from docker (right)"
    );
    ours
}

/// Like [`same_as_docker`] for tables with ages in them ("2 seconds ago", "Up 3 seconds"): the
/// two runs may fall on different seconds, so ages are blanked and column padding collapsed.
fn same_as_docker_but_ages(h: &str, args: &[&str]) -> Output {
    let ours = berth(h, args);
    let theirs = docker_cli(h, args);
    let age = Regex::new(r"(Less than a second|About a minute|\d+ seconds?|\d+ minutes)").unwrap();
    let padding = Regex::new(r" {2,}").unwrap();
    let blank = |o: &Output| {
        let text = age.replace_all(&stdout(o), "AGE").into_owned();
        (
            padding.replace_all(&text, "\t").into_owned(),
            stderr(o),
            o.status.code(),
        )
    };
    assert_eq!(
        blank(&ours),
        blank(&theirs),
        "berth {args:?} (left) differs from docker (right)"
    );
    ours
}

/// Waits until the container has logged "ready" `times` times (once per start), so its
/// trap is set and its `sleep` runs: signals and `top` then see the real processes rather
/// than the init before its exec.
fn wait_until_ready(h: &str, container: &str, times: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let logs = ok(h, &["logs", container]);
        let ready = logs.lines().filter(|l| *l == "ready").count() >= times;
        if ready && ok(h, &["top", container]).contains("sleep 1000") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{container} not ready {times} times: {logs}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn container_commands_against_berthd() {
    let d = start_berthd();
    let h = &d.host();
    let script = |name: &str| {
        format!("trap 'echo {name}-got-usr1; exit 9' USR1; echo ready; sleep 1000 & wait")
    };
    for name in ["t-one", "t-two", "t-three"] {
        ok(
            h,
            &[
                "create",
                "--name",
                name,
                "busybox",
                "sh",
                "-c",
                &script(name),
            ],
        );
    }

    // start: one, then several with an unknown one among them: docker's line per failure,
    // the failed ones named again at the end, the others started, exit 1
    assert_eq!(ok(h, &["start", "t-one"]), "t-one\n");
    let out = berth(h, &["start", "t-two", "t-nope", "t-one"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "t-two\nt-one\n");
    assert_eq!(
        stderr(&out),
        "Error response from daemon: No such container: t-nope\n\
         Error: failed to start containers: t-nope\n"
    );
    let out = same_as_docker(h, &["start", "t-three", "t-nope", "t-nada"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        ok(
            h,
            &[
                "inspect",
                "-f",
                "{{.State.Status}}",
                "t-one",
                "t-two",
                "t-three"
            ]
        ),
        "running\nrunning\nrunning\n"
    );
    for name in ["t-one", "t-two", "t-three"] {
        wait_until_ready(h, name, 1);
    }

    // top: ps -ef's columns, as docker shows them; ps arguments go to the host's ps
    let top = same_as_docker(h, &["top", "t-one"]);
    let top = stdout(&top);
    let mut lines = top.lines();
    assert_eq!(
        words(lines.next().unwrap()),
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    );
    let init = lines
        .find(|l| l.contains("sh -c trap"))
        .unwrap_or_else(|| panic!("no sh row: {top}"));
    // the user by name, as the host's ps -ef (dockerd's top) shows it
    assert_eq!(words(init)[0], "root", "{init}");
    let init_pid = words(init)[1].to_owned();
    let top = ok(h, &["top", "t-one", "-o", "pid,comm"]);
    let mut lines = top.lines();
    assert_eq!(words(lines.next().unwrap()), ["PID", "COMMAND"]);
    let rows: Vec<Vec<&str>> = lines.map(words).collect();
    assert!(rows.contains(&vec![init_pid.as_str(), "sh"]), "{top}");
    assert!(
        rows.iter().all(|r| r[1] == "sh" || r[1] == "sleep"),
        "only the container's processes: {top}"
    );
    let top = ok(h, &["top", "t-one", "aux"]);
    assert_eq!(
        words(top.lines().next().unwrap()),
        [
            "USER", "PID", "%CPU", "%MEM", "VSZ", "RSS", "TTY", "STAT", "START", "TIME", "COMMAND"
        ]
    );
    assert!(
        top.lines()
            .any(|l| l.starts_with("root") && l.contains("sh -c trap")),
        "{top}"
    );
    let out = same_as_docker(h, &["top", "t-one", "-o", "user=PID"]);
    assert_eq!(
        stderr(&out),
        "Error response from daemon: specifying \"user=PID\" is not allowed\n"
    );
    assert_eq!(out.status.code(), Some(1));
    let out = same_as_docker(h, &["top", "t-nope"]);
    assert_eq!(
        stderr(&out),
        "Error response from daemon: No such container: t-nope\n"
    );

    // restart: the container runs again (a new process), -t reaches the daemon; several at
    // once with an unknown one: exit 1
    let pid_before = ok(h, &["inspect", "-f", "{{.State.Pid}}", "t-one"]);
    let proxy = CaptureProxy::start(h, "1.47");
    assert_eq!(ok(&proxy.host, &["restart", "-t", "1", "t-one"]), "t-one\n");
    assert_eq!(
        proxy.take_requests(),
        ["POST /v1.47/containers/t-one/restart?t=1"]
    );
    drop(proxy);
    assert_eq!(
        ok(h, &["inspect", "-f", "{{.State.Status}}", "t-one"]),
        "running\n"
    );
    assert_ne!(
        ok(h, &["inspect", "-f", "{{.State.Pid}}", "t-one"]),
        pid_before
    );
    let out = same_as_docker(h, &["restart", "-t", "0", "t-two", "t-nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "t-two\n");
    assert_eq!(
        stderr(&out),
        "Error response from daemon: No such container: t-nope\n"
    );
    // t-one started twice, t-two three times (berth's restart, then docker's)
    wait_until_ready(h, "t-one", 2);
    wait_until_ready(h, "t-two", 3);

    // stats --no-stream: docker's table, templates, json, -a
    ok(h, &["create", "--name", "t-idle", "busybox", "true"]);
    let table = ok(h, &["stats", "--no-stream"]);
    let docker_table = stdout(&docker_cli(h, &["stats", "--no-stream"]));
    assert_eq!(table.lines().next(), docker_table.lines().next());
    assert_eq!(
        words(table.lines().next().unwrap()),
        [
            "CONTAINER",
            "ID",
            "NAME",
            "CPU",
            "%",
            "MEM",
            "USAGE",
            "/",
            "LIMIT",
            "MEM",
            "%",
            "NET",
            "I/O",
            "BLOCK",
            "I/O",
            "PIDS"
        ]
    );
    let names = |text: &str, column: usize| -> BTreeSet<String> {
        text.lines()
            .skip(1)
            .map(|l| words(l)[column].to_owned())
            .collect()
    };
    assert_eq!(
        names(&table, 1),
        BTreeSet::from(["t-one".into(), "t-two".into(), "t-three".into()]),
        "{table}"
    );
    let usage = Regex::new(r"^t-(one|two|three) [\d.]+[KMG]?i?B / [\d.]+[KMG]i?B$").unwrap();
    let lines = ok(
        h,
        &[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.MemUsage}}",
        ],
    );
    assert_eq!(lines.lines().count(), 3, "{lines}");
    assert!(lines.lines().all(|l| usage.is_match(l)), "{lines}");
    let rows = json_lines(&ok(
        h,
        &["stats", "--no-stream", "--format", "json", "t-one"],
    ));
    assert_eq!(rows.len(), 1);
    let one_id = ok(h, &["inspect", "-f", "{{.Id}}", "t-one"])
        .trim()
        .to_owned();
    assert_eq!(rows[0]["Name"], "t-one");
    assert_eq!(rows[0]["Container"], "t-one", "as given, like docker");
    assert_eq!(rows[0]["ID"], &one_id[..12]);
    let theirs = json_lines(&stdout(&docker_cli(
        h,
        &["stats", "--no-stream", "--format", "json", "t-one"],
    )));
    let keys =
        |v: &serde_json::Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(keys(&rows[0]), keys(&theirs[0]));
    for key in ["Container", "ID", "Name"] {
        assert_eq!(rows[0][key], theirs[0][key], "{key}");
    }
    let pids: u32 = rows[0]["PIDs"].as_str().unwrap().parse().unwrap();
    assert!(pids >= 1, "{}", rows[0]);
    for key in ["CPUPerc", "MemPerc", "MemUsage", "NetIO", "BlockIO"] {
        assert!(rows[0][key].is_string(), "{key} in {}", rows[0]);
    }
    // a shell's literal \t, read as a tab as docker does; .Container as given
    let given = &one_id[..8];
    let out = same_as_docker(
        h,
        &[
            "stats",
            "--no-stream",
            "--format",
            r"table {{.Container}}\t{{.Name}}",
            given,
        ],
    );
    assert_eq!(
        stdout(&out),
        format!("CONTAINER   NAME\n{given}    t-one\n")
    );
    let all = ok(h, &["stats", "-a", "--no-stream"]);
    assert_eq!(
        names(&all, 1),
        BTreeSet::from([
            "t-one".into(),
            "t-two".into(),
            "t-three".into(),
            "t-idle".into()
        ]),
        "{all}"
    );
    let idle = all.lines().find(|l| l.contains(" t-idle ")).unwrap();
    assert!(idle.contains("0B / 0B"), "not running, no usage: {idle}");
    let out = berth(h, &["stats", "--no-stream", "t-nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "Error response from daemon: No such container: t-nope\n"
    );

    // rename: the new name works, the old one is gone; refusals as docker prints them
    let two_id = ok(h, &["inspect", "-f", "{{.Id}}", "t-two"])
        .trim()
        .to_owned();
    assert_eq!(ok(h, &["rename", "t-two", "t-renamed"]), "");
    assert_eq!(
        ok(h, &["inspect", "-f", "{{.Name}} {{.Id}}", "t-renamed"]),
        format!("/t-renamed {two_id}\n")
    );
    let out = berth(h, &["inspect", "--type", "container", "t-two"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "Error response from daemon: No such container: t-two\n"
    );
    assert_eq!(
        ok(h, &["exec", "t-renamed", "echo", "renamed"]),
        "renamed\n"
    );
    let out = same_as_docker(h, &["rename", "t-two", "t-other"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "Error response from daemon: No such container: t-two\n\
         Error: failed to rename container named t-two\n"
    );
    let out = same_as_docker(h, &["rename", "t-renamed", "t-one"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with(
            "Error response from daemon: Conflict. The container name \"/t-one\" is already in use"
        ),
        "{}",
        stderr(&out)
    );
    same_as_docker(h, &["rename", "t-renamed", "bad name"]);

    // pause / unpause: ps shows (Paused), exec is refused with docker's text, unpause restores
    assert_eq!(ok(h, &["pause", "t-one"]), "t-one\n");
    assert_eq!(
        ok(
            h,
            &[
                "inspect",
                "-f",
                "{{.State.Status}} {{.State.Paused}}",
                "t-one"
            ]
        ),
        "paused true\n"
    );
    let ps = ok(h, &["ps", "--format", "{{.Names}}|{{.Status}}"]);
    let paused = ps.lines().find(|l| l.starts_with("t-one|")).unwrap();
    assert!(paused.ends_with(" (Paused)"), "{ps}");
    let table = ok(h, &["ps"]);
    let row = table.lines().find(|l| l.ends_with("t-one")).unwrap();
    assert!(row.contains(" (Paused) "), "{table}");
    let out = same_as_docker(h, &["exec", "t-one", "true"]);
    assert_eq!(
        stderr(&out),
        "Error response from daemon: Container t-one is paused, unpause the container before exec\n"
    );
    assert_eq!(out.status.code(), Some(1));
    let out = same_as_docker(h, &["pause", "t-one", "t-nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "Error response from daemon: Container {one_id} is already paused\n\
             Error response from daemon: No such container: t-nope\n"
        )
    );
    // a paused container's processes are still listed
    assert!(ok(h, &["top", "t-one"]).contains("sh -c trap"));
    assert_eq!(ok(h, &["unpause", "t-one"]), "t-one\n");
    assert_eq!(
        ok(h, &["inspect", "-f", "{{.State.Status}}", "t-one"]),
        "running\n"
    );
    assert_eq!(ok(h, &["exec", "t-one", "echo", "thawed"]), "thawed\n");
    let out = same_as_docker(h, &["unpause", "t-one"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!("Error response from daemon: Container {one_id} is not paused\n")
    );

    // kill -s: the signal reaches the container's process, by name and by number
    assert_eq!(ok(h, &["kill", "-s", "USR1", "t-one"]), "t-one\n");
    assert_eq!(ok(h, &["wait", "t-one"]), "9\n");
    assert_eq!(ok(h, &["logs", "t-one"]), "ready\nready\nt-one-got-usr1\n");
    assert_eq!(ok(h, &["kill", "--signal", "10", "t-three"]), "t-three\n");
    assert_eq!(ok(h, &["wait", "t-three"]), "9\n");
    let out = same_as_docker(h, &["kill", "-s", "BOGUS", "t-renamed"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "Error response from daemon: Invalid signal: BOGUS\n"
    );
    let out = same_as_docker(h, &["kill", "t-one"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!("Error response from daemon: container {one_id} is not running\n")
    );
    assert_eq!(ok(h, &["kill", "t-renamed"]), "t-renamed\n");
    assert_eq!(ok(h, &["wait", "t-renamed"]), "137\n");

    // wait on several: each exit code in order; an unknown one among them: exit 1
    ok(
        h,
        &[
            "run", "-d", "--name", "t-w3", "busybox", "sh", "-c", "exit 3",
        ],
    );
    ok(
        h,
        &[
            "run", "-d", "--name", "t-w5", "busybox", "sh", "-c", "exit 5",
        ],
    );
    assert_eq!(ok(h, &["wait", "t-w3", "t-w5", "t-one"]), "3\n5\n9\n");
    let out = same_as_docker(h, &["wait", "t-w3", "t-nope", "t-w5"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "3\n5\n");
    assert_eq!(
        stderr(&out),
        "Error response from daemon: No such container: t-nope\n"
    );

    // events: replayed with --since/--until, filtered, formatted
    let actions = ok(
        h,
        &[
            "events",
            "--since",
            "10m",
            "--until",
            "0s",
            "--filter",
            "container=t-one",
            "--format",
            "{{.Action}}",
        ],
    );
    let actions: Vec<&str> = actions.lines().collect();
    let in_order = [
        "create", "start", "kill", "die", "stop", "start", "restart", "pause", "unpause", "kill",
        "die",
    ];
    let mut rest = actions.iter();
    for want in in_order {
        assert!(
            rest.any(|a| *a == want),
            "{want} missing or out of order in {actions:?}"
        );
    }
    // Compared with docker over explicit Unix times: docker sends `--until 0s` as the current
    // whole second, which leaves out what happened since (berth sends the exact time). An
    // `--until` a second ahead ends the stream once it passes.
    let since = (unix_now() - 600).to_string();
    let until = (unix_now() + 1).to_string();
    let args = [
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "event=rename",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.oldName}} -> {{.Actor.Attributes.name}}",
    ];
    let out = same_as_docker(h, &args);
    assert_eq!(stdout(&out), "container rename /t-two -> t-renamed\n");
    let out = same_as_docker(
        h,
        &[
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "-f",
            "container=t-w5",
            "-f",
            "event=die",
        ],
    );
    let line = Regex::new(
        r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z container die [0-9a-f]{64} \(exitCode=5, image=busybox, name=t-w5\)\n$",
    )
    .unwrap();
    assert!(line.is_match(&stdout(&out)), "{}", stdout(&out));
    let events = json_lines(&ok(
        h,
        &[
            "events",
            "--since",
            "10m",
            "--until",
            "0s",
            "--filter",
            "type=container",
            "--filter",
            "event=pause",
            "--format",
            "json",
        ],
    ));
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["Type"], "container");
    assert_eq!(events[0]["Action"], "pause");
    assert_eq!(events[0]["Actor"]["ID"], one_id.as_str());
    assert_eq!(events[0]["Actor"]["Attributes"]["name"], "t-one");
    assert!(events[0]["timeNano"].as_i64().unwrap() > 0);
    // the same objects as docker prints (its keys come in the struct's order, berth's
    // sorted, so they are compared parsed)
    let json_args = [
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "container=t-w3",
        "--format",
        "json",
    ];
    let theirs = docker_cli(h, &json_args);
    assert!(theirs.status.success(), "{}", stderr(&theirs));
    assert_eq!(json_lines(&ok(h, &json_args)), json_lines(&stdout(&theirs)));
    // an --until before --since is refused
    let out = berth(h, &["events", "--since", "1m", "--until", "10m"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("Error response from daemon: "),
        "{}",
        stderr(&out)
    );

    drop(d);
}

#[test]
fn image_and_system_commands_against_berthd() {
    let d = start_berthd();
    let h = &d.host();

    // history of a committed image: its layer on top of the imported one
    ok(
        h,
        &[
            "run",
            "--name",
            "t-src",
            "busybox",
            "sh",
            "-c",
            "echo hello > /greeting",
        ],
    );
    let snap_id = ok(
        h,
        &[
            "commit",
            "-m",
            "say hello",
            "-c",
            "CMD [\"cat\", \"/greeting\"]",
            "t-src",
            "snap:1",
        ],
    );
    let snap_id = snap_id.trim();
    assert_eq!(ok(h, &["run", "--rm", "snap:1"]), "hello\n");
    let history = ok(h, &["history", "snap:1"]);
    let mut lines = history.lines();
    let header = lines.next().unwrap();
    assert_eq!(
        header,
        stdout(&docker_cli(h, &["history", "snap:1"]))
            .lines()
            .next()
            .unwrap()
    );
    assert_eq!(
        words(header),
        ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "{history}");
    let short = &snap_id["sha256:".len().."sha256:".len() + 12];
    assert!(rows[0].starts_with(&format!("{short}   ")), "{history}");
    assert!(rows[0].ends_with("say hello"), "{history}");
    assert!(rows[1].starts_with("<missing>   "), "{history}");
    // times as dates: the same text as docker's, byte for byte
    same_as_docker(h, &["history", "-H=false", "snap:1"]);
    same_as_docker(h, &["history", "--no-trunc", "-H=false", "snap:1"]);
    let full = ok(h, &["history", "--no-trunc", "snap:1"]);
    assert!(
        full.lines()
            .nth(1)
            .unwrap()
            .starts_with(&format!("{snap_id}   ")),
        "{full}"
    );
    let quiet = same_as_docker(h, &["history", "-q", "snap:1"]);
    assert_eq!(stdout(&quiet), format!("{short}\n<missing>\n"));
    let out = same_as_docker(
        h,
        &[
            "history",
            "--format",
            "{{.ID}}|{{.CreatedBy}}|{{.Comment}}",
            "snap:1",
        ],
    );
    let by = stdout(&out);
    let mut by = by.lines();
    assert_eq!(
        by.next().unwrap(),
        format!("{short}|sh -c echo hello > /greeting|say hello")
    );
    same_as_docker(
        h,
        &["history", "--format", r"table {{.ID}}\t{{.Size}}", "snap:1"],
    );
    let rows = json_lines(&ok(h, &["history", "--format", "json", "snap:1"]));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["ID"], short);
    assert_eq!(rows[0]["Comment"], "say hello");
    assert_eq!(rows[1]["ID"], "<missing>");
    let created = Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$").unwrap();
    assert!(
        created.is_match(rows[0]["CreatedAt"].as_str().unwrap()),
        "{}",
        rows[0]
    );
    let out = same_as_docker(h, &["history", "nope:1"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "Error response from daemon: No such image: nope:1\n"
    );

    // system info: the engine's own facts, also through --format
    ok(
        h,
        &["run", "-d", "--name", "t-up", "busybox", "sleep", "1000"],
    );
    let info = ok(h, &["system", "info"]);
    assert_eq!(ok(h, &["info"]).lines().count(), info.lines().count());
    let cgroup_version = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    };
    for want in [
        " Storage Driver: overlay2\n  Backing Filesystem: ",
        "  Lazy Pull: no\n",
        " Cgroup Driver: cgroupfs\n",
        &format!(" Cgroup Version: {cgroup_version}\n"),
        " Runtimes: berth\n Default Runtime: berth\n",
        " Supervisors: 1 running, ",
        " Live Restore Enabled: true\n",
        " Containers: 2\n  Running: 1\n  Paused: 0\n  Stopped: 1\n Images: 2\n",
    ] {
        assert!(info.contains(want), "{want:?} in:\n{info}");
    }
    // docker shows the same server facts (its own client section aside)
    let docker_info = stdout(&docker_cli(h, &["info"]));
    let server = |text: &str| -> Vec<String> {
        text.lines()
            .skip_while(|l| *l != "Server:")
            .filter(|l| !l.starts_with(" Supervisors: "))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(server(&info), server(&docker_info));
    assert_eq!(ok(h, &["info", "--format", "{{.Driver}}"]), "overlay2\n");
    assert_eq!(
        stdout(&same_as_docker(
            h,
            &[
                "system",
                "info",
                "--format",
                "{{.CgroupVersion}} {{.DefaultRuntime}}"
            ]
        )),
        format!("{cgroup_version} berth\n")
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(h, &["system", "info", "--format", "json"])).unwrap();
    assert_eq!(json["Driver"], "overlay2");
    assert_eq!(json["CgroupDriver"], "cgroupfs");
    assert_eq!(json["DefaultRuntime"], "berth");
    assert_eq!(json["LiveRestoreEnabled"], true);
    assert_eq!(json["Supervisors"]["Running"], 1);
    assert!(
        json["DriverStatus"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(["Lazy Pull", "no"])),
        "{}",
        json["DriverStatus"]
    );
    assert_eq!(json["ContainersRunning"], 1);

    // system df: docker's summary table, the same from both CLIs
    ok(h, &["volume", "create", "t-vol"]);
    let df = same_as_docker(h, &["system", "df"]);
    let df = stdout(&df);
    let mut lines = df.lines();
    assert_eq!(
        lines.next().unwrap(),
        "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE"
    );
    let types: Vec<String> = lines
        .map(|l| l.split("  ").next().unwrap().to_owned())
        .collect();
    assert_eq!(
        types,
        ["Images", "Containers", "Local Volumes", "Build Cache"]
    );
    let counts = |kind: &str| -> Vec<String> {
        let line = df.lines().find(|l| l.starts_with(kind)).unwrap();
        words(&line[kind.len()..])[..2]
            .iter()
            .map(|w| (*w).to_owned())
            .collect()
    };
    // busybox and snap:1 (busybox in use); t-src exited, t-up running; t-vol unused
    assert_eq!(counts("Images"), ["2", "1"], "{df}");
    assert_eq!(counts("Containers"), ["2", "1"], "{df}");
    assert_eq!(counts("Local Volumes"), ["1", "0"], "{df}");
    let containers = df.lines().find(|l| l.starts_with("Containers")).unwrap();
    assert!(
        !containers.contains(" 0B "),
        "t-src wrote a file, so its layer has a size: {df}"
    );
    let verbose = stdout(&same_as_docker_but_ages(h, &["system", "df", "-v"]));
    let sections: Vec<&str> = verbose
        .lines()
        .filter(|l| l.ends_with(" usage:") || l.starts_with("Build cache usage: "))
        .collect();
    assert_eq!(
        sections,
        [
            "Images space usage:",
            "Containers space usage:",
            "Local Volumes space usage:",
            "Build cache usage: 0B"
        ]
    );
    let image_row = |repo: &str| -> Vec<String> {
        let line = verbose
            .lines()
            .find(|l| l.starts_with(&format!("{repo} ")))
            .unwrap_or_else(|| panic!("no {repo} in {verbose}"));
        let cells: Vec<String> = line
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect();
        cells
    };
    // busybox: both containers; the committed image shares busybox's layer
    assert_eq!(image_row("busybox").last().unwrap(), "2", "{verbose}");
    assert_eq!(image_row("snap").last().unwrap(), "0", "{verbose}");
    assert_eq!(
        image_row("snap")[5],
        image_row("busybox")[5],
        "shared size: {verbose}"
    );
    assert!(
        verbose.contains("\nt-vol         0         0B\n"),
        "{verbose}"
    );
    // ps -s: the writable layer's size, as docker shows it
    let sizes = stdout(&same_as_docker(
        h,
        &["ps", "-a", "-s", "--format", "{{.Names}} {{.Size}}"],
    ));
    let src = sizes.lines().find(|l| l.starts_with("t-src ")).unwrap();
    assert!(
        Regex::new(r"^t-src [\d.]+kB$").unwrap().is_match(src),
        "{sizes}"
    );
    let rows = json_lines(&ok(h, &["system", "df", "--format", "json"]));
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[2]["Type"], "Local Volumes");
    assert_eq!(rows[2]["TotalCount"], "1");
    same_as_docker(
        h,
        &["system", "df", "--format", "{{.Type}}: {{.TotalCount}}"],
    );

    // system prune -f: stopped containers, unused networks, dangling images; running
    // containers, volumes and tagged images stay
    ok(h, &["network", "create", "t-net"]);
    let dangling = ok(h, &["commit", "t-src"]);
    let dangling = dangling.trim();
    let src_id = ok(h, &["inspect", "-f", "{{.Id}}", "t-src"]);
    // without -f: docker's question on stdout; no answer (stdin closed) removes nothing
    let out = same_as_docker(h, &["system", "prune"]);
    assert_eq!(
        stdout(&out),
        "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by \
         at least one container\n  - all dangling images\n  - unused build cache\n\nAre you sure \
         you want to continue? [y/N] "
    );
    assert_eq!(ok(h, &["ps", "-aq"]).lines().count(), 2);
    let out = common::berth_with_stdin(h, &["system", "prune"], b"n\n");
    assert!(out.status.success());
    assert_eq!(ok(h, &["ps", "-aq"]).lines().count(), 2);
    let pruned = ok(h, &["system", "prune", "-f"]);
    assert_eq!(
        pruned,
        format!(
            "Deleted Containers:\n{}\n\nDeleted Networks:\nt-net\n\nDeleted Images:\n\
             deleted: {dangling}\n\nTotal reclaimed space: {}",
            src_id.trim(),
            pruned.rsplit("Total reclaimed space: ").next().unwrap()
        )
    );
    assert!(
        Regex::new(r"\nTotal reclaimed space: [\d.]+[kMG]?B\n$")
            .unwrap()
            .is_match(&pruned),
        "{pruned}"
    );
    assert_eq!(ok(h, &["ps", "-a", "--format", "{{.Names}}"]), "t-up\n");
    assert_eq!(ok(h, &["volume", "ls", "-q"]), "t-vol\n");
    let images = ok(h, &["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let images: BTreeSet<&str> = images.lines().collect();
    assert_eq!(images, BTreeSet::from(["busybox:latest", "snap:1"]));
    assert!(
        !ok(h, &["network", "ls", "--format", "{{.Name}}"])
            .lines()
            .any(|n| n == "t-net")
    );
    // nothing left to prune: only the total
    assert_eq!(
        stdout(&same_as_docker(h, &["system", "prune", "-f"])),
        "Total reclaimed space: 0B\n"
    );
    // docker prints the same report for the same kind of leftovers
    ok(h, &["run", "--name", "t-src2", "busybox", "true"]);
    ok(h, &["network", "create", "t-net2"]);
    let dangling2 = ok(h, &["commit", "t-src2"]);
    let src2_id = ok(h, &["inspect", "-f", "{{.Id}}", "t-src2"]);
    let out = docker_cli(h, &["system", "prune", "-f"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let theirs = stdout(&out);
    assert_eq!(
        theirs,
        format!(
            "Deleted Containers:\n{}\n\nDeleted Networks:\nt-net2\n\nDeleted Images:\n\
             deleted: {}\n\nTotal reclaimed space: {}",
            src2_id.trim(),
            dangling2.trim(),
            theirs.rsplit("Total reclaimed space: ").next().unwrap()
        )
    );
    // -a takes unused tagged images too, --volumes the anonymous volumes
    ok(
        h,
        &["run", "--name", "t-anon", "-v", "/anon", "busybox", "true"],
    );
    let pruned = ok(h, &["system", "prune", "-a", "-f", "--volumes"]);
    assert!(pruned.contains("Deleted Volumes:\n"), "{pruned}");
    assert!(pruned.contains("untagged: snap:1\n"), "{pruned}");
    let images = ok(h, &["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(images, "busybox:latest\n", "in use by t-up");
    assert_eq!(
        ok(h, &["volume", "ls", "-q"]),
        "t-vol\n",
        "named volumes stay"
    );

    ok(h, &["rm", "-f", "t-up"]);
    drop(d);
}

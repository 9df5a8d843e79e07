//! End-to-end: `berth` against the workspace's own berthd (started by the test with a private
//! data root, socket and an imported busybox). The assertions are about berth's behaviour;
//! where berthd (API 1.47, moby 28 semantics) legitimately answers differently from the
//! dockerd 20.10 these steps were first written against, the comment says so.
//! The downgrade note of `version`, which needs an older daemon, is in private_dockerd.rs.
//!
//! One test runs the steps in order so only one daemon is started; a container's files
//! (cp, export, diff, commit) have their own.

mod common;

use berth_testkit::registry::TestRegistry;
use common::{CaptureProxy, berth, berth_with_stdin, docker_cli, ok, start_berthd, stderr, stdout};
use regex::Regex;

#[test]
fn commands_against_berthd() {
    let d = start_berthd();
    let h = &d.host();

    // version negotiation: berthd serves 1.47, berth's own version, so no "downgraded" note
    // (dockerd 20.10 served 1.41 and berth said "1.41 (downgraded from 1.47)"; the
    // downgrade itself is still checked on the wire below, through the 1.30 proxy)
    let v = ok(h, &["version"]);
    assert!(v.contains("API version:       1.47\n"), "{v}");
    assert!(!v.contains("downgraded"), "{v}");
    assert!(v.contains("Server:") && v.contains(" Engine:"), "{v}");
    assert_eq!(
        ok(h, &["version", "--format", "{{.Server.ApiVersion}}"]).trim(),
        "1.47"
    );

    // on the wire (through DOCKER-API.md's capture proxy): ping first, then versioned paths;
    // a newer daemon does not upgrade us, an older one downgrades us
    let proxy = CaptureProxy::start(h, "1.51");
    ok(&proxy.host, &["version"]);
    assert_eq!(proxy.take_requests(), ["HEAD /_ping", "GET /v1.47/version"]);
    ok(&proxy.host, &["run", "--rm", "busybox", "true"]);
    let reqs = proxy.take_requests();
    let shapes: Vec<String> = reqs
        .iter()
        .map(|r| {
            // replace the container id so the sequence can be compared
            let mut parts: Vec<&str> = r.split('/').collect();
            if parts.len() > 4 && parts[2] == "containers" && parts[3].len() == 64 {
                parts[3] = "ID";
            }
            parts.join("/")
        })
        .collect();
    assert_eq!(
        shapes,
        [
            // No ping: the first request goes with our version (see client.rs).
            "POST /v1.47/containers/create",
            "POST /v1.47/containers/ID/attach?stderr=1&stdout=1&stream=1",
            "POST /v1.47/containers/ID/wait?condition=removed",
            "POST /v1.47/containers/ID/start",
        ]
    );
    drop(proxy);
    let old = CaptureProxy::start(h, "1.30");
    ok(&old.host, &["ps", "-a", "--filter", "name=x"]);
    assert_eq!(
        old.take_requests(),
        [
            // refused as too new, then again with the daemon's version
            "GET /v1.47/containers/json?all=1&filters=%7B%22name%22%3A%7B%22x%22%3Atrue%7D%7D",
            "GET /v1.30/containers/json?all=1&filters=%7B%22name%22%3A%7B%22x%22%3Atrue%7D%7D"
        ]
    );
    drop(old);

    // images
    let images = ok(h, &["images"]);
    let mut lines = images.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    );
    assert!(
        lines.next().unwrap().starts_with("busybox      latest    "),
        "{images}"
    );
    let q = ok(h, &["images", "-q"]);
    assert!(
        q.trim().len() == 12 && q.trim().chars().all(|c| c.is_ascii_hexdigit()),
        "{q}"
    );

    // run -d, ps, ps -q, ps --format
    let id = ok(
        h,
        &[
            "run",
            "-d",
            "--name",
            "t-sleep",
            "-l",
            "purpose=test",
            "busybox",
            "sh",
            "-c",
            "echo hi; sleep 300",
        ],
    );
    let id = id.trim();
    assert!(
        id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );
    let ps = ok(h, &["ps"]);
    assert!(ps.starts_with("CONTAINER ID   IMAGE     COMMAND"), "{ps}");
    assert!(
        ps.lines()
            .any(|l| l.starts_with(&id[..12]) && l.ends_with("t-sleep")),
        "{ps}"
    );
    assert_eq!(ok(h, &["ps", "-q"]).trim(), &id[..12]);
    assert_eq!(ok(h, &["ps", "--no-trunc", "-q"]).trim(), id);
    assert_eq!(
        ok(h, &["ps", "--format", "{{.Names}}|{{.State}}|{{.Labels}}"]).trim(),
        "t-sleep|running|purpose=test"
    );
    let table = ok(h, &["ps", "--format", "table {{.Names}}\t{{upper .State}}"]);
    assert_eq!(table, "NAMES     STATE\nt-sleep   RUNNING\n");
    let json: serde_json::Value =
        serde_json::from_str(ok(h, &["ps", "--format", "json"]).trim()).unwrap();
    assert_eq!(json["Names"], "t-sleep");
    assert_eq!(json["Command"], "\"sh -c 'echo hi; sle…\"");

    // exec: output and exit status
    assert_eq!(
        ok(h, &["exec", "t-sleep", "echo", "from-exec"]),
        "from-exec\n"
    );
    let out = berth(h, &["exec", "t-sleep", "sh", "-c", "exit 4"]);
    assert_eq!(out.status.code(), Some(4));

    // update: several containers at once, each name printed as given; the new limits in
    // inspect (daemon/tests/container_update.rs reads them back from the cgroups)
    ok(
        h,
        &[
            "run", "-d", "--name", "t-upd", "-m", "32m", "busybox", "sleep", "300",
        ],
    );
    let out = berth(
        h,
        &[
            "update",
            "-m",
            "64m",
            "--memory-swap",
            "128m",
            "--cpus",
            "0.5",
            "--pids-limit",
            "40",
            "t-sleep",
            "t-upd",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "t-sleep\nt-upd\n");
    assert_eq!(
        ok(h, &["update", "--restart", "on-failure:2", "t-upd"]),
        "t-upd\n"
    );
    let inspected: serde_json::Value =
        serde_json::from_str(&ok(h, &["inspect", "t-sleep", "t-upd"])).unwrap();
    for c in inspected.as_array().unwrap() {
        let host = &c["HostConfig"];
        assert_eq!(host["Memory"], 64 << 20, "{}", c["Name"]);
        assert_eq!(host["MemorySwap"], 128 << 20, "{}", c["Name"]);
        assert_eq!(host["NanoCpus"], 500_000_000, "{}", c["Name"]);
        assert_eq!(host["PidsLimit"], 40, "{}", c["Name"]);
    }
    assert_eq!(
        inspected[1]["HostConfig"]["RestartPolicy"],
        serde_json::json!({"Name": "on-failure", "MaximumRetryCount": 2})
    );
    // a refusal is docker's line per container and exit 1; no flags at all is refused too
    let upd_id = inspected[1]["Id"].as_str().unwrap();
    let out = berth(h, &["update", "--cpu-period", "50000", "t-upd", "t-nope"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out),
        format!(
            "Error response from daemon: Cannot update container {upd_id}: Conflicting options: \
             CPU Period cannot be updated as NanoCPUs has already been set\n\
             Error response from daemon: No such container: t-nope\n"
        )
    );
    let out = berth(h, &["update", "t-upd"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "berth: you must provide one or more flags when using this command\n"
    );
    ok(h, &["rm", "-f", "t-upd"]);

    // run -d + wait + logs (stdout and stderr demultiplexed)
    ok(
        h,
        &[
            "run",
            "-d",
            "--name",
            "t-exit",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 7",
        ],
    );
    assert_eq!(ok(h, &["wait", "t-exit"]).trim(), "7");
    let logs = berth(h, &["logs", "t-exit"]);
    assert!(logs.status.success());
    assert_eq!(stdout(&logs), "out\n");
    assert_eq!(stderr(&logs), "err\n");
    assert_eq!(ok(h, &["logs", "--tail", "1", "t-sleep"]), "hi\n");

    // attached run: the container's exit status, --rm removes it
    let out = berth(
        h,
        &[
            "run",
            "--rm",
            "--name",
            "t-rm",
            "busybox",
            "sh",
            "-c",
            "echo attached; echo e >&2; exit 3",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out), "attached\n");
    assert_eq!(stderr(&out), "e\n");
    let gone = berth(h, &["inspect", "--type", "container", "t-rm"]);
    assert_eq!(
        gone.status.code(),
        Some(1),
        "t-rm should be removed: {}",
        stdout(&gone)
    );

    // missing executable: 127 with the daemon's message on one line
    let out = berth(
        h,
        &["run", "--name", "t-missing", "busybox", "no-such-command"],
    );
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("executable file not found"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));

    // inspect: containers, images, fallthrough, templates
    let raw: serde_json::Value = serde_json::from_str(&ok(h, &["inspect", "t-sleep"])).unwrap();
    assert_eq!(raw[0]["Name"], "/t-sleep");
    assert_eq!(raw[0]["Id"], id);
    assert_eq!(
        ok(
            h,
            &[
                "inspect",
                "-f",
                "{{.State.Running}} {{.Config.Labels.purpose}}",
                "t-sleep"
            ]
        ),
        "true test\n"
    );
    let img: serde_json::Value = serde_json::from_str(&ok(h, &["inspect", "busybox"])).unwrap();
    assert_eq!(img[0]["RepoTags"][0], "busybox:latest");
    assert_eq!(
        ok(h, &["inspect", "--format", "{{json .RepoTags}}", "busybox"]),
        "[\"busybox:latest\"]\n"
    );
    let out = berth(h, &["inspect", "t-sleep", "nothing-here"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("No such object: nothing-here"),
        "{}",
        stderr(&out)
    );
    assert!(
        stdout(&out).starts_with("[\n    {\n        \"Id\": "),
        "{}",
        stdout(&out)
    );

    // tag / rmi
    ok(h, &["tag", "busybox", "example.com/team/box:v1"]);
    assert!(
        ok(h, &["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .lines()
            .any(|l| l == "example.com/team/box:v1")
    );
    assert_eq!(
        ok(h, &["rmi", "example.com/team/box:v1"]),
        "Untagged: example.com/team/box:v1\n"
    );

    // (cp: berthd does not serve /containers/{id}/archive yet; see private_dockerd.rs)

    // stop / rm, including a daemon error
    assert_eq!(ok(h, &["stop", "-t", "1", "t-sleep"]), "t-sleep\n");
    assert_eq!(
        ok(h, &["rm", "t-sleep", "t-exit", "t-missing"]),
        "t-sleep\nt-exit\nt-missing\n"
    );
    let out = berth(h, &["rm", "t-sleep"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "Error response from daemon: No such container: t-sleep\n"
    );
    assert_eq!(ok(h, &["ps", "-a", "-q"]), "");

    // events replay with --since/--until and a filter
    let ev = ok(
        h,
        &[
            "events",
            "--since",
            "5m",
            "--until",
            "0s",
            "--filter",
            "container=t-exit",
            "--format",
            "{{.Action}}",
        ],
    );
    let actions: Vec<&str> = ev.lines().collect();
    assert!(
        actions.contains(&"create") && actions.contains(&"die") && actions.contains(&"destroy"),
        "{ev}"
    );

    // push / pull with progress against a loopback registry (127.0.0.0/8 is insecure by default)
    let reg = TestRegistry::start(None);
    let blob_dir = d.dir.path().join("blob");
    std::fs::create_dir_all(&blob_dir).unwrap();
    let noise: Vec<u8> = (0..2_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(blob_dir.join("data"), noise).unwrap();
    let tar = d.dir.path().join("blob.tar");
    assert!(
        std::process::Command::new("tar")
            .arg("-C")
            .arg(&blob_dir)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap()
            .success()
    );
    let blob = format!("{}/test/blob:v1", reg.host());
    let imported = docker_cli(h, &["import", tar.to_str().unwrap(), &blob]);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let pushed = ok(h, &["push", &blob]);
    assert!(
        pushed.starts_with(&format!(
            "The push refers to repository [{}/test/blob]",
            reg.host()
        )),
        "{pushed}"
    );
    assert!(
        pushed.contains(": Pushed\n") && pushed.contains("v1: digest: sha256:"),
        "{pushed}"
    );
    // a total where the layer block ends, right before the lines scripts parse
    let total_before = |verb: &str, next: &str| {
        Regex::new(&format!(
            r"\n{verb} 1 layer, [\d.]+[kMG]?B in \d+\.\d\ds \([\d.]+[kMG]?B/s\)\n{next}"
        ))
        .unwrap()
    };
    assert!(
        total_before("Pushed", "v1: digest: sha256:").is_match(&pushed),
        "{pushed}"
    );
    assert!(ok(h, &["rmi", &blob]).contains("Deleted: sha256:"));
    let pulled = ok(h, &["pull", &blob]);
    assert!(
        pulled.starts_with("v1: Pulling from test/blob\n"),
        "{pulled}"
    );
    assert!(
        pulled.contains(": Pulling fs layer\n") && pulled.contains(": Pull complete\n"),
        "{pulled}"
    );
    assert!(
        !pulled.contains('\x1b') && !pulled.contains("Downloading"),
        "no progress bars when not a terminal: {pulled}"
    );
    assert!(
        total_before("Downloaded", "Digest: sha256:").is_match(&pulled),
        "{pulled}"
    );
    assert!(
        pulled.ends_with(&format!(
            "Status: Downloaded newer image for {blob}\n{blob}\n"
        )),
        "{pulled}"
    );
    let out = berth(h, &["pull", &format!("{}/test/blob:nope", reg.host())]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "docker's status for a daemon error"
    );
    assert!(
        stderr(&out).starts_with("Error response from daemon: manifest for "),
        "{}",
        stderr(&out)
    );

    // run with an image that is not there yet: docker's message, pull, retry
    let bb = format!("{}/test/bb:v1", reg.host());
    ok(h, &["tag", "busybox", &bb]);
    ok(h, &["push", &bb]);
    ok(h, &["rmi", &bb]);
    let out = berth(h, &["run", "--rm", &bb, "echo", "pulled-and-ran"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "pulled-and-ran\n");
    assert!(
        stderr(&out).starts_with(&format!("Unable to find image '{bb}' locally\n")),
        "{}",
        stderr(&out)
    );

    // login / logout: validated by berthd (POST /auth) against the registry, stored in
    // config.json like docker
    let cfg = tempfile::tempdir().unwrap();
    let cfg_dir = cfg.path().to_str().unwrap();
    let out = berth_with_stdin(
        h,
        &[
            "--config",
            cfg_dir,
            "login",
            "-u",
            "me",
            "--password-stdin",
            &reg.host(),
        ],
        b"secret\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Login Succeeded\n");
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cfg.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(stored["auths"][&reg.host()]["auth"], "bWU6c2VjcmV0"); // base64("me:secret")
    assert_eq!(
        ok(h, &["--config", cfg_dir, "logout", &reg.host()]),
        format!("Removing login credentials for {}\n", reg.host())
    );
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cfg.path().join("config.json")).unwrap()).unwrap();
    assert!(stored["auths"].get(reg.host()).is_none());

    // save / load round trip
    let tarball = d.dir.path().join("saved.tar");
    ok(h, &["save", "-o", tarball.to_str().unwrap(), "busybox"]);
    assert!(std::fs::metadata(&tarball).unwrap().len() > 1_000_000);
    ok(h, &["rmi", "busybox"]);
    assert_eq!(
        ok(h, &["load", "-i", tarball.to_str().unwrap()]),
        "Loaded image: busybox:latest\n"
    );

    // volumes: create, ls, inspect; -v, --mount and --volumes-from on run; rm of a volume in
    // use fails; rm -v keeps named volumes; prune takes anonymous ones
    assert_eq!(
        ok(h, &["volume", "create", "--label", "k=v", "t-vol"]),
        "t-vol\n"
    );
    let vols = ok(h, &["volume", "ls"]);
    assert!(
        vols.starts_with("DRIVER    VOLUME NAME\n") && vols.contains("local     t-vol\n"),
        "{vols}"
    );
    assert_eq!(
        ok(
            h,
            &[
                "volume",
                "inspect",
                "--format",
                "{{.Driver}} {{.Scope}}",
                "t-vol"
            ]
        ),
        "local local\n"
    );
    ok(
        h,
        &[
            "run",
            "--name",
            "t-vuser",
            "-v",
            "t-vol:/v",
            "busybox",
            "sh",
            "-c",
            "echo kept > /v/f",
        ],
    );
    let out = berth(h, &["volume", "rm", "t-vol"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("remove t-vol: volume is in use - ["),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        ok(
            h,
            &[
                "run",
                "--rm",
                "--volumes-from",
                "t-vuser:ro",
                "--mount",
                "type=tmpfs,dst=/t,tmpfs-size=1m",
                "busybox",
                "sh",
                "-c",
                "cat /v/f; grep ' /t ' /proc/mounts | grep -c size=1024k",
            ]
        ),
        "kept\n1\n"
    );
    let out = berth(
        h,
        &[
            "run",
            "--rm",
            "--mount",
            "type=volume,src=t-vol,dst=/v,readonly",
            "busybox",
            "touch",
            "/v/x",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    let out = berth(
        h,
        &[
            "run",
            "--rm",
            "--mount",
            "type=bind,src=/nonexistent-berth,dst=/x",
            "busybox",
            "true",
        ],
    );
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("bind source path does not exist: /nonexistent-berth"),
        "{}",
        stderr(&out)
    );
    ok(h, &["rm", "-v", "t-vuser"]);
    ok(
        h,
        &["run", "--name", "t-anon", "-v", "/anon", "busybox", "true"],
    );
    ok(h, &["rm", "t-anon"]);
    let pruned = ok(h, &["volume", "prune", "-f"]);
    assert!(
        pruned.starts_with("Deleted Volumes:\n")
            && pruned.ends_with("\nTotal reclaimed space: 0B\n"),
        "{pruned}"
    );
    assert_eq!(ok(h, &["volume", "ls", "-q"]), "t-vol\n");
    assert_eq!(ok(h, &["volume", "rm", "t-vol"]), "t-vol\n");
    assert_eq!(ok(h, &["volume", "ls", "-q"]), "");
    // networks
    let net_id = ok(h, &["network", "create", "t-net"]);
    assert_eq!(net_id.trim().len(), 64);
    assert!(
        ok(h, &["network", "ls", "--format", "{{.Name}} {{.Driver}}"])
            .lines()
            .any(|l| l == "t-net bridge")
    );
    assert_eq!(
        ok(h, &["network", "inspect", "-f", "{{.Name}}", "t-net"]),
        "t-net\n"
    );
    assert_eq!(ok(h, &["network", "rm", "t-net"]), "t-net\n");

    // --sig-proxy: a SIGTERM to berth reaches the container, whose status berth exits with
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["-H", h, "run", "--rm", "busybox", "sh", "-c"])
        .arg("trap 'echo got-term; exit 42' TERM; echo ready; while true; do sleep 0.1; done")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
    assert_eq!(line, "ready\n");
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    line.clear();
    std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
    assert_eq!(line, "got-term\n");
    assert_eq!(child.wait().unwrap().code(), Some(42));

    // attach: streams a running container's output and exits with its status
    ok(
        h,
        &[
            "run",
            "-d",
            "--name",
            "t-attach",
            "busybox",
            "sh",
            "-c",
            "until [ -e /go ]; do echo tick; sleep 0.1; done; exit 5",
        ],
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["-H", h, "attach", "t-attach"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
    assert_eq!(line, "tick\n");
    ok(h, &["exec", "t-attach", "touch", "/go"]);
    std::io::copy(&mut reader, &mut std::io::sink()).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(5));
    ok(h, &["rm", "t-attach"]);

    drop(d);
}

/// `cp` (moved here from private_dockerd.rs), `export`, `diff` and `commit`.
#[test]
fn container_files_against_berthd() {
    let d = start_berthd();
    let h = &d.host();
    ok(
        h,
        &["run", "-d", "--name", "t-sleep", "busybox", "sleep", "300"],
    );

    // cp in and out: files, directories, renames, existing directories
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("f.txt"), "hello\n").unwrap();
    std::fs::create_dir_all(work.path().join("tree/sub")).unwrap();
    std::fs::write(work.path().join("tree/sub/x"), "x\n").unwrap();
    let local = |p: &str| work.path().join(p).to_str().unwrap().to_string();
    ok(h, &["exec", "t-sleep", "mkdir", "/in"]);
    ok(h, &["cp", &local("f.txt"), "t-sleep:/in"]);
    ok(h, &["cp", &local("f.txt"), "t-sleep:/in/renamed.txt"]);
    ok(h, &["cp", &local("tree"), "t-sleep:/in/tree"]);
    assert_eq!(
        ok(
            h,
            &[
                "exec",
                "t-sleep",
                "cat",
                "/in/f.txt",
                "/in/renamed.txt",
                "/in/tree/sub/x"
            ]
        ),
        "hello\nhello\nx\n"
    );
    ok(h, &["cp", "t-sleep:/in/renamed.txt", &local("back.txt")]);
    assert_eq!(
        std::fs::read_to_string(work.path().join("back.txt")).unwrap(),
        "hello\n"
    );
    ok(h, &["cp", "t-sleep:/in/tree", &local("copy")]);
    assert_eq!(
        std::fs::read_to_string(work.path().join("copy/sub/x")).unwrap(),
        "x\n"
    );
    ok(h, &["cp", "t-sleep:/in/tree", &local("copy")]);
    assert_eq!(
        std::fs::read_to_string(work.path().join("copy/tree/sub/x")).unwrap(),
        "x\n"
    );
    // symlinks: copied as links, or followed inside the container with -L
    ok(h, &["exec", "t-sleep", "ln", "-s", "/in/f.txt", "/in/link"]);
    ok(h, &["cp", "t-sleep:/in/link", &local("l1")]);
    assert_eq!(
        std::fs::read_link(work.path().join("l1")).unwrap(),
        std::path::Path::new("/in/f.txt")
    );
    ok(h, &["cp", "-L", "t-sleep:/in/link", &local("l2")]);
    assert_eq!(
        std::fs::read_to_string(work.path().join("l2")).unwrap(),
        "hello\n"
    );
    ok(h, &["cp", "-L", "t-sleep:/in/link", &local("copy")]);
    assert_eq!(
        std::fs::read_to_string(work.path().join("copy/link")).unwrap(),
        "hello\n"
    );
    // -a keeps the local owner; without it the container's root owns the copy
    std::os::unix::fs::chown(work.path().join("f.txt"), Some(1234), Some(4321)).unwrap();
    ok(h, &["cp", "-a", &local("f.txt"), "t-sleep:/in/owned"]);
    ok(h, &["cp", &local("f.txt"), "t-sleep:/in/rooted"]);
    assert_eq!(
        ok(
            h,
            &[
                "exec",
                "t-sleep",
                "stat",
                "-c",
                "%u:%g",
                "/in/owned",
                "/in/rooted"
            ]
        ),
        "1234:4321\n0:0\n"
    );

    let out = berth(h, &["cp", "t-sleep:/nothing", &local("n")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        "Error response from daemon: Could not find the file /nothing in container t-sleep"
    );

    // diff: C/A/D lines as docker prints them
    ok(
        h,
        &[
            "exec",
            "t-sleep",
            "sh",
            "-c",
            "rm /bin/true; echo v > /in/v",
        ],
    );
    let diff = ok(h, &["diff", "t-sleep"]);
    for want in ["C /bin", "D /bin/true", "A /in", "A /in/v"] {
        assert!(diff.lines().any(|l| l == want), "{want:?} in:\n{diff}");
    }
    assert_eq!(diff, stdout(&docker_cli(h, &["diff", "t-sleep"])));

    // commit (with --change, paused while committing) and run the image
    let id = ok(
        h,
        &[
            "commit",
            "-m",
            "snap",
            "--change",
            "CMD [\"cat\", \"/in/v\"]",
            "t-sleep",
            "snap:1",
        ],
    );
    assert!(id.starts_with("sha256:") && id.trim().len() == 71, "{id}");
    assert_eq!(ok(h, &["run", "--rm", "snap:1"]), "v\n");
    assert_eq!(
        ok(h, &["inspect", "-f", "{{.State.Status}}", "t-sleep"]),
        "running\n"
    );
    ok(h, &["commit", "--pause=false", "t-sleep", "snap:2"]);
    assert_eq!(
        ok(h, &["run", "--rm", "snap:2", "cat", "/in/f.txt"]),
        "hello\n"
    );

    // export to a file, import it back
    let tar = local("rootfs.tar");
    ok(h, &["export", "-o", &tar, "t-sleep"]);
    ok(h, &["import", &tar, "exported:1"]);
    assert_eq!(ok(h, &["run", "--rm", "exported:1", "cat", "/in/v"]), "v\n");

    // bad input
    for args in [
        &["diff", "nope"][..],
        &["commit", "nope"],
        &["export", "-o", &tar, "nope"],
    ] {
        let out = berth(h, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(
            stderr(&out).trim(),
            "Error response from daemon: No such container: nope"
        );
        assert_eq!(docker_cli(h, args).status.code(), Some(1), "{args:?}");
    }
    let out = berth(h, &["commit"]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(stderr(&out).contains("<CONTAINER>"), "{}", stderr(&out));

    ok(h, &["rm", "-f", "t-sleep"]);
}

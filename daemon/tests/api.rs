//! berthd over raw HTTP on its unix socket: transport rules, errors,
//! lifecycle (lock, socket mode, shutdown), huge bodies and clients that
//! hang up mid-stream.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Stdio;

use common::{BerthdRequest, berthd_command, request, start_berthd};

#[test]
fn ping_answers_head_and_get_with_the_negotiation_headers() {
    let daemon = start_berthd();
    for path in ["/_ping", "/v1.47/_ping"] {
        let get = daemon.request("GET", path);
        assert_eq!(get.status, 200);
        assert_eq!(get.text(), "OK");
        assert_eq!(
            get.header("Content-Type"),
            Some("text/plain; charset=utf-8")
        );
        for (name, value) in [
            ("Api-Version", "1.47"),
            ("Ostype", "linux"),
            ("Docker-Experimental", "false"),
            ("Builder-Version", "1"),
            ("Swarm", "inactive"),
            ("Cache-Control", "no-cache, no-store, must-revalidate"),
            ("Pragma", "no-cache"),
            ("Server", "Docker/28.5.2-compat (linux)"),
        ] {
            assert_eq!(get.header(name), Some(value), "{name} on GET {path}");
        }
    }
    let head = daemon.request("HEAD", "/_ping");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("Content-Length"), Some("0"));
    assert_eq!(head.header("Api-Version"), Some("1.47"));
}

#[test]
fn versioned_and_unversioned_paths_serve_the_same_version() {
    let daemon = start_berthd();
    let plain = daemon.request("GET", "/version").json();
    let versioned = daemon.request("GET", "/v1.44/version").json();
    // A newer client than us is served as 1.47 instead of being refused.
    let newer = daemon.request("GET", "/v1.51/version");
    assert_eq!(newer.status, 200);
    for doc in [&plain, &versioned, &newer.json()] {
        assert_eq!(doc["ApiVersion"], "1.47");
        assert_eq!(doc["MinAPIVersion"], "1.24");
        assert_eq!(doc["Os"], "linux");
        assert_eq!(doc["Arch"], "amd64");
        assert_eq!(doc["Components"][0]["Name"], "Engine");
        assert_eq!(doc["Components"][0]["Details"]["ApiVersion"], "1.47");
    }
    assert_eq!(newer.header("Api-Version"), Some("1.47"));
}

#[test]
fn too_old_version_unknown_route_and_wrong_method_are_json_errors() {
    let daemon = start_berthd();
    let old = daemon.request("GET", "/v1.23/version");
    assert_eq!(old.status, 400);
    assert_eq!(old.header("Content-Type"), Some("application/json"));
    assert_eq!(
        old.json()["message"],
        "client version 1.23 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"
    );
    for (method, path) in [
        ("GET", "/v1.47/nope"),
        ("GET", "/plugins/x/json"),
        ("POST", "/v1.47/version"),
        ("DELETE", "/_ping"),
    ] {
        let response = daemon.request(method, path);
        assert_eq!(response.status, 404, "{method} {path}");
        assert_eq!(response.header("Content-Type"), Some("application/json"));
        assert_eq!(response.text(), r#"{"message":"page not found"}"#);
        assert_eq!(response.header("Api-Version"), Some("1.47"));
    }
}

#[test]
fn info_and_df_have_dockers_shape() {
    let daemon = start_berthd();
    let info = daemon.request("GET", "/v1.47/info").json();
    assert_eq!(info["OSType"], "linux");
    assert_eq!(info["Architecture"], "x86_64");
    assert_eq!(info["Swarm"]["LocalNodeState"], "inactive");
    assert_eq!(info["Containers"], 0);
    assert_eq!(
        info["DockerRootDir"],
        daemon.data_root.display().to_string()
    );
    assert_eq!(info["ID"].as_str().unwrap().len(), 36);
    assert!(info["NCPU"].as_u64().unwrap() >= 1);
    assert!(info["DriverStatus"][0].as_array().unwrap().len() == 2);
    let cgroup = info["CgroupVersion"].as_str().unwrap();
    let expected = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    };
    assert_eq!(cgroup, expected);
    let df = daemon.request("GET", "/system/df").json();
    assert_eq!(df["Images"], serde_json::json!([]));
    assert_eq!(df["LayersSize"], 0);
}

#[test]
fn events_with_until_in_the_past_end_with_an_empty_chunked_stream() {
    let daemon = start_berthd();
    let now = common::now();
    let path = format!("/v1.47/events?since={}&until={}", now - 60, now - 1);
    let response = daemon.request("GET", &path);
    assert_eq!(response.status, 200);
    assert_eq!(response.header("Transfer-Encoding"), Some("chunked"));
    assert_eq!(response.header("Content-Type"), Some("application/json"));
    assert!(response.body.is_empty(), "{}", response.text());

    let reversed = daemon.request("GET", &format!("/events?since={}&until={}", now, now - 10));
    assert_eq!(reversed.status, 400);
    assert!(
        reversed.json()["message"]
            .as_str()
            .unwrap()
            .contains("cannot be after")
    );
    let bad_filter = daemon.request(
        "GET",
        "/events?until=1&filters=%7B%22colour%22%3A%5B%22red%22%5D%7D",
    );
    assert_eq!(bad_filter.status, 400);
    assert_eq!(bad_filter.json()["message"], "invalid filter 'colour'");
}

#[test]
fn socket_is_0660_and_a_second_daemon_on_the_same_root_refuses() {
    let daemon = start_berthd();
    let meta = std::fs::metadata(&daemon.socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(meta.uid(), 0);
    let parent = std::fs::metadata(daemon.socket.parent().unwrap()).unwrap();
    assert_eq!(parent.permissions().mode() & 0o777, 0o711);
    let pidfile = std::fs::read_to_string(daemon.exec_root.join("berthd.pid")).unwrap();
    assert_eq!(pidfile.trim(), daemon.pid().to_string());

    let other_socket = daemon.dir.path().join("other.sock");
    let output = berthd_command(
        &other_socket,
        &daemon.data_root,
        &daemon.dir.path().join("run2"),
    )
    .stderr(Stdio::piped())
    .output()
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "another berthd (pid {}) is already using data root {}",
            daemon.pid(),
            daemon.data_root.display()
        )),
        "{stderr}"
    );
    assert!(!other_socket.exists());
    // The first daemon is untouched.
    assert_eq!(daemon.request("GET", "/_ping").status, 200);
}

#[test]
fn sigterm_removes_the_socket_and_pidfile_and_a_stale_socket_is_replaced() {
    let mut daemon = start_berthd();
    let status = daemon.terminate();
    assert!(status.success(), "{status}");
    assert!(!daemon.socket.exists());
    assert!(!daemon.exec_root.join("berthd.pid").exists());

    // A socket file left behind by a killed daemon does not stop the next one.
    let stale = std::os::unix::net::UnixListener::bind(&daemon.socket).unwrap();
    drop(stale);
    assert!(daemon.socket.exists());
    let mut child = berthd_command(&daemon.socket, &daemon.data_root, &daemon.exec_root)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let answered = loop {
        if std::os::unix::net::UnixStream::connect(&daemon.socket).is_ok() {
            break request(&daemon.socket, "GET", "/_ping", &[], b"").status;
        }
        if std::time::Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            break 0;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(answered, 200);
}

/// berthd's peak resident memory (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

/// Sends `head` and then `size` bytes of `fill` (chunked when `chunked`)
/// from a writer thread, reading the answer meanwhile: berthd may answer
/// and close before the body is all sent, so write errors are expected.
/// Returns the status and the body of the answer.
fn send_big_body(
    socket: &std::path::Path,
    head: &str,
    size: usize,
    fill: u8,
    chunked: bool,
) -> (u16, String) {
    use std::io::{BufRead, BufReader, Read, Write};
    let stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    let timeout = Some(std::time::Duration::from_secs(30));
    stream.set_read_timeout(timeout).unwrap();
    stream.set_write_timeout(timeout).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let head = head.to_owned();
    let sender = std::thread::spawn(move || {
        writer.write_all(head.as_bytes())?;
        let chunk = vec![fill; 1 << 20];
        let mut sent = 0;
        while sent < size {
            let n = chunk.len().min(size - sent);
            if chunked {
                writer.write_all(format!("{n:x}\r\n").as_bytes())?;
                writer.write_all(&chunk[..n])?;
                writer.write_all(b"\r\n")?;
            } else {
                writer.write_all(&chunk[..n])?;
            }
            sent += n;
        }
        if chunked {
            writer.write_all(b"0\r\n\r\n")?;
        }
        Ok::<usize, std::io::Error>(sent)
    });
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no status line: {line:?}"))
        .parse()
        .unwrap();
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = sender.join().unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[test]
fn bodies_of_hundreds_of_megabytes_are_refused_and_memory_stays_bounded() {
    let daemon = start_berthd();
    const BIG: usize = 400 << 20;
    // Declared: refused before a byte of the body is read.
    let head = format!(
        "POST /v1.47/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: {BIG}\r\n\r\n"
    );
    let (status, body) = send_big_body(&daemon.socket, &head, BIG, b' ', false);
    assert_eq!(status, 413, "{body}");
    assert!(
        body.contains("request body is larger than the 16 MiB limit for JSON bodies"),
        "{body}"
    );
    // Chunked, so no length to refuse up front: reading stops at the limit.
    for path in [
        "/v1.47/containers/create",
        "/v1.47/volumes/create",
        "/v1.47/networks/create",
    ] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        let (status, body) = send_big_body(&daemon.socket, &head, BIG, b' ', true);
        assert_eq!(status, 413, "{path}: {body}");
    }
    // A route that takes no body answers without buffering one.
    let head = "POST /v1.47/containers/nosuch/start HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: chunked\r\n\r\n";
    let (status, body) = send_big_body(&daemon.socket, head, BIG, b' ', true);
    assert_eq!(status, 404, "{body}");
    // A streamed upload (image load) of junk: refused once the tar reader
    // sees it is not a tar, without buffering the rest.
    let head = "POST /v1.47/images/load HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\n\r\n";
    let (status, body) = send_big_body(&daemon.socket, head, BIG, b'x', true);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("input is not a valid tar archive"), "{body}");
    assert_eq!(daemon.request("GET", "/_ping").status, 200);
    let peak = peak_rss_kib(daemon.pid());
    assert!(
        peak < 100 << 10,
        "berthd's peak RSS reached {peak} KiB after {} MiB bodies",
        BIG >> 20
    );
    assert_eq!(daemon.request("GET", "/containers/json?all=1").text(), "[]");
}

/// berthd's open file descriptors, and its live tokio tasks (`/info`'s
/// `NGoroutines`, counting the task that serves that request).
fn fds_and_tasks(daemon: &common::Berthd) -> (usize, u64) {
    let tasks = daemon.request("GET", "/info").json()["NGoroutines"]
        .as_u64()
        .unwrap();
    let fds = std::fs::read_dir(format!("/proc/{}/fd", daemon.pid()))
        .unwrap()
        .count();
    (fds, tasks)
}

/// Opens a streaming request, waits until its answer has started (the
/// headers and, with `data`, some body), then hangs up.
fn open_and_drop(socket: &std::path::Path, request: &str, data: bool) {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("{request}: {e}"));
        assert!(
            n > 0,
            "{request}: closed early: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n")
            && (!data || seen.len() > end + 4)
        {
            break;
        }
    }
    let head = String::from_utf8_lossy(&seen);
    assert!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.1 101"),
        "{request}: {head}"
    );
}

#[test]
fn clients_that_hang_up_mid_stream_leave_no_tasks_or_descriptors() {
    let daemon = common::Berthd::builder(env!("CARGO_BIN_EXE_berthd"))
        .prefix("berthd-hangup")
        .with_shim()
        .start();
    let host = daemon.host();
    berth_testkit::docker::import_busybox(
        &host,
        &common::docker_config(),
        daemon.dir.path(),
        berth_testkit::rootfs::APPLETS,
        &[],
        "busybox",
    );
    common::docker_ok(
        &host,
        &[
            "run",
            "-d",
            "--name",
            "ticker",
            "busybox",
            "sh",
            "-c",
            "while true; do echo tick; sleep 0.1; done",
        ],
    );
    // One round first, so whatever is made once per daemon (the log
    // reader's inotify, thread pools) is in the baseline.
    let streams: &[(&str, bool)] = &[
        (
            "GET /v1.47/containers/ticker/logs?follow=1&stdout=1 HTTP/1.1\r\nHost: docker\r\n\r\n",
            true,
        ),
        ("GET /v1.47/events HTTP/1.1\r\nHost: docker\r\n\r\n", false),
        (
            "POST /v1.47/containers/ticker/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: docker\r\nUpgrade: tcp\r\nConnection: Upgrade\r\nContent-Length: 0\r\n\r\n",
            true,
        ),
        (
            "GET /v1.47/containers/ticker/stats?stream=1 HTTP/1.1\r\nHost: docker\r\n\r\n",
            true,
        ),
    ];
    let round = || {
        for (request, data) in streams {
            open_and_drop(&daemon.socket, request, *data);
        }
        // Execs whose client hangs up mid-stream, hijacked (the docker
        // CLI) and as a plain streamed body (docker-py).
        for upgrade in ["Upgrade: tcp\r\nConnection: Upgrade\r\n", ""] {
            let created = common::request(
                &daemon.socket,
                "POST",
                "/v1.47/containers/ticker/exec",
                &[("Content-Type", "application/json")],
                br#"{"AttachStdout": true, "Cmd": ["sh", "-c", "while true; do echo x; sleep 0.1; done"]}"#,
            );
            assert_eq!(created.status, 201, "{}", created.text());
            let exec_id = created.json()["Id"].as_str().unwrap().to_owned();
            let body = r#"{"Detach": false, "Tty": false}"#;
            open_and_drop(
                &daemon.socket,
                &format!(
                    "POST /v1.47/exec/{exec_id}/start HTTP/1.1\r\nHost: docker\r\n{upgrade}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                ),
                true,
            );
        }
        // A wait that will never be answered.
        open_and_drop(
            &daemon.socket,
            "POST /v1.47/containers/ticker/wait HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n",
            false,
        );
    };
    round();
    let settled = |limit: Option<(usize, u64)>| {
        // What berthd holds once the hung-up streams are cleaned up: poll
        // until two readings agree (and, with a limit, are within it).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut last = fds_and_tasks(&daemon);
        loop {
            std::thread::sleep(std::time::Duration::from_millis(200));
            let now = fds_and_tasks(&daemon);
            let within = limit.is_none_or(|(fds, tasks)| now.0 <= fds && now.1 <= tasks);
            if now == last && within {
                return now;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "berthd still holds (fds, tasks) = {now:?}, baseline {limit:?}"
            );
            last = now;
        }
    };
    let baseline = settled(None);
    for _ in 0..5 {
        round();
    }
    let after = settled(Some(baseline));
    assert!(after.0 <= baseline.0 && after.1 <= baseline.1);
    // The exec'd processes whose client hung up were killed, as dockerd
    // does; the container's own process runs on.
    let top = daemon.request("GET", "/v1.47/containers/ticker/top").json();
    let commands: Vec<String> = top["Processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_array().unwrap().last().unwrap().to_string())
        .collect();
    assert!(
        !commands.iter().any(|c| c.contains("echo x")),
        "{commands:?}"
    );
    assert!(
        commands.iter().any(|c| c.contains("echo tick")),
        "{commands:?}"
    );
    // The container and the streams still work.
    open_and_drop(&daemon.socket, streams[0].0, true);
}

#[test]
fn a_daemon_without_networks_leaves_the_hosts_nftables_alone() {
    let daemon = start_berthd();
    assert_eq!(daemon.request("GET", "/_ping").status, 200);
    // Networks run berthd in scratch namespaces, so on the host the table
    // can only come from a `--bridge none` daemon like this one.
    let out = std::process::Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let tables = String::from_utf8_lossy(&out.stdout);
    assert!(!tables.contains("ip berth"), "{tables}");
}

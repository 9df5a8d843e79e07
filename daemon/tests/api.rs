//! berthd over raw HTTP on its unix socket: transport rules, errors,
//! lifecycle (lock, socket mode, shutdown).

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

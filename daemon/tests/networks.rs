//! Networks through the real docker CLI against a berthd that runs inside
//! a scratch network namespace the test creates ([`NetDaemon`]): its
//! bridges, veths and nftables table live and die there, so the host's
//! network is never touched. The API socket is a file, reachable from the
//! test's namespace; curl to published ports runs inside the scratch
//! namespace (nsenter). Port ranges and DNS over TCP: network_ports_dns.rs.
//!
//! Covered: the default bridge (address, route, files, NAT'd published
//! ports on 127.0.0.1, `-p`, `-p ctr`, `-P`, a taken port), `--network
//! none` and `container:<name>`, user networks (names and aliases through
//! the embedded DNS, isolation between networks, connect/disconnect,
//! inspect, events), bad input, and what is left after removal and after
//! a `kill -9` of berthd with containers running (addresses kept, ports
//! republished, nothing stale); the pool of spare namespaces and veths
//! (used by starts, refilled, gone after a stop and after a `kill -9`);
//! the prelaunch of `--rm` containers on the default bridge.

mod common;

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use berth_testkit::pytest::run_pytest;
use berth_testkit::wait;
use common::netdaemon::{
    NetDaemon, POOL, assert_no_container_rules, spare_veths, veths, wait_for_only_spares,
};
use common::spare_container_ids;

#[test]
fn default_bridge_ports_files_none_and_container_mode() {
    let d = NetDaemon::start();
    let bridge = d.ok(&["network", "inspect", "bridge"]);
    let bridge: serde_json::Value = serde_json::from_str::<Vec<serde_json::Value>>(&bridge)
        .unwrap()
        .remove(0);
    let subnet = bridge["IPAM"]["Config"][0]["Subnet"].as_str().unwrap();
    let gateway = bridge["IPAM"]["Config"][0]["Gateway"].as_str().unwrap();
    assert!(d.links().contains(&"berth0".to_owned()), "{:?}", d.links());

    // Address, default route and the three files.
    let out = d.ok(&[
        "run",
        "--rm",
        "--hostname",
        "box1",
        "--add-host",
        "db.example:10.1.2.3",
        "busybox",
        "sh",
        "-c",
        "ip -o -4 addr show eth0; ip route; cat /etc/hosts /etc/hostname /etc/resolv.conf",
    ]);
    let prefix = subnet
        .rsplit_once('.')
        .unwrap()
        .0
        .rsplit_once('.')
        .unwrap()
        .0;
    assert!(out.contains(&format!("inet {prefix}.")), "{out}");
    assert!(
        out.contains(&format!("default via {gateway} dev eth0")),
        "{out}"
    );
    assert!(out.contains("\tbox1\n"), "hosts names the container: {out}");
    assert!(out.contains("10.1.2.3\tdb.example"), "{out}");
    assert!(out.contains("\nbox1\n"), "{out}");
    assert!(out.contains("nameserver "), "{out}");

    // --network none: only lo, up.
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ip",
        "-o",
        "link",
    ]);
    let links: Vec<&str> = out.lines().filter_map(|l| l.split(": ").nth(1)).collect();
    assert_eq!(links, ["lo"], "{out}");
    assert!(
        out.contains("<LOOPBACK,UP,"),
        "lo is up as with Docker: {out}"
    );

    // --network host: the (scratch) host's interfaces, berth0 among them.
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "ip",
        "-o",
        "link",
    ]);
    assert!(out.contains(": berth0:"), "{out}");

    // -p ip:host:ctr, reached on 127.0.0.1 through DNAT.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "127.0.0.1:18080:80",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ]);
    assert_eq!(
        d.curl_eventually("http://127.0.0.1:18080/"),
        "hello from berth\n"
    );
    assert_eq!(d.ok(&["port", "web"]).trim(), "80/tcp -> 127.0.0.1:18080");
    let web = d.inspect("web");
    let ns = &web["NetworkSettings"];
    assert_eq!(ns["Gateway"], gateway);
    assert!(
        ns["IPAddress"].as_str().unwrap().starts_with(prefix),
        "{ns}"
    );
    assert_eq!(ns["Networks"]["bridge"]["NetworkID"], bridge["Id"]);
    assert_eq!(
        ns["Ports"]["80/tcp"][0],
        serde_json::json!({"HostIp": "127.0.0.1", "HostPort": "18080"})
    );
    // Published on 127.0.0.1 only: not on the bridge's address.
    let (status, out, _) = d.docker(&[
        "run",
        "--rm",
        "busybox",
        "wget",
        "-qO-",
        "-T",
        "2",
        &format!("http://{gateway}:18080/"),
    ]);
    assert!(!status.success() && out.is_empty(), "{out}");

    // The same host port again: a clear error at start, nothing left over.
    let err = d.fails(&[
        "run",
        "-d",
        "--name",
        "web2",
        "-p",
        "127.0.0.1:18080:80",
        "busybox",
        "sleep",
        "60",
    ]);
    assert!(err.contains("18080") && err.contains("in use"), "{err}");
    d.ok(&["rm", "-f", "web2"]);

    // -p ctr (random host port) and -P with an exposed port.
    d.ok(&[
        "run", "-d", "--name", "rand", "-p", "80", "--expose", "8080", "-P", "busybox", "httpd",
        "-f", "-p", "80", "-h", "/www",
    ]);
    let ports = d.ok(&["port", "rand"]);
    let host_port = |ctr: &str| -> u16 {
        ports
            .lines()
            .find(|l| l.starts_with(ctr))
            .and_then(|l| l.rsplit(':').next())
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {ctr} in {ports}"))
    };
    let random = host_port("80/tcp");
    assert!(random > 0);
    assert!(host_port("8080/tcp") > 0);
    assert_eq!(
        d.curl_eventually(&format!("http://127.0.0.1:{random}/")),
        "hello from berth\n"
    );
    // From another container, through the host's address on the bridge.
    let out = d.ok(&[
        "run",
        "--rm",
        "busybox",
        "wget",
        "-qO-",
        &format!("http://{gateway}:{random}/"),
    ]);
    assert_eq!(out, "hello from berth\n");

    // container:<name> shares web's namespace.
    let web_ip = ns["IPAddress"].as_str().unwrap();
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "container:web",
        "busybox",
        "ip",
        "-o",
        "-4",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(out.contains(&format!("inet {web_ip}/")), "{out}");

    // Removal takes rules, veths and namespaces with it.
    assert!(d.ruleset().contains("dnat to"), "{}", d.ruleset());
    d.ok(&["rm", "-f", "web", "rand"]);
    assert_no_container_rules(&d.ruleset());
    assert!(d.curl("http://127.0.0.1:18080/").is_none());
    wait_for_only_spares(&d, POOL);
    let netns_dir = d.dir.path().join("run/netns");
    let left: Vec<PathBuf> = std::fs::read_dir(&netns_dir)
        .map(|e| e.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn user_networks_names_isolation_and_bad_input() {
    let d = NetDaemon::start();
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    d.ok(&["network", "create", "front"]);
    d.ok(&[
        "network",
        "create",
        "--subnet",
        "10.123.0.0/24",
        "--gateway",
        "10.123.0.254",
        "--label",
        "tier=back",
        "back",
    ]);

    // Bad input, each a clear error.
    let err = d.fails(&["network", "create", "--subnet", "10.123.0.128/25", "clash"]);
    assert!(
        err.contains("overlaps") && err.contains("10.123.0.0/24"),
        "{err}"
    );
    let err = d.fails(&["network", "create", "--subnet", "10.9.0.0/33", "bad"]);
    assert!(
        err.contains("invalid CIDR") && err.contains("10.9.0.0/33"),
        "{err}"
    );
    let err = d.fails(&["network", "create", "--subnet", "10.9.0.1/16", "bad"]);
    assert!(err.contains("invalid CIDR"), "{err}");
    let err = d.fails(&["network", "create", "front"]);
    assert!(err.contains("already exists"), "{err}");
    let err = d.fails(&["network", "rm", "bridge"]);
    assert!(err.contains("pre-defined"), "{err}");
    let err = d.fails(&["network", "rm", "nosuch"]);
    assert!(err.contains("not found"), "{err}");
    // (Through the API: the CLI takes any 404 at create for a missing image.)
    let response = common::request(
        &d.socket,
        "POST",
        "/containers/create",
        &[("Content-Type", "application/json")],
        br#"{"Image":"busybox","HostConfig":{"NetworkMode":"nosuch"}}"#,
    );
    assert_eq!(response.status, 404, "{}", response.text());
    assert_eq!(response.json()["message"], "network nosuch not found");

    let ls = d.ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    for line in [
        "back bridge",
        "bridge bridge",
        "front bridge",
        "host host",
        "none null",
    ] {
        assert!(ls.lines().any(|l| l == line), "{line} missing in {ls}");
    }
    let filtered = d.ok(&["network", "ls", "-q", "--filter", "label=tier=back"]);
    assert_eq!(filtered.lines().count(), 1, "{filtered}");
    let back: serde_json::Value =
        serde_json::from_str::<Vec<serde_json::Value>>(&d.ok(&["network", "inspect", "back"]))
            .unwrap()
            .remove(0);
    assert_eq!(back["IPAM"]["Config"][0]["Subnet"], "10.123.0.0/24");
    assert_eq!(back["IPAM"]["Config"][0]["Gateway"], "10.123.0.254");

    // A server on `front` with an alias; a client finds it by both names.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--network",
        "front",
        "--network-alias",
        "www",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ]);
    let srv_ip = d.ip_on("srv", "front");
    assert_eq!(
        d.curl_eventually(&format!("http://{srv_ip}/")),
        "hello from berth\n"
    );
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "front",
        "busybox",
        "sh",
        "-c",
        "cat /etc/resolv.conf; wget -qO- http://srv/; wget -qO- http://www/",
    ]);
    assert!(out.contains("nameserver 127.0.0.11"), "{out}");
    assert!(
        out.ends_with("hello from berth\nhello from berth\n"),
        "{out}"
    );
    let front: serde_json::Value =
        serde_json::from_str::<Vec<serde_json::Value>>(&d.ok(&["network", "inspect", "front"]))
            .unwrap()
            .remove(0);
    let members: Vec<&str> = front["Containers"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["Name"].as_str().unwrap())
        .collect();
    assert_eq!(members, ["srv"]);
    let on_front = d.ok(&["ps", "--filter", "network=front", "--format", "{{.Names}}"]);
    assert_eq!(on_front, "srv\n");

    // From `back`: neither the name nor the address of srv.
    let isolated = |what: &str| {
        let (status, out, _) = d.docker(&[
            "run",
            "--rm",
            "--network",
            "back",
            "busybox",
            "wget",
            "-qO-",
            "-T",
            "2",
            &format!("http://{what}/"),
        ]);
        assert!(!status.success() && !out.contains("hello"), "{what}: {out}");
    };
    isolated("srv");
    isolated(&srv_ip);

    // Connect srv to back: now reachable there by name; disconnect undoes it.
    d.ok(&["network", "connect", "--alias", "api", "back", "srv"]);
    let back_ip = d.ip_on("srv", "back");
    assert!(back_ip.starts_with("10.123.0."), "{back_ip}");
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "back",
        "busybox",
        "wget",
        "-qO-",
        "http://api/",
    ]);
    assert_eq!(out, "hello from berth\n");
    let err = d.fails(&["network", "connect", "back", "srv"]);
    assert!(err.contains("already exists"), "{err}");
    d.ok(&["network", "disconnect", "back", "srv"]);
    isolated("api");

    // Published ports work from a user network too.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "pub",
        "--network",
        "back",
        "-p",
        "18085:80",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ]);
    assert_eq!(
        d.curl_eventually("http://127.0.0.1:18085/"),
        "hello from berth\n"
    );
    d.ok(&["rm", "-f", "pub"]);

    // --internal: no default route out.
    d.ok(&["network", "create", "--internal", "priv"]);
    assert_eq!(
        d.ok(&["network", "inspect", "priv", "--format", "{{.Internal}}"]),
        "true\n"
    );
    let out = d.ok(&["run", "--rm", "--network", "priv", "busybox", "ip", "route"]);
    assert!(!out.contains("default"), "{out}");
    d.ok(&["network", "rm", "priv"]);

    // A rename shows in the DNS at once.
    d.ok(&["rename", "srv", "srv2"]);
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "front",
        "busybox",
        "wget",
        "-qO-",
        "http://srv2/",
    ]);
    assert_eq!(out, "hello from berth\n");

    // A running container of the default bridge connected to `front`
    // switches to the embedded DNS and finds srv2.
    d.ok(&["run", "-d", "--name", "edge", "busybox", "sleep", "60"]);
    d.ok(&["network", "connect", "front", "edge"]);
    let out = d.ok(&[
        "exec",
        "edge",
        "sh",
        "-c",
        "cat /etc/resolv.conf; wget -qO- http://srv2/",
    ]);
    assert!(out.contains("nameserver 127.0.0.11"), "{out}");
    assert!(out.ends_with("hello from berth\n"), "{out}");
    d.ok(&["rm", "-f", "edge"]);

    // In use: refused; after the container goes, removed with its bridge.
    let err = d.fails(&["network", "rm", "front"]);
    assert!(err.contains("active endpoints"), "{err}");
    d.ok(&["rm", "-f", "srv2"]);
    d.ok(&["network", "rm", "front"]);
    let pruned = d.ok(&["network", "prune", "-f"]);
    assert!(pruned.contains("back"), "{pruned}");
    let ls = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(ls, "bridge\nhost\nnone\n");
    // The removed networks' spares went with them.
    wait_for_only_spares(&d, POOL);
    let links = d.links();
    assert!(!links.iter().any(|l| l.starts_with("br-")), "{links:?}");
    let ruleset = d.ruleset();
    assert!(!ruleset.contains("br-"), "{ruleset}");
    assert_no_container_rules(&ruleset);

    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    let events = d.ok(&[
        "events",
        "--since",
        &started,
        "--until",
        &until,
        "--filter",
        "type=network",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    for line in [
        "create front",
        "create back",
        "connect front",
        "connect back",
        "disconnect back",
        "destroy front",
        "destroy back",
    ] {
        assert!(
            events.lines().any(|l| l == line),
            "{line} missing in {events}"
        );
    }
}

#[test]
fn crash_restart_keeps_addresses_and_ports_and_cleans_up() {
    let mut d = NetDaemon::start();
    d.ok(&["network", "create", "--subnet", "10.124.0.0/24", "n1"]);
    d.ok(&[
        "run", "-d", "--name", "web-a", "-p", "18081:80", "busybox", "httpd", "-f", "-p", "80",
        "-h", "/www",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "web-b",
        "--network",
        "n1",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ]);
    // Exits while berthd is down: its endpoint must not outlive it.
    d.ok(&[
        "run", "-d", "--name", "short", "-p", "18082:80", "busybox", "sleep", "2",
    ]);
    let a_ip = d.ip_on("web-a", "bridge");
    let b_ip = d.ip_on("web-b", "n1");
    let short_id = d.inspect("short")["Id"].as_str().unwrap().to_owned();
    assert_eq!(
        d.curl_eventually("http://127.0.0.1:18081/"),
        "hello from berth\n"
    );

    let mut child = d.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    // Wait for `short` to exit while no berthd runs.
    let deadline = Instant::now() + Duration::from_secs(20);
    let short_shim = d.dir.path().join("run/shim").join(&short_id[..32]);
    while !short_shim.join("exit.json").exists() {
        assert!(Instant::now() < deadline, "short did not exit");
        std::thread::sleep(Duration::from_millis(100));
    }
    d.spawn();

    // Same addresses; the published port works again (rules rebuilt).
    assert_eq!(d.ip_on("web-a", "bridge"), a_ip);
    assert_eq!(d.ip_on("web-b", "n1"), b_ip);
    assert_eq!(
        d.curl_eventually("http://127.0.0.1:18081/"),
        "hello from berth\n"
    );
    // The exited one loses its port, endpoint and namespace (its exit is
    // collected from its shim right after the restart).
    let short_netns = d.dir.path().join("run/netns").join(&short_id);
    let deadline = Instant::now() + Duration::from_secs(20);
    while short_netns.exists() {
        assert!(Instant::now() < deadline, "{} left", short_netns.display());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(d.curl("http://127.0.0.1:18082/").is_none());
    assert!(!d.ruleset().contains("18082"), "{}", d.ruleset());
    // Names still resolve on n1 and allocations were kept: a newcomer
    // gets a fresh address.
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "n1",
        "busybox",
        "sh",
        "-c",
        "wget -qO- http://web-b/; ip -o -4 addr show eth0",
    ]);
    assert!(out.starts_with("hello from berth\n"), "{out}");
    assert!(!out.contains(&format!("inet {b_ip}/")), "{out}");
    let out = d.ok(&[
        "run", "--rm", "busybox", "ip", "-o", "-4", "addr", "show", "eth0",
    ]);
    assert!(!out.contains(&format!("inet {a_ip}/")), "{out}");

    // A second crash with containers running, then everything removed.
    d.crash_and_restart();
    d.ok(&["rm", "-f", "web-a", "web-b", "short"]);
    d.ok(&["network", "rm", "n1"]);
    assert_no_container_rules(&d.ruleset());
    wait_for_only_spares(&d, POOL);
    let left: Vec<PathBuf> = std::fs::read_dir(d.dir.path().join("run/netns"))
        .map(|e| e.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn docker_py_networks_api() {
    let d = NetDaemon::start();
    run_pytest(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/test_networks.py"),
        &[("BERTHD_HOST", OsStr::new(&d.host()))],
        3,
    );
}

#[test]
fn network_pool_serves_starts_refills_and_leaves_nothing() {
    let mut d = NetDaemon::start();
    let gateway = d.ok(&[
        "network",
        "inspect",
        "bridge",
        "--format",
        "{{(index .IPAM.Config 0).Gateway}}",
    ]);
    let gateway = gateway.trim().to_owned();
    // The default network is stocked at start.
    let stocked = d.wait_for_links("the default network's spares", |l| {
        spare_veths(l).len() == POOL
    });
    let spares: Vec<String> = spare_veths(&stocked).into_iter().cloned().collect();

    // A start takes one: its host end is one of the spares, no pair of
    // its own was made; the pool is refilled behind it.
    d.ok(&["run", "-d", "--name", "pa", "busybox", "sleep", "60"]);
    let links = d.wait_for_links("the pool refilled after a start", |l| {
        spare_veths(l).len() == POOL + 1
    });
    assert_eq!(
        veths(&links).len(),
        POOL + 1,
        "a pair not from the pool: {links:?}"
    );
    let kept: Vec<&String> = spares.iter().filter(|s| links.contains(s)).collect();
    assert_eq!(kept.len(), POOL, "a's pair is one of the spares: {links:?}");
    let a_ip = d.ip_on("pa", "bridge");

    // Pooled containers have a working network: each other, the gateway.
    let out = d.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        &format!(
            "ip -o -4 addr show eth0; ip route; ping -c1 -W2 {a_ip} && ping -c1 -W2 {gateway} && echo reached"
        ),
    ]);
    assert!(
        out.contains(&format!("default via {gateway} dev eth0")),
        "{out}"
    );
    assert!(out.ends_with("reached\n"), "{out}");
    let out = d.ok(&[
        "exec",
        "pa",
        "sh",
        "-c",
        &format!("ping -c1 -W2 {gateway} && echo reached"),
    ]);
    assert!(out.ends_with("reached\n"), "{out}");

    // A user network gets spares once a container started on it.
    d.ok(&["network", "create", "--subnet", "10.125.0.0/24", "u1"]);
    let run_on_u1 = || {
        let out = d.ok(&[
            "run",
            "--rm",
            "--network",
            "u1",
            "busybox",
            "ip",
            "-o",
            "-4",
            "addr",
            "show",
            "eth0",
        ]);
        assert!(out.contains("inet 10.125.0."), "{out}");
    };
    run_on_u1();
    d.wait_for_links("u1 stocked too", |l| spare_veths(l).len() == 2 * POOL + 1);
    run_on_u1();
    d.ok(&["network", "rm", "u1"]);
    d.wait_for_links("u1's spares gone with it", |l| {
        spare_veths(l).len() == POOL + 1
    });

    // kill -9 with a container running: the spares go with the daemon,
    // a's pair stays with a; the restart stocks the pool again.
    let before_crash: Vec<String> = spare_veths(&d.links()).into_iter().cloned().collect();
    d.crash_and_restart();
    // Only pa's pair outlives the crashed daemon; two new spares.
    d.wait_for_links("spares after a crash and restart", |l| {
        spare_veths(l).len() == POOL + 1
            && before_crash.iter().filter(|v| l.contains(v)).count() == 1
    });
    assert_eq!(d.ip_on("pa", "bridge"), a_ip);
    a_fresh_container_reaches(&d, &[&a_ip]);
    d.ok(&["rm", "-f", "pa"]);
    wait_for_only_spares(&d, POOL);

    // A clean stop leaves no pair behind, and no namespace mounted.
    d.stop();
    d.wait_for_links("veths after berthd stopped", |l| veths(l).is_empty());
    let netns: Vec<PathBuf> = std::fs::read_dir(d.dir.path().join("run/netns"))
        .map(|e| e.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(netns.is_empty(), "{netns:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let run = d.dir.path().join("run");
    assert!(
        !mounts.contains(run.to_str().unwrap()),
        "mounts left under {}",
        run.display()
    );

    // And after a kill -9 with nothing running: nothing either.
    d.spawn();
    d.wait_for_links("spares after a restart", |l| spare_veths(l).len() == POOL);
    let mut child = d.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    d.wait_for_links("veths after kill -9", |l| veths(l).is_empty());
}

#[test]
fn without_a_pool_starts_make_their_own_pair() {
    let d = NetDaemon::start_with(&["--network-pool", "0"]);
    let gateway = d.ok(&[
        "network",
        "inspect",
        "bridge",
        "--format",
        "{{(index .IPAM.Config 0).Gateway}}",
    ]);
    let gateway = gateway.trim();
    d.ok(&["run", "-d", "--name", "own", "busybox", "sleep", "60"]);
    let links = d.links();
    let pairs = veths(&links);
    assert_eq!(pairs.len(), 1, "{links:?}");
    assert!(spare_veths(&links).is_empty(), "no spares: {links:?}");
    let own_ip = d.ip_on("own", "bridge");
    a_fresh_container_reaches(&d, &[&own_ip, gateway]);
    d.ok(&["rm", "-f", "own"]);
    wait_for_only_spares(&d, 0);
}

/// A `--rm` container on the default bridge is prelaunched at its create
/// (endpoint, namespace, shim, runtime container) with nothing of the
/// endpoint in the API until the start: no address, not a member of the
/// network, no `connect` event. The start shows and announces it; `rm`
/// before a start, or a `network connect`, drops the prelaunch quietly; a
/// berthd crash leaves nothing of it after the restart.
#[test]
fn a_prelaunch_on_the_default_bridge_keeps_its_endpoint_unseen_until_the_start() {
    let mut d = NetDaemon::start();
    let since = unix_now().to_string();
    let id = create_prelaunched(&d, "early", &["ip", "-o", "-4", "addr", "show", "eth0"]);
    let settings = &d.inspect("early")["NetworkSettings"];
    assert_eq!(settings["IPAddress"], "", "{settings}");
    assert_eq!(
        settings["Networks"]["bridge"]["IPAddress"], "",
        "{settings}"
    );
    assert_eq!(bridge_members(&d), 0);
    assert_eq!(network_events(&d, &since), "");

    let out = d.ok(&["start", "-a", "early"]);
    assert!(out.contains("inet 172."), "{out}");
    let short = &id[..12];
    let events = network_events(&d, &since);
    assert!(
        events.starts_with(&format!("connect {short}\n")),
        "{events}"
    );
    wait_for_only_spares(&d, POOL);

    // rm before the start: the endpoint goes without a word.
    let since = unix_now().to_string();
    let id = create_prelaunched(&d, "dropped", &["true"]);
    d.ok(&["rm", "dropped"]);
    until_prelaunch_gone(&d, &id);
    wait_for_only_spares(&d, POOL);
    assert_eq!(network_events(&d, &since), "");

    // Connected to one more network before the start: the start makes
    // both endpoints.
    d.ok(&["network", "create", "--subnet", "10.126.0.0/24", "late"]);
    let id = create_prelaunched(&d, "twice", &["ip", "-o", "-4", "addr"]);
    d.ok(&["network", "connect", "late", "twice"]);
    until_prelaunch_gone(&d, &id);
    let out = d.ok(&["start", "-a", "twice"]);
    assert!(
        out.contains("eth0") && out.contains("inet 10.126.0."),
        "{out}"
    );
    wait_for_only_spares(&d, POOL);
    d.ok(&["network", "rm", "late"]);
    assert_eq!(d.ok(&["ps", "-aq"]), "");

    // A prelaunch that failed (no such command): the start fails as any
    // start would, and its endpoint is gone.
    let (status, _, stderr) = d.docker(&["run", "--rm", "busybox", "nope"]);
    assert_eq!(status.code(), Some(127), "{stderr}");
    assert!(stderr.contains("executable file not found"), "{stderr}");
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    wait_for_only_spares(&d, POOL);

    // berthd killed after a prelaunch: the restart removes the container,
    // and its endpoint goes with it.
    let id = create_prelaunched(&d, "orphan", &["true"]);
    d.crash_and_restart();
    until_prelaunch_gone(&d, &id);
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    wait_for_only_spares(&d, POOL);
}

/// On the default bridge a repeated `run --rm` takes a spare container
/// too (see containers.rs for the rest of their rules): its endpoint is
/// made ahead but, as a prelaunch's, not a member of the network and
/// without a `connect` event until the start that takes it.
#[test]
fn a_spare_container_on_the_default_bridge_shows_its_endpoint_at_its_start() {
    let d = NetDaemon::start();
    let run = [
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "cat /etc/hostname; ip -o -4 addr show eth0",
    ];
    let since = unix_now().to_string();
    d.ok(&run);
    d.ok(&run); // the repeat: its exit makes the spare
    let spare = wait::until(Duration::from_secs(15), || {
        let spares = spare_container_ids(&d.dir.path().join("root"));
        match spares.as_slice() {
            [id] if prelaunch_state(&d, id).exists() => Ok(id.clone()),
            _ => Err(format!("spares {spares:?}")),
        }
    });
    assert_eq!(bridge_members(&d), 0);
    let short = &spare[..12];
    assert!(
        !network_events(&d, &since).contains(short),
        "the spare was announced"
    );

    let since = unix_now().to_string();
    let out = d.ok(&run);
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some(short),
        "the run did not take the spare: {out}"
    );
    assert!(
        lines.next().is_some_and(|l| l.contains("inet 172.")),
        "{out}"
    );
    let events = network_events(&d, &since);
    assert!(
        events.starts_with(&format!("connect {short}\n")),
        "{events}"
    );
}

/// `create --rm` on the default bridge, then waits for its prelaunch (the
/// shim's state directory).
fn create_prelaunched(d: &NetDaemon, name: &str, command: &[&str]) -> String {
    let mut args = vec!["create", "--rm", "--name", name, "busybox"];
    args.extend_from_slice(command);
    let id = d.ok(&args).trim().to_owned();
    wait::until(Duration::from_secs(10), || {
        if prelaunch_state(d, &id).exists() {
            Ok(())
        } else {
            Err(format!("no prelaunch of {name}"))
        }
    });
    id
}

fn until_prelaunch_gone(d: &NetDaemon, id: &str) {
    wait::until(Duration::from_secs(10), || {
        if prelaunch_state(d, id).exists() {
            Err(format!("the prelaunch of {id} is still there"))
        } else {
            Ok(())
        }
    });
}

fn prelaunch_state(d: &NetDaemon, id: &str) -> PathBuf {
    d.dir.path().join("run/shim").join(&id[..32])
}

/// How many containers `network inspect bridge` lists.
fn bridge_members(d: &NetDaemon) -> usize {
    let out = d.ok(&[
        "network",
        "inspect",
        "bridge",
        "--format",
        "{{len .Containers}}",
    ]);
    out.trim().parse().unwrap()
}

/// `<action> <short container ID>` of each network event since `since`.
fn network_events(d: &NetDaemon, since: &str) -> String {
    let until = (unix_now() + 1).to_string();
    let out = d.ok(&[
        "events",
        "--since",
        since,
        "--until",
        &until,
        "--filter",
        "type=network",
        "--format",
        "{{.Action}} {{.Actor.Attributes.container}}",
    ]);
    out.lines()
        .map(|l| match l.split_once(' ') {
            Some((action, id)) => format!("{action} {}\n", &id[..12.min(id.len())]),
            None => format!("{l}\n"),
        })
        .collect()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A `run --rm` container on the default network pings every address.
fn a_fresh_container_reaches(d: &NetDaemon, addresses: &[&str]) {
    let pings: Vec<String> = addresses
        .iter()
        .map(|a| format!("ping -c1 -W2 {a}"))
        .collect();
    let script = format!("{} && echo reached", pings.join(" && "));
    let out = d.ok(&["run", "--rm", "busybox", "sh", "-c", &script]);
    assert!(out.ends_with("reached\n"), "{out}");
}

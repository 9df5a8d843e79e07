//! A host port range for one container port (`-p 8000-8010:80`) and the
//! embedded DNS over TCP, through the real docker CLI against a berthd in
//! a scratch network namespace ([`NetDaemon`]); every port and address
//! here lives in that namespace.

mod common;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use berth_network::NetNs;
use berth_testkit::dns;
use common::netdaemon::{NetDaemon, POOL, assert_no_container_rules, wait_for_only_spares};

impl NetDaemon {
    /// A TCP listener on `addr` in the scratch host, held by the test.
    fn hold(&self, addr: (&str, u16)) -> TcpListener {
        NetNs::open(&self.netns)
            .unwrap()
            .run(|| TcpListener::bind(addr))
            .unwrap()
            .unwrap_or_else(|e| panic!("binding {addr:?} in the scratch host: {e}"))
    }

    fn running(&self, name: &str) -> bool {
        self.inspect(name)["State"]["Running"] == true
    }
}

#[test]
fn host_port_range_takes_a_free_port_and_gives_it_back() {
    let mut d = NetDaemon::start();

    // Bad ranges: a 400 at create naming the value, nothing created.
    for (key, host_port) in [
        ("80/tcp", "8010-8000"),
        ("80/tcp", "0-5"),
        ("80/tcp", "70000"),
        ("80/tcp", "8000-"),
        ("80-82/tcp", "8000"),
    ] {
        let body = serde_json::json!({
            "Image": "busybox",
            "HostConfig": {"PortBindings": {key: [{"HostIp": "", "HostPort": host_port}]}},
        });
        let response = common::request(
            &d.socket,
            "POST",
            "/containers/create",
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        );
        assert_eq!(
            response.status,
            400,
            "{key} {host_port}: {}",
            response.text()
        );
        let message = response.json()["message"].as_str().unwrap().to_owned();
        let named = if key.contains('-') { key } else { host_port };
        assert!(
            message.contains(&format!("{named:?}")),
            "{key} {host_port}: {message}"
        );
    }
    // The docker CLI passes `0-5` on, and shows the daemon's error.
    let err = d.fails(&["run", "-d", "-p", "0-5:80", "busybox", "true"]);
    assert!(err.contains("invalid port specification \"0-5\""), "{err}");
    assert_eq!(
        d.ok(&["ps", "-aq"]),
        "",
        "a refused create left a container"
    );

    // Every port of the range taken: a clear error naming it, and no
    // container running, no rules, no veth left.
    let _taken = [d.hold(("0.0.0.0", 18310)), d.hold(("0.0.0.0", 18311))];
    let err = d.fails(&[
        "run",
        "-d",
        "--name",
        "full",
        "-p",
        "18310-18311:80",
        "busybox",
        "sleep",
        "60",
    ]);
    assert!(
        err.contains("0.0.0.0:18310-18311/tcp") && err.contains("in use"),
        "{err}"
    );
    assert!(!d.running("full"));
    assert_no_container_rules(&d.ruleset());
    wait_for_only_spares(&d, POOL);
    d.ok(&["rm", "-f", "full"]);

    // The first port is taken: the next one is published, and shown.
    let first = d.hold(("0.0.0.0", 18300));
    d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "18300-18305:80",
        "-p",
        "127.0.0.1:18300-18305:53/udp",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ]);
    let ports = d.ok(&["port", "web"]);
    let mut lines: Vec<&str> = ports.lines().collect();
    lines.sort();
    // UDP has its own ports: its range's first one is free.
    assert_eq!(
        lines,
        ["53/udp -> 127.0.0.1:18300", "80/tcp -> 0.0.0.0:18301"],
        "{ports}"
    );
    assert_eq!(
        d.curl_eventually("http://127.0.0.1:18301/"),
        "hello from berth\n"
    );
    let web = d.inspect("web");
    assert_eq!(
        web["NetworkSettings"]["Ports"]["80/tcp"][0],
        serde_json::json!({"HostIp": "0.0.0.0", "HostPort": "18301"})
    );
    // The binding as given stays in HostConfig.
    assert_eq!(
        web["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"],
        "18300-18305"
    );
    let ps = d.ok(&["ps", "--filter", "name=web", "--format", "{{.Ports}}"]);
    assert!(ps.contains("0.0.0.0:18301->80/tcp"), "{ps}");
    assert!(d.ruleset().contains("dport 18301"), "{}", d.ruleset());

    // Stopped: the port and its rules are given back.
    d.ok(&["stop", "-t", "1", "web"]);
    assert_no_container_rules(&d.ruleset());
    assert!(d.curl("http://127.0.0.1:18301/").is_none());
    // A start picks again: 18301 is the test's now, so 18302.
    drop(first);
    let second = d.hold(("0.0.0.0", 18300));
    let _third = d.hold(("0.0.0.0", 18301));
    d.ok(&["start", "web"]);
    let ports = d.ok(&["port", "web", "80/tcp"]);
    assert_eq!(ports.trim(), "0.0.0.0:18302", "{ports}");
    assert_eq!(
        d.curl_eventually("http://127.0.0.1:18302/"),
        "hello from berth\n"
    );
    // A berthd killed and restarted keeps the port the container has
    // (the range's first free one would be 18300 now).
    drop(second);
    d.crash_and_restart();
    assert_eq!(d.ok(&["port", "web", "80/tcp"]).trim(), "0.0.0.0:18302");
    assert_eq!(
        d.curl_eventually("http://127.0.0.1:18302/"),
        "hello from berth\n"
    );

    // Removed: nothing left, and the port binds again.
    d.ok(&["rm", "-f", "web"]);
    assert_no_container_rules(&d.ruleset());
    wait_for_only_spares(&d, POOL);
    drop(d.hold(("0.0.0.0", 18302)));
}

/// dnsmasq on 127.0.0.1:53 (UDP and TCP) in the scratch host, the
/// upstream of containers started with `--dns 127.0.0.1`: it answers
/// `upstream.test` with 10.9.9.9 and names under `nosuch.test` with
/// NXDOMAIN.
struct Upstream(Child);

impl Upstream {
    fn start(d: &NetDaemon) -> Upstream {
        let child = Command::new("nsenter")
            .arg(format!("--net={}", d.netns.display()))
            .args([
                "--",
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--pid-file=",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                "--port=53",
                "--address=/upstream.test/10.9.9.9",
                "--address=/nosuch.test/",
            ])
            .stdin(Stdio::null())
            .spawn()
            .expect("dnsmasq (Debian package dnsmasq-base) must be installed");
        let upstream = Upstream(child);
        let server = SocketAddr::from(([127, 0, 0, 1], 53));
        let host = NetNs::open(&d.netns).unwrap();
        for _ in 0..100 {
            let answered = host
                .run(|| {
                    dns::udp_exchange(
                        SocketAddr::from(([127, 0, 0, 1], 0)),
                        server,
                        &dns::query(1, "upstream.test", dns::TYPE_A),
                    )
                })
                .unwrap();
            if answered.is_ok() {
                return upstream;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("dnsmasq did not answer on {server}");
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn embedded_dns_answers_over_tcp_inside_a_container() {
    let d = NetDaemon::start();
    let _upstream = Upstream::start(&d);
    d.ok(&["network", "create", "--subnet", "10.131.0.0/24", "dnsnet"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--network",
        "dnsnet",
        "--network-alias",
        "api",
        "busybox",
        "sleep",
        "300",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "client",
        "--network",
        "dnsnet",
        "--dns",
        "127.0.0.1",
        "busybox",
        "sleep",
        "300",
    ]);
    let srv: Ipv4Addr = d.ip_on("srv", "dnsnet").parse().unwrap();
    let pid = d.inspect("client")["State"]["Pid"].as_i64().unwrap();
    assert!(pid > 0);

    // From inside the client's namespace: several queries on one
    // connection to 127.0.0.11:53, as a resolver retrying over TCP sends.
    let client = NetNs::open(format!("/proc/{pid}/ns/net")).unwrap();
    let embedded = SocketAddr::from(([127, 0, 0, 11], 53));
    let replies = client
        .run(|| -> std::io::Result<Vec<dns::Reply>> {
            let mut stream = dns::connect_tcp(embedded)?;
            [
                dns::query(1, "srv", dns::TYPE_A),
                dns::query(2, "api", dns::TYPE_A),
                dns::query(3, "upstream.test", dns::TYPE_A),
                dns::query(4, "gone.nosuch.test", dns::TYPE_A),
            ]
            .iter()
            .map(|q| dns::tcp_exchange(&mut stream, q))
            .collect()
        })
        .unwrap()
        .unwrap();
    let ids: Vec<u16> = replies.iter().map(|r| r.id).collect();
    assert_eq!(ids, [1, 2, 3, 4], "{replies:?}");
    assert_eq!(replies[0].addresses(), [srv], "{replies:?}");
    assert_eq!(replies[1].addresses(), [srv], "{replies:?}");
    assert_eq!(
        replies[2].addresses(),
        [Ipv4Addr::new(10, 9, 9, 9)],
        "forwarded upstream: {replies:?}"
    );
    assert_eq!(replies[3].rcode, dns::NXDOMAIN, "{replies:?}");
    // The same answer as over UDP.
    let udp = client
        .run(|| {
            dns::udp_exchange(
                SocketAddr::from(([127, 0, 0, 1], 0)),
                embedded,
                &dns::query(5, "srv", dns::TYPE_A),
            )
        })
        .unwrap()
        .unwrap();
    assert_eq!(udp.addresses(), [srv], "{udp:?}");
    drop(client);

    d.ok(&["rm", "-f", "srv", "client"]);
    d.ok(&["network", "rm", "dnsnet"]);
    wait_for_only_spares(&d, POOL);
    let links = d.links();
    assert!(!links.iter().any(|l| l.starts_with("br-")), "{links:?}");
    assert_no_container_rules(&d.ruleset());
}

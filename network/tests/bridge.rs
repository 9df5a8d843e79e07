//! Real networking, as root: every test builds its own "host" inside a
//! scratch network namespace (bridges, veths and the nftables table live
//! there, so the machine's own network is never touched), plus one
//! namespace per "container". Dropping the guard removes them all.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use berth_network::{
    DnsRegistry, EmbeddedDns, Endpoint, NetNs, NetworkError, NetworkSpec, Networking, PortSpec,
};
use berth_testkit::dns;

struct TestHost {
    dir: tempfile::TempDir,
    host: NetNs,
}

impl TestHost {
    async fn new() -> (Self, Networking) {
        let dir = tempfile::tempdir().unwrap();
        let host = NetNs::create(dir.path().join("host-netns")).unwrap();
        let guard = Self { dir, host };
        let net = guard.networking().await;
        // A fresh namespace has `lo` down; a real host has it up.
        let lo = net.netlink().link_index("lo").await.unwrap().unwrap();
        net.netlink().set_up(lo, "lo").await.unwrap();
        net.start().await.unwrap();
        (guard, net)
    }

    async fn networking(&self) -> Networking {
        Networking::open(
            self.host.clone(),
            self.dir.path().join("state"),
            self.netns_dir(),
        )
        .await
        .unwrap()
    }

    fn netns_dir(&self) -> PathBuf {
        self.dir.path().join("netns")
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(self.netns_dir()) {
            for entry in entries.flatten() {
                let _ = NetNs::remove(entry.path());
            }
        }
        // Links and nft rules live in this namespace and go with it.
        let _ = NetNs::remove(self.dir.path().join("host-netns"));
    }
}

fn spec(name: &str, bridge: &str, subnet: Option<&str>) -> NetworkSpec {
    NetworkSpec {
        name: name.to_owned(),
        bridge: bridge.to_owned(),
        subnet: subnet.map(|s| s.parse().unwrap()),
        ..Default::default()
    }
}

async fn container(net: &Networking, network: &str, id: &str, ports: &[&str]) -> (NetNs, Endpoint) {
    let ns = net.create_netns(id).unwrap();
    let ports: Vec<PortSpec> = ports.iter().map(|p| PortSpec::parse(p).unwrap()).collect();
    let ep = net
        .connect(network, id, &ns, "eth0", None, &ports)
        .await
        .unwrap();
    (ns, ep)
}

/// A TCP server in `ns` answering each connection with `reply`.
fn serve(ns: &NetNs, port: u16, reply: &'static str) -> SocketAddrV4 {
    let listener = ns
        .run(|| TcpListener::bind(("0.0.0.0", port)))
        .unwrap()
        .unwrap();
    let addr = match listener.local_addr().unwrap() {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => unreachable!(),
    };
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    addr
}

/// Connects from inside `ns` and reads the reply.
fn fetch(ns: &NetNs, addr: SocketAddrV4) -> std::io::Result<String> {
    ns.run(|| {
        let mut stream = TcpStream::connect_timeout(&addr.into(), Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut out = String::new();
        stream.read_to_string(&mut out)?;
        Ok(out)
    })
    .unwrap()
}

fn ping(ns: &NetNs, addr: Ipv4Addr) -> bool {
    ns.run(|| {
        Command::new("busybox")
            .args(["ping", "-c1", "-W2", &addr.to_string()])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    })
    .unwrap()
}

fn is_mounted(path: &Path) -> bool {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let path = path.to_str().unwrap();
    mountinfo.lines().any(|l| l.split(' ').nth(4) == Some(path))
}

#[tokio::test]
async fn containers_on_a_bridge_reach_each_other() {
    let (_host, net) = TestHost::new().await;
    let info = net
        .create_network(&spec("bridge", "berth0", None))
        .await
        .unwrap();
    assert_eq!(info.gateway, info.subnet.first_host());
    let (ns1, ep1) = container(&net, "bridge", "c1", &[]).await;
    let (ns2, ep2) = container(&net, "bridge", "c2", &[]).await;
    assert_ne!(ep1.address, ep2.address);
    assert!(info.subnet.contains(ep1.address) && info.subnet.contains(ep2.address));

    assert!(ping(&ns1, ep2.address), "c1 cannot ping c2");
    assert!(ping(&ns2, info.gateway), "c2 cannot ping the gateway");
    let server = serve(&ns2, 0, "from c2");
    assert_eq!(
        fetch(&ns1, SocketAddrV4::new(ep2.address, server.port())).unwrap(),
        "from c2"
    );

    // Inside: eth0 carries the address, the default route goes via the gateway.
    let inside = berth_network::Netlink::open(&ns1).await.unwrap();
    let eth0 = inside
        .link_index("eth0")
        .await
        .unwrap()
        .expect("eth0 exists in the container");
    assert_eq!(inside.addresses(eth0).await.unwrap(), vec![ep1.address]);
    let routes = ns1
        .run(|| {
            Command::new("ip")
                .args(["-4", "route", "show", "default"])
                .output()
                .unwrap()
        })
        .unwrap();
    let routes = String::from_utf8_lossy(&routes.stdout);
    assert!(
        routes.contains(&format!("default via {}", info.gateway)),
        "{routes}"
    );
}

#[tokio::test]
async fn networks_are_isolated_from_each_other() {
    let (_host, net) = TestHost::new().await;
    net.create_network(&spec("front", "br-front", Some("10.71.0.0/24")))
        .await
        .unwrap();
    net.create_network(&spec("back", "br-back", Some("10.72.0.0/24")))
        .await
        .unwrap();
    let (ns1, _ep1) = container(&net, "front", "f1", &[]).await;
    let (_ns2, ep2) = container(&net, "back", "b1", &[]).await;
    let (ns3, _ep3) = container(&net, "back", "b2", &[]).await;
    assert!(ping(&ns3, ep2.address), "same network must work");
    assert!(!ping(&ns1, ep2.address), "front reached back");

    // Without berth's rules the host routes between the bridges: it was
    // the isolation that stopped the ping above.
    net.firewall().reset().unwrap();
    assert!(
        ping(&ns1, ep2.address),
        "routing between bridges is broken, so the isolation check proves nothing"
    );
}

#[tokio::test]
async fn internal_network_has_no_way_out() {
    let (_host, net) = TestHost::new().await;
    let mut internal = spec("private", "br-priv", Some("10.73.0.0/24"));
    internal.internal = true;
    net.create_network(&internal).await.unwrap();
    net.create_network(&spec("public", "br-pub", Some("10.74.0.0/24")))
        .await
        .unwrap();
    let (ns1, ep1) = container(&net, "private", "p1", &[]).await;
    let (ns2, ep2) = container(&net, "private", "p2", &[]).await;
    let (ns3, ep3) = container(&net, "public", "q1", &[]).await;
    assert_eq!(ep1.gateway, None);
    assert!(ping(&ns1, ep2.address));
    assert!(
        !ping(&ns3, ep1.address),
        "a public container reached an internal one"
    );
    assert!(
        !ping(&ns2, ep3.address),
        "an internal container reached a public one"
    );
}

#[tokio::test]
async fn published_port_reachable_from_host_and_loopback() {
    let (host, net) = TestHost::new().await;
    let info = net
        .create_network(&spec("bridge", "berth0", None))
        .await
        .unwrap();
    let (ns1, ep1) = container(&net, "bridge", "web", &["80", "127.0.0.1::81"]).await;
    let (ns2, _ep2) = container(&net, "bridge", "client", &[]).await;
    serve(&ns1, 80, "hello 80");
    serve(&ns1, 81, "hello 81");
    let mappings = ep1.ports.mappings();
    assert_eq!(mappings.len(), 2);
    let (p80, p81) = (mappings[0].host_port, mappings[1].host_port);
    assert!(p80 != 0 && p81 != 0);

    let loopback = |port| SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    assert_eq!(fetch(&host.host, loopback(p80)).unwrap(), "hello 80");
    assert_eq!(
        fetch(&host.host, SocketAddrV4::new(info.gateway, p80)).unwrap(),
        "hello 80"
    );
    assert_eq!(fetch(&host.host, loopback(p81)).unwrap(), "hello 81");
    // Published on 127.0.0.1 only: not on the bridge address.
    assert!(fetch(&host.host, SocketAddrV4::new(info.gateway, p81)).is_err());
    // Another container reaches it through the host's address.
    assert_eq!(
        fetch(&ns2, SocketAddrV4::new(info.gateway, p80)).unwrap(),
        "hello 80"
    );
    // So does the container itself (hairpin).
    assert_eq!(
        fetch(&ns1, SocketAddrV4::new(info.gateway, p80)).unwrap(),
        "hello 80"
    );

    // The host port is held: nothing else can bind it...
    let taken = host
        .host
        .run(|| TcpListener::bind(("0.0.0.0", p80)))
        .unwrap();
    assert!(taken.is_err(), "published port was not reserved");
    // ...and a second container asking for it gets a clear error.
    let ns3 = net.create_netns("late").unwrap();
    let err = net
        .connect(
            "bridge",
            "late",
            &ns3,
            "eth0",
            None,
            &[PortSpec::parse(&format!("{p80}:80")).unwrap()],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, NetworkError::PortInUse { port, .. } if port == p80),
        "{err}"
    );
    assert!(err.to_string().contains(&p80.to_string()), "{err}");

    net.disconnect(ep1).await.unwrap();
    assert!(
        fetch(&host.host, loopback(p80)).is_err(),
        "port still forwarded after disconnect"
    );
    let ruleset = net.firewall().ruleset().unwrap();
    assert!(!ruleset.contains("ctr-web"), "{ruleset}");
}

#[tokio::test]
async fn port_held_by_a_host_process_is_refused() {
    let (host, net) = TestHost::new().await;
    net.create_network(&spec("bridge", "berth0", None))
        .await
        .unwrap();
    let busy = host
        .host
        .run(|| TcpListener::bind(("127.0.0.1", 0)))
        .unwrap()
        .unwrap();
    let port = busy.local_addr().unwrap().port();
    let ns = net.create_netns("c").unwrap();
    let err = net
        .connect(
            "bridge",
            "c",
            &ns,
            "eth0",
            None,
            &[PortSpec::parse(&format!("{port}:80")).unwrap()],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, NetworkError::PortInUse { .. }), "{err}");
    // The failed connect left nothing behind: no veth, no address held.
    let links = net.netlink().link_names().await.unwrap();
    assert!(!links.iter().any(|l| l.starts_with("vb")), "{links:?}");
    let (_ns2, ep) = container(&net, "bridge", "c2", &[]).await;
    let state = std::fs::read(host.dir.path().join("state/ipam/bridge.json")).unwrap();
    let state: serde_json::Value = serde_json::from_slice(&state).unwrap();
    let allocated = state["allocated"].as_object().unwrap();
    assert_eq!(allocated.len(), 1, "{allocated:?}");
    assert_eq!(allocated[&ep.address.to_string()], "c2");
}

#[tokio::test]
async fn host_port_range_takes_its_first_free_port() {
    let (host, net) = TestHost::new().await;
    net.create_network(&spec("bridge", "berth0", None))
        .await
        .unwrap();
    // In the scratch host: nothing else binds these.
    let busy = host
        .host
        .run(|| TcpListener::bind(("127.0.0.1", 18200)))
        .unwrap()
        .unwrap();
    // Two ports share the range: the second skips the first's pick too.
    let (ns, ep) = container(
        &net,
        "bridge",
        "web",
        &["127.0.0.1:18200-18203:80", "127.0.0.1:18200-18203:81"],
    )
    .await;
    let picked: Vec<u16> = ep.ports.mappings().iter().map(|m| m.host_port).collect();
    assert_eq!(picked, [18201, 18202]);
    serve(&ns, 80, "hello 80");
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 18201);
    assert_eq!(fetch(&host.host, addr).unwrap(), "hello 80");

    // Every port taken: a clear error naming the range, nothing left.
    let ns2 = net.create_netns("late").unwrap();
    let err = net
        .connect(
            "bridge",
            "late",
            &ns2,
            "eth0",
            None,
            &[PortSpec::parse("127.0.0.1:18200-18202:80").unwrap()],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, NetworkError::PortRangeInUse { .. }), "{err}");
    assert!(
        err.to_string().contains("127.0.0.1:18200-18202/tcp"),
        "{err}"
    );
    let ruleset = net.firewall().ruleset().unwrap();
    assert!(!ruleset.contains("ctr-late"), "{ruleset}");

    // Released with the endpoint: the port binds again.
    net.disconnect(ep).await.unwrap();
    drop(busy);
    let freed = host
        .host
        .run(|| TcpListener::bind(("127.0.0.1", 18201)))
        .unwrap();
    assert!(freed.is_ok(), "{freed:?}");
}

#[tokio::test]
async fn allocations_survive_a_restart_and_crash_rules_are_cleaned() {
    let (host, net) = TestHost::new().await;
    net.create_network(&spec("bridge", "berth0", Some("10.75.0.0/24")))
        .await
        .unwrap();
    let (ns1, ep1) = container(&net, "bridge", "c1", &["8080"]).await;
    let first = ep1.address;
    let mapping = ep1.ports.mappings()[0];
    // "Crash": the process forgets everything without cleaning up.
    drop(ep1);
    drop(net);

    let net = host.networking().await;
    net.start().await.unwrap();
    let ruleset = net.firewall().ruleset().unwrap();
    assert!(
        !ruleset.contains("ctr-c1"),
        "rules from before the crash survived: {ruleset}"
    );
    assert!(
        ruleset.contains("from-berth0"),
        "network rules were not restored: {ruleset}"
    );
    assert_eq!(net.networks().unwrap().len(), 1);
    let (ns2, ep2) = container(&net, "bridge", "c2", &[]).await;
    assert_ne!(
        ep2.address, first,
        "an address held before the restart was handed out again"
    );
    assert!(
        ping(&ns2, "10.75.0.1".parse().unwrap()),
        "restored bridge does not work"
    );

    // Live restore of c1's published port: reserve it again, re-add its rules.
    let _reserved = berth_network::reserve(&host.host, &[PortSpec::from(mapping)]).unwrap();
    net.republish("c1", first, &[mapping]).await.unwrap();
    serve(&ns1, 8080, "restored");
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, mapping.host_port);
    assert_eq!(fetch(&host.host, addr).unwrap(), "restored");
}

#[tokio::test]
async fn bad_subnets_are_clear_errors() {
    let (_host, net) = TestHost::new().await;
    net.create_network(&spec("one", "br-one", Some("10.76.0.0/16")))
        .await
        .unwrap();
    let err = net
        .create_network(&spec("two", "br-two", Some("10.76.5.0/24")))
        .await
        .unwrap_err();
    assert!(matches!(err, NetworkError::Overlap { .. }), "{err}");
    assert!(
        err.to_string().contains("10.76.0.0/16") && err.to_string().contains("network one"),
        "{err}"
    );

    // A host interface's route counts too.
    net.netlink()
        .ensure_bridge(
            "hostif",
            "10.77.1.1".parse().unwrap(),
            "10.77.1.0/24".parse().unwrap(),
        )
        .await
        .unwrap();
    let err = net
        .create_network(&spec("three", "br-three", Some("10.77.0.0/16")))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("10.77.1.0/24") && err.to_string().contains("host route"),
        "{err}"
    );

    // Default subnet selection steps around both.
    let picked = net
        .create_network(&spec("auto", "br-auto", None))
        .await
        .unwrap();
    assert_eq!(picked.subnet.to_string(), "172.17.0.0/16");

    let err = "10.78.0.1/16"
        .parse::<berth_network::Ipv4Net>()
        .unwrap_err();
    assert!(err.to_string().contains("10.78.0.1/16"), "{err}");
    let mut bad_gw = spec("gw", "br-gw", Some("10.79.0.0/24"));
    bad_gw.gateway = Some("10.80.0.1".parse().unwrap());
    let err = net.create_network(&bad_gw).await.unwrap_err();
    assert!(matches!(err, NetworkError::InvalidGateway { .. }), "{err}");
    assert!(net.network("gw").unwrap().is_none());
    for (name, bridge) in [("../escape", "br-x"), ("ok", "a-bridge-name-too-long")] {
        let err = net
            .create_network(&spec(name, bridge, None))
            .await
            .unwrap_err();
        assert!(matches!(err, NetworkError::InvalidName { .. }), "{err}");
    }
}

#[tokio::test]
async fn no_table_until_the_first_network() {
    let (_host, net) = TestHost::new().await;
    // `berthd --bridge none` starts like this: no network, no firewall.
    assert!(net.firewall().list_tables().unwrap().is_empty());
    net.create_network(&spec("first", "br-first", Some("10.74.0.0/24")))
        .await
        .unwrap();
    assert_eq!(net.firewall().list_tables().unwrap(), vec!["ip berth"]);
    // A restart with a stored network builds the table again.
    net.start().await.unwrap();
    assert_eq!(net.firewall().list_tables().unwrap(), vec!["ip berth"]);
    // The last network takes it away, and the next one brings it back.
    net.remove_network("first").await.unwrap();
    assert!(net.firewall().list_tables().unwrap().is_empty());
    net.create_network(&spec("again", "br-again", Some("10.74.0.0/24")))
        .await
        .unwrap();
    assert_eq!(net.firewall().list_tables().unwrap(), vec!["ip berth"]);
}

#[tokio::test]
async fn cleanup_leaves_nothing_behind() {
    let (host, net) = TestHost::new().await;
    net.create_network(&spec("bridge", "berth0", None))
        .await
        .unwrap();
    let (_ns, ep) = container(&net, "bridge", "c1", &["9000"]).await;
    let netns_path = net.netns_path("c1");
    assert!(is_mounted(&netns_path));

    let err = net.remove_network("bridge").await.unwrap_err();
    assert!(
        matches!(err, NetworkError::NetworkInUse { .. }),
        "removing a network in use: {err}"
    );

    let (ns2, ep2) = container(&net, "bridge", "c2", &["9001"]).await;
    net.disconnect(ep).await.unwrap();
    net.remove_netns("c1").unwrap();
    // The fast path: the kernel deletes c2's veth pair with its namespace
    // (once nothing holds the namespace: no process, no open handle).
    drop(ns2);
    net.remove_endpoint(ep2).await.unwrap();
    let mut links = net.netlink().link_names().await.unwrap();
    for _ in 0..100 {
        if !links.iter().any(|l| l.starts_with("vb")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        links = net.netlink().link_names().await.unwrap();
    }
    assert!(
        !links.iter().any(|l| l.starts_with("vb")),
        "veth left after namespace removal: {links:?}"
    );
    net.remove_network("bridge").await.unwrap();
    net.stop().await.unwrap();

    assert_eq!(
        net.netlink().link_names().await.unwrap(),
        vec!["lo".to_owned()]
    );
    assert!(!is_mounted(&netns_path) && !netns_path.exists());
    assert!(net.firewall().list_tables().unwrap().is_empty());
    assert!(net.networks().unwrap().is_empty());
    let nft = host
        .host
        .run(|| {
            Command::new("nft")
                .args(["list", "tables"])
                .output()
                .unwrap()
        })
        .unwrap();
    assert!(
        nft.status.success() && nft.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&nft.stdout)
    );
}

/// A real DNS server (dnsmasq) on 127.0.0.1 in the test host's namespace
/// (UDP and TCP), answering `upstream.test` with 10.9.9.9, `big.test`
/// with a TXT record too big for UDP, names under `nosuch.test` with
/// NXDOMAIN, and refusing everything else.
struct Dnsmasq {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One string of `big.test`'s TXT record (three of them: over 512 bytes).
const BIG_TXT: &str = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\
                       0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\
                       0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz";

fn a_query(name: &str) -> Vec<u8> {
    let mut q = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

impl Dnsmasq {
    fn start(host: &NetNs) -> Self {
        host.run(|| {
            let port = UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let child = Command::new("dnsmasq")
                .args([
                    "--keep-in-foreground",
                    "--conf-file=/dev/null",
                    "--pid-file=",
                    "--no-resolv",
                    "--no-hosts",
                    "--bind-interfaces",
                    "--listen-address=127.0.0.1",
                    &format!("--port={port}"),
                    "--address=/upstream.test/10.9.9.9",
                    "--address=/nosuch.test/",
                    &format!("--txt-record=big.test,{BIG_TXT},{BIG_TXT},{BIG_TXT}"),
                ])
                .spawn()
                .expect("dnsmasq (Debian package dnsmasq-base) must be installed");
            let server = Self {
                child,
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
            };
            // Ready once it answers.
            let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
            probe
                .set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            for _ in 0..100 {
                let _ = probe.send_to(&a_query("upstream.test"), server.addr);
                if probe.recv_from(&mut [0; 512]).is_ok() {
                    return server;
                }
            }
            panic!("dnsmasq did not answer on {}", server.addr);
        })
        .unwrap()
    }
}

async fn nslookup(ns: &NetNs, name: &str) -> String {
    let (ns, name) = (ns.clone(), name.to_owned());
    tokio::task::spawn_blocking(move || {
        let out = ns
            .run(|| {
                Command::new("busybox")
                    .args(["nslookup", &name, "127.0.0.11"])
                    .output()
                    .unwrap()
            })
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn embedded_dns_resolves_container_names_and_forwards_the_rest() {
    let (host, net) = TestHost::new().await;
    net.create_network(&spec("app", "br-app", Some("10.81.0.0/24")))
        .await
        .unwrap();
    net.create_network(&spec("other", "br-other", Some("10.82.0.0/24")))
        .await
        .unwrap();
    let (_ns_web, web) = container(&net, "app", "web", &[]).await;
    let (ns_db, db) = container(&net, "app", "db", &[]).await;
    let (_ns_x, x) = container(&net, "other", "x", &[]).await;
    let registry = DnsRegistry::new();
    registry.register("app", &["web", "www"], web.address);
    registry.register("app", &["db"], db.address);
    registry.register("other", &["x"], x.address);
    let upstream = Dnsmasq::start(&host.host);
    let _dns = EmbeddedDns::start(
        &ns_db,
        &host.host,
        vec!["app".into()],
        registry,
        vec![upstream.addr],
    )
    .unwrap();

    let out = nslookup(&ns_db, "www").await;
    assert!(
        out.contains(&web.address.to_string()),
        "alias not resolved: {out}"
    );
    let out = nslookup(&ns_db, "WEB").await;
    assert!(
        out.contains(&web.address.to_string()),
        "names are case-insensitive: {out}"
    );
    // Forwarded to the host's resolver, reached from the host namespace.
    let out = nslookup(&ns_db, "upstream.test").await;
    assert!(out.contains("10.9.9.9"), "not forwarded upstream: {out}");
    // A container on another network is not visible.
    let out = nslookup(&ns_db, "x").await;
    assert!(
        !out.contains(&x.address.to_string()),
        "resolved across networks: {out}"
    );
}

/// DNS over TCP to 127.0.0.11:53 from inside `ns`: one connection, the
/// queries in order, their replies.
async fn tcp_queries(ns: &NetNs, queries: Vec<Vec<u8>>) -> Vec<dns::Reply> {
    let ns = ns.clone();
    tokio::task::spawn_blocking(move || {
        let mut stream = ns
            .run(|| dns::connect_tcp(SocketAddr::from(EMBEDDED)))
            .unwrap()
            .unwrap();
        queries
            .iter()
            .map(|q| dns::tcp_exchange(&mut stream, q).unwrap())
            .collect()
    })
    .await
    .unwrap()
}

const EMBEDDED: ([u8; 4], u16) = ([127, 0, 0, 11], 53);

#[tokio::test]
async fn embedded_dns_answers_over_tcp_as_over_udp() {
    let (host, net) = TestHost::new().await;
    net.create_network(&spec("app", "br-app", Some("10.83.0.0/24")))
        .await
        .unwrap();
    let (_ns_web, web) = container(&net, "app", "web", &[]).await;
    let (ns_db, _db) = container(&net, "app", "db", &[]).await;
    let registry = DnsRegistry::new();
    registry.register("app", &["web", "www"], web.address);
    // One alias on 40 addresses: 640 bytes of A records.
    let pool: Vec<Ipv4Addr> = (0..40).map(|i| Ipv4Addr::new(10, 83, 1, i)).collect();
    for address in &pool {
        registry.register("app", &["pool"], *address);
    }
    let upstream = Dnsmasq::start(&host.host);
    let server = EmbeddedDns::start(
        &ns_db,
        &host.host,
        vec!["app".into()],
        registry,
        vec![upstream.addr],
    )
    .unwrap();

    // Several queries on one connection: a container name, a name
    // forwarded upstream (over TCP), a name that does not exist.
    let replies = tcp_queries(
        &ns_db,
        vec![
            dns::query(1, "www", dns::TYPE_A),
            dns::query(2, "upstream.test", dns::TYPE_A),
            dns::query(3, "gone.nosuch.test", dns::TYPE_A),
            dns::query(4, "WEB", dns::TYPE_A),
        ],
    )
    .await;
    let ids: Vec<u16> = replies.iter().map(|r| r.id).collect();
    assert_eq!(ids, [1, 2, 3, 4], "{replies:?}");
    assert_eq!(replies[0].addresses(), [web.address], "{replies:?}");
    assert_eq!(
        replies[1].addresses(),
        [Ipv4Addr::new(10, 9, 9, 9)],
        "{replies:?}"
    );
    assert_eq!(replies[2].rcode, dns::NXDOMAIN, "{replies:?}");
    assert!(replies[2].answers.is_empty(), "{replies:?}");
    assert_eq!(replies[3].addresses(), [web.address], "{replies:?}");

    // Too big for UDP, locally or upstream: TC over UDP, all of it over TCP.
    let udp = |name: &'static str, qtype| {
        let ns = ns_db.clone();
        tokio::task::spawn_blocking(move || {
            ns.run(|| {
                dns::udp_exchange(
                    SocketAddr::from(([127, 0, 0, 1], 0)),
                    SocketAddr::from(EMBEDDED),
                    &dns::query(5, name, qtype),
                )
            })
            .unwrap()
            .unwrap()
        })
    };
    let short = udp("pool", dns::TYPE_A).await.unwrap();
    assert!(short.truncated, "{short:?}");
    assert!(short.answers.len() < pool.len(), "{short:?}");
    let short_txt = udp("big.test", dns::TYPE_TXT).await.unwrap();
    assert!(short_txt.truncated, "{short_txt:?}");
    let full = tcp_queries(
        &ns_db,
        vec![
            dns::query(6, "pool", dns::TYPE_A),
            dns::query(7, "big.test", dns::TYPE_TXT),
        ],
    )
    .await;
    assert!(!full[0].truncated, "{full:?}");
    let mut addresses = full[0].addresses();
    addresses.sort();
    assert_eq!(addresses, pool);
    assert!(!full[1].truncated, "{full:?}");
    assert_eq!(full[1].texts(), [BIG_TXT.repeat(3)], "{full:?}");

    // Connections are bounded: past the limit, a new one is closed at
    // once; an idle one is closed by the server, which frees a place.
    let ns = ns_db.clone();
    tokio::task::spawn_blocking(move || {
        let connect = || {
            ns.run(|| dns::connect_tcp(SocketAddr::from(EMBEDDED)))
                .unwrap()
                .unwrap()
        };
        let mut open: Vec<TcpStream> = (0..32).map(|_| connect()).collect();
        // Each is served (and so counted) before the next one is made.
        for (i, stream) in open.iter_mut().enumerate() {
            let reply = dns::tcp_exchange(stream, &dns::query(i as u16, "www", dns::TYPE_A));
            assert!(reply.is_ok(), "connection {i}: {reply:?}");
        }
        let mut extra = connect();
        let refused = dns::tcp_exchange(&mut extra, &dns::query(99, "www", dns::TYPE_A));
        assert!(refused.is_err(), "{refused:?}");
        // The server ends idle connections (the client reads EOF).
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        for stream in &mut open {
            stream
                .set_read_timeout(Some(Duration::from_secs(60)))
                .unwrap();
            let mut byte = [0u8; 1];
            assert_eq!(stream.read(&mut byte).unwrap(), 0, "closed by the server");
            assert!(std::time::Instant::now() < deadline);
        }
        let mut again = connect();
        let reply = dns::tcp_exchange(&mut again, &dns::query(100, "www", dns::TYPE_A)).unwrap();
        assert_eq!(reply.id, 100);
        // Stopping the server ends its connections too.
        drop(server);
        let mut byte = [0u8; 1];
        assert_eq!(again.read(&mut byte).unwrap(), 0, "closed with the server");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn published_udp_port() {
    let (host, net) = TestHost::new().await;
    net.create_network(&spec("bridge", "berth0", None))
        .await
        .unwrap();
    let (ns, ep) = container(&net, "bridge", "dns", &["127.0.0.1::5353/udp"]).await;
    let server = ns.run(|| UdpSocket::bind("0.0.0.0:5353")).unwrap().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0; 64];
        while let Ok((n, from)) = server.recv_from(&mut buf) {
            let _ = server.send_to(&buf[..n], from);
        }
    });
    let port = ep.ports.mappings()[0].host_port;
    let reply = host
        .host
        .run(|| {
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            client
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            client.send_to(b"ping", ("127.0.0.1", port)).unwrap();
            let mut buf = [0; 64];
            client.recv_from(&mut buf).map(|(n, _)| buf[..n].to_vec())
        })
        .unwrap();
    assert_eq!(reply.unwrap(), b"ping");
    // The UDP host port is held as well.
    let taken = host
        .host
        .run(|| UdpSocket::bind(("127.0.0.1", port)))
        .unwrap();
    assert!(taken.is_err(), "published UDP port was not reserved");
}

async fn links_settle(net: &Networking, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let mut links = net.netlink().link_names().await.unwrap();
    for _ in 0..100 {
        if links.iter().all(|l| keep(l)) {
            break;
        }
        // The kernel deletes a namespace's veth pair asynchronously.
        tokio::time::sleep(Duration::from_millis(50)).await;
        links = net.netlink().link_names().await.unwrap();
    }
    links
}

#[tokio::test]
async fn spares_become_a_containers_eth0_and_go_with_their_network() {
    let (_host, net) = TestHost::new().await;
    let net = net.with_spares(2);
    let info = net
        .create_network(&spec("bridge", "berth0", None))
        .await
        .unwrap();
    // Nothing is made for a network no container wanted yet.
    assert_eq!(net.refill_spares().await.unwrap(), 0);
    assert!(net.take_spare("bridge").is_none(), "the pool starts empty");
    assert_eq!(net.refill_spares().await.unwrap(), 2);
    let spares = net.spare_veths();
    assert_eq!(spares.len(), 2, "{spares:?}");
    let links = net.netlink().link_names().await.unwrap();
    for veth in &spares {
        assert!(veth.starts_with("vbp") && veth.len() <= 15, "{veth}");
        assert!(links.contains(veth), "{veth} not in {links:?}");
    }

    // A container on a spare: its namespace mounted at its path, eth0
    // with an address and the default route, reachable and reaching out.
    let spare = net.take_spare("bridge").expect("a spare is ready");
    let host_veth = spare.host_veth().to_owned();
    let ns1 = net.mount_spare(&spare, "c1").unwrap();
    assert!(is_mounted(&net.netns_path("c1")));
    let ports = [PortSpec::parse("9000").unwrap()];
    let ep1 = net.connect_spare(spare, "c1", None, &ports).await.unwrap();
    assert_eq!(
        (ep1.interface.as_str(), &ep1.host_veth),
        ("eth0", &host_veth)
    );
    assert!(info.subnet.contains(ep1.address));
    assert_eq!(ep1.ports.mappings().len(), 1);
    let (ns2, ep2) = container(&net, "bridge", "c2", &[]).await;
    assert!(ping(&ns1, ep2.address), "c1 (spare) cannot ping c2");
    assert!(ping(&ns2, ep1.address), "c2 cannot ping c1 (spare)");
    assert!(ping(&ns1, info.gateway), "c1 cannot ping the gateway");
    // One connection, then the listener goes: a socket would keep the
    // namespace, and so the veth pair, alive.
    let listener = ns1
        .run(|| TcpListener::bind(("0.0.0.0", 9000)))
        .unwrap()
        .unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.write_all(b"from c1").unwrap();
    });
    assert_eq!(
        fetch(&ns2, SocketAddrV4::new(ep1.address, 9000)).unwrap(),
        "from c1"
    );
    server.join().unwrap();
    let routes = ns1
        .run(|| Command::new("ip").args(["-4", "route"]).output().unwrap())
        .unwrap();
    let routes = String::from_utf8_lossy(&routes.stdout);
    assert!(
        routes.contains(&format!("default via {} dev eth0", info.gateway)),
        "{routes}"
    );

    // Refilled to two; the taken one is the container's now.
    assert_eq!(net.refill_spares().await.unwrap(), 1);
    assert_eq!(net.spare_veths().len(), 2);
    assert!(!net.spare_veths().contains(&host_veth));

    // Removal: the container's pair goes with its namespace, the spares
    // with the network.
    drop((ns1, ns2));
    net.remove_endpoint(ep1).await.unwrap();
    net.remove_endpoint(ep2).await.unwrap();
    net.remove_network("bridge").await.unwrap();
    assert!(net.spare_veths().is_empty());
    // A start racing the removal asked for spares of the gone network:
    // the refill forgets it rather than failing on it.
    assert!(net.take_spare("bridge").is_none());
    assert_eq!(net.refill_spares().await.unwrap(), 0);
    let links = links_settle(&net, |l| !l.starts_with("vb")).await;
    assert_eq!(links, vec!["lo".to_owned()]);
    let netns_dir = std::fs::read_dir(net.netns_path("c1").parent().unwrap())
        .map(|e| e.count())
        .unwrap_or(0);
    assert_eq!(netns_dir, 0, "container namespaces left");
    net.stop().await.unwrap();
}

#[tokio::test]
async fn spares_vanish_with_the_process_that_held_them() {
    // A crashed berthd: nothing but its descriptors held the spares.
    let (host, net) = TestHost::new().await;
    let net = net.with_spares(3);
    net.create_network(&spec("bridge", "berth0", None))
        .await
        .unwrap();
    net.want_spares("bridge");
    assert_eq!(net.refill_spares().await.unwrap(), 3);
    assert_eq!(
        net.netlink()
            .link_names()
            .await
            .unwrap()
            .iter()
            .filter(|l| l.starts_with("vbp"))
            .count(),
        3
    );
    drop(net);
    let next = host.networking().await;
    let links = links_settle(&next, |l| !l.starts_with("vb")).await;
    assert!(!links.iter().any(|l| l.starts_with("vb")), "{links:?}");
    assert!(links.contains(&"berth0".to_owned()), "{links:?}");
    let nothing_mounted = std::fs::read_dir(host.netns_dir())
        .map(|e| e.count())
        .unwrap_or(0);
    assert_eq!(nothing_mounted, 0);
    next.start().await.unwrap();
    next.remove_network("bridge").await.unwrap();
    next.stop().await.unwrap();
}

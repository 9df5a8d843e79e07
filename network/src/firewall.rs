//! NAT, isolation and published ports in one nftables table, `ip berth`,
//! changed only through `nft -j -f -` batches (one kernel transaction each,
//! so a batch applies completely or not at all).
//!
//! Layout: base chains dispatch through verdict maps keyed by interface or
//! by port, and every network and container owns its own regular chains.
//! Adding or removing one is then "add/delete chains + map elements" in a
//! single batch, with no rule handles to remember:
//!
//! ```text
//! set bridges      { ifname }                       every berth bridge
//! map fwd_from     { ifname : verdict }             bridge -> jump from-<br>
//! map fwd_to       { ifname : verdict }             bridge -> jump to-<br>
//! map masq_from    { ifname : verdict }             bridge -> jump masq-<br>
//! map masq_to      { ifname : verdict }             bridge -> jump hair-<br>
//! map ports        { inet_proto . inet_service : verdict }  -> jump ctr-<id>
//! prerouting/output (nat, dstnat): fib daddr type local  l4proto . dport vmap @ports
//! postrouting (nat, srcnat): iifname vmap @masq_from; oifname vmap @masq_to;
//!                            ip saddr 127.0.0.0/8 oifname @bridges masquerade
//! forward (filter): iifname vmap @fwd_from; oifname vmap @fwd_to
//! from-<br>: ct status dnat return; oifname != <br> oifname @bridges drop
//!            (internal: oifname != <br> drop)
//! to-<br>:   internal only: iifname != <br> drop
//! masq-<br>: ip saddr <subnet> oifname != <br> masquerade (not internal)
//! hair-<br>: ct status dnat ip saddr <subnet> masquerade (same-bridge DNAT)
//! ctr-<id>:  [ip daddr <host ip>] meta l4proto <p> th dport <hp> dnat to <ip>:<cp>
//! ```
//!
//! The table lives in the namespace the firewall was opened for; `nft`
//! is spawned from a thread inside it. The JSON is built with serde_json:
//! the `nftables` crate wraps the same `nft -j` call in typed structs, at
//! the cost of schemars and strum, for the dozen statements used here.
//!
//! A base chain's `accept` does not override another table's `drop`: on a
//! host whose own forward policy drops (firewalld, Docker's iptables),
//! container traffic also needs accepting there.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::error::{NetworkError, Result};
use crate::ipam::Ipv4Net;
use crate::netns::NetNs;
use crate::ports::{PortMapping, Protocol};

const TABLE: &str = "berth";

/// The nftables side of berth's networking, for one namespace.
#[derive(Debug, Clone)]
pub struct Firewall {
    netns: NetNs,
}

fn obj(kind: &str, mut body: Value) -> Value {
    body["family"] = json!("ip");
    body["table"] = json!(TABLE);
    json!({ kind: body })
}

fn chain(name: &str) -> Value {
    obj("chain", json!({ "name": name }))
}

fn base_chain(name: &str, kind: &str, hook: &str, prio: i32) -> Value {
    obj(
        "chain",
        json!({ "name": name, "type": kind, "hook": hook, "prio": prio, "policy": "accept" }),
    )
}

fn rule(chain: &str, expr: Vec<Value>) -> Value {
    json!({ "add": obj("rule", json!({ "chain": chain, "expr": expr })) })
}

fn matches(op: &str, left: Value, right: Value) -> Value {
    json!({ "match": { "op": op, "left": left, "right": right } })
}

fn meta(key: &str) -> Value {
    json!({ "meta": { "key": key } })
}

fn payload(protocol: &str, field: &str) -> Value {
    json!({ "payload": { "protocol": protocol, "field": field } })
}

fn jump(target: &str) -> Value {
    json!({ "jump": { "target": target } })
}

fn element(set: &str, elem: Value) -> Value {
    obj("element", json!({ "name": set, "elem": [elem] }))
}

fn port_key(proto: Protocol, port: u16) -> Value {
    json!({ "concat": [proto.as_str(), port] })
}

/// The chain holding container `id`'s DNAT rules (names are short ids).
fn container_chain(id: &str) -> String {
    let short: String = id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(24)
        .collect();
    format!("ctr-{short}")
}

/// The verdict maps dispatching to a network's chains, in the order of
/// [`network_chains`].
const NETWORK_MAPS: [&str; 4] = ["fwd_from", "fwd_to", "masq_from", "masq_to"];

fn network_chains(bridge: &str) -> [String; 4] {
    ["from", "to", "masq", "hair"].map(|kind| format!("{kind}-{bridge}"))
}

/// A network as the firewall sees it.
#[derive(Debug, Clone)]
pub struct NetworkRules {
    /// The bridge interface.
    pub bridge: String,
    /// The network's subnet.
    pub subnet: Ipv4Net,
    /// `--internal`: no traffic in or out of the bridge.
    pub internal: bool,
}

impl Firewall {
    /// A firewall acting in `netns` (the daemon passes [`NetNs::current`]).
    pub fn new(netns: NetNs) -> Self {
        Self { netns }
    }

    /// Deletes the whole `berth` table: crash cleanup at daemon start, and
    /// the last step of a clean shutdown. Absent table is fine.
    pub fn reset(&self) -> Result<()> {
        let table = json!({ "table": { "family": "ip", "name": TABLE } });
        self.apply(
            "reset",
            vec![json!({ "add": table }), json!({ "delete": table })],
        )
    }

    /// Creates the table, sets, maps and base chains (idempotent).
    pub fn init(&self) -> Result<()> {
        let ifname_map = |name: &str| {
            obj(
                "map",
                json!({ "name": name, "type": "ifname", "map": "verdict" }),
            )
        };
        let dispatch_ports = || {
            vec![
                matches(
                    "==",
                    json!({ "fib": { "result": "type", "flags": ["daddr"] } }),
                    json!("local"),
                ),
                json!({ "vmap": {
                    "key": { "concat": [meta("l4proto"), payload("th", "dport")] },
                    "data": "@ports",
                } }),
            ]
        };
        let batch = vec![
            json!({ "add": { "table": { "family": "ip", "name": TABLE } } }),
            json!({ "add": obj("set", json!({ "name": "bridges", "type": "ifname" })) }),
            json!({ "add": ifname_map("fwd_from") }),
            json!({ "add": ifname_map("fwd_to") }),
            json!({ "add": ifname_map("masq_from") }),
            json!({ "add": ifname_map("masq_to") }),
            json!({ "add": obj("map", json!({
                "name": "ports", "type": ["inet_proto", "inet_service"], "map": "verdict",
            })) }),
            // Rules are flushed and re-added so `init` can run on an existing table.
            json!({ "add": base_chain("prerouting", "nat", "prerouting", -100) }),
            json!({ "add": base_chain("output", "nat", "output", -100) }),
            json!({ "add": base_chain("postrouting", "nat", "postrouting", 100) }),
            json!({ "add": base_chain("forward", "filter", "forward", 0) }),
            json!({ "flush": chain("prerouting") }),
            json!({ "flush": chain("output") }),
            json!({ "flush": chain("postrouting") }),
            json!({ "flush": chain("forward") }),
            rule("prerouting", dispatch_ports()),
            rule("output", dispatch_ports()),
            rule(
                "postrouting",
                vec![json!({ "vmap": { "key": meta("iifname"), "data": "@masq_from" } })],
            ),
            rule(
                "postrouting",
                vec![json!({ "vmap": { "key": meta("oifname"), "data": "@masq_to" } })],
            ),
            rule(
                "postrouting",
                vec![
                    matches(
                        "==",
                        payload("ip", "saddr"),
                        json!({ "prefix": { "addr": "127.0.0.0", "len": 8 } }),
                    ),
                    matches("==", meta("oifname"), json!("@bridges")),
                    json!({ "masquerade": null }),
                ],
            ),
            rule(
                "forward",
                vec![json!({ "vmap": { "key": meta("iifname"), "data": "@fwd_from" } })],
            ),
            rule(
                "forward",
                vec![json!({ "vmap": { "key": meta("oifname"), "data": "@fwd_to" } })],
            ),
        ];
        self.apply("init", batch)
    }

    /// Adds a network's isolation and masquerade rules in one batch.
    pub fn add_network(&self, net: &NetworkRules) -> Result<()> {
        let br = net.bridge.as_str();
        let [from, to, masq, hair] = network_chains(br);
        let dnat = || matches("in", json!({ "ct": { "key": "status" } }), json!("dnat"));
        let subnet = || {
            let prefix = json!({ "prefix": {
                "addr": net.subnet.network().to_string(),
                "len": net.subnet.prefix(),
            } });
            matches("==", payload("ip", "saddr"), prefix)
        };
        let drop = || json!({ "drop": null });
        let masquerade = || json!({ "masquerade": null });
        let mut batch: Vec<Value> = [&from, &to, &masq, &hair]
            .iter()
            .map(|c| json!({ "add": chain(c) }))
            .collect();
        // Published ports are open to every network.
        batch.push(rule(&from, vec![dnat(), json!({ "return": null })]));
        // Hairpin and container-to-published-port on the same bridge: the
        // reply must come back through the host. Matched by output
        // interface, since br_netfilter gives bridged packets no input one.
        batch.push(rule(&hair, vec![dnat(), subnet(), masquerade()]));
        if net.internal {
            batch.push(rule(
                &from,
                vec![matches("!=", meta("oifname"), json!(br)), drop()],
            ));
            batch.push(rule(
                &to,
                vec![matches("!=", meta("iifname"), json!(br)), drop()],
            ));
        } else {
            batch.push(rule(
                &from,
                vec![
                    matches("!=", meta("oifname"), json!(br)),
                    matches("==", meta("oifname"), json!("@bridges")),
                    drop(),
                ],
            ));
            batch.push(rule(
                &masq,
                vec![
                    subnet(),
                    matches("!=", meta("oifname"), json!(br)),
                    masquerade(),
                ],
            ));
        }
        batch.push(json!({ "add": element("bridges", json!(br)) }));
        for (map, chain_name) in NETWORK_MAPS.iter().zip([&from, &to, &masq, &hair]) {
            batch.push(json!({ "add": element(map, json!([br, jump(chain_name)])) }));
        }
        self.apply("add network", batch)
    }

    /// Removes a network's rules (map elements first, then its chains).
    pub fn remove_network(&self, bridge: &str) -> Result<()> {
        let chains = network_chains(bridge);
        let mut batch = Vec::new();
        // `add` before `delete` makes the batch succeed when parts are missing.
        for (map, chain_name) in NETWORK_MAPS.iter().zip(&chains) {
            batch.push(json!({ "add": chain(chain_name) }));
            batch.push(json!({ "add": element(map, json!([bridge, jump(chain_name)])) }));
            batch.push(json!({ "delete": element(map, json!(bridge)) }));
        }
        batch.push(json!({ "add": element("bridges", json!(bridge)) }));
        batch.push(json!({ "delete": element("bridges", json!(bridge)) }));
        for c in &chains {
            batch.push(json!({ "flush": chain(c) }));
            batch.push(json!({ "delete": chain(c) }));
        }
        self.apply("remove network", batch)
    }

    /// Adds DNAT rules for container `id`'s published ports. Fails, and
    /// changes nothing, when one of the host ports is already published.
    pub fn publish(&self, id: &str, container_ip: Ipv4Addr, ports: &[PortMapping]) -> Result<()> {
        if ports.is_empty() {
            return Ok(());
        }
        let name = container_chain(id);
        let mut batch = vec![json!({ "add": chain(&name) })];
        let mut keys = Vec::new();
        for p in ports {
            let mut expr = Vec::new();
            if !p.host_ip.is_unspecified() {
                expr.push(matches(
                    "==",
                    payload("ip", "daddr"),
                    json!(p.host_ip.to_string()),
                ));
            }
            expr.push(matches("==", meta("l4proto"), json!(p.protocol.as_str())));
            expr.push(matches("==", payload("th", "dport"), json!(p.host_port)));
            expr.push(
                json!({ "dnat": { "addr": container_ip.to_string(), "port": p.container_port } }),
            );
            batch.push(rule(&name, expr));
            if !keys.contains(&(p.protocol, p.host_port)) {
                keys.push((p.protocol, p.host_port));
            }
        }
        for (proto, port) in keys {
            // `create` (unlike `add`) fails on an existing element: two
            // containers cannot take one host port.
            batch.push(
                json!({ "create": element("ports", json!([port_key(proto, port), jump(&name)])) }),
            );
        }
        self.apply("publish", batch).map_err(|e| match (e, ports.first()) {
            (NetworkError::Nft { message, .. }, Some(p)) if message.contains("File exists") => {
                NetworkError::PortInUse {
                    host_ip: p.host_ip.into(),
                    port: p.host_port,
                    proto: p.protocol.as_str(),
                    reason: "a host port of this container is already published by another container"
                        .to_owned(),
                }
            }
            (e, _) => e,
        })
    }

    /// Removes container `id`'s published ports (a no-op when it has none).
    pub fn unpublish(&self, id: &str, ports: &[PortMapping]) -> Result<()> {
        let name = container_chain(id);
        let mut batch = vec![json!({ "add": chain(&name) })];
        let mut keys = Vec::new();
        for p in ports {
            if !keys.contains(&(p.protocol, p.host_port)) {
                keys.push((p.protocol, p.host_port));
            }
        }
        for (proto, port) in keys {
            batch.push(
                json!({ "add": element("ports", json!([port_key(proto, port), jump(&name)])) }),
            );
            batch.push(json!({ "delete": element("ports", port_key(proto, port)) }));
        }
        batch.push(json!({ "flush": chain(&name) }));
        batch.push(json!({ "delete": chain(&name) }));
        self.apply("unpublish", batch)
    }

    /// Names of the nftables tables in the namespace (`family name`).
    pub fn list_tables(&self) -> Result<Vec<String>> {
        let out = self.run_nft("list tables", &["-j", "list", "tables"], None)?;
        let value: Value = serde_json::from_slice(&out).map_err(|e| NetworkError::Nft {
            op: "list tables",
            message: e.to_string(),
        })?;
        let mut tables = Vec::new();
        for item in value["nftables"].as_array().into_iter().flatten() {
            if let Some(t) = item.get("table") {
                tables.push(format!(
                    "{} {}",
                    t["family"].as_str().unwrap_or("?"),
                    t["name"].as_str().unwrap_or("?")
                ));
            }
        }
        Ok(tables)
    }

    /// The table as `nft list` prints it (for logs and debugging).
    pub fn ruleset(&self) -> Result<String> {
        let out = self.run_nft("list table", &["list", "table", "ip", TABLE], None)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    fn apply(&self, op: &'static str, batch: Vec<Value>) -> Result<()> {
        let input = serde_json::to_vec(&json!({ "nftables": batch })).expect("json serialises");
        self.run_nft(op, &["-j", "-f", "-"], Some(&input))
            .map(|_| ())
    }

    fn run_nft(&self, op: &'static str, args: &[&str], input: Option<&[u8]>) -> Result<Vec<u8>> {
        let output = self
            .netns
            .run(|| -> std::io::Result<std::process::Output> {
                let mut child = Command::new("nft")
                    .args(args)
                    .stdin(if input.is_some() {
                        Stdio::piped()
                    } else {
                        Stdio::null()
                    })
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()?;
                if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
                    stdin.write_all(input)?;
                }
                child.wait_with_output()
            })?;
        let output = output.map_err(|e| NetworkError::Nft {
            op,
            message: format!("running nft: {e}"),
        })?;
        if !output.status.success() {
            let message = String::from_utf8_lossy(&output.stderr).trim().to_owned();
            return Err(NetworkError::Nft { op, message });
        }
        Ok(output.stdout)
    }
}

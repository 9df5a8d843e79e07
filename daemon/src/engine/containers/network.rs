//! A container's network through its life: the namespace, endpoints and
//! files at start ([`ContainerStore::prepare_network`]), their removal at
//! exit, their rebuild after a daemon restart, published ports from
//! `HostConfig`, and `network connect`/`disconnect`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use berth_network::{DnsMode, DnsOverrides, PortSpec, Protocol};

use super::{Container, ContainerError, ContainerStore, Record, Status, io_err, lock};
use crate::api::containers_types::{ContainerConfig, HostConfig};
use crate::engine::Engine;
use crate::engine::networks::{
    Attachment, ContainerNames, DEFAULT_NETWORK, EndpointState, FilesInput, NetError, write_files,
};
use crate::engine::spec::NetworkFiles;
use crate::log;

/// What the spec needs from the network set up for a start.
#[derive(Debug, Default)]
pub(crate) struct PreparedNetwork {
    pub(crate) files: NetworkFiles,
    /// A namespace to join (own bridge namespace or `container:<id>`'s).
    pub(crate) netns_path: Option<PathBuf>,
    /// A spare namespace that `netns_path` names only while berthd holds
    /// it: kept until the runtime has joined it.
    pub(crate) held: Option<berth_network::NetNs>,
    /// A prelaunch's endpoints: not in the record and not announced until
    /// the start takes them ([`ContainerStore::adopt_endpoints`]).
    pub(crate) unannounced: Option<Vec<(String, Attachment)>>,
}

fn invalid(text: String) -> ContainerError {
    ContainerError::InvalidConfig(text)
}

/// `80/tcp` (or `80`) to port and protocol.
fn parse_port_key(key: &str) -> Result<(u16, Protocol), ContainerError> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let protocol = match proto {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        other => return Err(invalid(format!("invalid proto: {other}"))),
    };
    if port.contains('-') {
        // The docker CLI sends each port of `-p 80-82` on its own.
        return Err(invalid(format!(
            "invalid port specification {key:?}: a container port range names several ports: publish each one"
        )));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok((p, protocol)),
        _ => Err(invalid(format!("invalid port: {key}"))),
    }
}

/// The ports to publish: `PortBindings` (whose host port may be a range
/// to pick a free port from), plus every exposed port with a random host
/// port for `PublishAllPorts`. IPv6 host addresses are skipped (berth
/// networks are IPv4). Also checks a create's bindings.
pub(crate) fn port_specs(
    config: &ContainerConfig,
    host_config: &HostConfig,
) -> Result<Vec<PortSpec>, ContainerError> {
    let mut specs = Vec::new();
    let bindings = host_config.port_bindings.clone().unwrap_or_default();
    for (key, list) in &bindings {
        let (container_port, protocol) = parse_port_key(key)?;
        let list = list.clone().unwrap_or_default();
        let list = if list.is_empty() {
            vec![Default::default()]
        } else {
            list
        };
        for binding in list {
            let (host_port, host_port_last) = berth_network::parse_host_ports(&binding.host_port)
                .map_err(|e| invalid(e.to_string()))?;
            let host_ip = match binding.host_ip.as_str() {
                "" => Ipv4Addr::UNSPECIFIED,
                text if text.contains(':') => continue,
                text => text
                    .parse()
                    .map_err(|_| invalid(format!("invalid host IP address: {text}")))?,
            };
            specs.push(PortSpec {
                host_ip,
                host_port,
                host_port_last,
                container_port,
                protocol,
            });
        }
    }
    if host_config.publish_all_ports {
        for key in config.exposed_ports.iter().flat_map(|p| p.keys()) {
            if bindings.contains_key(key) {
                continue;
            }
            let (container_port, protocol) = parse_port_key(key)?;
            specs.push(PortSpec {
                host_ip: Ipv4Addr::UNSPECIFIED,
                host_port: 0,
                host_port_last: None,
                container_port,
                protocol,
            });
        }
    }
    Ok(specs)
}

fn dns_overrides(record: &Record) -> Result<DnsOverrides, ContainerError> {
    let host = &record.host_config;
    let servers = host
        .dns
        .iter()
        .flatten()
        .map(|s| {
            s.parse::<IpAddr>()
                .map_err(|_| invalid(format!("{s} is not an ip address")))
        })
        .collect::<Result<_, _>>()?;
    Ok(DnsOverrides {
        servers,
        search: host.dns_search.clone().unwrap_or_default(),
        options: host.dns_options.clone().unwrap_or_default(),
    })
}

fn bare_name(record: &Record) -> &str {
    record.name.trim_start_matches('/')
}

impl ContainerStore {
    /// Before a start: the container's network as its mode asks, its
    /// endpoints saved in the record at once (so an interrupted start is
    /// cleaned up like an exit). For a prelaunch (`early`) the endpoints
    /// are returned instead, and their events wait for the start.
    pub(crate) fn prepare_network(
        &self,
        container: &Container,
        record: &Record,
        early: bool,
    ) -> Result<PreparedNetwork, ContainerError> {
        let mode = record.host_config.network_mode.as_str();
        if mode == "host" {
            return Ok(PreparedNetwork::default());
        }
        if let Some(other) = mode.strip_prefix("container:") {
            return self.join_network_of(other);
        }
        if record.networks.is_empty() {
            let files = self.write_network_files(record, &[])?;
            // `none` can never be connected to a network: a spare made
            // ahead (lo up), or else the runtime makes its namespace (and
            // sets `lo` up) as part of the clone. Without a default network
            // a container can be connected later, which needs a namespace
            // that outlives nothing but the container: a mounted one.
            if mode == "none" {
                let held = self.networks.take_loopback_spare();
                return Ok(PreparedNetwork {
                    files,
                    netns_path: held.as_ref().map(|ns| ns.fd_path()),
                    held,
                    unannounced: None,
                });
            }
            let netns_path = Some(self.networks.loopback_netns(&record.id)?);
            return Ok(PreparedNetwork {
                files,
                netns_path,
                ..PreparedNetwork::default()
            });
        }
        let overrides = dns_overrides(record)?;
        let ports = port_specs(&record.config, &record.host_config)?;
        let mut attachments = record.networks.clone();
        let who = ContainerNames {
            id: &record.id,
            name: bare_name(record),
        };
        let setup =
            self.networks
                .connect_container(&who, &mut attachments, &ports, &overrides, !early)?;
        let files = self.write_network_files(record, &attachments);
        if early {
            return match files {
                Ok(files) => Ok(PreparedNetwork {
                    files,
                    netns_path: Some(setup.netns_path),
                    held: None,
                    unannounced: Some(attachments),
                }),
                Err(err) => {
                    self.networks
                        .disconnect_container(&record.id, &mut attachments, false);
                    Err(err)
                }
            };
        }
        // Not fsynced: the start's record write, fsynced, follows at once
        // with the endpoints in it. A daemon crash in between keeps this
        // one (page cache); a machine crash takes the namespace along and
        // the restart releases the addresses of what is not running.
        self.update_with(container, false, |r| r.networks = attachments.clone())?;
        Ok(PreparedNetwork {
            files: files?,
            netns_path: Some(setup.netns_path),
            ..PreparedNetwork::default()
        })
    }

    /// The start of a prelaunched container takes its endpoints: into the
    /// record (persisted by the start's own write, which follows at once)
    /// and announced.
    pub(crate) fn adopt_endpoints(
        &self,
        container: &Container,
        attachments: Vec<(String, Attachment)>,
    ) {
        self.networks
            .announce_connected(&container.id, &attachments);
        lock(&container.record).networks = attachments;
    }

    /// `hostname`, `hosts` (the first connected network's address and
    /// aliases) and `resolv.conf` (the embedded DNS once a user network
    /// is connected), rewritten in place when networks change.
    fn write_network_files(
        &self,
        record: &Record,
        attachments: &[(String, Attachment)],
    ) -> Result<NetworkFiles, ContainerError> {
        let overrides = dns_overrides(record)?;
        let primary = attachments.iter().find(|(_, a)| a.endpoint.is_some());
        let endpoint = primary.and_then(|(_, a)| a.endpoint.as_ref());
        let user_network = attachments
            .iter()
            .any(|(n, a)| n != DEFAULT_NETWORK && a.endpoint.is_some());
        let dir = self.run_dir(&record.id);
        std::fs::create_dir_all(&dir).map_err(io_err("creating directory", &dir))?;
        Ok(write_files(&FilesInput {
            dir: &dir,
            hostname: &record.config.hostname,
            address: endpoint.map(|e| e.address),
            aliases: primary.map_or(&[][..], |(_, a)| a.aliases.as_slice()),
            extra_hosts: record
                .host_config
                .extra_hosts
                .as_deref()
                .unwrap_or_default(),
            gateway: endpoint.and_then(|e| e.gateway),
            dns_mode: if user_network {
                DnsMode::Embedded
            } else {
                DnsMode::Host
            },
            overrides: &overrides,
        })?)
    }

    /// `container:<name|id>`: the other (running) container's namespace
    /// and files.
    fn join_network_of(&self, reference: &str) -> Result<PreparedNetwork, ContainerError> {
        let other = self.get(reference)?.record();
        if !other.state.status.is_running() || other.state.pid <= 0 {
            return Err(invalid(format!(
                "cannot join network namespace of a non running container: {}",
                other.id
            )));
        }
        let netns_path = if other.networks.iter().any(|(_, a)| a.endpoint.is_some()) {
            self.networks.netns_path(&other.id)
        } else {
            PathBuf::from(format!("/proc/{}/ns/net", other.state.pid))
        };
        let dir = self.run_dir(&other.id);
        let file = |name: &str| Some(dir.join(name)).filter(|p| p.exists());
        Ok(PreparedNetwork {
            files: NetworkFiles {
                hostname: file("hostname"),
                hosts: file("hosts"),
                resolv_conf: file("resolv.conf"),
            },
            netns_path: Some(netns_path),
            ..PreparedNetwork::default()
        })
    }

    /// After an exit or a failed start: endpoints, ports and namespace go.
    pub(crate) fn release_network(&self, container: &Container) {
        let record = container.record();
        if !record.networks.iter().any(|(_, a)| a.endpoint.is_some())
            && !self.networks.netns_path(&record.id).exists()
        {
            return;
        }
        let mut attachments = record.networks.clone();
        self.networks
            .disconnect_container(&record.id, &mut attachments, true);
        if record.state.status == Status::Removing {
            // The record is about to go; a restart after a crash finishes
            // the removal, so there is nothing to persist.
            lock(&container.record).networks = attachments;
            return;
        }
        if let Err(err) = self.update(container, |r| r.networks = attachments.clone()) {
            log::warning!("recording the network removal of {}: {err}", record.id);
        }
    }

    /// Live restore of a running container's network.
    pub(crate) fn restore_network(&self, record: &Record) {
        if !record.networks.iter().any(|(_, a)| a.endpoint.is_some()) {
            return;
        }
        let who = ContainerNames {
            id: &record.id,
            name: bare_name(record),
        };
        let overrides = dns_overrides(record).unwrap_or_default();
        if let Err(err) = self
            .networks
            .restore_container(&who, &record.networks, &overrides)
        {
            log::warning!("restoring the network of container {}: {err}", record.id);
        }
    }
}

impl ContainerStore {
    /// After a rename of a running container: its new name in the DNS.
    pub(crate) fn rename_network_names(&self, record: &Record) {
        let who = ContainerNames {
            id: &record.id,
            name: bare_name(record),
        };
        self.networks.refresh_names(&who, &record.networks);
    }
}

impl From<NetError> for ContainerError {
    fn from(err: NetError) -> Self {
        ContainerError::Network(Box::new(err))
    }
}

/// A container on a network, for `network inspect`.
#[derive(Debug, Clone)]
pub(crate) struct NetworkMember {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) endpoint: EndpointState,
}

impl Engine {
    /// Running containers with an endpoint on `network`.
    pub(crate) fn network_members(&self, network: &str) -> Vec<NetworkMember> {
        let mut out: Vec<NetworkMember> = self
            .containers
            .all()
            .into_iter()
            .filter_map(|c| {
                let record = c.record();
                let endpoint = record
                    .networks
                    .iter()
                    .find(|(name, _)| name == network)
                    .and_then(|(_, a)| a.endpoint.clone())?;
                Some(NetworkMember {
                    id: record.id.clone(),
                    name: bare_name(&record).to_owned(),
                    endpoint,
                })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// `POST /networks/{id}/connect`.
    pub(crate) async fn network_connect(
        &self,
        network: &str,
        container: &str,
        endpoint_config: Option<serde_json::Value>,
    ) -> Result<(), ContainerError> {
        let container = self.containers.get(container)?;
        let network = network.to_owned();
        self.containers_blocking("connect", move |store| {
            let _op = lock(&container.op);
            let record = container.record();
            let mode = record.host_config.network_mode.as_str();
            if mode == "host" || mode == "none" || mode.starts_with("container:") {
                return Err(NetError::NoOwnNamespace.into());
            }
            let mut configs = std::collections::BTreeMap::new();
            let view = store.networks.find(&network)?;
            configs.insert(view.meta.name.clone(), endpoint_config);
            let mut new = store
                .networks
                .attachments_for(&view.meta.name, Some(&configs))?;
            let (name, mut attachment) = new.pop().ok_or_else(|| {
                ContainerError::from(NetError::Invalid(format!(
                    "network {network} cannot take containers"
                )))
            })?;
            if record.networks.iter().any(|(n, _)| *n == name) {
                return Err(NetError::AlreadyConnected {
                    container: bare_name(&record).to_owned(),
                    network: name,
                }
                .into());
            }
            let running = record.state.status.is_running();
            // A prelaunch was made for the networks the container had.
            store.drop_prelaunch(&container);
            if running {
                let who = ContainerNames {
                    id: &record.id,
                    name: bare_name(&record),
                };
                store
                    .networks
                    .connect_running(&who, &record.networks, &name, &mut attachment)?;
            }
            let entry = (name, attachment);
            let record = store.update(&container, |r| r.networks.push(entry.clone()))?;
            if running && let Err(err) = store.write_network_files(&record, &record.networks) {
                log::warning!("rewriting the network files of {}: {err}", record.id);
            }
            store
                .networks
                .publish_connect("connect", &view.meta, &record.id);
            Ok(())
        })
        .await
    }

    /// `POST /networks/{id}/disconnect`.
    pub(crate) async fn network_disconnect(
        &self,
        network: &str,
        container: &str,
    ) -> Result<(), ContainerError> {
        let container = self.containers.get(container)?;
        let network = network.to_owned();
        self.containers_blocking("disconnect", move |store| {
            let _op = lock(&container.op);
            let record = container.record();
            let view = store.networks.find(&network)?;
            let name = view.meta.name.clone();
            let Some(index) = record.networks.iter().position(|(n, _)| *n == name) else {
                return Err(NetError::NotConnected {
                    container: bare_name(&record).to_owned(),
                    network: name,
                }
                .into());
            };
            let mut remaining = record.networks.clone();
            let (_, mut attachment) = remaining.remove(index);
            store.drop_prelaunch(&container);
            if record.state.status.is_running() {
                store.networks.disconnect_running(
                    &record.id,
                    &remaining,
                    &name,
                    &mut attachment,
                )?;
            }
            let record = store.update(&container, |r| r.networks = remaining.clone())?;
            if record.state.status.is_running()
                && let Err(err) = store.write_network_files(&record, &record.networks)
            {
                log::warning!("rewriting the network files of {}: {err}", record.id);
            }
            store
                .networks
                .publish_connect("disconnect", &view.meta, &record.id);
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(host_config: serde_json::Value, exposed: serde_json::Value) -> Record {
        serde_json::from_value(serde_json::json!({
            "id": "c0ffee", "name": "/web", "created": 0, "path": "sh", "args": [],
            "config": { "ExposedPorts": exposed },
            "host_config": host_config,
            "image_id": "sha256:1",
            "state": { "status": "created", "pid": 0, "exit_code": 0, "error": "",
                       "started_at": null, "finished_at": null },
        }))
        .unwrap()
    }

    #[test]
    fn port_bindings_and_publish_all_become_specs() {
        let r = record(
            serde_json::json!({
                "PortBindings": {
                    "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"},
                               {"HostIp": "::", "HostPort": "8080"}],
                    "53/udp": [{"HostIp": "", "HostPort": ""}],
                    "81/tcp": [{"HostIp": "", "HostPort": "8000-8010"}],
                    "9000": null,
                },
                "PublishAllPorts": true,
            }),
            serde_json::json!({"80/tcp": {}, "443/tcp": {}}),
        );
        let specs = port_specs(&r.config, &r.host_config).unwrap();
        let view: Vec<(String, u16, Option<u16>, u16, Protocol)> = specs
            .iter()
            .map(|s| {
                (
                    s.host_ip.to_string(),
                    s.host_port,
                    s.host_port_last,
                    s.container_port,
                    s.protocol,
                )
            })
            .collect();
        let any = "0.0.0.0".to_owned();
        assert_eq!(
            view,
            [
                (any.clone(), 0, None, 53, Protocol::Udp),
                ("127.0.0.1".to_owned(), 8080, None, 80, Protocol::Tcp),
                (any.clone(), 8000, Some(8010), 81, Protocol::Tcp),
                (any.clone(), 0, None, 9000, Protocol::Tcp),
                (any, 0, None, 443, Protocol::Tcp),
            ]
        );
    }

    #[test]
    fn bad_ports_are_named_in_the_error() {
        for (key, host_port, needle) in [
            ("80-90/tcp", "", "80-90/tcp"),
            ("80/sctp", "", "sctp"),
            ("0/tcp", "", "0/tcp"),
            ("80/tcp", "70000", "70000"),
            (
                "80/tcp",
                "8010-8000",
                "\"8010-8000\": the range ends before it starts",
            ),
            ("80/tcp", "0-5", "\"0-5\""),
            ("80/tcp", "8000-70000", "8000-70000"),
        ] {
            let r = record(
                serde_json::json!({"PortBindings": {key: [{"HostIp": "", "HostPort": host_port}]}}),
                serde_json::Value::Null,
            );
            let err = port_specs(&r.config, &r.host_config)
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{key} {host_port}: {err}");
        }
    }
}

//! Containers on networks: the namespace and endpoints made at start,
//! removed at exit, rebuilt after a daemon restart, and `network
//! connect`/`disconnect` of a running container; plus the container's
//! `hostname`, `hosts` and `resolv.conf`.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_network::{
    DnsMode, DnsOverrides, EmbeddedDns, Endpoint, Ipv4Net, NetNs, PortMapping, PortSpec,
    ResolvConf, container_resolv_conf, host_resolv_conf_path, hostname_file, hosts_file,
};
use serde::{Deserialize, Serialize};

use super::{DEFAULT_NETWORK, Live, NetError, Networks, Refill, io_err, lock, random_hex};
use crate::engine::spec::NetworkFiles;
use crate::log;

/// A container's membership of one network, kept in its record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Attachment {
    pub(crate) network_id: String,
    #[serde(default)]
    pub(crate) aliases: Vec<String>,
    /// `--ip`.
    #[serde(default)]
    pub(crate) ipv4: Option<Ipv4Addr>,
    /// Present while the container runs.
    #[serde(default)]
    pub(crate) endpoint: Option<EndpointState>,
}

/// A live endpoint, persisted so a restarted berthd can rebuild it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct EndpointState {
    pub(crate) endpoint_id: String,
    pub(crate) address: Ipv4Addr,
    pub(crate) subnet: Ipv4Net,
    /// Absent on internal networks.
    pub(crate) gateway: Option<Ipv4Addr>,
    pub(crate) host_veth: String,
    pub(crate) interface: String,
    #[serde(default)]
    pub(crate) ports: Vec<PortMapping>,
}

impl EndpointState {
    fn of(endpoint: &Endpoint) -> EndpointState {
        EndpointState {
            endpoint_id: random_hex(),
            address: endpoint.address,
            subnet: endpoint.subnet,
            gateway: endpoint.gateway,
            host_veth: endpoint.host_veth.clone(),
            interface: endpoint.interface.clone(),
            ports: endpoint.ports.mappings().to_vec(),
        }
    }

    /// The endpoint without its port sockets (enough to remove it).
    fn endpoint(&self, network: &str, container_id: &str) -> Endpoint {
        Endpoint {
            network: network.to_owned(),
            container_id: container_id.to_owned(),
            address: self.address,
            subnet: self.subnet,
            gateway: self.gateway,
            host_veth: self.host_veth.clone(),
            interface: self.interface.clone(),
            ports: berth_network::PortReservation::default(),
        }
    }
}

/// Who a container is on its networks (names in the embedded DNS).
#[derive(Debug, Clone)]
pub(crate) struct ContainerNames<'a> {
    pub(crate) id: &'a str,
    /// Without the leading `/`.
    pub(crate) name: &'a str,
}

impl ContainerNames<'_> {
    fn dns_names(&self, aliases: &[String]) -> Vec<String> {
        let mut names = vec![
            self.name.to_owned(),
            self.id[..12.min(self.id.len())].to_owned(),
        ];
        names.extend(aliases.iter().cloned());
        names
    }
}

/// What a start with its own network namespace produced.
#[derive(Debug, Clone)]
pub(crate) struct NetworkSetup {
    /// The bind-mounted namespace for the spec to join.
    pub(crate) netns_path: PathBuf,
}

/// The upstream resolvers for the embedded DNS: `--dns`, else the host's.
fn upstream_resolvers(overrides: &DnsOverrides) -> Vec<SocketAddr> {
    let servers = if overrides.servers.is_empty() {
        let text = std::fs::read_to_string(host_resolv_conf_path()).unwrap_or_default();
        ResolvConf::parse(&text).nameservers
    } else {
        overrides.servers.clone()
    };
    servers
        .into_iter()
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

impl Networks {
    fn ns_path(&self, id: &str) -> PathBuf {
        self.netns_path(id)
    }

    /// Start of a container on `attachments` (in order; the first is
    /// `eth0` and carries the published ports): its namespace, endpoints,
    /// DNS names and embedded DNS server. Undone completely on failure.
    /// The namespace and `eth0` come from the pool when it has a spare
    /// for the first network. `announce`: publish the `connect` events
    /// now (a prelaunch publishes them at the start, with
    /// [`Self::announce_connected`]).
    pub(crate) fn connect_container(
        &self,
        who: &ContainerNames<'_>,
        attachments: &mut [(String, Attachment)],
        ports: &[PortSpec],
        overrides: &DnsOverrides,
        announce: bool,
    ) -> Result<NetworkSetup, NetError> {
        let net = self.networking()?;
        net.remove_netns(who.id)?;
        let spare = attachments
            .first()
            .and_then(|(network, _)| net.take_spare(network));
        if self.pool_size > 0 {
            self.refill_spares(Refill::Later);
        }
        let netns = match &spare {
            Some(spare) => net.mount_spare(spare, who.id)?,
            None => net.create_netns(who.id)?,
        };
        let made = self.wire_all(who, &netns, attachments, ports, overrides, spare);
        drop(netns);
        match made {
            Ok(()) => {
                if announce {
                    self.announce_connected(who.id, attachments);
                }
                Ok(NetworkSetup {
                    netns_path: self.ns_path(who.id),
                })
            }
            Err(err) => {
                self.disconnect_container(who.id, attachments, false);
                Err(err)
            }
        }
    }

    /// The `connect` events of the endpoints in `attachments`.
    pub(crate) fn announce_connected(&self, id: &str, attachments: &[(String, Attachment)]) {
        for (network, attachment) in attachments {
            if attachment.endpoint.is_some() {
                self.publish_endpoint("connect", network, id);
            }
        }
    }

    fn wire_all(
        &self,
        who: &ContainerNames<'_>,
        netns: &NetNs,
        attachments: &mut [(String, Attachment)],
        ports: &[PortSpec],
        overrides: &DnsOverrides,
        mut spare: Option<berth_network::Spare>,
    ) -> Result<(), NetError> {
        let net = self.networking()?;
        let mut ports_left = ports;
        for (index, (network, attachment)) in attachments.iter_mut().enumerate() {
            let internal = net.network(network)?.is_some_and(|n| n.internal);
            let these = if internal { &[][..] } else { ports_left };
            let endpoint = match spare.take() {
                // The spare is `eth0` of the first network.
                Some(spare) => {
                    self.block(net.connect_spare(spare, who.id, attachment.ipv4, these))?
                }
                None => self.block(net.connect(
                    network,
                    who.id,
                    netns,
                    &format!("eth{index}"),
                    attachment.ipv4,
                    these,
                ))?,
            };
            if !these.is_empty() {
                ports_left = &[];
            }
            attachment.endpoint = Some(EndpointState::of(&endpoint));
            self.register(who, network, attachment, endpoint.address);
            lock(&self.live)
                .entry(who.id.to_owned())
                .or_default()
                .endpoints
                .insert(network.clone(), endpoint);
        }
        let user: Vec<String> = user_networks(attachments);
        if !user.is_empty() {
            self.restart_dns(who.id, netns, user, upstream_resolvers(overrides))?;
        }
        Ok(())
    }

    fn register(
        &self,
        who: &ContainerNames<'_>,
        network: &str,
        attachment: &Attachment,
        address: Ipv4Addr,
    ) {
        if network != DEFAULT_NETWORK {
            let names = who.dns_names(&attachment.aliases);
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            self.dns.register(network, &names, address);
        }
    }

    /// After a rename: the container's DNS names on its user networks.
    pub(crate) fn refresh_names(
        &self,
        who: &ContainerNames<'_>,
        attachments: &[(String, Attachment)],
    ) {
        for (network, attachment) in attachments {
            if let Some(endpoint) = &attachment.endpoint {
                self.register(who, network, attachment, endpoint.address);
            }
        }
    }

    /// (Re)starts the container's embedded DNS server for `networks`. The
    /// old server's socket closes asynchronously, so binding is retried.
    fn restart_dns(
        &self,
        id: &str,
        netns: &NetNs,
        networks: Vec<String>,
        upstream: Vec<SocketAddr>,
    ) -> Result<(), NetError> {
        let old = lock(&self.live).get_mut(id).and_then(|l| l.dns.take());
        let had_old = old.is_some();
        drop(old);
        let host = NetNs::current()?;
        let mut attempt = 0;
        let dns = loop {
            let started = self.block(async {
                EmbeddedDns::start(
                    netns,
                    &host,
                    networks.clone(),
                    self.dns.clone(),
                    upstream.clone(),
                )
            });
            match started {
                Ok(dns) => break dns,
                Err(err) if had_old && attempt < 100 => {
                    attempt += 1;
                    log::debug!("rebinding the embedded DNS of {id}: {err}");
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(err) => return Err(err.into()),
            }
        };
        let mut live = lock(&self.live);
        let entry = live.entry(id.to_owned()).or_default();
        entry.dns = Some(dns);
        entry.upstream = upstream;
        Ok(())
    }

    /// A namespace with only `lo`, up, for a container without a default
    /// network that may be connected to one later: mounted at its path.
    pub(crate) fn loopback_netns(&self, id: &str) -> Result<PathBuf, NetError> {
        let path = self.ns_path(id);
        NetNs::remove(&path)?;
        let netns = NetNs::create(&path)?;
        let up = self.loopback_up(&netns);
        drop(netns);
        if let Err(err) = up {
            let _ = NetNs::remove(&path);
            return Err(err);
        }
        Ok(path)
    }

    fn loopback_up(&self, netns: &NetNs) -> Result<(), NetError> {
        self.block(async {
            let inside = berth_network::Netlink::open(netns).await?;
            match inside.link_index("lo").await? {
                Some(lo) => inside.set_up(lo, "lo").await,
                None => Ok(()),
            }
        })
        .map_err(NetError::from)
    }

    /// A spare namespace with `lo` up for a `--network none` start, if one
    /// is ready. Nothing mounts it: the runtime joins it through
    /// [`NetNs::fd_path`] while the caller holds it, and it goes with the
    /// container's last process. Making one (~0.5 ms) is done after exits
    /// by [`Networks::refill_loopback_spares`], off the start's path.
    pub(crate) fn take_loopback_spare(&self) -> Option<NetNs> {
        lock(&self.loopback_spares).pop()
    }

    /// Makes loopback spares up to the pool size (`--network-pool`).
    pub(crate) fn refill_loopback_spares(&self) {
        while lock(&self.loopback_spares).len() < self.pool_size {
            let made = NetNs::create_unmounted()
                .map_err(NetError::from)
                .and_then(|netns| self.loopback_up(&netns).map(|()| netns));
            match made {
                Ok(netns) => lock(&self.loopback_spares).push(netns),
                Err(err) => {
                    log::warning!("making a spare network namespace: {err}");
                    return;
                }
            }
        }
    }

    /// Exit or removal: endpoints, DNS names and the namespace go; the
    /// attachments keep their configuration. `announce`: publish the
    /// `disconnect` events (not for endpoints never announced).
    pub(crate) fn disconnect_container(
        &self,
        id: &str,
        attachments: &mut [(String, Attachment)],
        announce: bool,
    ) {
        if !attachments.iter().any(|(_, a)| a.endpoint.is_some())
            && !lock(&self.live).contains_key(id)
        {
            // Nothing on a bridge: only the namespace, without opening
            // networking (a `--bridge none` daemon never touches the host's).
            if let Err(err) = NetNs::remove(self.ns_path(id)) {
                log::warning!("removing the network namespace of {id}: {err}");
            }
            return;
        }
        let live = lock(&self.live).remove(id).unwrap_or_default();
        let Live {
            mut endpoints, dns, ..
        } = live;
        // The server's socket holds the namespace: it goes first.
        drop(dns);
        let net = match self.networking() {
            Ok(net) => net,
            Err(err) => {
                log::warning!("removing the network of container {id}: {err}");
                return;
            }
        };
        for (network, attachment) in attachments.iter_mut() {
            let Some(state) = attachment.endpoint.take() else {
                continue;
            };
            if network != DEFAULT_NETWORK {
                self.dns.unregister(network, state.address);
            }
            let endpoint = endpoints
                .remove(network.as_str())
                .unwrap_or_else(|| state.endpoint(network, id));
            if let Err(err) = self.block(net.remove_endpoint(endpoint)) {
                log::warning!("removing endpoint of {id} on {network}: {err}");
            }
            if announce {
                self.publish_endpoint("disconnect", network, id);
            }
        }
        for (network, endpoint) in endpoints {
            if let Err(err) = self.block(net.remove_endpoint(endpoint)) {
                log::warning!("removing endpoint of {id} on {network}: {err}");
            }
        }
        if let Err(err) = net.remove_netns(id) {
            log::warning!("removing the network namespace of {id}: {err}");
        }
    }

    /// After a daemon restart, for a container still running: port
    /// sockets and rules, DNS names and the embedded DNS server again.
    pub(crate) fn restore_container(
        &self,
        who: &ContainerNames<'_>,
        attachments: &[(String, Attachment)],
        overrides: &DnsOverrides,
    ) -> Result<(), NetError> {
        let net = self.networking()?;
        let host = NetNs::current()?;
        for (network, attachment) in attachments {
            let Some(state) = &attachment.endpoint else {
                continue;
            };
            let mut endpoint = state.endpoint(network, who.id);
            if !state.ports.is_empty() {
                // The ports chosen at start (from a range too), again.
                let specs: Vec<PortSpec> = state.ports.iter().map(|&p| p.into()).collect();
                endpoint.ports = berth_network::reserve(&host, &specs)?;
                self.block(net.republish(who.id, state.address, &state.ports))?;
            }
            self.register(who, network, attachment, state.address);
            lock(&self.live)
                .entry(who.id.to_owned())
                .or_default()
                .endpoints
                .insert(network.clone(), endpoint);
        }
        let user = user_networks(attachments);
        if !user.is_empty() {
            let netns = NetNs::open(self.ns_path(who.id))?;
            self.restart_dns(who.id, &netns, user, upstream_resolvers(overrides))?;
        }
        Ok(())
    }

    /// After restore: namespaces and addresses of containers that no
    /// longer run (a crash between exit and cleanup) are released.
    pub(crate) fn reconcile(&self, running: &HashSet<String>) {
        if let Ok(entries) = std::fs::read_dir(&self.netns_dir) {
            for entry in entries.flatten() {
                let id = entry.file_name().to_string_lossy().into_owned();
                if !running.contains(&id)
                    && let Err(err) = NetNs::remove(entry.path())
                {
                    log::warning!("removing stale network namespace {id}: {err}");
                }
            }
        }
        let Some(net) = self.opened() else {
            return;
        };
        for info in net.networks().unwrap_or_default() {
            let dir = self.state_dir.join("ipam");
            match berth_network::Ipam::open(&dir, &info.name, info.subnet, info.gateway) {
                Ok(mut ipam) => {
                    let stale: Vec<String> = ipam
                        .allocations()
                        .filter(|(_, owner)| !running.contains(*owner))
                        .map(|(_, owner)| owner.to_owned())
                        .collect();
                    for owner in stale {
                        if let Err(err) = ipam.release_owner(&owner) {
                            log::warning!("releasing addresses of {owner}: {err}");
                        }
                    }
                }
                Err(err) => log::warning!("reading addresses of network {}: {err}", info.name),
            }
        }
    }

    /// `network connect` of a running container: one more interface.
    pub(crate) fn connect_running(
        &self,
        who: &ContainerNames<'_>,
        attachments: &[(String, Attachment)],
        network: &str,
        attachment: &mut Attachment,
    ) -> Result<(), NetError> {
        let path = self.ns_path(who.id);
        if !path.exists() {
            return Err(NetError::NoOwnNamespace);
        }
        let net = self.networking()?;
        let netns = NetNs::open(&path)?;
        let used: HashSet<String> = attachments
            .iter()
            .filter_map(|(_, a)| a.endpoint.as_ref().map(|e| e.interface.clone()))
            .collect();
        let interface = (0..)
            .map(|i| format!("eth{i}"))
            .find(|name| !used.contains(name))
            .expect("a free interface name");
        let endpoint =
            self.block(net.connect(network, who.id, &netns, &interface, attachment.ipv4, &[]))?;
        attachment.endpoint = Some(EndpointState::of(&endpoint));
        self.register(who, network, attachment, endpoint.address);
        let upstream = {
            let mut live = lock(&self.live);
            let entry = live.entry(who.id.to_owned()).or_default();
            entry.endpoints.insert(network.to_owned(), endpoint);
            entry.upstream.clone()
        };
        let mut all: Vec<(String, Attachment)> = attachments.to_vec();
        all.push((network.to_owned(), attachment.clone()));
        let user = user_networks(&all);
        if !user.is_empty() {
            let upstream = if upstream.is_empty() {
                upstream_resolvers(&DnsOverrides::default())
            } else {
                upstream
            };
            self.restart_dns(who.id, &netns, user, upstream)?;
        }
        Ok(())
    }

    /// `network disconnect` of a running container.
    pub(crate) fn disconnect_running(
        &self,
        id: &str,
        remaining: &[(String, Attachment)],
        network: &str,
        attachment: &mut Attachment,
    ) -> Result<(), NetError> {
        let Some(state) = attachment.endpoint.take() else {
            return Ok(());
        };
        let net = self.networking()?;
        if network != DEFAULT_NETWORK {
            self.dns.unregister(network, state.address);
        }
        let (endpoint, upstream) = {
            let mut live = lock(&self.live);
            let entry = live.entry(id.to_owned()).or_default();
            (entry.endpoints.remove(network), entry.upstream.clone())
        };
        let endpoint = endpoint.unwrap_or_else(|| state.endpoint(network, id));
        self.block(net.disconnect(endpoint))?;
        let user = user_networks(remaining);
        let path = self.ns_path(id);
        if user.is_empty() {
            if let Some(live) = lock(&self.live).get_mut(id) {
                live.dns = None;
            }
        } else if path.exists() {
            let netns = NetNs::open(&path)?;
            self.restart_dns(id, &netns, user, upstream)?;
        }
        Ok(())
    }
}

fn user_networks(attachments: &[(String, Attachment)]) -> Vec<String> {
    attachments
        .iter()
        .filter(|(name, a)| name != DEFAULT_NETWORK && a.endpoint.is_some())
        .map(|(name, _)| name.clone())
        .collect()
}

/// What the container's `hostname`, `hosts` and `resolv.conf` say.
#[derive(Debug, Clone)]
pub(crate) struct FilesInput<'a> {
    pub(crate) dir: &'a Path,
    pub(crate) hostname: &'a str,
    /// The primary address and the aliases that go with it in `hosts`.
    pub(crate) address: Option<Ipv4Addr>,
    pub(crate) aliases: &'a [String],
    /// `--add-host` entries (`name:ip` or `name=ip`).
    pub(crate) extra_hosts: &'a [String],
    /// What `host-gateway` in `--add-host` means.
    pub(crate) gateway: Option<Ipv4Addr>,
    pub(crate) dns_mode: DnsMode,
    pub(crate) overrides: &'a DnsOverrides,
}

/// Writes the three files into the container's directory (Docker's
/// `hostname`, `hosts`, `resolv.conf`), for the spec to bind in.
pub(crate) fn write_files(input: &FilesInput<'_>) -> Result<NetworkFiles, NetError> {
    let mut extra = Vec::new();
    for entry in input.extra_hosts {
        let (name, ip) = entry
            .split_once('=')
            .or_else(|| entry.split_once(':'))
            .ok_or_else(|| NetError::Invalid(format!("invalid extra host entry {entry:?}")))?;
        let ip: IpAddr = if ip == "host-gateway" {
            match input.gateway {
                Some(gw) => IpAddr::V4(gw),
                None => continue,
            }
        } else {
            ip.trim_matches(['[', ']'])
                .parse()
                .map_err(|_| NetError::Invalid(format!("invalid IP address in add-host: {ip:?}")))?
        };
        extra.push((name.to_owned(), ip));
    }
    let host_resolv = std::fs::read_to_string(host_resolv_conf_path()).unwrap_or_default();
    let files = [
        ("hostname", hostname_file(input.hostname)),
        (
            "hosts",
            hosts_file(input.address, input.hostname, input.aliases, &extra),
        ),
        (
            "resolv.conf",
            container_resolv_conf(&host_resolv, input.dns_mode, input.overrides),
        ),
    ];
    for (name, text) in &files {
        let path = input.dir.join(name);
        std::fs::write(&path, text).map_err(io_err("writing", &path))?;
    }
    Ok(NetworkFiles {
        hostname: Some(input.dir.join("hostname")),
        hosts: Some(input.dir.join("hosts")),
        resolv_conf: Some(input.dir.join("resolv.conf")),
    })
}

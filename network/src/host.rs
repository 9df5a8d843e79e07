//! [`Networking`]: bridge networks and container endpoints, wiring the
//! netlink, IPAM and firewall parts together for berthd.
//!
//! Everything "host side" happens in the namespace given to
//! [`Networking::open`] (berthd passes its own; tests pass a scratch one).
//! State on disk, under `state_dir`:
//!
//! ```text
//! networks/<name>.json   NetworkInfo (bridge, subnet, gateway, internal)
//! ipam/<name>.json       allocations (see ipam)
//! ```
//!
//! Container namespaces are mounted at `<netns_dir>/<container id>`.
//! Spare namespaces (see [`crate::spare`]) are mounted nowhere.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::error::{NetworkError, Result};
use crate::firewall::{Firewall, NetworkRules};
use crate::ipam::{Ipam, Ipv4Net, Taken, check_overlap, pick_subnet, write_atomic};
use crate::link::Netlink;
use crate::netns::NetNs;
use crate::ports::{PortMapping, PortReservation, PortSpec, reserve};
use crate::spare::{SPARE_INTERFACE, Spare, SparePool, spare_veth_name};

/// What `network create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NetworkSpec {
    /// Network name (also the state file names).
    pub name: String,
    /// Bridge interface name (at most 15 bytes), e.g. `berth0` or `br-<id12>`.
    pub bridge: String,
    /// `--subnet`; picked from the default pools when `None`.
    pub subnet: Option<Ipv4Net>,
    /// `--gateway`; the subnet's first host address when `None`.
    pub gateway: Option<Ipv4Addr>,
    /// `--internal`: no outbound NAT, no traffic to or from other interfaces.
    pub internal: bool,
}

/// A network as created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInfo {
    /// Name.
    pub name: String,
    /// Bridge interface.
    pub bridge: String,
    /// Subnet.
    pub subnet: Ipv4Net,
    /// Gateway (the bridge's address).
    pub gateway: Ipv4Addr,
    /// `--internal`.
    pub internal: bool,
}

/// A container's attachment to a network. Holds the published ports'
/// host sockets: keep it while the container runs.
#[derive(Debug)]
pub struct Endpoint {
    /// Network name.
    pub network: String,
    /// Container id.
    pub container_id: String,
    /// The container's address.
    pub address: Ipv4Addr,
    /// The network's subnet.
    pub subnet: Ipv4Net,
    /// The default gateway (absent on internal networks).
    pub gateway: Option<Ipv4Addr>,
    /// Host end of the veth pair.
    pub host_veth: String,
    /// Interface name inside the container.
    pub interface: String,
    /// Published ports with their host sockets.
    pub ports: PortReservation,
}

/// Host-side networking of berthd.
#[derive(Debug)]
pub struct Networking {
    host: NetNs,
    netlink: Netlink,
    firewall: Firewall,
    state_dir: PathBuf,
    netns_dir: PathBuf,
    /// Serialises network and IPAM changes (the state files are
    /// read-modify-write). Holds whether the nftables table exists: it is
    /// made with the first network, so a daemon without networks
    /// (`--bridge none`) leaves no trace in the host's ruleset.
    lock: Mutex<FirewallState>,
    spares: SparePool,
    /// Held while a spare is made, and by a network's removal: a spare is
    /// never half-made on a bridge that is going.
    making_spare: Mutex<()>,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum FirewallState {
    #[default]
    Absent,
    Ready,
}

/// Docker's rule for network names, `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, which
/// also keeps them safe as file and interface names.
fn validate_name(name: &str, max: usize) -> Result<()> {
    let bad = |reason| {
        Err(NetworkError::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() || name.len() > max {
        return bad(if max == 15 {
            "interface names are 1 to 15 bytes"
        } else {
            "must be 1 to 64 bytes"
        });
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return bad("only letters, digits, '_', '.' and '-', starting with a letter or digit");
    }
    Ok(())
}

fn short_hash(parts: &[&str]) -> String {
    // FNV-1a: stable across runs, enough to make interface names unique.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain([0]) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

impl Networking {
    /// Opens networking acting in `host` (berthd: [`NetNs::current`]).
    pub async fn open(
        host: NetNs,
        state_dir: impl Into<PathBuf>,
        netns_dir: impl Into<PathBuf>,
    ) -> Result<Self> {
        let netlink = Netlink::open(&host).await?;
        Ok(Self {
            firewall: Firewall::new(host.clone()),
            host,
            netlink,
            state_dir: state_dir.into(),
            netns_dir: netns_dir.into(),
            lock: Mutex::new(FirewallState::Absent),
            spares: SparePool::new(0),
            making_spare: Mutex::new(()),
        })
    }

    /// Keeps up to `per_network` spare endpoints ready for each network
    /// that containers start on (0, the default, keeps none); see
    /// [`Networking::refill_spares`].
    pub fn with_spares(mut self, per_network: usize) -> Self {
        self.spares = SparePool::new(per_network);
        self
    }

    /// The firewall (for inspection and tests).
    pub fn firewall(&self) -> &Firewall {
        &self.firewall
    }

    /// The host-side netlink connection.
    pub fn netlink(&self) -> &Netlink {
        &self.netlink
    }

    /// Daemon start: drops every rule left by a previous run, then
    /// re-creates the bridges and rules of the persisted networks.
    /// Published ports of restored containers are re-added by
    /// [`Networking::republish`].
    pub async fn start(&self) -> Result<()> {
        let mut firewall = self.lock.lock().await;
        self.nft(|fw| fw.reset()).await?;
        *firewall = FirewallState::Absent;
        for info in self.networks()? {
            self.bring_up(&mut firewall, &info).await?;
        }
        Ok(())
    }

    /// Deletes the firewall table (clean shutdown with no containers)
    /// and the spares.
    pub async fn stop(&self) -> Result<()> {
        drop(self.spares.clear());
        let mut firewall = self.lock.lock().await;
        self.firewall.reset()?;
        *firewall = FirewallState::Absent;
        Ok(())
    }

    /// Persisted networks.
    pub fn networks(&self) -> Result<Vec<NetworkInfo>> {
        let dir = self.state_dir.join("networks");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(NetworkError::io("reading", &dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|e| NetworkError::io("reading", &dir, e))?
                .path();
            if path.extension().is_some_and(|e| e == "json") {
                let bytes = fs::read(&path).map_err(|e| NetworkError::io("reading", &path, e))?;
                out.push(
                    serde_json::from_slice(&bytes)
                        .map_err(|source| NetworkError::Corrupt { path, source })?,
                );
            }
        }
        out.sort_by(|a: &NetworkInfo, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// One persisted network.
    pub fn network(&self, name: &str) -> Result<Option<NetworkInfo>> {
        Ok(self.networks()?.into_iter().find(|n| n.name == name))
    }

    /// Creates a bridge network: checks the subnet against other networks
    /// and the host's routes, creates the bridge and its rules, persists it.
    pub async fn create_network(&self, spec: &NetworkSpec) -> Result<NetworkInfo> {
        validate_name(&spec.name, 64)?;
        validate_name(&spec.bridge, 15)?;
        let mut firewall = self.lock.lock().await;
        let existing = self.networks()?;
        if existing
            .iter()
            .any(|n| n.name == spec.name || n.bridge == spec.bridge)
        {
            return Err(NetworkError::Overlap {
                subnet: spec
                    .subnet
                    .map_or_else(|| "-".to_owned(), |s| s.to_string()),
                other: spec.name.clone(),
                what: "a network with this name or bridge exists".to_owned(),
            });
        }
        let mut taken: Vec<Taken> = existing
            .iter()
            .map(|n| Taken {
                net: n.subnet,
                what: format!("network {}", n.name),
            })
            .collect();
        for route in self.netlink.routes().await? {
            taken.push(Taken {
                net: route.destination,
                what: match route.interface {
                    Some(index) => format!("host route on interface #{index}"),
                    None => "host route".to_owned(),
                },
            });
        }
        let subnet = match spec.subnet {
            Some(s) => {
                check_overlap(&s, &taken)?;
                s
            }
            None => pick_subnet(&taken)?,
        };
        let gateway = spec.gateway.unwrap_or_else(|| subnet.first_host());
        if !subnet.is_host(gateway) {
            return Err(NetworkError::InvalidGateway {
                gateway,
                subnet: subnet.to_string(),
            });
        }
        let info = NetworkInfo {
            name: spec.name.clone(),
            bridge: spec.bridge.clone(),
            subnet,
            gateway,
            internal: spec.internal,
        };
        // IPAM state first: a crash after it leaves an unused pool, never a
        // bridge without a record.
        Ipam::open(&self.state_dir.join("ipam"), &info.name, subnet, gateway)?;
        if let Err(e) = self.bring_up(&mut firewall, &info).await {
            let _ = self.tear_down(&info).await;
            if let Ok(ipam) = Ipam::open(&self.state_dir.join("ipam"), &info.name, subnet, gateway)
            {
                let _ = ipam.destroy();
            }
            return Err(e);
        }
        let dir = self.state_dir.join("networks");
        fs::create_dir_all(&dir).map_err(|e| NetworkError::io("creating", &dir, e))?;
        write_atomic(
            &dir.join(format!("{}.json", info.name)),
            &serde_json::to_vec_pretty(&info).expect("serialises"),
        )?;
        Ok(info)
    }

    /// Creates a network's bridge and rules; the first network also makes
    /// the nftables table and turns on IPv4 forwarding.
    async fn bring_up(&self, firewall: &mut FirewallState, info: &NetworkInfo) -> Result<()> {
        if *firewall == FirewallState::Absent {
            self.nft(|fw| fw.init()).await?;
            self.sysctl("net/ipv4/ip_forward", "1")?;
            *firewall = FirewallState::Ready;
        }
        self.netlink
            .ensure_bridge(&info.bridge, info.gateway, info.subnet)
            .await?;
        // Lets 127.0.0.1 traffic DNAT'd in `output` leave through the bridge.
        self.sysctl(
            &format!("net/ipv4/conf/{}/route_localnet", info.bridge),
            "1",
        )?;
        let rules = NetworkRules {
            bridge: info.bridge.clone(),
            subnet: info.subnet,
            internal: info.internal,
        };
        self.nft(move |fw| {
            fw.remove_network(&rules.bridge)
                .and_then(|()| fw.add_network(&rules))
        })
        .await
    }

    async fn tear_down(&self, info: &NetworkInfo) -> Result<()> {
        let bridge = info.bridge.clone();
        self.nft(move |fw| fw.remove_network(&bridge)).await?;
        self.netlink.delete_link(&info.bridge).await
    }

    /// Removes a network. Fails with a conflict while containers hold
    /// addresses on it.
    pub async fn remove_network(&self, name: &str) -> Result<()> {
        let mut firewall = self.lock.lock().await;
        let Some(info) = self.network(name)? else {
            return Err(NetworkError::NetworkNotFound(name.to_owned()));
        };
        let ipam = Ipam::open(
            &self.state_dir.join("ipam"),
            name,
            info.subnet,
            info.gateway,
        )?;
        if let Some((address, owner)) = ipam.allocations().next() {
            return Err(NetworkError::NetworkInUse {
                network: name.to_owned(),
                owner: owner.to_owned(),
                address,
            });
        }
        // The spares' host ends are ports of the bridge: they go first.
        let _making = self.making_spare.lock().await;
        drop(self.spares.forget(name));
        self.tear_down(&info).await?;
        ipam.destroy()?;
        let path = self.state_dir.join("networks").join(format!("{name}.json"));
        fs::remove_file(&path).map_err(|e| NetworkError::io("removing", &path, e))?;
        // The last network takes the table with it, as it came with the first.
        if self.networks()?.is_empty() {
            self.nft(|fw| fw.reset()).await?;
            *firewall = FirewallState::Absent;
        }
        Ok(())
    }

    /// Where container `id`'s namespace is (or will be) mounted.
    pub fn netns_path(&self, id: &str) -> PathBuf {
        self.netns_dir.join(id)
    }

    /// Creates container `id`'s network namespace (its path goes into the
    /// OCI spec's `linux.namespaces`).
    pub fn create_netns(&self, id: &str) -> Result<NetNs> {
        NetNs::create(self.netns_path(id))
    }

    /// Unmounts and removes container `id`'s namespace (missing is fine).
    pub fn remove_netns(&self, id: &str) -> Result<()> {
        NetNs::remove(self.netns_path(id))
    }

    /// Connects a container's namespace to `network`: address, veth pair,
    /// `interface` (e.g. `eth0`) inside with a default route, published
    /// ports reserved and DNAT'd. Undone completely on failure.
    pub async fn connect(
        &self,
        network: &str,
        container_id: &str,
        netns: &NetNs,
        interface: &str,
        address: Option<Ipv4Addr>,
        ports: &[PortSpec],
    ) -> Result<Endpoint> {
        let info = self.require_network(network)?;
        let hash = short_hash(&[container_id, network]);
        let host_veth = format!("vb{}", &hash[..12]);
        let mut endpoint = self
            .new_endpoint(&info, container_id, address, host_veth, interface)
            .await?;
        let wired = self.wire(&info, &mut endpoint, netns, ports).await;
        self.kept_or_undone(endpoint, wired).await
    }

    /// An endpoint of `container_id` on `info`'s network, its address from
    /// the network's allocator (`address` if the caller asks for one).
    async fn new_endpoint(
        &self,
        info: &NetworkInfo,
        container_id: &str,
        address: Option<Ipv4Addr>,
        host_veth: String,
        interface: &str,
    ) -> Result<Endpoint> {
        let address = self.allocate(info, container_id, address).await?;
        Ok(Endpoint {
            network: info.name.clone(),
            container_id: container_id.to_owned(),
            address,
            subnet: info.subnet,
            gateway: (!info.internal).then_some(info.gateway),
            host_veth,
            interface: interface.to_owned(),
            ports: PortReservation::default(),
        })
    }

    /// `endpoint` once wiring it went well; otherwise it is undone
    /// completely (address, rules, link) and the error returned.
    async fn kept_or_undone(&self, endpoint: Endpoint, wired: Result<()>) -> Result<Endpoint> {
        match wired {
            Ok(()) => Ok(endpoint),
            Err(e) => {
                let _ = self.disconnect(endpoint).await;
                Err(e)
            }
        }
    }

    fn require_network(&self, network: &str) -> Result<NetworkInfo> {
        self.network(network)?
            .ok_or_else(|| NetworkError::NetworkNotFound(network.to_owned()))
    }

    /// An address on `info` for `container_id`: `address` (`--ip`) or the next free one.
    async fn allocate(
        &self,
        info: &NetworkInfo,
        container_id: &str,
        address: Option<Ipv4Addr>,
    ) -> Result<Ipv4Addr> {
        let _guard = self.lock.lock().await;
        let mut ipam = Ipam::open(
            &self.state_dir.join("ipam"),
            &info.name,
            info.subnet,
            info.gateway,
        )?;
        match address {
            Some(a) => ipam.allocate_specific(a, container_id),
            None => ipam.allocate(container_id),
        }
    }

    /// A spare endpoint of `network` if one is ready (`None` when none is
    /// or spares are off); the network is kept stocked from then on.
    pub fn take_spare(&self, network: &str) -> Option<Spare> {
        self.spares.take(network)
    }

    /// Keeps `network` stocked with spares from the next
    /// [`Networking::refill_spares`] on.
    pub fn want_spares(&self, network: &str) {
        self.spares.want(network);
    }

    /// Host ends of the spares ready now.
    pub fn spare_veths(&self) -> Vec<String> {
        self.spares.host_veths()
    }

    /// Makes spares until every network that wants them has its number
    /// (see [`Networking::with_spares`]). Returns how many were made; on
    /// an error the other networks are still stocked and the first error
    /// is returned.
    pub async fn refill_spares(&self) -> Result<usize> {
        let mut made = 0;
        let mut first_error = None;
        for (network, missing) in self.spares.shortfall() {
            for _ in 0..missing.min(self.spares.target()) {
                match self.make_spare(&network).await {
                    Ok(spare) => {
                        self.spares.put(spare);
                        made += 1;
                    }
                    // Removed while a start was taking its spare.
                    Err(NetworkError::NetworkNotFound(_)) => {
                        drop(self.spares.forget(&network));
                        break;
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                        break;
                    }
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(made),
        }
    }

    /// The link index of `info`'s bridge.
    async fn bridge_index(&self, info: &NetworkInfo) -> Result<u32> {
        self.netlink
            .link_index(&info.bridge)
            .await?
            .ok_or_else(|| NetworkError::LinkNotFound(info.bridge.clone()))
    }

    /// A new namespace with `lo` and `eth0` up, `eth0`'s peer on the
    /// network's bridge.
    async fn make_spare(&self, network: &str) -> Result<Spare> {
        let _making = self.making_spare.lock().await;
        let info = self.require_network(network)?;
        let bridge_index = self.bridge_index(&info).await?;
        let netns = NetNs::create_unmounted()?;
        let host_veth = spare_veth_name()?;
        self.netlink
            .create_veth(&host_veth, SPARE_INTERFACE, bridge_index, &netns)
            .await?;
        // From here the pair goes with the namespace if anything fails.
        let inside = Netlink::open(&netns).await?;
        let index = inside.prepare_container_link(SPARE_INTERFACE).await?;
        Ok(Spare {
            network: network.to_owned(),
            netns,
            inside,
            index,
            host_veth,
        })
    }

    /// Mounts a spare's namespace as container `id`'s (see
    /// [`Networking::netns_path`]), before [`Networking::connect_spare`].
    pub fn mount_spare(&self, spare: &Spare, id: &str) -> Result<NetNs> {
        spare.netns.mount_at(self.netns_path(id))
    }

    /// [`Networking::connect`] with a spare as `eth0`: only the address,
    /// the default route and the published ports are left to do. Undone
    /// completely on failure (the namespace stays for its owner to remove).
    pub async fn connect_spare(
        &self,
        spare: Spare,
        container_id: &str,
        address: Option<Ipv4Addr>,
        ports: &[PortSpec],
    ) -> Result<Endpoint> {
        let info = self.require_network(&spare.network)?;
        let mut endpoint = self
            .new_endpoint(
                &info,
                container_id,
                address,
                spare.host_veth.clone(),
                SPARE_INTERFACE,
            )
            .await?;
        let wired = self.wire_spare(&info, &mut endpoint, &spare, ports).await;
        self.kept_or_undone(endpoint, wired).await
    }

    async fn wire_spare(
        &self,
        info: &NetworkInfo,
        ep: &mut Endpoint,
        spare: &Spare,
        ports: &[PortSpec],
    ) -> Result<()> {
        if !info.internal {
            ep.ports = reserve(&self.host, ports)?;
        }
        spare
            .inside
            .address_container_link(
                spare.index,
                &ep.interface,
                ep.address,
                ep.subnet,
                ep.gateway,
            )
            .await?;
        self.publish(ep).await
    }

    async fn publish(&self, ep: &Endpoint) -> Result<()> {
        if ep.ports.mappings().is_empty() {
            return Ok(());
        }
        let (id, address, mappings) = (
            ep.container_id.clone(),
            ep.address,
            ep.ports.mappings().to_vec(),
        );
        self.nft(move |fw| fw.publish(&id, address, &mappings))
            .await
    }

    async fn wire(
        &self,
        info: &NetworkInfo,
        ep: &mut Endpoint,
        netns: &NetNs,
        ports: &[PortSpec],
    ) -> Result<()> {
        // Docker ignores -p on internal networks: nothing could reach them.
        if !info.internal {
            ep.ports = reserve(&self.host, ports)?;
        }
        let bridge_index = self.bridge_index(info).await?;
        // The peer is created inside the container with its final name.
        self.netlink
            .create_veth(&ep.host_veth, &ep.interface, bridge_index, netns)
            .await?;
        let inside = Netlink::open(netns).await?;
        inside
            .configure_container_link(
                &ep.interface,
                &ep.interface,
                ep.address,
                ep.subnet,
                ep.gateway,
            )
            .await?;
        self.publish(ep).await
    }

    /// Re-adds the DNAT rules of a container restored after a daemon
    /// restart ([`Networking::start`] dropped them). The caller reserves
    /// its host ports again with [`crate::reserve`] and rebuilds the
    /// [`Endpoint`] from its own records (the fields are public).
    pub async fn republish(
        &self,
        container_id: &str,
        address: Ipv4Addr,
        ports: &[PortMapping],
    ) -> Result<()> {
        let (id, mappings) = (container_id.to_owned(), ports.to_vec());
        self.nft(move |fw| {
            fw.unpublish(&id, &mappings)?;
            fw.publish(&id, address, &mappings)
        })
        .await
    }

    /// Undoes [`Networking::connect`] (`network disconnect`): port rules,
    /// veth pair, address. The container's namespace stays.
    pub async fn disconnect(&self, endpoint: Endpoint) -> Result<()> {
        self.unwire(endpoint, true).await
    }

    /// Container removal: port rules and address like
    /// [`Networking::disconnect`], then the container's namespace is
    /// removed and the kernel deletes the veth pair with it. Deleting a
    /// veth waits for an RCU grace period (15-25 ms here); the namespace
    /// cleanup does that off the caller's path, batched. Removing the
    /// namespace of a container with several endpoints twice is fine. The
    /// pair goes only once nothing holds the namespace: drop every
    /// [`NetNs`] handle of it first (the container's processes are gone).
    pub async fn remove_endpoint(&self, endpoint: Endpoint) -> Result<()> {
        let id = endpoint.container_id.clone();
        let unwired = self.unwire(endpoint, false).await;
        unwired.and(self.remove_netns(&id))
    }

    async fn unwire(&self, endpoint: Endpoint, delete_link: bool) -> Result<()> {
        let rules = if endpoint.ports.mappings().is_empty() {
            Ok(())
        } else {
            let id = endpoint.container_id.clone();
            let mappings = endpoint.ports.mappings().to_vec();
            self.nft(move |fw| fw.unpublish(&id, &mappings)).await
        };
        let link = if delete_link {
            self.netlink.delete_link(&endpoint.host_veth).await
        } else {
            Ok(())
        };
        drop(endpoint.ports);
        let release = {
            let _guard = self.lock.lock().await;
            self.network(&endpoint.network).and_then(|info| match info {
                Some(info) => Ipam::open(
                    &self.state_dir.join("ipam"),
                    &info.name,
                    info.subnet,
                    info.gateway,
                )
                .and_then(|mut ipam| ipam.release(endpoint.address)),
                None => Ok(()),
            })
        };
        rules.and(link).and(release)
    }

    /// Runs `nft` work off the async threads (it forks and waits).
    async fn nft<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Firewall) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let firewall = self.firewall.clone();
        tokio::task::spawn_blocking(move || f(&firewall))
            .await
            .expect("nft task panicked")
    }

    fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        let path = Path::new("/proc/sys").join(key);
        self.host
            .run(|| fs::write(&path, value))?
            .map_err(|e| NetworkError::io("writing sysctl", &path, e))
    }
}

//! Links, addresses and routes over rtnetlink, in any network namespace.
//!
//! A netlink socket belongs to the namespace it was created in, so
//! [`Netlink::open`] creates it on a thread that joined the namespace and
//! then drives it from the caller's tokio runtime. No `ip` commands.

use std::net::Ipv4Addr;

use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteType};
use rtnetlink::{
    LinkBridge, LinkBridgePort, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};

use crate::error::{NetworkError, Result};
use crate::ipam::Ipv4Net;
use crate::netns::NetNs;

const EEXIST: i32 = 17;
const ENODEV: i32 = 19;

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(m.raw_code().abs()),
        _ => None,
    }
}

fn nl_err(
    op: &'static str,
    what: impl Into<String>,
) -> impl FnOnce(rtnetlink::Error) -> NetworkError {
    let what = what.into();
    move |source| NetworkError::Netlink { op, what, source }
}

/// An IPv4 route of a namespace's main table, for overlap checks.
#[derive(Debug, Clone)]
pub struct Route {
    /// The destination network.
    pub destination: Ipv4Net,
    /// The output interface's index, when the route has one.
    pub interface: Option<u32>,
}

/// A rtnetlink connection bound to one network namespace.
#[derive(Debug)]
pub struct Netlink {
    handle: rtnetlink::Handle,
    connection: tokio::task::JoinHandle<()>,
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Netlink {
    /// Opens a connection inside `netns`. Must be called within a tokio runtime.
    pub async fn open(netns: &NetNs) -> Result<Self> {
        let runtime = tokio::runtime::Handle::current();
        let (connection, handle, _) = netns
            .run(move || {
                let _entered = runtime.enter();
                rtnetlink::new_connection()
            })?
            .map_err(|e| NetworkError::io("opening netlink socket in", netns_label(netns), e))?;
        Ok(Self {
            handle,
            connection: tokio::spawn(connection),
        })
    }

    /// The index of link `name`, if it exists.
    pub async fn link_index(&self, name: &str) -> Result<Option<u32>> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        match links.try_next().await {
            Ok(link) => Ok(link.map(|l| l.header.index)),
            Err(e) if errno(&e) == Some(ENODEV) => Ok(None),
            Err(e) => Err(nl_err("looking up link", name)(e)),
        }
    }

    async fn require_index(&self, name: &str) -> Result<u32> {
        self.link_index(name)
            .await?
            .ok_or_else(|| NetworkError::LinkNotFound(name.to_owned()))
    }

    /// Names of all links of the namespace.
    pub async fn link_names(&self) -> Result<Vec<String>> {
        let mut links = self.handle.link().get().execute();
        let mut names = Vec::new();
        while let Some(link) = links
            .try_next()
            .await
            .map_err(nl_err("listing links", "all"))?
        {
            names.extend(link.attributes.into_iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n),
                _ => None,
            }));
        }
        Ok(names)
    }

    /// Creates bridge `name` (or reuses an existing one), gives it `address`
    /// in `subnet` and sets it up. Returns its index.
    pub async fn ensure_bridge(
        &self,
        name: &str,
        address: Ipv4Addr,
        subnet: Ipv4Net,
    ) -> Result<u32> {
        match self
            .handle
            .link()
            .add(LinkBridge::new(name).build())
            .execute()
            .await
        {
            Ok(()) => {}
            Err(e) if errno(&e) == Some(EEXIST) => {}
            Err(e) => return Err(nl_err("creating bridge", name)(e)),
        }
        let index = self.require_index(name).await?;
        self.add_address(index, name, address, subnet.prefix())
            .await?;
        self.set_up(index, name).await?;
        Ok(index)
    }

    /// Deletes link `name`; a missing link is not an error.
    pub async fn delete_link(&self, name: &str) -> Result<()> {
        let Some(index) = self.link_index(name).await? else {
            return Ok(());
        };
        match self.handle.link().del(index).execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(ENODEV) => Ok(()),
            Err(e) => Err(nl_err("deleting link", name)(e)),
        }
    }

    /// Adds `address/prefix` to link `index` (already present is fine).
    pub async fn add_address(
        &self,
        index: u32,
        name: &str,
        address: Ipv4Addr,
        prefix: u8,
    ) -> Result<()> {
        match self
            .handle
            .address()
            .add(index, address.into(), prefix)
            .execute()
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(EEXIST) => Ok(()),
            Err(e) => Err(nl_err(
                "adding address to",
                format!("{name} ({address}/{prefix})"),
            )(e)),
        }
    }

    /// IPv4 addresses of link `index`.
    pub async fn addresses(&self, index: u32) -> Result<Vec<Ipv4Addr>> {
        let mut stream = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        let mut out = Vec::new();
        while let Some(msg) = stream
            .try_next()
            .await
            .map_err(nl_err("listing addresses", index.to_string()))?
        {
            for attr in msg.attributes {
                if let AddressAttribute::Address(std::net::IpAddr::V4(a)) = attr {
                    out.push(a);
                }
            }
        }
        Ok(out)
    }

    /// Sets link `index` up.
    pub async fn set_up(&self, index: u32, name: &str) -> Result<()> {
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(nl_err("setting up", name))
    }

    /// Creates a veth pair whose host end `host` is up on bridge
    /// `bridge_index` and whose peer is born inside `netns` as `peer`.
    /// Creating the peer there directly (`IFLA_NET_NS_FD` in the peer's
    /// message) avoids moving it later, which waits for an RCU grace period.
    /// Returns the host end's index.
    pub async fn create_veth(
        &self,
        host: &str,
        peer: &str,
        bridge_index: u32,
        netns: &NetNs,
    ) -> Result<u32> {
        let peer_msg = LinkMessageBuilder::<LinkUnspec>::new()
            .name(peer.to_owned())
            .setns_by_fd(raw_fd(netns))
            .build();
        let message = LinkVeth::new(host, peer)
            .controller(bridge_index)
            .up()
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg)))
            .build();
        self.handle
            .link()
            .add(message)
            .execute()
            .await
            .map_err(nl_err(
                "creating veth pair",
                format!("{host} / {peer} in {}", netns_label(netns)),
            ))?;
        let result = async {
            let host_index = self.require_index(host).await?;
            // Hairpin: a container can reach its own published port through the host.
            self.handle
                .link()
                .set_port(LinkBridgePort::new(host_index).hairpin(true).build())
                .execute()
                .await
                .map_err(nl_err("setting hairpin mode on", host))?;
            Ok(host_index)
        }
        .await;
        if result.is_err() {
            // Deleting one end deletes both, wherever the peer is.
            let _ = self.delete_link(host).await;
        }
        result
    }

    /// Inside a container's namespace: renames `from` to `to` (if they
    /// differ), adds
    /// `address`, sets it and `lo` up and routes by default via `gateway`.
    pub async fn configure_container_link(
        &self,
        from: &str,
        to: &str,
        address: Ipv4Addr,
        subnet: Ipv4Net,
        gateway: Option<Ipv4Addr>,
    ) -> Result<()> {
        let index = self.require_index(from).await?;
        if from != to {
            self.handle
                .link()
                .set(
                    LinkUnspec::new_with_index(index)
                        .name(to.to_owned())
                        .build(),
                )
                .execute()
                .await
                .map_err(nl_err("renaming", format!("{from} -> {to}")))?;
        }
        self.add_address(index, to, address, subnet.prefix())
            .await?;
        self.set_up(index, to).await?;
        if let Some(lo) = self.link_index("lo").await? {
            self.set_up(lo, "lo").await?;
        }
        self.add_default_route(index, gateway).await
    }

    /// Inside a spare namespace: sets `name` and `lo` up, ahead of the
    /// container's address. Returns `name`'s index.
    pub async fn prepare_container_link(&self, name: &str) -> Result<u32> {
        let index = self.require_index(name).await?;
        self.set_up(index, name).await?;
        if let Some(lo) = self.link_index("lo").await? {
            self.set_up(lo, "lo").await?;
        }
        Ok(index)
    }

    /// Inside a container's namespace: `address` on link `index` (already
    /// up, see [`Netlink::prepare_container_link`]) and the default route
    /// via `gateway`.
    pub async fn address_container_link(
        &self,
        index: u32,
        name: &str,
        address: Ipv4Addr,
        subnet: Ipv4Net,
        gateway: Option<Ipv4Addr>,
    ) -> Result<()> {
        self.add_address(index, name, address, subnet.prefix())
            .await?;
        self.add_default_route(index, gateway).await
    }

    async fn add_default_route(&self, index: u32, gateway: Option<Ipv4Addr>) -> Result<()> {
        let Some(gateway) = gateway else {
            return Ok(());
        };
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .output_interface(index)
            .build();
        match self.handle.route().add(route).execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(EEXIST) => Ok(()),
            Err(e) => Err(nl_err("adding default route via", gateway.to_string())(e)),
        }
    }

    /// The namespace's IPv4 unicast routes (main table), skipping default routes.
    pub async fn routes(&self) -> Result<Vec<Route>> {
        let mut stream = self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute();
        let mut out = Vec::new();
        while let Some(msg) = stream
            .try_next()
            .await
            .map_err(nl_err("listing routes", "ipv4"))?
        {
            if msg.header.kind != RouteType::Unicast || msg.header.destination_prefix_length == 0 {
                continue;
            }
            let mut destination = None;
            let mut interface = None;
            for attr in &msg.attributes {
                match attr {
                    RouteAttribute::Destination(RouteAddress::Inet(a)) => destination = Some(*a),
                    RouteAttribute::Oif(i) => interface = Some(*i),
                    _ => {}
                }
            }
            let Some(addr) = destination else { continue };
            let prefix = msg.header.destination_prefix_length;
            let mask = u32::MAX << (32 - u32::from(prefix));
            let Ok(destination) = Ipv4Net::new(Ipv4Addr::from(u32::from(addr) & mask), prefix)
            else {
                continue;
            };
            out.push(Route {
                destination,
                interface,
            });
        }
        Ok(out)
    }
}

fn raw_fd(netns: &NetNs) -> std::os::fd::RawFd {
    use std::os::fd::AsRawFd;
    netns.fd().as_raw_fd()
}

fn netns_label(netns: &NetNs) -> String {
    netns
        .path()
        .map_or_else(|| "current netns".to_owned(), |p| p.display().to_string())
}

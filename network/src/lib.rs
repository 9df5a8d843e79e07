//! Host-side networking for berthd's bridge networks: network namespaces
//! bind-mounted for OCI specs to join, bridges and veth pairs over
//! rtnetlink, a persistent per-network address allocator, NAT, isolation
//! and published ports in one nftables table, and the contents of a
//! container's resolv.conf, hosts and hostname files; and the embedded
//! DNS server (127.0.0.11) of user-defined networks; and spare
//! namespaces with their veth pair made ahead of container starts.
//!
//! [`Networking`] ties the parts together; every part works in the
//! network namespace it is given, so tests run whole "hosts" inside
//! scratch namespaces.

mod dns;
mod error;
mod files;
mod firewall;
mod host;
mod ipam;
mod link;
mod netns;
mod ports;
mod spare;

pub use dns::{DnsRegistry, EmbeddedDns};
pub use error::{NetworkError, Result};
pub use files::{
    DEFAULT_NAMESERVERS, DnsMode, DnsOverrides, EMBEDDED_DNS, ResolvConf, container_resolv_conf,
    host_resolv_conf_path, hostname_file, hosts_file,
};
pub use firewall::{Firewall, NetworkRules};
pub use host::{Endpoint, NetworkInfo, NetworkSpec, Networking};
pub use ipam::{Ipam, Ipv4Net, Taken, check_overlap, pick_subnet};
pub use link::{Netlink, Route};
pub use netns::NetNs;
pub use ports::{PortMapping, PortReservation, PortSpec, Protocol, parse_host_ports, reserve};
pub use spare::Spare;

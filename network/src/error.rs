use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use berth_core::ErrorKind;

/// Everything that can go wrong while setting up networking.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// A subnet or address given by the user does not parse.
    #[error("invalid CIDR {input:?}: {reason}")]
    InvalidCidr { input: String, reason: &'static str },
    /// A network or bridge name is not usable.
    #[error("invalid network name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    /// A `-p` port specification does not parse.
    #[error("invalid port specification {input:?}: {reason}")]
    InvalidPort { input: String, reason: &'static str },
    /// The gateway is not a usable host address of the subnet.
    #[error("gateway {gateway} is not a host address of {subnet}")]
    InvalidGateway { gateway: Ipv4Addr, subnet: String },
    /// A requested subnet overlaps another network or a host route.
    #[error("subnet {subnet} overlaps {other} ({what})")]
    Overlap {
        subnet: String,
        other: String,
        what: String,
    },
    /// No free subnet among the default candidates.
    #[error("no free subnet for a new network: every default pool overlaps a route or network")]
    NoFreeSubnet,
    /// Every address of a network's subnet is in use.
    #[error("no free address left in {subnet} of network {network}")]
    PoolExhausted { network: String, subnet: String },
    /// A specific address was asked for but is taken or outside the subnet.
    #[error("address {address} is not available in network {network}: {reason}")]
    AddressUnavailable {
        network: String,
        address: IpAddr,
        reason: &'static str,
    },
    /// A host port cannot be bound (another process holds it) or is already published.
    #[error("cannot publish {host_ip}:{port}/{proto}: {reason}")]
    PortInUse {
        host_ip: IpAddr,
        port: u16,
        proto: &'static str,
        reason: String,
    },
    /// Every port of a host port range is taken.
    #[error("cannot publish {host_ip}:{first}-{last}/{proto}: every port of the range is in use")]
    PortRangeInUse {
        host_ip: IpAddr,
        first: u16,
        last: u16,
        proto: &'static str,
    },
    /// No network has this name.
    #[error("network {0} not found")]
    NetworkNotFound(String),
    /// A network with this name or bridge already exists.
    #[error("network {name} already exists (or its bridge {bridge} is taken)")]
    NetworkExists { name: String, bridge: String },
    /// The network still has containers attached.
    #[error("network {network} has active endpoints ({owner} holds {address})")]
    NetworkInUse {
        network: String,
        owner: String,
        address: Ipv4Addr,
    },
    /// A link (bridge, veth) that should exist does not.
    #[error("network interface {0} not found")]
    LinkNotFound(String),
    /// A netlink request failed.
    #[error("netlink: {op} {what}: {source}")]
    Netlink {
        op: &'static str,
        what: String,
        source: rtnetlink::Error,
    },
    /// `nft` failed or could not be run.
    #[error("nft {op}: {message}")]
    Nft { op: &'static str, message: String },
    /// A file or system call failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A state file exists but cannot be parsed.
    #[error("corrupt state file {}: {source}", path.display())]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

impl NetworkError {
    /// The error's kind, for mapping to API statuses.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidCidr { .. }
            | Self::InvalidPort { .. }
            | Self::InvalidGateway { .. }
            | Self::InvalidName { .. } => ErrorKind::InvalidArgument,
            Self::Overlap { .. }
            | Self::NoFreeSubnet
            | Self::PoolExhausted { .. }
            | Self::AddressUnavailable { .. }
            | Self::PortInUse { .. }
            | Self::PortRangeInUse { .. }
            | Self::NetworkExists { .. }
            | Self::NetworkInUse { .. } => ErrorKind::Conflict,
            Self::LinkNotFound(_) | Self::NetworkNotFound(_) => ErrorKind::NotFound,
            Self::Netlink { .. } | Self::Nft { .. } | Self::Io { .. } => ErrorKind::Io,
            Self::Corrupt { .. } => ErrorKind::Integrity,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = NetworkError> = std::result::Result<T, E>;

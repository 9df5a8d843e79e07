//! Published ports: parsing `-p` and reserving host ports.
//!
//! Ports are forwarded by DNAT in the kernel (see `firewall`), not by a
//! userland proxy. To still give "port already in use" at start and keep
//! other programs off a published port, the daemon binds each host port
//! (without listening) and holds the socket while the container runs:
//! [`PortReservation`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::OwnedFd;

use rustix::net::{AddressFamily, SocketFlags, SocketType, bind, getsockname, socket_with};
use serde::{Deserialize, Serialize};

use crate::error::{NetworkError, Result};
use crate::netns::NetNs;

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP
    Tcp,
    /// UDP
    Udp,
}

impl Protocol {
    /// `tcp` or `udp`, as nftables and Docker spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed `-p` argument; `host_port` 0 means "pick a free one".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    /// Host address to publish on; 0.0.0.0 means every local address.
    pub host_ip: Ipv4Addr,
    /// Host port, 0 for a random free port.
    pub host_port: u16,
    /// Port inside the container.
    pub container_port: u16,
    /// Protocol.
    pub protocol: Protocol,
}

/// A published port with its host port decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// Host address (0.0.0.0 for all).
    pub host_ip: Ipv4Addr,
    /// Host port.
    pub host_port: u16,
    /// Port inside the container.
    pub container_port: u16,
    /// Protocol.
    pub protocol: Protocol,
}

fn bad(input: &str, reason: &'static str) -> NetworkError {
    NetworkError::InvalidPort {
        input: input.to_owned(),
        reason,
    }
}

fn parse_port(input: &str, text: &str, zero_ok: bool) -> Result<u16> {
    if text.contains('-') {
        return Err(bad(input, "port ranges are not supported"));
    }
    match text.parse::<u16>() {
        Ok(0) if !zero_ok => Err(bad(input, "port 0 is not a valid container port")),
        Ok(p) => Ok(p),
        Err(_) => Err(bad(input, "port must be a number from 1 to 65535")),
    }
}

impl PortSpec {
    /// Parses Docker's `[ip:][host_port:]container_port[/tcp|udp]`
    /// (IPv4 host addresses only).
    pub fn parse(input: &str) -> Result<Self> {
        let (rest, protocol) = match input.rsplit_once('/') {
            Some((rest, "tcp")) => (rest, Protocol::Tcp),
            Some((rest, "udp")) => (rest, Protocol::Udp),
            Some(_) => return Err(bad(input, "protocol must be tcp or udp")),
            None => (input, Protocol::Tcp),
        };
        let parts: Vec<&str> = rest.split(':').collect();
        let (ip, host, container) = match parts.as_slice() {
            [c] => (None, None, *c),
            [h, c] => (None, Some(*h), *c),
            [ip, h, c] => (Some(*ip), Some(*h), *c),
            _ => {
                return Err(bad(
                    input,
                    "expected [ip:][host_port:]container_port[/protocol]",
                ));
            }
        };
        let host_ip = match ip {
            None | Some("") => Ipv4Addr::UNSPECIFIED,
            Some(ip) => ip
                .parse()
                .map_err(|_| bad(input, "host address is not an IPv4 address"))?,
        };
        let host_port = match host {
            None | Some("") => 0,
            Some(h) => parse_port(input, h, true)?,
        };
        let container_port = parse_port(input, container, false)?;
        Ok(Self {
            host_ip,
            host_port,
            container_port,
            protocol,
        })
    }
}

/// Host sockets bound (not listening) on published ports, held so no
/// other program can take them. Dropping releases the ports.
#[derive(Debug, Default)]
pub struct PortReservation {
    sockets: Vec<OwnedFd>,
    mappings: Vec<PortMapping>,
}

impl PortReservation {
    /// The ports with their final host port numbers (what `docker port` shows).
    pub fn mappings(&self) -> &[PortMapping] {
        &self.mappings
    }
}

/// Binds every spec's host port inside `host_netns` (random ones get a
/// free port from the kernel). Fails on the first port that is taken,
/// releasing the ones bound before it.
pub fn reserve(host_netns: &NetNs, specs: &[PortSpec]) -> Result<PortReservation> {
    if specs.is_empty() {
        // No thread into the namespace for nothing (most starts).
        return Ok(PortReservation::default());
    }
    host_netns.run(|| {
        let mut reservation = PortReservation::default();
        for spec in specs {
            let (fd, port) = bind_port(spec)?;
            reservation.sockets.push(fd);
            reservation.mappings.push(PortMapping {
                host_ip: spec.host_ip,
                host_port: port,
                container_port: spec.container_port,
                protocol: spec.protocol,
            });
        }
        Ok(reservation)
    })?
}

fn bind_port(spec: &PortSpec) -> Result<(OwnedFd, u16)> {
    let addr = SocketAddrV4::new(spec.host_ip, spec.host_port);
    let in_use = |e: std::io::Error| NetworkError::PortInUse {
        host_ip: IpAddr::V4(spec.host_ip),
        port: spec.host_port,
        proto: spec.protocol.as_str(),
        reason: e.to_string(),
    };
    let fd: OwnedFd = match spec.protocol {
        Protocol::Udp => UdpSocket::bind(addr).map_err(in_use)?.into(),
        Protocol::Tcp => {
            // Close-on-exec: shims and containers spawned later must not
            // inherit it (they would hold the port after berthd exits).
            let fd = socket_with(
                AddressFamily::INET,
                SocketType::STREAM,
                SocketFlags::CLOEXEC,
                None,
            )
            .map_err(|e| in_use(e.into()))?;
            // No SO_REUSEADDR: Linux lets two non-listening sockets that
            // both set it share a port, which would defeat the reservation.
            bind(&fd, &addr).map_err(|e| in_use(e.into()))?;
            fd
        }
    };
    let port = match getsockname(&fd) {
        Ok(sa) => SocketAddrV4::try_from(sa)
            .map(|a| a.port())
            .unwrap_or(spec.host_port),
        Err(e) => return Err(in_use(e.into())),
    };
    Ok((fd, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_port_syntax() {
        let p = PortSpec::parse("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(
            p,
            PortSpec {
                host_ip: Ipv4Addr::LOCALHOST,
                host_port: 8080,
                container_port: 80,
                protocol: Protocol::Udp
            }
        );
        let p = PortSpec::parse("80").unwrap();
        assert_eq!(
            (p.host_ip, p.host_port, p.container_port),
            (Ipv4Addr::UNSPECIFIED, 0, 80)
        );
        let p = PortSpec::parse("10.0.0.1::53/udp").unwrap();
        assert_eq!((p.host_port, p.protocol), (0, Protocol::Udp));
        for bad in [
            "",
            "x",
            "80/sctp",
            "1:2:3:4",
            "70000",
            "8080:0",
            "1.2.3:80:80",
            "8000-8010:80",
        ] {
            let err = PortSpec::parse(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }
}

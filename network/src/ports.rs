//! Published ports: parsing `-p` and reserving host ports.
//!
//! Ports are forwarded by DNAT in the kernel (see `firewall`), not by a
//! userland proxy. To still give "port already in use" at start and keep
//! other programs off a published port, the daemon binds each host port
//! (without listening) and holds the socket while the container runs:
//! [`PortReservation`]. A host port range for one container port
//! (`-p 8000-8010:80`) takes the first port of the range that binds, as
//! dockerd does.

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
    /// Host port, 0 for a random free port; the first of a range.
    pub host_port: u16,
    /// The last port of a host range (`host_port..=last`): the first
    /// free port of the range is taken. `None` for a single port.
    #[serde(default)]
    pub host_port_last: Option<u16>,
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
        return Err(bad(
            input,
            "a container port range names several ports: publish each one",
        ));
    }
    match text.parse::<u16>() {
        Ok(0) if !zero_ok => Err(bad(input, "port 0 is not a valid container port")),
        Ok(p) => Ok(p),
        Err(_) => Err(bad(input, "port must be a number from 1 to 65535")),
    }
}

/// The host part of a port binding as `PortBindings` carry it: `""` (a
/// random port), `8080`, or a range `8000-8010`. Returns the first port
/// (0 for random) and the last one of a range.
pub fn parse_host_ports(text: &str) -> Result<(u16, Option<u16>)> {
    let Some((first, last)) = text.split_once('-') else {
        return match text {
            "" => Ok((0, None)),
            _ => parse_port(text, text, true).map(|p| (p, None)),
        };
    };
    let port = |part: &str| match part.parse::<u16>() {
        Ok(0) => Err(bad(text, "a host port range starts at port 1 or above")),
        Ok(p) => Ok(p),
        Err(_) => Err(bad(text, "port must be a number from 1 to 65535")),
    };
    let (first, last) = (port(first)?, port(last)?);
    if last < first {
        return Err(bad(text, "the range ends before it starts"));
    }
    Ok((first, Some(last)))
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
        let (host_port, host_port_last) = match host {
            None => (0, None),
            Some(h) => parse_host_ports(h).map_err(|e| match e {
                NetworkError::InvalidPort { reason, .. } => bad(input, reason),
                e => e,
            })?,
        };
        let container_port = parse_port(input, container, false)?;
        Ok(Self {
            host_ip,
            host_port,
            host_port_last,
            container_port,
            protocol,
        })
    }
}

impl From<PortMapping> for PortSpec {
    /// The same port again (a restored container keeps the one it had).
    fn from(mapping: PortMapping) -> Self {
        Self {
            host_ip: mapping.host_ip,
            host_port: mapping.host_port,
            host_port_last: None,
            container_port: mapping.container_port,
            protocol: mapping.protocol,
        }
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
/// free port from the kernel, ranges their first free port). Fails on the
/// first port (or range) that is taken, releasing the ones bound before it.
pub fn reserve(host_netns: &NetNs, specs: &[PortSpec]) -> Result<PortReservation> {
    if specs.is_empty() {
        // No thread into the namespace for nothing (most starts).
        return Ok(PortReservation::default());
    }
    host_netns.run(|| {
        let mut reservation = PortReservation::default();
        for spec in specs {
            let (fd, port) = match spec.host_port_last {
                Some(last) => bind_in_range(spec, last)?,
                None => bind_port(spec, spec.host_port)?,
            };
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

/// The first port of `spec.host_port..=last` that binds; a port taken by
/// another socket is skipped, any other failure stops the search.
fn bind_in_range(spec: &PortSpec, last: u16) -> Result<(OwnedFd, u16)> {
    for port in spec.host_port..=last {
        match bind_socket(spec.host_ip, port, spec.protocol) {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {}
            other => return other.map_err(|e| in_use(spec, port, e)),
        }
    }
    Err(NetworkError::PortRangeInUse {
        host_ip: IpAddr::V4(spec.host_ip),
        first: spec.host_port,
        last,
        proto: spec.protocol.as_str(),
    })
}

fn bind_port(spec: &PortSpec, host_port: u16) -> Result<(OwnedFd, u16)> {
    bind_socket(spec.host_ip, host_port, spec.protocol).map_err(|e| in_use(spec, host_port, e))
}

fn in_use(spec: &PortSpec, port: u16, e: std::io::Error) -> NetworkError {
    NetworkError::PortInUse {
        host_ip: IpAddr::V4(spec.host_ip),
        port,
        proto: spec.protocol.as_str(),
        reason: e.to_string(),
    }
}

/// A socket bound (not listening) to `ip:port`, and the port it got.
fn bind_socket(ip: Ipv4Addr, port: u16, protocol: Protocol) -> std::io::Result<(OwnedFd, u16)> {
    let addr = SocketAddrV4::new(ip, port);
    let fd: OwnedFd = match protocol {
        Protocol::Udp => UdpSocket::bind(addr)?.into(),
        Protocol::Tcp => {
            // Close-on-exec: shims and containers spawned later must not
            // inherit it (they would hold the port after berthd exits).
            let fd = socket_with(
                AddressFamily::INET,
                SocketType::STREAM,
                SocketFlags::CLOEXEC,
                None,
            )?;
            // No SO_REUSEADDR: Linux lets two non-listening sockets that
            // both set it share a port, which would defeat the reservation.
            bind(&fd, &addr)?;
            fd
        }
    };
    let bound = SocketAddrV4::try_from(getsockname(&fd)?).map_or(port, |a| a.port());
    Ok((fd, bound))
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
                host_port_last: None,
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
        let p = PortSpec::parse("127.0.0.1:8000-8010:80/udp").unwrap();
        assert_eq!(
            (p.host_port, p.host_port_last, p.container_port),
            (8000, Some(8010), 80)
        );
        assert_eq!(parse_host_ports("").unwrap(), (0, None));
        assert_eq!(parse_host_ports("8080").unwrap(), (8080, None));
        assert_eq!(parse_host_ports("9-9").unwrap(), (9, Some(9)));
        for bad in [
            "8010-8000",
            "0-5",
            "70000",
            "8000-70000",
            "8000-",
            "-8000",
            "a-b",
        ] {
            let err = parse_host_ports(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
        for bad in [
            "",
            "x",
            "80/sctp",
            "1:2:3:4",
            "70000",
            "8080:0",
            "1.2.3:80:80",
            "8000-8010:80-81",
            "8010-8000:80",
            "0-5:80",
        ] {
            let err = PortSpec::parse(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }
}

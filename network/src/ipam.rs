//! IPv4 subnets and the per-network address allocator.
//!
//! Each network keeps its allocations in `<dir>/<network>.json`, rewritten
//! atomically (temp file, rename) on every change, so an address is never
//! handed out twice, also across daemon restarts (see [`write_atomic`]).

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{NetworkError, Result};

/// An IPv4 network: address with the host bits cleared, and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    network: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Net {
    /// A network from an address (host bits must be zero) and prefix.
    pub fn new(network: Ipv4Addr, prefix: u8) -> Result<Self> {
        let text = format!("{network}/{prefix}");
        if prefix > 32 {
            return Err(invalid(&text, "prefix length must be at most 32"));
        }
        let net = Self { network, prefix };
        if u32::from(network) & !net.mask() != 0 {
            return Err(invalid(
                &text,
                "host bits are set (use the network address)",
            ));
        }
        Ok(net)
    }

    /// The network address.
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }

    fn first(&self) -> u32 {
        u32::from(self.network)
    }

    fn last(&self) -> u32 {
        self.first() | !self.mask()
    }

    /// The broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.last())
    }

    /// Whether `addr` lies in this network.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & self.mask() == self.first()
    }

    /// Whether the two networks share any address.
    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }

    /// Whether `addr` is usable by a host (not the network or broadcast
    /// address; /31 and /32 have no such reserved addresses).
    pub fn is_host(&self, addr: Ipv4Addr) -> bool {
        self.contains(addr)
            && (self.prefix >= 31
                || (u32::from(addr) != self.first() && u32::from(addr) != self.last()))
    }

    /// The first host address, Docker's default gateway.
    pub fn first_host(&self) -> Ipv4Addr {
        if self.prefix >= 31 {
            self.network
        } else {
            Ipv4Addr::from(self.first() + 1)
        }
    }
}

fn invalid(input: &str, reason: &'static str) -> NetworkError {
    NetworkError::InvalidCidr {
        input: input.to_owned(),
        reason,
    }
}

impl FromStr for Ipv4Net {
    type Err = NetworkError;

    fn from_str(input: &str) -> Result<Self> {
        let (addr, prefix) = input
            .split_once('/')
            .ok_or_else(|| invalid(input, "expected address/prefix, e.g. 172.20.0.0/16"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| invalid(input, "not an IPv4 address before the '/'"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| invalid(input, "prefix length must be a number from 0 to 32"))?;
        Self::new(addr, prefix).map_err(|e| match e {
            NetworkError::InvalidCidr { reason, .. } => invalid(input, reason),
            other => other,
        })
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl Serialize for Ipv4Net {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Net {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Something a new subnet must not overlap, with a label for errors.
#[derive(Debug, Clone)]
pub struct Taken {
    /// The occupied range.
    pub net: Ipv4Net,
    /// What occupies it, e.g. `network frontend` or `host route on eth0`.
    pub what: String,
}

/// Fails with [`NetworkError::Overlap`] when `subnet` overlaps any of `taken`.
pub fn check_overlap(subnet: &Ipv4Net, taken: &[Taken]) -> Result<()> {
    match taken.iter().find(|t| t.net.overlaps(subnet)) {
        Some(t) => Err(NetworkError::Overlap {
            subnet: subnet.to_string(),
            other: t.net.to_string(),
            what: t.what.clone(),
        }),
        None => Ok(()),
    }
}

/// The first of Docker's default pools that overlaps nothing in `taken`:
/// 172.17.0.0/16 to 172.31.0.0/16, then 192.168.0.0/20 to 192.168.240.0/20.
pub fn pick_subnet(taken: &[Taken]) -> Result<Ipv4Net> {
    let candidates = (17..=31)
        .map(|b| Ipv4Net {
            network: Ipv4Addr::new(172, b, 0, 0),
            prefix: 16,
        })
        .chain((0..16).map(|i| Ipv4Net {
            network: Ipv4Addr::new(192, 168, i * 16, 0),
            prefix: 20,
        }));
    for net in candidates {
        if check_overlap(&net, taken).is_ok() {
            return Ok(net);
        }
    }
    Err(NetworkError::NoFreeSubnet)
}

#[derive(Debug, Serialize, Deserialize)]
struct PoolState {
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    /// address -> owner (container id)
    allocated: BTreeMap<Ipv4Addr, String>,
    /// Where the next search starts, so a released address is not reused
    /// at once (stale ARP entries, connections to the old owner).
    next: Ipv4Addr,
}

/// The address allocator of one network, backed by a JSON file.
#[derive(Debug)]
pub struct Ipam {
    network: String,
    path: PathBuf,
    state: PoolState,
}

impl Ipam {
    /// Opens the allocator of `network` in `dir`, creating it with `subnet`
    /// and `gateway` if it does not exist. An existing file keeps its own
    /// subnet and allocations.
    pub fn open(dir: &Path, network: &str, subnet: Ipv4Net, gateway: Ipv4Addr) -> Result<Self> {
        let path = dir.join(format!("{network}.json"));
        match fs::read(&path) {
            Ok(bytes) => {
                let state: PoolState =
                    serde_json::from_slice(&bytes).map_err(|source| NetworkError::Corrupt {
                        path: path.clone(),
                        source,
                    })?;
                Ok(Self {
                    network: network.to_owned(),
                    path,
                    state,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !subnet.is_host(gateway) {
                    return Err(NetworkError::InvalidGateway {
                        gateway,
                        subnet: subnet.to_string(),
                    });
                }
                fs::create_dir_all(dir).map_err(|e| NetworkError::io("creating", dir, e))?;
                let ipam = Self {
                    network: network.to_owned(),
                    path,
                    state: PoolState {
                        subnet,
                        gateway,
                        allocated: BTreeMap::new(),
                        next: gateway,
                    },
                };
                ipam.save()?;
                Ok(ipam)
            }
            Err(e) => Err(NetworkError::io("reading", &path, e)),
        }
    }

    /// Removes the allocator's file (network removal).
    pub fn destroy(self) -> Result<()> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(NetworkError::io("removing", &self.path, e)),
        }
    }

    /// The network's subnet.
    pub fn subnet(&self) -> Ipv4Net {
        self.state.subnet
    }

    /// The gateway address (the bridge's own address).
    pub fn gateway(&self) -> Ipv4Addr {
        self.state.gateway
    }

    /// Current allocations, address to owner.
    pub fn allocations(&self) -> impl Iterator<Item = (Ipv4Addr, &str)> {
        self.state.allocated.iter().map(|(a, o)| (*a, o.as_str()))
    }

    /// Allocates a free address for `owner`, persisting it before returning.
    pub fn allocate(&mut self, owner: &str) -> Result<Ipv4Addr> {
        let net = self.state.subnet;
        let size = u64::from(net.last() - net.first()) + 1;
        let start = u32::from(self.state.next);
        for step in 1..=size {
            let offset = (u64::from(start - net.first()) + step) % size;
            let candidate = Ipv4Addr::from(net.first() + offset as u32);
            if self.is_free(candidate) {
                return self.take(candidate, owner);
            }
        }
        Err(NetworkError::PoolExhausted {
            network: self.network.clone(),
            subnet: net.to_string(),
        })
    }

    /// Allocates exactly `addr` for `owner` (`--ip`).
    pub fn allocate_specific(&mut self, addr: Ipv4Addr, owner: &str) -> Result<Ipv4Addr> {
        let reason = if !self.state.subnet.is_host(addr) {
            Some("not a host address of the subnet")
        } else if addr == self.state.gateway {
            Some("it is the gateway")
        } else if self.state.allocated.contains_key(&addr) {
            Some("already in use")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(NetworkError::AddressUnavailable {
                network: self.network.clone(),
                address: IpAddr::V4(addr),
                reason,
            });
        }
        self.take(addr, owner)
    }

    /// Releases `addr`; releasing a free address is a no-op.
    pub fn release(&mut self, addr: Ipv4Addr) -> Result<()> {
        if self.state.allocated.remove(&addr).is_some() {
            self.save()?;
        }
        Ok(())
    }

    /// Releases every address held by `owner` (cleanup after a crash).
    pub fn release_owner(&mut self, owner: &str) -> Result<()> {
        let before = self.state.allocated.len();
        self.state.allocated.retain(|_, o| o != owner);
        if self.state.allocated.len() != before {
            self.save()?;
        }
        Ok(())
    }

    fn is_free(&self, addr: Ipv4Addr) -> bool {
        self.state.subnet.is_host(addr)
            && addr != self.state.gateway
            && !self.state.allocated.contains_key(&addr)
    }

    fn take(&mut self, addr: Ipv4Addr, owner: &str) -> Result<Ipv4Addr> {
        self.state.allocated.insert(addr, owner.to_owned());
        let previous_next = self.state.next;
        self.state.next = addr;
        if let Err(e) = self.save() {
            self.state.allocated.remove(&addr);
            self.state.next = previous_next;
            return Err(e);
        }
        Ok(addr)
    }

    fn save(&self) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(&self.state).expect("pool state serialises");
        write_atomic(&self.path, &bytes)
    }
}

/// Writes `bytes` to `path` through a temp file and a rename, so a reader
/// sees the old or the new file, never a torn one.
///
/// No fsync, on purpose (it cost 3-17 ms per allocation here): a daemon
/// crash keeps the page cache, so the file is current after a restart; a
/// power loss can lose the last allocations, but it also ends every
/// container and namespace that held them, so no address is in use twice.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let write = || -> std::io::Result<()> {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| NetworkError::io("writing", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects_cidrs() {
        let net: Ipv4Net = "10.1.0.0/16".parse().unwrap();
        assert_eq!(net.broadcast(), Ipv4Addr::new(10, 1, 255, 255));
        assert_eq!(net.first_host(), Ipv4Addr::new(10, 1, 0, 1));
        for bad in [
            "10.1.0.0",
            "10.1.0.0/33",
            "10.1.0.1/16",
            "300.1.0.0/16",
            "abc/8",
            "10.0.0.0/x",
        ] {
            let err = bad.parse::<Ipv4Net>().unwrap_err();
            assert!(
                matches!(err, NetworkError::InvalidCidr { .. }),
                "{bad}: {err}"
            );
            assert!(
                err.to_string().contains(bad),
                "message names the input: {err}"
            );
        }
    }

    #[test]
    fn overlap_and_pick() {
        let a: Ipv4Net = "172.17.0.0/16".parse().unwrap();
        let b: Ipv4Net = "172.17.5.0/24".parse().unwrap();
        let c: Ipv4Net = "172.18.0.0/16".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
        let taken = vec![Taken {
            net: b,
            what: "host route on eth0".into(),
        }];
        let err = check_overlap(&a, &taken).unwrap_err();
        assert!(err.to_string().contains("172.17.5.0/24"), "{err}");
        assert_eq!(pick_subnet(&taken).unwrap(), c);
    }

    #[test]
    fn allocations_persist_and_never_repeat() {
        let dir = tempfile::tempdir().unwrap();
        let net: Ipv4Net = "10.9.0.0/29".parse().unwrap();
        let gw = net.first_host();
        let mut ipam = Ipam::open(dir.path(), "n1", net, gw).unwrap();
        let a = ipam.allocate("c1").unwrap();
        let b = ipam.allocate("c2").unwrap();
        assert_ne!(a, b);
        assert_ne!(a, gw);
        drop(ipam);
        let mut ipam = Ipam::open(dir.path(), "n1", net, gw).unwrap();
        assert_eq!(ipam.allocations().count(), 2);
        let mut seen = vec![a, b];
        // /29: 6 hosts minus the gateway = 5 usable.
        for i in 0..3 {
            let addr = ipam.allocate(&format!("x{i}")).unwrap();
            assert!(!seen.contains(&addr) && net.is_host(addr));
            seen.push(addr);
        }
        assert!(matches!(
            ipam.allocate("full"),
            Err(NetworkError::PoolExhausted { .. })
        ));
        ipam.release(a).unwrap();
        assert_eq!(ipam.allocate("again").unwrap(), a);
        assert!(matches!(
            ipam.allocate_specific(b, "dup"),
            Err(NetworkError::AddressUnavailable { .. })
        ));
    }
}

//! The embedded DNS server of user-defined networks (Docker's 127.0.0.11).
//!
//! For each container, berthd binds a UDP socket to 127.0.0.11:53 *inside*
//! the container's namespace (every 127/8 address is local on `lo`, so no
//! DNAT is needed) and serves it from its own runtime. Names of containers
//! (and their aliases) on the container's networks are answered from a
//! shared [`DnsRegistry`]; other queries are relayed, unchanged, to the
//! upstream resolvers from a socket in the host namespace, so host
//! resolvers on loopback (e.g. systemd-resolved's 127.0.0.53) work too.
//!
//! Only UDP is served; no PTR records for container addresses yet.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket as StdUdpSocket};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::UdpSocket;

use crate::error::{NetworkError, Result};
use crate::files::EMBEDDED_DNS;
use crate::netns::NetNs;

const TYPE_A: u16 = 1;
const CLASS_IN: u16 = 1;
const TTL: u32 = 600;
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);
const RCODE_SERVFAIL: u8 = 2;

#[derive(Debug, Clone)]
struct Entry {
    names: Vec<String>,
    address: Ipv4Addr,
}

/// Names of containers per network, shared by every embedded server.
#[derive(Debug, Clone, Default)]
pub struct DnsRegistry {
    networks: Arc<RwLock<HashMap<String, Vec<Entry>>>>,
}

fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl DnsRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `names` (container name, aliases, short id) resolve to
    /// `address` for containers on `network`.
    pub fn register(&self, network: &str, names: &[&str], address: Ipv4Addr) {
        let names = names.iter().map(|n| normalise(n)).collect();
        let mut networks = self.networks.write().expect("dns registry poisoned");
        let entries = networks.entry(network.to_owned()).or_default();
        entries.retain(|e| e.address != address);
        entries.push(Entry { names, address });
    }

    /// Removes the entry of `address` on `network`.
    pub fn unregister(&self, network: &str, address: Ipv4Addr) {
        let mut networks = self.networks.write().expect("dns registry poisoned");
        if let Some(entries) = networks.get_mut(network) {
            entries.retain(|e| e.address != address);
        }
    }

    /// Addresses of `name` on any of `networks`.
    pub fn lookup(&self, networks: &[String], name: &str) -> Vec<Ipv4Addr> {
        let name = normalise(name);
        let registry = self.networks.read().expect("dns registry poisoned");
        let mut out = Vec::new();
        for entries in networks.iter().filter_map(|n| registry.get(n)) {
            for e in entries {
                if e.names.contains(&name) && !out.contains(&e.address) {
                    out.push(e.address);
                }
            }
        }
        out
    }
}

/// One container's embedded DNS server; stops when dropped.
#[derive(Debug)]
pub struct EmbeddedDns {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EmbeddedDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EmbeddedDns {
    /// Starts serving 127.0.0.11:53 in `container`, answering names of
    /// `networks` from `registry` and relaying the rest to `upstream`
    /// (addresses as seen from `host`). Must run within a tokio runtime.
    pub fn start(
        container: &NetNs,
        host: &NetNs,
        networks: Vec<String>,
        registry: DnsRegistry,
        upstream: Vec<SocketAddr>,
    ) -> Result<Self> {
        let listen = SocketAddrV4::new(EMBEDDED_DNS, 53);
        let socket = container
            .run(|| StdUdpSocket::bind(listen).and_then(|s| s.set_nonblocking(true).map(|()| s)))?
            .map_err(|e| {
                NetworkError::io("binding embedded DNS 127.0.0.11:53 in", label(container), e)
            })?;
        let socket = Arc::new(
            UdpSocket::from_std(socket)
                .map_err(|e| NetworkError::io("registering DNS socket", label(container), e))?,
        );
        let server = Server {
            host: host.clone(),
            networks,
            registry,
            upstream,
        };
        let task = tokio::spawn(server.serve(socket));
        Ok(Self { task })
    }
}

fn label(ns: &NetNs) -> String {
    ns.path()
        .map_or_else(|| "current netns".to_owned(), |p| p.display().to_string())
}

#[derive(Debug, Clone)]
struct Server {
    host: NetNs,
    networks: Vec<String>,
    registry: DnsRegistry,
    upstream: Vec<SocketAddr>,
}

impl Server {
    async fn serve(self, socket: Arc<UdpSocket>) {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((len, client)) = socket.recv_from(&mut buf).await else {
                continue;
            };
            let query = buf[..len].to_vec();
            match self.answer_locally(&query) {
                Some(reply) => {
                    let _ = socket.send_to(&reply, client).await;
                }
                None => {
                    let server = self.clone();
                    let socket = socket.clone();
                    tokio::spawn(async move {
                        let reply = server.forward(&query).await.or_else(|| servfail(&query));
                        if let Some(reply) = reply {
                            let _ = socket.send_to(&reply, client).await;
                        }
                    });
                }
            }
        }
    }

    /// A reply for names in the registry, `None` when the query must go upstream.
    fn answer_locally(&self, query: &[u8]) -> Option<Vec<u8>> {
        let q = Question::parse(query)?;
        if q.class != CLASS_IN {
            return None;
        }
        let addresses = self.registry.lookup(&self.networks, &q.name);
        if addresses.is_empty() {
            return None;
        }
        // A known name: A records for A queries, an empty NOERROR for other
        // types (AAAA...), so clients do not wait on upstream for them.
        let answers: &[Ipv4Addr] = if q.qtype == TYPE_A { &addresses } else { &[] };
        Some(build_reply(query, &q, answers))
    }

    /// Relays the query to each upstream in turn from the host namespace.
    async fn forward(&self, query: &[u8]) -> Option<Vec<u8>> {
        if query.len() < 12 {
            return None;
        }
        for upstream in &self.upstream {
            let bind: SocketAddr = if upstream.is_ipv4() {
                "0.0.0.0:0".parse().expect("valid")
            } else {
                "[::]:0".parse().expect("valid")
            };
            let Ok(Ok(socket)) = self
                .host
                .run(|| StdUdpSocket::bind(bind).and_then(|s| s.set_nonblocking(true).map(|()| s)))
            else {
                continue;
            };
            let Ok(socket) = UdpSocket::from_std(socket) else {
                continue;
            };
            if socket.send_to(query, upstream).await.is_err() {
                continue;
            }
            let mut buf = vec![0u8; 4096];
            let deadline = tokio::time::Instant::now() + UPSTREAM_TIMEOUT;
            while let Ok(Ok((len, from))) =
                tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await
            {
                // Only the upstream's answer to this query id counts.
                if from == *upstream && len >= 12 && buf[..2] == query[..2] {
                    return Some(buf[..len].to_vec());
                }
            }
        }
        None
    }
}

#[derive(Debug)]
struct Question {
    name: String,
    qtype: u16,
    class: u16,
    /// Offset just past the question section.
    end: usize,
}

impl Question {
    /// The single question of a standard query, or `None`.
    fn parse(msg: &[u8]) -> Option<Self> {
        if msg.len() < 12 {
            return None;
        }
        let flags = u16::from_be_bytes([msg[2], msg[3]]);
        let qdcount = u16::from_be_bytes([msg[4], msg[5]]);
        // A response, or an opcode other than QUERY: not ours to answer.
        if flags & 0x8000 != 0 || (flags >> 11) & 0xf != 0 || qdcount != 1 {
            return None;
        }
        let mut pos = 12;
        let mut labels = Vec::new();
        loop {
            let len = usize::from(*msg.get(pos)?);
            pos += 1;
            if len == 0 {
                break;
            }
            // Compression pointers (0xC0) do not occur in a lone question.
            if len > 63 {
                return None;
            }
            labels.push(std::str::from_utf8(msg.get(pos..pos + len)?).ok()?);
            pos += len;
        }
        let fixed = msg.get(pos..pos + 4)?;
        Some(Self {
            name: labels.join("."),
            qtype: u16::from_be_bytes([fixed[0], fixed[1]]),
            class: u16::from_be_bytes([fixed[2], fixed[3]]),
            end: pos + 4,
        })
    }
}

fn build_reply(query: &[u8], q: &Question, answers: &[Ipv4Addr]) -> Vec<u8> {
    let mut out = Vec::with_capacity(q.end + answers.len() * 16);
    out.extend_from_slice(&query[..2]);
    // QR, opcode 0, AA, RD copied from the query, RA; rcode NOERROR.
    let rd = query[2] & 0x01;
    out.extend_from_slice(&[0x84 | rd, 0x80]);
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&query[12..q.end]);
    for addr in answers {
        out.extend_from_slice(&[0xc0, 0x0c]); // the name: pointer to the question
        out.extend_from_slice(&TYPE_A.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&TTL.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&addr.octets());
    }
    out
}

fn servfail(query: &[u8]) -> Option<Vec<u8>> {
    let q = Question::parse(query)?;
    let mut out = build_reply(query, &q, &[]);
    out[2] &= !0x04; // not authoritative
    out[3] |= RCODE_SERVFAIL;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&CLASS_IN.to_be_bytes());
        q
    }

    #[test]
    fn answers_registered_names_only() {
        let registry = DnsRegistry::new();
        registry.register("n1", &["Web", "www"], Ipv4Addr::new(10, 0, 0, 2));
        registry.register("n2", &["db"], Ipv4Addr::new(10, 1, 0, 2));
        let server = Server {
            host: NetNs::current().unwrap(),
            networks: vec!["n1".into()],
            registry: registry.clone(),
            upstream: vec![],
        };
        let reply = server.answer_locally(&query("WEB", TYPE_A)).unwrap();
        assert_eq!(&reply[..2], &[0x12, 0x34]);
        assert_eq!(u16::from_be_bytes([reply[6], reply[7]]), 1, "one answer");
        assert_eq!(&reply[reply.len() - 4..], &[10, 0, 0, 2]);
        // AAAA for a known name: NOERROR, no answers.
        let reply = server.answer_locally(&query("www", 28)).unwrap();
        assert_eq!(
            (reply[3] & 0x0f, u16::from_be_bytes([reply[6], reply[7]])),
            (0, 0)
        );
        // Other networks' names and unknown names go upstream.
        assert!(server.answer_locally(&query("db", TYPE_A)).is_none());
        assert!(
            server
                .answer_locally(&query("example.com", TYPE_A))
                .is_none()
        );
        registry.unregister("n1", Ipv4Addr::new(10, 0, 0, 2));
        assert!(server.answer_locally(&query("web", TYPE_A)).is_none());
        // Garbage never panics.
        for bad in [
            &[][..],
            &[0; 11],
            &[0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 200, 1],
        ] {
            assert!(server.answer_locally(bad).is_none());
        }
        let fail = servfail(&query("x", TYPE_A)).unwrap();
        assert_eq!(fail[3] & 0x0f, RCODE_SERVFAIL);
    }
}

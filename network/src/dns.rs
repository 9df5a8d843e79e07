//! The embedded DNS server of user-defined networks (Docker's 127.0.0.11).
//!
//! For each container, berthd binds a UDP socket and a TCP listener to
//! 127.0.0.11:53 *inside* the container's namespace (every 127/8 address
//! is local on `lo`, so no DNAT is needed) and serves them from its own
//! runtime. Names of containers (and their aliases) on the container's
//! networks are answered from a shared [`DnsRegistry`]; other queries are
//! relayed, unchanged, to the upstream resolvers from a socket in the host
//! namespace, so host resolvers on loopback (e.g. systemd-resolved's
//! 127.0.0.53) work too.
//!
//! TCP (RFC 1035 4.2.2: each message after a two-byte length) takes
//! several queries per connection, answered in order, and is relayed
//! upstream over TCP (UDP if that fails). A local answer too big for
//! UDP's 512 bytes is cut to whole records with TC set, so clients ask
//! again over TCP and get all of it. No PTR records for container
//! addresses yet.

use std::collections::HashMap;
use std::net::{
    Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener as StdTcpListener, TcpStream as StdTcpStream,
    UdpSocket as StdUdpSocket,
};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustix::net::{AddressFamily, SocketFlags, SocketType, socket_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::task::JoinSet;

use crate::error::{NetworkError, Result};
use crate::files::EMBEDDED_DNS;
use crate::netns::NetNs;

const TYPE_A: u16 = 1;
const CLASS_IN: u16 = 1;
const TTL: u32 = 600;
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);
const RCODE_SERVFAIL: u8 = 2;
/// The largest UDP answer without EDNS (RFC 1035 4.2.1).
const UDP_MAX: usize = 512;
/// The largest TCP message (its length prefix is 16 bits).
const TCP_MAX: usize = u16::MAX as usize;
/// A TCP client that sends nothing for this long is closed (RFC 7766
/// asks for a few seconds: connections are cheap to reopen).
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Open TCP connections per container; more are closed at once.
const TCP_CONNECTIONS: usize = 32;

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

/// One container's embedded DNS server; stops when dropped (its TCP
/// connections with it).
#[derive(Debug)]
pub struct EmbeddedDns {
    udp: tokio::task::JoinHandle<()>,
    tcp: tokio::task::JoinHandle<()>,
}

impl Drop for EmbeddedDns {
    fn drop(&mut self) {
        self.udp.abort();
        self.tcp.abort();
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
        let (socket, listener) = container
            .run(|| -> std::io::Result<_> {
                let socket = StdUdpSocket::bind(listen)?;
                socket.set_nonblocking(true)?;
                let listener = StdTcpListener::bind(listen)?;
                listener.set_nonblocking(true)?;
                Ok((socket, listener))
            })?
            .map_err(|e| {
                NetworkError::io("binding embedded DNS 127.0.0.11:53 in", label(container), e)
            })?;
        let registering = |e| NetworkError::io("registering DNS socket", label(container), e);
        let socket = Arc::new(UdpSocket::from_std(socket).map_err(registering)?);
        let listener = TcpListener::from_std(listener).map_err(registering)?;
        let server = Server {
            host: host.clone(),
            networks,
            registry,
            upstream,
        };
        Ok(Self {
            udp: tokio::spawn(server.clone().serve(socket)),
            tcp: tokio::spawn(server.serve_tcp(listener)),
        })
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
            match self.answer_locally(&query, UDP_MAX) {
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

    /// Accepts TCP clients until aborted; the connections live in a
    /// [`JoinSet`] so they end with this task.
    async fn serve_tcp(self, listener: TcpListener) {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else {
                        // Out of descriptors, say: do not spin on it.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    };
                    // Full: the client's next try (or next server) goes on.
                    if connections.len() < TCP_CONNECTIONS {
                        connections.spawn(self.clone().serve_connection(stream));
                    }
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    }

    /// One TCP client: length-prefixed queries, answered in order, until
    /// it closes, goes idle, or sends something that is not a query.
    async fn serve_connection(self, mut stream: TcpStream) {
        while let Ok(Ok(Some(query))) =
            tokio::time::timeout(TCP_IDLE, read_framed(&mut stream)).await
        {
            let reply = match self.answer_locally(&query, TCP_MAX) {
                Some(reply) => Some(reply),
                None => match self.forward_tcp(&query).await {
                    Some(reply) => Some(reply),
                    None => self.forward(&query).await,
                }
                .or_else(|| servfail(&query)),
            };
            let Some(reply) = reply else {
                return;
            };
            let written = tokio::time::timeout(TCP_IDLE, write_framed(&mut stream, &reply)).await;
            if !matches!(written, Ok(Ok(()))) {
                return;
            }
        }
    }

    /// A reply for names in the registry, cut to whole records within
    /// `limit` bytes (TC set then); `None` when the query must go upstream.
    fn answer_locally(&self, query: &[u8], limit: usize) -> Option<Vec<u8>> {
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
        Some(build_reply(query, &q, answers, limit))
    }

    /// Relays the query to each upstream in turn over TCP, from the host
    /// namespace.
    async fn forward_tcp(&self, query: &[u8]) -> Option<Vec<u8>> {
        if query.len() < 12 {
            return None;
        }
        for upstream in &self.upstream {
            let family = if upstream.is_ipv4() {
                AddressFamily::INET
            } else {
                AddressFamily::INET6
            };
            let flags = SocketFlags::CLOEXEC | SocketFlags::NONBLOCK;
            let Ok(Ok(fd)) = self
                .host
                .run(|| socket_with(family, SocketType::STREAM, flags, None))
            else {
                continue;
            };
            let socket = TcpSocket::from_std_stream(StdTcpStream::from(fd));
            let exchange = async {
                let mut stream = socket.connect(*upstream).await.ok()?;
                write_framed(&mut stream, query).await.ok()?;
                loop {
                    let reply = read_framed(&mut stream).await.ok()??;
                    // Only the upstream's answer to this query id counts.
                    if reply.len() >= 12 && reply[..2] == query[..2] {
                        return Some(reply);
                    }
                }
            };
            if let Ok(Some(reply)) = tokio::time::timeout(UPSTREAM_TIMEOUT, exchange).await {
                return Some(reply);
            }
        }
        None
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

/// The next length-prefixed message; `None` at the end of the stream.
async fn read_framed(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut message).await?;
    Ok(Some(message))
}

/// Writes `message` after its length, in one write.
async fn write_framed(stream: &mut TcpStream, message: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(message.len())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(&framed).await
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

/// Size of one A record whose name points at the question.
const A_RECORD: usize = 16;

/// The reply to `q` with `answers`, as many as fit in `limit` bytes; TC is
/// set when some did not.
fn build_reply(query: &[u8], q: &Question, answers: &[Ipv4Addr], limit: usize) -> Vec<u8> {
    let room = limit.saturating_sub(q.end) / A_RECORD;
    let truncated = answers.len() > room;
    let answers = &answers[..answers.len().min(room)];
    let mut out = Vec::with_capacity(q.end + answers.len() * A_RECORD);
    out.extend_from_slice(&query[..2]);
    // QR, opcode 0, AA, TC when cut, RD copied from the query, RA; rcode NOERROR.
    let rd = query[2] & 0x01;
    let tc = if truncated { 0x02 } else { 0 };
    out.extend_from_slice(&[0x84 | tc | rd, 0x80]);
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
    let mut out = build_reply(query, &q, &[], TCP_MAX);
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
        let reply = server
            .answer_locally(&query("WEB", TYPE_A), UDP_MAX)
            .unwrap();
        assert_eq!(&reply[..2], &[0x12, 0x34]);
        assert_eq!(u16::from_be_bytes([reply[6], reply[7]]), 1, "one answer");
        assert_eq!(&reply[reply.len() - 4..], &[10, 0, 0, 2]);
        // AAAA for a known name: NOERROR, no answers.
        let reply = server.answer_locally(&query("www", 28), UDP_MAX).unwrap();
        assert_eq!(
            (reply[3] & 0x0f, u16::from_be_bytes([reply[6], reply[7]])),
            (0, 0)
        );
        // Other networks' names and unknown names go upstream.
        assert!(
            server
                .answer_locally(&query("db", TYPE_A), UDP_MAX)
                .is_none()
        );
        assert!(
            server
                .answer_locally(&query("example.com", TYPE_A), UDP_MAX)
                .is_none()
        );
        registry.unregister("n1", Ipv4Addr::new(10, 0, 0, 2));
        assert!(
            server
                .answer_locally(&query("web", TYPE_A), UDP_MAX)
                .is_none()
        );
        // Garbage never panics.
        for bad in [
            &[][..],
            &[0; 11],
            &[0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 200, 1],
        ] {
            assert!(server.answer_locally(bad, UDP_MAX).is_none());
        }
        let fail = servfail(&query("x", TYPE_A)).unwrap();
        assert_eq!(fail[3] & 0x0f, RCODE_SERVFAIL);
    }

    #[test]
    fn udp_answers_are_cut_to_512_bytes_with_tc_tcp_ones_are_whole() {
        let registry = DnsRegistry::new();
        // One alias on 40 containers: 40 A records, 640 bytes of them.
        for i in 0..40 {
            registry.register("n1", &["pool"], Ipv4Addr::new(10, 0, 0, 10 + i));
        }
        let server = Server {
            host: NetNs::current().unwrap(),
            networks: vec!["n1".into()],
            registry,
            upstream: vec![],
        };
        let answers = |reply: &[u8]| u16::from_be_bytes([reply[6], reply[7]]);
        let q = query("pool", TYPE_A);
        let udp = server.answer_locally(&q, UDP_MAX).unwrap();
        assert!(udp.len() <= UDP_MAX, "{}", udp.len());
        assert_eq!(udp[2] & 0x02, 0x02, "TC set");
        let fit = (UDP_MAX - q.len()) / A_RECORD;
        assert_eq!(usize::from(answers(&udp)), fit);
        assert_eq!(udp.len(), q.len() + fit * A_RECORD, "whole records only");
        let tcp = server.answer_locally(&q, TCP_MAX).unwrap();
        assert_eq!((tcp[2] & 0x02, answers(&tcp)), (0, 40));
        assert_eq!(&tcp[tcp.len() - 4..], &[10, 0, 0, 49]);
    }
}

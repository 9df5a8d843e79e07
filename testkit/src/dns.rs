//! A small DNS client for tests of the embedded DNS server: queries over
//! UDP and over TCP (each message after its two-byte length, RFC 1035
//! 4.2.2, several on one connection), and the parts of a reply the tests
//! check (flags, rcode, answer records).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

/// Record type A.
pub const TYPE_A: u16 = 1;
/// Record type TXT.
pub const TYPE_TXT: u16 = 16;
/// Response code NXDOMAIN.
pub const NXDOMAIN: u8 = 3;

const TIMEOUT: Duration = Duration::from_secs(10);

/// A standard query (RD set) for `name` and `qtype`, class IN, with `id`.
pub fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    q
}

/// Connects to a DNS server over TCP, with read and write timeouts.
pub fn connect_tcp(server: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&server, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    Ok(stream)
}

/// Sends `message` on `stream` after its length.
pub fn send_framed(stream: &mut TcpStream, message: &[u8]) -> std::io::Result<()> {
    let mut framed = (message.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(message);
    stream.write_all(&framed)
}

/// Reads the next length-prefixed message from `stream`.
pub fn read_framed(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut message)?;
    Ok(message)
}

/// One query over UDP from a socket bound to `bind`: the reply.
pub fn udp_exchange(bind: SocketAddr, server: SocketAddr, query: &[u8]) -> std::io::Result<Reply> {
    let socket = UdpSocket::bind(bind)?;
    socket.set_read_timeout(Some(TIMEOUT))?;
    socket.send_to(query, server)?;
    let mut buf = vec![0u8; 65535];
    let (len, _) = socket.recv_from(&mut buf)?;
    Reply::parse(&buf[..len])
}

/// The parts of a DNS reply that tests look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The query id echoed back.
    pub id: u16,
    /// TC: the answer did not fit (UDP).
    pub truncated: bool,
    /// The response code (0 NOERROR, 3 NXDOMAIN...).
    pub rcode: u8,
    /// Answer records: type and data.
    pub answers: Vec<(u16, Vec<u8>)>,
}

fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("bad reply: {what}"),
    )
}

/// Skips a (possibly compressed) name at `pos`; the offset after it.
fn skip_name(msg: &[u8], mut pos: usize) -> std::io::Result<usize> {
    loop {
        let len = *msg.get(pos).ok_or_else(|| bad("name past the end"))?;
        match len {
            0 => return Ok(pos + 1),
            l if l & 0xc0 == 0xc0 => return Ok(pos + 2),
            l => pos += 1 + usize::from(l),
        }
    }
}

impl Reply {
    /// Parses a reply with one question.
    pub fn parse(msg: &[u8]) -> std::io::Result<Reply> {
        let word = |at: usize| -> std::io::Result<u16> {
            msg.get(at..at + 2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
                .ok_or_else(|| bad("short"))
        };
        if msg.len() < 12 || msg[2] & 0x80 == 0 {
            return Err(bad("not a response"));
        }
        let mut pos = skip_name(msg, 12)? + 4;
        let mut answers = Vec::new();
        for _ in 0..word(6)? {
            pos = skip_name(msg, pos)?;
            let rtype = word(pos)?;
            let len = usize::from(word(pos + 8)?);
            let data = msg
                .get(pos + 10..pos + 10 + len)
                .ok_or_else(|| bad("record past the end"))?;
            answers.push((rtype, data.to_vec()));
            pos += 10 + len;
        }
        Ok(Reply {
            id: word(0)?,
            truncated: msg[2] & 0x02 != 0,
            rcode: msg[3] & 0x0f,
            answers,
        })
    }

    /// The addresses of the A records.
    pub fn addresses(&self) -> Vec<Ipv4Addr> {
        self.answers
            .iter()
            .filter(|(t, d)| *t == TYPE_A && d.len() == 4)
            .map(|(_, d)| Ipv4Addr::new(d[0], d[1], d[2], d[3]))
            .collect()
    }

    /// The text of the TXT records, their strings joined.
    pub fn texts(&self) -> Vec<String> {
        self.answers
            .iter()
            .filter(|(t, _)| *t == TYPE_TXT)
            .map(|(_, d)| {
                let mut text = String::new();
                let mut pos = 0;
                while let Some(&len) = d.get(pos) {
                    let end = (pos + 1 + usize::from(len)).min(d.len());
                    text.push_str(&String::from_utf8_lossy(&d[pos + 1..end]));
                    pos = end;
                }
                text
            })
            .collect()
    }
}

/// One query over TCP on an open connection: the reply.
pub fn tcp_exchange(stream: &mut TcpStream, query: &[u8]) -> std::io::Result<Reply> {
    send_framed(stream, query)?;
    Reply::parse(&read_framed(stream)?)
}

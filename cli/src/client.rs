//! A small blocking HTTP/1.1 client for the Docker Engine API over a unix socket.
//!
//! Why blocking std I/O instead of hyper + tokio: a CLI invocation makes a handful of sequential
//! requests, so an async runtime buys nothing, and the hijacked attach/exec streams need exactly two
//! concurrent directions, which two OS threads do simply. Without tokio/hyper the binary stays small
//! and `berth version` does no work beyond connect/write/read (see the report for hyperfine numbers).
//!
//! Every call goes as `/v<version>/...`: the first one with our version, without the docker
//! CLI's `HEAD /_ping` first (a daemon too old for it refuses, and the call is sent again with
//! the daemon's version; streamed uploads, which cannot be sent twice, ping first). Errors
//! `{"message": ...}` become [`Error::Api`].

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use crate::error::Error;

/// The newest API version whose semantics this CLI implements; a daemon advertising less wins
/// (docker's negotiation: downgrade, never upgrade).
pub(crate) const DEFAULT_API_VERSION: &str = "1.47";
/// Assumed when the ping carries no `Api-Version` header, as the docker client does.
const FALLBACK_API_VERSION: &str = "1.24";
pub(crate) const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

/// Where the daemon listens, as given by `-H`, `BERTH_HOST` or `DOCKER_HOST`.
#[derive(Debug, Clone)]
pub(crate) struct Host {
    /// The address as the user wrote it (`unix:///run/berth/berth.sock`), for messages.
    pub(crate) display: String,
    socket: PathBuf,
}

impl Host {
    pub(crate) fn parse(addr: &str) -> Result<Host, Error> {
        let socket = if let Some(path) = addr.strip_prefix("unix://") {
            path
        } else if addr.starts_with('/') {
            addr
        } else {
            return Err(Error::UnsupportedHost(addr.to_string()));
        };
        Ok(Host {
            display: if addr.starts_with('/') {
                format!("unix://{addr}")
            } else {
                addr.to_string()
            },
            socket: PathBuf::from(socket),
        })
    }
}

/// What the ping told us about the daemon.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ping {
    pub(crate) api_version: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Client {
    pub(crate) host: Host,
    /// `Some` once negotiated (or pinned through `DOCKER_API_VERSION`).
    version: Option<String>,
    pinned: bool,
    pub(crate) ping: Option<Ping>,
}

/// An HTTP response whose body has not been read yet.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    body: Body,
}

/// Body framing per RFC 9112 section 6.3.
#[derive(Debug)]
enum Framing {
    Length(u64),
    Chunked { left_in_chunk: u64, done: bool },
    UntilClose,
}

#[derive(Debug)]
pub(crate) struct Body {
    conn: BufReader<UnixStream>,
    framing: Framing,
}

/// The two directions of a hijacked (upgraded) attach/exec connection.
#[derive(Debug)]
pub(crate) struct Hijacked {
    pub(crate) reader: BufReader<UnixStream>,
    pub(crate) writer: UnixStream,
}

/// The version in moby's refusal of a too new client ("client version 1.47
/// is too new. Maximum supported API version is 1.41").
fn max_version_of(message: &str) -> Option<String> {
    let (_, rest) = message.split_once("Maximum supported API version is ")?;
    let v: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    (!v.is_empty() && message.contains("too new")).then_some(v)
}

/// Characters left alone by [`encode_query`]; the rest are %-escaped.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

pub(crate) fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if is_unreserved(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Escapes a name for use inside a path; `/` and `:` stay literal because moby's routes take
/// `{name:.*}` (registry-qualified image names are sent as `/images/127.0.0.1:5000/a/b/json`).
pub(crate) fn encode_path(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if is_unreserved(b) || matches!(b, b'/' | b':' | b'@') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Builds `a=b&c=d`, skipping nothing: callers decide which parameters to send.
#[derive(Debug, Default)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub(crate) fn new() -> Query {
        Query::default()
    }
    pub(crate) fn add(mut self, key: &str, value: impl Into<String>) -> Query {
        self.0.push((key.to_string(), value.into()));
        self
    }
    pub(crate) fn add_if(self, cond: bool, key: &str, value: impl Into<String>) -> Query {
        if cond { self.add(key, value) } else { self }
    }
    pub(crate) fn render(&self) -> String {
        if self.0.is_empty() {
            return String::new();
        }
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| format!("{}={}", encode_query(k), encode_query(v)))
            .collect();
        format!("?{}", parts.join("&"))
    }
}

/// A request body.
pub(crate) enum Payload<'a> {
    None,
    Json(&'a serde_json::Value),
    /// A tar stream of unknown length, sent chunked (`load`, `import`).
    Tar(&'a mut dyn Read),
}

impl std::fmt::Debug for Payload<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Payload::None => f.write_str("None"),
            Payload::Json(v) => write!(f, "Json({v})"),
            Payload::Tar(_) => f.write_str("Tar(..)"),
        }
    }
}

impl Client {
    pub(crate) fn new(host: Host) -> Client {
        let pinned = std::env::var("DOCKER_API_VERSION")
            .ok()
            .filter(|v| !v.is_empty());
        Client {
            host,
            pinned: pinned.is_some(),
            version: pinned,
            ping: None,
        }
    }

    fn connect(&self) -> Result<UnixStream, Error> {
        UnixStream::connect(&self.host.socket).map_err(|source| Error::Connect {
            host: self.host.display.clone(),
            source,
        })
    }

    /// `HEAD /_ping` (GET when HEAD is not answered with 200/500), as the docker client does.
    pub(crate) fn ping(&mut self) -> Result<Ping, Error> {
        if let Some(p) = &self.ping {
            return Ok(p.clone());
        }
        let mut resp = self.raw_request("HEAD", "/_ping", &[], Payload::None)?;
        if resp.status != 200 && resp.status != 500 {
            resp = self.raw_request("GET", "/_ping", &[], Payload::None)?;
        }
        let ping = Ping {
            api_version: resp.header("api-version").map(str::to_string),
        };
        self.ping = Some(ping.clone());
        Ok(ping)
    }

    /// The API version in use, negotiating it on first use.
    pub(crate) fn version(&mut self) -> Result<String, Error> {
        if let Some(v) = &self.version {
            return Ok(v.clone());
        }
        let ping = self.ping()?;
        let server = ping
            .api_version
            .unwrap_or_else(|| FALLBACK_API_VERSION.to_string());
        let v = if version_less(&server, DEFAULT_API_VERSION) {
            server
        } else {
            DEFAULT_API_VERSION.to_string()
        };
        self.version = Some(v.clone());
        Ok(v)
    }

    pub(crate) fn is_pinned(&self) -> bool {
        self.pinned
    }

    /// Sends a versioned request and returns the response; statuses >= 400 become [`Error::Api`].
    pub(crate) fn request(
        &mut self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        payload: Payload<'_>,
    ) -> Result<Response, Error> {
        // Not negotiated yet and the body can be sent twice: skip the ping and
        // try our version; a daemon that is older says so, and the request
        // goes again with its version (one round trip saved on every
        // command against a current daemon).
        if self.version.is_none() && !matches!(payload, Payload::Tar(_)) {
            let replay = match &payload {
                Payload::Json(v) => Payload::Json(v),
                _ => Payload::None,
            };
            let path = format!("/v{DEFAULT_API_VERSION}{path_and_query}");
            let resp = self.raw_request(method, &path, headers, payload)?;
            // The daemon's version, when older than ours (moby sends it on
            // every answer, also the refusal).
            let older = resp
                .header("api-version")
                .filter(|v| version_less(v, DEFAULT_API_VERSION))
                .map(str::to_string);
            let result = resp.check();
            let refused = match &result {
                // A HEAD refusal has no body to name the version.
                Err(Error::Api {
                    status: 400,
                    message,
                }) => max_version_of(message).or_else(|| older.clone()),
                _ => None,
            };
            if let Some(v) = refused {
                self.version = Some(v);
                let path = format!("/v{}{}", self.version()?, path_and_query);
                return self.raw_request(method, &path, headers, replay)?.check();
            }
            self.version = Some(older.unwrap_or_else(|| DEFAULT_API_VERSION.to_string()));
            return result;
        }
        let path = format!("/v{}{}", self.version()?, path_and_query);
        let resp = self.raw_request(method, &path, headers, payload)?;
        resp.check()
    }

    pub(crate) fn get_json(&mut self, path: &str) -> Result<serde_json::Value, Error> {
        self.request("GET", path, &[], Payload::None)?.json()
    }

    pub(crate) fn post_json(
        &mut self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, Error> {
        self.request("POST", path, &[], Payload::Json(body))?.json()
    }

    /// A POST without a body whose answer is JSON (prune).
    pub(crate) fn post_empty(&mut self, path: &str) -> Result<serde_json::Value, Error> {
        self.request("POST", path, &[], Payload::None)?.json()
    }

    /// POST/DELETE whose body is ignored (204s and friends).
    pub(crate) fn call(&mut self, method: &str, path: &str) -> Result<Response, Error> {
        let mut resp = self.request(method, path, &[], Payload::None)?;
        resp.drain()?;
        Ok(resp)
    }

    fn raw_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        payload: Payload<'_>,
    ) -> Result<Response, Error> {
        let stream = self.connect()?;
        let io_err = |source| Error::Io {
            host: self.host.display.clone(),
            source,
        };
        let written = write_request(&stream, method, path, headers, payload);
        // a daemon may answer (with an error) before reading a streamed body: prefer its answer
        match read_response(stream, method == "HEAD") {
            Ok(resp) => Ok(resp),
            Err(e) => Err(io_err(written.err().unwrap_or(e))),
        }
    }

    /// Sends a request with `Connection: Upgrade` / `Upgrade: tcp` and returns the raw socket once
    /// the daemon answered 101 (or 200, which old daemons send and still hijack).
    pub(crate) fn hijack(
        &mut self,
        path_and_query: &str,
        payload: Payload<'_>,
    ) -> Result<Hijacked, Error> {
        let path = format!("/v{}{}", self.version()?, path_and_query);
        let stream = self.connect()?;
        let io_err = |source| Error::Io {
            host: self.host.display.clone(),
            source,
        };
        let headers = [("Connection", "Upgrade"), ("Upgrade", "tcp")];
        let headers: Vec<(&str, &str)> = if matches!(payload, Payload::None) {
            let mut h = headers.to_vec();
            h.push(("Content-Type", "text/plain"));
            h
        } else {
            headers.to_vec()
        };
        write_request(&stream, "POST", &path, &headers, payload).map_err(io_err)?;
        let writer = stream.try_clone().map_err(io_err)?;
        let mut reader = BufReader::new(stream);
        let (status, resp_headers) = read_head(&mut reader).map_err(io_err)?;
        if status == 101 || status == 200 {
            return Ok(Hijacked { reader, writer });
        }
        let framing = framing_of(&resp_headers, false, status);
        let resp = Response {
            status,
            headers: resp_headers,
            body: Body {
                conn: reader,
                framing,
            },
        };
        resp.check()?;
        Err(Error::UpgradeRefused(status))
    }
}

/// `a < b` for dotted API versions (`1.41` < `1.47`).
pub(crate) fn version_less(a: &str, b: &str) -> bool {
    let parse = |s: &str| {
        s.split('.')
            .map(|p| p.parse::<u64>().unwrap_or(0))
            .collect::<Vec<_>>()
    };
    parse(a) < parse(b)
}

fn write_request(
    mut stream: &UnixStream,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    payload: Payload<'_>,
) -> io::Result<()> {
    let body = match payload {
        Payload::None => None,
        Payload::Json(v) => Some(serde_json::to_vec(v).map_err(io::Error::other)?),
        Payload::Tar(reader) => return write_chunked(stream, method, path, headers, reader),
    };
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: berth-cli/{}\r\n",
        env!("CARGO_PKG_VERSION")
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    match &body {
        Some(b) => head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            b.len()
        )),
        None if method == "POST" || method == "PUT" => head.push_str("Content-Length: 0\r\n\r\n"),
        None => head.push_str("\r\n"),
    }
    let mut buf = head.into_bytes();
    if let Some(b) = body {
        buf.extend_from_slice(&b);
    }
    stream.write_all(&buf)
}

fn write_chunked(
    mut stream: &UnixStream,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    reader: &mut dyn Read,
) -> io::Result<()> {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: berth-cli/{}\r\n",
        env!("CARGO_PKG_VERSION")
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("Content-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\n\r\n");
    stream.write_all(head.as_bytes())?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        stream.write_all(format!("{n:x}\r\n").as_bytes())?;
        stream.write_all(&buf[..n])?;
        stream.write_all(b"\r\n")?;
    }
    stream.write_all(b"0\r\n\r\n")
}

fn read_head(conn: &mut BufReader<UnixStream>) -> io::Result<(u16, Vec<(String, String)>)> {
    let mut line = String::new();
    if conn.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "daemon closed the connection",
        ));
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad status line {line:?}"),
            )
        })?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        if conn.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated response head",
            ));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Ok((status, headers))
}

fn framing_of(headers: &[(String, String)], head_request: bool, status: u16) -> Framing {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if head_request || status == 204 || status == 304 || (100..200).contains(&status) {
        return Framing::Length(0);
    }
    if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        return Framing::Chunked {
            left_in_chunk: 0,
            done: false,
        };
    }
    match get("content-length").and_then(|v| v.parse().ok()) {
        Some(n) => Framing::Length(n),
        None => Framing::UntilClose,
    }
}

fn read_response(stream: UnixStream, head_request: bool) -> io::Result<Response> {
    let mut conn = BufReader::new(stream);
    let (status, headers) = read_head(&mut conn)?;
    let framing = framing_of(&headers, head_request, status);
    Ok(Response {
        status,
        headers,
        body: Body { conn, framing },
    })
}

impl Response {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Turns a >= 400 status into [`Error::Api`] with the daemon's message, as docker does: JSON
    /// `message` only when `Content-Type` is exactly `application/json`, the raw body otherwise.
    pub(crate) fn check(mut self) -> Result<Response, Error> {
        if self.status < 400 {
            return Ok(self);
        }
        let mut raw = Vec::new();
        let _ = self.body.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw).trim().to_string();
        let message = if self.header("content-type") == Some("application/json") && !text.is_empty()
        {
            serde_json::from_slice::<serde_json::Value>(&raw)
                .ok()
                .and_then(|v| {
                    v.get("message")
                        .and_then(|m| m.as_str())
                        .map(str::to_string)
                })
                .unwrap_or(text)
        } else if text.is_empty() {
            format!("status code {}", self.status)
        } else {
            text
        };
        Err(Error::Api {
            status: self.status,
            message,
        })
    }

    pub(crate) fn json(mut self) -> Result<serde_json::Value, Error> {
        let mut raw = Vec::new();
        self.body.read_to_end(&mut raw).map_err(Error::Stream)?;
        if raw.iter().all(u8::is_ascii_whitespace) {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&raw).map_err(|e| Error::BadJson(e.to_string()))
    }

    pub(crate) fn drain(&mut self) -> Result<(), Error> {
        io::copy(&mut self.body, &mut io::sink()).map_err(Error::Stream)?;
        Ok(())
    }

    pub(crate) fn into_body(self) -> Body {
        self.body
    }

    /// Iterates over a stream of JSON documents (events, pull progress, wait).
    pub(crate) fn json_stream(self) -> impl Iterator<Item = Result<serde_json::Value, Error>> {
        serde_json::Deserializer::from_reader(self.body)
            .into_iter::<serde_json::Value>()
            .map(|r| r.map_err(|e| Error::BadJson(e.to_string())))
    }
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.framing {
            Framing::Length(0) => Ok(0),
            Framing::Length(left) => {
                let max = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                let n = self.conn.read(&mut buf[..max])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "body truncated",
                    ));
                }
                *left -= n as u64;
                Ok(n)
            }
            Framing::UntilClose => self.conn.read(buf),
            Framing::Chunked { done: true, .. } => Ok(0),
            Framing::Chunked {
                left_in_chunk,
                done,
            } => {
                if *left_in_chunk == 0 {
                    let mut line = String::new();
                    self.conn.read_line(&mut line)?;
                    if line == "\r\n" || line == "\n" {
                        // the CRLF that ends the previous chunk
                        line.clear();
                        self.conn.read_line(&mut line)?;
                    }
                    if line.is_empty() {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "chunked body truncated",
                        ));
                    }
                    let size = line.trim().split(';').next().unwrap_or("");
                    let size = u64::from_str_radix(size, 16).map_err(|_| {
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("bad chunk size {line:?}"),
                        )
                    })?;
                    if size == 0 {
                        // trailers until the empty line
                        loop {
                            line.clear();
                            if self.conn.read_line(&mut line)? == 0 || line.trim().is_empty() {
                                break;
                            }
                        }
                        *done = true;
                        return Ok(0);
                    }
                    *left_in_chunk = size;
                }
                let max = buf
                    .len()
                    .min(usize::try_from(*left_in_chunk).unwrap_or(usize::MAX));
                let n = self.conn.read(&mut buf[..max])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "chunk truncated",
                    ));
                }
                *left_in_chunk -= n as u64;
                Ok(n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(version_less("1.9", "1.47"));
        assert!(version_less("1.41", "1.47"));
        assert!(!version_less("1.51", "1.47"));
        assert!(!version_less("1.47", "1.47"));
    }

    #[test]
    fn too_new_refusals_name_the_daemons_version() {
        let moby = "client version 1.47 is too new. Maximum supported API version is 1.41";
        assert_eq!(max_version_of(moby).as_deref(), Some("1.41"));
        let too_old = "client version 1.10 is too old. Minimum supported API version is 1.24, \
                       please upgrade your client to a newer version";
        assert_eq!(max_version_of(too_old), None);
        assert_eq!(max_version_of("No such container: x"), None);
    }

    #[test]
    fn query_and_path_escaping() {
        let q = Query::new()
            .add("filters", r#"{"name":{"web":true}}"#)
            .add("all", "1");
        assert_eq!(
            q.render(),
            "?filters=%7B%22name%22%3A%7B%22web%22%3Atrue%7D%7D&all=1"
        );
        assert_eq!(encode_path("127.0.0.1:5000/a b"), "127.0.0.1:5000/a%20b");
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        let (a, b) = UnixStream::pair().unwrap();
        let raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n3\r\n1}\n\r\n0\r\n\r\n";
        (&a).write_all(raw.as_bytes()).unwrap();
        drop(a);
        let resp = read_response(b, false).unwrap();
        let docs: Vec<_> = resp.json_stream().collect::<Result<_, _>>().unwrap();
        assert_eq!(docs, vec![serde_json::json!({"a": 1})]);
    }

    #[test]
    fn json_errors_become_messages_only_for_exact_content_type() {
        for (ctype, want) in [
            ("application/json", "No such container: x"),
            ("text/plain", r#"{"message":"No such container: x"}"#),
        ] {
            let (a, b) = UnixStream::pair().unwrap();
            let body = r#"{"message":"No such container: x"}"#;
            let raw = format!(
                "HTTP/1.1 404 Not Found\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            (&a).write_all(raw.as_bytes()).unwrap();
            let err = read_response(b, false).unwrap().check().unwrap_err();
            assert_eq!(err.to_string(), want);
        }
    }
}

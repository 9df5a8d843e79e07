//! Servers for the pull tests besides berth-testkit's real registry: a
//! canned-answer HTTP server for what a real registry refuses to store (a
//! manifest that is not JSON), a throttling TCP proxy that makes a download
//! last long enough to interrupt, and a token service for a registry with
//! `auth: token`.

#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A loopback TCP listener whose accept loop runs on a thread until drop.
#[derive(Debug)]
struct Acceptor {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Acceptor {
    fn start(handle: impl Fn(TcpStream) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let handle = Arc::new(handle);
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    let handle = handle.clone();
                    std::thread::spawn(move || handle(conn));
                }
            })
        };
        Self {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers every HTTP request with the same status, headers and body.
#[derive(Debug)]
pub struct CannedServer {
    acceptor: Acceptor,
}

impl CannedServer {
    pub fn start(content_type: &'static str, body: &'static [u8]) -> Self {
        let acceptor = Acceptor::start(move |mut conn| {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match conn.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => return,
                }
            }
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(response.as_bytes());
            let _ = conn.write_all(body);
        });
        Self { acceptor }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.acceptor.port)
    }
}

/// A TCP proxy to `upstream` that, while `slow` is set, passes the answers
/// on at about 4 MiB/s, and records whether a request asked for a range.
#[derive(Debug)]
pub struct ThrottleProxy {
    acceptor: Acceptor,
    pub slow: Arc<AtomicBool>,
    pub saw_range: Arc<AtomicBool>,
}

impl ThrottleProxy {
    pub fn start(upstream: u16) -> Self {
        let slow = Arc::new(AtomicBool::new(true));
        let saw_range = Arc::new(AtomicBool::new(false));
        let (s, r) = (slow.clone(), saw_range.clone());
        let acceptor = Acceptor::start(move |client| {
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                return;
            };
            let (mut c_read, mut s_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            let saw_range = r.clone();
            let up = std::thread::spawn(move || {
                let mut buf = [0u8; 16 << 10];
                while let Ok(n) = c_read.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let text = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
                    if text.contains("\r\nrange: bytes=") {
                        saw_range.store(true, Ordering::SeqCst);
                    }
                    if s_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = s_write.shutdown(Shutdown::Write);
            });
            let (mut s_read, mut c_write) = (server, client);
            let mut buf = [0u8; 64 << 10];
            while let Ok(n) = s_read.read(&mut buf) {
                if n == 0 || c_write.write_all(&buf[..n]).is_err() {
                    break;
                }
                if s.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(15));
                }
            }
            let _ = c_write.shutdown(Shutdown::Both);
            let _ = up.join();
        });
        Self {
            acceptor,
            slow,
            saw_range,
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.acceptor.port)
    }
}

/// A token service for a registry with `auth: token`: a self-signed RSA
/// certificate (made with `openssl`) that the registry trusts, and one JWT
/// signed with it granting pull and push on `repository`, which the
/// service hands out to every request.
#[derive(Debug)]
pub struct TokenService {
    pub server: CannedServer,
    /// The registry's `auth:` section.
    pub auth: String,
    dir: tempfile::TempDir,
}

const TOKEN_SERVICE: &str = "berth-test-registry";
const TOKEN_ISSUER: &str = "berth-test-issuer";

fn b64(data: &[u8], url: bool) -> String {
    let table: &[u8; 64] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(table[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        if !url {
            out.push_str(&"=".repeat(3 - chunk.len()));
        }
    }
    out
}

fn openssl(args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running openssl");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

impl TokenService {
    pub fn start(repository: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        let (key_s, cert_s) = (key.to_str().unwrap(), cert.to_str().unwrap());
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=berth-test-token",
                "-keyout",
                key_s,
                "-out",
                cert_s,
            ],
            None,
        );
        let der = openssl(&["x509", "-in", cert_s, "-outform", "DER"], None);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [b64(&der, false)]});
        let claims = serde_json::json!({
            "iss": TOKEN_ISSUER, "sub": "berth", "aud": TOKEN_SERVICE,
            "exp": now + 3600, "nbf": now - 60, "iat": now - 60, "jti": "berth-test",
            "access": [{"type": "repository", "name": repository, "actions": ["pull", "push"]}],
        });
        let signing_input = format!(
            "{}.{}",
            b64(&serde_json::to_vec(&header).unwrap(), true),
            b64(&serde_json::to_vec(&claims).unwrap(), true)
        );
        let signature = openssl(
            &["dgst", "-sha256", "-sign", key_s],
            Some(signing_input.as_bytes()),
        );
        let token = format!("{signing_input}.{}", b64(&signature, true));
        let body = serde_json::json!({"token": token, "access_token": token, "expires_in": 3600});
        let body: &'static [u8] = Box::leak(serde_json::to_vec(&body).unwrap().into_boxed_slice());
        let server = CannedServer::start("application/json", body);
        let auth = format!(
            "auth:\n  token:\n    realm: http://{}/token\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {cert_s}\n",
            server.host()
        );
        Self { server, auth, dir }
    }
}

//! `port-throughput`: 1 GiB from busybox `httpd` in a container, through a
//! port published with `-p 127.0.0.1:<host port>:8080`, to a client on the
//! host side of that port:
//!
//! - `berth`: a private berthd with its default bridge. Its path is the
//!   kernel's: DNAT in the `output` hook of its nftables table,
//!   `route_localnet` on `berth0` and a masquerade of 127.0.0.0/8, no
//!   userland proxy;
//! - `docker`: a private dockerd with its default bridge and its default
//!   userland proxy: `docker-proxy` accepts on 127.0.0.1 and copies each
//!   byte to the container through a second connection.
//!
//! Both daemons run in the fleet's private network namespace, and so does
//! the client: a thread of berth-perf joins it, connects, sends `GET /big`
//! and reads exactly 1 GiB, timed from the connect to the last byte. The
//! server is one container per engine, started before the rounds
//! (unmeasured) and removed after them; the file is a sparse file on a
//! tmpfs, so no disk is read and `httpd` sends zero pages.

use std::fs::{self, File};
use std::io::{self, Read, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};

use super::fleet::{Client, Fleet, IMAGE, run_ok};
use super::{Context, Sample, Scenario, rounds};
use crate::engine::BERTH;
use crate::report::ScenarioReport;

/// Bytes per transfer: 1 GiB.
const TRANSFER_BYTES: u64 = 1 << 30;
/// Where `httpd` listens in the container.
const CONTAINER_PORT: u16 = 8080;
/// Host ports in the private namespace, one per engine: both daemons
/// publish in the same namespace.
const BERTH_PORT: u16 = 18080;
const DOCKER_PORT: u16 = 18081;
/// The client's read buffer: large reads keep the client's own cost small.
const READ_BUF: usize = 1 << 20;
/// An HTTP response header longer than this is an error.
const MAX_HEAD: usize = 8192;
/// Between two readiness probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(20);

#[derive(Debug)]
pub(crate) struct PortThroughput;

impl Scenario for PortThroughput {
    fn name(&self) -> &'static str {
        "port-throughput"
    }

    fn description(&self, ctx: &Context) -> String {
        format!(
            "1 GiB (2^30 bytes) from busybox `httpd` in a container (a sparse file on a \
             tmpfs) through `-p 127.0.0.1:<port>:{CONTAINER_PORT}`, read by a client in \
             berth-perf from the host side of the port, timed from connect to the last byte. \
             `berth` = a private berthd with its default bridge (kernel DNAT, no proxy); \
             `docker` = a private dockerd with its default bridge and userland proxy \
             (docker-proxy). Both daemons and the client run in one private network \
             namespace. Metrics `transfer` (ms per GiB) and `throughput` (MB/s, 10^6 bytes \
             per second; for this unit a ratio above 1 means faster than the baseline). One \
             server container per engine, started before the runs. {} runs per engine after {} \
             warm-up, interleaved.",
            ctx.runs, ctx.warmup
        )
    }

    fn run(&self, ctx: &Context) -> anyhow::Result<ScenarioReport> {
        let dir = ctx.work.join(self.name());
        let fleet = Fleet::start(ctx, &dir)?;
        let mut notes = fleet.setup_notes();
        let netns = fleet.netns_path();

        let berth = fleet
            .berth_cli
            .clone()
            .and_then(|cli| {
                let socket = fleet.berthd_socket()?;
                let ns = netns.clone()?;
                if let Some(why) = fleet.berthd_no_bridge() {
                    return Err(why);
                }
                Server::start(Client::Berth(cli), socket, ns, BERTH_PORT, ctx)
                    .map_err(|e| format!("{e:#}"))
            })
            .inspect(|_| {
                notes.push(format!(
                    "berth: 127.0.0.1:{BERTH_PORT} is forwarded by berthd's nftables DNAT \
                     (output hook, route_localnet on berth0, masquerade of 127.0.0.0/8); \
                     no userland proxy"
                ));
            });
        let docker = fleet
            .dockerd
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|d| {
                if let Some(why) = &d.no_bridge {
                    return Err(why.clone());
                }
                let ns = netns.clone()?;
                Server::start(
                    Client::Docker,
                    d.daemon.socket().to_path_buf(),
                    ns,
                    DOCKER_PORT,
                    ctx,
                )
                .map_err(|e| format!("{e:#}"))
            })
            .inspect(|_| notes.push(docker_path_note(DOCKER_PORT)));

        let engines = rounds(
            ctx,
            self.name(),
            vec![(BERTH, berth), ("docker", docker)],
            |server, _| {
                let t = server.fetch("/big", TRANSFER_BYTES)?;
                Ok(vec![
                    Sample::time("transfer", t.elapsed.as_secs_f64() * 1e3),
                    Sample::throughput("throughput", t.mb_per_s()),
                ])
            },
        );

        notes.extend(fleet.shutdown(ctx));
        Ok(ScenarioReport::finished(
            self.name(),
            self.description(ctx),
            engines,
            notes,
        ))
    }
}

/// A busybox `httpd` container serving `/big` (1 GiB) and `/ready` on a
/// published port; removed on drop.
#[derive(Debug)]
struct Server {
    client: Client,
    socket: PathBuf,
    name: String,
    /// The published address, in `netns`.
    addr: SocketAddr,
    netns: PathBuf,
    timeout: Duration,
}

impl Server {
    /// Starts the container on `host_port` and waits until `/ready` comes
    /// back through the published port.
    fn start(
        client: Client,
        socket: PathBuf,
        netns: PathBuf,
        host_port: u16,
        ctx: &Context,
    ) -> anyhow::Result<Self> {
        let name = format!("{}httpd-{host_port}", ctx.id_prefix);
        let script = format!(
            "truncate -s {TRANSFER_BYTES} /srv/big && echo ok > /srv/ready && \
             exec httpd -f -p {CONTAINER_PORT} -h /srv"
        );
        let mut cmd = client.command(&socket);
        cmd.args(["run", "--detach", "--name", &name, "--tmpfs", "/srv"])
            .arg("--publish")
            .arg(format!("127.0.0.1:{host_port}:{CONTAINER_PORT}"))
            .args([IMAGE, "sh", "-c", &script]);
        run_ok(&mut cmd, "run --detach of the httpd container", ctx.timeout)?;
        // From here on, drop removes the container.
        let server = Self {
            client,
            socket,
            name,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, host_port)),
            netns,
            timeout: ctx.timeout,
        };
        server.wait_ready()?;
        Ok(server)
    }

    /// Probes `/ready` until it answers: a proxy may accept before the
    /// container listens, and the rules may trail the start.
    fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + self.timeout;
        loop {
            match self.fetch("/ready", "ok\n".len() as u64) {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    return Err(e.context(format!(
                        "{} not answering on {} after {:?}",
                        self.name, self.addr, self.timeout
                    )));
                }
                Err(_) => thread::sleep(PROBE_INTERVAL),
            }
        }
    }

    /// `GET <path>` through the published port, from inside the namespace.
    fn fetch(&self, path: &str, expected: u64) -> anyhow::Result<Transfer> {
        in_netns(&self.netns, || {
            fetch(self.addr, path, expected, self.timeout)
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let mut rm = self.client.command(&self.socket);
        rm.args(["rm", "--force", &self.name]);
        let _ = run_ok(&mut rm, "rm --force of the httpd container", self.timeout);
    }
}

/// Runs `f` on a new thread that has joined the network namespace at `ns`
/// (the calling thread stays where it is).
fn in_netns<T: Send>(ns: &Path, f: impl FnOnce() -> anyhow::Result<T> + Send) -> anyhow::Result<T> {
    let file = File::open(ns).with_context(|| format!("opening {}", ns.display()))?;
    thread::scope(|s| {
        s.spawn(move || {
            crate::sys::enter_netns(&file).with_context(|| format!("joining {}", ns.display()))?;
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(anyhow!("the client thread panicked")))
    })
}

/// One timed transfer.
#[derive(Debug, Clone, Copy)]
struct Transfer {
    /// Body bytes received.
    bytes: u64,
    /// From the start of the connect to the last byte.
    elapsed: Duration,
}

impl Transfer {
    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64()
    }
}

/// `GET <path>` (HTTP/1.0) over a new connection to `addr`; an error
/// unless the answer is 200 with exactly `expected` body bytes. `timeout`
/// bounds the connect and every read.
fn fetch(
    addr: SocketAddr,
    path: &str,
    expected: u64,
    timeout: Duration,
) -> anyhow::Result<Transfer> {
    let mut buf = vec![0u8; READ_BUF];
    let start = Instant::now();
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .with_context(|| format!("sending the request to {addr}"))?;
    let bytes = read_response(&mut stream, expected, &mut buf)
        .with_context(|| format!("GET {path} from {addr}"))?;
    Ok(Transfer {
        bytes,
        elapsed: start.elapsed(),
    })
}

/// Reads an HTTP response from `r` with `buf` as the read buffer: the
/// header must say 200 (and, if it has one, a Content-Length of
/// `expected`), then exactly `expected` body bytes are read, counted and
/// dropped. Returns the body bytes read.
fn read_response(r: &mut impl Read, expected: u64, buf: &mut [u8]) -> anyhow::Result<u64> {
    let head_cap = MAX_HEAD.min(buf.len());
    let mut filled = 0;
    let (head_len, content_length) = loop {
        let n = read_some(r, &mut buf[filled..head_cap])?;
        if n == 0 {
            bail!("connection closed after {filled} bytes, before the end of the HTTP header");
        }
        filled += n;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        match response
            .parse(&buf[..filled])
            .context("parsing the HTTP response header")?
        {
            httparse::Status::Complete(len) => {
                let code = response.code.unwrap_or(0);
                if code != 200 {
                    bail!("HTTP status {code} {}", response.reason.unwrap_or(""));
                }
                let length = response
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .map(|h| {
                        std::str::from_utf8(h.value)
                            .ok()
                            .and_then(|v| v.trim().parse::<u64>().ok())
                            .ok_or_else(|| {
                                anyhow!("bad Content-Length {:?}", String::from_utf8_lossy(h.value))
                            })
                    })
                    .transpose()?;
                break (len, length);
            }
            httparse::Status::Partial if filled == head_cap => {
                bail!("no end of the HTTP header in the first {head_cap} bytes")
            }
            httparse::Status::Partial => {}
        }
    };
    if let Some(length) = content_length
        && length != expected
    {
        bail!("Content-Length is {length}, expected {expected}");
    }
    let mut body = (filled - head_len) as u64;
    while body < expected {
        let want = usize::try_from(expected - body).map_or(buf.len(), |left| left.min(buf.len()));
        let n = read_some(r, &mut buf[..want])?;
        if n == 0 {
            bail!("connection closed after {body} of {expected} body bytes");
        }
        body += n as u64;
    }
    if body > expected {
        bail!("{body} body bytes, expected {expected}");
    }
    Ok(body)
}

/// One `read`, retried on EINTR.
fn read_some(r: &mut impl Read, buf: &mut [u8]) -> anyhow::Result<usize> {
    loop {
        match r.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(e).context("reading: no data within the timeout");
            }
            Err(e) => return Err(e).context("reading"),
        }
    }
}

/// What carries docker's 127.0.0.1 port: docker-proxy (found by its
/// command line) or, if none listens for it, the kernel's DNAT.
fn docker_path_note(port: u16) -> String {
    let proxy = docker_proxy_for(port);
    match proxy {
        Some(pid) => format!(
            "docker: 127.0.0.1:{port} is served by docker-proxy (pid {pid}), dockerd's \
             default userland proxy, which copies every byte to the container over a second \
             TCP connection"
        ),
        None => format!(
            "docker: no docker-proxy found for 127.0.0.1:{port}: dockerd's iptables DNAT \
             carries it"
        ),
    }
}

/// The pid of a `docker-proxy` whose arguments name host port `port`.
fn docker_proxy_for(port: u16) -> Option<u32> {
    let port = port.to_string();
    fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = fs::read(e.path().join("cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        let is_proxy = args.first().is_some_and(|a| a.ends_with(b"docker-proxy"));
        let names_port = args
            .windows(2)
            .any(|w| w[0] == b"-host-port" && w[1] == port.as_bytes());
        (is_proxy && names_port).then_some(pid)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::net::TcpListener;

    /// Hands out at most `step` bytes per read, as a socket may.
    struct Trickle {
        inner: Cursor<Vec<u8>>,
        step: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.step);
            self.inner.read(&mut buf[..n])
        }
    }

    fn response(head: &str, body_len: usize) -> Vec<u8> {
        let mut v = head.as_bytes().to_vec();
        v.extend(std::iter::repeat_n(0u8, body_len));
        v
    }

    fn read_all(bytes: Vec<u8>, expected: u64, step: usize) -> anyhow::Result<u64> {
        let mut r = Trickle {
            inner: Cursor::new(bytes),
            step,
        };
        read_response(&mut r, expected, &mut [0u8; 4096])
    }

    #[test]
    fn counts_exactly_the_body_in_any_read_sizes() {
        let ok = "HTTP/1.1 200 OK\r\nContent-Length: 10000\r\nConnection: close\r\n\r\n";
        for step in [1, 7, 64, 4096] {
            assert_eq!(
                read_all(response(ok, 10_000), 10_000, step).unwrap(),
                10_000
            );
        }
        // No Content-Length: the count alone decides.
        let bare = "HTTP/1.0 200 OK\r\n\r\n";
        assert_eq!(read_all(response(bare, 5000), 5000, 300).unwrap(), 5000);
    }

    #[test]
    fn a_short_body_is_an_error_naming_the_count() {
        let head = "HTTP/1.1 200 OK\r\n\r\n";
        let err = read_all(response(head, 999), 1000, 100).unwrap_err();
        assert!(
            format!("{err:#}").contains("closed after 999 of 1000 body bytes"),
            "{err:#}"
        );
    }

    #[test]
    fn bad_answers_are_errors_naming_what_was_wrong() {
        let not_found = read_all(response("HTTP/1.1 404 Not Found\r\n\r\n", 0), 10, 64);
        assert!(format!("{:#}", not_found.unwrap_err()).contains("HTTP status 404 Not Found"));

        let wrong_length = "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n";
        let err = read_all(response(wrong_length, 12), 10, 64).unwrap_err();
        assert!(
            format!("{err:#}").contains("Content-Length is 12, expected 10"),
            "{err:#}"
        );

        let cut = read_all(b"HTTP/1.1 200 OK\r\nServer: x".to_vec(), 10, 5).unwrap_err();
        assert!(
            format!("{cut:#}").contains("before the end of the HTTP header"),
            "{cut:#}"
        );

        let endless = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        let err = read_all(endless.into_bytes(), 10, 4096).unwrap_err();
        assert!(
            format!("{err:#}").contains("no end of the HTTP header"),
            "{err:#}"
        );

        let err = read_all(response("HTTP/1.1 200 OK\r\n\r\n", 20), 10, 64).unwrap_err();
        assert!(
            format!("{err:#}").contains("20 body bytes, expected 10"),
            "{err:#}"
        );
    }

    #[test]
    fn fetch_reads_a_real_loopback_answer() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let body_len = 3 * READ_BUF + 17;
        let server = thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = [0u8; 256];
            let n = conn.read(&mut request).unwrap();
            let head = format!("HTTP/1.0 200 OK\r\nContent-Length: {body_len}\r\n\r\n");
            conn.write_all(&response(&head, body_len)).unwrap();
            String::from_utf8_lossy(&request[..n]).into_owned()
        });
        let t = fetch(addr, "/big", body_len as u64, Duration::from_secs(10)).unwrap();
        assert_eq!(t.bytes, body_len as u64);
        assert!(t.mb_per_s() > 0.0);
        let request = server.join().unwrap();
        assert!(request.starts_with("GET /big HTTP/1.0\r\n"), "{request:?}");
    }

    #[test]
    fn throughput_is_decimal_megabytes_per_second() {
        let t = Transfer {
            bytes: 2_000_000,
            elapsed: Duration::from_millis(500),
        };
        assert!((t.mb_per_s() - 4.0).abs() < 1e-9);
    }
}

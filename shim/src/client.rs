//! The daemon's side: start a shim, reconnect to one, send it requests.
//!
//! Blocking calls (berthd runs them in `spawn_blocking`). Every request
//! opens its own connection, so a [`Client`] is cheap to clone and share,
//! and any number of callers can `wait` or `attach` at once.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use oci_spec::runtime::Process;

use crate::protocol::{
    self, ContainerInfo, ErrorKind, ExitInfo, Request, Response, frame, socket_path,
};
use crate::sys;

/// How long `spawn` waits for the shim to create the container.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("starting shim {binary}: {source}")]
    Spawn { binary: PathBuf, source: io::Error },
    #[error("shim for container {id:?} exited before it was ready: {detail}")]
    ShimExited { id: String, detail: String },
    #[error("connecting to shim at {path}: {source}")]
    Connect { path: PathBuf, source: io::Error },
    #[error("{op} (shim at {path}): {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("unexpected answer from shim at {path}: {detail}")]
    Protocol { path: PathBuf, detail: String },
    /// The shim's own error (the container's create or exec failing, a
    /// request that does not fit the container's state...).
    #[error("{message}")]
    Shim {
        kind: ErrorKind,
        message: String,
        /// For a process that could not start: docker's exit code for it.
        exit_code: Option<i32>,
    },
}

impl ClientError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Shim { kind, .. } => *kind,
            Self::Connect { source, .. }
                if matches!(
                    source.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                ) =>
            {
                ErrorKind::NotFound
            }
            _ => ErrorKind::Internal,
        }
    }

    /// The exit code docker gives a container whose process could not be
    /// started (127: not found, 126: not executable).
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            Self::Shim { exit_code, .. } => *exit_code,
            _ => None,
        }
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Rotation settings for the json-file log.
#[derive(Debug, Clone)]
pub struct LogOptions {
    pub path: PathBuf,
    /// Rotate when the file would grow past this many bytes; 0: never.
    pub max_size: u64,
    /// How many files to keep, the live one included (docker's max-file).
    pub max_files: u32,
}

#[derive(Debug, Clone)]
pub struct SpawnOptions {
    /// The `berth-shim` executable.
    pub binary: PathBuf,
    pub bundle: PathBuf,
    pub id: String,
    /// Where the shim keeps its socket, exit record and diagnostics.
    pub state_dir: PathBuf,
    /// berth-runtime's state root; the runtime's default if unset.
    pub runtime_root: Option<PathBuf>,
    pub log: Option<LogOptions>,
    /// The spec's `process.terminal`: the shim holds a pty master.
    pub tty: bool,
    /// Keep the container's stdin open for attach.
    pub stdin: bool,
}

/// A handle on one shim: its state directory.
#[derive(Debug, Clone)]
pub struct Client {
    state_dir: PathBuf,
    socket: PathBuf,
    shim_pid: i32,
    /// The container's init as the create reported it (`None` after a
    /// reconnect).
    created_pid: Option<i32>,
}

/// Starts a shim that creates the container (not yet started) and returns
/// once the container exists, or with the create error.
pub fn spawn(opts: &SpawnOptions) -> Result<Client> {
    let io_err = |op, source| ClientError::Io {
        op,
        path: opts.state_dir.clone(),
        source,
    };
    fs::create_dir_all(&opts.state_dir).map_err(|e| io_err("creating state dir", e))?;
    let stderr = OpenOptions::new()
        .create(true)
        .append(true)
        .open(protocol::log_path(&opts.state_dir))
        .map_err(|e| io_err("opening shim log", e))?;
    let mut cmd = Command::new(&opts.binary);
    cmd.args(shim_args(opts));
    let ours = start_detached(cmd, Stdio::from(stderr)).map_err(|e| match e {
        StartError::Socket(e) => io_err("socketpair", e),
        StartError::Spawn(source) => ClientError::Spawn {
            binary: opts.binary.clone(),
            source,
        },
    })?;
    await_ready(ours, opts)
}

/// A shim started ahead of time, waiting for its container's arguments:
/// a container's start then skips the shim's exec, dynamic loading and
/// fork (~2 ms). It exits when the socket closes (its daemon went away).
#[derive(Debug)]
pub struct Standby {
    socket: UnixStream,
}

impl Standby {
    /// Starts `binary --standby <tag>`; `tag` (e.g. the daemon's exec
    /// root) names whose standby it is in the process list.
    pub fn start(binary: &Path, tag: &Path) -> Result<Standby> {
        let mut cmd = Command::new(binary);
        cmd.arg("--standby").arg(tag);
        let socket = start_detached(cmd, Stdio::null()).map_err(|e| match e {
            StartError::Socket(source) => ClientError::Io {
                op: "socketpair",
                path: tag.to_owned(),
                source,
            },
            StartError::Spawn(source) => ClientError::Spawn {
                binary: binary.to_owned(),
                source,
            },
        })?;
        Ok(Standby { socket })
    }

    /// [`spawn`] through this standby shim. `Err(self)` when it is gone
    /// before it took the arguments (spawn a fresh shim instead).
    pub fn spawn(self, opts: &SpawnOptions) -> std::result::Result<Result<Client>, Standby> {
        if let Err(e) = fs::create_dir_all(&opts.state_dir) {
            return Ok(Err(ClientError::Io {
                op: "creating state dir",
                path: opts.state_dir.clone(),
                source: e,
            }));
        }
        let args: Vec<String> = shim_args(opts)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let mut line = serde_json::to_vec(&args).expect("strings serialize");
        line.push(b'\n');
        if sys::send_with_fds(self.socket.as_raw_fd(), &line, &[]).is_err() {
            return Err(self);
        }
        Ok(await_ready(self.socket, opts))
    }
}

enum StartError {
    Socket(io::Error),
    Spawn(io::Error),
}

/// Starts a shim whose stdout is a socket to us and reaps its first
/// process (the shim forks to leave our process tree); our end back.
fn start_detached(mut cmd: Command, stderr: Stdio) -> std::result::Result<UnixStream, StartError> {
    // The shim answers on a socket, not a pipe: it writes with
    // MSG_NOSIGNAL, so a vanished daemon cannot kill it with SIGPIPE.
    let (ours, theirs) = UnixStream::pair().map_err(StartError::Socket)?;
    // glibc's per-thread cache keeps freed chunks that `malloc_trim` cannot
    // return: creating the container leaves ~110 KiB there, for the life
    // of an idle shim. Without it an idle shim's private memory is ~40%
    // smaller. (The container's processes get the spec's environment.)
    cmd.env("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(OwnedFd::from(theirs)))
        .stderr(stderr);
    let mut child = cmd.spawn().map_err(StartError::Spawn)?;
    drop(cmd);
    // The shim forks and its first process exits at once: reap it.
    let _ = child.wait();
    Ok(ours)
}

/// The shim's flags for `opts`.
fn shim_args(opts: &SpawnOptions) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec![
        "--bundle".into(),
        opts.bundle.clone().into(),
        "--id".into(),
        opts.id.clone().into(),
        "--state-dir".into(),
        opts.state_dir.clone().into(),
    ];
    if let Some(root) = &opts.runtime_root {
        args.extend(["--runtime-root".into(), root.clone().into()]);
    }
    if let Some(log) = &opts.log {
        args.extend([
            "--log-path".into(),
            log.path.clone().into(),
            "--log-max-size".into(),
            log.max_size.to_string().into(),
            "--log-max-files".into(),
            log.max_files.to_string().into(),
        ]);
    }
    if opts.tty {
        args.push("--tty".into());
    }
    if opts.stdin {
        args.push("--stdin".into());
    }
    args
}

/// Waits for the shim's first answer: ready once the container exists,
/// or the create error.
fn await_ready(ours: UnixStream, opts: &SpawnOptions) -> Result<Client> {
    ours.set_read_timeout(Some(READY_TIMEOUT))
        .map_err(|e| ClientError::Io {
            op: "setting timeout",
            path: opts.state_dir.clone(),
            source: e,
        })?;
    let mut conn = Conn::new(ours, socket_path(&opts.state_dir));
    let (resp, _) = match conn.read_response() {
        Ok(r) => r,
        Err(e) => {
            let log = fs::read_to_string(protocol::log_path(&opts.state_dir)).unwrap_or_default();
            return Err(ClientError::ShimExited {
                id: opts.id.clone(),
                detail: format!("{e}; shim log: {}", log.trim()),
            });
        }
    };
    match resp {
        Response::Ready { pid, shim_pid } => Ok(Client {
            socket: socket_path(&opts.state_dir),
            state_dir: opts.state_dir.clone(),
            shim_pid,
            created_pid: Some(pid),
        }),
        Response::Error {
            kind,
            message,
            exit_code,
        } => Err(ClientError::Shim {
            kind,
            message,
            exit_code,
        }),
        other => Err(conn.unexpected(other)),
    }
}

/// Reconnects to the shim of `state_dir` (after a daemon restart).
pub fn connect(state_dir: &Path) -> Result<Client> {
    let mut c = Client {
        state_dir: state_dir.to_path_buf(),
        socket: socket_path(state_dir),
        shim_pid: 0,
        created_pid: None,
    };
    c.shim_pid = c.state()?.shim_pid;
    Ok(c)
}

/// The exit record a shim left in `state_dir`, if the container exited:
/// readable when the shim is gone.
pub fn read_exit(state_dir: &Path) -> Result<Option<ExitInfo>> {
    let path = protocol::exit_path(state_dir);
    match fs::read(&path) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| ClientError::Protocol {
                path,
                detail: e.to_string(),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ClientError::Io {
            op: "reading exit record",
            path,
            source: e,
        }),
    }
}

impl Client {
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    pub fn shim_pid(&self) -> i32 {
        self.shim_pid
    }

    /// The pid of the container's init from the create, which a start
    /// keeps (saves asking [`Client::state`]); `None` after [`connect`].
    pub fn created_pid(&self) -> Option<i32> {
        self.created_pid
    }

    fn request(&self, req: &Request) -> Result<(Conn, Response, Vec<OwnedFd>)> {
        let stream = UnixStream::connect(&self.socket).map_err(|e| ClientError::Connect {
            path: self.socket.clone(),
            source: e,
        })?;
        let mut line = serde_json::to_vec(req).expect("requests serialize");
        line.push(b'\n');
        sys::send_with_fds(stream.as_raw_fd(), &line, &[]).map_err(|e| ClientError::Io {
            op: "sending request",
            path: self.socket.clone(),
            source: e,
        })?;
        let mut conn = Conn::new(stream, self.socket.clone());
        let (resp, fds) = conn.read_response()?;
        if let Response::Error {
            kind,
            message,
            exit_code,
        } = resp
        {
            return Err(ClientError::Shim {
                kind,
                message,
                exit_code,
            });
        }
        Ok((conn, resp, fds))
    }

    fn expect_ok(&self, req: &Request) -> Result<()> {
        match self.request(req)? {
            (_, Response::Ok, _) => Ok(()),
            (conn, other, _) => Err(conn.unexpected(other)),
        }
    }

    pub fn start(&self) -> Result<()> {
        self.expect_ok(&Request::Start)
    }

    pub fn state(&self) -> Result<ContainerInfo> {
        match self.request(&Request::State)? {
            (_, Response::State(info), _) => Ok(info),
            (conn, other, _) => Err(conn.unexpected(other)),
        }
    }

    pub fn kill(&self, signal: i32, all: bool) -> Result<()> {
        self.expect_ok(&Request::Kill { signal, all })
    }

    /// Blocks until the container has exited.
    pub fn wait(&self) -> Result<ExitInfo> {
        match self.request(&Request::Wait)? {
            (_, Response::Exit(info), _) => Ok(info),
            (conn, other, _) => Err(conn.unexpected(other)),
        }
    }

    pub fn resize(&self, rows: u16, cols: u16) -> Result<()> {
        self.expect_ok(&Request::Resize { rows, cols })
    }

    /// Streams the container's output from now on; see [`Request::Attach`].
    pub fn attach(&self, stdin: bool, close_stdin: bool) -> Result<Attach> {
        self.attach_with(&Request::Attach { stdin, close_stdin })
    }

    /// Starts the created container and streams its output, in one round
    /// trip; see [`Request::AttachStart`].
    pub fn attach_and_start(&self, stdin: bool, close_stdin: bool) -> Result<Attach> {
        self.attach_with(&Request::AttachStart { stdin, close_stdin })
    }

    fn attach_with(&self, request: &Request) -> Result<Attach> {
        match self.request(request)? {
            (conn, Response::Attached { stdin, tty }, mut fds) => {
                let stdin = if stdin {
                    fds.pop().map(File::from)
                } else {
                    None
                };
                Ok(Attach { conn, stdin, tty })
            }
            (conn, other, _) => Err(conn.unexpected(other)),
        }
    }

    /// Starts `process` in the container; see [`Request::Exec`].
    pub fn exec(&self, process: &Process, stdin: bool) -> Result<Exec> {
        let req = Request::Exec {
            process: Box::new(process.clone()),
            stdin,
        };
        match self.request(&req)? {
            (conn, Response::ExecStarted { pid, tty }, fds) => {
                let mut fds = fds.into_iter().map(File::from);
                let mut exec = Exec {
                    conn,
                    pid,
                    pty: None,
                    stdin: None,
                    stdout: None,
                    stderr: None,
                };
                if tty {
                    exec.pty = fds.next();
                } else {
                    if stdin {
                        exec.stdin = fds.next();
                    }
                    exec.stdout = fds.next();
                    exec.stderr = fds.next();
                }
                Ok(exec)
            }
            (conn, other, _) => Err(conn.unexpected(other)),
        }
    }

    /// Deletes the container and waits until the shim has exited.
    pub fn shutdown(&self) -> Result<()> {
        match self.request(&Request::Shutdown)? {
            (mut conn, Response::Ok, _) => {
                // The shim closes the connection as it exits.
                let mut rest = Vec::new();
                let _ = conn.stream.read_to_end(&mut rest);
                Ok(())
            }
            (conn, other, _) => Err(conn.unexpected(other)),
        }
    }
}

/// An attach session: output frames, and stdin if asked for.
#[derive(Debug)]
pub struct Attach {
    conn: Conn,
    /// Writes to the container's stdin (the pty for a tty container).
    pub stdin: Option<File>,
    pub tty: bool,
}

impl Attach {
    /// The next output chunk: (stream, bytes), [`frame::STDOUT`] or
    /// [`frame::STDERR`]; `None` once the container has exited and its
    /// output is drained.
    pub fn read_frame(&mut self) -> io::Result<Option<(u8, Vec<u8>)>> {
        let mut header = [0u8; frame::HEADER_LEN];
        if !self.conn.read_exact_or_eof(&mut header)? {
            return Ok(None);
        }
        let (stream, len) = frame::parse(&header);
        let mut data = vec![0u8; len];
        if !self.conn.read_exact_or_eof(&mut data)? {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(Some((stream, data)))
    }

    /// A handle that ends this attach from another thread: a blocked
    /// [`Attach::read_frame`] then returns `None`. For a client that left
    /// while the container is quiet.
    pub fn closer(&self) -> Result<AttachCloser> {
        let stream = self
            .conn
            .stream
            .try_clone()
            .map_err(|e| self.conn.io("cloning the attach connection", e))?;
        Ok(AttachCloser(stream))
    }

    /// Every frame until the container's exit: (stdout, stderr).
    pub fn read_to_end(&mut self) -> io::Result<(Vec<u8>, Vec<u8>)> {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while let Some((stream, data)) = self.read_frame()? {
            if stream == frame::STDERR {
                err.extend(data)
            } else {
                out.extend(data)
            }
        }
        Ok((out, err))
    }
}

/// A process started with [`Client::exec`], its stdio held directly.
#[derive(Debug)]
pub struct Exec {
    conn: Conn,
    pub pid: i32,
    /// The pty master of a tty exec (read output, write input, resize).
    pub pty: Option<File>,
    pub stdin: Option<File>,
    pub stdout: Option<File>,
    pub stderr: Option<File>,
}

/// Ends an [`Attach`] from another thread (see [`Attach::closer`]).
#[derive(Debug)]
pub struct AttachCloser(UnixStream);

impl AttachCloser {
    pub fn close(&self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

/// Gives up on an exec'd process from another thread than the one in
/// [`Exec::wait`]: the shim kills it (SIGKILL) unless it already exited,
/// and `wait` then reports the exit.
#[derive(Debug)]
pub struct ExecCancel(UnixStream);

impl ExecCancel {
    pub fn cancel(&self) {
        let _ = self.0.shutdown(std::net::Shutdown::Write);
    }
}

impl Exec {
    /// A handle that kills the process when its client is gone.
    pub fn canceller(&self) -> Result<ExecCancel> {
        let stream = self
            .conn
            .stream
            .try_clone()
            .map_err(|e| self.conn.io("cloning the exec connection", e))?;
        Ok(ExecCancel(stream))
    }

    /// Blocks until the process exits: its exit code (128 + signal if
    /// killed).
    pub fn wait(&mut self) -> Result<i32> {
        match self.conn.read_response()? {
            (Response::ExecExited { exit_code }, _) => Ok(exit_code),
            (other, _) => Err(self.conn.unexpected(other)),
        }
    }
}

/// A connection with what was read past the last response line.
#[derive(Debug)]
struct Conn {
    stream: UnixStream,
    path: PathBuf,
    buf: Vec<u8>,
}

impl Conn {
    fn new(stream: UnixStream, path: PathBuf) -> Conn {
        Conn {
            stream,
            path,
            buf: Vec::new(),
        }
    }

    fn io(&self, op: &'static str, source: io::Error) -> ClientError {
        ClientError::Io {
            op,
            path: self.path.clone(),
            source,
        }
    }

    fn unexpected(&self, resp: Response) -> ClientError {
        ClientError::Protocol {
            path: self.path.clone(),
            detail: format!("{resp:?}"),
        }
    }

    /// Reads one response line and the descriptors sent with it.
    fn read_response(&mut self) -> Result<(Response, Vec<OwnedFd>)> {
        let mut fds = Vec::new();
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                let resp = serde_json::from_slice(&line).map_err(|e| ClientError::Protocol {
                    path: self.path.clone(),
                    detail: format!("{e}: {}", String::from_utf8_lossy(&line)),
                })?;
                return Ok((resp, fds));
            }
            let mut chunk = [0u8; 4096];
            let n = sys::recv_with_fds(self.stream.as_raw_fd(), &mut chunk, &mut fds)
                .map_err(|e| self.io("reading response", e))?;
            if n == 0 {
                return Err(self.io(
                    "reading response",
                    io::Error::new(io::ErrorKind::UnexpectedEof, "shim closed the connection"),
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Fills `out`; false on a clean EOF before the first byte.
    fn read_exact_or_eof(&mut self, out: &mut [u8]) -> io::Result<bool> {
        let mut filled = 0;
        let from_buf = self.buf.len().min(out.len());
        out[..from_buf].copy_from_slice(&self.buf[..from_buf]);
        self.buf.drain(..from_buf);
        filled += from_buf;
        while filled < out.len() {
            let n = self.stream.read(&mut out[filled..])?;
            if n == 0 {
                if filled == 0 {
                    return Ok(false);
                }
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            filled += n;
        }
        Ok(true)
    }
}

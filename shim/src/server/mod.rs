//! The shim process: create the container in-process (so the shim is its
//! init's parent), then serve the control socket from one `poll` loop
//! until told to shut down.

use std::fs;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use berth_runtime::container::{self, CreateOptions, ExecOptions};
use berth_runtime::process::Step;
use berth_runtime::state::Root;
use berth_runtime::{ChildError, RuntimeError};

use crate::protocol::{self, ContainerInfo, ErrorKind, ExitInfo, Request, Response, Status, frame};
use crate::sys;

mod args;
mod logfile;
mod memory;
mod stdio;

use args::Args;
use logfile::JsonLog;
use memory::release_memory;
use stdio::{StdioSwap, console_listener, receive_pty};

/// The default state root of berth-runtime's command line.
const DEFAULT_RUNTIME_ROOT: &str = "/run/berth-runtime";

/// Output is read in chunks of this size: the one buffer the shim keeps.
const READ_CHUNK: usize = 8192;

/// A failed request, as sent to the client.
#[derive(Debug)]
struct Failure {
    kind: ErrorKind,
    message: String,
    exit_code: Option<i32>,
}

impl Failure {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
            exit_code: None,
        }
    }

    fn io(op: &str, e: io::Error) -> Failure {
        Failure::new(ErrorKind::Internal, format!("{op}: {e}"))
    }

    fn into_response(self) -> Response {
        Response::Error {
            kind: self.kind,
            message: self.message,
            exit_code: self.exit_code,
        }
    }
}

impl From<RuntimeError> for Failure {
    fn from(e: RuntimeError) -> Failure {
        Failure {
            kind: e.kind().into(),
            exit_code: start_exit_code(&e),
            message: e.to_string(),
        }
    }
}

/// Docker's exit codes for a process that could not be started.
fn start_exit_code(e: &RuntimeError) -> Option<i32> {
    let RuntimeError::Child(ChildError { step, errno, .. }) = e else {
        return None;
    };
    match (step, *errno) {
        (Step::FindExecutable, _) | (Step::Exec, libc::ENOENT) => Some(127),
        (Step::Exec, libc::EACCES | libc::EPERM | libc::ENOEXEC) => Some(126),
        _ => None,
    }
}

/// Entry point of the `berth-shim` binary.
pub fn main() -> ! {
    let standby = std::env::args_os().nth(1).is_some_and(|a| a == "--standby");
    let args = if standby {
        None
    } else {
        match Args::parse(std::env::args_os().skip(1)) {
            Ok(a) => Some(a),
            Err(e) => {
                eprintln!("berth-shim: {e}");
                std::process::exit(2);
            }
        }
    };
    // SAFETY: the process is single-threaded; the container inherits
    // signal dispositions, and Rust's runtime ignores SIGPIPE. The shim
    // itself only writes to sockets with MSG_NOSIGNAL and to files.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    // Leave the caller's process tree and session, so the shim outlives it.
    // SAFETY: single-threaded, so fork is safe; the parent only exits.
    match unsafe { libc::fork() } {
        -1 => {
            eprintln!("berth-shim: fork: {}", io::Error::last_os_error());
            std::process::exit(1);
        }
        0 => {}
        _ => std::process::exit(0),
    }
    // SAFETY: setsid has no memory effects.
    unsafe { libc::setsid() };
    let args = match args {
        Some(args) => args,
        None => {
            // Idle until the container's flags come: warm the create's
            // first-time paths meanwhile.
            berth_runtime::prewarm();
            match await_args() {
                Ok(Some(args)) => args,
                // The daemon went away before it needed us.
                Ok(None) => std::process::exit(0),
                Err(e) => {
                    eprintln!("berth-shim: standby: {e}");
                    std::process::exit(2);
                }
            }
        }
    };
    let code = match serve(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth-shim: {e}");
            1
        }
    };
    std::process::exit(code)
}

/// `--standby`: the container's flags come as one JSON line on stdout (the
/// client's socket); then stderr becomes the shim log in its state dir, as
/// the client sets it up for a shim it starts directly. `None`: the socket
/// closed first.
fn await_args() -> io::Result<Option<Args>> {
    let mut line = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut socket = fs::File::from(io::stdout().as_fd().try_clone_to_owned()?);
    // The client sends nothing more until the shim is ready.
    while line.last() != Some(&b'\n') {
        match socket.read(&mut chunk)? {
            0 => return Ok(None),
            n => line.extend_from_slice(&chunk[..n]),
        }
    }
    let list: Vec<String> = serde_json::from_slice(&line).map_err(io::Error::other)?;
    let args = Args::parse(list.into_iter().map(Into::into)).map_err(io::Error::other)?;
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(protocol::log_path(&args.state_dir))?;
    sys::dup2(log.as_raw_fd(), 2)?;
    Ok(Some(args))
}

/// Creates the container, reports readiness on stdout (a socket from the
/// client), and runs the loop.
fn serve(args: Args) -> io::Result<()> {
    // stdout is the readiness socket; stderr the shim's log file.
    let ready = io::stdout().as_fd().try_clone_to_owned()?;
    let devnull = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    sys::dup2(devnull.as_raw_fd(), 0)?;
    sys::dup2(devnull.as_raw_fd(), 1)?;
    let stdio = StdioSwap {
        devnull: devnull.into(),
        stderr: io::stderr().as_fd().try_clone_to_owned()?,
    };
    let shim = Shim::create(&args, stdio);
    let reply = match &shim {
        Ok(s) => Response::Ready {
            pid: s.pid,
            shim_pid: std::process::id() as i32,
        },
        Err(f) => Failure {
            kind: f.kind,
            message: f.message.clone(),
            exit_code: f.exit_code,
        }
        .into_response(),
    };
    let _ = send_response(ready.as_raw_fd(), &reply, &[]);
    drop(ready);
    match shim {
        Ok(mut s) => {
            s.run();
            Ok(())
        }
        Err(f) => Err(io::Error::other(f.message)),
    }
}

fn warn(msg: &str) {
    eprintln!("berth-shim: warning: {msg}");
}

fn send_response(sock: RawFd, resp: &Response, fds: &[RawFd]) -> io::Result<()> {
    let mut line = serde_json::to_vec(resp).expect("responses serialize");
    line.push(b'\n');
    sys::send_with_fds(sock, &line, fds)
}

#[derive(Debug)]
enum ConnState {
    /// Reading the request line.
    Request(Vec<u8>),
    Waiting,
    Attached,
    /// An exec'd process whose exit the client waits for. `abandoned`:
    /// the client half-closed the connection, the process was killed.
    Exec {
        pidfd: OwnedFd,
        abandoned: bool,
    },
    /// Done; removed at the end of the loop round.
    Closed,
}

#[derive(Debug)]
struct Conn {
    stream: UnixStream,
    state: ConnState,
}

#[derive(Debug)]
struct Shim {
    id: String,
    root: Root,
    state_dir: PathBuf,
    stdio: StdioSwap,
    tty: bool,
    pid: i32,
    /// The init's pidfd until it is reaped.
    init: Option<OwnedFd>,
    /// What the start needs, until the start.
    held: Option<container::Held>,
    status: Status,
    created_at: String,
    started_at: Option<String>,
    exit: Option<ExitInfo>,
    /// stdout and stderr read ends; for a tty the pty master and none.
    outputs: [Option<OwnedFd>; 2],
    /// The container's stdin (write end, or the pty master), if kept.
    stdin: Option<OwnedFd>,
    pty: Option<OwnedFd>,
    log: Option<JsonLog>,
    listener: UnixListener,
    socket_path: PathBuf,
    conns: Vec<Conn>,
    exec_seq: u32,
    /// A request ran: release memory before going idle.
    used_memory: bool,
}

impl Shim {
    fn create(args: &Args, stdio: StdioSwap) -> Result<Shim, Failure> {
        let root = Root::new(
            args.runtime_root
                .clone()
                .unwrap_or_else(|| DEFAULT_RUNTIME_ROOT.into()),
        );
        let spec = container::load_spec(&args.bundle)?;
        let tty = spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false);
        if tty != args.tty {
            return Err(Failure::new(
                ErrorKind::InvalidArgument,
                format!(
                    "--tty is {} but process.terminal in {} is {tty}",
                    args.tty,
                    args.bundle.display()
                ),
            ));
        }
        let log = match &args.log_path {
            Some(p) => Some(
                JsonLog::open(p, args.log_max_size, args.log_max_files)
                    .map_err(|e| Failure::io(&format!("opening log {}", p.display()), e))?,
            ),
            None => None,
        };
        let socket_path = protocol::socket_path(&args.state_dir);
        // A stale socket from a dead shim is replaced; a live one is not.
        if UnixStream::connect(&socket_path).is_ok() {
            return Err(Failure::new(
                ErrorKind::Conflict,
                format!("a shim already serves {}", socket_path.display()),
            ));
        }
        let _ = fs::remove_file(&socket_path);
        let listener = UnixListener::bind(&socket_path)
            .map_err(|e| Failure::io(&format!("binding {}", socket_path.display()), e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Failure::io("socket", e))?;
        let mut opts = CreateOptions {
            bundle: args.bundle.clone(),
            warn: Some(warn),
            ..CreateOptions::default()
        };
        let pipe = || sys::pipe().map_err(|e| Failure::io("pipe", e));
        let mut outputs = [None, None];
        let mut stdin = None;
        let mut pty = None;
        let held = if tty {
            let (console, path) = console_listener(&args.state_dir, "console.sock")
                .map_err(|e| Failure::io("binding console socket", e))?;
            opts.console_socket = Some(path.clone());
            let created = container::create_held(&root, &args.id, &opts);
            let _ = fs::remove_file(&path);
            let state = created?;
            let master = receive_pty(&console).map_err(|e| Failure::io("console socket", e))?;
            let dup = |fd: &OwnedFd| sys::dup(fd).map_err(|e| Failure::io("dup", e));
            outputs[0] = Some(dup(&master)?);
            if args.stdin {
                stdin = Some(dup(&master)?);
            }
            pty = Some(master);
            state
        } else {
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            let (in_r, in_w) = if args.stdin {
                let (r, w) = pipe()?;
                (Some(r), Some(w))
            } else {
                (None, None)
            };
            let in_fd = in_r
                .as_ref()
                .map_or(stdio.devnull.as_raw_fd(), |r| r.as_raw_fd());
            let created = stdio
                .with([in_fd, out_w.as_raw_fd(), err_w.as_raw_fd()], || {
                    container::create_held(&root, &args.id, &opts)
                })
                .map_err(|e| Failure::io("redirecting stdio", e))?;
            let state = created?;
            outputs = [Some(out_r), Some(err_r)];
            stdin = in_w;
            state
        };
        // The init is our child: its pid cannot be reused before we reap it.
        let init = sys::pidfd_open(held.state.pid).map_err(|e| Failure::io("pidfd_open", e))?;
        for fd in outputs.iter().flatten() {
            sys::set_nonblocking(fd.as_raw_fd()).map_err(|e| Failure::io("pipe", e))?;
        }
        Ok(Shim {
            id: args.id.clone(),
            root,
            state_dir: args.state_dir.clone(),
            stdio,
            tty,
            pid: held.state.pid,
            init: Some(init),
            status: Status::Created,
            created_at: held.state.created.clone(),
            held: Some(held),
            started_at: None,
            exit: None,
            outputs,
            stdin,
            pty,
            log,
            listener,
            socket_path,
            conns: Vec::new(),
            exec_seq: 0,
            used_memory: false,
        })
    }

    /// The event loop; returns after a successful shutdown.
    fn run(&mut self) {
        #[derive(Clone, Copy)]
        enum Tag {
            Listener,
            Init,
            Output(usize),
            Conn(usize),
            ExecExit(usize),
        }
        let mut pfds: Vec<libc::pollfd> = Vec::new();
        let mut tags: Vec<Tag> = Vec::new();
        release_memory();
        loop {
            if std::mem::take(&mut self.used_memory) {
                release_memory();
            }
            pfds.clear();
            tags.clear();
            let mut add = |fd: RawFd, tag: Tag| {
                pfds.push(libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                });
                tags.push(tag);
            };
            for (i, out) in self.outputs.iter().enumerate() {
                if let Some(fd) = out {
                    add(fd.as_raw_fd(), Tag::Output(i));
                }
            }
            if let Some(fd) = &self.init {
                add(fd.as_raw_fd(), Tag::Init);
            }
            add(self.listener.as_raw_fd(), Tag::Listener);
            for (i, c) in self.conns.iter().enumerate() {
                match &c.state {
                    ConnState::Exec { pidfd, abandoned } => {
                        add(pidfd.as_raw_fd(), Tag::ExecExit(i));
                        if !abandoned {
                            add(c.stream.as_raw_fd(), Tag::Conn(i));
                        }
                    }
                    _ => add(c.stream.as_raw_fd(), Tag::Conn(i)),
                }
            }
            // SAFETY: pfds is a valid array of pollfds.
            let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, -1) };
            if n < 0 {
                continue;
            }
            for (p, tag) in pfds.iter().zip(tags.iter().copied()) {
                if p.revents == 0 {
                    continue;
                }
                match tag {
                    Tag::Output(i) => self.read_output(i),
                    Tag::Init => self.on_init_exit(),
                    Tag::Listener => self.accept(),
                    Tag::Conn(i) => {
                        if self.on_conn_readable(i) {
                            return;
                        }
                    }
                    Tag::ExecExit(i) => {
                        if let ConnState::Exec { pidfd, .. } = &self.conns[i].state {
                            let resp = match sys::try_reap(pidfd.as_raw_fd()) {
                                Ok(None) => continue,
                                Ok(Some((code, _))) => Response::ExecExited { exit_code: code },
                                // Not reapable (never expected): report it
                                // rather than poll a readable pidfd forever.
                                Err(e) => {
                                    Failure::io("waiting for exec process", e).into_response()
                                }
                            };
                            self.reply(i, resp);
                        }
                    }
                }
            }
            // Removed only now, so indices stay valid during the round.
            self.conns.retain(|c| !matches!(c.state, ConnState::Closed));
        }
    }

    fn mark_closed(&mut self, i: usize) {
        self.conns[i].state = ConnState::Closed;
    }

    fn accept(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            if stream.set_nonblocking(true).is_ok() {
                self.conns.push(Conn {
                    stream,
                    state: ConnState::Request(Vec::new()),
                });
            }
        }
    }

    /// Reads what the client sent; true when the shim should exit now.
    fn on_conn_readable(&mut self, i: usize) -> bool {
        let mut buf = [0u8; 1024];
        let conn = &mut self.conns[i];
        let n = match conn.stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(_) => 0,
        };
        if let ConnState::Exec { pidfd, abandoned } = &mut conn.state {
            // The client gave up on the process (its own client hung up):
            // kill it, as dockerd does, and still reap it and report.
            if n == 0 {
                let _ = sys::pidfd_send_signal(pidfd.as_raw_fd(), libc::SIGKILL);
                *abandoned = true;
            }
            return false;
        }
        let ConnState::Request(line) = &mut conn.state else {
            // Waiters and attachers send nothing: data or EOF means the
            // client is done.
            if n == 0 {
                self.mark_closed(i);
            }
            return false;
        };
        if n == 0 {
            self.mark_closed(i);
            return false;
        }
        line.extend_from_slice(&buf[..n]);
        let Some(end) = line.iter().position(|&b| b == b'\n') else {
            if line.len() > 1 << 20 {
                self.mark_closed(i);
            }
            return false;
        };
        let req: Result<Request, _> = serde_json::from_slice(&line[..end]);
        let req = match req {
            Ok(r) => r,
            Err(e) => {
                self.reply(
                    i,
                    Failure::new(ErrorKind::InvalidArgument, format!("bad request: {e}"))
                        .into_response(),
                );
                return false;
            }
        };
        self.handle(i, req)
    }

    /// Sends a final response and closes the connection.
    fn reply(&mut self, i: usize, resp: Response) {
        let _ = send_response(self.conns[i].stream.as_raw_fd(), &resp, &[]);
        self.mark_closed(i);
    }

    fn reply_result(&mut self, i: usize, r: Result<Response, Failure>) {
        let resp = r.unwrap_or_else(Failure::into_response);
        self.reply(i, resp);
    }

    fn handle(&mut self, i: usize, req: Request) -> bool {
        // Requests are rare and some run deep library code (parsing the
        // spec, spawning): give the memory back after each.
        self.used_memory = true;
        match req {
            Request::Start => {
                let r = self.start().map(|()| Response::Ok);
                self.reply_result(i, r);
            }
            Request::State => {
                let info = self.info();
                self.reply(i, Response::State(info));
            }
            Request::Kill { signal, all } => {
                let r = self.kill(signal, all).map(|()| Response::Ok);
                self.reply_result(i, r);
            }
            Request::Wait => match &self.exit {
                Some(exit) => {
                    let resp = Response::Exit(exit.clone());
                    self.reply(i, resp);
                }
                None => self.conns[i].state = ConnState::Waiting,
            },
            Request::Resize { rows, cols } => {
                let r = match &self.pty {
                    Some(m) => sys::set_winsize(m.as_raw_fd(), rows, cols)
                        .map(|()| Response::Ok)
                        .map_err(|e| Failure::io("resizing tty", e)),
                    None => Err(Failure::new(
                        ErrorKind::InvalidArgument,
                        format!("container {} has no tty", self.id),
                    )),
                };
                self.reply_result(i, r);
            }
            Request::Attach { stdin, close_stdin } => self.attach(i, stdin, close_stdin),
            Request::AttachStart { stdin, close_stdin } => match self.start() {
                Ok(()) => self.attach(i, stdin, close_stdin),
                Err(f) => self.reply(i, f.into_response()),
            },
            Request::Exec { process, stdin } => self.exec(i, &process, stdin),
            Request::Shutdown => match self.shutdown() {
                Ok(()) => {
                    // Exiting closes every connection; waiters already got
                    // the exit.
                    let _ = send_response(self.conns[i].stream.as_raw_fd(), &Response::Ok, &[]);
                    return true;
                }
                Err(f) => self.reply(i, f.into_response()),
            },
        }
        false
    }

    fn info(&self) -> ContainerInfo {
        ContainerInfo {
            id: self.id.clone(),
            pid: self.pid,
            shim_pid: std::process::id() as i32,
            status: self.status,
            tty: self.tty,
            created_at: self.created_at.clone(),
            started_at: self.started_at.clone(),
            exit: self.exit.clone(),
        }
    }

    fn start(&mut self) -> Result<(), Failure> {
        let (Status::Created, Some(held), Some(init)) = (self.status, &self.held, &self.init)
        else {
            let why = if self.started_at.is_some() {
                "was already started"
            } else {
                "is stopped: its init exited before the start"
            };
            return Err(Failure::new(
                ErrorKind::Conflict,
                format!("container {} {why}", self.id),
            ));
        };
        container::start_held(&self.root, held, init.as_fd())?;
        self.held = None;
        self.status = Status::Running;
        self.started_at = Some(now());
        Ok(())
    }

    fn kill(&mut self, signal: i32, all: bool) -> Result<(), Failure> {
        let Some(init) = &self.init else {
            return Err(Failure::new(
                ErrorKind::Conflict,
                format!("container {} is not running", self.id),
            ));
        };
        if all {
            container::kill(&self.root, &self.id, signal, true)?;
            return Ok(());
        }
        sys::pidfd_send_signal(init.as_raw_fd(), signal).map_err(|e| {
            let kind = if e.raw_os_error() == Some(libc::EINVAL) {
                ErrorKind::InvalidArgument
            } else {
                ErrorKind::Internal
            };
            Failure::new(
                kind,
                format!("signal {signal} to container {}: {e}", self.id),
            )
        })
    }

    fn attach(&mut self, i: usize, want_stdin: bool, close_stdin: bool) {
        if self.exit.is_some() {
            // Nothing more will come: an empty stream.
            self.reply(
                i,
                Response::Attached {
                    stdin: false,
                    tty: self.tty,
                },
            );
            return;
        }
        let stdin = if want_stdin {
            if close_stdin {
                self.stdin.take()
            } else {
                self.stdin.as_ref().and_then(|fd| sys::dup(fd).ok())
            }
        } else {
            None
        };
        let fds: Vec<RawFd> = stdin.iter().map(|f| f.as_raw_fd()).collect();
        let resp = Response::Attached {
            stdin: stdin.is_some(),
            tty: self.tty,
        };
        if send_response(self.conns[i].stream.as_raw_fd(), &resp, &fds).is_err() {
            self.mark_closed(i);
            return;
        }
        self.conns[i].state = ConnState::Attached;
    }

    fn exec(&mut self, i: usize, process: &oci_spec::runtime::Process, want_stdin: bool) {
        match self.spawn_exec(process, want_stdin) {
            Ok((pid, pidfd, client_fds)) => {
                let raw: Vec<RawFd> = client_fds.iter().map(|f| f.as_raw_fd()).collect();
                let resp = Response::ExecStarted {
                    pid,
                    tty: process.terminal().unwrap_or(false),
                };
                // Even if the client is gone, the process must be reaped.
                let _ = send_response(self.conns[i].stream.as_raw_fd(), &resp, &raw);
                self.conns[i].state = ConnState::Exec {
                    pidfd,
                    abandoned: false,
                };
            }
            Err(f) => self.reply(i, f.into_response()),
        }
    }

    /// Runs `process` in the container: (pid, pidfd, the client's stdio).
    fn spawn_exec(
        &mut self,
        process: &oci_spec::runtime::Process,
        want_stdin: bool,
    ) -> Result<(i32, OwnedFd, Vec<OwnedFd>), Failure> {
        if self.status != Status::Running || self.init.is_none() {
            return Err(Failure::new(
                ErrorKind::Conflict,
                format!("container {} is not running", self.id),
            ));
        }
        self.exec_seq += 1;
        let pid_file = self.state_dir.join(format!("exec-{}.pid", self.exec_seq));
        let mut opts = ExecOptions {
            pid_file: Some(pid_file.clone()),
            detach: true,
            ..ExecOptions::default()
        };
        let mut client_fds = Vec::new();
        let result = if process.terminal().unwrap_or(false) {
            let name = format!("exec-{}.sock", self.exec_seq);
            let (console, path) = console_listener(&self.state_dir, &name)
                .map_err(|e| Failure::io("binding console socket", e))?;
            opts.console_socket = Some(path.clone());
            let r = container::exec(&self.root, &self.id, process, &opts);
            let _ = fs::remove_file(&path);
            if r.is_ok() {
                client_fds.push(receive_pty(&console).map_err(|e| Failure::io("console", e))?);
            }
            r
        } else {
            let pipe = || sys::pipe().map_err(|e| Failure::io("pipe", e));
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            let (in_r, in_w) = if want_stdin {
                let (r, w) = pipe()?;
                (Some(r), Some(w))
            } else {
                (None, None)
            };
            let in_fd = in_r
                .as_ref()
                .map_or(self.stdio.devnull.as_raw_fd(), |r| r.as_raw_fd());
            let r = self
                .stdio
                .with([in_fd, out_w.as_raw_fd(), err_w.as_raw_fd()], || {
                    container::exec(&self.root, &self.id, process, &opts)
                })
                .map_err(|e| Failure::io("redirecting stdio", e))?;
            client_fds.extend(in_w);
            client_fds.push(out_r);
            client_fds.push(err_r);
            r
        };
        let pid_text = fs::read_to_string(&pid_file);
        let _ = fs::remove_file(&pid_file);
        result?;
        let pid: i32 = pid_text
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .ok_or_else(|| Failure::new(ErrorKind::Internal, "exec left no pid file"))?;
        // Our child, not yet reaped: the pid still names it.
        let pidfd = sys::pidfd_open(pid).map_err(|e| Failure::io("pidfd_open", e))?;
        Ok((pid, pidfd, client_fds))
    }

    /// Reads available output of stream `i`, logs it and copies it to
    /// attached clients. Closes the stream at EOF.
    fn read_output(&mut self, i: usize) {
        let mut buf = [0u8; READ_CHUNK];
        // A bounded number of reads per round keeps requests served.
        for _ in 0..16 {
            let Some(fd) = &self.outputs[i] else { return };
            // SAFETY: buf is valid for READ_CHUNK bytes.
            let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) => return,
                    Some(libc::EINTR) => continue,
                    // EIO: a pty whose other side is closed.
                    _ => {}
                }
            }
            if n <= 0 {
                self.outputs[i] = None;
                if let Some(log) = &mut self.log {
                    if let Err(e) = log.flush(i) {
                        eprintln!("berth-shim: writing log: {e}");
                    }
                }
                return;
            }
            self.output(i, &buf[..n as usize]);
        }
    }

    fn output(&mut self, i: usize, data: &[u8]) {
        if let Some(log) = &mut self.log {
            if let Err(e) = log.write(i, data) {
                eprintln!("berth-shim: writing log: {e}");
            }
        }
        let stream = if i == 0 { frame::STDOUT } else { frame::STDERR };
        let mut frame_buf = Vec::with_capacity(frame::HEADER_LEN + data.len());
        frame_buf.extend_from_slice(&frame::header(stream, data.len()));
        frame_buf.extend_from_slice(data);
        for idx in 0..self.conns.len() {
            if matches!(self.conns[idx].state, ConnState::Attached) {
                // A client that cannot keep up is dropped, never waited for.
                if sys::send_with_fds(self.conns[idx].stream.as_raw_fd(), &frame_buf, &[]).is_err()
                {
                    self.mark_closed(idx);
                }
            }
        }
    }

    fn on_init_exit(&mut self) {
        let Some(init) = &self.init else { return };
        let (code, signal) = match sys::try_reap(init.as_raw_fd()) {
            Ok(Some(s)) => s,
            Ok(None) => return,
            Err(e) => {
                eprintln!("berth-shim: waiting for init: {e}");
                (255, None)
            }
        };
        self.init = None;
        // What the init wrote before exiting is in the pipes: log it first.
        for i in 0..2 {
            self.read_output(i);
            if let Some(log) = &mut self.log {
                let _ = log.flush(i);
            }
        }
        let exit = ExitInfo {
            exit_code: code,
            signal,
            started_at: self.started_at.clone(),
            finished_at: now(),
        };
        if let Err(e) = write_exit(&self.state_dir, &exit) {
            eprintln!("berth-shim: writing exit record: {e}");
        }
        self.exit = Some(exit.clone());
        self.status = Status::Stopped;
        self.stdin = None;
        for idx in 0..self.conns.len() {
            match self.conns[idx].state {
                ConnState::Waiting => self.reply(idx, Response::Exit(exit.clone())),
                ConnState::Attached => self.mark_closed(idx),
                _ => {}
            }
        }
    }

    /// Kills what runs, deletes the container and its cgroup.
    fn shutdown(&mut self) -> Result<(), Failure> {
        if let Some(init) = &self.init {
            let _ = sys::pidfd_send_signal(init.as_raw_fd(), libc::SIGKILL);
            let _ = sys::poll_in(init.as_raw_fd(), 10_000);
            self.on_init_exit();
        }
        container::delete(&self.root, &self.id, true)?;
        // Exec'd processes died with the cgroup: reap them.
        for c in &self.conns {
            if let ConnState::Exec { pidfd, .. } = &c.state {
                let _ = sys::poll_in(pidfd.as_raw_fd(), 5_000);
                if let Ok(Some((code, _))) = sys::try_reap(pidfd.as_raw_fd()) {
                    let _ = send_response(
                        c.stream.as_raw_fd(),
                        &Response::ExecExited { exit_code: code },
                        &[],
                    );
                }
            }
        }
        let _ = fs::remove_file(&self.socket_path);
        Ok(())
    }
}

fn now() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

/// Writes the exit record atomically (temp file, rename), for a berthd
/// that restarts after the shim is gone. Not fsynced: the state dir is
/// runtime state under the exec root (`/run/berth`, normally tmpfs), and a
/// machine crash that could lose the write ends the container with it. The two
/// fsyncs were on every container's exit path.
fn write_exit(state_dir: &Path, exit: &ExitInfo) -> io::Result<()> {
    let path = protocol::exit_path(state_dir);
    let tmp = state_dir.join("exit.json.tmp");
    fs::write(
        &tmp,
        serde_json::to_vec(exit).expect("exit info serializes"),
    )?;
    fs::rename(&tmp, &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_exec_errors_to_docker_codes() {
        let child = |step, errno| {
            RuntimeError::Child(ChildError {
                step,
                errno,
                detail: "x".into(),
            })
        };
        assert_eq!(
            start_exit_code(&child(Step::FindExecutable, libc::ENOENT)),
            Some(127)
        );
        assert_eq!(start_exit_code(&child(Step::Exec, libc::EACCES)), Some(126));
        assert_eq!(start_exit_code(&child(Step::Mount, libc::EPERM)), None);
    }
}

//! `berth-runtime`: the command line, compatible with runc's so that
//! containerd, podman (conmon) and docker can use it as their OCI runtime.
//!
//! The process stays single-threaded: it clones containers directly.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::OnceLock;

use berth_runtime::container::{self, CreateOptions, ExecOptions};
use berth_runtime::state::{DEFAULT_ROOT, OCI_VERSION, Root};
use berth_runtime::{ErrorKind, RuntimeError};
use clap::{Parser, Subcommand, ValueEnum};
use oci_spec::runtime::{LinuxResources, Process, Spec};

#[derive(Parser, Debug)]
#[command(name = "berth-runtime", version = concat!(env!("CARGO_PKG_VERSION"), "\nspec: 1.2.0"), about = "A fast OCI runtime on clone3 and pidfds")]
struct Cli {
    /// Directory for container state.
    #[arg(long, global = true, default_value = DEFAULT_ROOT)]
    root: PathBuf,
    /// Also write errors to this file.
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Accepted for runc compatibility.
    #[arg(long, global = true)]
    debug: bool,
    /// Use systemd for cgroups (not supported: a clear error).
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    /// Accepted for runc compatibility; ignored.
    #[arg(long, global = true, hide = true)]
    criu: Option<String>,
    /// Accepted for runc compatibility ("false" or "auto" only).
    #[arg(long, global = true, hide = true)]
    rootless: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum Format {
    Table,
    Json,
}

#[derive(clap::Args, Debug)]
struct CreateArgs {
    /// The bundle directory (holds config.json).
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Unix socket that receives the pty master when process.terminal is set.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Write the init's pid here.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root (for ramfs roots).
    #[arg(long)]
    no_pivot: bool,
    /// Accepted for runc compatibility: no session keyring is created.
    #[arg(long)]
    no_new_keyring: bool,
    /// Pass this many descriptors from 3 on to the container.
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    id: String,
}

impl CreateArgs {
    fn options(&self) -> CreateOptions {
        CreateOptions {
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            no_pivot: self.no_pivot,
            preserve_fds: self.preserve_fds,
            warn: Some(warn),
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a container; its process waits for `start`.
    Create(CreateArgs),
    /// Start a created container.
    Start { id: String },
    /// Create, start, wait for and delete a container.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Return once started instead of waiting.
        #[arg(short, long)]
        detach: bool,
        /// Keep the container's state after it exits.
        #[arg(long)]
        keep: bool,
    },
    /// Print a container's OCI state as JSON.
    State { id: String },
    /// Send a signal (default TERM) to a container's init.
    Kill {
        /// Signal every process in the container.
        #[arg(short, long)]
        all: bool,
        id: String,
        #[arg(default_value = "TERM")]
        signal: String,
    },
    /// Delete a container and everything it holds.
    Delete {
        /// Kill it first if it still runs.
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Run a process in a running container.
    Exec {
        /// A JSON file with an OCI process.
        #[arg(short, long)]
        process: Option<PathBuf>,
        #[arg(short, long)]
        detach: bool,
        #[arg(long)]
        pid_file: Option<PathBuf>,
        #[arg(long)]
        console_socket: Option<PathBuf>,
        #[arg(short, long)]
        tty: bool,
        #[arg(long)]
        cwd: Option<PathBuf>,
        #[arg(short, long)]
        env: Vec<String>,
        /// uid[:gid]
        #[arg(short, long)]
        user: Option<String>,
        #[arg(long, default_value_t = 0)]
        preserve_fds: u32,
        id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// List the processes of a container.
    Ps {
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        format: Format,
        id: String,
        /// Arguments for ps(1) in table format (default -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// List containers.
    List {
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        format: Format,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Freeze every process of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Change the resource limits of a created, running or paused container.
    Update {
        /// The OCI `linux.resources` to write, as JSON: a file, or `-` for
        /// standard input (what containerd's shim passes). Only the limits
        /// it sets are written.
        #[arg(short, long, value_name = "FILE")]
        resources: PathBuf,
        id: String,
    },
    /// Write a default config.json to the bundle.
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
    },
    /// Print what this runtime supports, as JSON.
    Features,
}

/// The `--log` file and its format, set once at startup.
static LOG: OnceLock<(Option<PathBuf>, LogFormat)> = OnceLock::new();

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = LOG.set((cli.log.clone(), cli.log_format));
    match dispatch(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "berth-runtime: {e}");
            log_line("error", &e.to_string());
            ExitCode::from(1)
        }
    }
}

/// Appends a line to the `--log` file, if there is one; true if written.
fn log_line(level: &str, msg: &str) -> bool {
    let Some((Some(path), format)) = LOG.get() else {
        return false;
    };
    let line = match format {
        LogFormat::Json => serde_json::json!({
            "level": level,
            "msg": msg,
            "time": berth_runtime::state::now_rfc3339(),
        })
        .to_string(),
        LogFormat::Text => format!("level={level} msg={msg:?}"),
    };
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| writeln!(f, "{line}"))
        .is_ok()
}

/// Warnings go to the log when there is one: an engine's runtime stderr
/// may be the container's own.
fn warn(msg: &str) {
    if !log_line("warning", msg) {
        let _ = writeln!(std::io::stderr(), "berth-runtime: warning: {msg}");
    }
}

fn dispatch(cli: &Cli) -> Result<u8, RuntimeError> {
    if cli.systemd_cgroup {
        return Err(RuntimeError::Unsupported(
            "the systemd cgroup driver (--systemd-cgroup)".into(),
        ));
    }
    if cli
        .rootless
        .as_deref()
        .is_some_and(|r| r != "false" && r != "auto")
    {
        return Err(RuntimeError::Unsupported("rootless mode".into()));
    }
    let root = Root::new(&cli.root);
    match &cli.command {
        Command::Create(args) => {
            container::create(&root, &args.id, &args.options())?;
        }
        Command::Start { id } => container::start(&root, id)?,
        Command::Run {
            create,
            detach,
            keep,
        } => {
            let status = container::run(&root, &create.id, &create.options(), *detach || *keep)?;
            return Ok(status.map_or(0, |s| s.code() as u8));
        }
        Command::State { id } => {
            let state = root.load(id)?;
            let oci = state.to_oci(state.status(&root));
            println!(
                "{}",
                serde_json::to_string_pretty(&oci).expect("state serializes")
            );
        }
        Command::Kill { all, id, signal } => {
            container::kill(&root, id, container::parse_signal(signal)?, *all)?;
        }
        Command::Delete { force, id } => match container::delete(&root, id, *force) {
            // runc: deleting a container that is already gone succeeds with --force.
            Err(e) if *force && e.kind() == ErrorKind::NotFound => {}
            r => r?,
        },
        Command::Exec {
            process,
            detach,
            pid_file,
            console_socket,
            tty,
            cwd,
            env,
            user,
            preserve_fds,
            id,
            command,
        } => {
            let process =
                exec_process(&root, id, process.as_deref(), command, *tty, cwd, env, user)?;
            let opts = ExecOptions {
                pid_file: pid_file.clone(),
                console_socket: console_socket.clone(),
                preserve_fds: *preserve_fds,
                detach: *detach,
            };
            let status = container::exec(&root, id, &process, &opts)?;
            return Ok(status.map_or(0, |s| s.code() as u8));
        }
        Command::Ps {
            format,
            id,
            ps_args,
        } => ps(&root, id, *format, ps_args)?,
        Command::List { format, quiet } => list(&root, *format, *quiet)?,
        Command::Pause { id } => container::pause(&root, id)?,
        Command::Resume { id } => container::resume(&root, id)?,
        Command::Update { resources, id } => {
            container::update(&root, id, &read_resources(resources)?)?
        }
        Command::Spec { bundle } => write_default_spec(bundle)?,
        Command::Features => println!("{}", features()),
    }
    Ok(0)
}

/// `update --resources`: a JSON `LinuxResources` from a file or stdin.
fn read_resources(path: &Path) -> Result<LinuxResources, RuntimeError> {
    let read_err = |source| RuntimeError::ReadSpec {
        path: path.to_path_buf(),
        source,
    };
    let data = if path == Path::new("-") {
        let mut data = Vec::new();
        std::io::stdin().read_to_end(&mut data).map_err(read_err)?;
        data
    } else {
        std::fs::read(path).map_err(read_err)?
    };
    serde_json::from_slice(&data).map_err(|source| RuntimeError::ParseSpec {
        path: path.to_path_buf(),
        source,
    })
}

#[allow(clippy::too_many_arguments)]
fn exec_process(
    root: &Root,
    id: &str,
    process_file: Option<&Path>,
    command: &[String],
    tty: bool,
    cwd: &Option<PathBuf>,
    env: &[String],
    user: &Option<String>,
) -> Result<Process, RuntimeError> {
    if let Some(path) = process_file {
        let data = std::fs::read(path).map_err(|e| RuntimeError::ReadSpec {
            path: path.to_path_buf(),
            source: e,
        })?;
        return serde_json::from_slice(&data).map_err(|e| RuntimeError::ParseSpec {
            path: path.to_path_buf(),
            source: e,
        });
    }
    if command.is_empty() {
        return Err(RuntimeError::InvalidSpec(
            "exec needs --process or a command".into(),
        ));
    }
    // Like runc: the container's own process settings, with these changes.
    let spec: Spec = container::load_spec(&root.load(id)?.bundle)?;
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(command.to_vec()));
    p.set_terminal(Some(tty));
    if let Some(cwd) = cwd {
        p.set_cwd(cwd.clone());
    }
    let mut all_env = p.env().clone().unwrap_or_default();
    all_env.extend(env.iter().cloned());
    p.set_env(Some(all_env));
    if let Some(u) = user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
        let parse = |s: &str| {
            s.parse::<u32>().map_err(|_| {
                RuntimeError::InvalidSpec(format!("--user {u:?} must be numeric uid[:gid]"))
            })
        };
        let mut usr = p.user().clone();
        usr.set_uid(parse(uid)?);
        usr.set_gid(parse(gid)?);
        p.set_user(usr);
    }
    Ok(p)
}

fn ps(root: &Root, id: &str, format: Format, ps_args: &[String]) -> Result<(), RuntimeError> {
    let pids = container::pids(root, id)?;
    if format == Format::Json {
        println!("{}", serde_json::to_string(&pids).expect("pids serialize"));
        return Ok(());
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| RuntimeError::sys("running ps", e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Ok(());
    };
    let pid_col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .unwrap_or(1);
    println!("{header}");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{line}");
        }
    }
    Ok(())
}

fn list(root: &Root, format: Format, quiet: bool) -> Result<(), RuntimeError> {
    let mut rows = Vec::new();
    for id in root.list()? {
        if let Ok(state) = root.load(&id) {
            rows.push(state.to_oci(state.status(root)));
        }
    }
    if quiet {
        for r in &rows {
            println!("{}", r.id);
        }
    } else if format == Format::Json {
        println!(
            "{}",
            serde_json::to_string(&rows).expect("state serializes")
        );
    } else {
        println!(
            "{:<24} {:<8} {:<10} {:<40} {:<32} OWNER",
            "ID", "PID", "STATUS", "BUNDLE", "CREATED"
        );
        for r in &rows {
            println!(
                "{:<24} {:<8} {:<10} {:<40} {:<32} root",
                r.id,
                r.pid,
                r.status,
                r.bundle.display(),
                r.created
            );
        }
    }
    Ok(())
}

fn write_default_spec(bundle: &Path) -> Result<(), RuntimeError> {
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(RuntimeError::InvalidSpec(format!(
            "{} exists, remove it first",
            path.display()
        )));
    }
    let mut spec = Spec::default();
    spec.set_hostname(Some("berth".into()));
    if let Some(p) = spec.process().clone() {
        let mut p = p;
        p.set_terminal(Some(true));
        spec.set_process(Some(p));
    }
    let data = serde_json::to_string_pretty(&spec).expect("spec serializes");
    std::fs::write(&path, data).map_err(|e| RuntimeError::io("writing", path, e))
}

fn features() -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [
            "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "lazytime",
            "loud", "mand", "noatime", "nodev", "nodiratime", "noexec", "nolazytime", "nomand",
            "norelatime", "nostrictatime", "nosuid", "private", "rbind", "relatime", "remount",
            "ro", "rprivate", "rshared", "rslave", "runbindable", "rw", "shared", "silent",
            "slave", "strictatime", "suid", "sync", "unbindable"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": berth_runtime::process::capability_names(),
            "cgroup": { "v1": true, "v2": true, "systemd": false, "systemdUser": false },
            "seccomp": {
                "enabled": true,
                "actions": [
                    "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"
                ],
                "operators": [
                    "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"
                ],
                "archs": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
            },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false }
        },
        "annotations": { "io.github.berth.runtime.version": env!("CARGO_PKG_VERSION") }
    }))
    .expect("features serialize")
}

//! The command line, with docker's command and flag names. Completions and man pages are
//! generated from these same definitions (`berth completion`, `berth man`).

use clap::{ArgAction, Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    about = "A self-sufficient runtime for containers (docker-compatible client of berthd)",
    disable_version_flag = true,
    subcommand_required = false,
    arg_required_else_help = true
)]
pub(crate) struct Cli {
    /// Daemon socket to connect to (unix:///path); default $BERTH_HOST, $DOCKER_HOST, unix:///run/berth/berth.sock
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    pub(crate) host: Option<String>,
    /// Location of client config files (default ~/.docker)
    #[arg(long = "config", value_name = "DIR")]
    pub(crate) config: Option<String>,
    /// Enable debug mode
    #[arg(short = 'D', long = "debug")]
    pub(crate) debug: bool,
    /// Set the logging level (accepted for compatibility)
    #[arg(short = 'l', long = "log-level", value_name = "LEVEL")]
    pub(crate) log_level: Option<String>,
    /// Print version information and quit
    #[arg(short = 'v', long = "version")]
    pub(crate) version: bool,
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

// Deferred: only the subcommand that runs builds its arguments (`run`
// alone has ~90), which takes a third off the CLI's start-up.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub(crate) enum Command {
    /// Create and run a new container from an image
    Run(RunArgs),
    /// Create a new container
    Create(RunArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// List containers
    Ps(PsArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Return low-level information on Docker objects
    Inspect(InspectArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(ContainersArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(ContainerArg),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Pause all processes within one or more containers
    Pause(ContainersArgs),
    /// Unpause all processes within one or more containers
    Unpause(ContainersArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// List images
    Images(ImagesArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Show the Docker version information
    Version(FormatArgs),
    /// Display system-wide information
    Info(FormatArgs),
    /// Get real time events from the server
    Events(EventsArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Build an image from a Dockerfile
    Build(BuildArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Log in to a registry
    Login(LoginArgs),
    /// Log out from a registry
    Logout(LogoutArgs),
    /// Manage networks
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Manage volumes
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Manage Docker
    #[command(subcommand)]
    System(SystemCommand),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Generate the autocompletion script for the specified shell
    Completion(CompletionArgs),
    /// Write man pages for every command into a directory
    #[command(hide = true)]
    Man(ManArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum SystemCommand {
    /// Show docker disk usage
    Df(DfArgs),
    /// Display system-wide information
    Info(FormatArgs),
    /// Get real time events from the server
    Events(EventsArgs),
    /// Remove unused data
    Prune(PruneArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum ContainerCommand {
    /// List containers
    #[command(visible_aliases = ["ps", "list"])]
    Ls(PsArgs),
    /// Create and run a new container from an image
    Run(RunArgs),
    /// Create a new container
    Create(RunArgs),
    Start(StartArgs),
    Stop(StopArgs),
    Restart(StopArgs),
    Kill(KillArgs),
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    Logs(LogsArgs),
    Exec(ExecArgs),
    Attach(AttachArgs),
    Inspect(InspectArgs),
    Wait(ContainersArgs),
    Top(TopArgs),
    Stats(StatsArgs),
    Cp(CpArgs),
    Export(ExportArgs),
    Diff(ContainerArg),
    Commit(CommitArgs),
    Rename(RenameArgs),
    Update(UpdateArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    Pause(ContainersArgs),
    Unpause(ContainersArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum ImageCommand {
    /// Build an image from a Dockerfile
    Build(BuildArgs),
    /// List images
    #[command(visible_aliases = ["list"])]
    Ls(ImagesArgs),
    Pull(PullArgs),
    Push(PushArgs),
    #[command(visible_alias = "remove")]
    Rm(RmiArgs),
    Tag(TagArgs),
    Inspect(InspectArgs),
    History(HistoryArgs),
    Save(SaveArgs),
    Load(LoadArgs),
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub(crate) struct FormatArgs {
    /// Format output using a custom template ('json' or a Go template)
    #[arg(short = 'f', long = "format")]
    pub(crate) format: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct DfArgs {
    /// Format output using a custom template
    #[arg(long = "format")]
    pub(crate) format: Option<String>,
    /// Show detailed information on space usage
    #[arg(short = 'v', long = "verbose")]
    pub(crate) verbose: bool,
}

#[derive(Debug, Args)]
pub(crate) struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "FILTER")]
    pub(crate) filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long = "format")]
    pub(crate) format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long = "since")]
    pub(crate) since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long = "until")]
    pub(crate) until: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long = "all")]
    pub(crate) all: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "FILTER")]
    pub(crate) filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long = "format")]
    pub(crate) format: Option<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", default_value_t = -1, allow_negative_numbers = true)]
    pub(crate) last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long = "latest")]
    pub(crate) latest: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub(crate) no_trunc: bool,
    /// Only display container IDs
    #[arg(short = 'q', long = "quiet")]
    pub(crate) quiet: bool,
    /// Display total file sizes
    #[arg(short = 's', long = "size")]
    pub(crate) size: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ImagesArgs {
    /// Repository (and tag) to list
    pub(crate) reference: Option<String>,
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long = "all")]
    pub(crate) all: bool,
    /// Show digests
    #[arg(long = "digests")]
    pub(crate) digests: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "FILTER")]
    pub(crate) filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long = "format")]
    pub(crate) format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub(crate) no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long = "quiet")]
    pub(crate) quiet: bool,
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    #[arg(required = true, value_name = "NAME|ID")]
    pub(crate) names: Vec<String>,
    /// Format output using a custom template
    #[arg(short = 'f', long = "format")]
    pub(crate) format: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long = "size")]
    pub(crate) size: bool,
    /// Return JSON for specified type (container, image, network, volume)
    #[arg(long = "type")]
    pub(crate) kind: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct PullArgs {
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub(crate) image: String,
    /// Download all tagged images in the repository (not supported)
    #[arg(short = 'a', long = "all-tags")]
    pub(crate) all_tags: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long = "platform")]
    pub(crate) platform: Option<String>,
    /// Suppress verbose output
    #[arg(short = 'q', long = "quiet")]
    pub(crate) quiet: bool,
    /// Skip image verification (accepted for compatibility)
    #[arg(long = "disable-content-trust", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub(crate) disable_content_trust: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PushArgs {
    #[arg(value_name = "NAME[:TAG]")]
    pub(crate) image: String,
    /// Suppress verbose output
    #[arg(short = 'q', long = "quiet")]
    pub(crate) quiet: bool,
    /// Push all tags (not supported)
    #[arg(short = 'a', long = "all-tags")]
    pub(crate) all_tags: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RmArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub(crate) containers: Vec<String>,
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long = "force")]
    pub(crate) force: bool,
    /// Remove the specified link
    #[arg(short = 'l', long = "link")]
    pub(crate) link: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long = "volumes")]
    pub(crate) volumes: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RmiArgs {
    #[arg(required = true, value_name = "IMAGE")]
    pub(crate) images: Vec<String>,
    /// Force removal of the image
    #[arg(short = 'f', long = "force")]
    pub(crate) force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    pub(crate) no_prune: bool,
}

#[derive(Debug, Args)]
pub(crate) struct TagArgs {
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub(crate) source: String,
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub(crate) target: String,
}

#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    pub(crate) container: String,
    /// Show extra details provided to logs
    #[arg(long = "details")]
    pub(crate) details: bool,
    /// Follow log output
    #[arg(short = 'f', long = "follow")]
    pub(crate) follow: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m")
    #[arg(long = "since")]
    pub(crate) since: Option<String>,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long = "tail", default_value = "all")]
    pub(crate) tail: String,
    /// Show timestamps
    #[arg(short = 't', long = "timestamps")]
    pub(crate) timestamps: bool,
    /// Show logs before a timestamp or relative
    #[arg(long = "until")]
    pub(crate) until: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ContainersArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub(crate) containers: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct StopArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub(crate) containers: Vec<String>,
    /// Signal to send to the container
    #[arg(short = 's', long = "signal")]
    pub(crate) signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "timeout",
        visible_alias = "time",
        allow_negative_numbers = true
    )]
    pub(crate) timeout: Option<i64>,
}

#[derive(Debug, Args)]
pub(crate) struct KillArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub(crate) containers: Vec<String>,
    /// Signal to send to the container
    #[arg(short = 's', long = "signal")]
    pub(crate) signal: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct StartArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub(crate) containers: Vec<String>,
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long = "attach")]
    pub(crate) attach: bool,
    /// Attach container's STDIN
    #[arg(short = 'i', long = "interactive")]
    pub(crate) interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub(crate) detach_keys: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct TopArgs {
    pub(crate) container: String,
    /// ps options
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) ps_args: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct PortArgs {
    pub(crate) container: String,
    /// PRIVATE_PORT[/PROTO]
    pub(crate) port: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct UpdateArgs {
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)
    #[arg(long = "blkio-weight", value_name = "UINT16")]
    pub(crate) blkio_weight: Option<u16>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", value_name = "INT")]
    pub(crate) cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", value_name = "INT", allow_hyphen_values = true)]
    pub(crate) cpu_quota: Option<i64>,
    /// Limit the CPU real-time period in microseconds
    #[arg(long = "cpu-rt-period", value_name = "INT")]
    pub(crate) cpu_rt_period: Option<i64>,
    /// Limit the CPU real-time runtime in microseconds
    #[arg(long = "cpu-rt-runtime", value_name = "INT")]
    pub(crate) cpu_rt_runtime: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(
        short = 'c',
        long = "cpu-shares",
        value_name = "INT",
        allow_hyphen_values = true
    )]
    pub(crate) cpu_shares: Option<i64>,
    /// Number of CPUs
    #[arg(long = "cpus", value_name = "DECIMAL")]
    pub(crate) cpus: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "STRING")]
    pub(crate) cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems", value_name = "STRING")]
    pub(crate) cpuset_mems: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long = "memory", value_name = "BYTES")]
    pub(crate) memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", value_name = "BYTES")]
    pub(crate) memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "BYTES", allow_hyphen_values = true)]
    pub(crate) memory_swap: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "INT", allow_hyphen_values = true)]
    pub(crate) pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits
    #[arg(long = "restart", value_name = "STRING")]
    pub(crate) restart: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub(crate) containers: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RenameArgs {
    pub(crate) container: String,
    pub(crate) new_name: String,
}

#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long = "detach")]
    pub(crate) detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub(crate) detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub(crate) env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub(crate) env_file: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long = "interactive")]
    pub(crate) interactive: bool,
    /// Give extended privileges to the command
    #[arg(long = "privileged")]
    pub(crate) privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long = "tty")]
    pub(crate) tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short = 'u', long = "user")]
    pub(crate) user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub(crate) workdir: Option<String>,
    /// CONTAINER COMMAND [ARG...]
    #[arg(required = true, num_args = 2.., trailing_var_arg = true, allow_hyphen_values = true, value_name = "CONTAINER COMMAND [ARG...]")]
    pub(crate) container_and_command: Vec<String>,
}

// `docker run` / `docker create` flags. `-h` is `--hostname`, as in docker, so help is `--help`.
// (A plain comment: a doc comment would replace the subcommands' about, as they are deferred.)
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub(crate) struct RunArgs {
    /// Print usage
    #[arg(long = "help", action = ArgAction::Help)]
    pub(crate) help: Option<bool>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host")]
    pub(crate) add_host: Vec<String>,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long = "attach")]
    pub(crate) attach: Vec<String>,
    /// Add Linux capabilities
    #[arg(long = "cap-add")]
    pub(crate) cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop")]
    pub(crate) cap_drop: Vec<String>,
    /// Write the container ID to the file
    #[arg(long = "cidfile")]
    pub(crate) cidfile: Option<String>,
    /// Number of CPUs
    #[arg(long = "cpus")]
    pub(crate) cpus: Option<f64>,
    /// Run container in background and print container ID
    #[arg(short = 'd', long = "detach")]
    pub(crate) detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub(crate) detach_keys: Option<String>,
    /// Set custom DNS servers
    #[arg(long = "dns")]
    pub(crate) dns: Vec<String>,
    /// Container NIS domain name
    #[arg(long = "domainname")]
    pub(crate) domainname: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long = "entrypoint")]
    pub(crate) entrypoint: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub(crate) env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub(crate) env_file: Vec<String>,
    /// Expose a port or a range of ports
    #[arg(long = "expose")]
    pub(crate) expose: Vec<String>,
    /// Container host name
    #[arg(short = 'h', long = "hostname")]
    pub(crate) hostname: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long = "init")]
    pub(crate) init: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long = "interactive")]
    pub(crate) interactive: bool,
    /// IPC mode to use
    #[arg(long = "ipc")]
    pub(crate) ipc: Option<String>,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label")]
    pub(crate) label: Vec<String>,
    /// Logging driver for the container
    #[arg(long = "log-driver")]
    pub(crate) log_driver: Option<String>,
    /// Log driver options
    #[arg(long = "log-opt")]
    pub(crate) log_opt: Vec<String>,
    /// Memory limit
    #[arg(short = 'm', long = "memory")]
    pub(crate) memory: Option<String>,
    /// Assign a name to the container
    #[arg(long = "name")]
    pub(crate) name: Option<String>,
    /// Connect a container to a network
    #[arg(long = "network", visible_alias = "net")]
    pub(crate) network: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias")]
    pub(crate) network_alias: Vec<String>,
    /// PID namespace to use
    #[arg(long = "pid")]
    pub(crate) pid: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long = "platform")]
    pub(crate) platform: Option<String>,
    /// Give extended privileges to this container
    #[arg(long = "privileged")]
    pub(crate) privileged: bool,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish")]
    pub(crate) publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub(crate) publish_all: bool,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long = "pull", default_value = "missing")]
    pub(crate) pull: String,
    /// Suppress the pull output
    #[arg(short = 'q', long = "quiet")]
    pub(crate) quiet: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub(crate) read_only: bool,
    /// Restart policy to apply when a container exits
    #[arg(long = "restart", default_value = "no")]
    pub(crate) restart: String,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long = "rm")]
    pub(crate) rm: bool,
    /// Security options
    #[arg(long = "security-opt")]
    pub(crate) security_opt: Vec<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size")]
    pub(crate) shm_size: Option<String>,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub(crate) sig_proxy: bool,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    pub(crate) stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout")]
    pub(crate) stop_timeout: Option<i64>,
    /// Mount a tmpfs directory
    #[arg(long = "tmpfs")]
    pub(crate) tmpfs: Vec<String>,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long = "tty")]
    pub(crate) tty: bool,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long = "user")]
    pub(crate) user: Option<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume")]
    pub(crate) volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long = "mount")]
    pub(crate) mount: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from")]
    pub(crate) volumes_from: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub(crate) workdir: Option<String>,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "IMAGE [COMMAND] [ARG...]"
    )]
    pub(crate) image_and_command: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct CompletionArgs {
    /// bash, zsh, fish, elvish or powershell
    pub(crate) shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub(crate) struct ManArgs {
    /// Directory to write berth.1, berth-run.1, ... into
    pub(crate) dir: std::path::PathBuf,
}

#[derive(Debug, Subcommand)]
pub(crate) enum NetworkCommand {
    /// Create a network
    Create(NetworkCreateArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(NetworkLsArgs),
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm(NamesArgs),
    /// Display detailed information on one or more networks
    Inspect(NamesFormatArgs),
    /// Connect a container to a network
    Connect(NetworkConnectArgs),
    /// Disconnect a container from a network
    Disconnect(NetworkDisconnectArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum VolumeCommand {
    /// Create a volume
    Create(VolumeCreateArgs),
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(VolumeLsArgs),
    /// Remove one or more volumes
    #[command(visible_alias = "remove")]
    Rm(VolumeRmArgs),
    /// Display detailed information on one or more volumes
    Inspect(NamesFormatArgs),
    /// Remove unused local volumes
    Prune(VolumePruneArgs),
}

#[derive(Debug, Args)]
pub(crate) struct NamesArgs {
    #[arg(required = true)]
    pub(crate) names: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct NamesFormatArgs {
    #[arg(required = true)]
    pub(crate) names: Vec<String>,
    /// Format output using a custom template
    #[arg(short = 'f', long = "format")]
    pub(crate) format: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct NetworkCreateArgs {
    pub(crate) name: String,
    /// Driver to manage the Network
    #[arg(short = 'd', long = "driver", default_value = "bridge")]
    pub(crate) driver: String,
    /// Restrict external access to the network
    #[arg(long = "internal")]
    pub(crate) internal: bool,
    /// Enable manual container attachment
    #[arg(long = "attachable")]
    pub(crate) attachable: bool,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long = "subnet")]
    pub(crate) subnet: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long = "gateway")]
    pub(crate) gateway: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt")]
    pub(crate) opt: Vec<String>,
    /// Set metadata on a network
    #[arg(long = "label")]
    pub(crate) label: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct NetworkLsArgs {
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short = 'f', long = "filter")]
    pub(crate) filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long = "format")]
    pub(crate) format: Option<String>,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    pub(crate) no_trunc: bool,
    /// Only display network IDs
    #[arg(short = 'q', long = "quiet")]
    pub(crate) quiet: bool,
}

#[derive(Debug, Args)]
pub(crate) struct NetworkConnectArgs {
    pub(crate) network: String,
    pub(crate) container: String,
    /// Add network-scoped alias for the container
    #[arg(long = "alias")]
    pub(crate) alias: Vec<String>,
    /// IPv4 address
    #[arg(long = "ip")]
    pub(crate) ip: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct NetworkDisconnectArgs {
    pub(crate) network: String,
    pub(crate) container: String,
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long = "force")]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct VolumeCreateArgs {
    pub(crate) name: Option<String>,
    /// Specify volume driver name
    #[arg(short = 'd', long = "driver", default_value = "local")]
    pub(crate) driver: String,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt")]
    pub(crate) opt: Vec<String>,
    /// Set metadata for a volume
    #[arg(long = "label")]
    pub(crate) label: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct VolumeLsArgs {
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short = 'f', long = "filter")]
    pub(crate) filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long = "format")]
    pub(crate) format: Option<String>,
    /// Only display volume names
    #[arg(short = 'q', long = "quiet")]
    pub(crate) quiet: bool,
}

#[derive(Debug, Args)]
pub(crate) struct VolumePruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long = "all")]
    pub(crate) all: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long = "filter")]
    pub(crate) filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct VolumeRmArgs {
    #[arg(required = true)]
    pub(crate) names: Vec<String>,
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long = "force")]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    /// Server (default: Docker Hub)
    pub(crate) server: Option<String>,
    /// Username
    #[arg(short = 'u', long = "username")]
    pub(crate) username: Option<String>,
    /// Password
    #[arg(short = 'p', long = "password")]
    pub(crate) password: Option<String>,
    /// Take the password from stdin
    #[arg(long = "password-stdin")]
    pub(crate) password_stdin: bool,
}

#[derive(Debug, Args)]
pub(crate) struct LogoutArgs {
    /// Server (default: Docker Hub)
    pub(crate) server: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    pub(crate) image: String,
    /// Format output using a custom template
    #[arg(long = "format")]
    pub(crate) format: Option<String>,
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long = "human", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub(crate) human: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub(crate) no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long = "quiet")]
    pub(crate) quiet: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SaveArgs {
    #[arg(required = true, value_name = "IMAGE")]
    pub(crate) images: Vec<String>,
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long = "output")]
    pub(crate) output: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct BuildArgs {
    /// PATH | - : the context directory, or a tar of it on stdin
    pub(crate) path: String,
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long = "tag")]
    pub(crate) tag: Vec<String>,
    /// Name of the Dockerfile (default: "PATH/Dockerfile")
    #[arg(short = 'f', long = "file")]
    pub(crate) file: Option<String>,
    /// Set build-time variables
    #[arg(long = "build-arg")]
    pub(crate) build_arg: Vec<String>,
    /// Set metadata for an image
    #[arg(long = "label")]
    pub(crate) label: Vec<String>,
    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long = "quiet")]
    pub(crate) quiet: bool,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub(crate) no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long = "pull")]
    pub(crate) pull: bool,
    /// Remove intermediate containers after a successful build
    #[arg(long = "rm", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub(crate) rm: bool,
    /// Always remove intermediate containers
    #[arg(long = "force-rm")]
    pub(crate) force_rm: bool,
    /// Write the image ID to the file
    #[arg(long = "iidfile")]
    pub(crate) iidfile: Option<String>,
    /// Set the target build stage to build
    #[arg(long = "target")]
    pub(crate) target: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long = "input")]
    pub(crate) input: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long = "quiet")]
    pub(crate) quiet: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// file|URL|- : the tarball
    pub(crate) source: String,
    /// REPOSITORY[:TAG]
    pub(crate) reference: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change")]
    pub(crate) change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long = "message")]
    pub(crate) message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long = "platform")]
    pub(crate) platform: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct PruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short = 'a', long = "all")]
    pub(crate) all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub(crate) force: bool,
    /// Prune anonymous volumes
    #[arg(long = "volumes")]
    pub(crate) volumes: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long = "filter")]
    pub(crate) filter: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct StatsArgs {
    /// Containers (default: all running)
    pub(crate) containers: Vec<String>,
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long = "all")]
    pub(crate) all: bool,
    /// Format output using a custom template
    #[arg(long = "format")]
    pub(crate) format: Option<String>,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    pub(crate) no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub(crate) no_trunc: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    pub(crate) container: String,
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long = "output")]
    pub(crate) output: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ContainerArg {
    pub(crate) container: String,
}

#[derive(Debug, Args)]
pub(crate) struct CommitArgs {
    pub(crate) container: String,
    /// REPOSITORY[:TAG]
    pub(crate) reference: Option<String>,
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long = "author")]
    pub(crate) author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change")]
    pub(crate) change: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long = "message")]
    pub(crate) message: Option<String>,
    /// Pause container during commit
    #[arg(short = 'p', long = "pause", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub(crate) pause: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CpArgs {
    /// CONTAINER:SRC_PATH or SRC_PATH|-
    pub(crate) src: String,
    /// DEST_PATH|- or CONTAINER:DEST_PATH
    pub(crate) dest: String,
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long = "archive")]
    pub(crate) archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub(crate) follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short = 'q', long = "quiet")]
    pub(crate) quiet: bool,
}

#[derive(Debug, Args)]
pub(crate) struct AttachArgs {
    pub(crate) container: String,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub(crate) detach_keys: Option<String>,
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub(crate) no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub(crate) sig_proxy: bool,
}

//! `berthd`'s command line and its TOML config file. Flags override the file,
//! the file overrides the built-in defaults.

use std::path::{Path, PathBuf};

use clap::Parser;
use serde::Deserialize;

/// Config file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/berth/berthd.toml";
const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";
const DEFAULT_DATA_ROOT: &str = "/var/lib/berth";
const DEFAULT_EXEC_ROOT: &str = "/run/berth";
const DEFAULT_BRIDGE: &str = "berth0";
const DEFAULT_CGROUP_PARENT: &str = "/berth";
const DEFAULT_NETWORK_POOL: usize = 2;

/// Command line of `berthd`.
#[derive(Debug, Parser)]
#[command(
    name = "berthd",
    version,
    about = "Berth daemon: serves the Docker Engine API on a unix socket"
)]
pub struct Args {
    /// TOML config file [default: /etc/berth/berthd.toml if it exists]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Path of the API socket [default: /run/berth/berth.sock]
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Persistent state: images, containers, volumes [default: /var/lib/berth]
    #[arg(long, value_name = "DIR")]
    pub data_root: Option<PathBuf>,
    /// Runtime state that does not survive a reboot: pidfile, container state [default: /run/berth]
    #[arg(long, value_name = "DIR")]
    pub exec_root: Option<PathBuf>,
    /// Log level [default: info]
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub log_level: Option<LogLevel>,
    /// A registry (`host[:port]`) spoken to over plain HTTP; repeatable.
    /// Loopback registries always are.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,
    /// Bridge of the default network, or `none` for no default network
    /// (containers then get an empty network namespace) [default: berth0]
    #[arg(long, value_name = "NAME")]
    pub bridge: Option<String>,
    /// Parent cgroup of every container's (`<parent>/<id>`), unless the
    /// container names its own [default: /berth]
    #[arg(long, value_name = "CGROUP")]
    pub cgroup_parent: Option<String>,
    /// Network namespaces with a veth pair kept ready per bridge network
    /// that containers start on, so a start skips making them; 0 keeps
    /// none [default: 2]
    #[arg(long, value_name = "N")]
    pub network_pool: Option<usize>,
}

/// How much `berthd` logs to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Only failures.
    Error = 1,
    /// Failures and suspicious conditions.
    Warn = 2,
    /// Start, stop and notable events.
    Info = 3,
    /// Every request.
    Debug = 4,
}

impl LogLevel {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
        }
    }
}

/// The config file's keys (all optional), e.g. `socket = "/run/berth/berth.sock"`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    socket: Option<PathBuf>,
    data_root: Option<PathBuf>,
    exec_root: Option<PathBuf>,
    log_level: Option<LogLevel>,
    insecure_registries: Option<Vec<String>>,
    bridge: Option<String>,
    cgroup_parent: Option<String>,
    network_pool: Option<usize>,
}

/// The settings `berthd` runs with, after merging flags, file and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Path of the API socket.
    pub socket: PathBuf,
    /// Persistent state directory (holds the lock that keeps a second daemon out).
    pub data_root: PathBuf,
    /// Runtime state directory (holds the pidfile).
    pub exec_root: PathBuf,
    /// Log level.
    pub log_level: LogLevel,
    /// Registries spoken to over plain HTTP (flags and file together).
    pub insecure_registries: Vec<String>,
    /// The default network's bridge; `None` for `--bridge none`.
    pub bridge: Option<String>,
    /// Parent cgroup of the containers' cgroups, absolute (`/berth`).
    pub cgroup_parent: String,
    /// Spare network namespaces kept per bridge network in use.
    pub network_pool: usize,
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("reading config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has unknown keys.
    #[error("parsing config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        source: Box<toml::de::Error>,
    },
    /// `--cgroup-parent` escapes the hierarchy or is its root.
    #[error("invalid cgroup parent {0:?}: a cgroup below the root, without '..'")]
    CgroupParent(String),
}

impl Config {
    /// Merges the flags with the config file (the explicit `--config`, else
    /// the default file when it exists) and the defaults.
    pub fn load(args: Args) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file_config(path)?,
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                read_file_config(Path::new(DEFAULT_CONFIG_FILE))?
            }
            None => FileConfig::default(),
        };
        // Absolute from here on: the paths end up in OCI specs and shim
        // arguments, read by processes with another working directory.
        let absolute = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
        Ok(Config {
            socket: absolute(
                args.socket
                    .or(file.socket)
                    .unwrap_or_else(|| DEFAULT_SOCKET.into()),
            ),
            data_root: absolute(
                args.data_root
                    .or(file.data_root)
                    .unwrap_or_else(|| DEFAULT_DATA_ROOT.into()),
            ),
            exec_root: absolute(
                args.exec_root
                    .or(file.exec_root)
                    .unwrap_or_else(|| DEFAULT_EXEC_ROOT.into()),
            ),
            log_level: args.log_level.or(file.log_level).unwrap_or(LogLevel::Info),
            insecure_registries: file
                .insecure_registries
                .unwrap_or_default()
                .into_iter()
                .chain(args.insecure_registries)
                .collect(),
            bridge: Some(
                args.bridge
                    .or(file.bridge)
                    .unwrap_or_else(|| DEFAULT_BRIDGE.into()),
            )
            .filter(|b| b != "none"),
            cgroup_parent: cgroup_parent(
                args.cgroup_parent
                    .or(file.cgroup_parent)
                    .unwrap_or_else(|| DEFAULT_CGROUP_PARENT.into()),
            )?,
            network_pool: args
                .network_pool
                .or(file.network_pool)
                .unwrap_or(DEFAULT_NETWORK_POOL),
        })
    }
}

/// A cgroup path below the hierarchy's root: absolute, no `..`.
fn cgroup_parent(path: String) -> Result<String, ConfigError> {
    if path.split('/').any(|c| c == "..") || path.trim_matches('/').is_empty() {
        return Err(ConfigError::CgroupParent(path));
    }
    Ok(format!("/{}", path.trim_matches('/')))
}

fn read_file_config(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_owned(),
        source: Box::new(source),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Args {
        Args::parse_from(std::iter::once("berthd").chain(list.iter().copied()))
    }

    #[test]
    fn relative_paths_become_absolute() {
        let config = Config::load(args(&[
            "--config",
            "/dev/null",
            "--data-root",
            "rel/data",
            "--exec-root",
            "./exec",
            "--socket",
            "b.sock",
        ]))
        .unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(config.data_root, cwd.join("rel/data"));
        assert_eq!(config.exec_root, cwd.join("exec"));
        assert_eq!(config.socket, cwd.join("b.sock"));
    }

    #[test]
    fn flags_override_file_and_file_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("berthd.toml");
        std::fs::write(
            &file,
            "socket = \"/tmp/from-file.sock\"\ndata-root = \"/srv/berth\"\nlog-level = \"debug\"\n",
        )
        .unwrap();
        let config = Config::load(args(&[
            "--config",
            file.to_str().unwrap(),
            "--socket",
            "/tmp/from-flag.sock",
        ]))
        .unwrap();
        assert_eq!(config.socket, PathBuf::from("/tmp/from-flag.sock"));
        assert_eq!(config.data_root, PathBuf::from("/srv/berth"));
        assert_eq!(config.exec_root, PathBuf::from(DEFAULT_EXEC_ROOT));
        assert_eq!(config.log_level, LogLevel::Debug);
        assert!(config.insecure_registries.is_empty());
    }

    #[test]
    fn insecure_registries_come_from_file_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("berthd.toml");
        std::fs::write(&file, "insecure-registries = [\"reg.lan:5000\"]\n").unwrap();
        let config = Config::load(args(&[
            "--config",
            file.to_str().unwrap(),
            "--insecure-registry",
            "other.lan",
        ]))
        .unwrap();
        assert_eq!(config.insecure_registries, ["reg.lan:5000", "other.lan"]);
    }

    #[test]
    fn cgroup_parent_is_absolute_and_stays_below_the_root() {
        let load = |list: &[&str]| {
            let mut all = vec!["--config", "/dev/null"];
            all.extend_from_slice(list);
            Config::load(args(&all))
        };
        assert_eq!(load(&[]).unwrap().cgroup_parent, "/berth");
        let nested = load(&["--cgroup-parent", "ci/berth/"]).unwrap();
        assert_eq!(nested.cgroup_parent, "/ci/berth");
        for bad in ["/", "../x", "/a/../../b"] {
            let err = load(&["--cgroup-parent", bad]).unwrap_err();
            assert!(
                err.to_string().contains("invalid cgroup parent"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn bridge_defaults_to_berth0_and_none_disables_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("berthd.toml");
        std::fs::write(&file, "bridge = \"br-file\"\n").unwrap();
        let path = file.to_str().unwrap();
        let empty = Config::load(args(&["--config", "/dev/null"])).unwrap();
        assert_eq!(empty.bridge.as_deref(), Some("berth0"));
        let from_file = Config::load(args(&["--config", path])).unwrap();
        assert_eq!(from_file.bridge.as_deref(), Some("br-file"));
        let none = Config::load(args(&["--config", path, "--bridge", "none"])).unwrap();
        assert_eq!(none.bridge, None);
    }

    #[test]
    fn network_pool_from_flag_file_or_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("berthd.toml");
        std::fs::write(&file, "network-pool = 4\n").unwrap();
        let path = file.to_str().unwrap();
        let default = Config::load(args(&["--config", "/dev/null"])).unwrap();
        assert_eq!(default.network_pool, 2);
        assert_eq!(
            Config::load(args(&["--config", path]))
                .unwrap()
                .network_pool,
            4
        );
        let off = Config::load(args(&["--config", path, "--network-pool", "0"])).unwrap();
        assert_eq!(off.network_pool, 0);
    }

    #[test]
    fn unknown_key_and_missing_file_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("berthd.toml");
        std::fs::write(&file, "sockett = \"/x\"\n").unwrap();
        let err = Config::load(args(&["--config", file.to_str().unwrap()])).unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
        assert!(err.to_string().contains("sockett"), "{err}");

        let missing = dir.path().join("missing.toml");
        let err = Config::load(args(&["--config", missing.to_str().unwrap()])).unwrap_err();
        assert!(err.to_string().contains("missing.toml"), "{err}");
    }
}

//! A real `docker-registry` (Debian's distribution server) on a free
//! loopback port with storage of its own, optionally behind htpasswd or
//! another `auth:` section; killed on drop.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_core::{Digest, Reference};

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (20 s at most) until something accepts on `127.0.0.1:port`.
pub fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `docker-registry serve` process with its own storage.
#[derive(Debug)]
pub struct TestRegistry {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl TestRegistry {
    /// Starts a registry; with `htpasswd = Some((user, pass))` it requires
    /// Basic auth (bcrypt htpasswd).
    pub fn start(htpasswd: Option<(&str, &str)>) -> Self {
        let dir = registry_dir();
        let mut auth = String::new();
        if let Some((user, pass)) = htpasswd {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, pass])
                .output()
                .expect("running htpasswd");
            assert!(out.status.success(), "htpasswd failed");
            let path = dir.path().join("htpasswd");
            std::fs::write(&path, &out.stdout).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                path.display()
            );
        }
        Self::start_in(dir, &auth)
    }

    /// Starts a registry whose config has `auth` (YAML, an `auth:` section).
    pub fn start_with_auth(auth: &str) -> Self {
        Self::start_in(registry_dir(), auth)
    }

    fn start_in(dir: tempfile::TempDir, auth: &str) -> Self {
        let mut registry = Self {
            dir,
            port: 0,
            child: None,
        };
        // A port taken between free_port() and the registry's bind makes
        // the registry exit: retry with another.
        for _ in 0..5 {
            registry.port = free_port();
            let config = format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{}\n{auth}",
                registry.dir.path().join("storage").display(),
                registry.port
            );
            std::fs::write(registry.config_path(), config).unwrap();
            if registry.spawn() {
                return registry;
            }
        }
        panic!("docker-registry did not start");
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.yml")
    }

    /// Runs the registry on `self.port`; false when it exited (the port was
    /// taken) or did not listen within 20 s.
    fn spawn(&mut self) -> bool {
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(self.config_path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting docker-registry");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr: SocketAddr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return true;
            }
            if let Some(child) = &mut self.child
                && child.try_wait().unwrap().is_some()
            {
                self.child = None;
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        false
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A reference `127.0.0.1:PORT/<rest>`.
    pub fn reference(&self, rest: &str) -> Reference {
        Reference::parse(&format!("{}/{rest}", self.host())).unwrap()
    }

    /// Where the registry keeps the bytes of blob `digest`.
    pub fn blob_data_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.storage()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(&hex)
            .join("data")
    }

    fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the registry again on the same port and storage.
    pub fn restart(&mut self) {
        self.kill();
        assert!(
            self.spawn(),
            "docker-registry did not start again on port {}",
            self.port
        );
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.kill();
    }
}

fn registry_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("berth-test-registry")
        .tempdir()
        .unwrap()
}

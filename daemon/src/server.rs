//! Process concerns: directories, the data-root lock, the pidfile, the unix
//! socket, the accept loop, and a clean shutdown on SIGTERM/SIGINT.

use std::convert::Infallible;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::api::App;
use crate::config::Config;
use crate::engine::{Engine, EngineConfig, EngineError};
use crate::log;

/// How long in-flight requests may run after SIGTERM before they are cut.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why `berthd` could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A directory, lock, pidfile or socket operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Another berthd holds the data root's lock.
    #[error(
        "another berthd{holder} is already using data root {data_root} (lock {lock} is held); stop it or pass a different --data-root"
    )]
    AlreadyRunning {
        /// The contested data root.
        data_root: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// `" (pid N)"` when the lock file names its holder.
        holder: String,
    },
    /// Something answers on the socket path already.
    #[error("socket {0} is in use by another process; stop it or pass a different --socket")]
    SocketInUse(PathBuf),
    /// The socket path exists and is not a socket.
    #[error("{0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    /// The engine could not start.
    #[error("starting the engine: {0}")]
    Engine(String),
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ServeError {
    let path = path.to_owned();
    move |source| ServeError::Io { what, path, source }
}

fn create_dir(path: &Path) -> Result<(), ServeError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(path)
        .map_err(io_err("creating directory", path))
}

/// Takes the exclusive lock on `<data_root>/berthd.lock`, held for the
/// daemon's lifetime (the kernel drops it if the process dies).
fn lock_data_root(data_root: &Path) -> Result<File, ServeError> {
    let path = data_root.join("berthd.lock");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err("opening lock file", &path))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let holder = text
                .trim()
                .parse::<u32>()
                .map_or_else(|_| String::new(), |pid| format!(" (pid {pid})"));
            return Err(ServeError::AlreadyRunning {
                data_root: data_root.to_owned(),
                lock: path,
                holder,
            });
        }
        Err(errno) => return Err(io_err("locking", &path)(errno.into())),
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .map_err(io_err("writing pid to lock file", &path))?;
    Ok(file)
}

/// The group that may use the socket, if it exists (read from /etc/group).
fn berth_gid() -> Option<u32> {
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == "berth").then_some(())?;
        fields.nth(1)?.parse().ok()
    })
}

/// Binds the API socket: refuses a live one, replaces a stale one, then
/// sets mode 0660 and owner root:berth (root:root without that group).
fn bind_socket(path: &Path) -> Result<UnixListener, ServeError> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(ServeError::NotASocket(path.to_owned()));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ServeError::SocketInUse(path.to_owned()));
        }
        log::info!("removing stale socket {}", path.display());
        std::fs::remove_file(path).map_err(io_err("removing stale socket", path))?;
    }
    let listener = UnixListener::bind(path).map_err(io_err("binding socket", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(io_err("setting mode of socket", path))?;
    std::os::unix::fs::chown(path, Some(0), Some(berth_gid().unwrap_or(0)))
        .map_err(io_err("setting owner of socket", path))?;
    Ok(listener)
}

/// Removes the file on drop (pidfile, socket), so every exit path cleans up.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(config: Config) -> Result<(), ServeError> {
    log::set_level(config.log_level);
    create_dir(&config.data_root)?;
    create_dir(&config.exec_root)?;
    if let Some(parent) = config.socket.parent() {
        create_dir(parent)?;
    }
    let _lock = lock_data_root(&config.data_root)?;

    let pidfile = config.exec_root.join("berthd.pid");
    std::fs::write(&pidfile, format!("{}\n", std::process::id()))
        .map_err(io_err("writing pidfile", &pidfile))?;
    let _pidfile = RemoveOnDrop(pidfile);

    let engine = Arc::new(
        Engine::new(EngineConfig {
            data_root: config.data_root.clone(),
            exec_root: config.exec_root.clone(),
            insecure_registries: config.insecure_registries.clone(),
            default_bridge: config.bridge.clone(),
            cgroup_parent: config.cgroup_parent.clone(),
            network_pool: config.network_pool,
        })
        .map_err(|e: EngineError| ServeError::Engine(e.to_string()))?,
    );
    let app = Arc::new(App::new(engine.clone()));

    let mut sigterm =
        signal(SignalKind::terminate()).map_err(io_err("handling SIGTERM for", &config.socket))?;
    let mut sigint =
        signal(SignalKind::interrupt()).map_err(io_err("handling SIGINT for", &config.socket))?;

    let listener = bind_socket(&config.socket)?;
    let socket_guard = RemoveOnDrop(config.socket.clone());
    log::info!(
        "berthd {} serving the Docker API on {} (data root {})",
        env!("CARGO_PKG_VERSION"),
        config.socket.display(),
        config.data_root.display()
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, app.clone(), stop_rx.clone()));
                }
                Err(err) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    log::warning!("accepting a connection: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = sigterm.recv() => { log::info!("SIGTERM received, shutting down"); break; }
            _ = sigint.recv() => { log::info!("SIGINT received, shutting down"); break; }
        }
    }

    // Stop accepting first, then let streams end and requests finish.
    drop(listener);
    drop(socket_guard);
    engine.begin_shutdown();
    stop_tx.send_replace(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        log::warning!(
            "{} connections still busy after {:?}; closing them",
            connections.len(),
            SHUTDOWN_GRACE
        );
        connections.abort_all();
    }
    // Spare containers are no user's: they do not outlive berthd.
    engine.drop_spare_containers().await;
    log::info!("berthd stopped");
    Ok(())
}

async fn serve_connection<S>(stream: S, app: Arc<App>, mut stop: watch::Receiver<bool>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // Held while the connection is served: its drop tells waiters that
    // this client has gone (see `engine::activity`).
    let client_connection = app.engine().activity().connection();
    let client = client_connection.client();
    let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        let app = app.clone();
        app.engine().activity().request();
        req.extensions_mut().insert(client.clone());
        async move { Ok::<_, Infallible>(app.dispatch(req).await) }
    });
    let connection = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(err) = result {
                log::debug!("connection ended with an error: {err}");
            }
        }
        _ = async { let _ = stop.wait_for(|stop| *stop).await; } => {
            // Finish the request in flight (if any), then close.
            connection.as_mut().graceful_shutdown();
            if let Err(err) = connection.await {
                log::debug!("connection ended with an error during shutdown: {err}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::events::{Event, EventType};
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};
    use hyper::client::conn::http1::SendRequest;
    use std::collections::BTreeMap;

    fn test_engine(dir: &Path) -> Arc<Engine> {
        Arc::new(
            Engine::new(EngineConfig {
                data_root: dir.to_owned(),
                exec_root: dir.to_owned(),
                insecure_registries: Vec::new(),
                default_bridge: None,
                cgroup_parent: "/berth".to_owned(),
                network_pool: 0,
            })
            .unwrap(),
        )
    }

    /// Serves `app` over an in-memory pipe and returns a client for it.
    async fn connect(app: App) -> (SendRequest<Empty<Bytes>>, tokio::task::JoinHandle<()>) {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let (stop_tx, stop_rx) = watch::channel(false);
        let server = tokio::spawn(async move {
            serve_connection(server_io, Arc::new(app), stop_rx).await;
            drop(stop_tx);
        });
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(client_io))
            .await
            .unwrap();
        tokio::spawn(connection);
        (sender, server)
    }

    fn get(path: &str) -> http::Request<Empty<Bytes>> {
        http::Request::get(path)
            .header("Host", "docker")
            .body(Empty::new())
            .unwrap()
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_500_and_the_connection_keeps_serving() {
        let dir = tempfile::tempdir().unwrap();
        let mut app = App::new(test_engine(dir.path()));
        app.router_mut()
            .get("/boom", |_call| async { panic!("handler bug") });
        let (mut sender, server) = connect(app).await;

        let boom = sender.send_request(get("/v1.47/boom")).await.unwrap();
        assert_eq!(boom.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(boom.headers()["Content-Type"], "application/json");
        let body = boom.into_body().collect().await.unwrap().to_bytes();
        let message: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            message["message"],
            "internal error: request handler panicked: handler bug"
        );
        // Same connection (keep-alive), next request still served.
        let ping = sender.send_request(get("/_ping")).await.unwrap();
        assert_eq!(ping.status(), http::StatusCode::OK);
        drop(sender);
        server.await.unwrap();
    }

    #[tokio::test]
    async fn event_streams_deliver_matching_events_live_and_end_at_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let engine = test_engine(dir.path());
        let (mut sender, _server) = connect(App::new(engine.clone())).await;
        // filters={"type":["container"]}
        let response = sender
            .send_request(get(
                "/v1.47/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D",
            ))
            .await
            .unwrap();
        assert_eq!(response.status(), http::StatusCode::OK);
        assert_eq!(response.headers()["Transfer-Encoding"], "chunked");
        assert_eq!(engine.events().listeners(), 1);
        let mut body = response.into_body();

        let mut attributes = BTreeMap::new();
        attributes.insert("name".to_owned(), "web".to_owned());
        engine.events().publish(Event::now(
            EventType::Image,
            "pull",
            "busybox:latest",
            BTreeMap::new(),
        ));
        engine
            .events()
            .publish(Event::now(EventType::Container, "start", "abc", attributes));
        // Each message arrives as its own chunk while the stream stays open.
        let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
        let message: serde_json::Value = serde_json::from_slice(&frame).unwrap();
        assert_eq!(message["Type"], "container");
        assert_eq!(message["Action"], "start");
        assert_eq!(message["Actor"]["Attributes"]["name"], "web");
        assert!(frame.ends_with(b"\n"));

        engine.begin_shutdown();
        assert!(
            body.frame().await.is_none(),
            "stream should end at shutdown"
        );
    }
}

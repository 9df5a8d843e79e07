//! The hijacked routes: `POST /containers/{id}/attach` and
//! `POST /exec/{id}/start`. With `Upgrade: tcp` the answer is
//! `101 Switching Protocols` and the connection becomes a raw stream:
//! container output to the client (stdcopy frames without a tty, raw bytes
//! with one), client bytes to the process's stdin. A half-close by the
//! client only ends stdin; the server closes the connection when the
//! process's output ends (its exit). Without `Upgrade` (docker-py's
//! detached exec, old clients) the output is a plain streamed body.
//!
//! Blocking reads (the shim's attach socket, an exec's pipes or pty) run on
//! their own threads and feed a channel the connection's task drains.

use std::convert::Infallible;
use std::fs::File;
use std::io::Read;
use std::sync::Arc;

use berth_core::{DetachKeys, DetachMatcher};
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{id, stream_content_type};
use crate::api::body::{MAX_JSON_BODY, read_json};
use crate::api::error::ApiError;
use crate::api::response::empty_body;
use crate::api::{ApiResult, Body, Call};
use crate::engine::Engine;
use crate::engine::containers::exec::ExecInstance;
use crate::engine::logs::{LogOptions, read_history};
use crate::log;

const STDOUT: u8 = 1;
const STDERR: u8 = 2;

/// One chunk for the client: a stdcopy frame, or the bytes as they are
/// with a tty.
fn encode(stream: u8, data: &[u8], tty: bool) -> Bytes {
    if tty {
        return Bytes::copy_from_slice(data);
    }
    let mut out = BytesMut::with_capacity(data.len() + 8);
    out.put_u8(stream);
    out.put_bytes(0, 3);
    out.put_u32(data.len() as u32);
    out.put_slice(data);
    out.freeze()
}

fn wants_upgrade(call: &Call) -> bool {
    call.req.headers().contains_key(header::UPGRADE)
}

fn switching_protocols(content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(empty_body());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A streamed body fed by a channel, for clients that did not upgrade.
fn channel_body(content_type: &'static str) -> (mpsc::Sender<Bytes>, Response<Body>) {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let frames = futures_util::stream::unfold(rx, |mut rx| async move {
        let bytes = rx.recv().await?;
        Some((Ok::<_, Infallible>(Frame::data(bytes)), rx))
    });
    let mut response = Response::new(StreamBody::new(frames).boxed_unsync());
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    (tx, response)
}

/// Copies the client's bytes into the process's stdin until the client
/// half-closes (false) or types the detach keys (true; they are not passed
/// on). Dropping the file then closes stdin if it was the last write end,
/// as with `StdinOnce`.
async fn forward_stdin<R>(mut reader: R, stdin: File, mut detach: Option<DetachMatcher>) -> bool
where
    R: AsyncRead + Unpin,
{
    let mut file = tokio::fs::File::from_std(stdin);
    let mut buf = vec![0u8; 8192];
    let mut passed = Vec::with_capacity(buf.len());
    let detached = loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break false,
            Ok(n) => n,
        };
        let (chunk, hit) = match detach.as_mut() {
            Some(matcher) => {
                passed.clear();
                let hit = matcher.feed(&buf[..n], &mut passed);
                (&passed[..], hit)
            }
            None => (&buf[..n], false),
        };
        if file.write_all(chunk).await.is_err() || hit {
            break hit;
        }
    };
    if let Some(held) = detach
        .as_ref()
        .map(DetachMatcher::held)
        .filter(|_| !detached)
    {
        let _ = file.write_all(held).await;
    }
    let _ = file.flush().await;
    detached
}

/// The detach keys of a tty session (docker watches for them only with a
/// tty); `keys` empty means the default, ctrl-p ctrl-q.
fn detach_matcher(keys: Option<&str>, tty: bool) -> Result<Option<DetachMatcher>, ApiError> {
    let keys =
        DetachKeys::parse(keys.unwrap_or("")).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(tty.then(|| keys.matcher()))
}

/// Resolves if the stdin task ends with the detach keys; never otherwise.
async fn detached(stdin_task: Option<tokio::task::JoinHandle<bool>>) {
    let detached = match stdin_task {
        Some(task) => task.await.unwrap_or(false),
        None => false,
    };
    if !detached {
        std::future::pending::<()>().await;
    }
}

/// Sends output chunks to the client until the channel ends; false if the
/// client hung up first.
async fn pump<W>(mut writer: W, mut output: mpsc::Receiver<Bytes>) -> bool
where
    W: AsyncWrite + Unpin,
{
    while let Some(bytes) = output.recv().await {
        if writer.write_all(&bytes).await.is_err() || writer.flush().await.is_err() {
            return false;
        }
    }
    let _ = writer.shutdown().await;
    true
}

pub(super) async fn attach(mut call: Call) -> ApiResult {
    let reference = id(&call);
    let record = call.engine.container_get(&reference)?;
    let q = &call.query;
    let (want_stdin, want_stdout, want_stderr) =
        (q.bool("stdin"), q.bool("stdout"), q.bool("stderr"));
    let (logs, stream) = (q.bool("logs"), q.bool("stream"));
    let tty = record.config.tty;
    let content_type = stream_content_type(call.version, tty);
    let history = if logs {
        let path = call.engine.containers().log_path(&record.id);
        let opts = LogOptions {
            stdout: want_stdout,
            stderr: want_stderr,
            tty,
            ..LogOptions::default()
        };
        tokio::task::spawn_blocking(move || read_history(&path, opts))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
            .into_iter()
            .map(|m| m.encode(false, tty))
            .collect()
    } else {
        Vec::new()
    };
    let detach = detach_matcher(q.get("detachKeys"), tty)?;
    let stdin_wanted = want_stdin && record.config.open_stdin;
    let attached = if stream {
        Some(
            call.engine
                .container_attach(&reference, stdin_wanted)
                .await?,
        )
    } else {
        None
    };
    let (out_tx, out_rx) = mpsc::channel::<Bytes>(64);
    let (stdin_tx, stdin_rx) = tokio::sync::oneshot::channel::<File>();
    // Feeds `out_tx`: the log history, then the live output.
    tokio::spawn(async move {
        for chunk in history {
            if out_tx.send(chunk).await.is_err() {
                return;
            }
        }
        let Some(attached) = attached else { return };
        let mut attach = match attached.await {
            Ok(Ok(attach)) => attach,
            Ok(Err(err)) => {
                log::debug!("attach: {err}");
                return;
            }
            Err(_) => return, // the container was removed before a start
        };
        if let Some(stdin) = attach.stdin.take().filter(|_| stdin_wanted) {
            let _ = stdin_tx.send(stdin);
        }
        let closer = attach.closer().ok();
        let (frame_tx, mut frame_rx) = mpsc::channel::<(u8, Vec<u8>)>(64);
        std::thread::spawn(move || {
            while let Ok(Some(frame)) = attach.read_frame() {
                if frame_tx.blocking_send(frame).is_err() {
                    break;
                }
            }
        });
        loop {
            let frame = tokio::select! {
                frame = frame_rx.recv() => frame,
                // The client left (or detached): stop the reader above
                // even while the container prints nothing.
                () = out_tx.closed() => None,
            };
            let Some((stream, data)) = frame else { break };
            let wanted = if stream == STDERR {
                want_stderr
            } else {
                want_stdout
            };
            if wanted && out_tx.send(encode(stream, &data, tty)).await.is_err() {
                break;
            }
        }
        if let Some(closer) = closer {
            closer.close();
        }
    });
    if !wants_upgrade(&call) {
        let (tx, response) = channel_body(content_type);
        tokio::spawn(relay(out_rx, tx));
        return Ok(response);
    }
    let upgrade = hyper::upgrade::on(&mut call.req);
    let (engine, container_id) = (call.engine.clone(), record.id.clone());
    tokio::spawn(async move {
        let upgraded = match upgrade.await {
            Ok(upgraded) => upgraded,
            Err(err) => {
                log::debug!("attach upgrade failed: {err}");
                return;
            }
        };
        let (reader, writer) = tokio::io::split(TokioIo::new(upgraded));
        let stdin_task = tokio::spawn(async move {
            match stdin_rx.await {
                Ok(stdin) => forward_stdin(reader, stdin, detach).await,
                Err(_) => false,
            }
        });
        let stop_stdin = stdin_task.abort_handle();
        tokio::select! {
            _ = pump(writer, out_rx) => {}
            () = detached(Some(stdin_task)) => engine.container_detached(&container_id),
        }
        stop_stdin.abort();
    });
    Ok(switching_protocols(content_type))
}

async fn relay(mut from: mpsc::Receiver<Bytes>, to: mpsc::Sender<Bytes>) {
    while let Some(bytes) = from.recv().await {
        if to.send(bytes).await.is_err() {
            return;
        }
    }
}

/// `POST /exec/{id}/start` body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ExecStart {
    detach: bool,
    tty: bool,
}

/// Reads the exec's output on threads, then records its exit code before
/// the channel closes (so the stream ends only once `ExitCode` is final).
fn run_exec(
    engine: Arc<Engine>,
    instance: Arc<ExecInstance>,
    mut exec: berth_shim::client::Exec,
    output: Option<mpsc::Sender<(u8, Vec<u8>)>>,
) {
    std::thread::spawn(move || {
        let mut sources: Vec<(u8, File)> = Vec::new();
        if let Some(pty) = exec.pty.take() {
            sources.push((STDOUT, pty));
        }
        if let Some(out) = exec.stdout.take() {
            sources.push((STDOUT, out));
        }
        if let Some(err) = exec.stderr.take() {
            sources.push((STDERR, err));
        }
        let readers: Vec<_> = sources
            .into_iter()
            .map(|(stream, mut file)| {
                let output = output.clone();
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 32 * 1024];
                    loop {
                        match file.read(&mut buf) {
                            Ok(0) | Err(_) => break, // EOF; EIO from a pty whose process is gone
                            Ok(n) => {
                                if let Some(tx) = &output {
                                    // A vanished client: keep draining so the process never blocks.
                                    let _ = tx.blocking_send((stream, buf[..n].to_vec()));
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        for reader in readers {
            let _ = reader.join();
        }
        let code = match exec.wait() {
            Ok(code) => i64::from(code),
            Err(err) => {
                log::warning!("waiting for exec {}: {err}", instance.id);
                255
            }
        };
        engine.exec_finished(&instance, code);
        drop(output);
    });
}

pub(super) async fn exec_start(mut call: Call) -> ApiResult {
    let exec_id = id(&call);
    let instance = call.engine.exec_get(&exec_id)?;
    let start: ExecStart = read_json(
        &call.req.headers().clone(),
        call.req.body_mut(),
        MAX_JSON_BODY,
    )
    .await?
    .unwrap_or_default();
    let tty = start.tty || instance.config.tty;
    let detach = detach_matcher(instance.config.detach_keys.as_deref(), tty)?;
    let engine = call.engine.clone();
    if start.detach || !wants_upgrade(&call) {
        let (instance, mut exec) = engine.exec_start(&exec_id, start.tty).await?;
        drop(exec.stdin.take());
        if start.detach {
            run_exec(engine, instance, exec, None);
            return Ok(Response::new(empty_body()));
        }
        let cancel = exec.canceller().ok();
        let (frame_tx, mut frame_rx) = mpsc::channel(64);
        run_exec(engine, instance, exec, Some(frame_tx));
        let (tx, response) = channel_body(stream_content_type(call.version, tty));
        tokio::spawn(async move {
            let mut cancel = cancel;
            while let Some((stream, data)) = frame_rx.recv().await {
                // The client hung up: the shim kills the process (as dockerd
                // does); keep draining so its readers never block meanwhile.
                if tx.send(encode(stream, &data, tty)).await.is_err()
                    && let Some(cancel) = cancel.take()
                {
                    cancel.cancel();
                }
            }
        });
        return Ok(response);
    }
    let upgrade = hyper::upgrade::on(&mut call.req);
    let content_type = stream_content_type(call.version, tty);
    tokio::spawn(async move {
        let upgraded = match upgrade.await {
            Ok(upgraded) => upgraded,
            Err(err) => {
                log::debug!("exec upgrade failed: {err}");
                return;
            }
        };
        let (reader, writer) = tokio::io::split(TokioIo::new(upgraded));
        let (out_tx, out_rx) = mpsc::channel::<Bytes>(64);
        let mut stdin_task = None;
        let mut cancel = None;
        let mut started = None;
        match engine.exec_start(&exec_id, start.tty).await {
            Ok((instance, mut exec)) => {
                cancel = exec.canceller().ok();
                started = Some(instance.clone());
                let stdin = exec
                    .stdin
                    .take()
                    .or_else(|| exec.pty.as_ref().and_then(|p| p.try_clone().ok()));
                if let Some(stdin) = stdin.filter(|_| instance.config.attach_stdin) {
                    stdin_task = Some(tokio::spawn(forward_stdin(reader, stdin, detach)));
                }
                let (frame_tx, mut frame_rx) = mpsc::channel(64);
                run_exec(engine.clone(), instance, exec, Some(frame_tx));
                tokio::spawn(async move {
                    while let Some((stream, data)) = frame_rx.recv().await {
                        let _ = out_tx.send(encode(stream, &data, tty)).await;
                    }
                });
            }
            Err(err) => {
                // Moby writes a start failure into the stream; the client
                // then reads the exit code from exec inspect.
                let _ = out_tx
                    .send(encode(STDOUT, format!("{err}\r\n").as_bytes(), tty))
                    .await;
                drop(out_tx);
            }
        }
        let stop_stdin = stdin_task.as_ref().map(|task| task.abort_handle());
        tokio::select! {
            delivered = pump(writer, out_rx) => {
                // The client hung up: the shim kills the process, so an
                // abandoned exec holds nothing. Not with a tty: the docker
                // CLI detaches by hanging up, and the process must run on
                // (its output drained unread), as with dockerd.
                if !delivered && !tty && let Some(cancel) = cancel {
                    cancel.cancel();
                }
            }
            // Detached: the process runs on, its output drained unread.
            () = detached(stdin_task) => {
                if let Some(instance) = &started {
                    engine.exec_detached(instance);
                }
            }
        }
        if let Some(stop) = stop_stdin {
            stop.abort();
        }
    });
    Ok(switching_protocols(content_type))
}

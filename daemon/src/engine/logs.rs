//! `GET /containers/{id}/logs` over Docker's json-file logs as berth-shim
//! writes them: one `{"log":"..","stream":"stdout","time":".."}` object per
//! line in `x.log`, rotated to `x.log.1`, `x.log.2`, ... (the highest number
//! is the oldest).
//!
//! Semantics follow moby's json-file reader and `daemon/logs.go`:
//! - `tail` counts log entries of both streams from the end, then the
//!   stream selection and `since`/`until` (both inclusive) apply, so fewer
//!   than N may come out, as with Docker. Tail reads files backwards in
//!   blocks: its cost is the size of the tail, not of the history.
//! - An entry whose `log` has no trailing newline is a partial line (the
//!   shim splits lines at 16 KiB and flushes at exit): consecutive partials
//!   of one stream are joined with the entry that completes them into one
//!   message, stamped with the first part's time.
//! - `timestamps` prefixes each message with RFC 3339 nano time (fixed nine
//!   digits, moby's `RFC3339NanoFixed`) and a space.
//! - Without a tty each message is one stdcopy frame (`[stream, 0, 0, 0,
//!   len u32 BE]` + payload, stream 1 stdout, 2 stderr); with a tty the
//!   bytes are sent raw.
//! - `follow` polls the log every [`FOLLOW_POLL`] for appended entries and
//!   rotation, and ends (after a last read) when the caller's `stopped`
//!   future resolves or an entry after `until` is seen.

// The container engine and route that use this are the next step.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::fs::File;
use std::future::Future;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::ErrorKind;

/// How often a follower looks for new entries.
pub(crate) const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// Block size for reading files backwards when tailing.
const TAIL_BLOCK: usize = 64 * 1024;

/// What a logs request asks for.
#[derive(Debug, Clone)]
pub(crate) struct LogOptions {
    pub(crate) stdout: bool,
    pub(crate) stderr: bool,
    /// Unix nanoseconds; entries before it are skipped.
    pub(crate) since: Option<i64>,
    /// Unix nanoseconds; entries after it are skipped (and end a follow).
    pub(crate) until: Option<i64>,
    pub(crate) timestamps: bool,
    /// The last N entries; `None` is `tail=all`.
    pub(crate) tail: Option<usize>,
    pub(crate) follow: bool,
    /// The container has a tty: raw bytes instead of stdcopy frames.
    pub(crate) tty: bool,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            stdout: true,
            stderr: true,
            since: None,
            until: None,
            timestamps: false,
            tail: None,
            follow: false,
            tty: false,
        }
    }
}

/// Errors reading a container's log.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LogError {
    #[error("reading log file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl LogError {
    pub(crate) fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

/// Which output a message came from (also its stdcopy stream number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogStream {
    Stdout = 1,
    Stderr = 2,
}

/// One message: a whole line (partials joined) or a final fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogMessage {
    pub(crate) stream: LogStream,
    pub(crate) line: Vec<u8>,
    /// Unix nanoseconds.
    pub(crate) time: i64,
}

impl LogMessage {
    /// The bytes a client gets for this message.
    pub(crate) fn encode(&self, timestamps: bool, tty: bool) -> Bytes {
        let stamp = timestamps.then(|| format!("{} ", format_time_fixed(self.time)));
        let payload_len = stamp.as_ref().map_or(0, String::len) + self.line.len();
        let mut out = BytesMut::with_capacity(payload_len + 8);
        if !tty {
            out.put_u8(self.stream as u8);
            out.put_bytes(0, 3);
            out.put_u32(payload_len as u32);
        }
        if let Some(stamp) = stamp {
            out.put_slice(stamp.as_bytes());
        }
        out.put_slice(&self.line);
        out.freeze()
    }
}

/// moby's `RFC3339NanoFixed` in UTC: always nine fractional digits.
pub(crate) fn format_time_fixed(nanos: i64) -> String {
    let time = if nanos >= 0 {
        UNIX_EPOCH + Duration::from_nanos(nanos as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(nanos.unsigned_abs())
    };
    humantime::format_rfc3339_nanos(time).to_string()
}

#[derive(Deserialize)]
struct RawEntry {
    log: String,
    stream: String,
    time: String,
}

/// One json-file entry, decoded.
#[derive(Debug, Clone)]
struct Entry {
    stream: LogStream,
    log: String,
    time: i64,
}

fn parse_entry(line: &[u8]) -> Option<Entry> {
    let raw: RawEntry = serde_json::from_slice(line).ok()?;
    let stream = match raw.stream.as_str() {
        "stdout" => LogStream::Stdout,
        "stderr" => LogStream::Stderr,
        _ => return None,
    };
    let time = humantime::parse_rfc3339_weak(raw.time.trim_end_matches('Z'))
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i64)?;
    Some(Entry {
        stream,
        log: raw.log,
        time,
    })
}

/// Applies the request's filters and joins partial lines.
#[derive(Debug)]
struct Assembler {
    opts: LogOptions,
    /// A partial line waiting for its end, per stream (stdout, stderr).
    pending: [Option<LogMessage>; 2],
    /// An entry after `until` was seen: nothing more is wanted.
    done: bool,
}

impl Assembler {
    fn new(opts: LogOptions) -> Assembler {
        Assembler {
            opts,
            pending: [None, None],
            done: false,
        }
    }

    fn wanted(&self, entry: &Entry) -> bool {
        let stream_wanted = match entry.stream {
            LogStream::Stdout => self.opts.stdout,
            LogStream::Stderr => self.opts.stderr,
        };
        stream_wanted && self.opts.since.is_none_or(|since| entry.time >= since)
    }

    /// Feeds one entry; completed messages go to `out`.
    fn push(&mut self, entry: Entry, out: &mut Vec<LogMessage>) {
        if self.done {
            return;
        }
        if self.opts.until.is_some_and(|until| entry.time > until) {
            self.done = true;
            self.flush(out);
            return;
        }
        if !self.wanted(&entry) {
            return;
        }
        let slot = &mut self.pending[entry.stream as usize - 1];
        let complete = entry.log.ends_with('\n');
        match slot {
            Some(partial) => partial.line.extend_from_slice(entry.log.as_bytes()),
            None => {
                *slot = Some(LogMessage {
                    stream: entry.stream,
                    line: entry.log.into_bytes(),
                    time: entry.time,
                })
            }
        }
        if complete && let Some(message) = slot.take() {
            out.push(message);
        }
    }

    /// Emits partial lines still waiting (end of history or of the follow).
    fn flush(&mut self, out: &mut Vec<LogMessage>) {
        let mut rest: Vec<LogMessage> = self.pending.iter_mut().filter_map(Option::take).collect();
        rest.sort_by_key(|m| m.time);
        out.extend(rest);
    }
}

/// The log files of `path`, oldest first (`x.log.N`, ..., `x.log.1`, `x.log`).
fn log_files(path: &Path) -> Vec<PathBuf> {
    let mut files = vec![path.to_path_buf()];
    for n in 1.. {
        let mut rotated = path.as_os_str().to_owned();
        rotated.push(format!(".{n}"));
        let rotated = PathBuf::from(rotated);
        if !rotated.exists() {
            break;
        }
        files.push(rotated);
    }
    files.reverse();
    files
}

/// An open log file and how far it has been read.
#[derive(Debug)]
struct OpenLog {
    path: PathBuf,
    file: File,
    offset: u64,
    /// Bytes after the last newline read (an entry still being written).
    carry: Vec<u8>,
}

impl OpenLog {
    fn io_err(&self, source: std::io::Error) -> LogError {
        LogError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Reads complete lines from `offset` to the end and feeds them.
    fn read_new(
        &mut self,
        assembler: &mut Assembler,
        out: &mut Vec<LogMessage>,
    ) -> Result<(), LogError> {
        self.file
            .seek(SeekFrom::Start(self.offset))
            .map_err(|e| self.io_err(e))?;
        let mut buf = vec![0u8; TAIL_BLOCK];
        while !assembler.done {
            let n = self.file.read(&mut buf).map_err(|e| self.io_err(e))?;
            if n == 0 {
                return Ok(());
            }
            self.offset += n as u64;
            let mut chunk = &buf[..n];
            while let Some(i) = chunk.iter().position(|&b| b == b'\n') {
                let line = if self.carry.is_empty() {
                    &chunk[..i]
                } else {
                    self.carry.extend_from_slice(&chunk[..i]);
                    &self.carry[..]
                };
                if let Some(entry) = parse_entry(line) {
                    assembler.push(entry, out);
                }
                self.carry.clear();
                chunk = &chunk[i + 1..];
            }
            self.carry.extend_from_slice(chunk);
        }
        Ok(())
    }
}

fn open_log(path: &Path, offset: u64) -> Result<Option<OpenLog>, LogError> {
    match File::open(path) {
        Ok(file) => Ok(Some(OpenLog {
            path: path.to_path_buf(),
            file,
            offset,
            carry: Vec::new(),
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LogError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Where the last `n` entries of `files` (oldest first) begin: the index
/// of the file and the offset in it. Reads backwards in blocks.
fn tail_start(files: &mut [OpenLog], n: usize) -> Result<(usize, u64), LogError> {
    let newest = files.len() - 1;
    if n == 0 {
        let end = files[newest]
            .file
            .metadata()
            .map_err(|e| files[newest].io_err(e))?
            .len();
        // An entry being written has no newline yet: start after the last one.
        return Ok((newest, last_newline_end(&mut files[newest], end)?));
    }
    let mut need = n;
    for index in (0..files.len()).rev() {
        let log = &mut files[index];
        let size = log.file.metadata().map_err(|e| log.io_err(e))?.len();
        // Only complete lines count: ignore bytes after the last newline.
        let end = last_newline_end(log, size)?;
        if end == 0 {
            continue;
        }
        // `end - 1` is the newline closing the last line; each newline
        // before it starts one more line.
        let mut pos = end - 1;
        let mut buf = vec![0u8; TAIL_BLOCK];
        while pos > 0 {
            let start = pos.saturating_sub(TAIL_BLOCK as u64);
            let len = (pos - start) as usize;
            log.file
                .seek(SeekFrom::Start(start))
                .map_err(|e| log.io_err(e))?;
            log.file
                .read_exact(&mut buf[..len])
                .map_err(|e| log.io_err(e))?;
            for i in (0..len).rev() {
                if buf[i] == b'\n' {
                    need -= 1;
                    if need == 0 {
                        return Ok((index, start + i as u64 + 1));
                    }
                }
            }
            pos = start;
        }
        // The file's first line.
        need -= 1;
        if need == 0 {
            return Ok((index, 0));
        }
    }
    Ok((0, 0))
}

/// The offset just past the last newline at or before `size`.
fn last_newline_end(log: &mut OpenLog, size: u64) -> Result<u64, LogError> {
    let mut pos = size;
    let mut buf = vec![0u8; 4096];
    while pos > 0 {
        let start = pos.saturating_sub(buf.len() as u64);
        let len = (pos - start) as usize;
        log.file
            .seek(SeekFrom::Start(start))
            .map_err(|e| log.io_err(e))?;
        log.file
            .read_exact(&mut buf[..len])
            .map_err(|e| log.io_err(e))?;
        if let Some(i) = buf[..len].iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        pos = start;
    }
    Ok(0)
}

/// State carried from reading the history into following.
#[derive(Debug)]
struct Reader {
    path: PathBuf,
    assembler: Assembler,
    /// The newest file, read up to its end; `None` before it exists.
    current: Option<OpenLog>,
}

impl Reader {
    /// Opens every file at once (a rotation meanwhile cannot pull one away)
    /// and reads the requested history.
    fn history(path: &Path, opts: LogOptions) -> Result<(Reader, Vec<LogMessage>), LogError> {
        let mut out = Vec::new();
        let mut files = Vec::new();
        for file in log_files(path) {
            if let Some(log) = open_log(&file, 0)? {
                files.push(log);
            }
        }
        let mut reader = Reader {
            path: path.to_path_buf(),
            assembler: Assembler::new(opts),
            current: None,
        };
        if files.is_empty() {
            return Ok((reader, out));
        }
        let (first, offset) = match reader.assembler.opts.tail {
            Some(n) => tail_start(&mut files, n)?,
            None => (0, 0),
        };
        let mut files: VecDeque<OpenLog> = files.into_iter().skip(first).collect();
        if let Some(log) = files.front_mut() {
            log.offset = offset;
        }
        while let Some(mut log) = files.pop_front() {
            log.read_new(&mut reader.assembler, &mut out)?;
            if files.is_empty() {
                reader.current = Some(log);
            }
        }
        Ok((reader, out))
    }

    /// Reads what was appended since, following a rotation to the new
    /// file. Two rotations between polls would skip the middle file.
    fn poll(&mut self, out: &mut Vec<LogMessage>) -> Result<(), LogError> {
        if let Some(current) = &mut self.current {
            current.read_new(&mut self.assembler, out)?;
        }
        let Ok(meta) = std::fs::metadata(&self.path) else {
            return Ok(());
        };
        let Some(current) = &mut self.current else {
            self.current = open_log(&self.path, 0)?;
            if let Some(current) = &mut self.current {
                current.read_new(&mut self.assembler, out)?;
            }
            return Ok(());
        };
        let same_file = current
            .file
            .metadata()
            .is_ok_and(|m| m.ino() == meta.ino() && m.dev() == meta.dev());
        if !same_file {
            // Rotated: every write to the old file happened before the
            // rename we just saw, so one more read gets all of it.
            current.read_new(&mut self.assembler, out)?;
            if let Some(mut next) = open_log(&self.path, 0)? {
                next.read_new(&mut self.assembler, out)?;
                self.current = Some(next);
            }
        } else if meta.len() < current.offset {
            // Truncated in place (a single log file).
            current.offset = 0;
            current.carry.clear();
            current.read_new(&mut self.assembler, out)?;
        }
        Ok(())
    }
}

/// Reads a container's log history (no follow) into messages.
pub(crate) fn read_history(path: &Path, opts: LogOptions) -> Result<Vec<LogMessage>, LogError> {
    let (mut reader, mut out) = Reader::history(path, opts)?;
    reader.assembler.flush(&mut out);
    Ok(out)
}

/// The body of a logs response: encoded messages (stdcopy frames, or raw
/// with a tty). With `follow`, the stream continues with new entries until
/// `stopped` resolves (the container exited; a last read follows) or an
/// entry after `until` shows up. Dropping the stream stops the reader.
pub(crate) fn log_stream(
    path: PathBuf,
    opts: LogOptions,
    stopped: impl Future<Output = ()> + Send + 'static,
) -> impl Stream<Item = Result<Bytes, LogError>> + Send + 'static {
    let (tx, rx) = mpsc::channel::<Result<Bytes, LogError>>(64);
    let (timestamps, tty, follow) = (opts.timestamps, opts.tty, opts.follow);
    tokio::spawn(async move {
        let send_all = |messages: Vec<LogMessage>| {
            let tx = tx.clone();
            async move {
                for message in messages {
                    if tx.send(Ok(message.encode(timestamps, tty))).await.is_err() {
                        return false;
                    }
                }
                true
            }
        };
        let history = tokio::task::spawn_blocking(move || Reader::history(&path, opts)).await;
        let (mut reader, messages) = match history {
            Ok(Ok(done)) => done,
            Ok(Err(err)) => {
                let _ = tx.send(Err(err)).await;
                return;
            }
            Err(_) => return, // the blocking task panicked
        };
        if !send_all(messages).await {
            return;
        }
        if follow {
            tokio::pin!(stopped);
            let mut stopping = false;
            while !reader.assembler.done {
                if !stopping {
                    tokio::select! {
                        () = &mut stopped => stopping = true,
                        () = tokio::time::sleep(FOLLOW_POLL) => {}
                        () = tx.closed() => return,
                    }
                }
                let polled = tokio::task::spawn_blocking(move || {
                    let mut out = Vec::new();
                    let result = reader.poll(&mut out);
                    (reader, out, result)
                })
                .await;
                let Ok((back, messages, result)) = polled else {
                    return;
                };
                reader = back;
                if let Err(err) = result {
                    let _ = tx.send(Err(err)).await;
                    return;
                }
                if !send_all(messages).await {
                    return;
                }
                if stopping {
                    break;
                }
            }
        }
        let mut rest = Vec::new();
        reader.assembler.flush(&mut rest);
        send_all(rest).await;
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        Some((item, rx))
    })
}

#[cfg(test)]
mod tests;

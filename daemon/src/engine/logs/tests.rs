//! Real log files in the shim's format, rotated as the shim rotates them.

use std::io::Write;

use futures_util::StreamExt;

use super::*;

/// Base time of the entries: 2026-11-29T00:00:00Z, one second apart.
const T0: i64 = 1_795_910_400_000_000_000;
const SECOND: i64 = 1_000_000_000;

fn record(stream: &str, log: &str, time: i64) -> String {
    format!(
        "{{\"log\":{},\"stream\":\"{stream}\",\"time\":\"{}\"}}\n",
        serde_json::to_string(log).unwrap(),
        format_time_fixed(time)
    )
}

fn append(path: &Path, records: &[String]) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for r in records {
        file.write_all(r.as_bytes()).unwrap();
    }
}

/// Lines `line-<i>` on stdout (even i) and stderr (odd i), at T0 + i s.
fn lines(range: std::ops::Range<i64>) -> Vec<String> {
    range
        .map(|i| {
            let stream = if i % 2 == 0 { "stdout" } else { "stderr" };
            record(stream, &format!("line-{i}\n"), T0 + i * SECOND)
        })
        .collect()
}

fn text(messages: &[LogMessage]) -> Vec<String> {
    messages
        .iter()
        .map(|m| String::from_utf8(m.line.clone()).unwrap())
        .collect()
}

fn numbered(range: std::ops::Range<i64>) -> Vec<String> {
    range.map(|i| format!("line-{i}\n")).collect()
}

/// `x.log.2` (oldest) = 0..3, `x.log.1` = 3..6, `x.log` = 6..9.
fn rotated_log(dir: &Path) -> PathBuf {
    let path = dir.join("x-json.log");
    append(&dir.join("x-json.log.2"), &lines(0..3));
    append(&dir.join("x-json.log.1"), &lines(3..6));
    append(&path, &lines(6..9));
    path
}

#[test]
fn history_reads_rotated_files_oldest_first_and_selects_streams() {
    let dir = tempfile::tempdir().unwrap();
    let path = rotated_log(dir.path());
    let all = read_history(&path, LogOptions::default()).unwrap();
    assert_eq!(text(&all), numbered(0..9));
    assert_eq!(all[3].stream, LogStream::Stderr);
    assert_eq!(all[3].time, T0 + 3 * SECOND);

    let stdout_only = LogOptions {
        stderr: false,
        ..Default::default()
    };
    let out = read_history(&path, stdout_only).unwrap();
    assert_eq!(
        text(&out),
        ["line-0\n", "line-2\n", "line-4\n", "line-6\n", "line-8\n"]
    );
}

#[test]
fn missing_log_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let out = read_history(&dir.path().join("none.log"), LogOptions::default()).unwrap();
    assert!(out.is_empty());
}

#[test]
fn tail_counts_entries_from_the_end_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = rotated_log(dir.path());
    let tail = |n| {
        let opts = LogOptions {
            tail: Some(n),
            ..Default::default()
        };
        text(&read_history(&path, opts).unwrap())
    };
    assert_eq!(tail(0), Vec::<String>::new());
    assert_eq!(tail(1), numbered(8..9));
    assert_eq!(tail(3), numbered(6..9));
    assert_eq!(tail(4), numbered(5..9));
    assert_eq!(tail(7), numbered(2..9));
    assert_eq!(tail(9), numbered(0..9));
    assert_eq!(tail(100), numbered(0..9));
    // Docker tails entries, then filters streams: 4 entries, 2 of stdout.
    let opts = LogOptions {
        tail: Some(4),
        stderr: false,
        ..Default::default()
    };
    assert_eq!(
        text(&read_history(&path, opts).unwrap()),
        ["line-6\n", "line-8\n"]
    );
}

#[test]
fn tail_crosses_read_block_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.log");
    // ~5 blocks of entries, with long lines so entries straddle blocks.
    let filler = "x".repeat(300);
    let records: Vec<String> = (0..1000)
        .map(|i| record("stdout", &format!("{i} {filler}\n"), T0 + i * SECOND))
        .collect();
    append(&path, &records);
    for n in [1, 2, 217, 218, 219, 500, 999, 1000, 1001] {
        let opts = LogOptions {
            tail: Some(n),
            ..Default::default()
        };
        let out = read_history(&path, opts).unwrap();
        let first = 1000usize.saturating_sub(n);
        assert_eq!(out.len(), 1000 - first, "tail {n}");
        assert_eq!(
            String::from_utf8(out[0].line.clone()).unwrap(),
            format!("{first} {filler}\n"),
            "tail {n}"
        );
    }
}

#[test]
fn since_and_until_are_inclusive() {
    let dir = tempfile::tempdir().unwrap();
    let path = rotated_log(dir.path());
    let opts = LogOptions {
        since: Some(T0 + 2 * SECOND),
        until: Some(T0 + 4 * SECOND),
        ..Default::default()
    };
    assert_eq!(text(&read_history(&path, opts).unwrap()), numbered(2..5));
    let opts = LogOptions {
        since: Some(T0 + 2 * SECOND + 1),
        tail: Some(8),
        ..Default::default()
    };
    assert_eq!(text(&read_history(&path, opts).unwrap()), numbered(3..9));
}

#[test]
fn partial_entries_join_into_one_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.log");
    append(
        &path,
        &[
            record("stdout", "hel", T0),
            record("stderr", "err\n", T0 + 1),
            record("stdout", "lo ", T0 + 2),
            record("stdout", "world\n", T0 + 3),
            record("stdout", "no newline at exit", T0 + 4),
        ],
    );
    let out = read_history(&path, LogOptions::default()).unwrap();
    assert_eq!(text(&out), ["err\n", "hello world\n", "no newline at exit"]);
    assert_eq!(out[1].time, T0, "a joined line keeps its first part's time");
}

#[test]
fn an_entry_still_being_written_is_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.log");
    append(&path, &lines(0..2));
    let half = record("stdout", "line-2\n", T0 + 2 * SECOND);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&half.as_bytes()[..20])
        .unwrap();
    let opts = LogOptions {
        tail: Some(1),
        ..Default::default()
    };
    assert_eq!(text(&read_history(&path, opts).unwrap()), numbered(1..2));
    assert_eq!(
        text(&read_history(&path, LogOptions::default()).unwrap()),
        numbered(0..2)
    );
}

#[test]
fn messages_encode_as_stdcopy_frames_or_raw() {
    let message = LogMessage {
        stream: LogStream::Stderr,
        line: b"err\n".to_vec(),
        time: T0 + 120_000_000,
    };
    assert_eq!(
        &message.encode(false, false)[..],
        b"\x02\0\0\0\0\0\0\x04err\n"
    );
    assert_eq!(&message.encode(false, true)[..], b"err\n");
    let stamped = message.encode(true, false);
    let payload = b"2026-11-29T00:00:00.120000000Z err\n";
    assert_eq!(&stamped[..4], b"\x02\0\0\0");
    assert_eq!(
        u32::from_be_bytes(stamped[4..8].try_into().unwrap()) as usize,
        payload.len()
    );
    assert_eq!(&stamped[8..], payload);
}

/// Reads stream items until `want` messages arrived (event-driven, no timing).
async fn next_lines<S>(stream: &mut S, want: usize) -> Vec<String>
where
    S: Stream<Item = Result<Bytes, LogError>> + Unpin,
{
    let mut got = Vec::new();
    while got.len() < want {
        let frame = stream.next().await.expect("stream ended early").unwrap();
        assert_eq!(frame[0], 1);
        got.push(String::from_utf8(frame[8..].to_vec()).unwrap());
    }
    got
}

#[tokio::test]
async fn follow_picks_up_appends_and_rotation_until_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.log");
    let stdout = |range: std::ops::Range<i64>| -> Vec<String> {
        range
            .map(|i| record("stdout", &format!("line-{i}\n"), T0 + i * SECOND))
            .collect()
    };
    append(&path, &stdout(0..2));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let opts = LogOptions {
        follow: true,
        tail: Some(1),
        ..Default::default()
    };
    let stream = log_stream(path.clone(), opts, async {
        let _ = stopped.await;
    });
    let mut stream = std::pin::pin!(stream);
    assert_eq!(next_lines(&mut stream, 1).await, numbered(1..2));

    append(&path, &stdout(2..4));
    assert_eq!(next_lines(&mut stream, 2).await, numbered(2..4));

    // Rotate as the shim does: the old file moves to .1, writing goes on in a new file.
    append(&path, &stdout(4..5));
    std::fs::rename(&path, dir.path().join("f.log.1")).unwrap();
    append(&path, &stdout(5..7));
    assert_eq!(next_lines(&mut stream, 3).await, numbered(4..7));

    // Entries written right before the container stops still arrive.
    append(&path, &stdout(7..9));
    append(
        &path,
        &[record("stdout", "partial at exit", T0 + 9 * SECOND)],
    );
    stop.send(()).unwrap();
    let mut rest = Vec::new();
    while let Some(frame) = stream.next().await {
        rest.push(String::from_utf8(frame.unwrap()[8..].to_vec()).unwrap());
    }
    assert_eq!(rest, ["line-7\n", "line-8\n", "partial at exit"]);
}

#[tokio::test]
async fn follow_ends_at_until() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u.log");
    append(&path, &lines(0..2));
    let opts = LogOptions {
        follow: true,
        until: Some(T0 + 3 * SECOND),
        stderr: false,
        ..Default::default()
    };
    // Never stopped: only the entry after `until` can end the stream.
    let stream = log_stream(path.clone(), opts, std::future::pending());
    let mut stream = std::pin::pin!(stream);
    assert_eq!(next_lines(&mut stream, 1).await, numbered(0..1));
    append(&path, &lines(2..6));
    assert_eq!(next_lines(&mut stream, 1).await, numbered(2..3));
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn tty_streams_are_raw_and_missing_logs_end_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.log");
    append(&path, &lines(0..2));
    let opts = LogOptions {
        tty: true,
        timestamps: true,
        ..Default::default()
    };
    let body: Vec<Bytes> = log_stream(path, opts, std::future::pending())
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(
        body,
        [
            Bytes::from("2026-11-29T00:00:00.000000000Z line-0\n"),
            Bytes::from("2026-11-29T00:00:01.000000000Z line-1\n"),
        ]
    );
    let none: Vec<_> = log_stream(
        dir.path().join("missing.log"),
        LogOptions::default(),
        std::future::pending(),
    )
    .collect()
    .await;
    assert!(none.is_empty());
}

#[test]
fn entries_written_by_dockerd_parse_too() {
    // dockerd trims trailing zeros of the fraction (Go's RFC3339Nano).
    let entry =
        parse_entry(br#"{"log":"hi\n","stream":"stderr","time":"2026-11-29T00:00:00.12Z"}"#)
            .unwrap();
    assert_eq!(entry.time, T0 + 120_000_000);
    assert_eq!(entry.stream, LogStream::Stderr);
    let whole =
        parse_entry(br#"{"log":"x","stream":"stdout","time":"2026-11-29T00:00:01Z"}"#).unwrap();
    assert_eq!(whole.time, T0 + SECOND);
    assert!(
        parse_entry(br#"{"log":"x","stream":"stdin","time":"2026-11-29T00:00:01Z"}"#).is_none()
    );
}

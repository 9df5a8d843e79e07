//! Docker's json-file log: one `{"log":..,"stream":..,"time":..}` object
//! per line of output, rotated by size (`file`, `file.1`, ...).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A line longer than this is written in pieces, as docker's 16 KiB
/// buffer does, so one endless line cannot grow the shim's heap.
const MAX_PARTIAL: usize = 16 * 1024;

const STREAM_NAMES: [&str; 2] = ["stdout", "stderr"];

#[derive(Debug)]
pub(crate) struct JsonLog {
    path: PathBuf,
    max_size: u64,
    max_files: u32,
    file: File,
    size: u64,
    /// Output since the last newline, per stream.
    partial: [Vec<u8>; 2],
}

impl JsonLog {
    pub(crate) fn open(path: &Path, max_size: u64, max_files: u32) -> std::io::Result<JsonLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(JsonLog {
            path: path.to_path_buf(),
            max_size,
            max_files: max_files.max(1),
            file,
            size,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Logs output of `stream` (0 stdout, 1 stderr): complete lines now,
    /// the rest when its newline comes or [`Self::flush`] is called.
    pub(crate) fn write(&mut self, stream: usize, data: &[u8]) -> std::io::Result<()> {
        let mut rest = data;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let (line, tail) = rest.split_at(i + 1);
            if self.partial[stream].is_empty() {
                self.entry(stream, line)?;
            } else {
                let mut whole = std::mem::take(&mut self.partial[stream]);
                whole.extend_from_slice(line);
                self.entry(stream, &whole)?;
            }
            rest = tail;
        }
        self.partial[stream].extend_from_slice(rest);
        if self.partial[stream].len() >= MAX_PARTIAL {
            self.flush(stream)?;
        }
        Ok(())
    }

    /// Writes out a pending partial line (at EOF, or when too long).
    pub(crate) fn flush(&mut self, stream: usize) -> std::io::Result<()> {
        if self.partial[stream].is_empty() {
            return Ok(());
        }
        let line = std::mem::take(&mut self.partial[stream]);
        self.entry(stream, &line)
    }

    fn entry(&mut self, stream: usize, line: &[u8]) -> std::io::Result<()> {
        let text =
            serde_json::to_string(&String::from_utf8_lossy(line)).expect("strings serialize");
        let time = humantime::format_rfc3339_nanos(std::time::SystemTime::now());
        let record = format!(
            "{{\"log\":{text},\"stream\":\"{}\",\"time\":\"{time}\"}}\n",
            STREAM_NAMES[stream]
        );
        let len = record.len() as u64;
        if self.max_size > 0 && self.size > 0 && self.size + len > self.max_size {
            self.rotate()?;
        }
        self.file.write_all(record.as_bytes())?;
        self.size += len;
        Ok(())
    }

    /// `file.N-2` -> `file.N-1`, ..., `file` -> `file.1`, new `file`; with
    /// one file, the file is truncated.
    fn rotate(&mut self) -> std::io::Result<()> {
        let numbered = |n: u32| {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        };
        if self.max_files > 1 {
            for n in (1..self.max_files - 1).rev() {
                match fs::rename(numbered(n), numbered(n + 1)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            fs::rename(&self.path, numbered(1))?;
        }
        self.file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn splits_lines_and_flushes_partials() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let mut log = JsonLog::open(&path, 0, 1).unwrap();
        log.write(0, b"a\nb").unwrap();
        log.write(1, b"err\n").unwrap();
        log.write(0, b"c\nd").unwrap();
        log.flush(0).unwrap();
        let got: Vec<(String, String)> = lines(&path)
            .iter()
            .map(|v| {
                (
                    v["log"].as_str().unwrap().to_string(),
                    v["stream"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let want = [
            ("a\n", "stdout"),
            ("err\n", "stderr"),
            ("bc\n", "stdout"),
            ("d", "stdout"),
        ];
        assert_eq!(
            got,
            want.map(|(a, b)| (a.to_string(), b.to_string())).to_vec()
        );
        let time = lines(&path)[0]["time"].as_str().unwrap().to_string();
        assert!(humantime::parse_rfc3339(&time).is_ok(), "{time}");
    }

    #[test]
    fn rotates_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let mut log = JsonLog::open(&path, 200, 3).unwrap();
        for i in 0..20 {
            log.write(0, format!("line {i}\n").as_bytes()).unwrap();
        }
        let p1 = dir.path().join("log.json.1");
        let p2 = dir.path().join("log.json.2");
        assert!(!dir.path().join("log.json.3").exists());
        for p in [&path, &p1, &p2] {
            let len = fs::metadata(p).unwrap().len();
            assert!(len > 0 && len <= 200, "{p:?}: {len}");
        }
        let last = lines(&path);
        assert_eq!(last.last().unwrap()["log"], "line 19\n");
        let older = lines(&p1);
        let first_new: u32 = last[0]["log"].as_str().unwrap()[5..]
            .trim()
            .parse()
            .unwrap();
        let last_old: u32 = older.last().unwrap()["log"].as_str().unwrap()[5..]
            .trim()
            .parse()
            .unwrap();
        assert_eq!(last_old + 1, first_new);
    }
}

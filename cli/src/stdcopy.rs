//! Docker's stdcopy framing for non-TTY attach/exec/logs streams: an 8-byte header
//! `[stream, 0, 0, 0, size u32 big-endian]` then `size` bytes; stream 0/1 stdout, 2 stderr,
//! 3 an error from the daemon.

use std::io::{self, Read, Write};

use crate::error::Error;

/// Copies frames from `src` to `stdout`/`stderr` until EOF, flushing after each frame so
/// interactive output appears at once.
pub(crate) fn demux(
    src: &mut impl Read,
    stdout: &mut impl Write,
    stderr: &mut impl Write,
) -> Result<(), Error> {
    let mut header = [0u8; 8];
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match read_full(src, &mut header).map_err(Error::Stream)? {
            0 => return Ok(()),
            8 => {}
            n => {
                return Err(Error::Stream(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("stream ended inside a frame header ({n} of 8 bytes)"),
                )));
            }
        }
        let size = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let mut payload = Vec::new();
        let mut left = size;
        while left > 0 {
            let want = left.min(buf.len());
            let got = read_full(src, &mut buf[..want]).map_err(Error::Stream)?;
            if got == 0 {
                return Err(Error::Stream(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "stream ended inside a frame",
                )));
            }
            match header[0] {
                0 | 1 => stdout.write_all(&buf[..got]).map_err(Error::Output)?,
                2 => stderr.write_all(&buf[..got]).map_err(Error::Output)?,
                3 => payload.extend_from_slice(&buf[..got]),
                other => {
                    return Err(Error::Stream(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("unrecognized stream type {other} in a multiplexed stream"),
                    )));
                }
            }
            left -= got;
        }
        if header[0] == 3 {
            return Err(Error::InStream(format!(
                "error from daemon in stream: {}",
                String::from_utf8_lossy(&payload)
            )));
        }
        let _ = stdout.flush();
        let _ = stderr.flush();
    }
}

/// Reads until `buf` is full or EOF; returns how much was read.
fn read_full(src: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match src.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
        let mut v = vec![stream, 0, 0, 0];
        v.extend_from_slice(&(data.len() as u32).to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn splits_stdout_and_stderr() {
        let mut input = frame(1, b"out\n");
        input.extend(frame(2, b"err\n"));
        input.extend(frame(1, b""));
        input.extend(frame(1, b"more"));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        demux(&mut input.as_slice(), &mut out, &mut err).unwrap();
        assert_eq!(out, b"out\nmore");
        assert_eq!(err, b"err\n");
    }

    #[test]
    fn system_error_frames_and_truncation_are_errors() {
        let input = frame(3, b"boom");
        let e = demux(&mut input.as_slice(), &mut Vec::new(), &mut Vec::new()).unwrap_err();
        assert_eq!(e.to_string(), "error from daemon in stream: boom");
        let mut cut = frame(1, b"hello");
        cut.truncate(10);
        assert!(demux(&mut cut.as_slice(), &mut Vec::new(), &mut Vec::new()).is_err());
    }
}

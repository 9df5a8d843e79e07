//! Bridges between async request/response bodies and the blocking
//! `std::io` readers and writers of `berth_core::archive`, through bounded
//! channels: nothing is spooled to disk and at most a few chunks are in
//! memory at once.

use std::io::{self, Read, Write};

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

/// How many chunks may wait in either direction.
pub(crate) const PIPE_DEPTH: usize = 8;
/// Size of the chunks a [`ChannelWriter`] sends.
const CHUNK: usize = 256 << 10;

/// A blocking reader over chunks an async task feeds (a request body).
/// Must only be used from blocking threads (`spawn_blocking`).
#[derive(Debug)]
pub(crate) struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl ChannelReader {
    pub(crate) fn new(rx: mpsc::Receiver<io::Result<Bytes>>) -> ChannelReader {
        ChannelReader {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(err)) => return Err(err),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// A blocking writer whose output becomes chunks of a response body. A
/// write fails with `BrokenPipe` once the receiver is gone (client left),
/// which stops the producer. Only `flush` sends the last partial chunk: a
/// producer that fails before its first full chunk sends nothing, so the
/// caller can still answer with an error status.
#[derive(Debug)]
pub(crate) struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buffer: BytesMut,
}

impl ChannelWriter {
    pub(crate) fn new(tx: mpsc::Sender<Bytes>) -> ChannelWriter {
        ChannelWriter {
            tx,
            buffer: BytesMut::with_capacity(CHUNK),
        }
    }

    fn send_buffer(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = self.buffer.split().freeze();
        self.tx
            .blocking_send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        if self.buffer.len() >= CHUNK {
            self.send_buffer()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buffer()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_yields_chunks_in_order_then_eof_and_passes_errors() {
        let (tx, rx) = mpsc::channel(4);
        tx.try_send(Ok(Bytes::from_static(b"ab"))).unwrap();
        tx.try_send(Ok(Bytes::from_static(b"cde"))).unwrap();
        drop(tx);
        let mut text = String::new();
        ChannelReader::new(rx).read_to_string(&mut text).unwrap();
        assert_eq!(text, "abcde");

        let (tx, rx) = mpsc::channel(4);
        tx.try_send(Err(io::Error::other("body broke"))).unwrap();
        let err = ChannelReader::new(rx).read(&mut [0; 4]).unwrap_err();
        assert_eq!(err.to_string(), "body broke");
    }

    #[test]
    fn writer_sends_everything_and_fails_when_the_receiver_is_gone() {
        let (tx, mut rx) = mpsc::channel(PIPE_DEPTH);
        let mut writer = ChannelWriter::new(tx);
        writer.write_all(b"hello").unwrap();
        assert!(rx.try_recv().is_err());
        writer.flush().unwrap();
        assert_eq!(&rx.try_recv().unwrap()[..], b"hello");

        let (tx, rx) = mpsc::channel(PIPE_DEPTH);
        drop(rx);
        let mut writer = ChannelWriter::new(tx);
        let err = writer.write_all(&vec![0; CHUNK]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}

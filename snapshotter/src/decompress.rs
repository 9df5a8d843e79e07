//! Layer decompression: which compression a layer uses (from its media
//! type or its first bytes) and a streaming decoder for it.
//!
//! Gzip goes through flate2's `MultiGzDecoder` (a layer may be several
//! concatenated gzip members) on the zlib-rs backend, zstd through
//! libzstd's streaming decoder (multiple frames are read through). A
//! decode failure surfaces as an `io::Error` wrapping a [`DecodeError`]
//! that names the compression, so a caller reading the tar on top can tell
//! a corrupt compressed stream from a corrupt tar.

use std::fmt;
use std::io::{self, BufRead, Read};

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (RFC 1952), possibly several members.
    Gzip,
    /// Zstandard.
    Zstd,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

impl Compression {
    /// The compression of a layer media type (OCI, OCI non-distributable,
    /// Docker schema 2), or `None` for a type that is not a layer.
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        let oci = media_type
            .strip_prefix("application/vnd.oci.image.layer.v1.tar")
            .or_else(|| {
                media_type.strip_prefix("application/vnd.oci.image.layer.nondistributable.v1.tar")
            });
        if let Some(suffix) = oci {
            return match suffix {
                "" => Some(Self::None),
                "+gzip" => Some(Self::Gzip),
                "+zstd" => Some(Self::Zstd),
                _ => None,
            };
        }
        match media_type {
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Some(Self::Gzip),
            "application/vnd.docker.image.rootfs.diff.tar" => Some(Self::None),
            _ => None,
        }
    }

    /// The compression whose magic number starts `head`; anything else is
    /// taken for a plain tar.
    pub fn from_magic(head: &[u8]) -> Self {
        if head.starts_with(GZIP_MAGIC) {
            Self::Gzip
        } else if head.starts_with(ZSTD_MAGIC) {
            Self::Zstd
        } else {
            Self::None
        }
    }

    /// Peeks at the start of `reader` (without consuming it) and returns
    /// its compression.
    pub fn detect(reader: &mut impl BufRead) -> io::Result<Self> {
        let head = reader.fill_buf()?;
        Ok(Self::from_magic(head))
    }

    /// The lower-case name (`none`, `gzip`, `zstd`).
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A failure of the decoder, carried inside the `io::Error` the decoder's
/// `read` returns (find it with `get_ref().downcast_ref()`).
#[derive(Debug, thiserror::Error)]
#[error("decompressing {compression} layer: {source}")]
pub struct DecodeError {
    /// The compression being decoded.
    pub compression: Compression,
    /// What the decoder said.
    #[source]
    pub source: io::Error,
}

impl DecodeError {
    /// The `DecodeError` inside `e`, if `e` came from a decoder.
    pub fn find(e: &io::Error) -> Option<&DecodeError> {
        e.get_ref().and_then(|inner| inner.downcast_ref())
    }
}

/// A streaming decoder of `compression` reading from `reader`.
pub fn decoder<'a>(
    compression: Compression,
    reader: impl Read + Send + 'a,
) -> io::Result<Box<dyn Read + Send + 'a>> {
    let source = Source(reader);
    Ok(match compression {
        Compression::None => Box::new(source.0),
        Compression::Gzip => Box::new(Named {
            compression,
            inner: flate2::read::MultiGzDecoder::new(source),
        }),
        Compression::Zstd => {
            let inner = zstd::stream::read::Decoder::new(source)
                .map_err(|e| Named::<()>::wrap(compression, e))?;
            Box::new(Named { compression, inner })
        }
    })
}

/// Marks errors of the compressed input (the network's, the disk's), so
/// they pass through unwrapped: they are not the decoder's.
struct Source<R>(R);

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct SourceError(io::Error);

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0
            .read(buf)
            .map_err(|e| io::Error::new(e.kind(), SourceError(e)))
    }
}

/// Wraps a decoder's own errors in [`DecodeError`].
struct Named<R> {
    compression: Compression,
    inner: R,
}

impl<R> Named<R> {
    fn wrap(compression: Compression, e: io::Error) -> io::Error {
        if e.get_ref().is_some_and(|inner| inner.is::<SourceError>()) {
            let inner = e.into_inner().expect("checked above");
            return inner
                .downcast::<SourceError>()
                .map(|s| s.0)
                .unwrap_or_else(io::Error::other);
        }
        io::Error::new(
            e.kind(),
            DecodeError {
                compression,
                source: e,
            },
        )
    }
}

impl<R: Read> Read for Named<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner
            .read(buf)
            .map_err(|e| Self::wrap(self.compression, e))
    }
}

//! Content digests in the OCI form `sha256:<64 lowercase hex>`.
//!
//! Only sha256 is supported: it is what Docker, containerd and every
//! registry use for manifests, configs and layers. A [`Digest`] is the raw
//! 32 bytes, so it is `Copy`, cheap to hash and to compare; the string form is
//! produced by `Display` and parsed by `FromStr` with strict validation (no
//! uppercase hex, exact length). [`Digester`] computes one incrementally.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use crate::error::ErrorKind;

/// The one algorithm Berth accepts.
pub const SHA256: &str = "sha256";

/// Why a digest string was rejected. Each variant carries the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// No `algorithm:` prefix.
    #[error("invalid digest {0:?}: missing algorithm prefix (expected sha256:<hex>)")]
    MissingAlgorithm(String),
    /// The algorithm is not written as the OCI grammar requires.
    #[error("invalid digest {digest:?}: malformed algorithm {algorithm:?}")]
    InvalidAlgorithm {
        /// The whole input.
        digest: String,
        /// The part before `:`.
        algorithm: String,
    },
    /// A well-formed algorithm other than sha256.
    #[error("unsupported digest algorithm {algorithm:?} in {digest:?} (only sha256 is supported)")]
    UnsupportedAlgorithm {
        /// The whole input.
        digest: String,
        /// The part before `:`.
        algorithm: String,
    },
    /// The hex part is not 64 characters long.
    #[error("invalid digest {digest:?}: sha256 hex must be 64 characters, got {len}")]
    BadLength {
        /// The whole input.
        digest: String,
        /// Length of the hex part.
        len: usize,
    },
    /// The hex part has uppercase letters.
    #[error("invalid digest {0:?}: hex must be lowercase")]
    Uppercase(String),
    /// The hex part has a character that is not a hex digit.
    #[error("invalid digest {digest:?}: {found:?} is not a hex digit")]
    NotHex {
        /// The whole input.
        digest: String,
        /// The first offending character.
        found: char,
    },
}

impl DigestError {
    /// Every digest error is a malformed argument.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// A sha256 content digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    /// Wraps raw sha256 output.
    pub const fn from_sha256_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The digest of `data`, computed in one go.
    pub fn of(data: &[u8]) -> Self {
        Self(Sha256::digest(data).into())
    }

    /// Parses and validates `sha256:<64 lowercase hex>`.
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        let Some((algorithm, hex)) = s.split_once(':') else {
            return Err(DigestError::MissingAlgorithm(s.to_owned()));
        };
        if !valid_algorithm(algorithm) {
            return Err(DigestError::InvalidAlgorithm {
                digest: s.to_owned(),
                algorithm: algorithm.to_owned(),
            });
        }
        if algorithm != SHA256 {
            return Err(DigestError::UnsupportedAlgorithm {
                digest: s.to_owned(),
                algorithm: algorithm.to_owned(),
            });
        }
        Self::from_hex_str(hex).map_err(|e| e.with_input(s))
    }

    /// Parses the bare 64-character lowercase hex part (a blob's file name).
    pub fn from_hex_str(hex: &str) -> Result<Self, DigestError> {
        if let Some(found) = hex.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(DigestError::NotHex {
                digest: hex.to_owned(),
                found,
            });
        }
        if hex.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(DigestError::Uppercase(hex.to_owned()));
        }
        if hex.len() != 64 {
            return Err(DigestError::BadLength {
                digest: hex.to_owned(),
                len: hex.len(),
            });
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex, &mut bytes).map_err(|_| DigestError::BadLength {
            digest: hex.to_owned(),
            len: hex.len(),
        })?;
        Ok(Self(bytes))
    }

    /// Always `"sha256"`.
    pub fn algorithm(&self) -> &'static str {
        SHA256
    }

    /// The 64 lowercase hex characters, without the algorithm.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl DigestError {
    /// Replaces the input carried by the error with the full digest string.
    fn with_input(self, input: &str) -> Self {
        let digest = input.to_owned();
        match self {
            Self::BadLength { len, .. } => Self::BadLength { digest, len },
            Self::Uppercase(_) => Self::Uppercase(digest),
            Self::NotHex { found, .. } => Self::NotHex { digest, found },
            other => other,
        }
    }
}

/// `[a-z0-9]+([+._-][a-z0-9]+)*`, the OCI image-spec algorithm grammar.
fn valid_algorithm(s: &str) -> bool {
    !s.is_empty()
        && s.split(['+', '.', '_', '-']).all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 64];
        // Cannot fail: the buffer is exactly twice the input length.
        hex::encode_to_slice(self.0, &mut buf).map_err(|_| fmt::Error)?;
        f.write_str(SHA256)?;
        f.write_str(":")?;
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Digest;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a digest string sha256:<64 lowercase hex>")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Digest, E> {
                Digest::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// Incremental sha256: feed bytes with [`update`](Self::update), get the
/// [`Digest`] with [`finish`](Self::finish).
#[derive(Clone, Default)]
pub struct Digester {
    hasher: Sha256,
    len: u64,
}

impl fmt::Debug for Digester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Digester")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl Digester {
    /// A digester that has seen no bytes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Hashes `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.len += data.len() as u64;
    }

    /// How many bytes have been hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when no bytes have been hashed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest of everything hashed.
    pub fn finish(self) -> Digest {
        Digest(self.hasher.finalize().into())
    }
}

impl std::io::Write for Digester {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const HELLO: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn known_vectors() {
        assert_eq!(Digest::of(b"").to_string(), EMPTY);
        assert_eq!(Digest::of(b"hello").to_string(), HELLO);
        let mut d = Digester::new();
        d.update(b"he");
        d.update(b"");
        d.update(b"llo");
        assert_eq!(d.len(), 5);
        assert_eq!(d.finish().to_string(), HELLO);
    }

    #[test]
    fn parse_round_trip() {
        let d: Digest = HELLO.parse().unwrap();
        assert_eq!(d, Digest::of(b"hello"));
        assert_eq!(d.algorithm(), "sha256");
        assert_eq!(d.hex(), &HELLO[7..]);
        assert_eq!(Digest::from_hex_str(&d.hex()).unwrap(), d);
        assert_eq!(format!("{d:?}"), format!("Digest({HELLO})"));
    }

    #[test]
    fn rejects_bad_input() {
        let hex = &HELLO[7..];
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "missing algorithm"),
            (hex.to_owned(), "missing algorithm"),
            (format!(":{hex}"), "malformed algorithm"),
            (format!("SHA256:{hex}"), "malformed algorithm"),
            (format!("sha256+:{hex}"), "malformed algorithm"),
            (
                format!("sha512:{hex}"),
                "unsupported digest algorithm \"sha512\"",
            ),
            (format!("md5:{hex}"), "unsupported"),
            ("sha256:".to_owned(), "must be 64 characters, got 0"),
            (format!("sha256:{}", &hex[1..]), "got 63"),
            (format!("sha256:{hex}0"), "got 65"),
            (
                format!("sha256:{}", hex.to_uppercase()),
                "must be lowercase",
            ),
            (format!("sha256:{}g", &hex[1..]), "'g' is not a hex digit"),
            (format!("sha256:{hex} "), "' ' is not a hex digit"),
            (format!("sha256:{hex}:x"), "is not a hex digit"),
        ];
        for (input, want) in cases {
            let err = Digest::parse(&input).expect_err(&input);
            let msg = err.to_string();
            assert!(
                msg.contains(want),
                "{input:?}: {msg:?} should contain {want:?}"
            );
            assert!(
                msg.contains(&format!("{input:?}")) || input.is_empty() || msg.contains(&input)
            );
            assert_eq!(err.kind(), ErrorKind::InvalidArgument);
            assert!(!msg.ends_with('.'));
        }
    }

    #[test]
    fn serde_as_string() {
        let d = Digest::of(b"hello");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{HELLO}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        let err = serde_json::from_str::<Digest>("\"sha256:abc\"").unwrap_err();
        assert!(err.to_string().contains("got 3"), "{err}");
    }
}

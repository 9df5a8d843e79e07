//! `berth-core`: the contracts the other crates share: content digests,
//! image references with Docker's normalisation, and the content-addressed
//! blob store.

#![forbid(unsafe_code)]

pub mod content;
pub mod digest;
pub mod error;
pub mod reference;

pub use content::{ContentError, ContentStore, GcStats, Problem, Writer};
pub use digest::{Digest, DigestError, Digester};
pub use error::ErrorKind;
pub use reference::{Reference, ReferenceError};

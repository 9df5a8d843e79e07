//! `berth-core`: the contracts the other crates share: content digests,
//! image references with Docker's normalisation, and the content-addressed
//! blob store.

#![forbid(unsafe_code)]

pub mod archive;
pub mod content;
pub mod detach_keys;
pub mod digest;
pub mod dockerignore;
pub mod error;
pub mod image;
pub mod metadata;
pub mod mount;
pub mod reference;
pub mod registry;

pub use archive::{ArchiveError, CommitConfig, ImportConfig, LoadedImage};
pub use content::{ContentError, ContentStore, GcStats, Problem, Writer};
pub use detach_keys::{DetachKeys, DetachKeysError, DetachMatcher};
pub use digest::{Digest, DigestError, Digester};
pub use error::ErrorKind;
pub use image::{Image, ImageError, Layer, Target};
pub use metadata::{ImageEntry, Lease, MetadataError, MetadataStore, Removed};
pub use mount::{Mount, MountError, mount_all, unmount};
pub use reference::{Reference, ReferenceError};
pub use registry::{
    Credentials, Platform, RegistryClient, RegistryConfig, RegistryError, ResolvedManifest,
};

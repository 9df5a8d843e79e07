//! `berth-snapshotter`: turns image layers into mountable snapshots.
//!
//! [`Snapshotter`] is the narrow contract (containerd's model: prepare,
//! commit, view, remove; it returns [`Mount`](berth_core::Mount)
//! descriptions and never mounts for the caller); [`OverlaySnapshotter`]
//! implements it with overlayfs directories, and [`conformance`] is the
//! test suite every implementation runs. [`decompress`] and [`unpack`]
//! stream a compressed layer into a snapshot with [`apply`], checking its
//! diff ID in the same pass.

#![forbid(unsafe_code)]

pub mod apply;
pub mod conformance;
pub mod decompress;
pub mod overlay;
pub mod pull;
pub mod snapshot;
pub mod unpack;

pub use decompress::{Compression, DecodeError};
pub use overlay::OverlaySnapshotter;
pub use snapshot::{Info, Kind, SnapshotError, Snapshotter, Usage};
pub use unpack::{UnpackError, Unpacked};

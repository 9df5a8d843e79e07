//! `berth-shim`: the per-container supervisor and its client.
//!
//! berthd starts one `berth-shim` per container ([`client::spawn`]). The
//! shim creates the container with the berth-runtime library in its own
//! process, so it is the parent of the container's init and holds its
//! pidfd and stdio. It writes the output to a json-file log, serves
//! requests on `<state-dir>/shim.sock` ([`protocol`]) and records the exit
//! status in `<state-dir>/exit.json`. It runs in its own session, not as
//! berthd's child, so containers keep running while berthd restarts; the
//! new berthd finds them again with [`client::connect`]. See README.md for
//! the design.

pub mod client;
pub mod protocol;
#[doc(hidden)]
pub mod server;
mod sys;

pub use client::{Client, ClientError, connect, spawn};

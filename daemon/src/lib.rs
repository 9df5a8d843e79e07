//! `berthd`: serves the Docker Engine API on a unix socket.
//!
//! The crate is split the way the architecture asks: `api/` holds the wire
//! types and thin HTTP routes (the only code that knows hyper), `engine/`
//! holds the domain operations and state the routes call into, and
//! `server` owns the process concerns (socket, lock, pidfile, signals).

#![forbid(unsafe_code)]

mod api;
pub mod config;
mod engine;
mod log;
mod server;

pub use config::{Args, Config, ConfigError, LogLevel};
pub use server::{ServeError, run};

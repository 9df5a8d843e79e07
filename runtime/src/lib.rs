//! `berth-runtime`: a minimal OCI runtime built on `clone3` and pidfds.
//!
//! A container is created by a single-threaded runtime process that builds a
//! [`process::ChildPlan`] (every path, string and BPF program the child will
//! need, allocated up front), clones the container's init with `clone3`
//! (`CLONE_PIDFD`, new namespaces) and lets the child run only
//! async-signal-safe code until `execve`. Failures in the child come back over
//! a socketpair as a structured [`ChildError`] (step, errno, path).
//!
//! The container verbs live one per file in [`container`]; persisted state in
//! [`state`]; the command line in `main.rs` mirrors runc's.

pub mod cgroups;
pub mod container;
pub mod error;
mod prewarm;
pub mod process;
pub mod seccomp;
pub mod state;
mod sys;

pub use error::{ChildError, ErrorKind, RuntimeError};
pub use prewarm::prewarm;
pub use sys::ExitStatus;

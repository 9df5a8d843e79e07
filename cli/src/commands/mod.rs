//! One module per command family; each function is one docker command.

pub(crate) mod build;
pub(crate) mod container;
pub(crate) mod cp;
pub(crate) mod files;
pub(crate) mod image;
pub(crate) mod login;
pub(crate) mod man;
pub(crate) mod mount;
pub(crate) mod network;
pub(crate) mod stats;
pub(crate) mod system;
pub(crate) mod update;
pub(crate) mod volume;

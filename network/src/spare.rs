//! Spare endpoints: network namespaces made ahead of container starts,
//! each with `lo` up and a veth pair whose peer is inside as `eth0`, up,
//! and whose host end (`vbp<random>`) is up on a network's bridge. A start
//! that takes one only adds its address and default route (two netlink
//! messages on a socket already open inside) and bind-mounts the
//! namespace at the container's path; making the namespace, the pair and
//! that socket (~2-3 ms) is done beforehand, off the start path.
//!
//! A spare is held by descriptors only (the nsfs file and the netlink
//! socket inside): nothing is mounted and no address is taken, so when
//! berthd stops, or crashes, the kernel deletes the namespace and the veth
//! pair with it. There is nothing to clean up at the next start.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::sync::Mutex;

use crate::error::{NetworkError, Result};
use crate::link::Netlink;
use crate::netns::NetNs;

/// The name of the container's end of a spare pair.
pub(crate) const SPARE_INTERFACE: &str = "eth0";

/// A ready namespace with its veth pair on one network's bridge.
#[derive(Debug)]
pub struct Spare {
    pub(crate) network: String,
    pub(crate) netns: NetNs,
    /// Netlink inside the namespace.
    pub(crate) inside: Netlink,
    /// Index of `eth0` inside.
    pub(crate) index: u32,
    pub(crate) host_veth: String,
}

impl Spare {
    /// The network whose bridge the pair is on.
    pub fn network(&self) -> &str {
        &self.network
    }

    /// The namespace (not mounted anywhere).
    pub fn netns(&self) -> &NetNs {
        &self.netns
    }

    /// Host end of the veth pair.
    pub fn host_veth(&self) -> &str {
        &self.host_veth
    }
}

/// `vbp` and 12 random hex digits: 15 bytes, the longest interface name.
/// Not derived from a container: the pair exists before its container.
pub(crate) fn spare_veth_name() -> Result<String> {
    let mut bytes = [0u8; 6];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| NetworkError::io("reading", "/dev/urandom", e))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("vbp{hex}"))
}

/// Spares by network, up to `target` per network that wants them.
#[derive(Debug)]
pub(crate) struct SparePool {
    target: usize,
    state: Mutex<PoolState>,
}

#[derive(Debug, Default)]
struct PoolState {
    spares: HashMap<String, Vec<Spare>>,
    /// Networks kept stocked: the ones containers started on.
    wanted: BTreeSet<String>,
}

impl SparePool {
    pub(crate) fn new(target: usize) -> Self {
        Self {
            target,
            state: Mutex::new(PoolState::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn target(&self) -> usize {
        self.target
    }

    /// A spare of `network`, if one is ready; the network is kept stocked
    /// from now on.
    pub(crate) fn take(&self, network: &str) -> Option<Spare> {
        if self.target == 0 {
            return None;
        }
        let mut state = self.state();
        if !state.wanted.contains(network) {
            state.wanted.insert(network.to_owned());
        }
        state.spares.get_mut(network).and_then(Vec::pop)
    }

    /// Keeps `network` stocked (the default network, from the start).
    pub(crate) fn want(&self, network: &str) {
        if self.target > 0 {
            self.state().wanted.insert(network.to_owned());
        }
    }

    /// How many spares each wanted network lacks.
    pub(crate) fn shortfall(&self) -> Vec<(String, usize)> {
        let state = self.state();
        state
            .wanted
            .iter()
            .map(|n| {
                let have = state.spares.get(n).map_or(0, Vec::len);
                (n.clone(), self.target.saturating_sub(have))
            })
            .filter(|(_, missing)| *missing > 0)
            .collect()
    }

    /// Adds a new spare; dropped (and so deleted) when its network was
    /// removed meanwhile or is stocked already.
    pub(crate) fn put(&self, spare: Spare) {
        let mut state = self.state();
        if !state.wanted.contains(&spare.network) {
            return;
        }
        let list = state.spares.entry(spare.network.clone()).or_default();
        if list.len() < self.target {
            list.push(spare);
        }
    }

    /// Network removal: its spares go (before its bridge does).
    pub(crate) fn forget(&self, network: &str) -> Vec<Spare> {
        let mut state = self.state();
        state.wanted.remove(network);
        state.spares.remove(network).unwrap_or_default()
    }

    /// Every spare goes (daemon shutdown).
    pub(crate) fn clear(&self) -> Vec<Spare> {
        let mut state = self.state();
        state.wanted.clear();
        state.spares.drain().flat_map(|(_, v)| v).collect()
    }

    /// Host veth names of the ready spares (tests, inspection).
    pub(crate) fn host_veths(&self) -> Vec<String> {
        self.state()
            .spares
            .values()
            .flatten()
            .map(|s| s.host_veth.clone())
            .collect()
    }
}

//! Leases: named sets of digests that garbage collection keeps until the
//! lease is deleted or expires. An ingest (pull, load, import) creates one,
//! adds each digest *before* committing that blob, and releases it in the
//! transaction that records the image ([`MetadataStore::put_image`]). The
//! expiry bounds how long a crashed ingest pins its blobs.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use super::{LEASES, MetadataError, MetadataStore, Result, decode, encode};
use crate::digest::{Digest, Digester};

/// A lease as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The lease's id.
    pub id: String,
    /// Unix time (seconds) after which the lease no longer protects anything.
    pub expires_at: u64,
    /// The digests it protects.
    pub digests: BTreeSet<Digest>,
}

pub(super) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A fresh id: hash of time, pid and a process-wide counter.
fn new_lease_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut d = Digester::new();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    d.update(&nanos.to_le_bytes());
    d.update(&std::process::id().to_le_bytes());
    d.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    d.finish().hex()[..24].to_owned()
}

impl MetadataStore {
    /// Creates an empty lease that expires after `ttl`; returns its id.
    pub fn create_lease(&self, ttl: Duration) -> Result<String> {
        let lease = Lease {
            id: new_lease_id(),
            expires_at: now_secs().saturating_add(ttl.as_secs().max(1)),
            digests: BTreeSet::new(),
        };
        self.write_lease(&lease)?;
        Ok(lease.id)
    }

    /// Adds digests to a live lease. Call it before committing those blobs.
    pub fn lease_add(&self, id: &str, digests: &[Digest]) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut leases = txn.open_table(LEASES)?;
            let mut lease: Lease = match leases.get(id)? {
                Some(v) => decode("leases", id, v.value())?,
                None => return Err(MetadataError::LeaseNotFound(id.to_owned())),
            };
            if lease.expires_at <= now_secs() {
                return Err(MetadataError::LeaseNotFound(id.to_owned()));
            }
            lease.digests.extend(digests.iter().copied());
            let json = encode("leases", id, &lease)?;
            leases.insert(id, json.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// The lease, if it exists (expired or not).
    pub fn lease(&self, id: &str) -> Result<Option<Lease>> {
        let txn = self.db.begin_read()?;
        let leases = txn.open_table(LEASES)?;
        match leases.get(id)? {
            Some(v) => Ok(Some(decode("leases", id, v.value())?)),
            None => Ok(None),
        }
    }

    /// Deletes a lease; true if it existed.
    pub fn delete_lease(&self, id: &str) -> Result<bool> {
        let txn = self.db.begin_write()?;
        let existed = txn.open_table(LEASES)?.remove(id)?.is_some();
        txn.commit()?;
        Ok(existed)
    }

    /// Deletes every expired lease; returns how many.
    pub fn prune_leases(&self) -> Result<usize> {
        let now = now_secs();
        let txn = self.db.begin_write()?;
        let mut pruned = 0;
        {
            let mut leases = txn.open_table(LEASES)?;
            leases.retain(|_, v| {
                let keep = serde_json::from_slice::<Lease>(v).is_ok_and(|l| l.expires_at > now);
                if !keep {
                    pruned += 1;
                }
                keep
            })?;
        }
        txn.commit()?;
        Ok(pruned)
    }

    fn write_lease(&self, lease: &Lease) -> Result<()> {
        let json = encode("leases", &lease.id, lease)?;
        let txn = self.db.begin_write()?;
        txn.open_table(LEASES)?
            .insert(lease.id.as_str(), json.as_slice())?;
        txn.commit()?;
        Ok(())
    }
}

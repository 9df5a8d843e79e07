//! Small key/value tables for the daemon's other records (containers,
//! volumes, networks): JSON values under `(table, key)`, kept apart from
//! the image tables.

use redb::ReadableDatabase;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{KV, MetadataError, MetadataStore, Result, decode, encode};

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains('\0') {
        return Err(MetadataError::InvalidName(name.to_owned()));
    }
    Ok(())
}

impl MetadataStore {
    /// Stores `value` as JSON under `(table, key)`, replacing any old value.
    pub fn put<T: Serialize>(&self, table: &str, key: &str, value: &T) -> Result<()> {
        check_name(table)?;
        check_name(key)?;
        let json = encode(table, key, value)?;
        let txn = self.db.begin_write()?;
        txn.open_table(KV)?.insert((table, key), json.as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// The value under `(table, key)`.
    pub fn get<T: DeserializeOwned>(&self, table: &str, key: &str) -> Result<Option<T>> {
        let txn = self.db.begin_read()?;
        let kv = txn.open_table(KV)?;
        match kv.get((table, key))? {
            Some(v) => Ok(Some(decode(table, key, v.value())?)),
            None => Ok(None),
        }
    }

    /// Every `(key, value)` of `table`, sorted by key.
    pub fn list_table<T: DeserializeOwned>(&self, table: &str) -> Result<Vec<(String, T)>> {
        let txn = self.db.begin_read()?;
        let kv = txn.open_table(KV)?;
        let mut out = Vec::new();
        for entry in kv.range((table, "")..)? {
            let (k, v) = entry?;
            let (t, key) = k.value();
            if t != table {
                break;
            }
            out.push((key.to_owned(), decode(table, key, v.value())?));
        }
        Ok(out)
    }

    /// Removes `(table, key)`; true if it existed.
    pub fn delete(&self, table: &str, key: &str) -> Result<bool> {
        let txn = self.db.begin_write()?;
        let existed = txn.open_table(KV)?.remove((table, key))?.is_some();
        txn.commit()?;
        Ok(existed)
    }
}

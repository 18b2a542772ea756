//! The memcached store as a [`FlaskBackend`]: Flask-Session's layout, one item per
//! session holding its value alone (flags 0), the item's TTL at the session's expiry.
//!
//! A read asks for the value, its CAS token and its remaining TTL (`mg … v c t`); a
//! refresh moves the TTL in the same command (`T`). Writes are compare-and-swap on the
//! token read (`ms … C`), or an `add` when nothing was read, so no write is lost between
//! two processes.
//!
//! memcached counts a TTL in whole seconds of its own clock, and may drop an item up to a
//! second before its TTL runs out. So that it never drops a live session, every write
//! and refresh asks for the remaining lifetime rounded up, plus a second of grace; a read
//! takes the second back off the TTL it is given. An expiry read back is therefore exact
//! to about a second, where Satchel's own layout keeps it to the millisecond (a session
//! Flask wrote ends a second earlier for Satchel than for Flask).

use std::time::{Duration, SystemTime};

use memcache::exp::{Delete, Get, GetResult, Meta, MutationStatus, Set};

use super::{MemcachedStore, NAME, TTL_GRACE, hit, too_large, wire_ttl};
use crate::error::StoreError;
use crate::flask::{Blob, FlaskBackend};

impl FlaskBackend for MemcachedStore {
    async fn blob(&self, key: &str, touch: Option<SystemTime>) -> Result<Option<Blob>, StoreError> {
        let asked = SystemTime::now();
        let mut get = Get::new(key).meta(Meta::NONE.cas().ttl());
        if let Some(at) = touch {
            get = get.touch_raw(wire_ttl(at, asked, TTL_GRACE));
        }
        let result: GetResult = self.run(get).await?;
        let ttl = result.item.ttl;
        let Some((cas, value)) = hit(result)? else {
            return Ok(None);
        };
        let expires_at = match touch {
            Some(at) => Some(at),
            None => ttl
                .and_then(|ttl| u64::try_from(ttl).ok())
                .map(|ttl| ttl_expiry(asked, ttl)),
        };
        Ok(Some(Blob::new(value, expires_at).with_cas(cas)))
    }

    async fn put_blob(
        &self,
        key: &str,
        current: Option<&Blob>,
        value: &[u8],
        expires_at: SystemTime,
    ) -> Result<bool, StoreError> {
        let ttl = wire_ttl(expires_at, SystemTime::now(), TTL_GRACE);
        let set = Set::new(key, value).ttl_raw(ttl);
        let set = match current {
            Some(blob) => set.compare_cas(blob.cas),
            None => set.add(),
        };
        let result = self
            .run(set)
            .await
            .map_err(|error| too_large(error, value.len()))?;
        Ok(result.status == MutationStatus::Applied)
    }

    async fn remove_blob(&self, key: &str, current: &Blob) -> Result<bool, StoreError> {
        let result = self.run(Delete::new(key).compare_cas(current.cas)).await?;
        Ok(result.status == MutationStatus::Applied)
    }

    async fn delete_blob(&self, key: &str) -> Result<(), StoreError> {
        self.run(Delete::new(key)).await.map(|_| ())
    }

    fn blob_prefix(&self) -> &str {
        self.key_prefix()
    }

    fn backend_name(&self) -> &'static str {
        NAME
    }
}

/// The expiry of an item read at `asked` with `ttl` seconds left, the grace second of its
/// writer taken off.
fn ttl_expiry(asked: SystemTime, ttl: u64) -> SystemTime {
    let left = Duration::from_secs(ttl);
    let grace = Duration::from_secs(TTL_GRACE);
    if left >= grace {
        asked + (left - grace)
    } else {
        asked.checked_sub(grace - left).unwrap_or(asked)
    }
}

//! The in-process `memory` store.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use crate::error::StoreError;
use crate::id::SessionId;
use crate::record::{Changes, KeyUpdate, Record, Updated};
use crate::store::{Capabilities, ExpiredDeletion, Page, Saved, SessionStore};

/// The number of independently locked shards: requests for different sessions rarely
/// wait on each other.
const SHARDS: usize = 16;

/// Default number of sessions a [`MemoryStore`] keeps (SESSION_MEMORY_CAPACITY).
pub const DEFAULT_CAPACITY: usize = 100_000;

/// An in-process store (SESSION_TYPE=`memory`), bounded in size.
///
/// Sessions live in this process only and are lost when it stops: use it for one process,
/// tests and demos. It holds at most `capacity` sessions; when a new one would exceed
/// that, expired entries go first, then those that expire soonest, so memory stays bounded
/// under any load. Each change set is applied under the lock of the session's shard, so
/// concurrent requests never lose each other's updates. Cloning shares the store.
///
/// # Examples
///
/// ```
/// use satchel::MemoryStore;
///
/// let store = MemoryStore::with_capacity(10_000);
/// assert_eq!(store.capacity(), 10_000);
/// ```
#[derive(Debug, Clone)]
pub struct MemoryStore {
    shards: Arc<[Mutex<Shard>; SHARDS]>,
    capacity: usize,
    /// Entries in all shards together.
    len: Arc<AtomicUsize>,
}

#[derive(Debug, Default)]
struct Shard {
    entries: HashMap<SessionId, Record>,
    by_expiry: BTreeSet<(SystemTime, SessionId)>,
}

impl Default for MemoryStore {
    /// A store for [`DEFAULT_CAPACITY`] sessions.
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl MemoryStore {
    /// A store that keeps at most `capacity` sessions (at least one).
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            shards: Arc::new(std::array::from_fn(|_| Mutex::new(Shard::default()))),
            capacity: capacity.max(1),
            len: Arc::default(),
        }
    }

    /// How many sessions the store keeps at most.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many entries the store holds now, expired ones included.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether the store holds no entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes an entry, keeping the count.
    fn take(&self, shard: &mut Shard, id: &SessionId) -> Option<Record> {
        let record = shard.take(id)?;
        self.len.fetch_sub(1, Ordering::Relaxed);
        Some(record)
    }

    /// Stores an entry, then evicts down to the capacity.
    fn put(&self, mut shard: MutexGuard<'_, Shard>, id: SessionId, record: Record) {
        shard.by_expiry.insert((record.expires_at, id));
        if shard.entries.insert(id, record).is_none() {
            self.len.fetch_add(1, Ordering::Relaxed);
        }
        drop(shard);
        self.evict(&id);
    }

    /// While over capacity, drops the entry that expires first across all shards (an
    /// expired one if there is any), never `keep`. Only runs when the store is full.
    fn evict(&self, keep: &SessionId) {
        while self.len() > self.capacity {
            let first = |shard: &Shard| shard.by_expiry.iter().find(|(_, id)| id != keep).copied();
            let victim = (0..SHARDS)
                .filter_map(|i| first(&self.lock(i)).map(|(at, _)| (at, i)))
                .min();
            let Some((_, index)) = victim else { break };
            let mut shard = self.lock(index);
            if let Some((_, id)) = first(&shard) {
                self.take(&mut shard, &id);
            }
        }
    }

    fn lock(&self, index: usize) -> MutexGuard<'_, Shard> {
        // A panic while holding the lock cannot leave a shard half-updated in a way that
        // matters more than losing the shard, so a poisoned lock is simply taken over.
        self.shards[index]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn shard_of(&self, id: &SessionId) -> MutexGuard<'_, Shard> {
        self.lock(shard_index(id))
    }
}

/// The shard an id lives in. Ids are uniformly random, so their first bytes spread them
/// evenly without hashing.
fn shard_index(id: &SessionId) -> usize {
    usize::from(id.as_bytes()[0]) % SHARDS
}

impl Shard {
    fn take(&mut self, id: &SessionId) -> Option<Record> {
        let record = self.entries.remove(id)?;
        self.by_expiry.remove(&(record.expires_at, *id));
        Some(record)
    }

    fn sweep(&mut self, now: SystemTime) -> u64 {
        let mut removed = 0;
        while let Some(&(at, id)) = self.by_expiry.first() {
            if at > now {
                break;
            }
            self.take(&id);
            removed += 1;
        }
        removed
    }
}

impl MemoryStore {
    /// Applies `update` to the live entry for `id`, under its shard's lock, and gives the
    /// outcome with what `answer` takes from the entry as the update left it (`None` when
    /// there is no entry, or the update removed its last key and so the entry).
    fn apply_update<T>(
        &self,
        id: &SessionId,
        key: &str,
        update: &KeyUpdate,
        answer: impl FnOnce(&Record) -> T,
    ) -> Result<(Updated, Option<T>), StoreError> {
        let now = SystemTime::now();
        let mut shard = self.shard_of(id);
        let Some(record) = shard.entries.get_mut(id).filter(|r| !r.is_expired(now)) else {
            return Ok((Updated::Missing, None));
        };
        // The expiry stays, so the expiry index needs no change.
        let outcome = update.apply_to(&mut record.data, key)?;
        if record.data.is_empty() {
            self.take(&mut shard, id);
            return Ok((outcome, None));
        }
        Ok((outcome, Some(answer(record))))
    }
}

impl SessionStore for MemoryStore {
    async fn load(
        &self,
        id: &SessionId,
        touch: Option<SystemTime>,
    ) -> Result<Option<Record>, StoreError> {
        let now = SystemTime::now();
        let mut shard = self.shard_of(id);
        let Some(record) = shard.entries.get(id) else {
            return Ok(None);
        };
        if record.is_expired(now) {
            self.take(&mut shard, id);
            return Ok(None);
        }
        match touch {
            Some(at) => {
                let mut record = shard.take(id).unwrap_or_else(|| unreachable!());
                // Taken and put back: the count does not change.
                record.expires_at = at;
                let out = record.clone();
                shard.by_expiry.insert((at, *id));
                shard.entries.insert(*id, record);
                Ok(Some(out))
            }
            _ => Ok(Some(record.clone())),
        }
    }

    async fn save(
        &self,
        id: &SessionId,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        let now = SystemTime::now();
        let mut shard = self.shard_of(id);
        let base = shard.entries.get(id).filter(|r| !r.is_expired(now));
        if base.is_some() || !changes.requires_existing() {
            changes.check_size(base.map(|record| &record.data))?;
        }
        let base = self.take(&mut shard, id).filter(|r| !r.is_expired(now));
        Ok(match changes.merge(base, expires_at) {
            Some(record) => {
                self.put(shard, *id, record);
                Saved::Stored
            }
            None => Saved::Empty,
        })
    }

    async fn cycle(
        &self,
        old: &SessionId,
        new: &SessionId,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        let now = SystemTime::now();
        let base = {
            let mut shard = self.shard_of(old);
            let base = shard.entries.get(old).filter(|r| !r.is_expired(now));
            if base.is_some() || !changes.requires_existing() {
                // Refused: the entry stays under the old id, as it was.
                changes.check_size(base.map(|record| &record.data))?;
            }
            self.take(&mut shard, old).filter(|r| !r.is_expired(now))
        };
        // The old entry is gone before the new one appears; a concurrent change to the
        // old id after this point starts from nothing, as after a logout.
        Ok(match changes.merge(base, expires_at) {
            Some(record) => {
                self.put(self.shard_of(new), *new, record);
                Saved::Stored
            }
            None => Saved::Empty,
        })
    }

    async fn update(
        &self,
        id: &SessionId,
        key: &str,
        update: &KeyUpdate,
    ) -> Result<Updated, StoreError> {
        self.apply_update(id, key, update, |_| ())
            .map(|(outcome, _)| outcome)
    }

    /// The update and a copy of the entry under one lock.
    async fn update_and_load(
        &self,
        id: &SessionId,
        key: &str,
        update: &KeyUpdate,
    ) -> Result<(Updated, Option<Record>), StoreError> {
        self.apply_update(id, key, update, Record::clone)
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        let mut shard = self.shard_of(id);
        self.take(&mut shard, id);
        Ok(())
    }

    /// Pages in id order; the cursor is the last id of the page before.
    async fn list(&self, cursor: Option<&str>, limit: usize) -> Result<Page, StoreError> {
        let after = match cursor {
            Some(text) => Some(text.parse::<SessionId>().map_err(StoreError::backend)?),
            None => None,
        };
        let now = SystemTime::now();
        let mut ids: Vec<SessionId> = Vec::new();
        for index in 0..SHARDS {
            let shard = self.lock(index);
            ids.extend(shard.entries.iter().filter_map(|(id, record)| {
                let wanted = after.is_none_or(|after| *id > after) && !record.is_expired(now);
                wanted.then_some(*id)
            }));
        }
        ids.sort_unstable();
        let limit = limit.max(1);
        let next = (ids.len() > limit).then(|| ids[limit - 1].to_string());
        ids.truncate(limit);
        let entries = ids
            .into_iter()
            .filter_map(|id| {
                let record = self.shard_of(&id).entries.get(&id).cloned()?;
                Some((id, record))
            })
            .collect();
        Ok(Page::new(entries, next))
    }

    fn name(&self) -> &'static str {
        "memory"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            writable: true,
            persistent: false,
            shared: false,
            listable: true,
            list_may_repeat: false,
            in_cookie: false,
        }
    }
}

impl ExpiredDeletion for MemoryStore {
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        let now = SystemTime::now();
        let swept: u64 = (0..SHARDS).map(|i| self.lock(i).sweep(now)).sum();
        self.len.fetch_sub(swept as usize, Ordering::Relaxed);
        Ok(swept)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn one_key() -> Changes {
        let mut changes = Changes::default();
        changes.set("k", serde_json::json!(1));
        changes
    }

    #[tokio::test]
    async fn the_store_holds_its_capacity_at_most() {
        for capacity in [1, 5, SHARDS + 3, 100] {
            let store = MemoryStore::with_capacity(capacity);
            let at = SystemTime::now() + Duration::from_secs(60);
            let mut last = SessionId::generate();
            for _ in 0..capacity * 3 + 7 {
                last = SessionId::generate();
                store.save(&last, &one_key(), at).await.unwrap();
            }
            assert_eq!(store.len(), capacity);
            assert!(
                store.load(&last, None).await.unwrap().is_some(),
                "the newest stays"
            );
        }
    }

    #[tokio::test]
    async fn eviction_takes_the_soonest_expiring_entry_of_any_shard() {
        let store = MemoryStore::with_capacity(3);
        let now = SystemTime::now();
        let ids: Vec<_> = (0..4).map(|_| SessionId::generate()).collect();
        for (id, secs) in ids.iter().zip([50, 10, 40, 30]) {
            let at = now + Duration::from_secs(secs);
            store.save(id, &one_key(), at).await.unwrap();
        }
        assert!(
            store.load(&ids[1], None).await.unwrap().is_none(),
            "10 s went"
        );
        for id in [&ids[0], &ids[2], &ids[3]] {
            assert!(store.load(id, None).await.unwrap().is_some());
        }
    }

    #[tokio::test]
    async fn expired_entries_are_evicted_before_live_ones() {
        let store = MemoryStore::with_capacity(2);
        let now = SystemTime::now();
        let (expired, live, new) = (
            SessionId::generate(),
            SessionId::generate(),
            SessionId::generate(),
        );
        store
            .save(&live, &one_key(), now + Duration::from_secs(10))
            .await
            .unwrap();
        store
            .save(&expired, &one_key(), now + Duration::from_millis(30))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        store
            .save(&new, &one_key(), now + Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(store.len(), 2);
        assert!(store.load(&live, None).await.unwrap().is_some());
        assert!(store.load(&new, None).await.unwrap().is_some());
        assert_eq!(
            store.delete_expired().await.unwrap(),
            0,
            "the expired one went"
        );
    }

    #[tokio::test]
    async fn delete_expired_sweeps_only_expired_entries() {
        let store = MemoryStore::default();
        let now = SystemTime::now();
        let soon = now + Duration::from_millis(20);
        store
            .save(&SessionId::generate(), &one_key(), soon)
            .await
            .unwrap();
        let later = now + Duration::from_secs(60);
        store
            .save(&SessionId::generate(), &one_key(), later)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(store.delete_expired().await.unwrap(), 1);
        assert_eq!(store.len(), 1);
    }
}

//! The `memcached` store: sessions in one or more memcached servers, spoken to over the
//! meta protocol.
//!
//! # Layout
//!
//! One item per session, at the key `{SESSION_KEY_PREFIX}{id}`. Its value is a small
//! versioned MessagePack document: the session's data, its permanent flag, and its expiry
//! (Unix milliseconds) as of the last write, followed by one touch entry for each refresh
//! since (see the refresh below). With several servers, every key goes to one of them,
//! chosen by rendezvous hashing over the configured addresses, so sessions spread over all
//! servers and each process sharing the pool agrees on where a session lives.
//!
//! Keys never carry client input unchecked: a session id is 43 characters of base64url,
//! validated before any store sees it, and the key prefix is checked when the store is
//! built (a key is at most 250 bytes, without spaces or control characters). Nothing a
//! client sends can therefore add a word to a memcached command.
//!
//! # Lifetimes
//!
//! memcached reads an expiration time of more than 30 days (2,592,000 seconds) as an
//! absolute Unix time, so a relative 31 days (Flask's default lifetime) would expire at
//! once. The store sends relative seconds up to 30 days and an absolute Unix time beyond,
//! capped at 2038-01-19 (the largest time memcached accepts); the value's own expiry still
//! holds the real date. memcached's clock ticks in whole seconds, so an item given `n`
//! seconds may be dropped up to a second early: every write and every touch asks for the
//! session's remaining lifetime rounded up to whole seconds, plus one.
//!
//! That TTL only decides when memcached frees the item. Whether a session is live is
//! decided on every load by the expiry in its value, to the millisecond, and never by the
//! TTL: memcached counts a TTL in whole seconds of its own clock from when the command
//! reached it, so an expiry estimated from a reported TTL can come out a second or two
//! after the one asked for.
//!
//! # Refresh
//!
//! A refresh (the `touch` of [`SessionStore::load`]) moves the expiry without rewriting
//! the data, in one round trip: two commands sent together to the item's server, an
//! append (`ms` in mode `MA`, which never creates an item) of a touch entry, then an `mg`
//! that moves the TTL and returns the value, entries included, and the CAS token. A touch
//! entry is a MessagePack array `[sent, expires]` of Unix milliseconds: when the touch was
//! sent, and the expiry it asks for. Every read folds the entries, in the order the server
//! appended them, into the expiry of the record as last written:
//!
//! ```text
//! expiry = the record's expiry
//! for each entry [sent, expires]:  if sent < expiry { expiry = expires }
//! the session is live while now < expiry
//! ```
//!
//! The guarantee: a load never serves a session after its true expiry, the expiry that
//! the latest touch asked for (or the record's, when no touch came since the last write),
//! because that is exactly the expiry it checks, not an estimate. A touch sent once the
//! session had already expired (`sent` not before the expiry so far) is skipped by the
//! fold, so it cannot bring the session back, not even for a reader that comes before it
//! deletes the item. The touch judges itself by the same fold, on the value its own `mg`
//! returns: it finds its entry there, returns the session only if the fold took the entry
//! and the result is live, and deletes an item that is dead as a whole (unless it changed
//! meanwhile). Times are those of the application's clocks, as for every store.
//!
//! Upgrading from a Satchel that refreshed by moving the TTL alone: a session that such
//! a process refreshed carries no touch entry, so it ends at the expiry of its last
//! write, once, earlier than that process would have kept it; a touch or a save from
//! this version gives it an exact expiry again.
//!
//! A touch entry takes at most 19 bytes, and a save writes the value afresh, without
//! entries. So that the value of a session that is read but never changed stays small, a
//! touch that finds 32 entries writes the folded record back (a compare-and-swap on the
//! token its `mg` returned): a second round trip, once in 32 refreshes. A touch changes
//! the item's CAS token.
//!
//! # No lost updates
//!
//! The version of a loaded record is the item's CAS token. A save reads the latest item
//! with its token, applies the request's [`Changes`], and writes the result only if the
//! token still matches (or, when there was no item, only if there still is none); when
//! another writer got in between, it reads again and re-applies, with a small random
//! pause, up to 100 times, then fails with [`StoreError::Backend`]. A save whose result is
//! empty deletes the item under the same condition.
//!
//! The common cases take one round trip. [`SessionStore::save_seen`] writes the data the
//! request saw, on condition that the item is still at the version the request loaded
//! (a refresh by another request in between changes the version, and the save then takes
//! the loop). [`SessionStore::save`], which the engine calls when it found no entry, first
//! tries an `add`, which stores only when there is no item. Either falls back to the loop
//! above.
//!
//! [`SessionStore::cycle`] writes the entry under the new id (with an `add`: the id is
//! fresh) and deletes the old one only if it did not change since it was read; if it did,
//! the new entry is rebuilt from the old entry's latest state, so a write that raced with
//! the id change is kept.
//!
//! # Failures
//!
//! Connections are made when first needed and pooled per server; a connection that fails
//! is dropped and the next request dials again, so the store recovers by itself when a
//! server comes back. Connecting and every exchange are bounded by SESSION_STORE_TIMEOUT
//! (2 seconds by default), after which the operation fails with [`StoreError::Backend`].
//! Error messages never contain keys, which hold session ids.

#[cfg(feature = "flask")]
mod flask;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use memcache::exp::{
    AsyncMetaClient, Delete, Get, GetResult, GetStatus, Meta, MutationStatus, Op, OpResult,
    Operation, Set,
};

use crate::error::{BoxError, StoreError};
use crate::id::{ID_LEN, SessionId};
use crate::observability::record_conflict;
use crate::record::{Changes, Data, KeyUpdate, Meta as SessionMeta, Record, Updated};
use crate::store::envelope::{Envelope, EnvelopeRef};
use crate::store::{Capabilities, DEFAULT_KEY_PREFIX, DEFAULT_TIMEOUT, Saved, Seen, SessionStore};
use crate::support::{from_unix_millis, pause, unix_millis};

/// The server the store uses unless told otherwise (SESSION_MEMCACHED unset): the local
/// one.
pub const DEFAULT_SERVERS: &str = super::defaults::MEMCACHED_SERVERS;
/// The longest key memcached accepts, in bytes.
pub const MAX_KEY_LEN: usize = 250;
/// The longest relative expiration time memcached accepts: 30 days, in seconds. Larger
/// values are read as absolute Unix times.
pub const MAX_RELATIVE_TTL: u64 = 30 * 24 * 60 * 60;
/// The largest absolute Unix time memcached accepts (2038-01-19): it parses expiration
/// times as signed 32-bit numbers.
const MAX_ABSOLUTE_TTL: u64 = i32::MAX as u64;
/// Seconds a write or a touch keeps an item beyond its expiry, for memcached's
/// whole-second clock.
const TTL_GRACE: u64 = 1;
/// Touch entries an item may carry before a touch writes the folded record back.
const MAX_TOUCHES: usize = 32;
/// Conditional writes tried before a save gives up on a session under heavy contention.
const MAX_ATTEMPTS: u32 = 100;
/// The store's name in metrics and logs.
const NAME: &str = "memcached";

/// A store that keeps sessions in memcached (SESSION_TYPE=`memcached`).
///
/// Each session is one item, spread over the configured servers; a refresh moves the
/// item's TTL without rewriting it, and saves are compare-and-swap writes of the request's
/// changes onto the latest item, so concurrent requests never lose each other's updates.
/// See the [module documentation](self) for the layout, lifetimes and failure behaviour.
///
/// Cloning is cheap and shares the connection pools. Every operation needs a tokio
/// runtime.
///
/// # Examples
///
/// ```no_run
/// use std::time::{Duration, SystemTime};
/// use satchel::{Changes, MemcachedStore, SessionId, SessionStore};
///
/// # tokio_test::block_on(async {
/// let store = MemcachedStore::builder("127.0.0.1:11211,127.0.0.1:11212")
///     .with_key_prefix("shop:")
///     .open()
///     .await?;
///
/// let id = SessionId::generate();
/// let mut changes = Changes::default();
/// changes.set("user", serde_json::json!("ada"));
/// store.save(&id, &changes, SystemTime::now() + Duration::from_secs(60)).await?;
/// let record = store.load(&id, None).await?.expect("stored");
/// assert_eq!(record.data["user"], "ada");
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct MemcachedStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: AsyncMetaClient,
    servers: Vec<String>,
    key_prefix: String,
    timeout: Duration,
}

impl fmt::Debug for MemcachedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemcachedStore")
            .field("servers", &self.inner.servers)
            .field("key_prefix", &self.inner.key_prefix)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// Settings for a [`MemcachedStore`], made by [`MemcachedStore::builder`] and turned into
/// a store by [`open`](Self::open).
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use satchel::MemcachedStore;
///
/// # tokio_test::block_on(async {
/// let store = MemcachedStore::builder("cache-1.internal:11211,cache-2.internal:11211")
///     .with_key_prefix("shop:")
///     .with_timeout(Duration::from_secs(1))
///     .open()
///     .await?;
/// # let _ = store;
/// # Ok::<_, satchel::store::memcached::OpenError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct MemcachedStoreBuilder {
    servers: String,
    key_prefix: String,
    timeout: Duration,
}

/// Why a [`MemcachedStore`] cannot be opened.
///
/// # Examples
///
/// ```
/// use satchel::MemcachedStore;
/// use satchel::store::memcached::OpenError;
///
/// # tokio_test::block_on(async {
/// // A malformed list is refused before anything connects.
/// let error = MemcachedStore::connect("127.0.0.1").await.unwrap_err();
/// assert!(matches!(error, OpenError::InvalidServers { .. }));
/// # });
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The server list is not one or more `host:port` separated by commas, or names a
    /// server twice.
    #[error("invalid memcached server list {servers:?}: expected {expected}")]
    InvalidServers {
        /// The server list as given.
        servers: String,
        /// What the list must look like.
        expected: &'static str,
    },
    /// A host name of the list does not resolve.
    #[error("the memcached server list {servers:?} does not resolve")]
    Unresolved {
        /// The server list as given.
        servers: String,
        /// What the resolver said.
        #[source]
        source: BoxError,
    },
    /// Resolving the host names took longer than the timeout.
    #[error("the memcached server list {servers:?} did not resolve within {timeout:?}")]
    ResolveTimeout {
        /// The server list as given.
        servers: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The key prefix cannot start a memcached key: too long, or with spaces or control
    /// characters.
    #[error("invalid memcached key prefix {prefix:?}: expected {expected}")]
    InvalidKeyPrefix {
        /// The prefix as given.
        prefix: String,
        /// What the prefix must look like.
        expected: String,
    },
    /// A server did not answer a no-op within the timeout.
    #[error("a memcached server of {servers:?} is not reachable")]
    Unreachable {
        /// The server list as given.
        servers: String,
        /// What failed.
        #[source]
        source: BoxError,
    },
}

/// A memcached failure, without the key the client attaches to some of its errors: keys
/// hold session ids, which must never reach a log.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("memcached did not answer in time")]
    Timeout,
    #[error("a memcached request was sent but its outcome is unknown")]
    Ambiguous(#[source] Box<Failure>),
    #[error("memcached connection failed")]
    Io(#[source] std::io::Error),
    #[error("memcached server error: {0}")]
    Server(String),
    #[error("memcached rejected a command: {0}")]
    Rejected(String),
    #[error("memcached sent an unexpected response")]
    Protocol,
    #[error("memcached client error")]
    Client(#[source] memcache::exp::Error),
    #[error("a memcached read did not return the item's CAS token")]
    MissingCas,
    #[error("gave up after {0} conflicting concurrent writes to one session")]
    Conflict(u32),
}

impl From<memcache::exp::Error> for Failure {
    fn from(error: memcache::exp::Error) -> Self {
        use memcache::exp::Error;
        match error {
            Error::Timeout { .. } => Self::Timeout,
            Error::Ambiguous { source, .. } => Self::Ambiguous(Box::new(Self::from(*source))),
            Error::Io(error) if error.kind() == std::io::ErrorKind::TimedOut => Self::Timeout,
            Error::Io(error) => Self::Io(error),
            Error::Server(message) => Self::Server(message),
            Error::Rejected(message) => Self::Rejected(message),
            // Its text may quote whatever bytes came back, session data included.
            Error::Protocol(_) => Self::Protocol,
            other => Self::Client(other),
        }
    }
}

/// Why a stored value is not a session of this store.
#[derive(Debug, thiserror::Error)]
enum FormatError {
    #[error("session value without its expiry")]
    NoExpiry,
    #[error("memcached reported a hit without a value")]
    NoValue,
}

/// The value of a session item, as read: the [envelope](crate::store::envelope) with
/// its expiry as of the last write (Unix milliseconds).
struct Value {
    expires: u64,
    meta: SessionMeta,
    data: Data,
}

/// A touch entry appended to an item's value: when the touch was sent, and the expiry it
/// asks for, both in Unix milliseconds.
type TouchEntry = (u64, u64);

/// An item found on its server: its CAS token, and its record unless it has expired or
/// cannot be decoded.
struct Current {
    cas: u64,
    record: Option<Record>,
}

/// The condition of a write.
#[derive(Debug, Clone, Copy)]
enum Condition {
    /// Only when there is no item (memcached's `add`).
    Absent,
    /// Only when the item's CAS token is still this one.
    Cas(u64),
}

/// The outcome of a conditional write or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Applied; a write reports the item's new CAS token.
    Done(Option<u64>),
    /// The delete found nothing to delete.
    Missing,
    /// The condition did not hold: another writer got there first.
    Conflict,
}

impl MemcachedStore {
    /// Starts configuring a store on `servers`: one or more `host:port`, separated by
    /// commas (e.g. `127.0.0.1:11211,127.0.0.1:11212`; [`DEFAULT_SERVERS`] is the local
    /// server), with the defaults: key prefix [`DEFAULT_KEY_PREFIX`], timeout
    /// [`DEFAULT_TIMEOUT`].
    ///
    /// Nothing is checked or contacted until [`open`](MemcachedStoreBuilder::open).
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = satchel::MemcachedStore::builder("127.0.0.1:11211").with_key_prefix("shop:");
    /// # let _ = builder;
    /// ```
    pub fn builder(servers: impl Into<String>) -> MemcachedStoreBuilder {
        MemcachedStoreBuilder {
            servers: servers.into(),
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Opens a store on `servers` with the default key prefix and timeout; see
    /// [`MemcachedStoreBuilder::open`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # tokio_test::block_on(async {
    /// let store = satchel::MemcachedStore::connect("127.0.0.1:11211").await?;
    /// assert_eq!(store.servers(), ["127.0.0.1:11211"]);
    /// # Ok::<_, satchel::store::memcached::OpenError>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// As [`MemcachedStoreBuilder::open`].
    pub async fn connect(servers: &str) -> Result<Self, OpenError> {
        Self::builder(servers).open().await
    }

    /// The servers, as configured, in order.
    #[must_use]
    pub fn servers(&self) -> &[String] {
        &self.inner.servers
    }

    /// The prefix of every key.
    #[must_use]
    pub fn key_prefix(&self) -> &str {
        &self.inner.key_prefix
    }

    /// The key of a session: the prefix, checked when the store was built, then the id,
    /// whose characters are all base64url. A valid memcached key by construction.
    fn key(&self, id: &SessionId) -> String {
        let mut key = String::with_capacity(self.inner.key_prefix.len() + ID_LEN);
        key.push_str(&self.inner.key_prefix);
        id.encode_into(&mut key);
        key
    }

    /// Runs a client future under the store's timeout.
    async fn within<T>(
        &self,
        future: impl Future<Output = Result<T, memcache::exp::Error>>,
    ) -> Result<T, StoreError> {
        crate::support::within(NAME, self.inner.timeout, async {
            future
                .await
                .map_err(|error| StoreError::backend(Failure::from(error)))
        })
        .await
    }

    /// Runs one operation on the server of its key.
    async fn run<O>(&self, operation: O) -> Result<O::Output, StoreError>
    where
        O: Operation + Send + Sync,
        O::Output: Send,
    {
        self.within(self.inner.client.run(operation)).await
    }

    /// Reads the item at `key` with its CAS token: `None` when there is no item.
    async fn fetch(&self, key: &str) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let result: GetResult = self.run(Get::new(key).meta(Meta::NONE.cas())).await?;
        hit(result)
    }

    /// Refreshes the item at `key` to expire at `at`, in one round trip: appends a touch
    /// entry (an append never creates an item), then moves the TTL and reads the value
    /// with the entry and the CAS token. The record when the fold took the entry and the
    /// session is live; otherwise `None`, and an item that is dead as a whole is deleted.
    /// See the module documentation.
    async fn touch(&self, key: &str, at: SystemTime) -> Result<Option<Record>, StoreError> {
        let sent = SystemTime::now();
        let entry = touch_entry(sent, at);
        let append = Set::new(key, rmp_serde::to_vec(&entry).map_err(StoreError::encode)?).append();
        let get = Get::new(key)
            .meta(Meta::NONE.cas())
            .touch_raw(wire_ttl(at, sent, TTL_GRACE));
        let results = self
            .within(
                self.inner
                    .client
                    .run_batch([Op::from(append), Op::from(get)]),
            )
            .await?;
        let mut results = results
            .into_iter()
            .map(|result| result.map_err(|error| StoreError::backend(Failure::from(error))));
        let (Some(appended), Some(read)) = (results.next(), results.next()) else {
            return Err(StoreError::backend(Failure::Protocol));
        };
        // Not stored means there was no item: the read below then misses too, or finds
        // an item written since, without the entry.
        appended?;
        let OpResult::Get(read) = read? else {
            return Err(StoreError::backend(Failure::Protocol));
        };
        let Some((cas, bytes)) = hit(read)? else {
            return Ok(None);
        };
        let (value, touches) = parse(&bytes)?;
        let Some(ours) = touches.iter().rposition(|&touch| touch == entry) else {
            return Ok(None);
        };
        let taken = entry.0 < fold(value.expires, &touches[..ours]);
        let expires = fold(value.expires, &touches);
        match live(value, expires, SystemTime::now(), cas) {
            Some(mut record) if taken => {
                if touches.len() >= MAX_TOUCHES {
                    // Written back folded, unless the item changed since the read.
                    let outcome = self
                        .write(
                            key,
                            &record.data,
                            record.meta(),
                            record.expires_at,
                            Condition::Cas(cas),
                        )
                        .await?;
                    if let Outcome::Done(Some(written)) = outcome {
                        record.version = Some(written);
                    }
                }
                Ok(Some(record))
            }
            // Another touch keeps the session alive; this one came too late.
            Some(_) => Ok(None),
            None => {
                // Dead, yet the touch gave the item a new TTL: delete it, unless it was
                // rewritten meanwhile.
                self.remove(key, Some(cas)).await?;
                Ok(None)
            }
        }
    }

    /// The item at `key` for a read-modify-write. An expired item counts as no data, and
    /// so does one that cannot be decoded: it is replaced, as the engine would start a
    /// fresh session on load.
    async fn current(&self, key: &str) -> Result<Option<Current>, StoreError> {
        let Some((cas, bytes)) = self.fetch(key).await? else {
            return Ok(None);
        };
        let record = match decode(&bytes, SystemTime::now(), cas) {
            Ok(record) => record,
            Err(error) => {
                tracing::warn!(%error, "replacing a stored session that could not be decoded");
                None
            }
        };
        Ok(Some(Current { cas, record }))
    }

    /// Writes a session's value under `condition`.
    async fn write(
        &self,
        key: &str,
        data: &Data,
        meta: SessionMeta,
        expires_at: SystemTime,
        condition: Condition,
    ) -> Result<Outcome, StoreError> {
        let bytes = encode(data, meta, expires_at)?;
        let size = bytes.len();
        let ttl = wire_ttl(expires_at, SystemTime::now(), TTL_GRACE);
        let set = Set::new(key, bytes).ttl_raw(ttl).return_cas();
        let set = match condition {
            Condition::Absent => set.add(),
            Condition::Cas(cas) => set.compare_cas(cas),
        };
        let result = self
            .run(set)
            .await
            .map_err(|error| too_large(error, size))?;
        Ok(match result.status {
            MutationStatus::Applied => Outcome::Done(result.cas),
            _ => Outcome::Conflict,
        })
    }

    /// Deletes the item at `key`, only while its CAS token is `cas` when one is given.
    async fn remove(&self, key: &str, cas: Option<u64>) -> Result<Outcome, StoreError> {
        let mut delete = Delete::new(key);
        if let Some(cas) = cas {
            delete = delete.compare_cas(cas);
        }
        let result = self.run(delete).await?;
        Ok(match result.status {
            MutationStatus::Applied => Outcome::Done(None),
            MutationStatus::NotFound => Outcome::Missing,
            _ => Outcome::Conflict,
        })
    }

    /// Applies `changes` onto the latest item at `key` under a compare-and-swap, retrying
    /// when another writer got in between.
    async fn apply(
        &self,
        key: &str,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                // Another writer got in between: the change set goes again onto its entry.
                record_conflict(NAME);
                pause(attempt).await;
            }
            let (cas, base) = split(self.current(key).await?);
            let outcome = match (changes.apply_to(base, expires_at)?, cas) {
                (Some(record), cas) => {
                    let condition = cas.map_or(Condition::Absent, Condition::Cas);
                    match self
                        .write(key, &record.data, record.meta(), expires_at, condition)
                        .await?
                    {
                        Outcome::Done(_) => return Ok(Saved::Stored),
                        other => other,
                    }
                }
                (None, None) => return Ok(Saved::Empty),
                (None, Some(cas)) => self.remove(key, Some(cas)).await?,
            };
            if outcome != Outcome::Conflict {
                return Ok(Saved::Empty);
            }
        }
        Err(StoreError::Contended(
            Failure::Conflict(MAX_ATTEMPTS).into(),
        ))
    }

    /// Applies `update` to `key` of the live item at `item` under a compare-and-swap,
    /// retrying when another writer got in between. The item keeps its expiry.
    async fn update_item(
        &self,
        item: &str,
        key: &str,
        update: &KeyUpdate,
    ) -> Result<Updated, StoreError> {
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                // Another writer got in between: the change set goes again onto its entry.
                record_conflict(NAME);
                pause(attempt).await;
            }
            let (Some(cas), Some(mut record)) = split(self.current(item).await?) else {
                return Ok(Updated::Missing);
            };
            let before = record.data.get(key).cloned();
            let outcome = update.apply_to(&mut record.data, key)?;
            let written = if record.data.is_empty() {
                self.remove(item, Some(cas)).await?
            } else if record.data.get(key) == before.as_ref() {
                return Ok(outcome);
            } else {
                let condition = Condition::Cas(cas);
                self.write(
                    item,
                    &record.data,
                    record.meta(),
                    record.expires_at,
                    condition,
                )
                .await?
            };
            match written {
                Outcome::Conflict => {}
                // Deleted by another request in between: the session is gone.
                Outcome::Missing => return Ok(Updated::Missing),
                Outcome::Done(_) => return Ok(outcome),
            }
        }
        Err(StoreError::Contended(
            Failure::Conflict(MAX_ATTEMPTS).into(),
        ))
    }
}

impl MemcachedStoreBuilder {
    /// Sets the prefix of every key (default [`DEFAULT_KEY_PREFIX`]), so that several
    /// applications can share the servers without seeing each other's sessions. A key is
    /// the prefix followed by the 43 characters of the id, and memcached keys are at most
    /// [`MAX_KEY_LEN`] bytes, without spaces or control characters.
    pub fn with_key_prefix(mut self, key_prefix: impl Into<String>) -> Self {
        self.key_prefix = key_prefix.into();
        self
    }

    /// Sets the time limit of connecting and of every exchange (default
    /// [`DEFAULT_TIMEOUT`]): past it an operation fails with [`StoreError::Backend`], so a
    /// request fails fast while a server is unreachable.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Opens the store: checks the server list and the key prefix, resolves the host
    /// names, once, and asks every server for a no-op.
    ///
    /// As with every networked store, a server that cannot be reached stops the start (a
    /// wrong address shows at once, not as a share of requests answering 500). Once
    /// started, a server that goes down fails the requests whose sessions live on it
    /// until it is back, and the store uses it again by itself.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use satchel::MemcachedStore;
    ///
    /// # tokio_test::block_on(async {
    /// let store = MemcachedStore::builder("127.0.0.1:11211, 127.0.0.1:11212")
    ///     .with_key_prefix("shop:")
    ///     .open()
    ///     .await?;
    /// assert_eq!(store.servers(), ["127.0.0.1:11211", "127.0.0.1:11212"]);
    /// assert_eq!(store.key_prefix(), "shop:");
    /// # Ok::<_, satchel::store::memcached::OpenError>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`OpenError::InvalidServers`] and [`OpenError::InvalidKeyPrefix`] before anything
    /// connects; [`OpenError::Unresolved`] or [`OpenError::ResolveTimeout`] when a host
    /// name does not resolve; [`OpenError::Unreachable`] when a server does not answer
    /// within the timeout.
    pub async fn open(self) -> Result<MemcachedStore, OpenError> {
        let Self {
            servers: text,
            key_prefix,
            timeout,
        } = self;
        let servers = match parse_servers(&text) {
            Ok(servers) => servers,
            Err(expected) => {
                return Err(OpenError::InvalidServers {
                    servers: text,
                    expected,
                });
            }
        };
        if let Err(expected) = check_prefix(&key_prefix) {
            return Err(OpenError::InvalidKeyPrefix {
                prefix: key_prefix,
                expected,
            });
        }
        let connect = AsyncMetaClient::builder()
            .connect_timeout(Some(timeout))
            .io_timeout(Some(timeout))
            .connect_multiple_async(servers.iter().cloned());
        let client = match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(client)) => client,
            Ok(Err(error)) => {
                // Resolving involves no key, so the client's message can be shown.
                return Err(OpenError::Unresolved {
                    servers: text,
                    source: error.into(),
                });
            }
            Err(_) => {
                return Err(OpenError::ResolveTimeout {
                    servers: text,
                    timeout,
                });
            }
        };
        let store = MemcachedStore {
            inner: Arc::new(Inner {
                client,
                servers,
                key_prefix,
                timeout,
            }),
        };
        let failure = match tokio::time::timeout(timeout, store.inner.client.noop()).await {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(Failure::from(error)),
            Err(_) => Some(Failure::Timeout),
        };
        // As every networked store does: a server that cannot be reached at start-up
        // stops the start, so a wrong address or a server that is down shows at once
        // rather than as a share of requests answering 500.
        if let Some(failure) = failure {
            return Err(OpenError::Unreachable {
                servers: text,
                source: Box::new(failure),
            });
        }
        Ok(store)
    }
}

impl SessionStore for MemcachedStore {
    async fn load(
        &self,
        id: &SessionId,
        touch: Option<SystemTime>,
    ) -> Result<Option<Record>, StoreError> {
        let key = self.key(id);
        if let Some(at) = touch {
            return self.touch(&key, at).await;
        }
        let Some((cas, bytes)) = self.fetch(&key).await? else {
            return Ok(None);
        };
        decode(&bytes, SystemTime::now(), cas)
    }

    async fn save(
        &self,
        id: &SessionId,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        let key = self.key(id);
        // The engine saves without a version when it found no entry, mostly for a new
        // session: one `add` then does it, as it only stores when there is no item, which
        // makes it the change set applied onto nothing. Otherwise, the CAS loop.
        // Refused onto nothing is refused onto anything: the sets alone are over.
        if let Some(record) = changes.apply_to(None, expires_at)?
            && let Outcome::Done(_) = self
                .write(
                    &key,
                    &record.data,
                    record.meta(),
                    expires_at,
                    Condition::Absent,
                )
                .await?
        {
            return Ok(Saved::Stored);
        }
        self.apply(&key, changes, expires_at).await
    }

    /// One conditional write (or delete) of the data the request saw, while the item is
    /// still at the version the request loaded; otherwise the compare-and-swap loop of
    /// [`save`](SessionStore::save).
    async fn save_seen(
        &self,
        id: &SessionId,
        seen: Seen<'_>,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        let key = self.key(id);
        changes.check_merged(seen.data)?;
        if seen.data.is_empty() {
            // Gone already is as good: the changes remove every key, so applying them
            // onto nothing leaves nothing either.
            if self.remove(&key, Some(seen.version)).await? != Outcome::Conflict {
                return Ok(Saved::Empty);
            }
        } else if let Outcome::Done(_) = self
            .write(
                &key,
                seen.data,
                seen.meta(),
                expires_at,
                Condition::Cas(seen.version),
            )
            .await?
        {
            return Ok(Saved::Stored);
        }
        // Another writer got in since the load: the change set goes onto its entry.
        record_conflict(NAME);
        self.apply(&key, changes, expires_at).await
    }

    /// Writes the entry under `new`, then deletes the one under `old` only if it did not
    /// change since it was read; if it did, the new entry is rebuilt from its latest
    /// state, so a write racing the id change is kept.
    async fn cycle(
        &self,
        old: &SessionId,
        new: &SessionId,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        if old == new {
            return self.save(new, changes, expires_at).await;
        }
        let (old_key, new_key) = (self.key(old), self.key(new));
        // The CAS token of the entry under `new`, once there is one.
        let mut target: Option<u64> = None;
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                // Another writer got in between: the change set goes again onto its entry.
                record_conflict(NAME);
                pause(attempt).await;
            }
            let (old_cas, base) = split(self.current(&old_key).await?);
            let merged = match changes.apply_to(base, expires_at) {
                Ok(merged) => merged,
                Err(refused) => {
                    // Over the budget onto the old entry's latest state: the entry stays
                    // under the old id, and what an earlier attempt wrote under the new
                    // one goes.
                    if let Some(cas) = target {
                        self.remove(&new_key, Some(cas)).await?;
                    }
                    return Err(refused);
                }
            };
            let saved = match merged {
                Some(record) => {
                    let condition = target.map_or(Condition::Absent, Condition::Cas);
                    match self
                        .write(&new_key, &record.data, record.meta(), expires_at, condition)
                        .await?
                    {
                        Outcome::Done(cas) => {
                            target = cas;
                            Saved::Stored
                        }
                        _ => {
                            // Something else is under `new`: write over it next time.
                            target = self.current(&new_key).await?.map(|item| item.cas);
                            continue;
                        }
                    }
                }
                None => {
                    if let Some(cas) = target.take() {
                        self.remove(&new_key, Some(cas)).await?;
                    }
                    Saved::Empty
                }
            };
            let Some(old_cas) = old_cas else {
                return Ok(saved);
            };
            if self.remove(&old_key, Some(old_cas)).await? != Outcome::Conflict {
                return Ok(saved);
            }
        }
        Err(StoreError::Contended(
            Failure::Conflict(MAX_ATTEMPTS).into(),
        ))
    }

    async fn update(
        &self,
        id: &SessionId,
        key: &str,
        update: &KeyUpdate,
    ) -> Result<Updated, StoreError> {
        self.update_item(&self.key(id), key, update).await
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        self.remove(&self.key(id), None).await.map(drop)
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            writable: true,
            persistent: true,
            shared: true,
            listable: false,
            list_may_repeat: false,
            in_cookie: false,
        }
    }
}

/// A write of `size` bytes that the server refused for its item size (`-I`, 1 MB by
/// default: "object too large for cache") as [`StoreError::TooLarge`], whose limit is
/// unknown (`0`): the server does not say it. Any other error as it is.
fn too_large(error: StoreError, size: usize) -> StoreError {
    fn says_too_large(failure: &Failure) -> bool {
        match failure {
            Failure::Server(message) | Failure::Rejected(message) => message.contains("too large"),
            // The server answered that it refused it: the outcome is known after all.
            Failure::Ambiguous(inner) => says_too_large(inner),
            _ => false,
        }
    }
    let refused = match &error {
        StoreError::Backend(source) => source.downcast_ref::<Failure>().is_some_and(says_too_large),
        _ => false,
    };
    if refused {
        StoreError::TooLarge { budget: 0, size }
    } else {
        error
    }
}

/// The CAS token of an item (when there is one) and its live record (when it has one).
fn split(current: Option<Current>) -> (Option<u64>, Option<Record>) {
    match current {
        Some(Current { cas, record }) => (Some(cas), record),
        None => (None, None),
    }
}

/// Parses SESSION_MEMCACHED: one or more `host:port`, separated by commas.
fn parse_servers(text: &str) -> Result<Vec<String>, &'static str> {
    const EXPECTED: &str = "one or more host:port separated by commas, \
                            e.g. 127.0.0.1:11211,127.0.0.1:11212";
    let mut servers: Vec<String> = Vec::new();
    for part in text.split(',') {
        let server = part.trim();
        let (host, port) = server.rsplit_once(':').ok_or(EXPECTED)?;
        let host_ok = if let Some(inner) = host.strip_prefix('[') {
            inner
                .strip_suffix(']')
                .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
        } else {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        };
        let port_ok = !port.starts_with('+') && port.parse::<u16>().is_ok_and(|p| p != 0);
        if !host_ok || !port_ok {
            return Err(EXPECTED);
        }
        if servers.iter().any(|known| known == server) {
            return Err("each server once: a server listed twice would get twice the sessions");
        }
        servers.push(server.to_owned());
    }
    Ok(servers)
}

/// Whether `key` is a key memcached accepts as it is: at most 250 bytes, not empty,
/// without whitespace or control characters.
fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && !key.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Checks that every key `prefix` starts is valid; otherwise says what is accepted.
fn check_prefix(prefix: &str) -> Result<(), String> {
    let longest = MAX_KEY_LEN - ID_LEN;
    if prefix.len() > longest {
        return Err(format!(
            "a prefix of at most {longest} bytes (memcached keys are at most {MAX_KEY_LEN} \
             bytes, and the id takes {ID_LEN})"
        ));
    }
    let sample = format!("{prefix}{}", "A".repeat(ID_LEN));
    if !is_valid_key(&sample) {
        return Err("a prefix without spaces or control characters, e.g. session:".to_owned());
    }
    Ok(())
}

/// The expiration time to send memcached for an item that must live until `expires_at`,
/// plus `grace` seconds: relative seconds up to 30 days, an absolute Unix time beyond
/// (memcached's rule), capped at the largest time memcached accepts. Never 0, which would
/// mean "never expires".
fn wire_ttl(expires_at: SystemTime, now: SystemTime, grace: u64) -> u32 {
    let left = expires_at.duration_since(now).unwrap_or_default();
    let relative = left
        .as_secs()
        .saturating_add(u64::from(left.subsec_nanos() > 0))
        .saturating_add(grace)
        .max(1);
    if relative <= MAX_RELATIVE_TTL {
        return u32::try_from(relative).unwrap_or(u32::MAX);
    }
    // Whole seconds rounded down: the server keeps the item until its clock reaches this
    // second, which is after `expires_at` once the grace is added.
    let absolute = unix_secs(expires_at)
        .saturating_add(grace)
        .min(MAX_ABSOLUTE_TTL);
    u32::try_from(absolute).unwrap_or(u32::MAX)
}

/// The CAS token and value of a read that found an item; `None` for a miss.
fn hit(result: GetResult) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
    if result.status != GetStatus::Hit {
        return Ok(None);
    }
    let cas = result
        .item
        .cas
        .ok_or_else(|| StoreError::backend(Failure::MissingCas))?;
    let value = result
        .value
        .ok_or_else(|| StoreError::decode(FormatError::NoValue))?;
    Ok(Some((cas, value)))
}

/// The touch entry of a refresh sent at `sent` that asks for the expiry `at`.
fn touch_entry(sent: SystemTime, at: SystemTime) -> TouchEntry {
    (unix_millis(sent), unix_millis(at))
}

/// The expiry, in Unix milliseconds, of a record written with the expiry `stored` and
/// refreshed by `touches` since: each entry moves it to the expiry it asks for when it
/// was sent before the expiry so far, and is skipped otherwise (it reached a session that
/// had already expired).
fn fold(stored: u64, touches: &[TouchEntry]) -> u64 {
    touches.iter().fold(
        stored,
        |expiry, &(sent, asked)| if sent < expiry { asked } else { expiry },
    )
}

fn unix_secs(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

fn encode(data: &Data, meta: SessionMeta, expires_at: SystemTime) -> Result<Vec<u8>, StoreError> {
    EnvelopeRef {
        expires: Some(unix_millis(expires_at)),
        ..EnvelopeRef::new(data, meta)
    }
    .encode()
}

/// Reads an item's value: the record as last written, then the touch entries appended
/// since, in order.
fn parse(bytes: &[u8]) -> Result<(Value, Vec<TouchEntry>), StoreError> {
    let mut rest = bytes;
    let envelope = Envelope::read(&mut rest)?;
    let value = Value {
        expires: envelope
            .expires
            .ok_or_else(|| StoreError::decode(FormatError::NoExpiry))?,
        meta: envelope.meta(),
        data: envelope.data,
    };
    let mut touches: Vec<TouchEntry> = Vec::new();
    while !rest.is_empty() {
        touches.push(rmp_serde::from_read(&mut rest).map_err(StoreError::decode)?);
    }
    Ok((value, touches))
}

/// The record of `value` with the expiry `expires` (Unix milliseconds), `None` when that
/// has passed at `now`.
fn live(value: Value, expires: u64, now: SystemTime, cas: u64) -> Option<Record> {
    let expires_at = from_unix_millis(expires);
    if expires_at <= now {
        return None;
    }
    Some(Record::from_parts(
        value.data,
        expires_at,
        value.meta,
        Some(cas),
    ))
}

/// Decodes arbitrary bytes as an item's value (fuzzing).
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz(bytes: &[u8]) {
    let _ = decode(bytes, SystemTime::UNIX_EPOCH, 0);
}

/// Decodes an item's value into its record, `None` when it has expired at `now`: the
/// expiry is the record's, moved by the touches appended since (see [`fold`]).
fn decode(bytes: &[u8], now: SystemTime, cas: u64) -> Result<Option<Record>, StoreError> {
    let (value, touches) = parse(bytes)?;
    let expires = fold(value.expires, &touches);
    Ok(live(value, expires, now, cas))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(unix: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(unix)
    }

    const NOW: u64 = 1_750_000_000;
    const DAY: u64 = 24 * 60 * 60;

    #[test]
    fn lifetimes_up_to_thirty_days_are_sent_as_relative_seconds() {
        let now = at(NOW);
        assert_eq!(wire_ttl(at(NOW + 60), now, 0), 60);
        assert_eq!(wire_ttl(at(NOW + 60), now, TTL_GRACE), 61);
        // A fraction of a second rounds up, so the item never goes before its expiry.
        let soon = now + Duration::from_millis(1500);
        assert_eq!(wire_ttl(soon, now, 0), 2);
        assert_eq!(wire_ttl(at(NOW + 30 * DAY), now, 0), 2_592_000);
        assert_eq!(
            wire_ttl(at(NOW + 30 * DAY - TTL_GRACE), now, TTL_GRACE),
            2_592_000
        );
    }

    #[test]
    fn lifetimes_over_thirty_days_are_sent_as_an_absolute_unix_time() {
        let now = at(NOW);
        // Flask's default lifetime: 31 days. A relative 2,678,400 would be read as a time
        // in January 1970, and the item would expire at once.
        let expires = at(NOW + 31 * DAY);
        let wire = wire_ttl(expires, now, 0);
        assert_eq!(u64::from(wire), NOW + 31 * DAY);
        assert_eq!(
            u64::from(wire_ttl(expires, now, TTL_GRACE)),
            NOW + 31 * DAY + 1
        );
        assert_eq!(
            u64::from(wire_ttl(at(NOW + 30 * DAY + 1), now, 0)),
            NOW + 30 * DAY + 1
        );
        // The grace can push a 30-day lifetime over the limit: then it is absolute too.
        let edge = wire_ttl(at(NOW + 30 * DAY), now, TTL_GRACE);
        assert_eq!(u64::from(edge), NOW + 30 * DAY + TTL_GRACE);
        assert!(u64::from(edge) > MAX_RELATIVE_TTL);
    }

    #[test]
    fn absolute_times_are_capped_at_what_memcached_parses() {
        let now = at(NOW);
        let far = at(NOW + 100 * 365 * DAY);
        assert_eq!(u64::from(wire_ttl(far, now, 0)), MAX_ABSOLUTE_TTL);
    }

    #[test]
    fn an_expiry_in_the_past_still_sends_a_positive_ttl() {
        let now = at(NOW);
        assert_eq!(wire_ttl(at(NOW - 10), now, 0), 1);
        assert_eq!(wire_ttl(at(NOW - 10), now, TTL_GRACE), 1);
        assert_eq!(wire_ttl(at(0), now, 4), 4);
    }

    fn ms(millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(millis)
    }

    /// `bytes` with a touch entry appended, as the server appends it.
    fn touched(bytes: &[u8], sent: SystemTime, asked: SystemTime) -> Vec<u8> {
        let mut bytes = bytes.to_vec();
        bytes.extend(rmp_serde::to_vec(&touch_entry(sent, asked)).unwrap());
        bytes
    }

    #[test]
    fn touches_fold_into_the_expiry_in_order_and_only_while_live() {
        let stored = NOW * 1000;
        assert_eq!(fold(stored, &[]), stored);
        // Sent before the expiry: it moves the expiry to exactly what it asked for.
        assert_eq!(
            fold(stored, &[(stored - 1, stored + 1_234)]),
            stored + 1_234
        );
        // The latest wins, later or earlier.
        let both = [(stored - 10, stored + 9_000), (stored - 5, stored + 4_321)];
        assert_eq!(fold(stored, &both), stored + 4_321);
        // Sent once the session had expired: skipped, and so are those it would enable.
        let late = [(stored, stored + 60_000)];
        assert_eq!(fold(stored, &late), stored);
        let after = [(stored + 1, stored + 60_000), (stored + 2, stored + 70_000)];
        assert_eq!(fold(stored, &after), stored);
        // Sent after the written expiry, but after a touch that had moved it: taken.
        let chain = [(stored - 1, stored + 5_000), (stored + 1, stored + 6_000)];
        assert_eq!(fold(stored, &chain), stored + 6_000);
        // An entry takes at most 19 bytes: an array of two 64-bit integers.
        let now = SystemTime::now();
        let entry = touch_entry(now, now + Duration::from_secs(400 * DAY));
        assert_eq!(rmp_serde::to_vec(&entry).unwrap().len(), 19);
    }

    #[test]
    fn a_touched_session_expires_at_the_touched_millisecond() {
        let data = Data::from([("a".to_owned(), json!(1))]);
        let written = NOW * 1000 + 500;
        let bytes = encode(&data, SessionMeta::default(), ms(written)).unwrap();
        // Whatever the fraction of a second asked for (the TTL memcached reports has
        // whole seconds only), the session lives until that very millisecond, and not one
        // millisecond longer.
        for extra in (1..3_000).step_by(7) {
            let asked = written + extra;
            let bytes = touched(&bytes, ms(written - 200), ms(asked));
            let record = decode(&bytes, ms(asked - 1), 3).unwrap().unwrap();
            assert_eq!(record.expires_at, ms(asked), "{extra}");
            assert_eq!(record.data, data);
            assert!(decode(&bytes, ms(asked), 3).unwrap().is_none(), "{extra}");
        }
        // A touch that reached the session after its expiry does not bring it back.
        let revived = touched(&bytes, ms(written), ms(written + 60_000));
        assert!(decode(&revived, ms(written + 1), 3).unwrap().is_none());
        // Many touches: the last one counts.
        let mut many = bytes;
        for i in 1..=40 {
            many = touched(&many, ms(written - 100 + i), ms(written + i * 1_000));
        }
        let record = decode(&many, ms(written + 39_999), 3).unwrap().unwrap();
        assert_eq!(record.expires_at, ms(written + 40_000));
        assert!(decode(&many, ms(written + 40_000), 3).unwrap().is_none());
    }

    #[test]
    fn values_round_trip_and_expire_on_the_stored_time() {
        let data = Data::from([("a".to_owned(), json!({"b": [1, 2.5, "c", null]}))]);
        let now = SystemTime::now();
        let expires = now + Duration::from_secs(30);
        let bytes = encode(
            &data,
            SessionMeta {
                permanent: Some(false),
                ..SessionMeta::default()
            },
            expires,
        )
        .unwrap();
        let record = decode(&bytes, now, 7).unwrap().unwrap();
        assert_eq!(record.data, data);
        assert_eq!(record.permanent, Some(false));
        assert_eq!(record.version, Some(7));
        assert_eq!(unix_millis(record.expires_at), unix_millis(expires));
        let later = expires + Duration::from_millis(1);
        assert!(decode(&bytes, later, 7).unwrap().is_none());
    }

    #[test]
    fn foreign_or_corrupt_values_fail_to_decode() {
        let now = SystemTime::now();
        for bytes in [&b""[..], b"garbage", b"\x93\x01\x02\x03"] {
            assert!(matches!(decode(bytes, now, 1), Err(StoreError::Decode(_))));
        }
        let data = Data::new();
        let future = crate::store::envelope::EnvelopeRef {
            v: 9,
            expires: Some(u64::MAX),
            ..crate::store::envelope::EnvelopeRef::new(&data, SessionMeta::default())
        }
        .encode()
        .unwrap();
        assert!(matches!(
            decode(&future, now, 1),
            Err(StoreError::Decode(_))
        ));
        // A value followed by anything but touch entries.
        let data = Data::new();
        let mut bytes =
            encode(&data, SessionMeta::default(), now + Duration::from_secs(60)).unwrap();
        bytes.extend(b"\xc1");
        assert!(matches!(decode(&bytes, now, 1), Err(StoreError::Decode(_))));
    }

    #[test]
    fn server_lists_are_parsed_and_checked() {
        assert_eq!(
            parse_servers("127.0.0.1:11211").unwrap(),
            ["127.0.0.1:11211"]
        );
        assert_eq!(
            parse_servers(" cache-1.internal:11211 , [::1]:11212,cache_2:1").unwrap(),
            ["cache-1.internal:11211", "[::1]:11212", "cache_2:1"]
        );
        for bad in [
            "",
            "127.0.0.1",
            "127.0.0.1:",
            ":11211",
            "127.0.0.1:0",
            "127.0.0.1:65536",
            "127.0.0.1:+1",
            "host:11211,",
            "a b:11211",
            "memcache://host:11211",
            "[::1:11211",
            "::1:11211",
            "a:1,a:1",
        ] {
            assert!(parse_servers(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn keys_are_checked_for_what_memcached_accepts() {
        assert!(is_valid_key("session:abc"));
        assert!(is_valid_key(&"k".repeat(250)));
        assert!(!is_valid_key(&"k".repeat(251)));
        assert!(!is_valid_key(""));
        for bad in [
            "a b", "a\tb", "a\r\nb", "a\u{0}b", "a\u{7f}b", "a\u{85}b", "a\u{a0}b",
        ] {
            assert!(!is_valid_key(bad), "{bad:?}");
        }
        assert!(check_prefix("session:").is_ok());
        assert!(check_prefix("").is_ok());
        assert!(check_prefix("sessions/été:").is_ok());
        assert!(check_prefix(&"p".repeat(MAX_KEY_LEN - ID_LEN)).is_ok());
        assert!(check_prefix(&"p".repeat(MAX_KEY_LEN - ID_LEN + 1)).is_err());
        assert!(check_prefix("my app:").is_err());
        assert!(check_prefix("app:\r\nflush_all\r\n").is_err());
    }
}

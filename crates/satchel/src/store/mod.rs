//! The store contract, and the stores built into Satchel.
//!
//! # The contract: change sets, not whole records
//!
//! A store never receives a whole session to write back. It receives the [`Changes`] one
//! request made (keys set, keys removed, `clear`, the permanent flag, the session's own
//! lifetime and creation time) and applies them,
//! **atomically**, onto the latest stored entry: under a lock (memory, filesystem), in a
//! transaction or script (SQL, Redis), or under a compare-and-swap retry (memcached). Two
//! concurrent requests that set different keys therefore both land, which the
//! whole-record load-modify-save of other session libraries cannot promise. A save whose
//! result holds no data deletes the entry instead ([`Saved::Empty`]).
//!
//! The change set of a session the request loaded [requires an existing
//! entry](Changes::require_existing): if another request destroyed the session (a
//! logout) or it expired meanwhile, the save writes nothing, so a logout cannot be
//! undone by a request that was still running.
//!
//! A change set may carry a [size budget](Changes::limit_size) (SESSION_MAX_SIZE): a
//! store checks it inside the same atomic merge, on the merged result, and when the result
//! would be over it, writes nothing and returns [`StoreError::TooLarge`]. A change set that
//! sets no key is never refused. Stores that merge in Rust use [`Changes::apply_to`] (or
//! [`Changes::check_size`] and [`Changes::check_merged`]), so that the rule is the same
//! everywhere; a [`KeyUpdate::Replace`] carries the budget too.
//!
//! Every operation is one round trip where the backend allows it, and a request costs at
//! most one load and one write. A read is a plain load. A request whose first use of its
//! session is an update of one key sends [`SessionStore::update_and_load`], which answers
//! the session with the update's outcome, in one round trip on stores that override it. The refresh of
//! SESSION_REFRESH_EACH_REQUEST is a "touch" ([`SessionStore::load`] with a new expiry),
//! which moves the expiry and never rewrites the data; the engine sends it only for a
//! permanent session that the request did not change (a change is saved with a fresh
//! expiry anyway), only once the stored expiry has fallen behind by more than
//! [`refresh_granularity`](crate::SessionConfig::refresh_granularity), and only when the
//! request ends, where it takes the place of the save.
//!
//! Stores also check expiry themselves on load, whatever their backend's own TTL does;
//! the engine checks it once more.
//!
//! Beside its data and expiry, a store keeps with each entry what the engine decides by:
//! the permanent flag, the creation time ([`Record::created`], which SESSION_ABSOLUTE_LIFETIME
//! counts from) and the session's own lifetime ([`Record::lifetime`]), all three carried
//! by an id rotation. The conformance suite checks them
//! (`the_creation_time_and_lifetime_are_stored`); a store that dropped the creation time
//! would leave the absolute limit restarting at every request.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::error::StoreError;
use crate::id::SessionId;
use crate::observability::{Operation, metered};
use crate::record::{Changes, KeyUpdate, Record, Updated};

#[cfg(feature = "cookie")]
#[cfg_attr(docsrs, doc(cfg(feature = "cookie")))]
pub mod cookie;
#[cfg(any(feature = "filesystem", feature = "memcached", feature = "_sql"))]
mod envelope;
#[cfg(feature = "filesystem")]
pub mod filesystem;
mod from_config;
pub mod index;
#[cfg(feature = "memcached")]
pub mod memcached;
pub mod memory;
#[cfg(feature = "mongodb")]
pub mod mongodb;
pub mod null;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "sealed")]
#[cfg_attr(docsrs, doc(cfg(feature = "sealed")))]
pub mod sealed;
#[cfg(feature = "_sql")]
pub mod sql;

#[cfg(feature = "filesystem")]
#[cfg_attr(docsrs, doc(cfg(feature = "filesystem")))]
pub use filesystem::FilesystemStore;
pub use from_config::from_config;
#[cfg(feature = "memcached")]
#[cfg_attr(docsrs, doc(cfg(feature = "memcached")))]
pub use memcached::MemcachedStore;
pub use memory::MemoryStore;
#[cfg(feature = "mongodb")]
#[cfg_attr(docsrs, doc(cfg(feature = "mongodb")))]
pub use mongodb::MongoStore;
pub use null::NullStore;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::RedisStore;

/// The prefix every store puts before a session id when it names the entry, unless told
/// otherwise (SESSION_KEY_PREFIX).
///
/// It is Flask-Session's, so an application moving from Flask finds its sessions where it
/// left them. Give each application its own prefix to let several share one backend
/// without seeing each other's sessions.
pub const DEFAULT_KEY_PREFIX: &str = "session:";

/// How long a networked store may take to connect, and to carry out one operation,
/// unless told otherwise (SESSION_STORE_TIMEOUT).
///
/// Long enough for a loaded server, short enough that a request fails fast (an empty
/// 500) instead of hanging while the store is unreachable, and that a store which cannot
/// be reached at start-up stops the start at once.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// The stores' own defaults that the configuration repeats.
///
/// They are defined here, where they are built whatever the features, because the
/// configuration is built without the stores' features; each store module publishes its
/// own under its own name (e.g. `redis::DEFAULT_URL`).
pub(crate) mod defaults {
    /// Where the `redis` store connects by default: the local server, as Flask-Session
    /// does.
    pub(crate) const REDIS_URL: &str = "redis://127.0.0.1:6379";
    /// The server the `memcached` store uses by default.
    pub(crate) const MEMCACHED_SERVERS: &str = "127.0.0.1:11211";
    /// Where the `mongodb` store connects by default.
    pub(crate) const MONGODB_URI: &str = "mongodb://127.0.0.1:27017";
    /// The `mongodb` store's database: Flask-Session's name, so a migrated application
    /// finds its sessions.
    pub(crate) const MONGODB_DATABASE: &str = "flask_session";
    /// The `mongodb` store's collection: Flask-Session's name.
    pub(crate) const MONGODB_COLLECTION: &str = "sessions";
    /// Most session files the `filesystem` store keeps before it prunes: Flask-Session's
    /// number, which keeps a flood of new sessions from filling the disk.
    pub(crate) const FILE_THRESHOLD: usize = 500;
    /// Permission bits of the `filesystem` store's files: read and write for the owner
    /// only, as they hold session data and their names are session ids.
    pub(crate) const FILE_MODE: u32 = 0o600;
    /// The SQL stores' table: Flask-Session's name, so a migrated application finds its
    /// sessions.
    pub(crate) const SQL_TABLE: &str = "flask_sessions";
}

/// What a store reports after applying a change set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// The entry holds data and was written with the new expiry.
    Stored,
    /// The result held no data: the entry was deleted (or never written).
    Empty,
}

/// What a saving request saw of its session: the version it loaded (see
/// [`Record::version`]) and its data after its own changes.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    /// The store's version token of the entry as loaded.
    pub version: u64,
    /// The session data after the request's changes: what to write if the entry is
    /// still at `version`.
    pub data: &'a crate::record::Data,
    /// The per-session permanent flag after the request's changes.
    pub permanent: Option<bool>,
    /// The session's creation time (see [`Record::created`]).
    pub created: Option<std::time::SystemTime>,
    /// The per-session lifetime after the request's changes (see [`Record::lifetime`]).
    pub lifetime: Option<std::time::Duration>,
}

impl Seen<'_> {
    /// The session's own settings to write.
    #[cfg_attr(not(any(feature = "memcached", feature = "_sql")), allow(dead_code))]
    pub(crate) fn meta(&self) -> crate::record::Meta {
        crate::record::Meta {
            permanent: self.permanent,
            created: self.created,
            lifetime: self.lifetime,
        }
    }
}

/// What a store can do, for the engine and the conformance suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// The store keeps sessions (false only for [`NullStore`]).
    pub writable: bool,
    /// Entries survive a restart of the process.
    pub persistent: bool,
    /// Several processes can share the store.
    pub shared: bool,
    /// The store lists its entries ([`SessionStore::list`]).
    pub listable: bool,
    /// A walk through the store's pages may give an entry more than once (Redis: `SCAN`
    /// repeats keys when the keyspace shrinks during the walk). Whoever counts entries
    /// then counts each id once.
    pub list_may_repeat: bool,
    /// The session lives in its cookie, not in the store ([`CookieStore`](cookie::CookieStore)):
    /// the engine keeps each request's session in a store of its own and sends it back in
    /// the cookie.
    pub in_cookie: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Self {
            writable: true,
            persistent: true,
            shared: true,
            listable: false,
            list_may_repeat: false,
            in_cookie: false,
        }
    }
}

/// A page of a store's live entries, from [`SessionStore::list`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Page {
    /// The entries, in the store's own order.
    pub entries: Vec<(SessionId, Record)>,
    /// Where the next page starts; `None` after the last one.
    pub next: Option<String>,
}

impl Page {
    /// A page of `entries` followed by the page at `next`.
    #[must_use]
    pub fn new(entries: Vec<(SessionId, Record)>, next: Option<String>) -> Self {
        Self { entries, next }
    }
}

/// A place where sessions live.
///
/// Implementors write plain `async fn`s. Every method must be safe to call concurrently
/// from many requests for the same id; see the [module documentation](self) for the
/// change-set contract that prevents lost updates.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use satchel::{Changes, MemoryStore, SessionId, SessionStore, store::Saved};
///
/// # tokio_test::block_on(async {
/// let store = MemoryStore::default();
/// let id = SessionId::generate();
/// let mut changes = Changes::default();
/// changes.set("user", serde_json::json!("ada"));
/// let expires = SystemTime::now() + Duration::from_secs(60);
/// assert_eq!(store.save(&id, &changes, expires).await?, Saved::Stored);
/// let record = store.load(&id, None).await?.expect("stored");
/// assert_eq!(record.data["user"], "ada");
/// # Ok::<_, satchel::StoreError>(())
/// # }).unwrap();
/// ```
pub trait SessionStore: Send + Sync + 'static {
    /// Loads the entry for `id`, or `None` when there is none or it has expired.
    ///
    /// With `touch`, a found entry's expiry is moved to that time in the same round trip,
    /// without rewriting its data, and the returned record carries the new expiry (a
    /// store may keep a later expiry as it is). The engine asks for a touch only when a
    /// request ends without changes and the stored expiry lags behind by more than
    /// [`refresh_granularity`](crate::SessionConfig::refresh_granularity).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the backend fails; [`StoreError::Decode`] when the
    /// stored entry is corrupt (the engine then starts a fresh session).
    fn load(
        &self,
        id: &SessionId,
        touch: Option<SystemTime>,
    ) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send;

    /// Applies `changes` atomically onto the latest entry for `id` (or onto nothing) and
    /// stores the result with `expires_at`; deletes the entry when the result is empty.
    ///
    /// When `changes` [requires an existing entry](Changes::require_existing) and there
    /// is no live one, nothing is written and the result is [`Saved::Empty`]; the same
    /// holds for [`save_seen`](SessionStore::save_seen) and for the old id of
    /// [`cycle`](SessionStore::cycle).
    ///
    /// # Errors
    ///
    /// [`StoreError::TooLarge`] when the result would be over the change set's
    /// [size budget](Changes::limit_size), or over what the backend takes: nothing is
    /// written (for [`save_seen`](SessionStore::save_seen) and
    /// [`cycle`](SessionStore::cycle) too; a refused cycle leaves the entry under the old
    /// id). [`StoreError`] when the backend fails or refuses writes.
    fn save(
        &self,
        id: &SessionId,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> impl Future<Output = Result<Saved, StoreError>> + Send;

    /// [`save`](SessionStore::save), knowing what the request saw: the entry's version as
    /// loaded and the data after the request's own changes.
    ///
    /// A store with versions overrides this to write `seen.data` in one conditional
    /// write when the entry is still at `seen.version` (nobody else wrote it meanwhile),
    /// and to fall back to applying `changes` onto the latest entry otherwise. The result
    /// must be exactly what [`save`](SessionStore::save) would give. The default ignores
    /// the hint.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the backend fails or refuses writes.
    fn save_seen(
        &self,
        id: &SessionId,
        seen: Seen<'_>,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> impl Future<Output = Result<Saved, StoreError>> + Send {
        let _ = seen;
        self.save(id, changes, expires_at)
    }

    /// Moves the entry for `old` to `new`, applying `changes` on the way: the id rotation
    /// of [`Session::cycle_id`](crate::Session::cycle_id). The entry under `old` is gone
    /// afterwards.
    ///
    /// The default loads, saves under `new` and deletes `old` in three steps; stores that
    /// can do it atomically override it.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the backend fails.
    fn cycle(
        &self,
        old: &SessionId,
        new: &SessionId,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> impl Future<Output = Result<Saved, StoreError>> + Send {
        async move {
            let base = match self.load(old, None).await {
                Ok(record) => record,
                Err(StoreError::Decode(_)) => None,
                Err(error) => return Err(error),
            };
            let saved = save_moved(self, new, base, changes, expires_at).await?;
            self.delete(old).await?;
            Ok(saved)
        }
    }

    /// Applies `update` to `key` of the live entry for `id` at once, atomically onto the
    /// key's latest stored value, and reports the outcome: the read and the write are
    /// one step, so concurrent updates of one key never lose each other (see
    /// [`KeyUpdate`]).
    ///
    /// The entry's expiry and its other keys stay as they are. When there is no live
    /// entry, nothing is written and nothing is created ([`Updated::Missing`]). An
    /// update that leaves the entry without keys deletes it, as a save does.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the backend fails; [`StoreError::Decode`] when the stored
    /// entry is corrupt.
    fn update(
        &self,
        id: &SessionId,
        key: &str,
        update: &KeyUpdate,
    ) -> impl Future<Output = Result<Updated, StoreError>> + Send;

    /// [`update`](SessionStore::update), answering also the entry as the update left it:
    /// what a [`load`](SessionStore::load) right after the update would return.
    ///
    /// The engine sends it when the first thing a request does with its session is an
    /// update of one key (a counter's `increment`, say): the request then needs both the
    /// update's outcome and the session, and a store that answers both from one round
    /// trip spares it the load it would otherwise make first. The entry is `None` when
    /// there is no live one (the outcome is then [`Updated::Missing`], or an update that
    /// removed the last key deleted it).
    ///
    /// The default runs [`update`](SessionStore::update), then
    /// [`load`](SessionStore::load) when the update found an entry: correct for every
    /// store, in two round trips. Stores that can return the entry from the update's own
    /// round trip override it.
    ///
    /// # Errors
    ///
    /// As for [`update`](SessionStore::update) and [`load`](SessionStore::load).
    fn update_and_load(
        &self,
        id: &SessionId,
        key: &str,
        update: &KeyUpdate,
    ) -> impl Future<Output = Result<(Updated, Option<Record>), StoreError>> + Send {
        async move {
            let updated = self.update(id, key, update).await?;
            if matches!(updated, Updated::Missing) {
                return Ok((updated, None));
            }
            let record = self.load(id, None).await?;
            Ok((updated, record))
        }
    }

    /// Deletes the entry for `id`; deleting a missing entry is not an error.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the backend fails.
    fn delete(&self, id: &SessionId) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// What the store can do.
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    /// The store's name in metrics and logs (the `store` label): SESSION_TYPE's name of
    /// the backend for Satchel's own (`redis`, `memcached`, `filesystem`, `mongodb`,
    /// `postgres`, `mysql`, `sqlite`, `memory`, `null`); `custom` by default.
    fn name(&self) -> &'static str {
        "custom"
    }

    /// Whether the store answers, for health checks: `Ok` when it can serve requests.
    /// Networked stores answer within their timeout.
    ///
    /// The default reads an id that was never issued: the path every request takes, so
    /// it also finds a missing SQL table or refused credentials. Redis sends `PING` (to
    /// every node of a Cluster); the filesystem store writes and removes a file, which
    /// finds a full disk or a directory it may not write to.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot serve requests.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move { self.load(&SessionId::generate(), None).await.map(|_| ()) }
    }

    /// Up to `limit` live entries (sessions, and the [indexes](index) kept beside them),
    /// from `cursor` (`None`: the first page; then each page's [`Page::next`]). Paging
    /// through a store visits every entry that lives throughout, once (at least once where
    /// [`Capabilities::list_may_repeat`] says so). A store that can
    /// list says so in [`Capabilities::listable`]; the others answer
    /// [`StoreError::Unsupported`] (the default).
    fn list(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Page, StoreError>> + Send {
        let _ = (cursor, limit);
        async { Err(StoreError::Unsupported("list its entries")) }
    }
}

/// The second half of an id rotation, once the old entry (`base`) is taken: applies
/// `changes` onto it and writes the result under `new`, replacing whatever is there. A
/// result over the change set's budget is refused by that write, and nothing is written
/// under `new`.
pub(crate) async fn save_moved<S: SessionStore + ?Sized>(
    store: &S,
    new: &SessionId,
    base: Option<Record>,
    changes: &Changes,
    expires_at: SystemTime,
) -> Result<Saved, StoreError> {
    match changes.merge(base, expires_at) {
        Some(record) => {
            // The store's own save holds the result to the budget, in its own measure.
            let mut replacing = Changes::replacing_with(&record);
            if let Some(budget) = changes.max_size() {
                replacing.limit_size(budget);
            }
            store.save(new, &replacing, expires_at).await
        }
        None => Ok(Saved::Empty),
    }
}

/// Stores that can sweep out expired entries on demand (or from a background task).
pub trait ExpiredDeletion: SessionStore {
    /// Deletes expired entries and returns how many went.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the backend fails.
    fn delete_expired(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe twin of [`SessionStore`], with boxed futures. Every call through it is
/// counted and timed ([`observability`](crate::observability)).
trait DynStore: Send + Sync + 'static {
    fn load<'a>(
        &'a self,
        id: &'a SessionId,
        touch: Option<SystemTime>,
    ) -> BoxFuture<'a, Result<Option<Record>, StoreError>>;
    fn save<'a>(
        &'a self,
        id: &'a SessionId,
        changes: &'a Changes,
        expires_at: SystemTime,
    ) -> BoxFuture<'a, Result<Saved, StoreError>>;
    fn save_seen<'a>(
        &'a self,
        id: &'a SessionId,
        seen: Seen<'a>,
        changes: &'a Changes,
        expires_at: SystemTime,
    ) -> BoxFuture<'a, Result<Saved, StoreError>>;
    fn cycle<'a>(
        &'a self,
        old: &'a SessionId,
        new: &'a SessionId,
        changes: &'a Changes,
        expires_at: SystemTime,
    ) -> BoxFuture<'a, Result<Saved, StoreError>>;
    fn update<'a>(
        &'a self,
        id: &'a SessionId,
        key: &'a str,
        update: &'a KeyUpdate,
    ) -> BoxFuture<'a, Result<Updated, StoreError>>;
    fn update_and_load<'a>(
        &'a self,
        id: &'a SessionId,
        key: &'a str,
        update: &'a KeyUpdate,
    ) -> BoxFuture<'a, Result<(Updated, Option<Record>), StoreError>>;
    fn delete<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<(), StoreError>>;
    fn capabilities(&self) -> Capabilities;
    fn list<'a>(
        &'a self,
        cursor: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Page, StoreError>>;
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>>;
    fn name(&self) -> &'static str;
    fn type_name(&self) -> &'static str;
}

impl<S: SessionStore> DynStore for S {
    fn load<'a>(
        &'a self,
        id: &'a SessionId,
        touch: Option<SystemTime>,
    ) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        let operation = if touch.is_some() {
            Operation::Refresh
        } else {
            Operation::Load
        };
        Box::pin(metered(
            SessionStore::name(self),
            operation,
            SessionStore::load(self, id, touch),
        ))
    }
    fn save<'a>(
        &'a self,
        id: &'a SessionId,
        changes: &'a Changes,
        expires_at: SystemTime,
    ) -> BoxFuture<'a, Result<Saved, StoreError>> {
        Box::pin(metered(
            SessionStore::name(self),
            Operation::Save,
            SessionStore::save(self, id, changes, expires_at),
        ))
    }
    fn save_seen<'a>(
        &'a self,
        id: &'a SessionId,
        seen: Seen<'a>,
        changes: &'a Changes,
        expires_at: SystemTime,
    ) -> BoxFuture<'a, Result<Saved, StoreError>> {
        Box::pin(metered(
            SessionStore::name(self),
            Operation::Save,
            SessionStore::save_seen(self, id, seen, changes, expires_at),
        ))
    }
    fn cycle<'a>(
        &'a self,
        old: &'a SessionId,
        new: &'a SessionId,
        changes: &'a Changes,
        expires_at: SystemTime,
    ) -> BoxFuture<'a, Result<Saved, StoreError>> {
        Box::pin(metered(
            SessionStore::name(self),
            Operation::Cycle,
            SessionStore::cycle(self, old, new, changes, expires_at),
        ))
    }
    fn update<'a>(
        &'a self,
        id: &'a SessionId,
        key: &'a str,
        update: &'a KeyUpdate,
    ) -> BoxFuture<'a, Result<Updated, StoreError>> {
        Box::pin(metered(
            SessionStore::name(self),
            Operation::Update,
            SessionStore::update(self, id, key, update),
        ))
    }
    fn update_and_load<'a>(
        &'a self,
        id: &'a SessionId,
        key: &'a str,
        update: &'a KeyUpdate,
    ) -> BoxFuture<'a, Result<(Updated, Option<Record>), StoreError>> {
        Box::pin(metered(
            SessionStore::name(self),
            Operation::Update,
            SessionStore::update_and_load(self, id, key, update),
        ))
    }
    fn delete<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(metered(
            SessionStore::name(self),
            Operation::Delete,
            SessionStore::delete(self, id),
        ))
    }
    fn capabilities(&self) -> Capabilities {
        SessionStore::capabilities(self)
    }
    fn list<'a>(
        &'a self,
        cursor: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Page, StoreError>> {
        Box::pin(metered(
            SessionStore::name(self),
            Operation::List,
            SessionStore::list(self, cursor, limit),
        ))
    }
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(metered(
            SessionStore::name(self),
            Operation::Ping,
            SessionStore::ping(self),
        ))
    }
    fn name(&self) -> &'static str {
        SessionStore::name(self)
    }
    fn type_name(&self) -> &'static str {
        std::any::type_name::<S>()
    }
}

/// Any store, type-erased: what [`SessionConfig`](crate::SessionConfig) builds from
/// SESSION_TYPE, and what the engine holds. Cloning is cheap.
///
/// # Examples
///
/// ```
/// use satchel::{MemoryStore, store::BoxedStore};
///
/// let store = BoxedStore::new(MemoryStore::default());
/// let again = BoxedStore::new(store.clone()); // not boxed twice
/// # let _ = again;
/// ```
#[derive(Clone)]
pub struct BoxedStore(Arc<dyn DynStore>);

impl BoxedStore {
    /// Erases the type of `store`. A `BoxedStore` given here is returned as it is.
    #[must_use]
    pub fn new<S: SessionStore>(store: S) -> Self {
        let any: &dyn Any = &store;
        if let Some(boxed) = any.downcast_ref::<Self>() {
            return boxed.clone();
        }
        Self(Arc::new(store))
    }
}

impl BoxedStore {
    /// Erases the type of a store that wraps stores already boxed (and so already
    /// counted and timed): its own calls are not counted again.
    #[cfg_attr(not(feature = "sealed"), allow(dead_code))]
    pub(crate) fn unmetered<S: SessionStore>(store: S) -> Self {
        Self(Arc::new(Unmetered(store)))
    }
}

/// A store whose calls are not counted and timed: a wrapper of stores that are.
struct Unmetered<S>(S);

impl<S: SessionStore> DynStore for Unmetered<S> {
    fn load<'a>(
        &'a self,
        id: &'a SessionId,
        touch: Option<SystemTime>,
    ) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        Box::pin(self.0.load(id, touch))
    }
    fn save<'a>(
        &'a self,
        id: &'a SessionId,
        changes: &'a Changes,
        expires_at: SystemTime,
    ) -> BoxFuture<'a, Result<Saved, StoreError>> {
        Box::pin(self.0.save(id, changes, expires_at))
    }
    fn save_seen<'a>(
        &'a self,
        id: &'a SessionId,
        seen: Seen<'a>,
        changes: &'a Changes,
        expires_at: SystemTime,
    ) -> BoxFuture<'a, Result<Saved, StoreError>> {
        Box::pin(self.0.save_seen(id, seen, changes, expires_at))
    }
    fn cycle<'a>(
        &'a self,
        old: &'a SessionId,
        new: &'a SessionId,
        changes: &'a Changes,
        expires_at: SystemTime,
    ) -> BoxFuture<'a, Result<Saved, StoreError>> {
        Box::pin(self.0.cycle(old, new, changes, expires_at))
    }
    fn update<'a>(
        &'a self,
        id: &'a SessionId,
        key: &'a str,
        update: &'a KeyUpdate,
    ) -> BoxFuture<'a, Result<Updated, StoreError>> {
        Box::pin(self.0.update(id, key, update))
    }
    fn update_and_load<'a>(
        &'a self,
        id: &'a SessionId,
        key: &'a str,
        update: &'a KeyUpdate,
    ) -> BoxFuture<'a, Result<(Updated, Option<Record>), StoreError>> {
        Box::pin(self.0.update_and_load(id, key, update))
    }
    fn delete<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.0.delete(id))
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    fn list<'a>(
        &'a self,
        cursor: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Page, StoreError>> {
        Box::pin(self.0.list(cursor, limit))
    }
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.0.ping())
    }
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn type_name(&self) -> &'static str {
        std::any::type_name::<S>()
    }
}

impl fmt::Debug for BoxedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BoxedStore")
            .field(&self.0.type_name())
            .finish()
    }
}

impl SessionStore for BoxedStore {
    async fn load(
        &self,
        id: &SessionId,
        touch: Option<SystemTime>,
    ) -> Result<Option<Record>, StoreError> {
        self.0.load(id, touch).await
    }
    async fn save(
        &self,
        id: &SessionId,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        self.0.save(id, changes, expires_at).await
    }
    async fn save_seen(
        &self,
        id: &SessionId,
        seen: Seen<'_>,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        self.0.save_seen(id, seen, changes, expires_at).await
    }
    async fn cycle(
        &self,
        old: &SessionId,
        new: &SessionId,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        self.0.cycle(old, new, changes, expires_at).await
    }
    async fn update(
        &self,
        id: &SessionId,
        key: &str,
        update: &KeyUpdate,
    ) -> Result<Updated, StoreError> {
        self.0.update(id, key, update).await
    }
    async fn update_and_load(
        &self,
        id: &SessionId,
        key: &str,
        update: &KeyUpdate,
    ) -> Result<(Updated, Option<Record>), StoreError> {
        self.0.update_and_load(id, key, update).await
    }
    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        self.0.delete(id).await
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    async fn list(&self, cursor: Option<&str>, limit: usize) -> Result<Page, StoreError> {
        self.0.list(cursor, limit).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.0.ping().await
    }
    fn name(&self) -> &'static str {
        self.0.name()
    }
}

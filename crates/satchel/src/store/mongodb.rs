//! The `mongodb` store: one document per session in a MongoDB collection.
//!
//! # Layout
//!
//! ```text
//! {
//!   _id:       "session:<43-character id>",    SESSION_KEY_PREFIX + id
//!   data:      { user_id: 42, cart: [ … ] },   one field per session key
//!   expiry:    ISODate("…"),                   the session's expiry
//!   permanent: false                           only when the application set the flag
//!   created:   ISODate("…"),                   when the session was created
//!   lifetime:  NumberLong(2592000)             the session's own lifetime in seconds,
//!                                              only when the application set one
//! }
//! ```
//!
//! Session values are stored as native BSON, not as an opaque blob: integers as 64-bit
//! integers (unsigned values beyond `i64::MAX` as `Decimal128`), other numbers as
//! doubles, and strings, booleans, `null`, arrays and objects as themselves. Field names
//! are the session keys with `%`, `.`, `$` and NUL written as `%25`, `%2E`, `%24` and
//! `%00` (and the empty key as a lone `%`), at every level of nesting, because MongoDB
//! gives `.` and a leading `$` a meaning in update paths. Any other key is stored as it
//! is, so the documents stay readable in the MongoDB shell.
//!
//! A TTL index on `expiry` (`expireAfterSeconds: 0`, named `expiry_ttl`) lets the server
//! delete expired documents itself; [`MongoStoreBuilder::open`] creates it (idempotently)
//! when the store starts. The server's TTL monitor runs only about once a minute, so an
//! expired document can still be there when it is asked for: every read filters on
//! `expiry > now` as well, and a save treats an expired document as if it were missing.
//!
//! # One round trip to load
//!
//! A load is one `find` on `{_id, expiry: {$gt: now}}`, or, when the engine asks for a
//! refresh, one `findAndModify` with the same filter that sets `expiry` and nothing
//! else, returning the document as updated. A refresh never rewrites the data.
//!
//! # One round trip to save, and no lost updates
//!
//! A save sends the request's [`Changes`], never the whole session, as one update with an
//! aggregation pipeline on `{_id}`, applied atomically by the server to the document as
//! it is at that moment:
//!
//! 1. `$set` `data` to the stored data when the document is live (its `expiry` is a date
//!    later than now and its `data` a sub-document), to `{}` otherwise or when the request
//!    cleared the session; `expiry` to the new expiry; `permanent`, `created` and
//!    `lifetime` to the request's, or to the stored ones when the document is live (and
//!    the stored ones of their type).
//! 2. `$unset` `data.<key>` for every key the request removed.
//! 3. `$set` `data.<key>` to `{$literal: value}` for every key the request set.
//! 4. When the request set no key: `$set` `expiry` to the Unix epoch if `data` came out
//!    empty (`{$eq: ["$data", {$literal: {}}]}`), and leave it as step 1 set it otherwise.
//!
//! Two requests that set different keys of one session therefore both land, in whatever
//! order they reach the server. When the request set at least one key, the update is an
//! upsert (a new session is created in the same round trip) and the result holds data;
//! for a session the request loaded ([`Changes::requires_existing`]) it is a plain update
//! filtered on a live expiry, so a session deleted meanwhile stays deleted.
//!
//! Otherwise (only removals, `clear` or the permanent flag) the update is not an upsert,
//! and its result may hold no data. Step 4 then ends the session in the same atomic
//! update: a document whose `expiry` is the epoch is dead to every load and to every save
//! of a loaded session, since both filter on `expiry > now`. A request that loaded the
//! session before it was emptied (a `clear`, or the removal of its last key) and saves
//! its own keys afterwards therefore finds nothing and writes nothing, and the id stays
//! gone, as on every other store; the engine has told the browser to drop the cookie. The
//! update comes back with the updated `data`, and when that is empty a second round trip
//! deletes the dead document with the filter `{_id, data: {}}`. That delete only tidies
//! up (the TTL index would remove the document within a minute or so anyway); its filter
//! leaves alone a document that an upsert for a new session filled again meanwhile.
//!
//! Concurrent upserts of a new session can make one of them fail with a duplicate key
//! error (MongoDB retries most of these itself); the store retries such an update.
//!
//! The store keeps no version, so [`SessionStore::save_seen`] is the default: the
//! per-key update is already a single round trip. [`SessionStore::cycle`] (a log-in's
//! new id) takes the old document with one `findAndModify` that ends it (its expiry set
//! to the epoch) and returns it as updated, atomically, saves the result under the new
//! id, then deletes the dead document: three round trips. A save to
//! the old id that lands before the take is carried to the new id; one that lands after
//! it finds no document and writes nothing (the engine answers that request with `409`),
//! so no acknowledged change is lost to a log-in.
//!
//! # The size budget
//!
//! MongoDB measures a session as the BSON size of its merged `data` sub-document, not as
//! keys plus JSON text ([`stored_size`](crate::record::stored_size)): the JSON text is
//! never built on the server. A budgeted save ([`Changes::max_size`]) that sets keys adds
//! to its filter an `$expr` that computes the merge the pipeline makes (the stored `data`
//! when live and not cleared, without the keys removed or set, merged with the keys set)
//! and compares its `$bsonSize` (MongoDB 4.4) with the budget, so the check and the write
//! are one atomic update. When nothing matched, one read tells a missing session from one
//! over the budget ([`StoreError::TooLarge`], with the size the merge would have had); a
//! session changed in between so that the merge fits is updated again. The keys set alone
//! are measured before anything is sent. An upsert that would take an existing document
//! over the budget meets it as a duplicate key, and is then refused the same way. A
//! budgeted compare-and-set guards on the `$bsonSize` of `data` with the new value. An id
//! rotation refused for the size gives the old document its life back, with its expiry
//! (which the take keeps in a `taken_expiry` field of the dead document).
//!
//! # Timeouts and outages
//!
//! The connect and server-selection timeouts of the driver, and a limit on each operation
//! as a whole, are SESSION_STORE_TIMEOUT, so a server that is down or unreachable makes
//! every operation fail within about that time with [`StoreError::Backend`]. The driver
//! reconnects by itself: when the server is back, the same store works again.
//!
//! # Atomic updates of one key
//!
//! [`SessionStore::update`] is one `findAndModify` that the server checks and applies
//! atomically. Its filter is the live document, `{_id, expiry: {$gt: now}, data: {$type:
//! "object", $ne: {}}}` (a document that a save emptied is not brought back), and an
//! `$expr` guard on `data.<key>`:
//!
//! - An increment by `n` guards on the key being absent (`$type` is `"missing"`) or a BSON
//!   integer (`$type` `"int"` or `"long"`) within `[i64::MIN - n, i64::MAX - n]`, sends
//!   `{$inc: {"data.<key>": n}}` with `n` as an `Int64`, and projects the key as updated: the
//!   value the update reports. An absent key so starts from 0. A double, a `Decimal128` (an
//!   unsigned integer beyond `i64::MAX`) or any other value is no counter, and the server's
//!   overflow error is never reached, as the guard keeps the sum in range.
//! - A replace guards on the key holding exactly `expected` (or being absent), and sends
//!   `{$set: {"data.<key>": new}}`; a removal sends a pipeline instead, `$unset` of the key
//!   then `$set` of `expiry` to the Unix epoch when `data` came out empty (`{$eq: ["$data",
//!   {$literal: {}}]}`), so that the session ends in that very update, dead to every load
//!   and to every save of a loaded session, as a save that empties it does. The update
//!   projects `expiry`; when it is the epoch, a second round trip deletes the document on
//!   `{_id, data: {}}`, which leaves alone a document that an upsert filled again.
//!
//! "Exactly" is the equality of [`KeyUpdate::apply`] on the values as [`SessionStore::load`]
//! reads them, which MongoDB's `$eq` is not: it takes `1` for `1.0`, the query language's
//! `{"data.<key>": 5}` also matches an array that holds a 5, and whether `{a: 1, b: 2}`
//! equals `{b: 2, a: 1}` depends on the server (the documents keep the order of the JSON
//! objects, which is insertion order here, as `bson` turns on serde_json's
//! `preserve_order`). The guard is therefore built from the expected value, level by
//! level: a `$type` check, then `$eq`, for each number, `$eq` for strings and booleans,
//! `$size` and `$arrayElemAt` for arrays, and for objects the field names compared as a set
//! (`$setEquals` on `$objectToArray`) and each field through `$let`, under a `$cond` that
//! keeps `$size` and `$objectToArray` away from values of another type.
//!
//! When nothing matched, one `find` of the document's `data` tells why: no live document
//! is [`Updated::Missing`]; otherwise [`KeyUpdate::apply`] decides on the key's current
//! value (for an increment, only a BSON integer counts), giving [`Updated::Invalid`] or
//! [`Updated::Mismatch`] with that value. When it would have allowed the update, the key
//! changed in between, or it holds the expected value in another encoding (an integer as a
//! `Decimal128`, say): the update is sent again, a replace now guarded on the value as
//! stored, five times at most before it fails with [`StoreError::Backend`]. An update is so
//! one round trip when it applies (two when it ends the session), and two when it is
//! refused.
//!
//! The guards need `$expr` (MongoDB 3.6), the removal's pipeline MongoDB 4.2; `$getField`
//! (MongoDB 5.0) appears only for a stored field name that the store does not write itself
//! (empty, with a `.` or a leading `$`), reached when a replace is retried on such a value.
//! All of it was tried on SecantusDB 0.7.0b3: `findAndModify` with an `$expr` filter,
//! `$inc` of an `Int64` (an `int` becomes a `long`), the projection of a dotted path with
//! `_id: 0`, and the guards against every kind of stored value, concurrent increments and
//! compare-and-set loops included. Two of its answers differ from MongoDB's, and neither
//! matters to the guard: its `$expr` `$eq` finds objects equal whatever the order of their
//! fields, and `$type` of a field missing from an object reached through a `$let`
//! variable is `"null"` there (through `$getField`, `"object"`), which is why the field
//! names are compared before any field.
//!
//! # Listing
//!
//! [`SessionStore::list`] pages through the `_id`s of the store's prefix in order (the
//! `_id` index), 1 query per page, from the last `_id` of the page before.
//!
//! # Servers
//!
//! The pipeline update needs MongoDB 4.2 or later. The store is tested against
//! SecantusDB 0.7.0b3 (a MongoDB-wire-compatible server) with the official Rust driver:
//! CRUD, pipeline updates with `$cond`, `$type`, `$literal`, `$$REMOVE` and `$eq` against
//! an empty document, `findAndModify` with upserts, TTL indexes and `$regex` filters all
//! work there.

#[cfg(feature = "flask")]
mod flask;

use std::borrow::Cow;
use std::fmt;
use std::future::IntoFuture;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mongodb::bson::{self, Bson, DateTime, Decimal128, Document, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, IndexOptions, ReturnDocument, UpdateModifications};
use mongodb::{Client, Collection, IndexModel};
use serde_json::{Map, Number, Value};

use crate::error::StoreError;
use crate::id::SessionId;
use crate::record::{Changes, Data, KeyUpdate, Meta, Record, Updated};
use crate::store::{
    Capabilities, DEFAULT_KEY_PREFIX, DEFAULT_TIMEOUT, ExpiredDeletion, Page, Saved, SessionStore,
};
use crate::support::{redact_url, within};

/// The server the store connects to unless told otherwise (SESSION_MONGODB unset): the
/// local one, as Flask-Session does.
pub const DEFAULT_URI: &str = super::defaults::MONGODB_URI;
/// The database the store uses unless told otherwise: Flask-Session's name, so that an
/// application moving from Flask finds its sessions.
pub const DEFAULT_DATABASE: &str = super::defaults::MONGODB_DATABASE;
/// The collection the store uses unless told otherwise: Flask-Session's name.
pub const DEFAULT_COLLECTION: &str = super::defaults::MONGODB_COLLECTION;
/// The name of the TTL index the store creates on `expiry`.
pub const TTL_INDEX_NAME: &str = "expiry_ttl";

/// MongoDB's error code for a duplicate key.
const DUPLICATE_KEY: i32 = 11000;
/// How many times a save is sent when concurrent upserts collide on a new `_id`.
const UPSERT_ATTEMPTS: usize = 3;

/// The field where an id rotation keeps the expiry of the document it takes (and ends),
/// until the document is deleted, or given its life back when the rotation is refused
/// for its size.
const TAKEN_EXPIRY: &str = "taken_expiry";
/// The `expiry` of a document whose last save or update left no data: the Unix epoch, in
/// the past on every clock, so that the session ends in that very write.
const DEAD: DateTime = DateTime::from_millis(0);

/// A store that keeps each session in its own MongoDB document (SESSION_TYPE=`mongodb`).
///
/// Sessions survive restarts of the application and are shared by every process that
/// uses the same collection and key prefix. A save applies the request's changes key by
/// key in one atomic update, so concurrent requests never lose each other's updates; a
/// TTL index deletes expired documents, and every read checks the expiry as well. See
/// the [module documentation](self) for the document layout and the updates.
///
/// Cloning is cheap and shares the connection pool. `Debug` shows the database, the
/// collection and the key prefix, never the connection string or its credentials.
///
/// # Examples
///
/// ```no_run
/// // Not run: it needs a MongoDB server.
/// use std::time::{Duration, SystemTime};
/// use satchel::{Changes, MongoStore, SessionId, SessionStore};
///
/// # tokio_test::block_on(async {
/// let store = MongoStore::builder("mongodb://127.0.0.1:27017")
///     .with_database("app")
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
pub struct MongoStore {
    collection: Collection<Document>,
    key_prefix: Arc<str>,
    timeout: Duration,
}

impl fmt::Debug for MongoStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let namespace = self.collection.namespace();
        f.debug_struct("MongoStore")
            .field("database", &namespace.db)
            .field("collection", &namespace.coll)
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Settings for a [`MongoStore`], made by [`MongoStore::builder`] and turned into a store
/// by [`open`](Self::open). `Debug` masks the password of the connection string.
///
/// # Examples
///
/// ```no_run
/// // Not run: it needs a MongoDB server.
/// use std::time::Duration;
/// use satchel::MongoStore;
///
/// # tokio_test::block_on(async {
/// let store = MongoStore::builder("mongodb://app:secret@db.internal:27017/?authSource=admin")
///     .with_database("shop")
///     .with_collection("web_sessions")
///     .with_key_prefix("shop:")
///     .with_timeout(Duration::from_secs(1))
///     .open()
///     .await?;
/// # let _ = store;
/// # Ok::<_, satchel::store::mongodb::OpenError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
#[must_use]
pub struct MongoStoreBuilder {
    uri: String,
    database: String,
    collection: String,
    key_prefix: String,
    timeout: Duration,
}

impl fmt::Debug for MongoStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoStoreBuilder")
            .field("uri", &redact_url(&self.uri))
            .field("database", &self.database)
            .field("collection", &self.collection)
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why a [`MongoStore`] cannot be opened.
///
/// Messages never show the password of the connection string.
///
/// # Examples
///
/// ```
/// use satchel::MongoStore;
/// use satchel::store::mongodb::OpenError;
///
/// # tokio_test::block_on(async {
/// // Names are checked before anything connects.
/// let error = MongoStore::builder("mongodb://127.0.0.1:27017")
///     .with_database("my.db")
///     .open()
///     .await
///     .unwrap_err();
/// assert!(matches!(error, OpenError::InvalidDatabase { .. }));
/// # });
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The database name is one MongoDB does not accept.
    #[error("invalid MongoDB database name {name:?}: expected {expected}")]
    InvalidDatabase {
        /// The name as given.
        name: String,
        /// What MongoDB accepts.
        expected: &'static str,
    },
    /// The collection name is one MongoDB does not accept.
    #[error("invalid MongoDB collection name {name:?}: expected {expected}")]
    InvalidCollection {
        /// The name as given.
        name: String,
        /// What MongoDB accepts.
        expected: &'static str,
    },
    /// The connection string cannot be parsed.
    #[error("invalid MongoDB connection string {uri:?}")]
    InvalidUri {
        /// The connection string, its password masked.
        uri: String,
        /// What the driver found wrong.
        #[source]
        source: mongodb::error::Error,
    },
    /// The server did not answer a ping within the timeout.
    #[error("MongoDB at {namespace} does not answer")]
    Unreachable {
        /// The hosts, the database and the collection: `host:port/db.collection`.
        namespace: String,
        /// What failed.
        #[source]
        source: StoreError,
    },
    /// The server refused to create the TTL index on `expiry` (an index on `expiry` with
    /// other options exists already, or the user may not create indexes).
    #[error("the TTL index on `expiry` cannot be created in {namespace}")]
    Index {
        /// The hosts, the database and the collection: `host:port/db.collection`.
        namespace: String,
        /// What failed.
        #[source]
        source: StoreError,
    },
}

/// Why a stored document is not a session.
#[derive(Debug, thiserror::Error)]
enum FormatError {
    #[error("stored session document has no valid `{0}` field")]
    Field(&'static str),
    #[error("stored session value has an unsupported BSON type ({0:?})")]
    Type(bson::spec::ElementType),
    #[error("stored session number is not a finite JSON number")]
    Number,
    #[error("stored session field name is not validly escaped")]
    Name,
}

/// How many times [`SessionStore::update`] sends its update when the read that follows a
/// refusal finds that the key would have allowed it.
const UPDATE_ATTEMPTS: usize = 5;

/// Every attempt of an update was refused, though the key allowed it when read back:
/// concurrent writes changed it each time.
#[derive(Debug, thiserror::Error)]
#[error("gave up after {0} updates of one session key that raced with concurrent writes")]
struct Contended(usize);

impl MongoStore {
    /// A store on `collection`, a client of your own, with the key prefix
    /// [`DEFAULT_KEY_PREFIX`] and a limit of [`DEFAULT_TIMEOUT`] per operation.
    ///
    /// Nothing is sent to the server here; call [`create_ttl_index`](Self::create_ttl_index)
    /// once so that the server deletes expired sessions itself.
    /// [`MongoStore::builder`] connects, and does both.
    ///
    /// # Examples
    ///
    /// ```
    /// use mongodb::{Client, bson::Document};
    /// use satchel::MongoStore;
    ///
    /// # tokio_test::block_on(async {
    /// // The client connects lazily: nothing is sent until the store is used.
    /// let client = Client::with_uri_str("mongodb://127.0.0.1:27017").await?;
    /// let store = MongoStore::new(client.database("app").collection::<Document>("sessions"))
    ///     .with_key_prefix("shop:");
    /// assert_eq!(store.key_prefix(), "shop:");
    /// # Ok::<_, mongodb::error::Error>(())
    /// # }).unwrap();
    /// ```
    #[must_use]
    pub fn new(collection: Collection<Document>) -> Self {
        Self {
            collection,
            key_prefix: DEFAULT_KEY_PREFIX.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Sets the prefix of every document's `_id` (default [`DEFAULT_KEY_PREFIX`]). Applications
    /// with different prefixes can share a collection without seeing each other's
    /// sessions.
    #[must_use]
    pub fn with_key_prefix(mut self, key_prefix: impl Into<String>) -> Self {
        self.key_prefix = key_prefix.into().into();
        self
    }

    /// Sets the longest time one operation may take before it fails with
    /// [`StoreError::Backend`] (default [`DEFAULT_TIMEOUT`]). The driver's own connect
    /// and server-selection timeouts are set on the client.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Starts configuring a store on the server of `uri` (a `mongodb://` or
    /// `mongodb+srv://` connection string; [`DEFAULT_URI`] is the local server), with the
    /// defaults: database [`DEFAULT_DATABASE`], collection [`DEFAULT_COLLECTION`], key
    /// prefix [`DEFAULT_KEY_PREFIX`], timeout [`DEFAULT_TIMEOUT`].
    ///
    /// Nothing is checked or contacted until [`open`](MongoStoreBuilder::open).
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = satchel::MongoStore::builder("mongodb://app:secret@db.internal:27017")
    ///     .with_collection("web_sessions");
    /// assert!(!format!("{builder:?}").contains("secret"));
    /// ```
    pub fn builder(uri: impl Into<String>) -> MongoStoreBuilder {
        MongoStoreBuilder {
            uri: uri.into(),
            database: DEFAULT_DATABASE.to_owned(),
            collection: DEFAULT_COLLECTION.to_owned(),
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Creates the TTL index on `expiry` (`expireAfterSeconds: 0`, named
    /// [`TTL_INDEX_NAME`]) when it does not exist yet; creating it again is a no-op.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the server cannot be reached, or refuses because an
    /// index on `expiry` with other options exists already.
    pub async fn create_ttl_index(&self) -> Result<(), StoreError> {
        let index = IndexModel::builder()
            .keys(doc! { "expiry": 1 })
            .options(
                IndexOptions::builder()
                    .name(TTL_INDEX_NAME.to_owned())
                    .expire_after(Duration::ZERO)
                    .build(),
            )
            .build();
        self.timed(self.collection.create_index(index)).await?;
        Ok(())
    }

    /// The collection the sessions live in.
    #[must_use]
    pub fn collection(&self) -> &Collection<Document> {
        &self.collection
    }

    /// The prefix of every document's `_id`.
    #[must_use]
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// The longest time one operation may take.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The `_id` of a session's document.
    fn key(&self, id: &SessionId) -> String {
        let mut key = String::with_capacity(self.key_prefix.len() + crate::id::ID_LEN);
        key.push_str(&self.key_prefix);
        id.encode_into(&mut key);
        key
    }

    /// Runs one driver operation under the store's timeout.
    async fn timed<T>(
        &self,
        operation: impl IntoFuture<Output = mongodb::error::Result<T>>,
    ) -> Result<T, StoreError> {
        within("MongoDB", self.timeout, async {
            operation.await.map_err(StoreError::backend)
        })
        .await
    }

    /// An upsert of `update` on `filter`, sent again when a concurrent upsert of the same
    /// new `_id` won the insert.
    async fn upsert(&self, filter: Document, update: Vec<Document>) -> Result<(), StoreError> {
        let mut attempt = 1;
        loop {
            let upsert = self
                .collection
                .update_one(filter.clone(), update.clone())
                .upsert(true);
            match within("MongoDB", self.timeout, async { Ok(upsert.await) }).await? {
                Ok(_) => return Ok(()),
                Err(error) if attempt < UPSERT_ATTEMPTS && is_duplicate_key(&error) => {
                    attempt += 1;
                }
                Err(error) => return Err(StoreError::backend(error)),
            }
        }
    }

    /// The stored value of the field `name` of `data` in the live document `document_id`:
    /// `None` when there is no live document or it holds no data, `Some(None)` when the
    /// field is absent.
    async fn read_field(
        &self,
        document_id: &str,
        name: &str,
        now: DateTime,
    ) -> Result<Option<Option<Bson>>, StoreError> {
        let filter = doc! { "_id": document_id, "expiry": { "$gt": now } };
        let found = self
            .timed(
                self.collection
                    .find_one(filter)
                    .projection(doc! { "data": 1 }),
            )
            .await?;
        let Some(mut document) = found else {
            return Ok(None);
        };
        let Some(Bson::Document(mut data)) = document.remove("data") else {
            return Err(StoreError::decode(FormatError::Field("data")));
        };
        if data.is_empty() {
            return Ok(None);
        }
        Ok(Some(data.remove(name)))
    }

    /// Whether there is a live document at `document_id`.
    async fn is_live(&self, document_id: &str, now: DateTime) -> Result<bool, StoreError> {
        let filter = doc! { "_id": document_id, "expiry": { "$gt": now } };
        let found = self
            .timed(
                self.collection
                    .find_one(filter)
                    .projection(doc! { "_id": 1 }),
            )
            .await?;
        Ok(found.is_some())
    }

    /// Why a budgeted save of `changes` matched no document: [`StoreError::TooLarge`]
    /// when the live document's data merged with the changes is over the budget,
    /// `None` when there is no live document (or the merge fits now: it changed in
    /// between).
    async fn over_budget(
        &self,
        document_id: &str,
        changes: &Changes,
        now: DateTime,
    ) -> Result<Option<StoreError>, StoreError> {
        let Some(budget) = changes.max_size() else {
            return Ok(None);
        };
        let filter = doc! { "_id": document_id, "expiry": { "$gt": now } };
        let found = self
            .timed(
                self.collection
                    .find_one(filter)
                    .projection(doc! { "data": 1 }),
            )
            .await?;
        let mut data = match found.as_ref().and_then(|document| document.get("data")) {
            Some(Bson::Document(data)) if !changes.is_clear() => data.clone(),
            _ => Document::new(),
        };
        for key in changes.removals().iter().chain(changes.sets().keys()) {
            data.remove(&*escape_key(key));
        }
        for (key, value) in changes.sets() {
            data.insert(escape_key(key), to_bson(value)?);
        }
        let size = bson_size(&data)?;
        Ok((found.is_some() && size > budget).then_some(StoreError::TooLarge { budget, size }))
    }
}

/// The size of `document` as BSON: what `$bsonSize` gives.
fn bson_size(document: &Document) -> Result<usize, StoreError> {
    bson::to_vec(document)
        .map(|bytes| bytes.len())
        .map_err(StoreError::encode)
}

/// The refusal of a budgeted change set whose sets alone are over its budget (then they
/// are over it merged onto anything), as BSON measures them; nothing to send then.
fn sets_over_budget(changes: &Changes) -> Result<Option<StoreError>, StoreError> {
    let Some(budget) = changes.max_size().filter(|_| !changes.sets().is_empty()) else {
        return Ok(None);
    };
    let mut sets = Document::new();
    for (key, value) in changes.sets() {
        sets.insert(escape_key(key), to_bson(value)?);
    }
    let size = bson_size(&sets)?;
    Ok((size > budget).then_some(StoreError::TooLarge { budget, size }))
}

/// The filter condition that keeps a budgeted save from writing a document whose `data`,
/// once `changes` are merged onto it, is over the budget in BSON (`$bsonSize`, MongoDB
/// 4.4): the merge computed the way the update pipeline does it (see
/// [`update_pipeline`]).
fn within_budget(changes: &Changes, now: DateTime, budget: usize) -> Result<Document, StoreError> {
    let base = if changes.is_clear() {
        doc! { "$literal": {} }
    } else {
        doc! {
            "$cond": [
                { "$and": [
                    { "$eq": [{ "$type": "$expiry" }, "date"] },
                    { "$gt": ["$expiry", now] },
                    { "$eq": [{ "$type": "$data" }, "object"] },
                ] },
                "$data",
                { "$literal": {} },
            ]
        }
    };
    let names: Vec<Bson> = changes
        .removals()
        .iter()
        .chain(changes.sets().keys())
        .map(|key| Bson::String(escape_key(key).into_owned()))
        .collect();
    let mut sets = Document::new();
    for (key, value) in changes.sets() {
        sets.insert(escape_key(key), to_bson(value)?);
    }
    let kept = doc! {
        "$arrayToObject": {
            "$filter": {
                "input": { "$objectToArray": base },
                "as": "field",
                "cond": { "$not": [{ "$in": ["$$field.k", { "$literal": names }] }] },
            }
        }
    };
    let merged = doc! { "$mergeObjects": [kept, { "$literal": sets }] };
    Ok(doc! { "$lte": [{ "$bsonSize": merged }, bson_budget(budget)] })
}

/// A budget as a BSON number.
fn bson_budget(budget: usize) -> i64 {
    i64::try_from(budget).unwrap_or(i64::MAX)
}

impl MongoStoreBuilder {
    /// Sets the database (default [`DEFAULT_DATABASE`]).
    pub fn with_database(mut self, database: impl Into<String>) -> Self {
        self.database = database.into();
        self
    }

    /// Sets the collection (default [`DEFAULT_COLLECTION`]).
    pub fn with_collection(mut self, collection: impl Into<String>) -> Self {
        self.collection = collection.into();
        self
    }

    /// Sets the prefix of every document's `_id` (default [`DEFAULT_KEY_PREFIX`]).
    /// Applications with different prefixes can share a collection without seeing each
    /// other's sessions.
    pub fn with_key_prefix(mut self, key_prefix: impl Into<String>) -> Self {
        self.key_prefix = key_prefix.into();
        self
    }

    /// Sets the driver's connect and server-selection timeouts, and the limit on each
    /// operation as a whole (default [`DEFAULT_TIMEOUT`]): past it an operation fails with
    /// [`StoreError::Backend`], so a request fails fast while the server is unreachable.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Opens the store: checks the database and collection names, connects, pings the
    /// server within the timeout, and creates the TTL index on `expiry` when it is
    /// missing ([`MongoStore::create_ttl_index`]).
    ///
    /// The server must be reachable, so a wrong address or wrong credentials show up at
    /// startup, not on the first request.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// // Not run: it needs a MongoDB server.
    /// use satchel::MongoStore;
    ///
    /// # tokio_test::block_on(async {
    /// let store = MongoStore::builder("mongodb://127.0.0.1:27017")
    ///     .with_database("app")
    ///     .with_collection("sessions")
    ///     .open()
    ///     .await?;
    /// assert_eq!(store.collection().name(), "sessions");
    /// # Ok::<_, satchel::store::mongodb::OpenError>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`OpenError::InvalidDatabase`] and [`OpenError::InvalidCollection`] for a name
    /// MongoDB does not accept and [`OpenError::InvalidUri`] for a connection string that
    /// cannot be parsed, before anything connects; [`OpenError::Unreachable`] when the
    /// server does not answer within the timeout; [`OpenError::Index`] when it refuses to
    /// create the index.
    pub async fn open(self) -> Result<MongoStore, OpenError> {
        let Self {
            uri,
            database,
            collection,
            key_prefix,
            timeout,
        } = self;
        check_names(&database, &collection)?;
        let invalid = |source| OpenError::InvalidUri {
            uri: redact_url(&uri).into_owned(),
            source,
        };
        let mut options = ClientOptions::parse(&uri).await.map_err(invalid)?;
        options.connect_timeout = Some(timeout);
        options.server_selection_timeout = Some(timeout);
        if options.app_name.is_none() {
            options.app_name = Some("satchel".into());
        }
        let hosts = options
            .hosts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let client = Client::with_options(options).map_err(invalid)?;
        let namespace = format!("{hosts}/{database}.{collection}");
        let store = MongoStore::new(client.database(&database).collection(&collection))
            .with_key_prefix(key_prefix)
            .with_timeout(timeout);
        if let Err(source) = store
            .timed(client.database(&database).run_command(doc! { "ping": 1 }))
            .await
        {
            return Err(OpenError::Unreachable { namespace, source });
        }
        if let Err(source) = store.create_ttl_index().await {
            return Err(OpenError::Index { namespace, source });
        }
        Ok(store)
    }
}

impl SessionStore for MongoStore {
    async fn load(
        &self,
        id: &SessionId,
        touch: Option<SystemTime>,
    ) -> Result<Option<Record>, StoreError> {
        let now = DateTime::from_system_time(SystemTime::now());
        let filter = doc! { "_id": self.key(id), "expiry": { "$gt": now } };
        let found = match touch {
            Some(at) => {
                let update = doc! { "$set": { "expiry": DateTime::from_system_time(at) } };
                self.timed(
                    self.collection
                        .find_one_and_update(filter, update)
                        .return_document(ReturnDocument::After),
                )
                .await?
            }
            None => self.timed(self.collection.find_one(filter)).await?,
        };
        match found {
            Some(document) => decode(&document).map_err(StoreError::decode),
            None => Ok(None),
        }
    }

    async fn save(
        &self,
        id: &SessionId,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        let now = DateTime::from_system_time(SystemTime::now());
        let pipeline = update_pipeline(changes, now, DateTime::from_system_time(expires_at))?;
        let key = self.key(id);
        // A change set for a loaded session applies only onto a live document.
        let mut filter = if changes.requires_existing() {
            doc! { "_id": &key, "expiry": { "$gt": now } }
        } else {
            doc! { "_id": &key }
        };
        if !changes.sets().is_empty() {
            // A change set for an existing entry is sent all the same: onto nothing it
            // matches nothing and is `Empty`, as on every store.
            if !changes.requires_existing()
                && let Some(refused) = sets_over_budget(changes)?
            {
                return Err(refused);
            }
            if let Some(budget) = changes.max_size() {
                // Matches only when the merge fits (see `within_budget`).
                filter.insert("$expr", within_budget(changes, now, budget)?);
            }
            // The result holds at least the keys set: never empty.
            if !changes.requires_existing() {
                return match self.upsert(filter, pipeline).await {
                    Ok(()) => Ok(Saved::Stored),
                    // A document that the merge would take over the budget is not
                    // matched, so the upsert meets it as a duplicate key.
                    Err(StoreError::Backend(source))
                        if source
                            .downcast_ref::<mongodb::error::Error>()
                            .is_some_and(is_duplicate_key) =>
                    {
                        match self.over_budget(&key, changes, now).await? {
                            Some(refused) => Err(refused),
                            None => Err(StoreError::Backend(source)),
                        }
                    }
                    Err(error) => Err(error),
                };
            }
            for _ in 0..UPDATE_ATTEMPTS {
                let result = self
                    .timed(self.collection.update_one(filter.clone(), pipeline.clone()))
                    .await?;
                if result.matched_count > 0 {
                    return Ok(Saved::Stored);
                }
                if changes.max_size().is_none() {
                    return Ok(Saved::Empty);
                }
                // No live document, or one the merge would take over the budget.
                match self.over_budget(&key, changes, now).await? {
                    Some(refused) => return Err(refused),
                    None if !self.is_live(&key, now).await? => return Ok(Saved::Empty),
                    // It changed in between, and the merge fits now: again.
                    None => {}
                }
            }
            return Err(StoreError::Contended(Box::new(Contended(UPDATE_ATTEMPTS))));
        }
        // Only removals, clear or the flag: nothing to create, and the result may be empty.
        let after = self
            .timed(
                self.collection
                    .find_one_and_update(filter, pipeline)
                    .projection(doc! { "data": 1 })
                    .return_document(ReturnDocument::After),
            )
            .await?;
        match after {
            Some(document) if !has_empty_data(&document) => Ok(Saved::Stored),
            Some(_) => {
                // The update left the document dead (see `update_pipeline`); this only
                // removes it, unless an upsert for a new session filled it again.
                self.timed(self.collection.delete_one(doc! { "_id": key, "data": {} }))
                    .await?;
                Ok(Saved::Empty)
            }
            None => Ok(Saved::Empty),
        }
    }

    async fn update(
        &self,
        id: &SessionId,
        key: &str,
        update: &KeyUpdate,
    ) -> Result<Updated, StoreError> {
        let now = DateTime::from_system_time(SystemTime::now());
        let document_id = self.key(id);
        let name = escape_key(key);
        let path = data_path(key);
        let field = format!("${path}");
        let (mut guard, change, projection) = match update {
            KeyUpdate::Increment(by) => {
                let mut inc = Document::new();
                inc.insert(path.clone(), *by);
                let mut projection = doc! { "_id": 0 };
                projection.insert(path, 1);
                (
                    increment_guard(&field, *by),
                    UpdateModifications::Document(doc! { "$inc": inc }),
                    projection,
                )
            }
            KeyUpdate::Replace { expected, new, .. } => {
                let guard = match expected {
                    Some(value) => same_value(Bson::String(field.clone()), &to_bson(value)?, 0),
                    None => is_missing(&field),
                };
                let change = match new {
                    Some(value) => {
                        let mut set = Document::new();
                        set.insert(path, to_bson(value)?);
                        UpdateModifications::Document(doc! { "$set": set })
                    }
                    // A removal may leave no data: the session then ends in this update.
                    None => UpdateModifications::Pipeline(vec![
                        doc! { "$unset": [path] },
                        doc! {
                            "$set": {
                                "expiry": {
                                    "$cond": [
                                        { "$eq": ["$data", { "$literal": {} }] },
                                        DEAD,
                                        "$expiry",
                                    ]
                                }
                            }
                        },
                    ]),
                };
                (guard, change, doc! { "_id": 0, "expiry": 1 })
            }
        };
        // A replace that sets a value is held to the budget, as BSON measures `data`.
        let budgeted = match update {
            KeyUpdate::Replace {
                new: Some(value),
                max_size: Some(budget),
                ..
            } => {
                let mut set = Document::new();
                set.insert(&*name, to_bson(value)?);
                Some((set, *budget))
            }
            _ => None,
        };
        let size_guard = budgeted.as_ref().map(|(set, budget)| {
            let merged = doc! { "$mergeObjects": ["$data", { "$literal": set }] };
            doc! { "$lte": [{ "$bsonSize": merged }, bson_budget(*budget)] }
        });
        for _ in 0..UPDATE_ATTEMPTS {
            // A live document with data: one that a save is about to delete stays deleted.
            let condition = match &size_guard {
                Some(size_guard) => doc! { "$and": [&guard, size_guard] },
                None => guard.clone(),
            };
            let filter = doc! {
                "_id": &document_id,
                "expiry": { "$gt": now },
                "data": { "$type": "object", "$ne": {} },
                "$expr": condition,
            };
            let after = self
                .timed(
                    self.collection
                        .find_one_and_update(filter, change.clone())
                        .projection(projection.clone())
                        .return_document(ReturnDocument::After),
                )
                .await?;
            if let Some(document) = after {
                return match update {
                    KeyUpdate::Increment(_) => {
                        let sum = document
                            .get_document("data")
                            .ok()
                            .and_then(|data| data.get(&*name))
                            .ok_or(FormatError::Field("data"))
                            .and_then(from_bson)
                            .map_err(StoreError::decode)?;
                        Ok(Updated::Applied(Some(sum)))
                    }
                    KeyUpdate::Replace {
                        new: Some(value), ..
                    } => Ok(Updated::Applied(Some(value.clone()))),
                    KeyUpdate::Replace { new: None, .. } => {
                        if document.get("expiry") == Some(&Bson::DateTime(DEAD)) {
                            // Dead already; this only tidies up, unless an upsert for a new
                            // session filled the document again meanwhile.
                            self.timed(
                                self.collection
                                    .delete_one(doc! { "_id": &document_id, "data": {} }),
                            )
                            .await?;
                        }
                        Ok(Updated::Applied(None))
                    }
                };
            }
            // Refused: read the key to tell why.
            let Some(stored) = self.read_field(&document_id, &name, now).await? else {
                return Ok(Updated::Missing);
            };
            let current = stored
                .as_ref()
                .map(from_bson)
                .transpose()
                .map_err(StoreError::decode)?;
            if matches!(update, KeyUpdate::Increment(_))
                && !matches!(stored, None | Some(Bson::Int32(_) | Bson::Int64(_)))
            {
                // A double, a Decimal128 or anything else is no counter.
                return Ok(Updated::Invalid(current));
            }
            if let Err(refused) = update.apply(current.as_ref()) {
                return Ok(refused);
            }
            if let Some((set, budget)) = &budgeted {
                // Allowed but not applied: perhaps for the size.
                let filter = doc! { "_id": &document_id, "expiry": { "$gt": now } };
                let found = self
                    .timed(
                        self.collection
                            .find_one(filter)
                            .projection(doc! { "data": 1 }),
                    )
                    .await?;
                if let Some(Bson::Document(mut data)) =
                    found.and_then(|mut document| document.remove("data"))
                {
                    data.extend(set.clone());
                    let size = bson_size(&data)?;
                    if size > *budget {
                        return Err(StoreError::TooLarge {
                            budget: *budget,
                            size,
                        });
                    }
                }
            }
            // The key allows the update now: it changed after the refusal, or it holds the
            // expected value in another encoding (a Decimal128 integer, say). A replace now
            // guards on the value exactly as it is stored.
            if let KeyUpdate::Replace { .. } = update {
                guard = match &stored {
                    Some(value) => same_value(Bson::String(field.clone()), value, 0),
                    None => is_missing(&field),
                };
            }
        }
        Err(StoreError::Contended(Box::new(Contended(UPDATE_ATTEMPTS))))
    }

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
        // Ends the live document in one atomic update (its expiry set to the past) and
        // returns it as updated: a save to the old id either landed before, and is in the
        // returned copy, or comes after and finds no live document. The copy returned
        // as updated is the one the write produced; a findAndModify that removes, or one
        // returning the document from before, may answer with an earlier read on some
        // MongoDB-compatible servers (SecantusDB 0.7), missing a save that landed in
        // between.
        let key = self.key(old);
        let now = DateTime::from_system_time(SystemTime::now());
        let taken = self
            .timed(
                self.collection
                    .find_one_and_update(
                        doc! { "_id": &key, "expiry": { "$gt": now } },
                        // The live expiry is kept aside, for a rotation refused for its
                        // size to give it back.
                        vec![
                            doc! { "$set": { TAKEN_EXPIRY: "$expiry" } },
                            doc! { "$set": { "expiry": DEAD } },
                        ],
                    )
                    .return_document(ReturnDocument::After),
            )
            .await?;
        // Live when taken (the filter says so): its expiry is now the dead one.
        let base = match taken.as_ref().map(decode).transpose() {
            Ok(record) => record.flatten(),
            // A corrupt document goes with the old id; the session starts afresh.
            Err(error) => {
                tracing::warn!(%error, "replacing a stored session that could not be decoded");
                None
            }
        };
        let saved = match super::save_moved(self, new, base, changes, expires_at).await {
            Ok(saved) => saved,
            Err(refused @ StoreError::TooLarge { .. }) => {
                // Over the budget: the old document comes back to life as it was.
                if taken.is_some() {
                    let dead = doc! { "_id": &key, "expiry": DEAD };
                    let back = vec![
                        doc! { "$set": { "expiry": format!("${TAKEN_EXPIRY}") } },
                        doc! { "$unset": TAKEN_EXPIRY },
                    ];
                    self.timed(self.collection.update_one(dead, back)).await?;
                }
                return Err(refused);
            }
            Err(error) => return Err(error),
        };
        // The dead document goes once the new one is written (were the save to fail, the
        // TTL index would remove it; it is dead either way).
        if taken.is_some() {
            let dead = doc! { "_id": &key, "expiry": DEAD };
            self.timed(self.collection.delete_one(dead)).await?;
        }
        Ok(saved)
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        self.timed(self.collection.delete_one(doc! { "_id": self.key(id) }))
            .await?;
        Ok(())
    }

    /// Pages in `_id` order; the cursor is the last `_id` of the page before. The
    /// store's documents are the `_id`s that start with its key prefix: one range of that
    /// order, which the query bounds on both sides. The walk ends at a page that finds
    /// nothing in the range: one query more per walk, and a page that comes back short
    /// (a server that answers fewer than it was asked for while others write) never ends
    /// it early.
    async fn list(&self, cursor: Option<&str>, limit: usize) -> Result<Page, StoreError> {
        let limit = limit.max(1);
        let prefix: &str = &self.key_prefix;
        let lower = cursor.filter(|after| *after > prefix).unwrap_or(prefix);
        // Every key of the store is the prefix and an ASCII id: below the prefix followed
        // by the greatest character.
        let upper = format!("{prefix}{}", char::MAX);
        let now = DateTime::from_system_time(SystemTime::now());
        let filter = doc! { "_id": { "$gt": lower, "$lt": upper }, "expiry": { "$gt": now } };
        let mut found = self
            .timed(
                self.collection
                    .find(filter)
                    .sort(doc! { "_id": 1 })
                    .limit(i64::try_from(limit).unwrap_or(i64::MAX)),
            )
            .await?;
        let (mut entries, mut last) = (Vec::new(), None);
        while self.timed(found.advance()).await? {
            let document = found.deserialize_current().map_err(StoreError::backend)?;
            let Ok(key) = document.get_str("_id") else {
                continue;
            };
            last = Some(key.to_owned());
            let Some(Ok(id)) = key.strip_prefix(prefix).map(str::parse::<SessionId>) else {
                continue;
            };
            // A document that does not decode would not load either.
            if let Ok(Some(record)) = decode(&document) {
                entries.push((id, record));
            }
        }
        Ok(Page::new(entries, last))
    }

    fn name(&self) -> &'static str {
        "mongodb"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            writable: true,
            persistent: true,
            shared: true,
            listable: true,
            list_may_repeat: false,
            in_cookie: false,
        }
    }
}

impl ExpiredDeletion for MongoStore {
    /// Deletes this store's expired documents (those whose `_id` starts with the key
    /// prefix) at once, without waiting for the server's TTL monitor.
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        let now = DateTime::from_system_time(SystemTime::now());
        let pattern = format!("^{}", escape_regex(&self.key_prefix));
        let filter = doc! {
            "_id": { "$regex": pattern },
            "expiry": { "$lte": now },
        };
        let result = self.timed(self.collection.delete_many(filter)).await?;
        Ok(result.deleted_count)
    }
}

/// The update pipeline that applies `changes` onto the document as the server finds it;
/// see the [module documentation](self).
fn update_pipeline(
    changes: &Changes,
    now: DateTime,
    expiry: DateTime,
) -> Result<Vec<Document>, StoreError> {
    let live = doc! {
        "$and": [
            { "$eq": [{ "$type": "$expiry" }, "date"] },
            { "$gt": ["$expiry", now] },
        ]
    };
    let data = if changes.is_clear() {
        doc! { "$literal": {} }
    } else {
        doc! {
            "$cond": [
                { "$and": [&live, { "$eq": [{ "$type": "$data" }, "object"] }] },
                "$data",
                { "$literal": {} },
            ]
        }
    };
    // The stored value of `field` when the document is live and it has the type, else none.
    let stored = |field: &str, kind: &str| {
        Bson::Document(doc! {
            "$cond": [
                { "$and": [&live, { "$eq": [{ "$type": format!("${field}") }, kind] }] },
                format!("${field}"),
                "$$REMOVE",
            ]
        })
    };
    let permanent = match changes.permanent() {
        Some(flag) => Bson::Boolean(flag),
        None => stored("permanent", "bool"),
    };
    let created = match changes.created() {
        Some(at) => Bson::DateTime(DateTime::from_system_time(at)),
        None => stored("created", "date"),
    };
    let lifetime = match changes.lifetime() {
        Some(Some(lifetime)) => Bson::Int64(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX)),
        Some(None) => Bson::String("$$REMOVE".to_owned()),
        None => stored("lifetime", "long"),
    };
    let mut stages = vec![doc! {
        "$set": {
            "data": data,
            "expiry": expiry,
            "permanent": permanent,
            "created": created,
            "lifetime": lifetime,
        }
    }];
    if !changes.removals().is_empty() {
        let paths: Vec<String> = changes.removals().iter().map(|k| data_path(k)).collect();
        stages.push(doc! { "$unset": paths });
    }
    if !changes.sets().is_empty() {
        let mut sets = Document::new();
        for (key, value) in changes.sets() {
            sets.insert(data_path(key), doc! { "$literal": to_bson(value)? });
        }
        stages.push(doc! { "$set": sets });
    } else {
        // Without sets the result may hold no data: then the session ends in this very
        // update, so that no save of a loaded session can fill it again.
        stages.push(doc! {
            "$set": {
                "expiry": {
                    "$cond": [
                        { "$eq": ["$data", { "$literal": {} }] },
                        DEAD,
                        "$expiry",
                    ]
                }
            }
        });
    }
    Ok(stages)
}

/// What MongoDB accepts as a database name.
const DATABASE_NAMES: &str =
    "a database name of 1 to 63 bytes without / \\ . space \" $ * < > : | ? or NUL";
/// What MongoDB accepts as a collection name.
const COLLECTION_NAMES: &str = "a collection name without $ or NUL, not starting with \
     `system.` nor starting or ending with a dot";

/// Checks the database and collection names against MongoDB's rules, so that a bad name
/// is reported as such, before anything connects.
pub(super) fn check_names(db: &str, collection: &str) -> Result<(), OpenError> {
    const DB_FORBIDDEN: &[char] = &[
        '/', '\\', '.', ' ', '"', '$', '*', '<', '>', ':', '|', '?', '\0',
    ];
    if db.is_empty() || db.len() >= 64 || db.contains(DB_FORBIDDEN) {
        return Err(OpenError::InvalidDatabase {
            name: db.to_owned(),
            expected: DATABASE_NAMES,
        });
    }
    if collection.is_empty()
        || collection.contains(['$', '\0'])
        || collection.starts_with("system.")
        || collection.starts_with('.')
        || collection.ends_with('.')
    {
        return Err(OpenError::InvalidCollection {
            name: collection.to_owned(),
            expected: COLLECTION_NAMES,
        });
    }
    Ok(())
}

/// The update path of a session key: `data.<escaped key>`.
fn data_path(key: &str) -> String {
    format!("data.{}", escape_key(key))
}

/// Whether a document returned by a save holds no session data.
fn has_empty_data(document: &Document) -> bool {
    match document.get("data") {
        Some(Bson::Document(data)) => data.is_empty(),
        _ => true,
    }
}

fn is_duplicate_key(error: &mongodb::error::Error) -> bool {
    match &*error.kind {
        ErrorKind::Write(WriteFailure::WriteError(write)) => write.code == DUPLICATE_KEY,
        ErrorKind::Command(command) => command.code == DUPLICATE_KEY,
        _ => false,
    }
}

/// The `$expr` under which an increment by `by` applies to `field` (`"$data.<key>"`): the
/// key is absent, or a BSON integer whose sum with `by` stays within the 64-bit range, so
/// the server never reaches an overflow.
fn increment_guard(field: &str, by: i64) -> Document {
    // Neither bound overflows: `by` is at least 0 in the first, negative in the second.
    let in_range = if by >= 0 {
        doc! { "$lte": [field, i64::MAX - by] }
    } else {
        doc! { "$gte": [field, i64::MIN - by] }
    };
    doc! {
        "$or": [
            is_missing(field),
            { "$and": [{ "$in": [{ "$type": field }, ["int", "long"]] }, in_range] },
        ]
    }
}

/// An `$expr` true when `field` is absent from the document.
fn is_missing(field: &str) -> Document {
    doc! { "$eq": [{ "$type": field }, "missing"] }
}

/// An aggregation expression true when `expr` evaluates to a value equal to `value` as
/// JSON values are equal once read by [`from_bson`] (the equality [`KeyUpdate::apply`]
/// uses): numbers of the same kind (integer, double, decimal) and value, arrays element by
/// element, objects with the same field names, in any order, and equal fields.
///
/// MongoDB's `$eq` alone would take `1` for `1.0`; on an object its answer depends on the
/// order of the fields and differs between servers. So `$eq` only ever compares scalars of
/// a type checked first, and a `$cond` keeps `$size` and `$objectToArray` away from values
/// of another type, which they would fail on.
fn same_value(expr: Bson, value: &Bson, depth: usize) -> Document {
    match value {
        Bson::Int32(_) | Bson::Int64(_) => typed_eq(expr, &["int", "long"], value),
        Bson::Double(_) => typed_eq(expr, &["double"], value),
        Bson::Decimal128(_) => typed_eq(expr, &["decimal"], value),
        Bson::Null => doc! { "$eq": [{ "$type": expr }, "null"] },
        Bson::Array(items) => {
            let mut checks = vec![doc! { "$eq": [{ "$size": expr.clone() }, int32(items.len())] }];
            for (index, item) in items.iter().enumerate() {
                let element = doc! { "$arrayElemAt": [expr.clone(), int32(index)] };
                checks.push(same_value(Bson::Document(element), item, depth));
            }
            doc! { "$cond": [{ "$eq": [{ "$type": expr }, "array"] }, { "$and": checks }, false] }
        }
        Bson::Document(fields) => {
            // Each nesting level binds the object to its own variable.
            let var = format!("v{depth}");
            let object = format!("$${var}");
            let names: Vec<&str> = fields.keys().map(String::as_str).collect();
            let mut checks = vec![doc! {
                "$setEquals": [
                    { "$map": { "input": { "$objectToArray": &object }, "in": "$$this.k" } },
                    { "$literal": names },
                ]
            }];
            for (name, item) in fields {
                // Escaped names are plain path components; `$getField` (MongoDB 5.0) is
                // only for names written by others.
                let member = if name.is_empty() || name.contains('.') || name.starts_with('$') {
                    Bson::Document(doc! {
                        "$getField": { "field": { "$literal": name }, "input": &object }
                    })
                } else {
                    Bson::String(format!("{object}.{name}"))
                };
                checks.push(same_value(member, item, depth + 1));
            }
            doc! {
                "$cond": [
                    { "$eq": [{ "$type": expr.clone() }, "object"] },
                    { "$let": { "vars": { var: expr }, "in": { "$and": checks } } },
                    false,
                ]
            }
        }
        // Strings and booleans are equal only to values of their own type.
        other => doc! { "$eq": [expr, { "$literal": other.clone() }] },
    }
}

/// `expr` is of one of `types` (names of `$type`) and `$eq` to `value`.
fn typed_eq(expr: Bson, types: &[&str], value: &Bson) -> Document {
    doc! {
        "$and": [
            { "$in": [{ "$type": expr.clone() }, types] },
            { "$eq": [expr, { "$literal": value.clone() }] },
        ]
    }
}

/// A length or an index as the `int` that `$size` and `$arrayElemAt` use.
fn int32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Decodes arbitrary bytes as a stored document: BSON, then the document (fuzzing).
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz(bytes: &[u8]) {
    if let Ok(document) = Document::from_reader(bytes) {
        let _ = decode(&document);
    }
}

/// Decodes a stored document; `None` for a document without data, which a save is about
/// to delete.
fn decode(document: &Document) -> Result<Option<Record>, FormatError> {
    let Some(Bson::DateTime(expiry)) = document.get("expiry") else {
        return Err(FormatError::Field("expiry"));
    };
    let Some(Bson::Document(stored)) = document.get("data") else {
        return Err(FormatError::Field("data"));
    };
    let permanent = match document.get("permanent") {
        None | Some(Bson::Null) => None,
        Some(Bson::Boolean(flag)) => Some(*flag),
        Some(_) => return Err(FormatError::Field("permanent")),
    };
    let created = match document.get("created") {
        None | Some(Bson::Null) => None,
        Some(Bson::DateTime(at)) => Some(at.to_system_time()),
        Some(_) => return Err(FormatError::Field("created")),
    };
    let lifetime = match document.get("lifetime") {
        None | Some(Bson::Null) => None,
        Some(Bson::Int64(seconds)) => Some(std::time::Duration::from_secs(
            u64::try_from(*seconds).map_err(|_| FormatError::Field("lifetime"))?,
        )),
        Some(_) => return Err(FormatError::Field("lifetime")),
    };
    if stored.is_empty() {
        return Ok(None);
    }
    let mut data = Data::new();
    for (name, value) in stored {
        data.insert(unescape_key(name)?, from_bson(value)?);
    }
    let meta = Meta {
        permanent,
        created,
        lifetime,
    };
    Ok(Some(Record::from_parts(
        data,
        expiry.to_system_time(),
        meta,
        None,
    )))
}

/// A JSON value as BSON: integers as `Int64` (or `Decimal128` beyond `i64::MAX`), other
/// numbers as `Double`, object keys escaped.
fn to_bson(value: &Value) -> Result<Bson, StoreError> {
    Ok(match value {
        Value::Null => Bson::Null,
        Value::Bool(flag) => Bson::Boolean(*flag),
        Value::Number(number) => {
            if let Some(int) = number.as_i64() {
                Bson::Int64(int)
            } else if let Some(uint) = number.as_u64() {
                Bson::Decimal128(
                    uint.to_string()
                        .parse::<Decimal128>()
                        .map_err(StoreError::encode)?,
                )
            } else {
                Bson::Double(number.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(text) => Bson::String(text.clone()),
        Value::Array(items) => Bson::Array(items.iter().map(to_bson).collect::<Result<_, _>>()?),
        Value::Object(fields) => {
            let mut document = Document::new();
            for (key, value) in fields {
                document.insert(escape_key(key), to_bson(value)?);
            }
            Bson::Document(document)
        }
    })
}

/// A stored BSON value as JSON: the inverse of [`to_bson`], also accepting `Int32`.
fn from_bson(value: &Bson) -> Result<Value, FormatError> {
    Ok(match value {
        Bson::Null => Value::Null,
        Bson::Boolean(flag) => Value::Bool(*flag),
        Bson::Int32(int) => Value::from(*int),
        Bson::Int64(int) => Value::from(*int),
        Bson::Double(float) => Number::from_f64(*float)
            .map(Value::Number)
            .ok_or(FormatError::Number)?,
        Bson::Decimal128(decimal) => decimal_to_json(decimal)?,
        Bson::String(text) => Value::String(text.clone()),
        Bson::Array(items) => Value::Array(items.iter().map(from_bson).collect::<Result<_, _>>()?),
        Bson::Document(document) => {
            let mut fields = Map::new();
            for (name, value) in document {
                fields.insert(unescape_key(name)?, from_bson(value)?);
            }
            Value::Object(fields)
        }
        other => return Err(FormatError::Type(other.element_type())),
    })
}

fn decimal_to_json(decimal: &Decimal128) -> Result<Value, FormatError> {
    let text = decimal.to_string();
    if let Ok(uint) = text.parse::<u64>() {
        return Ok(Value::from(uint));
    }
    if let Ok(int) = text.parse::<i64>() {
        return Ok(Value::from(int));
    }
    text.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map(Value::Number)
        .ok_or(FormatError::Number)
}

/// A session key as a MongoDB field name: `%`, `.`, `$` and NUL percent-encoded, the
/// empty key as a lone `%`.
fn escape_key(key: &str) -> Cow<'_, str> {
    if key.is_empty() {
        return Cow::Borrowed("%");
    }
    if !key.contains(['%', '.', '$', '\0']) {
        return Cow::Borrowed(key);
    }
    let mut name = String::with_capacity(key.len() + 8);
    for c in key.chars() {
        match c {
            '%' => name.push_str("%25"),
            '.' => name.push_str("%2E"),
            '$' => name.push_str("%24"),
            '\0' => name.push_str("%00"),
            c => name.push(c),
        }
    }
    Cow::Owned(name)
}

/// The session key of a field name written by [`escape_key`].
fn unescape_key(name: &str) -> Result<String, FormatError> {
    if name == "%" {
        return Ok(String::new());
    }
    let mut key = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('%') {
        key.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 3).ok_or(FormatError::Name)?;
        key.push(match code {
            "25" => '%',
            "2E" => '.',
            "24" => '$',
            "00" => '\0',
            _ => return Err(FormatError::Name),
        });
        rest = &rest[at + 3..];
    }
    key.push_str(rest);
    Ok(key)
}

/// `text` as a regular expression matching itself.
fn escape_regex(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if c.is_ascii_punctuation() || c == ' ' {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bad_database_and_collection_names_are_refused_before_connecting() {
        assert!(check_names("flask_session", "sessions").is_ok());
        assert!(check_names("app", "shop.sessions").is_ok());
        for (db, collection) in [("", "sessions"), ("my.db", "sessions"), ("a b", "sessions")] {
            assert!(
                matches!(
                    check_names(db, collection),
                    Err(OpenError::InvalidDatabase { .. })
                ),
                "{db:?}"
            );
        }
        for collection in ["", "bad$name", "system.sessions", ".a", "a."] {
            assert!(
                matches!(
                    check_names("app", collection),
                    Err(OpenError::InvalidCollection { .. })
                ),
                "{collection:?}"
            );
        }
    }

    #[test]
    fn keys_escape_reversibly_into_field_names() {
        for key in [
            "user", "", "%", "%25", "a.b", "$set", "a$b.c%d", "\0", ".", "$", "é.✓", "%2E",
        ] {
            let name = escape_key(key);
            assert!(
                !name.is_empty() && !name.contains(['.', '$', '\0']),
                "{name}"
            );
            assert_eq!(unescape_key(&name).unwrap(), key);
        }
        assert_eq!(escape_key("user_id"), "user_id");
        assert_eq!(escape_key("a.b"), "a%2Eb");
        for bad in ["%", "%4", "%41", "a%zz", "%2e"] {
            if bad != "%" {
                assert!(unescape_key(bad).is_err(), "{bad}");
            }
        }
    }

    #[test]
    fn values_convert_to_bson_and_back() {
        let value = json!({
            "int": -42, "max": u64::MAX, "min": i64::MIN, "float": 0.1, "whole": 2.0,
            "text": "héllo", "list": [1, "two", null, true], "nested": {"a.b": {"$c": []}},
            "empty": {}, "": ""
        });
        let bson = to_bson(&value).unwrap();
        assert_eq!(from_bson(&bson).unwrap(), value);
        let Bson::Document(document) = &bson else {
            panic!("an object becomes a document")
        };
        assert!(matches!(document.get("max"), Some(Bson::Decimal128(_))));
        assert!(
            document
                .get_document("nested")
                .unwrap()
                .contains_key("a%2Eb")
        );
    }

    #[test]
    fn unsupported_bson_is_a_format_error() {
        assert!(from_bson(&Bson::ObjectId(bson::oid::ObjectId::new())).is_err());
        assert!(from_bson(&Bson::Double(f64::NAN)).is_err());
        let document = doc! { "data": "text", "expiry": DateTime::now() };
        assert!(decode(&document).is_err());
        let document = doc! { "data": { "a": 1 }, "expiry": "tomorrow" };
        assert!(decode(&document).is_err());
    }

    #[test]
    fn a_save_that_may_empty_the_session_ends_it_in_the_same_update() {
        let now = DateTime::now();
        let expiry = DateTime::from_millis(now.timestamp_millis() + 60_000);
        let mut removal = Changes::default();
        removal.remove("a");
        let mut clear = Changes::default();
        clear.clear();
        clear.require_existing();
        for changes in [&removal, &clear] {
            let stages = update_pipeline(changes, now, expiry).unwrap();
            let last = stages.last().unwrap().get_document("$set").unwrap();
            let cond = last
                .get_document("expiry")
                .unwrap()
                .get_array("$cond")
                .unwrap();
            assert_eq!(cond[1], Bson::DateTime(DEAD));
            assert_eq!(cond[2], Bson::String("$expiry".into()));
        }
        // With a key set the result holds data: the expiry is the new one, unconditionally.
        let mut set = Changes::default();
        set.set("a", json!(1));
        let stages = update_pipeline(&set, now, expiry).unwrap();
        assert_eq!(stages.len(), 2);
        assert!(
            !stages[1]
                .get_document("$set")
                .unwrap()
                .contains_key("expiry")
        );
    }

    #[test]
    fn regex_escaping_matches_the_prefix_literally() {
        assert_eq!(escape_regex("session:"), "session\\:");
        assert_eq!(escape_regex("a.b*"), "a\\.b\\*");
    }
}

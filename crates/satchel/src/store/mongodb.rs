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
//! delete expired documents itself; [`MongoStore::from_config`] creates it (idempotently)
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
//!    cleared the session; `expiry` to the new expiry; `permanent` to the request's flag,
//!    or to the stored one when the document is live (and the stored one a boolean).
//! 2. `$unset` `data.<key>` for every key the request removed.
//! 3. `$set` `data.<key>` to `{$literal: value}` for every key the request set.
//!
//! Two requests that set different keys of one session therefore both land, in whatever
//! order they reach the server. When the request set at least one key, the update is an
//! upsert (a new session is created in the same round trip) and the result holds data;
//! for a session the request loaded ([`Changes::requires_existing`]) it is a plain update
//! filtered on a live expiry, so a session deleted meanwhile stays deleted.
//! Otherwise (only removals, `clear` or the permanent flag) the update is not an upsert
//! and comes back with the updated `data`; when that is empty, a second round trip
//! deletes the document with the filter `{_id, data: {}}`, so a key that another request
//! set in between is never deleted with it.
//!
//! Concurrent upserts of a new session can make one of them fail with a duplicate key
//! error (MongoDB retries most of these itself); the store retries such an update.
//!
//! The store keeps no version, so [`SessionStore::save_seen`] is the default: the
//! per-key update is already a single round trip. [`SessionStore::cycle`] is the
//! default too: a load of the old id, a save under the new one and a delete of the old
//! one, three round trips on the rare requests that rotate the id (a log-in).
//!
//! # Timeouts and outages
//!
//! The connect and server-selection timeouts of the driver, and a limit on each operation
//! as a whole, are SESSION_STORE_TIMEOUT, so a server that is down or unreachable makes
//! every operation fail within about that time with [`StoreError::Backend`]. The driver
//! reconnects by itself: when the server is back, the same store works again.
//!
//! # Servers
//!
//! The pipeline update needs MongoDB 4.2 or later. The store is tested against
//! SecantusDB 0.7.0b3 (a MongoDB-wire-compatible server) with the official Rust driver:
//! CRUD, pipeline updates with `$cond`, `$type`, `$literal` and `$$REMOVE`,
//! `findAndModify` with upserts, TTL indexes and `$regex` filters all work there.

use std::borrow::Cow;
use std::fmt;
use std::future::IntoFuture;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mongodb::bson::{self, Bson, DateTime, Decimal128, Document, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, IndexOptions, ReturnDocument};
use mongodb::{Client, Collection, IndexModel};
use serde_json::{Map, Number, Value};

use crate::SessionConfig;
use crate::error::{ConfigError, StoreError};
use crate::id::SessionId;
use crate::record::{Changes, Data, Record};
use crate::store::{Capabilities, ExpiredDeletion, Saved, SessionStore};

/// The server the store connects to when SESSION_MONGODB is unset, as Flask-Session does.
pub const DEFAULT_URI: &str = crate::config::DEFAULT_MONGODB_URI;
/// The name of the TTL index the store creates on `expiry`.
pub const TTL_INDEX_NAME: &str = "expiry_ttl";

/// Default key prefix of the documents' `_id` (SESSION_KEY_PREFIX).
const DEFAULT_KEY_PREFIX: &str = "session:";
/// Default limit on each operation (SESSION_STORE_TIMEOUT).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// MongoDB's error code for a duplicate key.
const DUPLICATE_KEY: i32 = 11000;
/// How many times a save is sent when concurrent upserts collide on a new `_id`.
const UPSERT_ATTEMPTS: usize = 3;

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
/// use satchel::{Changes, MongoStore, SessionConfig, SessionId, SessionStore};
///
/// # tokio_test::block_on(async {
/// let config = SessionConfig::default()
///     .with_mongodb_uri("mongodb://127.0.0.1:27017")
///     .with_mongodb_db("app");
/// let store = MongoStore::from_config(&config).await?;
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

/// An operation took longer than the store's timeout.
#[derive(Debug, thiserror::Error)]
#[error("the MongoDB server did not answer within {0:?}")]
struct TimedOut(Duration);

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

impl MongoStore {
    /// A store on `collection`, with the key prefix `"session:"` and a timeout of two
    /// seconds per operation.
    ///
    /// Nothing is sent to the server here; call [`create_ttl_index`](Self::create_ttl_index)
    /// once so that the server deletes expired sessions itself.
    /// [`from_config`](Self::from_config) does both.
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

    /// Sets the prefix of every document's `_id` (default `"session:"`). Applications
    /// with different prefixes can share a collection without seeing each other's
    /// sessions.
    #[must_use]
    pub fn with_key_prefix(mut self, key_prefix: impl Into<String>) -> Self {
        self.key_prefix = key_prefix.into().into();
        self
    }

    /// Sets the longest time one operation may take before it fails with
    /// [`StoreError::Backend`] (default two seconds). The driver's own connect and
    /// server-selection timeouts are set on the client.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Opens the store the configuration describes: SESSION_MONGODB (default
    /// [`DEFAULT_URI`]), SESSION_MONGODB_DB, SESSION_MONGODB_COLLECT, SESSION_KEY_PREFIX,
    /// with SESSION_STORE_TIMEOUT as the driver's connect and server-selection timeouts
    /// and as the limit on each operation. Creates the TTL index on `expiry` when it is
    /// missing.
    ///
    /// The server must be reachable: the index is created here, so a wrong address or
    /// wrong credentials show up at startup, not on the first request.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// // Not run: it needs a MongoDB server.
    /// use satchel::{MongoStore, SessionConfig};
    ///
    /// # tokio_test::block_on(async {
    /// let config = SessionConfig::default()
    ///     .with_mongodb_uri("mongodb://app:secret@db.internal:27017/?authSource=admin");
    /// let store = MongoStore::from_config(&config).await?;
    /// # let _ = store;
    /// # Ok::<_, satchel::ConfigError>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming SESSION_MONGODB when the connection string cannot
    /// be parsed (the password, if any, is masked); [`ConfigError::Io`] naming
    /// SESSION_MONGODB when the server cannot be reached or refuses to create the index.
    pub async fn from_config(config: &SessionConfig) -> Result<Self, ConfigError> {
        let uri = config.mongodb_uri().unwrap_or(DEFAULT_URI);
        let timeout = config.store_timeout();
        let invalid = |message: String| ConfigError::Invalid {
            key: "SESSION_MONGODB".into(),
            value: mask_password(uri).into_owned(),
            expected: format!("a mongodb:// or mongodb+srv:// connection string ({message})"),
        };
        let mut options = ClientOptions::parse(uri)
            .await
            .map_err(|error| invalid(error.to_string()))?;
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
        let client = Client::with_options(options).map_err(|error| invalid(error.to_string()))?;
        let collection = client
            .database(config.mongodb_db())
            .collection::<Document>(config.mongodb_collection());
        let store = Self::new(collection)
            .with_key_prefix(config.key_prefix())
            .with_timeout(timeout);
        store
            .create_ttl_index()
            .await
            .map_err(|error| ConfigError::Io {
                key: "SESSION_MONGODB".into(),
                path: format!(
                    "{hosts}/{}.{}",
                    config.mongodb_db(),
                    config.mongodb_collection()
                ),
                message: format!(
                    "the TTL index on `expiry` cannot be created: {}",
                    Chain(&error)
                ),
            })?;
        Ok(store)
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
        match tokio::time::timeout(self.timeout, operation).await {
            Ok(result) => result.map_err(StoreError::backend),
            Err(_) => Err(StoreError::backend(TimedOut(self.timeout))),
        }
    }

    /// An upsert of `update` on `filter`, sent again when a concurrent upsert of the same
    /// new `_id` won the insert.
    async fn upsert(&self, filter: Document, update: Vec<Document>) -> Result<(), StoreError> {
        let mut attempt = 1;
        loop {
            let result = tokio::time::timeout(
                self.timeout,
                self.collection
                    .update_one(filter.clone(), update.clone())
                    .upsert(true),
            )
            .await;
            match result {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(error)) if attempt < UPSERT_ATTEMPTS && is_duplicate_key(&error) => {
                    attempt += 1;
                }
                Ok(Err(error)) => return Err(StoreError::backend(error)),
                Err(_) => return Err(StoreError::backend(TimedOut(self.timeout))),
            }
        }
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
        let filter = if changes.requires_existing() {
            doc! { "_id": &key, "expiry": { "$gt": now } }
        } else {
            doc! { "_id": &key }
        };
        if !changes.sets().is_empty() {
            // The result holds at least the keys set: never empty.
            if !changes.requires_existing() {
                self.upsert(filter, pipeline).await?;
                return Ok(Saved::Stored);
            }
            let result = self
                .timed(self.collection.update_one(filter, pipeline))
                .await?;
            return Ok(if result.matched_count == 0 {
                Saved::Empty
            } else {
                Saved::Stored
            });
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
                // Only while still empty: a key set meanwhile keeps the document.
                self.timed(self.collection.delete_one(doc! { "_id": key, "data": {} }))
                    .await?;
                Ok(Saved::Empty)
            }
            None => Ok(Saved::Empty),
        }
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        self.timed(self.collection.delete_one(doc! { "_id": self.key(id) }))
            .await?;
        Ok(())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            writable: true,
            persistent: true,
            shared: true,
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
    let permanent = match changes.permanent() {
        Some(flag) => Bson::Boolean(flag),
        None => Bson::Document(doc! {
            "$cond": [
                { "$and": [&live, { "$eq": [{ "$type": "$permanent" }, "bool"] }] },
                "$permanent",
                "$$REMOVE",
            ]
        }),
    };
    let mut stages = vec![doc! {
        "$set": { "data": data, "expiry": expiry, "permanent": permanent }
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
    }
    Ok(stages)
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
    if stored.is_empty() {
        return Ok(None);
    }
    let mut data = Data::new();
    for (name, value) in stored {
        data.insert(unescape_key(name)?, from_bson(value)?);
    }
    Ok(Some(Record {
        data,
        expires_at: expiry.to_system_time(),
        permanent,
        version: None,
    }))
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

/// A connection string with the password, if any, replaced by `***`.
fn mask_password(uri: &str) -> Cow<'_, str> {
    let Some(scheme_end) = uri.find("://").map(|at| at + 3) else {
        return Cow::Borrowed(uri);
    };
    let authority_end = uri[scheme_end..]
        .find(['/', '?'])
        .map_or(uri.len(), |at| scheme_end + at);
    let authority = &uri[scheme_end..authority_end];
    let Some(at) = authority.rfind('@') else {
        return Cow::Borrowed(uri);
    };
    match authority[..at].find(':') {
        Some(colon) => Cow::Owned(format!(
            "{}***{}",
            &uri[..scheme_end + colon + 1],
            &uri[scheme_end + at..]
        )),
        None => Cow::Borrowed(uri),
    }
}

/// Displays an error and its sources, `: `-separated.
struct Chain<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

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
    fn passwords_are_masked() {
        assert_eq!(
            mask_password("mongodb://app:s3cret@db:27017/x?authSource=admin"),
            "mongodb://app:***@db:27017/x?authSource=admin"
        );
        assert_eq!(mask_password("mongodb://db:27017"), "mongodb://db:27017");
        assert_eq!(mask_password("mongodb://user@db"), "mongodb://user@db");
        assert_eq!(mask_password("garbage"), "garbage");
    }

    #[test]
    fn regex_escaping_matches_the_prefix_literally() {
        assert_eq!(escape_regex("session:"), "session\\:");
        assert_eq!(escape_regex("a.b*"), "a\\.b\\*");
    }
}

//! [`FlaskStore`]: sessions kept in Flask-Session's own layout, so that a Flask
//! application and a Satchel service read and write the same sessions.
//!
//! # The layout
//!
//! Flask-Session keeps each session as **one value**: a msgpack map (0.7, 0.8) or a
//! pickled dict (0.6 and Flask Unchained), under `SESSION_KEY_PREFIX` + the raw id. A
//! [`FlaskBackend`] is a store that can hold such values where Flask-Session puts them:
//!
//! | backend | where a session lives |
//! | --- | --- |
//! | [`RedisStore`](crate::RedisStore) | a string, `SET key value`, with the key's TTL at the expiry |
//! | [`MemcachedStore`](crate::MemcachedStore) | an item with flags 0, its TTL at the expiry |
//! | the SQL stores | a row `(id, session_id, data, expiry)` of Flask-Session's table |
//! | [`MongoStore`](crate::MongoStore) | a document `{id, val, expiration}` |
//!
//! The session's permanent flag is the map's `_permanent`, as in Flask. What Satchel keeps
//! beside a session and Flask has no place for (its creation time, under
//! SESSION_ABSOLUTE_LIFETIME, and its own lifetime, after
//! [`Session::set_lifetime`](crate::Session::set_lifetime)) is the key `_satchel` of the
//! map, `{"created": <Unix ms>, "lifetime": <seconds>}`, written only when there is
//! something to keep. Flask carries it through its writes like any other key.
//!
//! Reading is liberal, as Flask-Session 0.8 is: a value is read as the layout's own
//! format first, then as msgpack, JSON and pickle. Writing uses the layout's format.
//!
//! # No lost updates, on a value Flask overwrites whole
//!
//! A save reads the current value, applies the request's [`Changes`] onto it, and writes
//! the result only if the value is still the one it read (a compare-and-swap: a Lua
//! script in Redis, memcached's CAS token, a conditional `UPDATE` in SQL, a conditional
//! update in MongoDB); when another writer got in between, it reads again and applies
//! the changes again. Two Satchel requests that change different keys of one session
//! therefore both land, and so do concurrent increments. Flask's own writes are not
//! merges: Flask-Session writes the whole session it loaded, so a Flask request that ran
//! alongside a Satchel request can overwrite what the Satchel request wrote, as it would
//! a Flask request's.
//!
//! A save takes two round trips (a read and a conditional write) where Satchel's own
//! layouts take one; the engine's one load per request stays one.
//!
//! # What is not kept
//!
//! A Flask layout lists no entries ([`SessionStore::list`] is
//! [`StoreError::Unsupported`]): a user's sessions are still listed and revoked through
//! the per-user index, as everywhere, but nothing walks the whole store (the dead members
//! of an index leave it when the user's sessions are listed). On SQL, `satchel cleanup`
//! deletes the expired rows of Flask-Session's table.

use std::future::Future;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use crate::config::FlaskCompat;
use crate::error::StoreError;
use crate::id::SessionId;
use crate::record::{Changes, Data, KeyUpdate, Record, Updated};
use crate::store::{Capabilities, Saved, SessionStore};
use crate::support::{from_unix_millis, unix_millis};

/// The key of the map that holds what Satchel keeps beside a session (see the
/// [module documentation](self)).
pub const META_KEY: &str = "_satchel";

/// How many times a write is tried again after another writer changed the value between
/// its read and its write (after a short random pause, so that contending writers fall
/// out of step): each lost round means another write landed.
const ATTEMPTS: u32 = 100;

/// The lifetime a session is taken to have when its backend keeps no expiry for it (a
/// Flask Unchained row whose `expiry` is `NULL`, an item stored without a TTL), unless
/// told otherwise: Flask's PERMANENT_SESSION_LIFETIME, 31 days.
const ASSUMED_LIFETIME: Duration = Duration::from_secs(31 * 24 * 3600);

/// A session's stored value as its backend holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Blob {
    /// The value: Flask-Session's encoding of the session.
    pub value: Vec<u8>,
    /// When the backend drops it; `None` when it keeps no expiry for it.
    pub expires_at: Option<SystemTime>,
    /// The backend's version token of the value (memcached's CAS token); `0` for
    /// backends that compare values instead.
    pub cas: u64,
}

impl Blob {
    /// A value with its expiry.
    #[must_use]
    pub fn new(value: Vec<u8>, expires_at: Option<SystemTime>) -> Self {
        Self {
            value,
            expires_at,
            cas: 0,
        }
    }

    /// The same value with the backend's version token.
    #[must_use]
    pub fn with_cas(mut self, cas: u64) -> Self {
        self.cas = cas;
        self
    }

    fn is_expired(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

mod sealed {
    pub trait Sealed {}
}

#[cfg(feature = "redis")]
impl sealed::Sealed for crate::RedisStore {}
#[cfg(feature = "memcached")]
impl sealed::Sealed for crate::MemcachedStore {}
#[cfg(feature = "mongodb")]
impl sealed::Sealed for crate::MongoStore {}
#[cfg(feature = "_sql")]
impl sealed::Sealed for crate::store::sql::SqlStore {}

/// A store that can keep sessions in Flask-Session's layout: one value per session, read
/// and written whole, with a conditional write. Implemented by Satchel's Redis, memcached,
/// SQL and MongoDB stores; it cannot be implemented elsewhere.
pub trait FlaskBackend: sealed::Sealed + Send + Sync + 'static {
    /// The value under `key` with its expiry, or `None` when there is none. With
    /// `touch`, a live value's expiry moves to that time in the same step, and the blob
    /// says so; a value past its expiry is never brought back. A backend that keeps
    /// values past their expiry (SQL, MongoDB) returns them with that expiry.
    fn blob(
        &self,
        key: &str,
        touch: Option<SystemTime>,
    ) -> impl Future<Output = Result<Option<Blob>, StoreError>> + Send;

    /// Writes `value` under `key` until `expires_at`, only if what is stored is still
    /// `current` (`None`: nothing is stored). Returns whether it wrote.
    fn put_blob(
        &self,
        key: &str,
        current: Option<&Blob>,
        value: &[u8],
        expires_at: SystemTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes the value under `key`, only if it is still `current`. Returns whether it
    /// deleted.
    fn remove_blob(
        &self,
        key: &str,
        current: &Blob,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes the value under `key`, whatever it is.
    fn delete_blob(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The prefix of every key (SESSION_KEY_PREFIX).
    fn blob_prefix(&self) -> &str;

    /// The backend's name in metrics and logs.
    fn backend_name(&self) -> &'static str;
}

/// Sessions in Flask-Session's layout, on a [`FlaskBackend`] (see the
/// [module documentation](self)).
///
/// # Examples
///
/// ```no_run
/// // Not run: it needs a Redis server.
/// use satchel::{FlaskCompat, RedisStore, flask::FlaskStore};
///
/// # tokio_test::block_on(async {
/// let redis = RedisStore::connect("redis://127.0.0.1:6379").await?;
/// let store = FlaskStore::new(redis, FlaskCompat::Msgpack);
/// # let _ = store;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct FlaskStore<B> {
    backend: B,
    format: Format,
    permanent: bool,
    lifetime: Duration,
}

/// The encoding a store writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Msgpack,
    Pickle,
}

impl<B: FlaskBackend> FlaskStore<B> {
    /// Sessions on `backend` in the layout `compat` names ([`FlaskCompat::Off`] is taken
    /// as [`FlaskCompat::Msgpack`]). New sessions are permanent unless told otherwise
    /// ([`permanent_by_default`](Self::permanent_by_default)), as in Flask.
    #[must_use]
    pub fn new(backend: B, compat: FlaskCompat) -> Self {
        let format = match compat {
            FlaskCompat::Pickle => Format::Pickle,
            _ => Format::Msgpack,
        };
        Self {
            backend,
            format,
            permanent: true,
            lifetime: ASSUMED_LIFETIME,
        }
    }

    /// Whether a session that never chose is written as permanent (SESSION_PERMANENT):
    /// Flask reads a session without `_permanent` as a browser session, so the flag is
    /// written out.
    #[must_use]
    pub fn permanent_by_default(mut self, permanent: bool) -> Self {
        self.permanent = permanent;
        self
    }

    /// The lifetime a session is taken to have when its backend keeps no expiry for it
    /// (PERMANENT_SESSION_LIFETIME; 31 days unless told otherwise).
    #[must_use]
    pub fn assumed_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// The backend.
    #[must_use]
    pub fn backend(&self) -> &B {
        &self.backend
    }

    fn key(&self, id: &SessionId) -> String {
        format!("{}{id}", self.backend.blob_prefix())
    }

    /// The record a live blob holds.
    fn record(&self, blob: &Blob, now: SystemTime) -> Result<Record, StoreError> {
        let (mut data, permanent) = decode(&blob.value, self.format)?;
        let (created, lifetime) = take_meta(&mut data);
        let expires_at = blob.expires_at.unwrap_or(now + self.lifetime);
        Ok(Record::from_parts(
            data,
            expires_at,
            crate::record::Meta {
                permanent,
                created,
                lifetime,
            },
            None,
        ))
    }

    /// The blob under `key` and the live record in it (`None` when there is none, it
    /// expired, or it cannot be read: a value nobody can read is written over).
    async fn current(&self, key: &str) -> Result<(Option<Blob>, Option<Record>), StoreError> {
        let now = SystemTime::now();
        let blob = self.backend.blob(key, None).await?;
        let record = match &blob {
            Some(blob) if !blob.is_expired(now) => self.record(blob, now).ok(),
            _ => None,
        };
        Ok((blob, record))
    }

    /// Before a write is tried again because another writer got in first: counts the
    /// conflict and pauses a random moment, so that contending writers fall out of step.
    async fn lost_round(&self, attempt: u32) {
        crate::observability::record_conflict(self.backend.backend_name());
        crate::support::pause(attempt).await;
    }

    /// The value to store for `record`.
    fn encode(&self, record: &Record) -> Result<Vec<u8>, StoreError> {
        // Flask reads a map without `_permanent` as a browser session.
        let permanent = record.permanent.or(self.permanent.then_some(true));
        let meta = meta_value(record.created, record.lifetime);
        let data = match meta {
            Some(meta) => {
                let mut data = record.data.clone();
                data.insert(META_KEY.to_owned(), meta);
                std::borrow::Cow::Owned(data)
            }
            None => std::borrow::Cow::Borrowed(&record.data),
        };
        match self.format {
            Format::Msgpack => super::msgpack::encode(&data, permanent),
            Format::Pickle => super::pickle::encode(&data, permanent),
        }
    }

    /// Writes `result` under `key` where `current` is, or deletes `current` when there is
    /// no result. `false` when another writer got in first.
    async fn write(
        &self,
        key: &str,
        current: Option<&Blob>,
        result: Option<&Record>,
        expires_at: SystemTime,
    ) -> Result<bool, StoreError> {
        match (result, current) {
            (Some(record), _) => {
                let value = self.encode(record)?;
                self.backend
                    .put_blob(key, current, &value, expires_at)
                    .await
            }
            (None, Some(current)) => self.backend.remove_blob(key, current).await,
            (None, None) => Ok(true),
        }
    }
}

/// Reads a stored value: the layout's own format first, then the others Flask-Session
/// reads.
fn decode(bytes: &[u8], format: Format) -> Result<(Data, Option<bool>), StoreError> {
    let first = match format {
        Format::Msgpack => super::msgpack::decode(bytes),
        Format::Pickle => super::pickle::decode(bytes),
    };
    let error = match first {
        Ok(decoded) => return Ok(decoded),
        Err(error) => error,
    };
    let others = match format {
        Format::Msgpack => super::pickle::decode(bytes),
        Format::Pickle => super::msgpack::decode(bytes),
    };
    others.or_else(|_| decode_json(bytes)).map_err(|_| error)
}

/// A value of Flask-Session's `SESSION_SERIALIZATION_FORMAT=json`.
fn decode_json(bytes: &[u8]) -> Result<(Data, Option<bool>), StoreError> {
    let mut data: Data = serde_json::from_slice(bytes).map_err(StoreError::decode)?;
    let permanent = match data.get(super::msgpack::PERMANENT) {
        Some(Value::Bool(flag)) => Some(*flag),
        _ => None,
    };
    if permanent.is_some() {
        data.remove(super::msgpack::PERMANENT);
    }
    Ok((data, permanent))
}

/// Takes what Satchel keeps beside the session out of its data: the creation time and
/// the session's own lifetime. A `_satchel` key of another shape is left as data.
fn take_meta(data: &mut Data) -> (Option<SystemTime>, Option<Duration>) {
    let Some(Value::Object(meta)) = data.get(META_KEY) else {
        return (None, None);
    };
    let created = meta.get("created").and_then(Value::as_u64);
    let lifetime = meta.get("lifetime").and_then(Value::as_u64);
    if meta.keys().any(|key| key != "created" && key != "lifetime") {
        return (None, None);
    }
    data.remove(META_KEY);
    (
        created.map(from_unix_millis),
        lifetime.map(Duration::from_secs),
    )
}

/// The `_satchel` value for a creation time and a lifetime, when there is one.
fn meta_value(created: Option<SystemTime>, lifetime: Option<Duration>) -> Option<Value> {
    if created.is_none() && lifetime.is_none() {
        return None;
    }
    let mut meta = Map::new();
    if let Some(created) = created {
        meta.insert("created".to_owned(), Value::from(unix_millis(created)));
    }
    if let Some(lifetime) = lifetime {
        meta.insert("lifetime".to_owned(), Value::from(lifetime.as_secs()));
    }
    Some(Value::Object(meta))
}

impl<B: FlaskBackend> SessionStore for FlaskStore<B> {
    async fn load(
        &self,
        id: &SessionId,
        touch: Option<SystemTime>,
    ) -> Result<Option<Record>, StoreError> {
        let now = SystemTime::now();
        let key = self.key(id);
        match self.backend.blob(&key, touch).await? {
            Some(blob) if !blob.is_expired(now) => self.record(&blob, now).map(Some),
            _ => Ok(None),
        }
    }

    async fn save(
        &self,
        id: &SessionId,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        let key = self.key(id);
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                self.lost_round(attempt).await;
            }
            let (blob, record) = self.current(&key).await?;
            let live = record.is_some();
            let result = changes.apply_to(record, expires_at)?;
            // A value that is not live (expired, or one nobody can read) is written over,
            // never deleted for want of a result: its backend drops it in time.
            let current = if result.is_some() || live {
                blob.as_ref()
            } else {
                None
            };
            if self
                .write(&key, current, result.as_ref(), expires_at)
                .await?
            {
                return Ok(saved(result.as_ref()));
            }
        }
        Err(contended())
    }

    async fn cycle(
        &self,
        old: &SessionId,
        new: &SessionId,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        let (old_key, new_key) = (self.key(old), self.key(new));
        // What this rotation wrote under the new id so far: a later round writes over it.
        let mut written: Option<Blob> = None;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                self.lost_round(attempt).await;
            }
            let (blob, record) = self.current(&old_key).await?;
            let result = changes.apply_to(record, expires_at)?;
            let placed = match &result {
                Some(record) => {
                    let value = self.encode(record)?;
                    let placed = self
                        .backend
                        .put_blob(&new_key, written.as_ref(), &value, expires_at)
                        .await?;
                    if placed {
                        written = Some(Blob::new(value, Some(expires_at)));
                    }
                    placed
                }
                None => match written.take() {
                    Some(mine) => self.backend.remove_blob(&new_key, &mine).await?,
                    None => true,
                },
            };
            if !placed {
                // Only this rotation writes the new id: an unknown value there is
                // another process's, which no rotation may overwrite.
                return Err(StoreError::backend(
                    "the new session id of a rotation was already taken",
                ));
            }
            let moved = match &blob {
                Some(blob) => self.backend.remove_blob(&old_key, blob).await?,
                None => true,
            };
            if moved {
                return Ok(saved(result.as_ref()));
            }
            // The old entry changed after it was read: the next round rebuilds the new
            // one from it.
        }
        Err(contended())
    }

    async fn update(
        &self,
        id: &SessionId,
        key: &str,
        update: &KeyUpdate,
    ) -> Result<Updated, StoreError> {
        let entry = self.key(id);
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                self.lost_round(attempt).await;
            }
            let now = SystemTime::now();
            let Some(blob) = self.backend.blob(&entry, None).await? else {
                return Ok(Updated::Missing);
            };
            if blob.is_expired(now) {
                return Ok(Updated::Missing);
            }
            let mut record = self.record(&blob, now)?;
            let outcome = update.apply_to(&mut record.data, key)?;
            if !matches!(outcome, Updated::Applied(_)) {
                return Ok(outcome);
            }
            let expires_at = record.expires_at;
            let result = (!record.data.is_empty()).then_some(record);
            if self
                .write(&entry, Some(&blob), result.as_ref(), expires_at)
                .await?
            {
                return Ok(outcome);
            }
        }
        Err(contended())
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        self.backend.delete_blob(&self.key(id)).await
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    fn name(&self) -> &'static str {
        self.backend.backend_name()
    }
}

/// What a save reports for its result.
fn saved(result: Option<&Record>) -> Saved {
    if result.is_some() {
        Saved::Stored
    } else {
        Saved::Empty
    }
}

fn contended() -> StoreError {
    StoreError::backend(format!(
        "a Flask session value kept changing under {ATTEMPTS} writes in a row"
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_meta_key_is_taken_out_only_in_its_own_shape() {
        let mut data = Data::new();
        data.insert(
            META_KEY.to_owned(),
            json!({"created": 1_764_547_200_000_u64, "lifetime": 3600}),
        );
        data.insert("k".to_owned(), json!("v"));
        let (created, lifetime) = take_meta(&mut data);
        assert_eq!(created, Some(from_unix_millis(1_764_547_200_000)));
        assert_eq!(lifetime, Some(Duration::from_secs(3600)));
        assert_eq!(data.len(), 1);

        let mut foreign = Data::new();
        foreign.insert(META_KEY.to_owned(), json!({"other": 1}));
        assert_eq!(take_meta(&mut foreign), (None, None));
        assert_eq!(foreign.len(), 1, "a key of another shape stays data");
        assert_eq!(meta_value(None, None), None);
    }

    #[test]
    fn json_values_are_read_as_flask_session_writes_them() {
        let (data, permanent) =
            decode(br#"{"_permanent":true,"k":"from-json"}"#, Format::Msgpack).unwrap();
        assert_eq!(permanent, Some(true));
        assert_eq!(data["k"], json!("from-json"));
        assert!(decode(b"\xc1 not anything", Format::Msgpack).is_err());
    }
}

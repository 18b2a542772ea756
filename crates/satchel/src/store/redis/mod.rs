//! The `redis` store: sessions in Redis, standalone, in a Redis Cluster or behind Redis
//! Sentinel.
//!
//! # Where the store connects (the URL, `SESSION_REDIS`)
//!
//! | form | topology |
//! | --- | --- |
//! | `redis://[user:password@]host[:port][/db]` | one server (the default is `redis://127.0.0.1:6379`) |
//! | `rediss://[user:password@]host[:port][/db]` | one server over TLS |
//! | `redis+cluster://[user:password@]host:port,host:port,…` | a Redis Cluster, from one or more seed nodes |
//! | `redis+sentinel://[user:password@]host[:port],host[:port],…/master-name[/db]` | the master that the sentinels name |
//!
//! `rediss+cluster://` and `rediss+sentinel://` are the TLS forms of the last two (the
//! sentinels are then reached over TLS as well). Server certificates are checked against
//! the system's trusted roots; a URL ending in `#insecure` turns the check off, for
//! self-signed test servers only. Credentials in a cluster URL apply to every node; in a
//! Sentinel URL they apply to the master (the sentinels are reached without
//! authentication). A port left out means 6379 for servers and 26379 for sentinels; `db`
//! defaults to 0, and a Redis Cluster has database 0 only. `?protocol=resp3` may follow a
//! standalone or cluster URL. `unix:///path/to/redis.sock[?db=N]` reaches a server on a
//! Unix socket. Any other form is an [`OpenError::InvalidUrl`] (through
//! [`RedisStore::from_config`], a [`ConfigError::Invalid`](crate::ConfigError::Invalid)
//! naming `SESSION_REDIS`), with the password masked.
//!
//! # Layout
//!
//! One Redis string per session, at the key `{SESSION_KEY_PREFIX}{id}` (`session:` and the
//! 43-character id by default): a header of fixed width, then the data as one JSON object
//! with each key on a line of its own.
//!
//! ```text
//! GET session:3J8x…   s1 0001767225600000 0000000020 - 0001764547200000 --------------------
//!                     {
//!                     "user":"ada",
//!                     "cart":[1,2]}
//! ```
//!
//! (The header is shown with spaces between its fields; it has none.) The header holds the
//! layout's tag `s1`, the expiry in Unix milliseconds, the data's size as
//! [`stored_size`](crate::record::stored_size) measures it, the per-session permanent flag
//! (`1`, `0`, or `-` when unset), the creation time in Unix milliseconds and the session's
//! own lifetime in seconds (dashes when unset). The key also carries a native TTL (`PXAT`
//! at the expiry), so Redis drops abandoned sessions by itself; the header's expiry is
//! checked on every load all the same.
//!
//! Compact JSON never holds a raw line break, so a line break in the data always starts an
//! entry: the scripts find a key by its line and edit that entry alone, without decoding
//! the others, and Satchel reads the whole data with one JSON parse.
//!
//! Sessions stored by earlier releases (a Redis hash per session, with a field per key and
//! the store's own fields behind a NUL byte) are read as they were and converted to this
//! layout, in place and keeping their TTL, by their first load, save or update.
//!
//! # One round trip each, and no lost updates
//!
//! A plain load is one `GET`; the expiry is checked by Satchel. Refreshes, saves and updates
//! are Lua scripts, sent with `EVALSHA` (and loaded on the fly when the server does not know
//! them yet). Each makes two calls into Redis, a `GET` and a `SET`; Redis runs a script
//! atomically, so:
//!
//! - **refresh** (a load that extends the lifetime, see
//!   [`refresh_granularity`](crate::SessionConfig::refresh_granularity)) reads the value,
//!   checks the stored expiry against the time of the request, and moves only the header's
//!   expiry and the TTL forward: the data is never rewritten from a read, so a refresh can
//!   never undo a concurrent write;
//! - **save** applies the request's [`Changes`] onto whatever is stored at that moment
//!   (starting from nothing when the stored entry has expired): `clear` drops the data,
//!   removed keys' entries are cut, set keys' entries replaced or added, the permanent flag,
//!   creation time and lifetime are updated; then the key is deleted when no data is left,
//!   or written with its expiry and TTL. Two requests that set different keys of one
//!   session therefore both land. The session's size budget ([`Changes::max_size`],
//!   SESSION_MAX_SIZE) is checked in the script, on the merged result, before anything is
//!   written: the header's size is kept exact by each edit, so nothing else is measured. A
//!   save over the budget writes nothing and is [`StoreError::TooLarge`], as is a request
//!   that Redis refuses for its `proto-max-bulk-len`;
//! - **update** ([`SessionStore::update`]: an increment or a compare-and-set of one key)
//!   checks that the entry is live, finds the key's entry, and rewrites that entry alone,
//!   keeping the expiry, the TTL and the other keys. An increment checks that the value is
//!   the JSON text of an integer; Lua's numbers are doubles, so the script adds only
//!   integers of up to 15 digits, and for longer ones hands the value back to Satchel,
//!   which adds them in 64 bits and replaces the text it found (a compare-and-set, sent
//!   again if the value changed meanwhile). A compare-and-set compares the entry's JSON
//!   text with the expected value's, and sets or removes it (deleting the key when no data
//!   is left). Nothing is created when there is no live entry. The script returns the
//!   value as it found it, and Satchel derives the outcome from it: one round trip. Equal
//!   JSON values can have different texts (objects keep their insertion order when
//!   serde_json's `preserve_order` feature is on): when the stored text differs from the
//!   expected one but decodes to the same value, the script is sent again expecting the
//!   stored text. For [`SessionStore::update_and_load`] the script answers the stored
//!   value too, as it left it: a request whose first use of its session is an increment
//!   makes that one round trip, and no `GET` before it.
//!
//! The plain loads of concurrent requests are sent together: while other loads are under
//! way, a load waits for the requests that are ready at the same time (one pass of the
//! runtime), and their `GET`s go as one pipeline, each answered on its own. A load that
//! starts while no other is under way goes at once. On a Redis Cluster every load goes
//! alone, the keys of a batch belonging to many nodes. See `reads.rs` for how a batch
//! whose leading request goes away is still answered.
//!
//! [`cycle`](SessionStore::cycle) (a new id at login) cannot be one script, because in a
//! Redis Cluster the old and the new key live in different hash slots. It is two: a
//! script that takes the old entry (reads the value and deletes it, atomically), then a
//! save of the result under the new id. A save to the old id that lands before the take
//! is carried to the new id; one that lands after it finds no entry and writes nothing
//! (the engine then answers that request with `409`), so no acknowledged change is lost
//! to a log-in. The take is not sent again after an error that may have come once it ran.
//!
//! Expiry times are computed by the application's clock: processes sharing a Redis should
//! keep their clocks in sync (NTP), as for any shared session store.
//!
//! # Listing
//!
//! [`SessionStore::list`] walks the keys of the store's prefix with `SCAN … MATCH prefix*`,
//! on each master in turn in a Redis Cluster (in address
//! order, from `CLUSTER SLOTS`), and loads each key found; all of a page's loads are sent
//! at once, so a page costs a few round trips, not one per session. The cursor carries
//! `SCAN`'s own, and the ids found beyond the page's limit. `SCAN` visits every key that
//! exists from the start of the walk to its end, but gives a key twice when the keyspace
//! shrinks during the walk: [`Capabilities::list_may_repeat`] says so, and `satchel
//! sessions` counts each id once. A resharding or failover during a walk can repeat or
//! miss the keys that move.
//!
//! # Failures and reconnection
//!
//! Every operation (retries included) ends within the store's timeout (`store_timeout`,
//! SESSION_STORE_TIMEOUT, 2 s by default) with [`StoreError::Backend`] when Redis does not
//! answer, so a request fails fast with an empty 500 while Redis is down and nothing stored
//! is overwritten. Within that time, an operation that could not reach the server is tried
//! again after a short pause (a save only ever applies the request's own changes, so trying
//! it twice is harmless). An update is not tried again after an error that may have come
//! once it ran (a connection that broke while waiting for the reply): an increment sent
//! twice would add twice. It is tried again only when the server refused it or could not be
//! connected to; the Redis Cluster client itself still sends a command again after a
//! dropped connection. When Redis comes back, the same store works again by itself:
//!
//! - **standalone**: a [`ConnectionManager`] (one multiplexed connection, shared by all
//!   requests) reconnects after a dropped connection; after a timeout or a server that is
//!   still loading its data, the store opens a fresh connection;
//! - **cluster**: the cluster client follows slot moves and reconnects to nodes itself;
//! - **sentinel**: the store asks the sentinels for the master and keeps one multiplexed
//!   connection to it; after any connection error (or a `READONLY` reply from a demoted
//!   master) that connection is dropped and the next operation asks the sentinels again,
//!   so a failover or a restart of the master is followed. (When a failover demotes a
//!   master that is still running, Sentinel disconnects its clients, which sends the store
//!   to the new master. As with any Redis client, writes the old master had not yet
//!   replicated are lost in a failover: replication is asynchronous.)
//!
//! Opening the store ([`RedisStoreBuilder::open`], and [`RedisStore::connect`] and
//! [`RedisStore::from_config`] through it) connects once, so a wrong address or password
//! is reported at startup.
//!
//! [`ConnectionManager`]: redis::aio::ConnectionManager

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::error::StoreError;
use crate::id::SessionId;
use crate::record::{Changes, KeyUpdate, Record, Updated};
use crate::store::{Capabilities, DEFAULT_KEY_PREFIX, DEFAULT_TIMEOUT, Page, Saved, SessionStore};

mod builder;
mod codec;
#[cfg(feature = "fuzzing")]
pub(crate) use codec::fuzz;
mod connection;
#[cfg(feature = "flask")]
mod flask;
mod listing;
mod reads;
mod scripts;

pub use builder::{OpenError, RedisStoreBuilder, Topology};
use codec::{decode, json_text, key_text, lifetime_text, millis, permanent_text, time_text};
use connection::{Backend, Request};
use scripts::{CONVERT, LOAD, SAVE, TAKE, UPDATE};

/// Where the store connects unless told otherwise (SESSION_REDIS unset): the local
/// server, as Flask-Session does.
pub const DEFAULT_URL: &str = super::defaults::REDIS_URL;

/// How many times an update is sent when the stored text of a key keeps differing from
/// the expected one while decoding to the same value (see the module documentation).
const UPDATE_TRIES: usize = 8;

/// A store that keeps sessions in Redis (SESSION_TYPE=`redis`): one server, a Redis
/// Cluster, or the master named by Redis Sentinel.
///
/// Each session is one Redis string with a native TTL; a load is one `GET` and a save
/// one Lua script, so a save applies the request's changes atomically onto the latest entry and
/// concurrent requests never lose each other's updates. See the [module
/// documentation](self) for the URL forms, the layout and the reconnection behaviour.
///
/// Cloning is cheap and shares the connection. Every operation needs a tokio runtime.
///
/// # Examples
///
/// ```no_run
/// use std::time::{Duration, SystemTime};
/// use satchel::{Changes, RedisStore, SessionId, SessionStore};
///
/// # tokio_test::block_on(async {
/// let store = RedisStore::builder("redis://127.0.0.1:6379/0")
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
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    /// The batch of plain reads waiting to be sent.
    reads: reads::Reads,
    key_prefix: String,
    timeout: Duration,
    /// The URL with its password masked, for `Debug`.
    url: String,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("topology", &self.topology())
            .field("url", &self.inner.url)
            .field("key_prefix", &self.inner.key_prefix)
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}

impl RedisStore {
    /// Starts configuring a store at `url` (see the [module documentation](self) for the
    /// forms; [`DEFAULT_URL`] is the local server), with the defaults: key prefix
    /// [`DEFAULT_KEY_PREFIX`], timeout [`DEFAULT_TIMEOUT`].
    ///
    /// Nothing is checked or contacted until [`open`](RedisStoreBuilder::open).
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = satchel::RedisStore::builder("redis://:secret@cache:6379/2");
    /// assert!(!format!("{builder:?}").contains("secret"));
    /// ```
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Opens a store at `url` with the default key prefix and timeout; see
    /// [`RedisStoreBuilder::open`].
    ///
    /// # Errors
    ///
    /// As [`RedisStoreBuilder::open`].
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::store::redis::OpenError;
    ///
    /// # tokio_test::block_on(async {
    /// // A malformed URL is refused before anything is contacted.
    /// let error = satchel::RedisStore::connect("redis+sentinel://:pw@10.0.0.5:26379")
    ///     .await
    ///     .unwrap_err();
    /// assert!(matches!(error, OpenError::InvalidUrl { .. }));
    /// let message = error.to_string();
    /// assert!(message.contains("master"));
    /// assert!(!message.contains("pw@"));
    /// # });
    /// ```
    pub async fn connect(url: &str) -> Result<Self, OpenError> {
        Self::builder(url).open().await
    }

    /// The prefix of every session key.
    #[must_use]
    pub fn key_prefix(&self) -> &str {
        &self.inner.key_prefix
    }

    /// The time limit of every operation.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// How the Redis behind the store is deployed.
    #[must_use]
    pub fn topology(&self) -> Topology {
        match self.inner.backend {
            Backend::Standalone(_) => Topology::Standalone,
            Backend::Cluster(_) => Topology::Cluster,
            Backend::Sentinel(_) => Topology::Sentinel,
        }
    }

    /// The Redis key of a session.
    fn key(&self, id: &SessionId) -> String {
        let prefix = &self.inner.key_prefix;
        let mut key = String::with_capacity(prefix.len() + crate::id::ID_LEN);
        key.push_str(prefix);
        id.encode_into(&mut key);
        key
    }
}

impl SessionStore for RedisStore {
    async fn load(
        &self,
        id: &SessionId,
        touch: Option<SystemTime>,
    ) -> Result<Option<Record>, StoreError> {
        let now = SystemTime::now();
        let Some(touch) = touch else {
            // A plain read is a plain GET (sent with those of the requests ready at the
            // same time): cheaper for Redis than running a script.
            let value = match self.read(id).await {
                Ok(value) => value,
                // Another type: a session hash of the earlier layout, which is converted,
                // or something else, which is reported.
                Err(StoreError::Decode(_)) => self.convert(&self.key(id)).await?,
                Err(error) => return Err(error),
            };
            return value
                .map(|value| decode(&value))
                .transpose()
                .map(|record| record.filter(|record| !record.is_expired(now)));
        };
        let key = self.key(id);
        let mut invocation = LOAD.prepare_invoke();
        invocation
            .key(&key)
            .arg(millis(now))
            .arg(millis(touch))
            .arg(time_text(touch));
        let mut value: Option<Vec<u8>> = self.execute(Request::Script(&invocation)).await?;
        if value.as_deref() == Some(LEGACY) {
            self.convert(&key).await?;
            value = self.execute(Request::Script(&invocation)).await?;
        }
        value.map(|value| decode(&value)).transpose()
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
        let mut invocation = TAKE.prepare_invoke();
        let old_key = self.key(old);
        invocation.key(&old_key);
        let mut value: Option<Vec<u8>> = self.execute(Request::Once(&invocation)).await?;
        if value.as_deref() == Some(LEGACY) {
            self.convert(&old_key).await?;
            value = self.execute(Request::Once(&invocation)).await?;
        }
        let now = SystemTime::now();
        let base = match value.map(|value| decode(&value)).transpose() {
            Ok(record) => record.filter(|record| !record.is_expired(now)),
            // A foreign or corrupt value is left alone, as a load leaves it.
            Err(StoreError::Decode(_)) => None,
            Err(error) => return Err(error),
        };
        if let Err(refused) = changes.check_size(base.as_ref().map(|record| &record.data)) {
            // Over the budget: the entry goes back under the old id, as it was. A write
            // to the old id in between found no entry and wrote nothing (the engine's
            // saves require one); another kind of write there is overwritten by the
            // entry's own keys.
            if let Some(record) = &base {
                let mut back = Changes::default();
                for (key, value) in &record.data {
                    back.set(key.clone(), value.clone());
                }
                if let Some(permanent) = record.permanent {
                    back.set_permanent(permanent);
                }
                if let Some(created) = record.created {
                    back.set_created(created);
                }
                if record.lifetime.is_some() {
                    back.set_lifetime(record.lifetime);
                }
                self.save(old, &back, record.expires_at).await?;
            }
            return Err(refused);
        }
        super::save_moved(self, new, base, changes, expires_at).await
    }

    async fn save(
        &self,
        id: &SessionId,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        let key = self.key(id);
        let flags = match (changes.is_clear(), changes.requires_existing()) {
            (false, false) => "",
            (true, false) => "c",
            (false, true) => "e",
            (true, true) => "ce",
        };
        let mut invocation = SAVE.prepare_invoke();
        invocation
            .key(&key)
            .arg(millis(SystemTime::now()))
            .arg(millis(expires_at))
            .arg(time_text(expires_at))
            .arg(flags)
            .arg(changes.max_size().unwrap_or(0))
            .arg(
                changes
                    .permanent()
                    .map_or("", |permanent| permanent_text(Some(permanent))),
            )
            .arg(changes.created().map(time_text).unwrap_or_default())
            .arg(changes.lifetime().map(lifetime_text).unwrap_or_default())
            .arg(changes.removals().len())
            .arg(changes.sets().len());
        for key in changes.removals() {
            invocation.arg(key_text(key)?).arg(key.len());
        }
        let mut size = 0usize;
        for (key, value) in changes.sets() {
            let json = serde_json::to_vec(value).map_err(StoreError::encode)?;
            size = size.saturating_add(key.len()).saturating_add(json.len());
            invocation.arg(key_text(key)?).arg(key.len()).arg(json);
        }
        if let Some(budget) = changes.max_size()
            && size > budget
            && !changes.requires_existing()
        {
            // Over the budget onto anything: the keys set alone are. (A change set
            // for an existing entry goes to the script, which first finds whether there
            // is one: onto nothing it is `empty`, as on every store.)
            return Err(StoreError::TooLarge { budget, size });
        }
        let mut outcome: String = self
            .execute(Request::Script(&invocation))
            .await
            .map_err(|error| bulk_too_large(error, size))?;
        if outcome.as_bytes() == LEGACY {
            self.convert(&key).await?;
            outcome = self
                .execute(Request::Script(&invocation))
                .await
                .map_err(|error| bulk_too_large(error, size))?;
        }
        match outcome.as_str() {
            "stored" => Ok(Saved::Stored),
            "empty" => Ok(Saved::Empty),
            other => match (other.strip_prefix("too_large "), changes.max_size()) {
                (Some(size), Some(budget)) => Err(StoreError::TooLarge {
                    budget,
                    size: size.parse().unwrap_or(usize::MAX),
                }),
                _ => Err(StoreError::backend("unexpected reply from the save script")),
            },
        }
    }

    /// One script run (see the [module documentation](self)): Redis runs it atomically,
    /// so the field it reads is the one it writes, whatever runs concurrently.
    async fn update(
        &self,
        id: &SessionId,
        key: &str,
        update: &KeyUpdate,
    ) -> Result<Updated, StoreError> {
        self.update_entry(id, key, update, false)
            .await
            .map(|(updated, _)| updated)
    }

    /// The same script run as [`update`](Self::update), which then answers the stored value
    /// too: one round trip.
    async fn update_and_load(
        &self,
        id: &SessionId,
        key: &str,
        update: &KeyUpdate,
    ) -> Result<(Updated, Option<Record>), StoreError> {
        let (updated, entry) = self.update_entry(id, key, update, true).await?;
        let now = SystemTime::now();
        let record = entry
            .map(|entry| decode(&entry))
            .transpose()?
            .filter(|record| !record.is_expired(now));
        Ok((updated, record))
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        let mut command = redis::cmd("DEL");
        command.arg(self.key(id));
        self.execute::<()>(Request::Command(&command)).await
    }

    /// `PING`: to every node of a Redis Cluster.
    async fn ping(&self) -> Result<(), StoreError> {
        let command = redis::cmd("PING");
        self.execute::<()>(Request::Command(&command)).await
    }

    fn name(&self) -> &'static str {
        "redis"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            listable: true,
            list_may_repeat: true,
            in_cookie: false,
            ..Capabilities::default()
        }
    }

    /// `SCAN` through the keys of the store's prefix (each master in turn in a Redis
    /// Cluster), loading each key found; the cursor carries `SCAN`'s own. An entry may
    /// come twice when the keyspace shrinks during the walk.
    async fn list(&self, cursor: Option<&str>, limit: usize) -> Result<Page, StoreError> {
        self.list_page(cursor, limit).await
    }
}

/// What a script answers, writing nothing, when the key holds a session hash of the
/// earlier layout: [`RedisStore::convert`] turns it into a value, and the script is sent
/// again.
const LEGACY: &[u8] = b"legacy";

impl RedisStore {
    /// Converts the session hash of the earlier layout at `key` into a value of this one,
    /// in place, keeping its TTL; gives the value at `key` afterwards (`foreign`, which
    /// does not decode, when the key holds something else).
    async fn convert(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut invocation = CONVERT.prepare_invoke();
        invocation.key(key);
        self.execute(Request::Script(&invocation)).await
    }

    /// Runs the update script until it gives an outcome (see [`UPDATE`]); with
    /// `with_entry`, the script answers the stored value beside it, as the update left it
    /// (`None` when there is none).
    async fn update_entry(
        &self,
        id: &SessionId,
        key: &str,
        update: &KeyUpdate,
        with_entry: bool,
    ) -> Result<(Updated, Option<Vec<u8>>), StoreError> {
        let session = self.key(id);
        let field = key_text(key)?;
        let (mut operation, mut expected, mut new) = match update {
            KeyUpdate::Increment(by) => ("i", by.to_string().into_bytes(), Vec::new()),
            KeyUpdate::Replace { expected, new, .. } => {
                ("r", json_text(expected.as_ref())?, json_text(new.as_ref())?)
            }
        };
        let budget = update.max_size().unwrap_or(0);
        for _ in 0..UPDATE_TRIES {
            let mut invocation = UPDATE.prepare_invoke();
            invocation
                .key(&session)
                .arg(millis(SystemTime::now()))
                .arg(&field)
                .arg(key.len())
                .arg(operation)
                .arg(&expected)
                .arg(&new)
                .arg(budget)
                .arg(if with_entry { "1" } else { "" });
            let reply: Vec<Option<Vec<u8>>> = self
                .execute(Request::Once(&invocation))
                .await
                .map_err(|error| bulk_too_large(error, key.len() + new.len()))?;
            let mut reply = reply.into_iter().map(Option::unwrap_or_default);
            let status = reply.next().unwrap_or_default();
            let raw = reply.next().filter(|raw| !raw.is_empty());
            let entry = reply.next().filter(|entry| !entry.is_empty());
            if status == b"too_large" {
                let size = raw
                    .as_deref()
                    .and_then(|text| std::str::from_utf8(text).ok())
                    .and_then(|text| text.parse().ok())
                    .unwrap_or(usize::MAX);
                return Err(StoreError::TooLarge { budget, size });
            }
            let current: Option<serde_json::Value> = raw
                .as_deref()
                .map(serde_json::from_slice)
                .transpose()
                .map_err(StoreError::decode)?;
            let outcome = match status.as_slice() {
                // The script wrote what the shared rule gives for the field it found.
                b"applied" => update
                    .apply(current.as_ref())
                    .map(Updated::Applied)
                    .map_err(|_| {
                        StoreError::decode("the update script's reply does not fit the update")
                    }),
                b"invalid" => Ok(Updated::Invalid(current)),
                // More digits than the script adds exactly: Satchel adds, and replaces
                // the text it found (an increment out of the 64-bit range is invalid).
                b"exact" => match update.apply(current.as_ref()) {
                    Ok(sum) => {
                        operation = "r";
                        new = json_text(sum.as_ref())?;
                        expected = raw.unwrap_or_default();
                        continue;
                    }
                    Err(refused) => Ok(refused),
                },
                b"mismatch" => match (update, raw) {
                    // The same value in another text: expect that text.
                    (
                        KeyUpdate::Replace {
                            expected: Some(value),
                            ..
                        },
                        Some(raw),
                    ) if current.as_ref() == Some(value) => {
                        expected = raw;
                        continue;
                    }
                    // The text an exact increment expected changed meanwhile: the
                    // increment goes again onto the new value.
                    (KeyUpdate::Increment(by), _) => {
                        (operation, expected, new) = ("i", by.to_string().into_bytes(), Vec::new());
                        continue;
                    }
                    _ => Ok(Updated::Mismatch(current)),
                },
                b"missing" => Ok(Updated::Missing),
                LEGACY => {
                    self.convert(&session).await?;
                    continue;
                }
                b"foreign" => Err(StoreError::decode(
                    "the session key holds another Redis type, not a session value",
                )),
                _ => Err(StoreError::backend(
                    "unexpected reply from the update script",
                )),
            };
            return outcome.map(|updated| (updated, entry));
        }
        Err(StoreError::backend(
            "a session value kept changing to equal values in other texts",
        ))
    }
}

/// A request that Redis refused because an argument is longer than its
/// `proto-max-bulk-len` ("Protocol error: invalid bulk length") as
/// [`StoreError::TooLarge`] for the `size` of the data sent, whose limit is unknown
/// (`0`): the server does not say it. Any other error as it is.
fn bulk_too_large(error: StoreError, size: usize) -> StoreError {
    let refused = match &error {
        StoreError::Backend(source) => source
            .downcast_ref::<redis::RedisError>()
            .is_some_and(|error| error.to_string().contains("invalid bulk length")),
        _ => false,
    };
    if refused {
        StoreError::TooLarge { budget: 0, size }
    } else {
        error
    }
}

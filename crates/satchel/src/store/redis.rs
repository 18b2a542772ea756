//! The `redis` store: sessions in Redis, standalone, in a Redis Cluster or behind Redis
//! Sentinel.
//!
//! # Where the store connects (`SESSION_REDIS`)
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
//! Unix socket. Any other form is a [`ConfigError::Invalid`] naming `SESSION_REDIS`, with
//! the password masked.
//!
//! # Layout
//!
//! One Redis hash per session, at the key `{SESSION_KEY_PREFIX}{id}` (`session:` and the
//! 43-character id by default):
//!
//! ```text
//! HGETALL session:3J8x…   "user"        → "\"ada\""        one field per session key,
//!                         "cart"        → "[1,2]"          its value as JSON
//!                         "\0expires"   → "1767225600000"  expiry, Unix milliseconds
//!                         "\0permanent" → "0"              the per-session flag, when set
//! ```
//!
//! Field names that start with a NUL byte are the store's own; a session key that itself
//! starts with a NUL byte is stored with one more NUL in front, so it can never collide with
//! them. The key also carries a native TTL (`PEXPIREAT` at the expiry), so Redis drops
//! abandoned sessions by itself; the expiry field is checked on every load all the same.
//!
//! # One round trip each, and no lost updates
//!
//! A plain load is one `HGETALL`; the expiry field is checked by Satchel. Refreshes, saves
//! and updates are Lua scripts, sent with `EVALSHA` (and loaded on the fly when the server
//! does not know them yet). Redis runs a script atomically, so:
//!
//! - **refresh** (a load that extends the lifetime, see
//!   [`refresh_granularity`](crate::SessionConfig::refresh_granularity)) reads the hash,
//!   checks the stored expiry against the time of the request, and moves only the expiry
//!   field and the TTL forward: the data fields are never rewritten by a read, so a
//!   refresh can never undo a concurrent write;
//! - **save** applies the request's [`Changes`] onto whatever is stored at that moment
//!   (starting from nothing when the stored entry has expired): `clear` drops the data
//!   fields, removed keys are `HDEL`ed, set keys are `HSET`, the permanent flag is updated;
//!   then the key is deleted when no data is left, or its expiry and TTL are set. Two
//!   requests that set different keys of one session therefore both land. Each call a
//!   script makes into Redis costs about as much as the command itself, so the usual
//!   save makes three: `HGET` of the expiry, one `HSET` of the changed fields together
//!   with the expiry, and `PEXPIREAT` (5.4 µs of Redis CPU per save, measured with
//!   `INFO commandstats`, against 9.8 µs for one call per field);
//! - **update** ([`SessionStore::update`]: an increment or a compare-and-set of one key)
//!   checks that the entry is live and reads the key's field in one `HMGET`, then writes
//!   that field alone: an increment is an `HINCRBY` (Redis adds 64-bit integers itself and
//!   refuses an overflow; the script never does arithmetic on Lua's doubles), after the
//!   script has checked that the field holds the JSON text of an integer; a compare-and-set
//!   compares the field's bytes with the JSON text of the expected value and then `HSET`s
//!   or `HDEL`s it (deleting the key when no data field is left). The expiry, the TTL and
//!   the other fields stay as they are, and nothing is created when there is no live
//!   entry. The script returns the field as it found it, and Satchel derives the outcome
//!   from it: one round trip. Equal JSON values can have different texts (objects keep
//!   their insertion order when serde_json's `preserve_order` feature is on): when the
//!   stored text differs from the expected one but decodes to the same value, the script
//!   is sent again expecting the stored text.
//!
//! [`cycle`](SessionStore::cycle) (a new id at login) cannot be one script, because in a
//! Redis Cluster the old and the new key live in different hash slots. It is two: a
//! script that takes the old entry (reads the hash and deletes it, atomically), then a
//! save of the result under the new id. A save to the old id that lands before the take
//! is carried to the new id; one that lands after it finds no entry and writes nothing
//! (the engine then answers that request with `409`), so no acknowledged change is lost
//! to a log-in. The take is not sent again after an error that may have come once it ran.
//!
//! Expiry times are computed by the application's clock: processes sharing a Redis should
//! keep their clocks in sync (NTP), as for any shared session store.
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
//! Building the store ([`RedisStore::connect`], [`RedisStore::from_config`]) connects once,
//! so a wrong address or password is reported at startup.

use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Client, Cmd, ConnectionAddr, ConnectionInfo, ErrorKind,
    IntoConnectionInfo, Pipeline, RedisError, RedisFuture, RedisResult, Script, ScriptInvocation,
    ServerErrorKind, TlsMode, Value,
};
use tokio::time::Instant;

use crate::SessionConfig;
use crate::error::{ConfigError, StoreError};
use crate::id::SessionId;
use crate::record::{Changes, Data, KeyUpdate, Record, Updated};
use crate::store::{Saved, SessionStore};

/// Where the store connects when SESSION_REDIS is unset: the local server, as
/// Flask-Session does.
pub const DEFAULT_URL: &str = crate::config::DEFAULT_REDIS_URL;

/// Default key prefix (SESSION_KEY_PREFIX).
const DEFAULT_KEY_PREFIX: &str = "session:";
/// Default time limit of one operation (SESSION_STORE_TIMEOUT).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// The configuration key this store reads its URL from.
const URL_KEY: &str = "SESSION_REDIS";
/// What SESSION_REDIS accepts, for error messages.
const URL_FORMS: &str = "redis://[user:password@]host[:port][/db], rediss://…, \
     redis+cluster://host:port,host:port,… or redis+sentinel://host:port,…/master-name[/db]";
/// The default port of a sentinel.
const SENTINEL_PORT: u16 = 26379;

/// The hash field holding the expiry, in Unix milliseconds.
const EXPIRES_FIELD: &[u8] = b"\0expires";
/// The hash field holding the per-session permanent flag (`1` or `0`), when set.
const PERMANENT_FIELD: &[u8] = b"\0permanent";
/// The marker the load script returns instead of fields when the key is not a hash.
const FOREIGN_FIELD: &[u8] = b"\0foreign";
/// Expiry times are sent as milliseconds and compared in Lua, whose numbers are doubles:
/// anything later is clamped to the largest exact integer (a date in the year 287396).
const MAX_MILLIS: u64 = (1 << 53) - 1;

/// The first pause before an operation that could not reach Redis is tried again.
const FIRST_PAUSE: Duration = Duration::from_millis(25);
/// The longest pause between two tries.
const MAX_PAUSE: Duration = Duration::from_millis(200);

/// Loads a session and refreshes its expiry (a plain load is a plain `HGETALL`). KEYS[1]:
/// the session key. ARGV[1]: now; ARGV[2]: the new expiry (Unix milliseconds). Returns nil
/// when the entry is missing or expired, otherwise the hash as field/value pairs, with the
/// expiry moved forward. Data fields are only read.
const LOAD_SCRIPT: &str = r"
local key = KEYS[1]
local kind = redis.call('TYPE', key)['ok']
if kind == 'none' then return false end
if kind ~= 'hash' then return {'\0foreign', kind} end
local fields = redis.call('HGETALL', key)
local at = nil
for i = 1, #fields, 2 do
  if fields[i] == '\0expires' then at = i + 1 break end
end
if at == nil then return fields end
local expires = tonumber(fields[at])
if expires == nil then return fields end
if expires <= tonumber(ARGV[1]) then return false end
if ARGV[2] ~= '' and tonumber(ARGV[2]) > expires then
  redis.call('HSET', key, '\0expires', ARGV[2])
  redis.call('PEXPIREAT', key, ARGV[2])
  fields[at] = ARGV[2]
end
return fields
";

/// Applies a change set. KEYS[1]: the session key. ARGV: now, the new expiry (Unix
/// milliseconds), flags (``, `c` to clear, `e` to apply only onto a live entry, or `ce`),
/// the number of removed fields, the number of data fields to set, the removed fields,
/// then field/value pairs to set: the data fields, then the store's own (expiry and
/// permanent flag). Returns `stored`, or `empty` when no data is left and the key was
/// deleted (or, with `e`, when there was no live entry and nothing was written).
///
/// Every call into Redis from a script costs about as much as the command itself, so the
/// common case is three: a live entry with changed fields costs an `HGET`, one `HSET`
/// (data, expiry and flag together) and a `PEXPIREAT`. Long argument lists are sent in
/// slices the Lua stack can take (of an even size, so pairs stay together).
const SAVE_SCRIPT: &str = r"
local key = KEYS[1]
local flags = ARGV[3]
-- Anything but a live session hash (expired, without an expiry, another type: an error
-- for HGET, caught here) is replaced.
local expires = redis.pcall('HGET', key, '\0expires')
local live = type(expires) == 'string' and (tonumber(expires) or 0) > tonumber(ARGV[1])
if not live then
  redis.call('DEL', key)
  if flags == 'e' or flags == 'ce' then return 'empty' end
end
local removals = tonumber(ARGV[4])
local first = 6 + removals
if live then
  if flags == 'c' or flags == 'ce' then
    local removed = {}
    for _, field in ipairs(redis.call('HKEYS', key)) do
      local a, b = string.byte(field, 1, 2)
      if a ~= 0 or b == 0 then removed[#removed + 1] = field end
    end
    for i = 1, #removed, 1000 do
      redis.call('HDEL', key, unpack(removed, i, math.min(i + 999, #removed)))
    end
  end
  for i = 6, first - 1, 1000 do
    redis.call('HDEL', key, unpack(ARGV, i, math.min(i + 999, first - 1)))
  end
end
if ARGV[5] == '0' then
  local has_data = false
  if live then
    for _, field in ipairs(redis.call('HKEYS', key)) do
      local a, b = string.byte(field, 1, 2)
      if a ~= 0 or b == 0 then has_data = true break end
    end
  end
  if not has_data then
    if live then redis.call('DEL', key) end
    return 'empty'
  end
end
for i = first, #ARGV, 1000 do
  redis.call('HSET', key, unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('PEXPIREAT', key, ARGV[2])
return 'stored'
";

/// Applies one [`KeyUpdate`] to one data field. KEYS[1]: the session key. ARGV: now (Unix
/// milliseconds), the field, the operation (`i` to increment, `r` to replace), then for
/// `i` the amount (a decimal 64-bit integer) and an unused empty argument, for `r` the
/// expected and the new JSON text (empty: the field is absent; JSON text is never empty).
/// Returns `{status}` when the field was absent, `{status, field}` with the field's bytes
/// as found otherwise; the status is `applied`, `mismatch` (`r`: the field does not hold
/// the expected text), `invalid` (`i`: the field is not the JSON text of an integer, or
/// the sum leaves the 64-bit range), `missing` (no live entry: nothing written) or
/// `foreign` (the key is not a hash).
///
/// Lua numbers are doubles, so the script never does arithmetic: `HINCRBY` adds in Redis,
/// and the new value is computed again by Satchel from the field as found. The usual
/// increment costs two calls (`HMGET`, `HINCRBY`), a compare-and-set two (`HMGET`, `HSET`).
const UPDATE_SCRIPT: &str = r"
local key = KEYS[1]
local field = ARGV[2]
-- Another type than a hash is an error for HMGET, caught here.
local got = redis.pcall('HMGET', key, '\0expires', field)
if got['err'] then return {'foreign'} end
local expires, raw = got[1], got[2]
if type(expires) ~= 'string' or (tonumber(expires) or 0) <= tonumber(ARGV[1]) then
  return {'missing'}
end
local function reply(status)
  if raw then return {status, raw} end
  return {status}
end
if ARGV[3] == 'i' then
  -- JSON's integer text, which is also the integer text HINCRBY takes.
  if raw and raw ~= '0' and not string.find(raw, '^%-?[1-9][0-9]*$') then
    return reply('invalid')
  end
  local sum = redis.pcall('HINCRBY', key, field, ARGV[4])
  if type(sum) == 'table' then
    local err = sum['err'] or ''
    if string.find(err, 'overflow', 1, true) or string.find(err, 'not an integer', 1, true) then
      return reply('invalid')
    end
    return sum
  end
  return reply('applied')
end
if ARGV[4] == '' then
  if raw then return reply('mismatch') end
elseif raw ~= ARGV[4] then
  return reply('mismatch')
end
if ARGV[5] ~= '' then
  redis.call('HSET', key, field, ARGV[5])
elseif raw then
  redis.call('HDEL', key, field)
  for _, name in ipairs(redis.call('HKEYS', key)) do
    local a, b = string.byte(name, 1, 2)
    if a ~= 0 or b == 0 then return reply('applied') end
  end
  redis.call('DEL', key)
end
return reply('applied')
";

/// How many times an update is sent when the stored text of a key keeps differing from
/// the expected one while decoding to the same value (see the module documentation).
const UPDATE_TRIES: usize = 8;

/// Takes an entry: reads the hash and deletes it, atomically. KEYS[1]: the session key.
/// Returns nil when there is none, the foreign marker (and deletes nothing) when the key
/// holds another type, otherwise the hash as field/value pairs (expired or not: Satchel
/// checks the expiry).
const TAKE_SCRIPT: &str = r"
local key = KEYS[1]
local kind = redis.call('TYPE', key)['ok']
if kind == 'none' then return false end
if kind ~= 'hash' then return {'\0foreign', kind} end
local fields = redis.call('HGETALL', key)
redis.call('DEL', key)
return fields
";

static TAKE: LazyLock<Script> = LazyLock::new(|| Script::new(TAKE_SCRIPT));
static LOAD: LazyLock<Script> = LazyLock::new(|| Script::new(LOAD_SCRIPT));
static SAVE: LazyLock<Script> = LazyLock::new(|| Script::new(SAVE_SCRIPT));
static UPDATE: LazyLock<Script> = LazyLock::new(|| Script::new(UPDATE_SCRIPT));

/// A store that keeps sessions in Redis (SESSION_TYPE=`redis`): one server, a Redis
/// Cluster, or the master named by Redis Sentinel.
///
/// Each session is one Redis hash with a native TTL; a load is one `HGETALL` and a save
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
///     .connect()
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

/// How the Redis behind a [`RedisStore`] is deployed, as the URL said.
///
/// # Examples
///
/// ```no_run
/// use satchel::RedisStore;
/// use satchel::store::redis::Topology;
///
/// # tokio_test::block_on(async {
/// let store = RedisStore::connect("redis+cluster://10.0.0.1:7000,10.0.0.2:7000").await?;
/// assert_eq!(store.topology(), Topology::Cluster);
/// # Ok::<_, satchel::ConfigError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Topology {
    /// One server (`redis://`, `rediss://`, `unix://`).
    Standalone,
    /// A Redis Cluster (`redis+cluster://`).
    Cluster,
    /// The master named by Redis Sentinel (`redis+sentinel://`).
    Sentinel,
}

/// Settings for a [`RedisStore`], made by [`RedisStore::builder`] and turned into a store
/// by [`connect`](Self::connect).
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use satchel::RedisStore;
///
/// # tokio_test::block_on(async {
/// let store = RedisStore::builder("redis+sentinel://10.0.0.5:26379,10.0.0.6:26379/main")
///     .with_key_prefix("shop:")
///     .with_timeout(Duration::from_secs(1))
///     .connect()
///     .await?;
/// # let _ = store;
/// # Ok::<_, satchel::ConfigError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
#[must_use]
pub struct RedisStoreBuilder {
    url: String,
    key_prefix: String,
    timeout: Duration,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("url", &mask(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl RedisStoreBuilder {
    /// Sets the prefix of every session key (SESSION_KEY_PREFIX, default `session:`), so
    /// that sessions can share a Redis with other data or other applications.
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Sets the time limit of connecting and of every operation, retries included
    /// (SESSION_STORE_TIMEOUT, default 2 s): past it an operation fails with
    /// [`StoreError::Backend`], so a request fails fast while Redis is unreachable.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Connects to Redis and returns the store.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when the URL is not one of the accepted forms, and
    /// [`ConfigError::Io`] when Redis cannot be reached or refuses the connection (a wrong
    /// password, an unknown Sentinel master name) within the timeout. Both name
    /// `SESSION_REDIS` and mask the password.
    pub async fn connect(self) -> Result<RedisStore, ConfigError> {
        let target = parse(&self.url).map_err(|reason| ConfigError::Invalid {
            key: URL_KEY.to_owned(),
            value: mask(&self.url),
            expected: format!("{URL_FORMS} ({reason})"),
        })?;
        if target.uses_tls() {
            // The TLS connections need a process-wide crypto provider; when the
            // application installed one already, that one is used.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let unreachable = |message: String| ConfigError::Io {
            key: URL_KEY.to_owned(),
            path: mask(&self.url),
            message,
        };
        let backend = tokio::time::timeout(self.timeout, Backend::open(target, self.timeout))
            .await
            .map_err(|_| unreachable(format!("Redis did not answer within {:?}", self.timeout)))?
            .map_err(|error| unreachable(format!("cannot connect to Redis: {error}")))?;
        Ok(RedisStore {
            inner: Arc::new(Inner {
                backend,
                key_prefix: self.key_prefix,
                timeout: self.timeout,
                url: mask(&self.url),
            }),
        })
    }
}

impl RedisStore {
    /// Settings for a store at `url` (see the [module documentation](self) for the forms),
    /// with the default key prefix and timeout.
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

    /// Connects to the Redis at `url` with the default key prefix (`session:`) and timeout
    /// (2 s).
    ///
    /// # Errors
    ///
    /// As [`RedisStoreBuilder::connect`].
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio_test::block_on(async {
    /// // A malformed URL is refused before anything is contacted.
    /// let error = satchel::RedisStore::connect("redis+sentinel://:pw@10.0.0.5:26379")
    ///     .await
    ///     .unwrap_err();
    /// let message = error.to_string();
    /// assert!(message.contains("SESSION_REDIS") && message.contains("master"));
    /// assert!(!message.contains("pw@"));
    /// # });
    /// ```
    pub async fn connect(url: &str) -> Result<Self, ConfigError> {
        Self::builder(url).connect().await
    }

    /// Connects as SESSION_REDIS says (default [`DEFAULT_URL`]), with SESSION_KEY_PREFIX and
    /// SESSION_STORE_TIMEOUT.
    ///
    /// # Errors
    ///
    /// As [`RedisStoreBuilder::connect`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use satchel::{RedisStore, SessionConfig, SessionType};
    ///
    /// # tokio_test::block_on(async {
    /// let config = SessionConfig::default()
    ///     .with_session_type(SessionType::Redis)
    ///     .with_redis_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000");
    /// let store = RedisStore::from_config(&config).await?;
    /// # let _ = store;
    /// # Ok::<_, satchel::ConfigError>(())
    /// # }).unwrap();
    /// ```
    pub async fn from_config(config: &SessionConfig) -> Result<Self, ConfigError> {
        Self::builder(config.redis_url().unwrap_or(DEFAULT_URL))
            .with_key_prefix(config.key_prefix())
            .with_timeout(config.store_timeout())
            .connect()
            .await
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
        format!("{}{id}", self.inner.key_prefix)
    }

    /// Sends `request`, trying again while the server cannot be reached, all within the
    /// store's timeout.
    async fn execute<T>(&self, request: Request<'_>) -> Result<T, StoreError>
    where
        T: redis::FromRedisValue + Send,
    {
        let timeout = self.inner.timeout;
        let deadline = Instant::now() + timeout;
        let tries = async {
            let mut pause = FIRST_PAUSE;
            loop {
                match self.attempt(&request).await {
                    Err(error)
                        if request.may_retry(&error) && Instant::now() + pause < deadline =>
                    {
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(MAX_PAUSE);
                    }
                    result => return result,
                }
            }
        };
        match tokio::time::timeout_at(deadline, tries).await {
            Ok(Err(error)) if error.code() == Some("WRONGTYPE") => Err(StoreError::decode(
                "the session key holds another Redis type, not a hash",
            )),
            Ok(result) => result.map_err(StoreError::backend),
            Err(_) => Err(StoreError::backend(NoAnswer(timeout))),
        }
    }

    async fn attempt<T>(&self, request: &Request<'_>) -> RedisResult<T>
    where
        T: redis::FromRedisValue + Send,
    {
        let mut lease = self.inner.backend.lease().await?;
        let result = match request {
            Request::Script(invocation) | Request::Once(invocation) => {
                invocation.invoke_async(&mut lease.conn).await
            }
            Request::Command(command) => command.query_async(&mut lease.conn).await,
        };
        lease.settle(result.as_ref().err());
        result
    }
}

impl SessionStore for RedisStore {
    async fn load(
        &self,
        id: &SessionId,
        touch: Option<SystemTime>,
    ) -> Result<Option<Record>, StoreError> {
        let key = self.key(id);
        let now = SystemTime::now();
        let Some(touch) = touch else {
            // A plain read is a plain HGETALL: cheaper for Redis than running a script.
            let mut command = redis::cmd("HGETALL");
            command.arg(&key);
            let fields: Vec<Vec<u8>> = self.execute(Request::Command(&command)).await?;
            if fields.is_empty() {
                return Ok(None);
            }
            return Ok(Some(decode(fields)?).filter(|record| !record.is_expired(now)));
        };
        let mut invocation = LOAD.prepare_invoke();
        invocation.key(&key).arg(millis(now)).arg(millis(touch));
        let fields: Option<Vec<Vec<u8>>> = self.execute(Request::Script(&invocation)).await?;
        fields.map(decode).transpose()
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
        invocation.key(self.key(old));
        let fields: Option<Vec<Vec<u8>>> = self.execute(Request::Once(&invocation)).await?;
        let now = SystemTime::now();
        let base = match fields.map(decode).transpose() {
            Ok(record) => record.filter(|record| !record.is_expired(now)),
            // A foreign or corrupt value is left alone, as a load leaves it.
            Err(StoreError::Decode(_)) => None,
            Err(error) => return Err(error),
        };
        super::save_moved(self, new, base, changes, expires_at).await
    }

    async fn save(
        &self,
        id: &SessionId,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        let key = self.key(id);
        let expires = millis(expires_at);
        let mut invocation = SAVE.prepare_invoke();
        invocation
            .key(&key)
            .arg(millis(SystemTime::now()))
            .arg(expires)
            .arg(match (changes.is_clear(), changes.requires_existing()) {
                (false, false) => "",
                (true, false) => "c",
                (false, true) => "e",
                (true, true) => "ce",
            })
            .arg(changes.removals().len())
            .arg(changes.sets().len());
        for key in changes.removals() {
            invocation.arg(field_name(key));
        }
        for (key, value) in changes.sets() {
            let json = serde_json::to_vec(value).map_err(StoreError::encode)?;
            invocation.arg(field_name(key)).arg(json);
        }
        invocation.arg(EXPIRES_FIELD).arg(expires);
        match changes.permanent() {
            Some(true) => invocation.arg(PERMANENT_FIELD).arg("1"),
            Some(false) => invocation.arg(PERMANENT_FIELD).arg("0"),
            None => &mut invocation,
        };
        let outcome: String = self.execute(Request::Script(&invocation)).await?;
        match outcome.as_str() {
            "stored" => Ok(Saved::Stored),
            "empty" => Ok(Saved::Empty),
            _ => Err(StoreError::backend("unexpected reply from the save script")),
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
        let session = self.key(id);
        let field = field_name(key);
        let (operation, mut expected, new) = match update {
            KeyUpdate::Increment(by) => ("i", by.to_string().into_bytes(), Vec::new()),
            KeyUpdate::Replace { expected, new } => {
                ("r", json_text(expected.as_ref())?, json_text(new.as_ref())?)
            }
        };
        for _ in 0..UPDATE_TRIES {
            let mut invocation = UPDATE.prepare_invoke();
            invocation
                .key(&session)
                .arg(millis(SystemTime::now()))
                .arg(&field)
                .arg(operation)
                .arg(&expected)
                .arg(&new);
            let reply: Vec<Vec<u8>> = self.execute(Request::Once(&invocation)).await?;
            let mut reply = reply.into_iter();
            let status = reply.next().unwrap_or_default();
            let raw = reply.next();
            let current: Option<serde_json::Value> = raw
                .as_deref()
                .map(serde_json::from_slice)
                .transpose()
                .map_err(StoreError::decode)?;
            return match status.as_slice() {
                // The script wrote what the shared rule gives for the field it found.
                b"applied" => update
                    .apply(current.as_ref())
                    .map(Updated::Applied)
                    .map_err(|_| {
                        StoreError::decode("the update script's reply does not fit the update")
                    }),
                b"invalid" => Ok(Updated::Invalid(current)),
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
                    _ => Ok(Updated::Mismatch(current)),
                },
                b"missing" => Ok(Updated::Missing),
                b"foreign" => Err(StoreError::decode(
                    "the session key holds another Redis type, not a hash",
                )),
                _ => Err(StoreError::backend(
                    "unexpected reply from the update script",
                )),
            };
        }
        Err(StoreError::backend(
            "a session value kept changing to equal values in other texts",
        ))
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        let mut command = redis::cmd("DEL");
        command.arg(self.key(id));
        self.execute::<()>(Request::Command(&command)).await
    }
}

/// One thing to send: a script or a plain command.
enum Request<'a> {
    Script(&'a ScriptInvocation<'a>),
    Command(&'a Cmd),
    /// A script that must not run twice (an update: an increment sent again after it ran
    /// would add twice).
    Once(&'a ScriptInvocation<'a>),
}

impl Request<'_> {
    /// Whether the request may be sent again after `error`. A script that must not run
    /// twice is sent again only when it cannot have run: the server refused it (loading,
    /// read-only, cluster down) or the connection was refused; an I/O error may also come
    /// after it ran, with only its reply lost.
    fn may_retry(&self, error: &RedisError) -> bool {
        is_transient(error)
            && match self {
                Self::Script(_) | Self::Command(_) => true,
                Self::Once(_) => !error.is_io_error() || error.is_connection_refusal(),
            }
    }
}

/// The JSON text of `value` for the update script; empty for an absent value.
fn json_text(value: Option<&serde_json::Value>) -> Result<Vec<u8>, StoreError> {
    value.map_or_else(
        || Ok(Vec::new()),
        |value| serde_json::to_vec(value).map_err(StoreError::encode),
    )
}

/// No answer from Redis within the store's timeout.
#[derive(Debug)]
struct NoAnswer(Duration);

impl fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redis did not answer within {:?}", self.0)
    }
}

impl std::error::Error for NoAnswer {}

/// Unix milliseconds of `at` (0 before 1970), clamped to what the scripts compare exactly.
fn millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
        .min(MAX_MILLIS)
}

/// The hash field of a session key: the key itself, with one more NUL in front when it
/// starts with a NUL (the store's own fields start with one).
fn field_name(key: &str) -> Vec<u8> {
    let mut field = Vec::with_capacity(key.len() + 1);
    if key.starts_with('\0') {
        field.push(0);
    }
    field.extend_from_slice(key.as_bytes());
    field
}

/// Turns the load script's field/value pairs into a record.
fn decode(fields: Vec<Vec<u8>>) -> Result<Record, StoreError> {
    if !fields.len().is_multiple_of(2) {
        return Err(StoreError::decode("odd number of fields in a session hash"));
    }
    let mut data = Data::new();
    let mut expires = None;
    let mut permanent = None;
    let mut fields = fields.into_iter();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        match name.as_slice() {
            [0, 0, ..] => insert(&mut data, &name[1..], &value)?,
            FOREIGN_FIELD => {
                return Err(StoreError::decode(
                    "the session key holds another Redis type, not a hash",
                ));
            }
            EXPIRES_FIELD => {
                let at = std::str::from_utf8(&value)
                    .ok()
                    .and_then(|text| text.parse::<u64>().ok())
                    .ok_or_else(|| StoreError::decode("malformed expiry in a session hash"))?;
                expires = Some(UNIX_EPOCH + Duration::from_millis(at));
            }
            PERMANENT_FIELD => {
                permanent = Some(match value.as_slice() {
                    b"1" => true,
                    b"0" => false,
                    _ => {
                        return Err(StoreError::decode(
                            "malformed permanent flag in a session hash",
                        ));
                    }
                });
            }
            // Other fields of the store's own are ignored.
            [0, ..] => {}
            _ => insert(&mut data, &name, &value)?,
        }
    }
    let expires_at = expires.ok_or_else(|| StoreError::decode("session hash without an expiry"))?;
    Ok(Record {
        data,
        expires_at,
        permanent,
        version: None,
    })
}

/// Decodes one data field into `data`.
fn insert(data: &mut Data, name: &[u8], value: &[u8]) -> Result<(), StoreError> {
    let key = std::str::from_utf8(name)
        .map_err(|_| StoreError::decode("a session key stored in Redis is not UTF-8"))?;
    let value = serde_json::from_slice(value).map_err(StoreError::decode)?;
    data.insert(key.to_owned(), value);
    Ok(())
}

/// Whether an operation that failed with `error` may succeed when tried again shortly:
/// the server could not be reached, or is not ready to take writes yet.
fn is_transient(error: &RedisError) -> bool {
    match error.kind() {
        ErrorKind::Io => !error.is_timeout(),
        // During a failover the sentinels may briefly name no master that confirms it is
        // one.
        ErrorKind::ClusterConnectionNotFound | ErrorKind::MasterNameNotFoundBySentinel => true,
        ErrorKind::Server(kind) => matches!(
            kind,
            ServerErrorKind::ReadOnly
                | ServerErrorKind::MasterDown
                | ServerErrorKind::BusyLoading
                | ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
        ),
        _ => false,
    }
}

/// Whether `error` says something about the connection itself rather than the request:
/// it broke, timed out, or reaches a server that cannot serve the store (still loading,
/// demoted to a replica, refusing the credentials).
fn is_connection_error(error: &RedisError) -> bool {
    match error.kind() {
        ErrorKind::Io
        | ErrorKind::Parse
        | ErrorKind::AuthenticationFailed
        | ErrorKind::ClusterConnectionNotFound => true,
        ErrorKind::Server(kind) => matches!(
            kind,
            ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown | ServerErrorKind::BusyLoading
        ),
        _ => false,
    }
}

/// The connections of one topology, behind one interface.
enum Backend {
    Standalone(Box<Standalone>),
    Cluster(ClusterConnection),
    Sentinel(Box<Sentinel>),
}

impl Backend {
    /// Connects to `target`: each command and each connection attempt is limited to
    /// `timeout`.
    async fn open(target: Target, timeout: Duration) -> RedisResult<Self> {
        match target {
            Target::Standalone(info) => {
                let client = Client::open(info)?;
                // One attempt per reconnection: the store tries again itself, within its
                // own time limit (see `RedisStore::execute`).
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(0);
                let manager =
                    ConnectionManager::new_with_config(client.clone(), config.clone()).await?;
                Ok(Self::Standalone(Box::new(Standalone {
                    client,
                    config,
                    slot: Mutex::new(Slot {
                        generation: 0,
                        connection: Some(manager),
                    }),
                })))
            }
            Target::Cluster(nodes) => {
                let client = ClusterClientBuilder::new(nodes)
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .build()?;
                Ok(Self::Cluster(client.get_async_connection().await?))
            }
            Target::Sentinel {
                sentinels,
                master,
                node,
            } => {
                let client = SentinelClient::build(
                    sentinels,
                    master,
                    Some(node),
                    SentinelServerType::Master,
                )?;
                let sentinel = Sentinel {
                    resolver: tokio::sync::Mutex::new(client),
                    config: AsyncConnectionConfig::new()
                        .set_connection_timeout(Some(timeout))
                        .set_response_timeout(Some(timeout)),
                    slot: Mutex::new(Slot {
                        generation: 0,
                        connection: None,
                    }),
                };
                // Resolve the master once now, so that a wrong name fails at startup.
                let lease = sentinel.connection().await?;
                drop(lease);
                Ok(Self::Sentinel(Box::new(sentinel)))
            }
        }
    }

    /// A connection for one attempt.
    async fn lease(&self) -> RedisResult<Lease<'_>> {
        let (generation, conn) = match self {
            Self::Standalone(standalone) => {
                let (generation, manager) = standalone.connection()?;
                (generation, Conn::Managed(manager))
            }
            Self::Cluster(cluster) => (0, Conn::Cluster(cluster.clone())),
            Self::Sentinel(sentinel) => {
                let (generation, connection) = sentinel.connection().await?;
                (generation, Conn::Plain(connection))
            }
        };
        Ok(Lease {
            backend: self,
            conn,
            generation,
            settled: false,
        })
    }

    /// Whether a connection that gave `error` should be replaced.
    fn replace_after(&self, error: &RedisError) -> bool {
        match self {
            // The connection manager reconnects by itself after I/O errors; it keeps a
            // failed handshake (a server still loading, refused credentials) and a
            // connection that stopped answering, so those are replaced.
            Self::Standalone(_) => {
                error.is_timeout() || (is_connection_error(error) && !error.is_io_error())
            }
            Self::Cluster(_) => false,
            Self::Sentinel(_) => is_connection_error(error),
        }
    }

    /// Drops the connection of `generation`, if it is still the current one; the next
    /// operation opens a new one.
    fn discard(&self, generation: u64) {
        match self {
            Self::Standalone(standalone) => standalone.slot.discard(generation),
            Self::Cluster(_) => {}
            Self::Sentinel(sentinel) => sentinel.slot.discard(generation),
        }
    }
}

/// A connection lent to one attempt. Unless the attempt settles it (succeeded, or failed
/// for a reason unrelated to the connection), the connection is discarded when the lease
/// is dropped: also when the attempt was cut short by the store's timeout.
struct Lease<'a> {
    backend: &'a Backend,
    conn: Conn,
    generation: u64,
    settled: bool,
}

impl Lease<'_> {
    fn settle(&mut self, error: Option<&RedisError>) {
        self.settled = error.is_none_or(|error| !self.backend.replace_after(error));
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.backend.discard(self.generation);
        }
    }
}

/// The current connection of a topology that the store manages itself, numbered so that a
/// failed attempt only discards the connection it used.
struct Slot<C> {
    generation: u64,
    connection: Option<C>,
}

trait SlotExt<C> {
    fn locked(&self) -> MutexGuard<'_, Slot<C>>;
    fn discard(&self, generation: u64);
}

impl<C> SlotExt<C> for Mutex<Slot<C>> {
    fn locked(&self) -> MutexGuard<'_, Slot<C>> {
        // The slot is consistent at every instant, so a poisoned lock is taken over.
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn discard(&self, generation: u64) {
        let mut slot = self.locked();
        if slot.generation == generation {
            slot.connection = None;
        }
    }
}

/// One server, through a connection manager.
struct Standalone {
    client: Client,
    config: ConnectionManagerConfig,
    slot: Mutex<Slot<ConnectionManager>>,
}

impl Standalone {
    fn connection(&self) -> RedisResult<(u64, ConnectionManager)> {
        let mut slot = self.slot.locked();
        if let Some(manager) = &slot.connection {
            return Ok((slot.generation, manager.clone()));
        }
        // Connects on first use, within the attempt that needs it.
        let manager =
            ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone())?;
        slot.generation += 1;
        slot.connection = Some(manager.clone());
        Ok((slot.generation, manager))
    }
}

/// The master named by the sentinels, through one multiplexed connection that is
/// replaced, after asking the sentinels again, whenever it fails.
struct Sentinel {
    /// Held while the master is looked up, so that concurrent requests wait for one
    /// lookup instead of each making their own.
    resolver: tokio::sync::Mutex<SentinelClient>,
    config: AsyncConnectionConfig,
    slot: Mutex<Slot<MultiplexedConnection>>,
}

impl Sentinel {
    async fn connection(&self) -> RedisResult<(u64, MultiplexedConnection)> {
        if let Some(current) = self.current() {
            return Ok(current);
        }
        let mut resolver = self.resolver.lock().await;
        if let Some(current) = self.current() {
            return Ok(current);
        }
        let master = resolver.async_get_client().await?;
        let connection = master
            .get_multiplexed_async_connection_with_config(&self.config)
            .await?;
        let mut slot = self.slot.locked();
        slot.generation += 1;
        slot.connection = Some(connection.clone());
        Ok((slot.generation, connection))
    }

    fn current(&self) -> Option<(u64, MultiplexedConnection)> {
        let slot = self.slot.locked();
        slot.connection
            .as_ref()
            .map(|connection| (slot.generation, connection.clone()))
    }
}

/// A connection of any topology.
enum Conn {
    Managed(ConnectionManager),
    Cluster(ClusterConnection),
    Plain(MultiplexedConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Managed(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
            Self::Plain(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Managed(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Plain(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Managed(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
            Self::Plain(conn) => conn.get_db(),
        }
    }
}

/// What a SESSION_REDIS URL points at.
enum Target {
    Standalone(ConnectionInfo),
    Cluster(Vec<ConnectionInfo>),
    Sentinel {
        sentinels: Vec<ConnectionInfo>,
        master: String,
        node: SentinelNodeConnectionInfo,
    },
}

impl Target {
    fn uses_tls(&self) -> bool {
        let tls = |info: &ConnectionInfo| matches!(info.addr(), ConnectionAddr::TcpTls { .. });
        match self {
            Self::Standalone(info) => tls(info),
            Self::Cluster(nodes) => nodes.iter().any(tls),
            Self::Sentinel { sentinels, .. } => sentinels.iter().any(tls),
        }
    }
}

/// Parses a SESSION_REDIS URL; the error says what is wrong, without quoting the URL.
fn parse(url: &str) -> Result<Target, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| "no scheme".to_owned())?;
    let scheme = scheme.to_ascii_lowercase();
    let (base, topology) = match scheme.split_once('+') {
        Some((base @ ("redis" | "rediss"), topology @ ("cluster" | "sentinel"))) => {
            (base, topology)
        }
        _ => {
            return match scheme.as_str() {
                "redis" | "rediss" | "valkey" | "valkeys" | "unix" | "redis+unix"
                | "valkey+unix" => url
                    .into_connection_info()
                    .map(Target::Standalone)
                    .map_err(|error| describe(&error)),
                other => Err(format!("unknown scheme {other:?}")),
            };
        }
    };

    // authority = [userinfo@]host,host,…; then an optional path, query and fragment.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    let (tail, fragment) = match tail.find('#') {
        Some(at) => tail.split_at(at),
        None => (tail, ""),
    };
    let (path, query) = match tail.find('?') {
        Some(at) => tail.split_at(at),
        None => (tail, ""),
    };
    let hosts: Vec<&str> = hosts.split(',').collect();
    if hosts.iter().any(|host| host.is_empty()) {
        return Err("an empty host in the host list".to_owned());
    }

    if topology == "cluster" {
        let nodes = hosts
            .iter()
            .map(|host| {
                format!("{base}://{userinfo}{host}{path}{query}{fragment}")
                    .into_connection_info()
                    .map_err(|error| describe(&error))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if nodes.iter().any(|node| node.redis_settings().db() != 0) {
            return Err("a Redis Cluster has database 0 only".to_owned());
        }
        return Ok(Target::Cluster(nodes));
    }

    // Sentinel: the path is /master-name[/db].
    let mut segments = path.trim_start_matches('/').split('/');
    let master = segments.next().unwrap_or_default();
    if master.is_empty() {
        return Err("the Sentinel form needs a master name: /master-name[/db]".to_owned());
    }
    let db = segments.next().unwrap_or_default();
    if segments.next().is_some() {
        return Err("the path after the hosts is /master-name[/db]".to_owned());
    }
    if !query.is_empty() {
        return Err("the Sentinel form takes no query".to_owned());
    }
    // The master's settings (credentials, database, TLS) come from the same URL with a
    // stand-in host; the sentinels themselves get no credentials.
    let master_info = format!("{base}://{userinfo}localhost/{db}{fragment}")
        .into_connection_info()
        .map_err(|error| describe(&error))?;
    let mut node = SentinelNodeConnectionInfo::default()
        .set_redis_connection_info(master_info.redis_settings().clone());
    if let ConnectionAddr::TcpTls { insecure, .. } = master_info.addr() {
        node = node.set_tls_mode(if *insecure {
            TlsMode::Insecure
        } else {
            TlsMode::Secure
        });
    }
    let sentinels = hosts
        .iter()
        .map(|host| {
            let host = if has_port(host) {
                (*host).to_owned()
            } else {
                format!("{host}:{SENTINEL_PORT}")
            };
            format!("{base}://{host}/{fragment}")
                .into_connection_info()
                .map_err(|error| describe(&error))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Target::Sentinel {
        sentinels,
        master: master.to_owned(),
        node,
    })
}

/// Whether `host` (`name`, `name:port`, `[v6]` or `[v6]:port`) names a port.
fn has_port(host: &str) -> bool {
    match host.rfind(']') {
        Some(bracket) => host[bracket..].contains(':'),
        None => host.contains(':'),
    }
}

/// What the client library found wrong in a URL (its messages never quote the URL).
fn describe(error: &RedisError) -> String {
    error.to_string()
}

/// `url` with the password (if any) replaced by `<redacted>`.
fn mask(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let start = scheme_end + 3;
    let rest = &url[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let Some(colon) = authority[..at].find(':') else {
        return url.to_owned();
    };
    format!(
        "{}{}<redacted>{}",
        &url[..start],
        &authority[..=colon],
        &url[start + at..]
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn reason(url: &str) -> String {
        match parse(url) {
            Ok(_) => panic!("{url} should be refused"),
            Err(reason) => reason,
        }
    }

    #[test]
    fn the_accepted_forms_parse_to_their_topology() {
        assert!(matches!(
            parse("redis://127.0.0.1:6379/3").unwrap(),
            Target::Standalone(info) if info.redis_settings().db() == 3
        ));
        assert!(matches!(
            parse("redis://:pw@cache").unwrap(),
            Target::Standalone(info) if info.redis_settings().password() == Some("pw")
        ));
        let Target::Cluster(nodes) = parse("redis+cluster://u:p@a:7001,b:7002,[::1]:7003").unwrap()
        else {
            panic!("cluster")
        };
        assert_eq!(nodes.len(), 3);
        assert!(
            nodes
                .iter()
                .all(|n| n.redis_settings().password() == Some("p"))
        );
        assert_eq!(
            nodes[2].addr(),
            &ConnectionAddr::Tcp("::1".to_owned(), 7003)
        );
        let Target::Sentinel {
            sentinels, master, ..
        } = parse("redis+sentinel://:pw@s1,s2:26390/main/2").unwrap()
        else {
            panic!("sentinel")
        };
        assert_eq!(master, "main");
        assert_eq!(
            sentinels[0].addr(),
            &ConnectionAddr::Tcp("s1".to_owned(), SENTINEL_PORT)
        );
        assert_eq!(
            sentinels[1].addr(),
            &ConnectionAddr::Tcp("s2".to_owned(), 26390)
        );
        assert!(
            sentinels
                .iter()
                .all(|s| s.redis_settings().password().is_none())
        );
        assert!(parse("rediss://cache:6380").unwrap().uses_tls());
        assert!(parse("rediss+cluster://a:1,b:2").unwrap().uses_tls());
        assert!(parse("rediss+sentinel://a/m").unwrap().uses_tls());
        assert!(!parse("redis+sentinel://a/m").unwrap().uses_tls());
    }

    #[test]
    fn malformed_forms_are_refused_with_a_reason() {
        assert!(reason("127.0.0.1:6379").contains("scheme"));
        assert!(reason("http://cache").contains("scheme"));
        assert!(reason("redis+sentinel://s1:26379").contains("master name"));
        assert!(reason("redis+sentinel://s1/m/1/x").contains("/master-name[/db]"));
        assert!(reason("redis+cluster://a:1,,b:2").contains("empty host"));
        assert!(reason("redis+cluster://a:1,b:2/4").contains("database 0"));
        assert!(!reason("redis://cache/notanumber").is_empty());
    }

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            mask("redis+sentinel://user:s3cret@a:1,b:2/m"),
            "redis+sentinel://user:<redacted>@a:1,b:2/m"
        );
        assert_eq!(mask("redis://cache:6379/0"), "redis://cache:6379/0");
        assert_eq!(mask("redis://name@cache"), "redis://name@cache");
    }

    #[test]
    fn user_keys_never_collide_with_the_store_fields() {
        assert_eq!(field_name("user"), b"user");
        assert_eq!(field_name("\0expires"), b"\0\0expires");
        let fields = vec![
            field_name("\0expires"),
            b"1".to_vec(),
            EXPIRES_FIELD.to_vec(),
            b"1000".to_vec(),
            b"plain".to_vec(),
            b"\"x\"".to_vec(),
        ];
        let record = decode(fields).unwrap();
        assert_eq!(record.data.len(), 2);
        assert_eq!(record.data["\0expires"], serde_json::json!(1));
        assert_eq!(record.expires_at, UNIX_EPOCH + Duration::from_secs(1));
        assert_eq!(record.permanent, None);
    }

    #[test]
    fn corrupt_hashes_fail_to_decode() {
        let bad = |fields: &[&[u8]]| {
            matches!(
                decode(fields.iter().map(|f| f.to_vec()).collect()),
                Err(StoreError::Decode(_))
            )
        };
        assert!(bad(&[b"a", b"{not json", EXPIRES_FIELD, b"1"]));
        assert!(bad(&[b"a", b"1"]), "no expiry");
        assert!(bad(&[b"a", b"1", EXPIRES_FIELD, b"soon"]));
        assert!(bad(&[
            b"a",
            b"1",
            EXPIRES_FIELD,
            b"1",
            PERMANENT_FIELD,
            b"yes"
        ]));
        assert!(bad(&[FOREIGN_FIELD, b"string"]));
        assert!(bad(&[b"a"]));
        assert!(bad(&[b"\xff", b"1", EXPIRES_FIELD, b"1"]));
    }

    #[test]
    fn times_are_clamped_to_exact_milliseconds() {
        assert_eq!(millis(UNIX_EPOCH), 0);
        assert_eq!(millis(UNIX_EPOCH + Duration::from_millis(1_500)), 1_500);
        assert_eq!(
            millis(UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX) * 10_000)),
            MAX_MILLIS
        );
    }
}

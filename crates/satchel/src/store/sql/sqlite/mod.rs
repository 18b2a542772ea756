//! The SQLite store: a session table in a local database file, or in memory.
//!
//! See the [SQL stores' documentation](super) for the schema, the table mapping and how
//! concurrent requests are kept from losing updates. Specific to SQLite:
//!
//! - A file database is opened in WAL mode with `synchronous = NORMAL` and a 5 second
//!   busy timeout, and created when missing unless the URL gives a `mode` (`?mode=rw`
//!   refuses to create it, `?mode=rwc` creates it). Several processes on one machine can
//!   share the file.
//! - Saves that must read and write hold the database's write lock from their first
//!   statement (`BEGIN IMMEDIATE`), so they run one after the other and never deadlock.
//! - Saves from concurrent requests are committed together (group commit): SQLite has
//!   one writer at a time and a commit costs far more than the update it commits, so
//!   the request that finds the writer free writes every save queued so far in one
//!   transaction, each exactly as it would be written alone.
//! - An update of one key ([`update`](SessionStore::update)) is a transaction of its own
//!   under the write lock (`BEGIN IMMEDIATE`, the row read, the data column rewritten or
//!   the row deleted, `COMMIT`), started while no batch of saves is being written: it
//!   waits for the store's batch writer instead of polling in SQLite's busy handler, and
//!   saves queued meanwhile go with the next batch. Saves and updates are thus applied one
//!   after the other, each onto what the one before wrote.
//! - Plain loads from concurrent requests are read together too: while two grouped
//!   reads are in flight, new loads queue up, and the next reader reads every
//!   queued id with one `SELECT … WHERE id IN (…)`. A statement costs a hand-off to the
//!   connection's thread and back, which costs far more than finding a row.
//! - `sqlite::memory:` gives each store its own database, held by a single pooled
//!   connection that is never closed: every request sees the same data; it is gone when
//!   the store is dropped.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteExecutor, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::Mutex;

use super::builder::sealed::Open;
use super::cleanup::{in_batches, spawn_cleanup};
use super::codec::{KeyedRow, page};
use super::codec::{Row, check_prefix, encode, fresh_version, key, millis, now, record};
use super::statements::prefix_pattern;
use super::statements::{Dialect, Statements};
use super::write::{Attempt, Write, plan, plan_update, retrying};
use super::{Backend, Migration, OpenError, Progress, SqlOptions, SqlStoreBuilder, TableMapping};
use crate::error::StoreError;
use crate::id::SessionId;
use crate::record::{Changes, KeyUpdate, Record, Updated};
use crate::store::{Capabilities, ExpiredDeletion, Page, Saved, Seen, SessionStore};

mod batch;

use batch::{Job, JobKind, READERS, Read};

/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections to a file database: readers run in parallel; writers take turns anyway.
const FILE_CONNECTIONS: u32 = 8;

/// A store keeping sessions in an SQLite database (SESSION_TYPE=`sqlalchemy` with a
/// `sqlite:` SESSION_SQL_URL).
///
/// Cloning is cheap and shares the pool. Every operation needs a tokio runtime.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use satchel::{Changes, SessionId, SessionStore, SqliteStore};
///
/// # tokio_test::block_on(async {
/// let store = SqliteStore::builder("sqlite::memory:").open().await?;
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
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: SqlitePool,
    mapping: TableMapping,
    key_prefix: String,
    sql: Statements,
    memory: bool,
    /// Saves waiting for the next batch (see [`Inner::submit`]).
    queue: std::sync::Mutex<Vec<Job>>,
    /// Held while a batch is written.
    writer: Arc<Mutex<()>>,
    /// Plain loads waiting for the next grouped read.
    reads: std::sync::Mutex<Vec<Read>>,
    /// One permit per grouped read in flight.
    readers: Arc<tokio::sync::Semaphore>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("mapping", &format_args!("{}", self.inner.mapping))
            .field("key_prefix", &self.inner.key_prefix)
            .field("memory", &self.inner.memory)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Starts configuring a store on the database at `url` (`sqlite://path/to/sessions.db`,
    /// `sqlite://sessions.db?mode=rwc`, `sqlite::memory:`), with [`SqlOptions::default`].
    ///
    /// Nothing is checked or opened until [`open`](SqlStoreBuilder::open).
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::SqliteStore;
    /// use satchel::store::sql::TableMapping;
    ///
    /// # tokio_test::block_on(async {
    /// let store = SqliteStore::builder("sqlite::memory:")
    ///     .with_mapping(TableMapping::new("web_sessions")?)
    ///     .with_key_prefix("shop:")
    ///     .open()
    ///     .await?;
    /// assert_eq!(store.mapping().table(), "web_sessions");
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn builder(url: impl Into<String>) -> SqlStoreBuilder<Self> {
        SqlStoreBuilder::new(url.into())
    }

    /// Opens the database at `url` with `options`; see [`SqlStoreBuilder::open`]. A file
    /// database is created when missing unless the URL gives a `mode`.
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::SqliteStore;
    /// use satchel::store::sql::SqlOptions;
    ///
    /// # tokio_test::block_on(async {
    /// let dir = tempfile::tempdir()?;
    /// let url = format!("sqlite://{}", dir.path().join("sessions.db").display());
    /// let store = SqliteStore::connect(&url, SqlOptions::default()).await?;
    /// assert_eq!(store.mapping().table(), "flask_sessions");
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`OpenError::InvalidUrl`] for a URL that is not SQLite's,
    /// [`OpenError::KeyPrefixTooLong`], and [`OpenError::Migrate`] when the table cannot
    /// be created (e.g. the file cannot be created).
    pub async fn connect(url: &str, options: SqlOptions) -> Result<Self, OpenError> {
        Self::builder(url).with_options(options).open().await
    }

    /// Uses a pool of your own, with `options`. Set the pool's acquire timeout yourself;
    /// a pool of `sqlite::memory:` must keep its single connection open (one connection,
    /// no idle timeout, no maximum lifetime).
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::SqliteStore;
    /// use satchel::store::sql::SqlOptions;
    ///
    /// # tokio_test::block_on(async {
    /// let pool = sqlx::sqlite::SqlitePoolOptions::new()
    ///     .max_connections(1)
    ///     .idle_timeout(None)
    ///     .max_lifetime(None)
    ///     .connect("sqlite::memory:")
    ///     .await?;
    /// let store = SqliteStore::from_pool(pool, SqlOptions::default()).await?;
    /// # let _ = store;
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`OpenError::KeyPrefixTooLong`], and [`OpenError::Migrate`] when auto-migration
    /// fails.
    pub async fn from_pool(pool: SqlitePool, options: SqlOptions) -> Result<Self, OpenError> {
        check_prefix(options.key_prefix())?;
        let filename = pool.connect_options().get_filename().to_owned();
        let filename = filename.to_string_lossy();
        let memory = filename.starts_with("file:sqlx-in-memory-") || filename == ":memory:";
        Self::start(pool, options, memory).await
    }

    /// The store on `pool`, migrated and cleaned up as `options` say.
    async fn start(pool: SqlitePool, options: SqlOptions, memory: bool) -> Result<Self, OpenError> {
        let store = Self {
            inner: Arc::new(Inner {
                pool,
                sql: Statements::new(Dialect::Sqlite, options.mapping()),
                mapping: options.mapping().clone(),
                key_prefix: options.key_prefix().to_owned(),
                memory,
                queue: std::sync::Mutex::new(Vec::new()),
                writer: Arc::new(Mutex::new(())),
                reads: std::sync::Mutex::new(Vec::new()),
                readers: Arc::new(tokio::sync::Semaphore::new(READERS)),
            }),
        };
        if options.auto_migrate() {
            store.migrate().await.map_err(OpenError::Migrate)?;
        } else {
            super::reach(&store.inner.pool, options.timeout())
                .await
                .map_err(OpenError::Unreachable)?;
        }
        if let Some(interval) = options.cleanup_interval() {
            store.spawn_cleanup(interval);
        }
        Ok(store)
    }

    /// Creates the table and the index on its expiry column when they are missing (the
    /// Flask-Session `RegisterSessionModelHook`), then checks that the table has every
    /// mapped column. Idempotent, and safe to run from several processes at once: it
    /// runs under the database's write lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::SqliteStore;
    /// use satchel::store::sql::SqlOptions;
    ///
    /// # tokio_test::block_on(async {
    /// let options = SqlOptions::default().with_auto_migrate(false);
    /// let store = SqliteStore::connect("sqlite::memory:", options).await?;
    /// let first = store.migrate().await?;
    /// assert!(first.table_created && first.index_created);
    /// let again = store.migrate().await?;
    /// assert!(!again.table_created && !again.index_created);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the database fails, or an existing table lacks a
    /// mapped column.
    pub async fn migrate(&self) -> Result<Migration, StoreError> {
        self.inner.migrate().await
    }

    /// Counts the expired rows.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the database fails.
    pub async fn count_expired(&self) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(&self.inner.sql.count_expired)
            .bind(now())
            .fetch_one(&self.inner.pool)
            .await
            .map_err(StoreError::backend)?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    /// Deletes the expired rows, at most `batch_size` per statement, and calls
    /// `progress` after every batch; returns how many went. Rows that expire while it
    /// runs are left for the next time.
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::SqliteStore;
    /// use satchel::store::sql::SqlOptions;
    ///
    /// # tokio_test::block_on(async {
    /// let store = SqliteStore::connect("sqlite::memory:", SqlOptions::default()).await?;
    /// let deleted = store
    ///     .delete_expired_in_batches(500, |p| eprintln!("{} deleted so far", p.deleted))
    ///     .await?;
    /// assert_eq!(deleted, 0);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the database fails; rows deleted by earlier batches
    /// stay deleted.
    pub async fn delete_expired_in_batches(
        &self,
        batch_size: u64,
        progress: impl FnMut(Progress) + Send,
    ) -> Result<u64, StoreError> {
        self.inner.delete_expired(batch_size, progress).await
    }

    /// Starts a task that deletes expired rows every `interval` (what
    /// SESSION_SQL_CLEANUP_INTERVAL does). The task holds no strong reference to the
    /// store: it ends at the first interval after the last clone of the store is
    /// dropped. Failures are logged, and the task carries on.
    ///
    /// # Panics
    ///
    /// Panics when called outside a tokio runtime.
    pub fn spawn_cleanup(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        spawn_cleanup(Arc::downgrade(&self.inner), interval, |inner| async move {
            inner
                .delete_expired(super::DEFAULT_BATCH_SIZE, |_| {})
                .await
        })
    }

    /// The pool.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.inner.pool
    }

    /// Where the sessions live.
    #[must_use]
    pub fn mapping(&self) -> &TableMapping {
        &self.inner.mapping
    }

    /// The key prefix.
    #[must_use]
    pub fn key_prefix(&self) -> &str {
        &self.inner.key_prefix
    }
}

impl Inner {
    fn key(&self, id: &SessionId) -> String {
        key(&self.key_prefix, id)
    }

    async fn migrate(&self) -> Result<Migration, StoreError> {
        let mut tx = self.begin_write().await?;
        let catalog = match &self.mapping.schema {
            Some(schema) => format!("{}.sqlite_master", Dialect::Sqlite.quote(schema)),
            None => "sqlite_master".to_owned(),
        };
        let exists = format!("SELECT COUNT(*) FROM {catalog} WHERE type = $1 AND name = $2");
        let tables: i64 = sqlx::query_scalar(&exists)
            .bind("table")
            .bind(self.mapping.table())
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::backend)?;
        if tables == 0 {
            sqlx::query(&self.sql.create_table)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::backend)?;
        }
        let indexes: i64 = sqlx::query_scalar(&exists)
            .bind("index")
            .bind(self.mapping.index())
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::backend)?;
        if indexes == 0 {
            sqlx::query(&self.sql.create_index)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::backend)?;
        }
        sqlx::query(&self.sql.probe)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::backend)?;
        tx.commit().await.map_err(StoreError::backend)?;
        Ok(Migration {
            table_created: tables == 0,
            index_created: indexes == 0,
        })
    }

    async fn load(
        self: &Arc<Self>,
        id: &SessionId,
        touch: Option<SystemTime>,
    ) -> Result<Option<Record>, StoreError> {
        let key = self.key(id);
        let row: Option<Row> = match touch {
            Some(at) => sqlx::query_as(&self.sql.touch)
                .bind(millis(at))
                .bind(&key)
                .bind(now())
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::backend)?,
            None => self.load_grouped(key).await?,
        };
        row.map(record).transpose()
    }

    /// The locked read-modify-write: under the write lock, applies `changes` onto the row.
    async fn save(
        &self,
        key: &str,
        changes: &Changes,
        at: SystemTime,
    ) -> Result<Saved, StoreError> {
        retrying(|| self.try_save(key, changes, at)).await
    }

    async fn try_save(
        &self,
        key: &str,
        changes: &Changes,
        at: SystemTime,
    ) -> Result<Attempt<Saved>, StoreError> {
        let mut tx = self.begin_write().await?;
        let attempt = self.apply_on(&mut tx, key, changes, at).await?;
        if let Attempt::Done(_) = attempt {
            tx.commit().await.map_err(StoreError::backend)?;
        }
        Ok(attempt)
    }

    /// A transaction that holds the database's write lock from its first statement.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(StoreError::backend)
    }

    /// The row at `key`, read on a connection that holds the write lock.
    async fn locked_row(
        &self,
        conn: &mut SqliteConnection,
        key: &str,
    ) -> Result<Option<Row>, StoreError> {
        sqlx::query_as(&self.sql.lock)
            .bind(key)
            .fetch_optional(conn)
            .await
            .map_err(StoreError::backend)
    }

    /// Applies `changes` onto the row at `key` on a connection that holds the write
    /// lock; [`Attempt::Retry`] when an insert found the row created meanwhile.
    async fn apply_on(
        &self,
        conn: &mut SqliteConnection,
        key: &str,
        changes: &Changes,
        at: SystemTime,
    ) -> Result<Attempt<Saved>, StoreError> {
        let found = self.locked_row(conn, key).await?;
        let (write, saved) = plan(found, changes, at, now())?;
        let query = match write {
            Write::Insert(bytes) => sqlx::query(&self.sql.insert)
                .bind(key)
                .bind(bytes)
                .bind(millis(at))
                .bind(fresh_version()),
            Write::Update(bytes) => sqlx::query(&self.sql.update)
                .bind(bytes)
                .bind(millis(at))
                .bind(key),
            Write::Delete => sqlx::query(&self.sql.delete).bind(key),
            Write::Nothing => return Ok(Attempt::Done(saved)),
        };
        let done = query.execute(conn).await.map_err(StoreError::backend)?;
        if done.rows_affected() == 0 {
            // Only an insert can affect nothing: the row appeared meanwhile.
            return Ok(Attempt::Retry);
        }
        Ok(Attempt::Done(saved))
    }

    /// Writes `bytes` (or deletes the row, for `None`) if the row is still at
    /// `version`; `None` when it is not.
    async fn write_seen<'c>(
        &self,
        executor: impl SqliteExecutor<'c>,
        key: &str,
        version: i64,
        bytes: Option<&[u8]>,
        at: SystemTime,
    ) -> Result<Option<Saved>, StoreError> {
        let (query, saved) = match bytes {
            None => {
                let query = sqlx::query(&self.sql.delete_seen)
                    .bind(key)
                    .bind(version)
                    .bind(now());
                (query, Saved::Empty)
            }
            Some(bytes) => {
                let query = sqlx::query(&self.sql.update_seen)
                    .bind(bytes)
                    .bind(millis(at))
                    .bind(key)
                    .bind(version)
                    .bind(now());
                (query, Saved::Stored)
            }
        };
        let done = query.execute(executor).await.map_err(StoreError::backend)?;
        Ok((done.rows_affected() == 1).then_some(saved))
    }

    /// Applies `update` to the session key `name` of the row at `key`, in a transaction
    /// of its own that holds the database's write lock from its first statement, taken
    /// while no batch of saves is being written (in this process; other processes are
    /// kept out by the write lock alone). The transaction is committed whatever it wrote,
    /// so the lock goes at once.
    async fn update(
        &self,
        key: &str,
        name: &str,
        update: &KeyUpdate,
    ) -> Result<Updated, StoreError> {
        let _writer = self.writer.lock().await;
        let mut tx = self.begin_write().await?;
        let found = self.locked_row(&mut tx, key).await?;
        let (write, updated) = plan_update(found, name, update, now())?;
        match write {
            Write::Update(bytes) => {
                sqlx::query(&self.sql.rewrite)
                    .bind(bytes)
                    .bind(key)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::backend)?;
            }
            Write::Delete => {
                sqlx::query(&self.sql.delete)
                    .bind(key)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::backend)?;
            }
            Write::Insert(_) | Write::Nothing => {}
        }
        tx.commit().await.map_err(StoreError::backend)?;
        Ok(updated)
    }

    async fn cycle(
        &self,
        old: &str,
        new: &str,
        changes: &Changes,
        at: SystemTime,
    ) -> Result<Saved, StoreError> {
        let mut tx = self.begin_write().await?;
        let found = self.locked_row(&mut tx, old).await?;
        let (write, saved) = plan(found, changes, at, now())?;
        let (bytes, old_exists) = write.into_move();
        if let Some(bytes) = bytes {
            sqlx::query(&self.sql.upsert)
                .bind(new)
                .bind(bytes)
                .bind(millis(at))
                .bind(fresh_version())
                .execute(&mut *tx)
                .await
                .map_err(StoreError::backend)?;
        }
        if old_exists {
            sqlx::query(&self.sql.delete)
                .bind(old)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::backend)?;
        }
        tx.commit().await.map_err(StoreError::backend)?;
        Ok(saved)
    }

    async fn delete_expired(
        &self,
        batch_size: u64,
        progress: impl FnMut(Progress) + Send,
    ) -> Result<u64, StoreError> {
        in_batches(batch_size, progress, |now, limit| async move {
            sqlx::query(&self.sql.delete_batch)
                .bind(now)
                .bind(limit)
                .execute(&self.pool)
                .await
                .map(|done| done.rows_affected())
                .map_err(StoreError::backend)
        })
        .await
    }
}

/// The database and the query parameters of an SQLite URL.
fn parts(url: &str) -> (&str, impl Iterator<Item = &str>) {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
    (database, params.split('&'))
}

/// Whether an SQLite URL names an in-memory database.
fn is_memory(url: &str) -> bool {
    let (database, mut params) = parts(url);
    database == ":memory:" || params.any(|param| param == "mode=memory")
}

/// Whether an SQLite URL says how to open the file.
fn has_mode(url: &str) -> bool {
    parts(url).1.any(|param| param.starts_with("mode="))
}

impl Open for SqliteStore {
    async fn open(url: &str, options: SqlOptions) -> Result<Self, OpenError> {
        if Backend::of(url) != Some(Backend::Sqlite) {
            return Err(OpenError::InvalidUrl("not a sqlite: URL".into()));
        }
        check_prefix(options.key_prefix())?;
        let memory = is_memory(url);
        let connect =
            SqliteConnectOptions::from_str(url).map_err(|e| OpenError::InvalidUrl(e.into()))?;
        // A local database has no link to go stale: no ping before each use, which
        // would double the hand-offs to the connection's thread for every statement.
        let pool = SqlitePoolOptions::new()
            .acquire_timeout(options.timeout())
            .test_before_acquire(false);
        let pool = if memory {
            // One connection, kept forever: the database lives as long as it does.
            pool.max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_lazy_with(connect)
        } else {
            let connect = if has_mode(url) {
                connect
            } else {
                connect.create_if_missing(true)
            };
            pool.max_connections(FILE_CONNECTIONS).connect_lazy_with(
                connect
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(BUSY_TIMEOUT),
            )
        };
        Self::start(pool, options, memory).await
    }
}

impl SessionStore for SqliteStore {
    async fn load(
        &self,
        id: &SessionId,
        touch: Option<SystemTime>,
    ) -> Result<Option<Record>, StoreError> {
        self.inner.load(id, touch).await
    }

    async fn save(
        &self,
        id: &SessionId,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        let kind = JobKind::Apply {
            changes: changes.clone(),
            at: expires_at,
        };
        self.inner.submit(self.inner.key(id), kind).await
    }

    async fn save_seen(
        &self,
        id: &SessionId,
        seen: Seen<'_>,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        changes.check_merged(seen.data)?;
        let bytes = if seen.data.is_empty() {
            None
        } else {
            Some(encode(seen.data, seen.meta())?)
        };
        let kind = JobKind::Seen {
            version: seen.version.cast_signed(),
            bytes,
            changes: changes.clone(),
            at: expires_at,
        };
        self.inner.submit(self.inner.key(id), kind).await
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
        let (old, new) = (self.inner.key(old), self.inner.key(new));
        self.inner.cycle(&old, &new, changes, expires_at).await
    }

    async fn update(
        &self,
        id: &SessionId,
        key: &str,
        update: &KeyUpdate,
    ) -> Result<Updated, StoreError> {
        self.inner.update(&self.inner.key(id), key, update).await
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        sqlx::query(&self.inner.sql.delete)
            .bind(self.inner.key(id))
            .execute(&self.inner.pool)
            .await
            .map_err(StoreError::backend)?;
        Ok(())
    }

    /// Pages in key order; the cursor is the last key of the page before.
    async fn list(&self, cursor: Option<&str>, limit: usize) -> Result<Page, StoreError> {
        let limit = limit.max(1);
        let inner = &self.inner;
        let rows: Vec<KeyedRow> = sqlx::query_as(&inner.sql.list)
            .bind(cursor.unwrap_or_default())
            .bind(prefix_pattern(&inner.key_prefix))
            .bind(now())
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&inner.pool)
            .await
            .map_err(StoreError::backend)?;
        Ok(page(rows, &inner.key_prefix, limit))
    }

    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            writable: true,
            persistent: !self.inner.memory,
            shared: !self.inner.memory,
            listable: true,
            list_may_repeat: false,
            in_cookie: false,
        }
    }
}

impl ExpiredDeletion for SqliteStore {
    /// Deletes every expired row, [`DEFAULT_BATCH_SIZE`](super::DEFAULT_BATCH_SIZE) rows
    /// per statement.
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        self.inner
            .delete_expired(super::DEFAULT_BATCH_SIZE, |_| {})
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_urls_are_recognised() {
        assert!(is_memory("sqlite::memory:"));
        assert!(is_memory("sqlite://:memory:"));
        assert!(is_memory("sqlite://?mode=memory"));
        assert!(is_memory("sqlite://x?cache=shared&mode=memory"));
        assert!(!is_memory("sqlite://sessions.db"));
        assert!(!is_memory("sqlite://memory.db?mode=rwc"));
        assert!(has_mode("sqlite://a.db?mode=rw"));
        assert!(!has_mode("sqlite://mode=.db"));
    }
}

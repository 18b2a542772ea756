//! The SQL stores (SESSION_TYPE=`sqlalchemy`, alias `sql`): [`SqliteStore`],
//! [`PostgresStore`] and [`MySqlStore`] (MySQL and MariaDB), on [sqlx] connection pools.
//!
//! Each store is built by its `builder` (a [`SqlStoreBuilder`]) from a database URL;
//! [`SqlStore::builder`] and [`from_config`] (SESSION_SQL_URL) pick the backend from the
//! URL's scheme:
//!
//! | URL | Store | Feature |
//! |-----|-------|---------|
//! | `sqlite://sessions.db`, `sqlite://path/to/sessions.db?mode=rwc`, `sqlite::memory:` | [`SqliteStore`] | `sqlite` |
//! | `postgres://user:password@host:5432/db` (or `postgresql://`) | [`PostgresStore`] | `postgres` |
//! | `mysql://user:password@host:3306/db` (or `mariadb://`); tested on MariaDB 10.11 | [`MySqlStore`] | `mysql` |
//!
//! # Schema
//!
//! One row per session, in the table SESSION_SQLALCHEMY_TABLE (default `flask_sessions`):
//!
//! | Column | Type (SQLite / PostgreSQL / MySQL) | Holds |
//! |--------|------------------------------------|-------|
//! | `id` | `VARCHAR(255)` primary key (MySQL: `utf8mb4_bin`, so ids compare case-sensitively) | the key: SESSION_KEY_PREFIX followed by the session id |
//! | `data` | `BLOB` / `BYTEA` / `LONGBLOB` | MessagePack of `{data, permanent}`: the session's keys and its own permanent flag |
//! | `expiry` | `BIGINT`, indexed | when the session expires, in Unix milliseconds |
//! | `version` | `BIGINT` | moves on with every write of `data`; a new row starts at a random value |
//!
//! [`migrate`](SqliteStore::migrate) (the Flask-Session `RegisterSessionModelHook`)
//! creates the table and an index on the expiry column when they are missing; it is
//! idempotent, runs when a store starts unless SESSION_SQL_AUTO_MIGRATE is `false`, and is
//! what `satchel migrate` runs.
//!
//! # Table mapping (SESSION_SQLALCHEMY_MODEL)
//!
//! An existing table can be used by naming its schema and columns in
//! SESSION_SQLALCHEMY_MODEL, as comma-separated `field=name` pairs ([`TableMapping`]):
//!
//! ```text
//! schema=public,table=web_sessions,id=session_id,data=payload,expiry=expires_at
//! ```
//!
//! Fields: `schema` (unset: the connection's default schema or database), `table`
//! (default SESSION_SQLALCHEMY_TABLE), `id`, `data`, `expiry`, `version` (each defaults
//! to its own name) and `index` (the expiry index, default `<table>_<expiry>_idx`). The
//! table needs the four columns with the types above. Every name is checked: ASCII
//! letters, digits and underscores, not starting with a digit, at most 63 characters; it
//! is then quoted for the dialect. No name reaches SQL any other way, and values are
//! always bound as parameters (one exception, explained under MySQL below, sends them as
//! hexadecimal literals).
//!
//! # Round trips and concurrent requests
//!
//! - **Load**: one statement. Without a refresh, a `SELECT … WHERE id = ? AND expiry >
//!   now`. With a refresh (the touch of SESSION_REFRESH_EACH_REQUEST, sent when a
//!   request that changed nothing ends and the expiry is due), SQLite and PostgreSQL run
//!   `UPDATE … SET expiry = max(expiry, ?) WHERE id = ? AND expiry > now RETURNING data,
//!   expiry, version`: the touch changes the expiry only, never the data or the version.
//!   MySQL and MariaDB have no `UPDATE … RETURNING`; there the touch and the read are sent
//!   together as one multi-statement query (`UPDATE …; SELECT …`), still one round trip.
//!   Such a query cannot carry bound parameters, so its only values, the key and two
//!   times, are written as a hexadecimal string literal and two integers: no character
//!   of the key can escape the literal.
//! - **Save** (the engine's default path for a session whose version it knows): one
//!   conditional statement, `UPDATE … SET data = ?, expiry = ?, version = version + 1
//!   WHERE id = ? AND version = ? AND expiry > now` (a `DELETE … WHERE version = ?` when
//!   the session ended empty). It succeeds when nobody wrote the session since this
//!   request loaded it, which is the common case.
//! - Otherwise (someone else wrote it meanwhile, or a new session), the store applies the
//!   request's own [`Changes`] onto the latest row inside a transaction
//!   that locks it: `SELECT … FOR UPDATE` on PostgreSQL and MySQL, `BEGIN IMMEDIATE` (the
//!   database's write lock) on SQLite. MySQL runs these transactions at `READ
//!   COMMITTED`, where reading a missing row locks nothing: at its default isolation the
//!   read would lock the gap where the row would go, and new sessions would deadlock on
//!   those gaps. Concurrent requests on one session are applied one after the other and
//!   none is lost. Two transactions racing to create the same row are retried, as are
//!   deadlocks and lock wait timeouts the server reports, after a short random pause; a
//!   save that still fails after five attempts says whether it lost races to concurrent
//!   writes or the database aborted it.
//! - **Id rotation** ([`cycle`](crate::SessionStore::cycle)): one transaction that locks
//!   the old row, writes the new one and deletes the old one.
//! - **Update** of one key ([`update`](crate::SessionStore::update): an increment or a
//!   compare-and-set): one transaction that locks the row as a save does (`SELECT … FOR
//!   UPDATE`; `BEGIN IMMEDIATE` on SQLite), applies the update onto the key as stored
//!   ([`KeyUpdate::apply_to`], the rule every store shares), then writes the data column
//!   alone with `UPDATE … SET data = ?, version = version + 1 WHERE id = ?`, so the expiry
//!   stays as it is (a `DELETE` when no key is left), and commits: four round trips, or
//!   three (`BEGIN`, `SELECT`, `COMMIT`) when the update writes nothing. Concurrent updates
//!   and saves of one session wait for the lock and each applies onto what the one before
//!   wrote, so none is lost. An expired or missing row is reported as
//!   [`Updated::Missing`] and nothing is written; a row that cannot be decoded is an
//!   error, and is left as it is. On PostgreSQL and MySQL a deadlock the server reports is
//!   retried (the server rolled the transaction back, so nothing was applied); SQLite
//!   takes its write lock at `BEGIN`, so it has none.
//!
//! # Expired rows
//!
//! Expiry is checked by every statement that reads, so an expired row is never served.
//! Expired rows are deleted in bounded batches ([`DEFAULT_BATCH_SIZE`] rows per
//! statement, so no statement holds locks for long): by
//! [`ExpiredDeletion::delete_expired`], by a
//! background task when SESSION_SQL_CLEANUP_INTERVAL is set (it holds only a weak
//! reference, ends when the store is dropped, and logs failures and carries on), and by
//! `satchel cleanup`.
//!
//! # Connections
//!
//! A store that cannot reach its database when it opens refuses to start, as every
//! networked store does: with SESSION_SQL_AUTO_MIGRATE on (the default) it runs
//! [`migrate`](SqliteStore::migrate), which fails with [`OpenError::Migrate`]; with it off
//! it makes one connection, or fails with [`OpenError::Unreachable`] (from `from_config`,
//! a clear [`ConfigError`](crate::ConfigError) naming SESSION_SQL_URL). Once open, a
//! database that goes away fails requests with [`StoreError::Backend`] until it is back;
//! then the pool reconnects by itself. Waiting for a connection, and every PostgreSQL and
//! MySQL operation as a whole, is bounded by SESSION_STORE_TIMEOUT. Turn auto-migration
//! off to start without creating anything and run `satchel migrate` once instead.
//!
//! SQLite file databases are opened in WAL mode with `synchronous = NORMAL` (readers never
//! wait for the writer; a commit does not wait for the disk, and a crash of the machine
//! can lose the last commits, never corrupt the file) and a 5 second busy timeout, and
//! the file is created when missing unless the URL gives a `mode`. `sqlite::memory:` is
//! one private database held by a single connection that is never closed: every request
//! of the store sees the same data, and it is gone when the store is dropped.

// Each backend uses its own part of the shared code (its dialect, its statements): with
// only some backends built the rest is unused, and with none (the private `_sql` feature
// alone) all of it.
#![cfg_attr(
    not(all(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(dead_code, unreachable_pub)
)]
#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(unused_imports, unused_variables)
)]

use std::time::{Duration, SystemTime};

use crate::error::StoreError;
use crate::id::SessionId;
use crate::record::{Changes, KeyUpdate, Record, Updated};
use crate::store::{BoxedStore, Capabilities, ExpiredDeletion, Page, Saved, Seen, SessionStore};

#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub mod mysql;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;

mod builder;
mod cleanup;
mod codec;
#[cfg(feature = "fuzzing")]
pub(crate) use codec::fuzz;
mod mapping;
mod options;
#[cfg(any(feature = "postgres", feature = "mysql"))]
mod server;
mod statements;
mod write;

#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub use mysql::MySqlStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::SqliteStore;

pub use super::from_config::sql_from_config as from_config;
pub use builder::{SqlBackend, SqlStoreBuilder};
pub use cleanup::Progress;
pub use mapping::{MappingError, TableMapping};
pub use options::{Migration, OpenError, SqlOptions};
#[cfg(any(feature = "postgres", feature = "mysql"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "postgres", feature = "mysql"))))]
pub use server::{ServerDb, ServerStore};

/// Default table (SESSION_SQLALCHEMY_TABLE): Flask-Session's name.
pub const DEFAULT_TABLE: &str = super::defaults::SQL_TABLE;
/// Default number of expired rows one cleanup statement deletes.
pub const DEFAULT_BATCH_SIZE: u64 = 1000;
/// Longest table, schema, column or index name accepted (PostgreSQL's limit; MySQL's is
/// 64).
pub const MAX_NAME_LEN: usize = 63;

/// The URLs the SQL stores accept, for error messages.
pub(super) const EXPECTED_URL: &str = "a database URL: sqlite://path/to/sessions.db (optionally ?mode=rwc), \
     sqlite::memory:, postgres://user:password@host:5432/db or mysql://user:password@host:3306/db";

/// Any of the SQL stores, chosen by the scheme of a URL: what `satchel migrate` and
/// `satchel cleanup` use.
///
/// # Examples
///
/// ```
/// use satchel::store::sql::SqlStore;
/// use satchel::ExpiredDeletion;
///
/// # #[cfg(feature = "sqlite")]
/// # tokio_test::block_on(async {
/// let store = SqlStore::builder("sqlite::memory:").open().await?;
/// assert!(matches!(store, SqlStore::Sqlite(_)));
/// assert_eq!(store.delete_expired().await?, 0);
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SqlStore {
    /// SQLite.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    Sqlite(SqliteStore),
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    Postgres(PostgresStore),
    /// MySQL or MariaDB.
    #[cfg(feature = "mysql")]
    #[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
    MySql(MySqlStore),
}

/// Calls the same method on whichever store `$self` holds.
macro_rules! each {
    ($self:expr, $store:ident => $body:expr) => {
        match *$self {
            #[cfg(feature = "sqlite")]
            SqlStore::Sqlite(ref $store) => $body,
            #[cfg(feature = "postgres")]
            SqlStore::Postgres(ref $store) => $body,
            #[cfg(feature = "mysql")]
            SqlStore::MySql(ref $store) => $body,
        }
    };
}

// After `each!`, which it uses.
#[cfg(feature = "flask")]
mod flask;

/// The backends, by URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

impl Backend {
    fn of(url: &str) -> Option<Self> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Some(Self::Sqlite),
            "postgres" | "postgresql" => Some(Self::Postgres),
            "mysql" | "mariadb" => Some(Self::MySql),
            _ => None,
        }
    }

    fn feature(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::MySql => "mysql",
        }
    }
}

impl SqlStore {
    /// Starts configuring a store on the database at `url`, with [`SqlOptions::default`];
    /// [`open`](SqlStoreBuilder::open) opens the store of the URL's scheme (see the
    /// [module documentation](self)).
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::store::sql::SqlStore;
    ///
    /// # #[cfg(feature = "sqlite")]
    /// # tokio_test::block_on(async {
    /// let store = SqlStore::builder("sqlite::memory:").with_key_prefix("shop:").open().await?;
    /// assert!(matches!(store, SqlStore::Sqlite(_)));
    /// # Ok::<_, satchel::store::sql::OpenError>(())
    /// # }).unwrap();
    /// ```
    pub fn builder(url: impl Into<String>) -> SqlStoreBuilder<Self> {
        SqlStoreBuilder::new(url.into())
    }

    /// Opens the store for `url`'s scheme with `options`; see [`SqlStoreBuilder::open`].
    ///
    /// # Errors
    ///
    /// [`OpenError`] as the store's own `connect` gives it, and
    /// [`OpenError::InvalidUrl`] for a scheme this build has no store for.
    pub async fn connect(url: &str, options: SqlOptions) -> Result<Self, OpenError> {
        Self::builder(url).with_options(options).open().await
    }

    /// Creates the table and the expiry index when missing; see
    /// [`SqliteStore::migrate`].
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the database fails.
    pub async fn migrate(&self) -> Result<Migration, StoreError> {
        each!(self, store => store.migrate().await)
    }

    /// Counts the expired rows.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the database fails.
    pub async fn count_expired(&self) -> Result<u64, StoreError> {
        each!(self, store => store.count_expired().await)
    }

    /// Deletes the expired rows, `batch_size` rows per statement, reporting after every
    /// batch; see [`SqliteStore::delete_expired_in_batches`].
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
        each!(self, store => store.delete_expired_in_batches(batch_size, progress).await)
    }

    /// Where the sessions live.
    #[must_use]
    pub fn mapping(&self) -> &TableMapping {
        each!(self, store => store.mapping())
    }

    /// The prefix of every key.
    #[must_use]
    pub fn key_prefix(&self) -> &str {
        each!(self, store => store.key_prefix())
    }

    /// The store, type-erased.
    #[must_use]
    pub fn into_boxed(self) -> BoxedStore {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(store) => BoxedStore::new(store),
            #[cfg(feature = "postgres")]
            Self::Postgres(store) => BoxedStore::new(store),
            #[cfg(feature = "mysql")]
            Self::MySql(store) => BoxedStore::new(store),
        }
    }
}

impl builder::sealed::Open for SqlStore {
    async fn open(url: &str, options: SqlOptions) -> Result<Self, OpenError> {
        match Backend::of(url) {
            #[cfg(feature = "sqlite")]
            Some(Backend::Sqlite) => SqliteStore::connect(url, options).await.map(Self::Sqlite),
            #[cfg(feature = "postgres")]
            Some(Backend::Postgres) => PostgresStore::connect(url, options)
                .await
                .map(Self::Postgres),
            #[cfg(feature = "mysql")]
            Some(Backend::MySql) => MySqlStore::connect(url, options).await.map(Self::MySql),
            #[allow(unreachable_patterns)]
            Some(backend) => Err(OpenError::InvalidUrl(
                format!(
                    "this build has no {} store (cargo feature `{}`)",
                    backend.feature(),
                    backend.feature()
                )
                .into(),
            )),
            None => Err(OpenError::InvalidUrl(
                "the scheme is not sqlite, postgres, postgresql, mysql or mariadb".into(),
            )),
        }
    }
}

impl SessionStore for SqlStore {
    async fn load(
        &self,
        id: &SessionId,
        touch: Option<SystemTime>,
    ) -> Result<Option<Record>, StoreError> {
        each!(self, store => store.load(id, touch).await)
    }

    async fn save(
        &self,
        id: &SessionId,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        each!(self, store => store.save(id, changes, expires_at).await)
    }

    async fn save_seen(
        &self,
        id: &SessionId,
        seen: Seen<'_>,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        each!(self, store => store.save_seen(id, seen, changes, expires_at).await)
    }

    async fn cycle(
        &self,
        old: &SessionId,
        new: &SessionId,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        each!(self, store => store.cycle(old, new, changes, expires_at).await)
    }

    async fn update(
        &self,
        id: &SessionId,
        key: &str,
        update: &KeyUpdate,
    ) -> Result<Updated, StoreError> {
        each!(self, store => store.update(id, key, update).await)
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        each!(self, store => store.delete(id).await)
    }

    fn capabilities(&self) -> Capabilities {
        each!(self, store => store.capabilities())
    }

    fn name(&self) -> &'static str {
        each!(self, store => store.name())
    }

    async fn list(&self, cursor: Option<&str>, limit: usize) -> Result<Page, StoreError> {
        each!(self, store => store.list(cursor, limit).await)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        each!(self, store => store.ping().await)
    }
}

impl ExpiredDeletion for SqlStore {
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        each!(self, store => store.delete_expired().await)
    }
}

/// Makes one connection of `pool` within `timeout`: a store opened without migration
/// checks this way that its database answers, so it refuses to start when it does not.
async fn reach<DB: sqlx::Database>(
    pool: &sqlx::Pool<DB>,
    timeout: Duration,
) -> Result<(), StoreError> {
    match tokio::time::timeout(timeout, pool.acquire()).await {
        Ok(Ok(_connection)) => Ok(()),
        Ok(Err(error)) => Err(StoreError::backend(error)),
        Err(elapsed) => Err(StoreError::backend(elapsed)),
    }
}

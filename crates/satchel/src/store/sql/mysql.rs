//! The MySQL and MariaDB store.
//!
//! See the [SQL stores' documentation](super) for the schema, the table mapping and how
//! concurrent requests are kept from losing updates. Specific to MySQL and MariaDB:
//!
//! - There is no `UPDATE … RETURNING`. A load with a refresh sends the touch and the
//!   read as one multi-statement query, `UPDATE …; SELECT …`: one round trip, two
//!   statements. A multi-statement query cannot carry bound parameters, so its values are
//!   literals made by the store: the key as a hexadecimal string literal (no character of
//!   it can end the literal, whatever the key prefix holds) and two integers.
//!   Since that text holds the key, [`connect`](MySqlStore::connect) turns off sqlx's
//!   statement logging (which would write it at debug level, and slow ones as warnings);
//!   a pool given to [`from_pool`](MySqlStore::from_pool) should do the same with
//!   `ConnectOptions::disable_statement_logging`.
//! - The key column is `utf8mb4_bin`, so ids compare case-sensitively (the default
//!   collations ignore case, and session ids are case-sensitive).
//! - Saves that must read and write lock the row with `SELECT … FOR UPDATE`, in a
//!   transaction at `READ COMMITTED` (set in the same round trip as the `BEGIN`). At
//!   InnoDB's default, `REPEATABLE READ`, a locking read that finds no row locks the gap
//!   where the row would go, and that gap lock blocks inserts into it: new sessions and
//!   id rotations, which read an absent row and then insert one, would deadlock with
//!   each other (in a fresh table every new key falls into the same gap). At `READ
//!   COMMITTED` a locking read locks only the rows it finds, and an insert waits only
//!   for another insert of the same key. A row the store does find stays locked until
//!   the commit, so no update is lost; with binary logging on, `binlog_format` must be
//!   `ROW` or `MIXED` (the defaults), as InnoDB refuses statement-based logging at this
//!   level.
//! - A duplicate key from a racing insert, a deadlock the server broke and a lock wait
//!   timeout are retried, after a short random pause; a save that still fails says
//!   which it was.
//! - MySQL has no `CREATE INDEX IF NOT EXISTS` (MariaDB has): [`migrate`](MySqlStore::migrate)
//!   looks the index up first, and takes "duplicate key name" from a concurrent migration
//!   as success.
//! - Every operation as a whole is bounded by SESSION_STORE_TIMEOUT.

use std::fmt::{self, Write as _};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sqlx::mysql::{MySqlConnectOptions, MySqlDatabaseError, MySqlPool, MySqlPoolOptions};
use sqlx::{ConnectOptions as _, Row as _};

use super::builder::sealed::Open;
use super::cleanup::{in_batches, spawn_cleanup};
use super::codec::{Row, check_prefix, encode, fresh_version, key, millis, now, record};
use super::server::{server_pool, server_store, timed};
use super::statements::{Dialect, Statements};
use super::write::{Attempt, Failure, Transient, Write, plan, plan_update, retrying, settle};
use super::{Backend, Migration, OpenError, Progress, SqlOptions, SqlStoreBuilder, TableMapping};
use crate::error::StoreError;
use crate::id::SessionId;
use crate::record::{Changes, KeyUpdate, Record, Updated};
use crate::store::{ExpiredDeletion, Saved, Seen, SessionStore};

/// MySQL's "duplicate key name" (an index that exists).
const ER_DUP_KEYNAME: u16 = 1061;
/// MySQL's "duplicate entry for key".
const ER_DUP_ENTRY: u16 = 1062;
/// MySQL's "lock wait timeout exceeded".
const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;
/// MySQL's "deadlock found when trying to get lock".
const ER_LOCK_DEADLOCK: u16 = 1213;

/// Begins the transaction of a locked save at `READ COMMITTED` (`SET TRANSACTION` without
/// a scope applies to the next transaction only): no gap locks, see the
/// [module documentation](self). One multi-statement query, one round trip.
const BEGIN: &str = "SET TRANSACTION ISOLATION LEVEL READ COMMITTED; BEGIN";

/// A store keeping sessions in a MySQL or MariaDB table (SESSION_TYPE=`sqlalchemy` with
/// a `mysql://` SESSION_SQL_URL).
///
/// Cloning is cheap and shares the pool. Every operation needs a tokio runtime.
///
/// # Examples
///
/// ```no_run
/// // Not run: needs a MySQL or MariaDB server.
/// use satchel::MySqlStore;
///
/// # tokio_test::block_on(async {
/// let store = MySqlStore::builder("mysql://app@127.0.0.1/app").open().await?;
/// # let _ = store;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct MySqlStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: MySqlPool,
    mapping: TableMapping,
    key_prefix: String,
    timeout: Duration,
    sql: Statements,
}

impl fmt::Debug for MySqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MySqlStore")
            .field("mapping", &format_args!("{}", self.inner.mapping))
            .field("key_prefix", &self.inner.key_prefix)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl MySqlStore {
    /// Starts configuring a store on the database at `url` (`mysql://user:password@host:3306/db`; `mariadb://` is taken as
    /// the same), with
    /// [`SqlOptions::default`].
    ///
    /// Nothing is checked or contacted until [`open`](SqlStoreBuilder::open).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// // Not run: it needs a server.
    /// use std::time::Duration;
    /// use satchel::MySqlStore;
    /// use satchel::store::sql::TableMapping;
    ///
    /// # tokio_test::block_on(async {
    /// let store = MySqlStore::builder("mysql://app@127.0.0.1/app")
    ///     .with_mapping(TableMapping::new("web_sessions")?)
    ///     .with_timeout(Duration::from_secs(1))
    ///     .with_cleanup_interval(Some(Duration::from_secs(600)))
    ///     .open()
    ///     .await?;
    /// # let _ = store;
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn builder(url: impl Into<String>) -> SqlStoreBuilder<Self> {
        SqlStoreBuilder::new(url.into())
    }

    /// Opens the store at `url` with `options`; see [`SqlStoreBuilder::open`].
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::MySqlStore;
    /// use satchel::store::sql::{OpenError, SqlOptions};
    ///
    /// # tokio_test::block_on(async {
    /// // Nothing listens there: the store refuses to start, with or without migration.
    /// let options = SqlOptions::default().with_auto_migrate(false);
    /// let error = MySqlStore::connect("mariadb://app@127.0.0.1:1/app", options).await.unwrap_err();
    /// assert!(matches!(error, OpenError::Unreachable(_)));
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// [`OpenError::InvalidUrl`] for a URL that is not MySQL's or does not parse,
    /// [`OpenError::KeyPrefixTooLong`], and [`OpenError::Migrate`] when the table cannot
    /// be created or checked.
    pub async fn connect(url: &str, options: SqlOptions) -> Result<Self, OpenError> {
        Self::builder(url).with_options(options).open().await
    }

    /// Uses a pool of your own, with `options` (its timeout bounds each operation; set
    /// the pool's acquire timeout yourself, and turn its statement logging off: see the
    /// [module documentation](self)).
    ///
    /// # Errors
    ///
    /// [`OpenError::KeyPrefixTooLong`], and [`OpenError::Migrate`] when auto-migration
    /// fails.
    pub async fn from_pool(pool: MySqlPool, options: SqlOptions) -> Result<Self, OpenError> {
        check_prefix(options.key_prefix())?;
        let store = Self {
            inner: Arc::new(Inner {
                pool,
                sql: Statements::new(Dialect::MySql, options.mapping()),
                mapping: options.mapping().clone(),
                key_prefix: options.key_prefix().to_owned(),
                timeout: options.timeout(),
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
    /// mapped column. Idempotent, also when several servers run it at once. The
    /// database named by the mapping's schema (or the URL) must exist.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the database fails, or an existing table lacks a
    /// mapped column.
    pub async fn migrate(&self) -> Result<Migration, StoreError> {
        timed(self.inner.timeout.max(Duration::from_secs(30)), async {
            self.inner.migrate().await.map_err(StoreError::backend)
        })
        .await
    }

    /// Counts the expired rows.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the database fails.
    pub async fn count_expired(&self) -> Result<u64, StoreError> {
        let inner = &self.inner;
        timed(inner.timeout, async {
            let count: i64 = sqlx::query_scalar(&inner.sql.count_expired)
                .bind(now())
                .fetch_one(&inner.pool)
                .await
                .map_err(StoreError::backend)?;
            Ok(u64::try_from(count).unwrap_or_default())
        })
        .await
    }

    /// Deletes the expired rows, at most `batch_size` per statement (each bounded by the
    /// timeout), and calls `progress` after every batch; returns how many went.
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
    pub fn pool(&self) -> &MySqlPool {
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

/// MySQL's number for a database error.
fn number(error: &sqlx::Error) -> Option<u16> {
    error
        .as_database_error()
        .and_then(|error| error.try_downcast_ref::<MySqlDatabaseError>())
        .map(MySqlDatabaseError::number)
}

/// Failures worth another attempt: an insert that lost the race to create the row, a
/// deadlock the server broke (it rolled the transaction back), or a lock the server gave
/// up waiting for (the whole transaction is run again).
fn transient(error: &sqlx::Error) -> Option<Transient> {
    match number(error)? {
        ER_DUP_ENTRY => Some(Transient::Raced),
        ER_LOCK_DEADLOCK | ER_LOCK_WAIT_TIMEOUT => Some(Transient::Aborted),
        _ => None,
    }
}

/// `text` as a MySQL string literal that nothing in it can end: hexadecimal digits
/// with a character set introducer (so that the key column's collation applies and its
/// index is used).
fn literal(text: &str) -> String {
    let mut out = String::with_capacity(12 + 2 * text.len());
    out.push_str("_utf8mb4 X'");
    for byte in text.bytes() {
        let _ = write!(out, "{byte:02X}");
    }
    out.push('\'');
    out
}

impl Inner {
    fn key(&self, id: &SessionId) -> String {
        key(&self.key_prefix, id)
    }

    async fn migrate(&self) -> Result<Migration, sqlx::Error> {
        let schema = self.mapping.schema();
        let tables: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ?",
        )
        .bind(schema)
        .bind(self.mapping.table())
        .fetch_one(&self.pool)
        .await?;
        if tables == 0 {
            sqlx::query(&self.sql.create_table)
                .execute(&self.pool)
                .await?;
        }
        let indexes: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.statistics \
             WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ? AND index_name = ?",
        )
        .bind(schema)
        .bind(self.mapping.table())
        .bind(self.mapping.index())
        .fetch_one(&self.pool)
        .await?;
        let mut index_created = false;
        if indexes == 0 {
            match sqlx::query(&self.sql.create_index)
                .execute(&self.pool)
                .await
            {
                Ok(_) => index_created = true,
                // Created meanwhile by another server.
                Err(error) if number(&error) == Some(ER_DUP_KEYNAME) => {}
                Err(error) => return Err(error),
            }
        }
        sqlx::query(&self.sql.probe).execute(&self.pool).await?;
        Ok(Migration {
            table_created: tables == 0,
            index_created,
        })
    }

    async fn load(
        &self,
        id: &SessionId,
        touch: Option<SystemTime>,
    ) -> Result<Option<Record>, StoreError> {
        let key = self.key(id);
        let now = now();
        let row: Option<Row> = match touch {
            None => sqlx::query_as(&self.sql.select)
                .bind(&key)
                .bind(now)
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::backend)?,
            Some(at) => {
                let Statements {
                    table,
                    id,
                    data,
                    expiry,
                    version,
                    ..
                } = &self.sql;
                let key = literal(&key);
                let at = millis(at);
                let sql = format!(
                    "UPDATE {table} SET {expiry} = GREATEST({expiry}, {at}) \
                     WHERE {id} = {key} AND {expiry} > {now}; \
                     SELECT {data}, {expiry}, {version} FROM {table} \
                     WHERE {id} = {key} AND {expiry} > {now}"
                );
                let rows = sqlx::raw_sql(&sql)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(StoreError::backend)?;
                rows.first()
                    .map(|row| {
                        Ok::<_, sqlx::Error>((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
                    })
                    .transpose()
                    .map_err(StoreError::backend)?
            }
        };
        row.map(record).transpose()
    }

    /// Begins a locked save's transaction, at `READ COMMITTED`.
    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::MySql>, sqlx::Error> {
        self.pool.begin_with(BEGIN).await
    }

    /// The locked read-modify-write: applies `changes` onto the row locked `FOR UPDATE`.
    async fn save(
        &self,
        key: &str,
        changes: &Changes,
        at: SystemTime,
    ) -> Result<Saved, StoreError> {
        retrying(|| async { settle(self.try_save(key, changes, at).await, transient) }).await
    }

    async fn try_save(
        &self,
        key: &str,
        changes: &Changes,
        at: SystemTime,
    ) -> Result<Attempt<Saved>, Failure> {
        let mut tx = self.begin().await?;
        let found: Option<Row> = sqlx::query_as(&self.sql.lock)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
        let (write, saved) = plan(found, changes, at, now())?;
        let query = match write {
            // A concurrent insert of the same key fails with a duplicate key: retried.
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
        query.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Attempt::Done(saved))
    }

    server_store!(inner);
}

impl Open for MySqlStore {
    async fn open(url: &str, options: SqlOptions) -> Result<Self, OpenError> {
        if Backend::of(url) != Some(Backend::MySql) {
            return Err(OpenError::InvalidUrl("not a mysql:// URL".into()));
        }
        let url = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("mariadb") => {
                format!("mysql://{rest}")
            }
            _ => url.to_owned(),
        };
        // The refresh query carries the key as a literal: sqlx must not log its text.
        let connect = MySqlConnectOptions::from_str(&url)
            .map_err(|e| OpenError::InvalidUrl(e.into()))?
            .disable_statement_logging();
        let pool: MySqlPoolOptions = server_pool(options.timeout());
        let pool = pool.connect_lazy_with(connect);
        Self::from_pool(pool, options).await
    }
}

server_store!(traits MySqlStore);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_hold_any_key() {
        assert_eq!(literal("a'b"), "_utf8mb4 X'612762'");
        assert_eq!(literal(""), "_utf8mb4 X''");
    }
}

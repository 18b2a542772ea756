//! The PostgreSQL store.
//!
//! See the [SQL stores' documentation](super) for the schema, the table mapping and how
//! concurrent requests are kept from losing updates. Specific to PostgreSQL:
//!
//! - A load with a refresh is one `UPDATE … RETURNING`.
//! - Saves that must read and write lock the row with `SELECT … FOR UPDATE` (at the
//!   default `READ COMMITTED` isolation); deadlocks and serialization failures the server
//!   reports are retried.
//! - [`migrate`](PostgresStore::migrate) runs in one transaction under an advisory lock,
//!   so servers starting together do not race to create the table.
//! - Every operation as a whole is bounded by SESSION_STORE_TIMEOUT.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::builder::sealed::Open;
use super::cleanup::{in_batches, spawn_cleanup};
use super::codec::{Row, check_prefix, encode, fresh_version, key, millis, now, record};
use super::mapping::fnv1a;
use super::server::{server_pool, server_store, timed};
use super::statements::{Dialect, Statements};
use super::write::{Attempt, Failure, Transient, Write, plan, plan_update, retrying, settle};
use super::{Backend, Migration, OpenError, Progress, SqlOptions, SqlStoreBuilder, TableMapping};
use crate::error::StoreError;
use crate::id::SessionId;
use crate::record::{Changes, KeyUpdate, Record, Updated};
use crate::store::{ExpiredDeletion, Saved, Seen, SessionStore};

/// A store keeping sessions in a PostgreSQL table (SESSION_TYPE=`sqlalchemy` with a
/// `postgres://` SESSION_SQL_URL).
///
/// Cloning is cheap and shares the pool. Every operation needs a tokio runtime.
///
/// # Examples
///
/// ```no_run
/// // Not run: needs a PostgreSQL server.
/// use satchel::PostgresStore;
/// use satchel::store::sql::TableMapping;
///
/// # tokio_test::block_on(async {
/// let store = PostgresStore::builder("postgres://app@127.0.0.1/app")
///     .with_mapping(TableMapping::new("web_sessions")?)
///     .open()
///     .await?;
/// # let _ = store;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    mapping: TableMapping,
    key_prefix: String,
    timeout: Duration,
    sql: Statements,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("mapping", &format_args!("{}", self.inner.mapping))
            .field("key_prefix", &self.inner.key_prefix)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Starts configuring a store on the database at `url` (`postgres://user:password@host:5432/db`, any option sqlx's
    /// `PgConnectOptions` reads), with
    /// [`SqlOptions::default`].
    ///
    /// Nothing is checked or contacted until [`open`](SqlStoreBuilder::open).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// // Not run: it needs a server.
    /// use std::time::Duration;
    /// use satchel::PostgresStore;
    /// use satchel::store::sql::TableMapping;
    ///
    /// # tokio_test::block_on(async {
    /// let store = PostgresStore::builder("postgres://app@127.0.0.1/app")
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
    /// use satchel::PostgresStore;
    /// use satchel::store::sql::{OpenError, SqlOptions};
    ///
    /// # tokio_test::block_on(async {
    /// // Nothing listens there: the store refuses to start, with or without migration.
    /// let options = SqlOptions::default().with_auto_migrate(false);
    /// let error = PostgresStore::connect("postgres://app@127.0.0.1:1/app", options).await.unwrap_err();
    /// assert!(matches!(error, OpenError::Unreachable(_)));
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// [`OpenError::InvalidUrl`] for a URL that is not PostgreSQL's or does not parse,
    /// [`OpenError::KeyPrefixTooLong`], and [`OpenError::Migrate`] when the table cannot
    /// be created or checked.
    pub async fn connect(url: &str, options: SqlOptions) -> Result<Self, OpenError> {
        Self::builder(url).with_options(options).open().await
    }

    /// Uses a pool of your own, with `options` (its timeout bounds each operation; set
    /// the pool's acquire timeout yourself).
    ///
    /// # Errors
    ///
    /// [`OpenError::KeyPrefixTooLong`], and [`OpenError::Migrate`] when auto-migration
    /// fails.
    pub async fn from_pool(pool: PgPool, options: SqlOptions) -> Result<Self, OpenError> {
        check_prefix(options.key_prefix())?;
        let store = Self {
            inner: Arc::new(Inner {
                pool,
                sql: Statements::new(Dialect::Postgres, options.mapping()),
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
    /// mapped column. Idempotent; runs in one transaction under an advisory lock, so
    /// several servers may run it at once. The schema, when one is mapped, must exist.
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
    pub fn pool(&self) -> &PgPool {
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

/// Failures worth another attempt: unique_violation (a concurrent transaction created
/// the row first), and the failures PostgreSQL asks clients to retry,
/// deadlock_detected and serialization_failure.
fn transient(error: &sqlx::Error) -> Option<Transient> {
    let code = error.as_database_error()?.code()?;
    match &*code {
        "23505" => Some(Transient::Raced),
        "40P01" | "40001" => Some(Transient::Aborted),
        _ => None,
    }
}

impl Inner {
    fn key(&self, id: &SessionId) -> String {
        key(&self.key_prefix, id)
    }

    async fn migrate(&self) -> Result<Migration, sqlx::Error> {
        let quote = |name: &str| Dialect::Postgres.quote(name);
        let (table, index) = match &self.mapping.schema {
            Some(schema) => (
                self.sql.table.clone(),
                format!("{}.{}", quote(schema), quote(&self.mapping.index())),
            ),
            None => (self.sql.table.clone(), quote(&self.mapping.index())),
        };
        let lock = fnv1a(format!("satchel migrate {table}").as_bytes()).cast_signed();
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(lock)
            .execute(&mut *tx)
            .await?;
        let exists = "SELECT to_regclass($1) IS NOT NULL";
        let table_exists: bool = sqlx::query_scalar(exists)
            .bind(&table)
            .fetch_one(&mut *tx)
            .await?;
        if !table_exists {
            sqlx::query(&self.sql.create_table)
                .execute(&mut *tx)
                .await?;
        }
        let index_exists: bool = sqlx::query_scalar(exists)
            .bind(&index)
            .fetch_one(&mut *tx)
            .await?;
        if !index_exists {
            sqlx::query(&self.sql.create_index)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(&self.sql.probe).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Migration {
            table_created: !table_exists,
            index_created: !index_exists,
        })
    }

    async fn load(
        &self,
        id: &SessionId,
        touch: Option<SystemTime>,
    ) -> Result<Option<Record>, StoreError> {
        let key = self.key(id);
        let row: Option<Row> = match touch {
            Some(at) => {
                sqlx::query_as(&self.sql.touch)
                    .bind(millis(at))
                    .bind(&key)
                    .bind(now())
                    .fetch_optional(&self.pool)
                    .await
            }
            None => {
                sqlx::query_as(&self.sql.select)
                    .bind(&key)
                    .bind(now())
                    .fetch_optional(&self.pool)
                    .await
            }
        }
        .map_err(StoreError::backend)?;
        row.map(record).transpose()
    }

    /// Begins a locked save's transaction, at the server's isolation level (`READ
    /// COMMITTED` unless configured otherwise; PostgreSQL never locks gaps between rows).
    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.pool.begin().await
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
        let mut tx = self.pool.begin().await?;
        let found: Option<Row> = sqlx::query_as(&self.sql.lock)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
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
        if query.execute(&mut *tx).await?.rows_affected() == 0 {
            // Only the insert can affect nothing: a concurrent transaction created the
            // row after the lock found none.
            return Ok(Attempt::Retry);
        }
        tx.commit().await?;
        Ok(Attempt::Done(saved))
    }

    server_store!(inner);
}

impl Open for PostgresStore {
    async fn open(url: &str, options: SqlOptions) -> Result<Self, OpenError> {
        if Backend::of(url) != Some(Backend::Postgres) {
            return Err(OpenError::InvalidUrl("not a postgres:// URL".into()));
        }
        let connect =
            PgConnectOptions::from_str(url).map_err(|e| OpenError::InvalidUrl(e.into()))?;
        // Named in pg_stat_activity, unless the URL names itself.
        let connect = if url.contains("application_name=") {
            connect
        } else {
            connect.application_name("satchel")
        };
        let pool: PgPoolOptions = server_pool(options.timeout());
        let pool = pool.connect_lazy_with(connect);
        Self::from_pool(pool, options).await
    }
}

server_store!(traits PostgresStore);

//! The stores on a database server, PostgreSQL and MySQL: one generic store,
//! [`ServerStore`], over [`ServerDb`], the few things the two databases do differently
//! (how a URL becomes a pool, how a load refreshes, how the table is created, which
//! errors are worth another attempt). Every method the stores have is here.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sqlx::pool::PoolConnection;
use sqlx::query::{Query, QueryAs, QueryScalar};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};

use super::builder::sealed::Open;
use super::cleanup::{in_batches, spawn_cleanup};
use super::codec::{
    KeyedRow, Row, check_prefix, encode, fresh_version, key, millis, now, page, record,
};
use super::statements::Statements;
use super::statements::prefix_pattern;
use super::write::{Attempt, Failure, Write, plan, plan_update, retrying, settle};
use super::{Migration, OpenError, Progress, SqlOptions, SqlStoreBuilder, TableMapping};
use crate::error::StoreError;
use crate::id::SessionId;
use crate::record::{Changes, KeyUpdate, Record, Updated};
use crate::store::{Capabilities, ExpiredDeletion, Page, Saved, Seen, SessionStore};
use crate::support::within;

/// A store keeping sessions in a table of a database server:
/// [`PostgresStore`](super::PostgresStore) (`ServerStore<sqlx::Postgres>`) or
/// [`MySqlStore`](super::MySqlStore) (`ServerStore<sqlx::MySql>`).
///
/// Cloning is cheap and shares the pool. Every operation needs a tokio runtime, and each
/// is bounded as a whole by the store's timeout (SESSION_STORE_TIMEOUT).
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
pub struct ServerStore<DB: ServerDb> {
    inner: Arc<Inner<DB>>,
}

impl<DB: ServerDb> Clone for ServerStore<DB> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

/// What a store holds: its pool, where its rows live, and its statements.
pub struct Inner<DB: Database> {
    pub(super) pool: Pool<DB>,
    pub(super) mapping: TableMapping,
    pub(super) key_prefix: String,
    pub(super) timeout: Duration,
    pub(super) sql: Statements,
}

/// The databases a [`ServerStore`] runs on: `sqlx::Postgres` and `sqlx::MySql`.
///
/// The trait is sealed: what it asks of a database is private to Satchel.
pub trait ServerDb: sealed::Server {}

impl<DB: sealed::Server> ServerDb for DB {}

pub(super) mod sealed {
    use std::future::Future;
    use std::time::{Duration, SystemTime};

    use sqlx::Pool;

    use super::super::codec::Row;
    use super::super::statements::{Dialect, Statements};
    use super::super::write::Transient;
    use super::super::{Migration, OpenError};
    use super::Inner;

    /// What differs between the databases of a [`ServerStore`](super::ServerStore).
    pub trait Server: super::Run {
        /// The store's name, for `Debug`.
        const STORE: &'static str;
        /// The store's name in metrics ([`SessionStore::name`](crate::SessionStore::name)).
        const LABEL: &'static str;
        /// The server's name, for errors.
        const SERVER: &'static str;
        /// The SQL dialect of the statements.
        const DIALECT: Dialect;
        /// The statement beginning a locked save's transaction.
        const BEGIN: &'static str;

        /// A pool for `url` that connects lazily, waiting at most `timeout` for a
        /// connection.
        fn pool(url: &str, timeout: Duration) -> Result<Pool<Self>, OpenError>;

        /// Whether a database error is worth another attempt of a locked save.
        fn transient(error: &sqlx::Error) -> Option<Transient>;

        /// How many rows a statement changed (or matched, on MySQL).
        fn rows_affected(done: &Self::QueryResult) -> u64;

        /// The live row at `key`, its expiry moved to `touch` first when given.
        fn load<'a>(
            connection: &'a mut Self::Connection,
            sql: &'a Statements,
            key: &'a str,
            touch: Option<SystemTime>,
        ) -> impl Future<Output = Result<Option<Row>, sqlx::Error>> + Send + 'a;

        /// Creates the table and its index when missing, then checks the columns.
        fn migrate<'a>(
            connection: &'a mut Self::Connection,
            inner: &'a Inner<Self>,
        ) -> impl Future<Output = Result<Migration, sqlx::Error>> + Send + 'a;
    }
}

/// A connection of the pool, held for one operation. An operation abandoned midway (the
/// store's timeout cancelled it) closes its connection instead of handing it back: the
/// server may still run what was sent (a `BEGIN` whose answer sqlx never read, and so a
/// transaction sqlx does not know is open; a result nobody read), and the next
/// operation on that connection would run inside it, its writes never committed.
pub(super) struct Held<DB: Database> {
    connection: PoolConnection<DB>,
    finished: bool,
}

impl<DB: Database> Held<DB> {
    async fn acquire(pool: &Pool<DB>) -> Result<Self, sqlx::Error> {
        Ok(Self {
            connection: pool.acquire().await?,
            finished: false,
        })
    }

    fn connection(&mut self) -> &mut DB::Connection {
        &mut self.connection
    }

    /// The operation finished (well or not, but sqlx read every answer): the connection
    /// goes back to the pool.
    fn release(mut self) {
        self.finished = true;
    }
}

impl<DB: Database> Drop for Held<DB> {
    fn drop(&mut self) {
        if !self.finished {
            self.connection.close_on_drop();
        }
    }
}

impl<DB: Database> fmt::Debug for Held<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Held")
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

/// A value bound to a statement.
#[derive(Clone, Copy)]
pub enum Arg<'a> {
    Text(&'a str),
    Bytes(&'a [u8]),
    Int(i64),
}

// Keys hold session ids and data holds session values: neither is ever shown.
impl fmt::Debug for Arg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Text(_) => "Arg::Text",
            Self::Bytes(_) => "Arg::Bytes",
            Self::Int(_) => "Arg::Int",
        })
    }
}

impl<DB: Database> fmt::Debug for Inner<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inner")
            .field("mapping", &format_args!("{}", self.mapping))
            .finish_non_exhaustive()
    }
}

/// Runs a statement the same way on either database: written once, for every database
/// sqlx binds these values on.
pub trait Run: Database {
    /// Runs `sql` with `args` bound in order.
    fn execute<'a>(
        connection: &'a mut Self::Connection,
        sql: &'a str,
        args: &'a [Arg<'a>],
    ) -> impl Future<Output = Result<Self::QueryResult, sqlx::Error>> + Send + 'a;

    /// Runs `sql` with `args` bound in order; the row it returns, if any.
    fn fetch<'a>(
        connection: &'a mut Self::Connection,
        sql: &'a str,
        args: &'a [Arg<'a>],
    ) -> impl Future<Output = Result<Option<Row>, sqlx::Error>> + Send + 'a;

    /// Runs `sql` with `args` bound in order; every row it returns, with its key.
    fn fetch_keyed<'a>(
        connection: &'a mut Self::Connection,
        sql: &'a str,
        args: &'a [Arg<'a>],
    ) -> impl Future<Output = Result<Vec<KeyedRow>, sqlx::Error>> + Send + 'a;

    /// Runs `sql` with `args` bound in order; the number it returns.
    fn count<'a>(
        connection: &'a mut Self::Connection,
        sql: &'a str,
        args: &'a [Arg<'a>],
    ) -> impl Future<Output = Result<i64, sqlx::Error>> + Send + 'a;
}

/// Binds `args` in order.
macro_rules! bind_all {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match *arg {
                Arg::Text(text) => query.bind(text),
                Arg::Bytes(bytes) => query.bind(bytes),
                Arg::Int(int) => query.bind(int),
            };
        }
        query
    }};
}

impl<DB> Run for DB
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'r> Row: FromRow<'r, DB::Row>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
    for<'r> KeyedRow: FromRow<'r, DB::Row>,
{
    async fn execute<'a>(
        connection: &'a mut Self::Connection,
        sql: &'a str,
        args: &'a [Arg<'a>],
    ) -> Result<Self::QueryResult, sqlx::Error> {
        let query: Query<'a, DB, DB::Arguments<'a>> = bind_all!(sqlx::query(sql), args);
        query.execute(connection).await
    }

    async fn fetch<'a>(
        connection: &'a mut Self::Connection,
        sql: &'a str,
        args: &'a [Arg<'a>],
    ) -> Result<Option<Row>, sqlx::Error> {
        let query: QueryAs<'a, DB, Row, DB::Arguments<'a>> = bind_all!(sqlx::query_as(sql), args);
        query.fetch_optional(connection).await
    }

    async fn fetch_keyed<'a>(
        connection: &'a mut Self::Connection,
        sql: &'a str,
        args: &'a [Arg<'a>],
    ) -> Result<Vec<KeyedRow>, sqlx::Error> {
        let query: QueryAs<'a, DB, KeyedRow, DB::Arguments<'a>> =
            bind_all!(sqlx::query_as(sql), args);
        query.fetch_all(connection).await
    }

    async fn count<'a>(
        connection: &'a mut Self::Connection,
        sql: &'a str,
        args: &'a [Arg<'a>],
    ) -> Result<i64, sqlx::Error> {
        let query: QueryScalar<'a, DB, i64, DB::Arguments<'a>> =
            bind_all!(sqlx::query_scalar(sql), args);
        query.fetch_one(connection).await
    }
}

/// Runs `sql` with `args` bound in order; says how many rows it affected.
async fn run<DB: ServerDb>(
    connection: &mut DB::Connection,
    sql: &str,
    args: &[Arg<'_>],
) -> Result<u64, sqlx::Error> {
    Ok(DB::rows_affected(
        &DB::execute(connection, sql, args).await?,
    ))
}

impl<DB: ServerDb> fmt::Debug for ServerStore<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(DB::STORE)
            .field("mapping", &format_args!("{}", self.inner.mapping))
            .field("key_prefix", &self.inner.key_prefix)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl<DB: ServerDb> ServerStore<DB> {
    /// Starts configuring a store on the database at `url`, with
    /// [`SqlOptions::default`]: `postgres://user:password@host:5432/db` (any option
    /// sqlx's `PgConnectOptions` reads) for [`PostgresStore`](super::PostgresStore),
    /// `mysql://user:password@host:3306/db` (`mariadb://` is taken as the same) for
    /// [`MySqlStore`](super::MySqlStore).
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
    /// [`OpenError::InvalidUrl`] for a URL that is not the database's or does not parse,
    /// [`OpenError::KeyPrefixTooLong`], [`OpenError::Unreachable`] when the server does
    /// not answer, and [`OpenError::Migrate`] when the table cannot be created or checked.
    pub async fn connect(url: &str, options: SqlOptions) -> Result<Self, OpenError> {
        Self::builder(url).with_options(options).open().await
    }

    /// Uses a pool of your own, with `options` (its timeout bounds each operation; set
    /// the pool's acquire timeout yourself, and for MySQL turn its statement logging off:
    /// see [the MySQL store's documentation](super::mysql)).
    ///
    /// # Errors
    ///
    /// [`OpenError::KeyPrefixTooLong`], [`OpenError::Unreachable`] when the server does
    /// not answer, and [`OpenError::Migrate`] when auto-migration fails.
    pub async fn from_pool(pool: Pool<DB>, options: SqlOptions) -> Result<Self, OpenError> {
        check_prefix(options.key_prefix())?;
        let store = Self {
            inner: Arc::new(Inner {
                pool,
                sql: Statements::new(DB::DIALECT, options.mapping()),
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
    /// mapped column. Idempotent, also when several servers run it at once (PostgreSQL
    /// runs it in one transaction under an advisory lock; MySQL takes an index created
    /// meanwhile as success). The schema (MySQL: the database) a mapping names must
    /// exist. Bounded by the store's timeout, or 30 seconds if that is longer.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the database fails, or an existing table lacks a
    /// mapped column.
    pub async fn migrate(&self) -> Result<Migration, StoreError> {
        within(
            DB::SERVER,
            self.inner.timeout.max(Duration::from_secs(30)),
            async {
                let mut held = self.inner.hold().await?;
                let migration = DB::migrate(held.connection(), &self.inner).await;
                held.release();
                migration.map_err(StoreError::backend)
            },
        )
        .await
    }

    /// Counts the expired rows.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the database fails.
    pub async fn count_expired(&self) -> Result<u64, StoreError> {
        let inner = &self.inner;
        within(DB::SERVER, inner.timeout, async {
            let mut held = inner.hold().await?;
            let args = [Arg::Int(now())];
            let count = DB::count(held.connection(), &inner.sql.count_expired, &args).await;
            held.release();
            let count = count.map_err(StoreError::backend)?;
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
    pub fn pool(&self) -> &Pool<DB> {
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

impl<DB: ServerDb> Open for ServerStore<DB> {
    async fn open(url: &str, options: SqlOptions) -> Result<Self, OpenError> {
        let pool = DB::pool(url, options.timeout())?;
        Self::from_pool(pool, options).await
    }
}

impl<DB: ServerDb> Inner<DB> {
    fn key(&self, id: &SessionId) -> String {
        key(&self.key_prefix, id)
    }

    /// A connection for one operation (see [`Held`]).
    async fn hold(&self) -> Result<Held<DB>, StoreError> {
        Held::acquire(&self.pool).await.map_err(StoreError::backend)
    }

    async fn load(
        &self,
        id: &SessionId,
        touch: Option<SystemTime>,
    ) -> Result<Option<Record>, StoreError> {
        let key = self.key(id);
        let mut held = self.hold().await?;
        let row = DB::load(held.connection(), &self.sql, &key, touch).await;
        held.release();
        row.map_err(StoreError::backend)?.map(record).transpose()
    }

    /// The locked read-modify-write: applies `changes` onto the row locked `FOR UPDATE`.
    async fn save(
        &self,
        key: &str,
        changes: &Changes,
        at: SystemTime,
    ) -> Result<Saved, StoreError> {
        retrying(|| async { settle(self.try_save(key, changes, at).await, DB::transient) }).await
    }

    async fn try_save(
        &self,
        key: &str,
        changes: &Changes,
        at: SystemTime,
    ) -> Result<Attempt<Saved>, Failure> {
        let mut held = Held::acquire(&self.pool).await?;
        let attempt = self.try_save_on(held.connection(), key, changes, at).await;
        held.release();
        attempt
    }

    async fn try_save_on(
        &self,
        connection: &mut DB::Connection,
        key: &str,
        changes: &Changes,
        at: SystemTime,
    ) -> Result<Attempt<Saved>, Failure> {
        let mut tx = sqlx::Connection::begin_with(connection, DB::BEGIN).await?;
        let found = DB::fetch(&mut *tx, &self.sql.lock, &[Arg::Text(key)]).await?;
        let (write, saved) = plan(found, changes, at, now())?;
        let affected = match &write {
            // A concurrent insert of the same key: PostgreSQL inserts nothing, MySQL fails
            // with a duplicate key (retried).
            Write::Insert(bytes) => {
                let args = [
                    Arg::Text(key),
                    Arg::Bytes(bytes),
                    Arg::Int(millis(at)),
                    Arg::Int(fresh_version()),
                ];
                run::<DB>(&mut *tx, &self.sql.insert, &args).await?
            }
            Write::Update(bytes) => {
                let args = [Arg::Bytes(bytes), Arg::Int(millis(at)), Arg::Text(key)];
                run::<DB>(&mut *tx, &self.sql.update, &args).await?
            }
            Write::Delete => run::<DB>(&mut *tx, &self.sql.delete, &[Arg::Text(key)]).await?,
            Write::Nothing => return Ok(Attempt::Done(saved)),
        };
        if affected == 0 {
            // Only the insert can affect nothing: a concurrent transaction created the
            // row after the lock found none.
            return Ok(Attempt::Retry);
        }
        tx.commit().await?;
        Ok(Attempt::Done(saved))
    }

    /// The save of a request that saw the row at `seen.version`: one conditional
    /// statement when the row is still at that version, else the locked save.
    async fn save_seen(
        &self,
        id: &SessionId,
        seen: Seen<'_>,
        changes: &Changes,
        at: SystemTime,
    ) -> Result<Saved, StoreError> {
        changes.check_merged(seen.data)?;
        let key = self.key(id);
        let version = seen.version.cast_signed();
        let mut held = self.hold().await?;
        let (affected, saved) = if seen.data.is_empty() {
            let args = [Arg::Text(&key), Arg::Int(version), Arg::Int(now())];
            let affected = run::<DB>(held.connection(), &self.sql.delete_seen, &args).await;
            (affected, Saved::Empty)
        } else {
            let bytes = encode(seen.data, seen.meta())?;
            let args = [
                Arg::Bytes(&bytes),
                Arg::Int(millis(at)),
                Arg::Text(&key),
                Arg::Int(version),
                Arg::Int(now()),
            ];
            let affected = run::<DB>(held.connection(), &self.sql.update_seen, &args).await;
            (affected, Saved::Stored)
        };
        held.release();
        // MySQL reports rows matched, not rows changed: the version moves on with every
        // update, so a match is always a change there too.
        if affected.map_err(StoreError::backend)? == 1 {
            return Ok(saved);
        }
        self.save(&key, changes, at).await
    }

    async fn cycle(
        &self,
        old: &str,
        new: &str,
        changes: &Changes,
        at: SystemTime,
    ) -> Result<Saved, StoreError> {
        retrying(|| async { settle(self.try_cycle(old, new, changes, at).await, DB::transient) })
            .await
    }

    async fn try_cycle(
        &self,
        old: &str,
        new: &str,
        changes: &Changes,
        at: SystemTime,
    ) -> Result<Attempt<Saved>, Failure> {
        let mut held = Held::acquire(&self.pool).await?;
        let attempt = self
            .try_cycle_on(held.connection(), old, new, changes, at)
            .await;
        held.release();
        attempt
    }

    async fn try_cycle_on(
        &self,
        connection: &mut DB::Connection,
        old: &str,
        new: &str,
        changes: &Changes,
        at: SystemTime,
    ) -> Result<Attempt<Saved>, Failure> {
        let mut tx = sqlx::Connection::begin_with(connection, DB::BEGIN).await?;
        let found = DB::fetch(&mut *tx, &self.sql.lock, &[Arg::Text(old)]).await?;
        let (write, saved) = plan(found, changes, at, now())?;
        let (bytes, old_exists) = write.into_move();
        if let Some(bytes) = bytes {
            let args = [
                Arg::Text(new),
                Arg::Bytes(&bytes),
                Arg::Int(millis(at)),
                Arg::Int(fresh_version()),
            ];
            run::<DB>(&mut *tx, &self.sql.upsert, &args).await?;
        }
        if old_exists {
            run::<DB>(&mut *tx, &self.sql.delete, &[Arg::Text(old)]).await?;
        }
        tx.commit().await?;
        Ok(Attempt::Done(saved))
    }

    async fn update(
        &self,
        key: &str,
        name: &str,
        update: &KeyUpdate,
    ) -> Result<Updated, StoreError> {
        retrying(|| async { settle(self.try_update(key, name, update).await, DB::transient) }).await
    }

    /// Applies `update` to the session key `name` of the row at `key`, locked `FOR
    /// UPDATE`; the transaction is committed whatever it wrote, so the lock goes at once.
    async fn try_update(
        &self,
        key: &str,
        name: &str,
        update: &KeyUpdate,
    ) -> Result<Attempt<Updated>, Failure> {
        let mut held = Held::acquire(&self.pool).await?;
        let attempt = self
            .try_update_on(held.connection(), key, name, update)
            .await;
        held.release();
        attempt
    }

    async fn try_update_on(
        &self,
        connection: &mut DB::Connection,
        key: &str,
        name: &str,
        update: &KeyUpdate,
    ) -> Result<Attempt<Updated>, Failure> {
        let mut tx = sqlx::Connection::begin_with(connection, DB::BEGIN).await?;
        let found = DB::fetch(&mut *tx, &self.sql.lock, &[Arg::Text(key)]).await?;
        let (write, updated) = plan_update(found, name, update, now())?;
        match write {
            Write::Update(bytes) => {
                let args = [Arg::Bytes(&bytes), Arg::Text(key)];
                run::<DB>(&mut *tx, &self.sql.rewrite, &args).await?;
            }
            Write::Delete => {
                run::<DB>(&mut *tx, &self.sql.delete, &[Arg::Text(key)]).await?;
            }
            Write::Insert(_) | Write::Nothing => {}
        }
        tx.commit().await?;
        Ok(Attempt::Done(updated))
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        let key = self.key(id);
        let mut held = self.hold().await?;
        let deleted = run::<DB>(held.connection(), &self.sql.delete, &[Arg::Text(&key)]).await;
        held.release();
        deleted.map_err(StoreError::backend)?;
        Ok(())
    }

    async fn delete_expired(
        &self,
        batch_size: u64,
        progress: impl FnMut(Progress) + Send,
    ) -> Result<u64, StoreError> {
        in_batches(batch_size, progress, |now, limit| {
            within(DB::SERVER, self.timeout, async move {
                let args = [Arg::Int(now), Arg::Int(limit)];
                let mut held = self.hold().await?;
                let deleted = run::<DB>(held.connection(), &self.sql.delete_batch, &args).await;
                held.release();
                deleted.map_err(StoreError::backend)
            })
        })
        .await
    }
}

impl<DB: ServerDb> SessionStore for ServerStore<DB> {
    /// Pages in key order; the cursor is the last key of the page before.
    async fn list(&self, cursor: Option<&str>, limit: usize) -> Result<Page, StoreError> {
        let limit = limit.max(1);
        let inner = &self.inner;
        within(DB::SERVER, inner.timeout, async {
            let pattern = prefix_pattern(&inner.key_prefix);
            let args = [
                Arg::Text(cursor.unwrap_or_default()),
                Arg::Text(&pattern),
                Arg::Int(now()),
                Arg::Int(i64::try_from(limit).unwrap_or(i64::MAX)),
            ];
            let mut held = inner.hold().await?;
            let rows = DB::fetch_keyed(held.connection(), &inner.sql.list, &args).await;
            held.release();
            Ok(page(
                rows.map_err(StoreError::backend)?,
                &inner.key_prefix,
                limit,
            ))
        })
        .await
    }

    fn name(&self) -> &'static str {
        DB::LABEL
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            listable: true,
            ..Capabilities::default()
        }
    }

    async fn load(
        &self,
        id: &SessionId,
        touch: Option<SystemTime>,
    ) -> Result<Option<Record>, StoreError> {
        within(DB::SERVER, self.inner.timeout, self.inner.load(id, touch)).await
    }

    async fn save(
        &self,
        id: &SessionId,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        let key = self.inner.key(id);
        within(
            DB::SERVER,
            self.inner.timeout,
            self.inner.save(&key, changes, expires_at),
        )
        .await
    }

    async fn save_seen(
        &self,
        id: &SessionId,
        seen: Seen<'_>,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        within(
            DB::SERVER,
            self.inner.timeout,
            self.inner.save_seen(id, seen, changes, expires_at),
        )
        .await
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
        within(
            DB::SERVER,
            self.inner.timeout,
            self.inner.cycle(&old, &new, changes, expires_at),
        )
        .await
    }

    async fn update(
        &self,
        id: &SessionId,
        key: &str,
        update: &KeyUpdate,
    ) -> Result<Updated, StoreError> {
        let row = self.inner.key(id);
        within(
            DB::SERVER,
            self.inner.timeout,
            self.inner.update(&row, key, update),
        )
        .await
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        within(DB::SERVER, self.inner.timeout, self.inner.delete(id)).await
    }
}

impl<DB: ServerDb> ExpiredDeletion for ServerStore<DB> {
    /// Deletes every expired row, [`DEFAULT_BATCH_SIZE`](super::DEFAULT_BATCH_SIZE) rows
    /// per statement.
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        self.inner
            .delete_expired(super::DEFAULT_BATCH_SIZE, |_| {})
            .await
    }
}

/// A pooled connection to a database server that sat idle this long is pinged before
/// use (the server or a proxy may have closed it meanwhile).
const PING_WHEN_IDLE: Duration = Duration::from_secs(30);

/// Pool options for a database server: `timeout` to get a connection, and a ping only
/// for a connection idle for [`PING_WHEN_IDLE`]. sqlx's default pings before every use,
/// which adds a round trip to every statement: a load would cost two.
pub(super) fn server_pool<DB: Database>(timeout: Duration) -> sqlx::pool::PoolOptions<DB> {
    sqlx::pool::PoolOptions::new()
        .acquire_timeout(timeout)
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_WHEN_IDLE {
                    sqlx::Connection::ping(connection).await?;
                }
                Ok(true)
            })
        })
}

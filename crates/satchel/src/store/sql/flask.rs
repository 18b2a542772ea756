//! The SQL stores as a [`FlaskBackend`]: Flask-Session's table, one row per session.
//!
//! # The table
//!
//! Flask-Session's `SqlAlchemySessionInterface` model, in SESSION_SQLALCHEMY_TABLE (its
//! name and schema come from the [`TableMapping`](super::TableMapping); the column names
//! are Flask-Session's, whatever the mapping says):
//!
//! | column | SQLite | PostgreSQL | MySQL / MariaDB | holds |
//! | --- | --- | --- | --- | --- |
//! | `id` | `INTEGER` primary key | `SERIAL` primary key | `INTEGER AUTO_INCREMENT` primary key | a row number |
//! | `session_id` | `VARCHAR(255)`, unique | the same | the same | SESSION_KEY_PREFIX + the session id |
//! | `data` | `BLOB` | `BYTEA` | `BLOB` (64 KiB at most) | the session's Flask-Session value |
//! | `expiry` | `DATETIME` (text `YYYY-MM-DD HH:MM:SS.ffffff`) | `TIMESTAMP WITHOUT TIME ZONE` | `DATETIME(6)` | the expiry, in UTC |
//!
//! These are the statements Flask-Session's SQLAlchemy model emits; [`SqlStore::create_flask_table`]
//! runs them when the table is missing (at start, unless SESSION_SQL_AUTO_MIGRATE is
//! `false`), and a table Flask made is used as it is. On MySQL the store's own table
//! differs in two ways that Flask-Session reads alike: `session_id` compares
//! case-sensitively (`utf8mb4_bin`) and `expiry` keeps microseconds (`DATETIME(6)`); a
//! table Flask made uses the database's default collation and whole seconds, to which
//! MySQL rounds the expiry.
//!
//! # Statements
//!
//! A read is one `SELECT` of the row, its expiry turned into Unix milliseconds by the
//! database; a refresh is an `UPDATE` of the expiry of a live row, then that `SELECT`.
//! A write is one conditional statement: `UPDATE … WHERE session_id = ? AND data = ?`
//! (the value read), an `INSERT` when nothing was read (a unique violation means another
//! writer got in first), or `DELETE … WHERE session_id = ? AND data = ?`. Values are
//! always bound as parameters.

use std::time::SystemTime;

use super::statements::Dialect;
use super::{SqlStore, TableMapping};
use crate::error::StoreError;
use crate::flask::{Blob, FlaskBackend};
use crate::support::{from_unix_millis, unix_millis};

/// The statements on Flask-Session's table, for one dialect and table.
#[derive(Debug)]
struct FlaskSql {
    get: String,
    touch: String,
    update: String,
    insert: String,
    remove: String,
    delete: String,
    create: String,
    expired: String,
}

impl FlaskSql {
    fn new(dialect: Dialect, mapping: &TableMapping) -> Self {
        let table = match mapping.schema() {
            Some(schema) => format!(
                "{}.{}",
                dialect.quote(schema),
                dialect.quote(mapping.table())
            ),
            None => dialect.quote(mapping.table()),
        };
        let p = |n| dialect.param(n);
        // The expiry, as Unix milliseconds, and a time in Unix milliseconds (bound as an
        // integer) as the column's type.
        let millis = match dialect {
            Dialect::Sqlite => {
                "CAST(ROUND((julianday(expiry) - 2440587.5) * 86400000.0) AS INTEGER)".to_owned()
            }
            Dialect::Postgres => {
                "CAST(ROUND(EXTRACT(EPOCH FROM expiry) * 1000) AS BIGINT)".to_owned()
            }
            Dialect::MySql => {
                "CAST(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', expiry) DIV 1000 AS SIGNED)"
                    .to_owned()
            }
        };
        let time = |param: String| match dialect {
            // SQLAlchemy's text form, with six digits of fraction.
            Dialect::Sqlite => format!(
                "(strftime('%Y-%m-%d %H:%M:%f', CAST({param} AS INTEGER) / 1000.0, 'unixepoch') || '000')"
            ),
            Dialect::Postgres => {
                format!("(to_timestamp(CAST({param} AS BIGINT) / 1000.0) AT TIME ZONE 'UTC')")
            }
            Dialect::MySql => {
                format!("TIMESTAMPADD(MICROSECOND, {param} * 1000, '1970-01-01 00:00:00')")
            }
        };
        let create = match dialect {
            Dialect::Sqlite => format!(
                "CREATE TABLE IF NOT EXISTS {table} (id INTEGER NOT NULL, session_id VARCHAR(255), \
                 data BLOB, expiry DATETIME, PRIMARY KEY (id), UNIQUE (session_id))"
            ),
            Dialect::Postgres => format!(
                "CREATE TABLE IF NOT EXISTS {table} (id SERIAL NOT NULL, session_id VARCHAR(255), \
                 data BYTEA, expiry TIMESTAMP WITHOUT TIME ZONE, PRIMARY KEY (id), \
                 UNIQUE (session_id))"
            ),
            Dialect::MySql => format!(
                "CREATE TABLE IF NOT EXISTS {table} (id INTEGER NOT NULL AUTO_INCREMENT, \
                 session_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, data BLOB, \
                 expiry DATETIME(6), PRIMARY KEY (id), UNIQUE (session_id))"
            ),
        };
        Self {
            get: format!(
                "SELECT data, {millis} FROM {table} WHERE session_id = {}",
                p(1)
            ),
            touch: format!(
                "UPDATE {table} SET expiry = {} WHERE session_id = {} AND (expiry IS NULL OR {millis} > {})",
                time(p(1)),
                p(2),
                p(3)
            ),
            update: format!(
                "UPDATE {table} SET data = {}, expiry = {} WHERE session_id = {} AND data = {}",
                p(1),
                time(p(2)),
                p(3),
                p(4)
            ),
            insert: format!(
                "INSERT INTO {table} (session_id, data, expiry) VALUES ({}, {}, {})",
                p(1),
                p(2),
                time(p(3))
            ),
            remove: format!(
                "DELETE FROM {table} WHERE session_id = {} AND data = {}",
                p(1),
                p(2)
            ),
            delete: format!("DELETE FROM {table} WHERE session_id = {}", p(1)),
            expired: format!("DELETE FROM {table} WHERE {millis} <= {}", p(1)),
            create,
        }
    }
}

/// Unix milliseconds as SQL binds them.
fn millis(at: SystemTime) -> i64 {
    i64::try_from(unix_millis(at)).unwrap_or(i64::MAX)
}

/// Whether an error is the unique violation of an `INSERT` that lost a race.
fn lost_insert(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(error) if error.is_unique_violation())
}

/// A database error, as a store error.
fn backend(error: sqlx::Error) -> StoreError {
    StoreError::backend(error)
}

/// Runs the Flask-Session statements on one store's pool: the same code for each
/// database, whose pools differ in type.
macro_rules! on_pool {
    ($pool:expr, $sql:expr, $op:ident $(, $arg:expr)*) => {
        on_pool!(@$op $pool, $sql $(, $arg)*)
    };
    (@get $pool:expr, $sql:expr, $key:expr, $touch:expr) => {{
        if let Some(at) = $touch {
            sqlx::query(&$sql.touch)
                .bind(millis(at))
                .bind($key)
                .bind(millis(SystemTime::now()))
                .execute($pool)
                .await
                .map_err(backend)?;
        }
        let row: Option<(Vec<u8>, Option<i64>)> = sqlx::query_as(&$sql.get)
            .bind($key)
            .fetch_optional($pool)
            .await
            .map_err(backend)?;
        Ok(row.map(|(value, expiry)| {
            let expires_at = expiry
                .and_then(|ms| u64::try_from(ms).ok())
                .map(from_unix_millis);
            Blob::new(value, expires_at)
        }))
    }};
    (@put $pool:expr, $sql:expr, $key:expr, $current:expr, $value:expr, $expires:expr) => {{
        match $current {
            Some(current) => {
                let done = sqlx::query(&$sql.update)
                    .bind($value)
                    .bind(millis($expires))
                    .bind($key)
                    .bind(&current.value[..])
                    .execute($pool)
                    .await
                    .map_err(backend)?;
                Ok(done.rows_affected() == 1)
            }
            None => {
                let done = sqlx::query(&$sql.insert)
                    .bind($key)
                    .bind($value)
                    .bind(millis($expires))
                    .execute($pool)
                    .await;
                match done {
                    Ok(_) => Ok(true),
                    Err(error) if lost_insert(&error) => Ok(false),
                    Err(error) => Err(backend(error)),
                }
            }
        }
    }};
    (@remove $pool:expr, $sql:expr, $key:expr, $current:expr) => {{
        let done = sqlx::query(&$sql.remove)
            .bind($key)
            .bind(&$current.value[..])
            .execute($pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }};
    (@delete $pool:expr, $sql:expr, $key:expr) => {{
        sqlx::query(&$sql.delete)
            .bind($key)
            .execute($pool)
            .await
            .map_err(backend)?;
        Ok(())
    }};
    (@expired $pool:expr, $sql:expr) => {{
        let done = sqlx::query(&$sql.expired)
            .bind(millis(SystemTime::now()))
            .execute($pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected())
    }};
    (@create $pool:expr, $sql:expr) => {{
        sqlx::query(&$sql.create)
            .execute($pool)
            .await
            .map_err(backend)?;
        Ok(())
    }};
}

/// Runs one Flask-Session operation on whichever database `$store` is, within the
/// store's timeout.
macro_rules! dispatch {
    ($store:expr, $op:ident $(, $arg:expr)*) => {{
        let timeout = $store.flask_timeout();
        let work = async {
            match $store {
                #[cfg(feature = "sqlite")]
                SqlStore::Sqlite(store) => {
                    let sql = FlaskSql::new(Dialect::Sqlite, store.mapping());
                    on_pool!(store.pool(), sql, $op $(, $arg)*)
                }
                #[cfg(feature = "postgres")]
                SqlStore::Postgres(store) => {
                    let sql = FlaskSql::new(Dialect::Postgres, store.mapping());
                    on_pool!(store.pool(), sql, $op $(, $arg)*)
                }
                #[cfg(feature = "mysql")]
                SqlStore::MySql(store) => {
                    let sql = FlaskSql::new(Dialect::MySql, store.mapping());
                    on_pool!(store.pool(), sql, $op $(, $arg)*)
                }
            }
        };
        crate::support::within("SQL", timeout, work).await
    }};
}

impl SqlStore {
    /// Creates Flask-Session's table (see the [`flask`](crate::flask) layout) when it is
    /// missing, with the statement Flask-Session's model emits for the database; a table
    /// that exists is left as it is.
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::store::sql::SqlStore;
    ///
    /// # #[cfg(feature = "sqlite")]
    /// # tokio_test::block_on(async {
    /// let store = SqlStore::builder("sqlite::memory:").open().await?;
    /// store.create_flask_table().await?;
    /// store.create_flask_table().await?; // once there, left as it is
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the database refuses or cannot be reached.
    pub async fn create_flask_table(&self) -> Result<(), StoreError> {
        dispatch!(self, create)
    }

    /// Deletes the expired rows of Flask-Session's table, in one statement (Flask-Session's
    /// `flask session_cleanup` does the same); how many went. Rows without an expiry
    /// (Flask Unchained's browser sessions) are left alone.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the database refuses or cannot be reached.
    pub async fn delete_expired_flask(&self) -> Result<u64, StoreError> {
        dispatch!(self, expired)
    }

    /// The limit of one Flask-Session operation: the pool's wait for a connection, which
    /// the store's timeout (SESSION_STORE_TIMEOUT) sets.
    fn flask_timeout(&self) -> std::time::Duration {
        each!(self, store => store.pool().options().get_acquire_timeout())
    }
}

impl FlaskBackend for SqlStore {
    async fn blob(&self, key: &str, touch: Option<SystemTime>) -> Result<Option<Blob>, StoreError> {
        dispatch!(self, get, key, touch)
    }

    async fn put_blob(
        &self,
        key: &str,
        current: Option<&Blob>,
        value: &[u8],
        expires_at: SystemTime,
    ) -> Result<bool, StoreError> {
        dispatch!(self, put, key, current, value, expires_at)
    }

    async fn remove_blob(&self, key: &str, current: &Blob) -> Result<bool, StoreError> {
        dispatch!(self, remove, key, current)
    }

    async fn delete_blob(&self, key: &str) -> Result<(), StoreError> {
        dispatch!(self, delete, key)
    }

    fn blob_prefix(&self) -> &str {
        self.key_prefix()
    }

    fn backend_name(&self) -> &'static str {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => "sqlite",
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => "postgres",
            #[cfg(feature = "mysql")]
            Self::MySql(_) => "mysql",
        }
    }
}

//! The PostgreSQL store.
//!
//! See the [SQL stores' documentation](super) for the schema, the table mapping and how
//! concurrent requests are kept from losing updates, and [`ServerStore`] for every method
//! the store has. Specific to PostgreSQL, and all that this module holds:
//!
//! - A load with a refresh is one `UPDATE … RETURNING`.
//! - Saves that must read and write lock the row with `SELECT … FOR UPDATE` (at the
//!   default `READ COMMITTED` isolation); deadlocks and serialization failures the server
//!   reports are retried.
//! - [`migrate`](ServerStore::migrate) runs in one transaction under an advisory lock,
//!   so servers starting together do not race to create the table.
//! - Connections name themselves `satchel` in `pg_stat_activity`, unless the URL sets
//!   `application_name`.
//! - Every operation as a whole is bounded by SESSION_STORE_TIMEOUT.

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions, PgQueryResult};
use sqlx::{Pool, Postgres};

use super::codec::{Row, millis, now};
use super::mapping::fnv1a;
use super::server::sealed::Server;
use super::server::{Arg, Inner, Run as _, ServerStore, server_pool};
use super::statements::{Dialect, Statements};
use super::write::Transient;
use super::{Backend, Migration, OpenError};

/// A store keeping sessions in a PostgreSQL table (SESSION_TYPE=`sqlalchemy` with a
/// `postgres://` SESSION_SQL_URL): the [`ServerStore`] on PostgreSQL.
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
pub type PostgresStore = ServerStore<Postgres>;

impl Server for Postgres {
    const STORE: &'static str = "PostgresStore";
    const LABEL: &'static str = "postgres";
    const SERVER: &'static str = "PostgreSQL";
    const DIALECT: Dialect = Dialect::Postgres;
    const BEGIN: &'static str = "BEGIN";

    fn pool(url: &str, timeout: Duration) -> Result<Pool<Self>, OpenError> {
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
        let pool: PgPoolOptions = server_pool(timeout);
        Ok(pool.connect_lazy_with(connect))
    }

    /// Failures worth another attempt: unique_violation (a concurrent transaction
    /// created the row first), and the failures PostgreSQL asks clients to retry,
    /// deadlock_detected and serialization_failure.
    fn transient(error: &sqlx::Error) -> Option<Transient> {
        let code = error.as_database_error()?.code()?;
        match &*code {
            "23505" => Some(Transient::Raced),
            "40P01" | "40001" => Some(Transient::Aborted),
            _ => None,
        }
    }

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }

    async fn load(
        connection: &mut PgConnection,
        sql: &Statements,
        key: &str,
        touch: Option<SystemTime>,
    ) -> Result<Option<Row>, sqlx::Error> {
        match touch {
            Some(at) => {
                let args = [Arg::Int(millis(at)), Arg::Text(key), Arg::Int(now())];
                Self::fetch(connection, &sql.touch, &args).await
            }
            None => {
                let args = [Arg::Text(key), Arg::Int(now())];
                Self::fetch(connection, &sql.select, &args).await
            }
        }
    }

    async fn migrate(
        connection: &mut PgConnection,
        inner: &Inner<Self>,
    ) -> Result<Migration, sqlx::Error> {
        let quote = |name: &str| Dialect::Postgres.quote(name);
        let table = inner.sql.table.clone();
        let index = match &inner.mapping.schema {
            Some(schema) => format!("{}.{}", quote(schema), quote(&inner.mapping.index())),
            None => quote(&inner.mapping.index()),
        };
        let lock = fnv1a(format!("satchel migrate {table}").as_bytes()).cast_signed();
        let mut tx = sqlx::Connection::begin(connection).await?;
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
            sqlx::query(&inner.sql.create_table)
                .execute(&mut *tx)
                .await?;
        }
        let index_exists: bool = sqlx::query_scalar(exists)
            .bind(&index)
            .fetch_one(&mut *tx)
            .await?;
        if !index_exists {
            sqlx::query(&inner.sql.create_index)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(&inner.sql.probe).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Migration {
            table_created: !table_exists,
            index_created: !index_exists,
        })
    }
}

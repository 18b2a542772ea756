//! The MySQL and MariaDB store.
//!
//! See the [SQL stores' documentation](super) for the schema, the table mapping and how
//! concurrent requests are kept from losing updates, and [`ServerStore`] for every method
//! the store has. Specific to MySQL and MariaDB, and all that this module holds:
//!
//! - There is no `UPDATE … RETURNING`. A load with a refresh sends the touch and the
//!   read as one multi-statement query, `UPDATE …; SELECT …`: one round trip, two
//!   statements. A multi-statement query cannot carry bound parameters, so its values are
//!   literals made by the store: the key as a hexadecimal string literal (no character of
//!   it can end the literal, whatever the key prefix holds) and two integers.
//!   Since that text holds the key, [`connect`](ServerStore::connect) turns off sqlx's
//!   statement logging (which would write it at debug level, and slow ones as warnings);
//!   a pool given to [`from_pool`](ServerStore::from_pool) should do the same with
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
//! - MySQL has no `CREATE INDEX IF NOT EXISTS` (MariaDB has): [`migrate`](ServerStore::migrate)
//!   looks the index up first, and takes "duplicate key name" from a concurrent migration
//!   as success.
//! - Every operation as a whole is bounded by SESSION_STORE_TIMEOUT.

use std::fmt::Write as _;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use sqlx::mysql::{
    MySqlConnectOptions, MySqlConnection, MySqlDatabaseError, MySqlPoolOptions, MySqlQueryResult,
};
use sqlx::{ConnectOptions as _, MySql, Pool, Row as _};

use super::codec::{Row, millis, now};
use super::server::sealed::Server;
use super::server::{Arg, Inner, Run as _, ServerStore, server_pool};
use super::statements::{Dialect, Statements};
use super::write::Transient;
use super::{Backend, Migration, OpenError};

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
/// a `mysql://` SESSION_SQL_URL): the [`ServerStore`] on MySQL.
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
pub type MySqlStore = ServerStore<MySql>;

impl Server for MySql {
    const STORE: &'static str = "MySqlStore";
    const LABEL: &'static str = "mysql";
    const SERVER: &'static str = "MySQL";
    const DIALECT: Dialect = Dialect::MySql;
    const BEGIN: &'static str = BEGIN;

    fn pool(url: &str, timeout: Duration) -> Result<Pool<Self>, OpenError> {
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
        let pool: MySqlPoolOptions = server_pool(timeout);
        Ok(pool.connect_lazy_with(connect))
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

    fn rows_affected(done: &MySqlQueryResult) -> u64 {
        done.rows_affected()
    }

    async fn load(
        connection: &mut MySqlConnection,
        sql: &Statements,
        key: &str,
        touch: Option<SystemTime>,
    ) -> Result<Option<Row>, sqlx::Error> {
        let now = now();
        let Some(at) = touch else {
            let args = [Arg::Text(key), Arg::Int(now)];
            return Self::fetch(connection, &sql.select, &args).await;
        };
        let Statements {
            table,
            id,
            data,
            expiry,
            version,
            ..
        } = sql;
        let key = literal(key);
        let at = millis(at);
        let statement = format!(
            "UPDATE {table} SET {expiry} = GREATEST({expiry}, {at}) \
             WHERE {id} = {key} AND {expiry} > {now}; \
             SELECT {data}, {expiry}, {version} FROM {table} \
             WHERE {id} = {key} AND {expiry} > {now}"
        );
        let rows = sqlx::Executor::fetch_all(connection, sqlx::raw_sql(&statement)).await?;
        rows.first()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
            .transpose()
    }

    async fn migrate(
        connection: &mut MySqlConnection,
        inner: &Inner<Self>,
    ) -> Result<Migration, sqlx::Error> {
        let schema = inner.mapping.schema();
        let tables: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ?",
        )
        .bind(schema)
        .bind(inner.mapping.table())
        .fetch_one(&mut *connection)
        .await?;
        if tables == 0 {
            sqlx::query(&inner.sql.create_table)
                .execute(&mut *connection)
                .await?;
        }
        let indexes: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.statistics \
             WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ? AND index_name = ?",
        )
        .bind(schema)
        .bind(inner.mapping.table())
        .bind(inner.mapping.index())
        .fetch_one(&mut *connection)
        .await?;
        let mut index_created = false;
        if indexes == 0 {
            match sqlx::query(&inner.sql.create_index)
                .execute(&mut *connection)
                .await
            {
                Ok(_) => index_created = true,
                // Created meanwhile by another server.
                Err(error) if number(&error) == Some(ER_DUP_KEYNAME) => {}
                Err(error) => return Err(error),
            }
        }
        sqlx::query(&inner.sql.probe)
            .execute(&mut *connection)
            .await?;
        Ok(Migration {
            table_created: tables == 0,
            index_created,
        })
    }
}

/// MySQL's number for a database error.
fn number(error: &sqlx::Error) -> Option<u16> {
    error
        .as_database_error()
        .and_then(|error| error.try_downcast_ref::<MySqlDatabaseError>())
        .map(MySqlDatabaseError::number)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_hold_any_key() {
        assert_eq!(literal("a'b"), "_utf8mb4 X'612762'");
        assert_eq!(literal(""), "_utf8mb4 X''");
    }
}

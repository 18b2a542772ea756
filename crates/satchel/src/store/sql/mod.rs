//! The SQL stores (SESSION_TYPE=`sqlalchemy`, alias `sql`): [`SqliteStore`],
//! [`PostgresStore`] and [`MySqlStore`] (MySQL and MariaDB), on [sqlx] connection pools.
//!
//! [`from_config`] picks the backend from the scheme of SESSION_SQL_URL:
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
//! Pools connect lazily: a store can be built while its database is down, and requests
//! fail with [`StoreError::Backend`] until it is back; then the pool reconnects by itself.
//! Waiting for a connection, and every PostgreSQL and MySQL operation as a whole, is
//! bounded by SESSION_STORE_TIMEOUT. With SESSION_SQL_AUTO_MIGRATE on (the default) the
//! store runs [`migrate`](SqliteStore::migrate) when it starts, which needs the database:
//! startup then fails with a clear [`ConfigError`] when it is unreachable. Turn it off to
//! start without the database and run `satchel migrate` once instead.
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
    allow(dead_code)
)]
#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(unused_imports, unused_variables)
)]

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::SessionConfig;
use crate::error::{BoxError, ConfigError, StoreError};
use crate::id::{ID_LEN, SessionId};
use crate::record::{Changes, Data, KeyUpdate, Record, Updated};
use crate::store::{BoxedStore, Capabilities, ExpiredDeletion, Saved, Seen, SessionStore};

#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub mod mysql;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;

#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub use mysql::MySqlStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::SqliteStore;

/// Default table (SESSION_SQLALCHEMY_TABLE): Flask-Session's name.
pub const DEFAULT_TABLE: &str = "flask_sessions";
/// Default number of expired rows one cleanup statement deletes.
pub const DEFAULT_BATCH_SIZE: u64 = 1000;
/// Longest table, schema, column or index name accepted (PostgreSQL's limit; MySQL's is
/// 64).
pub const MAX_NAME_LEN: usize = 63;
/// Length of the `id` column: the key prefix and the id must fit.
const MAX_KEY_LEN: usize = 255;
/// Default key prefix (SESSION_KEY_PREFIX).
const DEFAULT_KEY_PREFIX: &str = "session:";
/// Default timeout (SESSION_STORE_TIMEOUT).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// How many times a locked save is tried before it gives up: again after losing a race
/// to create the row, or after the database aborted its transaction.
const MAX_ATTEMPTS: usize = 5;

/// What SESSION_SQL_URL accepts, for error messages.
const EXPECTED_URL: &str = "a database URL: sqlite://path/to/sessions.db (optionally ?mode=rwc), \
     sqlite::memory:, postgres://user:password@host:5432/db or mysql://user:password@host:3306/db";

/// Where the sessions live in the database: the schema, the table and the names of its
/// columns (SESSION_SQLALCHEMY_TABLE and SESSION_SQLALCHEMY_MODEL).
///
/// Every name is validated when it is set: ASCII letters, digits and underscores, not
/// starting with a digit, at most [`MAX_NAME_LEN`] characters. The stores quote names
/// for their dialect, so reserved words are fine.
///
/// The string form, as SESSION_SQLALCHEMY_MODEL takes it, is a comma-separated list of
/// `field=name` pairs with the fields `schema`, `table`, `id`, `data`, `expiry`,
/// `version` and `index`; fields left out keep their defaults. [`Display`](fmt::Display)
/// writes the form back with every column named.
///
/// # Examples
///
/// ```
/// use satchel::store::sql::TableMapping;
///
/// let mapping: TableMapping =
///     "schema=public,table=web_sessions,id=session_id,data=payload,expiry=expires_at".parse()?;
/// assert_eq!(mapping.schema(), Some("public"));
/// assert_eq!(mapping.table(), "web_sessions");
/// assert_eq!(mapping.id_column(), "session_id");
/// assert_eq!(mapping.version_column(), "version");
/// assert_eq!(mapping.index(), "web_sessions_expires_at_idx");
///
/// // The same in code:
/// let built = TableMapping::new("web_sessions")?
///     .with_schema("public")?
///     .with_id_column("session_id")?
///     .with_data_column("payload")?
///     .with_expiry_column("expires_at")?;
/// assert_eq!(built, mapping);
///
/// // Names are never spliced into SQL unchecked.
/// assert!(TableMapping::new("users; drop table x").is_err());
/// # Ok::<_, satchel::store::sql::MappingError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMapping {
    schema: Option<String>,
    table: String,
    id: String,
    data: String,
    expiry: String,
    version: String,
    index: Option<String>,
}

/// Why a [`TableMapping`] cannot be built or parsed.
///
/// # Examples
///
/// ```
/// use satchel::store::sql::{MappingError, TableMapping};
///
/// let error = "table=sessions,colour=blue".parse::<TableMapping>().unwrap_err();
/// assert!(matches!(error, MappingError::UnknownField(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MappingError {
    /// A name is empty, too long, or has characters other than ASCII letters, digits and
    /// underscores (or starts with a digit).
    #[error(
        "invalid {field} name {name:?}: use 1 to {MAX_NAME_LEN} ASCII letters, digits and \
         underscores, not starting with a digit"
    )]
    InvalidName {
        /// What the name is for: `table`, `schema`, `id` column, …
        field: &'static str,
        /// The name as given.
        name: String,
    },
    /// An entry of the string form is not a `field=name` pair.
    #[error("invalid table mapping entry {0:?}: expected field=name pairs separated by commas")]
    Malformed(String),
    /// The string form names a field that does not exist.
    #[error(
        "unknown table mapping field {0:?}: expected schema, table, id, data, expiry, version or index"
    )]
    UnknownField(String),
    /// The string form gives a field twice.
    #[error("table mapping field {0} is given twice")]
    DuplicateField(&'static str),
    /// Two columns have the same name.
    #[error("the {0} and {1} columns must have different names")]
    SameColumn(&'static str, &'static str),
}

impl TableMapping {
    /// The default layout in `table`: columns `id`, `data`, `expiry` and `version`, in the
    /// connection's default schema.
    ///
    /// # Errors
    ///
    /// [`MappingError::InvalidName`] when `table` is not a valid name.
    pub fn new(table: &str) -> Result<Self, MappingError> {
        Ok(Self {
            schema: None,
            table: checked("table", table)?,
            id: "id".to_owned(),
            data: "data".to_owned(),
            expiry: "expiry".to_owned(),
            version: "version".to_owned(),
            index: None,
        })
    }

    /// Parses the string form (see the [type documentation](Self)), taking the table
    /// from `table` unless the string names one.
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::store::sql::TableMapping;
    ///
    /// let mapping = TableMapping::parse_with_table("id=sid", "app_sessions")?;
    /// assert_eq!((mapping.table(), mapping.id_column()), ("app_sessions", "sid"));
    /// # Ok::<_, satchel::store::sql::MappingError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`MappingError`] when an entry is malformed, unknown, repeated or names an invalid
    /// name, or two columns share a name.
    pub fn parse_with_table(text: &str, table: &str) -> Result<Self, MappingError> {
        let mut given: [Option<&str>; 7] = [None; 7];
        const FIELDS: [&str; 7] = [
            "schema", "table", "id", "data", "expiry", "version", "index",
        ];
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (field, name) = entry
                .split_once('=')
                .ok_or_else(|| MappingError::Malformed(entry.to_owned()))?;
            let field = field.trim().to_ascii_lowercase();
            let slot = FIELDS
                .iter()
                .position(|known| *known == field)
                .ok_or(MappingError::UnknownField(field))?;
            if given[slot].replace(name.trim()).is_some() {
                return Err(MappingError::DuplicateField(FIELDS[slot]));
            }
        }
        let [schema, own_table, id, data, expiry, version, index] = given;
        let mut mapping = Self::new(own_table.unwrap_or(table))?;
        if let Some(schema) = schema {
            mapping = mapping.with_schema(schema)?;
        }
        if let Some(index) = index {
            mapping = mapping.with_index(index)?;
        }
        mapping.id = checked("id column", id.unwrap_or("id"))?;
        mapping.data = checked("data column", data.unwrap_or("data"))?;
        mapping.expiry = checked("expiry column", expiry.unwrap_or("expiry"))?;
        mapping.version = checked("version column", version.unwrap_or("version"))?;
        mapping.distinct()
    }

    /// The mapping the configuration describes: SESSION_SQLALCHEMY_TABLE, overridden by
    /// SESSION_SQLALCHEMY_MODEL where that names a table.
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::SessionConfig;
    /// use satchel::store::sql::TableMapping;
    ///
    /// let config = SessionConfig::default().with_sql_model("data=payload");
    /// let mapping = TableMapping::from_config(&config)?;
    /// assert_eq!((mapping.table(), mapping.data_column()), ("flask_sessions", "payload"));
    /// # Ok::<_, satchel::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming SESSION_SQLALCHEMY_TABLE or SESSION_SQLALCHEMY_MODEL.
    pub fn from_config(config: &SessionConfig) -> Result<Self, ConfigError> {
        let table = config.sql_table();
        let model = config.sql_model().unwrap_or_default();
        Self::parse_with_table(model, table).map_err(|error| match error {
            MappingError::InvalidName {
                field: "table",
                name,
            } if name == table => ConfigError::Invalid {
                key: "SESSION_SQLALCHEMY_TABLE".into(),
                value: name,
                expected: "1 to 63 ASCII letters, digits and underscores, not starting \
                               with a digit"
                    .into(),
            },
            error => ConfigError::Invalid {
                key: "SESSION_SQLALCHEMY_MODEL".into(),
                value: model.to_owned(),
                expected: format!(
                    "a table mapping such as `schema=public,table=web_sessions,\
                     id=session_id,data=payload,expiry=expires_at` ({error})"
                ),
            },
        })
    }

    /// Sets the schema (PostgreSQL), database (MySQL) or attached database (SQLite) of the
    /// table. It must exist already.
    ///
    /// # Errors
    ///
    /// [`MappingError::InvalidName`] when `schema` is not a valid name.
    pub fn with_schema(mut self, schema: &str) -> Result<Self, MappingError> {
        self.schema = Some(checked("schema", schema)?);
        Ok(self)
    }

    /// Sets the table.
    ///
    /// # Errors
    ///
    /// [`MappingError::InvalidName`] when `table` is not a valid name.
    pub fn with_table(mut self, table: &str) -> Result<Self, MappingError> {
        self.table = checked("table", table)?;
        Ok(self)
    }

    /// Sets the column holding the key (prefix and session id).
    ///
    /// # Errors
    ///
    /// [`MappingError`] when `column` is not a valid name or is another column's.
    pub fn with_id_column(mut self, column: &str) -> Result<Self, MappingError> {
        self.id = checked("id column", column)?;
        self.distinct()
    }

    /// Sets the column holding the encoded session data.
    ///
    /// # Errors
    ///
    /// [`MappingError`] when `column` is not a valid name or is another column's.
    pub fn with_data_column(mut self, column: &str) -> Result<Self, MappingError> {
        self.data = checked("data column", column)?;
        self.distinct()
    }

    /// Sets the column holding the expiry (Unix milliseconds).
    ///
    /// # Errors
    ///
    /// [`MappingError`] when `column` is not a valid name or is another column's.
    pub fn with_expiry_column(mut self, column: &str) -> Result<Self, MappingError> {
        self.expiry = checked("expiry column", column)?;
        self.distinct()
    }

    /// Sets the column holding the row's version.
    ///
    /// # Errors
    ///
    /// [`MappingError`] when `column` is not a valid name or is another column's.
    pub fn with_version_column(mut self, column: &str) -> Result<Self, MappingError> {
        self.version = checked("version column", column)?;
        self.distinct()
    }

    /// Sets the name of the index on the expiry column (default
    /// `<table>_<expiry>_idx`, shortened with a hash when longer than [`MAX_NAME_LEN`]).
    ///
    /// # Errors
    ///
    /// [`MappingError::InvalidName`] when `index` is not a valid name.
    pub fn with_index(mut self, index: &str) -> Result<Self, MappingError> {
        self.index = Some(checked("index", index)?);
        Ok(self)
    }

    /// The schema, if one is set.
    #[must_use]
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The table.
    #[must_use]
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The key column.
    #[must_use]
    pub fn id_column(&self) -> &str {
        &self.id
    }

    /// The data column.
    #[must_use]
    pub fn data_column(&self) -> &str {
        &self.data
    }

    /// The expiry column.
    #[must_use]
    pub fn expiry_column(&self) -> &str {
        &self.expiry
    }

    /// The version column.
    #[must_use]
    pub fn version_column(&self) -> &str {
        &self.version
    }

    /// The name of the index on the expiry column.
    #[must_use]
    pub fn index(&self) -> String {
        if let Some(index) = &self.index {
            return index.clone();
        }
        let name = format!("{}_{}_idx", self.table, self.expiry);
        if name.len() <= MAX_NAME_LEN {
            return name;
        }
        // Deterministic, so that every start finds the index it created before.
        let hash = fnv1a(name.as_bytes()) >> 32;
        format!("{}_{hash:08x}_idx", &self.table[..MAX_NAME_LEN - 13])
    }

    fn distinct(self) -> Result<Self, MappingError> {
        let columns = [
            ("id", &self.id),
            ("data", &self.data),
            ("expiry", &self.expiry),
            ("version", &self.version),
        ];
        for (i, (a, first)) in columns.iter().enumerate() {
            for (b, second) in &columns[i + 1..] {
                if first.eq_ignore_ascii_case(second) {
                    return Err(MappingError::SameColumn(a, b));
                }
            }
        }
        Ok(self)
    }
}

impl Default for TableMapping {
    /// The default layout in [`DEFAULT_TABLE`].
    fn default() -> Self {
        Self {
            schema: None,
            table: DEFAULT_TABLE.to_owned(),
            id: "id".to_owned(),
            data: "data".to_owned(),
            expiry: "expiry".to_owned(),
            version: "version".to_owned(),
            index: None,
        }
    }
}

impl FromStr for TableMapping {
    type Err = MappingError;

    /// Parses the string form, with [`DEFAULT_TABLE`] unless it names a table.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse_with_table(text, DEFAULT_TABLE)
    }
}

impl fmt::Display for TableMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(schema) = &self.schema {
            write!(f, "schema={schema},")?;
        }
        write!(
            f,
            "table={},id={},data={},expiry={},version={}",
            self.table, self.id, self.data, self.expiry, self.version
        )?;
        match &self.index {
            Some(index) => write!(f, ",index={index}"),
            None => Ok(()),
        }
    }
}

/// Checks a name for SQL: 1 to 63 ASCII letters, digits and underscores, not starting
/// with a digit.
fn checked(field: &'static str, name: &str) -> Result<String, MappingError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if valid {
        Ok(name.to_owned())
    } else {
        Err(MappingError::InvalidName {
            field,
            name: name.to_owned(),
        })
    }
}

/// 64-bit FNV-1a: a small hash that is the same in every process and release.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// How a SQL store is set up, apart from its connection: what [`from_pool`]
/// (e.g. [`SqliteStore::from_pool`]) and `connect` take.
///
/// [`from_pool`]: PostgresStore::from_pool
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use satchel::store::sql::{SqlOptions, TableMapping};
///
/// let options = SqlOptions::default()
///     .with_mapping(TableMapping::new("web_sessions")?)
///     .with_key_prefix("shop:")
///     .with_cleanup_interval(Some(Duration::from_secs(600)));
/// assert_eq!(options.mapping().table(), "web_sessions");
/// assert!(options.auto_migrate());
/// # Ok::<_, satchel::store::sql::MappingError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SqlOptions {
    mapping: TableMapping,
    key_prefix: String,
    timeout: Duration,
    auto_migrate: bool,
    cleanup_interval: Option<Duration>,
}

impl Default for SqlOptions {
    /// Table [`DEFAULT_TABLE`], key prefix `session:`, a 2 second timeout, migrate at
    /// start, no background cleanup: the defaults of the configuration keys.
    fn default() -> Self {
        Self {
            mapping: TableMapping::default(),
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            auto_migrate: true,
            cleanup_interval: None,
        }
    }
}

impl SqlOptions {
    /// The options the configuration describes: SESSION_SQLALCHEMY_TABLE,
    /// SESSION_SQLALCHEMY_MODEL, SESSION_KEY_PREFIX, SESSION_STORE_TIMEOUT,
    /// SESSION_SQL_AUTO_MIGRATE and SESSION_SQL_CLEANUP_INTERVAL.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when the table mapping is not valid.
    pub fn from_config(config: &SessionConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            mapping: TableMapping::from_config(config)?,
            key_prefix: config.key_prefix().to_owned(),
            timeout: config.store_timeout(),
            auto_migrate: config.sql_auto_migrate(),
            cleanup_interval: config.sql_cleanup_interval(),
        })
    }

    /// Sets where the sessions live (default: table [`DEFAULT_TABLE`]).
    #[must_use]
    pub fn with_mapping(mut self, mapping: TableMapping) -> Self {
        self.mapping = mapping;
        self
    }

    /// Sets the prefix of every key (default `session:`), so that several applications
    /// can share one table.
    #[must_use]
    pub fn with_key_prefix(mut self, key_prefix: impl Into<String>) -> Self {
        self.key_prefix = key_prefix.into();
        self
    }

    /// Sets how long a request may wait for a connection, and how long a PostgreSQL or
    /// MySQL operation may take as a whole (default 2 seconds), so that a database that
    /// is down gives a quick error instead of requests piling up.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets whether the store creates its table and index when it starts (default
    /// `true`).
    #[must_use]
    pub fn with_auto_migrate(mut self, auto_migrate: bool) -> Self {
        self.auto_migrate = auto_migrate;
        self
    }

    /// Sets the interval of a background task deleting expired rows (default `None`: no
    /// task).
    #[must_use]
    pub fn with_cleanup_interval(mut self, interval: Option<Duration>) -> Self {
        self.cleanup_interval = interval;
        self
    }

    /// Where the sessions live.
    #[must_use]
    pub fn mapping(&self) -> &TableMapping {
        &self.mapping
    }

    /// The key prefix.
    #[must_use]
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// The timeout.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether the store migrates when it starts.
    #[must_use]
    pub fn auto_migrate(&self) -> bool {
        self.auto_migrate
    }

    /// The interval of the background cleanup, if any.
    #[must_use]
    pub fn cleanup_interval(&self) -> Option<Duration> {
        self.cleanup_interval
    }
}

/// Why a SQL store cannot be opened.
///
/// # Examples
///
/// ```
/// use satchel::store::sql::{OpenError, SqlOptions};
///
/// let long = SqlOptions::default().with_key_prefix("x".repeat(300));
/// # #[cfg(feature = "sqlite")]
/// # tokio_test::block_on(async {
/// let error = satchel::SqliteStore::connect("sqlite::memory:", long).await.unwrap_err();
/// assert!(matches!(error, OpenError::KeyPrefixTooLong { .. }));
/// # });
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The URL cannot be parsed, or belongs to another database.
    #[error("invalid database URL")]
    InvalidUrl(#[source] BoxError),
    /// The key prefix leaves no room for the id in the 255 characters of the id column.
    #[error("key prefix is {len} bytes long, at most {max} fit in the id column")]
    KeyPrefixTooLong {
        /// The length of the prefix.
        len: usize,
        /// The longest prefix that fits.
        max: usize,
    },
    /// The table and index could not be created or checked (the database is unreachable,
    /// refuses, or an existing table lacks a mapped column).
    #[error("the session table could not be prepared")]
    Migrate(#[source] StoreError),
}

/// What [`migrate`](SqliteStore::migrate) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Migration {
    /// The table was missing and has been created.
    pub table_created: bool,
    /// The expiry index was missing and has been created.
    pub index_created: bool,
}

/// Progress of a batched cleanup, reported after every batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Batches run so far, this one included.
    pub batches: u64,
    /// Rows this batch deleted.
    pub deleted_in_batch: u64,
    /// Rows deleted so far.
    pub deleted: u64,
}

/// Any of the SQL stores, chosen by the scheme of a URL: what `satchel migrate` and
/// `satchel cleanup` use.
///
/// # Examples
///
/// ```
/// use satchel::store::sql::{SqlOptions, SqlStore};
/// use satchel::ExpiredDeletion;
///
/// # #[cfg(feature = "sqlite")]
/// # tokio_test::block_on(async {
/// let store = SqlStore::connect("sqlite::memory:", SqlOptions::default()).await?;
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
    /// Opens the store for `url`'s scheme; see the `connect` of [`SqliteStore`],
    /// [`PostgresStore`] and [`MySqlStore`].
    ///
    /// # Errors
    ///
    /// [`OpenError`] as the store's own `connect` gives it, and
    /// [`OpenError::InvalidUrl`] for a scheme this build has no store for.
    pub async fn connect(url: &str, options: SqlOptions) -> Result<Self, OpenError> {
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

    /// Opens the store SESSION_SQL_URL names, with the settings of `config`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the key at fault: SESSION_SQL_URL missing or not usable,
    /// an invalid table mapping or key prefix, or a database that cannot be prepared at
    /// start (see the [module documentation](self)).
    pub async fn from_config(config: &SessionConfig) -> Result<Self, ConfigError> {
        let url = config.sql_url().ok_or_else(|| {
            ConfigError::Conflict(format!(
                "SESSION_TYPE={} needs SESSION_SQL_URL: {EXPECTED_URL}",
                config.session_type()
            ))
        })?;
        let options = SqlOptions::from_config(config)?;
        Self::connect(url, options)
            .await
            .map_err(|error| config_error(config, url, &error))
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
}

impl ExpiredDeletion for SqlStore {
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        each!(self, store => store.delete_expired().await)
    }
}

/// Opens the SQL store SESSION_SQL_URL names (SESSION_TYPE=`sqlalchemy`), as
/// [`SqlStore::from_config`] does, type-erased.
///
/// # Examples
///
/// ```
/// use satchel::{SessionConfig, SessionType};
///
/// # #[cfg(feature = "sqlite")]
/// # tokio_test::block_on(async {
/// let config = SessionConfig::default()
///     .with_session_type(SessionType::Sql)
///     .with_sql_url("sqlite::memory:");
/// let store = satchel::store::sql::from_config(&config).await?;
/// # let _ = store;
/// # Ok::<_, satchel::ConfigError>(())
/// # }).unwrap();
/// ```
///
/// # Errors
///
/// As [`SqlStore::from_config`].
pub async fn from_config(config: &SessionConfig) -> Result<BoxedStore, ConfigError> {
    SqlStore::from_config(config)
        .await
        .map(SqlStore::into_boxed)
}

/// The configuration error for a store that cannot be opened.
fn config_error(config: &SessionConfig, url: &str, error: &OpenError) -> ConfigError {
    match error {
        OpenError::InvalidUrl(source) => ConfigError::Invalid {
            key: "SESSION_SQL_URL".into(),
            value: redact(url),
            expected: format!("{EXPECTED_URL} ({source})"),
        },
        OpenError::KeyPrefixTooLong { max, .. } => ConfigError::Invalid {
            key: "SESSION_KEY_PREFIX".into(),
            value: config.key_prefix().to_owned(),
            expected: format!("a prefix of at most {max} bytes, to fit the id column"),
        },
        OpenError::Migrate(source) => ConfigError::Conflict(format!(
            "SESSION_SQL_URL={}: the session table could not be created or checked: {}; \
             check that the database is up and the table mapping matches, or set \
             SESSION_SQL_AUTO_MIGRATE=false to start without it and run `satchel migrate` later",
            redact(url),
            chain(source)
        )),
    }
}

/// An error and its sources, joined by `: `.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `url` with the password of its user info masked.
fn redact(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].find(':') {
        Some(colon) => format!("{}{}:***{}", &url[..start], &rest[..colon], &rest[at..]),
        None => url.to_owned(),
    }
}

/// The SQL dialects, for quoting and the statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Sqlite,
    Postgres,
    MySql,
}

impl Dialect {
    /// Quotes a name that [`checked`] accepted (it holds no quote character).
    ///
    /// SQLite takes a double-quoted name that matches no column for a string literal, so
    /// a mapped column missing from the table would pass unnoticed; backquoted names are
    /// always names there, as in MySQL.
    fn quote(self, name: &str) -> String {
        match self {
            Self::Sqlite | Self::MySql => format!("`{name}`"),
            Self::Postgres => format!("\"{name}\""),
        }
    }

    /// The `n`th bind parameter (from 1); MySQL's are positional, so statements bind in
    /// the order the parameters appear.
    fn param(self, n: usize) -> String {
        match self {
            Self::MySql => "?".to_owned(),
            Self::Sqlite | Self::Postgres => format!("${n}"),
        }
    }
}

/// The statements of one store, built once from its validated, quoted names.
#[derive(Debug)]
struct Statements {
    /// Quoted names, for statements built per call.
    table: String,
    id: String,
    data: String,
    expiry: String,
    version: String,
    /// `(key, now)`: the live row.
    select: String,
    /// `(touch, key, now)`: extend and return the live row (SQLite, PostgreSQL).
    touch: String,
    /// `(key)`: the row, locked (PostgreSQL, MySQL) for the rest of the transaction.
    lock: String,
    /// `(key, data, expiry, version)`: a new row; on SQLite and PostgreSQL nothing
    /// happens when the key exists.
    insert: String,
    /// `(data, expiry, key)`.
    update: String,
    /// `(data, key)`: the row's data, with its expiry as it is.
    rewrite: String,
    /// `(key, data, expiry, version)`: a new row, or the existing one overwritten.
    upsert: String,
    /// `(data, expiry, key, version, now)`.
    update_seen: String,
    /// `(key, version, now)`.
    delete_seen: String,
    /// `(key)`.
    delete: String,
    /// `(now, limit)`.
    delete_batch: String,
    /// `(now)`.
    count_expired: String,
    /// Fails unless the table has every mapped column.
    probe: String,
    create_table: String,
    create_index: String,
}

impl Statements {
    /// `(key 1, …, key n, now)`: the id and the columns of the live rows among `n` keys
    /// (SQLite's grouped reads).
    #[cfg(feature = "sqlite")]
    fn select_many(&self, n: usize) -> String {
        let Self {
            table,
            id,
            data,
            expiry,
            version,
            ..
        } = self;
        let marks = vec!["?"; n].join(", ");
        format!(
            "SELECT {id}, {data}, {expiry}, {version} FROM {table} \
             WHERE {id} IN ({marks}) AND {expiry} > ?"
        )
    }

    fn new(dialect: Dialect, mapping: &TableMapping) -> Self {
        let q = |name: &str| dialect.quote(name);
        let p = |n: usize| dialect.param(n);
        let table = match &mapping.schema {
            Some(schema) => format!("{}.{}", q(schema), q(&mapping.table)),
            None => q(&mapping.table),
        };
        let (id, data, expiry, version) = (
            q(&mapping.id),
            q(&mapping.data),
            q(&mapping.expiry),
            q(&mapping.version),
        );
        let index = mapping.index();
        let columns = format!("{data}, {expiry}, {version}");
        let greatest = match dialect {
            Dialect::Sqlite => "MAX",
            Dialect::Postgres | Dialect::MySql => "GREATEST",
        };
        let for_update = match dialect {
            Dialect::Sqlite => "",
            Dialect::Postgres | Dialect::MySql => " FOR UPDATE",
        };
        let values = format!("({}, {}, {}, {})", p(1), p(2), p(3), p(4));
        let insert_columns = format!("({id}, {data}, {expiry}, {version})");
        let insert = match dialect {
            Dialect::MySql => format!("INSERT INTO {table} {insert_columns} VALUES {values}"),
            Dialect::Sqlite | Dialect::Postgres => format!(
                "INSERT INTO {table} {insert_columns} VALUES {values} ON CONFLICT ({id}) DO NOTHING"
            ),
        };
        let upsert = match dialect {
            Dialect::Sqlite => format!(
                "INSERT INTO {table} {insert_columns} VALUES {values} ON CONFLICT ({id}) DO UPDATE \
                 SET {data} = excluded.{data}, {expiry} = excluded.{expiry}, \
                 {version} = {version} + 1"
            ),
            Dialect::Postgres => format!(
                "INSERT INTO {table} AS cur {insert_columns} VALUES {values} ON CONFLICT ({id}) \
                 DO UPDATE SET {data} = EXCLUDED.{data}, {expiry} = EXCLUDED.{expiry}, \
                 {version} = cur.{version} + 1"
            ),
            Dialect::MySql => format!(
                "INSERT INTO {table} {insert_columns} VALUES {values} ON DUPLICATE KEY UPDATE \
                 {data} = VALUES({data}), {expiry} = VALUES({expiry}), {version} = {version} + 1"
            ),
        };
        let delete_batch = match dialect {
            Dialect::Sqlite => format!(
                "DELETE FROM {table} WHERE {id} IN \
                 (SELECT {id} FROM {table} WHERE {expiry} <= $1 LIMIT $2)"
            ),
            // Rows another cleanup holds are skipped, and a row refreshed meanwhile is
            // checked again once locked.
            Dialect::Postgres => format!(
                "DELETE FROM {table} WHERE {id} IN \
                 (SELECT {id} FROM {table} WHERE {expiry} <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)"
            ),
            Dialect::MySql => format!("DELETE FROM {table} WHERE {expiry} <= ? LIMIT ?"),
        };
        let create_table = match dialect {
            Dialect::Sqlite => format!(
                "CREATE TABLE IF NOT EXISTS {table} ({id} VARCHAR(255) NOT NULL PRIMARY KEY, \
                 {data} BLOB NOT NULL, {expiry} BIGINT NOT NULL, {version} BIGINT NOT NULL)"
            ),
            Dialect::Postgres => format!(
                "CREATE TABLE IF NOT EXISTS {table} ({id} VARCHAR(255) NOT NULL PRIMARY KEY, \
                 {data} BYTEA NOT NULL, {expiry} BIGINT NOT NULL, {version} BIGINT NOT NULL)"
            ),
            Dialect::MySql => format!(
                "CREATE TABLE IF NOT EXISTS {table} ({id} VARCHAR(255) CHARACTER SET utf8mb4 \
                 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY, {data} LONGBLOB NOT NULL, \
                 {expiry} BIGINT NOT NULL, {version} BIGINT NOT NULL) ENGINE=InnoDB"
            ),
        };
        let create_index = match (dialect, &mapping.schema) {
            // SQLite names the schema on the index, and the table bare.
            (Dialect::Sqlite, Some(schema)) => format!(
                "CREATE INDEX IF NOT EXISTS {}.{} ON {} ({expiry})",
                q(schema),
                q(&index),
                q(&mapping.table)
            ),
            (Dialect::Sqlite | Dialect::Postgres, _) => format!(
                "CREATE INDEX IF NOT EXISTS {} ON {table} ({expiry})",
                q(&index)
            ),
            // MySQL has no IF NOT EXISTS here (MariaDB has): "duplicate key name" is
            // taken as success.
            (Dialect::MySql, _) => format!("CREATE INDEX {} ON {table} ({expiry})", q(&index)),
        };
        Self {
            select: format!(
                "SELECT {columns} FROM {table} WHERE {id} = {} AND {expiry} > {}",
                p(1),
                p(2)
            ),
            touch: format!(
                "UPDATE {table} SET {expiry} = {greatest}({expiry}, {}) \
                 WHERE {id} = {} AND {expiry} > {} RETURNING {columns}",
                p(1),
                p(2),
                p(3)
            ),
            lock: format!(
                "SELECT {columns} FROM {table} WHERE {id} = {}{for_update}",
                p(1)
            ),
            insert,
            update: format!(
                "UPDATE {table} SET {data} = {}, {expiry} = {}, {version} = {version} + 1 \
                 WHERE {id} = {}",
                p(1),
                p(2),
                p(3)
            ),
            rewrite: format!(
                "UPDATE {table} SET {data} = {}, {version} = {version} + 1 WHERE {id} = {}",
                p(1),
                p(2)
            ),
            upsert,
            update_seen: format!(
                "UPDATE {table} SET {data} = {}, {expiry} = {}, {version} = {version} + 1 \
                 WHERE {id} = {} AND {version} = {} AND {expiry} > {}",
                p(1),
                p(2),
                p(3),
                p(4),
                p(5)
            ),
            delete_seen: format!(
                "DELETE FROM {table} WHERE {id} = {} AND {version} = {} AND {expiry} > {}",
                p(1),
                p(2),
                p(3)
            ),
            delete: format!("DELETE FROM {table} WHERE {id} = {}", p(1)),
            delete_batch,
            count_expired: format!("SELECT COUNT(*) FROM {table} WHERE {expiry} <= {}", p(1)),
            probe: format!("SELECT {id}, {columns} FROM {table} WHERE 1 = 0"),
            create_table,
            create_index,
            table,
            id,
            data,
            expiry,
            version,
        }
    }
}

/// A session row as read: `(data, expiry, version)`.
type Row = (Vec<u8>, i64, i64);

/// What a session row's data column holds, as written.
#[derive(Serialize)]
struct BodyRef<'a> {
    data: &'a Data,
    permanent: Option<bool>,
}

/// What a session row's data column holds, as read.
#[derive(Deserialize)]
struct Body {
    data: Data,
    permanent: Option<bool>,
}

fn encode(data: &Data, permanent: Option<bool>) -> Result<Vec<u8>, StoreError> {
    rmp_serde::to_vec_named(&BodyRef { data, permanent }).map_err(StoreError::encode)
}

/// The record a row holds.
fn record((bytes, expiry, version): Row) -> Result<Record, StoreError> {
    let body: Body = rmp_serde::from_slice(&bytes).map_err(StoreError::decode)?;
    Ok(Record {
        data: body.data,
        expires_at: time(expiry),
        permanent: body.permanent,
        version: Some(version.cast_unsigned()),
    })
}

/// Unix milliseconds, saturating.
fn millis(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn time(millis: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(millis).unwrap_or(0))
}

fn now() -> i64 {
    millis(SystemTime::now())
}

/// The version of a new row: random, so that a row deleted and created again never
/// repeats a version a slow request may still hold.
fn fresh_version() -> i64 {
    let random = getrandom::u64().unwrap_or_else(|_| {
        u64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
                & u128::from(u64::MAX),
        )
        .unwrap_or_default()
    });
    // Far from overflowing, whatever the number of writes.
    (random >> 2).cast_signed() + 1
}

/// The key of a session: the prefix and the id.
fn key(prefix: &str, id: &SessionId) -> String {
    let mut key = String::with_capacity(prefix.len() + ID_LEN);
    key.push_str(prefix);
    id.encode_into(&mut key);
    key
}

/// Refuses a key prefix that leaves no room for the id.
fn check_prefix(prefix: &str) -> Result<(), OpenError> {
    let max = MAX_KEY_LEN - ID_LEN;
    if prefix.len() > max {
        return Err(OpenError::KeyPrefixTooLong {
            len: prefix.len(),
            max,
        });
    }
    Ok(())
}

/// What a locked read-modify-write writes.
#[derive(Debug)]
enum Write {
    /// No row existed: insert this.
    Insert(Vec<u8>),
    /// Overwrite the existing row with this.
    Update(Vec<u8>),
    /// Delete the existing row.
    Delete,
    /// No row, and nothing to write.
    Nothing,
}

impl Write {
    /// The same plan for moving the entry to a new id: the bytes to store under the new
    /// id, if any, and whether the row under the old id exists and must be deleted.
    fn into_move(self) -> (Option<Vec<u8>>, bool) {
        match self {
            Write::Insert(bytes) => (Some(bytes), false),
            Write::Update(bytes) => (Some(bytes), true),
            Write::Delete => (None, true),
            Write::Nothing => (None, false),
        }
    }
}

/// Applies `changes` onto the row found under the lock (an expired or corrupt row counts
/// as none) and says what to write.
fn plan(
    found: Option<Row>,
    changes: &Changes,
    expires_at: SystemTime,
    now: i64,
) -> Result<(Write, Saved), StoreError> {
    let existed = found.is_some();
    let base = match found.filter(|(_, expiry, _)| *expiry > now).map(record) {
        None => None,
        Some(Ok(record)) => Some(record),
        Some(Err(StoreError::Decode(error))) => {
            tracing::warn!(%error, "replacing a stored session that could not be decoded");
            None
        }
        Some(Err(error)) => return Err(error),
    };
    Ok(match changes.apply_to(base, expires_at) {
        Some(record) => {
            let bytes = encode(&record.data, record.permanent)?;
            let write = if existed {
                Write::Update(bytes)
            } else {
                Write::Insert(bytes)
            };
            (write, Saved::Stored)
        }
        None if existed => (Write::Delete, Saved::Empty),
        None => (Write::Nothing, Saved::Empty),
    })
}

/// Applies `update` to `name` (a session key) of the row found under the lock, and says
/// what to write: the row's new data column ([`Write::Update`], written with the row's
/// own expiry), the row's deletion when no key is left, or nothing. An expired row counts
/// as none ([`Updated::Missing`]); a row that cannot be decoded is an error, and is left
/// as it is.
fn plan_update(
    found: Option<Row>,
    name: &str,
    update: &KeyUpdate,
    now: i64,
) -> Result<(Write, Updated), StoreError> {
    let Some(row) = found.filter(|(_, expiry, _)| *expiry > now) else {
        return Ok((Write::Nothing, Updated::Missing));
    };
    let mut stored = record(row)?;
    let updated = update.apply_to(&mut stored.data, name);
    let write = match updated {
        Updated::Applied(_) if stored.data.is_empty() => Write::Delete,
        Updated::Applied(_) => Write::Update(encode(&stored.data, stored.permanent)?),
        _ => Write::Nothing,
    };
    Ok((write, updated))
}

/// A save gave up after losing [`MAX_ATTEMPTS`] races in a row: each time, a concurrent
/// transaction created the row after the locked read found none.
#[derive(Debug, thiserror::Error)]
#[error("the session row kept changing under concurrent writes")]
struct Contended;

/// A save gave up after [`MAX_ATTEMPTS`] attempts, of which the database aborted at
/// least one (the others lost a race); the source is the database's last error (a
/// deadlock it broke, a lock it gave up waiting for).
#[derive(Debug, thiserror::Error)]
#[error("the database aborted the session's transaction {aborted} of {attempts} times")]
struct Aborted {
    aborted: usize,
    attempts: usize,
    #[source]
    source: sqlx::Error,
}

/// Whether a failed attempt of a locked save should be run again: a concurrent
/// transaction created the row first, or the database aborted the transaction.
enum Attempt<T> {
    Done(T),
    /// A concurrent transaction created the row after the locked read found none.
    Retry,
    /// The database rolled the transaction back to break a deadlock, or gave up waiting
    /// for a lock, and asks for the transaction to be run again.
    Aborted(sqlx::Error),
}

/// A database error worth another attempt of a locked save.
enum Transient {
    /// A concurrent transaction created the row first (a duplicate key).
    Raced,
    /// The database aborted the transaction: a deadlock, a lock wait timeout.
    Aborted,
}

/// A failure inside a locked save: the database's own, or the store's.
#[derive(Debug)]
enum Failure {
    Sql(sqlx::Error),
    Store(StoreError),
}

impl From<sqlx::Error> for Failure {
    fn from(error: sqlx::Error) -> Self {
        Self::Sql(error)
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// The outcome of one attempt of a locked save: failures `transient` recognizes (a row
/// another transaction created first, a transaction the database aborted) are tried
/// again.
fn settle<T>(
    result: Result<Attempt<T>, Failure>,
    transient: impl Fn(&sqlx::Error) -> Option<Transient>,
) -> Result<Attempt<T>, StoreError> {
    match result {
        Ok(attempt) => Ok(attempt),
        Err(Failure::Sql(error)) => match transient(&error) {
            Some(Transient::Raced) => Ok(Attempt::Retry),
            Some(Transient::Aborted) => Ok(Attempt::Aborted(error)),
            None => Err(StoreError::backend(error)),
        },
        Err(Failure::Store(error)) => Err(error),
    }
}

/// Runs `attempt` until it is done, at most [`MAX_ATTEMPTS`] times, pausing briefly
/// before each new attempt. The error after the last says why it failed: a race lost
/// to concurrent writes, or the database's own error.
async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Attempt<T>, StoreError>>,
{
    let mut aborted = 0;
    let mut last = None;
    for n in 0..MAX_ATTEMPTS {
        if n > 0 {
            pause(n).await;
        }
        match attempt().await? {
            Attempt::Done(value) => return Ok(value),
            Attempt::Retry => {}
            Attempt::Aborted(error) => {
                aborted += 1;
                last = Some(error);
            }
        }
    }
    Err(match last {
        Some(source) => StoreError::backend(Aborted {
            aborted,
            attempts: MAX_ATTEMPTS,
            source,
        }),
        None => StoreError::backend(Contended),
    })
}

/// A short random pause before attempt `n` (from 1) of a locked save, growing with `n`
/// (up to 16 ms), so that transactions that collided do not meet again in step.
async fn pause(n: usize) {
    let cap = 1000_u32 << n.min(4);
    let micros = getrandom::u32().unwrap_or(cap / 2) % cap;
    tokio::time::sleep(Duration::from_micros(u64::from(micros))).await;
}

/// The parts of a server-backed store (PostgreSQL, MySQL) that are the same statements
/// whatever the database: its `Inner`'s save-from-what-was-seen, id cycling, delete and
/// batched expiry, and the store traits over that `Inner`. Each backend module expands
/// `server_store!(inner)` inside `impl Inner` and `server_store!(traits $Store)` at top
/// level; the names they use come from the backend module.
#[cfg(any(feature = "postgres", feature = "mysql"))]
macro_rules! server_store {
    (inner) => {
        async fn save_seen(
            &self,
            id: &SessionId,
            seen: Seen<'_>,
            changes: &Changes,
            at: SystemTime,
        ) -> Result<Saved, StoreError> {
            let key = self.key(id);
            let version = seen.version.cast_signed();
            let (query, saved) = if seen.data.is_empty() {
                let query = sqlx::query(&self.sql.delete_seen)
                    .bind(&key)
                    .bind(version)
                    .bind(now());
                (query, Saved::Empty)
            } else {
                let query = sqlx::query(&self.sql.update_seen)
                    .bind(encode(seen.data, seen.permanent)?)
                    .bind(millis(at))
                    .bind(&key)
                    .bind(version)
                    .bind(now());
                (query, Saved::Stored)
            };
            let done = query
                .execute(&self.pool)
                .await
                .map_err(StoreError::backend)?;
            // MySQL reports rows matched, not rows changed: the version moves on with every
            // update, so a match is always a change there too.
            if done.rows_affected() == 1 {
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
            retrying(|| async { settle(self.try_cycle(old, new, changes, at).await, transient) })
                .await
        }

        async fn try_cycle(
            &self,
            old: &str,
            new: &str,
            changes: &Changes,
            at: SystemTime,
        ) -> Result<Attempt<Saved>, Failure> {
            let mut tx = self.begin().await?;
            let found: Option<Row> = sqlx::query_as(&self.sql.lock)
                .bind(old)
                .fetch_optional(&mut *tx)
                .await?;
            let (write, saved) = plan(found, changes, at, now())?;
            let (bytes, old_exists) = write.into_move();
            if let Some(bytes) = bytes {
                sqlx::query(&self.sql.upsert)
                    .bind(new)
                    .bind(bytes)
                    .bind(millis(at))
                    .bind(fresh_version())
                    .execute(&mut *tx)
                    .await?;
            }
            if old_exists {
                sqlx::query(&self.sql.delete)
                    .bind(old)
                    .execute(&mut *tx)
                    .await?;
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
            retrying(|| async { settle(self.try_update(key, name, update).await, transient) }).await
        }

        /// Applies `update` to the session key `name` of the row at `key`, locked `FOR
        /// UPDATE`; the transaction is committed whatever it wrote, so the lock goes at
        /// once.
        async fn try_update(
            &self,
            key: &str,
            name: &str,
            update: &KeyUpdate,
        ) -> Result<Attempt<Updated>, Failure> {
            let mut tx = self.begin().await?;
            let found: Option<Row> = sqlx::query_as(&self.sql.lock)
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
            let (write, updated) = plan_update(found, name, update, now())?;
            match write {
                Write::Update(bytes) => {
                    sqlx::query(&self.sql.rewrite)
                        .bind(bytes)
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                }
                Write::Delete => {
                    sqlx::query(&self.sql.delete)
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                }
                Write::Insert(_) | Write::Nothing => {}
            }
            tx.commit().await?;
            Ok(Attempt::Done(updated))
        }

        async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
            sqlx::query(&self.sql.delete)
                .bind(self.key(id))
                .execute(&self.pool)
                .await
                .map_err(StoreError::backend)?;
            Ok(())
        }

        async fn delete_expired(
            &self,
            batch_size: u64,
            progress: impl FnMut(Progress) + Send,
        ) -> Result<u64, StoreError> {
            in_batches(batch_size, progress, |now, limit| {
                timed(self.timeout, async move {
                    sqlx::query(&self.sql.delete_batch)
                        .bind(now)
                        .bind(limit)
                        .execute(&self.pool)
                        .await
                        .map(|done| done.rows_affected())
                        .map_err(StoreError::backend)
                })
            })
            .await
        }
    };
    (traits $store:ident) => {
        impl SessionStore for $store {
            async fn load(
                &self,
                id: &SessionId,
                touch: Option<SystemTime>,
            ) -> Result<Option<Record>, StoreError> {
                timed(self.inner.timeout, self.inner.load(id, touch)).await
            }

            async fn save(
                &self,
                id: &SessionId,
                changes: &Changes,
                expires_at: SystemTime,
            ) -> Result<Saved, StoreError> {
                let key = self.inner.key(id);
                timed(
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
                timed(
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
                timed(
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
                timed(self.inner.timeout, self.inner.update(&row, key, update)).await
            }

            async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
                timed(self.inner.timeout, self.inner.delete(id)).await
            }
        }

        impl ExpiredDeletion for $store {
            /// Deletes every expired row, [`DEFAULT_BATCH_SIZE`](super::DEFAULT_BATCH_SIZE) rows
            /// per statement.
            async fn delete_expired(&self) -> Result<u64, StoreError> {
                self.inner
                    .delete_expired(super::DEFAULT_BATCH_SIZE, |_| {})
                    .await
            }
        }
    };
}
#[cfg(any(feature = "postgres", feature = "mysql"))]
use server_store;

/// A pooled connection to a database server that sat idle this long is pinged before
/// use (the server or a proxy may have closed it meanwhile).
#[cfg(any(feature = "postgres", feature = "mysql"))]
const PING_WHEN_IDLE: Duration = Duration::from_secs(30);

/// Pool options for a database server: `timeout` to get a connection, and a ping only
/// for a connection idle for [`PING_WHEN_IDLE`]. sqlx's default pings before every use,
/// which adds a round trip to every statement: a load would cost two.
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn server_pool<DB: sqlx::Database>(timeout: Duration) -> sqlx::pool::PoolOptions<DB> {
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

/// Bounds `operation` by `timeout`: a server that stops answering fails the request
/// instead of holding it.
async fn timed<T>(
    timeout: Duration,
    operation: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(timeout, operation)
        .await
        .map_err(StoreError::backend)?
}

/// Deletes expired rows batch by batch with `batch`, which deletes at most `size` rows
/// older than `now` and says how many went.
async fn in_batches<F, Fut>(
    size: u64,
    mut progress: impl FnMut(Progress),
    mut batch: F,
) -> Result<u64, StoreError>
where
    F: FnMut(i64, i64) -> Fut,
    Fut: Future<Output = Result<u64, StoreError>>,
{
    let size = size.clamp(1, i64::MAX.cast_unsigned());
    let limit = size.cast_signed();
    let now = now();
    let mut report = Progress {
        batches: 0,
        deleted_in_batch: 0,
        deleted: 0,
    };
    loop {
        let deleted = batch(now, limit).await?;
        report.batches += 1;
        report.deleted_in_batch = deleted;
        report.deleted += deleted;
        progress(report);
        if deleted < size {
            return Ok(report.deleted);
        }
        tokio::task::yield_now().await;
    }
}

/// Starts the background cleanup of a store's `inner`: every `interval`, while the store
/// is alive, `sweep` runs; failures are logged and the task carries on.
fn spawn_cleanup<T, F, Fut>(
    inner: Weak<T>,
    interval: Duration,
    sweep: F,
) -> tokio::task::JoinHandle<()>
where
    T: Send + Sync + 'static,
    F: Fn(Arc<T>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<u64, StoreError>> + Send,
{
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(10)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let Some(inner) = inner.upgrade() else { break };
            match sweep(inner).await {
                Ok(0) => {}
                Ok(deleted) => tracing::debug!(deleted, "deleted expired sessions"),
                Err(error) => tracing::warn!(
                    error = %chain(&error),
                    "deleting expired sessions failed; retrying at the next interval"
                ),
            }
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_validated() {
        for bad in [
            "",
            "users; drop table x",
            "1abc",
            "a-b",
            "a\"b",
            "a`b",
            "tablé",
            &"x".repeat(64),
        ] {
            assert!(TableMapping::new(bad).is_err(), "{bad:?}");
            assert!(
                TableMapping::default().with_id_column(bad).is_err(),
                "{bad:?}"
            );
        }
        for good in ["a", "_x", "Sessions_2", &"x".repeat(63)] {
            assert_eq!(TableMapping::new(good).unwrap().table(), good);
        }
    }

    #[test]
    fn the_string_form_parses_and_round_trips() {
        let mapping: TableMapping =
            " schema=public , table=web_sessions,id=session_id,data=payload,expiry=expires_at, "
                .parse()
                .unwrap();
        assert_eq!(mapping.schema(), Some("public"));
        assert_eq!(mapping.expiry_column(), "expires_at");
        let text = mapping.to_string();
        assert_eq!(
            text,
            "schema=public,table=web_sessions,id=session_id,data=payload,expiry=expires_at,\
             version=version"
        );
        assert_eq!(text.parse::<TableMapping>().unwrap(), mapping);
        assert_eq!("".parse::<TableMapping>().unwrap(), TableMapping::default());

        let errors = [
            ("AppSession", "Malformed"),
            ("table=a,table=b", "DuplicateField"),
            ("colour=blue", "UnknownField"),
            ("id=data", "SameColumn"),
            ("table=users; drop table x", "InvalidName"),
        ];
        for (text, kind) in errors {
            let error = text.parse::<TableMapping>().unwrap_err();
            assert!(format!("{error:?}").starts_with(kind), "{text}: {error:?}");
        }
    }

    #[test]
    fn long_index_names_are_shortened_deterministically() {
        let mapping = TableMapping::new(&"t".repeat(60)).unwrap();
        let index = mapping.index();
        assert_eq!(index.len(), MAX_NAME_LEN);
        assert_eq!(index, mapping.index());
        assert!(checked("index", &index).is_ok());
    }

    #[test]
    fn config_errors_name_the_key() {
        let config = SessionConfig::default().with_sql_model("table=x;y");
        let error = TableMapping::from_config(&config).unwrap_err();
        assert!(
            error.to_string().contains("SESSION_SQLALCHEMY_MODEL"),
            "{error}"
        );
        let config = SessionConfig::default().with_sql_table("bad name");
        let error = TableMapping::from_config(&config).unwrap_err();
        assert!(
            error.to_string().contains("SESSION_SQLALCHEMY_TABLE"),
            "{error}"
        );
    }

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            redact("postgres://user:secret@db:5432/x?sslmode=require"),
            "postgres://user:***@db:5432/x?sslmode=require"
        );
        assert_eq!(redact("mysql://root@h/db"), "mysql://root@h/db");
        assert_eq!(redact("sqlite://a@b.db"), "sqlite://a@b.db");
        assert_eq!(redact("sqlite::memory:"), "sqlite::memory:");
    }

    #[test]
    fn every_statement_quotes_its_names() {
        let mapping: TableMapping = "schema=s,table=t,id=i,data=d,expiry=e,version=v"
            .parse()
            .unwrap();
        let sql = Statements::new(Dialect::Postgres, &mapping);
        assert_eq!(
            sql.select,
            "SELECT \"d\", \"e\", \"v\" FROM \"s\".\"t\" WHERE \"i\" = $1 AND \"e\" > $2"
        );
        let sql = Statements::new(Dialect::MySql, &mapping);
        assert_eq!(
            sql.delete_batch,
            "DELETE FROM `s`.`t` WHERE `e` <= ? LIMIT ?"
        );
        let sql = Statements::new(Dialect::Sqlite, &mapping);
        assert_eq!(
            sql.create_index,
            "CREATE INDEX IF NOT EXISTS `s`.`t_e_idx` ON `t` (`e`)"
        );
    }

    #[test]
    fn a_plan_applies_changes_onto_the_live_row_only() {
        let now = now();
        let at = SystemTime::now() + Duration::from_secs(60);
        let row = |expiry| {
            let data = Data::from([("a".to_owned(), json!(1))]);
            (encode(&data, Some(false)).unwrap(), expiry, 7)
        };
        let mut changes = Changes::default();
        changes.set("b", json!(2));

        let (write, saved) = plan(Some(row(now + 1000)), &changes, at, now).unwrap();
        let Write::Update(bytes) = write else {
            panic!("{write:?}")
        };
        let merged = record((bytes, 0, 0)).unwrap();
        assert_eq!(merged.data.len(), 2);
        assert_eq!(merged.permanent, Some(false));
        assert_eq!(saved, Saved::Stored);

        // An expired row is replaced, not merged.
        let (write, _) = plan(Some(row(now)), &changes, at, now).unwrap();
        let Write::Update(bytes) = write else {
            panic!("{write:?}")
        };
        assert_eq!(record((bytes, 0, 0)).unwrap().data.len(), 1);

        let (write, _) = plan(None, &changes, at, now).unwrap();
        assert!(matches!(write, Write::Insert(_)));
        let corrupt = (b"\xc1".to_vec(), now + 1000, 1);
        let (write, _) = plan(Some(corrupt), &changes, at, now).unwrap();
        assert!(matches!(write, Write::Update(_)));

        let mut remove = Changes::default();
        remove.remove("a");
        let (write, saved) = plan(Some(row(now + 1000)), &remove, at, now).unwrap();
        assert!(matches!(write, Write::Delete) && saved == Saved::Empty);
        let (write, saved) = plan(None, &remove, at, now).unwrap();
        assert!(matches!(write, Write::Nothing) && saved == Saved::Empty);
    }

    #[tokio::test]
    async fn a_save_that_gives_up_says_why() {
        let raced = retrying(|| async { Ok::<_, StoreError>(Attempt::<()>::Retry) })
            .await
            .unwrap_err();
        assert_eq!(
            chain(&raced),
            "session backend failed: the session row kept changing under concurrent writes"
        );
        let mut attempts = 0;
        let aborted = retrying(|| {
            attempts += 1;
            let attempt = if attempts % 2 == 0 {
                Attempt::<()>::Retry
            } else {
                Attempt::Aborted(sqlx::Error::PoolTimedOut)
            };
            async move { Ok::<_, StoreError>(attempt) }
        })
        .await
        .unwrap_err();
        assert_eq!(attempts, MAX_ATTEMPTS);
        let text = chain(&aborted);
        assert!(
            text.starts_with(
                "session backend failed: the database aborted the session's transaction 3 of 5 \
                 times: "
            ),
            "{text}"
        );
    }

    #[test]
    fn times_and_versions_convert() {
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(time(millis(at)), at);
        assert_eq!(millis(UNIX_EPOCH - Duration::from_secs(1)), 0);
        assert_eq!(time(-5), UNIX_EPOCH);
        for _ in 0..100 {
            let version = fresh_version();
            assert!(version > 0 && version < i64::MAX / 2);
        }
        assert!(check_prefix(&"p".repeat(212)).is_ok());
        assert!(check_prefix(&"p".repeat(213)).is_err());
        assert_eq!(key("s:", &SessionId::generate()).len(), 45);
    }
}

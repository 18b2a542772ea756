//! How a SQL store is set up and opened: [`SqlOptions`], [`OpenError`] when it cannot be
//! opened, and [`Migration`], what preparing its table did.

use std::time::Duration;

use super::TableMapping;
use crate::error::{BoxError, StoreError};
use crate::store::{DEFAULT_KEY_PREFIX, DEFAULT_TIMEOUT};

/// How a SQL store is set up, apart from its connection: what a
/// [`SqlStoreBuilder`](super::SqlStoreBuilder) sets, and what [`from_pool`] (e.g.
/// [`SqliteStore::from_pool`]) and `connect` take.
///
/// [`from_pool`]: super::PostgresStore::from_pool
/// [`SqliteStore::from_pool`]: super::SqliteStore::from_pool
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
    /// Table [`DEFAULT_TABLE`], key prefix [`DEFAULT_KEY_PREFIX`], timeout
    /// [`DEFAULT_TIMEOUT`], migrate at start, no background cleanup: the defaults of the
    /// configuration keys.
    ///
    /// [`DEFAULT_TABLE`]: super::DEFAULT_TABLE
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
    /// Sets where the sessions live (default: table [`DEFAULT_TABLE`]).
    ///
    /// [`DEFAULT_TABLE`]: super::DEFAULT_TABLE
    #[must_use]
    pub fn with_mapping(mut self, mapping: TableMapping) -> Self {
        self.mapping = mapping;
        self
    }

    /// Sets the prefix of every key (default [`DEFAULT_KEY_PREFIX`]), so that several
    /// applications can share one table.
    #[must_use]
    pub fn with_key_prefix(mut self, key_prefix: impl Into<String>) -> Self {
        self.key_prefix = key_prefix.into();
        self
    }

    /// Sets how long a request may wait for a connection, and how long a PostgreSQL or
    /// MySQL operation may take as a whole (default [`DEFAULT_TIMEOUT`]), so that a
    /// database that is down gives a quick error instead of requests piling up.
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
    /// Without auto-migration, no connection to the database could be made within the
    /// timeout: the store refuses to start, as every networked store does.
    #[error("the database cannot be reached")]
    Unreachable(#[source] StoreError),
}

/// What [`migrate`](super::SqliteStore::migrate) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Migration {
    /// The table was missing and has been created.
    pub table_created: bool,
    /// The expiry index was missing and has been created.
    pub index_created: bool,
}

//! Building a SQL store: [`SqlStoreBuilder`], and [`SqlBackend`], the stores it builds.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::time::Duration;

use super::{OpenError, SqlOptions, TableMapping};
use crate::support::redact_url;

/// Settings for a SQL store, made by the `builder` of [`SqliteStore`](super::SqliteStore),
/// [`PostgresStore`](super::PostgresStore), [`MySqlStore`](super::MySqlStore) or
/// [`SqlStore`](super::SqlStore) (which picks one of them by the URL's scheme), and turned
/// into that store by [`open`](Self::open).
///
/// The settings are those of [`SqlOptions`], which [`with_options`](Self::with_options)
/// sets at once. `Debug` masks the password of the URL.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use satchel::store::sql::{SqlStore, TableMapping};
///
/// # #[cfg(feature = "sqlite")]
/// # tokio_test::block_on(async {
/// let store = SqlStore::builder("sqlite::memory:")
///     .with_mapping(TableMapping::new("web_sessions")?)
///     .with_key_prefix("shop:")
///     .with_cleanup_interval(Some(Duration::from_secs(600)))
///     .open()
///     .await?;
/// assert!(matches!(store, SqlStore::Sqlite(_)));
/// assert_eq!(store.mapping().table(), "web_sessions");
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[must_use]
pub struct SqlStoreBuilder<S> {
    url: String,
    options: SqlOptions,
    store: PhantomData<fn() -> S>,
}

impl<S> Clone for SqlStoreBuilder<S> {
    fn clone(&self) -> Self {
        Self {
            url: self.url.clone(),
            options: self.options.clone(),
            store: PhantomData,
        }
    }
}

impl<S> fmt::Debug for SqlStoreBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStoreBuilder")
            .field("store", &std::any::type_name::<S>())
            .field("url", &redact_url(&self.url))
            .field("options", &self.options)
            .finish()
    }
}

impl<S> SqlStoreBuilder<S> {
    /// Settings for the store at `url`, with [`SqlOptions::default`].
    pub(super) fn new(url: String) -> Self {
        Self {
            url,
            options: SqlOptions::default(),
            store: PhantomData,
        }
    }

    /// Sets every option at once, replacing what the other setters set before.
    pub fn with_options(mut self, options: SqlOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets where the sessions live (default: table
    /// [`DEFAULT_TABLE`](super::DEFAULT_TABLE)); see [`SqlOptions::with_mapping`].
    pub fn with_mapping(mut self, mapping: TableMapping) -> Self {
        self.options = self.options.with_mapping(mapping);
        self
    }

    /// Sets the prefix of every key (default
    /// [`DEFAULT_KEY_PREFIX`](crate::store::DEFAULT_KEY_PREFIX)); see
    /// [`SqlOptions::with_key_prefix`].
    pub fn with_key_prefix(mut self, key_prefix: impl Into<String>) -> Self {
        self.options = self.options.with_key_prefix(key_prefix);
        self
    }

    /// Sets how long a request may wait for a connection, and how long a PostgreSQL or
    /// MySQL operation may take as a whole (default
    /// [`DEFAULT_TIMEOUT`](crate::store::DEFAULT_TIMEOUT)); see
    /// [`SqlOptions::with_timeout`].
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.options = self.options.with_timeout(timeout);
        self
    }

    /// Sets whether the store creates its table and index when it opens (default
    /// `true`); see [`SqlOptions::with_auto_migrate`].
    pub fn with_auto_migrate(mut self, auto_migrate: bool) -> Self {
        self.options = self.options.with_auto_migrate(auto_migrate);
        self
    }

    /// Sets the interval of a background task deleting expired rows (default `None`: no
    /// task); see [`SqlOptions::with_cleanup_interval`].
    pub fn with_cleanup_interval(mut self, interval: Option<Duration>) -> Self {
        self.options = self.options.with_cleanup_interval(interval);
        self
    }

    /// The options as set so far.
    #[must_use]
    pub fn options(&self) -> &SqlOptions {
        &self.options
    }
}

impl<S: SqlBackend> SqlStoreBuilder<S> {
    /// Opens the store: builds its connection pool, which connects lazily, then creates
    /// the table and its index unless [`with_auto_migrate`](Self::with_auto_migrate) turned
    /// that off (which needs the database), and starts the background cleanup when an
    /// interval is set.
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::SqliteStore;
    ///
    /// # tokio_test::block_on(async {
    /// let dir = tempfile::tempdir()?;
    /// let url = format!("sqlite://{}", dir.path().join("sessions.db").display());
    /// let store = SqliteStore::builder(url).with_key_prefix("shop:").open().await?;
    /// assert_eq!(store.mapping().table(), "flask_sessions");
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`OpenError::InvalidUrl`] for a URL that does not parse or is not the store's (for
    /// [`SqlStore`](super::SqlStore): whose scheme this build has no store for),
    /// [`OpenError::KeyPrefixTooLong`], and [`OpenError::Migrate`] when the table cannot
    /// be created or checked.
    pub async fn open(self) -> Result<S, OpenError> {
        S::open(&self.url, self.options).await
    }
}

/// The SQL stores a [`SqlStoreBuilder`] opens: [`SqliteStore`](super::SqliteStore),
/// [`PostgresStore`](super::PostgresStore), [`MySqlStore`](super::MySqlStore), and
/// [`SqlStore`](super::SqlStore), which picks one of them by the URL's scheme.
///
/// The trait is sealed: only these stores implement it.
pub trait SqlBackend: sealed::Open {}

impl<S: sealed::Open> SqlBackend for S {}

pub(super) mod sealed {
    use super::{Future, OpenError, SqlOptions};

    /// How a SQL store opens from a URL: what [`SqlStoreBuilder::open`] runs.
    ///
    /// [`SqlStoreBuilder::open`]: super::SqlStoreBuilder::open
    pub trait Open: Sized {
        /// Opens the store at `url` with `options`.
        fn open(
            url: &str,
            options: SqlOptions,
        ) -> impl Future<Output = Result<Self, OpenError>> + Send;
    }
}

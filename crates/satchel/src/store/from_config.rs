//! Where the settings meet the stores: every `from_config`, and the only code under
//! `store/` that knows [`SessionConfig`].
//!
//! Each store is built from code by its own builder (`RedisStore::builder(url)…open()`),
//! which knows nothing of the `SESSION_*` keys and reports a store-specific `OpenError`.
//! This module maps the keys onto those builders, and maps each `OpenError` back onto
//! the [`ConfigError`] that names the key the user has to change: the stores' error
//! messages name no key, and this module owns the key names in them.

use crate::config::{SessionConfig, SessionType};
use crate::error::ConfigError;

use super::{BoxedStore, MemoryStore, NullStore};

#[cfg(feature = "filesystem")]
use super::FilesystemStore;
#[cfg(feature = "memcached")]
use super::MemcachedStore;
#[cfg(feature = "mongodb")]
use super::MongoStore;
#[cfg(feature = "redis")]
use super::RedisStore;
#[cfg(feature = "mysql")]
use super::sql::MySqlStore;
#[cfg(feature = "postgres")]
use super::sql::PostgresStore;
#[cfg(feature = "sqlite")]
use super::sql::SqliteStore;
#[cfg(feature = "_sql")]
use super::sql::{SqlOptions, SqlStore, TableMapping};

/// Builds the store SESSION_TYPE names, with its settings from `config`.
///
/// # Errors
///
/// [`ConfigError`] when the store cannot be opened (a SESSION_FILE_DIR that cannot be
/// created or written, a server that cannot be reached) or is not available in this
/// build; it names the key at fault.
///
/// # Examples
///
/// ```
/// use satchel::{SessionConfig, SessionType, store};
///
/// let config = SessionConfig::default().with_session_type(SessionType::Memory);
/// # tokio_test::block_on(async {
/// let store = store::from_config(&config).await?;
/// # let _ = store;
/// # Ok::<_, satchel::ConfigError>(())
/// # }).unwrap();
/// ```
pub async fn from_config(config: &SessionConfig) -> Result<BoxedStore, ConfigError> {
    #[cfg(feature = "flask")]
    if config.flask_compat().is_on() {
        return flask_from_config(config).await;
    }
    match config.session_type() {
        SessionType::Null => Ok(BoxedStore::new(NullStore)),
        SessionType::Memory => Ok(BoxedStore::new(MemoryStore::with_capacity(
            config.memory_capacity(),
        ))),
        #[cfg(feature = "filesystem")]
        SessionType::Filesystem => FilesystemStore::from_config(config).map(BoxedStore::new),
        #[cfg(feature = "redis")]
        SessionType::Redis => RedisStore::from_config(config).await.map(BoxedStore::new),
        #[cfg(feature = "memcached")]
        SessionType::Memcached => MemcachedStore::from_config(config)
            .await
            .map(BoxedStore::new),
        #[cfg(feature = "mongodb")]
        SessionType::MongoDb => MongoStore::from_config(config).await.map(BoxedStore::new),
        #[cfg(feature = "_sql")]
        SessionType::Sql => sql_from_config(config).await,
        #[cfg(feature = "cookie")]
        SessionType::Cookie => Ok(BoxedStore::new(super::cookie::CookieStore)),
        // Reached only in builds that leave a store's feature out.
        #[allow(unreachable_patterns)]
        other => Err(ConfigError::Conflict(format!(
            "SESSION_TYPE={other} is not available in this build of satchel: it needs the \
             crate's {} (available here: {})",
            feature_of(other),
            AVAILABLE.join(", ")
        ))),
    }
}

/// The store SESSION_TYPE names, in Flask-Session's layout (SESSION_FLASK_COMPAT).
#[cfg(feature = "flask")]
async fn flask_from_config(config: &SessionConfig) -> Result<BoxedStore, ConfigError> {
    use crate::flask::{FlaskBackend, FlaskStore};
    // Unused in a build without any store Flask-Session shares.
    #[cfg_attr(
        not(any(
            feature = "redis",
            feature = "memcached",
            feature = "mongodb",
            feature = "_sql"
        )),
        allow(dead_code)
    )]
    fn flask<B: FlaskBackend>(backend: B, config: &SessionConfig) -> BoxedStore {
        BoxedStore::new(
            FlaskStore::new(backend, config.flask_compat())
                .permanent_by_default(config.permanent())
                .assumed_lifetime(config.lifetime()),
        )
    }
    match config.session_type() {
        #[cfg(feature = "redis")]
        SessionType::Redis => Ok(flask(RedisStore::from_config(config).await?, config)),
        #[cfg(feature = "memcached")]
        SessionType::Memcached => Ok(flask(MemcachedStore::from_config(config).await?, config)),
        #[cfg(feature = "mongodb")]
        SessionType::MongoDb => {
            let store = MongoStore::from_config(config).await?;
            store.create_flask_indexes().await.map_err(|error| {
                ConfigError::Conflict(format!(
                    "SESSION_MONGODB: the indexes of Flask-Session's layout could not be made: {}",
                    crate::support::chain(&error)
                ))
            })?;
            Ok(flask(store, config))
        }
        #[cfg(feature = "_sql")]
        SessionType::Sql => {
            // Flask-Session's table, not Satchel's: the store opens without its own.
            let url = sql_url(config)?;
            let options = SqlOptions::from_config(config)?.with_auto_migrate(false);
            let store = SqlStore::builder(url)
                .with_options(options)
                .open()
                .await
                .map_err(|error| sql_error(config, url, &error))?;
            if config.sql_auto_migrate() {
                store.create_flask_table().await.map_err(|error| {
                    sql_error(config, url, &super::sql::OpenError::Migrate(error))
                })?;
            }
            Ok(flask(store, config))
        }
        // validate() refuses the others.
        other => Err(ConfigError::Conflict(format!(
            "SESSION_FLASK_COMPAT is not available with SESSION_TYPE={other} in this build of \
             satchel: it needs the {}",
            feature_of(other)
        ))),
    }
}

/// The cargo feature that brings a store into a build, as a user would add it.
#[cfg_attr(
    all(
        feature = "filesystem",
        feature = "redis",
        feature = "memcached",
        feature = "mongodb",
        feature = "_sql",
        feature = "cookie"
    ),
    allow(dead_code)
)]
fn feature_of(session_type: SessionType) -> &'static str {
    match session_type {
        SessionType::Filesystem => "`filesystem` feature",
        SessionType::Redis => "`redis` feature",
        SessionType::Memcached => "`memcached` feature",
        SessionType::MongoDb => "`mongodb` feature",
        SessionType::Sql => "`sqlite`, `postgres` or `mysql` feature",
        SessionType::Cookie => "`cookie` feature",
        _ => "default features",
    }
}

/// The SESSION_TYPE values this build can serve.
const AVAILABLE: &[&str] = &[
    "null",
    "memory",
    #[cfg(feature = "filesystem")]
    "filesystem",
    #[cfg(feature = "redis")]
    "redis",
    #[cfg(feature = "memcached")]
    "memcached",
    #[cfg(feature = "mongodb")]
    "mongodb",
    #[cfg(feature = "_sql")]
    "sqlalchemy",
    #[cfg(feature = "cookie")]
    "cookie",
];

#[cfg(feature = "filesystem")]
impl FilesystemStore {
    /// Opens the store the configuration describes: SESSION_FILE_DIR,
    /// SESSION_FILE_THRESHOLD, SESSION_FILE_MODE and SESSION_KEY_PREFIX, through
    /// [`FilesystemStore::builder`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// // Not run: the default SESSION_FILE_DIR is relative to the working directory.
    /// use satchel::{FilesystemStore, SessionConfig};
    ///
    /// let store = FilesystemStore::from_config(&SessionConfig::default())?;
    /// # Ok::<_, satchel::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::Io`] naming SESSION_FILE_DIR when the directory cannot be created
    /// or is not writable; [`ConfigError::Invalid`] when the mode or the key prefix
    /// cannot be used for files.
    pub fn from_config(config: &SessionConfig) -> Result<Self, ConfigError> {
        Self::builder(config.file_dir())
            .with_key_prefix(config.key_prefix())
            .with_threshold(config.file_threshold())
            .with_mode(config.file_mode())
            .open()
            .map_err(|error| filesystem_error(config, error))
    }
}

/// The key to change when a filesystem store cannot be opened.
#[cfg(feature = "filesystem")]
fn filesystem_error(config: &SessionConfig, error: super::filesystem::OpenError) -> ConfigError {
    use super::filesystem::OpenError;
    match error {
        OpenError::CannotCreate { path, source } => ConfigError::Io {
            key: "SESSION_FILE_DIR".into(),
            path: path.display().to_string(),
            message: format!("cannot be created: {source}"),
        },
        OpenError::NotWritable { path, source } => ConfigError::Io {
            key: "SESSION_FILE_DIR".into(),
            path: path.display().to_string(),
            message: format!("is not writable: {source}"),
        },
        OpenError::InvalidMode { mode } => ConfigError::Invalid {
            key: "SESSION_FILE_MODE".into(),
            value: format!("{mode:o}"),
            expected: "an octal mode within 777 that includes 600".into(),
        },
        OpenError::KeyPrefixTooLong { max, .. } => ConfigError::Invalid {
            key: "SESSION_KEY_PREFIX".into(),
            value: config.key_prefix().to_owned(),
            expected: format!("a prefix of at most {max} bytes once escaped for file names"),
        },
    }
}

#[cfg(feature = "memcached")]
impl MemcachedStore {
    /// Builds the store the configuration describes, through
    /// [`MemcachedStore::builder`]: SESSION_MEMCACHED (one
    /// or more `host:port`, separated by commas; default
    /// [`DEFAULT_SERVERS`](super::memcached::DEFAULT_SERVERS)), SESSION_KEY_PREFIX and
    /// SESSION_STORE_TIMEOUT.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use satchel::{MemcachedStore, SessionConfig};
    ///
    /// # tokio_test::block_on(async {
    /// let config = SessionConfig::default()
    ///     .with_memcached_servers("127.0.0.1:11211, 127.0.0.1:11212")
    ///     .with_key_prefix("shop:");
    /// let store = MemcachedStore::from_config(&config).await?;
    /// assert_eq!(store.servers(), ["127.0.0.1:11211", "127.0.0.1:11212"]);
    /// assert_eq!(store.key_prefix(), "shop:");
    /// # Ok::<_, satchel::ConfigError>(())
    /// # }).unwrap();
    /// ```
    ///
    /// A malformed list is refused before anything connects:
    ///
    /// ```
    /// use satchel::{ConfigError, MemcachedStore, SessionConfig};
    ///
    /// # tokio_test::block_on(async {
    /// let bad = SessionConfig::default().with_memcached_servers("127.0.0.1");
    /// let error = MemcachedStore::from_config(&bad).await.unwrap_err();
    /// assert!(matches!(error, ConfigError::Invalid { ref key, .. } if key == "SESSION_MEMCACHED"));
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming SESSION_MEMCACHED when the server list is malformed
    /// or a host name does not resolve, and naming SESSION_KEY_PREFIX when the prefix
    /// cannot start a memcached key (too long, or with spaces or control characters);
    /// [`ConfigError::Io`] naming SESSION_MEMCACHED when a server cannot be reached within
    /// SESSION_STORE_TIMEOUT.
    pub async fn from_config(config: &SessionConfig) -> Result<Self, ConfigError> {
        let servers = config
            .memcached_servers()
            .unwrap_or(super::memcached::DEFAULT_SERVERS);
        Self::builder(servers)
            .with_key_prefix(config.key_prefix())
            .with_timeout(config.store_timeout())
            .open()
            .await
            .map_err(memcached_error)
    }
}

/// The key to change when a memcached store cannot be opened.
#[cfg(feature = "memcached")]
fn memcached_error(error: super::memcached::OpenError) -> ConfigError {
    use super::memcached::OpenError;
    const KEY: &str = "SESSION_MEMCACHED";
    let invalid_servers = |servers: String, expected: String| ConfigError::Invalid {
        key: KEY.to_owned(),
        value: servers,
        expected,
    };
    match error {
        OpenError::InvalidServers { servers, expected } => {
            invalid_servers(servers, expected.to_owned())
        }
        OpenError::Unresolved { servers, source } => invalid_servers(
            servers,
            format!("host:port addresses that resolve ({source})"),
        ),
        OpenError::ResolveTimeout { servers, .. } => invalid_servers(
            servers,
            "host:port addresses that resolve (resolving timed out)".to_owned(),
        ),
        OpenError::InvalidKeyPrefix { prefix, expected } => ConfigError::Invalid {
            key: "SESSION_KEY_PREFIX".to_owned(),
            value: prefix,
            expected,
        },
        OpenError::Unreachable { servers, source } => {
            let cause = source
                .source()
                .map(|cause| format!(": {cause}"))
                .unwrap_or_default();
            ConfigError::Io {
                key: KEY.to_owned(),
                path: servers,
                message: format!("a memcached server is not reachable: {source}{cause}"),
            }
        }
    }
}

#[cfg(feature = "mongodb")]
impl MongoStore {
    /// Opens the store the configuration describes, through
    /// [`MongoStore::builder`]: SESSION_MONGODB (default
    /// [`DEFAULT_URI`](super::mongodb::DEFAULT_URI)), SESSION_MONGODB_DB,
    /// SESSION_MONGODB_COLLECT, SESSION_KEY_PREFIX, with SESSION_STORE_TIMEOUT as the
    /// driver's connect and server-selection timeouts and as the limit on each operation.
    /// Creates the TTL index on `expiry` when it is missing.
    ///
    /// The server must be reachable: it is pinged and the index is created here, so a
    /// wrong address or wrong credentials show up at startup, not on the first request.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// // Not run: it needs a MongoDB server.
    /// use satchel::{MongoStore, SessionConfig};
    ///
    /// # tokio_test::block_on(async {
    /// let config = SessionConfig::default()
    ///     .with_mongodb_uri("mongodb://app:secret@db.internal:27017/?authSource=admin");
    /// let store = MongoStore::from_config(&config).await?;
    /// # let _ = store;
    /// # Ok::<_, satchel::ConfigError>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming SESSION_MONGODB when the connection string cannot
    /// be parsed (the password, if any, is masked), and naming SESSION_MONGODB_DB or
    /// SESSION_MONGODB_COLLECT for a name MongoDB does not accept; [`ConfigError::Io`]
    /// naming SESSION_MONGODB when the server cannot be reached or refuses to create the
    /// index.
    pub async fn from_config(config: &SessionConfig) -> Result<Self, ConfigError> {
        Self::builder(config.mongodb_uri().unwrap_or(super::mongodb::DEFAULT_URI))
            .with_database(config.mongodb_db())
            .with_collection(config.mongodb_collection())
            .with_key_prefix(config.key_prefix())
            .with_timeout(config.store_timeout())
            .open()
            .await
            .map_err(mongodb_error)
    }
}

/// The key to change when a MongoDB store cannot be opened.
#[cfg(feature = "mongodb")]
fn mongodb_error(error: super::mongodb::OpenError) -> ConfigError {
    use super::mongodb::OpenError;
    use crate::support::Chain;
    const KEY: &str = "SESSION_MONGODB";
    match error {
        OpenError::InvalidDatabase { name, expected } => ConfigError::Invalid {
            key: "SESSION_MONGODB_DB".to_owned(),
            value: name,
            expected: expected.to_owned(),
        },
        OpenError::InvalidCollection { name, expected } => ConfigError::Invalid {
            key: "SESSION_MONGODB_COLLECT".to_owned(),
            value: name,
            expected: expected.to_owned(),
        },
        OpenError::InvalidUri { uri, source } => ConfigError::Invalid {
            key: KEY.to_owned(),
            value: uri,
            expected: format!("a mongodb:// or mongodb+srv:// connection string ({source})"),
        },
        OpenError::Unreachable { namespace, source } => ConfigError::Io {
            key: KEY.to_owned(),
            path: namespace,
            message: format!("the server does not answer: {}", Chain(&source)),
        },
        OpenError::Index { namespace, source } => ConfigError::Io {
            key: KEY.to_owned(),
            path: namespace,
            message: format!(
                "the TTL index on `expiry` cannot be created: {}",
                Chain(&source)
            ),
        },
    }
}

#[cfg(feature = "redis")]
impl RedisStore {
    /// Connects as SESSION_REDIS says (default
    /// [`DEFAULT_URL`](super::redis::DEFAULT_URL)), with SESSION_KEY_PREFIX and
    /// SESSION_STORE_TIMEOUT, through [`RedisStore::builder`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use satchel::{RedisStore, SessionConfig, SessionType};
    ///
    /// # tokio_test::block_on(async {
    /// let config = SessionConfig::default()
    ///     .with_session_type(SessionType::Redis)
    ///     .with_redis_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000");
    /// let store = RedisStore::from_config(&config).await?;
    /// # let _ = store;
    /// # Ok::<_, satchel::ConfigError>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when the URL is not one of the accepted forms, and
    /// [`ConfigError::Io`] when Redis cannot be reached or refuses the connection (a wrong
    /// password, an unknown Sentinel master name) within the timeout. Both name
    /// `SESSION_REDIS` and mask the password.
    pub async fn from_config(config: &SessionConfig) -> Result<Self, ConfigError> {
        Self::builder(config.redis_url().unwrap_or(super::redis::DEFAULT_URL))
            .with_key_prefix(config.key_prefix())
            .with_timeout(config.store_timeout())
            .open()
            .await
            .map_err(redis_error)
    }
}

/// The key to change when a Redis store cannot be opened.
#[cfg(feature = "redis")]
fn redis_error(error: super::redis::OpenError) -> ConfigError {
    use super::redis::OpenError;
    const KEY: &str = "SESSION_REDIS";
    match error {
        OpenError::InvalidUrl {
            url,
            expected,
            reason,
        } => ConfigError::Invalid {
            key: KEY.to_owned(),
            value: url,
            expected: format!("{expected} ({reason})"),
        },
        OpenError::Timeout { url, timeout } => ConfigError::Io {
            key: KEY.to_owned(),
            path: url,
            message: format!("Redis did not answer within {timeout:?}"),
        },
        OpenError::Connect { url, source } => ConfigError::Io {
            key: KEY.to_owned(),
            path: url,
            message: format!("cannot connect to Redis: {source}"),
        },
    }
}

#[cfg(feature = "_sql")]
impl TableMapping {
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
        use super::sql::MappingError;
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
}

#[cfg(feature = "_sql")]
impl SqlOptions {
    /// The options the configuration describes: SESSION_SQLALCHEMY_TABLE,
    /// SESSION_SQLALCHEMY_MODEL, SESSION_KEY_PREFIX, SESSION_STORE_TIMEOUT,
    /// SESSION_SQL_AUTO_MIGRATE and SESSION_SQL_CLEANUP_INTERVAL.
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::SessionConfig;
    /// use satchel::store::sql::SqlOptions;
    ///
    /// let config = SessionConfig::default().with_key_prefix("shop:").with_sql_auto_migrate(false);
    /// let options = SqlOptions::from_config(&config)?;
    /// assert_eq!(options.key_prefix(), "shop:");
    /// assert!(!options.auto_migrate());
    /// # Ok::<_, satchel::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when the table mapping is not valid.
    pub fn from_config(config: &SessionConfig) -> Result<Self, ConfigError> {
        Ok(Self::default()
            .with_mapping(TableMapping::from_config(config)?)
            .with_key_prefix(config.key_prefix())
            .with_timeout(config.store_timeout())
            .with_auto_migrate(config.sql_auto_migrate())
            .with_cleanup_interval(config.sql_cleanup_interval()))
    }
}

#[cfg(feature = "_sql")]
impl SqlStore {
    /// Opens the store SESSION_SQL_URL names, with the settings of `config`, through
    /// [`SqlStore::builder`].
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::SessionConfig;
    /// use satchel::store::sql::SqlStore;
    ///
    /// # #[cfg(feature = "sqlite")]
    /// # tokio_test::block_on(async {
    /// let config = SessionConfig::default().with_sql_url("sqlite::memory:");
    /// let store = SqlStore::from_config(&config).await?;
    /// assert!(matches!(store, SqlStore::Sqlite(_)));
    /// # Ok::<_, satchel::ConfigError>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the key at fault: SESSION_SQL_URL missing or not usable,
    /// an invalid table mapping or key prefix, or a database that cannot be prepared at
    /// start (see the [module documentation](super::sql)).
    pub async fn from_config(config: &SessionConfig) -> Result<Self, ConfigError> {
        let url = sql_url(config)?;
        let options = SqlOptions::from_config(config)?;
        Self::builder(url)
            .with_options(options)
            .open()
            .await
            .map_err(|error| sql_error(config, url, &error))
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
#[cfg(feature = "_sql")]
pub async fn sql_from_config(config: &SessionConfig) -> Result<BoxedStore, ConfigError> {
    SqlStore::from_config(config)
        .await
        .map(SqlStore::into_boxed)
}

/// SESSION_SQL_URL, which the SQL stores need.
#[cfg(feature = "_sql")]
fn sql_url(config: &SessionConfig) -> Result<&str, ConfigError> {
    config.sql_url().ok_or_else(|| {
        ConfigError::Conflict(format!(
            "SESSION_TYPE={} needs SESSION_SQL_URL: {}",
            config.session_type(),
            super::sql::EXPECTED_URL
        ))
    })
}

/// The key to change when a SQL store cannot be opened.
#[cfg(feature = "_sql")]
fn sql_error(config: &SessionConfig, url: &str, error: &super::sql::OpenError) -> ConfigError {
    use super::sql::{EXPECTED_URL, OpenError};
    use crate::support::{chain, redact_url};
    match error {
        OpenError::InvalidUrl(source) => ConfigError::Invalid {
            key: "SESSION_SQL_URL".into(),
            value: redact_url(url).into_owned(),
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
            redact_url(url).into_owned(),
            chain(source)
        )),
        OpenError::Unreachable(source) => ConfigError::Io {
            key: "SESSION_SQL_URL".into(),
            path: redact_url(url).into_owned(),
            message: format!("the database cannot be reached: {}", chain(source)),
        },
    }
}

#[cfg(feature = "sqlite")]
impl SqliteStore {
    /// Opens the store the configuration describes: SESSION_SQL_URL,
    /// SESSION_SQLALCHEMY_TABLE, SESSION_SQLALCHEMY_MODEL, SESSION_KEY_PREFIX,
    /// SESSION_STORE_TIMEOUT, SESSION_SQL_AUTO_MIGRATE and SESSION_SQL_CLEANUP_INTERVAL.
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::{SessionConfig, SqliteStore};
    ///
    /// # tokio_test::block_on(async {
    /// let config = SessionConfig::default()
    ///     .with_sql_url("sqlite::memory:")
    ///     .with_sql_table("web_sessions");
    /// let store = SqliteStore::from_config(&config).await?;
    /// assert_eq!(store.mapping().table(), "web_sessions");
    /// # Ok::<_, satchel::ConfigError>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the key at fault.
    pub async fn from_config(config: &SessionConfig) -> Result<Self, ConfigError> {
        match SqlStore::from_config(config).await? {
            SqlStore::Sqlite(store) => Ok(store),
            #[allow(unreachable_patterns)]
            _ => Err(other_sql_backend(config, "a sqlite: URL")),
        }
    }
}

#[cfg(feature = "postgres")]
impl PostgresStore {
    /// Opens the store the configuration describes: SESSION_SQL_URL,
    /// SESSION_SQLALCHEMY_TABLE, SESSION_SQLALCHEMY_MODEL, SESSION_KEY_PREFIX,
    /// SESSION_STORE_TIMEOUT, SESSION_SQL_AUTO_MIGRATE and SESSION_SQL_CLEANUP_INTERVAL.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the key at fault.
    pub async fn from_config(config: &SessionConfig) -> Result<Self, ConfigError> {
        match SqlStore::from_config(config).await? {
            SqlStore::Postgres(store) => Ok(store),
            #[allow(unreachable_patterns)]
            _ => Err(other_sql_backend(config, "a postgres:// URL")),
        }
    }
}

#[cfg(feature = "mysql")]
impl MySqlStore {
    /// Opens the store the configuration describes: SESSION_SQL_URL,
    /// SESSION_SQLALCHEMY_TABLE, SESSION_SQLALCHEMY_MODEL, SESSION_KEY_PREFIX,
    /// SESSION_STORE_TIMEOUT, SESSION_SQL_AUTO_MIGRATE and SESSION_SQL_CLEANUP_INTERVAL.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the key at fault.
    pub async fn from_config(config: &SessionConfig) -> Result<Self, ConfigError> {
        match SqlStore::from_config(config).await? {
            SqlStore::MySql(store) => Ok(store),
            #[allow(unreachable_patterns)]
            _ => Err(other_sql_backend(config, "a mysql:// URL")),
        }
    }
}

/// The error of a backend's `from_config` when SESSION_SQL_URL names another backend.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
fn other_sql_backend(config: &SessionConfig, expected: &str) -> ConfigError {
    ConfigError::Invalid {
        key: "SESSION_SQL_URL".into(),
        value: crate::support::redact_url(config.sql_url().unwrap_or_default()).into_owned(),
        expected: expected.into(),
    }
}

#[cfg(all(test, feature = "_sql"))]
#[allow(clippy::unwrap_used)]
mod sql_tests {
    use super::*;

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
}

#[cfg(all(test, feature = "mongodb"))]
mod mongodb_tests {
    use super::*;

    #[test]
    fn bad_database_and_collection_names_name_their_key() {
        let check_names = |db: &str, collection: &str| {
            crate::store::mongodb::check_names(db, collection).map_err(mongodb_error)
        };
        assert!(check_names("flask_session", "sessions").is_ok());
        assert!(check_names("app", "shop.sessions").is_ok());
        for (db, collection, key) in [
            ("", "sessions", "SESSION_MONGODB_DB"),
            ("my.db", "sessions", "SESSION_MONGODB_DB"),
            ("a b", "sessions", "SESSION_MONGODB_DB"),
            ("app", "", "SESSION_MONGODB_COLLECT"),
            ("app", "bad$name", "SESSION_MONGODB_COLLECT"),
            ("app", "system.sessions", "SESSION_MONGODB_COLLECT"),
        ] {
            match check_names(db, collection) {
                Err(ConfigError::Invalid { key: named, .. }) => assert_eq!(named, key),
                other => panic!("{db:?}/{collection:?}: {other:?}"),
            }
        }
    }
}

#[cfg(test)]
mod feature_tests {
    use super::*;

    #[test]
    fn a_store_left_out_of_the_build_names_the_feature_that_brings_it() {
        assert_eq!(feature_of(SessionType::Redis), "`redis` feature");
        assert_eq!(feature_of(SessionType::Filesystem), "`filesystem` feature");
        assert!(feature_of(SessionType::Sql).contains("`postgres`"));
    }
}

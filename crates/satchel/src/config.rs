//! Session configuration: [`SessionConfig`] and the settings it mirrors.
//!
//! Satchel reads the settings of Flask-Session (as bundled by Flask Unchained) under the
//! same names, so an application moving from Flask keeps its configuration. A
//! configuration is built in code with the `with_*` setters, or read from the process
//! environment ([`SessionConfig::from_env`]), a TOML file
//! ([`SessionConfig::from_toml_file`]) or both ([`SessionConfig::load`]: defaults, then
//! the file, then the environment).
//!
//! | Key | Default | Meaning |
//! |-----|---------|---------|
//! | `SESSION_TYPE` | `null` | Where sessions live: `null` (sessions disabled), `memory`, `filesystem`, `redis`, `memcached`, `mongodb` or `sqlalchemy` (alias `sql`). |
//! | `SESSION_COOKIE_NAME` | `session` | Name of the cookie that carries the session id. |
//! | `SESSION_COOKIE_DOMAIN` | unset | `Domain` attribute of the cookie. Unset, the cookie is host-only: it goes back only to the host that set it, not to its subdomains. |
//! | `SESSION_COOKIE_PATH` | unset (`/`) | `Path` attribute of the cookie; unset means the whole site. |
//! | `SESSION_COOKIE_HTTPONLY` | `true` | Set the `HttpOnly` flag, so page scripts cannot read the cookie. |
//! | `SESSION_COOKIE_SECURE` | `false` | Set the `Secure` flag, so the cookie is only sent over HTTPS. Turn it on in production. |
//! | `SESSION_COOKIE_SAMESITE` | unset | `SameSite` attribute: `Lax` (recommended), `Strict` or `None` (which requires `SESSION_COOKIE_SECURE`). Unset, the attribute is left out and browsers apply their own default. |
//! | `PERMANENT_SESSION_LIFETIME` | 31 days | How long a permanent session lives: seconds (`2678400`) or a duration such as `31d`, `12h`, `90m`, `45s`, `1d12h`, `2w`. |
//! | `SESSION_REFRESH_EACH_REQUEST` | `true` | Extend a permanent session's lifetime on every request, not only when it changes (the stored expiry is written once it lags by [`refresh_granularity`](SessionConfig::refresh_granularity)). |
//! | `SESSION_PERMANENT` | `true` | Give sessions an expiry of `PERMANENT_SESSION_LIFETIME`; if `false`, the cookie lasts until the browser closes. |
//! | `SESSION_USE_SIGNER` | `false` | Sign the session id in the cookie with `SECRET_KEY` (needs the `signed` feature). |
//! | `SECRET_KEY` | unset | Secret used to sign session ids. Never printed. |
//! | `SECRET_KEY_FALLBACKS` | empty | Older secrets still accepted when verifying, for key rotation; comma-separated (or a TOML array). Never printed. |
//! | `SESSION_KEY_PREFIX` | `session:` | Prefix of every key written to the store, so several applications can share one backend. |
//! | `SESSION_FILE_DIR` | `flask_sessions` | Directory of the `filesystem` store; a relative path is taken from the working directory. |
//! | `SESSION_FILE_THRESHOLD` | `500` | Most sessions the `filesystem` store keeps before it removes some. |
//! | `SESSION_FILE_MODE` | `0o600` | Permissions of session files, in octal (`600`, `0600` or `0o600`). |
//! | `SESSION_MEMORY_CAPACITY` | `100000` | Most sessions the `memory` store keeps (Satchel's own setting). |
//! | `SESSION_REDIS` | unset → `redis://127.0.0.1:6379` | URL of the Redis server (standalone, `redis+cluster://`, `redis+sentinel://`). |
//! | `SESSION_MEMCACHED` | unset → `127.0.0.1:11211` | Memcached servers, comma-separated. |
//! | `SESSION_MONGODB` | unset → `mongodb://127.0.0.1:27017` | MongoDB connection URI. |
//! | `SESSION_MONGODB_DB` | `flask_session` | MongoDB database. |
//! | `SESSION_MONGODB_COLLECT` | `sessions` | MongoDB collection. |
//! | `SESSION_SQL_AUTO_MIGRATE` | `true` | The SQL store creates its table and index at start (Satchel's own). |
//! | `SESSION_SQL_CLEANUP_INTERVAL` | unset | Interval of a background task deleting expired SQL rows; unset: none (Satchel's own). |
//! | `SESSION_STORE_TIMEOUT` | `2s` | Connect and response timeout of networked stores (Satchel's own). |
//! | `SESSION_SQL_URL` | unset | SQL database URL, e.g. `sqlite://sessions.db` or `postgres://…`; the seed's `SESSION_SQLALCHEMY` is accepted as another name (see [`ALIASES`]). |
//! | `SESSION_SQLALCHEMY_TABLE` | `flask_sessions` | SQL table. |
//! | `SESSION_SQLALCHEMY_MODEL` | unset | A table mapping, to use an existing table: `schema=public,table=web_sessions,id=session_id,data=payload,expiry=expires_at` (see `store::sql::TableMapping`). Unset: the built-in layout in SESSION_SQLALCHEMY_TABLE. |
//!
//! Booleans accept `true`/`false`, `1`/`0`, `yes`/`no` and `on`/`off` in any case. In the
//! string form (environment, [`SessionConfig::apply`]) an empty value leaves an optional
//! key unset. Passwords inside the store URLs are masked in `Debug` output and in
//! [`SessionConfig::entries`]; secrets are never shown at all.
//!
//! # Examples
//!
//! ```
//! use satchel::{SameSite, SessionConfig, SessionType};
//! use std::time::Duration;
//!
//! let config = SessionConfig::default()
//!     .with_session_type(SessionType::Memory)
//!     .with_cookie_name("sid")
//!     .with_secure(true)
//!     .with_same_site(Some(SameSite::Lax))
//!     .with_lifetime(Duration::from_secs(12 * 60 * 60));
//! config.validate()?;
//! assert_eq!(config.cookie_path(), "/");
//! # Ok::<(), satchel::ConfigError>(())
//! ```

use std::borrow::Cow;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::error::ConfigError;

mod unknown;
pub use unknown::{UnknownSetting, unknown_in_environment, unknown_setting};

/// Every configuration key Satchel knows, in the order of the table in the
/// [module documentation](self).
///
/// # Examples
///
/// ```
/// assert!(satchel::config::KEYS.contains(&"SESSION_COOKIE_NAME"));
/// ```
pub const KEYS: &[&str] = &[
    "SESSION_TYPE",
    "SESSION_COOKIE_NAME",
    "SESSION_COOKIE_DOMAIN",
    "SESSION_COOKIE_PATH",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_SAMESITE",
    "PERMANENT_SESSION_LIFETIME",
    "SESSION_REFRESH_EACH_REQUEST",
    "SESSION_PERMANENT",
    "SESSION_USE_SIGNER",
    "SECRET_KEY",
    "SECRET_KEY_FALLBACKS",
    "SESSION_KEY_PREFIX",
    "SESSION_FILE_DIR",
    "SESSION_FILE_THRESHOLD",
    "SESSION_FILE_MODE",
    "SESSION_MEMORY_CAPACITY",
    "SESSION_REDIS",
    "SESSION_MEMCACHED",
    "SESSION_MONGODB",
    "SESSION_MONGODB_DB",
    "SESSION_MONGODB_COLLECT",
    "SESSION_SQL_URL",
    "SESSION_SQLALCHEMY_TABLE",
    "SESSION_SQLALCHEMY_MODEL",
    "SESSION_SQL_AUTO_MIGRATE",
    "SESSION_SQL_CLEANUP_INTERVAL",
    "SESSION_STORE_TIMEOUT",
];

/// Other names accepted for a key, as `(alias, key)`. The seed's `SESSION_SQLALCHEMY` is a
/// SQLAlchemy engine in Flask; here it names the same database as a URL. When both are
/// set, the key itself wins.
pub const ALIASES: &[(&str, &str)] = &[("SESSION_SQLALCHEMY", "SESSION_SQL_URL")];

/// Logs a warning for each environment variable that looks like a setting but is not
/// one (see [`unknown_setting`]): a misspelt key would otherwise be ignored in silence.
fn warn_of_unknown_variables() {
    for unknown in unknown_in_environment() {
        tracing::warn!("ignored: {unknown}");
    }
}

/// Default of `PERMANENT_SESSION_LIFETIME`: 31 days, as in Flask.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(31 * 24 * 60 * 60);
/// Longest accepted `PERMANENT_SESSION_LIFETIME`: 100 years. Anything longer is a mistake,
/// and far-future expiry times overflow time arithmetic.
const MAX_LIFETIME: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
/// Default of `SESSION_FILE_MODE`: read and write for the owner only.
const DEFAULT_FILE_MODE: u32 = 0o600;
/// Default of `SESSION_STORE_TIMEOUT`: long enough for a loaded server, short enough
/// that a request fails fast instead of hanging when the store is unreachable.
const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// Default of `SESSION_MEMORY_CAPACITY`.
const DEFAULT_MEMORY_CAPACITY: usize = 100_000;

/// Shown instead of a secret's value.
const REDACTED: &str = "<redacted>";
/// Shown by [`SessionConfig::entries`] for an unset optional key.
const UNSET: &str = "<unset>";

/// Where the `redis` store connects when SESSION_REDIS is unset (as Flask-Session does).
pub(crate) const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
/// The server the `memcached` store uses when SESSION_MEMCACHED is unset.
pub(crate) const DEFAULT_MEMCACHED_SERVERS: &str = "127.0.0.1:11211";
/// Where the `mongodb` store connects when SESSION_MONGODB is unset.
pub(crate) const DEFAULT_MONGODB_URI: &str = "mongodb://127.0.0.1:27017";

const EXPECTED_BOOL: &str = "one of true, false, 1, 0, yes, no, on, off (any case)";
const EXPECTED_LIFETIME: &str = "a positive number of seconds (e.g. 2678400) or a duration \
     made of number+unit parts with units w, d, h, m, s (e.g. 31d, 12h, 90m, 45s, 1d12h, 2w), \
     at most 100 years";
const EXPECTED_FILE_MODE: &str =
    "an octal file mode from 0 to 777, written 600, 0600 or 0o600 (digits 0-7 only)";
const EXPECTED_FILE_MODE_TOML: &str = "an octal file mode from 0 to 0o777: in TOML an integer \
     is decimal, so write 0o600 or the string \"600\"";
const EXPECTED_COUNT: &str = "a positive whole number";
const EXPECTED_STRING: &str = "a string";
const EXPECTED_SECRETS: &str =
    "non-empty secrets separated by commas (in TOML: a string or an array of strings)";
const EXPECTED_SESSION_TYPE: &str =
    "one of null, memory, filesystem, redis, memcached, mongodb, sqlalchemy (or sql)";
const EXPECTED_SAME_SITE: &str = "one of Lax, Strict, None (any case), or empty to leave it unset";

/// Which store keeps the sessions (`SESSION_TYPE`).
///
/// Parses from the Flask-Session names in any case, plus `sql` as an alias of
/// `sqlalchemy`; `Display` gives the Flask-Session name.
///
/// # Examples
///
/// ```
/// use satchel::SessionType;
///
/// let kind: SessionType = "Redis".parse()?;
/// assert_eq!(kind, SessionType::Redis);
/// assert_eq!("sql".parse::<SessionType>()?.to_string(), "sqlalchemy");
/// assert!("cookie".parse::<SessionType>().is_err());
/// # Ok::<(), satchel::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SessionType {
    /// `null`: sessions are disabled. Reading gives an empty session; changing it is an
    /// error. The default, so nothing is stored until a store is chosen.
    #[default]
    Null,
    /// `memory`: kept in this process, bounded by `SESSION_MEMORY_CAPACITY`.
    Memory,
    /// `filesystem`: one file per session under `SESSION_FILE_DIR`.
    Filesystem,
    /// `redis`: a Redis server at `SESSION_REDIS`.
    Redis,
    /// `memcached`: Memcached servers at `SESSION_MEMCACHED`.
    Memcached,
    /// `mongodb`: a MongoDB server at `SESSION_MONGODB`.
    MongoDb,
    /// `sqlalchemy` (alias `sql`): an SQL database at `SESSION_SQL_URL`.
    Sql,
}

impl SessionType {
    /// The Flask-Session name of this session type, as `Display` writes it.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(satchel::SessionType::MongoDb.as_str(), "mongodb");
    /// ```
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Memory => "memory",
            Self::Filesystem => "filesystem",
            Self::Redis => "redis",
            Self::Memcached => "memcached",
            Self::MongoDb => "mongodb",
            Self::Sql => "sqlalchemy",
        }
    }
}

impl fmt::Display for SessionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SessionType {
    type Err = ConfigError;

    /// Parses a Flask-Session name in any case; `sql` is an alias of `sqlalchemy`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for `SESSION_TYPE` when the name is not known.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let kind = match text.trim().to_ascii_lowercase().as_str() {
            "null" => Self::Null,
            "memory" => Self::Memory,
            "filesystem" => Self::Filesystem,
            "redis" => Self::Redis,
            "memcached" => Self::Memcached,
            "mongodb" => Self::MongoDb,
            "sqlalchemy" | "sql" => Self::Sql,
            _ => {
                return Err(ConfigError::Invalid {
                    key: "SESSION_TYPE".to_owned(),
                    value: text.to_owned(),
                    expected: EXPECTED_SESSION_TYPE.to_owned(),
                });
            }
        };
        Ok(kind)
    }
}

/// The cookie's `SameSite` attribute (`SESSION_COOKIE_SAMESITE`).
///
/// # Examples
///
/// ```
/// use satchel::SameSite;
///
/// assert_eq!("lax".parse::<SameSite>()?, SameSite::Lax);
/// assert_eq!(SameSite::Strict.as_str(), "Strict");
/// # Ok::<(), satchel::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// `Lax`: the cookie goes with same-site requests and with top-level navigations from
    /// other sites. The recommended setting: it blocks most cross-site request forgery
    /// while links into the site still arrive logged in.
    Lax,
    /// `Strict`: the cookie goes with same-site requests only; a link from another site
    /// arrives without the session.
    Strict,
    /// `None`: the cookie goes with cross-site requests too. Browsers accept it only on a
    /// `Secure` cookie, so it requires `SESSION_COOKIE_SECURE`.
    None,
}

impl SameSite {
    /// The attribute value as written in `Set-Cookie`: `Lax`, `Strict` or `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(satchel::SameSite::None.as_str(), "None");
    /// ```
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Lax => "Lax",
            Self::Strict => "Strict",
            Self::None => "None",
        }
    }
}

impl fmt::Display for SameSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SameSite {
    type Err = ConfigError;

    /// Parses `Lax`, `Strict` or `None` in any case.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for `SESSION_COOKIE_SAMESITE` on any other text.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        if trimmed.eq_ignore_ascii_case("lax") {
            Ok(Self::Lax)
        } else if trimmed.eq_ignore_ascii_case("strict") {
            Ok(Self::Strict)
        } else if trimmed.eq_ignore_ascii_case("none") {
            Ok(Self::None)
        } else {
            Err(ConfigError::Invalid {
                key: "SESSION_COOKIE_SAMESITE".to_owned(),
                value: text.to_owned(),
                expected: EXPECTED_SAME_SITE.to_owned(),
            })
        }
    }
}

/// A secret: `SECRET_KEY` or one of `SECRET_KEY_FALLBACKS`, as the bytes of the
/// configured string.
///
/// `Debug` prints `Secret(..)` and nothing else, and there is no `Display`, so a secret
/// cannot end up in logs by accident.
///
/// # Examples
///
/// ```
/// use satchel::Secret;
///
/// let secret = Secret::from("correct horse battery staple");
/// assert_eq!(secret.as_bytes(), b"correct horse battery staple");
/// assert_eq!(format!("{secret:?}"), "Secret(..)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps the bytes of a secret.
    ///
    /// # Examples
    ///
    /// ```
    /// let secret = satchel::Secret::new(vec![7_u8; 32]);
    /// assert_eq!(secret.as_bytes().len(), 32);
    /// ```
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The secret's bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(satchel::Secret::from("s3cret").as_bytes(), b"s3cret");
    /// ```
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Self {
        Self(text.as_bytes().to_vec())
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Self {
        Self(text.into_bytes())
    }
}

/// The session settings: cookie attributes, lifetime, signing secrets and the store.
///
/// Start from [`SessionConfig::default()`] (every default is the secure or conventional
/// choice, explained on each setter) and change what you need with the `with_*` setters,
/// or read the settings from the environment or a TOML file. Setters do not check
/// anything; [`validate`](SessionConfig::validate) does, and the session engine calls it
/// when it is built. See the [module documentation](self) for the table of keys.
///
/// `Debug` never shows `SECRET_KEY` or `SECRET_KEY_FALLBACKS`, and masks passwords in the
/// store URLs.
///
/// # Examples
///
/// ```
/// use satchel::{SameSite, SessionConfig};
///
/// let config = SessionConfig::default()
///     .with_cookie_name("sid")
///     .with_same_site(Some(SameSite::Lax));
/// assert_eq!(config.cookie_name(), "sid");
/// assert!(config.http_only());
/// ```
#[derive(Clone)]
#[must_use]
pub struct SessionConfig {
    session_type: SessionType,
    cookie_name: String,
    cookie_domain: Option<String>,
    cookie_path: Option<String>,
    http_only: bool,
    secure: bool,
    same_site: Option<SameSite>,
    lifetime: Duration,
    refresh_each_request: bool,
    permanent: bool,
    use_signer: bool,
    secret_key: Option<Secret>,
    secret_key_fallbacks: Vec<Secret>,
    key_prefix: String,
    file_dir: PathBuf,
    file_threshold: usize,
    file_mode: u32,
    memory_capacity: usize,
    sql_auto_migrate: bool,
    sql_cleanup_interval: Option<Duration>,
    store_timeout: Duration,
    redis_url: Option<String>,
    memcached_servers: Option<String>,
    mongodb_uri: Option<String>,
    mongodb_db: String,
    mongodb_collection: String,
    sql_url: Option<String>,
    sql_table: String,
    sql_model: Option<String>,
}

impl Default for SessionConfig {
    /// The defaults of Flask-Session (see the table in the [module documentation](self)).
    fn default() -> Self {
        Self {
            session_type: SessionType::Null,
            cookie_name: "session".to_owned(),
            cookie_domain: None,
            cookie_path: None,
            http_only: true,
            secure: false,
            same_site: None,
            lifetime: DEFAULT_LIFETIME,
            refresh_each_request: true,
            permanent: true,
            use_signer: false,
            secret_key: None,
            secret_key_fallbacks: Vec::new(),
            key_prefix: "session:".to_owned(),
            file_dir: PathBuf::from("flask_sessions"),
            file_threshold: 500,
            file_mode: DEFAULT_FILE_MODE,
            memory_capacity: DEFAULT_MEMORY_CAPACITY,
            sql_auto_migrate: true,
            sql_cleanup_interval: None,
            store_timeout: DEFAULT_STORE_TIMEOUT,
            redis_url: None,
            memcached_servers: None,
            mongodb_uri: None,
            mongodb_db: "flask_session".to_owned(),
            mongodb_collection: "sessions".to_owned(),
            sql_url: None,
            sql_table: "flask_sessions".to_owned(),
            sql_model: None,
        }
    }
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn url(value: Option<&str>) -> Option<Cow<'_, str>> {
            value.map(redact_url)
        }
        f.debug_struct("SessionConfig")
            .field("session_type", &self.session_type)
            .field("cookie_name", &self.cookie_name)
            .field("cookie_domain", &self.cookie_domain)
            .field("cookie_path", &self.cookie_path)
            .field("http_only", &self.http_only)
            .field("secure", &self.secure)
            .field("same_site", &self.same_site)
            .field("lifetime", &self.lifetime)
            .field("refresh_each_request", &self.refresh_each_request)
            .field("permanent", &self.permanent)
            .field("use_signer", &self.use_signer)
            .field("secret_key", &self.secret_key)
            .field("secret_key_fallbacks", &self.secret_key_fallbacks)
            .field("key_prefix", &self.key_prefix)
            .field("file_dir", &self.file_dir)
            .field("file_threshold", &self.file_threshold)
            .field("file_mode", &format_args!("0o{:o}", self.file_mode))
            .field("memory_capacity", &self.memory_capacity)
            .field("sql_auto_migrate", &self.sql_auto_migrate)
            .field("sql_cleanup_interval", &self.sql_cleanup_interval)
            .field("store_timeout", &self.store_timeout)
            .field("redis_url", &url(self.redis_url.as_deref()))
            .field("memcached_servers", &url(self.memcached_servers.as_deref()))
            .field("mongodb_uri", &url(self.mongodb_uri.as_deref()))
            .field("mongodb_db", &self.mongodb_db)
            .field("mongodb_collection", &self.mongodb_collection)
            .field("sql_url", &url(self.sql_url.as_deref()))
            .field("sql_table", &self.sql_table)
            .field("sql_model", &self.sql_model)
            .finish()
    }
}

/// A value for one key before it is parsed: the string form (environment, CLI, TOML
/// strings) or one of the other TOML types. Environment and TOML share the parsing
/// through [`SessionConfig::set`].
#[derive(Debug)]
enum Raw<'a> {
    Text(&'a str),
    Integer(i64),
    Bool(bool),
    List(Vec<&'a str>),
    /// A TOML value no key takes (float, datetime, table, mixed array), described for the
    /// error message.
    Other(String),
}

impl<'a> Raw<'a> {
    /// Converts a TOML value; anything no key accepts becomes [`Raw::Other`].
    fn from_toml(value: &'a toml::Value) -> Self {
        match value {
            toml::Value::String(text) => Self::Text(text),
            toml::Value::Integer(number) => Self::Integer(*number),
            toml::Value::Boolean(flag) => Self::Bool(*flag),
            toml::Value::Array(items) => {
                let texts: Option<Vec<&str>> = items.iter().map(toml::Value::as_str).collect();
                texts.map_or_else(
                    || Self::Other("<TOML array with a non-string item>".to_owned()),
                    Self::List,
                )
            }
            toml::Value::Float(number) => Self::Other(number.to_string()),
            other => Self::Other(format!("<TOML {}>", other.type_str())),
        }
    }
}

impl SessionConfig {
    /// Reads the configuration from the process environment: the defaults, overlaid with
    /// every known key (see [`KEYS`]) that is set, then [validated](Self::validate).
    ///
    /// Each variable is parsed as by [`apply`](Self::apply); variables with other names
    /// are ignored.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when a variable has a value its key cannot take (including
    /// a value that is not UTF-8), and any error of [`validate`](Self::validate).
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::SessionConfig;
    ///
    /// // With none of the keys set, this is the default configuration.
    /// let config = SessionConfig::from_env()?;
    /// println!("sessions are kept in: {}", config.session_type());
    /// # Ok::<(), satchel::ConfigError>(())
    /// ```
    pub fn from_env() -> Result<Self, ConfigError> {
        let config = Self::default().overlay_env(|key| std::env::var_os(key))?;
        config.validate()?;
        warn_of_unknown_variables();
        Ok(config)
    }

    /// Reads the configuration from TOML text: the defaults, overlaid with the file's
    /// top-level keys, then [validated](Self::validate).
    ///
    /// Keys have the same names as the environment variables. Values may be strings (parsed
    /// as by [`apply`](Self::apply)), integers (seconds for `PERMANENT_SESSION_LIFETIME`;
    /// the numeric value for `SESSION_FILE_MODE`, so write `0o600`), booleans, and for
    /// `SECRET_KEY_FALLBACKS` an array of strings.
    ///
    /// # Errors
    ///
    /// [`ConfigError::File`] when the text is not valid TOML, [`ConfigError::UnknownKey`]
    /// for a key Satchel does not know (usually a typo), [`ConfigError::Invalid`] for a
    /// value its key cannot take, and any error of [`validate`](Self::validate).
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::{SameSite, SessionConfig, SessionType};
    /// use std::time::Duration;
    ///
    /// let config = SessionConfig::from_toml_str(
    ///     r#"
    ///     SESSION_TYPE = "memory"
    ///     SESSION_COOKIE_NAME = "sid"
    ///     SESSION_COOKIE_SECURE = true
    ///     SESSION_COOKIE_SAMESITE = "Lax"
    ///     PERMANENT_SESSION_LIFETIME = "12h"
    ///     SESSION_FILE_MODE = 0o600
    ///     "#,
    /// )?;
    /// assert_eq!(config.session_type(), SessionType::Memory);
    /// assert_eq!(config.cookie_name(), "sid");
    /// assert_eq!(config.same_site(), Some(SameSite::Lax));
    /// assert_eq!(config.lifetime(), Duration::from_secs(12 * 60 * 60));
    ///
    /// let typo = SessionConfig::from_toml_str("SESSION_COOKIE_NAEM = \"sid\"");
    /// assert!(matches!(typo, Err(satchel::ConfigError::UnknownKey { .. })));
    /// # Ok::<(), satchel::ConfigError>(())
    /// ```
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let config = Self::default().overlay_toml(text, "<string>")?;
        config.validate()?;
        Ok(config)
    }

    /// Reads the configuration from a TOML file, as [`from_toml_str`](Self::from_toml_str)
    /// does with its text.
    ///
    /// # Errors
    ///
    /// [`ConfigError::File`] when the file cannot be read or is not valid TOML, and the
    /// errors of [`from_toml_str`](Self::from_toml_str).
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::SessionConfig;
    ///
    /// let dir = tempfile::tempdir().expect("temporary directory");
    /// let path = dir.path().join("sessions.toml");
    /// std::fs::write(&path, "SESSION_KEY_PREFIX = \"shop:\"\n").expect("write file");
    ///
    /// let config = SessionConfig::from_toml_file(&path)?;
    /// assert_eq!(config.key_prefix(), "shop:");
    /// # Ok::<(), satchel::ConfigError>(())
    /// ```
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let config = Self::default().overlay_toml_file(path.as_ref())?;
        config.validate()?;
        Ok(config)
    }

    /// Loads the configuration from all sources: the defaults, overlaid with the TOML
    /// `file` if one is given, overlaid with the environment, then
    /// [validated](Self::validate). The environment wins, so a deployment can override
    /// one setting of a shared file.
    ///
    /// # Errors
    ///
    /// The errors of [`from_toml_file`](Self::from_toml_file) and
    /// [`from_env`](Self::from_env).
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::SessionConfig;
    ///
    /// let config = SessionConfig::load(None)?; // defaults and environment only
    /// # let _ = config;
    /// # Ok::<(), satchel::ConfigError>(())
    /// ```
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let config = Self::load_with(file, |key| std::env::var_os(key))?;
        warn_of_unknown_variables();
        Ok(config)
    }

    /// [`load`](Self::load) with the environment read through `lookup`.
    fn load_with(
        file: Option<&Path>,
        lookup: impl FnMut(&str) -> Option<OsString>,
    ) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        if let Some(path) = file {
            config = config.overlay_toml_file(path)?;
        }
        let config = config.overlay_env(lookup)?;
        config.validate()?;
        Ok(config)
    }

    /// Sets one key from its string form, as the environment and the command line give
    /// it. Does not [validate](Self::validate) the result.
    ///
    /// An empty value leaves an optional key (such as `SESSION_COOKIE_DOMAIN` or
    /// `SESSION_COOKIE_SAMESITE`) unset. `SECRET_KEY_FALLBACKS` is a comma-separated list.
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownKey`] when `key` is not one of [`KEYS`], and
    /// [`ConfigError::Invalid`] when `value` is not a value the key takes; the error says
    /// what is accepted, and never repeats a secret.
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::SessionConfig;
    /// use std::time::Duration;
    ///
    /// let config = SessionConfig::default()
    ///     .apply("PERMANENT_SESSION_LIFETIME", "1d12h")?
    ///     .apply("SESSION_COOKIE_HTTPONLY", "yes")?;
    /// assert_eq!(config.lifetime(), Duration::from_secs(36 * 60 * 60));
    ///
    /// let error = SessionConfig::default().apply("SESSION_COOKIE_SECURE", "maybe").unwrap_err();
    /// assert!(error.to_string().contains("SESSION_COOKIE_SECURE"));
    /// # Ok::<(), satchel::ConfigError>(())
    /// ```
    pub fn apply(self, key: &str, value: &str) -> Result<Self, ConfigError> {
        self.set(key, &Raw::Text(value), "SessionConfig::apply")
    }

    /// Overlays every known key that `lookup` finds (the environment, in production).
    fn overlay_env(
        mut self,
        mut lookup: impl FnMut(&str) -> Option<OsString>,
    ) -> Result<Self, ConfigError> {
        // An alias is read only when its key is not set: the key itself wins.
        let aliases = ALIASES.iter().filter(|&&(_, key)| lookup(key).is_none());
        let names: Vec<&str> = KEYS
            .iter()
            .copied()
            .chain(aliases.map(|&(alias, _)| alias))
            .collect();
        for key in names {
            let Some(value) = lookup(key) else {
                continue;
            };
            let Some(text) = value.to_str() else {
                return Err(ConfigError::Invalid {
                    key: key.to_owned(),
                    value: describe(key, &Raw::Text(&value.to_string_lossy())),
                    expected: "valid UTF-8 text".to_owned(),
                });
            };
            self = self.set(key, &Raw::Text(text), "the environment")?;
        }
        Ok(self)
    }

    /// Overlays the keys of a TOML file.
    fn overlay_toml_file(self, path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::File {
            path: path.display().to_string(),
            message: error.to_string(),
        })?;
        self.overlay_toml(&text, &path.display().to_string())
    }

    /// Overlays the keys of TOML text; `source` names it in errors.
    fn overlay_toml(mut self, text: &str, source: &str) -> Result<Self, ConfigError> {
        let table = text
            .parse::<toml::Table>()
            .map_err(|error| ConfigError::File {
                path: source.to_owned(),
                message: toml_error_message(text, &error),
            })?;
        for (key, value) in &table {
            let shadowed = ALIASES
                .iter()
                .any(|&(alias, canonical)| key == alias && table.contains_key(canonical));
            if !shadowed {
                self = self.set(key, &Raw::from_toml(value), source)?;
            }
        }
        Ok(self)
    }

    /// Sets `key` from a raw value: the one place every source's values are parsed.
    fn set(mut self, key: &str, raw: &Raw<'_>, source: &str) -> Result<Self, ConfigError> {
        match key {
            "SESSION_TYPE" => {
                self.session_type = match raw {
                    Raw::Text(text) => text.parse()?,
                    _ => return Err(invalid(key, raw, EXPECTED_SESSION_TYPE)),
                };
            }
            "SESSION_COOKIE_NAME" => self.cookie_name = text(key, raw)?.to_owned(),
            "SESSION_COOKIE_DOMAIN" => self.cookie_domain = optional_text(key, raw)?,
            "SESSION_COOKIE_PATH" => self.cookie_path = optional_text(key, raw)?,
            "SESSION_COOKIE_HTTPONLY" => self.http_only = boolean(key, raw)?,
            "SESSION_COOKIE_SECURE" => self.secure = boolean(key, raw)?,
            "SESSION_COOKIE_SAMESITE" => {
                self.same_site = match raw {
                    Raw::Text(text) if text.trim().is_empty() => None,
                    Raw::Text(text) => Some(text.parse()?),
                    _ => return Err(invalid(key, raw, EXPECTED_SAME_SITE)),
                };
            }
            "PERMANENT_SESSION_LIFETIME" => self.lifetime = lifetime(key, raw)?,
            "SESSION_REFRESH_EACH_REQUEST" => self.refresh_each_request = boolean(key, raw)?,
            "SESSION_PERMANENT" => self.permanent = boolean(key, raw)?,
            "SESSION_USE_SIGNER" => self.use_signer = boolean(key, raw)?,
            "SECRET_KEY" => self.secret_key = Some(Secret::from(text(key, raw)?)),
            "SECRET_KEY_FALLBACKS" => self.secret_key_fallbacks = secrets(key, raw)?,
            "SESSION_KEY_PREFIX" => self.key_prefix = text(key, raw)?.to_owned(),
            "SESSION_FILE_DIR" => self.file_dir = PathBuf::from(text(key, raw)?),
            "SESSION_FILE_THRESHOLD" => self.file_threshold = count(key, raw)?,
            "SESSION_FILE_MODE" => self.file_mode = file_mode(key, raw)?,
            "SESSION_MEMORY_CAPACITY" => self.memory_capacity = count(key, raw)?,
            "SESSION_REDIS" => self.redis_url = optional_text(key, raw)?,
            "SESSION_MEMCACHED" => self.memcached_servers = optional_text(key, raw)?,
            "SESSION_MONGODB" => self.mongodb_uri = optional_text(key, raw)?,
            "SESSION_MONGODB_DB" => self.mongodb_db = text(key, raw)?.to_owned(),
            "SESSION_MONGODB_COLLECT" => self.mongodb_collection = text(key, raw)?.to_owned(),
            "SESSION_SQL_URL" | "SESSION_SQLALCHEMY" => self.sql_url = optional_text(key, raw)?,
            "SESSION_SQLALCHEMY_TABLE" => self.sql_table = text(key, raw)?.to_owned(),
            "SESSION_SQLALCHEMY_MODEL" => self.sql_model = optional_text(key, raw)?,
            "SESSION_SQL_AUTO_MIGRATE" => self.sql_auto_migrate = boolean(key, raw)?,
            "SESSION_SQL_CLEANUP_INTERVAL" => {
                self.sql_cleanup_interval = match raw {
                    Raw::Text(text) if text.trim().is_empty() => None,
                    _ => Some(lifetime(key, raw)?),
                };
            }
            "SESSION_STORE_TIMEOUT" => self.store_timeout = lifetime(key, raw)?,
            _ => {
                return Err(ConfigError::UnknownKey {
                    key: key.to_owned(),
                    source: source.to_owned(),
                });
            }
        }
        Ok(self)
    }

    /// Checks the configuration for values that cannot work and settings that contradict
    /// each other.
    ///
    /// [`from_env`](Self::from_env), the `from_toml_*` functions and [`load`](Self::load)
    /// call it; the setters do not, and the session engine calls it when it is built. It
    /// rejects:
    ///
    /// - `SESSION_USE_SIGNER` without `SECRET_KEY`, or in a build without the `signed`
    ///   feature;
    /// - an empty `SECRET_KEY` or an empty entry in `SECRET_KEY_FALLBACKS`;
    /// - `SESSION_COOKIE_SAMESITE=None` without `SESSION_COOKIE_SECURE` (browsers drop
    ///   such cookies);
    /// - a `PERMANENT_SESSION_LIFETIME` under one second or over 100 years;
    /// - a `SESSION_FILE_THRESHOLD` or `SESSION_MEMORY_CAPACITY` of 0;
    /// - a `SESSION_FILE_MODE` above `0o777` or without owner read and write (`0o600`);
    /// - a `SESSION_COOKIE_NAME` that is empty or not an RFC 6265 token;
    /// - a `SESSION_COOKIE_PATH` not starting with `/`, or containing `;`, control or
    ///   non-ASCII characters;
    /// - a `SESSION_COOKIE_DOMAIN` that is empty or contains `;`, whitespace, control or
    ///   non-ASCII characters;
    /// - a `SESSION_KEY_PREFIX` containing whitespace or control characters (it becomes
    ///   part of every store key).
    ///
    /// # Errors
    ///
    /// The first problem found, as [`ConfigError::Conflict`] for contradicting settings and
    /// [`ConfigError::Invalid`] for a bad value. The message names the key.
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::{SameSite, SessionConfig};
    ///
    /// assert!(SessionConfig::default().validate().is_ok());
    ///
    /// let config = SessionConfig::default().with_same_site(Some(SameSite::None));
    /// let error = config.validate().unwrap_err();
    /// assert!(error.to_string().contains("SESSION_COOKIE_SECURE"));
    /// assert!(config.with_secure(true).validate().is_ok());
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.use_signer && self.secret_key.is_none() {
            return Err(ConfigError::Conflict(
                "SESSION_USE_SIGNER is true but SECRET_KEY is not set: generate one with \
                 `satchel keygen`"
                    .to_owned(),
            ));
        }
        if self.use_signer && !cfg!(feature = "signed") {
            return Err(ConfigError::Conflict(
                "SESSION_USE_SIGNER is true but satchel was built without its `signed` \
                 feature: enable the feature or set SESSION_USE_SIGNER to false"
                    .to_owned(),
            ));
        }
        if self
            .secret_key
            .as_ref()
            .is_some_and(|secret| secret.as_bytes().is_empty())
        {
            return Err(ConfigError::Invalid {
                key: "SECRET_KEY".to_owned(),
                value: REDACTED.to_owned(),
                expected: "a non-empty secret (32 or more random bytes are recommended)".to_owned(),
            });
        }
        if self
            .secret_key_fallbacks
            .iter()
            .any(|secret| secret.as_bytes().is_empty())
        {
            return Err(ConfigError::Invalid {
                key: "SECRET_KEY_FALLBACKS".to_owned(),
                value: REDACTED.to_owned(),
                expected: EXPECTED_SECRETS.to_owned(),
            });
        }
        if self.same_site == Some(SameSite::None) && !self.secure {
            return Err(ConfigError::Conflict(
                "SESSION_COOKIE_SAMESITE is None but SESSION_COOKIE_SECURE is false: browsers \
                 reject SameSite=None cookies that are not Secure; set SESSION_COOKIE_SECURE \
                 to true or choose Lax"
                    .to_owned(),
            ));
        }
        if self.lifetime < Duration::from_secs(1) || self.lifetime > MAX_LIFETIME {
            return Err(ConfigError::Invalid {
                key: "PERMANENT_SESSION_LIFETIME".to_owned(),
                value: format_lifetime(self.lifetime),
                expected: EXPECTED_LIFETIME.to_owned(),
            });
        }
        if self.file_threshold == 0 {
            return Err(invalid_value("SESSION_FILE_THRESHOLD", "0", EXPECTED_COUNT));
        }
        if self.memory_capacity == 0 {
            return Err(invalid_value(
                "SESSION_MEMORY_CAPACITY",
                "0",
                EXPECTED_COUNT,
            ));
        }
        if self.file_mode > 0o777 {
            return Err(invalid_value(
                "SESSION_FILE_MODE",
                &format!("0o{:o}", self.file_mode),
                EXPECTED_FILE_MODE,
            ));
        }
        if self.file_mode & 0o600 != 0o600 {
            return Err(invalid_value(
                "SESSION_FILE_MODE",
                &format!("0o{:o}", self.file_mode),
                "a mode that lets the owner read and write (the 0o600 bits), e.g. 0o600",
            ));
        }
        if self.cookie_name.is_empty() || !self.cookie_name.bytes().all(is_token_byte) {
            return Err(invalid_value(
                "SESSION_COOKIE_NAME",
                &self.cookie_name,
                "a non-empty RFC 6265 token: visible ASCII characters except \
                 ( ) < > @ , ; : \\ \" / [ ] ? = { }",
            ));
        }
        if let Some(path) = &self.cookie_path {
            let fine = path.starts_with('/')
                && path
                    .bytes()
                    .all(|byte| (0x20..0x7f).contains(&byte) && byte != b';');
            if !fine {
                return Err(invalid_value(
                    "SESSION_COOKIE_PATH",
                    path,
                    "a path starting with / without ';', control or non-ASCII characters",
                ));
            }
        }
        if let Some(domain) = &self.cookie_domain {
            let fine = !domain.is_empty()
                && domain
                    .bytes()
                    .all(|byte| byte.is_ascii_graphic() && byte != b';');
            if !fine {
                return Err(invalid_value(
                    "SESSION_COOKIE_DOMAIN",
                    domain,
                    "a domain name (e.g. example.com) without ';', whitespace, control or \
                     non-ASCII characters",
                ));
            }
        }
        if self
            .key_prefix
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid_value(
                "SESSION_KEY_PREFIX",
                &self.key_prefix,
                "a prefix without whitespace or control characters, e.g. session:",
            ));
        }
        Ok(())
    }

    /// Every key with its effective value as display text, in the order of [`KEYS`].
    ///
    /// Unset optional keys show as `<unset>`; `SECRET_KEY` shows only `<set>` or
    /// `<unset>`, `SECRET_KEY_FALLBACKS` only how many keys it holds, and passwords in the
    /// store URLs are masked, so the list is safe to display.
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::SessionConfig;
    ///
    /// let config = SessionConfig::default().with_secret_key("hunter2");
    /// let entries = config.entries();
    /// assert_eq!(entries[0], ("SESSION_TYPE", "null".to_owned()));
    /// assert!(entries.contains(&("SECRET_KEY", "<set>".to_owned())));
    /// assert!(entries.iter().all(|(_, value)| !value.contains("hunter2")));
    /// ```
    #[must_use]
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        fn optional(value: Option<&str>) -> String {
            value.map_or_else(|| UNSET.to_owned(), str::to_owned)
        }
        fn url(value: Option<&str>) -> String {
            value.map_or_else(|| UNSET.to_owned(), |url| redact_url(url).into_owned())
        }
        fn server(value: Option<&str>, default: &str) -> String {
            value.map_or_else(
                || format!("<unset: {default}>"),
                |url| redact_url(url).into_owned(),
            )
        }
        let fallbacks = match self.secret_key_fallbacks.len() {
            1 => "<1 key>".to_owned(),
            count => format!("<{count} keys>"),
        };
        vec![
            ("SESSION_TYPE", self.session_type.to_string()),
            ("SESSION_COOKIE_NAME", self.cookie_name.clone()),
            ("SESSION_COOKIE_DOMAIN", optional(self.cookie_domain())),
            ("SESSION_COOKIE_PATH", self.cookie_path().to_owned()),
            ("SESSION_COOKIE_HTTPONLY", self.http_only.to_string()),
            ("SESSION_COOKIE_SECURE", self.secure.to_string()),
            (
                "SESSION_COOKIE_SAMESITE",
                optional(self.same_site.map(|same_site| same_site.as_str())),
            ),
            ("PERMANENT_SESSION_LIFETIME", format_lifetime(self.lifetime)),
            (
                "SESSION_REFRESH_EACH_REQUEST",
                self.refresh_each_request.to_string(),
            ),
            ("SESSION_PERMANENT", self.permanent.to_string()),
            ("SESSION_USE_SIGNER", self.use_signer.to_string()),
            (
                "SECRET_KEY",
                if self.secret_key.is_some() {
                    "<set>"
                } else {
                    UNSET
                }
                .to_owned(),
            ),
            ("SECRET_KEY_FALLBACKS", fallbacks),
            ("SESSION_KEY_PREFIX", self.key_prefix.clone()),
            ("SESSION_FILE_DIR", self.file_dir.display().to_string()),
            ("SESSION_FILE_THRESHOLD", self.file_threshold.to_string()),
            ("SESSION_FILE_MODE", format!("0o{:o}", self.file_mode)),
            ("SESSION_MEMORY_CAPACITY", self.memory_capacity.to_string()),
            ("SESSION_REDIS", server(self.redis_url(), DEFAULT_REDIS_URL)),
            (
                "SESSION_MEMCACHED",
                server(self.memcached_servers(), DEFAULT_MEMCACHED_SERVERS),
            ),
            (
                "SESSION_MONGODB",
                server(self.mongodb_uri(), DEFAULT_MONGODB_URI),
            ),
            ("SESSION_MONGODB_DB", self.mongodb_db.clone()),
            ("SESSION_MONGODB_COLLECT", self.mongodb_collection.clone()),
            ("SESSION_SQL_URL", url(self.sql_url())),
            ("SESSION_SQLALCHEMY_TABLE", self.sql_table.clone()),
            ("SESSION_SQLALCHEMY_MODEL", optional(self.sql_model())),
            (
                "SESSION_SQL_AUTO_MIGRATE",
                self.sql_auto_migrate.to_string(),
            ),
            (
                "SESSION_SQL_CLEANUP_INTERVAL",
                self.sql_cleanup_interval
                    .map_or_else(|| "<unset>".to_owned(), format_lifetime),
            ),
            ("SESSION_STORE_TIMEOUT", format_lifetime(self.store_timeout)),
        ]
    }

    // ---- SESSION_TYPE ----

    /// Which store keeps the sessions (`SESSION_TYPE`).
    ///
    /// Defaults to [`SessionType::Null`]: sessions are disabled until a store is chosen,
    /// so nothing is kept anywhere by accident.
    pub fn session_type(&self) -> SessionType {
        self.session_type
    }

    /// Sets which store keeps the sessions (`SESSION_TYPE`).
    ///
    /// Defaults to [`SessionType::Null`], as in Flask-Session: nothing is stored until you
    /// decide where sessions live, and a deployment that forgot the setting refuses to
    /// change sessions loudly instead of keeping them in a process memory that is lost on
    /// restart and not shared between instances.
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::{SessionConfig, SessionType};
    ///
    /// let config = SessionConfig::default().with_session_type(SessionType::Memory);
    /// assert_eq!(config.session_type(), SessionType::Memory);
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_session_type(mut self, session_type: SessionType) -> Self {
        self.session_type = session_type;
        self
    }

    // ---- Cookie ----

    /// Name of the session cookie (`SESSION_COOKIE_NAME`).
    ///
    /// Defaults to `session`, the name Flask uses, so a migrated application keeps its
    /// cookie; the name reveals nothing about the session's content.
    #[must_use]
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// Sets the name of the session cookie (`SESSION_COOKIE_NAME`).
    ///
    /// Defaults to `session`, Flask's name, so a migrated application keeps its cookie.
    /// Choose another name when several applications share a domain, so they do not
    /// overwrite each other's cookies. It must be an RFC 6265 token.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_cookie_name("sid");
    /// assert_eq!(config.cookie_name(), "sid");
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = name.into();
        self
    }

    /// The cookie's `Domain` attribute (`SESSION_COOKIE_DOMAIN`), if set.
    ///
    /// Defaults to `None`: the cookie is host-only, the narrowest scope a cookie can have,
    /// so subdomains never receive the session.
    #[must_use]
    pub fn cookie_domain(&self) -> Option<&str> {
        self.cookie_domain.as_deref()
    }

    /// Sets the cookie's `Domain` attribute (`SESSION_COOKIE_DOMAIN`).
    ///
    /// Defaults to unset: the browser returns the cookie only to the host that set it, the
    /// narrowest scope possible, so a compromised or untrusted subdomain never sees the
    /// session id. Set a domain only to share the session with its subdomains.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_cookie_domain("example.com");
    /// assert_eq!(config.cookie_domain(), Some("example.com"));
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_cookie_domain(mut self, domain: impl Into<String>) -> Self {
        self.cookie_domain = Some(domain.into());
        self
    }

    /// The cookie's `Path` attribute (`SESSION_COOKIE_PATH`); `/` when unset.
    ///
    /// Defaults to unset, which means `/`: the session covers the whole site, which is what
    /// a login session needs (paths are not a security boundary between pages anyway).
    #[must_use]
    pub fn cookie_path(&self) -> &str {
        self.cookie_path.as_deref().unwrap_or("/")
    }

    /// Sets the cookie's `Path` attribute (`SESSION_COOKIE_PATH`).
    ///
    /// Defaults to unset, meaning `/`, so the session is available on every page of the
    /// site; narrowing the path does not isolate pages from each other, so there is
    /// little to gain from it. Set it when the application is mounted under a prefix.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default();
    /// assert_eq!(config.cookie_path(), "/");
    /// assert_eq!(config.with_cookie_path("/app").cookie_path(), "/app");
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_cookie_path(mut self, path: impl Into<String>) -> Self {
        self.cookie_path = Some(path.into());
        self
    }

    /// Whether the cookie carries the `HttpOnly` flag (`SESSION_COOKIE_HTTPONLY`).
    ///
    /// Defaults to `true`: page scripts cannot read the cookie, so a cross-site scripting
    /// flaw cannot steal the session id.
    #[must_use]
    pub fn http_only(&self) -> bool {
        self.http_only
    }

    /// Sets whether the cookie carries the `HttpOnly` flag (`SESSION_COOKIE_HTTPONLY`).
    ///
    /// Defaults to `true`, and there is rarely a reason to change it: scripts never need
    /// the session id, and hiding it from them means a cross-site scripting flaw cannot
    /// send it to an attacker.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default();
    /// assert!(config.http_only());
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// Whether the cookie carries the `Secure` flag (`SESSION_COOKIE_SECURE`).
    ///
    /// Defaults to `false`, as in Flask, so sessions work on plain-HTTP development
    /// servers; set it to `true` in production behind HTTPS.
    #[must_use]
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Sets whether the cookie carries the `Secure` flag (`SESSION_COOKIE_SECURE`).
    ///
    /// Defaults to `false`, as in Flask: a `Secure` cookie is never sent over plain HTTP,
    /// so the default keeps sessions working on `http://localhost` during development.
    /// Set it to `true` whenever the site is served over HTTPS, so the id never crosses
    /// the network unencrypted. `SameSite=None` requires it.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_secure(true);
    /// assert!(config.secure());
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// The cookie's `SameSite` attribute (`SESSION_COOKIE_SAMESITE`), if set.
    ///
    /// Defaults to `None` (attribute left out), as in Flask: current browsers then treat
    /// the cookie as `Lax`; set [`SameSite::Lax`] to get that everywhere.
    #[must_use]
    pub fn same_site(&self) -> Option<SameSite> {
        self.same_site
    }

    /// Sets the cookie's `SameSite` attribute (`SESSION_COOKIE_SAMESITE`); `None` leaves
    /// the attribute out.
    ///
    /// Defaults to `None`, as in Flask, which keeps cross-site flows that older setups
    /// rely on working; current browsers then apply `Lax` themselves. Setting
    /// `Some(SameSite::Lax)` is recommended: it makes that protection against cross-site
    /// request forgery explicit for every browser. `SameSite::None` requires
    /// [`with_secure(true)`](Self::with_secure).
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::{SameSite, SessionConfig};
    ///
    /// let config = SessionConfig::default().with_same_site(Some(SameSite::Lax));
    /// assert_eq!(config.same_site(), Some(SameSite::Lax));
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_same_site(mut self, same_site: Option<SameSite>) -> Self {
        self.same_site = same_site;
        self
    }

    // ---- Lifetime ----

    /// How long a permanent session lives (`PERMANENT_SESSION_LIFETIME`).
    ///
    /// Defaults to 31 days, as in Flask: long enough that regular users stay logged in,
    /// short enough that a forgotten or stolen id stops working.
    #[must_use]
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Sets how long a permanent session lives (`PERMANENT_SESSION_LIFETIME`).
    ///
    /// Defaults to 31 days, as in Flask: it bounds how long an abandoned or stolen session
    /// id stays usable, while regular users (whose sessions are refreshed on each request,
    /// see [`with_refresh_each_request`](Self::with_refresh_each_request)) are not logged
    /// out. It must be between one second and 100 years.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let config = satchel::SessionConfig::default().with_lifetime(Duration::from_secs(3600));
    /// assert_eq!(config.lifetime(), Duration::from_secs(3600));
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Whether a permanent session's expiry moves forward on every request
    /// (`SESSION_REFRESH_EACH_REQUEST`).
    ///
    /// Defaults to `true`, as in Flask: active users stay logged in and only idle
    /// sessions expire.
    #[must_use]
    pub fn refresh_each_request(&self) -> bool {
        self.refresh_each_request
    }

    /// How far a stored expiry may lag behind "now + lifetime" before a request that
    /// only reads the session extends it: one hundredth of the lifetime (7 h 26 min for
    /// the 31-day default, 36 s for one hour).
    ///
    /// With SESSION_REFRESH_EACH_REQUEST on, the seed asks for the lifetime to restart
    /// at every request. Writing the new expiry on every read would turn each read into
    /// a store write; Satchel writes it only once it has fallen this far behind (a
    /// touch of the expiry alone, sent when the request ends in the place of a save), so
    /// reads cost a read, and a session still expires at most 1% of its lifetime
    /// earlier than an exact refresh would make it. With the 31-day default that is one
    /// touch per session every 7 h 26 min of activity at most.
    ///
    /// The same granularity applies to changes: a save (or an increment) that keeps the
    /// id moves a permanent session's stored expiry, and re-sends the cookie with it,
    /// only once the stored expiry lags by this much; until then both stay as they are.
    ///
    /// The cookie follows the stored expiry: it is re-sent with the touch or save that
    /// moves it. In between, the browser's cookie already expires with the stored entry
    /// (both came from the same write), so responses carry no `Set-Cookie` that would
    /// change nothing, and a late answer cannot hand back an id that a concurrent log-in
    /// or log-out has replaced. A consequence: cookie settings changed by a deployment
    /// (Secure, SameSite, the SESSION_PERMANENT default) reach a browser's existing
    /// permanent cookie with the next move of its expiry, and a browser-session cookie
    /// (which carries no expiry) only when it is next replaced.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let config = satchel::SessionConfig::default().with_lifetime(Duration::from_secs(3600));
    /// assert_eq!(config.refresh_granularity(), Duration::from_secs(36));
    /// ```
    #[must_use]
    pub fn refresh_granularity(&self) -> Duration {
        self.lifetime / 100
    }

    /// Sets whether a permanent session's expiry moves forward on every request, or only
    /// when the session changes (`SESSION_REFRESH_EACH_REQUEST`).
    ///
    /// Defaults to `true`, as in Flask: the lifetime then measures idleness, so active
    /// users are never logged out in the middle of their work while abandoned sessions
    /// still expire. Set `false` for a lifetime counted from the last change instead;
    /// requests that do not change the session then never write (with `true` they do
    /// once the expiry lags by [`refresh_granularity`](Self::refresh_granularity)).
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_refresh_each_request(false);
    /// assert!(!config.refresh_each_request());
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_refresh_each_request(mut self, refresh: bool) -> Self {
        self.refresh_each_request = refresh;
        self
    }

    /// Whether sessions are permanent (`SESSION_PERMANENT`).
    ///
    /// Defaults to `true`, as in Flask-Session: the cookie and the stored record expire
    /// together after the lifetime.
    #[must_use]
    pub fn permanent(&self) -> bool {
        self.permanent
    }

    /// Sets whether sessions are permanent (`SESSION_PERMANENT`).
    ///
    /// Defaults to `true`, as in Flask-Session: the cookie gets an expiry of
    /// [`lifetime`](Self::lifetime), so browser and store agree on when the session ends
    /// and it survives a browser restart. With `false` the cookie is a browser-session
    /// cookie that disappears when the browser closes (the stored record still expires
    /// after the lifetime).
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_permanent(false);
    /// assert!(!config.permanent());
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_permanent(mut self, permanent: bool) -> Self {
        self.permanent = permanent;
        self
    }

    // ---- Signing ----

    /// Whether the session id in the cookie is signed with `SECRET_KEY`
    /// (`SESSION_USE_SIGNER`).
    ///
    /// Defaults to `false`, as in Flask-Session: the id is 256 random bits and cannot be
    /// guessed, so the default setup works without a secret.
    #[must_use]
    pub fn use_signer(&self) -> bool {
        self.use_signer
    }

    /// Sets whether the session id in the cookie is signed with `SECRET_KEY`
    /// (`SESSION_USE_SIGNER`).
    ///
    /// Defaults to `false`, as in Flask-Session: session ids carry 256 bits from the
    /// operating system's random generator, so they cannot be guessed or forged even
    /// unsigned, and the default setup needs no secret. Signing adds defence in depth
    /// (forged ids are rejected before the store is asked) and key rotation; it needs
    /// [`with_secret_key`](Self::with_secret_key) and the `signed` feature.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default()
    ///     .with_use_signer(true)
    ///     .with_secret_key("a long random secret");
    /// assert!(config.use_signer());
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_use_signer(mut self, use_signer: bool) -> Self {
        self.use_signer = use_signer;
        self
    }

    /// The secret that signs session ids (`SECRET_KEY`), if set.
    ///
    /// Defaults to `None`: a secret built into the defaults would be public, so none is.
    #[must_use]
    pub fn secret_key(&self) -> Option<&Secret> {
        self.secret_key.as_ref()
    }

    /// Sets the secret that signs session ids (`SECRET_KEY`).
    ///
    /// Defaults to unset: any built-in secret would be published with this library and
    /// protect nothing, so a secret must come from your deployment. Use 32 or more random
    /// bytes, e.g. from `satchel keygen`, and keep it out of version control.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_secret_key("a long random secret");
    /// assert!(config.secret_key().is_some());
    /// assert!(!format!("{config:?}").contains("a long random secret"));
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_secret_key(mut self, secret: impl Into<Secret>) -> Self {
        self.secret_key = Some(secret.into());
        self
    }

    /// Older secrets still accepted when verifying signatures (`SECRET_KEY_FALLBACKS`).
    ///
    /// Defaults to none: only the current `SECRET_KEY` is trusted unless you are in the
    /// middle of rotating it.
    #[must_use]
    pub fn secret_key_fallbacks(&self) -> &[Secret] {
        &self.secret_key_fallbacks
    }

    /// Sets the older secrets still accepted when verifying signatures
    /// (`SECRET_KEY_FALLBACKS`), replacing any set before.
    ///
    /// Defaults to none, so only the current `SECRET_KEY` is trusted. To rotate keys, make
    /// the new secret `SECRET_KEY` and the old one a fallback: existing sessions stay
    /// valid and are re-signed with the new key (by the first request that uses its
    /// session: a handler that never touches it loads nothing and sends no cookie);
    /// remove the fallback once the old sessions have expired. In the string form the
    /// secrets are separated by commas.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default()
    ///     .with_secret_key("new secret")
    ///     .with_secret_key_fallbacks(["old secret", "older secret"]);
    /// assert_eq!(config.secret_key_fallbacks().len(), 2);
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_secret_key_fallbacks(
        mut self,
        secrets: impl IntoIterator<Item = impl Into<Secret>>,
    ) -> Self {
        self.secret_key_fallbacks = secrets.into_iter().map(Into::into).collect();
        self
    }

    // ---- Stores ----

    /// Prefix of every key written to the store (`SESSION_KEY_PREFIX`).
    ///
    /// Defaults to `session:`, as in Flask-Session, which keeps session keys apart from
    /// other data in a shared backend.
    #[must_use]
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// Sets the prefix of every key written to the store (`SESSION_KEY_PREFIX`).
    ///
    /// Defaults to `session:`, as in Flask-Session: session keys stay apart from other
    /// data in a shared Redis or Memcached, and are easy to find. Give each application
    /// its own prefix when several share one backend, so they never read each other's
    /// sessions.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_key_prefix("shop:");
    /// assert_eq!(config.key_prefix(), "shop:");
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Directory of the `filesystem` store (`SESSION_FILE_DIR`).
    ///
    /// Defaults to `flask_sessions`, relative to the working directory, as in
    /// Flask-Session, so a migrated application finds its directory where it was.
    #[must_use]
    pub fn file_dir(&self) -> &Path {
        &self.file_dir
    }

    /// Sets the directory of the `filesystem` store (`SESSION_FILE_DIR`).
    ///
    /// Defaults to `flask_sessions`, resolved against the working directory, as in
    /// Flask-Session, so a migrated application keeps its directory and a first run needs
    /// no setup. In production prefer an absolute path outside anything the web server
    /// serves.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::path::Path;
    ///
    /// let config = satchel::SessionConfig::default().with_file_dir("/var/lib/app/sessions");
    /// assert_eq!(config.file_dir(), Path::new("/var/lib/app/sessions"));
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_file_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.file_dir = dir.into();
        self
    }

    /// Most sessions the `filesystem` store keeps before it removes some
    /// (`SESSION_FILE_THRESHOLD`).
    ///
    /// Defaults to 500, as in Flask-Session, which bounds the disk space sessions take.
    #[must_use]
    pub fn file_threshold(&self) -> usize {
        self.file_threshold
    }

    /// Sets how many sessions the `filesystem` store keeps before it removes some
    /// (`SESSION_FILE_THRESHOLD`).
    ///
    /// Defaults to 500, as in Flask-Session: a bound means a flood of new sessions cannot
    /// fill the disk. Raise it for sites with more concurrent users. It must be positive.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_file_threshold(10_000);
    /// assert_eq!(config.file_threshold(), 10_000);
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_file_threshold(mut self, threshold: usize) -> Self {
        self.file_threshold = threshold;
        self
    }

    /// Permissions of the `filesystem` store's files (`SESSION_FILE_MODE`).
    ///
    /// Defaults to `0o600`: only the owning user can read or write session data.
    #[must_use]
    pub fn file_mode(&self) -> u32 {
        self.file_mode
    }

    /// Sets the permissions of the `filesystem` store's files (`SESSION_FILE_MODE`).
    ///
    /// Defaults to `0o600`, as in Flask-Session: session files hold user data, so only the
    /// user running the application may read or write them. The mode must keep the
    /// owner's read and write bits.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_file_mode(0o640);
    /// assert_eq!(config.file_mode(), 0o640);
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_file_mode(mut self, mode: u32) -> Self {
        self.file_mode = mode;
        self
    }

    /// Most sessions the `memory` store keeps (`SESSION_MEMORY_CAPACITY`).
    ///
    /// Defaults to 100 000, which bounds the memory sessions take under any load.
    #[must_use]
    pub fn memory_capacity(&self) -> usize {
        self.memory_capacity
    }

    /// Sets how many sessions the `memory` store keeps (`SESSION_MEMORY_CAPACITY`).
    ///
    /// Defaults to 100 000: enough for a busy single process, while a flood of new
    /// sessions (each request without a cookie can create one) cannot exhaust memory;
    /// beyond the capacity the sessions closest to expiry are dropped first. It must be
    /// positive.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_memory_capacity(1_000);
    /// assert_eq!(config.memory_capacity(), 1_000);
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_memory_capacity(mut self, capacity: usize) -> Self {
        self.memory_capacity = capacity;
        self
    }

    /// URL of the Redis server (`SESSION_REDIS`), if set.
    ///
    /// Defaults to `None`: the `redis` store then connects to `redis://127.0.0.1:6379`,
    /// as Flask-Session does, so nothing outside the machine is contacted by default.
    #[must_use]
    pub fn redis_url(&self) -> Option<&str> {
        self.redis_url.as_deref()
    }

    /// Sets the URL of the Redis server (`SESSION_REDIS`), e.g. `redis://127.0.0.1:6379`.
    ///
    /// Defaults to unset, meaning the local server, as in Flask-Session: nothing outside
    /// the machine is contacted unless configured. A password in the URL is masked in
    /// `Debug` output and [`entries`](Self::entries).
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_redis_url("redis://cache:6379/1");
    /// assert_eq!(config.redis_url(), Some("redis://cache:6379/1"));
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_redis_url(mut self, url: impl Into<String>) -> Self {
        self.redis_url = Some(url.into());
        self
    }

    /// Memcached servers (`SESSION_MEMCACHED`), if set.
    ///
    /// Defaults to `None`: the `memcached` store then uses `127.0.0.1:11211`, as
    /// Flask-Session does, so nothing outside the machine is contacted by default.
    #[must_use]
    pub fn memcached_servers(&self) -> Option<&str> {
        self.memcached_servers.as_deref()
    }

    /// Sets the Memcached servers (`SESSION_MEMCACHED`), e.g. `127.0.0.1:11211`.
    ///
    /// Defaults to unset, meaning the local server, as in Flask-Session: nothing outside
    /// the machine is contacted unless configured.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_memcached_servers("cache:11211");
    /// assert_eq!(config.memcached_servers(), Some("cache:11211"));
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_memcached_servers(mut self, servers: impl Into<String>) -> Self {
        self.memcached_servers = Some(servers.into());
        self
    }

    /// MongoDB connection URI (`SESSION_MONGODB`), if set.
    ///
    /// Defaults to `None`: the `mongodb` store then connects to
    /// `mongodb://127.0.0.1:27017`, as Flask-Session does, so nothing outside the machine
    /// is contacted by default.
    #[must_use]
    pub fn mongodb_uri(&self) -> Option<&str> {
        self.mongodb_uri.as_deref()
    }

    /// Sets the MongoDB connection URI (`SESSION_MONGODB`).
    ///
    /// Defaults to unset, meaning the local server, as in Flask-Session: nothing outside
    /// the machine is contacted unless configured. A password in the URI is masked in
    /// `Debug` output and [`entries`](Self::entries).
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_mongodb_uri("mongodb://db:27017");
    /// assert_eq!(config.mongodb_uri(), Some("mongodb://db:27017"));
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_mongodb_uri(mut self, uri: impl Into<String>) -> Self {
        self.mongodb_uri = Some(uri.into());
        self
    }

    /// MongoDB database (`SESSION_MONGODB_DB`).
    ///
    /// Defaults to `flask_session`, Flask-Session's name, so a migrated application finds
    /// its sessions; a database of its own keeps them apart from application data.
    #[must_use]
    pub fn mongodb_db(&self) -> &str {
        &self.mongodb_db
    }

    /// Sets the MongoDB database (`SESSION_MONGODB_DB`).
    ///
    /// Defaults to `flask_session`, Flask-Session's name, so a migrated application finds
    /// its existing sessions, and sessions stay apart from application data.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_mongodb_db("app");
    /// assert_eq!(config.mongodb_db(), "app");
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_mongodb_db(mut self, db: impl Into<String>) -> Self {
        self.mongodb_db = db.into();
        self
    }

    /// MongoDB collection (`SESSION_MONGODB_COLLECT`).
    ///
    /// Defaults to `sessions`, Flask-Session's name, so a migrated application finds its
    /// sessions.
    #[must_use]
    pub fn mongodb_collection(&self) -> &str {
        &self.mongodb_collection
    }

    /// Sets the MongoDB collection (`SESSION_MONGODB_COLLECT`).
    ///
    /// Defaults to `sessions`, Flask-Session's name, so a migrated application finds its
    /// existing sessions.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_mongodb_collection("web_sessions");
    /// assert_eq!(config.mongodb_collection(), "web_sessions");
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_mongodb_collection(mut self, collection: impl Into<String>) -> Self {
        self.mongodb_collection = collection.into();
        self
    }

    /// Whether the SQL store creates its table and expiry index when it starts
    /// (`SESSION_SQL_AUTO_MIGRATE`). Default `true`: the seed's hook registers the table
    /// for the application; turn it off where the schema is managed elsewhere and run
    /// `satchel migrate` instead.
    #[must_use]
    pub fn sql_auto_migrate(&self) -> bool {
        self.sql_auto_migrate
    }

    /// Sets `SESSION_SQL_AUTO_MIGRATE`.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_sql_auto_migrate(false);
    /// assert!(!config.sql_auto_migrate());
    /// ```
    pub fn with_sql_auto_migrate(mut self, migrate: bool) -> Self {
        self.sql_auto_migrate = migrate;
        self
    }

    /// How often a background task deletes expired rows from the SQL table
    /// (`SESSION_SQL_CLEANUP_INTERVAL`). Default unset: no task; expired rows are never
    /// served (expiry is checked on load) and `satchel cleanup` removes them.
    #[must_use]
    pub fn sql_cleanup_interval(&self) -> Option<Duration> {
        self.sql_cleanup_interval
    }

    /// Sets `SESSION_SQL_CLEANUP_INTERVAL`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = satchel::SessionConfig::default()
    ///     .with_sql_cleanup_interval(Some(Duration::from_secs(300)));
    /// assert_eq!(config.sql_cleanup_interval(), Some(Duration::from_secs(300)));
    /// ```
    pub fn with_sql_cleanup_interval(mut self, interval: Option<Duration>) -> Self {
        self.sql_cleanup_interval = interval;
        self
    }

    /// How long a networked store may take to connect or answer before the request fails
    /// (`SESSION_STORE_TIMEOUT`). Default 2 seconds: a store that is down gives a quick
    /// `500` instead of requests piling up behind it.
    #[must_use]
    pub fn store_timeout(&self) -> Duration {
        self.store_timeout
    }

    /// Sets `SESSION_STORE_TIMEOUT`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = satchel::SessionConfig::default().with_store_timeout(Duration::from_secs(5));
    /// assert_eq!(config.store_timeout(), Duration::from_secs(5));
    /// ```
    pub fn with_store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = timeout;
        self
    }

    /// SQL database URL (`SESSION_SQL_URL`), if set.
    ///
    /// Defaults to `None`: there is no sensible database to assume, so the SQL store
    /// requires it rather than guessing.
    #[must_use]
    pub fn sql_url(&self) -> Option<&str> {
        self.sql_url.as_deref()
    }

    /// Sets the SQL database URL (`SESSION_SQL_URL`), e.g. `sqlite://sessions.db`.
    ///
    /// Defaults to unset: no database can be assumed, so the SQL store asks for one
    /// instead of creating files or connecting somewhere by surprise. A password in the
    /// URL is masked in `Debug` output and [`entries`](Self::entries).
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_sql_url("sqlite://sessions.db");
    /// assert_eq!(config.sql_url(), Some("sqlite://sessions.db"));
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_sql_url(mut self, url: impl Into<String>) -> Self {
        self.sql_url = Some(url.into());
        self
    }

    /// SQL table (`SESSION_SQLALCHEMY_TABLE`).
    ///
    /// Defaults to `flask_sessions`, Flask-Session's name, so a migrated application finds
    /// its table.
    #[must_use]
    pub fn sql_table(&self) -> &str {
        &self.sql_table
    }

    /// Sets the SQL table (`SESSION_SQLALCHEMY_TABLE`).
    ///
    /// Defaults to `flask_sessions`, Flask-Session's name, so a migrated application finds
    /// its existing table, and the name says what the table holds.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_sql_table("web_sessions");
    /// assert_eq!(config.sql_table(), "web_sessions");
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_sql_table(mut self, table: impl Into<String>) -> Self {
        self.sql_table = table.into();
        self
    }

    /// The table mapping (`SESSION_SQLALCHEMY_MODEL`), as written, if set: where an
    /// existing table keeps the id, data and expiry, as comma-separated `field=name`
    /// pairs. The SQL store parses and validates it when it opens.
    ///
    /// Defaults to `None`: the built-in layout, in the table SESSION_SQLALCHEMY_TABLE
    /// names.
    #[must_use]
    pub fn sql_model(&self) -> Option<&str> {
        self.sql_model.as_deref()
    }

    /// Sets the table mapping (`SESSION_SQLALCHEMY_MODEL`): the seed's custom session
    /// model becomes the description of an existing table, as comma-separated
    /// `field=name` pairs (fields `schema`, `table`, `id`, `data`, `expiry`, `version`,
    /// `index`; each optional).
    ///
    /// Defaults to unset: the built-in layout, whose names are safe and known.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default()
    ///     .with_sql_model("table=web_sessions,id=session_id,expiry=expires_at");
    /// assert_eq!(config.sql_model(), Some("table=web_sessions,id=session_id,expiry=expires_at"));
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_sql_model(mut self, model: impl Into<String>) -> Self {
        self.sql_model = Some(model.into());
        self
    }
}

/// Whether a value given for `key` must never be shown.
fn is_secret(key: &str) -> bool {
    matches!(key, "SECRET_KEY" | "SECRET_KEY_FALLBACKS")
}

/// The value as shown in an error message: `<redacted>` for secrets, URL passwords masked.
fn describe(key: &str, raw: &Raw<'_>) -> String {
    if is_secret(key) {
        return REDACTED.to_owned();
    }
    match raw {
        Raw::Text(text) => redact_url(text).into_owned(),
        Raw::Integer(number) => number.to_string(),
        Raw::Bool(flag) => flag.to_string(),
        Raw::List(items) => format!("{items:?}"),
        Raw::Other(description) => description.clone(),
    }
}

/// An [`ConfigError::Invalid`] for a raw value of `key`.
fn invalid(key: &str, raw: &Raw<'_>, expected: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        value: describe(key, raw),
        expected: expected.to_owned(),
    }
}

/// An [`ConfigError::Invalid`] for a value already in display form (never a secret).
fn invalid_value(key: &str, value: &str, expected: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        value: value.to_owned(),
        expected: expected.to_owned(),
    }
}

/// A string value, taken as given.
fn text<'a>(key: &str, raw: &Raw<'a>) -> Result<&'a str, ConfigError> {
    match raw {
        Raw::Text(text) => Ok(text),
        _ => Err(invalid(key, raw, EXPECTED_STRING)),
    }
}

/// A string value of an optional key; empty means unset.
fn optional_text(key: &str, raw: &Raw<'_>) -> Result<Option<String>, ConfigError> {
    let value = text(key, raw)?;
    Ok((!value.is_empty()).then(|| value.to_owned()))
}

/// A boolean: a TOML boolean, the integers 0 and 1, or one of the words of
/// [`EXPECTED_BOOL`].
fn boolean(key: &str, raw: &Raw<'_>) -> Result<bool, ConfigError> {
    match raw {
        Raw::Bool(flag) => Ok(*flag),
        Raw::Integer(1) => Ok(true),
        Raw::Integer(0) => Ok(false),
        Raw::Text(text) => parse_bool(text).ok_or_else(|| invalid(key, raw, EXPECTED_BOOL)),
        _ => Err(invalid(key, raw, EXPECTED_BOOL)),
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    const TRUE: [&str; 4] = ["true", "1", "yes", "on"];
    const FALSE: [&str; 4] = ["false", "0", "no", "off"];
    let text = text.trim();
    if TRUE.iter().any(|word| text.eq_ignore_ascii_case(word)) {
        Some(true)
    } else if FALSE.iter().any(|word| text.eq_ignore_ascii_case(word)) {
        Some(false)
    } else {
        None
    }
}

/// A positive count (`SESSION_FILE_THRESHOLD`, `SESSION_MEMORY_CAPACITY`).
fn count(key: &str, raw: &Raw<'_>) -> Result<usize, ConfigError> {
    let number = match raw {
        Raw::Integer(number) => usize::try_from(*number).ok(),
        Raw::Text(text) => {
            let text = text.trim();
            if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) {
                text.parse::<usize>().ok()
            } else {
                None
            }
        }
        _ => None,
    };
    number
        .filter(|&number| number > 0)
        .ok_or_else(|| invalid(key, raw, EXPECTED_COUNT))
}

/// `PERMANENT_SESSION_LIFETIME`: seconds as a TOML integer, or text for
/// [`parse_lifetime`].
fn lifetime(key: &str, raw: &Raw<'_>) -> Result<Duration, ConfigError> {
    let lifetime = match raw {
        Raw::Integer(seconds) => u64::try_from(*seconds).ok().map(Duration::from_secs),
        Raw::Text(text) => parse_lifetime(text),
        _ => None,
    };
    lifetime
        .filter(|lifetime| (Duration::from_secs(1)..=MAX_LIFETIME).contains(lifetime))
        .ok_or_else(|| invalid(key, raw, EXPECTED_LIFETIME))
}

/// Parses whole seconds (`2678400`) or number+unit parts (`31d`, `1d12h`, `2w`); units are
/// w, d, h, m and s in any case. Gives `None` for anything else, including zero.
fn parse_lifetime(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.bytes().all(|byte| byte.is_ascii_digit()) {
        let seconds = text.parse::<u64>().ok()?;
        return (seconds > 0).then(|| Duration::from_secs(seconds));
    }
    let mut total: u64 = 0;
    let mut number: Option<u64> = None;
    for c in text.chars() {
        if let Some(digit) = c.to_digit(10) {
            let so_far = number.unwrap_or(0);
            number = Some(so_far.checked_mul(10)?.checked_add(u64::from(digit))?);
            continue;
        }
        let unit: u64 = match c.to_ascii_lowercase() {
            'w' => 7 * 24 * 60 * 60,
            'd' => 24 * 60 * 60,
            'h' => 60 * 60,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        // A unit must follow a number: "d" or "1dd" is rejected here.
        total = total.checked_add(number.take()?.checked_mul(unit)?)?;
    }
    // Trailing digits without a unit, as in "1d5", are ambiguous.
    if number.is_some() || total == 0 {
        return None;
    }
    Some(Duration::from_secs(total))
}

/// Formats a lifetime the way [`parse_lifetime`] reads it (`31d`, `1d12h`, `90s` → `1m30s`).
fn format_lifetime(lifetime: Duration) -> String {
    if lifetime.subsec_nanos() != 0 {
        return format!("{lifetime:?}");
    }
    let mut seconds = lifetime.as_secs();
    if seconds == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, name) in [(24 * 60 * 60, 'd'), (60 * 60, 'h'), (60, 'm'), (1, 's')] {
        if seconds >= unit {
            out.push_str(&(seconds / unit).to_string());
            out.push(name);
            seconds %= unit;
        }
    }
    out
}

/// `SESSION_FILE_MODE`: a TOML integer as its value, or octal text (`600`, `0600`,
/// `0o600`).
fn file_mode(key: &str, raw: &Raw<'_>) -> Result<u32, ConfigError> {
    let mode = match raw {
        Raw::Integer(mode) => u32::try_from(*mode).ok(),
        Raw::Text(text) => parse_octal_mode(text),
        _ => None,
    };
    mode.filter(|&mode| mode <= 0o777).ok_or_else(|| match raw {
        // A TOML integer is read as a number: 600 is decimal, not the mode 0o600.
        Raw::Integer(_) => invalid(key, raw, EXPECTED_FILE_MODE_TOML),
        _ => invalid(key, raw, EXPECTED_FILE_MODE),
    })
}

fn parse_octal_mode(text: &str) -> Option<u32> {
    let text = text.trim();
    let digits = text
        .strip_prefix("0o")
        .or_else(|| text.strip_prefix("0O"))
        .unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|byte| matches!(byte, b'0'..=b'7')) {
        return None;
    }
    u32::from_str_radix(digits, 8).ok()
}

/// `SECRET_KEY_FALLBACKS`: comma-separated text or a TOML array of strings. Surrounding
/// whitespace of each secret is removed; an empty text means no fallbacks.
fn secrets(key: &str, raw: &Raw<'_>) -> Result<Vec<Secret>, ConfigError> {
    let parts: Vec<&str> = match raw {
        Raw::Text(text) if text.trim().is_empty() => return Ok(Vec::new()),
        Raw::Text(text) => text.split(',').map(str::trim).collect(),
        Raw::List(items) => items.iter().map(|item| item.trim()).collect(),
        _ => return Err(invalid(key, raw, EXPECTED_SECRETS)),
    };
    if parts.iter().any(|part| part.is_empty()) {
        return Err(invalid(key, raw, EXPECTED_SECRETS));
    }
    Ok(parts.into_iter().map(Secret::from).collect())
}

/// Whether `byte` may appear in an RFC 6265 cookie name (an RFC 2616 token).
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&byte)
}

/// Masks the password of a URL's user information: `redis://user:pw@host` becomes
/// `redis://user:<redacted>@host`. Text without a password is returned unchanged.
fn redact_url(url: &str) -> Cow<'_, str> {
    let Some(scheme_end) = url.find("://") else {
        return Cow::Borrowed(url);
    };
    let rest_start = scheme_end + 3;
    let rest = &url[rest_start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let Some(at) = authority.rfind('@') else {
        return Cow::Borrowed(url);
    };
    let Some(colon) = authority[..at].find(':') else {
        return Cow::Borrowed(url);
    };
    Cow::Owned(format!(
        "{}{}{REDACTED}{}",
        &url[..rest_start],
        &authority[..=colon],
        &url[rest_start + at..],
    ))
}

/// A TOML parse error as one line: the parser's message and where, without quoting the
/// file (which may hold a secret).
fn toml_error_message(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim_end();
    let Some(span) = error.span() else {
        return message.to_owned();
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |start| start.chars().count())
        + 1;
    format!("{message} at line {line}, column {column}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const SECRET: &str = "very-secret-value-1234";

    /// An environment made of `pairs`, for [`SessionConfig::overlay_env`].
    fn env(pairs: &[(&str, &str)]) -> impl FnMut(&str) -> Option<OsString> + use<> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), OsString::from(value)))
            .collect();
        move |key| map.get(key).cloned()
    }

    fn invalid_key(error: &ConfigError) -> &str {
        match error {
            ConfigError::Invalid { key, .. } => key,
            other => panic!("expected an Invalid error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_match_the_seed() {
        let config = SessionConfig::default();
        assert_eq!(config.session_type(), SessionType::Null);
        assert_eq!(config.cookie_name(), "session");
        assert_eq!(config.cookie_domain(), None);
        assert_eq!(config.cookie_path(), "/");
        assert!(config.http_only());
        assert!(!config.secure());
        assert_eq!(config.same_site(), None);
        assert_eq!(config.lifetime(), Duration::from_secs(31 * 24 * 60 * 60));
        assert!(config.refresh_each_request());
        assert!(config.permanent());
        assert!(!config.use_signer());
        assert!(config.secret_key().is_none());
        assert!(config.secret_key_fallbacks().is_empty());
        assert_eq!(config.key_prefix(), "session:");
        assert_eq!(config.file_dir(), Path::new("flask_sessions"));
        assert_eq!(config.file_threshold(), 500);
        assert_eq!(config.file_mode(), 384);
        assert_eq!(config.memory_capacity(), 100_000);
        assert_eq!(config.redis_url(), None);
        assert_eq!(config.memcached_servers(), None);
        assert_eq!(config.mongodb_uri(), None);
        assert_eq!(config.mongodb_db(), "flask_session");
        assert_eq!(config.mongodb_collection(), "sessions");
        assert_eq!(config.sql_url(), None);
        assert_eq!(config.sql_table(), "flask_sessions");
        assert_eq!(config.sql_model(), None);
    }

    #[test]
    fn default_config_is_valid() {
        SessionConfig::default().validate().unwrap();
    }

    #[test]
    fn every_key_parses_from_its_string_form() {
        let pairs = [
            ("SESSION_TYPE", "redis"),
            ("SESSION_COOKIE_NAME", "sid"),
            ("SESSION_COOKIE_DOMAIN", "example.com"),
            ("SESSION_COOKIE_PATH", "/app"),
            ("SESSION_COOKIE_HTTPONLY", "false"),
            ("SESSION_COOKIE_SECURE", "true"),
            ("SESSION_COOKIE_SAMESITE", "strict"),
            ("PERMANENT_SESSION_LIFETIME", "3600"),
            ("SESSION_REFRESH_EACH_REQUEST", "no"),
            ("SESSION_PERMANENT", "off"),
            ("SESSION_USE_SIGNER", "1"),
            ("SECRET_KEY", SECRET),
            ("SECRET_KEY_FALLBACKS", "old-one, older-one"),
            ("SESSION_KEY_PREFIX", "shop:"),
            ("SESSION_FILE_DIR", "/tmp/sessions"),
            ("SESSION_FILE_THRESHOLD", "42"),
            ("SESSION_FILE_MODE", "0640"),
            ("SESSION_MEMORY_CAPACITY", "7"),
            ("SESSION_REDIS", "redis://cache:6379/2"),
            ("SESSION_MEMCACHED", "cache:11211"),
            ("SESSION_MONGODB", "mongodb://db:27017"),
            ("SESSION_MONGODB_DB", "app"),
            ("SESSION_MONGODB_COLLECT", "web"),
            ("SESSION_SQL_URL", "sqlite://sessions.db"),
            ("SESSION_SQLALCHEMY_TABLE", "web_sessions"),
            ("SESSION_SQLALCHEMY_MODEL", "AppSession"),
            ("SESSION_SQL_AUTO_MIGRATE", "no"),
            ("SESSION_SQL_CLEANUP_INTERVAL", "5m"),
            ("SESSION_STORE_TIMEOUT", "3s"),
        ];
        let given: Vec<&str> = pairs.iter().map(|(key, _)| *key).collect();
        assert_eq!(given, KEYS, "the test covers every key");

        let mut config = SessionConfig::default();
        for (key, value) in pairs {
            config = config.apply(key, value).unwrap();
        }
        assert_eq!(config.session_type(), SessionType::Redis);
        assert_eq!(config.cookie_name(), "sid");
        assert_eq!(config.cookie_domain(), Some("example.com"));
        assert_eq!(config.cookie_path(), "/app");
        assert!(!config.http_only());
        assert!(config.secure());
        assert_eq!(config.same_site(), Some(SameSite::Strict));
        assert_eq!(config.lifetime(), Duration::from_secs(3600));
        assert!(!config.refresh_each_request());
        assert!(!config.permanent());
        assert!(config.use_signer());
        assert_eq!(config.secret_key().unwrap().as_bytes(), SECRET.as_bytes());
        assert_eq!(
            config.secret_key_fallbacks(),
            [Secret::from("old-one"), Secret::from("older-one")]
        );
        assert_eq!(config.key_prefix(), "shop:");
        assert_eq!(config.file_dir(), Path::new("/tmp/sessions"));
        assert_eq!(config.file_threshold(), 42);
        assert_eq!(config.file_mode(), 0o640);
        assert_eq!(config.memory_capacity(), 7);
        assert_eq!(config.redis_url(), Some("redis://cache:6379/2"));
        assert_eq!(config.memcached_servers(), Some("cache:11211"));
        assert_eq!(config.mongodb_uri(), Some("mongodb://db:27017"));
        assert_eq!(config.mongodb_db(), "app");
        assert_eq!(config.mongodb_collection(), "web");
        assert_eq!(config.sql_url(), Some("sqlite://sessions.db"));
        assert_eq!(config.sql_table(), "web_sessions");
        assert_eq!(config.sql_model(), Some("AppSession"));
    }

    #[test]
    fn entries_list_every_key_in_order() {
        let config = SessionConfig::default();
        let keys: Vec<&str> = config.entries().iter().map(|(key, _)| *key).collect();
        assert_eq!(keys, KEYS);
    }

    #[test]
    fn entries_show_effective_values() {
        let entries: HashMap<&str, String> =
            SessionConfig::default().entries().into_iter().collect();
        assert_eq!(entries["SESSION_TYPE"], "null");
        assert_eq!(entries["SESSION_COOKIE_PATH"], "/");
        assert_eq!(entries["SESSION_COOKIE_DOMAIN"], "<unset>");
        assert_eq!(entries["SESSION_COOKIE_SAMESITE"], "<unset>");
        assert_eq!(entries["PERMANENT_SESSION_LIFETIME"], "31d");
        assert_eq!(entries["SESSION_FILE_MODE"], "0o600");
        assert_eq!(entries["SECRET_KEY"], "<unset>");
        assert_eq!(entries["SECRET_KEY_FALLBACKS"], "<0 keys>");
        // Unset servers show where the store will connect.
        assert_eq!(entries["SESSION_REDIS"], "<unset: redis://127.0.0.1:6379>");
        assert_eq!(entries["SESSION_MEMCACHED"], "<unset: 127.0.0.1:11211>");
        assert_eq!(
            entries["SESSION_MONGODB"],
            "<unset: mongodb://127.0.0.1:27017>"
        );
    }

    #[test]
    fn the_seeds_session_sqlalchemy_names_the_sql_database() {
        let alias_only = SessionConfig::default()
            .overlay_env(env(&[("SESSION_SQLALCHEMY", "sqlite://a.db")]))
            .unwrap();
        assert_eq!(alias_only.sql_url(), Some("sqlite://a.db"));
        let both = SessionConfig::default()
            .overlay_env(env(&[
                ("SESSION_SQLALCHEMY", "sqlite://a.db"),
                ("SESSION_SQL_URL", "sqlite://b.db"),
            ]))
            .unwrap();
        assert_eq!(both.sql_url(), Some("sqlite://b.db"), "the key itself wins");

        let file = SessionConfig::from_toml_str("SESSION_SQLALCHEMY = \"sqlite://a.db\"").unwrap();
        assert_eq!(file.sql_url(), Some("sqlite://a.db"));
        let file = SessionConfig::from_toml_str(
            "SESSION_SQL_URL = \"sqlite://b.db\"\nSESSION_SQLALCHEMY = \"sqlite://a.db\"",
        )
        .unwrap();
        assert_eq!(file.sql_url(), Some("sqlite://b.db"));
    }

    #[test]
    fn entries_values_parse_back_to_the_same_config() {
        let config = SessionConfig::default()
            .with_lifetime(Duration::from_secs(90_061))
            .with_file_mode(0o640)
            .with_same_site(Some(SameSite::Strict));
        let mut again = SessionConfig::default();
        for (key, value) in config.entries() {
            if value.starts_with('<') {
                continue;
            }
            again = again.apply(key, &value).unwrap();
        }
        assert_eq!(again.lifetime(), config.lifetime());
        assert_eq!(again.file_mode(), 0o640);
        assert_eq!(again.same_site(), Some(SameSite::Strict));
    }

    #[test]
    fn boolean_values_accept_yes_and_no() {
        for (text, expected) in [
            ("true", true),
            ("TRUE", true),
            ("1", true),
            ("yes", true),
            ("Yes", true),
            ("on", true),
            ("ON", true),
            ("false", false),
            ("False", false),
            ("0", false),
            ("no", false),
            ("NO", false),
            ("off", false),
            (" off ", false),
        ] {
            let config = SessionConfig::default()
                .apply("SESSION_COOKIE_SECURE", text)
                .unwrap();
            assert_eq!(config.secure(), expected, "{text:?}");
        }
    }

    #[test]
    fn boolean_rejects_other_words_naming_the_key() {
        for text in ["maybe", "", "2", "t", "yess"] {
            let error = SessionConfig::default()
                .apply("SESSION_PERMANENT", text)
                .unwrap_err();
            assert_eq!(invalid_key(&error), "SESSION_PERMANENT");
            let message = error.to_string();
            assert!(message.contains("SESSION_PERMANENT"), "{message}");
            assert!(message.contains("yes, no"), "{message}");
        }
    }

    #[test]
    fn lifetime_accepts_seconds_and_unit_durations() {
        let cases = [
            ("2678400", 2_678_400),
            ("31d", 31 * 86_400),
            ("12h", 12 * 3_600),
            ("90m", 90 * 60),
            ("45s", 45),
            ("1d12h", 86_400 + 12 * 3_600),
            ("2w", 14 * 86_400),
            ("1H30M", 5_400),
            (" 10m ", 600),
        ];
        for (text, seconds) in cases {
            let config = SessionConfig::default()
                .apply("PERMANENT_SESSION_LIFETIME", text)
                .unwrap();
            assert_eq!(config.lifetime(), Duration::from_secs(seconds), "{text:?}");
        }
    }

    #[test]
    fn lifetime_rejects_zero_negative_unknown_units_and_empty() {
        for text in [
            "0", "-5", "5x", "", "0d", "d", "1d5", "1.5h", "1d 12h", "+5", "200000w",
        ] {
            let error = SessionConfig::default()
                .apply("PERMANENT_SESSION_LIFETIME", text)
                .unwrap_err();
            assert_eq!(
                invalid_key(&error),
                "PERMANENT_SESSION_LIFETIME",
                "{text:?}"
            );
            assert!(error.to_string().contains("31d"), "{error}");
        }
    }

    #[test]
    fn file_mode_accepts_plain_zero_prefixed_and_0o_octal() {
        for text in ["600", "0600", "0o600", "0O600"] {
            let config = SessionConfig::default()
                .apply("SESSION_FILE_MODE", text)
                .unwrap();
            assert_eq!(config.file_mode(), 0o600, "{text:?}");
        }
        let config = SessionConfig::default()
            .apply("SESSION_FILE_MODE", "777")
            .unwrap();
        assert_eq!(config.file_mode(), 0o777);
    }

    #[test]
    fn file_mode_rejects_non_octal_digits_and_values_above_0o777() {
        for text in ["800", "0o1000", "", "rw-------", "0x180", "-600", "1000"] {
            let error = SessionConfig::default()
                .apply("SESSION_FILE_MODE", text)
                .unwrap_err();
            assert_eq!(invalid_key(&error), "SESSION_FILE_MODE", "{text:?}");
        }
    }

    #[test]
    fn toml_integer_file_mode_is_taken_as_its_value() {
        let config = SessionConfig::from_toml_str("SESSION_FILE_MODE = 0o600").unwrap();
        assert_eq!(config.file_mode(), 384);
        let config = SessionConfig::from_toml_str("SESSION_FILE_MODE = 416").unwrap();
        assert_eq!(config.file_mode(), 0o640);
        let error = SessionConfig::from_toml_str("SESSION_FILE_MODE = 600").unwrap_err();
        assert_eq!(invalid_key(&error), "SESSION_FILE_MODE");
        let message = error.to_string();
        assert!(
            message.contains("0o600") && message.contains("\"600\""),
            "the message says how to write it in TOML: {message}"
        );
    }

    #[test]
    fn same_site_parses_case_insensitively() {
        assert_eq!("Lax".parse::<SameSite>().unwrap(), SameSite::Lax);
        assert_eq!("STRICT".parse::<SameSite>().unwrap(), SameSite::Strict);
        assert_eq!("none".parse::<SameSite>().unwrap(), SameSite::None);
        assert!("".parse::<SameSite>().is_err());
        assert!("relaxed".parse::<SameSite>().is_err());
        for same_site in [SameSite::Lax, SameSite::Strict, SameSite::None] {
            assert_eq!(same_site.as_str().parse::<SameSite>().unwrap(), same_site);
        }
    }

    #[test]
    fn empty_same_site_value_leaves_it_unset() {
        let config = SessionConfig::default()
            .with_same_site(Some(SameSite::Lax))
            .apply("SESSION_COOKIE_SAMESITE", "")
            .unwrap();
        assert_eq!(config.same_site(), None);
        let error = SessionConfig::default()
            .apply("SESSION_COOKIE_SAMESITE", "sometimes")
            .unwrap_err();
        assert_eq!(invalid_key(&error), "SESSION_COOKIE_SAMESITE");
    }

    #[test]
    fn session_type_parses_seed_names_and_the_sql_alias() {
        let cases = [
            ("null", SessionType::Null),
            ("memory", SessionType::Memory),
            ("filesystem", SessionType::Filesystem),
            ("redis", SessionType::Redis),
            ("memcached", SessionType::Memcached),
            ("mongodb", SessionType::MongoDb),
            ("sqlalchemy", SessionType::Sql),
            ("sql", SessionType::Sql),
            ("MongoDB", SessionType::MongoDb),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<SessionType>().unwrap(), expected, "{text:?}");
        }
        let error = "cookie".parse::<SessionType>().unwrap_err();
        assert_eq!(invalid_key(&error), "SESSION_TYPE");
    }

    #[test]
    fn session_type_display_gives_seed_names_that_parse_back() {
        let names: Vec<String> = [
            SessionType::Null,
            SessionType::Memory,
            SessionType::Filesystem,
            SessionType::Redis,
            SessionType::Memcached,
            SessionType::MongoDb,
            SessionType::Sql,
        ]
        .iter()
        .map(|kind| {
            assert_eq!(kind.to_string().parse::<SessionType>().unwrap(), *kind);
            kind.to_string()
        })
        .collect();
        assert_eq!(
            names,
            [
                "null",
                "memory",
                "filesystem",
                "redis",
                "memcached",
                "mongodb",
                "sqlalchemy"
            ]
        );
    }

    #[test]
    fn counts_must_be_positive_whole_numbers() {
        for key in ["SESSION_FILE_THRESHOLD", "SESSION_MEMORY_CAPACITY"] {
            for text in ["0", "-1", "1.5", "", "ten", "1e3"] {
                let error = SessionConfig::default().apply(key, text).unwrap_err();
                assert_eq!(invalid_key(&error), key, "{text:?}");
            }
        }
    }

    #[test]
    fn fallbacks_are_split_on_commas() {
        let config = SessionConfig::default()
            .apply("SECRET_KEY_FALLBACKS", "a, b ,c")
            .unwrap();
        assert_eq!(
            config.secret_key_fallbacks(),
            [Secret::from("a"), Secret::from("b"), Secret::from("c")]
        );
        let config = config.apply("SECRET_KEY_FALLBACKS", "").unwrap();
        assert!(config.secret_key_fallbacks().is_empty());
        let error = SessionConfig::default()
            .apply("SECRET_KEY_FALLBACKS", "a,,b")
            .unwrap_err();
        assert_eq!(invalid_key(&error), "SECRET_KEY_FALLBACKS");
    }

    #[test]
    fn empty_value_unsets_optional_keys() {
        let config = SessionConfig::default()
            .with_cookie_domain("example.com")
            .with_cookie_path("/app")
            .with_redis_url("redis://cache")
            .apply("SESSION_COOKIE_DOMAIN", "")
            .unwrap()
            .apply("SESSION_COOKIE_PATH", "")
            .unwrap()
            .apply("SESSION_REDIS", "")
            .unwrap();
        assert_eq!(config.cookie_domain(), None);
        assert_eq!(config.cookie_path(), "/");
        assert_eq!(config.redis_url(), None);
    }

    #[test]
    fn apply_rejects_unknown_keys() {
        let error = SessionConfig::default()
            .apply("SESSION_COOKIE_NAEM", "sid")
            .unwrap_err();
        assert!(
            matches!(error, ConfigError::UnknownKey { ref key, .. } if key == "SESSION_COOKIE_NAEM")
        );
    }

    #[test]
    fn signer_without_secret_key_is_a_conflict() {
        let error = SessionConfig::default()
            .with_use_signer(true)
            .validate()
            .unwrap_err();
        assert_eq!(
            error,
            ConfigError::Conflict(
                "SESSION_USE_SIGNER is true but SECRET_KEY is not set: generate one with \
                 `satchel keygen`"
                    .to_owned()
            )
        );
    }

    #[test]
    fn signer_follows_the_signed_feature() {
        let result = SessionConfig::default()
            .with_use_signer(true)
            .with_secret_key(SECRET)
            .validate();
        if cfg!(feature = "signed") {
            result.unwrap();
        } else {
            let message = result.unwrap_err().to_string();
            assert!(message.contains("SESSION_USE_SIGNER"), "{message}");
            assert!(message.contains("signed"), "{message}");
        }
    }

    #[test]
    fn each_contradiction_is_reported_naming_its_key() {
        let base = SessionConfig::default;
        let cases: Vec<(SessionConfig, &str)> = vec![
            (base().with_use_signer(true), "SECRET_KEY"),
            (base().with_secret_key(""), "SECRET_KEY"),
            (
                base().with_secret_key_fallbacks(["ok", ""]),
                "SECRET_KEY_FALLBACKS",
            ),
            (
                base().with_same_site(Some(SameSite::None)),
                "SESSION_COOKIE_SECURE",
            ),
            (
                base().with_lifetime(Duration::ZERO),
                "PERMANENT_SESSION_LIFETIME",
            ),
            (
                base().with_lifetime(Duration::from_millis(500)),
                "PERMANENT_SESSION_LIFETIME",
            ),
            (
                base().with_lifetime(Duration::MAX),
                "PERMANENT_SESSION_LIFETIME",
            ),
            (base().with_file_threshold(0), "SESSION_FILE_THRESHOLD"),
            (base().with_memory_capacity(0), "SESSION_MEMORY_CAPACITY"),
            (base().with_file_mode(0o1600), "SESSION_FILE_MODE"),
            (base().with_file_mode(0o400), "SESSION_FILE_MODE"),
            (base().with_file_mode(0o077), "SESSION_FILE_MODE"),
            (base().with_cookie_name(""), "SESSION_COOKIE_NAME"),
            (base().with_cookie_name("my session"), "SESSION_COOKIE_NAME"),
            (base().with_cookie_name("sid;x"), "SESSION_COOKIE_NAME"),
            (base().with_cookie_name("s=id"), "SESSION_COOKIE_NAME"),
            (base().with_cookie_name("séance"), "SESSION_COOKIE_NAME"),
            (base().with_cookie_path("app"), "SESSION_COOKIE_PATH"),
            (base().with_cookie_path("/app;x"), "SESSION_COOKIE_PATH"),
            (base().with_cookie_path("/app\n"), "SESSION_COOKIE_PATH"),
            (base().with_cookie_domain(""), "SESSION_COOKIE_DOMAIN"),
            (
                base().with_cookie_domain("a.com;x"),
                "SESSION_COOKIE_DOMAIN",
            ),
            (base().with_cookie_domain("a .com"), "SESSION_COOKIE_DOMAIN"),
            (
                base().with_cookie_domain("a.com\r"),
                "SESSION_COOKIE_DOMAIN",
            ),
            (base().with_key_prefix("my app:"), "SESSION_KEY_PREFIX"),
            (base().with_key_prefix("app\u{0}:"), "SESSION_KEY_PREFIX"),
        ];
        for (config, key) in cases {
            let error = config.validate().unwrap_err();
            let message = error.to_string();
            assert!(message.contains(key), "{message:?} should name {key}");
        }
    }

    #[test]
    fn reasonable_settings_pass_validation() {
        SessionConfig::default()
            .with_same_site(Some(SameSite::None))
            .with_secure(true)
            .with_cookie_name("__Host-sid")
            .with_cookie_path("/app/")
            .with_cookie_domain(".example.com")
            .with_key_prefix("")
            .with_file_mode(0o640)
            .with_lifetime(Duration::from_secs(1))
            .validate()
            .unwrap();
    }

    #[test]
    fn unknown_toml_key_is_rejected() {
        let error = SessionConfig::from_toml_str(
            "SESSION_COOKIE_NAME = \"sid\"\nSESSION_COOKIE_SECRUE = true\n",
        )
        .unwrap_err();
        assert_eq!(
            error,
            ConfigError::UnknownKey {
                key: "SESSION_COOKIE_SECRUE".to_owned(),
                source: "<string>".to_owned(),
            }
        );
        let error =
            SessionConfig::from_toml_str("[session]\nSESSION_TYPE = \"memory\"\n").unwrap_err();
        assert!(matches!(error, ConfigError::UnknownKey { ref key, .. } if key == "session"));
    }

    #[test]
    fn toml_accepts_booleans_integers_strings_and_fallback_arrays() {
        let config = SessionConfig::from_toml_str(
            r#"
            SESSION_TYPE = "filesystem"
            SESSION_COOKIE_SECURE = true
            SESSION_COOKIE_HTTPONLY = "yes"
            SESSION_PERMANENT = 0
            PERMANENT_SESSION_LIFETIME = 7200
            SESSION_FILE_THRESHOLD = 1000
            SESSION_MEMORY_CAPACITY = "250"
            SECRET_KEY = "current"
            SECRET_KEY_FALLBACKS = ["old", "older"]
            "#,
        )
        .unwrap();
        assert_eq!(config.session_type(), SessionType::Filesystem);
        assert!(config.secure());
        assert!(config.http_only());
        assert!(!config.permanent());
        assert_eq!(config.lifetime(), Duration::from_secs(7200));
        assert_eq!(config.file_threshold(), 1000);
        assert_eq!(config.memory_capacity(), 250);
        assert_eq!(
            config.secret_key_fallbacks(),
            [Secret::from("old"), Secret::from("older")]
        );
        let config = SessionConfig::from_toml_str(r#"SECRET_KEY_FALLBACKS = "a,b""#).unwrap();
        assert_eq!(config.secret_key_fallbacks().len(), 2);
    }

    #[test]
    fn toml_rejects_values_of_the_wrong_type() {
        let cases = [
            ("SESSION_COOKIE_NAME = 5", "SESSION_COOKIE_NAME"),
            ("SESSION_COOKIE_SECURE = 2", "SESSION_COOKIE_SECURE"),
            ("SESSION_COOKIE_SECURE = 1.0", "SESSION_COOKIE_SECURE"),
            (
                "PERMANENT_SESSION_LIFETIME = 0",
                "PERMANENT_SESSION_LIFETIME",
            ),
            (
                "PERMANENT_SESSION_LIFETIME = -60",
                "PERMANENT_SESSION_LIFETIME",
            ),
            (
                "PERMANENT_SESSION_LIFETIME = 1.5",
                "PERMANENT_SESSION_LIFETIME",
            ),
            ("SESSION_FILE_THRESHOLD = -1", "SESSION_FILE_THRESHOLD"),
            ("SESSION_TYPE = true", "SESSION_TYPE"),
            ("SESSION_COOKIE_SAMESITE = false", "SESSION_COOKIE_SAMESITE"),
            ("SESSION_REDIS = [\"a\"]", "SESSION_REDIS"),
            ("SESSION_FILE_DIR = 1979-05-27", "SESSION_FILE_DIR"),
            ("SECRET_KEY_FALLBACKS = [\"a\", 1]", "SECRET_KEY_FALLBACKS"),
        ];
        for (text, key) in cases {
            let error = SessionConfig::from_toml_str(text).unwrap_err();
            assert_eq!(invalid_key(&error), key, "{text}");
        }
    }

    #[test]
    fn toml_syntax_error_is_a_file_error_with_a_position() {
        let error =
            SessionConfig::from_toml_str("SESSION_TYPE = \"memory\"\nSESSION_COOKIE_NAME = ")
                .unwrap_err();
        match error {
            ConfigError::File { path, message } => {
                assert_eq!(path, "<string>");
                assert!(message.contains("line 2"), "{message}");
            }
            other => panic!("expected a File error, got {other:?}"),
        }
    }

    #[test]
    fn missing_file_is_a_file_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.toml");
        let error = SessionConfig::from_toml_file(&path).unwrap_err();
        assert!(matches!(error, ConfigError::File { .. }), "{error:?}");
        assert!(error.to_string().contains("absent.toml"));
    }

    #[test]
    fn toml_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.toml");
        std::fs::write(
            &path,
            "SESSION_TYPE = \"memory\"\nSESSION_KEY_PREFIX = \"shop:\"\n",
        )
        .unwrap();
        let config = SessionConfig::from_toml_file(&path).unwrap();
        assert_eq!(config.session_type(), SessionType::Memory);
        assert_eq!(config.key_prefix(), "shop:");
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.toml");
        std::fs::write(
            &path,
            "SESSION_COOKIE_NAME = \"from-file\"\nSESSION_KEY_PREFIX = \"file:\"\n",
        )
        .unwrap();
        let config = SessionConfig::load_with(
            Some(&path),
            env(&[("SESSION_COOKIE_NAME", "from-env"), ("UNRELATED", "x")]),
        )
        .unwrap();
        assert_eq!(config.cookie_name(), "from-env");
        assert_eq!(config.key_prefix(), "file:");
        assert_eq!(config.session_type(), SessionType::Null);
    }

    #[test]
    fn load_without_file_uses_defaults_and_environment() {
        let config = SessionConfig::load_with(None, env(&[("SESSION_TYPE", "memory")])).unwrap();
        assert_eq!(config.session_type(), SessionType::Memory);
        assert_eq!(config.cookie_name(), "session");
    }

    #[test]
    fn load_validates_the_result() {
        let error =
            SessionConfig::load_with(None, env(&[("SESSION_USE_SIGNER", "true")])).unwrap_err();
        assert!(matches!(error, ConfigError::Conflict(_)), "{error:?}");
    }

    #[test]
    fn environment_values_are_parsed_like_apply() {
        let config = SessionConfig::default()
            .overlay_env(env(&[
                ("SESSION_COOKIE_SECURE", "on"),
                ("PERMANENT_SESSION_LIFETIME", "2w"),
                ("SESSION_FILE_MODE", "0o640"),
            ]))
            .unwrap();
        assert!(config.secure());
        assert_eq!(config.lifetime(), Duration::from_secs(14 * 86_400));
        assert_eq!(config.file_mode(), 0o640);
        let error = SessionConfig::default()
            .overlay_env(env(&[("SESSION_COOKIE_SECURE", "sometimes")]))
            .unwrap_err();
        assert_eq!(invalid_key(&error), "SESSION_COOKIE_SECURE");
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_environment_value_is_invalid() {
        use std::os::unix::ffi::OsStringExt as _;
        let error = SessionConfig::default()
            .overlay_env(|key| {
                (key == "SESSION_KEY_PREFIX").then(|| OsString::from_vec(vec![b'a', 0xff]))
            })
            .unwrap_err();
        assert_eq!(invalid_key(&error), "SESSION_KEY_PREFIX");
        let error = SessionConfig::default()
            .overlay_env(|key| {
                (key == "SECRET_KEY").then(|| OsString::from_vec(b"very-secret\xff".to_vec()))
            })
            .unwrap_err();
        assert!(!error.to_string().contains("very-secret"), "{error}");
    }

    #[test]
    fn secret_never_appears_in_debug_output() {
        let config = SessionConfig::default()
            .with_secret_key(SECRET)
            .with_secret_key_fallbacks([format!("{SECRET}-old")]);
        let debug = format!("{config:?}");
        assert!(!debug.contains(SECRET), "{debug}");
        assert!(debug.contains("Secret(..)"), "{debug}");
        assert_eq!(format!("{:?}", Secret::from(SECRET)), "Secret(..)");
        let entries = format!("{:?}", config.entries());
        assert!(!entries.contains(SECRET), "{entries}");
    }

    #[test]
    fn secret_never_appears_in_error_messages() {
        let errors = [
            SessionConfig::from_toml_str(&format!("SECRET_KEY_FALLBACKS = [\"{SECRET}\", 5]"))
                .unwrap_err(),
            SessionConfig::default()
                .apply("SECRET_KEY_FALLBACKS", &format!("{SECRET},,"))
                .unwrap_err(),
            SessionConfig::from_toml_str(&format!("SECRET_KEY = \"{SECRET}\" 5")).unwrap_err(),
            SessionConfig::from_toml_str(&format!("SECRET_KEY = \"{SECRET}")).unwrap_err(),
            SessionConfig::from_toml_str(&format!(
                "SECRET_KEY = \"{SECRET}\"\nSECRET_KEY = \"{SECRET}\""
            ))
            .unwrap_err(),
        ];
        for error in errors {
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains(SECRET), "{shown}");
        }
        let error = SessionConfig::from_toml_str("SECRET_KEY = 12345").unwrap_err();
        assert!(!error.to_string().contains("12345"), "{error}");
    }

    #[test]
    fn url_passwords_are_masked_in_debug_and_entries() {
        let config = SessionConfig::default()
            .with_redis_url("redis://user:hunter2@cache:6379/0")
            .with_sql_url("postgres://app:hunter2@db/app?sslmode=require")
            .with_mongodb_uri("mongodb://root:hunter2@h1,h2/?replicaSet=rs");
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        let entries: HashMap<&str, String> = config.entries().into_iter().collect();
        assert_eq!(
            entries["SESSION_REDIS"],
            "redis://user:<redacted>@cache:6379/0"
        );
        assert_eq!(
            entries["SESSION_SQL_URL"],
            "postgres://app:<redacted>@db/app?sslmode=require"
        );
        assert!(!entries["SESSION_MONGODB"].contains("hunter2"));
        assert_eq!(
            config.redis_url(),
            Some("redis://user:hunter2@cache:6379/0")
        );
        assert_eq!(redact_url("redis://cache:6379"), "redis://cache:6379");
        assert_eq!(redact_url("redis://user@cache"), "redis://user@cache");
        assert_eq!(redact_url("cache:11211"), "cache:11211");
    }

    #[test]
    fn entries_show_secrets_only_as_presence_and_count() {
        let config = SessionConfig::default()
            .with_secret_key(SECRET)
            .with_secret_key_fallbacks(["a", "b"]);
        let entries: HashMap<&str, String> = config.entries().into_iter().collect();
        assert_eq!(entries["SECRET_KEY"], "<set>");
        assert_eq!(entries["SECRET_KEY_FALLBACKS"], "<2 keys>");
    }

    #[test]
    fn lifetime_formats_in_units_that_parse_back() {
        assert_eq!(format_lifetime(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_lifetime(Duration::from_secs(86_400 + 3_600)), "1d1h");
        assert_eq!(format_lifetime(Duration::ZERO), "0s");
        assert_eq!(format_lifetime(Duration::from_millis(1500)), "1.5s");
    }
}

//! Session configuration: [`SessionConfig`] and the settings it mirrors.
//!
//! Satchel reads the settings of Flask-Session (as bundled by Flask Unchained) under the
//! same names, so an application moving from Flask keeps its configuration. A
//! configuration is built in code with the `with_*` setters, or read from the process
//! environment ([`SessionConfig::from_env`]), a TOML file
//! ([`SessionConfig::from_toml_file`]) or both ([`SessionConfig::load`]: defaults, then
//! the file, then the environment).
//!
//! Every key is one entry of [`SETTINGS`]: the table below, the README's, [`KEYS`],
//! parsing, [`SessionConfig::entries`] and the redaction in `Debug` all come from it (a
//! test keeps both tables in step with it).
//!
//! | Key | Default | Meaning |
//! | --- | --- | --- |
//! | `SESSION_TYPE` | `null` | Where sessions live: `null` (sessions disabled), `memory`, `filesystem`, `redis`, `memcached`, `mongodb`, `sqlalchemy` (alias `sql`), or `cookie` (no server: the session sealed in its cookie with `SECRET_KEY`; Satchel's own). |
//! | `SESSION_COOKIE_NAME` | `session` | Name of the cookie that carries the session id. |
//! | `SESSION_COOKIE_DOMAIN` | unset | `Domain` attribute of the cookie. Unset, the cookie is host-only: it goes back only to the host that set it, not to its subdomains. |
//! | `SESSION_COOKIE_PATH` | unset → `/` | `Path` attribute of the cookie; unset means the whole site. |
//! | `SESSION_COOKIE_HTTPONLY` | `true` | Set the `HttpOnly` flag, so page scripts cannot read the cookie. |
//! | `SESSION_COOKIE_SECURE` | `false` | Set the `Secure` flag, so the cookie is only sent over HTTPS. Turn it on in production. |
//! | `SESSION_COOKIE_SAMESITE` | unset | `SameSite` attribute: `Lax` (recommended), `Strict` or `None` (which requires `SESSION_COOKIE_SECURE`). Unset, the attribute is left out and browsers apply their own default. |
//! | `PERMANENT_SESSION_LIFETIME` | `31d` (31 days) | How long a permanent session lives: seconds (`2678400`) or a duration such as `31d`, `12h`, `90m`, `45s`, `1d12h`, `2w`. |
//! | `SESSION_ABSOLUTE_LIFETIME` | unset | The most a session lives from its creation, however active (a duration as for `PERMANENT_SESSION_LIFETIME`); an id rotation keeps its creation time, and no refresh or per-session lifetime goes past it. Unset: no such limit (Satchel's own). |
//! | `SESSION_REFRESH_EACH_REQUEST` | `true` | Extend a permanent session's lifetime on every request, not only when it changes: once the stored expiry lags by 1% of the lifetime it is moved and the cookie re-sent with it (so reads stay reads). |
//! | `SESSION_PERMANENT` | `true` | Give sessions an expiry of `PERMANENT_SESSION_LIFETIME`; if `false`, the cookie lasts until the browser closes. |
//! | `SESSION_USE_SIGNER` | `false` | Sign the session id in the cookie with HMAC-SHA256 and `SECRET_KEY` (needs the `signed` feature). |
//! | `SESSION_MAX_PER_USER` | unset | Most sessions one user may have (Satchel's own setting): binding a user beyond it revokes that user's least recently used sessions. Unset, no cap. |
//! | `SECRET_KEY` | unset | Secret used to sign session ids, and under `SESSION_TYPE=cookie` to seal whole sessions (32 bytes or more then); `satchel keygen` makes one. Never printed. |
//! | `SECRET_KEY_FALLBACKS` | unset | Older secrets still accepted when verifying, for key rotation; comma-separated (or a TOML array). Never printed. |
//! | `SESSION_DATA_KEY` | unset | Secret that encrypts session values at rest (XChaCha20-Poly1305, 32 bytes or more; `satchel keygen` makes one); unset keeps values in the clear. Never printed. |
//! | `SESSION_DATA_KEY_FALLBACKS` | unset | Older data keys that still open values sealed before a rotation; comma-separated (or a TOML array). Never printed. |
//! | `SESSION_KEY_PREFIX` | `session:` | Prefix of every key written to the store, so several applications can share one backend. |
//! | `SESSION_HASH_IDS` | `true` | Store each session under a hash of its id (keyed BLAKE3), so that whoever reads the store (a backup, a replica, a dump) finds no id that works as a cookie; `false` keeps raw ids, as Flask-Session does (Satchel's own). |
//! | `SESSION_HASH_IDS_MIGRATE` | `false` | While moving to hashed ids: a session not found under its hashed key is looked up once under its raw id and moved to the hashed key; needs `SESSION_USE_SIGNER` (Satchel's own). |
//! | `SESSION_FLASK_COMPAT` | `false` | Store sessions in Flask-Session's layout, to share them with a Flask app: `true` (Flask-Session 0.7/0.8, msgpack) or `pickle` (Flask-Session 0.6, Flask Unchained); Redis, memcached, SQL and MongoDB; needs `SESSION_HASH_IDS=false` and no `SESSION_DATA_KEY` (Satchel's own). |
//! | `SESSION_FILE_DIR` | `flask_sessions` | Directory of the `filesystem` store; a relative path is taken from the working directory. |
//! | `SESSION_FILE_THRESHOLD` | `500` | Most sessions the `filesystem` store keeps; beyond it, expired then soonest-expiring sessions go. |
//! | `SESSION_FILE_MODE` | `0o600` | Permissions of session files, in octal (`600`, `0600` or `0o600`). |
//! | `SESSION_MEMORY_CAPACITY` | `100000` | Most sessions the `memory` store keeps (Satchel's own setting). |
//! | `SESSION_REDIS` | unset → `redis://127.0.0.1:6379` | URL of the Redis server (standalone, `redis+cluster://`, `redis+sentinel://`). |
//! | `SESSION_MEMCACHED` | unset → `127.0.0.1:11211` | Memcached servers, comma-separated. |
//! | `SESSION_MONGODB` | unset → `mongodb://127.0.0.1:27017` | MongoDB connection URI. |
//! | `SESSION_MONGODB_DB` | `flask_session` | MongoDB database. |
//! | `SESSION_MONGODB_COLLECT` | `sessions` | MongoDB collection. |
//! | `SESSION_SQL_URL` | unset | SQL database URL, e.g. `sqlite://sessions.db` or `postgres://…`; the seed's `SESSION_SQLALCHEMY` is accepted as another name. |
//! | `SESSION_SQLALCHEMY_TABLE` | `flask_sessions` | SQL table. |
//! | `SESSION_SQLALCHEMY_MODEL` | unset | A table mapping, to use an existing table: `schema=public,table=web_sessions,id=session_id,data=payload,expiry=expires_at` (see `store::sql::TableMapping`). Unset: the built-in layout in `SESSION_SQLALCHEMY_TABLE`. |
//! | `SESSION_SQL_AUTO_MIGRATE` | `true` | The SQL store creates its table and expiry index at start (`satchel migrate` does it by hand; Satchel's own). |
//! | `SESSION_SQL_CLEANUP_INTERVAL` | unset | Interval of a background task deleting expired SQL rows in batches; unset: none (`satchel cleanup` does it by hand; Satchel's own). |
//! | `SESSION_STORE_TIMEOUT` | `2s` | Connect and response timeout of networked stores: a store that is down gives a quick empty 500, and one that cannot be reached at start-up stops the start (Satchel's own). |
//! | `SESSION_STORE_FAILURE` | `error` | How a request is answered when the store fails or the breaker is open: `error` (an empty 500), `unavailable` (an empty 503 with `Retry-After`) or `anonymous` (the request goes on with an empty session that is never saved; the stored session and the cookie are left alone) (Satchel's own). |
//! | `SESSION_BREAKER_FAILURES` | `5` | Consecutive store failures that open the circuit breaker: for `SESSION_BREAKER_COOLDOWN` requests get the failure answer at once instead of waiting for the store; then one request tries the store. `0` turns it off (Satchel's own). |
//! | `SESSION_BREAKER_COOLDOWN` | `1s` | How long an open circuit breaker answers without asking the store before one request tries it again (Satchel's own). |
//! | `SESSION_MAX_SIZE` | `262144` (256 KiB) | The size budget of one session, in bytes (`262144`, `256KiB`, `1MiB`): an insert or a save that would take the session's keys and JSON values over it fails with `Error::TooLarge` (a 500 the application can map) and writes nothing. A few hundred times a typical session, and under memcached's 1 MB item size. `0` turns it off (Satchel's own). |
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

use std::path::PathBuf;
use std::time::Duration;

use crate::store::memory::DEFAULT_CAPACITY;
use crate::store::{DEFAULT_KEY_PREFIX, DEFAULT_TIMEOUT, defaults};

mod accessors;
mod parse;
mod settings;
mod sources;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
mod types;
mod unknown;
mod validate;

pub use settings::{ALIASES, Exposure, KEYS, SETTINGS, Setting, setting};
pub use types::{FailurePolicy, FlaskCompat, SameSite, Secret, SessionType};
pub use unknown::{UnknownSetting, unknown_in_environment, unknown_setting};

/// Default of `PERMANENT_SESSION_LIFETIME`: 31 days, as in Flask.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(31 * 24 * 60 * 60);
/// Longest accepted `PERMANENT_SESSION_LIFETIME`: 100 years. Anything longer is a mistake,
/// and far-future expiry times overflow time arithmetic.
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
/// Default of `SESSION_FILE_DIR`: Flask-Session's, relative to the working directory.
const DEFAULT_FILE_DIR: &str = "flask_sessions";
/// Default of `SESSION_BREAKER_FAILURES`: five failures in a row. One slow query or one
/// dropped connection does not open the breaker; at any real traffic, five in a row
/// mean the store is down, and every request after them would wait for the store's
/// timeout.
pub const DEFAULT_BREAKER_FAILURES: usize = 5;
/// Default of `SESSION_BREAKER_COOLDOWN`: one second. It bounds how long after the
/// store's return requests keep getting the failure answer, and costs one request per
/// second that tries the store while it is down (answered as fast as the store fails).
pub const DEFAULT_BREAKER_COOLDOWN: Duration = Duration::from_secs(1);
/// Default of `SESSION_MAX_SIZE`: 256 KiB (262144 bytes).
///
/// A typical session holds well under 1 KiB (a user id, a few flags, a CSRF token), so
/// a few hundred times that fits any real use, carts and wizards included. A session that
/// grows without bound (a list appended to on every request, a cache kept in the session)
/// fails early with a clear [`Error::TooLarge`](crate::Error::TooLarge) instead of
/// making every request slower and the store's tables or memory grow to gigabytes. It
/// is also under memcached's default item size of 1 MB, so a session within the budget
/// is one memcached takes.
pub const DEFAULT_MAX_SIZE: usize = 256 * 1024;

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
    absolute_lifetime: Option<Duration>,
    refresh_each_request: bool,
    permanent: bool,
    use_signer: bool,
    max_per_user: Option<usize>,
    secret_key: Option<Secret>,
    secret_key_fallbacks: Vec<Secret>,
    data_key: Option<Secret>,
    data_key_fallbacks: Vec<Secret>,
    key_prefix: String,
    hash_ids: bool,
    hash_ids_migrate: bool,
    flask_compat: FlaskCompat,
    file_dir: PathBuf,
    file_threshold: usize,
    file_mode: u32,
    memory_capacity: usize,
    sql_auto_migrate: bool,
    sql_cleanup_interval: Option<Duration>,
    store_timeout: Duration,
    store_failure: FailurePolicy,
    breaker_failures: usize,
    breaker_cooldown: Duration,
    max_size: usize,
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
            absolute_lifetime: None,
            refresh_each_request: true,
            permanent: true,
            use_signer: false,
            max_per_user: None,
            secret_key: None,
            secret_key_fallbacks: Vec::new(),
            data_key: None,
            data_key_fallbacks: Vec::new(),
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            hash_ids: true,
            hash_ids_migrate: false,
            flask_compat: FlaskCompat::Off,
            file_dir: PathBuf::from(DEFAULT_FILE_DIR),
            file_threshold: defaults::FILE_THRESHOLD,
            file_mode: defaults::FILE_MODE,
            memory_capacity: DEFAULT_CAPACITY,
            sql_auto_migrate: true,
            sql_cleanup_interval: None,
            store_timeout: DEFAULT_TIMEOUT,
            store_failure: FailurePolicy::Error,
            breaker_failures: DEFAULT_BREAKER_FAILURES,
            breaker_cooldown: DEFAULT_BREAKER_COOLDOWN,
            max_size: DEFAULT_MAX_SIZE,
            redis_url: None,
            memcached_servers: None,
            mongodb_uri: None,
            mongodb_db: defaults::MONGODB_DATABASE.to_owned(),
            mongodb_collection: defaults::MONGODB_COLLECTION.to_owned(),
            sql_url: None,
            sql_table: defaults::SQL_TABLE.to_owned(),
            sql_model: None,
        }
    }
}

//! The table of settings: every key once, with its default, its meaning, how a value is
//! parsed into a [`SessionConfig`] and how it is shown.
//!
//! [`KEYS`], [`SessionConfig::apply`] and the other sources, [`SessionConfig::entries`],
//! the redaction in `Debug`, `satchel config` and the configuration tables of the README
//! and of the [module documentation](super) are all driven by [`SETTINGS`]: adding a key
//! is one entry here plus its field in [`SessionConfig`] (with its default and accessors).

use std::fmt;
use std::path::PathBuf;

use super::parse::{
    EXPECTED_FAILURE_POLICY, EXPECTED_FLASK_COMPAT, EXPECTED_SAME_SITE, EXPECTED_SESSION_TYPE, Raw,
    boolean, byte_size, count, file_mode, format_lifetime, invalid, lifetime, optional_text,
    secrets, text,
};
use super::{FlaskCompat, Secret, SessionConfig};
use crate::error::ConfigError;
use crate::store::defaults::{MEMCACHED_SERVERS, MONGODB_URI, REDIS_URL};
use crate::support::redact_url;

/// Shown by [`SessionConfig::entries`] for an unset optional key.
pub(super) const UNSET: &str = "<unset>";

/// How a key's value may be shown.
///
/// # Examples
///
/// ```
/// use satchel::config::{Exposure, setting};
///
/// assert_eq!(setting("SECRET_KEY").map(|s| s.exposure), Some(Exposure::Secret));
/// assert_eq!(setting("SESSION_REDIS").map(|s| s.exposure), Some(Exposure::Url));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Exposure {
    /// Shown as it is.
    Plain,
    /// A URL or server list that may carry a password: shown with the password masked.
    Url,
    /// Never shown: only whether it is set, or how many values it holds.
    Secret,
}

/// Parses a raw value of the key (named by the second argument, which may be an alias)
/// into the configuration.
type Setter = fn(&mut SessionConfig, &str, &Raw<'_>) -> Result<(), ConfigError>;

/// One configuration key: a row of the configuration table.
pub struct Setting {
    /// The key, as in the environment and in TOML files.
    pub key: &'static str,
    /// The default, as the documentation writes it.
    pub default: &'static str,
    /// What the key does, in one line of Markdown.
    pub doc: &'static str,
    /// How its value may be shown.
    pub exposure: Exposure,
    set: Setter,
    show: fn(&SessionConfig) -> String,
}

impl Setting {
    /// The key's value in `config` as display text, safe to show: unset keys as
    /// `<unset>` (or `<unset: what is used instead>`), secrets only as `<set>` or a count,
    /// URL passwords masked.
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::SessionConfig;
    /// use satchel::config::setting;
    ///
    /// let config = SessionConfig::default().with_cookie_name("sid");
    /// let name = setting("SESSION_COOKIE_NAME").expect("a key");
    /// assert_eq!(name.shown(&config), "sid");
    /// ```
    #[must_use]
    pub fn shown(&self, config: &SessionConfig) -> String {
        (self.show)(config)
    }

    /// This key's row of the configuration table, in Markdown.
    #[must_use]
    pub fn table_row(&self) -> String {
        format!("| `{}` | {} | {} |", self.key, self.default, self.doc)
    }
}

impl fmt::Debug for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Setting")
            .field("key", &self.key)
            .field("default", &self.default)
            .field("exposure", &self.exposure)
            .finish_non_exhaustive()
    }
}

/// An optional value, or `<unset>`.
fn optional(value: Option<&str>) -> String {
    value.map_or_else(|| UNSET.to_owned(), str::to_owned)
}

/// A store address, password masked, or what is used when it is unset.
fn server(value: Option<&str>, default: &str) -> String {
    value.map_or_else(
        || format!("<unset: {default}>"),
        |url| redact_url(url).into_owned(),
    )
}

/// Every setting, in the order of the configuration table.
///
/// # Examples
///
/// ```
/// use satchel::config::SETTINGS;
///
/// let lifetime = SETTINGS.iter().find(|s| s.key == "PERMANENT_SESSION_LIFETIME");
/// assert_eq!(lifetime.map(|s| s.default), Some("`31d` (31 days)"));
/// ```
pub const SETTINGS: &[Setting] = &[
    Setting {
        key: "SESSION_TYPE",
        default: "`null`",
        doc: "Where sessions live: `null` (sessions disabled), `memory`, `filesystem`, \
              `redis`, `memcached`, `mongodb`, `sqlalchemy` (alias `sql`), or `cookie` (no \
              server: the session sealed in its cookie with `SECRET_KEY`; Satchel's own).",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.session_type = match raw {
                Raw::Text(text) => text.parse()?,
                _ => return Err(invalid(key, raw, EXPECTED_SESSION_TYPE)),
            };
            Ok(())
        },
        show: |config| config.session_type.to_string(),
    },
    Setting {
        key: "SESSION_COOKIE_NAME",
        default: "`session`",
        doc: "Name of the cookie that carries the session id.",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.cookie_name = text(key, raw)?.to_owned();
            Ok(())
        },
        show: |config| config.cookie_name.clone(),
    },
    Setting {
        key: "SESSION_COOKIE_DOMAIN",
        default: "unset",
        doc: "`Domain` attribute of the cookie. Unset, the cookie is host-only: it goes back \
              only to the host that set it, not to its subdomains.",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.cookie_domain = optional_text(key, raw)?;
            Ok(())
        },
        show: |config| optional(config.cookie_domain()),
    },
    Setting {
        key: "SESSION_COOKIE_PATH",
        default: "unset → `/`",
        doc: "`Path` attribute of the cookie; unset means the whole site.",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.cookie_path = optional_text(key, raw)?;
            Ok(())
        },
        show: |config| config.cookie_path().to_owned(),
    },
    Setting {
        key: "SESSION_COOKIE_HTTPONLY",
        default: "`true`",
        doc: "Set the `HttpOnly` flag, so page scripts cannot read the cookie.",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.http_only = boolean(key, raw)?;
            Ok(())
        },
        show: |config| config.http_only.to_string(),
    },
    Setting {
        key: "SESSION_COOKIE_SECURE",
        default: "`false`",
        doc: "Set the `Secure` flag, so the cookie is only sent over HTTPS. Turn it on in \
              production.",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.secure = boolean(key, raw)?;
            Ok(())
        },
        show: |config| config.secure.to_string(),
    },
    Setting {
        key: "SESSION_COOKIE_SAMESITE",
        default: "unset",
        doc: "`SameSite` attribute: `Lax` (recommended), `Strict` or `None` (which requires \
              `SESSION_COOKIE_SECURE`). Unset, the attribute is left out and browsers apply \
              their own default.",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.same_site = match raw {
                Raw::Text(text) if text.trim().is_empty() => None,
                Raw::Text(text) => Some(text.parse()?),
                _ => return Err(invalid(key, raw, EXPECTED_SAME_SITE)),
            };
            Ok(())
        },
        show: |config| optional(config.same_site.map(|same_site| same_site.as_str())),
    },
    Setting {
        key: "PERMANENT_SESSION_LIFETIME",
        default: "`31d` (31 days)",
        doc: "How long a permanent session lives: seconds (`2678400`) or a duration such as \
              `31d`, `12h`, `90m`, `45s`, `1d12h`, `2w`.",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.lifetime = lifetime(key, raw)?;
            Ok(())
        },
        show: |config| format_lifetime(config.lifetime),
    },
    Setting {
        key: "SESSION_ABSOLUTE_LIFETIME",
        default: "unset",
        doc: "The most a session lives from its creation, however active (a duration as for \
              `PERMANENT_SESSION_LIFETIME`); an id rotation keeps its creation time, and no \
              refresh or per-session lifetime goes past it. Unset: no such limit \
              (Satchel's own).",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.absolute_lifetime = match raw {
                Raw::Text(text) if text.trim().is_empty() => None,
                _ => Some(lifetime(key, raw)?),
            };
            Ok(())
        },
        show: |config| {
            config
                .absolute_lifetime
                .map_or_else(|| UNSET.to_owned(), format_lifetime)
        },
    },
    Setting {
        key: "SESSION_REFRESH_EACH_REQUEST",
        default: "`true`",
        doc: "Extend a permanent session's lifetime on every request, not only when it \
              changes: once the stored expiry lags by 1% of the lifetime it is moved and the \
              cookie re-sent with it (so reads stay reads).",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.refresh_each_request = boolean(key, raw)?;
            Ok(())
        },
        show: |config| config.refresh_each_request.to_string(),
    },
    Setting {
        key: "SESSION_PERMANENT",
        default: "`true`",
        doc: "Give sessions an expiry of `PERMANENT_SESSION_LIFETIME`; if `false`, the cookie \
              lasts until the browser closes.",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.permanent = boolean(key, raw)?;
            Ok(())
        },
        show: |config| config.permanent.to_string(),
    },
    Setting {
        key: "SESSION_USE_SIGNER",
        default: "`false`",
        doc: "Sign the session id in the cookie with HMAC-SHA256 and `SECRET_KEY` (needs the \
              `signed` feature).",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.use_signer = boolean(key, raw)?;
            Ok(())
        },
        show: |config| config.use_signer.to_string(),
    },
    Setting {
        key: "SESSION_MAX_PER_USER",
        default: "unset",
        doc: "Most sessions one user may have (Satchel's own setting): binding a user beyond \
              it revokes that user's least recently used sessions. Unset, no cap.",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.max_per_user = match raw {
                Raw::Text(text) if text.trim().is_empty() => None,
                _ => Some(count(key, raw)?),
            };
            Ok(())
        },
        show: |config| {
            config
                .max_per_user
                .map_or_else(|| UNSET.to_owned(), |n| n.to_string())
        },
    },
    Setting {
        key: "SECRET_KEY",
        default: "unset",
        doc: "Secret used to sign session ids, and under `SESSION_TYPE=cookie` to seal whole \
              sessions (32 bytes or more then); `satchel keygen` makes one. Never printed.",
        exposure: Exposure::Secret,
        set: |config, key, raw| {
            config.secret_key = Some(Secret::from(text(key, raw)?));
            Ok(())
        },
        show: |config| {
            if config.secret_key.is_some() {
                "<set>"
            } else {
                UNSET
            }
            .to_owned()
        },
    },
    Setting {
        key: "SECRET_KEY_FALLBACKS",
        default: "unset",
        doc: "Older secrets still accepted when verifying, for key rotation; comma-separated \
              (or a TOML array). Never printed.",
        exposure: Exposure::Secret,
        set: |config, key, raw| {
            config.secret_key_fallbacks = secrets(key, raw)?;
            Ok(())
        },
        show: |config| match config.secret_key_fallbacks.len() {
            1 => "<1 key>".to_owned(),
            count => format!("<{count} keys>"),
        },
    },
    Setting {
        key: "SESSION_DATA_KEY",
        default: "unset",
        doc: "Secret that encrypts session values at rest (XChaCha20-Poly1305, 32 bytes or \
              more; `satchel keygen` makes one); unset keeps values in the clear. Never \
              printed.",
        exposure: Exposure::Secret,
        set: |config, key, raw| {
            config.data_key = Some(Secret::from(text(key, raw)?));
            Ok(())
        },
        show: |config| {
            if config.data_key.is_some() {
                "<set>".to_owned()
            } else {
                UNSET.to_owned()
            }
        },
    },
    Setting {
        key: "SESSION_DATA_KEY_FALLBACKS",
        default: "unset",
        doc: "Older data keys that still open values sealed before a rotation; \
              comma-separated (or a TOML array). Never printed.",
        exposure: Exposure::Secret,
        set: |config, key, raw| {
            config.data_key_fallbacks = secrets(key, raw)?;
            Ok(())
        },
        show: |config| match config.data_key_fallbacks.len() {
            1 => "<1 key>".to_owned(),
            count => format!("<{count} keys>"),
        },
    },
    Setting {
        key: "SESSION_KEY_PREFIX",
        default: "`session:`",
        doc: "Prefix of every key written to the store, so several applications can share \
              one backend.",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.key_prefix = text(key, raw)?.to_owned();
            Ok(())
        },
        show: |config| config.key_prefix.clone(),
    },
    Setting {
        key: "SESSION_HASH_IDS",
        default: "`true`",
        doc: "Store each session under a hash of its id (keyed BLAKE3), so that whoever reads the \
              store (a backup, a replica, a dump) finds no id that works as a cookie; `false` \
              keeps raw ids, as Flask-Session does (Satchel's own).",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.hash_ids = boolean(key, raw)?;
            Ok(())
        },
        show: |config| config.hash_ids.to_string(),
    },
    Setting {
        key: "SESSION_HASH_IDS_MIGRATE",
        default: "`false`",
        doc: "While moving to hashed ids: a session not found under its hashed key is looked \
              up once under its raw id and moved to the hashed key; needs \
              `SESSION_USE_SIGNER` (Satchel's own).",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.hash_ids_migrate = boolean(key, raw)?;
            Ok(())
        },
        show: |config| config.hash_ids_migrate.to_string(),
    },
    Setting {
        key: "SESSION_FLASK_COMPAT",
        default: "`false`",
        doc: "Store sessions in Flask-Session's layout, to share them with a Flask app: `true` \
              (Flask-Session 0.7/0.8, msgpack) or `pickle` (Flask-Session 0.6, Flask \
              Unchained); Redis, memcached, SQL and MongoDB; needs `SESSION_HASH_IDS=false` \
              and no `SESSION_DATA_KEY` (Satchel's own).",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.flask_compat = match raw {
                Raw::Text(text) => text.parse()?,
                Raw::Bool(true) => FlaskCompat::Msgpack,
                Raw::Bool(false) => FlaskCompat::Off,
                _ => return Err(invalid(key, raw, EXPECTED_FLASK_COMPAT)),
            };
            Ok(())
        },
        show: |config| config.flask_compat.as_str().to_owned(),
    },
    Setting {
        key: "SESSION_FILE_DIR",
        default: "`flask_sessions`",
        doc: "Directory of the `filesystem` store; a relative path is taken from the working \
              directory.",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.file_dir = PathBuf::from(text(key, raw)?);
            Ok(())
        },
        show: |config| config.file_dir.display().to_string(),
    },
    Setting {
        key: "SESSION_FILE_THRESHOLD",
        default: "`500`",
        doc: "Most sessions the `filesystem` store keeps; beyond it, expired then \
              soonest-expiring sessions go.",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.file_threshold = count(key, raw)?;
            Ok(())
        },
        show: |config| config.file_threshold.to_string(),
    },
    Setting {
        key: "SESSION_FILE_MODE",
        default: "`0o600`",
        doc: "Permissions of session files, in octal (`600`, `0600` or `0o600`).",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.file_mode = file_mode(key, raw)?;
            Ok(())
        },
        show: |config| format!("0o{:o}", config.file_mode),
    },
    Setting {
        key: "SESSION_MEMORY_CAPACITY",
        default: "`100000`",
        doc: "Most sessions the `memory` store keeps (Satchel's own setting).",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.memory_capacity = count(key, raw)?;
            Ok(())
        },
        show: |config| config.memory_capacity.to_string(),
    },
    Setting {
        key: "SESSION_REDIS",
        default: "unset → `redis://127.0.0.1:6379`",
        doc: "URL of the Redis server (standalone, `redis+cluster://`, `redis+sentinel://`).",
        exposure: Exposure::Url,
        set: |config, key, raw| {
            config.redis_url = optional_text(key, raw)?;
            Ok(())
        },
        show: |config| server(config.redis_url(), REDIS_URL),
    },
    Setting {
        key: "SESSION_MEMCACHED",
        default: "unset → `127.0.0.1:11211`",
        doc: "Memcached servers, comma-separated.",
        exposure: Exposure::Url,
        set: |config, key, raw| {
            config.memcached_servers = optional_text(key, raw)?;
            Ok(())
        },
        show: |config| server(config.memcached_servers(), MEMCACHED_SERVERS),
    },
    Setting {
        key: "SESSION_MONGODB",
        default: "unset → `mongodb://127.0.0.1:27017`",
        doc: "MongoDB connection URI.",
        exposure: Exposure::Url,
        set: |config, key, raw| {
            config.mongodb_uri = optional_text(key, raw)?;
            Ok(())
        },
        show: |config| server(config.mongodb_uri(), MONGODB_URI),
    },
    Setting {
        key: "SESSION_MONGODB_DB",
        default: "`flask_session`",
        doc: "MongoDB database.",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.mongodb_db = text(key, raw)?.to_owned();
            Ok(())
        },
        show: |config| config.mongodb_db.clone(),
    },
    Setting {
        key: "SESSION_MONGODB_COLLECT",
        default: "`sessions`",
        doc: "MongoDB collection.",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.mongodb_collection = text(key, raw)?.to_owned();
            Ok(())
        },
        show: |config| config.mongodb_collection.clone(),
    },
    Setting {
        key: "SESSION_SQL_URL",
        default: "unset",
        doc: "SQL database URL, e.g. `sqlite://sessions.db` or `postgres://…`; the seed's \
              `SESSION_SQLALCHEMY` is accepted as another name.",
        exposure: Exposure::Url,
        set: |config, key, raw| {
            config.sql_url = optional_text(key, raw)?;
            Ok(())
        },
        show: |config| {
            config
                .sql_url()
                .map_or_else(|| UNSET.to_owned(), |url| redact_url(url).into_owned())
        },
    },
    Setting {
        key: "SESSION_SQLALCHEMY_TABLE",
        default: "`flask_sessions`",
        doc: "SQL table.",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.sql_table = text(key, raw)?.to_owned();
            Ok(())
        },
        show: |config| config.sql_table.clone(),
    },
    Setting {
        key: "SESSION_SQLALCHEMY_MODEL",
        default: "unset",
        doc: "A table mapping, to use an existing table: \
              `schema=public,table=web_sessions,id=session_id,data=payload,expiry=expires_at` \
              (see `store::sql::TableMapping`). Unset: the built-in layout in \
              `SESSION_SQLALCHEMY_TABLE`.",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.sql_model = optional_text(key, raw)?;
            Ok(())
        },
        show: |config| optional(config.sql_model()),
    },
    Setting {
        key: "SESSION_SQL_AUTO_MIGRATE",
        default: "`true`",
        doc: "The SQL store creates its table and expiry index at start (`satchel migrate` \
              does it by hand; Satchel's own).",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.sql_auto_migrate = boolean(key, raw)?;
            Ok(())
        },
        show: |config| config.sql_auto_migrate.to_string(),
    },
    Setting {
        key: "SESSION_SQL_CLEANUP_INTERVAL",
        default: "unset",
        doc: "Interval of a background task deleting expired SQL rows in batches; unset: none \
              (`satchel cleanup` does it by hand; Satchel's own).",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.sql_cleanup_interval = match raw {
                Raw::Text(text) if text.trim().is_empty() => None,
                _ => Some(lifetime(key, raw)?),
            };
            Ok(())
        },
        show: |config| {
            config
                .sql_cleanup_interval
                .map_or_else(|| UNSET.to_owned(), format_lifetime)
        },
    },
    Setting {
        key: "SESSION_STORE_TIMEOUT",
        default: "`2s`",
        doc: "Connect and response timeout of networked stores: a store that is down gives a \
              quick empty 500, and one that cannot be reached at start-up stops the start \
              (Satchel's own).",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.store_timeout = lifetime(key, raw)?;
            Ok(())
        },
        show: |config| format_lifetime(config.store_timeout),
    },
    Setting {
        key: "SESSION_STORE_FAILURE",
        default: "`error`",
        doc: "How a request is answered when the store fails or the breaker is open: `error` \
              (an empty 500), `unavailable` (an empty 503 with `Retry-After`) or `anonymous` \
              (the request goes on with an empty session that is never saved; the stored \
              session and the cookie are left alone) (Satchel's own).",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.store_failure = match raw {
                Raw::Text(text) => text.parse()?,
                _ => return Err(invalid(key, raw, EXPECTED_FAILURE_POLICY)),
            };
            Ok(())
        },
        show: |config| config.store_failure.as_str().to_owned(),
    },
    Setting {
        key: "SESSION_BREAKER_FAILURES",
        default: "`5`",
        doc: "Consecutive store failures that open the circuit breaker: for \
              `SESSION_BREAKER_COOLDOWN` requests get the failure answer at once instead of \
              waiting for the store; then one request tries the store. `0` turns it off \
              (Satchel's own).",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.breaker_failures = match raw {
                Raw::Integer(0) => 0,
                Raw::Text(text) if text.trim() == "0" => 0,
                _ => count(key, raw)?,
            };
            Ok(())
        },
        show: |config| config.breaker_failures.to_string(),
    },
    Setting {
        key: "SESSION_BREAKER_COOLDOWN",
        default: "`1s`",
        doc: "How long an open circuit breaker answers without asking the store before one \
              request tries it again (Satchel's own).",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.breaker_cooldown = lifetime(key, raw)?;
            Ok(())
        },
        show: |config| format_lifetime(config.breaker_cooldown),
    },
    Setting {
        key: "SESSION_MAX_SIZE",
        default: "`262144` (256 KiB)",
        doc: "The size budget of one session, in bytes (`262144`, `256KiB`, `1MiB`): an insert \
              or a save that would take the session's keys and JSON values over it fails with \
              `Error::TooLarge` (a 500 the application can map) and writes nothing. A few \
              hundred times a typical session, and under memcached's 1 MB item size. `0` \
              turns it off (Satchel's own).",
        exposure: Exposure::Plain,
        set: |config, key, raw| {
            config.max_size = byte_size(key, raw)?;
            Ok(())
        },
        show: |config| config.max_size.to_string(),
    },
];

/// Every configuration key Satchel knows, in the order of [`SETTINGS`].
///
/// # Examples
///
/// ```
/// assert!(satchel::config::KEYS.contains(&"SESSION_COOKIE_NAME"));
/// ```
pub const KEYS: &[&str] = &keys::<{ SETTINGS.len() }>();

/// The keys of [`SETTINGS`], computed when compiling.
const fn keys<const N: usize>() -> [&'static str; N] {
    let mut keys = [""; N];
    let mut index = 0;
    while index < N {
        keys[index] = SETTINGS[index].key;
        index += 1;
    }
    keys
}

/// Other names accepted for a key, as `(alias, key)`. The seed's `SESSION_SQLALCHEMY` is a
/// SQLAlchemy engine in Flask; here it names the same database as a URL. When both are
/// set, the key itself wins.
pub const ALIASES: &[(&str, &str)] = &[("SESSION_SQLALCHEMY", "SESSION_SQL_URL")];

/// The setting of `key`, or of the key `key` is an alias of.
///
/// # Examples
///
/// ```
/// use satchel::config::setting;
///
/// assert_eq!(setting("SESSION_SQLALCHEMY").map(|s| s.key), Some("SESSION_SQL_URL"));
/// assert!(setting("SESSION_COOKIE_SECURED").is_none());
/// ```
#[must_use]
pub fn setting(key: &str) -> Option<&'static Setting> {
    let key = ALIASES
        .iter()
        .find(|&&(alias, _)| alias == key)
        .map_or(key, |&(_, canonical)| canonical);
    SETTINGS.iter().find(|setting| setting.key == key)
}

impl SessionConfig {
    /// Sets `key` from a raw value: the one place every source's values are parsed.
    pub(super) fn set(
        mut self,
        key: &str,
        raw: &Raw<'_>,
        source: &str,
    ) -> Result<Self, ConfigError> {
        let Some(setting) = setting(key) else {
            return Err(ConfigError::UnknownKey {
                key: key.to_owned(),
                source: source.to_owned(),
            });
        };
        (setting.set)(&mut self, key, raw)?;
        Ok(self)
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
        SETTINGS
            .iter()
            .map(|setting| (setting.key, setting.shown(self)))
            .collect()
    }
}

impl fmt::Debug for SessionConfig {
    /// Every key with its [shown](Setting::shown) value; a secret that is set appears as
    /// `Secret(..)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("SessionConfig");
        for setting in SETTINGS {
            let shown = setting.shown(self);
            if setting.exposure == Exposure::Secret && shown != UNSET {
                out.field(setting.key, &format_args!("Secret(..)"));
            } else {
                out.field(setting.key, &format_args!("{shown}"));
            }
        }
        out.finish()
    }
}

//! The typed values of settings: [`SessionType`], [`SameSite`], [`FailurePolicy`],
//! [`FlaskCompat`] and [`Secret`].

use std::fmt;
use std::str::FromStr;

use super::parse::{
    EXPECTED_FAILURE_POLICY, EXPECTED_FLASK_COMPAT, EXPECTED_SAME_SITE, EXPECTED_SESSION_TYPE,
};
use crate::error::ConfigError;

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
/// assert_eq!("cookie".parse::<SessionType>()?, SessionType::Cookie);
/// assert!("dynamodb".parse::<SessionType>().is_err());
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
    /// `cookie`: no server; the whole session travels in its cookie, sealed with
    /// `SECRET_KEY` (Satchel's own; see [`CookieStore`](crate::store::cookie)).
    Cookie,
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
            Self::Cookie => "cookie",
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
            "cookie" => Self::Cookie,
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

/// How a request is answered when the session store fails (`SESSION_STORE_FAILURE`): it
/// did not answer, it refused, or the [circuit breaker](crate::SessionConfig::breaker_failures)
/// is holding calls back.
///
/// # Examples
///
/// ```
/// use satchel::FailurePolicy;
///
/// assert_eq!("Unavailable".parse::<FailurePolicy>()?, FailurePolicy::Unavailable);
/// assert_eq!(FailurePolicy::default().as_str(), "error");
/// # Ok::<(), satchel::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FailurePolicy {
    /// `error`: an empty `500` with `Vary: Cookie` in the place of the handler's answer,
    /// the cause logged. The default: the answer any other failing dependency of a
    /// handler gives, so nothing is assumed about the application; monitoring that
    /// counts `5xx` sees it.
    #[default]
    Error,
    /// `unavailable`: an empty `503 Service Unavailable` with `Retry-After` (the seconds
    /// until the breaker tries the store again, at least 1) and `Vary: Cookie`: for
    /// clients and load balancers that retry, and for pages that must not be served
    /// without their session.
    Unavailable,
    /// `anonymous`: the request goes on with an empty session that is never saved. The
    /// handler answers as it would a visitor without a session; what it writes is dropped
    /// with a warning and counted (`satchel_writes_dropped_total`); the stored session is
    /// never overwritten or deleted, and the browser's cookie is left as it is, so the
    /// user is logged in again once the store is back. For sites whose pages are useful
    /// without a session. Atomic updates ([`increment`](crate::Session::increment),
    /// [`insert_if_unchanged`](crate::Session::insert_if_unchanged)) that reach a failing
    /// store still return [`Error::Unavailable`](crate::Error::Unavailable): their result
    /// cannot be made up.
    Anonymous,
}

impl FailurePolicy {
    /// The policy's name, as SESSION_STORE_FAILURE takes it: `error`, `unavailable` or
    /// `anonymous`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(satchel::FailurePolicy::Anonymous.as_str(), "anonymous");
    /// ```
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Unavailable => "unavailable",
            Self::Anonymous => "anonymous",
        }
    }
}

impl fmt::Display for FailurePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FailurePolicy {
    type Err = ConfigError;

    /// Parses `error`, `unavailable` or `anonymous` in any case.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for `SESSION_STORE_FAILURE` on any other text.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "error" => Ok(Self::Error),
            "unavailable" => Ok(Self::Unavailable),
            "anonymous" => Ok(Self::Anonymous),
            _ => Err(ConfigError::Invalid {
                key: "SESSION_STORE_FAILURE".to_owned(),
                value: text.to_owned(),
                expected: EXPECTED_FAILURE_POLICY.to_owned(),
            }),
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

/// Whether sessions are stored in Flask-Session's own layout, to be shared with a Flask
/// application (`SESSION_FLASK_COMPAT`).
///
/// In a Flask layout each session is one value, in Flask-Session's encoding, under
/// Flask-Session's key, in Flask-Session's table or collection; the cookie carries the
/// raw id (or Flask-Session's signed id with SESSION_USE_SIGNER). See
/// [`satchel::flask`](crate::flask) for what crosses and how.
///
/// # Examples
///
/// ```
/// use satchel::FlaskCompat;
///
/// assert_eq!("true".parse::<FlaskCompat>()?, FlaskCompat::Msgpack);
/// assert_eq!("Pickle".parse::<FlaskCompat>()?, FlaskCompat::Pickle);
/// assert_eq!("false".parse::<FlaskCompat>()?, FlaskCompat::Off);
/// assert_eq!(FlaskCompat::default().as_str(), "false");
/// assert!("0.5".parse::<FlaskCompat>().is_err());
/// # Ok::<(), satchel::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FlaskCompat {
    /// `false`: Satchel's own layouts. The default: they keep what Flask's cannot (hashed
    /// ids, sealed values, a field per key).
    #[default]
    Off,
    /// `true` (or `msgpack`): Flask-Session 0.7 and 0.8, values in msgpack.
    Msgpack,
    /// `pickle`: Flask-Session 0.6 and Flask Unchained 0.9, values pickled (protocol 4).
    Pickle,
}

impl FlaskCompat {
    /// The value's name, as SESSION_FLASK_COMPAT takes it: `false`, `true` or `pickle`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(satchel::FlaskCompat::Msgpack.as_str(), "true");
    /// ```
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Off => "false",
            Self::Msgpack => "true",
            Self::Pickle => "pickle",
        }
    }

    /// Whether a Flask layout is chosen.
    #[must_use]
    pub fn is_on(&self) -> bool {
        *self != Self::Off
    }
}

impl fmt::Display for FlaskCompat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FlaskCompat {
    type Err = ConfigError;

    /// Parses `false`/`off`/`0`, `true`/`on`/`1`/`msgpack`, or `pickle`, in any case.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for `SESSION_FLASK_COMPAT` on any other text.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "false" | "off" | "0" | "no" => Ok(Self::Off),
            "true" | "on" | "1" | "yes" | "msgpack" => Ok(Self::Msgpack),
            "pickle" => Ok(Self::Pickle),
            _ => Err(ConfigError::Invalid {
                key: "SESSION_FLASK_COMPAT".to_owned(),
                value: text.to_owned(),
                expected: EXPECTED_FLASK_COMPAT.to_owned(),
            }),
        }
    }
}

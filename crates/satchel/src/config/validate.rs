//! The checks of a whole configuration: values that cannot work and settings that
//! contradict each other.

use std::time::Duration;

use super::parse::{
    EXPECTED_COUNT, EXPECTED_FILE_MODE, EXPECTED_LIFETIME, EXPECTED_SECRETS, REDACTED,
    format_lifetime, invalid_value, is_token_byte,
};
use super::{FlaskCompat, MAX_LIFETIME, SameSite, SessionConfig, SessionType};
use crate::error::ConfigError;

impl SessionConfig {
    /// What the cookie store (SESSION_TYPE=cookie) needs: SECRET_KEY, set and long
    /// enough, since whoever guesses it can write any session (a user id included), and
    /// no SESSION_MAX_PER_USER, which it cannot enforce.
    pub(crate) fn validate_cookie_store(&self) -> Result<(), ConfigError> {
        let short = |secret: &crate::Secret| secret.as_bytes().len() < 32;
        match &self.secret_key {
            None => Err(ConfigError::Conflict(
                "SESSION_TYPE=cookie seals each session with SECRET_KEY, which is not set: \
                 generate one with `satchel keygen`"
                    .to_owned(),
            )),
            Some(key) if short(key) || self.secret_key_fallbacks.iter().any(short) => {
                Err(ConfigError::Conflict(
                    "SESSION_TYPE=cookie needs SECRET_KEY (and each key of \
                     SECRET_KEY_FALLBACKS) of 32 bytes or more: whoever guesses it can write \
                     any session, a user id included; generate one with `satchel keygen`"
                        .to_owned(),
                ))
            }
            Some(_) if self.max_per_user.is_some() => Err(ConfigError::Conflict(
                "SESSION_MAX_PER_USER needs a server store: under SESSION_TYPE=cookie no \
                 server keeps a user's sessions, so none could be revoked"
                    .to_owned(),
            )),
            Some(_) => Ok(()),
        }
    }

    /// What SESSION_FLASK_COMPAT needs: a store Flask-Session shares, raw ids and values
    /// in the clear (Flask can neither find a hashed key nor open a sealed value), and the
    /// `flask` feature.
    fn validate_flask_compat(&self) -> Result<(), ConfigError> {
        let compat = self.flask_compat;
        if compat == FlaskCompat::Off {
            return Ok(());
        }
        let conflict = |message: String| Err(ConfigError::Conflict(message));
        if !cfg!(feature = "flask") {
            return conflict(format!(
                "SESSION_FLASK_COMPAT={compat} but satchel was built without its `flask` \
                 feature: enable the feature or set SESSION_FLASK_COMPAT to false"
            ));
        }
        if !matches!(
            self.session_type,
            SessionType::Redis | SessionType::Memcached | SessionType::Sql | SessionType::MongoDb
        ) {
            return conflict(format!(
                "SESSION_FLASK_COMPAT={compat} shares sessions with Flask-Session through \
                 redis, memcached, sqlalchemy or mongodb, not SESSION_TYPE={}",
                self.session_type
            ));
        }
        if self.hash_ids {
            return conflict(format!(
                "SESSION_FLASK_COMPAT={compat} stores each session under its raw id, where \
                 Flask-Session looks for it, but SESSION_HASH_IDS is true: set \
                 SESSION_HASH_IDS=false"
            ));
        }
        if self.data_key.is_some() {
            return conflict(format!(
                "SESSION_FLASK_COMPAT={compat} stores values Flask-Session can read, but \
                 SESSION_DATA_KEY would encrypt them: unset SESSION_DATA_KEY"
            ));
        }
        Ok(())
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
    /// - `SESSION_TYPE=cookie` without a `SECRET_KEY` of 32 bytes or more (and as long a
    ///   key in each entry of `SECRET_KEY_FALLBACKS`), or with `SESSION_MAX_PER_USER`;
    /// - an empty `SECRET_KEY` or an empty entry in `SECRET_KEY_FALLBACKS`;
    /// - a `SESSION_DATA_KEY` or an entry of `SESSION_DATA_KEY_FALLBACKS` shorter than
    ///   32 bytes, fallbacks without `SESSION_DATA_KEY`, or a data key in a build
    ///   without the `sealed` feature;
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
    ///   part of every store key);
    /// - `SESSION_FLASK_COMPAT` with a SESSION_TYPE other than redis, memcached,
    ///   sqlalchemy or mongodb, with `SESSION_HASH_IDS`, with `SESSION_DATA_KEY`, or in a
    ///   build without the `flask` feature.
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
        if self.session_type == SessionType::Cookie {
            self.validate_cookie_store()?;
        }
        self.validate_flask_compat()?;
        if self.hash_ids && self.hash_ids_migrate && !self.use_signer {
            return Err(ConfigError::Conflict(
                "SESSION_HASH_IDS_MIGRATE needs SESSION_USE_SIGNER: without signed cookies, \
                 anyone who learns a stored key could present it as a cookie and have the \
                 migration move that session to a key they hold"
                    .to_owned(),
            ));
        }
        // Under SESSION_FLASK_COMPAT, Flask-Session's signer signs (the `flask` feature).
        if self.use_signer && !cfg!(feature = "signed") && !self.flask_compat.is_on() {
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
        self.validate_data_keys()?;
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
        if let Some(limit) = self.absolute_lifetime
            && (limit < Duration::from_secs(1) || limit > MAX_LIFETIME)
        {
            return Err(ConfigError::Invalid {
                key: "SESSION_ABSOLUTE_LIFETIME".to_owned(),
                value: format_lifetime(limit),
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
}

/// The fewest bytes a data key may have: it is a 256-bit key, not a password.
const MIN_DATA_KEY_LEN: usize = 32;

impl SessionConfig {
    /// The checks of SESSION_DATA_KEY and its fallbacks.
    fn validate_data_keys(&self) -> Result<(), ConfigError> {
        let short = |key: &str| ConfigError::Invalid {
            key: key.to_owned(),
            value: REDACTED.to_owned(),
            expected: format!(
                "a secret of {MIN_DATA_KEY_LEN} bytes or more (it is a key, not a password): \
                 generate one with `satchel keygen`"
            ),
        };
        if self
            .data_key
            .as_ref()
            .is_some_and(|secret| secret.as_bytes().len() < MIN_DATA_KEY_LEN)
        {
            return Err(short("SESSION_DATA_KEY"));
        }
        if self
            .data_key_fallbacks
            .iter()
            .any(|secret| secret.as_bytes().len() < MIN_DATA_KEY_LEN)
        {
            return Err(short("SESSION_DATA_KEY_FALLBACKS"));
        }
        if self.data_key.is_none() && !self.data_key_fallbacks.is_empty() {
            return Err(ConfigError::Conflict(
                "SESSION_DATA_KEY_FALLBACKS is set but SESSION_DATA_KEY is not: the \
                 fallbacks only open values sealed before a rotation, set the new key too"
                    .to_owned(),
            ));
        }
        if self.data_key.is_some() && !cfg!(feature = "sealed") {
            return Err(ConfigError::Conflict(
                "SESSION_DATA_KEY is set but satchel was built without its `sealed` \
                 feature: enable the feature or unset SESSION_DATA_KEY"
                    .to_owned(),
            ));
        }
        Ok(())
    }
}

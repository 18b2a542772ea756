//! The sources of settings: the environment, TOML text and files, and single keys.

use std::ffi::OsString;
use std::path::Path;

use super::parse::{Raw, describe, toml_error_message};
use super::{ALIASES, KEYS, SessionConfig, unknown_in_environment};
use crate::error::ConfigError;

/// Logs a warning for each environment variable that looks like a setting but is not
/// one (see [`unknown_setting`]): a misspelt key would otherwise be ignored in silence.
fn warn_of_unknown_variables() {
    for unknown in unknown_in_environment() {
        tracing::warn!("ignored: {unknown}");
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
    pub(super) fn load_with(
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
    pub(super) fn overlay_env(
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
    pub(super) fn overlay_toml_file(self, path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::File {
            path: path.display().to_string(),
            message: error.to_string(),
        })?;
        self.overlay_toml(&text, &path.display().to_string())
    }

    /// Overlays the keys of TOML text; `source` names it in errors.
    pub(super) fn overlay_toml(mut self, text: &str, source: &str) -> Result<Self, ConfigError> {
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
}

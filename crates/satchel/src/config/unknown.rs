//! Names that look like settings but are not: misspelt keys, and Flask-Session keys that
//! Satchel does not offer. A misspelt `SESION_TYPE=redis` or
//! `SESSION_COOKIE_SECURED=true` would otherwise be ignored in silence, and the
//! application would start with the default store or insecure cookies.

use std::fmt;

use super::{ALIASES, KEYS};

/// Flask-Session keys Satchel does not offer, with what to do instead.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "SESSION_ID_LENGTH",
        "Satchel's ids are always 32 random bytes (43 characters, what Flask-Session's default gives); the length is not configurable",
    ),
    (
        "SESSION_SERIALIZATION_FORMAT",
        "Satchel keeps values as JSON in each store's own layout; there is no format to choose",
    ),
    (
        "SESSION_CLEANUP_N_REQUESTS",
        "use SESSION_SQL_CLEANUP_INTERVAL (a background task) or the `satchel cleanup` command",
    ),
    (
        "SESSION_CACHELIB",
        "choose the store with SESSION_TYPE (filesystem, redis, memcached, ...)",
    ),
    (
        "SESSION_DYNAMODB",
        "DynamoDB is not a Satchel store: choose another SESSION_TYPE",
    ),
    (
        "SESSION_DYNAMODB_TABLE",
        "DynamoDB is not a Satchel store: choose another SESSION_TYPE",
    ),
    (
        "SESSION_DYNAMODB_TABLE_EXISTS",
        "DynamoDB is not a Satchel store: choose another SESSION_TYPE",
    ),
    (
        "SESSION_SQLALCHEMY_SCHEMA",
        "name the database in SESSION_SQL_URL and the table in SESSION_SQLALCHEMY_TABLE",
    ),
    (
        "SESSION_SQLALCHEMY_BIND_KEY",
        "name the database in SESSION_SQL_URL",
    ),
    (
        "SESSION_SQLALCHEMY_SEQUENCE",
        "the SQL table's key is the session id; no sequence is used",
    ),
    (
        "SESSION_COOKIE_PARTITIONED",
        "partitioned cookies are not supported",
    ),
];

/// Variables of other programs whose names look like Satchel's.
const FOREIGN: &[&str] = &["SESSION_MANAGER"];

/// A name that looks like a setting but is not one, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSetting {
    /// The name as found.
    pub name: String,
    /// What to do: the key it probably means, or what to use instead.
    pub hint: String,
}

impl fmt::Display for UnknownSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is not a Satchel setting: {}", self.name, self.hint)
    }
}

/// Whether `name` is a key or an alias.
fn is_known(name: &str) -> bool {
    KEYS.contains(&name) || ALIASES.iter().any(|(alias, _)| *alias == name)
}

/// The key `name` most probably means: the nearest by edit distance, when it is near
/// enough to be a slip (two edits, or one in five characters for long keys).
fn nearest(name: &str) -> Option<&'static str> {
    let upper = name.to_ascii_uppercase();
    KEYS.iter()
        .copied()
        .chain(ALIASES.iter().map(|(alias, _)| *alias))
        .map(|key| (strsim::levenshtein(&upper, key), key))
        .min()
        .filter(|(distance, key)| *distance <= (key.len() / 5).max(2))
        .map(|(_, key)| key)
}

/// What to say of `name` when it is given as a setting (a TOML key, or an environment
/// variable that looks like one): `None` for a known key, and for a name that is neither
/// near a key nor a Flask-Session key.
///
/// # Examples
///
/// ```
/// use satchel::config::unknown_setting;
///
/// let typo = unknown_setting("SESION_TYPE").expect("a slip");
/// assert!(typo.hint.contains("did you mean SESSION_TYPE?"), "{typo}");
/// assert!(unknown_setting("SESSION_ID_LENGTH").is_some());
/// assert!(unknown_setting("SESSION_TYPE").is_none());
/// assert!(unknown_setting("PATH").is_none());
/// ```
#[must_use]
pub fn unknown_setting(name: &str) -> Option<UnknownSetting> {
    if is_known(name) || FOREIGN.contains(&name) {
        return None;
    }
    let hint = if let Some((_, instead)) = UNSUPPORTED.iter().find(|(key, _)| *key == name) {
        format!("Flask-Session's key is not offered: {instead}")
    } else if let Some(key) = nearest(name) {
        format!("did you mean {key}?")
    } else if name.starts_with("SESSION_") {
        "no key of that name (see the configuration table in the README)".to_owned()
    } else {
        return None;
    };
    Some(UnknownSetting {
        name: name.to_owned(),
        hint,
    })
}

/// The environment variables that look like settings but are not (see
/// [`unknown_setting`]), in name order. Only names are read, never values.
#[must_use]
pub fn unknown_in_environment() -> Vec<UnknownSetting> {
    let mut found: Vec<UnknownSetting> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter_map(|name| unknown_setting(&name))
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn slips_of_every_kind_get_the_key_they_meant() {
        for (typo, key) in [
            ("SESION_TYPE", "SESSION_TYPE"),
            ("SESSOIN_TYPE", "SESSION_TYPE"),
            ("SESSION_COOKIE_SECURED", "SESSION_COOKIE_SECURE"),
            ("session_cookie_name", "SESSION_COOKIE_NAME"),
            ("PERMANENT_SESSION_LIFETIM", "PERMANENT_SESSION_LIFETIME"),
            ("SECRET_KEYS", "SECRET_KEY"),
            ("SESSION_SQLALCHEMY_TABEL", "SESSION_SQLALCHEMY_TABLE"),
        ] {
            let found = unknown_setting(typo).unwrap_or_else(|| panic!("{typo} not caught"));
            assert_eq!(found.hint, format!("did you mean {key}?"), "{typo}");
        }
    }

    #[test]
    fn flask_session_keys_say_what_to_use_instead() {
        let found = unknown_setting("SESSION_CLEANUP_N_REQUESTS").unwrap();
        assert!(
            found.hint.contains("SESSION_SQL_CLEANUP_INTERVAL"),
            "{found}"
        );
        for (key, _) in UNSUPPORTED {
            assert!(!is_known(key), "{key} is a key after all");
            assert!(
                unknown_setting(key)
                    .unwrap()
                    .hint
                    .starts_with("Flask-Session")
            );
        }
    }

    #[test]
    fn other_programs_variables_are_left_alone() {
        for name in [
            "PATH",
            "HOME",
            "XDG_SESSION_TYPE",
            "XDG_SESSION_ID",
            "SESSION_MANAGER",
            "RUST_LOG",
            "TOKIO_WORKER_THREADS",
            "SECRET_KEY_BASE",
            "DATABASE_URL",
        ] {
            assert_eq!(unknown_setting(name), None, "{name}");
        }
        for key in KEYS {
            assert_eq!(unknown_setting(key), None, "{key}");
        }
        let odd = unknown_setting("SESSION_WHATEVER").unwrap();
        assert!(odd.hint.contains("no key of that name"), "{odd}");
    }
}

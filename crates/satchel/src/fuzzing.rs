//! Entry points of the fuzz targets in `fuzz/`, and of the replay of their saved corpus
//! in the tests: each feeds arbitrary bytes to one parser that sees input Satchel does not
//! control (a client's cookies, a stored record, a configuration value) and checks what
//! must hold whatever the bytes. Not part of the API: only the `fuzzing` feature builds
//! it.

use crate::config::{KEYS, SessionConfig};
use crate::id::SessionId;

/// A fuzz target: arbitrary bytes in, a panic when something that must hold does not.
pub type Target = fn(&[u8]);

/// Every target, by the name of its directory under `fuzz/corpus/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("cookie_header", cookie_header),
    ("session_id", session_id),
    #[cfg(feature = "signed")]
    ("signed_value", signed_value),
    #[cfg(feature = "filesystem")]
    ("filesystem_record", filesystem_record),
    #[cfg(feature = "memcached")]
    ("memcached_record", memcached_record),
    #[cfg(feature = "_sql")]
    ("sql_row", sql_row),
    #[cfg(feature = "redis")]
    ("redis_value", redis_value),
    #[cfg(feature = "mongodb")]
    ("mongodb_document", mongodb_document),
    #[cfg(feature = "sealed")]
    ("sealed_value", sealed_value),
    #[cfg(feature = "cookie")]
    ("cookie_value", cookie_value),
    #[cfg(feature = "flask")]
    ("flask_value", flask_value),
    #[cfg(feature = "flask")]
    ("flask_pickle", flask_pickle),
    ("env_value", env_value),
    ("toml_config", toml_config),
];

/// A `Cookie` header: every value of the session cookie is a slice of the header.
pub fn cookie_header(data: &[u8]) {
    for value in crate::cookie::values(data, "session") {
        assert!(value.len() <= data.len());
    }
}

/// A session id: only the canonical text of an id parses, and it prints back the same.
pub fn session_id(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(id) = text.parse::<SessionId>()
    {
        assert_eq!(id.to_string(), text);
    }
}

/// A signed cookie value: only the value Satchel would make for an id verifies.
#[cfg(feature = "signed")]
pub fn signed_value(data: &[u8]) {
    use crate::signing::{Key, Signer};

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let signer = Signer::new(Key::derive(b"fuzzing key"), [Key::derive(b"older key")]);
    if let Some((id, _)) = signer.verify("session", text) {
        let current = signer.sign("session", &id);
        let older = Signer::new(Key::derive(b"older key"), []).sign("session", &id);
        assert!(text == current || text == older, "{text:?} verified");
    }
}

/// A session file of the filesystem store.
#[cfg(feature = "filesystem")]
pub fn filesystem_record(data: &[u8]) {
    crate::store::filesystem::fuzz(data);
}

/// An item of the memcached store.
#[cfg(feature = "memcached")]
pub fn memcached_record(data: &[u8]) {
    crate::store::memcached::fuzz(data);
}

/// A row of the SQL stores.
#[cfg(feature = "_sql")]
pub fn sql_row(data: &[u8]) {
    crate::store::sql::fuzz(data);
}

/// A session value of the Redis store, as `GET` returns it.
#[cfg(feature = "redis")]
pub fn redis_value(data: &[u8]) {
    crate::store::redis::fuzz(data);
}

/// A document of the MongoDB store.
#[cfg(feature = "mongodb")]
pub fn mongodb_document(data: &[u8]) {
    crate::store::mongodb::fuzz(data);
}

/// A sealed session value as a store gives it back (SESSION_DATA_KEY): opened only when
/// Satchel sealed it, and then to a value whose JSON text round-trips.
#[cfg(feature = "sealed")]
pub fn sealed_value(data: &[u8]) {
    crate::store::sealed::fuzz(data);
}

/// A value from the environment for one key (chosen by the first byte): parsed or
/// refused with an error that names the key.
pub fn env_value(data: &[u8]) {
    let Some((&choice, value)) = data.split_first() else {
        return;
    };
    let key = KEYS[usize::from(choice) % KEYS.len()];
    let Ok(value) = std::str::from_utf8(value) else {
        return;
    };
    if let Err(error) = SessionConfig::default().apply(key, value) {
        let message = error.to_string();
        assert!(message.contains(key), "{message}");
    }
}

/// A configuration file: parsed, or refused with an error.
pub fn toml_config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = SessionConfig::from_toml_str(text);
    }
}

/// A cookie of the cookie store (SESSION_TYPE=cookie), as a client sends it.
#[cfg(feature = "cookie")]
pub fn cookie_value(data: &[u8]) {
    crate::store::cookie::fuzz(data);
}

/// A session value as Flask-Session 0.7/0.8 stores it (msgpack), as a shared store gives
/// it back.
#[cfg(feature = "flask")]
pub fn flask_value(data: &[u8]) {
    crate::flask::msgpack::fuzz(data);
}

/// A session value as Flask-Session 0.6 and earlier and Flask Unchained store it (a
/// pickled dict), as a shared store gives it back.
#[cfg(feature = "flask")]
pub fn flask_pickle(data: &[u8]) {
    crate::flask::pickle::fuzz(data);
}

//! Tests of the settings: sources, parsing, validation and how values are shown.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use crate::error::ConfigError;

use super::parse::*;
use super::settings::*;
use super::*;
use crate::support::redact_url;

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

/// A data key long enough for SESSION_DATA_KEY, and an older one.
const DATA_KEY: &str = "a data key of thirty-two bytes or more";
const OLD_DATA_KEY: &str = "an older data key of 32 bytes or more";

#[test]
fn data_keys_must_be_long_and_fallbacks_need_a_key() {
    let short = SessionConfig::default().with_data_key("short");
    let message = short.validate().unwrap_err().to_string();
    assert!(
        message.contains("SESSION_DATA_KEY") && message.contains("32 bytes"),
        "{message}"
    );
    assert!(
        !message.contains("short"),
        "the secret is not printed: {message}"
    );
    let short_fallback = SessionConfig::default()
        .with_data_key(DATA_KEY)
        .with_data_key_fallbacks(["short"]);
    let message = short_fallback.validate().unwrap_err().to_string();
    assert!(message.contains("SESSION_DATA_KEY_FALLBACKS"), "{message}");
    let orphan = SessionConfig::default().with_data_key_fallbacks([OLD_DATA_KEY]);
    let message = orphan.validate().unwrap_err().to_string();
    assert!(message.contains("SESSION_DATA_KEY is not"), "{message}");
    let shown = format!("{:?}", SessionConfig::default().with_data_key(DATA_KEY));
    assert!(!shown.contains(DATA_KEY), "{shown}");
    let ok = SessionConfig::default()
        .with_data_key(DATA_KEY)
        .with_data_key_fallbacks([OLD_DATA_KEY]);
    assert_eq!(ok.validate().is_ok(), cfg!(feature = "sealed"));
}

#[test]
fn flask_compat_needs_a_shared_store_raw_ids_and_clear_values() {
    let shared = SessionConfig::default()
        .with_session_type(SessionType::Redis)
        .with_hash_ids(false)
        .with_flask_compat(FlaskCompat::Msgpack);
    assert_eq!(shared.validate().is_ok(), cfg!(feature = "flask"));
    if !cfg!(feature = "flask") {
        return;
    }
    let cases = [
        (shared.clone().with_hash_ids(true), "SESSION_HASH_IDS=false"),
        (
            shared.clone().with_session_type(SessionType::Filesystem),
            "SESSION_TYPE=filesystem",
        ),
        (shared.with_data_key(DATA_KEY), "unset SESSION_DATA_KEY"),
    ];
    for (config, says) in cases {
        let message = config.validate().unwrap_err().to_string();
        assert!(
            message.contains("SESSION_FLASK_COMPAT") && message.contains(says),
            "{message}"
        );
    }
    let from_toml = SessionConfig::from_toml_str(
        "SESSION_TYPE = \"redis\"\nSESSION_HASH_IDS = false\nSESSION_FLASK_COMPAT = true",
    )
    .unwrap();
    assert_eq!(from_toml.flask_compat(), FlaskCompat::Msgpack);
    let wrong = SessionConfig::default().apply("SESSION_FLASK_COMPAT", "0.5");
    assert!(wrong.unwrap_err().to_string().contains("pickle"));
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
        ("SESSION_ABSOLUTE_LIFETIME", "12h"),
        ("SESSION_REFRESH_EACH_REQUEST", "no"),
        ("SESSION_PERMANENT", "off"),
        ("SESSION_USE_SIGNER", "1"),
        ("SESSION_MAX_PER_USER", "5"),
        ("SECRET_KEY", SECRET),
        ("SECRET_KEY_FALLBACKS", "old-one, older-one"),
        ("SESSION_DATA_KEY", DATA_KEY),
        ("SESSION_DATA_KEY_FALLBACKS", OLD_DATA_KEY),
        ("SESSION_KEY_PREFIX", "shop:"),
        ("SESSION_HASH_IDS", "off"),
        ("SESSION_HASH_IDS_MIGRATE", "yes"),
        ("SESSION_FLASK_COMPAT", "Pickle"),
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
        ("SESSION_STORE_FAILURE", "Unavailable"),
        ("SESSION_BREAKER_FAILURES", "0"),
        ("SESSION_BREAKER_COOLDOWN", "10s"),
        ("SESSION_MAX_SIZE", "64KiB"),
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
    assert_eq!(config.data_key().unwrap().as_bytes(), DATA_KEY.as_bytes());
    assert_eq!(config.data_key_fallbacks(), [Secret::from(OLD_DATA_KEY)]);
    assert_eq!(config.key_prefix(), "shop:");
    assert!(!config.hash_ids());
    assert!(config.hash_ids_migrate());
    assert_eq!(config.flask_compat(), FlaskCompat::Pickle);
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
    assert_eq!(
        config.sql_cleanup_interval(),
        Some(Duration::from_secs(300))
    );
    assert_eq!(config.store_timeout(), Duration::from_secs(3));
    assert_eq!(config.store_failure(), FailurePolicy::Unavailable);
    assert_eq!(config.breaker_failures(), 0);
    assert_eq!(config.breaker_cooldown(), Duration::from_secs(10));
    assert_eq!(config.max_size(), 64 * 1024);
}

#[test]
fn entries_list_every_key_in_order() {
    let config = SessionConfig::default();
    let keys: Vec<&str> = config.entries().iter().map(|(key, _)| *key).collect();
    assert_eq!(keys, KEYS);
}

#[test]
fn entries_show_effective_values() {
    let entries: HashMap<&str, String> = SessionConfig::default().entries().into_iter().collect();
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
fn failure_settings_parse_and_refuse_what_they_cannot_take() {
    for policy in [
        FailurePolicy::Error,
        FailurePolicy::Unavailable,
        FailurePolicy::Anonymous,
    ] {
        let config = SessionConfig::default()
            .apply("SESSION_STORE_FAILURE", &policy.as_str().to_uppercase())
            .unwrap();
        assert_eq!(config.store_failure(), policy);
    }
    for (key, value) in [
        ("SESSION_STORE_FAILURE", "retry"),
        ("SESSION_STORE_FAILURE", ""),
        ("SESSION_BREAKER_FAILURES", "-1"),
        ("SESSION_BREAKER_FAILURES", "five"),
        ("SESSION_BREAKER_COOLDOWN", "0"),
        ("SESSION_BREAKER_COOLDOWN", "soon"),
        ("SESSION_MAX_SIZE", "-1"),
        ("SESSION_MAX_SIZE", "big"),
        ("SESSION_MAX_SIZE", "256KB"),
        ("SESSION_MAX_SIZE", "1.5MiB"),
        ("SESSION_MAX_SIZE", "99999999999999999999"),
    ] {
        let error = SessionConfig::default().apply(key, value).unwrap_err();
        assert_eq!(invalid_key(&error), key, "{value:?}");
        assert!(error.to_string().contains(value), "{error}");
    }
    let config = SessionConfig::default()
        .apply("SESSION_BREAKER_FAILURES", " 12 ")
        .unwrap();
    assert_eq!(config.breaker_failures(), 12);
    for (text, bytes) in [
        ("0", 0),
        (" 262144 ", 262_144),
        ("256KiB", 262_144),
        ("256 kib", 262_144),
        ("1MiB", 1_048_576),
        ("512B", 512),
    ] {
        let config = SessionConfig::default()
            .apply("SESSION_MAX_SIZE", text)
            .unwrap();
        assert_eq!(config.max_size(), bytes, "{text:?}");
    }
    assert_eq!(SessionConfig::default().max_size(), 262_144);
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
        ("cookie", SessionType::Cookie),
    ];
    for (text, expected) in cases {
        assert_eq!(text.parse::<SessionType>().unwrap(), expected, "{text:?}");
    }
    let error = "dynamodb".parse::<SessionType>().unwrap_err();
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
        SessionType::Cookie,
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
            "sqlalchemy",
            "cookie"
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
    let error = SessionConfig::from_toml_str("[session]\nSESSION_TYPE = \"memory\"\n").unwrap_err();
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
    let error = SessionConfig::from_toml_str("SESSION_TYPE = \"memory\"\nSESSION_COOKIE_NAME = ")
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
    let error = SessionConfig::load_with(None, env(&[("SESSION_USE_SIGNER", "true")])).unwrap_err();
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

/// The rows of the Markdown table that follows `header` in `text` (lines of `prefix`).
fn table_rows(text: &str, prefix: &str, header: &str) -> Vec<String> {
    let lines: Vec<&str> = text
        .lines()
        .map(|line| line.strip_prefix(prefix).unwrap_or(line).trim_start())
        .collect();
    let start = lines
        .iter()
        .position(|line| *line == header)
        .unwrap_or_else(|| panic!("no table headed {header:?}"));
    lines[start + 2..]
        .iter()
        .take_while(|line| line.starts_with('|'))
        .map(|line| (*line).to_owned())
        .collect()
}

/// Both configuration tables (the README's and this module's documentation) say what
/// `SETTINGS` says, row for row: every key, its default and its meaning.
#[test]
fn the_documented_tables_are_the_settings_table() {
    let expected: Vec<String> = SETTINGS.iter().map(Setting::table_row).collect();
    let readme = include_str!("../../../../README.md");
    let module = include_str!("mod.rs");
    for (name, rows) in [
        (
            "README.md",
            table_rows(readme, "", "| Key | Default | Meaning |"),
        ),
        (
            "config/mod.rs",
            table_rows(module, "//!", "| Key | Default | Meaning |"),
        ),
    ] {
        assert!(
            rows == expected,
            "the configuration table of {name} differs from SETTINGS; it should read:\n\
             | Key | Default | Meaning |\n| --- | --- | --- |\n{}",
            expected.join("\n")
        );
    }
}

/// Each documented default is the value `SessionConfig::default()` holds.
#[test]
fn documented_defaults_are_the_defaults() {
    let config = SessionConfig::default();
    for setting in SETTINGS {
        let shown = setting.shown(&config);
        let default = setting.default;
        let literal = default.split('`').nth(1).filter(|_| default.contains('`'));
        let agrees = match (default.starts_with("unset"), literal) {
            (true, None) => shown == "<unset>" || shown == "<0 keys>",
            (true, Some(value)) => shown == value || shown == format!("<unset: {value}>"),
            (false, Some(value)) => shown == value,
            (false, None) => false,
        };
        assert!(
            agrees,
            "{}: documented {default:?}, holds {shown:?}",
            setting.key
        );
    }
}

/// The migration to hashed ids needs signed cookies: unsigned, a client could present a
/// stored key as its cookie and have the migration move that session to it.
#[test]
fn migrating_to_hashed_ids_needs_signed_cookies() {
    let migrating = SessionConfig::default().with_hash_ids_migrate(true);
    let error = migrating.validate().unwrap_err().to_string();
    assert!(error.contains("SESSION_USE_SIGNER"), "{error}");
    let signed = migrating
        .with_use_signer(true)
        .with_secret_key("a long, random and secret application key");
    assert!(signed.validate().is_ok());
    // With hashing off there is nothing to migrate, and nothing to refuse.
    assert!(
        SessionConfig::default()
            .with_hash_ids(false)
            .with_hash_ids_migrate(true)
            .validate()
            .is_ok()
    );
}

/// SESSION_TYPE=cookie seals sessions with SECRET_KEY: refused without one, or with a key
/// (or a fallback) shorter than 32 bytes, since whoever guesses it writes any session.
#[test]
fn the_cookie_store_needs_a_long_secret_key() {
    let cookie = SessionConfig::default().with_session_type(SessionType::Cookie);
    let missing = cookie.validate().unwrap_err().to_string();
    assert!(
        missing.contains("SECRET_KEY") && missing.contains("keygen"),
        "{missing}"
    );
    let short = cookie
        .clone()
        .with_secret_key("dev")
        .validate()
        .unwrap_err();
    assert!(short.to_string().contains("32 bytes"), "{short}");
    let long = cookie.with_secret_key("0123456789abcdef0123456789abcdef");
    assert!(long.validate().is_ok());
    let short_fallback = long.with_secret_key_fallbacks(["old"]).validate();
    assert!(short_fallback.is_err());
}

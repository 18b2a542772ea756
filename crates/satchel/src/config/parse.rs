//! Parsing of raw values (environment strings and TOML values) into the types of the
//! settings, the expected-value texts of errors, and the lifetime format.

use std::time::Duration;

use super::settings::{Exposure, setting};
use super::{MAX_LIFETIME, Secret};
use crate::error::ConfigError;
use crate::support::redact_url;

/// Shown instead of a secret's value.
pub(super) const REDACTED: &str = "<redacted>";

pub(super) const EXPECTED_BOOL: &str = "one of true, false, 1, 0, yes, no, on, off (any case)";
pub(super) const EXPECTED_LIFETIME: &str = "a positive number of seconds (e.g. 2678400) or a duration \
     made of number+unit parts with units w, d, h, m, s (e.g. 31d, 12h, 90m, 45s, 1d12h, 2w), \
     at most 100 years";
pub(super) const EXPECTED_FILE_MODE: &str =
    "an octal file mode from 0 to 777, written 600, 0600 or 0o600 (digits 0-7 only)";
pub(super) const EXPECTED_FILE_MODE_TOML: &str = "an octal file mode from 0 to 0o777: in TOML an integer \
     is decimal, so write 0o600 or the string \"600\"";
pub(super) const EXPECTED_COUNT: &str = "a positive whole number";
pub(super) const EXPECTED_BYTE_SIZE: &str = "a whole number of bytes, optionally followed by \
     KiB or MiB (e.g. 262144, 256KiB, 1MiB); 0 for no limit";
pub(super) const EXPECTED_STRING: &str = "a string";
pub(super) const EXPECTED_SECRETS: &str =
    "non-empty secrets separated by commas (in TOML: a string or an array of strings)";
pub(super) const EXPECTED_SESSION_TYPE: &str =
    "one of null, memory, filesystem, redis, memcached, mongodb, sqlalchemy (or sql), cookie";
pub(super) const EXPECTED_FAILURE_POLICY: &str = "one of error, unavailable, anonymous";

pub(super) const EXPECTED_FLASK_COMPAT: &str = "true (Flask-Session 0.7 and 0.8: msgpack), pickle (Flask-Session 0.6 and Flask Unchained) or false";

pub(super) const EXPECTED_SAME_SITE: &str =
    "one of Lax, Strict, None (any case), or empty to leave it unset";

/// A value for one key before it is parsed: the string form (environment, CLI, TOML
/// strings) or one of the other TOML types. Environment and TOML share the parsing
/// through [`SessionConfig::set`].
#[derive(Debug)]
pub(super) enum Raw<'a> {
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
    pub(super) fn from_toml(value: &'a toml::Value) -> Self {
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

/// Whether a value given for `key` must never be shown.
pub(super) fn is_secret(key: &str) -> bool {
    setting(key).is_some_and(|setting| setting.exposure == Exposure::Secret)
}

/// The value as shown in an error message: `<redacted>` for secrets, URL passwords masked.
pub(super) fn describe(key: &str, raw: &Raw<'_>) -> String {
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
pub(super) fn invalid(key: &str, raw: &Raw<'_>, expected: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        value: describe(key, raw),
        expected: expected.to_owned(),
    }
}

/// An [`ConfigError::Invalid`] for a value already in display form (never a secret).
pub(super) fn invalid_value(key: &str, value: &str, expected: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        value: value.to_owned(),
        expected: expected.to_owned(),
    }
}

/// A string value, taken as given.
pub(super) fn text<'a>(key: &str, raw: &Raw<'a>) -> Result<&'a str, ConfigError> {
    match raw {
        Raw::Text(text) => Ok(text),
        _ => Err(invalid(key, raw, EXPECTED_STRING)),
    }
}

/// A string value of an optional key; empty means unset.
pub(super) fn optional_text(key: &str, raw: &Raw<'_>) -> Result<Option<String>, ConfigError> {
    let value = text(key, raw)?;
    Ok((!value.is_empty()).then(|| value.to_owned()))
}

/// A boolean: a TOML boolean, the integers 0 and 1, or one of the words of
/// [`EXPECTED_BOOL`].
pub(super) fn boolean(key: &str, raw: &Raw<'_>) -> Result<bool, ConfigError> {
    match raw {
        Raw::Bool(flag) => Ok(*flag),
        Raw::Integer(1) => Ok(true),
        Raw::Integer(0) => Ok(false),
        Raw::Text(text) => parse_bool(text).ok_or_else(|| invalid(key, raw, EXPECTED_BOOL)),
        _ => Err(invalid(key, raw, EXPECTED_BOOL)),
    }
}

pub(super) fn parse_bool(text: &str) -> Option<bool> {
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
pub(super) fn count(key: &str, raw: &Raw<'_>) -> Result<usize, ConfigError> {
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

/// A size in bytes (`SESSION_MAX_SIZE`): a TOML integer, or text of digits with an
/// optional `KiB` or `MiB` (any case, spaces allowed before it). `0` is accepted.
pub(super) fn byte_size(key: &str, raw: &Raw<'_>) -> Result<usize, ConfigError> {
    let bytes = match raw {
        Raw::Integer(number) => usize::try_from(*number).ok(),
        Raw::Text(text) => {
            let text = text.trim();
            let digits = text.bytes().take_while(u8::is_ascii_digit).count();
            let (number, unit) = text.split_at(digits);
            let scale = match unit.trim_start().to_ascii_lowercase().as_str() {
                "" | "b" => Some(1),
                "kib" => Some(1024),
                "mib" => Some(1024 * 1024),
                _ => None,
            };
            scale.and_then(|scale| {
                number
                    .parse::<usize>()
                    .ok()
                    .and_then(|number| number.checked_mul(scale))
            })
        }
        _ => None,
    };
    bytes.ok_or_else(|| invalid(key, raw, EXPECTED_BYTE_SIZE))
}

/// `PERMANENT_SESSION_LIFETIME`: seconds as a TOML integer, or text for
/// [`parse_lifetime`].
pub(super) fn lifetime(key: &str, raw: &Raw<'_>) -> Result<Duration, ConfigError> {
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
pub(super) fn parse_lifetime(text: &str) -> Option<Duration> {
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
pub(super) fn format_lifetime(lifetime: Duration) -> String {
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
pub(super) fn file_mode(key: &str, raw: &Raw<'_>) -> Result<u32, ConfigError> {
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

pub(super) fn parse_octal_mode(text: &str) -> Option<u32> {
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
pub(super) fn secrets(key: &str, raw: &Raw<'_>) -> Result<Vec<Secret>, ConfigError> {
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
pub(super) fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&byte)
}

/// A TOML parse error as one line: the parser's message and where, without quoting the
/// file (which may hold a secret).
pub(super) fn toml_error_message(text: &str, error: &toml::de::Error) -> String {
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

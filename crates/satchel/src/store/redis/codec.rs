//! The layout of a session value: a fixed-width header that the scripts read and rewrite
//! in place, then the data as one JSON object with each key on a line of its own.
//!
//! ```text
//! s1 0001767225600000 0000000021 1 0001764547200000 --------------------
//! {
//! "user":"ada",
//! "cart":[1,2]}
//! ```
//!
//! (Shown with spaces between the header's fields and without the newline of the first
//! entry's line break; the header has no separators.) Byte offsets, from 0:
//!
//! | bytes | field |
//! | --- | --- |
//! | 0..2 | `s1`, the layout's tag |
//! | 2..18 | the expiry, Unix milliseconds, 16 digits |
//! | 18..28 | the data's size as [`stored_size`] measures it, 10 digits |
//! | 28 | the permanent flag: `1`, `0`, or `-` when the session has none of its own |
//! | 29..45 | the creation time, Unix milliseconds, 16 digits, or 16 `-` when unknown |
//! | 45..65 | the session's own lifetime in seconds, 20 digits, or 20 `-` when unset |
//! | 65.. | the data: `{`, then each key as `\n"key":value` (JSON texts), separated by `,`, then `}` |
//!
//! Compact JSON never holds a raw line break (one inside a string is escaped), so a line
//! break in the data always starts an entry: a script finds a key by searching for
//! `\n"key":` and edits one entry without decoding the others, and Satchel reads the whole
//! data with one JSON parse.
//!
//! [`stored_size`]: crate::record::stored_size

use std::time::{Duration, SystemTime};

use crate::error::StoreError;
use crate::record::{Data, Meta, Record};
use crate::support::{from_unix_millis, unix_millis};

/// The length of the header, where the data starts.
pub(super) const HEADER: usize = 65;
/// The layout's tag, the first bytes of every value.
const TAG: &[u8] = b"s1";
/// Expiry times are sent as milliseconds and compared in Lua, whose numbers are doubles:
/// anything later is clamped to the largest exact integer (a date in the year 287396),
/// which also fits the header's 16 digits.
const MAX_MILLIS: u64 = (1 << 53) - 1;

/// Unix milliseconds of `at` (0 before 1970), clamped to what the scripts compare exactly.
pub(super) fn millis(at: SystemTime) -> u64 {
    unix_millis(at).min(MAX_MILLIS)
}

/// The header's text of a time: 16 digits of Unix milliseconds.
pub(super) fn time_text(at: SystemTime) -> String {
    format!("{:016}", millis(at))
}

/// The header's text of the permanent flag.
pub(super) fn permanent_text(permanent: Option<bool>) -> &'static str {
    match permanent {
        Some(true) => "1",
        Some(false) => "0",
        None => "-",
    }
}

/// The header's text of a session's own lifetime: 20 digits of seconds, or 20 `-`.
pub(super) fn lifetime_text(lifetime: Option<Duration>) -> String {
    lifetime.map_or_else(
        || "-".repeat(20),
        |lifetime| format!("{:020}", lifetime.as_secs()),
    )
}

/// The JSON text of a session key, as it appears in the data.
pub(super) fn key_text(key: &str) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(key).map_err(StoreError::encode)
}

/// The JSON text of `value` for the update script; empty for an absent value.
pub(super) fn json_text(value: Option<&serde_json::Value>) -> Result<Vec<u8>, StoreError> {
    value.map_or_else(
        || Ok(Vec::new()),
        |value| serde_json::to_vec(value).map_err(StoreError::encode),
    )
}

/// Reads a stored value into a record.
pub(super) fn decode(value: &[u8]) -> Result<Record, StoreError> {
    let (Some(header), Some(body)) = (value.get(..HEADER), value.get(HEADER..)) else {
        return Err(StoreError::decode(
            "a session value shorter than its header",
        ));
    };
    if &header[..2] != TAG {
        return Err(StoreError::decode(
            "the session key holds a value of another layout",
        ));
    }
    let expires = digits(&header[2..18]).ok_or_else(|| malformed("expiry"))?;
    digits(&header[18..28]).ok_or_else(|| malformed("size"))?;
    let permanent = match header[28] {
        b'1' => Some(true),
        b'0' => Some(false),
        b'-' => None,
        _ => return Err(malformed("permanent flag")),
    };
    let created = optional(&header[29..45]).ok_or_else(|| malformed("creation time"))?;
    let lifetime = optional(&header[45..65]).ok_or_else(|| malformed("lifetime"))?;
    // Checked as UTF-8 once, whole: parsed from bytes, the JSON parser would check each
    // string it meets on its own, at several times the cost.
    let body = std::str::from_utf8(body).map_err(StoreError::decode)?;
    let data: Data = serde_json::from_str(body).map_err(StoreError::decode)?;
    let meta = Meta {
        permanent,
        created: created.map(from_unix_millis),
        lifetime: lifetime.map(Duration::from_secs),
    };
    Ok(Record::from_parts(
        data,
        from_unix_millis(expires),
        meta,
        None,
    ))
}

fn malformed(field: &str) -> StoreError {
    StoreError::decode(format!("malformed {field} in a session value's header"))
}

/// A fixed-width decimal number.
fn digits(text: &[u8]) -> Option<u64> {
    text.iter().try_fold(0u64, |number, &byte| {
        byte.is_ascii_digit()
            .then(|| number.checked_mul(10)?.checked_add(u64::from(byte - b'0')))
            .flatten()
    })
}

/// A fixed-width decimal number, or `None` inside when the field is all `-`.
fn optional(text: &[u8]) -> Option<Option<u64>> {
    if text.iter().all(|&byte| byte == b'-') {
        Some(None)
    } else {
        digits(text).map(Some)
    }
}

/// Decodes arbitrary bytes as a stored value (fuzzing).
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz(bytes: &[u8]) {
    let _ = decode(bytes);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    fn header(expires: &str, permanent: &str, created: &str, lifetime: &str) -> String {
        format!("s1{expires}0000000005{permanent}{created}{lifetime}")
    }

    fn plain() -> String {
        header("0000000000001000", "-", &"-".repeat(16), &"-".repeat(20))
    }

    #[test]
    fn a_value_decodes_with_its_header() {
        assert_eq!(plain().len(), HEADER);
        let record =
            decode(format!("{}{{\n\"a\":1,\n\"\\n\":\"x\"}}", plain()).as_bytes()).unwrap();
        assert_eq!(record.data.len(), 2);
        assert_eq!(record.data["\n"], serde_json::json!("x"));
        assert_eq!(record.expires_at, UNIX_EPOCH + Duration::from_secs(1));
        assert_eq!(
            (record.permanent, record.created, record.lifetime),
            (None, None, None)
        );
        let full = header(
            &time_text(UNIX_EPOCH + Duration::from_secs(2)),
            permanent_text(Some(true)),
            &time_text(UNIX_EPOCH + Duration::from_secs(3)),
            &lifetime_text(Some(Duration::from_secs(60))),
        );
        let record = decode(format!("{full}{{}}").as_bytes()).unwrap();
        assert!(record.data.is_empty());
        assert_eq!(record.permanent, Some(true));
        assert_eq!(record.created, Some(UNIX_EPOCH + Duration::from_secs(3)));
        assert_eq!(record.lifetime, Some(Duration::from_secs(60)));
    }

    #[test]
    fn corrupt_values_fail_to_decode() {
        let bad = |value: String| matches!(decode(value.as_bytes()), Err(StoreError::Decode(_)));
        let dashes = |n| "-".repeat(n);
        let digits = |n| "1".repeat(n);
        assert!(bad(String::new()));
        assert!(bad(plain()), "no data");
        assert!(bad(format!("{}{{not json", plain())));
        assert!(bad(format!("{}[1]", plain())));
        assert!(bad(format!("s2{}{{}}", &plain()[2..])));
        let fields = [
            header("000000000000x000", "-", &dashes(16), &dashes(20)),
            header("0000000000001000", "x", &dashes(16), &dashes(20)),
            header(
                "0000000000001000",
                "-",
                &format!("-{}", digits(15)),
                &dashes(20),
            ),
            header(
                "0000000000001000",
                "-",
                &dashes(16),
                &format!("{}-", digits(19)),
            ),
            header("0000000000001000", "-", &dashes(16), &"9".repeat(20)),
        ];
        for header in fields {
            assert_eq!(header.len(), HEADER);
            assert!(bad(format!("{header}{{}}")), "{header}");
        }
    }

    #[test]
    fn times_are_clamped_to_exact_milliseconds() {
        assert_eq!(millis(UNIX_EPOCH), 0);
        assert_eq!(millis(UNIX_EPOCH + Duration::from_millis(1_500)), 1_500);
        assert_eq!(
            millis(UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX) * 10_000)),
            MAX_MILLIS
        );
        assert_eq!(
            time_text(UNIX_EPOCH + Duration::from_secs(u64::MAX / 2)).len(),
            16
        );
    }
}

//! The layout of a session hash: the store's own fields, the field name of a session key,
//! times as Unix milliseconds, and the decoding of a hash into a record.

use std::time::{Duration, SystemTime};

use crate::error::StoreError;
use crate::record::{Data, Meta, Record};
use crate::support::{from_unix_millis, unix_millis};

/// The hash field holding the expiry, in Unix milliseconds.
pub(super) const EXPIRES_FIELD: &[u8] = b"\0expires";
/// The hash field holding the per-session permanent flag (`1` or `0`), when set.
pub(super) const PERMANENT_FIELD: &[u8] = b"\0permanent";
/// The hash field holding the session's creation time, in Unix milliseconds.
pub(super) const CREATED_FIELD: &[u8] = b"\0created";
/// The hash field holding the per-session lifetime in seconds, when set.
pub(super) const LIFETIME_FIELD: &[u8] = b"\0lifetime";
/// The marker the load script returns instead of fields when the key is not a hash.
const FOREIGN_FIELD: &[u8] = b"\0foreign";
/// Expiry times are sent as milliseconds and compared in Lua, whose numbers are doubles:
/// anything later is clamped to the largest exact integer (a date in the year 287396).
const MAX_MILLIS: u64 = (1 << 53) - 1;

/// The JSON text of `value` for the update script; empty for an absent value.
pub(super) fn json_text(value: Option<&serde_json::Value>) -> Result<Vec<u8>, StoreError> {
    value.map_or_else(
        || Ok(Vec::new()),
        |value| serde_json::to_vec(value).map_err(StoreError::encode),
    )
}

/// Unix milliseconds of `at` (0 before 1970), clamped to what the scripts compare exactly.
pub(super) fn millis(at: SystemTime) -> u64 {
    unix_millis(at).min(MAX_MILLIS)
}

/// The hash field of a session key: the key itself, with one more NUL in front when it
/// starts with a NUL (the store's own fields start with one).
pub(super) fn field_name(key: &str) -> Vec<u8> {
    let mut field = Vec::with_capacity(key.len() + 1);
    if key.starts_with('\0') {
        field.push(0);
    }
    field.extend_from_slice(key.as_bytes());
    field
}

/// Turns the load script's field/value pairs into a record.
pub(super) fn decode(fields: Vec<Vec<u8>>) -> Result<Record, StoreError> {
    if !fields.len().is_multiple_of(2) {
        return Err(StoreError::decode("odd number of fields in a session hash"));
    }
    let mut data = Data::new();
    let mut expires = None;
    let mut meta = Meta::default();
    let mut fields = fields.into_iter();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        match name.as_slice() {
            [0, 0, ..] => insert(&mut data, &name[1..], &value)?,
            FOREIGN_FIELD => {
                return Err(StoreError::decode(
                    "the session key holds another Redis type, not a hash",
                ));
            }
            EXPIRES_FIELD => {
                let at = number(&value, "malformed expiry in a session hash")?;
                expires = Some(from_unix_millis(at));
            }
            CREATED_FIELD => {
                let at = number(&value, "malformed creation time in a session hash")?;
                meta.created = Some(from_unix_millis(at));
            }
            LIFETIME_FIELD => {
                let seconds = number(&value, "malformed lifetime in a session hash")?;
                meta.lifetime = Some(Duration::from_secs(seconds));
            }
            PERMANENT_FIELD => {
                meta.permanent = Some(match value.as_slice() {
                    b"1" => true,
                    b"0" => false,
                    _ => {
                        return Err(StoreError::decode(
                            "malformed permanent flag in a session hash",
                        ));
                    }
                });
            }
            // Other fields of the store's own are ignored.
            [0, ..] => {}
            _ => insert(&mut data, &name, &value)?,
        }
    }
    let expires_at = expires.ok_or_else(|| StoreError::decode("session hash without an expiry"))?;
    Ok(Record::from_parts(data, expires_at, meta, None))
}

/// The unsigned decimal number a field of the store's own holds.
fn number(value: &[u8], malformed: &'static str) -> Result<u64, StoreError> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
        .ok_or_else(|| StoreError::decode(malformed))
}

/// Decodes one data field into `data`.
fn insert(data: &mut Data, name: &[u8], value: &[u8]) -> Result<(), StoreError> {
    let key = std::str::from_utf8(name)
        .map_err(|_| StoreError::decode("a session key stored in Redis is not UTF-8"))?;
    let value = serde_json::from_slice(value).map_err(StoreError::decode)?;
    data.insert(key.to_owned(), value);
    Ok(())
}

/// Decodes arbitrary bytes as the load script's reply: fields separated by `0xff` bytes
/// (fuzzing).
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz(bytes: &[u8]) {
    let fields = bytes
        .split(|&byte| byte == 0xff)
        .map(<[u8]>::to_vec)
        .collect();
    let _ = decode(fields);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn user_keys_never_collide_with_the_store_fields() {
        assert_eq!(field_name("user"), b"user");
        assert_eq!(field_name("\0expires"), b"\0\0expires");
        let fields = vec![
            field_name("\0expires"),
            b"1".to_vec(),
            EXPIRES_FIELD.to_vec(),
            b"1000".to_vec(),
            b"plain".to_vec(),
            b"\"x\"".to_vec(),
        ];
        let record = decode(fields).unwrap();
        assert_eq!(record.data.len(), 2);
        assert_eq!(record.data["\0expires"], serde_json::json!(1));
        assert_eq!(record.expires_at, UNIX_EPOCH + Duration::from_secs(1));
        assert_eq!(record.permanent, None);
    }

    #[test]
    fn corrupt_hashes_fail_to_decode() {
        let bad = |fields: &[&[u8]]| {
            matches!(
                decode(fields.iter().map(|f| f.to_vec()).collect()),
                Err(StoreError::Decode(_))
            )
        };
        assert!(bad(&[b"a", b"{not json", EXPIRES_FIELD, b"1"]));
        assert!(bad(&[b"a", b"1"]), "no expiry");
        assert!(bad(&[b"a", b"1", EXPIRES_FIELD, b"soon"]));
        assert!(bad(&[
            b"a",
            b"1",
            EXPIRES_FIELD,
            b"1",
            PERMANENT_FIELD,
            b"yes"
        ]));
        assert!(bad(&[FOREIGN_FIELD, b"string"]));
        assert!(bad(&[b"a"]));
        assert!(bad(&[b"\xff", b"1", EXPIRES_FIELD, b"1"]));
    }

    #[test]
    fn times_are_clamped_to_exact_milliseconds() {
        assert_eq!(millis(UNIX_EPOCH), 0);
        assert_eq!(millis(UNIX_EPOCH + Duration::from_millis(1_500)), 1_500);
        assert_eq!(
            millis(UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX) * 10_000)),
            MAX_MILLIS
        );
    }
}

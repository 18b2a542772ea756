//! How a session is held in its row: the key (prefix and id), the data column (the shared
//! versioned envelope of the data and the permanent flag), times as Unix milliseconds, and versions.

use std::time::{SystemTime, UNIX_EPOCH};

use super::OpenError;
use crate::error::StoreError;
use crate::id::{ID_LEN, SessionId};
use crate::record::{Data, Meta, Record};
use crate::store::Page;
use crate::store::envelope::{Envelope, EnvelopeRef};
use crate::support::{from_unix_millis, unix_millis};

/// Length of the `id` column: the key prefix and the id must fit.
const MAX_KEY_LEN: usize = 255;

/// A session row as read: `(data, expiry, version)`.
pub(super) type Row = (Vec<u8>, i64, i64);

/// A listed row: `(key, data, expiry, version)`.
pub(super) type KeyedRow = (String, Vec<u8>, i64, i64);

/// The page of `rows` a listing statement gave for `limit` rows: the rows whose key is
/// the prefix and an id (a row that does not decode is left out, as it would not
/// load), and the next page's cursor, the last key, when the page is full.
pub(super) fn page(rows: Vec<KeyedRow>, prefix: &str, limit: usize) -> Page {
    let next = (rows.len() >= limit)
        .then(|| rows.last().map(|(key, ..)| key.clone()))
        .flatten();
    let entries = rows
        .into_iter()
        .filter_map(|(key, data, expiry, version)| {
            let id: SessionId = key.strip_prefix(prefix)?.parse().ok()?;
            let record = record((data, expiry, version)).ok()?;
            Some((id, record))
        })
        .collect();
    Page::new(entries, next)
}

/// The data column: the [envelope](crate::store::envelope) of the data and the
/// session's own settings (permanent flag, creation time, lifetime).
pub(super) fn encode(data: &Data, meta: Meta) -> Result<Vec<u8>, StoreError> {
    EnvelopeRef::new(data, meta).encode()
}

/// The record a row holds.
pub(super) fn record((bytes, expiry, version): Row) -> Result<Record, StoreError> {
    let envelope = Envelope::decode(&bytes)?;
    let meta = envelope.meta();
    Ok(Record::from_parts(
        envelope.data,
        time(expiry),
        meta,
        Some(version.cast_unsigned()),
    ))
}

/// Unix milliseconds, saturating.
pub(super) fn millis(at: SystemTime) -> i64 {
    i64::try_from(unix_millis(at)).unwrap_or(i64::MAX)
}

/// The time of a stored millisecond count; a negative count is the epoch.
fn time(millis: i64) -> SystemTime {
    from_unix_millis(u64::try_from(millis).unwrap_or(0))
}

pub(super) fn now() -> i64 {
    millis(SystemTime::now())
}

/// The version of a new row: random, so that a row deleted and created again never
/// repeats a version a slow request may still hold.
pub(super) fn fresh_version() -> i64 {
    let random = getrandom::u64().unwrap_or_else(|_| {
        u64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
                & u128::from(u64::MAX),
        )
        .unwrap_or_default()
    });
    // Far from overflowing, whatever the number of writes.
    (random >> 2).cast_signed() + 1
}

/// The key of a session: the prefix and the id.
pub(super) fn key(prefix: &str, id: &SessionId) -> String {
    let mut key = String::with_capacity(prefix.len() + ID_LEN);
    key.push_str(prefix);
    id.encode_into(&mut key);
    key
}

/// Refuses a key prefix that leaves no room for the id.
pub(super) fn check_prefix(prefix: &str) -> Result<(), OpenError> {
    let max = MAX_KEY_LEN - ID_LEN;
    if prefix.len() > max {
        return Err(OpenError::KeyPrefixTooLong {
            len: prefix.len(),
            max,
        });
    }
    Ok(())
}

/// Decodes arbitrary bytes as a row: the expiry and the version in the first 16 bytes,
/// the data after them (fuzzing).
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz(bytes: &[u8]) {
    let number = |range: std::ops::Range<usize>| {
        bytes
            .get(range)
            .and_then(|slice| <[u8; 8]>::try_from(slice).ok())
            .map_or(0, i64::from_le_bytes)
    };
    let data = bytes.get(16..).unwrap_or_default().to_vec();
    let _ = record((data, number(0..8), number(8..16)));
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn times_and_versions_convert() {
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(time(millis(at)), at);
        assert_eq!(millis(UNIX_EPOCH - Duration::from_secs(1)), 0);
        assert_eq!(time(-5), UNIX_EPOCH);
        for _ in 0..100 {
            let version = fresh_version();
            assert!(version > 0 && version < i64::MAX / 2);
        }
        assert!(check_prefix(&"p".repeat(212)).is_ok());
        assert!(check_prefix(&"p".repeat(213)).is_err());
        assert_eq!(key("s:", &SessionId::generate()).len(), 45);
    }
}

//! The on-disk format of a session file: the shared versioned envelope with the session's
//! data, its permanent flag and a magic string (the expiry is the file's modification
//! time).

use std::fs::File;
use std::io::Read;
use std::time::SystemTime;

use crate::error::StoreError;
use crate::record::Record;
use crate::store::envelope::{Envelope, EnvelopeRef};

/// The first field of every session file.
pub(super) const MAGIC: &str = "satchel-session";
/// Why a file's content is not a session.
#[derive(Debug, thiserror::Error)]
enum FormatError {
    #[error("not a session file")]
    Foreign,
    #[error("session entry is not a regular file")]
    NotAFile,
}

/// Reads an open session file: `None` when it has expired at `now`.
pub(super) fn read_live(file: &File, now: SystemTime) -> Result<Option<Record>, StoreError> {
    let meta = file.metadata().map_err(StoreError::backend)?;
    if !meta.is_file() {
        return Err(StoreError::decode(FormatError::NotAFile));
    }
    let expires_at = meta.modified().map_err(StoreError::backend)?;
    if expires_at <= now {
        return Ok(None);
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    let mut reader = file;
    reader
        .read_to_end(&mut bytes)
        .map_err(StoreError::backend)?;
    decode(&bytes, expires_at).map(Some)
}

pub(super) fn encode(record: &Record) -> Result<Vec<u8>, StoreError> {
    EnvelopeRef {
        magic: Some(MAGIC),
        ..EnvelopeRef::new(&record.data, record.meta())
    }
    .encode()
}

fn decode(bytes: &[u8], expires_at: SystemTime) -> Result<Record, StoreError> {
    let envelope = Envelope::decode(bytes)?;
    if envelope.magic.as_deref() != Some(MAGIC) {
        return Err(StoreError::decode(FormatError::Foreign));
    }
    let meta = envelope.meta();
    Ok(Record::from_parts(envelope.data, expires_at, meta, None))
}

/// Decodes arbitrary bytes as a session file (fuzzing).
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz(bytes: &[u8]) {
    let _ = decode(bytes, SystemTime::UNIX_EPOCH);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::record::Data;
    use serde_json::json;

    use crate::store::filesystem::tests::in_a_minute;

    #[test]
    fn values_round_trip_through_messagepack() {
        let value = json!({
            "null": null,
            "flags": [true, false],
            "ints": [0, -1, i64::MIN, u64::MAX, 255, 65_536],
            "floats": [1.5, -0.25, 1.0, 1e300],
            "text": "héllo \u{1F600}",
            "nested": {"list": [[], {}, [{"deep": [1, "two", null]}]]},
        });
        let mut data = Data::new();
        data.insert("value".into(), value);
        data.insert("empty".into(), json!(""));
        let mut record = Record::new(data, in_a_minute());
        record.permanent = Some(false);
        let decoded = decode(&encode(&record).unwrap(), record.expires_at).unwrap();
        assert_eq!(decoded, record);
    }
}

//! The on-disk format of a session file: a small versioned MessagePack document with the
//! session's data and its permanent flag (the expiry is the file's modification time).

use std::fs::File;
use std::io::Read;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::record::{Data, Record};

/// The first field of every session file.
pub(super) const MAGIC: &str = "satchel-session";
/// The version of the session file format.
const FORMAT_VERSION: u32 = 1;

/// What a session file holds, as written.
#[derive(Serialize)]
struct BodyRef<'a> {
    magic: &'a str,
    version: u32,
    permanent: Option<bool>,
    data: &'a Data,
}

/// What a session file holds, as read.
#[derive(Deserialize)]
struct Body {
    magic: String,
    version: u32,
    permanent: Option<bool>,
    data: Data,
}

/// Why a file's content is not a session.
#[derive(Debug, thiserror::Error)]
enum FormatError {
    #[error("not a session file")]
    Foreign,
    #[error("unsupported session file version {0}")]
    Version(u32),
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
    rmp_serde::to_vec_named(&BodyRef {
        magic: MAGIC,
        version: FORMAT_VERSION,
        permanent: record.permanent,
        data: &record.data,
    })
    .map_err(StoreError::encode)
}

fn decode(bytes: &[u8], expires_at: SystemTime) -> Result<Record, StoreError> {
    let body: Body = rmp_serde::from_slice(bytes).map_err(StoreError::decode)?;
    if body.magic != MAGIC {
        return Err(StoreError::decode(FormatError::Foreign));
    }
    if body.version != FORMAT_VERSION {
        return Err(StoreError::decode(FormatError::Version(body.version)));
    }
    Ok(Record {
        data: body.data,
        expires_at,
        permanent: body.permanent,
        version: None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
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

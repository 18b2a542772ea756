//! The one record envelope of the stores that serialise records (filesystem, memcached,
//! SQL): a MessagePack map of a format version `v`, the permanent flag and the data; the
//! filesystem store adds a `magic` string (to tell its files from others) and memcached
//! the expiry (the item's own TTL is whole seconds, the envelope's is exact).
//!
//! A record written before the envelope was shared still loads: SQL rows without `v`
//! are version 1, and session files' `version` is read as `v`.

// Each store uses part of the envelope (memcached the expiry, the filesystem the magic).
#![cfg_attr(
    not(all(feature = "filesystem", feature = "memcached", feature = "_sql")),
    allow(dead_code)
)]

use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::record::{Data, Meta};
use crate::support::{from_unix_millis, unix_millis};

/// The version of the envelope this release writes, and the only one it reads.
pub(crate) const VERSION: u8 = 1;

/// An envelope as written.
#[derive(Serialize)]
pub(crate) struct EnvelopeRef<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) magic: Option<&'a str>,
    pub(crate) v: u8,
    /// The expiry in Unix milliseconds, where the store keeps it in the value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) expires: Option<u64>,
    pub(crate) permanent: Option<bool>,
    /// The creation time in Unix milliseconds, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) created: Option<u64>,
    /// The per-session lifetime in seconds, when the application set one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) lifetime: Option<u64>,
    pub(crate) data: &'a Data,
}

impl<'a> EnvelopeRef<'a> {
    /// The envelope of `data` with the session's own settings, at the current version.
    pub(crate) fn new(data: &'a Data, meta: Meta) -> Self {
        Self {
            magic: None,
            v: VERSION,
            expires: None,
            permanent: meta.permanent,
            created: meta.created.map(unix_millis),
            lifetime: meta.lifetime.map(|lifetime| lifetime.as_secs()),
            data,
        }
    }

    /// The envelope as MessagePack.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, StoreError> {
        rmp_serde::to_vec_named(self).map_err(StoreError::encode)
    }
}

/// An envelope as read.
#[derive(Deserialize)]
pub(crate) struct Envelope {
    #[serde(default)]
    pub(crate) magic: Option<String>,
    #[serde(default = "first_version", alias = "version")]
    pub(crate) v: u8,
    #[serde(default)]
    pub(crate) expires: Option<u64>,
    pub(crate) permanent: Option<bool>,
    #[serde(default)]
    pub(crate) created: Option<u64>,
    #[serde(default)]
    pub(crate) lifetime: Option<u64>,
    pub(crate) data: Data,
}

/// The version of records written before they carried one.
fn first_version() -> u8 {
    1
}

/// A stored record in a format this release does not read.
#[derive(Debug, thiserror::Error)]
#[error("unsupported session record version {0} (this release reads version {VERSION})")]
pub(crate) struct UnsupportedVersion(pub(crate) u8);

impl Envelope {
    /// Reads one envelope from the front of `bytes`, leaving the rest (memcached appends
    /// touch entries after it); refuses a version this release does not read.
    pub(crate) fn read(bytes: &mut &[u8]) -> Result<Self, StoreError> {
        let envelope: Self = rmp_serde::from_read(bytes).map_err(StoreError::decode)?;
        envelope.checked()
    }

    /// Reads an envelope that is the whole of `bytes`.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let envelope: Self = rmp_serde::from_slice(bytes).map_err(StoreError::decode)?;
        envelope.checked()
    }

    /// The session's own settings the envelope carries.
    pub(crate) fn meta(&self) -> Meta {
        Meta {
            permanent: self.permanent,
            created: self.created.map(from_unix_millis),
            lifetime: self.lifetime.map(std::time::Duration::from_secs),
        }
    }

    fn checked(self) -> Result<Self, StoreError> {
        if self.v == VERSION {
            Ok(self)
        } else {
            Err(StoreError::decode(UnsupportedVersion(self.v)))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn data() -> Data {
        [("user".to_owned(), json!("ada"))].into_iter().collect()
    }

    #[test]
    fn an_envelope_round_trips_with_and_without_its_extras() {
        let data = data();
        let meta = Meta {
            permanent: Some(true),
            ..Meta::default()
        };
        let plain = EnvelopeRef::new(&data, meta).encode().unwrap();
        let read = Envelope::decode(&plain).unwrap();
        assert_eq!(
            (read.v, read.permanent, read.magic, read.expires),
            (1, Some(true), None, None)
        );
        assert_eq!(read.data, data);

        let full = EnvelopeRef {
            magic: Some("satchel-session"),
            expires: Some(1_700_000_000_123),
            ..EnvelopeRef::new(&data, Meta::default())
        }
        .encode()
        .unwrap();
        let mut rest: &[u8] = &[full.as_slice(), b"tail"].concat();
        let read = Envelope::read(&mut rest).unwrap();
        assert_eq!(read.magic.as_deref(), Some("satchel-session"));
        assert_eq!(read.expires, Some(1_700_000_000_123));
        assert_eq!(rest, b"tail");

        let created = from_unix_millis(1_700_000_000_456);
        let lifetime = std::time::Duration::from_secs(3600);
        let meta = Meta {
            permanent: Some(false),
            created: Some(created),
            lifetime: Some(lifetime),
        };
        let timed = EnvelopeRef::new(&data, meta).encode().unwrap();
        assert_eq!(Envelope::decode(&timed).unwrap().meta(), meta);
    }

    #[derive(Serialize)]
    struct OldSqlRow<'a> {
        data: &'a Data,
        permanent: Option<bool>,
    }

    #[derive(Serialize)]
    struct OldFile<'a> {
        magic: &'a str,
        version: u32,
        permanent: Option<bool>,
        data: &'a Data,
    }

    #[test]
    fn records_written_before_the_shared_envelope_still_load() {
        let data = data();
        let row = rmp_serde::to_vec_named(&OldSqlRow {
            data: &data,
            permanent: Some(false),
        })
        .unwrap();
        let read = Envelope::decode(&row).unwrap();
        assert_eq!((read.v, read.permanent), (1, Some(false)));
        assert_eq!(read.data, data);

        let file = rmp_serde::to_vec_named(&OldFile {
            magic: "satchel-session",
            version: 1,
            permanent: None,
            data: &data,
        })
        .unwrap();
        let read = Envelope::decode(&file).unwrap();
        assert_eq!(read.magic.as_deref(), Some("satchel-session"));
        assert_eq!(read.data, data);
    }

    #[test]
    fn a_later_version_is_refused_as_a_decode_failure() {
        let data = data();
        let later = EnvelopeRef {
            v: 2,
            ..EnvelopeRef::new(&data, Meta::default())
        }
        .encode()
        .unwrap();
        let error = Envelope::decode(&later).err().unwrap();
        assert!(matches!(error, StoreError::Decode(_)), "{error:?}");
        let shown = crate::support::Chain(&error).to_string();
        assert!(shown.contains("version 2"), "{shown}");
    }
}

//! Session values encrypted at rest (SESSION_DATA_KEY): a store that seals every value
//! before the store it wraps keeps it, and opens it again on the way back.
//!
//! # What is sealed, and how
//!
//! Each value is sealed on its own, with XChaCha20-Poly1305 (an AEAD: whoever changes a
//! sealed value in the store makes it fail to open, rather than open to something else)
//! under a fresh random 192-bit nonce. The sealed value the store keeps is a JSON string:
//!
//! ```text
//! "sealed:v1:" + base64url( key id (4 bytes) ‖ nonce (24 bytes) ‖ ciphertext ‖ tag (16 bytes) )
//! ```
//!
//! The ciphertext is the value's JSON text. The key id names which data key sealed it, so
//! a value sealed before a rotation opens with the fallback that sealed it. The
//! associated data (authenticated, not stored) is the session's store key and the name of
//! the session key the value belongs to, so a value moved to another session, or to
//! another key of its own session, fails to open, and so does a whole session copied to
//! another id: only the value written there, by Satchel, for that key of that session,
//! opens.
//!
//! Values are sealed one by one so that the store contract keeps working as it does in
//! the clear: a change set still sets and removes single keys, which every store merges
//! onto the latest entry atomically, so concurrent requests lose nothing. Key names,
//! expiries and the permanent flag stay readable in the store: they are what it needs to
//! merge and to expire entries. Put nothing secret in a key's *name*.
//!
//! # The operations
//!
//! - A load opens every value. A value that does not open (another key, a key no longer
//!   among the fallbacks, a value changed in the store, a value stored in the clear
//!   before encryption was turned on) makes the whole session a decode failure: the
//!   engine logs it, counts it in `satchel_decode_failures_total`, and starts a fresh
//!   session. A value that failed to open is never served.
//! - A save seals the values it sets for the session's key.
//! - An id rotation ([`SessionStore::cycle`]) moves the entry as the wrapped store does,
//!   atomically, with the request's changes sealed for the new id. The values that came
//!   with the entry, still sealed for the old id, are then sealed again for the new one,
//!   in a second step (one load and one save, tried up to three times). Nobody else
//!   knows the new id before the response carries it, so nothing else writes the entry
//!   in between. If the second step keeps failing (the store went down between the two,
//!   or the process died), the moved values never open: the request fails, and the
//!   session starts afresh, as after a log-out.
//! - An atomic update ([`SessionStore::update`]: `increment`, `insert_if_unchanged`)
//!   cannot add to a sealed number in the store, so it runs as a compare-and-swap: read
//!   the sealed value, compute the new one, and replace it only if the store still holds
//!   the same sealed value, else again. It costs one more round trip than in the clear,
//!   and concurrent updates of one key still never lose each other.
//!
//! # Keys and rotation
//!
//! The 256-bit AEAD key is derived from SESSION_DATA_KEY with BLAKE3's key derivation, so
//! any long random secret works (`satchel keygen` makes one). To rotate, put the old
//! secret first in SESSION_DATA_KEY_FALLBACKS and a new one in SESSION_DATA_KEY: values
//! are sealed with the new key from then on, and the old ones still open. A session's
//! value is sealed again with the new key whenever it is written; keep the fallback at
//! least as long as PERMANENT_SESSION_LIFETIME, after which every session still alive
//! has been written since, or has ended.
//!
//! # Examples
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use satchel::store::sealed::{DataKey, SealedStore};
//! use satchel::{Changes, MemoryStore, SessionId, SessionStore};
//! use serde_json::json;
//!
//! # tokio_test::block_on(async {
//! let memory = MemoryStore::default();
//! let store = SealedStore::new(memory.clone(), DataKey::derive(b"a long and random data key, at least 32 bytes"), []);
//! let id = SessionId::generate();
//! let mut changes = Changes::default();
//! changes.set("email", json!("ada@example.com"));
//! store.save(&id, &changes, SystemTime::now() + Duration::from_secs(60)).await?;
//!
//! let opened = store.load(&id, None).await?.expect("stored");
//! assert_eq!(opened.data["email"], "ada@example.com");
//! let raw = memory.load(&id, None).await?.expect("stored");
//! assert!(raw.data["email"].as_str().is_some_and(|text| text.starts_with("sealed:v1:")));
//! # Ok::<_, satchel::StoreError>(())
//! # }).unwrap();
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use serde_json::Value;

use super::{Capabilities, Page, Saved, Seen, SessionStore};
use crate::error::StoreError;
use crate::id::SessionId;
use crate::record::{Changes, Data, KeyUpdate, Record, Updated};

/// How a sealed value's text begins.
pub const PREFIX: &str = "sealed:v1:";

/// Bytes of the key id at the start of a sealed value.
const KEY_ID_LEN: usize = 4;
/// Bytes of an XChaCha20 nonce.
const NONCE_LEN: usize = 24;
/// Bytes of a Poly1305 tag.
const TAG_LEN: usize = 16;
/// Bytes around the ciphertext: key id, nonce, tag.
const OVERHEAD: usize = KEY_ID_LEN + NONCE_LEN + TAG_LEN;
/// Separates this use of the key material from every other; part of the associated data.
const AAD_LABEL: &[u8] = b"satchel sealed session value v1\0";
/// BLAKE3 key-derivation contexts: the AEAD key, and the id naming it in sealed values.
const KEY_CONTEXT: &str = "satchel 2026-12-06 session data key";
const KEY_ID_CONTEXT: &str = "satchel 2026-12-06 session data key id";

/// How many times the values of a moved session are sealed again for its new id before
/// the failure is reported.
const RESEAL_ATTEMPTS: usize = 3;

/// How many times an update reads and tries again when other writers keep changing the
/// key between its read and its write, before it gives up ([`StoreError::Contended`]).
const UPDATE_ATTEMPTS: usize = 64;

/// The length of the sealed text of a value whose JSON text is `len` bytes long: what the
/// store keeps instead, without the quotes of its own JSON text.
///
/// # Examples
///
/// ```
/// use satchel::store::sealed::{PREFIX, sealed_len};
///
/// // 1 byte of JSON ("7") becomes the prefix and 45 bytes in base64url.
/// assert_eq!(sealed_len(1), PREFIX.len() + 60);
/// ```
#[must_use]
pub const fn sealed_len(len: usize) -> usize {
    let bytes = OVERHEAD + len;
    PREFIX.len() + (bytes * 4).div_ceil(3)
}

/// The size of `data` sealed, as the size budget measures it (see
/// [`stored_size`](crate::record::stored_size)): every key, and the JSON text of its sealed
/// value, which is a string of [`sealed_len`] bytes between quotes.
///
/// # Examples
///
/// ```
/// use satchel::Data;
/// use satchel::store::sealed::{sealed_len, sealed_size};
/// use serde_json::json;
///
/// let data = Data::from([("n".to_owned(), json!(7))]);
/// assert_eq!(sealed_size(&data), 1 + 2 + sealed_len(1));
/// ```
#[must_use]
pub fn sealed_size(data: &Data) -> usize {
    data.iter()
        .map(|(key, value)| {
            key.len()
                .saturating_add(2)
                .saturating_add(sealed_len(crate::record::json_len(value)))
        })
        .sum()
}

/// A key that seals session values: derived from SESSION_DATA_KEY (or one of its
/// fallbacks). Prints as `DataKey(..)`: key material never reaches a log.
///
/// # Examples
///
/// ```
/// use satchel::store::sealed::DataKey;
///
/// let key = DataKey::derive(b"a long and random data key, at least 32 bytes");
/// assert_eq!(format!("{key:?}"), "DataKey(..)");
/// ```
#[derive(Clone)]
pub struct DataKey {
    cipher: XChaCha20Poly1305,
    id: [u8; KEY_ID_LEN],
}

impl DataKey {
    /// Derives the key from a configured secret of any length (BLAKE3 key derivation,
    /// with a context of Satchel's own). Use a long random secret: `satchel keygen`.
    #[must_use]
    pub fn derive(secret: &[u8]) -> Self {
        Self::derive_in(KEY_CONTEXT, KEY_ID_CONTEXT, secret)
    }

    /// Derives a key for one use of Satchel's (its contexts: the key's, and its id's).
    pub(crate) fn derive_in(context: &str, id_context: &str, secret: &[u8]) -> Self {
        let key = blake3::derive_key(context, secret);
        let tag = blake3::derive_key(id_context, secret);
        let mut id = [0; KEY_ID_LEN];
        id.copy_from_slice(&tag[..KEY_ID_LEN]);
        Self {
            cipher: XChaCha20Poly1305::new(&key.into()),
            id,
        }
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// The current key and the fallbacks.
struct Keys {
    current: DataKey,
    fallbacks: Vec<DataKey>,
}

/// Why a value did not open.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unsealing {
    #[error("a session value is not sealed (it was stored in the clear)")]
    NotSealed,
    #[error("a sealed session value is malformed")]
    Malformed,
    #[error(
        "a sealed session value does not open: it was sealed with a key that is neither \
         SESSION_DATA_KEY nor in SESSION_DATA_KEY_FALLBACKS, or for another session or key, \
         or it was changed in the store"
    )]
    Forged,
}

impl Keys {
    /// Seals `value` of `name` for the session stored under `id`.
    fn seal(&self, id: &SessionId, name: &str, value: &Value) -> Result<Value, StoreError> {
        let plaintext = serde_json::to_vec(value).map_err(StoreError::encode)?;
        let buffer = seal_bytes(&self.current, &associated(id, name), &plaintext)?;
        let mut text = String::with_capacity(PREFIX.len() + (buffer.len() * 4).div_ceil(3));
        text.push_str(PREFIX);
        URL_SAFE_NO_PAD.encode_string(&buffer, &mut text);
        Ok(Value::String(text))
    }

    /// Opens `value` of `name` for the session stored under `id`.
    fn open(&self, id: &SessionId, name: &str, value: &Value) -> Result<Value, Unsealing> {
        let text = value
            .as_str()
            .and_then(|text| text.strip_prefix(PREFIX))
            .ok_or(Unsealing::NotSealed)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| Unsealing::Malformed)?;
        let keys = std::iter::once(&self.current).chain(&self.fallbacks);
        let (plaintext, _) = open_bytes(keys, &associated(id, name), bytes)?;
        serde_json::from_slice(&plaintext).map_err(|_| Unsealing::Malformed)
    }

    /// Opens every value of `record`, stored under `id`.
    fn open_record(&self, id: &SessionId, mut record: Record) -> Result<Record, StoreError> {
        for (name, value) in &mut record.data {
            *value = self.open(id, name, value).map_err(StoreError::decode)?;
        }
        Ok(record)
    }

    /// `changes` with every value it sets sealed for `id`.
    fn seal_changes(&self, id: &SessionId, changes: &Changes) -> Result<Changes, StoreError> {
        changes.try_map_sets(|name, value| self.seal(id, name, value))
    }

    /// `data` with every value sealed for `id`.
    fn seal_data(&self, id: &SessionId, data: &Data) -> Result<Data, StoreError> {
        data.iter()
            .map(|(name, value)| Ok((name.clone(), self.seal(id, name, value)?)))
            .collect()
    }
}

/// Seals `plaintext` under `key` with `aad`: the key's id, a random nonce, the ciphertext
/// and the tag.
pub(crate) fn seal_bytes(
    key: &DataKey,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, StoreError> {
    let mut buffer = Vec::with_capacity(OVERHEAD + plaintext.len());
    buffer.extend_from_slice(&key.id);
    let mut nonce = [0; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|error| StoreError::backend(error.to_string()))?;
    buffer.extend_from_slice(&nonce);
    buffer.extend_from_slice(plaintext);
    let (_, text) = buffer.split_at_mut(KEY_ID_LEN + NONCE_LEN);
    let tag = key
        .cipher
        .encrypt_in_place_detached(XNonce::from_slice(&nonce), aad, text)
        .map_err(|_| StoreError::encode("too long to seal"))?;
    buffer.extend_from_slice(&tag);
    Ok(buffer)
}

/// Opens what [`seal_bytes`] sealed with `aad`, under the first of `keys` with its key id
/// that opens it: the plaintext, and the position of that key among `keys`.
pub(crate) fn open_bytes<'a>(
    keys: impl IntoIterator<Item = &'a DataKey>,
    aad: &[u8],
    mut bytes: Vec<u8>,
) -> Result<(Vec<u8>, usize), Unsealing> {
    if bytes.len() < OVERHEAD {
        return Err(Unsealing::Malformed);
    }
    let (head, rest) = bytes.split_at_mut(KEY_ID_LEN + NONCE_LEN);
    let (key_id, nonce) = head.split_at(KEY_ID_LEN);
    let (ciphertext, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
    let tag = Tag::clone_from_slice(tag);
    // A failed attempt leaves the buffer as it was: the tag is checked before the
    // keystream is applied.
    let opened = keys
        .into_iter()
        .enumerate()
        .filter(|(_, key)| key.id == key_id)
        .find(|(_, key)| {
            key.cipher
                .decrypt_in_place_detached(XNonce::from_slice(nonce), aad, ciphertext, &tag)
                .is_ok()
        })
        .map(|(position, _)| position);
    let Some(position) = opened else {
        return Err(Unsealing::Forged);
    };
    let end = bytes.len() - TAG_LEN;
    bytes.truncate(end);
    bytes.drain(..KEY_ID_LEN + NONCE_LEN);
    Ok((bytes, position))
}

/// The associated data of a value: this use, the session's store key, the value's key.
fn associated(id: &SessionId, name: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_LABEL.len() + 32 + name.len());
    aad.extend_from_slice(AAD_LABEL);
    aad.extend_from_slice(id.as_bytes());
    aad.extend_from_slice(name.as_bytes());
    aad
}

/// A store whose values are sealed at rest: see the [module documentation](self).
///
/// [`SessionManager`](crate::SessionManager) puts one around its store when
/// SESSION_DATA_KEY is set. Its metrics and logs name the wrapped store.
#[derive(Clone)]
pub struct SealedStore<S> {
    inner: S,
    keys: Arc<Keys>,
}

impl<S> fmt::Debug for SealedStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedStore")
            .field("store", &std::any::type_name::<S>())
            .field("fallbacks", &self.keys.fallbacks.len())
            .finish_non_exhaustive()
    }
}

impl<S: SessionStore> SealedStore<S> {
    /// `inner` with its values sealed with `current`, and opened with `current` or any of
    /// `fallbacks`.
    pub fn new(inner: S, current: DataKey, fallbacks: impl IntoIterator<Item = DataKey>) -> Self {
        Self {
            inner,
            keys: Arc::new(Keys {
                current,
                fallbacks: fallbacks.into_iter().collect(),
            }),
        }
    }

    /// The wrapped store, which holds the sealed values.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// After a move from `old` to `new`: seals again for `new` the values that came
    /// sealed for `old`.
    async fn reseal_moved(&self, old: &SessionId, new: &SessionId) -> Result<(), StoreError> {
        let Some(record) = self.inner.load(new, None).await? else {
            return Ok(());
        };
        let mut changes = Changes::default();
        for (name, value) in &record.data {
            if self.keys.open(new, name, value).is_ok() {
                continue;
            }
            if let Ok(plain) = self.keys.open(old, name, value) {
                changes.set(name.clone(), self.keys.seal(new, name, &plain)?);
            }
        }
        if changes.is_empty() {
            return Ok(());
        }
        changes.require_existing();
        self.inner.save(new, &changes, record.expires_at).await?;
        Ok(())
    }
}

impl<S: SessionStore> SessionStore for SealedStore<S> {
    async fn load(
        &self,
        id: &SessionId,
        touch: Option<SystemTime>,
    ) -> Result<Option<Record>, StoreError> {
        match self.inner.load(id, touch).await? {
            Some(record) => match self.keys.open_record(id, record) {
                Ok(record) => Ok(Some(record)),
                Err(error) => {
                    crate::observability::decode_failed(self.inner.name());
                    Err(error)
                }
            },
            None => Ok(None),
        }
    }

    async fn save(
        &self,
        id: &SessionId,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        let sealed = self.keys.seal_changes(id, changes)?;
        self.inner.save(id, &sealed, expires_at).await
    }

    async fn save_seen(
        &self,
        id: &SessionId,
        seen: Seen<'_>,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        let sealed = self.keys.seal_changes(id, changes)?;
        let data = self.keys.seal_data(id, seen.data)?;
        let seen = Seen {
            data: &data,
            ..seen
        };
        self.inner.save_seen(id, seen, &sealed, expires_at).await
    }

    async fn cycle(
        &self,
        old: &SessionId,
        new: &SessionId,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        let sealed = self.keys.seal_changes(new, changes)?;
        let saved = self.inner.cycle(old, new, &sealed, expires_at).await?;
        if saved == Saved::Stored {
            // The move is done: until the values are sealed again for the new id, they
            // do not open under it. Resealing can be repeated, so a failure is tried
            // again before it is reported.
            let mut attempt = 1;
            while let Err(error) = self.reseal_moved(old, new).await {
                if attempt == RESEAL_ATTEMPTS {
                    return Err(error);
                }
                tracing::warn!(
                    error = %crate::support::Chain(&error),
                    attempt,
                    "sealing a moved session's values for its new id failed; trying again"
                );
                attempt += 1;
            }
        }
        Ok(saved)
    }

    async fn update(
        &self,
        id: &SessionId,
        key: &str,
        update: &KeyUpdate,
    ) -> Result<Updated, StoreError> {
        for _ in 0..UPDATE_ATTEMPTS {
            let Some(record) = self.inner.load(id, None).await? else {
                return Ok(Updated::Missing);
            };
            let stored = record.data.get(key);
            let current = match stored {
                Some(value) => Some(self.keys.open(id, key, value).map_err(|error| {
                    crate::observability::decode_failed(self.inner.name());
                    StoreError::decode(error)
                })?),
                None => None,
            };
            let new = match update.apply(current.as_ref()) {
                Ok(new) => new,
                Err(refused) => return Ok(refused),
            };
            // The store holds the sealed value to the budget, measured sealed.
            let swap = KeyUpdate::Replace {
                expected: stored.cloned(),
                new: new
                    .as_ref()
                    .map(|value| self.keys.seal(id, key, value))
                    .transpose()?,
                max_size: update.max_size(),
            };
            match self.inner.update(id, key, &swap).await? {
                Updated::Applied(_) => return Ok(Updated::Applied(new)),
                Updated::Missing => return Ok(Updated::Missing),
                // Another writer changed the key since the read: read again.
                Updated::Mismatch(_) | Updated::Invalid(_) => {
                    crate::observability::record_conflict(self.inner.name());
                }
            }
        }
        Err(StoreError::Contended(
            format!(
                "the update of a sealed value lost {UPDATE_ATTEMPTS} races in a row to other writers"
            )
            .into(),
        ))
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        self.inner.delete(id).await
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }

    /// The wrapped store's page, opened. A value that does not open is left out of its
    /// entry (and logged), so the entry can still be seen and revoked.
    async fn list(&self, cursor: Option<&str>, limit: usize) -> Result<Page, StoreError> {
        let mut page = self.inner.list(cursor, limit).await?;
        let mut unopened = 0_usize;
        for (id, record) in &mut page.entries {
            record
                .data
                .retain(|name, value| match self.keys.open(id, name, value) {
                    Ok(plain) => {
                        *value = plain;
                        true
                    }
                    Err(_) => {
                        unopened += 1;
                        false
                    }
                });
        }
        if unopened > 0 {
            tracing::warn!(
                unopened,
                "session values that do not open were left out of a listing"
            );
        }
        Ok(page)
    }
}

/// The fuzz target `sealed_value`: `data` as the text a store holds for a value. Inputs
/// that begin with `!` are sealed first (with the fuzzing key, for a fixed session and
/// key), so the fuzzer also mutates values that open.
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz(data: &[u8]) {
    let keys = Keys {
        current: DataKey::derive(b"the fuzzing data key"),
        fallbacks: vec![DataKey::derive(b"an older fuzzing data key")],
    };
    let id = SessionId::derive("fuzzing", b"a session");
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let stored = match text.strip_prefix('!') {
        Some(json) => match serde_json::from_str::<Value>(json) {
            Ok(value) => match keys.seal(&id, "k", &value) {
                Ok(sealed) => {
                    let opened = keys.open(&id, "k", &sealed);
                    assert_eq!(opened.ok().as_ref(), Some(&value), "a sealed value opens");
                    sealed
                }
                Err(_) => return,
            },
            Err(_) => return,
        },
        None => Value::String(text.to_owned()),
    };
    if let Ok(value) = keys.open(&id, "k", &stored) {
        let again = serde_json::to_string(&value).ok();
        let back = again.and_then(|json| serde_json::from_str::<Value>(&json).ok());
        assert_eq!(back.as_ref(), Some(&value));
        assert!(
            keys.open(&id, "other", &stored).is_err(),
            "bound to its key"
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(current: &[u8], fallbacks: &[&[u8]]) -> Keys {
        Keys {
            current: DataKey::derive(current),
            fallbacks: fallbacks
                .iter()
                .map(|secret| DataKey::derive(secret))
                .collect(),
        }
    }

    #[test]
    fn a_value_opens_only_for_its_session_and_key() {
        let keys = keys(b"current", &[]);
        let (a, b) = (SessionId::generate(), SessionId::generate());
        let sealed = keys.seal(&a, "user", &json!({"id": 7})).unwrap();
        assert_eq!(keys.open(&a, "user", &sealed).unwrap(), json!({"id": 7}));
        assert!(matches!(
            keys.open(&b, "user", &sealed),
            Err(Unsealing::Forged)
        ));
        assert!(matches!(
            keys.open(&a, "admin", &sealed),
            Err(Unsealing::Forged)
        ));
        assert!(matches!(
            keys.open(&a, "user", &json!(7)),
            Err(Unsealing::NotSealed)
        ));
        assert!(matches!(
            keys.open(&a, "user", &json!("sealed:v1:AAAA")),
            Err(Unsealing::Malformed)
        ));
    }

    /// A number comes back as the same f64, to the last bit (serde_json's
    /// `float_roundtrip`): the fuzz target `sealed_value` found one that came back 1 ULP
    /// off without it.
    #[test]
    fn numbers_open_to_the_same_bits() {
        let keys = keys(b"current", &[]);
        let id = SessionId::generate();
        let text = "5666666665666666666663355636166633556361815.66663555";
        let value: Value = serde_json::from_str(text).unwrap();
        let sealed = keys.seal(&id, "k", &value).unwrap();
        assert_eq!(keys.open(&id, "k", &sealed).unwrap(), value);
    }

    #[test]
    fn every_changed_byte_is_refused() {
        let keys = keys(b"current", &[]);
        let id = SessionId::generate();
        let sealed = keys.seal(&id, "k", &json!("secret")).unwrap();
        let text = sealed.as_str().unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(&text[PREFIX.len()..]).unwrap();
        for at in 0..bytes.len() {
            bytes[at] ^= 1;
            let forged = Value::String(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(&bytes)));
            assert!(keys.open(&id, "k", &forged).is_err(), "byte {at}");
            bytes[at] ^= 1;
        }
        assert_eq!(sealed.as_str().map(str::len), Some(sealed_len(8)));
    }

    #[test]
    fn fallbacks_open_what_they_sealed_and_only_the_current_key_seals() {
        let old = keys(b"old", &[]);
        let rotated = keys(b"new", &[b"old"]);
        let dropped = keys(b"new", &[]);
        let id = SessionId::generate();
        let sealed = old.seal(&id, "k", &json!(1)).unwrap();
        assert_eq!(rotated.open(&id, "k", &sealed).unwrap(), json!(1));
        assert!(dropped.open(&id, "k", &sealed).is_err());
        let resealed = rotated.seal(&id, "k", &json!(1)).unwrap();
        assert!(old.open(&id, "k", &resealed).is_err());
        assert_eq!(dropped.open(&id, "k", &resealed).unwrap(), json!(1));
    }
}

//! Flask-Session's own formats, for an application that shares its sessions with a Flask
//! (or Flask Unchained) application while it moves to Rust a route at a time.
//!
//! # The signed cookie
//!
//! With `SESSION_USE_SIGNER`, Flask-Session (every release from 0.4 to 0.8) signs the
//! session id it puts in the cookie with itsdangerous'
//! `Signer(secret_key, salt="flask-session", key_derivation="hmac")`:
//!
//! ```text
//! key    = HMAC-SHA1(SECRET_KEY, "flask-session")           20 bytes
//! cookie = sid + "." + base64url_nopad(HMAC-SHA1(key, sid))  sid + 28 characters
//! ```
//!
//! A sid is whatever Flask-Session made: `secrets.token_urlsafe(32)` (43 characters) from
//! 0.6 on, a UUID4 string before. [`FlaskSigner`] makes and checks exactly these values,
//! so a cookie Flask signed verifies here and one signed here verifies in Flask. Flask
//! itself checks only its current `SECRET_KEY`; Satchel also accepts the keys of
//! `SECRET_KEY_FALLBACKS`, and says which one verified, so that a cookie signed with an
//! old key can be signed again.
//!
//! HMAC-SHA1 is Flask-Session's choice, kept here for compatibility: a MAC's strength
//! does not rest on SHA-1's collision resistance, which is what is broken.
//!
//! # The stored value
//!
//! Flask-Session 0.7 and 0.8 store a session as one msgpack map: see [`msgpack`].
//! Flask-Session 0.6 and earlier, and Flask Unchained, store it as a pickled dict: see
//! [`pickle`], which reads a pickle without running it and keeps what it cannot
//! represent (tuples, datetimes, other objects) as the opcodes that build it.
//!
//! # Sharing the store
//!
//! [`FlaskStore`] keeps sessions in Flask-Session's layout on Satchel's Redis, memcached,
//! SQL and MongoDB stores, and SESSION_FLASK_COMPAT builds one from the configuration
//! (with [`FlaskSigner`] for the cookie under SESSION_USE_SIGNER); see [`store`].
//!
//! # What was checked against Flask
//!
//! Against Flask-Session 0.8.0 (Flask 3.1.3, msgspec 0.22.0) and Flask Unchained 0.9.0
//! (Flask-Session 0.6.0, Flask 2.2.5, dill 0.4.1), run by the interop test
//! (`crates/satchel-cli/tests/flask_interop.rs`) on Redis 7, memcached 1.6, SQLite,
//! PostgreSQL, MariaDB and a MongoDB-protocol server, and by the cross-checks in
//! `crates/satchel/tests/flask.rs` against itsdangerous, msgspec and CPython's pickle:
//!
//! - ids are `token_urlsafe(32)` in both (43 characters, Satchel's own shape); keys are
//!   `SESSION_KEY_PREFIX` + id; the signed cookie is as above, in both;
//! - Redis: `SET` with a TTL of PERMANENT_SESSION_LIFETIME, for browser sessions too;
//!   memcached: an item with flags 0, relative TTL up to 30 days, an absolute time beyond;
//! - SQL: Flask-Session 0.8 makes `(id, session_id UNIQUE, data, expiry)` with `expiry`
//!   the naive UTC time now + lifetime; Flask Unchained's model adds `created_at` and
//!   `updated_at`, and its `expiry` is the cookie's (`NULL` for a browser session, which
//!   Flask-Session 0.6 deletes when it next reads it);
//! - MongoDB: `{id, val: BinData(0), expiration}`; Flask-Session 0.8 makes the TTL index
//!   `expiration_1` and checks no expiry on read; 0.6 makes no index and checks it;
//! - values: the msgpack map of [`msgpack`] (a tuple comes back to Python as a list, a
//!   naive datetime as a string, as msgspec writes them) and the protocol 4 pickle of
//!   [`pickle`] (every Python value comes back as it was).

pub mod msgpack;
pub mod pickle;
pub mod store;

pub use store::{Blob, FlaskBackend, FlaskStore, META_KEY};

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

type HmacSha1 = Hmac<Sha1>;

/// itsdangerous' salt for Flask-Session's signer.
const SALT: &[u8] = b"flask-session";
/// The length of a signature: 20 bytes as unpadded base64url.
const SIGNATURE_LEN: usize = 27;

/// Signs and verifies session ids as Flask-Session does with `SESSION_USE_SIGNER` (see
/// the [module documentation](self)). Prints as `FlaskSigner(..)`: key material never
/// reaches a log.
///
/// # Examples
///
/// ```
/// use satchel::flask::FlaskSigner;
///
/// let signer = FlaskSigner::new(b"test-secret", []);
/// let sid = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";
/// // The value Flask-Session 0.8 sets for this sid and SECRET_KEY.
/// let cookie = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG.zu2eltd_4ZBZK7ME5WLH8WMl53o";
/// assert_eq!(signer.sign(sid), cookie);
/// assert_eq!(signer.verify(cookie), Some((sid, false)));
/// assert_eq!(signer.verify("0123456789abcdefghijklmnopqrstuvwxyzABCDEFG.forged"), None);
/// ```
#[derive(Clone)]
pub struct FlaskSigner {
    /// The derived keys: SECRET_KEY's first, then the fallbacks'.
    keys: Vec<[u8; 20]>,
}

impl FlaskSigner {
    /// A signer for `secret` (SECRET_KEY, as the bytes of its UTF-8 text, as Flask takes
    /// a `str` key) that also verifies with each of `fallbacks`.
    #[must_use]
    pub fn new<'a>(secret: &[u8], fallbacks: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let keys = std::iter::once(mac(secret, SALT))
            .chain(fallbacks.into_iter().map(|secret| mac(secret, SALT)))
            .collect();
        Self { keys }
    }

    /// The cookie value for `sid`, signed with SECRET_KEY.
    #[must_use]
    pub fn sign(&self, sid: &str) -> String {
        let mut value = String::with_capacity(sid.len() + 1 + SIGNATURE_LEN);
        value.push_str(sid);
        value.push('.');
        URL_SAFE_NO_PAD.encode_string(mac(&self.keys[0], sid.as_bytes()), &mut value);
        value
    }

    /// The sid a cookie value carries, when its signature is Flask-Session's with
    /// SECRET_KEY or a fallback, and whether a fallback verified it; `None` otherwise. The
    /// signatures are compared in constant time.
    #[must_use]
    pub fn verify<'v>(&self, value: &'v str) -> Option<(&'v str, bool)> {
        let (sid, signature) = value.rsplit_once('.')?;
        if sid.is_empty() || signature.len() != SIGNATURE_LEN {
            return None;
        }
        let given = URL_SAFE_NO_PAD.decode(signature).ok()?;
        // Every key is tried, so the time taken does not say which one matched.
        let mut matched = None;
        for (position, key) in self.keys.iter().enumerate() {
            let expected = mac(key, sid.as_bytes());
            if bool::from(expected.ct_eq(given.as_slice())) && matched.is_none() {
                matched = Some(position > 0);
            }
        }
        matched.map(|fallback| (sid, fallback))
    }
}

impl fmt::Debug for FlaskSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FlaskSigner(..)")
    }
}

/// HMAC-SHA1 of `message` under `key`.
fn mac(key: &[u8], message: &[u8]) -> [u8; 20] {
    // HMAC takes a key of any length.
    let Ok(mut mac) = HmacSha1::new_from_slice(key) else {
        unreachable!("HMAC accepts keys of every length")
    };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// An object of one key standing for a value JSON has no type for: `{"$bytes": …}`, or a
/// value kept in its layout's own encoding (`{"$msgpack": …}`, `{"$pickle": …}`).
pub(crate) fn tagged(tag: &str, text: String) -> serde_json::Value {
    let mut object = serde_json::Map::with_capacity(1);
    object.insert(tag.to_owned(), serde_json::Value::String(text));
    serde_json::Value::Object(object)
}

/// What a tagged object stands for.
pub(crate) enum Tagged {
    /// `{"$bytes": …}`: bytes.
    Bytes(Vec<u8>),
    /// `{"<raw_tag>": …}`: one whole value in the layout's encoding, checked.
    Raw(Vec<u8>),
}

/// What `object` stands for, if it is of the shape of a `{"$bytes": …}` or of a
/// `{"<raw_tag>": …}` whose bytes `is_one_value` accepts (one whole value of the
/// layout).
pub(crate) fn untagged(
    object: &serde_json::Map<String, serde_json::Value>,
    raw_tag: &str,
    is_one_value: impl FnOnce(&[u8]) -> bool,
) -> Option<Tagged> {
    if object.len() != 1 {
        return None;
    }
    let (tag, serde_json::Value::String(text)) = object.iter().next()? else {
        return None;
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    if tag == msgpack::BYTES {
        Some(Tagged::Bytes(bytes))
    } else if tag == raw_tag {
        is_one_value(&bytes).then_some(Tagged::Raw(bytes))
    } else {
        None
    }
}

/// A layout's reader: a stored value's data and permanent flag.
#[cfg(feature = "fuzzing")]
type Decode = fn(&[u8]) -> Result<(crate::record::Data, Option<bool>), crate::StoreError>;
/// A layout's writer.
#[cfg(feature = "fuzzing")]
type Encode = fn(&crate::record::Data, Option<bool>) -> Result<Vec<u8>, crate::StoreError>;

/// Reads arbitrary bytes with `decode` (fuzzing): a session that reads is written with
/// `encode`, and reads again to the same session.
#[cfg(feature = "fuzzing")]
fn fuzz_round_trip(bytes: &[u8], decode: Decode, encode: Encode) {
    if let Ok((data, permanent)) = decode(bytes) {
        let written = encode(&data, permanent).expect("a session read is written");
        let again = decode(&written).expect("a session written reads");
        assert_eq!(again, (data, permanent));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Cookie values Flask-Session made (itsdangerous 2.2.0, key `test-secret`), from
    /// `../shared/research/flask_session_formats.md`.
    const FLASK_MADE: [(&str, &str); 3] = [
        (
            "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG",
            "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG.zu2eltd_4ZBZK7ME5WLH8WMl53o",
        ),
        (
            "ahqwthvY8o1nEr3Bhm4aFnGuxUncvlfCGI4KfL5Vo6g",
            "ahqwthvY8o1nEr3Bhm4aFnGuxUncvlfCGI4KfL5Vo6g.5GzHv1ZYsIWwgBqN6aI7LmpXdJM",
        ),
        (
            "85775d02-cd39-49c8-8042-66e54682f514",
            "85775d02-cd39-49c8-8042-66e54682f514.lfhPzNhTHG2b6zL_mIXEL-ahU9E",
        ),
    ];

    #[test]
    fn values_flask_made_verify_and_are_made_alike() {
        let signer = FlaskSigner::new(b"test-secret", []);
        for (sid, cookie) in FLASK_MADE {
            assert_eq!(signer.sign(sid), cookie);
            assert_eq!(signer.verify(cookie), Some((sid, false)));
        }
    }

    #[test]
    fn fallbacks_verify_and_say_so_and_other_keys_do_not() {
        let (sid, cookie) = FLASK_MADE[0];
        let rotated = FlaskSigner::new(b"the new key", [b"test-secret".as_slice()]);
        assert_eq!(rotated.verify(cookie), Some((sid, true)));
        assert_ne!(rotated.sign(sid), cookie, "signs with the current key");
        let stranger = FlaskSigner::new(b"another key", []);
        assert_eq!(stranger.verify(cookie), None);
    }

    #[test]
    fn altered_and_malformed_values_are_refused() {
        let signer = FlaskSigner::new(b"test-secret", []);
        let (_, cookie) = FLASK_MADE[0];
        for at in 0..cookie.len() {
            let mut altered = cookie.as_bytes().to_vec();
            altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(altered).unwrap();
            assert_eq!(signer.verify(&altered), None, "changed at {at}");
        }
        let sid = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";
        for broken in [
            "",
            ".",
            sid,
            &format!("{sid}."),
            &format!(".{}", &cookie[sid.len() + 1..]),
            &format!("{cookie}="),
            &format!("{cookie}x"),
        ] {
            assert_eq!(signer.verify(broken), None, "{broken:?}");
        }
        assert_eq!(format!("{signer:?}"), "FlaskSigner(..)");
    }
}

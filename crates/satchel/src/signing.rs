//! Signed session ids (SESSION_USE_SIGNER) with key rotation (SECRET_KEY_FALLBACKS).
//!
//! A signed cookie's value is `id.mac`: the id, a dot, and 43 characters of base64url
//! HMAC-SHA256. The MAC covers the cookie name and the id, so a value signed for one
//! cookie cannot be replayed under another name. Verification runs in constant time.
//!
//! Rotation: sign with the current SECRET_KEY, verify with it and with every key in
//! SECRET_KEY_FALLBACKS. A cookie that only a fallback verifies is re-signed with the
//! current key on that same response, so after one visit each user carries a cookie the
//! old key is no longer needed for.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::id::{ID_LEN, SessionId};

type HmacSha256 = Hmac<Sha256>;

/// Length of the MAC in a signed cookie value: 32 bytes as unpadded base64url.
const MAC_LEN: usize = 43;
/// Domain separation for deriving the signing key from SECRET_KEY, so the same secret
/// used elsewhere in an application never yields the same MACs.
const DERIVATION_LABEL: &[u8] = b"satchel.session-id-signing.v1";

/// A 256-bit signing key.
///
/// Derived from a configured secret with [`Key::derive`], generated at random with
/// [`Key::generate`], or taken from raw bytes with `Key::try_from(&[u8])`. It compares in
/// constant time and prints as `Key(..)`: key material never reaches a log.
///
/// # Examples
///
/// ```
/// use satchel::signing::Key;
///
/// let a = Key::derive(b"a long and random application secret");
/// let b = Key::derive(b"a long and random application secret");
/// assert_eq!(a, b);
/// assert_eq!(format!("{a:?}"), "Key(..)");
/// assert!(Key::try_from(&[0u8; 8][..]).is_err());
/// ```
#[derive(Clone)]
pub struct Key([u8; 32]);

impl Key {
    /// Derives a signing key from a configured secret (SECRET_KEY) of any length.
    #[must_use]
    pub fn derive(secret: &[u8]) -> Self {
        let mut mac = mac_with(secret);
        mac.update(DERIVATION_LABEL);
        Self(mac.finalize().into_bytes().into())
    }

    /// A new random key from the operating system's CSPRNG.
    ///
    /// # Panics
    ///
    /// Panics if the operating system cannot provide random bytes; see
    /// [`Key::try_generate`].
    #[must_use]
    pub fn generate() -> Self {
        #[allow(clippy::expect_used)]
        Self::try_generate().expect("the operating system's random number generator failed")
    }

    /// A new random key, or the OS random source's error.
    ///
    /// # Errors
    ///
    /// Returns the [`getrandom::Error`] when no random bytes can be had.
    pub fn try_generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    fn mac(&self, cookie_name: &str, id: &str) -> [u8; 32] {
        let mut mac = mac_with(&self.0);
        mac.update(cookie_name.as_bytes());
        mac.update(b"\0");
        mac.update(id.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

fn mac_with(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of every length, so this cannot fail.
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    }
}

/// The raw bytes given to `Key::try_from` are not exactly 32 bytes long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a signing key is exactly 32 bytes")]
pub struct InvalidKeyLength;

impl TryFrom<&[u8]> for Key {
    type Error = InvalidKeyLength;

    fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
        <[u8; 32]>::try_from(bytes)
            .map(Self)
            .map_err(|_| InvalidKeyLength)
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Key {}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

/// Which key verified a cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// The current key: nothing to do.
    Current,
    /// A fallback key: the cookie should be re-signed with the current key.
    Fallback,
}

/// Signs ids with the current key and verifies them with it and the fallbacks.
///
/// # Examples
///
/// ```
/// use satchel::SessionId;
/// use satchel::signing::{Key, Signer, Verified};
///
/// let old = Signer::new(Key::derive(b"old secret"), []);
/// let new = Signer::new(Key::derive(b"new secret"), [Key::derive(b"old secret")]);
/// let id = SessionId::generate();
///
/// let cookie = old.sign("session", &id);
/// assert_eq!(new.verify("session", &cookie), Some((id, Verified::Fallback)));
/// assert_eq!(new.verify("other-name", &cookie), None);
/// let resigned = new.sign("session", &id);
/// assert_eq!(new.verify("session", &resigned), Some((id, Verified::Current)));
/// ```
#[derive(Clone)]
pub struct Signer {
    current: Key,
    fallbacks: Vec<Key>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("fallbacks", &self.fallbacks.len())
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer with the current key and the older keys still accepted.
    #[must_use]
    pub fn new(current: Key, fallbacks: impl IntoIterator<Item = Key>) -> Self {
        Self {
            current,
            fallbacks: fallbacks.into_iter().collect(),
        }
    }

    /// The cookie value for `id`: `id.mac`.
    #[must_use]
    pub fn sign(&self, cookie_name: &str, id: &SessionId) -> String {
        let mut out = String::with_capacity(ID_LEN + 1 + MAC_LEN);
        id.encode_into(&mut out);
        let mac = self.current.mac(cookie_name, &out);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(mac, &mut out);
        out
    }

    /// The id in a signed cookie value and which key verified it, or `None` for anything
    /// malformed or forged.
    #[must_use]
    pub fn verify(&self, cookie_name: &str, value: &str) -> Option<(SessionId, Verified)> {
        let (id_text, mac_text) = value.split_once('.')?;
        if mac_text.len() != MAC_LEN {
            return None;
        }
        let id: SessionId = id_text.parse().ok()?;
        let mut given = [0u8; 32];
        if URL_SAFE_NO_PAD.decode_slice(mac_text, &mut given).ok()? != 32 {
            return None;
        }
        let matches = |key: &Key| -> bool { key.mac(cookie_name, id_text).ct_eq(&given).into() };
        if matches(&self.current) {
            return Some((id, Verified::Current));
        }
        // Every fallback is tried, even after a match, so timing says nothing about which.
        let mut found = false;
        for key in &self.fallbacks {
            found |= matches(key);
        }
        found.then_some((id, Verified::Fallback))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        Signer::new(Key::derive(b"current"), [Key::derive(b"old")])
    }

    #[test]
    fn a_signed_id_verifies_with_the_current_key() {
        let id = SessionId::generate();
        let value = signer().sign("session", &id);
        assert_eq!(value.len(), ID_LEN + 1 + MAC_LEN);
        assert_eq!(
            signer().verify("session", &value),
            Some((id, Verified::Current))
        );
    }

    #[test]
    fn forged_and_malformed_values_are_rejected() {
        let s = signer();
        let id = SessionId::generate();
        let value = s.sign("session", &id);
        let other = SessionId::generate().to_string();
        let swapped = format!("{other}{}", &value[ID_LEN..]);
        assert_eq!(s.verify("session", &swapped), None);
        let mut flipped = value.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            s.verify("session", std::str::from_utf8(&flipped).unwrap()),
            None
        );
        for bad in [
            "",
            ".",
            "abc.def",
            &id.to_string(),
            &value[..value.len() - 1],
        ] {
            assert_eq!(s.verify("session", bad), None, "{bad:?}");
        }
        let unknown = Signer::new(Key::derive(b"stranger"), []);
        assert_eq!(unknown.verify("session", &value), None);
    }

    #[test]
    fn fallback_keys_verify_old_cookies() {
        let id = SessionId::generate();
        let old = Signer::new(Key::derive(b"old"), []).sign("session", &id);
        assert_eq!(
            signer().verify("session", &old),
            Some((id, Verified::Fallback))
        );
    }

    #[test]
    fn derived_keys_differ_from_the_secret_and_each_other() {
        assert_ne!(Key::derive(b"a"), Key::derive(b"b"));
        assert_eq!(Key::try_from(&[7u8; 32][..]).unwrap(), Key([7u8; 32]));
    }
}

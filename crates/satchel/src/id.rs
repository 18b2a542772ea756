//! Session identifiers.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Number of random bytes in a [`SessionId`]: 256 bits.
const ID_BYTES: usize = 32;
/// Length of a [`SessionId`] in its text form: 43 characters of unpadded base64url.
pub const ID_LEN: usize = 43;

/// Length of a [fingerprint](SessionId::fingerprint).
pub const FINGERPRINT_LEN: usize = 12;

/// A session identifier: 256 bits from the operating system's CSPRNG.
///
/// Its text form is 43 characters of unpadded base64url, the same shape as
/// Flask-Session's ids. Parsing accepts exactly that shape and nothing else, so a
/// malformed cookie is rejected before any store is asked about it. `Debug` shows only a
/// short prefix, so ids do not end up whole in logs.
///
/// # Examples
///
/// ```
/// use satchel::SessionId;
///
/// let id = SessionId::generate();
/// let text = id.to_string();
/// assert_eq!(text.len(), 43);
/// assert_eq!(text.parse::<SessionId>().unwrap(), id);
/// assert!("not-an-id".parse::<SessionId>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId([u8; ID_BYTES]);

impl SessionId {
    /// Generates a new random id from the operating system's CSPRNG.
    ///
    /// # Panics
    ///
    /// Panics if the operating system cannot provide random bytes; see
    /// [`SessionId::try_generate`] for the fallible twin.
    #[must_use]
    pub fn generate() -> Self {
        #[allow(clippy::expect_used)]
        Self::try_generate().expect("the operating system's random number generator failed")
    }

    /// Generates a new random id, or reports that the OS random source failed.
    ///
    /// # Errors
    ///
    /// Returns the [`getrandom::Error`] when the operating system's random number
    /// generator is unavailable.
    pub fn try_generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; ID_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// The id's 32 random bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; ID_BYTES] {
        &self.0
    }

    /// Writes the 43-character text form into `out`.
    /// The id's fingerprint: 12 characters (72 bits) of base64url SHA-256 of the id.
    /// Listings show it in the place of the id, which is a secret (it is the session);
    /// it names a session among millions, but cannot be turned back into the id.
    ///
    /// # Examples
    ///
    /// ```
    /// let id = satchel::SessionId::generate();
    /// let fingerprint = id.fingerprint();
    /// assert_eq!(fingerprint.len(), 12);
    /// assert!(!id.to_string().contains(&fingerprint));
    /// ```
    #[must_use]
    pub fn fingerprint(&self) -> String {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(self.0);
        let mut text = URL_SAFE_NO_PAD.encode(digest);
        text.truncate(FINGERPRINT_LEN);
        text
    }

    /// The key a session with this id is stored under when SESSION_HASH_IDS is on (the
    /// default): the BLAKE3 hash of the id, keyed with a fixed, public key that keeps these
    /// hashes apart from any other use of BLAKE3, as an id of the same form. It cannot be
    /// turned back into the id, so it does not work as a cookie: whoever reads the store
    /// does not get the sessions in it. No secret is needed: the id carries 256 random
    /// bits, so there is nothing to guess. (BLAKE3 rather than SHA-256 because it costs a
    /// fifth of a software SHA-256, which matters on every request.)
    ///
    /// # Examples
    ///
    /// ```
    /// let id = satchel::SessionId::generate();
    /// assert_ne!(id.hashed(), id);
    /// assert_eq!(id.hashed(), id.hashed(), "the same in every process");
    /// ```
    #[must_use]
    pub fn hashed(&self) -> Self {
        /// Separates these hashes from every other use of BLAKE3; public by design.
        const KEY: &[u8; 32] = b"satchel: the key of a session id";
        Self(*blake3::keyed_hash(KEY, &self.0).as_bytes())
    }

    /// An id derived from `input` under `context` (SHA-256 of both): the same in every
    /// process, for entries the store keeps beside sessions (a user's index).
    pub(crate) fn derive(context: &str, input: &[u8]) -> Self {
        use sha2::Digest as _;
        let mut hasher = sha2::Sha256::new();
        hasher.update(context.as_bytes());
        hasher.update([0]);
        hasher.update(input);
        Self(hasher.finalize().into())
    }

    pub(crate) fn encode_into(&self, out: &mut String) {
        URL_SAFE_NO_PAD.encode_string(self.0, out);
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; ID_LEN];
        let n = URL_SAFE_NO_PAD
            .encode_slice(self.0, &mut buf)
            .map_err(|_| fmt::Error)?;
        f.write_str(std::str::from_utf8(&buf[..n]).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.to_string();
        write!(f, "SessionId({}…)", &text[..6])
    }
}

/// Why a string is not a [`SessionId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidSessionId {
    /// The string is not 43 characters long.
    #[error("a session id is 43 characters long")]
    Length,
    /// The string is not canonical unpadded base64url.
    #[error("a session id is unpadded base64url")]
    Encoding,
}

impl FromStr for SessionId {
    type Err = InvalidSessionId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != ID_LEN {
            return Err(InvalidSessionId::Length);
        }
        let mut bytes = [0u8; ID_BYTES];
        // The engine rejects non-zero trailing bits, so every id has one text form only.
        match URL_SAFE_NO_PAD.decode_slice(s.as_bytes(), &mut bytes) {
            Ok(ID_BYTES) => Ok(Self(bytes)),
            _ => Err(InvalidSessionId::Encoding),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_round_trip_and_differ() {
        let a = SessionId::generate();
        let b = SessionId::generate();
        assert_ne!(a, b);
        assert_eq!(a.to_string().parse::<SessionId>(), Ok(a));
        let mut s = String::new();
        a.encode_into(&mut s);
        assert_eq!(s, a.to_string());
    }

    #[test]
    fn wrong_lengths_and_alphabets_are_rejected() {
        let good = SessionId::generate().to_string();
        assert_eq!("".parse::<SessionId>(), Err(InvalidSessionId::Length));
        assert_eq!(
            good[..42].parse::<SessionId>(),
            Err(InvalidSessionId::Length)
        );
        assert_eq!(
            format!("{good}A").parse::<SessionId>(),
            Err(InvalidSessionId::Length)
        );
        let slash = format!("/{}", &good[1..]);
        assert_eq!(slash.parse::<SessionId>(), Err(InvalidSessionId::Encoding));
        let non_ascii = format!("é{}", &good[2..]);
        assert!(non_ascii.parse::<SessionId>().is_err());
        let padded = format!("{}=", &good[..42]);
        assert_eq!(padded.parse::<SessionId>(), Err(InvalidSessionId::Encoding));
    }

    #[test]
    fn non_canonical_trailing_bits_are_rejected() {
        // 'B' in the last place sets bits that 256-bit ids never have.
        let good = SessionId::generate().to_string();
        let mut text = good[..42].to_owned();
        text.push('B');
        assert_eq!(text.parse::<SessionId>(), Err(InvalidSessionId::Encoding));
    }

    #[test]
    fn debug_shows_only_a_prefix() {
        let id = SessionId::generate();
        let dbg = format!("{id:?}");
        assert!(dbg.chars().count() < 20, "{dbg}");
        assert!(!dbg.contains(&id.to_string()));
    }
}

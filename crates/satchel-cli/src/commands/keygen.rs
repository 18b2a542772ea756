//! `satchel keygen`: a new random SECRET_KEY or SESSION_DATA_KEY.

use std::io::Write as _;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Bytes of entropy in a generated key: 384 bits, well past HMAC-SHA256's 256.
const KEY_BYTES: usize = 48;

/// Prints a key of [`KEY_BYTES`] bytes from the operating system's random source, as
/// 64 characters of base64url, ready for SECRET_KEY or SESSION_DATA_KEY (or, when
/// rotating, for their fallbacks after a new key replaces it).
pub(crate) fn run() -> anyhow::Result<()> {
    let key = generate()?;
    writeln!(std::io::stdout().lock(), "{key}").context("writing the key")?;
    Ok(())
}

fn generate() -> anyhow::Result<String> {
    let mut bytes = [0u8; KEY_BYTES];
    getrandom::fill(&mut bytes).context("the operating system's random source failed")?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::generate;

    #[test]
    fn keys_are_64_url_safe_characters_and_never_repeat() {
        let first = generate().unwrap();
        let second = generate().unwrap();
        assert_eq!(first.len(), 64);
        assert!(
            first
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(first, second);
    }
}

//! Property tests of the parsers that see client input: session ids, signed cookie values
//! and `Cookie` headers. Whatever a client sends, parsing never panics, and only values
//! the server made are accepted.

#![cfg(feature = "signed")]
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use satchel::SessionId;
use satchel::signing::{Key, Signer, Verified};

fn signer() -> Signer {
    Signer::new(
        Key::derive(b"property test key"),
        [Key::derive(b"older key")],
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_string_parses_or_is_rejected_without_panicking(text in ".{0,100}") {
        if let Ok(id) = text.parse::<SessionId>() {
            // Only the canonical form of a real id is accepted.
            prop_assert_eq!(id.to_string(), text);
        }
    }

    #[test]
    fn base64url_strings_of_the_right_length_round_trip_or_fail_cleanly(text in "[A-Za-z0-9_-]{43}") {
        match text.parse::<SessionId>() {
            Ok(id) => prop_assert_eq!(id.to_string(), text),
            Err(_) => prop_assert!(!matches!(text.as_bytes()[42], b'A' | b'E' | b'I' | b'M' | b'Q' | b'U' | b'Y' | b'c' | b'g' | b'k' | b'o' | b's' | b'w' | b'0' | b'4' | b'8')),
        }
    }

    #[test]
    fn no_cookie_value_verifies_unless_it_was_signed(value in ".{0,120}") {
        prop_assert_eq!(signer().verify("session", &value), None);
    }

    #[test]
    fn a_signed_value_with_any_change_is_rejected(pos in 0usize..87, byte in proptest::num::u8::ANY) {
        let id = SessionId::generate();
        let good = signer().sign("session", &id);
        prop_assert_eq!(signer().verify("session", &good), Some((id, Verified::Current)));
        let mut bytes = good.into_bytes();
        prop_assume!(bytes[pos] != byte);
        bytes[pos] = byte;
        if let Ok(changed) = String::from_utf8(bytes) {
            prop_assert_eq!(signer().verify("session", &changed), None);
        }
    }

    #[test]
    fn any_cookie_header_gives_a_session_without_panicking(header in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
        let manager = satchel::SessionManager::new(
            satchel::MemoryStore::default(),
            satchel::SessionConfig::default(),
        ).unwrap();
        let session = manager.session([header.as_slice()]);
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let len = runtime.block_on(session.len()).unwrap();
        prop_assert_eq!(len, 0);
    }
}

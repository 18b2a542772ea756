//! The `cookie` store (SESSION_TYPE=cookie): the whole session travels in its cookie,
//! encrypted and authenticated, and no server keeps anything.
//!
//! # The cookie
//!
//! ```text
//! session=v1.<base64url(key id ‖ nonce ‖ ciphertext ‖ tag)>
//! ```
//!
//! The plaintext is a JSON object: the session's id (so that [`Session::id`] and the
//! logs name it as on any store), its expiry, its creation time, its permanent flag, its
//! own lifetime and its data. It is sealed with XChaCha20-Poly1305 (RustCrypto
//! `chacha20poly1305`) under a 192-bit random nonce, with a key derived from SECRET_KEY
//! (BLAKE3 key derivation, in a context of its own: the key that signs ids, or seals
//! values, is never this one). The associated data is the cookie's name, so a value does
//! not open under another cookie. A cookie sealed with a key of SECRET_KEY_FALLBACKS
//! still opens, and is sealed again with SECRET_KEY in the answer.
//!
//! The expiry, the absolute lifetime and the per-session lifetime are enforced from the
//! sealed times, never from the cookie's `Expires`, which a client can change: a cookie
//! kept past its expiry loads as no session.
//!
//! # What a cookie cannot do
//!
//! - **Revocation.** Logging out removes the cookie from that browser; a copy taken
//!   before stays valid until its sealed expiry. There is no list of sessions, no
//!   "log out everywhere" and no per-user index: [`SessionManager::user_sessions`],
//!   [`SessionManager::revoke`] and [`SessionManager::revoke_user`] fail with
//!   [`Error::Unsupported`].
//! - **Concurrent merges.** Each answer carries the whole session: of two concurrent
//!   requests that change it, the browser keeps the cookie of the one answered last.
//!   [`Session::increment`] still adds within one request, and is kept only when the
//!   request's answer goes out (not with a `5xx`, which sends no cookie). A request
//!   still running when its process logs the session out or rotates its id is refused
//!   (`409`) rather than sending the old session back; in another process it is not,
//!   and its answer can bring the session back to that browser.
//! - **Who shares the key.** A cookie opens wherever SECRET_KEY and the cookie's name
//!   are the same: two applications that share both (sibling subdomains with a `Domain`
//!   cookie) accept each other's sessions. Give each application its own key.
//! - **Size.** Browsers keep a cookie of at most 4096 bytes (name and value): a session
//!   whose cookie would be larger fails with [`Error::TooLarge`] and nothing is sent. An
//!   insert is held to a budget of [`DATA_BUDGET`] bytes of keys and JSON values at once.
//! - **Bandwidth.** Every request carries the whole session.
//!
//! Inside a request, the session lives in a store of its own (a [`MemoryStore`]), so the
//! engine decides exactly as for a server store; the end of the request turns what that
//! store holds into the cookie.
//!
//! [`Session::id`]: crate::Session::id
//! [`Session::increment`]: crate::Session::increment
//! [`SessionManager::user_sessions`]: crate::SessionManager::user_sessions
//! [`SessionManager::revoke`]: crate::SessionManager::revoke
//! [`SessionManager::revoke_user`]: crate::SessionManager::revoke_user
//! [`Error::Unsupported`]: crate::Error::Unsupported
//! [`Error::TooLarge`]: crate::Error::TooLarge

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::id::SessionId;
use crate::record::{Changes, Data, KeyUpdate, Meta, Record, Updated};
use crate::store::sealed::{DataKey, open_bytes, seal_bytes};
use crate::store::{Capabilities, MemoryStore, Saved, SessionStore};
use crate::support::{from_unix_millis, unix_millis};

/// The most a browser keeps of one cookie: its name, `=` and its value, in bytes.
pub const COOKIE_LIMIT: usize = 4096;

/// The size budget of a session in a cookie, as
/// [`stored_size`](crate::record::stored_size) measures it (keys and JSON values): what
/// fits in [`COOKIE_LIMIT`] once sealed and encoded (base64 takes 4 bytes for 3), with
/// room for the cookie's name and the session's id and times. An insert over it fails at
/// once; the exact measure is the cookie itself, at the end of the request.
pub const DATA_BUDGET: usize = 2800;

/// The version prefix of a cookie's value.
const PREFIX: &str = "v1.";
/// The start of the associated data; the cookie's name follows.
const AAD_LABEL: &[u8] = b"satchel cookie session v1\0";
const KEY_CONTEXT: &str = "satchel 2026-12-06 cookie session key";
const KEY_ID_CONTEXT: &str = "satchel 2026-12-06 cookie session key id";

/// The `cookie` store: what [`SessionManager`](crate::SessionManager) is given for
/// SESSION_TYPE=cookie. It keeps nothing; the engine keeps each session in its cookie,
/// sealed with SECRET_KEY (see the [module documentation](self) for the format and what
/// a cookie cannot do). Asked to load or write an entry itself, it answers
/// [`StoreError::Unsupported`].
///
/// # Examples
///
/// ```
/// use satchel::store::cookie::CookieStore;
/// use satchel::{SessionConfig, SessionManager};
///
/// # tokio_test::block_on(async {
/// let config = SessionConfig::default().with_secret_key("a long, random and secret application key");
/// let manager = SessionManager::new(CookieStore, config)?;
/// let session = manager.session(None::<&str>);
/// session.insert("user", "ada").await?;
/// let outcome = session.finish(200).await?;
/// let cookie = outcome.set_cookie().expect("the session goes out in its cookie");
/// assert!(cookie.starts_with("session=v1."));
/// assert!(!cookie.contains("ada"), "sealed");
///
/// let next = manager.session([cookie.split(';').next().unwrap()]);
/// assert_eq!(next.get::<String>("user").await?.as_deref(), Some("ada"));
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct CookieStore;

impl SessionStore for CookieStore {
    async fn load(
        &self,
        _: &SessionId,
        _: Option<SystemTime>,
    ) -> Result<Option<Record>, StoreError> {
        Err(unsupported())
    }

    async fn save(&self, _: &SessionId, _: &Changes, _: SystemTime) -> Result<Saved, StoreError> {
        Err(unsupported())
    }

    async fn update(&self, _: &SessionId, _: &str, _: &KeyUpdate) -> Result<Updated, StoreError> {
        Err(unsupported())
    }

    async fn delete(&self, _: &SessionId) -> Result<(), StoreError> {
        Err(unsupported())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            writable: true,
            persistent: true,
            shared: true,
            listable: false,
            list_may_repeat: false,
            in_cookie: true,
        }
    }

    fn name(&self) -> &'static str {
        "cookie"
    }

    /// Nothing to reach: always ready.
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// What the cookie store answers when asked for an entry outside a request.
fn unsupported() -> StoreError {
    StoreError::Unsupported("reach a session outside its request: it lives in its cookie")
}

/// The store of one request's session under SESSION_TYPE=cookie: the session its cookie
/// carried, and what the request did to it. Its writes mark it changed, so that the end
/// of the request knows to send the cookie again.
#[derive(Debug, Clone)]
pub(crate) struct Jar {
    entries: MemoryStore,
    changed: Arc<AtomicBool>,
}

impl Jar {
    pub(crate) fn new() -> Self {
        Self {
            // The session, and the one a log-in or a log-out starts.
            entries: MemoryStore::with_capacity(4),
            changed: Arc::default(),
        }
    }

    /// Puts the session a cookie carried under `key`, as loaded (not a change).
    pub(crate) async fn seed(&self, key: &SessionId, record: &Record) {
        let changes = Changes::replacing_with(record);
        // A memory store does not fail.
        let _ = self.entries.save(key, &changes, record.expires_at).await;
    }

    /// Whether the request wrote anything.
    pub(crate) fn changed(&self) -> bool {
        self.changed.load(Ordering::Relaxed)
    }

    fn mark(&self) {
        self.changed.store(true, Ordering::Relaxed);
    }
}

impl SessionStore for Jar {
    async fn load(
        &self,
        id: &SessionId,
        touch: Option<SystemTime>,
    ) -> Result<Option<Record>, StoreError> {
        if touch.is_some() {
            self.mark();
        }
        self.entries.load(id, touch).await
    }

    async fn save(
        &self,
        id: &SessionId,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        self.mark();
        self.entries.save(id, changes, expires_at).await
    }

    async fn update(
        &self,
        id: &SessionId,
        key: &str,
        update: &KeyUpdate,
    ) -> Result<Updated, StoreError> {
        let updated = self.entries.update(id, key, update).await?;
        if let Updated::Applied(_) = updated {
            self.mark();
        }
        Ok(updated)
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        self.mark();
        self.entries.delete(id).await
    }

    fn capabilities(&self) -> Capabilities {
        CookieStore.capabilities()
    }

    fn name(&self) -> &'static str {
        "cookie"
    }
}

/// Seals sessions into cookie values and opens them: the current key (from SECRET_KEY)
/// and the fallbacks (SECRET_KEY_FALLBACKS).
pub(crate) struct Sealer {
    keys: Vec<DataKey>,
}

/// A session as its cookie carries it.
#[derive(Serialize, Deserialize)]
struct Payload<'a> {
    /// The session's id.
    i: String,
    /// Its expiry, Unix milliseconds.
    e: u64,
    /// Its creation time, Unix milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    c: Option<u64>,
    /// Its permanent flag, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<bool>,
    /// Its own lifetime in seconds, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    l: Option<u64>,
    /// Its data.
    d: std::borrow::Cow<'a, Data>,
}

impl Sealer {
    /// A sealer with keys derived from `current` and `fallbacks`.
    pub(crate) fn new<'a>(current: &[u8], fallbacks: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let derive = |secret: &[u8]| DataKey::derive_in(KEY_CONTEXT, KEY_ID_CONTEXT, secret);
        let keys = std::iter::once(derive(current))
            .chain(fallbacks.into_iter().map(derive))
            .collect();
        Self { keys }
    }

    /// The cookie value of the session `id` holding `record`, for the cookie `name`.
    pub(crate) fn seal(
        &self,
        name: &str,
        id: &SessionId,
        record: &Record,
    ) -> Result<String, StoreError> {
        let meta = record.meta();
        let mut text = String::with_capacity(crate::id::ID_LEN);
        id.encode_into(&mut text);
        let payload = Payload {
            i: text,
            e: unix_millis(record.expires_at),
            c: meta.created.map(unix_millis),
            p: meta.permanent,
            l: meta.lifetime.map(|lifetime| lifetime.as_secs()),
            d: std::borrow::Cow::Borrowed(&record.data),
        };
        let plaintext = serde_json::to_vec(&payload).map_err(StoreError::encode)?;
        let sealed = seal_bytes(&self.keys[0], &associated(name), &plaintext)?;
        let mut value = String::with_capacity(PREFIX.len() + (sealed.len() * 4).div_ceil(3));
        value.push_str(PREFIX);
        URL_SAFE_NO_PAD.encode_string(&sealed, &mut value);
        Ok(value)
    }

    /// The session a cookie value of the cookie `name` carries, and whether a fallback
    /// key opened it; `None` for a value that is not one this sealer made (malformed,
    /// forged, or sealed with a key neither current nor a fallback).
    pub(crate) fn open(&self, name: &str, value: &str) -> Option<(SessionId, Record, bool)> {
        let text = value.strip_prefix(PREFIX)?;
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        let (plaintext, position) = open_bytes(&self.keys, &associated(name), bytes).ok()?;
        let payload: Payload<'static> = serde_json::from_slice(&plaintext).ok()?;
        let meta = Meta {
            permanent: payload.p,
            created: payload.c.map(from_unix_millis),
            lifetime: payload.l.map(Duration::from_secs),
        };
        let record = Record::from_parts(
            payload.d.into_owned(),
            from_unix_millis(payload.e),
            meta,
            None,
        );
        Some((payload.i.parse().ok()?, record, position > 0))
    }
}

/// The associated data of a cookie value: this use, and the cookie's name.
fn associated(name: &str) -> Vec<u8> {
    [AAD_LABEL, name.as_bytes()].concat()
}

/// Opens arbitrary bytes as a cookie value (fuzzing): what opens seals again and opens
/// to the same session. Input starting with `!` is a plaintext, sealed first, so that the
/// fuzzer reaches the payload's decoding too.
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz(data: &[u8]) {
    let sealer = Sealer::new(b"the fuzzing key of satchel's cookie store", []);
    let value = match data.strip_prefix(b"!") {
        Some(plaintext) => {
            let Ok(sealed) = seal_bytes(&sealer.keys[0], &associated("session"), plaintext) else {
                return;
            };
            format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(sealed))
        }
        None => match std::str::from_utf8(data) {
            Ok(text) => text.to_owned(),
            Err(_) => return,
        },
    };
    if let Some((id, record, _)) = sealer.open("session", &value) {
        let again = sealer
            .seal("session", &id, &record)
            .expect("an opened session seals");
        let reopened = sealer
            .open("session", &again)
            .expect("a sealed session opens");
        assert_eq!((reopened.0, reopened.1), (id, record));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record() -> Record {
        let data = Data::from([("user".to_owned(), json!("ada"))]);
        let mut record = Record::new(data, from_unix_millis(1_900_000_000_123));
        record.permanent = Some(false);
        record.created = Some(from_unix_millis(1_800_000_000_456));
        record.lifetime = Some(Duration::from_secs(3600));
        record
    }

    #[test]
    fn a_session_opens_as_it_was_sealed_and_only_under_its_name() {
        let sealer = Sealer::new(b"current key of this test, long enough", []);
        let id = SessionId::generate();
        let value = sealer.seal("session", &id, &record()).unwrap();
        assert!(value.starts_with(PREFIX));
        assert!(!value.contains("ada"));
        let (opened, back, fallback) = sealer.open("session", &value).unwrap();
        assert_eq!((opened, back, fallback), (id, record(), false));
        assert!(sealer.open("other", &value).is_none(), "bound to its name");
    }

    #[test]
    fn every_changed_character_is_refused() {
        let sealer = Sealer::new(b"current key of this test, long enough", []);
        let value = sealer
            .seal("session", &SessionId::generate(), &record())
            .unwrap();
        for at in PREFIX.len()..value.len() {
            let mut forged = value.clone().into_bytes();
            forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
            let forged = String::from_utf8(forged).unwrap();
            assert!(sealer.open("session", &forged).is_none(), "changed at {at}");
        }
        for broken in ["", "v1.", "v1.!!!", "v2.abc", "plain-text"] {
            assert!(sealer.open("session", broken).is_none(), "{broken:?}");
        }
    }

    #[test]
    fn fallback_keys_open_and_say_so_and_other_keys_do_not() {
        let old = Sealer::new(b"the old key of this test, long enough", []);
        let value = old
            .seal("session", &SessionId::generate(), &record())
            .unwrap();
        let rotated = Sealer::new(
            b"the new key of this test, long enough",
            [b"the old key of this test, long enough".as_slice()],
        );
        let (_, _, fallback) = rotated.open("session", &value).unwrap();
        assert!(fallback);
        let stranger = Sealer::new(b"a key that never sealed anything here", []);
        assert!(stranger.open("session", &value).is_none());
    }
}

/// The conformance suite, on the store a request's session lives in under the cookie
/// store, for the cases that apply to one request's session. The rest do not apply:
/// concurrent saves, increments, bindings and merges across the budget (two requests
/// never share a cookie's store: of two concurrent requests the browser keeps the last
/// answer), listings and the user index (a cookie is on no server), and stale versions
/// (a cookie's store keeps none).
#[cfg(all(test, feature = "testing"))]
mod conformance {
    use super::Jar;
    use crate::testing::cases;

    macro_rules! applies {
        ($($case:ident),* $(,)?) => {
            $(
                #[tokio::test]
                async fn $case() {
                    cases::$case(Jar::new()).await;
                }
            )*
        };
    }

    applies!(
        missing_entry_loads_as_none,
        saved_data_round_trips,
        changes_apply_onto_the_latest_entry,
        removals_and_clear_apply,
        a_save_that_leaves_nothing_deletes_the_entry,
        delete_removes_the_entry,
        expired_entries_are_not_loaded,
        touch_extends_the_lifetime_without_changing_data,
        the_permanent_flag_is_stored,
        the_creation_time_and_lifetime_are_stored,
        cycle_moves_the_entry_to_the_new_id,
        changes_for_a_loaded_entry_never_recreate_it,
        updates_apply_or_refuse_as_specified,
        an_emptied_entry_takes_no_later_changes,
        a_save_over_the_budget_is_refused_and_writes_nothing,
    );
}

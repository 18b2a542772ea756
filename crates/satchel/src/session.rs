//! The session engine: one [`Session`] per request, loaded lazily, saved as a change set.
//!
//! The engine is framework-neutral. An integration asks the [`SessionManager`] for a
//! [`Session`] built from the request's `Cookie` headers, hands it to the handler, then
//! calls [`Session::finish`] with the response status and applies the [`Outcome`] it
//! returns (a `Set-Cookie` value and `Vary: Cookie`) — or, when `finish` fails, answers
//! with an empty `500`. Every policy (what to save, when to send the cookie) lives here,
//! so it is written and tested once.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::config::SessionConfig;
use crate::cookie::{self, CookieWriter};
use crate::error::{ConfigError, Error, StoreError};
use crate::id::SessionId;
use crate::record::{Changes, Data, KeyUpdate, Updated};
use crate::store::{BoxedStore, Saved, Seen, SessionStore};
use crate::support::Chain;

/// Builds a [`Session`] for each request and holds what they share: the store, the
/// configuration and the signing keys. Cloning is cheap.
///
/// # Examples
///
/// ```
/// use satchel::{MemoryStore, SessionConfig, SessionManager};
///
/// # tokio_test::block_on(async {
/// let manager = SessionManager::new(MemoryStore::default(), SessionConfig::default())?;
///
/// // First request: no Cookie header. The handler logs a user in.
/// let session = manager.session(None::<&str>);
/// session.insert("user", "ada").await?;
/// let outcome = session.finish(200).await?;
/// let set_cookie = outcome.set_cookie().expect("a new session sets its cookie");
///
/// // Second request: the browser sends the cookie back.
/// let cookie = set_cookie.split(';').next().unwrap();
/// let session = manager.session([cookie]);
/// assert_eq!(session.get::<String>("user").await?.as_deref(), Some("ada"));
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct SessionManager {
    shared: Arc<Shared>,
}

struct Shared {
    store: BoxedStore,
    config: SessionConfig,
    cookie: CookieWriter,
    writable: bool,
    #[cfg(feature = "signed")]
    signer: Option<crate::signing::Signer>,
    retired: Mutex<Retired>,
}

/// The ids this process rotated away from or destroyed lately. A request that still
/// presents one of them, and loaded after it ended, finds no session: were it to start
/// a new one, its answer would hand the browser a fresh id after the log-in or log-out
/// had set the browser's cookie, undoing that. Such a request is refused instead
/// ([`Error::Superseded`]).
#[derive(Default)]
struct Retired {
    /// When each id was retired.
    ids: std::collections::HashMap<SessionId, std::time::Instant>,
    /// The same ids, oldest first.
    order: std::collections::VecDeque<SessionId>,
}

impl Retired {
    /// How long an id is remembered: longer than a request that began before the
    /// browser received the answer that replaced its cookie can reasonably take to load.
    const WINDOW: std::time::Duration = std::time::Duration::from_secs(60);
    /// The most ids remembered at once (a few MiB): past it, the oldest go first.
    const CAPACITY: usize = 100_000;

    fn add(&mut self, id: SessionId) {
        while let Some(oldest) = self.order.front() {
            let stale = self
                .ids
                .get(oldest)
                .is_none_or(|at| at.elapsed() >= Self::WINDOW);
            if !stale && self.order.len() < Self::CAPACITY {
                break;
            }
            if let Some(oldest) = self.order.pop_front() {
                self.ids.remove(&oldest);
            }
        }
        if self.ids.insert(id, std::time::Instant::now()).is_none() {
            self.order.push_back(id);
        }
    }

    fn contains(&self, id: &SessionId) -> bool {
        self.ids
            .get(id)
            .is_some_and(|at| at.elapsed() < Self::WINDOW)
    }
}

impl fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionManager")
            .field("store", &self.shared.store)
            .field("config", &self.shared.config)
            .finish()
    }
}

impl SessionManager {
    /// A manager for `store` with `config`, after checking the configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the configuration contradicts itself (see
    /// [`SessionConfig::validate`]).
    pub fn new(store: impl SessionStore, config: SessionConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let store = BoxedStore::new(store);
        let writable = store.capabilities().writable;
        if config.use_signer() {
            let short = |secret: &crate::Secret| secret.as_bytes().len() < 32;
            if config.secret_key().is_some_and(short)
                || config.secret_key_fallbacks().iter().any(short)
            {
                tracing::warn!(
                    "SECRET_KEY (or a key of SECRET_KEY_FALLBACKS) is shorter than 32 bytes: \
                     a short secret is easier to guess; generate one with `satchel keygen`"
                );
            }
        }
        #[cfg(feature = "signed")]
        let signer = config.use_signer().then(|| {
            use crate::signing::{Key, Signer};
            let key = |secret: &crate::Secret| Key::derive(secret.as_bytes());
            let current = config.secret_key().map(key);
            let fallbacks = config.secret_key_fallbacks().iter().map(key);
            // validate() guarantees SECRET_KEY is set when the signer is on.
            Signer::new(current.unwrap_or_else(Key::generate), fallbacks)
        });
        Ok(Self {
            shared: Arc::new(Shared {
                cookie: CookieWriter::new(&config),
                store,
                config,
                writable,
                #[cfg(feature = "signed")]
                signer,
                retired: Mutex::default(),
            }),
        })
    }

    /// A manager whose store is built from the configuration's SESSION_TYPE and its
    /// store settings.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the configuration is invalid or the store cannot be opened
    /// (for instance, a SESSION_FILE_DIR that cannot be created).
    pub async fn from_config(config: SessionConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let store = crate::store::from_config(&config).await?;
        Self::new(store, config)
    }

    /// The configuration in force.
    pub fn config(&self) -> &SessionConfig {
        &self.shared.config
    }

    /// The store sessions live in.
    #[must_use]
    pub fn store(&self) -> &BoxedStore {
        &self.shared.store
    }

    /// The session of one request, from the values of its `Cookie` headers. Nothing is
    /// read from the store until the handler first uses the session.
    ///
    /// Give it every `Cookie` header value as it came (as `&str` or raw bytes): cookies
    /// holding non-ASCII bytes do not hide the session cookie.
    pub fn session<I>(&self, cookie_headers: I) -> Session
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let name = self.shared.cookie.name();
        let mut candidates = Vec::new();
        for header in cookie_headers {
            candidates.extend(
                cookie::values(header.as_ref(), name)
                    .filter(|value| !value.is_empty())
                    .map(Box::<str>::from),
            );
        }
        Session {
            inner: Arc::new(Inner {
                shared: Arc::clone(&self.shared),
                candidates,
                loaded: OnceCell::new(),
                state: Mutex::new(State::default()),
            }),
        }
    }
}

/// The session of one request.
///
/// Cheap to clone; clones share the same state. Every accessor is `async` because the
/// session is loaded from the store on first use: a request whose handler never touches
/// its session costs no store access at all.
///
/// Changes are recorded as a [`Changes`] set and saved once, after the handler, when
/// something really changed (inserting a value equal to the stored one is no change).
/// See [`Session::finish`] for what happens then.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    /// Values of every cookie with the session cookie's name, not yet verified.
    candidates: Vec<Box<str>>,
    /// Set once the load from the store ran: `true` when it succeeded.
    loaded: OnceCell<bool>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// A key was updated in the store at once ([`Session::increment`],
    /// [`Session::insert_if_unchanged`]): the session changed, though no change set is
    /// left to save, so its expiry follows as for a change.
    updated: bool,
    /// The handler used the session in any way.
    touched: bool,
    /// The cookie candidates were verified (the result is in `id`).
    identified: bool,
    /// The id from the cookie, once verified.
    id: Option<SessionId>,
    /// The cookie was verified by a fallback key: re-sign it.
    resign: bool,
    /// Which of the presented cookie values gave `id`: re-sent as it is when the id stays.
    presented: Option<usize>,
    /// The store held an entry for `id`.
    existed: bool,
    data: Data,
    expires_at: Option<SystemTime>,
    stored_permanent: Option<bool>,
    /// The store's version of the loaded entry, if it keeps versions.
    version: Option<u64>,
    changes: Changes,
    /// `cycle_id` was called.
    renew: bool,
    /// `destroy` was called: delete this entry.
    purge: Option<SessionId>,
    /// `destroy` was called: the cookie goes unless a new session replaces it.
    destroyed: bool,
    /// The store failed; the response becomes a 500.
    failed: bool,
    /// The value each changed key had when loaded (`None`: absent), so that a key
    /// changed and changed back counts as untouched.
    original: BTreeMap<String, Option<Value>>,
}

impl State {
    /// Records that this request sets `key` to `value` (`None`: removes it), in its view
    /// and its change set. Writing the value the key already has changes nothing.
    fn write(&mut self, key: &str, value: Option<Value>) {
        if self.data.get(key) == value.as_ref() {
            return;
        }
        self.remember(key);
        match value {
            Some(value) => {
                self.changes.set(key, value.clone());
                self.data.insert(key.to_owned(), value);
            }
            None => {
                self.changes.remove(key);
                self.data.remove(key);
            }
        }
    }

    /// Whether this request's change set names `key`, or drops every key.
    fn changes_key(&self, key: &str) -> bool {
        self.changes.is_clear()
            || self.changes.sets().contains_key(key)
            || self.changes.removals().contains(key)
    }

    /// Remembers `key`'s loaded value before its first change.
    fn remember(&mut self, key: &str) {
        if !self.original.contains_key(key) {
            let value = self.data.get(key).cloned();
            self.original.insert(key.to_owned(), value);
        }
    }

    /// Drops from the change set what ends as it was loaded: a key set back to its value,
    /// a key added then removed, a permanent flag set back. What remains is what the
    /// request really changed, and all that is applied onto a concurrent writer's entry.
    fn settle(&mut self, default_permanent: bool) {
        if self.changes.is_clear() {
            return;
        }
        let original = &self.original;
        self.changes
            .retain(|key, value| original.get(key).is_none_or(|was| was.as_ref() != value));
        let loaded = self.stored_permanent.unwrap_or(default_permanent);
        if self.changes.permanent() == Some(loaded) {
            self.changes.forget_permanent();
        }
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("Session")
            .field("id", &state.id)
            .field("existed", &state.existed)
            .field("keys", &state.data.len())
            .field("changed", &!state.changes.is_empty())
            .finish_non_exhaustive()
    }
}

/// What an integration applies to the response once the handler has run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct Outcome {
    set_cookie: Option<String>,
    vary_cookie: bool,
}

impl Outcome {
    /// The `Set-Cookie` header value to add, if any.
    #[must_use]
    pub fn set_cookie(&self) -> Option<&str> {
        self.set_cookie.as_deref()
    }

    /// Whether to add `Vary: Cookie`: the response depended on the session.
    #[must_use]
    pub fn vary_cookie(&self) -> bool {
        self.vary_cookie
    }
}

/// The error for an update the store (or the request's own view) refused.
fn refusal(key: &str, refused: &Updated) -> Error {
    let key = key.to_owned();
    match refused {
        Updated::Mismatch(_) => Error::Conflict { key },
        _ => Error::NotAnInteger { key },
    }
}

/// Sets or removes `key` in a request's view of its data.
fn set_view(data: &mut Data, key: &str, value: Option<Value>) {
    match value {
        Some(value) => data.insert(key.to_owned(), value),
        None => data.remove(key),
    };
}

fn store_failed(what: &str, error: &StoreError) -> Error {
    tracing::error!(error = %Chain(error), "session store failed to {what}");
    Error::Unavailable
}

impl Session {
    fn state(&self) -> MutexGuard<'_, State> {
        // State stays consistent at every await point; a panic in another clone's
        // critical section leaves nothing half-done worth refusing service for.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn config(&self) -> &SessionConfig {
        &self.inner.shared.config
    }

    /// Verifies the cookie candidates once, giving the id to load.
    fn identify(&self, state: &mut State) -> Option<SessionId> {
        if !state.identified {
            state.identified = true;
            for (index, value) in self.inner.candidates.iter().enumerate() {
                if let Some((id, resign)) = self.verify(value) {
                    state.id = Some(id);
                    state.resign = resign;
                    state.presented = Some(index);
                    break;
                }
            }
        }
        state.id
    }

    fn verify(&self, value: &str) -> Option<(SessionId, bool)> {
        #[cfg(feature = "signed")]
        if let Some(signer) = &self.inner.shared.signer {
            let (id, by) = signer.verify(self.inner.shared.cookie.name(), value)?;
            return Some((id, by == crate::signing::Verified::Fallback));
        }
        value.parse().ok().map(|id| (id, false))
    }

    fn cookie_value(&self, id: &SessionId) -> String {
        #[cfg(feature = "signed")]
        if let Some(signer) = &self.inner.shared.signer {
            return signer.sign(self.inner.shared.cookie.name(), id);
        }
        let mut value = String::with_capacity(crate::id::ID_LEN);
        id.encode_into(&mut value);
        value
    }

    fn retired(&self) -> MutexGuard<'_, Retired> {
        // Only ids are kept there: a panic elsewhere cannot leave it half-updated.
        self.inner
            .shared
            .retired
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn retire(&self, id: SessionId) {
        self.retired().add(id);
    }

    /// Whether the request presented an id this process rotated away from or destroyed
    /// lately (see `Retired`).
    fn presents_retired_id(&self) -> bool {
        if self.inner.candidates.is_empty() {
            return false;
        }
        let retired = self.retired();
        if retired.ids.is_empty() {
            return false;
        }
        self.inner
            .candidates
            .iter()
            .filter_map(|value| self.verify(value))
            .any(|(id, _)| retired.contains(&id))
    }

    /// The cookie for the id the browser presented, which stays: the value it sent,
    /// as it is, when that verified with the current key (no encoding, no signing),
    /// else the id signed anew.
    fn same_id_cookie(&self, state: &State, id: &SessionId, expires: Option<SystemTime>) -> String {
        let cookie = &self.inner.shared.cookie;
        let presented = state
            .presented
            .filter(|_| !state.resign)
            .and_then(|index| self.inner.candidates.get(index));
        match presented {
            Some(value) => cookie.set(value, expires),
            None => cookie.set(&self.cookie_value(id), expires),
        }
    }

    async fn load(&self) -> Result<MutexGuard<'_, State>, Error> {
        let ok = *self
            .inner
            .loaded
            .get_or_init(|| self.load_from_store())
            .await;
        let mut state = self.state();
        state.touched = true;
        if ok && !state.failed {
            Ok(state)
        } else {
            Err(Error::Unavailable)
        }
    }

    async fn load_from_store(&self) -> bool {
        // Every cookie of our name that verifies, in the order the browser sent them: a
        // stale cookie (another path or domain) must not hide the live one.
        let ids: Vec<(SessionId, bool, Option<usize>)> = {
            let mut state = self.state();
            state.touched = true;
            if state.identified {
                let id = state.id;
                id.map(|id| (id, state.resign, state.presented))
                    .into_iter()
                    .collect()
            } else {
                state.identified = true;
                let verified = self.inner.candidates.iter().enumerate();
                verified
                    .filter_map(|(index, value)| {
                        self.verify(value)
                            .map(|(id, resign)| (id, resign, Some(index)))
                    })
                    .collect()
            }
        };
        let store = &self.inner.shared.store;
        let now = SystemTime::now();
        for (id, resign, presented) in ids {
            // A plain read: a refresh that falls due is applied when the request ends,
            // in the place of a save (see `finish`).
            let loaded = store.load(&id, None).await;
            match loaded {
                Ok(Some(record)) if !record.is_expired(now) => {
                    let mut state = self.state();
                    state.id = Some(id);
                    state.resign = resign;
                    state.presented = presented;
                    state.existed = true;
                    state.data = record.data;
                    state.expires_at = Some(record.expires_at);
                    state.stored_permanent = record.permanent;
                    state.version = record.version;
                    return true;
                }
                Ok(_) => {}
                Err(StoreError::Decode(error)) => {
                    tracing::warn!(
                        error = %Chain(&*error),
                        "stored session could not be decoded; starting a fresh session"
                    );
                }
                Err(error) => {
                    store_failed("load", &error);
                    self.state().failed = true;
                    return false;
                }
            }
        }
        true
    }

    /// The value stored under `key`, converted to `T`.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed; [`Error::Value`] when the stored
    /// value does not convert to `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use satchel::{MemoryStore, SessionConfig, SessionManager};
    /// # tokio_test::block_on(async {
    /// # let manager = SessionManager::new(MemoryStore::default(), SessionConfig::default())?;
    /// let session = manager.session(None::<&str>);
    /// session.insert("visits", 3u32).await?;
    /// assert_eq!(session.get::<u32>("visits").await?, Some(3));
    /// assert_eq!(session.get::<u32>("missing").await?, None);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        match self.get_value(key).await? {
            Some(value) => serde_json::from_value(value)
                .map(Some)
                .map_err(|source| Error::Value {
                    key: key.to_owned(),
                    source,
                }),
            None => Ok(None),
        }
    }

    /// The raw value stored under `key`.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed.
    pub async fn get_value(&self, key: &str) -> Result<Option<Value>, Error> {
        Ok(self.load().await?.data.get(key).cloned())
    }

    /// Stores `value` under `key`. Inserting a value equal to the current one changes
    /// nothing and saves nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Disabled`] on the `null` store; [`Error::Value`] when `value` does not
    /// serialize; [`Error::Unavailable`] when the store failed.
    pub async fn insert<T: Serialize>(&self, key: &str, value: T) -> Result<(), Error> {
        let value = serde_json::to_value(value).map_err(|source| Error::Value {
            key: key.to_owned(),
            source,
        })?;
        self.insert_value(key, value).await
    }

    /// Stores a raw value under `key`; see [`Session::insert`].
    ///
    /// # Errors
    ///
    /// [`Error::Disabled`] on the `null` store; [`Error::Unavailable`] when the store
    /// failed.
    pub async fn insert_value(&self, key: &str, value: Value) -> Result<(), Error> {
        if !self.inner.shared.writable {
            return Err(Error::Disabled);
        }
        self.load().await?.write(key, Some(value));
        Ok(())
    }

    /// Adds `by` to the integer under `key` (a missing key counts as `0`) and returns
    /// the sum: the counter for "no lost increments".
    ///
    /// The increment is committed when this returns, whatever the request's status or a
    /// later error. For a stored session, the store applies the increment at once, atomically onto
    /// the key's latest value (one round trip), so concurrent requests never lose each
    /// other's increments and each sees its own sum: 30 concurrent increments by 1 end at
    /// exactly 30, and answer 1 to 30 between them. The session's expiry is left as it
    /// is. A session this request creates is invisible to others until the request
    /// ends, so there the increment is simply recorded with the other changes; so it is
    /// when this request already set, removed or cleared `key` (the key is then this
    /// request's own, and the last writer wins as for [`insert`](Self::insert)).
    ///
    /// # Errors
    ///
    /// - [`Error::Superseded`] when the session was destroyed, rotated or expired by
    ///   another request meanwhile: nothing was written (an empty `409` if returned from
    ///   the handler).
    /// - [`Error::NotAnInteger`] when the value is not an integer or the sum would
    ///   overflow `i64`: nothing was written.
    /// - [`Error::Disabled`] on the `null` store; [`Error::Unavailable`] when the store
    ///   failed.
    ///
    /// # Examples
    ///
    /// ```
    /// # use satchel::{MemoryStore, SessionConfig, SessionManager};
    /// # tokio_test::block_on(async {
    /// # let manager = SessionManager::new(MemoryStore::default(), SessionConfig::default())?;
    /// let session = manager.session(None::<&str>);
    /// assert_eq!(session.increment("visits", 1).await?, 1);
    /// assert_eq!(session.increment("visits", 2).await?, 3);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn increment(&self, key: &str, by: i64) -> Result<i64, Error> {
        let update = KeyUpdate::Increment(by);
        match self.update_key(key, update).await? {
            Some(Value::Number(sum)) => sum.as_i64().ok_or_else(|| Error::NotAnInteger {
                key: key.to_owned(),
            }),
            _ => Err(Error::NotAnInteger {
                key: key.to_owned(),
            }),
        }
    }

    /// Stores `value` under `key` only if the key still holds, in the store, what this
    /// request read (or is still absent, if it was): a compare-and-set, applied at once
    /// and atomically, for a read-modify-write that must not overwrite a concurrent
    /// change.
    ///
    /// On a conflict nothing is written, and this request's view of the key becomes the
    /// stored value, so the handler can decide again from it or answer `409`. As for
    /// [`increment`](Self::increment), a session this request creates, or a key it
    /// already changed, is its own: the value is then set as by [`insert`](Self::insert).
    ///
    /// # Errors
    ///
    /// - [`Error::Conflict`] when another request changed the key since this one read
    ///   it.
    /// - [`Error::Superseded`] when the session was destroyed, rotated or expired
    ///   meanwhile.
    /// - [`Error::Value`] when `value` does not serialize; [`Error::Disabled`] on the
    ///   `null` store; [`Error::Unavailable`] when the store failed.
    ///
    /// # Examples
    ///
    /// ```
    /// # use satchel::{MemoryStore, SessionConfig, SessionManager};
    /// # tokio_test::block_on(async {
    /// # let manager = SessionManager::new(MemoryStore::default(), SessionConfig::default())?;
    /// let session = manager.session(None::<&str>);
    /// let seats: u32 = session.get("seats").await?.unwrap_or(10);
    /// session.insert_if_unchanged("seats", seats - 1).await?;
    /// assert_eq!(session.get::<u32>("seats").await?, Some(9));
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn insert_if_unchanged<T: Serialize>(
        &self,
        key: &str,
        value: T,
    ) -> Result<(), Error> {
        let new = serde_json::to_value(value).map_err(|source| Error::Value {
            key: key.to_owned(),
            source,
        })?;
        let expected = {
            let state = self.load().await?;
            state.data.get(key).cloned()
        };
        let update = KeyUpdate::Replace {
            expected,
            new: Some(new),
        };
        self.update_key(key, update).await.map(|_| ())
    }

    /// Applies `update` to `key`: in the store at once for a stored session whose key
    /// this request has not changed, else into this request's own change set. Returns
    /// the key's value afterwards.
    async fn update_key(&self, key: &str, update: KeyUpdate) -> Result<Option<Value>, Error> {
        if !self.inner.shared.writable {
            return Err(Error::Disabled);
        }
        let id = {
            let mut state = self.load().await?;
            let own = !state.existed || state.changes_key(key);
            match state.id.filter(|_| !own) {
                Some(id) => id,
                None => {
                    let value = update
                        .apply(state.data.get(key))
                        .map_err(|refused| refusal(key, &refused))?;
                    state.write(key, value.clone());
                    return Ok(value);
                }
            }
        };
        let outcome = self.inner.shared.store.update(&id, key, &update).await;
        let mut state = self.state();
        let value = match outcome {
            Ok(Updated::Applied(value)) => value,
            Ok(Updated::Missing) => return Err(Error::Superseded),
            Ok(Updated::Mismatch(current)) => {
                // The view follows the store, so the handler can decide again.
                set_view(&mut state.data, key, current);
                return Err(Error::Conflict {
                    key: key.to_owned(),
                });
            }
            Ok(refused) => return Err(refusal(key, &refused)),
            Err(error) => return Err(store_failed("update a key", &error)),
        };
        state.updated = true;
        // The store holds it already: the view follows, and no change is recorded (a
        // later insert of the same value is no change either).
        if !state.changes_key(key) {
            set_view(&mut state.data, key, value.clone());
        }
        Ok(value)
    }

    /// Removes `key`, returning its value converted to `T` if it was there.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed; [`Error::Value`] when the removed
    /// value does not convert to `T` (it is removed all the same).
    pub async fn remove<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        match self.remove_value(key).await? {
            Some(value) => serde_json::from_value(value)
                .map(Some)
                .map_err(|source| Error::Value {
                    key: key.to_owned(),
                    source,
                }),
            None => Ok(None),
        }
    }

    /// Removes `key`, returning its raw value if it was there.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed.
    pub async fn remove_value(&self, key: &str) -> Result<Option<Value>, Error> {
        let mut state = self.load().await?;
        let removed = state.data.get(key).cloned();
        state.write(key, None);
        Ok(removed)
    }

    /// Removes every key. The session keeps its id; if nothing is added afterwards, its
    /// entry is deleted and its cookie removed.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed.
    pub async fn clear(&self) -> Result<(), Error> {
        let mut state = self.load().await?;
        if state.existed || !state.data.is_empty() {
            state.data.clear();
            state.changes.clear();
        }
        Ok(())
    }

    /// The session's keys, in order.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed.
    pub async fn keys(&self) -> Result<Vec<String>, Error> {
        Ok(self.load().await?.data.keys().cloned().collect())
    }

    /// The whole session data, as it stands in this request.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed.
    pub async fn data(&self) -> Result<Data, Error> {
        Ok(self.load().await?.data.clone())
    }

    /// The number of keys.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed.
    pub async fn len(&self) -> Result<usize, Error> {
        Ok(self.load().await?.data.len())
    }

    /// Whether the session holds no keys.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed.
    pub async fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.load().await?.data.is_empty())
    }

    /// Gives the session a new id at the end of the request, keeping its data. Call it
    /// when privileges change (log in, log out of an admin role) so that an id seen
    /// before, perhaps planted by an attacker, is worth nothing afterwards.
    ///
    /// # Errors
    ///
    /// [`Error::Disabled`] on the `null` store; [`Error::Unavailable`] when the store
    /// failed.
    pub async fn cycle_id(&self) -> Result<(), Error> {
        if !self.inner.shared.writable {
            return Err(Error::Disabled);
        }
        self.load().await?.renew = true;
        Ok(())
    }

    /// Deletes the session: its entry goes from the store and the browser is told to
    /// drop the cookie. The session is empty afterwards; anything inserted later in the
    /// same request starts a new session with a new id.
    ///
    /// Costs no load: only the delete, after the handler.
    pub fn destroy(&self) {
        let mut state = self.state();
        state.touched = true;
        let id = self.identify(&mut state);
        let failed = state.failed;
        *state = State {
            touched: true,
            identified: true,
            purge: id.or(state.purge),
            destroyed: true,
            failed,
            ..State::default()
        };
    }

    /// Whether the session's cookie outlives the browser session: the per-session flag
    /// set by [`Session::set_permanent`], or SESSION_PERMANENT.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed.
    pub async fn is_permanent(&self) -> Result<bool, Error> {
        let state = self.load().await?;
        Ok(self.permanent(&state))
    }

    fn permanent(&self, state: &State) -> bool {
        state
            .changes
            .permanent()
            .or(state.stored_permanent)
            .unwrap_or_else(|| self.config().permanent())
    }

    /// Makes this session's cookie permanent (it carries an expiry) or a browser-session
    /// cookie, overriding SESSION_PERMANENT for this session only. The flag is stored
    /// with the session.
    ///
    /// # Errors
    ///
    /// [`Error::Disabled`] on the `null` store; [`Error::Unavailable`] when the store
    /// failed.
    pub async fn set_permanent(&self, permanent: bool) -> Result<(), Error> {
        if !self.inner.shared.writable {
            return Err(Error::Disabled);
        }
        let mut state = self.load().await?;
        if self.permanent(&state) != permanent {
            state.changes.set_permanent(permanent);
        }
        Ok(())
    }

    /// When the stored entry expires, as loaded; `None` for a session not stored yet.
    ///
    /// A refresh that falls due moves it when the request ends, and the re-sent cookie
    /// carries the new expiry.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed.
    pub async fn expires_at(&self) -> Result<Option<SystemTime>, Error> {
        Ok(self.load().await?.expires_at)
    }

    /// The id of the stored session this request loaded, if any.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed.
    pub async fn id(&self) -> Result<Option<SessionId>, Error> {
        let state = self.load().await?;
        Ok(state.existed.then_some(state.id).flatten())
    }

    /// Ends the request: saves what changed and says what to put on the response.
    ///
    /// - A session the handler never used: nothing, not even `Vary`.
    /// - A `5xx` status: nothing is saved; `Vary: Cookie` only.
    /// - Changes are applied as one change set onto the latest stored entry; an entry
    ///   left empty is deleted and its cookie removed; a new session that ends empty is
    ///   never stored.
    /// - Without changes, when SESSION_REFRESH_EACH_REQUEST is on, a stored permanent
    ///   session's expiry is moved to a full lifetime from now once it lags by more than
    ///   [`refresh_granularity`](SessionConfig::refresh_granularity): a touch, which is
    ///   then the request's one write, and the cookie is re-sent with the new expiry.
    ///   Between touches the browser's cookie already expires with the stored entry, so
    ///   it is not re-sent. Non-permanent sessions are neither re-sent nor extended. A
    ///   cookie verified by a fallback key is re-signed.
    /// - A cookie that names no live session is left alone (a concurrent request may be
    ///   replacing it); it is removed only when this request destroyed or emptied the
    ///   session.
    /// - A session that another request destroyed (or that expired) while this one ran
    ///   stays destroyed: this request's changes are dropped, not written into a new
    ///   entry under the old id (see [`Changes::require_existing`]).
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed during the request or now; the
    /// integration answers with an empty `500`. [`Error::Superseded`] when keys this
    /// request set could not be kept because its session was destroyed, rotated or
    /// expired meanwhile (or, lately in this process, before it loaded); the integration
    /// answers with an empty `409`. Keys updated at once ([`increment`](Self::increment),
    /// [`insert_if_unchanged`](Self::insert_if_unchanged)) were committed when those
    /// returned, whatever the request's end.
    pub async fn finish(&self, status: u16) -> Result<Outcome, Error> {
        let mut state = std::mem::take(&mut *self.state());
        state.settle(self.config().permanent());
        if !state.touched {
            return Ok(Outcome::default());
        }
        if state.failed {
            return Err(Error::Unavailable);
        }
        let mut outcome = Outcome {
            set_cookie: None,
            vary_cookie: true,
        };
        if status >= 500 {
            return Ok(outcome);
        }
        let shared = &self.inner.shared;
        let store = &shared.store;
        let config = &shared.config;
        if let Some(old) = state.purge {
            // Retired before the delete: a request that finds the entry gone must already
            // see that it was destroyed, not that it never was.
            self.retire(old);
            store
                .delete(&old)
                .await
                .map_err(|e| store_failed("delete", &e))?;
        }
        let permanent = self.permanent(&state);
        let changed = !state.changes.is_empty();
        let now = SystemTime::now();
        let expires_at = now + config.lifetime();
        // A stored permanent session is due for a later expiry once the one it has lags a
        // full lifetime from now by more than the granularity.
        let due = expires_at
            .checked_sub(config.refresh_granularity())
            .unwrap_or(expires_at);
        let lagging = state.expires_at.is_none_or(|at| at < due);
        // Whether a save that keeps the id re-sends the cookie: only when the browser's
        // copy must change (a new expiry that is due, the flag that makes it permanent
        // or not, a new signature). Otherwise the cookie it holds already names this id
        // and expires with the entry, and a late answer re-sending it could land after
        // a concurrent log-in or log-out had replaced it, bringing back a dead id.
        let resend = state.resign || state.changes.permanent().is_some() || (permanent && lagging);
        // A permanent session's stored expiry moves only when its cookie is re-sent, so
        // that the two keep expiring together; a browser-session cookie carries no
        // expiry, so its entry's moves freely.
        let kept = match state.expires_at {
            Some(at) if permanent && !resend => at,
            _ => expires_at,
        };
        if state.existed {
            // Never bring back an entry that a concurrent request destroyed meanwhile.
            state.changes.require_existing();
        }
        let written = match state.id.filter(|_| state.existed) {
            Some(id) if state.renew => {
                let new = SessionId::generate();
                // Retired before the move, as for a delete. While the move runs, the id
                // still names its entry, which any request for it loads as usual.
                self.retire(id);
                let saved = store.cycle(&id, &new, &state.changes, expires_at).await;
                Some((new, saved))
            }
            Some(id) if changed => {
                // The stored expiry moves only together with the cookie (see `resend`).
                let expires_at = if resend { expires_at } else { kept };
                // The version shortcut writes what this request saw; once the loaded
                // entry's expiry has passed, the store must decide from what it holds
                // (an expired entry takes no changes), so the shortcut is not taken.
                let live = state.expires_at.is_some_and(|at| at > now);
                let saved = match state.version.filter(|_| live) {
                    Some(version) => {
                        let seen = Seen {
                            version,
                            data: &state.data,
                            permanent: state.changes.permanent().or(state.stored_permanent),
                        };
                        store.save_seen(&id, seen, &state.changes, expires_at).await
                    }
                    None => store.save(&id, &state.changes, expires_at).await,
                };
                Some((id, saved))
            }
            Some(id) => {
                // A key updated at once is a change: the expiry follows it as it follows
                // a save (once it lags), whatever SESSION_REFRESH_EACH_REQUEST says.
                let refresh = (permanent && config.refresh_each_request()) || state.updated;
                let mut live = true;
                // The stored expiry, once a touch moved it.
                let mut moved = None;
                if refresh && lagging && state.expires_at.is_some() {
                    // The refresh is this request's one write: a touch that moves the
                    // expiry and leaves the data alone.
                    match store.load(&id, Some(expires_at)).await {
                        Ok(Some(record)) => moved = Some(record.expires_at),
                        // Destroyed or expired meanwhile: the cookie is left alone.
                        Ok(None) => live = false,
                        Err(error) => {
                            // Nothing the request did is lost: the entry keeps its
                            // expiry, and so does the browser's cookie.
                            tracing::warn!(
                                error = %Chain(&error),
                                "session store failed to refresh an expiry; left as it was"
                            );
                        }
                    }
                }
                // The browser's cookie already expires when the stored entry does (both
                // were set by the same save or touch): re-sending it unchanged would
                // change nothing, so it goes out only when the expiry moved or the value
                // must be re-signed.
                // A browser-session cookie carries no expiry: a moved one changes nothing.
                if live && ((moved.is_some() && permanent) || state.resign) {
                    let expires = moved.or(state.expires_at).filter(|_| permanent);
                    outcome.set_cookie = Some(self.same_id_cookie(&state, &id, expires));
                }
                None
            }
            None if !state.data.is_empty() => {
                // A request that destroyed its own session may start a new one, and so
                // may a log-in (it replaces the cookie, as the browser wants).
                if !state.destroyed && !state.renew && self.presents_retired_id() {
                    tracing::debug!("a rotated or destroyed session id came back; not replaced");
                    return Err(Error::Superseded);
                }
                let new = SessionId::generate();
                let saved = store.save(&new, &state.changes, expires_at).await;
                Some((new, saved))
            }
            None => None,
        };
        let presented = !self.inner.candidates.is_empty();
        match written {
            Some((id, saved)) => match saved.map_err(|e| store_failed("save", &e))? {
                Saved::Stored if state.id == Some(id) => {
                    if resend {
                        let expires = permanent.then_some(expires_at);
                        outcome.set_cookie = Some(self.same_id_cookie(&state, &id, expires));
                    }
                }
                Saved::Stored => {
                    let expires = permanent.then_some(expires_at);
                    outcome.set_cookie = Some(shared.cookie.set(&self.cookie_value(&id), expires));
                }
                Saved::Empty if state.existed && !state.data.is_empty() => {
                    // The request's view still held data: the entry was destroyed,
                    // rotated or expired while it ran, or (with only removals) another
                    // request's removals emptied it first. The cookie is left to whoever
                    // replaced it. Keys it set were not kept, and the request must not
                    // answer as if they were; removals hold either way.
                    if !state.changes.sets().is_empty() {
                        tracing::debug!("session ended by a concurrent request; changes dropped");
                        return Err(Error::Superseded);
                    }
                }
                Saved::Empty if presented => outcome.set_cookie = Some(shared.cookie.removal()),
                Saved::Empty => {}
            },
            None if presented && state.destroyed => {
                outcome.set_cookie = Some(shared.cookie.removal());
            }
            None => {}
        }
        Ok(outcome)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, SessionStore};
    use serde_json::json;
    use std::time::Duration;

    async fn logged_in(manager: &SessionManager) -> String {
        let session = manager.session(None::<&str>);
        session.insert("user", "ada").await.unwrap();
        let outcome = session.finish(200).await.unwrap();
        outcome
            .set_cookie()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    }

    fn manager(store: &MemoryStore) -> SessionManager {
        let config = SessionConfig::default().with_refresh_each_request(false);
        SessionManager::new(store.clone(), config).unwrap()
    }

    #[tokio::test]
    async fn a_read_extends_the_stored_expiry_only_once_it_lags_by_the_granularity() {
        let store = MemoryStore::default();
        let config = SessionConfig::default().with_lifetime(Duration::from_secs(20));
        assert_eq!(config.refresh_granularity(), Duration::from_millis(200));
        let manager = SessionManager::new(store.clone(), config).unwrap();
        let cookie = logged_in(&manager).await;
        let id: SessionId = cookie.split_once('=').unwrap().1.parse().unwrap();
        let stored = || async { store.load(&id, None).await.unwrap().unwrap().expires_at };
        let saved_at = stored().await;

        let read = || async {
            let session = manager.session([cookie.as_str()]);
            assert_eq!(session.get::<String>("user").await.unwrap().unwrap(), "ada");
            session.finish(200).await.unwrap()
        };
        let outcome = read().await;
        assert_eq!(
            outcome.set_cookie(),
            None,
            "the browser's cookie already carries the stored expiry"
        );
        assert_eq!(stored().await, saved_at, "a fresh entry is not rewritten");

        tokio::time::sleep(Duration::from_millis(250)).await;
        let resent = read().await;
        let refreshed = stored().await;
        assert!(
            refreshed >= saved_at + Duration::from_millis(250),
            "an entry lagging by more than the granularity is extended"
        );
        let cookie = resent.set_cookie().expect("the moved expiry is re-sent");
        assert!(
            cookie.contains(&httpdate::fmt_http_date(refreshed)),
            "the cookie carries the stored expiry: {cookie}"
        );
    }

    #[tokio::test]
    async fn a_session_destroyed_during_a_request_is_not_brought_back_by_its_save() {
        let store = MemoryStore::default();
        let manager = manager(&store);
        let cookie = logged_in(&manager).await;
        let id: SessionId = cookie.split_once('=').unwrap().1.parse().unwrap();

        // A slow request loads the session…
        let slow = manager.session([cookie.as_str()]);
        assert_eq!(slow.get::<String>("user").await.unwrap().unwrap(), "ada");
        // …while a logout completes.
        let logout = manager.session([cookie.as_str()]);
        logout.destroy();
        let removal = logout.finish(200).await.unwrap();
        assert!(removal.set_cookie().unwrap().contains("Max-Age=0"));

        slow.insert("cart", 3).await.unwrap();
        let refused = slow.finish(200).await.unwrap_err();
        assert!(matches!(refused, Error::Superseded), "{refused:?}");
        assert_eq!(refused.status_code(), 409);
        assert!(store.load(&id, None).await.unwrap().is_none(), "still gone");

        // The same holds for an id rotation racing the logout.
        let cookie = logged_in(&manager).await;
        let login = manager.session([cookie.as_str()]);
        login.get_value("user").await.unwrap();
        let logout = manager.session([cookie.as_str()]);
        logout.destroy();
        assert!(logout.finish(200).await.unwrap().set_cookie().is_some());
        login.cycle_id().await.unwrap();
        login.insert("role", "admin").await.unwrap();
        assert!(matches!(login.finish(200).await, Err(Error::Superseded)));
        assert!(store.is_empty(), "nothing stored under any id");
        // An increment finds no live entry either: refused, nothing created.
        let cookie = logged_in(&manager).await;
        let late = manager.session([cookie.as_str()]);
        late.len().await.unwrap();
        let logout = manager.session([cookie.as_str()]);
        logout.destroy();
        let _ = logout.finish(200).await.unwrap();
        assert!(matches!(
            late.increment("n", 1).await,
            Err(Error::Superseded)
        ));
        assert!(store.is_empty());
    }

    #[tokio::test]
    async fn a_change_resends_the_cookie_only_when_its_expiry_is_due() {
        let store = MemoryStore::default();
        let config = SessionConfig::default()
            .with_lifetime(Duration::from_secs(20))
            .with_refresh_each_request(false);
        let manager = SessionManager::new(store.clone(), config).unwrap();
        let cookie = logged_in(&manager).await;
        let id: SessionId = cookie.split_once('=').unwrap().1.parse().unwrap();
        let stored = || async { store.load(&id, None).await.unwrap().unwrap() };
        let saved_at = stored().await.expires_at;

        let change = |value: u32| {
            let session = manager.session([cookie.as_str()]);
            async move {
                session.insert("k", value).await.unwrap();
                session.finish(200).await.unwrap()
            }
        };
        assert_eq!(
            change(1).await.set_cookie(),
            None,
            "the browser's copy is current"
        );
        let entry = stored().await;
        assert_eq!(entry.data["k"], 1, "the change is saved");
        assert_eq!(
            entry.expires_at, saved_at,
            "and the expiry stays with the cookie's"
        );

        tokio::time::sleep(Duration::from_millis(250)).await;
        let outcome = change(2).await;
        let moved = stored().await.expires_at;
        assert!(moved >= saved_at + Duration::from_millis(250));
        let resent = outcome
            .set_cookie()
            .expect("a due expiry goes with the cookie");
        assert!(resent.contains(&httpdate::fmt_http_date(moved)), "{resent}");

        // Making the session a browser session changes the cookie: it is re-sent.
        let session = manager.session([cookie.as_str()]);
        session.set_permanent(false).await.unwrap();
        let outcome = session.finish(200).await.unwrap();
        let resent = outcome.set_cookie().expect("the cookie's kind changed");
        assert!(!resent.contains("Expires"), "{resent}");
    }

    #[tokio::test]
    async fn increments_and_conditional_sets_see_each_other() {
        let store = MemoryStore::default();
        let manager = manager(&store);
        let cookie = logged_in(&manager).await;
        let a = manager.session([cookie.as_str()]);
        let b = manager.session([cookie.as_str()]);
        assert_eq!(a.get::<i64>("seats").await.unwrap(), None);
        assert_eq!(b.get::<i64>("seats").await.unwrap(), None);
        assert_eq!(a.increment("n", 2).await.unwrap(), 2);
        assert_eq!(
            b.increment("n", 3).await.unwrap(),
            5,
            "b adds onto a's increment"
        );
        assert_eq!(
            a.get::<i64>("n").await.unwrap(),
            Some(2),
            "a's view: its own sum"
        );

        a.insert_if_unchanged("seats", 9).await.unwrap();
        let conflict = b.insert_if_unchanged("seats", 8).await.unwrap_err();
        assert!(
            matches!(&conflict, Error::Conflict { key } if key == "seats"),
            "{conflict:?}"
        );
        assert_eq!(conflict.status_code(), 409);
        assert_eq!(
            b.get::<i64>("seats").await.unwrap(),
            Some(9),
            "b now sees a's value"
        );
        b.insert_if_unchanged("seats", 8).await.unwrap();

        // Written at once: finishing either request writes nothing more.
        assert_eq!(
            a.finish(200).await.unwrap(),
            Outcome {
                set_cookie: None,
                vary_cookie: true
            }
        );
        let _ = b.finish(200).await.unwrap();
        let c = manager.session([cookie.as_str()]);
        assert_eq!(c.get::<i64>("n").await.unwrap(), Some(5));
        assert_eq!(c.get::<i64>("seats").await.unwrap(), Some(8));

        // A key this request set is its own: no store round trip, no condition.
        c.insert("n", 100).await.unwrap();
        assert_eq!(c.increment("n", 1).await.unwrap(), 101);
        c.insert("text", "x").await.unwrap();
        assert!(matches!(
            c.increment("text", 1).await,
            Err(Error::NotAnInteger { .. })
        ));
        let _ = c.finish(200).await.unwrap();
        let d = manager.session([cookie.as_str()]);
        assert_eq!(d.get::<i64>("n").await.unwrap(), Some(101));
        assert!(matches!(
            d.increment("text", 1).await,
            Err(Error::NotAnInteger { .. })
        ));
    }

    #[tokio::test]
    async fn a_request_that_comes_with_a_rotated_id_after_the_login_gets_no_new_session() {
        let store = MemoryStore::default();
        let manager = manager(&store);
        let cookie = logged_in(&manager).await;
        let login = manager.session([cookie.as_str()]);
        login.insert("role", "admin").await.unwrap();
        login.cycle_id().await.unwrap();
        let _ = login.finish(200).await.unwrap();
        assert_eq!(store.len(), 1);

        // A request sent with the old cookie before the browser had the new one.
        let late = manager.session([cookie.as_str()]);
        assert!(late.is_empty().await.unwrap(), "the old id names nothing");
        late.insert("cart", 3).await.unwrap();
        let refused = late.finish(200).await.unwrap_err();
        assert!(matches!(refused, Error::Superseded), "{refused:?}");
        assert_eq!(
            store.len(),
            1,
            "no stray session whose cookie would log the user out"
        );

        // The same after a log-out; an unknown id still starts a session.
        let cookie = logged_in(&manager).await;
        let logout = manager.session([cookie.as_str()]);
        logout.destroy();
        let _ = logout.finish(200).await.unwrap();
        let late = manager.session([cookie.as_str()]);
        late.insert("cart", 3).await.unwrap();
        assert!(matches!(late.finish(200).await, Err(Error::Superseded)));
        let unknown = format!("session={}", SessionId::generate());
        let fresh = manager.session([unknown.as_str()]);
        fresh.insert("cart", 3).await.unwrap();
        assert!(fresh.finish(200).await.unwrap().set_cookie().is_some());
    }

    #[tokio::test]
    async fn an_increment_moves_the_expiry_as_a_change_does() {
        let store = MemoryStore::default();
        let config = SessionConfig::default()
            .with_permanent(false)
            .with_refresh_each_request(false)
            .with_lifetime(Duration::from_secs(20));
        let manager = SessionManager::new(store.clone(), config).unwrap();
        let cookie = logged_in(&manager).await;
        let id: SessionId = cookie.split_once('=').unwrap().1.parse().unwrap();
        let saved_at = store.load(&id, None).await.unwrap().unwrap().expires_at;
        tokio::time::sleep(Duration::from_millis(250)).await;
        let session = manager.session([cookie.as_str()]);
        assert_eq!(session.increment("n", 1).await.unwrap(), 1);
        let outcome = session.finish(200).await.unwrap();
        assert_eq!(
            outcome.set_cookie(),
            None,
            "a browser-session cookie has no expiry"
        );
        let moved = store.load(&id, None).await.unwrap().unwrap().expires_at;
        assert!(
            moved >= saved_at + Duration::from_millis(250),
            "the lifetime restarts"
        );
    }

    #[tokio::test]
    async fn removals_that_another_request_emptied_first_are_no_conflict() {
        let store = MemoryStore::default();
        let manager = manager(&store);
        let cookie = logged_in(&manager).await;
        let a = manager.session([cookie.as_str()]);
        a.len().await.unwrap();
        let b = manager.session([cookie.as_str()]);
        b.remove_value("user").await.unwrap();
        let _ = b.finish(200).await.unwrap();
        // A's removal of the same, last key finds the entry gone: what it asked for.
        a.remove_value("user").await.unwrap();
        a.insert("x", 1).await.unwrap();
        a.remove_value("x").await.unwrap();
        assert!(a.finish(200).await.is_ok());
        assert!(store.is_empty());
    }

    #[tokio::test]
    async fn a_key_changed_and_changed_back_is_no_change() {
        let store = MemoryStore::default();
        let manager = manager(&store);
        let cookie = logged_in(&manager).await;
        let session = manager.session([cookie.as_str()]);
        session.insert("tmp", 1).await.unwrap();
        session.remove_value("tmp").await.unwrap();
        session.insert("user", "grace").await.unwrap();
        session.insert("user", "ada").await.unwrap();
        session.set_permanent(false).await.unwrap();
        session.set_permanent(true).await.unwrap();
        let outcome = session.finish(200).await.unwrap();
        assert_eq!(outcome.set_cookie(), None, "nothing changed, nothing sent");
    }

    #[tokio::test]
    async fn an_undone_change_does_not_clobber_a_concurrent_writer() {
        let store = MemoryStore::default();
        let manager = manager(&store);
        let cookie = logged_in(&manager).await;
        let a = manager.session([cookie.as_str()]);
        a.len().await.unwrap();
        // B sets `tmp` after A loaded.
        let b = manager.session([cookie.as_str()]);
        b.insert("tmp", "from b").await.unwrap();
        let _ = b.finish(200).await.unwrap();
        // A adds and removes `tmp`: it never really touched it.
        a.insert("tmp", "from a").await.unwrap();
        a.remove_value("tmp").await.unwrap();
        a.insert("mine", true).await.unwrap();
        let _ = a.finish(200).await.unwrap();
        let c = manager.session([cookie.as_str()]);
        assert_eq!(
            c.get::<String>("tmp").await.unwrap().as_deref(),
            Some("from b")
        );
        assert_eq!(c.get::<bool>("mine").await.unwrap(), Some(true));
    }

    #[tokio::test]
    async fn destroy_then_read_sees_an_empty_session() {
        let store = MemoryStore::default();
        let manager = manager(&store);
        let cookie = logged_in(&manager).await;
        let session = manager.session([cookie.as_str()]);
        assert_eq!(session.len().await.unwrap(), 1);
        session.destroy();
        assert!(session.is_empty().await.unwrap());
        assert_eq!(session.id().await.unwrap(), None);
        let outcome = session.finish(200).await.unwrap();
        assert!(outcome.set_cookie().unwrap().contains("Max-Age=0"));
        assert!(store.is_empty());
    }

    #[tokio::test]
    async fn cycle_id_and_set_permanent_on_a_new_session_just_create_it() {
        let store = MemoryStore::default();
        let manager = manager(&store);
        let session = manager.session(None::<&str>);
        session.cycle_id().await.unwrap();
        session.set_permanent(false).await.unwrap();
        session.insert("k", json!(1)).await.unwrap();
        let outcome = session.finish(200).await.unwrap();
        let cookie = outcome.set_cookie().unwrap();
        assert!(
            !cookie.contains("Expires"),
            "a browser-session cookie: {cookie}"
        );
        assert_eq!(store.len(), 1);
    }

    #[tokio::test]
    async fn the_null_store_reads_empty_and_names_the_key_that_enables_sessions() {
        let manager =
            SessionManager::new(crate::store::NullStore, SessionConfig::default()).unwrap();
        let session = manager.session(None::<&str>);
        assert!(session.is_empty().await.unwrap());
        let error = session.insert("k", 1).await.unwrap_err();
        assert!(matches!(error, Error::Disabled));
        assert!(error.to_string().contains("SESSION_TYPE"), "{error}");
    }
}

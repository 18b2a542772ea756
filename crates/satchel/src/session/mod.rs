//! The session engine: one [`Session`] per request, loaded lazily, saved as a change set.
//!
//! The engine is framework-neutral. An integration asks the [`SessionManager`] for a
//! [`Session`] built from the request's `Cookie` headers, hands it to the handler, then
//! calls [`Session::conclude`] with the response status and applies the [`Finished`]
//! answer it returns: the handler's response with a `Set-Cookie` value and
//! `Vary: Cookie`, or an empty `500`, `503` or `409` in its place. Every policy (what to
//! save, when to send the cookie, how to answer while the store fails, the circuit
//! breaker in front of the store) lives here, so it is written and tested once.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use serde_json::Value;
use tokio::sync::OnceCell;

use crate::config::{FailurePolicy, SessionConfig};
use crate::cookie::{self, CookieWriter};
use crate::error::{ConfigError, Error, StoreError};
use crate::id::SessionId;
use crate::record::{Changes, Data, Updated};
use crate::store::{BoxedStore, SessionStore};
use crate::support::Chain;

mod breaker;
mod data;
mod finish;
pub mod flash;
mod health;
mod plan;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
mod users;

pub use breaker::BreakerState;
use breaker::Guarded;
pub use health::Health;
use plan::Fate;
pub use users::SessionInfo;

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
    /// The store, behind the circuit breaker.
    store: Guarded,
    config: SessionConfig,
    cookie: CookieWriter,
    writable: bool,
    #[cfg(feature = "signed")]
    signer: Option<crate::signing::Signer>,
    /// Flask-Session's signer, under SESSION_FLASK_COMPAT with SESSION_USE_SIGNER: it
    /// takes the place of Satchel's.
    #[cfg(feature = "flask")]
    flask_signer: Option<crate::flask::FlaskSigner>,
    /// Seals sessions into their cookies, under SESSION_TYPE=cookie.
    #[cfg(feature = "cookie")]
    sealer: Option<crate::store::cookie::Sealer>,
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

impl Shared {
    fn retired(&self) -> MutexGuard<'_, Retired> {
        // Only ids are kept there: a panic elsewhere cannot leave it half-updated.
        self.retired
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionManager")
            .field("store", self.shared.store.inner())
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
        #[cfg(feature = "flask")]
        let flask_signer = (config.use_signer() && config.flask_compat().is_on()).then(|| {
            let fallbacks = config
                .secret_key_fallbacks()
                .iter()
                .map(crate::Secret::as_bytes);
            // validate() guarantees SECRET_KEY is set when the signer is on.
            let current = config.secret_key().map_or(&[][..], crate::Secret::as_bytes);
            crate::flask::FlaskSigner::new(current, fallbacks)
        });
        #[cfg(feature = "signed")]
        let signer = (config.use_signer() && !config.flask_compat().is_on()).then(|| {
            use crate::signing::{Key, Signer};
            let key = |secret: &crate::Secret| Key::derive(secret.as_bytes());
            let current = config.secret_key().map(key);
            let fallbacks = config.secret_key_fallbacks().iter().map(key);
            // validate() guarantees SECRET_KEY is set when the signer is on.
            Signer::new(current.unwrap_or_else(Key::generate), fallbacks)
        });
        #[cfg(feature = "cookie")]
        let sealer = if store.capabilities().in_cookie {
            config.validate_cookie_store()?;
            let fallbacks = config
                .secret_key_fallbacks()
                .iter()
                .map(crate::Secret::as_bytes);
            // validate_cookie_store() guarantees SECRET_KEY is set.
            let current = config.secret_key().map_or(&[][..], crate::Secret::as_bytes);
            Some(crate::store::cookie::Sealer::new(current, fallbacks))
        } else {
            None
        };
        #[cfg(feature = "sealed")]
        let store = match config.data_key() {
            Some(current) => {
                use crate::store::sealed::{DataKey, SealedStore};
                let derive = |secret: &crate::Secret| DataKey::derive(secret.as_bytes());
                let fallbacks = config.data_key_fallbacks().iter().map(derive);
                // The store inside is counted and timed already.
                BoxedStore::unmetered(SealedStore::new(store, derive(current), fallbacks))
            }
            None => store,
        };
        let store = Guarded::new(store, config.breaker_failures(), config.breaker_cooldown());
        Ok(Self {
            shared: Arc::new(Shared {
                cookie: CookieWriter::new(&config),
                store,
                config,
                writable,
                #[cfg(feature = "signed")]
                signer,
                #[cfg(feature = "flask")]
                flask_signer,
                #[cfg(feature = "cookie")]
                sealer,
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

    /// The store sessions live in, as it is: calls made through it do not go through
    /// the circuit breaker, which guards the manager's own calls (see
    /// [`SessionConfig::breaker_failures`]).
    #[must_use]
    pub fn store(&self) -> &BoxedStore {
        self.shared.store.inner()
    }

    /// Where the circuit breaker in front of the store stands; `None` when there is none
    /// (SESSION_BREAKER_FAILURES is `0`).
    #[must_use]
    pub fn breaker_state(&self) -> Option<BreakerState> {
        self.shared.store.breaker_state()
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
                #[cfg(feature = "cookie")]
                jar: self.shared.sealer.as_ref().map(|_| InCookie::new()),
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
    /// The request's own store of its session, under SESSION_TYPE=cookie.
    #[cfg(feature = "cookie")]
    jar: Option<InCookie>,
    /// Values of every cookie with the session cookie's name, not yet verified.
    candidates: Vec<Box<str>>,
    /// Set once the load from the store ran: `true` when it succeeded.
    loaded: OnceCell<bool>,
    state: Mutex<State>,
}

/// The store of a request's session under SESSION_TYPE=cookie: the session its cookie
/// carried, which the request reads and writes as it would a server's store.
#[cfg(feature = "cookie")]
struct InCookie {
    jar: crate::store::cookie::Jar,
    /// The same, as the engine's calls take it.
    store: Guarded,
}

#[cfg(feature = "cookie")]
impl InCookie {
    fn new() -> Self {
        let jar = crate::store::cookie::Jar::new();
        let store = BoxedStore::unmetered(jar.clone());
        Self {
            jar,
            store: Guarded::new(store, 0, std::time::Duration::ZERO),
        }
    }
}

/// How far a request has gone with its session; it only moves up.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Status {
    /// The handler never used the session: the request ends without a word about it.
    #[default]
    Untouched,
    /// The handler used the session in any way.
    Used,
    /// A key was updated in the store at once ([`Session::increment`],
    /// [`Session::insert_if_unchanged`]): the session changed, though no change set is
    /// left to save, so its expiry follows as for a change.
    Updated,
    /// The store failed: the response becomes the failure policy's answer.
    Failed,
}

/// What the cookie named: unknown until its candidates are verified (lazily: a request
/// that never uses its session verifies nothing).
#[derive(Debug, Default, Clone, Copy)]
enum Identity {
    #[default]
    Unread,
    /// Verified: the id the session goes by, if any verified (and, once loaded, the one
    /// whose entry the store held).
    Read(Option<Presented>),
}

/// An id a cookie presented, verified.
#[derive(Debug, Clone, Copy)]
struct Presented {
    id: SessionId,
    /// The key its session is stored under (SESSION_HASH_IDS), computed once.
    key: SessionId,
    /// Verified by a fallback key: re-sign it.
    resign: bool,
    /// Which of the cookie values gave it: re-sent as it is when the id stays.
    index: usize,
}

/// The stored entry the request loaded for its id.
#[derive(Debug, Clone, Copy)]
struct Loaded {
    expires_at: SystemTime,
    /// The session's own settings as stored: permanent flag, creation time, lifetime.
    meta: crate::record::Meta,
    /// The store's version of the entry, if it keeps versions.
    version: Option<u64>,
}

#[derive(Default)]
struct State {
    status: Status,
    identity: Identity,
    /// `None` until a load found a live entry, and for a new session.
    loaded: Option<Loaded>,
    /// The request's view of the data: as loaded, with its own changes applied.
    data: Data,
    changes: Changes,
    /// Whether the id stays, moves (`cycle_id`) or goes (`destroy`).
    fate: Fate,
    /// The value each changed key had when loaded (`None`: absent), so that a key
    /// changed and changed back counts as untouched.
    original: BTreeMap<String, Option<Value>>,
    /// The user whose index loses the session this request destroyed, when it was
    /// loaded bound to one.
    unbind: Option<String>,
    /// The store failed under SESSION_STORE_FAILURE=anonymous: the request goes on with
    /// what it has (an empty session, when the load failed), and nothing is written.
    detached: bool,
}

impl State {
    /// Marks the session as cut off from the store: nothing more is read or written.
    fn detach(&mut self) {
        self.detached = true;
    }

    /// Moves the status up to `status` (never down).
    fn raise(&mut self, status: Status) {
        self.status = self.status.max(status);
    }

    /// The verified id the cookie presented.
    fn presented(&self) -> Option<Presented> {
        match self.identity {
            Identity::Read(presented) => presented,
            Identity::Unread => None,
        }
    }

    /// The id the session goes by, once verified.
    fn id(&self) -> Option<SessionId> {
        self.presented().map(|presented| presented.id)
    }

    /// The id of the entry this request loaded.
    fn loaded_id(&self) -> Option<SessionId> {
        self.loaded.and(self.id())
    }

    /// The key the store holds the presented id's session under.
    fn key(&self) -> Option<SessionId> {
        self.presented().map(|presented| presented.key)
    }

    /// The key of the entry this request loaded.
    fn loaded_key(&self) -> Option<SessionId> {
        self.loaded.and(self.key())
    }

    /// Whether the store held an entry for the id.
    fn existed(&self) -> bool {
        self.loaded.is_some()
    }

    /// The permanent flag stored with the loaded entry.
    fn stored_permanent(&self) -> Option<bool> {
        self.loaded.and_then(|loaded| loaded.meta.permanent)
    }

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
        let loaded = self.stored_permanent().unwrap_or(default_permanent);
        if self.changes.permanent() == Some(loaded) {
            self.changes.forget_permanent();
        }
        let lifetime = self.loaded.and_then(|loaded| loaded.meta.lifetime);
        if self.changes.lifetime() == Some(lifetime) {
            self.changes.forget_lifetime();
        }
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("Session")
            .field("id", &state.id())
            .field("existed", &state.existed())
            .field("keys", &state.data.len())
            .field("changed", &!state.changes.is_empty())
            .finish_non_exhaustive()
    }
}

/// Where a request's session stands so far ([`Session::status`]), for middleware and
/// handlers that act on it without loading it.
///
/// # Examples
///
/// ```
/// use satchel::{MemoryStore, SessionConfig, SessionManager, SessionStatus};
///
/// # tokio_test::block_on(async {
/// let manager = SessionManager::new(MemoryStore::default(), SessionConfig::default())?;
/// let session = manager.session(None::<&str>);
/// assert_eq!(session.status(), SessionStatus::Unloaded);
/// assert!(!session.contains_key("user").await?);
/// assert_eq!(session.status(), SessionStatus::New);
/// session.insert("user", "ada").await?;
/// assert_eq!(session.status(), SessionStatus::Changed);
/// session.destroy();
/// assert_eq!(session.status(), SessionStatus::Destroyed);
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionStatus {
    /// Not loaded yet: the request has neither read nor written it. Sessions load
    /// lazily, on first use, and asking for the status does not load one.
    Unloaded,
    /// Loaded, and there was no stored session: none was presented, or the one presented
    /// had ended. Nothing is stored unless the request writes.
    New,
    /// Loaded from the store, and unchanged so far.
    Loaded,
    /// Changed by this request: keys set or removed (saved when the request ends), a key
    /// updated in the store at once ([`Session::increment`],
    /// [`Session::insert_if_unchanged`]), the permanent flag, or a new id
    /// ([`Session::cycle_id`]).
    Changed,
    /// Destroyed by this request ([`Session::destroy`]): the stored session is deleted
    /// when the request ends. A key written after `destroy` starts a new session, which
    /// is [`Changed`](Self::Changed).
    Destroyed,
}

/// What became of a request's session, for traces, access logs and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Disposition {
    /// The handler never used the session.
    #[default]
    Untouched,
    /// The session was read (or looked for), and nothing was written.
    Read,
    /// A new session was stored.
    Created,
    /// The session's data or flag changed, under the same id.
    Changed,
    /// Only the session's expiry moved forward (a due refresh).
    Refreshed,
    /// The session was destroyed.
    Destroyed,
    /// The session moved to a new id (a log-in).
    Cycled,
    /// The store failed, or the request's changes could not be kept: the integration
    /// answered with an empty `500`, `503` or `409` instead of the handler's response.
    Failed,
    /// The store failed and, under SESSION_STORE_FAILURE=anonymous, the handler's
    /// response went out as it was, without a word to the store: the session was empty
    /// when the load failed, and what the request changed was dropped.
    Degraded,
}

impl Disposition {
    /// The name used in traces and logs: `untouched`, `read`, `created`, `changed`,
    /// `refreshed`, `destroyed`, `cycled`, `failed` or `degraded`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Untouched => "untouched",
            Self::Read => "read",
            Self::Created => "created",
            Self::Changed => "changed",
            Self::Refreshed => "refreshed",
            Self::Destroyed => "destroyed",
            Self::Cycled => "cycled",
            Self::Failed => "failed",
            Self::Degraded => "degraded",
        }
    }
}

impl Disposition {
    /// What became of the session of a response that went through the axum or actix-web
    /// integration, from what the integration left on it: the disposition in its
    /// extensions (`noted`), which the integration puts there when the session was
    /// written, destroyed or failed; otherwise [`Read`](Self::Read) when the response
    /// varies on the cookie (`Vary: Cookie`), else [`Untouched`](Self::Untouched).
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::Disposition;
    ///
    /// assert_eq!(Disposition::of_response(None, true), Disposition::Read);
    /// assert_eq!(Disposition::of_response(None, false), Disposition::Untouched);
    /// let noted = Some(Disposition::Created);
    /// assert_eq!(Disposition::of_response(noted, true), Disposition::Created);
    /// ```
    #[must_use]
    pub fn of_response(noted: Option<Self>, varies_on_cookie: bool) -> Self {
        match noted {
            Some(disposition) => disposition,
            None if varies_on_cookie => Self::Read,
            None => Self::Untouched,
        }
    }

    /// Whether the values of a response's `Vary` headers name the cookie.
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::Disposition;
    ///
    /// assert!(Disposition::varies_on_cookie([b"Accept-Encoding, cookie".as_slice()]));
    /// assert!(!Disposition::varies_on_cookie([b"Accept".as_slice()]));
    /// ```
    #[must_use]
    pub fn varies_on_cookie<'a>(vary: impl IntoIterator<Item = &'a [u8]>) -> bool {
        vary.into_iter().any(|value| {
            value
                .split(|&byte| byte == b',')
                .any(|name| name.trim_ascii().eq_ignore_ascii_case(b"cookie"))
        })
    }
}

impl fmt::Display for Disposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an integration applies to the response once the handler has run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct Outcome {
    set_cookie: Option<String>,
    vary_cookie: bool,
    disposition: Disposition,
}

impl Outcome {
    /// `Vary: Cookie` and no cookie: the response depended on the session, which was
    /// read.
    fn vary_only() -> Self {
        Self {
            set_cookie: None,
            vary_cookie: true,
            disposition: Disposition::Read,
        }
    }

    /// The handler's response as it is, with `Vary: Cookie` and no cookie: the store
    /// failed under SESSION_STORE_FAILURE=anonymous.
    fn degraded() -> Self {
        Self {
            set_cookie: None,
            vary_cookie: true,
            disposition: Disposition::Degraded,
        }
    }

    /// What became of the session.
    #[must_use]
    pub fn disposition(&self) -> Disposition {
        self.disposition
    }

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

/// How an integration answers once the handler has run: the engine's whole decision, which
/// the integration only copies onto its framework's response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Finished {
    /// Keep the handler's response, with the headers of this [`Outcome`].
    Respond(Outcome),
    /// Answer with an empty response instead of the handler's, with `Vary: Cookie` and
    /// the [`Replacement`]'s status and `Retry-After`: a `500` whose cause was logged
    /// (never shown to the client), a `503` under SESSION_STORE_FAILURE=unavailable, or a
    /// `409` for changes that were not kept (see [`Error::status_code`]).
    Replace(Replacement),
}

impl From<Result<Outcome, Error>> for Finished {
    /// The answer to [`Session::finish`]'s result: the outcome, or the error's status
    /// (what [`Session::conclude`] answers under the default failure policy).
    #[inline]
    fn from(result: Result<Outcome, Error>) -> Self {
        match result {
            Ok(outcome) => Self::Respond(outcome),
            Err(error) => Self::Replace(Replacement::new(error.status_code())),
        }
    }
}

/// The empty answer an integration sends in the place of the handler's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Replacement {
    status: u16,
    retry_after: Option<u64>,
}

impl Replacement {
    /// An empty answer with `status`, without `Retry-After`.
    ///
    /// # Examples
    ///
    /// ```
    /// let replacement = satchel::Replacement::new(500);
    /// assert_eq!(replacement.status(), 500);
    /// assert_eq!(replacement.retry_after(), None);
    /// ```
    pub fn new(status: u16) -> Self {
        Self {
            status,
            retry_after: None,
        }
    }

    /// The same answer with `Retry-After: seconds`.
    ///
    /// # Examples
    ///
    /// ```
    /// let replacement = satchel::Replacement::new(503).with_retry_after(2);
    /// assert_eq!(replacement.retry_after(), Some(2));
    /// ```
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The status to answer with.
    #[must_use]
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The `Retry-After` header's value in seconds, if the answer carries one.
    #[must_use]
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }
}

impl Finished {
    /// The status to answer with, empty, when the engine's `Set-Cookie` value cannot be
    /// sent as a header by the framework (it never happens with a validated
    /// configuration): logged, then a `500`, as for any other failure.
    #[must_use]
    pub fn cookie_unsendable() -> u16 {
        tracing::error!("session cookie is not a valid header value");
        500
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
    if let StoreError::Unsupported(what) = *error {
        // Not a failure: the store cannot do it (the cookie store keeps no sessions).
        return Error::Unsupported(what);
    }
    if let StoreError::TooLarge { budget, size } = *error {
        // The store is healthy: the session is over its budget (or the store's limit).
        tracing::warn!(error = %Chain(error), "session store refused to {what}");
        return Error::TooLarge { budget, size };
    }
    if let StoreError::CircuitOpen = error {
        // Said once, when the breaker opened; the metric counts each one.
        tracing::debug!("session store not asked to {what}: the circuit breaker is open");
    } else {
        tracing::error!(error = %Chain(error), "session store failed to {what}");
    }
    Error::Unavailable
}

impl Session {
    /// Moves the session stored under the raw id `raw` to its hashed `key`
    /// (SESSION_HASH_IDS_MIGRATE), with its user's index, and loads it from there. The
    /// move is the store's atomic id rotation, so a change racing it is kept; nothing is
    /// written when there is no live entry under `raw`.
    ///
    /// Boxed: it runs once per session, and inline it would grow the future of every
    /// request.
    fn migrate<'a>(
        &'a self,
        raw: &'a SessionId,
        key: &'a SessionId,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<Option<crate::Record>, StoreError>> + Send + 'a,
        >,
    > {
        Box::pin(async move {
            let store = self.store();
            let Some(record) = store.load(raw, None).await? else {
                return Ok(None);
            };
            if record.is_expired(SystemTime::now()) {
                return Ok(None);
            }
            let user = record
                .data
                .get(crate::store::index::USER_KEY)
                .and_then(Value::as_str);
            // Indexed before the move, as for a log-in, so that a bound session is always
            // found.
            if let Some(user) = user {
                self.index(user, key)
                    .await
                    .map_err(|_| StoreError::backend("indexing a migrated session failed"))?;
            }
            let mut changes = Changes::default();
            changes.require_existing();
            let moved = store.cycle(raw, key, &changes, record.expires_at).await?;
            // A concurrent request may have moved it first: then it did the rest.
            if let (Some(user), crate::store::Saved::Stored) = (user, moved) {
                self.manager().unindex(user, &[*raw]).await;
            }
            tracing::debug!("a session stored under its raw id moved to its hashed key");
            store.load(key, None).await
        })
    }

    /// The store this request's session lives in: the manager's, or under
    /// SESSION_TYPE=cookie the request's own.
    fn store(&self) -> &Guarded {
        #[cfg(feature = "cookie")]
        if let Some(in_cookie) = &self.inner.jar {
            return &in_cookie.store;
        }
        &self.inner.shared.store
    }

    /// Under SESSION_TYPE=cookie, puts the session the cookie `presented` carries into
    /// the request's store, under its key, for the load to find.
    #[cfg(feature = "cookie")]
    async fn unpack(&self, presented: &Presented) {
        let (Some(in_cookie), Some(sealer)) = (&self.inner.jar, &self.inner.shared.sealer) else {
            return;
        };
        let Some(value) = self.inner.candidates.get(presented.index) else {
            return;
        };
        if let Some((_, record, _)) = sealer.open(self.inner.shared.cookie.name(), value) {
            in_cookie.jar.seed(&presented.key, &record).await;
        }
    }

    /// Whether the session lives in its cookie (SESSION_TYPE=cookie).
    fn in_cookie(&self) -> bool {
        #[cfg(feature = "cookie")]
        return self.inner.jar.is_some();
        #[cfg(not(feature = "cookie"))]
        false
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // State stays consistent at every await point; a panic in another clone's
        // critical section leaves nothing half-done worth refusing service for.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The size budget the change sets and key updates sent to the store carry: the
    /// configured SESSION_MAX_SIZE, unless that is `0`.
    fn budget(&self) -> Option<usize> {
        let budget = Some(self.config().max_size()).filter(|&budget| budget > 0);
        #[cfg(feature = "cookie")]
        if self.in_cookie() {
            let fits = crate::store::cookie::DATA_BUDGET;
            return Some(budget.map_or(fits, |budget| budget.min(fits)));
        }
        budget
    }

    /// The session's size when `data` is over the budget, measured as the store will
    /// measure what it writes: the one place the engine measures a session.
    fn over_budget(&self, data: &Data) -> Option<Error> {
        let budget = self.budget()?;
        #[cfg(feature = "sealed")]
        let size = if self.config().data_key().is_some() && !self.in_cookie() {
            crate::store::sealed::sealed_size(data)
        } else {
            crate::record::stored_size(data)
        };
        #[cfg(not(feature = "sealed"))]
        let size = crate::record::stored_size(data);
        (size > budget).then_some(Error::TooLarge { budget, size })
    }

    /// Refuses to set `key` of `data` to `value` when the session would then be over its
    /// budget; `data` is left as it was either way.
    fn check_insert(&self, data: &mut Data, key: &str, value: &Value) -> Result<(), Error> {
        if self.budget().is_none() {
            return Ok(());
        }
        let previous = data.insert(key.to_owned(), value.clone());
        let over = self.over_budget(data);
        set_view(data, key, previous);
        over.map_or(Ok(()), Err)
    }

    fn config(&self) -> &SessionConfig {
        &self.inner.shared.config
    }

    /// Whether a failing store leaves the request to go on without it
    /// (SESSION_STORE_FAILURE=anonymous).
    fn goes_on_without_store(&self) -> bool {
        self.config().store_failure() == FailurePolicy::Anonymous
    }

    /// Takes note that the store failed during the request: under the anonymous policy
    /// the session is cut off from the store, otherwise the request ends with the
    /// policy's answer.
    fn store_failure(&self, state: &mut State) {
        if self.goes_on_without_store() {
            state.detach();
        } else {
            state.raise(Status::Failed);
        }
    }

    /// Verifies the cookie candidates once, giving the id to load.
    fn identify(&self, state: &mut State) -> Option<SessionId> {
        if let Identity::Unread = state.identity {
            let first = self.verified().next();
            state.identity = Identity::Read(first);
        }
        state.id()
    }

    /// Every cookie value of the session's name that verifies, in the order the browser
    /// sent them.
    fn verified(&self) -> impl Iterator<Item = Presented> + '_ {
        let candidates = self.inner.candidates.iter().enumerate();
        candidates.filter_map(|(index, value)| {
            self.verify(value).map(|(id, resign)| Presented {
                key: self.key(&id),
                id,
                resign,
                index,
            })
        })
    }

    fn verify(&self, value: &str) -> Option<(SessionId, bool)> {
        #[cfg(feature = "cookie")]
        if let Some(sealer) = &self.inner.shared.sealer {
            let (id, _, fallback) = sealer.open(self.inner.shared.cookie.name(), value)?;
            return Some((id, fallback));
        }
        #[cfg(feature = "flask")]
        if let Some(signer) = &self.inner.shared.flask_signer {
            let (sid, fallback) = signer.verify(value)?;
            return sid.parse().ok().map(|id| (id, fallback));
        }
        #[cfg(feature = "signed")]
        if let Some(signer) = &self.inner.shared.signer {
            let (id, by) = signer.verify(self.inner.shared.cookie.name(), value)?;
            return Some((id, by == crate::signing::Verified::Fallback));
        }
        value.parse().ok().map(|id| (id, false))
    }

    fn cookie_value(&self, id: &SessionId) -> String {
        #[cfg(feature = "flask")]
        if let Some(signer) = &self.inner.shared.flask_signer {
            return signer.sign(&id.to_string());
        }
        #[cfg(feature = "signed")]
        if let Some(signer) = &self.inner.shared.signer {
            return signer.sign(self.inner.shared.cookie.name(), id);
        }
        let mut value = String::with_capacity(crate::id::ID_LEN);
        id.encode_into(&mut value);
        value
    }

    fn retired(&self) -> MutexGuard<'_, Retired> {
        self.inner.shared.retired()
    }

    /// Remembers that the session stored under `key` was rotated away from or destroyed
    /// (by its key, as [`SessionManager::revoke`] does).
    fn retire(&self, key: SessionId) {
        self.retired().add(key);
    }

    /// Forgets that `key` was retired: its rotation was refused, and the session stays
    /// under it.
    fn unretire(&self, key: &SessionId) {
        // Its place in the order goes with the eviction that reaches it.
        self.retired().ids.remove(key);
    }

    /// The key the session of the cookie id `id` is stored under (SESSION_HASH_IDS).
    fn key(&self, id: &SessionId) -> SessionId {
        if self.config().hash_ids() {
            id.hashed()
        } else {
            *id
        }
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
            .any(|(id, _)| retired.contains(&self.key(&id)))
    }

    /// The cookie for the id the browser presented, which stays: the value it sent,
    /// as it is, when that verified with the current key (no encoding, no signing),
    /// else the id signed anew.
    fn same_id_cookie(&self, state: &State, id: &SessionId, expires: Option<SystemTime>) -> String {
        let cookie = &self.inner.shared.cookie;
        let presented = state
            .presented()
            .filter(|presented| !presented.resign)
            .and_then(|presented| self.inner.candidates.get(presented.index));
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
        state.raise(Status::Used);
        if ok && state.status != Status::Failed {
            Ok(state)
        } else {
            Err(Error::Unavailable)
        }
    }

    /// Takes `record`, found under the key of `presented`, as the request's session, when
    /// it is live. A record past SESSION_ABSOLUTE_LIFETIME is dead whatever its expiry
    /// says (the limit may have been lowered since it was written): it is deleted.
    async fn accept(&self, presented: Presented, record: crate::Record, now: SystemTime) -> bool {
        if users::outlived(self.config(), &record, now) {
            if let Err(error) = self.store().delete(&presented.key).await {
                tracing::warn!(
                    error = %Chain(&error),
                    "session store failed to delete a session past its absolute lifetime"
                );
            }
            crate::observability::Event::Expired.record();
            return false;
        }
        if record.is_expired(now) {
            return false;
        }
        let mut state = self.state();
        state.identity = Identity::Read(Some(presented));
        state.loaded = Some(Loaded {
            expires_at: record.expires_at,
            meta: record.meta(),
            version: record.version,
        });
        state.data = record.data;
        true
    }

    /// When the first use of the session is an increment of `key`: has the store apply
    /// it and answer the session as the increment left it
    /// ([`SessionStore::update_and_load`]), which stands for the request's load. A
    /// counter's request then makes one round trip where it would make two.
    ///
    /// `None` when the session was loaded already or cannot be loaded that way (it lives
    /// in its cookie, or the request was cut off from the store): the caller loads and
    /// updates as usual. When the store finds no live entry under the cookie's first id,
    /// or a corrupt one, nothing was written, and the request loads as usual (the load
    /// also tries the cookie's other ids, and an id of before SESSION_HASH_IDS), which
    /// gives the caller its usual way too.
    pub(super) async fn update_while_loading(
        &self,
        key: &str,
        update: &crate::record::KeyUpdate,
    ) -> Option<Result<Updated, StoreError>> {
        if self.inner.loaded.initialized() || self.in_cookie() {
            return None;
        }
        let mut outcome = None;
        let loading = self.load_updating(key, update, &mut outcome);
        // Another use of the session in this request may have started the load meanwhile:
        // then this one did not run, and `outcome` stays `None`.
        self.inner.loaded.get_or_init(|| loading).await;
        self.state().raise(Status::Used);
        outcome
    }

    /// The load of [`update_while_loading`](Self::update_while_loading): `outcome` gets
    /// the update's outcome when the update reached the store.
    async fn load_updating(
        &self,
        key: &str,
        update: &crate::record::KeyUpdate,
        outcome: &mut Option<Result<Updated, StoreError>>,
    ) -> bool {
        let presented = {
            let mut state = self.state();
            state.raise(Status::Used);
            match state.identity {
                _ if state.detached => None,
                Identity::Read(presented) => presented,
                Identity::Unread => self.verified().next(),
            }
        };
        let Some(presented) = presented else {
            return self.load_from_store().await;
        };
        match self
            .store()
            .update_and_load(&presented.key, key, update)
            .await
        {
            Ok((Updated::Missing, _)) | Err(StoreError::Decode(_)) => self.load_from_store().await,
            Ok((updated, record)) => {
                let live = match record {
                    Some(record) => self.accept(presented, record, SystemTime::now()).await,
                    None => false,
                };
                if !live {
                    // Deleted meanwhile, or past its absolute lifetime: the request goes
                    // on as a load that found nothing would have it.
                    return self.load_from_store().await;
                }
                *outcome = Some(Ok(updated));
                true
            }
            Err(error) => {
                // As a failed load: the caller answers the failure as a failed update.
                let mut state = self.state();
                if let Identity::Unread = state.identity {
                    state.identity = Identity::Read(None);
                }
                *outcome = Some(Err(error));
                true
            }
        }
    }

    async fn load_from_store(&self) -> bool {
        // Every cookie of our name that verifies, in the order the browser sent them: a
        // stale cookie (another path or domain) must not hide the live one.
        let ids: Vec<Presented> = {
            let mut state = self.state();
            state.raise(Status::Used);
            match state.identity {
                Identity::Read(presented) => presented.into_iter().collect(),
                Identity::Unread => {
                    // The id is the one whose entry loads, if any.
                    state.identity = Identity::Read(None);
                    self.verified().collect()
                }
            }
        };
        let store = self.store();
        let now = SystemTime::now();
        for presented in ids {
            #[cfg(feature = "cookie")]
            self.unpack(&presented).await;
            // A plain read: a refresh that falls due is applied when the request ends,
            // in the place of a save (see `finish`).
            let key = presented.key;
            let mut loaded = store.load(&key, None).await;
            if matches!(loaded, Ok(None)) && key != presented.id && self.config().hash_ids_migrate()
            {
                loaded = self.migrate(&presented.id, &key).await;
            }
            match loaded {
                Ok(Some(record)) => {
                    if self.accept(presented, record, now).await {
                        return true;
                    }
                }
                Ok(None) => {}
                Err(StoreError::Decode(error)) => {
                    tracing::warn!(
                        error = %Chain(&*error),
                        "stored session could not be decoded; starting a fresh session"
                    );
                }
                Err(error) => {
                    store_failed("load", &error);
                    let mut state = self.state();
                    self.store_failure(&mut state);
                    // Anonymous: an empty session, as for a visitor without one.
                    return state.detached;
                }
            }
        }
        true
    }
}

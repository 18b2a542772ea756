//! The getters and `with_*` setters of [`SessionConfig`], one pair a key, each saying
//! why its default is what it is.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{FailurePolicy, FlaskCompat, SameSite, Secret, SessionConfig, SessionType};

impl SessionConfig {
    // ---- SESSION_TYPE ----

    /// Which store keeps the sessions (`SESSION_TYPE`).
    ///
    /// Defaults to [`SessionType::Null`]: sessions are disabled until a store is chosen,
    /// so nothing is kept anywhere by accident.
    pub fn session_type(&self) -> SessionType {
        self.session_type
    }

    /// Sets which store keeps the sessions (`SESSION_TYPE`).
    ///
    /// Defaults to [`SessionType::Null`], as in Flask-Session: nothing is stored until you
    /// decide where sessions live, and a deployment that forgot the setting refuses to
    /// change sessions loudly instead of keeping them in a process memory that is lost on
    /// restart and not shared between instances.
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::{SessionConfig, SessionType};
    ///
    /// let config = SessionConfig::default().with_session_type(SessionType::Memory);
    /// assert_eq!(config.session_type(), SessionType::Memory);
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_session_type(mut self, session_type: SessionType) -> Self {
        self.session_type = session_type;
        self
    }

    // ---- Cookie ----

    /// Name of the session cookie (`SESSION_COOKIE_NAME`).
    ///
    /// Defaults to `session`, the name Flask uses, so a migrated application keeps its
    /// cookie; the name reveals nothing about the session's content.
    #[must_use]
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// Sets the name of the session cookie (`SESSION_COOKIE_NAME`).
    ///
    /// Defaults to `session`, Flask's name, so a migrated application keeps its cookie.
    /// Choose another name when several applications share a domain, so they do not
    /// overwrite each other's cookies. It must be an RFC 6265 token.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_cookie_name("sid");
    /// assert_eq!(config.cookie_name(), "sid");
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = name.into();
        self
    }

    /// The cookie's `Domain` attribute (`SESSION_COOKIE_DOMAIN`), if set.
    ///
    /// Defaults to `None`: the cookie is host-only, the narrowest scope a cookie can have,
    /// so subdomains never receive the session.
    #[must_use]
    pub fn cookie_domain(&self) -> Option<&str> {
        self.cookie_domain.as_deref()
    }

    /// Sets the cookie's `Domain` attribute (`SESSION_COOKIE_DOMAIN`).
    ///
    /// Defaults to unset: the browser returns the cookie only to the host that set it, the
    /// narrowest scope possible, so a compromised or untrusted subdomain never sees the
    /// session id. Set a domain only to share the session with its subdomains.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_cookie_domain("example.com");
    /// assert_eq!(config.cookie_domain(), Some("example.com"));
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_cookie_domain(mut self, domain: impl Into<String>) -> Self {
        self.cookie_domain = Some(domain.into());
        self
    }

    /// The cookie's `Path` attribute (`SESSION_COOKIE_PATH`); `/` when unset.
    ///
    /// Defaults to unset, which means `/`: the session covers the whole site, which is what
    /// a login session needs (paths are not a security boundary between pages anyway).
    #[must_use]
    pub fn cookie_path(&self) -> &str {
        self.cookie_path.as_deref().unwrap_or("/")
    }

    /// Sets the cookie's `Path` attribute (`SESSION_COOKIE_PATH`).
    ///
    /// Defaults to unset, meaning `/`, so the session is available on every page of the
    /// site; narrowing the path does not isolate pages from each other, so there is
    /// little to gain from it. Set it when the application is mounted under a prefix.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default();
    /// assert_eq!(config.cookie_path(), "/");
    /// assert_eq!(config.with_cookie_path("/app").cookie_path(), "/app");
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_cookie_path(mut self, path: impl Into<String>) -> Self {
        self.cookie_path = Some(path.into());
        self
    }

    /// Whether the cookie carries the `HttpOnly` flag (`SESSION_COOKIE_HTTPONLY`).
    ///
    /// Defaults to `true`: page scripts cannot read the cookie, so a cross-site scripting
    /// flaw cannot steal the session id.
    #[must_use]
    pub fn http_only(&self) -> bool {
        self.http_only
    }

    /// Sets whether the cookie carries the `HttpOnly` flag (`SESSION_COOKIE_HTTPONLY`).
    ///
    /// Defaults to `true`, and there is rarely a reason to change it: scripts never need
    /// the session id, and hiding it from them means a cross-site scripting flaw cannot
    /// send it to an attacker.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default();
    /// assert!(config.http_only());
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// Whether the cookie carries the `Secure` flag (`SESSION_COOKIE_SECURE`).
    ///
    /// Defaults to `false`, as in Flask, so sessions work on plain-HTTP development
    /// servers; set it to `true` in production behind HTTPS.
    #[must_use]
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Sets whether the cookie carries the `Secure` flag (`SESSION_COOKIE_SECURE`).
    ///
    /// Defaults to `false`, as in Flask: a `Secure` cookie is never sent over plain HTTP,
    /// so the default keeps sessions working on `http://localhost` during development.
    /// Set it to `true` whenever the site is served over HTTPS, so the id never crosses
    /// the network unencrypted. `SameSite=None` requires it.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_secure(true);
    /// assert!(config.secure());
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// The cookie's `SameSite` attribute (`SESSION_COOKIE_SAMESITE`), if set.
    ///
    /// Defaults to `None` (attribute left out), as in Flask: current browsers then treat
    /// the cookie as `Lax`; set [`SameSite::Lax`] to get that everywhere.
    #[must_use]
    pub fn same_site(&self) -> Option<SameSite> {
        self.same_site
    }

    /// Sets the cookie's `SameSite` attribute (`SESSION_COOKIE_SAMESITE`); `None` leaves
    /// the attribute out.
    ///
    /// Defaults to `None`, as in Flask, which keeps cross-site flows that older setups
    /// rely on working; current browsers then apply `Lax` themselves. Setting
    /// `Some(SameSite::Lax)` is recommended: it makes that protection against cross-site
    /// request forgery explicit for every browser. `SameSite::None` requires
    /// [`with_secure(true)`](Self::with_secure).
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::{SameSite, SessionConfig};
    ///
    /// let config = SessionConfig::default().with_same_site(Some(SameSite::Lax));
    /// assert_eq!(config.same_site(), Some(SameSite::Lax));
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_same_site(mut self, same_site: Option<SameSite>) -> Self {
        self.same_site = same_site;
        self
    }

    // ---- Lifetime ----

    /// How long a permanent session lives (`PERMANENT_SESSION_LIFETIME`).
    ///
    /// Defaults to 31 days, as in Flask: long enough that regular users stay logged in,
    /// short enough that a forgotten or stolen id stops working.
    #[must_use]
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Sets how long a permanent session lives (`PERMANENT_SESSION_LIFETIME`).
    ///
    /// Defaults to 31 days, as in Flask: it bounds how long an abandoned or stolen session
    /// id stays usable, while regular users (whose sessions are refreshed on each request,
    /// see [`with_refresh_each_request`](Self::with_refresh_each_request)) are not logged
    /// out. It must be between one second and 100 years.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let config = satchel::SessionConfig::default().with_lifetime(Duration::from_secs(3600));
    /// assert_eq!(config.lifetime(), Duration::from_secs(3600));
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Whether a permanent session's expiry moves forward on every request
    /// (`SESSION_REFRESH_EACH_REQUEST`).
    ///
    /// Defaults to `true`, as in Flask: active users stay logged in and only idle
    /// sessions expire.
    #[must_use]
    pub fn refresh_each_request(&self) -> bool {
        self.refresh_each_request
    }

    /// How far a stored expiry may lag behind "now + lifetime" before a request that
    /// only reads the session extends it: one hundredth of the lifetime (7 h 26 min for
    /// the 31-day default, 36 s for one hour).
    ///
    /// With SESSION_REFRESH_EACH_REQUEST on, the seed asks for the lifetime to restart
    /// at every request. Writing the new expiry on every read would turn each read into
    /// a store write; Satchel writes it only once it has fallen this far behind (a
    /// touch of the expiry alone, sent when the request ends in the place of a save), so
    /// reads cost a read, and a session still expires at most 1% of its lifetime
    /// earlier than an exact refresh would make it. With the 31-day default that is one
    /// touch per session every 7 h 26 min of activity at most.
    ///
    /// The same granularity applies to changes: a save (or an increment) that keeps the
    /// id moves a permanent session's stored expiry, and re-sends the cookie with it,
    /// only once the stored expiry lags by this much; until then both stay as they are.
    ///
    /// The cookie follows the stored expiry: it is re-sent with the touch or save that
    /// moves it. In between, the browser's cookie already expires with the stored entry
    /// (both came from the same write), so responses carry no `Set-Cookie` that would
    /// change nothing, and a late answer cannot hand back an id that a concurrent log-in
    /// or log-out has replaced. A consequence: cookie settings changed by a deployment
    /// (Secure, SameSite, the SESSION_PERMANENT default) reach a browser's existing
    /// permanent cookie with the next move of its expiry, and a browser-session cookie
    /// (which carries no expiry) only when it is next replaced.
    ///
    /// A session with its own lifetime ([`Session::set_lifetime`](crate::Session::set_lifetime))
    /// is refreshed by 1% of that lifetime instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let config = satchel::SessionConfig::default().with_lifetime(Duration::from_secs(3600));
    /// assert_eq!(config.refresh_granularity(), Duration::from_secs(36));
    /// ```
    #[must_use]
    pub fn refresh_granularity(&self) -> Duration {
        self.lifetime / 100
    }

    /// Sets whether a permanent session's expiry moves forward on every request, or only
    /// when the session changes (`SESSION_REFRESH_EACH_REQUEST`).
    ///
    /// Defaults to `true`, as in Flask: the lifetime then measures idleness, so active
    /// users are never logged out in the middle of their work while abandoned sessions
    /// still expire. Set `false` for a lifetime counted from the last change instead;
    /// requests that do not change the session then never write (with `true` they do
    /// once the expiry lags by [`refresh_granularity`](Self::refresh_granularity)).
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_refresh_each_request(false);
    /// assert!(!config.refresh_each_request());
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_refresh_each_request(mut self, refresh: bool) -> Self {
        self.refresh_each_request = refresh;
        self
    }

    /// Whether sessions are permanent (`SESSION_PERMANENT`).
    ///
    /// Defaults to `true`, as in Flask-Session: the cookie and the stored record expire
    /// together after the lifetime.
    #[must_use]
    pub fn permanent(&self) -> bool {
        self.permanent
    }

    /// Sets whether sessions are permanent (`SESSION_PERMANENT`).
    ///
    /// Defaults to `true`, as in Flask-Session: the cookie gets an expiry of
    /// [`lifetime`](Self::lifetime), so browser and store agree on when the session ends
    /// and it survives a browser restart. With `false` the cookie is a browser-session
    /// cookie that disappears when the browser closes (the stored record still expires
    /// after the lifetime).
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_permanent(false);
    /// assert!(!config.permanent());
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_permanent(mut self, permanent: bool) -> Self {
        self.permanent = permanent;
        self
    }

    // ---- Users ----

    /// The most sessions one user may have (`SESSION_MAX_PER_USER`): binding a user
    /// ([`Session::set_user`](crate::Session::set_user)) beyond it revokes that user's
    /// least recently used sessions. `None` (the default): no cap.
    #[must_use]
    pub fn max_per_user(&self) -> Option<usize> {
        self.max_per_user
    }

    /// Sets the most sessions one user may have (`SESSION_MAX_PER_USER`; `None`, the
    /// default, for no cap).
    ///
    /// Unset by default, as in every peer: a cap logs users out of devices they still
    /// use, which only the application can decide is right. Each log-in that binds a
    /// user then lists that user's sessions (a load per session) to enforce it.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_max_per_user(Some(5));
    /// assert_eq!(config.max_per_user(), Some(5));
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_max_per_user(mut self, max: Option<usize>) -> Self {
        self.max_per_user = max.filter(|&max| max > 0);
        self
    }

    // ---- Signing ----

    /// Whether the session id in the cookie is signed with `SECRET_KEY`
    /// (`SESSION_USE_SIGNER`).
    ///
    /// Defaults to `false`, as in Flask-Session: the id is 256 random bits and cannot be
    /// guessed, so the default setup works without a secret.
    #[must_use]
    pub fn use_signer(&self) -> bool {
        self.use_signer
    }

    /// Sets whether the session id in the cookie is signed with `SECRET_KEY`
    /// (`SESSION_USE_SIGNER`).
    ///
    /// Defaults to `false`, as in Flask-Session: session ids carry 256 bits from the
    /// operating system's random generator, so they cannot be guessed or forged even
    /// unsigned, and the default setup needs no secret. Signing adds defence in depth
    /// (forged ids are rejected before the store is asked) and key rotation; it needs
    /// [`with_secret_key`](Self::with_secret_key) and the `signed` feature.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default()
    ///     .with_use_signer(true)
    ///     .with_secret_key("a long random secret");
    /// assert!(config.use_signer());
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_use_signer(mut self, use_signer: bool) -> Self {
        self.use_signer = use_signer;
        self
    }

    /// The secret that signs session ids (`SECRET_KEY`), if set.
    ///
    /// Defaults to `None`: a secret built into the defaults would be public, so none is.
    #[must_use]
    pub fn secret_key(&self) -> Option<&Secret> {
        self.secret_key.as_ref()
    }

    /// Sets the secret that signs session ids (`SECRET_KEY`).
    ///
    /// Defaults to unset: any built-in secret would be published with this library and
    /// protect nothing, so a secret must come from your deployment. Use 32 or more random
    /// bytes, e.g. from `satchel keygen`, and keep it out of version control.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_secret_key("a long random secret");
    /// assert!(config.secret_key().is_some());
    /// assert!(!format!("{config:?}").contains("a long random secret"));
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_secret_key(mut self, secret: impl Into<Secret>) -> Self {
        self.secret_key = Some(secret.into());
        self
    }

    /// Older secrets still accepted when verifying signatures (`SECRET_KEY_FALLBACKS`).
    ///
    /// Defaults to none: only the current `SECRET_KEY` is trusted unless you are in the
    /// middle of rotating it.
    #[must_use]
    pub fn secret_key_fallbacks(&self) -> &[Secret] {
        &self.secret_key_fallbacks
    }

    /// Sets the older secrets still accepted when verifying signatures
    /// (`SECRET_KEY_FALLBACKS`), replacing any set before.
    ///
    /// Defaults to none, so only the current `SECRET_KEY` is trusted. To rotate keys, make
    /// the new secret `SECRET_KEY` and the old one a fallback: existing sessions stay
    /// valid and are re-signed with the new key (by the first request that uses its
    /// session: a handler that never touches it loads nothing and sends no cookie);
    /// remove the fallback once the old sessions have expired. In the string form the
    /// secrets are separated by commas.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default()
    ///     .with_secret_key("new secret")
    ///     .with_secret_key_fallbacks(["old secret", "older secret"]);
    /// assert_eq!(config.secret_key_fallbacks().len(), 2);
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_secret_key_fallbacks(
        mut self,
        secrets: impl IntoIterator<Item = impl Into<Secret>>,
    ) -> Self {
        self.secret_key_fallbacks = secrets.into_iter().map(Into::into).collect();
        self
    }

    /// The secret that encrypts session values at rest (`SESSION_DATA_KEY`), if set.
    ///
    /// Unset by default: values are stored as they are, which every store and tool can
    /// read. Set it when session values hold personal data that backups, replicas and
    /// whoever reads the store should not see; each value is then sealed with
    /// XChaCha20-Poly1305, bound to its session and key (see
    /// [`store::sealed`](crate::store::sealed), feature `sealed`). It needs 32 bytes or
    /// more: it is a key, not a password.
    #[must_use]
    pub fn data_key(&self) -> Option<&Secret> {
        self.data_key.as_ref()
    }

    /// Sets the secret that encrypts session values at rest (`SESSION_DATA_KEY`).
    ///
    /// Turning it on for a store that holds sessions in the clear ends those sessions
    /// (a value in the clear does not open: each such session starts afresh), and so does
    /// changing it without keeping the old one in
    /// [`data_key_fallbacks`](Self::data_key_fallbacks).
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default()
    ///     .with_data_key("a long and random data key, at least 32 bytes");
    /// assert!(config.data_key().is_some());
    /// assert!(!format!("{config:?}").contains("a long and random data key"));
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_data_key(mut self, secret: impl Into<Secret>) -> Self {
        self.data_key = Some(secret.into());
        self
    }

    /// Older data keys that still open values sealed before a rotation
    /// (`SESSION_DATA_KEY_FALLBACKS`); none by default.
    #[must_use]
    pub fn data_key_fallbacks(&self) -> &[Secret] {
        &self.data_key_fallbacks
    }

    /// Sets the older data keys that still open values sealed before a rotation
    /// (`SESSION_DATA_KEY_FALLBACKS`), replacing any set before.
    ///
    /// To rotate, make the new secret `SESSION_DATA_KEY` and the old one a fallback:
    /// values are sealed with the new key from then on, and each value is sealed again
    /// whenever it is written. Keep the fallback for at least PERMANENT_SESSION_LIFETIME.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default()
    ///     .with_data_key("the new data key, long and random, 32 bytes or more")
    ///     .with_data_key_fallbacks(["the old data key, long and random, 32 bytes or more"]);
    /// assert_eq!(config.data_key_fallbacks().len(), 1);
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_data_key_fallbacks(
        mut self,
        secrets: impl IntoIterator<Item = impl Into<Secret>>,
    ) -> Self {
        self.data_key_fallbacks = secrets.into_iter().map(Into::into).collect();
        self
    }

    // ---- Stores ----

    /// Prefix of every key written to the store (`SESSION_KEY_PREFIX`).
    ///
    /// Defaults to `session:`, as in Flask-Session, which keeps session keys apart from
    /// other data in a shared backend.
    #[must_use]
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// Sets the prefix of every key written to the store (`SESSION_KEY_PREFIX`).
    ///
    /// Defaults to `session:`, as in Flask-Session: session keys stay apart from other
    /// data in a shared Redis or Memcached, and are easy to find. Give each application
    /// its own prefix when several share one backend, so they never read each other's
    /// sessions.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_key_prefix("shop:");
    /// assert_eq!(config.key_prefix(), "shop:");
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Directory of the `filesystem` store (`SESSION_FILE_DIR`).
    ///
    /// Defaults to `flask_sessions`, relative to the working directory, as in
    /// Flask-Session, so a migrated application finds its directory where it was.
    #[must_use]
    pub fn file_dir(&self) -> &Path {
        &self.file_dir
    }

    /// Sets the directory of the `filesystem` store (`SESSION_FILE_DIR`).
    ///
    /// Defaults to `flask_sessions`, resolved against the working directory, as in
    /// Flask-Session, so a migrated application keeps its directory and a first run needs
    /// no setup. In production prefer an absolute path outside anything the web server
    /// serves.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::path::Path;
    ///
    /// let config = satchel::SessionConfig::default().with_file_dir("/var/lib/app/sessions");
    /// assert_eq!(config.file_dir(), Path::new("/var/lib/app/sessions"));
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_file_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.file_dir = dir.into();
        self
    }

    /// Most sessions the `filesystem` store keeps before it removes some
    /// (`SESSION_FILE_THRESHOLD`).
    ///
    /// Defaults to 500, as in Flask-Session, which bounds the disk space sessions take.
    #[must_use]
    pub fn file_threshold(&self) -> usize {
        self.file_threshold
    }

    /// Sets how many sessions the `filesystem` store keeps before it removes some
    /// (`SESSION_FILE_THRESHOLD`).
    ///
    /// Defaults to 500, as in Flask-Session: a bound means a flood of new sessions cannot
    /// fill the disk. Raise it for sites with more concurrent users. It must be positive.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_file_threshold(10_000);
    /// assert_eq!(config.file_threshold(), 10_000);
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_file_threshold(mut self, threshold: usize) -> Self {
        self.file_threshold = threshold;
        self
    }

    /// Permissions of the `filesystem` store's files (`SESSION_FILE_MODE`).
    ///
    /// Defaults to `0o600`: only the owning user can read or write session data.
    #[must_use]
    pub fn file_mode(&self) -> u32 {
        self.file_mode
    }

    /// Sets the permissions of the `filesystem` store's files (`SESSION_FILE_MODE`).
    ///
    /// Defaults to `0o600`, as in Flask-Session: session files hold user data, so only the
    /// user running the application may read or write them. The mode must keep the
    /// owner's read and write bits.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_file_mode(0o640);
    /// assert_eq!(config.file_mode(), 0o640);
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_file_mode(mut self, mode: u32) -> Self {
        self.file_mode = mode;
        self
    }

    /// Most sessions the `memory` store keeps (`SESSION_MEMORY_CAPACITY`).
    ///
    /// Defaults to 100 000, which bounds the memory sessions take under any load.
    #[must_use]
    pub fn memory_capacity(&self) -> usize {
        self.memory_capacity
    }

    /// Sets how many sessions the `memory` store keeps (`SESSION_MEMORY_CAPACITY`).
    ///
    /// Defaults to 100 000: enough for a busy single process, while a flood of new
    /// sessions (each request without a cookie can create one) cannot exhaust memory;
    /// beyond the capacity the sessions closest to expiry are dropped first. It must be
    /// positive.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_memory_capacity(1_000);
    /// assert_eq!(config.memory_capacity(), 1_000);
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_memory_capacity(mut self, capacity: usize) -> Self {
        self.memory_capacity = capacity;
        self
    }

    /// URL of the Redis server (`SESSION_REDIS`), if set.
    ///
    /// Defaults to `None`: the `redis` store then connects to `redis://127.0.0.1:6379`,
    /// as Flask-Session does, so nothing outside the machine is contacted by default.
    #[must_use]
    pub fn redis_url(&self) -> Option<&str> {
        self.redis_url.as_deref()
    }

    /// Sets the URL of the Redis server (`SESSION_REDIS`), e.g. `redis://127.0.0.1:6379`.
    ///
    /// Defaults to unset, meaning the local server, as in Flask-Session: nothing outside
    /// the machine is contacted unless configured. A password in the URL is masked in
    /// `Debug` output and [`entries`](Self::entries).
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_redis_url("redis://cache:6379/1");
    /// assert_eq!(config.redis_url(), Some("redis://cache:6379/1"));
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_redis_url(mut self, url: impl Into<String>) -> Self {
        self.redis_url = Some(url.into());
        self
    }

    /// Memcached servers (`SESSION_MEMCACHED`), if set.
    ///
    /// Defaults to `None`: the `memcached` store then uses `127.0.0.1:11211`, as
    /// Flask-Session does, so nothing outside the machine is contacted by default.
    #[must_use]
    pub fn memcached_servers(&self) -> Option<&str> {
        self.memcached_servers.as_deref()
    }

    /// Sets the Memcached servers (`SESSION_MEMCACHED`), e.g. `127.0.0.1:11211`.
    ///
    /// Defaults to unset, meaning the local server, as in Flask-Session: nothing outside
    /// the machine is contacted unless configured.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_memcached_servers("cache:11211");
    /// assert_eq!(config.memcached_servers(), Some("cache:11211"));
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_memcached_servers(mut self, servers: impl Into<String>) -> Self {
        self.memcached_servers = Some(servers.into());
        self
    }

    /// MongoDB connection URI (`SESSION_MONGODB`), if set.
    ///
    /// Defaults to `None`: the `mongodb` store then connects to
    /// `mongodb://127.0.0.1:27017`, as Flask-Session does, so nothing outside the machine
    /// is contacted by default.
    #[must_use]
    pub fn mongodb_uri(&self) -> Option<&str> {
        self.mongodb_uri.as_deref()
    }

    /// Sets the MongoDB connection URI (`SESSION_MONGODB`).
    ///
    /// Defaults to unset, meaning the local server, as in Flask-Session: nothing outside
    /// the machine is contacted unless configured. A password in the URI is masked in
    /// `Debug` output and [`entries`](Self::entries).
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_mongodb_uri("mongodb://db:27017");
    /// assert_eq!(config.mongodb_uri(), Some("mongodb://db:27017"));
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_mongodb_uri(mut self, uri: impl Into<String>) -> Self {
        self.mongodb_uri = Some(uri.into());
        self
    }

    /// MongoDB database (`SESSION_MONGODB_DB`).
    ///
    /// Defaults to `flask_session`, Flask-Session's name, so a migrated application finds
    /// its sessions; a database of its own keeps them apart from application data.
    #[must_use]
    pub fn mongodb_db(&self) -> &str {
        &self.mongodb_db
    }

    /// Sets the MongoDB database (`SESSION_MONGODB_DB`).
    ///
    /// Defaults to `flask_session`, Flask-Session's name, so a migrated application finds
    /// its existing sessions, and sessions stay apart from application data.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_mongodb_db("app");
    /// assert_eq!(config.mongodb_db(), "app");
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_mongodb_db(mut self, db: impl Into<String>) -> Self {
        self.mongodb_db = db.into();
        self
    }

    /// MongoDB collection (`SESSION_MONGODB_COLLECT`).
    ///
    /// Defaults to `sessions`, Flask-Session's name, so a migrated application finds its
    /// sessions.
    #[must_use]
    pub fn mongodb_collection(&self) -> &str {
        &self.mongodb_collection
    }

    /// Sets the MongoDB collection (`SESSION_MONGODB_COLLECT`).
    ///
    /// Defaults to `sessions`, Flask-Session's name, so a migrated application finds its
    /// existing sessions.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_mongodb_collection("web_sessions");
    /// assert_eq!(config.mongodb_collection(), "web_sessions");
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_mongodb_collection(mut self, collection: impl Into<String>) -> Self {
        self.mongodb_collection = collection.into();
        self
    }

    /// Whether the SQL store creates its table and expiry index when it starts
    /// (`SESSION_SQL_AUTO_MIGRATE`). Default `true`: the seed's hook registers the table
    /// for the application; turn it off where the schema is managed elsewhere and run
    /// `satchel migrate` instead.
    #[must_use]
    pub fn sql_auto_migrate(&self) -> bool {
        self.sql_auto_migrate
    }

    /// Sets `SESSION_SQL_AUTO_MIGRATE`.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_sql_auto_migrate(false);
    /// assert!(!config.sql_auto_migrate());
    /// ```
    pub fn with_sql_auto_migrate(mut self, migrate: bool) -> Self {
        self.sql_auto_migrate = migrate;
        self
    }

    /// The most a session lives from its creation, however active it is
    /// (`SESSION_ABSOLUTE_LIFETIME`); `None` (the default): no such limit.
    ///
    /// Unset by default, as in Flask and every peer: a session then lives as long as it is
    /// used within [`lifetime`](Self::lifetime). Set it to bound what a stolen session id
    /// is worth even while its thief keeps it busy (OWASP asks for both limits). The
    /// engine counts it from the creation time stored with the session, which an id
    /// rotation keeps: no refresh and no per-session lifetime moves the expiry past it,
    /// and a session loaded past it (the limit may have been lowered since) is deleted
    /// and loads as none.
    #[must_use]
    pub fn absolute_lifetime(&self) -> Option<Duration> {
        self.absolute_lifetime
    }

    /// Sets `SESSION_ABSOLUTE_LIFETIME`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let day = Duration::from_secs(24 * 3600);
    /// let config = satchel::SessionConfig::default().with_absolute_lifetime(Some(day));
    /// assert_eq!(config.absolute_lifetime(), Some(day));
    /// ```
    pub fn with_absolute_lifetime(mut self, limit: Option<Duration>) -> Self {
        self.absolute_lifetime = limit;
        self
    }

    /// How often a background task deletes expired rows from the SQL table
    /// (`SESSION_SQL_CLEANUP_INTERVAL`). Default unset: no task; expired rows are never
    /// served (expiry is checked on load) and `satchel cleanup` removes them.
    #[must_use]
    pub fn sql_cleanup_interval(&self) -> Option<Duration> {
        self.sql_cleanup_interval
    }

    /// Sets `SESSION_SQL_CLEANUP_INTERVAL`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = satchel::SessionConfig::default()
    ///     .with_sql_cleanup_interval(Some(Duration::from_secs(300)));
    /// assert_eq!(config.sql_cleanup_interval(), Some(Duration::from_secs(300)));
    /// ```
    pub fn with_sql_cleanup_interval(mut self, interval: Option<Duration>) -> Self {
        self.sql_cleanup_interval = interval;
        self
    }

    /// How long a networked store may take to connect or answer before the request fails
    /// (`SESSION_STORE_TIMEOUT`). Default 2 seconds: a store that is down gives a quick
    /// `500` instead of requests piling up behind it.
    #[must_use]
    pub fn store_timeout(&self) -> Duration {
        self.store_timeout
    }

    /// Sets `SESSION_STORE_TIMEOUT`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = satchel::SessionConfig::default().with_store_timeout(Duration::from_secs(5));
    /// assert_eq!(config.store_timeout(), Duration::from_secs(5));
    /// ```
    pub fn with_store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = timeout;
        self
    }

    /// How a request is answered when the store fails (`SESSION_STORE_FAILURE`). Default
    /// [`FailurePolicy::Error`]: an empty `500`, the answer of any other failing
    /// dependency, so nothing is assumed about the application (see [`FailurePolicy`]
    /// for the others).
    #[must_use]
    pub fn store_failure(&self) -> FailurePolicy {
        self.store_failure
    }

    /// Sets `SESSION_STORE_FAILURE`.
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::{FailurePolicy, SessionConfig};
    ///
    /// let config = SessionConfig::default().with_store_failure(FailurePolicy::Anonymous);
    /// assert_eq!(config.store_failure(), FailurePolicy::Anonymous);
    /// ```
    pub fn with_store_failure(mut self, policy: FailurePolicy) -> Self {
        self.store_failure = policy;
        self
    }

    /// How many store failures in a row open the circuit breaker
    /// (`SESSION_BREAKER_FAILURES`); `0` when there is no breaker. Default
    /// [`DEFAULT_BREAKER_FAILURES`](super::DEFAULT_BREAKER_FAILURES) (5).
    ///
    /// The breaker stands in front of the store. Once open, every request that needs the
    /// store gets the [failure answer](Self::store_failure) at once, without waiting for
    /// the store's timeout, for [`breaker_cooldown`](Self::breaker_cooldown); then one
    /// request tries the store: if it succeeds the breaker closes, otherwise it opens for
    /// another cool-down. Only the backend's failures count (no answer, refused,
    /// timed out), never a corrupt entry. Health checks always ask the store, and their
    /// answer counts like a request's.
    #[must_use]
    pub fn breaker_failures(&self) -> usize {
        self.breaker_failures
    }

    /// Sets `SESSION_BREAKER_FAILURES` (`0` turns the breaker off).
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_breaker_failures(0);
    /// assert_eq!(config.breaker_failures(), 0);
    /// ```
    pub fn with_breaker_failures(mut self, failures: usize) -> Self {
        self.breaker_failures = failures;
        self
    }

    /// The size budget of a session, in bytes (`SESSION_MAX_SIZE`); `0` when there is
    /// none. Default [`DEFAULT_MAX_SIZE`](super::DEFAULT_MAX_SIZE) (256 KiB), and why.
    ///
    /// A session is measured as its keys plus the JSON text of its values
    /// ([`stored_size`](crate::record::stored_size); MongoDB measures the BSON of its
    /// `data` document instead). An insert that would take the session over the budget
    /// fails at once with [`Error::TooLarge`](crate::Error::TooLarge), leaving the
    /// session as it was; the store checks the budget again when it merges the
    /// request's changes onto the latest stored session, and refuses (never truncates)
    /// a merge that would cross it. Removing keys is never refused.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default();
    /// assert_eq!(config.max_size(), 256 * 1024);
    /// ```
    #[must_use]
    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// Sets `SESSION_MAX_SIZE`, in bytes (`0`: no budget).
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_max_size(64 * 1024);
    /// assert_eq!(config.max_size(), 65536);
    /// let unlimited = satchel::SessionConfig::default().with_max_size(0);
    /// assert_eq!(unlimited.max_size(), 0);
    /// ```
    pub fn with_max_size(mut self, bytes: usize) -> Self {
        self.max_size = bytes;
        self
    }

    /// How long an open breaker answers without asking the store
    /// (`SESSION_BREAKER_COOLDOWN`). Default
    /// [`DEFAULT_BREAKER_COOLDOWN`](super::DEFAULT_BREAKER_COOLDOWN) (1 second).
    #[must_use]
    pub fn breaker_cooldown(&self) -> Duration {
        self.breaker_cooldown
    }

    /// Sets `SESSION_BREAKER_COOLDOWN`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = satchel::SessionConfig::default()
    ///     .with_breaker_cooldown(Duration::from_secs(5));
    /// assert_eq!(config.breaker_cooldown(), Duration::from_secs(5));
    /// ```
    pub fn with_breaker_cooldown(mut self, cooldown: Duration) -> Self {
        self.breaker_cooldown = cooldown;
        self
    }

    /// Whether sessions are stored under a hash of their id (`SESSION_HASH_IDS`).
    ///
    /// Defaults to `true`. The id in the cookie is a bearer credential: whoever holds it
    /// holds the session. Stored under a hash of the id instead
    /// ([`SessionId::hashed`](crate::SessionId::hashed): BLAKE3, keyed with a fixed public
    /// key), a session cannot be taken by whoever reads the store (a backup, a replica, a
    /// `KEYS *`, a SQL dump, a leaked snapshot): the hash cannot be turned back into the id,
    /// nor used as a cookie. The id carries 256 random bits, so no secret is needed: there
    /// is nothing to guess, and no key to keep or rotate. Every store is covered, and so are the user
    /// indexes, which list sessions by their stored key.
    ///
    /// Turn it off only where something else must find sessions by their cookie's id: an
    /// application sharing the store with Flask-Session (which stores raw ids), or tools
    /// that look sessions up by cookie. A deployment whose sessions were stored under raw
    /// ids moves with [`hash_ids_migrate`](Self::hash_ids_migrate).
    #[must_use]
    pub fn hash_ids(&self) -> bool {
        self.hash_ids
    }

    /// Sets `SESSION_HASH_IDS`.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_hash_ids(false);
    /// assert!(!config.hash_ids());
    /// ```
    pub fn with_hash_ids(mut self, hash: bool) -> Self {
        self.hash_ids = hash;
        self
    }

    /// Whether sessions are stored in Flask-Session's layout (`SESSION_FLASK_COMPAT`).
    /// Default [`FlaskCompat::Off`]: Satchel's own layouts keep what Flask's cannot
    /// (hashed ids, sealed values, a field per key, which makes a write cheaper); turn it
    /// on only to share sessions with a Flask application.
    #[must_use]
    pub fn flask_compat(&self) -> FlaskCompat {
        self.flask_compat
    }

    /// Sets `SESSION_FLASK_COMPAT`.
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::{FlaskCompat, SessionConfig};
    ///
    /// let config = SessionConfig::default().with_flask_compat(FlaskCompat::Msgpack);
    /// assert_eq!(config.flask_compat(), FlaskCompat::Msgpack);
    /// ```
    pub fn with_flask_compat(mut self, compat: FlaskCompat) -> Self {
        self.flask_compat = compat;
        self
    }

    /// Whether a session that is not found under its hashed key is looked up under its
    /// raw id and moved (`SESSION_HASH_IDS_MIGRATE`).
    ///
    /// Defaults to `false`: it costs a second lookup for every id that names no session.
    /// Turn it on when turning SESSION_HASH_IDS on over sessions stored under raw ids
    /// (before it existed, or with it off): each such session moves to its hashed key the
    /// first time a request presents it (an atomic move, as for a log-in, so a change
    /// racing it is kept), with its user's index. Turn it off again once the longest
    /// session lifetime has passed: by then every raw entry has moved or expired.
    ///
    /// It needs SESSION_USE_SIGNER ([`validate`](Self::validate) refuses it otherwise):
    /// with unsigned cookies, whoever learned a stored key (from a dump, say) could
    /// present it as a cookie, and the migration would move that session to the hash of
    /// the key, which their cookie then opens. A signed cookie names only ids the server
    /// signed. A deployment without signing that turns hashing on does without the
    /// migration: its users log in again.
    #[must_use]
    pub fn hash_ids_migrate(&self) -> bool {
        self.hash_ids_migrate
    }

    /// Sets `SESSION_HASH_IDS_MIGRATE`.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_hash_ids_migrate(true);
    /// assert!(config.hash_ids_migrate());
    /// ```
    pub fn with_hash_ids_migrate(mut self, migrate: bool) -> Self {
        self.hash_ids_migrate = migrate;
        self
    }

    /// SQL database URL (`SESSION_SQL_URL`), if set.
    ///
    /// Defaults to `None`: there is no sensible database to assume, so the SQL store
    /// requires it rather than guessing.
    #[must_use]
    pub fn sql_url(&self) -> Option<&str> {
        self.sql_url.as_deref()
    }

    /// Sets the SQL database URL (`SESSION_SQL_URL`), e.g. `sqlite://sessions.db`.
    ///
    /// Defaults to unset: no database can be assumed, so the SQL store asks for one
    /// instead of creating files or connecting somewhere by surprise. A password in the
    /// URL is masked in `Debug` output and [`entries`](Self::entries).
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_sql_url("sqlite://sessions.db");
    /// assert_eq!(config.sql_url(), Some("sqlite://sessions.db"));
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_sql_url(mut self, url: impl Into<String>) -> Self {
        self.sql_url = Some(url.into());
        self
    }

    /// SQL table (`SESSION_SQLALCHEMY_TABLE`).
    ///
    /// Defaults to `flask_sessions`, Flask-Session's name, so a migrated application finds
    /// its table.
    #[must_use]
    pub fn sql_table(&self) -> &str {
        &self.sql_table
    }

    /// Sets the SQL table (`SESSION_SQLALCHEMY_TABLE`).
    ///
    /// Defaults to `flask_sessions`, Flask-Session's name, so a migrated application finds
    /// its existing table, and the name says what the table holds.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default().with_sql_table("web_sessions");
    /// assert_eq!(config.sql_table(), "web_sessions");
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_sql_table(mut self, table: impl Into<String>) -> Self {
        self.sql_table = table.into();
        self
    }

    /// The table mapping (`SESSION_SQLALCHEMY_MODEL`), as written, if set: where an
    /// existing table keeps the id, data and expiry, as comma-separated `field=name`
    /// pairs. The SQL store parses and validates it when it opens.
    ///
    /// Defaults to `None`: the built-in layout, in the table SESSION_SQLALCHEMY_TABLE
    /// names.
    #[must_use]
    pub fn sql_model(&self) -> Option<&str> {
        self.sql_model.as_deref()
    }

    /// Sets the table mapping (`SESSION_SQLALCHEMY_MODEL`): the seed's custom session
    /// model becomes the description of an existing table, as comma-separated
    /// `field=name` pairs (fields `schema`, `table`, `id`, `data`, `expiry`, `version`,
    /// `index`; each optional).
    ///
    /// Defaults to unset: the built-in layout, whose names are safe and known.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = satchel::SessionConfig::default()
    ///     .with_sql_model("table=web_sessions,id=session_id,expiry=expires_at");
    /// assert_eq!(config.sql_model(), Some("table=web_sessions,id=session_id,expiry=expires_at"));
    /// ```
    #[must_use = "setters return the changed configuration"]
    pub fn with_sql_model(mut self, model: impl Into<String>) -> Self {
        self.sql_model = Some(model.into());
        self
    }
}

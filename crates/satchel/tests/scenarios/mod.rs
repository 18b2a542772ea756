//! One list of HTTP scenarios, run through every framework integration, so a behaviour
//! cannot drift between them. Each framework's test file builds an app serving the routes
//! below over a given store and configuration, and implements [`Harness`].
//!
//! Routes every test app serves:
//! `GET /none` (never touches the session), `POST /login?uid=N` (sets user_id, n, cycles
//! the id), `GET /read` (user_id or 0), `POST /write` (n += 1), `GET /count-keys`,
//! `POST /set/{k}` (k = true), `GET /get/{k}` (the value as JSON, `null` if missing),
//! `POST /remove/{k}`, `POST /logout` (destroy), `POST /clear`, `POST /cycle`,
//! `POST /permanent/{true|false}`, `POST /fail` (sets a key, answers 500),
//! `POST /logout-then-set` (destroy, then set `flash`), `POST /incr` (`n` incremented in
//! the store, answering the sum), `POST /bump/{k}` (k + 1, set only if k is unchanged;
//! answers the new value, or 409), `POST /bind?uid=N` (binds the session to user N and
//! cycles the id: a log-in), `POST /logout-all` and `POST /logout-others` (revoke every
//! session of the session's user, or all but this one, answering how many went),
//! `GET /user-sessions` (how many live sessions the session's user has),
//! `POST /lifetime/{seconds}` (the session's own lifetime; `0`: back to the configured one),
//! `GET /status/{k}` (the status, whether the session holds k, the status again),
//! `POST /set-status/{k}` (sets k, answers the status), `POST /destroy-status` (destroys,
//! answers the status).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

#[cfg(feature = "actix")]
pub mod actix_app;
#[cfg(feature = "axum")]
pub mod axum_app;

use std::future::Future;
use std::time::{Duration, SystemTime};

use satchel::store::BoxedStore;
use satchel::{
    Error, MemoryStore, SameSite, Session, SessionConfig, SessionId, SessionManager, SessionStore,
};

/// The SECRET_KEY of the scenarios on the cookie store, unless one sets its own.
pub const COOKIE_KEY: &str = "the secret key of the scenarios on the cookie store";

/// What a test app answered.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub set_cookie: Vec<String>,
    pub vary: Vec<String>,
    pub retry_after: Option<String>,
    pub body: String,
}

/// A framework under test.
pub trait Harness: Sync {
    /// Sends one request to an app over `store` with `config`; `cookie` is the `Cookie`
    /// header to send.
    fn request(
        &self,
        app: &App,
        method: &str,
        path: &str,
        cookie: Option<&str>,
    ) -> impl Future<Output = Reply> + Send;
}

/// A store and configuration the harness serves.
#[derive(Debug, Clone)]
pub struct App {
    pub store: BoxedStore,
    pub config: SessionConfig,
    /// The port of a harness that serves the app over real HTTP, once started.
    pub port: std::sync::Arc<std::sync::OnceLock<u16>>,
    /// The one manager every request of the app goes through (its circuit breaker
    /// lives there), built on first use.
    manager: std::sync::Arc<std::sync::OnceLock<SessionManager>>,
}

impl App {
    pub fn new(store: impl SessionStore, config: SessionConfig) -> Self {
        Self {
            store: BoxedStore::new(store),
            config,
            port: std::sync::Arc::default(),
            manager: std::sync::Arc::default(),
        }
    }

    /// The app's manager.
    pub fn manager(&self) -> SessionManager {
        self.manager
            .get_or_init(|| {
                let mut config = self.config.clone();
                if self.store.capabilities().in_cookie && config.secret_key().is_none() {
                    // The cookie store seals sessions with SECRET_KEY.
                    config = config.with_secret_key(COOKIE_KEY);
                }
                SessionManager::new(self.store.clone(), config).expect("a valid configuration")
            })
            .clone()
    }
}

/// A browser: one cookie jar (for the session cookie), following Set-Cookie.
pub struct Browser<'a, H: Harness> {
    harness: &'a H,
    app: &'a App,
    pub cookie: Option<String>,
}

impl<'a, H: Harness> Browser<'a, H> {
    pub fn new(harness: &'a H, app: &'a App) -> Self {
        Self {
            harness,
            app,
            cookie: None,
        }
    }

    fn name(&self) -> &str {
        self.app.config.cookie_name()
    }

    pub async fn send(&mut self, method: &str, path: &str) -> Reply {
        let header = self.cookie.as_ref().map(|v| format!("{}={v}", self.name()));
        let reply = self
            .harness
            .request(self.app, method, path, header.as_deref())
            .await;
        for set in &reply.set_cookie {
            let (pair, _) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if name == self.name() {
                let removed = set.contains("Max-Age=0");
                self.cookie = (!removed).then(|| value.to_owned());
            }
        }
        reply
    }

    /// The `Cookie` header this browser sends.
    pub fn header(&self) -> String {
        format!(
            "{}={}",
            self.name(),
            self.cookie.as_deref().expect("a session cookie")
        )
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        self.send("GET", path).await
    }

    pub async fn post(&mut self, path: &str) -> Reply {
        self.send("POST", path).await
    }

    /// The session id in the cookie (the part before any signature): a secret.
    pub fn cookie_id(&self) -> SessionId {
        let value = self.cookie.as_deref().expect("a session cookie");
        value.split('.').next().unwrap().parse().unwrap()
    }

    /// The key the session is stored under: the hash of the cookie's id, unless the
    /// app's configuration turns SESSION_HASH_IDS off.
    pub fn id(&self) -> SessionId {
        let id = self.cookie_id();
        if self.app.config.hash_ids() {
            id.hashed()
        } else {
            id
        }
    }
}

fn session_cookie<'r>(reply: &'r Reply, name: &str) -> Option<&'r str> {
    reply
        .set_cookie
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(String::as_str)
}

fn is_removal(cookie: &str) -> bool {
    cookie.contains("Max-Age=0")
}

fn signed_config() -> SessionConfig {
    SessionConfig::default()
        .with_session_type(satchel::SessionType::Memory)
        .with_use_signer(true)
        .with_secret_key("a long, random and secret application key")
}

/// Generates one `#[tokio::test]` per scenario for a harness and a store.
///
/// `$store` is an expression giving a future of `Option<S>` for a `SessionStore` `S`,
/// evaluated once per scenario; `None` skips (see `satchel::testing::service_unavailable`).
#[macro_export]
macro_rules! scenarios {
    ($harness:expr, $store:expr) => {
        $crate::scenarios!(@each $harness, $store;
            login_sets_a_cookie_and_reads_it_back,
            a_handler_that_never_touches_the_session_costs_nothing,
            reading_an_empty_session_stores_nothing,
            every_cookie_option_is_applied,
            defaults_are_http_only_root_path_and_not_secure,
            permanent_sessions_carry_an_expiry_and_browser_sessions_do_not,
            per_session_permanent_flag_overrides_the_default,
            refresh_each_request_resends_the_cookie_and_extends_the_entry,
            without_refresh_the_cookie_is_sent_only_on_change,
            refresh_leaves_browser_sessions_alone,
            inserting_an_equal_value_saves_nothing,
            login_cycles_the_id_and_the_old_id_is_dead,
            logout_deletes_the_entry_and_removes_the_cookie,
            logout_then_set_starts_a_new_session,
            a_session_emptied_by_the_handler_is_deleted,
            nothing_is_saved_when_the_handler_answers_5xx,
            malformed_cookies_give_a_fresh_session,
            unknown_ids_are_never_adopted,
            forged_signatures_are_rejected,
            fallback_keys_verify_and_the_cookie_is_resigned,
            expired_sessions_are_not_loaded,
            vary_cookie_is_set_whenever_the_session_was_used,
            a_failing_store_gives_an_empty_500,
            corrupt_entries_give_a_fresh_session,
            fifty_concurrent_requests_keep_fifty_keys,
            non_ascii_cookies_do_not_hide_the_session_cookie,
            a_stale_cookie_of_the_same_name_does_not_hide_the_live_one,
            each_request_costs_at_most_one_load_and_one_save,
            concurrent_increments_are_all_kept,
            concurrent_flashes_are_each_shown_once,
            conditional_sets_never_overwrite_a_concurrent_change,
            changes_racing_a_login_are_kept_or_refused,
            changes_racing_a_logout_are_refused_and_never_revive_it,
            fifty_concurrent_logins_of_one_user_are_all_listed,
            revoking_a_user_beats_requests_in_flight,
            the_cap_keeps_the_most_recently_used_sessions,
            expired_sessions_are_never_listed,
            logging_out_everywhere_else_keeps_this_session,
            raw_entries_move_to_hashed_keys_when_migrating,
            the_absolute_lifetime_ends_a_session_however_busy,
            a_lowered_absolute_lifetime_ends_sessions_written_before,
            a_session_stored_without_a_limit_counts_from_its_first_read_under_one,
            a_session_lifetime_is_kept_through_a_login,
            the_status_and_contains_key_follow_the_session,
        );
    };
    (@each $harness:expr, $store:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(store) = $store.await else { return };
                let store = satchel::store::BoxedStore::new(store);
                $crate::scenarios::$name(&$harness, &store).await;
            }
        )*
    };
}

/// Generates the scenarios of the cookie store (SESSION_TYPE=cookie) for a harness: the
/// shared scenarios that apply to a session kept in its cookie, and its own.
///
/// The other shared scenarios do not apply, for one of three reasons: they read or
/// write the server's store behind the app's back (there is none: the expiry, refresh,
/// log-in, log-out, migration and request-cost scenarios check the stored entry), they
/// count on revocation or a user index (a cookie cannot be recalled: the log-out race,
/// listings, the cap, revoking a user), or they count on concurrent requests merging
/// their changes (each answer carries the whole session, so the last one wins: the
/// fifty keys, increments, flashes, conditional sets and the log-in race). What a cookie
/// does instead in each case is checked by the scenarios below.
#[macro_export]
macro_rules! cookie_scenarios {
    ($harness:expr) => {
        $crate::scenarios!(@each $harness, async { Some(satchel::store::cookie::CookieStore) };
            login_sets_a_cookie_and_reads_it_back,
            reading_an_empty_session_stores_nothing,
            every_cookie_option_is_applied,
            nothing_is_saved_when_the_handler_answers_5xx,
            vary_cookie_is_set_whenever_the_session_was_used,
            without_refresh_the_cookie_is_sent_only_on_change,
            non_ascii_cookies_do_not_hide_the_session_cookie,
            a_stale_cookie_of_the_same_name_does_not_hide_the_live_one,
            a_cookie_carries_the_session_sealed_and_only_when_it_changes,
            a_cookie_session_ends_at_its_sealed_expiry_whatever_the_browser_keeps,
            forged_and_foreign_cookies_give_a_fresh_session,
            a_cookie_sealed_with_a_fallback_key_is_sealed_again,
            a_log_out_removes_the_cookie_but_cannot_recall_a_copy,
            a_session_too_large_for_a_cookie_is_refused,
            what_needs_a_server_is_refused_clearly,
            the_status_and_contains_key_follow_the_session,
        );
    };
}

/// The cookie store: the session goes out sealed (nothing of it readable) after each
/// change, within one request increments, flashes and lifetimes work as anywhere, and a
/// read that changes nothing sends no cookie.
pub async fn a_cookie_carries_the_session_sealed_and_only_when_it_changes<H: Harness>(
    h: &H,
    store: &BoxedStore,
) {
    let app = App::new(store.clone(), SessionConfig::default());
    let mut b = Browser::new(h, &app);
    let reply = b.post("/login?uid=4242").await;
    let cookie = session_cookie(&reply, "session").unwrap();
    assert!(cookie.starts_with("session=v1."), "{cookie}");
    assert!(!cookie.contains("4242"), "sealed: {cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    let first = b.cookie.clone();
    let reply = b.get("/read").await;
    assert_eq!(reply.body, "4242");
    assert_eq!(
        session_cookie(&reply, "session"),
        None,
        "a read sends nothing"
    );
    assert_eq!(b.post("/incr").await.body, "1", "n was 0 after the log-in");
    assert_ne!(b.cookie, first, "the change went out in a new cookie");
    assert_eq!(b.post("/incr").await.body, "2");
    b.post("/flash/hello").await;
    assert_eq!(b.post("/take-flashes").await.body, "hello");
    assert_eq!(b.post("/take-flashes").await.body, "", "shown once");
    let reply = b.post("/lifetime/86400").await;
    assert!(max_age(session_cookie(&reply, "session").unwrap()).abs_diff(86400) <= 2);
    assert_eq!(b.get("/read").await.body, "4242");
}

/// The cookie store enforces the expiry sealed in the cookie, not the cookie's own
/// `Expires`: a browser (or a thief) that keeps sending an old cookie gets no session;
/// SESSION_ABSOLUTE_LIFETIME holds however busy the session is; and a cookie sealed while
/// the limit was longer is ended by a lower one, its removal sent.
pub async fn a_cookie_session_ends_at_its_sealed_expiry_whatever_the_browser_keeps<H: Harness>(
    h: &H,
    store: &BoxedStore,
) {
    let config = SessionConfig::default()
        .with_lifetime(Duration::from_secs(2))
        .with_refresh_each_request(false);
    let app = App::new(store.clone(), config);
    let mut b = Browser::new(h, &app);
    b.post("/login?uid=5").await;
    assert_eq!(b.get("/read").await.body, "5");
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(
        b.get("/read").await.body,
        "0",
        "the cookie, sent again, has expired"
    );

    let limit = Duration::from_secs(4);
    let config = SessionConfig::default()
        .with_lifetime(Duration::from_secs(60))
        .with_absolute_lifetime(Some(limit));
    let app = App::new(store.clone(), config);
    let mut b = Browser::new(h, &app);
    let start = SystemTime::now();
    b.post("/login?uid=6").await;
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(b.get("/read").await.body, "6");
        b.post("/write").await;
    }
    let end = start + limit + Duration::from_millis(300);
    if let Ok(wait) = end.duration_since(SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
    assert_eq!(b.get("/read").await.body, "0", "past the absolute limit");

    let lenient = App::new(
        store.clone(),
        SessionConfig::default().with_absolute_lifetime(Some(Duration::from_secs(3600))),
    );
    let mut b = Browser::new(h, &lenient);
    b.post("/login?uid=7").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let strict = App::new(
        store.clone(),
        SessionConfig::default().with_absolute_lifetime(Some(Duration::from_secs(1))),
    );
    let mut late = Browser::new(h, &strict);
    late.cookie.clone_from(&b.cookie);
    let reply = late.get("/read").await;
    assert_eq!(reply.body, "0", "past the lowered limit");
    let removal = session_cookie(&reply, "session").expect("the dead cookie is removed");
    assert!(is_removal(removal), "{removal}");
}

/// A cookie changed by a single character, sealed under another cookie name or with
/// another SECRET_KEY, or not sealed at all, is no session: a fresh one, never an error.
pub async fn forged_and_foreign_cookies_give_a_fresh_session<H: Harness>(
    h: &H,
    store: &BoxedStore,
) {
    let app = App::new(store.clone(), SessionConfig::default());
    let mut b = Browser::new(h, &app);
    b.post("/login?uid=9").await;
    let good = b.cookie.clone().unwrap();
    let middle = good.len() / 2;
    let flipped = if &good[middle..=middle] == "A" {
        "B"
    } else {
        "A"
    };
    let forged = format!("{}{flipped}{}", &good[..middle], &good[middle + 1..]);
    let other = App::new(
        store.clone(),
        SessionConfig::default().with_secret_key("another application's secret key, long enough"),
    );
    let mut foreign = Browser::new(h, &other);
    foreign.post("/login?uid=10").await;
    let renamed = App::new(
        store.clone(),
        SessionConfig::default().with_cookie_name("other"),
    );
    let mut named = Browser::new(h, &renamed);
    named.post("/login?uid=11").await;
    for (what, value) in [
        ("a flipped character", forged),
        ("another key's cookie", foreign.cookie.clone().unwrap()),
        ("another cookie name's", named.cookie.clone().unwrap()),
        ("an unsealed id", SessionId::generate().to_string()),
        ("garbage", "v1.%%%".to_owned()),
    ] {
        let mut b = Browser::new(h, &app);
        b.cookie = Some(value);
        let reply = b.get("/read").await;
        assert_eq!((reply.status, reply.body.as_str()), (200, "0"), "{what}");
    }
    let mut b = Browser::new(h, &app);
    b.cookie = Some(good);
    assert_eq!(b.get("/read").await.body, "9", "the real one still opens");
}

/// SECRET_KEY_FALLBACKS: a cookie sealed with an old key opens, and the answer seals it
/// again with the current key, even on a read.
pub async fn a_cookie_sealed_with_a_fallback_key_is_sealed_again<H: Harness>(
    h: &H,
    store: &BoxedStore,
) {
    let old_key = "the application's previous secret key, long enough";
    let old = App::new(
        store.clone(),
        SessionConfig::default().with_secret_key(old_key),
    );
    let mut b = Browser::new(h, &old);
    b.post("/login?uid=12").await;
    let rotated = App::new(
        store.clone(),
        SessionConfig::default()
            .with_secret_key("the application's current secret key, long enough")
            .with_secret_key_fallbacks([old_key]),
    );
    let mut b2 = Browser::new(h, &rotated);
    b2.cookie.clone_from(&b.cookie);
    let reply = b2.get("/read").await;
    assert_eq!(reply.body, "12");
    assert!(
        session_cookie(&reply, "session").is_some(),
        "sealed again with the current key"
    );
    assert_ne!(b2.cookie, b.cookie);
    let current_only = App::new(
        store.clone(),
        SessionConfig::default()
            .with_secret_key("the application's current secret key, long enough"),
    );
    let mut b3 = Browser::new(h, &current_only);
    b3.cookie.clone_from(&b2.cookie);
    assert_eq!(
        b3.get("/read").await.body,
        "12",
        "the new cookie needs no fallback"
    );
    b3.cookie.clone_from(&b.cookie);
    assert_eq!(
        b3.get("/read").await.body,
        "0",
        "the old one does, once it is dropped"
    );
}

/// What a cookie cannot do, said by a test: a log-out removes this browser's cookie, but
/// a copy taken before it still opens until its sealed expiry (a server store deletes the
/// session instead).
pub async fn a_log_out_removes_the_cookie_but_cannot_recall_a_copy<H: Harness>(
    h: &H,
    store: &BoxedStore,
) {
    let app = App::new(store.clone(), SessionConfig::default());
    let mut b = Browser::new(h, &app);
    b.post("/login?uid=13").await;
    let copy = b.cookie.clone();
    let reply = b.post("/logout").await;
    assert!(is_removal(session_cookie(&reply, "session").unwrap()));
    assert_eq!(b.cookie, None);
    assert_eq!(b.get("/read").await.body, "0");
    let mut thief = Browser::new(h, &app);
    thief.cookie = copy;
    assert_eq!(
        thief.get("/read").await.body,
        "13",
        "a copy cannot be recalled"
    );
}

/// Browsers keep at most 4096 bytes of a cookie: an insert past the cookie store's budget
/// fails at once, and nothing is sent; the session stays as it was.
pub async fn a_session_too_large_for_a_cookie_is_refused<H: Harness>(h: &H, store: &BoxedStore) {
    let app = App::new(store.clone(), SessionConfig::default());
    let mut b = Browser::new(h, &app);
    b.post("/login?uid=14").await;
    let before = b.cookie.clone();
    let long = "k".repeat(1500);
    let reply = b.post(&format!("/set/a{long}")).await;
    assert_eq!(reply.status, 200, "1.5 KB fits");
    let cookie = session_cookie(&reply, "session").unwrap();
    assert!(cookie.len() < 4096, "{}", cookie.len());
    let fitted = b.cookie.clone();
    assert_ne!(fitted, before);
    let reply = b.post(&format!("/set/b{long}")).await;
    assert_eq!(reply.status, 500, "3 KB does not: {reply:?}");
    assert_eq!(session_cookie(&reply, "session"), None, "nothing sent");
    assert_eq!(b.cookie, fitted);
    assert_eq!(b.get("/read").await.body, "14");
    assert_eq!(b.get("/count-keys").await.body, "3");

    // Many small keys stay under the insert budget, yet their cookie grows past 4096
    // bytes: the end of the request refuses it, and the browser keeps its last cookie.
    let mut b = Browser::new(h, &app);
    let mut refused = None;
    for n in 0..400 {
        let before = b.cookie.clone();
        let reply = b.post(&format!("/set/key{n:03}")).await;
        if reply.status == 500 {
            assert_eq!(session_cookie(&reply, "session"), None, "nothing sent");
            assert_eq!(b.cookie, before);
            refused = Some(n);
            break;
        }
        assert_eq!(reply.status, 200, "{reply:?}");
        let cookie = session_cookie(&reply, "session").unwrap();
        assert!(
            cookie.split(';').next().unwrap().len() <= 4096,
            "{}",
            cookie.len()
        );
    }
    let refused = refused.expect("the cookie outgrew 4096 bytes");
    assert!(
        refused * 10 < 2800,
        "refused by the cookie's size, not the budget: {refused}"
    );
    assert_eq!(b.get("/count-keys").await.body, refused.to_string());
}

/// Listing a user's sessions and revoking them need a server: on the cookie store they
/// fail with a 500 (Error::Unsupported, logged), and the session itself is unharmed.
pub async fn what_needs_a_server_is_refused_clearly<H: Harness>(h: &H, store: &BoxedStore) {
    let app = App::new(store.clone(), SessionConfig::default());
    let mut b = Browser::new(h, &app);
    assert_eq!(b.post("/bind?uid=15").await.status, 200);
    assert_eq!(b.get("/user-sessions").await.status, 500);
    assert_eq!(b.post("/logout-all").await.status, 500);
    let manager = app.manager();
    let refused = manager.user_sessions("15").await.unwrap_err();
    assert!(matches!(refused, Error::Unsupported(_)), "{refused:?}");
    assert!(refused.to_string().contains("cookie"), "{refused}");
    assert_eq!(b.get("/get/_user_id").await.body, "\"15\"");
}

pub async fn login_sets_a_cookie_and_reads_it_back<H: Harness>(h: &H, store: &BoxedStore) {
    let app = App::new(store.clone(), SessionConfig::default());
    let mut b = Browser::new(h, &app);
    assert_eq!(b.get("/read").await.body, "0");
    let reply = b.post("/login?uid=42").await;
    assert_eq!(reply.status, 200);
    assert!(session_cookie(&reply, "session").is_some());
    assert_eq!(b.get("/read").await.body, "42");
    assert_eq!(b.post("/write").await.body, "1");
    assert_eq!(b.post("/write").await.body, "2");
    assert_eq!(b.get("/count-keys").await.body, "2");
}

pub async fn a_handler_that_never_touches_the_session_costs_nothing<H: Harness>(
    h: &H,
    store: &BoxedStore,
) {
    let app = App::new(store.clone(), SessionConfig::default());
    let mut b = Browser::new(h, &app);
    b.post("/login").await;
    let id = b.id();
    // Even with a cookie whose entry is gone, /none neither loads nor answers with cookies.
    app.store.delete(&id).await.unwrap();
    let reply = b.get("/none").await;
    assert_eq!(reply.status, 200);
    assert!(reply.set_cookie.is_empty(), "{reply:?}");
    assert!(reply.vary.is_empty(), "{reply:?}");
}

pub async fn reading_an_empty_session_stores_nothing<H: Harness>(h: &H, store: &BoxedStore) {
    let app = App::new(store.clone(), SessionConfig::default());
    let mut b = Browser::new(h, &app);
    let reply = b.get("/read").await;
    assert!(reply.set_cookie.is_empty());
    let reply = b.post("/remove/nothing").await;
    assert!(reply.set_cookie.is_empty());
    assert!(b.cookie.is_none());
}

pub async fn every_cookie_option_is_applied<H: Harness>(h: &H, store: &BoxedStore) {
    let config = SessionConfig::default()
        .with_cookie_name("sid")
        .with_cookie_domain("example.test")
        .with_cookie_path("/app")
        .with_http_only(false)
        .with_secure(true)
        .with_same_site(Some(SameSite::None));
    let app = App::new(store.clone(), config);
    let mut b = Browser::new(h, &app);
    let reply = b.post("/login").await;
    let cookie = session_cookie(&reply, "sid").expect("cookie named sid");
    assert!(cookie.contains("; Path=/app"), "{cookie}");
    assert!(cookie.contains("; Domain=example.test"), "{cookie}");
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("; SameSite=None"), "{cookie}");
    assert!(!cookie.contains("HttpOnly"), "{cookie}");
    assert_eq!(b.get("/read").await.body, "1");
    for same_site in [SameSite::Lax, SameSite::Strict] {
        let app = App::new(
            store.clone(),
            SessionConfig::default().with_same_site(Some(same_site)),
        );
        let reply = Browser::new(h, &app).post("/login").await;
        let cookie = session_cookie(&reply, "session").unwrap();
        assert!(
            cookie.ends_with(&format!("; SameSite={}", same_site.as_str())),
            "{cookie}"
        );
    }
}

pub async fn defaults_are_http_only_root_path_and_not_secure<H: Harness>(
    h: &H,
    store: &BoxedStore,
) {
    let app = App::new(store.clone(), SessionConfig::default());
    let reply = Browser::new(h, &app).post("/login").await;
    let cookie = session_cookie(&reply, "session").unwrap();
    assert!(cookie.contains("; Path=/"), "{cookie}");
    assert!(cookie.contains("; HttpOnly"), "{cookie}");
    assert!(
        !cookie.contains("Secure") && !cookie.contains("Domain") && !cookie.contains("SameSite")
    );
    let value = cookie
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("session=")
        .unwrap();
    assert_eq!(value.len(), 43, "an unsigned id is 43 characters");
}

pub async fn permanent_sessions_carry_an_expiry_and_browser_sessions_do_not<H: Harness>(
    h: &H,
    store: &BoxedStore,
) {
    let lifetime = Duration::from_secs(3600);
    let app = App::new(
        store.clone(),
        SessionConfig::default().with_lifetime(lifetime),
    );
    let reply = Browser::new(h, &app).post("/login").await;
    let cookie = session_cookie(&reply, "session").unwrap();
    assert!(cookie.contains("; Max-Age=3600"), "{cookie}");
    assert!(cookie.contains("; Expires="), "{cookie}");

    let app = App::new(
        store.clone(),
        SessionConfig::default().with_permanent(false),
    );
    let mut b = Browser::new(h, &app);
    let reply = b.post("/login").await;
    let cookie = session_cookie(&reply, "session").unwrap();
    assert!(
        !cookie.contains("Expires") && !cookie.contains("Max-Age"),
        "{cookie}"
    );
    // The entry still expires server-side, PERMANENT_SESSION_LIFETIME after its save.
    let record = app.store.load(&b.id(), None).await.unwrap().unwrap();
    assert!(record.expires_at > SystemTime::now() + Duration::from_secs(30 * 86400));
}

pub async fn per_session_permanent_flag_overrides_the_default<H: Harness>(
    h: &H,
    store: &BoxedStore,
) {
    let app = App::new(store.clone(), SessionConfig::default());
    let mut b = Browser::new(h, &app);
    b.post("/login").await;
    let reply = b.post("/permanent/false").await;
    let cookie = session_cookie(&reply, "session").expect("the flag change re-sends the cookie");
    assert!(!cookie.contains("Expires"), "{cookie}");
    // Kept across requests: a later change leaves the browser-session cookie as it is
    // (it carries no expiry to move), and the flag stays stored.
    let reply = b.post("/write").await;
    assert_eq!(session_cookie(&reply, "session"), None, "{reply:?}");
    let stored = app.store.load(&b.id(), None).await.unwrap().unwrap();
    assert_eq!(stored.permanent, Some(false));
    let reply = b.post("/permanent/true").await;
    assert!(
        session_cookie(&reply, "session")
            .unwrap()
            .contains("Expires")
    );
}

pub async fn refresh_each_request_resends_the_cookie_and_extends_the_entry<H: Harness>(
    h: &H,
    store: &BoxedStore,
) {
    let config = SessionConfig::default().with_lifetime(Duration::from_secs(4));
    let app = App::new(store.clone(), config);
    let mut b = Browser::new(h, &app);
    b.post("/login?uid=5").await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // Due when the stored expiry lags by more than the granularity (40 ms), as it does
        // here (1.5 s) on every store: a due refresh re-sends the cookie.
        let stored = app.store.load(&b.id(), None).await.unwrap().unwrap();
        let due = stored.expires_at
            < SystemTime::now() + Duration::from_secs(4) - Duration::from_millis(40);
        let reply = b.get("/read").await;
        assert_eq!(reply.body, "5", "the entry was extended by the reads");
        match session_cookie(&reply, "session") {
            Some(cookie) => assert!(cookie.contains("Max-Age=4"), "{cookie}"),
            None => assert!(!due, "a due refresh re-sends the cookie: {reply:?}"),
        }
    }
}

pub async fn refresh_leaves_browser_sessions_alone<H: Harness>(h: &H, store: &BoxedStore) {
    // The seed: non-permanent sessions are not affected by SESSION_REFRESH_EACH_REQUEST.
    let config = SessionConfig::default()
        .with_permanent(false)
        .with_lifetime(Duration::from_secs(2));
    let app = App::new(store.clone(), config);
    let mut b = Browser::new(h, &app);
    assert!(session_cookie(&b.post("/login?uid=5").await, "session").is_some());
    let saved = app.store.load(&b.id(), None).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let reply = b.get("/read").await;
    assert_eq!(reply.body, "5");
    assert!(reply.set_cookie.is_empty(), "no cookie re-sent: {reply:?}");
    let read = app.store.load(&b.id(), None).await.unwrap().unwrap();
    assert_eq!(
        read.expires_at, saved.expires_at,
        "the entry was not extended"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        b.get("/read").await.body,
        "0",
        "expired two seconds after its save"
    );
}

pub async fn without_refresh_the_cookie_is_sent_only_on_change<H: Harness>(
    h: &H,
    store: &BoxedStore,
) {
    let config = SessionConfig::default()
        .with_refresh_each_request(false)
        .with_lifetime(Duration::from_secs(2));
    let app = App::new(store.clone(), config);
    let mut b = Browser::new(h, &app);
    b.post("/login?uid=5").await;
    let reply = b.get("/read").await;
    assert_eq!(reply.body, "5");
    assert!(reply.set_cookie.is_empty(), "{reply:?}");
    // A change moves the expiry, and re-sends the cookie with it, once the stored one
    // lags by more than the granularity (20 ms here); until then it keeps both.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(session_cookie(&b.post("/write").await, "session").is_some());
    // Reads do not extend the entry: it expires two seconds after the last change.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(b.get("/read").await.body, "5");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(b.get("/read").await.body, "0");
}

pub async fn inserting_an_equal_value_saves_nothing<H: Harness>(h: &H, store: &BoxedStore) {
    let app = App::new(
        store.clone(),
        SessionConfig::default().with_refresh_each_request(false),
    );
    let mut b = Browser::new(h, &app);
    b.post("/set/flag").await;
    let before = app.store.load(&b.id(), None).await.unwrap().unwrap();
    let reply = b.post("/set/flag").await;
    assert!(
        reply.set_cookie.is_empty(),
        "no change, no cookie: {reply:?}"
    );
    let after = app.store.load(&b.id(), None).await.unwrap().unwrap();
    assert_eq!(before.expires_at, after.expires_at, "nothing was written");
}

pub async fn login_cycles_the_id_and_the_old_id_is_dead<H: Harness>(h: &H, store: &BoxedStore) {
    let app = App::new(store.clone(), SessionConfig::default());
    let mut b = Browser::new(h, &app);
    b.post("/set/before").await;
    let old = b.id();
    let old_cookie = b.cookie.clone();
    b.post("/cycle").await;
    let new = b.id();
    assert_ne!(old, new);
    assert_eq!(
        b.get("/get/before").await.body,
        "true",
        "data survives the new id"
    );
    assert!(app.store.load(&old, None).await.unwrap().is_none());
    let mut attacker = Browser::new(h, &app);
    attacker.cookie = old_cookie;
    assert_eq!(attacker.get("/get/before").await.body, "null");
}

pub async fn logout_deletes_the_entry_and_removes_the_cookie<H: Harness>(
    h: &H,
    store: &BoxedStore,
) {
    let app = App::new(store.clone(), SessionConfig::default());
    let mut b = Browser::new(h, &app);
    b.post("/login?uid=9").await;
    let id = b.id();
    let reply = b.post("/logout").await;
    assert!(is_removal(session_cookie(&reply, "session").unwrap()));
    assert!(b.cookie.is_none());
    assert!(app.store.load(&id, None).await.unwrap().is_none());
    assert_eq!(b.get("/read").await.body, "0");
}

pub async fn logout_then_set_starts_a_new_session<H: Harness>(h: &H, store: &BoxedStore) {
    let app = App::new(store.clone(), SessionConfig::default());
    let mut b = Browser::new(h, &app);
    b.post("/login?uid=9").await;
    let old = b.id();
    b.post("/logout-then-set").await;
    assert_ne!(b.id(), old);
    assert!(app.store.load(&old, None).await.unwrap().is_none());
    assert_eq!(b.get("/read").await.body, "0");
    assert_eq!(b.get("/count-keys").await.body, "1");
}

pub async fn a_session_emptied_by_the_handler_is_deleted<H: Harness>(h: &H, store: &BoxedStore) {
    let app = App::new(store.clone(), SessionConfig::default());
    let mut b = Browser::new(h, &app);
    b.post("/set/only").await;
    let id = b.id();
    let reply = b.post("/remove/only").await;
    assert!(is_removal(session_cookie(&reply, "session").unwrap()));
    assert!(app.store.load(&id, None).await.unwrap().is_none());
    b.post("/login").await;
    let id = b.id();
    let reply = b.post("/clear").await;
    assert!(is_removal(session_cookie(&reply, "session").unwrap()));
    assert!(app.store.load(&id, None).await.unwrap().is_none());
}

pub async fn nothing_is_saved_when_the_handler_answers_5xx<H: Harness>(h: &H, store: &BoxedStore) {
    let app = App::new(store.clone(), SessionConfig::default());
    let mut b = Browser::new(h, &app);
    let reply = b.post("/fail").await;
    assert_eq!(reply.status, 500);
    assert!(reply.set_cookie.is_empty());
    b.post("/login?uid=3").await;
    let reply = b.post("/fail").await;
    assert_eq!(reply.status, 500);
    assert_eq!(b.get("/get/failed").await.body, "null");
}

pub async fn malformed_cookies_give_a_fresh_session<H: Harness>(h: &H, store: &BoxedStore) {
    let app = App::new(store.clone(), SessionConfig::default());
    for junk in [
        "x",
        "",
        "../../etc/passwd",
        "a;b",
        &"A".repeat(4096),
        "é",
        &format!("{}=", "A".repeat(42)),
    ] {
        let mut b = Browser::new(h, &app);
        b.cookie = Some(junk.to_owned());
        let reply = b.get("/read").await;
        assert_eq!(reply.status, 200, "{junk:?}");
        assert_eq!(reply.body, "0");
        b.post("/set/k").await;
        let id = b.cookie_id();
        assert_ne!(id.to_string(), junk);
    }
}

pub async fn unknown_ids_are_never_adopted<H: Harness>(h: &H, store: &BoxedStore) {
    let app = App::new(store.clone(), SessionConfig::default());
    let chosen = SessionId::generate();
    let mut b = Browser::new(h, &app);
    b.cookie = Some(chosen.to_string());
    let reply = b.get("/read").await;
    assert_eq!(reply.body, "0");
    // Left alone: a concurrent request may be replacing it with a live one.
    assert!(reply.set_cookie.is_empty(), "{reply:?}");
    b.post("/set/k").await;
    assert_ne!(b.cookie_id(), chosen, "a client-chosen id is never adopted");
    assert!(app.store.load(&chosen, None).await.unwrap().is_none());
    assert!(
        app.store
            .load(&chosen.hashed(), None)
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn forged_signatures_are_rejected<H: Harness>(h: &H, store: &BoxedStore) {
    // A short lifetime, so that a read soon falls due for a refresh that re-sends the
    // cookie (granularity: 1% of it, 100 ms).
    let config = signed_config().with_lifetime(Duration::from_secs(10));
    let app = App::new(store.clone(), config);
    let mut b = Browser::new(h, &app);
    b.post("/login?uid=8").await;
    let good = b.cookie.clone().unwrap();
    assert_eq!(good.len(), 43 + 1 + 43);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let reply = b.get("/read").await;
    assert_eq!(reply.body, "8");
    let resent = session_cookie(&reply, "session").expect("a refresh re-sends the cookie");
    assert!(
        resent.starts_with(&format!("session={good};")),
        "the same signed value: {resent}"
    );
    let id = b.cookie_id();
    let forgeries = [
        id.to_string(),
        format!("{id}.{}", "A".repeat(43)),
        format!(
            "{}{}",
            &good[..good.len() - 1],
            if good.ends_with('A') { "B" } else { "A" }
        ),
        format!("{}.{}", SessionId::generate(), &good[44..]),
    ];
    for forged in forgeries {
        let mut eve = Browser::new(h, &app);
        eve.cookie = Some(forged.clone());
        assert_eq!(eve.get("/read").await.body, "0", "{forged}");
        // A write from the forger starts a session of its own under a new id.
        eve.post("/set/k").await;
        assert_ne!(eve.cookie_id(), id, "{forged}");
        assert!(eve.cookie.as_deref().is_some_and(|c| c != forged));
    }
    assert_eq!(
        b.get("/read").await.body,
        "8",
        "the real session is untouched"
    );
    assert_eq!(b.get("/count-keys").await.body, "2");
    // A cookie signed by another application's key is no better.
    let other = App::new(
        app.store.clone(),
        signed_config().with_secret_key("another key, unknown here"),
    );
    let mut eve = Browser::new(h, &other);
    eve.cookie = Some(good);
    assert_eq!(eve.get("/read").await.body, "0");
}

pub async fn fallback_keys_verify_and_the_cookie_is_resigned<H: Harness>(
    h: &H,
    store: &BoxedStore,
) {
    let old = App::new(
        store.clone(),
        signed_config()
            .with_secret_key("the old key")
            .with_refresh_each_request(false),
    );
    let mut b = Browser::new(h, &old);
    b.post("/login?uid=77").await;
    let old_cookie = b.cookie.clone().unwrap();
    let rotated = App::new(
        store.clone(),
        signed_config()
            .with_secret_key("the new key")
            .with_secret_key_fallbacks(["the old key"])
            .with_refresh_each_request(false),
    );
    let mut b = Browser::new(h, &rotated);
    b.cookie = Some(old_cookie.clone());
    let reply = b.get("/read").await;
    assert_eq!(reply.body, "77");
    let resigned = session_cookie(&reply, "session").expect("re-signed on this response");
    assert!(!resigned.contains(&old_cookie));
    assert_eq!(
        b.cookie_id().to_string(),
        old_cookie[..43],
        "same id, new signature"
    );
    // The new cookie verifies with the new key alone.
    let new_only = App::new(
        store.clone(),
        signed_config().with_secret_key("the new key"),
    );
    let mut c = Browser::new(h, &new_only);
    c.cookie = b.cookie.clone();
    assert_eq!(c.get("/read").await.body, "77");
    let reply = c.get("/read").await;
    assert!(reply.set_cookie.iter().all(|s| !is_removal(s)));
}

pub async fn expired_sessions_are_not_loaded<H: Harness>(h: &H, store: &BoxedStore) {
    let config = SessionConfig::default()
        .with_lifetime(Duration::from_secs(1))
        .with_refresh_each_request(false);
    let app = App::new(store.clone(), config);
    let mut b = Browser::new(h, &app);
    b.post("/login?uid=4").await;
    let id = b.id();
    assert_eq!(b.get("/read").await.body, "4");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(b.get("/read").await.body, "0");
    b.post("/set/k").await;
    assert_ne!(b.id(), id, "an expired id is not reused");
}

pub async fn vary_cookie_is_set_whenever_the_session_was_used<H: Harness>(
    h: &H,
    store: &BoxedStore,
) {
    let app = App::new(store.clone(), SessionConfig::default());
    let mut b = Browser::new(h, &app);
    assert_eq!(b.get("/read").await.vary, ["Cookie"]);
    assert!(b.get("/none").await.vary.is_empty());
    b.post("/login").await;
    assert_eq!(b.get("/read").await.vary, ["Cookie"]);
    assert_eq!(b.post("/fail").await.vary, ["Cookie"]);
}

/// A store whose every operation fails, as a store that is down does.
#[derive(Debug, Clone)]
pub struct DownStore;

fn down() -> satchel::StoreError {
    satchel::StoreError::backend(std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        "connection refused",
    ))
}

impl SessionStore for DownStore {
    async fn load(
        &self,
        _: &SessionId,
        _: Option<SystemTime>,
    ) -> Result<Option<satchel::Record>, satchel::StoreError> {
        Err(down())
    }
    async fn save(
        &self,
        _: &SessionId,
        _: &satchel::Changes,
        _: SystemTime,
    ) -> Result<satchel::store::Saved, satchel::StoreError> {
        Err(down())
    }
    async fn update(
        &self,
        _: &SessionId,
        _: &str,
        _: &satchel::record::KeyUpdate,
    ) -> Result<satchel::record::Updated, satchel::StoreError> {
        Err(down())
    }
    async fn delete(&self, _: &SessionId) -> Result<(), satchel::StoreError> {
        Err(down())
    }
}

pub async fn a_failing_store_gives_an_empty_500<H: Harness>(h: &H, store: &BoxedStore) {
    let healthy = App::new(store.clone(), SessionConfig::default());
    let mut b = Browser::new(h, &healthy);
    b.post("/login").await;
    let cookie = b.cookie.clone();
    let app = App::new(DownStore, SessionConfig::default());
    for (method, path) in [
        ("GET", "/read"),
        ("POST", "/write"),
        ("POST", "/login"),
        ("POST", "/logout"),
        ("POST", "/set/k"),
    ] {
        let mut b = Browser::new(h, &app);
        b.cookie = cookie.clone();
        let reply = b.send(method, path).await;
        assert_eq!(reply.status, 500, "{method} {path}");
        assert_eq!(reply.body, "", "{method} {path}: the body says nothing");
        assert_eq!(
            reply.vary,
            ["Cookie"],
            "{method} {path}: it depends on the cookie"
        );
        assert!(
            reply.set_cookie.is_empty(),
            "{method} {path}: the cookie is kept"
        );
    }
    // /none never reaches the store, so it still works.
    let mut b = Browser::new(h, &app);
    b.cookie = cookie;
    assert_eq!(b.get("/none").await.status, 200);
}

/// A filesystem store whose directory can be swapped for a plain file, which makes every
/// read and write of it fail (`ENOTDIR`), and swapped back.
#[cfg(feature = "filesystem")]
pub struct BreakableDir {
    _root: tempfile::TempDir,
    dir: std::path::PathBuf,
    aside: std::path::PathBuf,
}

#[cfg(feature = "filesystem")]
impl BreakableDir {
    pub fn new() -> (Self, satchel::FilesystemStore) {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("sessions");
        let aside = root.path().join("aside");
        let store = satchel::FilesystemStore::builder(&dir).open().unwrap();
        let this = Self {
            _root: root,
            dir,
            aside,
        };
        (this, store)
    }

    pub fn break_it(&self) {
        std::fs::rename(&self.dir, &self.aside).unwrap();
        std::fs::write(&self.dir, b"not a directory").unwrap();
    }

    pub fn mend(&self) {
        std::fs::remove_file(&self.dir).unwrap();
        std::fs::rename(&self.aside, &self.dir).unwrap();
    }
}

/// SESSION_STORE_FAILURE decides how a request is answered while the store fails, the
/// breaker answers at once once open (a store that is mended meanwhile is not asked until
/// the cool-down ends), and `anonymous` never overwrites the stored session or the cookie.
#[cfg(feature = "filesystem")]
pub async fn the_failure_policy_decides_the_answer<H: Harness>(h: &H) {
    use satchel::{BreakerState, FailurePolicy};

    let cooldown = Duration::from_millis(300);
    for policy in [
        FailurePolicy::Error,
        FailurePolicy::Unavailable,
        FailurePolicy::Anonymous,
    ] {
        let (dir, store) = BreakableDir::new();
        let config = SessionConfig::default()
            .with_store_failure(policy)
            .with_breaker_failures(2)
            .with_breaker_cooldown(cooldown);
        let app = App::new(store, config);
        let mut b = Browser::new(h, &app);
        b.post("/login?uid=7").await;
        assert_eq!(b.post("/write").await.body, "1");
        let cookie = b.cookie.clone();

        dir.break_it();
        for (method, path) in [
            ("GET", "/read"),
            ("POST", "/write"),
            ("POST", "/login?uid=9"),
        ] {
            let reply = b.send(method, path).await;
            let what = format!("{policy} {method} {path}");
            assert_eq!(reply.vary, ["Cookie"], "{what}: it depends on the cookie");
            assert!(
                reply.set_cookie.is_empty(),
                "{what}: the cookie is left alone"
            );
            match policy {
                FailurePolicy::Error => {
                    assert_eq!((reply.status, reply.body.as_str()), (500, ""), "{what}");
                    assert_eq!(reply.retry_after, None, "{what}");
                }
                FailurePolicy::Unavailable => {
                    assert_eq!((reply.status, reply.body.as_str()), (503, ""), "{what}");
                    let seconds: u64 = reply.retry_after.as_deref().unwrap().parse().unwrap();
                    assert_eq!(seconds, 1, "{what}: the cool-down, rounded up");
                }
                _ => {
                    // The handler answers as it would a visitor without a session.
                    assert_eq!(reply.status, 200, "{what}");
                    let expected = if path == "/read" { "0" } else { "1" };
                    if path != "/login?uid=9" {
                        assert_eq!(reply.body, expected, "{what}");
                    }
                }
            }
        }
        assert_eq!(b.cookie, cookie, "{policy}: the browser keeps its cookie");

        // Open after two failures: mended now, the store is still not asked.
        dir.mend();
        let reply = b.get("/read").await;
        let expected = match policy {
            FailurePolicy::Error => (500, ""),
            FailurePolicy::Unavailable => (503, ""),
            _ => (200, "0"),
        };
        assert_eq!(
            (reply.status, reply.body.as_str()),
            expected,
            "{policy}: breaker open"
        );

        // After the cool-down one request tries the store, and it answers: closed again,
        // with the session as it was before the outage.
        tokio::time::sleep(cooldown + Duration::from_millis(50)).await;
        let reply = b.get("/read").await;
        assert_eq!((reply.status, reply.body.as_str()), (200, "7"), "{policy}");
        assert_eq!(
            b.post("/write").await.body,
            "2",
            "{policy}: nothing was overwritten"
        );
        assert_eq!(app.manager().breaker_state(), Some(BreakerState::Closed));
    }
}

/// A networked store that stops answering, on a server of the test's own: the first
/// requests wait for the store's `timeout` and answer 503 (SESSION_STORE_FAILURE =
/// unavailable) with `Retry-After` and `Vary: Cookie`; then the breaker is open and
/// answers at once. Meanwhile an app under `anonymous` serves the handler's answer, drops
/// its write and leaves the cookie. Once the server is back (`start`) and the cool-down
/// over, one request closes the breaker, and the session is as it was before the outage.
#[cfg(feature = "axum")]
pub async fn the_breaker_guards_a_store_that_stops_answering(
    store: BoxedStore,
    timeout: Duration,
    stop: impl FnOnce(),
    start: impl FnOnce(),
) {
    use satchel::{BreakerState, FailurePolicy};
    use std::time::Instant;

    let h = &axum_app::Axum;
    let cooldown = Duration::from_millis(500);
    let config = SessionConfig::default()
        .with_breaker_failures(2)
        .with_breaker_cooldown(cooldown);
    let app = App::new(
        store.clone(),
        config
            .clone()
            .with_store_failure(FailurePolicy::Unavailable),
    );
    let anonymous = App::new(
        store.clone(),
        config.with_store_failure(FailurePolicy::Anonymous),
    );
    let mut b = Browser::new(h, &app);
    b.post("/login?uid=42").await;
    assert_eq!(b.post("/write").await.body, "1");
    let cookie = b.header();
    let id = b.id();

    stop();
    let unavailable = |reply: &Reply, what: &str| {
        assert_eq!((reply.status, reply.body.as_str()), (503, ""), "{what}");
        assert_eq!(reply.vary, ["Cookie"], "{what}");
        assert!(reply.set_cookie.is_empty(), "{what}: the cookie stays");
        let seconds: u64 = reply.retry_after.as_deref().unwrap().parse().unwrap();
        assert_eq!(seconds, 1, "{what}: the rest of the cool-down, rounded up");
    };
    for (method, path) in [("GET", "/read"), ("POST", "/write")] {
        let started = Instant::now();
        let reply = h.request(&app, method, path, Some(&cookie)).await;
        let took = started.elapsed();
        unavailable(&reply, path);
        eprintln!("{path} while the store is stopped: 503 after {took:?}");
        assert!(took < timeout * 2 + Duration::from_secs(1), "{took:?}");
    }
    assert_eq!(app.manager().breaker_state(), Some(BreakerState::Open));
    let started = Instant::now();
    for (method, path) in [
        ("GET", "/read"),
        ("POST", "/write"),
        ("POST", "/login?uid=43"),
    ] {
        let reply = h.request(&app, method, path, Some(&cookie)).await;
        unavailable(&reply, path);
    }
    let took = started.elapsed();
    eprintln!("three requests through the open breaker: {took:?}");
    assert!(
        took < timeout / 4,
        "the open breaker answers at once: {took:?}"
    );

    // Anonymous: the handler answers for an empty session; its write goes nowhere.
    let reply = h.request(&anonymous, "POST", "/write", Some(&cookie)).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "1"), "anonymous");
    assert_eq!(reply.vary, ["Cookie"]);
    assert!(reply.set_cookie.is_empty(), "anonymous leaves the cookie");

    start();
    let started = Instant::now();
    while let Err(error) = store.load(&id, None).await {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the store did not come back: {error}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(cooldown).await;
    let reply = b.get("/read").await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "42"));
    assert_eq!(app.manager().breaker_state(), Some(BreakerState::Closed));
    assert_eq!(b.post("/write").await.body, "2", "nothing was overwritten");
    let reply = h.request(&anonymous, "GET", "/read", Some(&cookie)).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "42"));
}

/// A session stored under its raw id (SESSION_HASH_IDS off) is found again once hashing
/// is on with SESSION_HASH_IDS_MIGRATE, and moves to its hashed key with its user's
/// index; without the migration it is not found.
pub async fn raw_entries_move_to_hashed_keys_when_migrating<H: Harness>(h: &H, store: &BoxedStore) {
    // Signed cookies: the migration needs them (a client cannot name a stored key).
    let raw_app = App::new(store.clone(), signed_config().with_hash_ids(false));
    let mut b = Browser::new(h, &raw_app);
    // A user of its own: stores shared by several tests keep one index per user.
    let uid = fresh_uid();
    b.post(&format!("/login?uid={uid}")).await;
    b.post(&format!("/bind?uid={uid}")).await;
    assert_eq!(b.post("/write").await.body, "1");
    let raw = b.cookie_id();
    assert_eq!(b.id(), raw, "stored under the raw id");
    assert!(store.load(&raw, None).await.unwrap().is_some());

    let plain = App::new(store.clone(), signed_config());
    let reply = h.request(&plain, "GET", "/read", Some(&b.header())).await;
    assert_eq!(
        reply.body, "0",
        "not looked up under its raw id without the migration"
    );

    let migrating = App::new(store.clone(), signed_config().with_hash_ids_migrate(true));
    let mut m = Browser::new(h, &migrating);
    m.cookie = b.cookie.clone();
    assert_eq!(m.get("/read").await.body, uid.to_string());
    assert!(store.load(&raw, None).await.unwrap().is_none(), "moved");
    let moved = store.load(&raw.hashed(), None).await.unwrap().unwrap();
    assert_eq!(moved.data["n"], 1);
    assert_eq!(m.post("/write").await.body, "2");
    let sessions = migrating
        .manager()
        .user_sessions(&uid.to_string())
        .await
        .unwrap();
    let ids: Vec<SessionId> = sessions.iter().map(|info| *info.id()).collect();
    assert_eq!(ids, [raw.hashed()], "the user's index follows");
    // Without the migration, the moved session is found as any other.
    let reply = h.request(&plain, "GET", "/read", Some(&b.header())).await;
    assert_eq!(reply.body, uid.to_string());
}

/// After a log-in bound to a user and a write, the raw backend (as `dump` reads it: every
/// key and value the store wrote, as text) holds the session under the hash of its id
/// and nowhere the id itself. Returns the dump.
#[cfg(feature = "axum")]
pub async fn no_session_id_at_rest<Fut: Future<Output = String>>(
    store: BoxedStore,
    dump: impl Fn() -> Fut,
) -> String {
    let app = App::new(store, SessionConfig::default());
    let mut b = Browser::new(&axum_app::Axum, &app);
    b.post("/login?uid=11").await;
    b.post("/bind?uid=11").await;
    assert_eq!(b.post("/write").await.body, "1");
    let (raw, key) = (b.cookie_id().to_string(), b.id().to_string());
    let text = dump().await;
    assert!(
        text.contains(&key),
        "the dump shows the session under its hashed key {key}:\n{text}"
    );
    assert!(
        !text.contains(&raw),
        "the cookie's id {raw} is in the store:\n{text}"
    );
    let fingerprint = b.cookie_id().fingerprint();
    let shown = text.replace(&key, &format!("<hash of {fingerprint}…>"));
    eprintln!("cookie id {fingerprint}… (fingerprint); the raw backend after a log-in:\n{shown}");
    text
}

/// [`values_sealed_at_rest`] when `sealed`, else [`no_session_id_at_rest`].
#[cfg(feature = "axum")]
pub async fn at_rest<Fut: Future<Output = String>>(
    store: BoxedStore,
    sealed: bool,
    dump: impl Fn() -> Fut,
) -> String {
    #[cfg(feature = "sealed")]
    if sealed {
        return values_sealed_at_rest(store, dump).await;
    }
    assert!(!sealed, "sealing needs the `sealed` feature");
    no_session_id_at_rest(store, dump).await
}

/// With SESSION_DATA_KEY set, after a log-in, a user binding, a write and an
/// increment, the raw backend (as `dump` reads it) holds no session value in the clear,
/// only sealed ones, and Satchel reads them back; after a rotation the old key, kept as
/// a fallback, still opens them, and without it the session is not served. Returns the
/// dump.
#[cfg(all(feature = "axum", feature = "sealed"))]
pub async fn values_sealed_at_rest<Fut: Future<Output = String>>(
    store: BoxedStore,
    dump: impl Fn() -> Fut,
) -> String {
    const OLD: &str = "the data key before the rotation: long and random enough";
    const NEW: &str = "the data key after the rotation: also long and random enough";
    // A user id of eleven digits, of this run alone: it shows in the dump if anything
    // is stored in the clear.
    let uid = 10_000_000_000 + fresh_uid();
    let sealed = |key: &str, fallbacks: &[&str]| {
        SessionConfig::default()
            .with_data_key(key)
            .with_data_key_fallbacks(fallbacks.iter().copied())
    };
    let before = App::new(store.clone(), sealed(OLD, &[]));
    let mut b = Browser::new(&axum_app::Axum, &before);
    b.post(&format!("/login?uid={uid}")).await;
    b.post(&format!("/bind?uid={uid}")).await;
    assert_eq!(b.post("/write").await.body, "1");
    assert_eq!(b.post("/incr").await.body, "2");
    // A control: a session of another user, written in the clear, shows in the dump.
    let control = 10_000_000_000 + fresh_uid();
    let clear = App::new(store.clone(), SessionConfig::default());
    let mut c = Browser::new(&axum_app::Axum, &clear);
    c.post(&format!("/bind?uid={control}")).await;
    let text = dump().await;
    assert!(
        text.contains(&control.to_string()),
        "the dump shows a value stored in the clear:\n{text}"
    );
    assert!(
        !text.contains(&uid.to_string()),
        "a session value is in the store in the clear:\n{text}"
    );
    assert!(
        text.contains("sealed:v1:"),
        "the dump shows sealed values:\n{text}"
    );
    assert_eq!(
        b.get("/read").await.body,
        uid.to_string(),
        "read through Satchel"
    );
    assert_eq!(
        b.get("/user-sessions").await.body,
        "1",
        "the user index works"
    );

    // The new key seals, the old one (a fallback) still opens.
    let rotated = App::new(store.clone(), sealed(NEW, &[OLD]));
    let mut r = Browser::new(&axum_app::Axum, &rotated);
    r.cookie.clone_from(&b.cookie);
    assert_eq!(r.get("/read").await.body, uid.to_string());
    assert_eq!(r.post("/incr").await.body, "3");

    // Without the fallback, the value still sealed with the old key does not open: the
    // session is not served, the request gets a fresh one.
    let dropped = App::new(store.clone(), sealed(NEW, &[]));
    let mut d = Browser::new(&axum_app::Axum, &dropped);
    d.cookie.clone_from(&r.cookie);
    assert_eq!(d.get("/read").await.body, "0");
    // The key that sealed it, as a fallback again, still opens the session.
    let mut again = Browser::new(&axum_app::Axum, &rotated);
    again.cookie.clone_from(&r.cookie);
    assert_eq!(again.get("/read").await.body, uid.to_string());
    eprintln!("the raw backend after a log-in with SESSION_DATA_KEY:\n{text}");
    text
}

pub async fn corrupt_entries_give_a_fresh_session<H: Harness>(h: &H, _store: &BoxedStore) {
    /// Holds one entry that cannot be decoded.
    #[derive(Debug, Clone)]
    struct Corrupt(MemoryStore);
    impl SessionStore for Corrupt {
        async fn load(
            &self,
            _: &SessionId,
            _: Option<SystemTime>,
        ) -> Result<Option<satchel::Record>, satchel::StoreError> {
            Err(satchel::StoreError::decode("unexpected end of data"))
        }
        async fn save(
            &self,
            id: &SessionId,
            c: &satchel::Changes,
            at: SystemTime,
        ) -> Result<satchel::store::Saved, satchel::StoreError> {
            self.0.save(id, c, at).await
        }
        async fn update(
            &self,
            id: &SessionId,
            key: &str,
            update: &satchel::record::KeyUpdate,
        ) -> Result<satchel::record::Updated, satchel::StoreError> {
            self.0.update(id, key, update).await
        }
        async fn delete(&self, id: &SessionId) -> Result<(), satchel::StoreError> {
            self.0.delete(id).await
        }
    }
    let app = App::new(Corrupt(MemoryStore::default()), SessionConfig::default());
    let mut b = Browser::new(h, &app);
    let planted = SessionId::generate();
    b.cookie = Some(planted.to_string());
    let reply = b.get("/read").await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "0"));
    b.cookie = Some(planted.to_string());
    assert_eq!(b.post("/set/k").await.status, 200);
    assert_ne!(b.cookie_id(), planted);
}

/// The race of the benchmark: one session, fifty concurrent requests each setting its own
/// key; all fifty must be kept.
pub async fn race<H: Harness>(h: &H, app: &App) -> usize {
    let gate = Probe::new(app.store.clone());
    let app = &App::new(gate.clone(), app.config.clone());
    let mut b = Browser::new(h, app);
    b.post("/login").await;
    let base: usize = b.get("/count-keys").await.body.parse().unwrap();
    let cookie = format!("{}={}", app.config.cookie_name(), b.cookie.clone().unwrap());
    gate.arm(50);
    let requests = (0..50).map(|i| {
        let cookie = cookie.clone();
        async move {
            h.request(app, "POST", &format!("/set/k{i}"), Some(&cookie))
                .await
        }
    });
    let replies = join_all(requests).await;
    gate.disarm();
    assert!(replies.iter().all(|r| r.status == 200));
    let after: usize = b.get("/count-keys").await.body.parse().unwrap();
    after - base
}

/// Polls the futures concurrently (in this task) and collects their outputs.
pub async fn join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    // Scoped: the futures borrow the harness and the app.
    let futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs = Vec::new();
    let mut pending: Vec<_> = futures.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for slot in pending.iter_mut() {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(output) => {
                        outputs.push(output);
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outputs
}

/// Sends `paths` at once with `cookie`, answering in the order of `paths`: every
/// request waits at the gate after its load until all `loads` have loaded, so each
/// works from the same version of the session.
async fn at_once<H: Harness>(
    h: &H,
    app: &App,
    gate: &Probe,
    cookie: &str,
    paths: &[String],
    loads: usize,
) -> Vec<Reply> {
    gate.arm(loads);
    let mut replies = join_all(
        paths
            .iter()
            .enumerate()
            .map(|(i, path)| async move { (i, h.request(app, "POST", path, Some(cookie)).await) }),
    )
    .await;
    gate.disarm();
    // In the order of `paths`, not of completion.
    replies.sort_by_key(|(i, _)| *i);
    replies.into_iter().map(|(_, reply)| reply).collect()
}

/// The value of `cookie` when it sets the session cookie to a live value (not a
/// removal).
fn sets_session(reply: &Reply, name: &str) -> Option<String> {
    let cookie = session_cookie(reply, name).filter(|c| !is_removal(c))?;
    let value = cookie.split(';').next()?.split_once('=')?.1;
    Some(value.to_owned())
}

pub async fn concurrent_increments_are_all_kept<H: Harness>(h: &H, store: &BoxedStore) {
    let gate = Probe::new(store.clone());
    let app = &App::new(gate.clone(), SessionConfig::default());
    let mut b = Browser::new(h, app);
    b.post("/login").await;
    let paths = vec!["/incr".to_owned(); 30];
    let replies = at_once(h, app, &gate, &b.header(), &paths, paths.len()).await;
    let mut sums: Vec<i64> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, 200, "{r:?}");
            r.body.parse().unwrap()
        })
        .collect();
    sums.sort_unstable();
    assert_eq!(
        sums,
        (1..=30).collect::<Vec<_>>(),
        "each answers its own sum"
    );
    assert_eq!(b.get("/get/n").await.body, "30", "no increment lost");
    // A new session's counter lives in its change set until the request ends.
    let mut fresh = Browser::new(h, app);
    assert_eq!(fresh.post("/incr").await.body, "1");
    assert_eq!(fresh.post("/incr").await.body, "2");
}

/// Sixteen requests flash a message while four take them, at once from one version of
/// the session: every message is shown exactly once, by a take or the last one.
pub async fn concurrent_flashes_are_each_shown_once<H: Harness>(h: &H, store: &BoxedStore) {
    let gate = Probe::new(store.clone());
    let app = &App::new(gate.clone(), SessionConfig::default());
    let mut b = Browser::new(h, app);
    b.post("/login").await;
    // Ten messages wait already, so that the takes below race the flashes for them.
    for n in 0..10 {
        b.post(&format!("/flash/p{n}")).await;
    }
    // Fifty requests at once: forty flash a message each, ten take what is there.
    let mut paths: Vec<String> = (0..40).map(|n| format!("/flash/m{n}")).collect();
    paths.extend((0..10).map(|_| "/take-flashes".to_owned()));
    let replies = at_once(h, app, &gate, &b.header(), &paths, paths.len()).await;
    let messages = |body: &str| -> Vec<String> {
        body.split(',')
            .filter(|m| !m.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let mut shown = Vec::new();
    for (path, reply) in paths.iter().zip(&replies) {
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
        if path == "/take-flashes" {
            shown.extend(messages(&reply.body));
        }
    }
    let during = shown.len();
    shown.extend(messages(&b.post("/take-flashes").await.body));
    eprintln!(
        "50 concurrent requests on 10 waiting messages: 40 flashes, {during} messages shown by \
         the 10 concurrent takes, {} by the take after them",
        shown.len() - during
    );
    shown.sort();
    let mut expected: Vec<String> = (0..40).map(|n| format!("m{n}")).collect();
    expected.extend((0..10).map(|n| format!("p{n}")));
    expected.sort();
    assert_eq!(shown, expected, "each message shown once, none lost");
    assert_eq!(b.post("/take-flashes").await.body, "");
    assert_eq!(
        b.get("/read").await.body,
        "1",
        "the rest of the session is kept"
    );
}

pub async fn conditional_sets_never_overwrite_a_concurrent_change<H: Harness>(
    h: &H,
    store: &BoxedStore,
) {
    let gate = Probe::new(store.clone());
    let app = &App::new(gate.clone(), SessionConfig::default());
    let mut b = Browser::new(h, app);
    b.post("/login").await;
    let paths = vec!["/bump/c".to_owned(); 20];
    let replies = at_once(h, app, &gate, &b.header(), &paths, paths.len()).await;
    let mut kept: Vec<i64> = Vec::new();
    for reply in &replies {
        match reply.status {
            200 => kept.push(reply.body.parse().unwrap()),
            409 => {
                assert!(reply.body.is_empty(), "{reply:?}");
                assert!(reply.vary.iter().any(|v| v == "Cookie"), "{reply:?}");
                assert!(reply.set_cookie.is_empty(), "{reply:?}");
            }
            _ => panic!("unexpected answer {reply:?}"),
        }
    }
    // All twenty read the same value; exactly one of them may write on top of it.
    assert_eq!(kept, vec![1], "{replies:?}");
    assert_eq!(b.get("/get/c").await.body, "1");
    // Sequential bumps see each other's values.
    assert_eq!(b.post("/bump/c").await.body, "2");
    assert_eq!(b.get("/get/c").await.body, "2");
}

pub async fn changes_racing_a_login_are_kept_or_refused<H: Harness>(h: &H, store: &BoxedStore) {
    let gate = Probe::new(store.clone());
    let app = &App::new(gate.clone(), SessionConfig::default());
    let name = app.config.cookie_name();
    let mut b = Browser::new(h, app);
    b.post("/login?uid=1").await;
    let old = b.cookie.clone().unwrap();
    let mut paths: Vec<String> = (0..20).map(|i| format!("/set/k{i}")).collect();
    paths.push("/login?uid=2".to_owned());
    let replies = at_once(h, app, &gate, &b.header(), &paths, paths.len()).await;
    let login = replies.last().unwrap();
    assert_eq!(login.status, 200, "{login:?}");
    let new = sets_session(login, name).expect("the log-in sets the new id");
    assert_ne!(new, old);
    b.cookie = Some(new);
    assert_eq!(b.get("/read").await.body, "2");
    for (i, reply) in replies[..20].iter().enumerate() {
        let found = b.get(&format!("/get/k{i}")).await.body;
        match reply.status {
            200 => assert_eq!(found, "true", "acknowledged k{i} must be kept: {reply:?}"),
            409 => assert_eq!(found, "null", "refused k{i} must not be kept: {reply:?}"),
            _ => panic!("unexpected answer {reply:?}"),
        }
        assert_eq!(
            sets_session(reply, name),
            None,
            "no cookie names a dead id: {reply:?}"
        );
    }
    let dead = h
        .request(app, "GET", "/read", Some(&format!("{name}={old}")))
        .await;
    assert_eq!(dead.body, "0", "the old id is dead");
}

pub async fn changes_racing_a_logout_are_refused_and_never_revive_it<H: Harness>(
    h: &H,
    store: &BoxedStore,
) {
    let gate = Probe::new(store.clone());
    let app = &App::new(gate.clone(), SessionConfig::default());
    let name = app.config.cookie_name();
    let mut b = Browser::new(h, app);
    b.post("/login?uid=3").await;
    let old = b.header();
    let dead = b.cookie.clone();
    let mut paths: Vec<String> = (0..20).map(|i| format!("/set/k{i}")).collect();
    paths.push("/logout".to_owned());
    // A logout costs no load.
    let replies = at_once(h, app, &gate, &old, &paths, paths.len() - 1).await;
    let logout = replies.last().unwrap();
    assert!(
        session_cookie(logout, name).is_some_and(is_removal),
        "{logout:?}"
    );
    for reply in &replies[..20] {
        assert!(matches!(reply.status, 200 | 409), "{reply:?}");
        // A request that loaded after the logout starts a session of its own, under a
        // new id; none may hand the browser the dead one back.
        assert_ne!(
            sets_session(reply, name),
            dead,
            "no cookie names a dead id: {reply:?}"
        );
    }
    let after = h.request(app, "GET", "/count-keys", Some(&old)).await;
    assert_eq!(after.body, "0", "the logout holds");
}

pub async fn fifty_concurrent_requests_keep_fifty_keys<H: Harness>(h: &H, store: &BoxedStore) {
    let app = App::new(store.clone(), SessionConfig::default());
    assert_eq!(race(h, &app).await, 50);
}

pub async fn non_ascii_cookies_do_not_hide_the_session_cookie<H: Harness>(
    h: &H,
    store: &BoxedStore,
) {
    let app = App::new(store.clone(), SessionConfig::default());
    let mut b = Browser::new(h, &app);
    b.post("/login?uid=21").await;
    let cookie = format!("pref=José; session={}; other=✓", b.cookie.clone().unwrap());
    let reply = h.request(&app, "GET", "/read", Some(&cookie)).await;
    assert_eq!(reply.body, "21");
}

pub async fn a_stale_cookie_of_the_same_name_does_not_hide_the_live_one<H: Harness>(
    h: &H,
    store: &BoxedStore,
) {
    let app = App::new(store.clone(), SessionConfig::default());
    let mut b = Browser::new(h, &app);
    b.post("/login?uid=22").await;
    let live = b.cookie.clone().unwrap();
    let stale = SessionId::generate();
    let cookie = format!("session={stale}; session={live}");
    let reply = h.request(&app, "GET", "/read", Some(&cookie)).await;
    assert_eq!(reply.body, "22");
    assert!(reply.set_cookie.iter().all(|c| !is_removal(c)), "{reply:?}");
}

pub async fn each_request_costs_at_most_one_load_and_one_save<H: Harness>(
    h: &H,
    store: &BoxedStore,
) {
    let counting = Probe::new(store.clone());
    let app = App::new(counting.clone(), SessionConfig::default());
    let mut b = Browser::new(h, &app);
    b.get("/none").await;
    assert_eq!(
        counting.take(),
        (0, 0),
        "no cookie, no session use: nothing"
    );
    b.post("/login").await;
    assert_eq!(counting.take(), (0, 1), "a new session: one write");
    b.get("/none").await;
    assert_eq!(
        counting.take(),
        (0, 0),
        "a cookie, but the handler ignores the session"
    );
    let reply = b.get("/read").await;
    assert_eq!(
        counting.take(),
        (1, 0),
        "a read of an entry not due for a refresh: one load"
    );
    assert!(
        reply.set_cookie.is_empty(),
        "and no cookie: the browser's already expires with the entry: {reply:?}"
    );
    let written: i64 = b.post("/write").await.body.parse().unwrap();
    assert_eq!(counting.take(), (1, 1), "a write: one load, one save");
    let incremented = (written + 1).to_string();
    assert_eq!(b.post("/incr").await.body, incremented);
    assert_eq!(
        counting.take(),
        (0, 1),
        "an increment first: one update that answers the session, no load"
    );
    assert_eq!(b.get("/get/n").await.body, incremented);
    counting.take();
    b.post("/set/n").await;
    b.post("/set/n").await;
    assert_eq!(counting.take(), (2, 1), "an equal value is no change");
    b.post("/login").await;
    assert_eq!(
        counting.take(),
        (1, 1),
        "log-in on a session: one load, one move"
    );
    b.post("/logout").await;
    assert_eq!(counting.take(), (0, 1), "log-out: one delete, no load");
    b.cookie = Some("not an id".into());
    b.get("/read").await;
    assert_eq!(
        counting.take(),
        (0, 0),
        "a malformed cookie never reaches the store"
    );

    // A refresh that falls due (here after 30 ms of a 2 s lifetime) is the read's one
    // write: a touch, sent when the request ends.
    let config = SessionConfig::default().with_lifetime(Duration::from_secs(2));
    let app = App::new(counting.clone(), config);
    let mut b = Browser::new(h, &app);
    b.post("/login").await;
    counting.take();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let reply = b.get("/read").await;
    assert!(session_cookie(&reply, "session").is_some(), "{reply:?}");
    assert_eq!(
        counting.take(),
        (1, 1),
        "a due refresh: one load, one touch"
    );
    assert_eq!(counting.touches(), 1);
}

/// A store wrapper for the scenarios: counts the engine's store calls (loads, and writes
/// of any kind), and once armed holds every load until `n` loads are waiting, so all the
/// racing requests read the session before any of them saves: the worst case for lost
/// updates.
#[derive(Debug, Clone)]
pub struct Probe {
    inner: BoxedStore,
    loads: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    writes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    touches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    barrier: std::sync::Arc<std::sync::Mutex<Option<std::sync::Arc<tokio::sync::Barrier>>>>,
}

impl Probe {
    pub fn new(inner: BoxedStore) -> Self {
        Self {
            inner,
            loads: Default::default(),
            writes: Default::default(),
            touches: Default::default(),
            barrier: Default::default(),
        }
    }

    /// Loads that carried a touch (counted as writes by `take`), since the last call.
    pub fn touches(&self) -> usize {
        self.touches.swap(0, std::sync::atomic::Ordering::SeqCst)
    }

    /// (loads, writes) since the last call; a load with a touch counts as a write.
    pub fn take(&self) -> (usize, usize) {
        use std::sync::atomic::Ordering::SeqCst;
        (self.loads.swap(0, SeqCst), self.writes.swap(0, SeqCst))
    }

    pub fn arm(&self, n: usize) {
        *self.barrier.lock().unwrap() = Some(std::sync::Arc::new(tokio::sync::Barrier::new(n)));
    }

    pub fn disarm(&self) {
        *self.barrier.lock().unwrap() = None;
    }

    fn write(&self) {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Once armed: every armed request has loaded before any goes on. Bounded: a request
    /// that never arrives must not hang the test.
    async fn loaded(&self) {
        let barrier = self.barrier.lock().unwrap().clone();
        if let Some(barrier) = barrier {
            let _ = tokio::time::timeout(Duration::from_secs(10), barrier.wait()).await;
        }
    }
}

impl SessionStore for Probe {
    async fn load(
        &self,
        id: &SessionId,
        touch: Option<SystemTime>,
    ) -> Result<Option<satchel::Record>, satchel::StoreError> {
        if touch.is_some() {
            // A touch is a write of the expiry alone, sent in the place of a save.
            self.write();
            self.touches
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        } else {
            self.loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        let loaded = self.inner.load(id, touch).await;
        self.loaded().await;
        loaded
    }
    async fn save(
        &self,
        id: &SessionId,
        c: &satchel::Changes,
        at: SystemTime,
    ) -> Result<satchel::store::Saved, satchel::StoreError> {
        self.write();
        self.inner.save(id, c, at).await
    }
    async fn save_seen(
        &self,
        id: &SessionId,
        seen: satchel::store::Seen<'_>,
        c: &satchel::Changes,
        at: SystemTime,
    ) -> Result<satchel::store::Saved, satchel::StoreError> {
        self.write();
        self.inner.save_seen(id, seen, c, at).await
    }
    async fn cycle(
        &self,
        old: &SessionId,
        new: &SessionId,
        c: &satchel::Changes,
        at: SystemTime,
    ) -> Result<satchel::store::Saved, satchel::StoreError> {
        self.write();
        self.inner.cycle(old, new, c, at).await
    }
    async fn update(
        &self,
        id: &SessionId,
        key: &str,
        update: &satchel::record::KeyUpdate,
    ) -> Result<satchel::record::Updated, satchel::StoreError> {
        self.write();
        self.inner.update(id, key, update).await
    }
    /// One call, which loads as it writes: counted as a write, and a load for the barrier.
    async fn update_and_load(
        &self,
        id: &SessionId,
        key: &str,
        update: &satchel::record::KeyUpdate,
    ) -> Result<(satchel::record::Updated, Option<satchel::Record>), satchel::StoreError> {
        self.write();
        let answered = self.inner.update_and_load(id, key, update).await;
        self.loaded().await;
        answered
    }
    async fn delete(&self, id: &SessionId) -> Result<(), satchel::StoreError> {
        self.write();
        self.inner.delete(id).await
    }
    fn capabilities(&self) -> satchel::store::Capabilities {
        self.inner.capabilities()
    }
}

// ---- Sessions by user (the handlers both test apps share) ----

/// `POST /bind?uid=N`: a log-in that binds the session to user `uid`.
pub async fn bind(s: &Session, uid: i64) -> Result<String, Error> {
    s.set_user(uid.to_string()).await?;
    s.cycle_id().await?;
    Ok("ok".to_owned())
}

/// `POST /logout-all` (`others_only` false: this session goes too) and
/// `POST /logout-others`: revokes the sessions of the session's user; answers how many.
pub async fn logout_all(s: &Session, others_only: bool) -> Result<String, Error> {
    let Some(user) = s.user().await? else {
        return Ok("0".to_owned());
    };
    let keep = if others_only { s.id().await? } else { None };
    let revoked = s.manager().revoke_user(&user, keep.as_ref()).await?;
    if !others_only {
        s.destroy();
    }
    Ok(revoked.to_string())
}

/// `GET /user-sessions`: how many live sessions the session's user has.
pub async fn user_sessions(s: &Session) -> Result<String, Error> {
    let Some(user) = s.user().await? else {
        return Ok("0".to_owned());
    };
    Ok(s.manager().user_sessions(&user).await?.len().to_string())
}

/// A user id no other test (or run) uses.
fn fresh_uid() -> i64 {
    let id = SessionId::generate();
    i64::from(u32::from_le_bytes(id.as_bytes()[..4].try_into().unwrap()))
}

/// The fingerprints of the sessions `manager` lists for `uid`.
async fn listed(manager: &SessionManager, uid: i64) -> std::collections::BTreeSet<String> {
    let sessions = manager.user_sessions(&uid.to_string()).await.unwrap();
    sessions.into_iter().map(|info| info.fingerprint).collect()
}

/// Logs a new browser in as `uid`; its session id.
async fn log_in<H: Harness>(h: &H, app: &App, uid: i64) -> SessionId {
    let mut b = Browser::new(h, app);
    assert_eq!(b.post(&format!("/bind?uid={uid}")).await.status, 200);
    b.id()
}

pub async fn fifty_concurrent_logins_of_one_user_are_all_listed<H: Harness>(
    h: &H,
    store: &BoxedStore,
) {
    let app = App::new(store.clone(), SessionConfig::default());
    let uid = fresh_uid();
    let ids = join_all((0..50).map(|_| log_in(h, &app, uid))).await;
    let expected: std::collections::BTreeSet<String> =
        ids.iter().map(SessionId::fingerprint).collect();
    assert_eq!(expected.len(), 50);
    let manager = SessionManager::new(store.clone(), SessionConfig::default()).unwrap();
    assert_eq!(listed(&manager, uid).await, expected);
}

pub async fn revoking_a_user_beats_requests_in_flight<H: Harness>(h: &H, store: &BoxedStore) {
    let app = App::new(store.clone(), SessionConfig::default());
    let uid = fresh_uid();
    let mut browsers = Vec::new();
    for _ in 0..10 {
        let mut b = Browser::new(h, &app);
        b.post(&format!("/bind?uid={uid}")).await;
        browsers.push(b);
    }
    let cookies: Vec<String> = browsers.iter().map(Browser::header).collect();
    let writes = join_all((0..50).map(|i| {
        let cookie = cookies[i % cookies.len()].clone();
        let app = &app;
        async move {
            h.request(app, "POST", &format!("/set/k{i}"), Some(&cookie))
                .await
        }
    }));
    let revoke = h.request(&app, "POST", "/logout-all", Some(&cookies[0]));
    let (_, revoked) = tokio::join!(writes, revoke);
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    // Whatever finished after the revocation: no session of the user loads, and none
    // came back.
    for cookie in &cookies {
        let reply = h.request(&app, "GET", "/get/_user_id", Some(cookie)).await;
        assert_eq!(reply.body, "null", "a revoked session still loads");
    }
    for b in &browsers {
        assert!(store.load(&b.id(), None).await.unwrap().is_none());
    }
    let manager = SessionManager::new(store.clone(), SessionConfig::default()).unwrap();
    assert!(listed(&manager, uid).await.is_empty());
}

pub async fn the_cap_keeps_the_most_recently_used_sessions<H: Harness>(h: &H, store: &BoxedStore) {
    let config = SessionConfig::default().with_max_per_user(Some(5));
    let app = App::new(store.clone(), config.clone());
    let manager = SessionManager::new(store.clone(), config).unwrap();
    let uid = fresh_uid();
    join_all((0..20).map(|_| log_in(h, &app, uid))).await;
    assert_eq!(
        listed(&manager, uid).await.len(),
        5,
        "20 concurrent log-ins, cap 5"
    );
    // Five more log-ins, one after another: they are the five most recently used.
    let mut latest = std::collections::BTreeSet::new();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        latest.insert(log_in(h, &app, uid).await.fingerprint());
    }
    assert_eq!(listed(&manager, uid).await, latest);
}

pub async fn expired_sessions_are_never_listed<H: Harness>(h: &H, store: &BoxedStore) {
    let config = SessionConfig::default()
        .with_lifetime(Duration::from_secs(1))
        .with_refresh_each_request(false);
    let app = App::new(store.clone(), config.clone());
    let manager = SessionManager::new(store.clone(), config).unwrap();
    let uid = fresh_uid();
    log_in(h, &app, uid).await;
    assert_eq!(listed(&manager, uid).await.len(), 1);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert!(listed(&manager, uid).await.is_empty());
}

pub async fn logging_out_everywhere_else_keeps_this_session<H: Harness>(h: &H, store: &BoxedStore) {
    let app = App::new(store.clone(), SessionConfig::default());
    let uid = fresh_uid();
    let mut here = Browser::new(h, &app);
    here.post(&format!("/bind?uid={uid}")).await;
    for _ in 0..3 {
        log_in(h, &app, uid).await;
    }
    assert_eq!(here.get("/user-sessions").await.body, "4");
    assert_eq!(here.post("/logout-others").await.body, "3");
    assert_eq!(here.get("/user-sessions").await.body, "1");
    let id = here.id();
    assert_eq!(here.post("/logout-all").await.body, "1");
    assert!(
        here.cookie.is_none(),
        "this session's cookie is removed too"
    );
    assert!(
        store.load(&id, None).await.unwrap().is_none(),
        "this session's entry is gone"
    );
}

/// A handler that inserts past SESSION_MAX_SIZE gets `Error::TooLarge`: returned as it
/// is, an empty 500 that saves nothing; mapped by the application, its own answer (413).
/// The session stays as it was, and takes what fits.
pub async fn a_session_over_its_budget_is_a_mappable_error<H: Harness>(h: &H) {
    let config = SessionConfig::default().with_max_size(1000);
    let app = App::new(satchel::MemoryStore::default(), config);
    let mut browser = Browser::new(h, &app);
    assert_eq!(browser.send("POST", "/login").await.status, 200);
    let cookie = browser.header();

    let reply = browser.send("POST", "/grow/2000").await;
    assert_eq!(reply.status, 500, "unmapped: an empty 500");
    assert!(reply.body.is_empty());
    assert!(
        reply.set_cookie.is_empty(),
        "nothing saved, the cookie stays"
    );
    let reply = browser.send("POST", "/grow-mapped/2000").await;
    assert_eq!(reply.status, 413, "mapped by the application");
    assert_eq!(browser.header(), cookie);
    assert_eq!(browser.send("GET", "/get/blob").await.body, "null");

    assert_eq!(browser.send("POST", "/grow-mapped/500").await.status, 200);
    assert_eq!(browser.send("GET", "/read").await.body, "1");
    let blob = browser.send("GET", "/get/blob").await.body;
    assert_eq!(blob.len(), 502, "stored whole");
}

/// `POST /lifetime/{seconds}`: the session's own lifetime, `0` for the configured one.
pub async fn set_lifetime(s: &Session, seconds: u64) -> Result<(), Error> {
    let lifetime = (seconds > 0).then(|| Duration::from_secs(seconds));
    s.set_lifetime(lifetime).await
}

/// The `Max-Age` of a `Set-Cookie` value.
fn max_age(cookie: &str) -> u64 {
    cookie
        .split("; ")
        .find_map(|part| part.strip_prefix("Max-Age="))
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or_else(|| panic!("no Max-Age in {cookie}"))
}

/// SESSION_ABSOLUTE_LIFETIME: a session refreshed and changed on every request still ends
/// that long after its creation, with its log-in in between; its cookie and its stored
/// expiry never reach past that end, and the refreshes that move the expiry stop there.
pub async fn the_absolute_lifetime_ends_a_session_however_busy<H: Harness>(
    h: &H,
    store: &BoxedStore,
) {
    let limit = Duration::from_secs(6);
    let lifetime = Duration::from_secs(3);
    let config = SessionConfig::default()
        .with_lifetime(lifetime)
        .with_absolute_lifetime(Some(limit));
    let app = App::new(store.clone(), config);
    let mut b = Browser::new(h, &app);
    let started = SystemTime::now();
    b.post("/set/early").await;
    let reply = b.post("/login?uid=6").await;
    let cookie = session_cookie(&reply, "session").unwrap();
    assert!(max_age(cookie) <= 3, "{cookie}");
    let record = app.store.load(&b.id(), None).await.unwrap().unwrap();
    let created = record
        .created
        .expect("a session under the limit has a creation time");
    assert!(created >= started - Duration::from_millis(5), "{created:?}");
    let end = created + limit;
    // Busy: every read is a due refresh (the granularity is 30 ms), every write a save,
    // each with 1.5 s to spare before the end. Past `end - lifetime` a refresh can only
    // reach the end.
    let pause = Duration::from_millis(500);
    let mut requests = 0;
    while SystemTime::now() + pause + Duration::from_millis(1500) < end {
        tokio::time::sleep(pause).await;
        assert_eq!(b.get("/read").await.body, "6", "alive before the limit");
        b.post("/write").await;
        requests += 1;
        let record = app.store.load(&b.id(), None).await.unwrap().unwrap();
        assert!(record.expires_at <= end, "{record:?}");
        assert_eq!(record.created, Some(created), "kept by every save");
    }
    assert!(requests >= 4, "the session was busy: {requests} rounds");
    let record = app.store.load(&b.id(), None).await.unwrap().unwrap();
    assert!(
        record.expires_at + Duration::from_secs(1) >= end,
        "the refreshes went up to the end, and stopped there: {record:?}"
    );
    // Its own lifetime would keep it 3 s past the last request; the limit ends it first.
    if let Ok(wait) = (end + Duration::from_millis(300)).duration_since(SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
    assert_eq!(b.get("/read").await.body, "0", "gone at the limit");
}

/// A session stored while the absolute limit was long is ended by a lower one at its next
/// load, whatever its stored expiry says, and deleted from the store.
pub async fn a_lowered_absolute_lifetime_ends_sessions_written_before<H: Harness>(
    h: &H,
    store: &BoxedStore,
) {
    let lenient = App::new(
        store.clone(),
        SessionConfig::default().with_absolute_lifetime(Some(Duration::from_secs(3600))),
    );
    let mut b = Browser::new(h, &lenient);
    b.post("/login?uid=8").await;
    let id = b.id();
    assert!(lenient.store.load(&id, None).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let strict = App::new(
        store.clone(),
        SessionConfig::default().with_absolute_lifetime(Some(Duration::from_secs(1))),
    );
    let mut b2 = Browser::new(h, &strict);
    b2.cookie.clone_from(&b.cookie);
    assert_eq!(b2.get("/read").await.body, "0", "past the lowered limit");
    assert!(
        strict.store.load(&id, None).await.unwrap().is_none(),
        "deleted at that load"
    );
    assert_eq!(b.get("/read").await.body, "0", "and gone for everyone");
}

/// A session stored while SESSION_ABSOLUTE_LIFETIME was unset has no creation time: its
/// first request under the limit, even a read, stamps one and caps its expiry, so reads
/// alone cannot keep it alive past the limit.
pub async fn a_session_stored_without_a_limit_counts_from_its_first_read_under_one<H: Harness>(
    h: &H,
    store: &BoxedStore,
) {
    let unlimited = App::new(store.clone(), SessionConfig::default());
    let mut b = Browser::new(h, &unlimited);
    b.post("/login?uid=21").await;
    let record = unlimited.store.load(&b.id(), None).await.unwrap().unwrap();
    assert_eq!(record.created, None, "kept only under a limit");
    let limit = Duration::from_secs(3600);
    let limited = App::new(
        store.clone(),
        SessionConfig::default().with_absolute_lifetime(Some(limit)),
    );
    let mut b2 = Browser::new(h, &limited);
    b2.cookie.clone_from(&b.cookie);
    let before = SystemTime::now();
    assert_eq!(b2.get("/read").await.body, "21");
    let record = limited.store.load(&b.id(), None).await.unwrap().unwrap();
    let created = record.created.expect("stamped by the read");
    assert!(created + Duration::from_millis(5) >= before, "{created:?}");
    assert!(record.expires_at <= created + limit, "{record:?}");
}

/// Session::set_lifetime: the session's own lifetime is stored with it, goes out in its
/// cookie, survives a log-in (an id rotation keeps it and the creation time), and stays
/// within SESSION_ABSOLUTE_LIFETIME; `0` goes back to the configured lifetime.
pub async fn a_session_lifetime_is_kept_through_a_login<H: Harness>(h: &H, store: &BoxedStore) {
    let app = App::new(
        store.clone(),
        SessionConfig::default().with_lifetime(Duration::from_secs(3600)),
    );
    let mut b = Browser::new(h, &app);
    b.post("/set/visited").await;
    let reply = b.post("/lifetime/86400").await;
    let cookie = session_cookie(&reply, "session").expect("a new lifetime re-sends the cookie");
    assert!(max_age(cookie).abs_diff(86400) <= 2, "{cookie}");
    let before = app.store.load(&b.id(), None).await.unwrap().unwrap();
    assert_eq!(before.lifetime, Some(Duration::from_secs(86400)));

    let reply = b.post("/login?uid=3").await;
    assert!(max_age(session_cookie(&reply, "session").unwrap()).abs_diff(86400) <= 2);
    let after = app.store.load(&b.id(), None).await.unwrap().unwrap();
    assert_eq!(after.lifetime, before.lifetime, "kept by the log-in");
    assert_eq!(after.created, before.created, "so is the creation time");
    assert!(after.expires_at > SystemTime::now() + Duration::from_secs(86000));
    // Later saves count it too.
    b.post("/write").await;
    let record = app.store.load(&b.id(), None).await.unwrap().unwrap();
    assert!(record.expires_at > SystemTime::now() + Duration::from_secs(86000));

    let reply = b.post("/lifetime/0").await;
    assert!(max_age(session_cookie(&reply, "session").unwrap()).abs_diff(3600) <= 2);
    let record = app.store.load(&b.id(), None).await.unwrap().unwrap();
    assert_eq!(record.lifetime, None);
    assert!(record.expires_at < SystemTime::now() + Duration::from_secs(3601));

    // Within the absolute limit.
    let bounded = App::new(
        store.clone(),
        SessionConfig::default().with_absolute_lifetime(Some(Duration::from_secs(7200))),
    );
    let mut b = Browser::new(h, &bounded);
    b.post("/login?uid=4").await;
    let reply = b.post("/lifetime/86400").await;
    assert!(max_age(session_cookie(&reply, "session").unwrap()) <= 7200);
    let record = bounded.store.load(&b.id(), None).await.unwrap().unwrap();
    assert_eq!(record.lifetime, Some(Duration::from_secs(86400)));
    assert!(record.expires_at <= record.created.unwrap() + Duration::from_secs(7200));
}

/// `GET /status/{k}`: the status before anything, whether the session holds `k` (which
/// loads it), and the status then.
pub async fn status_walk(s: &Session, key: &str) -> Result<String, Error> {
    let before = s.status();
    let holds = s.contains_key(key).await?;
    Ok(format!("{before:?},{holds},{:?}", s.status()))
}

/// `POST /set-status/{k}`: sets `k`, then the status.
pub async fn set_then_status(s: &Session, key: &str) -> Result<String, Error> {
    s.insert(key, true).await?;
    Ok(format!("{:?}", s.status()))
}

/// `POST /destroy-status`: destroys the session, then the status.
pub fn destroy_then_status(s: &Session) -> Result<String, Error> {
    s.destroy();
    Ok(format!("{:?}", s.status()))
}

/// `Session::status` and `Session::contains_key`, as a middleware sees them: a session is
/// `Unloaded` until used, `New` when nothing was stored, `Loaded` when it was, `Changed`
/// once written, `Destroyed` once destroyed; asking the status loads nothing.
pub async fn the_status_and_contains_key_follow_the_session<H: Harness>(h: &H, store: &BoxedStore) {
    let app = App::new(store.clone(), SessionConfig::default());
    let mut b = Browser::new(h, &app);
    assert_eq!(b.get("/status/k").await.body, "Unloaded,false,New");
    assert_eq!(b.cookie, None, "asking stored nothing");
    assert_eq!(b.post("/set-status/k").await.body, "Changed");
    assert!(b.cookie.is_some());
    assert_eq!(b.get("/status/k").await.body, "Unloaded,true,Loaded");
    assert_eq!(b.get("/status/other").await.body, "Unloaded,false,Loaded");
    assert_eq!(b.post("/destroy-status").await.body, "Destroyed");
    assert_eq!(b.cookie, None, "the log-out removed the cookie");
    assert_eq!(b.get("/status/k").await.body, "Unloaded,false,New");
}

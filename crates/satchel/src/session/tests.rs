//! Tests of the engine through a memory store: refreshes, races with log-in and log-out,
//! atomic updates.

use super::*;
use crate::store::{MemoryStore, SessionStore};
use serde_json::json;
use std::time::Duration;

async fn logged_in(manager: &SessionManager) -> String {
    let session = manager.session(None::<&str>);
    session.insert("user", "ada").await.unwrap();
    cookie_pair(&session.finish(200).await.unwrap())
}

/// The `name=value` pair of the cookie an outcome sets.
fn cookie_pair(outcome: &Outcome) -> String {
    outcome
        .set_cookie()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// The key the session of a `name=id` cookie is stored under (SESSION_HASH_IDS is on).
fn stored_key(cookie: &str) -> SessionId {
    let id: SessionId = cookie.split_once('=').unwrap().1.parse().unwrap();
    id.hashed()
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
    let id = stored_key(&cookie);
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
    let id = stored_key(&cookie);

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
    let id = stored_key(&cookie);
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
            vary_cookie: true,
            disposition: Disposition::Read,
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
    let id = stored_key(&cookie);
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
    let manager = SessionManager::new(crate::store::NullStore, SessionConfig::default()).unwrap();
    let session = manager.session(None::<&str>);
    assert!(session.is_empty().await.unwrap());
    let error = session.insert("k", 1).await.unwrap_err();
    assert!(matches!(error, Error::Disabled));
    assert!(error.to_string().contains("SESSION_TYPE"), "{error}");
}

#[tokio::test]
async fn each_outcome_says_what_became_of_the_session() {
    let store = MemoryStore::default();
    let config = SessionConfig::default().with_lifetime(Duration::from_secs(20));
    let manager = SessionManager::new(store.clone(), config).unwrap();
    let answer = |session: Session| async move { session.finish(200).await.unwrap() };

    let untouched = manager.session(None::<&str>);
    assert_eq!(
        answer(untouched).await.disposition(),
        Disposition::Untouched
    );
    let new = manager.session(None::<&str>);
    new.insert("user", "ada").await.unwrap();
    let outcome = answer(new).await;
    assert_eq!(outcome.disposition(), Disposition::Created);
    let cookie = cookie_pair(&outcome);

    let read = manager.session([cookie.as_str()]);
    read.get::<String>("user").await.unwrap();
    assert_eq!(answer(read).await.disposition(), Disposition::Read);
    // Once the stored expiry lags by the refresh granularity (1% of 20 s), a read moves it.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let refresh = manager.session([cookie.as_str()]);
    refresh.get::<String>("user").await.unwrap();
    assert_eq!(answer(refresh).await.disposition(), Disposition::Refreshed);
    let change = manager.session([cookie.as_str()]);
    change.insert("n", 1).await.unwrap();
    assert_eq!(answer(change).await.disposition(), Disposition::Changed);
    let login = manager.session([cookie.as_str()]);
    login.cycle_id().await.unwrap();
    let outcome = answer(login).await;
    assert_eq!(outcome.disposition(), Disposition::Cycled);
    let cookie = cookie_pair(&outcome);
    let logout = manager.session([cookie.as_str()]);
    logout.destroy();
    assert_eq!(answer(logout).await.disposition(), Disposition::Destroyed);
    assert_eq!(Disposition::Destroyed.to_string(), "destroyed");
}

fn budgeted(store: &MemoryStore, budget: usize) -> SessionManager {
    let config = SessionConfig::default()
        .with_refresh_each_request(false)
        .with_max_size(budget);
    SessionManager::new(store.clone(), config).unwrap()
}

#[tokio::test]
async fn an_insert_over_the_budget_fails_at_once_and_changes_nothing() {
    let store = MemoryStore::default();
    let manager = budgeted(&store, 100);
    let cookie = logged_in(&manager).await;
    let session = manager.session([cookie.as_str()]);
    session.insert("note", "x".repeat(40)).await.unwrap();
    let error = session.insert("blob", "y".repeat(60)).await.unwrap_err();
    // "user" + "\"ada\"" + "note" + 42 + "blob" + 62.
    assert!(
        matches!(
            error,
            Error::TooLarge {
                budget: 100,
                size: 121
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.status_code(), 500);
    assert!(error.to_string().contains("121") && error.to_string().contains("100"));
    assert_eq!(session.get_value("blob").await.unwrap(), None, "unchanged");
    let error = session
        .insert_if_unchanged("blob", "y".repeat(60))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::TooLarge { .. }), "{error:?}");
    // Replacing a value by a smaller one, removing, and the request's end still work.
    session.insert("note", "z").await.unwrap();
    session.remove_value("user").await.unwrap();
    let _ = session.finish(200).await.unwrap();
    let data = store
        .load(&stored_key(&cookie), None)
        .await
        .unwrap()
        .unwrap()
        .data;
    assert_eq!(data, Data::from([("note".into(), json!("z"))]));
}

#[tokio::test]
async fn a_store_refusal_for_the_size_ends_the_request_with_too_large() {
    let store = MemoryStore::default();
    let manager = budgeted(&store, 100);
    let cookie = logged_in(&manager).await;
    let first = manager.session([cookie.as_str()]);
    let second = manager.session([cookie.as_str()]);
    first.insert("a", "a".repeat(50)).await.unwrap();
    second.insert("b", "b".repeat(50)).await.unwrap();
    let _ = first.finish(200).await.unwrap();
    let error = second.finish(200).await.unwrap_err();
    assert!(
        matches!(error, Error::TooLarge { budget: 100, .. }),
        "{error:?}"
    );
    let data = store
        .load(&stored_key(&cookie), None)
        .await
        .unwrap()
        .unwrap()
        .data;
    assert!(
        data.contains_key("a") && !data.contains_key("b"),
        "{data:?}"
    );
    // The store is healthy: the breaker did not count it.
    assert_eq!(manager.breaker_state(), Some(BreakerState::Closed));
}

#[tokio::test]
async fn no_budget_takes_anything() {
    let store = MemoryStore::default();
    let manager = budgeted(&store, 0);
    let session = manager.session(None::<&str>);
    session.insert("blob", "x".repeat(1 << 20)).await.unwrap();
    let _ = session.finish(200).await.unwrap();
}

/// With SESSION_DATA_KEY, the budget measures what the store keeps: the sealed values.
/// The engine's measure on insert and the store's on save agree to the byte.
#[cfg(feature = "sealed")]
#[tokio::test]
async fn sealed_sessions_are_measured_sealed() {
    use crate::store::sealed::{sealed_len, sealed_size};
    let store = MemoryStore::default();
    let config = SessionConfig::default()
        .with_refresh_each_request(false)
        .with_data_key("a data key of thirty-two bytes or more")
        .with_max_size(400);
    let manager = SessionManager::new(store.clone(), config).unwrap();
    let session = manager.session(None::<&str>);
    // 3 + 2 + sealed_len(12) = 101 bytes sealed where the clear form takes 15.
    session.insert("one", "x".repeat(10)).await.unwrap();
    let one = 3 + 2 + sealed_len(12);
    let data = Data::from([("one".into(), json!("x".repeat(10)))]);
    assert_eq!(sealed_size(&data), one);
    // Fits in the clear (15 + 215), not sealed (101 + 305).
    let error = session.insert("two", "y".repeat(200)).await.unwrap_err();
    let two = 3 + 2 + sealed_len(202);
    assert!(
        matches!(error, Error::TooLarge { budget: 400, size } if size == one + two),
        "{error:?}"
    );
    let _ = session.finish(200).await.unwrap();

    // A concurrent merge that crosses the budget sealed is refused by the store, which
    // measures the same bytes.
    let cookie = {
        let session = manager.session(None::<&str>);
        session.insert("a", "a".repeat(60)).await.unwrap();
        let outcome = session.finish(200).await.unwrap();
        cookie_pair(&outcome)
    };
    let first = manager.session([cookie.as_str()]);
    let second = manager.session([cookie.as_str()]);
    first.insert("b", "b".repeat(60)).await.unwrap();
    second.insert("c", "c".repeat(60)).await.unwrap();
    let _ = first.finish(200).await.unwrap();
    let error = second.finish(200).await.unwrap_err();
    let each = 1 + 2 + sealed_len(62);
    assert!(
        matches!(error, Error::TooLarge { budget: 400, size } if size == 3 * each),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_status_follows_the_request_without_loading() {
    let store = MemoryStore::default();
    let manager = SessionManager::new(store.clone(), SessionConfig::default()).unwrap();
    let cookie = logged_in(&manager).await;

    let read = manager.session([cookie.as_str()]);
    assert_eq!(read.status(), SessionStatus::Unloaded);
    assert!(read.contains_key("user").await.unwrap());
    assert!(!read.contains_key("cart").await.unwrap());
    assert_eq!(read.status(), SessionStatus::Loaded);
    read.insert("user", "ada").await.unwrap();
    assert_eq!(
        read.status(),
        SessionStatus::Loaded,
        "the same value changes nothing"
    );
    read.insert("cart", 1).await.unwrap();
    assert_eq!(read.status(), SessionStatus::Changed);

    let counter = manager.session([cookie.as_str()]);
    counter.increment("n", 1).await.unwrap();
    assert_eq!(
        counter.status(),
        SessionStatus::Changed,
        "updated in the store at once"
    );

    let rotated = manager.session([cookie.as_str()]);
    rotated.cycle_id().await.unwrap();
    assert_eq!(rotated.status(), SessionStatus::Changed);

    let gone = manager.session([cookie.as_str()]);
    gone.destroy();
    assert_eq!(gone.status(), SessionStatus::Destroyed);
    gone.insert("flash", "bye").await.unwrap();
    assert_eq!(
        gone.status(),
        SessionStatus::Changed,
        "a new session after destroy"
    );

    let unknown = manager.session(["session=not-an-id"]);
    assert!(!unknown.contains_key("user").await.unwrap());
    assert_eq!(unknown.status(), SessionStatus::New);
}

/// Twenty requests flash at once while others take: every message is shown exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_flashes_are_each_shown_once() {
    let store = MemoryStore::default();
    let manager = SessionManager::new(store.clone(), SessionConfig::default()).unwrap();
    let cookie = logged_in(&manager).await;
    let mut tasks = Vec::new();
    for n in 0..20 {
        let (manager, cookie) = (manager.clone(), cookie.clone());
        tasks.push(tokio::spawn(async move {
            let session = manager.session([cookie.as_str()]);
            session.flash("info", &format!("m{n}")).await.unwrap();
            let taken = if n % 4 == 0 {
                session.take_flashes().await.unwrap()
            } else {
                Vec::new()
            };
            let _ = session.finish(200).await.unwrap();
            taken
        }));
    }
    let mut shown: Vec<String> = Vec::new();
    for task in tasks {
        shown.extend(task.await.unwrap().into_iter().map(|flash| flash.message));
    }
    let last = manager.session([cookie.as_str()]);
    shown.extend(
        last.take_flashes()
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.message),
    );
    let _ = last.finish(200).await.unwrap();
    shown.sort();
    let mut expected: Vec<String> = (0..20).map(|n| format!("m{n}")).collect();
    expected.sort();
    assert_eq!(shown, expected, "each message once, none lost");
    let after = manager.session([cookie.as_str()]);
    assert!(after.take_flashes().await.unwrap().is_empty());
    assert_eq!(
        after.get::<String>("user").await.unwrap().as_deref(),
        Some("ada")
    );
}

#[tokio::test]
async fn flashes_are_stored_in_flasks_shape() {
    let store = MemoryStore::default();
    let manager = SessionManager::new(store.clone(), SessionConfig::default()).unwrap();
    let session = manager.session(None::<&str>);
    session.flash("error", "No.").await.unwrap();
    session.flash("message", "Hi.").await.unwrap();
    assert_eq!(
        session.get_value(flash::FLASHES_KEY).await.unwrap(),
        Some(json!([["error", "No."], ["message", "Hi."]]))
    );
    let cookie = cookie_pair(&session.finish(200).await.unwrap());
    let stored = store
        .load(&stored_key(&cookie), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.data["_flashes"],
        json!([["error", "No."], ["message", "Hi."]])
    );
    // What Flask may leave: a lone string is a message; other items are dropped.
    let next = manager.session([cookie.as_str()]);
    next.insert(flash::FLASHES_KEY, json!([["error", "No."], "bare", 7]))
        .await
        .unwrap();
    let taken = next.take_flashes().await.unwrap();
    let pairs: Vec<(&str, &str)> = taken
        .iter()
        .map(|f| (f.category.as_str(), f.message.as_str()))
        .collect();
    assert_eq!(pairs, [("error", "No."), ("message", "bare")]);
}

/// A log-in whose move the store refuses for its size leaves the session under its old
/// id, usable and not retired, and leaves no member for the new id in the user's index.
#[tokio::test]
async fn a_login_refused_for_its_size_leaves_the_old_session_as_it_was() {
    let store = MemoryStore::default();
    let manager = budgeted(&store, 200);
    let cookie = logged_in(&manager).await;
    let first = manager.session([cookie.as_str()]);
    let second = manager.session([cookie.as_str()]);
    first.insert("a", "a".repeat(100)).await.unwrap();
    second.insert("b", "b".repeat(100)).await.unwrap();
    second.set_user("grace").await.unwrap();
    second.cycle_id().await.unwrap();
    let _ = first.finish(200).await.unwrap();
    let error = second.finish(200).await.unwrap_err();
    assert!(matches!(error, Error::TooLarge { .. }), "{error:?}");

    // The index holds no member for the id the refused move would have made.
    let members = crate::store::index::members(manager.store(), "grace")
        .await
        .unwrap();
    assert!(members.is_empty(), "{members:?}");
    // The old id still works: not retired, so it is neither refused nor replaced.
    let again = manager.session([cookie.as_str()]);
    assert_eq!(
        again.get::<String>("user").await.unwrap().as_deref(),
        Some("ada")
    );
    assert!(!again.presents_retired_id());
    again.insert("c", 1).await.unwrap();
    let outcome = again.finish(200).await.unwrap();
    assert_eq!(outcome.disposition(), Disposition::Changed);
}

//! The conformance cases. Each takes a store and panics when the store breaks the
//! contract of [`SessionStore`].

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::time::{Duration, SystemTime};

use serde_json::json;

use crate::id::SessionId;
use crate::record::{Changes, Data, KeyUpdate, Record, Updated};
use crate::store::index;
use crate::store::{Saved, Seen, SessionStore};

fn in_secs(secs: u64) -> SystemTime {
    SystemTime::now() + Duration::from_secs(secs)
}

fn setting(pairs: &[(&str, serde_json::Value)]) -> Changes {
    let mut changes = Changes::default();
    for (key, value) in pairs {
        changes.set(*key, value.clone());
    }
    changes
}

async fn stored<S: SessionStore>(store: &S, id: &SessionId) -> Data {
    store
        .load(id, None)
        .await
        .unwrap()
        .expect("the entry should exist")
        .data
}

/// Saves `changes` as a request that loaded `seen` would: with the version it saw and
/// its view of the data after its changes.
async fn save_from<S: SessionStore>(
    store: &S,
    id: &SessionId,
    seen: &Record,
    changes: &Changes,
    permanent: Option<bool>,
) -> Saved {
    let mut data = seen.data.clone();
    changes.apply(&mut data);
    let view = Seen {
        version: seen.version.unwrap_or(0),
        data: &data,
        permanent,
        created: seen.created,
        lifetime: seen.lifetime,
    };
    store
        .save_seen(id, view, changes, in_secs(60))
        .await
        .unwrap()
}

/// Every entry of a walk through `store`'s pages of `limit`, in the order given (repeats
/// kept), and the number of pages; each page is checked to hold at most `limit`.
pub async fn walk<S: SessionStore>(store: &S, limit: usize) -> (Vec<(SessionId, Record)>, usize) {
    let (mut entries, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
    loop {
        let page = store.list(cursor.as_deref(), limit).await.unwrap();
        assert!(
            page.entries.len() <= limit,
            "a page holds at most the limit"
        );
        pages += 1;
        entries.extend(page.entries);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return (entries, pages),
        }
    }
}

/// A store that serves requests answers its health check.
pub async fn ping_answers_while_the_store_works<S: SessionStore>(store: S) {
    store.ping().await.unwrap();
    let id = SessionId::generate();
    store
        .save(&id, &setting(&[("k", json!(1))]), in_secs(60))
        .await
        .unwrap();
    store.ping().await.unwrap();
    assert!(
        store.load(&id, None).await.unwrap().is_some(),
        "a ping changes nothing"
    );
}

/// An id that was never saved loads as `None`.
pub async fn missing_entry_loads_as_none<S: SessionStore>(store: S) {
    assert!(
        store
            .load(&SessionId::generate(), None)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .load(&SessionId::generate(), Some(in_secs(60)))
            .await
            .unwrap()
            .is_none()
    );
}

/// Every kind of JSON value comes back as it was saved.
pub async fn saved_data_round_trips<S: SessionStore>(store: S) {
    let id = SessionId::generate();
    let value = json!({
        "int": -42, "big": 9_007_199_254_740_993_u64, "float": 1.5, "text": "héllo ✓",
        "list": [1, "two", null, true], "nested": {"a": {"b": []}}, "empty": ""
    });
    let changes = setting(&[("user", json!(7)), ("profile", value.clone())]);
    assert_eq!(
        store.save(&id, &changes, in_secs(60)).await.unwrap(),
        Saved::Stored
    );
    let record = store.load(&id, None).await.unwrap().unwrap();
    assert_eq!(record.data["user"], json!(7));
    assert_eq!(record.data["profile"], value);
    assert_eq!(record.data.len(), 2);
    let left = record.expires_at.duration_since(SystemTime::now()).unwrap();
    assert!(
        left > Duration::from_secs(50) && left <= Duration::from_secs(61),
        "{left:?}"
    );
}

/// A save changes only the keys it names; keys saved by others stay.
pub async fn changes_apply_onto_the_latest_entry<S: SessionStore>(store: S) {
    let id = SessionId::generate();
    store
        .save(&id, &setting(&[("a", json!(1))]), in_secs(60))
        .await
        .unwrap();
    store
        .save(&id, &setting(&[("b", json!(2))]), in_secs(60))
        .await
        .unwrap();
    store
        .save(&id, &setting(&[("a", json!(3))]), in_secs(60))
        .await
        .unwrap();
    let data = stored(&store, &id).await;
    assert_eq!(data.len(), 2);
    assert_eq!(data["a"], json!(3));
    assert_eq!(data["b"], json!(2));
}

/// Removals drop their keys; `clear` drops every key saved before it.
pub async fn removals_and_clear_apply<S: SessionStore>(store: S) {
    let id = SessionId::generate();
    let initial = setting(&[("a", json!(1)), ("b", json!(2)), ("c", json!(3))]);
    store.save(&id, &initial, in_secs(60)).await.unwrap();
    let mut remove = Changes::default();
    remove.remove("a");
    remove.remove("not-there");
    store.save(&id, &remove, in_secs(60)).await.unwrap();
    assert_eq!(
        stored(&store, &id).await.keys().collect::<Vec<_>>(),
        ["b", "c"]
    );
    let mut clear = Changes::default();
    clear.clear();
    clear.set("d", json!(4));
    assert_eq!(
        store.save(&id, &clear, in_secs(60)).await.unwrap(),
        Saved::Stored
    );
    assert_eq!(stored(&store, &id).await.keys().collect::<Vec<_>>(), ["d"]);
}

/// A change set that leaves no data deletes the entry and says so.
pub async fn a_save_that_leaves_nothing_deletes_the_entry<S: SessionStore>(store: S) {
    let id = SessionId::generate();
    store
        .save(&id, &setting(&[("a", json!(1))]), in_secs(60))
        .await
        .unwrap();
    let mut remove = Changes::default();
    remove.remove("a");
    assert_eq!(
        store.save(&id, &remove, in_secs(60)).await.unwrap(),
        Saved::Empty
    );
    assert!(store.load(&id, None).await.unwrap().is_none());
    // Nothing is written for a new id whose changes leave nothing either.
    let fresh = SessionId::generate();
    assert_eq!(
        store.save(&fresh, &remove, in_secs(60)).await.unwrap(),
        Saved::Empty
    );
    assert!(store.load(&fresh, None).await.unwrap().is_none());
}

/// `delete` removes an entry; deleting a missing one is fine.
pub async fn delete_removes_the_entry<S: SessionStore>(store: S) {
    let id = SessionId::generate();
    store
        .save(&id, &setting(&[("a", json!(1))]), in_secs(60))
        .await
        .unwrap();
    store.delete(&id).await.unwrap();
    assert!(store.load(&id, None).await.unwrap().is_none());
    store.delete(&id).await.unwrap();
    store.delete(&SessionId::generate()).await.unwrap();
}

/// An entry past its expiry is not loaded, whatever the backend's own TTL does; a save
/// onto an expired entry starts from nothing.
pub async fn expired_entries_are_not_loaded<S: SessionStore>(store: S) {
    let short = SessionId::generate();
    let long = SessionId::generate();
    store
        .save(&short, &setting(&[("a", json!(1))]), in_secs(1))
        .await
        .unwrap();
    store
        .save(&long, &setting(&[("a", json!(1))]), in_secs(60))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(store.load(&short, None).await.unwrap().is_none());
    assert!(
        store
            .load(&short, Some(in_secs(60)))
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.load(&long, None).await.unwrap().is_some());
    store
        .save(&short, &setting(&[("b", json!(2))]), in_secs(60))
        .await
        .unwrap();
    assert_eq!(
        stored(&store, &short).await.keys().collect::<Vec<_>>(),
        ["b"]
    );
}

/// A load with a touch extends the entry's lifetime and leaves its data as it was.
pub async fn touch_extends_the_lifetime_without_changing_data<S: SessionStore>(store: S) {
    let id = SessionId::generate();
    store
        .save(&id, &setting(&[("a", json!(1))]), in_secs(1))
        .await
        .unwrap();
    let touched = store.load(&id, Some(in_secs(60))).await.unwrap().unwrap();
    assert!(
        touched.expires_at > in_secs(50),
        "the returned record has the new expiry"
    );
    assert_eq!(touched.data["a"], json!(1));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let later = store
        .load(&id, None)
        .await
        .unwrap()
        .expect("the touch kept the entry");
    assert_eq!(later.data, touched.data);
    assert!(later.expires_at > in_secs(50));
}

/// The per-session permanent flag is kept, and kept by saves that do not change it.
pub async fn the_permanent_flag_is_stored<S: SessionStore>(store: S) {
    let id = SessionId::generate();
    let mut changes = setting(&[("a", json!(1))]);
    store.save(&id, &changes, in_secs(60)).await.unwrap();
    assert_eq!(
        store.load(&id, None).await.unwrap().unwrap().permanent,
        None
    );
    changes.set_permanent(false);
    store.save(&id, &changes, in_secs(60)).await.unwrap();
    store
        .save(&id, &setting(&[("b", json!(2))]), in_secs(60))
        .await
        .unwrap();
    let record = store.load(&id, None).await.unwrap().unwrap();
    assert_eq!(record.permanent, Some(false));
    assert_eq!(record.data.len(), 2);
}

/// The creation time and the per-session lifetime are stored with the entry: a later
/// save without them keeps them, a lifetime can go back to none, a save from the version
/// seen writes them, and an id rotation carries them to the new id.
pub async fn the_creation_time_and_lifetime_are_stored<S: SessionStore>(store: S) {
    let id = SessionId::generate();
    // Whole milliseconds: what every store keeps of a time.
    let created = crate::support::from_unix_millis(crate::support::unix_millis(
        SystemTime::now() - Duration::from_secs(3600),
    ));
    let month = Duration::from_secs(30 * 24 * 3600);
    let mut changes = setting(&[("a", json!(1))]);
    changes.set_created(created);
    changes.set_lifetime(Some(month));
    store.save(&id, &changes, in_secs(60)).await.unwrap();
    store
        .save(&id, &setting(&[("b", json!(2))]), in_secs(60))
        .await
        .unwrap();
    let record = store.load(&id, None).await.unwrap().unwrap();
    assert_eq!(
        (record.created, record.lifetime),
        (Some(created), Some(month)),
        "kept by a save that does not name them"
    );
    assert_eq!(record.data.len(), 2);

    // A save from the version seen writes what the request saw.
    if let Some(version) = record.version {
        let changes = setting(&[("c", json!(3))]);
        let mut data = record.data.clone();
        changes.apply(&mut data);
        let view = Seen {
            version,
            data: &data,
            permanent: None,
            created: Some(created),
            lifetime: Some(month),
        };
        store
            .save_seen(&id, view, &changes, in_secs(60))
            .await
            .unwrap();
        let record = store.load(&id, None).await.unwrap().unwrap();
        assert_eq!(
            (record.created, record.lifetime),
            (Some(created), Some(month))
        );
    }

    // A touch and a key update leave them alone.
    let touched = store.load(&id, Some(in_secs(120))).await.unwrap().unwrap();
    assert_eq!(
        (touched.created, touched.lifetime),
        (Some(created), Some(month))
    );
    store
        .update(&id, "n", &KeyUpdate::Increment(1))
        .await
        .unwrap();
    let record = store.load(&id, None).await.unwrap().unwrap();
    assert_eq!(
        (record.created, record.lifetime),
        (Some(created), Some(month))
    );

    // Back to the configured lifetime.
    let mut back = setting(&[("d", json!(4))]);
    back.set_lifetime(None);
    store.save(&id, &back, in_secs(60)).await.unwrap();
    let record = store.load(&id, None).await.unwrap().unwrap();
    assert_eq!((record.created, record.lifetime), (Some(created), None));

    // An id rotation keeps the creation time and carries a new lifetime.
    let new = SessionId::generate();
    let day = Duration::from_secs(24 * 3600);
    let mut login = setting(&[("user", json!("ada"))]);
    login.set_lifetime(Some(day));
    let saved = store.cycle(&id, &new, &login, in_secs(60)).await.unwrap();
    assert_eq!(saved, Saved::Stored);
    let record = store.load(&new, None).await.unwrap().unwrap();
    assert_eq!(
        (record.created, record.lifetime),
        (Some(created), Some(day))
    );
    assert!(store.load(&id, None).await.unwrap().is_none());
}

/// `cycle` moves the data (with the request's changes) to the new id and removes the old.
pub async fn cycle_moves_the_entry_to_the_new_id<S: SessionStore>(store: S) {
    let old = SessionId::generate();
    let new = SessionId::generate();
    store
        .save(
            &old,
            &setting(&[("a", json!(1)), ("b", json!(2))]),
            in_secs(60),
        )
        .await
        .unwrap();
    let mut changes = setting(&[("c", json!(3))]);
    changes.remove("a");
    let saved = store
        .cycle(&old, &new, &changes, in_secs(60))
        .await
        .unwrap();
    assert_eq!(saved, Saved::Stored);
    assert!(store.load(&old, None).await.unwrap().is_none());
    assert_eq!(
        stored(&store, &new).await.keys().collect::<Vec<_>>(),
        ["b", "c"]
    );
}

/// Fifty concurrent saves on one id, each setting its own key, leave all fifty keys.
pub async fn concurrent_saves_keep_every_key<S: SessionStore + Clone>(store: S) {
    let id = SessionId::generate();
    store
        .save(&id, &setting(&[("base", json!(0))]), in_secs(60))
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let store = store.clone();
        tasks.spawn(async move {
            let changes = setting(&[(&format!("k{i}"), json!(true))]);
            store.save(&id, &changes, in_secs(60)).await.unwrap()
        });
    }
    while let Some(saved) = tasks.join_next().await {
        assert_eq!(saved.unwrap(), Saved::Stored);
    }
    let data = stored(&store, &id).await;
    assert_eq!(
        data.len(),
        51,
        "lost updates: kept {} of 50 keys",
        data.len() - 1
    );
}

/// A change set of thousands of keys (more than one command or statement may carry) is
/// applied whole: sets, a clear of thousands of keys with new sets, then removals.
pub async fn large_change_sets_apply_whole<S: SessionStore>(store: S) {
    let id = SessionId::generate();
    let many = |prefix: &str, n: usize, clear: bool| {
        let mut changes = Changes::default();
        if clear {
            changes.clear();
        }
        for i in 0..n {
            changes.set(format!("{prefix}-{i}"), json!(i));
        }
        changes
    };
    let saved = store
        .save(&id, &many("key", 2500, false), in_secs(60))
        .await;
    assert_eq!(saved.unwrap(), Saved::Stored);
    let data = stored(&store, &id).await;
    assert_eq!(data.len(), 2500);
    assert_eq!(data["key-2499"], json!(2499));
    let saved = store
        .save(&id, &many("again", 1500, true), in_secs(60))
        .await;
    assert_eq!(saved.unwrap(), Saved::Stored);
    let data = stored(&store, &id).await;
    assert_eq!(data.len(), 1500, "the clear removed every earlier key");
    assert!(!data.contains_key("key-0") && data["again-1499"] == json!(1499));
    let mut fewer = Changes::default();
    for i in 0..1400 {
        fewer.remove(format!("again-{i}"));
    }
    fewer.set("new", json!(true));
    let saved = store.save(&id, &fewer, in_secs(60)).await;
    assert_eq!(saved.unwrap(), Saved::Stored);
    let data = stored(&store, &id).await;
    assert_eq!(data.len(), 101);
    assert!(data.contains_key("again-1400") && !data.contains_key("again-0"));
}

/// Two sessions never see each other's data.
pub async fn sessions_do_not_leak_into_each_other<S: SessionStore>(store: S) {
    let a = SessionId::generate();
    let b = SessionId::generate();
    store
        .save(&a, &setting(&[("who", json!("a"))]), in_secs(60))
        .await
        .unwrap();
    store
        .save(&b, &setting(&[("who", json!("b"))]), in_secs(60))
        .await
        .unwrap();
    assert_eq!(stored(&store, &a).await["who"], json!("a"));
    assert_eq!(stored(&store, &b).await["who"], json!("b"));
    store.delete(&a).await.unwrap();
    assert_eq!(stored(&store, &b).await["who"], json!("b"));
}

/// A save from a version someone else has since overwritten still applies only the
/// request's own changes onto the latest entry: nothing is lost.
pub async fn a_save_from_a_stale_version_loses_nothing<S: SessionStore>(store: S) {
    let id = SessionId::generate();
    store
        .save(&id, &setting(&[("a", json!(1))]), in_secs(60))
        .await
        .unwrap();
    let seen = store.load(&id, None).await.unwrap().unwrap();
    // Another request writes in between.
    store
        .save(&id, &setting(&[("b", json!(2))]), in_secs(60))
        .await
        .unwrap();
    let changes = setting(&[("c", json!(3))]);
    assert_eq!(
        save_from(&store, &id, &seen, &changes, None).await,
        Saved::Stored
    );
    let keys: Vec<_> = stored(&store, &id).await.into_keys().collect();
    assert_eq!(keys, ["a", "b", "c"]);
}

/// A save from the current version writes the request's data, and the entry's version
/// (if the store keeps one) moves on.
pub async fn a_save_from_the_current_version_writes_the_request_data<S: SessionStore>(store: S) {
    let id = SessionId::generate();
    store
        .save(&id, &setting(&[("a", json!(1))]), in_secs(60))
        .await
        .unwrap();
    let seen = store.load(&id, None).await.unwrap().unwrap();
    let mut changes = setting(&[("b", json!(2))]);
    changes.remove("a");
    changes.set_permanent(false);
    assert_eq!(
        save_from(&store, &id, &seen, &changes, Some(false)).await,
        Saved::Stored
    );
    let after = store.load(&id, None).await.unwrap().unwrap();
    assert_eq!(after.data.keys().collect::<Vec<_>>(), ["b"]);
    assert_eq!(after.permanent, Some(false));
    if let (Some(before), Some(now)) = (seen.version, after.version) {
        assert_ne!(before, now, "a write moves the version on");
    }
    // A save from the current version that leaves nothing deletes the entry.
    let mut remove = Changes::default();
    remove.remove("b");
    let empty = Data::new();
    let view = Seen {
        version: after.version.unwrap_or(0),
        data: &empty,
        permanent: Some(false),
        created: None,
        lifetime: None,
    };
    assert_eq!(
        store
            .save_seen(&id, view, &remove, in_secs(60))
            .await
            .unwrap(),
        Saved::Empty
    );
    assert!(store.load(&id, None).await.unwrap().is_none());
}

/// A change set that [requires an existing entry](Changes::require_existing) never
/// creates one: not for an id never saved, not after a delete (through `save`,
/// `save_seen` from the version seen before it, or `cycle`), not after expiry. A live
/// entry takes it as usual.
pub async fn changes_for_a_loaded_entry_never_recreate_it<S: SessionStore>(store: S) {
    let mut changes = setting(&[("a", json!(1))]);
    changes.require_existing();
    let id = SessionId::generate();
    assert_eq!(
        store.save(&id, &changes, in_secs(60)).await.unwrap(),
        Saved::Empty
    );
    assert!(store.load(&id, None).await.unwrap().is_none());

    // Loaded, then deleted by another request before this one saves.
    store
        .save(&id, &setting(&[("b", json!(2))]), in_secs(60))
        .await
        .unwrap();
    let seen = store.load(&id, None).await.unwrap().unwrap();
    store.delete(&id).await.unwrap();
    assert_eq!(
        save_from(&store, &id, &seen, &changes, None).await,
        Saved::Empty
    );
    assert!(store.load(&id, None).await.unwrap().is_none());
    let mut removal = Changes::default();
    removal.remove("b");
    removal.set_permanent(true);
    removal.require_existing();
    assert_eq!(
        store.save(&id, &removal, in_secs(60)).await.unwrap(),
        Saved::Empty
    );
    let new = SessionId::generate();
    assert_eq!(
        store.cycle(&id, &new, &changes, in_secs(60)).await.unwrap(),
        Saved::Empty
    );
    assert!(store.load(&id, None).await.unwrap().is_none());
    assert!(store.load(&new, None).await.unwrap().is_none());

    // Expired while the request ran.
    let short = SessionId::generate();
    store
        .save(&short, &setting(&[("b", json!(2))]), in_secs(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        store.save(&short, &changes, in_secs(60)).await.unwrap(),
        Saved::Empty
    );
    assert!(store.load(&short, None).await.unwrap().is_none());

    let live = SessionId::generate();
    store
        .save(&live, &setting(&[("b", json!(2))]), in_secs(60))
        .await
        .unwrap();
    assert_eq!(
        store.save(&live, &changes, in_secs(60)).await.unwrap(),
        Saved::Stored
    );
    assert_eq!(stored(&store, &live).await.len(), 2);
}

/// Concurrent increments of one key all land, each seeing its own sum, and leave the
/// entry's other keys and its expiry alone.
pub async fn concurrent_increments_all_land<S: SessionStore + Clone>(store: S) {
    let id = SessionId::generate();
    let changes = setting(&[("n", json!(0)), ("other", json!("kept"))]);
    store.save(&id, &changes, in_secs(60)).await.unwrap();
    let before = store.load(&id, None).await.unwrap().unwrap().expires_at;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .update(&id, "n", &KeyUpdate::Increment(1))
                .await
                .unwrap()
        });
    }
    let mut sums = Vec::new();
    while let Some(updated) = tasks.join_next().await {
        match updated.unwrap() {
            Updated::Applied(Some(value)) => sums.push(value.as_i64().unwrap()),
            other => panic!("an increment was refused: {other:?}"),
        }
    }
    sums.sort_unstable();
    assert_eq!(sums, (1..=30).collect::<Vec<_>>(), "each sees its own sum");
    let record = store.load(&id, None).await.unwrap().unwrap();
    assert_eq!(record.data["n"], json!(30), "no increment lost");
    assert_eq!(record.data["other"], json!("kept"));
    let moved = record
        .expires_at
        .duration_since(before)
        .unwrap_or_else(|e| e.duration());
    assert!(
        moved < Duration::from_secs(2),
        "the expiry stays: moved {moved:?}"
    );
}

/// What an update does in every case: increments from nothing, refusals that write
/// nothing, compare-and-set, removal, and no live entry.
pub async fn updates_apply_or_refuse_as_specified<S: SessionStore>(store: S) {
    let id = SessionId::generate();
    let incr = |by| KeyUpdate::Increment(by);
    let replace =
        |expected: Option<serde_json::Value>, new: Option<serde_json::Value>| KeyUpdate::Replace {
            expected,
            new,
            max_size: None,
        };
    assert_eq!(
        store.update(&id, "n", &incr(1)).await.unwrap(),
        Updated::Missing,
        "no entry: nothing is created"
    );
    assert!(store.load(&id, None).await.unwrap().is_none());

    let changes = setting(&[("text", json!("a")), ("big", json!(i64::MAX))]);
    store.save(&id, &changes, in_secs(60)).await.unwrap();
    assert_eq!(
        store.update(&id, "n", &incr(5)).await.unwrap(),
        Updated::Applied(Some(json!(5)))
    );
    assert_eq!(
        store.update(&id, "n", &incr(-7)).await.unwrap(),
        Updated::Applied(Some(json!(-2)))
    );
    assert_eq!(
        store.update(&id, "text", &incr(1)).await.unwrap(),
        Updated::Invalid(Some(json!("a")))
    );
    assert_eq!(
        store.update(&id, "big", &incr(1)).await.unwrap(),
        Updated::Invalid(Some(json!(i64::MAX))),
        "an overflow is refused"
    );
    assert_eq!(
        store
            .update(&id, "text", &replace(Some(json!("b")), Some(json!("c"))))
            .await
            .unwrap(),
        Updated::Mismatch(Some(json!("a")))
    );
    assert_eq!(
        store
            .update(
                &id,
                "text",
                &replace(Some(json!("a")), Some(json!({"x": [1]})))
            )
            .await
            .unwrap(),
        Updated::Applied(Some(json!({"x": [1]})))
    );
    assert_eq!(
        store
            .update(&id, "fresh", &replace(None, Some(json!(true))))
            .await
            .unwrap(),
        Updated::Applied(Some(json!(true)))
    );
    assert_eq!(
        store
            .update(&id, "fresh", &replace(None, Some(json!(false))))
            .await
            .unwrap(),
        Updated::Mismatch(Some(json!(true)))
    );
    let data = stored(&store, &id).await;
    assert_eq!(data["n"], json!(-2));
    assert_eq!(data["text"], json!({"x": [1]}));
    assert_eq!(data["big"], json!(i64::MAX), "a refusal writes nothing");
    assert_eq!(data["fresh"], json!(true));

    // Removing every key ends the entry.
    for key in ["n", "text", "big", "fresh"] {
        let current = data.get(key).cloned();
        assert_eq!(
            store
                .update(&id, key, &replace(current, None))
                .await
                .unwrap(),
            Updated::Applied(None)
        );
    }
    assert!(store.load(&id, None).await.unwrap().is_none());
    assert_eq!(
        store.update(&id, "n", &incr(1)).await.unwrap(),
        Updated::Missing,
        "an emptied entry is gone"
    );

    // An expired entry counts as none.
    let short = SessionId::generate();
    store
        .save(&short, &setting(&[("n", json!(1))]), in_secs(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        store.update(&short, "n", &incr(1)).await.unwrap(),
        Updated::Missing
    );
}

/// [`update_and_load`](SessionStore::update_and_load) gives the outcome
/// [`update`](SessionStore::update) would, and the entry as a load right after the update
/// finds it: its data with the update applied, its expiry, flag, creation time and
/// lifetime as they were. Concurrent calls lose no increment.
pub async fn an_update_answers_the_entry_it_left<S: SessionStore + Clone>(store: S) {
    let id = SessionId::generate();
    let (updated, record) = store
        .update_and_load(&id, "n", &KeyUpdate::Increment(1))
        .await
        .unwrap();
    assert_eq!(updated, Updated::Missing, "no entry: nothing is created");
    assert!(record.is_none());
    assert!(store.load(&id, None).await.unwrap().is_none());

    let created = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut changes = setting(&[("text", json!("a")), ("n", json!(2))]);
    changes.set_permanent(true);
    changes.set_created(created);
    changes.set_lifetime(Some(Duration::from_secs(3_600)));
    let expires = in_secs(60);
    store.save(&id, &changes, expires).await.unwrap();

    let (updated, record) = store
        .update_and_load(&id, "n", &KeyUpdate::Increment(5))
        .await
        .unwrap();
    assert_eq!(updated, Updated::Applied(Some(json!(7))));
    let record = record.expect("the entry the update left");
    assert_eq!(record.data["n"], json!(7), "the entry holds the update");
    assert_eq!(record.data["text"], json!("a"));
    assert_eq!(record.data.len(), 2);
    assert_eq!(record.permanent, Some(true));
    assert_eq!(record.created, Some(created));
    assert_eq!(record.lifetime, Some(Duration::from_secs(3_600)));
    let loaded = store.load(&id, None).await.unwrap().unwrap();
    assert_eq!(record.data, loaded.data, "what a load right after finds");
    // A store whose backend keeps a TTL and no expiry of its own (Flask-Session's layout
    // in memcached) gives the expiry from the TTL at each load: equal within its rounding.
    let apart = record
        .expires_at
        .duration_since(loaded.expires_at)
        .unwrap_or_else(|e| e.duration());
    assert!(
        apart < Duration::from_secs(2),
        "the expiry stays: {apart:?} from a load's"
    );

    // A refusal writes nothing, and still answers the entry.
    let (updated, record) = store
        .update_and_load(&id, "text", &KeyUpdate::Increment(1))
        .await
        .unwrap();
    assert_eq!(updated, Updated::Invalid(Some(json!("a"))));
    assert_eq!(record.expect("the entry").data, loaded.data);

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .update_and_load(&id, "n", &KeyUpdate::Increment(1))
                .await
                .unwrap()
        });
    }
    let mut sums = Vec::new();
    while let Some(answer) = tasks.join_next().await {
        let (updated, record) = answer.unwrap();
        let Updated::Applied(Some(sum)) = updated else {
            panic!("an increment was refused: {updated:?}");
        };
        let sum = sum.as_i64().unwrap();
        let seen = record.expect("the entry").data["n"].as_i64().unwrap();
        assert!(
            seen >= sum,
            "the entry answered holds the increment: {seen} < {sum}"
        );
        sums.push(sum);
    }
    sums.sort_unstable();
    assert_eq!(sums, (8..=27).collect::<Vec<_>>(), "each sees its own sum");
    assert_eq!(
        stored(&store, &id).await["n"],
        json!(27),
        "no increment lost"
    );

    // An update that removes the last key ends the entry: no entry is answered.
    let single = SessionId::generate();
    store
        .save(&single, &setting(&[("only", json!(1))]), in_secs(60))
        .await
        .unwrap();
    let remove = KeyUpdate::Replace {
        expected: Some(json!(1)),
        new: None,
        max_size: None,
    };
    let (updated, record) = store
        .update_and_load(&single, "only", &remove)
        .await
        .unwrap();
    assert_eq!(updated, Updated::Applied(None));
    assert!(record.is_none(), "the emptied entry is gone: {record:?}");
}

/// A save that empties an entry ends it at once (a `clear`, or the removal of its last
/// key): a change set that [requires the entry](Changes::require_existing) and comes
/// after finds nothing and writes nothing. So when a clear races saves from requests
/// that loaded the session, the id is gone at the end, whatever order they landed in.
pub async fn an_emptied_entry_takes_no_later_changes<S: SessionStore + Clone>(store: S) {
    let mut clear = Changes::default();
    clear.clear();
    clear.require_existing();
    let mut late = setting(&[("late", json!(true))]);
    late.require_existing();

    let id = SessionId::generate();
    store
        .save(
            &id,
            &setting(&[("a", json!(1)), ("b", json!(2))]),
            in_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(
        store.save(&id, &clear, in_secs(60)).await.unwrap(),
        Saved::Empty
    );
    assert!(store.load(&id, None).await.unwrap().is_none());
    assert_eq!(
        store.save(&id, &late, in_secs(60)).await.unwrap(),
        Saved::Empty
    );
    assert!(store.load(&id, None).await.unwrap().is_none());

    // The same when the request removed the last key.
    let id = SessionId::generate();
    store
        .save(&id, &setting(&[("a", json!(1))]), in_secs(60))
        .await
        .unwrap();
    let mut removal = Changes::default();
    removal.remove("a");
    removal.require_existing();
    assert_eq!(
        store.save(&id, &removal, in_secs(60)).await.unwrap(),
        Saved::Empty
    );
    assert_eq!(
        store.save(&id, &late, in_secs(60)).await.unwrap(),
        Saved::Empty
    );
    assert!(store.load(&id, None).await.unwrap().is_none());

    // Concurrently: twenty requests that loaded the session set a key each, and one
    // clears it, started in the middle of them.
    for round in 0..5 {
        let id = SessionId::generate();
        store
            .save(&id, &setting(&[("a", json!(1))]), in_secs(60))
            .await
            .unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..21 {
            let store = store.clone();
            let changes = if i == 10 {
                clear.clone()
            } else {
                let mut changes = setting(&[(&format!("k{i}"), json!(i))]);
                changes.require_existing();
                changes
            };
            tasks.spawn(async move {
                let saved = store.save(&id, &changes, in_secs(60)).await.unwrap();
                (changes.is_clear(), saved)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let (is_clear, saved) = joined.unwrap();
            if is_clear {
                assert_eq!(saved, Saved::Empty, "round {round}: a clear leaves nothing");
            }
        }
        assert!(
            store.load(&id, None).await.unwrap().is_none(),
            "round {round}: a set that came after the clear brought the entry back"
        );
    }
}

/// Fifty sessions bound to one user at once, from as many tasks, are all in the user's
/// index ([`index`]): its saves lose no member.
pub async fn fifty_concurrent_bindings_are_all_indexed<S: SessionStore + Clone>(store: S) {
    let user = SessionId::generate().fingerprint();
    let ids: Vec<SessionId> = (0..50).map(|_| SessionId::generate()).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for id in ids.clone() {
        let (store, user) = (store.clone(), user.clone());
        tasks.spawn(async move { index::add(&store, &user, &id, SystemTime::now()).await });
    }
    while let Some(added) = tasks.join_next().await {
        added.unwrap().unwrap();
    }
    let members = index::members(&store, &user).await.unwrap();
    let mut listed: Vec<SessionId> = members.iter().map(|member| member.id).collect();
    let mut expected = ids;
    listed.sort();
    expected.sort();
    assert_eq!(
        listed.len(),
        50,
        "lost members: kept {} of 50",
        listed.len()
    );
    assert_eq!(listed, expected);
}

/// Members leave the index when removed; an index left without members is deleted, and
/// a removal never creates one. An index entry is told from a session by its keys.
pub async fn removed_members_leave_the_index<S: SessionStore>(store: S) {
    let user = SessionId::generate().fingerprint();
    let (a, b) = (SessionId::generate(), SessionId::generate());
    let bound_at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
    index::add(&store, &user, &a, bound_at).await.unwrap();
    index::add(&store, &user, &b, SystemTime::now())
        .await
        .unwrap();
    let members = index::members(&store, &user).await.unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(
        (members[0].id, members[0].bound_at),
        (a, bound_at),
        "oldest first, exact"
    );
    let entry = store
        .load(&index::index_id(&user), None)
        .await
        .unwrap()
        .unwrap();
    assert!(index::is_index(&entry.data));

    index::remove(&store, &user, &[a]).await.unwrap();
    let members = index::members(&store, &user).await.unwrap();
    assert_eq!(members.iter().map(|m| m.id).collect::<Vec<_>>(), [b]);
    index::remove(&store, &user, &[b]).await.unwrap();
    assert!(index::members(&store, &user).await.unwrap().is_empty());
    assert!(
        store
            .load(&index::index_id(&user), None)
            .await
            .unwrap()
            .is_none()
    );

    let nobody = SessionId::generate().fingerprint();
    index::remove(&store, &nobody, &[a]).await.unwrap();
    assert!(
        store
            .load(&index::index_id(&nobody), None)
            .await
            .unwrap()
            .is_none()
    );
}

/// A store that says it lists ([`Capabilities::listable`](crate::store::Capabilities))
/// pages through every live entry exactly once (at least once where
/// [`Capabilities::list_may_repeat`](crate::store::Capabilities) says so), whatever the
/// page size, and never lists an expired one; a store that does not answers
/// [`StoreError::Unsupported`](crate::StoreError::Unsupported), never a partial list.
pub async fn listing_pages_through_every_entry_once<S: SessionStore>(store: S) {
    if !store.capabilities().listable {
        let error = store.list(None, 10).await.unwrap_err();
        assert!(
            matches!(error, crate::StoreError::Unsupported(_)),
            "{error:?}"
        );
        return;
    }
    let ours: Vec<SessionId> = (0..57).map(|_| SessionId::generate()).collect();
    for id in &ours {
        store
            .save(id, &setting(&[("k", json!(1))]), in_secs(60))
            .await
            .unwrap();
    }
    let expired = SessionId::generate();
    store
        .save(&expired, &setting(&[("k", json!(1))]), in_secs(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The store may hold other entries (a shared server): only ours are counted.
    let wanted: std::collections::BTreeSet<SessionId> = ours.iter().copied().collect();
    for limit in [1, 7, 1000] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = store.list(cursor.as_deref(), limit).await.unwrap();
            assert!(
                page.entries.len() <= limit,
                "a page holds at most the limit"
            );
            for (id, record) in &page.entries {
                assert_ne!(*id, expired, "an expired entry is listed");
                if wanted.contains(id) {
                    assert_eq!(record.data.get("k"), Some(&json!(1)));
                    seen.push(*id);
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
            if limit == 1
                && seen.iter().collect::<std::collections::BTreeSet<_>>() == wanted.iter().collect()
            {
                // Enough to prove the paging; the shared store may hold many more.
                break;
            }
        }
        let unique: std::collections::BTreeSet<SessionId> = seen.iter().copied().collect();
        if !store.capabilities().list_may_repeat {
            assert_eq!(
                unique.len(),
                seen.len(),
                "an entry listed twice (page size {limit})"
            );
        }
        assert_eq!(unique, wanted, "entries missed (page size {limit})");
    }
}

/// Pruning an index drops the members whose session does not load, keeps the live ones,
/// and keeps a member bound moments ago (its save may be on its way).
pub async fn pruning_an_index_drops_dead_members_only<S: SessionStore>(store: S) {
    let user = SessionId::generate().fingerprint();
    let (live, dead, fresh) = (
        SessionId::generate(),
        SessionId::generate(),
        SessionId::generate(),
    );
    let long_ago = SystemTime::now() - Duration::from_secs(3600);
    let bound = setting(&[(index::USER_KEY, json!(user))]);
    store.save(&live, &bound, in_secs(60)).await.unwrap();
    index::add(&store, &user, &live, long_ago).await.unwrap();
    index::add(&store, &user, &dead, long_ago).await.unwrap();
    index::add(&store, &user, &fresh, SystemTime::now())
        .await
        .unwrap();
    let entry = index::index_id(&user);
    let data = stored(&store, &entry).await;
    assert_eq!(index::prune(&store, &entry, &data).await.unwrap(), 1);
    let mut members: Vec<SessionId> = index::members(&store, &user)
        .await
        .unwrap()
        .iter()
        .map(|member| member.id)
        .collect();
    members.sort();
    let mut expected = vec![live, fresh];
    expected.sort();
    assert_eq!(members, expected);
}

/// A store holding `count` more entries, saved through it, pages through all of them
/// exactly once, 1,000 a page; returns how many pages the walk took and how long. The
/// entries are deleted again afterwards.
///
/// Not part of [`conformance!`](crate::conformance), for its cost: each store's tests
/// run it once (100,000 entries for Satchel's own stores). Exactly once holds for a store
/// whose pages may repeat an entry too, as long as nothing deletes entries of the same
/// keyspace en masse during the walk: run it where that is so.
pub async fn a_large_store_lists_each_entry_once<S: SessionStore>(
    store: S,
    count: usize,
) -> (usize, Duration) {
    use futures_util::future::join_all;
    use std::collections::BTreeSet;

    let ids: Vec<SessionId> = (0..count).map(|_| SessionId::generate()).collect();
    let changes = setting(&[("k", json!(1))]);
    let expires_at = in_secs(3600);
    for chunk in ids.chunks(500) {
        let saves = chunk.iter().map(|id| store.save(id, &changes, expires_at));
        for saved in join_all(saves).await {
            assert_eq!(saved.unwrap(), Saved::Stored);
        }
    }
    let wanted: BTreeSet<SessionId> = ids.iter().copied().collect();
    let started = std::time::Instant::now();
    let (entries, pages) = walk(&store, 1000).await;
    let took = started.elapsed();
    // The store may hold other entries (a shared server): only ours are counted.
    let listed: Vec<SessionId> = entries
        .into_iter()
        .filter_map(|(id, record)| {
            wanted.contains(&id).then(|| {
                assert_eq!(record.data.get("k"), Some(&json!(1)));
                id
            })
        })
        .collect();
    let unique: BTreeSet<SessionId> = listed.iter().copied().collect();
    assert_eq!(unique.len(), listed.len(), "an entry listed twice");
    assert_eq!(unique.len(), wanted.len(), "entries missed");
    for chunk in ids.chunks(500) {
        for deleted in join_all(chunk.iter().map(|id| store.delete(id))).await {
            deleted.unwrap();
        }
    }
    (pages, took)
}

/// Cleanup of a store of its own (nothing else may write to it): three entries that
/// expired are never listed, [`delete_expired`](crate::ExpiredDeletion::delete_expired)
/// removes exactly them and says so, and the live one stays.
pub async fn cleanup_removes_expired_entries_and_counts_them<S: crate::ExpiredDeletion>(store: S) {
    let live = SessionId::generate();
    store
        .save(&live, &setting(&[("k", json!(1))]), in_secs(60))
        .await
        .unwrap();
    let expired: Vec<SessionId> = (0..3).map(|_| SessionId::generate()).collect();
    for id in &expired {
        store
            .save(id, &setting(&[("k", json!(1))]), in_secs(1))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    if store.capabilities().listable {
        let page = store.list(None, 100).await.unwrap();
        let listed: Vec<SessionId> = page.entries.iter().map(|(id, _)| *id).collect();
        assert_eq!(listed, vec![live], "only the live entry is listed");
    }
    assert_eq!(store.delete_expired().await.unwrap(), 3);
    assert_eq!(
        store.delete_expired().await.unwrap(),
        0,
        "nothing left to delete"
    );
    assert!(store.load(&live, None).await.unwrap().is_some());
}

/// The size budget used by the budget cases: large enough for either measure (keys and
/// JSON text, or MongoDB's BSON) to hold a small session and one 600-byte value, too
/// small for two.
const BUDGET: usize = 1000;

/// A change set that sets `key` to `value`, with [`BUDGET`], as the engine sends it.
fn budgeted(key: &str, value: serde_json::Value, existing: bool) -> Changes {
    let mut changes = Changes::default();
    changes.set(key, value);
    changes.limit_size(BUDGET);
    if existing {
        changes.require_existing();
    }
    changes
}

/// Whether `result` is a refusal for the size, naming [`BUDGET`] and a size over it.
fn is_too_large<T: std::fmt::Debug>(result: &Result<T, crate::StoreError>) -> bool {
    match result {
        Err(crate::StoreError::TooLarge { budget, size }) => {
            assert_eq!(*budget, BUDGET, "the refusal names the budget");
            assert!(
                *size > BUDGET,
                "the refusal names a size over the budget: {size}"
            );
            true
        }
        _ => false,
    }
}

/// A save, a conditional save, an id rotation and a compare-and-set that would take the
/// session over its change set's budget are refused with [`StoreError::TooLarge`] and
/// write nothing; one within the budget, and one that only removes keys (even from a
/// session over the budget), are applied.
///
/// [`StoreError::TooLarge`]: crate::StoreError::TooLarge
pub async fn a_save_over_the_budget_is_refused_and_writes_nothing<S: SessionStore>(store: S) {
    let big = json!("x".repeat(2 * BUDGET));
    let base = setting(&[("user", json!("ada"))]);

    // Onto nothing: nothing is created.
    let id = SessionId::generate();
    let result = store
        .save(&id, &budgeted("blob", big.clone(), false), in_secs(60))
        .await;
    assert!(is_too_large(&result), "refused onto nothing: {result:?}");
    assert!(
        store.load(&id, None).await.unwrap().is_none(),
        "nothing created"
    );
    // A change set for an existing entry, onto nothing: nothing to apply it onto comes
    // first, as without a budget.
    let result = store
        .save(&id, &budgeted("blob", big.clone(), true), in_secs(60))
        .await;
    assert!(
        matches!(result, Ok(Saved::Empty)),
        "an existing entry required, and none: {result:?}"
    );

    // Onto a stored session: the session stays as it was.
    store.save(&id, &base, in_secs(60)).await.unwrap();
    let result = store
        .save(&id, &budgeted("blob", big.clone(), true), in_secs(60))
        .await;
    assert!(
        is_too_large(&result),
        "refused onto the session: {result:?}"
    );
    assert_eq!(
        stored(&store, &id).await,
        Data::from([("user".into(), json!("ada"))])
    );

    // Sets that fit alone, onto a session they take over it, with or without requiring
    // an existing entry.
    let padded = SessionId::generate();
    let pad = json!("p".repeat(600));
    store
        .save(&padded, &setting(&[("pad", pad.clone())]), in_secs(60))
        .await
        .unwrap();
    for existing in [false, true] {
        let more = budgeted("more", json!("m".repeat(600)), existing);
        let result = store.save(&padded, &more, in_secs(60)).await;
        assert!(is_too_large(&result), "refused merge: {result:?}");
        assert_eq!(
            stored(&store, &padded).await,
            Data::from([("pad".into(), pad.clone())])
        );
    }

    // From the version seen (the uncontended save of a loaded session).
    let seen = store.load(&id, None).await.unwrap().unwrap();
    let changes = budgeted("blob", big.clone(), true);
    let mut data = seen.data.clone();
    changes.apply(&mut data);
    let view = Seen {
        version: seen.version.unwrap_or(0),
        data: &data,
        permanent: None,
        created: None,
        lifetime: None,
    };
    let result = store.save_seen(&id, view, &changes, in_secs(60)).await;
    assert!(
        is_too_large(&result),
        "refused from the version seen: {result:?}"
    );
    assert_eq!(stored(&store, &id).await, seen.data, "nothing written");

    // An id rotation: the entry stays under the old id, nothing under the new one.
    let new = SessionId::generate();
    let result = store
        .cycle(
            &id,
            &new,
            &budgeted("blob", big.clone(), true),
            in_secs(600),
        )
        .await;
    assert!(is_too_large(&result), "refused rotation: {result:?}");
    let after = store
        .load(&id, None)
        .await
        .unwrap()
        .expect("the old entry stays");
    assert_eq!(after.data, seen.data, "the old entry stays as it was");
    assert!(
        after.expires_at <= seen.expires_at + Duration::from_secs(1),
        "with its expiry"
    );
    assert!(
        store.load(&new, None).await.unwrap().is_none(),
        "nothing new"
    );

    // A compare-and-set that would cross it.
    let replace = KeyUpdate::Replace {
        expected: None,
        new: Some(big.clone()),
        max_size: Some(BUDGET),
    };
    let result = store.update(&id, "blob", &replace).await;
    assert!(is_too_large(&result), "refused update: {result:?}");
    assert_eq!(stored(&store, &id).await, seen.data, "nothing written");

    // Within the budget: applied.
    let fits = json!("y".repeat(BUDGET / 2));
    let saved = store
        .save(&id, &budgeted("half", fits.clone(), true), in_secs(60))
        .await
        .unwrap();
    assert_eq!(saved, Saved::Stored);
    assert_eq!(stored(&store, &id).await["half"], fits);

    // A session over the budget (stored without one) can always shrink.
    store
        .save(&id, &setting(&[("blob", big.clone())]), in_secs(60))
        .await
        .unwrap();
    let mut removal = Changes::default();
    removal.remove("half");
    removal.limit_size(BUDGET);
    removal.require_existing();
    assert_eq!(
        store.save(&id, &removal, in_secs(60)).await.unwrap(),
        Saved::Stored,
        "a removal is never refused"
    );
    let data = stored(&store, &id).await;
    assert_eq!(data.len(), 2, "user and blob are left");
    assert_eq!(data["blob"], big, "whole, never truncated");
}

/// Two change sets that each fit the budget, but not together, saved concurrently (and
/// then one after the other) onto one entry: exactly one lands, the other is refused
/// with [`StoreError::TooLarge`], and the entry holds the result of the one that landed,
/// whole.
///
/// [`StoreError::TooLarge`]: crate::StoreError::TooLarge
pub async fn a_concurrent_merge_that_crosses_the_budget_is_refused<S: SessionStore>(store: S) {
    let base = Data::from([("user".into(), json!("ada"))]);
    let a = json!("a".repeat(600));
    let b = json!("b".repeat(600));
    for concurrent in [true, false] {
        let id = SessionId::generate();
        store
            .save(&id, &setting(&[("user", json!("ada"))]), in_secs(60))
            .await
            .unwrap();
        let first = budgeted("a", a.clone(), true);
        let second = budgeted("b", b.clone(), true);
        let (one, two) = if concurrent {
            tokio::join!(
                store.save(&id, &first, in_secs(60)),
                store.save(&id, &second, in_secs(60)),
            )
        } else {
            let one = store.save(&id, &first, in_secs(60)).await;
            (one, store.save(&id, &second, in_secs(60)).await)
        };
        let data = stored(&store, &id).await;
        let mut with_a = base.clone();
        with_a.insert("a".into(), a.clone());
        let mut with_b = base.clone();
        with_b.insert("b".into(), b.clone());
        match (&one, &two) {
            (Ok(Saved::Stored), refused) if is_too_large(refused) => {
                assert_eq!(
                    data, with_a,
                    "the first landed whole, the second not at all"
                );
            }
            (refused, Ok(Saved::Stored)) if is_too_large(refused) => {
                assert!(concurrent, "one after the other, the second is refused");
                assert_eq!(
                    data, with_b,
                    "the second landed whole, the first not at all"
                );
            }
            _ => panic!("exactly one lands (concurrent: {concurrent}): {one:?}, {two:?}"),
        }
    }
}

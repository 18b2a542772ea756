//! The Redis store on real servers: standalone, a three-master Redis Cluster and a master
//! behind Redis Sentinel (`source scripts/services.sh` starts them and sets
//! SATCHEL_TEST_REDIS_URL, SATCHEL_TEST_REDIS_CLUSTER and SATCHEL_TEST_REDIS_SENTINEL), plus
//! private `redis-server` processes that the restart, pause, password and TLS tests start
//! and stop themselves.

#![cfg(all(
    feature = "redis",
    feature = "testing",
    feature = "axum",
    feature = "signed"
))]
#![allow(clippy::unwrap_used)]

mod common;
mod scenarios;

use std::future::Future;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Process, free_port};
use satchel::record::{KeyUpdate, Updated};
use satchel::store::redis::Topology;
use satchel::store::{BoxedStore, Saved};
use satchel::{
    Changes, ConfigError, RedisStore, SessionConfig, SessionId, SessionManager, SessionStore,
    SessionType, StoreError,
};
use scenarios::axum_app::Axum;
use scenarios::{App, Browser, Harness};
use serde_json::json;

/// The prefix of the test stores' keys, apart from the tests that use their own.
const PREFIX: &str = "satchel-test:";

/// One of the shared test deployments.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Standalone,
    Cluster,
    Sentinel,
}

impl Kind {
    fn variable(self) -> &'static str {
        match self {
            Self::Standalone => "SATCHEL_TEST_REDIS_URL",
            Self::Cluster => "SATCHEL_TEST_REDIS_CLUSTER",
            Self::Sentinel => "SATCHEL_TEST_REDIS_SENTINEL",
        }
    }

    /// The deployment's URL, or `None` (a panic in CI) when its variable is unset.
    fn url(self) -> Option<String> {
        let variable = self.variable();
        match std::env::var(variable) {
            Ok(url) if !url.is_empty() => Some(url),
            _ => satchel::testing::service_unavailable(
                &format!("Redis ({self:?})"),
                &format!("{variable} is unset (source scripts/services.sh)"),
            ),
        }
    }

    fn topology(self) -> Topology {
        match self {
            Self::Standalone => Topology::Standalone,
            Self::Cluster => Topology::Cluster,
            Self::Sentinel => Topology::Sentinel,
        }
    }
}

/// A store on the shared deployment, with `prefix`.
async fn store_with_prefix(kind: Kind, prefix: &str) -> Option<RedisStore> {
    let url = kind.url()?;
    let store = RedisStore::builder(url)
        .with_key_prefix(prefix)
        .open()
        .await
        .unwrap_or_else(|error| panic!("{kind:?}: {error}"));
    assert_eq!(store.topology(), kind.topology());
    Some(store)
}

async fn store(kind: Kind) -> Option<RedisStore> {
    store_with_prefix(kind, PREFIX).await
}

/// A plain connection to where the sessions of `kind` live, to look behind the store.
enum Raw {
    Plain(redis::aio::MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl Raw {
    async fn open(kind: Kind) -> Self {
        let url = kind.url().unwrap();
        match kind {
            Kind::Standalone => Self::Plain(plain(&url).await),
            Kind::Cluster => {
                let hosts = url.split_once("://").unwrap().1;
                let nodes: Vec<String> = hosts.split(',').map(|h| format!("redis://{h}")).collect();
                let client = redis::cluster::ClusterClient::new(nodes).unwrap();
                Self::Cluster(client.get_async_connection().await.unwrap())
            }
            Kind::Sentinel => {
                let rest = url.split_once("://").unwrap().1;
                let (hosts, master) = rest.split_once('/').unwrap();
                let sentinel = hosts.split(',').next().unwrap();
                let mut conn = plain(&format!("redis://{sentinel}")).await;
                let (host, port): (String, u16) = redis::cmd("SENTINEL")
                    .arg("get-master-addr-by-name")
                    .arg(master)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                Self::Plain(plain(&format!("redis://{host}:{port}")).await)
            }
        }
    }

    async fn query<T: redis::FromRedisValue>(&mut self, command: &mut redis::Cmd) -> T {
        match self {
            Self::Plain(conn) => command.query_async(conn).await.unwrap(),
            Self::Cluster(conn) => command.query_async(conn).await.unwrap(),
        }
    }

    /// The value at `key`.
    async fn value(&mut self, key: &str) -> Vec<u8> {
        self.query(redis::cmd("GET").arg(key)).await
    }

    /// The remaining time to live of `key`, in milliseconds.
    async fn pttl(&mut self, key: &str) -> i64 {
        self.query(redis::cmd("PTTL").arg(key)).await
    }
}

async fn plain(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

fn in_secs(secs: u64) -> SystemTime {
    SystemTime::now() + Duration::from_secs(secs)
}

fn unix_millis(at: SystemTime) -> u64 {
    u64::try_from(at.duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

fn setting(pairs: &[(&str, serde_json::Value)]) -> Changes {
    let mut changes = Changes::default();
    for (key, value) in pairs {
        changes.set(*key, value.clone());
    }
    changes
}

/// Where a stored value's header ends and its data starts.
const HEADER: usize = 65;

/// The header's expiry in a stored value.
/// Polls `future` once, with a waker that does nothing.
fn poll_once<F: Future + Unpin>(future: &mut F) -> std::task::Poll<F::Output> {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    std::pin::Pin::new(future).poll(&mut context)
}

fn expiry_text(value: &[u8]) -> &[u8] {
    &value[2..18]
}

/// Tests that run on every deployment.
mod cases {
    use super::*;

    pub(crate) async fn fifty_concurrent_requests_keep_all_fifty_keys(kind: Kind) {
        let Some(store) = store(kind).await else {
            return;
        };
        let app = App::new(store, SessionConfig::default());
        let kept = scenarios::race(&Axum, &app).await;
        eprintln!("race on Redis {kind:?}: {kept} of 50 keys kept");
        assert_eq!(kept, 50);
    }

    pub(crate) async fn a_store_of_100000_sessions_lists_each_once(kind: Kind) {
        // Keys of their own: the walk meets the other tests' keys but counts only these.
        let prefix = format!("satchel-large-{}:", SessionId::generate());
        let Some(store) = store_with_prefix(kind, &prefix).await else {
            return;
        };
        let started = Instant::now();
        let (pages, took) =
            satchel::testing::cases::a_large_store_lists_each_entry_once(store, 100_000).await;
        eprintln!(
            "Redis {kind:?}: 100000 sessions listed once each in {pages} pages, in {took:.1?} \
             ({:.1?} with the saves and deletes)",
            started.elapsed()
        );
    }

    pub(crate) async fn the_key_prefix_is_applied(kind: Kind) {
        let prefix = format!("satchel-prefix-{}:", SessionId::generate());
        let Some(store) = store_with_prefix(kind, &prefix).await else {
            return;
        };
        assert_eq!(store.key_prefix(), prefix);
        let id = SessionId::generate();
        store
            .save(&id, &setting(&[("a", json!(1))]), in_secs(60))
            .await
            .unwrap();
        let key = format!("{prefix}{id}");
        let mut raw = Raw::open(kind).await;
        let exists: i64 = raw.query(redis::cmd("EXISTS").arg(&key)).await;
        assert_eq!(exists, 1);
        let keys: Vec<String> = raw
            .query(redis::cmd("KEYS").arg(format!("{prefix}*")))
            .await;
        assert_eq!(keys, [key.as_str()]);
        // A store with another prefix does not see it.
        let other = store_with_prefix(kind, PREFIX).await.unwrap();
        assert!(other.load(&id, None).await.unwrap().is_none());
        store.delete(&id).await.unwrap();
        let exists: i64 = raw.query(redis::cmd("EXISTS").arg(&key)).await;
        assert_eq!(exists, 0);
    }

    pub(crate) async fn the_native_ttl_follows_the_expiry_and_a_touch_moves_only_the_expiry(
        kind: Kind,
    ) {
        let Some(store) = store(kind).await else {
            return;
        };
        let id = SessionId::generate();
        let key = format!("{PREFIX}{id}");
        let changes = setting(&[("a", json!(1)), ("b", json!({"deep": [1, 2]}))]);
        store.save(&id, &changes, in_secs(30)).await.unwrap();
        let mut raw = Raw::open(kind).await;
        let ttl = raw.pttl(&key).await;
        assert!((25_000..=30_000).contains(&ttl), "PTTL {ttl}");
        let before = raw.value(&key).await;
        assert_eq!(
            &before[HEADER..],
            br#"{
"a":1,
"b":{"deep":[1,2]}}"#
        );

        let touched = store.load(&id, Some(in_secs(120))).await.unwrap().unwrap();
        assert!(touched.expires_at > in_secs(110));
        let ttl = raw.pttl(&key).await;
        assert!(
            ttl > 110_000,
            "the touch extends the native TTL: PTTL {ttl}"
        );
        let after = raw.value(&key).await;
        assert_eq!(after[HEADER..], before[HEADER..], "data untouched");
        assert_eq!(
            after[18..HEADER],
            before[18..HEADER],
            "the rest of the header too"
        );
        assert_ne!(expiry_text(&after), expiry_text(&before));
        assert_eq!(after.len(), before.len());

        // A touch never shortens the lifetime.
        store.load(&id, Some(in_secs(10))).await.unwrap().unwrap();
        assert!(raw.pttl(&key).await > 100_000);
    }

    pub(crate) async fn expiry_is_checked_on_load_whatever_the_ttl(kind: Kind) {
        let Some(store) = store(kind).await else {
            return;
        };
        let id = SessionId::generate();
        let key = format!("{PREFIX}{id}");
        store
            .save(&id, &setting(&[("a", json!(1))]), in_secs(60))
            .await
            .unwrap();
        // The stored expiry has passed, but Redis would keep the key another minute.
        let mut raw = Raw::open(kind).await;
        let past = unix_millis(SystemTime::now()) - 1_000;
        let mut value = raw.value(&key).await;
        value.splice(2..18, format!("{past:016}").into_bytes());
        let _: () = raw
            .query(redis::cmd("SET").arg(&key).arg(value).arg("PX").arg(60_000))
            .await;
        assert!(store.load(&id, None).await.unwrap().is_none());
        assert!(store.load(&id, Some(in_secs(60))).await.unwrap().is_none());
        assert!(
            raw.pttl(&key).await <= 60_000,
            "the touch did not revive it"
        );
        // A save onto the expired entry starts from nothing.
        store
            .save(&id, &setting(&[("b", json!(2))]), in_secs(60))
            .await
            .unwrap();
        let record = store.load(&id, None).await.unwrap().unwrap();
        assert_eq!(record.data.keys().collect::<Vec<_>>(), ["b"]);
    }

    pub(crate) async fn a_corrupt_entry_is_a_decode_error_and_a_fresh_session(kind: Kind) {
        let Some(store) = store(kind).await else {
            return;
        };
        let mut raw = Raw::open(kind).await;
        let id = SessionId::generate();
        let key = format!("{PREFIX}{id}");
        store
            .save(&id, &setting(&[("a", json!(1))]), in_secs(60))
            .await
            .unwrap();
        let mut value = raw.value(&key).await;
        value.truncate(HEADER);
        value.extend_from_slice(b"{not json");
        let _: () = raw.query(redis::cmd("SET").arg(&key).arg(value)).await;
        assert!(matches!(
            store.load(&id, None).await,
            Err(StoreError::Decode(_))
        ));
        // Through HTTP: a fresh session under a new id, not a 500.
        let app = App::new(store.clone(), SessionConfig::default());
        let mut browser = Browser::new(&Axum, &app);
        browser.cookie = Some(id.to_string());
        let reply = browser.get("/read").await;
        assert_eq!((reply.status, reply.body.as_str()), (200, "0"));
        browser.cookie = Some(id.to_string());
        assert_eq!(browser.post("/set/k").await.status, 200);
        assert_ne!(browser.id(), id);

        // Something that is not a session value at a session key is corrupt too: a
        // string of another layout, or another type.
        let other = SessionId::generate();
        let list = SessionId::generate();
        let _: () = raw
            .query(
                redis::cmd("SET")
                    .arg(format!("{PREFIX}{other}"))
                    .arg("x")
                    .arg("EX")
                    .arg(60),
            )
            .await;
        let _: i64 = raw
            .query(redis::cmd("RPUSH").arg(format!("{PREFIX}{list}")).arg("x"))
            .await;
        for id in [other, list] {
            assert!(matches!(
                store.load(&id, None).await,
                Err(StoreError::Decode(_))
            ));
            assert!(matches!(
                store.load(&id, Some(in_secs(60))).await,
                Err(StoreError::Decode(_))
            ));
            assert!(matches!(
                store.update(&id, "n", &KeyUpdate::Increment(1)).await,
                Err(StoreError::Decode(_))
            ));
        }
        // An id rotation leaves it where it is, and starts from nothing.
        let moved = SessionId::generate();
        assert_eq!(
            store
                .cycle(&list, &moved, &setting(&[("a", json!(1))]), in_secs(60))
                .await
                .unwrap(),
            Saved::Stored
        );
        let kind_of: String = raw
            .query(redis::cmd("TYPE").arg(format!("{PREFIX}{list}")))
            .await;
        assert_eq!(kind_of, "list");
        assert_eq!(
            store.load(&moved, None).await.unwrap().unwrap().data.len(),
            1
        );
        // A save replaces it, except one that only applies onto a live entry.
        let mut onto_live = setting(&[("a", json!(1))]);
        onto_live.require_existing();
        assert_eq!(
            store.save(&other, &onto_live, in_secs(60)).await.unwrap(),
            Saved::Empty
        );
        let exists: i64 = raw
            .query(redis::cmd("EXISTS").arg(format!("{PREFIX}{other}")))
            .await;
        assert_eq!(exists, 0, "the foreign value was deleted, nothing written");
        let _: () = raw
            .query(redis::cmd("SET").arg(format!("{PREFIX}{other}")).arg("x"))
            .await;
        assert_eq!(
            store
                .save(&other, &setting(&[("a", json!(2))]), in_secs(60))
                .await
                .unwrap(),
            Saved::Stored
        );
        assert_eq!(
            store.load(&other, None).await.unwrap().unwrap().data["a"],
            json!(2)
        );
    }

    /// A session hash of the layout before this one (a field per key, the store's own
    /// fields behind a NUL byte) is read as it was, and converted in place by its first
    /// load, save or update, keeping its TTL.
    pub(crate) async fn a_session_hash_of_the_earlier_layout_is_converted(kind: Kind) {
        let Some(store) = store(kind).await else {
            return;
        };
        let mut raw = Raw::open(kind).await;
        let expires = unix_millis(in_secs(60));
        let created = unix_millis(SystemTime::now()) - 5_000;
        let legacy = |id: SessionId| {
            let mut command = redis::cmd("HSET");
            command
                .arg(format!("{PREFIX}{id}"))
                .arg("user")
                .arg(r#""ada""#)
                .arg("n")
                .arg("41")
                .arg("say \"hi\"\n\u{1}\\")
                .arg("[1,{\"a\":null}]")
                .arg(&b"\0\0own"[..])
                .arg("true")
                .arg(&b"\0expires"[..])
                .arg(expires)
                .arg(&b"\0permanent"[..])
                .arg("1")
                .arg(&b"\0created"[..])
                .arg(created)
                .arg(&b"\0lifetime"[..])
                .arg(3_600);
            command
        };
        let expected = |record: &satchel::Record| {
            assert_eq!(record.data["user"], json!("ada"));
            assert_eq!(record.data["say \"hi\"\n\u{1}\\"], json!([1, {"a": null}]));
            assert_eq!(record.data["\0own"], json!(true));
            assert_eq!(record.permanent, Some(true));
            assert_eq!(unix_millis(record.created.unwrap()), created);
            assert_eq!(record.lifetime, Some(Duration::from_secs(3_600)));
            assert_eq!(unix_millis(record.expires_at), expires);
        };
        let [read, saved, updated] = [(); 3].map(|()| SessionId::generate());
        for id in [read, saved, updated] {
            let _: i64 = raw.query(&mut legacy(id)).await;
            let _: i64 = raw
                .query(
                    redis::cmd("PEXPIREAT")
                        .arg(format!("{PREFIX}{id}"))
                        .arg(expires),
                )
                .await;
        }

        let record = store.load(&read, None).await.unwrap().unwrap();
        expected(&record);
        assert_eq!(record.data["n"], json!(41));
        let mut changes = setting(&[("n", json!(42))]);
        changes.remove("user");
        changes.require_existing();
        assert_eq!(
            store.save(&saved, &changes, in_secs(90)).await.unwrap(),
            Saved::Stored
        );
        assert_eq!(
            store
                .update(&updated, "n", &KeyUpdate::Increment(1))
                .await
                .unwrap(),
            Updated::Applied(Some(json!(42)))
        );
        for id in [read, saved, updated] {
            let key = format!("{PREFIX}{id}");
            let kind_of: String = raw.query(redis::cmd("TYPE").arg(&key)).await;
            assert_eq!(kind_of, "string", "converted");
            let ttl = raw.pttl(&key).await;
            assert!(ttl > 50_000, "PTTL {ttl}");
            let mut record = store.load(&id, None).await.unwrap().unwrap();
            assert_eq!(record.data["n"], json!(if id == read { 41 } else { 42 }));
            if id == saved {
                assert!(!record.data.contains_key("user"));
                assert!(record.expires_at > in_secs(80));
                record.data.insert("user".into(), json!("ada"));
                record.expires_at = UNIX_EPOCH + Duration::from_millis(expires);
            }
            expected(&record);
        }
    }

    /// The script adds integers of up to 15 digits itself; Satchel adds longer ones, and
    /// refuses a sum out of the 64-bit range.
    pub(crate) async fn increments_of_long_integers_are_exact(kind: Kind) {
        let Some(store) = store(kind).await else {
            return;
        };
        let id = SessionId::generate();
        let big = 999_999_999_999_999_999_i64;
        store
            .save(
                &id,
                &setting(&[("n", json!(big)), ("m", json!(1))]),
                in_secs(60),
            )
            .await
            .unwrap();
        let update = |key: &'static str, by| {
            let store = store.clone();
            async move {
                store
                    .update(&id, key, &KeyUpdate::Increment(by))
                    .await
                    .unwrap()
            }
        };
        assert_eq!(update("n", 1).await, Updated::Applied(Some(json!(big + 1))));
        assert_eq!(
            update("m", 4_000_000_000_000_000_000).await,
            Updated::Applied(Some(json!(4_000_000_000_000_000_001_i64)))
        );
        assert_eq!(
            update("m", i64::MAX).await,
            Updated::Invalid(Some(json!(4_000_000_000_000_000_001_i64)))
        );
        assert_eq!(
            update("n", -2 * big).await,
            Updated::Applied(Some(json!(-big + 1)))
        );
        assert_eq!(
            update("fresh", 999_999_999_999_999).await,
            Updated::Applied(Some(json!(999_999_999_999_999_i64)))
        );
        let record = store.load(&id, None).await.unwrap().unwrap();
        assert_eq!(record.data["n"], json!(-big + 1));
        assert_eq!(record.data["fresh"], json!(999_999_999_999_999_i64));
    }

    /// Many concurrent plain loads, which the store sends in batches: each gets its own
    /// entry, and a key of the earlier layout, a key of another type and a missing key
    /// each get their own outcome without touching the others'.
    pub(crate) async fn concurrent_reads_each_get_their_own_entry(kind: Kind) {
        let Some(store) = store(kind).await else {
            return;
        };
        let mut raw = Raw::open(kind).await;
        let ids: Vec<SessionId> = (0..100).map(|_| SessionId::generate()).collect();
        for (i, id) in ids.iter().enumerate() {
            store
                .save(id, &setting(&[("i", json!(i))]), in_secs(60))
                .await
                .unwrap();
        }
        let [legacy, foreign, missing] = [(); 3].map(|()| SessionId::generate());
        let _: i64 = raw
            .query(
                redis::cmd("HSET")
                    .arg(format!("{PREFIX}{legacy}"))
                    .arg("n")
                    .arg("7")
                    .arg(&b"\0expires"[..])
                    .arg(unix_millis(in_secs(60))),
            )
            .await;
        let _: i64 = raw
            .query(
                redis::cmd("RPUSH")
                    .arg(format!("{PREFIX}{foreign}"))
                    .arg("x"),
            )
            .await;

        let mut reads = tokio::task::JoinSet::new();
        for round in 0..3 {
            for (i, id) in ids.iter().enumerate() {
                let (store, id) = (store.clone(), *id);
                reads.spawn(async move { (Some(i), round, store.load(&id, None).await) });
            }
            for id in [legacy, foreign, missing] {
                let store = store.clone();
                reads
                    .spawn(async move { (None, round, store.load(&id, None).await.map(|_| None)) });
            }
        }
        let (mut own, mut others) = (0, 0);
        while let Some(read) = reads.join_next().await {
            match read.unwrap() {
                (Some(i), _, loaded) => {
                    let record = loaded.unwrap().expect("a saved entry");
                    assert_eq!(record.data["i"], json!(i), "another session's entry");
                    own += 1;
                }
                (None, _, _) => others += 1,
            }
        }
        assert_eq!((own, others), (300, 9));

        // Read again, each outcome known.
        let record = store.load(&legacy, None).await.unwrap().unwrap();
        assert_eq!(
            record.data["n"],
            json!(7),
            "the earlier layout is converted"
        );
        assert!(matches!(
            store.load(&foreign, None).await,
            Err(satchel::StoreError::Decode(_))
        ));
        assert!(store.load(&missing, None).await.unwrap().is_none());
        let mut reads = tokio::task::JoinSet::new();
        for id in [legacy, foreign, missing] {
            let store = store.clone();
            reads.spawn(async move { (id, store.load(&id, None).await) });
        }
        while let Some(read) = reads.join_next().await {
            let (id, loaded) = read.unwrap();
            match loaded {
                Ok(Some(record)) => {
                    assert_eq!(id, legacy);
                    assert_eq!(record.data["n"], json!(7));
                }
                Ok(None) => assert_eq!(id, missing),
                Err(satchel::StoreError::Decode(_)) => assert_eq!(id, foreign),
                Err(error) => panic!("{error}"),
            }
        }
    }

    /// A load that joined a batch whose leading load was then dropped (its request went
    /// away before the batch was sent) is answered all the same.
    pub(crate) async fn a_read_whose_batch_lost_its_lead_is_answered(kind: Kind) {
        let Some(store) = store(kind).await else {
            return;
        };
        let [busy, lead, joined] = [(); 3].map(|()| SessionId::generate());
        for (i, id) in [busy, lead, joined].iter().enumerate() {
            store
                .save(id, &setting(&[("i", json!(i))]), in_secs(60))
                .await
                .unwrap();
        }
        // A read under way, so that the next ones batch; then a batch's lead, and a read
        // that joins its batch; then the lead goes.
        let mut busy_read = Box::pin(store.load(&busy, None));
        let mut lead_read = Box::pin(store.load(&lead, None));
        let mut joined_read = Box::pin(store.load(&joined, None));
        assert!(poll_once(&mut busy_read).is_pending());
        assert!(poll_once(&mut lead_read).is_pending());
        assert!(poll_once(&mut joined_read).is_pending());
        drop(lead_read);
        let record = tokio::time::timeout(Duration::from_secs(5), joined_read)
            .await
            .expect("the joined read does not hang")
            .unwrap()
            .unwrap();
        assert_eq!(record.data["i"], json!(2));
        assert_eq!(busy_read.await.unwrap().unwrap().data["i"], json!(0));
        // The store batches as before.
        let (a, b) = tokio::join!(store.load(&lead, None), store.load(&joined, None));
        assert_eq!(a.unwrap().unwrap().data["i"], json!(1));
        assert_eq!(b.unwrap().unwrap().data["i"], json!(2));
    }

    pub(crate) async fn keys_that_look_like_the_store_fields_are_kept_apart(kind: Kind) {
        let Some(store) = store(kind).await else {
            return;
        };
        let id = SessionId::generate();
        let changes = setting(&[("\0expires", json!("mine")), ("\0permanent", json!(0))]);
        store.save(&id, &changes, in_secs(60)).await.unwrap();
        let record = store.load(&id, None).await.unwrap().unwrap();
        assert_eq!(record.data["\0expires"], json!("mine"));
        assert_eq!(record.data["\0permanent"], json!(0));
        assert_eq!(record.permanent, None);
        assert!(record.expires_at > in_secs(50));
        let mut removal = Changes::default();
        removal.remove("\0expires");
        removal.remove("\0permanent");
        assert_eq!(
            store.save(&id, &removal, in_secs(60)).await.unwrap(),
            Saved::Empty
        );
    }
}

macro_rules! deployment {
    ($name:ident, $kind:expr) => {
        deployment!(@cases $name, $kind;
            fifty_concurrent_requests_keep_all_fifty_keys,
            a_store_of_100000_sessions_lists_each_once,
            the_key_prefix_is_applied,
            the_native_ttl_follows_the_expiry_and_a_touch_moves_only_the_expiry,
            expiry_is_checked_on_load_whatever_the_ttl,
            a_corrupt_entry_is_a_decode_error_and_a_fresh_session,
            a_session_hash_of_the_earlier_layout_is_converted,
            increments_of_long_integers_are_exact,
            keys_that_look_like_the_store_fields_are_kept_apart,
            concurrent_reads_each_get_their_own_entry,
            a_read_whose_batch_lost_its_lead_is_answered,
        );
    };
    (@cases $name:ident, $kind:expr; $($case:ident),* $(,)?) => {
        mod $name {
            use super::*;

            satchel::conformance!(conformance, store($kind));
            #[cfg(feature = "flask")]
            satchel::conformance!(flask_conformance, async {
                satchel::testing::flask(store($kind).await)
            });
            #[cfg(feature = "sealed")]
            satchel::conformance!(sealed_conformance, async {
                satchel::testing::sealed(store($kind).await)
            });

            mod http {
                use super::*;
                scenarios!(Axum, store($kind));
            }

            /// The same scenarios through the actix-web middleware.
            #[cfg(feature = "actix")]
            mod actix_http {
                use super::*;
                use crate::scenarios::actix_app::Actix;
                scenarios!(Actix, store($kind));
            }

            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    cases::$case($kind).await;
                }
            )*
        }
    };
}

deployment!(standalone, Kind::Standalone);
deployment!(cluster, Kind::Cluster);
deployment!(sentinel, Kind::Sentinel);

/// The store as `satchel serve` builds it: from SESSION_TYPE=redis and SESSION_REDIS alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_type_redis_builds_the_store_from_configuration_alone() {
    for kind in [Kind::Standalone, Kind::Cluster, Kind::Sentinel] {
        let Some(url) = kind.url() else { return };
        let config = SessionConfig::default()
            .apply("SESSION_TYPE", "redis")
            .unwrap()
            .apply("SESSION_REDIS", &url)
            .unwrap()
            .apply("SESSION_KEY_PREFIX", "satchel-config:")
            .unwrap();
        assert_eq!(config.session_type(), SessionType::Redis);
        let store: BoxedStore = satchel::store::from_config(&config).await.unwrap();
        let app = App::new(store, config);
        let mut browser = Browser::new(&Axum, &app);
        browser.post("/login?uid=31").await;
        assert_eq!(browser.get("/read").await.body, "31", "{kind:?}");
        let key = format!("satchel-config:{}", browser.id());
        let exists: i64 = Raw::open(kind)
            .await
            .query(redis::cmd("EXISTS").arg(&key))
            .await;
        assert_eq!(exists, 1, "{kind:?}");
    }
}

#[tokio::test]
async fn malformed_urls_are_refused_naming_the_key_and_masking_the_password() {
    for url in [
        "cache:6379",
        "http://user:hunter2@cache",
        "redis+sentinel://user:hunter2@s1:26379",
        "redis+cluster://user:hunter2@a:1,,b:2",
        "redis+cluster://user:hunter2@a:1,b:2/3",
        "redis://user:hunter2@cache/not-a-db",
    ] {
        let config = SessionConfig::default().with_redis_url(url);
        let error = RedisStore::from_config(&config).await.unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, ConfigError::Invalid { ref key, .. } if key == "SESSION_REDIS"),
            "{url}: {error:?}"
        );
        assert!(!message.contains("hunter2"), "{message}");
    }
}

#[tokio::test]
async fn an_unreachable_server_fails_at_startup_within_the_timeout() {
    let port = free_port();
    let started = Instant::now();
    let config = SessionConfig::default()
        .with_redis_url(format!("redis://:hunter2@127.0.0.1:{port}"))
        .with_store_timeout(Duration::from_millis(500));
    let error = RedisStore::from_config(&config).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(error, ConfigError::Io { ref key, .. } if key == "SESSION_REDIS"),
        "{error:?}"
    );
    assert!(!error.to_string().contains("hunter2"), "{error}");
}

/// A `redis-server` of the test's own on a free loopback port, killed when dropped.
struct Private {
    process: Process,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Private {
    /// Starts a server without persistence, with `args` added (`{port}` in them stands
    /// for the server's port), or `None` (a panic in CI) without `redis-server`.
    fn start(args: &[&str]) -> Option<Self> {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let mut all: Vec<String> = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            .iter()
            .map(|a| (*a).to_owned())
            .collect();
        all.extend(["--dir".to_owned(), dir.path().to_str().unwrap().to_owned()]);
        if !args.contains(&"--port") {
            all.extend(["--port".to_owned(), port.to_string()]);
        }
        all.extend(args.iter().map(|a| a.replace("{port}", &port.to_string())));
        Self::run(port, all, dir)
    }

    /// Starts a sentinel that watches the master at `master_port` under the name `name`.
    fn sentinel(name: &str, master_port: u16) -> Option<Self> {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("sentinel.conf");
        let text = format!(
            "port {port}\nbind 127.0.0.1\ndir {}\n\
             sentinel monitor {name} 127.0.0.1 {master_port} 1\n\
             sentinel down-after-milliseconds {name} 1000\n\
             sentinel failover-timeout {name} 5000\n",
            dir.path().display()
        );
        std::fs::write(&config, text).unwrap();
        let args = vec![config.to_str().unwrap().to_owned(), "--sentinel".to_owned()];
        Self::run(port, args, dir)
    }

    fn run(port: u16, args: Vec<String>, dir: tempfile::TempDir) -> Option<Self> {
        match Process::start("redis-server", args, port, Duration::from_secs(10)) {
            Ok(process) => Some(Self {
                process,
                port,
                _dir: dir,
            }),
            Err(error) => satchel::testing::service_unavailable("redis-server", &error),
        }
    }

    /// Starts the server again on its port and waits until it accepts connections.
    fn spawn(&mut self) -> Result<(), String> {
        self.process.restart(Duration::from_secs(10))
    }

    fn signal(&self, signal: &str) {
        common::signal(self.process.pid().unwrap(), signal);
    }

    fn kill(&mut self) {
        self.process.stop();
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

/// A configuration whose store operations give up after `timeout`.
fn configured(url: &str, timeout: Duration) -> SessionConfig {
    SessionConfig::default()
        .with_session_type(SessionType::Redis)
        .with_redis_url(url)
        .with_store_timeout(timeout)
}

/// Asserts that a request answers an empty 500 that keeps the cookie.
async fn fails_empty(app: &App, method: &str, path: &str, cookie: &str) {
    let header = format!("session={cookie}");
    let reply = Axum.request(app, method, path, Some(&header)).await;
    assert_eq!(reply.status, 500, "{method} {path}");
    assert_eq!(reply.body, "", "{method} {path}");
    assert!(reply.set_cookie.is_empty(), "{method} {path}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_works_again_by_itself_after_the_server_restarts() {
    let Some(mut server) = Private::start(&[]) else {
        return;
    };
    let timeout = Duration::from_secs(1);
    let config = configured(&server.url(), timeout);
    let store = RedisStore::from_config(&config).await.unwrap();
    let app = App::new(store.clone(), config);
    let mut browser = Browser::new(&Axum, &app);
    browser.post("/login?uid=7").await;
    assert_eq!(browser.get("/read").await.body, "7");
    let cookie = browser.cookie.clone().unwrap();
    let id = browser.id();

    server.kill();
    let health = SessionManager::new(store.clone(), SessionConfig::default())
        .unwrap()
        .health()
        .await;
    assert!(!health.is_ok(), "a server that is gone is not healthy");
    let started = Instant::now();
    assert!(matches!(
        store.load(&id, None).await,
        Err(StoreError::Backend(_))
    ));
    let elapsed = started.elapsed();
    assert!(
        elapsed < timeout + Duration::from_millis(500),
        "{elapsed:?}"
    );
    assert!(matches!(
        store
            .save(&id, &setting(&[("k", json!(1))]), in_secs(60))
            .await,
        Err(StoreError::Backend(_))
    ));
    assert!(matches!(
        store.delete(&id).await,
        Err(StoreError::Backend(_))
    ));
    for (method, path) in [("GET", "/read"), ("POST", "/write"), ("POST", "/logout")] {
        fails_empty(&app, method, path, &cookie).await;
    }
    // A request without a session never reaches the store.
    assert_eq!(Axum.request(&app, "GET", "/none", None).await.status, 200);

    server.spawn().unwrap();
    // The same store, not rebuilt: the very first request after the restart succeeds.
    // The restarted server is empty (no persistence), so the old session is gone.
    let header = format!("session={cookie}");
    let reply = Axum.request(&app, "GET", "/read", Some(&header)).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "0"));
    let mut browser = Browser::new(&Axum, &app);
    assert_eq!(browser.post("/login?uid=8").await.status, 200);
    assert_eq!(browser.post("/write").await.body, "1");
    assert_eq!(browser.get("/read").await.body, "8");
    assert!(store.load(&browser.id(), None).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_answering_fails_fast_and_loses_nothing() {
    let Some(server) = Private::start(&[]) else {
        return;
    };
    let timeout = Duration::from_millis(800);
    let config = configured(&server.url(), timeout);
    let store = RedisStore::from_config(&config).await.unwrap();
    let manager = SessionManager::new(store.clone(), config.clone()).unwrap();
    let app = App::new(store.clone(), config);
    let mut browser = Browser::new(&Axum, &app);
    browser.post("/login?uid=5").await;
    assert_eq!(browser.post("/write").await.body, "1");
    let cookie = browser.cookie.clone().unwrap();
    let health = manager.health().await;
    assert!(health.is_ok(), "{:?}", health.error);

    server.signal("-STOP");
    let started = Instant::now();
    fails_empty(&app, "POST", "/write", &cookie).await;
    fails_empty(&app, "GET", "/read", &cookie).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < 2 * timeout + Duration::from_millis(800),
        "{elapsed:?}"
    );
    // The health check fails too, within the store's timeout, and says why.
    let health = manager.health().await;
    let reason = health.reason().expect("a stopped server is not healthy");
    // The client's own response timeout (set to the store's) or the store's bound.
    assert!(
        reason.contains("timed out") || reason.contains("did not answer"),
        "{reason}"
    );
    assert!(
        health.took < timeout + Duration::from_millis(500),
        "{:?}",
        health.took
    );
    server.signal("-CONT");

    // Nothing was overwritten, and the store answers again.
    assert_eq!(browser.get("/read").await.body, "5");
    assert_eq!(browser.post("/write").await.body, "2");
    let health = manager.health().await;
    assert!(health.is_ok(), "{:?}", health.error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_on_a_server_that_stops_answering_and_closes_when_it_is_back() {
    let Some(server) = Private::start(&[]) else {
        return;
    };
    let timeout = Duration::from_millis(800);
    let config = configured(&server.url(), timeout);
    let store = RedisStore::from_config(&config).await.unwrap();
    scenarios::the_breaker_guards_a_store_that_stops_answering(
        BoxedStore::new(store),
        timeout,
        || server.signal("-STOP"),
        || server.signal("-CONT"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_the_url_are_used_and_never_shown() {
    let Some(server) = Private::start(&["--requirepass", "hunter2"]) else {
        return;
    };
    let url = format!("redis://:hunter2@127.0.0.1:{}/1", server.port);
    let store = RedisStore::connect(&url).await.unwrap();
    assert!(!format!("{store:?}").contains("hunter2"), "{store:?}");
    let id = SessionId::generate();
    store
        .save(&id, &setting(&[("a", json!(1))]), in_secs(60))
        .await
        .unwrap();
    assert!(store.load(&id, None).await.unwrap().is_some());

    let wrong = format!("redis://:wrong-hunter2@127.0.0.1:{}/1", server.port);
    let config = SessionConfig::default().with_redis_url(wrong);
    let error = RedisStore::from_config(&config).await.unwrap_err();
    assert!(matches!(error, ConfigError::Io { .. }), "{error:?}");
    assert!(!error.to_string().contains("hunter2"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_connects_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !made.is_ok_and(|status| status.success()) {
        satchel::testing::service_unavailable::<()>("openssl", "cannot make a test certificate");
        return;
    }
    let Some(server) = Private::start(&[
        "--port",
        "0",
        "--tls-port",
        "{port}",
        "--tls-cert-file",
        cert.to_str().unwrap(),
        "--tls-key-file",
        key.to_str().unwrap(),
        "--tls-auth-clients",
        "no",
    ]) else {
        return;
    };
    // The certificate is self-signed: `#insecure` skips its verification.
    let url = format!("rediss://localhost:{}/0#insecure", server.port);
    let store = RedisStore::connect(&url).await.unwrap();
    let id = SessionId::generate();
    store
        .save(&id, &setting(&[("over", json!("tls"))]), in_secs(60))
        .await
        .unwrap();
    let record = store.load(&id, Some(in_secs(120))).await.unwrap().unwrap();
    assert_eq!(record.data["over"], json!("tls"));
    // Verified against the system's roots, the self-signed certificate is refused.
    let verified = format!("rediss://localhost:{}/0", server.port);
    assert!(RedisStore::connect(&verified).await.is_err());
}

/// Runs `command` on the server at `port`.
async fn ask<T: redis::FromRedisValue>(port: u16, command: &mut redis::Cmd) -> T {
    let mut conn = plain(&format!("redis://127.0.0.1:{port}")).await;
    command.query_async(&mut conn).await.unwrap()
}

/// Waits (at most 20 s) until `check` holds.
async fn wait_for<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The port of the master that the sentinel at `sentinel` names `name`.
async fn master_port(sentinel: u16, name: &str) -> u16 {
    let (_, port): (String, u16) = ask(
        sentinel,
        redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(name),
    )
    .await;
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_sentinel_the_store_follows_a_failover() {
    const NAME: &str = "satchel-failover";
    // No five-second wait before the first (diskless) sync of the replica.
    let Some(master) = Private::start(&["--repl-diskless-sync-delay", "0"]) else {
        return;
    };
    let Some(replica) = Private::start(&["--replicaof", "127.0.0.1", &master.port.to_string()])
    else {
        return;
    };
    // The sentinel finds the replica in the master's INFO: have it in sync first.
    wait_for("the replica to sync", || async {
        let info: String = ask(replica.port, redis::cmd("INFO").arg("replication")).await;
        info.contains("master_link_status:up")
    })
    .await;
    let Some(sentinel) = Private::sentinel(NAME, master.port) else {
        return;
    };
    wait_for("the sentinel to know the replica", || async {
        let replicas: Vec<std::collections::HashMap<String, String>> = ask(
            sentinel.port,
            redis::cmd("SENTINEL").arg("REPLICAS").arg(NAME),
        )
        .await;
        replicas
            .iter()
            .any(|r| r.get("master-link-status").is_some_and(|s| s == "ok"))
    })
    .await;

    let url = format!("redis+sentinel://127.0.0.1:{}/{NAME}", sentinel.port);
    let config = configured(&url, Duration::from_secs(2));
    let store = RedisStore::from_config(&config).await.unwrap();
    let app = App::new(store, config);
    let mut browser = Browser::new(&Axum, &app);
    browser.post("/login?uid=3").await;
    assert_eq!(browser.post("/write").await.body, "1");
    // Replication is asynchronous: fail over only once the replica has the session.
    let key = format!("session:{}", browser.id());
    wait_for("the replica to have the session", || async {
        let value: Option<String> = ask(replica.port, redis::cmd("GET").arg(&key)).await;
        value.is_some_and(|value| value.ends_with("\n\"n\":1}") || value.contains("\n\"n\":1,\n"))
    })
    .await;

    let _: String = ask(
        sentinel.port,
        redis::cmd("SENTINEL").arg("FAILOVER").arg(NAME),
    )
    .await;
    wait_for("the sentinel to name the new master", || async {
        master_port(sentinel.port, NAME).await == replica.port
    })
    .await;
    // The sentinel demotes the old master at its next look at it (up to ten seconds);
    // do it now, as the sentinel does: make it a replica and disconnect its clients.
    let _: String = ask(
        master.port,
        redis::cmd("REPLICAOF").arg("127.0.0.1").arg(replica.port),
    )
    .await;
    let _: i64 = ask(
        master.port,
        redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("normal"),
    )
    .await;

    // The same store: its connection to the old master was closed, so it asks the
    // sentinel again and carries on with the new master.
    assert_eq!(browser.get("/read").await.body, "3");
    assert_eq!(browser.post("/write").await.body, "2");
    let value: String = ask(replica.port, redis::cmd("GET").arg(&key)).await;
    assert!(
        value.ends_with("\n\"n\":2}") || value.contains("\n\"n\":2,\n"),
        "written on the new master: {value}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_sentinel_the_store_works_again_after_the_master_restarts() {
    const NAME: &str = "satchel-restart";
    let Some(mut master) = Private::start(&[]) else {
        return;
    };
    let Some(sentinel) = Private::sentinel(NAME, master.port) else {
        return;
    };
    let url = format!("redis+sentinel://127.0.0.1:{}/{NAME}", sentinel.port);
    // The default timeout: after the restart, the sentinel takes up to a second (its
    // PING period) to consider the master up again, and the store retries meanwhile.
    let config = configured(&url, Duration::from_secs(2));
    let store = RedisStore::from_config(&config).await.unwrap();
    let app = App::new(store, config);
    let mut browser = Browser::new(&Axum, &app);
    browser.post("/login?uid=4").await;
    assert_eq!(browser.get("/read").await.body, "4");
    let cookie = browser.cookie.clone().unwrap();

    master.kill();
    fails_empty(&app, "POST", "/write", &cookie).await;

    master.spawn().unwrap();
    // The restarted master is empty (no persistence); the same store serves again.
    let mut browser = Browser::new(&Axum, &app);
    assert_eq!(browser.post("/login?uid=5").await.status, 200);
    assert_eq!(browser.get("/read").await.body, "5");
    assert_eq!(browser.post("/write").await.body, "1");
}

/// Nothing in Redis holds a session's id after a log-in: keys and index members are
/// hashes of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_session_id_is_stored_in_redis() {
    at_rest_in_redis(false).await;
}

/// With SESSION_DATA_KEY, no Redis value holds a session value in the clear.
#[cfg(feature = "sealed")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_values_are_sealed_in_redis() {
    at_rest_in_redis(true).await;
}

async fn at_rest_in_redis(sealed: bool) -> String {
    let prefix = format!("satchel-at-rest-{}:", SessionId::generate().fingerprint());
    let Some(store) = store_with_prefix(Kind::Standalone, &prefix).await else {
        return String::new();
    };
    let dump = || async {
        let mut raw = Raw::open(Kind::Standalone).await;
        let mut keys: Vec<String> = raw
            .query(redis::cmd("KEYS").arg(format!("{prefix}*")))
            .await;
        keys.sort();
        let mut text = String::new();
        for key in keys {
            let value = raw.value(&key).await;
            text.push_str(&format!("{key} -> {}\n", String::from_utf8_lossy(&value)));
        }
        text
    };
    scenarios::at_rest(BoxedStore::new(store), sealed, dump).await
}

/// A value over the server's `proto-max-bulk-len` is refused as `StoreError::TooLarge`,
/// naming the size sent, instead of a protocol error; nothing is written, and the store
/// goes on working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_over_the_server_bulk_length_is_too_large() {
    let Some(server) = Private::start(&["--proto-max-bulk-len", "1mb"]) else {
        return;
    };
    let store = RedisStore::connect(&server.url()).await.unwrap();
    let later = SystemTime::now() + Duration::from_secs(60);
    let id = SessionId::generate();
    let mut small = Changes::default();
    small.set("user", json!("ada"));
    assert_eq!(store.save(&id, &small, later).await.unwrap(), Saved::Stored);
    let mut big = Changes::default();
    big.set("blob", json!("x".repeat(2 << 20)));
    big.require_existing();
    match store.save(&id, &big, later).await {
        Err(error @ StoreError::TooLarge { budget: 0, size }) => {
            assert!(size > 2 << 20, "the size sent: {size}");
            assert!(error.to_string().contains("unknown"), "{error}");
        }
        other => panic!("refused for the bulk length: {other:?}"),
    }
    let data = store.load(&id, None).await.unwrap().unwrap().data;
    assert_eq!(data.len(), 1, "nothing written");
    small.set("note", json!("fits"));
    assert_eq!(store.save(&id, &small, later).await.unwrap(), Saved::Stored);
}

/// The shared scenarios through the axum layer on a Redis store in Flask-Session's
/// layout: the engine decides as on any store, and the layout keeps every promise.
#[cfg(feature = "flask")]
mod flask_http {
    use super::*;
    scenarios!(Axum, async {
        satchel::testing::flask(store(Kind::Standalone).await)
    });
}

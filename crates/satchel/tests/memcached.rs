//! The memcached store on real servers: the conformance suite and the HTTP scenarios on a
//! pool of two servers and on one server, the 50-request race, and what is particular to
//! memcached (keys spread over the servers, the 30-day rule, touches that do not rewrite,
//! expiry checked on load, corrupt items, a server that stops and comes back).
//!
//! SATCHEL_TEST_MEMCACHED lists the servers, e.g. `127.0.0.1:11211,127.0.0.1:11212`
//! (`source scripts/services.sh` starts them). The restart tests start a private
//! `memcached` of their own on a free port.

#![cfg(all(
    feature = "memcached",
    feature = "testing",
    feature = "axum",
    feature = "signed"
))]
#![allow(clippy::unwrap_used)]

mod common;
mod scenarios;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use common::{Process, free_port};
use memcache::exp::{AsyncMetaClient, Meta, Ttl};
use satchel::store::{Saved, Seen};
use satchel::{
    Changes, ConfigError, MemcachedStore, SessionConfig, SessionId, SessionStore, SessionType,
    StoreError,
};
use scenarios::axum_app::Axum;
use scenarios::{App, Browser};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const VAR: &str = "SATCHEL_TEST_MEMCACHED";
const PREFIX: &str = "satchel-test:";

/// The test servers, as SATCHEL_TEST_MEMCACHED lists them.
fn servers() -> Option<Vec<String>> {
    let text = std::env::var(VAR).unwrap_or_default();
    if text.trim().is_empty() {
        return satchel::testing::service_unavailable("memcached", &format!("{VAR} is unset"));
    }
    Some(text.split(',').map(|s| s.trim().to_owned()).collect())
}

async fn store_on(servers: &str) -> MemcachedStore {
    let config = SessionConfig::default()
        .with_memcached_servers(servers)
        .with_key_prefix(PREFIX);
    MemcachedStore::from_config(&config).await.unwrap()
}

/// A store on every test server.
async fn pool() -> Option<MemcachedStore> {
    let servers = servers()?;
    assert!(servers.len() >= 2, "{VAR} should list two servers");
    Some(store_on(&servers.join(",")).await)
}

/// A store on the first test server alone.
async fn single() -> Option<MemcachedStore> {
    Some(store_on(&servers()?[0]).await)
}

satchel::conformance!(pool_conformance, pool());
satchel::conformance!(single_conformance, single());
#[cfg(feature = "flask")]
satchel::conformance!(flask_conformance, async {
    satchel::testing::flask(pool().await)
});
#[cfg(feature = "sealed")]
satchel::conformance!(sealed_conformance, async {
    satchel::testing::sealed(pool().await)
});

/// Every HTTP scenario on the pool of two servers.
mod pool_scenarios {
    use super::*;
    scenarios!(Axum, pool());
}

/// Every HTTP scenario on one server.
mod single_scenarios {
    use super::*;
    scenarios!(Axum, single());
}

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

/// What a server holds at `key`: the raw value, its CAS token and its remaining TTL.
async fn raw(client: &AsyncMetaClient, key: &str) -> Option<(Vec<u8>, u64, i64)> {
    let result = client
        .get(key)
        .meta(Meta::NONE.cas().ttl())
        .send()
        .await
        .unwrap();
    result.hit().then(|| {
        (
            result.value.unwrap(),
            result.item.cas.unwrap(),
            result.item.ttl.unwrap(),
        )
    })
}

/// A client that routes keys as the pool store does (same servers, same order).
async fn router(servers: &[String]) -> AsyncMetaClient {
    AsyncMetaClient::connect_multiple(servers.iter().cloned())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_requests_keep_fifty_keys_on_the_pool() {
    let Some(store) = pool().await else { return };
    let app = App::new(store, SessionConfig::default());
    let kept = scenarios::race(&Axum, &app).await;
    eprintln!("memcached pool: kept {kept} of 50 keys");
    assert_eq!(kept, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_requests_keep_fifty_keys_on_one_server() {
    let Some(store) = single().await else { return };
    let app = App::new(store, SessionConfig::default());
    let kept = scenarios::race(&Axum, &app).await;
    eprintln!("memcached single server: kept {kept} of 50 keys");
    assert_eq!(kept, 50);
}

#[tokio::test]
async fn keys_carry_the_prefix_and_spread_over_both_servers() {
    let (Some(servers), Some(store)) = (servers(), pool().await) else {
        return;
    };
    let ids: Vec<SessionId> = (0..32).map(|_| SessionId::generate()).collect();
    for id in &ids {
        let saved = store
            .save(id, &setting(&[("k", json!(1))]), in_secs(60))
            .await
            .unwrap();
        assert_eq!(saved, Saved::Stored);
    }
    let mut held = Vec::new();
    for server in &servers {
        let direct = AsyncMetaClient::connect(server.as_str()).await.unwrap();
        let mut count = 0;
        for id in &ids {
            assert!(raw(&direct, &id.to_string()).await.is_none(), "unprefixed");
            if raw(&direct, &format!("{PREFIX}{id}")).await.is_some() {
                count += 1;
            }
        }
        held.push(count);
    }
    eprintln!("sessions per server: {held:?}");
    assert_eq!(held.iter().sum::<usize>(), ids.len(), "each on exactly one");
    assert!(held.iter().all(|&count| count > 0), "{held:?}");
}

#[tokio::test]
async fn a_key_prefix_that_cannot_start_a_key_is_refused() {
    for prefix in ["my app:", "app:\r\nflush_all\r\n", &"p".repeat(208)] {
        let config = SessionConfig::default().with_key_prefix(prefix);
        let error = MemcachedStore::from_config(&config).await.unwrap_err();
        assert!(
            matches!(&error, ConfigError::Invalid { key, .. } if key == "SESSION_KEY_PREFIX"),
            "{error}"
        );
    }
    // The longest prefix that leaves room for an id: 250 - 43 bytes.
    let Some(servers) = servers() else { return };
    let prefix = "p".repeat(207);
    let config = SessionConfig::default()
        .with_memcached_servers(servers.join(","))
        .with_key_prefix(&prefix);
    let store = MemcachedStore::from_config(&config).await.unwrap();
    let id = SessionId::generate();
    store
        .save(&id, &setting(&[("a", json!(1))]), in_secs(60))
        .await
        .unwrap();
    assert_eq!(store.load(&id, None).await.unwrap().unwrap().data["a"], 1);
}

#[tokio::test]
async fn a_malformed_server_list_is_refused_naming_the_key() {
    for servers in [
        "",
        "localhost",
        "127.0.0.1:11211,",
        "127.0.0.1:99999",
        "memcache://127.0.0.1:11211",
        "no-such-host.invalid:11211",
    ] {
        let config = SessionConfig::default()
            .with_session_type(SessionType::Memcached)
            .with_memcached_servers(servers);
        let error = satchel::store::from_config(&config).await.unwrap_err();
        assert!(
            matches!(&error, ConfigError::Invalid { key, .. } if key == "SESSION_MEMCACHED"),
            "{servers:?}: {error}"
        );
    }
}

#[tokio::test]
async fn lifetimes_over_thirty_days_are_kept() {
    let (Some(servers), Some(store)) = (servers(), pool().await) else {
        return;
    };
    let direct = router(&servers).await;
    let month: i64 = 30 * 24 * 60 * 60;
    let id = SessionId::generate();
    // Flask's default lifetime: sent as a relative 31 days, memcached would expire it at
    // once, reading a date in January 1970.
    store
        .save(&id, &setting(&[("a", json!(1))]), in_secs(31 * 86_400))
        .await
        .unwrap();
    let (_, _, ttl) = raw(&direct, &format!("{PREFIX}{id}")).await.unwrap();
    // memcached's clock ticks once a second and may run a second or two behind ours.
    assert!(ttl > month && ttl <= 31 * 86_400 + 4, "{ttl}");
    let record = store.load(&id, None).await.unwrap().expect("kept");
    assert!(record.expires_at > in_secs(31 * 86_400 - 5));
    // A touch that far ahead is sent the same way.
    let touched = store
        .load(&id, Some(in_secs(40 * 86_400)))
        .await
        .unwrap()
        .unwrap();
    assert!(touched.expires_at > in_secs(40 * 86_400 - 5));
    let (_, _, ttl) = raw(&direct, &format!("{PREFIX}{id}")).await.unwrap();
    assert!(ttl > 40 * 86_400 - 5 && ttl <= 40 * 86_400 + 5, "{ttl}");
    // Beyond what memcached can express (2038): kept until then.
    let far = SessionId::generate();
    store
        .save(
            &far,
            &setting(&[("a", json!(1))]),
            in_secs(100 * 365 * 86_400),
        )
        .await
        .unwrap();
    assert!(store.load(&far, None).await.unwrap().is_some());
    // Just under and just over the limit.
    for secs in [2_592_000 - 2, 2_592_000, 2_592_000 + 5] {
        let id = SessionId::generate();
        store
            .save(&id, &setting(&[("a", json!(1))]), in_secs(secs))
            .await
            .unwrap();
        assert!(store.load(&id, None).await.unwrap().is_some(), "{secs}");
    }
}

#[tokio::test]
async fn a_touch_appends_its_expiry_and_leaves_the_data_alone() {
    let (Some(servers), Some(store)) = (servers(), pool().await) else {
        return;
    };
    let direct = router(&servers).await;
    let id = SessionId::generate();
    let key = format!("{PREFIX}{id}");
    store
        .save(&id, &setting(&[("a", json!(1))]), in_secs(1))
        .await
        .unwrap();
    let (bytes, cas, ttl) = raw(&direct, &key).await.unwrap();
    assert!(ttl <= 2, "{ttl}");
    let record = store.load(&id, Some(in_secs(120))).await.unwrap().unwrap();
    assert!(record.expires_at > in_secs(115));
    let (after, cas_after, ttl_after) = raw(&direct, &key).await.unwrap();
    assert!(
        after.starts_with(&bytes) && after.len() > bytes.len() && after.len() <= bytes.len() + 19,
        "the value as written, and one touch entry"
    );
    assert_ne!(cas_after, cas, "the append gave the item a new CAS token");
    assert_eq!(
        record.version,
        Some(cas_after),
        "the version is the new token"
    );
    assert!(ttl_after >= 120, "{ttl_after}");
    // Past the stored expiry and the item's first TTL: the touch carries it.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let later = store
        .load(&id, None)
        .await
        .unwrap()
        .expect("the touch kept it");
    assert_eq!(
        later.expires_at, record.expires_at,
        "the touched expiry, exactly"
    );
    // The version is current, so the next save is one conditional write.
    let changes = setting(&[("b", json!(2))]);
    let mut data = later.data.clone();
    changes.apply(&mut data);
    let seen = Seen {
        version: later.version.unwrap(),
        data: &data,
        permanent: None,
        created: None,
        lifetime: None,
    };
    let saved = store
        .save_seen(&id, seen, &changes, in_secs(60))
        .await
        .unwrap();
    assert_eq!(saved, Saved::Stored);
    assert_ne!(raw(&direct, &key).await.unwrap().1, cas_after);
    assert_eq!(store.load(&id, None).await.unwrap().unwrap().data.len(), 2);
}

/// A save based on a version that another writer replaced meanwhile is applied again onto
/// the newer entry (both writers' keys are kept), and counted in
/// `satchel_merge_conflicts_total`.
#[test]
fn a_save_that_finds_a_newer_entry_keeps_both_and_is_counted_as_a_conflict() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let Some(servers) = servers() else { return };
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let store = store_on(&servers[0]).await;
            let id = SessionId::generate();
            let first = setting(&[("a", json!(1))]);
            store.save(&id, &first, in_secs(60)).await.unwrap();
            let loaded = store.load(&id, None).await.unwrap().unwrap();
            // Another request writes after this one loaded.
            let other = setting(&[("b", json!(2))]);
            store.save(&id, &other, in_secs(60)).await.unwrap();
            let changes = setting(&[("c", json!(3))]);
            let mut data = loaded.data.clone();
            changes.apply(&mut data);
            let seen = Seen {
                version: loaded.version.unwrap(),
                data: &data,
                permanent: None,
                created: None,
                lifetime: None,
            };
            let saved = store.save_seen(&id, seen, &changes, in_secs(60)).await;
            assert_eq!(saved.unwrap(), Saved::Stored);
            let record = store.load(&id, None).await.unwrap().unwrap();
            let keys: Vec<&str> = record.data.keys().map(String::as_str).collect();
            assert_eq!(keys, ["a", "b", "c"]);
        });
    });
    let conflicts: u64 = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == "satchel_merge_conflicts_total")
        .map(|(.., value)| match value {
            DebugValue::Counter(n) => n,
            other => panic!("{other:?}"),
        })
        .sum();
    assert_eq!(conflicts, 1);
}

/// The observed failure: PERMANENT_SESSION_LIFETIME=2 with refresh, a read after 0.5 s
/// (a touch), and the session was still served 2.1 to 2.6 s after that touch, because its
/// expiry was estimated from the TTL memcached reports, in whole seconds. A session must
/// never be served after the expiry its touch asked for.
#[tokio::test]
async fn a_touched_session_is_not_served_past_the_touched_expiry() {
    let Some(store) = pool().await else { return };
    let id = SessionId::generate();
    let started = Instant::now();
    let start = SystemTime::now();
    let until = |millis: u64| {
        tokio::time::sleep_until(tokio::time::Instant::from_std(
            started + Duration::from_millis(millis),
        ))
    };
    store
        .save(
            &id,
            &setting(&[("a", json!(1))]),
            start + Duration::from_millis(500),
        )
        .await
        .unwrap();
    let asked = start + Duration::from_millis(1200);
    let touched = store
        .load(&id, Some(asked))
        .await
        .unwrap()
        .expect("live when touched");
    assert!(
        touched.expires_at <= asked && touched.expires_at + Duration::from_millis(1) > asked,
        "the touch returns the expiry it asked for"
    );
    until(800).await;
    let record = store.load(&id, None).await.unwrap();
    assert!(
        record.is_some(),
        "the touch carried it past its written expiry"
    );
    assert_eq!(record.unwrap().expires_at, touched.expires_at);
    for millis in [1300, 1700, 2100, 2500, 2900] {
        until(millis).await;
        assert!(
            store.load(&id, None).await.unwrap().is_none(),
            "served {millis} ms after the start; the touch asked for 1200"
        );
    }
    // A refresh that comes now does not bring it back either.
    assert!(store.load(&id, Some(in_secs(60))).await.unwrap().is_none());
    assert!(store.load(&id, None).await.unwrap().is_none());
}

#[tokio::test]
async fn touches_without_changes_keep_the_item_small() {
    let (Some(servers), Some(store)) = (servers(), pool().await) else {
        return;
    };
    let direct = router(&servers).await;
    let id = SessionId::generate();
    let key = format!("{PREFIX}{id}");
    let text = "x".repeat(100);
    store
        .save(&id, &setting(&[("a", json!(text))]), in_secs(60))
        .await
        .unwrap();
    let (written, _, _) = raw(&direct, &key).await.unwrap();
    let mut longest = 0;
    for i in 1..=100 {
        let record = store
            .load(&id, Some(in_secs(60 + i)))
            .await
            .unwrap()
            .expect("live");
        let (bytes, cas, _) = raw(&direct, &key).await.unwrap();
        assert_eq!(record.version, Some(cas), "touch {i}");
        longest = longest.max(bytes.len());
    }
    // Each touch adds an entry of at most 19 bytes; every 32nd writes the record back.
    assert!(longest <= written.len() + 32 * 19, "{longest} bytes");
    let record = store.load(&id, None).await.unwrap().unwrap();
    assert_eq!(record.data["a"], json!(text));
    assert!(record.expires_at > in_secs(155));
}

#[tokio::test]
async fn expiry_is_checked_on_load_whatever_the_server_keeps() {
    let (Some(servers), Some(store)) = (servers(), pool().await) else {
        return;
    };
    let direct = router(&servers).await;
    let id = SessionId::generate();
    let key = format!("{PREFIX}{id}");
    let expires = SystemTime::now() + Duration::from_millis(1200);
    store
        .save(&id, &setting(&[("a", json!(1))]), expires)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // memcached still holds the item (its clock has whole seconds, so it gets a spare
    // one), but the session has expired.
    assert!(raw(&direct, &key).await.is_some(), "still on the server");
    assert!(store.load(&id, None).await.unwrap().is_none());
    // A refresh that reaches the expired item does not bring it back.
    assert!(store.load(&id, Some(in_secs(60))).await.unwrap().is_none());
    assert!(raw(&direct, &key).await.is_none(), "deleted, not revived");
    assert!(store.load(&id, None).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_item_gives_a_fresh_session() {
    let (Some(servers), Some(store)) = (servers(), pool().await) else {
        return;
    };
    let direct = router(&servers).await;
    let planted = SessionId::generate();
    direct
        .set(format!("session:{planted}"), b"\xc1 not a session")
        .ttl(Ttl::secs(60))
        .send()
        .await
        .unwrap();
    let config = SessionConfig::default();
    let app = App::new(
        MemcachedStore::from_config(&config.clone().with_memcached_servers(servers.join(",")))
            .await
            .unwrap(),
        config,
    );
    let mut b = Browser::new(&Axum, &app);
    b.cookie = Some(planted.to_string());
    let reply = b.get("/read").await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "0"));
    b.cookie = Some(planted.to_string());
    assert_eq!(b.post("/set/k").await.status, 200);
    assert_ne!(b.id(), planted, "a fresh session, with a new id");
    assert_eq!(b.get("/get/k").await.body, "true");

    // The store reports it as a decoding failure, and a save replaces it.
    let id = SessionId::generate();
    direct
        .set(format!("{PREFIX}{id}"), b"garbage")
        .ttl(Ttl::secs(60))
        .send()
        .await
        .unwrap();
    assert!(matches!(
        store.load(&id, None).await,
        Err(StoreError::Decode(_))
    ));
    store
        .save(&id, &setting(&[("b", json!(2))]), in_secs(60))
        .await
        .unwrap();
    let record = store.load(&id, None).await.unwrap().unwrap();
    assert_eq!(record.data.keys().collect::<Vec<_>>(), ["b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_keeps_a_write_that_raced_it() {
    let Some(store) = pool().await else { return };
    for _ in 0..20 {
        let old = SessionId::generate();
        let new = SessionId::generate();
        store
            .save(&old, &setting(&[("a", json!(1))]), in_secs(60))
            .await
            .unwrap();
        let writer = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .save(&old, &setting(&[("raced", json!(true))]), in_secs(60))
                    .await
            })
        };
        let saved = store
            .cycle(&old, &new, &setting(&[("c", json!(3))]), in_secs(60))
            .await
            .unwrap();
        assert_eq!(saved, Saved::Stored);
        writer.await.unwrap().unwrap();
        let moved = store.load(&new, None).await.unwrap().unwrap();
        let left = store.load(&old, None).await.unwrap();
        // The racing write landed either before the move (and moved with it) or after
        // (on the old id, which the engine no longer hands out): never nowhere.
        let raced_moved = moved.data.contains_key("raced");
        assert!(raced_moved != left.is_some(), "{moved:?} {left:?}");
        assert_eq!(moved.data["a"], 1);
        assert_eq!(moved.data["c"], 3);
    }
}

/// A memcached process of this test's own, on a free port.
struct PrivateMemcached {
    process: Process,
}

impl PrivateMemcached {
    async fn start() -> Option<Self> {
        Self::start_with(&[]).await
    }

    /// Starts a server with `extra` options.
    async fn start_with(extra: &[&str]) -> Option<Self> {
        let port = free_port();
        let args = [
            "-p",
            &port.to_string(),
            "-l",
            "127.0.0.1",
            "-U",
            "0",
            "-u",
            "root",
        ]
        .iter()
        .chain(&["-m", "16"])
        .chain(extra)
        .map(|arg| (*arg).to_owned())
        .collect();
        match Process::start("memcached", args, port, Duration::from_secs(5)) {
            Ok(process) => Some(Self { process }),
            Err(error) => satchel::testing::service_unavailable("a private memcached", &error),
        }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.process.port())
    }

    /// Starts the server again on its port.
    async fn spawn(&mut self) -> Result<(), String> {
        self.process.restart(Duration::from_secs(5))
    }

    async fn stop(&mut self) {
        self.process.stop();
    }

    /// The number of commands the server has run, from its `stats`.
    async fn commands(&self) -> u64 {
        let mut stream = tokio::net::TcpStream::connect(self.addr()).await.unwrap();
        stream.write_all(b"stats\r\n").await.unwrap();
        let mut text = Vec::new();
        while !text.ends_with(b"END\r\n") {
            let mut chunk = [0; 4096];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "stats ended early");
            text.extend_from_slice(&chunk[..n]);
        }
        let stats: HashMap<String, u64> = String::from_utf8(text)
            .unwrap()
            .lines()
            .filter_map(|line| {
                let mut words = line.strip_prefix("STAT ")?.split(' ');
                Some((words.next()?.to_owned(), words.next()?.parse().ok()?))
            })
            .collect();
        [
            "cmd_get",
            "cmd_set",
            "cmd_touch",
            "delete_hits",
            "delete_misses",
        ]
        .iter()
        .map(|name| stats[*name])
        .sum()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_and_a_save_are_one_round_trip_each() {
    let Some(server) = PrivateMemcached::start().await else {
        return;
    };
    let config = SessionConfig::default().with_memcached_servers(server.addr());
    let app = App::new(MemcachedStore::from_config(&config).await.unwrap(), config);
    let mut b = Browser::new(&Axum, &app);
    let mut cost = async |method: &str, path: &str| {
        let before = server.commands().await;
        assert_eq!(b.send(method, path).await.status, 200);
        server.commands().await - before
    };
    assert_eq!(cost("GET", "/read").await, 0, "no cookie, no session");
    assert_eq!(cost("POST", "/set/a").await, 1, "a new session: one add");
    assert_eq!(cost("GET", "/read").await, 1, "a load with its touch");
    assert_eq!(
        cost("POST", "/set/b").await,
        2,
        "a load, then one CAS write"
    );
    assert_eq!(
        cost("POST", "/remove/b").await,
        2,
        "a load, then one CAS write"
    );
    assert_eq!(cost("GET", "/count-keys").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_fails_fast_and_is_used_again_when_it_is_back() {
    let Some(mut server) = PrivateMemcached::start().await else {
        return;
    };
    let timeout = Duration::from_secs(1);
    let config = SessionConfig::default()
        .with_memcached_servers(server.addr())
        .with_store_timeout(timeout);
    let store = MemcachedStore::from_config(&config).await.unwrap();
    let app = App::new(store.clone(), config);
    let mut b = Browser::new(&Axum, &app);
    b.post("/login?uid=7").await;
    assert_eq!(b.get("/read").await.body, "7");
    let cookie = b.cookie.clone();
    let id = b.id();

    server.stop().await;
    let started = Instant::now();
    assert!(matches!(
        store.load(&id, Some(in_secs(60))).await,
        Err(StoreError::Backend(_))
    ));
    assert!(matches!(
        store
            .save(&id, &setting(&[("x", json!(1))]), in_secs(60))
            .await,
        Err(StoreError::Backend(_))
    ));
    assert!(matches!(
        store.delete(&id).await,
        Err(StoreError::Backend(_))
    ));
    let error = store.load(&id, None).await.unwrap_err();
    let chain = format!("{error} {:?}", std::error::Error::source(&error));
    assert!(!chain.contains(&id.to_string()), "{chain}");
    for (method, path) in [("GET", "/read"), ("POST", "/write"), ("POST", "/logout")] {
        let reply = b.send(method, path).await;
        assert_eq!(reply.status, 500, "{method} {path}");
        assert_eq!(reply.body, "", "{method} {path}");
        assert!(
            reply.set_cookie.is_empty(),
            "{method} {path}: the cookie stays"
        );
    }
    assert_eq!(b.cookie, cookie);
    assert!(
        started.elapsed() < timeout * 4,
        "failed in {:?}",
        started.elapsed()
    );

    // Back on the same port: the same store works again. memcached kept nothing over its
    // restart, so the old cookie now gives a fresh session.
    server.spawn().await.unwrap();
    let fresh = SessionId::generate();
    store
        .save(&fresh, &setting(&[("a", json!(1))]), in_secs(60))
        .await
        .unwrap();
    assert_eq!(
        store.load(&fresh, None).await.unwrap().unwrap().data["a"],
        1
    );
    assert_eq!(b.get("/read").await.body, "0");
    b.post("/login?uid=8").await;
    assert_eq!(b.get("/read").await.body, "8");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_on_a_server_that_stops_answering_and_closes_when_it_is_back() {
    let Some(server) = PrivateMemcached::start().await else {
        return;
    };
    let timeout = Duration::from_millis(800);
    let config = SessionConfig::default()
        .with_memcached_servers(server.addr())
        .with_store_timeout(timeout);
    let store = MemcachedStore::from_config(&config).await.unwrap();
    let pid = server.process.pid().unwrap();
    scenarios::the_breaker_guards_a_store_that_stops_answering(
        satchel::store::BoxedStore::new(store),
        timeout,
        || common::signal(pid, "-STOP"),
        || common::signal(pid, "-CONT"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_at_start_up_stops_the_start() {
    let Some(mut server) = PrivateMemcached::start().await else {
        return;
    };
    let address = server.addr();
    server.stop().await;
    let config = SessionConfig::default()
        .with_memcached_servers(address.clone())
        .with_store_timeout(Duration::from_secs(1));
    let started = Instant::now();
    let error = MemcachedStore::from_config(&config).await.unwrap_err();
    assert!(
        matches!(&error, ConfigError::Io { key, .. } if key == "SESSION_MEMCACHED"),
        "{error}"
    );
    assert!(error.to_string().contains(&address), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_leaves_the_sessions_on_the_others_alone() {
    let (Some(servers), Some(mut server)) = (servers(), PrivateMemcached::start().await) else {
        return;
    };
    let list = [servers[0].clone(), server.addr()];
    let config = SessionConfig::default()
        .with_memcached_servers(list.join(","))
        .with_store_timeout(Duration::from_secs(1));
    let store = MemcachedStore::from_config(&config).await.unwrap();
    let app = App::new(store.clone(), config);
    // Log in until one session lives on each server.
    let private = AsyncMetaClient::connect(server.addr()).await.unwrap();
    let (mut on_shared, mut on_private) = (None, None);
    while on_shared.is_none() || on_private.is_none() {
        let mut b = Browser::new(&Axum, &app);
        b.post("/login?uid=3").await;
        let key = format!("session:{}", b.id());
        if raw(&private, &key).await.is_some() {
            on_private.get_or_insert(b);
        } else {
            on_shared.get_or_insert(b);
        }
    }
    let (mut on_shared, mut on_private) = (on_shared.unwrap(), on_private.unwrap());

    server.stop().await;
    let reply = on_private.get("/read").await;
    assert_eq!((reply.status, reply.body.as_str()), (500, ""));
    assert_eq!(on_shared.get("/read").await.body, "3");
    assert_eq!(on_shared.post("/write").await.body, "1");

    server.spawn().await.unwrap();
    assert_eq!(on_shared.get("/read").await.body, "3");
    assert_eq!(on_private.get("/read").await.body, "0");
    let reply = on_private.post("/login?uid=4").await;
    assert_eq!(reply.status, 200);
    assert_eq!(on_private.get("/read").await.body, "4");
}

/// Sends `command` to the memcached at `addr` and reads its answer up to `END`.
async fn ask_memcached(addr: &str, command: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(command.as_bytes()).await.unwrap();
    let mut text = Vec::new();
    while !(text.ends_with(b"END\r\n") || text.ends_with(b"ERROR\r\n")) {
        let mut chunk = [0; 65536];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "memcached closed the connection");
        text.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// Nothing in memcached holds a session's id after a log-in: every key the server holds
/// under the store's prefix (its LRU crawler lists them), and every value, names the
/// session by the hash of its id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_session_id_is_stored_in_memcached() {
    at_rest_in_memcached(false).await;
}

/// With SESSION_DATA_KEY, no memcached item holds a session value in the clear.
#[cfg(feature = "sealed")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_values_are_sealed_in_memcached() {
    at_rest_in_memcached(true).await;
}

async fn at_rest_in_memcached(sealed: bool) -> String {
    let Some(servers) = servers() else {
        return String::new();
    };
    let addr = servers[0].clone();
    let prefix = format!("satchel-at-rest-{}:", SessionId::generate().fingerprint());
    let config = SessionConfig::default()
        .with_memcached_servers(addr.as_str())
        .with_key_prefix(prefix.as_str());
    let store = MemcachedStore::from_config(&config).await.unwrap();
    let dump = || async {
        let listing = ask_memcached(&addr, "lru_crawler metadump all\r\n").await;
        let mut keys: Vec<String> = listing
            .lines()
            .filter_map(|line| line.strip_prefix("key="))
            .filter_map(|rest| rest.split(' ').next())
            .map(|key| key.replace("%3A", ":").replace("%3a", ":"))
            .filter(|key| key.starts_with(&prefix))
            .collect();
        keys.sort();
        let mut text = String::new();
        for key in keys {
            let value = ask_memcached(&addr, &format!("get {key}\r\n")).await;
            let value = value.lines().nth(1).unwrap_or_default().to_owned();
            text.push_str(&format!("{key} -> {value}\n"));
        }
        text
    };
    scenarios::at_rest(satchel::store::BoxedStore::new(store), sealed, dump).await
}

/// An item over the server's item size (`-I`) is refused as `StoreError::TooLarge`,
/// naming the size sent, whatever the budget; the oversized data is never stored. (The
/// server itself drops the item it refused to replace, so the session is gone then: the
/// budget must stay under the item size, as the default does.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_over_the_server_item_size_is_too_large() {
    let Some(server) =
        PrivateMemcached::start_with(&["-I", "2k", "-o", "slab_chunk_max=1024"]).await
    else {
        return;
    };
    let store = MemcachedStore::builder(server.addr()).open().await.unwrap();
    let later = SystemTime::now() + Duration::from_secs(60);
    let id = SessionId::generate();
    let mut small = Changes::default();
    small.set("user", json!("ada"));
    assert_eq!(store.save(&id, &small, later).await.unwrap(), Saved::Stored);
    for budget in [None, Some(1 << 20)] {
        let mut big = Changes::default();
        big.set("blob", json!("x".repeat(4000)));
        if let Some(budget) = budget {
            big.limit_size(budget);
        }
        match store.save(&id, &big, later).await {
            Err(error @ StoreError::TooLarge { budget: 0, size }) => {
                assert!(size > 4000, "the size sent: {size}");
                assert!(error.to_string().contains("unknown"), "{error}");
            }
            other => panic!("refused for the item size: {other:?}"),
        }
        let stored = store.load(&id, None).await.unwrap();
        assert!(
            stored.is_none_or(|record| record.data.len() == 1),
            "the oversized data is not stored"
        );
    }
    let mut fits = Changes::default();
    fits.set("note", json!("y".repeat(100)));
    assert_eq!(store.save(&id, &fits, later).await.unwrap(), Saved::Stored);
}

//! The conformance suite on every store of this crate.

#![cfg(feature = "testing")]

use satchel::MemoryStore;

satchel::conformance!(memory, async { Some(MemoryStore::default()) });
#[cfg(feature = "sealed")]
satchel::conformance!(sealed_memory, async {
    satchel::testing::sealed(Some(MemoryStore::default()))
});

#[cfg(feature = "filesystem")]
mod fs {
    use std::sync::OnceLock;

    fn dir() -> &'static std::path::Path {
        static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
        DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory"))
            .path()
    }

    async fn store() -> Option<satchel::FilesystemStore> {
        let config = satchel::SessionConfig::default()
            .with_file_dir(dir())
            .with_file_threshold(10_000);
        Some(satchel::FilesystemStore::from_config(&config).expect("the store opens"))
    }

    satchel::conformance!(filesystem, store());
    #[cfg(feature = "sealed")]
    satchel::conformance!(sealed_filesystem, async {
        satchel::testing::sealed(store().await)
    });

    /// A store in a directory of its own (removed when dropped), without a threshold:
    /// keeping one scans the directory at every new session.
    fn unbounded() -> (tempfile::TempDir, satchel::FilesystemStore) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = satchel::FilesystemStore::builder(dir.path())
            .with_threshold(0)
            .open()
            .expect("the store opens");
        (dir, store)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cleanup_removes_expired_files_and_counts_them() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = satchel::FilesystemStore::builder(dir.path())
            .open()
            .expect("the store opens");
        satchel::testing::cases::cleanup_removes_expired_entries_and_counts_them(store).await;
    }

    /// A sweep of expired files reports its progress every 1,000 files and at the end.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sweep_reports_its_progress() {
        use satchel::{Changes, SessionId, SessionStore};
        use std::sync::{Arc, Mutex};
        use std::time::{Duration, SystemTime};

        let (_dir, store) = unbounded();
        let mut changes = Changes::default();
        changes.set("k", serde_json::json!(1));
        let soon = SystemTime::now() + Duration::from_secs(1);
        for _ in 0..2500 {
            store
                .save(&SessionId::generate(), &changes, soon)
                .await
                .expect("a save");
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let reports = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&reports);
        let deleted = store
            .delete_expired_with_progress(move |so_far| seen.lock().expect("a lock").push(so_far))
            .await
            .expect("a sweep");
        assert_eq!(deleted, 2500);
        assert_eq!(*reports.lock().expect("a lock"), [1000, 2000, 2500]);
    }

    /// The health check writes a file: a directory that is gone fails it, and says which.
    #[tokio::test]
    async fn the_health_check_fails_while_the_directory_is_gone() {
        use satchel::SessionStore;

        let parent = tempfile::tempdir().expect("a temporary directory");
        let dir = parent.path().join("sessions");
        let store = satchel::FilesystemStore::builder(&dir)
            .open()
            .expect("the store opens");
        store.ping().await.expect("a working directory");
        std::fs::remove_dir_all(&dir).expect("the directory goes");
        let error = store.ping().await.expect_err("no directory, no health");
        let source = std::error::Error::source(&error)
            .expect("the cause")
            .to_string();
        assert!(source.contains(&dir.display().to_string()), "{source}");
        std::fs::create_dir(&dir).expect("the directory comes back");
        store.ping().await.expect("healthy again");
    }

    /// A directory of 100,000 sessions pages through all of them exactly once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_of_100000_sessions_lists_each_once() {
        let (_dir, store) = unbounded();
        let started = std::time::Instant::now();
        let (pages, took) =
            satchel::testing::cases::a_large_store_lists_each_entry_once(store, 100_000).await;
        eprintln!(
            "filesystem: 100000 sessions listed once each in {pages} pages, in {took:.1?} \
             ({:.1?} with the saves and deletes)",
            started.elapsed()
        );
        assert_eq!(
            pages, 100,
            "full pages: the store knows the last is the last"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_removes_expired_memory_entries_and_counts_them() {
    satchel::testing::cases::cleanup_removes_expired_entries_and_counts_them(MemoryStore::default())
        .await;
}

/// A memory store of 100,000 sessions pages through all of them exactly once.
#[tokio::test]
async fn a_memory_store_of_100000_sessions_lists_each_once() {
    use std::collections::BTreeSet;
    use std::time::{Duration, SystemTime};

    use satchel::{Changes, SessionId, SessionStore};

    let store = MemoryStore::with_capacity(200_000);
    let mut changes = Changes::default();
    changes.set("k", serde_json::json!(1));
    let expires_at = SystemTime::now() + Duration::from_secs(3600);
    let mut ids = BTreeSet::new();
    for _ in 0..100_000 {
        let id = SessionId::generate();
        store.save(&id, &changes, expires_at).await.expect("a save");
        ids.insert(id);
    }
    let (entries, pages) = satchel::testing::cases::walk(&store, 5000).await;
    let listed: Vec<SessionId> = entries.into_iter().map(|(id, _)| id).collect();
    let unique: BTreeSet<SessionId> = listed.iter().copied().collect();
    assert_eq!(unique.len(), listed.len(), "a session listed twice");
    assert_eq!(unique, ids);
    assert_eq!(
        pages, 20,
        "20 full pages: the store knows the last is the last"
    );
}

/// What a test's async work recorded through the `metrics` facade: each metric as
/// `name{label=value,…}`, with its value (counters, gauges) or its number of samples
/// (histograms).
#[derive(Debug, Default)]
struct Recorded {
    counters: std::collections::BTreeMap<String, u64>,
    gauges: std::collections::BTreeMap<String, f64>,
    histograms: std::collections::BTreeMap<String, usize>,
}

impl Recorded {
    fn count(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }

    fn names(&self) -> impl Iterator<Item = &String> {
        self.counters
            .keys()
            .chain(self.gauges.keys())
            .chain(self.histograms.keys())
    }
}

/// Runs `work` on a current-thread runtime with a recorder of its own (this thread's while
/// the work runs, and every task runs here), and returns what it recorded.
fn recorded<T>(work: impl std::future::Future<Output = T>) -> (T, Recorded) {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let output = metrics::with_local_recorder(&recorder, || runtime.block_on(work));
    let mut recorded = Recorded::default();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let labels: Vec<String> = key
            .labels()
            .map(|label| format!("{}={}", label.key(), label.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        match value {
            DebugValue::Counter(n) => {
                recorded.counters.insert(name, n);
            }
            DebugValue::Gauge(value) => {
                recorded.gauges.insert(name, value.into_inner());
            }
            DebugValue::Histogram(samples) => {
                recorded.histograms.insert(name, samples.len());
            }
        }
    }
    (output, recorded)
}

/// Store calls and session events are recorded under their documented names and labels,
/// and no label carries a session id.
#[test]
fn metrics_count_store_calls_and_session_events() {
    use satchel::{SessionConfig, SessionManager};

    let (id, recorded) = recorded(async {
        let manager = SessionManager::new(MemoryStore::default(), SessionConfig::default())
            .expect("a manager");
        let session = manager.session(std::iter::empty::<&[u8]>());
        session.insert("k", 1).await.expect("an insert");
        let outcome = session.finish(200).await.expect("a finish");
        let cookie = outcome.set_cookie().expect("a new session's cookie");
        let pair = cookie.split(';').next().expect("name=value").to_owned();
        let session = manager.session([pair.as_bytes()]);
        assert_eq!(session.get::<i64>("k").await.expect("a read"), Some(1));
        let _read = session.finish(200).await.expect("a finish");
        assert!(manager.health().await.is_ok());
        pair.split_once('=').expect("name=value").1.to_owned()
    });
    for name in recorded.names() {
        assert!(
            !name.contains(&id),
            "a label carries the session id: {name}"
        );
    }
    for name in recorded.histograms.keys() {
        assert!(
            name.starts_with("satchel_store_operation_duration_seconds{"),
            "{name}"
        );
    }
    let timed: usize = recorded.histograms.values().sum();
    let counters = &recorded.counters;
    let count = |name: &str| recorded.count(name);
    assert_eq!(
        count("satchel_sessions_total{event=created}"),
        1,
        "{counters:#?}"
    );
    assert_eq!(
        count("satchel_store_operations_total{store=memory,operation=save,result=ok}"),
        1,
        "{counters:#?}"
    );
    assert_eq!(
        count("satchel_store_operations_total{store=memory,operation=load,result=ok}"),
        1,
        "{counters:#?}"
    );
    assert_eq!(
        count("satchel_store_operations_total{store=memory,operation=ping,result=ok}"),
        1,
        "{counters:#?}"
    );
    assert_eq!(timed, 3, "each store call is timed");
}

/// What a failing store leaves in the metrics, under SESSION_STORE_FAILURE=anonymous: each
/// request's dropped changes, the breaker's state once it opens, and each call it refused.
#[cfg(feature = "filesystem")]
#[test]
fn the_breaker_and_dropped_writes_are_measured() {
    use satchel::{BreakerState, FailurePolicy, FilesystemStore, SessionConfig, SessionManager};

    let root = tempfile::tempdir().expect("a temporary directory");
    let dir = root.path().join("sessions");
    let store = FilesystemStore::builder(&dir)
        .open()
        .expect("the store opens");
    let ((), recorded) = recorded(async {
        let config = SessionConfig::default()
            .with_store_failure(FailurePolicy::Anonymous)
            .with_breaker_failures(2)
            .with_breaker_cooldown(std::time::Duration::from_secs(60));
        let manager = SessionManager::new(store, config).expect("a manager");
        let session = manager.session(std::iter::empty::<&[u8]>());
        session.insert("user", 7).await.expect("an insert");
        let outcome = session.finish(200).await.expect("a finish");
        let cookie = outcome.set_cookie().expect("a cookie").to_owned();
        let pair = cookie.split(';').next().expect("name=value").to_owned();

        // The directory becomes a plain file: every read and write fails.
        std::fs::rename(&dir, root.path().join("aside")).expect("moved aside");
        std::fs::write(&dir, b"not a directory").expect("a file in its place");
        for request in 0..3 {
            let session = manager.session([pair.as_bytes()]);
            let user = session.get::<i64>("user").await.expect("an empty session");
            assert_eq!(user, None, "request {request}");
            if request < 2 {
                session.insert("user", 8).await.expect("an insert");
            }
            let outcome = session.finish(200).await.expect("the handler's answer");
            assert_eq!(outcome.set_cookie(), None, "request {request}");
            assert_eq!(outcome.disposition(), satchel::Disposition::Degraded);
        }
        assert_eq!(manager.breaker_state(), Some(BreakerState::Open));
    });

    let counters = &recorded.counters;
    assert_eq!(
        recorded.count("satchel_writes_dropped_total{}"),
        2,
        "{counters:#?}"
    );
    assert_eq!(
        recorded
            .count("satchel_store_operations_total{store=filesystem,operation=load,result=error}"),
        2,
        "{counters:#?}"
    );
    assert_eq!(
        recorded.count("satchel_breaker_rejections_total{store=filesystem}"),
        1,
        "{counters:#?}"
    );
    assert_eq!(
        recorded
            .gauges
            .get("satchel_breaker_state{store=filesystem}"),
        Some(&1.0),
        "{:#?}",
        recorded.gauges
    );
}

/// Under SESSION_STORE_FAILURE=anonymous a log-out while the store fails neither removes
/// the browser's cookie nor deletes the stored session, whether the request read its
/// session first (the failed load cuts it off) or not (the failed delete is dropped).
#[cfg(feature = "filesystem")]
#[tokio::test]
async fn an_anonymous_log_out_while_the_store_fails_keeps_the_session() {
    use satchel::{Disposition, FailurePolicy, FilesystemStore, SessionConfig, SessionManager};

    let root = tempfile::tempdir().expect("a temporary directory");
    let dir = root.path().join("sessions");
    let store = FilesystemStore::builder(&dir)
        .open()
        .expect("the store opens");
    let config = SessionConfig::default()
        .with_store_failure(FailurePolicy::Anonymous)
        .with_breaker_failures(0);
    let manager = SessionManager::new(store, config).expect("a manager");
    let session = manager.session(std::iter::empty::<&[u8]>());
    session.insert("user", 7).await.expect("an insert");
    let outcome = session.finish(200).await.expect("a finish");
    let cookie = outcome.set_cookie().expect("a cookie").to_owned();
    let pair = cookie.split(';').next().expect("name=value").to_owned();

    let aside = root.path().join("aside");
    std::fs::rename(&dir, &aside).expect("moved aside");
    std::fs::write(&dir, b"not a directory").expect("a file in its place");
    for read_first in [true, false] {
        let session = manager.session([pair.as_bytes()]);
        if read_first {
            let user = session.get::<i64>("user").await.expect("an empty session");
            assert_eq!(user, None);
        }
        session.destroy();
        let outcome = session.finish(200).await.expect("the handler's answer");
        assert_eq!(outcome.set_cookie(), None, "read first: {read_first}");
        assert_eq!(outcome.disposition(), Disposition::Degraded);
    }
    std::fs::remove_file(&dir).expect("the file goes");
    std::fs::rename(&aside, &dir).expect("moved back");
    let session = manager.session([pair.as_bytes()]);
    assert_eq!(session.get::<i64>("user").await.expect("a read"), Some(7));
}

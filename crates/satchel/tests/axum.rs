//! The shared HTTP scenarios through the tower layer and the axum extractor.

#![cfg(all(feature = "axum", feature = "signed"))]
#![allow(clippy::unwrap_used)]

mod scenarios;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use satchel::Session;
use scenarios::axum_app::Axum;
use scenarios::{App, Harness};
use tower::ServiceExt as _;

/// Every scenario on the memory store.
mod memory {
    use super::*;
    scenarios!(Axum, async { Some(satchel::MemoryStore::default()) });
}

/// Every scenario on the filesystem store.
#[cfg(feature = "filesystem")]
mod filesystem_scenarios {
    use super::*;
    scenarios!(Axum, async {
        let dir = tempfile::tempdir().expect("a temporary directory").keep();
        let config = satchel::SessionConfig::default().with_file_dir(dir);
        Some(satchel::FilesystemStore::from_config(&config).expect("the store opens"))
    });
}

/// The scenarios of the cookie store.
#[cfg(feature = "cookie")]
mod cookie_scenarios {
    use super::*;
    cookie_scenarios!(Axum);
}

#[tokio::test]
async fn the_extractor_rejects_routes_without_the_layer() {
    let app = Router::new().route("/", get(|_: Session| async { "unreachable" }));
    let response = app
        .oneshot(Request::builder().uri("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[cfg(feature = "filesystem")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failure_policy_decides_the_answer() {
    scenarios::the_failure_policy_decides_the_answer(&Axum).await;
}

#[tokio::test]
async fn the_null_store_reads_empty_and_refuses_writes() {
    let app = App::new(satchel::NullStore, satchel::SessionConfig::default());
    let reply = Axum.request(&app, "GET", "/read", None).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "0"));
    let reply = Axum.request(&app, "POST", "/set/k", None).await;
    assert_eq!(reply.status, 500);
    assert!(reply.set_cookie.is_empty());
}

#[cfg(feature = "filesystem")]
mod filesystem {
    use super::*;
    use satchel::{FilesystemStore, SessionConfig};

    /// Every file of `path`, by name, with its contents as text.
    async fn dump(path: std::path::PathBuf) -> String {
        let mut names: Vec<_> = std::fs::read_dir(&path)
            .expect("the directory")
            .map(|entry| entry.expect("an entry").path())
            .filter(|path| path.is_file())
            .collect();
        names.sort();
        names
            .iter()
            .map(|file| {
                let contents = std::fs::read(file).expect("a file");
                let name = file.file_name().expect("a name").to_string_lossy();
                format!("{name} -> {}\n", String::from_utf8_lossy(&contents))
            })
            .collect()
    }

    /// Nothing in the directory holds a session's id after a log-in: every file's name
    /// and contents name the session by the hash of its id.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_session_id_is_stored_in_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let store = FilesystemStore::builder(dir.path()).open().unwrap();
        let path = dir.path().to_owned();
        scenarios::no_session_id_at_rest(satchel::store::BoxedStore::new(store), || {
            dump(path.clone())
        })
        .await;
    }

    /// With SESSION_DATA_KEY, no file holds a session value in the clear.
    #[cfg(feature = "sealed")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn session_values_are_sealed_in_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let store = FilesystemStore::builder(dir.path()).open().unwrap();
        let path = dir.path().to_owned();
        scenarios::values_sealed_at_rest(satchel::store::BoxedStore::new(store), || {
            dump(path.clone())
        })
        .await;
    }

    fn app(dir: &tempfile::TempDir) -> App {
        let config = SessionConfig::default().with_file_dir(dir.path());
        App::new(FilesystemStore::from_config(&config).unwrap(), config)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fifty_concurrent_requests_keep_fifty_keys_on_the_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(scenarios::race(&Axum, &app(&dir)).await, 50);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_stores_on_one_directory_share_sessions_and_keep_every_key() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (app(&dir), app(&dir));
        let mut browser = scenarios::Browser::new(&Axum, &a);
        browser.post("/login?uid=12").await;
        let cookie = format!("session={}", browser.cookie.clone().unwrap());
        let reply = Axum.request(&b, "GET", "/read", Some(&cookie)).await;
        assert_eq!(reply.body, "12");
        let requests = (0..50).map(|i| {
            let (cookie, app) = (cookie.clone(), if i % 2 == 0 { &a } else { &b });
            async move {
                Axum.request(app, "POST", &format!("/set/k{i}"), Some(&cookie))
                    .await
            }
        });
        let replies = scenarios::join_all(requests).await;
        assert!(replies.iter().all(|r| r.status == 200));
        let keys = Axum.request(&a, "GET", "/count-keys", Some(&cookie)).await;
        assert_eq!(keys.body, "52", "user_id, n and all fifty keys");
    }

    #[tokio::test]
    async fn an_unwritable_file_dir_fails_at_startup() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let config = SessionConfig::default()
            .with_session_type(satchel::SessionType::Filesystem)
            .with_file_dir(file.path().join("sessions"));
        let error = satchel::SessionLayer::from_config(config)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("SESSION_FILE_DIR"), "{error}");
    }
}

/// Memory-store checks of what is (not) stored, which a generic scenario cannot see.
mod memory_contents {
    use super::*;
    use satchel::MemoryStore;

    #[tokio::test]
    async fn an_empty_session_and_a_5xx_store_nothing() {
        let store = MemoryStore::default();
        let app = App::new(store.clone(), satchel::SessionConfig::default());
        let mut b = scenarios::Browser::new(&Axum, &app);
        b.get("/read").await;
        b.post("/remove/nothing").await;
        assert_eq!(b.post("/fail").await.status, 500);
        assert!(store.is_empty(), "{} entries", store.len());
        b.post("/set/k").await;
        assert_eq!(store.len(), 1);
    }
}

/// What the engine logs when things go wrong: the cause, never the id.
#[cfg(feature = "filesystem")]
mod logs {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (captured, tracing::subscriber::set_default(subscriber))
    }

    #[tokio::test]
    async fn a_store_failure_is_logged_with_its_cause_and_without_the_id() {
        let (logs, _guard) = capture();
        let id = satchel::SessionId::generate().to_string();
        let app = App::new(scenarios::DownStore, satchel::SessionConfig::default());
        let cookie = format!("session={id}");
        let reply = Axum.request(&app, "GET", "/read", Some(&cookie)).await;
        assert_eq!((reply.status, reply.body.as_str()), (500, ""));
        let text = logs.text();
        assert!(text.contains("ERROR"), "{text}");
        assert!(text.contains("session store failed to load"), "{text}");
        assert!(
            text.contains("session backend failed: connection refused"),
            "{text}"
        );
        assert!(!text.contains(&id), "the id leaked into the log: {text}");
    }

    #[tokio::test]
    async fn a_corrupt_entry_is_a_warning_and_a_fresh_session() {
        let (logs, _guard) = capture();
        let dir = tempfile::tempdir().unwrap();
        let config = satchel::SessionConfig::default().with_file_dir(dir.path());
        let store = satchel::FilesystemStore::from_config(&config).unwrap();
        let app = App::new(store, config);
        let mut b = scenarios::Browser::new(&Axum, &app);
        b.post("/login?uid=5").await;
        let id = b.id().to_string();
        // Overwrite the session file with garbage.
        let file = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(&id))
            .unwrap();
        std::fs::write(&file, b"\x00garbage").unwrap();
        // The file's modification time is its expiry: keep it live.
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
        let handle = std::fs::File::options().write(true).open(&file).unwrap();
        handle.set_modified(later).unwrap();
        assert_eq!(b.get("/read").await.body, "0");
        let text = logs.text();
        assert!(text.contains("WARN"), "{text}");
        assert!(text.contains("could not be decoded"), "{text}");
        assert!(!text.contains(&id), "{text}");
    }
}

/// Each request runs in a `satchel.request` span with its method, path, status and what
/// became of the session, and each store call in a `satchel.store` span inside it; no
/// span carries the session's id or the query string.
#[test]
fn requests_and_store_calls_are_traced() {
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::format::FmtSpan;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cookie = tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let app = Router::new()
                .route(
                    "/set",
                    get(|s: Session| async move {
                        s.insert("k", 1).await.unwrap();
                        "ok"
                    }),
                )
                .layer(satchel::SessionLayer::new(
                    satchel::MemoryStore::default(),
                    satchel::SessionConfig::default(),
                ));
            let response = app
                .oneshot(
                    Request::builder()
                        .uri("/set?secret=1")
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            response.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .to_owned()
        })
    });
    let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let closed = |span: &str| {
        log.lines()
            .find(|line| line.contains(span) && line.contains("close"))
            .unwrap_or_else(|| panic!("no {span} span closed in:\n{log}"))
    };
    closed("satchel.request{method=\"GET\" path=\"/set\" status=200 session=\"created\"}");
    let store = closed("satchel.store{store=\"memory\" operation=\"save\"");
    assert!(store.contains("result=\"ok\""), "{store}");
    let id = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
    assert!(!log.contains(id), "a session id in a span:\n{log}");
    assert!(
        !log.contains("secret"),
        "the query string in a span:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_over_its_budget_is_a_mappable_error() {
    scenarios::a_session_over_its_budget_is_a_mappable_error(&Axum).await;
}

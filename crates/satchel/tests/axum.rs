//! The shared HTTP scenarios through the tower layer and the axum extractor.

#![cfg(all(feature = "axum", feature = "signed"))]
#![allow(clippy::unwrap_used)]

mod scenarios;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query};
use axum::http::{Request, StatusCode, header};
use axum::routing::{get, post};
use satchel::{Error, Session, SessionLayer};
use scenarios::{App, Harness, Reply};
use serde::Deserialize;
use tower::ServiceExt as _;

#[derive(Deserialize)]
struct Uid {
    uid: Option<i64>,
}

fn router(app: &App) -> Router {
    Router::new()
        .route("/none", get(|| async { "ok" }))
        .route(
            "/login",
            post(|s: Session, Query(q): Query<Uid>| async move {
                s.insert("user_id", q.uid.unwrap_or(1)).await?;
                s.insert("n", 0).await?;
                s.cycle_id().await?;
                Ok::<_, Error>("ok")
            }),
        )
        .route(
            "/read",
            get(|s: Session| async move {
                Ok::<_, Error>(s.get::<i64>("user_id").await?.unwrap_or(0).to_string())
            }),
        )
        .route(
            "/write",
            post(|s: Session| async move {
                let n = s.get::<i64>("n").await?.unwrap_or(0) + 1;
                s.insert("n", n).await?;
                Ok::<_, Error>(n.to_string())
            }),
        )
        .route(
            "/count-keys",
            get(|s: Session| async move { Ok::<_, Error>(s.len().await?.to_string()) }),
        )
        .route(
            "/set/{k}",
            post(|s: Session, Path(k): Path<String>| async move {
                s.insert(&k, true).await?;
                Ok::<_, Error>("ok")
            }),
        )
        .route(
            "/get/{k}",
            get(|s: Session, Path(k): Path<String>| async move {
                let value = s.get_value(&k).await?.unwrap_or_default();
                Ok::<_, Error>(value.to_string())
            }),
        )
        .route(
            "/remove/{k}",
            post(|s: Session, Path(k): Path<String>| async move {
                s.remove_value(&k).await?;
                Ok::<_, Error>("ok")
            }),
        )
        .route(
            "/logout",
            post(|s: Session| async move {
                s.destroy();
                "ok"
            }),
        )
        .route(
            "/logout-then-set",
            post(|s: Session| async move {
                s.destroy();
                s.insert("flash", "bye").await?;
                Ok::<_, Error>("ok")
            }),
        )
        .route(
            "/clear",
            post(|s: Session| async move {
                s.clear().await?;
                Ok::<_, Error>("ok")
            }),
        )
        .route(
            "/cycle",
            post(|s: Session| async move {
                s.cycle_id().await?;
                Ok::<_, Error>("ok")
            }),
        )
        .route(
            "/permanent/{flag}",
            post(|s: Session, Path(flag): Path<bool>| async move {
                s.set_permanent(flag).await?;
                Ok::<_, Error>("ok")
            }),
        )
        .route(
            "/fail",
            post(|s: Session| async move {
                s.insert("failed", true).await?;
                Ok::<_, Error>((StatusCode::INTERNAL_SERVER_ERROR, "boom"))
            }),
        )
        .layer(SessionLayer::new(app.store.clone(), app.config.clone()))
}

struct Axum;

impl Harness for Axum {
    async fn request(&self, app: &App, method: &str, path: &str, cookie: Option<&str>) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let response = router(app)
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let (set_cookie, vary) = {
            let all = |name| {
                response
                    .headers()
                    .get_all(name)
                    .iter()
                    .map(|v| v.to_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            };
            (all(header::SET_COOKIE), all(header::VARY))
        };
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        Reply {
            status,
            set_cookie,
            vary,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }
}

scenarios!(Axum);

#[tokio::test]
async fn the_extractor_rejects_routes_without_the_layer() {
    let app = Router::new().route("/", get(|_: Session| async { "unreachable" }));
    let response = app
        .oneshot(Request::builder().uri("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
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
        let error = SessionLayer::from_config(config).await.unwrap_err();
        assert!(error.to_string().contains("SESSION_FILE_DIR"), "{error}");
    }
}

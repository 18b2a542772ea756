//! The axum test app: the scenario routes behind `SessionLayer`, called with tower's
//! `oneshot`.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query};
use axum::http::{Request, StatusCode, header};
use axum::routing::{get, post};
use satchel::{Error, Session, SessionLayer};
use serde::Deserialize;
use tower::ServiceExt as _;

use super::{App, Harness, Reply};

#[derive(Deserialize)]
struct Uid {
    uid: Option<i64>,
}

pub fn router(app: &App) -> Router {
    Router::new()
        .route("/none", get(|| async { "ok" }))
        .route(
            "/bind",
            post(|s: Session, Query(q): Query<Uid>| async move {
                super::bind(&s, q.uid.unwrap_or(1)).await
            }),
        )
        .route(
            "/logout-all",
            post(|s: Session| async move { super::logout_all(&s, false).await }),
        )
        .route(
            "/logout-others",
            post(|s: Session| async move { super::logout_all(&s, true).await }),
        )
        .route(
            "/user-sessions",
            get(|s: Session| async move { super::user_sessions(&s).await }),
        )
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
            "/incr",
            post(
                |s: Session| async move { Ok::<_, Error>(s.increment("n", 1).await?.to_string()) },
            ),
        )
        .route(
            "/flash/{m}",
            post(|s: Session, Path(m): Path<String>| async move {
                s.flash("info", &m).await?;
                Ok::<_, Error>("ok")
            }),
        )
        .route(
            "/take-flashes",
            post(|s: Session| async move {
                let taken = s.take_flashes().await?;
                let messages: Vec<String> = taken.into_iter().map(|f| f.message).collect();
                Ok::<_, Error>(messages.join(","))
            }),
        )
        .route(
            "/bump/{k}",
            post(|s: Session, Path(k): Path<String>| async move {
                let next = s.get::<i64>(&k).await?.unwrap_or(0) + 1;
                s.insert_if_unchanged(&k, next).await?;
                Ok::<_, Error>(next.to_string())
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
            "/grow/{n}",
            post(|s: Session, Path(n): Path<usize>| async move {
                s.insert("blob", "x".repeat(n)).await?;
                Ok::<_, Error>("ok")
            }),
        )
        .route(
            "/grow-mapped/{n}",
            post(|s: Session, Path(n): Path<usize>| async move {
                match s.insert("blob", "x".repeat(n)).await {
                    Ok(()) => Ok("ok"),
                    // The application's own answer to a session over its budget.
                    Err(Error::TooLarge { .. }) => Err(StatusCode::PAYLOAD_TOO_LARGE),
                    Err(_) => Err(StatusCode::INTERNAL_SERVER_ERROR),
                }
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
            "/lifetime/{seconds}",
            post(|s: Session, Path(seconds): Path<u64>| async move {
                crate::scenarios::set_lifetime(&s, seconds).await?;
                Ok::<_, Error>("ok")
            }),
        )
        .route(
            "/status/{k}",
            get(|s: Session, Path(k): Path<String>| async move {
                crate::scenarios::status_walk(&s, &k).await
            }),
        )
        .route(
            "/set-status/{k}",
            post(|s: Session, Path(k): Path<String>| async move {
                crate::scenarios::set_then_status(&s, &k).await
            }),
        )
        .route(
            "/destroy-status",
            post(|s: Session| async move { crate::scenarios::destroy_then_status(&s) }),
        )
        .route(
            "/fail",
            post(|s: Session| async move {
                s.insert("failed", true).await?;
                Ok::<_, Error>((StatusCode::INTERNAL_SERVER_ERROR, "boom"))
            }),
        )
        .layer(SessionLayer::from(app.manager()))
}

/// The axum harness.
pub struct Axum;

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
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
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
            retry_after,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }
}

//! `satchel serve`: the demo page and the benchmark HTTP contract.

use anyhow::Context as _;
use axum::Router;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::routing::{get, post};
use satchel::{Error, Session, SessionLayer, SessionManager};
use serde::Deserialize;

use crate::cli::ServeArgs;

use super::demo;

pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = super::demo_config(args.config.as_deref())?;
    let manager = SessionManager::from_config(config)
        .await
        .context("session configuration")?;
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("binding {}", args.bind))?;
    let config = manager.config();
    let store = match config.session_type() {
        satchel::SessionType::Filesystem => {
            format!("filesystem in {}", config.file_dir().display())
        }
        other => other.to_string(),
    };
    tracing::info!(
        "satchel serve: listening on http://{} (store: {store}; cookie: {}; signed ids: {})",
        listener.local_addr()?,
        config.cookie_name(),
        config.use_signer(),
    );
    axum::serve(listener, app(manager))
        .with_graceful_shutdown(shutdown())
        .await
        .context("serving")?;
    tracing::info!("satchel serve: stopped");
    Ok(())
}

/// The demo's routes behind the session layer.
pub(crate) fn app(manager: SessionManager) -> Router {
    Router::new()
        .merge(demo::routes(manager.clone()))
        .route("/none", get(|| async { "ok" }))
        .route("/login", post(login))
        .route("/read", get(read))
        .route("/write", post(write))
        .route("/count-keys", get(count_keys))
        .route("/set/{key}", post(set))
        .route("/logout", post(logout))
        .route("/clear", post(clear))
        .route("/permanent/{flag}", post(permanent))
        .route("/dump", get(dump))
        .layer(SessionLayer::from(manager))
}

async fn shutdown() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("satchel serve: shutting down");
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    uid: Option<i64>,
}

/// The benchmark's login: a typical small session, and a new id.
async fn login(session: Session, Query(query): Query<LoginQuery>) -> Result<&'static str, Error> {
    let uid = query.uid.unwrap_or(1);
    session.insert("user_id", uid).await?;
    session.insert("name", format!("user-{uid:015}")).await?;
    session
        .insert("roles", ["reader", "writer", "viewer"])
        .await?;
    session
        .insert("csrf", "0123456789abcdef0123456789abcdef")
        .await?;
    session.insert("n", 0).await?;
    session.cycle_id().await?;
    Ok("ok")
}

async fn read(session: Session) -> Result<String, Error> {
    Ok(session
        .get::<i64>("user_id")
        .await?
        .unwrap_or(0)
        .to_string())
}

async fn write(session: Session) -> Result<String, Error> {
    let n = session.get::<i64>("n").await?.unwrap_or(0) + 1;
    session.insert("n", n).await?;
    Ok(n.to_string())
}

async fn count_keys(session: Session) -> Result<String, Error> {
    Ok(session.len().await?.to_string())
}

async fn set(session: Session, Path(key): Path<String>) -> Result<&'static str, Error> {
    session.insert(&key, true).await?;
    Ok("ok")
}

async fn logout(session: Session) -> &'static str {
    session.destroy();
    "ok"
}

async fn clear(session: Session) -> Result<&'static str, Error> {
    session.clear().await?;
    Ok("ok")
}

async fn permanent(
    session: Session,
    Path(flag): Path<String>,
) -> Result<&'static str, (StatusCode, &'static str)> {
    let flag = match flag.as_str() {
        "true" => true,
        "false" => false,
        _ => return Err((StatusCode::BAD_REQUEST, "expected true or false")),
    };
    session
        .set_permanent(flag)
        .await
        .map_err(|_| (StatusCode::INTERNAL_SERVER_ERROR, ""))?;
    Ok("ok")
}

async fn dump(session: Session) -> Result<axum::Json<satchel::Data>, Error> {
    Ok(axum::Json(session.data().await?))
}

//! `satchel serve`: the demo page and the benchmark HTTP contract, on axum or actix-web.

use std::net::SocketAddr;

use anyhow::Context as _;
use satchel::{Error, Session, SessionConfig, SessionManager};
use serde::Deserialize;

use crate::cli::{Framework, ServeArgs};

use super::handlers::{self, Reply};

/// Serves until Ctrl-C or SIGTERM, with `workers` threads (TOKIO_WORKER_THREADS).
pub(crate) async fn run(args: ServeArgs, workers: usize) -> anyhow::Result<()> {
    if let Some(bind) = args.metrics_bind {
        // Installed first: what is recorded before the recorder exists is lost.
        serve_metrics(bind).await?;
    }
    let config = super::demo_config(args.config.as_deref())?;
    if !args.bind.ip().is_loopback() && !config.secure() {
        tracing::warn!(
            "satchel serve: listening on {} with SESSION_COOKIE_SECURE=false: browsers will \
             send the session cookie over plain HTTP, where anyone on the path can read it \
             and take the session; serve over HTTPS and set SESSION_COOKIE_SECURE=true",
            args.bind
        );
    }
    let manager = SessionManager::from_config(config)
        .await
        .context("session configuration")?;
    match args.framework {
        Framework::Axum => axum_app::serve(manager, args.bind, workers).await,
        Framework::Actix => {
            // actix-web runs its own single-threaded runtimes; give it a thread of its own.
            tokio::task::spawn_blocking(move || actix_app::serve(manager, args.bind, workers))
                .await
                .context("the actix-web server thread")?
        }
    }
}

/// The upper bounds of the histograms' buckets, in seconds: store calls take from tens of
/// microseconds (memory) to the store's timeout (2 s by default).
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Installs the Prometheus recorder and serves its figures at `http://{bind}/metrics`,
/// from a task of its own, for as long as the process runs.
async fn serve_metrics(bind: SocketAddr) -> anyhow::Result<()> {
    use metrics_exporter_prometheus::PrometheusBuilder;

    let handle = PrometheusBuilder::new()
        .set_buckets(BUCKETS)
        .context("the metrics' buckets")?
        .install_recorder()
        .context("installing the metrics recorder")?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("binding {bind} for metrics"))?;
    tracing::info!("satchel serve: metrics at http://{bind}/metrics");
    let upkeep = handle.clone();
    tokio::spawn(async move {
        // Histograms are drained between scrapes, not only when one comes.
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    handle.render(),
                )
            }
        }),
    );
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, "the metrics endpoint stopped");
        }
    });
    Ok(())
}

/// Whether access lines are logged (RUST_LOG lets `satchel::access` through at `info`),
/// read once: when they are not, no request pays for gathering them.
fn access_logged() -> bool {
    static LOGGED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LOGGED.get_or_init(|| tracing::enabled!(target: "satchel::access", tracing::Level::INFO))
}

/// One access line per request, at `info` under the target `satchel::access`: method,
/// path (never the query), status, what became of the session (from the disposition the
/// integration `noted` and the response's `Vary` values) and how long the answer took.
/// Never an id or a cookie.
fn log_access<'a>(
    method: &str,
    path: &str,
    status: u16,
    noted: Option<satchel::Disposition>,
    vary: impl Iterator<Item = &'a [u8]>,
    took: std::time::Duration,
) {
    let session =
        satchel::Disposition::of_response(noted, satchel::Disposition::varies_on_cookie(vary));
    tracing::info!(
        target: "satchel::access",
        method,
        path,
        status,
        session = session.as_str(),
        micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
        "request",
    );
}

/// The start-up line: where, which store, which cookie.
fn announce(addr: SocketAddr, framework: &str, workers: usize, config: &SessionConfig) {
    let store = super::describe_store(config);
    let plural = if workers == 1 { "" } else { "s" };
    tracing::info!(
        "satchel serve: listening on http://{addr} ({framework}, {workers} worker thread{}; store: {store}; cookie: {}; signed ids: {})",
        plural,
        config.cookie_name(),
        config.use_signer(),
    );
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
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

#[derive(Debug, Deserialize)]
struct LoginForm {
    name: String,
    /// The "Remember me" box: sent (as `1`) only when ticked.
    remember: Option<String>,
}

/// Routes for axum.
mod axum_app {
    use axum::extract::{Form, Path, Query, State};
    use axum::http::StatusCode;
    use axum::http::header::CACHE_CONTROL;
    use axum::response::{Html, IntoResponse, Redirect, Response};
    use axum::routing::{get, post};
    use axum::{Json, Router};
    use satchel::SessionLayer;

    use super::*;

    impl IntoResponse for Reply {
        fn into_response(self) -> Response {
            match self {
                Reply::Text(text) => text.into_response(),
                Reply::Json(data) => Json(data).into_response(),
                Reply::Html(html) => Html(html).into_response(),
                Reply::Redirect(to) => Redirect::to(to).into_response(),
                Reply::BadRequest(why) => (StatusCode::BAD_REQUEST, why).into_response(),
                Reply::Health(healthy, body) => {
                    let status = if healthy {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    (status, [(CACHE_CONTROL, "no-store")], Json(body)).into_response()
                }
            }
        }
    }

    pub(super) async fn serve(
        manager: SessionManager,
        bind: SocketAddr,
        workers: usize,
    ) -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .with_context(|| format!("binding {bind}"))?;
        announce(listener.local_addr()?, "axum", workers, manager.config());
        axum::serve(listener, router(manager))
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("serving")?;
        tracing::info!("satchel serve: stopped");
        Ok(())
    }

    fn router(manager: SessionManager) -> Router {
        let router = Router::new()
            .route(
                "/",
                get(|State(m): State<SessionManager>, s: Session| async move {
                    handlers::page(&s, m.config()).await
                }),
            )
            .route(
                "/demo/login",
                post(|s: Session, Form(f): Form<LoginForm>| async move {
                    handlers::demo_login(&s, &f.name, f.remember.is_some()).await
                }),
            )
            .route(
                "/demo/count",
                post(|s: Session| async move { handlers::demo_count(&s).await }),
            )
            .route(
                "/demo/logout",
                post(|s: Session| async move { handlers::demo_logout(&s).await }),
            )
            .route(
                "/demo/logout-others",
                post(|s: Session| async move { handlers::demo_logout_all(&s, true).await }),
            )
            .route(
                "/demo/logout-all",
                post(|s: Session| async move { handlers::demo_logout_all(&s, false).await }),
            )
            .route(
                "/logout-all",
                post(|s: Session| async move { handlers::logout_all(&s).await }),
            )
            .route(
                "/user-sessions",
                get(|s: Session| async move { handlers::user_sessions(&s).await }),
            )
            .route("/none", get(|| async { "ok" }))
            .route(
                "/healthz",
                get(|State(m): State<SessionManager>| async move { handlers::healthz(&m).await }),
            )
            .route(
                "/login",
                post(|s: Session, Query(q): Query<LoginQuery>| async move {
                    handlers::login(&s, q.uid).await
                }),
            )
            .route(
                "/read",
                get(|s: Session| async move { handlers::read(&s).await }),
            )
            .route(
                "/write",
                post(|s: Session| async move { handlers::write(&s).await }),
            )
            .route(
                "/count-keys",
                get(|s: Session| async move { handlers::count_keys(&s).await }),
            )
            .route(
                "/set/{key}",
                post(
                    |s: Session, Path(k): Path<String>| async move { handlers::set(&s, &k).await },
                ),
            )
            .route(
                "/logout",
                post(|s: Session| async move { Ok::<_, Error>(handlers::logout(&s)) }),
            )
            .route(
                "/clear",
                post(|s: Session| async move { handlers::clear(&s).await }),
            )
            .route(
                "/permanent/{flag}",
                post(|s: Session, Path(f): Path<String>| async move {
                    handlers::permanent(&s, &f).await
                }),
            )
            .route(
                "/dump",
                get(|s: Session| async move { handlers::dump(&s).await }),
            )
            .with_state(manager.clone());
        let router = router.layer(SessionLayer::from(manager));
        // Only when access lines are logged: the middleware costs a few thousand
        // instructions a request.
        if access_logged() {
            router.layer(axum::middleware::from_fn(access))
        } else {
            router
        }
    }

    /// Logs the request's access line once it is answered.
    async fn access(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
        let started = std::time::Instant::now();
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let response = next.run(request).await;
        let vary = response.headers().get_all(axum::http::header::VARY);
        log_access(
            method.as_str(),
            &path,
            response.status().as_u16(),
            response.extensions().get().copied(),
            vary.iter().map(axum::http::HeaderValue::as_bytes),
            started.elapsed(),
        );
        response
    }
}

/// Routes for actix-web.
mod actix_app {
    use actix_web::dev::Service as _;
    use actix_web::{HttpRequest, HttpResponse, Responder, body::BoxBody, http::header, web};
    use satchel::SessionMiddleware;

    use super::*;

    impl Responder for Reply {
        type Body = BoxBody;

        fn respond_to(self, _request: &HttpRequest) -> HttpResponse {
            match self {
                Reply::Text(text) => HttpResponse::Ok()
                    .content_type("text/plain; charset=utf-8")
                    .body(text),
                Reply::Json(data) => HttpResponse::Ok().json(data),
                Reply::Html(html) => HttpResponse::Ok()
                    .content_type("text/html; charset=utf-8")
                    .body(html),
                Reply::Redirect(to) => HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, to))
                    .finish(),
                Reply::BadRequest(why) => HttpResponse::BadRequest().body(why),
                Reply::Health(healthy, body) => if healthy {
                    HttpResponse::Ok()
                } else {
                    HttpResponse::ServiceUnavailable()
                }
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .json(body),
            }
        }
    }

    /// Runs the server on this thread until Ctrl-C or SIGTERM.
    pub(super) fn serve(
        manager: SessionManager,
        bind: SocketAddr,
        workers: usize,
    ) -> anyhow::Result<()> {
        actix_web::rt::System::new().block_on(async move {
            let middleware = SessionMiddleware::from(manager.clone());
            let config = web::Data::new(manager.config().clone());
            let shared = web::Data::new(manager.clone());
            let server = actix_web::HttpServer::new(move || {
                actix_web::App::new()
                    .app_data(config.clone())
                    .app_data(shared.clone())
                    .wrap(middleware.clone())
                    .wrap_fn(|request, service| {
                        // Gathered only when access lines are logged.
                        let access = access_logged().then(|| {
                            let started = std::time::Instant::now();
                            (started, request.method().clone(), request.path().to_owned())
                        });
                        let answer = service.call(request);
                        async move {
                            let response = answer.await?;
                            if let Some((started, method, path)) = access {
                                let vary = response.headers().get_all(header::VARY);
                                log_access(
                                    method.as_str(),
                                    &path,
                                    response.status().as_u16(),
                                    response.response().extensions().get().copied(),
                                    vary.map(header::HeaderValue::as_bytes),
                                    started.elapsed(),
                                );
                            }
                            Ok(response)
                        }
                    })
                    .configure(routes)
            })
            .workers(workers)
            .disable_signals()
            .bind(bind)
            .with_context(|| format!("binding {bind}"))?;
            let addr = server.addrs().first().copied().unwrap_or(bind);
            announce(addr, "actix-web", workers, manager.config());
            let server = server.run();
            let handle = server.handle();
            actix_web::rt::spawn(async move {
                shutdown_signal().await;
                handle.stop(true).await;
            });
            server.await.context("serving")?;
            tracing::info!("satchel serve: stopped");
            Ok(())
        })
    }

    fn routes(cfg: &mut web::ServiceConfig) {
        cfg.route(
            "/",
            web::get().to(|s: Session, c: web::Data<SessionConfig>| async move {
                handlers::page(&s, &c).await
            }),
        )
        .route(
            "/demo/login",
            web::post().to(|s: Session, f: web::Form<LoginForm>| async move {
                handlers::demo_login(&s, &f.name, f.remember.is_some()).await
            }),
        )
        .route(
            "/demo/count",
            web::post().to(|s: Session| async move { handlers::demo_count(&s).await }),
        )
        .route(
            "/demo/logout",
            web::post().to(|s: Session| async move { handlers::demo_logout(&s).await }),
        )
        .route(
            "/demo/logout-others",
            web::post().to(|s: Session| async move { handlers::demo_logout_all(&s, true).await }),
        )
        .route(
            "/demo/logout-all",
            web::post().to(|s: Session| async move { handlers::demo_logout_all(&s, false).await }),
        )
        .route(
            "/logout-all",
            web::post().to(|s: Session| async move { handlers::logout_all(&s).await }),
        )
        .route(
            "/user-sessions",
            web::get().to(|s: Session| async move { handlers::user_sessions(&s).await }),
        )
        .route("/none", web::get().to(|| async { "ok" }))
        .route(
            "/healthz",
            web::get()
                .to(|m: web::Data<SessionManager>| async move { handlers::healthz(&m).await }),
        )
        .route(
            "/login",
            web::post().to(|s: Session, q: web::Query<LoginQuery>| async move {
                handlers::login(&s, q.uid).await
            }),
        )
        .route(
            "/read",
            web::get().to(|s: Session| async move { handlers::read(&s).await }),
        )
        .route(
            "/write",
            web::post().to(|s: Session| async move { handlers::write(&s).await }),
        )
        .route(
            "/count-keys",
            web::get().to(|s: Session| async move { handlers::count_keys(&s).await }),
        )
        .route(
            "/set/{key}",
            web::post()
                .to(|s: Session, k: web::Path<String>| async move { handlers::set(&s, &k).await }),
        )
        .route(
            "/logout",
            web::post().to(|s: Session| async move { Ok::<_, Error>(handlers::logout(&s)) }),
        )
        .route(
            "/clear",
            web::post().to(|s: Session| async move { handlers::clear(&s).await }),
        )
        .route(
            "/permanent/{flag}",
            web::post().to(|s: Session, f: web::Path<String>| async move {
                handlers::permanent(&s, &f).await
            }),
        )
        .route(
            "/dump",
            web::get().to(|s: Session| async move { handlers::dump(&s).await }),
        );
    }
}

//! The actix-web test app: the scenario routes behind `SessionMiddleware`, served by a real
//! `HttpServer` on a loopback port (one per test app, started on first use) and called
//! over HTTP/1.1.

use actix_web::{HttpResponse, HttpServer, web};
use satchel::integration::actix::SessionMiddleware;
use satchel::{Error, Session};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{App, Harness, Reply};

/// The actix-web harness.
pub struct Actix;

#[derive(Deserialize)]
struct Uid {
    uid: Option<i64>,
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/none", web::get().to(|| async { "ok" }))
        .route(
            "/bind",
            web::post().to(|s: Session, q: web::Query<Uid>| async move {
                super::bind(&s, q.uid.unwrap_or(1)).await
            }),
        )
        .route(
            "/logout-all",
            web::post().to(|s: Session| async move { super::logout_all(&s, false).await }),
        )
        .route(
            "/logout-others",
            web::post().to(|s: Session| async move { super::logout_all(&s, true).await }),
        )
        .route(
            "/user-sessions",
            web::get().to(|s: Session| async move { super::user_sessions(&s).await }),
        )
        .route(
            "/login",
            web::post().to(|s: Session, q: web::Query<Uid>| async move {
                s.insert("user_id", q.uid.unwrap_or(1)).await?;
                s.insert("n", 0).await?;
                s.cycle_id().await?;
                Ok::<_, Error>("ok")
            }),
        )
        .route(
            "/read",
            web::get().to(|s: Session| async move {
                Ok::<_, Error>(s.get::<i64>("user_id").await?.unwrap_or(0).to_string())
            }),
        )
        .route(
            "/write",
            web::post().to(|s: Session| async move {
                let n = s.get::<i64>("n").await?.unwrap_or(0) + 1;
                s.insert("n", n).await?;
                Ok::<_, Error>(n.to_string())
            }),
        )
        .route(
            "/incr",
            web::post().to(|s: Session| async move {
                Ok::<_, Error>(s.increment("n", 1).await?.to_string())
            }),
        )
        .route(
            "/flash/{m}",
            web::post().to(|s: Session, m: web::Path<String>| async move {
                s.flash("info", &m).await?;
                Ok::<_, Error>("ok")
            }),
        )
        .route(
            "/take-flashes",
            web::post().to(|s: Session| async move {
                let taken = s.take_flashes().await?;
                let messages: Vec<String> = taken.into_iter().map(|f| f.message).collect();
                Ok::<_, Error>(messages.join(","))
            }),
        )
        .route(
            "/bump/{k}",
            web::post().to(|s: Session, k: web::Path<String>| async move {
                let next = s.get::<i64>(&k).await?.unwrap_or(0) + 1;
                s.insert_if_unchanged(&k, next).await?;
                Ok::<_, Error>(next.to_string())
            }),
        )
        .route(
            "/count-keys",
            web::get().to(|s: Session| async move { Ok::<_, Error>(s.len().await?.to_string()) }),
        )
        .route(
            "/set/{k}",
            web::post().to(|s: Session, k: web::Path<String>| async move {
                s.insert(&k, true).await?;
                Ok::<_, Error>("ok")
            }),
        )
        .route(
            "/grow/{n}",
            web::post().to(|s: Session, n: web::Path<usize>| async move {
                s.insert("blob", "x".repeat(*n)).await?;
                Ok::<_, Error>("ok")
            }),
        )
        .route(
            "/grow-mapped/{n}",
            web::post().to(|s: Session, n: web::Path<usize>| async move {
                match s.insert("blob", "x".repeat(*n)).await {
                    Ok(()) => HttpResponse::Ok().body("ok"),
                    // The application's own answer to a session over its budget.
                    Err(Error::TooLarge { .. }) => HttpResponse::PayloadTooLarge().finish(),
                    Err(_) => HttpResponse::InternalServerError().finish(),
                }
            }),
        )
        .route(
            "/get/{k}",
            web::get().to(|s: Session, k: web::Path<String>| async move {
                let value = s.get_value(&k).await?.unwrap_or_default();
                Ok::<_, Error>(value.to_string())
            }),
        )
        .route(
            "/remove/{k}",
            web::post().to(|s: Session, k: web::Path<String>| async move {
                s.remove_value(&k).await?;
                Ok::<_, Error>("ok")
            }),
        )
        .route(
            "/logout",
            web::post().to(|s: Session| async move {
                s.destroy();
                "ok"
            }),
        )
        .route(
            "/logout-then-set",
            web::post().to(|s: Session| async move {
                s.destroy();
                s.insert("flash", "bye").await?;
                Ok::<_, Error>("ok")
            }),
        )
        .route(
            "/clear",
            web::post().to(|s: Session| async move {
                s.clear().await?;
                Ok::<_, Error>("ok")
            }),
        )
        .route(
            "/cycle",
            web::post().to(|s: Session| async move {
                s.cycle_id().await?;
                Ok::<_, Error>("ok")
            }),
        )
        .route(
            "/permanent/{flag}",
            web::post().to(|s: Session, flag: web::Path<bool>| async move {
                s.set_permanent(*flag).await?;
                Ok::<_, Error>("ok")
            }),
        )
        .route(
            "/lifetime/{seconds}",
            web::post().to(|s: Session, seconds: web::Path<u64>| async move {
                crate::scenarios::set_lifetime(&s, *seconds).await?;
                Ok::<_, Error>("ok")
            }),
        )
        .route(
            "/status/{k}",
            web::get().to(|s: Session, k: web::Path<String>| async move {
                crate::scenarios::status_walk(&s, &k).await
            }),
        )
        .route(
            "/set-status/{k}",
            web::post().to(|s: Session, k: web::Path<String>| async move {
                crate::scenarios::set_then_status(&s, &k).await
            }),
        )
        .route(
            "/destroy-status",
            web::post().to(|s: Session| async move { crate::scenarios::destroy_then_status(&s) }),
        )
        .route(
            "/fail",
            web::post().to(|s: Session| async move {
                s.insert("failed", true).await?;
                Ok::<_, Error>(HttpResponse::InternalServerError().body("boom"))
            }),
        );
}

/// Starts an actix-web server for `app` on its own thread and returns its port.
fn serve(app: &App) -> u16 {
    let middleware = SessionMiddleware::from(app.manager());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(move || {
                actix_web::App::new()
                    .wrap(middleware.clone())
                    .configure(routes)
            })
            .workers(2)
            .disable_signals()
            .bind(("127.0.0.1", 0))
            .expect("a loopback port");
            tx.send(server.addrs()[0].port()).expect("the test waits");
            server.run().await
        })
    });
    rx.recv().expect("the server starts")
}

impl Harness for Actix {
    async fn request(&self, app: &App, method: &str, path: &str, cookie: Option<&str>) -> Reply {
        let port = *app.port.get_or_init(|| serve(app));
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("the server accepts");
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 0\r\n"
        );
        if let Some(cookie) = cookie {
            head.push_str(&format!("Cookie: {cookie}\r\n"));
        }
        head.push_str("\r\n");
        stream
            .write_all(head.as_bytes())
            .await
            .expect("request sent");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("response read");
        parse(&String::from_utf8(raw).expect("a UTF-8 response"))
    }
}

/// Parses an HTTP/1.1 response (with a Content-Length or chunked body).
fn parse(raw: &str) -> Reply {
    let (head, body) = raw.split_once("\r\n\r\n").expect("a complete response");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let (mut set_cookie, mut vary, mut chunked) = (Vec::new(), Vec::new(), false);
    let mut retry_after = None;
    for line in lines {
        let (name, value) = line.split_once(':').expect("a header line");
        let value = value.trim().to_owned();
        match name.to_ascii_lowercase().as_str() {
            "set-cookie" => set_cookie.push(value),
            "vary" => vary.push(value),
            "retry-after" => retry_after = Some(value),
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            _ => {}
        }
    }
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Reply {
        status,
        set_cookie,
        vary,
        retry_after,
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).expect("a chunk size");
        if size == 0 {
            break;
        }
        out.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
    out
}

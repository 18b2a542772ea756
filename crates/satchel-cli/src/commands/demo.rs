//! The demo page: log in, a counter, a flash message, log out, and a look at the session.
//! Plain HTML forms; no JavaScript.

use std::fmt::Write as _;

use axum::extract::State;
use axum::response::{Html, Redirect};
use axum::routing::{get, post};
use axum::{Form, Router};
use satchel::{Error, Session, SessionManager};
use serde::Deserialize;

pub(crate) fn routes(manager: SessionManager) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/demo/login", post(login))
        .route("/demo/count", post(count))
        .route("/demo/logout", post(logout))
        .with_state(manager)
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    name: String,
}

async fn login(session: Session, Form(form): Form<LoginForm>) -> Result<Redirect, Error> {
    let name = form.name.trim();
    if name.is_empty() {
        session.insert("flash", "Please type a name.").await?;
        return Ok(Redirect::to("/"));
    }
    let name: String = name.chars().take(64).collect();
    session.insert("flash", format!("Welcome, {name}!")).await?;
    session.insert("name", name).await?;
    // A new id at log-in: an id known before it is worth nothing after.
    session.cycle_id().await?;
    Ok(Redirect::to("/"))
}

async fn count(session: Session) -> Result<Redirect, Error> {
    let counter = session.get::<u64>("counter").await?.unwrap_or(0) + 1;
    session.insert("counter", counter).await?;
    Ok(Redirect::to("/"))
}

async fn logout(session: Session) -> Result<Redirect, Error> {
    session.destroy();
    // Inserted after destroy: a brand-new session that carries only the message.
    session.insert("flash", "You are logged out.").await?;
    Ok(Redirect::to("/"))
}

async fn page(
    State(manager): State<SessionManager>,
    session: Session,
) -> Result<Html<String>, Error> {
    let flash = session.remove::<String>("flash").await?;
    let name = session.get::<String>("name").await?;
    let counter = session.get::<u64>("counter").await?.unwrap_or(0);
    let data = session.data().await?;
    let expires = session.expires_at().await?;
    let permanent = session.is_permanent().await?;

    let mut html = String::from(HEAD);
    if let Some(flash) = flash {
        let _ = write!(html, r#"<p class="flash">{}</p>"#, escape(&flash));
    }
    match &name {
        Some(name) => {
            let _ = write!(
                html,
                r#"<h2>Hello, {}</h2>
<form method="post" action="/demo/count"><p>Counter: <strong>{counter}</strong>
<button>+1</button></p></form>
<form method="post" action="/demo/logout"><button>Log out</button></form>"#,
                escape(name)
            );
        }
        None => html.push_str(
            r#"<h2>Log in</h2>
<form method="post" action="/demo/login"><label>Name <input name="name" required maxlength="64"></label>
<button>Log in</button></form>"#,
        ),
    }
    html.push_str("<h2>This session</h2>");
    if data.is_empty() {
        html.push_str("<p>Empty: nothing is stored, and no cookie is kept.</p>");
    } else {
        html.push_str("<table><tr><th>key</th><th>value</th></tr>");
        for (key, value) in &data {
            let _ = write!(
                html,
                "<tr><td>{}</td><td><code>{}</code></td></tr>",
                escape(key),
                escape(&value.to_string())
            );
        }
        html.push_str("</table>");
    }
    let expiry = match expires {
        Some(at) => httpdate::fmt_http_date(at),
        None => "not stored yet".to_owned(),
    };
    let _ = write!(
        html,
        "<p>Stored entry expires: {expiry}. Cookie: {}.</p>",
        if permanent {
            "permanent (carries an expiry)"
        } else {
            "browser session"
        }
    );
    html.push_str("<h2>Settings in force</h2><table><tr><th>key</th><th>value</th></tr>");
    for (key, value) in manager.config().entries() {
        let _ = write!(
            html,
            "<tr><td>{key}</td><td><code>{}</code></td></tr>",
            escape(&value)
        );
    }
    html.push_str("</table></body></html>\n");
    Ok(Html(html))
}

const HEAD: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Satchel demo</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}
.flash{background:#eef7ee;border:1px solid #9c9;padding:.5rem}
form{margin:.5rem 0}
</style></head><body>
<h1>Satchel demo</h1>
<p>Server-side sessions: the browser holds only an id; everything below lives in the store.</p>
"#;

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escape_neutralises_markup() {
        assert_eq!(
            escape(r#"<b a="x">&'"#),
            "&lt;b a=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}

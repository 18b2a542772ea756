//! The demo's handlers, framework-neutral: each takes the request's [`Session`] and gives
//! a [`Reply`]; `serve` maps routes to them for axum and for actix-web alike, so both
//! frameworks serve exactly the same application.

use std::fmt::Write as _;

use std::time::{Duration, SystemTime};

use satchel::{
    Data, Error, Session, SessionConfig, SessionInfo, SessionManager, SessionStore as _,
};
use serde_json::{Value, json};

/// What a handler answers.
#[derive(Debug)]
pub(crate) enum Reply {
    /// `200` with a plain-text body.
    Text(String),
    /// `200` with a JSON body.
    Json(Data),
    /// `200` with an HTML page.
    Html(String),
    /// `303 See Other` to a path.
    Redirect(&'static str),
    /// `400` with a plain-text reason.
    BadRequest(&'static str),
    /// A health check's JSON: `200` when healthy, `503` when not; never cached.
    Health(bool, Value),
}

/// `GET /healthz`: whether the store answers, as JSON (`status`, `store`, `took_ms`, and
/// the `error` when it does not). Touches no session.
pub(crate) async fn healthz(manager: &SessionManager) -> Reply {
    let health = manager.health().await;
    let mut body = json!({
        "status": if health.is_ok() { "ok" } else { "unavailable" },
        "store": manager.config().session_type().to_string(),
        "took_ms": u64::try_from(health.took.as_millis()).unwrap_or(u64::MAX),
    });
    if let Some(breaker) = health.breaker {
        body["breaker"] = Value::from(breaker.as_str());
    }
    if let Some(reason) = health.reason() {
        body["error"] = Value::String(reason);
    }
    Reply::Health(health.is_ok(), body)
}

/// The benchmark's log-in: a typical small session bound to user `uid`, and a new id.
pub(crate) async fn login(session: &Session, uid: Option<i64>) -> Result<Reply, Error> {
    let uid = uid.unwrap_or(1);
    session.set_user(uid.to_string()).await?;
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
    Ok(Reply::Text("ok".into()))
}

/// The user id, or 0 without a session. Reads only.
pub(crate) async fn read(session: &Session) -> Result<Reply, Error> {
    let uid = session.get::<i64>("user_id").await?.unwrap_or(0);
    Ok(Reply::Text(uid.to_string()))
}

/// `n += 1`, atomically in the store: concurrent requests never lose an increment, and
/// each answers its own `n`.
pub(crate) async fn write(session: &Session) -> Result<Reply, Error> {
    let n = session.increment("n", 1).await?;
    Ok(Reply::Text(n.to_string()))
}

/// The number of keys in the session.
pub(crate) async fn count_keys(session: &Session) -> Result<Reply, Error> {
    Ok(Reply::Text(session.len().await?.to_string()))
}

/// Sets `key` to `true`.
pub(crate) async fn set(session: &Session, key: &str) -> Result<Reply, Error> {
    session.insert(key, true).await?;
    Ok(Reply::Text("ok".into()))
}

/// Destroys the session.
pub(crate) fn logout(session: &Session) -> Reply {
    session.destroy();
    Reply::Text("ok".into())
}

/// Revokes every session of the logged-in user, this one included; answers how many
/// went.
pub(crate) async fn logout_all(session: &Session) -> Result<Reply, Error> {
    let revoked = match session.user().await? {
        Some(user) => session.manager().revoke_user(&user, None).await?,
        None => 0,
    };
    session.destroy();
    Ok(Reply::Text(revoked.to_string()))
}

/// The logged-in user's live sessions: `{"count": N, "sessions": [...]}`, each as
/// [`session_json`] gives it.
pub(crate) async fn user_sessions(session: &Session) -> Result<Reply, Error> {
    let sessions = match session.user().await? {
        Some(user) => session.manager().user_sessions(&user).await?,
        None => Vec::new(),
    };
    let listed: Vec<Value> = sessions.iter().map(session_json).collect();
    let mut reply = Data::new();
    reply.insert("count".into(), json!(listed.len()));
    reply.insert("sessions".into(), Value::Array(listed));
    Ok(Reply::Json(reply))
}

/// One listed session as JSON: its fingerprint (never its id) and its times, in RFC 3339.
pub(crate) fn session_json(info: &SessionInfo) -> Value {
    json!({
        "fingerprint": info.fingerprint,
        "created": rfc3339(info.created),
        "last_seen": rfc3339(info.last_seen),
        "expires": rfc3339(info.expires_at),
        "permanent": info.permanent,
        "size": info.size,
    })
}

fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

/// Removes every key.
pub(crate) async fn clear(session: &Session) -> Result<Reply, Error> {
    session.clear().await?;
    Ok(Reply::Text("ok".into()))
}

/// Makes the session permanent or a browser session (`flag` is `true` or `false`).
pub(crate) async fn permanent(session: &Session, flag: &str) -> Result<Reply, Error> {
    let flag = match flag {
        "true" => true,
        "false" => false,
        _ => return Ok(Reply::BadRequest("expected true or false")),
    };
    session.set_permanent(flag).await?;
    Ok(Reply::Text("ok".into()))
}

/// The whole session as JSON.
pub(crate) async fn dump(session: &Session) -> Result<Reply, Error> {
    Ok(Reply::Json(session.data().await?))
}

/// How long the demo remembers a user who ticked "Remember me".
const REMEMBERED: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long the demo keeps a session otherwise, from its last change: its cookie goes
/// when the browser closes.
const NOT_REMEMBERED: Duration = Duration::from_secs(2 * 3600);

/// The demo's log-in form; `remember`: the "Remember me" box was ticked.
pub(crate) async fn demo_login(
    session: &Session,
    name: &str,
    remember: bool,
) -> Result<Reply, Error> {
    let name = name.trim();
    if name.is_empty() {
        session.flash("message", "Please type a name.").await?;
        return Ok(Reply::Redirect("/"));
    }
    let name: String = name.chars().take(64).collect();
    session
        .flash("message", &format!("Welcome, {name}!"))
        .await?;
    session.set_user(name.clone()).await?;
    session.insert("name", name).await?;
    // Remembered: a cookie that outlives the browser, for a month of idleness. Otherwise
    // a browser-session cookie, and an entry that goes two hours after its last change.
    session.set_permanent(remember).await?;
    let lifetime = if remember { REMEMBERED } else { NOT_REMEMBERED };
    session.set_lifetime(Some(lifetime)).await?;
    // A new id at log-in: an id known before it is worth nothing after.
    session.cycle_id().await?;
    Ok(Reply::Redirect("/"))
}

/// The demo's counter.
pub(crate) async fn demo_count(session: &Session) -> Result<Reply, Error> {
    session.increment("counter", 1).await?;
    Ok(Reply::Redirect("/"))
}

/// The demo's log-out: the session goes, and a brand-new one carries the message.
pub(crate) async fn demo_logout(session: &Session) -> Result<Reply, Error> {
    session.destroy();
    session.flash("message", "You are logged out.").await?;
    Ok(Reply::Redirect("/"))
}

/// The demo's "log out everywhere else" (`others_only`) and "log out everywhere".
pub(crate) async fn demo_logout_all(session: &Session, others_only: bool) -> Result<Reply, Error> {
    let Some(user) = session.user().await? else {
        return Ok(Reply::Redirect("/"));
    };
    let here = session.id().await?;
    let keep = if others_only { here.as_ref() } else { None };
    let revoked = session.manager().revoke_user(&user, keep).await?;
    if others_only {
        let others = if revoked == 1 { "session" } else { "sessions" };
        session
            .flash(
                "message",
                &format!("Logged out of {revoked} other {others}."),
            )
            .await?;
    } else {
        session.destroy();
        session
            .flash("message", "You are logged out everywhere.")
            .await?;
    }
    Ok(Reply::Redirect("/"))
}

/// The demo page.
pub(crate) async fn page(session: &Session, config: &SessionConfig) -> Result<Reply, Error> {
    let flashes = session.take_flashes().await?;
    let name = session.get::<String>("name").await?;
    let counter = session.get::<u64>("counter").await?.unwrap_or(0);
    let data = session.data().await?;
    let expires = session.expires_at().await?;
    let permanent = session.is_permanent().await?;

    let mut html = String::from(HEAD);
    for flash in &flashes {
        let _ = write!(html, r#"<p class="flash">{}</p>"#, escape(&flash.message));
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
            sessions_table(&mut html, session).await?;
        }
        None => html.push_str(
            r#"<h2>Log in</h2>
<form method="post" action="/demo/login"><label>Name <input name="name" required maxlength="64"></label>
<label><input type="checkbox" name="remember" value="1"> Remember me</label>
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
    // An empty session is deleted (or never written) when this response is sent, whatever
    // expiry the entry it was loaded from carried.
    let expiry = match expires {
        Some(at) if !data.is_empty() => httpdate::fmt_http_date(at),
        _ => "not stored".to_owned(),
    };
    let cookie = if permanent {
        "permanent (carries an expiry)"
    } else {
        "browser session"
    };
    let _ = write!(
        html,
        "<p>Stored entry expires: {expiry}. Cookie: {cookie}.</p>"
    );
    html.push_str("<h2>Settings in force</h2><table><tr><th>key</th><th>value</th></tr>");
    for (key, value) in config.entries() {
        let _ = write!(
            html,
            "<tr><td>{key}</td><td><code>{}</code></td></tr>",
            escape(&value)
        );
    }
    html.push_str("</table></body></html>\n");
    Ok(Reply::Html(html))
}

/// The logged-in user's sessions, this one marked, with the forms that log the others
/// (or all) out.
async fn sessions_table(html: &mut String, session: &Session) -> Result<(), Error> {
    let Some(user) = session.user().await? else {
        return Ok(());
    };
    if session.manager().store().capabilities().in_cookie {
        html.push_str(
            "<p>Each session lives in its own cookie here (SESSION_TYPE=cookie): no server \
             keeps a list of them, so there is none to show, and no log-out elsewhere.</p>",
        );
        return Ok(());
    }
    let here = session.id().await?.map(|id| id.fingerprint());
    let sessions = session.manager().user_sessions(&user).await?;
    html.push_str(
        "<h2>Your sessions</h2><table id=\"sessions\"><tr><th>session</th><th>logged in</th>\
         <th>last seen</th><th></th></tr>",
    );
    for info in &sessions {
        let this = if here.as_deref() == Some(info.fingerprint.as_str()) {
            "this one"
        } else {
            ""
        };
        let _ = write!(
            html,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{this}</td></tr>",
            escape(&info.fingerprint),
            httpdate::fmt_http_date(info.created),
            httpdate::fmt_http_date(info.last_seen),
        );
    }
    html.push_str(
        r#"</table>
<form method="post" action="/demo/logout-others"><button>Log out everywhere else</button></form>
<form method="post" action="/demo/logout-all"><button>Log out everywhere</button></form>"#,
    );
    Ok(())
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

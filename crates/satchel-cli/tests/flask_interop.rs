//! One browser session moving back and forth between a Flask application and `satchel
//! serve` (SESSION_FLASK_COMPAT), on every backend they share, for both Flask layouts:
//!
//! - Flask-Session 0.8 (`tests/flask/app.py`, values in msgpack), and
//! - Flask Unchained 0.9 on Flask-Session 0.6 (`tests/flask/app_legacy.py`, values pickled).
//!
//! The Flask applications run from the virtual environments `scripts/flask-venvs.sh`
//! makes (`source scripts/services.sh` exports `SATCHEL_TEST_FLASK` and
//! `SATCHEL_TEST_FLASK_LEGACY`); without them the tests skip, and fail under `CI=true`.
//! Both sides sign their cookies (SESSION_USE_SIGNER) with one SECRET_KEY.

#![allow(clippy::unwrap_used)]

mod support;

use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Reply, Server, free_port, service, start_on, try_request_as, unique};

/// The secret both sides sign their cookies with.
const SECRET: &str = "the secret a Flask app and a Satchel service share";

/// How long an idle session lives on both sides: short, so that the test sees it end.
const LIFETIME_SECS: u64 = 5;

/// The Flask-Session layout a test runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Flask-Session 0.8: msgpack values.
    Msgpack,
    /// Flask Unchained 0.9 on Flask-Session 0.6: pickled values.
    Pickle,
}

impl Layout {
    /// The Python of the layout's virtual environment, or `None` after saying why.
    fn python(self) -> Option<String> {
        let var = match self {
            Self::Msgpack => "SATCHEL_TEST_FLASK",
            Self::Pickle => "SATCHEL_TEST_FLASK_LEGACY",
        };
        service(var)
    }

    fn script(self) -> &'static str {
        match self {
            Self::Msgpack => "app.py",
            Self::Pickle => "app_legacy.py",
        }
    }

    /// SESSION_FLASK_COMPAT for it.
    fn compat(self) -> &'static str {
        match self {
            Self::Msgpack => "true",
            Self::Pickle => "pickle",
        }
    }
}

/// A reference Flask application on a port of its own.
struct Flask {
    child: Child,
    port: u16,
    log: tempfile::NamedTempFile,
}

impl Drop for Flask {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Flask {
    /// Starts the layout's application with `envs`, and waits until it listens.
    fn start(layout: Layout, python: &str, envs: &[(String, String)]) -> Self {
        let port = free_port();
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/flask")
            .join(layout.script());
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut command = Command::new(python);
        command
            .arg(script)
            .env("PORT", port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log.reopen().unwrap()));
        for (key, value) in envs {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (ready, listening) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("listening on") {
                    let _ = ready.send(());
                }
            }
        });
        let flask = Self { child, port, log };
        let started = listening.recv_timeout(Duration::from_secs(60));
        assert!(
            started.is_ok(),
            "the Flask app did not start:\n{}",
            std::fs::read_to_string(flask.log.path()).unwrap_or_default()
        );
        flask
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

/// The backends both sides share.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Redis,
    Memcached,
    Sqlite,
    Postgres,
    MariaDb,
    MongoDb,
}

/// The settings of one run: Satchel's and Flask's, naming the same store.
struct Settings {
    satchel: Vec<(String, String)>,
    flask: Vec<(String, String)>,
    /// Removes a SQLite file's directory when the run ends.
    _dir: Option<tempfile::TempDir>,
}

fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

impl Backend {
    /// The settings for this backend, or `None` when its server is not there.
    fn settings(self, layout: Layout) -> Option<Settings> {
        let prefix = format!("{}:", unique("flaskx"));
        let table = unique("flaskx");
        let lifetime = LIFETIME_SECS.to_string();
        let mut satchel = pairs(&[
            ("SESSION_FLASK_COMPAT", layout.compat()),
            ("SESSION_HASH_IDS", "false"),
            ("SESSION_USE_SIGNER", "true"),
            ("SECRET_KEY", SECRET),
            ("SESSION_KEY_PREFIX", &prefix),
            ("PERMANENT_SESSION_LIFETIME", &lifetime),
        ]);
        let mut flask = pairs(&[
            ("SESSION_USE_SIGNER", "true"),
            ("SECRET_KEY", SECRET),
            ("SESSION_KEY_PREFIX", &prefix),
            ("PERMANENT_SESSION_LIFETIME", &lifetime),
        ]);
        let mut dir = None;
        let (own, theirs) = match self {
            Self::Redis => {
                let url = service("SATCHEL_TEST_REDIS_URL")?;
                (
                    vec![
                        ("SESSION_TYPE", "redis".to_owned()),
                        ("SESSION_REDIS", url.clone()),
                    ],
                    vec![("SESSION_TYPE", "redis".to_owned()), ("SESSION_REDIS", url)],
                )
            }
            Self::Memcached => {
                // One server: Flask-Session's client knows no pool.
                let servers = service("SATCHEL_TEST_MEMCACHED")?;
                let first = servers.split(',').next().unwrap().trim().to_owned();
                (
                    vec![
                        ("SESSION_TYPE", "memcached".to_owned()),
                        ("SESSION_MEMCACHED", first.clone()),
                    ],
                    vec![
                        ("SESSION_TYPE", "memcached".to_owned()),
                        ("SESSION_MEMCACHED", first),
                    ],
                )
            }
            Self::Sqlite | Self::Postgres | Self::MariaDb => {
                let (url, alchemy) = match self {
                    Self::Sqlite => {
                        let made = tempfile::tempdir().unwrap();
                        let path = made.path().join("sessions.db");
                        let urls = (
                            format!("sqlite://{}?mode=rwc", path.display()),
                            format!("sqlite:///{}", path.display()),
                        );
                        dir = Some(made);
                        urls
                    }
                    Self::Postgres => {
                        let url = service("SATCHEL_TEST_POSTGRES_URL")?;
                        let rest = url.split_once("://").unwrap().1.to_owned();
                        (url, format!("postgresql://{rest}"))
                    }
                    _ => {
                        let url = service("SATCHEL_TEST_MYSQL_URL")?;
                        let rest = url.split_once("://").unwrap().1.to_owned();
                        (url, format!("mysql+pymysql://{rest}"))
                    }
                };
                (
                    vec![
                        ("SESSION_TYPE", "sqlalchemy".to_owned()),
                        ("SESSION_SQL_URL", url),
                        ("SESSION_SQLALCHEMY_TABLE", table.clone()),
                    ],
                    vec![
                        ("SESSION_TYPE", "sqlalchemy".to_owned()),
                        ("SQLALCHEMY_DATABASE_URI", alchemy),
                        ("SESSION_SQLALCHEMY_TABLE", table),
                    ],
                )
            }
            Self::MongoDb => {
                let url = service("SATCHEL_TEST_MONGODB_URL")?;
                let database = unique("flaskx");
                (
                    vec![
                        ("SESSION_TYPE", "mongodb".to_owned()),
                        ("SESSION_MONGODB", url.clone()),
                        ("SESSION_MONGODB_DB", database.clone()),
                    ],
                    vec![
                        ("SESSION_TYPE", "mongodb".to_owned()),
                        ("SESSION_MONGODB", url),
                        ("SESSION_MONGODB_DB", database),
                    ],
                )
            }
        };
        satchel.extend(own.into_iter().map(|(k, v)| (k.to_owned(), v)));
        flask.extend(theirs.into_iter().map(|(k, v)| (k.to_owned(), v)));
        Some(Settings {
            satchel,
            flask,
            _dir: dir,
        })
    }

    fn is_sql(self) -> bool {
        matches!(self, Self::Sqlite | Self::Postgres | Self::MariaDb)
    }
}

/// The two sides of one run.
struct Sides {
    flask: Flask,
    satchel: Server,
    label: String,
}

impl Sides {
    /// Sends a request to `port` (one of the sides), failing with both sides' logs.
    fn send(&self, port: u16, method: &str, path: &str, cookie: Option<&str>, body: &str) -> Reply {
        try_request_as(port, method, path, cookie, "application/json", body).unwrap_or_else(
            |error| {
                panic!(
                    "{}: {method} {path} on port {port}: {error}\n--- Flask:\n{}\n--- satchel:\n{}",
                    self.label,
                    self.flask.log(),
                    self.satchel.log()
                )
            },
        )
    }

    /// The session as Flask sees it, `_permanent` left out.
    fn flask_dump(&self, cookie: Option<&str>) -> Value {
        let reply = self.send(self.flask.port, "GET", "/dump", cookie, "");
        assert_eq!(
            reply.status,
            200,
            "{}: Flask /dump:\n{}",
            self.label,
            self.flask.log()
        );
        let mut dump: Value = serde_json::from_str(&reply.body).unwrap();
        dump.as_object_mut().unwrap().remove("_permanent");
        dump
    }

    /// The session as Satchel sees it.
    fn satchel_dump(&self, cookie: Option<&str>) -> Value {
        let reply = self.send(self.satchel.port, "GET", "/dump", cookie, "");
        assert_eq!(
            reply.status,
            200,
            "{}: satchel /dump:\n{}",
            self.label,
            self.satchel.log()
        );
        serde_json::from_str(&reply.body).unwrap()
    }

    fn flask_post(&self, path: &str, cookie: Option<&str>, body: &Value) -> Reply {
        let reply = self.send(self.flask.port, "POST", path, cookie, &body.to_string());
        assert!(
            reply.status == 200 || (reply.status == 404 && path == "/regenerate"),
            "{}: Flask POST {path}: {} {}\n{}",
            self.label,
            reply.status,
            reply.body,
            self.flask.log()
        );
        reply
    }

    fn satchel_post(&self, path: &str, cookie: Option<&str>) -> Reply {
        let reply = self.send(self.satchel.port, "POST", path, cookie, "");
        assert_eq!(
            reply.status,
            200,
            "{}: satchel POST {path}: {}\n{}",
            self.label,
            reply.body,
            self.satchel.log()
        );
        reply
    }
}

/// The cookie a reply sets (`name=value`), which must be there.
fn cookie_of(reply: &Reply, what: &str) -> String {
    let cookie = reply
        .cookie()
        .unwrap_or_else(|| panic!("{what}: no Set-Cookie"));
    assert!(!cookie.ends_with('='), "{what}: a removal, not a cookie");
    cookie
}

/// `cookie` with the first character of its signature changed. (Not the last: its two
/// low bits are padding, which Python's base64 decoder ignores, so a change there can
/// leave the signature's bytes as they were.)
fn tampered(cookie: &str) -> String {
    let (id, signature) = cookie.rsplit_once('.').unwrap();
    let first = signature.chars().next().unwrap();
    let changed = if first == 'A' { 'B' } else { 'A' };
    format!("{id}.{changed}{}", &signature[1..])
}

/// A cookie (or its value) without its signature: the raw id.
fn unsigned(cookie: &str) -> String {
    cookie.rsplit_once('.').unwrap().0.to_owned()
}

/// Starts both sides; `flask_first`: Flask starts first (and makes the SQL table when the
/// layout's Flask does), otherwise Satchel does.
fn start(backend: Backend, layout: Layout, flask_first: bool) -> Option<(Sides, Settings)> {
    let python = layout.python()?;
    let settings = backend.settings(layout)?;
    let dir = tempfile::tempdir().unwrap();
    let envs: Vec<(&str, &str)> = settings
        .satchel
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (flask, satchel) = if flask_first {
        let flask = Flask::start(layout, &python, &settings.flask);
        (flask, start_on("axum", &envs, dir.path()))
    } else {
        let satchel = start_on("axum", &envs, dir.path());
        (Flask::start(layout, &python, &settings.flask), satchel)
    };
    let label = format!("{backend:?}, {layout:?}");
    Some((
        Sides {
            flask,
            satchel,
            label,
        },
        settings,
    ))
}

/// Runs the tests one at a time: each starts two servers, some on a shared MongoDB
/// protocol server that serves one request at a time, and a Flask development server
/// answers slowly when the machine is busy with a dozen others.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The round trips of one backend and layout.
fn round_trips(backend: Backend, layout: Layout, flask_first: bool) {
    let _alone = one_at_a_time();
    let Some((sides, _settings)) = start(backend, layout, flask_first) else {
        return;
    };
    let label = sides.label.clone();
    let mut passed = Vec::new();

    // 1. Made by Flask, read by Satchel.
    let made = sides.flask_post("/set/k", None, &json!("v"));
    let flask_cookie = cookie_of(&made, "Flask's new session");
    assert_eq!(
        sides.satchel_dump(Some(&flask_cookie)),
        json!({"k": "v"}),
        "{label}"
    );
    passed.push("a session Flask made is read by Satchel");

    // 2. Changed by both, each reading the other's change.
    assert_eq!(sides.satchel_post("/write", Some(&flask_cookie)).body, "1");
    assert_eq!(
        sides.flask_dump(Some(&flask_cookie)),
        json!({"k": "v", "n": 1}),
        "{label}"
    );
    assert_eq!(
        sides
            .flask_post("/write", Some(&flask_cookie), &json!(null))
            .body
            .trim(),
        "2"
    );
    assert_eq!(sides.satchel_post("/write", Some(&flask_cookie)).body, "3");
    assert_eq!(
        sides.flask_dump(Some(&flask_cookie))["n"],
        json!(3),
        "{label}"
    );
    passed.push("increments alternate between the sides: 1 by Satchel, 2 by Flask, 3 by Satchel");

    // 3. Values Satchel cannot represent are kept when it writes other keys.
    sides.flask_post("/types", Some(&flask_cookie), &json!(null));
    sides.flask_post(
        "/set/blob",
        Some(&flask_cookie),
        &json!({"$bytes": "AP9iaW4="}),
    );
    let seen = sides.satchel_dump(Some(&flask_cookie));
    eprintln!("{label}: Satchel sees {seen}");
    assert_eq!(seen["blob"], json!({"$bytes": "AP9iaW4="}), "{label}");
    sides.satchel_post("/set/x", Some(&flask_cookie));
    let kept = sides.send(sides.flask.port, "GET", "/types", Some(&flask_cookie), "");
    assert_eq!(
        serde_json::from_str::<Value>(&kept.body).unwrap(),
        json!({"b": true, "dt": true, "naive": true, "tup": true}),
        "{label}: the values Satchel cannot represent came back as they were"
    );
    let both = sides.flask_dump(Some(&flask_cookie));
    assert_eq!(both["x"], json!(true), "{label}");
    assert_eq!(both["k"], json!("v"), "{label}");
    eprintln!("{label}: Flask sees {both}");
    passed.push("a datetime, a tuple and bytes Flask wrote survive Satchel's write of another key");

    // 4. Flask's flash messages, through a write by Satchel.
    sides.flask_post("/flash", Some(&flask_cookie), &json!(null));
    sides.satchel_post("/write", Some(&flask_cookie));
    let flashes = sides.send(sides.flask.port, "GET", "/flashes", Some(&flask_cookie), "");
    assert_eq!(
        serde_json::from_str::<Value>(&flashes.body).unwrap(),
        json!([["info", "hello"]]),
        "{label}"
    );
    passed.push("a flash message Flask set survives a Satchel write and is shown once by Flask");

    // 5. Forged and unsigned cookies open nothing on either side.
    for (what, forged) in [
        ("tampered", tampered(&flask_cookie)),
        ("unsigned", unsigned(&flask_cookie)),
    ] {
        assert_eq!(
            sides.satchel_dump(Some(&forged)),
            json!({}),
            "{label}: {what}"
        );
        assert_eq!(
            sides.flask_dump(Some(&forged)),
            json!({}),
            "{label}: {what}"
        );
    }
    passed.push("a tampered signature and an unsigned id open nothing on either side");

    // 6. Made by Satchel (a log-in), read and changed by Flask.
    let login = sides.satchel_post("/login?uid=7", None);
    let satchel_cookie = cookie_of(&login, "Satchel's log-in");
    let seen = sides.flask_dump(Some(&satchel_cookie));
    assert_eq!(seen["_user_id"], json!("7"), "{label}: {seen}");
    assert_eq!(seen["user_id"], json!(7), "{label}");
    assert_eq!(
        seen["roles"],
        json!(["reader", "writer", "viewer"]),
        "{label}"
    );
    sides.flask_post(
        "/set/from_flask",
        Some(&satchel_cookie),
        &json!({"a": [1, 2.5]}),
    );
    let back = sides.satchel_dump(Some(&satchel_cookie));
    assert_eq!(back["from_flask"], json!({"a": [1, 2.5]}), "{label}");
    assert_eq!(back["name"], json!("user-000000000000007"), "{label}");
    passed.push("a session Satchel made at a log-in is read and changed by Flask");

    // 7. An id rotation on Satchel's side ends the old id on Flask's too.
    let rotated = sides.satchel_post("/login?uid=8", Some(&flask_cookie));
    let rotated_cookie = cookie_of(&rotated, "Satchel's rotation");
    assert_ne!(rotated_cookie, flask_cookie);
    assert_eq!(sides.flask_dump(Some(&flask_cookie)), json!({}), "{label}");
    let moved = sides.flask_dump(Some(&rotated_cookie));
    assert_eq!(moved["k"], json!("v"), "{label}");
    assert_eq!(moved["_user_id"], json!("8"), "{label}");
    passed.push("Satchel's id rotation: Flask finds the session under the new id only");

    // 8. An id rotation on Flask's side (Flask-Session 0.7 and later have one).
    let satchel_cookie = if layout == Layout::Msgpack {
        let regenerated = sides.flask_post("/regenerate", Some(&satchel_cookie), &json!(null));
        let new = cookie_of(&regenerated, "Flask's rotation");
        assert_eq!(
            sides.satchel_dump(Some(&satchel_cookie)),
            json!({}),
            "{label}"
        );
        assert_eq!(
            sides.satchel_dump(Some(&new))["from_flask"],
            json!({"a": [1, 2.5]}),
            "{label}"
        );
        passed.push("Flask's id rotation: Satchel finds the session under the new id only");
        new
    } else {
        satchel_cookie
    };

    // 9. Logging out (or clearing) on either side ends the session on both.
    sides.flask_post("/logout", Some(&rotated_cookie), &json!(null));
    assert_eq!(
        sides.satchel_dump(Some(&rotated_cookie)),
        json!({}),
        "{label}"
    );
    sides.satchel_post("/logout", Some(&satchel_cookie));
    assert_eq!(
        sides.flask_dump(Some(&satchel_cookie)),
        json!({}),
        "{label}"
    );
    let cleared = cookie_of(
        &sides.flask_post("/set/k", None, &json!("v")),
        "a session to clear",
    );
    sides.satchel_post("/clear", Some(&cleared));
    assert_eq!(sides.flask_dump(Some(&cleared)), json!({}), "{label}");
    passed.push(
        "a log-out on Flask's side ends the session for Satchel; a log-out or a clear on \
         Satchel's ends it for Flask",
    );

    // 10. An idle session expires for both, whoever made it.
    let by_flask = cookie_of(
        &sides.flask_post("/set/idle", None, &json!(1)),
        "an idle Flask session",
    );
    let by_satchel = cookie_of(&sides.satchel_post("/login?uid=9", None), "an idle log-in");
    assert_eq!(sides.satchel_dump(Some(&by_flask)), json!({"idle": 1}));
    std::thread::sleep(Duration::from_secs(LIFETIME_SECS) + Duration::from_millis(1500));
    for cookie in [&by_flask, &by_satchel] {
        assert_eq!(sides.satchel_dump(Some(cookie)), json!({}), "{label}");
    }
    if matches!((backend, layout), (Backend::MongoDb, Layout::Msgpack)) {
        // Flask-Session 0.7 and 0.8 do not check `expiration` when they read from
        // MongoDB: an expired session stays readable to Flask (and Flask's refresh brings
        // it back) until the server's TTL monitor deletes it, about a minute later.
        passed.push("an idle session expires after PERMANENT_SESSION_LIFETIME for Satchel");
    } else {
        for cookie in [&by_flask, &by_satchel] {
            assert_eq!(sides.flask_dump(Some(cookie)), json!({}), "{label}");
        }
        passed.push("an idle session expires after PERMANENT_SESSION_LIFETIME on both sides");
    }

    let made_by = if !backend.is_sql() {
        ""
    } else if flask_first {
        " (SQL table made by Flask)"
    } else {
        " (SQL table made by Satchel)"
    };
    eprintln!("{label}{made_by}: {} round trips passed:", passed.len());
    for round in passed {
        eprintln!("  - {round}");
    }
}

#[test]
fn flask_session_08_on_redis() {
    round_trips(Backend::Redis, Layout::Msgpack, true);
}

#[test]
fn flask_session_08_on_memcached() {
    round_trips(Backend::Memcached, Layout::Msgpack, true);
}

#[test]
fn flask_session_08_on_sqlite_with_the_table_flask_made() {
    round_trips(Backend::Sqlite, Layout::Msgpack, true);
}

#[test]
fn flask_session_08_on_postgresql_with_the_table_satchel_made() {
    round_trips(Backend::Postgres, Layout::Msgpack, false);
}

#[test]
fn flask_session_08_on_mariadb_with_the_table_flask_made() {
    round_trips(Backend::MariaDb, Layout::Msgpack, true);
}

#[test]
fn flask_session_08_on_mongodb() {
    round_trips(Backend::MongoDb, Layout::Msgpack, false);
}

#[test]
fn flask_unchained_on_redis() {
    round_trips(Backend::Redis, Layout::Pickle, true);
}

#[test]
fn flask_unchained_on_memcached() {
    round_trips(Backend::Memcached, Layout::Pickle, true);
}

/// Flask Unchained's model has columns of its own (`created_at`, `updated_at`): the
/// table must be the one it made.
#[test]
fn flask_unchained_on_sqlite() {
    round_trips(Backend::Sqlite, Layout::Pickle, true);
}

#[test]
fn flask_unchained_on_postgresql() {
    round_trips(Backend::Postgres, Layout::Pickle, true);
}

#[test]
fn flask_unchained_on_mariadb() {
    round_trips(Backend::MariaDb, Layout::Pickle, true);
}

#[test]
fn flask_unchained_on_mongodb() {
    round_trips(Backend::MongoDb, Layout::Pickle, true);
}

/// A rotation of SECRET_KEY: Satchel, on the new key with the old one in
/// SECRET_KEY_FALLBACKS, opens a session whose cookie Flask signed with the old key, and
/// answers with the cookie signed again with the new one, as Flask-Session signs it.
#[test]
fn a_cookie_flask_signed_with_a_fallback_key_is_signed_again() {
    let _alone = one_at_a_time();
    let Some(python) = Layout::Msgpack.python() else {
        return;
    };
    let Some(settings) = Backend::Redis.settings(Layout::Msgpack) else {
        return;
    };
    let new_secret = "the key after the rotation, shared by every side";
    let envs: Vec<(&str, &str)> = settings
        .satchel
        .iter()
        .map(|(k, v)| match k.as_str() {
            "SECRET_KEY" => (k.as_str(), new_secret),
            _ => (k.as_str(), v.as_str()),
        })
        .chain([("SECRET_KEY_FALLBACKS", SECRET)])
        .collect();
    let flask = Flask::start(Layout::Msgpack, &python, &settings.flask);
    let dir = tempfile::tempdir().unwrap();
    let satchel = start_on("axum", &envs, dir.path());
    let sides = Sides {
        flask,
        satchel,
        label: "a rotated SECRET_KEY".to_owned(),
    };
    let old = cookie_of(
        &sides.flask_post("/set/k", None, &json!("v")),
        "Flask's session",
    );
    let read = sides.send(sides.satchel.port, "GET", "/dump", Some(&old), "");
    assert_eq!(
        serde_json::from_str::<Value>(&read.body).unwrap(),
        json!({"k": "v"})
    );
    let resigned = cookie_of(&read, "the cookie signed again");
    let (name, value) = old.split_once('=').unwrap();
    let sid = unsigned(value);
    let signer = satchel::flask::FlaskSigner::new(new_secret.as_bytes(), []);
    assert_eq!(resigned, format!("{name}={}", signer.sign(&sid)));
    assert_eq!(sides.satchel_dump(Some(&resigned)), json!({"k": "v"}));
}
